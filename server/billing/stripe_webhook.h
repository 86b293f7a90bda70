/*
 * Stripe's webhook signatures, checked exactly as Stripe documents them
 * (docs.stripe.com/webhooks, "Verify signatures manually"), independent
 * of how the request arrived.
 *
 * Stripe sends "Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]"
 * where each v1 is HMAC-SHA256 of "<t>.<raw body>" keyed with a signing
 * secret ("whsec_...", the whole string is the key). A delivery is genuine
 * when any v1 matches a secret we hold: two can be configured at once, so
 * a secret can be rolled without refusing deliveries signed with the old
 * one (Stripe signs with both while a roll lasts). Matches are compared in
 * constant time. A genuine delivery whose t is more than the tolerance
 * (300 s) before or after our clock is refused as a possible replay. The
 * body is bounded before anything is computed over it.
 */
#ifndef TW_BILLING_STRIPE_WEBHOOK_H
#define TW_BILLING_STRIPE_WEBHOOK_H

#include "tw_err.h"

#include <stddef.h>
#include <stdint.h>

#define TW_STRIPE_WEBHOOK_TOLERANCE_S 300
/* Stripe's events are a few KiB; 1 MiB leaves room and bounds the work. */
#define TW_STRIPE_WEBHOOK_MAX_BYTES (1024 * 1024)
/* Longest Stripe-Signature header read: a timestamp and a few signatures. */
#define TW_STRIPE_WEBHOOK_HEADER_MAX 2048

typedef struct tw_stripe_webhook_config {
    /* The signing secrets; the second NULL or "" when only one is
     * configured. Borrowed for the life of the config. */
    const char *secrets[2];
    int64_t tolerance_s;   /* 0: TW_STRIPE_WEBHOOK_TOLERANCE_S */
    size_t max_body_bytes; /* 0: TW_STRIPE_WEBHOOK_MAX_BYTES */
} tw_stripe_webhook_config;

/*
 * Checks one delivery: header is the Stripe-Signature value (NULL when the
 * request had none), body its len bytes, now_s our clock in Unix seconds.
 *   TW_OK                         genuine and fresh
 *   TW_ERR_TOO_LARGE              body over the limit (nothing computed)
 *   TW_ERR_WEBHOOK_BAD_SIGNATURE  no header, a malformed one, no v1, no
 *                                 secret configured, or no v1 matches
 *   TW_ERR_WEBHOOK_STALE          genuine, but t is outside the tolerance
 * why (may be NULL) gets a line for the log; it never holds a secret or a
 * signature. Borrows everything; thread-safe.
 */
tw_err tw_stripe_webhook_verify(const tw_stripe_webhook_config *cfg, const char *header,
                                const void *body, size_t len, int64_t now_s, char *why,
                                size_t why_len);

#endif
