/*
 * Hints: per user and name (a key prefix, such as the one of a parent's
 * subtasks in an index), the greatest string ever written under it, kept
 * in memory and exact with the user's commits. They answer a question that
 * would otherwise take a scan on every write ("the last order key among a
 * parent's subtasks", four reverse seeks) with a lookup.
 *
 * A hint may be greater than anything stored now (what raised it was
 * deleted or moved away since), never smaller: it suits decisions that
 * need a value at least as great as every stored one, such as a key that
 * sorts after all of them.
 *
 * Exactness: raises are applied when their transaction commits, under the
 * lock that orders the user's change-log commits; a missing hint is filled
 * by the caller's scan under the same lock, so no commit of the user runs
 * between the scan and the fill. Every write of what a hint stands for
 * must therefore raise it (tw_txn_hint_raise) in a transaction that
 * appends to the user's change log, as every owned write does. Hints live
 * as long as the open store; a fixed table holds them, the oldest filled
 * giving way.
 */
#ifndef TW_HINT_H
#define TW_HINT_H

#include "tw_txn.h"

/* Longest hint value, NUL included; a raise to a longer one drops the hint
 * (its readers scan again). */
#define TW_HINT_VALUE_MAX 160

/* The greatest value stored now under the hint's name, written to value
 * (cap bytes, NUL-terminated; "" when there is none). Values are shorter
 * than TW_HINT_VALUE_MAX. */
typedef tw_err (*tw_hint_scan_fn)(void *ctx, char *value, size_t cap);

/* user's hint name, into value (TW_HINT_VALUE_MAX bytes): from memory, or
 * from scan (run under the user's commit lock) when not held. */
tw_err tw_store_hint(tw_store *s, const tw_id *user, const tw_key *name, tw_hint_scan_fn scan,
                     void *ctx, char *value);

/* When t commits, raises user's hint name to value if value is greater
 * (bytewise). Joins t to the user's change-log lock. */
tw_err tw_txn_hint_raise(tw_txn *t, const tw_id *user, const tw_key *name, const char *value);

#endif
