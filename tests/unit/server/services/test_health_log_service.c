/*
 * Unit tests for server/services/health_log_service.c: its handlers called
 * through a real engine (service_fixture.h) over a store in a temporary
 * directory. What the handlers decide: every bad field in one answer,
 * not-found, one user never reaching another's entries, update masks,
 * client-chosen ids and request_id replay.
 */
#include "tw_check.h"

#include "service_fixture.h"
#include "tw/v1/health_log_service.pb-c.h"

#include <string.h>

#define SVC "/tw.v1.HealthLogService/"
/* An hour before the fixture's clock: in the past, as entries must be. */
#define AN_HOUR_AGO_S (FX_EPOCH_MS / 1000 - 3600)

static void setup(void)
{
    sf_setup(&tw_health_log_service);
}

/* A weight entry of kg an hour ago, ready to send (static parts). */
static Tw__V1__HealthLog *weight_entry(double kg)
{
    static Google__Protobuf__Timestamp start = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    static Tw__V1__HealthWeight weight = TW__V1__HEALTH_WEIGHT__INIT;
    static Tw__V1__HealthLog e;
    start.seconds = AN_HOUR_AGO_S;
    weight.weight_kg = kg;
    e = (Tw__V1__HealthLog)TW__V1__HEALTH_LOG__INIT;
    e.start_time = &start;
    e.payload_case = TW__V1__HEALTH_LOG__PAYLOAD_WEIGHT;
    e.weight = &weight;
    e.note = "after the run";
    return &e;
}

static sf_result create(Tw__V1__HealthLog *e, const char *request_id, const char *id,
                        const char *const *md)
{
    Tw__V1__CreateHealthLogRequest req = TW__V1__CREATE_HEALTH_LOG_REQUEST__INIT;
    req.health_log = e;
    req.request_id = (char *)(request_id ? request_id : "");
    req.health_log_id = (char *)(id ? id : "");
    return sf_call(SVC "CreateHealthLog", &req.base, md,
                   &tw__v1__create_health_log_response__descriptor);
}

static Tw__V1__HealthLog *create_ok(double kg, const char *const *md)
{
    sf_result r = create(weight_entry(kg), NULL, NULL, md);
    ck_assert_msg(r.status == GRPC_STATUS_OK, "%d %s %s", r.status, r.reason, r.fields);
    return ((Tw__V1__CreateHealthLogResponse *)r.response)->health_log;
}

static sf_result get(const char *id, const char *const *md)
{
    Tw__V1__GetHealthLogRequest req = TW__V1__GET_HEALTH_LOG_REQUEST__INIT;
    req.id = (char *)id;
    return sf_call(SVC "GetHealthLog", &req.base, md, &tw__v1__get_health_log_response__descriptor);
}

static size_t count_entries(const char *const *md)
{
    Tw__V1__ListHealthLogsRequest req = TW__V1__LIST_HEALTH_LOGS_REQUEST__INIT;
    Tw__V1__ListHealthLogsResponse *resp =
        sf_ok(SVC "ListHealthLogs", &req.base, md, &tw__v1__list_health_logs_response__descriptor);
    return resp->n_health_logs;
}

static sf_result update(Tw__V1__HealthLog *e, char **paths, size_t npaths)
{
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    mask.paths = paths;
    mask.n_paths = npaths;
    Tw__V1__UpdateHealthLogRequest req = TW__V1__UPDATE_HEALTH_LOG_REQUEST__INIT;
    req.health_log = e;
    req.update_mask = &mask;
    return sf_call(SVC "UpdateHealthLog", &req.base, sf_user_a,
                   &tw__v1__update_health_log_response__descriptor);
}

START_TEST(create_reports_every_bad_field_and_stores_nothing)
{
    Tw__V1__HealthLog *e = weight_entry(0); /* more than 0 */
    Google__Protobuf__Duration offset = GOOGLE__PROTOBUF__DURATION__INIT;
    offset.seconds = 19 * 3600; /* at most 18 hours */
    e->utc_offset = &offset;
    sf_result r = create(e, NULL, NULL, sf_user_a);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_msg(strstr(r.fields, "weight.weight_kg") && strstr(r.fields, "utc_offset"),
                  "fields: %s", r.fields);
    ck_assert_uint_eq(count_entries(sf_user_a), 0);
}
END_TEST

START_TEST(an_entry_is_read_back_by_its_owner_only)
{
    Tw__V1__HealthLog *made = create_ok(72.5, sf_user_a);
    ck_assert_int_eq(made->type, TW__V1__HEALTH_LOG_TYPE__HEALTH_LOG_TYPE_WEIGHT);
    ck_assert_int_eq(made->create_time->seconds, FX_EPOCH_MS / 1000); /* the call's "now" */
    sf_result r = get(made->id, sf_user_a);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    Tw__V1__HealthLog *read = ((Tw__V1__GetHealthLogResponse *)r.response)->health_log;
    ck_assert_double_eq(read->weight->weight_kg, 72.5);
    r = get(made->id, sf_user_b);
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    ck_assert_uint_eq(count_entries(sf_user_b), 0);
    r = get(sf_uuid(), sf_user_a);
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
}
END_TEST

START_TEST(another_user_cannot_delete_an_entry)
{
    Tw__V1__HealthLog *made = create_ok(70, sf_user_a);
    Tw__V1__DeleteHealthLogRequest del = TW__V1__DELETE_HEALTH_LOG_REQUEST__INIT;
    del.id = made->id;
    sf_result r = sf_call(SVC "DeleteHealthLog", &del.base, sf_user_b,
                          &tw__v1__delete_health_log_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    ck_assert_int_eq(get(made->id, sf_user_a).status, GRPC_STATUS_OK);
    sf_ok(SVC "DeleteHealthLog", &del.base, sf_user_a,
          &tw__v1__delete_health_log_response__descriptor);
    r = get(made->id, sf_user_a);
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
}
END_TEST

START_TEST(update_needs_a_mask_of_paths_it_may_change)
{
    Tw__V1__HealthLog *made = create_ok(70, sf_user_a);
    Tw__V1__HealthLog *e = weight_entry(71);
    e->id = made->id;
    sf_result r = update(e, NULL, 0);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_004");
    char *fixed[] = {"type"}; /* an entry keeps its type */
    r = update(e, fixed, 1);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_004");
    ck_assert_msg(strstr(r.fields, "update_mask") != NULL, "fields: %s", r.fields);
    char *unknown[] = {"colour"};
    r = update(e, unknown, 1);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_004");
    Tw__V1__HealthLog *read =
        ((Tw__V1__GetHealthLogResponse *)get(made->id, sf_user_a).response)->health_log;
    ck_assert_double_eq(read->weight->weight_kg, 70);
}
END_TEST

START_TEST(update_changes_the_named_fields_only_and_clears_named_empty_ones)
{
    Tw__V1__HealthLog *made = create_ok(70, sf_user_a);
    Tw__V1__HealthLog *e = weight_entry(99);
    e->id = made->id;
    e->note = "";
    char *note[] = {"note"};
    sf_result r = update(e, note, 1);
    ck_assert_msg(r.status == GRPC_STATUS_OK, "%d %s %s", r.status, r.reason, r.fields);
    Tw__V1__HealthLog *after = ((Tw__V1__UpdateHealthLogResponse *)r.response)->health_log;
    ck_assert_str_eq(after->note, "");                 /* named and empty: cleared */
    ck_assert_double_eq(after->weight->weight_kg, 70); /* not named */
}
END_TEST

START_TEST(a_chosen_id_and_a_request_id_make_one_entry)
{
    const char *id = sf_uuid(), *request_id = sf_uuid();
    sf_result r = create(weight_entry(70), request_id, id, sf_user_a);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    ck_assert_str_eq(((Tw__V1__CreateHealthLogResponse *)r.response)->health_log->id, id);
    r = create(weight_entry(70), request_id, id, sf_user_a); /* a retry */
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    ck_assert_str_eq(((Tw__V1__CreateHealthLogResponse *)r.response)->health_log->id, id);
    r = create(weight_entry(80), request_id, id, sf_user_a); /* another body */
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "request_id");
    ck_assert_uint_eq(count_entries(sf_user_a), 1);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("health_log_service");
    TCase *tc = tcase_create("handlers");
    tcase_add_checked_fixture(tc, setup, sf_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, create_reports_every_bad_field_and_stores_nothing);
    tcase_add_test(tc, an_entry_is_read_back_by_its_owner_only);
    tcase_add_test(tc, another_user_cannot_delete_an_entry);
    tcase_add_test(tc, update_needs_a_mask_of_paths_it_may_change);
    tcase_add_test(tc, update_changes_the_named_fields_only_and_clears_named_empty_ones);
    tcase_add_test(tc, a_chosen_id_and_a_request_id_make_one_entry);
    suite_add_tcase(s, tc);
    return s;
}
