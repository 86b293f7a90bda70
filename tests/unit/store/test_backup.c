/* Unit tests for store/backup.c: an online backup taken while another
 * thread writes restores to a consistent copy; verify passes a sound backup
 * and fails a damaged one; restore will not overwrite a store. */
#include "store_fixture.h"
#include "store_internal.h"
#include "tw_backup.h"
#include "tw_changelog.h"
#include "tw_unique.h"

#include "tw_check.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *backups;
static char *restored;

static void setup(void)
{
    fx_open(&fx);
    backups = fx_mkdtemp();
    restored = fx_mkdtemp();
}

static void teardown(void)
{
    fx_rmdir(restored);
    fx_rmdir(backups);
    fx_close(&fx);
}

static tw_err some_data(tw_txn *t, void *ctx)
{
    tw_err err = TW_OK;
    for (int i = 0; err == TW_OK && i < 200; i++) {
        tw_id res = tw_id_new();
        err = tw_txn_changelog_append(t, &fx_alice, "task", &res, TW_CHANGE_UPSERT, NULL);
    }
    return err;
}

struct claim {
    char value[32];
    tw_id owner;
};

static tw_err claim_fn(tw_txn *t, void *ctx)
{
    struct claim *c = ctx;
    return tw_txn_unique_claim(t, "writer", c->value, &c->owner);
}

struct writer {
    atomic_bool stop;
    atomic_int acked; /* claims w0 .. w<acked-1> are committed */
    tw_err err;
};

/* Claims "w0", "w1", ... one per transaction until told to stop. */
static void *write_on(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; !atomic_load(&w->stop); i++) {
        struct claim c = {.owner = fx_alice};
        snprintf(c.value, sizeof c.value, "w%d", i);
        if ((w->err = tw_txn_run(fx.store, claim_fn, &c)))
            break;
        atomic_store(&w->acked, i + 1);
    }
    return NULL;
}

static bool claimed(tw_store *s, int i)
{
    char value[32];
    tw_id owner;
    snprintf(value, sizeof value, "w%d", i);
    return tw_store_unique_lookup(s, "writer", value, &owner) == TW_OK;
}

/* Every key of copy is in orig with the same value. */
static void expect_subset(tw_store *copy, tw_store *orig)
{
    for (int cf = 0; cf < TW_CF__COUNT; cf++) {
        rocksdb_iterator_t *it =
            rocksdb_create_iterator_cf(copy->db, copy->read_opts, copy->cf[cf]);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t klen, vlen, olen;
            const char *key = rocksdb_iter_key(it, &klen);
            const char *val = rocksdb_iter_value(it, &vlen);
            char *err = NULL;
            char *o =
                rocksdb_get_cf(orig->db, orig->read_opts, orig->cf[cf], key, klen, &olen, &err);
            ck_assert_ptr_null(err);
            ck_assert_msg(o != NULL, "key missing from the original in %s",
                          tw_keyspace_cf_name((tw_cf)cf));
            ck_assert(olen == vlen && memcmp(o, val, vlen) == 0);
            rocksdb_free(o);
        }
        rocksdb_iter_destroy(it);
    }
}

START_TEST(an_online_backup_restores_a_consistent_copy)
{
    ck_assert_int_eq(tw_txn_run(fx.store, some_data, NULL), TW_OK);
    struct writer w = {.err = TW_OK};
    pthread_t th;
    pthread_create(&th, NULL, write_on, &w);
    while (atomic_load(&w.acked) < 50)
        usleep(1000);
    int acked_before = atomic_load(&w.acked);
    tw_backup_info info;
    ck_assert_int_eq(tw_store_backup_create(fx.store, backups, &info), TW_OK);
    int acked_during = atomic_load(&w.acked);
    usleep(20000);
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    ck_assert_int_eq(w.err, TW_OK);
    ck_assert_uint_eq(info.count, 1);
    ck_assert_uint_gt(info.files, 0);
    ck_assert_uint_gt(info.size, 0);

    ck_assert_int_eq(tw_store_backup_restore(backups, restored), TW_OK);
    tw_store *copy;
    ck_assert_int_eq(tw_store_open(&(tw_store_options){.data_dir = restored}, &copy), TW_OK);
    expect_subset(copy, fx.store);
    tw_arena *arena = tw_arena_new(64 * 1024);
    tw_change_page page;
    ck_assert_int_eq(tw_store_changelog_read(copy, &fx_alice, 0, 1000, arena, &page), TW_OK);
    ck_assert_uint_eq(page.count, 200);
    tw_arena_free(arena);
    /* A moment's picture: the writer's claims form an unbroken run that
     * holds everything acknowledged before the backup began. */
    int n = 0;
    while (claimed(copy, n))
        n++;
    ck_assert_int_ge(n, acked_before);
    ck_assert_int_le(n, acked_during + 1);
    for (int i = n; i < n + 10; i++)
        ck_assert(!claimed(copy, i));
    tw_store_close(copy);
}
END_TEST

START_TEST(verify_passes_a_sound_backup)
{
    ck_assert_int_eq(tw_txn_run(fx.store, some_data, NULL), TW_OK);
    tw_backup_info first, info;
    ck_assert_int_eq(tw_store_backup_create(fx.store, backups, &first), TW_OK);
    ck_assert_int_eq(tw_txn_run(fx.store, some_data, NULL), TW_OK);
    ck_assert_int_eq(tw_store_backup_create(fx.store, backups, NULL), TW_OK);
    tw_store_report report;
    ck_assert_int_eq(tw_store_backup_verify(backups, &info, &report), TW_OK);
    ck_assert_uint_eq(info.count, 2);
    ck_assert_uint_gt(info.id, first.id);
    ck_assert_uint_eq(report.keys[TW_CF_CHANGELOG], 401); /* the latest: head and 400 */
}
END_TEST

/* Some table file of the backup (they hold the data), or NULL. */
static char *backup_table_file(const char *dir)
{
    const char *subdirs[] = {"shared_checksum", "shared"};
    for (size_t i = 0; i < 2; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, subdirs[i]);
        DIR *d = opendir(path);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (strstr(e->d_name, ".sst") != NULL) {
                char *file;
                ck_assert_int_ge(asprintf(&file, "%s/%s", path, e->d_name), 0);
                closedir(d);
                return file;
            }
        }
        if (d != NULL)
            closedir(d);
    }
    return NULL;
}

START_TEST(verify_fails_a_damaged_backup)
{
    ck_assert_int_eq(tw_txn_run(fx.store, some_data, NULL), TW_OK);
    ck_assert_int_eq(tw_store_backup_create(fx.store, backups, NULL), TW_OK);
    char *file = backup_table_file(backups);
    ck_assert_ptr_nonnull(file);
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    int fd = open(file, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    static const char junk[] = "this is not what was backed up";
    ck_assert_int_eq(pwrite(fd, junk, sizeof junk, st.st_size / 3), (ssize_t)sizeof junk);
    close(fd);
    tw_err err = tw_store_backup_verify(backups, NULL, NULL);
    ck_assert_msg(err == TW_ERR_DB_CORRUPT || err == TW_ERR_DB, "%s", tw_err_name(err));
    ck_assert_str_ne(tw_store_last_error(), "");
    ck_assert_int_ne(tw_store_backup_restore(backups, restored), TW_OK);

    /* A file gone is damage too. */
    ck_assert_int_eq(unlink(file), 0);
    ck_assert_int_ne(tw_store_backup_verify(backups, NULL, NULL), TW_OK);
    free(file);
}
END_TEST

START_TEST(no_backup_is_not_found)
{
    ck_assert_int_eq(tw_store_backup_verify(backups, NULL, NULL), TW_ERR_NOT_FOUND);
    char *missing;
    ck_assert_int_ge(asprintf(&missing, "%s/none", backups), 0);
    ck_assert_int_eq(tw_store_backup_verify(missing, NULL, NULL), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_store_backup_restore(missing, restored), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(access(missing, F_OK), -1); /* and nothing was made */
    free(missing);
}
END_TEST

/* `twd backup create` run beside a serving twd opens the store read-only. */
START_TEST(a_read_only_opener_can_back_up_a_live_store)
{
    ck_assert_int_eq(tw_txn_run(fx.store, some_data, NULL), TW_OK);
    tw_store *reader;
    ck_assert_int_eq(
        tw_store_open(&(tw_store_options){.data_dir = fx.dir, .read_only = true}, &reader), TW_OK);
    tw_err err = tw_store_backup_create(reader, backups, NULL);
    ck_assert_msg(err == TW_OK, "%s %s", tw_err_name(err), tw_store_last_error());
    tw_store_close(reader);
    tw_store_report report;
    ck_assert_int_eq(tw_store_backup_verify(backups, NULL, &report), TW_OK);
    ck_assert_uint_eq(report.keys[TW_CF_CHANGELOG], 201);
}
END_TEST

START_TEST(restore_does_not_overwrite_a_store)
{
    ck_assert_int_eq(tw_store_backup_create(fx.store, backups, NULL), TW_OK);
    ck_assert_int_eq(tw_store_backup_restore(backups, fx.dir), TW_ERR_FAILED_PRECONDITION);
    ck_assert_int_eq(tw_store_backup_restore(backups, restored), TW_OK);
    ck_assert_int_eq(tw_store_backup_restore(backups, restored), TW_ERR_FAILED_PRECONDITION);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("backup");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, an_online_backup_restores_a_consistent_copy);
    tcase_add_test(tc, verify_passes_a_sound_backup);
    tcase_add_test(tc, verify_fails_a_damaged_backup);
    tcase_add_test(tc, no_backup_is_not_found);
    tcase_add_test(tc, a_read_only_opener_can_back_up_a_live_store);
    tcase_add_test(tc, restore_does_not_overwrite_a_store);
    suite_add_tcase(s, tc);
    return s;
}
