/*
 * The HTTP server of http_server.h on libmicrohttpd 0.9.75: a thread per
 * connection (MHD_USE_THREAD_PER_CONNECTION), so a handler that waits on
 * the disk holds up only its own client.
 *
 * libmicrohttpd calls the access handler several times per request: once
 * when the headers are in (*req_cls NULL: we find the route, check the
 * declared length and make the request's state), once per piece of body
 * (we copy it, within the route's limit), and once more with no data,
 * when the handler runs and the response is queued. The request's state is
 * freed by the completion callback, which also logs the request.
 */
#include "http_server.h"

#include "tw_id.h"
#include "tw_log.h"
#include "tw_net.h"
#include "tw_time.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { CLASS_OK, CLASS_CLIENT, CLASS_SERVER, CLASSES };

struct tw_httpd_server {
    struct MHD_Daemon *daemon;
    const tw_httpd_route *routes;
    size_t nroutes;
    void *ctx;
    unsigned timeout_s;
    /* Requests answered, per route (and one slot for no route), per class. */
    _Atomic uint64_t (*counts)[CLASSES];
};

/* One request's state, from its headers to its completion. */
struct request {
    const tw_httpd_route *route; /* NULL: no route matched */
    size_t route_index;
    char request_id[TW_REQUEST_ID_MAX + 1];
    int64_t start_ns;
    uint8_t *body;
    size_t body_len;
    size_t body_cap;
    bool too_large;
    bool too_slow;
    unsigned status; /* of the response queued */
    char path[256];
    char method[16];
};

bool tw_httpd_reply(tw_httpd_response *res, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
    if (n < 0) {
        res->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        return false;
    }
    res->status = status;
    res->body = text;
    res->body_len = (size_t)n;
    return true;
}

const char *tw_httpd_header(const tw_httpd_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, name);
}

static size_t route_count(const tw_httpd_route *routes)
{
    size_t n = 0;
    while (routes[n].method != NULL)
        n++;
    return n;
}

/* The route for method and path; NULL when none. *path_known says whether
 * some route has the path (405 rather than 404). */
static const tw_httpd_route *find_route(const tw_httpd_server *s, const char *method,
                                        const char *path, size_t *index, bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < s->nroutes; i++) {
        if (strcmp(s->routes[i].path, path) != 0)
            continue;
        *path_known = true;
        if (strcmp(s->routes[i].method, method) == 0) {
            *index = i;
            return &s->routes[i];
        }
    }
    *index = s->nroutes;
    return NULL;
}

/* The methods path answers to, for a 405's Allow header. */
static void allowed_methods(const tw_httpd_server *s, const char *path, char *out, size_t len)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->nroutes && n < len; i++)
        if (strcmp(s->routes[i].path, path) == 0)
            n += (size_t)snprintf(out + n, len - n, "%s%s", n ? ", " : "", s->routes[i].method);
}

static void assign_request_id(struct MHD_Connection *conn, struct request *r)
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-request-id");
    if (given != NULL && tw_request_id_valid(given, strlen(given))) {
        snprintf(r->request_id, sizeof r->request_id, "%s", given);
        return;
    }
    tw_id id = tw_id_new();
    char text[TW_ID_TEXT_SIZE];
    tw_id_format(&id, text);
    snprintf(r->request_id, sizeof r->request_id, "%s", text);
}

/* Queues a response with body (taken) and the headers every response has. */
static enum MHD_Result respond(struct MHD_Connection *conn, struct request *r, unsigned status,
                               const char *content_type, char *body, size_t len, const char *allow)
{
    struct MHD_Response *resp =
        body != NULL ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
                     : MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "x-request-id", r->request_id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    r->status = status;
    enum MHD_Result ok = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* A JSON error answer: {"error": "<text>"}. */
static enum MHD_Result respond_error(struct MHD_Connection *conn, struct request *r,
                                     unsigned status, const char *text, const char *allow)
{
    char *body = NULL;
    int n = asprintf(&body, "{\"error\":\"%s\"}\n", text);
    return respond(conn, r, status, "application/json", n < 0 ? NULL : body, n < 0 ? 0 : (size_t)n,
                   allow);
}

/* The answer to a body over the route's limit: 413 unless the route says
 * otherwise. */
static enum MHD_Result respond_too_large(struct MHD_Connection *conn, struct request *r)
{
    const tw_httpd_route *route = r->route;
    return respond_error(
        conn, r, route->too_large_status ? route->too_large_status : MHD_HTTP_CONTENT_TOO_LARGE,
        route->too_large_error ? route->too_large_error : "request body too large", NULL);
}

/* Takes a piece of the body, within the route's limit. */
static void take_body(struct request *r, const char *data, size_t len)
{
    if (r->too_large || len == 0)
        return;
    if (r->body_len + len > r->route->max_body_bytes) {
        r->too_large = true;
        return;
    }
    if (r->body_len + len + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap * 2 : 4096;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        uint8_t *grown = realloc(r->body, cap);
        if (grown == NULL) {
            r->too_large = true;
            return;
        }
        r->body = grown;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
}

/* Runs the route's handler and queues what it answers. */
static enum MHD_Result run_handler(tw_httpd_server *s, struct MHD_Connection *conn,
                                   struct request *r)
{
    tw_httpd_request req = {
        .method = r->method,
        .path = r->path,
        .request_id = r->request_id,
        .body = r->body ? r->body : (const uint8_t *)"",
        .body_len = r->body_len,
        .connection = conn,
    };
    tw_httpd_response res = {.status = MHD_HTTP_OK, .content_type = "application/json"};
    r->route->handle(s->ctx, &req, &res);
    return respond(conn, r, res.status, res.content_type, res.body, res.body_len, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    (void)version;
    tw_httpd_server *s = cls;
    struct request *r = *req_cls;
    if (r == NULL) { /* the headers are in */
        if ((r = calloc(1, sizeof *r)) == NULL)
            return MHD_NO;
        *req_cls = r;
        r->start_ns = tw_mono_ns();
        snprintf(r->path, sizeof r->path, "%s", url);
        snprintf(r->method, sizeof r->method, "%s", method);
        assign_request_id(conn, r);
        bool path_known;
        r->route = find_route(s, method, url, &r->route_index, &path_known);
        if (r->route == NULL) {
            char allow[128];
            allowed_methods(s, url, allow, sizeof allow);
            return path_known ? respond_error(conn, r, MHD_HTTP_METHOD_NOT_ALLOWED,
                                              "method not allowed", allow)
                              : respond_error(conn, r, MHD_HTTP_NOT_FOUND, "not found", NULL);
        }
        const char *length =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length != NULL && strtoull(length, NULL, 10) > r->route->max_body_bytes)
            return respond_too_large(conn, r);
        return MHD_YES;
    }
    if (r->status != 0) { /* answered already: drop whatever else comes */
        *upload_size = 0;
        return MHD_YES;
    }
    if (tw_mono_ns() - r->start_ns > (int64_t)s->timeout_s * 1000000000LL)
        r->too_slow = true;
    if (*upload_size > 0) {
        take_body(r, upload, *upload_size);
        *upload_size = 0;
        if (r->too_large)
            return respond_too_large(conn, r);
        if (r->too_slow)
            return respond_error(conn, r, MHD_HTTP_REQUEST_TIMEOUT, "request took too long", NULL);
        return MHD_YES;
    }
    if (r->too_slow)
        return respond_error(conn, r, MHD_HTTP_REQUEST_TIMEOUT, "request took too long", NULL);
    return run_handler(s, conn, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode why)
{
    (void)conn;
    tw_httpd_server *s = cls;
    struct request *r = *req_cls;
    if (r == NULL)
        return;
    *req_cls = NULL;
    if (r->status != 0) {
        int cls_of = r->status >= 500 ? CLASS_SERVER : r->status >= 400 ? CLASS_CLIENT : CLASS_OK;
        atomic_fetch_add_explicit(&s->counts[r->route_index][cls_of], 1, memory_order_relaxed);
    }
    bool quiet = r->route != NULL && r->route->quiet && r->status < 400;
    tw_log_line line;
    if (tw_log_line_begin(&line, quiet ? TW_LOG_DEBUG : TW_LOG_INFO, "http")) {
        tw_log_line_str(&line, "method", r->method);
        tw_log_line_str(&line, "path", r->path);
        tw_log_line_int(&line, "status", r->status);
        if (why != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            tw_log_line_str(&line, "ended", "connection closed before the response was sent");
        tw_log_line_ms(&line, "duration_ms", (double)(tw_mono_ns() - r->start_ns) / 1e6);
        tw_log_line_str(&line, "request_id", r->request_id);
        tw_log_line_end(&line);
    }
    free(r->body);
    free(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    text[strcspn(text, "\n")] = '\0';
    tw_log(TW_LOG_WARN, "http server", json_pack("{s:s}", "detail", text));
}

/* The first address listen ("host:port", "[v6]:port") resolves to. */
static bool resolve(const char *listen, struct sockaddr_storage *out, char *errbuf, size_t errlen)
{
    char host[256];
    const char *port;
    if (!tw_net_split_listen(listen, host, sizeof host, &port)) {
        snprintf(errbuf, errlen, "cannot listen on %s: expected host:port", listen);
        return false;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s: %s", listen, gai_strerror(rc));
        return false;
    }
    memset(out, 0, sizeof *out);
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return true;
}

tw_err tw_httpd_start(const tw_httpd_config *cfg, const tw_httpd_route *routes, void *ctx,
                      tw_httpd_server **out, int *bound_port, char *errbuf, size_t errlen)
{
    *out = NULL;
    struct sockaddr_storage addr;
    if (!resolve(cfg->listen, &addr, errbuf, errlen))
        return TW_ERR_VALIDATION;
    bool tls = cfg->tls_cert_pem != NULL;
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(errbuf, errlen, "cannot serve HTTPS on %s: libmicrohttpd was built without TLS",
                 cfg->listen);
        return TW_ERR_INTERNAL;
    }
    tw_httpd_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return TW_ERR_NO_MEMORY;
    s->routes = routes;
    s->nroutes = route_count(routes);
    s->ctx = ctx;
    s->timeout_s = cfg->timeout_s;
    s->counts = calloc(s->nroutes + 1, sizeof *s->counts);
    if (s->counts == NULL) {
        free(s);
        return TW_ERR_NO_MEMORY;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (tls)
        flags |= MHD_USE_TLS;
    /* The port comes from the address; MHD wants it as well. */
    uint16_t port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                     : ((struct sockaddr_in *)&addr)->sin_port);
    /* Without TLS the option list ends before the certificate options. */
    /* The logger first, so that libmicrohttpd's own complaints about the
     * options after it reach our log too. */
    s->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
        cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)TW_HTTPD_HEADER_BYTES,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cfg->tls_cert_pem,
        MHD_OPTION_HTTPS_MEM_KEY, cfg->tls_key_pem, MHD_OPTION_END);
    if (s->daemon == NULL) {
        snprintf(errbuf, errlen, "cannot listen on %s for HTTP (taken, or not an address here)",
                 cfg->listen);
        free(s->counts);
        free(s);
        return TW_ERR_INTERNAL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = info ? info->port : port;
    *out = s;
    return TW_OK;
}

void tw_httpd_counts(const tw_httpd_server *s, size_t i, uint64_t counts[3])
{
    for (int c = 0; c < CLASSES; c++)
        counts[c] =
            i <= s->nroutes ? atomic_load_explicit(&s->counts[i][c], memory_order_relaxed) : 0;
}

void tw_httpd_stop(tw_httpd_server *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->daemon);
    free(s->counts);
    free(s);
}
