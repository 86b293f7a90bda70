/* Unit tests for common/tw_arena.c: alignment, growth, strings. */
#include "tw_arena.h"

#include "tw_check.h"
#include <stdint.h>
#include <string.h>

START_TEST(allocations_are_aligned_and_zeroed)
{
    tw_arena *a = tw_arena_new(64);
    for (size_t size = 1; size < 200; size += 7) {
        unsigned char *p = tw_arena_alloc(a, size);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % _Alignof(max_align_t), 0);
        for (size_t i = 0; i < size; i++)
            ck_assert_uint_eq(p[i], 0);
        memset(p, 0xab, size);
    }
    tw_arena_free(a);
}
END_TEST

START_TEST(large_allocations_get_their_own_block)
{
    tw_arena *a = tw_arena_new(256);
    char *big = tw_arena_alloc(a, 1 << 20);
    ck_assert_ptr_nonnull(big);
    memset(big, 1, 1 << 20);
    char *small = tw_arena_alloc(a, 16);
    ck_assert_ptr_nonnull(small);
    ck_assert_uint_ge(tw_arena_used(a), (1 << 20) + 16);
    tw_arena_free(a);
}
END_TEST

START_TEST(strings_are_copied)
{
    tw_arena *a = tw_arena_new(0);
    ck_assert_str_eq(tw_arena_strdup(a, "hello"), "hello");
    ck_assert_str_eq(tw_arena_strndup(a, "hello", 3), "hel");
    ck_assert_str_eq(tw_arena_printf(a, "%s-%d", "x", 42), "x-42");
    tw_arena_free(a);
    tw_arena_free(NULL);
}
END_TEST

START_TEST(bytes_are_copied_nuls_and_all)
{
    tw_arena *a = tw_arena_new(0);
    const uint8_t bytes[] = {1, 0, 2, 0, 0, 3};
    uint8_t *copy = tw_arena_memdup(a, bytes, sizeof bytes);
    ck_assert_ptr_nonnull(copy);
    ck_assert_mem_eq(copy, bytes, sizeof bytes);
    ck_assert_ptr_nonnull(tw_arena_memdup(a, bytes, 0));
    tw_arena_free(a);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("tw_arena");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, allocations_are_aligned_and_zeroed);
    tcase_add_test(tc, large_allocations_get_their_own_block);
    tcase_add_test(tc, strings_are_copied);
    tcase_add_test(tc, bytes_are_copied_nuls_and_all);
    suite_add_tcase(s, tc);
    return s;
}
