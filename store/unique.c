/* Unique claims for tw_unique.h: UNIQUE(space, value) -> owner, and the
 * owner's list UNIQUE_BY_OWNER(owner, space, value). */
#include "tw_unique.h"

#include "store_internal.h"

#include <string.h>

static void claim_key(tw_key *k, const char *space, const char *value)
{
    tw_key_init(k, TW_KF_UNIQUE);
    tw_key_str(k, space);
    tw_key_str(k, value);
}

void store_unique_owner_key(tw_key *k, const tw_id *owner, const char *space, const char *value)
{
    tw_key_init(k, TW_KF_UNIQUE_BY_OWNER);
    tw_key_id(k, owner);
    tw_key_str(k, space);
    tw_key_str(k, value);
}

static bool same_id(const tw_id *a, const tw_id *b)
{
    return memcmp(a->bytes, b->bytes, TW_ID_BYTES) == 0;
}

tw_err tw_txn_unique_claim(tw_txn *t, const char *space, const char *value, const tw_id *owner)
{
    tw_key k;
    tw_value v;
    claim_key(&k, space, value);
    tw_err err = tw_txn_get_for_update(t, &k, t->arena, &v);
    if (err == TW_OK)
        return same_id(&v.id, owner) ? TW_OK : TW_ERR_ALREADY_EXISTS;
    if (err != TW_ERR_NOT_FOUND)
        return err;
    if ((err = tw_txn_put(t, &k, &(tw_value){.id = *owner})))
        return err;
    store_unique_owner_key(&k, owner, space, value);
    return tw_txn_put(t, &k, NULL);
}

tw_err tw_txn_unique_release(tw_txn *t, const char *space, const char *value, const tw_id *owner)
{
    tw_key k;
    tw_value v;
    claim_key(&k, space, value);
    tw_err err = tw_txn_get_for_update(t, &k, t->arena, &v);
    if (err == TW_OK && !same_id(&v.id, owner))
        err = TW_ERR_NOT_FOUND;
    if (err || (err = tw_txn_delete(t, &k)))
        return err;
    store_unique_owner_key(&k, owner, space, value);
    return tw_txn_delete(t, &k);
}

tw_err tw_txn_unique_release_all(tw_txn *t, const tw_id *owner)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_UNIQUE_BY_OWNER);
    tw_key_id(&prefix, owner);
    tw_store_iter *it;
    tw_err err = tw_store_scan(t->store, &prefix, NULL, 0, false, &it);
    if (err)
        return err;
    while (err == TW_OK && tw_store_iter_next(it)) {
        char *space, *value;
        tw_id id;
        tw_key_reader r;
        tw_store_iter_read_key(it, &r);
        tw_key_read_id(&r, &id);
        tw_key_read_str(&r, t->arena, &space, NULL);
        tw_key_read_str(&r, t->arena, &value, NULL);
        err = r.err ? store_fail(r.err, "bad unique-by-owner key")
                    : tw_txn_unique_release(t, space, value, owner);
        if (err == TW_ERR_NOT_FOUND) { /* a stale list entry: the claim is gone */
            tw_key k;
            store_unique_owner_key(&k, owner, space, value);
            err = tw_txn_delete(t, &k);
        }
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}

tw_err tw_store_unique_lookup(tw_store *s, const char *space, const char *value, tw_id *owner)
{
    tw_key k;
    tw_value v;
    claim_key(&k, space, value);
    tw_err err = tw_store_get(s, &k, NULL, &v);
    if (err == TW_OK)
        *owner = v.id;
    return err;
}
