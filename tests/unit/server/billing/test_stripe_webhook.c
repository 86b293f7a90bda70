/*
 * Unit tests for server/billing/stripe_webhook.c with signatures made by
 * Stripe's own library (the stripe npm package's
 * webhooks.generateTestHeaderString, run through stripe_sign.js): genuine
 * deliveries pass, with either of two secrets and with the two signatures
 * Stripe sends while a secret is rolled; a tampered body, a wrong secret,
 * a timestamp 301 s old or ahead, a missing or malformed header and an
 * oversized body are refused with their reasons.
 */
#include "billing/stripe_webhook.h"

#include "tw_check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW      INT64_C(1717243200)
#define SECRET_A "whsec_5f8e3c1b9d2a4e6f8a0b1c2d3e4f5a6b"
#define SECRET_B "whsec_rolled_9a8b7c6d5e4f3a2b1c0d9e8f"
#define BIG      (2 * 1024 * 1024)

static const char payload[] =
    "{\"id\": \"evt_1PqRsT2eZvKYlo2C\", \"object\": \"event\", \"api_version\": "
    "\"2024-06-20\", \"created\": 1717243190, \"type\": \"invoice.paid\", \"data\": "
    "{\"object\": {\"id\": \"in_1PqRs\", \"object\": \"invoice\", \"customer_name\": "
    "\"Zo\\u00eb Caf\\u00e9\", \"amount_paid\": 999}}}";

/* The cases signed by Stripe's library, in this order. */
enum { GOOD_A, GOOD_B, OLD_300, OLD_301, AHEAD_300, AHEAD_301, HUGE, UTF8, N_CASES };
static char *headers[N_CASES];
static char *huge;
static const char utf8_payload[] = "{\"name\": \"Zoë Café — ünïcödé ✓\"}";

/* Runs stripe_sign.js on the cases and keeps the headers it prints. */
static void sign_all(void)
{
    huge = malloc(BIG + 1);
    ck_assert_ptr_nonnull(huge);
    memset(huge, 'x', BIG);
    huge[BIG] = '\0';
    struct {
        const char *payload, *secret;
        int64_t t;
    } cases[N_CASES] = {
        [GOOD_A] = {payload, SECRET_A, NOW},
        [GOOD_B] = {payload, SECRET_B, NOW},
        [OLD_300] = {payload, SECRET_A, NOW - 300},
        [OLD_301] = {payload, SECRET_A, NOW - 301},
        [AHEAD_300] = {payload, SECRET_A, NOW + 300},
        [AHEAD_301] = {payload, SECRET_A, NOW + 301},
        [HUGE] = {huge, SECRET_A, NOW},
        [UTF8] = {utf8_payload, SECRET_A, NOW},
    };
    json_t *list = json_array();
    for (int i = 0; i < N_CASES; i++)
        json_array_append_new(list,
                              json_pack("{s:s, s:s, s:I}", "payload", cases[i].payload, "secret",
                                        cases[i].secret, "timestamp", (json_int_t)cases[i].t));
    char input[] = "/tmp/tw-stripe-sign-XXXXXX";
    int fd = mkstemp(input);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_int_eq(json_dumpf(list, f, JSON_COMPACT), 0);
    fclose(f);
    json_decref(list);

    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' < '%s'", TW_NODE, TW_STRIPE_SIGN_JS, TW_NODE_MODULES,
             input);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    json_error_t jerr;
    json_t *out = json_loadf(p, 0, &jerr);
    ck_assert_int_eq(pclose(p), 0);
    unlink(input);
    ck_assert_msg(json_is_array(out) && json_array_size(out) == N_CASES, "stripe_sign.js: %s",
                  jerr.text);
    for (int i = 0; i < N_CASES; i++) {
        headers[i] = strdup(json_string_value(json_array_get(out, i)));
        ck_assert(strncmp(headers[i], "t=", 2) == 0);
    }
    json_decref(out);
}

static void forget_all(void)
{
    for (int i = 0; i < N_CASES; i++)
        free(headers[i]);
    free(huge);
}

static tw_stripe_webhook_config config(const char *a, const char *b)
{
    return (tw_stripe_webhook_config){.secrets = {a, b}};
}

static char why[256];

static tw_err verify(const tw_stripe_webhook_config *cfg, const char *header, const char *body)
{
    why[0] = '\0';
    tw_err err = tw_stripe_webhook_verify(cfg, header, body, strlen(body), NOW, why, sizeof why);
    /* What a refusal says is for the log: never a secret or a signature. */
    ck_assert_ptr_null(strstr(why, "whsec"));
    ck_assert_ptr_null(strstr(why, strstr(headers[GOOD_A], "v1=") + 3));
    return err;
}

/* The v1=... part of a header. */
static const char *v1_of(const char *header)
{
    const char *v = strstr(header, ",v1=");
    ck_assert_ptr_nonnull(v);
    return v + 1;
}

START_TEST(genuine_deliveries_pass)
{
    tw_stripe_webhook_config a = config(SECRET_A, NULL);
    ck_assert_int_eq(verify(&a, headers[GOOD_A], payload), TW_OK);
    ck_assert_int_eq(verify(&a, headers[UTF8], utf8_payload), TW_OK);
    /* Either of two configured secrets. */
    tw_stripe_webhook_config both = config(SECRET_A, SECRET_B);
    ck_assert_int_eq(verify(&both, headers[GOOD_A], payload), TW_OK);
    ck_assert_int_eq(verify(&both, headers[GOOD_B], payload), TW_OK);
    tw_stripe_webhook_config b_second = config("", SECRET_B);
    ck_assert_int_eq(verify(&b_second, headers[GOOD_B], payload), TW_OK);
}
END_TEST

START_TEST(while_a_secret_rolls_any_matching_v1_is_accepted)
{
    /* Stripe signs with the old and the new secret while a roll lasts:
     * one header, two v1 entries (and perhaps a v0, which is ignored). */
    char rolled[512];
    snprintf(rolled, sizeof rolled, "%s,%s,v0=6ffbb59b2300aae63f272406069a9788598b792a",
             headers[GOOD_A], v1_of(headers[GOOD_B]));
    tw_stripe_webhook_config only_new = config(SECRET_B, NULL);
    ck_assert_int_eq(verify(&only_new, rolled, payload), TW_OK);
    tw_stripe_webhook_config only_old = config(SECRET_A, NULL);
    ck_assert_int_eq(verify(&only_old, rolled, payload), TW_OK);
    tw_stripe_webhook_config neither = config("whsec_someone_else", NULL);
    ck_assert_int_eq(verify(&neither, rolled, payload), TW_ERR_WEBHOOK_BAD_SIGNATURE);
    ck_assert_ptr_nonnull(strstr(why, "2 tried"));
}
END_TEST

START_TEST(a_tampered_body_is_refused)
{
    tw_stripe_webhook_config a = config(SECRET_A, NULL);
    char changed[sizeof payload];
    memcpy(changed, payload, sizeof payload);
    char *amount = strstr(changed, "999");
    amount[0] = '1';
    ck_assert_int_eq(verify(&a, headers[GOOD_A], changed), TW_ERR_WEBHOOK_BAD_SIGNATURE);
    char longer[sizeof payload + 1];
    snprintf(longer, sizeof longer, "%s\n", payload);
    ck_assert_int_eq(verify(&a, headers[GOOD_A], longer), TW_ERR_WEBHOOK_BAD_SIGNATURE);
    char shorter[sizeof payload];
    memcpy(shorter, payload, sizeof payload - 2);
    shorter[sizeof payload - 2] = '\0';
    ck_assert_int_eq(verify(&a, headers[GOOD_A], shorter), TW_ERR_WEBHOOK_BAD_SIGNATURE);
    ck_assert_int_eq(verify(&a, headers[GOOD_A], ""), TW_ERR_WEBHOOK_BAD_SIGNATURE);
    /* The same signature with another timestamp is another signed text. */
    char moved[512];
    snprintf(moved, sizeof moved, "t=%lld,%s", (long long)NOW - 1, v1_of(headers[GOOD_A]));
    ck_assert_int_eq(verify(&a, moved, payload), TW_ERR_WEBHOOK_BAD_SIGNATURE);
}
END_TEST

START_TEST(a_wrong_secret_is_refused)
{
    tw_stripe_webhook_config b = config(SECRET_B, NULL);
    ck_assert_int_eq(verify(&b, headers[GOOD_A], payload), TW_ERR_WEBHOOK_BAD_SIGNATURE);
    ck_assert_ptr_nonnull(strstr(why, "no v1 signature matches"));
    /* The whole "whsec_..." string is the key, prefix included. */
    tw_stripe_webhook_config bare = config(SECRET_A + strlen("whsec_"), NULL);
    ck_assert_int_eq(verify(&bare, headers[GOOD_A], payload), TW_ERR_WEBHOOK_BAD_SIGNATURE);
    tw_stripe_webhook_config none = config(NULL, "");
    ck_assert_int_eq(verify(&none, headers[GOOD_A], payload), TW_ERR_WEBHOOK_BAD_SIGNATURE);
    ck_assert_ptr_nonnull(strstr(why, "no webhook signing secret"));
}
END_TEST

START_TEST(the_timestamp_must_be_within_300_s_either_way)
{
    tw_stripe_webhook_config a = config(SECRET_A, NULL);
    ck_assert_int_eq(verify(&a, headers[OLD_300], payload), TW_OK);
    ck_assert_int_eq(verify(&a, headers[AHEAD_300], payload), TW_OK);
    ck_assert_int_eq(verify(&a, headers[OLD_301], payload), TW_ERR_WEBHOOK_STALE);
    ck_assert_ptr_nonnull(strstr(why, "301 s behind"));
    ck_assert_int_eq(verify(&a, headers[AHEAD_301], payload), TW_ERR_WEBHOOK_STALE);
    ck_assert_ptr_nonnull(strstr(why, "301 s ahead"));
    /* A tolerance of our own choosing. */
    tw_stripe_webhook_config strict = {.secrets = {SECRET_A, NULL}, .tolerance_s = 60};
    ck_assert_int_eq(verify(&strict, headers[OLD_300], payload), TW_ERR_WEBHOOK_STALE);
    ck_assert_int_eq(verify(&strict, headers[GOOD_A], payload), TW_OK);
}
END_TEST

START_TEST(a_missing_or_malformed_header_is_refused)
{
    tw_stripe_webhook_config a = config(SECRET_A, NULL);
    ck_assert_int_eq(verify(&a, NULL, payload), TW_ERR_WEBHOOK_BAD_SIGNATURE);
    ck_assert_ptr_nonnull(strstr(why, "no Stripe-Signature"));
    ck_assert_int_eq(verify(&a, "", payload), TW_ERR_WEBHOOK_BAD_SIGNATURE);
    const char *v1 = v1_of(headers[GOOD_A]);
    char h[4096];
    /* Each: what comes before the genuine v1=..., and after it. */
    const char *around[][2] = {
        {"", ""},       /* no t at all */
        {"t=,", ""},    /* an empty t */
        {"t=17x,", ""}, /* not digits */
        {"t=-5,", ""},  /* not digits either */
        {"t=1717243200,t=1717243200,", ""},
        {"t=1717243200,,", ""},
        {"t 1717243200,", ""},
        {"=1717243200,", ""},
        {"t=1717243200,", ","},
        {"t=1717243200123456,", ""}, /* more digits than any time in seconds */
    };
    for (size_t i = 0; i < sizeof around / sizeof *around; i++) {
        snprintf(h, sizeof h, "%s%s%s", around[i][0], v1, around[i][1]);
        ck_assert_msg(verify(&a, h, payload) == TW_ERR_WEBHOOK_BAD_SIGNATURE, "%s", h);
    }
    /* A timestamp and no v1: nothing to check. */
    const char *no_v1[] = {
        "t=1717243200",
        "t=1717243200,v0=04339dc4f01d6541e8d3b7e4bd93cd2d4f680ccb28592270900b08e49cc09e57",
        "t=1717243200,v1=zz",
        "t=1717243200,v1=04339dc4f01d6541e8d3b7e4bd93cd2d",
        "garbage",
    };
    for (size_t i = 0; i < sizeof no_v1 / sizeof *no_v1; i++)
        ck_assert_msg(verify(&a, no_v1[i], payload) == TW_ERR_WEBHOOK_BAD_SIGNATURE, "%s",
                      no_v1[i]);
    /* A header too long to be Stripe's, even with the right signature in it. */
    int n = snprintf(h, sizeof h, "%s", headers[GOOD_A]);
    while (n < TW_STRIPE_WEBHOOK_HEADER_MAX + 10)
        n += snprintf(h + n, sizeof h - (size_t)n, ",v0=0");
    ck_assert_int_eq(verify(&a, h, payload), TW_ERR_WEBHOOK_BAD_SIGNATURE);
    ck_assert_ptr_nonnull(strstr(why, "longer than"));
}
END_TEST

START_TEST(an_oversized_body_is_refused_even_when_signed)
{
    tw_stripe_webhook_config a = config(SECRET_A, NULL);
    ck_assert_int_eq(verify(&a, headers[HUGE], huge), TW_ERR_TOO_LARGE);
    ck_assert_ptr_nonnull(strstr(why, "2097152 bytes"));
    /* Within a larger limit, the same delivery is genuine. */
    tw_stripe_webhook_config roomy = {.secrets = {SECRET_A, NULL}, .max_body_bytes = BIG};
    ck_assert_int_eq(verify(&roomy, headers[HUGE], huge), TW_OK);
    tw_stripe_webhook_config tiny = {.secrets = {SECRET_A, NULL}, .max_body_bytes = 16};
    ck_assert_int_eq(verify(&tiny, headers[GOOD_A], payload), TW_ERR_TOO_LARGE);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("stripe_webhook");
    TCase *tc = tcase_create("signatures");
    tcase_add_unchecked_fixture(tc, sign_all, forget_all);
    tcase_add_test(tc, genuine_deliveries_pass);
    tcase_add_test(tc, while_a_secret_rolls_any_matching_v1_is_accepted);
    tcase_add_test(tc, a_tampered_body_is_refused);
    tcase_add_test(tc, a_wrong_secret_is_refused);
    tcase_add_test(tc, the_timestamp_must_be_within_300_s_either_way);
    tcase_add_test(tc, a_missing_or_malformed_header_is_refused);
    tcase_add_test(tc, an_oversized_body_is_refused_even_when_signed);
    suite_add_tcase(s, tc);
    return s;
}
