/* Order-preserving key encoding for tw_key.h. */
#include "tw_key.h"

#include <string.h>

#define STR_ESCAPE      0x00
#define STR_ESCAPED_NUL 0xff
#define STR_END         0x01

/* Width of each fixed-size part type; 0 for strings. */
static const size_t part_width[] = {
    [TW_KP_ID] = TW_ID_BYTES, [TW_KP_U64] = 8, [TW_KP_I64] = 8, [TW_KP_U32] = 4, [TW_KP_STR] = 0,
};

#define I64_FLIP (UINT64_C(1) << 63)

void tw_key_init(tw_key *k, tw_kf family)
{
    k->family = family;
    k->nparts = 0;
    k->err = TW_OK;
    k->bytes[0] = tw_keyspace_family(family)->prefix;
    k->len = 1;
}

/* Whether part number part of family is of type. */
static bool part_is(tw_kf family, uint8_t part, tw_kp type)
{
    const tw_key_family *f = tw_keyspace_family(family);
    return part < f->nparts && f->parts[part].type == type;
}

/* Claims room for the next part, which must be of type; NULL after an error. */
static uint8_t *key_part(tw_key *k, tw_kp type, size_t size)
{
    if (k->err)
        return NULL;
    if (!part_is(k->family, k->nparts, type)) {
        k->err = TW_ERR_INTERNAL;
        return NULL;
    }
    if (size > TW_KEY_MAX - k->len) {
        k->err = TW_ERR_VALIDATION;
        return NULL;
    }
    uint8_t *p = k->bytes + k->len;
    k->len += size;
    k->nparts++;
    return p;
}

static void key_fixed(tw_key *k, tw_kp type, uint64_t v)
{
    size_t width = part_width[type];
    uint8_t *p = key_part(k, type, width);
    if (p == NULL)
        return;
    for (size_t i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * (width - 1 - i)));
}

void tw_key_u64(tw_key *k, uint64_t v)
{
    key_fixed(k, TW_KP_U64, v);
}
void tw_key_i64(tw_key *k, int64_t v)
{
    key_fixed(k, TW_KP_I64, (uint64_t)v ^ I64_FLIP);
}
void tw_key_u32(tw_key *k, uint32_t v)
{
    key_fixed(k, TW_KP_U32, v);
}

void tw_key_id(tw_key *k, const tw_id *id)
{
    uint8_t *p = key_part(k, TW_KP_ID, TW_ID_BYTES);
    if (p != NULL)
        memcpy(p, id->bytes, TW_ID_BYTES);
}

void tw_key_strn(tw_key *k, const char *s, size_t n)
{
    size_t size = n + 2;
    for (size_t i = 0; i < n; i++)
        size += s[i] == STR_ESCAPE;
    uint8_t *p = key_part(k, TW_KP_STR, size);
    if (p == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        *p++ = (uint8_t)s[i];
        if (s[i] == STR_ESCAPE)
            *p++ = STR_ESCAPED_NUL;
    }
    p[0] = STR_ESCAPE;
    p[1] = STR_END;
}

void tw_key_str(tw_key *k, const char *s)
{
    tw_key_strn(k, s, strlen(s));
}

bool tw_key_complete(const tw_key *k)
{
    return k->err == TW_OK && k->nparts == tw_keyspace_family(k->family)->nparts;
}

void tw_key_read_init(tw_key_reader *r, tw_kf family, const void *bytes, size_t len)
{
    r->bytes = bytes;
    r->len = len;
    r->pos = 1;
    r->family = family;
    r->part = 0;
    r->err = TW_OK;
    if (len < 1 || r->bytes[0] != tw_keyspace_family(family)->prefix)
        r->err = TW_ERR_DB_CORRUPT;
}

/* Length of the encoded string at p (terminator included), or 0 when it is
 * malformed; *decoded gets its decoded length. */
static size_t str_extent(const uint8_t *p, size_t avail, size_t *decoded)
{
    size_t n = 0;
    for (size_t i = 0; i < avail; i++, n++) {
        if (p[i] != STR_ESCAPE)
            continue;
        if (i + 1 >= avail)
            return 0;
        if (p[i + 1] == STR_END) {
            *decoded = n;
            return i + 2;
        }
        if (p[i + 1] != STR_ESCAPED_NUL)
            return 0;
        i++;
    }
    return 0;
}

/* The bytes of the next part, which must be of type, and a step past it;
 * NULL after an error. For a string *decoded gets its decoded length. */
static const uint8_t *read_part(tw_key_reader *r, tw_kp type, size_t *decoded)
{
    if (r->err)
        return NULL;
    if (!part_is(r->family, r->part, type)) {
        r->err = TW_ERR_INTERNAL;
        return NULL;
    }
    const uint8_t *p = r->bytes + r->pos;
    size_t avail = r->len - r->pos;
    size_t extent = part_width[type];
    if (type == TW_KP_STR)
        extent = str_extent(p, avail, decoded);
    if (extent == 0 || extent > avail) {
        r->err = TW_ERR_DB_CORRUPT;
        return NULL;
    }
    r->pos += extent;
    r->part++;
    return p;
}

static uint64_t read_fixed(tw_key_reader *r, tw_kp type)
{
    const uint8_t *p = read_part(r, type, NULL);
    uint64_t v = 0;
    for (size_t i = 0; p != NULL && i < part_width[type]; i++)
        v = v << 8 | p[i];
    return v;
}

void tw_key_read_u64(tw_key_reader *r, uint64_t *out)
{
    *out = read_fixed(r, TW_KP_U64);
}
void tw_key_read_i64(tw_key_reader *r, int64_t *out)
{
    *out = (int64_t)(read_fixed(r, TW_KP_I64) ^ I64_FLIP);
}
void tw_key_read_u32(tw_key_reader *r, uint32_t *out)
{
    *out = (uint32_t)read_fixed(r, TW_KP_U32);
}

void tw_key_read_id(tw_key_reader *r, tw_id *out)
{
    const uint8_t *p = read_part(r, TW_KP_ID, NULL);
    if (p != NULL)
        memcpy(out->bytes, p, TW_ID_BYTES);
}

void tw_key_read_str(tw_key_reader *r, tw_arena *arena, char **out, size_t *len)
{
    size_t n = 0;
    const uint8_t *p = read_part(r, TW_KP_STR, &n);
    *out = NULL;
    if (p == NULL)
        return;
    char *s = tw_arena_alloc(arena, n + 1);
    if (s == NULL) {
        r->err = TW_ERR_NO_MEMORY;
        return;
    }
    for (size_t i = 0, j = 0; j < n; i++, j++) {
        s[j] = (char)p[i];
        i += p[i] == STR_ESCAPE; /* skip the ff of an escaped NUL */
    }
    *out = s;
    if (len != NULL)
        *len = n;
}

tw_err tw_key_validate(const void *bytes, size_t len, tw_kf *family)
{
    tw_kf kf;
    if (len < 1 || !tw_keyspace_find(((const uint8_t *)bytes)[0], &kf))
        return TW_ERR_DB_CORRUPT;
    tw_key_reader r;
    tw_key_read_init(&r, kf, bytes, len);
    const tw_key_family *f = tw_keyspace_family(kf);
    for (uint8_t i = 0; i < f->nparts; i++) {
        size_t decoded;
        read_part(&r, f->parts[i].type, &decoded);
    }
    if (r.err || r.pos != len)
        return TW_ERR_DB_CORRUPT;
    if (family != NULL)
        *family = kf;
    return TW_OK;
}
