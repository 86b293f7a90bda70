/* Sessions and their tokens for session.h. */
#include "session.h"

#include "account.h"
#include "tw_base64.h"
#include "tw_page.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_PREFIX "rt1."
#define BODY_BYTES   (2 * TW_ID_BYTES + 4)
#define TOKEN_BYTES  (BODY_BYTES + TW_REFRESH_MAC_BYTES)
#define KEY_BYTES    32

void tw_session_key(tw_key *k, const tw_id *user, const tw_id *session)
{
    tw_key_init(k, TW_KF_SESSION);
    tw_key_id(k, user);
    tw_key_id(k, session);
}

static void token_body(const tw_id *user, const tw_id *session, uint32_t generation,
                       uint8_t body[BODY_BYTES])
{
    memcpy(body, user->bytes, TW_ID_BYTES);
    memcpy(body + TW_ID_BYTES, session->bytes, TW_ID_BYTES);
    for (int i = 0; i < 4; i++)
        body[2 * TW_ID_BYTES + i] = (uint8_t)(generation >> (24 - 8 * i));
}

void tw_refresh_token_mac(const uint8_t *refresh_key, const tw_id *user, const tw_id *session,
                          uint32_t generation, uint8_t mac[TW_REFRESH_MAC_BYTES])
{
    uint8_t body[BODY_BYTES];
    unsigned int len = TW_REFRESH_MAC_BYTES;
    token_body(user, session, generation, body);
    HMAC(EVP_sha256(), refresh_key, KEY_BYTES, body, sizeof body, mac, &len);
}

bool tw_refresh_token_parse(const char *token, tw_id *user, tw_id *session, uint32_t *generation,
                            uint8_t mac[TW_REFRESH_MAC_BYTES])
{
    size_t prefix = strlen(TOKEN_PREFIX), len = strnlen(token, 256);
    uint8_t raw[TOKEN_BYTES + 4];
    size_t n;
    if (strncmp(token, TOKEN_PREFIX, prefix) != 0 ||
        len - prefix != tw_base64_encoded_len(TOKEN_BYTES) ||
        !tw_base64_decode(TW_BASE64_URL, token + prefix, len - prefix, raw, &n) || n != TOKEN_BYTES)
        return false;
    memcpy(user->bytes, raw, TW_ID_BYTES);
    memcpy(session->bytes, raw + TW_ID_BYTES, TW_ID_BYTES);
    *generation = 0;
    for (int i = 0; i < 4; i++)
        *generation = (*generation << 8) | raw[2 * TW_ID_BYTES + i];
    memcpy(mac, raw + BODY_BYTES, TW_REFRESH_MAC_BYTES);
    return true;
}

static char *refresh_token(const tw_id *user, const Tw__Store__V1__Session *s, tw_arena *arena)
{
    tw_id session;
    if (!tw_session_id_of(s, &session) || s->refresh_key.len != KEY_BYTES)
        return NULL;
    uint8_t raw[TOKEN_BYTES];
    token_body(user, &session, s->generation, raw);
    tw_refresh_token_mac(s->refresh_key.data, user, &session, s->generation, raw + BODY_BYTES);
    size_t prefix = strlen(TOKEN_PREFIX);
    char *out = tw_arena_alloc(arena, prefix + tw_base64_encoded_len(TOKEN_BYTES) + 1);
    if (out != NULL) {
        memcpy(out, TOKEN_PREFIX, prefix);
        tw_base64_encode(TW_BASE64_URL, raw, sizeof raw, out + prefix);
    }
    return out;
}

bool tw_session_id_of(const Tw__Store__V1__Session *session, tw_id *out)
{
    if (session->id.len != TW_ID_BYTES)
        return false;
    memcpy(out->bytes, session->id.data, TW_ID_BYTES);
    return true;
}

/* Calls fn for each session of user as committed (a scan does not see t's
 * own writes), decoded in an arena of its own; fn may write in t. */
typedef tw_err (*session_fn)(tw_txn *t, const tw_id *user, Tw__Store__V1__Session *s, void *ctx);

static tw_err each_session(tw_txn *t, const tw_id *user, session_fn fn, void *ctx)
{
    tw_arena *arena = tw_arena_new(4096);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_SESSION);
    tw_key_id(&prefix, user);
    tw_store_iter *it;
    tw_err err = tw_store_scan(tw_txn_store(t), &prefix, NULL, 0, false, &it);
    while (!err && tw_store_iter_next(it)) {
        tw_value v;
        if (!(err = tw_store_iter_value(it, arena, &v)))
            err = fn(t, user, (void *)v.msg, ctx);
    }
    tw_err close_err = tw_store_iter_close(it);
    tw_arena_free(arena);
    return err ? err : close_err;
}

static tw_err delete_session(tw_txn *t, const tw_id *user, const Tw__Store__V1__Session *s)
{
    tw_id id;
    if (!tw_session_id_of(s, &id))
        return TW_ERR_DB_CORRUPT;
    tw_key k;
    tw_session_key(&k, user, &id);
    return tw_txn_delete(t, &k);
}

/* Expired sessions go as a new one starts; the rest are counted, and the
 * least recently used one remembered (its id: the record dies with the
 * scan's arena). */
struct sweep {
    int64_t now_ms;
    int live;
    int64_t oldest_seen_ms;
    Tw__Store__V1__Session oldest;
    uint8_t oldest_id[TW_ID_BYTES];
};

static tw_err sweep_one(tw_txn *t, const tw_id *user, Tw__Store__V1__Session *s, void *ctx)
{
    struct sweep *w = ctx;
    if (s->expire_unix_ms <= w->now_ms)
        return delete_session(t, user, s);
    if (s->id.len != TW_ID_BYTES)
        return TW_ERR_DB_CORRUPT;
    if (w->live++ == 0 || s->last_seen_unix_ms < w->oldest_seen_ms) {
        w->oldest_seen_ms = s->last_seen_unix_ms;
        memcpy(w->oldest_id, s->id.data, TW_ID_BYTES);
    }
    return TW_OK;
}

tw_err tw_txn_session_create(tw_txn *t, const Tw__Store__V1__Account *account,
                             const char *device_name, int platform, int64_t now_ms, tw_arena *arena,
                             Tw__Store__V1__Session **out)
{
    tw_id user;
    if (account->id.len != TW_ID_BYTES)
        return TW_ERR_INTERNAL;
    memcpy(user.bytes, account->id.data, TW_ID_BYTES);

    struct sweep w = {.now_ms = now_ms};
    tw_err err = each_session(t, &user, sweep_one, &w);
    if (!err && w.live >= TW_MAX_SESSIONS) {
        tw__store__v1__session__init(&w.oldest);
        w.oldest.id = (ProtobufCBinaryData){TW_ID_BYTES, w.oldest_id};
        err = delete_session(t, &user, &w.oldest);
    }
    if (err)
        return err;

    Tw__Store__V1__Session *s = tw_arena_alloc(arena, sizeof *s);
    uint8_t *id = tw_arena_alloc(arena, TW_ID_BYTES), *key = tw_arena_alloc(arena, KEY_BYTES);
    if (s == NULL || id == NULL || key == NULL)
        return TW_ERR_NO_MEMORY;
    if (RAND_bytes(key, KEY_BYTES) != 1)
        return TW_ERR_INTERNAL;
    tw_id sid = tw_id_new();
    memcpy(id, sid.bytes, TW_ID_BYTES);
    tw__store__v1__session__init(s);
    s->id = (ProtobufCBinaryData){TW_ID_BYTES, id};
    s->refresh_key = (ProtobufCBinaryData){KEY_BYTES, key};
    s->generation = 1;
    s->device_name = tw_arena_strdup(arena, device_name ? device_name : "");
    s->platform = platform;
    s->create_unix_ms = s->last_seen_unix_ms = now_ms;
    s->expire_unix_ms = now_ms + TW_REFRESH_TOKEN_TTL_MS;
    s->role = account->role;
    s->disabled = account->disabled;
    tw_key k;
    tw_session_key(&k, &user, &sid);
    *out = s;
    return tw_txn_put(t, &k, &(tw_value){.msg = &s->base});
}

struct revoke {
    const tw_id *except;
    int count;
};

static tw_err revoke_one(tw_txn *t, const tw_id *user, Tw__Store__V1__Session *s, void *ctx)
{
    struct revoke *r = ctx;
    tw_id id;
    if (r->except != NULL && tw_session_id_of(s, &id) &&
        memcmp(id.bytes, r->except->bytes, TW_ID_BYTES) == 0)
        return TW_OK;
    r->count++;
    return delete_session(t, user, s);
}

tw_err tw_txn_sessions_revoke(tw_txn *t, const tw_id *user, const tw_id *except, int *count)
{
    struct revoke r = {except, 0};
    tw_err err = each_session(t, user, revoke_one, &r);
    if (count != NULL)
        *count = r.count;
    return err;
}

struct sync {
    const char *role;
    bool disabled;
};

static tw_err sync_one(tw_txn *t, const tw_id *user, Tw__Store__V1__Session *s, void *ctx)
{
    const struct sync *y = ctx;
    tw_id id;
    if (!tw_session_id_of(s, &id))
        return TW_ERR_DB_CORRUPT;
    s->role = (char *)y->role;
    s->disabled = y->disabled;
    tw_key k;
    tw_session_key(&k, user, &id);
    return tw_txn_put(t, &k, &(tw_value){.msg = &s->base});
}

tw_err tw_txn_sessions_sync(tw_txn *t, const tw_id *user, const char *role, bool disabled)
{
    struct sync y = {role, disabled};
    return each_session(t, user, sync_one, &y);
}

tw_err tw_session_tokens(tw_keyring *ring, const tw_id *user, const Tw__Store__V1__Session *session,
                         int64_t now_ms, tw_arena *arena, Tw__V1__Tokens **out)
{
    tw_id sid, jti = tw_id_new();
    if (!tw_session_id_of(session, &sid))
        return TW_ERR_DB_CORRUPT;
    tw_jwt_claims claims = {.iat = now_ms / 1000, .exp = now_ms / 1000 + TW_ACCESS_TOKEN_TTL_S};
    tw_id_format(user, claims.sub);
    tw_id_format(&sid, claims.sid);
    tw_id_format(&jti, claims.jti);
    tw_jwt_key key;
    tw_keyring_current(ring, &key);
    char *jwt = NULL;
    tw_err err = tw_jwt_sign(&key, &claims, &jwt);
    OPENSSL_cleanse(&key, sizeof key);
    if (err)
        return err;
    Tw__V1__Tokens *t = tw_arena_alloc(arena, sizeof *t);
    char *session_text = tw_arena_alloc(arena, TW_ID_TEXT_SIZE);
    if (t == NULL || session_text == NULL) {
        free(jwt);
        return TW_ERR_NO_MEMORY;
    }
    tw__v1__tokens__init(t);
    t->access_token = tw_arena_strdup(arena, jwt);
    free(jwt);
    t->access_token_expire_time = tw_timestamp_new(arena, claims.exp * 1000);
    t->refresh_token = refresh_token(user, session, arena);
    t->refresh_token_expire_time = tw_timestamp_new(arena, session->expire_unix_ms);
    tw_id_format(&sid, session_text);
    t->session_id = session_text;
    if (t->access_token == NULL || t->refresh_token == NULL)
        return TW_ERR_NO_MEMORY;
    *out = t;
    return TW_OK;
}

Tw__V1__Session *tw_session_to_api(const Tw__Store__V1__Session *s, const tw_id *current,
                                   tw_arena *arena)
{
    Tw__V1__Session *out = tw_arena_alloc(arena, sizeof *out);
    char *id = tw_arena_alloc(arena, TW_ID_TEXT_SIZE);
    tw_id sid;
    if (out == NULL || id == NULL || !tw_session_id_of(s, &sid))
        return NULL;
    tw__v1__session__init(out);
    tw_id_format(&sid, id);
    out->id = id;
    out->device_name = s->device_name;
    out->platform = (Tw__V1__Platform)s->platform;
    out->create_time = tw_timestamp_new(arena, s->create_unix_ms);
    out->last_seen_time = tw_timestamp_new(arena, s->last_seen_unix_ms);
    out->expire_time = tw_timestamp_new(arena, s->expire_unix_ms);
    out->current = current != NULL && memcmp(sid.bytes, current->bytes, TW_ID_BYTES) == 0;
    return out;
}

tw_err tw_session_list(tw_store *store, const tw_id *user, const tw_id *current,
                       const uint8_t *cursor, size_t cursor_len, uint32_t size, tw_arena *arena,
                       Tw__V1__Session ***out, size_t *count, uint8_t **next, size_t *next_len)
{
    *count = 0;
    *next = NULL;
    *next_len = 0;
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_SESSION);
    tw_key_id(&prefix, user);
    if ((*out = tw_arena_alloc(arena, (size + 1) * sizeof **out)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw_store_iter *it;
    tw_err err = tw_store_scan(store, &prefix, cursor, cursor_len, true, &it);
    if (err)
        return err;
    uint8_t last[TW_KEY_MAX]; /* the key of the last one listed */
    size_t last_len = 0;
    while (!err && tw_store_iter_next(it)) {
        if (*count == size) {
            /* More remain: go on after the last one listed. */
            err = tw_store_page_cursor(arena, last, last_len, next, next_len);
            break;
        }
        tw_value v;
        if ((err = tw_store_iter_value(it, arena, &v)))
            break;
        Tw__V1__Session *s = tw_session_to_api((void *)v.msg, current, arena);
        if (s == NULL) {
            err = TW_ERR_NO_MEMORY;
            break;
        }
        (*out)[(*count)++] = s;
        const uint8_t *key;
        tw_store_iter_key(it, &key, &last_len);
        memcpy(last, key, last_len);
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}
