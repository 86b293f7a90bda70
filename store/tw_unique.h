/*
 * Unique claims: a value in a space (an email in "email") belongs to at most
 * one owner (a user id), whoever races for it. A claim is read for update
 * before it is written, so of two transactions claiming one value at once
 * exactly one commits; the other is retried by tw_txn_run and then sees the
 * claim: TW_ERR_ALREADY_EXISTS. Each claim is also listed under its owner
 * (migration 1 built that list), so deleting an account releases them all.
 *
 * Spaces and values are compared as bytes: normalise first (lower-case an
 * email). Strings are borrowed during each call.
 */
#ifndef TW_UNIQUE_H
#define TW_UNIQUE_H

#include "tw_txn.h"

/* Claims value for owner in t. Claiming one's own claim again is fine;
 * TW_ERR_ALREADY_EXISTS when another owner has it. */
tw_err tw_txn_unique_claim(tw_txn *t, const char *space, const char *value, const tw_id *owner);

/* Releases owner's claim. TW_ERR_NOT_FOUND when owner does not hold it. */
tw_err tw_txn_unique_release(tw_txn *t, const char *space, const char *value, const tw_id *owner);

/* Releases every claim owner holds (as committed before t began; claims
 * made in t itself are not seen). */
tw_err tw_txn_unique_release_all(tw_txn *t, const tw_id *owner);

/* Who holds value; TW_ERR_NOT_FOUND when nobody does. */
tw_err tw_store_unique_lookup(tw_store *s, const char *space, const char *value, tw_id *owner);

#endif
