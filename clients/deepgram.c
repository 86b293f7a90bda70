/*
 * Deepgram's pre-recorded API (deepgram.h): the request URL and headers,
 * the circuit breaker around tw_http_perform, and the answer's JSON.
 */
#include "deepgram.h"

#include "buf.h"
#include "sigv4.h"
#include "tw_log.h"
#include "tw_time.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BREAKER_FAILURES    5
#define DEFAULT_BREAKER_COOLDOWN_MS 30000
#define MAX_KEYTERMS                100
#define MAX_KEYTERM_BYTES           100
#define MAX_LANGUAGE_BYTES          35
#define MAX_ANSWER_BYTES            (16u << 20)
#define URL_MAX                     (64u << 10)

enum breaker_state { CLOSED, OPEN, HALF_OPEN };

struct tw_deepgram {
    char *base_url; /* without a trailing '/' */
    char *auth_header;
    char *model;
    tw_http_policy policy;
    int breaker_failures;
    long breaker_cooldown_ms;
    int64_t (*clock_ms)(void *ctx);
    void *clock_ctx;

    pthread_mutex_t lock; /* guards the breaker below */
    enum breaker_state state;
    int failures;       /* failed calls in a row */
    int64_t open_until; /* clock ms */
    bool trial_running; /* HALF_OPEN: the one trial call is out */
};

static int64_t real_clock(void *ctx)
{
    return tw_mono_ns() / 1000000;
}

tw_err tw_deepgram_new(const tw_deepgram_config *cfg, tw_deepgram **out)
{
    *out = NULL;
    if (cfg->base_url == NULL || cfg->base_url[0] == '\0' || cfg->api_key == NULL ||
        cfg->api_key[0] == '\0' || cfg->model == NULL || cfg->model[0] == '\0')
        return TW_ERR_VALIDATION;
    tw_deepgram *dg = calloc(1, sizeof *dg);
    if (dg == NULL)
        return TW_ERR_NO_MEMORY;
    dg->base_url = strdup(cfg->base_url);
    dg->model = strdup(cfg->model);
    if (asprintf(&dg->auth_header, "Authorization: Token %s", cfg->api_key) < 0)
        dg->auth_header = NULL;
    if (dg->base_url == NULL || dg->model == NULL || dg->auth_header == NULL) {
        tw_deepgram_free(dg);
        return TW_ERR_NO_MEMORY;
    }
    size_t n = strlen(dg->base_url);
    while (n > 0 && dg->base_url[n - 1] == '/')
        dg->base_url[--n] = '\0';
    dg->policy = tw_http_policy_resolve(&cfg->policy);
    dg->breaker_failures =
        cfg->breaker_failures > 0 ? cfg->breaker_failures : DEFAULT_BREAKER_FAILURES;
    dg->breaker_cooldown_ms =
        cfg->breaker_cooldown_ms > 0 ? cfg->breaker_cooldown_ms : DEFAULT_BREAKER_COOLDOWN_MS;
    dg->clock_ms = cfg->clock_ms ? cfg->clock_ms : real_clock;
    dg->clock_ctx = cfg->clock_ctx;
    pthread_mutex_init(&dg->lock, NULL);
    *out = dg;
    return TW_OK;
}

void tw_deepgram_free(tw_deepgram *dg)
{
    if (dg == NULL)
        return;
    free(dg->base_url);
    free(dg->model);
    if (dg->auth_header != NULL) {
        memset(dg->auth_header, 0, strlen(dg->auth_header));
        free(dg->auth_header);
    }
    pthread_mutex_destroy(&dg->lock);
    free(dg);
}

/* ---- circuit breaker -------------------------------------------------------- */

/* May a call go out now? When not, says why in uerr. */
static bool breaker_admit(tw_deepgram *dg, tw_upstream_error *uerr)
{
    int64_t now = dg->clock_ms(dg->clock_ctx);
    bool admit = true;
    pthread_mutex_lock(&dg->lock);
    if (dg->state == OPEN && now >= dg->open_until)
        dg->state = HALF_OPEN;
    if (dg->state == OPEN) {
        admit = false;
        tw_upstream_error_setf(uerr,
                               "deepgram: not called for %lld ms more after %d failed calls "
                               "in a row (circuit open)",
                               (long long)(dg->open_until - now), dg->failures);
    } else if (dg->state == HALF_OPEN) {
        admit = !dg->trial_running;
        dg->trial_running = true;
        if (!admit)
            tw_upstream_error_setf(uerr,
                                   "deepgram: a trial call after %d failures is running "
                                   "(circuit half open)",
                                   dg->failures);
    }
    pthread_mutex_unlock(&dg->lock);
    if (!admit)
        uerr->retryable = true;
    return admit;
}

const char *tw_deepgram_breaker_state(tw_deepgram *dg)
{
    static const char *const names[] = {
        [CLOSED] = "closed", [OPEN] = "open", [HALF_OPEN] = "half_open"};
    int64_t now = dg->clock_ms(dg->clock_ctx);
    pthread_mutex_lock(&dg->lock);
    /* Open until the cool-down ends; after it the next call is the trial. */
    enum breaker_state state = dg->state == OPEN && now >= dg->open_until ? HALF_OPEN : dg->state;
    pthread_mutex_unlock(&dg->lock);
    return names[state];
}

enum call_outcome {
    HEALTHY, /* Deepgram answered, even with a 4xx */
    FAILED,  /* it did not, or answered 429 / 5xx */
    UNKNOWN, /* the call ended for a reason of ours (reader, cancel) */
};

/* Records how an admitted call went. */
static void breaker_record(tw_deepgram *dg, enum call_outcome outcome)
{
    int64_t now = dg->clock_ms(dg->clock_ctx);
    bool opened = false;
    int failures;
    pthread_mutex_lock(&dg->lock);
    bool was_trial = dg->state == HALF_OPEN;
    dg->trial_running = false;
    if (outcome == UNKNOWN) {
        /* Nothing learnt: a half-open breaker lets the next call try. */
    } else if (outcome == HEALTHY) {
        dg->state = CLOSED;
        dg->failures = 0;
    } else {
        dg->failures++;
        if (was_trial || dg->failures >= dg->breaker_failures) {
            opened = dg->state != OPEN;
            dg->state = OPEN;
            dg->open_until = now + dg->breaker_cooldown_ms;
        }
    }
    failures = dg->failures;
    pthread_mutex_unlock(&dg->lock);
    if (opened)
        tw_log(TW_LOG_WARN, "deepgram circuit open",
               json_pack("{s:i, s:I}", "failures", failures, "cooldown_ms",
                         (json_int_t)dg->breaker_cooldown_ms));
}

/* ---- the request ------------------------------------------------------------ */

static bool language_ok(const char *lang)
{
    size_t n = strlen(lang);
    if (n > MAX_LANGUAGE_BYTES)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = lang[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

static bool add_param(tw_buf *url, const char *name, const char *value)
{
    char *enc = tw_sigv4_uri_encode(value, strlen(value), false);
    if (enc == NULL)
        return false;
    bool ok = tw_buf_addf(url, "&%s=%s", name, enc);
    free(enc);
    return ok;
}

/* The /v1/listen URL for opts (malloc'd); TW_ERR_VALIDATION for bad options. */
static tw_err listen_url(const tw_deepgram *dg, const tw_deepgram_options *opts, char **out)
{
    const char *lang = opts && opts->language ? opts->language : "";
    if (!language_ok(lang))
        return TW_ERR_VALIDATION;
    size_t n_terms = opts ? opts->n_keyterms : 0;
    if (n_terms > MAX_KEYTERMS)
        return TW_ERR_VALIDATION;
    for (size_t i = 0; i < n_terms; i++) {
        const char *t = opts->keyterms[i];
        if (t == NULL || t[0] == '\0' || strlen(t) > MAX_KEYTERM_BYTES)
            return TW_ERR_VALIDATION;
    }
    tw_buf url;
    tw_buf_init(&url, URL_MAX);
    tw_buf_addf(&url, "%s/v1/listen?smart_format=true", dg->base_url);
    add_param(&url, "model", dg->model);
    if (lang[0] != '\0')
        add_param(&url, "language", lang);
    else
        tw_buf_adds(&url, "&detect_language=true");
    for (size_t i = 0; i < n_terms; i++)
        add_param(&url, "keyterm", opts->keyterms[i]);
    *out = tw_buf_take(&url);
    return *out ? TW_OK : TW_ERR_NO_MEMORY;
}

/* Deepgram's err_code (and err_msg) of an error answer, into uerr. */
static void note_error_body(const tw_http_response *resp, tw_upstream_error *uerr)
{
    if (resp->body == NULL)
        return;
    json_t *root = json_loadb(resp->body, resp->body_len, 0, NULL);
    const char *code = json_string_value(json_object_get(root, "err_code"));
    const char *msg = json_string_value(json_object_get(root, "err_msg"));
    if (code != NULL)
        snprintf(uerr->code, sizeof uerr->code, "%s", code);
    if (msg != NULL) {
        size_t n = strlen(uerr->reason);
        snprintf(uerr->reason + n, sizeof uerr->reason - n, ": %s", msg);
    }
    json_decref(root);
}

tw_err tw_deepgram_transcribe(tw_deepgram *dg, const tw_deepgram_audio *audio,
                              const tw_deepgram_options *opts, tw_deepgram_result **out,
                              tw_upstream_error *uerr)
{
    tw_upstream_error scratch;
    if (uerr == NULL)
        uerr = &scratch;
    memset(uerr, 0, sizeof *uerr);
    uerr->retry_after_ms = -1;
    *out = NULL;
    char *url = NULL;
    tw_err err = listen_url(dg, opts, &url);
    if (err)
        return err;
    if (!breaker_admit(dg, uerr)) {
        free(url);
        return TW_ERR_UPSTREAM;
    }
    char content_type[128];
    snprintf(content_type, sizeof content_type, "Content-Type: %s",
             audio->content_type && audio->content_type[0] ? audio->content_type
                                                           : "application/octet-stream");
    const char *headers[] = {dg->auth_header, content_type, "Accept: application/json"};
    tw_http_request req = {
        .service = "deepgram",
        .method = "POST",
        .url = url,
        .headers = headers,
        .n_headers = 3,
        .read = audio->read,
        .rewind = audio->rewind,
        .read_ctx = audio->ctx,
        .read_size = audio->size,
        .retry_safe = true, /* transcribing twice has no effect beyond the answer */
        .max_response_bytes = MAX_ANSWER_BYTES,
        .cancel = opts ? opts->cancel : NULL,
    };
    tw_http_response resp;
    err = tw_http_perform(&req, &dg->policy, &resp, uerr);
    if (err == TW_ERR_UPSTREAM)
        note_error_body(&resp, uerr);
    if (err == TW_OK) {
        err = tw_deepgram_parse(resp.body, resp.body_len, opts ? opts->language : NULL, out);
        if (err == TW_ERR_UPSTREAM)
            tw_upstream_error_setf(uerr, "deepgram: the answer has no transcript where "
                                         "Deepgram's documentation puts it");
    }
    /* Only Deepgram's own trouble counts against it: not our reader, a
     * cancel, or an answer that says the audio or key is wrong. */
    if (err == TW_ERR_UPSTREAM && uerr->retryable)
        breaker_record(dg, FAILED);
    else if (err == TW_OK || err == TW_ERR_UPSTREAM)
        breaker_record(dg, HEALTHY);
    else
        breaker_record(dg, UNKNOWN);
    tw_http_response_free(&resp);
    free(url);
    return err;
}

/* ---- the answer ------------------------------------------------------------- */

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

void tw_deepgram_result_free(tw_deepgram_result *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_words; i++)
        free(r->words[i].word);
    free(r->words);
    free(r->text);
    free(r->language);
    free(r->request_id);
    free(r);
}

tw_err tw_deepgram_parse(const char *json, size_t n, const char *language, tw_deepgram_result **out)
{
    *out = NULL;
    json_t *root = json_loadb(json ? json : "", json ? n : 0, 0, NULL);
    json_t *channel =
        json_array_get(json_object_get(json_object_get(root, "results"), "channels"), 0);
    json_t *alt = json_array_get(json_object_get(channel, "alternatives"), 0);
    json_t *transcript = json_object_get(alt, "transcript");
    if (!json_is_string(transcript)) {
        json_decref(root);
        return TW_ERR_UPSTREAM;
    }
    tw_err err = TW_ERR_NO_MEMORY;
    tw_deepgram_result *r = calloc(1, sizeof *r);
    if (r == NULL)
        goto out;
    json_t *metadata = json_object_get(root, "metadata");
    const char *detected = json_string_value(json_object_get(channel, "detected_language"));
    r->text = dup_or_empty(json_string_value(transcript));
    r->language = dup_or_empty(detected ? detected : language);
    r->request_id = dup_or_empty(json_string_value(json_object_get(metadata, "request_id")));
    r->confidence = json_number_value(json_object_get(alt, "confidence"));
    r->duration_s = json_number_value(json_object_get(metadata, "duration"));
    if (r->text == NULL || r->language == NULL || r->request_id == NULL)
        goto out;
    json_t *words = json_object_get(alt, "words");
    size_t count = json_array_size(words);
    if (count > 0 && (r->words = calloc(count, sizeof *r->words)) == NULL)
        goto out;
    for (size_t i = 0; i < count; i++) {
        json_t *w = json_array_get(words, i);
        const char *text = json_string_value(json_object_get(w, "punctuated_word"));
        if (text == NULL)
            text = json_string_value(json_object_get(w, "word"));
        if (text == NULL)
            continue; /* not a word as documented: skip it rather than fail */
        tw_deepgram_word *o = &r->words[r->n_words];
        if ((o->word = strdup(text)) == NULL)
            goto out;
        o->start_s = json_number_value(json_object_get(w, "start"));
        o->end_s = json_number_value(json_object_get(w, "end"));
        o->confidence = json_number_value(json_object_get(w, "confidence"));
        r->n_words++;
    }
    *out = r;
    r = NULL;
    err = TW_OK;
out:
    tw_deepgram_result_free(r);
    json_decref(root);
    return err;
}
