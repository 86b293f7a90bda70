/* Unit tests for common/tw_wire.h: varints both ways, and finding one
 * field of a message in its bytes, refusing what is no message. */
#include "tw_wire.h"

#include "tw_check.h"
#include <string.h>

START_TEST(varints_round_trip)
{
    const uint64_t values[] = {0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, UINT64_MAX};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        uint8_t buf[TW_WIRE_VARINT_MAX];
        size_t n = tw_wire_put_varint(buf, values[i]);
        const uint8_t *p = buf;
        uint64_t back;
        ck_assert(tw_wire_varint(&p, buf + n, &back));
        ck_assert_uint_eq(back, values[i]);
        ck_assert_ptr_eq(p, buf + n);
    }
    uint8_t three[TW_WIRE_VARINT_MAX];
    ck_assert_uint_eq(tw_wire_put_varint(three, 300), 2);
    ck_assert_mem_eq(three, "\xac\x02", 2);
}
END_TEST

/* Field 1 varint 150, field 2 "hi", field 3 fixed32, field 16 "abc". */
static const uint8_t message[] = {0x08, 0x96, 0x01, 0x12, 0x02, 'h',  'i', 0x1d, 1,
                                  2,    3,    4,    0x82, 0x01, 0x03, 'a', 'b',  'c'};

START_TEST(a_field_is_found_with_and_without_its_length)
{
    const uint8_t *prefixed, *value;
    size_t prefixed_len, value_len;
    ck_assert(
        tw_wire_find(message, sizeof message, 2, &prefixed, &prefixed_len, &value, &value_len));
    ck_assert_uint_eq(value_len, 2);
    ck_assert_mem_eq(value, "hi", 2);
    ck_assert_ptr_eq(prefixed, message + 4);
    ck_assert_uint_eq(prefixed_len, 3);
    /* A two-byte tag. */
    ck_assert(
        tw_wire_find(message, sizeof message, 16, &prefixed, &prefixed_len, &value, &value_len));
    ck_assert_mem_eq(value, "abc", 3);
    ck_assert_ptr_eq(prefixed, message + 14);
    ck_assert_uint_eq(prefixed_len, 4);
}
END_TEST

START_TEST(what_is_not_one_such_field_is_refused)
{
    const uint8_t *prefixed, *value;
    size_t prefixed_len, value_len;
    /* Absent; not length-delimited. */
    ck_assert(
        !tw_wire_find(message, sizeof message, 9, &prefixed, &prefixed_len, &value, &value_len));
    ck_assert(
        !tw_wire_find(message, sizeof message, 1, &prefixed, &prefixed_len, &value, &value_len));
    /* Cut short: the field's length runs past the end. */
    ck_assert(!tw_wire_find(message, sizeof message - 1, 16, &prefixed, &prefixed_len, &value,
                            &value_len));
    /* Bytes before the field that are no field (wire type 7). */
    uint8_t bad[sizeof message + 1] = {0x0f};
    memcpy(bad + 1, message, sizeof message);
    ck_assert(!tw_wire_find(bad, sizeof bad, 2, &prefixed, &prefixed_len, &value, &value_len));
    /* The first of two is the one found. */
    uint8_t twice[2 * sizeof message];
    memcpy(twice, message, sizeof message);
    memcpy(twice + sizeof message, message, sizeof message);
    ck_assert(tw_wire_find(twice, sizeof twice, 2, &prefixed, &prefixed_len, &value, &value_len));
    ck_assert_ptr_eq(prefixed, twice + 4);
    /* Empty bytes are an empty message: no field. */
    ck_assert(!tw_wire_find(message, 0, 2, &prefixed, &prefixed_len, &value, &value_len));
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("tw_wire");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, varints_round_trip);
    tcase_add_test(tc, a_field_is_found_with_and_without_its_length);
    tcase_add_test(tc, what_is_not_one_such_field_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
