/*
 * Hexadecimal: digests and signatures shown as lower-case hex (SHA-256 of a
 * voice note, SigV4), and the hex digits of UUIDs and percent escapes read
 * back.
 */
#ifndef TW_HEX_H
#define TW_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Lower-case hex of n bytes into out: 2n characters and a NUL. */
void tw_hex_encode(const uint8_t *bytes, size_t n, char *out);

/* Each character's hex digit value plus one; 0 for the rest. */
extern const uint8_t tw_hex_digit_plus_one[256];

/* The value of one hex digit (either case), -1 for any other character.
 * Inline, because every call parses ids (its caller, its request's
 * fields) a digit at a time. */
static inline int tw_hex_digit(char c)
{
    return tw_hex_digit_plus_one[(unsigned char)c] - 1;
}

#endif
