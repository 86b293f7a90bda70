/* Unit tests for store/migrate.c, the runner, with migrations of its own:
 * order, records, idempotent up, down one at a time, failures, and
 * databases newer than the binary. */
#include "store_fixture.h"
#include "tw/store/v1/records.pb-c.h"
#include "tw_migrate.h"

#include "tw_check.h"

#include <string.h>

static bool third_may_succeed;
static int runs[4]; /* up runs per migration number */

static void setup(void)
{
    fx_open(&fx);
    third_may_succeed = false;
    for (int i = 0; i < 4; i++)
        runs[i] = 0;
}

static void teardown(void)
{
    fx_close(&fx);
}

static void mark_key(tw_key *k, uint32_t n)
{
    tw_key_init(k, TW_KF_META);
    tw_key_str(k, n == 1 ? "test-one" : n == 2 ? "test-two" : "test-three");
}

static tw_err mark_put(tw_txn *t, void *ctx)
{
    tw_key k;
    mark_key(&k, *(uint32_t *)ctx);
    Tw__Store__V1__StoreInfo m = TW__STORE__V1__STORE_INFO__INIT;
    return tw_txn_put(t, &k, &(tw_value){.msg = &m.base});
}

static tw_err mark_delete(tw_txn *t, void *ctx)
{
    tw_key k;
    mark_key(&k, *(uint32_t *)ctx);
    return tw_txn_delete(t, &k);
}

static bool marked(uint32_t n)
{
    tw_key k;
    tw_value v;
    mark_key(&k, n);
    return tw_store_get(fx.store, &k, fx.arena, &v) == TW_OK;
}

static tw_err mark(tw_store *s, uint32_t n, bool up)
{
    runs[n] += up;
    return tw_txn_run(s, up ? mark_put : mark_delete, &n);
}

static tw_err one_up(tw_store *s)
{
    return mark(s, 1, true);
}
static tw_err one_down(tw_store *s)
{
    return mark(s, 1, false);
}
static tw_err two_up(tw_store *s)
{
    return mark(s, 2, true);
}
static tw_err two_down(tw_store *s)
{
    return mark(s, 2, false);
}
static tw_err three_up(tw_store *s)
{
    return third_may_succeed ? mark(s, 3, true) : TW_ERR_DB;
}
static tw_err three_down(tw_store *s)
{
    return mark(s, 3, false);
}

static const tw_migration rows[] = {
    {1, "one", one_up, one_down},
    {2, "two", two_up, two_down},
    {3, "three", three_up, three_down},
};
static const tw_migration_set first_two = {rows, 2};
static const tw_migration_set all_three = {rows, 3};

static void expect_status(const tw_migration_set *set, const bool *applied)
{
    tw_migration_status *st;
    size_t n;
    ck_assert_int_eq(tw_store_migrate_status(fx.store, set, fx.arena, &st, &n), TW_OK);
    ck_assert_uint_eq(n, set->count);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(st[i].number, set->rows[i].number);
        ck_assert_str_eq(st[i].name, set->rows[i].name);
        ck_assert_msg(st[i].applied == applied[i], "migration %u", st[i].number);
        ck_assert_int_eq(st[i].apply_ms, applied[i] ? FX_EPOCH_MS : 0);
    }
}

START_TEST(up_applies_pending_migrations_in_order_once)
{
    size_t applied;
    expect_status(&first_two, (bool[]){false, false});
    ck_assert_int_eq(tw_store_migrate_up(fx.store, &first_two, &applied), TW_OK);
    ck_assert_uint_eq(applied, 2);
    ck_assert(marked(1) && marked(2));
    expect_status(&first_two, (bool[]){true, true});
    ck_assert_int_eq(tw_store_migrate_up(fx.store, &first_two, &applied), TW_OK);
    ck_assert_uint_eq(applied, 0);
    ck_assert_int_eq(runs[1], 1);
    /* Records survive a restart. */
    tw_store_close(fx.store);
    fx_reopen(&fx);
    expect_status(&first_two, (bool[]){true, true});
}
END_TEST

START_TEST(down_reverts_the_last_one_at_a_time)
{
    uint32_t number;
    ck_assert_int_eq(tw_store_migrate_up(fx.store, &first_two, NULL), TW_OK);
    ck_assert_int_eq(tw_store_migrate_down(fx.store, &first_two, &number), TW_OK);
    ck_assert_uint_eq(number, 2);
    ck_assert(marked(1) && !marked(2));
    expect_status(&first_two, (bool[]){true, false});
    ck_assert_int_eq(tw_store_migrate_down(fx.store, &first_two, &number), TW_OK);
    ck_assert_uint_eq(number, 1);
    ck_assert_int_eq(tw_store_migrate_down(fx.store, &first_two, &number), TW_OK);
    ck_assert_uint_eq(number, 0);
    ck_assert(!marked(1));
}
END_TEST

START_TEST(a_failing_migration_stays_pending)
{
    size_t applied;
    ck_assert_int_eq(tw_store_migrate_up(fx.store, &all_three, &applied), TW_ERR_DB);
    ck_assert_uint_eq(applied, 2);
    expect_status(&all_three, (bool[]){true, true, false});
    third_may_succeed = true;
    ck_assert_int_eq(tw_store_migrate_up(fx.store, &all_three, &applied), TW_OK);
    ck_assert_uint_eq(applied, 1);
    ck_assert(marked(3));
    ck_assert_int_eq(runs[1], 1);
}
END_TEST

START_TEST(a_database_newer_than_the_binary_is_refused)
{
    third_may_succeed = true;
    ck_assert_int_eq(tw_store_migrate_up(fx.store, &all_three, NULL), TW_OK);
    size_t applied = 9;
    ck_assert_int_eq(tw_store_migrate_up(fx.store, &first_two, &applied),
                     TW_ERR_FAILED_PRECONDITION);
    ck_assert_uint_eq(applied, 0);
    uint32_t number = 9;
    ck_assert_int_eq(tw_store_migrate_down(fx.store, &first_two, &number),
                     TW_ERR_FAILED_PRECONDITION);
    ck_assert_uint_eq(number, 0);
    ck_assert(marked(3));
}
END_TEST

/* A record every migration leaves alone, standing for users' data. */
static tw_err put_data(tw_txn *t, void *ctx)
{
    tw_key k;
    tw_key_init(&k, TW_KF_META);
    tw_key_str(&k, "test-data");
    Tw__Store__V1__StoreInfo m = TW__STORE__V1__STORE_INFO__INIT;
    m.format_version = 42;
    return tw_txn_put(t, &k, &(tw_value){.msg = &m.base});
}

static bool data_kept(void)
{
    tw_key k;
    tw_value v;
    tw_key_init(&k, TW_KF_META);
    tw_key_str(&k, "test-data");
    return tw_store_get(fx.store, &k, fx.arena, &v) == TW_OK &&
           ((Tw__Store__V1__StoreInfo *)v.msg)->format_version == 42;
}

/* An upgrade to a twd with migration 3, a roll back to the twd before it
 * (which refuses the store until it is migrated down, and says how), and
 * the upgrade again: the data stays through all of it. */
START_TEST(roll_forward_back_and_forward_again_keeps_the_data)
{
    third_may_succeed = true;
    const tw_migration_set *older = &first_two, *newer = &all_three;
    ck_assert_int_eq(tw_store_migrate_up(fx.store, older, NULL), TW_OK);
    ck_assert_int_eq(tw_txn_run(fx.store, put_data, NULL), TW_OK);

    ck_assert_int_eq(tw_store_migrate_up(fx.store, newer, NULL), TW_OK); /* forward */
    ck_assert(marked(3) && data_kept());
    tw_store_close(fx.store);
    fx_reopen(&fx);
    ck_assert_int_eq(tw_store_migrate_up(fx.store, older, NULL), TW_ERR_FAILED_PRECONDITION);
    const char *why = tw_store_last_error();
    ck_assert_msg(strstr(why, "at migration 3 (three), applied by twd " TW_VERSION) != NULL, "%s",
                  why);
    ck_assert_msg(strstr(why, "knows migrations up to 2 (two)") != NULL, "%s", why);
    ck_assert_msg(strstr(why, "`twd migrate down --to 2` with twd " TW_VERSION) != NULL, "%s", why);

    uint32_t number;
    ck_assert_int_eq(tw_store_migrate_down(fx.store, newer, &number), TW_OK); /* back */
    ck_assert_uint_eq(number, 3);
    size_t applied = 9;
    ck_assert_int_eq(tw_store_migrate_up(fx.store, older, &applied), TW_OK);
    ck_assert_uint_eq(applied, 0);
    ck_assert(!marked(3) && marked(2) && data_kept());

    ck_assert_int_eq(tw_store_migrate_up(fx.store, newer, &applied), TW_OK); /* forward again */
    ck_assert_uint_eq(applied, 1);
    ck_assert(marked(3) && data_kept());
    expect_status(newer, (bool[]){true, true, true});
}
END_TEST

static tw_err forget_one(tw_txn *t, void *ctx)
{
    tw_key k;
    tw_key_init(&k, TW_KF_MIGRATION);
    tw_key_u32(&k, 1);
    return tw_txn_delete(t, &k);
}

START_TEST(a_hole_in_the_record_is_refused)
{
    ck_assert_int_eq(tw_store_migrate_up(fx.store, &first_two, NULL), TW_OK);
    ck_assert_int_eq(tw_txn_run(fx.store, forget_one, NULL), TW_OK);
    ck_assert_int_eq(tw_store_migrate_up(fx.store, &first_two, NULL), TW_ERR_FAILED_PRECONDITION);
}
END_TEST

START_TEST(a_table_out_of_order_is_a_bug)
{
    static const tw_migration backwards[] = {
        {2, "two", two_up, two_down},
        {1, "one", one_up, one_down},
    };
    const tw_migration_set set = {backwards, 2};
    ck_assert_int_eq(tw_store_migrate_up(fx.store, &set, NULL), TW_ERR_INTERNAL);
    ck_assert_int_eq(runs[1] + runs[2], 0);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("migrate");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, up_applies_pending_migrations_in_order_once);
    tcase_add_test(tc, down_reverts_the_last_one_at_a_time);
    tcase_add_test(tc, a_failing_migration_stays_pending);
    tcase_add_test(tc, a_database_newer_than_the_binary_is_refused);
    tcase_add_test(tc, roll_forward_back_and_forward_again_keeps_the_data);
    tcase_add_test(tc, a_hole_in_the_record_is_refused);
    tcase_add_test(tc, a_table_out_of_order_is_a_bug);
    suite_add_tcase(s, tc);
    return s;
}
