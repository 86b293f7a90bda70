/*
 * The store's operator commands:
 *   twd migrate status|up|down   numbered migrations (tw_migrate.h)
 *   twd check                    checksum and decode every key (safe while serving)
 *   twd backup create --to DIR   online: through a running twd's operator socket
 *   twd backup verify --from DIR restore into a temporary directory and check,
 *                                every voice note's audio against its SHA-256
 *   twd backup restore --from DIR [--data-dir DIR]   the database and the audio
 * Backups hold the audio beside the database (server/ops/backup.h).
 * Each takes the usual settings (--data-dir, --config, TW_*) after its words.
 */
#include "cli.h"
#include "ops/backup.h"
#include "rpc/client.h"
#include "tw/v1/admin_service.pb-c.h"
#include "tw_backup.h"
#include "tw_migrate.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A backup copies the whole database; give it time. */
#define BACKUP_RPC_TIMEOUT_MS (60 * 60 * 1000)

static void print_report(const char *what, const tw_store_report *r)
{
    uint64_t keys = 0;
    for (int i = 0; i < TW_CF__COUNT; i++)
        keys += r->keys[i];
    printf("%s: %llu keys, %llu bytes, %llu bad keys, %llu bad values\n", what,
           (unsigned long long)keys, (unsigned long long)r->bytes, (unsigned long long)r->bad_keys,
           (unsigned long long)r->bad_values);
}

static int open_for_command(const tw_config *cfg, bool read_only, tw_store **out)
{
    tw_store_options opts = tw_cli_store_options(cfg, read_only);
    if (tw_store_open(&opts, out) == TW_OK)
        return EXIT_SUCCESS;
    char socket[PATH_MAX];
    tw_cli_operator_socket(cfg, socket, sizeof socket);
    tw_cli_fail("cannot open the database in %s%s: %s", cfg->data_dir,
                access(socket, F_OK) == 0 ? " (a twd serving it must be stopped first)" : "",
                tw_store_last_error());
    return EXIT_FAILURE;
}

/* ---- migrate ------------------------------------------------------------- */

static void print_note(void *ctx, const char *text)
{
    (void)ctx;
    printf("      %s\n", text);
}

/* The migrations, then what they left for an operator to resolve. */
static int migrate_status(tw_store *s)
{
    tw_arena *arena = tw_arena_new(4096);
    tw_migration_status *rows;
    size_t n;
    tw_err err = arena ? tw_store_migrate_status(s, &tw_store_migrations, arena, &rows, &n)
                       : TW_ERR_NO_MEMORY;
    for (size_t i = 0; !err && i < n; i++) {
        char when[32] = "pending";
        if (rows[i].applied) {
            time_t secs = (time_t)(rows[i].apply_ms / 1000);
            struct tm tm;
            gmtime_r(&secs, &tm);
            strftime(when, sizeof when, "applied %Y-%m-%dT%H:%M:%SZ", &tm);
        }
        printf("%4u  %-32s %s\n", rows[i].number, rows[i].name, when);
    }
    if (!err)
        err = tw_store_migration_notes(s, print_note, NULL);
    tw_arena_free(arena);
    return err ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int migrate_up(tw_store *s)
{
    size_t applied = 0;
    tw_err err = tw_store_migrate_up(s, &tw_store_migrations, &applied);
    printf("applied %zu migration(s)\n", applied);
    return err ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* --to N of `migrate down`: revert every migration above N; without it,
 * the last one only. */
static const char *down_to;

static int migrate_down(tw_store *s)
{
    char *end = NULL;
    long to = down_to ? strtol(down_to, &end, 10) : -1;
    if (down_to && (*end != '\0' || to < 0)) {
        tw_cli_fail("--to needs a migration number");
        return TW_EXIT_USAGE;
    }
    uint32_t number = 0;
    tw_err err = TW_OK;
    bool any = false;
    do {
        tw_arena *arena = tw_arena_new(1024);
        tw_migration_status *rows;
        size_t n, last = 0;
        err = arena ? tw_store_migrate_status(s, &tw_store_migrations, arena, &rows, &n)
                    : TW_ERR_NO_MEMORY;
        for (size_t i = 0; !err && i < n; i++)
            last = rows[i].applied ? rows[i].number : last;
        tw_arena_free(arena);
        if (err || (to >= 0 && last <= (size_t)to))
            break;
        if ((err = tw_store_migrate_down(s, &tw_store_migrations, &number)) || number == 0)
            break;
        printf("reverted migration %u\n", number);
        any = true;
    } while (to >= 0);
    if (!err && !any)
        printf(number == 0 && to < 0 ? "no migration is applied\n" : "nothing to revert\n");
    return err ? EXIT_FAILURE : EXIT_SUCCESS;
}

static const struct {
    const char *word;
    int (*run)(tw_store *s);
} migrate_actions[] = {
    {"status", migrate_status},
    {"up", migrate_up},
    {"down", migrate_down},
};

int tw_cmd_migrate(int argc, char **argv)
{
    size_t action = 0;
    while (action < sizeof migrate_actions / sizeof migrate_actions[0] &&
           (argc < 1 || strcmp(argv[0], migrate_actions[action].word) != 0))
        action++;
    if (action == sizeof migrate_actions / sizeof migrate_actions[0]) {
        tw_cli_fail("usage: twd migrate status|up|down [--to N] [settings]");
        return TW_EXIT_USAGE;
    }
    argc--, argv++;
    down_to = tw_cli_take_option(&argc, argv, "--to");
    tw_config cfg;
    if (!tw_cli_load_config(&cfg, argc, argv))
        return TW_EXIT_USAGE;
    tw_store *s = NULL;
    int status = open_for_command(&cfg, false, &s);
    if (status == EXIT_SUCCESS) {
        status = migrate_actions[action].run(s);
        if (status != EXIT_SUCCESS)
            tw_cli_fail("migrate %s failed: %s", migrate_actions[action].word,
                        tw_store_last_error());
    }
    tw_store_close(s);
    tw_config_free(&cfg);
    return status;
}

/* ---- check ------------------------------------------------------------------- */

int tw_cmd_check(int argc, char **argv)
{
    tw_config cfg;
    if (!tw_cli_load_config(&cfg, argc, argv))
        return TW_EXIT_USAGE;
    tw_store_report report;
    tw_err err = tw_store_check(cfg.data_dir, &report);
    print_report(err ? "damaged" : "ok", &report);
    if (err)
        tw_cli_fail("check of %s failed: %s", cfg.data_dir, tw_store_last_error());
    tw_config_free(&cfg);
    return err ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- backup ------------------------------------------------------------------ */

static void print_backup(const char *dir, const tw_backup_info *info)
{
    printf("backup %u in %s: %u files, %llu bytes\n", info->id, dir, info->files,
           (unsigned long long)info->size);
}

/* Online: ask the running twd. TW_ERR_UPSTREAM when none answers. */
static tw_err backup_through_server(const tw_config *cfg, const char *dir, tw_backup_info *info)
{
    char socket[PATH_MAX], target[PATH_MAX + 8], errbuf[512] = "";
    tw_cli_operator_socket(cfg, socket, sizeof socket);
    if (access(socket, F_OK) != 0)
        return TW_ERR_UPSTREAM;
    snprintf(target, sizeof target, "unix:%s", socket);
    Tw__V1__CreateBackupRequest request = TW__V1__CREATE_BACKUP_REQUEST__INIT;
    request.directory = (char *)dir;
    tw_arena *arena = tw_arena_new(1024);
    ProtobufCMessage *response = NULL;
    tw_err err =
        arena ? tw_rpc_call(&(tw_rpc_target){.address = target}, "/tw.v1.AdminService/CreateBackup",
                            &request.base, &tw__v1__create_backup_response__descriptor,
                            BACKUP_RPC_TIMEOUT_MS, arena, &response, errbuf, sizeof errbuf)
              : TW_ERR_NO_MEMORY;
    if (!err) {
        const Tw__V1__CreateBackupResponse *out = (const void *)response;
        *info = (tw_backup_info){
            .id = out->backup_id, .size = out->size_bytes, .files = out->file_count};
    } else if (err != TW_ERR_UPSTREAM) {
        tw_cli_fail("the running twd refused the backup: %s", errbuf);
    }
    tw_arena_free(arena);
    return err;
}

/* The configured blob storage, for the audio of offline backups and
 * restores: <data_dir>/blobs, or the S3 bucket. */
static tw_err open_blobs(const tw_config *cfg, tw_blob_store **out)
{
    if (cfg->blob_backend == TW_BLOB_BACKEND_FS)
        return tw_blob_fs_open(cfg->data_dir, out);
    tw_blob_s3_options opts = tw_cli_s3_options(cfg);
    return tw_blob_s3_open(&opts, out);
}

static int backup_create(const tw_config *cfg, const char *dir)
{
    tw_backup_info info;
    tw_err err = backup_through_server(cfg, dir, &info);
    if (err == TW_ERR_UPSTREAM) { /* no server running: back up the closed store */
        tw_store *s = NULL;
        tw_blob_store *blobs = NULL;
        if (open_for_command(cfg, true, &s) != EXIT_SUCCESS)
            return EXIT_FAILURE;
        tw_backup_status st;
        err = open_blobs(cfg, &blobs);
        if (!err)
            err = tw_ops_backup_create(s, blobs, dir, &st);
        if (!err && !st.ok)
            err = TW_ERR_DB_CORRUPT;
        if (err)
            tw_cli_fail("backup to %s failed: %s", dir,
                        st.error[0] ? st.error : tw_store_last_error());
        else
            info = (tw_backup_info){.id = st.id, .size = st.db_bytes, .files = st.db_files};
        tw_blob_close(blobs);
        tw_store_close(s);
    }
    if (!err)
        print_backup(dir, &info);
    return err ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int backup_verify(const tw_config *cfg, const char *dir)
{
    tw_backup_info info;
    tw_store_report report;
    tw_audio_report audio;
    memset(&report, 0, sizeof report);
    tw_err err = tw_ops_backup_verify(dir, &info, &report, &audio);
    if (err) {
        tw_cli_fail("backup in %s is not usable: %s", dir, tw_store_last_error());
        return EXIT_FAILURE;
    }
    print_backup(dir, &info);
    print_report("restored and checked", &report);
    printf("audio: %llu voice notes checked against their SHA-256, %llu bytes\n",
           (unsigned long long)audio.notes, (unsigned long long)audio.bytes);
    return EXIT_SUCCESS;
}

static int backup_restore(const tw_config *cfg, const char *dir)
{
    tw_blob_store *blobs = NULL;
    tw_audio_report audio;
    tw_err err = open_blobs(cfg, &blobs);
    if (!err)
        err = tw_ops_backup_restore(dir, cfg->data_dir, blobs, &audio);
    tw_blob_close(blobs);
    if (err) {
        tw_cli_fail("restore from %s into %s failed: %s", dir, cfg->data_dir,
                    tw_store_last_error());
        return EXIT_FAILURE;
    }
    printf("restored the latest backup in %s into %s, with the audio of %llu voice notes\n", dir,
           cfg->data_dir, (unsigned long long)audio.notes);
    return EXIT_SUCCESS;
}

static const struct {
    const char *word;
    const char *dir_option; /* where the backup is */
    int (*run)(const tw_config *cfg, const char *dir);
} backup_actions[] = {
    {"create", "--to", backup_create},
    {"verify", "--from", backup_verify},
    {"restore", "--from", backup_restore},
};

int tw_cmd_backup(int argc, char **argv)
{
    size_t action = 0;
    while (action < sizeof backup_actions / sizeof backup_actions[0] &&
           (argc < 1 || strcmp(argv[0], backup_actions[action].word) != 0))
        action++;
    if (action == sizeof backup_actions / sizeof backup_actions[0]) {
        tw_cli_fail("usage: twd backup create --to DIR | verify --from DIR | restore --from DIR "
                    "[settings]");
        return TW_EXIT_USAGE;
    }
    argc--, argv++;
    const char *dir = tw_cli_take_option(&argc, argv, backup_actions[action].dir_option);
    if (dir == NULL || dir[0] == '\0') {
        tw_cli_fail("backup %s needs %s DIR", backup_actions[action].word,
                    backup_actions[action].dir_option);
        return TW_EXIT_USAGE;
    }
    /* The server may run elsewhere in the file system's view (another
     * working directory): send it an absolute path. */
    char absolute[2 * PATH_MAX];
    if (dir[0] != '/') {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd) == NULL) {
            tw_cli_fail("cannot read the working directory");
            return EXIT_FAILURE;
        }
        snprintf(absolute, sizeof absolute, "%s/%s", cwd, dir);
        dir = absolute;
    }
    tw_config cfg;
    if (!tw_cli_load_config(&cfg, argc, argv))
        return TW_EXIT_USAGE;
    int status = backup_actions[action].run(&cfg, dir);
    tw_config_free(&cfg);
    return status;
}
