/*
 * Stripe's webhook events: received, stored raw, processed once.
 *
 * A delivery whose signature checks out is stored under
 * BILLING_WEBHOOK_EVENT(event id) with the time index
 * BILLING_WEBHOOK_BY_TIME(received, id) and a "billing_webhook" job, in
 * one transaction that reads the event's key for update: of any number of
 * deliveries of one event, even at the same moment, one stores it and
 * enqueues the job; the others only count a delivery. The HTTP side
 * answers 2xx at once.
 *
 * The job applies the event: subscription events (and a completed
 * checkout) read the subscription from Stripe again and store what Stripe
 * says now; invoice, payment intent and charge events merge into the
 * payment, whose fields only move forward; payment method events read the
 * payment method again. None of it depends on the order events arrive
 * in, and applying an event twice changes nothing more, so a replay or a
 * job run twice (its lease ran out) has one effect. The event record then
 * says processed, when, the outcome, or the error of the last try (the
 * job retries with backoff, waiting out Stripe's Retry-After).
 *
 * Counter billing_webhook_events, dims "type=<type or other>,outcome=
 * <received|processed|ignored|failed>", counts each event once per
 * outcome (failed: at its first failure).
 */
#include "billing_internal.h"

#include "tw_log.h"

#include <stdio.h>
#include <string.h>

#define EVENT_ID_MAX 255
#define LIST_DAYS    30

/* Finds the user an object of the event belongs to, by its customer. */
static bool user_of(tw_billing_ctx *c, const char *customer)
{
    return billing_customer_user(c->billing, customer, &c->user) == TW_OK;
}

typedef tw_err (*event_fn)(tw_billing_ctx *c, const tw_stripe_event *ev, bool *ignored);

static tw_err on_subscription(tw_billing_ctx *c, const tw_stripe_event *ev, bool *ignored)
{
    if (ev->subscription == NULL || !user_of(c, ev->subscription->customer)) {
        *ignored = true;
        return TW_OK;
    }
    return billing_sync_subscription(c, ev->subscription->id, false);
}

/* A Checkout Session we started names the user in client_reference_id:
 * the customer becomes theirs when it is not yet anybody's. */
static tw_err claim_customer_fn(tw_txn *t, void *ctx)
{
    tw_billing_ctx *c = ((void **)ctx)[0];
    const char *customer = ((void **)ctx)[1];
    tw_key k;
    billing_customer_key(&k, customer);
    tw_value v;
    tw_err err = tw_txn_get_for_update(t, &k, NULL, &v);
    if (err != TW_ERR_NOT_FOUND)
        return err;
    account_record *a;
    tw_key ak;
    billing_account_key(&ak, &c->user);
    if ((err = billing_get(NULL, t, true, &ak, c->arena, &a)) == TW_OK &&
        a->stripe_customer_id[0] != '\0')
        return TW_OK; /* the user has another customer: not ours to take */
    if (err && err != TW_ERR_NOT_FOUND)
        return err;
    if (err) {
        if ((a = tw_arena_alloc(c->arena, sizeof *a)) == NULL)
            return TW_ERR_NO_MEMORY;
        tw__store__v1__billing_account_record__init(a);
    }
    a->stripe_customer_id = (char *)customer;
    v.id = c->user;
    if ((err = tw_txn_put(t, &k, &v)))
        return err;
    return billing_put(t, &ak, a);
}

static tw_err on_checkout(tw_billing_ctx *c, const tw_stripe_event *ev, bool *ignored)
{
    const tw_stripe_checkout_session *s = ev->checkout_session;
    if (s == NULL || s->subscription[0] == '\0') {
        *ignored = true; /* a payment or setup session: nothing to mirror */
        return TW_OK;
    }
    if (!user_of(c, s->customer)) {
        if (!tw_id_parse(s->client_reference_id, &c->user)) {
            *ignored = true;
            return TW_OK;
        }
        void *ctx[] = {c, (void *)s->customer};
        tw_err err = tw_txn_run(c->billing->store, claim_customer_fn, ctx);
        if (err)
            return err;
        if (!user_of(c, s->customer)) {
            *ignored = true;
            return TW_OK;
        }
    }
    return billing_sync_subscription(c, s->subscription, false);
}

static tw_err on_invoice(tw_billing_ctx *c, const tw_stripe_event *ev, bool *ignored)
{
    if (ev->invoice == NULL || !user_of(c, ev->invoice->customer)) {
        *ignored = true;
        return TW_OK;
    }
    return billing_merge_invoice(c, ev->invoice);
}

static tw_err on_payment_intent(tw_billing_ctx *c, const tw_stripe_event *ev, bool *ignored)
{
    if (ev->payment_intent == NULL || !user_of(c, ev->payment_intent->customer)) {
        *ignored = true;
        return TW_OK;
    }
    return billing_merge_payment_intent(c, ev->payment_intent);
}

static tw_err on_charge(tw_billing_ctx *c, const tw_stripe_event *ev, bool *ignored)
{
    if (ev->charge == NULL || !user_of(c, ev->charge->customer)) {
        *ignored = true;
        return TW_OK;
    }
    return billing_merge_charge(c, ev->charge);
}

static tw_err on_payment_method(tw_billing_ctx *c, const tw_stripe_event *ev, bool *ignored)
{
    /* A detached one no longer names its customer; the event's previous
     * attributes do. */
    const tw_stripe_payment_method *pm = ev->payment_method;
    if (pm == NULL || (!user_of(c, pm->customer) && !user_of(c, ev->previous_customer))) {
        *ignored = true;
        return TW_OK;
    }
    return billing_sync_payment_method(c, pm->id);
}

/* The event types billing acts on; any other is stored and ignored. */
static const struct {
    const char *type;
    event_fn fn;
} handlers[] = {
    {"checkout.session.completed", on_checkout},
    {"customer.subscription.created", on_subscription},
    {"customer.subscription.updated", on_subscription},
    {"customer.subscription.deleted", on_subscription},
    {"customer.subscription.paused", on_subscription},
    {"customer.subscription.resumed", on_subscription},
    {"invoice.paid", on_invoice},
    {"invoice.payment_succeeded", on_invoice},
    {"invoice.payment_failed", on_invoice},
    {"payment_intent.succeeded", on_payment_intent},
    {"payment_intent.payment_failed", on_payment_intent},
    {"charge.refunded", on_charge},
    {"payment_method.attached", on_payment_method},
    {"payment_method.detached", on_payment_method},
    {"payment_method.updated", on_payment_method},
    {"payment_method.automatically_updated", on_payment_method},
};
#define N_HANDLERS (sizeof handlers / sizeof *handlers)

static event_fn handler_of(const char *type)
{
    for (size_t i = 0; i < N_HANDLERS; i++)
        if (strcmp(handlers[i].type, type) == 0)
            return handlers[i].fn;
    return NULL;
}

/* The type as counted: billing's own types by name, the rest as "other",
 * so that the counters stay a bounded set. */
static const char *counted_type(const char *type)
{
    return handler_of(type) ? type : "other";
}

static tw_err count_event(tw_txn *t, const char *type, const char *outcome, int64_t now_ms)
{
    char dims[128];
    snprintf(dims, sizeof dims, "type=%s,outcome=%s", counted_type(type), outcome);
    return billing_count(t, "billing_webhook_events", dims, now_ms, 1);
}

/* ---- Receiving ------------------------------------------------------------------------ */

static void event_key(tw_key *k, const char *id)
{
    tw_key_init(k, TW_KF_BILLING_WEBHOOK_EVENT);
    tw_key_str(k, id);
}

struct receive {
    const tw_stripe_event *ev;
    const void *body;
    size_t len;
    int64_t now_ms;
    tw_arena *arena;
    tw_webhook_delivery delivery;
};

static tw_err receive_fn(tw_txn *t, void *ctx)
{
    struct receive *w = ctx;
    tw_key k;
    event_key(&k, w->ev->id);
    event_record *r;
    tw_err err = billing_get(NULL, t, true, &k, w->arena, &r);
    if (err == TW_OK) {
        w->delivery = TW_WEBHOOK_DUPLICATE;
        r->delivery_count++;
        return billing_put(t, &k, r);
    }
    if (err != TW_ERR_NOT_FOUND)
        return err;
    w->delivery = TW_WEBHOOK_STORED;
    event_record rec = TW__STORE__V1__WEBHOOK_EVENT_RECORD__INIT;
    rec.id = (char *)w->ev->id;
    rec.type = (char *)w->ev->type;
    rec.create_unix_ms = w->ev->created_ms;
    rec.receive_unix_ms = w->now_ms;
    rec.delivery_count = 1;
    rec.object_id = (char *)w->ev->object_id;
    rec.payload = (ProtobufCBinaryData){w->len, (uint8_t *)w->body};
    rec.error = rec.outcome = "";
    tw_key by_time;
    tw_key_init(&by_time, TW_KF_BILLING_WEBHOOK_BY_TIME);
    tw_key_i64(&by_time, w->now_ms);
    tw_key_str(&by_time, rec.id);
    if ((err = billing_put(t, &k, &rec)) || (err = tw_txn_put(t, &by_time, NULL)) ||
        (err = count_event(t, rec.type, "received", w->now_ms)))
        return err;
    return billing_enqueue(t, TW_BILLING_JOB_WEBHOOK, NULL, rec.id, w->now_ms, w->now_ms);
}

static bool event_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > EVENT_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (id[i] < 0x21 || id[i] > 0x7e)
            return false;
    return true;
}

tw_err tw_billing_webhook_receive(tw_billing *b, const char *header, const void *body, size_t len,
                                  int64_t now_ms, tw_webhook_delivery *delivery, char *why,
                                  size_t why_len)
{
    tw_err err =
        tw_stripe_webhook_verify(&b->webhook, header, body, len, now_ms / MS_PER_S, why, why_len);
    if (err)
        return err;
    tw_arena *arena = tw_arena_new(8192);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_stripe_event ev;
    err = tw_stripe_event_parse(body, len, arena, &ev);
    if (err == TW_OK && (!event_id_ok(ev.id) || ev.type[0] == '\0'))
        err = TW_ERR_VALIDATION;
    if (err == TW_ERR_VALIDATION && why != NULL)
        snprintf(why, why_len, "signed, but not a Stripe event (id, type, created, data.object)");
    if (err == TW_OK) {
        struct receive w = {&ev, body, len, now_ms, arena, TW_WEBHOOK_STORED};
        if ((err = tw_txn_run(b->store, receive_fn, &w)) == TW_OK)
            *delivery = w.delivery;
    }
    tw_arena_free(arena);
    return err;
}

/* ---- Processing ------------------------------------------------------------------------ */

struct finish {
    const char *id;
    tw_err err;
    const char *error;
    bool ignored;
    bool replay;
    int64_t now_ms;
    tw_arena *arena;
    event_record *rec; /* out */
};

/* Records how processing went, and counts the outcome once. */
static tw_err finish_fn(tw_txn *t, void *ctx)
{
    struct finish *w = ctx;
    tw_key k;
    event_key(&k, w->id);
    event_record *r;
    tw_err err = billing_get(NULL, t, true, &k, w->arena, &r);
    if (err)
        return err;
    w->rec = r;
    r->process_attempts++;
    if (w->err) {
        r->error = (char *)w->error;
        if (!r->processed && r->process_attempts == 1)
            err = count_event(t, r->type, "failed", w->now_ms);
    } else {
        r->error = "";
        r->process_unix_ms = w->now_ms;
        if (!r->processed) {
            r->outcome = w->ignored ? "ignored" : "processed";
            err = count_event(t, r->type, r->outcome, w->now_ms);
        }
        r->processed = true;
    }
    return err ? err : billing_put(t, &k, r);
}

/* Applies a stored event (again, when replay), and records the outcome. */
static tw_err process(tw_billing *b, const char *id, bool replay, int64_t now_ms, tw_arena *arena,
                      tw_billing_refusal *why, event_record **out)
{
    *out = NULL;
    tw_key k;
    event_key(&k, id);
    event_record *r;
    tw_err err = billing_get(b->store, NULL, false, &k, arena, &r);
    if (err)
        return err;
    if (r->processed && !replay) {
        *out = r;
        return TW_OK;
    }
    tw_billing_ctx c = {.billing = b, .now_ms = now_ms, .arena = arena};
    tw_stripe_event ev;
    err = tw_stripe_event_parse((const char *)r->payload.data, r->payload.len, arena, &ev);
    event_fn fn = err ? NULL : handler_of(ev.type);
    bool ignored = fn == NULL;
    if (fn != NULL && b->stripe == NULL) {
        err = billing_need_stripe(&c);
    } else if (fn != NULL) {
        err = fn(&c, &ev, &ignored);
    }
    struct finish w = {id, err, "", ignored, replay, now_ms, arena, NULL};
    if (err)
        w.error = tw_arena_printf(arena, "%s%s%s", tw_err_name(err), c.why.message[0] ? ": " : "",
                                  c.why.message);
    tw_err done = tw_txn_run(b->store, finish_fn, &w);
    if (why != NULL)
        *why = c.why;
    *out = w.rec;
    return err ? err : done;
}

tw_err billing_webhook_job(tw_billing *b, const char *event_id, int64_t now_ms, tw_arena *arena,
                           char *error, size_t error_len, int64_t *retry_after_ms)
{
    tw_billing_refusal why = {0};
    event_record *r = NULL;
    tw_err err = process(b, event_id, false, now_ms, arena, &why, &r);
    if (err == TW_ERR_NOT_FOUND && r == NULL)
        return TW_OK; /* not stored: nothing to do */
    if (err) {
        snprintf(error, error_len, "%s", r != NULL && r->error ? r->error : tw_err_name(err));
        *retry_after_ms = why.retry_after_ms;
    }
    return err;
}

/* ---- Operators -------------------------------------------------------------------------- */

static Tw__V1__WebhookEvent *present_event(tw_arena *arena, const event_record *r, bool payload)
{
    Tw__V1__WebhookEvent *e = tw_arena_alloc(arena, sizeof *e);
    if (e == NULL)
        return NULL;
    tw__v1__webhook_event__init(e);
    e->id = r->id;
    e->type = r->type;
    e->create_time = tw_timestamp_new(arena, r->create_unix_ms);
    e->receive_time = tw_timestamp_new(arena, r->receive_unix_ms);
    e->processed = r->processed;
    if (r->processed)
        e->process_time = tw_timestamp_new(arena, r->process_unix_ms);
    e->error = r->error;
    e->delivery_count = r->delivery_count;
    e->process_attempts = r->process_attempts;
    e->object_id = r->object_id;
    e->payload =
        payload ? tw_arena_strndup(arena, (const char *)r->payload.data, r->payload.len) : "";
    return e->create_time && e->receive_time && e->payload ? e : NULL;
}

tw_err tw_billing_replay_webhook_event(tw_billing_ctx *c, const char *id,
                                       Tw__V1__WebhookEvent **out)
{
    if (!event_id_ok(id))
        return billing_bad(c, "id", "is not an event id");
    event_record *r = NULL;
    tw_err err = process(c->billing, id, true, c->now_ms, c->arena, &c->why, &r);
    if (err == TW_ERR_NOT_FOUND && r == NULL)
        return billing_refuse(c, err, "event %s not found", id);
    if (err)
        return err;
    return (*out = present_event(c->arena, r, true)) ? TW_OK : TW_ERR_NO_MEMORY;
}

struct events {
    tw_billing_ctx *c;
    const char *type;
    Tw__V1__WebhookEventFilter filter;
    Tw__V1__WebhookEvent **items;
    size_t n;
};

static tw_err event_item(void *ctx, tw_store_iter *it, bool *taken)
{
    struct events *l = ctx;
    tw_key_reader kr;
    tw_store_iter_read_key(it, &kr);
    int64_t ms; /* the page's range is checked by billing_page */
    char *id;
    tw_key_read_i64(&kr, &ms);
    tw_key_read_str(&kr, l->c->arena, &id, NULL);
    if (kr.err)
        return kr.err;
    tw_key k;
    event_key(&k, id);
    event_record *r;
    tw_err err = billing_get(l->c->billing->store, NULL, false, &k, l->c->arena, &r);
    if (err == TW_ERR_NOT_FOUND)
        return TW_OK;
    if (err)
        return err;
    if (l->type[0] != '\0' && strcmp(r->type, l->type) != 0)
        return TW_OK;
    switch (l->filter) {
    case TW__V1__WEBHOOK_EVENT_FILTER__WEBHOOK_EVENT_FILTER_PROCESSED:
        if (!r->processed)
            return TW_OK;
        break;
    case TW__V1__WEBHOOK_EVENT_FILTER__WEBHOOK_EVENT_FILTER_UNPROCESSED:
        if (r->processed)
            return TW_OK;
        break;
    case TW__V1__WEBHOOK_EVENT_FILTER__WEBHOOK_EVENT_FILTER_FAILED:
        if (r->processed || r->error[0] == '\0')
            return TW_OK;
        break;
    default:
        break;
    }
    if ((l->items[l->n++] = present_event(l->c->arena, r, false)) == NULL)
        return TW_ERR_NO_MEMORY;
    *taken = true;
    return TW_OK;
}

tw_err tw_billing_list_webhook_events(tw_billing_ctx *c, const char *type,
                                      Tw__V1__WebhookEventFilter filter, int64_t start_ms,
                                      int64_t end_ms, tw_billing_page *page,
                                      Tw__V1__ListWebhookEventsResponse **out)
{
    size_t before = tw_violations_total(c->bad);
    if (strlen(type) > 100)
        billing_bad(c, "type", "is longer than 100 characters");
    if (filter < 0 || filter > TW__V1__WEBHOOK_EVENT_FILTER__WEBHOOK_EVENT_FILTER_FAILED)
        billing_bad(c, "filter", "is not a known filter");
    if (end_ms == 0)
        end_ms = c->now_ms + 1;
    if (start_ms == 0)
        start_ms = end_ms - LIST_DAYS * MS_PER_DAY;
    if (start_ms >= end_ms)
        billing_bad(c, "start_time", "must be before end_time");
    if (billing_bad_since(c, before))
        return TW_ERR_VALIDATION;
    struct events l = {c, type, filter, NULL, 0};
    if ((l.items = tw_arena_alloc(c->arena, (TW_PAGE_SIZE_MAX + 1) * sizeof *l.items)) == NULL)
        return TW_ERR_NO_MEMORY;
    Tw__V1__ListWebhookEventsResponse *r = tw_arena_alloc(c->arena, sizeof *r);
    if (r == NULL)
        return TW_ERR_NO_MEMORY;
    tw__v1__list_webhook_events_response__init(r);
    tw_key prefix, first, stop;
    tw_key_init(&prefix, TW_KF_BILLING_WEBHOOK_BY_TIME);
    first = stop = prefix;
    tw_key_i64(&first, end_ms);  /* newest first: keys before end_ms */
    tw_key_i64(&stop, start_ms); /* down to the first key of start_ms */
    tw_err err = billing_page(c, &prefix, &first, &stop, true, page, event_item, &l);
    r->events = l.items;
    r->n_events = l.n;
    *out = r;
    return err;
}

const char *billing_webhook_type(size_t i)
{
    return i < N_HANDLERS ? handlers[i].type : i == N_HANDLERS ? "other" : NULL;
}
