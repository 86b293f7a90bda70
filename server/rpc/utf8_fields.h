/*
 * Checks that every string field of a decoded message, nested messages and
 * repeated fields included, is valid UTF-8, as proto3 requires: protobuf-c
 * does not check, and a stored invalid string would break every client that
 * later reads it back. Internal to server/rpc.
 */
#ifndef TW_RPC_UTF8_FIELDS_H
#define TW_RPC_UTF8_FIELDS_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

/* True when all strings are valid; otherwise false with the path of the
 * first bad field in path, for example "entries[3].note". */
bool tw_utf8_fields_valid(const ProtobufCMessage *message, char *path, size_t path_len);

#endif
