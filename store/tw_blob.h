/*
 * Blob storage for audio: whole objects written as a stream, then made
 * visible at once. Backends sit behind one interface (store/blob_backend.h):
 * the filesystem now, S3-compatible services later.
 *
 * Keys are paths of segments joined by '/', like "<user-id>/<note-id>":
 * each segment 1 or more of [A-Za-z0-9._-], not starting with '.', the
 * whole at most TW_BLOB_KEY_MAX bytes. Any other key is TW_ERR_VALIDATION.
 *
 * A writer's bytes are invisible until commit, which makes the object
 * appear whole (replacing one of the same key) and durable, or fails and
 * leaves nothing; abort and any crash leave nothing either. Failures of the
 * medium are TW_ERR_DB (DB_001) on the filesystem and TW_ERR_UPSTREAM
 * (UPSTREAM_001) on S3 (clients/blob_s3.h), with the detail in
 * tw_store_last_error(). Stores, writers and readers are used by one thread
 * at a time each; a store may serve many writers and readers at once. On S3
 * every call is a network round trip (append one whenever a 5 MiB part
 * fills): call them off RPC threads.
 */
#ifndef TW_BLOB_H
#define TW_BLOB_H

#include "tw_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TW_BLOB_KEY_MAX 256

typedef struct tw_blob_store tw_blob_store;
typedef struct tw_blob_writer tw_blob_writer;
typedef struct tw_blob_reader tw_blob_reader;

typedef struct tw_blob_info {
    uint64_t size;
    int64_t mtime_ms; /* when it was committed */
} tw_blob_info;

/* True when key is a valid blob key. */
bool tw_blob_key_valid(const char *key);

/* The filesystem backend: blobs under <data_dir>/blobs, made if missing.
 * Uncommitted writes left by a crash are removed here, so open before any
 * writer starts. data_dir is copied. */
tw_err tw_blob_fs_open(const char *data_dir, tw_blob_store **out);

/* Closes a store of any backend; its writers and readers must be ended. */
void tw_blob_close(tw_blob_store *b);

/* Starts writing key. key is copied. */
tw_err tw_blob_writer_open(tw_blob_store *b, const char *key, tw_blob_writer **out);
/* Appends bytes (borrowed during the call). After a failure only abort. */
tw_err tw_blob_writer_append(tw_blob_writer *w, const void *data, size_t len);
/* Makes the object visible and durable; ends w whatever the outcome. */
tw_err tw_blob_writer_commit(tw_blob_writer *w);
/* Drops what was written and ends w. Accepts NULL. */
void tw_blob_writer_abort(tw_blob_writer *w);

/* Opens key for reading from offset (at most its size); info (may be NULL)
 * gets its size and time. TW_ERR_NOT_FOUND when absent. */
tw_err tw_blob_reader_open(tw_blob_store *b, const char *key, uint64_t offset, tw_blob_reader **out,
                           tw_blob_info *info);
/* Reads up to cap bytes into buf; *n is 0 at the end. */
tw_err tw_blob_reader_read(tw_blob_reader *r, void *buf, size_t cap, size_t *n);
/* Ends r. Accepts NULL. */
void tw_blob_reader_close(tw_blob_reader *r);

/* Deletes key; TW_ERR_NOT_FOUND when absent. */
tw_err tw_blob_delete(tw_blob_store *b, const char *key);

/* Size and time of key; TW_ERR_NOT_FOUND when absent. */
tw_err tw_blob_stat(tw_blob_store *b, const char *key, tw_blob_info *out);

/* Calls fn for every committed key that starts with prefix ("" for all), in
 * no particular order; an error from fn stops the listing and is returned.
 * key and info are borrowed during each call. */
typedef tw_err (*tw_blob_list_fn)(void *ctx, const char *key, const tw_blob_info *info);
tw_err tw_blob_list(tw_blob_store *b, const char *prefix, tw_blob_list_fn fn, void *ctx);

#endif
