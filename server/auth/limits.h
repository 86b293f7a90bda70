/*
 * Rate limits: failed sign-ins per account and per client address, and API
 * calls per user.
 *
 * Sign-ins. Failures are kept in the store (LOGIN_FAILURES, by subject
 * "account:<SHA-256 of the email, hex>" or "peer:<address>"), so a restart
 * forgives nothing. An attempt first reserves a place against its
 * account's budget (failures in the window plus attempts in flight must
 * stay under the limit), then runs (hashes), then reports whether it
 * failed. So 10 wrong passwords sent at once get exactly 5 answers from the
 * password check and 5 refusals, and guessing one account in parallel gains
 * nothing. The address's limit counts failures only, so many people behind
 * one address may still sign in at once.
 *
 * API calls. GCRA (a token bucket kept as one time per user and class):
 * `limit` calls may come at once, then one each period/limit; the refused
 * learn when the next is allowed. Kept in memory only: a restart forgets
 * at most an hour of calls.
 */
#ifndef TW_LIMITS_H
#define TW_LIMITS_H

#include "tw_err.h"
#include "tw_id.h"
#include "tw_store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Arithmetic (pure, for tests) ---------------------------------------- */

/*
 * GCRA: *tat is the theoretical arrival time in microseconds (0 when
 * fresh). Takes one call at now_us for a limit of `limit` per `period_us`:
 * true and *tat advanced, or false with *retry_us the wait until one is
 * allowed.
 */
bool tw_gcra_take(int64_t *tat, int64_t now_us, int64_t limit, int64_t period_us,
                  int64_t *retry_us);

/*
 * A sliding window of failures: times[0..n) oldest first. Whether one more
 * attempt may start when in_flight are already running, with at most limit
 * failures per window_ms; when not, *retry_ms is when enough failures will
 * have left the window (at least 1000 ms when only attempts in flight are
 * in the way). Times at or before now_ms - window_ms are not counted.
 */
bool tw_login_window_allows(const int64_t *times, size_t n, int64_t in_flight, int64_t limit,
                            int64_t window_ms, int64_t now_ms, int64_t *retry_ms);

/* ---- Sign-ins ---------------------------------------------------------- */

typedef struct tw_login_limits {
    int64_t per_account;
    int64_t per_peer;
    int64_t window_ms;
} tw_login_limits;

typedef struct tw_login_limiter tw_login_limiter;

/* An attempt in progress: the subjects it reserved a place for. */
typedef struct tw_login_ticket {
    char account[80];
    char peer[80];
} tw_login_ticket;

/* s is borrowed for the limiter's life. */
tw_err tw_login_limiter_new(tw_store *s, const tw_login_limits *limits, tw_login_limiter **out);
void tw_login_limiter_free(tw_login_limiter *l);

/* The subject of a gRPC peer ("ipv4:127.0.0.1:5000" -> "127.0.0.1"). */
void tw_login_peer_address(const char *peer, char *out, size_t len);

/*
 * Reserves an attempt for email (normalised) from peer_address at now_ms.
 * TW_ERR_RATE_LIMITED with *retry_ms when either subject is over its
 * limit; storage errors as the store's. On TW_OK call tw_login_end exactly
 * once with the ticket.
 */
tw_err tw_login_begin(tw_login_limiter *l, const char *email, const char *peer_address,
                      int64_t now_ms, tw_login_ticket *ticket, int64_t *retry_ms);

/* Ends an attempt: a failure is recorded against both subjects; a success
 * clears the account's failures. TW_ERR_RATE_LIMITED (with *retry_ms; may
 * be NULL) when the address reached its limit while the attempt ran: then
 * nothing is recorded and the caller must not reveal the outcome. Storage
 * errors in recording are logged. */
tw_err tw_login_end(tw_login_limiter *l, const tw_login_ticket *ticket, bool failed, int64_t now_ms,
                    int64_t *retry_ms);

/* Forgets an account's failures (its account is being deleted). */
tw_err tw_login_forget(tw_store *s, const char *email);

/* ---- API calls -------------------------------------------------------- */

typedef enum tw_api_class { TW_API_ALL, TW_API_WRITE, TW_API__COUNT } tw_api_class;

typedef struct tw_api_limiter tw_api_limiter;

/* limits[class] calls per hour. */
tw_err tw_api_limiter_new(const int64_t limits[TW_API__COUNT], tw_api_limiter **out);
void tw_api_limiter_free(tw_api_limiter *l);

/* Counts a call of user (of every class, plus the write class when write)
 * at now_us, on the monotonic clock (the counts live in memory; a wall
 * clock set back must not lock anyone out); false with *retry_ms when over
 * a limit (nothing is counted). */
bool tw_api_limiter_take(tw_api_limiter *l, const tw_id *user, bool write, int64_t now_us,
                         int64_t *retry_ms);

#endif
