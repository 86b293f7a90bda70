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
 * 2 email_case_insensitive: addresses became case-insensitive (issue 16):
 *   each active account's claim in the "email" space moves from the spelling
 *   it registered with (the local part's case kept) to the normal form
 *   server/auth/account.c now claims (the whole address in lower case).
 *   Accounts whose addresses differ only by case collide: the oldest
 *   (create time, then id) gets the normal form and signs in with any
 *   spelling; each other one is listed, with its exact address, in an
 *   EmailCaseCollision under the normal form, keeps signing in with exactly
 *   that address, and nothing of it is lost. Each collision is logged (a
 *   warn line "email case collision") and `twd migrate status` lists those
 *   still open, so an operator can resolve them (one of the accounts is
 *   deleted; deleting the holder passes the address to the oldest listed).
 *   Down claims every account's own spelling again and drops the lists.
 * 3 account_flag_index: lists every disabled account and every admin under
 *   its flag (ACCOUNT_BY_FLAG), backfilled from the accounts (USER), so
 *   AdminService.ListUsers can filter without reading every account;
 *   server/auth/account.c keeps it in step from then on. Down removes it.
 * 4 wellness_records: health log entries, focus templates and focus
 *   sessions (HEALTH_LOG, FOCUS_TEMPLATE, FOCUS_SESSION) were stored as the
 *   API messages themselves (tw.v1.HealthLog, FocusTemplate, FocusSession);
 *   now as tw.store.v1 records that wrap them in field 1, as every other
 *   entity is, so that the API can change without a data migration. Up
 *   wraps each value, down unwraps it; both work on the bytes (a record of
 *   one field is that field's tag and length before the message), so no
 *   field is decoded, lost or reordered, and each leaves alone a value
 *   already in the form it makes.
 * 5 voice_request_index_retired: an upload's request_id is remembered by
 *   the service kit (server/kit/kit.h: the answer and a hash of the
 *   metadata, in REQUEST), as every request_id is, so the voice notes' own
 *   index from request_id to note (VOICE_NOTE_BY_REQUEST) is deleted. Its
 *   entries hold no hash of what the upload sent, so they cannot become
 *   the kit's records: a retry of an upload stored before this migration
 *   stores a second note. Down rebuilds the index from the notes'
 *   request_id.
 */
#include "tw_migrate.h"

#include "store_internal.h"
#include "tw/store/v1/accounts.pb-c.h"
#include "tw/store/v1/voice_records.pb-c.h"
#include "tw_log.h"
#include "tw_unique.h"

#include <stdio.h>
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

/* Migration 2. */

/* server/auth/account.h's TW_EMAIL_SPACE. */
#define EMAIL_SPACE "email"

/* The normal form as migration 2 defines it: the stored address (already
 * trimmed, its domain in lower case) with every ASCII letter in lower case.
 * tw_email_normalise applies the same rule to new addresses; the migration
 * keeps its own copy so that it means the same whatever that becomes. */
static char *email_fold(tw_arena *arena, const char *email)
{
    char *out = tw_arena_strdup(arena, email);
    for (char *p = out; p != NULL && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return out;
}

/* The active account of a USER record, with its id and normal form; false
 * for one that is being deleted (its address is already free). */
static bool active_account(tw_txn *t, const tw_value *v, const Tw__Store__V1__Account **a,
                           tw_id *id, char **normal, tw_err *err)
{
    *a = (const void *)v->msg;
    *err = TW_OK;
    if ((*a)->state != TW__STORE__V1__ACCOUNT_STATE__ACCOUNT_STATE_ACTIVE)
        return false;
    if ((*a)->id.len != TW_ID_BYTES) {
        *err = store_fail(TW_ERR_DB_CORRUPT, "account without an id");
        return false;
    }
    memcpy(id->bytes, (*a)->id.data, TW_ID_BYTES);
    if ((*normal = email_fold(t->arena, (*a)->email)) == NULL) {
        *err = TW_ERR_NO_MEMORY;
        return false;
    }
    return true;
}

/* Created before b (then by id): the older keeps the address. */
static bool older(const Tw__Store__V1__Account *a, const Tw__Store__V1__Account *b)
{
    if (a->create_unix_ms != b->create_unix_ms)
        return a->create_unix_ms < b->create_unix_ms;
    return memcmp(a->id.data, b->id.data, TW_ID_BYTES) < 0;
}

static void collision_key(tw_key *k, const char *normal)
{
    tw_key_init(k, TW_KF_EMAIL_CASE_COLLISION);
    tw_key_str(k, normal);
}

/* Lists loser under normal (oldest first, once), as holder keeps it. */
static tw_err collision_add(tw_txn *t, const char *normal, const Tw__Store__V1__Account *loser,
                            const tw_id *holder)
{
    tw_key k;
    tw_value v;
    collision_key(&k, normal);
    tw_err err = tw_txn_get_for_update(t, &k, t->arena, &v);
    if (err && err != TW_ERR_NOT_FOUND)
        return err;
    Tw__Store__V1__EmailCaseCollision empty = TW__STORE__V1__EMAIL_CASE_COLLISION__INIT;
    Tw__Store__V1__EmailCaseCollision *c = err ? &empty : (void *)v.msg;
    size_t at = 0;
    for (size_t i = 0; i < c->n_accounts; i++) {
        const Tw__Store__V1__CaseCollidingAccount *e = c->accounts[i];
        if (e->user_id.len == TW_ID_BYTES &&
            memcmp(e->user_id.data, loser->id.data, TW_ID_BYTES) == 0)
            return TW_OK; /* listed by an earlier run */
        if (e->create_unix_ms < loser->create_unix_ms ||
            (e->create_unix_ms == loser->create_unix_ms &&
             memcmp(e->user_id.data, loser->id.data, TW_ID_BYTES) < 0))
            at = i + 1;
    }
    Tw__Store__V1__CaseCollidingAccount entry = TW__STORE__V1__CASE_COLLIDING_ACCOUNT__INIT;
    entry.user_id = loser->id;
    entry.email = loser->email;
    entry.create_unix_ms = loser->create_unix_ms;
    Tw__Store__V1__CaseCollidingAccount **list =
        tw_arena_alloc(t->arena, (c->n_accounts + 1) * sizeof *list);
    if (list == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0, j = 0; i <= c->n_accounts; i++)
        list[i] = i == at ? &entry : c->accounts[j++];
    c->accounts = list;
    c->n_accounts++;
    if ((err = tw_txn_put(t, &k, &(tw_value){.msg = &c->base})))
        return err;
    char loser_id[TW_ID_TEXT_SIZE], holder_id[TW_ID_TEXT_SIZE];
    tw_id loser_uid;
    memcpy(loser_uid.bytes, loser->id.data, TW_ID_BYTES);
    tw_id_format(&loser_uid, loser_id);
    tw_id_format(holder, holder_id);
    tw_log(TW_LOG_WARN, "email case collision",
           json_pack("{s:s, s:s, s:s, s:s}", "email", normal, "kept_by", holder_id, "user_id",
                     loser_id, "signs_in_only_as", loser->email));
    return TW_OK;
}

/* Releases a claim owner may hold; absent is fine (an earlier run did it). */
static tw_err release_if_held(tw_txn *t, const char *value, const tw_id *owner)
{
    tw_err err = tw_txn_unique_release(t, EMAIL_SPACE, value, owner);
    return err == TW_ERR_NOT_FOUND ? TW_OK : err;
}

/* Who holds value in the email space, read for update. */
static tw_err claim_owner(tw_txn *t, const char *value, tw_id *owner)
{
    tw_key k;
    tw_value v;
    tw_key_init(&k, TW_KF_UNIQUE);
    tw_key_str(&k, EMAIL_SPACE);
    tw_key_str(&k, value);
    tw_err err = tw_txn_get_for_update(t, &k, t->arena, &v);
    if (!err)
        *owner = v.id;
    return err;
}

static tw_err claim_normal_form(tw_txn *t, const uint8_t *key, size_t len, const tw_value *v)
{
    (void)key, (void)len;
    const Tw__Store__V1__Account *a;
    tw_id id, other_id;
    char *normal;
    tw_err err;
    if (!active_account(t, v, &a, &id, &normal, &err))
        return err;
    err = tw_txn_unique_claim(t, EMAIL_SPACE, normal, &id);
    if (err == TW_ERR_ALREADY_EXISTS && (err = claim_owner(t, normal, &other_id)) == TW_OK) {
        tw_key k;
        tw_value ov;
        tw_key_init(&k, TW_KF_USER);
        tw_key_id(&k, &other_id);
        if ((err = tw_txn_get_for_update(t, &k, t->arena, &ov)))
            return err == TW_ERR_NOT_FOUND
                       ? store_fail(TW_ERR_DB_CORRUPT, "email claim of a missing account")
                       : err;
        const Tw__Store__V1__Account *other = (const void *)ov.msg;
        bool other_active = other->state == TW__STORE__V1__ACCOUNT_STATE__ACCOUNT_STATE_ACTIVE;
        if (!other_active || older(a, other)) { /* a takes the address; other is listed */
            if ((err = tw_txn_unique_release(t, EMAIL_SPACE, normal, &other_id)) ||
                (err = tw_txn_unique_claim(t, EMAIL_SPACE, normal, &id)) ||
                (other_active && (err = collision_add(t, normal, other, &id))))
                return err;
        } else if ((err = collision_add(t, normal, a, &other_id))) {
            return err;
        }
    }
    if (err || strcmp(normal, a->email) == 0)
        return err;
    return release_if_held(t, a->email, &id);
}

/* Down, first the accounts whose spelling is not the normal form (they free
 * it), then those whose spelling is (they claim it back). */
static tw_err reclaim_spelling(tw_txn *t, const tw_value *v, bool spelled_normally)
{
    const Tw__Store__V1__Account *a;
    tw_id id;
    char *normal;
    tw_err err;
    if (!active_account(t, v, &a, &id, &normal, &err) ||
        (strcmp(normal, a->email) == 0) != spelled_normally)
        return err;
    if (!spelled_normally && (err = release_if_held(t, normal, &id)))
        return err;
    return tw_txn_unique_claim(t, EMAIL_SPACE, a->email, &id);
}

static tw_err reclaim_other_spelling(tw_txn *t, const uint8_t *key, size_t len, const tw_value *v)
{
    (void)key, (void)len;
    return reclaim_spelling(t, v, false);
}

static tw_err reclaim_normal_spelling(tw_txn *t, const uint8_t *key, size_t len, const tw_value *v)
{
    (void)key, (void)len;
    return reclaim_spelling(t, v, true);
}

static tw_err collision_delete(tw_txn *t, const uint8_t *key, size_t len, const tw_value *v)
{
    (void)v;
    tw_key_reader r;
    char *normal;
    tw_key_read_init(&r, TW_KF_EMAIL_CASE_COLLISION, key, len);
    tw_key_read_str(&r, t->arena, &normal, NULL);
    if (r.err)
        return store_fail(r.err, "bad email case collision key");
    tw_key k;
    collision_key(&k, normal);
    return tw_txn_delete(t, &k);
}

static tw_err email_case_insensitive_up(tw_store *s)
{
    return each_record(s, TW_KF_USER, claim_normal_form);
}

static tw_err email_case_insensitive_down(tw_store *s)
{
    tw_err err = each_record(s, TW_KF_USER, reclaim_other_spelling);
    if (!err)
        err = each_record(s, TW_KF_USER, reclaim_normal_spelling);
    return err ? err : each_record(s, TW_KF_EMAIL_CASE_COLLISION, collision_delete);
}

/* One line per account still listed in a collision. */
tw_err tw_store_migration_notes(tw_store *s, tw_migration_line_fn *line, void *ctx)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_EMAIL_CASE_COLLISION);
    tw_store_iter *it;
    tw_arena *arena = tw_arena_new(4096);
    tw_err err = arena ? tw_store_scan(s, &prefix, NULL, 0, false, &it) : TW_ERR_NO_MEMORY;
    if (err) {
        tw_arena_free(arena);
        return err;
    }
    while (err == TW_OK && tw_store_iter_next(it)) {
        tw_key_reader r;
        char *normal, holder_id[TW_ID_TEXT_SIZE] = "nobody", text[1024];
        tw_value v;
        tw_id holder, id;
        tw_store_iter_read_key(it, &r);
        tw_key_read_str(&r, arena, &normal, NULL);
        if (r.err || (err = tw_store_iter_value(it, arena, &v))) {
            err = err ? err : store_fail(r.err, "bad email case collision key");
            break;
        }
        if (tw_store_unique_lookup(s, EMAIL_SPACE, normal, &holder) == TW_OK)
            tw_id_format(&holder, holder_id);
        const Tw__Store__V1__EmailCaseCollision *c = (const void *)v.msg;
        for (size_t i = 0; i < c->n_accounts; i++) {
            if (c->accounts[i]->user_id.len != TW_ID_BYTES)
                continue;
            char user_id[TW_ID_TEXT_SIZE];
            memcpy(id.bytes, c->accounts[i]->user_id.data, TW_ID_BYTES);
            tw_id_format(&id, user_id);
            snprintf(text, sizeof text,
                     "email case collision: %s belongs to user %s; user %s signs in only as %s",
                     normal, holder_id, user_id, c->accounts[i]->email);
            line(ctx, text);
        }
    }
    tw_err close_err = tw_store_iter_close(it);
    tw_arena_free(arena);
    return err ? err : close_err;
}

/* Migration 3. The flag names are server/auth/account.h's. */

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

/* Migration 4. */

/* Makes the new form of one value in arena, or *out NULL when the value is
 * in that form already. */
typedef tw_err (*rewrite_fn)(const uint8_t *value, size_t len, tw_arena *arena, uint8_t **out,
                             size_t *out_len);

struct rewrite_chunk {
    const tw_key_family *family;
    size_t count;
    const uint8_t *keys[CHUNK], *values[CHUNK];
    size_t key_lens[CHUNK], value_lens[CHUNK];
};

/* Puts the chunk's bytes as they are: the family's codec would refuse a
 * value of the other form. */
static tw_err rewrite_put(tw_txn *t, void *ctx)
{
    const struct rewrite_chunk *c = ctx;
    for (size_t i = 0; i < c->count; i++) {
        char *rerr = NULL;
        rocksdb_transaction_put_cf(t->rtx, t->store->cf[c->family->cf], (const char *)c->keys[i],
                                   c->key_lens[i], (const char *)c->values[i], c->value_lens[i],
                                   &rerr);
        if (rerr != NULL)
            return store_rocks_error(rerr, c->family->name);
    }
    return TW_OK;
}

/* Rewrites the values of family that fn changes, CHUNK per transaction,
 * reading the raw bytes (the family's codec expects the new form). */
static tw_err rewrite_family(tw_store *s, tw_kf family, rewrite_fn fn)
{
    struct rewrite_chunk c = {.family = tw_keyspace_family(family)}; /* 16 KiB */
    uint8_t lower = c.family->prefix, upper = (uint8_t)(c.family->prefix + 1); /* never 0xff */
    rocksdb_readoptions_t *ropts = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ropts, (const char *)&upper, 1);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ropts, s->cf[c.family->cf]);
    tw_arena *arena = NULL;
    tw_err err = TW_OK;
    for (rocksdb_iter_seek(it, (const char *)&lower, 1); err == TW_OK && rocksdb_iter_valid(it);) {
        if (arena == NULL && (arena = tw_arena_new(64 * 1024)) == NULL) {
            err = TW_ERR_NO_MEMORY;
            break;
        }
        size_t key_len, value_len, out_len;
        const char *key = rocksdb_iter_key(it, &key_len);
        const char *value = rocksdb_iter_value(it, &value_len);
        uint8_t *out, *key_copy;
        if ((err = fn((const uint8_t *)value, value_len, arena, &out, &out_len)))
            break;
        if (out != NULL) {
            if ((key_copy = tw_arena_alloc(arena, key_len)) == NULL) {
                err = TW_ERR_NO_MEMORY;
                break;
            }
            memcpy(key_copy, key, key_len);
            c.keys[c.count] = key_copy;
            c.key_lens[c.count] = key_len;
            c.values[c.count] = out;
            c.value_lens[c.count++] = out_len;
        }
        rocksdb_iter_next(it);
        if (c.count == CHUNK || (c.count > 0 && !rocksdb_iter_valid(it))) {
            err = tw_txn_run(s, rewrite_put, &c);
            c.count = 0;
            tw_arena_free(arena);
            arena = NULL;
        }
    }
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    if (rerr != NULL && err == TW_OK)
        err = store_rocks_error(rerr, c.family->name);
    else
        rocksdb_free(rerr);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ropts);
    tw_arena_free(arena);
    return err;
}

/* An API message as these families stored it begins with its id: field 1
 * (tag 0x0a), 36 bytes of UUID text. A record begins with field 1 too, the
 * whole message, which holds that id and so is longer than 36 bytes. */
#define ID_FIELD_TAG 0x0a
static bool api_message(const uint8_t *value, size_t len)
{
    char text[TW_ID_TEXT_SIZE];
    tw_id id;
    if (len < 2 + TW_ID_TEXT_SIZE - 1 || value[0] != ID_FIELD_TAG ||
        value[1] != TW_ID_TEXT_SIZE - 1)
        return false;
    memcpy(text, value + 2, TW_ID_TEXT_SIZE - 1);
    text[TW_ID_TEXT_SIZE - 1] = '\0';
    return tw_id_parse(text, &id);
}

/* The record of one field 1 holding the message value. */
static tw_err wrap(const uint8_t *value, size_t len, tw_arena *arena, uint8_t **out,
                   size_t *out_len)
{
    *out = NULL;
    if (!api_message(value, len))
        return TW_OK;
    uint8_t head[1 + 10];
    size_t n = 0;
    head[n++] = ID_FIELD_TAG; /* field 1, length-delimited */
    for (uint64_t rest = len; n == 1 || rest > 0; rest >>= 7)
        head[n++] = (uint8_t)((rest & 0x7f) | (rest > 0x7f ? 0x80 : 0));
    if ((*out = tw_arena_alloc(arena, n + len)) == NULL)
        return TW_ERR_NO_MEMORY;
    memcpy(*out, head, n);
    memcpy(*out + n, value, len);
    *out_len = n + len;
    return TW_OK;
}

/* The message in field 1 of a record (the record has nothing else). */
static tw_err unwrap(const uint8_t *value, size_t len, tw_arena *arena, uint8_t **out,
                     size_t *out_len)
{
    *out = NULL;
    if (api_message(value, len))
        return TW_OK;
    uint64_t field_len = 0;
    size_t n = 1;
    bool ended = false;
    for (int shift = 0; !ended && n < len && shift < 64; shift += 7) {
        field_len |= (uint64_t)(value[n] & 0x7f) << shift;
        ended = !(value[n++] & 0x80);
    }
    if (len == 0 || value[0] != ID_FIELD_TAG || !ended || field_len != len - n)
        return store_fail(TW_ERR_DB_CORRUPT, "a wellness record is not one message in field 1");
    /* The value is the iterator's until it moves. */
    if ((*out = tw_arena_alloc(arena, field_len + 1)) == NULL)
        return TW_ERR_NO_MEMORY;
    memcpy(*out, value + n, field_len);
    *out_len = field_len;
    return TW_OK;
}

static const tw_kf wellness_families[] = {TW_KF_HEALTH_LOG, TW_KF_FOCUS_TEMPLATE,
                                          TW_KF_FOCUS_SESSION};

static tw_err rewrite_wellness(tw_store *s, rewrite_fn fn)
{
    tw_err err = TW_OK;
    for (size_t i = 0; err == TW_OK && i < sizeof wellness_families / sizeof *wellness_families; i++)
        err = rewrite_family(s, wellness_families[i], fn);
    return err;
}

static tw_err wellness_records_up(tw_store *s)
{
    return rewrite_wellness(s, wrap);
}

static tw_err wellness_records_down(tw_store *s)
{
    return rewrite_wellness(s, unwrap);
}

/* Migration 5. */

static tw_err voice_request_entry_delete(tw_txn *t, const uint8_t *key, size_t len,
                                         const tw_value *v)
{
    (void)v;
    tw_key k = {.family = TW_KF_VOICE_NOTE_BY_REQUEST, .len = len};
    memcpy(k.bytes, key, len);
    k.nparts = tw_keyspace_family(TW_KF_VOICE_NOTE_BY_REQUEST)->nparts;
    return tw_txn_delete(t, &k);
}

static tw_err voice_request_entry_put(tw_txn *t, const uint8_t *key, size_t len, const tw_value *v)
{
    const Tw__Store__V1__VoiceNoteRecord *rec = (const Tw__Store__V1__VoiceNoteRecord *)v->msg;
    if (rec->note == NULL || rec->note->request_id[0] == '\0')
        return TW_OK;
    tw_key_reader r;
    tw_id user, note;
    tw_key_read_init(&r, TW_KF_VOICE_NOTE, key, len);
    tw_key_read_id(&r, &user);
    tw_key_read_id(&r, &note);
    if (r.err)
        return store_fail(r.err, "bad voice note key");
    tw_key k;
    tw_key_init(&k, TW_KF_VOICE_NOTE_BY_REQUEST);
    tw_key_id(&k, &user);
    tw_key_str(&k, rec->note->request_id);
    return tw_txn_put(t, &k, &(tw_value){.id = note});
}

static tw_err voice_request_index_retired_up(tw_store *s)
{
    return each_record(s, TW_KF_VOICE_NOTE_BY_REQUEST, voice_request_entry_delete);
}

static tw_err voice_request_index_retired_down(tw_store *s)
{
    return each_record(s, TW_KF_VOICE_NOTE, voice_request_entry_put);
}

static const tw_migration rows[] = {
    {1, "unique_by_owner", unique_by_owner_up, unique_by_owner_down},
    {2, "email_case_insensitive", email_case_insensitive_up, email_case_insensitive_down},
    {3, "account_flag_index", account_flag_index_up, account_flag_index_down},
    {4, "wellness_records", wellness_records_up, wellness_records_down},
    {5, "voice_request_index_retired", voice_request_index_retired_up,
     voice_request_index_retired_down},
};

const tw_migration_set tw_store_migrations = {rows, sizeof rows / sizeof rows[0]};
