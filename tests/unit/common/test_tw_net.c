/* Unit tests for common/tw_net.c. */
#include "tw_check.h"

#include "tw_net.h"

START_TEST(host_and_port_are_split_at_the_last_colon)
{
    char host[64];
    const char *port = NULL;
    ck_assert(tw_net_split_listen("127.0.0.1:50051", host, sizeof host, &port));
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_str_eq(port, "50051");
    ck_assert(tw_net_split_listen("localhost:0", host, sizeof host, &port));
    ck_assert_str_eq(host, "localhost");
    ck_assert_str_eq(port, "0");
}
END_TEST

START_TEST(ipv6_literals_lose_their_brackets)
{
    char host[64];
    const char *port = NULL;
    ck_assert(tw_net_split_listen("[::1]:8080", host, sizeof host, &port));
    ck_assert_str_eq(host, "::1");
    ck_assert_str_eq(port, "8080");
    ck_assert(tw_net_split_listen("[]:1", host, sizeof host, &port));
    ck_assert_str_eq(host, "");
}
END_TEST

START_TEST(no_colon_an_empty_host_or_a_long_one_is_refused)
{
    char host[8];
    const char *port = NULL;
    ck_assert(!tw_net_split_listen("localhost", host, sizeof host, &port));
    ck_assert(!tw_net_split_listen(":50051", host, sizeof host, &port));
    ck_assert(!tw_net_split_listen("", host, sizeof host, &port));
    ck_assert(!tw_net_split_listen("12345678:1", host, sizeof host, &port));
    ck_assert(tw_net_split_listen("1234567:1", host, sizeof host, &port));
    ck_assert_str_eq(host, "1234567");
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("tw_net");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, host_and_port_are_split_at_the_last_colon);
    tcase_add_test(tc, ipv6_literals_lose_their_brackets);
    tcase_add_test(tc, no_colon_an_empty_host_or_a_long_one_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
