/*
 * Shared by voice.c (lifecycle, live sessions, jobs, watches, sweep) and
 * voice_notes.c (the notes in the store). Not for other files.
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
struct voice_watch;
struct voice_active;

struct tw_voice {
    tw_app *app;
    tw_store *store;
    tw_blob_store *blobs;
    tw_stt_engine *engine;
    uint64_t max_bytes;
    int64_t retention_ms;
    uint32_t job_attempts; /* a transcription is tried this often (shutdowns count) */
    int64_t (*clock_ms)(void *ctx);
    void *clock_ctx;

    tw_pool *io_pool;   /* RPC work that blocks on the disk */
    tw_pool *live_pool; /* live decoding */
    struct tw_job_runner *runner;
    tw_job_type job_types[2]; /* transcription, and the end row */
    atomic_bool stopping;

    /* Guards the lists below. */
    pthread_mutex_t lock;
    tw_voice_live *parked;       /* live sessions of stored notes, for their jobs */
    struct voice_active *active; /* transcriptions running now */
    struct voice_watch *watches; /* WatchVoiceNote calls */

    pthread_t sweeper;
    bool sweeper_started;
    pthread_mutex_t sweep_lock;
    pthread_cond_t sweep_wake;
    bool sweep_stop;
    int64_t sweep_interval_ms;

    atomic_uint_fast64_t live_opened, live_behind, live_adopted, transcribed, failed;
    atomic_bool live_ready;
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

/* After a committed change of a note: its watches hear of it. */
void voice_notify(tw_voice *v, const tw_id *user, const tw_id *note);

/* Stops the note's transcriptions running now, but for one of generation
 * keep (0: stops them all). */
void voice_abort_transcriptions(tw_voice *v, const tw_id *note, uint32_t keep);

/* The live session parked for the note's generation (0: any), taken out
 * of the list; NULL when none. */
tw_voice_live *voice_live_take(tw_voice *v, const tw_id *note, uint32_t generation);

/* Parks a live session under the note's generation until its job takes it. */
void voice_live_park(tw_voice *v, tw_voice_live *l, const tw_id *note, uint32_t generation);

#endif
