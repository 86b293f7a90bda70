/* Unit tests for store/keyspace.c: the rules every row of the table keeps. */
#include "tw_keyspace.h"

#include "tw_check.h"

#include <string.h>

START_TEST(prefixes_are_unique_and_not_reserved)
{
    for (int i = 0; i < TW_KF__COUNT; i++) {
        const tw_key_family *f = tw_keyspace_family((tw_kf)i);
        ck_assert_msg(f->prefix != 0x00 && f->prefix != 0xff, "%s", f->name);
        for (int j = i + 1; j < TW_KF__COUNT; j++)
            ck_assert_msg(f->prefix != tw_keyspace_family((tw_kf)j)->prefix, "%s and %s share",
                          f->name, tw_keyspace_family((tw_kf)j)->name);
        tw_kf found;
        ck_assert(tw_keyspace_find(f->prefix, &found));
        ck_assert_int_eq(found, i);
    }
    tw_kf found;
    ck_assert(!tw_keyspace_find(0xff, &found));
}
END_TEST

START_TEST(owned_families_start_with_the_owner_id)
{
    int owned = 0;
    for (int i = 0; i < TW_KF__COUNT; i++) {
        const tw_key_family *f = tw_keyspace_family((tw_kf)i);
        if (!f->owned)
            continue;
        owned++;
        ck_assert_msg(f->nparts >= 1 && f->parts[0].type == TW_KP_ID, "%s", f->name);
    }
    ck_assert_int_gt(owned, 0);
    ck_assert(tw_keyspace_family(TW_KF_SESSION)->cached);
    ck_assert(tw_keyspace_family(TW_KF_BILLING_PLAN)->cached);
    ck_assert(!tw_keyspace_family(TW_KF_BILLING_PLAN)->owned);
}
END_TEST

START_TEST(rows_are_complete)
{
    for (int i = 0; i < TW_KF__COUNT; i++) {
        const tw_key_family *f = tw_keyspace_family((tw_kf)i);
        ck_assert_msg(f->nparts >= 1 && f->nparts <= TW_KEY_MAX_PARTS, "%s", f->name);
        for (int p = 0; p < f->nparts; p++)
            ck_assert_msg(f->parts[p].type >= TW_KP_ID && f->parts[p].type <= TW_KP_STR &&
                              f->parts[p].name != NULL,
                          "%s part %d", f->name, p);
        ck_assert_msg((f->value == TW_VAL_MSG) == (f->descriptor != NULL), "%s", f->name);
        ck_assert_msg(f->descriptor == NULL ||
                          f->descriptor->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
                      "%s", f->name);
        ck_assert_int_lt(f->cf, TW_CF__COUNT);
        for (int j = i + 1; j < TW_KF__COUNT; j++)
            ck_assert_str_ne(f->name, tw_keyspace_family((tw_kf)j)->name);
    }
}
END_TEST

START_TEST(counters_live_where_merges_happen)
{
    for (int i = 0; i < TW_KF__COUNT; i++) {
        const tw_key_family *f = tw_keyspace_family((tw_kf)i);
        ck_assert_msg((f->value == TW_VAL_U64) == tw_keyspace_cf_merges_u64(f->cf), "%s", f->name);
    }
    ck_assert_str_eq(tw_keyspace_cf_name(TW_CF_META), "default");
    for (int i = 0; i < TW_CF__COUNT; i++)
        for (int j = i + 1; j < TW_CF__COUNT; j++)
            ck_assert_str_ne(tw_keyspace_cf_name((tw_cf)i), tw_keyspace_cf_name((tw_cf)j));
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("keyspace");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, prefixes_are_unique_and_not_reserved);
    tcase_add_test(tc, owned_families_start_with_the_owner_id);
    tcase_add_test(tc, rows_are_complete);
    tcase_add_test(tc, counters_live_where_merges_happen);
    suite_add_tcase(s, tc);
    return s;
}
