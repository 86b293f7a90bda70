/* Unit tests for store/key.c: every encoding sorts as its values do
 * (checked on random values), reads back, and refuses what is malformed. */
#include "tw_key.h"

#include "tw_check.h"

#include <string.h>

#define ROUNDS 20000

/* xorshift64*: deterministic, so a failure repeats. */
static uint64_t rnd(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

static int bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return sign(c != 0 ? c : (alen > blen) - (alen < blen));
}

static int key_cmp(const tw_key *a, const tw_key *b)
{
    ck_assert_int_eq(a->err, TW_OK);
    ck_assert_int_eq(b->err, TW_OK);
    return bytes_cmp(a->bytes, a->len, b->bytes, b->len);
}

/* A value with a bias towards the edges, where encodings go wrong. */
static uint64_t edgy(uint64_t *state)
{
    static const uint64_t edges[] = {0,
                                     1,
                                     0x7f,
                                     0x80,
                                     0xff,
                                     0x100,
                                     UINT32_MAX,
                                     (uint64_t)INT64_MAX,
                                     (uint64_t)INT64_MAX + 1,
                                     UINT64_MAX - 1,
                                     UINT64_MAX};
    uint64_t r = rnd(state);
    return r % 4 == 0 ? edges[r / 4 % (sizeof edges / sizeof edges[0])] : rnd(state) >> (r % 64);
}

static const tw_id user = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};

static void change_key(tw_key *k, uint64_t seq)
{
    tw_key_init(k, TW_KF_CHANGE);
    tw_key_id(k, &user);
    tw_key_u64(k, seq);
}

static void due_key(tw_key *k, int64_t due)
{
    tw_key_init(k, TW_KF_JOB_DUE);
    tw_key_str(k, "t");
    tw_key_i64(k, due);
    tw_key_id(k, &user);
}

START_TEST(u64_order_matches_value_order)
{
    uint64_t st = 1;
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t a = edgy(&st), b = edgy(&st);
        tw_key ka, kb;
        change_key(&ka, a);
        change_key(&kb, b);
        ck_assert_msg(key_cmp(&ka, &kb) == (a > b) - (a < b), "%llu vs %llu", (unsigned long long)a,
                      (unsigned long long)b);
        tw_key_reader r;
        uint64_t back;
        tw_id id;
        tw_key_read_init(&r, TW_KF_CHANGE, ka.bytes, ka.len);
        tw_key_read_id(&r, &id);
        tw_key_read_u64(&r, &back);
        ck_assert_int_eq(r.err, TW_OK);
        ck_assert_uint_eq(back, a);
    }
}
END_TEST

START_TEST(i64_order_matches_value_order)
{
    uint64_t st = 2;
    for (int i = 0; i < ROUNDS; i++) {
        int64_t a = (int64_t)edgy(&st), b = (int64_t)edgy(&st);
        if (i % 3 == 0)
            a = (int64_t)(0 - (uint64_t)a); /* negatives too (INT64_MIN stays itself) */
        tw_key ka, kb;
        due_key(&ka, a);
        due_key(&kb, b);
        ck_assert_msg(key_cmp(&ka, &kb) == (a > b) - (a < b), "%lld vs %lld", (long long)a,
                      (long long)b);
        tw_arena *arena = tw_arena_new(64);
        tw_key_reader r;
        char *type;
        int64_t back;
        tw_key_read_init(&r, TW_KF_JOB_DUE, ka.bytes, ka.len);
        tw_key_read_str(&r, arena, &type, NULL);
        tw_key_read_i64(&r, &back);
        ck_assert_int_eq(r.err, TW_OK);
        ck_assert_str_eq(type, "t");
        ck_assert_int_eq(back, a);
        tw_arena_free(arena);
    }
}
END_TEST

START_TEST(u32_order_matches_value_order)
{
    uint64_t st = 3;
    for (int i = 0; i < ROUNDS; i++) {
        uint32_t a = (uint32_t)edgy(&st), b = (uint32_t)edgy(&st);
        tw_key ka, kb;
        tw_key_init(&ka, TW_KF_MIGRATION);
        tw_key_u32(&ka, a);
        tw_key_init(&kb, TW_KF_MIGRATION);
        tw_key_u32(&kb, b);
        ck_assert_int_eq(key_cmp(&ka, &kb), (a > b) - (a < b));
        tw_key_reader r;
        uint32_t back;
        tw_key_read_init(&r, TW_KF_MIGRATION, ka.bytes, ka.len);
        tw_key_read_u32(&r, &back);
        ck_assert_int_eq(r.err, TW_OK);
        ck_assert_uint_eq(back, a);
    }
}
END_TEST

START_TEST(ids_sort_by_creation_time)
{
    tw_key prev;
    tw_id first = tw_id_new();
    tw_key_init(&prev, TW_KF_JOB);
    tw_key_id(&prev, &first);
    for (int i = 0; i < ROUNDS; i++) {
        tw_id id = tw_id_new();
        tw_key k;
        tw_key_init(&k, TW_KF_JOB);
        tw_key_id(&k, &id);
        ck_assert_int_eq(key_cmp(&prev, &k), -1);
        prev = k;
    }
}
END_TEST

/* Random byte strings over an alphabet of the bytes the escaping treats
 * specially, so embedded NULs, 0x01 and 0xff meet each other often. */
static size_t random_string(uint64_t *st, char *buf)
{
    static const char alphabet[] = {0x00, 0x01, 'a', 'b', (char)0xfe, (char)0xff};
    size_t n = rnd(st) % 7;
    for (size_t i = 0; i < n; i++)
        buf[i] = alphabet[rnd(st) % sizeof alphabet];
    return n;
}

START_TEST(string_tuples_order_matches_value_order)
{
    uint64_t st = 4;
    for (int i = 0; i < ROUNDS; i++) {
        char s1[8], v1[8], s2[8], v2[8];
        size_t ls1 = random_string(&st, s1), lv1 = random_string(&st, v1);
        size_t ls2 = random_string(&st, s2), lv2 = random_string(&st, v2);
        int want = bytes_cmp(s1, ls1, s2, ls2);
        if (want == 0)
            want = bytes_cmp(v1, lv1, v2, lv2);
        tw_key ka, kb;
        tw_key_init(&ka, TW_KF_UNIQUE);
        tw_key_strn(&ka, s1, ls1);
        tw_key_strn(&ka, v1, lv1);
        tw_key_init(&kb, TW_KF_UNIQUE);
        tw_key_strn(&kb, s2, ls2);
        tw_key_strn(&kb, v2, lv2);
        ck_assert_msg(key_cmp(&ka, &kb) == want, "round %d", i);

        tw_arena *arena = tw_arena_new(64);
        tw_key_reader r;
        char *rs, *rv;
        size_t lrs, lrv;
        tw_key_read_init(&r, TW_KF_UNIQUE, ka.bytes, ka.len);
        tw_key_read_str(&r, arena, &rs, &lrs);
        tw_key_read_str(&r, arena, &rv, &lrv);
        ck_assert_int_eq(r.err, TW_OK);
        ck_assert_uint_eq(lrs, ls1);
        ck_assert_uint_eq(lrv, lv1);
        ck_assert(memcmp(rs, s1, ls1) == 0 && memcmp(rv, v1, lv1) == 0);
        ck_assert_int_eq(tw_key_validate(ka.bytes, ka.len, NULL), TW_OK);
        tw_arena_free(arena);
    }
}
END_TEST

START_TEST(a_prefix_key_is_a_prefix_of_its_keys)
{
    tw_key prefix, full;
    tw_key_init(&prefix, TW_KF_USER_COUNTER);
    tw_key_id(&prefix, &user);
    tw_key_str(&prefix, "tasks_done");
    tw_key_init(&full, TW_KF_USER_COUNTER);
    tw_key_id(&full, &user);
    tw_key_str(&full, "tasks_done");
    tw_key_str(&full, "");
    tw_key_u32(&full, 19876);
    ck_assert(!tw_key_complete(&prefix));
    ck_assert(tw_key_complete(&full));
    ck_assert_uint_lt(prefix.len, full.len);
    ck_assert_mem_eq(prefix.bytes, full.bytes, prefix.len);
    /* A longer name is not under the prefix of a shorter one. */
    tw_key other;
    tw_key_init(&other, TW_KF_USER_COUNTER);
    tw_key_id(&other, &user);
    tw_key_str(&other, "tasks_done_late");
    ck_assert(memcmp(prefix.bytes, other.bytes, prefix.len) != 0);
}
END_TEST

START_TEST(building_errors_are_sticky)
{
    tw_key k;
    tw_key_init(&k, TW_KF_CHANGE);
    tw_key_u64(&k, 1); /* the user id comes first */
    ck_assert_int_eq(k.err, TW_ERR_INTERNAL);
    size_t len = k.len;
    tw_key_id(&k, &user);
    ck_assert_int_eq(k.err, TW_ERR_INTERNAL);
    ck_assert_uint_eq(k.len, len);
    ck_assert(!tw_key_complete(&k));

    tw_key_init(&k, TW_KF_MIGRATION);
    tw_key_u32(&k, 1);
    tw_key_u32(&k, 2); /* one part too many */
    ck_assert_int_eq(k.err, TW_ERR_INTERNAL);

    char big[TW_KEY_MAX];
    memset(big, 'x', sizeof big);
    tw_key_init(&k, TW_KF_UNIQUE);
    tw_key_strn(&k, big, sizeof big);
    ck_assert_int_eq(k.err, TW_ERR_VALIDATION);
    tw_key_init(&k, TW_KF_UNIQUE);
    tw_key_strn(&k, big, TW_KEY_MAX - 1 - 2); /* exactly fills the key */
    ck_assert_int_eq(k.err, TW_OK);
    ck_assert_uint_eq(k.len, TW_KEY_MAX);
}
END_TEST

START_TEST(malformed_keys_are_corrupt)
{
    tw_key k;
    tw_key_init(&k, TW_KF_UNIQUE);
    tw_key_str(&k, "email");
    tw_key_str(&k, "a@b.c");
    tw_arena *arena = tw_arena_new(64);
    tw_key_reader r;
    char *s;

    /* Truncated inside the second string. */
    tw_key_read_init(&r, TW_KF_UNIQUE, k.bytes, k.len - 3);
    tw_key_read_str(&r, arena, &s, NULL);
    tw_key_read_str(&r, arena, &s, NULL);
    ck_assert_int_eq(r.err, TW_ERR_DB_CORRUPT);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(tw_key_validate(k.bytes, k.len - 3, NULL), TW_ERR_DB_CORRUPT);

    /* An escape byte followed by neither ff nor 01. */
    uint8_t bad[] = {k.bytes[0], 'a', 0x00, 0x07, 0x00, 0x01};
    tw_key_read_init(&r, TW_KF_UNIQUE, bad, sizeof bad);
    tw_key_read_str(&r, arena, &s, NULL);
    ck_assert_int_eq(r.err, TW_ERR_DB_CORRUPT);

    /* Read as another family. */
    tw_key_read_init(&r, TW_KF_JOB, k.bytes, k.len);
    ck_assert_int_eq(r.err, TW_ERR_DB_CORRUPT);

    /* Trailing bytes, no bytes, an unknown prefix. */
    uint8_t longer[TW_KEY_MAX + 1];
    memcpy(longer, k.bytes, k.len);
    longer[k.len] = 'z';
    tw_kf kf;
    ck_assert_int_eq(tw_key_validate(k.bytes, k.len, &kf), TW_OK);
    ck_assert_int_eq(kf, TW_KF_UNIQUE);
    ck_assert_int_eq(tw_key_validate(longer, k.len + 1, NULL), TW_ERR_DB_CORRUPT);
    ck_assert_int_eq(tw_key_validate(longer, 0, NULL), TW_ERR_DB_CORRUPT);
    uint8_t unknown[] = {0xee, 1, 2};
    ck_assert_int_eq(tw_key_validate(unknown, sizeof unknown, NULL), TW_ERR_DB_CORRUPT);
    tw_arena_free(arena);
}
END_TEST

START_TEST(reading_a_part_out_of_order_is_a_bug)
{
    tw_key k;
    change_key(&k, 7);
    tw_key_reader r;
    uint64_t v;
    tw_key_read_init(&r, TW_KF_CHANGE, k.bytes, k.len);
    tw_key_read_u64(&r, &v);
    ck_assert_int_eq(r.err, TW_ERR_INTERNAL);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("key");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, u64_order_matches_value_order);
    tcase_add_test(tc, i64_order_matches_value_order);
    tcase_add_test(tc, u32_order_matches_value_order);
    tcase_add_test(tc, ids_sort_by_creation_time);
    tcase_add_test(tc, string_tuples_order_matches_value_order);
    tcase_add_test(tc, a_prefix_key_is_a_prefix_of_its_keys);
    tcase_add_test(tc, building_errors_are_sticky);
    tcase_add_test(tc, malformed_keys_are_corrupt);
    tcase_add_test(tc, reading_a_part_out_of_order_is_a_bug);
    suite_add_tcase(s, tc);
    return s;
}
