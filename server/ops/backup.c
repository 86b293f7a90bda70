/* Backups with audio (backup.h). */
#include "backup.h"

#include "blob_backend.h"
#include "blob_s3.h"
#include "cli.h"
#include "tw/store/v1/voice_records.pb-c.h"
#include "tw_array.h"
#include "tw_hex.h"
#include "tw_log.h"
#include "tw_time.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHA256_HEX 64
#define COPY_CHUNK (256 * 1024)
/* Backups kept in one directory, at most, for listing them. */
#define MAX_BACKUPS 1024

/* One backup at a time in this process: BackupEngine must not run twice on
 * one directory, and audio copies would race. */
static pthread_mutex_t backup_lock = PTHREAD_MUTEX_INITIALIZER;

typedef Tw__Store__V1__VoiceNoteRecord note_record;

/* ---- small helpers ------------------------------------------------------- */

static bool sha_valid(const char *sha)
{
    if (strlen(sha) != SHA256_HEX)
        return false;
    for (int i = 0; i < SHA256_HEX; i++)
        if (!((sha[i] >= '0' && sha[i] <= '9') || (sha[i] >= 'a' && sha[i] <= 'f')))
            return false;
    return true;
}

/* out = a "/" b; false when it does not fit (then nothing should use it). */
static bool path_join(char out[PATH_MAX], const char *a, const char *b)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", a, b);
    return n > 0 && n < PATH_MAX;
}

static void audio_path(const char *dir, const char *sha, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s/audio/%.2s/%s", dir, sha, sha);
}

static tw_err make_dir(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return TW_OK;
    return tw_blob_backend_fail(TW_ERR_DB, "%s: %s", path, strerror(errno));
}

static void note_problem(tw_audio_report *r, const note_record *rec, const char *what)
{
    if (r->first_problem[0] == '\0')
        snprintf(r->first_problem, sizeof r->first_problem, "voice note %s (%s): %s",
                 rec->note ? rec->note->id : "?", rec->blob_key, what);
}

/* A stream of bytes being hashed while it is copied. */
struct hashing {
    EVP_MD_CTX *md;
    uint64_t size;
};

static bool hashing_start(struct hashing *h)
{
    h->size = 0;
    h->md = EVP_MD_CTX_new();
    return h->md != NULL && EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) == 1;
}

static void hashing_add(struct hashing *h, const void *data, size_t n)
{
    EVP_DigestUpdate(h->md, data, n);
    h->size += n;
}

/* Ends h; true when it hashed to sha (hex) and size bytes. */
static bool hashing_matches(struct hashing *h, const char *sha, uint64_t size)
{
    unsigned char digest[32];
    unsigned int len = 0;
    char hex[SHA256_HEX + 1];
    bool ok = EVP_DigestFinal_ex(h->md, digest, &len) == 1 && len == 32;
    EVP_MD_CTX_free(h->md);
    h->md = NULL;
    if (!ok)
        return false;
    tw_hex_encode(digest, 32, hex);
    return h->size == size && strcmp(hex, sha) == 0;
}

/* Calls fn with every voice note record of s, all users. */
typedef tw_err (*note_fn)(void *ctx, const note_record *rec);

static tw_err each_note(tw_store *s, note_fn fn, void *ctx)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_VOICE_NOTE);
    tw_store_iter *it;
    tw_err err = tw_store_scan(s, &prefix, NULL, 0, false, &it);
    while (err == TW_OK && tw_store_iter_next(it)) {
        tw_arena *arena = tw_arena_new(4096);
        tw_value v;
        err = arena ? tw_store_iter_value(it, arena, &v) : TW_ERR_NO_MEMORY;
        if (err == TW_OK)
            err = fn(ctx, (const note_record *)v.msg);
        tw_arena_free(arena);
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}

/* ---- the SHA-256 list of a backup ------------------------------------------ */

struct sha_list {
    char (*items)[SHA256_HEX + 1];
    size_t count, cap;
};

static bool sha_list_add(struct sha_list *l, const char *sha)
{
    if (l->count == l->cap) {
        void *grown = tw_array_grow(l->items, l->count, &l->cap, sizeof *l->items, 256);
        if (grown == NULL)
            return false;
        l->items = grown;
    }
    memcpy(l->items[l->count++], sha, SHA256_HEX + 1);
    return true;
}

static int sha_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Sorts and drops repeats. */
static void sha_list_settle(struct sha_list *l)
{
    if (l->count == 0)
        return;
    qsort(l->items, l->count, sizeof *l->items, sha_cmp);
    size_t n = 1;
    for (size_t i = 1; i < l->count; i++)
        if (strcmp(l->items[i], l->items[n - 1]) != 0)
            memcpy(l->items[n++], l->items[i], SHA256_HEX + 1);
    l->count = n;
}

static bool sha_list_has(const struct sha_list *l, const char *sha)
{
    return l->count > 0 && bsearch(sha, l->items, l->count, sizeof *l->items, sha_cmp) != NULL;
}

static tw_err manifest_write(const char *dir, uint32_t id, const struct sha_list *l)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    snprintf(path, sizeof path, "%s/audio/manifests/%u", dir, id);
    snprintf(tmp, sizeof tmp, "%s/audio/manifests/.%u.tmp", dir, id);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return tw_blob_backend_fail(TW_ERR_DB, "%s: %s", tmp, strerror(errno));
    for (size_t i = 0; i < l->count; i++)
        fprintf(f, "%s\n", l->items[i]);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return tw_blob_backend_fail(TW_ERR_DB, "%s: %s", path, strerror(errno));
    }
    return TW_OK;
}

/* Adds the SHA-256s of manifest id to l; a missing manifest adds none. */
static tw_err manifest_read(const char *dir, uint32_t id, struct sha_list *l)
{
    char path[PATH_MAX], line[128];
    snprintf(path, sizeof path, "%s/audio/manifests/%u", dir, id);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return errno == ENOENT ? TW_OK
                               : tw_blob_backend_fail(TW_ERR_DB, "%s: %s", path, strerror(errno));
    tw_err err = TW_OK;
    while (err == TW_OK && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (sha_valid(line) && !sha_list_add(l, line))
            err = TW_ERR_NO_MEMORY;
    }
    fclose(f);
    return err;
}

/* ---- create ---------------------------------------------------------------- */

struct copy_pass {
    tw_blob_store *blobs;
    const char *dir;
    struct sha_list *shas;
    tw_audio_report report;
};

/* Copies one note's audio from blob storage into dir/audio, unless a file
 * of that SHA-256 is there already, checking the hash on the way. */
static tw_err copy_note_audio(void *ctx, const note_record *rec)
{
    struct copy_pass *p = ctx;
    p->report.notes++;
    const char *sha = rec->note ? rec->note->sha256 : "";
    if (!sha_valid(sha)) {
        p->report.mismatched++;
        note_problem(&p->report, rec, "the note has no valid sha256");
        return TW_OK;
    }
    if (!sha_list_add(p->shas, sha))
        return TW_ERR_NO_MEMORY;
    char path[PATH_MAX], tmp[PATH_MAX], subdir[PATH_MAX];
    audio_path(p->dir, sha, path);
    struct stat st;
    if (stat(path, &st) == 0)
        return TW_OK;
    snprintf(subdir, sizeof subdir, "%s/audio/%.2s", p->dir, sha);
    tw_err err = make_dir(subdir);
    if (err)
        return err;
    tw_blob_reader *r = NULL;
    err = tw_blob_reader_open(p->blobs, rec->blob_key, 0, &r, NULL);
    if (err == TW_ERR_NOT_FOUND) { /* deleted since it was listed */
        p->report.missing++;
        note_problem(&p->report, rec, "its audio is gone from blob storage");
        return TW_OK;
    }
    if (err)
        return err;
    int fd = path_join(tmp, subdir, ".copy-XXXXXX") ? mkostemp(tmp, O_CLOEXEC) : -1;
    char *buf = malloc(COPY_CHUNK);
    struct hashing h = {0};
    if (fd < 0 || buf == NULL || !hashing_start(&h))
        err = fd < 0 ? tw_blob_backend_fail(TW_ERR_DB, "%s: %s", tmp, strerror(errno))
                     : TW_ERR_NO_MEMORY;
    size_t n = 0;
    while (err == TW_OK && (err = tw_blob_reader_read(r, buf, COPY_CHUNK, &n)) == TW_OK && n > 0) {
        hashing_add(&h, buf, n);
        if (write(fd, buf, n) != (ssize_t)n)
            err = tw_blob_backend_fail(TW_ERR_DB, "%s: %s", tmp, strerror(errno));
    }
    tw_blob_reader_close(r);
    free(buf);
    bool matches = err == TW_OK && hashing_matches(&h, sha, rec->note->size_bytes);
    EVP_MD_CTX_free(h.md);
    if (err == TW_OK && !matches) {
        p->report.mismatched++;
        note_problem(&p->report, rec, "its stored audio does not match the note's sha256 and size");
    }
    if (err == TW_OK && matches && fsync(fd) != 0)
        err = tw_blob_backend_fail(TW_ERR_DB, "%s: %s", tmp, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (err == TW_OK && matches) {
        if (rename(tmp, path) != 0)
            err = tw_blob_backend_fail(TW_ERR_DB, "%s: %s", path, strerror(errno));
        else
            p->report.bytes += h.size;
    } else if (fd >= 0) {
        unlink(tmp);
    }
    return err;
}

static void status_fail(tw_backup_status *out, tw_err err, const char *what)
{
    out->ok = false;
    snprintf(out->error, sizeof out->error, "%s: %s", what,
             tw_store_last_error()[0] ? tw_store_last_error() : tw_err_message(err));
}

tw_err tw_ops_backup_create(tw_store *s, tw_blob_store *blobs, const char *dir,
                            tw_backup_status *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->directory, sizeof out->directory, "%s", dir);
    struct sha_list shas = {0};
    struct copy_pass pass = {.blobs = blobs, .dir = dir, .shas = &shas};
    char sub[PATH_MAX];
    tw_backup_info info;
    pthread_mutex_lock(&backup_lock);
    const char *what = "audio";
    snprintf(sub, sizeof sub, "%s/audio/manifests", dir);
    tw_err err = tw_cli_make_dirs(sub) == 0
                     ? TW_OK
                     : tw_blob_backend_fail(TW_ERR_DB, "%s: %s", sub, strerror(errno));
    /* The notes the database backup will hold: those stored before it
     * (their audio is copied first, before a deletion can take it) and
     * those stored while it runs (copied after). */
    if (err == TW_OK)
        err = each_note(s, copy_note_audio, &pass);
    if (err == TW_OK) {
        what = "database backup";
        err = tw_store_backup_create(s, dir, &info);
    }
    if (err == TW_OK) {
        what = "audio";
        err = each_note(s, copy_note_audio, &pass);
    }
    if (err == TW_OK) {
        sha_list_settle(&shas);
        err = manifest_write(dir, info.id, &shas);
    }
    pthread_mutex_unlock(&backup_lock);
    out->time_ms = tw_wall_ms();
    if (err) {
        status_fail(out, err, what);
    } else {
        out->id = info.id;
        out->db_bytes = info.size;
        out->db_files = info.files;
        out->audio_files = shas.count;
        out->audio_bytes_copied = pass.report.bytes;
        out->ok = pass.report.mismatched == 0;
        if (!out->ok)
            snprintf(out->error, sizeof out->error, "%llu notes' audio not backed up: %.200s",
                     (unsigned long long)pass.report.mismatched, pass.report.first_problem);
    }
    free(shas.items);
    return err;
}

/* ---- schedule, purge --------------------------------------------------------- */

int64_t tw_ops_backup_latest_ms(const char *dir)
{
    tw_backup_info infos[1];
    size_t count = 0;
    if (tw_store_backup_list(dir, infos, 0, &count) != TW_OK || count == 0)
        return 0;
    tw_backup_info *all = calloc(count, sizeof *all);
    int64_t latest = 0;
    if (all != NULL && tw_store_backup_list(dir, all, count, &count) == TW_OK && count > 0)
        latest = all[count - 1].timestamp * 1000;
    free(all);
    return latest;
}

/* Removes the audio files of dir that no listed manifest holds. */
static tw_err sweep_audio(const char *dir, const struct sha_list *keep)
{
    char audio[PATH_MAX];
    snprintf(audio, sizeof audio, "%s/audio", dir);
    DIR *top = opendir(audio);
    if (top == NULL)
        return errno == ENOENT ? TW_OK
                               : tw_blob_backend_fail(TW_ERR_DB, "%s: %s", audio, strerror(errno));
    struct dirent *e;
    while ((e = readdir(top)) != NULL) {
        if (strlen(e->d_name) != 2)
            continue; /* ".", "..", manifests */
        char sub[PATH_MAX];
        DIR *d = path_join(sub, audio, e->d_name) ? opendir(sub) : NULL;
        struct dirent *f;
        while (d != NULL && (f = readdir(d)) != NULL) {
            if (sha_valid(f->d_name) && !sha_list_has(keep, f->d_name)) {
                char path[PATH_MAX];
                if (path_join(path, sub, f->d_name))
                    unlink(path);
            }
        }
        if (d != NULL)
            closedir(d);
    }
    closedir(top);
    return TW_OK;
}

tw_err tw_ops_backup_purge(const char *dir, uint32_t keep)
{
    pthread_mutex_lock(&backup_lock);
    tw_backup_info *infos = calloc(MAX_BACKUPS, sizeof *infos);
    size_t count = 0;
    struct sha_list shas = {0};
    tw_err err = infos ? tw_store_backup_purge(dir, keep) : TW_ERR_NO_MEMORY;
    if (err == TW_OK)
        err = tw_store_backup_list(dir, infos, MAX_BACKUPS, &count);
    for (size_t i = 0; err == TW_OK && i < count && i < MAX_BACKUPS; i++)
        err = manifest_read(dir, infos[i].id, &shas);
    if (err == TW_OK) {
        sha_list_settle(&shas);
        err = sweep_audio(dir, &shas);
    }
    /* Manifests of purged backups go too. */
    char mdir[PATH_MAX];
    snprintf(mdir, sizeof mdir, "%s/audio/manifests", dir);
    DIR *d = err == TW_OK ? opendir(mdir) : NULL;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        char *end;
        unsigned long id = strtoul(e->d_name, &end, 10);
        bool kept = false;
        for (size_t i = 0; i < count && i < MAX_BACKUPS && !kept; i++)
            kept = infos[i].id == id;
        if (*end == '\0' && e->d_name[0] != '\0' && !kept) {
            char path[PATH_MAX];
            if (path_join(path, mdir, e->d_name))
                unlink(path);
        }
    }
    if (d != NULL)
        closedir(d);
    pthread_mutex_unlock(&backup_lock);
    free(shas.items);
    free(infos);
    return err;
}

void tw_ops_backup_scheduled(tw_app *app, tw_backup_status *out)
{
    const tw_config *cfg = app->cfg;
    tw_err err = tw_ops_backup_create(app->store, app->blobs, cfg->backup_dir, out);
    if (err == TW_OK && (err = tw_ops_backup_purge(cfg->backup_dir, (uint32_t)cfg->backup_keep)))
        status_fail(out, err, "purging old backups");
    uint64_t uploaded = 0;
    if (err == TW_OK && cfg->backup_upload) {
        tw_blob_s3_options opts = tw_cli_s3_options(cfg);
        tw_blob_store *bucket = NULL;
        err = tw_blob_s3_open(&opts, &bucket);
        if (err == TW_OK)
            err = tw_ops_backup_upload(cfg->backup_dir, bucket, cfg->backup_s3_prefix, &uploaded);
        tw_blob_close(bucket);
        if (err)
            status_fail(out, err, "upload to S3");
    }
    out->time_ms = tw_wall_ms();
    if (app->ops != NULL)
        tw_ops_backup_record(app->ops, out);
    tw_log(out->ok ? TW_LOG_INFO : TW_LOG_ERROR, out->ok ? "backup done" : "backup failed",
           json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:s}", "directory", out->directory, "id",
                     (int)out->id, "db_bytes", (json_int_t)out->db_bytes, "audio_files",
                     (json_int_t)out->audio_files, "audio_bytes_copied",
                     (json_int_t)out->audio_bytes_copied, "uploaded", (json_int_t)uploaded, "error",
                     out->error));
}

/* ---- verify, restore ---------------------------------------------------------- */

struct audio_check {
    const char *dir;
    tw_blob_store *restore_to; /* NULL: verify only */
    tw_audio_report report;
};

/* Hashes dir's copy of one note's audio, writing it to restore_to on the
 * way when restoring. */
static tw_err check_note_audio(void *ctx, const note_record *rec)
{
    struct audio_check *c = ctx;
    c->report.notes++;
    const char *sha = rec->note ? rec->note->sha256 : "";
    char path[PATH_MAX];
    if (!sha_valid(sha)) {
        c->report.mismatched++;
        note_problem(&c->report, rec, "the note has no valid sha256");
        return TW_OK;
    }
    audio_path(c->dir, sha, path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        c->report.missing++;
        note_problem(&c->report, rec, "its audio is missing from the backup");
        return TW_OK;
    }
    c->report.files++;
    tw_blob_writer *w = NULL;
    char *buf = malloc(COPY_CHUNK);
    struct hashing h = {0};
    tw_err err = buf && hashing_start(&h) ? TW_OK : TW_ERR_NO_MEMORY;
    if (err == TW_OK && c->restore_to != NULL)
        err = tw_blob_writer_open(c->restore_to, rec->blob_key, &w);
    ssize_t n;
    while (err == TW_OK && (n = read(fd, buf, COPY_CHUNK)) > 0) {
        hashing_add(&h, buf, (size_t)n);
        if (w != NULL)
            err = tw_blob_writer_append(w, buf, (size_t)n);
    }
    close(fd);
    free(buf);
    bool matches = err == TW_OK && hashing_matches(&h, sha, rec->note->size_bytes);
    EVP_MD_CTX_free(h.md);
    if (err == TW_OK && !matches) {
        c->report.mismatched++;
        note_problem(&c->report, rec, "its audio in the backup does not match the note's sha256");
    }
    if (w != NULL && err == TW_OK && matches)
        err = tw_blob_writer_commit(w);
    else
        tw_blob_writer_abort(w);
    if (err == TW_OK)
        c->report.bytes += h.size;
    return err;
}

static tw_err check_restored_notes(void *ctx, tw_store *restored)
{
    return each_note(restored, check_note_audio, ctx);
}

/* The report's verdict: TW_ERR_DB_CORRUPT when a note's audio is bad. */
static tw_err audio_verdict(const struct audio_check *c)
{
    if (c->report.missing == 0 && c->report.mismatched == 0)
        return TW_OK;
    return tw_blob_backend_fail(TW_ERR_DB_CORRUPT, "%llu notes' audio missing, %llu damaged: %s",
                                (unsigned long long)c->report.missing,
                                (unsigned long long)c->report.mismatched, c->report.first_problem);
}

tw_err tw_ops_backup_verify(const char *dir, tw_backup_info *info, tw_store_report *report,
                            tw_audio_report *audio)
{
    struct audio_check c = {.dir = dir};
    tw_err err = tw_store_backup_verify_with(dir, info, report, check_restored_notes, &c);
    if (err == TW_OK)
        err = audio_verdict(&c);
    if (audio != NULL)
        *audio = c.report;
    return err;
}

tw_err tw_ops_backup_restore(const char *dir, const char *data_dir, tw_blob_store *blobs,
                             tw_audio_report *audio)
{
    struct audio_check c = {.dir = dir, .restore_to = blobs};
    tw_err err = tw_store_backup_restore(dir, data_dir);
    tw_store *s = NULL;
    if (err == TW_OK)
        err = tw_store_open(&(tw_store_options){.data_dir = data_dir, .read_only = true}, &s);
    if (err == TW_OK)
        err = each_note(s, check_note_audio, &c);
    tw_store_close(s);
    if (err == TW_OK)
        err = audio_verdict(&c);
    if (audio != NULL)
        *audio = c.report;
    return err;
}

/* ---- upload ---------------------------------------------------------------------- */

struct key_list {
    char **keys;
    size_t count, cap;
};

static tw_err key_list_add(void *ctx, const char *key, const tw_blob_info *info)
{
    (void)info;
    struct key_list *l = ctx;
    if (l->count == l->cap) {
        char **grown = tw_array_grow(l->keys, l->count, &l->cap, sizeof *grown, 64);
        if (grown == NULL)
            return TW_ERR_NO_MEMORY;
        l->keys = grown;
    }
    return (l->keys[l->count++] = strdup(key)) ? TW_OK : TW_ERR_NO_MEMORY;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool key_list_has(const struct key_list *l, const char *key)
{
    return l->count > 0 && bsearch(&key, l->keys, l->count, sizeof *l->keys, key_cmp) != NULL;
}

static void key_list_free(struct key_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->keys[i]);
    free(l->keys);
}

/* Every file under dir/rel (names starting with '.' are temporary and
 * skipped), as keys prefix + path relative to dir. */
static tw_err local_files(const char *dir, const char *rel, const char *prefix,
                          struct key_list *out)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s%s%s", dir, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    if (d == NULL)
        return tw_blob_backend_fail(TW_ERR_DB, "%s: %s", path, strerror(errno));
    tw_err err = TW_OK;
    struct dirent *e;
    while (err == TW_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char child[PATH_MAX], full[PATH_MAX];
        bool fits = rel[0] ? path_join(child, rel, e->d_name)
                           : snprintf(child, sizeof child, "%s", e->d_name) < PATH_MAX;
        struct stat st;
        if (!fits || !path_join(full, dir, child) || stat(full, &st) != 0)
            continue; /* gone meanwhile */
        if (S_ISDIR(st.st_mode)) {
            err = local_files(dir, child, prefix, out);
        } else if (S_ISREG(st.st_mode)) {
            char key[PATH_MAX];
            snprintf(key, sizeof key, "%s%s", prefix, child);
            err = key_list_add(out, key, NULL);
        }
    }
    closedir(d);
    return err;
}

static tw_err upload_file(tw_blob_store *bucket, const char *path, const char *key)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tw_blob_backend_fail(TW_ERR_DB, "%s: %s", path, strerror(errno));
    tw_blob_writer *w = NULL;
    char *buf = malloc(COPY_CHUNK);
    tw_err err = buf ? tw_blob_writer_open(bucket, key, &w) : TW_ERR_NO_MEMORY;
    ssize_t n;
    while (err == TW_OK && (n = read(fd, buf, COPY_CHUNK)) > 0)
        err = tw_blob_writer_append(w, buf, (size_t)n);
    close(fd);
    free(buf);
    if (w != NULL)
        err = err ? (tw_blob_writer_abort(w), err) : tw_blob_writer_commit(w);
    return err;
}

tw_err tw_ops_backup_upload(const char *dir, tw_blob_store *bucket, const char *prefix,
                            uint64_t *uploaded)
{
    struct key_list local = {0}, remote = {0};
    *uploaded = 0;
    pthread_mutex_lock(&backup_lock);
    tw_err err = local_files(dir, "", prefix, &local);
    if (err == TW_OK)
        err = tw_blob_list(bucket, prefix, key_list_add, &remote);
    if (err == TW_OK) {
        /* qsort's base may not be NULL, even for no elements (C11 7.22.5). */
        if (local.count > 1)
            qsort(local.keys, local.count, sizeof *local.keys, key_cmp);
        if (remote.count > 1)
            qsort(remote.keys, remote.count, sizeof *remote.keys, key_cmp);
    }
    size_t plen = strlen(prefix);
    for (size_t i = 0; err == TW_OK && i < local.count; i++) {
        if (key_list_has(&remote, local.keys[i]))
            continue; /* backup files never change once written */
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, local.keys[i] + plen);
        if ((err = upload_file(bucket, path, local.keys[i])) == TW_OK)
            (*uploaded)++;
    }
    for (size_t i = 0; err == TW_OK && i < remote.count; i++)
        if (!key_list_has(&local, remote.keys[i]))
            err = tw_blob_delete(bucket, remote.keys[i]);
    pthread_mutex_unlock(&backup_lock);
    key_list_free(&local);
    key_list_free(&remote);
    return err;
}
