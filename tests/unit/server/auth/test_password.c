/* Unit tests for server/auth/password.c: scrypt PHC strings. */
#include "tw_check.h"

#include "auth/password.h"

#include <stdlib.h>
#include <string.h>

/* Cheap parameters for most tests; one test runs the real cost. */
static const tw_password_cost cheap = {10, 8, 1};

START_TEST(hash_then_verify)
{
    char *stored;
    ck_assert_int_eq(tw_password_hash("correct horse", cheap, &stored), TW_OK);
    ck_assert_ptr_nonnull(strstr(stored, "$scrypt$ln=10,r=8,p=1$"));
    bool match, weaker;
    ck_assert_int_eq(tw_password_verify("correct horse", stored, cheap, &match, &weaker), TW_OK);
    ck_assert(match);
    ck_assert(!weaker);
    ck_assert_int_eq(tw_password_verify("correct horsf", stored, cheap, &match, &weaker), TW_OK);
    ck_assert(!match);
    free(stored);
}
END_TEST

START_TEST(salts_differ)
{
    char *a, *b;
    tw_password_hash("same", cheap, &a);
    tw_password_hash("same", cheap, &b);
    ck_assert_str_ne(a, b);
    free(a);
    free(b);
}
END_TEST

START_TEST(default_cost_works_with_raised_maxmem)
{
    char *stored;
    ck_assert_int_eq(tw_password_hash("correct horse", TW_PASSWORD_COST_DEFAULT, &stored), TW_OK);
    ck_assert_ptr_nonnull(strstr(stored, "$scrypt$ln=17,r=8,p=1$"));
    bool match, weaker;
    ck_assert_int_eq(
        tw_password_verify("correct horse", stored, TW_PASSWORD_COST_DEFAULT, &match, &weaker),
        TW_OK);
    ck_assert(match);
    free(stored);
}
END_TEST

START_TEST(weaker_hashes_are_reported_for_rehash)
{
    char *stored;
    tw_password_hash("pw", cheap, &stored);
    bool match, weaker;
    tw_password_cost stronger = {11, 8, 1};
    ck_assert_int_eq(tw_password_verify("pw", stored, stronger, &match, &weaker), TW_OK);
    ck_assert(match);
    ck_assert(weaker);
    free(stored);
}
END_TEST

START_TEST(foreign_strings_are_corrupt)
{
    const char *bad[] = {"",
                         "plaintext",
                         "$2b$12$abcdefghijklmnopqrstuv",
                         "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQ$short",
                         "$scrypt$ln=40,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
                         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                         "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
                         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$extra"};
    bool match, weaker;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(tw_password_verify("pw", bad[i], cheap, &match, &weaker) == TW_ERR_DB_CORRUPT,
                      "accepted %s", bad[i]);
        ck_assert(!match);
    }
}
END_TEST

/* The estimate refused sign-ins are given follows the hashes timed here
 * (cost 10 takes a few ms, not the first guess's 250). */
START_TEST(hash_time_follows_measured_hashes)
{
    char *stored;
    ck_assert_int_eq(tw_password_hash("correct horse", cheap, &stored), TW_OK);
    free(stored);
    ck_assert_int_ge(tw_password_hash_ms(), 1);
    ck_assert_int_lt(tw_password_hash_ms(), 250);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("password");
    TCase *tc = tcase_create("scrypt");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, hash_then_verify);
    tcase_add_test(tc, salts_differ);
    tcase_add_test(tc, default_cost_works_with_raised_maxmem);
    tcase_add_test(tc, weaker_hashes_are_reported_for_rehash);
    tcase_add_test(tc, foreign_strings_are_corrupt);
    tcase_add_test(tc, hash_time_follows_measured_hashes);
    suite_add_tcase(s, tc);
    return s;
}
