/*
 * Unit tests for clients/http.c against fake_vendor.py on loopback: bodies
 * and headers both ways, streamed uploads (sized and chunked) and their
 * rewinding on retries, which failures are retried and which are not,
 * Retry-After, timeouts, the response cap, sinks, cancelling, and many
 * threads at once.
 */
#include "http.h"
#include "sigv4.h"
#include "vendor_fixture.h"

#include "tw_check.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static fx_server fake;

static void setup(void)
{
    fx_fake_vendor_start(&fake, "deepgram", "test-key");
}

static void teardown(void)
{
    fx_server_stop(&fake);
}

/* Fast retries for tests. */
static const tw_http_policy quick = {
    .connect_timeout_ms = 2000,
    .timeout_ms = 5000,
    .max_attempts = 3,
    .backoff_base_ms = 1,
    .backoff_max_ms = 5,
};

static void url_of(char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "%s%s", fake.base_url, path);
}

static json_t *request_n(json_t *list, size_t i)
{
    json_t *r = json_array_get(list, i);
    ck_assert_ptr_nonnull(r);
    return r;
}

START_TEST(backoff_is_full_jitter_under_a_cap)
{
    tw_http_policy p =
        tw_http_policy_resolve(&(tw_http_policy){.backoff_base_ms = 100, .backoff_max_ms = 1000});
    ck_assert_int_eq(tw_http_backoff_ms(&p, 1, 0.0), 0);
    ck_assert_int_eq(tw_http_backoff_ms(&p, 1, 0.5), 50);
    ck_assert_int_le(tw_http_backoff_ms(&p, 1, 0.9999), 100);
    ck_assert_int_eq(tw_http_backoff_ms(&p, 3, 0.5), 200);
    ck_assert_int_le(tw_http_backoff_ms(&p, 3, 0.9999), 400);
    ck_assert_int_le(tw_http_backoff_ms(&p, 30, 0.9999), 1000);
    ck_assert_int_ge(tw_http_backoff_ms(&p, 30, 0.9999), 999);
    /* Defaults fill zero fields. */
    tw_http_policy d = tw_http_policy_resolve(NULL);
    ck_assert_int_eq(d.max_attempts, 3);
    ck_assert_int_gt(d.timeout_ms, 0);
    ck_assert_int_gt(d.connect_timeout_ms, 0);
}
END_TEST

START_TEST(retry_after_in_seconds_or_as_a_date)
{
    int64_t now = 1445412470; /* 2015-10-21T07:27:50Z */
    ck_assert_int_eq(tw_http_parse_retry_after("3", now), 3000);
    ck_assert_int_eq(tw_http_parse_retry_after(" 0 ", now), 0);
    ck_assert_int_eq(tw_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), 10000);
    ck_assert_int_eq(tw_http_parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), 0);
    ck_assert_int_eq(tw_http_parse_retry_after("soon", now), -1);
    ck_assert_int_eq(tw_http_parse_retry_after("-1", now), -1);
    ck_assert_int_eq(tw_http_parse_retry_after("5x", now), -1);
}
END_TEST

START_TEST(a_get_brings_back_body_and_headers)
{
    fx_fake_script(&fake, "[{\"status\": 200, \"headers\": {\"X-Thing\": \" yes \"}, "
                          "\"body\": \"hello\"}]");
    char url[128];
    url_of(url, sizeof url, "/any/path?a=1");
    const char *headers[] = {"X-Test: 1"};
    tw_http_request req = {.service = "test",
                           .method = "GET",
                           .url = url,
                           .headers = headers,
                           .n_headers = 1,
                           .retry_safe = true};
    tw_http_response resp;
    tw_upstream_error uerr;
    ck_assert_int_eq(tw_http_perform(&req, &quick, &resp, &uerr), TW_OK);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.body, "hello");
    ck_assert_uint_eq(resp.body_len, 5);
    char value[32];
    ck_assert(tw_http_response_header(&resp, "x-thing", value, sizeof value));
    ck_assert_str_eq(value, "yes");
    ck_assert(!tw_http_response_header(&resp, "x-missing", value, sizeof value));
    ck_assert_str_eq(value, "");
    ck_assert_int_eq(uerr.attempts, 1);
    tw_http_response_free(&resp);

    json_t *got = fx_fake_requests(&fake);
    ck_assert_uint_eq(json_array_size(got), 1);
    json_t *r = request_n(got, 0);
    ck_assert_str_eq(json_string_value(json_object_get(r, "path")), "/any/path");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "headers"), "x-test")),
                     "1");
    json_decref(got);
}
END_TEST

/* A body of `size` pattern bytes handed out in small, uneven pieces. */
struct pattern {
    size_t size, at;
    int rewinds;
    tw_err fail_with; /* returned once the body is half read */
};

static unsigned char pattern_byte(size_t i)
{
    return (unsigned char)((i * 7919) >> 3);
}

static tw_err pattern_read(void *ctx, void *buf, size_t cap, size_t *n)
{
    struct pattern *p = ctx;
    if (p->fail_with && p->at >= p->size / 2)
        return p->fail_with;
    size_t take = p->size - p->at;
    if (take > cap)
        take = cap;
    if (take > 7001)
        take = 7001;
    for (size_t i = 0; i < take; i++)
        ((unsigned char *)buf)[i] = pattern_byte(p->at + i);
    p->at += take;
    *n = take;
    return TW_OK;
}

static tw_err pattern_rewind(void *ctx)
{
    struct pattern *p = ctx;
    p->at = 0;
    p->rewinds++;
    return TW_OK;
}

static void pattern_sha256(size_t size, char out[65])
{
    unsigned char *all = malloc(size);
    for (size_t i = 0; i < size; i++)
        all[i] = pattern_byte(i);
    tw_sigv4_sha256_hex(all, size, out);
    free(all);
}

START_TEST(a_streamed_body_arrives_whole_sized_or_chunked)
{
    char url[128], sha[65];
    url_of(url, sizeof url, "/upload");
    size_t size = (1u << 20) + 13;
    pattern_sha256(size, sha);
    for (int chunked = 0; chunked < 2; chunked++) {
        fx_fake_script(&fake, "[{\"status\": 200}]");
        struct pattern p = {.size = size};
        tw_http_request req = {.service = "test",
                               .method = chunked ? "POST" : "PUT",
                               .url = url,
                               .read = pattern_read,
                               .rewind = pattern_rewind,
                               .read_ctx = &p,
                               .read_size = chunked ? -1 : (int64_t)size,
                               .retry_safe = true};
        tw_http_response resp;
        ck_assert_int_eq(tw_http_perform(&req, &quick, &resp, NULL), TW_OK);
        tw_http_response_free(&resp);
        json_t *got = fx_fake_requests(&fake);
        json_t *r = request_n(got, (size_t)chunked);
        ck_assert_int_eq(json_integer_value(json_object_get(r, "body_len")), (json_int_t)size);
        ck_assert_str_eq(json_string_value(json_object_get(r, "body_sha256")), sha);
        ck_assert(json_is_true(json_object_get(r, "chunked")) == (chunked == 1));
        json_decref(got);
    }
}
END_TEST

START_TEST(safe_calls_are_retried_on_5xx_with_the_body_sent_again)
{
    fx_fake_script(&fake, "[{\"status\": 500, \"body_file\": \"error-500.json\"}, "
                          "{\"status\": 503}, {\"status\": 200, \"body\": \"ok\"}]");
    char url[128], sha[65];
    url_of(url, sizeof url, "/retry");
    size_t size = 100000;
    pattern_sha256(size, sha);
    struct pattern p = {.size = size};
    tw_http_request req = {.service = "test",
                           .method = "PUT",
                           .url = url,
                           .read = pattern_read,
                           .rewind = pattern_rewind,
                           .read_ctx = &p,
                           .read_size = (int64_t)size,
                           .retry_safe = true};
    tw_http_response resp;
    tw_upstream_error uerr;
    ck_assert_int_eq(tw_http_perform(&req, &quick, &resp, &uerr), TW_OK);
    ck_assert_str_eq(resp.body, "ok");
    ck_assert_int_eq(uerr.attempts, 3);
    ck_assert_int_eq(p.rewinds, 2);
    tw_http_response_free(&resp);
    json_t *got = fx_fake_requests(&fake);
    ck_assert_uint_eq(json_array_size(got), 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_str_eq(json_string_value(json_object_get(request_n(got, i), "body_sha256")), sha);
    json_decref(got);

    /* Three failures in a row: the last answer comes back with the error. */
    fx_fake_script(&fake, "[{\"status\": 502}, {\"status\": 500}, "
                          "{\"status\": 500, \"body_file\": \"error-500.json\"}]");
    tw_http_request get = {.service = "test", .method = "GET", .url = url, .retry_safe = true};
    ck_assert_int_eq(tw_http_perform(&get, &quick, &resp, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(resp.status, 500);
    ck_assert_ptr_nonnull(strstr(resp.body, "INTERNAL_SERVER_ERROR"));
    ck_assert_int_eq(uerr.status, 500);
    ck_assert_int_eq(uerr.attempts, 3);
    ck_assert(uerr.retryable);
    ck_assert_ptr_nonnull(strstr(uerr.reason, "HTTP 500"));
    tw_http_response_free(&resp);
}
END_TEST

START_TEST(unsafe_calls_and_final_answers_are_not_retried)
{
    char url[128];
    url_of(url, sizeof url, "/once");
    fx_fake_script(&fake, "[{\"status\": 500}, {\"status\": 200}]");
    tw_http_request post = {
        .service = "test", .method = "POST", .url = url, .body = "x", .body_len = 1};
    tw_http_response resp;
    tw_upstream_error uerr;
    ck_assert_int_eq(tw_http_perform(&post, &quick, &resp, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(uerr.attempts, 1);
    ck_assert(uerr.retryable);
    tw_http_response_free(&resp);
    fx_fake_reset(&fake);

    fx_fake_script(&fake, "[{\"status\": 403}, {\"status\": 200}]");
    tw_http_request get = {.service = "test", .method = "GET", .url = url, .retry_safe = true};
    ck_assert_int_eq(tw_http_perform(&get, &quick, &resp, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(resp.status, 403);
    ck_assert_int_eq(uerr.attempts, 1);
    ck_assert(!uerr.retryable);
    tw_http_response_free(&resp);
    json_t *got = fx_fake_requests(&fake);
    ck_assert_uint_eq(json_array_size(got), 1);
    json_decref(got);
}
END_TEST

START_TEST(a_retry_hint_header_overrides_the_status)
{
    char url[128];
    url_of(url, sizeof url, "/hinted");
    /* "true" makes a 409 (final by its status) worth another attempt... */
    fx_fake_script(&fake, "[{\"status\": 409, \"headers\": {\"Stripe-Should-Retry\": \"true\"}}, "
                          "{\"status\": 200, \"body\": \"ok\"}]");
    tw_http_request req = {.service = "test",
                           .method = "POST",
                           .url = url,
                           .body = "a=1",
                           .body_len = 3,
                           .retry_safe = true,
                           .retry_hint_header = "Stripe-Should-Retry"};
    tw_http_response resp;
    tw_upstream_error uerr;
    ck_assert_int_eq(tw_http_perform(&req, &quick, &resp, &uerr), TW_OK);
    ck_assert_int_eq(uerr.attempts, 2);
    tw_http_response_free(&resp);

    /* ... and "false" makes a 500 (transient by its status) final. */
    fx_fake_script(&fake, "[{\"status\": 500, \"headers\": {\"stripe-should-retry\": \"false\"}}, "
                          "{\"status\": 200}]");
    ck_assert_int_eq(tw_http_perform(&req, &quick, &resp, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(uerr.attempts, 1);
    ck_assert_int_eq(uerr.status, 500);
    ck_assert(!uerr.retryable);
    tw_http_response_free(&resp);

    /* Without the header configured, it is only a header. */
    fx_fake_reset(&fake);
    fx_fake_script(&fake, "[{\"status\": 409, \"headers\": {\"Stripe-Should-Retry\": \"true\"}}, "
                          "{\"status\": 200}]");
    req.retry_hint_header = NULL;
    ck_assert_int_eq(tw_http_perform(&req, &quick, &resp, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(uerr.attempts, 1);
    tw_http_response_free(&resp);
}
END_TEST

START_TEST(a_refused_connection_is_retried_even_when_unsafe)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", fx_closed_port());
    tw_http_request post = {
        .service = "test", .method = "POST", .url = url, .body = "x", .body_len = 1};
    tw_http_response resp;
    tw_upstream_error uerr;
    ck_assert_int_eq(tw_http_perform(&post, &quick, &resp, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(uerr.attempts, 3);
    ck_assert_int_eq(uerr.status, 0);
    ck_assert(uerr.retryable);
    ck_assert_ptr_nonnull(strstr(uerr.reason, "could not connect"));
    ck_assert_ptr_nonnull(strstr(uerr.reason, "test POST 127.0.0.1"));
    tw_http_response_free(&resp);
}
END_TEST

static long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(retry_after_is_waited_for_or_ends_the_retries)
{
    char url[128];
    url_of(url, sizeof url, "/limited");
    fx_fake_script(&fake, "[{\"status\": 429, \"headers\": {\"Retry-After\": \"1\"}, "
                          "\"body_file\": \"error-429.json\"}, {\"status\": 200}]");
    tw_http_request get = {.service = "test", .method = "GET", .url = url, .retry_safe = true};
    tw_http_response resp;
    tw_upstream_error uerr;
    long start = mono_ms();
    ck_assert_int_eq(tw_http_perform(&get, &quick, &resp, &uerr), TW_OK);
    /* A lower bound only: the backoff alone (5 ms at most) is far shorter. */
    ck_assert_int_ge(mono_ms() - start, 1000);
    ck_assert_int_eq(uerr.attempts, 2);
    tw_http_response_free(&resp);

    fx_fake_script(&fake, "[{\"status\": 429, \"headers\": {\"Retry-After\": \"120\"}}, "
                          "{\"status\": 200}]");
    ck_assert_int_eq(tw_http_perform(&get, &quick, &resp, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(uerr.attempts, 1);
    ck_assert_int_eq(uerr.status, 429);
    ck_assert_int_eq(uerr.retry_after_ms, 120000);
    ck_assert(uerr.retryable);
    ck_assert_ptr_nonnull(strstr(uerr.reason, "Retry-After 120 s"));
    tw_http_response_free(&resp);
}
END_TEST

START_TEST(a_hang_ends_at_the_timeout_and_the_deadline_bounds_retries)
{
    char url[128];
    url_of(url, sizeof url, "/slow");
    fx_fake_script(&fake, "[{\"hang_ms\": 3000}]");
    tw_http_policy p = quick;
    p.timeout_ms = 300;
    p.max_attempts = 1;
    tw_http_request get = {.service = "test", .method = "GET", .url = url, .retry_safe = true};
    tw_http_response resp;
    tw_upstream_error uerr;
    ck_assert_int_eq(tw_http_perform(&get, &p, &resp, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(uerr.status, 0);
    ck_assert(uerr.retryable);
    ck_assert_ptr_nonnull(strstr(uerr.reason, "no answer within 300 ms"));
    tw_http_response_free(&resp);

    /* Five attempts of 300 ms do not fit a 500 ms deadline. */
    fx_fake_script(&fake, "[{\"hang_ms\": 3000}, {\"hang_ms\": 3000}, {\"hang_ms\": 3000}, "
                          "{\"hang_ms\": 3000}, {\"hang_ms\": 3000}]");
    p.max_attempts = 5;
    p.deadline_ms = 500;
    ck_assert_int_eq(tw_http_perform(&get, &p, &resp, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_le(uerr.attempts, 2);
    tw_http_response_free(&resp);
}
END_TEST

START_TEST(answers_over_the_cap_fail)
{
    char url[128], big[2100];
    url_of(url, sizeof url, "/big");
    char body[1500];
    memset(body, 'a', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    snprintf(big, sizeof big, "[{\"status\": 200, \"body\": \"%s\"}]", body);
    fx_fake_script(&fake, big);
    tw_http_request get = {.service = "test",
                           .method = "GET",
                           .url = url,
                           .retry_safe = true,
                           .max_response_bytes = 1000};
    tw_http_response resp;
    tw_upstream_error uerr;
    ck_assert_int_eq(tw_http_perform(&get, &quick, &resp, &uerr), TW_ERR_UPSTREAM);
    ck_assert(!uerr.retryable);
    ck_assert_int_eq(uerr.attempts, 1);
    ck_assert_ptr_nonnull(strstr(uerr.reason, "larger than 1000 bytes"));
    tw_http_response_free(&resp);
}
END_TEST

struct sink {
    char got[4096];
    size_t len;
    int calls;
    tw_err fail_with;
};

static tw_err sink_take(void *ctx, const void *data, size_t len)
{
    struct sink *s = ctx;
    if (s->fail_with)
        return s->fail_with;
    ck_assert_uint_le(s->len + len, sizeof s->got);
    memcpy(s->got + s->len, data, len);
    s->len += len;
    s->calls++;
    return TW_OK;
}

START_TEST(a_sink_gets_the_body_and_can_stop_it)
{
    char url[128];
    url_of(url, sizeof url, "/stream");
    fx_fake_script(&fake, "[{\"status\": 404, \"body\": \"not for the sink\"}, "
                          "{\"status\": 206, \"body\": \"streamed bytes\"}]");
    struct sink s = {0};
    tw_http_request get = {.service = "test",
                           .method = "GET",
                           .url = url,
                           .retry_safe = true,
                           .sink = sink_take,
                           .sink_ctx = &s};
    tw_http_response resp;
    tw_upstream_error uerr;
    ck_assert_int_eq(tw_http_perform(&get, &quick, &resp, &uerr), TW_ERR_UPSTREAM);
    ck_assert_str_eq(resp.body, "not for the sink");
    ck_assert_uint_eq(s.len, 0);
    tw_http_response_free(&resp);
    ck_assert_int_eq(tw_http_perform(&get, &quick, &resp, &uerr), TW_OK);
    ck_assert_int_eq(resp.status, 206);
    ck_assert_mem_eq(s.got, "streamed bytes", 14);
    ck_assert_uint_eq(s.len, 14);
    ck_assert_uint_eq(resp.body_len, 0);
    tw_http_response_free(&resp);

    fx_fake_script(&fake, "[{\"status\": 200, \"body\": \"refused\"}]");
    struct sink stop = {.fail_with = TW_ERR_NO_MEMORY};
    get.sink_ctx = &stop;
    ck_assert_int_eq(tw_http_perform(&get, &quick, &resp, &uerr), TW_ERR_NO_MEMORY);
    tw_http_response_free(&resp);
}
END_TEST

START_TEST(a_cut_answer_is_retried_unless_the_sink_has_bytes)
{
    char url[128];
    url_of(url, sizeof url, "/cut");
    fx_fake_script(&fake, "[{\"status\": 200, \"body\": \"0123456789\", \"partial\": true}, "
                          "{\"status\": 200, \"body\": \"0123456789\"}]");
    tw_http_request get = {.service = "test", .method = "GET", .url = url, .retry_safe = true};
    tw_http_response resp;
    tw_upstream_error uerr;
    ck_assert_int_eq(tw_http_perform(&get, &quick, &resp, &uerr), TW_OK);
    ck_assert_str_eq(resp.body, "0123456789");
    ck_assert_int_eq(uerr.attempts, 2);
    tw_http_response_free(&resp);

    fx_fake_script(&fake, "[{\"status\": 200, \"body\": \"0123456789\", \"partial\": true}, "
                          "{\"status\": 200, \"body\": \"0123456789\"}]");
    struct sink s = {0};
    get.sink = sink_take;
    get.sink_ctx = &s;
    ck_assert_int_eq(tw_http_perform(&get, &quick, &resp, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(uerr.attempts, 1);
    ck_assert_uint_eq(s.len, 5);
    tw_http_response_free(&resp);
}
END_TEST

START_TEST(a_streamed_body_that_cannot_rewind_is_sent_once)
{
    char url[128];
    url_of(url, sizeof url, "/once");
    fx_fake_script(&fake, "[{\"status\": 503}, {\"status\": 200}]");
    struct pattern p = {.size = 5000};
    tw_http_request put = {.service = "test",
                           .method = "PUT",
                           .url = url,
                           .read = pattern_read,
                           .read_ctx = &p,
                           .read_size = 5000,
                           .retry_safe = true};
    tw_http_response resp;
    tw_upstream_error uerr;
    ck_assert_int_eq(tw_http_perform(&put, &quick, &resp, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(uerr.attempts, 1);
    ck_assert_int_eq(uerr.status, 503);
    ck_assert_int_eq(resp.status, 503); /* the answer comes back, as for any failure */
    tw_http_response_free(&resp);
}
END_TEST

START_TEST(a_reader_error_comes_back_as_is)
{
    char url[128];
    url_of(url, sizeof url, "/upload");
    fx_fake_script(&fake, "[{\"status\": 200}]");
    struct pattern p = {.size = 200000, .fail_with = TW_ERR_DB};
    tw_http_request put = {.service = "test",
                           .method = "PUT",
                           .url = url,
                           .read = pattern_read,
                           .rewind = pattern_rewind,
                           .read_ctx = &p,
                           .read_size = 200000,
                           .retry_safe = true};
    tw_http_response resp;
    ck_assert_int_eq(tw_http_perform(&put, &quick, &resp, NULL), TW_ERR_DB);
    tw_http_response_free(&resp);
}
END_TEST

START_TEST(a_cancel_stops_a_call)
{
    char url[128];
    url_of(url, sizeof url, "/slow");
    fx_fake_script(&fake, "[{\"hang_ms\": 3000}]");
    atomic_bool cancel = true;
    tw_http_request get = {
        .service = "test", .method = "GET", .url = url, .retry_safe = true, .cancel = &cancel};
    tw_http_response resp;
    ck_assert_int_eq(tw_http_perform(&get, &quick, &resp, NULL), TW_ERR_CANCELLED);
    tw_http_response_free(&resp);
}
END_TEST

static void *many_gets(void *arg)
{
    const char *url = arg;
    for (int i = 0; i < 20; i++) {
        tw_http_request get = {.service = "test", .method = "GET", .url = url, .retry_safe = true};
        tw_http_response resp;
        tw_err err = tw_http_perform(&get, &quick, &resp, NULL);
        tw_http_response_free(&resp);
        if (err != TW_ERR_UPSTREAM) /* the fake answers 404 to an unscripted path */
            return (void *)1;
    }
    return NULL;
}

START_TEST(threads_call_at_once)
{
    char url[128];
    url_of(url, sizeof url, "/nothing-here");
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, many_gets, url), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        ck_assert_ptr_null(bad);
    }
    json_t *got = fx_fake_requests(&fake);
    ck_assert_uint_eq(json_array_size(got), 80);
    json_decref(got);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, backoff_is_full_jitter_under_a_cap);
    tcase_add_test(tc, retry_after_in_seconds_or_as_a_date);
    suite_add_tcase(s, tc);
    tc = tcase_create("loopback");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_get_brings_back_body_and_headers);
    tcase_add_test(tc, a_streamed_body_arrives_whole_sized_or_chunked);
    tcase_add_test(tc, safe_calls_are_retried_on_5xx_with_the_body_sent_again);
    tcase_add_test(tc, unsafe_calls_and_final_answers_are_not_retried);
    tcase_add_test(tc, a_retry_hint_header_overrides_the_status);
    tcase_add_test(tc, a_refused_connection_is_retried_even_when_unsafe);
    tcase_add_test(tc, retry_after_is_waited_for_or_ends_the_retries);
    tcase_add_test(tc, a_hang_ends_at_the_timeout_and_the_deadline_bounds_retries);
    tcase_add_test(tc, answers_over_the_cap_fail);
    tcase_add_test(tc, a_sink_gets_the_body_and_can_stop_it);
    tcase_add_test(tc, a_cut_answer_is_retried_unless_the_sink_has_bytes);
    tcase_add_test(tc, a_streamed_body_that_cannot_rewind_is_sent_once);
    tcase_add_test(tc, a_reader_error_comes_back_as_is);
    tcase_add_test(tc, a_cancel_stops_a_call);
    tcase_add_test(tc, threads_call_at_once);
    suite_add_tcase(s, tc);
    return s;
}
