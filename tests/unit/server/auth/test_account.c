/* Unit tests for server/auth/account.c: emails, passwords (the shipped
 * common-password list), time zones, locales and names. */
#include "tw_check.h"

#include "auth/account.h"

#include <string.h>

static char why[200];

START_TEST(emails_are_trimmed_with_the_domain_lower_cased)
{
    char out[TW_EMAIL_MAX + 1];
    ck_assert(tw_email_normalise("  Ana.B@Example.COM\t", out, why, sizeof why));
    ck_assert_str_eq(out, "Ana.B@example.com");
    const char *bad[] = {"",
                         "   ",
                         "ana",
                         "@example.com",
                         "ana@",
                         "a@b@example.com",
                         "ana@example",
                         "ana@.example.com",
                         "ana@example.com.",
                         "a na@x.io",
                         "ana@exa..mple.com"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!tw_email_normalise(bad[i], out, why, sizeof why), "%s", bad[i]);
    char longest[300];
    memset(longest, 'a', 250);
    strcpy(longest + 250, "@x.io");
    ck_assert(!tw_email_normalise(longest, out, why, sizeof why));
}
END_TEST

START_TEST(passwords_need_eight_characters_and_not_a_common_one)
{
    ck_assert(tw_password_acceptable("correct horse", why, sizeof why));
    ck_assert(!tw_password_acceptable("1234567", why, sizeof why));
    ck_assert(tw_password_acceptable("日本語のパスワド", why, sizeof why)); /* 8 characters */
    ck_assert(!tw_password_acceptable("日本語のパスワ", why, sizeof why));
    /* From the shipped list, in any ASCII case. */
    ck_assert(tw_password_is_common("password"));
    ck_assert(tw_password_is_common("PASSWORD1"));
    ck_assert(tw_password_is_common("iloveyou"));
    ck_assert(tw_password_is_common("12345678"));
    ck_assert(!tw_password_acceptable("qwertyuiop", why, sizeof why));
    ck_assert_ptr_nonnull(strstr(why, "common"));
    ck_assert(!tw_password_is_common("#!comment: This list has been compiled by Solar Designer"));
    ck_assert(!tw_password_is_common("a very unusual passphrase"));
}
END_TEST

START_TEST(time_zones_come_from_the_tz_database)
{
    const char *good[] = {"UTC", "Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT+5"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(tw_time_zone_valid(good[i], why, sizeof why), "%s: %s", good[i], why);
    const char *bad[] = {"",
                         "Mars/Base",
                         "../../../etc/passwd",
                         "/etc/localtime",
                         "America",
                         "Europe//Paris",
                         "Europe/Paris/",
                         "Europe\\Paris",
                         "Europe/Paris;"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!tw_time_zone_valid(bad[i], why, sizeof why), "%s", bad[i]);
}
END_TEST

START_TEST(locales_are_bcp47_shaped)
{
    const char *good[] = {"en", "pt-BR", "zh-Hant-TW", "es-419", "ast"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(tw_locale_valid(good[i], why, sizeof why), "%s", good[i]);
    const char *bad[] = {"", "e", "english", "en_US", "en-", "en--US", "en-toolongsubtag"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!tw_locale_valid(bad[i], why, sizeof why), "%s", bad[i]);
}
END_TEST

START_TEST(display_names)
{
    ck_assert(tw_display_name_valid("Ana", false, why, sizeof why));
    ck_assert(!tw_display_name_valid("  ", false, why, sizeof why));
    ck_assert(tw_display_name_valid("", true, why, sizeof why));
    ck_assert(!tw_display_name_valid("tab\there", false, why, sizeof why));
    char name[400];
    memset(name, 0, sizeof name);
    for (int i = 0; i < 100; i++)
        strcat(name, "é");
    ck_assert(tw_display_name_valid(name, false, why, sizeof why));
    strcat(name, "é");
    ck_assert(!tw_display_name_valid(name, false, why, sizeof why));
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("account");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, emails_are_trimmed_with_the_domain_lower_cased);
    tcase_add_test(tc, passwords_need_eight_characters_and_not_a_common_one);
    tcase_add_test(tc, time_zones_come_from_the_tz_database);
    tcase_add_test(tc, locales_are_bcp47_shaped);
    tcase_add_test(tc, display_names);
    suite_add_tcase(s, tc);
    return s;
}
