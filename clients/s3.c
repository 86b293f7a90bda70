/*
 * The S3 calls of s3.h: each builds a path-style URL, signs it (sigv4.c),
 * sends it through tw_http_perform and reads the XML answer with libxml2,
 * which we use rather than a hand-written parser because S3's answers need
 * real XML handling (entities in keys, namespaces, errors inside 200
 * answers) and Debian ships it.
 */
#include "s3.h"

#include "buf.h"
#include "sigv4.h"

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Callers may pass a NULL tw_upstream_error: give them a scratch one. */
#define UERR_OR_SCRATCH(uerr)                                                                      \
    tw_upstream_error uerr##_scratch;                                                              \
    if ((uerr) == NULL)                                                                            \
    (uerr) = &uerr##_scratch

#define S3_URL_MAX     (16u << 10)
#define S3_LIST_MAX    (8u << 20) /* one page of a listing */
#define S3_BODY_MAX    (1u << 20) /* other XML answers */
#define S3_MAX_PAGES   100000
#define S3_HEADERS_MAX 8

struct tw_s3 {
    char *endpoint; /* scheme://host[:port], no trailing '/' */
    char *host;     /* the Host header: host[:port] */
    char *region;
    char *bucket;
    char *key_id;
    char *secret;
    char *token;
    tw_http_policy policy;
};

static char *dup_opt(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

void tw_s3_free(tw_s3 *s3)
{
    if (s3 == NULL)
        return;
    free(s3->endpoint);
    free(s3->host);
    free(s3->region);
    free(s3->bucket);
    free(s3->key_id);
    if (s3->secret != NULL)
        memset(s3->secret, 0, strlen(s3->secret));
    free(s3->secret);
    free(s3->token);
    free(s3);
}

tw_err tw_s3_new(const tw_s3_config *cfg, tw_s3 **out)
{
    *out = NULL;
    const char *e = cfg->endpoint ? cfg->endpoint : "";
    bool https = strncmp(e, "https://", 8) == 0;
    if ((!https && strncmp(e, "http://", 7) != 0) || cfg->region == NULL || !cfg->region[0] ||
        cfg->bucket == NULL || !cfg->bucket[0] || cfg->access_key_id == NULL ||
        !cfg->access_key_id[0] || cfg->secret_access_key == NULL || !cfg->secret_access_key[0])
        return TW_ERR_VALIDATION;
    const char *host = e + (https ? 8 : 7);
    size_t host_len = strcspn(host, "/?#");
    if (host_len == 0 || strchr(cfg->bucket, '/') != NULL)
        return TW_ERR_VALIDATION;
    tw_s3 *s3 = calloc(1, sizeof *s3);
    if (s3 == NULL)
        return TW_ERR_NO_MEMORY;
    s3->host = strndup(host, host_len);
    s3->endpoint = strndup(e, (size_t)(host - e) + host_len);
    s3->region = strdup(cfg->region);
    s3->bucket = strdup(cfg->bucket);
    s3->key_id = strdup(cfg->access_key_id);
    s3->secret = strdup(cfg->secret_access_key);
    s3->token = dup_opt(cfg->session_token);
    s3->policy = tw_http_policy_resolve(&cfg->policy);
    if (!s3->host || !s3->endpoint || !s3->region || !s3->bucket || !s3->key_id || !s3->secret ||
        (cfg->session_token && cfg->session_token[0] && !s3->token)) {
        tw_s3_free(s3);
        return TW_ERR_NO_MEMORY;
    }
    /* curl leaves the default port out of Host; sign what it sends. */
    size_t n = strlen(s3->host);
    const char *default_port = https ? ":443" : ":80";
    size_t dp = strlen(default_port);
    if (n > dp && strcmp(s3->host + n - dp, default_port) == 0)
        s3->host[n - dp] = '\0';
    *out = s3;
    return TW_OK;
}

/* ---- XML -------------------------------------------------------------------- */

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

static xmlDocPtr xml_parse(const char *text, size_t n)
{
    pthread_once(&xml_once, xml_init);
    if (text == NULL || n == 0 || n > INT32_MAX)
        return NULL;
    return xmlReadMemory(text, (int)n, "s3.xml", NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static bool named(xmlNodePtr node, const char *name)
{
    return node->type == XML_ELEMENT_NODE && xmlStrcmp(node->name, BAD_CAST name) == 0;
}

static xmlNodePtr xml_child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c != NULL; c = c->next)
        if (named(c, name))
            return c;
    return NULL;
}

static xmlNodePtr xml_next(xmlNodePtr node, const char *name)
{
    for (xmlNodePtr c = node->next; c != NULL; c = c->next)
        if (named(c, name))
            return c;
    return NULL;
}

/* The text of parent's child name into out; false when absent or too long. */
static bool xml_text(xmlNodePtr parent, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    xmlNodePtr c = xml_child(parent, name);
    if (c == NULL)
        return false;
    xmlChar *text = xmlNodeGetContent(c);
    if (text == NULL)
        return false;
    bool fits = strlen((const char *)text) < cap;
    if (fits)
        memcpy(out, text, strlen((const char *)text) + 1);
    xmlFree(text);
    return fits;
}

/* "2009-10-12T17:50:30.000Z" in ms; 0 when it is not such a time. */
static int64_t iso_ms(const char *s)
{
    struct tm tm = {0};
    int ms = 0;
    char frac[8] = "";
    if (sscanf(s, "%d-%d-%dT%d:%d:%d.%7[0-9]", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, frac) < 6)
        return 0;
    for (int i = 0; i < 3; i++)
        ms = ms * 10 + (frac[i] >= '0' && frac[i] <= '9' ? frac[i] - '0' : 0);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* S3's <Error><Code> and <Message> into uerr. */
static void note_error(const char *body, size_t n, tw_upstream_error *uerr)
{
    xmlDocPtr doc = xml_parse(body, n);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    char message[160];
    if (root != NULL && named(root, "Error")) {
        xml_text(root, "Code", uerr->code, sizeof uerr->code);
        if (xml_text(root, "Message", message, sizeof message) && message[0]) {
            size_t len = strlen(uerr->reason);
            snprintf(uerr->reason + len, sizeof uerr->reason - len, ": %s %s", uerr->code, message);
        }
    }
    xmlFreeDoc(doc);
}

/* ---- one request ------------------------------------------------------------ */

struct s3_call {
    const char *method;
    const char *key;                     /* NULL: the bucket itself */
    const char *query;                   /* already encoded; NULL for none */
    const char *headers[S3_HEADERS_MAX]; /* extra "Name: value", signed too */
    size_t n_headers;
    const void *body;
    size_t body_len;
    bool retry_safe;
    tw_http_sink_fn sink;
    void *sink_ctx;
    size_t max_response;
};

static tw_err s3_send(tw_s3 *s3, const struct s3_call *c, tw_http_response *resp,
                      tw_upstream_error *uerr)
{
    memset(resp, 0, sizeof *resp);
    tw_buf path, url;
    tw_buf_init(&path, S3_URL_MAX);
    tw_buf_init(&url, S3_URL_MAX);
    char *enc_key = c->key ? tw_sigv4_uri_encode(c->key, strlen(c->key), true) : NULL;
    tw_buf_addf(&path, "/%s", s3->bucket);
    if (c->key != NULL)
        tw_buf_addf(&path, "/%s", enc_key ? enc_key : "");
    tw_buf_addf(&url, "%s%s%s%s", s3->endpoint, tw_buf_str(&path), c->query ? "?" : "",
                c->query ? c->query : "");
    free(enc_key);
    if (path.failed || url.failed || (c->key && !enc_key)) {
        tw_buf_free(&path);
        tw_buf_free(&url);
        return TW_ERR_NO_MEMORY;
    }

    /* The headers to sign: Host and the call's own. */
    tw_sigv4_header sig_headers[S3_HEADERS_MAX + 1];
    char names[S3_HEADERS_MAX][64];
    size_t n_sig = 0;
    sig_headers[n_sig++] = (tw_sigv4_header){"host", s3->host};
    for (size_t i = 0; i < c->n_headers; i++) {
        const char *colon = strchr(c->headers[i], ':');
        size_t len = colon ? (size_t)(colon - c->headers[i]) : 0;
        if (len == 0 || len >= sizeof names[i])
            continue;
        memcpy(names[i], c->headers[i], len);
        names[i][len] = '\0';
        const char *value = colon + 1;
        while (*value == ' ')
            value++;
        sig_headers[n_sig++] = (tw_sigv4_header){names[i], value};
    }
    char payload_hash[65];
    tw_sigv4_sha256_hex(c->body ? c->body : "", c->body ? c->body_len : 0, payload_hash);
    tw_sigv4_params params = tw_sigv4_s3_params(s3->region, (int64_t)time(NULL));
    const char *query = c->query ? c->query : "";
    tw_sigv4_request sreq = {c->method, tw_buf_str(&path), query, sig_headers, n_sig, payload_hash};
    tw_sigv4_credentials creds = {s3->key_id, s3->secret, s3->token};
    tw_sigv4_result sig;
    tw_err err = tw_sigv4_sign_header(&params, &creds, &sreq, &sig);

    /* Host, the call's headers, what signing adds, Authorization. */
    char host_line[300], auth_line[600];
    const char *lines[S3_HEADERS_MAX + 8];
    size_t n_lines = 0;
    if (err == TW_OK) {
        snprintf(host_line, sizeof host_line, "Host: %s", s3->host);
        snprintf(auth_line, sizeof auth_line, "Authorization: %s", sig.authorization);
        lines[n_lines++] = host_line;
        for (size_t i = 0; i < c->n_headers; i++)
            lines[n_lines++] = c->headers[i];
        for (char *p = sig.extra_headers; p && *p && n_lines < S3_HEADERS_MAX + 7;) {
            lines[n_lines++] = p;
            char *nl = strchr(p, '\n');
            if (nl == NULL)
                break;
            *nl = '\0';
            p = nl + 1;
        }
        lines[n_lines++] = auth_line;
        tw_http_request req = {
            .service = "s3",
            .method = c->method,
            .url = tw_buf_str(&url),
            .headers = lines,
            .n_headers = n_lines,
            .body = c->body,
            .body_len = c->body_len,
            .retry_safe = c->retry_safe,
            .max_response_bytes = c->max_response ? c->max_response : S3_BODY_MAX,
            .sink = c->sink,
            .sink_ctx = c->sink_ctx,
        };
        err = tw_http_perform(&req, &s3->policy, resp, uerr);
        if (err == TW_ERR_UPSTREAM) {
            note_error(resp->body, resp->body_len, uerr);
            if (resp->status == 404)
                err = TW_ERR_NOT_FOUND;
        }
    }
    tw_sigv4_result_free(&sig);
    tw_buf_free(&path);
    tw_buf_free(&url);
    return err;
}

/* Runs a call whose answer is of no interest beyond success. */
static tw_err s3_simple(tw_s3 *s3, const struct s3_call *c, tw_upstream_error *uerr)
{
    tw_http_response resp;
    tw_err err = s3_send(s3, c, &resp, uerr);
    tw_http_response_free(&resp);
    return err;
}

static void etag_of(const tw_http_response *resp, char etag[TW_S3_ETAG_MAX])
{
    if (etag != NULL)
        tw_http_response_header(resp, "etag", etag, TW_S3_ETAG_MAX);
}

/* "name=<value encoded>" appended to q with a leading '&' when needed. */
static void query_add(tw_buf *q, const char *name, const char *value)
{
    char *enc = tw_sigv4_uri_encode(value, strlen(value), false);
    if (enc == NULL) {
        tw_buf_add(q, NULL, SIZE_MAX); /* fails the buffer */
        return;
    }
    tw_buf_addf(q, "%s%s=%s", q->len ? "&" : "", name, enc);
    free(enc);
}

/* ---- the calls -------------------------------------------------------------- */

tw_err tw_s3_head_bucket(tw_s3 *s3, tw_upstream_error *uerr)
{
    UERR_OR_SCRATCH(uerr);
    struct s3_call c = {.method = "HEAD", .retry_safe = true};
    return s3_simple(s3, &c, uerr);
}

tw_err tw_s3_put_object(tw_s3 *s3, const char *key, const void *data, size_t len,
                        char etag[TW_S3_ETAG_MAX], tw_upstream_error *uerr)
{
    UERR_OR_SCRATCH(uerr);
    struct s3_call c = {
        .method = "PUT", .key = key, .body = data ? data : "", .body_len = len, .retry_safe = true};
    c.headers[c.n_headers++] = "Content-Type: application/octet-stream";
    tw_http_response resp;
    tw_err err = s3_send(s3, &c, &resp, uerr);
    if (err == TW_OK)
        etag_of(&resp, etag);
    tw_http_response_free(&resp);
    return err;
}

tw_err tw_s3_get_object(tw_s3 *s3, const char *key, uint64_t offset, uint64_t length,
                        const char *if_match, tw_http_sink_fn sink, void *sink_ctx,
                        tw_upstream_error *uerr)
{
    UERR_OR_SCRATCH(uerr);
    char range[80], match[TW_S3_ETAG_MAX + 16];
    struct s3_call c = {
        .method = "GET", .key = key, .retry_safe = true, .sink = sink, .sink_ctx = sink_ctx};
    if (offset > 0 || length > 0) {
        if (length > 0)
            snprintf(range, sizeof range, "Range: bytes=%llu-%llu", (unsigned long long)offset,
                     (unsigned long long)(offset + length - 1));
        else
            snprintf(range, sizeof range, "Range: bytes=%llu-", (unsigned long long)offset);
        c.headers[c.n_headers++] = range;
    }
    if (if_match != NULL && if_match[0] != '\0') {
        snprintf(match, sizeof match, "If-Match: %s", if_match);
        c.headers[c.n_headers++] = match;
    }
    return s3_simple(s3, &c, uerr);
}

tw_err tw_s3_head_object(tw_s3 *s3, const char *key, tw_s3_object_info *info,
                         tw_upstream_error *uerr)
{
    UERR_OR_SCRATCH(uerr);
    struct s3_call c = {.method = "HEAD", .key = key, .retry_safe = true};
    tw_http_response resp;
    tw_err err = s3_send(s3, &c, &resp, uerr);
    if (err == TW_OK) {
        char value[128];
        memset(info, 0, sizeof *info);
        if (tw_http_response_header(&resp, "content-length", value, sizeof value))
            info->size = strtoull(value, NULL, 10);
        if (tw_http_response_header(&resp, "last-modified", value, sizeof value)) {
            time_t t = curl_getdate(value, NULL);
            info->mtime_ms = t > 0 ? (int64_t)t * 1000 : 0;
        }
        etag_of(&resp, info->etag);
    }
    tw_http_response_free(&resp);
    return err;
}

tw_err tw_s3_delete_object(tw_s3 *s3, const char *key, tw_upstream_error *uerr)
{
    UERR_OR_SCRATCH(uerr);
    struct s3_call c = {.method = "DELETE", .key = key, .retry_safe = true};
    return s3_simple(s3, &c, uerr);
}

tw_err tw_s3_create_multipart(tw_s3 *s3, const char *key, char upload_id[TW_S3_UPLOAD_ID_MAX],
                              tw_upstream_error *uerr)
{
    UERR_OR_SCRATCH(uerr);
    upload_id[0] = '\0';
    struct s3_call c = {
        .method = "POST", .key = key, .query = "uploads=", .body = "", .retry_safe = false};
    c.headers[c.n_headers++] = "Content-Type: application/octet-stream";
    tw_http_response resp;
    tw_err err = s3_send(s3, &c, &resp, uerr);
    if (err == TW_OK) {
        xmlDocPtr doc = xml_parse(resp.body, resp.body_len);
        xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
        if (root == NULL || !xml_text(root, "UploadId", upload_id, TW_S3_UPLOAD_ID_MAX) ||
            upload_id[0] == '\0') {
            tw_upstream_error_setf(uerr, "s3 POST %s?uploads: no UploadId in the answer", key);
            err = TW_ERR_UPSTREAM;
        }
        xmlFreeDoc(doc);
    }
    tw_http_response_free(&resp);
    return err;
}

tw_err tw_s3_upload_part(tw_s3 *s3, const char *key, const char *upload_id, int number,
                         const void *data, size_t len, char etag[TW_S3_ETAG_MAX],
                         tw_upstream_error *uerr)
{
    UERR_OR_SCRATCH(uerr);
    if (number < 1 || number > TW_S3_MAX_PARTS)
        return TW_ERR_VALIDATION;
    tw_buf q;
    tw_buf_init(&q, S3_URL_MAX);
    tw_buf_addf(&q, "partNumber=%d", number);
    query_add(&q, "uploadId", upload_id);
    if (q.failed)
        return TW_ERR_NO_MEMORY;
    struct s3_call c = {.method = "PUT",
                        .key = key,
                        .query = tw_buf_str(&q),
                        .body = data ? data : "",
                        .body_len = len,
                        .retry_safe = true};
    tw_http_response resp;
    tw_err err = s3_send(s3, &c, &resp, uerr);
    if (err == TW_OK) {
        etag_of(&resp, etag);
        if (etag[0] == '\0') {
            tw_upstream_error_setf(uerr, "s3 PUT part %d of %s: no ETag in the answer", number,
                                   key);
            err = TW_ERR_UPSTREAM;
        }
    }
    tw_http_response_free(&resp);
    tw_buf_free(&q);
    return err;
}

static void add_escaped(tw_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            tw_buf_adds(b, "&amp;");
            break;
        case '<':
            tw_buf_adds(b, "&lt;");
            break;
        case '>':
            tw_buf_adds(b, "&gt;");
            break;
        case '"':
            tw_buf_adds(b, "&quot;");
            break;
        default:
            tw_buf_add(b, s, 1);
        }
    }
}

tw_err tw_s3_complete_multipart(tw_s3 *s3, const char *key, const char *upload_id,
                                const tw_s3_part *parts, size_t n_parts, tw_upstream_error *uerr)
{
    UERR_OR_SCRATCH(uerr);
    if (n_parts == 0 || n_parts > TW_S3_MAX_PARTS)
        return TW_ERR_VALIDATION;
    tw_buf q, xml;
    tw_buf_init(&q, S3_URL_MAX);
    tw_buf_init(&xml, S3_BODY_MAX);
    query_add(&q, "uploadId", upload_id);
    tw_buf_adds(&xml,
                "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (size_t i = 0; i < n_parts; i++) {
        tw_buf_addf(&xml, "<Part><PartNumber>%d</PartNumber><ETag>", parts[i].number);
        add_escaped(&xml, parts[i].etag);
        tw_buf_adds(&xml, "</ETag></Part>");
    }
    tw_buf_adds(&xml, "</CompleteMultipartUpload>");
    tw_err err = TW_ERR_NO_MEMORY;
    if (!q.failed && !xml.failed) {
        /* Completing twice with the same parts gives the same object. */
        struct s3_call c = {.method = "POST",
                            .key = key,
                            .query = tw_buf_str(&q),
                            .body = xml.data,
                            .body_len = xml.len,
                            .retry_safe = true};
        c.headers[c.n_headers++] = "Content-Type: application/xml";
        tw_http_response resp;
        err = s3_send(s3, &c, &resp, uerr);
        if (err == TW_OK) {
            /* S3 may report a failure inside a 200 answer. */
            xmlDocPtr doc = xml_parse(resp.body, resp.body_len);
            xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
            if (root != NULL && named(root, "Error")) {
                tw_upstream_error_setf(uerr, "s3 POST %s?uploadId: failed in a 200 answer", key);
                note_error(resp.body, resp.body_len, uerr);
                uerr->retryable = true;
                err = TW_ERR_UPSTREAM;
            }
            xmlFreeDoc(doc);
        }
        tw_http_response_free(&resp);
    }
    tw_buf_free(&q);
    tw_buf_free(&xml);
    return err;
}

tw_err tw_s3_abort_multipart(tw_s3 *s3, const char *key, const char *upload_id,
                             tw_upstream_error *uerr)
{
    UERR_OR_SCRATCH(uerr);
    tw_buf q;
    tw_buf_init(&q, S3_URL_MAX);
    query_add(&q, "uploadId", upload_id);
    if (q.failed)
        return TW_ERR_NO_MEMORY;
    struct s3_call c = {
        .method = "DELETE", .key = key, .query = tw_buf_str(&q), .retry_safe = true};
    tw_err err = s3_simple(s3, &c, uerr);
    tw_buf_free(&q);
    return err;
}

/* ---- listings --------------------------------------------------------------- */

/* Sends one listing request of query and parses its answer; the caller
 * frees *doc. */
static tw_err list_page(tw_s3 *s3, const char *query, xmlDocPtr *doc, tw_upstream_error *uerr)
{
    struct s3_call c = {
        .method = "GET", .query = query, .retry_safe = true, .max_response = S3_LIST_MAX};
    tw_http_response resp;
    tw_err err = s3_send(s3, &c, &resp, uerr);
    *doc = NULL;
    if (err == TW_OK && (*doc = xml_parse(resp.body, resp.body_len)) == NULL) {
        tw_upstream_error_setf(uerr, "s3 GET %s?%.40s: the answer is not XML", s3->bucket, query);
        err = TW_ERR_UPSTREAM;
    }
    tw_http_response_free(&resp);
    return err;
}

static bool truncated(xmlNodePtr root)
{
    char value[16];
    return xml_text(root, "IsTruncated", value, sizeof value) && strcmp(value, "true") == 0;
}

/* How one kind of listing pages: the query that asks for it, the markers
 * that ask for the next page (sent under marker_names, found in the answer
 * under next_names), and what to do with each item. */
struct lister {
    const char *query;           /* "uploads=", "list-type=2" */
    const char *marker_names[2]; /* NULL when unused */
    const char *next_names[2];
    const char *item; /* the element of one entry */
    tw_err (*take)(struct lister *l, xmlNodePtr item);
    tw_s3_upload_fn upload_fn; /* the caller's, for the kind listed */
    tw_s3_object_fn object_fn;
    void *ctx;
};

static tw_err list_all(tw_s3 *s3, const char *prefix, struct lister *l, tw_upstream_error *uerr)
{
    char markers[2][TW_S3_UPLOAD_ID_MAX] = {"", ""};
    tw_err err = TW_OK;
    for (int page = 0; err == TW_OK && page < S3_MAX_PAGES; page++) {
        tw_buf q;
        tw_buf_init(&q, S3_URL_MAX);
        tw_buf_adds(&q, l->query);
        if (prefix && prefix[0])
            query_add(&q, "prefix", prefix);
        for (int i = 0; i < 2; i++)
            if (l->marker_names[i] != NULL && markers[i][0])
                query_add(&q, l->marker_names[i], markers[i]);
        xmlDocPtr doc = NULL;
        err = q.failed ? TW_ERR_NO_MEMORY : list_page(s3, tw_buf_str(&q), &doc, uerr);
        tw_buf_free(&q);
        if (err)
            break;
        xmlNodePtr root = xmlDocGetRootElement(doc);
        for (xmlNodePtr it = xml_child(root, l->item); it && !err; it = xml_next(it, l->item))
            err = l->take(l, it);
        bool more = truncated(root);
        for (int i = 0; i < 2 && more; i++)
            if (l->next_names[i] != NULL)
                xml_text(root, l->next_names[i], markers[i], sizeof markers[i]);
        xmlFreeDoc(doc);
        if (!more || markers[0][0] == '\0')
            break;
    }
    return err;
}

static tw_err take_upload(struct lister *l, xmlNodePtr u)
{
    char key[TW_S3_UPLOAD_ID_MAX], id[TW_S3_UPLOAD_ID_MAX], when[64];
    if (!xml_text(u, "Key", key, sizeof key) || !xml_text(u, "UploadId", id, sizeof id))
        return TW_OK;
    xml_text(u, "Initiated", when, sizeof when);
    return l->upload_fn(l->ctx, key, id, iso_ms(when));
}

tw_err tw_s3_list_multipart_uploads(tw_s3 *s3, const char *prefix, tw_s3_upload_fn fn, void *ctx,
                                    tw_upstream_error *uerr)
{
    UERR_OR_SCRATCH(uerr);
    struct lister l = {.query = "uploads=",
                       .marker_names = {"key-marker", "upload-id-marker"},
                       .next_names = {"NextKeyMarker", "NextUploadIdMarker"},
                       .item = "Upload",
                       .take = take_upload,
                       .upload_fn = fn,
                       .ctx = ctx};
    return list_all(s3, prefix, &l, uerr);
}

static tw_err take_object(struct lister *l, xmlNodePtr o)
{
    char key[TW_S3_UPLOAD_ID_MAX], size[32], when[64];
    tw_s3_object_info info = {0};
    if (!xml_text(o, "Key", key, sizeof key))
        return TW_OK;
    xml_text(o, "Size", size, sizeof size);
    xml_text(o, "LastModified", when, sizeof when);
    xml_text(o, "ETag", info.etag, sizeof info.etag);
    info.size = strtoull(size, NULL, 10);
    info.mtime_ms = iso_ms(when);
    return l->object_fn(l->ctx, key, &info);
}

tw_err tw_s3_list_objects(tw_s3 *s3, const char *prefix, tw_s3_object_fn fn, void *ctx,
                          tw_upstream_error *uerr)
{
    UERR_OR_SCRATCH(uerr);
    struct lister l = {.query = "list-type=2",
                       .marker_names = {"continuation-token", NULL},
                       .next_names = {"NextContinuationToken", NULL},
                       .item = "Contents",
                       .take = take_object,
                       .object_fn = fn,
                       .ctx = ctx};
    return list_all(s3, prefix, &l, uerr);
}
