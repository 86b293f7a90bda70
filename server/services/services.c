/* The list of services twd serves, registered in this order. */
#include "services.h"

#include "tz.h"

static tw_err (*const service_registrars[])(tw_engine *engine, tw_app *app, char *errbuf,
                                            size_t errlen) = {
    tw_server_info_service_register,
    tw_admin_service_register,
    tw_auth_service_register,
    tw_task_service_register,
    tw_sync_service_register,
    tw_health_log_service_register,
    tw_focus_service_register,
    tw_voice_service_register,
    tw_export_service_register,
    /* Infrastructure last: health and reflection describe the services above. */
    tw_health_service_register,
    tw_reflection_service_register,
};

tw_err tw_services_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen)
{
    /* Profiles, tasks, health summaries and focus statistics need the
     * system's zone data: refuse to start without it rather than fail
     * their calls. */
    if (!tw_tz_init(errbuf, errlen))
        return TW_ERR_INTERNAL;
    for (size_t i = 0; i < sizeof service_registrars / sizeof service_registrars[0]; i++) {
        tw_err err = service_registrars[i](engine, app, errbuf, errlen);
        if (err)
            return err;
    }
    return TW_OK;
}
