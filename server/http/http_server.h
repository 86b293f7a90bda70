/*
 * twd's HTTP side, on libmicrohttpd: the operator endpoints (/health,
 * /health/db, /health/detailed, /metrics) and, later, vendors calling us
 * back (Stripe's webhooks). It listens on an address of its own
 * (http_listen), with the same TLS certificate and key as gRPC.
 *
 * What is served is a route table, one row per endpoint: method, path,
 * handler and the largest body the route accepts. routes.c holds twd's
 * table; Stripe's webhook will be one more row there, for example
 *
 *     {"POST", "/webhooks/stripe", tw_stripe_webhook, 256 * 1024},
 *
 * with a handler that reads the raw body (req->body, req->body_len) and the
 * signature header (tw_httpd_header(req, "stripe-signature")), stores the
 * event and enqueues its processing, then answers 200.
 *
 * The server applies, before any handler runs:
 *  - at most max_connections connections at once (more wait in the
 *    kernel's backlog), each on a thread of its own, so a slow handler
 *    never holds up a probe;
 *  - at most TW_HTTPD_HEADER_BYTES of request line and headers (libmicrohttpd
 *    answers 431 past it);
 *  - the route's body limit: a larger Content-Length, or more bytes than
 *    it, gets 413 (or the route's too_large_status) without reading the
 *    rest;
 *  - timeout_s for the whole request from its first byte (408 after), and
 *    as the idle timeout of a connection;
 *  - 404 for an unknown path, 405 (with Allow) for a known path with
 *    another method.
 * Every response carries x-request-id: the client's own when it sent a
 * sane one (as the gRPC engine takes it), else a fresh UUIDv7; and every
 * request gets a JSON log line ("http") with method, path, status,
 * duration and request id (at debug for successful probes and scrapes:
 * routes marked quiet).
 */
#ifndef TW_HTTPD_SERVER_H
#define TW_HTTPD_SERVER_H

#include "tw_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Request line and headers of one request, at most. */
#define TW_HTTPD_HEADER_BYTES (32 * 1024)

typedef struct tw_httpd_server tw_httpd_server;

/* A request as a handler sees it; everything is borrowed for the call. */
typedef struct tw_httpd_request {
    const char *method;     /* "GET", "POST", ... */
    const char *path;       /* without the query */
    const char *request_id; /* as sent back in x-request-id */
    const uint8_t *body;    /* the whole body, NUL-terminated; "" when none */
    size_t body_len;
    struct MHD_Connection *connection; /* for tw_httpd_header */
} tw_httpd_request;

/* What a handler answers. status starts at 200, content_type at JSON; the
 * handler sets body to malloc'd bytes (the server frees them) or leaves
 * it NULL for an empty body. */
typedef struct tw_httpd_response {
    unsigned status;
    const char *content_type; /* a static string */
    char *body;
    size_t body_len;
} tw_httpd_response;

/* Runs on the connection's own thread; may block briefly (a store read),
 * never on an outside service without a timeout. ctx is tw_httpd_start's. */
typedef void tw_httpd_handler(void *ctx, const tw_httpd_request *req, tw_httpd_response *res);

typedef struct tw_httpd_route {
    const char *method; /* NULL ends the table */
    const char *path;   /* matched exactly */
    tw_httpd_handler *handle;
    size_t max_body_bytes; /* larger bodies get 413 */
    bool quiet;            /* log successes at debug (probes, scrapes) */
    /* A route whose callers must see a body over the limit answered like
     * its other bad requests gives that status and error text here (the
     * Stripe webhook: 400 and the reason SIZE_001); 0 and NULL: 413,
     * "request body too large". */
    unsigned too_large_status;
    const char *too_large_error;
} tw_httpd_route;

typedef struct tw_httpd_config {
    const char *listen; /* "host:port"; port 0 picks a free one */
    /* PEM certificate chain and key: serve HTTPS. NULL for plain HTTP.
     * Borrowed until tw_httpd_start returns. */
    const char *tls_cert_pem;
    const char *tls_key_pem;
    unsigned max_connections;
    unsigned timeout_s;
} tw_httpd_config;

/* A response's body: the text of fmt, malloc'd into res (replacing any).
 * Returns false (and leaves a 500) when out of memory. */
bool tw_httpd_reply(tw_httpd_response *res, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The value of request header name (any case); NULL when absent. */
const char *tw_httpd_header(const tw_httpd_request *req, const char *name);

/* Starts serving routes (borrowed: they must outlive the server) with ctx
 * for their handlers. *bound_port gets the port bound. On failure errbuf
 * says why in one line. */
tw_err tw_httpd_start(const tw_httpd_config *cfg, const tw_httpd_route *routes, void *ctx,
                      tw_httpd_server **out, int *bound_port, char *errbuf, size_t errlen);

/* Requests answered so far on route number i of the table (the table's
 * length means "no route matched") by status class: [0] 2xx and 3xx,
 * [1] 4xx, [2] 5xx. */
void tw_httpd_counts(const tw_httpd_server *server, size_t i, uint64_t counts[3]);

/* Stops accepting, waits for requests in progress and frees the server.
 * Accepts NULL. */
void tw_httpd_stop(tw_httpd_server *server);

#endif
