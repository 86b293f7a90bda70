/* Protobuf to JSON in the proto3 mapping (pbjson.h). */
#include "pbjson.h"

#include "tw_base64.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds and nanos of a Timestamp or Duration: fields 1 and 2. */
static void seconds_nanos(const ProtobufCMessage *m, int64_t *seconds, int32_t *nanos)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    *seconds = *(const int64_t *)((const char *)m + d->fields[0].offset);
    *nanos = *(const int32_t *)((const char *)m + d->fields[1].offset);
}

/* Nanos as proto3 JSON prints them: 0, 3, 6 or 9 digits. */
static void fraction(char *out, size_t cap, int32_t nanos)
{
    if (nanos == 0)
        out[0] = '\0';
    else if (nanos % 1000000 == 0)
        snprintf(out, cap, ".%03d", nanos / 1000000);
    else if (nanos % 1000 == 0)
        snprintf(out, cap, ".%06d", nanos / 1000);
    else
        snprintf(out, cap, ".%09d", nanos);
}

static json_t *well_known(const ProtobufCMessage *m)
{
    const char *name = m->descriptor->name;
    int64_t seconds;
    int32_t nanos;
    char frac[16], text[64];
    if (strcmp(name, "google.protobuf.Timestamp") == 0) {
        seconds_nanos(m, &seconds, &nanos);
        time_t t = (time_t)seconds;
        struct tm tm;
        if (gmtime_r(&t, &tm) == NULL)
            return json_null();
        size_t n = strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
        fraction(frac, sizeof frac, nanos);
        snprintf(text + n, sizeof text - n, "%sZ", frac);
        return json_string(text);
    }
    if (strcmp(name, "google.protobuf.Duration") == 0) {
        seconds_nanos(m, &seconds, &nanos);
        bool negative = seconds < 0 || nanos < 0;
        fraction(frac, sizeof frac, nanos < 0 ? -nanos : nanos);
        snprintf(text, sizeof text, "%s%" PRId64 "%ss", negative ? "-" : "",
                 seconds < 0 ? -seconds : seconds, frac);
        return json_string(text);
    }
    return NULL;
}

static json_t *bytes_json(const ProtobufCBinaryData *b)
{
    size_t len = tw_base64_encoded_len(b->len);
    char *text = malloc(len + 4);
    if (text == NULL)
        return NULL;
    tw_base64_encode(TW_BASE64_STD, b->data, b->len, text);
    while (len % 4 != 0) /* proto3 JSON pads */
        text[len++] = '=';
    text[len] = '\0';
    json_t *out = json_string(text);
    free(text);
    return out;
}

static json_t *int64_json(int64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "%" PRId64, v);
    return json_string(text);
}

static json_t *uint64_json(uint64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "%" PRIu64, v);
    return json_string(text);
}

static json_t *double_json(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

/* One value of field f at p. */
static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p, bool defaults)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return int64_json(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return uint64_json(*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return double_json(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return double_json(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        return ev ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        json_t *out = json_string(s ? s : "");
        return out ? out : json_string("\xef\xbf\xbd"); /* not UTF-8: U+FFFD */
    }
    case PROTOBUF_C_TYPE_BYTES:
        return bytes_json(p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        return m ? tw_pbjson(m, NULL, defaults) : json_null();
    }
    }
    return json_null();
}

/* Whether a field without presence holds its default (proto3 leaves those
 * out). */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return *(const uint32_t *)p == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)p == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)p;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s == NULL || s[0] == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    }
    return true;
}

/* Bytes one element of a repeated field of type t takes. */
static size_t element_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

static bool skipped(const char *name, const char *const *skip)
{
    for (; skip != NULL && *skip != NULL; skip++)
        if (strcmp(*skip, name) == 0)
            return true;
    return false;
}

json_t *tw_pbjson(const ProtobufCMessage *message, const char *const *skip, bool defaults)
{
    json_t *wk = well_known(message);
    if (wk != NULL)
        return wk;
    const ProtobufCMessageDescriptor *d = message->descriptor;
    json_t *out = json_object();
    for (unsigned i = 0; out != NULL && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (skipped(f->name, skip))
            continue;
        const char *base = (const char *)message;
        const void *p = base + f->offset;
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0 && !defaults)
                continue;
            v = json_array();
            const char *items = *(char *const *)p;
            for (size_t k = 0; v != NULL && k < n; k++)
                json_array_append_new(v,
                                      value_json(f, items + k * element_size(f->type), defaults));
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
            v = value_json(f, p, defaults);
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
                   f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
            if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset) && !defaults)
                continue;
            v = value_json(f, p, defaults);
        } else {
            if (is_default(f, p) && !defaults)
                continue;
            v = value_json(f, p, defaults);
        }
        if (v == NULL || json_object_set_new(out, f->name, v) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}
