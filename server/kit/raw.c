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

/* The number of d's field named field. protobuf-c finds it by a binary
 * search of the names with strcmp, which for each task of a page was 1 %
 * of a ListTasks: each thread remembers the last few it looked up, by the
 * addresses of the descriptor and of the name (a string constant). */
#define FIELD_MEMO 4

struct field_memo {
    const ProtobufCMessageDescriptor *d;
    const char *field;
    uint32_t number;
};

static uint32_t field_number(const ProtobufCMessageDescriptor *d, const char *field)
{
    static _Thread_local struct field_memo memo[FIELD_MEMO];
    static _Thread_local unsigned next;
    for (size_t i = 0; i < FIELD_MEMO; i++) {
        if (memo[i].d == d && memo[i].field == field)
            return memo[i].number;
    }
    uint32_t number = protobuf_c_message_descriptor_get_field_by_name(d, field)->id;
    memo[next++ % FIELD_MEMO] = (struct field_memo){d, field, number};
    return number;
}

void tw_kit_raw_add(ProtobufCMessage *response, const char *field, const uint8_t *prefixed,
                    size_t len)
{
    response->unknown_fields[response->n_unknown_fields++] = (ProtobufCMessageUnknownField){
        .tag = field_number(response->descriptor, field),
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
