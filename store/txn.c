/* Optimistic transactions for tw_txn.h. */
#include "store_internal.h"

#include "tw_time.h"

#include <stdlib.h>
#include <time.h>

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

tw_err tw_txn_put(tw_txn *t, const tw_key *k, const tw_value *v)
{
    tw_err err = store_key_ready(k);
    if (err)
        return err;
    const tw_key_family *f = tw_keyspace_family(k->family);
    uint8_t *bytes;
    size_t len;
    if ((err = store_value_encode(f, v, t->arena, &bytes, &len)))
        return err;
    char *rerr = NULL;
    rocksdb_transaction_put_cf(t->rtx, t->store->cf[f->cf], (const char *)k->bytes, k->len,
                               (const char *)bytes, len, &rerr);
    return rerr ? store_rocks_error(rerr, f->name) : TW_OK;
}

tw_err tw_txn_delete(tw_txn *t, const tw_key *k)
{
    tw_err err = store_key_ready(k);
    if (err)
        return err;
    const tw_key_family *f = tw_keyspace_family(k->family);
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

tw_store *tw_txn_store(tw_txn *t)
{
    return t->store;
}

tw_err tw_txn_commit(tw_txn *t)
{
    char *rerr = NULL;
    rocksdb_transaction_commit(t->rtx, &rerr);
    tw_err err = rerr ? store_rocks_error(rerr, "commit") : TW_OK;
    tw_store *s = t->store;
    /* RocksDB 7.8 stops taking writes after a failed WAL write (a full
     * disk) and, lacking Resume() in its C API, until it is reopened; it
     * says so only by failing every write with the first error. A second
     * failure in a row is therefore reported as the read-only state it is,
     * and the first success clears it. */
    if (err == TW_ERR_DB && atomic_exchange(&s->writes_failing, true))
        err = TW_ERR_DB_READ_ONLY;
    else if (err == TW_OK)
        atomic_store(&s->writes_failing, false);
    for (struct store_head *h = t->heads; err == TW_OK && h != NULL; h = h->next) {
        if (h->appended && s->listener != NULL)
            s->listener(s->listener_ctx, &h->user, h->last_sequence);
    }
    tw_txn_abort(t);
    return err;
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
