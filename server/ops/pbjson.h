/*
 * Protobuf messages (protobuf-c) as JSON, in the proto3 JSON mapping
 * (protobuf.dev/programming-guides/json) with the .proto's own field
 * names: 64-bit integers as strings, bytes as padded base64, enums by
 * name, Timestamp and Duration as their strings ("2025-01-15T09:30:00Z",
 * "1.5s"), fields at their default value left out as proto3 does (unless
 * asked for), except members of a oneof and proto3 `optional` fields that
 * are set. Any
 * proto3 JSON parser reads it back (Python's json_format.ParseDict, Go's
 * protojson, buf). Used by data exports and `twd admin ... --json`.
 */
#ifndef TW_OPS_PBJSON_H
#define TW_OPS_PBJSON_H

#include <jansson.h>
#include <stdbool.h>
#include <protobuf-c/protobuf-c.h>

/* The JSON of message (borrowed); skip (may be NULL) names fields to leave
 * out, NULL-terminated; defaults: print fields at their default value too
 * (an empty list as [], an unset message as null), for people reading it.
 * NULL when out of memory. */
json_t *tw_pbjson(const ProtobufCMessage *message, const char *const *skip, bool defaults);

#endif
