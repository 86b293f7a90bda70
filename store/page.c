/* Page sizes and MAC'd page tokens for tw_page.h. */
#include "tw_page.h"

#include "store_internal.h"
#include "tw_base64.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#define TOKEN_VERSION 1
#define TAG_BYTES     16
/* Domain separation: these MACs mean nothing outside page tokens. */
#define TAG_CONTEXT "tw page token"

tw_err tw_store_page_size(int32_t requested, uint32_t *out)
{
    if (requested < 0)
        return store_fail(TW_ERR_VALIDATION, "page_size %d is negative", requested);
    *out = requested == 0                 ? TW_PAGE_SIZE_DEFAULT
           : requested > TW_PAGE_SIZE_MAX ? TW_PAGE_SIZE_MAX
                                          : (uint32_t)requested;
    return TW_OK;
}

/* The slot of page_macs the calling thread uses: threads take turns
 * through the slots, so the few that make tokens at once rarely share one. */
static struct store_page_mac *page_mac_slot(tw_store *s)
{
    static atomic_uint next;
    static _Thread_local unsigned slot_plus_1;
    if (slot_plus_1 == 0)
        slot_plus_1 = atomic_fetch_add(&next, 1) % STORE_PAGE_MACS + 1;
    return &s->page_macs[slot_plus_1 - 1];
}

/* The tag of body (version byte and cursor) for user and query. */
static tw_err token_tag(tw_store *s, const tw_id *user, const void *query, size_t query_len,
                        const uint8_t *body, size_t body_len, tw_arena *arena,
                        uint8_t tag[EVP_MAX_MD_SIZE])
{
    static const tw_id nobody;
    size_t ctx_len = sizeof TAG_CONTEXT - 1;
    size_t len = ctx_len + TW_ID_BYTES + SHA256_DIGEST_LENGTH + body_len;
    uint8_t *msg = tw_arena_alloc(arena, len);
    if (msg == NULL)
        return TW_ERR_NO_MEMORY;
    uint8_t *p = msg;
    memcpy(p, TAG_CONTEXT, ctx_len);
    p += ctx_len;
    memcpy(p, (user ? user : &nobody)->bytes, TW_ID_BYTES);
    p += TW_ID_BYTES;
    uint8_t *digest = p;
    p += SHA256_DIGEST_LENGTH;
    memcpy(p, body, body_len);
    struct store_page_mac *m = page_mac_slot(s);
    pthread_mutex_lock(&m->lock);
    size_t tag_len;
    /* A NULL key starts the MAC again with the key it has. */
    bool ok = EVP_DigestInit_ex(m->md, s->sha256, NULL) == 1 &&
              EVP_DigestUpdate(m->md, query, query_len) == 1 &&
              EVP_DigestFinal_ex(m->md, digest, NULL) == 1 &&
              EVP_MAC_init(m->mac, NULL, 0, NULL) == 1 && EVP_MAC_update(m->mac, msg, len) == 1 &&
              EVP_MAC_final(m->mac, tag, &tag_len, EVP_MAX_MD_SIZE) == 1;
    pthread_mutex_unlock(&m->lock);
    return ok ? TW_OK : store_fail(TW_ERR_INTERNAL, "HMAC-SHA256 failed");
}

tw_err store_page_mac_init(tw_store *s)
{
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    bool ok = hmac != NULL && s->sha256 != NULL;
    for (int i = 0; i < STORE_PAGE_MACS; i++) {
        struct store_page_mac *m = &s->page_macs[i];
        pthread_mutex_init(&m->lock, NULL);
        m->mac = hmac ? EVP_MAC_CTX_new(hmac) : NULL; /* each keeps its own reference */
        m->md = EVP_MD_CTX_new();
        ok = ok && m->mac != NULL && m->md != NULL &&
             EVP_MAC_init(m->mac, s->page_key, sizeof s->page_key, params) == 1;
    }
    EVP_MAC_free(hmac);
    return ok ? TW_OK : store_fail(TW_ERR_INTERNAL, "HMAC-SHA256 is not available");
}

void store_page_mac_free(tw_store *s)
{
    for (int i = 0; i < STORE_PAGE_MACS; i++) {
        struct store_page_mac *m = &s->page_macs[i];
        EVP_MAC_CTX_free(m->mac);
        EVP_MD_CTX_free(m->md);
        pthread_mutex_destroy(&m->lock);
    }
    EVP_MD_free(s->sha256);
}

tw_err tw_store_page_token_make(tw_store *s, const tw_id *user, const void *query, size_t query_len,
                                const void *cursor, size_t cursor_len, tw_arena *arena,
                                char **token)
{
    *token = NULL;
    if (cursor_len == 0 || cursor_len > TW_PAGE_CURSOR_MAX)
        return store_fail(TW_ERR_INTERNAL, "page cursor of %zu bytes", cursor_len);
    size_t body_len = 1 + cursor_len;
    uint8_t *raw = tw_arena_alloc(arena, body_len + EVP_MAX_MD_SIZE);
    char *text = tw_arena_alloc(arena, tw_base64_encoded_len(body_len + TAG_BYTES) + 1);
    if (raw == NULL || text == NULL)
        return TW_ERR_NO_MEMORY;
    raw[0] = TOKEN_VERSION;
    memcpy(raw + 1, cursor, cursor_len);
    tw_err err = token_tag(s, user, query, query_len, raw, body_len, arena, raw + body_len);
    if (err)
        return err;
    tw_base64_encode(TW_BASE64_URL, raw, body_len + TAG_BYTES, text);
    *token = text;
    return TW_OK;
}

tw_err tw_store_page_token_read(tw_store *s, const tw_id *user, const void *query, size_t query_len,
                                const char *token, tw_arena *arena, uint8_t **cursor,
                                size_t *cursor_len)
{
    *cursor = NULL;
    *cursor_len = 0;
    size_t longest = tw_base64_encoded_len(1 + TW_PAGE_CURSOR_MAX + TAG_BYTES);
    size_t n = strnlen(token, longest + 1);
    if (n == 0)
        return TW_OK;
    uint8_t *raw = tw_arena_alloc(arena, tw_base64_decoded_max(n));
    uint8_t tag[EVP_MAX_MD_SIZE];
    size_t len;
    if (raw == NULL)
        return TW_ERR_NO_MEMORY;
    /* Strict base64url: one spelling per token, so an edited token never
     * decodes to the same bytes. */
    if (n > longest || !tw_base64_decode(TW_BASE64_URL, token, n, raw, &len) ||
        len < 1 + 1 + TAG_BYTES || raw[0] != TOKEN_VERSION)
        return store_fail(TW_ERR_BAD_PAGE_TOKEN, "page token is malformed");
    size_t body_len = len - TAG_BYTES;
    tw_err err = token_tag(s, user, query, query_len, raw, body_len, arena, tag);
    if (err)
        return err;
    if (CRYPTO_memcmp(tag, raw + body_len, TAG_BYTES) != 0)
        return store_fail(TW_ERR_BAD_PAGE_TOKEN, "page token does not match user and query");
    *cursor = raw + 1;
    *cursor_len = body_len - 1;
    return TW_OK;
}

tw_err tw_store_page_cursor(tw_arena *arena, const uint8_t *last, size_t len, uint8_t **next,
                            size_t *next_len)
{
    if ((*next = tw_arena_memdup(arena, last, len)) == NULL)
        return TW_ERR_NO_MEMORY;
    *next_len = len;
    return TW_OK;
}

/* Whether key is past the end of a range at stop, in the scan's direction. */
static bool past_stop(const uint8_t *key, size_t len, const tw_key *stop, bool reverse)
{
    size_t common = len < stop->len ? len : stop->len;
    int c = memcmp(key, stop->bytes, common);
    if (c == 0)
        c = len < stop->len ? -1 : len > stop->len ? 1 : 0;
    return reverse ? c < 0 : c >= 0;
}

tw_err tw_store_page_scan(tw_store *s, const tw_store_page_query *q, tw_store_page_fn fn, void *ctx,
                          tw_arena *arena, uint8_t **next, size_t *next_len)
{
    *next = NULL;
    *next_len = 0;
    tw_store_iter *it;
    tw_err err = tw_store_scan(s, q->prefix, q->after, q->after_len, q->reverse, &it);
    if (err)
        return err;
    uint32_t taken = 0;
    uint64_t shown = 0;
    uint8_t last[TW_KEY_MAX]; /* the last key shown: the next page starts after it */
    size_t last_len = 0;
    bool more = false;
    while (tw_store_iter_next(it)) {
        const uint8_t *key;
        size_t len;
        tw_store_iter_key(it, &key, &len);
        if (q->stop != NULL && past_stop(key, len, q->stop, q->reverse))
            break;
        if (taken == q->limit || (q->max_scan != 0 && shown == q->max_scan)) {
            more = true;
            break;
        }
        if (len > sizeof last) {
            err = TW_ERR_DB_CORRUPT;
            break;
        }
        bool took = false;
        if ((err = fn(ctx, it, &took)))
            break;
        taken += took;
        shown++;
        tw_store_iter_key(it, &key, &len); /* fn may have read the value */
        memcpy(last, key, len);
        last_len = len;
    }
    tw_err close_err = tw_store_iter_close(it);
    if (err == TW_OK)
        err = close_err;
    if (err == TW_OK && more && last_len > 0)
        err = tw_store_page_cursor(arena, last, last_len, next, next_len);
    return err;
}
