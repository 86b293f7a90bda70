/* The resource types SyncService carries (sync_registry.h). */
#include "sync_registry.h"

#include "auth/account.h"
#include "tw/store/v1/task_records.pb-c.h"
#include "tw/store/v1/voice_records.pb-c.h"

#include <string.h>

/* Tasks and completions are stored inside records (version, indexes). */
static const ProtobufCMessage *task_of(const ProtobufCMessage *stored, tw_arena *arena)
{
    (void)arena;
    const Tw__Store__V1__TaskRecord *rec = (const void *)stored;
    if (stored->descriptor != &tw__store__v1__task_record__descriptor || rec->task == NULL)
        return NULL;
    return &rec->task->base;
}

static const ProtobufCMessage *completion_of(const ProtobufCMessage *stored, tw_arena *arena)
{
    (void)arena;
    const Tw__Store__V1__CompletionRecord *rec = (const void *)stored;
    if (stored->descriptor != &tw__store__v1__completion_record__descriptor ||
        rec->completion == NULL)
        return NULL;
    return &rec->completion->base;
}

/* The account record holds secrets (the password hash): only its API form,
 * as GetMe returns it, goes out. */
static const ProtobufCMessage *user_of(const ProtobufCMessage *stored, tw_arena *arena)
{
    if (stored->descriptor != &tw__store__v1__account__descriptor)
        return NULL;
    Tw__V1__User *user = tw_account_to_user((const Tw__Store__V1__Account *)stored, arena);
    return user != NULL ? &user->base : NULL;
}

/* A voice note is stored inside its record (blob key, generation). */
static const ProtobufCMessage *voice_note_of(const ProtobufCMessage *stored, tw_arena *arena)
{
    (void)arena;
    const Tw__Store__V1__VoiceNoteRecord *rec = (const void *)stored;
    if (stored->descriptor != &tw__store__v1__voice_note_record__descriptor || rec->note == NULL)
        return NULL;
    return &rec->note->base;
}

/* Health logs, focus templates and sessions are stored inside records
 * whose field 1 is the API message (a session with its durations as of its
 * last change). */
static const ProtobufCMessage *wrapped(const ProtobufCMessage *stored, tw_arena *arena)
{
    (void)arena;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(stored->descriptor, 1);
    if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    return *(const ProtobufCMessage *const *)((const char *)stored + f->offset);
}

/* Rows keep their index (full-sync tokens name it): new ones go last. */
const tw_sync_resource tw_sync_resources[] = {
    {"task", TW_KF_TASK, false, TW__V1__CHANGE__RESOURCE_TASK, task_of},
    {"task_completion", TW_KF_TASK_COMPLETION, false, TW__V1__CHANGE__RESOURCE_TASK_COMPLETION,
     completion_of},
    {"health_log", TW_KF_HEALTH_LOG, false, TW__V1__CHANGE__RESOURCE_HEALTH_LOG, wrapped},
    {"focus_session", TW_KF_FOCUS_SESSION, false, TW__V1__CHANGE__RESOURCE_FOCUS_SESSION, wrapped},
    {"focus_template", TW_KF_FOCUS_TEMPLATE, false, TW__V1__CHANGE__RESOURCE_FOCUS_TEMPLATE,
     wrapped},
    {"user", TW_KF_USER, true, TW__V1__CHANGE__RESOURCE_USER, user_of},
    {"voice_note", TW_KF_VOICE_NOTE, false, TW__V1__CHANGE__RESOURCE_VOICE_NOTE, voice_note_of},
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

bool tw_sync_resource_fill(const tw_sync_resource *r, const ProtobufCMessage *stored,
                           Tw__V1__Change *change, tw_arena *arena)
{
    const ProtobufCMessage *api = r->api_form != NULL ? r->api_form(stored, arena) : stored;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&tw__v1__change__descriptor, r->field);
    if (api == NULL || f == NULL || f->descriptor != api->descriptor)
        return false;
    change->resource_case = (Tw__V1__Change__ResourceCase)r->field;
    *(const ProtobufCMessage **)((char *)change + f->offset) = api;
    return true;
}
