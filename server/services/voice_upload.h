/*
 * UploadVoiceNote's state machine (voice_upload.c), for VoiceService's
 * method table (voice_service.c): the handlers of a client stream and the
 * per-call state the engine allocates for them (tw_method.state_size). Only
 * voice_upload.c touches the state's fields.
 */
#ifndef TW_SERVICES_VOICE_UPLOAD_H
#define TW_SERVICES_VOICE_UPLOAD_H

#include "kit/kit.h"
#include "tw_id.h"
#include "voice/voice.h"
#include "voice/wav.h"

#include <openssl/evp.h>
#include <stdatomic.h>

enum tw_voice_upload_phase { UP_METADATA, UP_SNIFFING, UP_WRITING, UP_COMMITTING, UP_DONE };

/* Who may touch an upload: the engine's thread for the call (between
 * messages, when the engine reads), or a task on the voice pool (writing a
 * chunk, committing). A cancel while the pool has it only marks it; the
 * task sees the mark, drops the upload and ends the call. */
enum tw_voice_upload_owner { OWN_ENGINE, OWN_POOL, OWN_CANCELLED, OWN_DONE };

/* Per call, in its arena (tw_method.state_size). */
struct tw_voice_upload {
    tw_call *call;
    tw_voice *v;
    enum tw_voice_upload_phase phase;
    atomic_int owner;
    tw_id user, note;
    Tw__V1__VoiceNote *meta; /* what the metadata said, in the call's arena */
    tw_kit_memo memo;        /* the metadata's request_id, for tw_kit_write_memo */
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

/* tw_method.on_message and on_end of UploadVoiceNote. */
tw_err tw_voice_upload_message(tw_call *call, const ProtobufCMessage *message,
                               ProtobufCMessage *response);
tw_err tw_voice_upload_end(tw_call *call, ProtobufCMessage *response);

#endif
