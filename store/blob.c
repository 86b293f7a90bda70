/* The backend-independent layer of tw_blob.h: checks keys, then dispatches. */
#include "blob_backend.h"
#include "store_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

bool tw_blob_key_valid(const char *key)
{
    size_t n = key ? strnlen(key, TW_BLOB_KEY_MAX + 1) : 0;
    if (n == 0 || n > TW_BLOB_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool segment_start = i == 0 || key[i - 1] == '/';
        if (segment_start && (key[i] == '.' || key[i] == '/'))
            return false; /* hidden names (temporary files, "..") and empty segments */
        if (key[i] != '/' && !key_char(key[i]))
            return false;
    }
    return key[n - 1] != '/';
}

static tw_err check_key(const char *key)
{
    return tw_blob_key_valid(key) ? TW_OK : store_fail(TW_ERR_VALIDATION, "bad blob key");
}

void tw_blob_close(tw_blob_store *b)
{
    if (b != NULL)
        b->ops->close(b);
}

tw_err tw_blob_writer_open(tw_blob_store *b, const char *key, tw_blob_writer **out)
{
    *out = NULL;
    tw_err err = check_key(key);
    return err ? err : b->ops->writer_open(b, key, out);
}

tw_err tw_blob_writer_append(tw_blob_writer *w, const void *data, size_t len)
{
    return len ? w->store->ops->writer_append(w, data, len) : TW_OK;
}

tw_err tw_blob_writer_commit(tw_blob_writer *w)
{
    return w->store->ops->writer_commit(w);
}

void tw_blob_writer_abort(tw_blob_writer *w)
{
    if (w != NULL)
        w->store->ops->writer_abort(w);
}

tw_err tw_blob_reader_open(tw_blob_store *b, const char *key, uint64_t offset, tw_blob_reader **out,
                           tw_blob_info *info)
{
    tw_blob_info ignored;
    *out = NULL;
    tw_err err = check_key(key);
    return err ? err : b->ops->reader_open(b, key, offset, out, info ? info : &ignored);
}

tw_err tw_blob_reader_read(tw_blob_reader *r, void *buf, size_t cap, size_t *n)
{
    return r->store->ops->reader_read(r, buf, cap, n);
}

void tw_blob_reader_close(tw_blob_reader *r)
{
    if (r != NULL)
        r->store->ops->reader_close(r);
}

tw_err tw_blob_delete(tw_blob_store *b, const char *key)
{
    tw_err err = check_key(key);
    return err ? err : b->ops->remove(b, key);
}

tw_err tw_blob_stat(tw_blob_store *b, const char *key, tw_blob_info *out)
{
    tw_err err = check_key(key);
    return err ? err : b->ops->stat(b, key, out);
}

tw_err tw_blob_list(tw_blob_store *b, const char *prefix, tw_blob_list_fn fn, void *ctx)
{
    if (strnlen(prefix, TW_BLOB_KEY_MAX + 1) > TW_BLOB_KEY_MAX)
        return store_fail(TW_ERR_VALIDATION, "blob prefix too long");
    return b->ops->list(b, prefix, fn, ctx);
}

tw_err tw_blob_backend_fail(tw_err code, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return store_fail(code, "%s", detail);
}
