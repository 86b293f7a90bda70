/* Day-bucketed counters for tw_counter.h. */
#include "tw_counter.h"

#include "store_internal.h"

#include <stdlib.h>

#define MS_PER_DAY (24LL * 3600 * 1000)

uint32_t tw_store_day(int64_t unix_ms)
{
    int64_t day = unix_ms / MS_PER_DAY;
    if (unix_ms % MS_PER_DAY < 0)
        day--; /* floor, for times before 1970 */
    return (uint32_t)day;
}

static void counter_key(tw_key *k, const tw_counter *c, uint32_t day)
{
    tw_key_init(k, c->user ? TW_KF_USER_COUNTER : TW_KF_COUNTER);
    if (c->user)
        tw_key_id(k, c->user);
    tw_key_str(k, c->name);
    tw_key_str(k, c->dims ? c->dims : "");
    tw_key_u32(k, day);
}

tw_err tw_txn_counter_add(tw_txn *t, const tw_counter *c, uint32_t day, int64_t delta)
{
    tw_key k;
    counter_key(&k, c, day);
    tw_err err = store_key_ready(&k);
    if (err)
        return err;
    const tw_key_family *f = tw_keyspace_family(k.family);
    uint8_t *bytes;
    size_t len;
    if ((err = store_value_encode(f, &(tw_value){.u64 = (uint64_t)delta}, t->arena, &bytes, &len)))
        return err;
    /* Merged into the transaction's batch directly, not through
     * rocksdb_transaction_merge_cf, which would track the key and make every
     * pair of concurrent writers of one counter conflict. The batch still
     * commits or is dropped with the transaction. */
    rocksdb_writebatch_wi_t *wi = rocksdb_transaction_get_writebatch_wi(t->rtx);
    if (wi == NULL)
        return TW_ERR_NO_MEMORY;
    rocksdb_writebatch_wi_merge_cf(wi, t->store->cf[f->cf], (const char *)k.bytes, k.len,
                                   (const char *)bytes, len);
    rocksdb_free(wi); /* the wrapper only; the batch belongs to the transaction */
    return TW_OK;
}

tw_err tw_store_counter_read(tw_store *s, const tw_counter *c, uint32_t first_day, uint32_t ndays,
                             uint64_t *per_day, uint64_t *total)
{
    if (ndays == 0 || ndays > TW_COUNTER_MAX_DAYS)
        return store_fail(TW_ERR_VALIDATION, "counter range of %u days", ndays);
    tw_err err = TW_ERR_NO_MEMORY;
    tw_key *keys = malloc(ndays * sizeof *keys);
    const char **kptr = malloc(ndays * sizeof *kptr);
    size_t *klen = malloc(ndays * sizeof *klen);
    char **vals = calloc(ndays, sizeof *vals);
    size_t *vlen = malloc(ndays * sizeof *vlen);
    char **errs = calloc(ndays, sizeof *errs);
    const rocksdb_column_family_handle_t **cfs = malloc(ndays * sizeof *cfs);
    tw_arena *arena = tw_arena_new(256);
    uint64_t sum = 0;
    if (!keys || !kptr || !klen || !vals || !vlen || !errs || !cfs || !arena)
        goto out;
    for (uint32_t i = 0; i < ndays; i++) {
        counter_key(&keys[i], c, first_day + i);
        if ((err = store_key_ready(&keys[i])))
            goto out;
        kptr[i] = (const char *)keys[i].bytes;
        klen[i] = keys[i].len;
        cfs[i] = s->cf[TW_CF_COUNTERS];
    }
    rocksdb_multi_get_cf(s->db, s->read_opts, cfs, ndays, kptr, klen, vals, vlen, errs);
    const tw_key_family *f = tw_keyspace_family(keys[0].family);
    err = TW_OK;
    for (uint32_t i = 0; i < ndays; i++) {
        tw_value v = {.u64 = 0};
        if (errs[i] != NULL) {
            tw_err e = store_rocks_error(errs[i], f->name);
            errs[i] = NULL;
            err = err ? err : e;
        } else if (vals[i] != NULL) {
            tw_err e = store_value_decode(f, vals[i], vlen[i], arena, &v);
            err = err ? err : e;
        }
        if (per_day != NULL)
            per_day[i] = v.u64;
        sum += v.u64;
    }
    if (total != NULL && err == TW_OK)
        *total = sum;
out:
    for (uint32_t i = 0; vals != NULL && errs != NULL && i < ndays; i++) {
        rocksdb_free(vals[i]);
        rocksdb_free(errs[i]);
    }
    free(keys);
    free(kptr);
    free(klen);
    free(vals);
    free(vlen);
    free(errs);
    free(cfs);
    tw_arena_free(arena);
    return err;
}

/* Sums the days in [first_day, last_day] of the series at prefix (name,
 * dims), reading only those days. */
static tw_err series_total(tw_store *s, const tw_key *series, uint32_t first_day, uint32_t last_day,
                           tw_arena *arena, uint64_t *total)
{
    tw_key from = *series;
    tw_key_u32(&from, first_day - 1);
    tw_store_iter *it;
    tw_err err = tw_store_scan(s, series, first_day ? from.bytes : NULL, first_day ? from.len : 0,
                               false, &it);
    *total = 0;
    while (err == TW_OK && tw_store_iter_next(it)) {
        const uint8_t *key;
        size_t len;
        tw_store_iter_key(it, &key, &len);
        uint32_t day = (uint32_t)key[len - 4] << 24 | (uint32_t)key[len - 3] << 16 |
                       (uint32_t)key[len - 2] << 8 | key[len - 1];
        if (day > last_day)
            break;
        tw_value v;
        if ((err = tw_store_iter_value(it, arena, &v)) == TW_OK)
            *total += v.u64;
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}

tw_err tw_store_counter_series(tw_store *s, const tw_id *user, const char *name, uint32_t first_day,
                               uint32_t last_day, tw_counter_series_fn fn, void *ctx)
{
    tw_key prefix;
    tw_key_init(&prefix, user ? TW_KF_USER_COUNTER : TW_KF_COUNTER);
    if (user)
        tw_key_id(&prefix, user);
    tw_key_str(&prefix, name);
    tw_arena *arena = tw_arena_new(1024);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    /* The next series starts after the last possible day of this one. */
    tw_key after = {.len = 0};
    tw_err err = TW_OK;
    for (;;) {
        tw_store_iter *it;
        if ((err = tw_store_scan(s, &prefix, after.bytes, after.len, false, &it)))
            break;
        char *dims = NULL;
        if (tw_store_iter_next(it)) {
            tw_key_reader r;
            tw_store_iter_read_key(it, &r);
            if (user) {
                tw_id owner;
                tw_key_read_id(&r, &owner);
            }
            char *counter_name;
            tw_key_read_str(&r, arena, &counter_name, NULL);
            tw_key_read_str(&r, arena, &dims, NULL);
            if (r.err)
                err = store_fail(TW_ERR_DB_CORRUPT, "bad counter key");
        }
        tw_err close_err = tw_store_iter_close(it);
        err = err ? err : close_err;
        if (err || dims == NULL)
            break;
        tw_key series = prefix;
        tw_key_str(&series, dims);
        uint64_t total = 0;
        if (first_day <= last_day &&
            (err = series_total(s, &series, first_day, last_day, arena, &total)))
            break;
        if ((err = fn(ctx, dims, total)))
            break;
        after = series;
        tw_key_u32(&after, UINT32_MAX);
        if ((err = after.err))
            break;
        if (tw_arena_used(arena) > 64 * 1024) {
            tw_arena_free(arena);
            if ((arena = tw_arena_new(1024)) == NULL)
                return TW_ERR_NO_MEMORY;
        }
    }
    tw_arena_free(arena);
    return err;
}
