/* The capped byte buffer of buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tw_buf_init(tw_buf *b, size_t cap)
{
    *b = (tw_buf){.cap = cap};
}

void tw_buf_free(tw_buf *b)
{
    free(b->data);
    tw_buf_init(b, b->cap);
}

void tw_buf_reset(tw_buf *b)
{
    b->len = 0;
    b->failed = b->over = false;
    if (b->data != NULL)
        b->data[0] = '\0';
}

static bool fail(tw_buf *b, bool over)
{
    free(b->data);
    size_t cap = b->cap;
    *b = (tw_buf){.cap = cap, .failed = true, .over = over};
    return false;
}

void tw_buf_fail(tw_buf *b)
{
    if (!b->failed)
        fail(b, false);
}

bool tw_buf_add(tw_buf *b, const void *data, size_t n)
{
    if (b->failed)
        return false;
    if (n > b->cap - b->len)
        return fail(b, true);
    if (b->len + n + 1 > b->alloc) {
        size_t want = b->alloc ? b->alloc : 256;
        while (want < b->len + n + 1)
            want *= 2;
        if (want > b->cap + 1)
            want = b->cap + 1;
        char *p = realloc(b->data, want);
        if (p == NULL)
            return fail(b, false);
        b->data = p;
        b->alloc = want;
    }
    if (n > 0)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool tw_buf_adds(tw_buf *b, const char *s)
{
    return tw_buf_add(b, s, strlen(s));
}

bool tw_buf_addf(tw_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return fail(b, false);
    if ((size_t)n < sizeof small)
        return tw_buf_add(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return fail(b, false);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    bool ok = tw_buf_add(b, big, (size_t)n);
    free(big);
    return ok;
}

const char *tw_buf_str(const tw_buf *b)
{
    return b->data != NULL ? b->data : "";
}

char *tw_buf_take(tw_buf *b)
{
    if (b->failed)
        return NULL;
    if (b->data == NULL && !tw_buf_add(b, "", 0))
        return NULL;
    char *out = b->data;
    tw_buf_init(b, b->cap);
    return out;
}
