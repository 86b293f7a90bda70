/* Hexadecimal (tw_hex.h). */
#include "tw_hex.h"

void tw_hex_encode(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

#define DIGIT(c, value) [(unsigned char)(c)] = (value) + 1
const uint8_t tw_hex_digit_plus_one[256] = {
    DIGIT('0', 0),  DIGIT('1', 1),  DIGIT('2', 2),  DIGIT('3', 3),  DIGIT('4', 4),  DIGIT('5', 5),
    DIGIT('6', 6),  DIGIT('7', 7),  DIGIT('8', 8),  DIGIT('9', 9),  DIGIT('a', 10), DIGIT('b', 11),
    DIGIT('c', 12), DIGIT('d', 13), DIGIT('e', 14), DIGIT('f', 15), DIGIT('A', 10), DIGIT('B', 11),
    DIGIT('C', 12), DIGIT('D', 13), DIGIT('E', 14), DIGIT('F', 15),
};
