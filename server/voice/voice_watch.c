/*
 * WatchVoiceNote (voice.h): the watches of notes, each a server stream
 * listed in v->watches. After a note's change commits, voice_notify pushes
 * the note to its watches; a watch ends once the note is final, deleted,
 * or twd stops. v->lock guards the list and is held while a watch sends
 * (sends never block).
 */
#include "voice_internal.h"

#include <string.h>

struct voice_watch {
    tw_voice *v;
    tw_call *call;
    tw_id user, note;
    bool sent;
    int last_status;
    int64_t last_update_s, last_update_ns;
    struct voice_watch *next;
};

static bool watch_unlink_locked(tw_voice *v, struct voice_watch *w)
{
    struct voice_watch **p = &v->watches;
    while (*p != NULL && *p != w)
        p = &(*p)->next;
    if (*p == NULL)
        return false;
    *p = w->next;
    return true;
}

/* Ends a watch still listed: whoever unlinks it finishes its call. */
static void watch_end_locked(tw_voice *v, struct voice_watch *w, tw_err err)
{
    if (watch_unlink_locked(v, w))
        tw_call_finish(w->call, err);
}

/* Sends the note when it changed since the last send; ends the watch when
 * the note is final or gone. */
static void watch_push_locked(tw_voice *v, struct voice_watch *w)
{
    tw_arena *arena = tw_arena_new(4096);
    Tw__V1__VoiceNote *note;
    tw_err err = arena ? tw_voice_note_get(v, &w->user, &w->note, arena, &note) : TW_ERR_NO_MEMORY;
    if (err) {
        watch_end_locked(v, w, err);
        tw_arena_free(arena);
        return;
    }
    int64_t s = note->update_time ? note->update_time->seconds : 0;
    int64_t ns = note->update_time ? note->update_time->nanos : 0;
    if (!w->sent || w->last_status != (int)note->status || w->last_update_s != s ||
        w->last_update_ns != ns) {
        Tw__V1__WatchVoiceNoteResponse msg = TW__V1__WATCH_VOICE_NOTE_RESPONSE__INIT;
        msg.voice_note = note;
        err = tw_call_send(w->call, &msg.base);
        w->sent = true;
        w->last_status = (int)note->status;
        w->last_update_s = s;
        w->last_update_ns = ns;
    }
    bool final = note->status == TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBED ||
                 note->status == TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_FAILED;
    if (err || final)
        watch_end_locked(v, w, err);
    tw_arena_free(arena);
}

static void watch_cancelled(tw_call *call, void *ctx)
{
    struct voice_watch *w = ctx;
    pthread_mutex_lock(&w->v->lock);
    watch_end_locked(w->v, w, TW_ERR_CANCELLED);
    pthread_mutex_unlock(&w->v->lock);
}

tw_err tw_voice_watch(tw_voice *v, tw_call *call, const tw_id *user, const tw_id *note)
{
    if (atomic_load(&v->stopping))
        return TW_ERR_SHUTTING_DOWN;
    Tw__V1__VoiceNote *found;
    tw_err err = tw_voice_note_get(v, user, note, tw_call_arena(call), &found);
    if (err)
        return err;
    /* In the call's arena: listed until the call is finished, and a call
     * outlives its finish. */
    struct voice_watch *w = tw_arena_alloc(tw_call_arena(call), sizeof *w);
    if (w == NULL)
        return TW_ERR_NO_MEMORY;
    *w = (struct voice_watch){.v = v, .call = call, .user = *user, .note = *note};
    pthread_mutex_lock(&v->lock);
    w->next = v->watches;
    v->watches = w;
    pthread_mutex_unlock(&v->lock);
    /* Runs at once when the call is already cancelled, unlisting w. */
    tw_call_on_cancel(call, watch_cancelled, w);
    /* Listed first, then read: a change in between is not missed (and one
     * seen twice is sent once). */
    pthread_mutex_lock(&v->lock);
    struct voice_watch *listed = v->watches;
    while (listed != NULL && listed != w)
        listed = listed->next;
    if (listed != NULL)
        watch_push_locked(v, w);
    pthread_mutex_unlock(&v->lock);
    return TW_DEFERRED;
}

void voice_watches_end_locked(tw_voice *v, tw_err err)
{
    while (v->watches != NULL)
        watch_end_locked(v, v->watches, err);
}

void voice_notify(tw_voice *v, const tw_id *user, const tw_id *note)
{
    pthread_mutex_lock(&v->lock);
    struct voice_watch *w = v->watches;
    while (w != NULL) {
        struct voice_watch *next = w->next; /* a push may unlink w */
        if (memcmp(&w->note, note, sizeof *note) == 0 && memcmp(&w->user, user, sizeof *user) == 0)
            watch_push_locked(v, w);
        w = next;
    }
    pthread_mutex_unlock(&v->lock);
}
