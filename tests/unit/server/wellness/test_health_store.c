/*
 * Unit tests for server/wellness/health_store.c on a real store: imports
 * are upserts (a batch stored twice leaves one copy of each entry, changes
 * update, two racing imports of one entry store it once), a client-chosen
 * id is kept and cannot be taken twice, deletes free the external id,
 * lists use the indexes with their filters, summaries read the time index,
 * and every write appends to the change log and counts new entries.
 */
#include "wellness/health.h"

#include "store_fixture.h"
#include "tw_changelog.h"
#include "tw_check.h"
#include "tw_counter.h"
#include "wellness_fixture.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define NOW  FX_EPOCH_MS
#define HOUR TW_MS_PER_HOUR
#define DAY  TW_MS_PER_DAY

/* A step's environment for user, on the fixture's store and arena, as of
 * NOW. */
static tw_wellness_env *env_of(const tw_id *user, tw_arena *arena)
{
    tw_wellness_env *env = tw_arena_alloc(arena, sizeof *env);
    *env = (tw_wellness_env){.store = fx.store,
                             .user = *user,
                             .arena = arena,
                             .now_ms = NOW,
                             .violations = wx_violations(arena)};
    return env;
}

/* A prepared entry: water, source Apple Health with an external id when
 * ext is not NULL. */
static Tw__V1__HealthLog *water(int64_t start, double ml, const char *ext)
{
    Tw__V1__HealthLog *e = wx_entry(fx.arena, TW_HEALTH_WATER, start);
    e->water->volume_ml = ml;
    if (ext != NULL) {
        e->source = TW__V1__HEALTH_LOG_SOURCE__HEALTH_LOG_SOURCE_APPLE_HEALTH;
        e->external_id = tw_arena_strdup(fx.arena, ext);
    }
    Tw__V1__HealthLog *out;
    ck_assert_int_eq(tw_health_prepare(e, "", fx.arena, wx_violations(fx.arena), &out), TW_OK);
    return out;
}

struct upsert {
    const tw_id *user;
    tw_health_write *w;
    size_t n;
};

static tw_err upsert_fn(tw_txn *t, void *ctx)
{
    struct upsert *u = ctx;
    return tw_health_upsert(t, env_of(u->user, fx.arena), u->w, u->n);
}

static tw_err try_upsert(const tw_id *user, tw_health_write *w, size_t n)
{
    struct upsert u = {user, w, n};
    return tw_txn_run(fx.store, upsert_fn, &u);
}

static void upsert(const tw_id *user, tw_health_write *w, size_t n)
{
    ck_assert_int_eq(try_upsert(user, w, n), TW_OK);
}

static tw_err get(const tw_id *user, const tw_id *id, Tw__V1__HealthLog **out)
{
    return tw_health_get(NULL, env_of(user, fx.arena), id, out);
}

static tw_err delete_in(tw_txn *t, const tw_id *user, const tw_id *id)
{
    return tw_health_delete(t, env_of(user, fx.arena), id);
}

/* A batch of n water entries with external ids "hk-<i>", every i-th ml
 * changed by bump. */
static tw_health_write *batch(size_t n, double bump)
{
    tw_health_write *w = tw_arena_alloc(fx.arena, n * sizeof *w);
    for (size_t i = 0; i < n; i++) {
        char ext[32];
        snprintf(ext, sizeof ext, "hk-%zu", i);
        w[i] =
            (tw_health_write){.entry = water(NOW - (int64_t)i * HOUR, 100 + (double)i + bump, ext)};
    }
    return w;
}

static size_t count_entries(const tw_id *user, const tw_health_query *q)
{
    size_t total = 0;
    const uint8_t *cursor = NULL;
    size_t cursor_len = 0;
    for (int guard = 0; guard < 100; guard++) {
        Tw__V1__HealthLog **entries;
        size_t count;
        ck_assert_int_eq(tw_health_list(env_of(user, fx.arena), q, cursor, cursor_len, 7, &entries,
                                        &count, &cursor, &cursor_len),
                         TW_OK);
        total += count;
        if (cursor == NULL)
            return total;
    }
    ck_abort_msg("list did not end");
    return 0;
}

static const tw_health_query all = {0, 0, INT64_MIN, INT64_MAX};

/* Keys of a family under user. */
static size_t count_keys(tw_kf family, const tw_id *user)
{
    tw_key prefix;
    tw_key_init(&prefix, family);
    tw_key_id(&prefix, user);
    return (size_t)fx_count_keys(fx.store, &prefix);
}

static uint64_t last_sequence(const tw_id *user)
{
    tw_change_page page;
    ck_assert_int_eq(tw_store_changelog_read(fx.store, user, 0, 0, fx.arena, &page), TW_OK);
    return page.last_sequence;
}

static uint64_t water_counter(void)
{
    uint64_t total;
    ck_assert_int_eq(tw_store_counter_read(fx.store,
                                           &(tw_counter){NULL, "health_log_entries", "type=water"},
                                           tw_store_day(NOW), 1, NULL, &total),
                     TW_OK);
    return total;
}

START_TEST(a_batch_stored_twice_leaves_one_copy)
{
    tw_health_write *w = batch(40, 0);
    upsert(&fx_alice, w, 40);
    for (size_t i = 0; i < 40; i++)
        ck_assert_int_eq(w[i].outcome, TW_HEALTH_CREATED);
    char first_id[TW_ID_TEXT_SIZE];
    snprintf(first_id, sizeof first_id, "%s", w[0].stored->id);

    tw_health_write *again = batch(40, 0);
    upsert(&fx_alice, again, 40);
    for (size_t i = 0; i < 40; i++)
        ck_assert_int_eq(again[i].outcome, TW_HEALTH_UNCHANGED);
    ck_assert_str_eq(again[0].stored->id, first_id);

    ck_assert_int_eq(count_entries(&fx_alice, &all), 40);
    ck_assert_int_eq(count_keys(TW_KF_HEALTH_LOG, &fx_alice), 40);
    ck_assert_int_eq(count_keys(TW_KF_HEALTH_LOG_BY_TIME, &fx_alice), 40);
    ck_assert_int_eq(count_keys(TW_KF_HEALTH_LOG_BY_TYPE, &fx_alice), 40);
    ck_assert_int_eq(count_keys(TW_KF_HEALTH_LOG_BY_SOURCE, &fx_alice), 40);
    ck_assert_int_eq(count_keys(TW_KF_HEALTH_LOG_BY_EXTERNAL, &fx_alice), 40);
    /* Nothing changed the second time: no changes to sync, no new count. */
    ck_assert_int_eq(last_sequence(&fx_alice), 40);
    ck_assert_int_eq(water_counter(), 40);
}
END_TEST

START_TEST(a_changed_import_updates_the_entry)
{
    tw_health_write *w = batch(3, 0);
    upsert(&fx_alice, w, 3);
    /* hk-1 changes its amount and moves an hour earlier. */
    tw_health_write *again = batch(3, 0);
    again[1].entry = water(NOW - 2 * HOUR, 999, "hk-1");
    upsert(&fx_alice, again, 3);
    ck_assert_int_eq(again[0].outcome, TW_HEALTH_UNCHANGED);
    ck_assert_int_eq(again[1].outcome, TW_HEALTH_UPDATED);
    ck_assert_str_eq(again[1].stored->id, w[1].stored->id);
    ck_assert_int_eq(count_entries(&fx_alice, &all), 3);
    ck_assert_int_eq(count_keys(TW_KF_HEALTH_LOG_BY_TIME, &fx_alice), 3);
    tw_id id;
    ck_assert(tw_id_parse(w[1].stored->id, &id));
    Tw__V1__HealthLog *e;
    ck_assert_int_eq(get(&fx_alice, &id, &e), TW_OK);
    ck_assert_double_eq(e->water->volume_ml, 999);
    ck_assert_int_eq(tw_health_start_ms(e), NOW - 2 * HOUR);
    /* create_time stays, update_time moves. */
    ck_assert_int_eq(e->create_time->seconds, w[1].stored->create_time->seconds);
    ck_assert_int_eq(last_sequence(&fx_alice), 4);
    /* The same external id from another source is another entry. */
    tw_health_write other = {.entry = water(NOW, 1, "hk-1")};
    ((Tw__V1__HealthLog *)other.entry)->source =
        TW__V1__HEALTH_LOG_SOURCE__HEALTH_LOG_SOURCE_HEALTH_CONNECT;
    upsert(&fx_alice, &other, 1);
    ck_assert_int_eq(other.outcome, TW_HEALTH_CREATED);
    ck_assert_int_eq(count_entries(&fx_alice, &all), 4);
}
END_TEST

START_TEST(client_chosen_ids_are_kept_and_taken_once)
{
    tw_id chosen = tw_id_new();
    tw_health_write w = {.entry = water(NOW, 250, NULL), .has_id = true, .id = chosen};
    upsert(&fx_alice, &w, 1);
    ck_assert_int_eq(w.outcome, TW_HEALTH_CREATED);
    char text[TW_ID_TEXT_SIZE];
    tw_id_format(&chosen, text);
    ck_assert_str_eq(w.stored->id, text);
    /* The same id again: taken, nothing stored. */
    tw_health_write again = {.entry = water(NOW, 300, NULL), .has_id = true, .id = chosen};
    ck_assert_int_eq(try_upsert(&fx_alice, &again, 1), TW_ERR_ALREADY_EXISTS);
    ck_assert_int_eq(count_entries(&fx_alice, &all), 1);
    /* Bob may use it: his keys are his. */
    tw_health_write bobs = {.entry = water(NOW, 300, NULL), .has_id = true, .id = chosen};
    upsert(&fx_bob, &bobs, 1);
    ck_assert_int_eq(bobs.outcome, TW_HEALTH_CREATED);
    /* Without ids or external ids, storing again adds. */
    tw_health_write plain = {.entry = water(NOW, 250, NULL)};
    upsert(&fx_alice, &plain, 1);
    plain = (tw_health_write){.entry = water(NOW, 250, NULL)};
    upsert(&fx_alice, &plain, 1);
    ck_assert_int_eq(count_entries(&fx_alice, &all), 3);
}
END_TEST

START_TEST(users_see_only_their_own)
{
    tw_health_write w = {.entry = water(NOW, 250, "hk-0")};
    upsert(&fx_alice, &w, 1);
    tw_id id;
    ck_assert(tw_id_parse(w.stored->id, &id));
    Tw__V1__HealthLog *e;
    ck_assert_int_eq(get(&fx_bob, &id, &e), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(count_entries(&fx_bob, &all), 0);
    /* Bob importing the same external id gets his own entry. */
    tw_health_write b = {.entry = water(NOW, 250, "hk-0")};
    upsert(&fx_bob, &b, 1);
    ck_assert_int_eq(b.outcome, TW_HEALTH_CREATED);
    ck_assert_str_ne(b.stored->id, w.stored->id);
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(delete_in(t, &fx_bob, &id), TW_ERR_NOT_FOUND);
    tw_txn_abort(t);
}
END_TEST

START_TEST(a_deleted_entry_can_be_imported_anew)
{
    tw_health_write w = {.entry = water(NOW, 250, "hk-0")};
    upsert(&fx_alice, &w, 1);
    tw_id id;
    ck_assert(tw_id_parse(w.stored->id, &id));
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(delete_in(t, &fx_alice, &id), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    for (tw_kf f = TW_KF_HEALTH_LOG; f <= TW_KF_HEALTH_LOG_BY_EXTERNAL; f++)
        ck_assert_int_eq(count_keys(f, &fx_alice), 0);
    tw_change_page page;
    ck_assert_int_eq(tw_store_changelog_read(fx.store, &fx_alice, 0, 10, fx.arena, &page), TW_OK);
    ck_assert_int_eq(page.count, 2);
    ck_assert_str_eq(page.changes[0].resource_type, "health_log");
    ck_assert_int_eq(page.changes[0].op, TW_CHANGE_UPSERT);
    ck_assert_int_eq(page.changes[1].op, TW_CHANGE_TOMBSTONE);
    ck_assert_mem_eq(page.changes[1].resource_id.bytes, id.bytes, TW_ID_BYTES);

    tw_health_write again = {.entry = water(NOW, 250, "hk-0")};
    upsert(&fx_alice, &again, 1);
    ck_assert_int_eq(again.outcome, TW_HEALTH_CREATED);
    ck_assert_str_ne(again.stored->id, w.stored->id);
}
END_TEST

struct racer {
    pthread_barrier_t *go;
    tw_err err;
    tw_health_write w;
};

static void *race_import(void *arg)
{
    struct racer *r = arg;
    /* One transaction each, not tw_txn_run: the loser's conflict shows. */
    tw_arena *arena = tw_arena_new(4096);
    pthread_barrier_wait(r->go);
    tw_txn *t;
    r->err = tw_txn_begin(fx.store, &t);
    if (r->err == TW_OK) {
        r->err = tw_health_upsert(t, env_of(&fx_alice, arena), &r->w, 1);
        if (r->err)
            tw_txn_abort(t);
        else
            r->err = tw_txn_commit(t);
    }
    tw_arena_free(arena);
    return NULL;
}

START_TEST(racing_imports_of_one_entry_store_it_once)
{
    /* Two devices import the same sample at the same moment: one commits,
     * the other conflicts on the external id's claim (tw_txn_run would
     * retry it and find the entry). */
    for (int round = 0; round < 20; round++) {
        char ext[16];
        snprintf(ext, sizeof ext, "race-%d", round);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        struct racer r[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            r[i] = (struct racer){&go, TW_OK, {.entry = water(NOW, 250, ext)}};
            pthread_create(&th[i], NULL, race_import, &r[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&go);
        ck_assert_msg((r[0].err == TW_OK) + (r[1].err == TW_OK) >= 1, "round %d", round);
        ck_assert(r[0].err == TW_OK || r[0].err == TW_ERR_CONFLICT);
        ck_assert(r[1].err == TW_OK || r[1].err == TW_ERR_CONFLICT);
    }
    ck_assert_int_eq(count_entries(&fx_alice, &all), 20);
    ck_assert_int_eq(count_keys(TW_KF_HEALTH_LOG_BY_EXTERNAL, &fx_alice), 20);
}
END_TEST

START_TEST(lists_filter_by_type_source_and_time)
{
    /* 10 water entries from Apple Health an hour apart, 5 manual steps. */
    upsert(&fx_alice, batch(10, 0), 10);
    for (int i = 0; i < 5; i++) {
        Tw__V1__HealthLog *e;
        ck_assert_int_eq(
            tw_health_prepare(wx_entry(fx.arena, TW_HEALTH_STEPS, NOW - DAY - i * HOUR), "",
                              fx.arena, wx_violations(fx.arena), &e),
            TW_OK);
        tw_health_write w = {.entry = e};
        upsert(&fx_alice, &w, 1);
    }
    ck_assert_int_eq(count_entries(&fx_alice, &all), 15);
    tw_health_query q = all;
    q.type = TW_HEALTH_WATER;
    ck_assert_int_eq(count_entries(&fx_alice, &q), 10);
    q.type = TW_HEALTH_STEPS;
    ck_assert_int_eq(count_entries(&fx_alice, &q), 5);
    q = all;
    q.source = TW_HEALTH_SOURCE_MANUAL;
    ck_assert_int_eq(count_entries(&fx_alice, &q), 5);
    q.type = TW_HEALTH_WATER; /* manual water: none */
    ck_assert_int_eq(count_entries(&fx_alice, &q), 0);
    q = all;
    q.from_ms = NOW - 3 * HOUR; /* starts at NOW, -1 h, -2 h, -3 h */
    ck_assert_int_eq(count_entries(&fx_alice, &q), 4);
    q.to_ms = NOW; /* the end is excluded */
    ck_assert_int_eq(count_entries(&fx_alice, &q), 3);
    /* Newest first, across pages. */
    Tw__V1__HealthLog **entries;
    size_t count;
    const uint8_t *next;
    size_t next_len;
    ck_assert_int_eq(tw_health_list(env_of(&fx_alice, fx.arena), &all, NULL, 0, 3, &entries, &count,
                                    &next, &next_len),
                     TW_OK);
    ck_assert_int_eq(count, 3);
    ck_assert_int_gt(tw_health_start_ms(entries[0]), tw_health_start_ms(entries[1]));
    ck_assert_ptr_nonnull(next);
    /* (Page tokens, bound to the request, are the kit's: test_kit.) */
}
END_TEST

START_TEST(summaries_read_the_time_index)
{
    int32_t day = (int32_t)tw_floor_div(NOW, DAY);
    /* Water on two days, a night's sleep ending on the second. */
    tw_health_write w[4] = {
        {.entry = water(day * DAY + 8 * HOUR, 300, NULL)},
        {.entry = water(day * DAY + 9 * HOUR, 200, NULL)},
        {.entry = water((day - 1) * DAY + 9 * HOUR, 1000, NULL)},
    };
    Tw__V1__HealthLog *sleep;
    ck_assert_int_eq(tw_health_prepare(wx_entry(fx.arena, TW_HEALTH_SLEEP, day * DAY - 2 * HOUR),
                                       "", fx.arena, wx_violations(fx.arena), &sleep),
                     TW_OK);
    w[3].entry = sleep;
    upsert(&fx_alice, w, 4);
    /* Bob's water is not Alice's. */
    tw_health_write b = {.entry = water(day * DAY + 8 * HOUR, 5000, NULL)};
    upsert(&fx_bob, &b, 1);

    tw_health_summary s;
    ck_assert_int_eq(tw_health_summary_init(&s, &(tw_day_settings){"UTC", 0}, day - 1, 2, fx.arena),
                     TW_OK);
    ck_assert_int_eq(tw_health_summarize(fx.store, &fx_alice, &s), TW_OK);
    ck_assert_double_eq(s.days[0].water_ml, 1000);
    ck_assert_double_eq(s.days[1].water_ml, 500);
    ck_assert_int_eq(s.days[0].sleep_ms, 0);
    ck_assert_int_eq(s.days[1].sleep_ms, 8 * HOUR);
    ck_assert_int_eq(s.days[1].entry_count, 3);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("health_store");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, a_batch_stored_twice_leaves_one_copy);
    tcase_add_test(tc, a_changed_import_updates_the_entry);
    tcase_add_test(tc, client_chosen_ids_are_kept_and_taken_once);
    tcase_add_test(tc, users_see_only_their_own);
    tcase_add_test(tc, a_deleted_entry_can_be_imported_anew);
    tcase_add_test(tc, racing_imports_of_one_entry_store_it_once);
    tcase_add_test(tc, lists_filter_by_type_source_and_time);
    tcase_add_test(tc, summaries_read_the_time_index);
    suite_add_tcase(s, tc);
    return s;
}
