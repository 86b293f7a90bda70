/*
 * Unit tests for server/voice/voice_notes.c: a note, its indexes, its
 * change-log entry, its upload counter and its transcription job are
 * written together (retries by request_id are the service kit's, tested
 * with the service); lists page newest first by their cursors, per user
 * and status; deleting removes the
 * note's every key and its audio; forgetting a user removes all of theirs;
 * retranscribing starts a new generation. Voice is shut down at start
 * (voice_app.h), so no transcription changes what a test reads.
 */
#include "tw_check.h"
#include "voice_app.h"

#include "tw_changelog.h"
#include "tw_counter.h"
#include "tw_page.h"
#include "voice/voice_internal.h"

#include <stdio.h>
#include <string.h>

#define PENDING     TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_PENDING
#define TRANSCRIBED TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBED
#define FAILED      TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_FAILED

/* Ids in increasing order by n (UUIDv7-shaped). */
static tw_id note_id(uint16_t n)
{
    return (tw_id){{0x01, 0x90, 0x00, 0x00, 0x00, 0x00, 0x70, 0x00,
                    0x80, [14] = (uint8_t)(n >> 8), [15] = (uint8_t)n}};
}

/* What an upload hands tw_txn_voice_note_create. */
static Tw__V1__VoiceNote *upload(const tw_id *id, const char *request_id)
{
    Tw__V1__VoiceNote *note = tw_arena_alloc(fx.arena, sizeof *note);
    tw__v1__voice_note__init(note);
    note->id = tw_arena_alloc(fx.arena, TW_ID_TEXT_SIZE);
    tw_id_format(id, note->id);
    note->file_name = "memo.wav";
    note->content_type = "audio/wav";
    note->format = TW__V1__AUDIO_FORMAT__AUDIO_FORMAT_WAV;
    note->size_bytes = 5;
    note->language = "en-US";
    note->request_id = (char *)(request_id ? request_id : "");
    return note;
}

static tw_err create(const tw_id *user, const tw_id *id, const char *request_id,
                     Tw__V1__VoiceNote **out)
{
    const char *key = tw_voice_blob_key(user, id, fx.arena);
    va_put_blob(key, "audio");
    return va_create_note(user, upload(id, request_id), key, fx.arena, out);
}

static void create_ok(const tw_id *user, const tw_id *id, const char *request_id)
{
    Tw__V1__VoiceNote *out;
    ck_assert_int_eq(create(user, id, request_id, &out), TW_OK);
}

/* Keys of family under prefix parts: (family) alone, or (family, user). */
static int keys_of(tw_kf family, const tw_id *user)
{
    tw_key prefix;
    tw_key_init(&prefix, family);
    if (user != NULL)
        tw_key_id(&prefix, user);
    return fx_count_keys(fx.store, &prefix);
}

/* Every key a note has: record, status, age and request entries. */
static int note_keys(const tw_id *user)
{
    return keys_of(TW_KF_VOICE_NOTE, user) + keys_of(TW_KF_VOICE_NOTE_BY_STATUS, user);
}

static tw_change_page changes(const tw_id *user)
{
    tw_change_page page;
    ck_assert_int_eq(tw_store_changelog_read(fx.store, user, 0, 1000, fx.arena, &page), TW_OK);
    return page;
}

static bool blob_exists(const tw_id *user, const tw_id *id)
{
    tw_blob_info info;
    tw_err err = tw_blob_stat(fxb.blobs, tw_voice_blob_key(user, id, fx.arena), &info);
    ck_assert(err == TW_OK || err == TW_ERR_NOT_FOUND);
    return err == TW_OK;
}

/* ---- create and read ---------------------------------------------------------- */

START_TEST(a_new_note_is_stored_with_everything_it_needs)
{
    tw_id id = note_id(1);
    Tw__V1__VoiceNote *out;
    ck_assert_int_eq(create(&fx_alice, &id, "req-1", &out), TW_OK);
    ck_assert_int_eq(out->status, PENDING);
    ck_assert_int_eq(out->create_time->seconds, FX_EPOCH_MS / 1000);
    ck_assert_int_eq(out->update_time->seconds, FX_EPOCH_MS / 1000);

    Tw__Store__V1__VoiceNoteRecord *rec;
    ck_assert_int_eq(voice_record_load(va_app.voice, NULL, &fx_alice, &id, fx.arena, &rec), TW_OK);
    ck_assert_uint_eq(rec->generation, 1);
    ck_assert_int_eq(rec->create_unix_ms, FX_EPOCH_MS);
    ck_assert_str_eq(rec->blob_key, tw_voice_blob_key(&fx_alice, &id, fx.arena));
    ck_assert_str_eq(rec->note->file_name, "memo.wav");
    /* Record and status entries; the age entry is shared by all. (A
     * request_id is remembered by the service kit, not here.) */
    ck_assert_int_eq(note_keys(&fx_alice), 2);
    ck_assert_int_eq(keys_of(TW_KF_VOICE_NOTE_BY_AGE, NULL), 1);
    tw_change_page page = changes(&fx_alice);
    ck_assert_uint_eq(page.count, 1);
    ck_assert_str_eq(page.changes[0].resource_type, "voice_note");
    ck_assert(tw_id_equal(&page.changes[0].resource_id, &id));
    ck_assert_int_eq(keys_of(TW_KF_JOB, NULL), 1);
    tw_counter uploads = {.name = "voice_note_uploads", .dims = "format=wav"};
    uint64_t total = 0;
    ck_assert_int_eq(
        tw_store_counter_read(fx.store, &uploads, tw_store_day(FX_EPOCH_MS), 1, NULL, &total),
        TW_OK);
    ck_assert_uint_eq(total, 1);
}
END_TEST

START_TEST(a_note_id_that_does_not_parse_stores_nothing)
{
    Tw__V1__VoiceNote *note = upload(&(tw_id){{0}}, NULL), *out;
    note->id = "not-an-id";
    ck_assert_int_eq(va_create_note(&fx_alice, note, "k/k", fx.arena, &out), TW_ERR_INTERNAL);
    ck_assert_int_eq(note_keys(&fx_alice), 0);
    ck_assert_int_eq(keys_of(TW_KF_JOB, NULL), 0);
}
END_TEST

START_TEST(notes_are_read_by_id_by_their_owner_only)
{
    tw_id id = note_id(1);
    create_ok(&fx_alice, &id, "req-1");
    Tw__V1__VoiceNote *got;
    ck_assert_int_eq(tw_voice_note_get(va_app.voice, &fx_alice, &id, fx.arena, &got), TW_OK);
    ck_assert_str_eq(got->request_id, "req-1");
    ck_assert_str_eq(got->file_name, "memo.wav");
    ck_assert_int_eq(tw_voice_note_get(va_app.voice, &fx_bob, &id, fx.arena, &got),
                     TW_ERR_NOT_FOUND);
}
END_TEST

/* ---- lists ---------------------------------------------------------------------- */

/* Sets note n's status as a transcription would. */
static void set_status(const tw_id *user, const tw_id *id, Tw__V1__VoiceNoteStatus status)
{
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    Tw__Store__V1__VoiceNoteRecord *old, rec;
    ck_assert_int_eq(voice_record_load(va_app.voice, t, user, id, fx.arena, &old), TW_OK);
    Tw__V1__VoiceNote note = *old->note;
    rec = *old;
    rec.note = &note;
    note.status = status;
    ck_assert_int_eq(voice_record_put(t, user, id, old, &rec), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
}

/* Lists every page of user's notes of status (0: all) with page_size,
 * checking each is newest first; returns how many notes in all and the
 * first id's last byte in ids (in order). */
static size_t list_all(const tw_id *user, Tw__V1__VoiceNoteStatus status, int32_t page_size,
                       uint8_t *ids, size_t cap)
{
    size_t total = 0;
    const uint8_t *cursor = NULL;
    size_t cursor_len = 0;
    for (int pages = 0; pages < 100; pages++) {
        Tw__V1__VoiceNote **notes;
        size_t count, next_len;
        uint8_t *next;
        ck_assert_int_eq(tw_voice_note_list(va_app.voice, user, status, cursor, cursor_len,
                                            (uint32_t)page_size, fx.arena, &notes, &count, &next,
                                            &next_len),
                         TW_OK);
        ck_assert_uint_le(count, (size_t)page_size);
        for (size_t i = 0; i < count && total < cap; i++) {
            tw_id id;
            ck_assert(tw_id_parse(notes[i]->id, &id));
            ids[total++] = id.bytes[15];
        }
        if (next == NULL)
            return total;
        ck_assert_uint_eq(count, (size_t)page_size);
        cursor = next;
        cursor_len = next_len;
    }
    ck_abort_msg("more than 100 pages");
    return 0;
}

START_TEST(lists_page_newest_first_by_status)
{
    for (uint16_t n = 1; n <= 5; n++) {
        tw_id id = note_id(n);
        create_ok(&fx_alice, &id, NULL);
    }
    tw_id other = note_id(9);
    create_ok(&fx_bob, &other, NULL);
    tw_id two = note_id(2), four = note_id(4);
    set_status(&fx_alice, &two, TRANSCRIBED);
    set_status(&fx_alice, &four, TRANSCRIBED);

    uint8_t ids[16];
    ck_assert_uint_eq(list_all(&fx_alice, 0, 2, ids, sizeof ids), 5);
    const uint8_t newest_first[] = {5, 4, 3, 2, 1};
    ck_assert_mem_eq(ids, newest_first, 5);
    ck_assert_uint_eq(list_all(&fx_alice, TRANSCRIBED, 1, ids, sizeof ids), 2);
    ck_assert_int_eq(ids[0], 4);
    ck_assert_int_eq(ids[1], 2);
    ck_assert_uint_eq(list_all(&fx_alice, PENDING, 50, ids, sizeof ids), 3);
    ck_assert_uint_eq(list_all(&fx_alice, FAILED, 50, ids, sizeof ids), 0);
    ck_assert_uint_eq(list_all(&fx_bob, 0, 50, ids, sizeof ids), 1);
}
END_TEST

/* ---- delete and forget ------------------------------------------------------------ */

START_TEST(deleting_a_note_removes_its_keys_and_audio)
{
    tw_id id = note_id(1), kept = note_id(2);
    create_ok(&fx_alice, &id, "req-1");
    create_ok(&fx_alice, &kept, "req-2");
    ck_assert(blob_exists(&fx_alice, &id));
    ck_assert_int_eq(tw_voice_note_delete(va_app.voice, &fx_alice, &id), TW_OK);
    ck_assert(!blob_exists(&fx_alice, &id));
    ck_assert(blob_exists(&fx_alice, &kept));
    ck_assert_int_eq(note_keys(&fx_alice), 2); /* the other note's */
    ck_assert_int_eq(keys_of(TW_KF_VOICE_NOTE_BY_AGE, NULL), 1);
    tw_change_page page = changes(&fx_alice);
    ck_assert_uint_eq(page.count, 3);
    ck_assert_int_eq(page.changes[2].op, TW_CHANGE_TOMBSTONE);
    ck_assert(tw_id_equal(&page.changes[2].resource_id, &id));
    /* Again, or someone else's: not found, nothing changes. */
    ck_assert_int_eq(tw_voice_note_delete(va_app.voice, &fx_alice, &id), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_voice_note_delete(va_app.voice, &fx_bob, &kept), TW_ERR_NOT_FOUND);
    ck_assert(blob_exists(&fx_alice, &kept));
    ck_assert_uint_eq(changes(&fx_alice).count, 3);
}
END_TEST

START_TEST(forgetting_a_user_removes_all_their_notes)
{
    /* More than one pass of the forget loop (64 notes a pass). */
    for (uint16_t n = 1; n <= 70; n++) {
        tw_id id = note_id(n);
        char request[16];
        snprintf(request, sizeof request, "r%u", n);
        create_ok(&fx_alice, &id, request);
    }
    tw_id bobs = note_id(1);
    create_ok(&fx_bob, &bobs, "r1");
    ck_assert_int_eq(tw_voice_forget_user(va_app.voice, &fx_alice), TW_OK);
    ck_assert_int_eq(note_keys(&fx_alice), 0);
    /* The shared age index keeps only bob's entry, and his note. */
    ck_assert_int_eq(keys_of(TW_KF_VOICE_NOTE_BY_AGE, NULL), 1);
    ck_assert_int_eq(note_keys(&fx_bob), 2);
    ck_assert(blob_exists(&fx_bob, &bobs));
    tw_id some = note_id(33);
    ck_assert(!blob_exists(&fx_alice, &some));
    /* Nothing to forget is fine. */
    ck_assert_int_eq(tw_voice_forget_user(va_app.voice, &fx_alice), TW_OK);
}
END_TEST

/* ---- retranscribe ---------------------------------------------------------------- */

START_TEST(retranscribing_starts_a_new_generation)
{
    tw_id id = note_id(1);
    create_ok(&fx_alice, &id, NULL);
    /* As a failed transcription left it. */
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    Tw__Store__V1__VoiceNoteRecord *old, rec;
    ck_assert_int_eq(voice_record_load(va_app.voice, t, &fx_alice, &id, fx.arena, &old), TW_OK);
    Tw__V1__VoiceNote failed = *old->note;
    Tw__V1__Transcript partial = TW__V1__TRANSCRIPT__INIT;
    partial.text = "half";
    failed.status = FAILED;
    failed.failure_reason = "the engine gave up";
    failed.transcript = &partial;
    rec = *old;
    rec.note = &failed;
    ck_assert_int_eq(voice_record_put(t, &fx_alice, &id, old, &rec), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);

    atomic_store(&fx.clock.ms, FX_EPOCH_MS + 60000);
    Tw__V1__VocabularyTerm term = TW__V1__VOCABULARY_TERM__INIT;
    term.phrase = "Kubernetes";
    Tw__V1__VocabularyTerm *vocabulary[] = {&term};
    Tw__V1__VoiceNote *out;
    ck_assert_int_eq(tw_voice_note_retranscribe(va_app.voice, &fx_alice, &id, "fr-FR", true,
                                                vocabulary, 1, fx.arena, &out),
                     TW_OK);
    ck_assert_int_eq(out->status, PENDING);
    ck_assert_str_eq(out->failure_reason, "");
    ck_assert_ptr_null(out->transcript);

    Tw__Store__V1__VoiceNoteRecord *now;
    ck_assert_int_eq(voice_record_load(va_app.voice, NULL, &fx_alice, &id, fx.arena, &now), TW_OK);
    ck_assert_uint_eq(now->generation, 2);
    ck_assert_str_eq(now->note->language, "fr-FR");
    ck_assert_uint_eq(now->note->n_vocabulary, 1);
    ck_assert_str_eq(now->note->vocabulary[0]->phrase, "Kubernetes");
    ck_assert_int_eq(now->note->update_time->seconds, (FX_EPOCH_MS + 60000) / 1000);
    ck_assert_int_eq(now->note->create_time->seconds, FX_EPOCH_MS / 1000);
    /* The status index moved back; a second job is queued. */
    ck_assert_int_eq(keys_of(TW_KF_VOICE_NOTE_BY_STATUS, &fx_alice), 1);
    tw_key k;
    tw_key_init(&k, TW_KF_VOICE_NOTE_BY_STATUS);
    tw_key_id(&k, &fx_alice);
    tw_key_u32(&k, PENDING);
    tw_key_id(&k, &id);
    tw_value v;
    ck_assert_int_eq(tw_store_get(fx.store, &k, NULL, &v), TW_OK);
    ck_assert_int_eq(keys_of(TW_KF_JOB, NULL), 2);

    /* Without a language or vocabulary, both are kept. */
    ck_assert_int_eq(tw_voice_note_retranscribe(va_app.voice, &fx_alice, &id, NULL, false, NULL, 0,
                                                fx.arena, &out),
                     TW_OK);
    ck_assert_str_eq(out->language, "fr-FR");
    ck_assert_uint_eq(out->n_vocabulary, 1);
    ck_assert_int_eq(tw_voice_note_retranscribe(va_app.voice, &fx_bob, &id, NULL, false, NULL, 0,
                                                fx.arena, &out),
                     TW_ERR_NOT_FOUND);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("voice_notes");
    TCase *tc = tcase_create("voice_notes");
    tcase_add_checked_fixture(tc, va_setup, va_teardown);
    tcase_add_test(tc, a_new_note_is_stored_with_everything_it_needs);
    tcase_add_test(tc, a_note_id_that_does_not_parse_stores_nothing);
    tcase_add_test(tc, notes_are_read_by_id_by_their_owner_only);
    tcase_add_test(tc, lists_page_newest_first_by_status);
    tcase_add_test(tc, deleting_a_note_removes_its_keys_and_audio);
    tcase_add_test(tc, forgetting_a_user_removes_all_their_notes);
    tcase_add_test(tc, retranscribing_starts_a_new_generation);
    suite_add_tcase(s, tc);
    return s;
}
