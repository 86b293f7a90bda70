/*
 * The voice feature (voice.h): start, shutdown and stop, settings and
 * statistics. Its parts live beside it: the notes in the store in
 * voice_notes.c, live sessions in voice_live.c, transcription jobs in
 * voice_transcribe.c, the observer in voice_observer.c and the retention sweep in
 * voice_retention.c.
 *
 * Locks: v->lock guards the lists of parked live sessions and running
 * transcriptions, and the observer; each live session has a lock of its
 * own for its queue. Neither is held across decoding, the store's commits
 * or blob storage.
 */
#include "voice_internal.h"

#include "jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_DEFAULT_MS (60 * 60 * 1000)
#define IO_THREADS       4
#define IO_QUEUE         1024
#define LIVE_QUEUE       256

int64_t voice_now_ms(const tw_voice *v)
{
    return tw_store_now_ms(v->store);
}

uint64_t tw_voice_max_bytes(const tw_voice *v)
{
    return v->max_bytes;
}

tw_stt_engine *tw_voice_engine(tw_voice *v)
{
    return v->engine;
}

tw_blob_store *tw_voice_blobs(tw_voice *v)
{
    return v->blobs;
}

tw_pool *tw_voice_pool(tw_voice *v)
{
    return v->io_pool;
}

const char *tw_voice_blob_key(const tw_id *user, const tw_id *note, tw_arena *arena)
{
    char u[TW_ID_TEXT_SIZE], n[TW_ID_TEXT_SIZE];
    tw_id_format(user, u);
    tw_id_format(note, n);
    return tw_arena_printf(arena, "%s/%s", u, n);
}

void tw_voice_get_stats(tw_voice *v, tw_voice_stats *out)
{
    *out = (tw_voice_stats){
        .live_opened = atomic_load(&v->live_opened),
        .live_behind = atomic_load(&v->live_behind),
        .live_adopted = atomic_load(&v->live_adopted),
        .live_ready = atomic_load(&v->live_ready),
        .transcribed = atomic_load(&v->transcribed),
        .failed = atomic_load(&v->failed),
    };
}

tw_err tw_voice_engine_from_config(const tw_config *cfg, struct tw_deepgram *deepgram,
                                   tw_stt_engine **out, char *errbuf, size_t errlen)
{
    switch (cfg->voice_engine) {
    case TW_VOICE_ENGINE_POCKETSPHINX: {
        tw_pocketsphinx_options opts = {
            .model_dir = cfg->voice_model_dir,
            .batch_decoders = (int)cfg->voice_transcribers,
            .live_decoders = (int)cfg->voice_live_decoders,
        };
        return tw_stt_pocketsphinx_new(&opts, out, errbuf, errlen);
    }
    case TW_VOICE_ENGINE_DEEPGRAM:
        return tw_stt_deepgram_new(deepgram, out, errbuf, errlen);
    }
    snprintf(errbuf, errlen, "unknown voice_engine");
    return TW_ERR_VALIDATION;
}

tw_voice_options tw_voice_options_from_config(const tw_config *cfg, tw_stt_engine *engine)
{
    return (tw_voice_options){
        .engine = engine,
        .max_bytes = (uint64_t)cfg->voice_max_bytes,
        .retention_ms = cfg->voice_retention_days * 24 * 60 * 60 * 1000,
        .transcribers = (int)cfg->voice_transcribers,
        .live_threads = (int)cfg->voice_live_decoders,
        .job_lease_ms = cfg->voice_job_lease_s * 1000,
        .job_attempts = (uint32_t)cfg->voice_job_attempts,
    };
}

tw_err tw_voice_start(tw_app *app, const tw_voice_options *opts, char *errbuf, size_t errlen)
{
    tw_voice *v = calloc(1, sizeof *v);
    if (v == NULL) {
        tw_stt_free(opts->engine);
        snprintf(errbuf, errlen, "out of memory");
        return TW_ERR_NO_MEMORY;
    }
    v->app = app;
    v->store = app->store;
    v->blobs = app->blobs;
    v->engine = opts->engine;
    v->max_bytes = opts->max_bytes;
    v->retention_ms = opts->retention_ms;
    v->job_attempts = opts->job_attempts > 0 ? opts->job_attempts : 10;
    v->sweep_interval_ms = opts->sweep_interval_ms ? opts->sweep_interval_ms : SWEEP_DEFAULT_MS;
    pthread_mutex_init(&v->lock, NULL);
    pthread_mutex_init(&v->sweep_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&v->sweep_wake, &attr);
    pthread_condattr_destroy(&attr);
    app->voice = v;

    int live_threads = opts->live_threads > 0 ? opts->live_threads : 1;
    tw_err err = tw_pool_new("voice-io", IO_THREADS, IO_QUEUE, &v->io_pool);
    if (err == TW_OK)
        err = tw_pool_new("voice-live", live_threads, LIVE_QUEUE, &v->live_pool);
    /* Live decoders load when needed (voice_live_load): about 90 MB each,
     * not held by a twd that no WAV upload has used for a while. */
    if (err == TW_OK && opts->preload_live_decoders)
        voice_live_load(v);
    /* Transcriptions run on workers of their own (voice_transcribers), so a
     * long recording never holds up other kinds of jobs. */
    v->job_types[0] = (tw_job_type){TW_VOICE_JOB_TYPE, voice_transcribe_job, opts->job_lease_ms};
    if (err == TW_OK)
        err = tw_jobs_start(app, v->job_types, opts->transcribers > 0 ? opts->transcribers : 1,
                            &v->runner);
    if (err == TW_OK && opts->sweep_interval_ms >= 0)
        err = voice_sweeper_start(v);
    if (err) {
        snprintf(errbuf, errlen, "cannot start voice notes' threads");
        tw_voice_stop(v);
    }
    return err;
}

void tw_voice_shutdown(tw_voice *v)
{
    if (v == NULL || atomic_exchange(&v->stopping, true))
        return;
    pthread_mutex_lock(&v->lock);
    voice_transcriptions_abort_locked(v);
    pthread_mutex_unlock(&v->lock);
    voice_observer_stopping(v);
}

void tw_voice_stop(tw_voice *v)
{
    if (v == NULL)
        return;
    tw_voice_shutdown(v);
    tw_jobs_stop(v->runner);
    voice_sweeper_stop(v);
    voice_live_abandon_parked(v);
    tw_pool_free(v->io_pool);
    tw_pool_free(v->live_pool); /* runs what is queued: frees included */
    tw_stt_free(v->engine);
    pthread_mutex_destroy(&v->lock);
    pthread_mutex_destroy(&v->sweep_lock);
    pthread_cond_destroy(&v->sweep_wake);
    if (v->app->voice == v)
        v->app->voice = NULL;
    free(v);
}
