/*
 * AWS Signature Version 4 (HMAC-SHA256), as AWS documents it and as its
 * published test suite checks it: the canonical request, the string to
 * sign, the signing key and the Authorization header, or for presigned
 * URLs the signed query string.
 *
 * Two flavours, chosen by tw_sigv4_params:
 *   - generic AWS services: the path is normalised (dot segments and
 *     repeated slashes removed) and URI-encoded again ("double encoding");
 *   - S3 (tw_sigv4_s3_params): the path is signed exactly as sent, already
 *     encoded by the caller (tw_sigv4_uri_encode), and the payload hash is
 *     sent and signed as x-amz-content-sha256.
 *
 * Pure functions of their inputs (the time is a parameter), so the test
 * vectors check them byte for byte. Thread-safe.
 */
#ifndef TW_SIGV4_H
#define TW_SIGV4_H

#include "tw_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TW_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define TW_SIGV4_UNSIGNED     "UNSIGNED-PAYLOAD"

typedef struct tw_sigv4_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL or "" without one */
} tw_sigv4_credentials;

typedef struct tw_sigv4_params {
    const char *region;      /* "us-east-1", "auto" (R2) */
    const char *service;     /* "s3" */
    int64_t time_s;          /* signing time, Unix seconds */
    bool normalize_path;     /* remove "." and ".." segments and repeated slashes */
    bool double_encode;      /* URI-encode the (already encoded) path once more */
    bool content_sha256;     /* header signing: send and sign x-amz-content-sha256 */
    bool omit_session_token; /* add the token after signing (some STS callers) */
    int64_t expires_s;       /* query signing only: X-Amz-Expires */
} tw_sigv4_params;

/* The S3 flavour at time_s for region. */
tw_sigv4_params tw_sigv4_s3_params(const char *region, int64_t time_s);

typedef struct tw_sigv4_header {
    const char *name; /* any case; repeated names are joined with ',' in order */
    const char *value;
} tw_sigv4_header;

typedef struct tw_sigv4_request {
    const char *method;
    const char *path;               /* as sent, "/bucket/key" */
    const char *query;              /* as sent without '?', NULL or "" for none */
    const tw_sigv4_header *headers; /* must include host */
    size_t n_headers;
    const char *payload_hash; /* hex SHA-256 of the body, or TW_SIGV4_UNSIGNED */
} tw_sigv4_request;

/* What signing produced; every string is malloc'd, freed by
 * tw_sigv4_result_free. */
typedef struct tw_sigv4_result {
    char *canonical_request;
    char *string_to_sign;
    char signature[65];
    /* Header signing: the Authorization value, and the headers to send
     * besides the request's own ("X-Amz-Date: ...\n" lines, also
     * x-amz-content-sha256 and x-amz-security-token when they apply). */
    char *authorization;
    char *extra_headers;
    /* Query signing: the whole query string to send, the request's own
     * parameters first, then the X-Amz-* ones ending with X-Amz-Signature. */
    char *signed_query;
} tw_sigv4_result;

/* Signs req for an Authorization header. Borrows everything; fills out,
 * which the caller frees with tw_sigv4_result_free (also after a failure).
 * TW_ERR_VALIDATION for a request it cannot sign (no host header, a bad
 * percent escape in the query). */
tw_err tw_sigv4_sign_header(const tw_sigv4_params *p, const tw_sigv4_credentials *c,
                            const tw_sigv4_request *req, tw_sigv4_result *out);

/* Signs req as a presigned URL (query signing), valid p->expires_s. */
tw_err tw_sigv4_sign_query(const tw_sigv4_params *p, const tw_sigv4_credentials *c,
                           const tw_sigv4_request *req, tw_sigv4_result *out);

void tw_sigv4_result_free(tw_sigv4_result *r);

/* URI-encodes n bytes of s the SigV4 way (unreserved A-Z a-z 0-9 - . _ ~
 * kept, everything else %XX in upper case), keeping '/' when keep_slash.
 * Returns a malloc'd string, NULL when out of memory. */
char *tw_sigv4_uri_encode(const char *s, size_t n, bool keep_slash);

/* Hex SHA-256 of n bytes into out[65]. */
void tw_sigv4_sha256_hex(const void *data, size_t n, char out[65]);

#endif
