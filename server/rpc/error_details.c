/* Builds google.rpc.Status with its details for error_details.h. */
#include "error_details.h"

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

#include <string.h>

#define TYPE_URL_PREFIX "type.googleapis.com/"

/* Wraps message as an Any, packed into the arena. */
static Google__Protobuf__Any *pack_any(tw_arena *arena, const ProtobufCMessage *message)
{
    Google__Protobuf__Any *any = tw_arena_alloc(arena, sizeof *any);
    size_t size = protobuf_c_message_get_packed_size(message);
    uint8_t *bytes = tw_arena_alloc(arena, size ? size : 1);
    if (any == NULL || bytes == NULL)
        return NULL;
    google__protobuf__any__init(any);
    any->type_url = tw_arena_printf(arena, TYPE_URL_PREFIX "%s", message->descriptor->name);
    any->value.data = bytes;
    any->value.len = protobuf_c_message_pack(message, bytes);
    return any->type_url ? any : NULL;
}

tw_err tw_error_details_pack(tw_arena *arena, const tw_error_report *report, uint8_t **out,
                             size_t *len)
{
    Google__Protobuf__Any *details[3];
    size_t n = 0;

    Google__Rpc__ErrorInfo__MetadataEntry request_id =
        GOOGLE__RPC__ERROR_INFO__METADATA_ENTRY__INIT;
    Google__Rpc__ErrorInfo__MetadataEntry *metadata[] = {&request_id};
    Google__Rpc__ErrorInfo info = GOOGLE__RPC__ERROR_INFO__INIT;
    info.reason = (char *)tw_err_reason(report->err);
    info.domain = TW_ERROR_DOMAIN;
    if (report->request_id != NULL) {
        request_id.key = "request_id";
        request_id.value = (char *)report->request_id;
        info.n_metadata = 1;
        info.metadata = metadata;
    }
    details[n++] = pack_any(arena, &info.base);

    const tw_violations *list = report->violations;
    const char *more = list ? tw_violations_more(list) : NULL;
    size_t nviolations = list ? list->count + (more != NULL) : 0;
    if (nviolations > 0) {
        Google__Rpc__BadRequest bad = GOOGLE__RPC__BAD_REQUEST__INIT;
        bad.field_violations = tw_arena_alloc(arena, nviolations * sizeof *bad.field_violations);
        Google__Rpc__BadRequest__FieldViolation *rows =
            tw_arena_alloc(arena, nviolations * sizeof *rows);
        if (bad.field_violations == NULL || rows == NULL)
            return TW_ERR_NO_MEMORY;
        for (size_t i = 0; i < nviolations; i++) {
            google__rpc__bad_request__field_violation__init(&rows[i]);
            bad.field_violations[i] = &rows[i];
        }
        size_t i = 0;
        for (const tw_violation *v = list->head; v != NULL; v = v->next, i++) {
            rows[i].field = (char *)v->field;
            rows[i].description = (char *)v->description;
        }
        if (more != NULL)
            rows[i].description = (char *)more; /* field "": the request as a whole */
        bad.n_field_violations = nviolations;
        details[n++] = pack_any(arena, &bad.base);
    }

    if (report->retry_after_ms >= 0) {
        Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
        delay.seconds = report->retry_after_ms / 1000;
        delay.nanos = (int32_t)(report->retry_after_ms % 1000) * 1000000;
        Google__Rpc__RetryInfo retry = GOOGLE__RPC__RETRY_INFO__INIT;
        retry.retry_delay = &delay;
        details[n++] = pack_any(arena, &retry.base);
    }

    for (size_t i = 0; i < n; i++)
        if (details[i] == NULL)
            return TW_ERR_NO_MEMORY;

    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    status.code = tw_err_grpc_status(report->err);
    status.message = (char *)report->message;
    status.n_details = n;
    status.details = details;
    size_t size = protobuf_c_message_get_packed_size(&status.base);
    uint8_t *bytes = tw_arena_alloc(arena, size ? size : 1);
    if (bytes == NULL)
        return TW_ERR_NO_MEMORY;
    *len = protobuf_c_message_pack(&status.base, bytes);
    *out = bytes;
    return TW_OK;
}
