/*
 * The filesystem blob backend: key "a/b" is the file <data_dir>/blobs/a/b.
 *
 * A writer writes a temporary file in blobs/.tmp (keys cannot start with
 * '.', so it is never a key); commit fsyncs it, makes the key's directories
 * (fsyncing each parent that gains one), renames it into place and fsyncs
 * both directories, so after commit returns the object survives power loss
 * and before that no reader can see any of it. Temporary files left by a
 * crash are deleted when the store is opened.
 *
 * A writer writes around the page cache (O_DIRECT) where the filesystem
 * allows it, in whole blocks of DIRECT_BYTES from an aligned buffer; the
 * last part of a block goes through the page cache at commit. An upload is
 * written once and read back once, by its transcription: copying it into
 * the page cache cost more CPU than the rest of the upload path (the
 * copy, and on a virtual machine the first touch of each page it takes),
 * and it pushed RocksDB's pages out of that cache. The cost: a writer holds
 * the buffer, and a block's write waits for the device.
 */
#include "blob_backend.h"
#include "store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_DIR ".tmp"
/* O_DIRECT's alignment of memory, file offsets and lengths: the logical
 * block size of every device a data directory is likely on. */
#define DIRECT_ALIGN 4096
/* Bytes a direct writer gathers before writing them at once. */
#define DIRECT_BYTES (1024 * 1024)

struct fs_store {
    tw_blob_store base;
    char *root; /* <data_dir>/blobs */
    char *tmp;  /* <root>/.tmp */
};

struct fs_writer {
    tw_blob_writer base;
    int fd;
    /* Direct writes: the block being gathered (NULL when the filesystem
     * refused O_DIRECT: every append is written through the page cache). */
    uint8_t *block;
    size_t block_len;
    char tmp_path[PATH_MAX];
    char path[PATH_MAX];
};

struct fs_reader {
    tw_blob_reader base;
    int fd;
};

static struct fs_store *fs_of(tw_blob_store *b)
{
    return (struct fs_store *)b;
}

static tw_err key_path(const struct fs_store *fs, const char *key, char path[PATH_MAX])
{
    int n = snprintf(path, PATH_MAX, "%s/%s", fs->root, key);
    return n > 0 && n < PATH_MAX ? TW_OK : store_fail(TW_ERR_VALIDATION, "blob path too long");
}

static void info_of(const struct stat *st, tw_blob_info *out)
{
    out->size = (uint64_t)st->st_size;
    out->mtime_ms = (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

/* The directory part of path, in out. */
static const char *parent_of(const char *path, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s", path);
    return dirname(out);
}

/* Turns O_DIRECT on or off for fd; false when the filesystem refuses. */
static bool set_direct(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && fcntl(fd, F_SETFL, on ? flags | O_DIRECT : flags & ~O_DIRECT) == 0;
}

static tw_err fs_writer_open(tw_blob_store *b, const char *key, tw_blob_writer **out)
{
    struct fs_store *fs = fs_of(b);
    struct fs_writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return TW_ERR_NO_MEMORY;
    w->base.store = b;
    tw_err err = key_path(fs, key, w->path);
    if (err == TW_OK && snprintf(w->tmp_path, PATH_MAX, "%s/XXXXXX", fs->tmp) >= PATH_MAX)
        err = store_fail(TW_ERR_VALIDATION, "blob path too long");
    if (err == TW_OK && (w->fd = mkostemp(w->tmp_path, O_CLOEXEC)) < 0)
        err = store_errno(w->tmp_path);
    if (err) {
        free(w);
        return err;
    }
    /* tmpfs and some others refuse O_DIRECT: then the page cache it is. */
    if (set_direct(w->fd, true) &&
        posix_memalign((void **)&w->block, DIRECT_ALIGN, DIRECT_BYTES) != 0) {
        w->block = NULL;
        set_direct(w->fd, false);
    }
    *out = &w->base;
    return TW_OK;
}

/* Writes len bytes at the file's offset; *done counts those written, so
 * that a failed write can be taken up where it stopped. 0 or an errno. */
static int write_all(int fd, const uint8_t *p, size_t len, size_t *done)
{
    *done = 0;
    while (*done < len) {
        ssize_t n = write(fd, p + *done, len - *done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        *done += (size_t)n;
    }
    return 0;
}

static tw_err write_error(int e)
{
    errno = e;
    return store_errno("blob write");
}

/* Writes the gathered block's whole DIRECT_ALIGN units around the page
 * cache and keeps the rest (less than a unit) at its start. A filesystem
 * that took O_DIRECT at open but refuses a write of it (EINVAL) is written
 * through the page cache from then on. */
static tw_err write_block(struct fs_writer *w)
{
    size_t whole = w->block_len / DIRECT_ALIGN * DIRECT_ALIGN, done, more = 0;
    int e = write_all(w->fd, w->block, whole, &done);
    if (e == EINVAL && set_direct(w->fd, false))
        e = write_all(w->fd, w->block + done, whole - done, &more);
    if (e)
        return write_error(e);
    w->block_len -= whole;
    memmove(w->block, w->block + whole, w->block_len);
    return TW_OK;
}

static tw_err fs_writer_append(tw_blob_writer *bw, const void *data, size_t len)
{
    struct fs_writer *w = (struct fs_writer *)bw;
    size_t done;
    if (w->block == NULL) {
        int e = write_all(w->fd, data, len, &done);
        return e ? write_error(e) : TW_OK;
    }
    const uint8_t *p = data;
    while (len > 0) {
        size_t take = DIRECT_BYTES - w->block_len < len ? DIRECT_BYTES - w->block_len : len;
        memcpy(w->block + w->block_len, p, take);
        w->block_len += take;
        p += take;
        len -= take;
        tw_err err = w->block_len == DIRECT_BYTES ? write_block(w) : TW_OK;
        if (err)
            return err;
    }
    return TW_OK;
}

/* What is gathered and not written yet: its whole units directly, the
 * rest through the page cache (O_DIRECT cannot write a partial unit). */
static tw_err write_rest(struct fs_writer *w)
{
    if (w->block == NULL || w->block_len == 0)
        return TW_OK;
    tw_err err = write_block(w);
    if (err || w->block_len == 0)
        return err;
    if (!set_direct(w->fd, false))
        return store_errno("blob fcntl");
    size_t done;
    int e = write_all(w->fd, w->block, w->block_len, &done);
    return e ? write_error(e) : TW_OK;
}

static void fs_writer_abort(tw_blob_writer *bw)
{
    struct fs_writer *w = (struct fs_writer *)bw;
    if (w->fd >= 0)
        close(w->fd);
    unlink(w->tmp_path);
    free(w->block);
    free(w);
}

static tw_err fs_writer_commit(tw_blob_writer *bw)
{
    struct fs_writer *w = (struct fs_writer *)bw;
    struct fs_store *fs = fs_of(bw->store);
    char dir[PATH_MAX];
    tw_err err = write_rest(w);
    if (err == TW_OK && fsync(w->fd) != 0)
        err = store_errno("blob fsync");
    if (close(w->fd) != 0 && err == TW_OK)
        err = store_errno("blob close");
    w->fd = -1;
    /* A delete may remove the key's directory as it empties between
     * mkdirs and rename: then make it again, once. */
    for (int attempt = 0; err == TW_OK && attempt < 2; attempt++) {
        if ((err = store_mkdirs(parent_of(w->path, dir))))
            break;
        if (rename(w->tmp_path, w->path) == 0)
            break;
        if (errno != ENOENT || attempt == 1)
            err = store_errno("blob rename");
    }
    if (err == TW_OK)
        err = store_fsync_dir(dir);
    if (err == TW_OK)
        err = store_fsync_dir(fs->tmp);
    fs_writer_abort(bw); /* after the rename there is nothing left to unlink */
    return err;
}

static tw_err open_error(const char *path)
{
    return errno == ENOENT || errno == ENOTDIR ? TW_ERR_NOT_FOUND : store_errno(path);
}

static tw_err fs_reader_open(tw_blob_store *b, const char *key, uint64_t offset,
                             tw_blob_reader **out, tw_blob_info *info)
{
    char path[PATH_MAX];
    struct stat st;
    tw_err err = key_path(fs_of(b), key, path);
    if (err)
        return err;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return open_error(path);
    if (fstat(fd, &st) != 0)
        err = store_errno(path);
    else if (!S_ISREG(st.st_mode))
        err = TW_ERR_NOT_FOUND;
    else if (offset > (uint64_t)st.st_size)
        err = store_fail(TW_ERR_VALIDATION, "offset %llu beyond the blob's %lld bytes",
                         (unsigned long long)offset, (long long)st.st_size);
    else if (lseek(fd, (off_t)offset, SEEK_SET) < 0)
        err = store_errno(path);
    struct fs_reader *r = err ? NULL : calloc(1, sizeof *r);
    if (err == TW_OK && r == NULL)
        err = TW_ERR_NO_MEMORY;
    if (err) {
        close(fd);
        return err;
    }
    r->base.store = b;
    r->fd = fd;
    info_of(&st, info);
    *out = &r->base;
    return TW_OK;
}

static tw_err fs_reader_read(tw_blob_reader *br, void *buf, size_t cap, size_t *n)
{
    struct fs_reader *r = (struct fs_reader *)br;
    ssize_t got;
    do {
        got = read(r->fd, buf, cap);
    } while (got < 0 && errno == EINTR);
    if (got < 0)
        return store_errno("blob read");
    *n = (size_t)got;
    return TW_OK;
}

static void fs_reader_close(tw_blob_reader *br)
{
    struct fs_reader *r = (struct fs_reader *)br;
    close(r->fd);
    free(r);
}

static tw_err fs_remove(tw_blob_store *b, const char *key)
{
    struct fs_store *fs = fs_of(b);
    char path[PATH_MAX], dir[PATH_MAX];
    tw_err err = key_path(fs, key, path);
    if (err)
        return err;
    if (unlink(path) != 0)
        return open_error(path);
    if ((err = store_fsync_dir(parent_of(path, dir))))
        return err;
    /* Drop the directories the key leaves empty ("<user-id>/" after a
     * user's last note); one that is not empty stops the climb. */
    while (strlen(dir) > strlen(fs->root) && rmdir(dir) == 0)
        snprintf(dir, PATH_MAX, "%s", parent_of(dir, path));
    return TW_OK;
}

static tw_err fs_stat(tw_blob_store *b, const char *key, tw_blob_info *out)
{
    char path[PATH_MAX];
    struct stat st;
    tw_err err = key_path(fs_of(b), key, path);
    if (err)
        return err;
    if (stat(path, &st) != 0)
        return open_error(path);
    if (!S_ISREG(st.st_mode))
        return TW_ERR_NOT_FOUND;
    info_of(&st, out);
    return TW_OK;
}

struct list_walk {
    const char *prefix;
    tw_blob_list_fn fn;
    void *ctx;
    size_t root_len; /* path[root_len + 1] is where the key starts */
    char path[PATH_MAX];
};

/* Lists the directory at walk->path (path_len bytes) and below. Names
 * starting with '.' (the temporary directory) are not keys. */
static tw_err list_dir(struct list_walk *walk, size_t path_len)
{
    DIR *d = opendir(walk->path);
    if (d == NULL)
        return errno == ENOENT ? TW_OK : store_errno(walk->path);
    tw_err err = TW_OK;
    struct dirent *e;
    while (err == TW_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int n = snprintf(walk->path + path_len, PATH_MAX - path_len, "/%s", e->d_name);
        if (n < 0 || (size_t)n >= PATH_MAX - path_len)
            continue; /* longer than any key can be */
        const char *key = walk->path + walk->root_len + 1;
        size_t key_len = path_len + (size_t)n - walk->root_len - 1;
        size_t prefix_len = strlen(walk->prefix);
        /* Descend only where keys with the prefix can be. */
        size_t cmp = key_len < prefix_len ? key_len : prefix_len;
        if (strncmp(key, walk->prefix, cmp) != 0)
            continue;
        struct stat st;
        if (lstat(walk->path, &st) != 0)
            err = store_errno(walk->path);
        else if (S_ISDIR(st.st_mode))
            err = list_dir(walk, path_len + (size_t)n);
        else if (S_ISREG(st.st_mode) && key_len >= prefix_len) {
            tw_blob_info info;
            info_of(&st, &info);
            err = walk->fn(walk->ctx, key, &info);
        }
    }
    closedir(d);
    walk->path[path_len] = '\0';
    return err;
}

static tw_err fs_list(tw_blob_store *b, const char *prefix, tw_blob_list_fn fn, void *ctx)
{
    struct fs_store *fs = fs_of(b);
    struct list_walk *walk = malloc(sizeof *walk);
    if (walk == NULL)
        return TW_ERR_NO_MEMORY;
    *walk =
        (struct list_walk){.prefix = prefix, .fn = fn, .ctx = ctx, .root_len = strlen(fs->root)};
    snprintf(walk->path, PATH_MAX, "%s", fs->root);
    tw_err err = list_dir(walk, walk->root_len);
    free(walk);
    return err;
}

static void fs_close(tw_blob_store *b)
{
    struct fs_store *fs = fs_of(b);
    free(fs->root);
    free(fs->tmp);
    free(fs);
}

static const struct tw_blob_ops fs_ops = {
    .writer_open = fs_writer_open,
    .writer_append = fs_writer_append,
    .writer_commit = fs_writer_commit,
    .writer_abort = fs_writer_abort,
    .reader_open = fs_reader_open,
    .reader_read = fs_reader_read,
    .reader_close = fs_reader_close,
    .remove = fs_remove,
    .stat = fs_stat,
    .list = fs_list,
    .close = fs_close,
};

/* Deletes what earlier processes left in the temporary directory. */
static tw_err clean_orphans(const struct fs_store *fs)
{
    DIR *d = opendir(fs->tmp);
    if (d == NULL)
        return store_errno(fs->tmp);
    tw_err err = TW_OK;
    struct dirent *e;
    while (err == TW_OK && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT)
            err = store_errno(e->d_name);
    }
    closedir(d);
    return err;
}

tw_err tw_blob_fs_open(const char *data_dir, tw_blob_store **out)
{
    *out = NULL;
    struct fs_store *fs = calloc(1, sizeof *fs);
    tw_err err = TW_ERR_NO_MEMORY;
    if (fs == NULL)
        return err;
    fs->base.ops = &fs_ops;
    if (asprintf(&fs->root, "%s/blobs", data_dir) < 0) {
        fs->root = NULL;
        goto out;
    }
    if (asprintf(&fs->tmp, "%s/" TMP_DIR, fs->root) < 0) {
        fs->tmp = NULL;
        goto out;
    }
    if ((err = store_mkdirs(fs->tmp)) || (err = clean_orphans(fs)))
        goto out;
    *out = &fs->base;
    fs = NULL;
out:
    if (fs != NULL)
        fs_close(&fs->base);
    return err;
}
