/*
 * Billing (tw.v1.BillingService and BillingAdminService): plans,
 * subscriptions, payments and payment methods mirrored from Stripe, Stripe's
 * webhook events, the entitlement table every limit and feature check
 * reads, usage per billing period, student verification and the billing
 * figures of the runbook. Free of the RPC engine: each function here is
 * what one RPC does, taking the request's fields and answering the API's
 * messages, so that a handler is "call it, map the refusal".
 *
 * With a Stripe client, paid plans are billed by Stripe; without one (the
 * embedded default), nothing is charged and an administrator grants plans
 * (tw_billing_grant_subscription); entitlements, usage and figures work the
 * same either way.
 *
 * Calls that reach Stripe block for as long as Stripe takes (with retries):
 * run them on a pool or in a job, never on an RPC thread. Those that do
 * not are marked "store only".
 *
 * Files: billing.c (context, keys, paging, counters, jobs), plans.c,
 * account.c (subscriptions and their synchronisation with Stripe, the
 * entitlement record, the live gauges), payments.c (payments and payment
 * methods), webhooks.c, usage.c, student.c, metrics.c (figures, export),
 * stripe_webhook.h (signatures).
 */
#ifndef TW_BILLING_H
#define TW_BILLING_H

#include "google/protobuf/field_mask.pb-c.h"
#include "stripe.h"
#include "tw/v1/billing_service.pb-c.h"
#include "tw_blob.h"
#include "tw_jobs.h"
#include "tw_store.h"
#include "tw_violations.h"

#include <stdbool.h>
#include <stdint.h>

/* Shorter names for the generated enums. */
#define TW_SUB_TRIALING   TW__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_TRIALING
#define TW_SUB_ACTIVE     TW__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_ACTIVE
#define TW_SUB_PAST_DUE   TW__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_PAST_DUE
#define TW_SUB_CANCELED   TW__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_CANCELED
#define TW_SUB_SUSPENDED  TW__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_SUSPENDED
#define TW_SUB_INCOMPLETE TW__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_INCOMPLETE

#define TW_RESOURCE_API_CALLS     TW__V1__USAGE_RESOURCE__USAGE_RESOURCE_API_CALLS
#define TW_RESOURCE_VOICE_MINUTES TW__V1__USAGE_RESOURCE__USAGE_RESOURCE_VOICE_MINUTES
#define TW_RESOURCE_AI_REQUESTS   TW__V1__USAGE_RESOURCE__USAGE_RESOURCE_AI_REQUESTS
#define TW_RESOURCE_STORAGE_BYTES TW__V1__USAGE_RESOURCE__USAGE_RESOURCE_STORAGE_BYTES
#define TW_RESOURCE_COUNT         5 /* UNSPECIFIED and the four */

/* The free plan's id; it always exists. */
#define TW_FREE_PLAN "free"
/* The job types billing enqueues, run by tw_billing_job_run. */
#define TW_BILLING_JOB_WEBHOOK        "billing_webhook"
#define TW_BILLING_JOB_PERIOD_END     "billing_period_end"
#define TW_BILLING_JOB_REPRICE        "billing_reprice"
#define TW_BILLING_JOB_CARD_EXPIRY    "billing_card_expiry"
#define TW_BILLING_JOB_STUDENT_EXPIRY "billing_student_expiry"

typedef struct tw_billing tw_billing;

typedef struct tw_billing_config {
    tw_store *store;      /* borrowed for the life of the billing */
    tw_blob_store *blobs; /* borrowed; student documents */
    tw_stripe *stripe;    /* borrowed; NULL: the embedded default */
    /* Stripe's webhook signing secrets (copied); the second for a roll. */
    const char *webhook_secrets[2];
    int64_t webhook_tolerance_s; /* 0: 300 */
    size_t webhook_max_bytes;    /* 0: 1 MiB */
    /* Sends a student verification code to an academic address (the
     * notification path); NULL: the code is logged, for the embedded
     * default. Borrows its strings during the call. */
    void (*send_code)(void *ctx, const tw_id *user, const char *email, const char *code);
    void *send_code_ctx;
} tw_billing_config;

tw_err tw_billing_new(const tw_billing_config *cfg, tw_billing **out);
/* Accepts NULL. */
void tw_billing_free(tw_billing *b);

/* Account deletion's step for billing (safe to run again): a live
 * subscription is cancelled at once (at Stripe too: a call, so this runs on
 * the deletion job's thread, and a Stripe failure fails it for a retry);
 * then what the sweep of the user's own keys cannot reach, the shared
 * indexes (Stripe customer, subscriptions by plan, the review queue), the
 * live-subscription counters and the student document's blob. */
tw_err tw_billing_forget_user(tw_billing *b, const tw_id *user, int64_t now_ms);

/* Why a call refused, beside its bad fields (which go to the context's
 * violation list): a message for the client (Stripe's card message for
 * PAY_001, what is in the way for FAILED_PRECONDITION...), and for
 * TW_ERR_UPSTREAM how long Stripe asked us to wait (0: not said). */
typedef struct tw_billing_refusal {
    char message[320];
    int64_t retry_after_ms;
} tw_billing_refusal;

/* One page of a list, as the service kit read it from the request
 * (tw_kit_page_open): how many items, and the cursor to go on after
 * (NULL: from the start). The list sets next to the cursor of the next
 * page (NULL: the list is done), for the kit to sign into a token. */
typedef struct tw_billing_page {
    uint32_t size;
    const uint8_t *cursor;
    size_t cursor_len;
    const uint8_t *next;
    size_t next_len;
} tw_billing_page;

/* One call: whose records (the caller, or the user an admin names), the
 * call's clock, the arena answers live in, the violation list every bad
 * field of the request is added to (borrowed: the call's), the hash the
 * kit keeps of a request with a request_id (its packed form without the
 * request_id; NULL when it has none), and the refusal. */
typedef struct tw_billing_ctx {
    tw_billing *billing;
    tw_id user;
    int64_t now_ms;
    tw_arena *arena;
    tw_violations *bad;
    const uint8_t *request_sha256;
    tw_billing_refusal why;
} tw_billing_ctx;

/* ---- Plans (plans.c) ---------------------------------------------------------- */

/* ListPlans (store only): active plans, free first, each with caller_price
 * for currency ("" for the plan's own) and the caller's student status. */
tw_err tw_billing_list_plans(tw_billing_ctx *c, const char *currency, tw_billing_page *page,
                             Tw__V1__ListPlansResponse **out);
/* ListAllPlans (store only): every plan by id. */
tw_err tw_billing_list_all_plans(tw_billing_ctx *c, tw_billing_page *page,
                                 Tw__V1__ListAllPlansResponse **out);
/* CreatePlan: with Stripe, its product and prices are made there first. */
tw_err tw_billing_create_plan(tw_billing_ctx *c, const Tw__V1__Plan *plan, const char *request_id,
                              Tw__V1__Plan **out);
/* UpdatePlan (store only): name, description, features, limits, active. */
tw_err tw_billing_update_plan(tw_billing_ctx *c, const Tw__V1__Plan *plan,
                              const Google__Protobuf__FieldMask *mask, Tw__V1__Plan **out);
/* SetPlanPrice: with Stripe, a new Price is made, and a job moves the
 * plan's Stripe subscriptions to it from their next renewal. */
tw_err tw_billing_set_plan_price(tw_billing_ctx *c, const char *plan_id,
                                 const Tw__V1__PlanPrice *price, const char *request_id,
                                 Tw__V1__Plan **out);

/* ---- Subscriptions (account.c) --------------------------------------------------- */

/* GetSubscription (store only); the implicit free plan when none is live. */
tw_err tw_billing_get_subscription(tw_billing_ctx *c, Tw__V1__Subscription **out);
/* CreateSubscription: see billing_service.proto; PAY_003 without Stripe. */
tw_err tw_billing_create_subscription(tw_billing_ctx *c, const char *plan_id,
                                      const char *payment_method_id, const char *currency,
                                      const char *request_id, Tw__V1__Subscription **out);
tw_err tw_billing_change_plan(tw_billing_ctx *c, const char *plan_id, const char *request_id,
                              Tw__V1__Subscription **out);
tw_err tw_billing_cancel_subscription(tw_billing_ctx *c, bool immediately,
                                      Tw__V1__Subscription **out);
tw_err tw_billing_resume_subscription(tw_billing_ctx *c, Tw__V1__Subscription **out);
/* Admin, c->user the user concerned. Grant and revoke are store only. */
tw_err tw_billing_grant_subscription(tw_billing_ctx *c, const char *plan_id, int64_t end_ms,
                                     Tw__V1__Subscription **out);
tw_err tw_billing_revoke_subscription(tw_billing_ctx *c, Tw__V1__Subscription **out);
tw_err tw_billing_suspend_subscription(tw_billing_ctx *c, const char *reason,
                                       Tw__V1__Subscription **out);
tw_err tw_billing_resync_subscription(tw_billing_ctx *c, Tw__V1__Subscription **out);

/* ---- Payments and payment methods (payments.c) ------------------------------------- */

/* ListPayments (store only), newest first. */
tw_err tw_billing_list_payments(tw_billing_ctx *c, tw_billing_page *page,
                                Tw__V1__ListPaymentsResponse **out);
/* Admin: refund (amount 0: what is left) and charge a failed invoice again. */
tw_err tw_billing_refund_payment(tw_billing_ctx *c, const char *payment_id, int64_t amount_minor,
                                 const char *request_id, Tw__V1__Payment **out);
tw_err tw_billing_retry_invoice(tw_billing_ctx *c, const char *payment_id, Tw__V1__Payment **out);
/* ListPaymentMethods (store only), by id. */
tw_err tw_billing_list_payment_methods(tw_billing_ctx *c, tw_billing_page *page,
                                       Tw__V1__ListPaymentMethodsResponse **out);
tw_err tw_billing_attach_payment_method(tw_billing_ctx *c, const char *payment_method_id,
                                        const char *request_id, Tw__V1__PaymentMethod **out);
tw_err tw_billing_detach_payment_method(tw_billing_ctx *c, const char *payment_method_id);
tw_err tw_billing_set_default_payment_method(tw_billing_ctx *c, const char *payment_method_id,
                                             Tw__V1__PaymentMethod **out);

/* ---- Webhook events (webhooks.c) ------------------------------------------------------ */

/* What became of a delivery. */
typedef enum tw_webhook_delivery {
    TW_WEBHOOK_STORED,    /* new: stored, its job enqueued */
    TW_WEBHOOK_DUPLICATE, /* an event already received: counted, nothing more */
} tw_webhook_delivery;

/*
 * POST /webhooks/stripe, store only: checks the signature (header is the
 * Stripe-Signature value, NULL when absent) and the body at now_ms, then
 * stores the raw event by its id with a job to process it, in one
 * transaction; a repeated delivery of one event id (also concurrent ones)
 * stores and enqueues nothing more. TW_OK: answer 2xx. Refusals (nothing
 * stored; answer 400): TW_ERR_TOO_LARGE, TW_ERR_WEBHOOK_BAD_SIGNATURE,
 * TW_ERR_WEBHOOK_STALE, TW_ERR_VALIDATION (signed, but not a Stripe event).
 * why (may be NULL) gets a line for the log. Wake the job runner after a
 * TW_WEBHOOK_STORED.
 */
tw_err tw_billing_webhook_receive(tw_billing *b, const char *header, const void *body, size_t len,
                                  int64_t now_ms, tw_webhook_delivery *delivery, char *why,
                                  size_t why_len);
/* ListWebhookEvents (store only), newest first, without payloads. */
tw_err tw_billing_list_webhook_events(tw_billing_ctx *c, const char *type,
                                      Tw__V1__WebhookEventFilter filter, int64_t start_ms,
                                      int64_t end_ms, tw_billing_page *page,
                                      Tw__V1__ListWebhookEventsResponse **out);
/* ReplayWebhookEvent: processes the event now (again). */
tw_err tw_billing_replay_webhook_event(tw_billing_ctx *c, const char *id,
                                       Tw__V1__WebhookEvent **out);

/* ---- Entitlements and usage (usage.c) --------------------------------------------------- */

/* What a user may use now: the one answer every limit and feature check
 * reads (two point reads: the entitlement record and its plan). */
typedef struct tw_billing_entitlement {
    const char *plan_id;   /* in the arena; "free" when no plan applies */
    char *const *features; /* the plan's feature lines, in the arena */
    size_t n_features;
    int64_t limits[TW_RESOURCE_COUNT]; /* per resource; -1: unlimited */
    int64_t period_start_ms;           /* the billing period usage counts in */
    int64_t period_end_ms;
    bool student; /* an approved, unexpired student verification */
    /* The answer holds until then, unless the store changes: the period
     * ends, the plan runs out or the student verification does. */
    int64_t until_ms;
} tw_billing_entitlement;

/* Store only. */
tw_err tw_billing_entitlement_get(tw_billing *b, const tw_id *user, int64_t now_ms, tw_arena *arena,
                                  tw_billing_entitlement *out);

/* A refusal over a limit, for RESOURCE_EXHAUSTED / QUOTA_001's details. */
typedef struct tw_billing_quota {
    int resource;
    int64_t used; /* before this call */
    int64_t limit;
    int64_t reset_ms; /* when the period ends; 0: never (storage_bytes, a level) */
} tw_billing_quota;

/* Counts amount (> 0) of resource for user now, unless that goes over the
 * plan's limit: TW_ERR_QUOTA_EXCEEDED with quota filled, nothing counted.
 * Exact under concurrency (a transaction of its own, taking turns with the
 * user's other counts). The commit does not wait for the WAL sync: a crash
 * may lose the count until the next commit that does. Store only. */
tw_err tw_billing_usage_consume(tw_billing *b, const tw_id *user, int resource, int64_t amount,
                                int64_t now_ms, tw_billing_quota *quota);
/* The same whatever the limit (plan_limits "count"). */
tw_err tw_billing_usage_add(tw_billing *b, const tw_id *user, int resource, int64_t amount,
                            int64_t now_ms);
/* Writes the counts of those two kept in memory (usage.c's meter): twd
 * calls it when it stops, once no call runs, before the store closes.
 * Accepts NULL. */
tw_err tw_billing_usage_flush(tw_billing *b, int64_t now_ms);
/* Whether amount (> 0) more of resource would fit now: TW_OK, or
 * TW_ERR_QUOTA_EXCEEDED with quota filled. Counts nothing. Store only. */
tw_err tw_billing_usage_check(tw_billing *b, const tw_id *user, int resource, int64_t amount,
                              int64_t now_ms, tw_billing_quota *quota);
/* tw_billing_usage_consume in t, the write that uses it (a voice note). */
tw_err tw_txn_billing_usage_consume(tw_txn *t, tw_billing *b, const tw_id *user, int resource,
                                    int64_t amount, int64_t now_ms, tw_billing_quota *quota);
/* Counts amount in t whatever the limit (storage already written, a
 * transcription already done); a negative amount gives back (a deleted
 * note's storage bytes), never below zero. */
tw_err tw_txn_billing_usage_add(tw_txn *t, tw_billing *b, const tw_id *user, int resource,
                                int64_t amount, int64_t now_ms);
/* GetUsage (store only). */
tw_err tw_billing_get_usage(tw_billing_ctx *c, Tw__V1__GetUsageResponse **out);

/* "api_calls", "voice_minutes", "ai_requests", "storage_bytes"; "" otherwise. */
const char *tw_billing_resource_name(int resource);

/* ---- Student verification (student.c) ------------------------------------------------------ */

/* SubmitStudentVerification: a code to an academic address (sent through
 * send_code, or logged), or a document stored as a blob for review. */
tw_err tw_billing_submit_student(tw_billing_ctx *c,
                                 const Tw__V1__SubmitStudentVerificationRequest *r,
                                 Tw__V1__StudentVerification **out);
/* ConfirmStudentEmail (store only). */
tw_err tw_billing_confirm_student_email(tw_billing_ctx *c, const char *code,
                                        Tw__V1__StudentVerification **out);
/* GetStudentVerification (store only). */
tw_err tw_billing_get_student(tw_billing_ctx *c, Tw__V1__StudentVerification **out);
/* Admin, store only: the queue, approve, reject (c->user the student). */
tw_err tw_billing_list_students(tw_billing_ctx *c, Tw__V1__StudentVerificationStatus status,
                                tw_billing_page *page,
                                Tw__V1__ListStudentVerificationsResponse **out);
tw_err tw_billing_approve_student(tw_billing_ctx *c, Tw__V1__StudentVerification **out);
tw_err tw_billing_reject_student(tw_billing_ctx *c, const char *reason,
                                 Tw__V1__StudentVerification **out);
/* The blob key of the user's document, for DownloadStudentDocument
 * (NOT_FOUND when their verification has none). */
tw_err tw_billing_student_document(tw_billing_ctx *c, const char **blob_key,
                                   const char **content_type);

/* ---- Figures and export (metrics.c) ---------------------------------------------------------- */

/* GetBillingMetrics (store only): days (0: 30) and months (0: 3) ending now. */
tw_err tw_billing_metrics(tw_billing_ctx *c, int32_t days, int32_t months,
                          Tw__V1__GetBillingMetricsResponse **out);
/* ExportBillingRecords (store only) of c->user: every payment (newest
 * first) and payment method, at most this many of each so the answer stays
 * bounded (about 1 MB); the answer's truncated says when more were left
 * out. */
#define TW_BILLING_EXPORT_MAX 2000
tw_err tw_billing_export(tw_billing_ctx *c, Tw__V1__ExportBillingRecordsResponse **out);

/* ---- Jobs (billing.c)
 * ------------------------------------------------------------------------------ */

/* Runs one of billing's jobs (its type one of TW_BILLING_JOB_*) at now_ms.
 * TW_OK completes it; an error fails it, with error (a line for the job's
 * last_error) and *retry_after_ms (Stripe's Retry-After, 0 when none).
 * Safe to run twice. */
tw_err tw_billing_job_run(tw_billing *b, const tw_job *job, int64_t now_ms, char *error,
                          size_t error_len, int64_t *retry_after_ms);

/* The i-th job type tw_billing_job_run takes; NULL past the last. */
const char *tw_billing_job_type(size_t i);

#endif
