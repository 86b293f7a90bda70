/*
 * The RPC engine: a gRPC server on the core C API (Debian's libgrpc 1.51)
 * that serves the method tables of call.h. It owns every grpc_* call in twd.
 *
 * Life of the engine: tw_engine_new, tw_engine_add_service for each service,
 * tw_engine_start, then (on SIGTERM) tw_engine_shutdown and tw_engine_free.
 * The process must block SIGINT and SIGTERM before tw_engine_new so gRPC's
 * own threads inherit the mask.
 */
#ifndef TW_RPC_ENGINE_H
#define TW_RPC_ENGINE_H

#include "rpc_layer.h"

#include "call.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct tw_engine tw_engine;

typedef struct tw_engine_config {
    const char *listen;          /* "host:port"; port 0 picks a free one */
    const char *operator_socket; /* a Unix socket path also served, or NULL */
    int workers;                 /* completion-queue threads, at least 1 */
    size_t max_message_bytes;    /* larger requests get RESOURCE_EXHAUSTED */
    int requests_per_method;     /* most calls kept requested per method and worker */
    size_t max_stream_backlog;   /* bytes a server stream may queue unread */
    /* Streaming calls open at once: in the whole server (each may hold a
     * file or a decoder: keep it below the open-file limit), and per
     * signed-in account, for client streams (uploads) and for server
     * streams (watches, downloads). Past a cap a new stream is refused at
     * once with RESOURCE_EXHAUSTED (RATE_003 server-wide, RATE_002 per
     * account). 0 for max_streams: a quarter of the open-file limit, at
     * most 4096; 0 per user: no cap. */
    int max_streams;
    int max_client_streams_per_user;
    int max_server_streams_per_user;
    /* gRPC's HTTP/2 bandwidth-delay probing (GRPC_ARG_HTTP2_BDP_PROBE).
     * On, core 1.51 grows a connection's receive window to 16 MiB while
     * memory is plentiful, and a client uploading faster than twd writes
     * fills it: 16 uploads held ~300 MiB in core's read slices (heaptrack).
     * Off, a stream may send 64 KiB beyond the message twd is reading,
     * which on loopback was also 2-3x faster; a client 100 ms away then
     * sends about 64 KiB per round trip. */
    bool bdp_probe;
    /* Handlers of TW_WRITE rows run on a pool of this many threads with
     * room for write_queue calls waiting (more: UNAVAILABLE, RPC_006), not
     * on the completion-queue threads: a write waits for the disk, and a
     * long one (a Push of 500 mutations) must not hold up the calls that
     * arrive on the same queue behind it. Concurrent writes also reach the
     * store together, where they share one sync (group commit). 0 runs
     * them on the completion-queue threads. */
    int write_threads;
    size_t write_queue;
    /* The schema served and checked against; NULL for twd's own
     * (proto/descriptor_set.h). Borrowed: it must outlive the engine. */
    const unsigned char *descriptor_set;
    size_t descriptor_set_size;
    /* PEM certificate chain and private key: listen serves TLS. NULL for
     * plaintext. Borrowed until tw_engine_start returns. The operator
     * socket is always plaintext (a Unix socket only twd's account opens). */
    const char *tls_cert_pem;
    const char *tls_key_pem;
    /* The clock a call's "now" (tw_call_now_ms) is read from when it
     * arrives, in Unix ms: twd gives the store's (tw_store_now_ms), so
     * handlers, the store and the rest of twd share one clock that tests
     * can set. NULL for the wall clock. */
    int64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
} tw_engine_config;

/*
 * The gate admits a call before its handler runs: it reads metadata (the
 * token), sets the caller with tw_call_set_caller(), and applies roles, rate
 * limits and maintenance mode by the method's flags. It returns TW_OK or the
 * error the client gets. Without a gate, only TW_PUBLIC and TW_INFRA methods
 * are served; the rest get AUTH_002.
 */
typedef tw_err tw_gate_fn(void *ctx, tw_call *call, const tw_method *method);

/* A new engine; cfg is copied. Initialises gRPC. */
tw_err tw_engine_new(const tw_engine_config *cfg, tw_engine **out);

/* Adds a service (borrowed: it must outlive the engine). Fails, with a line
 * in errbuf, when the table disagrees with the .proto: a method missing from
 * either side, or a kind that does not match the proto's `stream` marks. */
tw_err tw_engine_add_service(tw_engine *engine, const tw_service *service, char *errbuf,
                             size_t errlen);

void tw_engine_set_gate(tw_engine *engine, tw_gate_fn *gate, void *ctx);

/* Whether listen ("host:port") can be bound now, tried as gRPC will bind it;
 * when not, errbuf says why in one line. `twd serve` asks first, so a taken
 * port stops it before it touches the database. */
bool tw_engine_address_available(const char *listen, char *errbuf, size_t errlen);

/* Binds and starts serving. On failure errbuf says why in one line (for
 * example the address is taken). *bound_port gets the port actually bound. */
tw_err tw_engine_start(tw_engine *engine, int *bound_port, char *errbuf, size_t errlen);

/*
 * Stops accepting calls, tells services to end their long-lived streams,
 * lets calls in flight finish for up to grace_ms, then cancels the rest and
 * waits for every call to be released. Call once, from one thread.
 */
void tw_engine_shutdown(tw_engine *engine, int grace_ms);

/* True once shutdown has begun. */
bool tw_engine_shutting_down(const tw_engine *engine);

/* True when a service of that full name is registered ("" is the server). */
bool tw_engine_has_service(const tw_engine *engine, const char *name);

/* Calls fn with the full name of each registered service, in order. */
void tw_engine_each_service(const tw_engine *engine, void (*fn)(void *ctx, const char *name),
                            void *ctx);

/* The schema the engine serves, for server reflection. */
const struct tw_schema *tw_engine_schema(const tw_engine *engine);

/* Calls fn for each registered method, for `twd methods` and tests. */
void tw_engine_each_method(const tw_engine *engine,
                           void (*fn)(void *ctx, const char *path, const tw_method *method),
                           void *ctx);

/* The engine's call metrics (metrics.h), summed when read; NULL before
 * tw_engine_start. Method numbers follow tw_engine_each_method. */
struct tw_rpc_metrics *tw_engine_metrics(const tw_engine *engine);

/* Frees the engine after tw_engine_shutdown (or one never started) and
 * shuts gRPC down. Accepts NULL. */
void tw_engine_free(tw_engine *engine);

/* The gRPC core version linked, e.g. "29.0.0" (gRPC 1.51). */
const char *tw_engine_grpc_version(void);

#endif
