/*
 * The Watch hub (sync_watch.h). One lock guards the watcher lists and
 * every watcher's flags. A watcher is in its user's bucket from start to
 * end, and in the run queue while it has something to send; the pump
 * thread marks the one it works on `running`, so whoever ends a running
 * watcher (its cancellation, shutdown) leaves finishing the call to the
 * pump. Every call is finished exactly once: by whoever ends it while it
 * is not running, or by the pump.
 */
#include "sync_watch.h"

#include "tw/v1/sync_service.pb-c.h"
#include "tw_changelog.h"
#include "tw_log.h"

#include <pthread.h>
#include <string.h>

#define BUCKETS 256
/* Batches sent to one watcher before the others get a turn. */
#define ROUNDS 4

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool started, stopping;
    pthread_t thread;
    tw_sync_watcher *buckets[BUCKETS];
    tw_sync_watcher *queue_head, *queue_tail;
} hub = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static size_t bucket_of(const tw_id *user)
{
    /* The random end of a UUIDv7 spreads users evenly. */
    return user->bytes[TW_ID_BYTES - 1] % BUCKETS;
}

static bool same_user(const tw_sync_watcher *w, const tw_id *user)
{
    return memcmp(w->user.bytes, user->bytes, TW_ID_BYTES) == 0;
}

static void enqueue_locked(tw_sync_watcher *w)
{
    if (w->queued || w->running || w->ended)
        return;
    w->queued = true;
    w->next_queued = NULL;
    if (hub.queue_tail)
        hub.queue_tail->next_queued = w;
    else
        hub.queue_head = w;
    hub.queue_tail = w;
    pthread_cond_signal(&hub.wake);
}

static void unqueue_locked(tw_sync_watcher *w)
{
    if (!w->queued)
        return;
    tw_sync_watcher *prev = NULL;
    for (tw_sync_watcher *i = hub.queue_head; i != NULL; prev = i, i = i->next_queued) {
        if (i != w)
            continue;
        if (prev)
            prev->next_queued = w->next_queued;
        else
            hub.queue_head = w->next_queued;
        if (hub.queue_tail == w)
            hub.queue_tail = prev;
        break;
    }
    w->queued = false;
}

static void unlink_locked(tw_sync_watcher *w)
{
    for (tw_sync_watcher **p = &hub.buckets[bucket_of(&w->user)]; *p != NULL;
         p = &(*p)->next_of_user) {
        if (*p == w) {
            *p = w->next_of_user;
            return;
        }
    }
}

/* Ends w with err; true when the caller must finish its call now (the
 * pump is not working on it and nobody ended it before). */
static bool end_locked(tw_sync_watcher *w, tw_err err)
{
    if (w->ended)
        return false;
    w->ended = true;
    w->end_err = err;
    unlink_locked(w);
    unqueue_locked(w);
    return !w->running;
}

/* The store's commit listener: short, on the committing thread. */
static void on_commit(void *ctx, const tw_id *user, uint64_t last_sequence)
{
    (void)ctx;
    pthread_mutex_lock(&hub.lock);
    for (tw_sync_watcher *w = hub.buckets[bucket_of(user)]; w != NULL; w = w->next_of_user) {
        if (!same_user(w, user))
            continue;
        if (last_sequence > w->target)
            w->target = last_sequence;
        enqueue_locked(w);
    }
    pthread_mutex_unlock(&hub.lock);
}

/* Sends w what it has not seen, a few batches at most; *more says there
 * is more to send now. The first run always sends a message, so the
 * client knows its stream is live. */
static tw_err pump_one(tw_sync_watcher *w, bool *more)
{
    *more = false;
    tw_arena *arena = tw_arena_new(64 * 1024);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err = TW_OK;
    for (int round = 0; round < ROUNDS && err == TW_OK; round++) {
        tw_sync_cursor c = {.sequence = w->sent};
        tw_sync_page page;
        if ((err = tw_sync_read(w->store, &w->user, &w->types, &c, TW_SYNC_WATCH_BATCH, arena,
                                &page)))
            break;
        if (page.resync) {
            err = TW_ERR_SYNC_RESYNC;
            break;
        }
        if (page.last_sequence > w->sent + TW_SYNC_WATCH_MAX_LAG) {
            err = TW_ERR_SYNC_BEHIND;
            break;
        }
        if (c.sequence == w->sent && w->greeted)
            break;
        Tw__V1__WatchResponse msg = TW__V1__WATCH_RESPONSE__INIT;
        msg.changes = page.changes;
        msg.n_changes = page.count;
        if ((err = tw_sync_token_make(w->store, &w->user, &w->types, &c, arena, &msg.token)))
            break;
        err = tw_call_send(w->call, &msg.base);
        if (err == TW_ERR_SLOW_READER)
            err = TW_ERR_SYNC_BEHIND;
        w->greeted = true;
        w->sent = c.sequence;
        *more = page.more;
        if (!page.more)
            break;
    }
    tw_arena_free(arena);
    return err;
}

static void *pump_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&hub.lock);
    for (;;) {
        while (!hub.stopping && hub.queue_head == NULL)
            pthread_cond_wait(&hub.wake, &hub.lock);
        if (hub.stopping)
            break;
        tw_sync_watcher *w = hub.queue_head;
        hub.queue_head = w->next_queued;
        if (hub.queue_head == NULL)
            hub.queue_tail = NULL;
        w->queued = false;
        w->running = true;
        pthread_mutex_unlock(&hub.lock);

        bool more;
        tw_err err = pump_one(w, &more);

        pthread_mutex_lock(&hub.lock);
        w->running = false;
        bool finish = w->ended || (err && end_locked(w, err));
        tw_err status = w->end_err;
        if (!finish && (more || w->target > w->sent))
            enqueue_locked(w);
        pthread_mutex_unlock(&hub.lock);
        if (finish)
            tw_call_finish(w->call, status); /* w may be gone after this */
        pthread_mutex_lock(&hub.lock);
    }
    pthread_mutex_unlock(&hub.lock);
    return NULL;
}

static void cancelled(tw_call *call, void *ctx)
{
    tw_sync_watcher *w = ctx;
    pthread_mutex_lock(&hub.lock);
    bool now = end_locked(w, TW_ERR_CANCELLED);
    pthread_mutex_unlock(&hub.lock);
    if (now)
        tw_call_finish(call, TW_ERR_CANCELLED);
}

void tw_sync_watch_attach(tw_store *s)
{
    pthread_mutex_lock(&hub.lock);
    hub.stopping = false;
    pthread_mutex_unlock(&hub.lock);
    tw_store_set_commit_listener(s, on_commit, NULL);
}

tw_err tw_sync_watch_start(tw_call *call, tw_sync_watcher *w, tw_store *s, const tw_id *user,
                           const tw_sync_types *types, uint64_t since)
{
    tw_change_page head;
    tw_err err = tw_store_changelog_read(s, user, since, 0, tw_call_arena(call), &head);
    if (err) {
        tw_call_log_detail(call, "%s", tw_store_last_error());
        return err;
    }
    if (head.resync)
        return TW_ERR_SYNC_RESYNC;
    if (head.last_sequence > since + TW_SYNC_WATCH_MAX_LAG)
        return TW_ERR_SYNC_BEHIND;
    w->call = call;
    w->store = s;
    w->user = *user;
    w->types = *types;
    w->sent = since;
    w->target = head.last_sequence;

    /* Told of a cancellation first: if the call is already gone, the
     * callback ends it here and nothing is linked. */
    tw_call_on_cancel(call, cancelled, w);
    pthread_mutex_lock(&hub.lock);
    if (w->ended) {
        pthread_mutex_unlock(&hub.lock);
        return TW_DEFERRED;
    }
    if (hub.stopping) {
        /* The cancellation callback may still run: it finds w ended. */
        bool now = end_locked(w, TW_ERR_SHUTTING_DOWN);
        pthread_mutex_unlock(&hub.lock);
        if (now)
            tw_call_finish(call, TW_ERR_SHUTTING_DOWN);
        return TW_DEFERRED;
    }
    if (!hub.started) {
        if (pthread_create(&hub.thread, NULL, pump_main, NULL) != 0) {
            bool now = end_locked(w, TW_ERR_INTERNAL);
            pthread_mutex_unlock(&hub.lock);
            if (now)
                tw_call_finish(call, TW_ERR_INTERNAL);
            return TW_DEFERRED;
        }
        hub.started = true;
    }
    size_t b = bucket_of(user);
    w->next_of_user = hub.buckets[b];
    hub.buckets[b] = w;
    enqueue_locked(w);
    pthread_mutex_unlock(&hub.lock);
    return TW_DEFERRED;
}

void tw_sync_watch_shutdown(void)
{
    tw_sync_watcher *ending = NULL;
    pthread_mutex_lock(&hub.lock);
    hub.stopping = true;
    for (size_t b = 0; b < BUCKETS; b++) {
        while (hub.buckets[b] != NULL) {
            tw_sync_watcher *w = hub.buckets[b];
            if (end_locked(w, TW_ERR_SHUTTING_DOWN)) { /* unlinks w */
                w->next_ending = ending;
                ending = w;
            }
        }
    }
    bool started = hub.started;
    hub.started = false;
    pthread_cond_broadcast(&hub.wake);
    pthread_mutex_unlock(&hub.lock);
    while (ending != NULL) {
        tw_sync_watcher *w = ending;
        ending = w->next_ending;
        tw_call_finish(w->call, TW_ERR_SHUTTING_DOWN);
    }
    if (started)
        pthread_join(hub.thread, NULL);
}
