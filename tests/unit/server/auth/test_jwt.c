/* Unit tests for server/auth/jwt.c: round trip, rotation, and one test per
 * attack the verifier must refuse. */
#include "tw_check.h"

#include "auth/jwt.h"
#include "tw_base64.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1800000000

static const tw_jwt_key current = {"key-2", {1, 2, 3, 4, 5, 6, 7, 8}};
static const tw_jwt_key previous = {"key-1", {9, 9, 9, 9}};

/* Knows the current and previous keys, as after one rotation. */
static bool lookup(void *ctx, const char *kid, tw_jwt_key *out)
{
    const tw_jwt_key *keys[] = {&current, &previous};
    for (size_t i = 0; i < 2; i++) {
        if (strcmp(keys[i]->kid, kid) == 0) {
            *out = *keys[i];
            return true;
        }
    }
    return false;
}

static tw_jwt_claims valid_claims(void)
{
    tw_jwt_claims c = {.iat = NOW - 10, .exp = NOW + 900};
    strcpy(c.sub, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    strcpy(c.sid, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c");
    strcpy(c.jti, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5d");
    return c;
}

static char *b64url(const char *text)
{
    char *out = malloc(tw_base64_encoded_len(strlen(text)) + 1);
    tw_base64_encode(TW_BASE64_URL, (const uint8_t *)text, strlen(text), out);
    return out;
}

/* Builds header.payload.signature from JSON texts, signed with key (or with
 * an empty signature when key is NULL), as an attacker would. */
static char *forge(const char *header, const char *payload, const tw_jwt_key *key)
{
    char *h = b64url(header), *p = b64url(payload);
    char *token = malloc(strlen(h) + strlen(p) + 64);
    sprintf(token, "%s.%s", h, p);
    free(h);
    free(p);
    strcat(token, ".");
    if (key != NULL) {
        uint8_t sig[32];
        unsigned int len = sizeof sig;
        HMAC(EVP_sha256(), key->secret, sizeof key->secret, (const unsigned char *)token,
             strlen(token) - 1, sig, &len);
        tw_base64_encode(TW_BASE64_URL, sig, sizeof sig, token + strlen(token));
    }
    return token;
}

static const char *good_header = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"key-2\"}";
static const char *good_payload =
    "{\"iss\":\"timeandwellness\",\"aud\":\"tw-app\",\"sub\":\"u1\",\"sid\":\"s1\","
    "\"jti\":\"j1\",\"iat\":1799999990,\"exp\":1800000900}";

static tw_err verify(const char *token)
{
    tw_jwt_claims claims;
    return tw_jwt_verify(token, lookup, NULL, NOW, &claims);
}

static void assert_forged_refused(const char *header, const char *payload, const tw_jwt_key *key,
                                  tw_err expected)
{
    char *token = forge(header, payload, key);
    ck_assert_msg(verify(token) == expected, "%s.%s: got %s", header, payload,
                  tw_err_name(verify(token)));
    free(token);
}

START_TEST(signed_tokens_verify_and_carry_claims)
{
    tw_jwt_claims in = valid_claims(), out;
    char *token;
    ck_assert_int_eq(tw_jwt_sign(&current, &in, &token), TW_OK);
    ck_assert_int_eq(tw_jwt_verify(token, lookup, NULL, NOW, &out), TW_OK);
    ck_assert_str_eq(out.sub, in.sub);
    ck_assert_str_eq(out.sid, in.sid);
    ck_assert_str_eq(out.jti, in.jti);
    ck_assert_int_eq(out.exp, in.exp);
    free(token);
    /* Our own forge agrees with the signer, so the attack tests below mean something. */
    char *forged = forge(good_header, good_payload, &current);
    ck_assert_int_eq(verify(forged), TW_OK);
    free(forged);
}
END_TEST

START_TEST(previous_key_still_verifies_after_rotation)
{
    tw_jwt_claims in = valid_claims();
    char *token;
    ck_assert_int_eq(tw_jwt_sign(&previous, &in, &token), TW_OK);
    ck_assert_int_eq(verify(token), TW_OK);
    free(token);
}
END_TEST

START_TEST(alg_none_is_refused)
{
    assert_forged_refused("{\"alg\":\"none\",\"kid\":\"key-2\"}", good_payload, NULL,
                          TW_ERR_AUTH_INVALID_TOKEN);
    assert_forged_refused("{\"alg\":\"none\",\"kid\":\"key-2\"}", good_payload, &current,
                          TW_ERR_AUTH_INVALID_TOKEN);
}
END_TEST

START_TEST(other_algorithms_are_refused)
{
    const char *headers[] = {"{\"alg\":\"HS512\",\"kid\":\"key-2\"}",
                             "{\"alg\":\"RS256\",\"kid\":\"key-2\"}",
                             "{\"alg\":\"hs256\",\"kid\":\"key-2\"}", "{\"kid\":\"key-2\"}",
                             "{\"alg\":[\"HS256\"],\"kid\":\"key-2\"}"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        assert_forged_refused(headers[i], good_payload, &current, TW_ERR_AUTH_INVALID_TOKEN);
}
END_TEST

START_TEST(bad_signature_is_refused)
{
    char *token = forge(good_header, good_payload, &current);
    char *last = token + strlen(token) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify(token), TW_ERR_AUTH_INVALID_TOKEN);
    free(token);
    tw_jwt_key stranger = {"key-2", {42}};
    assert_forged_refused(good_header, good_payload, &stranger, TW_ERR_AUTH_INVALID_TOKEN);
    assert_forged_refused(good_header, good_payload, NULL, TW_ERR_AUTH_INVALID_TOKEN);
}
END_TEST

START_TEST(missing_or_expired_exp_is_refused)
{
    assert_forged_refused(good_header,
                          "{\"iss\":\"timeandwellness\",\"aud\":\"tw-app\",\"sub\":\"u1\","
                          "\"sid\":\"s1\",\"jti\":\"j1\",\"iat\":1799999990}",
                          &current, TW_ERR_AUTH_INVALID_TOKEN);
    assert_forged_refused(good_header,
                          "{\"iss\":\"timeandwellness\",\"aud\":\"tw-app\",\"sub\":\"u1\","
                          "\"sid\":\"s1\",\"jti\":\"j1\",\"iat\":1799999000,\"exp\":1800000000}",
                          &current, TW_ERR_AUTH_EXPIRED_TOKEN);
    assert_forged_refused(good_header,
                          "{\"iss\":\"timeandwellness\",\"aud\":\"tw-app\",\"sub\":\"u1\","
                          "\"sid\":\"s1\",\"jti\":\"j1\",\"iat\":1799999000,\"exp\":\"never\"}",
                          &current, TW_ERR_AUTH_INVALID_TOKEN);
}
END_TEST

START_TEST(wrong_issuer_or_audience_is_refused)
{
    assert_forged_refused(good_header,
                          "{\"iss\":\"evil\",\"aud\":\"tw-app\",\"sub\":\"u1\",\"sid\":\"s1\","
                          "\"jti\":\"j1\",\"iat\":1799999990,\"exp\":1800000900}",
                          &current, TW_ERR_AUTH_INVALID_TOKEN);
    assert_forged_refused(good_header,
                          "{\"iss\":\"timeandwellness\",\"aud\":\"other-app\",\"sub\":\"u1\","
                          "\"sid\":\"s1\",\"jti\":\"j1\",\"iat\":1799999990,\"exp\":1800000900}",
                          &current, TW_ERR_AUTH_INVALID_TOKEN);
}
END_TEST

START_TEST(unknown_kid_is_refused)
{
    tw_jwt_key retired = current;
    strcpy(retired.kid, "key-0");
    assert_forged_refused("{\"alg\":\"HS256\",\"kid\":\"key-0\"}", good_payload, &retired,
                          TW_ERR_AUTH_INVALID_TOKEN);
    assert_forged_refused("{\"alg\":\"HS256\"}", good_payload, &current, TW_ERR_AUTH_INVALID_TOKEN);
}
END_TEST

START_TEST(malformed_tokens_are_refused)
{
    const char *bad[] = {
        "", "abc", "a.b", "a.b.c.d", "..", "!!!.???.###", "eyJhbGciOiJIUzI1NiJ9..sig"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(verify(bad[i]) == TW_ERR_AUTH_INVALID_TOKEN, "accepted \"%s\"", bad[i]);
    assert_forged_refused("[1,2]", good_payload, &current, TW_ERR_AUTH_INVALID_TOKEN);
    assert_forged_refused(good_header, "not json", &current, TW_ERR_AUTH_INVALID_TOKEN);
    assert_forged_refused("{\"alg\":\"HS256\",\"kid\":\"key-2\",\"crit\":[\"exp\"]}", good_payload,
                          &current, TW_ERR_AUTH_INVALID_TOKEN);
    char *huge = malloc(10000);
    memset(huge, 'a', 9999);
    huge[9999] = '\0';
    huge[100] = huge[200] = '.';
    ck_assert_int_eq(verify(huge), TW_ERR_AUTH_INVALID_TOKEN);
    free(huge);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc = tcase_create("verify");
    tcase_add_test(tc, signed_tokens_verify_and_carry_claims);
    tcase_add_test(tc, previous_key_still_verifies_after_rotation);
    tcase_add_test(tc, alg_none_is_refused);
    tcase_add_test(tc, other_algorithms_are_refused);
    tcase_add_test(tc, bad_signature_is_refused);
    tcase_add_test(tc, missing_or_expired_exp_is_refused);
    tcase_add_test(tc, wrong_issuer_or_audience_is_refused);
    tcase_add_test(tc, unknown_kid_is_refused);
    tcase_add_test(tc, malformed_tokens_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
