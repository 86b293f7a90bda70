/*
 * Base64 without padding, in the standard alphabet (RFC 4648 section 4; PHC
 * password strings) or the URL-safe one (section 5; JWTs, page tokens).
 * Decoding is strict: no padding, no whitespace, no stray bits, so one value
 * has exactly one text form.
 */
#ifndef TW_BASE64_H
#define TW_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum tw_base64_alphabet { TW_BASE64_STD, TW_BASE64_URL } tw_base64_alphabet;

/* Characters needed for len bytes, without the terminating NUL. */
size_t tw_base64_encoded_len(size_t len);

/* Bytes at most decoded from text_len characters. */
size_t tw_base64_decoded_max(size_t text_len);

/* Writes tw_base64_encoded_len(len) characters and a NUL into out. */
void tw_base64_encode(tw_base64_alphabet alphabet, const uint8_t *in, size_t len, char *out);

/* Decodes text_len characters into out (room for tw_base64_decoded_max);
 * false on any character outside the alphabet or an impossible length. */
bool tw_base64_decode(tw_base64_alphabet alphabet, const char *text, size_t text_len, uint8_t *out,
                      size_t *out_len);

#endif
