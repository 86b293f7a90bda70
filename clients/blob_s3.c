/*
 * The S3 blob backend of blob_s3.h, behind store/blob_backend.h. Failures
 * are recorded for tw_store_last_error() with tw_blob_backend_fail.
 */
#include "blob_s3.h"

#include "blob_backend.h"
#include "tw_log.h"
#include "tw_store.h"
#include "tw_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_WINDOW     (1u << 20)
#define FIRST_PART_FILL (64u << 10) /* a writer's buffer starts this big */

struct s3_store {
    tw_blob_store base;
    tw_s3 *s3;
    size_t part_size;
};

struct s3_writer {
    tw_blob_writer base;
    char *key;
    unsigned char *buf; /* the part being filled */
    size_t len, alloc;
    uint64_t total;
    char upload_id[TW_S3_UPLOAD_ID_MAX]; /* "" until the first part is sent */
    tw_s3_part *parts;
    size_t n_parts;
    tw_err failed; /* a failure ended the upload; only abort may follow */
};

struct s3_reader {
    tw_blob_reader base;
    char *key;
    char etag[TW_S3_ETAG_MAX];
    uint64_t size, pos; /* pos: where window[0] is in the object */
    unsigned char *window;
    size_t window_len, window_at;
};

static const struct tw_blob_ops s3_ops;

static struct s3_store *store_of(tw_blob_store *b)
{
    return (struct s3_store *)b;
}

/* Records an S3 failure of what on key for tw_store_last_error(). */
static tw_err fail(tw_err err, const char *what, const char *key, const tw_upstream_error *uerr)
{
    if (err == TW_ERR_NOT_FOUND)
        return tw_blob_backend_fail(err, "s3 %s %s: not found", what, key);
    if (err == TW_ERR_UPSTREAM)
        return tw_blob_backend_fail(err, "s3 %s %s: %s", what, key, uerr->reason);
    return tw_blob_backend_fail(err, "s3 %s %s: %s", what, key, tw_err_message(err));
}

/* ---- writer ----------------------------------------------------------------- */

static tw_err s3_writer_open(tw_blob_store *b, const char *key, tw_blob_writer **out)
{
    struct s3_writer *w = calloc(1, sizeof *w);
    if (w == NULL || (w->key = strdup(key)) == NULL) {
        free(w);
        return TW_ERR_NO_MEMORY;
    }
    w->base.store = b;
    *out = &w->base;
    return TW_OK;
}

/* Aborts the multipart upload, if any, logging (not returning) a failure:
 * the start-up sweep removes what this could not. */
static void abort_upload(struct s3_writer *w)
{
    if (w->upload_id[0] == '\0')
        return;
    struct s3_store *st = store_of(w->base.store);
    tw_upstream_error uerr;
    tw_err err = tw_s3_abort_multipart(st->s3, w->key, w->upload_id, &uerr);
    if (err && err != TW_ERR_NOT_FOUND)
        tw_log(TW_LOG_WARN, "s3 upload not aborted",
               json_pack("{s:s, s:s, s:s}", "key", w->key, "upload_id", w->upload_id, "reason",
                         uerr.reason));
    w->upload_id[0] = '\0';
}

/* Ends the upload after err: abort it, remember err. */
static tw_err writer_fails(struct s3_writer *w, tw_err err)
{
    abort_upload(w);
    w->failed = err;
    return err;
}

/* Sends the buffered bytes as the next part. */
static tw_err send_part(struct s3_writer *w)
{
    struct s3_store *st = store_of(w->base.store);
    tw_upstream_error uerr;
    tw_err err;
    if (w->n_parts >= TW_S3_MAX_PARTS)
        return writer_fails(w, tw_blob_backend_fail(TW_ERR_TOO_LARGE,
                                                    "s3 upload %s: more than "
                                                    "%d parts",
                                                    w->key, TW_S3_MAX_PARTS));
    if (w->upload_id[0] == '\0' &&
        (err = tw_s3_create_multipart(st->s3, w->key, w->upload_id, &uerr)))
        return writer_fails(w, fail(err, "start upload of", w->key, &uerr));
    if (w->parts == NULL && (w->parts = calloc(TW_S3_MAX_PARTS, sizeof *w->parts)) == NULL)
        return writer_fails(w, TW_ERR_NO_MEMORY);
    tw_s3_part *p = &w->parts[w->n_parts];
    p->number = (int)w->n_parts + 1;
    err =
        tw_s3_upload_part(st->s3, w->key, w->upload_id, p->number, w->buf, w->len, p->etag, &uerr);
    if (err)
        return writer_fails(w, fail(err, "upload part of", w->key, &uerr));
    w->n_parts++;
    w->len = 0;
    return TW_OK;
}

static tw_err s3_writer_append(tw_blob_writer *bw, const void *data, size_t len)
{
    struct s3_writer *w = (struct s3_writer *)bw;
    size_t part = store_of(bw->store)->part_size;
    const unsigned char *p = data;
    if (w->failed)
        return w->failed;
    while (len > 0) {
        if (w->len == w->alloc) {
            /* Grow towards one part: small blobs never hold 5 MiB. */
            size_t want = w->alloc ? w->alloc * 2 : FIRST_PART_FILL;
            if (want > part)
                want = part;
            unsigned char *grown = realloc(w->buf, want);
            if (grown == NULL)
                return writer_fails(w, TW_ERR_NO_MEMORY);
            w->buf = grown;
            w->alloc = want;
        }
        size_t take = w->alloc - w->len < len ? w->alloc - w->len : len;
        memcpy(w->buf + w->len, p, take);
        w->len += take;
        w->total += take;
        p += take;
        len -= take;
        if (w->len == part) {
            tw_err err = send_part(w);
            if (err)
                return err;
        }
    }
    return TW_OK;
}

static void writer_free(struct s3_writer *w)
{
    free(w->key);
    free(w->buf);
    free(w->parts);
    free(w);
}

static void s3_writer_abort(tw_blob_writer *bw)
{
    struct s3_writer *w = (struct s3_writer *)bw;
    abort_upload(w);
    writer_free(w);
}

/* After a retried complete answered NoSuchUpload, the first try may have
 * worked: then the object is there with every byte. */
static bool completed_after_all(struct s3_writer *w)
{
    tw_s3_object_info info;
    return tw_s3_head_object(store_of(w->base.store)->s3, w->key, &info, NULL) == TW_OK &&
           info.size == w->total;
}

static tw_err s3_writer_commit(tw_blob_writer *bw)
{
    struct s3_writer *w = (struct s3_writer *)bw;
    struct s3_store *st = store_of(bw->store);
    tw_upstream_error uerr;
    tw_err err = w->failed;
    if (err == TW_OK && w->upload_id[0] == '\0') {
        err = tw_s3_put_object(st->s3, w->key, w->buf, w->len, NULL, &uerr);
        if (err)
            err = fail(err, "put", w->key, &uerr);
    } else if (err == TW_OK) {
        if (w->len > 0)
            err = send_part(w);
        if (err == TW_OK) {
            err =
                tw_s3_complete_multipart(st->s3, w->key, w->upload_id, w->parts, w->n_parts, &uerr);
            if (err == TW_ERR_NOT_FOUND && uerr.attempts > 1 && completed_after_all(w))
                err = TW_OK;
            else if (err)
                err = fail(err == TW_ERR_NOT_FOUND ? TW_ERR_UPSTREAM : err, "complete upload of",
                           w->key, &uerr);
            if (err == TW_OK)
                w->upload_id[0] = '\0'; /* nothing left to abort */
        }
    }
    s3_writer_abort(bw); /* aborts what a failure left; frees w */
    return err;
}

/* ---- reader ----------------------------------------------------------------- */

static tw_err s3_reader_open(tw_blob_store *b, const char *key, uint64_t offset,
                             tw_blob_reader **out, tw_blob_info *info)
{
    struct s3_store *st = store_of(b);
    tw_s3_object_info oi;
    tw_upstream_error uerr;
    tw_err err = tw_s3_head_object(st->s3, key, &oi, &uerr);
    if (err)
        return fail(err, "head", key, &uerr);
    if (offset > oi.size)
        return tw_blob_backend_fail(TW_ERR_VALIDATION, "offset %llu beyond the blob's %llu bytes",
                                    (unsigned long long)offset, (unsigned long long)oi.size);
    struct s3_reader *r = calloc(1, sizeof *r);
    if (r == NULL || (r->key = strdup(key)) == NULL) {
        free(r);
        return TW_ERR_NO_MEMORY;
    }
    r->base.store = b;
    r->size = oi.size;
    r->pos = offset;
    memcpy(r->etag, oi.etag, sizeof r->etag);
    info->size = oi.size;
    info->mtime_ms = oi.mtime_ms;
    *out = &r->base;
    return TW_OK;
}

static tw_err window_take(void *ctx, const void *data, size_t len)
{
    struct s3_reader *r = ctx;
    if (len > READ_WINDOW - r->window_len)
        return tw_blob_backend_fail(TW_ERR_UPSTREAM, "s3 get %s: more bytes than asked for",
                                    r->key);
    memcpy(r->window + r->window_len, data, len);
    r->window_len += len;
    return TW_OK;
}

/* Fetches the next window from r->pos. */
static tw_err fill_window(struct s3_reader *r)
{
    struct s3_store *st = store_of(r->base.store);
    if (r->window == NULL && (r->window = malloc(READ_WINDOW)) == NULL)
        return TW_ERR_NO_MEMORY;
    uint64_t want = r->size - r->pos < READ_WINDOW ? r->size - r->pos : READ_WINDOW;
    r->window_len = r->window_at = 0;
    tw_upstream_error uerr;
    tw_err err = tw_s3_get_object(st->s3, r->key, r->pos, want, r->etag, window_take, r, &uerr);
    if (err == TW_ERR_UPSTREAM && uerr.status == 412)
        return tw_blob_backend_fail(TW_ERR_UPSTREAM, "s3 get %s: replaced while being read",
                                    r->key);
    if (err == TW_ERR_UPSTREAM || err == TW_ERR_NOT_FOUND)
        return fail(err, "get", r->key, &uerr);
    if (err == TW_OK && r->window_len != want)
        return tw_blob_backend_fail(TW_ERR_UPSTREAM, "s3 get %s: %zu bytes where %llu were due",
                                    r->key, r->window_len, (unsigned long long)want);
    return err;
}

static tw_err s3_reader_read(tw_blob_reader *br, void *buf, size_t cap, size_t *n)
{
    struct s3_reader *r = (struct s3_reader *)br;
    *n = 0;
    if (r->window_at == r->window_len) {
        r->pos += r->window_len;
        r->window_len = r->window_at = 0;
        if (r->pos >= r->size || cap == 0)
            return TW_OK;
        tw_err err = fill_window(r);
        if (err)
            return err;
    }
    size_t left = r->window_len - r->window_at;
    size_t take = left < cap ? left : cap;
    memcpy(buf, r->window + r->window_at, take);
    r->window_at += take;
    *n = take;
    return TW_OK;
}

static void s3_reader_close(tw_blob_reader *br)
{
    struct s3_reader *r = (struct s3_reader *)br;
    free(r->key);
    free(r->window);
    free(r);
}

/* ---- the rest --------------------------------------------------------------- */

static tw_err s3_stat(tw_blob_store *b, const char *key, tw_blob_info *out)
{
    tw_s3_object_info oi;
    tw_upstream_error uerr;
    tw_err err = tw_s3_head_object(store_of(b)->s3, key, &oi, &uerr);
    if (err)
        return fail(err, "head", key, &uerr);
    out->size = oi.size;
    out->mtime_ms = oi.mtime_ms;
    return TW_OK;
}

static tw_err s3_remove(tw_blob_store *b, const char *key)
{
    /* S3 deletes absent keys without a word; the contract says NOT_FOUND. */
    tw_blob_info info;
    tw_err err = s3_stat(b, key, &info);
    if (err)
        return err;
    tw_upstream_error uerr;
    err = tw_s3_delete_object(store_of(b)->s3, key, &uerr);
    return err ? fail(err, "delete", key, &uerr) : TW_OK;
}

struct list_ctx {
    tw_blob_list_fn fn;
    void *ctx;
};

static tw_err list_one(void *ctx, const char *key, const tw_s3_object_info *oi)
{
    struct list_ctx *l = ctx;
    if (!tw_blob_key_valid(key))
        return TW_OK; /* not ours: twd never writes such a key */
    tw_blob_info info = {.size = oi->size, .mtime_ms = oi->mtime_ms};
    return l->fn(l->ctx, key, &info);
}

static tw_err s3_list(tw_blob_store *b, const char *prefix, tw_blob_list_fn fn, void *ctx)
{
    struct list_ctx l = {fn, ctx};
    tw_upstream_error uerr;
    tw_err err = tw_s3_list_objects(store_of(b)->s3, prefix, list_one, &l, &uerr);
    if (err == TW_ERR_UPSTREAM || err == TW_ERR_NOT_FOUND)
        return fail(err, "list", prefix, &uerr);
    return err;
}

static void s3_close(tw_blob_store *b)
{
    struct s3_store *st = store_of(b);
    tw_s3_free(st->s3);
    free(st);
}

static const struct tw_blob_ops s3_ops = {
    .writer_open = s3_writer_open,
    .writer_append = s3_writer_append,
    .writer_commit = s3_writer_commit,
    .writer_abort = s3_writer_abort,
    .reader_open = s3_reader_open,
    .reader_read = s3_reader_read,
    .reader_close = s3_reader_close,
    .remove = s3_remove,
    .stat = s3_stat,
    .list = s3_list,
    .close = s3_close,
};

/* ---- the sweep -------------------------------------------------------------- */

struct sweep {
    tw_s3 *s3;
    int64_t cutoff_ms;
    int aborted, failed;
};

static tw_err sweep_one(void *ctx, const char *key, const char *upload_id, int64_t initiated_ms)
{
    struct sweep *s = ctx;
    if (initiated_ms <= 0 || initiated_ms > s->cutoff_ms)
        return TW_OK; /* recent, or of unknown age: may still be written */
    tw_upstream_error uerr;
    tw_err err = tw_s3_abort_multipart(s->s3, key, upload_id, &uerr);
    if (err == TW_OK || err == TW_ERR_NOT_FOUND) {
        s->aborted += err == TW_OK;
        return TW_OK;
    }
    s->failed++;
    tw_log(TW_LOG_WARN, "s3 sweep: upload not aborted",
           json_pack("{s:s, s:s, s:s}", "key", key, "upload_id", upload_id, "reason", uerr.reason));
    return TW_OK;
}

tw_err tw_blob_s3_sweep(tw_blob_store *b, int64_t older_than_ms, int *aborted)
{
    if (aborted != NULL)
        *aborted = 0;
    if (b->ops != &s3_ops)
        return tw_blob_backend_fail(TW_ERR_VALIDATION, "not an S3 blob store");
    struct sweep s = {.s3 = store_of(b)->s3, .cutoff_ms = tw_wall_ms() - older_than_ms};
    tw_upstream_error uerr;
    tw_err err = tw_s3_list_multipart_uploads(s.s3, "", sweep_one, &s, &uerr);
    if (aborted != NULL)
        *aborted = s.aborted;
    if (err)
        return fail(err, "list uploads of", "the bucket", &uerr);
    if (s.failed > 0)
        return tw_blob_backend_fail(TW_ERR_UPSTREAM, "s3 sweep: %d uploads not aborted", s.failed);
    return TW_OK;
}

tw_err tw_blob_s3_open(const tw_blob_s3_options *opts, tw_blob_store **out)
{
    *out = NULL;
    struct s3_store *st = calloc(1, sizeof *st);
    if (st == NULL)
        return TW_ERR_NO_MEMORY;
    st->base.ops = &s3_ops;
    st->part_size = opts->part_size > TW_BLOB_S3_PART_MIN ? opts->part_size : TW_BLOB_S3_PART_MIN;
    tw_err err = tw_s3_new(&opts->s3, &st->s3);
    if (err) {
        free(st);
        return tw_blob_backend_fail(err, "s3: %s",
                                    err == TW_ERR_VALIDATION
                                        ? "endpoint (http:// or https://), region, bucket and "
                                          "keys are all needed"
                                        : tw_err_message(err));
    }
    tw_upstream_error uerr;
    err = tw_s3_head_bucket(st->s3, &uerr);
    if (err) {
        s3_close(&st->base);
        return fail(err, "bucket", opts->s3.bucket, &uerr);
    }
    if (opts->sweep_older_than_ms >= 0) {
        int64_t age =
            opts->sweep_older_than_ms ? opts->sweep_older_than_ms : TW_BLOB_S3_SWEEP_AGE_MS;
        int aborted = 0;
        err = tw_blob_s3_sweep(&st->base, age, &aborted);
        if (err)
            tw_log(TW_LOG_WARN, "s3 sweep of incomplete uploads failed",
                   json_pack("{s:s}", "reason", tw_store_last_error()));
        else
            tw_log(TW_LOG_INFO, "s3 sweep of incomplete uploads",
                   json_pack("{s:i, s:I}", "aborted", aborted, "older_than_ms", (json_int_t)age));
    }
    *out = &st->base;
    return TW_OK;
}
