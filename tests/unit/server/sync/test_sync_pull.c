/* Unit tests for server/sync/sync_pull.c: incremental pages (one entry per
 * resource, tombstones), full syncs that hand over to the log without
 * losing a change, resource-type filters, tokens bound to user and types,
 * and the resync a trimmed log forces. */
#include "sync/sync_pull.h"
#include "task_fixture.h"

#include "tw_check.h"

#include <string.h>

static tw_sync_types all_types, completions_only;

static void types_setup(void)
{
    tf_setup();
    char why[160];
    ck_assert(tw_sync_types_parse(NULL, 0, &all_types, why, sizeof why));
    char *only[] = {"task_completion"};
    ck_assert(tw_sync_types_parse(only, 1, &completions_only, why, sizeof why));
}

/* Everything from cursor on, page by page, into changes[]. */
static Tw__V1__Change *changes[200];
static size_t nchanges;

static void pull_all(const tw_sync_types *types, tw_sync_cursor *c, uint32_t page_size)
{
    nchanges = 0;
    for (int guard = 0; guard < 100; guard++) {
        tw_sync_page page;
        ck_assert_int_eq(tw_sync_read(fx.store, &fx_alice, types, c, page_size, fx.arena, &page),
                         TW_OK);
        ck_assert(!page.resync);
        for (size_t i = 0; i < page.count; i++)
            changes[nchanges++] = page.changes[i];
        if (!page.more)
            return;
    }
    ck_abort_msg("pulling did not end");
}

static size_t count(const char *type, bool deleted)
{
    size_t n = 0;
    for (size_t i = 0; i < nchanges; i++)
        n += strcmp(changes[i]->resource_type, type) == 0 && changes[i]->deleted == deleted;
    return n;
}

START_TEST(incremental_pages_send_each_resource_once)
{
    tw_task_record *a = tf_create_ok(tf_task("A")), *b = tf_create_ok(tf_task("B")), *rec;
    tw_id ida = tf_id(a), idb = tf_id(b);
    ck_assert_int_eq(tf_update(&ida, tf_task("A2"), TW_TF_TITLE, NULL, &rec), TW_OK);
    ck_assert_int_eq(tf_update(&ida, tf_task("A3"), TW_TF_TITLE, NULL, &rec), TW_OK);
    ck_assert_int_eq(tf_complete(&idb, tf_env.now_ms, NULL, NULL), TW_OK);
    int32_t deleted;
    tw_task_record *c = tf_create_ok(tf_task("C"));
    tw_id idc = tf_id(c);
    ck_assert_int_eq(tf_delete(&idc, false, &deleted), TW_OK);
    tw_sync_cursor cur = {.sequence = 0};
    pull_all(&all_types, &cur, 100);
    ck_assert_uint_eq(count("task", false), 2);
    ck_assert_uint_eq(count("task", true), 1);
    ck_assert_uint_eq(count("task_completion", false), 1);
    for (size_t i = 0; i < nchanges; i++) {
        if (strcmp(changes[i]->resource_id, a->task->id) == 0)
            ck_assert_str_eq(changes[i]->task->title, "A3");
        if (changes[i]->deleted)
            ck_assert_int_eq(changes[i]->resource_case, TW__V1__CHANGE__RESOURCE__NOT_SET);
        ck_assert_uint_gt(changes[i]->sequence, 0);
        ck_assert_ptr_nonnull(changes[i]->change_time);
    }
    ck_assert_uint_eq(cur.sequence, tf_log_end());
    /* Small pages see every change too. */
    cur.sequence = 0;
    pull_all(&all_types, &cur, 1);
    ck_assert_uint_eq(
        nchanges, tf_log_end() - 1); /* c's upsert was followed by its tombstone in another page */
    /* Only completions. */
    cur.sequence = 0;
    pull_all(&completions_only, &cur, 100);
    ck_assert_uint_eq(nchanges, 1);
    ck_assert_int_eq(changes[0]->resource_case, TW__V1__CHANGE__RESOURCE_TASK_COMPLETION);
    ck_assert_str_eq(changes[0]->task_completion->task_id, b->task->id);
}
END_TEST

START_TEST(full_syncs_hand_over_to_the_log)
{
    for (int i = 0; i < 7; i++) {
        tw_id id = tf_id(tf_create_ok(tf_task("t")));
        if (i % 3 == 0)
            ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, NULL, NULL), TW_OK);
    }
    tw_sync_cursor cur;
    ck_assert_int_eq(tw_sync_token_read(fx.store, &fx_alice, &all_types, "", fx.arena, &cur),
                     TW_OK);
    ck_assert(cur.full);
    ck_assert_uint_eq(cur.sequence, tf_log_end());
    /* A page of the snapshot, then a change, then the rest. */
    tw_sync_page page;
    ck_assert_int_eq(tw_sync_read(fx.store, &fx_alice, &all_types, &cur, 3, fx.arena, &page),
                     TW_OK);
    ck_assert_uint_eq(page.count, 3);
    ck_assert(page.more && cur.full);
    char *token;
    ck_assert_int_eq(tw_sync_token_make(fx.store, &fx_alice, &all_types, &cur, fx.arena, &token),
                     TW_OK);
    tw_task_record *late = tf_create_ok(tf_task("made during the full sync"));
    tw_sync_cursor resumed;
    ck_assert_int_eq(tw_sync_token_read(fx.store, &fx_alice, &all_types, token, fx.arena, &resumed),
                     TW_OK);
    ck_assert(resumed.full);
    pull_all(&all_types, &resumed, 2);
    ck_assert(!resumed.full);
    ck_assert_uint_eq(resumed.sequence, tf_log_end());
    size_t seen_late = 0;
    for (size_t i = 0; i < nchanges; i++)
        seen_late += strcmp(changes[i]->resource_id, late->task->id) == 0;
    ck_assert_uint_ge(seen_late, 1); /* never lost; possibly sent twice */
    ck_assert_uint_eq(nchanges + 3 - seen_late + 1, 7 + 3 + 1);
}
END_TEST

START_TEST(tokens_are_bound_to_user_and_types)
{
    tf_create_ok(tf_task("t"));
    tw_sync_cursor cur = {.sequence = 1};
    char *token;
    ck_assert_int_eq(tw_sync_token_make(fx.store, &fx_alice, &all_types, &cur, fx.arena, &token),
                     TW_OK);
    tw_sync_cursor back;
    ck_assert_int_eq(tw_sync_token_read(fx.store, &fx_alice, &all_types, token, fx.arena, &back),
                     TW_OK);
    ck_assert(!back.full && back.sequence == 1);
    ck_assert_int_eq(tw_sync_token_read(fx.store, &fx_bob, &all_types, token, fx.arena, &back),
                     TW_ERR_BAD_PAGE_TOKEN);
    ck_assert_int_eq(
        tw_sync_token_read(fx.store, &fx_alice, &completions_only, token, fx.arena, &back),
        TW_ERR_BAD_PAGE_TOKEN);
    ck_assert_int_eq(
        tw_sync_token_read(fx.store, &fx_alice, &all_types, "garbage", fx.arena, &back),
        TW_ERR_BAD_PAGE_TOKEN);
    tw_sync_types t;
    char why[160];
    char *unknown[] = {"task", "no_such_type"}, *twice[] = {"task", "task"};
    ck_assert(!tw_sync_types_parse(unknown, 2, &t, why, sizeof why));
    ck_assert_ptr_nonnull(strstr(why, "no_such_type"));
    ck_assert(!tw_sync_types_parse(twice, 2, &t, why, sizeof why));
}
END_TEST

START_TEST(a_trimmed_log_forces_a_resync)
{
    for (int i = 0; i < 3; i++)
        tf_create_ok(tf_task("t"));
    uint64_t removed;
    ck_assert_int_eq(tw_store_changelog_trim(fx.store, &fx_alice, FX_EPOCH_MS + 1, &removed),
                     TW_OK);
    ck_assert_uint_eq(removed, 3);
    tw_sync_cursor cur = {.sequence = 1};
    tw_sync_page page;
    ck_assert_int_eq(tw_sync_read(fx.store, &fx_alice, &all_types, &cur, 10, fx.arena, &page),
                     TW_OK);
    ck_assert(page.resync);
    /* A cursor beyond the end (a restored database) too. */
    cur.sequence = 99;
    ck_assert_int_eq(tw_sync_read(fx.store, &fx_alice, &all_types, &cur, 10, fx.arena, &page),
                     TW_OK);
    ck_assert(page.resync);
    /* Up to date is fine. */
    cur.sequence = 3;
    ck_assert_int_eq(tw_sync_read(fx.store, &fx_alice, &all_types, &cur, 10, fx.arena, &page),
                     TW_OK);
    ck_assert(!page.resync && page.count == 0 && !page.more);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("sync_pull");
    TCase *tc = tcase_create("sync_pull");
    tcase_add_checked_fixture(tc, types_setup, tf_teardown);
    tcase_add_test(tc, incremental_pages_send_each_resource_once);
    tcase_add_test(tc, full_syncs_hand_over_to_the_log);
    tcase_add_test(tc, tokens_are_bound_to_user_and_types);
    tcase_add_test(tc, a_trimmed_log_forces_a_resync);
    suite_add_tcase(s, tc);
    return s;
}
