/*
 * Plans: BILLING_PLAN(plan id) -> PlanRecord. The free plan always exists:
 * tw_billing_new stores the built-in one when the store has none, and
 * billing_plan_load falls back to it. With Stripe, a plan's product and
 * each of its prices are made at Stripe before the plan is stored, with
 * idempotency keys made of the plan's id and price version, so a retried
 * or crashed CreatePlan or SetPlanPrice makes each Stripe object once.
 * Stripe's prices cannot change, so a new amount is a new Price; the
 * plan's live Stripe subscriptions are moved to it by a job, without
 * proration, so each keeps its old price until its next renewal.
 */
#include "billing_internal.h"
#include "kit/mask.h"
#include "wellness/wellness.h"

#include "tw_utf8.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define PLAN_ID_MAX       64
#define NAME_MAX_CHARS    100
#define DESC_MAX_CHARS    1000
#define PRICES_MAX        20
#define FEATURE_MAX_CHARS 200
#define AMOUNT_MAX        INT64_C(100000000000) /* 1e9 units of any currency, in minor units */
/* Limits when a plan sets none: the runbook's free 100 / premium 1000 per
 * period; storage counts bytes, so 100 / 1000 MiB. */
#define DEFAULT_FREE_LIMIT 100
#define DEFAULT_PAID_LIMIT 1000
#define MIB                (INT64_C(1) << 20)

static const char *const audience_names[] = {"standard", "standard", "student"};

/* ---- The built-in free plan ------------------------------------------------------ */

static price_record free_price = {
    .base = PROTOBUF_C_MESSAGE_INIT(&tw__store__v1__price_record__descriptor),
    .currency = "USD",
    .amount_minor = 0,
    .audience = AUDIENCE_STANDARD,
    .stripe_price_id = "",
};
static price_record *free_prices[] = {&free_price};

static void free_plan(plan_record *p)
{
    tw__store__v1__plan_record__init(p);
    p->id = TW_FREE_PLAN;
    p->name = "Free";
    p->description = "Everything to get started, within the free limits.";
    p->interval = INTERVAL_MONTH;
    p->n_prices = 1;
    p->prices = free_prices;
    p->active = true;
}

static tw_err put_free_plan(tw_txn *t, void *ctx)
{
    const int64_t *now_ms = ctx;
    tw_key k;
    billing_plan_key(&k, TW_FREE_PLAN);
    tw_value v;
    tw_err err = tw_txn_get_for_update(t, &k, NULL, &v);
    if (err != TW_ERR_NOT_FOUND)
        return err;
    plan_record p;
    free_plan(&p);
    p.create_unix_ms = p.update_unix_ms = *now_ms;
    return billing_put(t, &k, &p);
}

tw_err billing_plans_init(tw_store *s, int64_t now_ms)
{
    tw_key k;
    billing_plan_key(&k, TW_FREE_PLAN);
    tw_value v;
    tw_arena *arena = tw_arena_new(1024);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err = tw_store_get(s, &k, arena, &v);
    tw_arena_free(arena);
    if (err == TW_ERR_NOT_FOUND)
        err = tw_txn_run(s, put_free_plan, &now_ms);
    return err;
}

/* ---- Reading ------------------------------------------------------------------------ */

tw_err billing_plan_load(tw_billing *b, tw_txn *t, const char *id, tw_arena *arena,
                         plan_record **out)
{
    tw_key k;
    billing_plan_key(&k, id);
    tw_err err = billing_get(b->store, t, false, &k, arena, out);
    if (err == TW_ERR_NOT_FOUND && strcmp(id, TW_FREE_PLAN) == 0) {
        /* The built-in one, with its own copy of the price list (a caller
         * may change the list it gets). */
        price_record **prices = tw_arena_alloc(arena, sizeof *prices);
        if ((*out = tw_arena_alloc(arena, sizeof **out)) == NULL || prices == NULL)
            return TW_ERR_NO_MEMORY;
        free_plan(*out);
        prices[0] = &free_price;
        (*out)->prices = prices;
        return TW_OK;
    }
    return err;
}

const price_record *billing_plan_price(const plan_record *p, const char *currency, int audience)
{
    if (currency == NULL || currency[0] == '\0')
        currency = p->n_prices ? p->prices[0]->currency : "";
    for (size_t i = 0; i < p->n_prices; i++)
        if (strcasecmp(p->prices[i]->currency, currency) == 0 &&
            (int)p->prices[i]->audience == audience)
            return p->prices[i];
    return NULL;
}

int64_t billing_plan_limit(const plan_record *p, int resource)
{
    for (size_t i = 0; i < p->n_limits; i++)
        if ((int)p->limits[i]->resource == resource)
            return p->limits[i]->unlimited ? -1 : p->limits[i]->limit;
    int64_t n = strcmp(p->id, TW_FREE_PLAN) == 0 ? DEFAULT_FREE_LIMIT : DEFAULT_PAID_LIMIT;
    return resource == TW_RESOURCE_STORAGE_BYTES ? n * MIB : n;
}

Tw__V1__PlanPrice *billing_present_price(tw_arena *arena, const price_record *p)
{
    Tw__V1__PlanPrice *out = tw_arena_alloc(arena, sizeof *out);
    if (out == NULL)
        return NULL;
    tw__v1__plan_price__init(out);
    out->currency = p->currency;
    out->amount_minor = p->amount_minor;
    out->audience = p->audience;
    out->stripe_price_id = p->stripe_price_id;
    return out;
}

static Tw__V1__Plan *present_plan(tw_arena *arena, const plan_record *p)
{
    Tw__V1__Plan *out = tw_arena_alloc(arena, sizeof *out);
    Tw__V1__PlanPrice **prices = tw_arena_alloc(arena, (p->n_prices + 1) * sizeof *prices);
    Tw__V1__UsageLimit **limits = tw_arena_alloc(arena, (p->n_limits + 1) * sizeof *limits);
    if (out == NULL || prices == NULL || limits == NULL)
        return NULL;
    tw__v1__plan__init(out);
    out->id = p->id;
    out->name = p->name;
    out->description = p->description;
    out->interval = p->interval;
    for (size_t i = 0; i < p->n_prices; i++)
        if ((prices[i] = billing_present_price(arena, p->prices[i])) == NULL)
            return NULL;
    out->n_prices = p->n_prices;
    out->prices = prices;
    out->n_features = p->n_features;
    out->features = p->features;
    for (size_t i = 0; i < p->n_limits; i++) {
        if ((limits[i] = tw_arena_alloc(arena, sizeof *limits[i])) == NULL)
            return NULL;
        tw__v1__usage_limit__init(limits[i]);
        limits[i]->resource = p->limits[i]->resource;
        limits[i]->limit = p->limits[i]->limit;
        limits[i]->unlimited = p->limits[i]->unlimited;
    }
    out->n_limits = p->n_limits;
    out->limits = limits;
    out->stripe_product_id = p->stripe_product_id;
    out->active = p->active;
    out->create_time = tw_timestamp_new(arena, p->create_unix_ms);
    out->update_time = tw_timestamp_new(arena, p->update_unix_ms);
    return out->create_time && out->update_time ? out : NULL;
}

tw_err billing_plan_by_stripe_price(tw_billing *b, const char *price_id, tw_arena *arena,
                                    plan_record **out)
{
    *out = NULL;
    tw_key prefix;
    billing_plan_key(&prefix, NULL);
    tw_store_iter *it;
    tw_err err = tw_store_scan(b->store, &prefix, NULL, 0, false, &it);
    while (err == TW_OK && *out == NULL && tw_store_iter_next(it)) {
        tw_value v;
        if ((err = tw_store_iter_value(it, arena, &v)))
            break;
        plan_record *p = (plan_record *)v.msg;
        for (size_t i = 0; i < p->n_prices && *out == NULL; i++)
            if (p->prices[i]->stripe_price_id[0] &&
                strcmp(p->prices[i]->stripe_price_id, price_id) == 0)
                *out = p;
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}

/* ---- Lists ------------------------------------------------------------------------- */

struct list {
    tw_billing_ctx *c;
    bool active_only;
    const char *currency;
    bool student;
    Tw__V1__Plan **plans;
    size_t n;
};

static tw_err list_one(void *ctx, tw_store_iter *it, bool *taken)
{
    struct list *l = ctx;
    tw_value v;
    tw_err err = tw_store_iter_value(it, l->c->arena, &v);
    if (err)
        return err;
    plan_record *p = (plan_record *)v.msg;
    if (l->active_only && !p->active)
        return TW_OK;
    Tw__V1__Plan *plan = present_plan(l->c->arena, p);
    if (plan == NULL)
        return TW_ERR_NO_MEMORY;
    if (l->active_only) {
        const price_record *price = NULL;
        if (l->student)
            price = billing_plan_price(p, l->currency, AUDIENCE_STUDENT);
        if (price == NULL)
            price = billing_plan_price(p, l->currency, AUDIENCE_STANDARD);
        if (price == NULL)
            price = p->n_prices ? p->prices[0] : NULL;
        if (price != NULL &&
            (plan->caller_price = billing_present_price(l->c->arena, price)) == NULL)
            return TW_ERR_NO_MEMORY;
    }
    l->plans[l->n++] = plan;
    *taken = true;
    return TW_OK;
}

static tw_err list(tw_billing_ctx *c, struct list *l, tw_billing_page *page)
{
    l->c = c;
    if ((l->plans = tw_arena_alloc(c->arena, (TW_PAGE_SIZE_MAX + 1) * sizeof *l->plans)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw_key prefix;
    billing_plan_key(&prefix, NULL);
    return billing_page(c, &prefix, NULL, NULL, false, page, list_one, l);
}

tw_err tw_billing_list_plans(tw_billing_ctx *c, const char *currency, tw_billing_page *page,
                             Tw__V1__ListPlansResponse **out)
{
    if (currency[0] != '\0' &&
        (strlen(currency) != 3 || !isalpha((unsigned char)currency[0]) ||
         !isalpha((unsigned char)currency[1]) || !isalpha((unsigned char)currency[2])))
        return billing_bad(c, "currency", "must be an ISO 4217 code such as USD");
    tw_billing_entitlement ent;
    tw_err err = tw_billing_entitlement_get(c->billing, &c->user, c->now_ms, c->arena, &ent);
    if (err)
        return err;
    struct list l = {.active_only = true, .currency = currency, .student = ent.student};
    Tw__V1__ListPlansResponse *r = tw_arena_alloc(c->arena, sizeof *r);
    if (r == NULL)
        return TW_ERR_NO_MEMORY;
    tw__v1__list_plans_response__init(r);
    if ((err = list(c, &l, page)))
        return err;
    r->plans = l.plans;
    r->n_plans = l.n;
    *out = r;
    return TW_OK;
}

tw_err tw_billing_list_all_plans(tw_billing_ctx *c, tw_billing_page *page,
                                 Tw__V1__ListAllPlansResponse **out)
{
    struct list l = {.active_only = false};
    Tw__V1__ListAllPlansResponse *r = tw_arena_alloc(c->arena, sizeof *r);
    if (r == NULL)
        return TW_ERR_NO_MEMORY;
    tw__v1__list_all_plans_response__init(r);
    tw_err err = list(c, &l, page);
    if (err)
        return err;
    r->plans = l.plans;
    r->n_plans = l.n;
    *out = r;
    return TW_OK;
}

/* ---- Checking what an operator sends --------------------------------------------------- */

static tw_err check_plan_id(tw_billing_ctx *c, const char *field, const char *id)
{
    size_t n = strlen(id);
    if (n == 0)
        return billing_bad(c, field, "is required");
    if (n > PLAN_ID_MAX)
        return billing_bad(c, field, "is longer than %d characters", PLAN_ID_MAX);
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)id[i]) && !isdigit((unsigned char)id[i]) && id[i] != '_' &&
            id[i] != '-')
            return billing_bad(c, field, "must be made of a-z, 0-9, '_' and '-'");
    return TW_OK;
}

/* Checks a price (every field) and makes the record of it (currency
 * upper case, audience STANDARD when unset), in arena; *out NULL when it
 * is bad. */
static tw_err check_price(tw_billing_ctx *c, const char *prefix, const Tw__V1__PlanPrice *in,
                          price_record **out)
{
    *out = NULL;
    size_t before = tw_violations_total(c->bad);
    char field[64];
    const char *cur = in->currency;
    snprintf(field, sizeof field, "%scurrency", prefix);
    if (strlen(cur) != 3 || !isalpha((unsigned char)cur[0]) || !isalpha((unsigned char)cur[1]) ||
        !isalpha((unsigned char)cur[2]))
        billing_bad(c, field, "must be an ISO 4217 code such as USD");
    snprintf(field, sizeof field, "%samount_minor", prefix);
    if (in->amount_minor < 0 || in->amount_minor > AMOUNT_MAX)
        billing_bad(c, field, "must be between 0 and %lld", (long long)AMOUNT_MAX);
    snprintf(field, sizeof field, "%saudience", prefix);
    if (in->audience != TW__V1__PRICE_AUDIENCE__PRICE_AUDIENCE_UNSPECIFIED &&
        in->audience != AUDIENCE_STANDARD && in->audience != AUDIENCE_STUDENT)
        billing_bad(c, field, "is not a known audience");
    if (billing_bad_since(c, before))
        return TW_ERR_VALIDATION;
    price_record *p = tw_arena_alloc(c->arena, sizeof *p);
    char *upper = tw_arena_strdup(c->arena, cur);
    if (p == NULL || upper == NULL)
        return TW_ERR_NO_MEMORY;
    for (char *u = upper; *u; u++)
        *u = (char)toupper((unsigned char)*u);
    tw__store__v1__price_record__init(p);
    p->currency = upper;
    p->amount_minor = in->amount_minor;
    p->audience = in->audience ? in->audience : AUDIENCE_STANDARD;
    p->stripe_price_id = "";
    *out = p;
    return TW_OK;
}

/* Every limit of in, each bad field reported, into p's limits. */
static tw_err check_limits(tw_billing_ctx *c, const Tw__V1__Plan *in, plan_record *p)
{
    size_t before = tw_violations_total(c->bad);
    bool seen[TW_RESOURCE_COUNT] = {false};
    if ((p->limits = tw_arena_alloc(c->arena, (in->n_limits + 1) * sizeof *p->limits)) == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0; i < in->n_limits; i++) {
        char field[64];
        const Tw__V1__UsageLimit *l = in->limits[i];
        int r = (int)l->resource;
        snprintf(field, sizeof field, "plan.limits[%zu].resource", i);
        if (r <= 0 || r >= TW_RESOURCE_COUNT)
            billing_bad(c, field, "is not a known resource");
        else if (seen[r])
            billing_bad(c, field, "is limited twice");
        else
            seen[r] = true;
        snprintf(field, sizeof field, "plan.limits[%zu].limit", i);
        if (l->limit < 0)
            billing_bad(c, field, "must not be negative");
        Tw__Store__V1__LimitRecord *rec = tw_arena_alloc(c->arena, sizeof *rec);
        if (rec == NULL)
            return TW_ERR_NO_MEMORY;
        tw__store__v1__limit_record__init(rec);
        rec->resource = l->resource;
        rec->limit = l->unlimited ? 0 : l->limit;
        rec->unlimited = l->unlimited;
        p->limits[p->n_limits++] = rec;
    }
    return billing_bad_since(c, before);
}

/* ---- Stripe's side of a plan ------------------------------------------------------------ */

/* Makes price's Stripe Price for plan p (version: the plan's price version
 * it belongs to), keyed so a retry makes it once. */
static tw_err stripe_price(tw_billing_ctx *c, const plan_record *p, price_record *price,
                           uint32_t version)
{
    char key[TW_STRIPE_IDEMPOTENCY_KEY_MAX + 1];
    snprintf(key, sizeof key, "twd-plan-%s-price-%s-%s-v%u", p->id, price->currency,
             audience_names[price->audience], version);
    tw_stripe_price_new n = {
        .product = p->stripe_product_id,
        .unit_amount = price->amount_minor,
        .currency = price->currency,
        .interval = p->interval == INTERVAL_YEAR ? "year" : "month",
        .plan_id = p->id,
        .audience = audience_names[price->audience],
    };
    tw_stripe_price made;
    tw_stripe_error e;
    tw_err err = tw_stripe_price_create(c->billing->stripe, &n, key, c->arena, &made, &e);
    if (err)
        return billing_stripe_refusal(c, err, &e, "create a price");
    price->stripe_price_id = (char *)made.id;
    return TW_OK;
}

static tw_err stripe_product(tw_billing_ctx *c, plan_record *p)
{
    char key[TW_STRIPE_IDEMPOTENCY_KEY_MAX + 1];
    snprintf(key, sizeof key, "twd-plan-%s-product", p->id);
    tw_stripe_product made;
    tw_stripe_error e;
    tw_err err = tw_stripe_product_create(c->billing->stripe, p->name, p->description, p->id, key,
                                          c->arena, &made, &e);
    if (err)
        return billing_stripe_refusal(c, err, &e, "create a product");
    p->stripe_product_id = (char *)made.id;
    for (size_t i = 0; i < p->n_prices && !err; i++)
        err = stripe_price(c, p, p->prices[i], 0);
    return err;
}

/* ---- Writes ---------------------------------------------------------------------------- */

struct create {
    tw_billing_ctx *c;
    plan_record *plan;
    const char *request_id;
    plan_record *stored;
};

static tw_err create_fn(tw_txn *t, void *ctx)
{
    struct create *w = ctx;
    tw_key k;
    billing_plan_key(&k, w->plan->id);
    tw_err err = billing_get(NULL, t, true, &k, w->c->arena, &w->stored);
    if (err == TW_OK) {
        if (w->request_id[0] != '\0' && strcmp(w->stored->request_id, w->request_id) == 0)
            return TW_OK; /* a retry: the plan it made */
        return billing_refuse(w->c, TW_ERR_ALREADY_EXISTS, "plan %s already exists", w->plan->id);
    }
    if (err != TW_ERR_NOT_FOUND)
        return err;
    w->stored = w->plan;
    return billing_put(t, &k, w->plan);
}

tw_err tw_billing_create_plan(tw_billing_ctx *c, const Tw__V1__Plan *in, const char *request_id,
                              Tw__V1__Plan **out)
{
    /* The engine saw to it that plan is set (required), that the request
     * id is a UUID and that the lists are in bounds. */
    if (strcmp(in->id, TW_FREE_PLAN) == 0)
        return billing_refuse(c, TW_ERR_ALREADY_EXISTS, "the free plan always exists");
    size_t before = tw_violations_total(c->bad);
    check_plan_id(c, "plan.id", in->id);
    tw_wellness_check_text(c->bad, "plan.name", in->name, NAME_MAX_CHARS, true);
    tw_wellness_check_text(c->bad, "plan.description", in->description, DESC_MAX_CHARS, false);
    if (in->interval != INTERVAL_MONTH && in->interval != INTERVAL_YEAR)
        billing_bad(c, "plan.interval", "must be MONTH or YEAR");
    if (in->n_prices == 0)
        billing_bad(c, "plan.prices", "must hold 1 to %d prices", PRICES_MAX);
    tw_wellness_check_labels(c->bad, "plan.features", in->features, in->n_features,
                             FEATURE_MAX_CHARS);

    plan_record *p = tw_arena_alloc(c->arena, sizeof *p);
    if (p == NULL ||
        (p->prices = tw_arena_alloc(c->arena, (in->n_prices + 1) * sizeof *p->prices)) == NULL)
        return TW_ERR_NO_MEMORY;
    price_record **prices = p->prices;
    tw__store__v1__plan_record__init(p);
    p->prices = prices;
    tw_err err;
    for (size_t i = 0; i < in->n_prices; i++) {
        char prefix[48];
        snprintf(prefix, sizeof prefix, "plan.prices[%zu].", i);
        if ((err = check_price(c, prefix, in->prices[i], &p->prices[i])) == TW_ERR_VALIDATION)
            continue;
        if (err)
            return err;
        if (i == 0 && p->prices[0]->audience != AUDIENCE_STANDARD)
            billing_bad(c, "plan.prices[0].audience",
                        "must be STANDARD: the first price is the plan's own");
        for (size_t j = 0; j < i; j++)
            if (p->prices[j] != NULL &&
                strcmp(p->prices[j]->currency, p->prices[i]->currency) == 0 &&
                p->prices[j]->audience == p->prices[i]->audience) {
                prefix[strlen(prefix) - 1] = '\0'; /* "plan.prices[i]" */
                billing_bad(c, prefix, "repeats the currency and audience of prices[%zu]", j);
                break;
            }
    }
    p->n_prices = in->n_prices;
    if ((err = check_limits(c, in, p)) && err != TW_ERR_VALIDATION)
        return err;
    if ((err = billing_bad_since(c, before)))
        return err;
    p->id = in->id;
    p->name = in->name;
    p->description = in->description;
    p->interval = in->interval;
    p->features = in->features;
    p->n_features = in->n_features;
    p->active = true;
    p->create_unix_ms = p->update_unix_ms = c->now_ms;
    p->request_id = (char *)request_id;
    p->stripe_product_id = "";
    p->price_request_id = "";
    /* Refused before anything is made at Stripe when the id is taken. */
    plan_record *existing;
    err = billing_plan_load(c->billing, NULL, p->id, c->arena, &existing);
    if (err == TW_OK && request_id[0] != '\0' && strcmp(existing->request_id, request_id) == 0)
        return (*out = present_plan(c->arena, existing)) ? TW_OK : TW_ERR_NO_MEMORY;
    if (err == TW_OK)
        return billing_refuse(c, TW_ERR_ALREADY_EXISTS, "plan %s already exists", p->id);
    if (err != TW_ERR_NOT_FOUND)
        return err;
    if (c->billing->stripe != NULL && (err = stripe_product(c, p)))
        return err;
    struct create w = {c, p, request_id, NULL};
    if ((err = tw_txn_run(c->billing->store, create_fn, &w)))
        return err;
    return (*out = present_plan(c->arena, w.stored)) ? TW_OK : TW_ERR_NO_MEMORY;
}

/* The fields of UpdatePlan's mask. */
enum { F_NAME = 1, F_DESCRIPTION = 2, F_FEATURES = 4, F_LIMITS = 8, F_ACTIVE = 16 };
static const tw_mask_path update_paths[] = {
    {"name", F_NAME, NULL},
    {"description", F_DESCRIPTION, NULL},
    {"features", F_FEATURES, NULL},
    {"limits", F_LIMITS, NULL},
    {"active", F_ACTIVE, NULL},
    {"id", 0, "a plan keeps its id"},
    {"prices", 0, "use SetPlanPrice"},
    {NULL, 0, NULL},
};

struct update {
    tw_billing_ctx *c;
    const Tw__V1__Plan *in;
    const plan_record *changes; /* limits, checked */
    unsigned fields;
    plan_record *stored;
};

static tw_err update_fn(tw_txn *t, void *ctx)
{
    struct update *w = ctx;
    tw_err err = billing_plan_load(w->c->billing, t, w->in->id, w->c->arena, &w->stored);
    if (err == TW_ERR_NOT_FOUND)
        return billing_refuse(w->c, err, "plan %s not found", w->in->id);
    if (err)
        return err;
    plan_record *p = w->stored;
    if ((w->fields & F_ACTIVE) && !w->in->active && strcmp(p->id, TW_FREE_PLAN) == 0)
        return billing_refuse(w->c, TW_ERR_FAILED_PRECONDITION,
                              "the free plan cannot be deactivated");
    if (w->fields & F_NAME)
        p->name = w->in->name;
    if (w->fields & F_DESCRIPTION)
        p->description = w->in->description;
    if (w->fields & F_FEATURES) {
        p->features = w->in->features;
        p->n_features = w->in->n_features;
    }
    if (w->fields & F_LIMITS) {
        p->limits = w->changes->limits;
        p->n_limits = w->changes->n_limits;
    }
    if (w->fields & F_ACTIVE)
        p->active = w->in->active;
    p->update_unix_ms = w->c->now_ms;
    tw_key k;
    billing_plan_key(&k, p->id);
    return billing_put(t, &k, p);
}

tw_err tw_billing_update_plan(tw_billing_ctx *c, const Tw__V1__Plan *in,
                              const Google__Protobuf__FieldMask *mask, Tw__V1__Plan **out)
{
    /* The engine saw to it that plan is set (required). */
    size_t before = tw_violations_total(c->bad);
    struct update w = {.c = c, .in = in};
    tw_err mask_err =
        tw_mask_parse(mask, update_paths, F_NAME | F_DESCRIPTION | F_FEATURES | F_LIMITS | F_ACTIVE,
                      "Plan", "update_mask", c->bad, &w.fields);
    check_plan_id(c, "plan.id", in->id);
    if (w.fields & F_NAME)
        tw_wellness_check_text(c->bad, "plan.name", in->name, NAME_MAX_CHARS, true);
    if (w.fields & F_DESCRIPTION)
        tw_wellness_check_text(c->bad, "plan.description", in->description, DESC_MAX_CHARS, false);
    if (w.fields & F_FEATURES)
        tw_wellness_check_labels(c->bad, "plan.features", in->features, in->n_features,
                                 FEATURE_MAX_CHARS);
    plan_record changes;
    tw__store__v1__plan_record__init(&changes);
    tw_err err = TW_OK;
    if ((w.fields & F_LIMITS) && (err = check_limits(c, in, &changes)) && err != TW_ERR_VALIDATION)
        return err;
    if (mask_err)
        return mask_err;
    if ((err = billing_bad_since(c, before)))
        return err;
    w.changes = &changes;
    if ((err = tw_txn_run(c->billing->store, update_fn, &w)))
        return err;
    return (*out = present_plan(c->arena, w.stored)) ? TW_OK : TW_ERR_NO_MEMORY;
}

struct set_price {
    tw_billing_ctx *c;
    const char *plan_id;
    price_record *price;
    const char *request_id;
    uint32_t version; /* the plan's price_version the Stripe price was made for */
    plan_record *stored;
};

/* Puts w->price into the plan at version + 1, unless a retry of the same
 * request already did. */
static tw_err set_price_fn(tw_txn *t, void *ctx)
{
    struct set_price *w = ctx;
    tw_err err = billing_plan_load(w->c->billing, t, w->plan_id, w->c->arena, &w->stored);
    if (err)
        return err;
    plan_record *p = w->stored;
    if (w->request_id[0] != '\0' && strcmp(p->price_request_id, w->request_id) == 0)
        return TW_OK;
    if (p->price_version != w->version)
        return billing_refuse(w->c, TW_ERR_CONFLICT,
                              "the plan's prices changed meanwhile: read it and try again");
    size_t i = 0;
    while (i < p->n_prices && !(strcmp(p->prices[i]->currency, w->price->currency) == 0 &&
                                p->prices[i]->audience == w->price->audience))
        i++;
    if (i == p->n_prices) {
        if (p->n_prices == PRICES_MAX)
            return billing_bad(w->c, "price", "the plan has %d prices already", PRICES_MAX);
        price_record **grown = tw_arena_alloc(w->c->arena, (p->n_prices + 1) * sizeof *grown);
        if (grown == NULL)
            return TW_ERR_NO_MEMORY;
        memcpy(grown, p->prices, p->n_prices * sizeof *grown);
        p->prices = grown;
        p->n_prices++;
    }
    p->prices[i] = w->price;
    p->price_version++;
    p->price_request_id = (char *)w->request_id;
    p->update_unix_ms = w->c->now_ms;
    tw_key k;
    billing_plan_key(&k, p->id);
    if ((err = billing_put(t, &k, p)))
        return err;
    /* Stripe's subscriptions of the plan move to the new price at renewal. */
    if (w->c->billing->stripe != NULL && w->price->stripe_price_id[0] != '\0')
        err = billing_enqueue(t, TW_BILLING_JOB_REPRICE, NULL, p->id, w->c->now_ms, w->c->now_ms);
    return err;
}

tw_err tw_billing_set_plan_price(tw_billing_ctx *c, const char *plan_id,
                                 const Tw__V1__PlanPrice *in, const char *request_id,
                                 Tw__V1__Plan **out)
{
    /* The engine saw to it that plan_id and price are set. */
    size_t before = tw_violations_total(c->bad);
    check_plan_id(c, "plan_id", plan_id);
    price_record *price = NULL;
    tw_err err = check_price(c, "price.", in, &price);
    if (err && err != TW_ERR_VALIDATION)
        return err;
    if ((err = billing_bad_since(c, before)))
        return err;
    plan_record *p;
    if ((err = billing_plan_load(c->billing, NULL, plan_id, c->arena, &p)) == TW_ERR_NOT_FOUND)
        return billing_refuse(c, err, "plan %s not found", plan_id);
    if (err)
        return err;
    if (request_id[0] != '\0' && strcmp(p->price_request_id, request_id) == 0)
        return (*out = present_plan(c->arena, p)) ? TW_OK : TW_ERR_NO_MEMORY;
    if (strcmp(plan_id, TW_FREE_PLAN) == 0 && price->amount_minor != 0)
        return billing_bad(c, "price.amount_minor", "must be 0 on the free plan");
    if (c->billing->stripe != NULL && strcmp(plan_id, TW_FREE_PLAN) != 0 &&
        (err = stripe_price(c, p, price, p->price_version + 1)))
        return err;
    struct set_price w = {c, plan_id, price, request_id, p->price_version, NULL};
    if ((err = tw_txn_run(c->billing->store, set_price_fn, &w)))
        return err;
    return (*out = present_plan(c->arena, w.stored)) ? TW_OK : TW_ERR_NO_MEMORY;
}
