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

/* The value of one hex digit (either case), -1 for any other character. */
int tw_hex_digit(char c);

#endif
