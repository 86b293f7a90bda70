/* Unit tests for server/auth/keyring.c: the first key is made once and
 * kept; rotation keeps the previous key verifying for the access-token
 * lifetime and no longer; the ring survives a reopen. */
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
    char kid[TW_JWT_KID_SIZE];
    ck_assert_int_eq(tw_keyring_rotate(ring, now, kid), TW_OK);
    tw_keyring_current(ring, &current);
    ck_assert_str_eq(current.kid, kid);
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

START_TEST(many_rotations_keep_a_bounded_ring)
{
    tw_keyring *ring;
    ck_assert_int_eq(tw_keyring_open(fx.store, &ring), TW_OK);
    int64_t now = tw_wall_ms();
    char first[TW_JWT_KID_SIZE], last[TW_JWT_KID_SIZE];
    ck_assert_int_eq(tw_keyring_rotate(ring, now, first), TW_OK);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(tw_keyring_rotate(ring, now + i, last), TW_OK);
    tw_jwt_key found;
    ck_assert(!tw_keyring_lookup_at(ring, first, now + 20, &found));
    ck_assert(tw_keyring_lookup_at(ring, last, now + 20, &found));
    /* Offline rotation (twd keys rotate with no server) writes the same ring. */
    char offline[TW_JWT_KID_SIZE];
    ck_assert_int_eq(tw_keys_rotate_in_store(fx.store, now + 30, offline), TW_OK);
    tw_keyring_free(ring);
    ck_assert_int_eq(tw_keyring_open(fx.store, &ring), TW_OK);
    tw_keyring_current(ring, &found);
    ck_assert_str_eq(found.kid, offline);
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
    tcase_add_test(tc, many_rotations_keep_a_bounded_ring);
    suite_add_tcase(s, tc);
    return s;
}
