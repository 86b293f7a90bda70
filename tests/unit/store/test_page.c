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
    tcase_add_test(tc, the_next_cursor_is_a_copy_of_the_last_key);
    suite_add_tcase(s, tc);
    return s;
}
