/*
 * Voice notes, below the RPCs of services/voice_service.c: the notes in the
 * store, their audio in blob storage, transcription as a durable job, live
 * decoding of uploads while they arrive, an observer told of every change
 * of a note (WatchVoiceNote's streams are in services/), and the retention
 * sweep.
 *
 * A note is one record (tw.store.v1.VoiceNoteRecord, keyed by user and
 * note, read and written through store/tw_owned.h) with two indexes: by
 * status (filtered lists) and by creation time (retention). An upload's
 * request_id is remembered by the service kit (kit/kit.h). Every
 * change is one transaction with the user's change-log entry (resource
 * type "voice_note") and, when it asks for a transcription, the job; after
 * it commits, the observer hears of it.
 *
 * Transcription jobs ("voice_transcribe") run on workers of their own, as
 * many as voice_transcribers, so long recordings never hold up other jobs.
 * A job carries the note's generation: retranscribing bumps it, and a job
 * of an older generation does nothing. The note goes PENDING ->
 * TRANSCRIBING -> TRANSCRIBED, or FAILED with a reason when the audio cannot
 * be transcribed or the last attempt fails. A job interrupted by shutdown
 * runs again at the next start.
 *
 * Threads: everything here may be called from any thread; nothing blocks
 * on the network, but note_create, note_delete and the sweep do blocking
 * disk work (fsync), so RPC handlers call them from tw_voice_pool().
 */
#ifndef TW_VOICE_VOICE_H
#define TW_VOICE_VOICE_H

#include "app.h"
#include "stt.h"
#include "tw_txn.h"
#include "tw/store/v1/voice_records.pb-c.h"
#include "tw/v1/voice_service.pb-c.h"

#include <stdint.h>

typedef struct tw_voice tw_voice;

/* The job type of transcriptions. */
#define TW_VOICE_JOB_TYPE "voice_transcribe"
/* Audio chunks are at most this big, in uploads and downloads. */
#define TW_VOICE_CHUNK_MAX (1024 * 1024)

typedef struct tw_voice_options {
    tw_stt_engine *engine; /* taken, freed by tw_voice_stop (also on failure) */
    uint64_t max_bytes;    /* largest note */
    int64_t retention_ms;  /* notes older than this are deleted */
    int transcribers;      /* job workers */
    int live_threads;      /* threads decoding live sessions */
    /* How long a transcription job is leased: after a crash the job runs
     * again once this has passed; longer than the slowest transcription. */
    int64_t job_lease_ms;
    /* Tries of a transcription before the note is FAILED; 0 for 10. */
    uint32_t job_attempts;
    /* How often the retention sweep runs; 0 for hourly, -1 for never (tests
     * call tw_voice_sweep). */
    int64_t sweep_interval_ms;
    /* Load the live decoders in the background at start (tests that need a
     * WAV upload decoded as it arrives). Otherwise the first WAV upload that
     * finds no decoder idle starts loading one for the uploads after it. */
    bool preload_live_decoders;
} tw_voice_options;

/* The engine voice_engine names, made from cfg; deepgram is the app's
 * Deepgram client (NULL without deepgram_api_key). errbuf says why not. */
tw_err tw_voice_engine_from_config(const tw_config *cfg, struct tw_deepgram *deepgram,
                                   tw_stt_engine **out, char *errbuf, size_t errlen);

/* Options from cfg with engine (taken). */
tw_voice_options tw_voice_options_from_config(const tw_config *cfg, tw_stt_engine *engine);

/* Starts voice notes for app, whose store and blobs are open, and sets
 * app->voice: job workers, pools and the sweep. */
tw_err tw_voice_start(tw_app *app, const tw_voice_options *opts, char *errbuf, size_t errlen);

/* Shutdown begins: transcriptions stop (their jobs run again at the next
 * start), watches end with UNAVAILABLE, live sessions stop decoding. Safe
 * to call more than once, and from the engine's shutdown hook. */
void tw_voice_shutdown(tw_voice *v);

/* Stops the workers, the pools and the sweep and frees v. Accepts NULL. */
void tw_voice_stop(tw_voice *v);

uint64_t tw_voice_max_bytes(const tw_voice *v);
tw_stt_engine *tw_voice_engine(tw_voice *v);
tw_blob_store *tw_voice_blobs(tw_voice *v);
/* For RPC work that blocks on the disk: commits, deletes, reading audio. */
tw_pool *tw_voice_pool(tw_voice *v);

/* The blob key of a note's audio, "<user-id>/<note-id>", in arena. */
const char *tw_voice_blob_key(const tw_id *user, const tw_id *note, tw_arena *arena);

/* How long the audio stored under blob_key plays, by its container's
 * header (blocks on the disk); -1 when the header does not say. */
int64_t tw_voice_probe_duration(tw_voice *v, const char *blob_key, tw_audio_format format);

/* ---- live decoding of an upload ------------------------------------------- */

typedef struct tw_voice_live tw_voice_live;

/* A live session for an upload of format, when the engine streams it and a
 * live decoder is idle; NULL otherwise (the note is transcribed after the
 * upload), and when no decoder was idle one starts loading in the
 * background for the next upload. Strings and terms are borrowed during
 * the call. */
tw_voice_live *tw_voice_live_open(tw_voice *v, tw_audio_format format, const char *language,
                                  const tw_stt_term *vocabulary, size_t nvocabulary);

/* The upload's next bytes, handed over rather than copied: when it returns
 * true the session has taken bytes (malloc'd, n of them) and frees them;
 * false (no session, or it stopped taking bytes) leaves them the caller's.
 * Decoding happens on a pool thread; at most TW_VOICE_LIVE_BACKLOG bytes
 * wait for it, and when it falls further behind the session stops taking
 * bytes and the job reads the rest from blob storage. Never blocks. */
#define TW_VOICE_LIVE_BACKLOG (1024 * 1024)
bool tw_voice_live_feed(tw_voice_live *l, void *bytes, size_t n);

/* The upload failed: the session ends. Accepts NULL. */
void tw_voice_live_abandon(tw_voice_live *l);

/* ---- notes ------------------------------------------------------------------- */

/*
 * Storing a new note whose audio is committed under blob_key takes three
 * steps, so that the caller runs the transaction (the RPC service's write,
 * which also remembers the upload's request_id with its answer):
 *  - tw_voice_note_prepare, before: live (taken; may be NULL) waits for the
 *    note's transcription job, which may start the moment the transaction
 *    commits;
 *  - tw_txn_voice_note_create, in the transaction t: note holds every field
 *    an upload sets (id, file_name, content_type, format, size_bytes,
 *    sha256, duration, language, vocabulary, task_id, request_id; borrowed);
 *    status and times, the indexes, the change-log entry, the counter and
 *    the job are set here; live says whether prepare was given a session.
 *    *out gets the stored note (in arena);
 *  - tw_voice_note_created, after, with whether the note committed: its job
 *    is woken, or the live session dropped.
 */
void tw_voice_note_prepare(tw_voice *v, const tw_id *note, tw_voice_live *live);
tw_err tw_txn_voice_note_create(tw_txn *t, tw_voice *v, const tw_id *user,
                                const Tw__V1__VoiceNote *note, const char *blob_key, bool live,
                                tw_arena *arena, Tw__V1__VoiceNote **out);
void tw_voice_note_created(tw_voice *v, const tw_id *note, bool stored);

/* The note with that id; TW_ERR_NOT_FOUND when there is none. */
tw_err tw_voice_note_get(tw_voice *v, const tw_id *user, const tw_id *note, tw_arena *arena,
                         Tw__V1__VoiceNote **out);

/* A page of user's notes, newest first; status 0 for all: at most size of
 * them from after the key cursor (cursor_len bytes; NULL: the newest), in
 * arena. *next is the key to go on from (in arena), NULL when the list is
 * done. */
tw_err tw_voice_note_list(tw_voice *v, const tw_id *user, Tw__V1__VoiceNoteStatus status,
                          const uint8_t *cursor, size_t cursor_len, uint32_t size, tw_arena *arena,
                          Tw__V1__VoiceNote ***notes, size_t *count, uint8_t **next,
                          size_t *next_len);

/* Deletes the note, its audio and any transcription of it. Blocks on disk. */
tw_err tw_voice_note_delete(tw_voice *v, const tw_id *user, const tw_id *note);

/* Deletes every note of user as tw_voice_note_delete does, for a deleted
 * account: the notes-by-age index is shared by all users (the retention
 * sweep walks it), so removing the user's key prefix alone would leave
 * their entries there. Blocks on disk. */
tw_err tw_voice_forget_user(tw_voice *v, const tw_id *user);

/* Sends the note back to PENDING under a new generation with a new job;
 * language NULL keeps it, vocabulary (nvocabulary terms) replaces it when
 * replace_vocabulary. A transcription of the old generation is stopped. */
tw_err tw_voice_note_retranscribe(tw_voice *v, const tw_id *user, const tw_id *note,
                                  const char *language, bool replace_vocabulary,
                                  Tw__V1__VocabularyTerm *const *vocabulary, size_t nvocabulary,
                                  tw_arena *arena, Tw__V1__VoiceNote **out);

/* ---- the observer -------------------------------------------------------------- */

/* Who hears of notes' changes (WatchVoiceNote's streams, services/). Both
 * functions are called with none of v's locks held and must not block on
 * the network. */
typedef struct tw_voice_observer {
    /* A change of user's note committed: it was created, its status or
     * transcript changed, or it was deleted. On the committing thread. */
    void (*changed)(void *ctx, tw_voice *v, const tw_id *user, const tw_id *note);
    /* Shutdown began (tw_voice_shutdown): no change of v is told after it. */
    void (*stopping)(void *ctx, tw_voice *v);
    void *ctx;
} tw_voice_observer;

/* Makes observer (copied) v's one observer, replacing any before it.
 * TW_ERR_SHUTTING_DOWN once shutdown began: it would never hear of it. */
tw_err tw_voice_observe(tw_voice *v, const tw_voice_observer *observer);

/* ---- retention ------------------------------------------------------------------- */

typedef struct tw_voice_sweep_stats {
    uint64_t notes_deleted;   /* older than the retention */
    uint64_t orphans_deleted; /* audio without a note, left by a crash */
} tw_voice_sweep_stats;

/* Deletes notes created before now_ms - retention with their audio, and
 * audio older than an hour that no note owns. */
tw_err tw_voice_sweep(tw_voice *v, int64_t now_ms, tw_voice_sweep_stats *out);

/* ---- for tests and metrics ----------------------------------------------------------- */

typedef struct tw_voice_stats {
    uint64_t live_opened;  /* uploads decoded while they arrived */
    uint64_t live_behind;  /* of those, the ones that fell behind and finished from storage */
    uint64_t live_adopted; /* live sessions a transcription job finished */
    uint64_t transcribed;  /* jobs that stored a transcript */
    uint64_t failed;       /* jobs that stored FAILED */
    bool live_ready;       /* the engine has loaded its live decoders once */
} tw_voice_stats;

void tw_voice_get_stats(tw_voice *v, tw_voice_stats *out);

#endif
