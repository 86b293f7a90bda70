/*
 * tw.v1.AdminService: operator calls. CreateBackup takes an online backup of
 * the serving store with RocksDB's BackupEngine; it is slow disk work, so it
 * runs on the slow pool and finishes the call from there. DisableUser and
 * EnableUser switch an account off and on; CreateUser hashes on the
 * password pool; SetMaintenanceMode and RotateSigningKey change what the
 * gate enforces and verifies with, in the store and in memory.
 */
#include "pbtime.h"
#include "services.h"

#include "auth/account.h"
#include "auth/auth.h"
#include "auth/session.h"
#include "tw_log.h"
#include "tw/v1/admin_service.pb-c.h"
#include "tw_backup.h"
#include "tw_time.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct backup_job {
    tw_call *call;
    tw_app *app;
    const Tw__V1__CreateBackupRequest *request;
    Tw__V1__CreateBackupResponse *response;
};

static void run_backup(void *arg)
{
    struct backup_job *job = arg;
    tw_call *call = job->call;
    tw_backup_info info;
    tw_err err = tw_store_backup_create(job->app->store, job->request->directory, &info);
    if (err) {
        tw_call_log_detail(call, "%s", tw_store_last_error());
        err = tw_call_error(call, err, "backup to %s failed: %s", job->request->directory,
                            tw_err_message(err));
    } else {
        Tw__V1__CreateBackupResponse *out = job->response;
        out->backup_id = info.id;
        out->size_bytes = info.size;
        out->file_count = info.files;
        out->create_time = tw_timestamp_new(tw_call_arena(call), info.timestamp * 1000);
    }
    free(job);
    tw_call_finish(call, err);
}

static tw_err create_backup(tw_call *call, const ProtobufCMessage *request,
                            ProtobufCMessage *response)
{
    const Tw__V1__CreateBackupRequest *in = (const void *)request;
    if (in->directory[0] != '/')
        return tw_call_field_violation(call, "directory",
                                       "must be an absolute path on the server's machine");
    struct backup_job *job = malloc(sizeof *job);
    if (job == NULL)
        return TW_ERR_NO_MEMORY;
    *job = (struct backup_job){call, tw_call_service_ctx(call), in, (void *)response};
    tw_err err = tw_pool_submit(job->app->slow_pool, run_backup, job);
    if (err) {
        free(job);
        return err;
    }
    return TW_DEFERRED;
}

/* ---- account administration --------------------------------------------- */

struct set_disabled {
    tw_id user;
    bool disabled;
    tw_arena *arena;
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
    d->account->update_unix_ms = tw_wall_ms();
    err = tw_txn_account_put(t, d->account);
    return err ? err : tw_txn_sessions_sync(t, &d->user, d->account->role, d->disabled);
}

static tw_err set_disabled(tw_call *call, const char *user_id, bool disabled, Tw__V1__User **out)
{
    struct set_disabled d = {.disabled = disabled, .arena = tw_call_arena(call)};
    if (!tw_id_parse(user_id, &d.user))
        return tw_call_field_violation(call, "user_id", "must be a user id (a UUID)");
    const tw_id *caller = tw_call_caller(call);
    if (disabled && caller != NULL && tw_id_equal(caller, &d.user))
        return tw_call_error(call, TW_ERR_FAILED_PRECONDITION,
                             "an admin cannot disable their own account");
    tw_app *app = tw_call_service_ctx(call);
    tw_err err = tw_txn_run(app->store, set_disabled_txn, &d);
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "no user %s", user_id);
    if (err) {
        tw_call_log_detail(call, "%s", tw_store_last_error());
        return err;
    }
    *out = tw_account_to_user(d.account, d.arena);
    return *out ? TW_OK : TW_ERR_NO_MEMORY;
}

static tw_err disable_user(tw_call *call, const ProtobufCMessage *request,
                           ProtobufCMessage *response)
{
    const Tw__V1__DisableUserRequest *in = (const void *)request;
    return set_disabled(call, in->user_id, true, &((Tw__V1__DisableUserResponse *)response)->user);
}

static tw_err enable_user(tw_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage *response)
{
    const Tw__V1__EnableUserRequest *in = (const void *)request;
    return set_disabled(call, in->user_id, false, &((Tw__V1__EnableUserResponse *)response)->user);
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
        account = tw_account_new(
            arena, job->email, hash, name, "UTC", "en",
            in->role == TW__V1__ROLE__ROLE_ADMIN ? TW_ROLE_ADMIN : TW_ROLE_USER, tw_wall_ms());
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
    int64_t now = tw_wall_ms();
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

static const tw_method admin_methods[] = {
    {"CreateBackup", TW_UNARY, TW_ADMIN, .handle = create_backup},
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
