/*
 * tw-store-bench: the store's own throughput on a temporary database, one
 * JSON line per figure (only NAME with --figure NAME). Each figure runs for
 * --seconds (default 2):
 *   fast_put       one put per transaction, TW_FAST (WAL written, no sync)
 *   durable_put    the same, TW_DURABLE (WAL fsynced at each commit)
 *   durable_put_4t four threads of durable puts: RocksDB's group commit
 *                  lets concurrent commits share an fsync
 *   get            point reads of random existing keys
 *   scan50         prefix scans of 50 items from a random position
 * Keys are change-log entries (a 25-byte key under one of USERS users) with
 * a ~100-byte protobuf value, written and read through the public store
 * API, so transactions, key building and protobuf coding are all counted.
 * bench/store/run.sh prints these next to RocksDB's db_bench.
 */
#include "tw/store/v1/records.pb-c.h"
#include "tw_time.h"
#include "tw_txn.h"

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USERS       200
#define SCAN_ITEMS  50
#define PUT_THREADS 4

static double seconds = 2.0;
static char dir[] = "/tmp/tw-store-bench-XXXXXX";
static _Atomic uint64_t next_seq[USERS]; /* sequences handed out per user */
static char resource_type[80];

static tw_id user_id(unsigned u)
{
    tw_id id = {{0x01}};
    id.bytes[14] = (uint8_t)(u >> 8);
    id.bytes[15] = (uint8_t)u;
    return id;
}

static void entry_key(tw_key *k, unsigned user, uint64_t seq)
{
    tw_id id = user_id(user);
    tw_key_init(k, TW_KF_CHANGE);
    tw_key_id(k, &id);
    if (seq)
        tw_key_u64(k, seq);
}

static void check(tw_err err, const char *what)
{
    if (err) {
        fprintf(stderr, "tw-store-bench: %s: %s: %s\n", what, tw_err_name(err),
                tw_store_last_error());
        exit(1);
    }
}

static tw_store *open_store(tw_durability d)
{
    tw_store *s;
    check(tw_store_open(&(tw_store_options){.data_dir = dir, .durability = d}, &s), "open");
    return s;
}

struct run {
    tw_store *store;
    unsigned seed;
    uint64_t ops;
};

/* One transaction with one put for user u, as a simple write RPC makes. */
static void put_for(struct run *r, unsigned u)
{
    uint64_t seq = atomic_fetch_add(&next_seq[u], 1) + 1;
    tw_id res = tw_id_new();
    Tw__Store__V1__ChangeEntry m = TW__STORE__V1__CHANGE_ENTRY__INIT;
    m.sequence = seq;
    m.resource_type = resource_type;
    m.resource_id = (ProtobufCBinaryData){TW_ID_BYTES, res.bytes};
    m.op = TW__STORE__V1__CHANGE_OP__CHANGE_OP_UPSERT;
    m.change_unix_ms = tw_wall_ms();
    tw_key k;
    entry_key(&k, u, seq);
    tw_txn *t;
    check(tw_txn_begin(r->store, &t), "begin");
    check(tw_txn_put(t, &k, &(tw_value){.msg = &m.base}), "put");
    check(tw_txn_commit(t), "commit");
}

static void put_one(struct run *r)
{
    put_for(r, (unsigned)rand_r(&r->seed) % USERS);
}

static void get_one(struct run *r)
{
    unsigned u = (unsigned)rand_r(&r->seed) % USERS;
    uint64_t n = atomic_load(&next_seq[u]);
    tw_key k;
    entry_key(&k, u, 1 + (uint64_t)rand_r(&r->seed) % n);
    tw_arena *arena = tw_arena_new(512);
    tw_value v;
    check(tw_store_get(r->store, &k, arena, &v), "get");
    tw_arena_free(arena);
}

static void scan_one(struct run *r)
{
    unsigned u = (unsigned)rand_r(&r->seed) % USERS;
    uint64_t n = atomic_load(&next_seq[u]);
    tw_key prefix, after;
    entry_key(&prefix, u, 0);
    entry_key(&after, u, (uint64_t)rand_r(&r->seed) % (n - SCAN_ITEMS));
    tw_store_iter *it;
    tw_arena *arena = tw_arena_new(16 * 1024);
    check(tw_store_scan(r->store, &prefix, after.bytes, after.len, false, &it), "scan");
    int items = 0;
    while (items < SCAN_ITEMS && tw_store_iter_next(it)) {
        tw_value v;
        check(tw_store_iter_value(it, arena, &v), "scan value");
        items++;
    }
    check(tw_store_iter_close(it), "scan");
    tw_arena_free(arena);
    if (items != SCAN_ITEMS) {
        fprintf(stderr, "tw-store-bench: scan found %d items\n", items);
        exit(1);
    }
}

struct figure {
    const char *name;
    void (*op)(struct run *r);
    int threads;
};

struct worker {
    struct run run;
    void (*op)(struct run *r);
    int64_t end_ns;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    while (tw_mono_ns() < w->end_ns) {
        for (int i = 0; i < 16; i++)
            w->op(&w->run);
        w->run.ops += 16;
    }
    return NULL;
}

static void measure(tw_store *s, const struct figure *f)
{
    struct worker w[PUT_THREADS];
    pthread_t th[PUT_THREADS];
    int64_t start = tw_mono_ns();
    for (int i = 0; i < f->threads; i++) {
        w[i] = (struct worker){
            {s, (unsigned)(i + 1) * 7919u, 0}, f->op, start + (int64_t)(seconds * 1e9)};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    uint64_t ops = 0;
    for (int i = 0; i < f->threads; i++) {
        pthread_join(th[i], NULL);
        ops += w[i].run.ops;
    }
    double elapsed = (double)(tw_mono_ns() - start) / 1e9;
    printf("{\"source\":\"tw-store-bench\",\"figure\":\"%s\",\"threads\":%d,\"ops\":%llu,"
           "\"seconds\":%.2f,\"ops_per_sec\":%.0f}\n",
           f->name, f->threads, (unsigned long long)ops, elapsed, (double)ops / elapsed);
    fflush(stdout);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

/* Whether the figure called name runs: all of them without --figure. */
static const char *only;
static bool wanted(const char *name)
{
    return only == NULL || strcmp(only, name) == 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 < argc && strcmp(argv[i], "--seconds") == 0) {
            seconds = atof(argv[i + 1]);
        } else if (i + 1 < argc && strcmp(argv[i], "--figure") == 0) {
            only = argv[i + 1];
        } else {
            fprintf(stderr, "usage: tw-store-bench [--seconds N] [--figure NAME]\n");
            return 2;
        }
    }
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    /* Padding that brings the packed value to about 100 bytes. */
    memset(resource_type, 't', 64);

    tw_store *s = open_store(TW_FAST);
    if (wanted("fast_put"))
        measure(s, &(struct figure){"fast_put", put_one, 1});
    tw_store_close(s);
    s = open_store(TW_DURABLE);
    if (wanted("durable_put"))
        measure(s, &(struct figure){"durable_put", put_one, 1});
    if (wanted("durable_put_4t"))
        measure(s, &(struct figure){"durable_put_4t", put_one, PUT_THREADS});
    tw_store_close(s);
    if (wanted("get") || wanted("scan50")) {
        s = open_store(TW_FAST);
        struct run fill = {s, 0, 0};
        for (unsigned u = 0; u < USERS; u++) { /* scans need SCAN_ITEMS per user */
            while (atomic_load(&next_seq[u]) < 2 * SCAN_ITEMS)
                put_for(&fill, u);
        }
        if (wanted("get"))
            measure(s, &(struct figure){"get", get_one, 1});
        if (wanted("scan50"))
            measure(s, &(struct figure){"scan50", scan_one, 1});
        tw_store_close(s);
    }
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
