/* Protobuf to JSON in the proto3 mapping (pbjson.h). */
#include "pbjson.h"

#include "tw_base64.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* ---- JSON to protobuf ------------------------------------------------------- */

/* Where the parse is: the arena things are allocated in, and the error. */
struct parse {
    tw_arena *arena;
    char *errbuf;
    size_t errlen;
    char path[256]; /* of the value being read, "plan.prices[0].currency" */
};

static bool parse_fail(struct parse *p, const char *what)
{
    snprintf(p->errbuf, p->errlen, "%s: %s", p->path[0] ? p->path : "request", what);
    return false;
}

/* The value's text for an error message, shortened. */
static const char *shown(const json_t *v, char *buf, size_t cap)
{
    if (json_is_string(v)) {
        snprintf(buf, cap, "\"%.40s\"", json_string_value(v));
        return buf;
    }
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(buf, cap, "%.40s", text ? text : "?");
    free(text);
    return buf;
}

static bool not_a(struct parse *p, const json_t *v, const char *what)
{
    char buf[64], text[128];
    snprintf(text, sizeof text, "%s is not %s", shown(v, buf, sizeof buf), what);
    return parse_fail(p, text);
}

/* An integer in [min, max] from a JSON number or a string of one (proto3
 * JSON writes 64-bit integers as strings). */
static bool parse_integer(struct parse *p, const json_t *v, long double min, long double max,
                          const char *what, long double *out)
{
    if (json_is_integer(v)) {
        *out = (long double)json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v))) {
        *out = json_real_value(v);
    } else if (json_is_string(v) && json_string_value(v)[0] != '\0') {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        if (s[0] == '-') {
            long long n = strtoll(s, &end, 10);
            *out = (long double)n;
        } else {
            unsigned long long n = strtoull(s, &end, 10);
            *out = (long double)n;
        }
        if (errno || *end != '\0' || !(isdigit((unsigned char)s[0]) || s[0] == '-'))
            return not_a(p, v, what);
    } else {
        return not_a(p, v, what);
    }
    if (*out < min || *out > max)
        return not_a(p, v, what);
    return true;
}

static bool parse_double(struct parse *p, const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    char *end;
    if (s != NULL && strcmp(s, "NaN") == 0)
        *out = NAN;
    else if (s != NULL && (strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0))
        *out = s[0] == '-' ? -INFINITY : INFINITY;
    else if (s != NULL && s[0] != '\0' && (*out = strtod(s, &end), *end == '\0'))
        return true;
    else
        return not_a(p, v, "a number");
    return true;
}

/* An enum value by its name, by the name without its enum's prefix in
 * any case ("month" for BILLING_INTERVAL_MONTH: for people typing it), or
 * by its number. */
static bool parse_enum(struct parse *p, const ProtobufCEnumDescriptor *e, const json_t *v, int *out)
{
    if (json_is_integer(v)) {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(e, (int)json_integer_value(v));
        if (ev != NULL) {
            *out = ev->value;
            return true;
        }
    } else if (json_is_string(v)) {
        const char *text = json_string_value(v);
        size_t tlen = strlen(text);
        for (unsigned i = 0; tlen > 0 && i < e->n_values; i++) {
            const char *name = e->values[i].name;
            size_t nlen = strlen(name);
            bool suffix = tlen < nlen && name[nlen - tlen - 1] == '_' &&
                          strcasecmp(name + nlen - tlen, text) == 0;
            if (strcmp(name, text) == 0 || suffix) {
                *out = e->values[i].value;
                return true;
            }
        }
    }
    char what[128];
    snprintf(what, sizeof what, "a %s", e->name);
    return not_a(p, v, what);
}

/* Nanoseconds from ".123" (up to 9 digits) at *s, moving *s past them. */
static bool parse_nanos(const char **s, int32_t *nanos)
{
    *nanos = 0;
    if (**s != '.')
        return true;
    int digits = 0;
    for ((*s)++; isdigit((unsigned char)**s); (*s)++, digits++) {
        if (digits == 9)
            return false;
        *nanos = *nanos * 10 + (**s - '0');
    }
    for (int d = digits; d < 9; d++)
        *nanos *= 10;
    return digits > 0;
}

/* Timestamp ("2025-01-15T09:30:00.5Z", or with an offset "+01:00") and
 * Duration ("1.5s"); false when m is not one of them (*handled false). */
static bool parse_well_known(struct parse *p, ProtobufCMessage *m, const json_t *v, bool *handled)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    bool timestamp = strcmp(d->name, "google.protobuf.Timestamp") == 0;
    bool duration = strcmp(d->name, "google.protobuf.Duration") == 0;
    bool mask = strcmp(d->name, "google.protobuf.FieldMask") == 0;
    *handled = (timestamp || duration || mask) && json_is_string(v);
    if (!*handled)
        return true;
    const char *s = json_string_value(v);
    int64_t seconds = 0;
    int32_t nanos = 0;
    if (mask) {
        /* "a,b.c": paths, lowerCamelCase in proto3 JSON, snake_case too. */
        size_t n = *s ? 1 : 0;
        for (const char *c = s; *c; c++)
            n += *c == ',';
        char **paths = tw_arena_alloc(p->arena, (n + 1) * sizeof *paths);
        if (paths == NULL)
            return parse_fail(p, "out of memory");
        for (size_t i = 0; i < n; i++) {
            size_t len = strcspn(s, ",");
            char *path = paths[i] = tw_arena_alloc(p->arena, 2 * len + 1);
            if (path == NULL)
                return parse_fail(p, "out of memory");
            for (size_t k = 0; k < len; k++) {
                if (isupper((unsigned char)s[k])) {
                    *path++ = '_';
                    *path++ = (char)tolower((unsigned char)s[k]);
                } else {
                    *path++ = s[k];
                }
            }
            *path = '\0';
            s += len + (s[len] == ',');
        }
        /* FieldMask's field 1, repeated string paths. */
        const ProtobufCFieldDescriptor *f = &d->fields[0];
        *(size_t *)((char *)m + f->quantifier_offset) = n;
        *(char ***)((char *)m + f->offset) = paths;
        return true;
    }
    if (timestamp) {
        struct tm tm = {0};
        int used = 0;
        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 ||
            used != 19)
            return not_a(p, v, "an RFC 3339 time (2025-01-15T09:30:00Z)");
        const char *rest = s + used;
        if (!parse_nanos(&rest, &nanos))
            return not_a(p, v, "an RFC 3339 time (2025-01-15T09:30:00Z)");
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        seconds = (int64_t)timegm(&tm);
        int oh, om;
        if (strcmp(rest, "Z") == 0) {
        } else if ((rest[0] == '+' || rest[0] == '-') && strlen(rest) == 6 &&
                   sscanf(rest + 1, "%2d:%2d", &oh, &om) == 2) {
            seconds -= (rest[0] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
        } else {
            return not_a(p, v, "an RFC 3339 time (2025-01-15T09:30:00Z)");
        }
    } else {
        const char *rest = s;
        bool negative = *rest == '-';
        rest += negative;
        char *end;
        errno = 0;
        long long whole = strtoll(rest, &end, 10);
        rest = end;
        if (errno || end == s + negative || !parse_nanos(&rest, &nanos) || strcmp(rest, "s") != 0)
            return not_a(p, v, "a duration (1.5s)");
        seconds = negative ? -whole : whole;
        nanos = negative ? -nanos : nanos;
    }
    *(int64_t *)((char *)m + d->fields[0].offset) = seconds;
    *(int32_t *)((char *)m + d->fields[1].offset) = nanos;
    return true;
}

static bool parse_message(struct parse *p, ProtobufCMessage *m, const json_t *v);

/* One value of field f from v into where. */
static bool parse_value(struct parse *p, const ProtobufCFieldDescriptor *f, const json_t *v,
                        void *where)
{
    long double n;
    double d;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (!parse_integer(p, v, INT32_MIN, INT32_MAX, "an int32", &n))
            return false;
        *(int32_t *)where = (int32_t)n;
        return true;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (!parse_integer(p, v, 0, UINT32_MAX, "a uint32", &n))
            return false;
        *(uint32_t *)where = (uint32_t)n;
        return true;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (!parse_integer(p, v, INT64_MIN, INT64_MAX, "an int64", &n))
            return false;
        *(int64_t *)where = (int64_t)n;
        return true;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (!parse_integer(p, v, 0, UINT64_MAX, "a uint64", &n))
            return false;
        *(uint64_t *)where = (uint64_t)n;
        return true;
    case PROTOBUF_C_TYPE_FLOAT:
        if (!parse_double(p, v, &d))
            return false;
        *(float *)where = (float)d;
        return true;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!parse_double(p, v, &d))
            return false;
        *(double *)where = d;
        return true;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return not_a(p, v, "true or false");
        *(protobuf_c_boolean *)where = json_is_true(v);
        return true;
    case PROTOBUF_C_TYPE_ENUM:
        return parse_enum(p, f->descriptor, v, (int *)where);
    case PROTOBUF_C_TYPE_STRING:
        if (!json_is_string(v))
            return not_a(p, v, "a string");
        return (*(char **)where = tw_arena_strdup(p->arena, json_string_value(v))) != NULL ||
               parse_fail(p, "out of memory");
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = where;
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        size_t len = s ? strlen(s) : 0;
        while (len > 0 && s[len - 1] == '=') /* proto3 JSON pads; the decoder does not */
            len--;
        uint8_t *data = s ? tw_arena_alloc(p->arena, tw_base64_decoded_max(len) + 1) : NULL;
        if (data == NULL || !(tw_base64_decode(TW_BASE64_STD, s, len, data, &b->len) ||
                              tw_base64_decode(TW_BASE64_URL, s, len, data, &b->len)))
            return not_a(p, v, "base64");
        b->data = data;
        return true;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *md = f->descriptor;
        ProtobufCMessage *m = tw_arena_alloc(p->arena, md->sizeof_message);
        if (m == NULL)
            return parse_fail(p, "out of memory");
        md->message_init(m);
        *(ProtobufCMessage **)where = m;
        return parse_message(p, m, v);
    }
    }
    return parse_fail(p, "has a type this parser does not know");
}

/* The field named key (the .proto's name or its lowerCamelCase JSON name). */
static const ProtobufCFieldDescriptor *field_named(const ProtobufCMessageDescriptor *d,
                                                   const char *key)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    for (unsigned i = 0; f == NULL && i < d->n_fields; i++) {
        const char *name = d->fields[i].name, *k = key;
        while (*name && *k) {
            if (*name == '_' && name[1] && toupper((unsigned char)name[1]) == *k) {
                name += 2;
                k++;
            } else if (*name == *k) {
                name++;
                k++;
            } else {
                break;
            }
        }
        if (*name == '\0' && *k == '\0')
            f = &d->fields[i];
    }
    return f;
}

static bool parse_field(struct parse *p, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                        const json_t *v)
{
    char *base = (char *)m;
    if (json_is_null(v))
        return true; /* proto3 JSON: the default */
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (!json_is_array(v))
            return not_a(p, v, "a list");
        size_t n = json_array_size(v), at = strlen(p->path), size = element_size(f->type);
        char *items = tw_arena_alloc(p->arena, (n + 1) * size);
        if (items == NULL)
            return parse_fail(p, "out of memory");
        memset(items, 0, (n + 1) * size);
        for (size_t i = 0; i < n; i++) {
            snprintf(p->path + at, sizeof p->path - at, "[%zu]", i);
            if (!parse_value(p, f, json_array_get(v, i), items + i * size))
                return false;
        }
        p->path[at] = '\0';
        *(size_t *)(base + f->quantifier_offset) = n;
        *(void **)(base + f->offset) = items;
        return true;
    }
    if (!parse_value(p, f, v, base + f->offset))
        return false;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
        if (*which != 0 && *which != f->id)
            return parse_fail(p, "is a second member of its oneof");
        *which = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
               f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = true;
    }
    return true;
}

static bool parse_message(struct parse *p, ProtobufCMessage *m, const json_t *v)
{
    bool handled;
    if (!parse_well_known(p, m, v, &handled))
        return false;
    if (handled)
        return true;
    if (!json_is_object(v))
        return not_a(p, v, "an object");
    const ProtobufCMessageDescriptor *d = m->descriptor;
    size_t at = strlen(p->path);
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)v, key, value)
    {
        snprintf(p->path + at, sizeof p->path - at, "%s%s", at ? "." : "", key);
        const ProtobufCFieldDescriptor *f = field_named(d, key);
        if (f == NULL) {
            char what[160];
            snprintf(what, sizeof what, "%s has no such field", d->name);
            return parse_fail(p, what);
        }
        if (!parse_field(p, m, f, value))
            return false;
    }
    p->path[at] = '\0';
    return true;
}

bool tw_pbjson_parse(const json_t *json, ProtobufCMessage *message, tw_arena *arena, char *errbuf,
                     size_t errlen)
{
    struct parse p = {.arena = arena, .errbuf = errbuf, .errlen = errlen};
    return parse_message(&p, message, json);
}
