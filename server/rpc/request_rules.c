/* Request rules from (tw.v1.rules) options, and the walk that checks them
 * (request_rules.h). */
#include "request_rules.h"

#include "google/protobuf/timestamp.pb-c.h"
#include "tw/v1/field_rules.pb-c.h"
#include "tw_array.h"
#include "tw_id.h"
#include "tw_utf8.h"
#include "tw_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The option's full name in field_rules.proto. */
#define RULES_OPTION "tw.v1.rules"
/* Messages inside messages a request may nest; our API needs a handful. */
#define MAX_DEPTH 16
/* Repeated and required fields one message type may have (their counters
 * live on the stack during the walk). */
#define MAX_REPEATED   32
#define MAX_REQUIRED   32
#define PATH_MAX_BYTES 512

/* Timestamps protobuf can express: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
#define TS_MIN_S  INT64_C(-62135596800)
#define TS_MAX_S  INT64_C(253402300799)
#define Y1900_S   INT64_C(-2208988800)
#define Y2200_S   INT64_C(7258118400)
#define MINUTE_MS INT64_C(60000)
#define DAY_MS    INT64_C(86400000)

/* TimeWindow rows: a fixed range [min_s, max_s] intersected with
 * [now - past_ms, now + future_ms] when those are set (> 0). */
static const struct time_window {
    int64_t min_s, max_s;
    int64_t past_ms, future_ms;
    const char *says;
} windows[] = {
    [TW__V1__TIME_WINDOW__TIME_WINDOW_UNSPECIFIED] = {TS_MIN_S, TS_MAX_S, 0, 0,
                                                      "must be between 0001-01-01 and 9999-12-31"},
    [TW__V1__TIME_WINDOW__TIME_WINDOW_LIVE] =
        {TS_MIN_S, TS_MAX_S, DAY_MS, MINUTE_MS,
         "must be within 24 hours before the server's clock and 1 minute after it"},
    [TW__V1__TIME_WINDOW__TIME_WINDOW_RECENT] =
        {TS_MIN_S, TS_MAX_S, 7 * DAY_MS, MINUTE_MS,
         "must be within 7 days before the server's clock and 1 minute after it"},
    [TW__V1__TIME_WINDOW__TIME_WINDOW_PAST] =
        {Y1900_S, TS_MAX_S, 0, DAY_MS,
         "must be after 1900-01-01 and at most 1 day after the server's clock"},
    [TW__V1__TIME_WINDOW__TIME_WINDOW_CALENDAR] = {Y1900_S, Y2200_S, 0, 0,
                                                   "must be between 1900-01-01 and 2200-01-01"},
};
#define NWINDOWS (sizeof windows / sizeof windows[0])

struct field_rule {
    uint32_t max_items;             /* repeated fields */
    int slot;                       /* repeated fields: index of its counter */
    int required;                   /* required fields: 1 + index of its flag; 0: optional */
    Tw__V1__StringFormat format;    /* string fields */
    const struct time_window *time; /* Timestamp fields */
    const tw_message_rules *child;  /* other message fields */
};

struct tw_message_rules {
    const ProtobufCMessageDescriptor *d;
    struct field_rule *fields; /* d->n_fields, in d->fields' order */
    int nrepeated;
    int nrequired;
};

struct tw_request_rules {
    const tw_schema *schema;
    uint32_t extension; /* the option's field number; 0 when the schema has none */
    tw_message_rules **messages;
    size_t n, cap;
};

tw_err tw_request_rules_new(const tw_schema *schema, tw_request_rules **out)
{
    tw_request_rules *r = calloc(1, sizeof *r);
    if (r == NULL)
        return TW_ERR_NO_MEMORY;
    r->schema = schema;
    if (!tw_schema_extension_number(schema, RULES_OPTION, &r->extension))
        r->extension = 0; /* a schema without field_rules.proto: defaults only */
    *out = r;
    return TW_OK;
}

void tw_request_rules_free(tw_request_rules *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->messages[i]->fields);
        free(r->messages[i]);
    }
    free(r->messages);
    free(r);
}

/* The (tw.v1.rules) of one field, or all defaults. */
static Tw__V1__FieldRules read_option(const tw_request_rules *r, const char *message,
                                      uint32_t number)
{
    Tw__V1__FieldRules rules = TW__V1__FIELD_RULES__INIT;
    const uint8_t *data;
    size_t len;
    if (r->extension != 0 &&
        tw_schema_field_extension(r->schema, message, number, r->extension, &data, &len)) {
        Tw__V1__FieldRules *parsed = tw__v1__field_rules__unpack(NULL, len, data);
        if (parsed != NULL) {
            rules = *parsed;
            rules.base.unknown_fields = NULL;
            rules.base.n_unknown_fields = 0;
            tw__v1__field_rules__free_unpacked(parsed, NULL);
        }
    }
    return rules;
}

static const tw_message_rules *rules_for(tw_request_rules *r, const ProtobufCMessageDescriptor *d,
                                         int depth)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->messages[i]->d == d)
            return r->messages[i];
    if (depth > MAX_DEPTH)
        return NULL;
    tw_message_rules *m = calloc(1, sizeof *m);
    struct field_rule *fields = calloc(d->n_fields + 1, sizeof *fields);
    if (r->n == r->cap) {
        tw_message_rules **grown = tw_array_grow(r->messages, r->n, &r->cap, sizeof *grown, 64);
        if (grown != NULL)
            r->messages = grown;
    }
    if (m == NULL || fields == NULL || r->n == r->cap) {
        free(m);
        free(fields);
        return NULL;
    }
    m->d = d;
    m->fields = fields;
    /* Listed before its fields are, so a message nesting itself ends here. */
    r->messages[r->n++] = m;

    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        Tw__V1__FieldRules option = read_option(r, d->name, f->id);
        struct field_rule *rule = &fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (m->nrepeated == MAX_REPEATED)
                return NULL;
            rule->slot = m->nrepeated++;
            rule->max_items = option.max_items ? option.max_items : TW_RULES_DEFAULT_MAX_ITEMS;
        }
        if (option.required) {
            if (m->nrequired == MAX_REQUIRED)
                return NULL;
            rule->required = ++m->nrequired;
        }
        if (option.format != TW__V1__STRING_FORMAT__STRING_FORMAT_UNSPECIFIED &&
            f->type != PROTOBUF_C_TYPE_STRING)
            return NULL; /* a format on a field that is no string: a mistake in the .proto */
        rule->format = option.format;
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->descriptor == &google__protobuf__timestamp__descriptor) {
            if ((size_t)option.time_window >= NWINDOWS)
                return NULL;
            rule->time = &windows[option.time_window];
        } else if ((rule->child = rules_for(r, f->descriptor, depth + 1)) == NULL) {
            return NULL;
        }
    }
    return m;
}

const tw_message_rules *tw_request_rules_for(tw_request_rules *r,
                                             const ProtobufCMessageDescriptor *d)
{
    return rules_for(r, d, 0);
}

/* ---- The walk ------------------------------------------------------------ */

struct walk {
    tw_violations *v;
    int64_t now_ms;
    char path[PATH_MAX_BYTES];
};

/* Appends len bytes of text at path[at], cut where the path is full;
 * returns the new length. */
static size_t path_append(struct walk *w, size_t at, const char *text, size_t len)
{
    size_t room = sizeof w->path - 1 - at;
    if (len > room)
        len = room;
    memcpy(w->path + at, text, len);
    w->path[at + len] = '\0';
    return at + len;
}

/* Appends ".name" or "name[index]" at path[at]; returns the new length.
 * Every string field of every request passes here, so no printf for names. */
static size_t path_push(struct walk *w, size_t at, const char *name, long index)
{
    if (at > 0)
        at = path_append(w, at, ".", 1);
    at = path_append(w, at, name, strlen(name));
    if (index >= 0) {
        char item[24];
        int n = snprintf(item, sizeof item, "[%ld]", index);
        at = path_append(w, at, item, (size_t)n);
    }
    return at;
}

/* Items of a packed repeated scalar field in len bytes. */
static uint64_t packed_items(ProtobufCType type, const uint8_t *data, uint64_t len)
{
    switch (type) {
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return len / 4;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return len / 8;
    default: { /* varints: one ends at each byte without the high bit */
        uint64_t n = 0;
        for (uint64_t i = 0; i < len; i++)
            n += !(data[i] & 0x80);
        return n;
    }
    }
}

static void check_string(struct walk *w, const struct field_rule *rule, const uint8_t *data,
                         uint64_t len)
{
    if (memchr(data, '\0', len) != NULL) {
        tw_violations_add(w->v, w->path, "contains a NUL character");
        return;
    }
    if (!tw_utf8_valid((const char *)data, len)) {
        tw_violations_add(w->v, w->path, "is not valid UTF-8");
        return;
    }
    if (rule->format == TW__V1__STRING_FORMAT__STRING_FORMAT_UNSPECIFIED || len == 0)
        return;
    char text[TW_ID_TEXT_SIZE];
    tw_id id;
    bool uuid = len == TW_ID_TEXT_SIZE - 1;
    if (uuid) {
        memcpy(text, data, len);
        text[len] = '\0';
        uuid = tw_id_parse(text, &id);
    }
    if (!uuid)
        tw_violations_add(w->v, w->path, "must be a UUID");
}

static void check_timestamp(struct walk *w, const struct time_window *win, const uint8_t *p,
                            const uint8_t *end)
{
    int64_t seconds = 0, nanos = 0;
    uint32_t number;
    int wire_type;
    const uint8_t *data;
    uint64_t len, varint = 0;
    while (p < end && tw_wire_field(&p, end, &number, &wire_type, &data, &len, &varint))
        if (wire_type == TW_WIRE_VARINT && (number == 1 || number == 2))
            *(number == 1 ? &seconds : &nanos) = (int64_t)varint;
    if (nanos < 0 || nanos > 999999999) {
        tw_violations_add(w->v, w->path, "has nanos outside 0 to 999999999");
        return;
    }
    int64_t lo_ms = win->min_s * 1000, hi_ms = win->max_s * 1000 + 999;
    if (win->past_ms > 0 && w->now_ms - win->past_ms > lo_ms)
        lo_ms = w->now_ms - win->past_ms;
    if (win->future_ms > 0 && w->now_ms + win->future_ms < hi_ms)
        hi_ms = w->now_ms + win->future_ms;
    bool inside = seconds >= win->min_s && seconds <= win->max_s &&
                  seconds * 1000 + nanos / 1000000 >= lo_ms &&
                  seconds * 1000 + nanos / 1000000 <= hi_ms;
    if (inside)
        return;
    char when[40] = "a time out of range";
    struct tm tm;
    time_t t = (time_t)seconds;
    if (seconds >= TS_MIN_S && seconds <= TS_MAX_S && gmtime_r(&t, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    tw_violations_add(w->v, w->path, "%s (got %s)", win->says, when);
}

static void walk_message(struct walk *w, const tw_message_rules *r, const uint8_t *p,
                         const uint8_t *end, size_t at, int depth)
{
    uint64_t counts[MAX_REPEATED] = {0};
    bool present[MAX_REQUIRED + 1] = {false}; /* [0]: optional fields */
    const ProtobufCMessageDescriptor *d = r->d;
    uint32_t number;
    int wire_type;
    const uint8_t *data;
    uint64_t len, varint;
    while (p < end) {
        if (!tw_wire_field(&p, end, &number, &wire_type, &data, &len, &varint))
            return; /* protobuf-c decoded it, so this does not happen */
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, number);
        if (f == NULL)
            continue; /* unknown fields are skipped, as protobuf-c does */
        const struct field_rule *rule = &r->fields[f - d->fields];
        /* Set means sent with a value: proto3 leaves out empty strings, but
         * a client may still send one. */
        present[rule->required] |=
            wire_type != TW_WIRE_LEN || len > 0 || f->type == PROTOBUF_C_TYPE_MESSAGE;
        long index = -1;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            uint64_t *count = &counts[rule->slot];
            index = (long)*count;
            bool packed = wire_type == TW_WIRE_LEN && f->type != PROTOBUF_C_TYPE_STRING &&
                          f->type != PROTOBUF_C_TYPE_BYTES && f->type != PROTOBUF_C_TYPE_MESSAGE;
            *count += packed ? packed_items(f->type, data, len) : 1;
            if (*count > rule->max_items)
                continue; /* reported once below; items past the limit are not read */
        }
        if (wire_type != TW_WIRE_LEN || f->type == PROTOBUF_C_TYPE_BYTES)
            continue;
        size_t field_at = path_push(w, at, f->name, index);
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            check_string(w, rule, data, len);
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (rule->time != NULL)
                check_timestamp(w, rule->time, data, data + len);
            else if (depth >= MAX_DEPTH)
                tw_violations_add(w->v, w->path, "is nested too deeply");
            else
                walk_message(w, rule->child, data, data + len, field_at, depth + 1);
        }
        w->path[at] = '\0';
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const struct field_rule *rule = &r->fields[i];
        if (rule->required && !present[rule->required]) {
            path_push(w, at, d->fields[i].name, -1);
            tw_violations_add(w->v, w->path, "is required");
            w->path[at] = '\0';
        }
        if (d->fields[i].label != PROTOBUF_C_LABEL_REPEATED ||
            counts[rule->slot] <= rule->max_items)
            continue;
        path_push(w, at, d->fields[i].name, -1);
        tw_violations_add(w->v, w->path, "has %llu items; at most %u are allowed",
                          (unsigned long long)counts[rule->slot], rule->max_items);
        w->path[at] = '\0';
    }
}

void tw_request_check(const tw_message_rules *r, const uint8_t *data, size_t len, int64_t now_ms,
                      tw_violations *v)
{
    struct walk w = {.v = v, .now_ms = now_ms};
    walk_message(&w, r, data, data + len, 0, 0);
}
