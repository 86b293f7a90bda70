/*
 * Identifiers: UUIDv7 (RFC 9562), time-ordered so that keys built from them
 * sort by creation time and a prefix scan lists oldest or newest first
 * without sorting. Within one process, ids made in the same millisecond still
 * increase (a 12-bit counter in rand_a, as RFC 9562 section 6.2 method 1).
 */
#ifndef TW_ID_H
#define TW_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TW_ID_BYTES 16
/* Text form: 36 characters plus the terminating NUL. */
#define TW_ID_TEXT_SIZE 37

typedef struct tw_id {
    uint8_t bytes[TW_ID_BYTES];
} tw_id;

/* A new UUIDv7 for the current time. Thread-safe. */
tw_id tw_id_new(void);

/* Writes the canonical lower-case text form into out (TW_ID_TEXT_SIZE bytes). */
void tw_id_format(const tw_id *id, char out[TW_ID_TEXT_SIZE]);

/* Parses the canonical text form (either case). Returns false when text is
 * not a UUID; any version is accepted so that clients may supply ids. */
bool tw_id_parse(const char *text, tw_id *out);

/* The Unix time in milliseconds a UUIDv7 was made at. */
int64_t tw_id_unix_ms(const tw_id *id);

/* True when id is a version 7, RFC 9562 variant UUID. */
bool tw_id_is_v7(const tw_id *id);

/* True when a and b are the same id. */
bool tw_id_equal(const tw_id *a, const tw_id *b);

/* Longest request id (x-request-id) a client may choose. */
#define TW_REQUEST_ID_MAX 64

/* Whether len bytes at p are a request id twd takes from a client (gRPC's
 * and HTTP's x-request-id alike): 1 to TW_REQUEST_ID_MAX letters, digits
 * and "-_.:", so it is safe in logs and headers. */
bool tw_request_id_valid(const char *p, size_t len);

#endif
