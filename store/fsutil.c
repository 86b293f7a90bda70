/* Directory helpers for the store's files: RocksDB's directory, blobs,
 * backups. */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

tw_err store_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return store_errno(dir);
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? TW_OK : store_errno(dir);
}

tw_err store_mkdirs(const char *dir)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path)
        return store_fail(TW_ERR_VALIDATION, "bad directory name '%s'", dir);
    memcpy(path, dir, len + 1);
    /* Each component in turn, so that missing parents are made too. */
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0700) == 0) {
            char parent[PATH_MAX];
            memcpy(parent, path, (size_t)(p - path) + 1);
            tw_err err = store_fsync_dir(dirname(parent));
            if (err)
                return err;
        } else if (errno != EEXIST) {
            return store_errno(path);
        }
        *p = saved;
        if (saved == '\0')
            return TW_OK;
    }
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

bool store_remove_tree(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 || errno == ENOENT;
}
