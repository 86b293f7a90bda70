/* Unpadded base64 for tw_base64.h. */
#include "tw_base64.h"

static const char alphabets[2][65] = {
    [TW_BASE64_STD] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    [TW_BASE64_URL] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
};

size_t tw_base64_encoded_len(size_t len)
{
    return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
}

size_t tw_base64_decoded_max(size_t text_len)
{
    return text_len / 4 * 3 + 2;
}

void tw_base64_encode(tw_base64_alphabet alphabet, const uint8_t *in, size_t len, char *out)
{
    const char *abc = alphabets[alphabet];
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = abc[v >> 18];
        *out++ = abc[v >> 12 & 63];
        *out++ = abc[v >> 6 & 63];
        *out++ = abc[v & 63];
    }
    if (len - i == 1) {
        *out++ = abc[in[i] >> 2];
        *out++ = abc[(in[i] & 3) << 4];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
        *out++ = abc[v >> 10];
        *out++ = abc[v >> 4 & 63];
        *out++ = abc[(v & 15) << 2];
    }
    *out = '\0';
}

static int sextet(tw_base64_alphabet alphabet, char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == alphabets[alphabet][62])
        return 62;
    if (c == alphabets[alphabet][63])
        return 63;
    return -1;
}

bool tw_base64_decode(tw_base64_alphabet alphabet, const char *text, size_t text_len, uint8_t *out,
                      size_t *out_len)
{
    if (text_len % 4 == 1)
        return false;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < text_len; i++) {
        int v = sextet(alphabet, text[i]);
        if (v < 0)
            return false;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* stray bits: a second spelling of the same bytes */
        return false;
    *out_len = n;
    return true;
}
