/*
 * The HTTP base every vendor client shares, on libcurl: one place for
 * timeouts (connect, and whole attempt), retries of safe calls with
 * exponential backoff and full jitter that honour Retry-After, request
 * bodies streamed from a callback, response bodies read with a size cap or
 * streamed to a callback, and failures mapped to TW_ERR_UPSTREAM
 * (UPSTREAM_001) with the HTTP status and a short reason for the log.
 *
 * Thread-safe: curl is initialised once, and each thread keeps its own easy
 * handle (and so its own connection cache) for its requests. Calls block
 * the calling thread for as long as their attempts and waits take, so they
 * belong on a worker pool or in a job, never on an RPC thread.
 */
#ifndef TW_HTTP_H
#define TW_HTTP_H

#include "tw_err.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why an upstream call failed, for the caller's decisions and its log.
 * Never holds a credential. */
typedef struct tw_upstream_error {
    long status;         /* HTTP status of the last answer; 0 when none came */
    bool retryable;      /* transient (timeout, connection, 429, 5xx): a later call may work */
    int attempts;        /* requests sent */
    long retry_after_ms; /* the last answer's Retry-After; -1 without one */
    char code[64];       /* the vendor's error code when its answer had one ("NoSuchKey") */
    char reason[320];    /* short text for the log: what failed and why */
} tw_upstream_error;

/* How hard to try. Zero fields take the defaults in brackets. */
typedef struct tw_http_policy {
    long connect_timeout_ms; /* per attempt [5000] */
    long timeout_ms;         /* per attempt, body included [30000] */
    int max_attempts;        /* safe calls only; others get one [3] */
    long backoff_base_ms;    /* the first retry waits up to this [200] */
    long backoff_max_ms;     /* no wait is longer [10000] */
    long retry_after_max_ms; /* a longer Retry-After ends the retries [60000] */
    long deadline_ms;        /* all attempts and waits together; 0 for none */
} tw_http_policy;

/* Fills buf with up to cap bytes of the request body; *n = 0 at its end. */
typedef tw_err (*tw_http_read_fn)(void *ctx, void *buf, size_t cap, size_t *n);
/* Starts the body again from its first byte, for another attempt. */
typedef tw_err (*tw_http_rewind_fn)(void *ctx);
/* Takes len bytes (borrowed) of a 2xx answer's body; an error stops the
 * transfer and is returned by tw_http_perform. */
typedef tw_err (*tw_http_sink_fn)(void *ctx, const void *data, size_t len);

typedef struct tw_http_request {
    const char *service; /* "s3", "deepgram": names it in logs and reasons */
    const char *method;  /* GET, HEAD, PUT, POST, DELETE */
    const char *url;
    const char *const *headers; /* "Name: value" lines, n_headers of them */
    size_t n_headers;
    /* The body: bytes in memory, or a reader (read_size -1 when unknown:
     * sent chunked). Without rewind a streamed body is sent once. */
    const void *body;
    size_t body_len;
    tw_http_read_fn read;
    tw_http_rewind_fn rewind;
    void *read_ctx;
    int64_t read_size;
    /* Idempotent, so retried after timeouts, lost connections, 408, 429
     * and 5xx. Any request is retried when it could not connect at all. */
    bool retry_safe;
    /* A header by which the vendor says whether an error answer is worth
     * retrying ("Stripe-Should-Retry"): "true" makes it transient, "false"
     * final, whatever its status; absent, the status decides. NULL: none. */
    const char *retry_hint_header;
    /* Largest body kept in tw_http_response [1 MiB]; a larger answer fails. */
    size_t max_response_bytes;
    /* Stream a 2xx body here instead of keeping it. Once bytes went to the
     * sink, a failure is not retried. */
    tw_http_sink_fn sink;
    void *sink_ctx;
    /* Set from another thread to give up: TW_ERR_CANCELLED. May be NULL. */
    const atomic_bool *cancel;
} tw_http_request;

typedef struct tw_http_response {
    long status;
    char *body; /* malloc'd, NUL-terminated, also for error answers; NULL when none */
    size_t body_len;
    char *headers; /* the final answer's header lines, malloc'd */
} tw_http_response;

/*
 * Sends req until an answer counts or the policy gives up. TW_OK for a 2xx
 * answer. TW_ERR_UPSTREAM for anything else, with resp holding the last
 * answer (status, body, headers) for the caller to map (a 404 may mean
 * NOT_FOUND to it) and uerr (may be NULL) saying why. An error returned by
 * read, rewind or sink comes back as is; TW_ERR_CANCELLED when cancelled.
 * Borrows req; resp must be freed with tw_http_response_free whatever the
 * outcome. Failed attempts are logged at warn, without query strings or
 * headers.
 */
tw_err tw_http_perform(const tw_http_request *req, const tw_http_policy *policy,
                       tw_http_response *resp, tw_upstream_error *uerr);

/* Copies the value of header name (any case) of resp into out; false when
 * absent (out is then ""). */
bool tw_http_response_header(const tw_http_response *resp, const char *name, char *out, size_t cap);

void tw_http_response_free(tw_http_response *resp);

/* The policy with its zero fields given their defaults. */
tw_http_policy tw_http_policy_resolve(const tw_http_policy *p);

/* The wait before attempt number attempt + 1 (attempt >= 1): a uniformly
 * random share (random01 in [0, 1)) of min(max, base * 2^(attempt-1)). */
long tw_http_backoff_ms(const tw_http_policy *p, int attempt, double random01);

/* A Retry-After value (delay-seconds or an HTTP date) in ms from now_s;
 * -1 when it is neither. */
long tw_http_parse_retry_after(const char *value, int64_t now_s);

/* Formats into uerr->reason (truncating), for vendor clients adding detail. */
void tw_upstream_error_setf(tw_upstream_error *uerr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
