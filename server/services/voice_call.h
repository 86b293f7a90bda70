/*
 * What VoiceService's files share (voice_service.c: the method table and
 * the calls; voice_upload.c: UploadVoiceNote; voice_watch.c:
 * WatchVoiceNote's streams): the running voice feature and the checks of
 * fields both carry. Defined in voice_service.c but for the watch.
 */
#ifndef TW_SERVICES_VOICE_CALL_H
#define TW_SERVICES_VOICE_CALL_H

#include "kit/kit.h"
#include "tw_id.h"
#include "voice/voice.h"

#include <stdbool.h>

/* The running voice feature; NULL while it is stopped (then calls get
 * UNAVAILABLE). */
tw_voice *tw_voice_call_voice(tw_call *call);

/* A request's language: the default for "", else language itself when the
 * server can transcribe it; NULL, with a violation on field, when not. */
const char *tw_voice_call_language(tw_call *call, tw_voice *v, const char *field,
                                   const char *language);

/* Checks vocabulary terms (a violation for each bad field, under field)
 * and copies them into the call's arena (the request's copy may not live
 * as long as the call's work). TW_ERR_NO_MEMORY or TW_OK. */
tw_err tw_voice_call_vocabulary(tw_call *call, tw_voice *v, const char *field,
                                Tw__V1__VocabularyTerm *const *terms, size_t n,
                                Tw__V1__VocabularyTerm ***out);

/* Serves WatchVoiceNote on call (voice_watch.c): the note now, then after
 * each change, ending once its status is final (or it is deleted:
 * NOT_FOUND, or voice notes stop: UNAVAILABLE). Returns TW_DEFERRED, or an
 * error when the note does not exist or voice notes are stopping. */
tw_err tw_voice_call_watch(tw_call *call, tw_voice *v, const tw_id *user, const tw_id *note);

#endif
