/*
 * Pagination for List calls (AIP-158): page sizes and page tokens.
 *
 * A page token carries the cursor where the next page starts (for a store
 * scan, the last key returned) and is opaque to clients: base64url (no
 * padding) of a version byte, the cursor and a 16-byte HMAC-SHA256 tag.
 * The tag covers the cursor, the caller's user id and a SHA-256 of the query
 * (the list request's filters and order, packed by the caller without
 * page_size and page_token), under a random key the store keeps in its meta
 * record. So a token cannot be forged or edited, and a token issued for one
 * user or query is refused for another: TW_ERR_BAD_PAGE_TOKEN
 * (INVALID_ARGUMENT, VAL_003), nothing else to learn from it.
 */
#ifndef TW_PAGE_H
#define TW_PAGE_H

#include "tw_store.h"

#define TW_PAGE_SIZE_DEFAULT 50
#define TW_PAGE_SIZE_MAX     500
/* Longest cursor a token can carry. */
#define TW_PAGE_CURSOR_MAX TW_KEY_MAX

/* The page size to serve for a request's page_size: 0 means the default,
 * more than the maximum is served as the maximum (AIP-158), negative is
 * TW_ERR_VALIDATION. */
tw_err tw_store_page_size(int32_t requested, uint32_t *out);

/* Where the next page starts, when a scan found more than a page: a copy
 * of the last listed key (len bytes, borrowed) in arena, as *next. */
tw_err tw_store_page_cursor(tw_arena *arena, const uint8_t *last, size_t len, uint8_t **next,
                            size_t *next_len);

/* ---- One page of a prefix scan ---------------------------------------------- */

/* Shown each key of a page in turn (the iterator is on it); sets *taken
 * when the item is in the page (a filter passes over the rest). An error
 * ends the page and is returned. */
typedef tw_err (*tw_store_page_fn)(void *ctx, tw_store_iter *it, bool *taken);

/* What tw_store_page_scan lists. */
typedef struct tw_store_page_query {
    const tw_key *prefix; /* the keys listed */
    bool reverse;         /* last key first */
    /* Where the scan starts, after this key (exclusive; NULL or 0 bytes:
     * the prefix's first key): a previous page's cursor, or the first
     * page's bound of a range. Borrowed. */
    const uint8_t *after;
    size_t after_len;
    /* NULL, or the other end of a range: the page ends, with no next page,
     * at the first key past it in the scan's direction (a key below stop
     * in a reverse scan, a key at or above it in a forward one). */
    const tw_key *stop;
    uint32_t limit; /* items taken at most */
    /* Keys shown at most (0: no bound), so a filter that takes few items
     * cannot read the whole prefix for one page: a page may end early, with
     * a cursor, when the filter passed over many keys. */
    uint64_t max_scan;
} tw_store_page_query;

/*
 * One page: fn is shown each key of q->prefix in q's order until limit
 * items are taken, max_scan keys are shown, the range ends at q->stop or
 * the prefix ends. When keys remain after the page, *next (in arena) is
 * the cursor of the next page (the last key shown), else NULL. fn's error,
 * a scan error or TW_ERR_NO_MEMORY is returned (*next NULL).
 */
tw_err tw_store_page_scan(tw_store *s, const tw_store_page_query *q, tw_store_page_fn fn, void *ctx,
                          tw_arena *arena, uint8_t **next, size_t *next_len);

/* A token for the page after cursor (1..TW_PAGE_CURSOR_MAX bytes), for user
 * (NULL: service-wide lists) and query (query_len bytes, may be 0), as a
 * NUL-terminated string in arena. All pointers are borrowed. */
tw_err tw_store_page_token_make(tw_store *s, const tw_id *user, const void *query, size_t query_len,
                                const void *cursor, size_t cursor_len, tw_arena *arena,
                                char **token);

/* The cursor of token, checked against user and query; the cursor lives in
 * arena. An empty token is the first page: *cursor NULL, *cursor_len 0. */
tw_err tw_store_page_token_read(tw_store *s, const tw_id *user, const void *query, size_t query_len,
                                const char *token, tw_arena *arena, uint8_t **cursor,
                                size_t *cursor_len);

#endif
