/*
 * Voice notes in the store (voice.h): the record, its indexes and change-log
 * entries, and the calls that create, read, list, delete and retranscribe
 * notes. Each write is one transaction run by tw_txn_run (retried on
 * conflict), so a note, its indexes, its change-log entry, its counters and
 * its job exist together or not at all.
 */
#include "voice_internal.h"

#include "jobs.h"
#include "pbtime.h"
#include "tw_changelog.h"
#include "tw_counter.h"
#include "tw_jobs.h"
#include "tw_key.h"
#include "tw_log.h"
#include "tw_owned.h"
#include "tw_page.h"
#include "tw/v1/billing_service.pb-c.h" /* UsageResource */
#include "tw_txn.h"

#include <string.h>

#define RESOURCE_TYPE "voice_note"
static void *arena_pb_alloc(void *arena, size_t size)
{
    return tw_arena_alloc(arena, size ? size : 1);
}
static void arena_pb_free(void *arena, void *ptr)
{
    (void)arena, (void)ptr;
}

ProtobufCAllocator voice_allocator(tw_arena *arena)
{
    return (ProtobufCAllocator){arena_pb_alloc, arena_pb_free, arena};
}

/* ---- keys ----------------------------------------------------------------- */

static void status_key(tw_key *k, const tw_id *user, uint32_t status, const tw_id *note)
{
    tw_key_init(k, TW_KF_VOICE_NOTE_BY_STATUS);
    tw_key_id(k, user);
    tw_key_u32(k, status);
    if (note != NULL)
        tw_key_id(k, note);
}

static void age_key(tw_key *k, int64_t create_ms, const tw_id *user, const tw_id *note)
{
    tw_key_init(k, TW_KF_VOICE_NOTE_BY_AGE);
    tw_key_i64(k, create_ms);
    tw_key_id(k, user);
    tw_key_id(k, note);
}

/* ---- the record ----------------------------------------------------------- */

tw_err voice_record_load(tw_voice *v, tw_txn *t, const tw_id *user, const tw_id *note,
                         tw_arena *arena, Tw__Store__V1__VoiceNoteRecord **out)
{
    ProtobufCMessage *msg;
    tw_err err = tw_owned_get(v->store, t, TW_KF_VOICE_NOTE, user, note, arena, &msg);
    if (err)
        return err;
    *out = (Tw__Store__V1__VoiceNoteRecord *)msg;
    if ((*out)->note == NULL)
        return TW_ERR_DB_CORRUPT;
    return TW_OK;
}

tw_err voice_record_put(tw_txn *t, const tw_id *user, const tw_id *note,
                        const Tw__Store__V1__VoiceNoteRecord *old,
                        Tw__Store__V1__VoiceNoteRecord *rec)
{
    tw_key k;
    tw_err err = tw_owned_put(t, TW_KF_VOICE_NOTE, user, note, &rec->base);
    uint32_t status = (uint32_t)rec->note->status;
    if (err == TW_OK && old != NULL && (uint32_t)old->note->status != status) {
        status_key(&k, user, (uint32_t)old->note->status, note);
        err = tw_txn_delete(t, &k);
    }
    if (err == TW_OK && (old == NULL || (uint32_t)old->note->status != status)) {
        status_key(&k, user, status, note);
        err = tw_txn_put(t, &k, NULL);
    }
    if (err == TW_OK && old == NULL) {
        age_key(&k, rec->create_unix_ms, user, note);
        err = tw_txn_put(t, &k, NULL);
    }
    if (err == TW_OK)
        err = tw_txn_changelog_append(t, user, RESOURCE_TYPE, note, TW_CHANGE_UPSERT, NULL);
    return err;
}

static tw_err record_delete(tw_txn *t, const tw_id *user, const tw_id *note,
                            const Tw__Store__V1__VoiceNoteRecord *rec)
{
    tw_key k;
    tw_err err = tw_owned_delete(t, TW_KF_VOICE_NOTE, user, note);
    if (err == TW_OK) {
        status_key(&k, user, (uint32_t)rec->note->status, note);
        err = tw_txn_delete(t, &k);
    }
    if (err == TW_OK) {
        age_key(&k, rec->create_unix_ms, user, note);
        err = tw_txn_delete(t, &k);
    }
    if (err == TW_OK)
        err = tw_txn_changelog_append(t, user, RESOURCE_TYPE, note, TW_CHANGE_TOMBSTONE, NULL);
    return err;
}

tw_err voice_job_enqueue(tw_voice *v, tw_txn *t, const tw_id *user, const tw_id *note,
                         uint32_t generation)
{
    Tw__Store__V1__VoiceTranscribeJob job = TW__STORE__V1__VOICE_TRANSCRIBE_JOB__INIT;
    job.user_id = (ProtobufCBinaryData){TW_ID_BYTES, (uint8_t *)user->bytes};
    job.note_id = (ProtobufCBinaryData){TW_ID_BYTES, (uint8_t *)note->bytes};
    job.generation = generation;
    tw_job_options opts = {.max_attempts = v->job_attempts};
    return tw_txn_job_enqueue_msg(t, TW_VOICE_JOB_TYPE, &job.base, &opts, NULL);
}

/* ---- create ----------------------------------------------------------------- */

void tw_voice_note_prepare(tw_voice *v, const tw_id *note, tw_voice_live *live)
{
    if (live != NULL)
        voice_live_park(v, live, note, 1);
}

tw_err tw_txn_voice_note_create(tw_txn *t, tw_voice *v, const tw_id *user,
                                const Tw__V1__VoiceNote *in, const char *blob_key, bool live,
                                tw_arena *arena, Tw__V1__VoiceNote **out)
{
    tw_id id;
    if (!tw_id_parse(in->id, &id))
        return TW_ERR_INTERNAL;
    int64_t now = voice_now_ms(v);
    Tw__Store__V1__VoiceNoteRecord *rec = tw_arena_alloc(arena, sizeof *rec);
    Tw__V1__VoiceNote *note = tw_arena_alloc(arena, sizeof *note);
    if (rec == NULL || note == NULL)
        return TW_ERR_NO_MEMORY;
    tw__store__v1__voice_note_record__init(rec);
    *note = *in;
    note->status = live ? TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBING
                        : TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_PENDING;
    note->create_time = tw_timestamp_new(arena, now);
    note->update_time = tw_timestamp_new(arena, now);
    rec->note = note;
    rec->blob_key = (char *)blob_key;
    rec->generation = 1;
    rec->create_unix_ms = now;
    tw_err err = voice_record_put(t, user, &id, NULL, rec);
    if (err == TW_OK)
        err = voice_job_enqueue(v, t, user, &id, rec->generation);
    if (err == TW_OK) {
        char dims[32];
        snprintf(dims, sizeof dims, "format=%s",
                 tw_audio_format_name((tw_audio_format)note->format));
        tw_counter counter = {.name = "voice_note_uploads", .dims = dims};
        err = tw_txn_counter_add(t, &counter, tw_store_day(now), 1);
    }
    *out = note;
    return err;
}

void tw_voice_note_created(tw_voice *v, const tw_id *note, bool stored)
{
    if (stored)
        tw_jobs_wake(v->runner);
    else
        tw_voice_live_abandon(voice_live_take(v, note, 0));
}

/* ---- read -------------------------------------------------------------------- */

tw_err tw_voice_note_get(tw_voice *v, const tw_id *user, const tw_id *note, tw_arena *arena,
                         Tw__V1__VoiceNote **out)
{
    Tw__Store__V1__VoiceNoteRecord *rec;
    tw_err err = voice_record_load(v, NULL, user, note, arena, &rec);
    if (err == TW_OK)
        *out = rec->note;
    return err;
}

tw_err tw_voice_note_list(tw_voice *v, const tw_id *user, Tw__V1__VoiceNoteStatus status,
                          const uint8_t *cursor, size_t cursor_len, uint32_t size, tw_arena *arena,
                          Tw__V1__VoiceNote ***notes, size_t *count, uint8_t **next,
                          size_t *next_len)
{
    tw_key prefix;
    if (status != 0)
        status_key(&prefix, user, (uint32_t)status, NULL);
    else {
        tw_key_init(&prefix, TW_KF_VOICE_NOTE);
        tw_key_id(&prefix, user);
    }
    *count = 0;
    *next = NULL;
    *next_len = 0;
    if ((*notes = tw_arena_alloc(arena, (size + 1) * sizeof **notes)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw_store_iter *it;
    tw_err err = tw_store_scan(v->store, &prefix, cursor, cursor_len, true, &it);
    if (err)
        return err;
    uint8_t last[TW_KEY_MAX];
    size_t last_len = 0;
    while (err == TW_OK && tw_store_iter_next(it)) {
        if (*count == size) {
            /* More remain: go on after the last one listed. */
            err = tw_store_page_cursor(arena, last, last_len, next, next_len);
            break;
        }
        const uint8_t *key;
        size_t key_len;
        tw_store_iter_key(it, &key, &key_len);
        memcpy(last, key, key_len);
        last_len = key_len;
        Tw__Store__V1__VoiceNoteRecord *rec = NULL;
        if (status == 0) {
            tw_value val;
            err = tw_store_iter_value(it, arena, &val);
            rec = err ? NULL : (Tw__Store__V1__VoiceNoteRecord *)val.msg;
        } else {
            tw_key_reader r;
            tw_store_iter_read_key(it, &r);
            tw_id owner, note;
            uint32_t st;
            tw_key_read_id(&r, &owner);
            tw_key_read_u32(&r, &st);
            tw_key_read_id(&r, &note);
            err = r.err ? r.err : voice_record_load(v, NULL, user, &note, arena, &rec);
            if (err == TW_ERR_NOT_FOUND) { /* deleted since the scan began */
                err = TW_OK;
                continue;
            }
        }
        if (err == TW_OK && (rec == NULL || rec->note == NULL))
            err = TW_ERR_DB_CORRUPT;
        if (err == TW_OK)
            (*notes)[(*count)++] = rec->note;
    }
    tw_err closed = tw_store_iter_close(it);
    return err ? err : closed;
}

/* ---- delete -------------------------------------------------------------------- */

struct delete
{
    tw_voice *v;
    const tw_id *user, *note;
    tw_arena *arena;
    const char *blob_key;
};

static tw_err delete_apply(tw_txn *t, void *ctx)
{
    struct delete *d = ctx;
    Tw__Store__V1__VoiceNoteRecord *rec;
    tw_err err = voice_record_load(d->v, t, d->user, d->note, d->arena, &rec);
    if (err == TW_OK)
        err = record_delete(t, d->user, d->note, rec);
    if (err == TW_OK)
        d->blob_key = rec->blob_key;
    /* Storage is a level: the note's bytes are free again (its minutes
     * stay used). */
    tw_app *app = d->v->app;
    if (err == TW_OK && app->use != NULL && rec->note->size_bytes > 0)
        err = app->use(app, NULL, t, d->user, TW__V1__USAGE_RESOURCE__USAGE_RESOURCE_STORAGE_BYTES,
                       -(int64_t)rec->note->size_bytes, voice_now_ms(d->v));
    return err;
}

tw_err tw_voice_note_delete(tw_voice *v, const tw_id *user, const tw_id *note)
{
    tw_arena *arena = tw_arena_new(2048);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    struct delete d = {v, user, note, arena, NULL};
    tw_err err = tw_txn_run(v->store, delete_apply, &d);
    if (err == TW_OK) {
        voice_abort_transcriptions(v, note, 0);
        tw_voice_live_abandon(voice_live_take(v, note, 0));
        /* The note is gone; audio a failure leaves behind has no owner
         * and the sweep removes it. */
        tw_err gone = tw_blob_delete(v->blobs, d.blob_key);
        if (gone && gone != TW_ERR_NOT_FOUND)
            tw_log(TW_LOG_WARN, "voice note audio not deleted; the sweep will",
                   json_pack("{s:s, s:s}", "blob", d.blob_key, "detail", tw_store_last_error()));
        voice_notify(v, user, note);
    }
    tw_arena_free(arena);
    return err;
}

/* Notes deleted per pass: ids are read, then each note is deleted in a
 * transaction of its own, and the scan starts again. */
#define FORGET_BATCH 64

tw_err tw_voice_forget_user(tw_voice *v, const tw_id *user)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_VOICE_NOTE);
    tw_key_id(&prefix, user);
    tw_id notes[FORGET_BATCH];
    size_t n;
    tw_err err;
    do {
        tw_store_iter *it;
        if ((err = tw_store_scan(v->store, &prefix, NULL, 0, false, &it)))
            return err;
        for (n = 0; n < FORGET_BATCH && tw_store_iter_next(it); n++) {
            tw_key_reader r;
            tw_id owner;
            tw_store_iter_read_key(it, &r);
            tw_key_read_id(&r, &owner);
            tw_key_read_id(&r, &notes[n]);
        }
        if ((err = tw_store_iter_close(it)))
            return err;
        for (size_t i = 0; i < n && err == TW_OK; i++) {
            err = tw_voice_note_delete(v, user, &notes[i]);
            if (err == TW_ERR_NOT_FOUND) /* deleted meanwhile by its owner */
                err = TW_OK;
        }
    } while (err == TW_OK && n == FORGET_BATCH);
    return err;
}

struct age_entry {
    int64_t create_ms;
    const tw_id *user, *note;
};

static tw_err age_entry_apply(tw_txn *t, void *ctx)
{
    struct age_entry *a = ctx;
    tw_key k;
    age_key(&k, a->create_ms, a->user, a->note);
    return tw_txn_delete(t, &k);
}

tw_err voice_age_entry_delete(tw_voice *v, int64_t create_ms, const tw_id *user, const tw_id *note)
{
    struct age_entry a = {create_ms, user, note};
    return tw_txn_run(v->store, age_entry_apply, &a);
}

/* ---- retranscribe ----------------------------------------------------------------- */

struct retranscribe {
    tw_voice *v;
    const tw_id *user, *note;
    const char *language;
    bool replace_vocabulary;
    Tw__V1__VocabularyTerm *const *vocabulary;
    size_t nvocabulary;
    tw_arena *arena;
    Tw__V1__VoiceNote *out;
    uint32_t generation;
};

static tw_err retranscribe_apply(tw_txn *t, void *ctx)
{
    struct retranscribe *r = ctx;
    Tw__Store__V1__VoiceNoteRecord *old, *rec;
    tw_err err = voice_record_load(r->v, t, r->user, r->note, r->arena, &old);
    rec = err ? NULL : tw_arena_alloc(r->arena, sizeof *rec);
    Tw__V1__VoiceNote *note = err ? NULL : tw_arena_alloc(r->arena, sizeof *note);
    if (err == TW_OK && (rec == NULL || note == NULL))
        err = TW_ERR_NO_MEMORY;
    if (err)
        return err;
    *rec = *old;
    *note = *old->note;
    rec->note = note;
    rec->generation = old->generation + 1;
    note->status = TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_PENDING;
    note->transcript = NULL;
    note->failure_reason = "";
    if (r->language != NULL)
        note->language = (char *)r->language;
    if (r->replace_vocabulary) {
        note->vocabulary = (Tw__V1__VocabularyTerm **)r->vocabulary;
        note->n_vocabulary = r->nvocabulary;
    }
    note->update_time = tw_timestamp_new(r->arena, voice_now_ms(r->v));
    err = voice_record_put(t, r->user, r->note, old, rec);
    if (err == TW_OK)
        err = voice_job_enqueue(r->v, t, r->user, r->note, rec->generation);
    r->out = note;
    r->generation = rec->generation;
    return err;
}

tw_err tw_voice_note_retranscribe(tw_voice *v, const tw_id *user, const tw_id *note,
                                  const char *language, bool replace_vocabulary,
                                  Tw__V1__VocabularyTerm *const *vocabulary, size_t nvocabulary,
                                  tw_arena *arena, Tw__V1__VoiceNote **out)
{
    struct retranscribe r = {v,          user,        note,  language, replace_vocabulary,
                             vocabulary, nvocabulary, arena, NULL,     0};
    tw_err err = tw_txn_run(v->store, retranscribe_apply, &r);
    if (err)
        return err;
    /* The old generation's work is void now. */
    uint32_t generation = r.generation;
    voice_abort_transcriptions(v, note, generation);
    tw_voice_live_abandon(voice_live_take(v, note, 0)); /* only uploads have one */
    tw_jobs_wake(v->runner);
    voice_notify(v, user, note);
    *out = r.out;
    return TW_OK;
}
