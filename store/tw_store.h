/*
 * The store: twd's persistence on RocksDB (an OptimisticTransactionDB; see
 * store/store.c for why), with one column family per kind of data
 * (tw_keyspace.h). This header opens and closes it and reads from it;
 * writes go through transactions (tw_txn.h); counters, the change log, the
 * job queue, unique claims, page tokens, migrations, backups and blobs have
 * headers of their own.
 *
 * Errors: every function returns a tw_err. Storage failures are
 * TW_ERR_DB (DB_001), TW_ERR_DB_CORRUPT for a value or file that does not
 * decode or fails its checksum, TW_ERR_DB_READ_ONLY when writes are refused
 * but reads still work (a store opened read-only, or RocksDB stopped after a
 * write failure such as a full disk). The detail for the log (RocksDB's own
 * message, the errno text, the key family) is kept per thread: see
 * tw_store_last_error().
 *
 * Ownership, for this header and the store's others: pointer arguments are
 * borrowed for the duration of the call unless a comment says a function
 * takes or copies them; what a function hands back of variable size (a
 * message, a string, a list) is allocated in the arena the caller passes
 * and dies with it; handles (tw_store, tw_txn, tw_store_iter, blob writers
 * and readers) are owned by the caller until the function that ends them.
 *
 * A tw_store is shared by all threads; everything here is thread-safe except
 * open, close and tw_store_set_commit_listener, which run alone.
 */
#ifndef TW_STORE_H
#define TW_STORE_H

#include "tw_arena.h"
#include "tw_err.h"
#include "tw_id.h"
#include "tw_key.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct tw_store tw_store;

/* When a commit returns, as the durability profiles say. */
typedef enum tw_durability {
    /* The WAL is fsynced before commit returns: survives power loss.
     * Concurrent commits share one fsync (the store's group commit,
     * store/txn.c). */
    TW_DURABLE,
    /* The WAL is written but not synced: survives a crash of twd, not of
     * the machine. */
    TW_FAST,
} tw_durability;

typedef struct tw_store_options {
    /* Borrowed during open. RocksDB lives in <data_dir>/db; both are made
     * when missing (unless read_only). */
    const char *data_dir;
    tw_durability durability;
    /* Open for reading only (`twd check`, a second process): writes fail
     * with TW_ERR_DB_READ_ONLY. Safe while another process serves the DB. */
    bool read_only;
    /* twd's one clock, in Unix ms (tw_store_now_ms): stored times, job due
     * times and leases, calls' "now" (the engine reads it), voice notes'
     * and accounts' times. NULL for the wall clock. Tests make time pass
     * without sleeping. */
    int64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
    /* Keep RocksDB's statistics (counters and timing histograms of reads,
     * writes, compactions; tw_store_ops.h) for /metrics. Costs a little on
     * every read and write. */
    bool statistics;
    /* A failed job waits between half and all of base * 2^(attempts-1)
     * ms (at most max ms), at random; 0 means 1 s and 1 h. */
    uint32_t job_backoff_base_ms;
    uint32_t job_backoff_max_ms;
} tw_store_options;

/* Opens (creating when missing) the store. On a new database it writes
 * StoreInfo (format version, page-token key); a database of a newer format
 * than this binary knows is refused (TW_ERR_FAILED_PRECONDITION).
 * Migrations are not run here: see tw_migrate.h. */
tw_err tw_store_open(const tw_store_options *opts, tw_store **out);

/* Closes the store; no transaction or iterator may be open. Accepts NULL. */
void tw_store_close(tw_store *s);

/* Now in Unix ms on s's clock (tw_store_options.clock_ms): the one clock
 * of twd, for whatever has no call's "now" to read. Any thread. */
int64_t tw_store_now_ms(const tw_store *s);

/* The detail of this thread's last store failure ("commit: IO error: No
 * space left on device ..."), for the log; "" when none. Valid until this
 * thread's next store call. Never shown to clients. */
const char *tw_store_last_error(void);

/*
 * A stored value. Which member holds it is set by the key's family:
 * TW_VAL_MSG msg, TW_VAL_U64 u64, TW_VAL_ID id; for TW_VAL_NONE the key's
 * presence is the value. Read: msg is allocated in the caller's arena and
 * lives as long as it. Write: msg is borrowed during the call.
 */
typedef struct tw_value {
    ProtobufCMessage *msg;
    uint64_t u64;
    tw_id id;
} tw_value;

/* Reads the latest committed value of a complete key. TW_ERR_NOT_FOUND
 * when absent; TW_ERR_DB_CORRUPT when it does not decode. k is borrowed;
 * arena may be NULL when the family's value is not a message. */
tw_err tw_store_get(tw_store *s, const tw_key *k, tw_arena *arena, tw_value *out);

/* The same value's stored bytes, not decoded, copied into arena: for
 * serving a stored message, or one field of it (tw_wire.h), as it is,
 * rather than decoding it to pack it again. TW_ERR_NOT_FOUND when absent. */
tw_err tw_store_get_bytes(tw_store *s, const tw_key *k, tw_arena *arena, const uint8_t **bytes,
                          size_t *len);

/* Decodes the stored bytes of a value of family kf as tw_store_get does. */
tw_err tw_store_decode(tw_kf kf, const uint8_t *bytes, size_t len, tw_arena *arena, tw_value *out);

/*
 * Prefix scans. prefix is a key with some leading parts (at least the
 * family); the scan yields every key that starts with it, in key order, or
 * in reverse order (newest first for UUIDv7 ids and times). after, when
 * after_len > 0, resumes a scan: only keys strictly after it in the scan's
 * direction are yielded (a page token's cursor is the last key returned).
 * The scan sees the store as it was when it began. prefix and after are
 * copied.
 *
 *     tw_store_iter *it;
 *     if ((err = tw_store_scan(s, &prefix, NULL, 0, true, &it)))
 *         goto out;
 *     while (tw_store_iter_next(it)) { ... tw_store_iter_value(it, arena, &v) ... }
 *     err = tw_store_iter_close(it);
 */
typedef struct tw_store_iter tw_store_iter;

tw_err tw_store_scan(tw_store *s, const tw_key *prefix, const void *after, size_t after_len,
                     bool reverse, tw_store_iter **out);
/* Moves to the next key; false at the end or on an error (see close). */
bool tw_store_iter_next(tw_store_iter *it);
/* The current key; valid until the next move. */
void tw_store_iter_key(const tw_store_iter *it, const uint8_t **key, size_t *len);
/* A reader (tw_key.h) on the current key, of the scanned family; valid
 * until the next move. */
void tw_store_iter_read_key(const tw_store_iter *it, tw_key_reader *r);
/* The current value, decoded as the key's family says. */
tw_err tw_store_iter_value(tw_store_iter *it, tw_arena *arena, tw_value *out);
/* The current value's stored bytes, not decoded; valid until the next move. */
void tw_store_iter_bytes(const tw_store_iter *it, const uint8_t **bytes, size_t *len);
/* Ends the scan; returns the first error it met, TW_OK if none. Accepts NULL. */
tw_err tw_store_iter_close(tw_store_iter *it);

/*
 * Write epochs, for readers that keep records of an OWNED_CACHED or
 * SHARED_CACHED family (tw_keyspace.h) in memory. A user's epoch advances
 * with every commit that writes such a record of the user, the shared
 * epoch (user NULL) with every commit that writes a shared one, once the
 * write is visible and before the commit returns. A reader notes the epoch
 * before it reads the store and trusts what it kept only while the epoch is
 * the same: after a commit that changed the record returns, no reader is
 * answered from memory with what it replaced. Users share epochs (a fixed
 * table), so another user's writes can advance one too: a needless read,
 * never a stale answer.
 */
uint64_t tw_store_epoch(tw_store *s, const tw_id *user);

/* True after a commit failed for a storage reason (a full disk) and no
 * commit has succeeded since: reads work, writes are refused with
 * TW_ERR_DB_READ_ONLY until the cause is fixed and twd restarted. For
 * /health/db. */
bool tw_store_writes_failing(tw_store *s);

/*
 * Called after every commit that appended to a user's change log, once per
 * user, with the user's new last sequence, on the committing thread: keep it
 * short (wake a Watch stream). user is borrowed during the call. Set it
 * before serving; NULL removes it.
 */
typedef void (*tw_store_commit_fn)(void *ctx, const tw_id *user, uint64_t last_sequence);
void tw_store_set_commit_listener(tw_store *s, tw_store_commit_fn fn, void *ctx);

/* What a whole-database check found. */
typedef struct tw_store_report {
    uint64_t keys[TW_CF__COUNT]; /* keys per column family */
    uint64_t bytes;              /* key and value bytes read */
    uint64_t bad_keys;           /* not a key of any family, or in the wrong column family */
    uint64_t bad_values;         /* a value that does not decode as its family says */
} tw_store_report;

/* Reads every key of every column family with checksums verified, checks
 * each key against the keyspace and decodes each value. TW_ERR_DB_CORRUPT
 * when a checksum fails or anything is bad (the report says how much, the
 * last error where); out is filled either way. */
tw_err tw_store_verify(tw_store *s, tw_store_report *out);

/* Calls fn with every key and raw value of every column family, in key
 * order, one family after another; an error from fn stops the walk and is
 * returned. Bytes are borrowed during each call. For operator tools and
 * tests that must see everything stored (that no key of a deleted user is
 * left, for one). */
typedef tw_err (*tw_store_record_fn)(void *ctx, tw_cf cf, const uint8_t *key, size_t key_len,
                                     const uint8_t *value, size_t value_len);
tw_err tw_store_each_record(tw_store *s, tw_store_record_fn fn, void *ctx);

/* `twd check`: opens <data_dir> read-only, verifies it and closes it. */
tw_err tw_store_check(const char *data_dir, tw_store_report *out);

#endif
