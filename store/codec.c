/*
 * Value codecs: how each value type of tw_keyspace.h is stored, one row
 * per type. Decoding never trusts the bytes: a value of the wrong size or
 * that protobuf-c cannot parse is TW_ERR_DB_CORRUPT, never a crash. Messages
 * are decoded into the caller's arena, so they die with the call; protobuf
 * readers skip fields they do not know and leave absent ones at zero.
 */
#include "store_internal.h"

#include <string.h>

#define U64_BYTES 8

/* protobuf-c's unpack answers NULL both for bytes it cannot parse and for
 * an allocation that failed: the allocator remembers the latter, so running
 * out of memory is not reported as a corrupt store. */
struct pb_arena {
    tw_arena *arena;
    bool out_of_memory;
};

static void *arena_pb_alloc(void *ctx, size_t size)
{
    struct pb_arena *a = ctx;
    void *p = tw_arena_alloc(a->arena, size ? size : 1);
    if (p == NULL)
        a->out_of_memory = true;
    return p;
}
static void arena_pb_free(void *ctx, void *ptr)
{
    (void)ctx, (void)ptr;
}

static tw_err none_encode(const tw_key_family *f, const tw_value *v, tw_arena *arena,
                          uint8_t **bytes, size_t *len)
{
    *bytes = (uint8_t *)"";
    *len = 0;
    return TW_OK;
}

static tw_err none_decode(const tw_key_family *f, const uint8_t *bytes, size_t len, tw_arena *arena,
                          tw_value *out)
{
    return len == 0 ? TW_OK : TW_ERR_DB_CORRUPT;
}

static tw_err msg_encode(const tw_key_family *f, const tw_value *v, tw_arena *arena,
                         uint8_t **bytes, size_t *len)
{
    if (v == NULL || v->msg == NULL || v->msg->descriptor != f->descriptor)
        return store_fail(TW_ERR_INTERNAL, "%s: value is not a %s", f->name, f->descriptor->name);
    *len = protobuf_c_message_get_packed_size(v->msg);
    *bytes = tw_arena_alloc(arena, *len ? *len : 1);
    if (*bytes == NULL)
        return TW_ERR_NO_MEMORY;
    protobuf_c_message_pack(v->msg, *bytes);
    return TW_OK;
}

static tw_err msg_decode(const tw_key_family *f, const uint8_t *bytes, size_t len, tw_arena *arena,
                         tw_value *out)
{
    struct pb_arena a = {arena, false};
    ProtobufCAllocator alloc = {arena_pb_alloc, arena_pb_free, &a};
    out->msg = protobuf_c_message_unpack(f->descriptor, &alloc, len, bytes);
    if (out->msg != NULL)
        return TW_OK;
    return a.out_of_memory ? TW_ERR_NO_MEMORY : TW_ERR_DB_CORRUPT;
}

/* Little-endian, as RocksDB's uint64add merge operator reads and writes. */
static tw_err u64_encode(const tw_key_family *f, const tw_value *v, tw_arena *arena,
                         uint8_t **bytes, size_t *len)
{
    uint8_t *p = tw_arena_alloc(arena, U64_BYTES);
    if (p == NULL)
        return TW_ERR_NO_MEMORY;
    for (int i = 0; i < U64_BYTES; i++)
        p[i] = (uint8_t)(v->u64 >> (8 * i));
    *bytes = p;
    *len = U64_BYTES;
    return TW_OK;
}

static tw_err u64_decode(const tw_key_family *f, const uint8_t *bytes, size_t len, tw_arena *arena,
                         tw_value *out)
{
    if (len != U64_BYTES)
        return TW_ERR_DB_CORRUPT;
    out->u64 = 0;
    for (int i = U64_BYTES - 1; i >= 0; i--)
        out->u64 = out->u64 << 8 | bytes[i];
    return TW_OK;
}

static tw_err id_encode(const tw_key_family *f, const tw_value *v, tw_arena *arena, uint8_t **bytes,
                        size_t *len)
{
    *bytes = (uint8_t *)v->id.bytes;
    *len = TW_ID_BYTES;
    return TW_OK;
}

static tw_err id_decode(const tw_key_family *f, const uint8_t *bytes, size_t len, tw_arena *arena,
                        tw_value *out)
{
    if (len != TW_ID_BYTES)
        return TW_ERR_DB_CORRUPT;
    memcpy(out->id.bytes, bytes, TW_ID_BYTES);
    return TW_OK;
}

static const struct {
    tw_err (*encode)(const tw_key_family *f, const tw_value *v, tw_arena *arena, uint8_t **bytes,
                     size_t *len);
    tw_err (*decode)(const tw_key_family *f, const uint8_t *bytes, size_t len, tw_arena *arena,
                     tw_value *out);
} codecs[] = {
    [TW_VAL_NONE] = {none_encode, none_decode},
    [TW_VAL_MSG] = {msg_encode, msg_decode},
    [TW_VAL_U64] = {u64_encode, u64_decode},
    [TW_VAL_ID] = {id_encode, id_decode},
};

tw_err store_value_encode(const tw_key_family *f, const tw_value *v, tw_arena *arena,
                          uint8_t **bytes, size_t *len)
{
    if (v == NULL && f->value != TW_VAL_NONE)
        return store_fail(TW_ERR_INTERNAL, "%s: no value given", f->name);
    return codecs[f->value].encode(f, v, arena, bytes, len);
}

tw_err store_value_decode(const tw_key_family *f, const void *bytes, size_t len, tw_arena *arena,
                          tw_value *out)
{
    tw_err err = codecs[f->value].decode(f, bytes, len, arena, out);
    if (err == TW_ERR_DB_CORRUPT)
        store_fail(err, "%s: stored value of %zu bytes does not decode", f->name, len);
    return err;
}
