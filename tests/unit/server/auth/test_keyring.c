/* Unit tests for server/auth/keyring.c: the first key is made once and
 * kept; rotation keeps every replaced key verifying for the access-token
 * lifetime (plus skew) and no longer, however often it runs; a full ring
 * refuses a rotation rather than drop a key; the ring survives a reopen. */
#include "tw_check.h"

#include "auth/keyring.h"
#include "store_fixture.h"
#include "tw_time.h"

#include <stdlib.h>
#include <string.h>

START_TEST(first_key_is_made_once_and_kept)
{
    tw_keyring *a, *b;
    ck_assert_int_eq(tw_keyring_open(fx.store, &a), TW_OK);
    ck_assert_int_eq(tw_keyring_open(fx.store, &b), TW_OK);
    tw_jwt_key ka, kb;
    tw_keyring_current(a, &ka);
    tw_keyring_current(b, &kb);
    ck_assert_str_eq(ka.kid, kb.kid);
    ck_assert_mem_eq(ka.secret, kb.secret, TW_JWT_SECRET_BYTES);
    tw_keyring_free(a);
    tw_keyring_free(b);
}
END_TEST

START_TEST(rotation_keeps_the_previous_key_for_the_token_lifetime)
{
    tw_keyring *ring;
    ck_assert_int_eq(tw_keyring_open(fx.store, &ring), TW_OK);
    tw_jwt_key old, current, found;
    tw_keyring_current(ring, &old);
    int64_t now = tw_wall_ms();
    tw_key_rotation made;
    ck_assert_int_eq(tw_keyring_rotate(ring, now, &made), TW_OK);
    tw_keyring_current(ring, &current);
    ck_assert_str_eq(current.kid, made.kid);
    ck_assert_str_ne(current.kid, old.kid);
    ck_assert(tw_keyring_lookup_at(ring, old.kid, now + TW_ACCESS_TOKEN_TTL_S * 1000, &found));
    ck_assert_mem_eq(found.secret, old.secret, TW_JWT_SECRET_BYTES);
    ck_assert(
        !tw_keyring_lookup_at(ring, old.kid, now + TW_ACCESS_TOKEN_TTL_S * 1000 + 60001, &found));
    ck_assert(tw_keyring_lookup_at(ring, current.kid, now + 1000ll * 86400 * 365, &found));
    ck_assert(!tw_keyring_lookup_at(ring, "no-such-kid", now, &found));

    /* A token signed before the rotation still verifies through the ring. */
    tw_jwt_claims claims = {.iat = now / 1000, .exp = now / 1000 + 900}, out;
    strcpy(claims.sub, "s");
    strcpy(claims.sid, "i");
    strcpy(claims.jti, "j");
    char *token;
    ck_assert_int_eq(tw_jwt_sign(&old, &claims, &token), TW_OK);
    ck_assert_int_eq(tw_jwt_verify(token, tw_keyring_lookup, ring, now / 1000, &out), TW_OK);
    free(token);

    /* The ring is the store's: a reopen (a restart) sees the same. */
    tw_keyring_free(ring);
    tw_store_close(fx.store);
    fx_reopen(&fx);
    ck_assert_int_eq(tw_keyring_open(fx.store, &ring), TW_OK);
    tw_keyring_current(ring, &found);
    ck_assert_str_eq(found.kid, current.kid);
    ck_assert(tw_keyring_lookup_at(ring, old.kid, now, &found));
    tw_keyring_free(ring);
}
END_TEST

/* The ring at an injected time, as the gate sees it at that time. */
struct ring_at {
    tw_keyring *ring;
    int64_t now_ms;
};

static bool lookup_at(void *ctx, const char *kid, tw_jwt_key *out)
{
    struct ring_at *at = ctx;
    return tw_keyring_lookup_at(at->ring, kid, at->now_ms, out);
}

/* Verifies token as the gate would at now_ms. */
static tw_err verify_at(tw_keyring *ring, const char *token, int64_t now_ms)
{
    struct ring_at at = {ring, now_ms};
    tw_jwt_claims out;
    return tw_jwt_verify(token, lookup_at, &at, now_ms / 1000, &out);
}

/* A 15-minute access token signed now with the ring's current key. */
static char *token_now(tw_keyring *ring, int64_t now_ms)
{
    tw_jwt_key key;
    tw_keyring_current(ring, &key);
    tw_jwt_claims claims = {.iat = now_ms / 1000, .exp = now_ms / 1000 + TW_ACCESS_TOKEN_TTL_S};
    strcpy(claims.sub, "s");
    strcpy(claims.sid, "i");
    strcpy(claims.jti, "j");
    char *token;
    ck_assert_int_eq(tw_jwt_sign(&key, &claims, &token), TW_OK);
    return token;
}

#define ROTATIONS 10

/* Issue 16, item 5: ten rotations in a minute; every token issued along the
 * way keeps verifying until its own expiry, then is refused as expired. */
START_TEST(every_token_verifies_until_it_expires_however_often_keys_rotate)
{
    tw_keyring *ring;
    ck_assert_int_eq(tw_keyring_open(fx.store, &ring), TW_OK);
    int64_t start = tw_wall_ms();
    char *tokens[ROTATIONS + 1];
    int64_t issued[ROTATIONS + 1];
    for (int i = 0; i <= ROTATIONS; i++) {
        issued[i] = start + i * 6000; /* one every 6 s */
        tokens[i] = token_now(ring, issued[i]);
        if (i < ROTATIONS)
            ck_assert_int_eq(tw_keyring_rotate(ring, issued[i] + 1, NULL), TW_OK);
    }
    /* Just after the last rotation, and again just before each token's
     * expiry: every token still verifies. */
    for (int i = 0; i <= ROTATIONS; i++) {
        ck_assert_int_eq(verify_at(ring, tokens[i], issued[ROTATIONS] + 1), TW_OK);
        int64_t last_second = issued[i] + TW_ACCESS_TOKEN_TTL_S * 1000ll - 1000;
        ck_assert_msg(verify_at(ring, tokens[i], last_second) == TW_OK,
                      "token %d refused before its expiry", i);
        ck_assert_int_eq(verify_at(ring, tokens[i], last_second + 1000), TW_ERR_AUTH_EXPIRED_TOKEN);
    }
    /* A restart (a reload from the store) keeps the whole ring. */
    tw_keyring_free(ring);
    ck_assert_int_eq(tw_keyring_open(fx.store, &ring), TW_OK);
    for (int i = 0; i <= ROTATIONS; i++) {
        ck_assert_int_eq(verify_at(ring, tokens[i], issued[ROTATIONS] + 1), TW_OK);
        free(tokens[i]);
    }
    tw_keyring_free(ring);
}
END_TEST

/* A flood of rotations fills the ring; the next is refused until the oldest
 * replaced key retires, and no key that still verifies is dropped. Offline
 * rotation (`twd keys rotate` with no twd) keeps the same rule. */
START_TEST(a_full_ring_refuses_rotation_until_its_oldest_key_retires)
{
    tw_keyring *ring;
    ck_assert_int_eq(tw_keyring_open(fx.store, &ring), TW_OK);
    int64_t start = tw_wall_ms();
    char *tokens[TW_KEYRING_MAX_KEYS];
    tw_jwt_key keys[TW_KEYRING_MAX_KEYS], found;
    for (int i = 0; i < TW_KEYRING_MAX_KEYS - 1; i++) {
        tokens[i] = token_now(ring, start + i);
        tw_keyring_current(ring, &keys[i]);
        ck_assert_int_eq(tw_keyring_rotate(ring, start + i, NULL), TW_OK);
    }
    tokens[TW_KEYRING_MAX_KEYS - 1] = token_now(ring, start + TW_KEYRING_MAX_KEYS);
    tw_keyring_current(ring, &keys[TW_KEYRING_MAX_KEYS - 1]);

    int64_t later = start + 60000;
    tw_key_rotation refused;
    ck_assert_int_eq(tw_keyring_rotate(ring, later, &refused), TW_ERR_RATE_LIMITED);
    /* The first replaced key retires TW_KEY_RETIRE_AFTER_MS after its rotation. */
    ck_assert_int_eq(refused.retry_after_ms, start + TW_KEY_RETIRE_AFTER_MS - later);
    char why[160];
    tw_key_rotation_refusal(&refused, why, sizeof why);
    ck_assert_str_eq(why, "32 signing keys still verify tokens; the oldest retires in 900 s, "
                          "then rotate again");
    ck_assert_int_eq(tw_keys_rotate_in_store(fx.store, later, NULL), TW_ERR_RATE_LIMITED);
    tw_keyring_current(ring, &found);
    ck_assert_str_eq(found.kid, keys[TW_KEYRING_MAX_KEYS - 1].kid);
    for (int i = 0; i < TW_KEYRING_MAX_KEYS; i++)
        ck_assert_int_eq(verify_at(ring, tokens[i], later), TW_OK);

    /* Once the oldest has retired its slot is free again; only it went. */
    int64_t freed = start + TW_KEY_RETIRE_AFTER_MS;
    ck_assert_int_eq(tw_keyring_rotate(ring, freed, NULL), TW_OK);
    ck_assert(!tw_keyring_lookup_at(ring, keys[0].kid, freed, &found));
    for (int i = 1; i < TW_KEYRING_MAX_KEYS; i++)
        ck_assert(tw_keyring_lookup_at(ring, keys[i].kid, freed, &found));
    ck_assert_int_eq(tw_keyring_rotate(ring, freed, NULL), TW_ERR_RATE_LIMITED);
    for (int i = 0; i < TW_KEYRING_MAX_KEYS; i++)
        free(tokens[i]);
    tw_keyring_free(ring);
}
END_TEST

START_TEST(offline_rotation_writes_the_ring_the_server_loads)
{
    tw_keyring *ring;
    ck_assert_int_eq(tw_keyring_open(fx.store, &ring), TW_OK);
    int64_t now = tw_wall_ms();
    char *token = token_now(ring, now);
    tw_keyring_free(ring);
    tw_key_rotation made;
    ck_assert_int_eq(tw_keys_rotate_in_store(fx.store, now, &made), TW_OK);
    ck_assert_int_eq(tw_keyring_open(fx.store, &ring), TW_OK);
    tw_jwt_key found;
    tw_keyring_current(ring, &found);
    ck_assert_str_eq(found.kid, made.kid);
    ck_assert_int_eq(verify_at(ring, token, now), TW_OK);
    free(token);
    tw_keyring_free(ring);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("keyring");
    TCase *tc = tcase_create("keyring");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, first_key_is_made_once_and_kept);
    tcase_add_test(tc, rotation_keeps_the_previous_key_for_the_token_lifetime);
    tcase_add_test(tc, every_token_verifies_until_it_expires_however_often_keys_rotate);
    tcase_add_test(tc, a_full_ring_refuses_rotation_until_its_oldest_key_retires);
    tcase_add_test(tc, offline_rotation_writes_the_ring_the_server_loads);
    suite_add_tcase(s, tc);
    return s;
}
