/* Operator reads of tw_store_ops.h. */
#include "tw_store_ops.h"

#include "store_internal.h"
#include "tw_array.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- probe ----------------------------------------------------------------- */

tw_err tw_store_probe(tw_store *s, const char *data_dir)
{
    tw_key k;
    tw_key_init(&k, TW_KF_META);
    tw_key_str(&k, "store"); /* StoreInfo (store.c) */
    tw_arena *arena = tw_arena_new(512);
    tw_value v;
    tw_err err = arena ? tw_store_get(s, &k, arena, &v) : TW_ERR_NO_MEMORY;
    tw_arena_free(arena);
    if (err)
        return err == TW_ERR_NOT_FOUND ? store_fail(TW_ERR_DB, "store record is missing") : err;

    char path[PATH_MAX], manifest[256];
    snprintf(path, sizeof path, "%s/db/CURRENT", data_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return store_errno(path);
    ssize_t n = read(fd, manifest, sizeof manifest - 1);
    close(fd);
    if (n <= 0)
        return n < 0 ? store_errno(path) : store_fail(TW_ERR_DB, "%s is empty", path);
    manifest[n] = '\0';
    manifest[strcspn(manifest, "\n")] = '\0';
    snprintf(path, sizeof path, "%s/db/%s", data_dir, manifest);
    struct stat st;
    return stat(path, &st) == 0 ? TW_OK : store_errno(path);
}

/* ---- RocksDB's own numbers -------------------------------------------------- */

tw_err tw_store_property_sum(tw_store *s, const char *name, uint64_t *out)
{
    *out = 0;
    for (int cf = 0; cf < TW_CF__COUNT; cf++) {
        char *value = rocksdb_property_value_cf(s->db, s->cf[cf], name);
        if (value == NULL)
            return store_fail(TW_ERR_NOT_FOUND, "no RocksDB property %s", name);
        *out += strtoull(value, NULL, 10);
        rocksdb_free(value);
    }
    return TW_OK;
}

char *tw_store_statistics(tw_store *s)
{
    if (!s->opts.statistics)
        return NULL;
    char *text = rocksdb_options_statistics_get_string(s->db_opts);
    char *copy = text ? strdup(text) : NULL;
    rocksdb_free(text);
    return copy;
}

tw_err tw_store_compact(tw_store *s, uint64_t *before, uint64_t *after)
{
    uint64_t ignored;
    tw_err err =
        tw_store_property_sum(s, "rocksdb.total-sst-files-size", before ? before : &ignored);
    for (int cf = 0; cf < TW_CF__COUNT && err == TW_OK; cf++)
        rocksdb_compact_range_cf(s->db, s->cf[cf], NULL, 0, NULL, 0);
    return err ? err
               : tw_store_property_sum(s, "rocksdb.total-sst-files-size", after ? after : &ignored);
}

/* ---- job queue ------------------------------------------------------------- */

struct type_stats {
    char *type;
    tw_job_queue_stats stats;
};

struct job_tally {
    struct type_stats *rows;
    size_t count, cap;
};

static tw_job_queue_stats *tally_row(struct job_tally *t, const char *type)
{
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->rows[i].type, type) == 0)
            return &t->rows[i].stats;
    if (t->count == t->cap) {
        struct type_stats *rows = tw_array_grow(t->rows, t->count, &t->cap, sizeof *rows, 8);
        if (rows == NULL)
            return NULL;
        t->rows = rows;
    }
    struct type_stats *row = &t->rows[t->count];
    if ((row->type = strdup(type)) == NULL)
        return NULL;
    memset(&row->stats, 0, sizeof row->stats);
    t->count++;
    return &row->stats;
}

/* Counts one index family (JOB_DUE or JOB_DEAD) into the tally. */
static tw_err tally_family(tw_store *s, tw_kf family, int64_t now_ms, struct job_tally *t)
{
    tw_key prefix;
    tw_key_init(&prefix, family);
    tw_store_iter *it;
    tw_err err = tw_store_scan(s, &prefix, NULL, 0, false, &it);
    tw_arena *arena = tw_arena_new(4096);
    if (arena == NULL)
        err = err ? err : TW_ERR_NO_MEMORY;
    while (err == TW_OK && tw_store_iter_next(it)) {
        tw_key_reader r;
        char *type;
        int64_t ms;
        tw_store_iter_read_key(it, &r);
        tw_key_read_str(&r, arena, &type, NULL);
        tw_key_read_i64(&r, &ms);
        if (r.err) {
            err = store_fail(TW_ERR_DB_CORRUPT, "bad %s key", tw_keyspace_family(family)->name);
            break;
        }
        tw_job_queue_stats *row = tally_row(t, type);
        if (row == NULL) {
            err = TW_ERR_NO_MEMORY;
            break;
        }
        uint64_t *count = family == TW_KF_JOB_DEAD ? &row->dead : &row->queued;
        if (*count >= TW_JOB_STATS_CAP) {
            row->capped = true;
            continue;
        }
        (*count)++;
        if (family == TW_KF_JOB_DUE && ms <= now_ms) {
            row->due++;
            if (row->oldest_due_ms == 0 || ms < row->oldest_due_ms)
                row->oldest_due_ms = ms;
        }
        /* Keep the arena small over a long queue: types are copied out. */
        if (tw_arena_used(arena) > 64 * 1024) {
            tw_arena_free(arena);
            if ((arena = tw_arena_new(4096)) == NULL)
                err = TW_ERR_NO_MEMORY;
        }
    }
    tw_err close_err = tw_store_iter_close(it);
    tw_arena_free(arena);
    return err ? err : close_err;
}

static int by_type(const void *a, const void *b)
{
    return strcmp(((const struct type_stats *)a)->type, ((const struct type_stats *)b)->type);
}

tw_err tw_store_job_stats(tw_store *s, int64_t now_ms, tw_job_stats_fn fn, void *ctx)
{
    struct job_tally t = {0};
    tw_err err = tally_family(s, TW_KF_JOB_DUE, now_ms, &t);
    if (err == TW_OK)
        err = tally_family(s, TW_KF_JOB_DEAD, now_ms, &t);
    if (err == TW_OK && t.count > 0) {
        qsort(t.rows, t.count, sizeof *t.rows, by_type);
        for (size_t i = 0; i < t.count; i++)
            fn(ctx, t.rows[i].type, &t.rows[i].stats);
    }
    for (size_t i = 0; i < t.count; i++)
        free(t.rows[i].type);
    free(t.rows);
    return err;
}
