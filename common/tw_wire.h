/*
 * Reading the protobuf wire format by hand, where protobuf-c's decoder
 * would do too much or keeps too little: the files of the descriptor set
 * as protoc wrote them (rpc/schema.c), every field's length as sent
 * (rpc/request_rules.c), and one field of a stored record served as it is
 * stored, without decoding the rest (tw_wire_find).
 */
#ifndef TW_WIRE_H
#define TW_WIRE_H

#include <stdbool.h>
#include <stddef.h>
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

/* The room a varint may take. */
#define TW_WIRE_VARINT_MAX 10

/* Writes v as a varint at p (TW_WIRE_VARINT_MAX bytes of room); returns
 * the bytes written. */
static inline size_t tw_wire_put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    for (; v >= 0x80; v >>= 7)
        p[n++] = (uint8_t)(v | 0x80);
    p[n++] = (uint8_t)v;
    return n;
}

/*
 * Finds the LEN field `number` (a string, bytes or message field) in the
 * bytes of a message: its first occurrence, as a message of ours holds it
 * once (protobuf-c packs each field once), read without walking the rest.
 * *value is its value; *prefixed is the same value with its length varint
 * before it, which is the form protobuf-c keeps an unknown field in
 * (ProtobufCMessageUnknownField.data), so the field can be packed into
 * another message without being decoded. False when the bytes up to it are
 * no message, or hold no such field, or hold it with another wire type.
 */
static inline bool tw_wire_find(const uint8_t *msg, size_t len, uint32_t number,
                                const uint8_t **prefixed, size_t *prefixed_len,
                                const uint8_t **value, size_t *value_len)
{
    const uint8_t *p = msg, *end = msg + len;
    while (p < end) {
        const uint8_t *start = p, *data;
        uint32_t n;
        int wire_type;
        uint64_t dlen, varint;
        if (!tw_wire_field(&p, end, &n, &wire_type, &data, &dlen, &varint))
            return false;
        if (n != number)
            continue;
        if (wire_type != TW_WIRE_LEN)
            return false;
        while (*start++ & 0x80) /* past the tag */
            ;
        *prefixed = start;
        *prefixed_len = (size_t)(data + dlen - start);
        *value = data;
        *value_len = (size_t)dlen;
        return true;
    }
    return false;
}

#endif
