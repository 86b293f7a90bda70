/* The delete_account job of deletion.h. */
#include "deletion.h"

#include "limits.h"
#include "tw/store/v1/accounts.pb-c.h"
#include "tw_blob.h"
#include "tw_unique.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys deleted per transaction: small transactions keep a huge account
 * from holding one enormous batch in memory. */
#define CHUNK 512

tw_err tw_txn_enqueue_account_deletion(tw_txn *t, const tw_id *user, const char *email)
{
    Tw__Store__V1__AccountDeletion payload = TW__STORE__V1__ACCOUNT_DELETION__INIT;
    payload.user_id = (ProtobufCBinaryData){TW_ID_BYTES, (uint8_t *)user->bytes};
    payload.email = (char *)email;
    return tw_txn_job_enqueue_msg(t, TW_DELETE_ACCOUNT_JOB, &payload.base, NULL, NULL);
}

struct chunk {
    size_t count;
    size_t lens[CHUNK];
    uint8_t *keys[CHUNK];
    tw_kf family;
};

static tw_err delete_chunk(tw_txn *t, void *ctx)
{
    const struct chunk *c = ctx;
    tw_err err = TW_OK;
    for (size_t i = 0; i < c->count && !err; i++) {
        /* The raw key of the family, rebuilt as a tw_key to delete it. */
        tw_key k = {.family = c->family, .len = c->lens[i]};
        memcpy(k.bytes, c->keys[i], c->lens[i]);
        k.nparts = tw_keyspace_family(c->family)->nparts;
        err = tw_txn_delete(t, &k);
    }
    return err;
}

/* Deletes every key of family under user, CHUNK keys per transaction. */
static tw_err delete_family(tw_store *s, tw_kf family, const tw_id *user)
{
    tw_key prefix;
    tw_key_init(&prefix, family);
    tw_key_id(&prefix, user);
    struct chunk *c = malloc(sizeof *c);
    if (c == NULL)
        return TW_ERR_NO_MEMORY;
    c->family = family;
    tw_err err;
    do {
        tw_arena *arena = tw_arena_new(CHUNK * 64);
        tw_store_iter *it = NULL;
        err = arena ? tw_store_scan(s, &prefix, NULL, 0, false, &it) : TW_ERR_NO_MEMORY;
        c->count = 0;
        while (!err && c->count < CHUNK && tw_store_iter_next(it)) {
            const uint8_t *key;
            size_t len;
            tw_store_iter_key(it, &key, &len);
            if (len > TW_KEY_MAX || (c->keys[c->count] = tw_arena_alloc(arena, len)) == NULL) {
                err = len > TW_KEY_MAX ? TW_ERR_DB_CORRUPT : TW_ERR_NO_MEMORY;
                break;
            }
            memcpy(c->keys[c->count], key, len);
            c->lens[c->count++] = len;
        }
        tw_err close_err = tw_store_iter_close(it);
        err = err ? err : close_err;
        if (!err && c->count > 0)
            err = tw_txn_run(s, delete_chunk, c);
        tw_arena_free(arena);
    } while (!err && c->count == CHUNK);
    free(c);
    return err;
}

static tw_err release_claims(tw_txn *t, void *ctx)
{
    return tw_txn_unique_release_all(t, ctx);
}

static tw_err delete_blob(void *ctx, const char *key, const tw_blob_info *info)
{
    tw_err err = tw_blob_delete(ctx, key);
    return err == TW_ERR_NOT_FOUND ? TW_OK : err;
}

tw_err tw_account_deletion_run(tw_app *app, const tw_job *job, tw_job_failure *failure)
{
    Tw__Store__V1__AccountDeletion *p =
        tw__store__v1__account_deletion__unpack(NULL, job->payload_len, job->payload);
    if (p == NULL || p->user_id.len != TW_ID_BYTES) {
        if (p != NULL)
            tw__store__v1__account_deletion__free_unpacked(p, NULL);
        snprintf(failure->error, sizeof failure->error, "payload is not an AccountDeletion");
        return TW_ERR_DB_CORRUPT;
    }
    tw_id user;
    memcpy(user.bytes, p->user_id.data, TW_ID_BYTES);
    const char *step = "unique claims";
    /* Claims first: their list (UNIQUE_BY_OWNER) is one of the families. */
    tw_err err = tw_txn_run(app->store, release_claims, &user);
    /* Every service next, for what the sweep below cannot reach (voice
     * notes: their entries in a shared index, while their records still
     * say where they are, and their audio). */
    if (!err && app->forget_user != NULL) {
        step = "services";
        err = app->forget_user(app, &user);
    }
    for (int f = 0; f < TW_KF__COUNT && !err; f++) {
        if (!tw_keyspace_family((tw_kf)f)->owned)
            continue;
        step = tw_keyspace_family((tw_kf)f)->name;
        err = delete_family(app->store, (tw_kf)f, &user);
    }
    if (!err && app->blobs != NULL) {
        char prefix[TW_ID_TEXT_SIZE + 1];
        tw_id_format(&user, prefix);
        strcat(prefix, "/");
        step = "blobs";
        err = tw_blob_list(app->blobs, prefix, delete_blob, app->blobs);
    }
    if (!err) {
        step = "login failures";
        err = tw_login_forget(app->store, p->email);
    }
    if (err)
        snprintf(failure->error, sizeof failure->error, "%s: %s", step, tw_store_last_error());
    tw__store__v1__account_deletion__free_unpacked(p, NULL);
    return err;
}
