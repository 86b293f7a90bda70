/*
 * The interface a blob backend implements (store/blob_fs.c, and
 * clients/blob_s3.c outside store/). tw_blob.h's functions check keys and
 * arguments, then call these; a backend gets only valid keys. Each
 * backend's structs start with the generic one, which the generic layer
 * reads.
 */
#ifndef TW_BLOB_BACKEND_H
#define TW_BLOB_BACKEND_H

#include "tw_blob.h"

struct tw_blob_ops {
    tw_err (*writer_open)(tw_blob_store *b, const char *key, tw_blob_writer **out);
    tw_err (*writer_append)(tw_blob_writer *w, const void *data, size_t len);
    tw_err (*writer_commit)(tw_blob_writer *w); /* frees w */
    void (*writer_abort)(tw_blob_writer *w);    /* frees w */
    tw_err (*reader_open)(tw_blob_store *b, const char *key, uint64_t offset, tw_blob_reader **out,
                          tw_blob_info *info);
    tw_err (*reader_read)(tw_blob_reader *r, void *buf, size_t cap, size_t *n);
    void (*reader_close)(tw_blob_reader *r); /* frees r */
    tw_err (*remove)(tw_blob_store *b, const char *key);
    tw_err (*stat)(tw_blob_store *b, const char *key, tw_blob_info *out);
    tw_err (*list)(tw_blob_store *b, const char *prefix, tw_blob_list_fn fn, void *ctx);
    void (*close)(tw_blob_store *b); /* frees b */
};

struct tw_blob_store {
    const struct tw_blob_ops *ops;
};

struct tw_blob_writer {
    tw_blob_store *store;
};

struct tw_blob_reader {
    tw_blob_store *store;
};

/* Records a formatted detail as tw_store_last_error() and returns code:
 * how a backend outside store/ reports its failures. */
tw_err tw_blob_backend_fail(tw_err code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
