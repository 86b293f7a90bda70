/*
 * Keys: order-preserving binary encodings of the parts a key family declares
 * (tw_keyspace.h), built and read in the declared order.
 *
 * A key is its family's prefix byte followed by its parts. Each encoding
 * sorts, byte by byte, as its value does: ids as their 16 bytes (UUIDv7
 * sort by time), unsigned integers big-endian, signed ones big-endian with
 * the sign bit flipped, strings with 0x00 escaped as 00 ff and ended by
 * 00 01 (so "a" < "a\0" < "ab", and no string is a prefix of another's
 * encoding). A key with only its first parts is the prefix for a scan.
 *
 * Errors are sticky, like curl's dynbuf: each append checks the part against
 * the family and the room left, records the first failure in .err and
 * ignores later appends, so a caller appends all parts and checks once (the
 * store refuses a key with .err set). TW_ERR_VALIDATION: too long;
 * TW_ERR_INTERNAL: a part that is not the family's next one.
 */
#ifndef TW_KEY_H
#define TW_KEY_H

#include "tw_arena.h"
#include "tw_err.h"
#include "tw_id.h"
#include "tw_keyspace.h"

#include <stddef.h>
#include <stdint.h>

/* Longest encoded key; long enough for a 254-byte email with its space. */
#define TW_KEY_MAX 512

typedef struct tw_key {
    tw_kf family;
    uint8_t nparts; /* parts appended so far */
    tw_err err;     /* first failure, TW_OK if none */
    size_t len;
    uint8_t bytes[TW_KEY_MAX];
} tw_key;

/* Starts a key (or scan prefix) of family: just the prefix byte. */
void tw_key_init(tw_key *k, tw_kf family);

/* Append the next part. Each borrows its argument only during the call. */
void tw_key_id(tw_key *k, const tw_id *id);
void tw_key_u64(tw_key *k, uint64_t v);
void tw_key_i64(tw_key *k, int64_t v);
void tw_key_u32(tw_key *k, uint32_t v);
void tw_key_str(tw_key *k, const char *s);
void tw_key_strn(tw_key *k, const char *s, size_t n); /* may hold NUL bytes */

/* True when every part of the family has been appended. */
bool tw_key_complete(const tw_key *k);

/*
 * Reading a stored key back, part by part in the declared order; errors are
 * sticky in .err as for building. TW_ERR_DB_CORRUPT: the bytes are not a
 * key of the family; TW_ERR_INTERNAL: not the family's next part.
 * The reader borrows bytes for its lifetime.
 */
typedef struct tw_key_reader {
    const uint8_t *bytes;
    size_t len, pos;
    tw_kf family;
    uint8_t part;
    tw_err err;
} tw_key_reader;

void tw_key_read_init(tw_key_reader *r, tw_kf family, const void *bytes, size_t len);
void tw_key_read_id(tw_key_reader *r, tw_id *out);
void tw_key_read_u64(tw_key_reader *r, uint64_t *out);
void tw_key_read_i64(tw_key_reader *r, int64_t *out);
void tw_key_read_u32(tw_key_reader *r, uint32_t *out);
/* The string, NUL-terminated, allocated in arena; *len (may be NULL) its length. */
void tw_key_read_str(tw_key_reader *r, tw_arena *arena, char **out, size_t *len);

/* Checks that bytes are one whole key of some family, every part well
 * formed and nothing after the last; *family (may be NULL) gets it.
 * TW_ERR_DB_CORRUPT otherwise. For `twd check`. */
tw_err tw_key_validate(const void *bytes, size_t len, tw_kf *family);

#endif
