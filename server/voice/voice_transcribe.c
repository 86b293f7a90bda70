/*
 * Transcription (voice.h): the job that turns a stored note's audio into a
 * transcript, finishing the note's live session when it has one, reading
 * the audio from blob storage otherwise; the list of transcriptions
 * running, so a delete, a retranscription or a shutdown can stop them.
 */
#include "voice_internal.h"

#include "pbtime.h"
#include "tw_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading audio from blob storage ------------------------------------- */

static tw_err blob_read(void *ctx, uint8_t *buf, size_t cap, size_t *n)
{
    struct voice_blob_input *in = ctx;
    /* A seek whose reopen failed (the note was deleted under a running
     * transcription) left no reader; the decoder may read on regardless. */
    if (in->reader == NULL)
        return TW_ERR_NOT_FOUND;
    return tw_blob_reader_read(in->reader, buf, cap, n);
}

static tw_err blob_seek(void *ctx, uint64_t offset)
{
    struct voice_blob_input *in = ctx;
    tw_blob_reader_close(in->reader);
    in->reader = NULL;
    return tw_blob_reader_open(in->blobs, in->key, offset, &in->reader, NULL);
}

tw_err voice_blob_input_open(struct voice_blob_input *in, tw_blob_store *blobs, const char *key,
                             uint64_t offset, tw_audio_input *out)
{
    *in = (struct voice_blob_input){blobs, key, NULL};
    tw_blob_info info;
    tw_err err = tw_blob_reader_open(blobs, key, offset, &in->reader, &info);
    if (err)
        return err;
    *out = (tw_audio_input){.read = blob_read, .seek = blob_seek, .size = info.size, .ctx = in};
    return TW_OK;
}

void voice_blob_input_close(struct voice_blob_input *in)
{
    tw_blob_reader_close(in->reader);
    in->reader = NULL;
}

int64_t tw_voice_probe_duration(tw_voice *v, const char *blob_key, tw_audio_format format)
{
    struct voice_blob_input bi;
    tw_audio_input in;
    int64_t ms = -1;
    if (voice_blob_input_open(&bi, v->blobs, blob_key, 0, &in) == TW_OK &&
        tw_audio_probe_duration(&in, format, &ms) != TW_OK)
        ms = -1;
    voice_blob_input_close(&bi);
    return ms;
}

/* ---- running transcriptions ------------------------------------------------------ */

struct voice_active {
    tw_id note;
    uint32_t generation;
    atomic_bool abort;
    struct voice_active *next;
};

static void active_add(tw_voice *v, struct voice_active *a)
{
    pthread_mutex_lock(&v->lock);
    a->next = v->active;
    v->active = a;
    if (atomic_load(&v->stopping))
        atomic_store(&a->abort, true);
    pthread_mutex_unlock(&v->lock);
}

static void active_remove(tw_voice *v, struct voice_active *a)
{
    pthread_mutex_lock(&v->lock);
    struct voice_active **p = &v->active;
    while (*p != NULL && *p != a)
        p = &(*p)->next;
    if (*p != NULL)
        *p = a->next;
    pthread_mutex_unlock(&v->lock);
}

void voice_transcriptions_abort_locked(tw_voice *v)
{
    for (struct voice_active *a = v->active; a != NULL; a = a->next)
        atomic_store(&a->abort, true);
}

void voice_abort_transcriptions(tw_voice *v, const tw_id *note, uint32_t keep)
{
    pthread_mutex_lock(&v->lock);
    for (struct voice_active *a = v->active; a != NULL; a = a->next)
        if (memcmp(&a->note, note, sizeof *note) == 0 && a->generation != keep)
            atomic_store(&a->abort, true);
    pthread_mutex_unlock(&v->lock);
}

/* ---- the transcription job ---------------------------------------------------------- */

enum outcome_kind { OUTCOME_STARTED, OUTCOME_TRANSCRIBED, OUTCOME_FAILED };

struct outcome {
    tw_voice *v;
    const tw_id *user, *note;
    uint32_t generation;
    enum outcome_kind kind;
    const tw_transcript *transcript;
    const char *reason;
    tw_arena *arena;
    bool stale; /* deleted, or retranscribed since the job was enqueued */
    bool wrote;
    Tw__Store__V1__VoiceNoteRecord *rec; /* as found */
};

static Tw__V1__Transcript *transcript_message(tw_arena *arena, const tw_transcript *t, int64_t now)
{
    Tw__V1__Transcript *m = tw_arena_alloc(arena, sizeof *m);
    Tw__V1__TranscriptWord **words =
        t->nwords ? tw_arena_alloc(arena, t->nwords * sizeof *words) : NULL;
    if (m == NULL || (t->nwords && words == NULL))
        return NULL;
    tw__v1__transcript__init(m);
    m->text = (char *)t->text;
    m->language = (char *)t->language;
    m->confidence = t->confidence;
    m->engine = (char *)t->engine;
    m->complete_time = tw_timestamp_new(arena, now);
    for (size_t i = 0; i < t->nwords; i++) {
        Tw__V1__TranscriptWord *w = tw_arena_alloc(arena, sizeof *w);
        if (w == NULL)
            return NULL;
        tw__v1__transcript_word__init(w);
        w->word = (char *)t->words[i].word;
        w->start_offset = tw_duration_new(arena, t->words[i].start_ms);
        w->end_offset = tw_duration_new(arena, t->words[i].end_ms);
        w->confidence = t->words[i].confidence;
        words[i] = w;
    }
    m->words = words;
    m->n_words = t->nwords;
    return m;
}

static tw_err outcome_apply(tw_txn *t, void *ctx)
{
    struct outcome *o = ctx;
    o->stale = o->wrote = false;
    Tw__Store__V1__VoiceNoteRecord *old;
    tw_err err = voice_record_load(o->v, t, o->user, o->note, o->arena, &old);
    if (err == TW_ERR_NOT_FOUND || (err == TW_OK && old->generation != o->generation)) {
        o->stale = true;
        return TW_OK;
    }
    if (err)
        return err;
    o->rec = old;
    Tw__V1__VoiceNoteStatus status = old->note->status;
    bool final = status == TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBED ||
                 status == TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_FAILED;
    if (final || (o->kind == OUTCOME_STARTED &&
                  status != TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_PENDING))
        return TW_OK;
    Tw__Store__V1__VoiceNoteRecord *rec = tw_arena_alloc(o->arena, sizeof *rec);
    Tw__V1__VoiceNote *note = tw_arena_alloc(o->arena, sizeof *note);
    if (rec == NULL || note == NULL)
        return TW_ERR_NO_MEMORY;
    *rec = *old;
    *note = *old->note;
    rec->note = note;
    int64_t now = voice_now_ms(o->v);
    note->update_time = tw_timestamp_new(o->arena, now);
    const char *counted = NULL;
    switch (o->kind) {
    case OUTCOME_STARTED:
        note->status = TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBING;
        break;
    case OUTCOME_TRANSCRIBED:
        note->status = TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBED;
        note->failure_reason = "";
        note->transcript = transcript_message(o->arena, o->transcript, now);
        if (note->transcript == NULL)
            return TW_ERR_NO_MEMORY;
        if (note->duration == NULL && o->transcript->duration_ms >= 0)
            note->duration = tw_duration_new(o->arena, o->transcript->duration_ms);
        counted = "status=transcribed";
        break;
    case OUTCOME_FAILED:
        note->status = TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_FAILED;
        note->failure_reason = (char *)o->reason;
        note->transcript = NULL;
        counted = "status=failed";
        break;
    }
    err = voice_record_put(t, o->user, o->note, old, rec);
    if (err == TW_OK && counted != NULL) {
        tw_counter counter = {.name = "voice_transcriptions", .dims = counted};
        err = tw_txn_counter_add(t, &counter, tw_store_day(now), 1);
    }
    o->wrote = err == TW_OK;
    return err;
}

/* Writes an outcome (if the note is still this generation's) and tells the
 * note's watches. */
static tw_err save_outcome(struct outcome *o)
{
    tw_err err = tw_txn_run(o->v->store, outcome_apply, o);
    if (err == TW_OK && o->wrote) {
        if (o->kind == OUTCOME_TRANSCRIBED)
            atomic_fetch_add(&o->v->transcribed, 1);
        else if (o->kind == OUTCOME_FAILED)
            atomic_fetch_add(&o->v->failed, 1);
        voice_notify(o->v, o->user, o->note);
    }
    return err;
}

/* Transcribes the note's audio: finishing its live session when it has
 * one, else the whole recording. */
static tw_err transcribe(tw_voice *v, const Tw__Store__V1__VoiceNoteRecord *rec,
                         tw_voice_live *live, const atomic_bool *abort, tw_arena *arena,
                         tw_transcript *out, char *why, size_t whylen)
{
    const Tw__V1__VoiceNote *note = rec->note;
    tw_stt_term *terms = tw_arena_alloc(arena, (note->n_vocabulary + 1) * sizeof *terms);
    if (terms == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0; i < note->n_vocabulary; i++)
        terms[i] = (tw_stt_term){note->vocabulary[i]->phrase, note->vocabulary[i]->pronunciation};

    if (live != NULL) {
        bool used;
        tw_err err =
            voice_live_finish(v, live, rec->blob_key, abort, arena, out, why, whylen, &used);
        if (used)
            return err;
    }
    struct voice_blob_input bi;
    tw_stt_request req = {.format = (tw_audio_format)note->format,
                          .language = note->language,
                          .vocabulary = terms,
                          .nvocabulary = note->n_vocabulary,
                          .abort = abort};
    tw_err err = voice_blob_input_open(&bi, v->blobs, rec->blob_key, 0, &req.input);
    if (err == TW_OK)
        err = tw_stt_transcribe(v->engine, &req, arena, out, why, whylen);
    voice_blob_input_close(&bi);
    return err;
}

static tw_err run_job(tw_voice *v, const tw_job *job, tw_arena *arena, tw_job_failure *failure)
{
    char *error = failure->error;
    size_t errlen = sizeof failure->error;
    ProtobufCAllocator alloc = voice_allocator(arena);
    Tw__Store__V1__VoiceTranscribeJob *p =
        tw__store__v1__voice_transcribe_job__unpack(&alloc, job->payload_len, job->payload);
    if (p == NULL || p->user_id.len != TW_ID_BYTES || p->note_id.len != TW_ID_BYTES) {
        /* It can never run: done with it. */
        tw_log(TW_LOG_ERROR, "voice job with a bad payload dropped", NULL);
        return TW_OK;
    }
    tw_id user, note;
    memcpy(user.bytes, p->user_id.data, TW_ID_BYTES);
    memcpy(note.bytes, p->note_id.data, TW_ID_BYTES);
    if (atomic_load(&v->stopping)) {
        snprintf(error, errlen, "interrupted: twd is stopping");
        return TW_ERR_SHUTTING_DOWN;
    }

    struct outcome o = {.v = v,
                        .user = &user,
                        .note = &note,
                        .generation = p->generation,
                        .kind = OUTCOME_STARTED,
                        .arena = arena};
    tw_err err = save_outcome(&o);
    if (err == TW_OK &&
        (o.stale || o.rec == NULL ||
         (o.rec->note->status != TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_PENDING &&
          o.rec->note->status != TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBING))) {
        /* Deleted, retranscribed, or already done by an earlier run. */
        tw_voice_live_abandon(voice_live_take(v, &note, p->generation));
        return TW_OK;
    }
    if (err) {
        snprintf(error, errlen, "cannot mark the note transcribing: %s", tw_store_last_error());
        return err;
    }

    struct voice_active active = {.note = note, .generation = p->generation};
    active_add(v, &active);
    tw_voice_live *live = voice_live_take(v, &note, p->generation);
    tw_transcript transcript = {0};
    char why[512] = "";
    err = transcribe(v, o.rec, live, &active.abort, arena, &transcript, why, sizeof why);
    tw_voice_live_abandon(live);
    active_remove(v, &active);

    o.kind = OUTCOME_TRANSCRIBED;
    o.transcript = &transcript;
    if (err == TW_ERR_CANCELLED) {
        if (atomic_load(&v->stopping)) {
            snprintf(error, errlen, "interrupted: twd is stopping");
            return TW_ERR_SHUTTING_DOWN;
        }
        return TW_OK; /* deleted or retranscribed meanwhile */
    }
    if (err == TW_ERR_VALIDATION) {
        o.kind = OUTCOME_FAILED;
        o.reason = tw_arena_printf(arena, "the note cannot be transcribed: %s", why);
    } else if (err && job->attempts >= job->max_attempts) {
        o.kind = OUTCOME_FAILED;
        o.reason = tw_arena_printf(arena, "transcription failed %u times, last: %s", job->attempts,
                                   why[0] ? why : tw_err_message(err));
    } else if (err) {
        snprintf(error, errlen, "%s", why[0] ? why : tw_err_message(err));
        failure->retry_after_ms = transcript.retry_after_ms;
        return err;
    }
    err = save_outcome(&o);
    if (err)
        snprintf(error, errlen, "cannot store the transcript: %s", tw_store_last_error());
    return err;
}

tw_err voice_transcribe_job(tw_app *app, const tw_job *job, tw_job_failure *failure)
{
    tw_arena *arena = tw_arena_new(16384);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err = run_job(app->voice, job, arena, failure);
    tw_arena_free(arena);
    return err;
}
