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
#include <stddef.h>

#include "tw_arena.h"

/* The JSON of message (borrowed); skip (may be NULL) names fields to leave
 * out, NULL-terminated; defaults: print fields at their default value too
 * (an empty list as [], an unset message as null), for people reading it.
 * NULL when out of memory. */
json_t *tw_pbjson(const ProtobufCMessage *message, const char *const *skip, bool defaults);

/* The other way: fills message (initialised, borrowed) from json
 * (borrowed), allocating strings, lists and sub-messages in arena. Reads
 * what tw_pbjson writes and what any proto3 JSON printer writes: fields by
 * their .proto name or lowerCamelCase JSON name, integers as numbers or
 * strings, enums by name or number, bytes as base64, Timestamp, Duration
 * and FieldMask as their strings, null as the default. For people typing
 * it, an enum may also be named without its enum's prefix, in any case
 * ("month" for BILLING_INTERVAL_MONTH). False, with one line in errbuf
 * naming the field's path ("plan.prices[0].amount_minor: \"x\" is not an
 * int64"), on an unknown field or a value of the wrong type. */
bool tw_pbjson_parse(const json_t *json, ProtobufCMessage *message, tw_arena *arena, char *errbuf,
                     size_t errlen);

#endif
