/* Unit tests for common/tw_id.c: UUIDv7 layout, order and text form. */
#include "tw_id.h"
#include "tw_time.h"

#include "tw_check.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

START_TEST(ids_are_v7_and_carry_the_time)
{
    int64_t before = tw_wall_ms();
    tw_id id = tw_id_new();
    int64_t after = tw_wall_ms();
    ck_assert(tw_id_is_v7(&id));
    ck_assert_int_ge(tw_id_unix_ms(&id), before);
    ck_assert_int_le(tw_id_unix_ms(&id), after + 1);
}
END_TEST

START_TEST(ids_made_in_a_row_sort_in_order)
{
    tw_id prev = tw_id_new();
    for (int i = 0; i < 100000; i++) {
        tw_id next = tw_id_new();
        ck_assert_msg(memcmp(prev.bytes, next.bytes, TW_ID_BYTES) < 0, "id %d not increasing", i);
        prev = next;
    }
}
END_TEST

START_TEST(text_form_round_trips)
{
    tw_id id = tw_id_new(), back;
    char text[TW_ID_TEXT_SIZE];
    tw_id_format(&id, text);
    ck_assert_uint_eq(strlen(text), 36);
    ck_assert(tw_id_parse(text, &back));
    ck_assert_mem_eq(id.bytes, back.bytes, TW_ID_BYTES);
    ck_assert(tw_id_parse("0190A1B2-C3D4-7E5F-8a9b-0c1d2e3f4a5b", &back));
}
END_TEST

START_TEST(text_form_is_canonical)
{
    tw_id id;
    for (int i = 0; i < TW_ID_BYTES; i++)
        id.bytes[i] = (uint8_t)(0x01 + 0x11 * i);
    char text[TW_ID_TEXT_SIZE];
    memset(text, 'x', sizeof text);
    tw_id_format(&id, text);
    ck_assert_str_eq(text, "01122334-4556-6778-899a-abbccddeef00");
}
END_TEST

/* Threads making ids at once: every id unique, each thread's in order. */
#define THREADS        4
#define IDS_PER_THREAD 20000
static tw_id made[THREADS][IDS_PER_THREAD];

static void *make_ids(void *arg)
{
    tw_id *out = arg;
    for (int i = 0; i < IDS_PER_THREAD; i++)
        out[i] = tw_id_new();
    return NULL;
}

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, TW_ID_BYTES);
}

START_TEST(ids_made_at_once_are_unique)
{
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++)
        ck_assert_int_eq(pthread_create(&threads[t], NULL, make_ids, made[t]), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    for (int t = 0; t < THREADS; t++)
        for (int i = 1; i < IDS_PER_THREAD; i++)
            ck_assert_int_lt(id_cmp(&made[t][i - 1], &made[t][i]), 0);
    qsort(made, THREADS * IDS_PER_THREAD, sizeof(tw_id), id_cmp);
    tw_id *all = &made[0][0];
    for (int i = 1; i < THREADS * IDS_PER_THREAD; i++)
        ck_assert_int_ne(id_cmp(&all[i - 1], &all[i]), 0);
}
END_TEST

START_TEST(bad_text_is_refused)
{
    tw_id out;
    const char *bad[] = {"",
                         "not-a-uuid",
                         "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b",
                         "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5",
                         "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5bb",
                         "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g",
                         "0190a1b2+c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                         "0190a1b2-c3d4-7e5f-8a9b0-c1d2e3f4a5b",
                         "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b0190"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!tw_id_parse(bad[i], &out), "accepted '%s'", bad[i]);
    ck_assert(!tw_id_parse(NULL, &out));
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("tw_id");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, ids_are_v7_and_carry_the_time);
    tcase_add_test(tc, ids_made_in_a_row_sort_in_order);
    tcase_add_test(tc, text_form_round_trips);
    tcase_add_test(tc, text_form_is_canonical);
    tcase_add_test(tc, ids_made_at_once_are_unique);
    tcase_add_test(tc, bad_text_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
