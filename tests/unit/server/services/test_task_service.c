/*
 * Unit tests for server/services/task_service.c: its handlers called
 * through a real engine (service_fixture.h) over a store in a temporary
 * directory. What the handlers decide: every bad field in one answer,
 * not-found, one user never reaching another's tasks, update masks, etags,
 * request_id replay, and times from the call's "now" (the store's clock).
 */
#include "tw_check.h"

#include "service_fixture.h"
#include "tw/v1/task_service.pb-c.h"

#include <string.h>

#define SVC "/tw.v1.TaskService/"

static void setup(void)
{
    sf_setup(&tw_task_service);
}

static Tw__V1__Task *create(const char *title, const char *notes, const char *const *md)
{
    Tw__V1__Task task = TW__V1__TASK__INIT;
    task.title = (char *)title;
    task.notes = (char *)notes;
    Tw__V1__CreateTaskRequest req = TW__V1__CREATE_TASK_REQUEST__INIT;
    req.task = &task;
    Tw__V1__CreateTaskResponse *resp =
        sf_ok(SVC "CreateTask", &req.base, md, &tw__v1__create_task_response__descriptor);
    ck_assert_ptr_nonnull(resp->task);
    return resp->task;
}

static sf_result get(const char *id, const char *const *md)
{
    Tw__V1__GetTaskRequest req = TW__V1__GET_TASK_REQUEST__INIT;
    req.id = (char *)id;
    return sf_call(SVC "GetTask", &req.base, md, &tw__v1__get_task_response__descriptor);
}

static size_t count_tasks(const char *const *md)
{
    Tw__V1__ListTasksRequest req = TW__V1__LIST_TASKS_REQUEST__INIT;
    Tw__V1__ListTasksResponse *resp =
        sf_ok(SVC "ListTasks", &req.base, md, &tw__v1__list_tasks_response__descriptor);
    return resp->n_tasks;
}

static sf_result update(const char *id, const char *title, const char *notes, const char *etag,
                        char **paths, size_t npaths)
{
    Tw__V1__Task task = TW__V1__TASK__INIT;
    task.id = (char *)id;
    task.title = (char *)title;
    task.notes = (char *)notes;
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    mask.paths = paths;
    mask.n_paths = npaths;
    Tw__V1__UpdateTaskRequest req = TW__V1__UPDATE_TASK_REQUEST__INIT;
    req.task = &task;
    req.update_mask = &mask;
    req.etag = (char *)etag;
    return sf_call(SVC "UpdateTask", &req.base, sf_user_a,
                   &tw__v1__update_task_response__descriptor);
}

START_TEST(create_reports_every_bad_field_and_stores_nothing)
{
    Tw__V1__Task task = TW__V1__TASK__INIT;
    task.title = "";   /* required */
    task.priority = 9; /* 1 to 4 */
    Tw__V1__CreateTaskRequest req = TW__V1__CREATE_TASK_REQUEST__INIT;
    req.task = &task;
    sf_result r =
        sf_call(SVC "CreateTask", &req.base, sf_user_a, &tw__v1__create_task_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_msg(strstr(r.fields, "task.title") && strstr(r.fields, "task.priority"), "fields: %s",
                  r.fields);
    ck_assert_uint_eq(count_tasks(sf_user_a), 0);
}
END_TEST

START_TEST(a_created_task_is_read_back_with_the_calls_time)
{
    Tw__V1__Task *made = create("Write the report", "by Friday", sf_user_a);
    ck_assert_str_eq(made->title, "Write the report");
    ck_assert_int_eq(made->status, TW__V1__TASK_STATUS__TASK_STATUS_TODO);
    ck_assert_int_eq(made->priority, 4); /* 0 on create means 4 */
    /* The call's "now" is the store's clock (the fixture's, fixed). */
    ck_assert_ptr_nonnull(made->create_time);
    ck_assert_int_eq(made->create_time->seconds, FX_EPOCH_MS / 1000);
    sf_result r = get(made->id, sf_user_a);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    Tw__V1__Task *read = ((Tw__V1__GetTaskResponse *)r.response)->task;
    ck_assert_str_eq(read->id, made->id);
    ck_assert_str_eq(read->notes, "by Friday");
    ck_assert_str_eq(read->etag, made->etag);
}
END_TEST

START_TEST(a_missing_task_is_not_found)
{
    sf_result r = get(sf_uuid(), sf_user_a);
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
}
END_TEST

START_TEST(another_users_task_does_not_exist_for_them)
{
    Tw__V1__Task *mine = create("Mine", "", sf_user_a);
    sf_result r = get(mine->id, sf_user_b);
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    ck_assert_uint_eq(count_tasks(sf_user_b), 0);
    /* Nor can they delete it. */
    Tw__V1__DeleteTaskRequest del = TW__V1__DELETE_TASK_REQUEST__INIT;
    del.id = mine->id;
    r = sf_call(SVC "DeleteTask", &del.base, sf_user_b, &tw__v1__delete_task_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    ck_assert_int_eq(get(mine->id, sf_user_a).status, GRPC_STATUS_OK);
}
END_TEST

START_TEST(update_needs_a_mask_of_known_paths)
{
    Tw__V1__Task *t = create("Title", "notes", sf_user_a);
    sf_result r = update(t->id, "New", "", "", NULL, 0);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_004");
    char *unknown[] = {"title", "colour"};
    r = update(t->id, "New", "", "", unknown, 2);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_004");
    ck_assert_msg(strstr(r.fields, "update_mask") != NULL, "fields: %s", r.fields);
    /* Nothing changed. */
    Tw__V1__Task *read = ((Tw__V1__GetTaskResponse *)get(t->id, sf_user_a).response)->task;
    ck_assert_str_eq(read->title, "Title");
    ck_assert_str_eq(read->etag, t->etag);
}
END_TEST

START_TEST(update_changes_the_named_fields_only_and_clears_named_empty_ones)
{
    Tw__V1__Task *t = create("Title", "notes", sf_user_a);
    char *notes_only[] = {"notes"};
    sf_result r = update(t->id, "Ignored", "", "", notes_only, 1);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    Tw__V1__Task *after = ((Tw__V1__UpdateTaskResponse *)r.response)->task;
    ck_assert_str_eq(after->title, "Title"); /* not in the mask */
    ck_assert_str_eq(after->notes, "");      /* named and empty: cleared */
    ck_assert_str_ne(after->etag, t->etag);
}
END_TEST

START_TEST(a_stale_etag_changes_nothing)
{
    Tw__V1__Task *t = create("Title", "", sf_user_a);
    char *title[] = {"title"};
    ck_assert_int_eq(update(t->id, "Second", "", t->etag, title, 1).status, GRPC_STATUS_OK);
    sf_result r = update(t->id, "Third", "", t->etag, title, 1); /* the first etag */
    sf_assert_error(&r, GRPC_STATUS_ABORTED, "RES_003");
    Tw__V1__Task *read = ((Tw__V1__GetTaskResponse *)get(t->id, sf_user_a).response)->task;
    ck_assert_str_eq(read->title, "Second");
}
END_TEST

START_TEST(a_request_id_replays_its_answer_or_refuses_another_body)
{
    const char *request_id = sf_uuid();
    Tw__V1__Task task = TW__V1__TASK__INIT;
    task.title = "Once";
    Tw__V1__CreateTaskRequest req = TW__V1__CREATE_TASK_REQUEST__INIT;
    req.task = &task;
    req.request_id = (char *)request_id;
    Tw__V1__CreateTaskResponse *first =
        sf_ok(SVC "CreateTask", &req.base, sf_user_a, &tw__v1__create_task_response__descriptor);
    Tw__V1__CreateTaskResponse *again =
        sf_ok(SVC "CreateTask", &req.base, sf_user_a, &tw__v1__create_task_response__descriptor);
    ck_assert_str_eq(again->task->id, first->task->id);
    task.title = "Twice";
    sf_result r =
        sf_call(SVC "CreateTask", &req.base, sf_user_a, &tw__v1__create_task_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "request_id");
    ck_assert_uint_eq(count_tasks(sf_user_a), 1);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("task_service");
    TCase *tc = tcase_create("handlers");
    tcase_add_checked_fixture(tc, setup, sf_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, create_reports_every_bad_field_and_stores_nothing);
    tcase_add_test(tc, a_created_task_is_read_back_with_the_calls_time);
    tcase_add_test(tc, a_missing_task_is_not_found);
    tcase_add_test(tc, another_users_task_does_not_exist_for_them);
    tcase_add_test(tc, update_needs_a_mask_of_known_paths);
    tcase_add_test(tc, update_changes_the_named_fields_only_and_clears_named_empty_ones);
    tcase_add_test(tc, a_stale_etag_changes_nothing);
    tcase_add_test(tc, a_request_id_replays_its_answer_or_refuses_another_body);
    suite_add_tcase(s, tc);
    return s;
}
