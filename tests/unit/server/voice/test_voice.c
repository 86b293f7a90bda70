/*
 * Unit tests for server/voice/voice.c: starting voice notes (settings,
 * pools, the transcription job type, preloading), its settings from the
 * configuration, its helpers, and shutdown and stop.
 */
#include "tw_check.h"
#include "voice_app.h"

#include "config.h"
#include "pbtime.h"
#include "tw_owned.h"

#include <string.h>
#include <time.h>

START_TEST(start_keeps_the_options_and_sets_the_app)
{
    ck_assert_ptr_nonnull(va_app.voice);
    tw_voice *v = va_app.voice;
    ck_assert_uint_eq(tw_voice_max_bytes(v), 1 << 20);
    ck_assert_str_eq(tw_stt_name(tw_voice_engine(v)), VA_ENGINE);
    ck_assert_ptr_eq(tw_voice_blobs(v), fxb.blobs);
    ck_assert_ptr_nonnull(tw_voice_pool(v));
    tw_voice_stats stats;
    tw_voice_get_stats(v, &stats);
    ck_assert_uint_eq(stats.transcribed + stats.failed + stats.live_opened, 0);
    /* Nothing was loaded ahead of time. */
    ck_assert_int_eq(atomic_load(&va_prepares), 0);
}
END_TEST

START_TEST(stop_frees_the_engine_and_clears_the_app)
{
    tw_voice_shutdown(va_app.voice); /* again: harmless */
    tw_voice_stop(va_app.voice);
    ck_assert_ptr_null(va_app.voice);
    ck_assert_int_eq(atomic_load(&va_frees), 1);
    tw_voice_stop(NULL);
    tw_voice_shutdown(NULL);
    /* Started again on the same store and blobs, for the teardown. */
    tw_voice_options opts = va_options();
    va_start(&opts, false);
}
END_TEST

/* Polls (at most 10 s) until note of user has status; returns it. */
static Tw__V1__VoiceNote *wait_for_status(const tw_id *user, const tw_id *note,
                                          Tw__V1__VoiceNoteStatus status)
{
    Tw__V1__VoiceNote *got = NULL;
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(tw_voice_note_get(va_app.voice, user, note, fx.arena, &got), TW_OK);
        if (got->status == status)
            return got;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    ck_abort_msg("note stayed in status %d", (int)got->status);
    return NULL;
}

static Tw__V1__VoiceNote *new_note(const tw_id *user, const tw_id *id, const char *blob_key)
{
    Tw__V1__VoiceNote *note = tw_arena_alloc(fx.arena, sizeof *note);
    tw__v1__voice_note__init(note);
    note->id = tw_arena_alloc(fx.arena, TW_ID_TEXT_SIZE);
    tw_id_format(id, note->id);
    note->format = TW__V1__AUDIO_FORMAT__AUDIO_FORMAT_MP3;
    note->language = "en-US";
    note->size_bytes = 5;
    va_put_blob(blob_key, "audio");
    Tw__V1__VoiceNote *out;
    ck_assert_int_eq(va_create_note(user, note, blob_key, fx.arena, &out), TW_OK);
    return out;
}

START_TEST(running_voice_transcribes_a_new_note_with_its_engine)
{
    tw_voice_stop(va_app.voice);
    tw_voice_options opts = va_options();
    va_start(&opts, true);
    tw_id id = tw_id_new();
    const char *key = tw_voice_blob_key(&fx_alice, &id, fx.arena);
    new_note(&fx_alice, &id, key);
    Tw__V1__VoiceNote *done =
        wait_for_status(&fx_alice, &id, TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBED);
    ck_assert_ptr_nonnull(done->transcript);
    ck_assert_str_eq(done->transcript->text, VA_TRANSCRIPT);
    ck_assert_int_eq(atomic_load(&va_transcriptions), 1);
    tw_voice_stats stats;
    tw_voice_get_stats(va_app.voice, &stats);
    ck_assert_uint_eq(stats.transcribed, 1);
}
END_TEST

START_TEST(after_shutdown_no_transcription_runs)
{
    /* va_setup shut voice down at once. */
    tw_id id = tw_id_new();
    new_note(&fx_alice, &id, tw_voice_blob_key(&fx_alice, &id, fx.arena));
    /* The job is queued (it will run at the next start)... */
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_JOB);
    ck_assert_int_eq(fx_count_keys(fx.store, &prefix), 1);
    /* ...but the note is left as it was and the engine never asked. (Read
     * from the store: voice started again would run the job.) */
    tw_voice_stop(va_app.voice);
    ck_assert_int_eq(atomic_load(&va_transcriptions), 0);
    ProtobufCMessage *msg;
    ck_assert_int_eq(tw_owned_get(fx.store, NULL, TW_KF_VOICE_NOTE, &fx_alice, &id, fx.arena, &msg),
                     TW_OK);
    const Tw__Store__V1__VoiceNoteRecord *rec = (const void *)msg;
    ck_assert_int_eq(rec->note->status, TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_PENDING);
}
END_TEST

START_TEST(preloading_prepares_the_engine)
{
    tw_voice_stop(va_app.voice);
    tw_voice_options opts = va_options();
    opts.preload_live_decoders = true;
    va_start(&opts, true);
    /* Preloading runs on the live pool: wait (at most 10 s) for it. */
    tw_voice_stats stats = {0};
    for (int i = 0; i < 1000 && !stats.live_ready; i++) {
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        tw_voice_get_stats(va_app.voice, &stats);
    }
    ck_assert(stats.live_ready);
    ck_assert_int_eq(atomic_load(&va_prepares), 1);
}
END_TEST

START_TEST(helpers_make_keys_times_and_durations)
{
    tw_id user = {{0x01, 0x8f, [15] = 0x01}}, note = {{0x01, 0x90, [15] = 0x02}};
    char u[TW_ID_TEXT_SIZE], n[TW_ID_TEXT_SIZE], want[2 * TW_ID_TEXT_SIZE];
    tw_id_format(&user, u);
    tw_id_format(&note, n);
    snprintf(want, sizeof want, "%s/%s", u, n);
    const char *key = tw_voice_blob_key(&user, &note, fx.arena);
    ck_assert_str_eq(key, want);
    ck_assert(tw_blob_key_valid(key));
    Google__Protobuf__Timestamp *ts = tw_timestamp_new(fx.arena, 1717243200123);
    ck_assert_int_eq(ts->seconds, 1717243200);
    ck_assert_int_eq(ts->nanos, 123000000);
    Google__Protobuf__Duration *d = tw_duration_new(fx.arena, 61500);
    ck_assert_int_eq(d->seconds, 61);
    ck_assert_int_eq(d->nanos, 500000000);
}
END_TEST

START_TEST(options_come_from_the_configuration)
{
    tw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.voice_max_bytes = 25 * 1024 * 1024;
    cfg.voice_retention_days = 90;
    cfg.voice_transcribers = 3;
    cfg.voice_live_decoders = 2;
    cfg.voice_job_lease_s = 600;
    cfg.voice_job_attempts = 7;
    tw_stt_engine *engine = va_engine_new();
    tw_voice_options o = tw_voice_options_from_config(&cfg, engine);
    ck_assert_ptr_eq(o.engine, engine);
    ck_assert_uint_eq(o.max_bytes, 25 * 1024 * 1024);
    ck_assert_int_eq(o.retention_ms, 90LL * 24 * 3600 * 1000);
    ck_assert_int_eq(o.transcribers, 3);
    ck_assert_int_eq(o.live_threads, 2);
    ck_assert_int_eq(o.job_lease_ms, 600000);
    ck_assert_uint_eq(o.job_attempts, 7);
    /* The hourly sweep unless a test says otherwise. */
    ck_assert_int_eq(o.sweep_interval_ms, 0);
    tw_stt_free(engine);
}
END_TEST

START_TEST(an_unknown_engine_kind_is_refused)
{
    tw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.voice_engine = (tw_voice_engine_kind)99;
    tw_stt_engine *engine = NULL;
    char errbuf[128] = "";
    ck_assert_int_eq(tw_voice_engine_from_config(&cfg, NULL, &engine, errbuf, sizeof errbuf),
                     TW_ERR_VALIDATION);
    ck_assert_str_eq(errbuf, "unknown voice_engine");
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("voice");
    TCase *tc = tcase_create("voice");
    tcase_add_checked_fixture(tc, va_setup, va_teardown);
    tcase_add_test(tc, start_keeps_the_options_and_sets_the_app);
    tcase_add_test(tc, stop_frees_the_engine_and_clears_the_app);
    tcase_add_test(tc, running_voice_transcribes_a_new_note_with_its_engine);
    tcase_add_test(tc, after_shutdown_no_transcription_runs);
    tcase_add_test(tc, preloading_prepares_the_engine);
    tcase_add_test(tc, helpers_make_keys_times_and_durations);
    tcase_add_test(tc, options_come_from_the_configuration);
    tcase_add_test(tc, an_unknown_engine_kind_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
