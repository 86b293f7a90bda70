/*
 * tw.v1.BillingService and tw.v1.BillingAdminService over server/billing:
 * every RPC is one function of billing.h, so each method here is a row
 * saying where it runs and whose records it reaches, and one small step
 * that passes the request's fields and puts the answer in the response.
 *
 * Where a call runs: steps marked ON_POOL may call Stripe (which can take
 * as long as its timeouts and retries), so they run on the slow pool and
 * finish the call from there; the others only read or write the store and
 * run on the engine's threads. Whose records: the signed-in caller's for
 * BillingService (another user's ids are simply not theirs: NOT_FOUND),
 * the user named by the request's user_id for the admin rows marked
 * NAMED_USER.
 *
 * Billing also plugs in hooks: the meter the gate calls for every
 * TW_METERED method (one API call against the caller's plan, refused over
 * the limit with RESOURCE_EXHAUSTED / QUOTA_001; a TW_METERED_AUDIO one
 * also needs voice minutes and storage bytes left), app->use, through
 * which a write consumes or gives back other resources (a voice note's
 * minutes and bytes), and account deletion.
 */
#include "services.h"

#include "billing/billing.h"
#include "kit/kit.h"
#include "paced_stream.h"
#include "pbtime.h"
#include "tw_counter.h"
#include "tw_log.h"
#include "tw_time.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Where a step runs and whose records it reaches. */
enum {
    ON_POOL = 1u << 0,    /* may call Stripe: on the slow pool */
    NAMED_USER = 1u << 1, /* the request's user_id, not the caller */
};

/* One method's work: in is the request, out the response to fill. */
typedef tw_err billing_step(tw_billing_ctx *c, const void *in, void *out);
/* A List's: the same, on the page the kit read from the request; the
 * kit signs the page's next cursor into out's next_page_token. */
typedef tw_err billing_list_step(tw_billing_ctx *c, tw_billing_page *page, const void *in,
                                 void *out);

/* Copies a response the domain made (in the call's arena) into out. */
static void answer(void *out, const void *made)
{
    const ProtobufCMessage *m = made;
    memcpy(out, made, m->descriptor->sizeof_message);
}

/* ---- BillingService ----------------------------------------------------------- */

static tw_err list_plans(tw_billing_ctx *c, tw_billing_page *page, const void *request, void *out)
{
    const Tw__V1__ListPlansRequest *in = request;
    Tw__V1__ListPlansResponse *r;
    tw_err err = tw_billing_list_plans(c, in->currency, page, &r);
    if (!err)
        answer(out, r);
    return err;
}

static tw_err get_subscription(tw_billing_ctx *c, const void *request, void *out)
{
    (void)request;
    return tw_billing_get_subscription(c, &((Tw__V1__GetSubscriptionResponse *)out)->subscription);
}

static tw_err create_subscription(tw_billing_ctx *c, const void *request, void *out)
{
    const Tw__V1__CreateSubscriptionRequest *in = request;
    return tw_billing_create_subscription(
        c, in->plan_id, in->payment_method_id, in->currency, in->request_id,
        &((Tw__V1__CreateSubscriptionResponse *)out)->subscription);
}

static tw_err change_plan(tw_billing_ctx *c, const void *request, void *out)
{
    const Tw__V1__ChangePlanRequest *in = request;
    return tw_billing_change_plan(c, in->plan_id, in->request_id,
                                  &((Tw__V1__ChangePlanResponse *)out)->subscription);
}

static tw_err cancel_subscription(tw_billing_ctx *c, const void *request, void *out)
{
    const Tw__V1__CancelSubscriptionRequest *in = request;
    return tw_billing_cancel_subscription(
        c, in->immediately, &((Tw__V1__CancelSubscriptionResponse *)out)->subscription);
}

static tw_err resume_subscription(tw_billing_ctx *c, const void *request, void *out)
{
    (void)request;
    return tw_billing_resume_subscription(
        c, &((Tw__V1__ResumeSubscriptionResponse *)out)->subscription);
}

static tw_err list_payments(tw_billing_ctx *c, tw_billing_page *page, const void *request,
                            void *out)
{
    (void)request;
    Tw__V1__ListPaymentsResponse *r;
    tw_err err = tw_billing_list_payments(c, page, &r);
    if (!err)
        answer(out, r);
    return err;
}

static tw_err list_payment_methods(tw_billing_ctx *c, tw_billing_page *page, const void *request,
                                   void *out)
{
    (void)request;
    Tw__V1__ListPaymentMethodsResponse *r;
    tw_err err = tw_billing_list_payment_methods(c, page, &r);
    if (!err)
        answer(out, r);
    return err;
}

static tw_err attach_payment_method(tw_billing_ctx *c, const void *request, void *out)
{
    const Tw__V1__AttachPaymentMethodRequest *in = request;
    return tw_billing_attach_payment_method(
        c, in->payment_method_id, in->request_id,
        &((Tw__V1__AttachPaymentMethodResponse *)out)->payment_method);
}

static tw_err detach_payment_method(tw_billing_ctx *c, const void *request, void *out)
{
    (void)out;
    return tw_billing_detach_payment_method(
        c, ((const Tw__V1__DetachPaymentMethodRequest *)request)->payment_method_id);
}

static tw_err set_default_payment_method(tw_billing_ctx *c, const void *request, void *out)
{
    const Tw__V1__SetDefaultPaymentMethodRequest *in = request;
    return tw_billing_set_default_payment_method(
        c, in->payment_method_id,
        &((Tw__V1__SetDefaultPaymentMethodResponse *)out)->payment_method);
}

static tw_err get_usage(tw_billing_ctx *c, const void *request, void *out)
{
    (void)request;
    Tw__V1__GetUsageResponse *r;
    tw_err err = tw_billing_get_usage(c, &r);
    if (!err)
        answer(out, r);
    return err;
}

static tw_err submit_student(tw_billing_ctx *c, const void *request, void *out)
{
    return tw_billing_submit_student(
        c, request, &((Tw__V1__SubmitStudentVerificationResponse *)out)->verification);
}

static tw_err confirm_student_email(tw_billing_ctx *c, const void *request, void *out)
{
    return tw_billing_confirm_student_email(
        c, ((const Tw__V1__ConfirmStudentEmailRequest *)request)->code,
        &((Tw__V1__ConfirmStudentEmailResponse *)out)->verification);
}

static tw_err get_student(tw_billing_ctx *c, const void *request, void *out)
{
    (void)request;
    return tw_billing_get_student(c,
                                  &((Tw__V1__GetStudentVerificationResponse *)out)->verification);
}

/* ---- BillingAdminService ------------------------------------------------------------- */

static tw_err create_plan(tw_billing_ctx *c, const void *request, void *out)
{
    const Tw__V1__CreatePlanRequest *in = request;
    return tw_billing_create_plan(c, in->plan, in->request_id,
                                  &((Tw__V1__CreatePlanResponse *)out)->plan);
}

static tw_err update_plan(tw_billing_ctx *c, const void *request, void *out)
{
    const Tw__V1__UpdatePlanRequest *in = request;
    return tw_billing_update_plan(c, in->plan, in->update_mask,
                                  &((Tw__V1__UpdatePlanResponse *)out)->plan);
}

static tw_err set_plan_price(tw_billing_ctx *c, const void *request, void *out)
{
    const Tw__V1__SetPlanPriceRequest *in = request;
    return tw_billing_set_plan_price(c, in->plan_id, in->price, in->request_id,
                                     &((Tw__V1__SetPlanPriceResponse *)out)->plan);
}

static tw_err list_all_plans(tw_billing_ctx *c, tw_billing_page *page, const void *request,
                             void *out)
{
    (void)request;
    Tw__V1__ListAllPlansResponse *r;
    tw_err err = tw_billing_list_all_plans(c, page, &r);
    if (!err)
        answer(out, r);
    return err;
}

static tw_err grant_subscription(tw_billing_ctx *c, const void *request, void *out)
{
    const Tw__V1__GrantSubscriptionRequest *in = request;
    int64_t end_ms = 0;
    if (in->end_time != NULL && !tw_timestamp_to_ms(in->end_time, &end_ms))
        end_ms = -1; /* out of range: refused as in the past */
    return tw_billing_grant_subscription(c, in->plan_id, end_ms,
                                         &((Tw__V1__GrantSubscriptionResponse *)out)->subscription);
}

static tw_err revoke_subscription(tw_billing_ctx *c, const void *request, void *out)
{
    (void)request;
    return tw_billing_revoke_subscription(
        c, &((Tw__V1__RevokeSubscriptionResponse *)out)->subscription);
}

static tw_err suspend_subscription(tw_billing_ctx *c, const void *request, void *out)
{
    return tw_billing_suspend_subscription(
        c, ((const Tw__V1__SuspendSubscriptionRequest *)request)->reason,
        &((Tw__V1__SuspendSubscriptionResponse *)out)->subscription);
}

static tw_err resync_subscription(tw_billing_ctx *c, const void *request, void *out)
{
    (void)request;
    return tw_billing_resync_subscription(
        c, &((Tw__V1__ResyncSubscriptionResponse *)out)->subscription);
}

static tw_err refund_payment(tw_billing_ctx *c, const void *request, void *out)
{
    const Tw__V1__RefundPaymentRequest *in = request;
    return tw_billing_refund_payment(c, in->payment_id, in->amount_minor, in->request_id,
                                     &((Tw__V1__RefundPaymentResponse *)out)->payment);
}

static tw_err retry_invoice(tw_billing_ctx *c, const void *request, void *out)
{
    return tw_billing_retry_invoice(c, ((const Tw__V1__RetryInvoiceRequest *)request)->payment_id,
                                    &((Tw__V1__RetryInvoiceResponse *)out)->payment);
}

static tw_err export_records(tw_billing_ctx *c, const void *request, void *out)
{
    (void)request;
    Tw__V1__ExportBillingRecordsResponse *r;
    tw_err err = tw_billing_export(c, &r);
    if (!err)
        answer(out, r);
    return err;
}

static tw_err list_webhook_events(tw_billing_ctx *c, tw_billing_page *page, const void *request,
                                  void *out)
{
    const Tw__V1__ListWebhookEventsRequest *in = request;
    int64_t start_ms = 0, end_ms = 0;
    if (in->start_time != NULL)
        tw_timestamp_to_ms(in->start_time, &start_ms);
    if (in->end_time != NULL)
        tw_timestamp_to_ms(in->end_time, &end_ms);
    Tw__V1__ListWebhookEventsResponse *r;
    tw_err err =
        tw_billing_list_webhook_events(c, in->type, in->filter, start_ms, end_ms, page, &r);
    if (!err)
        answer(out, r);
    return err;
}

static tw_err replay_webhook_event(tw_billing_ctx *c, const void *request, void *out)
{
    return tw_billing_replay_webhook_event(c,
                                           ((const Tw__V1__ReplayWebhookEventRequest *)request)->id,
                                           &((Tw__V1__ReplayWebhookEventResponse *)out)->event);
}

static tw_err list_students(tw_billing_ctx *c, tw_billing_page *page, const void *request,
                            void *out)
{
    const Tw__V1__ListStudentVerificationsRequest *in = request;
    Tw__V1__ListStudentVerificationsResponse *r;
    tw_err err = tw_billing_list_students(c, in->status, page, &r);
    if (!err)
        answer(out, r);
    return err;
}

static tw_err approve_student(tw_billing_ctx *c, const void *request, void *out)
{
    (void)request;
    return tw_billing_approve_student(
        c, &((Tw__V1__ApproveStudentVerificationResponse *)out)->verification);
}

static tw_err reject_student(tw_billing_ctx *c, const void *request, void *out)
{
    return tw_billing_reject_student(
        c, ((const Tw__V1__RejectStudentVerificationRequest *)request)->reason,
        &((Tw__V1__RejectStudentVerificationResponse *)out)->verification);
}

static tw_err get_metrics(tw_billing_ctx *c, const void *request, void *out)
{
    const Tw__V1__GetBillingMetricsRequest *in = request;
    Tw__V1__GetBillingMetricsResponse *r;
    tw_err err = tw_billing_metrics(c, in->days, in->months, &r);
    if (!err)
        answer(out, r);
    return err;
}

/* ---- The steps by method ------------------------------------------------------------- */

static const struct {
    const char *method;
    billing_step *step;      /* or, for a List: */
    billing_list_step *list; /* paged by the kit */
    unsigned how;
} steps[] = {
    {"ListPlans", NULL, list_plans, 0},
    {"GetSubscription", get_subscription, NULL, 0},
    {"CreateSubscription", create_subscription, NULL, ON_POOL},
    {"ChangePlan", change_plan, NULL, ON_POOL},
    {"CancelSubscription", cancel_subscription, NULL, ON_POOL},
    {"ResumeSubscription", resume_subscription, NULL, ON_POOL},
    {"ListPayments", NULL, list_payments, 0},
    {"ListPaymentMethods", NULL, list_payment_methods, 0},
    {"AttachPaymentMethod", attach_payment_method, NULL, ON_POOL},
    {"DetachPaymentMethod", detach_payment_method, NULL, ON_POOL},
    {"SetDefaultPaymentMethod", set_default_payment_method, NULL, ON_POOL},
    {"GetUsage", get_usage, NULL, 0},
    /* On the pool: it writes a document blob, or sends a code. */
    {"SubmitStudentVerification", submit_student, NULL, ON_POOL},
    {"ConfirmStudentEmail", confirm_student_email, NULL, 0},
    {"GetStudentVerification", get_student, NULL, 0},
    {"CreatePlan", create_plan, NULL, ON_POOL},
    {"UpdatePlan", update_plan, NULL, 0},
    {"SetPlanPrice", set_plan_price, NULL, ON_POOL},
    {"ListAllPlans", NULL, list_all_plans, 0},
    {"GrantSubscription", grant_subscription, NULL, NAMED_USER},
    {"RevokeSubscription", revoke_subscription, NULL, NAMED_USER},
    {"SuspendSubscription", suspend_subscription, NULL, NAMED_USER | ON_POOL},
    {"ResyncSubscription", resync_subscription, NULL, NAMED_USER | ON_POOL},
    {"RefundPayment", refund_payment, NULL, NAMED_USER | ON_POOL},
    {"RetryInvoice", retry_invoice, NULL, NAMED_USER | ON_POOL},
    {"ExportBillingRecords", export_records, NULL, NAMED_USER},
    {"ListWebhookEvents", NULL, list_webhook_events, 0},
    {"ReplayWebhookEvent", replay_webhook_event, NULL, ON_POOL},
    {"ListStudentVerifications", NULL, list_students, 0},
    {"ApproveStudentVerification", approve_student, NULL, NAMED_USER},
    {"RejectStudentVerification", reject_student, NULL, NAMED_USER},
    {"GetBillingMetrics", get_metrics, NULL, 0},
};

/* ---- Running a step ------------------------------------------------------------------- */

/* The user_id of an admin request (the engine checked its form and that
 * it is set). */
static bool named_user(tw_call *call, tw_id *out)
{
    const ProtobufCMessage *in = tw_call_request(call);
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(in->descriptor, "user_id");
    return f != NULL && tw_kit_id(*(const char *const *)((const char *)in + f->offset), out);
}

/* A refusal of the domain as the call's status: its bad fields are on the
 * call's violation list already. */
static tw_err refusal(tw_call *call, const tw_billing_ctx *c, tw_err err)
{
    if (err == TW_OK)
        return TW_OK;
    if (tw_violations_any(c->bad))
        return err;
    if (c->why.retry_after_ms > 0)
        tw_call_retry_after(call, c->why.retry_after_ms);
    if (c->why.message[0] != '\0')
        return tw_call_error(call, err, "%s", c->why.message);
    return tw_kit_fail(call, err);
}

/* The response is already in place: the write only remembers it. */
static tw_err nothing_more(tw_txn *t, void *ctx)
{
    (void)t, (void)ctx;
    return TW_OK;
}

/*
 * A request with a request_id is answered as the kit answers every write
 * (kit.h): before the step, the answer of an earlier request with the id
 * is replayed, and the id with another request refused; after a
 * successful step, its answer is remembered with the id. Billing cannot
 * take the step inside that transaction (it calls Stripe), so the kit
 * claims the id with the request's hash before the step (tw_kit_claim):
 * a retry after a crash anywhere between the claim and the remembered
 * answer is refused when its request differs, and otherwise runs the
 * step again, whose Stripe calls carry idempotency keys made of the
 * request_id (or recorded by the domain before the call, with
 * c->request_sha256, as CreateSubscription does), so Stripe does nothing
 * twice.
 */
static tw_err remember(tw_call *call, tw_store *store, const tw_billing_ctx *c,
                       const tw_kit_memo *memo, tw_err err)
{
    err = refusal(call, c, err);
    if (err == TW_OK && memo->key != NULL)
        err = tw_kit_write_memo(call, store, memo, nothing_more, NULL, NULL);
    return err;
}

struct pooled {
    tw_call *call;
    tw_store *store;
    billing_step *step;
    tw_billing_ctx c;
    const tw_kit_memo *memo;
};

static void run_pooled(void *arg)
{
    struct pooled *p = arg;
    tw_err err = p->step(&p->c, tw_call_request(p->call), tw_call_response(p->call));
    tw_call_finish(p->call, remember(p->call, p->store, &p->c, p->memo, err));
}

/* A List: its paging read and its next token signed by the kit. */
static tw_err run_list(tw_call *call, tw_store *store, tw_billing_ctx *c, billing_list_step *list,
                       const ProtobufCMessage *request, ProtobufCMessage *response)
{
    tw_kit_page kp;
    tw_err err = tw_kit_page_open(call, store, &kp);
    if (err)
        return err;
    tw_billing_page page = {.size = kp.size, .cursor = kp.cursor, .cursor_len = kp.cursor_len};
    if ((err = refusal(call, c, list(c, &page, request, response))))
        return err;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(response->descriptor, "next_page_token");
    if (f == NULL)
        return TW_ERR_INTERNAL;
    return tw_kit_page_close(call, &kp, page.next, page.next_len,
                             (char **)((char *)response + f->offset));
}

/* Every row's handler: finds its step, sets up whose records it reaches,
 * and runs it here or on the slow pool. */
static tw_err billing_call(tw_call *call, const ProtobufCMessage *request,
                           ProtobufCMessage *response)
{
    tw_app *app = tw_call_service_ctx(call);
    const char *method = tw_call_method(call)->name;
    size_t i = 0;
    while (i < sizeof steps / sizeof steps[0] && strcmp(steps[i].method, method) != 0)
        i++;
    if (i == sizeof steps / sizeof steps[0])
        return TW_ERR_INTERNAL;
    if (app->billing == NULL)
        return tw_call_error(call, TW_ERR_INTERNAL, "billing is not running in this process");
    tw_billing_ctx c = {
        .billing = app->billing,
        .now_ms = tw_call_now_ms(call),
        .arena = tw_call_arena(call),
        .bad = tw_call_violations(call),
    };
    if (steps[i].how & NAMED_USER) {
        if (!named_user(call, &c.user))
            return tw_call_field_violation(call, "user_id", "is required");
    } else if (tw_call_caller(call) != NULL) {
        c.user = *tw_call_caller(call);
    } else if (!(tw_call_method(call)->flags & TW_ADMIN)) {
        return tw_call_user(call, &c.user); /* the operator socket acts for nobody */
    }
    if (steps[i].list != NULL)
        return run_list(call, app->store, &c, steps[i].list, request, response);

    tw_kit_memo *memo = tw_arena_alloc(c.arena, sizeof *memo);
    if (memo == NULL)
        return TW_ERR_NO_MEMORY;
    bool replayed = false;
    tw_err err = tw_kit_memo_of(call, request, memo);
    if (!err)
        err = tw_kit_claim(call, app->store, memo, &replayed);
    if (err || replayed)
        return err;
    c.request_sha256 = memo->key != NULL ? memo->sha256 : NULL;
    if (!(steps[i].how & ON_POOL))
        return remember(call, app->store, &c, memo, steps[i].step(&c, request, response));
    struct pooled *p = tw_arena_alloc(c.arena, sizeof *p);
    if (p == NULL)
        return TW_ERR_NO_MEMORY;
    *p = (struct pooled){call, app->store, steps[i].step, c, memo};
    err = tw_pool_submit(app->slow_pool, run_pooled, p);
    if (err == TW_ERR_BUSY)
        return tw_call_error(call, TW_ERR_BUSY, "too many payment calls at once: retry shortly");
    return err ? err : TW_DEFERRED;
}

/* ---- DownloadStudentDocument ------------------------------------------------------- */

#define DOCUMENT_CHUNK (256u * 1024)

struct download {
    tw_blob_reader *reader;
    uint8_t *buffer;
};

static tw_err download_step(tw_call *call, void *ctx, bool *end)
{
    struct download *d = ctx;
    Tw__V1__DownloadStudentDocumentResponse out = TW__V1__DOWNLOAD_STUDENT_DOCUMENT_RESPONSE__INIT;
    /* A burst of four chunks (1 MiB), then the next once they drained. */
    for (int burst = 0; burst < 4; burst++) {
        size_t n = 0;
        tw_err err = tw_blob_reader_read(d->reader, d->buffer, DOCUMENT_CHUNK, &n);
        if (err || n == 0) {
            *end = true;
            return err;
        }
        out.chunk = (ProtobufCBinaryData){n, d->buffer};
        if ((err = tw_call_send(call, &out.base))) {
            *end = true;
            return err;
        }
    }
    return TW_OK;
}

static void download_done(void *ctx)
{
    tw_blob_reader_close(((struct download *)ctx)->reader);
}

static tw_err download_document(tw_call *call, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    (void)request;
    (void)response;
    tw_app *app = tw_call_service_ctx(call);
    tw_billing_ctx c = {.billing = app->billing,
                        .now_ms = tw_call_now_ms(call),
                        .arena = tw_call_arena(call),
                        .bad = tw_call_violations(call)};
    if (app->billing == NULL)
        return tw_call_error(call, TW_ERR_INTERNAL, "billing is not running in this process");
    if (!named_user(call, &c.user))
        return tw_call_field_violation(call, "user_id", "is required");
    const char *key, *content_type;
    tw_err err = tw_billing_student_document(&c, &key, &content_type);
    if (err)
        return refusal(call, &c, err);
    struct download *d = tw_arena_alloc(c.arena, sizeof *d);
    if (d == NULL || (d->buffer = tw_arena_alloc(c.arena, DOCUMENT_CHUNK)) == NULL)
        return TW_ERR_NO_MEMORY;
    if ((err = tw_blob_reader_open(app->blobs, key, 0, &d->reader, NULL)))
        return tw_kit_fail(call, err);
    err = tw_paced_stream_start(call, app->slow_pool, download_step, download_done, d);
    if (err != TW_DEFERRED)
        tw_blob_reader_close(d->reader);
    return err;
}

/* ---- Hooks ------------------------------------------------------------------------------ */

/* The call's answer to err from counting usage: QUOTA_001 with the limit
 * and when the period resets (storage bytes never reset: they are freed
 * by deleting). */
static tw_err usage_refusal(tw_call *call, tw_err err, const tw_billing_quota *q, int64_t now_ms)
{
    if (err == TW_ERR_QUOTA_EXCEEDED && q->reset_ms == 0)
        return tw_call_error(call, err,
                             "plan limit reached: %s %lld of %lld used; deleting voice notes "
                             "frees storage",
                             tw_billing_resource_name(q->resource), (long long)q->used,
                             (long long)q->limit);
    if (err == TW_ERR_QUOTA_EXCEEDED) {
        char reset[32];
        time_t secs = (time_t)(q->reset_ms / 1000);
        struct tm tm;
        strftime(reset, sizeof reset, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&secs, &tm));
        tw_call_retry_after(call, q->reset_ms > now_ms ? q->reset_ms - now_ms : 0);
        return tw_call_error(
            call, err, "plan limit reached: %s %lld of %lld used this period; resets at %s",
            tw_billing_resource_name(q->resource), (long long)q->used, (long long)q->limit, reset);
    }
    if (err && err != TW_ERR_NO_MEMORY)
        tw_call_log_detail(call, "%s", tw_store_last_error());
    return err;
}

/* What a TW_METERED_AUDIO call must have left of before it starts. */
static const int audio_resources[] = {TW_RESOURCE_VOICE_MINUTES, TW_RESOURCE_STORAGE_BYTES};

/* The gate's meter (app->meter): one API call of the caller against their
 * plan's limit for the period (with plan_limits count, counted whatever
 * the limit); for a TW_METERED_AUDIO call, first some voice minutes and
 * storage bytes left (the upload consumes them at its end, through
 * app->use). */
static tw_err meter_call(tw_app *app, tw_call *call)
{
    const tw_id *user = tw_call_caller(call);
    if (user == NULL || app->billing == NULL)
        return TW_OK;
    bool enforce = app->cfg->plan_limits != TW_PLAN_LIMITS_COUNT;
    tw_billing_quota q;
    int64_t now_ms = tw_call_now_ms(call);
    tw_err err = TW_OK;
    bool audio = tw_call_method(call)->flags & TW_METERED_AUDIO;
    for (size_t i = 0; audio && enforce && !err && i < sizeof audio_resources / sizeof(int); i++)
        err = tw_billing_usage_check(app->billing, user, audio_resources[i], 1, now_ms, &q);
    if (!err && enforce)
        err = tw_billing_usage_consume(app->billing, user, TW_RESOURCE_API_CALLS, 1, now_ms, &q);
    else if (!err)
        err = tw_billing_usage_add(app->billing, user, TW_RESOURCE_API_CALLS, 1, now_ms);
    return usage_refusal(call, err, &q, now_ms);
}

/* app->use: with plan_limits count, counted whatever the limit. */
static tw_err use_resource(tw_app *app, tw_call *call, tw_txn *t, const tw_id *user, int resource,
                           int64_t amount, int64_t now_ms)
{
    if (app->billing == NULL)
        return TW_OK;
    if (amount <= 0 || app->cfg->plan_limits == TW_PLAN_LIMITS_COUNT)
        return tw_txn_billing_usage_add(t, app->billing, user, resource, amount, now_ms);
    tw_billing_quota q;
    tw_err err = tw_txn_billing_usage_consume(t, app->billing, user, resource, amount, now_ms, &q);
    return call != NULL ? usage_refusal(call, err, &q, now_ms) : err;
}

static tw_err attach(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen)
{
    (void)engine;
    (void)errbuf;
    (void)errlen;
    app->meter = meter_call;
    app->use = use_resource;
    return TW_OK;
}

static tw_err forget_user(tw_app *app, const tw_id *user)
{
    return app->billing ? tw_billing_forget_user(app->billing, user, tw_store_now_ms(app->store))
                        : TW_OK;
}

static tw_err run_job(tw_app *app, const tw_job *job, tw_job_failure *failure)
{
    if (app->billing == NULL) {
        snprintf(failure->error, sizeof failure->error, "billing is not running");
        return TW_ERR_INTERNAL;
    }
    return tw_billing_job_run(app->billing, job, tw_store_now_ms(app->store), failure->error,
                              sizeof failure->error, &failure->retry_after_ms);
}

/* Leases outlast a job's Stripe calls with their retries. */
#define JOB_LEASE_MS (10 * 60 * 1000)

static const tw_job_type billing_jobs[] = {
    {TW_BILLING_JOB_WEBHOOK, run_job, JOB_LEASE_MS},
    {TW_BILLING_JOB_PERIOD_END, run_job, JOB_LEASE_MS},
    {TW_BILLING_JOB_REPRICE, run_job, JOB_LEASE_MS},
    {TW_BILLING_JOB_CARD_EXPIRY, run_job, JOB_LEASE_MS},
    {TW_BILLING_JOB_STUDENT_EXPIRY, run_job, JOB_LEASE_MS},
    {NULL},
};

/* ---- Tables ------------------------------------------------------------------------------ */

static const tw_method billing_methods[] = {
    {"ListPlans", TW_UNARY, 0, .handle = billing_call},
    {"GetSubscription", TW_UNARY, 0, .handle = billing_call},
    {"CreateSubscription", TW_UNARY, TW_WRITE, .handle = billing_call},
    {"ChangePlan", TW_UNARY, TW_WRITE, .handle = billing_call},
    {"CancelSubscription", TW_UNARY, TW_WRITE, .handle = billing_call},
    {"ResumeSubscription", TW_UNARY, TW_WRITE, .handle = billing_call},
    {"ListPayments", TW_UNARY, 0, .handle = billing_call},
    {"ListPaymentMethods", TW_UNARY, 0, .handle = billing_call},
    {"AttachPaymentMethod", TW_UNARY, TW_WRITE, .handle = billing_call},
    {"DetachPaymentMethod", TW_UNARY, TW_WRITE, .handle = billing_call},
    {"SetDefaultPaymentMethod", TW_UNARY, TW_WRITE, .handle = billing_call},
    {"GetUsage", TW_UNARY, 0, .handle = billing_call},
    {"SubmitStudentVerification", TW_UNARY, TW_WRITE, .handle = billing_call},
    {"ConfirmStudentEmail", TW_UNARY, TW_WRITE, .handle = billing_call},
    {"GetStudentVerification", TW_UNARY, 0, .handle = billing_call},
    {NULL},
};

static const tw_method billing_admin_methods[] = {
    {"CreatePlan", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = billing_call},
    {"UpdatePlan", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = billing_call},
    {"SetPlanPrice", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = billing_call},
    {"ListAllPlans", TW_UNARY, TW_ADMIN, .handle = billing_call},
    {"GrantSubscription", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = billing_call},
    {"RevokeSubscription", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = billing_call},
    {"SuspendSubscription", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = billing_call},
    {"ResyncSubscription", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = billing_call},
    {"RefundPayment", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = billing_call},
    {"RetryInvoice", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = billing_call},
    {"ExportBillingRecords", TW_UNARY, TW_ADMIN, .handle = billing_call},
    {"ListWebhookEvents", TW_UNARY, TW_ADMIN, .handle = billing_call},
    {"ReplayWebhookEvent", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = billing_call},
    {"ListStudentVerifications", TW_UNARY, TW_ADMIN, .handle = billing_call},
    {"ApproveStudentVerification", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = billing_call},
    {"RejectStudentVerification", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = billing_call},
    {"DownloadStudentDocument", TW_SERVER_STREAM, TW_ADMIN, .handle = download_document},
    {"GetBillingMetrics", TW_UNARY, TW_ADMIN, .handle = billing_call},
    {NULL},
};

/* The runbook's payment and webhook series, read by the alert rules in
 * docker/prometheus/alerts.yml. */
static const tw_service_counter billing_counters[] = {
    {"billing_payments", "tw_payments_total",
     "Payments by status: succeeded charges and failed attempts."},
    {"billing_refunds", "tw_refunds_total", "Refunds made."},
    {"billing_new_subscriptions", "tw_subscriptions_started_total",
     "Subscriptions that became live, by plan."},
    {"billing_cancellations", "tw_subscription_cancellations_total",
     "Subscriptions that ended (canceled or suspended), by plan."},
    {"billing_subscription_creations", "tw_subscription_creations_total",
     "Subscription creations ended, by result: succeeded (Stripe made it) or failed (refused "
     "for good, or died with its process and made nothing)."},
    {"billing_webhook_events", "tw_stripe_webhooks_total",
     "Stripe webhook events by type and outcome: received, then processed, ignored or failed "
     "(a first failed try)."},
    {NULL},
};

/* Gauges of the current UTC hour, from counters billing keeps one bucket
 * per hour of the day ("hour=HH"). */
static const struct {
    const char *counter, *metric, *help;
} hourly[] = {
    {"billing_payment_failures_max_per_user", "tw_payment_failed_attempts_max_per_user_1h",
     "The most failed payment attempts of any one user in the current UTC hour."},
};

static void billing_write_metrics(tw_app *app, FILE *out)
{
    int64_t now_ms = tw_store_now_ms(app->store);
    char dims[16];
    snprintf(dims, sizeof dims, "hour=%02d", (int)(now_ms / 3600000 % 24));
    for (size_t i = 0; i < sizeof hourly / sizeof hourly[0]; i++) {
        uint64_t value = 0;
        tw_counter ctr = {NULL, hourly[i].counter, dims};
        if (tw_store_counter_read(app->store, &ctr, tw_store_day(now_ms), 1, NULL, &value))
            continue;
        fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", hourly[i].metric, hourly[i].help,
                hourly[i].metric, hourly[i].metric, (unsigned long long)value);
    }
}

const tw_service_def tw_billing_service = {
    .rpc = {.descriptor = &tw__v1__billing_service__descriptor, .methods = billing_methods},
    .attach = attach,
    .forget_user = forget_user,
    .jobs = billing_jobs,
    .counters = billing_counters,
    .write_metrics = billing_write_metrics,
};

/* Its jobs and hooks are the user service's: one of each is enough. */
const tw_service_def tw_billing_admin_service = {
    .rpc = {.descriptor = &tw__v1__billing_admin_service__descriptor,
            .methods = billing_admin_methods},
};
