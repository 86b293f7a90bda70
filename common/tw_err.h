/*
 * The one table of errors in twd.
 *
 * Every failure a caller can see is a row here: our code, the gRPC status it
 * travels as, the reason string clients switch on (kept from the runbook:
 * AUTH_001, DB_001, RATE_001, VAL_001, and more in the same style) and a short
 * message safe to show. Functions return a tw_err and hand results back
 * through out-parameters; TW_OK is zero so `if (err) goto out;` reads right.
 *
 * This header has no gRPC dependency: the status numbers are gRPC's canonical
 * codes (stable across every gRPC implementation) and server/rpc checks at
 * compile time that they equal grpc_status_code.
 */
#ifndef TW_ERR_H
#define TW_ERR_H

#include "tw_arena.h"

/* gRPC canonical status codes, as numbered in every gRPC implementation. */
enum {
    TW_GRPC_OK = 0,
    TW_GRPC_CANCELLED = 1,
    TW_GRPC_UNKNOWN = 2,
    TW_GRPC_INVALID_ARGUMENT = 3,
    TW_GRPC_DEADLINE_EXCEEDED = 4,
    TW_GRPC_NOT_FOUND = 5,
    TW_GRPC_ALREADY_EXISTS = 6,
    TW_GRPC_PERMISSION_DENIED = 7,
    TW_GRPC_RESOURCE_EXHAUSTED = 8,
    TW_GRPC_FAILED_PRECONDITION = 9,
    TW_GRPC_ABORTED = 10,
    TW_GRPC_OUT_OF_RANGE = 11,
    TW_GRPC_UNIMPLEMENTED = 12,
    TW_GRPC_INTERNAL = 13,
    TW_GRPC_UNAVAILABLE = 14,
    TW_GRPC_DATA_LOSS = 15,
    TW_GRPC_UNAUTHENTICATED = 16,
};

/*
 * XX(name, grpc status, reason, message)
 * Add rows at the end of a group; never reuse a reason for another meaning,
 * since apps switch on it.
 */
#define TW_ERR_MAP(XX)                                                                             \
    XX(OK, OK, "", "ok")                                                                           \
    /* Requests that cannot be read or that fail validation. */                                    \
    XX(VALIDATION, INVALID_ARGUMENT, "VAL_001", "validation error")                                \
    XX(MALFORMED_REQUEST, INVALID_ARGUMENT, "VAL_002", "request message could not be decoded")     \
    XX(BAD_PAGE_TOKEN, INVALID_ARGUMENT, "VAL_003", "page token is invalid for this query")        \
    XX(BAD_FIELD_MASK, INVALID_ARGUMENT, "VAL_004", "field mask names an unknown field")           \
    /* Authentication and authorization. */                                                        \
    XX(AUTH_INVALID_TOKEN, UNAUTHENTICATED, "AUTH_001", "invalid token")                           \
    XX(AUTH_MISSING_TOKEN, UNAUTHENTICATED, "AUTH_002", "authorization token is missing")          \
    XX(AUTH_EXPIRED_TOKEN, UNAUTHENTICATED, "AUTH_003", "token has expired")                       \
    XX(AUTH_REVOKED, UNAUTHENTICATED, "AUTH_004", "session has been revoked")                      \
    XX(AUTH_DISABLED, UNAUTHENTICATED, "AUTH_005", "account is disabled")                          \
    XX(AUTH_BAD_CREDENTIALS, UNAUTHENTICATED, "AUTH_006", "email or password is incorrect")        \
    XX(AUTH_FORBIDDEN, PERMISSION_DENIED, "AUTH_007", "this call needs the admin role")            \
    XX(AUTH_WRONG_PASSWORD, PERMISSION_DENIED, "AUTH_008", "password is incorrect")                \
    /* Limits. */                                                                                  \
    XX(RATE_LIMITED, RESOURCE_EXHAUSTED, "RATE_001", "rate limit exceeded")                        \
    XX(QUOTA_EXCEEDED, RESOURCE_EXHAUSTED, "QUOTA_001", "plan usage limit reached")                \
    XX(TOO_LARGE, RESOURCE_EXHAUSTED, "SIZE_001", "request is larger than allowed")                \
    XX(USER_STREAMS_FULL, RESOURCE_EXHAUSTED, "RATE_002",                                          \
       "this account has as many streams open as it may: finish or cancel one first")              \
    XX(SERVER_STREAMS_FULL, RESOURCE_EXHAUSTED, "RATE_003",                                        \
       "the server has as many streams open as it may: retry later")                               \
    XX(SIGN_IN_BUSY, RESOURCE_EXHAUSTED, "RATE_004", "too many sign-ins at once, retry shortly")   \
    /* Resources and their state. */                                                               \
    XX(NOT_FOUND, NOT_FOUND, "RES_001", "not found")                                               \
    XX(ALREADY_EXISTS, ALREADY_EXISTS, "RES_002", "already exists")                                \
    XX(CONFLICT, ABORTED, "RES_003", "resource was changed by someone else")                       \
    XX(FAILED_PRECONDITION, FAILED_PRECONDITION, "STATE_001", "not allowed in the current state")  \
    XX(SYNC_RESYNC, FAILED_PRECONDITION, "SYNC_001",                                               \
       "sync token is older than the change log: Pull with an empty token")                        \
    XX(SYNC_BEHIND, ABORTED, "SYNC_002",                                                           \
       "watch fell behind: Pull from the last token, then Watch again")                            \
    /* Storage. */                                                                                 \
    XX(DB, UNAVAILABLE, "DB_001", "database operation failed")                                     \
    XX(DB_CORRUPT, DATA_LOSS, "DB_002", "stored data is corrupt")                                  \
    XX(DB_READ_ONLY, UNAVAILABLE, "DB_003", "database is read-only, writes are refused")           \
    /* The call itself and the server. */                                                          \
    XX(UNIMPLEMENTED, UNIMPLEMENTED, "RPC_001", "method not implemented")                          \
    XX(DEADLINE, DEADLINE_EXCEEDED, "RPC_002", "deadline exceeded")                                \
    XX(CANCELLED, CANCELLED, "RPC_003", "call cancelled")                                          \
    XX(SHUTTING_DOWN, UNAVAILABLE, "RPC_004", "server is shutting down")                           \
    XX(SLOW_READER, RESOURCE_EXHAUSTED, "RPC_005", "client is not reading the stream")             \
    XX(BUSY, UNAVAILABLE, "RPC_006", "server is busy, retry with backoff")                         \
    XX(MAINTENANCE, UNAVAILABLE, "MAINTENANCE", "service is in maintenance")                       \
    XX(UPSTREAM, UNAVAILABLE, "UPSTREAM_001", "an external service failed")                        \
    XX(NO_MEMORY, RESOURCE_EXHAUSTED, "MEM_001", "server is out of memory")                        \
    XX(INTERNAL, INTERNAL, "INTERNAL_001", "internal error")                                       \
    /* Voice notes. */                                                                             \
    XX(VOICE_BAD_FORMAT, INVALID_ARGUMENT, "VOICE_001",                                            \
       "audio is not mp3, wav, m4a or webm, or not the declared type")                             \
    /* Billing: payments (Stripe's answers mapped), webhooks, student verification. */             \
    XX(PAY_CARD_DECLINED, FAILED_PRECONDITION, "PAY_001", "the card was declined")                 \
    XX(PAY_REFUSED, FAILED_PRECONDITION, "PAY_002", "the payment provider refused the request")    \
    XX(PAY_DISABLED, FAILED_PRECONDITION, "PAY_003", "payments are not configured on this server") \
    XX(PAY_MISCONFIGURED, INTERNAL, "PAY_004",                                                     \
       "the payment provider refused this server's credentials")                                   \
    XX(PAY_IDEMPOTENCY, INTERNAL, "PAY_005",                                                       \
       "a retried payment request did not match the first one")                                    \
    XX(WEBHOOK_BAD_SIGNATURE, INVALID_ARGUMENT, "PAY_006",                                         \
       "webhook signature is missing or does not match")                                           \
    XX(WEBHOOK_STALE, INVALID_ARGUMENT, "PAY_007", "webhook timestamp is outside the tolerance")   \
    XX(PLAN_INACTIVE, FAILED_PRECONDITION, "PAY_008",                                              \
       "the plan is not offered to new subscribers")                                               \
    XX(STUDENT_REQUIRED, FAILED_PRECONDITION, "STUDENT_001",                                       \
       "an approved student verification is needed")                                               \
    XX(STUDENT_WRONG_CODE, INVALID_ARGUMENT, "STUDENT_002", "the verification code is wrong")      \
    XX(STUDENT_LOCKED, FAILED_PRECONDITION, "STUDENT_003",                                         \
       "too many wrong codes: submit a new verification")                                          \
    XX(STUDENT_CODE_EXPIRED, FAILED_PRECONDITION, "STUDENT_004",                                   \
       "the verification code has expired: submit a new verification")

/* clang-format cannot see the rows inside the macro. */
/* clang-format off */
typedef enum tw_err {
#define TW_ERR_ENUM(name, status, reason, message) TW_ERR_##name,
    TW_ERR_MAP(TW_ERR_ENUM)
#undef TW_ERR_ENUM
    TW_ERR__COUNT,
} tw_err;
/* clang-format on */

#define TW_OK TW_ERR_OK

/* The gRPC status code a tw_err travels as. */
int tw_err_grpc_status(tw_err err);

/* The stable reason string, for example "VAL_001"; "" for TW_OK. */
const char *tw_err_reason(tw_err err);

/* The short message a client may be shown. */
const char *tw_err_message(tw_err err);

/* The error whose reason is reason; TW_ERR__COUNT when none has it. */
tw_err tw_err_from_reason(const char *reason);

/* The row's name, for example "NOT_FOUND", for logs and tests. */
const char *tw_err_name(tw_err err);

/* The longest message tw_err_explain sets, with its NUL. */
#define TW_ERR_EXPLAIN_MAX 300

/*
 * For a refusal that names no field (NOT_FOUND, ALREADY_EXISTS,
 * FAILED_PRECONDITION...): formats what the client is told into arena (cut
 * to TW_ERR_EXPLAIN_MAX - 1 bytes) as *message (NULL when out of memory)
 * and returns err, for a domain step's `return tw_err_explain(env->arena,
 * &env->message, TW_ERR_NOT_FOUND, "task %s not found", id);`.
 */
tw_err tw_err_explain(tw_arena *arena, const char **message, tw_err err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
