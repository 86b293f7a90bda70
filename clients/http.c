/*
 * The curl-based HTTP base of http.h: one easy handle per thread (reset
 * for each request, so its connection cache is reused), an attempt loop
 * that classifies each failure as transient or final, and waits of
 * exponential backoff with full jitter between attempts.
 */
#include "http.h"

#include "upstream_stats.h"

#include "buf.h"
#include "tw_log.h"
#include "tw_time.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_TIMEOUT_MS         30000
#define DEFAULT_MAX_ATTEMPTS       3
#define DEFAULT_BACKOFF_BASE_MS    200
#define DEFAULT_BACKOFF_MAX_MS     10000
#define DEFAULT_RETRY_AFTER_MAX_MS 60000
#define DEFAULT_MAX_RESPONSE       (1u << 20)
/* An error answer's body is kept up to this, for its error code. */
#define ERROR_BODY_MAX (64u << 10)
#define HEADERS_MAX    (64u << 10)
/* Waits between attempts are slept in slices this long, to see a cancel. */
#define SLEEP_SLICE_MS 50

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CURLcode init_rc = CURLE_FAILED_INIT;
static pthread_key_t handle_key;

static void handle_destroy(void *h)
{
    curl_easy_cleanup(h);
}

static void global_init(void)
{
    init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (init_rc == CURLE_OK && pthread_key_create(&handle_key, handle_destroy) != 0)
        init_rc = CURLE_FAILED_INIT;
}

/* This thread's easy handle, reset; NULL when curl cannot start. */
static CURL *thread_handle(void)
{
    pthread_once(&init_once, global_init);
    if (init_rc != CURLE_OK)
        return NULL;
    CURL *h = pthread_getspecific(handle_key);
    if (h != NULL) {
        curl_easy_reset(h);
        return h;
    }
    h = curl_easy_init();
    if (h != NULL && pthread_setspecific(handle_key, h) != 0) {
        curl_easy_cleanup(h);
        h = NULL;
    }
    return h;
}

tw_http_policy tw_http_policy_resolve(const tw_http_policy *p)
{
    tw_http_policy r = p ? *p : (tw_http_policy){0};
    if (r.connect_timeout_ms <= 0)
        r.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (r.timeout_ms <= 0)
        r.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (r.max_attempts <= 0)
        r.max_attempts = DEFAULT_MAX_ATTEMPTS;
    if (r.backoff_base_ms <= 0)
        r.backoff_base_ms = DEFAULT_BACKOFF_BASE_MS;
    if (r.backoff_max_ms <= 0)
        r.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
    if (r.retry_after_max_ms <= 0)
        r.retry_after_max_ms = DEFAULT_RETRY_AFTER_MAX_MS;
    if (r.deadline_ms < 0)
        r.deadline_ms = 0;
    return r;
}

long tw_http_backoff_ms(const tw_http_policy *p, int attempt, double random01)
{
    long ceiling = (long)tw_backoff_ceiling_ms(p->backoff_base_ms, p->backoff_max_ms,
                                               attempt > 0 ? (unsigned)attempt : 1);
    if (random01 < 0)
        random01 = 0;
    if (random01 >= 1)
        random01 = 0.999999;
    return (long)(random01 * (double)(ceiling + 1));
}

long tw_http_parse_retry_after(const char *value, int64_t now_s)
{
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value >= '0' && *value <= '9') {
        char *end;
        errno = 0;
        long long s = strtoll(value, &end, 10);
        while (*end == ' ' || *end == '\t')
            end++;
        if (errno != 0 || *end != '\0' || s > 86400 * 365)
            return -1;
        return (long)(s * 1000);
    }
    time_t when = curl_getdate(value, NULL);
    if (when < 0)
        return -1;
    return when <= now_s ? 0 : (long)((when - now_s) * 1000);
}

void tw_upstream_error_setf(tw_upstream_error *uerr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(uerr->reason, sizeof uerr->reason, fmt, ap);
    va_end(ap);
}

bool tw_http_response_header(const tw_http_response *resp, const char *name, char *out, size_t cap)
{
    if (cap > 0)
        out[0] = '\0';
    size_t name_len = strlen(name);
    for (const char *line = resp->headers; line != NULL && *line != '\0';) {
        size_t len = strcspn(line, "\r\n");
        if (len > name_len && line[name_len] == ':' && strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len + 1;
            const char *end = line + len;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            snprintf(out, cap, "%.*s", (int)(end - v), v);
            return true;
        }
        line += len;
        line += strspn(line, "\r\n");
    }
    return false;
}

void tw_http_response_free(tw_http_response *resp)
{
    free(resp->body);
    free(resp->headers);
    memset(resp, 0, sizeof *resp);
}

/* ---- one transfer ----------------------------------------------------------- */

struct xfer {
    const tw_http_request *req;
    size_t max_body;
    size_t body_off;    /* in-memory body: next byte to send */
    uint64_t body_read; /* streamed body: bytes handed to curl */
    tw_err read_err;
    long status; /* of the latest status line */
    tw_buf body;
    tw_buf headers;
    uint64_t sunk; /* bytes given to the sink */
    tw_err sink_err;
    bool too_large;
};

static bool is_2xx(long status)
{
    return status >= 200 && status < 300;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
    struct xfer *x = ctx;
    size_t len = size * n;
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A status line starts the headers of another answer (after a 100
         * Continue, say): keep only the last answer's. */
        const char *sp = memchr(data, ' ', len);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        tw_buf_reset(&x->headers);
        tw_buf_reset(&x->body);
        return len;
    }
    if (!x->headers.failed)
        tw_buf_add(&x->headers, data, len); /* past the cap, headers are dropped */
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    struct xfer *x = ctx;
    size_t len = size * n;
    if (is_2xx(x->status) && x->req->sink != NULL) {
        tw_err err = x->req->sink(x->req->sink_ctx, data, len);
        if (err) {
            x->sink_err = err;
            return 0;
        }
        x->sunk += len;
        return len;
    }
    if (!is_2xx(x->status)) {
        /* Keep the start of an error answer; the rest does not matter. */
        size_t room = x->body.len < ERROR_BODY_MAX ? ERROR_BODY_MAX - x->body.len : 0;
        tw_buf_add(&x->body, data, len < room ? len : room);
        return len;
    }
    if (!tw_buf_add(&x->body, data, len)) {
        x->too_large = true;
        return 0;
    }
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ctx)
{
    struct xfer *x = ctx;
    const tw_http_request *req = x->req;
    size_t cap = size * n;
    if (req->read == NULL) {
        size_t left = req->body_len - x->body_off;
        size_t take = left < cap ? left : cap;
        if (take > 0)
            memcpy(buf, (const char *)req->body + x->body_off, take);
        x->body_off += take;
        return take;
    }
    size_t got = 0;
    tw_err err = req->read(req->read_ctx, buf, cap, &got);
    if (err) {
        x->read_err = err;
        return CURL_READFUNC_ABORT;
    }
    x->body_read += got;
    return got;
}

/* Makes the body start again; false when it cannot. */
static bool rewind_body(struct xfer *x)
{
    const tw_http_request *req = x->req;
    if (req->read == NULL) {
        x->body_off = 0;
        return true;
    }
    if (x->body_read == 0)
        return true;
    if (req->rewind == NULL)
        return false;
    tw_err err = req->rewind(req->read_ctx);
    if (err) {
        x->read_err = err;
        return false;
    }
    x->body_read = 0;
    return true;
}

static int on_seek(void *ctx, curl_off_t offset, int origin)
{
    struct xfer *x = ctx;
    if (offset != 0 || origin != SEEK_SET)
        return CURL_SEEKFUNC_CANTSEEK;
    if (rewind_body(x))
        return CURL_SEEKFUNC_OK;
    return x->read_err ? CURL_SEEKFUNC_FAIL : CURL_SEEKFUNC_CANTSEEK;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const struct xfer *x = ctx;
    return atomic_load(x->req->cancel) ? 1 : 0;
}

static bool has_body(const tw_http_request *req)
{
    return req->read != NULL || req->body != NULL || strcmp(req->method, "PUT") == 0 ||
           strcmp(req->method, "POST") == 0;
}

/* Sets up h for one attempt of req. */
static bool configure(CURL *h, struct xfer *x, struct curl_slist *headers, long connect_ms,
                      long timeout_ms, char *errbuf)
{
    const tw_http_request *req = x->req;
    bool ok = curl_easy_setopt(h, CURLOPT_URL, req->url) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "twd");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    if (req->cancel != NULL) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    }
    if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (has_body(req)) {
        curl_off_t size = req->read ? (curl_off_t)req->read_size : (curl_off_t)req->body_len;
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, size);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, x);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
        if (strcmp(req->method, "PUT") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    }
    return ok;
}

enum outcome {
    DONE,      /* a 2xx answer */
    TRANSIENT, /* may work on another attempt */
    FINAL,     /* will not work by trying again */
};

/* "host/path" of url, without scheme, credentials or query, for logs. */
static void url_for_log(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *at = strchr(p, '@');
    const char *slash = strchr(p, '/');
    if (at != NULL && (slash == NULL || at < slash))
        p = at + 1;
    snprintf(out, cap, "%.*s", (int)strcspn(p, "?#"), p);
}

/* Classifies a finished attempt and says why in uerr. *nothing_sent is
 * set when the request cannot have reached the server. */
static enum outcome classify(CURLcode rc, const struct xfer *x, long timeout_ms, const char *errbuf,
                             const char *what, tw_upstream_error *uerr, bool *nothing_sent)
{
    *nothing_sent = false;
    uerr->status = rc == CURLE_OK ? x->status : 0;
    if (rc == CURLE_OK) {
        if (is_2xx(x->status))
            return DONE;
        tw_upstream_error_setf(uerr, "%s: HTTP %ld", what, x->status);
        char hint[16];
        const tw_http_response answer = {.headers = (char *)tw_buf_str(&x->headers)};
        if (x->req->retry_hint_header != NULL &&
            tw_http_response_header(&answer, x->req->retry_hint_header, hint, sizeof hint)) {
            if (strcmp(hint, "true") == 0)
                return TRANSIENT;
            if (strcmp(hint, "false") == 0)
                return FINAL;
        }
        switch (x->status) {
        case 408:
        case 429:
        case 500:
        case 502:
        case 503:
        case 504:
            return TRANSIENT;
        default:
            return FINAL;
        }
    }
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        *nothing_sent = true;
        tw_upstream_error_setf(uerr, "%s: could not connect: %s", what, detail);
        return TRANSIENT;
    case CURLE_OPERATION_TIMEDOUT:
        tw_upstream_error_setf(uerr, "%s: no answer within %ld ms", what, timeout_ms);
        return TRANSIENT;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        tw_upstream_error_setf(uerr, "%s: connection failed: %s", what, detail);
        return TRANSIENT;
    case CURLE_WRITE_ERROR:
        if (x->too_large) {
            tw_upstream_error_setf(uerr, "%s: answer larger than %zu bytes", what, x->max_body);
            return FINAL;
        }
        break;
    default:
        break;
    }
    tw_upstream_error_setf(uerr, "%s: %s", what, detail);
    return FINAL;
}

static void log_attempt(const tw_http_request *req, const char *where, int attempt,
                        const tw_upstream_error *uerr, long retry_in_ms)
{
    tw_log(TW_LOG_WARN, "upstream attempt failed",
           json_pack("{s:s, s:s, s:s, s:i, s:I, s:s, s:I}", "service",
                     req->service ? req->service : "http", "method", req->method, "url", where,
                     "attempt", attempt, "status", (json_int_t)uerr->status, "reason", uerr->reason,
                     "retry_in_ms", (json_int_t)retry_in_ms));
}

/* Sleeps ms, in slices, unless cancelled first; false when cancelled. */
static bool wait_ms(long ms, const atomic_bool *cancel)
{
    while (ms > 0) {
        if (cancel != NULL && atomic_load(cancel))
            return false;
        long slice = ms < SLEEP_SLICE_MS ? ms : SLEEP_SLICE_MS;
        struct timespec ts = {slice / 1000, (slice % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        ms -= slice;
    }
    return cancel == NULL || !atomic_load(cancel);
}

static double random01(void)
{
    return (double)arc4random() / 4294967296.0;
}

static tw_err keep_answer(struct xfer *x, tw_http_response *resp)
{
    tw_http_response_free(resp);
    if (x->body.over)
        tw_buf_reset(&x->body); /* an answer over the cap is not kept at all */
    resp->status = x->status;
    resp->body_len = x->body.len;
    resp->body = tw_buf_take(&x->body);
    resp->headers = tw_buf_take(&x->headers);
    return resp->body && resp->headers ? TW_OK : TW_ERR_NO_MEMORY;
}

tw_err tw_http_perform(const tw_http_request *req, const tw_http_policy *policy,
                       tw_http_response *resp, tw_upstream_error *uerr)
{
    tw_upstream_error scratch;
    if (uerr == NULL)
        uerr = &scratch;
    memset(uerr, 0, sizeof *uerr);
    uerr->retry_after_ms = -1;
    memset(resp, 0, sizeof *resp);
    tw_http_policy p = tw_http_policy_resolve(policy);
    char where[256], what[320];
    url_for_log(req->url, where, sizeof where);
    snprintf(what, sizeof what, "%s %s %s", req->service ? req->service : "http", req->method,
             where);

    CURL *h = thread_handle();
    if (h == NULL) {
        tw_upstream_error_setf(uerr, "%s: curl could not start", what);
        return TW_ERR_UPSTREAM;
    }
    struct curl_slist *headers = NULL;
    bool headers_ok = true;
    for (size_t i = 0; i < req->n_headers && headers_ok; i++) {
        struct curl_slist *next = curl_slist_append(headers, req->headers[i]);
        headers_ok = next != NULL;
        headers = next ? next : headers;
    }
    if (headers_ok && req->read != NULL && req->read_size < 0) {
        struct curl_slist *next = curl_slist_append(headers, "Transfer-Encoding: chunked");
        headers_ok = next != NULL;
        headers = next ? next : headers;
    }
    if (!headers_ok) {
        curl_slist_free_all(headers);
        return TW_ERR_NO_MEMORY;
    }

    struct xfer x = {.req = req};
    x.max_body = req->max_response_bytes ? req->max_response_bytes : DEFAULT_MAX_RESPONSE;
    tw_buf_init(&x.body, x.max_body);
    tw_buf_init(&x.headers, HEADERS_MAX);
    int64_t start_ns = tw_mono_ns();
    tw_err err = TW_ERR_UPSTREAM;
    for (int attempt = 1;; attempt++) {
        long timeout_ms = p.timeout_ms;
        long elapsed_ms = (long)((tw_mono_ns() - start_ns) / 1000000);
        if (p.deadline_ms > 0 && p.deadline_ms - elapsed_ms < timeout_ms)
            timeout_ms = p.deadline_ms - elapsed_ms > 1 ? p.deadline_ms - elapsed_ms : 1;
        char errbuf[CURL_ERROR_SIZE] = "";
        x.status = 0;
        x.too_large = false;
        tw_buf_reset(&x.body);
        tw_buf_reset(&x.headers);
        if (attempt > 1 && !rewind_body(&x)) {
            err = x.read_err ? x.read_err : TW_ERR_UPSTREAM;
            break;
        }
        curl_easy_reset(h);
        if (!configure(h, &x, headers, p.connect_timeout_ms, timeout_ms, errbuf)) {
            tw_upstream_error_setf(uerr, "%s: bad URL or protocol", what);
            err = TW_ERR_UPSTREAM;
            break;
        }
        CURLcode rc = curl_easy_perform(h);
        uerr->attempts = attempt;
        if (x.read_err) {
            err = x.read_err;
            break;
        }
        if (x.sink_err) {
            err = x.sink_err;
            break;
        }
        if (rc == CURLE_ABORTED_BY_CALLBACK && req->cancel != NULL && atomic_load(req->cancel)) {
            err = TW_ERR_CANCELLED;
            break;
        }
        bool nothing_sent;
        enum outcome o = classify(rc, &x, timeout_ms, errbuf, what, uerr, &nothing_sent);
        if (o == DONE) {
            err = keep_answer(&x, resp);
            break;
        }
        struct tw_http_response last = {.headers = (char *)tw_buf_str(&x.headers)};
        char value[64];
        uerr->retry_after_ms = -1;
        if (rc == CURLE_OK && tw_http_response_header(&last, "retry-after", value, sizeof value))
            uerr->retry_after_ms = tw_http_parse_retry_after(value, tw_wall_ms() / 1000);
        uerr->retryable = o == TRANSIENT;

        long wait = -1;
        bool body_again = req->read == NULL || req->rewind != NULL || x.body_read == 0;
        bool may_retry = o == TRANSIENT && attempt < p.max_attempts && x.sunk == 0 && body_again &&
                         (req->retry_safe || nothing_sent);
        if (may_retry) {
            wait = tw_http_backoff_ms(&p, attempt, random01());
            if (uerr->retry_after_ms > p.retry_after_max_ms) {
                may_retry = false;
                size_t n = strlen(uerr->reason);
                snprintf(uerr->reason + n, sizeof uerr->reason - n, " (Retry-After %ld s)",
                         uerr->retry_after_ms / 1000);
            } else if (uerr->retry_after_ms > wait) {
                wait = uerr->retry_after_ms;
            }
            elapsed_ms = (long)((tw_mono_ns() - start_ns) / 1000000);
            if (may_retry && p.deadline_ms > 0 && elapsed_ms + wait >= p.deadline_ms)
                may_retry = false;
        }
        log_attempt(req, where, attempt, uerr, may_retry ? wait : -1);
        if (!may_retry) {
            err = keep_answer(&x, resp);
            if (err == TW_OK)
                err = TW_ERR_UPSTREAM;
            break;
        }
        if (!wait_ms(wait, req->cancel)) {
            err = TW_ERR_CANCELLED;
            break;
        }
    }
    if (err == TW_OK) {
        uerr->status = resp->status;
        uerr->retryable = false;
    }
    bool no_answer = uerr->status == 0 || uerr->status == 429 || uerr->status >= 500;
    tw_upstream_record(req->service, err != TW_OK && err != TW_ERR_CANCELLED && no_answer,
                       (tw_mono_ns() - start_ns) / 1000000, uerr->reason);
    tw_buf_free(&x.body);
    tw_buf_free(&x.headers);
    curl_slist_free_all(headers);
    /* The handle keeps pointers into this call's state: drop them now. */
    curl_easy_reset(h);
    return err;
}
