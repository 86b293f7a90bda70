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
#include <pthread.h>

enum tw_voice_upload_phase { UP_METADATA, UP_SNIFFING, UP_WRITING, UP_COMMITTING, UP_DONE };

/* Per call, in its arena (tw_method.state_size). The engine's thread reads
 * the stream; a drain task on the voice pool writes what it received, at
 * most one task at a time, while the engine reads on. */
struct tw_voice_upload {
    /* The engine's thread's. */
    tw_call *call;
    tw_voice *v;
    enum tw_voice_upload_phase phase;
    tw_id user, note;
    Tw__V1__VoiceNote *meta; /* what the metadata said, in the call's arena */
    tw_kit_memo memo;        /* the metadata's request_id, for tw_kit_write_memo */
    tw_stt_term *terms;
    tw_audio_format declared, found;
    uint8_t head[TW_AUDIO_SNIFF_BYTES]; /* the first bytes, until sniffed */
    size_t nhead;
    uint64_t received;
    const char *blob_key;
    bool wav;
    Tw__V1__UploadVoiceNoteResponse *response;

    /* Shared, under lock. */
    pthread_mutex_t lock;
    uint8_t *pending; /* received and not yet taken by the drain */
    size_t pending_len, pending_cap;
    bool draining;            /* a drain task is queued or running, holding the call */
    bool paused;              /* the backlog is full: the engine reads on when the drain says */
    bool ending;              /* the client is done: the drain commits after the last bytes */
    bool dropped;             /* cancelled or refused: the drain frees the upload and stops */
    tw_err failed;            /* the drain's failure, for whoever ends the call */
    char failed_message[256]; /* for the client, when not empty */
    char failed_detail[256];  /* for the log, when not empty */

    /* The drain's while it runs; the engine's thread's when none does. */
    uint8_t *writing; /* the bytes the drain took */
    size_t writing_cap;
    tw_blob_writer *writer;
    EVP_MD_CTX *sha;
    uint64_t size;            /* written */
    tw_wav_parser wav_parser; /* wav: finds the duration as bytes pass */
    tw_voice_live *live;
};

/* tw_method.on_message, on_end and state_free of UploadVoiceNote. */
tw_err tw_voice_upload_message(tw_call *call, const ProtobufCMessage *message,
                               ProtobufCMessage *response);
tw_err tw_voice_upload_end(tw_call *call, ProtobufCMessage *response);
void tw_voice_upload_free(void *state);

#endif
