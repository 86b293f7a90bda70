/*
 * What the files of store/ share and nothing outside store/ may use (tests
 * may, to reach below the public headers). Names here start with store_,
 * as curl's internal ones start with Curl_.
 */
#ifndef TW_STORE_INTERNAL_H
#define TW_STORE_INTERNAL_H

#include "tw_store.h"
#include "tw_txn.h"

#include <rocksdb/c.h>
#include <stdatomic.h>

#define STORE_PAGE_KEY_BYTES 32

struct tw_store {
    rocksdb_optimistictransactiondb_t *otxn; /* NULL when open read-only */
    rocksdb_t *db;                           /* the base DB: reads, backups */
    rocksdb_column_family_handle_t *cf[TW_CF__COUNT];
    rocksdb_options_t *db_opts;
    rocksdb_options_t *cf_opts[TW_CF__COUNT];
    rocksdb_writeoptions_t *write_opts;
    rocksdb_readoptions_t *read_opts;
    rocksdb_optimistictransaction_options_t *txn_opts;
    tw_store_options opts; /* opts.data_dir is not kept */
    uint8_t page_key[STORE_PAGE_KEY_BYTES];
    tw_store_commit_fn listener;
    void *listener_ctx;
    /* The last commit failed for a storage reason (not a conflict). */
    atomic_bool writes_failing;
};

/* A change-log head a transaction has loaded (store/changelog.c). */
struct store_head {
    struct store_head *next;
    tw_id user;
    uint64_t last_sequence;
    uint64_t trimmed_through;
    bool appended; /* tell the commit listener */
};

struct tw_txn {
    tw_store *store;
    rocksdb_transaction_t *rtx;
    tw_arena *arena; /* packed values, heads; dies with the transaction */
    struct store_head *heads;
};

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

/* The store's clock. */
int64_t store_now_ms(const tw_store *s);

/* Value codecs (store/codec.c). Encoding allocates in arena. Decoding a
 * value that does not fit its family is TW_ERR_DB_CORRUPT. */
tw_err store_value_encode(const tw_key_family *f, const tw_value *v, tw_arena *arena,
                          uint8_t **bytes, size_t *len);
tw_err store_value_decode(const tw_key_family *f, const void *bytes, size_t len, tw_arena *arena,
                          tw_value *out);

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
