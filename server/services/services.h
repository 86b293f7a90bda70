/*
 * Every service twd serves. main() calls tw_services_register() once; each
 * service file exports one register function, listed in services.c.
 */
#ifndef TW_SERVICES_H
#define TW_SERVICES_H

#include "app.h"
#include "rpc/engine.h"

#include <stddef.h>

/* Registers all services. On failure errbuf names the service and why. */
tw_err tw_services_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen);

/* One per service file; app is kept as the service's ctx. */
tw_err tw_admin_service_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen);
tw_err tw_server_info_service_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen);
tw_err tw_health_service_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen);
tw_err tw_reflection_service_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen);
tw_err tw_auth_service_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen);
tw_err tw_task_service_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen);
tw_err tw_sync_service_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen);
tw_err tw_health_log_service_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen);
tw_err tw_focus_service_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen);
tw_err tw_voice_service_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen);
tw_err tw_export_service_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen);

/* Streams user's data export on a server-streaming call whose response
 * message (the handler's, of the method's output type) has one field,
 * `chunk`, an ExportChunk (export_service.c). Returns what the handler
 * returns: TW_DEFERRED, or an error. */
tw_err tw_export_stream(tw_call *call, tw_app *app, const tw_id *user, ProtobufCMessage *response);

/* grpc.health.v1: the store answers its probe (SERVING) or not
 * (NOT_SERVING); watchers hear each change. Any thread. */
void tw_health_service_set_store_ok(bool ok);

#endif
