/* UUIDv7 generation and text conversion for tw_id.h. */
#include "tw_id.h"

#include "tw_hex.h"
#include "tw_time.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t id_last_ms;
static uint16_t id_counter; /* 12 bits, seeded randomly each new millisecond */

static void random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
}

tw_id tw_id_new(void)
{
    tw_id id;
    random_bytes(id.bytes, sizeof id.bytes);

    pthread_mutex_lock(&id_lock);
    int64_t ms = tw_wall_ms();
    if (ms > id_last_ms) {
        id_last_ms = ms;
        id_counter = (uint16_t)((id.bytes[6] << 8 | id.bytes[7]) & 0x7ff); /* leave headroom */
    } else if (++id_counter > 0xfff) {
        /* 4096 ids in one millisecond: borrow the next millisecond. */
        id_last_ms++;
        id_counter = 0;
    }
    ms = id_last_ms;
    uint16_t counter = id_counter;
    pthread_mutex_unlock(&id_lock);

    for (int i = 0; i < 6; i++)
        id.bytes[i] = (uint8_t)(ms >> (40 - 8 * i));
    id.bytes[6] = (uint8_t)(0x70 | (counter >> 8));
    id.bytes[7] = (uint8_t)counter;
    id.bytes[8] = (uint8_t)(0x80 | (id.bytes[8] & 0x3f));
    return id;
}

void tw_id_format(const tw_id *id, char out[TW_ID_TEXT_SIZE])
{
    const uint8_t *b = id->bytes;
    snprintf(out, TW_ID_TEXT_SIZE,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

bool tw_id_parse(const char *text, tw_id *out)
{
    if (text == NULL || strlen(text) != TW_ID_TEXT_SIZE - 1)
        return false;
    int n = 0;
    for (int i = 0; i < TW_ID_TEXT_SIZE - 1; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return false;
            continue;
        }
        int hi = tw_hex_digit(text[i]), lo = tw_hex_digit(text[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out->bytes[n++] = (uint8_t)(hi << 4 | lo);
        i++;
    }
    return true;
}

int64_t tw_id_unix_ms(const tw_id *id)
{
    int64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | id->bytes[i];
    return ms;
}

bool tw_id_is_v7(const tw_id *id)
{
    return (id->bytes[6] >> 4) == 7 && (id->bytes[8] & 0xc0) == 0x80;
}

bool tw_id_equal(const tw_id *a, const tw_id *b)
{
    return memcmp(a->bytes, b->bytes, TW_ID_BYTES) == 0;
}

bool tw_request_id_valid(const char *p, size_t len)
{
    if (len == 0 || len > TW_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
            (c == '\0' || !strchr("-_.:", c)))
            return false;
    }
    return true;
}
