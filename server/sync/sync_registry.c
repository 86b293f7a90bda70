/* The resource types SyncService carries (sync_registry.h). */
#include "sync_registry.h"

#include "tw/store/v1/task_records.pb-c.h"

#include <string.h>

static bool fill_task(const ProtobufCMessage *stored, Tw__V1__Change *change)
{
    const Tw__Store__V1__TaskRecord *rec = (const void *)stored;
    if (stored->descriptor != &tw__store__v1__task_record__descriptor || rec->task == NULL)
        return false;
    change->resource_case = TW__V1__CHANGE__RESOURCE_TASK;
    change->task = rec->task;
    return true;
}

static bool fill_task_completion(const ProtobufCMessage *stored, Tw__V1__Change *change)
{
    const Tw__Store__V1__CompletionRecord *rec = (const void *)stored;
    if (stored->descriptor != &tw__store__v1__completion_record__descriptor ||
        rec->completion == NULL)
        return false;
    change->resource_case = TW__V1__CHANGE__RESOURCE_TASK_COMPLETION;
    change->task_completion = rec->completion;
    return true;
}

const tw_sync_resource tw_sync_resources[] = {
    {"task", TW_KF_TASK, fill_task},
    {"task_completion", TW_KF_TASK_COMPLETION, fill_task_completion},
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
