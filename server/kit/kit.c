/* The service kit (kit.h): errors, ids, writes with request ids, pages. */
#include "kit.h"

#include "tw/store/v1/task_records.pb-c.h"
#include "tw_key.h"
#include "tw_page.h"

#include <openssl/sha.h>
#include <string.h>

/* ---- Errors ---------------------------------------------------------------- */

tw_err tw_kit_fail(tw_call *call, tw_err err)
{
    switch (err) {
    case TW_ERR_DB:
    case TW_ERR_DB_CORRUPT:
    case TW_ERR_DB_READ_ONLY:
    case TW_ERR_CONFLICT:
        tw_call_log_detail(call, "%s", tw_store_last_error());
        break;
    case TW_ERR_BAD_PAGE_TOKEN:
        tw_call_field_violation(call, "page_token",
                                "is not a token this list gave you for these filters");
        break;
    default:
        break;
    }
    return err;
}

/* ---- Ids ------------------------------------------------------------------- */

bool tw_kit_id(const char *text, tw_id *out)
{
    /* The engine refused any other text, so a non-empty one parses. */
    return text[0] != '\0' && tw_id_parse(text, out);
}

char *tw_kit_id_text(tw_call *call, const tw_id *id)
{
    char *text = tw_arena_alloc(tw_call_arena(call), TW_ID_TEXT_SIZE);
    if (text != NULL)
        tw_id_format(id, text);
    return text;
}

static void *arena_alloc(void *arena, size_t size)
{
    return tw_arena_alloc(arena, size);
}

static void arena_free(void *arena, void *ptr)
{
    (void)arena, (void)ptr; /* freed with the call */
}

ProtobufCAllocator tw_kit_allocator(tw_call *call)
{
    return (ProtobufCAllocator){arena_alloc, arena_free, tw_call_arena(call)};
}

/* ---- Writes ---------------------------------------------------------------- */

static const ProtobufCFieldDescriptor *string_field(const ProtobufCMessage *m, const char *name)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    return f != NULL && f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED
               ? f
               : NULL;
}

/* A shallow copy of m with the named fields cleared, packed into arena. */
static tw_err pack_without(tw_arena *arena, const ProtobufCMessage *m,
                           const ProtobufCFieldDescriptor *const *fields, size_t n, uint8_t **out,
                           size_t *len)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    ProtobufCMessage *copy = tw_arena_alloc(arena, d->sizeof_message);
    if (copy == NULL)
        return TW_ERR_NO_MEMORY;
    memcpy(copy, m, d->sizeof_message);
    for (size_t i = 0; i < n; i++) {
        void *at = (char *)copy + fields[i]->offset;
        if (fields[i]->type == PROTOBUF_C_TYPE_STRING)
            *(const char **)at = "";
        else
            memset(at, 0, sizeof(int32_t));
    }
    *len = protobuf_c_message_get_packed_size(copy);
    *out = tw_arena_alloc(arena, *len + 1);
    if (*out == NULL)
        return TW_ERR_NO_MEMORY;
    protobuf_c_message_pack(copy, *out);
    return TW_OK;
}

tw_err tw_kit_memo_of(tw_call *call, const ProtobufCMessage *message, tw_kit_memo *memo)
{
    memset(memo, 0, sizeof *memo);
    const ProtobufCFieldDescriptor *f = message ? string_field(message, "request_id") : NULL;
    const char *id = f ? *(const char *const *)((const char *)message + f->offset) : "";
    if (id == NULL || id[0] == '\0')
        return TW_OK;
    tw_arena *arena = tw_call_arena(call);
    uint8_t *packed;
    size_t len;
    tw_err err = pack_without(arena, message, &f, 1, &packed, &len);
    if (err)
        return err;
    SHA256(packed, len, memo->sha256);
    memo->key = tw_arena_printf(arena, "%s:%s", tw_call_method(call)->name, id);
    return memo->key ? TW_OK : TW_ERR_NO_MEMORY;
}

struct write {
    tw_call *call;
    tw_id user;
    const tw_kit_memo *memo;
    tw_txn_fn fn;
    void *ctx;
    bool replayed;
};

static void request_key(tw_key *k, const tw_id *user, const char *key)
{
    tw_key_init(k, TW_KF_REQUEST);
    tw_key_id(k, user);
    tw_key_str(k, key);
}

/* Puts the stored response of a replayed request into the call's response;
 * *found says whether there was one. */
static tw_err replay(tw_txn *t, struct write *w, bool *found)
{
    *found = false;
    tw_call *call = w->call;
    tw_arena *arena = tw_call_arena(call);
    tw_key k;
    request_key(&k, &w->user, w->memo->key);
    tw_value v;
    tw_err err = tw_txn_get_for_update(t, &k, arena, &v);
    if (err == TW_ERR_NOT_FOUND)
        return TW_OK;
    if (err)
        return err;
    const Tw__Store__V1__RequestRecord *rec = (const void *)v.msg;
    if (rec->request_sha256.len != sizeof w->memo->sha256 ||
        memcmp(rec->request_sha256.data, w->memo->sha256, sizeof w->memo->sha256) != 0)
        return tw_call_field_violation(call, "request_id",
                                       "was already used for a different request");
    if (rec->claimed)
        return TW_OK; /* the same request, started and never answered: again */
    ProtobufCMessage *response = tw_call_response(call);
    ProtobufCAllocator alloc = tw_kit_allocator(call);
    ProtobufCMessage *first = protobuf_c_message_unpack(response->descriptor, &alloc,
                                                        rec->response.len, rec->response.data);
    if (first == NULL)
        return TW_ERR_DB_CORRUPT;
    memcpy(response, first, response->descriptor->sizeof_message);
    *found = true;
    return TW_OK;
}

static tw_err remember(tw_txn *t, struct write *w)
{
    const ProtobufCMessage *response = tw_call_response(w->call);
    size_t len = protobuf_c_message_get_packed_size(response);
    uint8_t *packed = tw_arena_alloc(tw_call_arena(w->call), len + 1);
    if (packed == NULL)
        return TW_ERR_NO_MEMORY;
    protobuf_c_message_pack(response, packed);
    Tw__Store__V1__RequestRecord rec = TW__STORE__V1__REQUEST_RECORD__INIT;
    rec.request_sha256 = (ProtobufCBinaryData){sizeof w->memo->sha256, (uint8_t *)w->memo->sha256};
    rec.response = (ProtobufCBinaryData){len, packed};
    tw_key k;
    request_key(&k, &w->user, w->memo->key);
    return tw_txn_put(t, &k, &(tw_value){.msg = &rec.base});
}

static tw_err write_step(tw_txn *t, void *ctx)
{
    struct write *w = ctx;
    w->replayed = false;
    tw_err err = w->memo->key ? replay(t, w, &w->replayed) : TW_OK;
    if (err || w->replayed)
        return err;
    if ((err = w->fn(t, w->ctx)))
        return err;
    return w->memo->key ? remember(t, w) : TW_OK;
}

tw_err tw_kit_write(tw_call *call, tw_store *store, tw_txn_fn fn, void *ctx)
{
    tw_kit_memo memo;
    tw_err err = tw_kit_memo_of(call, tw_call_request(call), &memo);
    return err ? err : tw_kit_write_memo(call, store, &memo, fn, ctx, NULL);
}

/* Whose memos a call's are: the signed-in caller's; an admin method
 * called through the operator socket acts for nobody, and keeps its memos
 * under the nil id. */
static tw_err memo_owner(tw_call *call, tw_id *user)
{
    if (tw_call_caller(call) == NULL && (tw_call_method(call)->flags & TW_ADMIN)) {
        memset(user, 0, sizeof *user);
        return TW_OK;
    }
    return tw_call_user(call, user);
}

tw_err tw_kit_write_memo(tw_call *call, tw_store *store, const tw_kit_memo *memo, tw_txn_fn fn,
                         void *ctx, bool *replayed)
{
    struct write w = {.call = call, .memo = memo, .fn = fn, .ctx = ctx};
    tw_err err = memo_owner(call, &w.user);
    if (err == TW_OK)
        err = tw_kit_fail(call, tw_txn_run(store, write_step, &w));
    if (replayed != NULL)
        *replayed = err == TW_OK && w.replayed;
    return err;
}

/* The claim of a request about to have an effect outside the store: its
 * hash, and no response yet. */
static tw_err claim_step(tw_txn *t, void *ctx)
{
    struct write *w = ctx;
    w->replayed = false;
    tw_err err = replay(t, w, &w->replayed);
    if (err || w->replayed)
        return err;
    Tw__Store__V1__RequestRecord rec = TW__STORE__V1__REQUEST_RECORD__INIT;
    rec.request_sha256 = (ProtobufCBinaryData){sizeof w->memo->sha256, (uint8_t *)w->memo->sha256};
    rec.claimed = true;
    tw_key k;
    request_key(&k, &w->user, w->memo->key);
    return tw_txn_put(t, &k, &(tw_value){.msg = &rec.base});
}

tw_err tw_kit_claim(tw_call *call, tw_store *store, const tw_kit_memo *memo, bool *found)
{
    *found = false;
    if (memo->key == NULL)
        return TW_OK;
    struct write w = {.call = call, .memo = memo};
    tw_err err = memo_owner(call, &w.user);
    if (err == TW_OK)
        err = tw_kit_fail(call, tw_txn_run(store, claim_step, &w));
    *found = err == TW_OK && w.replayed;
    return err;
}

/* A write that only replays: fn never runs. */
static tw_err refuse_new(tw_txn *t, void *ctx)
{
    (void)t, (void)ctx;
    return TW_ERR_NOT_FOUND;
}

tw_err tw_kit_replay(tw_call *call, tw_store *store, const tw_kit_memo *memo, bool *found)
{
    *found = false;
    if (memo->key == NULL)
        return TW_OK;
    tw_err err = tw_kit_write_memo(call, store, memo, refuse_new, NULL, found);
    return err == TW_ERR_NOT_FOUND ? TW_OK : err;
}

/* ---- Lists ----------------------------------------------------------------- */

tw_err tw_kit_page_open(tw_call *call, tw_store *store, tw_kit_page *page)
{
    memset(page, 0, sizeof *page);
    page->store = store;
    const tw_id *user = tw_call_caller(call);
    if (user != NULL)
        page->user = *user;
    const ProtobufCMessage *request = tw_call_request(call);
    const ProtobufCMessageDescriptor *d = request->descriptor;
    const ProtobufCFieldDescriptor *paging[2] = {
        protobuf_c_message_descriptor_get_field_by_name(d, "page_size"),
        string_field(request, "page_token"),
    };
    if (paging[0] == NULL || paging[0]->type != PROTOBUF_C_TYPE_INT32 || paging[1] == NULL)
        return tw_call_error(call, TW_ERR_INTERNAL, "%s has no page_size and page_token", d->name);
    int32_t size = *(const int32_t *)((const char *)request + paging[0]->offset);
    const char *token = *(const char *const *)((const char *)request + paging[1]->offset);
    if (tw_store_page_size(size, &page->size) != TW_OK)
        return tw_call_field_violation(call, "page_size", "must not be negative");
    /* The query a token is bound to: the method, then the request as sent
     * without its paging (two lists with empty requests still differ). */
    uint8_t *packed, *query, *cursor;
    size_t packed_len;
    tw_err err = pack_without(tw_call_arena(call), request, paging, 2, &packed, &packed_len);
    if (err)
        return err;
    const char *method = tw_call_path(call);
    size_t method_len = strlen(method) + 1;
    if ((query = tw_arena_alloc(tw_call_arena(call), method_len + packed_len)) == NULL)
        return TW_ERR_NO_MEMORY;
    memcpy(query, method, method_len);
    memcpy(query + method_len, packed, packed_len);
    page->query = query;
    page->query_len = method_len + packed_len;
    err = tw_store_page_token_read(store, user ? &page->user : NULL, page->query, page->query_len,
                                   token, tw_call_arena(call), &cursor, &page->cursor_len);
    page->cursor = cursor;
    return tw_kit_fail(call, err);
}

tw_err tw_kit_page_close(tw_call *call, const tw_kit_page *page, const void *cursor,
                         size_t cursor_len, char **next_page_token)
{
    *next_page_token = "";
    if (cursor == NULL)
        return TW_OK;
    bool user = tw_call_caller(call) != NULL;
    return tw_store_page_token_make(page->store, user ? &page->user : NULL, page->query,
                                    page->query_len, cursor, cursor_len, tw_call_arena(call),
                                    next_page_token);
}
