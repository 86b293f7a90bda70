/* Unit tests for common/tw_utf8.c: the edges of well-formed UTF-8. */
#include "tw_check.h"

#include "tw_utf8.h"

#include <string.h>

START_TEST(valid_text_passes)
{
    const char *good[] = {"",
                          "plain ascii",
                          "caf\xc3\xa9",
                          "\xe2\x82\xac 20",
                          "\xf0\x9f\x98\x80 emoji",
                          "\xef\xbf\xbf",
                          "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(tw_utf8_valid(good[i], strlen(good[i])), "refused case %zu", i);
}
END_TEST

START_TEST(malformed_text_fails)
{
    const char *bad[] = {
        "\xc3\x28",         /* bad continuation */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong, three bytes */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "\xf8\x88\x80\x80\x80",
        "\xff",
        "\x80",
        "caf\xc3", /* truncated */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!tw_utf8_valid(bad[i], strlen(bad[i])), "accepted case %zu", i);
    ck_assert(!tw_utf8_valid("a\0b", 3));
}
END_TEST

START_TEST(characters_are_counted_not_bytes)
{
    ck_assert_uint_eq(tw_utf8_chars(""), 0);
    ck_assert_uint_eq(tw_utf8_chars("hello"), 5);
    ck_assert_uint_eq(tw_utf8_chars("h\xc3\xa9llo"), 5);             /* é: 2 bytes */
    ck_assert_uint_eq(tw_utf8_chars("\xe6\x97\xa5\xe6\x9c\xac"), 2); /* 日本 */
    ck_assert_uint_eq(tw_utf8_chars("\xf0\x9f\x98\x80!"), 2);        /* an emoji and ! */
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("tw_utf8");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, valid_text_passes);
    tcase_add_test(tc, malformed_text_fails);
    tcase_add_test(tc, characters_are_counted_not_bytes);
    suite_add_tcase(s, tc);
    return s;
}
