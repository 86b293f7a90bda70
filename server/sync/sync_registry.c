/* The resource types SyncService carries (sync_registry.h). */
#include "sync_registry.h"

#include "auth/account.h"
#include "tw/store/v1/task_records.pb-c.h"
#include "tw/v1/focus_service.pb-c.h"
#include "tw/v1/health_log_service.pb-c.h"

#include <string.h>

static bool fill_task(const ProtobufCMessage *stored, Tw__V1__Change *change, tw_arena *arena)
{
    (void)arena;
    const Tw__Store__V1__TaskRecord *rec = (const void *)stored;
    if (stored->descriptor != &tw__store__v1__task_record__descriptor || rec->task == NULL)
        return false;
    change->resource_case = TW__V1__CHANGE__RESOURCE_TASK;
    change->task = rec->task;
    return true;
}

static bool fill_task_completion(const ProtobufCMessage *stored, Tw__V1__Change *change,
                                 tw_arena *arena)
{
    (void)arena;
    const Tw__Store__V1__CompletionRecord *rec = (const void *)stored;
    if (stored->descriptor != &tw__store__v1__completion_record__descriptor ||
        rec->completion == NULL)
        return false;
    change->resource_case = TW__V1__CHANGE__RESOURCE_TASK_COMPLETION;
    change->task_completion = rec->completion;
    return true;
}

/* Health logs, focus sessions and templates are stored as their API
 * messages (a session with its durations as of its last change). */
static bool fill_health_log(const ProtobufCMessage *stored, Tw__V1__Change *change, tw_arena *arena)
{
    (void)arena;
    if (stored->descriptor != &tw__v1__health_log__descriptor)
        return false;
    change->resource_case = TW__V1__CHANGE__RESOURCE_HEALTH_LOG;
    change->health_log = (Tw__V1__HealthLog *)stored;
    return true;
}

static bool fill_focus_session(const ProtobufCMessage *stored, Tw__V1__Change *change,
                               tw_arena *arena)
{
    (void)arena;
    if (stored->descriptor != &tw__v1__focus_session__descriptor)
        return false;
    change->resource_case = TW__V1__CHANGE__RESOURCE_FOCUS_SESSION;
    change->focus_session = (Tw__V1__FocusSession *)stored;
    return true;
}

static bool fill_focus_template(const ProtobufCMessage *stored, Tw__V1__Change *change,
                                tw_arena *arena)
{
    (void)arena;
    if (stored->descriptor != &tw__v1__focus_template__descriptor)
        return false;
    change->resource_case = TW__V1__CHANGE__RESOURCE_FOCUS_TEMPLATE;
    change->focus_template = (Tw__V1__FocusTemplate *)stored;
    return true;
}

/* The account record holds secrets (the password hash): only its API form,
 * as GetMe returns it, goes out. */
static bool fill_user(const ProtobufCMessage *stored, Tw__V1__Change *change, tw_arena *arena)
{
    if (stored->descriptor != &tw__store__v1__account__descriptor)
        return false;
    change->resource_case = TW__V1__CHANGE__RESOURCE_USER;
    change->user = tw_account_to_user((const Tw__Store__V1__Account *)stored, arena);
    return change->user != NULL;
}

/* Rows keep their index (full-sync tokens name it): new ones go last. */
const tw_sync_resource tw_sync_resources[] = {
    {"task", TW_KF_TASK, false, fill_task},
    {"task_completion", TW_KF_TASK_COMPLETION, false, fill_task_completion},
    {"health_log", TW_KF_HEALTH_LOG, false, fill_health_log},
    {"focus_session", TW_KF_FOCUS_SESSION, false, fill_focus_session},
    {"focus_template", TW_KF_FOCUS_TEMPLATE, false, fill_focus_template},
    {"user", TW_KF_USER, true, fill_user},
    {NULL},
};

size_t tw_sync_resource_count(void)
{
    size_t n = 0;
    while (tw_sync_resources[n].type != NULL)
        n++;
    return n;
}

int tw_sync_resource_index(const char *type)
{
    for (size_t i = 0; tw_sync_resources[i].type != NULL; i++)
        if (strcmp(tw_sync_resources[i].type, type) == 0)
            return (int)i;
    return -1;
}

void tw_sync_resource_key(const tw_sync_resource *r, const tw_id *user, const tw_id *id,
                          tw_key *out)
{
    tw_key_init(out, r->family);
    tw_key_id(out, user);
    if (!r->per_user)
        tw_key_id(out, id);
}
