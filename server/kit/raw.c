/* Answers made of stored bytes (raw.h). */
#include "raw.h"

#include "tw_wire.h"

#include <string.h>

bool tw_kit_raw_begin(tw_call *call, ProtobufCMessage *response, size_t n)
{
    response->n_unknown_fields = 0;
    response->unknown_fields =
        tw_arena_alloc(tw_call_arena(call), (n ? n : 1) * sizeof *response->unknown_fields);
    return response->unknown_fields != NULL;
}

void tw_kit_raw_add(ProtobufCMessage *response, const char *field, const uint8_t *prefixed,
                    size_t len)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(response->descriptor, field);
    response->unknown_fields[response->n_unknown_fields++] = (ProtobufCMessageUnknownField){
        .tag = f->id,
        .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
        .len = len,
        .data = (uint8_t *)prefixed,
    };
}

bool tw_kit_raw_add_text(tw_call *call, ProtobufCMessage *response, const char *field,
                         const char *text)
{
    size_t len = strlen(text);
    if (len == 0)
        return true;
    uint8_t *bytes = tw_arena_alloc(tw_call_arena(call), TW_WIRE_VARINT_MAX + len);
    if (bytes == NULL)
        return false;
    size_t prefix = tw_wire_put_varint(bytes, len);
    memcpy(bytes + prefix, text, len);
    tw_kit_raw_add(response, field, bytes, prefix + len);
    return true;
}
