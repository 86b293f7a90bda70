/*
 * The resource types SyncService knows, one row each: the change-log type
 * name (CONTRIBUTING.md), the key family holding the user's resources of
 * that type, keyed (user, id) with a message value (or keyed (user) alone
 * for a resource the user has one of, whose id is the user's: the
 * profile), and how that stored message becomes a tw.v1.Change (which
 * member of its `resource` oneof).
 *
 * Adding a type (voice notes) is adding a member to Change's oneof in
 * sync_service.proto and a row at the end of tw_sync_resources in
 * sync_registry.c (rows keep their index: full-sync tokens name it); Pull,
 * Watch and full syncs then carry it.
 */
#ifndef TW_SYNC_REGISTRY_H
#define TW_SYNC_REGISTRY_H

#include "tw/v1/sync_service.pb-c.h"
#include "tw_arena.h"
#include "tw_id.h"
#include "tw_key.h"
#include "tw_keyspace.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct tw_sync_resource {
    const char *type; /* as in the change log: "task" */
    tw_kf family;     /* (user, id) -> the stored message */
    bool per_user;    /* the family is keyed (user) alone: id is the user's */
    /* The member of Change's resource oneof (its field number) that
     * carries it. */
    unsigned field;
    /* The API message of a stored one (borrowed from it, or made in
     * arena), NULL when stored is not what the family holds or memory ran
     * out; NULL when the family stores the API message itself. */
    const ProtobufCMessage *(*api_form)(const ProtobufCMessage *stored, tw_arena *arena);
} tw_sync_resource;

/* Every type, in a fixed order (full syncs go through them in it); the
 * table ends with a row whose type is NULL. */
extern const tw_sync_resource tw_sync_resources[];

/* How many rows tw_sync_resources has, and the index of type (-1: none). */
size_t tw_sync_resource_count(void);
int tw_sync_resource_index(const char *type);

/* Sets change's resource to the API form of stored, a message of r's
 * family; false when stored is not what the family holds (or memory ran
 * out). */
bool tw_sync_resource_fill(const tw_sync_resource *r, const ProtobufCMessage *stored,
                           Tw__V1__Change *change, tw_arena *arena);

/* The key of resource id of user in r's family. */
void tw_sync_resource_key(const tw_sync_resource *r, const tw_id *user, const tw_id *id,
                          tw_key *out);

#endif
