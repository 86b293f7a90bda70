/*
 * Backups with RocksDB's BackupEngine, for `twd backup create|verify|
 * restore`. A backup directory holds any number of backups (table files
 * shared between them, each with its checksum); verify and restore use the
 * latest. Audio is not in the database: server/ops/backup.c keeps it
 * beside the database's files, in the same directory.
 */
#ifndef TW_BACKUP_H
#define TW_BACKUP_H

#include "tw_store.h"

typedef struct tw_backup_info {
    uint32_t id;       /* the backup's number in its directory */
    int64_t timestamp; /* when it was taken, Unix seconds */
    uint64_t size;     /* bytes */
    uint32_t files;
    uint32_t count; /* backups in the directory */
} tw_backup_info;

/* Backs up the open store s into backup_dir (made if missing) while writes
 * continue: the backup is the store as of one moment during the call.
 * info may be NULL. Paths are borrowed.
 * Best run on the serving store itself (an admin RPC). s may also be a
 * store opened read-only by another process beside a serving twd (`twd
 * backup create`): it backs up what it saw when it opened, WAL included,
 * but a compaction in the server may delete a file before it is copied,
 * and the backup then fails (TW_ERR_DB) and should be retried. */
tw_err tw_store_backup_create(tw_store *s, const char *backup_dir, tw_backup_info *info);

/* Checks the latest backup in backup_dir: every file is there with its
 * size, it restores (file checksums checked) into a temporary directory
 * (under $TMPDIR, else /tmp; removed afterwards),
 * and the restored store opens and passes tw_store_verify. Either out
 * pointer may be NULL. TW_ERR_NOT_FOUND when the directory holds no
 * backup; TW_ERR_DB_CORRUPT (or TW_ERR_DB) when it is damaged. */
tw_err tw_store_backup_verify(const char *backup_dir, tw_backup_info *info,
                              tw_store_report *report);

/* As tw_store_backup_verify, and then, while the restored store is still
 * open (read-only), calls check (when not NULL) with it, for what lies
 * beside the database (the audio of its voice notes); an error from check
 * is the result. */
typedef tw_err (*tw_backup_check_fn)(void *ctx, tw_store *restored);
tw_err tw_store_backup_verify_with(const char *backup_dir, tw_backup_info *info,
                                   tw_store_report *report, tw_backup_check_fn check, void *ctx);

/* Every backup in backup_dir, oldest first, at most cap of them in out;
 * *count gets how many there are (may exceed cap). A missing directory
 * holds none. */
tw_err tw_store_backup_list(const char *backup_dir, tw_backup_info *out, size_t cap,
                            size_t *count);

/* Deletes all but the keep newest backups of backup_dir (and the files
 * only they used). */
tw_err tw_store_backup_purge(const char *backup_dir, uint32_t keep);

/* Restores the latest backup in backup_dir as the store of data_dir, then
 * checks it as tw_store_check does. data_dir must not hold a store already
 * (TW_ERR_FAILED_PRECONDITION): move a damaged one aside first. A restore
 * that fails may leave files but no store; running it again replaces them. */
tw_err tw_store_backup_restore(const char *backup_dir, const char *data_dir);

#endif
