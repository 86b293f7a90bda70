/*
 * The service kit: what every service's handlers share between the RPC
 * engine (server/rpc) and the store, so that a handler reads the same in
 * every service: check, load, change, write one transaction, reply.
 *
 * What the engine has already done before a handler runs: the caller is
 * known (tw_call_user, parsed once by the gate), the call has one "now"
 * (tw_call_now_ms) and one bounded violation list (tw_call_violations),
 * and the request meets the rules of proto/tw/v1/field_rules.proto (no NUL
 * in a string, ids in UUID form, required fields set, lists and times in
 * bounds). What this kit adds, once for every service:
 *
 *  - tw_kit_fail: a store or domain error as the call's status, the
 *    store's detail in the log line (with the request id), never to the
 *    client;
 *  - tw_kit_write: the call's one transaction, serialised with the
 *    caller's other writes (each appends to the user's change log), and,
 *    for a request with a request_id, its response stored with a hash of
 *    the request in the same transaction: a retry with the same id and the
 *    same request gets the stored response and writes nothing; the same id
 *    with another request is INVALID_ARGUMENT on request_id;
 *  - tw_kit_page_open / tw_kit_page_close: page sizes by one rule, and
 *    page tokens bound to the caller and to the request as sent minus its
 *    page_size and page_token, so no filter can be forgotten;
 *  - field masks: kit/mask.h (free of the engine: domain code uses it).
 */
#ifndef TW_KIT_H
#define TW_KIT_H

#include "rpc/call.h"
#include "tw_store.h"
#include "tw_txn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Errors ---------------------------------------------------------------- */

/*
 * Ends the call's work on err and returns it, for `return tw_kit_fail(call,
 * err);`: storage failures (DB_001..DB_003, a conflict that outlasted its
 * retries) put tw_store_last_error() in the call's log line only; a bad
 * page token becomes a violation on page_token. Every other error goes out
 * as it is, with whatever message or violations the handler already set.
 */
tw_err tw_kit_fail(tw_call *call, tw_err err);

/* ---- Ids ------------------------------------------------------------------- */

/* The id in a field the engine checked (STRING_FORMAT_UUID): false when the
 * field is empty. */
bool tw_kit_id(const char *text, tw_id *out);

/* The text form of id, in the call's arena. */
char *tw_kit_id_text(tw_call *call, const tw_id *id);

/* A protobuf-c allocator on the call's arena, to unpack stored messages
 * that live as long as the call. */
ProtobufCAllocator tw_kit_allocator(tw_call *call);

/* ---- Writes ---------------------------------------------------------------- */

/*
 * Runs fn(t, ctx) as the call's one transaction (tw_txn_run: retried on a
 * conflict, so fn may run more than once and must do nothing outside t
 * that cannot be repeated) and returns its error through tw_kit_fail.
 * fn fills the call's response (tw_call_response). When the request has a
 * non-empty request_id, the response is remembered with it as described
 * above, and a replay runs no fn at all. Needs a signed-in caller, except
 * for an admin method through the operator socket (its memos are kept
 * under the nil user id).
 */
tw_err tw_kit_write(tw_call *call, tw_store *store, tw_txn_fn fn, void *ctx);

/*
 * For a write whose request_id is not a field of the call's request (a
 * client stream's first message carries it): the memo of message
 * (borrowed), taken while message lives, is what tw_kit_write takes from
 * the request. Its key is NULL when message has no request_id; it lives in
 * the call's arena.
 */
typedef struct tw_kit_memo {
    const char *key;    /* "Method:request_id"; NULL: nothing to remember */
    uint8_t sha256[32]; /* of message packed without its request_id */
} tw_kit_memo;
tw_err tw_kit_memo_of(tw_call *call, const ProtobufCMessage *message, tw_kit_memo *memo);

/* tw_kit_write with that memo; *replayed (may be NULL) is true when the
 * answer was an earlier one's, replayed, and fn's work is not what
 * committed (fn may still have run in an attempt that did not commit). */
tw_err tw_kit_write_memo(tw_call *call, tw_store *store, const tw_kit_memo *memo, tw_txn_fn fn,
                         void *ctx, bool *replayed);

/* Before any work (an upload's audio): when memo's request_id was answered
 * already, the call's response is that answer and *found is true; the same
 * id with another message is refused as tw_kit_write refuses it. */
tw_err tw_kit_replay(tw_call *call, tw_store *store, const tw_kit_memo *memo, bool *found);

/*
 * For a request whose effect lies outside the store (a Stripe call, a
 * message sent) and whose answer is remembered only after it: claims
 * memo's request_id before any effect, in its own transaction, by storing
 * the request's hash with no answer yet. Then a retry after a crash or a
 * timeout anywhere between the claim and the remembered answer is
 * recognised: the same request runs again (its effect must itself be
 * idempotent, as a Stripe call with an Idempotency-Key made of the
 * request_id is), the same id with another request is refused as
 * tw_kit_write refuses it, and once answered (tw_kit_write_memo) the answer
 * is replayed (*found true). A request that failed keeps its claim: its
 * request_id goes on meaning that request.
 */
tw_err tw_kit_claim(tw_call *call, tw_store *store, const tw_kit_memo *memo, bool *found);

/* ---- Lists ----------------------------------------------------------------- */

typedef struct tw_kit_page {
    uint32_t size;         /* items to return: page_size, defaulted and capped */
    const uint8_t *cursor; /* where the page token says to go on; NULL: from the start */
    size_t cursor_len;
    /* private */
    const uint8_t *query; /* the request without its paging, packed */
    size_t query_len;
    tw_store *store;
    tw_id user;
} tw_kit_page;

/*
 * Reads the paging of the call's List request (fields page_size and
 * page_token): a negative page_size, or a page token this list did not
 * give this caller for this very request, is INVALID_ARGUMENT naming the
 * field (VAL_001 / VAL_003). Every other field of the request is bound
 * into the next token, so a token of another filter is refused.
 */
tw_err tw_kit_page_open(tw_call *call, tw_store *store, tw_kit_page *page);

/* The next_page_token for cursor (cursor_len bytes); "" when cursor is NULL
 * (the list is done). In the call's arena. */
tw_err tw_kit_page_close(tw_call *call, const tw_kit_page *page, const void *cursor,
                         size_t cursor_len, char **next_page_token);

#endif
