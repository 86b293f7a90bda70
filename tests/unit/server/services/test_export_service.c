/*
 * Unit tests for server/services/export_service.c: ExportMyData served by a
 * real engine (service_fixture.h), beside TaskService to make records to
 * export. What the handler decides: the stream carries the caller's own
 * records as JSON lines and none of another user's, and a caller nobody
 * signed in is refused.
 */
#include "tw_check.h"

#include "rpc_test_client.h"
#include "service_fixture.h"
#include "tw/v1/export_service.pb-c.h"
#include "tw/v1/task_service.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define STREAM_TIMEOUT_MS 30000
#define MAX_PIECES        1000

static void setup(void)
{
    static const tw_service_def *const defs[] = {&tw_export_service, &tw_task_service, NULL};
    sf_setup_services(defs);
}

static void create_task(const char *title, const char *const *md)
{
    Tw__V1__Task task = TW__V1__TASK__INIT;
    task.title = (char *)title;
    Tw__V1__CreateTaskRequest req = TW__V1__CREATE_TASK_REQUEST__INIT;
    req.task = &task;
    sf_ok("/tw.v1.TaskService/CreateTask", &req.base, md,
          &tw__v1__create_task_response__descriptor);
}

/* The records of the caller's export, every piece's lines joined (the
 * caller frees it), and the call's status in *status. */
static char *export_records(const char *const *md, grpc_status_code *status)
{
    rpc_stream *s =
        rpc_stream_open_md(sf_channel, "/tw.v1.ExportService/ExportMyData", STREAM_TIMEOUT_MS, md);
    ck_assert_ptr_nonnull(s);
    Tw__V1__ExportMyDataRequest req = TW__V1__EXPORT_MY_DATA_REQUEST__INIT;
    ck_assert(rpc_stream_send(s, &req.base));
    ck_assert(rpc_stream_close_send(s));
    size_t len = 0;
    char *records = calloc(1, 1);
    ck_assert_ptr_nonnull(records);
    for (int i = 0; i < MAX_PIECES; i++) {
        Tw__V1__ExportMyDataResponse *piece = (Tw__V1__ExportMyDataResponse *)rpc_stream_recv(
            s, &tw__v1__export_my_data_response__descriptor);
        if (piece == NULL)
            break;
        ck_assert_ptr_nonnull(piece->chunk);
        if (piece->chunk->piece_case == TW__V1__EXPORT_CHUNK__PIECE_RECORDS) {
            size_t n = strlen(piece->chunk->records);
            ck_assert_msg(n > 0 && piece->chunk->records[n - 1] == '\n',
                          "a piece of records ends with a whole line");
            records = realloc(records, len + n + 1);
            ck_assert_ptr_nonnull(records);
            memcpy(records + len, piece->chunk->records, n + 1);
            len += n;
        }
        protobuf_c_message_free_unpacked(&piece->base, NULL);
    }
    rpc_result r;
    rpc_stream_finish(s, &r);
    *status = r.status;
    rpc_result_free(&r);
    return records;
}

START_TEST(the_export_holds_the_callers_records_only)
{
    create_task("water the plants", sf_user_a);
    create_task("B's secret errand", sf_user_b);
    grpc_status_code status;
    char *a = export_records(sf_user_a, &status);
    ck_assert_int_eq(status, GRPC_STATUS_OK);
    ck_assert_msg(strstr(a, "\"family\":\"TASK\"") != NULL, "no task record in: %.500s", a);
    ck_assert_ptr_nonnull(strstr(a, "water the plants"));
    ck_assert_ptr_nonnull(strstr(a, SF_USER_A));
    ck_assert_ptr_null(strstr(a, "B's secret errand"));
    ck_assert_ptr_null(strstr(a, SF_USER_B));
    free(a);

    char *b = export_records(sf_user_b, &status);
    ck_assert_int_eq(status, GRPC_STATUS_OK);
    ck_assert_ptr_nonnull(strstr(b, "B's secret errand"));
    ck_assert_ptr_null(strstr(b, "water the plants"));
    free(b);
}
END_TEST

START_TEST(a_caller_nobody_signed_in_is_refused)
{
    grpc_status_code status;
    char *records = export_records(NULL, &status);
    ck_assert_int_eq(status, GRPC_STATUS_UNAUTHENTICATED);
    ck_assert_str_eq(records, "");
    free(records);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("export_service");
    TCase *tc = tcase_create("handlers");
    tcase_add_checked_fixture(tc, setup, sf_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, the_export_holds_the_callers_records_only);
    tcase_add_test(tc, a_caller_nobody_signed_in_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
