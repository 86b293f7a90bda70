/*
 * Backups that include the audio of voice notes.
 *
 * A backup directory holds RocksDB's BackupEngine files (store/backup.c)
 * and, beside them, the audio:
 *
 *   <dir>/audio/<h0h1>/<sha256>    one file per distinct recording, named by
 *                                  its SHA-256 (h0h1: its first two hex digits)
 *   <dir>/audio/manifests/<id>     the SHA-256 of every note in backup <id>,
 *                                  one per line, for purging
 *
 * Audio is content-addressed, so a recording already in the directory is
 * never copied again: a daily backup copies only the day's new notes. A
 * copy is a real one (not a hard link), so damage to the live file cannot
 * reach the backup, and its SHA-256 is checked against the note while it
 * is copied.
 *
 * Taking a backup: (1) every note's audio is copied, (2) the database is
 * backed up online, (3) notes stored meanwhile have their audio copied too,
 * and the manifest lists both passes. A note created and deleted again
 * while (2) runs is in the database's backup without audio; verify names
 * such notes.
 */
#ifndef TW_OPS_BACKUP_H
#define TW_OPS_BACKUP_H

#include "ops.h"
#include "tw_backup.h"
#include "tw_blob.h"

/* What a pass over the notes' audio found. */
typedef struct tw_audio_report {
    uint64_t notes;          /* voice notes looked at */
    uint64_t files;          /* distinct recordings among them */
    uint64_t bytes;          /* bytes copied (create, restore) or hashed (verify) */
    uint64_t missing;        /* notes whose audio is absent */
    uint64_t mismatched;     /* notes whose audio's SHA-256 or size differs from the note's */
    char first_problem[256]; /* the first missing or mismatched note, "" when none */
} tw_audio_report;

/* Backs up store s (serving or read-only) and the audio in blobs into dir
 * (absolute or relative to the working directory; made when missing).
 * Fills out (time, id, sizes; ok and error). Backups are taken one at a
 * time per process. */
tw_err tw_ops_backup_create(tw_store *s, tw_blob_store *blobs, const char *dir,
                            tw_backup_status *out);

/* The scheduled backup of a running twd: create into backup_dir, purge all
 * but backup_keep, upload to S3 when backup_upload; the outcome is logged
 * and recorded in app->ops (out gets it too). */
void tw_ops_backup_scheduled(tw_app *app, tw_backup_status *out);

/* When the newest backup in dir was taken, Unix ms; 0 when none. */
int64_t tw_ops_backup_latest_ms(const char *dir);

/* Deletes all but the keep newest backups of dir and the audio only they
 * held. */
tw_err tw_ops_backup_purge(const char *dir, uint32_t keep);

/* Checks the latest backup in dir: the database as tw_store_backup_verify
 * does, then every voice note of the restored database against its audio
 * in dir (present, same size, same SHA-256). TW_ERR_DB_CORRUPT when any
 * note's audio is missing or differs (audio says which first). */
tw_err tw_ops_backup_verify(const char *dir, tw_backup_info *info, tw_store_report *report,
                            tw_audio_report *audio);

/* Restores the latest backup in dir as the store of data_dir (which must
 * hold none) and every note's audio into blobs, checking each SHA-256 on
 * the way. */
tw_err tw_ops_backup_restore(const char *dir, const char *data_dir, tw_blob_store *blobs,
                             tw_audio_report *audio);

/* Copies every file of dir that the bucket lacks to blob store bucket under
 * prefix, and deletes what the bucket holds under prefix that dir no
 * longer has (purged backups); *uploaded gets how many files went up. */
tw_err tw_ops_backup_upload(const char *dir, tw_blob_store *bucket, const char *prefix,
                            uint64_t *uploaded);

#endif
