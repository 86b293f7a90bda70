/*
 * Backups for tw_backup.h. The engine backs up the base DB under the
 * OptimisticTransactionDB (store.c says why that flavour): it flushes the
 * memtables, then copies the live files while writes go on.
 */
#include "tw_backup.h"

#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Opens the engine on backup_dir; must_exist refuses a missing directory
 * (the engine would make an empty one). */
static tw_err engine_open(const char *backup_dir, const rocksdb_options_t *opts, bool must_exist,
                          rocksdb_backup_engine_t **out)
{
    char *err = NULL;
    *out = NULL;
    if (must_exist && access(backup_dir, F_OK) != 0)
        return store_fail(TW_ERR_NOT_FOUND, "%s: no backup: %m", backup_dir);
    *out = rocksdb_backup_engine_open(opts, backup_dir, &err);
    return err ? store_rocks_error(err, backup_dir) : TW_OK;
}

static tw_err latest_info(rocksdb_backup_engine_t *be, const char *backup_dir, tw_backup_info *out)
{
    const rocksdb_backup_engine_info_t *bi = rocksdb_backup_engine_get_backup_info(be);
    int n = rocksdb_backup_engine_info_count(bi);
    tw_err err = TW_OK;
    if (n == 0) {
        err = store_fail(TW_ERR_NOT_FOUND, "%s: no backup", backup_dir);
    } else {
        out->id = rocksdb_backup_engine_info_backup_id(bi, n - 1);
        out->timestamp = rocksdb_backup_engine_info_timestamp(bi, n - 1);
        out->size = rocksdb_backup_engine_info_size(bi, n - 1);
        out->files = rocksdb_backup_engine_info_number_files(bi, n - 1);
        out->count = (uint32_t)n;
    }
    rocksdb_backup_engine_info_destroy(bi);
    return err;
}

tw_err tw_store_backup_create(tw_store *s, const char *backup_dir, tw_backup_info *info)
{
    rocksdb_backup_engine_t *be = NULL;
    tw_backup_info ignored;
    tw_err err = store_mkdirs(backup_dir);
    if (err || (err = engine_open(backup_dir, s->db_opts, false, &be)))
        return err;
    char *rerr = NULL;
    /* Flushing first puts everything in table files; a read-only store
     * cannot flush, and its WAL is copied instead. */
    rocksdb_backup_engine_create_new_backup_flush(be, s->db, s->otxn != NULL, &rerr);
    if (rerr != NULL)
        err = store_rocks_error(rerr, "backup");
    else
        err = latest_info(be, backup_dir, info ? info : &ignored);
    rocksdb_backup_engine_close(be);
    return err;
}

/* Restores the latest backup into <data_dir>/db. */
static tw_err restore_latest(rocksdb_backup_engine_t *be, const char *data_dir)
{
    char *db_dir = NULL;
    if (asprintf(&db_dir, "%s/db", data_dir) < 0)
        return TW_ERR_NO_MEMORY;
    tw_err err = store_mkdirs(data_dir);
    if (err == TW_OK) {
        rocksdb_restore_options_t *ro = rocksdb_restore_options_create();
        char *rerr = NULL;
        rocksdb_backup_engine_restore_db_from_latest_backup(be, db_dir, db_dir, ro, &rerr);
        rocksdb_restore_options_destroy(ro);
        if (rerr != NULL)
            err = store_rocks_error(rerr, "restore");
    }
    free(db_dir);
    return err;
}

tw_err tw_store_backup_verify(const char *backup_dir, tw_backup_info *info, tw_store_report *report)
{
    return tw_store_backup_verify_with(backup_dir, info, report, NULL, NULL);
}

/* Opens the store restored into data_dir read-only and runs check on it. */
static tw_err check_restored(const char *data_dir, tw_backup_check_fn check, void *ctx)
{
    tw_store *s;
    tw_err err = tw_store_open(&(tw_store_options){.data_dir = data_dir, .read_only = true}, &s);
    if (err == TW_OK) {
        err = check(ctx, s);
        tw_store_close(s);
    }
    return err;
}

tw_err tw_store_backup_verify_with(const char *backup_dir, tw_backup_info *info,
                                   tw_store_report *report, tw_backup_check_fn check, void *ctx)
{
    rocksdb_options_t *opts = rocksdb_options_create();
    rocksdb_backup_engine_t *be = NULL;
    tw_backup_info bi;
    tw_store_report ignored;
    const char *tmpdir = getenv("TMPDIR");
    char *tmp = NULL;
    bool made_tmp = false;
    char *rerr = NULL;
    tw_err err = engine_open(backup_dir, opts, true, &be);
    if (err || (err = latest_info(be, backup_dir, &bi)))
        goto out;
    if (info != NULL)
        *info = bi;
    rocksdb_backup_engine_verify_backup(be, bi.id, &rerr);
    if (rerr != NULL) {
        err = store_rocks_error(rerr, "verify");
        goto out;
    }
    if (asprintf(&tmp, "%s/twd-verify-XXXXXX", tmpdir ? tmpdir : "/tmp") < 0) {
        tmp = NULL;
        err = TW_ERR_NO_MEMORY;
        goto out;
    }
    if (mkdtemp(tmp) == NULL) {
        err = store_errno(tmp);
        goto out;
    }
    made_tmp = true;
    if ((err = restore_latest(be, tmp)))
        goto out;
    err = tw_store_check(tmp, report ? report : &ignored);
    if (err == TW_OK && check != NULL)
        err = check_restored(tmp, check, ctx);
out:
    /* The engine first: closing it waits for copies still under way. */
    if (be != NULL)
        rocksdb_backup_engine_close(be);
    if (made_tmp)
        store_remove_tree(tmp);
    free(tmp);
    rocksdb_options_destroy(opts);
    return err;
}

tw_err tw_store_backup_restore(const char *backup_dir, const char *data_dir)
{
    char *current = NULL;
    rocksdb_options_t *opts = rocksdb_options_create();
    rocksdb_backup_engine_t *be = NULL;
    tw_store_report report;
    tw_err err = TW_ERR_NO_MEMORY;
    if (asprintf(&current, "%s/db/CURRENT", data_dir) < 0) {
        current = NULL;
        goto out;
    }
    if (access(current, F_OK) == 0) {
        err = store_fail(TW_ERR_FAILED_PRECONDITION, "%s already holds a store", data_dir);
        goto out;
    }
    if ((err = engine_open(backup_dir, opts, true, &be)) || (err = restore_latest(be, data_dir)))
        goto out;
    err = tw_store_check(data_dir, &report);
out:
    if (be != NULL)
        rocksdb_backup_engine_close(be);
    rocksdb_options_destroy(opts);
    free(current);
    return err;
}

tw_err tw_store_backup_list(const char *backup_dir, tw_backup_info *out, size_t cap, size_t *count)
{
    *count = 0;
    if (access(backup_dir, F_OK) != 0)
        return TW_OK;
    rocksdb_options_t *opts = rocksdb_options_create();
    rocksdb_backup_engine_t *be = NULL;
    tw_err err = engine_open(backup_dir, opts, true, &be);
    if (err == TW_OK) {
        const rocksdb_backup_engine_info_t *bi = rocksdb_backup_engine_get_backup_info(be);
        int n = rocksdb_backup_engine_info_count(bi);
        for (int i = 0; i < n && (size_t)i < cap; i++)
            out[i] = (tw_backup_info){
                .id = rocksdb_backup_engine_info_backup_id(bi, i),
                .timestamp = rocksdb_backup_engine_info_timestamp(bi, i),
                .size = rocksdb_backup_engine_info_size(bi, i),
                .files = rocksdb_backup_engine_info_number_files(bi, i),
                .count = (uint32_t)n,
            };
        *count = (size_t)n;
        rocksdb_backup_engine_info_destroy(bi);
        rocksdb_backup_engine_close(be);
    }
    rocksdb_options_destroy(opts);
    return err;
}

tw_err tw_store_backup_purge(const char *backup_dir, uint32_t keep)
{
    rocksdb_options_t *opts = rocksdb_options_create();
    rocksdb_backup_engine_t *be = NULL;
    tw_err err = engine_open(backup_dir, opts, true, &be);
    if (err == TW_OK) {
        char *rerr = NULL;
        rocksdb_backup_engine_purge_old_backups(be, keep, &rerr);
        if (rerr != NULL)
            err = store_rocks_error(rerr, "purge");
        rocksdb_backup_engine_close(be);
    }
    rocksdb_options_destroy(opts);
    return err;
}
