/*
 * tw.v1.VoiceService: voice notes over RPC. The notes, their transcription
 * and watches live in server/voice/voice.h; this file is the calls, but for
 * UploadVoiceNote's state machine, which is voice_upload.c.
 *
 * DownloadVoiceNote reads on the voice pool and paces itself with
 * tw_call_on_drain, so a 25 MB note never sits in memory. Deleting blocks
 * on the disk and runs on the pool too.
 */
#include "services.h"
#include "voice_call.h"
#include "voice_upload.h"

#include "deepgram.h"
#include "tw_id.h"
#include "tw_utf8.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

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

tw_voice *tw_voice_call_voice(tw_call *call)
{
    return app_of(call)->voice;
}

/* Whether s is printable ASCII without spaces. */
static bool printable(const char *s)
{
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

const char *tw_voice_call_language(tw_call *call, tw_voice *v, const char *field,
                                   const char *language)
{
    if (language[0] == '\0')
        return DEFAULT_LANGUAGE;
    if (strlen(language) > LANGUAGE_MAX || !printable(language)) {
        tw_call_field_violation(call, field, "is not a BCP 47 language tag");
        return NULL;
    }
    tw_stt_engine *engine = tw_voice_engine(v);
    if (!tw_stt_supports_language(engine, language)) {
        tw_call_field_violation(call, field,
                                "\"%s\" cannot be transcribed by this server's engine (%s)",
                                language, tw_stt_name(engine));
        return NULL;
    }
    return language;
}

tw_err tw_voice_call_vocabulary(tw_call *call, tw_voice *v, const char *field,
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
        size_t chars = tw_utf8_chars(t->phrase);
        bool phrase_ok = chars > 0 && chars <= PHRASE_MAX;
        tw_stt_term term = {t->phrase, t->pronunciation};
        if (!phrase_ok) {
            snprintf(name, sizeof name, "%s[%zu].phrase", field, i);
            tw_call_field_violation(call, name, "must have 1 to %d characters", PHRASE_MAX);
        }
        snprintf(name, sizeof name, "%s[%zu].pronunciation", field, i);
        if (strlen(t->pronunciation) > PRONUNCIATION_MAX)
            tw_call_field_violation(call, name, "is longer than %d bytes", PRONUNCIATION_MAX);
        else if (phrase_ok && !tw_stt_term_valid(tw_voice_engine(v), &term, why, sizeof why))
            tw_call_field_violation(call, name, "%s", why);
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

/* The caller and the note a request's id field names (the engine checked
 * that it is a UUID). */
static tw_err caller_note(tw_call *call, const char *id, tw_id *user, tw_id *note)
{
    if (tw_voice_call_voice(call) == NULL)
        return TW_ERR_SHUTTING_DOWN;
    tw_kit_id(id, note);
    return tw_call_user(call, user);
}

/* ---- GetVoiceNote, ListVoiceNotes ---------------------------------------- */

/* The note named by a request's id field, of the caller. */
static tw_err load_note(tw_call *call, const char *id, Tw__V1__VoiceNote **out)
{
    tw_id user, note;
    tw_err err = caller_note(call, id, &user, &note);
    if (err == TW_OK)
        err = tw_voice_note_get(tw_voice_call_voice(call), &user, &note, tw_call_arena(call), out);
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "voice note %s not found", id);
    return tw_kit_fail(call, err);
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
    tw_voice *v = tw_voice_call_voice(call);
    tw_id user;
    tw_kit_page page;
    tw_err err = v ? tw_call_user(call, &user) : TW_ERR_SHUTTING_DOWN;
    if (err)
        return err;
    if (in->status < 0 || in->status > TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_FAILED)
        tw_call_field_violation(call, "status", "is not a VoiceNoteStatus");
    err = tw_kit_page_open(call, app_of(call)->store, &page);
    if (err == TW_OK && tw_violations_any(tw_call_violations(call)))
        err = TW_ERR_VALIDATION;
    if (err)
        return err;
    uint8_t *next;
    size_t next_len, count;
    if ((err =
             tw_voice_note_list(v, &user, in->status, page.cursor, page.cursor_len, page.size,
                                tw_call_arena(call), &out->voice_notes, &count, &next, &next_len)))
        return tw_kit_fail(call, err);
    out->n_voice_notes = count;
    return tw_kit_page_close(call, &page, next, next_len, &out->next_page_token);
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
    caller_note(call, in->id, &user, &id);
    struct download *d = tw_call_state(call);
    d->call = call;
    d->v = tw_voice_call_voice(call);
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
    tw_call_finish(r->call, tw_kit_fail(r->call, err));
}

static tw_err delete_note(tw_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage *response)
{
    const Tw__V1__DeleteVoiceNoteRequest *in = (const void *)request;
    struct removal *r = tw_call_state(call);
    tw_err err = caller_note(call, in->id, &r->user, &r->note);
    if (err)
        return err;
    r->call = call;
    r->v = tw_voice_call_voice(call);
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
    tw_voice *v = tw_voice_call_voice(call);
    tw_id user, note;
    tw_err err = caller_note(call, in->id, &user, &note);
    if (err)
        return err;
    /* Every bad field, then one answer. */
    const char *language = NULL;
    if (in->language[0] != '\0')
        language = tw_voice_call_language(call, v, "language", in->language);
    if (in->clear_vocabulary && in->n_vocabulary > 0)
        tw_call_field_violation(call, "clear_vocabulary", "cannot be set with a new vocabulary");
    Tw__V1__VocabularyTerm **vocabulary = NULL;
    if ((err = tw_voice_call_vocabulary(call, v, "vocabulary", in->vocabulary, in->n_vocabulary,
                                        &vocabulary)))
        return err;
    if (tw_violations_any(tw_call_violations(call)))
        return TW_ERR_VALIDATION;
    bool replace = in->clear_vocabulary || in->n_vocabulary > 0;
    err = tw_voice_note_retranscribe(v, &user, &note, language, replace, vocabulary,
                                     in->n_vocabulary, tw_call_arena(call), &out->voice_note);
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "voice note %s not found", in->id);
    return tw_kit_fail(call, err);
}

static tw_err watch(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__WatchVoiceNoteRequest *in = (const void *)request;
    tw_id user, note;
    tw_err err = caller_note(call, in->id, &user, &note);
    if (err == TW_OK)
        err = tw_voice_call_watch(call, tw_voice_call_voice(call), &user, &note);
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "voice note %s not found", in->id);
    return err;
}

/* ---- the service ----------------------------------------------------------- */

static const tw_method voice_methods[] = {
    {"UploadVoiceNote", TW_CLIENT_STREAM, TW_WRITE | TW_METERED | TW_METERED_AUDIO,
     .on_message = tw_voice_upload_message, .on_end = tw_voice_upload_end,
     .state_size = sizeof(struct tw_voice_upload), .state_free = tw_voice_upload_free},
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

static const tw_service_counter voice_counters[] = {
    {"voice_note_uploads", "tw_voice_note_uploads_total", "Voice notes uploaded, by format."},
    {"voice_transcriptions", "tw_voice_transcriptions_total",
     "Voice note transcriptions ended, by status (transcribed, failed)."},
    {NULL},
};

/* Deepgram's circuit breaker, when transcription goes to Deepgram. */
static void voice_write_metrics(tw_app *app, FILE *out)
{
    fprintf(out, "# HELP tw_upstream_circuit_state 1 for the state each outside service's circuit "
                 "breaker is in.\n# TYPE tw_upstream_circuit_state gauge\n");
    if (app->deepgram == NULL)
        return;
    const char *state = tw_deepgram_breaker_state(app->deepgram);
    static const char *const states[] = {"closed", "open", "half_open"};
    for (int i = 0; i < 3; i++)
        fprintf(out, "tw_upstream_circuit_state{service=\"deepgram\",state=\"%s\"} %d\n", states[i],
                strcmp(state, states[i]) == 0);
}

const tw_service_def tw_voice_service = {
    .rpc = {.descriptor = &tw__v1__voice_service__descriptor,
            .methods = voice_methods,
            .shutdown = voice_service_shutdown},
    .forget_user = voice_forget_user,
    .counters = voice_counters,
    .write_metrics = voice_write_metrics,
};
