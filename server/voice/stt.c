/* The engine-neutral entry points of stt.h. */
#include "stt.h"

#include <stddef.h>

const char *tw_stt_name(const tw_stt_engine *e)
{
    return e->ops->name;
}

bool tw_stt_supports_language(tw_stt_engine *e, const char *language)
{
    return e->ops->supports_language(e, language);
}

bool tw_stt_term_valid(tw_stt_engine *e, const tw_stt_term *term, char *why, size_t whylen)
{
    return e->ops->term_valid(e, term, why, whylen);
}

tw_err tw_stt_transcribe(tw_stt_engine *e, const tw_stt_request *req, tw_arena *arena,
                         tw_transcript *out, char *why, size_t whylen)
{
    return e->ops->transcribe(e, req, arena, out, why, whylen);
}

tw_err tw_stt_live_open(tw_stt_engine *e, const tw_stt_request *req, tw_stt_live **out)
{
    *out = NULL;
    if (e->ops->live_open == NULL)
        return TW_ERR_UNIMPLEMENTED;
    return e->ops->live_open(e, req, out);
}

tw_err tw_stt_live_feed(tw_stt_live *l, const void *bytes, size_t n, char *why, size_t whylen)
{
    return l->ops->live_feed(l, bytes, n, why, whylen);
}

uint64_t tw_stt_live_offset(const tw_stt_live *l)
{
    return l->ops->live_offset(l);
}

tw_err tw_stt_live_finish(tw_stt_live *l, const tw_audio_input *rest, const atomic_bool *abort,
                          tw_arena *arena, tw_transcript *out, char *why, size_t whylen)
{
    return l->ops->live_finish(l, rest, abort, arena, out, why, whylen);
}

void tw_stt_live_free(tw_stt_live *l)
{
    if (l != NULL)
        l->ops->live_free(l);
}

void tw_stt_prepare(tw_stt_engine *e)
{
    if (e->ops->prepare != NULL)
        e->ops->prepare(e);
}

void tw_stt_free(tw_stt_engine *e)
{
    if (e != NULL)
        e->ops->free(e);
}
