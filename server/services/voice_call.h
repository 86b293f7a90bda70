/*
 * What VoiceService's files share (voice_service.c: the method table and
 * the calls; voice_upload.c: UploadVoiceNote): the running voice feature
 * and the checks of fields both carry. Defined in voice_service.c.
 */
#ifndef TW_SERVICES_VOICE_CALL_H
#define TW_SERVICES_VOICE_CALL_H

#include "rpc/call.h"
#include "tw_id.h"
#include "voice/voice.h"

#include <stdbool.h>

/* The running voice feature; NULL while it is stopped (then calls get
 * UNAVAILABLE). */
tw_voice *tw_voice_call_voice(tw_call *call);

/* Whether s is printable ASCII without spaces. */
bool tw_voice_call_printable(const char *s);

/* Checks a language (a violation on field when bad) and returns it in
 * *out, or the default for "". */
tw_err tw_voice_call_language(tw_call *call, tw_voice *v, const char *field, const char *language,
                              const char **out);

/* Checks vocabulary terms (a violation on field when bad) and copies them
 * into the call's arena. */
tw_err tw_voice_call_vocabulary(tw_call *call, tw_voice *v, const char *field,
                                Tw__V1__VocabularyTerm *const *terms, size_t n,
                                Tw__V1__VocabularyTerm ***out);

#endif
