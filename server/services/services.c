/* The list of services twd serves, registered in this order (services.h). */
#include "services.h"

#include "tz.h"

#include <pthread.h>

static const tw_service_def *const services[] = {
    &tw_server_info_service,
    &tw_admin_service,
    &tw_auth_service,
    &tw_task_service,
    &tw_sync_service,
    &tw_health_log_service,
    &tw_focus_service,
    &tw_voice_service,
    &tw_export_service,
    &tw_billing_service,
    &tw_billing_admin_service,
    /* Infrastructure last: health and reflection describe the services above. */
    &tw_health_service,
    &tw_reflection_v1_service,
    &tw_reflection_v1alpha_service,
};
#define NSERVICES (sizeof services / sizeof services[0])

/* The engine keeps the tw_service it serves: one per service, with ctx. */
static tw_service serving[NSERVICES];

tw_err tw_services_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen)
{
    /* Profiles, tasks, health summaries and focus statistics need the
     * system's zone data: refuse to start without it rather than fail
     * their calls. */
    if (!tw_tz_init(errbuf, errlen))
        return TW_ERR_INTERNAL;
    app->forget_user = tw_services_forget_user;
    for (size_t i = 0; i < NSERVICES; i++) {
        tw_err err = tw_service_register(engine, app, services[i], &serving[i], errbuf, errlen);
        if (err)
            return err;
    }
    return TW_OK;
}

tw_err tw_service_register(tw_engine *engine, tw_app *app, const tw_service_def *def,
                           tw_service *served, char *errbuf, size_t errlen)
{
    *served = def->rpc;
    served->ctx = app;
    tw_err err = def->attach ? def->attach(engine, app, errbuf, errlen) : TW_OK;
    return err ? err : tw_engine_add_service(engine, served, errbuf, errlen);
}

tw_err tw_services_forget_user(tw_app *app, const tw_id *user)
{
    for (size_t i = 0; i < NSERVICES; i++) {
        tw_err err = services[i]->forget_user ? services[i]->forget_user(app, user) : TW_OK;
        if (err)
            return err;
    }
    return TW_OK;
}

void tw_services_each(void (*fn)(void *ctx, const tw_service_def *def), void *ctx)
{
    for (size_t i = 0; i < NSERVICES; i++)
        fn(ctx, services[i]);
}

#define MAX_JOB_TYPES 32
static tw_job_type job_types[MAX_JOB_TYPES + 1];
static pthread_once_t job_types_once = PTHREAD_ONCE_INIT;

static void collect_job_types(void)
{
    size_t n = 0;
    for (size_t i = 0; i < NSERVICES; i++)
        for (const tw_job_type *t = services[i]->jobs; t && t->type && n < MAX_JOB_TYPES; t++)
            job_types[n++] = *t;
}

const tw_job_type *tw_services_jobs(void)
{
    pthread_once(&job_types_once, collect_job_types);
    return job_types;
}
