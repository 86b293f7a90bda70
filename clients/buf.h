/*
 * A growing byte buffer with a size cap, shared by the files of clients/
 * (request lines, canonical requests, response bodies). Like curl's dynbuf:
 * once an append fails (out of memory or past the cap) the buffer is
 * emptied and stays failed, so a chain of appends needs one check at the
 * end. The bytes are always followed by a NUL, so text can be read as a
 * C string.
 */
#ifndef TW_CLIENTS_BUF_H
#define TW_CLIENTS_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tw_buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t alloc;
    size_t cap;  /* most bytes it may hold */
    bool failed; /* an append failed; nothing more is taken */
    bool over;   /* ... because the cap was reached (not memory) */
} tw_buf;

/* An empty buffer that holds at most cap bytes. */
void tw_buf_init(tw_buf *b, size_t cap);

/* Frees the bytes; the buffer is empty and usable again. */
void tw_buf_free(tw_buf *b);

/* Empties the buffer but keeps its memory and its cap, and clears failed. */
void tw_buf_reset(tw_buf *b);

/* Appends n bytes (borrowed). False when the buffer has failed. */
bool tw_buf_add(tw_buf *b, const void *data, size_t n);
bool tw_buf_adds(tw_buf *b, const char *s);
bool tw_buf_addf(tw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fails the buffer as an out-of-memory append would: for a chain of
 * appends whose value could not be made (an encoding out of memory). */
void tw_buf_fail(tw_buf *b);

/* The text so far ("" when empty or failed). */
const char *tw_buf_str(const tw_buf *b);

/* Hands the bytes (NUL-terminated, malloc'd) to the caller and empties
 * the buffer; NULL when it has failed or out of memory. */
char *tw_buf_take(tw_buf *b);

#endif
