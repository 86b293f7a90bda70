/*
 * Transactions: the one atomic write of an RPC. A handler reads what it
 * needs (get_for_update for anything its decision depends on), then puts
 * and deletes the entity, its indexes, its counters (tw_counter.h), its
 * change-log entry (tw_changelog.h) and any job it causes (tw_jobs.h);
 * commit writes all of it or nothing, under the store's durability profile,
 * and returns only once it is written so.
 *
 * Transactions are optimistic: nothing is locked; commit fails with
 * TW_ERR_CONFLICT when a key read for update, or written, was committed by
 * someone else after this transaction read or first wrote it. tw_txn_run()
 * retries such conflicts, so a handler written as a tw_txn_fn never sees
 * one unless contention persists.
 *
 * A transaction belongs to one thread at a time. Writes are visible to its
 * own gets before commit and to nobody else until then.
 *
 * Under TW_DURABLE, commit returns once the transaction is durable, and
 * concurrent commits share the WAL sync that makes them so (group commit,
 * store/txn.c). Others may read a commit a moment (one sync) before it is
 * durable; the change log never hands out such an entry.
 */
#ifndef TW_TXN_H
#define TW_TXN_H

#include "tw_store.h"

typedef struct tw_txn tw_txn;

/* Starts a transaction. TW_ERR_DB_READ_ONLY on a read-only store. */
tw_err tw_txn_begin(tw_store *s, tw_txn **out);

/* Reads a complete key as this transaction sees it (its own writes
 * first). TW_ERR_NOT_FOUND when absent. The value lives in arena. */
tw_err tw_txn_get(tw_txn *t, const tw_key *k, tw_arena *arena, tw_value *out);

/* The same, and commit fails with TW_ERR_CONFLICT if anyone else commits
 * this key (creates, changes or deletes it) before this transaction does:
 * read every key a decision depends on this way, absent ones included (a
 * unique index entry, a change-log head). */
tw_err tw_txn_get_for_update(tw_txn *t, const tw_key *k, tw_arena *arena, tw_value *out);

/* Writes a complete key. v is borrowed; NULL for a TW_VAL_NONE family. A
 * message of another type than the family's is TW_ERR_INTERNAL. */
tw_err tw_txn_put(tw_txn *t, const tw_key *k, const tw_value *v);

/* Deletes a complete key; deleting an absent key is not an error. */
tw_err tw_txn_delete(tw_txn *t, const tw_key *k);

/*
 * The same for an index entry of an entity whose own key t reads for update
 * or writes: any transaction changing the entry must do so too, so it
 * conflicts on the entity's key, and the entry itself is written untracked
 * (commit checks no conflict for it: one memtable lookup and lock bucket
 * fewer per entry). t reads the entry back like any write.
 */
tw_err tw_txn_put_index(tw_txn *t, const tw_key *k, const tw_value *v);
tw_err tw_txn_delete_index(tw_txn *t, const tw_key *k);

/* Commits and ends the transaction, whatever the outcome (t is freed).
 * TW_ERR_CONFLICT: lost a race, nothing written. Other errors: nothing
 * written (RocksDB applies a batch whole or not at all). */
tw_err tw_txn_commit(tw_txn *t);

/* Lets t's commit return once its batch is in the WAL, without waiting for
 * the WAL sync of TW_DURABLE: for a count that a crash may lose but that
 * is not worth a sync of its own (the gate's API-call meter). The next
 * commit that waits makes it durable too: one WAL, synced in order. */
void tw_txn_skip_sync(tw_txn *t);

/* Ends the transaction without writing anything. Accepts NULL. */
void tw_txn_abort(tw_txn *t);

/* The store t runs on, for a prefix scan that decides what t writes (the
 * scan sees committed data, not t's own writes). */
tw_store *tw_txn_store(tw_txn *t);

/*
 * Runs fn in a transaction and commits it; when the commit conflicts, runs
 * fn again in a new transaction after a short random pause, up to 16
 * times, then gives up with TW_ERR_CONFLICT. An error from fn aborts and is
 * returned as it is (TW_ERR_CONFLICT from fn included: it is not retried).
 * fn must therefore do nothing outside the transaction that cannot be
 * repeated; ctx is passed through.
 */
typedef tw_err (*tw_txn_fn)(tw_txn *t, void *ctx);
tw_err tw_txn_run(tw_store *s, tw_txn_fn fn, void *ctx);

#endif
