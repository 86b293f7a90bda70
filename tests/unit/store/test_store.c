/* Unit tests for store/store.c: opening, reads and scans, error mapping,
 * read-only use, write failures (a full disk), checks of the whole DB. */
#include "store_fixture.h"
#include "store_internal.h"
#include "tw/store/v1/records.pb-c.h"
#include "tw_changelog.h"
#include "tw_store_ops.h"

#include "tw_check.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static const tw_id user_a = {{0x01, 0xaa}};
static const tw_id user_b = {{0x01, 0xbb}};
static const tw_id res = {{0x02}};

struct append_ctx {
    const tw_id *user;
    int count;
};

static tw_err append_n(tw_txn *t, void *ctx)
{
    const struct append_ctx *c = ctx;
    tw_err err = TW_OK;
    for (int i = 0; err == TW_OK && i < c->count; i++)
        err = tw_txn_changelog_append(t, c->user, "task", &res, TW_CHANGE_UPSERT, NULL);
    return err;
}

static void append(const tw_id *user, int count)
{
    tw_err err = tw_txn_run(fx.store, append_n, &(struct append_ctx){user, count});
    ck_assert_msg(err == TW_OK, "%s %s", tw_err_name(err), tw_store_last_error());
}

/* The sequences a scan of user's change log yields. */
static int scan_seqs(const tw_id *user, const tw_key *after, bool reverse, uint64_t *out, int cap)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_CHANGE);
    tw_key_id(&prefix, user);
    tw_store_iter *it;
    ck_assert_int_eq(tw_store_scan(fx.store, &prefix, after ? after->bytes : NULL,
                                   after ? after->len : 0, reverse, &it),
                     TW_OK);
    int n = 0;
    while (tw_store_iter_next(it)) {
        tw_key_reader r;
        tw_id u;
        tw_store_iter_read_key(it, &r);
        tw_key_read_id(&r, &u);
        ck_assert_mem_eq(u.bytes, user->bytes, TW_ID_BYTES);
        ck_assert_int_lt(n, cap);
        tw_key_read_u64(&r, &out[n++]);
        ck_assert_int_eq(r.err, TW_OK);
    }
    ck_assert_int_eq(tw_store_iter_close(it), TW_OK);
    return n;
}

static void seq_key(tw_key *k, const tw_id *user, uint64_t seq)
{
    tw_key_init(k, TW_KF_CHANGE);
    tw_key_id(k, user);
    tw_key_u64(k, seq);
}

START_TEST(scans_stay_in_their_prefix_both_ways)
{
    append(&user_a, 5);
    append(&user_b, 3);
    uint64_t s[16];
    ck_assert_int_eq(scan_seqs(&user_a, NULL, false, s, 16), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(s[i], (uint64_t)i + 1);
    ck_assert_int_eq(scan_seqs(&user_b, NULL, true, s, 16), 3);
    ck_assert_uint_eq(s[0], 3);
    ck_assert_uint_eq(s[2], 1);
}
END_TEST

START_TEST(scans_resume_after_a_cursor)
{
    append(&user_a, 5);
    append(&user_b, 3);
    uint64_t s[16];
    tw_key after;
    seq_key(&after, &user_a, 2);
    ck_assert_int_eq(scan_seqs(&user_a, &after, false, s, 16), 3);
    ck_assert_uint_eq(s[0], 3);
    ck_assert_int_eq(scan_seqs(&user_a, &after, true, s, 16), 1);
    ck_assert_uint_eq(s[0], 1);
    /* A cursor that is not a stored key still splits the range. */
    tw_key partial;
    tw_key_init(&partial, TW_KF_CHANGE);
    tw_key_id(&partial, &user_a);
    ck_assert_int_eq(scan_seqs(&user_a, &partial, false, s, 16), 5);
    ck_assert_int_eq(scan_seqs(&user_a, &partial, true, s, 16), 0);
    /* Cursors outside the prefix are clamped. */
    seq_key(&after, &user_b, 1); /* sorts after all of user_a */
    ck_assert_int_eq(scan_seqs(&user_a, &after, false, s, 16), 0);
    ck_assert_int_eq(scan_seqs(&user_a, &after, true, s, 16), 5);
    ck_assert_uint_eq(s[0], 5);
    seq_key(&after, &user_a, 9);
    ck_assert_int_eq(scan_seqs(&user_b, &after, false, s, 16), 3);
    ck_assert_int_eq(scan_seqs(&user_b, &after, true, s, 16), 0);
}
END_TEST

START_TEST(a_prefix_ending_in_ff_bytes_has_an_upper_bound)
{
    const tw_id ff = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                       0xff, 0xff, 0xff}};
    append(&ff, 2);
    append(&user_a, 1);
    uint64_t s[4];
    ck_assert_int_eq(scan_seqs(&ff, NULL, false, s, 4), 2);
    ck_assert_int_eq(scan_seqs(&ff, NULL, true, s, 4), 2);
}
END_TEST

START_TEST(gets_say_not_found_and_refuse_partial_keys)
{
    tw_arena *arena = tw_arena_new(256);
    tw_key k;
    tw_value v;
    seq_key(&k, &user_a, 1);
    ck_assert_int_eq(tw_store_get(fx.store, &k, arena, &v), TW_ERR_NOT_FOUND);
    append(&user_a, 1);
    ck_assert_int_eq(tw_store_get(fx.store, &k, arena, &v), TW_OK);
    ck_assert_uint_eq(((Tw__Store__V1__ChangeEntry *)(void *)v.msg)->sequence, 1);
    tw_key_init(&k, TW_KF_CHANGE);
    tw_key_id(&k, &user_a);
    ck_assert_int_eq(tw_store_get(fx.store, &k, arena, &v), TW_ERR_INTERNAL);
    tw_key_u32(&k, 1); /* wrong part type: the key carries the error */
    ck_assert_int_eq(tw_store_get(fx.store, &k, arena, &v), TW_ERR_INTERNAL);
    tw_arena_free(arena);
}
END_TEST

START_TEST(stored_bytes_are_read_undecoded)
{
    tw_arena *arena = tw_arena_new(256);
    tw_key k;
    const uint8_t *bytes;
    size_t len;
    seq_key(&k, &user_a, 1);
    ck_assert_int_eq(tw_store_get_bytes(fx.store, &k, arena, &bytes, &len), TW_ERR_NOT_FOUND);
    append(&user_a, 1);
    ck_assert_int_eq(tw_store_get_bytes(fx.store, &k, arena, &bytes, &len), TW_OK);
    tw_value v;
    ck_assert_int_eq(tw_store_decode(TW_KF_CHANGE, bytes, len, arena, &v), TW_OK);
    ck_assert_uint_eq(((Tw__Store__V1__ChangeEntry *)(void *)v.msg)->sequence, 1);
    ck_assert_uint_eq(protobuf_c_message_get_packed_size(v.msg), len);

    tw_key prefix;
    tw_key_init(&prefix, TW_KF_CHANGE);
    tw_key_id(&prefix, &user_a);
    tw_store_iter *it;
    const uint8_t *scanned;
    size_t scanned_len;
    ck_assert_int_eq(tw_store_scan(fx.store, &prefix, NULL, 0, false, &it), TW_OK);
    ck_assert(tw_store_iter_next(it));
    tw_store_iter_bytes(it, &scanned, &scanned_len);
    ck_assert_uint_eq(scanned_len, len);
    ck_assert_mem_eq(scanned, bytes, len);
    ck_assert_int_eq(tw_store_iter_close(it), TW_OK);
    ck_assert_int_eq(tw_store_decode(TW_KF_CHANGE, (const uint8_t *)"\x0f\x00", 2, arena, &v),
                     TW_ERR_DB_CORRUPT);
    tw_arena_free(arena);
}
END_TEST

/* Writes raw bytes under a key, below the codecs, as damage would. */
static void put_raw(const tw_key *k, const char *val, size_t len)
{
    char *err = NULL;
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put_cf(fx.store->db, wo, fx.store->cf[tw_keyspace_family(k->family)->cf],
                   (const char *)k->bytes, k->len, val, len, &err);
    rocksdb_writeoptions_destroy(wo);
    ck_assert_ptr_null(err);
}

START_TEST(corrupt_values_are_reported_not_fatal)
{
    append(&user_a, 2);
    tw_key k;
    seq_key(&k, &user_a, 2);
    put_raw(&k, "\x0f\x00", 2);
    tw_arena *arena = tw_arena_new(256);
    tw_value v;
    ck_assert_int_eq(tw_store_get(fx.store, &k, arena, &v), TW_ERR_DB_CORRUPT);
    ck_assert_ptr_nonnull(strstr(tw_store_last_error(), "CHANGE"));

    tw_key prefix;
    tw_key_init(&prefix, TW_KF_CHANGE);
    tw_key_id(&prefix, &user_a);
    tw_store_iter *it;
    ck_assert_int_eq(tw_store_scan(fx.store, &prefix, NULL, 0, false, &it), TW_OK);
    ck_assert(tw_store_iter_next(it));
    ck_assert_int_eq(tw_store_iter_value(it, arena, &v), TW_OK);
    ck_assert(tw_store_iter_next(it));
    ck_assert_int_eq(tw_store_iter_value(it, arena, &v), TW_ERR_DB_CORRUPT);
    ck_assert_int_eq(tw_store_iter_close(it), TW_OK);

    tw_store_report report;
    ck_assert_int_eq(tw_store_verify(fx.store, &report), TW_ERR_DB_CORRUPT);
    ck_assert_uint_eq(report.bad_values, 1);
    ck_assert_uint_eq(report.bad_keys, 0);
    ck_assert_uint_eq(report.keys[TW_CF_CHANGELOG], 3); /* head and two entries */

    /* A key of no family, in the data column family. */
    tw_key junk;
    tw_key_init(&junk, TW_KF_JOB);
    junk.bytes[0] = 0xee;
    junk.len = 3;
    junk.nparts = 1;
    put_raw(&junk, "", 0);
    ck_assert_int_eq(tw_store_verify(fx.store, &report), TW_ERR_DB_CORRUPT);
    ck_assert_uint_eq(report.bad_keys, 1);
    ck_assert_ptr_nonnull(strstr(tw_store_last_error(), "1 bad keys, 1 bad values"));
    tw_arena_free(arena);
}
END_TEST

START_TEST(verify_and_check_pass_a_sound_store)
{
    append(&user_a, 10);
    tw_store_report report;
    ck_assert_int_eq(tw_store_verify(fx.store, &report), TW_OK);
    ck_assert_uint_eq(report.keys[TW_CF_CHANGELOG], 11);
    ck_assert_uint_eq(report.keys[TW_CF_META], 1); /* StoreInfo */
    ck_assert_uint_gt(report.bytes, 0);
    /* `twd check` alongside a running store, then on its own. */
    ck_assert_int_eq(tw_store_check(fx.dir, &report), TW_OK);
    ck_assert_uint_eq(report.keys[TW_CF_CHANGELOG], 11);
    tw_store_close(fx.store);
    fx.store = NULL;
    ck_assert_int_eq(tw_store_check(fx.dir, &report), TW_OK);
    fx_reopen(&fx);
}
END_TEST

START_TEST(the_store_keeps_its_identity_across_restarts)
{
    uint8_t key[STORE_PAGE_KEY_BYTES];
    memcpy(key, fx.store->page_key, sizeof key);
    append(&user_a, 3);
    tw_store_close(fx.store);
    fx_reopen(&fx);
    ck_assert_mem_eq(fx.store->page_key, key, sizeof key);
    tw_change_page page;
    tw_arena *arena = tw_arena_new(1024);
    ck_assert_int_eq(tw_store_changelog_read(fx.store, &user_a, 0, 10, arena, &page), TW_OK);
    ck_assert_uint_eq(page.count, 3);
    tw_arena_free(arena);
}
END_TEST

static tw_err put_info(tw_txn *t, void *ctx)
{
    Tw__Store__V1__StoreInfo *info = ctx;
    tw_key k;
    tw_key_init(&k, TW_KF_META);
    tw_key_str(&k, "store");
    return tw_txn_put(t, &k, &(tw_value){.msg = &info->base});
}

START_TEST(a_newer_format_is_refused)
{
    Tw__Store__V1__StoreInfo info = TW__STORE__V1__STORE_INFO__INIT;
    info.format_version = 99;
    info.page_token_key = (ProtobufCBinaryData){STORE_PAGE_KEY_BYTES, fx.store->page_key};
    ck_assert_int_eq(tw_txn_run(fx.store, put_info, &info), TW_OK);
    tw_store_close(fx.store);
    tw_store_options o = {.data_dir = fx.dir};
    ck_assert_int_eq(tw_store_open(&o, &fx.store), TW_ERR_FAILED_PRECONDITION);
    ck_assert_ptr_null(fx.store);
    ck_assert_ptr_nonnull(strstr(tw_store_last_error(), "newer"));
}
END_TEST

START_TEST(read_only_stores_read_and_refuse_writes)
{
    append(&user_a, 2);
    tw_store_close(fx.store);
    tw_store_options o = {.data_dir = fx.dir, .read_only = true};
    ck_assert_int_eq(tw_store_open(&o, &fx.store), TW_OK);
    uint64_t s[4];
    ck_assert_int_eq(scan_seqs(&user_a, NULL, false, s, 4), 2);
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_ERR_DB_READ_ONLY);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(tw_txn_run(fx.store, append_n, &(struct append_ctx){&user_a, 1}),
                     TW_ERR_DB_READ_ONLY);
}
END_TEST

START_TEST(a_missing_store_cannot_be_opened_read_only)
{
    char *dir = fx_mkdtemp();
    tw_store *s;
    tw_store_options o = {.data_dir = dir, .read_only = true};
    ck_assert_int_eq(tw_store_open(&o, &s), TW_ERR_DB);
    ck_assert_ptr_nonnull(strstr(tw_store_last_error(), dir));
    fx_rmdir(dir);
}
END_TEST

static void *other_thread_error(void *arg)
{
    return (void *)tw_store_last_error();
}

START_TEST(the_last_error_belongs_to_its_thread)
{
    tw_txn *t;
    tw_store_close(fx.store);
    tw_store_options o = {.data_dir = fx.dir, .read_only = true};
    ck_assert_int_eq(tw_store_open(&o, &fx.store), TW_OK);
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_ERR_DB_READ_ONLY);
    ck_assert_str_ne(tw_store_last_error(), "");
    pthread_t th;
    const char *other;
    pthread_create(&th, NULL, other_thread_error, NULL);
    pthread_join(th, (void **)&other);
    ck_assert_str_eq(other, "");
}
END_TEST

/*
 * A full disk, simulated with a file size limit: once the WAL cannot grow,
 * the commit fails with TW_ERR_DB and RocksDB's words in the last error;
 * RocksDB then refuses every write, which the store reports as
 * TW_ERR_DB_READ_ONLY; nothing crashes, and what was written before can
 * still be read. Check runs each test in its own process, so the limit dies
 * with it.
 */
START_TEST(writes_fail_cleanly_and_reads_go_on_when_the_disk_is_full)
{
    append(&user_a, 3);
    ck_assert(!tw_store_writes_failing(fx.store));
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {.rlim_cur = 64 * 1024, .rlim_max = RLIM_INFINITY};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    tw_err err = TW_OK;
    for (int tries = 0; err == TW_OK && tries < 1000; tries++)
        err = tw_txn_run(fx.store, append_n, &(struct append_ctx){&user_b, 20});
    ck_assert_msg(err == TW_ERR_DB, "%s", tw_err_name(err));
    ck_assert_ptr_nonnull(strstr(tw_store_last_error(), "File too large"));
    ck_assert(tw_store_writes_failing(fx.store));
    err = tw_txn_run(fx.store, append_n, &(struct append_ctx){&user_a, 1});
    ck_assert_int_eq(err, TW_ERR_DB_READ_ONLY);
    uint64_t s[8];
    ck_assert_int_eq(scan_seqs(&user_a, NULL, false, s, 8), 3);
}
END_TEST

START_TEST(durable_commits_work)
{
    tw_store_close(fx.store);
    tw_store_options o = {.data_dir = fx.dir, .durability = TW_DURABLE};
    ck_assert_int_eq(tw_store_open(&o, &fx.store), TW_OK);
    append(&user_a, 2);
    uint64_t s[4];
    ck_assert_int_eq(scan_seqs(&user_a, NULL, false, s, 4), 2);
}
END_TEST

/* RocksDB's count of WAL syncs, from its statistics. */
static long wal_syncs(void)
{
    char *stats = tw_store_statistics(fx.store);
    ck_assert_ptr_nonnull(stats);
    const char *line = strstr(stats, "rocksdb.wal.synced COUNT : ");
    ck_assert_ptr_nonnull(line);
    long n = strtol(line + strlen("rocksdb.wal.synced COUNT : "), NULL, 10);
    free(stats);
    return n;
}

static tw_err append_unsynced(tw_txn *t, void *ctx)
{
    tw_txn_skip_sync(t);
    return tw_txn_changelog_append(t, ctx, "task", &user_b, TW_CHANGE_UPSERT, NULL);
}

/* tw_txn_skip_sync: the commit does not wait for a sync of its own, and
 * the next commit that waits syncs it with its own. */
START_TEST(a_commit_that_skips_the_sync_is_synced_by_the_next)
{
    tw_store_close(fx.store);
    tw_store_options o = {.data_dir = fx.dir, .durability = TW_DURABLE, .statistics = true};
    ck_assert_int_eq(tw_store_open(&o, &fx.store), TW_OK);
    long before = wal_syncs();
    ck_assert_int_eq(tw_txn_run(fx.store, append_unsynced, (void *)&user_a), TW_OK);
    ck_assert_int_eq(wal_syncs(), before);
    append(&user_a, 1);
    ck_assert_int_eq(wal_syncs(), before + 1);
    uint64_t s[4];
    ck_assert_int_eq(scan_seqs(&user_a, NULL, false, s, 4), 2);
}
END_TEST

enum { SYNC_THREADS = 8, SYNC_COMMITS = 40 };

static void *append_durably(void *arg)
{
    tw_err *err = arg;
    for (int i = 0; i < SYNC_COMMITS && *err == TW_OK; i++)
        *err = tw_txn_run(fx.store, append_n, &(struct append_ctx){&user_a, 1});
    return NULL;
}

/* Group commit: committers at once share syncs, and every one of them
 * returns once a sync covers its commit. A waiter that missed its wake-up
 * would hang here until the test's timeout. */
START_TEST(concurrent_durable_commits_share_syncs_and_all_return)
{
    tw_store_close(fx.store);
    tw_store_options o = {.data_dir = fx.dir, .durability = TW_DURABLE, .statistics = true};
    ck_assert_int_eq(tw_store_open(&o, &fx.store), TW_OK);
    long before = wal_syncs();
    pthread_t threads[SYNC_THREADS];
    tw_err errs[SYNC_THREADS] = {0};
    for (int i = 0; i < SYNC_THREADS; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, append_durably, &errs[i]), 0);
    for (int i = 0; i < SYNC_THREADS; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_msg(errs[i] == TW_OK, "%s", tw_err_name(errs[i]));
    }
    enum { COMMITS = SYNC_THREADS * SYNC_COMMITS };
    uint64_t s[COMMITS + 1];
    ck_assert_int_eq(scan_seqs(&user_a, NULL, false, s, COMMITS + 1), COMMITS);
    long syncs = wal_syncs() - before;
    ck_assert_int_ge(syncs, 1);
    ck_assert_int_le(syncs, COMMITS);
}
END_TEST

/* twd's one clock: the one the store was given, else the wall clock. */
START_TEST(now_is_the_given_clock_or_the_wall_clock)
{
    ck_assert_int_eq(tw_store_now_ms(fx.store), FX_EPOCH_MS);
    atomic_store(&fx.clock.ms, FX_EPOCH_MS + 1234);
    ck_assert_int_eq(tw_store_now_ms(fx.store), FX_EPOCH_MS + 1234);
    tw_store_close(fx.store);
    tw_store_options o = {.data_dir = fx.dir, .durability = TW_FAST};
    ck_assert_int_eq(tw_store_open(&o, &fx.store), TW_OK);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t now = tw_store_now_ms(fx.store);
    ck_assert_int_ge(now, wall - 60000);
    ck_assert_int_le(now, wall + 60000);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, scans_stay_in_their_prefix_both_ways);
    tcase_add_test(tc, now_is_the_given_clock_or_the_wall_clock);
    tcase_add_test(tc, scans_resume_after_a_cursor);
    tcase_add_test(tc, a_prefix_ending_in_ff_bytes_has_an_upper_bound);
    tcase_add_test(tc, gets_say_not_found_and_refuse_partial_keys);
    tcase_add_test(tc, stored_bytes_are_read_undecoded);
    tcase_add_test(tc, corrupt_values_are_reported_not_fatal);
    tcase_add_test(tc, verify_and_check_pass_a_sound_store);
    tcase_add_test(tc, the_store_keeps_its_identity_across_restarts);
    tcase_add_test(tc, a_newer_format_is_refused);
    tcase_add_test(tc, read_only_stores_read_and_refuse_writes);
    tcase_add_test(tc, a_missing_store_cannot_be_opened_read_only);
    tcase_add_test(tc, the_last_error_belongs_to_its_thread);
    tcase_add_test(tc, writes_fail_cleanly_and_reads_go_on_when_the_disk_is_full);
    tcase_add_test(tc, durable_commits_work);
    tcase_add_test(tc, a_commit_that_skips_the_sync_is_synced_by_the_next);
    tcase_add_test(tc, concurrent_durable_commits_share_syncs_and_all_return);
    suite_add_tcase(s, tc);
    return s;
}
