/*
 * UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing past
 * U+10FFFF). proto3 requires string fields to be valid UTF-8 and other gRPC
 * implementations refuse anything else, but protobuf-c does not check, so
 * the engine does; the logger uses it to keep lines valid JSON. Services
 * count characters with it for their length limits.
 */
#ifndef TW_UTF8_H
#define TW_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid UTF-8 sequence starting at s (1 to 4), or 0 when the
 * bytes at s (len of them available) are not one. */
size_t tw_utf8_sequence(const char *s, size_t len);

/* True when the len bytes at s are valid UTF-8 and contain no NUL.
 * (protobuf-c hands strings over NUL-terminated, so a NUL on the wire
 * already cut the string short before anyone can see it.) */
bool tw_utf8_valid(const char *s, size_t len);

/* The characters (code points) of NUL-terminated valid UTF-8: what length
 * limits on user text count. */
size_t tw_utf8_chars(const char *s);

#endif
