/* Unit tests for common/tw_hex.c. */
#include "tw_check.h"

#include "tw_hex.h"

#include <string.h>

START_TEST(bytes_become_lower_case_pairs)
{
    const uint8_t bytes[] = {0x00, 0x0f, 0xa5, 0xff};
    char out[2 * sizeof bytes + 1];
    memset(out, 'x', sizeof out);
    tw_hex_encode(bytes, sizeof bytes, out);
    ck_assert_str_eq(out, "000fa5ff");
    tw_hex_encode(bytes, 0, out);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(digits_of_either_case_and_nothing_else)
{
    const char *digits = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        ck_assert_int_eq(tw_hex_digit(digits[i]), i);
        ck_assert_int_eq(tw_hex_digit((char)(digits[i] >= 'a' ? digits[i] - 32 : digits[i])), i);
    }
    const char *not_digits = "gG/:@`-x \x80";
    for (const char *p = not_digits; *p; p++)
        ck_assert_int_eq(tw_hex_digit(*p), -1);
    ck_assert_int_eq(tw_hex_digit('\0'), -1);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("tw_hex");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, bytes_become_lower_case_pairs);
    tcase_add_test(tc, digits_of_either_case_and_nothing_else);
    suite_add_tcase(s, tc);
    return s;
}
