/*
 * tw.v1.ServerInfoService: who the server is and what time it has, for
 * signed-in apps (clock-skew correction for offline-first sync).
 */
#include "pbtime.h"
#include "services.h"

#include "tw/v1/server_info_service.pb-c.h"
#include "tw_time.h"

static int64_t started_unix_ms;

static tw_err get_server_info(tw_call *call, const ProtobufCMessage *request,
                              ProtobufCMessage *response)
{
    Tw__V1__GetServerInfoResponse *out = (Tw__V1__GetServerInfoResponse *)response;
    tw_arena *arena = tw_call_arena(call);
    out->server_version = TW_VERSION;
    out->api_version = "tw.v1";
    out->server_time = tw_timestamp_new(arena, tw_call_now_ms(call));
    out->start_time = tw_timestamp_new(arena, started_unix_ms);
    out->request_id = (char *)tw_call_request_id(call);
    return out->server_time && out->start_time ? TW_OK : TW_ERR_NO_MEMORY;
}

static const tw_method server_info_methods[] = {
    {"GetServerInfo", TW_UNARY, 0, .handle = get_server_info},
    {NULL},
};

static tw_err server_info_attach(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen)
{
    (void)engine, (void)app, (void)errbuf, (void)errlen;
    started_unix_ms = tw_wall_ms();
    return TW_OK;
}

const tw_service_def tw_server_info_service = {
    .rpc = {.descriptor = &tw__v1__server_info_service__descriptor, .methods = server_info_methods},
    .attach = server_info_attach,
};
