/*
 * The voice feature's running parts (voice.h): start and stop, live
 * sessions, transcription jobs, watches and the retention sweep. The notes'
 * storage is in voice_notes.c.
 *
 * Locks: v->lock guards the lists of parked live sessions, running
 * transcriptions and watches, and is held while a watch sends (sends never
 * block); each live session has a lock of its own for its queue. Neither is
 * held across decoding, the store's commits or blob storage.
 */
#include "voice_internal.h"

#include "jobs.h"
#include "tw_log.h"
#include "tw_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longer than the slowest transcription: 25 MiB of low-bitrate audio is
 * over an hour of speech, which PocketSphinx hears in several minutes. */
#define JOB_LEASE_MS     (30 * 60 * 1000)
#define SWEEP_DEFAULT_MS (60 * 60 * 1000)
/* Audio without a note is kept this long first: an upload commits its
 * audio a moment before its note. */
#define ORPHAN_AGE_MS (60 * 60 * 1000)
#define SWEEP_BATCH   128
#define IO_THREADS    4
#define IO_QUEUE      1024
#define LIVE_QUEUE    256

static int64_t wall_clock_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tw_voice_now_ms(const tw_voice *v)
{
    return v->clock_ms(v->clock_ctx);
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

/* ---- reading audio from blob storage ------------------------------------- */

struct blob_input {
    tw_blob_store *blobs;
    const char *key;
    tw_blob_reader *reader;
};

static tw_err blob_read(void *ctx, uint8_t *buf, size_t cap, size_t *n)
{
    struct blob_input *in = ctx;
    /* A seek whose reopen failed (the note was deleted under a running
     * transcription) left no reader; the decoder may read on regardless. */
    if (in->reader == NULL)
        return TW_ERR_NOT_FOUND;
    return tw_blob_reader_read(in->reader, buf, cap, n);
}

static tw_err blob_seek(void *ctx, uint64_t offset)
{
    struct blob_input *in = ctx;
    tw_blob_reader_close(in->reader);
    in->reader = NULL;
    return tw_blob_reader_open(in->blobs, in->key, offset, &in->reader, NULL);
}

/* A tw_audio_input over the blob, positioned at offset. */
static tw_err blob_input_open(struct blob_input *in, tw_blob_store *blobs, const char *key,
                              uint64_t offset, tw_audio_input *out)
{
    *in = (struct blob_input){blobs, key, NULL};
    tw_blob_info info;
    tw_err err = tw_blob_reader_open(blobs, key, offset, &in->reader, &info);
    if (err)
        return err;
    *out = (tw_audio_input){.read = blob_read, .seek = blob_seek, .size = info.size, .ctx = in};
    return TW_OK;
}

static void blob_input_close(struct blob_input *in)
{
    tw_blob_reader_close(in->reader);
    in->reader = NULL;
}

int64_t tw_voice_probe_duration(tw_voice *v, const char *blob_key, tw_audio_format format)
{
    struct blob_input bi;
    tw_audio_input in;
    int64_t ms = -1;
    if (blob_input_open(&bi, v->blobs, blob_key, 0, &in) == TW_OK &&
        tw_audio_probe_duration(&in, format, &ms) != TW_OK)
        ms = -1;
    blob_input_close(&bi);
    return ms;
}

/* ---- live sessions ----------------------------------------------------------- */

struct chunk {
    struct chunk *next;
    size_t len;
    uint8_t data[];
};

struct tw_voice_live {
    tw_voice *v;
    tw_stt_live *session;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    struct chunk *head, *tail;
    size_t queued;
    bool running;   /* a drain task is queued or running */
    bool failed;    /* the decoder refused the audio: transcribe it whole instead */
    bool behind;    /* stopped taking bytes: the rest comes from blob storage */
    bool abandoned; /* the upload failed: free once idle */
    /* Parked under a stored note. */
    tw_id note;
    uint32_t generation;
    tw_voice_live *next;
};

static void drop_chunks_locked(tw_voice_live *l)
{
    while (l->head != NULL) {
        struct chunk *c = l->head;
        l->head = c->next;
        free(c);
    }
    l->tail = NULL;
    l->queued = 0;
}

static void live_free(tw_voice_live *l)
{
    drop_chunks_locked(l);
    tw_stt_live_free(l->session);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->idle);
    free(l);
}

tw_voice_live *tw_voice_live_open(tw_voice *v, tw_audio_format format, const char *language,
                                  const tw_stt_term *vocabulary, size_t nvocabulary)
{
    if (atomic_load(&v->stopping))
        return NULL;
    tw_stt_request req = {.format = format,
                          .language = language,
                          .vocabulary = vocabulary,
                          .nvocabulary = nvocabulary};
    tw_stt_live *session;
    if (tw_stt_live_open(v->engine, &req, &session) != TW_OK)
        return NULL;
    tw_voice_live *l = calloc(1, sizeof *l);
    if (l == NULL) {
        tw_stt_live_free(session);
        return NULL;
    }
    l->v = v;
    l->session = session;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->idle, NULL);
    atomic_fetch_add(&v->live_opened, 1);
    return l;
}

/* Decodes queued chunks until none is left, on the live pool. */
static void live_drain(void *arg)
{
    tw_voice_live *l = arg;
    for (;;) {
        pthread_mutex_lock(&l->lock);
        struct chunk *c = l->head;
        bool stop = c == NULL || l->abandoned || l->failed || atomic_load(&l->v->stopping);
        if (stop) {
            if (c != NULL) {
                /* Stopping with bytes undecoded: the job reads them again. */
                drop_chunks_locked(l);
                l->behind = true;
            }
            l->running = false;
            bool free_now = l->abandoned;
            pthread_cond_broadcast(&l->idle);
            pthread_mutex_unlock(&l->lock);
            if (free_now)
                live_free(l);
            return;
        }
        l->head = c->next;
        if (l->head == NULL)
            l->tail = NULL;
        l->queued -= c->len;
        pthread_mutex_unlock(&l->lock);

        char why[256] = "";
        tw_err err = tw_stt_live_feed(l->session, c->data, c->len, why, sizeof why);
        free(c);
        if (err) {
            tw_log(TW_LOG_DEBUG, "live decoding gave up; the note is transcribed whole",
                   json_pack("{s:s, s:s}", "reason", tw_err_name(err), "detail", why));
            pthread_mutex_lock(&l->lock);
            l->failed = true;
            pthread_mutex_unlock(&l->lock);
        }
    }
}

void tw_voice_live_feed(tw_voice_live *l, const void *bytes, size_t n)
{
    if (l == NULL || n == 0)
        return;
    pthread_mutex_lock(&l->lock);
    if (l->failed || l->behind || l->abandoned) {
        pthread_mutex_unlock(&l->lock);
        return;
    }
    struct chunk *c = l->queued + n <= TW_VOICE_LIVE_BACKLOG ? malloc(sizeof *c + n) : NULL;
    if (c == NULL) {
        l->behind = true;
        atomic_fetch_add(&l->v->live_behind, 1);
        pthread_mutex_unlock(&l->lock);
        return;
    }
    c->next = NULL;
    c->len = n;
    memcpy(c->data, bytes, n);
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    l->queued += n;
    bool start = !l->running;
    l->running = true;
    pthread_mutex_unlock(&l->lock);
    if (start && tw_pool_submit(l->v->live_pool, live_drain, l) != TW_OK) {
        pthread_mutex_lock(&l->lock);
        drop_chunks_locked(l);
        l->running = false;
        l->behind = true;
        atomic_fetch_add(&l->v->live_behind, 1);
        pthread_cond_broadcast(&l->idle);
        pthread_mutex_unlock(&l->lock);
    }
}

static void live_free_task(void *arg)
{
    live_free(arg);
}

void tw_voice_live_abandon(tw_voice_live *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->lock);
    l->abandoned = true;
    drop_chunks_locked(l);
    bool free_now = !l->running;
    pthread_mutex_unlock(&l->lock);
    /* Ending a decoder's utterance takes a moment: not on an RPC thread. */
    if (free_now && tw_pool_submit(l->v->live_pool, live_free_task, l) != TW_OK)
        live_free(l);
}

void voice_live_park(tw_voice *v, tw_voice_live *l, const tw_id *note, uint32_t generation)
{
    l->note = *note;
    l->generation = generation;
    pthread_mutex_lock(&v->lock);
    l->next = v->parked;
    v->parked = l;
    pthread_mutex_unlock(&v->lock);
}

tw_voice_live *voice_live_take(tw_voice *v, const tw_id *note, uint32_t generation)
{
    pthread_mutex_lock(&v->lock);
    tw_voice_live **p = &v->parked;
    while (*p != NULL && (memcmp(&(*p)->note, note, sizeof *note) != 0 ||
                          (generation != 0 && (*p)->generation != generation)))
        p = &(*p)->next;
    tw_voice_live *l = *p;
    if (l != NULL)
        *p = l->next;
    pthread_mutex_unlock(&v->lock);
    return l;
}

/* Waits until the session's queued bytes are decoded. */
static void live_wait_idle(tw_voice_live *l)
{
    pthread_mutex_lock(&l->lock);
    while (l->running)
        pthread_cond_wait(&l->idle, &l->lock);
    pthread_mutex_unlock(&l->lock);
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
    m->complete_time = tw_voice_timestamp(arena, now);
    for (size_t i = 0; i < t->nwords; i++) {
        Tw__V1__TranscriptWord *w = tw_arena_alloc(arena, sizeof *w);
        if (w == NULL)
            return NULL;
        tw__v1__transcript_word__init(w);
        w->word = (char *)t->words[i].word;
        w->start_offset = tw_voice_duration(arena, t->words[i].start_ms);
        w->end_offset = tw_voice_duration(arena, t->words[i].end_ms);
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
    int64_t now = tw_voice_now_ms(o->v);
    note->update_time = tw_voice_timestamp(o->arena, now);
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
            note->duration = tw_voice_duration(o->arena, o->transcript->duration_ms);
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
        live_wait_idle(live);
        if (!live->failed) {
            struct blob_input bi;
            tw_audio_input rest;
            tw_err err = blob_input_open(&bi, v->blobs, rec->blob_key,
                                         tw_stt_live_offset(live->session), &rest);
            if (err == TW_OK)
                err = tw_stt_live_finish(live->session, &rest, abort, arena, out, why, whylen);
            blob_input_close(&bi);
            if (err == TW_OK)
                atomic_fetch_add(&v->live_adopted, 1);
            /* A failure of the live path (not of the audio) is retried whole. */
            if (err != TW_ERR_VALIDATION)
                return err;
        }
    }
    struct blob_input bi;
    tw_stt_request req = {.format = (tw_audio_format)note->format,
                          .language = note->language,
                          .vocabulary = terms,
                          .nvocabulary = note->n_vocabulary,
                          .abort = abort};
    tw_err err = blob_input_open(&bi, v->blobs, rec->blob_key, 0, &req.input);
    if (err == TW_OK)
        err = tw_stt_transcribe(v->engine, &req, arena, out, why, whylen);
    blob_input_close(&bi);
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

static tw_err transcribe_job(tw_app *app, const tw_job *job, tw_job_failure *failure)
{
    tw_arena *arena = tw_arena_new(16384);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err = run_job(app->voice, job, arena, failure);
    tw_arena_free(arena);
    return err;
}

/* ---- watches ----------------------------------------------------------------------- */

struct voice_watch {
    tw_voice *v;
    tw_call *call;
    tw_id user, note;
    bool sent;
    int last_status;
    int64_t last_update_s, last_update_ns;
    struct voice_watch *next;
};

static bool watch_unlink_locked(tw_voice *v, struct voice_watch *w)
{
    struct voice_watch **p = &v->watches;
    while (*p != NULL && *p != w)
        p = &(*p)->next;
    if (*p == NULL)
        return false;
    *p = w->next;
    return true;
}

/* Ends a watch still listed: whoever unlinks it finishes its call. */
static void watch_end_locked(tw_voice *v, struct voice_watch *w, tw_err err)
{
    if (watch_unlink_locked(v, w))
        tw_call_finish(w->call, err);
}

/* Sends the note when it changed since the last send; ends the watch when
 * the note is final or gone. */
static void watch_push_locked(tw_voice *v, struct voice_watch *w)
{
    tw_arena *arena = tw_arena_new(4096);
    Tw__V1__VoiceNote *note;
    tw_err err = arena ? tw_voice_note_get(v, &w->user, &w->note, arena, &note) : TW_ERR_NO_MEMORY;
    if (err) {
        watch_end_locked(v, w, err);
        tw_arena_free(arena);
        return;
    }
    int64_t s = note->update_time ? note->update_time->seconds : 0;
    int64_t ns = note->update_time ? note->update_time->nanos : 0;
    if (!w->sent || w->last_status != (int)note->status || w->last_update_s != s ||
        w->last_update_ns != ns) {
        Tw__V1__WatchVoiceNoteResponse msg = TW__V1__WATCH_VOICE_NOTE_RESPONSE__INIT;
        msg.voice_note = note;
        err = tw_call_send(w->call, &msg.base);
        w->sent = true;
        w->last_status = (int)note->status;
        w->last_update_s = s;
        w->last_update_ns = ns;
    }
    bool final = note->status == TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBED ||
                 note->status == TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_FAILED;
    if (err || final)
        watch_end_locked(v, w, err);
    tw_arena_free(arena);
}

static void watch_cancelled(tw_call *call, void *ctx)
{
    struct voice_watch *w = ctx;
    pthread_mutex_lock(&w->v->lock);
    watch_end_locked(w->v, w, TW_ERR_CANCELLED);
    pthread_mutex_unlock(&w->v->lock);
}

tw_err tw_voice_watch(tw_voice *v, tw_call *call, const tw_id *user, const tw_id *note)
{
    if (atomic_load(&v->stopping))
        return TW_ERR_SHUTTING_DOWN;
    Tw__V1__VoiceNote *found;
    tw_err err = tw_voice_note_get(v, user, note, tw_call_arena(call), &found);
    if (err)
        return err;
    /* In the call's arena: listed until the call is finished, and a call
     * outlives its finish. */
    struct voice_watch *w = tw_arena_alloc(tw_call_arena(call), sizeof *w);
    if (w == NULL)
        return TW_ERR_NO_MEMORY;
    *w = (struct voice_watch){.v = v, .call = call, .user = *user, .note = *note};
    pthread_mutex_lock(&v->lock);
    w->next = v->watches;
    v->watches = w;
    pthread_mutex_unlock(&v->lock);
    /* Runs at once when the call is already cancelled, unlisting w. */
    tw_call_on_cancel(call, watch_cancelled, w);
    /* Listed first, then read: a change in between is not missed (and one
     * seen twice is sent once). */
    pthread_mutex_lock(&v->lock);
    struct voice_watch *listed = v->watches;
    while (listed != NULL && listed != w)
        listed = listed->next;
    if (listed != NULL)
        watch_push_locked(v, w);
    pthread_mutex_unlock(&v->lock);
    return TW_DEFERRED;
}

void voice_notify(tw_voice *v, const tw_id *user, const tw_id *note)
{
    pthread_mutex_lock(&v->lock);
    struct voice_watch *w = v->watches;
    while (w != NULL) {
        struct voice_watch *next = w->next; /* a push may unlink w */
        if (memcmp(&w->note, note, sizeof *note) == 0 && memcmp(&w->user, user, sizeof *user) == 0)
            watch_push_locked(v, w);
        w = next;
    }
    pthread_mutex_unlock(&v->lock);
}

/* ---- retention ------------------------------------------------------------------------ */

struct aged {
    int64_t create_ms;
    tw_id user, note;
};

/* Up to SWEEP_BATCH notes created before cutoff, oldest first. */
static tw_err aged_notes(tw_voice *v, int64_t cutoff, struct aged *out, size_t *n)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_VOICE_NOTE_BY_AGE);
    tw_store_iter *it;
    tw_err err = tw_store_scan(v->store, &prefix, NULL, 0, false, &it);
    if (err)
        return err;
    *n = 0;
    while (*n < SWEEP_BATCH && tw_store_iter_next(it)) {
        tw_key_reader r;
        tw_store_iter_read_key(it, &r);
        int64_t created;
        tw_key_read_i64(&r, &created);
        tw_key_read_id(&r, &out[*n].user);
        tw_key_read_id(&r, &out[*n].note);
        if (r.err) {
            err = r.err;
            break;
        }
        if (created >= cutoff)
            break;
        out[(*n)++].create_ms = created;
    }
    tw_err closed = tw_store_iter_close(it);
    return err ? err : closed;
}

struct orphans {
    tw_voice *v;
    int64_t before_ms;
    char (*keys)[TW_BLOB_KEY_MAX + 1];
    size_t count, cap;
    tw_err err;
};

/* Audio under "<user-id>/<note-id>" with no note, older than the cutoff. */
static tw_err orphan_check(void *ctx, const char *key, const tw_blob_info *info)
{
    struct orphans *o = ctx;
    char user_text[TW_ID_TEXT_SIZE], note_text[TW_ID_TEXT_SIZE];
    tw_id user, note;
    const char *slash = strchr(key, '/');
    if (slash == NULL || slash - key != TW_ID_TEXT_SIZE - 1 ||
        strlen(slash + 1) != TW_ID_TEXT_SIZE - 1 || info->mtime_ms >= o->before_ms)
        return TW_OK;
    memcpy(user_text, key, TW_ID_TEXT_SIZE - 1);
    user_text[TW_ID_TEXT_SIZE - 1] = '\0';
    memcpy(note_text, slash + 1, TW_ID_TEXT_SIZE);
    if (!tw_id_parse(user_text, &user) || !tw_id_parse(note_text, &note))
        return TW_OK;
    tw_key k;
    tw_key_init(&k, TW_KF_VOICE_NOTE);
    tw_key_id(&k, &user);
    tw_key_id(&k, &note);
    tw_value val;
    tw_arena *arena = tw_arena_new(1024);
    tw_err err = arena ? tw_store_get(o->v->store, &k, arena, &val) : TW_ERR_NO_MEMORY;
    tw_arena_free(arena);
    if (err == TW_OK)
        return TW_OK;
    if (err != TW_ERR_NOT_FOUND)
        return err;
    if (o->count == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        void *keys = realloc(o->keys, cap * sizeof *o->keys);
        if (keys == NULL)
            return TW_ERR_NO_MEMORY;
        o->keys = keys;
        o->cap = cap;
    }
    snprintf(o->keys[o->count++], TW_BLOB_KEY_MAX + 1, "%s", key);
    return TW_OK;
}

tw_err tw_voice_sweep(tw_voice *v, int64_t now_ms, tw_voice_sweep_stats *out)
{
    *out = (tw_voice_sweep_stats){0};
    struct aged *batch = malloc(SWEEP_BATCH * sizeof *batch);
    if (batch == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err;
    size_t n;
    do {
        err = aged_notes(v, now_ms - v->retention_ms, batch, &n);
        for (size_t i = 0; i < n && err == TW_OK; i++) {
            err = tw_voice_note_delete(v, &batch[i].user, &batch[i].note);
            if (err == TW_OK)
                out->notes_deleted++;
            else if (err == TW_ERR_NOT_FOUND) /* its account was deleted */
                err = voice_age_entry_delete(v, batch[i].create_ms, &batch[i].user, &batch[i].note);
        }
    } while (err == TW_OK && n == SWEEP_BATCH && !atomic_load(&v->stopping));
    free(batch);
    if (err)
        return err;

    struct orphans o = {.v = v, .before_ms = now_ms - ORPHAN_AGE_MS};
    err = tw_blob_list(v->blobs, "", orphan_check, &o);
    for (size_t i = 0; i < o.count && err == TW_OK; i++) {
        tw_err gone = tw_blob_delete(v->blobs, o.keys[i]);
        if (gone == TW_OK)
            out->orphans_deleted++;
        else if (gone != TW_ERR_NOT_FOUND)
            err = gone;
    }
    free(o.keys);
    return err;
}

static void *sweeper_main(void *arg)
{
    tw_voice *v = arg;
    pthread_mutex_lock(&v->sweep_lock);
    while (!v->sweep_stop) {
        pthread_mutex_unlock(&v->sweep_lock);
        tw_voice_sweep_stats stats;
        tw_err err = tw_voice_sweep(v, tw_voice_now_ms(v), &stats);
        if (err)
            tw_log(TW_LOG_ERROR, "voice retention sweep failed",
                   json_pack("{s:s, s:s}", "reason", tw_err_name(err), "detail",
                             tw_store_last_error()));
        else if (stats.notes_deleted || stats.orphans_deleted)
            tw_log(TW_LOG_INFO, "voice retention sweep",
                   json_pack("{s:I, s:I}", "notes_deleted", (json_int_t)stats.notes_deleted,
                             "orphans_deleted", (json_int_t)stats.orphans_deleted));
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += v->sweep_interval_ms / 1000;
        until.tv_nsec += (v->sweep_interval_ms % 1000) * 1000000;
        until.tv_sec += until.tv_nsec / 1000000000;
        until.tv_nsec %= 1000000000;
        pthread_mutex_lock(&v->sweep_lock);
        while (!v->sweep_stop &&
               pthread_cond_timedwait(&v->sweep_wake, &v->sweep_lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&v->sweep_lock);
    return NULL;
}

/* ---- start and stop ------------------------------------------------------------------- */

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

static void prepare_engine(void *arg)
{
    tw_voice *v = arg;
    tw_stt_prepare(v->engine);
    atomic_store(&v->live_ready, true);
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
    v->clock_ms = opts->clock_ms ? opts->clock_ms : wall_clock_ms;
    v->clock_ctx = opts->clock_ctx;
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
    /* Live decoders load in the background; until then uploads are
     * transcribed after they end. */
    if (err == TW_OK)
        err = tw_pool_submit(v->live_pool, prepare_engine, v);
    /* Transcriptions run on workers of their own (voice_transcribers), so a
     * long recording never holds up other kinds of jobs. */
    v->job_types[0] = (tw_job_type){TW_VOICE_JOB_TYPE, transcribe_job, opts->job_lease_ms};
    if (err == TW_OK)
        err = tw_jobs_start(app, v->job_types, opts->transcribers > 0 ? opts->transcribers : 1,
                            &v->runner);
    if (err == TW_OK && opts->sweep_interval_ms >= 0) {
        if (pthread_create(&v->sweeper, NULL, sweeper_main, v) == 0)
            v->sweeper_started = true;
        else
            err = TW_ERR_INTERNAL;
    }
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
    for (struct voice_active *a = v->active; a != NULL; a = a->next)
        atomic_store(&a->abort, true);
    while (v->watches != NULL)
        watch_end_locked(v, v->watches, TW_ERR_SHUTTING_DOWN);
    pthread_mutex_unlock(&v->lock);
}

void tw_voice_stop(tw_voice *v)
{
    if (v == NULL)
        return;
    tw_voice_shutdown(v);
    tw_jobs_stop(v->runner);
    if (v->sweeper_started) {
        pthread_mutex_lock(&v->sweep_lock);
        v->sweep_stop = true;
        pthread_cond_broadcast(&v->sweep_wake);
        pthread_mutex_unlock(&v->sweep_lock);
        pthread_join(v->sweeper, NULL);
    }
    while (v->parked != NULL) {
        tw_voice_live *l = v->parked;
        v->parked = l->next;
        tw_voice_live_abandon(l);
    }
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
