/* Sign-in and API rate limits for limits.h. */
#include "limits.h"

#include "account.h"
#include "tw/store/v1/accounts.pb-c.h"
#include "tw_log.h"
#include "tw_txn.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_US (3600ll * 1000000)
/* When only attempts in flight stand in the way, they end within a hash. */
#define IN_FLIGHT_RETRY_MS 1000

bool tw_gcra_take(int64_t *tat, int64_t now_us, int64_t limit, int64_t period_us, int64_t *retry_us)
{
    int64_t interval = period_us / limit > 0 ? period_us / limit : 1;
    int64_t start = *tat > now_us ? *tat : now_us;
    int64_t next = start + interval;
    int64_t allowed_at = next - interval * limit;
    if (now_us < allowed_at) {
        *retry_us = allowed_at - now_us;
        return false;
    }
    *tat = next;
    return true;
}

bool tw_login_window_allows(const int64_t *times, size_t n, int64_t in_flight, int64_t limit,
                            int64_t window_ms, int64_t now_ms, int64_t *retry_ms)
{
    size_t first = 0;
    while (first < n && times[first] <= now_ms - window_ms)
        first++;
    int64_t failures = (int64_t)(n - first);
    if (failures + in_flight < limit)
        return true;
    /* This many more must leave the window (or finish) before one may start. */
    int64_t excess = failures + in_flight - limit + 1;
    if (excess > failures)
        *retry_ms = IN_FLIGHT_RETRY_MS;
    else
        *retry_ms = times[first + (size_t)excess - 1] + window_ms - now_ms;
    return false;
}

/* ---- sign-ins ------------------------------------------------------------- */

/* Attempts in flight for one subject; entries exist only while some are. */
struct flight {
    struct flight *next;
    int64_t count;
    char subject[];
};

struct tw_login_limiter {
    tw_store *store;
    tw_login_limits limits;
    /* Serialises reservations and the read-modify-write of failure records. */
    pthread_mutex_t lock;
    struct flight *flights;
};

tw_err tw_login_limiter_new(tw_store *s, const tw_login_limits *limits, tw_login_limiter **out)
{
    *out = calloc(1, sizeof **out);
    if (*out == NULL)
        return TW_ERR_NO_MEMORY;
    (*out)->store = s;
    (*out)->limits = *limits;
    pthread_mutex_init(&(*out)->lock, NULL);
    return TW_OK;
}

void tw_login_limiter_free(tw_login_limiter *l)
{
    if (l == NULL)
        return;
    while (l->flights != NULL) {
        struct flight *next = l->flights->next;
        free(l->flights);
        l->flights = next;
    }
    pthread_mutex_destroy(&l->lock);
    free(l);
}

void tw_login_peer_address(const char *peer, char *out, size_t len)
{
    /* "ipv4:1.2.3.4:5", "ipv6:[::1]:5", "unix:/path": drop the scheme and port. */
    const char *start = strchr(peer, ':');
    start = start ? start + 1 : peer;
    const char *end = strrchr(start, ':');
    if (strncmp(peer, "ipv6:[", 6) == 0) {
        start = peer + 6;
        end = strchr(start, ']');
    } else if (strncmp(peer, "unix:", 5) == 0 || end == NULL) {
        end = start + strlen(start);
    }
    snprintf(out, len, "%.*s", (int)(end - start), start);
}

static struct flight **flight_find(tw_login_limiter *l, const char *subject)
{
    struct flight **f = &l->flights;
    while (*f != NULL && strcmp((*f)->subject, subject) != 0)
        f = &(*f)->next;
    return f;
}

static int64_t flight_count(tw_login_limiter *l, const char *subject)
{
    struct flight *f = *flight_find(l, subject);
    return f ? f->count : 0;
}

static tw_err flight_add(tw_login_limiter *l, const char *subject, int64_t delta)
{
    struct flight **f = flight_find(l, subject);
    if (*f == NULL) {
        if (delta < 0)
            return TW_OK;
        size_t len = strlen(subject) + 1;
        if ((*f = calloc(1, sizeof **f + len)) == NULL)
            return TW_ERR_NO_MEMORY;
        memcpy((*f)->subject, subject, len);
    }
    (*f)->count += delta;
    if ((*f)->count <= 0) {
        struct flight *gone = *f;
        *f = gone->next;
        free(gone);
    }
    return TW_OK;
}

static void failures_key(tw_key *k, const char *subject)
{
    tw_key_init(k, TW_KF_LOGIN_FAILURES);
    tw_key_str(k, subject);
}

/* The subject's stored failures (an empty record when none), in arena. */
static tw_err failures_load(tw_store *s, const char *subject, tw_arena *arena,
                            Tw__Store__V1__LoginFailures **out)
{
    tw_key k;
    failures_key(&k, subject);
    tw_value v;
    tw_err err = tw_store_get(s, &k, arena, &v);
    if (err == TW_OK) {
        *out = (void *)v.msg;
        return TW_OK;
    }
    *out = tw_arena_alloc(arena, sizeof **out);
    if (*out == NULL)
        return TW_ERR_NO_MEMORY;
    tw__store__v1__login_failures__init(*out);
    return err == TW_ERR_NOT_FOUND ? TW_OK : err;
}

/* in_flight: whether attempts in flight count against the budget. */
static bool subject_allows(tw_login_limiter *l, const char *subject, int64_t limit, bool in_flight,
                           tw_arena *arena, int64_t now_ms, int64_t *retry_ms, tw_err *err)
{
    Tw__Store__V1__LoginFailures *f;
    if ((*err = failures_load(l->store, subject, arena, &f)))
        return false;
    return tw_login_window_allows(f->failure_unix_ms, f->n_failure_unix_ms,
                                  in_flight ? flight_count(l, subject) : 0, limit,
                                  l->limits.window_ms, now_ms, retry_ms);
}

/* "account:" and the SHA-256 of the normalised email in hex: failure
 * records name no email in clear, not even of addresses that have no
 * account; every spelling of one address counts against one budget. */
static void account_subject(const char *email, char *out, size_t len)
{
    char normal[TW_EMAIL_MAX + 1], why[160];
    if (tw_email_normalise(email, normal, why, sizeof why))
        email = normal;
    uint8_t digest[32];
    unsigned int n = 0;
    EVP_Digest(email, strlen(email), digest, &n, EVP_sha256(), NULL);
    size_t pos = (size_t)snprintf(out, len, "account:");
    for (unsigned int i = 0; i < n && pos + 2 < len; i++)
        pos += (size_t)snprintf(out + pos, len - pos, "%02x", digest[i]);
}

tw_err tw_login_begin(tw_login_limiter *l, const char *email, const char *peer_address,
                      int64_t now_ms, tw_login_ticket *ticket, int64_t *retry_ms)
{
    account_subject(email, ticket->account, sizeof ticket->account);
    snprintf(ticket->peer, sizeof ticket->peer, "peer:%s", peer_address);
    tw_arena *arena = tw_arena_new(1024);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    int64_t account_retry = 0, peer_retry = 0;
    tw_err err = TW_OK;
    pthread_mutex_lock(&l->lock);
    bool account_ok = subject_allows(l, ticket->account, l->limits.per_account, true, arena, now_ms,
                                     &account_retry, &err);
    bool peer_ok = !err && subject_allows(l, ticket->peer, l->limits.per_peer, false, arena, now_ms,
                                          &peer_retry, &err);
    if (!err && account_ok && peer_ok) {
        err = flight_add(l, ticket->account, 1);
    } else if (!err) {
        err = TW_ERR_RATE_LIMITED;
        *retry_ms = account_retry > peer_retry ? account_retry : peer_retry;
    }
    pthread_mutex_unlock(&l->lock);
    tw_arena_free(arena);
    return err;
}

struct record_failure {
    const char *subject;
    int64_t now_ms, window_ms, keep;
    bool clear;
};

static tw_err record_failure_txn(tw_txn *t, void *ctx)
{
    const struct record_failure *r = ctx;
    tw_key k;
    failures_key(&k, r->subject);
    if (r->clear)
        return tw_txn_delete(t, &k);
    tw_arena *arena = tw_arena_new(1024);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_value v;
    tw_err err = tw_txn_get_for_update(t, &k, arena, &v);
    const Tw__Store__V1__LoginFailures *old = err == TW_OK ? (const void *)v.msg : NULL;
    if (err == TW_ERR_NOT_FOUND)
        err = TW_OK;
    size_t n_old = old ? old->n_failure_unix_ms : 0;
    int64_t *times = tw_arena_alloc(arena, (n_old + 1) * sizeof *times);
    if (!err && times == NULL)
        err = TW_ERR_NO_MEMORY;
    size_t n = 0;
    for (size_t i = 0; !err && i < n_old; i++)
        if (old->failure_unix_ms[i] > r->now_ms - r->window_ms)
            times[n++] = old->failure_unix_ms[i];
    if (!err) {
        times[n++] = r->now_ms;
        /* Only the newest `keep` matter to the limit. */
        size_t skip = n > (size_t)r->keep ? n - (size_t)r->keep : 0;
        Tw__Store__V1__LoginFailures rec = TW__STORE__V1__LOGIN_FAILURES__INIT;
        rec.failure_unix_ms = times + skip;
        rec.n_failure_unix_ms = n - skip;
        err = tw_txn_put(t, &k, &(tw_value){.msg = &rec.base});
    }
    tw_arena_free(arena);
    return err;
}

static void record(tw_login_limiter *l, const char *subject, int64_t keep, bool clear,
                   int64_t now_ms)
{
    struct record_failure r = {subject, now_ms, l->limits.window_ms, keep, clear};
    if (clear) {
        tw_arena *arena = tw_arena_new(512);
        Tw__Store__V1__LoginFailures *f;
        tw_err err = arena ? failures_load(l->store, subject, arena, &f) : TW_ERR_NO_MEMORY;
        bool none = !err && f->n_failure_unix_ms == 0;
        tw_arena_free(arena);
        if (none)
            return; /* nothing to forgive: no write */
    }
    if (tw_txn_run(l->store, record_failure_txn, &r))
        tw_log(TW_LOG_ERROR, "cannot record a sign-in outcome",
               json_pack("{s:s}", "detail", tw_store_last_error()));
}

tw_err tw_login_end(tw_login_limiter *l, const tw_login_ticket *ticket, bool failed, int64_t now_ms,
                    int64_t *retry_ms)
{
    tw_arena *arena = tw_arena_new(1024);
    int64_t retry = 0;
    tw_err err = arena ? TW_OK : TW_ERR_NO_MEMORY;
    pthread_mutex_lock(&l->lock);
    /* Attempts from one address that all began before its limit filled
     * must not reveal their outcome after it did. */
    bool peer_ok = !err && subject_allows(l, ticket->peer, l->limits.per_peer, false, arena, now_ms,
                                          &retry, &err);
    if (err || !peer_ok) {
        err = err ? err : TW_ERR_RATE_LIMITED;
    } else if (failed) {
        record(l, ticket->account, l->limits.per_account, false, now_ms);
        record(l, ticket->peer, l->limits.per_peer, false, now_ms);
    } else {
        record(l, ticket->account, 0, true, now_ms);
    }
    flight_add(l, ticket->account, -1);
    pthread_mutex_unlock(&l->lock);
    tw_arena_free(arena);
    if (retry_ms != NULL)
        *retry_ms = retry;
    return err;
}

static tw_err forget_txn(tw_txn *t, void *ctx)
{
    tw_key k;
    failures_key(&k, ctx);
    return tw_txn_delete(t, &k);
}

tw_err tw_login_forget(tw_store *s, const char *email)
{
    char subject[100];
    account_subject(email, subject, sizeof subject);
    return tw_txn_run(s, forget_txn, subject);
}

/* ---- API calls ------------------------------------------------------------ */

#define SHARDS        64
#define SHARD_INITIAL 64

struct api_entry {
    tw_id user;
    bool used;
    int64_t tat[TW_API__COUNT];
};

struct api_shard {
    pthread_mutex_t lock;
    struct api_entry *entries;
    size_t cap, count;
};

struct tw_api_limiter {
    int64_t limits[TW_API__COUNT];
    struct api_shard shards[SHARDS];
};

static uint64_t id_hash(const tw_id *id)
{
    /* FNV-1a over the random tail of the UUID (the head is a timestamp). */
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < TW_ID_BYTES; i++)
        h = (h ^ id->bytes[i]) * 1099511628211ull;
    return h;
}

tw_err tw_api_limiter_new(const int64_t limits[TW_API__COUNT], tw_api_limiter **out)
{
    tw_api_limiter *l = calloc(1, sizeof *l);
    if (l == NULL)
        return TW_ERR_NO_MEMORY;
    memcpy(l->limits, limits, sizeof l->limits);
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_init(&l->shards[i].lock, NULL);
    *out = l;
    return TW_OK;
}

void tw_api_limiter_free(tw_api_limiter *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_destroy(&l->shards[i].lock);
        free(l->shards[i].entries);
    }
    free(l);
}

static struct api_entry *slot_for(struct api_entry *entries, size_t cap, const tw_id *user)
{
    size_t i = (size_t)(id_hash(user) >> 8) & (cap - 1);
    while (entries[i].used && memcmp(entries[i].user.bytes, user->bytes, TW_ID_BYTES) != 0)
        i = (i + 1) & (cap - 1);
    return &entries[i];
}

/* Rebuilds the shard's table, dropping users whose buckets are full again
 * (equal to never having called), and doubling it if still over half full. */
static bool shard_rebuild(struct api_shard *s, int64_t now_us)
{
    size_t live = 0;
    for (size_t i = 0; i < s->cap; i++) {
        bool idle = true;
        for (int c = 0; c < TW_API__COUNT; c++)
            idle &= s->entries[i].tat[c] <= now_us;
        if (s->entries[i].used && !idle)
            live++;
        else
            s->entries[i].used = false;
    }
    size_t cap = s->cap ? s->cap : SHARD_INITIAL;
    while (live * 2 >= cap)
        cap *= 2;
    struct api_entry *fresh = calloc(cap, sizeof *fresh);
    if (fresh == NULL)
        return false;
    for (size_t i = 0; i < s->cap; i++)
        if (s->entries[i].used)
            *slot_for(fresh, cap, &s->entries[i].user) = s->entries[i];
    free(s->entries);
    s->entries = fresh;
    s->cap = cap;
    s->count = live;
    return true;
}

bool tw_api_limiter_take(tw_api_limiter *l, const tw_id *user, bool write, int64_t now_us,
                         int64_t *retry_ms)
{
    struct api_shard *s = &l->shards[id_hash(user) % SHARDS];
    pthread_mutex_lock(&s->lock);
    if ((s->count + 1) * 4 > s->cap * 3 && !shard_rebuild(s, now_us)) {
        pthread_mutex_unlock(&s->lock);
        return true; /* out of memory: do not refuse service over the limiter */
    }
    struct api_entry *e = slot_for(s->entries, s->cap, user);
    if (!e->used) {
        memset(e, 0, sizeof *e);
        e->user = *user;
        e->used = true;
        s->count++;
    }
    int64_t tat[TW_API__COUNT], retry_us = 0, wait = 0;
    memcpy(tat, e->tat, sizeof tat);
    bool ok = true;
    for (int c = 0; c < TW_API__COUNT; c++) {
        if (c == TW_API_WRITE && !write)
            continue;
        if (!tw_gcra_take(&tat[c], now_us, l->limits[c], HOUR_US, &wait)) {
            ok = false;
            retry_us = wait > retry_us ? wait : retry_us;
        }
    }
    if (ok)
        memcpy(e->tat, tat, sizeof tat);
    pthread_mutex_unlock(&s->lock);
    if (!ok)
        *retry_ms = (retry_us + 999) / 1000;
    return ok;
}
