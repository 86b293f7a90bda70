/*
 * tw.v1.VoiceService: voice notes over RPC. The notes, their transcription
 * and watches live in server/voice/voice.h; this file is the calls.
 *
 * UploadVoiceNote is a client stream read one message at a time on the
 * engine's thread: the metadata, then chunks. The first bytes are sniffed
 * (voice/audio_format.h) and nothing is written until they prove to be the
 * declared format; then each chunk goes straight to blob storage, through
 * SHA-256, and (wav) to a live decoder, so a stream holds at most the chunk
 * being handled plus the live decoder's small backlog. The size limit, a
 * refusal, a cancel, a deadline, a lost connection or a shutdown abort the
 * blob writer, which leaves nothing. When the client is done, the commit
 * (fsync, then the note's transaction) runs on the voice pool; the note is
 * stored only after its audio is durable.
 *
 * DownloadVoiceNote reads on the voice pool and paces itself with
 * tw_call_on_drain, so a 25 MB note never sits in memory. Deleting blocks
 * on the disk and runs on the pool too.
 */
#include "services.h"
#include "tasks/task_store.h"

#include "tw_hex.h"
#include "tw_id.h"
#include "tw_utf8.h"
#include "voice/audio_format.h"
#include "voice/voice.h"
#include "voice/wav.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define REQUEST_ID_MAX    64
#define FILE_NAME_MAX     255
#define LANGUAGE_MAX      35
#define PHRASE_MAX        100 /* characters */
#define PRONUNCIATION_MAX 200
#define DEFAULT_LANGUAGE  "en-US"
/* Download chunks, and how many are queued before waiting for a drain. */
#define DOWNLOAD_CHUNK (256 * 1024)
#define DOWNLOAD_BURST 4

static tw_app *app_of(tw_call *call)
{
    return tw_call_service_ctx(call);
}

/* The running voice feature; NULL while it is stopped (then calls get
 * UNAVAILABLE). */
static tw_voice *voice_of(tw_call *call)
{
    return app_of(call)->voice;
}

static tw_err parse_note_id(tw_call *call, const char *field, const char *text, tw_id *out)
{
    if (!tw_id_parse(text, out))
        return tw_call_field_violation(call, field, "is not a voice note id (a UUID)");
    return TW_OK;
}

/* Characters of a UTF-8 string (the engine has checked that it is UTF-8). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static bool printable_ascii(const char *s)
{
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

/* Checks a language and returns it, or the default for "". */
static tw_err check_language(tw_call *call, tw_voice *v, const char *field, const char *language,
                             const char **out)
{
    if (language[0] == '\0') {
        *out = DEFAULT_LANGUAGE;
        return TW_OK;
    }
    if (strlen(language) > LANGUAGE_MAX || !printable_ascii(language))
        return tw_call_field_violation(call, field, "is not a BCP 47 language tag");
    tw_stt_engine *engine = tw_voice_engine(v);
    if (!tw_stt_supports_language(engine, language))
        return tw_call_field_violation(call, field,
                                       "\"%s\" cannot be transcribed by this server's engine (%s)",
                                       language, tw_stt_name(engine));
    *out = tw_arena_strdup(tw_call_arena(call), language);
    return TW_OK;
}

/* Checks vocabulary terms and copies them into the call's arena. */
static tw_err check_vocabulary(tw_call *call, tw_voice *v, const char *field,
                               Tw__V1__VocabularyTerm *const *terms, size_t n,
                               Tw__V1__VocabularyTerm ***out)
{
    tw_arena *arena = tw_call_arena(call);
    Tw__V1__VocabularyTerm **copy = tw_arena_alloc(arena, (n + 1) * sizeof *copy);
    if (copy == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i++) {
        char name[64], why[128];
        const Tw__V1__VocabularyTerm *t = terms[i];
        size_t chars = utf8_chars(t->phrase);
        snprintf(name, sizeof name, "%s[%zu].phrase", field, i);
        if (chars == 0 || chars > PHRASE_MAX)
            return tw_call_field_violation(call, name, "must have 1 to %d characters", PHRASE_MAX);
        snprintf(name, sizeof name, "%s[%zu].pronunciation", field, i);
        tw_stt_term term = {t->phrase, t->pronunciation};
        if (strlen(t->pronunciation) > PRONUNCIATION_MAX)
            return tw_call_field_violation(call, name, "is longer than %d bytes",
                                           PRONUNCIATION_MAX);
        if (!tw_stt_term_valid(tw_voice_engine(v), &term, why, sizeof why))
            return tw_call_field_violation(call, name, "%s", why);
        copy[i] = tw_arena_alloc(arena, sizeof **copy);
        if (copy[i] == NULL)
            return TW_ERR_NO_MEMORY;
        tw__v1__vocabulary_term__init(copy[i]);
        copy[i]->phrase = tw_arena_strdup(arena, t->phrase);
        copy[i]->pronunciation = tw_arena_strdup(arena, t->pronunciation);
    }
    *out = copy;
    return TW_OK;
}

/* ---- UploadVoiceNote ------------------------------------------------------- */

enum upload_phase { UP_METADATA, UP_SNIFFING, UP_WRITING, UP_COMMITTING, UP_DONE };

/* Who may touch an upload: the engine's thread for the call (between
 * messages, when the engine reads), or a task on the voice pool (writing a
 * chunk, committing). A cancel while the pool has it only marks it; the
 * task sees the mark, drops the upload and ends the call. */
enum upload_owner { OWN_ENGINE, OWN_POOL, OWN_CANCELLED, OWN_DONE };

/* Per call, in its arena (tw_method.state_size). */
struct upload {
    tw_call *call;
    tw_voice *v;
    enum upload_phase phase;
    atomic_int owner;
    tw_id user, note;
    Tw__V1__VoiceNote *meta; /* what the metadata said, in the call's arena */
    tw_stt_term *terms;
    tw_audio_format declared, found;
    uint8_t head[TW_AUDIO_SNIFF_BYTES]; /* the first bytes, until sniffed */
    size_t nhead;
    uint64_t received;
    /* The bytes handed to the pool: a chunk (and, first, the held head). */
    uint8_t *pending;
    size_t pending_len, pending_cap;
    const char *blob_key;
    tw_blob_writer *writer;
    EVP_MD_CTX *sha;
    uint64_t size; /* written */
    bool wav;
    tw_wav_parser wav_parser; /* wav: finds the duration as bytes pass */
    tw_voice_live *live;
    Tw__V1__UploadVoiceNoteResponse *response;
};

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
static struct leftovers upload_take(struct upload *u)
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
static void upload_release(struct upload *u)
{
    struct leftovers l = upload_take(u);
    tw_blob_writer_abort(l.writer);
    tw_voice_live_abandon(l.live);
    EVP_MD_CTX_free(l.sha);
    free(l.pending);
}

/* On the engine's thread: drops an upload that is not going to be stored,
 * freeing it on the pool. */
static void upload_discard(struct upload *u)
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
static tw_err upload_fail(struct upload *u, tw_err err)
{
    upload_discard(u);
    return err;
}

static void upload_cancelled(tw_call *call, void *ctx)
{
    struct upload *u = ctx;
    int owner = OWN_POOL;
    if (atomic_compare_exchange_strong(&u->owner, &owner, OWN_CANCELLED))
        return; /* the pool task drops it and ends the call */
    /* The engine's thread has it, and runs this hook: drop it now; the
     * engine ends the call. */
    if (owner == OWN_ENGINE)
        upload_discard(u);
}

static tw_err upload_metadata(struct upload *u, const Tw__V1__VoiceNoteMetadata *m)
{
    tw_call *call = u->call;
    tw_arena *arena = tw_call_arena(call);
    tw_voice *v = u->v;
    tw_err err = tw_call_user(call, &u->user);
    if (err)
        return err;
    if (strlen(m->request_id) > REQUEST_ID_MAX || !printable_ascii(m->request_id))
        return tw_call_field_violation(call, "metadata.request_id",
                                       "must be up to %d printable ASCII characters",
                                       REQUEST_ID_MAX);
    if (strlen(m->file_name) > FILE_NAME_MAX)
        return tw_call_field_violation(call, "metadata.file_name", "is longer than %d bytes",
                                       FILE_NAME_MAX);
    if (m->content_type[0] != '\0') {
        u->declared = tw_audio_format_of_content_type(m->content_type);
        if (u->declared == TW_AUDIO_UNKNOWN) {
            tw_call_field_violation(call, "metadata.content_type",
                                    "\"%.64s\" is not an accepted type: audio/wav, audio/mpeg, "
                                    "audio/mp4 or audio/webm",
                                    m->content_type);
            return TW_ERR_VOICE_BAD_FORMAT;
        }
    } else {
        u->declared = tw_audio_format_of_file_name(m->file_name);
        if (u->declared == TW_AUDIO_UNKNOWN) {
            tw_call_field_violation(call, "metadata.content_type",
                                    "is empty, and file_name does not end in .wav, .mp3, .m4a "
                                    "or .webm");
            return TW_ERR_VOICE_BAD_FORMAT;
        }
    }
    Tw__V1__VoiceNote *note = tw_arena_alloc(arena, sizeof *note);
    if (note == NULL)
        return TW_ERR_NO_MEMORY;
    tw__v1__voice_note__init(note);
    const char *language;
    if ((err = check_language(call, v, "metadata.language", m->language, &language)))
        return err;
    tw_id task;
    if (m->task_id[0] != '\0' && !tw_id_parse(m->task_id, &task))
        return tw_call_field_violation(call, "metadata.task_id", "is not a task id (a UUID)");
    Tw__V1__VocabularyTerm **vocabulary;
    if ((err = check_vocabulary(call, v, "metadata.vocabulary", m->vocabulary, m->n_vocabulary,
                                &vocabulary)))
        return err;

    /* A retry of an upload that was stored: answer now, read no more. */
    if (m->request_id[0] != '\0') {
        Tw__V1__VoiceNote *existing;
        err = tw_voice_note_by_request(v, &u->user, m->request_id, arena, &existing);
        if (err == TW_OK) {
            u->meta = existing;
            return TW_DEFERRED;
        }
        if (err != TW_ERR_NOT_FOUND)
            return err;
    }
    if (m->task_id[0] != '\0') {
        /* One of the caller's tasks: another user's is as unknown as none. */
        tw_task_record *rec;
        err = tw_task_get(app_of(call)->store, NULL, &u->user, &task, arena, &rec);
        if (err == TW_ERR_NOT_FOUND)
            return tw_call_error(call, err, "task %s not found", m->task_id);
        if (err)
            return err;
    }

    u->note = tw_id_new();
    char id[TW_ID_TEXT_SIZE];
    tw_id_format(&u->note, id);
    note->id = tw_arena_strdup(arena, id);
    note->request_id = tw_arena_strdup(arena, m->request_id);
    note->file_name = tw_arena_strdup(arena, m->file_name);
    note->content_type = tw_arena_strdup(
        arena, m->content_type[0] ? m->content_type : tw_audio_format_content_type(u->declared));
    note->language = (char *)language;
    note->task_id = tw_arena_strdup(arena, m->task_id);
    note->vocabulary = vocabulary;
    note->n_vocabulary = m->n_vocabulary;
    u->terms = tw_arena_alloc(arena, (m->n_vocabulary + 1) * sizeof *u->terms);
    if (note->id == NULL || note->request_id == NULL || note->file_name == NULL ||
        note->content_type == NULL || note->task_id == NULL || u->terms == NULL)
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

/* Bytes of the audio, in order: to blob storage, the hash, the WAV parser
 * and the live decoder. On a pool thread. */
static tw_err upload_write(struct upload *u, const uint8_t *data, size_t n)
{
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
    tw_voice_live_feed(u->live, data, n);
    return TW_OK;
}

/* On a pool thread: the pending bytes written, the blob opened first if
 * this is the first of them. */
static tw_err upload_write_pending(struct upload *u)
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
    tw_err err = u->pending_len ? upload_write(u, u->pending, u->pending_len) : TW_OK;
    u->pending_len = 0;
    return err;
}

/* Hands the upload back to the engine, which reads the next message; or,
 * after a failure or a cancel, drops it and ends the call. On a pool thread. */
static void upload_hand_back(struct upload *u, tw_err err)
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
    struct upload *u = arg;
    tw_err err = atomic_load(&u->owner) == OWN_CANCELLED ? TW_ERR_CANCELLED : TW_OK;
    if (err == TW_OK)
        err = upload_write_pending(u);
    upload_hand_back(u, err);
}

/* Copies bytes into the pending buffer. */
static bool pend(struct upload *u, const uint8_t *data, size_t n)
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
static tw_err upload_accept(struct upload *u, tw_audio_format found, const char *what)
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
static tw_err upload_chunk(struct upload *u, const ProtobufCBinaryData *chunk)
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

static tw_err upload_message(tw_call *call, const ProtobufCMessage *message,
                             ProtobufCMessage *response)
{
    const Tw__V1__UploadVoiceNoteRequest *in = (const void *)message;
    struct upload *u = tw_call_state(call);
    tw_err err;
    if (u->phase == UP_METADATA) {
        u->call = call;
        u->v = voice_of(call);
        if (u->v == NULL)
            return TW_ERR_SHUTTING_DOWN;
        if (in->content_case != TW__V1__UPLOAD_VOICE_NOTE_REQUEST__CONTENT_METADATA)
            return tw_call_field_violation(call, "metadata",
                                           "the first message must carry the metadata");
        err = upload_metadata(u, in->metadata);
        if (err == TW_DEFERRED) { /* a retry: the stored note */
            u->phase = UP_DONE;
            ((Tw__V1__UploadVoiceNoteResponse *)response)->voice_note = u->meta;
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
static int64_t upload_duration(struct upload *u)
{
    if (u->wav)
        return tw_wav_parser_duration_ms(&u->wav_parser);
    return tw_voice_probe_duration(u->v, u->blob_key, u->found);
}

/* Ends the commit with err: whatever the upload still holds is freed (the
 * audio too, unless it was committed). */
static void upload_commit_end(struct upload *u, tw_err err)
{
    upload_release(u);
    atomic_store(&u->owner, OWN_DONE);
    tw_call_finish(u->call, err);
}

/* On the voice pool: the last bytes written, the audio made durable, then
 * the note stored. A cancel from now on only marks the upload: a note
 * committed anyway is what a retry with its request_id gets. */
static void upload_commit(void *arg)
{
    struct upload *u = arg;
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
        note->duration = tw_voice_duration(arena, ms);

    Tw__V1__VoiceNote *stored;
    bool existed = false;
    tw_voice_live *live = u->live;
    u->live = NULL; /* taken by note_create */
    err = tw_voice_note_create(u->v, &u->user, note, u->blob_key, live, arena, &stored, &existed);
    if (err)
        tw_call_log_detail(call, "%s", tw_store_last_error());
    /* Not stored, or a concurrent retry stored the note first: this
     * upload's audio belongs to nothing. */
    if (err || existed)
        tw_blob_delete(tw_voice_blobs(u->v), u->blob_key);
    if (err == TW_OK)
        u->response->voice_note = stored;
    upload_commit_end(u, err); /* frees what is left; err may be TW_OK */
}

static tw_err upload_end(tw_call *call, ProtobufCMessage *response)
{
    struct upload *u = tw_call_state(call);
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

/* ---- GetVoiceNote, ListVoiceNotes ---------------------------------------- */

/* The note named by a request's id field, of the caller. */
static tw_err load_note(tw_call *call, const char *id, Tw__V1__VoiceNote **out)
{
    tw_voice *v = voice_of(call);
    tw_id user, note;
    tw_err err = v ? tw_call_user(call, &user) : TW_ERR_SHUTTING_DOWN;
    if (err == TW_OK)
        err = parse_note_id(call, "id", id, &note);
    if (err == TW_OK)
        err = tw_voice_note_get(v, &user, &note, tw_call_arena(call), out);
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "voice note %s not found", id);
    if (err && err != TW_ERR_VALIDATION)
        tw_call_log_detail(call, "%s", tw_store_last_error());
    return err;
}

static tw_err get_note(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__GetVoiceNoteRequest *in = (const void *)request;
    Tw__V1__GetVoiceNoteResponse *out = (void *)response;
    return load_note(call, in->id, &out->voice_note);
}

static tw_err list_notes(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__ListVoiceNotesRequest *in = (const void *)request;
    Tw__V1__ListVoiceNotesResponse *out = (void *)response;
    tw_id user;
    tw_err err = voice_of(call) ? tw_call_user(call, &user) : TW_ERR_SHUTTING_DOWN;
    if (err)
        return err;
    if (in->page_size < 0)
        return tw_call_field_violation(call, "page_size", "must not be negative");
    if (in->status < 0 || in->status > TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_FAILED)
        return tw_call_field_violation(call, "status", "is not a VoiceNoteStatus");
    char *token = NULL;
    size_t count = 0;
    err = tw_voice_note_list(voice_of(call), &user, in->status, in->page_size, in->page_token,
                             tw_call_arena(call), &out->voice_notes, &count, &token);
    if (err == TW_ERR_BAD_PAGE_TOKEN) {
        tw_call_field_violation(call, "page_token", "is not a token of this list");
        return err;
    }
    if (err) {
        tw_call_log_detail(call, "%s", tw_store_last_error());
        return err;
    }
    out->n_voice_notes = count;
    out->next_page_token = token ? token : "";
    return TW_OK;
}

/* ---- DownloadVoiceNote --------------------------------------------------- */

/* Per call, in its arena. The engine's thread starts reads (on drains) and
 * hears of cancels; reads run on the voice pool, and a drain may start the
 * next read while the one that asked for it is still winding up. `pending`
 * counts reads started and not finished; the stream is over once a read
 * ended it (ended, with end_err) or the client cancelled; whoever then
 * sees pending reach zero finishes the call, once (done): finishing frees
 * the arena, so never while another read still holds d. The mutex needs
 * no destroy on Linux and dies with the arena. */
struct download {
    tw_call *call;
    tw_voice *v;
    const char *blob_key;
    tw_blob_reader *reader;
    uint8_t *buffer;
    pthread_mutex_t lock;
    int pending;
    bool cancelled, ended, done;
    tw_err end_err;
};

/* A read is over (d->lock held): the stream ends with err unless it ended
 * before; true when the caller is the one to finish the call. */
static bool download_read_over_locked(struct download *d, bool end, tw_err err)
{
    d->pending--;
    if (end && !d->ended) {
        d->ended = true;
        d->end_err = err;
    }
    bool finish = !d->done && d->pending == 0 && (d->ended || d->cancelled);
    if (finish)
        d->done = true;
    return finish;
}

static void download_finish(struct download *d)
{
    tw_err err = d->ended ? d->end_err : TW_ERR_CANCELLED;
    tw_blob_reader_close(d->reader);
    d->reader = NULL;
    tw_call_finish(d->call, err);
}

static void download_drained(tw_call *call, void *ctx);

/* On the voice pool: a burst of chunks, then wait for them to drain. */
static void download_step(void *arg)
{
    struct download *d = arg;
    tw_call *call = d->call;
    tw_err err = TW_OK;
    bool end = false;
    if (d->reader == NULL) {
        err = tw_blob_reader_open(tw_voice_blobs(d->v), d->blob_key, 0, &d->reader, NULL);
        if (err == TW_ERR_NOT_FOUND) /* the note was deleted as the download began */
            err = tw_call_error(call, err, "the voice note's audio is gone");
        else if (err)
            tw_call_log_detail(call, "%s", tw_store_last_error());
    }
    Tw__V1__DownloadVoiceNoteResponse msg = TW__V1__DOWNLOAD_VOICE_NOTE_RESPONSE__INIT;
    for (int i = 0; i < DOWNLOAD_BURST && err == TW_OK && !end; i++) {
        size_t n = 0;
        err = tw_blob_reader_read(d->reader, d->buffer, DOWNLOAD_CHUNK, &n);
        if (err) {
            tw_call_log_detail(call, "%s", tw_store_last_error());
        } else if (n == 0) {
            end = true;
        } else {
            msg.chunk = (ProtobufCBinaryData){n, d->buffer};
            err = tw_call_send(call, &msg.base);
        }
    }
    end = end || err;
    /* Asked while this read still counts, so a cancel cannot finish the
     * call under it. */
    if (!end)
        tw_call_on_drain(call, download_drained, d);
    pthread_mutex_lock(&d->lock);
    bool finish = download_read_over_locked(d, end, err);
    pthread_mutex_unlock(&d->lock);
    if (finish)
        download_finish(d);
}

static void download_drained(tw_call *call, void *ctx)
{
    struct download *d = ctx;
    pthread_mutex_lock(&d->lock);
    bool go = !d->cancelled && !d->ended && !d->done;
    if (go)
        d->pending++;
    pthread_mutex_unlock(&d->lock);
    if (go && tw_pool_submit(tw_voice_pool(d->v), download_step, d) != TW_OK) {
        pthread_mutex_lock(&d->lock);
        bool finish = download_read_over_locked(d, true, TW_ERR_BUSY);
        pthread_mutex_unlock(&d->lock);
        if (finish)
            download_finish(d);
    }
}

static void download_cancelled(tw_call *call, void *ctx)
{
    struct download *d = ctx;
    pthread_mutex_lock(&d->lock);
    d->cancelled = true;
    bool finish = !d->done && d->pending == 0;
    if (finish)
        d->done = true;
    pthread_mutex_unlock(&d->lock);
    if (finish)
        download_finish(d);
}

static tw_err download(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__DownloadVoiceNoteRequest *in = (const void *)request;
    Tw__V1__VoiceNote *note;
    tw_err err = load_note(call, in->id, &note);
    if (err)
        return err;
    tw_id user, id;
    tw_call_user(call, &user);
    tw_id_parse(in->id, &id);
    struct download *d = tw_call_state(call);
    d->call = call;
    d->v = voice_of(call);
    d->blob_key = tw_voice_blob_key(&user, &id, tw_call_arena(call));
    d->buffer = tw_arena_alloc(tw_call_arena(call), DOWNLOAD_CHUNK);
    if (d->blob_key == NULL || d->buffer == NULL)
        return TW_ERR_NO_MEMORY;
    pthread_mutex_init(&d->lock, NULL);
    tw_call_on_cancel(call, download_cancelled, d);
    /* Nothing is queued yet: the first read starts now. */
    tw_call_on_drain(call, download_drained, d);
    return TW_DEFERRED;
}

/* ---- DeleteVoiceNote ----------------------------------------------------- */

struct removal {
    tw_call *call;
    tw_voice *v;
    tw_id user, note;
    const char *id;
};

static void delete_run(void *arg)
{
    struct removal *r = arg;
    tw_err err = tw_voice_note_delete(r->v, &r->user, &r->note);
    if (err == TW_ERR_NOT_FOUND)
        err = tw_call_error(r->call, err, "voice note %s not found", r->id);
    else if (err)
        tw_call_log_detail(r->call, "%s", tw_store_last_error());
    tw_call_finish(r->call, err);
}

static tw_err delete_note(tw_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage *response)
{
    const Tw__V1__DeleteVoiceNoteRequest *in = (const void *)request;
    struct removal *r = tw_call_state(call);
    tw_err err = voice_of(call) ? tw_call_user(call, &r->user) : TW_ERR_SHUTTING_DOWN;
    if (err == TW_OK)
        err = parse_note_id(call, "id", in->id, &r->note);
    if (err)
        return err;
    r->call = call;
    r->v = voice_of(call);
    r->id = in->id;
    /* Deleting audio syncs the disk: not on this thread. */
    err = tw_pool_submit(tw_voice_pool(r->v), delete_run, r);
    return err ? err : TW_DEFERRED;
}

/* ---- RetranscribeVoiceNote, WatchVoiceNote --------------------------------- */

static tw_err retranscribe(tw_call *call, const ProtobufCMessage *request,
                           ProtobufCMessage *response)
{
    const Tw__V1__RetranscribeVoiceNoteRequest *in = (const void *)request;
    Tw__V1__RetranscribeVoiceNoteResponse *out = (void *)response;
    tw_voice *v = voice_of(call);
    tw_id user, note;
    tw_err err = v ? tw_call_user(call, &user) : TW_ERR_SHUTTING_DOWN;
    if (err == TW_OK)
        err = parse_note_id(call, "id", in->id, &note);
    const char *language = NULL;
    if (err == TW_OK && in->language[0] != '\0')
        err = check_language(call, v, "language", in->language, &language);
    if (err == TW_OK && in->clear_vocabulary && in->n_vocabulary > 0)
        err = tw_call_field_violation(call, "clear_vocabulary",
                                      "cannot be set with a new vocabulary");
    Tw__V1__VocabularyTerm **vocabulary = NULL;
    if (err == TW_OK)
        err =
            check_vocabulary(call, v, "vocabulary", in->vocabulary, in->n_vocabulary, &vocabulary);
    if (err)
        return err;
    bool replace = in->clear_vocabulary || in->n_vocabulary > 0;
    err = tw_voice_note_retranscribe(v, &user, &note, language, replace, vocabulary,
                                     in->n_vocabulary, tw_call_arena(call), &out->voice_note);
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "voice note %s not found", in->id);
    if (err)
        tw_call_log_detail(call, "%s", tw_store_last_error());
    return err;
}

static tw_err watch(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__WatchVoiceNoteRequest *in = (const void *)request;
    tw_id user, note;
    tw_err err = voice_of(call) ? tw_call_user(call, &user) : TW_ERR_SHUTTING_DOWN;
    if (err == TW_OK)
        err = parse_note_id(call, "id", in->id, &note);
    if (err == TW_OK)
        err = tw_voice_watch(voice_of(call), call, &user, &note);
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "voice note %s not found", in->id);
    return err;
}

/* ---- the service ----------------------------------------------------------- */

static const tw_method voice_methods[] = {
    {"UploadVoiceNote", TW_CLIENT_STREAM, TW_WRITE, .on_message = upload_message,
     .on_end = upload_end, .state_size = sizeof(struct upload)},
    {"GetVoiceNote", TW_UNARY, 0, .handle = get_note},
    {"ListVoiceNotes", TW_UNARY, 0, .handle = list_notes},
    {"DownloadVoiceNote", TW_SERVER_STREAM, 0, .handle = download,
     .state_size = sizeof(struct download)},
    {"DeleteVoiceNote", TW_UNARY, TW_WRITE, .handle = delete_note,
     .state_size = sizeof(struct removal)},
    {"RetranscribeVoiceNote", TW_UNARY, TW_WRITE, .handle = retranscribe},
    {"WatchVoiceNote", TW_SERVER_STREAM, 0, .handle = watch},
    {NULL},
};

static void voice_service_shutdown(void *ctx)
{
    tw_app *app = ctx;
    tw_voice_shutdown(app->voice);
}

/* Account deletion: notes are deleted as DeleteVoiceNote does (record,
 * indexes, the shared by-age entry, audio, a running transcription). */
static tw_err voice_forget_user(tw_app *app, const tw_id *user)
{
    return app->voice != NULL ? tw_voice_forget_user(app->voice, user) : TW_OK;
}

const tw_service_def tw_voice_service = {
    .rpc = {.descriptor = &tw__v1__voice_service__descriptor,
            .methods = voice_methods,
            .shutdown = voice_service_shutdown},
    .forget_user = voice_forget_user,
};
