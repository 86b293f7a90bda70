/*
 * Speech to text: the interface every transcription engine implements, so
 * that the voice feature (voice.c) never knows which one runs. PocketSphinx
 * (stt_pocketsphinx.c, offline, the default) is one; a hosted engine such
 * as Deepgram's pre-recorded API is another, reading the same recording
 * from blob storage through tw_audio_input and sending it as is.
 *
 * An engine transcribes a whole stored recording (transcribe). It may also
 * offer live sessions (live_*), fed with an upload's bytes while they
 * arrive, so the transcript is ready moments after the upload ends; engines
 * that cannot leave live_open NULL.
 *
 * Errors, for transcribe and live_finish:
 *   TW_ERR_VALIDATION  the recording cannot be transcribed (undecodable, an
 *                      unsupported codec, a hosted engine refusing the audio
 *                      or the key): final, why says it for the user;
 *   TW_ERR_CANCELLED   *abort was set;
 *   anything else      a passing failure (storage, network, an engine that
 *                      is busy or down): worth retrying later, and no
 *                      sooner than out->retry_after_ms when the engine
 *                      was told when (a hosted engine's Retry-After).
 * Engines are shared by threads: every function may be called from any
 * thread at once, except that one live session is used by one thread at a
 * time.
 */
#ifndef TW_VOICE_STT_H
#define TW_VOICE_STT_H

#include "decode.h"
#include "tw_arena.h"

#include <stdbool.h>
#include <stdint.h>

/* A vocabulary hint (tw.v1.VocabularyTerm). */
typedef struct tw_stt_term {
    const char *phrase;
    const char *pronunciation; /* ARPAbet phones, or "" */
} tw_stt_term;

typedef struct tw_stt_word {
    const char *word;
    int64_t start_ms, end_ms;
    float confidence;
} tw_stt_word;

/* What an engine heard; everything lives in the arena given to it. */
typedef struct tw_transcript {
    const char *text;
    const char *language;
    float confidence; /* mean over the words; 0 with none */
    tw_stt_word *words;
    size_t nwords;
    int64_t duration_ms; /* of the audio, as decoded; -1 when the engine does not say */
    const char *engine;
    int64_t retry_after_ms; /* after a passing failure: wait at least this long; 0 when unknown */
} tw_transcript;

/* One recording to transcribe. */
typedef struct tw_stt_request {
    tw_audio_format format;
    const char *language; /* BCP 47 */
    const tw_stt_term *vocabulary;
    size_t nvocabulary;
    tw_audio_input input;     /* the recording from its first byte */
    const atomic_bool *abort; /* may be NULL; set from any thread to stop early */
} tw_stt_request;

typedef struct tw_stt_engine tw_stt_engine;
typedef struct tw_stt_live tw_stt_live;

struct tw_stt_ops {
    const char *name;
    bool (*supports_language)(tw_stt_engine *e, const char *language);
    /* Whether a vocabulary term is usable; when not, why says so (for a
     * field violation). */
    bool (*term_valid)(tw_stt_engine *e, const tw_stt_term *term, char *why, size_t whylen);
    tw_err (*transcribe)(tw_stt_engine *e, const tw_stt_request *req, tw_arena *arena,
                         tw_transcript *out, char *why, size_t whylen);
    /* Optional. req's input is not used; the bytes come through live_feed. */
    tw_err (*live_open)(tw_stt_engine *e, const tw_stt_request *req, tw_stt_live **out);
    tw_err (*live_feed)(tw_stt_live *l, const void *bytes, size_t n, char *why, size_t whylen);
    uint64_t (*live_offset)(const tw_stt_live *l);
    tw_err (*live_finish)(tw_stt_live *l, const tw_audio_input *rest, const atomic_bool *abort,
                          tw_arena *arena, tw_transcript *out, char *why, size_t whylen);
    void (*live_free)(tw_stt_live *l);
    /* Optional: loads what live sessions need, ahead of time. */
    void (*prepare)(tw_stt_engine *e);
    void (*free)(tw_stt_engine *e);
};

/* Engines' own structs start with these. */
struct tw_stt_engine {
    const struct tw_stt_ops *ops;
};
struct tw_stt_live {
    const struct tw_stt_ops *ops;
};

/* The engine's name, for example "pocketsphinx". */
const char *tw_stt_name(const tw_stt_engine *e);

/* True when the engine can transcribe language (BCP 47, any case). */
bool tw_stt_supports_language(tw_stt_engine *e, const char *language);

bool tw_stt_term_valid(tw_stt_engine *e, const tw_stt_term *term, char *why, size_t whylen);

/* Transcribes req's whole recording into out (in arena); see the errors above. */
tw_err tw_stt_transcribe(tw_stt_engine *e, const tw_stt_request *req, tw_arena *arena,
                         tw_transcript *out, char *why, size_t whylen);

/* Loads what live sessions need (PocketSphinx: its live decoders, a second
 * each, kept until they idle for a minute). Blocks: call it off the RPC
 * threads. */
void tw_stt_prepare(tw_stt_engine *e);

/*
 * A live session for an upload of req's format, language and vocabulary:
 * TW_ERR_UNIMPLEMENTED when the engine, the format or the vocabulary has
 * none, TW_ERR_BUSY when no live decoder is ready (it never waits and
 * never loads one: it may be called on an RPC thread). Feed it the upload's
 * bytes in order from the first; it gives up (an error) on audio it cannot
 * stream, and then the recording is transcribed whole instead. live_finish
 * reads the bytes not fed yet from rest (positioned at live_offset) and
 * ends the session with the transcript.
 */
tw_err tw_stt_live_open(tw_stt_engine *e, const tw_stt_request *req, tw_stt_live **out);
tw_err tw_stt_live_feed(tw_stt_live *l, const void *bytes, size_t n, char *why, size_t whylen);
uint64_t tw_stt_live_offset(const tw_stt_live *l);
tw_err tw_stt_live_finish(tw_stt_live *l, const tw_audio_input *rest, const atomic_bool *abort,
                          tw_arena *arena, tw_transcript *out, char *why, size_t whylen);
/* Ends a session, finished or not. Accepts NULL. */
void tw_stt_live_free(tw_stt_live *l);

/* Accepts NULL. */
void tw_stt_free(tw_stt_engine *e);

/* ---- engines ---------------------------------------------------------- */

typedef struct tw_pocketsphinx_options {
    const char *model_dir; /* holds en-us/ (acoustic model), en-us.lm.bin, cmudict-en-us.dict */
    int batch_decoders;    /* decoders for transcribe: that many run at once, others wait */
    int live_decoders;     /* decoders for live sessions; 0: no live sessions */
} tw_pocketsphinx_options;

/* PocketSphinx (Debian's 5prealpha) with its en-us model. Checks that the
 * model's files are there (errbuf says which is missing); decoders are
 * loaded when needed (about a second and 90 MB each), reused, and freed
 * after a minute idle. */
tw_err tw_stt_pocketsphinx_new(const tw_pocketsphinx_options *opts, tw_stt_engine **out,
                               char *errbuf, size_t errlen);

/* Deepgram's pre-recorded API through client (borrowed: it must outlive the
 * engine); errbuf says why not (no client: no deepgram_api_key). Whole
 * recordings only (no live sessions). */
struct tw_deepgram;
tw_err tw_stt_deepgram_new(struct tw_deepgram *client, tw_stt_engine **out, char *errbuf,
                           size_t errlen);

#endif
