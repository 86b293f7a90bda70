/* Unit tests for server/tasks/task_fields.c: field checks, update masks
 * and order keys. */
#include "tasks/task_fields.h"

#include "tw_check.h"

#include <stdlib.h>
#include <string.h>

static tw_arena *arena;
static tw_violations v;

static void setup(void)
{
    arena = tw_arena_new(4096);
    tw_violations_init(&v, arena, TW_CALL_VIOLATIONS_MAX, TW_CALL_VIOLATIONS_MAX_BYTES);
}

static void teardown(void)
{
    tw_arena_free(arena);
}

static Tw__V1__Task *task(const char *title)
{
    Tw__V1__Task *t = tw_arena_alloc(arena, sizeof *t);
    tw__v1__task__init(t);
    t->title = (char *)title;
    return t;
}

START_TEST(new_tasks_get_defaults_and_checks)
{
    Tw__V1__Task *t = task("Plan");
    char *labels[] = {"home", "work", "home"};
    t->labels = labels;
    t->n_labels = 3;
    ck_assert_int_eq(tw_task_validate(t, TW_TF_ALL, true, "task.", &v), TW_OK);
    ck_assert_int_eq(t->status, TW__V1__TASK_STATUS__TASK_STATUS_TODO);
    ck_assert_int_eq(t->priority, 4);
    ck_assert_uint_eq(t->n_labels, 2); /* the repeated label dropped */

    Tw__V1__Task *bad = task("   ");
    char *comma[] = {"a,b"};
    bad->labels = comma;
    bad->n_labels = 1;
    bad->notes = "";
    bad->order_key = "ab0";
    Google__Protobuf__Duration minus = GOOGLE__PROTOBUF__DURATION__INIT;
    minus.seconds = -1;
    bad->estimated_duration = &minus;
    Google__Protobuf__Timestamp far = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    far.seconds = INT64_C(300000000000);
    bad->deadline_time = &far;
    Tw__V1__TaskDue due = TW__V1__TASK_DUE__INIT;
    bad->due = &due; /* neither date nor time */
    ck_assert_int_eq(tw_task_validate(bad, TW_TF_ALL, true, "task.", &v), TW_ERR_VALIDATION);
    const char *expected[] = {"task.title",         "task.due",
                              "task.deadline_time", "task.estimated_duration",
                              "task.labels",        "task.order_key"};
    ck_assert_uint_eq(v.count, 6);
    size_t i = 0;
    for (const tw_violation *it = v.head; it; it = it->next, i++)
        ck_assert_str_eq(it->field, expected[i]);

    /* Updates check only the fields they name, and take no defaults. */
    tw_violations_init(&v, arena, TW_CALL_VIOLATIONS_MAX, TW_CALL_VIOLATIONS_MAX_BYTES);
    Tw__V1__Task *u = task("");
    ck_assert_int_eq(tw_task_validate(u, TW_TF_NOTES, false, "task.", &v), TW_OK);
    ck_assert_int_eq(tw_task_validate(u, TW_TF_PRIORITY, false, "task.", &v), TW_ERR_VALIDATION);
}
END_TEST

START_TEST(order_keys_fit_between_any_two)
{
    char key[TW_TASK_ORDER_KEY_MAX + 2], prev[TW_TASK_ORDER_KEY_MAX + 2];
    /* Appending keeps keys short. */
    tw_order_key_after(NULL, prev);
    for (int i = 0; i < 5000; i++) {
        tw_order_key_after(prev, key);
        ck_assert_msg(tw_order_key_valid(key), "%s", key);
        ck_assert_int_gt(strcmp(key, prev), 0);
        ck_assert_uint_le(strlen(key), 8);
        strcpy(prev, key);
    }
    tw_order_key_after("zz", key);
    ck_assert_str_eq(key, "zzV");
    tw_order_key_after("Az", key);
    ck_assert_str_eq(key, "B1");
    /* Inserting again and again at the front, and between two. */
    strcpy(prev, "V");
    for (int i = 0; i < 60; i++) {
        ck_assert(tw_order_key_between(NULL, prev, key));
        ck_assert_msg(tw_order_key_valid(key) && strcmp(key, prev) < 0, "%s !< %s", key, prev);
        strcpy(prev, key);
    }
    char lo[TW_TASK_ORDER_KEY_MAX + 2] = "a", hi[TW_TASK_ORDER_KEY_MAX + 2] = "b";
    srand(7);
    for (int i = 0; i < 300; i++) {
        ck_assert(tw_order_key_between(lo, hi, key));
        ck_assert_msg(strcmp(lo, key) < 0 && strcmp(key, hi) < 0 && tw_order_key_valid(key),
                      "%s < %s < %s", lo, key, hi);
        strcpy(rand() % 2 ? lo : hi, key);
    }
    ck_assert(tw_order_key_between("a", "a1", key));
    ck_assert_str_eq(key, "a0V");
    ck_assert(tw_order_key_between(NULL, NULL, key));
    ck_assert_str_eq(key, "V");
    /* Squeezing into one gap forever ends in a refusal, not overflow. */
    strcpy(lo, "a");
    strcpy(hi, "b");
    bool refused = false;
    for (int i = 0; i < 2000 && !refused; i++) {
        refused = !tw_order_key_between(lo, hi, key);
        if (!refused)
            strcpy(hi, key);
    }
    ck_assert(refused);
    ck_assert(!tw_order_key_valid(""));
    ck_assert(!tw_order_key_valid("a-b"));
    ck_assert(!tw_order_key_valid("a0"));
}
END_TEST

START_TEST(values_round_trip)
{
    Google__Protobuf__Timestamp *t = tw_timestamp_new(arena, -1);
    ck_assert_int_eq(t->seconds, -1);
    ck_assert_int_eq(t->nanos, 999000000);
    int64_t ms;
    ck_assert(tw_timestamp_to_ms(t, &ms));
    ck_assert_int_eq(ms, -1);
    Tw__V1__CalendarDate *d = tw_calendar_date_new(arena, tw_date_to_day(2024, 2, 29));
    ck_assert(d->year == 2024 && d->month == 2 && d->day == 29);
    ck_assert(tw_calendar_date_valid(d));
    d->day = 30;
    ck_assert(!tw_calendar_date_valid(d));
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("task_fields");
    TCase *tc = tcase_create("task_fields");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, new_tasks_get_defaults_and_checks);
    tcase_add_test(tc, order_keys_fit_between_any_two);
    tcase_add_test(tc, values_round_trip);
    suite_add_tcase(s, tc);
    return s;
}
