/* Unit tests for server/auth/account.c: emails, passwords (the shipped
 * common-password list), time zones, locales and names; who signs in with
 * an address once migration 2 found accounts differing only by case, and
 * what deleting them does. */
#include "tw_check.h"

#include "auth/account.h"
#include "store_fixture.h"
#include "tw_migrate.h"

#include <string.h>

static char why[200];

START_TEST(emails_are_trimmed_and_lower_cased_whole)
{
    char out[TW_EMAIL_MAX + 1];
    ck_assert(tw_email_normalise("  Ana.B@Example.COM\t", out, why, sizeof why));
    ck_assert_str_eq(out, "ana.b@example.com");
    /* Case is folded in the local part too; dots and +tags stay (what they
     * mean is up to each provider); bytes beyond ASCII are kept as they are. */
    ck_assert(tw_email_normalise("Case-X+Tag.Y@Example.com", out, why, sizeof why));
    ck_assert_str_eq(out, "case-x+tag.y@example.com");
    ck_assert(tw_email_normalise("J\xc3\x9cRGEN@\xc3\x9c.example", out, why, sizeof why));
    ck_assert_str_eq(out, "j\xc3\x9crgen@\xc3\x9c.example");
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

/* Who signs in with email, or the zero id for nobody. */
static tw_id find(const char *email)
{
    tw_id owner = {{0}};
    tw_err err = tw_account_find_by_email(fx.store, email, fx.arena, &owner);
    ck_assert_msg(err == TW_OK || err == TW_ERR_NOT_FOUND, "%s", tw_err_name(err));
    return owner;
}

#define ck_assert_finds(email, id) ck_assert_mem_eq(find(email).bytes, (id)->bytes, TW_ID_BYTES)

static tw_err release_txn(tw_txn *t, void *ctx)
{
    return tw_txn_account_release_email(t, ctx, fx.arena);
}

/* Frees user's address as DeleteAccount does. */
static void release(const tw_id *user)
{
    Tw__Store__V1__Account *account;
    ck_assert_int_eq(tw_account_load(fx.store, user, fx.arena, &account), TW_OK);
    ck_assert_int_eq(tw_txn_run(fx.store, release_txn, account), TW_OK);
}

static void count_line(void *ctx, const char *text)
{
    (void)text;
    ++*(int *)ctx;
}

/* The lines `twd migrate status` prints about collisions still open. */
static int open_collisions(void)
{
    int n = 0;
    ck_assert_int_eq(tw_store_migration_notes(fx.store, count_line, &n), TW_OK);
    return n;
}

START_TEST(colliding_accounts_sign_in_by_spelling_and_deletion_hands_the_address_on)
{
    const tw_id nobody = {{0}};
    tw_id older = tw_id_new(), newer = tw_id_new(), newest = tw_id_new();
    fx_old_account(&older, "Case-X@example.com", FX_EPOCH_MS - 3000);
    fx_old_account(&newer, "case-x@example.com", FX_EPOCH_MS - 2000);
    fx_old_account(&newest, "CASE-x@example.com", FX_EPOCH_MS - 1000);
    ck_assert_int_eq(tw_store_migrate_up(fx.store, &tw_store_migrations, NULL), TW_OK);

    /* The listed accounts by their exact address (the domain's case aside);
     * every other spelling reaches the oldest. */
    ck_assert_finds("case-x@example.com", &newer);
    ck_assert_finds(" CASE-x@Example.COM", &newest);
    ck_assert_finds("Case-X@example.com", &older);
    ck_assert_finds("CASE-X@EXAMPLE.COM", &older);
    ck_assert_finds("cASE-x@example.com", &older);
    ck_assert_int_eq(open_collisions(), 2);

    /* A listed account goes: only it leaves the list. */
    release(&newer);
    ck_assert_finds("case-x@example.com", &older);
    ck_assert_finds("CASE-x@example.com", &newest);
    ck_assert_int_eq(open_collisions(), 1);

    /* The holder goes: the oldest listed gets the address, in any spelling. */
    release(&older);
    ck_assert_finds("Case-X@example.com", &newest);
    ck_assert_finds("case-x@example.com", &newest);
    ck_assert_int_eq(open_collisions(), 0);

    release(&newest);
    ck_assert_finds("case-x@example.com", &nobody);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("account");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, emails_are_trimmed_and_lower_cased_whole);
    tcase_add_test(tc, passwords_need_eight_characters_and_not_a_common_one);
    tcase_add_test(tc, time_zones_come_from_the_tz_database);
    tcase_add_test(tc, locales_are_bcp47_shaped);
    tcase_add_test(tc, display_names);
    suite_add_tcase(s, tc);
    TCase *stored = tcase_create("stored");
    tcase_add_checked_fixture(stored, fx_setup, fx_teardown);
    tcase_add_test(stored,
                   colliding_accounts_sign_in_by_spelling_and_deletion_hands_the_address_on);
    suite_add_tcase(s, stored);
    return s;
}
