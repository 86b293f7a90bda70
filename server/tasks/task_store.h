/*
 * Tasks in the store: a task record and its index entries written and
 * removed together, each write with its change-log entry, so indexes never
 * disagree with the records and sync sees every change. Keys are those of
 * store/tw_keyspace.h (0x60-0x6F), all under the owner's id.
 *
 * Records are read for update inside the caller's transaction; index scans
 * (children, siblings) read what is committed, which is enough for the
 * decisions they feed (an order key, a count of subtasks).
 */
#ifndef TW_TASKS_TASK_STORE_H
#define TW_TASKS_TASK_STORE_H

#include "tw/store/v1/task_records.pb-c.h"
#include "tw_hint.h"
#include "tw_txn.h"

typedef Tw__Store__V1__TaskRecord tw_task_record;
typedef Tw__Store__V1__CompletionRecord tw_completion_record;

/* Change-log resource types (CONTRIBUTING.md). */
#define TW_RESOURCE_TASK            "task"
#define TW_RESOURCE_TASK_COMPLETION "task_completion"

/* The status number used in index keys. */
#define TW_TASK_STATUS_COUNT 4

/* Loads user's task id: through t (read for update) or, with t NULL, as
 * committed in s. TW_ERR_NOT_FOUND when there is none. */
tw_err tw_task_get(tw_store *s, tw_txn *t, const tw_id *user, const tw_id *id, tw_arena *arena,
                   tw_task_record **out);

/* A task as stored: the value of its record's task field, with the
 * value's length varint before it, which a response can carry as its Task
 * field without decoding and packing it again (kit/raw.h). */
typedef struct tw_task_bytes {
    const uint8_t *prefixed;
    size_t len;
} tw_task_bytes;

/* The task in a record's stored bytes (borrowed: *out points into them);
 * TW_ERR_DB_CORRUPT when they hold none. */
tw_err tw_task_record_bytes(const uint8_t *rec, size_t len, tw_task_bytes *out);

/* tw_task_get's record as committed in s, not decoded: its stored bytes,
 * copied into arena. */
tw_err tw_task_get_stored(tw_store *s, const tw_id *user, const tw_id *id, tw_arena *arena,
                          const uint8_t **rec, size_t *len);

/* Writes rec, a new task (old NULL) or a new version of old: bumps the
 * version, sets etag and update_time (now_ms), replaces old's index
 * entries by rec's and appends a "task" upsert to the change log. */
tw_err tw_task_put(tw_txn *t, const tw_id *user, const tw_task_record *old, tw_task_record *rec,
                   int64_t now_ms, tw_arena *arena);

/* Deletes old with its index entries, appends a tombstone and records the
 * deletion (TASK_DELETED). */
tw_err tw_task_remove(tw_txn *t, const tw_id *user, const tw_task_record *old);

/* Whether user deleted a task with this id (tw_task_remove): asked about
 * an id that has no task now, it tells a deleted task from one the user
 * never had (another user's ids included). Read for update in t. */
tw_err tw_task_was_deleted(tw_txn *t, const tw_id *user, const tw_id *id, bool *deleted);

/* The etag of a version, and the version of an etag (false: not one). */
char *tw_task_etag(tw_arena *arena, uint64_t version);
bool tw_task_etag_version(const char *etag, uint64_t *version);

/* The id of a record's task. */
tw_id tw_task_record_id(const tw_task_record *rec);

/* Up to limit ids of parent's children (parent NULL: top-level tasks) in
 * any status; *more says there were more. ids live in arena. */
tw_err tw_task_children(tw_store *s, const tw_id *user, const tw_id *parent, size_t limit,
                        tw_arena *arena, tw_id **ids, size_t *n, bool *more);

/* The order key next to a position among parent's children (any status),
 * skipping the task `self` (may be NULL): with after NULL the last key;
 * otherwise the first key greater than after. *key is NULL when there is
 * none; it lives in arena. */
tw_err tw_task_sibling_key(tw_store *s, const tw_id *user, const tw_id *parent, const char *after,
                           const tw_id *self, tw_arena *arena, char **key);

/* The greatest order key ever stored among parent's children (parent
 * NULL: top-level tasks) while the store is open, "" when there is none;
 * at least the last one stored now (a store hint, tw_hint.h, which
 * tw_task_put raises). out holds TW_HINT_VALUE_MAX bytes. */
tw_err tw_task_last_order_key(tw_store *s, const tw_id *user, const tw_id *parent, char *out);

/* Completion log writes, all in t. */
tw_err tw_completion_get(tw_store *s, tw_txn *t, const tw_id *user, const tw_id *id,
                         tw_arena *arena, tw_completion_record **out);
/* Writes a new or changed completion and appends a "task_completion"
 * upsert; indexed says whether it counts (not reverted): its by-credit
 * entry is written or removed accordingly. */
tw_err tw_completion_put(tw_txn *t, const tw_id *user, tw_completion_record *rec, bool indexed);
/* Records or forgets occurrences a task skipped (missed), by due. */
tw_err tw_task_missed_put(tw_txn *t, const tw_id *user, const tw_id *task, int64_t due_ms,
                          bool present);

/* Responses remembered for request ids (CreateTask, CompleteTask): key is
 * the method and request id ("CreateTask:<id>"). TW_ERR_NOT_FOUND when
 * none is remembered. */
tw_err tw_request_get(tw_txn *t, const tw_id *user, const char *key, tw_arena *arena,
                      Tw__Store__V1__RequestRecord **out);
tw_err tw_request_put(tw_txn *t, const tw_id *user, const char *key,
                      const Tw__Store__V1__RequestRecord *rec);

/* Service-wide counters by UTC day, for the runbook's business metrics. */
#define TW_COUNTER_TASKS_CREATED    "tasks_created"
#define TW_COUNTER_TASK_COMPLETIONS "task_completions"

#endif
