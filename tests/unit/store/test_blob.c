/* Unit tests for store/blob.c, the layer every backend shares: which keys
 * are valid, and the streaming contract, run here on the filesystem
 * backend. */
#include "store_fixture.h"
#include "tw_blob.h"

#include "tw_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(keys_are_checked)
{
    const char *good[] = {"a", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/note.webm", "a/b/c", "A_b-c.d",
                          "x.."};
    const char *bad[] = {"",      "/a", "a/",  "a//b", ".tmp/x", "a/../b",
                         "a/./b", "..", "a b", "a\\b", "ü",      "a/.hidden"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(tw_blob_key_valid(good[i]), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!tw_blob_key_valid(bad[i]), "%s", bad[i]);
    char longest[TW_BLOB_KEY_MAX + 2];
    memset(longest, 'k', sizeof longest);
    longest[TW_BLOB_KEY_MAX] = '\0';
    ck_assert(tw_blob_key_valid(longest));
    longest[TW_BLOB_KEY_MAX] = 'k';
    longest[TW_BLOB_KEY_MAX + 1] = '\0';
    ck_assert(!tw_blob_key_valid(longest));
    ck_assert(!tw_blob_key_valid(NULL));

    tw_blob_writer *w;
    tw_blob_reader *r;
    tw_blob_info info;
    ck_assert_int_eq(tw_blob_writer_open(fxb.blobs, "../escape", &w), TW_ERR_VALIDATION);
    ck_assert_ptr_null(w);
    ck_assert_int_eq(tw_blob_reader_open(fxb.blobs, "a//b", 0, &r, &info), TW_ERR_VALIDATION);
    ck_assert_int_eq(tw_blob_delete(fxb.blobs, "/etc/passwd"), TW_ERR_VALIDATION);
    ck_assert_int_eq(tw_blob_stat(fxb.blobs, "", &info), TW_ERR_VALIDATION);
}
END_TEST

static void put(const char *key, const char *text)
{
    tw_blob_writer *w;
    ck_assert_int_eq(tw_blob_writer_open(fxb.blobs, key, &w), TW_OK);
    ck_assert_int_eq(tw_blob_writer_append(w, text, strlen(text)), TW_OK);
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
}

/* The whole blob, read in small pieces from offset (malloc'd). */
static char *get(const char *key, uint64_t offset)
{
    tw_blob_reader *r;
    tw_blob_info info;
    ck_assert_int_eq(tw_blob_reader_open(fxb.blobs, key, offset, &r, &info), TW_OK);
    char *buf = calloc(1, info.size + 1);
    size_t at = 0, n;
    do {
        ck_assert_int_eq(tw_blob_reader_read(r, buf + at, 3, &n), TW_OK);
        at += n;
    } while (n > 0);
    ck_assert_uint_eq(at, info.size - offset);
    tw_blob_reader_close(r);
    return buf;
}

START_TEST(a_blob_appears_whole_at_commit)
{
    const char *key = "user-1/note-1";
    tw_blob_writer *w;
    tw_blob_info info;
    ck_assert_int_eq(tw_blob_writer_open(fxb.blobs, key, &w), TW_OK);
    for (int i = 0; i < 1000; i++) {
        char chunk[16];
        snprintf(chunk, sizeof chunk, "%08d", i);
        ck_assert_int_eq(tw_blob_writer_append(w, chunk, 8), TW_OK);
        if (i == 500)
            ck_assert_int_eq(tw_blob_stat(fxb.blobs, key, &info), TW_ERR_NOT_FOUND);
    }
    ck_assert_int_eq(tw_blob_writer_append(w, "", 0), TW_OK);
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
    ck_assert_int_eq(tw_blob_stat(fxb.blobs, key, &info), TW_OK);
    ck_assert_uint_eq(info.size, 8000);
    ck_assert_int_gt(info.mtime_ms, 0);
    char *all = get(key, 0);
    ck_assert_mem_eq(all + 8 * 123, "00000123", 8);
    free(all);
    char *tail = get(key, 7992);
    ck_assert_str_eq(tail, "00000999");
    free(tail);
}
END_TEST

START_TEST(an_aborted_blob_leaves_nothing)
{
    tw_blob_writer *w;
    tw_blob_info info;
    ck_assert_int_eq(tw_blob_writer_open(fxb.blobs, "u/aborted", &w), TW_OK);
    ck_assert_int_eq(tw_blob_writer_append(w, "partial", 7), TW_OK);
    tw_blob_writer_abort(w);
    tw_blob_writer_abort(NULL);
    ck_assert_int_eq(tw_blob_stat(fxb.blobs, "u/aborted", &info), TW_ERR_NOT_FOUND);
}
END_TEST

START_TEST(a_commit_replaces_the_old_blob_at_once)
{
    put("u/n", "old contents");
    tw_blob_writer *w;
    ck_assert_int_eq(tw_blob_writer_open(fxb.blobs, "u/n", &w), TW_OK);
    ck_assert_int_eq(tw_blob_writer_append(w, "new", 3), TW_OK);
    char *still = get("u/n", 0);
    ck_assert_str_eq(still, "old contents");
    free(still);
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
    char *now = get("u/n", 0);
    ck_assert_str_eq(now, "new");
    free(now);
}
END_TEST

START_TEST(missing_blobs_are_not_found)
{
    tw_blob_reader *r;
    tw_blob_info info;
    ck_assert_int_eq(tw_blob_reader_open(fxb.blobs, "u/none", 0, &r, &info), TW_ERR_NOT_FOUND);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(tw_blob_stat(fxb.blobs, "u/none", &info), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_blob_delete(fxb.blobs, "u/none"), TW_ERR_NOT_FOUND);
    put("u/n", "abc");
    ck_assert_int_eq(tw_blob_stat(fxb.blobs, "u", &info), TW_ERR_NOT_FOUND); /* a "directory" */
    ck_assert_int_eq(tw_blob_reader_open(fxb.blobs, "u/n/x", 0, &r, &info), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_blob_reader_open(fxb.blobs, "u/n", 4, &r, &info), TW_ERR_VALIDATION);
    tw_blob_reader_close(NULL);
}
END_TEST

START_TEST(deleted_blobs_are_gone)
{
    put("u/a", "1");
    put("u/b", "2");
    ck_assert_int_eq(tw_blob_delete(fxb.blobs, "u/a"), TW_OK);
    tw_blob_info info;
    ck_assert_int_eq(tw_blob_stat(fxb.blobs, "u/a", &info), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_blob_stat(fxb.blobs, "u/b", &info), TW_OK);
    ck_assert_int_eq(tw_blob_delete(fxb.blobs, "u/b"), TW_OK);
    put("u/c", "3"); /* the emptied directory comes back */
    ck_assert_int_eq(tw_blob_stat(fxb.blobs, "u/c", &info), TW_OK);
}
END_TEST

struct listing {
    int count;
    uint64_t bytes;
    char keys[8][64];
};

static tw_err collect(void *ctx, const char *key, const tw_blob_info *info)
{
    struct listing *l = ctx;
    ck_assert_int_lt(l->count, 8);
    snprintf(l->keys[l->count++], 64, "%s", key);
    l->bytes += info->size;
    return TW_OK;
}

static tw_err stop(void *ctx, const char *key, const tw_blob_info *info)
{
    return TW_ERR_CANCELLED;
}

static bool listed(const struct listing *l, const char *key)
{
    for (int i = 0; i < l->count; i++)
        if (strcmp(l->keys[i], key) == 0)
            return true;
    return false;
}

START_TEST(listing_by_prefix)
{
    put("alice/n1", "11");
    put("alice/n2", "222");
    put("alicia/n1", "4444");
    put("bob/n1", "1");
    tw_blob_writer *w;
    ck_assert_int_eq(tw_blob_writer_open(fxb.blobs, "alice/uncommitted", &w), TW_OK);
    struct listing l = {0};
    ck_assert_int_eq(tw_blob_list(fxb.blobs, "alice/", collect, &l), TW_OK);
    ck_assert_int_eq(l.count, 2);
    ck_assert(listed(&l, "alice/n1") && listed(&l, "alice/n2"));
    ck_assert_uint_eq(l.bytes, 5);
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(tw_blob_list(fxb.blobs, "ali", collect, &l), TW_OK);
    ck_assert_int_eq(l.count, 3);
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(tw_blob_list(fxb.blobs, "", collect, &l), TW_OK);
    ck_assert_int_eq(l.count, 4);
    ck_assert_int_eq(tw_blob_list(fxb.blobs, "", stop, NULL), TW_ERR_CANCELLED);
    tw_blob_writer_abort(w);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("blob");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, fxb_setup, fxb_teardown);
    tcase_add_test(tc, keys_are_checked);
    tcase_add_test(tc, a_blob_appears_whole_at_commit);
    tcase_add_test(tc, an_aborted_blob_leaves_nothing);
    tcase_add_test(tc, a_commit_replaces_the_old_blob_at_once);
    tcase_add_test(tc, missing_blobs_are_not_found);
    tcase_add_test(tc, deleted_blobs_are_gone);
    tcase_add_test(tc, listing_by_prefix);
    suite_add_tcase(s, tc);
    return s;
}
