/* UUIDv7 generation and text conversion for tw_id.h. */
#include "tw_id.h"

#include "tw_hex.h"
#include "tw_time.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>

/* The last id's millisecond and counter: ms << 12 | counter, the counter
 * 12 bits, seeded randomly each new millisecond. Changed by compare and
 * swap: ids are made on every call (request ids), and a lock here was a
 * lock every call took. */
static _Atomic uint64_t id_state;

#define COUNTER_BITS 12
#define COUNTER_MAX  ((1u << COUNTER_BITS) - 1)

static void getrandom_all(uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
}

/* The kernel's random bytes, drawn a pool at a time per thread: one system
 * call per 32 ids rather than one per id (a request id per call made
 * getrandom(2) ~5 % of a Health/Check). Ids are not secrets, and twd never
 * forks, so no two processes hand out the same pool. */
#define RANDOM_POOL 512
static _Thread_local uint8_t random_pool[RANDOM_POOL];
static _Thread_local size_t random_left;

static void random_bytes(uint8_t *buf, size_t len)
{
    if (random_left < len) {
        getrandom_all(random_pool, RANDOM_POOL);
        random_left = RANDOM_POOL;
    }
    memcpy(buf, random_pool + RANDOM_POOL - random_left, len);
    random_left -= len;
}

tw_id tw_id_new(void)
{
    tw_id id;
    random_bytes(id.bytes, sizeof id.bytes);

    int64_t now = tw_wall_ms();
    uint64_t seed = (uint64_t)((id.bytes[6] << 8 | id.bytes[7]) & 0x7ff); /* leave headroom */
    uint64_t old = atomic_load(&id_state), next;
    do {
        uint64_t last_ms = old >> COUNTER_BITS;
        if ((uint64_t)now > last_ms)
            next = (uint64_t)now << COUNTER_BITS | seed;
        else if ((old & COUNTER_MAX) < COUNTER_MAX)
            next = old + 1;
        else /* 4096 ids in one millisecond: borrow the next millisecond. */
            next = (last_ms + 1) << COUNTER_BITS;
    } while (!atomic_compare_exchange_weak(&id_state, &old, next));
    int64_t ms = (int64_t)(next >> COUNTER_BITS);
    uint16_t counter = (uint16_t)(next & COUNTER_MAX);

    for (int i = 0; i < 6; i++)
        id.bytes[i] = (uint8_t)(ms >> (40 - 8 * i));
    id.bytes[6] = (uint8_t)(0x70 | (counter >> 8));
    id.bytes[7] = (uint8_t)counter;
    id.bytes[8] = (uint8_t)(0x80 | (id.bytes[8] & 0x3f));
    return id;
}

/* The 8-4-4-4-12 groups of hex digits; snprintf cost as much as the rest
 * of a Health/Check call's own work. */
void tw_id_format(const tw_id *id, char out[TW_ID_TEXT_SIZE])
{
    static const uint8_t groups[] = {4, 2, 2, 2, 6};
    const uint8_t *b = id->bytes;
    char *p = out;
    for (size_t g = 0; g < sizeof groups; g++) {
        if (g > 0)
            *p++ = '-';
        tw_hex_encode(b, groups[g], p); /* and a NUL, overwritten by the next group */
        b += groups[g];
        p += 2 * groups[g];
    }
}

bool tw_id_parse(const char *text, tw_id *out)
{
    /* Where each byte's two digits start in the text. */
    static const uint8_t at[TW_ID_BYTES] = {0,  2,  4,  6,  9,  11, 14, 16,
                                            19, 21, 24, 26, 28, 30, 32, 34};
    if (text == NULL || strnlen(text, TW_ID_TEXT_SIZE) != TW_ID_TEXT_SIZE - 1 || text[8] != '-' ||
        text[13] != '-' || text[18] != '-' || text[23] != '-')
        return false;
    for (int i = 0; i < TW_ID_BYTES; i++) {
        int hi = tw_hex_digit(text[at[i]]), lo = tw_hex_digit(text[at[i] + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out->bytes[i] = (uint8_t)(hi << 4 | lo);
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
