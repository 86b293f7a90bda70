/*
 * What the files of store/ share and nothing outside store/ may use (tests
 * may, to reach below the public headers). Names here start with store_,
 * as curl's internal ones start with Curl_.
 */
#ifndef TW_STORE_INTERNAL_H
#define TW_STORE_INTERNAL_H

#include "tw_store.h"
#include "tw_hint.h"
#include "tw_txn.h"

#include <openssl/types.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>

#define STORE_PAGE_KEY_BYTES 32
/* Locks serialising change-log commits, one per group of users (by the
 * random last byte of the id): a power of two up to 256. */
#define STORE_LOG_LOCKS 256
/* Write epochs (tw_store_epoch): users share them by a hash of their id;
 * the one after theirs is the shared records'. */
#define STORE_EPOCHS       4096
#define STORE_SHARED_EPOCH STORE_EPOCHS
#define STORE_EPOCH_WORDS  (STORE_EPOCHS / 64 + 1)

/* Page-token MAC contexts (page.c), a slot per group of threads. */
#define STORE_PAGE_MACS 8
struct store_page_mac {
    pthread_mutex_t lock;
    EVP_MAC_CTX *mac; /* keyed with the store's page_key */
    EVP_MD_CTX *md;   /* for SHA-256 */
};

/* A hint held in memory (store/hint.c). */
#define STORE_HINT_WAYS     8
#define STORE_HINT_NAME_MAX 64
struct store_hint {
    bool held;
    uint8_t name_len;
    uint8_t name[STORE_HINT_NAME_MAX];
    char value[TW_HINT_VALUE_MAX];
};

/* The hints of the users of one log lock. Their values change only under
 * that log lock; lock guards the ways themselves (readers take only it). */
struct store_hint_set {
    pthread_mutex_t lock;
    unsigned next; /* the way the next fill takes */
    struct store_hint ways[STORE_HINT_WAYS];
};

struct tw_store {
    rocksdb_optimistictransactiondb_t *otxn; /* NULL when open read-only */
    rocksdb_t *db;                           /* the base DB: reads, backups */
    rocksdb_column_family_handle_t *cf[TW_CF__COUNT];
    rocksdb_options_t *db_opts;
    rocksdb_cache_t *row_cache;
    rocksdb_options_t *cf_opts[TW_CF__COUNT];
    rocksdb_writeoptions_t *write_opts;
    rocksdb_readoptions_t *read_opts;
    rocksdb_optimistictransaction_options_t *txn_opts;
    tw_store_options opts; /* opts.data_dir is not kept */
    uint8_t page_key[STORE_PAGE_KEY_BYTES];
    /* HMAC-SHA256 keyed with page_key and SHA-256 contexts, made once and
     * reused (page.c): fetching the algorithms was most of what a page
     * token cost, copying and freeing a keyed context a quarter of the rest. */
    struct store_page_mac page_macs[STORE_PAGE_MACS];
    EVP_MD *sha256;
    tw_store_commit_fn listener;
    void *listener_ctx;
    /* The last commit failed for a storage reason (not a conflict). */
    atomic_bool writes_failing;

    /* Change-log commits of one user run one at a time (store/txn.c). */
    pthread_mutex_t log_locks[STORE_LOG_LOCKS];
    /* Hints (tw_hint.h, store/hint.c), a set per log lock. */
    struct store_hint_set hints[STORE_LOG_LOCKS];
    /* Write epochs of cached families (tw_store_epoch, store/txn.c). */
    _Atomic uint64_t epochs[STORE_EPOCHS + 1];

    /* Group commit (TW_DURABLE): commits write the WAL without syncing it
     * and take a ticket; one sync of the WAL makes every commit before it
     * durable (store/txn.c). Tickets count from 1. Only the thread that
     * set syncing writes synced and failed_through. */
    _Atomic uint64_t committed;      /* tickets handed out */
    _Atomic uint64_t synced;         /* every ticket up to this is durable */
    _Atomic uint64_t failed_through; /* a sync failed: tickets up to this may be lost */
    atomic_bool syncing;             /* one thread syncs at a time */
    _Atomic uint32_t syncs_ended;    /* moves after each sync; waiters sleep on it */
};

/* A change-log entry a transaction appends; its sequence number is given
 * at commit (store/changelog.c). */
struct store_append {
    struct store_append *next;
    const char *resource_type; /* in the transaction's arena */
    tw_id resource_id;
    int op;             /* tw_change_op */
    uint64_t *sequence; /* the caller's, set at commit; NULL: not wanted */
};

/* What a transaction does to one user's change log: entries to append, in
 * order, and entries it deleted (trimming). Applied to the user's log head
 * at commit, with the user's log lock held. */
struct store_log {
    struct store_log *next;
    tw_id user;
    struct store_append *appends, **appends_end;
    uint64_t trimmed_through;   /* entries up to here are deleted by t; 0: none */
    uint64_t last_sequence;     /* after store_log_apply: for the commit listener */
    struct store_raise *raises; /* tw_txn_hint_raise, applied after the commit */
};

struct store_raise {
    struct store_raise *next;
    uint8_t name_len;
    uint8_t name[STORE_HINT_NAME_MAX];
    const char *value; /* in the transaction's arena */
};

/* Applies l's raises (tw_txn_hint_raise) once t committed; call with the
 * log lock of l's user held. */
void store_hints_raise(tw_store *s, const struct store_log *l);
/* Hint sets made ready and put away with the store. */
void store_hints_init(tw_store *s);
void store_hints_free(tw_store *s);

struct tw_txn {
    tw_store *store;
    rocksdb_transaction_t *rtx;
    tw_arena *arena; /* packed values, logs; dies with the transaction */
    struct store_log *logs;
    bool skip_sync; /* tw_txn_skip_sync */
    /* The epochs t's writes advance at commit, a bit each; NULL: none. */
    uint64_t *epoch_marks;
};

/* The log of user in t, made empty when t has none yet; NULL when out of
 * memory. */
struct store_log *store_log_of(tw_txn *t, const tw_id *user);

/* The lock of user's change log. */
pthread_mutex_t *store_log_lock(tw_store *s, const tw_id *user);

/* Gives t's appended entries their sequence numbers after the user's
 * committed head, and writes them and the new heads into t untracked (the
 * log locks make them safe). Call with the locks of every log of t held. */
tw_err store_log_apply(tw_txn *t);

/* Puts (v; NULL for a TW_VAL_NONE family) or deletes (del) a complete key
 * in t's batch without tracking it: commit checks no conflict on it. Only
 * for keys something else guards (tw_txn_put_index, the log locks). */
tw_err store_txn_write_untracked(tw_txn *t, const tw_key *k, const tw_value *v, bool del);

/* Makes every commit up to ticket durable (TW_DURABLE), sharing one WAL
 * sync with every committer waiting at the same time. */
tw_err store_sync_through(tw_store *s, uint64_t ticket);

/* Makes every commit so far durable: what a reader is about to hand out
 * was not written by a commit that could still be lost. */
tw_err store_sync_committed(tw_store *s);

/* Records "what: message" as this thread's last error and returns what the
 * RocksDB error err maps to. Takes err (rocksdb_free). */
tw_err store_rocks_error(char *err, const char *what);

/* Records a formatted last error; returns code. */
tw_err store_fail(tw_err code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records the errno text: "what: strerror(errno)"; returns TW_ERR_DB. */
tw_err store_errno(const char *what);

/* k->err, or TW_ERR_INTERNAL when k lacks parts (a prefix where a whole key
 * is needed). */
tw_err store_key_ready(const tw_key *k);

/* Value codecs (store/codec.c). Encoding allocates in arena. Decoding a
 * value that does not fit its family is TW_ERR_DB_CORRUPT. */
tw_err store_value_encode(const tw_key_family *f, const tw_value *v, tw_arena *arena,
                          uint8_t **bytes, size_t *len);
tw_err store_value_decode(const tw_key_family *f, const void *bytes, size_t len, tw_arena *arena,
                          tw_value *out);

/* Makes s->page_macs and s->sha256 once s->page_key is set (page.c). */
tw_err store_page_mac_init(tw_store *s);
/* Frees them. */
void store_page_mac_free(tw_store *s);

/* Finishes a point read: takes ps and err, decodes into out.
 * TW_ERR_NOT_FOUND when ps is NULL without an error. */
tw_err store_pinned_decode(const tw_key_family *f, rocksdb_pinnableslice_t *ps, char *err,
                           tw_arena *arena, tw_value *out);

/* The UNIQUE_BY_OWNER key listing a claim under its owner (store/unique.c). */
void store_unique_owner_key(tw_key *k, const tw_id *owner, const char *space, const char *value);

/* Creates dir and its missing parents (mode 0700), fsyncing each parent
 * that gains an entry. */
tw_err store_mkdirs(const char *dir);

/* fsyncs a directory, so entries made or renamed in it are durable. */
tw_err store_fsync_dir(const char *dir);

/* Removes path and everything below it, best effort (cleaning up after
 * another failure, whose last error it leaves alone); false if something
 * stayed. Absent is fine. */
bool store_remove_tree(const char *path);

#endif
