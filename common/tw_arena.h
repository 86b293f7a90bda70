/*
 * Arenas: bump allocation with one free for everything. Each RPC gets one;
 * everything allocated for the call (decoded request, response, handler
 * scratch) dies with it, so handlers do not free piecemeal.
 *
 * An arena is not thread-safe: one call is handled by one thread at a time.
 */
#ifndef TW_ARENA_H
#define TW_ARENA_H

#include <stddef.h>

typedef struct tw_arena tw_arena;

/* A new arena whose first block holds about first_block bytes. NULL when out of memory. */
tw_arena *tw_arena_new(size_t first_block);

/* Frees the arena and everything allocated from it. Accepts NULL. */
void tw_arena_free(tw_arena *arena);

/* size bytes aligned for any type, zeroed; NULL when out of memory. */
void *tw_arena_alloc(tw_arena *arena, size_t size);

/* A copy of len bytes at src (not zeroed first: every byte is written);
 * NULL when out of memory. */
void *tw_arena_memdup(tw_arena *arena, const void *src, size_t len);

/* A copy of the NUL-terminated s (or of its first n bytes, always terminated). */
char *tw_arena_strdup(tw_arena *arena, const char *s);
char *tw_arena_strndup(tw_arena *arena, const char *s, size_t n);

/* printf into the arena. */
char *tw_arena_printf(tw_arena *arena, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Bytes handed out so far, for tests and metrics. */
size_t tw_arena_used(const tw_arena *arena);

#endif
