/*
 * Reading the protobuf wire format by hand, where the engine needs what
 * protobuf-c's decoder does not keep: the files of the descriptor set as
 * protoc wrote them (schema.c) and every field's length as sent
 * (request_rules.c). Internal to server/rpc.
 */
#ifndef TW_RPC_WIRE_H
#define TW_RPC_WIRE_H

#include "rpc_layer.h"

#include <stdbool.h>
#include <stdint.h>

/* Wire types of a field's tag (the low three bits). */
enum { TW_WIRE_VARINT = 0, TW_WIRE_I64 = 1, TW_WIRE_LEN = 2, TW_WIRE_I32 = 5 };

/* Reads a base-128 varint at *p, advancing it; false at the end of the
 * buffer or past 64 bits. */
static inline bool tw_wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/*
 * Reads one field at *p: its number, wire type and value. A LEN field's
 * value is the span [*data, *data + *len); other values are skipped, with
 * a varint's value in *varint. False when the bytes are no field (a group,
 * a number 0, a length past the end).
 */
static inline bool tw_wire_field(const uint8_t **p, const uint8_t *end, uint32_t *number,
                                 int *wire_type, const uint8_t **data, uint64_t *len,
                                 uint64_t *varint)
{
    uint64_t tag;
    if (!tw_wire_varint(p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
        return false;
    *number = (uint32_t)(tag >> 3);
    *wire_type = (int)(tag & 7);
    *data = *p;
    *len = 0;
    switch (*wire_type) {
    case TW_WIRE_VARINT:
        return tw_wire_varint(p, end, varint);
    case TW_WIRE_I64:
    case TW_WIRE_I32:
        *len = *wire_type == TW_WIRE_I64 ? 8 : 4;
        break;
    case TW_WIRE_LEN:
        if (!tw_wire_varint(p, end, len))
            return false;
        *data = *p;
        break;
    default:
        return false;
    }
    if (*len > (uint64_t)(end - *p))
        return false;
    *p += *len;
    return true;
}

#endif
