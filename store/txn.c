/*
 * Optimistic transactions for tw_txn.h, and the two things the store does
 * at commit for every service alike:
 *
 * Change logs. A transaction that appends to a user's change log does not
 * read the log's head: its entries get their sequence numbers at commit,
 * with that user's log lock held from reading the head to writing the
 * batch (RocksDB's memtable, not the disk). So writers of one user never
 * conflict on the head, sequences are gap-free and in commit order (the
 * next holder of the lock reads the head the last one committed, and a
 * commit that fails writes nothing), and no lock is held across a sync.
 *
 * Group commit. Every transaction writes RocksDB's WAL without syncing it
 * and, under TW_DURABLE, then waits for a sync that covers it: one thread
 * syncs the WAL for every commit made before it started, the others wait
 * for that sync or the next. A commit returns only once durable, as
 * before, but n committers at once pay for about two syncs, not n; and one
 * user's writers share syncs like everyone else's. The price: a commit is
 * visible to readers a sync before it is durable (as in InnoDB), so a
 * power cut in that window loses a change someone may have read. The
 * change log is kept clean of that: Pull syncs before answering (it hands
 * out cursors) and the commit listener (Watch) hears of a commit once it is
 * durable.
 *
 * Write epochs. A write of an OWNED_CACHED family marks its owner's epoch,
 * one of a SHARED_CACHED family the shared epoch; a commit advances the
 * marked epochs right after RocksDB's commit, so the write is visible
 * before the epoch moves and the epoch moves before the commit returns
 * (tw_store_epoch).
 */
#include "store_internal.h"

#include "tw_time.h"

#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TXN_RUN_ATTEMPTS 16

tw_err tw_txn_begin(tw_store *s, tw_txn **out)
{
    *out = NULL;
    if (s->otxn == NULL)
        return store_fail(TW_ERR_DB_READ_ONLY, "store is open read-only");
    tw_txn *t = calloc(1, sizeof *t);
    if (t == NULL || (t->arena = tw_arena_new(4096)) == NULL) {
        free(t);
        return TW_ERR_NO_MEMORY;
    }
    t->store = s;
    t->rtx = rocksdb_optimistictransaction_begin(s->otxn, s->write_opts, s->txn_opts, NULL);
    *out = t;
    return TW_OK;
}

static tw_err txn_read(tw_txn *t, const tw_key *k, bool for_update, tw_arena *arena, tw_value *out)
{
    tw_err err = store_key_ready(k);
    if (err)
        return err;
    const tw_key_family *f = tw_keyspace_family(k->family);
    rocksdb_column_family_handle_t *cf = t->store->cf[f->cf];
    const rocksdb_readoptions_t *ro = t->store->read_opts;
    const char *key = (const char *)k->bytes;
    char *rerr = NULL;
    rocksdb_pinnableslice_t *ps =
        for_update
            ? rocksdb_transaction_get_pinned_for_update_cf(t->rtx, ro, cf, key, k->len, 1, &rerr)
            : rocksdb_transaction_get_pinned_cf(t->rtx, ro, cf, key, k->len, &rerr);
    return store_pinned_decode(f, ps, rerr, arena, out);
}

tw_err tw_txn_get(tw_txn *t, const tw_key *k, tw_arena *arena, tw_value *out)
{
    return txn_read(t, k, false, arena, out);
}

tw_err tw_txn_get_for_update(tw_txn *t, const tw_key *k, tw_arena *arena, tw_value *out)
{
    return txn_read(t, k, true, arena, out);
}

/* user's epoch; NULL: the shared records' */
static size_t epoch_of(const tw_id *user)
{
    if (user == NULL)
        return STORE_SHARED_EPOCH;
    return ((size_t)user->bytes[TW_ID_BYTES - 2] << 8 | user->bytes[TW_ID_BYTES - 1]) %
           STORE_EPOCHS;
}

uint64_t tw_store_epoch(tw_store *s, const tw_id *user)
{
    return atomic_load_explicit(&s->epochs[epoch_of(user)], memory_order_acquire);
}

/* Marks the epoch of k's owner when k's family is OWNED_CACHED, the shared
 * epoch when it is SHARED_CACHED. */
static tw_err mark_epoch(tw_txn *t, const tw_key *k, const tw_key_family *f)
{
    if (!f->cached)
        return TW_OK;
    if (t->epoch_marks == NULL &&
        (t->epoch_marks = tw_arena_alloc(t->arena, STORE_EPOCH_WORDS * sizeof *t->epoch_marks)) ==
            NULL) /* zeroed */
        return TW_ERR_NO_MEMORY;
    tw_id owner; /* an owned key's first part */
    if (f->owned) {
        tw_key_reader r;
        tw_key_read_init(&r, k->family, k->bytes, k->len);
        tw_key_read_id(&r, &owner);
        if (r.err)
            return r.err;
    }
    size_t e = epoch_of(f->owned ? &owner : NULL);
    t->epoch_marks[e / 64] |= UINT64_C(1) << (e % 64);
    return TW_OK;
}

static void advance_epochs(tw_txn *t)
{
    for (size_t w = 0; t->epoch_marks != NULL && w < STORE_EPOCH_WORDS; w++) {
        for (uint64_t bits = t->epoch_marks[w]; bits != 0; bits &= bits - 1) {
            size_t e = w * 64 + (size_t)__builtin_ctzll(bits);
            atomic_fetch_add_explicit(&t->store->epochs[e], 1, memory_order_release);
        }
    }
}

tw_err tw_txn_put(tw_txn *t, const tw_key *k, const tw_value *v)
{
    tw_err err = store_key_ready(k);
    if (err)
        return err;
    const tw_key_family *f = tw_keyspace_family(k->family);
    if ((err = mark_epoch(t, k, f)))
        return err;
    uint8_t *bytes;
    size_t len;
    if ((err = store_value_encode(f, v, t->arena, &bytes, &len)))
        return err;
    char *rerr = NULL;
    rocksdb_transaction_put_cf(t->rtx, t->store->cf[f->cf], (const char *)k->bytes, k->len,
                               (const char *)bytes, len, &rerr);
    return rerr ? store_rocks_error(rerr, f->name) : TW_OK;
}

tw_err store_txn_write_untracked(tw_txn *t, const tw_key *k, const tw_value *v, bool del)
{
    tw_err err = store_key_ready(k);
    if (err)
        return err;
    const tw_key_family *f = tw_keyspace_family(k->family);
    uint8_t *bytes = NULL;
    size_t len = 0;
    if ((err = mark_epoch(t, k, f)))
        return err;
    if (!del && (err = store_value_encode(f, v, t->arena, &bytes, &len)))
        return err;
    rocksdb_writebatch_wi_t *wi = rocksdb_transaction_get_writebatch_wi(t->rtx);
    if (wi == NULL)
        return TW_ERR_NO_MEMORY;
    if (del)
        rocksdb_writebatch_wi_delete_cf(wi, t->store->cf[f->cf], (const char *)k->bytes, k->len);
    else
        rocksdb_writebatch_wi_put_cf(wi, t->store->cf[f->cf], (const char *)k->bytes, k->len,
                                     (const char *)bytes, len);
    rocksdb_free(wi); /* the wrapper only; the batch belongs to the transaction */
    return TW_OK;
}

tw_err tw_txn_put_index(tw_txn *t, const tw_key *k, const tw_value *v)
{
    return store_txn_write_untracked(t, k, v, false);
}

tw_err tw_txn_delete_index(tw_txn *t, const tw_key *k)
{
    return store_txn_write_untracked(t, k, NULL, true);
}

tw_err tw_txn_delete(tw_txn *t, const tw_key *k)
{
    tw_err err = store_key_ready(k);
    if (err)
        return err;
    const tw_key_family *f = tw_keyspace_family(k->family);
    if ((err = mark_epoch(t, k, f)))
        return err;
    char *rerr = NULL;
    rocksdb_transaction_delete_cf(t->rtx, t->store->cf[f->cf], (const char *)k->bytes, k->len,
                                  &rerr);
    return rerr ? store_rocks_error(rerr, f->name) : TW_OK;
}

void tw_txn_abort(tw_txn *t)
{
    if (t == NULL)
        return;
    rocksdb_transaction_destroy(t->rtx); /* an uncommitted transaction writes nothing */
    tw_arena_free(t->arena);
    free(t);
}

void tw_txn_skip_sync(tw_txn *t)
{
    t->skip_sync = true;
}

tw_store *tw_txn_store(tw_txn *t)
{
    return t->store;
}

static void lock_or_unlock(pthread_mutex_t *lock, bool take)
{
    if (take)
        pthread_mutex_lock(lock);
    else
        pthread_mutex_unlock(lock);
}

/* Takes (or releases) the log locks of t's users, in lock order. */
static void log_locks(tw_txn *t, bool take)
{
    if (t->logs == NULL)
        return;
    if (t->logs->next == NULL) {
        /* One user's, as most are: no order to keep, and no walk over
         * every lock (1.6k instructions each way). */
        lock_or_unlock(store_log_lock(t->store, &t->logs->user), take);
        return;
    }
    bool held[STORE_LOG_LOCKS] = {false};
    for (struct store_log *l = t->logs; l != NULL; l = l->next)
        held[store_log_lock(t->store, &l->user) - t->store->log_locks] = true;
    for (int i = 0; i < STORE_LOG_LOCKS; i++) {
        if (held[i])
            lock_or_unlock(&t->store->log_locks[i], take);
    }
}

/* Whether t writes anything: a commit of nothing needs no sync. */
static bool txn_writes(tw_txn *t)
{
    rocksdb_writebatch_wi_t *wi = rocksdb_transaction_get_writebatch_wi(t->rtx);
    bool writes = wi == NULL || rocksdb_writebatch_wi_count(wi) > 0;
    rocksdb_free(wi); /* the wrapper only */
    return writes;
}

tw_err tw_txn_commit(tw_txn *t)
{
    tw_store *s = t->store;
    uint64_t ticket = 0;
    log_locks(t, true);
    tw_err err = store_log_apply(t);
    if (err == TW_OK) {
        bool writes = txn_writes(t);
        char *rerr = NULL;
        rocksdb_transaction_commit(t->rtx, &rerr);
        err = rerr ? store_rocks_error(rerr, "commit") : TW_OK;
        advance_epochs(t); /* after a failed commit too: moving costs a read at most */
        if (err == TW_OK && writes && s->opts.durability == TW_DURABLE && !t->skip_sync)
            ticket = atomic_fetch_add(&s->committed, 1) + 1;
        for (struct store_log *l = t->logs; err == TW_OK && l != NULL; l = l->next)
            store_hints_raise(s, l);
    }
    log_locks(t, false);
    /* RocksDB 7.8 stops taking writes after a failed WAL write (a full
     * disk) and, lacking Resume() in its C API, until it is reopened; it
     * says so only by failing every write with the first error. A second
     * failure in a row is therefore reported as the read-only state it is,
     * and the first success clears it. */
    if (err == TW_ERR_DB && atomic_exchange(&s->writes_failing, true))
        err = TW_ERR_DB_READ_ONLY;
    else if (err == TW_OK)
        atomic_store(&s->writes_failing, false);
    if (err == TW_OK && ticket != 0)
        err = store_sync_through(s, ticket);
    for (struct store_log *l = t->logs; err == TW_OK && l != NULL; l = l->next) {
        if (l->appends != NULL && s->listener != NULL)
            s->listener(s->listener_ctx, &l->user, l->last_sequence);
    }
    tw_txn_abort(t);
    return err;
}

/* Sleeps until syncs_ended moves from seen; at once if it has already.
 * A futex rather than a condition variable: every waiter a sync covers
 * wakes and returns without a lock, where pthread_cond_wait has each of
 * them take the mutex again in turn, and a durable commit's context
 * switches were mostly that queue (bench/README.md, seventh pass). */
static void sync_wait(tw_store *s, uint32_t seen)
{
    syscall(SYS_futex, (uint32_t *)&s->syncs_ended, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void sync_end(tw_store *s)
{
    atomic_store(&s->syncing, false);
    atomic_fetch_add(&s->syncs_ended, 1);
    syscall(SYS_futex, (uint32_t *)&s->syncs_ended, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

tw_err store_sync_through(tw_store *s, uint64_t ticket)
{
    for (;;) {
        /* Read before the checks, so a sync that ends after them wakes us. */
        uint32_t seen = atomic_load(&s->syncs_ended);
        if (atomic_load(&s->synced) >= ticket)
            return TW_OK;
        if (ticket <= atomic_load(&s->failed_through))
            return store_fail(TW_ERR_DB, "WAL sync failed: the commit may be lost");
        bool idle = false;
        if (!atomic_compare_exchange_strong(&s->syncing, &idle, true)) {
            sync_wait(s, seen);
            continue;
        }
        if (atomic_load(&s->synced) >= ticket) { /* a sync ended since the check */
            sync_end(s);
            continue;
        }
        /* Every ticket handed out so far belongs to a commit whose batch
         * is in the WAL already: this sync makes them all durable. */
        uint64_t through = atomic_load(&s->committed);
        char *rerr = NULL;
        rocksdb_flush_wal(s->db, 1, &rerr);
        tw_err err = rerr ? store_rocks_error(rerr, "WAL sync") : TW_OK;
        atomic_store(err ? &s->failed_through : &s->synced, through);
        sync_end(s);
        if (err) /* the syncing thread says why; the others that it may be lost */
            return err;
    }
}

tw_err store_sync_committed(tw_store *s)
{
    uint64_t committed = atomic_load(&s->committed);
    return atomic_load(&s->synced) >= committed ? TW_OK : store_sync_through(s, committed);
}

/* A pause of up to 50 us << attempt (at most 3.2 ms), random so that the
 * racers that conflicted do not meet again in step. */
static void conflict_pause(int attempt)
{
    static _Thread_local unsigned seed;
    if (seed == 0)
        seed = (unsigned)tw_mono_ns() | 1;
    long limit_us = 50L << (attempt < 6 ? attempt : 6);
    long us = (long)(rand_r(&seed) % limit_us);
    nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = us * 1000}, NULL);
}

tw_err tw_txn_run(tw_store *s, tw_txn_fn fn, void *ctx)
{
    tw_err err = TW_ERR_CONFLICT;
    for (int attempt = 0; attempt < TXN_RUN_ATTEMPTS && err == TW_ERR_CONFLICT; attempt++) {
        if (attempt > 0)
            conflict_pause(attempt);
        tw_txn *t;
        if ((err = tw_txn_begin(s, &t)))
            return err;
        if ((err = fn(t, ctx))) {
            tw_txn_abort(t);
            return err;
        }
        err = tw_txn_commit(t);
    }
    return err;
}
