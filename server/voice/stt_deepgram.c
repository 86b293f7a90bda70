/*
 * The Deepgram engine (stt.h) over clients/deepgram.h: the stored recording
 * is sent as is, read from blob storage through tw_audio_input (rewound by
 * seeking to 0 when the client retries), with the note's language and its
 * vocabulary as keyterms; Deepgram's answer becomes the transcript.
 *
 * Deepgram's refusals (400: audio it cannot use, 401/403: the key) are
 * final: TW_ERR_VALIDATION, and the note fails with why. Timeouts, 429 and
 * 5xx, and an open circuit breaker are passing: TW_ERR_UPSTREAM, and the
 * transcription job runs again after its backoff.
 */
#include "stt.h"

#include "deepgram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYTERMS_MAX      100 /* Deepgram's limit per request */
#define KEYTERM_MAX_BYTES 100
#define LANGUAGE_MAX      35

struct deepgram_engine {
    tw_stt_engine base;
    tw_deepgram *client; /* borrowed: the app's */
};

static bool dg_supports_language(tw_stt_engine *e, const char *language)
{
    size_t n = strlen(language);
    if (n == 0 || n > LANGUAGE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = language[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

static bool dg_term_valid(tw_stt_engine *e, const tw_stt_term *term, char *why, size_t whylen)
{
    /* A pronunciation is PocketSphinx's business; Deepgram takes the phrase. */
    if (strlen(term->phrase) > KEYTERM_MAX_BYTES) {
        snprintf(why, whylen, "a phrase is at most %d bytes for Deepgram", KEYTERM_MAX_BYTES);
        return false;
    }
    return true;
}

static const char *content_type(tw_audio_format format)
{
    switch (format) {
    case TW_AUDIO_WAV:
        return "audio/wav";
    case TW_AUDIO_MP3:
        return "audio/mpeg";
    case TW_AUDIO_M4A:
        return "audio/mp4";
    case TW_AUDIO_WEBM:
        return "audio/webm";
    case TW_AUDIO_UNKNOWN:
        break;
    }
    return "application/octet-stream";
}

/* tw_http_read_fn and tw_http_rewind_fn over a tw_audio_input. */
static tw_err input_read(void *ctx, void *buf, size_t cap, size_t *n)
{
    const tw_audio_input *in = ctx;
    return in->read(in->ctx, buf, cap, n);
}

static tw_err input_rewind(void *ctx)
{
    const tw_audio_input *in = ctx;
    return in->seek(in->ctx, 0);
}

static double clamp01(double x)
{
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

/* The client's result as a transcript in arena. */
static tw_err to_transcript(const tw_deepgram_result *r, tw_arena *arena, tw_transcript *out)
{
    *out = (tw_transcript){.text = tw_arena_strdup(arena, r->text),
                           .language = tw_arena_strdup(arena, r->language),
                           .confidence = (float)clamp01(r->confidence),
                           .nwords = r->n_words,
                           .duration_ms =
                               r->duration_s > 0 ? (int64_t)(r->duration_s * 1000 + 0.5) : -1,
                           .engine = "deepgram"};
    if (r->n_words > 0)
        out->words = tw_arena_alloc(arena, r->n_words * sizeof *out->words);
    if (out->text == NULL || out->language == NULL || (r->n_words > 0 && out->words == NULL))
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0; i < r->n_words; i++) {
        const tw_deepgram_word *w = &r->words[i];
        out->words[i] = (tw_stt_word){.word = tw_arena_strdup(arena, w->word),
                                      .start_ms = (int64_t)(w->start_s * 1000 + 0.5),
                                      .end_ms = (int64_t)(w->end_s * 1000 + 0.5),
                                      .confidence = (float)clamp01(w->confidence)};
        if (out->words[i].word == NULL)
            return TW_ERR_NO_MEMORY;
    }
    return TW_OK;
}

static tw_err dg_transcribe(tw_stt_engine *base, const tw_stt_request *req, tw_arena *arena,
                            tw_transcript *out, char *why, size_t whylen)
{
    struct deepgram_engine *e = (struct deepgram_engine *)base;
    size_t nterms = req->nvocabulary < KEYTERMS_MAX ? req->nvocabulary : KEYTERMS_MAX;
    const char **terms = tw_arena_alloc(arena, (nterms + 1) * sizeof *terms);
    if (terms == NULL)
        return TW_ERR_NO_MEMORY;
    size_t n = 0;
    for (size_t i = 0; i < nterms; i++)
        if (req->vocabulary[i].phrase[0] != '\0')
            terms[n++] = req->vocabulary[i].phrase;

    tw_deepgram_audio audio = {.content_type = content_type(req->format),
                               .size = (int64_t)req->input.size,
                               .read = input_read,
                               .rewind = input_rewind,
                               .ctx = (void *)&req->input};
    tw_deepgram_options opts = {
        .language = req->language, .keyterms = terms, .n_keyterms = n, .cancel = req->abort};
    tw_deepgram_result *result = NULL;
    tw_upstream_error uerr;
    tw_err err = tw_deepgram_transcribe(e->client, &audio, &opts, &result, &uerr);
    if (err == TW_OK) {
        err = to_transcript(result, arena, out);
        tw_deepgram_result_free(result);
        return err;
    }
    if (err == TW_ERR_CANCELLED)
        return err;
    if (err == TW_ERR_VALIDATION) {
        snprintf(why, whylen, "Deepgram cannot take this language or vocabulary");
        return err;
    }
    if (err != TW_ERR_UPSTREAM) {
        snprintf(why, whylen, "reading the recording for Deepgram: %s", tw_err_message(err));
        return err;
    }
    snprintf(why, whylen, "%s", uerr.reason[0] ? uerr.reason : "Deepgram failed");
    out->retry_after_ms = uerr.retry_after_ms > 0 ? uerr.retry_after_ms : 0;
    /* 400 (the audio) and 401/403 (the key) will not change by trying again. */
    return uerr.retryable ? TW_ERR_UPSTREAM : TW_ERR_VALIDATION;
}

static void dg_free(tw_stt_engine *base)
{
    free(base);
}

static const struct tw_stt_ops deepgram_ops = {
    .name = "deepgram",
    .supports_language = dg_supports_language,
    .term_valid = dg_term_valid,
    .transcribe = dg_transcribe,
    .free = dg_free,
};

tw_err tw_stt_deepgram_new(tw_deepgram *client, tw_stt_engine **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    if (client == NULL) {
        snprintf(errbuf, errlen, "voice_engine=deepgram needs setting deepgram_api_key");
        return TW_ERR_VALIDATION;
    }
    struct deepgram_engine *e = calloc(1, sizeof *e);
    if (e == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return TW_ERR_NO_MEMORY;
    }
    e->base.ops = &deepgram_ops;
    e->client = client;
    *out = &e->base;
    return TW_OK;
}
