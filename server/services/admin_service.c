/*
 * tw.v1.AdminService: operator calls. CreateBackup takes an online backup of
 * the serving store with RocksDB's BackupEngine; it is slow disk work, so it
 * runs on the slow pool and finishes the call from there.
 */
#include "services.h"

#include "tw/v1/admin_service.pb-c.h"
#include "tw_backup.h"

#include <stdlib.h>

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
        out->create_time = tw_arena_alloc(tw_call_arena(call), sizeof *out->create_time);
        if (out->create_time != NULL) {
            google__protobuf__timestamp__init(out->create_time);
            out->create_time->seconds = info.timestamp;
        }
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

static const tw_method admin_methods[] = {
    {"CreateBackup", TW_UNARY, TW_ADMIN, .handle = create_backup},
    {NULL},
};

tw_err tw_admin_service_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen)
{
    static tw_service admin_service = {
        .descriptor = &tw__v1__admin_service__descriptor,
        .methods = admin_methods,
    };
    admin_service.ctx = app;
    return tw_engine_add_service(engine, &admin_service, errbuf, errlen);
}
