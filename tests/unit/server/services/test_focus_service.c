/*
 * Unit tests for server/services/focus_service.c: its handlers called
 * through a real engine (service_fixture.h) over a store in a temporary
 * directory. What the handlers decide: every bad field in one answer,
 * not-found, one user never reaching another's sessions, the state
 * machine's refusals, request_id replay, and times from the call's "now".
 */
#include "tw_check.h"

#include "service_fixture.h"
#include "tw/v1/focus_service.pb-c.h"

#include <string.h>

#define SVC "/tw.v1.FocusService/"

static void setup(void)
{
    sf_setup(&tw_focus_service);
}

static sf_result create_session(const char *template_id, const char *request_id,
                                const char *const *md)
{
    Tw__V1__CreateFocusSessionRequest req = TW__V1__CREATE_FOCUS_SESSION_REQUEST__INIT;
    req.template_id = (char *)template_id;
    req.request_id = (char *)(request_id ? request_id : "");
    return sf_call(SVC "CreateFocusSession", &req.base, md,
                   &tw__v1__create_focus_session_response__descriptor);
}

static Tw__V1__FocusSession *planned(const char *const *md)
{
    sf_result r = create_session("pomodoro", NULL, md);
    ck_assert_msg(r.status == GRPC_STATUS_OK, "%d %s %s", r.status, r.reason, r.fields);
    return ((Tw__V1__CreateFocusSessionResponse *)r.response)->session;
}

static sf_result get(const char *id, const char *const *md)
{
    Tw__V1__GetFocusSessionRequest req = TW__V1__GET_FOCUS_SESSION_REQUEST__INIT;
    req.id = (char *)id;
    return sf_call(SVC "GetFocusSession", &req.base, md,
                   &tw__v1__get_focus_session_response__descriptor);
}

static Tw__V1__FocusSessionState state_of(const char *id)
{
    sf_result r = get(id, sf_user_a);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    return ((Tw__V1__GetFocusSessionResponse *)r.response)->session->state;
}

static sf_result start(const char *id, const char *const *md)
{
    Tw__V1__StartFocusSessionRequest req = TW__V1__START_FOCUS_SESSION_REQUEST__INIT;
    req.session_id = (char *)id;
    return sf_call(SVC "StartFocusSession", &req.base, md,
                   &tw__v1__start_focus_session_response__descriptor);
}

static sf_result pause(const char *id, const char *const *md)
{
    Tw__V1__PauseFocusSessionRequest req = TW__V1__PAUSE_FOCUS_SESSION_REQUEST__INIT;
    req.session_id = (char *)id;
    return sf_call(SVC "PauseFocusSession", &req.base, md,
                   &tw__v1__pause_focus_session_response__descriptor);
}

static sf_result complete(const char *id, const char *const *md)
{
    Tw__V1__CompleteFocusSessionRequest req = TW__V1__COMPLETE_FOCUS_SESSION_REQUEST__INIT;
    req.session_id = (char *)id;
    return sf_call(SVC "CompleteFocusSession", &req.base, md,
                   &tw__v1__complete_focus_session_response__descriptor);
}

START_TEST(a_session_is_planned_then_read_by_its_owner_only)
{
    Tw__V1__FocusSession *s = planned(sf_user_a);
    ck_assert_int_eq(s->state, TW__V1__FOCUS_SESSION_STATE__FOCUS_SESSION_STATE_PLANNED);
    ck_assert_str_eq(s->template_id, "pomodoro");
    ck_assert_int_eq(s->create_time->seconds, FX_EPOCH_MS / 1000); /* the call's "now" */
    ck_assert_int_eq(state_of(s->id), TW__V1__FOCUS_SESSION_STATE__FOCUS_SESSION_STATE_PLANNED);
    sf_result r = get(s->id, sf_user_b);
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    r = get(sf_uuid(), sf_user_a);
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
}
END_TEST

START_TEST(an_unknown_template_is_refused)
{
    sf_result r = create_session("no-such-template", NULL, sf_user_a);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "template_id");
    Tw__V1__ListFocusSessionsRequest list = TW__V1__LIST_FOCUS_SESSIONS_REQUEST__INIT;
    Tw__V1__ListFocusSessionsResponse *all =
        sf_ok(SVC "ListFocusSessions", &list.base, sf_user_a,
              &tw__v1__list_focus_sessions_response__descriptor);
    ck_assert_uint_eq(all->n_sessions, 0);
}
END_TEST

START_TEST(the_state_machine_refuses_what_the_state_does_not_allow)
{
    Tw__V1__FocusSession *s = planned(sf_user_a);
    sf_result r = pause(s->id, sf_user_a); /* a planned session is not running */
    sf_assert_error(&r, GRPC_STATUS_FAILED_PRECONDITION, "STATE_001");
    ck_assert_int_eq(state_of(s->id), TW__V1__FOCUS_SESSION_STATE__FOCUS_SESSION_STATE_PLANNED);

    r = start(s->id, sf_user_a);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    Tw__V1__FocusSession *running = ((Tw__V1__StartFocusSessionResponse *)r.response)->session;
    ck_assert_int_eq(running->state, TW__V1__FOCUS_SESSION_STATE__FOCUS_SESSION_STATE_RUNNING);
    ck_assert_int_eq(running->start_time->seconds, FX_EPOCH_MS / 1000);

    ck_assert_int_eq(complete(s->id, sf_user_a).status, GRPC_STATUS_OK);
    r = pause(s->id, sf_user_a); /* a completed session is over */
    sf_assert_error(&r, GRPC_STATUS_FAILED_PRECONDITION, "STATE_001");
    ck_assert_int_eq(state_of(s->id), TW__V1__FOCUS_SESSION_STATE__FOCUS_SESSION_STATE_COMPLETED);
}
END_TEST

START_TEST(another_user_cannot_move_a_session)
{
    Tw__V1__FocusSession *s = planned(sf_user_a);
    sf_result r = start(s->id, sf_user_b);
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    ck_assert_int_eq(state_of(s->id), TW__V1__FOCUS_SESSION_STATE__FOCUS_SESSION_STATE_PLANNED);
}
END_TEST

START_TEST(starting_a_planned_session_refuses_the_fields_of_a_new_one)
{
    Tw__V1__FocusSession *s = planned(sf_user_a);
    Tw__V1__StartFocusSessionRequest req = TW__V1__START_FOCUS_SESSION_REQUEST__INIT;
    req.session_id = s->id;
    req.template_id = "flowtime";
    char *tags[] = {"deep"};
    req.tags = tags;
    req.n_tags = 1;
    sf_result r = sf_call(SVC "StartFocusSession", &req.base, sf_user_a,
                          &tw__v1__start_focus_session_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "template_id,tags");
    ck_assert_int_eq(state_of(s->id), TW__V1__FOCUS_SESSION_STATE__FOCUS_SESSION_STATE_PLANNED);
}
END_TEST

START_TEST(a_template_reports_every_bad_field)
{
    Tw__V1__FocusTemplate t = TW__V1__FOCUS_TEMPLATE__INIT;
    t.display_name = "Mine";
    t.kind = TW__V1__FOCUS_TEMPLATE_KIND__FOCUS_TEMPLATE_KIND_CYCLES;
    t.long_break_every = -1;
    Google__Protobuf__Duration negative = GOOGLE__PROTOBUF__DURATION__INIT;
    negative.seconds = -60;
    t.focus_duration = &negative;
    Tw__V1__CreateFocusTemplateRequest req = TW__V1__CREATE_FOCUS_TEMPLATE_REQUEST__INIT;
    req.template_ = &t;
    sf_result r = sf_call(SVC "CreateFocusTemplate", &req.base, sf_user_a,
                          &tw__v1__create_focus_template_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_msg(strstr(r.fields, "focus_duration") && strstr(r.fields, "long_break_every"),
                  "fields: %s", r.fields);
    Tw__V1__ListFocusTemplatesRequest list = TW__V1__LIST_FOCUS_TEMPLATES_REQUEST__INIT;
    Tw__V1__ListFocusTemplatesResponse *all =
        sf_ok(SVC "ListFocusTemplates", &list.base, sf_user_a,
              &tw__v1__list_focus_templates_response__descriptor);
    for (size_t i = 0; i < all->n_templates; i++)
        ck_assert(all->templates[i]->built_in);
}
END_TEST

START_TEST(a_request_id_replays_its_answer_or_refuses_another_body)
{
    const char *request_id = sf_uuid();
    sf_result first = create_session("pomodoro", request_id, sf_user_a);
    ck_assert_int_eq(first.status, GRPC_STATUS_OK);
    sf_result again = create_session("pomodoro", request_id, sf_user_a);
    ck_assert_int_eq(again.status, GRPC_STATUS_OK);
    ck_assert_str_eq(((Tw__V1__CreateFocusSessionResponse *)again.response)->session->id,
                     ((Tw__V1__CreateFocusSessionResponse *)first.response)->session->id);
    sf_result other = create_session("flowtime", request_id, sf_user_a);
    sf_assert_error(&other, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(other.fields, "request_id");
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("focus_service");
    TCase *tc = tcase_create("handlers");
    tcase_add_checked_fixture(tc, setup, sf_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_session_is_planned_then_read_by_its_owner_only);
    tcase_add_test(tc, an_unknown_template_is_refused);
    tcase_add_test(tc, the_state_machine_refuses_what_the_state_does_not_allow);
    tcase_add_test(tc, another_user_cannot_move_a_session);
    tcase_add_test(tc, starting_a_planned_session_refuses_the_fields_of_a_new_one);
    tcase_add_test(tc, a_template_reports_every_bad_field);
    tcase_add_test(tc, a_request_id_replays_its_answer_or_refuses_another_body);
    suite_add_tcase(s, tc);
    return s;
}
