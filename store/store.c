/*
 * Opening, reading and checking the store; the error reporting every store
 * file uses.
 *
 * Why OptimisticTransactionDB and not TransactionDB:
 *  - Backups. BackupEngine needs the base DB, and RocksDB 7.8's C API has
 *    rocksdb_optimistictransactiondb_get_base_db but nothing of the kind for
 *    a TransactionDB, so only the optimistic flavour can be backed up online
 *    through the C API (checkpoints work on both, but are not verified
 *    copies with checksums and retention).
 *  - Races still have exactly one winner. Each transaction reads what its
 *    decision depends on with get_for_update, absent keys included; commit
 *    checks that none of those keys (nor any key it writes) was committed
 *    by someone else since, and fails with Busy otherwise. Two threads
 *    registering one email both read "absent" and both write; the first
 *    commit wins, the second is refused, retried by tw_txn_run, reads the
 *    claim and answers ALREADY_EXISTS.
 *  - Our write units are short and rarely contended (keys start with the
 *    user's id), so validation at commit is cheaper than taking locks, and
 *    no lock timeouts or deadlock detection are needed. Hot shared keys are
 *    counters, written as untracked merges that cannot conflict
 *    (store/counter.c).
 */
#include "store_internal.h"

#include "rocks_occ.h"
#include "tw/store/v1/records.pb-c.h"
#include "tw_time.h"

#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Version of the key and value layout; see StoreInfo.format_version. */
#define STORE_FORMAT_VERSION 1
#define STORE_META_INFO      "store"

/* Commits validate their tracked keys under these many mutexes, a key's
 * bucket by its hash (OptimisticTransactionDBOptions.occ_lock_buckets).
 * RocksDB's default, 2^20, allocates about 50 MiB at open. A commit holds
 * its few buckets only while it checks its keys in memory, and only the
 * threads that commit (the write pool, job workers, a few more) do so at
 * once: two of them sharing a bucket wait microseconds for each other, and
 * a bucket shared never changes an outcome. 4096 cost about 200 KiB. */
#define OCC_LOCK_BUCKETS 4096

/* Table files' data blocks. RocksDB's default is 4 KiB; a page of 50 tasks
 * spanned four or five of them, and moving to the next block (a cache
 * lookup under a shard lock, a new block iterator) was a third of what
 * the scan's steps cost. Blocks stay in RocksDB's cache once read, so a
 * point read of one record pays a binary search over a few more restart
 * points, and nothing else. */
#define STORE_BLOCK_BYTES (16 * 1024)

/* Records read by key, kept whole (RocksDB's row cache). A point read of a
 * record in a table file otherwise walks the file's filter, index block
 * and data block on every call, even when all three are in the block
 * cache: 7 % of GetTask's CPU, where a row cache hit costs one hash
 * lookup. Entries are per table file and sequence, so a newer write is
 * never hidden by one; scans do not use it. It fills only as records are
 * read: an idle twd holds none of it. */
#define STORE_ROW_CACHE_BYTES (8 * 1024 * 1024)

/* Column family options RocksDB 7.8's C API cannot set.
 *
 * max_auto_readahead_size=0: an iterator that has read two blocks of a file
 * in a row otherwise calls readahead(2) for the next ones on every block it
 * moves to, even when they are in RocksDB's cache, as a list's blocks
 * almost always are (2.5 % of ListTasks' CPU). Scans here are short pages,
 * not long sequential reads; compactions read ahead by their own setting,
 * and tw_store_verify's whole-database read by an explicit one.
 *
 * memtable_insert_with_hint_prefix_extractor=fixed:1: the memtable keeps,
 * per key family (the first byte), where it last inserted, and starts the
 * next insert of that family there. One created task writes a key in each
 * of several families, so each insert used to search the skip list from
 * the top: a third of CreateTask's instructions were memtable inserts. New
 * keys of a family mostly land near its last one (ids and change sequences
 * grow with time): 101k -> 48k instructions of memtable inserts per
 * CreateTask for one user; still 3 % fewer in all with 16 users
 * interleaved. A hint per family costs a few hundred bytes per memtable,
 * where one per user would grow with the users writing. */
#define STORE_CF_OPTIONS                                                                           \
    "block_based_table_factory={max_auto_readahead_size=0};"                                       \
    "memtable_insert_with_hint_prefix_extractor=fixed:1"

/* ---- Errors ---------------------------------------------------------- */

static _Thread_local char last_error[512];

const char *tw_store_last_error(void)
{
    return last_error;
}

tw_err store_fail(tw_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

tw_err store_errno(const char *what)
{
    return store_fail(TW_ERR_DB, "%s: %m", what);
}

/* How RocksDB's status texts map to our errors; the first row whose text
 * occurs in the message wins, and anything else is TW_ERR_DB. The C API
 * gives only Status::ToString(), so the text is all there is to go on. */
static const struct {
    const char *text;
    tw_err err;
} rocks_errors[] = {
    {"Resource busy", TW_ERR_CONFLICT},      /* optimistic commit lost a race */
    {"Try again", TW_ERR_CONFLICT},          /* too little history to tell: a race too */
    {"read only mode", TW_ERR_DB_READ_ONLY}, /* opened read-only */
    {"Corruption", TW_ERR_DB_CORRUPT},       /* checksum or format failure */
};

tw_err store_rocks_error(char *err, const char *what)
{
    tw_err code = TW_ERR_DB;
    for (size_t i = 0; i < sizeof rocks_errors / sizeof rocks_errors[0]; i++) {
        if (strstr(err, rocks_errors[i].text) != NULL) {
            code = rocks_errors[i].err;
            break;
        }
    }
    store_fail(code, "%s: %s", what, err);
    rocksdb_free(err);
    return code;
}

tw_err store_key_ready(const tw_key *k)
{
    if (k->err)
        return store_fail(k->err, "bad %s key", tw_keyspace_family(k->family)->name);
    if (!tw_key_complete(k))
        return store_fail(TW_ERR_INTERNAL, "incomplete %s key",
                          tw_keyspace_family(k->family)->name);
    return TW_OK;
}

int64_t tw_store_now_ms(const tw_store *s)
{
    return s->opts.clock_ms ? s->opts.clock_ms(s->opts.clock_ctx) : tw_wall_ms();
}

/* ---- Open and close -------------------------------------------------- */

static void store_free(tw_store *s)
{
    for (int i = 0; i < STORE_LOG_LOCKS; i++)
        pthread_mutex_destroy(&s->log_locks[i]);
    store_hints_free(s);
    for (int i = 0; i < TW_CF__COUNT; i++) {
        if (s->cf[i] != NULL)
            rocksdb_column_family_handle_destroy(s->cf[i]);
    }
    if (s->otxn != NULL) {
        rocksdb_optimistictransactiondb_close_base_db(s->db); /* only the wrapper */
        rocksdb_optimistictransactiondb_close(s->otxn);
    } else if (s->db != NULL) {
        rocksdb_close(s->db);
    }
    for (int i = 0; i < TW_CF__COUNT; i++) {
        if (s->cf_opts[i] != NULL)
            rocksdb_options_destroy(s->cf_opts[i]);
    }
    if (s->db_opts != NULL)
        rocksdb_options_destroy(s->db_opts);
    if (s->row_cache != NULL)
        rocksdb_cache_destroy(s->row_cache);
    if (s->write_opts != NULL)
        rocksdb_writeoptions_destroy(s->write_opts);
    if (s->read_opts != NULL)
        rocksdb_readoptions_destroy(s->read_opts);
    if (s->txn_opts != NULL)
        rocksdb_optimistictransaction_options_destroy(s->txn_opts);
    store_page_mac_free(s);
    free(s);
}

static tw_err set_options(tw_store *s)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    /* Replay the WAL up to the first torn record: what was synced (every
     * acknowledged write under TW_DURABLE) is never behind it. */
    rocksdb_options_set_wal_recovery_mode(o, 2 /* kPointInTimeRecovery */);
    rocksdb_options_set_max_background_jobs(o, 2);
    /* RocksDB's own LOG file keeps only its header (the options at open).
     * Debian's librocksdb 7.8 is built with assertions on, and its file
     * logger asserts, aborting twd, when it writes again after a failed
     * write, which is what a full disk does to it. What goes wrong reaches
     * twd's log through tw_store_last_error() instead. */
    rocksdb_options_set_info_log_level(o, 5 /* HEADER_LEVEL */);
    rocksdb_options_set_keep_log_file_num(o, 5);
    /* Keep every table file open: a read-only opener (`twd check`) then
     * never trips over a file compacted away while it reads. */
    rocksdb_options_set_max_open_files(o, -1);
    if (s->opts.statistics)
        rocksdb_options_enable_statistics(o);
    s->row_cache = rocksdb_cache_create_lru(STORE_ROW_CACHE_BYTES);
    rocksdb_options_set_row_cache(o, s->row_cache);
    s->db_opts = o;
    for (int i = 0; i < TW_CF__COUNT; i++) {
        s->cf_opts[i] = rocksdb_options_create();
        if (tw_keyspace_cf_merges_u64((tw_cf)i))
            rocksdb_options_set_uint64add_merge_operator(s->cf_opts[i]);
        /* Bloom filters over whole keys. A point read of an absent key (a
         * new id checked for use, a request id never seen, a deleted-task
         * marker) is answered from the filter instead of a skip-list search
         * or an index block per table file. Such reads are of records (the
         * data family), and of new ones, still in the memtable: only its
         * memtable has one (each costs 1 % of the write buffer, zeroed at
         * once). Table files have them above the last level only: most
         * reads find their key, mostly in the last level, where a filter
         * would cost them a probe and save nothing. */
        if (i == TW_CF_DATA) {
            rocksdb_options_set_memtable_prefix_bloom_size_ratio(s->cf_opts[i], 0.01);
            rocksdb_options_set_memtable_whole_key_filtering(s->cf_opts[i], 1);
        }
        rocksdb_options_set_optimize_filters_for_hits(s->cf_opts[i], 1);
        rocksdb_block_based_table_options_t *table = rocksdb_block_based_options_create();
        rocksdb_block_based_options_set_filter_policy(table, rocksdb_filterpolicy_create_bloom(10));
        rocksdb_block_based_options_set_block_size(table, STORE_BLOCK_BYTES);
        rocksdb_options_set_block_based_table_factory(s->cf_opts[i], table);
        rocksdb_block_based_options_destroy(table);
        /* What the C API cannot set, in RocksDB's option-string form: the
         * result is a copy of the options with those applied. */
        rocksdb_options_t *tuned = rocksdb_options_create();
        char *err = NULL;
        rocksdb_get_options_from_string(s->cf_opts[i], STORE_CF_OPTIONS, tuned, &err);
        rocksdb_options_destroy(s->cf_opts[i]);
        s->cf_opts[i] = tuned;
        if (err != NULL)
            return store_rocks_error(err, "table options");
    }
    /* Commits never sync the WAL themselves: under TW_DURABLE they wait for
     * a shared sync instead (store/txn.c). */
    s->write_opts = rocksdb_writeoptions_create();
    s->read_opts = rocksdb_readoptions_create();
    s->txn_opts = rocksdb_optimistictransaction_options_create();
    return TW_OK;
}

static tw_err open_rocks(tw_store *s, const char *db_dir)
{
    const char *names[TW_CF__COUNT];
    for (int i = 0; i < TW_CF__COUNT; i++)
        names[i] = tw_keyspace_cf_name((tw_cf)i);
    const rocksdb_options_t *const *cf_opts = (const rocksdb_options_t *const *)s->cf_opts;
    char *err = NULL;
    if (s->opts.read_only) {
        s->db = rocksdb_open_for_read_only_column_families(s->db_opts, db_dir, TW_CF__COUNT, names,
                                                           cf_opts, s->cf, 0, &err);
    } else {
        s->otxn = tw_rocks_occ_open(s->db_opts, db_dir, TW_CF__COUNT, names, cf_opts, s->cf,
                                    OCC_LOCK_BUCKETS, &err);
        if (err == NULL)
            s->db = rocksdb_optimistictransactiondb_get_base_db(s->otxn);
    }
    if (err != NULL) {
        memset(s->cf, 0, sizeof s->cf); /* not filled on failure */
        return store_rocks_error(err, db_dir);
    }
    return TW_OK;
}

/* Creates StoreInfo on a new database; checks and loads it otherwise. */
static tw_err load_info(tw_store *s)
{
    tw_arena *arena = tw_arena_new(1024);
    tw_txn *t = NULL;
    tw_err err = TW_ERR_NO_MEMORY;
    if (arena == NULL)
        goto out;
    tw_key k;
    tw_key_init(&k, TW_KF_META);
    tw_key_str(&k, STORE_META_INFO);
    tw_value v;
    if (s->otxn != NULL) {
        if ((err = tw_txn_begin(s, &t)))
            goto out;
        err = tw_txn_get_for_update(t, &k, arena, &v);
    } else {
        err = tw_store_get(s, &k, arena, &v);
    }
    if (err == TW_ERR_NOT_FOUND && t != NULL) {
        Tw__Store__V1__StoreInfo info = TW__STORE__V1__STORE_INFO__INIT;
        info.format_version = STORE_FORMAT_VERSION;
        info.create_unix_ms = tw_store_now_ms(s);
        if (RAND_bytes(s->page_key, sizeof s->page_key) != 1) {
            err = store_fail(TW_ERR_INTERNAL, "no randomness for the page-token key");
            goto out;
        }
        info.page_token_key = (ProtobufCBinaryData){sizeof s->page_key, s->page_key};
        if ((err = tw_txn_put(t, &k, &(tw_value){.msg = &info.base})))
            goto out;
        err = tw_txn_commit(t);
        t = NULL;
        goto out;
    }
    if (err == TW_ERR_NOT_FOUND) {
        err = store_fail(TW_ERR_DB_CORRUPT, "not a twd database: no store info");
        goto out;
    }
    if (err)
        goto out;
    const Tw__Store__V1__StoreInfo *info = (const Tw__Store__V1__StoreInfo *)v.msg;
    if (info->format_version > STORE_FORMAT_VERSION) {
        err = store_fail(TW_ERR_FAILED_PRECONDITION,
                         "database format %u is newer than this twd's (%u)", info->format_version,
                         STORE_FORMAT_VERSION);
        goto out;
    }
    if (info->page_token_key.len != sizeof s->page_key) {
        err = store_fail(TW_ERR_DB_CORRUPT, "store info: page-token key has %zu bytes",
                         info->page_token_key.len);
        goto out;
    }
    memcpy(s->page_key, info->page_token_key.data, sizeof s->page_key);
out:
    tw_txn_abort(t);
    tw_arena_free(arena);
    return err;
}

tw_err tw_store_open(const tw_store_options *opts, tw_store **out)
{
    char *db_dir = NULL;
    tw_err err = TW_ERR_NO_MEMORY;
    tw_store *s = calloc(1, sizeof *s);
    *out = NULL;
    if (s == NULL)
        return TW_ERR_NO_MEMORY;
    for (int i = 0; i < STORE_LOG_LOCKS; i++)
        pthread_mutex_init(&s->log_locks[i], NULL);
    store_hints_init(s);
    if (asprintf(&db_dir, "%s/db", opts->data_dir) < 0) {
        db_dir = NULL;
        goto out;
    }
    s->opts = *opts;
    s->opts.data_dir = NULL;
    if (s->opts.job_backoff_base_ms == 0)
        s->opts.job_backoff_base_ms = 1000;
    if (s->opts.job_backoff_max_ms == 0)
        s->opts.job_backoff_max_ms = 3600 * 1000;
    if (!opts->read_only && (err = store_mkdirs(db_dir)))
        goto out;
    if ((err = set_options(s)) || (err = open_rocks(s, db_dir)) || (err = load_info(s)) ||
        (err = store_page_mac_init(s)))
        goto out;
    *out = s;
    s = NULL;
out:
    if (s != NULL)
        store_free(s);
    free(db_dir);
    return err;
}

void tw_store_close(tw_store *s)
{
    if (s != NULL)
        store_free(s);
}

void tw_store_set_commit_listener(tw_store *s, tw_store_commit_fn fn, void *ctx)
{
    s->listener = fn;
    s->listener_ctx = ctx;
}

bool tw_store_writes_failing(tw_store *s)
{
    return atomic_load(&s->writes_failing);
}

/* ---- Reads ----------------------------------------------------------- */

/* What a pinned read found: its bytes (valid until ps is destroyed), or
 * TW_ERR_NOT_FOUND, or the read's error (ps destroyed). */
static tw_err pinned_bytes(const tw_key_family *f, rocksdb_pinnableslice_t *ps, char *err,
                           const char **bytes, size_t *len)
{
    if (err != NULL) {
        rocksdb_pinnableslice_destroy(ps);
        return store_rocks_error(err, f->name);
    }
    if (ps == NULL)
        return TW_ERR_NOT_FOUND;
    *bytes = rocksdb_pinnableslice_value(ps, len);
    return TW_OK;
}

tw_err store_pinned_decode(const tw_key_family *f, rocksdb_pinnableslice_t *ps, char *err,
                           tw_arena *arena, tw_value *out)
{
    const char *bytes = NULL;
    size_t len = 0;
    tw_err code = pinned_bytes(f, ps, err, &bytes, &len);
    if (code)
        return code;
    code = store_value_decode(f, bytes, len, arena, out);
    rocksdb_pinnableslice_destroy(ps);
    return code;
}

/* Reads k's value as committed, pinned in RocksDB's cache: *ps is NULL
 * when absent, *rerr set on a failure (both for store_pinned_decode). */
static tw_err get_pinned(tw_store *s, const tw_key *k, const tw_key_family **f,
                         rocksdb_pinnableslice_t **ps, char **rerr)
{
    tw_err err = store_key_ready(k);
    if (err)
        return err;
    *f = tw_keyspace_family(k->family);
    *rerr = NULL;
    *ps = rocksdb_get_pinned_cf(s->db, s->read_opts, s->cf[(*f)->cf], (const char *)k->bytes,
                                k->len, rerr);
    return TW_OK;
}

tw_err tw_store_get(tw_store *s, const tw_key *k, tw_arena *arena, tw_value *out)
{
    const tw_key_family *f;
    rocksdb_pinnableslice_t *ps;
    char *rerr;
    tw_err err = get_pinned(s, k, &f, &ps, &rerr);
    return err ? err : store_pinned_decode(f, ps, rerr, arena, out);
}

tw_err tw_store_get_bytes(tw_store *s, const tw_key *k, tw_arena *arena, const uint8_t **bytes,
                          size_t *len)
{
    const tw_key_family *f;
    rocksdb_pinnableslice_t *ps;
    char *rerr;
    const char *stored = NULL;
    tw_err err = get_pinned(s, k, &f, &ps, &rerr);
    if (err || (err = pinned_bytes(f, ps, rerr, &stored, len)))
        return err;
    uint8_t *copy = tw_arena_memdup(arena, stored, *len);
    rocksdb_pinnableslice_destroy(ps);
    *bytes = copy;
    return copy ? TW_OK : TW_ERR_NO_MEMORY;
}

tw_err tw_store_decode(tw_kf kf, const uint8_t *bytes, size_t len, tw_arena *arena, tw_value *out)
{
    return store_value_decode(tw_keyspace_family(kf), bytes, len, arena, out);
}

struct tw_store_iter {
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ropts;
    tw_kf kf;
    const tw_key_family *family;
    bool reverse, started, done;
    tw_err err;
    size_t lower_len, upper_len, after_len;
    uint8_t lower[TW_KEY_MAX], upper[TW_KEY_MAX], after[TW_KEY_MAX];
};

static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

tw_err tw_store_scan(tw_store *s, const tw_key *prefix, const void *after, size_t after_len,
                     bool reverse, tw_store_iter **out)
{
    *out = NULL;
    if (prefix->err)
        return store_key_ready(prefix);
    if (after_len > TW_KEY_MAX)
        return store_fail(TW_ERR_VALIDATION, "scan cursor of %zu bytes", after_len);
    tw_store_iter *it = calloc(1, sizeof *it);
    if (it == NULL)
        return TW_ERR_NO_MEMORY;
    it->kf = prefix->family;
    it->family = tw_keyspace_family(prefix->family);
    it->reverse = reverse;
    /* Bounds: [prefix, successor of prefix). The successor increments the
     * last byte that is not 0xff; the family byte never is. */
    memcpy(it->lower, prefix->bytes, prefix->len);
    it->lower_len = prefix->len;
    memcpy(it->upper, prefix->bytes, prefix->len);
    it->upper_len = prefix->len;
    while (it->upper[it->upper_len - 1] == 0xff)
        it->upper_len--;
    it->upper[it->upper_len - 1]++;
    if (after_len > 0)
        memcpy(it->after, after, after_len);
    it->after_len = after_len;

    it->ropts = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_lower_bound(it->ropts, (const char *)it->lower, it->lower_len);
    rocksdb_readoptions_set_iterate_upper_bound(it->ropts, (const char *)it->upper, it->upper_len);
    it->it = rocksdb_create_iterator_cf(s->db, it->ropts, s->cf[it->family->cf]);
    *out = it;
    return TW_OK;
}

static bool iter_at(const tw_store_iter *it, const uint8_t *key, size_t len)
{
    size_t klen;
    if (!rocksdb_iter_valid(it->it))
        return false;
    const char *k = rocksdb_iter_key(it->it, &klen);
    return bytes_cmp((const uint8_t *)k, klen, key, len) == 0;
}

/* Positions on the first key in the scan's direction that is strictly
 * after the cursor; false when there is none. A cursor outside the bounds
 * is clamped rather than handed to RocksDB, which leaves seeks outside the
 * bounds undefined. */
static bool iter_start(tw_store_iter *it)
{
    const uint8_t *a = it->after;
    size_t alen = it->after_len;
    if (!it->reverse) {
        if (alen == 0 || bytes_cmp(a, alen, it->lower, it->lower_len) < 0) {
            rocksdb_iter_seek_to_first(it->it);
        } else {
            rocksdb_iter_seek(it->it, (const char *)a, alen);
            if (iter_at(it, a, alen))
                rocksdb_iter_next(it->it);
        }
        return true;
    }
    if (alen == 0 || bytes_cmp(a, alen, it->upper, it->upper_len) >= 0) {
        rocksdb_iter_seek_to_last(it->it);
        return true;
    }
    if (bytes_cmp(a, alen, it->lower, it->lower_len) <= 0)
        return false; /* every key in the bounds sorts after the cursor */
    rocksdb_iter_seek_for_prev(it->it, (const char *)a, alen);
    if (iter_at(it, a, alen))
        rocksdb_iter_prev(it->it);
    return true;
}

bool tw_store_iter_next(tw_store_iter *it)
{
    if (it->err || it->done)
        return false;
    if (!it->started) {
        it->started = true;
        it->done = !iter_start(it);
        if (it->done)
            return false;
    } else if (it->reverse) {
        rocksdb_iter_prev(it->it);
    } else {
        rocksdb_iter_next(it->it);
    }
    if (rocksdb_iter_valid(it->it))
        return true;
    it->done = true;
    char *err = NULL;
    rocksdb_iter_get_error(it->it, &err);
    if (err != NULL)
        it->err = store_rocks_error(err, it->family->name);
    return false;
}

void tw_store_iter_key(const tw_store_iter *it, const uint8_t **key, size_t *len)
{
    *key = (const uint8_t *)rocksdb_iter_key(it->it, len);
}

void tw_store_iter_read_key(const tw_store_iter *it, tw_key_reader *r)
{
    const uint8_t *key;
    size_t len;
    tw_store_iter_key(it, &key, &len);
    tw_key_read_init(r, it->kf, key, len);
}

tw_err tw_store_iter_value(tw_store_iter *it, tw_arena *arena, tw_value *out)
{
    size_t len;
    const char *bytes = rocksdb_iter_value(it->it, &len);
    return store_value_decode(it->family, bytes, len, arena, out);
}

void tw_store_iter_bytes(const tw_store_iter *it, const uint8_t **bytes, size_t *len)
{
    *bytes = (const uint8_t *)rocksdb_iter_value(it->it, len);
}

tw_err tw_store_iter_close(tw_store_iter *it)
{
    if (it == NULL)
        return TW_OK;
    tw_err err = it->err;
    rocksdb_iter_destroy(it->it);
    rocksdb_readoptions_destroy(it->ropts);
    free(it);
    return err;
}

/* ---- Checks ---------------------------------------------------------- */

/* Checks one record against the keyspace: TW_ERR_DB_CORRUPT, with the
 * last error saying why, when its key or value is bad. */
static tw_err check_record(tw_cf cf, const uint8_t *key, size_t klen, const char *val, size_t vlen,
                           tw_store_report *r)
{
    tw_kf kf;
    if (tw_key_validate(key, klen, &kf) || tw_keyspace_family(kf)->cf != cf) {
        r->bad_keys++;
        return store_fail(TW_ERR_DB_CORRUPT, "%s: bad key of %zu bytes starting %02x",
                          tw_keyspace_cf_name(cf), klen, klen ? key[0] : 0);
    }
    tw_arena *arena = tw_arena_new(vlen + 256);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_value v;
    tw_err err = store_value_decode(tw_keyspace_family(kf), val, vlen, arena, &v);
    tw_arena_free(arena);
    r->bad_values += err != TW_OK;
    return err;
}

tw_err tw_store_verify(tw_store *s, tw_store_report *out)
{
    char first_bad[sizeof last_error] = "";
    memset(out, 0, sizeof *out);
    tw_err err = TW_OK;
    rocksdb_readoptions_t *ropts = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(ropts, 1);
    rocksdb_readoptions_set_fill_cache(ropts, 0);
    /* A whole-database read: ahead, as the store's own scans do not. */
    rocksdb_readoptions_set_readahead_size(ropts, 2 * 1024 * 1024);
    for (int cf = 0; cf < TW_CF__COUNT && err == TW_OK; cf++) {
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ropts, s->cf[cf]);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t klen, vlen;
            const char *key = rocksdb_iter_key(it, &klen);
            const char *val = rocksdb_iter_value(it, &vlen);
            out->keys[cf]++;
            out->bytes += klen + vlen;
            if (check_record((tw_cf)cf, (const uint8_t *)key, klen, val, vlen, out) &&
                first_bad[0] == '\0')
                memcpy(first_bad, last_error, sizeof first_bad);
        }
        char *rerr = NULL;
        rocksdb_iter_get_error(it, &rerr);
        if (rerr != NULL)
            err = store_rocks_error(rerr, tw_keyspace_cf_name((tw_cf)cf));
        rocksdb_iter_destroy(it);
    }
    rocksdb_readoptions_destroy(ropts);
    if (err == TW_OK && (out->bad_keys || out->bad_values))
        err = store_fail(TW_ERR_DB_CORRUPT, "%llu bad keys, %llu bad values; first: %s",
                         (unsigned long long)out->bad_keys, (unsigned long long)out->bad_values,
                         first_bad);
    return err;
}

tw_err tw_store_each_record(tw_store *s, tw_store_record_fn fn, void *ctx)
{
    tw_err err = TW_OK;
    for (int cf = 0; cf < TW_CF__COUNT && err == TW_OK; cf++) {
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_opts, s->cf[cf]);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it) && err == TW_OK;
             rocksdb_iter_next(it)) {
            size_t klen, vlen;
            const char *key = rocksdb_iter_key(it, &klen);
            const char *val = rocksdb_iter_value(it, &vlen);
            err = fn(ctx, (tw_cf)cf, (const uint8_t *)key, klen, (const uint8_t *)val, vlen);
        }
        char *rerr = NULL;
        rocksdb_iter_get_error(it, &rerr);
        if (rerr != NULL && err == TW_OK)
            err = store_rocks_error(rerr, tw_keyspace_cf_name((tw_cf)cf));
        else
            rocksdb_free(rerr);
        rocksdb_iter_destroy(it);
    }
    return err;
}

tw_err tw_store_check(const char *data_dir, tw_store_report *out)
{
    tw_store *s;
    memset(out, 0, sizeof *out);
    tw_err err = tw_store_open(&(tw_store_options){.data_dir = data_dir, .read_only = true}, &s);
    if (err)
        return err;
    err = tw_store_verify(s, out);
    tw_store_close(s);
    return err;
}
