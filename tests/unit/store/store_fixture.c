/* Shared helpers of the store's tests (store_fixture.h). */
#include "store_fixture.h"

#include "tw/store/v1/accounts.pb-c.h"
#include "tw_check.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t fx_clock_now(void *clock)
{
    return atomic_load(&((fx_clock *)clock)->ms);
}

char *fx_mkdtemp_under(const char *parent)
{
    char *dir = NULL;
    ck_assert_int_gt(asprintf(&dir, "%s/twd-store-test-XXXXXX", parent), 0);
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp under %s: %m", parent);
    return dir;
}

char *fx_mkdtemp(void)
{
    return fx_mkdtemp_under("/tmp");
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

void fx_rmdir(char *dir)
{
    if (dir == NULL)
        return;
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

void fx_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s", path);
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

void fx_reopen(fx_store *f)
{
    tw_store_options o = {
        .data_dir = f->dir,
        .durability = TW_FAST,
        .clock_ms = fx_clock_now,
        .clock_ctx = &f->clock,
    };
    tw_err err = tw_store_open(&o, &f->store);
    ck_assert_msg(err == TW_OK, "open: %s %s", tw_err_name(err), tw_store_last_error());
}

void fx_open(fx_store *f)
{
    f->dir = fx_mkdtemp();
    atomic_store(&f->clock.ms, FX_EPOCH_MS);
    f->arena = tw_arena_new(16 * 1024);
    ck_assert_ptr_nonnull(f->arena);
    fx_reopen(f);
}

void fx_close(fx_store *f)
{
    tw_store_close(f->store);
    f->store = NULL;
    tw_arena_free(f->arena);
    f->arena = NULL;
    fx_rmdir(f->dir);
    f->dir = NULL;
}

fx_store fx;
fx_blobs fxb;
const tw_id fx_alice = {{0x01, 0xa1}};
const tw_id fx_bob = {{0x01, 0xb0}};

void fx_setup(void)
{
    fx_open(&fx);
}

void fx_teardown(void)
{
    fx_close(&fx);
}

int fx_count_keys(tw_store *s, const tw_key *prefix)
{
    tw_store_iter *it;
    ck_assert_int_eq(tw_store_scan(s, prefix, NULL, 0, false, &it), TW_OK);
    int n = 0;
    while (tw_store_iter_next(it))
        n++;
    ck_assert_int_eq(tw_store_iter_close(it), TW_OK);
    return n;
}

void fxb_setup(void)
{
    fxb.dir = fx_mkdtemp();
    ck_assert_int_eq(tw_blob_fs_open(fxb.dir, &fxb.blobs), TW_OK);
}

void fxb_teardown(void)
{
    tw_blob_close(fxb.blobs);
    fxb.blobs = NULL;
    fx_rmdir(fxb.dir);
    fxb.dir = NULL;
}

struct old_account {
    const tw_id *id;
    const char *email;
    int64_t create_unix_ms;
};

static tw_err old_account_txn(tw_txn *t, void *ctx)
{
    const struct old_account *o = ctx;
    Tw__Store__V1__Account a = TW__STORE__V1__ACCOUNT__INIT;
    a.id = (ProtobufCBinaryData){TW_ID_BYTES, (uint8_t *)o->id->bytes};
    a.email = (char *)o->email;
    a.role = "user";
    a.state = TW__STORE__V1__ACCOUNT_STATE__ACCOUNT_STATE_ACTIVE;
    a.create_unix_ms = a.update_unix_ms = o->create_unix_ms;
    tw_key k;
    tw_key_init(&k, TW_KF_USER);
    tw_key_id(&k, o->id);
    tw_err err = tw_txn_put(t, &k, &(tw_value){.msg = &a.base});
    tw_key_init(&k, TW_KF_UNIQUE);
    tw_key_str(&k, "email");
    tw_key_str(&k, o->email);
    return err ? err : tw_txn_put(t, &k, &(tw_value){.id = *o->id});
}

void fx_old_account(const tw_id *id, const char *email, int64_t create_unix_ms)
{
    struct old_account o = {id, email, create_unix_ms};
    ck_assert_int_eq(tw_txn_run(fx.store, old_account_txn, &o), TW_OK);
}
