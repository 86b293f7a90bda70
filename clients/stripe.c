/*
 * Stripe's API (stripe.h): form-encoded requests, one call path through
 * tw_http_perform, Stripe's error object mapped to our reasons, and
 * Stripe's objects read from JSON into the structs of stripe.h.
 */
#include "stripe.h"

#include "buf.h"
#include "sigv4.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORM_MAX  (64u << 10)
#define PATH_MAX_ (1u << 10)
#define ID_MAX    255
/* A list is read in pages of the most Stripe allows, up to this many. */
#define LIST_PAGE  100
#define LIST_PAGES 10

struct tw_stripe {
    char *base_url; /* without a trailing '/' */
    char *auth_header;
    tw_http_policy policy;
};

tw_err tw_stripe_new(const tw_stripe_config *cfg, tw_stripe **out)
{
    *out = NULL;
    if (cfg->base_url == NULL || cfg->base_url[0] == '\0' || cfg->secret_key == NULL ||
        cfg->secret_key[0] == '\0')
        return TW_ERR_VALIDATION;
    tw_stripe *s = calloc(1, sizeof *s);
    if (s == NULL)
        return TW_ERR_NO_MEMORY;
    s->base_url = strdup(cfg->base_url);
    if (asprintf(&s->auth_header, "Authorization: Bearer %s", cfg->secret_key) < 0)
        s->auth_header = NULL;
    if (s->base_url == NULL || s->auth_header == NULL) {
        tw_stripe_free(s);
        return TW_ERR_NO_MEMORY;
    }
    size_t n = strlen(s->base_url);
    while (n > 0 && s->base_url[n - 1] == '/')
        s->base_url[--n] = '\0';
    s->policy = tw_http_policy_resolve(&cfg->policy);
    *out = s;
    return TW_OK;
}

void tw_stripe_free(tw_stripe *s)
{
    if (s == NULL)
        return;
    free(s->base_url);
    if (s->auth_header != NULL) {
        memset(s->auth_header, 0, strlen(s->auth_header));
        free(s->auth_header);
    }
    free(s);
}

/* ---- Reading Stripe's objects ------------------------------------------------ */

/* What the readers share: the arena, and whether it ran out. */
typedef struct reader {
    tw_arena *arena;
    bool no_memory;
} reader;

static const char *keep(reader *r, const char *s)
{
    char *copy = tw_arena_strdup(r->arena, s);
    if (copy == NULL) {
        r->no_memory = true;
        return "";
    }
    return copy;
}

/* A string member, or the id of an expanded object in its place; "" when
 * null or absent. */
static const char *text(reader *r, const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_object(v))
        v = json_object_get(v, "id");
    return json_is_string(v) ? keep(r, json_string_value(v)) : "";
}

/* A currency member in upper case, as ISO 4217 writes it. */
static const char *currency(reader *r, const json_t *obj, const char *key)
{
    const char *c = text(r, obj, key);
    char *up = (char *)c;
    for (; *up != '\0'; up++)
        *up = (char)toupper((unsigned char)*up);
    return c;
}

static int64_t integer(const json_t *obj, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(obj, key));
}

/* Stripe's times are Unix seconds. */
static int64_t time_ms(const json_t *obj, const char *key)
{
    return integer(obj, key) * 1000;
}

static bool boolean(const json_t *obj, const char *key)
{
    return json_is_true(json_object_get(obj, key));
}

static void read_customer(reader *r, const json_t *o, void *dst)
{
    tw_stripe_customer *out = dst;
    out->id = text(r, o, "id");
    out->email = text(r, o, "email");
    out->default_payment_method =
        text(r, json_object_get(o, "invoice_settings"), "default_payment_method");
    out->user_id = text(r, json_object_get(o, "metadata"), "user_id");
}

static void read_subscription(reader *r, const json_t *o, void *dst)
{
    tw_stripe_subscription *out = dst;
    const json_t *item = json_array_get(json_object_get(json_object_get(o, "items"), "data"), 0);
    const json_t *price = json_object_get(item, "price");
    const json_t *meta = json_object_get(o, "metadata");
    *out = (tw_stripe_subscription){
        .id = text(r, o, "id"),
        .customer = text(r, o, "customer"),
        .status = text(r, o, "status"),
        .item_id = text(r, item, "id"),
        .price_id = text(r, price, "id"),
        .amount_minor = integer(price, "unit_amount"),
        .currency = currency(r, price, "currency"),
        .interval = text(r, json_object_get(price, "recurring"), "interval"),
        .period_start_ms = time_ms(o, "current_period_start"),
        .period_end_ms = time_ms(o, "current_period_end"),
        .cancel_at_period_end = boolean(o, "cancel_at_period_end"),
        .canceled_at_ms = time_ms(o, "canceled_at"),
        .collection_paused = json_is_object(json_object_get(o, "pause_collection")),
        .created_ms = time_ms(o, "created"),
        .latest_invoice = text(r, o, "latest_invoice"),
        .default_payment_method = text(r, o, "default_payment_method"),
        .user_id = text(r, meta, "user_id"),
        .plan_id = text(r, meta, "plan_id"),
    };
}

static void read_invoice(reader *r, const json_t *o, void *dst)
{
    tw_stripe_invoice *out = dst;
    *out = (tw_stripe_invoice){
        .id = text(r, o, "id"),
        .customer = text(r, o, "customer"),
        .subscription = text(r, o, "subscription"),
        .status = text(r, o, "status"),
        .amount_due = integer(o, "amount_due"),
        .amount_paid = integer(o, "amount_paid"),
        .currency = currency(r, o, "currency"),
        .payment_intent = text(r, o, "payment_intent"),
        .charge = text(r, o, "charge"),
        .billing_reason = text(r, o, "billing_reason"),
        .attempt_count = (int)integer(o, "attempt_count"),
        .created_ms = time_ms(o, "created"),
    };
}

static void read_payment_intent(reader *r, const json_t *o, void *dst)
{
    tw_stripe_payment_intent *out = dst;
    *out = (tw_stripe_payment_intent){
        .id = text(r, o, "id"),
        .customer = text(r, o, "customer"),
        .invoice = text(r, o, "invoice"),
        .status = text(r, o, "status"),
        .amount = integer(o, "amount"),
        .currency = currency(r, o, "currency"),
        .failure_message = text(r, json_object_get(o, "last_payment_error"), "message"),
        .created_ms = time_ms(o, "created"),
    };
}

static void read_charge(reader *r, const json_t *o, void *dst)
{
    tw_stripe_charge *out = dst;
    *out = (tw_stripe_charge){
        .id = text(r, o, "id"),
        .customer = text(r, o, "customer"),
        .invoice = text(r, o, "invoice"),
        .payment_intent = text(r, o, "payment_intent"),
        .status = text(r, o, "status"),
        .amount = integer(o, "amount"),
        .amount_refunded = integer(o, "amount_refunded"),
        .refunded = boolean(o, "refunded"),
        .currency = currency(r, o, "currency"),
        .failure_message = text(r, o, "failure_message"),
        .created_ms = time_ms(o, "created"),
    };
}

static void read_refund(reader *r, const json_t *o, void *dst)
{
    tw_stripe_refund *out = dst;
    const json_t *charge = json_object_get(o, "charge");
    *out = (tw_stripe_refund){
        .id = text(r, o, "id"),
        .charge = text(r, o, "charge"),
        .charge_amount_refunded = json_is_object(charge) ? integer(charge, "amount_refunded") : -1,
        .payment_intent = text(r, o, "payment_intent"),
        .status = text(r, o, "status"),
        .amount = integer(o, "amount"),
        .currency = currency(r, o, "currency"),
        .created_ms = time_ms(o, "created"),
    };
}

static void read_payment_method(reader *r, const json_t *o, void *dst)
{
    tw_stripe_payment_method *out = dst;
    const json_t *card = json_object_get(o, "card");
    *out = (tw_stripe_payment_method){
        .id = text(r, o, "id"),
        .customer = text(r, o, "customer"),
        .type = text(r, o, "type"),
        .card_brand = text(r, card, "brand"),
        .card_last4 = text(r, card, "last4"),
        .card_exp_month = (int)integer(card, "exp_month"),
        .card_exp_year = (int)integer(card, "exp_year"),
        .created_ms = time_ms(o, "created"),
    };
}

static void read_checkout_session(reader *r, const json_t *o, void *dst)
{
    tw_stripe_checkout_session *out = dst;
    *out = (tw_stripe_checkout_session){
        .id = text(r, o, "id"),
        .customer = text(r, o, "customer"),
        .subscription = text(r, o, "subscription"),
        .client_reference_id = text(r, o, "client_reference_id"),
        .mode = text(r, o, "mode"),
        .status = text(r, o, "status"),
    };
}

static void read_product(reader *r, const json_t *o, void *dst)
{
    tw_stripe_product *out = dst;
    *out = (tw_stripe_product){
        .id = text(r, o, "id"),
        .name = text(r, o, "name"),
        .active = boolean(o, "active"),
    };
}

static void read_price(reader *r, const json_t *o, void *dst)
{
    tw_stripe_price *out = dst;
    *out = (tw_stripe_price){
        .id = text(r, o, "id"),
        .product = text(r, o, "product"),
        .unit_amount = integer(o, "unit_amount"),
        .currency = currency(r, o, "currency"),
        .interval = text(r, json_object_get(o, "recurring"), "interval"),
        .active = boolean(o, "active"),
    };
}

/* Allocates a zeroed T in the reader's arena. */
#define NEW(r, T) ((T *)alloc_or_flag((r), sizeof(T)))
static void *alloc_or_flag(reader *r, size_t size)
{
    void *p = tw_arena_alloc(r->arena, size);
    if (p == NULL)
        r->no_memory = true;
    return p;
}

tw_err tw_stripe_event_parse(const char *json, size_t n, tw_arena *arena, tw_stripe_event *out)
{
    memset(out, 0, sizeof *out);
    json_t *root = json_loadb(json, n, JSON_REJECT_DUPLICATES, NULL);
    const json_t *object = json_object_get(json_object_get(root, "data"), "object");
    const json_t *created = json_object_get(root, "created");
    reader r = {arena, false};
    if (!json_is_string(json_object_get(root, "id")) ||
        !json_is_string(json_object_get(root, "type")) || !json_is_integer(created) ||
        !json_is_object(object) || !json_is_string(json_object_get(object, "object"))) {
        json_decref(root);
        return TW_ERR_VALIDATION;
    }
    out->id = text(&r, root, "id");
    out->type = text(&r, root, "type");
    out->created_ms = time_ms(root, "created");
    out->api_version = text(&r, root, "api_version");
    out->object_type = text(&r, object, "object");
    out->object_id = text(&r, object, "id");
    out->previous_customer =
        text(&r, json_object_get(json_object_get(root, "data"), "previous_attributes"), "customer");
    const char *kind = out->object_type;
    if (strcmp(kind, "subscription") == 0 && (out->subscription = NEW(&r, tw_stripe_subscription)))
        read_subscription(&r, object, out->subscription);
    else if (strcmp(kind, "invoice") == 0 && (out->invoice = NEW(&r, tw_stripe_invoice)))
        read_invoice(&r, object, out->invoice);
    else if (strcmp(kind, "payment_intent") == 0 &&
             (out->payment_intent = NEW(&r, tw_stripe_payment_intent)))
        read_payment_intent(&r, object, out->payment_intent);
    else if (strcmp(kind, "charge") == 0 && (out->charge = NEW(&r, tw_stripe_charge)))
        read_charge(&r, object, out->charge);
    else if (strcmp(kind, "payment_method") == 0 &&
             (out->payment_method = NEW(&r, tw_stripe_payment_method)))
        read_payment_method(&r, object, out->payment_method);
    else if (strcmp(kind, "checkout.session") == 0 &&
             (out->checkout_session = NEW(&r, tw_stripe_checkout_session)))
        read_checkout_session(&r, object, out->checkout_session);
    else if (strcmp(kind, "customer") == 0 && (out->customer = NEW(&r, tw_stripe_customer)))
        read_customer(&r, object, out->customer);
    json_decref(root);
    return r.no_memory ? TW_ERR_NO_MEMORY : TW_OK;
}

/* ---- Requests ----------------------------------------------------------------- */

/* An id we put in a path or a form: Stripe's ids and our keys are made of
 * these, and anything else could change the request's meaning. */
static bool token_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* Appends name=value (value percent-encoded) to a form or query; a NULL
 * value adds nothing. Names are ours and written as Stripe's reference
 * writes them, brackets and all. */
static void form_add(tw_buf *f, const char *name, const char *value)
{
    if (value == NULL)
        return;
    char *enc = tw_sigv4_uri_encode(value, strlen(value), false);
    if (enc == NULL) {
        tw_buf_fail(f);
        return;
    }
    tw_buf_addf(f, "%s%s=%s", f->len > 0 ? "&" : "", name, enc);
    free(enc);
}

static void form_add_int(tw_buf *f, const char *name, int64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)v);
    form_add(f, name, num);
}

static void set_text(char *dst, size_t cap, const json_t *v)
{
    snprintf(dst, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* Reads Stripe's error object from an error answer into err and says
 * which of our errors it is. */
static tw_err map_error(const tw_http_response *resp, tw_stripe_error *err)
{
    json_t *root = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
    const json_t *e = json_object_get(root, "error");
    set_text(err->type, sizeof err->type, json_object_get(e, "type"));
    set_text(err->code, sizeof err->code, json_object_get(e, "code"));
    set_text(err->decline_code, sizeof err->decline_code, json_object_get(e, "decline_code"));
    set_text(err->param, sizeof err->param, json_object_get(e, "param"));
    set_text(err->message, sizeof err->message, json_object_get(e, "message"));
    json_decref(root);
    snprintf(err->upstream.code, sizeof err->upstream.code, "%s",
             err->code[0] ? err->code : err->type);
    if (err->type[0] != '\0') {
        size_t n = strlen(err->upstream.reason);
        snprintf(err->upstream.reason + n, sizeof err->upstream.reason - n, ": %s%s%s: %s",
                 err->type, err->code[0] ? "/" : "", err->code, err->message);
    }
    /* The status of a final answer; 0 when none came (a 100 Continue
     * followed by silence is no answer). */
    long status = err->upstream.status;
    if (status == 0 || status == 409 || status == 429 || status >= 500)
        return TW_ERR_UPSTREAM;
    if (status == 402 || strcmp(err->type, "card_error") == 0)
        return TW_ERR_PAY_CARD_DECLINED;
    if (strcmp(err->type, "idempotency_error") == 0)
        return TW_ERR_PAY_IDEMPOTENCY;
    if (status == 401 || status == 403)
        return TW_ERR_PAY_MISCONFIGURED;
    if (status == 404)
        return TW_ERR_NOT_FOUND;
    return TW_ERR_PAY_REFUSED;
}

/* A key for a call whose caller gave none: random, so that this call's own
 * retries are safe and no other call shares it. */
static void fresh_key(char out[40])
{
    uint8_t bytes[16];
    arc4random_buf(bytes, sizeof bytes);
    memcpy(out, "twd-", 4);
    for (int i = 0; i < 16; i++)
        snprintf(out + 4 + 2 * i, 3, "%02x", bytes[i]);
}

/*
 * One call: method on path (a printf format over ids already checked),
 * with params as the query (GET, DELETE) or the form body (POST). On
 * success *out is the answer's JSON (json_decref it).
 */
static tw_err call(tw_stripe *s, const char *method, const char *path, tw_buf *params,
                   const char *idempotency_key, json_t **out, tw_stripe_error *err)
{
    tw_stripe_error scratch;
    if (err == NULL)
        err = &scratch;
    memset(err, 0, sizeof *err);
    *out = NULL;
    bool post = strcmp(method, "POST") == 0;
    char key[40];
    if (post && idempotency_key == NULL) {
        fresh_key(key);
        idempotency_key = key;
    }
    if (post && !token_ok(idempotency_key, TW_STRIPE_IDEMPOTENCY_KEY_MAX))
        return TW_ERR_VALIDATION;
    if (params->failed)
        return TW_ERR_NO_MEMORY;

    tw_buf url;
    tw_buf_init(&url, FORM_MAX + PATH_MAX_);
    tw_buf_addf(&url, "%s%s", s->base_url, path);
    if (!post && params->len > 0)
        tw_buf_addf(&url, "?%s", tw_buf_str(params));
    char idem_header[TW_STRIPE_IDEMPOTENCY_KEY_MAX + 32] = "";
    if (post)
        snprintf(idem_header, sizeof idem_header, "Idempotency-Key: %s", idempotency_key);
    /* "Expect:" (empty) keeps curl from waiting for a 100 Continue before
     * a form of a few hundred bytes: one round trip less per call. */
    const char *headers[] = {
        s->auth_header,
        "Stripe-Version: " TW_STRIPE_API_VERSION,
        "Content-Type: application/x-www-form-urlencoded",
        "Expect:",
        idem_header,
    };
    tw_http_request req = {
        .service = "stripe",
        .method = method,
        .url = tw_buf_str(&url),
        .headers = headers,
        .n_headers = post ? 5 : 2,
        .body = post ? tw_buf_str(params) : NULL,
        .body_len = post ? params->len : 0,
        /* GET and DELETE are idempotent at Stripe, and every POST carries
         * an Idempotency-Key: each call may be sent again. */
        .retry_safe = true,
        .retry_hint_header = "Stripe-Should-Retry",
    };
    tw_err e = url.failed ? TW_ERR_NO_MEMORY : TW_OK;
    tw_http_response resp = {0};
    if (e == TW_OK)
        e = tw_http_perform(&req, &s->policy, &resp, &err->upstream);
    if (e == TW_ERR_UPSTREAM) {
        e = map_error(&resp, err);
        if (e == TW_ERR_UPSTREAM && err->upstream.status == 409)
            err->upstream.retryable = true;
    } else if (e == TW_OK) {
        *out = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
        if (!json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
            tw_upstream_error_setf(&err->upstream, "stripe %s %s: the answer is not a JSON object",
                                   method, path);
            e = TW_ERR_UPSTREAM;
        }
    }
    tw_http_response_free(&resp);
    tw_buf_free(&url);
    return e;
}

/* Calls, then reads the answer with read_fn into out. */
typedef void (*read_fn)(reader *r, const json_t *o, void *out);

static tw_err call_read(tw_stripe *s, const char *method, const char *path, tw_buf *params,
                        const char *idempotency_key, tw_arena *arena, read_fn read, void *out,
                        tw_stripe_error *err)
{
    json_t *answer;
    tw_err e = call(s, method, path, params, idempotency_key, &answer, err);
    tw_buf_free(params);
    if (e)
        return e;
    reader r = {arena, false};
    read(&r, answer, out);
    json_decref(answer);
    return r.no_memory ? TW_ERR_NO_MEMORY : TW_OK;
}

/* Reads every page of a list (newest first), each item with read_fn into
 * an array of size-byte items in arena. */
static tw_err call_list(tw_stripe *s, const char *path, const char *filter_name,
                        const char *filter_value, const char *extra, tw_arena *arena, read_fn read,
                        size_t size, void **items, size_t *count, tw_stripe_error *err)
{
    *items = NULL;
    *count = 0;
    char after[ID_MAX + 1] = "";
    for (int page = 0; page < LIST_PAGES; page++) {
        tw_buf q;
        tw_buf_init(&q, FORM_MAX);
        form_add(&q, filter_name, filter_value);
        if (extra != NULL)
            tw_buf_addf(&q, "&%s", extra);
        form_add_int(&q, "limit", LIST_PAGE);
        if (after[0] != '\0')
            form_add(&q, "starting_after", after);
        json_t *answer;
        tw_err e = call(s, "GET", path, &q, NULL, &answer, err);
        tw_buf_free(&q);
        if (e)
            return e;
        const json_t *data = json_object_get(answer, "data");
        size_t n = json_array_size(data);
        char *grown = n ? tw_arena_alloc(arena, (*count + n) * size) : *items;
        if (n && grown == NULL) {
            json_decref(answer);
            return TW_ERR_NO_MEMORY;
        }
        if (n && *count)
            memcpy(grown, *items, *count * size);
        reader r = {arena, false};
        for (size_t i = 0; i < n; i++)
            read(&r, json_array_get(data, i), grown + (*count + i) * size);
        *items = grown;
        *count += n;
        set_text(after, sizeof after, json_object_get(json_array_get(data, n ? n - 1 : 0), "id"));
        bool more = json_is_true(json_object_get(answer, "has_more")) && n > 0;
        json_decref(answer);
        if (r.no_memory)
            return TW_ERR_NO_MEMORY;
        if (!more)
            return TW_OK;
    }
    return TW_OK;
}

/* The path of an object: prefix + id (+ suffix); false for an id that is
 * not one (the call is then refused before anything is sent). */
static bool object_path(char *out, size_t cap, const char *prefix, const char *id,
                        const char *suffix)
{
    if (!token_ok(id, ID_MAX))
        return false;
    snprintf(out, cap, "%s%s%s", prefix, id, suffix ? suffix : "");
    return true;
}

/* ---- Customers ------------------------------------------------------------- */

tw_err tw_stripe_customer_create(tw_stripe *s, const char *email, const char *name,
                                 const char *user_id, const char *idempotency_key, tw_arena *arena,
                                 tw_stripe_customer *out, tw_stripe_error *err)
{
    tw_buf f;
    tw_buf_init(&f, FORM_MAX);
    form_add(&f, "email", email);
    form_add(&f, "name", name);
    form_add(&f, "metadata[user_id]", user_id);
    return call_read(s, "POST", "/v1/customers", &f, idempotency_key, arena, read_customer, out,
                     err);
}

tw_err tw_stripe_customer_get(tw_stripe *s, const char *id, tw_arena *arena,
                              tw_stripe_customer *out, tw_stripe_error *err)
{
    char path[PATH_MAX_];
    if (!object_path(path, sizeof path, "/v1/customers/", id, NULL))
        return TW_ERR_VALIDATION;
    tw_buf q;
    tw_buf_init(&q, FORM_MAX);
    return call_read(s, "GET", path, &q, NULL, arena, read_customer, out, err);
}

tw_err tw_stripe_customer_set_default_payment_method(tw_stripe *s, const char *customer,
                                                     const char *payment_method,
                                                     const char *idempotency_key, tw_arena *arena,
                                                     tw_stripe_customer *out, tw_stripe_error *err)
{
    char path[PATH_MAX_];
    if (!object_path(path, sizeof path, "/v1/customers/", customer, NULL) ||
        !token_ok(payment_method, ID_MAX))
        return TW_ERR_VALIDATION;
    tw_buf f;
    tw_buf_init(&f, FORM_MAX);
    form_add(&f, "invoice_settings[default_payment_method]", payment_method);
    return call_read(s, "POST", path, &f, idempotency_key, arena, read_customer, out, err);
}

/* ---- Subscriptions --------------------------------------------------------- */

tw_err tw_stripe_subscription_create(tw_stripe *s, const tw_stripe_subscription_new *n,
                                     const char *idempotency_key, tw_arena *arena,
                                     tw_stripe_subscription *out, tw_stripe_error *err)
{
    if (!token_ok(n->customer, ID_MAX) || !token_ok(n->price, ID_MAX) ||
        (n->payment_method != NULL && !token_ok(n->payment_method, ID_MAX)))
        return TW_ERR_VALIDATION;
    tw_buf f;
    tw_buf_init(&f, FORM_MAX);
    form_add(&f, "customer", n->customer);
    form_add(&f, "items[0][price]", n->price);
    form_add(&f, "default_payment_method", n->payment_method);
    form_add(&f, "payment_behavior", "error_if_incomplete");
    form_add(&f, "metadata[user_id]", n->user_id);
    form_add(&f, "metadata[plan_id]", n->plan_id);
    return call_read(s, "POST", "/v1/subscriptions", &f, idempotency_key, arena, read_subscription,
                     out, err);
}

tw_err tw_stripe_subscription_get(tw_stripe *s, const char *id, tw_arena *arena,
                                  tw_stripe_subscription *out, tw_stripe_error *err)
{
    char path[PATH_MAX_];
    if (!object_path(path, sizeof path, "/v1/subscriptions/", id, NULL))
        return TW_ERR_VALIDATION;
    tw_buf q;
    tw_buf_init(&q, FORM_MAX);
    return call_read(s, "GET", path, &q, NULL, arena, read_subscription, out, err);
}

tw_err tw_stripe_subscription_list(tw_stripe *s, const char *customer, tw_arena *arena,
                                   tw_stripe_subscription **out, size_t *count,
                                   tw_stripe_error *err)
{
    if (!token_ok(customer, ID_MAX))
        return TW_ERR_VALIDATION;
    return call_list(s, "/v1/subscriptions", "customer", customer, "status=all", arena,
                     read_subscription, sizeof **out, (void **)out, count, err);
}

tw_err tw_stripe_subscription_update(tw_stripe *s, const char *id,
                                     const tw_stripe_subscription_change *c,
                                     const char *idempotency_key, tw_arena *arena,
                                     tw_stripe_subscription *out, tw_stripe_error *err)
{
    char path[PATH_MAX_];
    if (!object_path(path, sizeof path, "/v1/subscriptions/", id, NULL))
        return TW_ERR_VALIDATION;
    if ((c->item_id != NULL) != (c->price_id != NULL) ||
        (c->item_id != NULL && (!token_ok(c->item_id, ID_MAX) || !token_ok(c->price_id, ID_MAX))))
        return TW_ERR_VALIDATION;
    tw_buf f;
    tw_buf_init(&f, FORM_MAX);
    form_add(&f, "items[0][id]", c->item_id);
    form_add(&f, "items[0][price]", c->price_id);
    if (c->item_id != NULL)
        form_add(&f, "proration_behavior",
                 c->proration_behavior ? c->proration_behavior : "create_prorations");
    if (c->cancel_at_period_end >= 0)
        form_add(&f, "cancel_at_period_end", c->cancel_at_period_end ? "true" : "false");
    /* An empty pause_collection unsets it, as Stripe's reference says. */
    if (c->pause_collection == 1)
        form_add(&f, "pause_collection[behavior]", "void");
    else if (c->pause_collection == 0)
        form_add(&f, "pause_collection", "");
    form_add(&f, "metadata[plan_id]", c->plan_id);
    return call_read(s, "POST", path, &f, idempotency_key, arena, read_subscription, out, err);
}

tw_err tw_stripe_subscription_cancel(tw_stripe *s, const char *id, tw_arena *arena,
                                     tw_stripe_subscription *out, tw_stripe_error *err)
{
    char path[PATH_MAX_];
    if (!object_path(path, sizeof path, "/v1/subscriptions/", id, NULL))
        return TW_ERR_VALIDATION;
    tw_buf q;
    tw_buf_init(&q, FORM_MAX);
    return call_read(s, "DELETE", path, &q, NULL, arena, read_subscription, out, err);
}

/* ---- Invoices and refunds --------------------------------------------------- */

tw_err tw_stripe_invoice_get(tw_stripe *s, const char *id, tw_arena *arena, tw_stripe_invoice *out,
                             tw_stripe_error *err)
{
    char path[PATH_MAX_];
    if (!object_path(path, sizeof path, "/v1/invoices/", id, NULL))
        return TW_ERR_VALIDATION;
    tw_buf q;
    tw_buf_init(&q, FORM_MAX);
    return call_read(s, "GET", path, &q, NULL, arena, read_invoice, out, err);
}

tw_err tw_stripe_invoice_pay(tw_stripe *s, const char *id, const char *idempotency_key,
                             tw_arena *arena, tw_stripe_invoice *out, tw_stripe_error *err)
{
    char path[PATH_MAX_];
    if (!object_path(path, sizeof path, "/v1/invoices/", id, "/pay"))
        return TW_ERR_VALIDATION;
    tw_buf f;
    tw_buf_init(&f, FORM_MAX);
    return call_read(s, "POST", path, &f, idempotency_key, arena, read_invoice, out, err);
}

tw_err tw_stripe_refund_create(tw_stripe *s, const char *payment_intent, int64_t amount,
                               const char *idempotency_key, tw_arena *arena, tw_stripe_refund *out,
                               tw_stripe_error *err)
{
    if (!token_ok(payment_intent, ID_MAX) || amount < 0)
        return TW_ERR_VALIDATION;
    tw_buf f;
    tw_buf_init(&f, FORM_MAX);
    form_add(&f, "payment_intent", payment_intent);
    if (amount > 0)
        form_add_int(&f, "amount", amount);
    form_add(&f, "expand[]", "charge");
    return call_read(s, "POST", "/v1/refunds", &f, idempotency_key, arena, read_refund, out, err);
}

/* ---- Payment methods ----------------------------------------------------------- */

tw_err tw_stripe_payment_method_list(tw_stripe *s, const char *customer, tw_arena *arena,
                                     tw_stripe_payment_method **out, size_t *count,
                                     tw_stripe_error *err)
{
    if (!token_ok(customer, ID_MAX))
        return TW_ERR_VALIDATION;
    return call_list(s, "/v1/payment_methods", "customer", customer, "type=card", arena,
                     read_payment_method, sizeof **out, (void **)out, count, err);
}

tw_err tw_stripe_payment_method_get(tw_stripe *s, const char *id, tw_arena *arena,
                                    tw_stripe_payment_method *out, tw_stripe_error *err)
{
    char path[PATH_MAX_];
    if (!object_path(path, sizeof path, "/v1/payment_methods/", id, NULL))
        return TW_ERR_VALIDATION;
    tw_buf q;
    tw_buf_init(&q, FORM_MAX);
    return call_read(s, "GET", path, &q, NULL, arena, read_payment_method, out, err);
}

tw_err tw_stripe_payment_method_attach(tw_stripe *s, const char *id, const char *customer,
                                       const char *idempotency_key, tw_arena *arena,
                                       tw_stripe_payment_method *out, tw_stripe_error *err)
{
    char path[PATH_MAX_];
    if (!object_path(path, sizeof path, "/v1/payment_methods/", id, "/attach") ||
        !token_ok(customer, ID_MAX))
        return TW_ERR_VALIDATION;
    tw_buf f;
    tw_buf_init(&f, FORM_MAX);
    form_add(&f, "customer", customer);
    return call_read(s, "POST", path, &f, idempotency_key, arena, read_payment_method, out, err);
}

tw_err tw_stripe_payment_method_detach(tw_stripe *s, const char *id, const char *idempotency_key,
                                       tw_arena *arena, tw_stripe_payment_method *out,
                                       tw_stripe_error *err)
{
    char path[PATH_MAX_];
    if (!object_path(path, sizeof path, "/v1/payment_methods/", id, "/detach"))
        return TW_ERR_VALIDATION;
    tw_buf f;
    tw_buf_init(&f, FORM_MAX);
    return call_read(s, "POST", path, &f, idempotency_key, arena, read_payment_method, out, err);
}

/* ---- Products and prices ---------------------------------------------------------- */

tw_err tw_stripe_product_create(tw_stripe *s, const char *name, const char *description,
                                const char *plan_id, const char *idempotency_key, tw_arena *arena,
                                tw_stripe_product *out, tw_stripe_error *err)
{
    if (name == NULL || name[0] == '\0')
        return TW_ERR_VALIDATION;
    tw_buf f;
    tw_buf_init(&f, FORM_MAX);
    form_add(&f, "name", name);
    form_add(&f, "description", description && description[0] ? description : NULL);
    form_add(&f, "metadata[plan_id]", plan_id);
    return call_read(s, "POST", "/v1/products", &f, idempotency_key, arena, read_product, out, err);
}

tw_err tw_stripe_price_create(tw_stripe *s, const tw_stripe_price_new *n,
                              const char *idempotency_key, tw_arena *arena, tw_stripe_price *out,
                              tw_stripe_error *err)
{
    char lower[4];
    if (!token_ok(n->product, ID_MAX) || n->unit_amount < 0 || n->currency == NULL ||
        strlen(n->currency) != 3 || n->interval == NULL)
        return TW_ERR_VALIDATION;
    for (int i = 0; i < 4; i++)
        lower[i] = (char)tolower((unsigned char)n->currency[i]);
    tw_buf f;
    tw_buf_init(&f, FORM_MAX);
    form_add(&f, "product", n->product);
    form_add_int(&f, "unit_amount", n->unit_amount);
    form_add(&f, "currency", lower);
    form_add(&f, "recurring[interval]", n->interval);
    form_add(&f, "metadata[plan_id]", n->plan_id);
    form_add(&f, "metadata[audience]", n->audience);
    return call_read(s, "POST", "/v1/prices", &f, idempotency_key, arena, read_price, out, err);
}
