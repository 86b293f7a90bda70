/*
 * Unit tests for clients/deepgram.c against fake_vendor.py, which answers
 * POST /v1/listen as Deepgram documents: a recorded success with words,
 * 400 for audio it cannot use, 401 for a wrong key, and scripted 429 with
 * Retry-After, 500 and a hang past the timeout. Also the circuit breaker
 * (with a clock the test moves).
 */
#include "deepgram.h"
#include "sigv4.h"
#include "vendor_fixture.h"

#include "tw_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fx_server fake;
static int64_t test_clock_ms;

static int64_t test_clock(void *ctx)
{
    return test_clock_ms;
}

static void setup(void)
{
    fx_fake_vendor_start(&fake, "deepgram", "test-key");
    test_clock_ms = 1000000;
}

static void teardown(void)
{
    fx_server_stop(&fake);
}

static tw_deepgram *client(const char *key, int max_attempts, long timeout_ms)
{
    tw_deepgram_config cfg = {
        .base_url = fake.base_url,
        .api_key = key,
        .model = "nova-3",
        .policy = {.timeout_ms = timeout_ms,
                   .max_attempts = max_attempts,
                   .backoff_base_ms = 1,
                   .backoff_max_ms = 5},
        .breaker_failures = 3,
        .breaker_cooldown_ms = 10000,
        .clock_ms = test_clock,
    };
    tw_deepgram *dg;
    ck_assert_int_eq(tw_deepgram_new(&cfg, &dg), TW_OK);
    return dg;
}

/* Audio held in memory, read in pieces. */
struct memory_audio {
    const unsigned char *bytes;
    size_t size, at;
};

static tw_err memory_read(void *ctx, void *buf, size_t cap, size_t *n)
{
    struct memory_audio *m = ctx;
    size_t take = m->size - m->at < cap ? m->size - m->at : cap;
    memcpy(buf, m->bytes + m->at, take);
    m->at += take;
    *n = take;
    return TW_OK;
}

static tw_err memory_rewind(void *ctx)
{
    ((struct memory_audio *)ctx)->at = 0;
    return TW_OK;
}

/* A WAV header and some silence: enough to look like audio. */
static unsigned char wav[4096];

static void make_wav(void)
{
    memset(wav, 0, sizeof wav);
    memcpy(wav, "RIFF\xf8\x0f\0\0WAVEfmt ", 16);
}

static tw_err transcribe_bytes(tw_deepgram *dg, const void *bytes, size_t size,
                               const tw_deepgram_options *opts, tw_deepgram_result **out,
                               tw_upstream_error *uerr)
{
    struct memory_audio m = {bytes, size, 0};
    tw_deepgram_audio audio = {"audio/wav", (int64_t)size, memory_read, memory_rewind, &m};
    return tw_deepgram_transcribe(dg, &audio, opts, out, uerr);
}

static size_t request_count(void)
{
    json_t *got = fx_fake_requests(&fake);
    size_t n = json_array_size(got);
    json_decref(got);
    return n;
}

START_TEST(a_transcript_with_words)
{
    make_wav();
    tw_deepgram *dg = client("test-key", 3, 5000);
    const char *terms[] = {"pomodoro timer", "twd"};
    tw_deepgram_options opts = {.language = "en", .keyterms = terms, .n_keyterms = 2};
    tw_deepgram_result *r;
    tw_upstream_error uerr;
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, &opts, &r, &uerr), TW_OK);
    ck_assert_ptr_nonnull(strstr(r->text, "We, the people of The United States"));
    ck_assert_str_eq(r->language, "en");
    ck_assert(fabs(r->confidence - 0.9977381) < 1e-9);
    ck_assert(fabs(r->duration_s - 19.097937) < 1e-9);
    ck_assert_str_eq(r->request_id, "770e7ea1-1ca5-4ec5-9d04-889b77de2f61");
    ck_assert_uint_eq(r->n_words, 52);
    ck_assert_str_eq(r->words[0].word, "We,");
    ck_assert(fabs(r->words[0].start_s - 0.32) < 1e-9);
    ck_assert(fabs(r->words[0].end_s - 0.79999995) < 1e-9);
    ck_assert(fabs(r->words[0].confidence - 0.8624499) < 1e-9);
    for (size_t i = 1; i < r->n_words; i++)
        ck_assert(r->words[i].start_s >= r->words[i - 1].start_s);
    tw_deepgram_result_free(r);

    /* What went out: the documented query, the key as a token, the audio. */
    json_t *got = fx_fake_requests(&fake);
    ck_assert_uint_eq(json_array_size(got), 1);
    json_t *req = json_array_get(got, 0);
    ck_assert_str_eq(json_string_value(json_object_get(req, "method")), "POST");
    ck_assert_str_eq(json_string_value(json_object_get(req, "path")), "/v1/listen");
    char *query = json_dumps(json_object_get(req, "query"), JSON_COMPACT);
    ck_assert_str_eq(query, "[[\"smart_format\",\"true\"],[\"model\",\"nova-3\"],"
                            "[\"language\",\"en\"],[\"keyterm\",\"pomodoro timer\"],"
                            "[\"keyterm\",\"twd\"]]");
    free(query);
    json_t *h = json_object_get(req, "headers");
    ck_assert_str_eq(json_string_value(json_object_get(h, "authorization")), "Token test-key");
    ck_assert_str_eq(json_string_value(json_object_get(h, "content-type")), "audio/wav");
    char sha[65];
    tw_sigv4_sha256_hex(wav, sizeof wav, sha);
    ck_assert_str_eq(json_string_value(json_object_get(req, "body_sha256")), sha);
    json_decref(got);
    tw_deepgram_free(dg);
}
END_TEST

START_TEST(without_a_language_deepgram_detects_it)
{
    make_wav();
    tw_deepgram *dg = client("test-key", 3, 5000);
    fx_fake_script(&fake,
                   "[{\"status\": 200, \"body_file\": \"listen-nova3-bueller-summary.json\"}]");
    tw_deepgram_result *r;
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, NULL, &r, NULL), TW_OK);
    ck_assert_ptr_nonnull(strstr(r->text, "Life moves pretty fast"));
    ck_assert_str_eq(r->words[0].word, "Yep.");
    ck_assert_uint_eq(r->n_words, 28);
    ck_assert_str_eq(r->language, "");
    tw_deepgram_result_free(r);
    json_t *got = fx_fake_requests(&fake);
    char *query = json_dumps(json_object_get(json_array_get(got, 0), "query"), JSON_COMPACT);
    ck_assert_ptr_nonnull(strstr(query, "[\"detect_language\",\"true\"]"));
    ck_assert_ptr_null(strstr(query, "language\",\"en"));
    free(query);
    json_decref(got);
    tw_deepgram_free(dg);
}
END_TEST

START_TEST(audio_deepgram_cannot_use_is_a_400_not_retried)
{
    tw_deepgram *dg = client("test-key", 3, 5000);
    const char *png = "\x89PNG\r\n\x1a\n not audio at all";
    tw_deepgram_result *r;
    tw_upstream_error uerr;
    ck_assert_int_eq(transcribe_bytes(dg, png, strlen(png), NULL, &r, &uerr), TW_ERR_UPSTREAM);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(uerr.status, 400);
    ck_assert(!uerr.retryable);
    ck_assert_int_eq(uerr.attempts, 1);
    ck_assert_str_eq(uerr.code, "Bad Request");
    ck_assert_ptr_nonnull(strstr(uerr.reason, "corrupt or unsupported data"));
    ck_assert_uint_eq(request_count(), 1);
    tw_deepgram_free(dg);
}
END_TEST

START_TEST(a_wrong_key_is_a_401_not_retried)
{
    make_wav();
    tw_deepgram *dg = client("wrong-key", 3, 5000);
    tw_deepgram_result *r;
    tw_upstream_error uerr;
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, NULL, &r, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(uerr.status, 401);
    ck_assert(!uerr.retryable);
    ck_assert_str_eq(uerr.code, "INVALID_AUTH");
    ck_assert_ptr_null(strstr(uerr.reason, "wrong-key"));
    ck_assert_uint_eq(request_count(), 1);
    tw_deepgram_free(dg);
}
END_TEST

START_TEST(a_429_is_retried_after_retry_after)
{
    make_wav();
    tw_deepgram *dg = client("test-key", 3, 5000);
    fx_fake_script(&fake, "[{\"status\": 429, \"headers\": {\"Retry-After\": \"1\"}, "
                          "\"body_file\": \"error-429.json\"}]");
    tw_deepgram_result *r;
    tw_upstream_error uerr;
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, NULL, &r, &uerr), TW_OK);
    ck_assert_int_eq(uerr.attempts, 2);
    ck_assert_uint_eq(r->n_words, 52);
    tw_deepgram_result_free(r);
    /* Both attempts carried the whole audio. */
    json_t *got = fx_fake_requests(&fake);
    ck_assert_uint_eq(json_array_size(got), 2);
    for (size_t i = 0; i < 2; i++)
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(got, i), "body_len")),
                         sizeof wav);
    json_decref(got);

    /* A Retry-After beyond what the policy waits for ends the call. */
    fx_fake_script(&fake, "[{\"status\": 429, \"headers\": {\"Retry-After\": \"3600\"}, "
                          "\"body_file\": \"error-429.json\"}]");
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, NULL, &r, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(uerr.status, 429);
    ck_assert(uerr.retryable);
    ck_assert_int_eq(uerr.retry_after_ms, 3600000);
    ck_assert_str_eq(uerr.code, "TOO_MANY_REQUESTS");
    tw_deepgram_free(dg);
}
END_TEST

START_TEST(a_500_is_retried_then_reported)
{
    make_wav();
    tw_deepgram *dg = client("test-key", 3, 5000);
    fx_fake_script(&fake, "[{\"status\": 500, \"body_file\": \"error-500.json\"}]");
    tw_deepgram_result *r;
    tw_upstream_error uerr;
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, NULL, &r, &uerr), TW_OK);
    ck_assert_int_eq(uerr.attempts, 2);
    tw_deepgram_result_free(r);

    fx_fake_script(&fake,
                   "[{\"status\": 500, \"body_file\": \"error-500.json\"}, "
                   "{\"status\": 502}, {\"status\": 500, \"body_file\": \"error-500.json\"}]");
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, NULL, &r, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(uerr.status, 500);
    ck_assert_int_eq(uerr.attempts, 3);
    ck_assert(uerr.retryable);
    ck_assert_str_eq(uerr.code, "INTERNAL_SERVER_ERROR");
    ck_assert_uint_eq(request_count(), 5);
    tw_deepgram_free(dg);
}
END_TEST

START_TEST(a_hang_past_the_timeout_is_retried_then_reported)
{
    make_wav();
    tw_deepgram *dg = client("test-key", 2, 300);
    fx_fake_script(&fake, "[{\"hang_ms\": 3000}, {\"hang_ms\": 3000}]");
    tw_deepgram_result *r;
    tw_upstream_error uerr;
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, NULL, &r, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(uerr.status, 0);
    ck_assert_int_eq(uerr.attempts, 2);
    ck_assert(uerr.retryable);
    ck_assert_ptr_nonnull(strstr(uerr.reason, "no answer within 300 ms"));
    tw_deepgram_free(dg);
}
END_TEST

START_TEST(the_breaker_opens_after_failures_in_a_row)
{
    make_wav();
    tw_deepgram *dg = client("test-key", 1, 5000); /* breaker: 3 failures, 10 s */
    tw_deepgram_result *r;
    tw_upstream_error uerr;
    /* A 400 is Deepgram answering: it does not count. */
    fx_fake_script(&fake, "[{\"status\": 500}, {\"status\": 503}, "
                          "{\"status\": 400, \"body_file\": \"error-400.json\"}, "
                          "{\"status\": 500}, {\"status\": 500}, {\"status\": 504}]");
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, NULL, &r, &uerr), TW_ERR_UPSTREAM);
    ck_assert_uint_eq(request_count(), 6);

    /* Open: answered at once, nothing sent. */
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, NULL, &r, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(uerr.attempts, 0);
    ck_assert(uerr.retryable);
    ck_assert_ptr_nonnull(strstr(uerr.reason, "circuit open"));
    ck_assert_uint_eq(request_count(), 6);

    /* After the cool-down one trial goes out; it fails, so it opens again. */
    test_clock_ms += 10001;
    fx_fake_script(&fake, "[{\"status\": 503}]");
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, NULL, &r, &uerr), TW_ERR_UPSTREAM);
    ck_assert_int_eq(uerr.status, 503);
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, NULL, &r, &uerr), TW_ERR_UPSTREAM);
    ck_assert_ptr_nonnull(strstr(uerr.reason, "circuit open"));
    ck_assert_uint_eq(request_count(), 7);

    /* The next trial works: closed, calls go out again. */
    test_clock_ms += 10001;
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, NULL, &r, &uerr), TW_OK);
    tw_deepgram_result_free(r);
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, NULL, &r, &uerr), TW_OK);
    tw_deepgram_result_free(r);
    ck_assert_uint_eq(request_count(), 9);
    tw_deepgram_free(dg);
}
END_TEST

START_TEST(an_answer_without_a_transcript_fails)
{
    make_wav();
    tw_deepgram *dg = client("test-key", 3, 5000);
    fx_fake_script(&fake, "[{\"status\": 200, \"body\": \"{\\\"results\\\": {}}\"}, "
                          "{\"status\": 200, \"body\": \"<html>\"}]");
    tw_deepgram_result *r;
    tw_upstream_error uerr;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, NULL, &r, &uerr), TW_ERR_UPSTREAM);
        ck_assert(!uerr.retryable);
        ck_assert_ptr_nonnull(strstr(uerr.reason, "no transcript"));
    }
    /* Words without times or text are tolerated; silence is an empty text. */
    const char *silence = "{\"results\":{\"channels\":[{\"detected_language\":\"de\","
                          "\"alternatives\":[{\"transcript\":\"\",\"words\":[{\"start\":1}]}]}]}}";
    ck_assert_int_eq(tw_deepgram_parse(silence, strlen(silence), "en", &r), TW_OK);
    ck_assert_str_eq(r->text, "");
    ck_assert_str_eq(r->language, "de");
    ck_assert_uint_eq(r->n_words, 0);
    tw_deepgram_result_free(r);
    tw_deepgram_free(dg);
}
END_TEST

START_TEST(bad_options_send_nothing)
{
    make_wav();
    tw_deepgram *dg = client("test-key", 3, 5000);
    tw_deepgram_result *r;
    tw_deepgram_options bad_lang = {.language = "en us"};
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, &bad_lang, &r, NULL), TW_ERR_VALIDATION);
    const char *empty[] = {""};
    tw_deepgram_options bad_term = {.keyterms = empty, .n_keyterms = 1};
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, &bad_term, &r, NULL), TW_ERR_VALIDATION);
    const char *many[101];
    for (int i = 0; i < 101; i++)
        many[i] = "word";
    tw_deepgram_options too_many = {.keyterms = many, .n_keyterms = 101};
    ck_assert_int_eq(transcribe_bytes(dg, wav, sizeof wav, &too_many, &r, NULL), TW_ERR_VALIDATION);
    ck_assert_uint_eq(request_count(), 0);
    tw_deepgram_free(dg);

    tw_deepgram_config no_key = {.base_url = fake.base_url, .api_key = "", .model = "nova-3"};
    ck_assert_int_eq(tw_deepgram_new(&no_key, &dg), TW_ERR_VALIDATION);
    ck_assert_ptr_null(dg);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("deepgram");
    TCase *tc = tcase_create("loopback");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_transcript_with_words);
    tcase_add_test(tc, without_a_language_deepgram_detects_it);
    tcase_add_test(tc, audio_deepgram_cannot_use_is_a_400_not_retried);
    tcase_add_test(tc, a_wrong_key_is_a_401_not_retried);
    tcase_add_test(tc, a_429_is_retried_after_retry_after);
    tcase_add_test(tc, a_500_is_retried_then_reported);
    tcase_add_test(tc, a_hang_past_the_timeout_is_retried_then_reported);
    tcase_add_test(tc, the_breaker_opens_after_failures_in_a_row);
    tcase_add_test(tc, an_answer_without_a_transcript_fails);
    tcase_add_test(tc, bad_options_send_nothing);
    suite_add_tcase(s, tc);
    return s;
}
