/* Unit tests for store/changelog.c: gap-free per-user sequences, even
 * under concurrent writers; reads after a cursor; trimming and the resync
 * it forces; the commit listener. */
#include "store_fixture.h"
#include "tw_changelog.h"

#include "tw_check.h"

#include <pthread.h>
#include <string.h>

struct append {
    const tw_id *user;
    int count;
    tw_change_op op;
    uint64_t last; /* out: the last sequence handed out */
};

static tw_err append_fn(tw_txn *t, void *ctx)
{
    struct append *a = ctx;
    tw_err err = TW_OK;
    for (int i = 0; err == TW_OK && i < a->count; i++) {
        tw_id res = tw_id_new();
        err = tw_txn_changelog_append(t, a->user, "task", &res, a->op, &a->last);
    }
    return err;
}

static uint64_t append(const tw_id *user, int count)
{
    struct append a = {user, count, TW_CHANGE_UPSERT, 0};
    tw_err err = tw_txn_run(fx.store, append_fn, &a);
    ck_assert_msg(err == TW_OK, "%s %s", tw_err_name(err), tw_store_last_error());
    return a.last;
}

static tw_change_page read_page(const tw_id *user, uint64_t since, uint32_t limit)
{
    tw_change_page page;
    ck_assert_int_eq(tw_store_changelog_read(fx.store, user, since, limit, fx.arena, &page), TW_OK);
    return page;
}

START_TEST(sequences_are_per_user_and_gap_free)
{
    ck_assert_uint_eq(append(&fx_alice, 3), 3);
    ck_assert_uint_eq(append(&fx_bob, 1), 1);
    ck_assert_uint_eq(append(&fx_alice, 2), 5);
    tw_change_page page = read_page(&fx_alice, 0, 100);
    ck_assert_uint_eq(page.count, 5);
    ck_assert_uint_eq(page.last_sequence, 5);
    ck_assert_uint_eq(page.oldest_sequence, 1);
    ck_assert(!page.more && !page.resync);
    for (size_t i = 0; i < page.count; i++) {
        ck_assert_uint_eq(page.changes[i].sequence, i + 1);
        ck_assert_str_eq(page.changes[i].resource_type, "task");
        ck_assert_int_eq(page.changes[i].op, TW_CHANGE_UPSERT);
        ck_assert_int_eq(page.changes[i].time_ms, FX_EPOCH_MS);
    }
    ck_assert_uint_eq(read_page(&fx_bob, 0, 100).count, 1);
}
END_TEST

START_TEST(reads_resume_after_the_cursor_with_a_limit)
{
    append(&fx_alice, 7);
    tw_change_page page = read_page(&fx_alice, 2, 3);
    ck_assert_uint_eq(page.count, 3);
    ck_assert_uint_eq(page.changes[0].sequence, 3);
    ck_assert(page.more);
    page = read_page(&fx_alice, 5, 3);
    ck_assert_uint_eq(page.count, 2);
    ck_assert(!page.more);
    page = read_page(&fx_alice, 7, 3);
    ck_assert_uint_eq(page.count, 0);
    ck_assert(!page.resync);
    page = read_page(&fx_alice, 0, 0); /* the head only */
    ck_assert_uint_eq(page.count, 0);
    ck_assert_uint_eq(page.last_sequence, 7);
    page = read_page(&fx_bob, 0, 10); /* a user who never wrote */
    ck_assert_uint_eq(page.count, 0);
    ck_assert_uint_eq(page.last_sequence, 0);
    ck_assert(!page.resync);
}
END_TEST

START_TEST(tombstones_are_entries_too)
{
    struct append a = {&fx_alice, 1, TW_CHANGE_TOMBSTONE, 0};
    ck_assert_int_eq(tw_txn_run(fx.store, append_fn, &a), TW_OK);
    ck_assert_int_eq(read_page(&fx_alice, 0, 10).changes[0].op, TW_CHANGE_TOMBSTONE);
    a.op = 7;
    ck_assert_int_eq(tw_txn_run(fx.store, append_fn, &a), TW_ERR_INTERNAL);
}
END_TEST

START_TEST(a_cursor_beyond_the_head_needs_a_resync)
{
    append(&fx_alice, 2);
    tw_change_page page = read_page(&fx_alice, 9, 10); /* as after a restore from backup */
    ck_assert(page.resync);
    ck_assert_uint_eq(page.count, 0);
    ck_assert_uint_eq(page.last_sequence, 2);
}
END_TEST

START_TEST(trimming_removes_old_entries_and_forces_resync_behind_it)
{
    append(&fx_alice, 5);
    append(&fx_bob, 2);
    atomic_fetch_add(&fx.clock.ms, 3600 * 1000);
    append(&fx_alice, 4);
    uint64_t removed;
    ck_assert_int_eq(tw_store_changelog_trim(fx.store, &fx_alice, FX_EPOCH_MS + 1, &removed),
                     TW_OK);
    ck_assert_uint_eq(removed, 5);
    tw_change_page page = read_page(&fx_alice, 0, 100);
    ck_assert(page.resync);
    ck_assert_uint_eq(page.oldest_sequence, 6);
    page = read_page(&fx_alice, 4, 100);
    ck_assert(page.resync);
    page = read_page(&fx_alice, 5, 100); /* saw everything trimmed: fine */
    ck_assert(!page.resync);
    ck_assert_uint_eq(page.count, 4);
    ck_assert_uint_eq(page.changes[0].sequence, 6);
    ck_assert_uint_eq(read_page(&fx_bob, 0, 100).count, 2); /* untouched */
    ck_assert_uint_eq(append(&fx_alice, 1), 10);            /* sequences go on */

    /* Every user's log at once, in chunks. */
    append(&fx_bob, 600);
    atomic_fetch_add(&fx.clock.ms, 3600 * 1000);
    ck_assert_int_eq(tw_store_changelog_trim(fx.store, NULL, FX_EPOCH_MS + 7200 * 1000, &removed),
                     TW_OK);
    ck_assert_uint_eq(removed, 5 + 602);
    ck_assert_uint_eq(read_page(&fx_bob, 602, 100).count, 0);
    ck_assert(read_page(&fx_bob, 601, 100).resync);
}
END_TEST

struct heard {
    int calls;
    tw_id user;
    uint64_t last;
};

static void listener(void *ctx, const tw_id *user, uint64_t last)
{
    struct heard *h = ctx;
    h->calls++;
    h->user = *user;
    h->last = last;
}

static tw_err append_two_users(tw_txn *t, void *ctx)
{
    tw_id res = tw_id_new();
    tw_err err = tw_txn_changelog_append(t, &fx_alice, "task", &res, TW_CHANGE_UPSERT, NULL);
    if (err == TW_OK)
        err = tw_txn_changelog_append(t, &fx_bob, "task", &res, TW_CHANGE_UPSERT, NULL);
    if (err == TW_OK)
        err = tw_txn_changelog_append(t, &fx_alice, "task", &res, TW_CHANGE_UPSERT, NULL);
    return err;
}

START_TEST(the_listener_hears_each_user_once_per_commit)
{
    struct heard h = {0};
    tw_store_set_commit_listener(fx.store, listener, &h);
    append(&fx_alice, 3);
    ck_assert_int_eq(h.calls, 1);
    ck_assert_uint_eq(h.last, 3);
    ck_assert_mem_eq(h.user.bytes, fx_alice.bytes, TW_ID_BYTES);
    ck_assert_int_eq(tw_txn_run(fx.store, append_two_users, NULL), TW_OK);
    ck_assert_int_eq(h.calls, 3);

    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(append_two_users(t, NULL), TW_OK);
    tw_txn_abort(t);
    ck_assert_int_eq(h.calls, 3);
    ck_assert_uint_eq(read_page(&fx_alice, 0, 0).last_sequence, 5);
    tw_store_set_commit_listener(fx.store, NULL, NULL);
    append(&fx_alice, 1);
    ck_assert_int_eq(h.calls, 3);
}
END_TEST

#define WRITERS 4
#define WRITES  50

static void *write_many(void *arg)
{
    uint64_t *seqs = arg;
    for (int i = 0; i < WRITES; i++) {
        struct append a = {&fx_alice, 1, TW_CHANGE_UPSERT, 0};
        if (tw_txn_run(fx.store, append_fn, &a) != TW_OK)
            return (void *)1;
        seqs[i] = a.last;
    }
    return NULL;
}

START_TEST(concurrent_writers_of_one_user_get_distinct_sequences)
{
    static uint64_t seqs[WRITERS][WRITES];
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&th[i], NULL, write_many, seqs[i]);
    for (int i = 0; i < WRITERS; i++) {
        void *failed;
        pthread_join(th[i], &failed);
        ck_assert_ptr_null(failed);
    }
    static bool seen[WRITERS * WRITES + 1];
    for (int i = 0; i < WRITERS; i++) {
        for (int j = 0; j < WRITES; j++) {
            ck_assert(seqs[i][j] >= 1 && seqs[i][j] <= WRITERS * WRITES);
            ck_assert(!seen[seqs[i][j]]);
            seen[seqs[i][j]] = true;
            ck_assert(j == 0 || seqs[i][j] > seqs[i][j - 1]);
        }
    }
    tw_change_page page = read_page(&fx_alice, 0, TW_CHANGELOG_MAX_LIMIT);
    ck_assert_uint_eq(page.count, WRITERS * WRITES);
    ck_assert_uint_eq(page.last_sequence, WRITERS * WRITES);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("changelog");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, sequences_are_per_user_and_gap_free);
    tcase_add_test(tc, reads_resume_after_the_cursor_with_a_limit);
    tcase_add_test(tc, tombstones_are_entries_too);
    tcase_add_test(tc, a_cursor_beyond_the_head_needs_a_resync);
    tcase_add_test(tc, trimming_removes_old_entries_and_forces_resync_behind_it);
    tcase_add_test(tc, the_listener_hears_each_user_once_per_commit);
    tcase_add_test(tc, concurrent_writers_of_one_user_get_distinct_sequences);
    suite_add_tcase(s, tc);
    return s;
}
