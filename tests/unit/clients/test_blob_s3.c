/*
 * Unit tests for clients/blob_s3.c, the S3 backend of tw_blob.h, end to end
 * against s3rver on loopback: the streaming contract (invisible until
 * commit, whole at commit, replace, NOT_FOUND), multipart with several
 * 5 MiB parts read back byte for byte, an abort that leaves no parts, the
 * start-up sweep of incomplete uploads older than a day, listings, and the
 * errors a bad configuration gets.
 *
 * s3rver does not check signatures, so nothing here proves the signing:
 * test_sigv4.c does, with AWS's published vectors.
 */
#include "blob_s3.h"
#include "vendor_fixture.h"

#include "tw_check.h"
#include "tw_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static fx_s3 fx;
static tw_blob_store *blobs;
static tw_s3 *s3; /* to look behind the backend's back */

static tw_blob_s3_options options(void)
{
    return (tw_blob_s3_options){.s3 = fx.cfg};
}

static void setup(void)
{
    fx_s3_start(&fx);
    tw_blob_s3_options o = options();
    ck_assert_int_eq(tw_blob_s3_open(&o, &blobs), TW_OK);
    ck_assert_int_eq(tw_s3_new(&fx.cfg, &s3), TW_OK);
}

static void teardown(void)
{
    tw_blob_close(blobs);
    tw_s3_free(s3);
    fx_s3_stop(&fx);
}

static tw_err count(void *ctx, const char *key, const char *id, int64_t ms)
{
    (*(int *)ctx)++;
    return TW_OK;
}

static int uploads_listed(void)
{
    int n = 0;
    ck_assert_int_eq(tw_s3_list_multipart_uploads(s3, "", count, &n, NULL), TW_OK);
    return n;
}

static unsigned char byte_at(uint64_t i)
{
    return (unsigned char)((i * 2654435761u) >> 11);
}

/* Writes size pattern bytes to key in chunk-sized appends and checks that
 * none of it is visible yet; returns the open writer. */
static tw_blob_writer *write_over(const char *key, size_t size, size_t chunk, bool replacing)
{
    tw_blob_writer *w;
    ck_assert_int_eq(tw_blob_writer_open(blobs, key, &w), TW_OK);
    unsigned char *buf = malloc(chunk);
    for (size_t at = 0; at < size; at += chunk) {
        size_t n = size - at < chunk ? size - at : chunk;
        for (size_t i = 0; i < n; i++)
            buf[i] = byte_at(at + i);
        ck_assert_int_eq(tw_blob_writer_append(w, buf, n), TW_OK);
    }
    free(buf);
    tw_blob_info info;
    if (!replacing)
        ck_assert_int_eq(tw_blob_stat(blobs, key, &info), TW_ERR_NOT_FOUND);
    else
        ck_assert(tw_blob_stat(blobs, key, &info) == TW_OK && info.size != size);
    return w;
}

static tw_blob_writer *write_pattern(const char *key, size_t size, size_t chunk)
{
    return write_over(key, size, chunk, false);
}

/* Reads key from offset in pieces of cap bytes and checks every byte. */
static void check_pattern(const char *key, uint64_t offset, size_t size, size_t cap)
{
    tw_blob_reader *r;
    tw_blob_info info;
    ck_assert_int_eq(tw_blob_reader_open(blobs, key, offset, &r, &info), TW_OK);
    ck_assert_uint_eq(info.size, size);
    unsigned char *buf = malloc(cap), *want = malloc(cap);
    uint64_t at = offset;
    size_t n;
    do {
        ck_assert_int_eq(tw_blob_reader_read(r, buf, cap, &n), TW_OK);
        for (size_t i = 0; i < n; i++)
            want[i] = byte_at(at + i);
        ck_assert_msg(memcmp(buf, want, n) == 0, "bytes from %llu differ", (unsigned long long)at);
        at += n;
    } while (n > 0);
    ck_assert_uint_eq(at, size);
    free(buf);
    free(want);
    tw_blob_reader_close(r);
}

START_TEST(a_small_blob_is_put_got_and_deleted)
{
    tw_blob_writer *w = write_pattern("u/small", 10000, 777);
    ck_assert_int_eq(uploads_listed(), 0); /* under a part: one PutObject at commit */
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
    tw_blob_info info;
    ck_assert_int_eq(tw_blob_stat(blobs, "u/small", &info), TW_OK);
    ck_assert_uint_eq(info.size, 10000);
    ck_assert_int_gt(info.mtime_ms, 1600000000000LL);
    check_pattern("u/small", 0, 10000, 3000);
    check_pattern("u/small", 9999, 10000, 3000);
    check_pattern("u/small", 10000, 10000, 3000);

    tw_blob_reader *r;
    ck_assert_int_eq(tw_blob_reader_open(blobs, "u/small", 10001, &r, &info), TW_ERR_VALIDATION);
    ck_assert_int_eq(tw_blob_delete(blobs, "u/small"), TW_OK);
    ck_assert_int_eq(tw_blob_stat(blobs, "u/small", &info), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_blob_reader_open(blobs, "u/small", 0, &r, &info), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_blob_delete(blobs, "u/small"), TW_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(tw_store_last_error(), "u/small"));
    ck_assert_int_eq(tw_blob_stat(blobs, "u", &info), TW_ERR_NOT_FOUND);

    /* An empty blob is a blob. */
    ck_assert_int_eq(tw_blob_writer_open(blobs, "u/empty", &w), TW_OK);
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
    ck_assert_int_eq(tw_blob_stat(blobs, "u/empty", &info), TW_OK);
    ck_assert_uint_eq(info.size, 0);
    check_pattern("u/empty", 0, 0, 10);
}
END_TEST

START_TEST(a_large_blob_goes_up_in_parts)
{
    /* 12 MiB + 123 in 64 KiB chunks: parts of 5, 5 and 2 MiB. */
    size_t size = (12u << 20) + 123;
    tw_blob_writer *w = write_pattern("u/large", size, 64u << 10);
    ck_assert_int_eq(uploads_listed(), 1);
    ck_assert_int_eq(fx_s3_uploads_on_disk(&fx), 1);
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
    ck_assert_int_eq(uploads_listed(), 0);
    ck_assert_int_eq(fx_s3_uploads_on_disk(&fx), 0);
    check_pattern("u/large", 0, size, 200000);
    check_pattern("u/large", (5u << 20) - 7, size, 1u << 20);

    /* Exactly two parts: nothing left over for a last part. */
    w = write_pattern("u/exact", 10u << 20, 1u << 20);
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
    check_pattern("u/exact", 0, 10u << 20, 1u << 20);
}
END_TEST

START_TEST(an_abort_leaves_nothing)
{
    tw_blob_writer *w = write_pattern("u/aborted", (6u << 20) + 5, 100000);
    ck_assert_int_eq(uploads_listed(), 1);
    tw_blob_writer_abort(w);
    tw_blob_writer_abort(NULL);
    ck_assert_int_eq(uploads_listed(), 0);
    ck_assert_int_eq(fx_s3_uploads_on_disk(&fx), 0);
    tw_blob_info info;
    ck_assert_int_eq(tw_blob_stat(blobs, "u/aborted", &info), TW_ERR_NOT_FOUND);

    /* A small one never reached S3 at all. */
    w = write_pattern("u/aborted-small", 100, 10);
    tw_blob_writer_abort(w);
    ck_assert_int_eq(tw_blob_stat(blobs, "u/aborted-small", &info), TW_ERR_NOT_FOUND);
}
END_TEST

START_TEST(a_commit_replaces_the_old_blob)
{
    tw_blob_writer *w = write_pattern("u/n", 5000, 5000);
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
    w = write_over("u/n", (5u << 20) + 1, 1u << 20, true);
    /* The old one is still there, whole, while the new one is written. */
    check_pattern("u/n", 0, 5000, 4096);
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
    check_pattern("u/n", 0, (5u << 20) + 1, 1u << 20);
}
END_TEST

/* Sets the time of upload id's files in s3rver's directory to ms. */
static void backdate_upload(const char *id, int64_t ms)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tw-test/._S3rver_uploads/%s/metadata", fx.dir, id);
    struct timeval tv[2] = {{ms / 1000, 0}, {ms / 1000, 0}};
    ck_assert_int_eq(utimes(path, tv), 0);
}

START_TEST(the_sweep_aborts_uploads_older_than_a_day)
{
    /* Two uploads a crash left, one two days old, one fresh. */
    char old_id[TW_S3_UPLOAD_ID_MAX], new_id[TW_S3_UPLOAD_ID_MAX], etag[TW_S3_ETAG_MAX];
    ck_assert_int_eq(tw_s3_create_multipart(s3, "u/old", old_id, NULL), TW_OK);
    ck_assert_int_eq(tw_s3_upload_part(s3, "u/old", old_id, 1, "old", 3, etag, NULL), TW_OK);
    ck_assert_int_eq(tw_s3_create_multipart(s3, "u/new", new_id, NULL), TW_OK);
    struct timeval now;
    gettimeofday(&now, NULL);
    backdate_upload(old_id, (int64_t)now.tv_sec * 1000 - 2 * TW_BLOB_S3_SWEEP_AGE_MS);
    ck_assert_int_eq(uploads_listed(), 2);

    /* twd starts again: opening the backend sweeps. */
    tw_blob_store *again;
    tw_blob_s3_options o = options();
    ck_assert_int_eq(tw_blob_s3_open(&o, &again), TW_OK);
    ck_assert_int_eq(uploads_listed(), 1);
    ck_assert_int_eq(fx_s3_uploads_on_disk(&fx), 1);
    ck_assert_int_eq(tw_s3_abort_multipart(s3, "u/old", old_id, NULL), TW_ERR_NOT_FOUND);

    /* A sweep of everything older than now takes the fresh one too. */
    int aborted = -1;
    ck_assert_int_eq(tw_blob_s3_sweep(again, 0, &aborted), TW_OK);
    ck_assert_int_eq(aborted, 1);
    ck_assert_int_eq(uploads_listed(), 0);
    tw_blob_close(again);

    /* Without a sweep at open nothing is touched; a filesystem store has none. */
    ck_assert_int_eq(tw_s3_create_multipart(s3, "u/kept", new_id, NULL), TW_OK);
    backdate_upload(new_id, (int64_t)now.tv_sec * 1000 - 2 * TW_BLOB_S3_SWEEP_AGE_MS);
    o.sweep_older_than_ms = -1;
    ck_assert_int_eq(tw_blob_s3_open(&o, &again), TW_OK);
    ck_assert_int_eq(uploads_listed(), 1);
    tw_blob_close(again);
    char dir[] = "/tmp/tw-blob-fs-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    tw_blob_store *fs;
    ck_assert_int_eq(tw_blob_fs_open(dir, &fs), TW_OK);
    ck_assert_int_eq(tw_blob_s3_sweep(fs, 0, &aborted), TW_ERR_VALIDATION);
    tw_blob_close(fs);
    char path[64];
    snprintf(path, sizeof path, "%s/blobs/.tmp", dir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/blobs", dir);
    rmdir(path);
    rmdir(dir);
}
END_TEST

struct listing {
    int count;
    uint64_t bytes;
};

static tw_err collect(void *ctx, const char *key, const tw_blob_info *info)
{
    struct listing *l = ctx;
    l->count++;
    l->bytes += info->size;
    return TW_OK;
}

static void put(const char *key, const char *text)
{
    tw_blob_writer *w;
    ck_assert_int_eq(tw_blob_writer_open(blobs, key, &w), TW_OK);
    ck_assert_int_eq(tw_blob_writer_append(w, text, strlen(text)), TW_OK);
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
}

START_TEST(listing_by_prefix)
{
    put("alice/n1", "11");
    put("alice/n2", "222");
    put("alicia/n1", "4444");
    put("bob/n1", "1");
    /* Another application's object in the bucket is not a blob. */
    ck_assert_int_eq(tw_s3_put_object(s3, "alice/not a key", "x", 1, NULL, NULL), TW_OK);
    struct listing l = {0};
    ck_assert_int_eq(tw_blob_list(blobs, "alice/", collect, &l), TW_OK);
    ck_assert_int_eq(l.count, 2);
    ck_assert_uint_eq(l.bytes, 5);
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(tw_blob_list(blobs, "ali", collect, &l), TW_OK);
    ck_assert_int_eq(l.count, 3);
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(tw_blob_list(blobs, "", collect, &l), TW_OK);
    ck_assert_int_eq(l.count, 4);
}
END_TEST

START_TEST(a_bad_configuration_does_not_open)
{
    tw_blob_store *b;
    tw_blob_s3_options o = options();
    o.s3.bucket = "no-such-bucket";
    ck_assert_int_eq(tw_blob_s3_open(&o, &b), TW_ERR_NOT_FOUND);
    ck_assert_ptr_null(b);
    ck_assert_ptr_nonnull(strstr(tw_store_last_error(), "no-such-bucket"));
    o = options();
    o.s3.endpoint = "";
    ck_assert_int_eq(tw_blob_s3_open(&o, &b), TW_ERR_VALIDATION);
    ck_assert_ptr_nonnull(strstr(tw_store_last_error(), "endpoint"));
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fx_closed_port());
    o = options();
    o.s3.endpoint = url;
    ck_assert_int_eq(tw_blob_s3_open(&o, &b), TW_ERR_UPSTREAM);
    ck_assert_ptr_nonnull(strstr(tw_store_last_error(), "could not connect"));
    ck_assert_ptr_null(strstr(tw_store_last_error(), "S3RVER"));
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("blob_s3");
    TCase *tc = tcase_create("s3rver");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_small_blob_is_put_got_and_deleted);
    tcase_add_test(tc, a_large_blob_goes_up_in_parts);
    tcase_add_test(tc, an_abort_leaves_nothing);
    tcase_add_test(tc, a_commit_replaces_the_old_blob);
    tcase_add_test(tc, the_sweep_aborts_uploads_older_than_a_day);
    tcase_add_test(tc, listing_by_prefix);
    tcase_add_test(tc, a_bad_configuration_does_not_open);
    suite_add_tcase(s, tc);
    return s;
}
