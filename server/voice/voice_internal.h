/*
 * Shared by the files of the voice feature: voice.c (start and stop),
 * voice_notes.c (the notes in the store), voice_live.c (live sessions),
 * voice_transcribe.c (transcription jobs), voice_observer.c (the observer) and
 * voice_retention.c (the sweep). Not for other files.
 */
#ifndef TW_VOICE_INTERNAL_H
#define TW_VOICE_INTERNAL_H

#include "tw_counter.h"
#include "jobs.h"
#include "tw_txn.h"
#include "voice.h"

#include <pthread.h>
#include <stdatomic.h>

struct tw_job_runner;
struct voice_active;

struct tw_voice {
    tw_app *app;
    tw_store *store;
    tw_blob_store *blobs;
    tw_stt_engine *engine;
    uint64_t max_bytes;
    int64_t retention_ms;
    uint32_t job_attempts; /* a transcription is tried this often (shutdowns count) */

    tw_pool *io_pool;   /* RPC work that blocks on the disk */
    tw_pool *live_pool; /* live decoding */
    struct tw_job_runner *runner;
    tw_job_type job_types[2]; /* transcription, and the end row */
    atomic_bool stopping;

    /* Guards the lists below. */
    pthread_mutex_t lock;
    tw_voice_live *parked;       /* live sessions of stored notes, for their jobs */
    struct voice_active *active; /* transcriptions running now */
    tw_voice_observer observer;  /* all NULL: nobody listens */

    pthread_t sweeper;
    bool sweeper_started;
    pthread_mutex_t sweep_lock;
    pthread_cond_t sweep_wake;
    bool sweep_stop;
    int64_t sweep_interval_ms;

    atomic_uint_fast64_t live_opened, live_behind, live_adopted, transcribed, failed;
    atomic_bool live_ready;
    atomic_bool live_loading; /* a load of live decoders is queued or running */
};

/* ProtobufCAllocator over an arena. */
ProtobufCAllocator voice_allocator(tw_arena *arena);

/* The note's stored record, as committed (t NULL) or for update in t. */
tw_err voice_record_load(tw_voice *v, tw_txn *t, const tw_id *user, const tw_id *note,
                         tw_arena *arena, Tw__Store__V1__VoiceNoteRecord **out);

/* Writes rec, changed from old (NULL for a new note), with its indexes and
 * the change-log entry. */
tw_err voice_record_put(tw_txn *t, const tw_id *user, const tw_id *note,
                        const Tw__Store__V1__VoiceNoteRecord *old,
                        Tw__Store__V1__VoiceNoteRecord *rec);

/* Deletes a retention index entry whose note is gone already (deleting an
 * account removes a user's keys, not this index's, which is not theirs). */
tw_err voice_age_entry_delete(tw_voice *v, int64_t create_ms, const tw_id *user, const tw_id *note);

/* Enqueues the note's transcription job for generation in t. */
tw_err voice_job_enqueue(tw_voice *v, tw_txn *t, const tw_id *user, const tw_id *note,
                         uint32_t generation);

/* After a committed change of a note: the observer hears of it (voice_observer.c). */
void voice_notify(tw_voice *v, const tw_id *user, const tw_id *note);

/* Stops the note's transcriptions running now, but for one of generation
 * keep (0: stops them all). */
void voice_abort_transcriptions(tw_voice *v, const tw_id *note, uint32_t keep);

/* The live session parked for the note's generation (0: any), taken out
 * of the list; NULL when none. */
tw_voice_live *voice_live_take(tw_voice *v, const tw_id *note, uint32_t generation);

/* Parks a live session under the note's generation until its job takes it. */
void voice_live_park(tw_voice *v, tw_voice_live *l, const tw_id *note, uint32_t generation);

/* Loads the engine's live decoders on the live pool, unless a load is
 * queued or running already. */
void voice_live_load(tw_voice *v);

/* Stopping: abandons every parked live session. */
void voice_live_abandon_parked(tw_voice *v);

/* Finishes the transcript of a stored note from its live session l: once
 * the bytes l queued are decoded, the rest of the audio (blob_key, from
 * where l got to) goes to its decoder. *used is false when l cannot finish
 * it (its decoder refused the audio): the caller transcribes the whole
 * recording instead; otherwise the result is err and out. */
tw_err voice_live_finish(tw_voice *v, tw_voice_live *l, const char *blob_key,
                         const atomic_bool *abort, tw_arena *arena, tw_transcript *out, char *why,
                         size_t whylen, bool *used);

/* Audio stored in blob storage, as a tw_audio_input (voice_transcribe.c). */
struct voice_blob_input {
    tw_blob_store *blobs;
    const char *key; /* borrowed */
    tw_blob_reader *reader;
};

/* Opens in over the blob under key from offset; out reads through it until
 * voice_blob_input_close (which accepts an input that failed to open). */
tw_err voice_blob_input_open(struct voice_blob_input *in, tw_blob_store *blobs, const char *key,
                             uint64_t offset, tw_audio_input *out);
void voice_blob_input_close(struct voice_blob_input *in);

/* The handler of TW_VOICE_JOB_TYPE jobs (voice_transcribe.c). */
tw_err voice_transcribe_job(tw_app *app, const tw_job *job, tw_job_failure *failure);

/* Shutdown, with v->lock held: every transcription running stops. */
void voice_transcriptions_abort_locked(tw_voice *v);

/* Shutdown began: the observer hears of it, and of nothing after it
 * (voice_observer.c). Without v->lock held. */
void voice_observer_stopping(tw_voice *v);

/* Now in Unix ms: the store's clock (tw_store_now_ms), which tests set. */
int64_t voice_now_ms(const tw_voice *v);

/* The retention sweeper thread (voice_retention.c): started by
 * tw_voice_start, stopped (and joined) by tw_voice_stop; stopping one never
 * started does nothing. */
tw_err voice_sweeper_start(tw_voice *v);
void voice_sweeper_stop(tw_voice *v);

#endif
