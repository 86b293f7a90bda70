/* Unit tests for server/auth/limits.c: GCRA and the sliding window of
 * failures as arithmetic, then the sign-in limiter on a real store:
 * reservations, recording, forgiving, and surviving a reopen. */
#include "tw_check.h"

#include "auth/limits.h"
#include "store_fixture.h"

#define S    1000000ll /* microseconds */
#define MS   1000ll
#define HOUR (3600 * S)

START_TEST(gcra_allows_a_burst_of_limit_then_one_per_interval)
{
    int64_t tat = 0, retry = 0, now = 100 * HOUR;
    for (int i = 0; i < 1000; i++)
        ck_assert(tw_gcra_take(&tat, now, 1000, HOUR, &retry));
    ck_assert(!tw_gcra_take(&tat, now, 1000, HOUR, &retry));
    ck_assert_int_eq(retry, HOUR / 1000); /* 3.6 s until the next */
    int64_t before = tat;
    ck_assert(!tw_gcra_take(&tat, now + retry - 1, 1000, HOUR, &retry));
    ck_assert_int_eq(tat, before); /* a refusal counts nothing */
    ck_assert(tw_gcra_take(&tat, now + HOUR / 1000, 1000, HOUR, &retry));
    /* An hour later the whole burst is back. */
    now += 2 * HOUR;
    for (int i = 0; i < 1000; i++)
        ck_assert(tw_gcra_take(&tat, now, 1000, HOUR, &retry));
    ck_assert(!tw_gcra_take(&tat, now, 1000, HOUR, &retry));
}
END_TEST

START_TEST(gcra_with_a_limit_of_one)
{
    int64_t tat = 0, retry = 0;
    ck_assert(tw_gcra_take(&tat, 5 * S, 1, HOUR, &retry));
    ck_assert(!tw_gcra_take(&tat, 5 * S, 1, HOUR, &retry));
    ck_assert_int_eq(retry, HOUR);
    ck_assert(tw_gcra_take(&tat, 5 * S + HOUR, 1, HOUR, &retry));
}
END_TEST

START_TEST(window_counts_failures_and_flights)
{
    const int64_t window = 900 * MS, now = 10000 * MS;
    int64_t times[] = {now - 950 * MS, now - 800 * MS, now - 600 * MS,
                       now - 300 * MS, now - 100 * MS, now - 50 * MS};
    int64_t retry = 0;
    /* The first time is out of the window: 5 failures count. */
    ck_assert(!tw_login_window_allows(times, 6, 0, 5, window, now, &retry));
    ck_assert_int_eq(retry, 100 * MS); /* when now-800 s leaves the window */
    ck_assert(tw_login_window_allows(times, 6, 0, 6, window, now, &retry));
    /* With two attempts in flight, 4 failures already fill a limit of 6. */
    ck_assert(!tw_login_window_allows(times + 2, 4, 2, 6, window, now, &retry));
    ck_assert_int_eq(retry, 300 * MS);
    /* Only flights in the way: a short wait. */
    ck_assert(!tw_login_window_allows(NULL, 0, 5, 5, window, now, &retry));
    ck_assert_int_eq(retry, 1000);
    ck_assert(tw_login_window_allows(NULL, 0, 4, 5, window, now, &retry));
    /* A failure exactly window ago no longer counts. */
    int64_t edge[] = {now - window};
    ck_assert(tw_login_window_allows(edge, 1, 0, 1, window, now, &retry));
}
END_TEST

START_TEST(peer_addresses_lose_scheme_and_port)
{
    char out[64];
    tw_login_peer_address("ipv4:127.0.0.1:5000", out, sizeof out);
    ck_assert_str_eq(out, "127.0.0.1");
    tw_login_peer_address("ipv6:[::1]:443", out, sizeof out);
    ck_assert_str_eq(out, "::1");
    tw_login_peer_address("unix:/tmp/x.sock", out, sizeof out);
    ck_assert_str_eq(out, "/tmp/x.sock");
}
END_TEST

static const tw_login_limits limits = {.per_account = 3, .per_peer = 5, .window_ms = 900 * MS};

START_TEST(limiter_reserves_records_and_survives_a_reopen)
{
    tw_login_limiter *l;
    ck_assert_int_eq(tw_login_limiter_new(fx.store, &limits, &l), TW_OK);
    tw_login_ticket t[4];
    int64_t retry = 0, now = FX_EPOCH_MS;
    /* Three reservations at once fill the account's budget of 3. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(tw_login_begin(l, "a@x.io", "1.2.3.4", now, &t[i], &retry), TW_OK);
    ck_assert_int_eq(tw_login_begin(l, "a@x.io", "1.2.3.4", now, &t[3], &retry),
                     TW_ERR_RATE_LIMITED);
    ck_assert_int_eq(retry, 1000);
    /* One fails, two succeed: the successes forgive the account. */
    ck_assert_int_eq(tw_login_end(l, &t[0], true, now, NULL), TW_OK);
    ck_assert_int_eq(tw_login_end(l, &t[1], false, now, NULL), TW_OK);
    ck_assert_int_eq(tw_login_end(l, &t[2], false, now, NULL), TW_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(tw_login_begin(l, "a@x.io", "1.2.3.4", now + i, &t[0], &retry), TW_OK);
        ck_assert_int_eq(tw_login_end(l, &t[0], true, now + i, NULL), TW_OK);
    }
    ck_assert_int_eq(tw_login_begin(l, "a@x.io", "1.2.3.4", now + 10, &t[0], &retry),
                     TW_ERR_RATE_LIMITED);
    ck_assert_int_eq(retry, 900 * MS - 10);
    tw_login_limiter_free(l);

    /* After a restart the count holds, for the account and for the peer. */
    tw_store_close(fx.store);
    fx_reopen(&fx);
    ck_assert_int_eq(tw_login_limiter_new(fx.store, &limits, &l), TW_OK);
    ck_assert_int_eq(tw_login_begin(l, "a@x.io", "5.6.7.8", now + 20, &t[0], &retry),
                     TW_ERR_RATE_LIMITED);
    /* The peer has 4 failures of 5; attempts in flight do not count against
     * an address, but one that ends after the address filled up is refused
     * and its outcome must stay hidden. */
    ck_assert_int_eq(tw_login_begin(l, "b@x.io", "1.2.3.4", now + 20, &t[0], &retry), TW_OK);
    ck_assert_int_eq(tw_login_begin(l, "c@x.io", "1.2.3.4", now + 20, &t[1], &retry), TW_OK);
    ck_assert_int_eq(tw_login_end(l, &t[0], true, now + 20, NULL), TW_OK);
    ck_assert_int_eq(tw_login_end(l, &t[1], false, now + 20, &retry), TW_ERR_RATE_LIMITED);
    ck_assert_int_eq(retry, 900 * MS - 20);
    ck_assert_int_eq(tw_login_begin(l, "d@x.io", "1.2.3.4", now + 30, &t[0], &retry),
                     TW_ERR_RATE_LIMITED);
    /* When the window has passed, all is forgiven. */
    ck_assert_int_eq(tw_login_begin(l, "a@x.io", "1.2.3.4", now + 900 * MS + 10, &t[0], &retry),
                     TW_OK);
    ck_assert_int_eq(tw_login_end(l, &t[0], false, now + 900 * MS + 10, NULL), TW_OK);
    ck_assert_int_eq(tw_login_forget(fx.store, "a@x.io"), TW_OK);
    tw_login_limiter_free(l);
}
END_TEST

START_TEST(api_limiter_counts_classes_per_user)
{
    int64_t limits_per_hour[TW_API__COUNT] = {[TW_API_ALL] = 5, [TW_API_WRITE] = 2};
    tw_api_limiter *l;
    ck_assert_int_eq(tw_api_limiter_new(limits_per_hour, &l), TW_OK);
    int64_t retry = 0, now = 1000 * HOUR;
    ck_assert(tw_api_limiter_take(l, &fx_alice, true, now, &retry));
    ck_assert(tw_api_limiter_take(l, &fx_alice, true, now, &retry));
    ck_assert(!tw_api_limiter_take(l, &fx_alice, true, now, &retry));
    ck_assert_int_eq(retry, 1800 * 1000); /* one write per 30 minutes */
    for (int i = 0; i < 3; i++)
        ck_assert(tw_api_limiter_take(l, &fx_alice, false, now, &retry));
    ck_assert(!tw_api_limiter_take(l, &fx_alice, false, now, &retry));
    ck_assert_int_eq(retry, 720 * 1000);
    /* Bob has budgets of his own. */
    ck_assert(tw_api_limiter_take(l, &fx_bob, true, now, &retry));
    /* Many users: the tables grow and forget idle ones. */
    for (int i = 0; i < 5000; i++) {
        tw_id id = tw_id_new();
        ck_assert(tw_api_limiter_take(l, &id, false, now + i * HOUR, &retry));
    }
    tw_api_limiter_free(l);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = tcase_create("arithmetic");
    tcase_add_test(tc, gcra_allows_a_burst_of_limit_then_one_per_interval);
    tcase_add_test(tc, gcra_with_a_limit_of_one);
    tcase_add_test(tc, window_counts_failures_and_flights);
    tcase_add_test(tc, peer_addresses_lose_scheme_and_port);
    suite_add_tcase(s, tc);
    tc = tcase_create("limiters");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, limiter_reserves_records_and_survives_a_reopen);
    tcase_add_test(tc, api_limiter_counts_classes_per_user);
    suite_add_tcase(s, tc);
    return s;
}
