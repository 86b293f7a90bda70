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

/* A token for the page after cursor (1..TW_PAGE_CURSOR_MAX bytes), for user
 * (NULL: service-wide lists) and query (query_len bytes, may be 0), as a
 * NUL-terminated string in arena. All pointers are borrowed. */
tw_err tw_store_page_token_make(const tw_store *s, const tw_id *user, const void *query,
                                size_t query_len, const void *cursor, size_t cursor_len,
                                tw_arena *arena, char **token);

/* The cursor of token, checked against user and query; the cursor lives in
 * arena. An empty token is the first page: *cursor NULL, *cursor_len 0. */
tw_err tw_store_page_token_read(const tw_store *s, const tw_id *user, const void *query,
                                size_t query_len, const char *token, tw_arena *arena,
                                uint8_t **cursor, size_t *cursor_len);

#endif
