/*
 * Unit tests for clients/s3.c end to end against s3rver on loopback
 * (started by the test through s3rver_launch.js): objects, ranged reads,
 * multipart uploads with several parts, aborts, listings, keys that need
 * encoding, and the errors S3 answers with.
 *
 * s3rver does not check signatures (a wrong secret gets 200), so these
 * tests cannot prove the signing; test_sigv4.c does, with AWS's vectors.
 */
#include "s3.h"
#include "sigv4.h"
#include "vendor_fixture.h"

#include "tw_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fx_s3 fx;
static tw_s3 *s3;

static void setup(void)
{
    fx_s3_start(&fx);
    ck_assert_int_eq(tw_s3_new(&fx.cfg, &s3), TW_OK);
}

static void teardown(void)
{
    tw_s3_free(s3);
    fx_s3_stop(&fx);
}

struct collected {
    unsigned char *data;
    size_t len, cap;
};

static tw_err collect(void *ctx, const void *data, size_t len)
{
    struct collected *c = ctx;
    if (c->len + len > c->cap) {
        c->cap = (c->len + len) * 2;
        c->data = realloc(c->data, c->cap);
    }
    memcpy(c->data + c->len, data, len);
    c->len += len;
    return TW_OK;
}

START_TEST(objects_go_in_come_back_and_go_away)
{
    const char *text = "the quick brown fox";
    char etag[TW_S3_ETAG_MAX];
    tw_upstream_error uerr;
    ck_assert_int_eq(tw_s3_head_bucket(s3, &uerr), TW_OK);
    ck_assert_int_eq(tw_s3_put_object(s3, "u1/n1", text, strlen(text), etag, &uerr), TW_OK);
    ck_assert_int_gt(strlen(etag), 0);

    tw_s3_object_info info;
    ck_assert_int_eq(tw_s3_head_object(s3, "u1/n1", &info, &uerr), TW_OK);
    ck_assert_uint_eq(info.size, strlen(text));
    ck_assert_str_eq(info.etag, etag);
    ck_assert_int_gt(info.mtime_ms, 1600000000000LL);

    struct collected all = {0}, part = {0};
    ck_assert_int_eq(tw_s3_get_object(s3, "u1/n1", 0, 0, NULL, collect, &all, &uerr), TW_OK);
    ck_assert_uint_eq(all.len, strlen(text));
    ck_assert_mem_eq(all.data, text, all.len);
    ck_assert_int_eq(tw_s3_get_object(s3, "u1/n1", 4, 5, etag, collect, &part, &uerr), TW_OK);
    ck_assert_uint_eq(part.len, 5);
    ck_assert_mem_eq(part.data, "quick", 5);
    free(all.data);
    free(part.data);

    ck_assert_int_eq(tw_s3_delete_object(s3, "u1/n1", &uerr), TW_OK);
    ck_assert_int_eq(tw_s3_head_object(s3, "u1/n1", &info, &uerr), TW_ERR_NOT_FOUND);
    struct collected none = {0};
    ck_assert_int_eq(tw_s3_get_object(s3, "u1/n1", 0, 0, NULL, collect, &none, &uerr),
                     TW_ERR_NOT_FOUND);
    ck_assert_str_eq(uerr.code, "NoSuchKey");
    ck_assert_uint_eq(none.len, 0);
    /* S3 deletes an absent key without complaint. */
    ck_assert_int_eq(tw_s3_delete_object(s3, "u1/n1", &uerr), TW_OK);
}
END_TEST

START_TEST(keys_that_need_encoding)
{
    const char *key = "dir with space/ü&<x>+y=z.txt";
    ck_assert_int_eq(tw_s3_put_object(s3, key, "1", 1, NULL, NULL), TW_OK);
    tw_s3_object_info info;
    ck_assert_int_eq(tw_s3_head_object(s3, key, &info, NULL), TW_OK);
    ck_assert_uint_eq(info.size, 1);
    ck_assert_int_eq(tw_s3_delete_object(s3, key, NULL), TW_OK);
    ck_assert_int_eq(tw_s3_head_object(s3, key, &info, NULL), TW_ERR_NOT_FOUND);
}
END_TEST

static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 2654435761u + seed) >> 13);
    return p;
}

START_TEST(a_multipart_upload_of_several_parts)
{
    size_t part = 5u << 20;
    unsigned char *a = pattern(part, 1), *b = pattern(part, 2), *c = pattern(1234, 3);
    char id[TW_S3_UPLOAD_ID_MAX];
    tw_upstream_error uerr;
    ck_assert_int_eq(tw_s3_create_multipart(s3, "u2/big", id, &uerr), TW_OK);
    ck_assert_int_gt(strlen(id), 0);
    tw_s3_part parts[3] = {{1, ""}, {2, ""}, {3, ""}};
    ck_assert_int_eq(tw_s3_upload_part(s3, "u2/big", id, 1, a, part, parts[0].etag, &uerr), TW_OK);
    ck_assert_int_eq(tw_s3_upload_part(s3, "u2/big", id, 2, b, part, parts[1].etag, &uerr), TW_OK);
    ck_assert_int_eq(tw_s3_upload_part(s3, "u2/big", id, 3, c, 1234, parts[2].etag, &uerr), TW_OK);
    tw_s3_object_info info;
    ck_assert_int_eq(tw_s3_head_object(s3, "u2/big", &info, &uerr), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(fx_s3_uploads_on_disk(&fx), 1);
    ck_assert_int_eq(tw_s3_complete_multipart(s3, "u2/big", id, parts, 3, &uerr), TW_OK);
    ck_assert_int_eq(fx_s3_uploads_on_disk(&fx), 0);

    ck_assert_int_eq(tw_s3_head_object(s3, "u2/big", &info, &uerr), TW_OK);
    ck_assert_uint_eq(info.size, 2 * part + 1234);
    struct collected got = {0};
    ck_assert_int_eq(tw_s3_get_object(s3, "u2/big", 0, 0, NULL, collect, &got, &uerr), TW_OK);
    ck_assert_uint_eq(got.len, 2 * part + 1234);
    ck_assert(memcmp(got.data, a, part) == 0);
    ck_assert(memcmp(got.data + part, b, part) == 0);
    ck_assert(memcmp(got.data + 2 * part, c, 1234) == 0);
    free(got.data);
    free(a);
    free(b);
    free(c);

    /* Part numbers S3 does not allow are refused before sending. */
    char etag[TW_S3_ETAG_MAX];
    ck_assert_int_eq(tw_s3_upload_part(s3, "u2/big", id, 0, "x", 1, etag, &uerr),
                     TW_ERR_VALIDATION);
    ck_assert_int_eq(tw_s3_upload_part(s3, "u2/big", id, 10001, "x", 1, etag, &uerr),
                     TW_ERR_VALIDATION);
}
END_TEST

struct upload_list {
    int n;
    char keys[8][64];
    char ids[8][TW_S3_UPLOAD_ID_MAX];
    int64_t initiated[8];
};

static tw_err note_upload(void *ctx, const char *key, const char *id, int64_t initiated_ms)
{
    struct upload_list *l = ctx;
    ck_assert_int_lt(l->n, 8);
    snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
    snprintf(l->ids[l->n], sizeof l->ids[0], "%s", id);
    l->initiated[l->n++] = initiated_ms;
    return TW_OK;
}

START_TEST(an_aborted_upload_leaves_nothing)
{
    char id1[TW_S3_UPLOAD_ID_MAX], id2[TW_S3_UPLOAD_ID_MAX], etag[TW_S3_ETAG_MAX];
    tw_upstream_error uerr;
    ck_assert_int_eq(tw_s3_create_multipart(s3, "u3/a", id1, &uerr), TW_OK);
    ck_assert_int_eq(tw_s3_create_multipart(s3, "u4/b", id2, &uerr), TW_OK);
    ck_assert_int_eq(tw_s3_upload_part(s3, "u3/a", id1, 1, "part one", 8, etag, &uerr), TW_OK);

    struct upload_list l = {0};
    ck_assert_int_eq(tw_s3_list_multipart_uploads(s3, "", note_upload, &l, &uerr), TW_OK);
    ck_assert_int_eq(l.n, 2);
    ck_assert_str_eq(l.keys[0], "u3/a");
    ck_assert_str_eq(l.ids[0], id1);
    ck_assert_int_gt(l.initiated[0], 1600000000000LL);
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(tw_s3_list_multipart_uploads(s3, "u4/", note_upload, &l, &uerr), TW_OK);
    ck_assert_int_eq(l.n, 1);
    ck_assert_str_eq(l.keys[0], "u4/b");

    ck_assert_int_eq(tw_s3_abort_multipart(s3, "u3/a", id1, &uerr), TW_OK);
    ck_assert_int_eq(tw_s3_abort_multipart(s3, "u4/b", id2, &uerr), TW_OK);
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(tw_s3_list_multipart_uploads(s3, "", note_upload, &l, &uerr), TW_OK);
    ck_assert_int_eq(l.n, 0);
    ck_assert_int_eq(fx_s3_uploads_on_disk(&fx), 0);
    tw_s3_object_info info;
    ck_assert_int_eq(tw_s3_head_object(s3, "u3/a", &info, &uerr), TW_ERR_NOT_FOUND);

    /* Aborting again, or an upload that never was: NoSuchUpload. */
    ck_assert_int_eq(tw_s3_abort_multipart(s3, "u3/a", id1, &uerr), TW_ERR_NOT_FOUND);
    ck_assert_str_eq(uerr.code, "NoSuchUpload");
}
END_TEST

struct object_list {
    int n;
    uint64_t bytes;
};

static tw_err note_object(void *ctx, const char *key, const tw_s3_object_info *info)
{
    struct object_list *l = ctx;
    l->n++;
    l->bytes += info->size;
    ck_assert_int_gt(info->mtime_ms, 1600000000000LL);
    return TW_OK;
}

static tw_err stop_listing(void *ctx, const char *key, const tw_s3_object_info *info)
{
    return TW_ERR_CANCELLED;
}

START_TEST(objects_are_listed_by_prefix)
{
    ck_assert_int_eq(tw_s3_put_object(s3, "alice/n1", "11", 2, NULL, NULL), TW_OK);
    ck_assert_int_eq(tw_s3_put_object(s3, "alice/n2", "222", 3, NULL, NULL), TW_OK);
    ck_assert_int_eq(tw_s3_put_object(s3, "alicia/n1", "4444", 4, NULL, NULL), TW_OK);
    ck_assert_int_eq(tw_s3_put_object(s3, "bob/n1", "1", 1, NULL, NULL), TW_OK);
    struct object_list l = {0};
    ck_assert_int_eq(tw_s3_list_objects(s3, "alice/", note_object, &l, NULL), TW_OK);
    ck_assert_int_eq(l.n, 2);
    ck_assert_uint_eq(l.bytes, 5);
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(tw_s3_list_objects(s3, "", note_object, &l, NULL), TW_OK);
    ck_assert_int_eq(l.n, 4);
    ck_assert_int_eq(tw_s3_list_objects(s3, "", stop_listing, NULL, NULL), TW_ERR_CANCELLED);
}
END_TEST

START_TEST(bad_configs_and_missing_buckets)
{
    tw_s3 *other;
    tw_s3_config cfg = fx.cfg;
    cfg.endpoint = "ftp://127.0.0.1";
    ck_assert_int_eq(tw_s3_new(&cfg, &other), TW_ERR_VALIDATION);
    cfg = fx.cfg;
    cfg.secret_access_key = "";
    ck_assert_int_eq(tw_s3_new(&cfg, &other), TW_ERR_VALIDATION);
    cfg = fx.cfg;
    cfg.bucket = "no-such-bucket";
    ck_assert_int_eq(tw_s3_new(&cfg, &other), TW_OK);
    tw_upstream_error uerr;
    ck_assert_int_eq(tw_s3_head_bucket(other, &uerr), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_s3_put_object(other, "k", "x", 1, NULL, &uerr), TW_ERR_NOT_FOUND);
    ck_assert_str_eq(uerr.code, "NoSuchBucket");
    tw_s3_free(other);

    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fx_closed_port());
    cfg = fx.cfg;
    cfg.endpoint = url;
    ck_assert_int_eq(tw_s3_new(&cfg, &other), TW_OK);
    ck_assert_int_eq(tw_s3_head_bucket(other, &uerr), TW_ERR_UPSTREAM);
    ck_assert(uerr.retryable);
    ck_assert_int_eq(uerr.attempts, 3);
    tw_s3_free(other);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("s3");
    TCase *tc = tcase_create("s3rver");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, objects_go_in_come_back_and_go_away);
    tcase_add_test(tc, keys_that_need_encoding);
    tcase_add_test(tc, a_multipart_upload_of_several_parts);
    tcase_add_test(tc, an_aborted_upload_leaves_nothing);
    tcase_add_test(tc, objects_are_listed_by_prefix);
    tcase_add_test(tc, bad_configs_and_missing_buckets);
    suite_add_tcase(s, tc);
    return s;
}
