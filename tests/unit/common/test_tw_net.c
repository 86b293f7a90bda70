/* Unit tests for common/tw_net.c. */
#include "tw_check.h"

#include "tw_net.h"

#include <stddef.h>

/* A listen address and how it splits (host NULL: refused), with an
 * 8-byte host buffer. */
static const struct {
    const char *listen, *host, *port;
} rows[] = {
    {"127.0.0.1:50051", NULL, NULL}, /* the host does not fit in 8 bytes */
    {"1.2.3.4:50051", "1.2.3.4", "50051"},
    {"host:0", "host", "0"},
    {"[::1]:8080", "::1", "8080"},
    {"[]:1", "", "1"},
    {"a:b:443", "a:b", "443"}, /* the port is after the last colon */
    {"1234567:1", "1234567", "1"},
    {"12345678:1", NULL, NULL},
    {"localhost", NULL, NULL},
    {":50051", NULL, NULL},
    {"", NULL, NULL},
};

START_TEST(listen_addresses_split_at_the_last_colon)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char host[8];
        const char *port = NULL;
        bool ok = tw_net_split_listen(rows[i].listen, host, sizeof host, &port);
        ck_assert_msg(ok == (rows[i].host != NULL), "%s", rows[i].listen);
        if (ok) {
            ck_assert_str_eq(host, rows[i].host);
            ck_assert_str_eq(port, rows[i].port);
        }
    }
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("tw_net");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, listen_addresses_split_at_the_last_colon);
    suite_add_tcase(s, tc);
    return s;
}
