/* Unit tests for server/tasks/task_list.c: every order, merged across
 * statuses, paged with every task seen exactly once, reversed; filters
 * from indexes and on records; due ranges; the scan bound; completions. */
#include "task_fixture.h"
#include "tasks/task_list.h"

#include "tw_check.h"
#include "tw_wire.h"

#include <string.h>

#define NY         "America/New_York"
#define MAX_LISTED 3000

static Tw__V1__Task *listed[MAX_LISTED];
static size_t nlisted;
static int pages;

static void *arena_alloc(void *ctx, size_t size)
{
    return tw_arena_alloc(ctx, size ? size : 1);
}

static void arena_free(void *ctx, void *ptr)
{
    (void)ctx, (void)ptr;
}

/* A listed task as a client reads it: its bytes as stored (its length
 * varint, then the Task), decoded in the fixture's arena. */
static Tw__V1__Task *decoded(const tw_task_bytes *task)
{
    const uint8_t *p = task->prefixed, *end = task->prefixed + task->len;
    uint64_t len;
    ck_assert(tw_wire_varint(&p, end, &len));
    ck_assert_uint_eq(len, (uint64_t)(end - p));
    ProtobufCAllocator alloc = {arena_alloc, arena_free, fx.arena};
    Tw__V1__Task *t = tw__v1__task__unpack(&alloc, (size_t)len, p);
    ck_assert_ptr_nonnull(t);
    return t;
}

/* Lists everything req matches, page_size at a time, into listed[]. */
static void list_all(Tw__V1__ListTasksRequest *req, uint32_t page_size)
{
    nlisted = 0;
    pages = 0;
    uint8_t *cursor = NULL;
    size_t cursor_len = 0;
    for (int guard = 0; guard < 10000; guard++) {
        tw_task_bytes *tasks;
        size_t n;
        uint8_t *next;
        size_t next_len;
        ck_assert_int_eq(tw_task_list(fx.store, &fx_alice, req, cursor, cursor_len, page_size,
                                      fx.arena, &tasks, &n, &next, &next_len),
                         TW_OK);
        ck_assert_uint_le(n, page_size);
        pages++;
        for (size_t i = 0; i < n; i++) {
            ck_assert_uint_lt(nlisted, MAX_LISTED);
            listed[nlisted++] = decoded(&tasks[i]);
        }
        if (next == NULL)
            return;
        cursor = next;
        cursor_len = next_len;
    }
    ck_abort_msg("paging did not end");
}

static Tw__V1__ListTasksRequest request(Tw__V1__TaskOrder order)
{
    Tw__V1__ListTasksRequest req = TW__V1__LIST_TASKS_REQUEST__INIT;
    req.order_by = order;
    return req;
}

static void assert_each_once(size_t expected)
{
    ck_assert_uint_eq(nlisted, expected);
    for (size_t i = 0; i < nlisted; i++)
        for (size_t j = i + 1; j < nlisted; j++)
            ck_assert_str_ne(listed[i]->id, listed[j]->id);
}

static tw_task_record *make(const char *title, int status, int priority, int due_day)
{
    Tw__V1__Task *t = tf_task(title);
    t->priority = priority;
    if (due_day > 0)
        t->due = tf_due_time(NY, 2024, 6, due_day, 9, 0);
    tw_task_record *rec = tf_create_ok(t);
    if (status != TW__V1__TASK_STATUS__TASK_STATUS_TODO) {
        tw_id id = tf_id(rec);
        Tw__V1__Task *v = tf_task(title);
        v->status = status;
        if (status == TW__V1__TASK_STATUS__TASK_STATUS_DONE)
            ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, NULL), TW_OK);
        else
            ck_assert_int_eq(tf_update(&id, v, TW_TF_STATUS, NULL, &rec), TW_OK);
    }
    return rec;
}

START_TEST(created_order_pages_see_each_task_once)
{
    for (int i = 0; i < 60; i++)
        make("t", 1 + i % 4, 4, 0);
    Tw__V1__ListTasksRequest req = request(TW__V1__TASK_ORDER__TASK_ORDER_UNSPECIFIED);
    list_all(&req, 7);
    assert_each_once(60);
    ck_assert_int_eq(pages, 9);
    for (size_t i = 1; i < nlisted; i++)
        ck_assert_int_lt(strcmp(listed[i - 1]->id, listed[i]->id), 0);
    req.descending = true;
    list_all(&req, 50);
    assert_each_once(60);
    for (size_t i = 1; i < nlisted; i++)
        ck_assert_int_gt(strcmp(listed[i - 1]->id, listed[i]->id), 0);
    /* Two statuses merged from their indexes, still in creation order. */
    Tw__V1__TaskStatus open[] = {TW__V1__TASK_STATUS__TASK_STATUS_TODO,
                                 TW__V1__TASK_STATUS__TASK_STATUS_IN_PROGRESS};
    req = request(TW__V1__TASK_ORDER__TASK_ORDER_CREATED);
    req.statuses = open;
    req.n_statuses = 2;
    list_all(&req, 4);
    assert_each_once(30);
    for (size_t i = 0; i < nlisted; i++) {
        ck_assert_int_le(listed[i]->status, TW__V1__TASK_STATUS__TASK_STATUS_IN_PROGRESS);
        if (i > 0)
            ck_assert_int_lt(strcmp(listed[i - 1]->id, listed[i]->id), 0);
    }
}
END_TEST

static int64_t due_of(const Tw__V1__Task *t)
{
    int64_t ms = INT64_MAX;
    if (t->due)
        tw_timestamp_to_ms(t->due->time, &ms);
    return ms;
}

START_TEST(due_and_priority_orders_merge_statuses)
{
    int days[] = {5, 0, 3, 9, 3, 0, 1, 7, 2, 8};
    for (int i = 0; i < 10; i++)
        make("t", i % 3 == 0 ? 2 : 1, 1 + i % 4, days[i]);
    make("done", TW__V1__TASK_STATUS__TASK_STATUS_DONE, 1, 4);
    Tw__V1__TaskStatus open[] = {TW__V1__TASK_STATUS__TASK_STATUS_TODO,
                                 TW__V1__TASK_STATUS__TASK_STATUS_IN_PROGRESS};
    Tw__V1__ListTasksRequest req = request(TW__V1__TASK_ORDER__TASK_ORDER_DUE);
    req.statuses = open;
    req.n_statuses = 2;
    list_all(&req, 3);
    assert_each_once(10);
    for (size_t i = 1; i < nlisted; i++)
        ck_assert_int_le(due_of(listed[i - 1]), due_of(listed[i]));
    ck_assert_ptr_null(listed[9]->due); /* no due: last */
    req.descending = true;
    list_all(&req, 4);
    assert_each_once(10);
    for (size_t i = 1; i < nlisted; i++)
        ck_assert_int_ge(due_of(listed[i - 1]), due_of(listed[i]));
    /* A due range is a bounded index scan: [3 June, 8 June). */
    req.descending = false;
    req.due_after_time = tw_timestamp_new(fx.arena, tf_at(NY, 2024, 6, 3, 9, 0));
    req.due_before_time = tw_timestamp_new(fx.arena, tf_at(NY, 2024, 6, 8, 9, 0));
    list_all(&req, 2);
    assert_each_once(4); /* 3, 3, 5, 7 */
    req.descending = true;
    list_all(&req, 3);
    assert_each_once(4);
    ck_assert_int_eq(due_of(listed[0]), tf_at(NY, 2024, 6, 7, 9, 0));
    /* The same range on the creation order is checked on each task. */
    req.order_by = TW__V1__TASK_ORDER__TASK_ORDER_CREATED;
    req.n_statuses = 0;
    list_all(&req, 2);
    assert_each_once(5); /* the done task due on the 4th too */

    Tw__V1__ListTasksRequest byp = request(TW__V1__TASK_ORDER__TASK_ORDER_PRIORITY);
    list_all(&byp, 4);
    assert_each_once(11);
    for (size_t i = 1; i < nlisted; i++) {
        ck_assert_int_le(listed[i - 1]->priority, listed[i]->priority);
        if (listed[i - 1]->priority == listed[i]->priority &&
            listed[i - 1]->status == listed[i]->status)
            ck_assert_int_lt(strcmp(listed[i - 1]->id, listed[i]->id), 0);
    }
}
END_TEST

START_TEST(manual_order_lists_one_parents_children)
{
    tw_task_record *parent = tf_create_ok(tf_task("Project"));
    tw_task_record *kids[5];
    for (int i = 0; i < 5; i++) {
        Tw__V1__Task *t = tf_task("step");
        t->parent_id = parent->task->id;
        kids[i] = tf_create_ok(t);
    }
    tw_task_record *moved;
    tw_id last = tf_id(kids[4]);
    ck_assert_int_eq(tf_move(&last, parent->task->id, "", &moved), TW_OK); /* first */
    tw_id second = tf_id(kids[1]);
    ck_assert_int_eq(tf_complete(&second, tf_env.now_ms, NULL, NULL), TW_OK); /* other status */
    Tw__V1__ListTasksRequest req = request(TW__V1__TASK_ORDER__TASK_ORDER_MANUAL);
    req.parent_id = parent->task->id;
    list_all(&req, 2);
    assert_each_once(5);
    ck_assert_str_eq(listed[0]->id, kids[4]->task->id);
    for (size_t i = 1; i < nlisted; i++)
        ck_assert_int_lt(strcmp(listed[i - 1]->order_key, listed[i]->order_key), 0);
    ck_assert_str_eq(listed[2]->id, kids[1]->task->id); /* DONE, still in its place */
    /* Top level: the parent alone. */
    req = request(TW__V1__TASK_ORDER__TASK_ORDER_MANUAL);
    list_all(&req, 10);
    assert_each_once(1);
    /* Children by creation, filtered on each record. */
    req = request(TW__V1__TASK_ORDER__TASK_ORDER_CREATED);
    req.parent_id = parent->task->id;
    list_all(&req, 10);
    assert_each_once(5);
    req.parent_id = "";
    req.top_level_only = true;
    list_all(&req, 10);
    assert_each_once(1);
}
END_TEST

START_TEST(labels_and_recurrence_filter)
{
    char *work[] = {"work"}, *both[] = {"home", "work"};
    for (int i = 0; i < 6; i++) {
        Tw__V1__Task *t = tf_task("t");
        t->labels = i % 2 ? both : work;
        t->n_labels = i % 2 ? 2 : 1;
        if (i % 3 == 0) {
            t->due = tf_due_time(NY, 2024, 6, 3, 9, 0);
            t->recurrence = tf_rrule("FREQ=DAILY");
        }
        tf_create_ok(t);
    }
    Tw__V1__ListTasksRequest req = request(TW__V1__TASK_ORDER__TASK_ORDER_CREATED);
    req.label = "home";
    list_all(&req, 2);
    assert_each_once(3);
    req.label = "work";
    req.has_recurrence = TW__V1__TASK_RECURRENCE_FILTER__TASK_RECURRENCE_FILTER_RECURRING;
    list_all(&req, 10);
    assert_each_once(2);
    req.has_recurrence = TW__V1__TASK_RECURRENCE_FILTER__TASK_RECURRENCE_FILTER_ONE_OFF;
    list_all(&req, 10);
    assert_each_once(4);
    /* The label on another order is checked on each task. */
    req = request(TW__V1__TASK_ORDER__TASK_ORDER_DUE);
    req.label = "home";
    list_all(&req, 2);
    assert_each_once(3);
    req.label = "nowhere";
    list_all(&req, 2);
    assert_each_once(0);
}
END_TEST

START_TEST(a_page_reads_a_bounded_number_of_entries)
{
    for (int i = 0; i < TW_TASK_LIST_SCAN_MAX + 10; i++)
        make("one-off", 1, 4, 0);
    Tw__V1__Task *t = tf_task("the recurring one");
    t->due = tf_due_time(NY, 2024, 6, 3, 9, 0);
    t->recurrence = tf_rrule("FREQ=WEEKLY");
    tf_create_ok(t);
    Tw__V1__ListTasksRequest req = request(TW__V1__TASK_ORDER__TASK_ORDER_CREATED);
    req.has_recurrence = TW__V1__TASK_RECURRENCE_FILTER__TASK_RECURRENCE_FILTER_RECURRING;
    list_all(&req, 50);
    assert_each_once(1);
    ck_assert_int_eq(pages, 2); /* the first page ended empty, with a cursor */
}
END_TEST

START_TEST(completions_list_newest_first)
{
    Tw__V1__Task *t = tf_task("Daily");
    t->due = tf_due_time(NY, 2024, 6, 1, 9, 0);
    t->recurrence = tf_rrule("FREQ=DAILY");
    tw_task_record *rec = tf_create_ok(t);
    tw_id id = tf_id(rec);
    tw_task_record *other = tf_create_ok(tf_task("Other"));
    tw_id other_id = tf_id(other);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, NULL, NULL), TW_OK);
    ck_assert_int_eq(tf_complete(&other_id, tf_env.now_ms, NULL, NULL), TW_OK);
    size_t total = 0;
    uint8_t *cursor = NULL;
    size_t cursor_len = 0;
    const char *prev = NULL;
    for (int page = 0; page < 10; page++) {
        Tw__V1__TaskCompletion **c;
        size_t n;
        uint8_t *next;
        size_t next_len;
        ck_assert_int_eq(tw_completion_list(fx.store, &fx_alice, &id, cursor, cursor_len, 2,
                                            fx.arena, &c, &n, &next, &next_len),
                         TW_OK);
        for (size_t i = 0; i < n; i++) {
            ck_assert_str_eq(c[i]->task_id, rec->task->id);
            if (prev)
                ck_assert_int_gt(strcmp(prev, c[i]->id), 0);
            prev = c[i]->id;
        }
        total += n;
        if (next == NULL)
            break;
        cursor = next;
        cursor_len = next_len;
    }
    ck_assert_uint_eq(total, 5);
    Tw__V1__TaskCompletion **c;
    size_t n;
    uint8_t *next;
    size_t next_len;
    ck_assert_int_eq(tw_completion_list(fx.store, &fx_alice, NULL, NULL, 0, 10, fx.arena, &c, &n,
                                        &next, &next_len),
                     TW_OK);
    ck_assert_uint_eq(n, 6);
    ck_assert_str_eq(c[0]->task_id, other->task->id);
    ck_assert_ptr_null(next);
    /* Bob sees none of it. */
    ck_assert_int_eq(tw_completion_list(fx.store, &fx_bob, NULL, NULL, 0, 10, fx.arena, &c, &n,
                                        &next, &next_len),
                     TW_OK);
    ck_assert_uint_eq(n, 0);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("task_list");
    TCase *tc = tcase_create("task_list");
    tcase_add_checked_fixture(tc, tf_setup, tf_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, created_order_pages_see_each_task_once);
    tcase_add_test(tc, due_and_priority_orders_merge_statuses);
    tcase_add_test(tc, manual_order_lists_one_parents_children);
    tcase_add_test(tc, labels_and_recurrence_filter);
    tcase_add_test(tc, a_page_reads_a_bounded_number_of_entries);
    tcase_add_test(tc, completions_list_newest_first);
    suite_add_tcase(s, tc);
    return s;
}
