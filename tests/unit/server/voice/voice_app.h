/*
 * What the tests of voice.c and voice_notes.c share: voice notes started on
 * a test store (store_fixture.h, its clock) and a filesystem blob store,
 * with a transcription engine of the test's own that answers a fixed
 * transcript and counts what it was asked.
 */
#ifndef TW_VOICE_APP_H
#define TW_VOICE_APP_H

#include "store_fixture.h"
#include "voice/voice.h"

#include <stdatomic.h>

/* The fake engine's name and its transcript. */
#define VA_ENGINE     "fake"
#define VA_TRANSCRIPT "hello from the fake engine"

/* What the fake engine was asked, since va_start. */
extern atomic_int va_transcriptions, va_prepares, va_frees;

/* A new fake engine (freed by tw_voice_stop, counted in va_frees). */
tw_stt_engine *va_engine_new(void);

/* The options va_start uses: the fake engine, 1 MiB notes, 90 days'
 * retention, one transcriber, the fixture's clock, no sweep. */
tw_voice_options va_options(void);

/* The app voice runs in: fx's store, fxb's blobs. */
extern tw_app va_app;

/* Opens the store and blobs and starts voice with opts. With run_jobs
 * false, voice is shut down at once: its transcription jobs are enqueued
 * but never change a note, so a test sees exactly what voice_notes.c
 * wrote. */
void va_start(const tw_voice_options *opts, bool run_jobs);
/* As a Check fixture: va_start(va_options(), false). */
void va_setup(void);
/* Stops voice and closes the store and blobs. */
void va_teardown(void);

/* Stores bytes under key in the blob store. */
void va_put_blob(const char *key, const char *bytes);

/* Stores note (an upload's fields) as an upload does: tw_voice_note_prepare,
 * tw_txn_voice_note_create in its own transaction, tw_voice_note_created.
 * *out gets the stored note, in arena. */
tw_err va_create_note(const tw_id *user, const Tw__V1__VoiceNote *note, const char *blob_key,
                      tw_arena *arena, Tw__V1__VoiceNote **out);

#endif
