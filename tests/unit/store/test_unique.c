/* Unit tests for store/unique.c: a value has one owner, even when threads
 * race for it; claims are released one by one or all together. */
#include "store_fixture.h"
#include "tw_unique.h"

#include "tw_check.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct claim {
    const char *space, *value;
    tw_id owner;
};

static tw_err claim_fn(tw_txn *t, void *ctx)
{
    const struct claim *c = ctx;
    return tw_txn_unique_claim(t, c->space, c->value, &c->owner);
}

static tw_err release_fn(tw_txn *t, void *ctx)
{
    const struct claim *c = ctx;
    return tw_txn_unique_release(t, c->space, c->value, &c->owner);
}

static tw_err release_all_fn(tw_txn *t, void *ctx)
{
    return tw_txn_unique_release_all(t, ctx);
}

static tw_err claim(const char *space, const char *value, const tw_id *owner)
{
    return tw_txn_run(fx.store, claim_fn, &(struct claim){space, value, *owner});
}

START_TEST(one_owner_per_value)
{
    tw_id alice = tw_id_new(), bob = tw_id_new(), owner;
    ck_assert_int_eq(claim("email", "a@example.com", &alice), TW_OK);
    ck_assert_int_eq(claim("email", "a@example.com", &alice), TW_OK); /* again: fine */
    ck_assert_int_eq(claim("email", "a@example.com", &bob), TW_ERR_ALREADY_EXISTS);
    ck_assert_int_eq(claim("username", "a@example.com", &bob), TW_OK); /* another space */
    ck_assert_int_eq(tw_store_unique_lookup(fx.store, "email", "a@example.com", &owner), TW_OK);
    ck_assert_mem_eq(owner.bytes, alice.bytes, TW_ID_BYTES);
    ck_assert_int_eq(tw_store_unique_lookup(fx.store, "email", "b@example.com", &owner),
                     TW_ERR_NOT_FOUND);
}
END_TEST

#define RACERS 8
#define ROUNDS 20

struct racer {
    pthread_barrier_t *start;
    const char *value;
    tw_id owner;
    tw_err result;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(r->start);
    r->result = claim("email", r->value, &r->owner);
    return NULL;
}

START_TEST(racing_claims_have_exactly_one_winner)
{
    for (int round = 0; round < ROUNDS; round++) {
        char value[32];
        snprintf(value, sizeof value, "race%d@example.com", round);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, RACERS);
        struct racer racers[RACERS];
        pthread_t threads[RACERS];
        for (int i = 0; i < RACERS; i++) {
            racers[i] = (struct racer){&start, value, tw_id_new(), TW_ERR_INTERNAL};
            pthread_create(&threads[i], NULL, race, &racers[i]);
        }
        int winners = 0, winner = -1;
        for (int i = 0; i < RACERS; i++) {
            pthread_join(threads[i], NULL);
            if (racers[i].result == TW_OK) {
                winners++;
                winner = i;
            } else {
                ck_assert_msg(racers[i].result == TW_ERR_ALREADY_EXISTS, "racer %d: %s", i,
                              tw_err_name(racers[i].result));
            }
        }
        pthread_barrier_destroy(&start);
        ck_assert_int_eq(winners, 1);
        tw_id owner;
        ck_assert_int_eq(tw_store_unique_lookup(fx.store, "email", value, &owner), TW_OK);
        ck_assert_mem_eq(owner.bytes, racers[winner].owner.bytes, TW_ID_BYTES);
    }
}
END_TEST

START_TEST(only_the_owner_releases)
{
    tw_id alice = tw_id_new(), bob = tw_id_new(), owner;
    ck_assert_int_eq(claim("email", "a@example.com", &alice), TW_OK);
    ck_assert_int_eq(
        tw_txn_run(fx.store, release_fn, &(struct claim){"email", "a@example.com", bob}),
        TW_ERR_NOT_FOUND);
    ck_assert_int_eq(
        tw_txn_run(fx.store, release_fn, &(struct claim){"email", "a@example.com", alice}), TW_OK);
    ck_assert_int_eq(tw_store_unique_lookup(fx.store, "email", "a@example.com", &owner),
                     TW_ERR_NOT_FOUND);
    ck_assert_int_eq(claim("email", "a@example.com", &bob), TW_OK);
}
END_TEST

START_TEST(release_all_frees_every_claim_of_an_owner)
{
    tw_id alice = tw_id_new(), bob = tw_id_new(), owner;
    ck_assert_int_eq(claim("email", "a@example.com", &alice), TW_OK);
    ck_assert_int_eq(claim("username", "alice", &alice), TW_OK);
    ck_assert_int_eq(claim("email", "b@example.com", &bob), TW_OK);
    ck_assert_int_eq(tw_txn_run(fx.store, release_all_fn, &alice), TW_OK);
    ck_assert_int_eq(tw_store_unique_lookup(fx.store, "email", "a@example.com", &owner),
                     TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_store_unique_lookup(fx.store, "username", "alice", &owner),
                     TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_store_unique_lookup(fx.store, "email", "b@example.com", &owner), TW_OK);
    tw_store_report report;
    ck_assert_int_eq(tw_store_verify(fx.store, &report), TW_OK);
    ck_assert_uint_eq(report.keys[TW_CF_INDEX], 2); /* bob's claim and its owner entry */
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("unique");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, one_owner_per_value);
    tcase_add_test(tc, racing_claims_have_exactly_one_winner);
    tcase_add_test(tc, only_the_owner_releases);
    tcase_add_test(tc, release_all_frees_every_claim_of_an_owner);
    suite_add_tcase(s, tc);
    return s;
}
