/*
 * Live sessions (voice.h): a WAV upload decoded while it arrives. The
 * upload feeds bytes on its own thread; they queue (up to
 * TW_VOICE_LIVE_BACKLOG) for a drain task on the live pool, which feeds the
 * engine's live decoder. Once the note is stored the session is parked
 * under the note until its transcription job takes it and finishes the
 * transcript from what the session has not heard yet.
 *
 * Each session has a lock of its own for its queue; it is never held
 * across decoding.
 */
#include "voice_internal.h"

#include "tw_log.h"

#include <stdlib.h>
#include <string.h>

/* Bytes the upload handed over (tw_voice_live_feed), not copied. */
struct chunk {
    struct chunk *next;
    size_t len;
    uint8_t *data;
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

static void chunk_free(struct chunk *c)
{
    free(c->data);
    free(c);
}

static void drop_chunks_locked(tw_voice_live *l)
{
    while (l->head != NULL) {
        struct chunk *c = l->head;
        l->head = c->next;
        chunk_free(c);
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

static void live_load_task(void *arg)
{
    tw_voice *v = arg;
    if (!atomic_load(&v->stopping)) {
        tw_stt_prepare(v->engine);
        atomic_store(&v->live_ready, true);
    }
    atomic_store(&v->live_loading, false);
}

void voice_live_load(tw_voice *v)
{
    if (atomic_exchange(&v->live_loading, true))
        return;
    if (tw_pool_submit(v->live_pool, live_load_task, v) != TW_OK)
        atomic_store(&v->live_loading, false);
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
    tw_err err = tw_stt_live_open(v->engine, &req, &session);
    if (err == TW_ERR_BUSY)
        voice_live_load(v); /* for the next upload: loading takes a second */
    if (err)
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
        chunk_free(c);
        if (err) {
            tw_log(TW_LOG_DEBUG, "live decoding gave up; the note is transcribed whole",
                   json_pack("{s:s, s:s}", "reason", tw_err_name(err), "detail", why));
            pthread_mutex_lock(&l->lock);
            l->failed = true;
            pthread_mutex_unlock(&l->lock);
        }
    }
}

bool tw_voice_live_feed(tw_voice_live *l, void *bytes, size_t n)
{
    if (l == NULL || n == 0)
        return false;
    pthread_mutex_lock(&l->lock);
    if (l->failed || l->behind || l->abandoned) {
        pthread_mutex_unlock(&l->lock);
        return false;
    }
    struct chunk *c = l->queued + n <= TW_VOICE_LIVE_BACKLOG ? malloc(sizeof *c) : NULL;
    if (c == NULL) {
        l->behind = true;
        atomic_fetch_add(&l->v->live_behind, 1);
        pthread_mutex_unlock(&l->lock);
        return false;
    }
    *c = (struct chunk){NULL, n, bytes};
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
    return true; /* queued, or freed with the queue */
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

tw_err voice_live_finish(tw_voice *v, tw_voice_live *l, const char *blob_key,
                         const atomic_bool *abort, tw_arena *arena, tw_transcript *out, char *why,
                         size_t whylen, bool *used)
{
    *used = false;
    live_wait_idle(l);
    if (l->failed)
        return TW_OK;
    struct voice_blob_input bi;
    tw_audio_input rest;
    tw_err err =
        voice_blob_input_open(&bi, v->blobs, blob_key, tw_stt_live_offset(l->session), &rest);
    if (err == TW_OK)
        err = tw_stt_live_finish(l->session, &rest, abort, arena, out, why, whylen);
    voice_blob_input_close(&bi);
    if (err == TW_OK)
        atomic_fetch_add(&v->live_adopted, 1);
    /* A failure of the live path (not of the audio) is retried whole. */
    *used = err != TW_ERR_VALIDATION;
    return err;
}

void voice_live_abandon_parked(tw_voice *v)
{
    while (v->parked != NULL) {
        tw_voice_live *l = v->parked;
        v->parked = l->next;
        tw_voice_live_abandon(l);
    }
}
