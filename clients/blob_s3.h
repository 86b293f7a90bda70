/*
 * The S3 backend of tw_blob.h: blob key "a/b" is object "a/b" of the
 * configured bucket (path-style, any S3-compatible service).
 *
 * A writer holds at most one part (5 MiB) in memory: when it fills, the
 * first one starts a multipart upload and each is uploaded at once; commit
 * uploads the rest as the last part and completes the upload, so the object
 * appears whole. A blob smaller than a part is one PutObject at commit.
 * Abort, and any failure on the way, aborts the multipart upload so no
 * parts are left; what a crash leaves is aborted by the sweep that
 * tw_blob_s3_open runs (incomplete uploads older than a day). Readers fetch
 * windows of 1 MiB with ranged GETs pinned to the object's ETag. Every
 * request has the configured timeouts and retries (s3.h).
 */
#ifndef TW_BLOB_S3_H
#define TW_BLOB_S3_H

#include "s3.h"
#include "tw_blob.h"

#include <stdint.h>

#define TW_BLOB_S3_PART_MIN     (5u << 20)
#define TW_BLOB_S3_SWEEP_AGE_MS (24 * 3600 * 1000LL)

typedef struct tw_blob_s3_options {
    tw_s3_config s3;
    size_t part_size;            /* bytes per part; 0 or less than 5 MiB: 5 MiB */
    int64_t sweep_older_than_ms; /* 0: a day; negative: no sweep at open */
} tw_blob_s3_options;

/* Opens the S3 backend: checks that the bucket answers (HEAD), then sweeps
 * incomplete uploads (a sweep that fails is logged, not fatal). Copies
 * opts. Failures: TW_ERR_VALIDATION for bad options, TW_ERR_NOT_FOUND when
 * the bucket does not exist, TW_ERR_UPSTREAM when S3 cannot be reached;
 * the detail is in tw_store_last_error(). */
tw_err tw_blob_s3_open(const tw_blob_s3_options *opts, tw_blob_store **out);

/* Aborts every incomplete multipart upload of the bucket started more than
 * older_than_ms ago; *aborted (may be NULL) gets how many. TW_ERR_VALIDATION
 * when b is not an S3 store. */
tw_err tw_blob_s3_sweep(tw_blob_store *b, int64_t older_than_ms, int *aborted);

#endif
