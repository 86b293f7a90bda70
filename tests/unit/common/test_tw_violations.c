/* Unit tests for common/tw_violations.c: order, prefixes, the budget, and
 * that adding stays cheap however many are added. */
#include "tw_violations.h"

#include "tw_check.h"
#include "tw_utf8.h"

#include <string.h>

START_TEST(keeps_order_and_prefix)
{
    tw_arena *a = tw_arena_new(0);
    tw_violations v;
    tw_violations_init(&v, a, 10, 1000);
    ck_assert(!tw_violations_any(&v));
    ck_assert_int_eq(tw_violations_add(&v, "title", "is required"), TW_ERR_VALIDATION);
    v.prefix = "mutations[2].";
    tw_violations_add(&v, "labels[0]", "is longer than %d characters", 64);
    ck_assert_uint_eq(v.count, 2);
    ck_assert_str_eq(v.head->field, "title");
    ck_assert_str_eq(v.head->next->field, "mutations[2].labels[0]");
    ck_assert_str_eq(v.head->next->description, "is longer than 64 characters");
    ck_assert_ptr_null(tw_violations_more(&v));
    tw_arena_free(a);
}
END_TEST

START_TEST(counts_past_the_budget_of_entries)
{
    tw_arena *a = tw_arena_new(0);
    tw_violations v;
    tw_violations_init(&v, a, 3, 100000);
    /* Many more than kept: appends are O(1), so this is instant. */
    for (int i = 0; i < 200000; i++)
        tw_violations_add(&v, "update_mask", "path %d is unknown", i);
    ck_assert_uint_eq(v.count, 3);
    ck_assert_uint_eq(v.dropped, 200000 - 3);
    ck_assert_uint_eq(tw_violations_total(&v), 200000);
    ck_assert_str_eq(tw_violations_more(&v), "and 199997 more violations not listed");
    tw_arena_free(a);
}
END_TEST

START_TEST(counts_past_the_budget_of_bytes)
{
    tw_arena *a = tw_arena_new(0);
    tw_violations v;
    tw_violations_init(&v, a, 100, 40);
    tw_violations_add(&v, "a", "%s", "0123456789012345678"); /* 20 bytes */
    tw_violations_add(&v, "b", "%s", "0123456789012345678"); /* 40 */
    tw_violations_add(&v, "c", "x");                         /* over */
    ck_assert_uint_eq(v.count, 2);
    ck_assert_uint_eq(v.dropped, 1);
    ck_assert_str_eq(tw_violations_more(&v), "and 1 more violation not listed");
    tw_arena_free(a);
}
END_TEST

START_TEST(long_text_is_cut_on_a_character)
{
    tw_arena *a = tw_arena_new(0);
    tw_violations v;
    tw_violations_init(&v, a, 10, 100000);
    char field[400], text[1000];
    /* "é" is two bytes: an odd limit would split one if cut on a byte. */
    for (size_t i = 0; i + 2 < sizeof field; i += 2)
        memcpy(field + i, "\xc3\xa9", 2), field[i + 2] = '\0';
    for (size_t i = 0; i + 3 < sizeof text; i += 3)
        memcpy(text + i, "\xe2\x82\xac", 3), text[i + 3] = '\0';
    tw_violations_add(&v, field, "%s", text);
    const tw_violation *got = v.head;
    ck_assert_uint_le(strlen(got->field), TW_VIOLATION_FIELD_MAX);
    ck_assert_uint_le(strlen(got->description), TW_VIOLATION_TEXT_MAX);
    ck_assert_uint_ge(strlen(got->description), TW_VIOLATION_TEXT_MAX - 3);
    ck_assert(tw_utf8_valid(got->field, strlen(got->field)));
    ck_assert(tw_utf8_valid(got->description, strlen(got->description)));
    tw_arena_free(a);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("tw_violations");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, keeps_order_and_prefix);
    tcase_add_test(tc, counts_past_the_budget_of_entries);
    tcase_add_test(tc, counts_past_the_budget_of_bytes);
    tcase_add_test(tc, long_text_is_cut_on_a_character);
    suite_add_tcase(s, tc);
    return s;
}
