/*
 * SyncService's live Watch streams: glue between the domain's observer of
 * changes (the store's commit listener, tw_store_set_commit_listener) and
 * the calls. The store's commit listener tells the hub that a
 * user's change log grew; the hub wakes that user's watchers, and one
 * thread of its own (started with the first Watch) reads the new entries
 * and sends them, so neither the committing thread nor an RPC thread ever
 * waits on a slow client.
 *
 * A watcher more than TW_SYNC_WATCH_MAX_LAG changes behind (or whose
 * client stops reading) ends with SYNC_002: the client Pulls from its last
 * token and watches again. At shutdown every watch ends with UNAVAILABLE.
 */
#ifndef TW_SYNC_WATCH_H
#define TW_SYNC_WATCH_H

#include "rpc/call.h"
#include "sync/sync_pull.h"

/* Changes a watcher may be behind before it is ended. */
#define TW_SYNC_WATCH_MAX_LAG 1000
/* Changes per message. */
#define TW_SYNC_WATCH_BATCH 100

/* One Watch stream, kept in its call's state (zeroed by the engine); its
 * fields belong to the hub. */
typedef struct tw_sync_watcher {
    tw_call *call;
    tw_store *store;
    tw_id user;
    tw_sync_types types;
    uint64_t sent;   /* the last sequence sent (pump thread only) */
    uint64_t target; /* the log's end as last heard */
    bool queued, running, ended;
    bool greeted; /* a first message went out (pump thread only) */
    tw_err end_err;
    struct tw_sync_watcher *next_of_user, *next_queued, *next_ending;
} tw_sync_watcher;

/* Makes the hub the store's commit listener; before serving. */
void tw_sync_watch_attach(tw_store *s);

/* Starts streaming the changes after `since` to call (w: its state).
 * Returns TW_DEFERRED, or the error to end the call with now. */
tw_err tw_sync_watch_start(tw_call *call, tw_sync_watcher *w, tw_store *s, const tw_id *user,
                           const tw_sync_types *types, uint64_t since);

/* Ends every watch with UNAVAILABLE and stops the hub's thread. */
void tw_sync_watch_shutdown(void);

#endif
