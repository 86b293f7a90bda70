/*
 * twd's migrations, in order. Add a row at the end; never renumber, edit or
 * remove one that has shipped (databases record them by number).
 *
 * 1 unique_by_owner: lists every unique claim under its owner
 *   (UNIQUE_BY_OWNER), backfilled from the claims (UNIQUE). Claims are keyed
 *   by the claimed value, not by user, so without this list deleting an
 *   account could not find the emails and other values it holds, and they
 *   would stay claimed forever (tw_txn_unique_release_all reads the list).
 *   Down removes the list; the claims themselves are untouched.
 *
 * 2 account_flag_index: lists every disabled account and every admin under
 *   its flag (ACCOUNT_BY_FLAG), backfilled from the accounts (USER), so
 *   AdminService.ListUsers can filter without reading every account;
 *   server/auth/account.c keeps it in step from then on. Down removes it.
 */
#include "tw_migrate.h"

#include "store_internal.h"
#include "tw/store/v1/accounts.pb-c.h"

#include <string.h>

/* Records handed to one transaction of a backfill. */
#define CHUNK 256

typedef tw_err (*row_fn)(tw_txn *t, const uint8_t *key, size_t len, const tw_value *v);

struct chunk {
    row_fn fn;
    size_t count;
    const uint8_t *keys[CHUNK];
    size_t lens[CHUNK];
    tw_value values[CHUNK];
};

static tw_err chunk_apply(tw_txn *t, void *ctx)
{
    const struct chunk *c = ctx;
    tw_err err = TW_OK;
    for (size_t i = 0; err == TW_OK && i < c->count; i++)
        err = c->fn(t, c->keys[i], c->lens[i], &c->values[i]);
    return err;
}

/* Reads up to CHUNK records of family after the cursor into c (in arena). */
static tw_err chunk_read(tw_store *s, tw_kf family, const uint8_t *after, size_t after_len,
                         tw_arena *arena, struct chunk *c)
{
    tw_key prefix;
    tw_key_init(&prefix, family);
    tw_store_iter *it;
    tw_err err = tw_store_scan(s, &prefix, after, after_len, false, &it);
    c->count = 0;
    while (err == TW_OK && c->count < CHUNK && tw_store_iter_next(it)) {
        const uint8_t *key;
        size_t len;
        tw_store_iter_key(it, &key, &len);
        uint8_t *copy = tw_arena_alloc(arena, len);
        if (copy == NULL) {
            err = TW_ERR_NO_MEMORY;
            break;
        }
        memcpy(copy, key, len);
        c->keys[c->count] = copy;
        c->lens[c->count] = len;
        err = tw_store_iter_value(it, arena, &c->values[c->count++]);
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}

/* Calls fn on every record of family, CHUNK records per transaction. */
static tw_err each_record(tw_store *s, tw_kf family, row_fn fn)
{
    struct chunk c; /* 12 KiB */
    uint8_t after[TW_KEY_MAX];
    size_t after_len = 0;
    tw_err err = TW_OK;
    c.fn = fn;
    do {
        tw_arena *arena = tw_arena_new(64 * 1024);
        if (arena == NULL)
            return TW_ERR_NO_MEMORY;
        if ((err = chunk_read(s, family, after, after_len, arena, &c)) == TW_OK && c.count > 0) {
            err = tw_txn_run(s, chunk_apply, &c);
            after_len = c.lens[c.count - 1];
            memcpy(after, c.keys[c.count - 1], after_len);
        }
        tw_arena_free(arena);
    } while (err == TW_OK && c.count == CHUNK);
    return err;
}

/* Migration 1. */

static tw_err owner_index_put(tw_txn *t, const uint8_t *key, size_t len, const tw_value *v)
{
    tw_key_reader r;
    char *space, *value;
    tw_key_read_init(&r, TW_KF_UNIQUE, key, len);
    tw_key_read_str(&r, t->arena, &space, NULL);
    tw_key_read_str(&r, t->arena, &value, NULL);
    if (r.err)
        return store_fail(r.err, "bad unique claim key");
    tw_key k;
    store_unique_owner_key(&k, &v->id, space, value);
    return tw_txn_put(t, &k, NULL);
}

static tw_err owner_index_delete(tw_txn *t, const uint8_t *key, size_t len, const tw_value *v)
{
    tw_key_reader r;
    tw_id owner;
    char *space, *value;
    tw_key_read_init(&r, TW_KF_UNIQUE_BY_OWNER, key, len);
    tw_key_read_id(&r, &owner);
    tw_key_read_str(&r, t->arena, &space, NULL);
    tw_key_read_str(&r, t->arena, &value, NULL);
    if (r.err)
        return store_fail(r.err, "bad unique-by-owner key");
    tw_key k;
    store_unique_owner_key(&k, &owner, space, value);
    return tw_txn_delete(t, &k);
}

static tw_err unique_by_owner_up(tw_store *s)
{
    return each_record(s, TW_KF_UNIQUE, owner_index_put);
}

static tw_err unique_by_owner_down(tw_store *s)
{
    return each_record(s, TW_KF_UNIQUE_BY_OWNER, owner_index_delete);
}

/* Migration 2. The flag names are server/auth/account.h's. */

static tw_err flag_index_put(tw_txn *t, const uint8_t *key, size_t len, const tw_value *v)
{
    const Tw__Store__V1__Account *a = (const Tw__Store__V1__Account *)v->msg;
    if (a->id.len != TW_ID_BYTES)
        return store_fail(TW_ERR_DB_CORRUPT, "account record without an id");
    tw_id user;
    memcpy(user.bytes, a->id.data, TW_ID_BYTES);
    const struct {
        const char *flag;
        bool set;
    } flags[] = {{"disabled", a->disabled}, {"admin", strcmp(a->role, "admin") == 0}};
    tw_err err = TW_OK;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0] && !err; i++) {
        tw_key k;
        tw_key_init(&k, TW_KF_ACCOUNT_BY_FLAG);
        tw_key_str(&k, flags[i].flag);
        tw_key_id(&k, &user);
        err = flags[i].set ? tw_txn_put(t, &k, NULL) : tw_txn_delete(t, &k);
    }
    return err;
}

static tw_err flag_index_delete(tw_txn *t, const uint8_t *key, size_t len, const tw_value *v)
{
    tw_key k = {.family = TW_KF_ACCOUNT_BY_FLAG, .len = len};
    memcpy(k.bytes, key, len);
    k.nparts = tw_keyspace_family(TW_KF_ACCOUNT_BY_FLAG)->nparts;
    return tw_txn_delete(t, &k);
}

static tw_err account_flag_index_up(tw_store *s)
{
    return each_record(s, TW_KF_USER, flag_index_put);
}

static tw_err account_flag_index_down(tw_store *s)
{
    return each_record(s, TW_KF_ACCOUNT_BY_FLAG, flag_index_delete);
}

static const tw_migration rows[] = {
    {1, "unique_by_owner", unique_by_owner_up, unique_by_owner_down},
    {2, "account_flag_index", account_flag_index_up, account_flag_index_down},
};

const tw_migration_set tw_store_migrations = {rows, sizeof rows / sizeof rows[0]};
