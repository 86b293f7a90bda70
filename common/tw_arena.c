/* Block-list bump allocator for tw_arena.h. */
#include "tw_arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN _Alignof(max_align_t)

struct arena_block {
    struct arena_block *next;
    size_t size; /* usable bytes in data */
    size_t used;
    _Alignas(max_align_t) unsigned char data[];
};

struct tw_arena {
    struct arena_block *head; /* the block being filled; older ones follow */
    size_t next_block_size;
    size_t used_total;
};

static struct arena_block *block_new(size_t size)
{
    struct arena_block *b = malloc(sizeof *b + size);
    if (b == NULL)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

tw_arena *tw_arena_new(size_t first_block)
{
    tw_arena *arena = calloc(1, sizeof *arena);
    if (arena == NULL)
        return NULL;
    arena->next_block_size = first_block < 256 ? 256 : first_block;
    arena->head = block_new(arena->next_block_size);
    if (arena->head == NULL) {
        free(arena);
        return NULL;
    }
    return arena;
}

void tw_arena_free(tw_arena *arena)
{
    if (arena == NULL)
        return;
    struct arena_block *b = arena->head;
    while (b != NULL) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(arena);
}

/* size bytes aligned for any type, as they were left. */
static void *arena_take(tw_arena *arena, size_t size)
{
    size_t rounded = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (rounded < size)
        return NULL; /* overflow */
    struct arena_block *b = arena->head;
    if (b->size - b->used < rounded) {
        /* Grow geometrically so a call with many allocations needs few blocks;
         * an allocation larger than that gets a block of its own. */
        if (arena->next_block_size < (SIZE_MAX / 4))
            arena->next_block_size *= 2;
        size_t want = rounded > arena->next_block_size ? rounded : arena->next_block_size;
        struct arena_block *fresh = block_new(want);
        if (fresh == NULL)
            return NULL;
        fresh->next = arena->head;
        arena->head = fresh;
        b = fresh;
    }
    void *p = b->data + b->used;
    b->used += rounded;
    arena->used_total += rounded;
    return p;
}

void *tw_arena_alloc(tw_arena *arena, size_t size)
{
    void *p = arena_take(arena, size);
    if (p != NULL)
        memset(p, 0, size);
    return p;
}

void *tw_arena_memdup(tw_arena *arena, const void *src, size_t len)
{
    void *copy = arena_take(arena, len);
    if (copy != NULL && len > 0)
        memcpy(copy, src, len);
    return copy;
}

char *tw_arena_strndup(tw_arena *arena, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *copy = arena_take(arena, len + 1);
    if (copy != NULL) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

char *tw_arena_strdup(tw_arena *arena, const char *s)
{
    return tw_arena_strndup(arena, s, SIZE_MAX);
}

char *tw_arena_printf(tw_arena *arena, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    char *out = tw_arena_alloc(arena, (size_t)len + 1);
    if (out == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return out;
}

size_t tw_arena_used(const tw_arena *arena)
{
    return arena->used_total;
}
