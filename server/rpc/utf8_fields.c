/* Recursive UTF-8 check of string fields for utf8_fields.h. */
#include "utf8_fields.h"

#include "tw_utf8.h"

#include <stdio.h>
#include <string.h>

/* Appends ".name" or "name[i]" to the path being built. */
static void path_push(char *path, size_t path_len, const char *name, long index)
{
    size_t used = strlen(path);
    if (used >= path_len)
        return;
    if (index >= 0)
        snprintf(path + used, path_len - used, "%s%s[%ld]", used ? "." : "", name, index);
    else
        snprintf(path + used, path_len - used, "%s%s", used ? "." : "", name);
}

static bool value_valid(const ProtobufCFieldDescriptor *f, const void *value, char *path,
                        size_t path_len)
{
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = *(char *const *)value;
        return s == NULL || tw_utf8_valid(s, strlen(s));
    }
    const ProtobufCMessage *m = *(ProtobufCMessage *const *)value;
    return m == NULL || tw_utf8_fields_valid(m, path, path_len);
}

/* A field counts when it is set: in a oneof, only the member chosen. */
static bool field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return true;
    uint32_t chosen = *(const uint32_t *)((const char *)m + f->quantifier_offset);
    return chosen == f->id;
}

bool tw_utf8_fields_valid(const ProtobufCMessage *m, char *path, size_t path_len)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    size_t base = strlen(path);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if ((f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) ||
            !field_present(m, f))
            continue;
        const char *at = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            const char *const *items = *(const char *const *const *)at;
            for (size_t k = 0; k < n; k++) {
                path[base] = '\0';
                path_push(path, path_len, f->name, (long)k);
                if (!value_valid(f, &items[k], path, path_len))
                    return false;
            }
        } else {
            path[base] = '\0';
            path_push(path, path_len, f->name, -1);
            if (!value_valid(f, at, path, path_len))
                return false;
        }
    }
    path[base] = '\0';
    return true;
}
