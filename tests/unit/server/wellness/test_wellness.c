/*
 * Unit tests for server/wellness/wellness.c: field paths, text checks
 * (on the violation list, and billing's first-error ones), protobuf times,
 * list time ranges, date ranges, and paging through an index of a real
 * store (logical days: test_tz.c; day settings: test_profile.c).
 */
#include "wellness/wellness.h"

#include "store_fixture.h"
#include "tw_check.h"
#include "wellness_fixture.h"

#include <string.h>

#define HOUR TW_MS_PER_HOUR
#define DAY  TW_MS_PER_DAY

START_TEST(bad_fields)
{
    tw_arena *arena = tw_arena_new(4096);
    tw_violations *v = wx_violations(arena);
    const char *outer = tw_wellness_prefix(v, "entries[3].");
    tw_wellness_check_text(v, "note", "", 5, false);
    ck_assert(!tw_violations_any(v));
    tw_wellness_check_text(v, "note", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 5, true);
    ck_assert(!tw_violations_any(v));
    tw_wellness_check_text(v, "name", "", 5, true);
    tw_wellness_check_text(v, "note", "abcdef", 5, true);
    char *tags[] = {"a", "", "toolong"};
    tw_wellness_check_labels(v, "tags", tags, 3, 5);
    v->prefix = outer;
    tw_wellness_check_text(v, "title", "", 5, true);
    /* Every bad one, each under its path. */
    ck_assert_uint_eq(tw_violations_total(v), 5);
    WX_ASSERT_VIOLATION(v, "entries[3].name", "is required");
    WX_ASSERT_VIOLATION(v, "entries[3].note", "longer than 5 characters");
    WX_ASSERT_VIOLATION(v, "entries[3].tags[1]", "is required");
    WX_ASSERT_VIOLATION(v, "entries[3].tags[2]", "longer than 5 characters");
    WX_ASSERT_VIOLATION(v, "title", "is required");
    tw_arena_free(arena);
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

    /* A list's range: open ends, and an end not after its start refused. */
    tw_violations *v = wx_violations(arena);
    int64_t from, to;
    tw_wellness_time_range(NULL, NULL, v, &from, &to);
    ck_assert(from == INT64_MIN && to == INT64_MAX);
    tw_wellness_time_range(tw_timestamp_new(arena, 5000), NULL, v, &from, &to);
    ck_assert(from == 5000 && to == INT64_MAX);
    ck_assert(!tw_violations_any(v));
    tw_wellness_time_range(tw_timestamp_new(arena, 5000), tw_timestamp_new(arena, 5000), v, &from,
                           &to);
    WX_ASSERT_VIOLATION(v, "end_time", "is not after start_time");
    tw_arena_free(arena);
}
END_TEST

START_TEST(date_ranges)
{
    tw_arena *arena = tw_arena_new(4096);
    tw_violations *v = wx_violations(arena);
    int32_t first, n;
    ck_assert_int_eq(tw_wellness_date_range(v, "2024-06-01", "2024-06-30", &first, &n), TW_OK);
    ck_assert_int_eq(first, tw_date_to_day(2024, 6, 1));
    ck_assert_int_eq(n, 30);
    ck_assert_int_eq(tw_wellness_date_range(v, "2024-06-01", "2024-06-01", &first, &n), TW_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(tw_wellness_date_range(v, "2024-01-01", "2024-12-31", &first, &n), TW_OK);
    ck_assert_int_eq(n, 366);
    ck_assert(!tw_violations_any(v));
    /* Empty dates are the engine's (required); here, the form and order. */
    struct {
        const char *a, *b, *field, *why;
    } bad_cases[] = {
        {"2024-06-31", "2024-07-01", "start_date", "YYYY-MM-DD"},
        {"2024-06-01", "June 2", "end_date", "YYYY-MM-DD"},
        {"2024-06-02", "2024-06-01", "end_date", "before start_date"},
        {"2023-01-01", "2024-01-02", "end_date", "more than 365 days"},
    };
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        v = wx_violations(arena);
        ck_assert_int_eq(tw_wellness_date_range(v, bad_cases[i].a, bad_cases[i].b, &first, &n),
                         TW_ERR_VALIDATION);
        ck_assert_uint_eq(tw_violations_total(v), 1);
        WX_ASSERT_VIOLATION(v, bad_cases[i].field, bad_cases[i].why);
    }
    /* Both bad: both reported. */
    v = wx_violations(arena);
    ck_assert_int_eq(tw_wellness_date_range(v, "June 1", "June 2", &first, &n), TW_ERR_VALIDATION);
    ck_assert_uint_eq(tw_violations_total(v), 2);
    tw_arena_free(arena);
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

/* A cursor: what tw_index_page hands back, and the kit's page token
 * carries (the kit binds tokens to the caller and request: test_kit). */
struct cursor {
    const uint8_t *bytes;
    size_t len;
};

static const struct cursor start = {NULL, 0};

static bool at_end(struct cursor c)
{
    return c.bytes == NULL;
}

static struct cursor page(int64_t from, int64_t to, struct cursor after, uint32_t limit,
                          struct seen *s)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_HEALTH_LOG_BY_TYPE);
    tw_key_id(&prefix, &fx_alice);
    tw_key_u32(&prefix, 1);
    struct cursor next;
    ck_assert_int_eq(tw_index_page(fx.store, &prefix, from, to, after.bytes, after.len, limit,
                                   fx.arena, take, s, &next.bytes, &next.len),
                     TW_OK);
    return next;
}

START_TEST(pages_newest_first_within_a_range)
{
    fill_index(10); /* times 0, 1000, ..., 9000 */
    struct seen s = {.n = 0};
    struct cursor next = page(INT64_MIN, INT64_MAX, start, 4, &s);
    ck_assert_int_eq(s.n, 4);
    ck_assert_int_eq(s.times[0], 9000);
    ck_assert_int_eq(s.times[3], 6000);
    ck_assert(!at_end(next));
    next = page(INT64_MIN, INT64_MAX, next, 4, &s);
    next = page(INT64_MIN, INT64_MAX, next, 4, &s);
    ck_assert_int_eq(s.n, 10);
    ck_assert_int_eq(s.times[9], 0);
    ck_assert(at_end(next));

    /* [2000, 7000): 6000 down to 2000; the end excluded, the start kept. */
    memset(&s, 0, sizeof s);
    next = page(2000, 7000, start, 50, &s);
    ck_assert_int_eq(s.n, 5);
    ck_assert_int_eq(s.times[0], 6000);
    ck_assert_int_eq(s.times[4], 2000);
    ck_assert(at_end(next));

    /* A full last page needs no token. */
    memset(&s, 0, sizeof s);
    next = page(2000, 7000, start, 5, &s);
    ck_assert(at_end(next));

    /* Filters: only even ones, pages still full. */
    memset(&s, 0, sizeof s);
    s.skip_odd = 1;
    next = page(INT64_MIN, INT64_MAX, start, 3, &s);
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(s.times[2], 4000);
    next = page(INT64_MIN, INT64_MAX, next, 3, &s);
    ck_assert_int_eq(s.n, 5);
    ck_assert(at_end(next));
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
    suite_add_tcase(s, store);
    return s;
}
