/*
 * The S3 API calls twd needs, path-style (endpoint/bucket/key) so that any
 * S3-compatible service works: AWS S3, Cloudflare R2, MinIO. Every request
 * is signed with SigV4 (sigv4.h, payload hash signed) and sent through
 * tw_http (http.h): timeouts on every request, idempotent calls retried
 * with backoff and jitter. XML answers are read with libxml2 (no network,
 * no entity expansion).
 *
 * Results: TW_OK; TW_ERR_NOT_FOUND for a 404 (NoSuchKey, NoSuchUpload,
 * NoSuchBucket); TW_ERR_UPSTREAM for any other failure, with uerr (may be
 * NULL) holding the status, S3's error Code and a reason for the log.
 * A tw_s3 does not change after tw_s3_new: threads may share it.
 */
#ifndef TW_S3_H
#define TW_S3_H

#include "http.h"
#include "tw_err.h"

#include <stddef.h>
#include <stdint.h>

#define TW_S3_ETAG_MAX      128
#define TW_S3_UPLOAD_ID_MAX 1024
#define TW_S3_MAX_PARTS     10000

typedef struct tw_s3 tw_s3;

typedef struct tw_s3_config {
    const char
        *endpoint;      /* "https://<account>.r2.cloudflarestorage.com", "http://127.0.0.1:9000" */
    const char *region; /* "us-east-1"; "auto" for R2 */
    const char *bucket;
    const char *access_key_id;
    const char *secret_access_key; /* never logged */
    const char *session_token;     /* NULL without one */
    tw_http_policy policy;         /* timeouts and retries of every request */
} tw_s3_config;

typedef struct tw_s3_object_info {
    uint64_t size;
    int64_t mtime_ms;
    char etag[TW_S3_ETAG_MAX]; /* with its quotes, as S3 gives it */
} tw_s3_object_info;

typedef struct tw_s3_part {
    int number; /* 1..10000 */
    char etag[TW_S3_ETAG_MAX];
} tw_s3_part;

/* A client for cfg (copied). TW_ERR_VALIDATION for a missing field or an
 * endpoint that is not http:// or https://. */
tw_err tw_s3_new(const tw_s3_config *cfg, tw_s3 **out);
void tw_s3_free(tw_s3 *s3);

/* Whether the bucket is there and the credentials reach it. */
tw_err tw_s3_head_bucket(tw_s3 *s3, tw_upstream_error *uerr);

/* PutObject of len bytes (borrowed); etag (may be NULL) gets the new ETag. */
tw_err tw_s3_put_object(tw_s3 *s3, const char *key, const void *data, size_t len,
                        char etag[TW_S3_ETAG_MAX], tw_upstream_error *uerr);

/* GetObject from offset, length bytes (0: to the end), streamed to sink.
 * if_match (may be NULL) makes S3 refuse with 412 when the object has
 * another ETag by now. */
tw_err tw_s3_get_object(tw_s3 *s3, const char *key, uint64_t offset, uint64_t length,
                        const char *if_match, tw_http_sink_fn sink, void *sink_ctx,
                        tw_upstream_error *uerr);

/* HeadObject: size, time and ETag. */
tw_err tw_s3_head_object(tw_s3 *s3, const char *key, tw_s3_object_info *info,
                         tw_upstream_error *uerr);

/* DeleteObject. S3 answers the same whether or not the key existed. */
tw_err tw_s3_delete_object(tw_s3 *s3, const char *key, tw_upstream_error *uerr);

/* CreateMultipartUpload: upload_id gets the new upload's id. Not retried
 * once sent (a retry could start a second upload). */
tw_err tw_s3_create_multipart(tw_s3 *s3, const char *key, char upload_id[TW_S3_UPLOAD_ID_MAX],
                              tw_upstream_error *uerr);

/* UploadPart number (1..10000) of len bytes; etag gets the part's ETag. */
tw_err tw_s3_upload_part(tw_s3 *s3, const char *key, const char *upload_id, int number,
                         const void *data, size_t len, char etag[TW_S3_ETAG_MAX],
                         tw_upstream_error *uerr);

/* CompleteMultipartUpload with parts in ascending order. An error S3
 * reports inside a 200 answer is a failure too. */
tw_err tw_s3_complete_multipart(tw_s3 *s3, const char *key, const char *upload_id,
                                const tw_s3_part *parts, size_t n_parts, tw_upstream_error *uerr);

/* AbortMultipartUpload: the parts are deleted. */
tw_err tw_s3_abort_multipart(tw_s3 *s3, const char *key, const char *upload_id,
                             tw_upstream_error *uerr);

/* ListMultipartUploads under prefix ("" for all), every page: fn gets each
 * incomplete upload (borrowed strings); an error from fn stops and is
 * returned. */
typedef tw_err (*tw_s3_upload_fn)(void *ctx, const char *key, const char *upload_id,
                                  int64_t initiated_ms);
tw_err tw_s3_list_multipart_uploads(tw_s3 *s3, const char *prefix, tw_s3_upload_fn fn, void *ctx,
                                    tw_upstream_error *uerr);

/* ListObjectsV2 under prefix, every page. */
typedef tw_err (*tw_s3_object_fn)(void *ctx, const char *key, const tw_s3_object_info *info);
tw_err tw_s3_list_objects(tw_s3 *s3, const char *prefix, tw_s3_object_fn fn, void *ctx,
                          tw_upstream_error *uerr);

#endif
