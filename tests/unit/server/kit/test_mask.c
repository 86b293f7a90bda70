/* Unit tests for server/kit/mask.c: one rule for every update mask. */
#include "kit/mask.h"

#include "tw_check.h"

#include <string.h>

enum { NAME = 1, NOTE = 2, PARENT = 4 };
static const tw_mask_path paths[] = {
    {"name", NAME, NULL},
    {"note", NOTE, NULL},
    {"parent_id", PARENT, "use Move"},
    {NULL, 0, NULL},
};

static tw_arena *arena;
static tw_violations v;

static void setup(void)
{
    arena = tw_arena_new(0);
    tw_violations_init(&v, arena, TW_CALL_VIOLATIONS_MAX, TW_CALL_VIOLATIONS_MAX_BYTES);
}

static void teardown(void)
{
    tw_arena_free(arena);
}

static tw_err parse(char **list, size_t n, unsigned allowed, unsigned *bits)
{
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    mask.paths = list;
    mask.n_paths = n;
    return tw_mask_parse(&mask, paths, allowed, "Thing", "update_mask", &v, bits);
}

START_TEST(known_paths_give_their_bits)
{
    char *good[] = {"note", "name"};
    unsigned bits;
    ck_assert_int_eq(parse(good, 2, NAME | NOTE, &bits), TW_OK);
    ck_assert_uint_eq(bits, NAME | NOTE);
    ck_assert(!tw_violations_any(&v));
}
END_TEST

START_TEST(every_bad_path_is_reported)
{
    char *bad[] = {"name", "color", "name", "parent_id", "name.first"};
    unsigned bits;
    ck_assert_int_eq(parse(bad, 5, NAME | NOTE, &bits), TW_ERR_BAD_FIELD_MASK);
    ck_assert_uint_eq(v.count, 4);
    const tw_violation *it = v.head;
    ck_assert_str_eq(it->field, "update_mask");
    ck_assert_str_eq(it->description, "\"color\" is not a field of Thing that can be changed");
    ck_assert_str_eq(it->next->description, "\"name\" is named twice");
    ck_assert_str_eq(it->next->next->description, "\"parent_id\" cannot be changed here: use Move");
}
END_TEST

START_TEST(a_path_allowed_elsewhere_is_taken_here_when_allowed)
{
    char *move[] = {"parent_id"};
    unsigned bits;
    ck_assert_int_eq(parse(move, 1, NAME | NOTE | PARENT, &bits), TW_OK);
    ck_assert_uint_eq(bits, PARENT);
}
END_TEST

START_TEST(an_empty_or_missing_mask_is_refused)
{
    unsigned bits;
    ck_assert_int_eq(parse(NULL, 0, NAME, &bits), TW_ERR_BAD_FIELD_MASK);
    ck_assert_int_eq(tw_mask_parse(NULL, paths, NAME, "Thing", "update_mask", &v, &bits),
                     TW_ERR_BAD_FIELD_MASK);
    ck_assert_uint_eq(v.count, 2);
    ck_assert_str_eq(v.head->description, "is required: name the fields to change");
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("mask");
    TCase *tc = tcase_create("parse");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, known_paths_give_their_bits);
    tcase_add_test(tc, every_bad_path_is_reported);
    tcase_add_test(tc, a_path_allowed_elsewhere_is_taken_here_when_allowed);
    tcase_add_test(tc, an_empty_or_missing_mask_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
