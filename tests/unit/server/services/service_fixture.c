/* The handler-level test fixture (service_fixture.h). */
#include "service_fixture.h"

#include "auth/auth.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "kit/gate.h"
#include "rpc/engine.h"
#include "rpc_test_client.h"
#include "tw_check.h"
#include "tw_migrate.h"

#include <grpc/grpc_security.h>
#include <stdio.h>
#include <string.h>

#define CALL_TIMEOUT_MS 30000

const char *const sf_user_a[] = {"authorization", "Bearer " SF_USER_A, NULL};
const char *const sf_user_b[] = {"authorization", "Bearer " SF_USER_B, NULL};
const char *const sf_admin[] = {"authorization", "Admin " SF_ADMIN, NULL};

tw_app sf_app;
grpc_channel *sf_channel;

static tw_config cfg;
static tw_engine *engine;
static tw_service served[4];
static ProtobufCMessage *kept[256];
static size_t nkept;

/* A test id ("Bearer <uuid>", "Admin <uuid>") or the real gate. */
static tw_err test_gate(void *ctx, tw_call *call, const tw_method *method)
{
    const char *auth = tw_call_metadata(call, "authorization");
    tw_id id;
    if (auth != NULL && strncmp(auth, "Bearer ", 7) == 0 && tw_id_parse(auth + 7, &id)) {
        tw_call_set_caller(call, &id, &id, "user");
        return (method->flags & TW_ADMIN) ? TW_ERR_AUTH_FORBIDDEN : TW_OK;
    }
    if (auth != NULL && strncmp(auth, "Admin ", 6) == 0 && tw_id_parse(auth + 6, &id)) {
        tw_call_set_caller(call, &id, &id, "admin");
        return TW_OK;
    }
    return tw_gate_admit(ctx, call, method);
}

static int64_t store_clock(void *store)
{
    return tw_store_now_ms(store);
}

void sf_setup(const tw_service_def *def)
{
    const tw_service_def *defs[] = {def, NULL};
    sf_setup_services(defs);
}

void sf_setup_services(const tw_service_def *const *defs)
{
    fx_setup();
    char *argv[] = {"--data-dir", fx.dir, "--password-scrypt-log2-n", "10"};
    char errbuf[256] = "";
    ck_assert_msg(tw_config_load(&cfg, 4, argv, errbuf, sizeof errbuf) == TW_OK, "%s", errbuf);
    size_t applied;
    ck_assert_int_eq(tw_store_migrate_up(fx.store, &tw_store_migrations, &applied), TW_OK);
    sf_app = (tw_app){.cfg = &cfg, .store = fx.store};
    ck_assert_int_eq(tw_auth_open(fx.store, &cfg, &sf_app.auth), TW_OK);
    ck_assert_int_eq(tw_pool_new("slow", 1, 16, &sf_app.slow_pool), TW_OK);

    tw_engine_config ecfg = {
        .listen = "127.0.0.1:0",
        .workers = 2,
        .max_message_bytes = 4 << 20,
        .requests_per_method = 2,
        .max_stream_backlog = 8 << 20,
        .clock_ms = store_clock,
        .clock_ctx = fx.store,
    };
    ck_assert_int_eq(tw_engine_new(&ecfg, &engine), TW_OK);
    for (size_t i = 0; defs[i] != NULL; i++) {
        ck_assert_uint_lt(i, sizeof served / sizeof served[0]);
        ck_assert_msg(tw_service_register(engine, &sf_app, defs[i], &served[i], errbuf,
                                          sizeof errbuf) == TW_OK,
                      "%s", errbuf);
    }
    tw_engine_set_gate(engine, test_gate, &sf_app);
    int port = 0;
    ck_assert_msg(tw_engine_start(engine, &port, errbuf, sizeof errbuf) == TW_OK, "%s", errbuf);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    sf_channel = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
}

void sf_teardown(void)
{
    while (nkept > 0)
        protobuf_c_message_free_unpacked(kept[--nkept], NULL);
    grpc_channel_destroy(sf_channel);
    tw_engine_shutdown(engine, 1000);
    tw_engine_free(engine);
    tw_pool_free(sf_app.slow_pool);
    tw_auth_close(sf_app.auth);
    tw_config_free(&cfg);
    fx_teardown();
}

/* The ErrorInfo reason and the BadRequest fields of a failed call. */
static void read_details(const rpc_result *in, sf_result *out)
{
    Google__Rpc__Status *st =
        in->details ? google__rpc__status__unpack(NULL, in->details_len, in->details) : NULL;
    for (size_t i = 0; st != NULL && i < st->n_details; i++) {
        const Google__Protobuf__Any *any = st->details[i];
        if (strcmp(any->type_url, "type.googleapis.com/google.rpc.ErrorInfo") == 0) {
            Google__Rpc__ErrorInfo *info =
                google__rpc__error_info__unpack(NULL, any->value.len, any->value.data);
            snprintf(out->reason, sizeof out->reason, "%s", info->reason);
            google__rpc__error_info__free_unpacked(info, NULL);
        } else if (strcmp(any->type_url, "type.googleapis.com/google.rpc.BadRequest") == 0) {
            Google__Rpc__BadRequest *bad =
                google__rpc__bad_request__unpack(NULL, any->value.len, any->value.data);
            for (size_t k = 0; k < bad->n_field_violations; k++) {
                size_t used = strlen(out->fields);
                snprintf(out->fields + used, sizeof out->fields - used, "%s%s", used ? "," : "",
                         bad->field_violations[k]->field);
            }
            google__rpc__bad_request__free_unpacked(bad, NULL);
        }
    }
    if (st != NULL)
        google__rpc__status__free_unpacked(st, NULL);
}

sf_result sf_call(const char *path, const ProtobufCMessage *request, const char *const *md,
                  const ProtobufCMessageDescriptor *out_type)
{
    rpc_result r;
    rpc_unary(sf_channel, path, request, NULL, 0, CALL_TIMEOUT_MS, md, &r);
    sf_result out = {.status = r.status};
    snprintf(out.message, sizeof out.message, "%s", r.message ? r.message : "");
    read_details(&r, &out);
    if (r.status == GRPC_STATUS_OK) {
        out.response = protobuf_c_message_unpack(out_type, NULL, r.response_len, r.response);
        ck_assert_msg(out.response != NULL, "%s: the response does not decode", path);
        ck_assert_uint_lt(nkept, sizeof kept / sizeof kept[0]);
        kept[nkept++] = out.response;
    }
    rpc_result_free(&r);
    return out;
}

void *sf_ok(const char *path, const ProtobufCMessage *request, const char *const *md,
            const ProtobufCMessageDescriptor *out_type)
{
    sf_result r = sf_call(path, request, md, out_type);
    ck_assert_msg(r.status == GRPC_STATUS_OK, "%s: status %d %s (%s; fields %s)", path, r.status,
                  r.reason, r.message, r.fields);
    return r.response;
}

void sf_assert_error_at(const char *file, int line, const sf_result *r, grpc_status_code code,
                        const char *reason)
{
    ck_assert_msg(r->status == code && strcmp(r->reason, reason) == 0,
                  "%s:%d: status %d %s (%s), expected %d %s", file, line, r->status, r->reason,
                  r->message, code, reason);
}

const char *sf_uuid(void)
{
    static char ring[8][TW_ID_TEXT_SIZE];
    static unsigned next;
    tw_id id = tw_id_new();
    char *out = ring[next++ % 8];
    tw_id_format(&id, out);
    return out;
}
