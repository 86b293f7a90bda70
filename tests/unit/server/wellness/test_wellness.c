/*
 * Unit tests for server/wellness/wellness.c: field paths, text and id
 * checks, protobuf times, date ranges, and paging through an index of a
 * real store (logical days: test_tz.c; day settings: test_profile.c).
 */
#include "wellness/wellness.h"

#include "store_fixture.h"
#include "tw_check.h"
#include "tw_page.h"

#include <string.h>

#define HOUR TW_MS_PER_HOUR
#define DAY  TW_MS_PER_DAY

START_TEST(bad_fields)
{
    tw_bad_field bad;
    ck_assert_int_eq(tw_bad(&bad, "entries[3].", "mood.valence", "must be %s", "small"),
                     TW_ERR_VALIDATION);
    ck_assert_str_eq(bad.field, "entries[3].mood.valence");
    ck_assert_str_eq(bad.why, "must be small");
    ck_assert_int_eq(tw_bad(NULL, "", "x", "y"), TW_ERR_VALIDATION);

    ck_assert_int_eq(tw_check_text(&bad, "", "note", "", 5, false), TW_OK);
    ck_assert_int_eq(tw_check_text(&bad, "", "note", "", 5, true), TW_ERR_VALIDATION);
    ck_assert_str_eq(bad.why, "is required");
    ck_assert_int_eq(
        tw_check_text(&bad, "", "note", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 5, true),
        TW_OK);
    ck_assert_int_eq(tw_check_text(&bad, "p.", "note", "abcdef", 5, true), TW_ERR_VALIDATION);
    ck_assert_str_eq(bad.field, "p.note");

    char *tags[] = {"a", "b", "c"};
    ck_assert_int_eq(tw_check_labels(&bad, "", "tags", tags, 3, 3, 5), TW_OK);
    ck_assert_int_eq(tw_check_labels(&bad, "", "tags", tags, 3, 2, 5), TW_ERR_VALIDATION);
    ck_assert_str_eq(bad.field, "tags");
    tags[2] = "";
    ck_assert_int_eq(tw_check_labels(&bad, "", "tags", tags, 3, 3, 5), TW_ERR_VALIDATION);
    ck_assert_str_eq(bad.field, "tags[2]");

    tw_id id;
    ck_assert_int_eq(tw_check_id(&bad, "", "id", "nope", &id), TW_ERR_VALIDATION);
    ck_assert_str_eq(bad.why, "must be a UUID");
    ck_assert_int_eq(tw_check_id(&bad, "", "id", "", &id), TW_ERR_VALIDATION);
    ck_assert_str_eq(bad.why, "is required");
    ck_assert_int_eq(tw_check_id(&bad, "", "id", "0190b4e0-0000-7000-8000-000000000001", &id),
                     TW_OK);
}
END_TEST

START_TEST(times)
{
    tw_arena *arena = tw_arena_new(1024);
    int64_t ms;
    Google__Protobuf__Timestamp *ts = tw_timestamp_new(arena, -1);
    ck_assert_int_eq(ts->seconds, -1);
    ck_assert_int_eq(ts->nanos, 999000000);
    ck_assert(tw_timestamp_to_ms(ts, &ms) && ms == -1);
    ts->nanos = -1;
    ck_assert(!tw_timestamp_to_ms(ts, &ms));
    ts->nanos = 0;
    ts->seconds = INT64_C(253402300800); /* 10000-01-01 */
    ck_assert(!tw_timestamp_to_ms(ts, &ms));

    Google__Protobuf__Duration *d = tw_duration_new(arena, -1500);
    ck_assert_int_eq(d->seconds, -1);
    ck_assert_int_eq(d->nanos, -500000000);
    ck_assert(tw_duration_to_ms(d, &ms) && ms == -1500);
    d->nanos = 500000000; /* signs disagree */
    ck_assert(!tw_duration_to_ms(d, &ms));

    tw_bad_field bad;
    ck_assert_int_eq(tw_check_time(&bad, "", "start_time", NULL, 42, &ms), TW_OK);
    ck_assert_int_eq(ms, 42);
    ts->seconds = 10;
    ts->nanos = 2000000000;
    ck_assert_int_eq(tw_check_time(&bad, "", "start_time", ts, 42, &ms), TW_ERR_VALIDATION);
    ck_assert_str_eq(bad.field, "start_time");
    tw_arena_free(arena);
}
END_TEST

START_TEST(date_ranges)
{
    tw_bad_field bad;
    int32_t first, n;
    ck_assert_int_eq(tw_check_date_range(&bad, "2024-06-01", "2024-06-30", &first, &n), TW_OK);
    ck_assert_int_eq(first, tw_date_to_day(2024, 6, 1));
    ck_assert_int_eq(n, 30);
    ck_assert_int_eq(tw_check_date_range(&bad, "2024-06-01", "2024-06-01", &first, &n), TW_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(tw_check_date_range(&bad, "2024-01-01", "2024-12-31", &first, &n), TW_OK);
    ck_assert_int_eq(n, 366);
    struct {
        const char *a, *b, *field, *why;
    } bad_cases[] = {
        {"", "2024-06-01", "start_date", "is required"},
        {"2024-06-31", "2024-07-01", "start_date", "YYYY-MM-DD"},
        {"2024-06-01", "", "end_date", "is required"},
        {"2024-06-01", "June 2", "end_date", "YYYY-MM-DD"},
        {"2024-06-02", "2024-06-01", "end_date", "before start_date"},
        {"2023-01-01", "2024-01-02", "end_date", "more than 365 days"},
    };
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        ck_assert_int_eq(tw_check_date_range(&bad, bad_cases[i].a, bad_cases[i].b, &first, &n),
                         TW_ERR_VALIDATION);
        ck_assert_str_eq(bad.field, bad_cases[i].field);
        ck_assert_msg(strstr(bad.why, bad_cases[i].why), "%s", bad.why);
    }
}
END_TEST

/* ---- paging ---------------------------------------------------------------------- */

/* Index keys (alice, type 1, i * 1000, id i) for i in 0..n-1, and one of
 * type 2 and one of bob's, which no scan of alice's type 1 may see. */
static void fill_index(int n)
{
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    for (int i = 0; i <= n + 1; i++) {
        tw_id id = {{0}};
        id.bytes[15] = (uint8_t)i;
        tw_key k;
        tw_key_init(&k, TW_KF_HEALTH_LOG_BY_TYPE);
        tw_key_id(&k, i == n + 1 ? &fx_bob : &fx_alice);
        tw_key_u32(&k, i == n ? 2 : 1);
        tw_key_i64(&k, i * 1000);
        tw_key_id(&k, &id);
        ck_assert_int_eq(tw_txn_put(t, &k, NULL), TW_OK);
    }
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
}

struct seen {
    int64_t times[64];
    int n;
    int skip_odd; /* a filter: refuse odd times / 1000 */
};

static tw_err take(void *ctx, int64_t time_ms, const tw_id *id, tw_store_iter *it, bool *taken)
{
    struct seen *s = ctx;
    ck_assert_int_eq(id->bytes[15], time_ms / 1000);
    if (s->skip_odd && (time_ms / 1000) % 2)
        return TW_OK;
    s->times[s->n++] = time_ms;
    *taken = true;
    return TW_OK;
}

static char *page(int64_t from, int64_t to, const char *token, uint32_t limit, struct seen *s)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_HEALTH_LOG_BY_TYPE);
    tw_key_id(&prefix, &fx_alice);
    tw_key_u32(&prefix, 1);
    char *next;
    int query = 7;
    ck_assert_int_eq(tw_index_page(fx.store, &fx_alice, &prefix, from, to, &query, sizeof query,
                                   token, limit, fx.arena, take, s, &next),
                     TW_OK);
    return next;
}

START_TEST(pages_newest_first_within_a_range)
{
    fill_index(10); /* times 0, 1000, ..., 9000 */
    struct seen s = {.n = 0};
    char *next = page(INT64_MIN, INT64_MAX, "", 4, &s);
    ck_assert_int_eq(s.n, 4);
    ck_assert_int_eq(s.times[0], 9000);
    ck_assert_int_eq(s.times[3], 6000);
    ck_assert_str_ne(next, "");
    next = page(INT64_MIN, INT64_MAX, next, 4, &s);
    next = page(INT64_MIN, INT64_MAX, next, 4, &s);
    ck_assert_int_eq(s.n, 10);
    ck_assert_int_eq(s.times[9], 0);
    ck_assert_str_eq(next, "");

    /* [2000, 7000): 6000 down to 2000; the end excluded, the start kept. */
    memset(&s, 0, sizeof s);
    next = page(2000, 7000, "", 50, &s);
    ck_assert_int_eq(s.n, 5);
    ck_assert_int_eq(s.times[0], 6000);
    ck_assert_int_eq(s.times[4], 2000);
    ck_assert_str_eq(next, "");

    /* A full last page needs no token. */
    memset(&s, 0, sizeof s);
    next = page(2000, 7000, "", 5, &s);
    ck_assert_str_eq(next, "");

    /* Filters: only even ones, pages still full. */
    memset(&s, 0, sizeof s);
    s.skip_odd = 1;
    next = page(INT64_MIN, INT64_MAX, "", 3, &s);
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(s.times[2], 4000);
    next = page(INT64_MIN, INT64_MAX, next, 3, &s);
    ck_assert_int_eq(s.n, 5);
    ck_assert_str_eq(next, "");
}
END_TEST

START_TEST(tokens_are_bound_to_the_query_and_user)
{
    fill_index(10);
    struct seen s = {.n = 0};
    char *next = page(INT64_MIN, INT64_MAX, "", 2, &s);
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_HEALTH_LOG_BY_TYPE);
    tw_key_id(&prefix, &fx_alice);
    tw_key_u32(&prefix, 1);
    char *again;
    int other_query = 8;
    ck_assert_int_eq(tw_index_page(fx.store, &fx_alice, &prefix, INT64_MIN, INT64_MAX, &other_query,
                                   sizeof other_query, next, 2, fx.arena, take, &s, &again),
                     TW_ERR_BAD_PAGE_TOKEN);
    int query = 7;
    ck_assert_int_eq(tw_index_page(fx.store, &fx_bob, &prefix, INT64_MIN, INT64_MAX, &query,
                                   sizeof query, next, 2, fx.arena, take, &s, &again),
                     TW_ERR_BAD_PAGE_TOKEN);
    ck_assert_int_eq(tw_index_page(fx.store, &fx_alice, &prefix, INT64_MIN, INT64_MAX, &query,
                                   sizeof query, "garbage", 2, fx.arena, take, &s, &again),
                     TW_ERR_BAD_PAGE_TOKEN);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("wellness");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, bad_fields);
    tcase_add_test(tc, times);
    tcase_add_test(tc, date_ranges);
    suite_add_tcase(s, tc);
    TCase *store = tcase_create("store");
    tcase_add_checked_fixture(store, fx_setup, fx_teardown);
    tcase_add_test(store, pages_newest_first_within_a_range);
    tcase_add_test(store, tokens_are_bound_to_the_query_and_user);
    suite_add_tcase(s, store);
    return s;
}
