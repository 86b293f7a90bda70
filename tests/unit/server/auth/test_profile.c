/* Unit tests for server/auth/profile.c: the day settings every feature
 * reads from the profile, with their defaults and fallbacks. */
#include "auth/profile.h"

#include "auth/account.h"
#include "store_fixture.h"
#include "tw_check.h"

/* Stores an account for alice with zone and day-start hour. */
static void put_account(const char *zone, int hour)
{
    Tw__Store__V1__Account a = TW__STORE__V1__ACCOUNT__INIT;
    a.id = (ProtobufCBinaryData){TW_ID_BYTES, (uint8_t *)fx_alice.bytes};
    a.email = "alice@example.com";
    a.role = TW_ROLE_USER;
    a.state = TW__STORE__V1__ACCOUNT_STATE__ACCOUNT_STATE_ACTIVE;
    a.time_zone = (char *)zone;
    a.day_start_hour = hour;
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_account_put(t, &a), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
}

static tw_day_settings read_settings(void)
{
    tw_day_settings days;
    ck_assert_int_eq(tw_profile_day_settings(fx.store, &fx_alice, fx.arena, &days), TW_OK);
    return days;
}

START_TEST(no_account_means_utc_from_midnight)
{
    tw_day_settings days = read_settings();
    ck_assert_str_eq(days.time_zone, "UTC");
    ck_assert_int_eq(days.day_start_hour, 0);
}
END_TEST

START_TEST(zone_and_day_start_come_from_the_profile)
{
    put_account("America/New_York", 4);
    tw_day_settings days = read_settings();
    ck_assert_str_eq(days.time_zone, "America/New_York");
    ck_assert_int_eq(days.day_start_hour, 4);
    /* A zone the system does not know (any more) reads as UTC. */
    put_account("Mars/Olympus_Mons", 4);
    days = read_settings();
    ck_assert_str_eq(days.time_zone, "UTC");
    ck_assert_int_eq(days.day_start_hour, 4);
    put_account("", 0);
    ck_assert_str_eq(read_settings().time_zone, "UTC");
    /* An hour outside the day reads as midnight. */
    put_account("Europe/Berlin", 24);
    days = read_settings();
    ck_assert_str_eq(days.time_zone, "Europe/Berlin");
    ck_assert_int_eq(days.day_start_hour, 0);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("profile");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, no_account_means_utc_from_midnight);
    tcase_add_test(tc, zone_and_day_start_come_from_the_profile);
    suite_add_tcase(s, tc);
    return s;
}
