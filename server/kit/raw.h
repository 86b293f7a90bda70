/*
 * Answers made of stored bytes. A record keeps the API message it stands
 * for as one of its fields (tw.store.v1.TaskRecord's task, for one), so a
 * read can send that field's bytes as they are stored rather than decode
 * the record and pack the same message again, which was most of the cost
 * of a list. The bytes go out as the response's unknown fields: protobuf-c
 * packs a message's unknown fields after its own fields, each as its tag
 * and the bytes kept for it, so the client receives exactly what packing
 * the decoded message would have given, as long as the fields are added
 * in field-number order after any the message sets itself.
 */
#ifndef TW_KIT_RAW_H
#define TW_KIT_RAW_H

#include "rpc/call.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Makes room in the call's arena for up to n fields of response (borrowed;
 * its own set fields are packed first). False when out of memory. */
bool tw_kit_raw_begin(tw_call *call, ProtobufCMessage *response, size_t n);

/* Adds to response its field named `field` (a string constant naming a
 * message, string or bytes field of its type, as in the .proto) whose
 * value, with its length varint before it, is prefixed (as tw_wire_find
 * gives it; borrowed until the call ends). Within the room tw_kit_raw_begin
 * made. */
void tw_kit_raw_add(ProtobufCMessage *response, const char *field, const uint8_t *prefixed,
                    size_t len);

/* Adds text as the string field named `field`, copied into the call's
 * arena; an empty text adds nothing, as protobuf-c packs no empty proto3
 * string. False when out of memory. */
bool tw_kit_raw_add_text(tw_call *call, ProtobufCMessage *response, const char *field,
                         const char *text);

#endif
