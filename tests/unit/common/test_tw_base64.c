/* Unit tests for common/tw_base64.c against RFC 4648's vectors. */
#include "tw_check.h"

#include "tw_base64.h"

#include <string.h>

/* RFC 4648 section 10, without the padding. */
static const struct {
    const char *bytes, *text;
} vectors[] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
};

START_TEST(rfc4648_vectors_round_trip)
{
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        size_t len = strlen(vectors[i].bytes);
        char text[32];
        ck_assert_uint_eq(tw_base64_encoded_len(len), strlen(vectors[i].text));
        tw_base64_encode(TW_BASE64_STD, (const uint8_t *)vectors[i].bytes, len, text);
        ck_assert_str_eq(text, vectors[i].text);
        uint8_t back[32];
        size_t back_len;
        ck_assert(tw_base64_decode(TW_BASE64_STD, text, strlen(text), back, &back_len));
        ck_assert_uint_eq(back_len, len);
        ck_assert_mem_eq(back, vectors[i].bytes, len);
    }
}
END_TEST

START_TEST(alphabets_differ_only_in_two_characters)
{
    const uint8_t bytes[] = {0xfb, 0xff, 0xbf};
    char std[8], url[8];
    tw_base64_encode(TW_BASE64_STD, bytes, 3, std);
    tw_base64_encode(TW_BASE64_URL, bytes, 3, url);
    ck_assert_str_eq(std, "+/+/");
    ck_assert_str_eq(url, "-_-_");
    uint8_t out[8];
    size_t n;
    ck_assert(!tw_base64_decode(TW_BASE64_URL, std, 4, out, &n));
    ck_assert(!tw_base64_decode(TW_BASE64_STD, url, 4, out, &n));
}
END_TEST

START_TEST(bad_text_is_refused)
{
    uint8_t out[16];
    size_t n;
    const char *bad[] = {"Zg==", "Z", "Zm9v!", "Zm 9v", "Zh" /* stray bits */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!tw_base64_decode(TW_BASE64_STD, bad[i], strlen(bad[i]), out, &n),
                      "accepted %s", bad[i]);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("tw_base64");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, rfc4648_vectors_round_trip);
    tcase_add_test(tc, alphabets_differ_only_in_two_characters);
    tcase_add_test(tc, bad_text_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
