/*
 * UploadVoiceNote (voice_upload.h): a client stream read one message at a
 * time on the engine's thread: the metadata, then chunks. The first bytes
 * are sniffed (voice/audio_format.h) and nothing is written until they
 * prove to be the declared format; then each chunk goes straight to blob
 * storage, through SHA-256, and (wav) to a live decoder, so a stream holds
 * at most the chunk being handled plus the live decoder's small backlog.
 * The size limit, a refusal, a cancel, a deadline, a lost connection or a
 * shutdown abort the blob writer, which leaves nothing. When the client is
 * done, the commit (fsync, then the note's transaction) runs on the voice
 * pool; the note is stored only after its audio is durable.
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

/* What an abandoned upload still holds, freed on the pool: aborting an S3
 * writer is a request, not for the engine's thread. It owns no part of
 * the call, which may be gone by the time it runs. */
struct leftovers {
    tw_blob_writer *writer;
    tw_voice_live *live;
    EVP_MD_CTX *sha;
    uint8_t *pending;
};

static void leftovers_free(void *arg)
{
    struct leftovers *l = arg;
    tw_blob_writer_abort(l->writer);
    tw_voice_live_abandon(l->live);
    EVP_MD_CTX_free(l->sha);
    free(l->pending);
    free(l);
}

/* Takes what the upload holds; the writer is aborted, so nothing of it is
 * left (after a commit it is NULL and nothing happens to the blob). */
static struct leftovers upload_take(struct tw_voice_upload *u)
{
    struct leftovers l = {u->writer, u->live, u->sha, u->pending};
    u->writer = NULL;
    u->live = NULL;
    u->sha = NULL;
    u->pending = NULL;
    u->pending_cap = u->pending_len = 0;
    return l;
}

/* On a pool thread: frees at once. */
static void upload_release(struct tw_voice_upload *u)
{
    struct leftovers l = upload_take(u);
    tw_blob_writer_abort(l.writer);
    tw_voice_live_abandon(l.live);
    EVP_MD_CTX_free(l.sha);
    free(l.pending);
}

/* On the engine's thread: drops an upload that is not going to be stored,
 * freeing it on the pool. */
static void upload_discard(struct tw_voice_upload *u)
{
    struct leftovers *l = malloc(sizeof *l);
    if (l != NULL) {
        *l = upload_take(u);
        if (tw_pool_submit(tw_voice_pool(u->v), leftovers_free, l) != TW_OK)
            leftovers_free(l);
    } else {
        upload_release(u);
    }
    u->phase = UP_DONE;
    atomic_store(&u->owner, OWN_DONE);
}

/* Returns err after discarding the upload: every refusal leaves nothing. */
static tw_err upload_fail(struct tw_voice_upload *u, tw_err err)
{
    upload_discard(u);
    return err;
}

static void upload_cancelled(tw_call *call, void *ctx)
{
    struct tw_voice_upload *u = ctx;
    int owner = OWN_POOL;
    if (atomic_compare_exchange_strong(&u->owner, &owner, OWN_CANCELLED))
        return; /* the pool task drops it and ends the call */
    /* The engine's thread has it, and runs this hook: drop it now; the
     * engine ends the call. */
    if (owner == OWN_ENGINE)
        upload_discard(u);
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
    atomic_store(&u->owner, OWN_ENGINE);
    tw_call_on_cancel(call, upload_cancelled, u);
    return TW_OK;
}

/* The pending bytes of the audio, in order: to blob storage, the hash, the
 * WAV parser and the live decoder, which takes the buffer itself (the next
 * chunk gets a new one) rather than a copy. On a pool thread. */
static tw_err upload_write(struct tw_voice_upload *u)
{
    const uint8_t *data = u->pending;
    size_t n = u->pending_len;
    tw_err err = tw_blob_writer_append(u->writer, data, n);
    if (err) {
        tw_call_log_detail(u->call, "%s", tw_store_last_error());
        return err;
    }
    EVP_DigestUpdate(u->sha, data, n);
    u->size += n;
    if (u->wav && tw_wav_parser_feed(&u->wav_parser, data, n, NULL, NULL) != TW_OK)
        return tw_call_error(u->call, TW_ERR_VOICE_BAD_FORMAT, "not a readable WAV file: %s",
                             u->wav_parser.error);
    if (tw_voice_live_feed(u->live, u->pending, n)) {
        u->pending = NULL;
        u->pending_cap = 0;
    }
    return TW_OK;
}

/* On a pool thread: the pending bytes written, the blob opened first if
 * this is the first of them. */
static tw_err upload_write_pending(struct tw_voice_upload *u)
{
    if (u->writer == NULL) {
        tw_err err = tw_blob_writer_open(tw_voice_blobs(u->v), u->blob_key, &u->writer);
        if (err) {
            tw_call_log_detail(u->call, "%s", tw_store_last_error());
            return err;
        }
        u->live =
            tw_voice_live_open(u->v, u->found, u->meta->language, u->terms, u->meta->n_vocabulary);
    }
    tw_err err = u->pending_len ? upload_write(u) : TW_OK;
    u->pending_len = 0;
    return err;
}

/* Hands the upload back to the engine, which reads the next message; or,
 * after a failure or a cancel, drops it and ends the call. On a pool thread. */
static void upload_hand_back(struct tw_voice_upload *u, tw_err err)
{
    tw_call *call = u->call;
    int owner = OWN_POOL;
    if (err == TW_OK && atomic_compare_exchange_strong(&u->owner, &owner, OWN_ENGINE)) {
        tw_call_read_next(call); /* u is the engine's again: not touched after */
        return;
    }
    upload_release(u);
    atomic_store(&u->owner, OWN_DONE);
    tw_call_finish(call, err ? err : TW_ERR_CANCELLED);
}

static void upload_chunk_task(void *arg)
{
    struct tw_voice_upload *u = arg;
    tw_err err = atomic_load(&u->owner) == OWN_CANCELLED ? TW_ERR_CANCELLED : TW_OK;
    if (err == TW_OK)
        err = upload_write_pending(u);
    upload_hand_back(u, err);
}

/* Copies bytes into the pending buffer. */
static bool pend(struct tw_voice_upload *u, const uint8_t *data, size_t n)
{
    if (n == 0)
        return true; /* memcpy may not be given pending's NULL, even for 0 bytes */
    if (u->pending_len + n > u->pending_cap) {
        size_t cap = u->pending_len + n;
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

/* On the engine's thread: checks a chunk and hands it to the pool, which
 * asks for the next one when it is written (TW_DEFERRED), or holds it
 * while the format is not known yet (TW_OK). */
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
    if (u->phase == UP_SNIFFING) {
        /* Hold the first bytes until they say what they are. */
        size_t held = u->nhead;
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
        if (!pend(u, u->head, held))
            return TW_ERR_NO_MEMORY;
    }
    if (!pend(u, chunk->data, chunk->len))
        return TW_ERR_NO_MEMORY;
    atomic_store(&u->owner, OWN_POOL);
    tw_err err = tw_pool_submit(tw_voice_pool(u->v), upload_chunk_task, u);
    if (err) {
        atomic_store(&u->owner, OWN_ENGINE);
        return err;
    }
    return TW_DEFERRED;
}

tw_err tw_voice_upload_message(tw_call *call, const ProtobufCMessage *message,
                               ProtobufCMessage *response)
{
    const Tw__V1__UploadVoiceNoteRequest *in = (const void *)message;
    struct tw_voice_upload *u = tw_call_state(call);
    tw_err err;
    if (u->phase == UP_METADATA) {
        u->call = call;
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
    return err == TW_OK || err == TW_DEFERRED ? err : upload_fail(u, err);
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
    upload_release(u);
    atomic_store(&u->owner, OWN_DONE);
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

/* On the voice pool: the last bytes written, the audio made durable, then
 * the note stored. A cancel from now on only marks the upload: a note
 * committed anyway is what a retry with its request_id gets. */
static void upload_commit(void *arg)
{
    struct tw_voice_upload *u = arg;
    tw_call *call = u->call;
    tw_arena *arena = tw_call_arena(call);
    tw_err err = atomic_load(&u->owner) == OWN_CANCELLED ? TW_ERR_CANCELLED : TW_OK;
    if (err == TW_OK)
        err = upload_write_pending(u);
    if (err == TW_OK && u->wav && tw_wav_parser_finish(&u->wav_parser) != TW_OK)
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
    if (u->phase == UP_SNIFFING) {
        if (u->received == 0)
            return upload_fail(u, tw_call_field_violation(call, "chunk", "no audio was sent"));
        tw_audio_format found;
        const char *what;
        tw_audio_sniff(u->head, u->nhead, true, &found, &what);
        tw_err err = upload_accept(u, found, what);
        if (err == TW_OK && !pend(u, u->head, u->nhead))
            err = TW_ERR_NO_MEMORY;
        if (err)
            return upload_fail(u, err);
    }
    u->response = (Tw__V1__UploadVoiceNoteResponse *)response;
    u->phase = UP_COMMITTING;
    atomic_store(&u->owner, OWN_POOL);
    tw_err err = tw_pool_submit(tw_voice_pool(u->v), upload_commit, u);
    if (err) {
        atomic_store(&u->owner, OWN_ENGINE);
        return upload_fail(u, err);
    }
    return TW_DEFERRED;
}
