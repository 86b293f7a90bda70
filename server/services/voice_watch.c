/*
 * WatchVoiceNote's streams (voice_call.h): the voice feature's observer
 * (voice.h) tells this hub of each committed change of a note, and the hub
 * pushes the note to that note's watches; a watch ends once the note is
 * final, deleted, or voice notes stop. hub.lock guards the list and is
 * held while a watch sends (sends only queue, they never block).
 *
 * Lock order: hub.lock, then the voice feature's own lock (inside
 * tw_voice_observe); the feature calls the observer without its lock.
 */
#include "voice_call.h"

#include <pthread.h>
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

static struct {
    pthread_mutex_t lock;
    struct voice_watch *watches;
} hub = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool watch_unlink_locked(struct voice_watch *w)
{
    struct voice_watch **p = &hub.watches;
    while (*p != NULL && *p != w)
        p = &(*p)->next;
    if (*p == NULL)
        return false;
    *p = w->next;
    return true;
}

/* Ends a watch still listed: whoever unlinks it finishes its call. */
static void watch_end_locked(struct voice_watch *w, tw_err err)
{
    if (watch_unlink_locked(w))
        tw_call_finish(w->call, err);
}

/* Sends the note when it changed since the last send; ends the watch when
 * the note is final or gone. */
static void watch_push_locked(struct voice_watch *w)
{
    tw_arena *arena = tw_arena_new(4096);
    Tw__V1__VoiceNote *note;
    tw_err err =
        arena ? tw_voice_note_get(w->v, &w->user, &w->note, arena, &note) : TW_ERR_NO_MEMORY;
    if (err) {
        watch_end_locked(w, err);
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
        watch_end_locked(w, err);
    tw_arena_free(arena);
}

/* The observer: a note changed. */
static void note_changed(void *ctx, tw_voice *v, const tw_id *user, const tw_id *note)
{
    (void)ctx;
    pthread_mutex_lock(&hub.lock);
    struct voice_watch *w = hub.watches;
    while (w != NULL) {
        struct voice_watch *next = w->next; /* a push may unlink w */
        if (w->v == v && memcmp(&w->note, note, sizeof *note) == 0 &&
            memcmp(&w->user, user, sizeof *user) == 0)
            watch_push_locked(w);
        w = next;
    }
    pthread_mutex_unlock(&hub.lock);
}

/* The observer: v stops; its watches end with UNAVAILABLE. */
static void voice_stopping(void *ctx, tw_voice *v)
{
    (void)ctx;
    pthread_mutex_lock(&hub.lock);
    struct voice_watch *w = hub.watches;
    while (w != NULL) {
        struct voice_watch *next = w->next;
        if (w->v == v)
            watch_end_locked(w, TW_ERR_SHUTTING_DOWN);
        w = next;
    }
    pthread_mutex_unlock(&hub.lock);
}

static void watch_cancelled(tw_call *call, void *ctx)
{
    struct voice_watch *w = ctx;
    pthread_mutex_lock(&hub.lock);
    watch_end_locked(w, TW_ERR_CANCELLED);
    pthread_mutex_unlock(&hub.lock);
}

tw_err tw_voice_call_watch(tw_call *call, tw_voice *v, const tw_id *user, const tw_id *note)
{
    /* In the call's arena: listed until the call is finished, and a call
     * outlives its finish. */
    struct voice_watch *w = tw_arena_alloc(tw_call_arena(call), sizeof *w);
    if (w == NULL)
        return TW_ERR_NO_MEMORY;
    *w = (struct voice_watch){.v = v, .call = call, .user = *user, .note = *note};
    /* Observing (again: a restarted feature is a new one), checking the
     * note and listing under one hold of hub.lock: a shutdown after the
     * observer is set waits for the listing and then ends w. */
    static const tw_voice_observer observer = {.changed = note_changed, .stopping = voice_stopping};
    Tw__V1__VoiceNote *found;
    pthread_mutex_lock(&hub.lock);
    tw_err err = tw_voice_observe(v, &observer);
    if (err == TW_OK)
        err = tw_voice_note_get(v, user, note, tw_call_arena(call), &found);
    if (err == TW_OK) {
        w->next = hub.watches;
        hub.watches = w;
    }
    pthread_mutex_unlock(&hub.lock);
    if (err)
        return err;
    /* Runs at once when the call is already cancelled, unlisting w. */
    tw_call_on_cancel(call, watch_cancelled, w);
    /* Listed first, then read: a change in between is not missed (and one
     * seen twice is sent once). */
    pthread_mutex_lock(&hub.lock);
    struct voice_watch *listed = hub.watches;
    while (listed != NULL && listed != w)
        listed = listed->next;
    if (listed != NULL)
        watch_push_locked(w);
    pthread_mutex_unlock(&hub.lock);
    return TW_DEFERRED;
}
