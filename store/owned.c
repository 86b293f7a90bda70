/* Owned entities by (family, user, id), for tw_owned.h. */
#include "tw_owned.h"

bool tw_owned_family(tw_kf family)
{
    const tw_key_family *f = tw_keyspace_family(family);
    return f->owned && f->value == TW_VAL_MSG && f->nparts == 2 && f->parts[0].type == TW_KP_ID &&
           f->parts[1].type == TW_KP_ID;
}

void tw_owned_key(tw_key *k, tw_kf family, const tw_id *user, const tw_id *id)
{
    tw_key_init(k, family);
    tw_key_id(k, user);
    tw_key_id(k, id);
    if (!tw_owned_family(family))
        k->err = TW_ERR_INTERNAL; /* the store refuses the key */
}

static tw_err read(tw_store *s, tw_txn *t, const tw_key *k, tw_arena *arena, tw_value *v)
{
    if (k->err)
        return k->err;
    return t != NULL ? tw_txn_get_for_update(t, k, arena, v) : tw_store_get(s, k, arena, v);
}

tw_err tw_owned_get(tw_store *s, tw_txn *t, tw_kf family, const tw_id *user, const tw_id *id,
                    tw_arena *arena, ProtobufCMessage **out)
{
    tw_key k;
    tw_owned_key(&k, family, user, id);
    tw_value v;
    tw_err err = read(s, t, &k, arena, &v);
    *out = err == TW_OK ? v.msg : NULL;
    return err;
}

tw_err tw_owned_check(tw_store *s, tw_txn *t, tw_kf family, const tw_id *user, const tw_id *id)
{
    tw_arena *arena = tw_arena_new(0);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    ProtobufCMessage *unused;
    tw_err err = tw_owned_get(s, t, family, user, id, arena, &unused);
    tw_arena_free(arena);
    return err;
}

tw_err tw_owned_put(tw_txn *t, tw_kf family, const tw_id *user, const tw_id *id,
                    const ProtobufCMessage *msg)
{
    tw_key k;
    tw_owned_key(&k, family, user, id);
    return k.err ? k.err : tw_txn_put(t, &k, &(tw_value){.msg = (ProtobufCMessage *)msg});
}

tw_err tw_owned_delete(tw_txn *t, tw_kf family, const tw_id *user, const tw_id *id)
{
    tw_key k;
    tw_owned_key(&k, family, user, id);
    return k.err ? k.err : tw_txn_delete(t, &k);
}
