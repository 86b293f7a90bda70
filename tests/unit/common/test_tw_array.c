/* Unit tests for common/tw_array.c. */
#include "tw_check.h"

#include "tw_array.h"

#include <stdint.h>
#include <stdlib.h>

START_TEST(grows_from_nothing_by_doubling_and_keeps_items)
{
    int *items = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 100; i++) {
        int *grown = tw_array_grow(items, n, &cap, sizeof *grown, 4);
        ck_assert_ptr_nonnull(grown);
        items = grown;
        items[n++] = i;
        ck_assert_uint_ge(cap, n);
    }
    /* 4, 8, 16, 32, 64, 128. */
    ck_assert_uint_eq(cap, 128);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(items[i], i);
    free(items);
}
END_TEST

START_TEST(room_left_is_the_same_array)
{
    size_t cap = 8;
    int *items = malloc(cap * sizeof *items);
    ck_assert_ptr_nonnull(items);
    ck_assert_ptr_eq(tw_array_grow(items, 7, &cap, sizeof *items, 4), items);
    ck_assert_uint_eq(cap, 8);
    free(items);
}
END_TEST

START_TEST(overflow_leaves_the_array_as_it_was)
{
    /* A capacity whose double does not fit in size_t bytes: refused before
     * any allocation, and items stay the caller's. */
    size_t cap = SIZE_MAX / 2 + 1;
    int dummy[1];
    ck_assert_ptr_null(tw_array_grow(dummy, cap, &cap, sizeof dummy[0], 4));
    ck_assert_uint_eq(cap, SIZE_MAX / 2 + 1);
    cap = SIZE_MAX / 16;
    ck_assert_ptr_null(tw_array_grow(dummy, cap, &cap, 16, 4));
    ck_assert_uint_eq(cap, SIZE_MAX / 16);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("tw_array");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, grows_from_nothing_by_doubling_and_keeps_items);
    tcase_add_test(tc, room_left_is_the_same_array);
    tcase_add_test(tc, overflow_leaves_the_array_as_it_was);
    suite_add_tcase(s, tc);
    return s;
}
