/*
 * Allocation failures in the RPC engine: the test counts the allocations
 * the server side of one call makes in our code (alloc_fail.h: every thread
 * but the test's, which runs the client), then makes that call again once
 * for every N up to the total with the Nth allocation failing. The client
 * must always get a status (OK, or RESOURCE_EXHAUSTED / INTERNAL with a
 * message), never wait for its deadline, and the server must serve the next
 * normal call. Under the sanitizer build LeakSanitizer checks that every
 * failure path freed what it took.
 */
#include "tw_check.h"

#include "alloc_fail.h"
#include "engine_test.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "rpc/engine.h"
#include "rpc/metrics.h"
#include "rpc_test_client.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

extern const unsigned char engine_test_descriptor_set[];
extern const size_t engine_test_descriptor_set_size;

#define GUARDED "/twtest.v1.EngineTestService/Guarded"
#define SUM     "/twtest.v1.EngineTestService/Sum"
/* A call that gets no status within this long has hung. */
#define CALL_TIMEOUT_MS 5000
/* The loops run at most this many times. */
#define MAX_ALLOCATIONS 1000

/* Longer than the call arena's first block: decoding it and the handler's
 * copy each need a block of their own. */
#define TEXT_BYTES 5000
static char text[TEXT_BYTES + 1];

/* ---- the service: a unary method behind the gate and a client stream ---- */

static tw_err echo(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Twtest__V1__EchoRequest *in = (const void *)request;
    Twtest__V1__EchoResponse *out = (void *)response;
    /* Some work in the call's arena, as a handler does. */
    out->text = tw_arena_strdup(tw_call_arena(call), in->text);
    if (out->text == NULL)
        return TW_ERR_NO_MEMORY;
    out->request_id = (char *)tw_call_request_id(call);
    return TW_OK;
}

static tw_err sum_message(tw_call *call, const ProtobufCMessage *message,
                          ProtobufCMessage *response)
{
    const Twtest__V1__SumRequest *in = (const void *)message;
    Twtest__V1__SumResponse *out = (void *)response;
    out->total += in->value;
    out->count++;
    return TW_OK;
}

static tw_err sum_end(tw_call *call, ProtobufCMessage *response)
{
    return TW_OK;
}

static tw_err unused(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    return TW_ERR_UNIMPLEMENTED;
}

static const tw_method methods[] = {
    {"Echo", TW_UNARY, TW_PUBLIC, .handle = echo},
    {"Guarded", TW_UNARY, 0, .handle = echo},
    {"Sum", TW_CLIENT_STREAM, TW_PUBLIC, .on_message = sum_message, .on_end = sum_end},
    {"Count", TW_SERVER_STREAM, TW_PUBLIC, .handle = unused},
    {"Chat", TW_BIDI_STREAM, TW_PUBLIC, .on_message = sum_message, .on_end = sum_end},
    {NULL},
};

static const tw_service service = {
    .descriptor = &twtest__v1__engine_test_service__descriptor,
    .methods = methods,
};

static const tw_id caller = {{0x01, 0x8f, [15] = 0x07}};

static tw_err gate(void *ctx, tw_call *call, const tw_method *method)
{
    if (method->flags & TW_PUBLIC)
        return TW_OK;
    const char *token = tw_call_metadata(call, "authorization");
    if (token == NULL || strcmp(token, "Bearer good") != 0)
        return TW_ERR_AUTH_INVALID_TOKEN;
    tw_call_set_caller(call, &caller, NULL, "user");
    return TW_OK;
}

/* ---- one engine for the suite's test ---------------------------------------- */

static tw_engine *engine;
static grpc_channel *channel;

static void start_engine(void)
{
    memset(text, 'x', TEXT_BYTES);
    tw_engine_config cfg = {
        .listen = "127.0.0.1:0",
        .workers = 1,
        .max_message_bytes = 65536,
        .requests_per_method = 2,
        .max_stream_backlog = 1 << 20,
        .descriptor_set = engine_test_descriptor_set,
        .descriptor_set_size = engine_test_descriptor_set_size,
    };
    char errbuf[256] = "";
    ck_assert_int_eq(tw_engine_new(&cfg, &engine), TW_OK);
    ck_assert_msg(tw_engine_add_service(engine, &service, errbuf, sizeof errbuf) == TW_OK, "%s",
                  errbuf);
    tw_engine_set_gate(engine, gate, NULL);
    int port = 0;
    ck_assert_msg(tw_engine_start(engine, &port, errbuf, sizeof errbuf) == TW_OK, "%s", errbuf);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    channel = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
}

static void stop_engine(void)
{
    grpc_channel_destroy(channel);
    channel = NULL;
    tw_engine_shutdown(engine, 1000);
    tw_engine_free(engine);
    engine = NULL;
}

/* ---- waiting for the server's side of a call to end ------------------------- */

/* Calls started and ended on every method, from the engine's metrics: a call
 * is counted as ended when it is released, after its last allocation. */
static void call_counts(uint64_t *started, uint64_t *ended)
{
    struct tw_rpc_metrics *m = tw_engine_metrics(engine);
    *started = *ended = 0;
    for (size_t i = 0; i < tw_rpc_metrics_slots(m); i++) {
        tw_rpc_method_stats st;
        tw_rpc_metrics_read(m, i, &st);
        *started += st.started;
        for (int code = 0; code < TW_RPC_CODES; code++)
            *ended += st.ended[code];
    }
}

/* Waits (at most CALL_TIMEOUT_MS) until every call that started has been
 * released; false if one has not. */
static bool server_idle(void)
{
    for (int i = 0; i < CALL_TIMEOUT_MS; i++) {
        uint64_t started, ended;
        call_counts(&started, &ended);
        if (started == ended)
            return true;
        nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
    }
    return false;
}

/* ---- the calls ----------------------------------------------------------------- */

typedef void call_fn(rpc_result *r);

static void unary_call(rpc_result *r)
{
    Twtest__V1__EchoRequest req = TWTEST__V1__ECHO_REQUEST__INIT;
    req.text = text;
    const char *md[] = {"authorization", "Bearer good", "x-request-id", "alloc-fail-1", NULL};
    rpc_unary(channel, GUARDED, &req.base, NULL, 0, CALL_TIMEOUT_MS, md, r);
}

static void stream_call(rpc_result *r)
{
    rpc_stream *s = rpc_stream_open(channel, SUM, CALL_TIMEOUT_MS);
    Twtest__V1__SumRequest req = TWTEST__V1__SUM_REQUEST__INIT;
    for (int i = 1; i <= 3; i++) {
        req.value = i;
        if (!rpc_stream_send(s, &req.base))
            break; /* the server ended the call: the status says why */
    }
    rpc_stream_close_send(s);
    rpc_stream_finish(s, r);
}

/* The reason of the ErrorInfo in a failed call's details, in buf; "" when
 * there is none. */
static const char *error_reason(const rpc_result *r, char *buf, size_t len)
{
    buf[0] = '\0';
    Google__Rpc__Status *st =
        r->details ? google__rpc__status__unpack(NULL, r->details_len, r->details) : NULL;
    for (size_t i = 0; st != NULL && i < st->n_details; i++) {
        if (strcmp(st->details[i]->type_url, "type.googleapis.com/google.rpc.ErrorInfo") != 0)
            continue;
        Google__Rpc__ErrorInfo *info = google__rpc__error_info__unpack(
            NULL, st->details[i]->value.len, st->details[i]->value.data);
        if (info != NULL)
            snprintf(buf, len, "%s", info->reason);
        google__rpc__error_info__free_unpacked(info, NULL);
    }
    if (st != NULL)
        google__rpc__status__free_unpacked(st, NULL);
    return buf;
}

/* Checks what a normal call answers. */
static void check_normal(call_fn *call, bool unary)
{
    rpc_result r;
    call(&r);
    ck_assert_msg(r.status == GRPC_STATUS_OK, "a normal call after a failure got %d: %s",
                  (int)r.status, r.message ? r.message : "");
    ck_assert(r.has_response);
    if (unary) {
        Twtest__V1__EchoResponse *resp =
            twtest__v1__echo_response__unpack(NULL, r.response_len, r.response);
        ck_assert_ptr_nonnull(resp);
        ck_assert_str_eq(resp->text, text);
        twtest__v1__echo_response__free_unpacked(resp, NULL);
    } else {
        Twtest__V1__SumResponse *resp =
            twtest__v1__sum_response__unpack(NULL, r.response_len, r.response);
        ck_assert_ptr_nonnull(resp);
        ck_assert_int_eq(resp->total, 6);
        ck_assert_int_eq(resp->count, 3);
        twtest__v1__sum_response__free_unpacked(resp, NULL);
    }
    rpc_result_free(&r);
}

/* Runs call with the server's fail_at'th allocation failing (0: none) and
 * waits for the server to release it; returns how many it made. */
static uint64_t run_call(call_fn *call, uint64_t fail_at, rpc_result *r)
{
    ck_assert(server_idle());
    alloc_fail_arm(fail_at, ALLOC_OTHER_THREADS);
    call(r);
    bool idle = server_idle();
    uint64_t total = alloc_fail_disarm();
    ck_assert_msg(idle, "allocation %llu failing: the server never released the call",
                  (unsigned long long)fail_at);
    return total;
}

static void every_allocation_fails_in_turn(call_fn *call, bool unary, const char *name)
{
    /* Warm up: the worker's first calls allocate its per-thread blocks
     * (metrics, call log) once; the measured call is one like any other. */
    for (int i = 0; i < 3; i++)
        check_normal(call, unary);
    rpc_result r;
    uint64_t total = run_call(call, 0, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    rpc_result_free(&r);
    ck_assert_uint_gt(total, 0);
    ck_assert_uint_le(total, MAX_ALLOCATIONS);
    fprintf(stderr, "%s: %llu allocations on the server's side\n", name, (unsigned long long)total);
    int refused = 0;
    for (uint64_t n = 1; n <= total; n++) {
        run_call(call, n, &r);
        ck_assert_msg(r.status == GRPC_STATUS_OK || r.status == GRPC_STATUS_RESOURCE_EXHAUSTED ||
                          r.status == GRPC_STATUS_INTERNAL,
                      "allocation %llu failing: status %d (%s)", (unsigned long long)n,
                      (int)r.status, r.message ? r.message : "");
        if (r.status != GRPC_STATUS_OK) {
            char reason[64];
            ck_assert_msg(r.message != NULL && r.message[0] != '\0',
                          "allocation %llu failing: status %d without a message",
                          (unsigned long long)n, (int)r.status);
            /* Out of memory has its own reason, an INTERNAL error some;
             * only a call that could not get its arena has no details. */
            error_reason(&r, reason, sizeof reason);
            bool reason_ok = r.status == GRPC_STATUS_RESOURCE_EXHAUSTED
                                 ? strcmp(reason, "MEM_001") == 0
                                 : reason[0] != '\0';
            ck_assert_msg(reason_ok || r.details == NULL,
                          "allocation %llu failing: status %d, reason \"%s\"",
                          (unsigned long long)n, (int)r.status, reason);
            fprintf(stderr, "  allocation %llu failing: status %d, reason \"%s\", \"%s\"\n",
                    (unsigned long long)n, (int)r.status, reason, r.message);
            refused++;
        }
        rpc_result_free(&r);
        check_normal(call, unary);
    }
    ck_assert_int_gt(refused, 0);
}

START_TEST(unary_call_survives_every_allocation_failing)
{
    start_engine();
    every_allocation_fails_in_turn(unary_call, true, "unary call");
    stop_engine();
}
END_TEST

/* The first allocation of an arriving call is the request that replaces it
 * (an idle method has one call requested per worker). Failing it more times
 * than that must not leave the method without a request: its next call
 * would wait for its deadline. */
START_TEST(a_failed_replacement_request_is_made_later)
{
    start_engine();
    for (int i = 0; i < 3; i++)
        check_normal(unary_call, true);
    for (int i = 0; i < 4; i++) {
        rpc_result r;
        run_call(unary_call, 1, &r);
        ck_assert_int_eq(r.status, GRPC_STATUS_OK);
        rpc_result_free(&r);
        check_normal(unary_call, true);
    }
    stop_engine();
}
END_TEST

START_TEST(client_stream_survives_every_allocation_failing)
{
    start_engine();
    every_allocation_fails_in_turn(stream_call, false, "client stream");
    stop_engine();
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("engine_alloc_fail");
    TCase *tc = tcase_create("calls");
    tcase_add_test(tc, unary_call_survives_every_allocation_failing);
    tcase_add_test(tc, client_stream_survives_every_allocation_failing);
    tcase_add_test(tc, a_failed_replacement_request_is_made_later);
    suite_add_tcase(s, tc);
    return s;
}
