/*
 * Entitlements and usage.
 *
 * BILLING_ENTITLEMENT(user) says which plan applies, for which billing
 * period and until when (account.c rewrites it with every change of the
 * subscription or student verification); with the plan it answers every
 * limit and feature check. A user without one is on the free plan; so is
 * one whose granted or canceled plan ran out (valid_until), before the job
 * that ends it has run. The free plan's period is the UTC calendar month;
 * a subscription's period comes from Stripe and, if a renewal has not been
 * recorded yet when its end passes, goes on by the plan's interval.
 *
 * Usage is counted in BILLING_USAGE(user, resource, period start): a new
 * period is a new key that starts at zero, so nothing is deleted when a
 * period rolls over (old periods stay, as history). Consuming reads the
 * count for update and writes the new one in one transaction, so
 * concurrent calls never pass the limit together; counts not yet written
 * (the meter, below) are added to what the store says. Crossing 80 % of a limit
 * counts billing_usage_high (dims "resource=<name>") and lists the user in
 * the alert index for that day.
 *
 * Who consumes what, all through this file and the plan's limits:
 *  - api_calls: the gate's meter, one per TW_METERED call.
 *  - voice_minutes (a flow, per period) and storage_bytes (a level: what
 *    is stored now, one key with period start 0 that never rolls over and
 *    is given back when the note is deleted): a voice upload. The gate
 *    refuses a TW_METERED_AUDIO call when either is used up; the upload
 *    learns the duration and size only at its end, and then consumes both
 *    in the note's own transaction, refused if that goes over the limit
 *    (the note is not stored). Minutes are counted per note, rounded up.
 *  - ai_requests: no assistant service yet; it has its limit, and the
 *    assistant will consume it through the same calls (tw_billing_usage_*
 *    or the app's use hook), one per request.
 */
#include "billing_internal.h"

#include <stdio.h>
#include <string.h>

/* How many periods a stale period is carried forward at most (a century
 * of months). */
#define MAX_ROLLS 1200

static const char *const resource_names[TW_RESOURCE_COUNT] = {
    [TW_RESOURCE_API_CALLS] = "api_calls",
    [TW_RESOURCE_VOICE_MINUTES] = "voice_minutes",
    [TW_RESOURCE_AI_REQUESTS] = "ai_requests",
    [TW_RESOURCE_STORAGE_BYTES] = "storage_bytes",
};

const char *tw_billing_resource_name(int resource)
{
    return resource > 0 && resource < TW_RESOURCE_COUNT ? resource_names[resource] : "";
}

tw_err tw_billing_entitlement_get(tw_billing *b, const tw_id *user, int64_t now_ms, tw_arena *arena,
                                  tw_billing_entitlement *out)
{
    memset(out, 0, sizeof *out);
    tw_key k;
    billing_entitlement_key(&k, user);
    entitlement_record *e;
    tw_err err = billing_get(b->store, NULL, false, &k, arena, &e);
    entitlement_record none = TW__STORE__V1__ENTITLEMENT_RECORD__INIT;
    if (err == TW_ERR_NOT_FOUND) {
        none.plan_id = TW_FREE_PLAN;
        e = &none;
    } else if (err) {
        return err;
    }
    bool ran_out = e->valid_until_unix_ms > 0 && now_ms >= e->valid_until_unix_ms;
    const char *plan_id = ran_out ? TW_FREE_PLAN : e->plan_id;
    plan_record *plan;
    err = billing_plan_load(b, NULL, plan_id, arena, &plan);
    if (err == TW_ERR_NOT_FOUND) {
        plan_id = TW_FREE_PLAN;
        err = billing_plan_load(b, NULL, plan_id, arena, &plan);
    }
    if (err)
        return err;
    out->plan_id = plan->id;
    out->features = plan->features;
    out->n_features = plan->n_features;
    for (int r = 1; r < TW_RESOURCE_COUNT; r++)
        out->limits[r] = billing_plan_limit(plan, r);
    out->student = e->student_until_unix_ms > now_ms;
    if (strcmp(plan_id, TW_FREE_PLAN) == 0 || e->period_end_unix_ms <= e->period_start_unix_ms) {
        out->period_start_ms = billing_month_start(now_ms);
        out->period_end_ms = billing_add_interval(out->period_start_ms, INTERVAL_MONTH, 1);
    } else {
        int interval = e->interval == INTERVAL_YEAR ? INTERVAL_YEAR : INTERVAL_MONTH;
        int64_t start = e->period_start_unix_ms, end = e->period_end_unix_ms;
        for (int i = 0; i < MAX_ROLLS && now_ms >= end; i++) {
            start = end;
            end = billing_add_interval(end, interval, 1);
        }
        out->period_start_ms = start;
        out->period_end_ms = end;
    }
    out->until_ms = out->period_end_ms;
    if (!ran_out && e->valid_until_unix_ms > 0 && e->valid_until_unix_ms < out->until_ms)
        out->until_ms = e->valid_until_unix_ms;
    if (out->student && e->student_until_unix_ms < out->until_ms)
        out->until_ms = e->student_until_unix_ms;
    return TW_OK;
}

/* Storage is a level, not a flow: counted in one key for good. */
static bool is_level(int resource)
{
    return resource == TW_RESOURCE_STORAGE_BYTES;
}

/* The key of resource's count in the period starting at period_start_ms
 * (any period: 0, for a level). */
static void usage_key(tw_key *k, const tw_id *user, int resource, int64_t period_start_ms)
{
    if (is_level(resource))
        period_start_ms = 0;
    tw_key_init(k, TW_KF_BILLING_USAGE);
    tw_key_id(k, user);
    tw_key_u32(k, (uint32_t)resource);
    tw_key_i64(k, period_start_ms);
}

enum use_mode {
    USE_ADD,     /* count whatever the limit; a negative amount gives back */
    USE_CONSUME, /* count, refused over the limit */
    USE_CHECK,   /* refused over the limit, counts nothing */
};

struct use {
    const tw_id *user;
    int resource;
    int64_t amount;
    int64_t now_ms;
    enum use_mode mode;
    const tw_billing_entitlement *ent;
    tw_billing_quota *quota;
    int64_t pending; /* counted by the meter, not written: used, too */
};

/* Whether w's amount goes over its limit on top of used: fills w->quota. */
static bool over_limit(const struct use *w, int64_t used)
{
    int64_t limit = w->ent->limits[w->resource];
    if (w->mode == USE_ADD || limit < 0 || used + w->amount <= limit)
        return false;
    if (w->quota != NULL)
        *w->quota = (tw_billing_quota){w->resource, used, limit,
                                       is_level(w->resource) ? 0 : w->ent->period_end_ms};
    return true;
}

/* Whether going from used to used + amount crosses 80 % of limit. */
static bool crosses_80_percent(int64_t used, int64_t amount, int64_t limit)
{
    return limit > 0 && used * 5 <= limit * 4 && (used + amount) * 5 > limit * 4;
}

/* Adds w's amount in t (never below zero); refused over the limit unless
 * w->mode is USE_ADD. */
static tw_err use_in(tw_txn *t, struct use *w)
{
    tw_key k;
    usage_key(&k, w->user, w->resource, w->ent->period_start_ms);
    tw_value v = {0};
    tw_err err = tw_txn_get_for_update(t, &k, NULL, &v);
    if (err && err != TW_ERR_NOT_FOUND)
        return err;
    int64_t stored = err ? 0 : (int64_t)v.u64, used = stored + w->pending;
    int64_t limit = w->ent->limits[w->resource];
    if (over_limit(w, used))
        return TW_ERR_QUOTA_EXCEEDED;
    if (w->mode == USE_CHECK)
        return TW_OK;
    v.u64 = (uint64_t)(stored + w->amount > 0 ? stored + w->amount : 0);
    if ((err = tw_txn_put(t, &k, &v)))
        return err;
    if (crosses_80_percent(used, w->amount, limit)) {
        char dims[48], kind[64];
        snprintf(dims, sizeof dims, "resource=%s", resource_names[w->resource]);
        snprintf(kind, sizeof kind, "usage_above_80_percent:%s", resource_names[w->resource]);
        if ((err = billing_count(t, "billing_usage_high", dims, w->now_ms, 1)))
            return err;
        err = billing_alert(t, w->now_ms - w->now_ms % MS_PER_DAY, w->user, kind);
    }
    return err;
}

/* ---- The meter --------------------------------------------------------------------- */

/*
 * Counts made in a transaction of their own (tw_billing_usage_consume and
 * _add: the gate's API-call meter, one per metered call) are kept in
 * memory, a slot per user and resource, and written in one transaction
 * per METER_BATCH counts or once the oldest is METER_AGE_MS old (checked
 * at the next count), whichever comes first; and at once when a count
 * crosses 80 % of its limit, so that the alert is on time. Every read of a
 * count (limits, GetUsage, a caller's transaction) adds what is pending,
 * and the slot's lock serialises a user's counts, so limits stay exact
 * without a write per call, and a user's calls at once never conflict.
 * The writes do not wait for the WAL sync; the next commit that does makes
 * them durable. A crash loses what is pending: fewer than METER_BATCH
 * counts per user and resource, in the user's favour. Twd writes every
 * slot when it stops (tw_billing_usage_flush).
 *
 * The slot also keeps what the count is checked against: the limit and
 * period of the user's entitlement, and the count the store has. The
 * entitlement, the plans and the counts are cached families
 * (tw_keyspace.h), so the slot trusts what it read while the user's write
 * epoch and the shared one are as they were before the read, and until
 * the entitlement's answer changes with time (until_ms). A count then
 * reads nothing: those reads were a tenth of a metered write's
 * instructions. The meter's own writes move the user's epoch, so the slot
 * reads again after each.
 */
#define METER_BATCH  64
#define METER_AGE_MS 1000

static struct billing_meter_slot *meter_slot(tw_billing *b, const tw_id *user, int resource)
{
    uint64_t h;
    memcpy(&h, user->bytes + TW_ID_BYTES - sizeof h, sizeof h); /* a UUIDv7's random bits */
    return &b->meter[(h ^ (uint64_t)resource * 0x9e3779b97f4a7c15u) % BILLING_METER_SLOTS];
}

static bool meter_holds(const struct billing_meter_slot *m, const tw_id *user, int resource,
                        int64_t period_start_ms)
{
    return m->held && m->resource == resource && m->period_start_ms == period_start_ms &&
           memcmp(m->user.bytes, user->bytes, TW_ID_BYTES) == 0;
}

/* Whether what m read of the store still holds for user's resource now
 * (in the period m holds: whether that is still the entitlement's period
 * is what the epochs and until_ms answer). */
static bool meter_knows(tw_billing *b, const struct billing_meter_slot *m, const tw_id *user,
                        int resource, int64_t now_ms)
{
    return m->known && meter_holds(m, user, resource, m->period_start_ms) && now_ms < m->until_ms &&
           m->epoch == tw_store_epoch(b->store, user) &&
           m->shared_epoch == tw_store_epoch(b->store, NULL);
}

static tw_err meter_write_fn(tw_txn *t, void *ctx)
{
    tw_txn_skip_sync(t);
    return use_in(t, ctx);
}

/* Writes m's pending counts; call with m locked. */
static tw_err meter_write(tw_billing *b, struct billing_meter_slot *m, int64_t now_ms)
{
    if (!m->held || m->pending == 0)
        return TW_OK;
    tw_billing_entitlement ent = {.period_start_ms = m->period_start_ms};
    ent.limits[m->resource] = m->limit;
    struct use w = {&m->user, m->resource, m->pending, now_ms, USE_ADD, &ent, NULL, 0};
    tw_err err = tw_txn_run(b->store, meter_write_fn, &w);
    if (err == TW_OK)
        m->pending = 0;
    m->known = false; /* the write moved the user's epoch */
    return err;
}

/* Makes m (locked) hold user's count of resource in the period of their
 * entitlement now, as the store has it: what m held before is written
 * first when it was another user's, resource's or period's. */
static tw_err meter_learn(tw_billing *b, struct billing_meter_slot *m, const tw_id *user,
                          int resource, int64_t now_ms)
{
    /* Noted before the reads: a commit that lands during them moves an
     * epoch past what is kept, so it is read again next time. */
    uint64_t epoch = tw_store_epoch(b->store, user);
    uint64_t shared_epoch = tw_store_epoch(b->store, NULL);
    m->known = false;
    tw_arena *arena = tw_arena_new(2048);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_billing_entitlement ent;
    tw_err err = tw_billing_entitlement_get(b, user, now_ms, arena, &ent);
    tw_arena_free(arena);
    if (err)
        return err;
    if (!meter_holds(m, user, resource, ent.period_start_ms)) {
        if ((err = meter_write(b, m, now_ms)))
            return err;
        m->held = true;
        m->user = *user;
        m->resource = resource;
        m->period_start_ms = ent.period_start_ms;
        m->pending = 0;
    }
    tw_key k;
    usage_key(&k, user, resource, ent.period_start_ms);
    tw_value v = {0};
    err = tw_store_get(b->store, &k, NULL, &v);
    if (err && err != TW_ERR_NOT_FOUND)
        return err;
    m->stored = err ? 0 : (int64_t)v.u64;
    m->period_end_ms = ent.period_end_ms;
    m->limit = ent.limits[resource];
    m->until_ms = ent.until_ms;
    m->epoch = epoch;
    m->shared_epoch = shared_epoch;
    m->known = true;
    return TW_OK;
}

/* What w's slot has pending for w's user, resource and period. */
static int64_t meter_pending(tw_billing *b, const struct use *w)
{
    struct billing_meter_slot *m = meter_slot(b, w->user, w->resource);
    pthread_mutex_lock(&m->lock);
    int64_t n = meter_holds(m, w->user, w->resource, w->ent->period_start_ms) ? m->pending : 0;
    pthread_mutex_unlock(&m->lock);
    return n;
}

/* Counts w (amount > 0, not USE_CHECK) in m, which knows the store; call
 * with m locked. */
static tw_err meter_count(tw_billing *b, struct billing_meter_slot *m, struct use *w)
{
    int64_t used = m->stored + m->pending;
    if (over_limit(w, used))
        return TW_ERR_QUOTA_EXCEEDED;
    if (m->pending == 0)
        m->pending_ms = w->now_ms;
    m->pending += w->amount;
    if (crosses_80_percent(used, w->amount, m->limit) || m->pending >= METER_BATCH ||
        w->now_ms - m->pending_ms >= METER_AGE_MS)
        return meter_write(b, m, w->now_ms);
    return TW_OK;
}

/* amount of resource for user in a transaction of its own: counted by the
 * meter; a check answered from the slot; a give-back written with the
 * slot's pending. */
static tw_err meter_use(tw_billing *b, const tw_id *user, int resource, int64_t amount,
                        int64_t now_ms, enum use_mode mode, tw_billing_quota *quota)
{
    struct billing_meter_slot *m = meter_slot(b, user, resource);
    pthread_mutex_lock(&m->lock);
    tw_err err = meter_knows(b, m, user, resource, now_ms)
                     ? TW_OK
                     : meter_learn(b, m, user, resource, now_ms);
    if (err == TW_OK) {
        tw_billing_entitlement ent = {.period_start_ms = m->period_start_ms,
                                      .period_end_ms = m->period_end_ms};
        ent.limits[resource] = m->limit;
        struct use w = {user, resource, amount, now_ms, mode, &ent, quota, 0};
        if (mode == USE_CHECK)
            err = over_limit(&w, m->stored + m->pending) ? TW_ERR_QUOTA_EXCEEDED : TW_OK;
        else if (amount > 0)
            err = meter_count(b, m, &w);
        else if ((err = meter_write(b, m, now_ms)) == TW_OK)
            err = tw_txn_run(b->store, meter_write_fn, &w);
    }
    pthread_mutex_unlock(&m->lock);
    return err;
}

void billing_meter_init(tw_billing *b)
{
    for (size_t i = 0; i < BILLING_METER_SLOTS; i++)
        pthread_mutex_init(&b->meter[i].lock, NULL);
}

tw_err tw_billing_usage_flush(tw_billing *b, int64_t now_ms)
{
    tw_err err = TW_OK;
    if (b == NULL)
        return TW_OK;
    for (size_t i = 0; i < BILLING_METER_SLOTS; i++) {
        pthread_mutex_lock(&b->meter[i].lock);
        tw_err e = meter_write(b, &b->meter[i], now_ms);
        pthread_mutex_unlock(&b->meter[i].lock);
        err = err ? err : e;
    }
    return err;
}

void billing_meter_forget(tw_billing *b, const tw_id *user)
{
    for (int r = 1; r < TW_RESOURCE_COUNT; r++) {
        struct billing_meter_slot *m = meter_slot(b, user, r);
        pthread_mutex_lock(&m->lock);
        if (m->held && memcmp(m->user.bytes, user->bytes, TW_ID_BYTES) == 0)
            m->held = false;
        pthread_mutex_unlock(&m->lock);
    }
}

void billing_meter_free(tw_billing *b)
{
    for (size_t i = 0; i < BILLING_METER_SLOTS; i++)
        pthread_mutex_destroy(&b->meter[i].lock);
}

/* Counts amount of resource for user in the period of their entitlement
 * now: in t, or (t NULL) in a transaction of its own, as mode says. */
static tw_err use(tw_billing *b, tw_txn *t, const tw_id *user, int resource, int64_t amount,
                  int64_t now_ms, enum use_mode mode, tw_billing_quota *quota)
{
    if (resource <= 0 || resource >= TW_RESOURCE_COUNT || (mode != USE_ADD && amount <= 0))
        return TW_ERR_VALIDATION;
    if (amount == 0)
        return TW_OK;
    if (t == NULL)
        return meter_use(b, user, resource, amount, now_ms, mode, quota);
    tw_arena *arena = tw_arena_new(2048);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_billing_entitlement ent;
    tw_err err = tw_billing_entitlement_get(b, user, now_ms, arena, &ent);
    struct use w = {user, resource, amount, now_ms, mode, &ent, quota, 0};
    if (!err) {
        w.pending = meter_pending(b, &w);
        err = use_in(t, &w);
    }
    tw_arena_free(arena);
    return err;
}

tw_err tw_billing_usage_consume(tw_billing *b, const tw_id *user, int resource, int64_t amount,
                                int64_t now_ms, tw_billing_quota *quota)
{
    return use(b, NULL, user, resource, amount, now_ms, USE_CONSUME, quota);
}

tw_err tw_billing_usage_add(tw_billing *b, const tw_id *user, int resource, int64_t amount,
                            int64_t now_ms)
{
    return use(b, NULL, user, resource, amount, now_ms, USE_ADD, NULL);
}

tw_err tw_billing_usage_check(tw_billing *b, const tw_id *user, int resource, int64_t amount,
                              int64_t now_ms, tw_billing_quota *quota)
{
    return use(b, NULL, user, resource, amount, now_ms, USE_CHECK, quota);
}

tw_err tw_txn_billing_usage_consume(tw_txn *t, tw_billing *b, const tw_id *user, int resource,
                                    int64_t amount, int64_t now_ms, tw_billing_quota *quota)
{
    return use(b, t, user, resource, amount, now_ms, USE_CONSUME, quota);
}

tw_err tw_txn_billing_usage_add(tw_txn *t, tw_billing *b, const tw_id *user, int resource,
                                int64_t amount, int64_t now_ms)
{
    return use(b, t, user, resource, amount, now_ms, USE_ADD, NULL);
}

/* Every resource's use in the entitlement's period, in arena. */
tw_err billing_usages(tw_billing *b, const tw_id *user, const tw_billing_entitlement *ent,
                      tw_arena *arena, Tw__V1__ResourceUsage ***out, size_t *n)
{
    Tw__V1__ResourceUsage **items = tw_arena_alloc(arena, TW_RESOURCE_COUNT * sizeof *items);
    if (items == NULL)
        return TW_ERR_NO_MEMORY;
    *n = 0;
    for (int r = 1; r < TW_RESOURCE_COUNT; r++) {
        tw_key k;
        usage_key(&k, user, r, ent->period_start_ms);
        tw_value v = {0};
        tw_err err = tw_store_get(b->store, &k, NULL, &v);
        if (err && err != TW_ERR_NOT_FOUND)
            return err;
        Tw__V1__ResourceUsage *u = tw_arena_alloc(arena, sizeof *u);
        if (u == NULL)
            return TW_ERR_NO_MEMORY;
        tw__v1__resource_usage__init(u);
        u->resource = r;
        struct use w = {.user = user, .resource = r, .ent = ent};
        u->used = (err ? 0 : (int64_t)v.u64) + meter_pending(b, &w);
        u->unlimited = ent->limits[r] < 0;
        u->limit = u->unlimited ? 0 : ent->limits[r];
        u->period_start_time = tw_timestamp_new(arena, ent->period_start_ms);
        u->period_end_time = tw_timestamp_new(arena, ent->period_end_ms);
        if (u->period_start_time == NULL || u->period_end_time == NULL)
            return TW_ERR_NO_MEMORY;
        items[(*n)++] = u;
    }
    *out = items;
    return TW_OK;
}

tw_err tw_billing_get_usage(tw_billing_ctx *c, Tw__V1__GetUsageResponse **out)
{
    tw_billing_entitlement ent;
    tw_err err = tw_billing_entitlement_get(c->billing, &c->user, c->now_ms, c->arena, &ent);
    Tw__V1__GetUsageResponse *r = tw_arena_alloc(c->arena, sizeof *r);
    if (err || r == NULL)
        return err ? err : TW_ERR_NO_MEMORY;
    tw__v1__get_usage_response__init(r);
    r->plan_id = (char *)ent.plan_id;
    if ((err = billing_usages(c->billing, &c->user, &ent, c->arena, &r->usages, &r->n_usages)))
        return err;
    *out = r;
    return TW_OK;
}
