/*
 * tw.v1.ExportService: ExportMyData streams everything the caller owns
 * (server/ops/export.h has the format), read on the slow pool and paced by
 * the client (paced_stream.h). AdminService.ExportUserData streams the same
 * for any account through tw_export_stream.
 */
#include "services.h"

#include "ops/export.h"
#include "paced_stream.h"
#include "tw/v1/export_service.pb-c.h"

#include <stdlib.h>

/* Pieces are about this big; a burst queues this many before waiting for
 * the client to read them. */
#define PIECE_BYTES (256 * 1024)
#define BURST       4

struct export_stream {
    tw_export *export;
    ProtobufCMessage *response; /* the method's output message: its `chunk` is set */
    ProtobufCMessage **chunk;   /* that field */
};

static tw_err export_step(tw_call *call, void *ctx, bool *end)
{
    struct export_stream *s = ctx;
    tw_err err = TW_OK;
    for (int i = 0; i < BURST && err == TW_OK && !*end; i++) {
        tw_arena *scratch = tw_arena_new(PIECE_BYTES + 64 * 1024);
        Tw__V1__ExportChunk *chunk = NULL;
        err = scratch ? tw_export_next(s->export, scratch, PIECE_BYTES, &chunk, end)
                      : TW_ERR_NO_MEMORY;
        if (err && err != TW_ERR_NO_MEMORY)
            tw_call_log_detail(call, "%s", tw_store_last_error());
        if (err == TW_OK && chunk != NULL) {
            *s->chunk = &chunk->base;
            err = tw_call_send(call, s->response); /* packed now: scratch may go */
            *s->chunk = NULL;
        }
        tw_arena_free(scratch);
    }
    return err;
}

static void export_done(void *ctx)
{
    struct export_stream *s = ctx;
    tw_export_close(s->export);
}

tw_err tw_export_stream(tw_call *call, tw_app *app, const tw_id *user, ProtobufCMessage *response)
{
    struct export_stream *s = tw_arena_alloc(tw_call_arena(call), sizeof *s);
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(response->descriptor, "chunk");
    if (s == NULL || f == NULL)
        return s == NULL ? TW_ERR_NO_MEMORY : TW_ERR_INTERNAL;
    s->response = response;
    s->chunk = (ProtobufCMessage **)((char *)response + f->offset);
    tw_err err = tw_export_open(app->store, app->blobs, user, &s->export);
    if (err)
        return err;
    err = tw_paced_stream_start(call, app->slow_pool, export_step, export_done, s);
    if (err != TW_DEFERRED)
        tw_export_close(s->export);
    return err;
}

static tw_err export_my_data(tw_call *call, const ProtobufCMessage *request,
                             ProtobufCMessage *response)
{
    (void)request;
    tw_id user;
    tw_err err = tw_call_user(call, &user);
    return err ? err : tw_export_stream(call, tw_call_service_ctx(call), &user, response);
}

static const tw_method export_methods[] = {
    {"ExportMyData", TW_SERVER_STREAM, 0, .handle = export_my_data},
    {NULL},
};

const tw_service_def tw_export_service = {
    .rpc = {.descriptor = &tw__v1__export_service__descriptor, .methods = export_methods},
};
