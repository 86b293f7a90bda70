/*
 * AWS Signature Version 4, step by step as AWS's "Create a signed AWS API
 * request" describes it: canonical request, string to sign, signing key,
 * signature. tests/unit/clients/test_sigv4.c checks every case of AWS's
 * published test suite and AWS's S3 examples.
 */
#include "sigv4.h"

#include "buf.h"
#include "tw_array.h"
#include "tw_hex.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
/* No canonical request or header list of ours comes near this. */
#define SIGV4_TEXT_MAX (1u << 20)

tw_sigv4_params tw_sigv4_s3_params(const char *region, int64_t time_s)
{
    return (tw_sigv4_params){
        .region = region,
        .service = "s3",
        .time_s = time_s,
        .normalize_path = false,
        .double_encode = false,
        .content_sha256 = true,
    };
}

void tw_sigv4_sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
    tw_hex_encode(md, len, out);
}

static void hmac(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &len);
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static bool add_encoded(tw_buf *b, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            tw_buf_add(b, &s[i], 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            tw_buf_add(b, esc, 3);
        }
    }
    return !b->failed;
}

char *tw_sigv4_uri_encode(const char *s, size_t n, bool keep_slash)
{
    tw_buf b;
    tw_buf_init(&b, SIGV4_TEXT_MAX);
    add_encoded(&b, s, n, keep_slash);
    return tw_buf_take(&b);
}

/* ---- canonical path --------------------------------------------------------- */

/* RFC 3986 dot-segment removal plus collapsing repeated slashes, as the
 * generic SigV4 suite expects ("//example//" -> "/example/"). */
static bool add_normalized_path(tw_buf *out, const char *path)
{
    size_t n = strlen(path);
    size_t *starts = calloc(n + 1, sizeof *starts); /* where each kept segment starts in out */
    if (starts == NULL)
        return false;
    size_t depth = 0;
    size_t base = out->len;
    const char *p = path;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        size_t seg = strcspn(p, "/");
        if (seg == 0)
            break;
        if (seg == 1 && p[0] == '.') {
            /* nothing */
        } else if (seg == 2 && p[0] == '.' && p[1] == '.') {
            if (depth > 0) {
                depth--;
                out->len = starts[depth];
            }
        } else {
            starts[depth++] = out->len;
            tw_buf_add(out, "/", 1);
            tw_buf_add(out, p, seg);
        }
        p += seg;
    }
    free(starts);
    if (out->failed)
        return false;
    if (out->len == base || (n > 0 && path[n - 1] == '/'))
        tw_buf_add(out, "/", 1);
    else if (n >= 2 && path[n - 1] == '.' && path[n - 2] == '/')
        tw_buf_add(out, "/", 1); /* "/a/." names the directory a/ */
    else if (n >= 3 && strcmp(path + n - 3, "/..") == 0)
        tw_buf_add(out, "/", 1);
    if (!out->failed)
        out->data[out->len] = '\0';
    return !out->failed;
}

static bool add_canonical_path(tw_buf *out, const tw_sigv4_params *p, const char *path)
{
    if (path == NULL || path[0] == '\0')
        path = "/";
    if (!p->normalize_path && !p->double_encode)
        return tw_buf_adds(out, path);
    tw_buf tmp;
    tw_buf_init(&tmp, SIGV4_TEXT_MAX);
    if (p->normalize_path)
        add_normalized_path(&tmp, path);
    else
        tw_buf_adds(&tmp, path);
    bool ok = !tmp.failed;
    if (ok && p->double_encode)
        ok = add_encoded(out, tmp.data, tmp.len, true);
    else if (ok)
        ok = tw_buf_add(out, tmp.data, tmp.len);
    tw_buf_free(&tmp);
    return ok;
}

/* ---- canonical query -------------------------------------------------------- */

struct pair {
    char *key; /* both URI-encoded the canonical way */
    char *value;
};

struct pairs {
    struct pair *items;
    size_t n, alloc;
};

static void pairs_free(struct pairs *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->items[i].key);
        free(ps->items[i].value);
    }
    free(ps->items);
    *ps = (struct pairs){0};
}

/* Adds key=value, taking both (freed here on failure). */
static tw_err pairs_add(struct pairs *ps, char *key, char *value)
{
    if (key == NULL || value == NULL)
        goto nomem;
    if (ps->n == ps->alloc) {
        struct pair *items = tw_array_grow(ps->items, ps->n, &ps->alloc, sizeof *items, 8);
        if (items == NULL)
            goto nomem;
        ps->items = items;
    }
    ps->items[ps->n++] = (struct pair){key, value};
    return TW_OK;
nomem:
    free(key);
    free(value);
    return TW_ERR_NO_MEMORY;
}

/* Decodes the percent escapes of n bytes of s, then encodes the result the
 * canonical way; NULL with *bad set for a broken escape. */
static char *recode(const char *s, size_t n, bool *bad)
{
    char *raw = malloc(n + 1);
    if (raw == NULL)
        return NULL;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            raw[len++] = s[i];
            continue;
        }
        int hi = i + 1 < n ? tw_hex_digit(s[i + 1]) : -1;
        int lo = i + 2 < n ? tw_hex_digit(s[i + 2]) : -1;
        if (hi >= 0 && lo >= 0) {
            raw[len++] = (char)(hi * 16 + lo);
            i += 2;
            continue;
        }
        free(raw);
        *bad = true;
        return NULL;
    }
    char *out = tw_sigv4_uri_encode(raw, len, false);
    free(raw);
    return out;
}

static tw_err parse_query(const char *query, struct pairs *ps)
{
    const char *p = query ? query : "";
    while (*p != '\0') {
        size_t len = strcspn(p, "&");
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            bool bad = false;
            char *key = recode(p, klen, &bad);
            char *value = eq ? recode(eq + 1, len - klen - 1, &bad) : strdup("");
            if (bad) {
                free(key);
                free(value);
                return TW_ERR_VALIDATION;
            }
            tw_err err = pairs_add(ps, key, value);
            if (err)
                return err;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return TW_OK;
}

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value, y->value);
}

static bool add_query(tw_buf *out, struct pairs *ps)
{
    if (ps->n > 1)
        qsort(ps->items, ps->n, sizeof *ps->items, pair_cmp);
    for (size_t i = 0; i < ps->n; i++)
        tw_buf_addf(out, "%s%s=%s", i ? "&" : "", ps->items[i].key, ps->items[i].value);
    return !out->failed;
}

/* ---- canonical headers ------------------------------------------------------ */

struct header {
    char *name;  /* lower case */
    char *value; /* trimmed, inner runs of white space as one space */
    size_t order;
};

static bool space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static char *canonical_value(const char *v)
{
    tw_buf b;
    tw_buf_init(&b, SIGV4_TEXT_MAX);
    bool pending_space = false;
    for (; *v; v++) {
        if (space(*v)) {
            pending_space = b.len > 0;
            continue;
        }
        if (pending_space)
            tw_buf_add(&b, " ", 1);
        pending_space = false;
        tw_buf_add(&b, v, 1);
    }
    return tw_buf_take(&b);
}

static int header_cmp(const void *a, const void *b)
{
    const struct header *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

struct headers {
    struct header *items;
    size_t n;
};

static void headers_free(struct headers *hs)
{
    for (size_t i = 0; i < hs->n; i++) {
        free(hs->items[i].name);
        free(hs->items[i].value);
    }
    free(hs->items);
}

static bool headers_has(const tw_sigv4_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return true;
    return false;
}

/* The request's headers plus extra ones (name/value pairs), sorted. */
static tw_err collect_headers(const tw_sigv4_request *req, const tw_sigv4_header *extra,
                              size_t n_extra, struct headers *out)
{
    size_t total = req->n_headers + n_extra;
    out->items = calloc(total ? total : 1, sizeof *out->items);
    out->n = 0;
    if (out->items == NULL)
        return TW_ERR_NO_MEMORY;
    bool has_host = false;
    for (size_t i = 0; i < total; i++) {
        const tw_sigv4_header *h =
            i < req->n_headers ? &req->headers[i] : &extra[i - req->n_headers];
        struct header *o = &out->items[out->n++];
        o->order = i;
        o->name = strdup(h->name);
        o->value = canonical_value(h->value ? h->value : "");
        if (o->name == NULL || o->value == NULL)
            return TW_ERR_NO_MEMORY;
        for (char *c = o->name; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        has_host |= strcmp(o->name, "host") == 0;
    }
    if (!has_host)
        return TW_ERR_VALIDATION;
    qsort(out->items, out->n, sizeof *out->items, header_cmp);
    return TW_OK;
}

/* "name:v1,v2\n" lines into canon, "a;b" into signed_names. */
static bool add_headers(tw_buf *canon, tw_buf *signed_names, const struct headers *hs)
{
    for (size_t i = 0; i < hs->n; i++) {
        const struct header *h = &hs->items[i];
        bool continues = i > 0 && strcmp(hs->items[i - 1].name, h->name) == 0;
        if (continues) {
            tw_buf_addf(canon, ",%s", h->value);
            continue;
        }
        if (i > 0)
            tw_buf_add(canon, "\n", 1);
        tw_buf_addf(canon, "%s:%s", h->name, h->value);
        tw_buf_addf(signed_names, "%s%s", signed_names->len ? ";" : "", h->name);
    }
    if (hs->n > 0)
        tw_buf_add(canon, "\n", 1);
    return !canon->failed && !signed_names->failed;
}

/* ---- signing ---------------------------------------------------------------- */

struct when {
    char amz_date[17]; /* 20150830T123600Z */
    char date[9];      /* 20150830 */
};

static void when_of(int64_t time_s, struct when *w)
{
    time_t t = (time_t)time_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(w->amz_date, sizeof w->amz_date, "%Y%m%dT%H%M%SZ", &tm);
    memcpy(w->date, w->amz_date, 8);
    w->date[8] = '\0';
}

/* string to sign and signature from the canonical request in out. */
static tw_err finish(const tw_sigv4_params *p, const tw_sigv4_credentials *c, const struct when *w,
                     tw_sigv4_result *out)
{
    char creq_hash[65];
    tw_sigv4_sha256_hex(out->canonical_request, strlen(out->canonical_request), creq_hash);
    tw_buf sts;
    tw_buf_init(&sts, SIGV4_TEXT_MAX);
    tw_buf_addf(&sts, ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", w->amz_date, w->date, p->region,
                p->service, creq_hash);
    if ((out->string_to_sign = tw_buf_take(&sts)) == NULL)
        return TW_ERR_NO_MEMORY;

    tw_buf secret;
    tw_buf_init(&secret, SIGV4_TEXT_MAX);
    tw_buf_addf(&secret, "AWS4%s", c->secret_access_key);
    if (secret.failed)
        return TW_ERR_NO_MEMORY;
    unsigned char k_date[32], k_region[32], k_service[32], k_signing[32], sig[32];
    hmac(secret.data, secret.len, w->date, k_date);
    OPENSSL_cleanse(secret.data, secret.len);
    tw_buf_free(&secret);
    hmac(k_date, 32, p->region, k_region);
    hmac(k_region, 32, p->service, k_service);
    hmac(k_service, 32, "aws4_request", k_signing);
    hmac(k_signing, 32, out->string_to_sign, sig);
    tw_hex_encode(sig, 32, out->signature);
    OPENSSL_cleanse(k_signing, sizeof k_signing);
    return TW_OK;
}

/* What both forms sign: the request's headers (with the extra ones), its
 * query pairs (query signing adds its parameters), and the canonical
 * headers and signed header names rendered from them. */
struct canonical {
    struct headers hs;
    struct pairs query;
    tw_buf headers, names;
};

static tw_err canonical_open(struct canonical *cn, const tw_sigv4_request *req,
                             const tw_sigv4_header *extra, size_t n_extra)
{
    memset(cn, 0, sizeof *cn);
    tw_buf_init(&cn->headers, SIGV4_TEXT_MAX);
    tw_buf_init(&cn->names, SIGV4_TEXT_MAX);
    tw_err err = collect_headers(req, extra, n_extra, &cn->hs);
    if (err == TW_OK)
        err = parse_query(req->query, &cn->query);
    if (err == TW_OK)
        add_headers(&cn->headers, &cn->names, &cn->hs);
    return err;
}

static void canonical_close(struct canonical *cn)
{
    headers_free(&cn->hs);
    pairs_free(&cn->query);
    tw_buf_free(&cn->headers);
    tw_buf_free(&cn->names);
}

/* The canonical request (method, path, query, canonical headers, signed
 * header names, payload hash) into out->canonical_request, then its
 * string to sign and signature (finish). */
static tw_err sign_canonical(const tw_sigv4_params *p, const tw_sigv4_credentials *c,
                             const struct when *w, const tw_sigv4_request *req,
                             struct canonical *cn, tw_sigv4_result *out)
{
    tw_buf creq;
    tw_buf_init(&creq, SIGV4_TEXT_MAX);
    tw_buf_addf(&creq, "%s\n", req->method);
    add_canonical_path(&creq, p, req->path);
    tw_buf_add(&creq, "\n", 1);
    add_query(&creq, &cn->query);
    tw_buf_addf(&creq, "\n%s\n%s\n%s", tw_buf_str(&cn->headers), tw_buf_str(&cn->names),
                req->payload_hash);
    /* A part that did not fit would sign the wrong request. */
    if (cn->headers.failed || cn->names.failed)
        tw_buf_fail(&creq);
    out->canonical_request = tw_buf_take(&creq);
    tw_buf_free(&creq);
    return out->canonical_request ? finish(p, c, w, out) : TW_ERR_NO_MEMORY;
}

static bool has_token(const tw_sigv4_credentials *c)
{
    return c->session_token != NULL && c->session_token[0] != '\0';
}

void tw_sigv4_result_free(tw_sigv4_result *r)
{
    free(r->canonical_request);
    free(r->string_to_sign);
    free(r->authorization);
    free(r->extra_headers);
    free(r->signed_query);
    memset(r, 0, sizeof *r);
}

tw_err tw_sigv4_sign_header(const tw_sigv4_params *p, const tw_sigv4_credentials *c,
                            const tw_sigv4_request *req, tw_sigv4_result *out)
{
    memset(out, 0, sizeof *out);
    struct when w;
    when_of(p->time_s, &w);
    tw_sigv4_header extra[3];
    size_t n_extra = 0;
    extra[n_extra++] = (tw_sigv4_header){"x-amz-date", w.amz_date};
    bool add_sha = p->content_sha256 && !headers_has(req, "x-amz-content-sha256");
    if (add_sha)
        extra[n_extra++] = (tw_sigv4_header){"x-amz-content-sha256", req->payload_hash};
    bool sign_token = has_token(c) && !p->omit_session_token;
    if (sign_token)
        extra[n_extra++] = (tw_sigv4_header){"x-amz-security-token", c->session_token};

    struct canonical cn;
    tw_buf tmp;
    tw_buf_init(&tmp, SIGV4_TEXT_MAX);
    tw_err err = canonical_open(&cn, req, extra, n_extra);
    if (err || (err = sign_canonical(p, c, &w, req, &cn, out)))
        goto out;

    tw_buf_addf(&tmp,
                ALGORITHM " Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                          "Signature=%s",
                c->access_key_id, w.date, p->region, p->service, tw_buf_str(&cn.names),
                out->signature);
    err = TW_ERR_NO_MEMORY;
    if ((out->authorization = tw_buf_take(&tmp)) == NULL)
        goto out;
    tw_buf_addf(&tmp, "X-Amz-Date: %s", w.amz_date);
    if (add_sha)
        tw_buf_addf(&tmp, "\nx-amz-content-sha256: %s", req->payload_hash);
    if (has_token(c))
        tw_buf_addf(&tmp, "\nX-Amz-Security-Token: %s", c->session_token);
    if ((out->extra_headers = tw_buf_take(&tmp)) == NULL)
        goto out;
    err = TW_OK;
out:
    canonical_close(&cn);
    tw_buf_free(&tmp);
    return err;
}

/* Adds name=value (value encoded here) to ps and, as sent, to sent. */
static tw_err add_param(struct pairs *ps, tw_buf *sent, const char *name, const char *value)
{
    char *enc = tw_sigv4_uri_encode(value, strlen(value), false);
    if (enc != NULL)
        tw_buf_addf(sent, "%s%s=%s", sent->len ? "&" : "", name, enc);
    return pairs_add(ps, strdup(name), enc);
}

tw_err tw_sigv4_sign_query(const tw_sigv4_params *p, const tw_sigv4_credentials *c,
                           const tw_sigv4_request *req, tw_sigv4_result *out)
{
    memset(out, 0, sizeof *out);
    struct when w;
    when_of(p->time_s, &w);
    struct canonical cn;
    tw_buf sent, scratch;
    tw_buf_init(&sent, SIGV4_TEXT_MAX);
    tw_buf_init(&scratch, SIGV4_TEXT_MAX);
    /* The signed header names are a parameter, so they come first. */
    tw_err err = canonical_open(&cn, req, NULL, 0);
    if (err)
        goto out;

    if (req->query != NULL && req->query[0] != '\0')
        tw_buf_adds(&sent, req->query);
    char expires[24];
    snprintf(expires, sizeof expires, "%lld", (long long)p->expires_s);
    tw_buf_addf(&scratch, "%s/%s/%s/%s/aws4_request", c->access_key_id, w.date, p->region,
                p->service);
    err = add_param(&cn.query, &sent, "X-Amz-Algorithm", ALGORITHM);
    if (!err)
        err = add_param(&cn.query, &sent, "X-Amz-Credential", tw_buf_str(&scratch));
    if (!err)
        err = add_param(&cn.query, &sent, "X-Amz-Date", w.amz_date);
    if (!err)
        err = add_param(&cn.query, &sent, "X-Amz-Expires", expires);
    if (!err && has_token(c) && !p->omit_session_token)
        err = add_param(&cn.query, &sent, "X-Amz-Security-Token", c->session_token);
    if (!err)
        err = add_param(&cn.query, &sent, "X-Amz-SignedHeaders", tw_buf_str(&cn.names));
    if (err || (err = sign_canonical(p, c, &w, req, &cn, out)))
        goto out;
    if (has_token(c) && p->omit_session_token) {
        struct pairs after = {0};
        err = add_param(&after, &sent, "X-Amz-Security-Token", c->session_token);
        pairs_free(&after);
        if (err)
            goto out;
    }
    tw_buf_addf(&sent, "&X-Amz-Signature=%s", out->signature);
    err = TW_ERR_NO_MEMORY;
    if ((out->signed_query = tw_buf_take(&sent)) == NULL)
        goto out;
    err = TW_OK;
out:
    canonical_close(&cn);
    tw_buf_free(&sent);
    tw_buf_free(&scratch);
    return err;
}
