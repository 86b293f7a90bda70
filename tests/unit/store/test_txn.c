/* Unit tests for store/txn.c: one transaction writes across column
 * families all or nothing; conflicts are detected and retried; a
 * transaction sees its own writes and nobody else does before commit; a
 * commit that writes a cached family moves its owner's write epoch, or the
 * shared one. */
#include "store_fixture.h"
#include "tw/store/v1/accounts.pb-c.h"
#include "tw/store/v1/billing_records.pb-c.h"
#include "tw/store/v1/records.pb-c.h"
#include "tw_changelog.h"
#include "tw_counter.h"
#include "tw_jobs.h"
#include "tw_unique.h"

#include "tw_check.h"

#include <string.h>

static const tw_id user = {{0x01, 0x42}};
static const tw_id res = {{0x02, 0x01}};
static const tw_counter tasks = {.name = "tasks_created", .dims = "plan=free"};

static void meta_key(tw_key *k, const char *name)
{
    tw_key_init(k, TW_KF_META);
    tw_key_str(k, name);
}

static tw_err put_meta(tw_txn *t, const char *name, uint32_t version)
{
    tw_key k;
    meta_key(&k, name);
    Tw__Store__V1__StoreInfo m = TW__STORE__V1__STORE_INFO__INIT;
    m.format_version = version;
    return tw_txn_put(t, &k, &(tw_value){.msg = &m.base});
}

/* The version stored under name, 0 when absent. */
static uint32_t meta_version(const char *name)
{
    tw_key k;
    tw_value v;
    meta_key(&k, name);
    tw_err err = tw_store_get(fx.store, &k, fx.arena, &v);
    if (err == TW_ERR_NOT_FOUND)
        return 0;
    ck_assert_int_eq(err, TW_OK);
    return ((Tw__Store__V1__StoreInfo *)(void *)v.msg)->format_version;
}

/* One write of each kind, as an RPC's transaction makes them. */
static tw_err write_everything(tw_txn *t, void *ctx)
{
    tw_err err;
    if ((err = put_meta(t, "entity", 7)) ||
        (err = tw_txn_unique_claim(t, "email", "a@example.com", &user)) ||
        (err = tw_txn_counter_add(t, &tasks, 100, 1)) ||
        (err = tw_txn_changelog_append(t, &user, "task", &res, TW_CHANGE_UPSERT, NULL)))
        return err;
    return tw_txn_job_enqueue(t, "notify", "hi", 2, NULL, NULL);
}

/* What write_everything left: how many of its five writes are visible. */
static int visible_writes(void)
{
    int n = meta_version("entity") == 7;
    tw_id owner;
    n += tw_store_unique_lookup(fx.store, "email", "a@example.com", &owner) == TW_OK;
    uint64_t total = 0;
    ck_assert_int_eq(tw_store_counter_read(fx.store, &tasks, 100, 1, NULL, &total), TW_OK);
    n += total == 1;
    tw_change_page page;
    ck_assert_int_eq(tw_store_changelog_read(fx.store, &user, 0, 10, fx.arena, &page), TW_OK);
    n += page.count == 1;
    tw_job job;
    n += tw_store_job_lease(fx.store, "notify", 1000, fx.arena, &job) == TW_OK;
    return n;
}

START_TEST(an_aborted_transaction_writes_nothing)
{
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(write_everything(t, NULL), TW_OK);
    tw_txn_abort(t);
    ck_assert_int_eq(visible_writes(), 0);
}
END_TEST

START_TEST(a_committed_transaction_writes_everything)
{
    ck_assert_int_eq(tw_txn_run(fx.store, write_everything, NULL), TW_OK);
    ck_assert_int_eq(visible_writes(), 5);
}
END_TEST

static tw_err write_then_fail(tw_txn *t, void *ctx)
{
    tw_err err = write_everything(t, ctx);
    return err ? err : TW_ERR_VALIDATION;
}

START_TEST(a_failing_handler_writes_nothing)
{
    ck_assert_int_eq(tw_txn_run(fx.store, write_then_fail, NULL), TW_ERR_VALIDATION);
    ck_assert_int_eq(visible_writes(), 0);
}
END_TEST

START_TEST(a_transaction_sees_its_own_writes_first)
{
    tw_txn *t;
    tw_key k;
    tw_value v;
    meta_key(&k, "mine");
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_get(t, &k, fx.arena, &v), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(put_meta(t, "mine", 3), TW_OK);
    ck_assert_int_eq(tw_txn_get(t, &k, fx.arena, &v), TW_OK);
    ck_assert_uint_eq(((Tw__Store__V1__StoreInfo *)(void *)v.msg)->format_version, 3);
    ck_assert_uint_eq(meta_version("mine"), 0);
    ck_assert_int_eq(tw_txn_delete(t, &k), TW_OK);
    ck_assert_int_eq(tw_txn_get(t, &k, fx.arena, &v), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(put_meta(t, "mine", 4), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    ck_assert_uint_eq(meta_version("mine"), 4);
}
END_TEST

/* An index entry of the task res under user (a TW_VAL_NONE family). */
static void index_key(tw_key *k)
{
    tw_key_init(k, TW_KF_TASK_BY_STATUS);
    tw_key_id(k, &user);
    tw_key_u32(k, 1);
    tw_key_id(k, &res);
}

static bool index_present(void)
{
    tw_key k;
    tw_value v;
    index_key(&k);
    tw_err err = tw_store_get(fx.store, &k, fx.arena, &v);
    ck_assert(err == TW_OK || err == TW_ERR_NOT_FOUND);
    return err == TW_OK;
}

START_TEST(index_entries_are_untracked_and_guarded_by_their_entity)
{
    tw_txn *t1, *t2;
    tw_key k, entity;
    tw_value v;
    index_key(&k);
    meta_key(&entity, "entity");
    /* Written untracked: t1 reads it back, and a rival's commit of the
     * same key is no conflict for t1. */
    ck_assert_int_eq(tw_txn_begin(fx.store, &t1), TW_OK);
    ck_assert_int_eq(tw_txn_put_index(t1, &k, NULL), TW_OK);
    ck_assert_int_eq(tw_txn_get(t1, &k, fx.arena, &v), TW_OK);
    ck_assert_int_eq(tw_txn_begin(fx.store, &t2), TW_OK);
    ck_assert_int_eq(tw_txn_put(t2, &k, NULL), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t2), TW_OK);
    ck_assert_int_eq(tw_txn_delete_index(t1, &k), TW_OK);
    ck_assert_int_eq(tw_txn_get(t1, &k, fx.arena, &v), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_txn_commit(t1), TW_OK);
    ck_assert(!index_present());
    /* Guarded by the entity t1 reads for update: a rival changing the
     * entity makes t1's whole commit, index entry included, fail. */
    ck_assert_int_eq(tw_txn_begin(fx.store, &t1), TW_OK);
    ck_assert_int_eq(tw_txn_get_for_update(t1, &entity, fx.arena, &v), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_txn_put_index(t1, &k, NULL), TW_OK);
    ck_assert_int_eq(tw_txn_begin(fx.store, &t2), TW_OK);
    ck_assert_int_eq(put_meta(t2, "entity", 1), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t2), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t1), TW_ERR_CONFLICT);
    ck_assert(!index_present());
    /* An aborted transaction leaves its entries out too. */
    ck_assert_int_eq(tw_txn_begin(fx.store, &t1), TW_OK);
    ck_assert_int_eq(tw_txn_put_index(t1, &k, NULL), TW_OK);
    tw_txn_abort(t1);
    ck_assert(!index_present());
}
END_TEST

/* t1 reads "raced" (for update or not) and writes it and "bystander";
 * meanwhile t2 writes "raced" and commits first. Returns t1's commit. */
static tw_err commit_after_a_rival(bool for_update)
{
    tw_txn *t1, *t2;
    tw_key k;
    tw_value v;
    meta_key(&k, "raced");
    ck_assert_int_eq(tw_txn_begin(fx.store, &t1), TW_OK);
    tw_err err =
        for_update ? tw_txn_get_for_update(t1, &k, fx.arena, &v) : tw_txn_get(t1, &k, fx.arena, &v);
    ck_assert_int_eq(err, TW_ERR_NOT_FOUND);
    ck_assert_int_eq(put_meta(t1, "bystander", 1), TW_OK);
    ck_assert_int_eq(tw_txn_begin(fx.store, &t2), TW_OK);
    ck_assert_int_eq(put_meta(t2, "raced", 2), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t2), TW_OK);
    return tw_txn_commit(t1);
}

START_TEST(a_key_read_for_update_and_changed_meanwhile_conflicts)
{
    ck_assert_int_eq(commit_after_a_rival(true), TW_ERR_CONFLICT);
    ck_assert_uint_eq(meta_version("raced"), 2);
    ck_assert_uint_eq(meta_version("bystander"), 0);
}
END_TEST

START_TEST(a_plain_read_does_not_conflict)
{
    ck_assert_int_eq(commit_after_a_rival(false), TW_OK);
    ck_assert_uint_eq(meta_version("raced"), 2);
    ck_assert_uint_eq(meta_version("bystander"), 1);
}
END_TEST

struct racer {
    int runs;
};

/* Reads the key for update and, on its first run only, lets a rival
 * commit the same key before it does: the first commit must conflict. */
static tw_err raced_once(tw_txn *t, void *ctx)
{
    struct racer *r = ctx;
    tw_key k;
    tw_value v;
    meta_key(&k, "raced");
    tw_err err = tw_txn_get_for_update(t, &k, fx.arena, &v);
    uint32_t seen = err == TW_OK ? ((Tw__Store__V1__StoreInfo *)(void *)v.msg)->format_version : 0;
    if (err && err != TW_ERR_NOT_FOUND)
        return err;
    if (r->runs++ == 0) {
        tw_txn *rival;
        ck_assert_int_eq(tw_txn_begin(fx.store, &rival), TW_OK);
        ck_assert_int_eq(put_meta(rival, "raced", 10), TW_OK);
        ck_assert_int_eq(tw_txn_commit(rival), TW_OK);
    }
    return put_meta(t, "raced", seen + 1);
}

START_TEST(run_retries_a_conflict_with_fresh_reads)
{
    struct racer r = {0};
    ck_assert_int_eq(tw_txn_run(fx.store, raced_once, &r), TW_OK);
    ck_assert_int_eq(r.runs, 2);
    ck_assert_uint_eq(meta_version("raced"), 11);
}
END_TEST

static tw_err always_raced(tw_txn *t, void *ctx)
{
    struct racer *r = ctx;
    r->runs = 0;
    return raced_once(t, ctx);
}

START_TEST(run_gives_up_when_conflicts_persist)
{
    struct racer r = {0};
    ck_assert_int_eq(tw_txn_run(fx.store, always_raced, &r), TW_ERR_CONFLICT);
}
END_TEST

START_TEST(bad_keys_and_values_are_refused)
{
    tw_txn *t;
    tw_key k;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    tw_key_init(&k, TW_KF_META);
    ck_assert_int_eq(tw_txn_put(t, &k, NULL), TW_ERR_INTERNAL); /* incomplete */
    ck_assert_int_eq(tw_txn_delete(t, &k), TW_ERR_INTERNAL);
    meta_key(&k, "x");
    ck_assert_int_eq(tw_txn_put(t, &k, NULL), TW_ERR_INTERNAL); /* MSG family, no message */
    Tw__Store__V1__Job job = TW__STORE__V1__JOB__INIT;
    ck_assert_int_eq(tw_txn_put(t, &k, &(tw_value){.msg = &job.base}), TW_ERR_INTERNAL);
    meta_key(&k, "never-written");
    ck_assert_int_eq(tw_txn_delete(t, &k), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
}
END_TEST

static void session_key(tw_key *k, const tw_id *owner)
{
    tw_key_init(k, TW_KF_SESSION);
    tw_key_id(k, owner);
    tw_key_id(k, &res);
}

START_TEST(commits_of_a_cached_family_move_the_owners_epoch)
{
    static const tw_id other = {{[15] = 0x07}}; /* another user, another epoch */
    Tw__Store__V1__Session rec = TW__STORE__V1__SESSION__INIT;
    tw_value v = {.msg = &rec.base};
    tw_key k;
    session_key(&k, &user);
    uint64_t before = tw_store_epoch(fx.store, &user);
    uint64_t other_before = tw_store_epoch(fx.store, &other);

    /* Not before the commit, nor for a transaction that is aborted. */
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_put(t, &k, &v), TW_OK);
    ck_assert_uint_eq(tw_store_epoch(fx.store, &user), before);
    tw_txn_abort(t);
    ck_assert_uint_eq(tw_store_epoch(fx.store, &user), before);

    /* A put, then a delete, each moves it once it is visible. */
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_put(t, &k, &v), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    uint64_t after_put = tw_store_epoch(fx.store, &user);
    ck_assert_uint_gt(after_put, before);
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_delete(t, &k), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    ck_assert_uint_gt(tw_store_epoch(fx.store, &user), after_put);
    uint64_t after_delete = tw_store_epoch(fx.store, &user);

    /* Other families and other users' epochs stay where they were, and so
     * does the shared epoch. */
    uint64_t shared_before = tw_store_epoch(fx.store, NULL);
    ck_assert_int_eq(tw_txn_run(fx.store, write_everything, NULL), TW_OK);
    ck_assert_uint_eq(tw_store_epoch(fx.store, &user), after_delete);
    ck_assert_uint_eq(tw_store_epoch(fx.store, &other), other_before);
    ck_assert_uint_eq(tw_store_epoch(fx.store, NULL), shared_before);
}
END_TEST

START_TEST(commits_of_a_shared_cached_family_move_the_shared_epoch)
{
    Tw__Store__V1__PlanRecord rec = TW__STORE__V1__PLAN_RECORD__INIT;
    rec.id = "pro";
    tw_key k;
    tw_key_init(&k, TW_KF_BILLING_PLAN);
    tw_key_str(&k, "pro");
    uint64_t before = tw_store_epoch(fx.store, NULL);
    uint64_t user_before = tw_store_epoch(fx.store, &user);

    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_put(t, &k, &(tw_value){.msg = &rec.base}), TW_OK);
    ck_assert_uint_eq(tw_store_epoch(fx.store, NULL), before);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    uint64_t after_put = tw_store_epoch(fx.store, NULL);
    ck_assert_uint_gt(after_put, before);

    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_delete(t, &k), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    ck_assert_uint_gt(tw_store_epoch(fx.store, NULL), after_put);
    /* No user's epoch moves with it. */
    ck_assert_uint_eq(tw_store_epoch(fx.store, &user), user_before);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("txn");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, an_aborted_transaction_writes_nothing);
    tcase_add_test(tc, a_committed_transaction_writes_everything);
    tcase_add_test(tc, a_failing_handler_writes_nothing);
    tcase_add_test(tc, a_transaction_sees_its_own_writes_first);
    tcase_add_test(tc, a_key_read_for_update_and_changed_meanwhile_conflicts);
    tcase_add_test(tc, a_plain_read_does_not_conflict);
    tcase_add_test(tc, index_entries_are_untracked_and_guarded_by_their_entity);
    tcase_add_test(tc, run_retries_a_conflict_with_fresh_reads);
    tcase_add_test(tc, run_gives_up_when_conflicts_persist);
    tcase_add_test(tc, bad_keys_and_values_are_refused);
    tcase_add_test(tc, commits_of_a_cached_family_move_the_owners_epoch);
    tcase_add_test(tc, commits_of_a_shared_cached_family_move_the_shared_epoch);
    suite_add_tcase(s, tc);
    return s;
}
