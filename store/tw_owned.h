/*
 * Entities a user owns, reached the one way the keyspace allows: by
 * (family, user, id), for every OWNED family of tw_keyspace.h whose key is
 * exactly (user id, entity id) and whose value is a message. Because the
 * owner is the key's first part, another user's id is simply absent: a
 * handler cannot reach what is not the caller's, and "does this id belong
 * to the caller" is a point read (tw_owned_check).
 *
 * Reads take the transaction t when the caller writes after reading (the
 * read is then for update: commit fails if anyone else changes the key
 * meanwhile), or NULL for committed data. Any other family is
 * TW_ERR_INTERNAL.
 */
#ifndef TW_OWNED_H
#define TW_OWNED_H

#include "tw_key.h"
#include "tw_store.h"
#include "tw_txn.h"

/* The key of (family, user, id). */
void tw_owned_key(tw_key *k, tw_kf family, const tw_id *user, const tw_id *id);

/* The stored message, unpacked into arena; TW_ERR_NOT_FOUND when absent. */
tw_err tw_owned_get(tw_store *s, tw_txn *t, tw_kf family, const tw_id *user, const tw_id *id,
                    tw_arena *arena, ProtobufCMessage **out);

/* TW_OK when user has an entity id of family, TW_ERR_NOT_FOUND when not. */
tw_err tw_owned_check(tw_store *s, tw_txn *t, tw_kf family, const tw_id *user, const tw_id *id);

/* Writes (borrows msg) or deletes the entity in t. */
tw_err tw_owned_put(tw_txn *t, tw_kf family, const tw_id *user, const tw_id *id,
                    const ProtobufCMessage *msg);
tw_err tw_owned_delete(tw_txn *t, tw_kf family, const tw_id *user, const tw_id *id);

/* Whether family is one tw_owned serves, for tests. */
bool tw_owned_family(tw_kf family);

#endif
