/* Unit tests for server/rpc/request_rules.c, with twd's own schema and
 * messages: strings judged by their length on the wire (NUL included),
 * repeated fields against their max_items, timestamps against their
 * time_window, every violation named by its path. */
#include "tw_check.h"

#include "descriptor_set.h"
#include "rpc/request_rules.h"
#include "tw/v1/focus_service.pb-c.h"
#include "tw/v1/health_log_service.pb-c.h"
#include "tw/v1/task_service.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define NOW_MS INT64_C(1796000000000) /* 2026-12-01 */

static tw_schema *schema;
static tw_request_rules *rules;
static tw_arena *arena;
static tw_violations v;

static void setup(void)
{
    ck_assert_int_eq(tw_schema_load(tw_descriptor_set, tw_descriptor_set_size, &schema), TW_OK);
    ck_assert_int_eq(tw_request_rules_new(schema, &rules), TW_OK);
    arena = tw_arena_new(0);
    tw_violations_init(&v, arena, TW_CALL_VIOLATIONS_MAX, TW_CALL_VIOLATIONS_MAX_BYTES);
}

static void teardown(void)
{
    tw_arena_free(arena);
    tw_request_rules_free(rules);
    tw_schema_free(schema);
}

/* Packs message, turns every '#' into a NUL (protobuf-c cannot send one
 * itself), and checks the bytes; returns how many violations were found. */
static size_t check(const ProtobufCMessage *message)
{
    size_t len = protobuf_c_message_get_packed_size(message);
    uint8_t *bytes = malloc(len + 1);
    protobuf_c_message_pack(message, bytes);
    for (size_t i = 0; i < len; i++)
        if (bytes[i] == '#')
            bytes[i] = '\0';
    const tw_message_rules *r = tw_request_rules_for(rules, message->descriptor);
    ck_assert_ptr_nonnull(r);
    tw_request_check(r, bytes, len, NOW_MS, &v);
    free(bytes);
    return tw_violations_total(&v);
}

static const tw_violation *nth(size_t n)
{
    const tw_violation *it = v.head;
    while (n-- > 0 && it != NULL)
        it = it->next;
    ck_assert_ptr_nonnull(it);
    return it;
}

START_TEST(a_nul_anywhere_in_a_string_is_refused_with_its_path)
{
    Tw__V1__Task task = TW__V1__TASK__INIT;
    task.title = "Visible#Hidden";
    char *labels[] = {"fine", "a#b"};
    task.labels = labels;
    task.n_labels = 2;
    Tw__V1__CreateTaskRequest in = TW__V1__CREATE_TASK_REQUEST__INIT;
    in.task = &task;
    in.request_id = "x#";
    ck_assert_uint_eq(check(&in.base), 3);
    ck_assert_str_eq(nth(0)->field, "task.title");
    ck_assert_str_eq(nth(0)->description, "contains a NUL character");
    ck_assert_str_eq(nth(1)->field, "task.labels[1]");
    ck_assert_str_eq(nth(2)->field, "request_id");
}
END_TEST

START_TEST(invalid_utf8_is_found_past_a_nul_and_alone)
{
    Tw__V1__Task task = TW__V1__TASK__INIT;
    task.title = "ab#\xff\xfe";
    task.notes = "ok \xc3\x28";
    Tw__V1__CreateTaskRequest in = TW__V1__CREATE_TASK_REQUEST__INIT;
    in.task = &task;
    ck_assert_uint_eq(check(&in.base), 2);
    ck_assert_str_eq(nth(0)->field, "task.title");
    ck_assert_str_eq(nth(1)->field, "task.notes");
    ck_assert_str_eq(nth(1)->description, "is not valid UTF-8");
}
END_TEST

START_TEST(valid_requests_pass)
{
    Tw__V1__Task task = TW__V1__TASK__INIT;
    task.title = "Write the report \xe2\x9c\x8d";
    Tw__V1__CreateTaskRequest in = TW__V1__CREATE_TASK_REQUEST__INIT;
    in.task = &task;
    ck_assert_uint_eq(check(&in.base), 0);
}
END_TEST

START_TEST(repeated_fields_stop_at_their_max_items)
{
    char *labels[51];
    for (size_t i = 0; i < 51; i++)
        labels[i] = "x#"; /* past the limit they are not even read */
    Tw__V1__Task task = TW__V1__TASK__INIT;
    task.labels = labels;
    task.n_labels = 51;
    Tw__V1__CreateTaskRequest in = TW__V1__CREATE_TASK_REQUEST__INIT;
    in.task = &task;
    check(&in.base);
    ck_assert_uint_eq(v.count, 51);
    ck_assert_str_eq(nth(50)->field, "task.labels");
    ck_assert_str_eq(nth(50)->description, "has 51 items; at most 50 are allowed");
}
END_TEST

START_TEST(a_field_mask_gets_the_default_limit)
{
    char *paths[TW_RULES_DEFAULT_MAX_ITEMS + 1];
    for (size_t i = 0; i <= TW_RULES_DEFAULT_MAX_ITEMS; i++)
        paths[i] = "nope";
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    mask.paths = paths;
    mask.n_paths = TW_RULES_DEFAULT_MAX_ITEMS;
    Tw__V1__Task task = TW__V1__TASK__INIT;
    Tw__V1__UpdateTaskRequest in = TW__V1__UPDATE_TASK_REQUEST__INIT;
    in.task = &task;
    in.update_mask = &mask;
    ck_assert_uint_eq(check(&in.base), 0);
    mask.n_paths++;
    ck_assert_uint_eq(check(&in.base), 1);
    ck_assert_str_eq(nth(0)->field, "update_mask.paths");
}
END_TEST

START_TEST(packed_repeated_fields_are_counted_by_item)
{
    Tw__V1__TaskStatus statuses[5] = {1, 2, 3, 4, 1};
    Tw__V1__ListTasksRequest in = TW__V1__LIST_TASKS_REQUEST__INIT;
    in.statuses = statuses;
    in.n_statuses = 4;
    ck_assert_uint_eq(check(&in.base), 0);
    in.n_statuses = 5;
    ck_assert_uint_eq(check(&in.base), 1);
    ck_assert_str_eq(nth(0)->field, "statuses");
}
END_TEST

START_TEST(timestamps_keep_to_their_window)
{
    Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Tw__V1__StartFocusSessionRequest in = TW__V1__START_FOCUS_SESSION_REQUEST__INIT;
    in.event_time = &at;
    at.seconds = NOW_MS / 1000 - 3600; /* an hour ago */
    ck_assert_uint_eq(check(&in.base), 0);
    at.seconds = 0; /* 1970: a session running for 56 years */
    ck_assert_uint_eq(check(&in.base), 1);
    ck_assert_str_eq(nth(0)->field, "event_time");
    ck_assert_str_eq(nth(0)->description,
                     "must be within 24 hours before the server's clock and 1 minute after it "
                     "(got 1970-01-01T00:00:00Z)");
    at.seconds = NOW_MS / 1000 + 120; /* two minutes ahead */
    ck_assert_uint_eq(check(&in.base), 2);
    at.seconds = NOW_MS / 1000;
    at.nanos = 1000000000;
    ck_assert_uint_eq(check(&in.base), 3);
    ck_assert_str_eq(nth(2)->description, "has nanos outside 0 to 999999999");
}
END_TEST

START_TEST(history_may_be_old_but_not_ahead)
{
    Google__Protobuf__Timestamp start = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Tw__V1__HealthLog log = TW__V1__HEALTH_LOG__INIT;
    log.start_time = &start;
    Tw__V1__CreateHealthLogRequest in = TW__V1__CREATE_HEALTH_LOG_REQUEST__INIT;
    in.health_log = &log;
    start.seconds = 946684800; /* 2000-01-01: an old import */
    ck_assert_uint_eq(check(&in.base), 0);
    start.seconds = NOW_MS / 1000 + 3 * 86400;
    ck_assert_uint_eq(check(&in.base), 1);
    ck_assert_str_eq(nth(0)->field, "health_log.start_time");
    start.seconds = INT64_C(-62135596800) - 1; /* before year 1 */
    ck_assert_uint_eq(check(&in.base), 2);
    ck_assert_str_eq(nth(1)->description,
                     "must be after 1900-01-01 and at most 1 day after the server's clock (got a "
                     "time out of range)");
}
END_TEST

START_TEST(ids_are_uuids_and_required_fields_are_set)
{
    Tw__V1__GetTaskRequest in = TW__V1__GET_TASK_REQUEST__INIT;
    ck_assert_uint_eq(check(&in.base), 1);
    ck_assert_str_eq(nth(0)->field, "id");
    ck_assert_str_eq(nth(0)->description, "is required");
    in.id = "not-a-uuid";
    ck_assert_uint_eq(check(&in.base), 2);
    ck_assert_str_eq(nth(1)->description, "must be a UUID");
    in.id = "0190f5c2-1b2c-7d3e-8f40-5a6b7c8d9e0f";
    ck_assert_uint_eq(check(&in.base), 2);
    /* A required message is set even when empty. */
    Tw__V1__Task task = TW__V1__TASK__INIT;
    Tw__V1__CreateTaskRequest create = TW__V1__CREATE_TASK_REQUEST__INIT;
    ck_assert_uint_eq(check(&create.base), 3);
    ck_assert_str_eq(nth(2)->field, "task");
    create.task = &task;
    ck_assert_uint_eq(check(&create.base), 3);
}
END_TEST

START_TEST(unknown_fields_are_skipped)
{
    /* Field 99 (LEN) holding a NUL, then a good title: only known fields count. */
    const uint8_t bytes[] = {0x9a, 0x06, 0x02, 'a', 0x00, 0x0a, 0x03, 0x12, 0x01, 'x'};
    const tw_message_rules *r =
        tw_request_rules_for(rules, &tw__v1__create_task_request__descriptor);
    tw_request_check(r, bytes, sizeof bytes, NOW_MS, &v);
    ck_assert_uint_eq(tw_violations_total(&v), 0);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("request_rules");
    TCase *tc = tcase_create("walk");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_nul_anywhere_in_a_string_is_refused_with_its_path);
    tcase_add_test(tc, invalid_utf8_is_found_past_a_nul_and_alone);
    tcase_add_test(tc, valid_requests_pass);
    tcase_add_test(tc, repeated_fields_stop_at_their_max_items);
    tcase_add_test(tc, a_field_mask_gets_the_default_limit);
    tcase_add_test(tc, packed_repeated_fields_are_counted_by_item);
    tcase_add_test(tc, timestamps_keep_to_their_window);
    tcase_add_test(tc, history_may_be_old_but_not_ahead);
    tcase_add_test(tc, ids_are_uuids_and_required_fields_are_set);
    tcase_add_test(tc, unknown_fields_are_skipped);
    suite_add_tcase(s, tc);
    return s;
}
