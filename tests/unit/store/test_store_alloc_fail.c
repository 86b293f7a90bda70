/*
 * Allocation failures in the store: for each operation below, the test
 * counts the allocations our code makes for it (alloc_fail.h), then runs it
 * once for every N up to that total with the Nth allocation failing. Each
 * run must end in TW_OK (that allocation had a fallback) or
 * TW_ERR_NO_MEMORY, never in a crash or another error, and leave the store
 * as a normal read expects: a write whole or not at all. The sanitizer
 * build runs the same loops under LeakSanitizer, so every failure path must
 * free what it took.
 *
 * Only the test's own thread is counted (RocksDB's threads allocate in
 * RocksDB), and Check allocates when an assertion passes, so each run is
 * disarmed before anything is asserted.
 */
#include "alloc_fail.h"
#include "store_fixture.h"
#include "tw/store/v1/task_records.pb-c.h"
#include "tw/v1/task_service.pb-c.h"
#include "tw_changelog.h"
#include "tw_counter.h"
#include "tw_owned.h"
#include "tw_page.h"
#include "tw_unique.h"

#include "tw_check.h"

#include <stdio.h>
#include <string.h>

/* Every loop below runs at most this many times: a total beyond it means
 * the operation allocates far more than it did when this was written. */
#define MAX_ALLOCATIONS 2000

static const tw_counter created = {.name = "alloc_test_created", .dims = "kind=task"};
#define COUNTER_DAY 19875

/* The ids of run i: the task it writes and the one it deletes. */
static tw_id task_id(uint32_t i, uint8_t kind)
{
    tw_id id = {{0x01, 0x90, kind}};
    id.bytes[12] = (uint8_t)(i >> 24);
    id.bytes[13] = (uint8_t)(i >> 16);
    id.bytes[14] = (uint8_t)(i >> 8);
    id.bytes[15] = (uint8_t)i;
    return id;
}

static void status_key(tw_key *k, const tw_id *user, const tw_id *task)
{
    tw_key_init(k, TW_KF_TASK_BY_STATUS);
    tw_key_id(k, user);
    tw_key_u32(k, 1);
    tw_key_id(k, task);
}

/* ---- the write: what an RPC's transaction does -------------------------- */

struct write {
    uint32_t run;
    tw_id task, victim;
    char claim[32];
    uint64_t sequence;
};

/* Creates run's task (with a title long enough to need a second arena
 * block), its index entry, a counter, two change-log entries and a unique
 * claim, reads its victim for update and deletes it. */
static tw_err write_fn(tw_txn *t, void *ctx)
{
    struct write *w = ctx;
    tw_arena *arena = tw_arena_new(0);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    ProtobufCMessage *victim;
    tw_err err = tw_owned_get(NULL, t, TW_KF_TASK, &fx_alice, &w->victim, arena, &victim);
    if (err)
        goto out;
    char title[600];
    memset(title, 't', sizeof title - 1);
    title[sizeof title - 1] = '\0';
    Tw__V1__Task task = TW__V1__TASK__INIT;
    task.title = title;
    Tw__Store__V1__TaskRecord rec = TW__STORE__V1__TASK_RECORD__INIT;
    rec.task = &task;
    rec.version = w->run;
    tw_key index;
    status_key(&index, &fx_alice, &w->task);
    ProtobufCMessage *back;
    if ((err = tw_owned_put(t, TW_KF_TASK, &fx_alice, &w->task, &rec.base)) ||
        (err = tw_owned_get(NULL, t, TW_KF_TASK, &fx_alice, &w->task, arena, &back)) ||
        (err = tw_txn_put_index(t, &index, NULL)) ||
        (err = tw_owned_delete(t, TW_KF_TASK, &fx_alice, &w->victim)) ||
        (err = tw_txn_counter_add(t, &created, COUNTER_DAY, 1)) ||
        (err = tw_txn_changelog_append(t, &fx_alice, "task", &w->task, TW_CHANGE_UPSERT,
                                       &w->sequence)) ||
        (err =
             tw_txn_changelog_append(t, &fx_alice, "task", &w->victim, TW_CHANGE_TOMBSTONE, NULL)))
        goto out;
    err = tw_txn_unique_claim(t, "alloc_test", w->claim, &fx_alice);
out:
    tw_arena_free(arena);
    return err;
}

static tw_err put_victim(tw_txn *t, void *ctx)
{
    const struct write *w = ctx;
    Tw__V1__Task task = TW__V1__TASK__INIT;
    task.title = "victim";
    Tw__Store__V1__TaskRecord rec = TW__STORE__V1__TASK_RECORD__INIT;
    rec.task = &task;
    return tw_owned_put(t, TW_KF_TASK, &fx_alice, &w->victim, &rec.base);
}

static uint64_t last_sequence(void)
{
    tw_change_page page;
    ck_assert_int_eq(tw_store_changelog_read(fx.store, &fx_alice, 0, 0, fx.arena, &page), TW_OK);
    return page.last_sequence;
}

static uint64_t counter_total(void)
{
    uint64_t total = 0;
    ck_assert_int_eq(tw_store_counter_read(fx.store, &created, COUNTER_DAY, 1, NULL, &total),
                     TW_OK);
    return total;
}

/* How many of run w's eight effects a normal read sees. */
static int effects_visible(const struct write *w, uint64_t sequence_before, uint64_t count_before)
{
    int n = 0;
    n += tw_owned_check(fx.store, NULL, TW_KF_TASK, &fx_alice, &w->task) == TW_OK;
    n += tw_owned_check(fx.store, NULL, TW_KF_TASK, &fx_alice, &w->victim) == TW_ERR_NOT_FOUND;
    tw_key index;
    tw_value v;
    status_key(&index, &fx_alice, &w->task);
    n += tw_store_get(fx.store, &index, NULL, &v) == TW_OK;
    n += counter_total() == count_before + 1;
    uint64_t last = last_sequence();
    n += last == sequence_before + 2;
    tw_change_page page;
    ck_assert_int_eq(
        tw_store_changelog_read(fx.store, &fx_alice, sequence_before, 10, fx.arena, &page), TW_OK);
    n += page.count == 2 && tw_id_equal(&page.changes[0].resource_id, &w->task) &&
         page.changes[1].op == TW_CHANGE_TOMBSTONE;
    tw_id owner;
    n += tw_store_unique_lookup(fx.store, "alloc_test", w->claim, &owner) == TW_OK &&
         tw_id_equal(&owner, &fx_alice);
    /* What the transaction read back of its own write. */
    ProtobufCMessage *msg;
    n += tw_owned_get(fx.store, NULL, TW_KF_TASK, &fx_alice, &w->task, fx.arena, &msg) == TW_OK &&
         ((Tw__Store__V1__TaskRecord *)(void *)msg)->version == w->run;
    return n;
}

/* Runs the write of run with the fail_at'th allocation failing (0: none);
 * returns how many allocations it made. */
static uint64_t run_write(uint32_t run, uint64_t fail_at, tw_err *result, bool *whole)
{
    struct write w = {.run = run, .task = task_id(run, 1), .victim = task_id(run, 2)};
    snprintf(w.claim, sizeof w.claim, "claim-%u", run);
    ck_assert_int_eq(tw_txn_run(fx.store, put_victim, &w), TW_OK);
    uint64_t sequence_before = last_sequence();
    uint64_t count_before = counter_total();

    alloc_fail_arm(fail_at, ALLOC_THIS_THREAD);
    *result = tw_txn_run(fx.store, write_fn, &w);
    uint64_t total = alloc_fail_disarm();

    int seen = effects_visible(&w, sequence_before, count_before);
    ck_assert_msg(seen == 0 || seen == 8, "run %u failing allocation %llu: %d of 8 effects seen",
                  run, (unsigned long long)fail_at, seen);
    *whole = seen == 8;
    if (*result == TW_OK)
        ck_assert_uint_eq(w.sequence, sequence_before + 1);
    return total;
}

START_TEST(a_write_fails_whole_at_every_allocation)
{
    tw_err err;
    bool whole;
    uint64_t total = run_write(1, 0, &err, &whole);
    ck_assert_int_eq(err, TW_OK);
    ck_assert(whole);
    ck_assert_uint_gt(total, 0);
    ck_assert_uint_le(total, MAX_ALLOCATIONS);
    fprintf(stderr, "store write: %llu allocations\n", (unsigned long long)total);
    uint64_t failed = 0;
    for (uint64_t n = 1; n <= total; n++) {
        run_write((uint32_t)n + 1, n, &err, &whole);
        ck_assert_msg(err == TW_OK || err == TW_ERR_NO_MEMORY, "allocation %llu failing: %s (%s)",
                      (unsigned long long)n, tw_err_name(err), tw_store_last_error());
        ck_assert_msg(whole == (err == TW_OK), "allocation %llu: answered %s but the write %s",
                      (unsigned long long)n, tw_err_name(err), whole ? "happened" : "did not");
        failed += err == TW_ERR_NO_MEMORY;
    }
    /* Most allocations have no fallback: the write must have been refused. */
    ck_assert_uint_gt(failed, 0);
}
END_TEST

/* ---- reads: a point read, a scan with a page token, the change log, a counter */

#define TASKS 20

static tw_err put_tasks(tw_txn *t, void *ctx)
{
    tw_err err = TW_OK;
    for (uint32_t i = 0; i < TASKS && err == TW_OK; i++) {
        tw_id id = task_id(i, 3);
        Tw__V1__Task task = TW__V1__TASK__INIT;
        task.title = "a task for the scan, long enough to fill an arena block or two";
        Tw__Store__V1__TaskRecord rec = TW__STORE__V1__TASK_RECORD__INIT;
        rec.task = &task;
        rec.version = i;
        if ((err = tw_owned_put(t, TW_KF_TASK, &fx_alice, &id, &rec.base)) == TW_OK)
            err = tw_txn_changelog_append(t, &fx_alice, "task", &id, TW_CHANGE_UPSERT, NULL);
    }
    return err == TW_OK ? tw_txn_counter_add(t, &created, COUNTER_DAY, 3) : err;
}

/* What the reads found; equal for every run that succeeds. */
struct read_result {
    int scanned;
    uint64_t version_sum;
    size_t cursor_len;
    size_t changes;
    uint64_t counter;
    uint32_t point_version;
};

static tw_err read_everything(struct read_result *out)
{
    memset(out, 0, sizeof *out);
    tw_arena *arena = tw_arena_new(0);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_TASK);
    tw_key_id(&prefix, &fx_alice);
    tw_store_iter *it;
    tw_err err = tw_store_scan(fx.store, &prefix, NULL, 0, false, &it);
    if (err)
        goto out;
    const uint8_t *last = NULL;
    size_t last_len = 0;
    while (err == TW_OK && tw_store_iter_next(it)) {
        tw_value v;
        if ((err = tw_store_iter_value(it, arena, &v)))
            break;
        out->scanned++;
        out->version_sum += ((Tw__Store__V1__TaskRecord *)(void *)v.msg)->version;
        tw_store_iter_key(it, &last, &last_len);
        uint8_t *copy = tw_arena_alloc(arena, last_len);
        if (copy == NULL) {
            err = TW_ERR_NO_MEMORY;
            break;
        }
        memcpy(copy, last, last_len);
        last = copy;
    }
    tw_err closed = tw_store_iter_close(it);
    if (err || (err = closed))
        goto out;
    static const char query[] = "status=1";
    char *token;
    uint8_t *cursor;
    if ((err = tw_store_page_token_make(fx.store, &fx_alice, query, sizeof query, last, last_len,
                                        arena, &token)) ||
        (err = tw_store_page_token_read(fx.store, &fx_alice, query, sizeof query, token, arena,
                                        &cursor, &out->cursor_len)))
        goto out;
    if (out->cursor_len != last_len || memcmp(cursor, last, last_len) != 0) {
        err = TW_ERR_INTERNAL;
        goto out;
    }
    tw_change_page page;
    if ((err = tw_store_changelog_read(fx.store, &fx_alice, 0, 100, arena, &page)))
        goto out;
    out->changes = page.count;
    if ((err = tw_store_counter_read(fx.store, &created, COUNTER_DAY - 6, 7, NULL, &out->counter)))
        goto out;
    tw_id some = task_id(7, 3);
    ProtobufCMessage *msg;
    if ((err = tw_owned_get(fx.store, NULL, TW_KF_TASK, &fx_alice, &some, arena, &msg)))
        goto out;
    out->point_version = (uint32_t)((Tw__Store__V1__TaskRecord *)(void *)msg)->version;
out:
    tw_arena_free(arena);
    return err;
}

START_TEST(reads_fail_cleanly_at_every_allocation)
{
    ck_assert_int_eq(tw_txn_run(fx.store, put_tasks, NULL), TW_OK);
    struct read_result want, got;
    alloc_fail_arm(0, ALLOC_THIS_THREAD);
    tw_err err = read_everything(&want);
    uint64_t total = alloc_fail_disarm();
    ck_assert_int_eq(err, TW_OK);
    ck_assert_int_eq(want.scanned, TASKS);
    ck_assert_uint_eq(want.changes, TASKS);
    ck_assert_uint_eq(want.counter, 3);
    ck_assert_uint_eq(want.point_version, 7);
    ck_assert_uint_gt(total, 0);
    ck_assert_uint_le(total, MAX_ALLOCATIONS);
    fprintf(stderr, "store reads: %llu allocations\n", (unsigned long long)total);
    for (uint64_t n = 1; n <= total; n++) {
        alloc_fail_arm(n, ALLOC_THIS_THREAD);
        err = read_everything(&got);
        alloc_fail_disarm();
        ck_assert_msg(err == TW_OK || err == TW_ERR_NO_MEMORY, "allocation %llu failing: %s (%s)",
                      (unsigned long long)n, tw_err_name(err), tw_store_last_error());
        if (err == TW_OK)
            ck_assert_mem_eq(&got, &want, sizeof want);
    }
}
END_TEST

/* ---- open: a new store, and one already made ----------------------------- */

START_TEST(open_fails_cleanly_at_every_allocation)
{
    tw_store_options opts = {.durability = TW_FAST};
    char *dir = fx_mkdtemp();
    opts.data_dir = dir;
    tw_store *s = NULL;
    alloc_fail_arm(0, ALLOC_THIS_THREAD);
    tw_err err = tw_store_open(&opts, &s);
    uint64_t total = alloc_fail_disarm();
    ck_assert_int_eq(err, TW_OK);
    tw_store_close(s);
    fx_rmdir(dir);
    ck_assert_uint_gt(total, 0);
    ck_assert_uint_le(total, MAX_ALLOCATIONS);
    fprintf(stderr, "store open: %llu allocations\n", (unsigned long long)total);
    for (uint64_t n = 1; n <= total; n++) {
        dir = fx_mkdtemp();
        opts.data_dir = dir;
        s = NULL;
        alloc_fail_arm(n, ALLOC_THIS_THREAD);
        err = tw_store_open(&opts, &s);
        alloc_fail_disarm();
        ck_assert_msg(err == TW_OK || err == TW_ERR_NO_MEMORY, "allocation %llu failing: %s (%s)",
                      (unsigned long long)n, tw_err_name(err), tw_store_last_error());
        if (err) {
            /* Whatever the failed open left, the next one makes a sound
             * store. */
            ck_assert_ptr_null(s);
            ck_assert_int_eq(tw_store_open(&opts, &s), TW_OK);
            tw_store_report report;
            ck_assert_int_eq(tw_store_verify(s, &report), TW_OK);
        }
        tw_store_close(s);
        fx_rmdir(dir);
    }
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *suite = suite_create("store_alloc_fail");
    const struct {
        const char *name;
        const TTest *test;
        bool store; /* runs on the fixture's store */
    } cases[] = {
        {"write", a_write_fails_whole_at_every_allocation, true},
        {"reads", reads_fail_cleanly_at_every_allocation, true},
        {"open", open_fails_cleanly_at_every_allocation, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        if (cases[i].store)
            tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(suite, tc);
    }
    return suite;
}
