/*
 * gRPC server reflection, so that tools (buf curl, grpcurl, Postman) can list
 * and call our services without .proto files. Answers from the descriptor
 * set embedded at build time. One implementation serves both
 * grpc.reflection.v1 and the older v1alpha, whose messages are identical on
 * the wire.
 */
#include "services.h"

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "rpc/schema.h"
#include "tw_array.h"

#include <stdlib.h>

typedef Grpc__Reflection__V1__ServerReflectionRequest reflection_request;
typedef Grpc__Reflection__V1__ServerReflectionResponse reflection_response;

static tw_engine *reflection_engine;

/* Files gathered for one FileDescriptorResponse (they point into the set). */
struct file_list {
    ProtobufCBinaryData *files;
    size_t n, cap;
    bool failed;
};

static void collect_file(void *ctx, const uint8_t *data, size_t len)
{
    struct file_list *list = ctx;
    if (list->n == list->cap) {
        ProtobufCBinaryData *grown =
            tw_array_grow(list->files, list->n, &list->cap, sizeof *grown, 8);
        if (grown == NULL) {
            list->failed = true;
            return;
        }
        list->files = grown;
    }
    list->files[list->n++] = (ProtobufCBinaryData){len, (uint8_t *)data};
}

struct name_list {
    Grpc__Reflection__V1__ServiceResponse *rows;
    Grpc__Reflection__V1__ServiceResponse **ptrs;
    size_t n, cap;
};

static void collect_service(void *ctx, const char *name)
{
    struct name_list *list = ctx;
    if (list->n == list->cap)
        return;
    Grpc__Reflection__V1__ServiceResponse *row = &list->rows[list->n];
    grpc__reflection__v1__service_response__init(row);
    row->name = (char *)name;
    list->ptrs[list->n++] = row;
}

static void count_service(void *ctx, const char *name)
{
    ++*(size_t *)ctx;
}

static tw_err send_error(tw_call *call, reflection_response *out, tw_err err, const char *what)
{
    Grpc__Reflection__V1__ErrorResponse error = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
    error.error_code = tw_err_grpc_status(err);
    error.error_message = (char *)what;
    out->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    out->error_response = &error;
    return tw_call_send(call, &out->base);
}

static tw_err send_files(tw_call *call, reflection_response *out, int file)
{
    const tw_schema *schema = tw_engine_schema(reflection_engine);
    struct file_list list = {0};
    tw_err err = tw_schema_each_file_with_deps(schema, file, collect_file, &list);
    if (!err && list.failed)
        err = TW_ERR_NO_MEMORY;
    if (!err) {
        Grpc__Reflection__V1__FileDescriptorResponse files =
            GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
        files.n_file_descriptor_proto = list.n;
        files.file_descriptor_proto = list.files;
        out->message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        out->file_descriptor_response = &files;
        err = tw_call_send(call, &out->base);
    }
    free(list.files);
    return err;
}

static tw_err send_services(tw_call *call, reflection_response *out)
{
    size_t count = 0;
    tw_engine_each_service(reflection_engine, count_service, &count);
    struct name_list list = {.cap = count};
    list.rows = calloc(count ? count : 1, sizeof *list.rows);
    list.ptrs = calloc(count ? count : 1, sizeof *list.ptrs);
    tw_err err = TW_ERR_NO_MEMORY;
    if (list.rows && list.ptrs) {
        tw_engine_each_service(reflection_engine, collect_service, &list);
        Grpc__Reflection__V1__ListServiceResponse services =
            GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
        services.n_service = list.n;
        services.service = list.ptrs;
        out->message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        out->list_services_response = &services;
        err = tw_call_send(call, &out->base);
    }
    free(list.rows);
    free(list.ptrs);
    return err;
}

static tw_err send_extension_numbers(tw_call *call, reflection_response *out, const char *type)
{
    /* Our protos declare no extensions: a known type has none. */
    if (tw_schema_file_by_symbol(tw_engine_schema(reflection_engine), type) < 0)
        return send_error(call, out, TW_ERR_NOT_FOUND, "unknown type");
    Grpc__Reflection__V1__ExtensionNumberResponse numbers =
        GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
    numbers.base_type_name = (char *)type;
    out->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
    out->all_extension_numbers_response = &numbers;
    return tw_call_send(call, &out->base);
}

/* Answers one request on the stream; a failure to send ends the stream. */
static tw_err reflection_request_received(tw_call *call, const ProtobufCMessage *message,
                                          ProtobufCMessage *response)
{
    const reflection_request *in = (const void *)message;
    const tw_schema *schema = tw_engine_schema(reflection_engine);
    reflection_response out = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    out.valid_host = in->host;
    out.original_request = (reflection_request *)in;

    switch (in->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        return send_services(call, &out);
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME: {
        int file = tw_schema_file_by_name(schema, in->file_by_filename);
        return file < 0 ? send_error(call, &out, TW_ERR_NOT_FOUND, "file not found")
                        : send_files(call, &out, file);
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
        int file = tw_schema_file_by_symbol(schema, in->file_containing_symbol);
        return file < 0 ? send_error(call, &out, TW_ERR_NOT_FOUND, "symbol not found")
                        : send_files(call, &out, file);
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        return send_extension_numbers(call, &out, in->all_extension_numbers_of_type);
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        return send_error(call, &out, TW_ERR_NOT_FOUND, "extension not found");
    default:
        return send_error(call, &out, TW_ERR_UNIMPLEMENTED, "unsupported reflection request");
    }
}

static tw_err reflection_stream_ended(tw_call *call, ProtobufCMessage *response)
{
    return TW_OK;
}

static const tw_method reflection_methods[] = {
    {"ServerReflectionInfo", TW_BIDI_STREAM, TW_INFRA, .on_message = reflection_request_received,
     .on_end = reflection_stream_ended},
    {NULL},
};

static tw_err reflection_attach(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen)
{
    (void)app, (void)errbuf, (void)errlen;
    reflection_engine = engine;
    return TW_OK;
}

const tw_service_def tw_reflection_v1_service = {
    .rpc = {.descriptor = &grpc__reflection__v1__server_reflection__descriptor,
            .methods = reflection_methods},
    .attach = reflection_attach,
};

/* The same implementation under the older name many tools still ask for. */
const tw_service_def tw_reflection_v1alpha_service = {
    .rpc = {.descriptor = &grpc__reflection__v1__server_reflection__descriptor,
            .name = "grpc.reflection.v1alpha.ServerReflection",
            .methods = reflection_methods},
};
