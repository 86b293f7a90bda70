/*
 * Unit tests for store/hint.c: a hint is scanned once and then held; a
 * commit raises it and an abort or a conflict does not; it never goes
 * down; a value too long to hold drops it; the oldest fill gives way.
 */
#include "store_fixture.h"
#include "tw_hint.h"

#include "tw_check.h"

#include <stdio.h>
#include <string.h>

/* What the test's "store" holds under a hint's name, and scans of it. */
static char stored[TW_HINT_VALUE_MAX];
static int scans;

static tw_err scan(void *ctx, char *value, size_t cap)
{
    (void)ctx;
    scans++;
    snprintf(value, cap, "%s", stored);
    return TW_OK;
}

static void name_of(tw_key *k, const tw_id *user, uint8_t n)
{
    tw_id parent = {{0x42, n}};
    tw_key_init(k, TW_KF_TASK_BY_PARENT);
    tw_key_id(k, user);
    tw_key_id(k, &parent);
}

static const char *hint(const tw_id *user, uint8_t n)
{
    static char value[TW_HINT_VALUE_MAX];
    tw_key k;
    name_of(&k, user, n);
    ck_assert_int_eq(tw_store_hint(fx.store, user, &k, scan, NULL, value), TW_OK);
    return value;
}

/* Raises user's hint n to value in a transaction, committed or not. */
static tw_err raise_to(const tw_id *user, uint8_t n, const char *value, bool commit)
{
    tw_key k;
    name_of(&k, user, n);
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_hint_raise(t, user, &k, value), TW_OK);
    if (!commit) {
        tw_txn_abort(t);
        return TW_OK;
    }
    return tw_txn_commit(t);
}

static void reset(void)
{
    strcpy(stored, "k");
    scans = 0;
}

START_TEST(a_hint_is_scanned_once_then_held)
{
    reset();
    ck_assert_str_eq(hint(&fx_alice, 1), "k");
    strcpy(stored, "changed behind its back");
    ck_assert_str_eq(hint(&fx_alice, 1), "k");
    ck_assert_int_eq(scans, 1);
    /* Another name or user is a hint of its own. */
    ck_assert_str_eq(hint(&fx_alice, 2), "changed behind its back");
    ck_assert_str_eq(hint(&fx_bob, 1), "changed behind its back");
    ck_assert_int_eq(scans, 3);
}
END_TEST

START_TEST(a_commit_raises_it_an_abort_does_not_and_it_never_goes_down)
{
    reset();
    ck_assert_str_eq(hint(&fx_alice, 1), "k");
    ck_assert_int_eq(raise_to(&fx_alice, 1, "m", false), TW_OK);
    ck_assert_str_eq(hint(&fx_alice, 1), "k");
    ck_assert_int_eq(raise_to(&fx_alice, 1, "m", true), TW_OK);
    ck_assert_str_eq(hint(&fx_alice, 1), "m");
    ck_assert_int_eq(raise_to(&fx_alice, 1, "a", true), TW_OK);
    ck_assert_str_eq(hint(&fx_alice, 1), "m");
    /* A raise of a hint not held changes nothing: the next read scans. */
    ck_assert_int_eq(raise_to(&fx_alice, 3, "zz", true), TW_OK);
    ck_assert_str_eq(hint(&fx_alice, 3), "k");
    ck_assert_int_eq(scans, 2);
}
END_TEST

START_TEST(a_conflicting_commit_raises_nothing)
{
    reset();
    ck_assert_str_eq(hint(&fx_alice, 1), "k");
    tw_key record, name;
    tw_key_init(&record, TW_KF_TASK_DELETED);
    tw_key_id(&record, &fx_alice);
    tw_key_id(&record, &fx_bob);
    name_of(&name, &fx_alice, 1);
    tw_txn *t, *other;
    tw_value v;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_get_for_update(t, &record, NULL, &v), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_txn_begin(fx.store, &other), TW_OK);
    ck_assert_int_eq(tw_txn_put(other, &record, NULL), TW_OK);
    ck_assert_int_eq(tw_txn_commit(other), TW_OK);
    ck_assert_int_eq(tw_txn_hint_raise(t, &fx_alice, &name, "z"), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_ERR_CONFLICT);
    ck_assert_str_eq(hint(&fx_alice, 1), "k");
}
END_TEST

START_TEST(a_value_too_long_to_hold_drops_the_hint)
{
    reset();
    ck_assert_str_eq(hint(&fx_alice, 1), "k");
    char longer[TW_HINT_VALUE_MAX + 8];
    memset(longer, 'y', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    ck_assert_int_eq(raise_to(&fx_alice, 1, longer, true), TW_OK);
    strcpy(stored, "x");
    ck_assert_str_eq(hint(&fx_alice, 1), "x");
    ck_assert_int_eq(scans, 2);
}
END_TEST

START_TEST(the_oldest_fill_gives_way)
{
    reset();
    /* One user's hints share a set of 8 ways. */
    for (uint8_t n = 0; n < 9; n++)
        ck_assert_str_eq(hint(&fx_alice, n), "k");
    ck_assert_int_eq(scans, 9);
    for (uint8_t n = 1; n < 9; n++)
        ck_assert_str_eq(hint(&fx_alice, n), "k");
    ck_assert_int_eq(scans, 9);
    ck_assert_str_eq(hint(&fx_alice, 0), "k");
    ck_assert_int_eq(scans, 10);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("hint");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, a_hint_is_scanned_once_then_held);
    tcase_add_test(tc, a_commit_raises_it_an_abort_does_not_and_it_never_goes_down);
    tcase_add_test(tc, a_conflicting_commit_raises_nothing);
    tcase_add_test(tc, a_value_too_long_to_hold_drops_the_hint);
    tcase_add_test(tc, the_oldest_fill_gives_way);
    suite_add_tcase(s, tc);
    return s;
}
