/*
 * Index over the embedded FileDescriptorSet. The set is small (our API and
 * the standard services), so lookups are linear scans over flat arrays made
 * once at start-up; reflection is rare and nothing here is on a hot path.
 */
#include "schema.h"

#include "google/protobuf/descriptor.pb-c.h"
#include "tw_array.h"
#include "tw_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct schema_file {
    const uint8_t *bytes; /* the file's serialized FileDescriptorProto, inside the set */
    size_t len;
    Google__Protobuf__FileDescriptorProto *proto;
    int *deps; /* file indexes of its imports */
    size_t ndeps;
};

struct schema_symbol {
    char *name; /* fully qualified, no leading dot */
    int file;
};

struct tw_schema {
    struct schema_file *files;
    size_t nfiles;
    struct schema_symbol *symbols;
    size_t nsymbols, symbols_cap;
};

/* Splits the set into its `repeated FileDescriptorProto file = 1` entries,
 * keeping each file's exact bytes so reflection serves what protoc wrote. */
static tw_err split_files(tw_schema *s, const uint8_t *data, size_t len)
{
    const uint8_t *p = data, *end = data + len;
    size_t cap = 0;
    while (p < end) {
        uint32_t number;
        int wire_type;
        const uint8_t *bytes;
        uint64_t size, varint;
        if (!tw_wire_field(&p, end, &number, &wire_type, &bytes, &size, &varint) || number != 1 ||
            wire_type != TW_WIRE_LEN)
            return TW_ERR_INTERNAL;
        if (s->nfiles == cap) {
            struct schema_file *grown = tw_array_grow(s->files, s->nfiles, &cap, sizeof *grown, 32);
            if (grown == NULL)
                return TW_ERR_NO_MEMORY;
            s->files = grown;
        }
        struct schema_file *f = &s->files[s->nfiles];
        memset(f, 0, sizeof *f);
        f->bytes = bytes;
        f->len = (size_t)size;
        f->proto = google__protobuf__file_descriptor_proto__unpack(NULL, f->len, f->bytes);
        if (f->proto == NULL)
            return TW_ERR_INTERNAL;
        s->nfiles++;
    }
    return TW_OK;
}

static tw_err add_symbol(tw_schema *s, const char *prefix, const char *name, int file)
{
    if (s->nsymbols == s->symbols_cap) {
        struct schema_symbol *grown =
            tw_array_grow(s->symbols, s->nsymbols, &s->symbols_cap, sizeof *grown, 256);
        if (grown == NULL)
            return TW_ERR_NO_MEMORY;
        s->symbols = grown;
    }
    size_t len = strlen(prefix) + strlen(name) + 2;
    char *full = malloc(len);
    if (full == NULL)
        return TW_ERR_NO_MEMORY;
    snprintf(full, len, "%s%s%s", prefix, *prefix ? "." : "", name);
    s->symbols[s->nsymbols++] = (struct schema_symbol){full, file};
    return TW_OK;
}

static tw_err add_message_symbols(tw_schema *s, const char *prefix,
                                  const Google__Protobuf__DescriptorProto *m, int file)
{
    tw_err err = add_symbol(s, prefix, m->name, file);
    if (err)
        return err;
    const char *full = s->symbols[s->nsymbols - 1].name;
    for (size_t i = 0; i < m->n_nested_type && !err; i++)
        err = add_message_symbols(s, full, m->nested_type[i], file);
    for (size_t i = 0; i < m->n_enum_type && !err; i++)
        err = add_symbol(s, full, m->enum_type[i]->name, file);
    return err;
}

static tw_err index_file(tw_schema *s, int fi)
{
    const Google__Protobuf__FileDescriptorProto *f = s->files[fi].proto;
    const char *pkg = f->package ? f->package : "";
    tw_err err = TW_OK;
    for (size_t i = 0; i < f->n_message_type && !err; i++)
        err = add_message_symbols(s, pkg, f->message_type[i], fi);
    for (size_t i = 0; i < f->n_enum_type && !err; i++)
        err = add_symbol(s, pkg, f->enum_type[i]->name, fi);
    for (size_t i = 0; i < f->n_service && !err; i++) {
        const Google__Protobuf__ServiceDescriptorProto *svc = f->service[i];
        err = add_symbol(s, pkg, svc->name, fi);
        const char *full = s->symbols[s->nsymbols - 1].name;
        for (size_t j = 0; j < svc->n_method && !err; j++)
            err = add_symbol(s, full, svc->method[j]->name, fi);
    }
    if (err)
        return err;

    struct schema_file *file = &s->files[fi];
    file->deps = calloc(f->n_dependency + 1, sizeof *file->deps);
    if (file->deps == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0; i < f->n_dependency; i++) {
        int dep = tw_schema_file_by_name(s, f->dependency[i]);
        if (dep < 0)
            return TW_ERR_INTERNAL; /* protoc --include_imports always includes them */
        file->deps[file->ndeps++] = dep;
    }
    return TW_OK;
}

tw_err tw_schema_load(const uint8_t *set, size_t len, tw_schema **out)
{
    *out = NULL;
    tw_schema *s = calloc(1, sizeof *s);
    if (s == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err = split_files(s, set, len);
    for (size_t i = 0; i < s->nfiles && !err; i++)
        err = index_file(s, (int)i);
    if (err) {
        tw_schema_free(s);
        return err;
    }
    *out = s;
    return TW_OK;
}

void tw_schema_free(tw_schema *schema)
{
    if (schema == NULL)
        return;
    for (size_t i = 0; i < schema->nfiles; i++) {
        google__protobuf__file_descriptor_proto__free_unpacked(schema->files[i].proto, NULL);
        free(schema->files[i].deps);
    }
    for (size_t i = 0; i < schema->nsymbols; i++)
        free(schema->symbols[i].name);
    free(schema->files);
    free(schema->symbols);
    free(schema);
}

int tw_schema_file_by_name(const tw_schema *schema, const char *name)
{
    for (size_t i = 0; i < schema->nfiles; i++)
        if (strcmp(schema->files[i].proto->name, name) == 0)
            return (int)i;
    return -1;
}

int tw_schema_file_by_symbol(const tw_schema *schema, const char *symbol)
{
    for (size_t i = 0; i < schema->nsymbols; i++)
        if (strcmp(schema->symbols[i].name, symbol) == 0)
            return schema->symbols[i].file;
    return -1;
}

bool tw_schema_method_streaming(const tw_schema *schema, const char *service, const char *method,
                                bool *client_streaming, bool *server_streaming)
{
    for (size_t i = 0; i < schema->nfiles; i++) {
        const Google__Protobuf__FileDescriptorProto *f = schema->files[i].proto;
        size_t pkg_len = f->package ? strlen(f->package) : 0;
        if (pkg_len > 0 && (strncmp(service, f->package, pkg_len) != 0 || service[pkg_len] != '.'))
            continue;
        const char *short_name = service + (pkg_len ? pkg_len + 1 : 0);
        for (size_t j = 0; j < f->n_service; j++) {
            const Google__Protobuf__ServiceDescriptorProto *svc = f->service[j];
            if (strcmp(svc->name, short_name) != 0)
                continue;
            for (size_t k = 0; k < svc->n_method; k++) {
                const Google__Protobuf__MethodDescriptorProto *m = svc->method[k];
                if (strcmp(m->name, method) == 0) {
                    *client_streaming = m->has_client_streaming && m->client_streaming;
                    *server_streaming = m->has_server_streaming && m->server_streaming;
                    return true;
                }
            }
        }
    }
    return false;
}

static void visit_file(const tw_schema *schema, int file, bool *seen,
                       void (*fn)(void *ctx, const uint8_t *data, size_t len), void *ctx)
{
    if (seen[file])
        return;
    seen[file] = true;
    const struct schema_file *f = &schema->files[file];
    for (size_t i = 0; i < f->ndeps; i++)
        visit_file(schema, f->deps[i], seen, fn, ctx);
    fn(ctx, f->bytes, f->len);
}

tw_err tw_schema_each_file_with_deps(const tw_schema *schema, int file,
                                     void (*fn)(void *ctx, const uint8_t *data, size_t len),
                                     void *ctx)
{
    bool *seen = calloc(schema->nfiles, sizeof *seen);
    if (seen == NULL)
        return TW_ERR_NO_MEMORY;
    visit_file(schema, file, seen, fn, ctx);
    free(seen);
    return TW_OK;
}

/* The message called full_name ("tw.v1.Task", "tw.v1.Task.Nested") among
 * messages (and their nested types) of a file whose package is prefix. */
static const Google__Protobuf__DescriptorProto *
find_message(Google__Protobuf__DescriptorProto *const *messages, size_t n, const char *prefix,
             const char *full_name)
{
    size_t plen = strlen(prefix);
    if (plen > 0 && (strncmp(full_name, prefix, plen) != 0 || full_name[plen] != '.'))
        return NULL;
    const char *rest = full_name + (plen ? plen + 1 : 0);
    size_t head = strcspn(rest, ".");
    for (size_t i = 0; i < n; i++) {
        const Google__Protobuf__DescriptorProto *m = messages[i];
        if (strlen(m->name) != head || strncmp(m->name, rest, head) != 0)
            continue;
        if (rest[head] == '\0')
            return m;
        return find_message(m->nested_type, m->n_nested_type, "", rest + head + 1);
    }
    return NULL;
}

bool tw_schema_field_extension(const tw_schema *schema, const char *message, uint32_t field,
                               uint32_t extension, const uint8_t **data, size_t *len)
{
    for (size_t i = 0; i < schema->nfiles; i++) {
        const Google__Protobuf__FileDescriptorProto *f = schema->files[i].proto;
        const Google__Protobuf__DescriptorProto *m =
            find_message(f->message_type, f->n_message_type, f->package ? f->package : "", message);
        if (m == NULL)
            continue;
        for (size_t j = 0; j < m->n_field; j++) {
            const Google__Protobuf__FieldDescriptorProto *fd = m->field[j];
            if (!fd->has_number || (uint32_t)fd->number != field || fd->options == NULL)
                continue;
            /* protobuf-c keeps extensions it has no code for as unknown
             * fields, a length-prefixed one with its length in front. */
            const ProtobufCMessage *options = &fd->options->base;
            for (unsigned k = 0; k < options->n_unknown_fields; k++) {
                const ProtobufCMessageUnknownField *u = &options->unknown_fields[k];
                const uint8_t *p = u->data, *end = u->data + u->len;
                uint64_t size;
                if (u->tag == extension && u->wire_type == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED &&
                    tw_wire_varint(&p, end, &size) && size == (uint64_t)(end - p)) {
                    *data = p;
                    *len = (size_t)size;
                    return true;
                }
            }
        }
        return false;
    }
    return false;
}

bool tw_schema_extension_number(const tw_schema *schema, const char *name, uint32_t *number)
{
    for (size_t i = 0; i < schema->nfiles; i++) {
        const Google__Protobuf__FileDescriptorProto *f = schema->files[i].proto;
        size_t plen = f->package ? strlen(f->package) : 0;
        if (plen > 0 && (strncmp(name, f->package, plen) != 0 || name[plen] != '.'))
            continue;
        for (size_t j = 0; j < f->n_extension; j++)
            if (strcmp(f->extension[j]->name, name + (plen ? plen + 1 : 0)) == 0 &&
                f->extension[j]->has_number) {
                *number = (uint32_t)f->extension[j]->number;
                return true;
            }
    }
    return false;
}
