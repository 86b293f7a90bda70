/*
 * POST /webhooks/stripe: Stripe's events arrive here. The signature is
 * checked over the raw body before anything is parsed; a good event is
 * stored with its processing job in one durable transaction and only then
 * answered 200, so a crash after the answer loses nothing, and a crash
 * before it gets the event again from Stripe's retries (the event id makes
 * that delivery a no-op). Processing runs from the job queue.
 */
#include "routes.h"

#include "app.h"
#include "billing/billing.h"
#include "jobs.h"
#include "tw_log.h"
#include "tw_time.h"

#include <microhttpd.h>
#include <string.h>

void tw_httpd_stripe_webhook(void *ctx, const tw_httpd_request *req, tw_httpd_response *res)
{
    tw_app *app = ctx;
    if (app->billing == NULL) {
        tw_httpd_reply(res, MHD_HTTP_SERVICE_UNAVAILABLE,
                       "{\"error\":\"billing is not running\"}\n");
        return;
    }
    tw_webhook_delivery delivery;
    char why[256] = "";
    tw_err err = tw_billing_webhook_receive(app->billing, tw_httpd_header(req, "stripe-signature"),
                                            req->body, req->body_len, tw_wall_ms(), &delivery, why,
                                            sizeof why);
    switch (err) {
    case TW_OK:
        if (delivery == TW_WEBHOOK_STORED && app->jobs != NULL)
            tw_jobs_wake(app->jobs);
        tw_httpd_reply(res, MHD_HTTP_OK, "{\"received\":true,\"duplicate\":%s}\n",
                       delivery == TW_WEBHOOK_DUPLICATE ? "true" : "false");
        return;
    case TW_ERR_TOO_LARGE:
    case TW_ERR_WEBHOOK_BAD_SIGNATURE:
    case TW_ERR_WEBHOOK_STALE:
    case TW_ERR_VALIDATION:
        /* Nothing stored. The log says why; the sender learns only the
         * reason code, which tells an operator where to look. */
        tw_log(TW_LOG_WARN, "stripe webhook refused",
               json_pack("{s:s, s:s, s:s}", "reason", tw_err_reason(err), "detail", why,
                         "request_id", req->request_id));
        tw_httpd_reply(res, MHD_HTTP_BAD_REQUEST, "{\"error\":\"%s\"}\n", tw_err_reason(err));
        return;
    default:
        /* Not stored: a 5xx makes Stripe deliver it again later. */
        tw_log(TW_LOG_ERROR, "stripe webhook not stored",
               json_pack("{s:s, s:s, s:s}", "reason", tw_err_reason(err), "detail",
                         tw_store_last_error(), "request_id", req->request_id));
        tw_httpd_reply(res, MHD_HTTP_INTERNAL_SERVER_ERROR, "{\"error\":\"%s\"}\n",
                       tw_err_reason(err));
        return;
    }
}
