/*
 * What the store's tests share: temporary directories and files, a store
 * opened on one with a clock the test moves, a blob store. Every helper
 * fails the running test on an error.
 */
#ifndef TW_STORE_FIXTURE_H
#define TW_STORE_FIXTURE_H

#include "tw_blob.h"
#include "tw_store.h"
#include "tw_txn.h"

#include <stdatomic.h>

/* A clock tests set and move; starts at a fixed day in 2024. */
typedef struct fx_clock {
    _Atomic int64_t ms;
} fx_clock;

#define FX_EPOCH_MS INT64_C(1717243200000) /* 2024-06-01T12:00:00Z */

int64_t fx_clock_now(void *clock);

/* A fresh directory under /tmp, or under parent (malloc'd); fx_rmdir
 * removes it and frees it. */
char *fx_mkdtemp(void);
char *fx_mkdtemp_under(const char *parent);
void fx_rmdir(char *dir);

/* Writes text to a new file at path. */
void fx_write_file(const char *path, const char *text);

/* A store on a fresh directory with the test clock (FX_EPOCH_MS) and
 * TW_FAST durability, an arena for what the test reads, and their
 * teardown. */
typedef struct fx_store {
    char *dir;
    fx_clock clock;
    tw_store *store;
    tw_arena *arena;
} fx_store;

void fx_open(fx_store *f);
/* Opens f->dir again, as after a restart. */
void fx_reopen(fx_store *f);
void fx_close(fx_store *f);

/* The store of the running test: a Check fixture opens it before each test
 * and closes it after (tcase_add_checked_fixture(tc, fx_setup, fx_teardown)). */
extern fx_store fx;
void fx_setup(void);
void fx_teardown(void);

/* How many keys s holds under prefix (both borrowed). */
int fx_count_keys(tw_store *s, const tw_key *prefix);

/* Two users for tests that need some. */
extern const tw_id fx_alice, fx_bob;

/* An active account as twd stored it before migrations 1 and 2: its USER
 * record and the claim of email exactly as given in the "email" space (no
 * owner list, no case folding). */
void fx_old_account(const tw_id *id, const char *email, int64_t create_unix_ms);

/* A filesystem blob store on a fresh directory, as a Check fixture too. */
typedef struct fx_blobs {
    char *dir;
    tw_blob_store *blobs;
} fx_blobs;

extern fx_blobs fxb;
void fxb_setup(void);
void fxb_teardown(void);

#endif
