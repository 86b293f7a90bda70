/*
 * Pages of changes for Pull and Watch: sync tokens (where a client is),
 * the set of resource types it follows, and reading what changed after a
 * token from the user's change log, or everything the user has for a full
 * sync.
 *
 * A token is a page token (tw_page.h: MAC'd, bound to the user and to the
 * set of types) whose cursor is either "incremental after sequence N", or
 * "full sync begun at sequence N, at this resource type and key". A full
 * sync sends every resource, then continues incrementally from N, so a
 * change made while it runs is sent (perhaps twice), never lost.
 */
#ifndef TW_SYNC_PULL_H
#define TW_SYNC_PULL_H

#include "sync_registry.h"
#include "tw_store.h"

#include <stdint.h>

/* Longest page. */
#define TW_SYNC_PAGE_MAX     500
#define TW_SYNC_PAGE_DEFAULT 100
/* Room in bit sets of resource types. */
#define TW_SYNC_TYPES_MAX 32

/* The resource types a client follows (every one when none is named). */
typedef struct tw_sync_types {
    bool want[TW_SYNC_TYPES_MAX];
    /* The sorted names, joined, as the token's query. */
    char query[256];
} tw_sync_types;

/* From a request's resource_types; false with why set for an unknown or
 * repeated name. */
bool tw_sync_types_parse(char **names, size_t n, tw_sync_types *out, char *why, size_t why_len);

typedef struct tw_sync_cursor {
    bool full;         /* a full sync in progress */
    uint64_t sequence; /* incremental: the last sequence sent; full: where it began */
    uint32_t type;     /* full: the resource type being sent (index) */
    uint8_t key[TW_KEY_MAX];
    size_t key_len; /* full: the last key sent of that type, 0 for none yet */
} tw_sync_cursor;

/* The cursor of a token; an empty token starts a full sync (at the log's
 * current end). TW_ERR_BAD_PAGE_TOKEN for a token not made for this user
 * and these types. */
tw_err tw_sync_token_read(tw_store *s, const tw_id *user, const tw_sync_types *types,
                          const char *token, tw_arena *arena, tw_sync_cursor *out);
tw_err tw_sync_token_make(tw_store *s, const tw_id *user, const tw_sync_types *types,
                          const tw_sync_cursor *c, tw_arena *arena, char **token);

typedef struct tw_sync_page {
    Tw__V1__Change **changes;
    size_t count;
    bool more;              /* another page follows now */
    bool resync;            /* the cursor is too old (or from another database): start over */
    uint64_t last_sequence; /* the log's end when the page was read */
} tw_sync_page;

/* Reads up to limit changes after c and moves c past them. */
tw_err tw_sync_read(tw_store *s, const tw_id *user, const tw_sync_types *types, tw_sync_cursor *c,
                    uint32_t limit, tw_arena *arena, tw_sync_page *out);

#endif
