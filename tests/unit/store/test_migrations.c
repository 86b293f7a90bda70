/* Unit tests for store/migrations.c: every migration of twd runs up and
 * down on a store with data in it, and migration 1 does what it says. */
#include "store_fixture.h"
#include "tw_migrate.h"
#include "tw_unique.h"

#include "tw_check.h"

#include <stdio.h>

#define OWNERS 3
#define CLAIMS 300 /* more than one backfill chunk */

static tw_id owners[OWNERS];

/* Claims as a binary before migration 1 wrote them: UNIQUE only. */
static tw_err old_claims(tw_txn *t, void *ctx)
{
    tw_err err = TW_OK;
    for (int i = 0; err == TW_OK && i < CLAIMS; i++) {
        char value[32];
        snprintf(value, sizeof value, "user%d@example.com", i);
        tw_key k;
        tw_key_init(&k, TW_KF_UNIQUE);
        tw_key_str(&k, "email");
        tw_key_str(&k, value);
        err = tw_txn_put(t, &k, &(tw_value){.id = owners[i % OWNERS]});
    }
    return err;
}

static tw_store_report report(void)
{
    tw_store_report r;
    ck_assert_int_eq(tw_store_verify(fx.store, &r), TW_OK);
    return r;
}

static uint64_t index_keys(void)
{
    return report().keys[TW_CF_INDEX];
}

START_TEST(every_migration_goes_up_and_down)
{
    for (int i = 0; i < OWNERS; i++)
        owners[i] = tw_id_new();
    ck_assert_int_eq(tw_txn_run(fx.store, old_claims, NULL), TW_OK);
    tw_store_report before = report();
    const tw_migration_set *set = &tw_store_migrations;
    size_t applied;
    ck_assert_int_eq(tw_store_migrate_up(fx.store, set, &applied), TW_OK);
    ck_assert_uint_eq(applied, set->count);
    for (size_t i = set->count; i > 0; i--) {
        uint32_t number;
        ck_assert_int_eq(tw_store_migrate_down(fx.store, set, &number), TW_OK);
        ck_assert_uint_eq(number, set->rows[i - 1].number);
    }
    /* Down undid up: the same keys in every column family. */
    tw_store_report after = report();
    ck_assert_mem_eq(after.keys, before.keys, sizeof before.keys);
    ck_assert_int_eq(tw_store_migrate_up(fx.store, set, &applied), TW_OK);
    ck_assert_uint_eq(applied, set->count);
}
END_TEST

static tw_err release_all(tw_txn *t, void *ctx)
{
    return tw_txn_unique_release_all(t, ctx);
}

START_TEST(unique_by_owner_lists_old_claims_under_their_owners)
{
    const tw_migration_set one = {tw_store_migrations.rows, 1};
    for (int i = 0; i < OWNERS; i++)
        owners[i] = tw_id_new();
    ck_assert_int_eq(tw_txn_run(fx.store, old_claims, NULL), TW_OK);
    ck_assert_uint_eq(index_keys(), CLAIMS);

    ck_assert_int_eq(tw_store_migrate_up(fx.store, &one, NULL), TW_OK);
    ck_assert_uint_eq(index_keys(), 2 * CLAIMS);
    /* Running the backfill again (a crash before its record) changes nothing. */
    ck_assert_int_eq(tw_store_migrations.rows[0].up(fx.store), TW_OK);
    ck_assert_uint_eq(index_keys(), 2 * CLAIMS);

    /* What it is for: deleting an account frees everything it claimed. */
    ck_assert_int_eq(tw_txn_run(fx.store, release_all, &owners[0]), TW_OK);
    tw_id owner;
    ck_assert_int_eq(tw_store_unique_lookup(fx.store, "email", "user0@example.com", &owner),
                     TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_store_unique_lookup(fx.store, "email", "user1@example.com", &owner), TW_OK);
    ck_assert_uint_eq(index_keys(), 2 * (CLAIMS - CLAIMS / OWNERS));

    ck_assert_int_eq(tw_store_migrate_down(fx.store, &one, NULL), TW_OK);
    ck_assert_uint_eq(index_keys(), CLAIMS - CLAIMS / OWNERS); /* claims stay */
    ck_assert_int_eq(tw_store_unique_lookup(fx.store, "email", "user1@example.com", &owner), TW_OK);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("migrations");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, every_migration_goes_up_and_down);
    tcase_add_test(tc, unique_by_owner_lists_old_claims_under_their_owners);
    suite_add_tcase(s, tc);
    return s;
}
