/*
 * The per-user change log, for sync. Every write of user data appends, in
 * the same transaction, an entry (resource type, resource id, upsert or
 * tombstone) under the user's next sequence number: sequences of one user
 * are gap-free and increase in commit order. The store numbers the entries
 * at commit, one commit of a user at a time (store/txn.c), so writers of one
 * user, whatever service they serve, neither conflict nor retry over the
 * log. Pull reads the entries after a client's cursor; Watch is woken by the
 * store's commit listener (tw_store_set_commit_listener). Old entries are
 * trimmed; a client whose cursor is older than what was trimmed must
 * resynchronise from scratch.
 */
#ifndef TW_CHANGELOG_H
#define TW_CHANGELOG_H

#include "tw_txn.h"

typedef enum tw_change_op {
    TW_CHANGE_UPSERT = 1,    /* created or changed: fetch it */
    TW_CHANGE_TOMBSTONE = 2, /* deleted: drop it */
} tw_change_op;

/* Appends an entry to user's log in t. Its sequence is given when t
 * commits: *sequence (may be NULL; it must outlive the commit) gets it then.
 * resource_type ("task") and the ids are copied. A transaction may append
 * several entries, for several users; they follow each other in the order
 * appended. */
tw_err tw_txn_changelog_append(tw_txn *t, const tw_id *user, const char *resource_type,
                               const tw_id *resource_id, tw_change_op op, uint64_t *sequence);

typedef struct tw_change {
    uint64_t sequence;
    const char *resource_type;
    tw_id resource_id;
    tw_change_op op;
    int64_t time_ms; /* when it was committed */
} tw_change;

typedef struct tw_change_page {
    tw_change *changes; /* in sequence order, allocated in the arena */
    size_t count;
    /* The user's last sequence: the client is up to date when its cursor
     * reaches it. */
    uint64_t last_sequence;
    /* The first sequence still kept (entries before it were trimmed). */
    uint64_t oldest_sequence;
    /* The cursor cannot be served: entries after it were trimmed, or it is
     * beyond the last sequence (the server's data was restored from a
     * backup). The client must resynchronise; changes is empty. */
    bool resync;
    /* More entries follow the last one returned: read again from it. */
    bool more;
} tw_change_page;

/* Longest page tw_store_changelog_read returns. */
#define TW_CHANGELOG_MAX_LIMIT 1000

/* The entries of user's log after sequence since (0: from the start), at
 * most limit of them (0 reads only the head; capped at
 * TW_CHANGELOG_MAX_LIMIT), allocated in arena. Under TW_DURABLE it returns
 * once what it read is durable: a commit is visible a moment before. */
tw_err tw_store_changelog_read(tw_store *s, const tw_id *user, uint64_t since, uint32_t limit,
                               tw_arena *arena, tw_change_page *out);

/* Retention: removes the entries committed before before_ms from user's
 * log, or from every user's log when user is NULL, and records what was
 * trimmed. *removed (may be NULL) gets how many entries went. Runs in
 * small transactions while writes continue. */
tw_err tw_store_changelog_trim(tw_store *s, const tw_id *user, int64_t before_ms,
                               uint64_t *removed);

#endif
