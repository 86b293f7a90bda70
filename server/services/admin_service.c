/*
 * tw.v1.AdminService: the runbook's procedures and queries for operators.
 *
 * Procedures that read or write much of the disk (backups with their
 * audio, verify, restore, the integrity check, compaction, migrations) run
 * on the slow pool and finish the call from there (on_slow_pool). Queries
 * are answered from counters, indexes and the engine's histograms
 * (ops/queries.h) on the call's thread. DisableUser and EnableUser switch
 * an account off and on; CreateUser hashes on the password pool;
 * SetMaintenanceMode and RotateSigningKey change what the gate enforces
 * and verifies with, in the store and in memory.
 */
#include "pbtime.h"
#include "services.h"

#include "auth/account.h"
#include "auth/auth.h"
#include "auth/session.h"
#include "kit/kit.h"
#include "ops/backup.h"
#include "ops/ops.h"
#include "ops/queries.h"
#include "rpc/metrics.h"
#include "tw/v1/admin_service.pb-c.h"
#include "tw_log.h"
#include "tw_migrate.h"
#include "tw_page.h"
#include "tw_store_ops.h"
#include "tw_time.h"
#include "tw_unique.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- shared ----------------------------------------------------------------- */

/* A procedure run on the slow pool: it fills out and returns the status. */
typedef tw_err slow_fn(tw_call *call, tw_app *app, const ProtobufCMessage *in,
                       ProtobufCMessage *out);

struct slow_job {
    tw_call *call;
    slow_fn *fn;
    const ProtobufCMessage *in;
    ProtobufCMessage *out;
};

static void run_slow(void *arg)
{
    struct slow_job *job = arg;
    tw_call_finish(job->call,
                   job->fn(job->call, tw_call_service_ctx(job->call), job->in, job->out));
}

/* Hands fn to the slow pool; returns what the handler returns. */
static tw_err on_slow_pool(tw_call *call, slow_fn *fn, const ProtobufCMessage *in,
                           ProtobufCMessage *out)
{
    tw_app *app = tw_call_service_ctx(call);
    struct slow_job *job = tw_arena_alloc(tw_call_arena(call), sizeof *job);
    if (job == NULL)
        return TW_ERR_NO_MEMORY;
    *job = (struct slow_job){call, fn, in, out};
    tw_err err = tw_pool_submit(app->slow_pool, run_slow, job);
    return err ? err : TW_DEFERRED;
}

/* A storage failure: its detail for the log, the table's message for the
 * client. */
static tw_err store_error(tw_call *call, tw_err err)
{
    if (err && err != TW_ERR_NO_MEMORY)
        tw_call_log_detail(call, "%s", tw_store_last_error());
    return err;
}

/* A directory on the server's machine, which must be absolute. */
static tw_err absolute_dir(tw_call *call, const char *field, const char *dir)
{
    if (dir[0] != '/')
        return tw_call_field_violation(call, field,
                                       "must be an absolute path on the server's "
                                       "machine");
    if (strlen(dir) >= PATH_MAX - 64)
        return tw_call_field_violation(call, field, "is too long");
    return TW_OK;
}

/* The account a request names by user_id or, when that is empty, email. */
static tw_err named_user(tw_call *call, const char *user_id, const char *email, tw_id *out)
{
    tw_app *app = tw_call_service_ctx(call);
    if (user_id[0] != '\0') {
        if (!tw_id_parse(user_id, out))
            return tw_call_field_violation(call, "user_id", "must be a user id (a UUID)");
        return TW_OK;
    }
    char normal[TW_EMAIL_MAX + 1], why[160];
    if (email[0] == '\0')
        return tw_call_field_violation(call, "user_id", "give user_id or email");
    if (!tw_email_normalise(email, normal, why, sizeof why))
        return tw_call_field_violation(call, "email", "%s", why);
    tw_err err = tw_store_unique_lookup(app->store, TW_EMAIL_SPACE, normal, out);
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "no account with email %s", normal);
    return store_error(call, err);
}

/* A day range of a query: 0 takes dflt, else 1..TW_COUNTER_MAX_DAYS. */
static tw_err query_days(tw_call *call, int32_t days, uint32_t dflt, uint32_t *out)
{
    if (days < 0 || days > 400)
        return tw_call_field_violation(call, "days", "must be from 1 to 400 (0: %u)", dflt);
    *out = days == 0 ? dflt : (uint32_t)days;
    return TW_OK;
}

/* ---- backups ------------------------------------------------------------------ */

static tw_err do_create_backup(tw_call *call, tw_app *app, const ProtobufCMessage *request,
                               ProtobufCMessage *response)
{
    const Tw__V1__CreateBackupRequest *in = (const void *)request;
    Tw__V1__CreateBackupResponse *out = (void *)response;
    tw_backup_status st;
    tw_err err = tw_ops_backup_create(app->store, app->blobs, in->directory, &st);
    if (app->ops != NULL)
        tw_ops_backup_record(app->ops, &st);
    if (err) {
        tw_call_log_detail(call, "%s", st.error);
        return tw_call_error(call, err, "backup to %s failed: %s", in->directory,
                             tw_err_message(err));
    }
    if (!st.ok)
        return tw_call_error(call, TW_ERR_DB_CORRUPT, "%s", st.error);
    out->backup_id = st.id;
    out->size_bytes = st.db_bytes;
    out->audio_files = st.audio_files;
    out->audio_bytes_copied = st.audio_bytes_copied;
    out->file_count = st.db_files;
    out->create_time = tw_timestamp_new(tw_call_arena(call), st.time_ms);
    return out->create_time ? TW_OK : TW_ERR_NO_MEMORY;
}

static tw_err create_backup(tw_call *call, const ProtobufCMessage *request,
                            ProtobufCMessage *response)
{
    const Tw__V1__CreateBackupRequest *in = (const void *)request;
    tw_err err = absolute_dir(call, "directory", in->directory);
    return err ? err : on_slow_pool(call, do_create_backup, request, response);
}

/* A failed verify or restore: NOT_FOUND for no backup, the reason else. */
static tw_err backup_error(tw_call *call, tw_err err, const char *dir)
{
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "no backup in %s", dir);
    if (err == TW_ERR_DB_CORRUPT || err == TW_ERR_FAILED_PRECONDITION)
        return tw_call_error(call, err, "%s", tw_store_last_error());
    return store_error(call, err);
}

static tw_err do_verify_backup(tw_call *call, tw_app *app, const ProtobufCMessage *request,
                               ProtobufCMessage *response)
{
    const Tw__V1__VerifyBackupRequest *in = (const void *)request;
    Tw__V1__VerifyBackupResponse *out = (void *)response;
    tw_backup_info info;
    tw_store_report report;
    tw_audio_report audio;
    tw_err err = tw_ops_backup_verify(in->directory, &info, &report, &audio);
    if (err)
        return backup_error(call, err, in->directory);
    out->backup_id = info.id;
    for (int cf = 0; cf < TW_CF__COUNT; cf++)
        out->keys += report.keys[cf];
    out->bytes = report.bytes;
    out->voice_notes = audio.notes;
    out->audio_bytes = audio.bytes;
    return TW_OK;
}

static tw_err verify_backup(tw_call *call, const ProtobufCMessage *request,
                            ProtobufCMessage *response)
{
    const Tw__V1__VerifyBackupRequest *in = (const void *)request;
    tw_err err = absolute_dir(call, "directory", in->directory);
    return err ? err : on_slow_pool(call, do_verify_backup, request, response);
}

static tw_err do_restore_backup(tw_call *call, tw_app *app, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    const Tw__V1__RestoreBackupRequest *in = (const void *)request;
    Tw__V1__RestoreBackupResponse *out = (void *)response;
    char serving[PATH_MAX], target[PATH_MAX];
    if (realpath(app->cfg->data_dir, serving) != NULL &&
        realpath(in->target_data_dir, target) != NULL && strcmp(serving, target) == 0)
        return tw_call_error(call, TW_ERR_FAILED_PRECONDITION,
                             "data_dir is the serving store's: restore into a new directory");
    tw_blob_store *blobs = NULL;
    tw_audio_report audio;
    tw_err err = tw_blob_fs_open(in->target_data_dir, &blobs);
    if (err == TW_OK)
        err = tw_ops_backup_restore(in->directory, in->target_data_dir, blobs, &audio);
    tw_blob_close(blobs);
    if (err)
        return backup_error(call, err, in->directory);
    out->voice_notes = audio.notes;
    out->audio_bytes = audio.bytes;
    tw_log(TW_LOG_WARN, "backup restored",
           json_pack("{s:s, s:s, s:s}", "directory", in->directory, "target_data_dir",
                     in->target_data_dir, "request_id", tw_call_request_id(call)));
    return TW_OK;
}

static tw_err restore_backup(tw_call *call, const ProtobufCMessage *request,
                             ProtobufCMessage *response)
{
    const Tw__V1__RestoreBackupRequest *in = (const void *)request;
    tw_err err = absolute_dir(call, "directory", in->directory);
    if (!err)
        err = absolute_dir(call, "target_data_dir", in->target_data_dir);
    return err ? err : on_slow_pool(call, do_restore_backup, request, response);
}

/* ---- account administration --------------------------------------------- */

struct set_disabled {
    tw_id user;
    bool disabled;
    tw_arena *arena;
    int64_t now_ms;                  /* the call's */
    Tw__Store__V1__Account *account; /* out */
};

/* The account, its change-log entry and the copy in each session change
 * together: the gate reads only the session. */
static tw_err set_disabled_txn(tw_txn *t, void *ctx)
{
    struct set_disabled *d = ctx;
    tw_err err = tw_txn_account_load(t, &d->user, d->arena, &d->account);
    if (err || d->account->disabled == d->disabled)
        return err;
    d->account->disabled = d->disabled;
    d->account->update_unix_ms = d->now_ms;
    err = tw_txn_account_put(t, d->account);
    return err ? err : tw_txn_sessions_sync(t, &d->user, d->account->role, d->disabled);
}

static tw_err set_disabled(tw_call *call, const char *user_id, const char *email, bool disabled,
                           Tw__V1__User **out)
{
    struct set_disabled d = {
        .disabled = disabled, .arena = tw_call_arena(call), .now_ms = tw_call_now_ms(call)};
    tw_err err = named_user(call, user_id, email, &d.user);
    if (err)
        return err;
    char id[TW_ID_TEXT_SIZE];
    tw_id_format(&d.user, id);
    const tw_id *caller = tw_call_caller(call);
    if (disabled && caller != NULL && tw_id_equal(caller, &d.user))
        return tw_call_error(call, TW_ERR_FAILED_PRECONDITION,
                             "an admin cannot disable their own account");
    tw_app *app = tw_call_service_ctx(call);
    err = tw_txn_run(app->store, set_disabled_txn, &d);
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "no user %s", id);
    if (err)
        return store_error(call, err);
    tw_log(TW_LOG_WARN, disabled ? "account disabled" : "account enabled",
           json_pack("{s:s, s:s}", "user_id", id, "request_id", tw_call_request_id(call)));
    *out = tw_account_to_user(d.account, d.arena);
    return *out ? TW_OK : TW_ERR_NO_MEMORY;
}

static tw_err disable_user(tw_call *call, const ProtobufCMessage *request,
                           ProtobufCMessage *response)
{
    const Tw__V1__DisableUserRequest *in = (const void *)request;
    return set_disabled(call, in->user_id, in->email, true,
                        &((Tw__V1__DisableUserResponse *)response)->user);
}

static tw_err enable_user(tw_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage *response)
{
    const Tw__V1__EnableUserRequest *in = (const void *)request;
    return set_disabled(call, in->user_id, in->email, false,
                        &((Tw__V1__EnableUserResponse *)response)->user);
}

/* ---- CreateUser ------------------------------------------------------------- */

struct create_user {
    tw_call *call;
    tw_app *app;
    const Tw__V1__CreateUserRequest *request;
    Tw__V1__CreateUserResponse *response;
    char email[TW_EMAIL_MAX + 1];
};

static tw_err create_txn(tw_txn *t, void *ctx)
{
    return tw_txn_account_create(t, ctx);
}

static void run_create_user(void *arg)
{
    struct create_user *job = arg;
    tw_call *call = job->call;
    tw_arena *arena = tw_call_arena(call);
    const Tw__V1__CreateUserRequest *in = job->request;
    char *hash = NULL;
    tw_err err = tw_password_hash(in->password, job->app->auth->cost, &hash);
    Tw__Store__V1__Account *account = NULL;
    if (!err) {
        const char *name = in->display_name;
        if (name[0] == '\0') /* the email's part before the '@' */
            name = tw_arena_strndup(arena, job->email, strcspn(job->email, "@"));
        account =
            tw_account_new(arena, job->email, hash, name, "UTC", "en",
                           in->role == TW__V1__ROLE__ROLE_ADMIN ? TW_ROLE_ADMIN : TW_ROLE_USER,
                           tw_call_now_ms(call));
        err = account ? tw_txn_run(job->app->store, create_txn, account) : TW_ERR_NO_MEMORY;
    }
    if (err == TW_ERR_ALREADY_EXISTS)
        err = tw_call_error(call, err, "an account with this email already exists");
    else if (err && err != TW_ERR_NO_MEMORY)
        tw_call_log_detail(call, "%s", tw_store_last_error());
    if (!err && (job->response->user = tw_account_to_user(account, arena)) == NULL)
        err = TW_ERR_NO_MEMORY;
    free(hash);
    free(job);
    tw_call_finish(call, err);
}

static tw_err create_user(tw_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage *response)
{
    const Tw__V1__CreateUserRequest *in = (const void *)request;
    tw_app *app = tw_call_service_ctx(call);
    char email[TW_EMAIL_MAX + 1], why[160];
    if (!tw_email_normalise(in->email, email, why, sizeof why))
        return tw_call_field_violation(call, "email", "%s", why);
    if (!tw_password_acceptable(in->password, why, sizeof why))
        return tw_call_field_violation(call, "password", "%s", why);
    if (!tw_display_name_valid(in->display_name, true, why, sizeof why))
        return tw_call_field_violation(call, "display_name", "%s", why);
    if (in->role != TW__V1__ROLE__ROLE_USER && in->role != TW__V1__ROLE__ROLE_ADMIN)
        return tw_call_field_violation(call, "role", "must be ROLE_USER or ROLE_ADMIN");
    struct create_user *job = calloc(1, sizeof *job);
    if (job == NULL)
        return TW_ERR_NO_MEMORY;
    job->call = call;
    job->app = app;
    job->request = in;
    job->response = (void *)response;
    memcpy(job->email, email, sizeof email);
    tw_err err = tw_pool_submit(app->auth->hash_pool, run_create_user, job);
    if (err)
        free(job);
    return err ? err : TW_DEFERRED;
}

/* ---- maintenance and keys ------------------------------------------------------ */

static tw_err set_maintenance_mode(tw_call *call, const ProtobufCMessage *request,
                                   ProtobufCMessage *response)
{
    const Tw__V1__SetMaintenanceModeRequest *in = (const void *)request;
    Tw__V1__SetMaintenanceModeResponse *out = (void *)response;
    tw_app *app = tw_call_service_ctx(call);
    if (strlen(in->message) > TW_MAINTENANCE_MESSAGE_MAX)
        return tw_call_field_violation(call, "message", "must be at most %d bytes",
                                       TW_MAINTENANCE_MESSAGE_MAX);
    tw_err err = tw_auth_set_maintenance(app->auth, in->enabled, in->message);
    if (err) {
        tw_call_log_detail(call, "%s", tw_store_last_error());
        return err;
    }
    tw_log(TW_LOG_WARN, in->enabled ? "maintenance mode on" : "maintenance mode off",
           json_pack("{s:s, s:s}", "message", in->message, "request_id", tw_call_request_id(call)));
    out->enabled = in->enabled;
    out->message = in->message;
    return TW_OK;
}

static tw_err rotate_signing_key(tw_call *call, const ProtobufCMessage *request,
                                 ProtobufCMessage *response)
{
    Tw__V1__RotateSigningKeyResponse *out = (void *)response;
    tw_app *app = tw_call_service_ctx(call);
    int64_t now = tw_call_now_ms(call);
    tw_key_rotation made;
    tw_err err = tw_keyring_rotate(app->auth->keys, now, &made);
    if (err == TW_ERR_RATE_LIMITED) {
        char why[160];
        tw_key_rotation_refusal(&made, why, sizeof why);
        tw_call_retry_after(call, made.retry_after_ms);
        return tw_call_error(call, err, "%s", why);
    }
    if (err) {
        tw_call_log_detail(call, "%s", tw_store_last_error());
        return err;
    }
    out->key_id = tw_arena_strdup(tw_call_arena(call), made.kid);
    if (out->key_id == NULL)
        return TW_ERR_NO_MEMORY;
    tw_log(TW_LOG_INFO, "signing key rotated",
           json_pack("{s:s, s:s}", "key_id", made.kid, "request_id", tw_call_request_id(call)));
    out->previous_key_retire_time =
        tw_timestamp_new(tw_call_arena(call), now + TW_KEY_RETIRE_AFTER_MS);
    return TW_OK;
}

/* ---- store procedures ----------------------------------------------------------- */

static tw_err do_check_integrity(tw_call *call, tw_app *app, const ProtobufCMessage *request,
                                 ProtobufCMessage *response)
{
    Tw__V1__CheckIntegrityResponse *out = (void *)response;
    tw_store_report r;
    tw_err err = tw_store_verify(app->store, &r);
    for (int cf = 0; cf < TW_CF__COUNT; cf++)
        out->keys += r.keys[cf];
    out->bytes = r.bytes;
    out->bad_keys = r.bad_keys;
    out->bad_values = r.bad_values;
    if (err == TW_ERR_DB_CORRUPT)
        return tw_call_error(call, err, "%s", tw_store_last_error());
    return store_error(call, err);
}

static tw_err check_integrity(tw_call *call, const ProtobufCMessage *request,
                              ProtobufCMessage *response)
{
    return on_slow_pool(call, do_check_integrity, request, response);
}

static tw_err do_optimize_store(tw_call *call, tw_app *app, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    Tw__V1__OptimizeStoreResponse *out = (void *)response;
    int64_t start = tw_mono_ns();
    tw_err err = tw_store_compact(app->store, &out->size_bytes_before, &out->size_bytes_after);
    if (err)
        return store_error(call, err);
    out->duration = tw_duration_new(tw_call_arena(call), (tw_mono_ns() - start) / 1000000);
    tw_log(TW_LOG_INFO, "store optimized",
           json_pack("{s:I, s:I, s:s}", "before", (json_int_t)out->size_bytes_before, "after",
                     (json_int_t)out->size_bytes_after, "request_id", tw_call_request_id(call)));
    return out->duration ? TW_OK : TW_ERR_NO_MEMORY;
}

static tw_err optimize_store(tw_call *call, const ProtobufCMessage *request,
                             ProtobufCMessage *response)
{
    return on_slow_pool(call, do_optimize_store, request, response);
}

/* ---- migrations --------------------------------------------------------------------- */

/* Every migration and its state, as the API lists them; *last gets the
 * number of the last applied (0: none). */
static tw_err migrations(tw_call *call, tw_app *app, Tw__V1__Migration ***out, size_t *n,
                         uint32_t *last)
{
    tw_arena *arena = tw_call_arena(call);
    tw_migration_status *rows;
    size_t count;
    tw_err err = tw_store_migrate_status(app->store, &tw_store_migrations, arena, &rows, &count);
    if (err)
        return store_error(call, err);
    *out = tw_arena_alloc(arena, (count + 1) * sizeof **out);
    if (*out == NULL)
        return TW_ERR_NO_MEMORY;
    *n = 0;
    *last = 0;
    for (size_t i = 0; i < count; i++) {
        Tw__V1__Migration *m = tw_arena_alloc(arena, sizeof *m);
        if (m == NULL)
            return TW_ERR_NO_MEMORY;
        tw__v1__migration__init(m);
        m->number = rows[i].number;
        m->name = (char *)rows[i].name;
        m->applied = rows[i].applied;
        if (rows[i].applied) {
            m->apply_time = tw_timestamp_new(arena, rows[i].apply_ms);
            *last = rows[i].number;
        }
        (*out)[(*n)++] = m;
    }
    return TW_OK;
}

static tw_err get_migration_status(tw_call *call, const ProtobufCMessage *request,
                                   ProtobufCMessage *response)
{
    Tw__V1__GetMigrationStatusResponse *out = (void *)response;
    uint32_t last;
    return migrations(call, tw_call_service_ctx(call), &out->migrations, &out->n_migrations, &last);
}

static tw_err do_migrate_up(tw_call *call, tw_app *app, const ProtobufCMessage *request,
                            ProtobufCMessage *response)
{
    Tw__V1__MigrateUpResponse *out = (void *)response;
    size_t applied = 0;
    tw_err err = tw_store_migrate_up(app->store, &tw_store_migrations, &applied);
    out->applied = (uint32_t)applied;
    if (err == TW_ERR_FAILED_PRECONDITION)
        return tw_call_error(call, err, "%s", tw_store_last_error());
    if (err)
        return store_error(call, err);
    uint32_t last;
    return migrations(call, app, &out->migrations, &out->n_migrations, &last);
}

static tw_err migrate_up(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    return on_slow_pool(call, do_migrate_up, request, response);
}

static tw_err do_migrate_down(tw_call *call, tw_app *app, const ProtobufCMessage *request,
                              ProtobufCMessage *response)
{
    const Tw__V1__MigrateDownRequest *in = (const void *)request;
    Tw__V1__MigrateDownResponse *out = (void *)response;
    out->reverted = tw_arena_alloc(tw_call_arena(call),
                                   (tw_store_migrations.count + 1) * sizeof *out->reverted);
    if (out->reverted == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err = TW_OK;
    for (size_t i = 0; i < tw_store_migrations.count && err == TW_OK; i++) {
        Tw__V1__Migration **list;
        size_t n;
        uint32_t last, number = 0;
        if ((err = migrations(call, app, &list, &n, &last)) || last <= in->to)
            break;
        if ((err = tw_store_migrate_down(app->store, &tw_store_migrations, &number)))
            break;
        out->reverted[out->n_reverted++] = number;
        tw_log(
            TW_LOG_WARN, "migration reverted",
            json_pack("{s:i, s:s}", "number", (int)number, "request_id", tw_call_request_id(call)));
    }
    if (err)
        return store_error(call, err);
    uint32_t last;
    return migrations(call, app, &out->migrations, &out->n_migrations, &last);
}

static tw_err migrate_down(tw_call *call, const ProtobufCMessage *request,
                           ProtobufCMessage *response)
{
    tw_app *app = tw_call_service_ctx(call);
    if (!tw_auth_maintenance(app->auth, NULL, 0))
        return tw_call_error(call, TW_ERR_FAILED_PRECONDITION,
                             "turn maintenance mode on first: users must not write while the "
                             "store goes back to an older layout");
    return on_slow_pool(call, do_migrate_down, request, response);
}

/* ---- configuration and version ---------------------------------------------------- */

struct settings {
    tw_arena *arena;
    Tw__V1__GetConfigResponse *out;
    bool failed;
};

static void add_setting(void *ctx, const char *name, const char *value)
{
    struct settings *s = ctx;
    Tw__V1__Setting *row = tw_arena_alloc(s->arena, sizeof *row);
    if (row == NULL) {
        s->failed = true;
        return;
    }
    tw__v1__setting__init(row);
    row->name = tw_arena_strdup(s->arena, name);
    row->value = tw_arena_strdup(s->arena, value);
    s->failed |= row->name == NULL || row->value == NULL;
    s->out->settings[s->out->n_settings++] = row;
}

static void count_setting(void *ctx, const char *name, const char *value)
{
    (void)name, (void)value;
    (*(size_t *)ctx)++;
}

static tw_err get_config(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    tw_app *app = tw_call_service_ctx(call);
    Tw__V1__GetConfigResponse *out = (void *)response;
    size_t n = 0;
    tw_config_each(app->cfg, count_setting, &n);
    struct settings s = {tw_call_arena(call), out, false};
    out->settings = tw_arena_alloc(s.arena, (n + 1) * sizeof *out->settings);
    if (out->settings == NULL)
        return TW_ERR_NO_MEMORY;
    tw_config_each(app->cfg, add_setting, &s);
    return s.failed ? TW_ERR_NO_MEMORY : TW_OK;
}

static tw_err get_version(tw_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage *response)
{
    tw_app *app = tw_call_service_ctx(call);
    Tw__V1__GetVersionResponse *out = (void *)response;
    out->version = TW_VERSION;
    out->grpc_core_version = (char *)tw_engine_grpc_version();
    out->known_migration = tw_store_migrations.count
                               ? tw_store_migrations.rows[tw_store_migrations.count - 1].number
                               : 0;
    Tw__V1__Migration **list;
    size_t n;
    tw_err err = migrations(call, app, &list, &n, &out->store_migration);
    if (err)
        return err;
    if (app->ops != NULL && (out->start_time = tw_timestamp_new(tw_call_arena(call),
                                                                tw_ops_start_ms(app->ops))) == NULL)
        return TW_ERR_NO_MEMORY;
    return TW_OK;
}

/* ---- users ------------------------------------------------------------------------- */

static tw_err lookup_user(tw_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage *response)
{
    const Tw__V1__LookupUserRequest *in = (const void *)request;
    Tw__V1__LookupUserResponse *out = (void *)response;
    tw_app *app = tw_call_service_ctx(call);
    tw_id user;
    tw_err err = named_user(call, in->user_id, in->email, &user);
    Tw__Store__V1__Account *account;
    if (!err && (err = tw_account_load(app->store, &user, tw_call_arena(call), &account))) {
        char id[TW_ID_TEXT_SIZE];
        tw_id_format(&user, id);
        return err == TW_ERR_NOT_FOUND ? tw_call_error(call, err, "no user %s", id)
                                       : store_error(call, err);
    }
    if (err)
        return err;
    out->user = tw_account_to_user(account, tw_call_arena(call));
    return out->user ? TW_OK : TW_ERR_NO_MEMORY;
}

/* The flag a ListUsers filter lists by; NULL for every account. */
static const char *filter_flag(Tw__V1__UserFilter filter)
{
    switch (filter) {
    case TW__V1__USER_FILTER__USER_FILTER_DISABLED:
        return TW_ACCOUNT_FLAG_DISABLED;
    case TW__V1__USER_FILTER__USER_FILTER_ADMIN:
        return TW_ACCOUNT_FLAG_ADMIN;
    default:
        return NULL;
    }
}

/* The user an entry of the scan is about: a USER key, or an
 * ACCOUNT_BY_FLAG key. */
static bool scanned_user(tw_store_iter *it, bool by_flag, tw_arena *arena, tw_id *user)
{
    tw_key_reader r;
    tw_store_iter_read_key(it, &r);
    if (by_flag) {
        char *flag;
        tw_key_read_str(&r, arena, &flag, NULL);
    }
    tw_key_read_id(&r, user);
    return r.err == TW_OK;
}

/* A page of ListUsers: the accounts of the scanned keys, into out. */
struct user_page {
    tw_store *store;
    bool by_flag;
    tw_arena *arena;
    Tw__V1__ListUsersResponse *out;
};

static tw_err user_item(void *ctx, tw_store_iter *it, bool *taken)
{
    struct user_page *p = ctx;
    tw_id user;
    Tw__Store__V1__Account *account;
    if (!scanned_user(it, p->by_flag, p->arena, &user))
        return TW_ERR_DB_CORRUPT;
    /* Accounts being deleted are left out (a flag's entry of a deleted
     * account, too). */
    tw_err err = tw_account_load(p->store, &user, p->arena, &account);
    if (err == TW_ERR_NOT_FOUND)
        return TW_OK;
    if (err)
        return err;
    Tw__V1__User *u = tw_account_to_user(account, p->arena);
    if (u == NULL)
        return TW_ERR_NO_MEMORY;
    p->out->users[p->out->n_users++] = u;
    *taken = true;
    return TW_OK;
}

static tw_err list_users(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__ListUsersRequest *in = (const void *)request;
    Tw__V1__ListUsersResponse *out = (void *)response;
    tw_app *app = tw_call_service_ctx(call);
    tw_arena *arena = tw_call_arena(call);
    if (in->filter != TW__V1__USER_FILTER__USER_FILTER_UNSPECIFIED &&
        filter_flag(in->filter) == NULL)
        tw_call_field_violation(call, "filter", "is not a UserFilter");
    tw_kit_page page;
    tw_err err = tw_kit_page_open(call, app->store, &page);
    if (err == TW_OK && tw_violations_any(tw_call_violations(call)))
        err = TW_ERR_VALIDATION;
    if (err)
        return err;
    const char *flag = filter_flag(in->filter);
    tw_key prefix;
    tw_key_init(&prefix, flag ? TW_KF_ACCOUNT_BY_FLAG : TW_KF_USER);
    if (flag)
        tw_key_str(&prefix, flag);
    if ((out->users = tw_arena_alloc(arena, page.size * sizeof *out->users)) == NULL)
        return tw_kit_fail(call, TW_ERR_NO_MEMORY);
    tw_store_page_query q = {
        .prefix = &prefix,
        .reverse = true,
        .after = page.cursor,
        .after_len = page.cursor_len,
        .limit = page.size,
    };
    struct user_page p = {app->store, flag != NULL, arena, out};
    uint8_t *next;
    size_t next_len;
    if ((err = tw_store_page_scan(app->store, &q, user_item, &p, arena, &next, &next_len)))
        return tw_kit_fail(call, err);
    return tw_kit_page_close(call, &page, next, next_len, &out->next_page_token);
}

static tw_err list_user_sessions(tw_call *call, const ProtobufCMessage *request,
                                 ProtobufCMessage *response)
{
    const Tw__V1__ListUserSessionsRequest *in = (const void *)request;
    Tw__V1__ListUserSessionsResponse *out = (void *)response;
    tw_app *app = tw_call_service_ctx(call);
    tw_id user;
    tw_kit_page page;
    tw_err err = named_user(call, in->user_id, in->email, &user);
    if (!err)
        err = tw_kit_page_open(call, app->store, &page);
    if (err)
        return err;
    uint8_t *next;
    size_t next_len, count;
    if ((err = tw_session_list(app->store, &user, NULL, page.cursor, page.cursor_len, page.size,
                               tw_call_arena(call), &out->sessions, &count, &next, &next_len)))
        return tw_kit_fail(call, err);
    out->n_sessions = count;
    return tw_kit_page_close(call, &page, next, next_len, &out->next_page_token);
}

static tw_err export_user_data(tw_call *call, const ProtobufCMessage *request,
                               ProtobufCMessage *response)
{
    const Tw__V1__ExportUserDataRequest *in = (const void *)request;
    tw_app *app = tw_call_service_ctx(call);
    tw_id user;
    tw_err err = named_user(call, in->user_id, in->email, &user);
    Tw__Store__V1__Account *account;
    if (!err && (err = tw_account_load(app->store, &user, tw_call_arena(call), &account)))
        return err == TW_ERR_NOT_FOUND ? tw_call_error(call, err, "no such user")
                                       : store_error(call, err);
    if (err)
        return err;
    tw_log(
        TW_LOG_WARN, "user data exported by an admin",
        json_pack("{s:s, s:s}", "user_id", account->email, "request_id", tw_call_request_id(call)));
    return tw_export_stream(call, app, &user, response);
}

/* ---- queries ------------------------------------------------------------------------- */

/* The queries that take a number of days: the request's `days` field is
 * first in each, so one handler serves them all through this table. */
typedef tw_err day_query_fn(tw_store *s, int64_t now_ms, uint32_t days, tw_arena *arena, void *out);

static const struct {
    const ProtobufCMessageDescriptor *request;
    day_query_fn *run;
    uint32_t default_days;
} day_queries[] = {
    {&tw__v1__get_user_stats_request__descriptor, (day_query_fn *)tw_ops_user_stats, 7},
    {&tw__v1__get_task_completion_rate_request__descriptor, (day_query_fn *)tw_ops_task_completion,
     7},
    {&tw__v1__get_health_log_activity_request__descriptor, (day_query_fn *)tw_ops_health_activity,
     1},
    {&tw__v1__get_focus_completion_request__descriptor, (day_query_fn *)tw_ops_focus_completion,
     30},
    {&tw__v1__get_distraction_patterns_request__descriptor, (day_query_fn *)tw_ops_distractions, 7},
};

static tw_err day_query(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    tw_app *app = tw_call_service_ctx(call);
    for (size_t i = 0; i < sizeof day_queries / sizeof day_queries[0]; i++) {
        if (request->descriptor != day_queries[i].request)
            continue;
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(request->descriptor, "days");
        uint32_t days = 0;
        tw_err err = query_days(call, *(const int32_t *)((const char *)request + f->offset),
                                day_queries[i].default_days, &days);
        if (!err)
            err = day_queries[i].run(app->store, tw_call_now_ms(call), days, tw_call_arena(call),
                                     response);
        return store_error(call, err);
    }
    return TW_ERR_INTERNAL;
}

/* ---- slowest methods ----------------------------------------------------------- */

struct method_rank {
    tw_rpc_metrics *metrics;
    size_t index;
    tw_arena *arena;
    Tw__V1__MethodLatency **rows;
    size_t count;
};

static void rank_method(void *ctx, const char *path, const tw_method *m)
{
    (void)m;
    struct method_rank *r = ctx;
    tw_rpc_method_stats s;
    tw_rpc_metrics_read(r->metrics, r->index++, &s);
    uint64_t calls = 0;
    for (int c = 0; c < TW_RPC_CODES; c++)
        calls += s.ended[c];
    if (calls == 0)
        return;
    Tw__V1__MethodLatency *row = tw_arena_alloc(r->arena, sizeof *row);
    if (row == NULL)
        return;
    tw__v1__method_latency__init(row);
    row->method = tw_arena_strdup(r->arena, path);
    row->calls = calls;
    row->errors = calls - s.ended[0];
    row->p50_ms = tw_rpc_latency_quantile_s(&s, 0.5) * 1e3;
    row->p99_ms = tw_rpc_latency_quantile_s(&s, 0.99) * 1e3;
    row->mean_ms = (double)s.latency_sum_ns / 1e6 / (double)calls;
    r->rows[r->count++] = row;
}

static int slowest_first(const void *a, const void *b)
{
    const Tw__V1__MethodLatency *x = *(Tw__V1__MethodLatency *const *)a,
                                *y = *(Tw__V1__MethodLatency *const *)b;
    if (x->p99_ms != y->p99_ms)
        return x->p99_ms < y->p99_ms ? 1 : -1;
    return (x->mean_ms < y->mean_ms) - (x->mean_ms > y->mean_ms);
}

/* The limit methods with the highest 99th percentile latency since start-up
 * (methods never called are left out). */
static tw_err slowest_methods(tw_engine *engine, uint32_t limit, tw_arena *arena,
                              Tw__V1__GetSlowestMethodsResponse *out)
{
    tw_rpc_metrics *metrics = tw_engine_metrics(engine);
    size_t slots = tw_rpc_metrics_slots(metrics);
    struct method_rank r = {metrics, 0, arena, tw_arena_alloc(arena, slots * sizeof *r.rows), 0};
    if (r.rows == NULL)
        return TW_ERR_NO_MEMORY;
    tw_engine_each_method(engine, rank_method, &r);
    qsort(r.rows, r.count, sizeof *r.rows, slowest_first);
    out->methods = r.rows;
    out->n_methods = r.count < limit ? r.count : limit;
    return TW_OK;
}

static tw_err get_slowest_methods(tw_call *call, const ProtobufCMessage *request,
                                  ProtobufCMessage *response)
{
    const Tw__V1__GetSlowestMethodsRequest *in = (const void *)request;
    tw_app *app = tw_call_service_ctx(call);
    if (in->limit < 0 || in->limit > 100)
        return tw_call_field_violation(call, "limit", "must be from 1 to 100 (0: 10)");
    if (app->ops == NULL)
        return tw_call_error(call, TW_ERR_UNIMPLEMENTED, "no call metrics in this process");
    return slowest_methods(tw_ops_engine(app->ops), in->limit ? (uint32_t)in->limit : 10,
                           tw_call_arena(call), (void *)response);
}

static const tw_method admin_methods[] = {
    {"CreateBackup", TW_UNARY, TW_ADMIN, .handle = create_backup},
    {"VerifyBackup", TW_UNARY, TW_ADMIN, .handle = verify_backup},
    {"RestoreBackup", TW_UNARY, TW_ADMIN, .handle = restore_backup},
    {"CheckIntegrity", TW_UNARY, TW_ADMIN, .handle = check_integrity},
    {"OptimizeStore", TW_UNARY, TW_ADMIN, .handle = optimize_store},
    {"GetMigrationStatus", TW_UNARY, TW_ADMIN, .handle = get_migration_status},
    {"MigrateUp", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = migrate_up},
    {"MigrateDown", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = migrate_down},
    {"GetConfig", TW_UNARY, TW_ADMIN, .handle = get_config},
    {"GetVersion", TW_UNARY, TW_ADMIN, .handle = get_version},
    {"LookupUser", TW_UNARY, TW_ADMIN, .handle = lookup_user},
    {"ListUsers", TW_UNARY, TW_ADMIN, .handle = list_users},
    {"ListUserSessions", TW_UNARY, TW_ADMIN, .handle = list_user_sessions},
    {"GetUserStats", TW_UNARY, TW_ADMIN, .handle = day_query},
    {"GetTaskCompletionRate", TW_UNARY, TW_ADMIN, .handle = day_query},
    {"GetHealthLogActivity", TW_UNARY, TW_ADMIN, .handle = day_query},
    {"GetFocusCompletion", TW_UNARY, TW_ADMIN, .handle = day_query},
    {"GetDistractionPatterns", TW_UNARY, TW_ADMIN, .handle = day_query},
    {"GetSlowestMethods", TW_UNARY, TW_ADMIN, .handle = get_slowest_methods},
    {"ExportUserData", TW_SERVER_STREAM, TW_ADMIN, .handle = export_user_data},
    {"DisableUser", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = disable_user},
    {"EnableUser", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = enable_user},
    {"CreateUser", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = create_user},
    {"SetMaintenanceMode", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = set_maintenance_mode},
    {"RotateSigningKey", TW_UNARY, TW_ADMIN | TW_WRITE, .handle = rotate_signing_key},
    {NULL},
};

const tw_service_def tw_admin_service = {
    .rpc = {.descriptor = &tw__v1__admin_service__descriptor, .methods = admin_methods},
};
