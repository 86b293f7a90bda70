/*
 * The checks every request passes before a handler runs, as
 * proto/tw/v1/field_rules.proto declares them: every string is valid UTF-8
 * with no NUL, judged by its length on the wire (protobuf-c hands strings
 * over NUL-terminated, so a NUL would silently cut one short); every
 * repeated field holds at most its max_items (TW_RULES_DEFAULT_MAX_ITEMS
 * when the .proto sets none, FieldMask paths included); every Timestamp is
 * valid and inside its field's time_window around the call's "now".
 *
 * The rules are read once from the (tw.v1.rules) options in the served
 * descriptor set. A check is one walk over the request's bytes, linear in
 * their length, that adds every violation to the call's bounded list.
 * Internal to server/rpc.
 */
#ifndef TW_RPC_REQUEST_RULES_H
#define TW_RPC_REQUEST_RULES_H

#include "rpc_layer.h"

#include "schema.h"
#include "tw_violations.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* Items of a repeated field without a max_items of its own. */
#define TW_RULES_DEFAULT_MAX_ITEMS 100

typedef struct tw_request_rules tw_request_rules;
typedef struct tw_message_rules tw_message_rules;

/* Rules read from schema (borrowed: it must outlive them). */
tw_err tw_request_rules_new(const tw_schema *schema, tw_request_rules **out);
void tw_request_rules_free(tw_request_rules *rules);

/* The rules of messages of type d, built on first use. Not thread-safe:
 * ask while the engine is set up, before it serves. NULL when out of
 * memory or when d nests deeper than the walk goes. */
const tw_message_rules *tw_request_rules_for(tw_request_rules *rules,
                                             const ProtobufCMessageDescriptor *d);

/* Checks the len bytes of a packed message (one protobuf-c could decode)
 * against r at now_ms (Unix ms), adding each violation to v. */
void tw_request_check(const tw_message_rules *r, const uint8_t *data, size_t len, int64_t now_ms,
                      tw_violations *v);

#endif
