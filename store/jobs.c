/*
 * The job queue of tw_jobs.h.
 *
 * Keys: JOB(id) holds the Job record. Every job not dead has one JOB_DUE
 * (type, due, id) entry: for a ready job due is when it may run, for a
 * leased one when its lease runs out. Leasing is thus one forward scan of
 * JOB_DUE(type) up to now, and an expired lease needs no sweeper: it is
 * simply due. Dead jobs have a JOB_DEAD(type, died, id) entry instead.
 * Every change moves the entry and rewrites the record in one transaction,
 * reading both for update, so two workers never hold one lease.
 */
#include "tw_jobs.h"

#include "store_internal.h"
#include "tw/store/v1/records.pb-c.h"
#include "tw_time.h"

#include <stdlib.h>
#include <string.h>

/* Due entries a lease call tries before it reports none (each one tried
 * was taken by another worker in the meantime). */
#define LEASE_CANDIDATES 32

typedef Tw__Store__V1__Job job_msg;

static void job_key(tw_key *k, const tw_id *id)
{
    tw_key_init(k, TW_KF_JOB);
    tw_key_id(k, id);
}

static void index_key(tw_key *k, tw_kf family, const char *type, int64_t ms, const tw_id *id)
{
    tw_key_init(k, family);
    tw_key_str(k, type);
    tw_key_i64(k, ms);
    tw_key_id(k, id);
}

/* Scans type's entries of an index family (JOB_DUE or JOB_DEAD). */
static tw_err index_scan(tw_store *s, tw_kf family, const char *type, bool reverse,
                         tw_store_iter **it)
{
    tw_key prefix;
    tw_key_init(&prefix, family);
    tw_key_str(&prefix, type);
    return tw_store_scan(s, &prefix, NULL, 0, reverse, it);
}

/* The time and job id of the index entry at it (a JOB_DUE or JOB_DEAD key). */
static tw_err index_read(tw_store_iter *it, tw_arena *arena, int64_t *ms, tw_id *id)
{
    char *type;
    tw_key_reader r;
    tw_store_iter_read_key(it, &r);
    tw_key_read_str(&r, arena, &type, NULL);
    tw_key_read_i64(&r, ms);
    tw_key_read_id(&r, id);
    return r.err ? store_fail(r.err, "bad %s key", tw_keyspace_family(r.family)->name) : TW_OK;
}

static tw_id msg_id(const ProtobufCBinaryData *b)
{
    tw_id id;
    memcpy(id.bytes, b->data, TW_ID_BYTES);
    return id;
}

/* The index entry the record m implies. */
static void job_index_key(tw_key *k, const job_msg *m)
{
    tw_id id = msg_id(&m->id);
    tw_kf family =
        m->state == TW__STORE__V1__JOB_STATE__JOB_STATE_DEAD ? TW_KF_JOB_DEAD : TW_KF_JOB_DUE;
    index_key(k, family, m->type, m->due_unix_ms, &id);
}

/* Writes m and its index entry, which replaces old_index (NULL: none). */
static tw_err job_save(tw_txn *t, const tw_key *old_index, job_msg *m)
{
    tw_key k;
    tw_err err = TW_OK;
    if (old_index != NULL && (err = tw_txn_delete(t, old_index)))
        return err;
    job_index_key(&k, m);
    if ((err = tw_txn_put(t, &k, NULL)))
        return err;
    tw_id id = msg_id(&m->id);
    job_key(&k, &id);
    return tw_txn_put(t, &k, &(tw_value){.msg = &m->base});
}

/* Reads a job record for update (t) or as committed (s), and checks what
 * the queue relies on. */
static tw_err job_load(tw_store *s, tw_txn *t, const tw_id *id, tw_arena *arena, job_msg **out)
{
    tw_key k;
    job_key(&k, id);
    tw_value v;
    tw_err err = t ? tw_txn_get_for_update(t, &k, arena, &v) : tw_store_get(s, &k, arena, &v);
    if (err)
        return err;
    job_msg *m = (job_msg *)v.msg;
    if (m->id.len != TW_ID_BYTES || m->type[0] == '\0' ||
        m->state < TW__STORE__V1__JOB_STATE__JOB_STATE_READY ||
        m->state > TW__STORE__V1__JOB_STATE__JOB_STATE_DEAD ||
        (m->state == TW__STORE__V1__JOB_STATE__JOB_STATE_LEASED && m->lease_id.len != TW_ID_BYTES))
        return store_fail(TW_ERR_DB_CORRUPT, "job record is inconsistent");
    *out = m;
    return TW_OK;
}

static void job_out(const job_msg *m, tw_job *out)
{
    memset(out, 0, sizeof *out);
    out->id = msg_id(&m->id);
    out->type = m->type;
    out->payload = m->payload.data;
    out->payload_len = m->payload.len;
    out->attempts = m->attempts;
    out->max_attempts = m->max_attempts;
    out->due_ms = m->due_unix_ms;
    if (m->lease_id.len == TW_ID_BYTES)
        out->lease_id = msg_id(&m->lease_id);
    out->last_error = m->last_error;
    out->create_ms = m->create_unix_ms;
}

static tw_err check_type(const char *type)
{
    size_t n = strlen(type);
    if (n == 0 || n > TW_JOB_TYPE_MAX)
        return store_fail(TW_ERR_VALIDATION, "job type of %zu bytes", n);
    return TW_OK;
}

tw_err tw_txn_job_enqueue(tw_txn *t, const char *type, const void *payload, size_t payload_len,
                          const tw_job_options *opts, tw_id *id)
{
    tw_err err = check_type(type);
    if (err)
        return err;
    if (payload_len > TW_JOB_PAYLOAD_MAX)
        return store_fail(TW_ERR_VALIDATION, "job payload of %zu bytes", payload_len);
    tw_id jid = tw_id_new();
    int64_t now = tw_store_now_ms(t->store);
    job_msg m = TW__STORE__V1__JOB__INIT;
    m.id = (ProtobufCBinaryData){TW_ID_BYTES, jid.bytes};
    m.type = (char *)type;
    m.payload = (ProtobufCBinaryData){payload_len, (uint8_t *)payload};
    m.state = TW__STORE__V1__JOB_STATE__JOB_STATE_READY;
    m.max_attempts = opts && opts->max_attempts ? opts->max_attempts : TW_JOB_DEFAULT_ATTEMPTS;
    m.due_unix_ms = now + (opts ? opts->delay_ms : 0);
    m.create_unix_ms = now;
    if ((err = job_save(t, NULL, &m)))
        return err;
    if (id != NULL)
        *id = jid;
    return TW_OK;
}

tw_err tw_txn_job_enqueue_msg(tw_txn *t, const char *type, const ProtobufCMessage *msg,
                              const tw_job_options *opts, tw_id *id)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (len > TW_JOB_PAYLOAD_MAX)
        return store_fail(TW_ERR_VALIDATION, "job payload of %zu bytes", len);
    uint8_t *payload = malloc(len ? len : 1);
    if (payload == NULL)
        return TW_ERR_NO_MEMORY;
    protobuf_c_message_pack(msg, payload);
    tw_err err = tw_txn_job_enqueue(t, type, payload, len, opts, id);
    free(payload);
    return err;
}

struct lease_ctx {
    tw_key due_key; /* the candidate */
    tw_id id;
    int64_t lease_ms;
    tw_arena *arena;
    tw_id lease_id;
    job_msg *job; /* set when leased */
};

static tw_err lease_apply(tw_txn *t, void *ctx)
{
    struct lease_ctx *c = ctx;
    c->job = NULL;
    tw_value v;
    job_msg *m;
    tw_err err = tw_txn_get_for_update(t, &c->due_key, c->arena, &v);
    if (err) /* NOT_FOUND: another worker took it since the scan */
        return err;
    if ((err = job_load(t->store, t, &c->id, c->arena, &m)) == TW_ERR_NOT_FOUND)
        return tw_txn_delete(t, &c->due_key); /* an entry without its job: drop it */
    if (err)
        return err;
    int64_t now = tw_store_now_ms(t->store);
    if (m->state == TW__STORE__V1__JOB_STATE__JOB_STATE_LEASED && m->attempts >= m->max_attempts) {
        /* Its last lease ran out: the worker died on it every time. */
        m->state = TW__STORE__V1__JOB_STATE__JOB_STATE_DEAD;
        m->due_unix_ms = now;
        m->last_error = "lease expired on the last attempt";
        m->lease_id = (ProtobufCBinaryData){0, NULL};
        return job_save(t, &c->due_key, m);
    }
    c->lease_id = tw_id_new();
    m->state = TW__STORE__V1__JOB_STATE__JOB_STATE_LEASED;
    m->attempts++;
    m->due_unix_ms = now + c->lease_ms;
    m->lease_id = (ProtobufCBinaryData){TW_ID_BYTES, c->lease_id.bytes};
    if ((err = job_save(t, &c->due_key, m)))
        return err;
    c->job = m;
    return TW_OK;
}

tw_err tw_store_job_lease(tw_store *s, const char *type, int64_t lease_ms, tw_arena *arena,
                          tw_job *out)
{
    tw_err err = check_type(type);
    if (err)
        return err;
    if (lease_ms <= 0)
        return store_fail(TW_ERR_VALIDATION, "lease of %lld ms", (long long)lease_ms);
    struct lease_ctx c = {.lease_ms = lease_ms, .arena = arena};
    tw_store_iter *it;
    if ((err = index_scan(s, TW_KF_JOB_DUE, type, false, &it)))
        return err;
    int64_t now = tw_store_now_ms(s);
    err = TW_ERR_NOT_FOUND;
    for (int tried = 0; tried < LEASE_CANDIDATES && tw_store_iter_next(it); tried++) {
        int64_t due;
        if ((err = index_read(it, arena, &due, &c.id)))
            break;
        if (due > now) {
            err = TW_ERR_NOT_FOUND;
            break;
        }
        index_key(&c.due_key, TW_KF_JOB_DUE, type, due, &c.id);
        err = tw_txn_run(s, lease_apply, &c);
        if (err == TW_OK && c.job != NULL) {
            job_out(c.job, out);
            break;
        }
        if (err != TW_OK && err != TW_ERR_NOT_FOUND)
            break;
        err = TW_ERR_NOT_FOUND;
    }
    tw_err close_err = tw_store_iter_close(it);
    return close_err ? close_err : err;
}

struct settle_ctx {
    const tw_job *job;
    const char *error; /* NULL: completed */
    int64_t retry_after_ms;
    tw_arena *arena;
};

/* Between half the ceiling and the ceiling ("equal jitter"): jobs that
 * failed together (an outside service down for everyone) spread out when
 * they come back, and none comes back sooner than half its backoff. */
static int64_t backoff_ms(const tw_store *s, uint32_t attempts)
{
    int64_t ceiling =
        tw_backoff_ceiling_ms(s->opts.job_backoff_base_ms, s->opts.job_backoff_max_ms, attempts);
    int64_t half = ceiling / 2;
    return half + (int64_t)arc4random_uniform((uint32_t)(ceiling - half + 1));
}

static tw_err settle_apply(tw_txn *t, void *ctx)
{
    const struct settle_ctx *c = ctx;
    job_msg *m;
    tw_err err = job_load(t->store, t, &c->job->id, c->arena, &m);
    if (err == TW_ERR_NOT_FOUND ||
        (err == TW_OK && (m->state != TW__STORE__V1__JOB_STATE__JOB_STATE_LEASED ||
                          memcmp(m->lease_id.data, c->job->lease_id.bytes, TW_ID_BYTES) != 0)))
        return store_fail(TW_ERR_CONFLICT, "job lease was lost");
    if (err)
        return err;
    tw_key due_key;
    job_index_key(&due_key, m);
    if (c->error == NULL) {
        tw_key k;
        job_key(&k, &c->job->id);
        if ((err = tw_txn_delete(t, &due_key)))
            return err;
        return tw_txn_delete(t, &k);
    }
    int64_t now = tw_store_now_ms(t->store);
    if (m->attempts >= m->max_attempts) {
        m->state = TW__STORE__V1__JOB_STATE__JOB_STATE_DEAD;
        m->due_unix_ms = now;
    } else {
        m->state = TW__STORE__V1__JOB_STATE__JOB_STATE_READY;
        int64_t wait = backoff_ms(t->store, m->attempts);
        m->due_unix_ms = now + (c->retry_after_ms > wait ? c->retry_after_ms : wait);
    }
    m->last_error = (char *)c->error;
    m->lease_id = (ProtobufCBinaryData){0, NULL};
    return job_save(t, &due_key, m);
}

static tw_err job_settle(tw_store *s, const tw_job *job, const char *error, int64_t retry_after_ms)
{
    tw_arena *arena = tw_arena_new(1024);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err =
        tw_txn_run(s, settle_apply, &(struct settle_ctx){job, error, retry_after_ms, arena});
    tw_arena_free(arena);
    return err;
}

tw_err tw_store_job_complete(tw_store *s, const tw_job *job)
{
    return job_settle(s, job, NULL, 0);
}

tw_err tw_store_job_fail(tw_store *s, const tw_job *job, const char *error, int64_t retry_after_ms)
{
    return job_settle(s, job, error ? error : "", retry_after_ms);
}

tw_err tw_store_job_list_dead(tw_store *s, const char *type, uint32_t limit, tw_arena *arena,
                              tw_job **jobs, size_t *count)
{
    *jobs = NULL;
    *count = 0;
    tw_err err = check_type(type);
    if (err)
        return err;
    if (limit == 0)
        return TW_OK;
    if ((*jobs = tw_arena_alloc(arena, limit * sizeof **jobs)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw_store_iter *it;
    if ((err = index_scan(s, TW_KF_JOB_DEAD, type, true, &it)))
        return err;
    while (err == TW_OK && *count < limit && tw_store_iter_next(it)) {
        int64_t died;
        tw_id id;
        job_msg *m;
        if ((err = index_read(it, arena, &died, &id)) == TW_OK &&
            (err = job_load(s, NULL, &id, arena, &m)) == TW_OK)
            job_out(m, &(*jobs)[(*count)++]);
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}

struct requeue_ctx {
    tw_id id;
    tw_arena *arena;
};

static tw_err requeue_apply(tw_txn *t, void *ctx)
{
    const struct requeue_ctx *c = ctx;
    job_msg *m;
    tw_err err = job_load(t->store, t, &c->id, c->arena, &m);
    if (err)
        return err;
    if (m->state != TW__STORE__V1__JOB_STATE__JOB_STATE_DEAD)
        return store_fail(TW_ERR_FAILED_PRECONDITION, "job is not dead");
    tw_key dead_key;
    job_index_key(&dead_key, m);
    m->state = TW__STORE__V1__JOB_STATE__JOB_STATE_READY;
    m->attempts = 0;
    m->due_unix_ms = tw_store_now_ms(t->store);
    return job_save(t, &dead_key, m);
}

tw_err tw_store_job_requeue(tw_store *s, const tw_id *id)
{
    tw_arena *arena = tw_arena_new(1024);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err = tw_txn_run(s, requeue_apply, &(struct requeue_ctx){*id, arena});
    tw_arena_free(arena);
    return err;
}
