/*
 * UploadVoiceNote (voice_upload.h): a client stream read one message at a
 * time on the engine's thread: the metadata, then chunks. The first bytes
 * are sniffed (voice/audio_format.h) and nothing is written until they
 * prove to be the declared format. Then the engine's thread gathers the
 * chunks in a backlog that a drain task on the voice pool takes as a
 * whole and writes, to blob storage, through SHA-256 and (wav) to a live
 * decoder, while the engine reads on: the client's next bytes arrive while
 * the last ones are written. A full backlog pauses the stream until the
 * drain takes it, so a slow disk holds the client back instead of filling
 * memory. The size limit, a refusal, a cancel, a deadline, a lost
 * connection or a shutdown drop the upload and abort the blob writer,
 * which leaves nothing. When the client is done, the drain writes the last
 * bytes and commits (fsync, then the note's transaction); the note is
 * stored only after its audio is durable.
 *
 * Who ends the call: the engine's thread while it reads (it reports a
 * failure of the drain at its next message), the drain once the engine
 * has handed the call over (paused, or the client done).
 */
#include "voice_upload.h"

#include "app.h"
#include "pbtime.h"
#include "tw/v1/billing_service.pb-c.h" /* UsageResource */
#include "tw_hex.h"
#include "tw_owned.h"
#include "voice/audio_format.h"
#include "voice_call.h"

#include <stdlib.h>
#include <string.h>

#define FILE_NAME_MAX 255
/* The drain starts once this much is received (or the client is done):
 * waking a thread per 64 KiB chunk cost more than writing it. */
#define UPLOAD_BATCH (256 * 1024)
/* Received bytes the engine gathers ahead of a running drain before it
 * pauses the stream: two of these (one gathering, one being written) and
 * the blob writer's block are what an upload holds. */
#define UPLOAD_BACKLOG (1024 * 1024)

/* What an upload holds outside the call, taken to be freed on the pool:
 * aborting an S3 writer is a request, not for the engine's thread. It owns
 * no part of the call, which may be gone by the time it runs. */
struct leftovers {
    tw_blob_writer *writer;
    tw_voice_live *live;
    EVP_MD_CTX *sha;
    uint8_t *pending, *writing;
};

static void leftovers_release(struct leftovers *l)
{
    tw_blob_writer_abort(l->writer);
    tw_voice_live_abandon(l->live);
    EVP_MD_CTX_free(l->sha);
    free(l->pending);
    free(l->writing);
}

static void leftovers_free(void *arg)
{
    leftovers_release(arg);
    free(arg);
}

/* Takes what the upload holds, with its lock held and no drain running
 * but the caller; the writer is aborted, so nothing of it is left (after a
 * commit it is NULL and nothing happens to the blob). */
static struct leftovers upload_take_locked(struct tw_voice_upload *u)
{
    struct leftovers l = {u->writer, u->live, u->sha, u->pending, u->writing};
    u->writer = NULL;
    u->live = NULL;
    u->sha = NULL;
    u->pending = u->writing = NULL;
    u->pending_cap = u->pending_len = u->writing_cap = 0;
    return l;
}

/* On the engine's thread: the upload is not going to be stored. A drain
 * that is running frees it and stops; otherwise it is freed on the pool. */
static void upload_drop(struct tw_voice_upload *u)
{
    pthread_mutex_lock(&u->lock);
    u->dropped = true;
    bool idle = !u->draining;
    struct leftovers l = {0};
    if (idle)
        l = upload_take_locked(u);
    pthread_mutex_unlock(&u->lock);
    u->phase = UP_DONE;
    if (!idle)
        return;
    struct leftovers *heap = malloc(sizeof *heap);
    if (heap != NULL) {
        *heap = l;
        if (tw_pool_submit(tw_voice_pool(u->v), leftovers_free, heap) != TW_OK)
            leftovers_free(heap);
    } else {
        leftovers_release(&l);
    }
}

/* Returns err after dropping the upload: every refusal leaves nothing. */
static tw_err upload_fail(struct tw_voice_upload *u, tw_err err)
{
    upload_drop(u);
    return err;
}

/* The error a dropped upload ends with: the drain's failure, reported on
 * the thread that ends the call, or a cancel. */
static tw_err upload_failure(struct tw_voice_upload *u)
{
    if (u->failed == TW_OK)
        return TW_ERR_CANCELLED;
    if (u->failed_detail[0] != '\0')
        tw_call_log_detail(u->call, "%s", u->failed_detail);
    if (u->failed_message[0] != '\0')
        return tw_call_error(u->call, u->failed, "%s", u->failed_message);
    return u->failed;
}

static void upload_cancelled(tw_call *call, void *ctx)
{
    (void)call;
    struct tw_voice_upload *u = ctx;
    if (u->phase != UP_DONE)
        upload_drop(u); /* the engine or the drain ends the call, as it has it */
}

/* The declared format of the metadata; TW_AUDIO_UNKNOWN, with a violation,
 * when it declares none we accept. */
static tw_audio_format declared_format(tw_call *call, const Tw__V1__VoiceNoteMetadata *m)
{
    tw_audio_format declared;
    if (m->content_type[0] != '\0') {
        declared = tw_audio_format_of_content_type(m->content_type);
        if (declared == TW_AUDIO_UNKNOWN)
            tw_call_field_violation(call, "metadata.content_type",
                                    "\"%.64s\" is not an accepted type: audio/wav, audio/mpeg, "
                                    "audio/mp4 or audio/webm",
                                    m->content_type);
    } else {
        declared = tw_audio_format_of_file_name(m->file_name);
        if (declared == TW_AUDIO_UNKNOWN)
            tw_call_field_violation(call, "metadata.content_type",
                                    "is empty, and file_name does not end in .wav, .mp3, .m4a "
                                    "or .webm");
    }
    return declared;
}

static tw_err upload_metadata(struct tw_voice_upload *u, const Tw__V1__VoiceNoteMetadata *m)
{
    tw_call *call = u->call;
    tw_arena *arena = tw_call_arena(call);
    tw_voice *v = u->v;
    tw_app *app = tw_call_service_ctx(call);
    tw_err err = tw_call_user(call, &u->user);
    if (err)
        return err;
    /* Every bad field, then one answer. */
    if (strlen(m->file_name) > FILE_NAME_MAX)
        tw_call_field_violation(call, "metadata.file_name", "is longer than %d bytes",
                                FILE_NAME_MAX);
    u->declared = declared_format(call, m);
    const char *language = tw_voice_call_language(call, v, "metadata.language", m->language);
    Tw__V1__VocabularyTerm **vocabulary;
    if ((err = tw_voice_call_vocabulary(call, v, "metadata.vocabulary", m->vocabulary,
                                        m->n_vocabulary, &vocabulary)))
        return err;
    if (tw_violations_any(tw_call_violations(call)))
        return u->declared == TW_AUDIO_UNKNOWN ? TW_ERR_VOICE_BAD_FORMAT : TW_ERR_VALIDATION;

    /* A retry of an upload that was stored: its first answer, at once. */
    bool replayed;
    if ((err = tw_kit_memo_of(call, &m->base, &u->memo)) ||
        (err = tw_kit_replay(call, app->store, &u->memo, &replayed)))
        return err;
    if (replayed)
        return TW_DEFERRED;
    tw_id task;
    if (tw_kit_id(m->task_id, &task)) {
        /* One of the caller's tasks: another user's is as unknown as none. */
        err = tw_owned_check(app->store, NULL, TW_KF_TASK, &u->user, &task);
        if (err == TW_ERR_NOT_FOUND)
            return tw_call_error(call, err, "task %s not found", m->task_id);
        if (err)
            return tw_kit_fail(call, err);
    }

    Tw__V1__VoiceNote *note = tw_arena_alloc(arena, sizeof *note);
    if (note == NULL)
        return TW_ERR_NO_MEMORY;
    tw__v1__voice_note__init(note);
    u->note = tw_id_new();
    note->id = tw_kit_id_text(call, &u->note);
    note->request_id = tw_arena_strdup(arena, m->request_id);
    note->file_name = tw_arena_strdup(arena, m->file_name);
    note->content_type = tw_arena_strdup(
        arena, m->content_type[0] ? m->content_type : tw_audio_format_content_type(u->declared));
    note->language = tw_arena_strdup(arena, language);
    note->task_id = tw_arena_strdup(arena, m->task_id);
    note->vocabulary = vocabulary;
    note->n_vocabulary = m->n_vocabulary;
    u->terms = tw_arena_alloc(arena, (m->n_vocabulary + 1) * sizeof *u->terms);
    if (note->id == NULL || note->request_id == NULL || note->file_name == NULL ||
        note->content_type == NULL || note->language == NULL || note->task_id == NULL ||
        u->terms == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0; i < m->n_vocabulary; i++)
        u->terms[i] = (tw_stt_term){vocabulary[i]->phrase, vocabulary[i]->pronunciation};
    u->meta = note;
    u->blob_key = tw_voice_blob_key(&u->user, &u->note, arena);
    if ((u->sha = EVP_MD_CTX_new()) == NULL || !EVP_DigestInit_ex(u->sha, EVP_sha256(), NULL))
        return upload_fail(u, TW_ERR_NO_MEMORY);
    u->phase = UP_SNIFFING;
    tw_call_on_cancel(call, upload_cancelled, u);
    return TW_OK;
}

/* The drain's failure, kept until the thread that ends the call reports
 * it: the engine's thread may be reading, and only it touches the call's
 * outcome then. */
static tw_err drain_error(struct tw_voice_upload *u, tw_err err, const char *message,
                          const char *detail)
{
    snprintf(u->failed_message, sizeof u->failed_message, "%s", message);
    snprintf(u->failed_detail, sizeof u->failed_detail, "%s", detail);
    return err;
}

/* On the drain: n bytes taken (u->writing), in order to blob storage (the
 * blob opened at the first bytes), the hash, the WAV parser and the live
 * decoder, which takes the buffer itself rather than a copy. */
static tw_err upload_write(struct tw_voice_upload *u, size_t n)
{
    if (u->writer == NULL) {
        tw_err err = tw_blob_writer_open(tw_voice_blobs(u->v), u->blob_key, &u->writer);
        if (err)
            return drain_error(u, err, "", tw_store_last_error());
        u->live =
            tw_voice_live_open(u->v, u->found, u->meta->language, u->terms, u->meta->n_vocabulary);
    }
    const uint8_t *data = u->writing;
    tw_err err = tw_blob_writer_append(u->writer, data, n);
    if (err)
        return drain_error(u, err, "", tw_store_last_error());
    EVP_DigestUpdate(u->sha, data, n);
    u->size += n;
    if (u->wav && tw_wav_parser_feed(&u->wav_parser, data, n, NULL, NULL) != TW_OK) {
        char message[sizeof u->failed_message];
        snprintf(message, sizeof message, "not a readable WAV file: %s", u->wav_parser.error);
        return drain_error(u, TW_ERR_VOICE_BAD_FORMAT, message, "");
    }
    if (tw_voice_live_feed(u->live, u->writing, n)) {
        u->writing = NULL;
        u->writing_cap = 0;
    }
    return TW_OK;
}

static void upload_commit(struct tw_voice_upload *u);

/* On the drain, as it stops for good: frees what the upload holds (after a
 * failure, err, which drops the upload). True when the engine has handed
 * the call over (paused, or the client done), so the drain is to end it. */
static bool drain_stop(struct tw_voice_upload *u, tw_err err)
{
    pthread_mutex_lock(&u->lock);
    if (err) {
        u->failed = err;
        u->dropped = true;
    }
    u->draining = false;
    bool handed_over = u->paused || u->ending;
    struct leftovers l = upload_take_locked(u);
    pthread_mutex_unlock(&u->lock);
    leftovers_release(&l);
    return handed_over;
}

/* The drain task, on the voice pool: takes the backlog as a whole (the
 * engine gathers the next bytes in the other buffer), lets a paused
 * stream read on, writes, and again until nothing is left; then, when the
 * client is done, commits. It holds the call, so a cancel or a refusal
 * that the engine ends the call with leaves the state to it until it
 * stops. */
static void upload_drain(void *arg)
{
    struct tw_voice_upload *u = arg;
    tw_call *call = u->call;
    for (;;) {
        pthread_mutex_lock(&u->lock);
        if (u->dropped) { /* cancelled or refused: the engine leaves it alone from now on */
            pthread_mutex_unlock(&u->lock);
            if (drain_stop(u, TW_OK))
                tw_call_finish(call, TW_ERR_CANCELLED);
            break;
        }
        uint8_t *taken = u->pending;
        size_t n = u->pending_len, cap = u->pending_cap;
        u->pending = u->writing;
        u->pending_cap = u->writing_cap;
        u->pending_len = 0;
        u->writing = taken;
        u->writing_cap = cap;
        bool resume = u->paused;
        u->paused = false;
        bool commit = n == 0 && u->ending;
        if (n == 0 && !commit)
            u->draining = false;
        pthread_mutex_unlock(&u->lock);
        if (commit) {
            upload_commit(u);
            break;
        }
        if (n == 0)
            break;
        if (resume)
            tw_call_read_next(call);
        tw_err err = upload_write(u, n);
        if (err) {
            /* Ended here once handed over, or at the engine's next message. */
            if (drain_stop(u, err))
                tw_call_finish(call, upload_failure(u));
            break;
        }
    }
    tw_call_unhold(call);
}

/* Starts the drain, which holds the call until it stops; the lock held,
 * u->draining set. */
static tw_err start_drain_locked(struct tw_voice_upload *u)
{
    tw_call_hold(u->call);
    tw_err err = tw_pool_submit(tw_voice_pool(u->v), upload_drain, u);
    if (err) {
        u->draining = false;
        tw_call_unhold(u->call);
    }
    return err;
}

/* Adds bytes to the backlog, the lock held; it grows by doubling, and the
 * two buffers are reused once they have grown. */
static bool pend_locked(struct tw_voice_upload *u, const uint8_t *data, size_t n)
{
    if (n == 0)
        return true; /* memcpy may not be given pending's NULL, even for 0 bytes */
    if (u->pending_len + n > u->pending_cap) {
        size_t cap =
            u->pending_cap * 2 > u->pending_len + n ? u->pending_cap * 2 : u->pending_len + n;
        uint8_t *grown = realloc(u->pending, cap);
        if (grown == NULL)
            return false;
        u->pending = grown;
        u->pending_cap = cap;
    }
    memcpy(u->pending + u->pending_len, data, n);
    u->pending_len += n;
    return true;
}

/*
 * On the engine's thread: adds received bytes to the backlog (first the
 * held head, when there is one) and starts the drain if none runs and a
 * batch is in. TW_OK reads on; TW_DEFERRED pauses the stream until the
 * drain takes the full backlog; a dropped upload ends the call with what
 * dropped it. With ending, the client is done: the drain starts whatever
 * is in, and commits after these bytes.
 */
static tw_err upload_pend(struct tw_voice_upload *u, const uint8_t *head, size_t nhead,
                          const uint8_t *data, size_t n, bool ending)
{
    pthread_mutex_lock(&u->lock);
    if (u->dropped) {
        pthread_mutex_unlock(&u->lock);
        u->phase = UP_DONE;
        return upload_failure(u);
    }
    if (!pend_locked(u, head, nhead) || !pend_locked(u, data, n)) {
        pthread_mutex_unlock(&u->lock);
        return upload_fail(u, TW_ERR_NO_MEMORY);
    }
    u->ending = ending;
    tw_err err = TW_OK;
    bool pause = false;
    if (!u->draining && (ending || u->pending_len >= UPLOAD_BATCH)) {
        u->draining = true;
        err = start_drain_locked(u);
    } else if (u->draining) {
        pause = !ending && u->pending_len >= UPLOAD_BACKLOG;
    }
    u->paused = pause;
    pthread_mutex_unlock(&u->lock);
    if (err)
        return upload_fail(u, err);
    return pause || ending ? TW_DEFERRED : TW_OK;
}

/* The format is known: refuse a mismatch; the blob is opened on the pool. */
static tw_err upload_accept(struct tw_voice_upload *u, tw_audio_format found, const char *what)
{
    tw_call *call = u->call;
    if (found != u->declared) {
        const char *declared = tw_audio_format_name(u->declared);
        if (found == TW_AUDIO_UNKNOWN)
            return tw_call_error(call, TW_ERR_VOICE_BAD_FORMAT,
                                 "the audio is %s, not %s as declared", what, declared);
        return tw_call_error(call, TW_ERR_VOICE_BAD_FORMAT,
                             "the audio is %s, but it was declared as %s", what, declared);
    }
    u->found = found;
    u->meta->format = (Tw__V1__AudioFormat)found;
    u->wav = found == TW_AUDIO_WAV;
    if (u->wav)
        tw_wav_parser_init(&u->wav_parser);
    u->phase = UP_WRITING;
    return TW_OK;
}

/* On the engine's thread: checks a chunk and adds it to the backlog, or
 * holds it while the format is not known yet (TW_OK). */
static tw_err upload_chunk(struct tw_voice_upload *u, const ProtobufCBinaryData *chunk)
{
    tw_call *call = u->call;
    if (chunk->len > TW_VOICE_CHUNK_MAX)
        return tw_call_field_violation(call, "chunk", "is larger than %d bytes",
                                       TW_VOICE_CHUNK_MAX);
    uint64_t max = tw_voice_max_bytes(u->v);
    if (u->received + chunk->len > max)
        return tw_call_error(call, TW_ERR_TOO_LARGE, "a voice note may have at most %llu bytes",
                             (unsigned long long)max);
    u->received += chunk->len;
    size_t held = 0;
    if (u->phase == UP_SNIFFING) {
        /* Hold the first bytes until they say what they are. */
        held = u->nhead;
        size_t room = TW_AUDIO_SNIFF_BYTES - held;
        size_t take = room < chunk->len ? room : chunk->len;
        memcpy(u->head + held, chunk->data, take);
        u->nhead += take;
        tw_audio_format found;
        const char *what;
        if (!tw_audio_sniff(u->head, u->nhead, false, &found, &what))
            return TW_OK; /* all of this chunk is held */
        tw_err err = upload_accept(u, found, what);
        if (err)
            return err;
    }
    return upload_pend(u, u->head, held, chunk->data, chunk->len, false);
}

tw_err tw_voice_upload_message(tw_call *call, const ProtobufCMessage *message,
                               ProtobufCMessage *response)
{
    const Tw__V1__UploadVoiceNoteRequest *in = (const void *)message;
    struct tw_voice_upload *u = tw_call_state(call);
    tw_err err;
    if (u->phase == UP_METADATA) {
        u->call = call;
        pthread_mutex_init(&u->lock, NULL); /* destroyed by tw_voice_upload_free */
        u->v = tw_voice_call_voice(call);
        if (u->v == NULL)
            return TW_ERR_SHUTTING_DOWN;
        if (in->content_case != TW__V1__UPLOAD_VOICE_NOTE_REQUEST__CONTENT_METADATA)
            return tw_call_field_violation(call, "metadata",
                                           "the first message must carry the metadata");
        err = upload_metadata(u, in->metadata);
        if (err == TW_DEFERRED) { /* a retry: the response is its first answer */
            u->phase = UP_DONE;
            tw_call_finish(call, TW_OK);
        }
        return err;
    }
    if (in->content_case != TW__V1__UPLOAD_VOICE_NOTE_REQUEST__CONTENT_CHUNK)
        return upload_fail(u, tw_call_field_violation(call, "metadata",
                                                      "only the first message carries metadata"));
    err = upload_chunk(u, &in->chunk);
    bool dropped = u->phase == UP_DONE; /* upload_pend dropped it already */
    return err == TW_OK || err == TW_DEFERRED || dropped ? err : upload_fail(u, err);
}

/* How long the stored audio plays, by its header; -1 when it does not say. */
static int64_t upload_duration(struct tw_voice_upload *u)
{
    if (u->wav)
        return tw_wav_parser_duration_ms(&u->wav_parser);
    return tw_voice_probe_duration(u->v, u->blob_key, u->found);
}

/* Ends the commit with err: whatever the upload still holds is freed (the
 * audio too, unless it was committed). */
static void upload_commit_end(struct tw_voice_upload *u, tw_err err)
{
    drain_stop(u, TW_OK); /* committing, the drain has the call */
    tw_call_finish(u->call, err);
}

struct store_note {
    struct tw_voice_upload *u;
    bool live;
    int64_t duration_ms; /* -1: unknown */
};

/* The voice minutes a note uses: its duration rounded up to whole
 * minutes, per note; one when its header does not say. */
static int64_t note_minutes(int64_t duration_ms)
{
    return duration_ms > 0 ? (duration_ms + 59999) / 60000 : 1;
}

/* The note's transaction (tw_kit_write_memo's step): the note, and the
 * plan's voice minutes and storage bytes it uses, refused (QUOTA_001, the
 * note not stored) if they go over. The gate let the upload start only
 * with some of both left (TW_METERED_AUDIO); only now are the amounts
 * known. */
static tw_err store_note(tw_txn *t, void *ctx)
{
    struct store_note *s = ctx;
    struct tw_voice_upload *u = s->u;
    tw_app *app = tw_call_service_ctx(u->call);
    tw_err err = tw_txn_voice_note_create(t, u->v, &u->user, u->meta, u->blob_key, s->live,
                                          tw_call_arena(u->call), &u->response->voice_note);
    int64_t now_ms = tw_call_now_ms(u->call);
    if (err == TW_OK && app->use != NULL)
        err = app->use(app, u->call, t, &u->user,
                       TW__V1__USAGE_RESOURCE__USAGE_RESOURCE_VOICE_MINUTES,
                       note_minutes(s->duration_ms), now_ms);
    if (err == TW_OK && app->use != NULL)
        err = app->use(app, u->call, t, &u->user,
                       TW__V1__USAGE_RESOURCE__USAGE_RESOURCE_STORAGE_BYTES, (int64_t)u->size,
                       now_ms);
    return err;
}

/* On the drain, every byte written: the audio made durable, then the note
 * stored. A cancel from now on only marks the upload: a note committed
 * anyway is what a retry with its request_id gets. */
static void upload_commit(struct tw_voice_upload *u)
{
    tw_call *call = u->call;
    tw_arena *arena = tw_call_arena(call);
    tw_err err = TW_OK;
    if (u->wav && tw_wav_parser_finish(&u->wav_parser) != TW_OK)
        err = tw_call_error(call, TW_ERR_VOICE_BAD_FORMAT, "not a readable WAV file: %s",
                            u->wav_parser.error);
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned digest_len = 0;
    char *sha = NULL;
    if (err == TW_OK) {
        EVP_DigestFinal_ex(u->sha, digest, &digest_len);
        if ((sha = tw_arena_alloc(arena, 2 * digest_len + 1)) == NULL)
            err = TW_ERR_NO_MEMORY;
    }
    if (err == TW_OK) {
        tw_hex_encode(digest, digest_len, sha);
        err = tw_blob_writer_commit(u->writer);
        u->writer = NULL;
        if (err)
            tw_call_log_detail(call, "%s", tw_store_last_error());
    }
    if (err) {
        upload_commit_end(u, err);
        return;
    }
    Tw__V1__VoiceNote *note = u->meta;
    note->size_bytes = u->size;
    note->sha256 = sha;
    int64_t ms = upload_duration(u);
    if (ms >= 0)
        note->duration = tw_duration_new(arena, ms);

    /* The note, remembered with the upload's request_id: a concurrent retry
     * that committed first is the answer, and this audio belongs to
     * nothing. */
    tw_voice_live *live = u->live;
    u->live = NULL; /* taken by note_prepare */
    tw_voice_note_prepare(u->v, &u->note, live);
    struct store_note s = {u, live != NULL, ms};
    bool replayed = false;
    tw_app *app = tw_call_service_ctx(call);
    err = tw_kit_write_memo(call, app->store, &u->memo, store_note, &s, &replayed);
    bool stored = err == TW_OK && !replayed;
    tw_voice_note_created(u->v, &u->note, stored);
    if (!stored)
        tw_blob_delete(tw_voice_blobs(u->v), u->blob_key);
    upload_commit_end(u, err); /* frees what is left; err may be TW_OK */
}

tw_err tw_voice_upload_end(tw_call *call, ProtobufCMessage *response)
{
    struct tw_voice_upload *u = tw_call_state(call);
    if (u->phase == UP_METADATA)
        return tw_call_field_violation(call, "metadata", "the upload sent no metadata");
    size_t held = 0; /* the head, when it was held to the end */
    if (u->phase == UP_SNIFFING) {
        if (u->received == 0)
            return upload_fail(u, tw_call_field_violation(call, "chunk", "no audio was sent"));
        tw_audio_format found;
        const char *what;
        tw_audio_sniff(u->head, u->nhead, true, &found, &what);
        tw_err err = upload_accept(u, found, what);
        if (err)
            return upload_fail(u, err);
        held = u->nhead;
    }
    u->response = (Tw__V1__UploadVoiceNoteResponse *)response;
    u->phase = UP_COMMITTING;
    return upload_pend(u, u->head, held, NULL, 0, true);
}

void tw_voice_upload_free(void *state)
{
    struct tw_voice_upload *u = state;
    if (u->call != NULL) /* it read a message, so its lock was made */
        pthread_mutex_destroy(&u->lock);
}
