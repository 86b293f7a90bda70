/* Unit tests for server/auth/token_cache.c: a remembered token is answered
 * as tw_jwt_verify would answer it, expiry and retired keys included, and
 * nothing but a token that verified is ever remembered. */
#include "tw_check.h"

#include "auth/token_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1800000000

/* The one key the tests' ring holds; a test may change or retire it. */
static tw_jwt_key ring_key;
static bool ring_has_key;

static bool lookup(void *ctx, const char *kid, tw_jwt_key *out)
{
    (void)ctx;
    if (!ring_has_key || strcmp(kid, ring_key.kid) != 0)
        return false;
    *out = ring_key;
    return true;
}

static tw_token_cache *cache;

static void setup(void)
{
    ring_key = (tw_jwt_key){"key-1", {1, 2, 3, 4, 5, 6, 7, 8}};
    ring_has_key = true;
    ck_assert_int_eq(tw_token_cache_new(&cache), TW_OK);
}

static void teardown(void)
{
    tw_token_cache_free(cache);
}

/* A token for user number n, issued at NOW, valid for ttl_s; freed by the
 * caller. */
static char *token_for(int n, int64_t ttl_s)
{
    tw_jwt_claims c = {.iat = NOW, .exp = NOW + ttl_s};
    snprintf(c.sub, sizeof c.sub, "user-%d", n);
    snprintf(c.sid, sizeof c.sid, "session-%d", n);
    snprintf(c.jti, sizeof c.jti, "token-%d", n);
    char *token;
    ck_assert_int_eq(tw_jwt_sign(&ring_key, &c, &token), TW_OK);
    return token;
}

static tw_err verify_at(const char *token, int64_t now, tw_jwt_claims *claims)
{
    return tw_token_cache_verify(cache, token, lookup, NULL, now, claims);
}

START_TEST(a_remembered_token_gets_the_claims_it_was_verified_with)
{
    char *token = token_for(1, 900);
    tw_jwt_claims first, again;
    ck_assert_int_eq(verify_at(token, NOW, &first), TW_OK);
    ck_assert_str_eq(first.sub, "user-1");
    ck_assert_str_eq(first.kid, "key-1");
    /* The key's secret changes under the same kid, which no ring does: a
     * whole verification would now fail, so an OK proves the cache answered. */
    ring_key.secret[0] ^= 1;
    ck_assert_int_eq(verify_at(token, NOW + 1, &again), TW_OK);
    ck_assert_mem_eq(&first, &again, sizeof first);
    free(token);
}
END_TEST

START_TEST(a_remembered_token_still_expires)
{
    char *token = token_for(1, 900);
    tw_jwt_claims claims;
    ck_assert_int_eq(verify_at(token, NOW, &claims), TW_OK);
    ck_assert_int_eq(verify_at(token, NOW + 899, &claims), TW_OK);
    ck_assert_int_eq(verify_at(token, NOW + 900, &claims), TW_ERR_AUTH_EXPIRED_TOKEN);
    ck_assert_int_eq(verify_at(token, NOW + 5000, &claims), TW_ERR_AUTH_EXPIRED_TOKEN);
    free(token);
}
END_TEST

START_TEST(a_remembered_token_of_a_retired_key_is_refused)
{
    char *token = token_for(1, 900);
    tw_jwt_claims claims;
    ck_assert_int_eq(verify_at(token, NOW, &claims), TW_OK);
    ring_has_key = false; /* the ring retired it */
    ck_assert_int_eq(verify_at(token, NOW + 1, &claims), TW_ERR_AUTH_INVALID_TOKEN);
    ring_has_key = true;
    ck_assert_int_eq(verify_at(token, NOW + 2, &claims), TW_OK);
    free(token);
}
END_TEST

START_TEST(a_changed_token_is_verified_not_matched)
{
    char *token = token_for(1, 900);
    tw_jwt_claims claims;
    ck_assert_int_eq(verify_at(token, NOW, &claims), TW_OK);
    /* The same bytes but the last signature character, and a prefix. */
    char *forged = strdup(token);
    char *last = forged + strlen(forged) - 1;
    *last = *last == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify_at(forged, NOW, &claims), TW_ERR_AUTH_INVALID_TOKEN);
    forged[strlen(forged) - 1] = '\0';
    ck_assert_int_eq(verify_at(forged, NOW, &claims), TW_ERR_AUTH_INVALID_TOKEN);
    free(forged);
    /* One byte changed ahead of the signature's tail, which picks the slot:
     * the same slot and length, so only the compare tells them apart,
     * wherever the byte falls in its eight-byte word. */
    size_t len = strlen(token);
    size_t places[] = {0, 9, len / 2, len - 17};
    for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
        forged = strdup(token);
        forged[places[i]] = forged[places[i]] == 'A' ? 'B' : 'A';
        ck_assert_msg(verify_at(forged, NOW, &claims) == TW_ERR_AUTH_INVALID_TOKEN,
                      "byte %zu changed, token still matched", places[i]);
        free(forged);
    }
    free(token);
}
END_TEST

START_TEST(a_refused_token_is_not_remembered)
{
    char *token = token_for(1, 900);
    tw_jwt_claims claims;
    /* Issued too far in the future for this now: refused, not kept. */
    ck_assert_int_eq(verify_at(token, NOW - TW_JWT_IAT_SKEW_S - 1, &claims),
                     TW_ERR_AUTH_INVALID_TOKEN);
    /* Had it been kept, this changed secret would not be noticed. */
    ring_key.secret[0] ^= 1;
    ck_assert_int_eq(verify_at(token, NOW, &claims), TW_ERR_AUTH_INVALID_TOKEN);
    free(token);
}
END_TEST

START_TEST(more_tokens_than_slots_each_get_their_own_claims)
{
    enum { N = 2 * TW_TOKEN_CACHE_SLOTS };
    char **tokens = malloc(N * sizeof *tokens);
    for (int i = 0; i < N; i++)
        tokens[i] = token_for(i, 900);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            tw_jwt_claims claims;
            char want[TW_ID_TEXT_SIZE];
            snprintf(want, sizeof want, "user-%d", i);
            ck_assert_int_eq(verify_at(tokens[i], NOW, &claims), TW_OK);
            ck_assert_str_eq(claims.sub, want);
        }
    }
    for (int i = 0; i < N; i++)
        free(tokens[i]);
    free(tokens);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("token_cache");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_remembered_token_gets_the_claims_it_was_verified_with);
    tcase_add_test(tc, a_remembered_token_still_expires);
    tcase_add_test(tc, a_remembered_token_of_a_retired_key_is_refused);
    tcase_add_test(tc, a_changed_token_is_verified_not_matched);
    tcase_add_test(tc, a_refused_token_is_not_remembered);
    tcase_add_test(tc, more_tokens_than_slots_each_get_their_own_claims);
    suite_add_tcase(s, tc);
    return s;
}
