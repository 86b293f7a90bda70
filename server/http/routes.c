/* The route table of routes.h. */
#include "routes.h"

#include "billing/stripe_webhook.h"

/* Probes and scrapes send no body. */
#define NO_BODY 0

const tw_httpd_route tw_httpd_routes[] = {
    {"GET", "/health", tw_httpd_health, NO_BODY, .quiet = true},
    {"GET", "/health/db", tw_httpd_health_db, NO_BODY, .quiet = true},
    {"GET", "/health/detailed", tw_httpd_health_detailed, NO_BODY, .quiet = true},
    {"GET", "/metrics", tw_httpd_metrics, NO_BODY, .quiet = true},
    /* Stripe's events: a body over the bound is refused before it is read,
     * with the 400 and reason (TW_ERR_TOO_LARGE's) of every refused delivery. */
    {"POST", "/webhooks/stripe", tw_httpd_stripe_webhook, TW_STRIPE_WEBHOOK_MAX_BYTES,
     .quiet = false, .too_large_status = 400, .too_large_error = "SIZE_001"},
    {NULL},
};
