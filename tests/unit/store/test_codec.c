/* Unit tests for store/codec.c: each value type round-trips; bytes that do
 * not fit their family are TW_ERR_DB_CORRUPT, never a crash; readers skip
 * fields they do not know and default the ones they lack. */
#include "store_internal.h"
#include "tw/store/v1/records.pb-c.h"

#include "tw_check.h"

#include <string.h>

static tw_arena *arena;

static void setup(void)
{
    arena = tw_arena_new(1024);
}
static void teardown(void)
{
    tw_arena_free(arena);
}

static const tw_key_family *fam(tw_kf kf)
{
    return tw_keyspace_family(kf);
}

START_TEST(messages_round_trip)
{
    Tw__Store__V1__ChangeEntry m = TW__STORE__V1__CHANGE_ENTRY__INIT;
    uint8_t id[TW_ID_BYTES] = {7};
    m.sequence = 42;
    m.resource_type = "task";
    m.resource_id = (ProtobufCBinaryData){sizeof id, id};
    m.op = TW__STORE__V1__CHANGE_OP__CHANGE_OP_TOMBSTONE;
    uint8_t *bytes;
    size_t len;
    ck_assert_int_eq(
        store_value_encode(fam(TW_KF_CHANGE), &(tw_value){.msg = &m.base}, arena, &bytes, &len),
        TW_OK);
    tw_value v;
    ck_assert_int_eq(store_value_decode(fam(TW_KF_CHANGE), bytes, len, arena, &v), TW_OK);
    const Tw__Store__V1__ChangeEntry *back = (const void *)v.msg;
    ck_assert_uint_eq(back->sequence, 42);
    ck_assert_str_eq(back->resource_type, "task");
    ck_assert_int_eq(back->op, m.op);
    ck_assert_mem_eq(back->resource_id.data, id, sizeof id);
}
END_TEST

START_TEST(a_message_of_another_type_is_refused)
{
    Tw__Store__V1__Job job = TW__STORE__V1__JOB__INIT;
    uint8_t *bytes;
    size_t len;
    ck_assert_int_eq(
        store_value_encode(fam(TW_KF_CHANGE), &(tw_value){.msg = &job.base}, arena, &bytes, &len),
        TW_ERR_INTERNAL);
    ck_assert_int_eq(store_value_encode(fam(TW_KF_CHANGE), NULL, arena, &bytes, &len),
                     TW_ERR_INTERNAL);
}
END_TEST

START_TEST(garbage_is_corrupt_not_a_crash)
{
    static const uint8_t cases[][6] = {
        {0x08, 0xff, 0xff, 0xff, 0xff, 0xff}, /* field 1 varint that never ends */
        {0x12, 0x05, 'a'},                    /* string longer than what follows */
        {0x0f, 0, 0, 0, 0, 0},                /* wire type 7 does not exist */
    };
    static const size_t lens[] = {6, 3, 6};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        tw_value v;
        ck_assert_int_eq(store_value_decode(fam(TW_KF_JOB), cases[i], lens[i], arena, &v),
                         TW_ERR_DB_CORRUPT);
        ck_assert_ptr_nonnull(strstr(tw_store_last_error(), "JOB"));
    }
}
END_TEST

START_TEST(unknown_fields_are_skipped_and_absent_ones_default)
{
    Tw__Store__V1__ChangeHead head = TW__STORE__V1__CHANGE_HEAD__INIT;
    head.last_sequence = 9;
    uint8_t buf[64];
    size_t len = protobuf_c_message_pack(&head.base, buf);
    /* A newer writer's field 15 (varint 1) and field 16 (a string). */
    static const uint8_t extra[] = {0x78, 0x01, 0x82, 0x01, 0x02, 'h', 'i'};
    memcpy(buf + len, extra, sizeof extra);
    tw_value v;
    ck_assert_int_eq(store_value_decode(fam(TW_KF_CHANGE_HEAD), buf, len + sizeof extra, arena, &v),
                     TW_OK);
    const Tw__Store__V1__ChangeHead *back = (const void *)v.msg;
    ck_assert_uint_eq(back->last_sequence, 9);
    ck_assert_uint_eq(back->trimmed_through, 0);

    /* An empty value is a message with every field at its default. */
    ck_assert_int_eq(store_value_decode(fam(TW_KF_CHANGE_HEAD), "", 0, arena, &v), TW_OK);
    ck_assert_uint_eq(((const Tw__Store__V1__ChangeHead *)(const void *)v.msg)->last_sequence, 0);
}
END_TEST

START_TEST(fixed_size_values_check_their_size)
{
    uint8_t *bytes;
    size_t len;
    tw_value v = {.u64 = UINT64_C(0x0102030405060708)};
    ck_assert_int_eq(store_value_encode(fam(TW_KF_COUNTER), &v, arena, &bytes, &len), TW_OK);
    ck_assert_uint_eq(len, 8);
    ck_assert_uint_eq(bytes[0], 0x08); /* little-endian, as uint64add wants */
    tw_value back;
    ck_assert_int_eq(store_value_decode(fam(TW_KF_COUNTER), bytes, len, arena, &back), TW_OK);
    ck_assert_uint_eq(back.u64, v.u64);
    ck_assert_int_eq(store_value_decode(fam(TW_KF_COUNTER), bytes, 7, arena, &back),
                     TW_ERR_DB_CORRUPT);

    tw_value id = {.id = tw_id_new()};
    ck_assert_int_eq(store_value_encode(fam(TW_KF_UNIQUE), &id, arena, &bytes, &len), TW_OK);
    ck_assert_int_eq(store_value_decode(fam(TW_KF_UNIQUE), bytes, len, arena, &back), TW_OK);
    ck_assert_mem_eq(back.id.bytes, id.id.bytes, TW_ID_BYTES);
    ck_assert_int_eq(store_value_decode(fam(TW_KF_UNIQUE), bytes, 15, arena, &back),
                     TW_ERR_DB_CORRUPT);

    ck_assert_int_eq(store_value_encode(fam(TW_KF_JOB_DUE), NULL, arena, &bytes, &len), TW_OK);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(store_value_decode(fam(TW_KF_JOB_DUE), "x", 1, arena, &back),
                     TW_ERR_DB_CORRUPT);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("codec");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, messages_round_trip);
    tcase_add_test(tc, a_message_of_another_type_is_refused);
    tcase_add_test(tc, garbage_is_corrupt_not_a_crash);
    tcase_add_test(tc, unknown_fields_are_skipped_and_absent_ones_default);
    tcase_add_test(tc, fixed_size_values_check_their_size);
    suite_add_tcase(s, tc);
    return s;
}
