/*
 * The resource types SyncService knows, one row each: the change-log type
 * name (CONTRIBUTING.md), the key family holding the user's resources of
 * that type, keyed (user, id) with a message value, and how that stored
 * message becomes a tw.v1.Change (which member of its `resource` oneof).
 *
 * Adding a type (health logs, focus sessions, voice notes) is adding a
 * member to Change's oneof in sync_service.proto and a row to
 * tw_sync_resources in sync_registry.c; Pull, Watch and full syncs then
 * carry it.
 */
#ifndef TW_SYNC_REGISTRY_H
#define TW_SYNC_REGISTRY_H

#include "tw/v1/sync_service.pb-c.h"
#include "tw_keyspace.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct tw_sync_resource {
    const char *type; /* as in the change log: "task" */
    tw_kf family;     /* (user, id) -> the stored message */
    /* Sets change's resource from the stored message (borrowed by change).
     * False when the message is not what the family holds. */
    bool (*fill)(const ProtobufCMessage *stored, Tw__V1__Change *change);
} tw_sync_resource;

/* Every type, in a fixed order (full syncs go through them in it); the
 * table ends with a row whose type is NULL. */
extern const tw_sync_resource tw_sync_resources[];

/* How many rows tw_sync_resources has, and the index of type (-1: none). */
size_t tw_sync_resource_count(void);
int tw_sync_resource_index(const char *type);

#endif
