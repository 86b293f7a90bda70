/*
 * Deepgram's pre-recorded transcription API (POST {base_url}/v1/listen):
 * the audio streamed as the request body from a reader, the JSON answer
 * parsed into a C result (text, confidence, language, words with times).
 *
 * Calls retry Deepgram's timeouts, 429 (after Retry-After) and 5xx answers
 * with backoff and jitter (http.h). A circuit breaker shared by all calls of
 * one client stops calling after breaker_failures failed calls in a row
 * (timeouts, lost connections, 429, 5xx) and answers TW_ERR_UPSTREAM at
 * once for breaker_cooldown_ms; then one trial call decides whether it
 * closes again. Thread-safe; calls block for as long as Deepgram takes, so
 * they run in a job or on a pool, never on an RPC thread.
 */
#ifndef TW_DEEPGRAM_H
#define TW_DEEPGRAM_H

#include "http.h"
#include "tw_err.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tw_deepgram tw_deepgram;

typedef struct tw_deepgram_config {
    const char *base_url; /* "https://api.deepgram.com", or a local fake in tests */
    const char *api_key;  /* sent as "Authorization: Token <key>"; never logged */
    const char *model;    /* "nova-3" */
    tw_http_policy policy;
    int breaker_failures;     /* failed calls in a row that open the breaker [5] */
    long breaker_cooldown_ms; /* how long it stays open [30000] */
    /* Monotonic milliseconds; NULL for the real clock (tests bring theirs). */
    int64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
} tw_deepgram_config;

/* A client; copies cfg. TW_ERR_VALIDATION without a base URL, key or model. */
tw_err tw_deepgram_new(const tw_deepgram_config *cfg, tw_deepgram **out);
/* Accepts NULL; no call may be running. */
void tw_deepgram_free(tw_deepgram *dg);

/* Where the audio comes from: read until it says 0 bytes; rewind starts it
 * again for a retry (NULL: a failed attempt is not retried). */
typedef struct tw_deepgram_audio {
    const char *content_type; /* "audio/wav", "audio/mpeg", "audio/mp4", "audio/webm" */
    int64_t size;             /* bytes; -1 when unknown (sent chunked) */
    tw_http_read_fn read;
    tw_http_rewind_fn rewind;
    void *ctx;
} tw_deepgram_audio;

typedef struct tw_deepgram_options {
    const char *language;        /* "en", "en-US", ...; NULL or "": detect it */
    const char *const *keyterms; /* words to favour (custom vocabulary), at most 100 */
    size_t n_keyterms;
    const atomic_bool *cancel; /* may be NULL */
} tw_deepgram_options;

typedef struct tw_deepgram_word {
    char *word;     /* as punctuated by smart_format when given */
    double start_s; /* seconds from the start of the audio */
    double end_s;
    double confidence; /* 0..1 */
} tw_deepgram_word;

typedef struct tw_deepgram_result {
    char *text;     /* the transcript, "" for silence */
    char *language; /* detected, else the one asked for, else "" */
    double confidence;
    double duration_s; /* of the audio, 0 when not given */
    char *request_id;  /* Deepgram's, for support; "" when not given */
    tw_deepgram_word *words;
    size_t n_words;
} tw_deepgram_result;

/* The breaker's state now: "closed" (calling), "open" (not calling until
 * the cool-down ends) or "half_open" (one trial call decides), for
 * /health/detailed and /metrics. */
const char *tw_deepgram_breaker_state(tw_deepgram *dg);

/*
 * Transcribes the audio. TW_OK with *out (free with tw_deepgram_result_free).
 * TW_ERR_VALIDATION for a bad language or keyterm (nothing is sent).
 * TW_ERR_UPSTREAM when Deepgram failed or the breaker is open, with uerr
 * (may be NULL) saying why: retryable for timeouts, 429 and 5xx (and an
 * open breaker), not for 400 (audio Deepgram cannot use) or 401 (bad key),
 * and code set to Deepgram's err_code. Errors of the reader come back as
 * they are; TW_ERR_CANCELLED when cancelled. Borrows everything.
 */
tw_err tw_deepgram_transcribe(tw_deepgram *dg, const tw_deepgram_audio *audio,
                              const tw_deepgram_options *opts, tw_deepgram_result **out,
                              tw_upstream_error *uerr);

/* Parses a /v1/listen answer (the JSON text, n bytes); language is the one
 * asked for (may be NULL). TW_ERR_UPSTREAM when it lacks a transcript. */
tw_err tw_deepgram_parse(const char *json, size_t n, const char *language,
                         tw_deepgram_result **out);

void tw_deepgram_result_free(tw_deepgram_result *r);

#endif
