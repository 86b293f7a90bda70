/*
 * The observer of notes' changes (voice.h): one per running voice
 * feature, kept under v->lock and called without it, so that the
 * observer may take locks of its own and read notes back.
 */
#include "voice_internal.h"

tw_err tw_voice_observe(tw_voice *v, const tw_voice_observer *observer)
{
    pthread_mutex_lock(&v->lock);
    bool stopping = atomic_load(&v->stopping);
    if (!stopping)
        v->observer = *observer;
    pthread_mutex_unlock(&v->lock);
    return stopping ? TW_ERR_SHUTTING_DOWN : TW_OK;
}

void voice_notify(tw_voice *v, const tw_id *user, const tw_id *note)
{
    pthread_mutex_lock(&v->lock);
    tw_voice_observer o = atomic_load(&v->stopping) ? (tw_voice_observer){0} : v->observer;
    pthread_mutex_unlock(&v->lock);
    if (o.changed != NULL)
        o.changed(o.ctx, v, user, note);
}

void voice_observer_stopping(tw_voice *v)
{
    pthread_mutex_lock(&v->lock);
    tw_voice_observer o = v->observer;
    pthread_mutex_unlock(&v->lock);
    if (o.stopping != NULL)
        o.stopping(o.ctx, v);
}
