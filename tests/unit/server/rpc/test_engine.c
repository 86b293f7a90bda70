/*
 * Unit tests for server/rpc/engine.c, driven from the outside through a real
 * gRPC connection: a test service (engine_test.proto) with one method per
 * call kind, served by an engine on a free loopback port, called with the
 * gRPC core client in rpc_test_client.c.
 */
#include "tw_check.h"

#include "engine_test.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "rpc/engine.h"
#include "rpc_test_client.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const unsigned char engine_test_descriptor_set[];
extern const size_t engine_test_descriptor_set_size;

#define MAX_MESSAGE 65536
#define ECHO        "/twtest.v1.EngineTestService/Echo"

/* ---- the test service ----------------------------------------------------- */

static atomic_int cancel_hooks_run;
static atomic_int sums_completed;
static atomic_int sum_messages_seen;

/* Echo calls that reached their handler and were deferred: a test waits
 * for this rather than sleeping a guessed time. */
static atomic_int echoes_deferred;

struct deferred {
    tw_call *call;
    int ms;
};

/* A deferred echo's cancel hook: the engine must tell a handler that goes
 * on after returning, although the close was not posted when it began. */
static void echo_cancelled(tw_call *call, void *ctx)
{
    (void)call;
    (void)ctx;
    atomic_fetch_add(&cancel_hooks_run, 1);
}

static void *finish_later(void *arg)
{
    struct deferred *d = arg;
    usleep((useconds_t)d->ms * 1000);
    tw_call_finish(d->call, TW_OK);
    free(d);
    return NULL;
}

static tw_err echo(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Twtest__V1__EchoRequest *in = (const void *)request;
    Twtest__V1__EchoResponse *out = (void *)response;
    if (in->retry_after_ms > 0)
        tw_call_retry_after(call, in->retry_after_ms);
    if (in->fail_with != 0)
        return tw_call_error(call, (tw_err)in->fail_with, "failed as asked");
    if (in->bad_field[0] != '\0')
        return tw_call_field_violation(call, in->bad_field, "is not acceptable");
    out->text = in->text;
    out->request_id = (char *)tw_call_request_id(call);
    const tw_id *caller = tw_call_caller(call);
    if (caller != NULL) {
        out->user_id = tw_arena_alloc(tw_call_arena(call), TW_ID_TEXT_SIZE);
        tw_id_format(caller, out->user_id);
    }
    if (in->defer_ms > 0) {
        atomic_fetch_add(&echoes_deferred, 1);
        tw_call_on_cancel(call, echo_cancelled, NULL);
        struct deferred *d = malloc(sizeof *d);
        *d = (struct deferred){call, in->defer_ms};
        pthread_t t;
        pthread_create(&t, NULL, finish_later, d);
        pthread_detach(t);
        return TW_DEFERRED;
    }
    return TW_OK;
}

/* A SumRequest value that answers at once, and the base of values added
 * from another thread. */
#define SUM_NOW   1000
#define SUM_LATER 10000

static atomic_int sums_deferred;

struct sum_later {
    tw_call *call;
    Twtest__V1__SumResponse *out;
    int64_t value;
};

/* Adds the value a moment later on a thread of its own, then lets the
 * engine read the next message. */
static void *add_later(void *arg)
{
    struct sum_later *l = arg;
    usleep(2000);
    l->out->total += l->value;
    l->out->count++;
    atomic_fetch_add(&sums_deferred, 1);
    tw_call *call = l->call;
    free(l);
    tw_call_read_next(call);
    return NULL;
}

static tw_err sum_message(tw_call *call, const ProtobufCMessage *message,
                          ProtobufCMessage *response)
{
    const Twtest__V1__SumRequest *in = (const void *)message;
    Twtest__V1__SumResponse *out = (void *)response;
    atomic_fetch_add(&sum_messages_seen, 1);
    if (in->value < 0)
        return tw_call_field_violation(call, "value", "must not be negative");
    if (in->value == SUM_NOW) {
        tw_call_finish(call, TW_OK);
        return TW_DEFERRED;
    }
    if (in->value >= SUM_LATER) {
        struct sum_later *l = malloc(sizeof *l);
        *l = (struct sum_later){call, out, in->value - SUM_LATER};
        pthread_t t;
        pthread_create(&t, NULL, add_later, l);
        pthread_detach(t);
        return TW_DEFERRED;
    }
    out->total += in->value;
    out->count++;
    return TW_OK;
}

static void sum_cancelled(tw_call *call, void *ctx)
{
    atomic_fetch_add(&cancel_hooks_run, 1);
}

static tw_err sum_message(tw_call *call, const ProtobufCMessage *message,
                          ProtobufCMessage *response);

static tw_err sum_first_message(tw_call *call, const ProtobufCMessage *message,
                                ProtobufCMessage *response)
{
    Twtest__V1__SumResponse *out = (void *)response;
    if (out->count == 0) /* the stream's first message: ask to hear of a cancel */
        tw_call_on_cancel(call, sum_cancelled, NULL);
    return sum_message(call, message, response);
}

static tw_err sum_end(tw_call *call, ProtobufCMessage *response)
{
    atomic_fetch_add(&sums_completed, 1);
    return TW_OK;
}

static void count_cancelled(tw_call *call, void *ctx)
{
    atomic_fetch_add(&cancel_hooks_run, 1);
    tw_call_finish(call, TW_ERR_CANCELLED);
}

/* A paced Count: its state lives in the call's arena. */
struct paced {
    const Twtest__V1__CountRequest *request;
    Twtest__V1__CountResponse *response;
    int sent;
};

static atomic_int drains_run;

static void paced_cancelled(tw_call *call, void *ctx)
{
    atomic_fetch_add(&cancel_hooks_run, 1);
    tw_call_finish(call, TW_ERR_CANCELLED);
}

/* Queues the next two messages and asks to hear when they are out; the
 * stream never holds more than two. */
static void paced_send(tw_call *call, void *ctx)
{
    struct paced *p = ctx;
    atomic_fetch_add(&drains_run, 1);
    tw_err err = TW_OK;
    for (int i = 0; i < 2 && p->sent < p->request->count && err == TW_OK; i++) {
        p->response->index = ++p->sent;
        err = tw_call_send(call, &p->response->base);
    }
    if (err || p->sent == p->request->count)
        tw_call_finish(call, err);
    else
        tw_call_on_drain(call, paced_send, p);
}

static tw_err count(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Twtest__V1__CountRequest *in = (const void *)request;
    Twtest__V1__CountResponse *out = (void *)response;
    if (in->paced) {
        tw_arena *arena = tw_call_arena(call);
        struct paced *p = tw_arena_alloc(arena, sizeof *p);
        uint8_t *padding = tw_arena_alloc(arena, (size_t)in->padding + 1);
        memset(padding, 'p', (size_t)in->padding);
        out->padding = (ProtobufCBinaryData){(size_t)in->padding, padding};
        *p = (struct paced){in, out, 0};
        tw_call_on_cancel(call, paced_cancelled, NULL);
        /* Nothing is queued yet: the first drain runs at once. */
        tw_call_on_drain(call, paced_send, p);
        return TW_DEFERRED;
    }
    uint8_t *padding = calloc(1, (size_t)in->padding + 1);
    out->padding = (ProtobufCBinaryData){(size_t)in->padding, padding};
    tw_err err = TW_OK;
    for (int i = 1; i <= in->count && err == TW_OK; i++) {
        out->index = i;
        err = tw_call_send(call, response);
    }
    free(padding);
    if (err || !in->hold)
        return err;
    tw_call_on_cancel(call, count_cancelled, NULL);
    return TW_DEFERRED;
}

static tw_err chat_message(tw_call *call, const ProtobufCMessage *message,
                           ProtobufCMessage *response)
{
    const Twtest__V1__EchoRequest *in = (const void *)message;
    Twtest__V1__EchoResponse out = TWTEST__V1__ECHO_RESPONSE__INIT;
    out.text = in->text;
    return tw_call_send(call, &out.base);
}

static const tw_method test_methods[] = {
    {"Echo", TW_UNARY, TW_PUBLIC, .handle = echo},
    {"Guarded", TW_UNARY, 0, .handle = echo},
    {"Sum", TW_CLIENT_STREAM, TW_PUBLIC, .on_message = sum_first_message, .on_end = sum_end},
    {"Count", TW_SERVER_STREAM, TW_PUBLIC, .handle = count},
    {"Chat", TW_BIDI_STREAM, TW_PUBLIC, .on_message = chat_message, .on_end = sum_end},
    {NULL},
};

static const tw_service test_service = {
    .descriptor = &twtest__v1__engine_test_service__descriptor,
    .methods = test_methods,
};

/* The caller the test gate admits. */
static const tw_id test_user = {{0x01, 0x8f, [15] = 0x01}};

static tw_err test_gate(void *ctx, tw_call *call, const tw_method *method)
{
    const char *token = tw_call_metadata(call, "authorization");
    if (token == NULL)
        return TW_ERR_AUTH_MISSING_TOKEN;
    if (strcmp(token, "Bearer good") != 0)
        return TW_ERR_AUTH_INVALID_TOKEN;
    tw_call_set_caller(call, &test_user, NULL, "user");
    return TW_OK;
}

/* ---- fixture: one engine and one channel per test --------------------------- */

static tw_engine *engine;
static grpc_channel *channel;

static tw_engine_config test_config(void)
{
    return (tw_engine_config){
        .listen = "127.0.0.1:0",
        .workers = 2,
        .max_message_bytes = MAX_MESSAGE,
        .requests_per_method = 2,
        .max_stream_backlog = 1 << 20,
        .descriptor_set = engine_test_descriptor_set,
        .descriptor_set_size = engine_test_descriptor_set_size,
    };
}

static void start_engine(void)
{
    tw_engine_config cfg = test_config();
    char errbuf[256] = "";
    ck_assert_int_eq(tw_engine_new(&cfg, &engine), TW_OK);
    ck_assert_msg(tw_engine_add_service(engine, &test_service, errbuf, sizeof errbuf) == TW_OK,
                  "%s", errbuf);
    int port = 0;
    ck_assert_msg(tw_engine_start(engine, &port, errbuf, sizeof errbuf) == TW_OK, "%s", errbuf);
    ck_assert_int_gt(port, 0);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    channel = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
}

static void stop_engine(void)
{
    if (channel)
        grpc_channel_destroy(channel);
    channel = NULL;
    if (engine) {
        tw_engine_shutdown(engine, 1000);
        tw_engine_free(engine);
    }
    engine = NULL;
}

/* Decodes the google.rpc.Status of a failed call; NULL when absent. */
static Google__Rpc__Status *status_details(const rpc_result *r)
{
    return r->details ? google__rpc__status__unpack(NULL, r->details_len, r->details) : NULL;
}

static Google__Rpc__ErrorInfo *error_info(const Google__Rpc__Status *st)
{
    for (size_t i = 0; i < st->n_details; i++)
        if (strcmp(st->details[i]->type_url, "type.googleapis.com/google.rpc.ErrorInfo") == 0)
            return google__rpc__error_info__unpack(NULL, st->details[i]->value.len,
                                                   st->details[i]->value.data);
    return NULL;
}

static void echo_call(const Twtest__V1__EchoRequest *req, int timeout_ms,
                      const char *const *metadata, rpc_result *out)
{
    rpc_unary(channel, ECHO, &req->base, NULL, 0, timeout_ms, metadata, out);
}

/* ---- tests ------------------------------------------------------------------- */

START_TEST(unary_echo_with_request_id)
{
    Twtest__V1__EchoRequest req = TWTEST__V1__ECHO_REQUEST__INIT;
    req.text = "hello";
    rpc_result r;
    echo_call(&req, 5000, NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    ck_assert(r.has_response);
    Twtest__V1__EchoResponse *resp =
        twtest__v1__echo_response__unpack(NULL, r.response_len, r.response);
    ck_assert_str_eq(resp->text, "hello");
    ck_assert_str_eq(resp->request_id, r.request_id);
    ck_assert_uint_eq(strlen(r.request_id), 36); /* a UUID when the client sent none */
    twtest__v1__echo_response__free_unpacked(resp, NULL);
    rpc_result_free(&r);

    const char *md[] = {"x-request-id", "client-id-42", NULL};
    echo_call(&req, 5000, md, &r);
    ck_assert_str_eq(r.request_id, "client-id-42");
    rpc_result_free(&r);

    /* Ids with odd characters or over 64 bytes are replaced, not echoed
     * into logs and headers. */
    const char *odd[] = {"x-request-id", "id; drop table", NULL};
    echo_call(&req, 5000, odd, &r);
    ck_assert_uint_eq(strlen(r.request_id), 36);
    rpc_result_free(&r);
    char long_id[100];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    const char *too_long[] = {"x-request-id", long_id, NULL};
    echo_call(&req, 5000, too_long, &r);
    ck_assert_uint_eq(strlen(r.request_id), 36);
    rpc_result_free(&r);
}
END_TEST

START_TEST(errors_carry_google_rpc_status)
{
    Twtest__V1__EchoRequest req = TWTEST__V1__ECHO_REQUEST__INIT;
    req.fail_with = TW_ERR_NOT_FOUND;
    rpc_result r;
    echo_call(&req, 5000, NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_NOT_FOUND);
    ck_assert_str_eq(r.message, "failed as asked");
    Google__Rpc__Status *st = status_details(&r);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(st->code, GRPC_STATUS_NOT_FOUND);
    Google__Rpc__ErrorInfo *info = error_info(st);
    ck_assert_ptr_nonnull(info);
    ck_assert_str_eq(info->reason, "RES_001");
    ck_assert_str_eq(info->domain, "timeandwellness");
    ck_assert_uint_eq(info->n_metadata, 1);
    ck_assert_str_eq(info->metadata[0]->value, r.request_id);
    google__rpc__error_info__free_unpacked(info, NULL);
    google__rpc__status__free_unpacked(st, NULL);
    rpc_result_free(&r);

    req.fail_with = 0;
    req.bad_field = "title";
    echo_call(&req, 5000, NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_INVALID_ARGUMENT);
    st = status_details(&r);
    ck_assert_uint_eq(st->n_details, 2);
    ck_assert_str_eq(st->details[1]->type_url, "type.googleapis.com/google.rpc.BadRequest");
    Google__Rpc__BadRequest *bad = google__rpc__bad_request__unpack(NULL, st->details[1]->value.len,
                                                                    st->details[1]->value.data);
    ck_assert_uint_eq(bad->n_field_violations, 1);
    ck_assert_str_eq(bad->field_violations[0]->field, "title");
    ck_assert_str_eq(bad->field_violations[0]->description, "is not acceptable");
    google__rpc__bad_request__free_unpacked(bad, NULL);
    google__rpc__status__free_unpacked(st, NULL);
    rpc_result_free(&r);

    req.bad_field = "";
    req.fail_with = TW_ERR_RATE_LIMITED;
    req.retry_after_ms = 1500;
    echo_call(&req, 5000, NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    st = status_details(&r);
    ck_assert_uint_eq(st->n_details, 2);
    ck_assert_str_eq(st->details[1]->type_url, "type.googleapis.com/google.rpc.RetryInfo");
    Google__Rpc__RetryInfo *retry = google__rpc__retry_info__unpack(NULL, st->details[1]->value.len,
                                                                    st->details[1]->value.data);
    ck_assert_int_eq(retry->retry_delay->seconds, 1);
    ck_assert_int_eq(retry->retry_delay->nanos, 500000000);
    google__rpc__retry_info__free_unpacked(retry, NULL);
    google__rpc__status__free_unpacked(st, NULL);
    rpc_result_free(&r);
}
END_TEST

START_TEST(deferred_call_finishes_from_another_thread)
{
    Twtest__V1__EchoRequest req = TWTEST__V1__ECHO_REQUEST__INIT;
    req.text = "later";
    req.defer_ms = 50;
    rpc_result r;
    echo_call(&req, 5000, NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    ck_assert(r.has_response);
    rpc_result_free(&r);
}
END_TEST

START_TEST(deadline_passes_while_handler_works)
{
    atomic_store(&cancel_hooks_run, 0);
    Twtest__V1__EchoRequest req = TWTEST__V1__ECHO_REQUEST__INIT;
    req.defer_ms = 800;
    rpc_result r;
    echo_call(&req, 100, NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_DEADLINE_EXCEEDED);
    rpc_result_free(&r);
    /* The handler that went on hears of it. */
    for (int i = 0; i < 200 && atomic_load(&cancel_hooks_run) == 0; i++)
        usleep(10 * 1000);
    ck_assert_int_eq(atomic_load(&cancel_hooks_run), 1);
    /* The late finish must land on a live call: wait it out, then serve on. */
    usleep(900 * 1000);
    req.defer_ms = 0;
    echo_call(&req, 5000, NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    rpc_result_free(&r);
}
END_TEST

struct background_echo {
    int defer_ms;
    rpc_result result;
};

static void *echo_in_background(void *arg)
{
    struct background_echo *b = arg;
    Twtest__V1__EchoRequest req = TWTEST__V1__ECHO_REQUEST__INIT;
    req.defer_ms = b->defer_ms;
    echo_call(&req, 10000, NULL, &b->result);
    return NULL;
}

/* More calls of one method at once than the engine keeps requested: those
 * that find none waiting are queued, not refused or left to time out. */
START_TEST(a_burst_past_the_requested_calls_is_served)
{
    enum { BURST = 24 };
    struct background_echo calls[BURST];
    pthread_t threads[BURST];
    for (int i = 0; i < BURST; i++) {
        calls[i] = (struct background_echo){.defer_ms = 200};
        pthread_create(&threads[i], NULL, echo_in_background, &calls[i]);
    }
    for (int i = 0; i < BURST; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_int_eq(calls[i].result.status, GRPC_STATUS_OK);
        rpc_result_free(&calls[i].result);
    }
}
END_TEST

START_TEST(unknown_method_is_unimplemented)
{
    rpc_result r;
    rpc_unary(channel, "/twtest.v1.EngineTestService/Nope", NULL, (const uint8_t *)"", 0, 5000,
              NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_UNIMPLEMENTED);
    Google__Rpc__Status *st = status_details(&r);
    Google__Rpc__ErrorInfo *info = error_info(st);
    ck_assert_str_eq(info->reason, "RPC_001");
    google__rpc__error_info__free_unpacked(info, NULL);
    google__rpc__status__free_unpacked(st, NULL);
    rpc_result_free(&r);
}
END_TEST

START_TEST(garbage_and_oversized_requests_are_refused)
{
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
    rpc_result r;
    rpc_unary(channel, ECHO, NULL, garbage, sizeof garbage, 5000, NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(r.message, "twtest.v1.EchoRequest"));
    rpc_result_free(&r);

    char *big = malloc(MAX_MESSAGE + 1);
    memset(big, 'x', MAX_MESSAGE);
    big[MAX_MESSAGE] = '\0';
    Twtest__V1__EchoRequest req = TWTEST__V1__ECHO_REQUEST__INIT;
    req.text = big;
    echo_call(&req, 5000, NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    rpc_result_free(&r);
    free(big);

    /* EchoRequest.text = the bytes C3 28: not UTF-8. */
    static const uint8_t bad_utf8[] = {0x0a, 0x02, 0xc3, 0x28};
    rpc_unary(channel, ECHO, NULL, bad_utf8, sizeof bad_utf8, 5000, NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_INVALID_ARGUMENT);
    ck_assert_str_eq(r.message, "text: is not valid UTF-8");
    rpc_result_free(&r);

    req.text = "still serving";
    echo_call(&req, 5000, NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    rpc_result_free(&r);
}
END_TEST

START_TEST(guarded_method_needs_the_gate)
{
    Twtest__V1__EchoRequest req = TWTEST__V1__ECHO_REQUEST__INIT;
    rpc_result r;
    rpc_unary(channel, "/twtest.v1.EngineTestService/Guarded", &req.base, NULL, 0, 5000, NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_UNAUTHENTICATED);
    rpc_result_free(&r);
}
END_TEST

START_TEST(gate_admits_and_names_the_caller)
{
    stop_engine();
    tw_engine_config cfg = test_config();
    char errbuf[256];
    int port;
    ck_assert_int_eq(tw_engine_new(&cfg, &engine), TW_OK);
    ck_assert_int_eq(tw_engine_add_service(engine, &test_service, errbuf, sizeof errbuf), TW_OK);
    tw_engine_set_gate(engine, test_gate, NULL);
    ck_assert_int_eq(tw_engine_start(engine, &port, errbuf, sizeof errbuf), TW_OK);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    channel = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);

    Twtest__V1__EchoRequest req = TWTEST__V1__ECHO_REQUEST__INIT;
    const char *good[] = {"authorization", "Bearer good", NULL};
    const char *wrong[] = {"authorization", "Bearer forged", NULL};
    rpc_result r;
    rpc_unary(channel, "/twtest.v1.EngineTestService/Guarded", &req.base, NULL, 0, 5000, good, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    Twtest__V1__EchoResponse *resp =
        twtest__v1__echo_response__unpack(NULL, r.response_len, r.response);
    char expected[TW_ID_TEXT_SIZE];
    tw_id_format(&test_user, expected);
    ck_assert_str_eq(resp->user_id, expected);
    twtest__v1__echo_response__free_unpacked(resp, NULL);
    rpc_result_free(&r);

    rpc_unary(channel, "/twtest.v1.EngineTestService/Guarded", &req.base, NULL, 0, 5000, wrong, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_UNAUTHENTICATED);
    Google__Rpc__Status *st = status_details(&r);
    Google__Rpc__ErrorInfo *info = error_info(st);
    ck_assert_str_eq(info->reason, "AUTH_001");
    google__rpc__error_info__free_unpacked(info, NULL);
    google__rpc__status__free_unpacked(st, NULL);
    rpc_result_free(&r);
}
END_TEST

/* Ends a Sum stream's sending and checks its answer. */
static void close_and_check_sum(rpc_stream *s, int64_t total, int count)
{
    ck_assert(rpc_stream_close_send(s));
    rpc_result r;
    rpc_stream_finish(s, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    Twtest__V1__SumResponse *resp =
        twtest__v1__sum_response__unpack(NULL, r.response_len, r.response);
    ck_assert_int_eq(resp->total, total);
    ck_assert_int_eq(resp->count, count);
    twtest__v1__sum_response__free_unpacked(resp, NULL);
    rpc_result_free(&r);
}

START_TEST(client_stream_is_consumed_message_by_message)
{
    rpc_stream *s = rpc_stream_open(channel, "/twtest.v1.EngineTestService/Sum", 10000);
    for (int i = 1; i <= 200; i++) {
        Twtest__V1__SumRequest req = TWTEST__V1__SUM_REQUEST__INIT;
        req.value = i;
        ck_assert(rpc_stream_send(s, &req.base));
    }
    close_and_check_sum(s, 200 * 201 / 2, 200);
}
END_TEST

START_TEST(client_stream_error_ends_the_call)
{
    rpc_stream *s = rpc_stream_open(channel, "/twtest.v1.EngineTestService/Sum", 10000);
    Twtest__V1__SumRequest req = TWTEST__V1__SUM_REQUEST__INIT;
    req.value = 5;
    rpc_stream_send(s, &req.base);
    req.value = -1;
    rpc_stream_send(s, &req.base);
    rpc_result r;
    rpc_stream_finish(s, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_INVALID_ARGUMENT);
    ck_assert_str_eq(r.message, "value: must not be negative");
    ck_assert(!r.has_response);
    rpc_result_free(&r);
}
END_TEST

/* A cancelled upload must never look complete: on_end does not run, the
 * cancel hook does, and the engine releases the call. */
static void assert_stream_broken_without_end(rpc_stream *s, grpc_status_code expected)
{
    rpc_result r;
    rpc_stream_finish(s, &r);
    ck_assert_int_eq(r.status, expected);
    rpc_result_free(&r);
    for (int i = 0; i < 200 && atomic_load(&cancel_hooks_run) == 0; i++)
        usleep(10 * 1000);
    ck_assert_int_eq(atomic_load(&cancel_hooks_run), 1);
    ck_assert_int_eq(atomic_load(&sums_completed), 0);
}

START_TEST(cancelled_client_stream_never_ends_normally)
{
    atomic_store(&cancel_hooks_run, 0);
    atomic_store(&sums_completed, 0);
    rpc_stream *s = rpc_stream_open(channel, "/twtest.v1.EngineTestService/Sum", 10000);
    Twtest__V1__SumRequest req = TWTEST__V1__SUM_REQUEST__INIT;
    req.value = 1;
    atomic_store(&sum_messages_seen, 0);
    ck_assert(rpc_stream_send(s, &req.base));
    ck_assert(rpc_stream_send(s, &req.base));
    /* A send completes when it is written, not when the server has read it:
     * cancel only once the handler has seen both (and set its hook). */
    for (int i = 0; i < 500 && atomic_load(&sum_messages_seen) < 2; i++)
        usleep(2000);
    ck_assert_int_eq(atomic_load(&sum_messages_seen), 2);
    rpc_stream_cancel(s);
    assert_stream_broken_without_end(s, GRPC_STATUS_CANCELLED);
}
END_TEST

START_TEST(oversized_stream_message_breaks_the_stream)
{
    atomic_store(&cancel_hooks_run, 0);
    atomic_store(&sums_completed, 0);
    rpc_stream *s = rpc_stream_open(channel, "/twtest.v1.EngineTestService/Sum", 10000);
    Twtest__V1__SumRequest req = TWTEST__V1__SUM_REQUEST__INIT;
    req.value = 1;
    atomic_store(&sum_messages_seen, 0);
    ck_assert(rpc_stream_send(s, &req.base));
    for (int i = 0; i < 500 && atomic_load(&sum_messages_seen) < 1; i++)
        usleep(2000);
    /* A SumRequest cannot be large; send an EchoRequest's bytes on the same
     * path, which fails on size before it could fail on type. */
    char *big = malloc(MAX_MESSAGE + 1);
    memset(big, 'x', MAX_MESSAGE);
    big[MAX_MESSAGE] = '\0';
    Twtest__V1__EchoRequest huge = TWTEST__V1__ECHO_REQUEST__INIT;
    huge.text = big;
    rpc_stream_send(s, &huge.base);
    free(big);
    assert_stream_broken_without_end(s, GRPC_STATUS_RESOURCE_EXHAUSTED);
}
END_TEST

START_TEST(server_stream_sends_in_order)
{
    Twtest__V1__CountRequest req = TWTEST__V1__COUNT_REQUEST__INIT;
    req.count = 50;
    rpc_stream *s = rpc_stream_open(channel, "/twtest.v1.EngineTestService/Count", 10000);
    ck_assert(rpc_stream_send(s, &req.base));
    ck_assert(rpc_stream_close_send(s));
    for (int i = 1; i <= 50; i++) {
        Twtest__V1__CountResponse *m =
            (void *)rpc_stream_recv(s, &twtest__v1__count_response__descriptor);
        ck_assert_ptr_nonnull(m);
        ck_assert_int_eq(m->index, i);
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    ck_assert_ptr_null(rpc_stream_recv(s, &twtest__v1__count_response__descriptor));
    rpc_result r;
    rpc_stream_finish(s, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    rpc_result_free(&r);
}
END_TEST

/* Receives n answers of a Count stream, cancels it, and waits (bounded)
 * for the handler's cancel hook. */
static void recv_then_cancel(rpc_stream *s, int n)
{
    for (int i = 0; i < n; i++) {
        ProtobufCMessage *m = rpc_stream_recv(s, &twtest__v1__count_response__descriptor);
        ck_assert_ptr_nonnull(m);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    rpc_stream_cancel(s);
    rpc_result r;
    rpc_stream_finish(s, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_CANCELLED);
    rpc_result_free(&r);
    for (int i = 0; i < 200 && atomic_load(&cancel_hooks_run) == 0; i++)
        usleep(10 * 1000);
    ck_assert_int_eq(atomic_load(&cancel_hooks_run), 1);
}

START_TEST(cancel_mid_stream_reaches_the_handler)
{
    atomic_store(&cancel_hooks_run, 0);
    Twtest__V1__CountRequest req = TWTEST__V1__COUNT_REQUEST__INIT;
    req.count = 2;
    req.hold = true;
    rpc_stream *s = rpc_stream_open(channel, "/twtest.v1.EngineTestService/Count", 10000);
    rpc_stream_send(s, &req.base);
    recv_then_cancel(s, 2);
}
END_TEST

START_TEST(slow_reader_gets_resource_exhausted)
{
    Twtest__V1__CountRequest req = TWTEST__V1__COUNT_REQUEST__INIT;
    req.count = 200; /* 200 x 32 KiB = 6.4 MiB, over the 1 MiB backlog */
    req.padding = 32 << 10;
    rpc_stream *s = rpc_stream_open(channel, "/twtest.v1.EngineTestService/Count", 20000);
    rpc_stream_send(s, &req.base);
    rpc_stream_close_send(s);
    int received = 0;
    ProtobufCMessage *m;
    while ((m = rpc_stream_recv(s, &twtest__v1__count_response__descriptor)) != NULL) {
        received++;
        protobuf_c_message_free_unpacked(m, NULL);
    }
    rpc_result r;
    rpc_stream_finish(s, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    ck_assert_int_lt(received, 200);
    ck_assert_int_gt(received, 0);
    rpc_result_free(&r);
}
END_TEST

START_TEST(client_stream_handler_may_answer_early)
{
    atomic_store(&sums_completed, 0);
    rpc_stream *s = rpc_stream_open(channel, "/twtest.v1.EngineTestService/Sum", 10000);
    int64_t values[] = {1, 2, SUM_NOW};
    for (size_t i = 0; i < 3; i++) {
        Twtest__V1__SumRequest req = TWTEST__V1__SUM_REQUEST__INIT;
        req.value = values[i];
        ck_assert(rpc_stream_send(s, &req.base));
    }
    /* The client is not done, yet the answer comes, and on_end never runs. */
    rpc_result r;
    rpc_stream_finish(s, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    ck_assert(r.has_response);
    Twtest__V1__SumResponse *resp =
        twtest__v1__sum_response__unpack(NULL, r.response_len, r.response);
    ck_assert_int_eq(resp->total, 3);
    ck_assert_int_eq(resp->count, 2);
    twtest__v1__sum_response__free_unpacked(resp, NULL);
    rpc_result_free(&r);
    ck_assert_int_eq(atomic_load(&sums_completed), 0);
}
END_TEST

/* A handler that hands each message to another thread reads the next one
 * only when that thread is done: the stream is paced by the work. */
START_TEST(client_stream_reads_on_when_the_handler_says)
{
    atomic_store(&sums_deferred, 0);
    atomic_store(&sums_completed, 0);
    rpc_stream *s = rpc_stream_open(channel, "/twtest.v1.EngineTestService/Sum", 10000);
    for (int i = 1; i <= 50; i++) {
        Twtest__V1__SumRequest req = TWTEST__V1__SUM_REQUEST__INIT;
        req.value = i % 2 ? SUM_LATER + i : i; /* deferred and direct, mixed */
        ck_assert(rpc_stream_send(s, &req.base));
    }
    close_and_check_sum(s, 50 * 51 / 2, 50);
    ck_assert_int_eq(atomic_load(&sums_deferred), 25);
    ck_assert_int_eq(atomic_load(&sums_completed), 1);
}
END_TEST

/* Cancelled while the handler holds the stream: the hook runs, the
 * handler's read_next ends the call, and on_end never runs. */
START_TEST(client_stream_cancelled_while_deferred)
{
    atomic_store(&cancel_hooks_run, 0);
    atomic_store(&sums_completed, 0);
    atomic_store(&sums_deferred, 0);
    rpc_stream *s = rpc_stream_open(channel, "/twtest.v1.EngineTestService/Sum", 10000);
    Twtest__V1__SumRequest req = TWTEST__V1__SUM_REQUEST__INIT;
    req.value = 1;
    ck_assert(rpc_stream_send(s, &req.base)); /* sets the cancel hook */
    for (int i = 0; i < 20; i++) {
        req.value = SUM_LATER + 1;
        ck_assert(rpc_stream_send(s, &req.base));
    }
    for (int i = 0; i < 500 && atomic_load(&sums_deferred) < 3; i++)
        usleep(2000);
    rpc_stream_cancel(s);
    assert_stream_broken_without_end(s, GRPC_STATUS_CANCELLED);
}
END_TEST

/* The stream that overflows the backlog unpaced (slow_reader test) goes
 * through whole when paced with tw_call_on_drain. */
START_TEST(drain_paces_a_server_stream_past_the_backlog)
{
    atomic_store(&drains_run, 0);
    Twtest__V1__CountRequest req = TWTEST__V1__COUNT_REQUEST__INIT;
    req.count = 200; /* 200 x 32 KiB = 6.4 MiB, over the 1 MiB backlog */
    req.padding = 32 << 10;
    req.paced = true;
    rpc_stream *s = rpc_stream_open(channel, "/twtest.v1.EngineTestService/Count", 20000);
    rpc_stream_send(s, &req.base);
    rpc_stream_close_send(s);
    int received = 0;
    Twtest__V1__CountResponse *m;
    while ((m = (void *)rpc_stream_recv(s, &twtest__v1__count_response__descriptor)) != NULL) {
        ck_assert_int_eq(m->index, ++received);
        ck_assert_uint_eq(m->padding.len, 32 << 10);
        /* A slow reader: the server must wait for it, not give up. */
        if (received % 50 == 0)
            usleep(100 * 1000);
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    rpc_result r;
    rpc_stream_finish(s, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    ck_assert_int_eq(received, 200);
    ck_assert_int_eq(atomic_load(&drains_run), 100);
    rpc_result_free(&r);
}
END_TEST

START_TEST(drain_stops_when_the_client_cancels)
{
    atomic_store(&cancel_hooks_run, 0);
    atomic_store(&drains_run, 0);
    Twtest__V1__CountRequest req = TWTEST__V1__COUNT_REQUEST__INIT;
    req.count = 100000;
    req.padding = 16 << 10;
    req.paced = true;
    rpc_stream *s = rpc_stream_open(channel, "/twtest.v1.EngineTestService/Count", 20000);
    rpc_stream_send(s, &req.base);
    recv_then_cancel(s, 10);
    /* Far fewer drains than the 50000 the whole stream would take. */
    ck_assert_int_lt(atomic_load(&drains_run), 1000);
}
END_TEST

START_TEST(bidi_stream_answers_each_message)
{
    rpc_stream *s = rpc_stream_open(channel, "/twtest.v1.EngineTestService/Chat", 10000);
    const char *words[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        Twtest__V1__EchoRequest req = TWTEST__V1__ECHO_REQUEST__INIT;
        req.text = (char *)words[i];
        ck_assert(rpc_stream_send(s, &req.base));
        Twtest__V1__EchoResponse *m =
            (void *)rpc_stream_recv(s, &twtest__v1__echo_response__descriptor);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(m->text, words[i]);
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    rpc_stream_close_send(s);
    ck_assert_ptr_null(rpc_stream_recv(s, &twtest__v1__echo_response__descriptor));
    rpc_result r;
    rpc_stream_finish(s, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    rpc_result_free(&r);
}
END_TEST

START_TEST(shutdown_lets_calls_in_flight_finish)
{
    struct background_echo b = {.defer_ms = 300};
    int before = atomic_load(&echoes_deferred);
    pthread_t t;
    pthread_create(&t, NULL, echo_in_background, &b);
    /* Shut down only once the call is in its handler (at most 10 s). */
    for (int ms = 0; atomic_load(&echoes_deferred) == before && ms < 10000; ms++)
        usleep(1000);
    ck_assert_int_gt(atomic_load(&echoes_deferred), before);
    tw_engine_shutdown(engine, 3000);
    pthread_join(t, NULL);
    ck_assert_int_eq(b.result.status, GRPC_STATUS_OK);
    rpc_result_free(&b.result);
}
END_TEST

START_TEST(shutdown_cancels_calls_past_the_grace_period)
{
    atomic_store(&cancel_hooks_run, 0);
    Twtest__V1__CountRequest req = TWTEST__V1__COUNT_REQUEST__INIT;
    req.count = 1;
    req.hold = true;
    rpc_stream *s = rpc_stream_open(channel, "/twtest.v1.EngineTestService/Count", 20000);
    rpc_stream_send(s, &req.base);
    ProtobufCMessage *m = rpc_stream_recv(s, &twtest__v1__count_response__descriptor);
    ck_assert_ptr_nonnull(m);
    protobuf_c_message_free_unpacked(m, NULL);

    tw_engine_shutdown(engine, 200);
    ck_assert_int_eq(atomic_load(&cancel_hooks_run), 1);
    rpc_result r;
    rpc_stream_finish(s, &r);
    ck_assert_int_ne(r.status, GRPC_STATUS_OK);
    rpc_result_free(&r);
}
END_TEST

/* Tables that disagree with the .proto are refused at registration. */
static void assert_refused(const tw_method *methods, const char *expected)
{
    tw_service wrong = {.descriptor = &twtest__v1__engine_test_service__descriptor,
                        .methods = methods};
    tw_engine_config cfg = test_config();
    tw_engine *e;
    char errbuf[256] = "";
    ck_assert_int_eq(tw_engine_new(&cfg, &e), TW_OK);
    ck_assert_int_ne(tw_engine_add_service(e, &wrong, errbuf, sizeof errbuf), TW_OK);
    ck_assert_msg(strstr(errbuf, expected) != NULL, "got \"%s\"", errbuf);
    tw_engine_free(e);
}

START_TEST(method_table_drift_is_refused)
{
    const tw_method wrong_kind[] = {
        {"Echo", TW_SERVER_STREAM, TW_PUBLIC, .handle = echo},
        {NULL},
    };
    assert_refused(wrong_kind, "Echo is unary in the .proto but server streaming");
    const tw_method missing[] = {
        {"Echo", TW_UNARY, TW_PUBLIC, .handle = echo},
        {"Guarded", TW_UNARY, 0, .handle = echo},
        {"Sum", TW_CLIENT_STREAM, TW_PUBLIC, .on_message = sum_message, .on_end = sum_end},
        {"Count", TW_SERVER_STREAM, TW_PUBLIC, .handle = count},
        {NULL},
    };
    assert_refused(missing, "Chat is in the .proto but has no row");
    const tw_method unknown[] = {
        {"Nope", TW_UNARY, TW_PUBLIC, .handle = echo},
        {NULL},
    };
    assert_refused(unknown, "Nope is in the method table but not in the .proto");
    const tw_method no_handler[] = {
        {"Sum", TW_CLIENT_STREAM, TW_PUBLIC, .handle = echo},
        {NULL},
    };
    assert_refused(no_handler, "Sum has no handler");
}
END_TEST

START_TEST(taken_port_is_a_start_error)
{
    tw_engine_config cfg = test_config();
    tw_engine *first, *second;
    char errbuf[256] = "";
    int port = 0, port2 = 0;
    ck_assert_int_eq(tw_engine_new(&cfg, &first), TW_OK);
    ck_assert_int_eq(tw_engine_start(first, &port, errbuf, sizeof errbuf), TW_OK);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    cfg.listen = listen;
    ck_assert_int_eq(tw_engine_new(&cfg, &second), TW_OK);
    ck_assert_int_ne(tw_engine_start(second, &port2, errbuf, sizeof errbuf), TW_OK);
    ck_assert_msg(strstr(errbuf, "Address already in use") != NULL, "got \"%s\"", errbuf);
    tw_engine_free(second);
    tw_engine_shutdown(first, 0);
    tw_engine_free(first);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *calls = tcase_create("calls");
    tcase_add_checked_fixture(calls, start_engine, stop_engine);
    tcase_set_timeout(calls, 60);
    tcase_add_test(calls, unary_echo_with_request_id);
    tcase_add_test(calls, errors_carry_google_rpc_status);
    tcase_add_test(calls, deferred_call_finishes_from_another_thread);
    tcase_add_test(calls, deadline_passes_while_handler_works);
    tcase_add_test(calls, a_burst_past_the_requested_calls_is_served);
    tcase_add_test(calls, unknown_method_is_unimplemented);
    tcase_add_test(calls, garbage_and_oversized_requests_are_refused);
    tcase_add_test(calls, guarded_method_needs_the_gate);
    tcase_add_test(calls, gate_admits_and_names_the_caller);
    tcase_add_test(calls, client_stream_is_consumed_message_by_message);
    tcase_add_test(calls, client_stream_error_ends_the_call);
    tcase_add_test(calls, cancelled_client_stream_never_ends_normally);
    tcase_add_test(calls, oversized_stream_message_breaks_the_stream);
    tcase_add_test(calls, server_stream_sends_in_order);
    tcase_add_test(calls, cancel_mid_stream_reaches_the_handler);
    tcase_add_test(calls, slow_reader_gets_resource_exhausted);
    tcase_add_test(calls, client_stream_handler_may_answer_early);
    tcase_add_test(calls, client_stream_reads_on_when_the_handler_says);
    tcase_add_test(calls, client_stream_cancelled_while_deferred);
    tcase_add_test(calls, drain_paces_a_server_stream_past_the_backlog);
    tcase_add_test(calls, drain_stops_when_the_client_cancels);
    tcase_add_test(calls, bidi_stream_answers_each_message);
    tcase_add_test(calls, shutdown_lets_calls_in_flight_finish);
    tcase_add_test(calls, shutdown_cancels_calls_past_the_grace_period);
    suite_add_tcase(s, calls);

    TCase *setup = tcase_create("setup");
    tcase_add_test(setup, method_table_drift_is_refused);
    tcase_add_test(setup, taken_port_is_a_start_error);
    suite_add_tcase(s, setup);
    return s;
}
