/* Unit tests for store/page.c: page sizes, and page tokens that round-trip
 * and are refused when edited, forged, or used by another user or for
 * another query. */
#include "store_fixture.h"
#include "tw_page.h"

#include "tw_check.h"

#include <string.h>

static const char query[] = "status=done;order=due_time desc";
static const uint8_t cursor[] = {0x31, 0x00, 0xff, 0x10, 0x20};

static char *make(const tw_id *user, const char *q, const void *cur, size_t len)
{
    char *token;
    ck_assert_int_eq(
        tw_store_page_token_make(fx.store, user, q, strlen(q), cur, len, fx.arena, &token), TW_OK);
    return token;
}

static tw_err read_token(const tw_id *user, const char *q, const char *token, uint8_t **cur,
                         size_t *len)
{
    return tw_store_page_token_read(fx.store, user, q, strlen(q), token, fx.arena, cur, len);
}

START_TEST(page_sizes_default_and_cap)
{
    uint32_t n;
    ck_assert_int_eq(tw_store_page_size(0, &n), TW_OK);
    ck_assert_uint_eq(n, TW_PAGE_SIZE_DEFAULT);
    ck_assert_int_eq(tw_store_page_size(7, &n), TW_OK);
    ck_assert_uint_eq(n, 7);
    ck_assert_int_eq(tw_store_page_size(TW_PAGE_SIZE_MAX, &n), TW_OK);
    ck_assert_uint_eq(n, TW_PAGE_SIZE_MAX);
    ck_assert_int_eq(tw_store_page_size(TW_PAGE_SIZE_MAX + 1, &n), TW_OK);
    ck_assert_uint_eq(n, TW_PAGE_SIZE_MAX);
    ck_assert_int_eq(tw_store_page_size(INT32_MAX, &n), TW_OK);
    ck_assert_uint_eq(n, TW_PAGE_SIZE_MAX);
    ck_assert_int_eq(tw_store_page_size(-1, &n), TW_ERR_VALIDATION);
}
END_TEST

START_TEST(tokens_round_trip_and_look_opaque)
{
    char *token = make(&fx_alice, query, cursor, sizeof cursor);
    ck_assert_uint_eq(
        strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        strlen(token));
    uint8_t *cur;
    size_t len;
    ck_assert_int_eq(read_token(&fx_alice, query, token, &cur, &len), TW_OK);
    ck_assert_uint_eq(len, sizeof cursor);
    ck_assert_mem_eq(cur, cursor, sizeof cursor);
    /* The longest cursor, and a service-wide list with no user. */
    uint8_t big[TW_PAGE_CURSOR_MAX];
    memset(big, 0xab, sizeof big);
    token = make(NULL, "", big, sizeof big);
    ck_assert_int_eq(read_token(NULL, "", token, &cur, &len), TW_OK);
    ck_assert_uint_eq(len, sizeof big);
    /* No token is the first page. */
    ck_assert_int_eq(read_token(&fx_alice, query, "", &cur, &len), TW_OK);
    ck_assert_ptr_null(cur);
    ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(tokens_are_bound_to_user_and_query)
{
    char *token = make(&fx_alice, query, cursor, sizeof cursor);
    uint8_t *cur;
    size_t len;
    ck_assert_int_eq(read_token(&fx_bob, query, token, &cur, &len), TW_ERR_BAD_PAGE_TOKEN);
    ck_assert_int_eq(read_token(NULL, query, token, &cur, &len), TW_ERR_BAD_PAGE_TOKEN);
    ck_assert_int_eq(read_token(&fx_alice, "status=todo;order=due_time desc", token, &cur, &len),
                     TW_ERR_BAD_PAGE_TOKEN);
    ck_assert_int_eq(read_token(&fx_alice, "", token, &cur, &len), TW_ERR_BAD_PAGE_TOKEN);
}
END_TEST

START_TEST(any_edit_is_refused)
{
    char *token = make(&fx_alice, query, cursor, sizeof cursor);
    size_t n = strlen(token);
    static const char alphabet[] = "AZaz09-_Qg";
    for (size_t i = 0; i < n; i++) {
        for (const char *c = alphabet; *c; c++) {
            if (*c == token[i])
                continue;
            char *edited = tw_arena_strdup(fx.arena, token);
            edited[i] = *c;
            uint8_t *cur;
            size_t len;
            ck_assert_msg(read_token(&fx_alice, query, edited, &cur, &len) == TW_ERR_BAD_PAGE_TOKEN,
                          "position %zu to %c accepted", i, *c);
        }
    }
}
END_TEST

START_TEST(malformed_tokens_are_refused)
{
    char *token = make(&fx_alice, query, cursor, sizeof cursor);
    size_t n = strlen(token);
    const char *bad[] = {
        "a", "====", "not a token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AQ", "+/+/+/+/",
    };
    uint8_t *cur;
    size_t len;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(read_token(&fx_alice, query, bad[i], &cur, &len) == TW_ERR_BAD_PAGE_TOKEN,
                      "accepted %s", bad[i]);
    /* Truncated, extended, and far too long. */
    char *cut = tw_arena_strndup(fx.arena, token, n - 1);
    ck_assert_int_eq(read_token(&fx_alice, query, cut, &cur, &len), TW_ERR_BAD_PAGE_TOKEN);
    char *longer = tw_arena_printf(fx.arena, "%sAA", token);
    ck_assert_int_eq(read_token(&fx_alice, query, longer, &cur, &len), TW_ERR_BAD_PAGE_TOKEN);
    char *huge = tw_arena_alloc(fx.arena, 8192);
    memset(huge, 'A', 8191);
    ck_assert_int_eq(read_token(&fx_alice, query, huge, &cur, &len), TW_ERR_BAD_PAGE_TOKEN);
    /* A token made under another store's key. */
    fx_store other;
    fx_open(&other);
    char *foreign;
    ck_assert_int_eq(tw_store_page_token_make(other.store, &fx_alice, query, strlen(query), cursor,
                                              sizeof cursor, fx.arena, &foreign),
                     TW_OK);
    fx_close(&other);
    ck_assert_int_eq(read_token(&fx_alice, query, foreign, &cur, &len), TW_ERR_BAD_PAGE_TOKEN);
    /* Cursors that no list could make. */
    char *none;
    ck_assert_int_eq(
        tw_store_page_token_make(fx.store, &fx_alice, "", 0, cursor, 0, fx.arena, &none),
        TW_ERR_INTERNAL);
}
END_TEST

START_TEST(the_next_cursor_is_a_copy_of_the_last_key)
{
    uint8_t last[3] = {1, 2, 3};
    uint8_t *next;
    size_t len;
    ck_assert_int_eq(tw_store_page_cursor(fx.arena, last, sizeof last, &next, &len), TW_OK);
    last[0] = 9; /* the scan moves on; the cursor stays */
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(next, ((uint8_t[]){1, 2, 3}), 3);
}
END_TEST

/* ---- tw_store_page_scan ----------------------------------------------------- */

static const tw_id scan_user = {{0x01, 0x8f, [15] = 0x07}};

/* Ten keys (scan_user, start_ms = 10, 20, ... 100, id), as an index a
 * list pages through. */
static void put_ten(void)
{
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    for (int i = 1; i <= 10; i++) {
        tw_id id = {{0x01, 0x90, [15] = (uint8_t)i}};
        tw_key k;
        tw_key_init(&k, TW_KF_FOCUS_SESSION_BY_START);
        tw_key_id(&k, &scan_user);
        tw_key_i64(&k, 10 * i);
        tw_key_id(&k, &id);
        ck_assert_int_eq(tw_txn_put(t, &k, &(tw_value){0}), TW_OK);
    }
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
}

/* Takes the keys whose time is not a multiple of skip_every (0: all),
 * recording the times shown and taken. */
struct scan_seen {
    int skip_every;
    int64_t shown[16], taken[16];
    size_t nshown, ntaken;
};

static tw_err scan_item(void *ctx, tw_store_iter *it, bool *taken)
{
    struct scan_seen *s = ctx;
    tw_key_reader r;
    tw_store_iter_read_key(it, &r);
    tw_id user;
    int64_t ms;
    tw_key_read_id(&r, &user);
    tw_key_read_i64(&r, &ms);
    s->shown[s->nshown++] = ms;
    if (s->skip_every == 0 || ms % s->skip_every != 0) {
        s->taken[s->ntaken++] = ms;
        *taken = true;
    }
    return r.err;
}

static tw_key scan_prefix(void)
{
    tw_key k;
    tw_key_init(&k, TW_KF_FOCUS_SESSION_BY_START);
    tw_key_id(&k, &scan_user);
    return k;
}

/* One page of q into s (fresh, taking what skip_every lets through);
 * q->after moves on to the next page's cursor. Whether there is one. */
static bool page(tw_store_page_query *q, struct scan_seen *s, int skip_every)
{
    *s = (struct scan_seen){.skip_every = skip_every};
    uint8_t *next;
    size_t next_len;
    ck_assert_int_eq(tw_store_page_scan(fx.store, q, scan_item, s, fx.arena, &next, &next_len),
                     TW_OK);
    ck_assert_uint_eq(next == NULL, next_len == 0);
    q->after = next;
    q->after_len = next_len;
    return next != NULL;
}

START_TEST(a_scan_pages_on_from_its_cursor_to_the_end)
{
    put_ten();
    tw_key prefix = scan_prefix();
    tw_store_page_query q = {.prefix = &prefix, .reverse = true, .limit = 4};
    struct scan_seen s;
    ck_assert(page(&q, &s, 0));
    ck_assert_uint_eq(s.ntaken, 4);
    ck_assert_int_eq(s.taken[0], 100);
    ck_assert_int_eq(s.taken[3], 70);
    q.limit = 6;
    /* Exactly the rest: no next page. */
    ck_assert(!page(&q, &s, 0));
    ck_assert_uint_eq(s.ntaken, 6);
    ck_assert_int_eq(s.taken[0], 60);
    ck_assert_int_eq(s.taken[5], 10);
}
END_TEST

START_TEST(a_range_ends_the_page_before_it_is_full)
{
    put_ten();
    tw_key prefix = scan_prefix(), stop = prefix;
    tw_key_i64(&stop, 70); /* newest first, down to time 70 */
    tw_store_page_query q = {.prefix = &prefix, .reverse = true, .stop = &stop, .limit = 4};
    struct scan_seen s;
    /* 100, 90, 80, 70: a full page, and the range has nothing after it. */
    ck_assert(!page(&q, &s, 0));
    ck_assert_uint_eq(s.ntaken, 4);
    ck_assert_int_eq(s.taken[3], 70);
    /* Forward: from the first key up to (not including) time 40. */
    stop = prefix;
    tw_key_i64(&stop, 40);
    q = (tw_store_page_query){.prefix = &prefix, .stop = &stop, .limit = 10};
    ck_assert(!page(&q, &s, 0));
    ck_assert_uint_eq(s.ntaken, 3);
    ck_assert_int_eq(s.taken[2], 30);
}
END_TEST

START_TEST(a_sparse_filter_ends_the_page_early_with_a_cursor)
{
    put_ten();
    tw_key prefix = scan_prefix();
    /* Takes only odd tens: 90, 70, 50... */
    tw_store_page_query q = {.prefix = &prefix, .reverse = true, .limit = 5, .max_scan = 4};
    struct scan_seen s;
    ck_assert(page(&q, &s, 20));
    ck_assert_uint_eq(s.nshown, 4);
    ck_assert_uint_eq(s.ntaken, 2);
    ck_assert_int_eq(s.taken[1], 70);
    q.max_scan = 0;
    ck_assert(!page(&q, &s, 20));
    ck_assert_int_eq(s.shown[0], 60);
    ck_assert_uint_eq(s.ntaken, 3);
}
END_TEST

static tw_err scan_fails(void *ctx, tw_store_iter *it, bool *taken)
{
    (void)it, (void)taken;
    return ++*(int *)ctx == 3 ? TW_ERR_DB_CORRUPT : TW_OK;
}

START_TEST(the_callbacks_error_ends_the_page)
{
    put_ten();
    tw_key prefix = scan_prefix();
    tw_store_page_query q = {.prefix = &prefix, .limit = 10};
    int calls = 0;
    uint8_t *next;
    size_t next_len;
    ck_assert_int_eq(
        tw_store_page_scan(fx.store, &q, scan_fails, &calls, fx.arena, &next, &next_len),
        TW_ERR_DB_CORRUPT);
    ck_assert_int_eq(calls, 3);
    ck_assert_ptr_null(next);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("page");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, page_sizes_default_and_cap);
    tcase_add_test(tc, tokens_round_trip_and_look_opaque);
    tcase_add_test(tc, tokens_are_bound_to_user_and_query);
    tcase_add_test(tc, any_edit_is_refused);
    tcase_add_test(tc, malformed_tokens_are_refused);
    tcase_add_test(tc, a_scan_pages_on_from_its_cursor_to_the_end);
    tcase_add_test(tc, a_range_ends_the_page_before_it_is_full);
    tcase_add_test(tc, a_sparse_filter_ends_the_page_early_with_a_cursor);
    tcase_add_test(tc, the_callbacks_error_ends_the_page);
    tcase_add_test(tc, the_next_cursor_is_a_copy_of_the_last_key);
    suite_add_tcase(s, tc);
    return s;
}
