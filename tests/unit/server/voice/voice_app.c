/* The voice tests' shared set-up (voice_app.h). */
#include "voice_app.h"

#include "tw_check.h"

#include <stdlib.h>
#include <string.h>

atomic_int va_transcriptions, va_prepares, va_frees;
tw_app va_app;

static bool any_language(tw_stt_engine *e, const char *language)
{
    return true;
}

static bool any_term(tw_stt_engine *e, const tw_stt_term *term, char *why, size_t whylen)
{
    return true;
}

static tw_err transcribe(tw_stt_engine *e, const tw_stt_request *req, tw_arena *arena,
                         tw_transcript *out, char *why, size_t whylen)
{
    atomic_fetch_add(&va_transcriptions, 1);
    *out = (tw_transcript){.text = VA_TRANSCRIPT,
                           .language = req->language,
                           .confidence = 0.5f,
                           .duration_ms = 1500,
                           .engine = VA_ENGINE};
    return TW_OK;
}

static void prepare(tw_stt_engine *e)
{
    atomic_fetch_add(&va_prepares, 1);
}

static void engine_free(tw_stt_engine *e)
{
    atomic_fetch_add(&va_frees, 1);
    free(e);
}

static const struct tw_stt_ops fake_ops = {
    .name = VA_ENGINE,
    .supports_language = any_language,
    .term_valid = any_term,
    .transcribe = transcribe,
    .prepare = prepare,
    .free = engine_free,
};

tw_stt_engine *va_engine_new(void)
{
    tw_stt_engine *e = malloc(sizeof *e);
    ck_assert_ptr_nonnull(e);
    e->ops = &fake_ops;
    return e;
}

tw_voice_options va_options(void)
{
    return (tw_voice_options){
        .engine = va_engine_new(),
        .max_bytes = 1 << 20,
        .retention_ms = 90LL * 24 * 3600 * 1000,
        .transcribers = 1,
        .live_threads = 1,
        .job_lease_ms = 60000,
        .sweep_interval_ms = -1,
    };
}

void va_start(const tw_voice_options *opts, bool run_jobs)
{
    atomic_store(&va_transcriptions, 0);
    atomic_store(&va_prepares, 0);
    atomic_store(&va_frees, 0);
    va_app = (tw_app){.store = fx.store, .blobs = fxb.blobs};
    char errbuf[256] = "";
    ck_assert_msg(tw_voice_start(&va_app, opts, errbuf, sizeof errbuf) == TW_OK, "%s", errbuf);
    if (!run_jobs)
        tw_voice_shutdown(va_app.voice);
}

void va_setup(void)
{
    fx_setup();
    fxb_setup();
    tw_voice_options opts = va_options();
    va_start(&opts, false);
}

void va_teardown(void)
{
    tw_voice_stop(va_app.voice);
    fxb_teardown();
    fx_teardown();
}

void va_put_blob(const char *key, const char *bytes)
{
    tw_blob_writer *w;
    ck_assert_int_eq(tw_blob_writer_open(fxb.blobs, key, &w), TW_OK);
    ck_assert_int_eq(tw_blob_writer_append(w, bytes, strlen(bytes)), TW_OK);
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
}

struct create_note {
    const tw_id *user;
    const Tw__V1__VoiceNote *note;
    const char *blob_key;
    tw_arena *arena;
    Tw__V1__VoiceNote **out;
};

static tw_err create_note_txn(tw_txn *t, void *ctx)
{
    struct create_note *c = ctx;
    return tw_txn_voice_note_create(t, va_app.voice, c->user, c->note, c->blob_key, false,
                                    c->arena, c->out);
}

tw_err va_create_note(const tw_id *user, const Tw__V1__VoiceNote *note, const char *blob_key,
                      tw_arena *arena, Tw__V1__VoiceNote **out)
{
    tw_id id;
    if (!tw_id_parse(note->id, &id))
        memset(&id, 0, sizeof id);
    struct create_note c = {user, note, blob_key, arena, out};
    tw_voice_note_prepare(va_app.voice, &id, NULL);
    tw_err err = tw_txn_run(fx.store, create_note_txn, &c);
    tw_voice_note_created(va_app.voice, &id, err == TW_OK);
    return err;
}
