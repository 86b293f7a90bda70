/*
 * The schema twd serves: a descriptor set protoc wrote at build time
 * (proto/descriptor_set.h for twd), indexed by file and by symbol. The engine checks
 * its method tables against it; server reflection answers from it.
 */
#ifndef TW_RPC_SCHEMA_H
#define TW_RPC_SCHEMA_H

#include "rpc_layer.h"

#include "tw_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tw_schema tw_schema;

/* Parses a serialized FileDescriptorSet (borrowed: it must outlive the
 * schema), made by protoc with --include_imports. TW_ERR_INTERNAL if it is
 * damaged. */
tw_err tw_schema_load(const uint8_t *set, size_t len, tw_schema **out);
void tw_schema_free(tw_schema *schema);

/* Looks up Service/Method; false when the schema has no such method. */
bool tw_schema_method_streaming(const tw_schema *schema, const char *service, const char *method,
                                bool *client_streaming, bool *server_streaming);

/* The file index for a file name, or for the file defining a full symbol
 * name (message, enum, service, method, nested type); -1 when unknown. */
int tw_schema_file_by_name(const tw_schema *schema, const char *name);
int tw_schema_file_by_symbol(const tw_schema *schema, const char *symbol);

/* The field number of the top-level extension called name ("tw.v1.rules");
 * false when the schema declares none. */
bool tw_schema_extension_number(const tw_schema *schema, const char *name, uint32_t *number);

/* The bytes of a message-typed option extension (number extension) set on
 * field number field of message (a full name, "tw.v1.Task"); false when
 * the field or the option is not there. The bytes live as long as the
 * schema. */
bool tw_schema_field_extension(const tw_schema *schema, const char *message, uint32_t field,
                               uint32_t extension, const uint8_t **data, size_t *len);

/* Calls fn with the serialized FileDescriptorProto of file and of every
 * file it imports, directly or not, each once, dependencies first. */
tw_err tw_schema_each_file_with_deps(const tw_schema *schema, int file,
                                     void (*fn)(void *ctx, const uint8_t *data, size_t len),
                                     void *ctx);

#endif
