/*
 * Unit tests for server/tasks/task_store.c: a task record and its index
 * entries are written and removed together, each write with its change-log
 * entry; deletions are remembered; children and sibling order keys come
 * from the parent index; completions, missed occurrences and remembered
 * requests have their keys. Checked below the API, key by key.
 */
#include "store_fixture.h"
#include "tasks/task_store.h"
#include "tw_changelog.h"

#include "tw_check.h"

#include <stdint.h>
#include <string.h>

#define NOW_MS (FX_EPOCH_MS + 5000)

/* ---- helpers ---------------------------------------------------------------- */

static tw_id make_id(uint8_t n)
{
    return (tw_id){{0x01, 0x90, 0x00, 0x00, 0x00, 0x00, 0x70, 0x00, 0x80, [15] = n}};
}

static char *id_text(const tw_id *id)
{
    char *text = tw_arena_alloc(fx.arena, TW_ID_TEXT_SIZE);
    tw_id_format(id, text);
    return text;
}

/* A record of task id in the fixture's arena: status, priority, parent (0:
 * none), order key and labels as given. */
static tw_task_record *record(uint8_t id, Tw__V1__TaskStatus status, int32_t priority,
                              uint8_t parent, const char *order_key, const char *label)
{
    Tw__V1__Task *task = tw_arena_alloc(fx.arena, sizeof *task);
    tw__v1__task__init(task);
    tw_id tid = make_id(id);
    task->id = id_text(&tid);
    task->title = "a task";
    task->status = status;
    task->priority = priority;
    if (parent != 0) {
        tw_id pid = make_id(parent);
        task->parent_id = id_text(&pid);
    }
    task->order_key = (char *)order_key;
    if (label != NULL) {
        task->labels = tw_arena_alloc(fx.arena, sizeof *task->labels);
        task->labels[0] = (char *)label;
        task->n_labels = 1;
    }
    tw_task_record *rec = tw_arena_alloc(fx.arena, sizeof *rec);
    tw__store__v1__task_record__init(rec);
    rec->task = task;
    return rec;
}

/* tw_task_put (old: the stored version, NULL for a new task) in its own
 * transaction. */
static tw_err put(const tw_id *user, const tw_task_record *old, tw_task_record *rec)
{
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    tw_err err = tw_task_put(t, user, old, rec, NOW_MS, fx.arena);
    if (err) {
        tw_txn_abort(t);
        return err;
    }
    return tw_txn_commit(t);
}

static tw_task_record *get(const tw_id *user, uint8_t id)
{
    tw_id tid = make_id(id);
    tw_task_record *rec = NULL;
    ck_assert_int_eq(tw_task_get(fx.store, NULL, user, &tid, fx.arena, &rec), TW_OK);
    return rec;
}

/* How many keys of family lie under user. */
static int keys_under(tw_kf family, const tw_id *user)
{
    tw_key prefix;
    tw_key_init(&prefix, family);
    tw_key_id(&prefix, user);
    return fx_count_keys(fx.store, &prefix);
}

/* Whether the one index entry of family for task id, as index_write makes
 * it, exists. */
static bool status_entry(const tw_id *user, uint32_t status, uint8_t id)
{
    tw_id tid = make_id(id);
    tw_key k;
    tw_key_init(&k, TW_KF_TASK_BY_STATUS);
    tw_key_id(&k, user);
    tw_key_u32(&k, status);
    tw_key_id(&k, &tid);
    tw_value v;
    return tw_store_get(fx.store, &k, NULL, &v) == TW_OK;
}

static bool label_entry(const tw_id *user, const char *label, uint8_t id)
{
    tw_id tid = make_id(id);
    tw_key k;
    tw_key_init(&k, TW_KF_TASK_BY_LABEL);
    tw_key_id(&k, user);
    tw_key_str(&k, label);
    tw_key_id(&k, &tid);
    tw_value v;
    return tw_store_get(fx.store, &k, NULL, &v) == TW_OK;
}

/* The entries of user's change log, in order. */
static tw_change_page changes(const tw_id *user)
{
    tw_change_page page;
    ck_assert_int_eq(tw_store_changelog_read(fx.store, user, 0, 100, fx.arena, &page), TW_OK);
    return page;
}

static int index_keys(const tw_id *user)
{
    return keys_under(TW_KF_TASK_BY_STATUS, user) + keys_under(TW_KF_TASK_BY_DUE, user) +
           keys_under(TW_KF_TASK_BY_PRIORITY, user) + keys_under(TW_KF_TASK_BY_PARENT, user) +
           keys_under(TW_KF_TASK_BY_LABEL, user);
}

/* ---- tasks -------------------------------------------------------------------- */

START_TEST(a_new_task_is_stored_with_its_indexes_and_a_change)
{
    tw_task_record *rec = record(1, TW__V1__TASK_STATUS__TASK_STATUS_TODO, 2, 0, "m", "home");
    ck_assert_int_eq(put(&fx_alice, NULL, rec), TW_OK);
    tw_task_record *stored = get(&fx_alice, 1);
    ck_assert_uint_eq(stored->version, 1);
    ck_assert_str_eq(stored->task->etag, "1");
    ck_assert_ptr_nonnull(stored->task->update_time);
    ck_assert_int_eq(stored->task->update_time->seconds, NOW_MS / 1000);
    /* Status, due, priority, parent and one per label. */
    ck_assert_int_eq(index_keys(&fx_alice), 5);
    ck_assert(status_entry(&fx_alice, 1, 1));
    ck_assert(label_entry(&fx_alice, "home", 1));
    tw_change_page page = changes(&fx_alice);
    ck_assert_uint_eq(page.count, 1);
    ck_assert_str_eq(page.changes[0].resource_type, TW_RESOURCE_TASK);
    tw_id id = make_id(1);
    ck_assert(tw_id_equal(&page.changes[0].resource_id, &id));
    ck_assert_int_eq(page.changes[0].op, TW_CHANGE_UPSERT);
    /* Bob has none of it. */
    tw_task_record *none;
    ck_assert_int_eq(tw_task_get(fx.store, NULL, &fx_bob, &id, fx.arena, &none), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(index_keys(&fx_bob), 0);
}
END_TEST

START_TEST(a_new_version_moves_every_index_entry)
{
    tw_task_record *v1 = record(1, TW__V1__TASK_STATUS__TASK_STATUS_TODO, 2, 0, "m", "home");
    ck_assert_int_eq(put(&fx_alice, NULL, v1), TW_OK);
    tw_task_record *old = get(&fx_alice, 1);
    tw_task_record *v2 = record(1, TW__V1__TASK_STATUS__TASK_STATUS_DONE, 4, 9, "b", "work");
    ck_assert_int_eq(put(&fx_alice, old, v2), TW_OK);
    tw_task_record *stored = get(&fx_alice, 1);
    ck_assert_uint_eq(stored->version, 2);
    ck_assert_str_eq(stored->task->etag, "2");
    ck_assert_int_eq(index_keys(&fx_alice), 5); /* the old ones are gone */
    ck_assert(!status_entry(&fx_alice, 1, 1));
    ck_assert(status_entry(&fx_alice, 3, 1));
    ck_assert(!label_entry(&fx_alice, "home", 1));
    ck_assert(label_entry(&fx_alice, "work", 1));
    tw_id parent = make_id(9);
    tw_id *ids;
    size_t n;
    bool more;
    ck_assert_int_eq(tw_task_children(fx.store, &fx_alice, &parent, 10, fx.arena, &ids, &n, &more),
                     TW_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(tw_task_children(fx.store, &fx_alice, NULL, 10, fx.arena, &ids, &n, &more),
                     TW_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(changes(&fx_alice).count, 2);
}
END_TEST

static tw_err remove_task(const tw_id *user, uint8_t id)
{
    tw_task_record *old = get(user, id);
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    tw_err err = tw_task_remove(t, user, old);
    if (err) {
        tw_txn_abort(t);
        return err;
    }
    return tw_txn_commit(t);
}

static bool was_deleted(const tw_id *user, uint8_t id)
{
    tw_id tid = make_id(id);
    tw_txn *t;
    bool deleted = true;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_task_was_deleted(t, user, &tid, &deleted), TW_OK);
    tw_txn_abort(t);
    return deleted;
}

START_TEST(a_removed_task_leaves_a_tombstone_and_its_deletion)
{
    tw_task_record *rec = record(1, TW__V1__TASK_STATUS__TASK_STATUS_TODO, 2, 0, "m", "home");
    ck_assert_int_eq(put(&fx_alice, NULL, rec), TW_OK);
    ck_assert(!was_deleted(&fx_alice, 1));
    ck_assert_int_eq(remove_task(&fx_alice, 1), TW_OK);
    tw_id id = make_id(1);
    tw_task_record *gone;
    ck_assert_int_eq(tw_task_get(fx.store, NULL, &fx_alice, &id, fx.arena, &gone),
                     TW_ERR_NOT_FOUND);
    ck_assert_int_eq(index_keys(&fx_alice), 0);
    tw_change_page page = changes(&fx_alice);
    ck_assert_uint_eq(page.count, 2);
    ck_assert_int_eq(page.changes[1].op, TW_CHANGE_TOMBSTONE);
    ck_assert(tw_id_equal(&page.changes[1].resource_id, &id));
    /* Deleted by alice; never bob's, and never an id nobody had. */
    ck_assert(was_deleted(&fx_alice, 1));
    ck_assert(!was_deleted(&fx_bob, 1));
    ck_assert(!was_deleted(&fx_alice, 2));
}
END_TEST

START_TEST(a_record_without_its_task_is_corrupt)
{
    tw_id id = make_id(1);
    tw_task_record rec = TW__STORE__V1__TASK_RECORD__INIT;
    tw_key k;
    tw_key_init(&k, TW_KF_TASK);
    tw_key_id(&k, &fx_alice);
    tw_key_id(&k, &id);
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_put(t, &k, &(tw_value){.msg = &rec.base}), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    tw_task_record *out;
    ck_assert_int_eq(tw_task_get(fx.store, NULL, &fx_alice, &id, fx.arena, &out),
                     TW_ERR_DB_CORRUPT);
}
END_TEST

/* What GetTask and ListTasks send: the task's bytes as stored, which a
 * response packs as an unknown field exactly as it packs the decoded task. */
START_TEST(a_task_as_stored_packs_like_the_decoded_task)
{
    tw_task_record *rec = record(1, TW__V1__TASK_STATUS__TASK_STATUS_TODO, 2, 0, "m", "home");
    rec->task->notes = "notes";
    ck_assert_int_eq(put(&fx_alice, NULL, rec), TW_OK);
    tw_id id = make_id(1);
    const uint8_t *stored;
    size_t len;
    ck_assert_int_eq(tw_task_get_stored(fx.store, &fx_alice, &id, fx.arena, &stored, &len), TW_OK);
    tw_task_bytes task;
    ck_assert_int_eq(tw_task_record_bytes(stored, len, &task), TW_OK);

    Tw__V1__GetTaskResponse decoded = TW__V1__GET_TASK_RESPONSE__INIT;
    decoded.task = get(&fx_alice, 1)->task;
    ProtobufCMessageUnknownField field = {.tag = 1,
                                          .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
                                          .len = task.len,
                                          .data = (uint8_t *)task.prefixed};
    Tw__V1__GetTaskResponse raw = TW__V1__GET_TASK_RESPONSE__INIT;
    raw.base.n_unknown_fields = 1;
    raw.base.unknown_fields = &field;
    size_t want = tw__v1__get_task_response__get_packed_size(&decoded);
    ck_assert_uint_eq(tw__v1__get_task_response__get_packed_size(&raw), want);
    uint8_t *a = tw_arena_alloc(fx.arena, want), *b = tw_arena_alloc(fx.arena, want);
    tw__v1__get_task_response__pack(&decoded, a);
    tw__v1__get_task_response__pack(&raw, b);
    ck_assert_mem_eq(a, b, want);

    ck_assert_int_eq(tw_task_record_bytes(stored, 0, &task), TW_ERR_DB_CORRUPT);
    ck_assert_int_eq(tw_task_get_stored(fx.store, &fx_bob, &id, fx.arena, &stored, &len),
                     TW_ERR_NOT_FOUND);
}
END_TEST

START_TEST(etags_are_versions)
{
    ck_assert_str_eq(tw_task_etag(fx.arena, 1), "1");
    ck_assert_str_eq(tw_task_etag(fx.arena, UINT64_MAX), "18446744073709551615");
    uint64_t v = 0;
    ck_assert(tw_task_etag_version("42", &v));
    ck_assert_uint_eq(v, 42);
    const char *bad[] = {"", "0", "007", "-1", "12x", " 1", "W/\"1\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!tw_task_etag_version(bad[i], &v), "\"%s\" taken for an etag", bad[i]);
}
END_TEST

/* ---- the parent index: children and order keys --------------------------------- */

START_TEST(children_are_listed_in_order_up_to_a_limit)
{
    /* Three children of task 9 in order keys c, a, b; one top-level task. */
    const char *keys[] = {"c", "a", "b"};
    for (uint8_t i = 0; i < 3; i++)
        ck_assert_int_eq(
            put(&fx_alice, NULL,
                record(i + 1, TW__V1__TASK_STATUS__TASK_STATUS_TODO, 1, 9, keys[i], NULL)),
            TW_OK);
    ck_assert_int_eq(
        put(&fx_alice, NULL, record(7, TW__V1__TASK_STATUS__TASK_STATUS_TODO, 1, 0, "a", NULL)),
        TW_OK);
    tw_id parent = make_id(9), *ids;
    size_t n;
    bool more;
    ck_assert_int_eq(tw_task_children(fx.store, &fx_alice, &parent, 10, fx.arena, &ids, &n, &more),
                     TW_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert(!more);
    /* Any status, in order-key order within one status: all are TODO. */
    tw_id want[] = {make_id(2), make_id(3), make_id(1)};
    for (size_t i = 0; i < 3; i++)
        ck_assert(tw_id_equal(&ids[i], &want[i]));
    ck_assert_int_eq(tw_task_children(fx.store, &fx_alice, &parent, 2, fx.arena, &ids, &n, &more),
                     TW_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert(more);
    ck_assert_int_eq(tw_task_children(fx.store, &fx_alice, NULL, 10, fx.arena, &ids, &n, &more),
                     TW_OK);
    ck_assert_uint_eq(n, 1);
    tw_id top = make_id(7);
    ck_assert(tw_id_equal(&ids[0], &top));
    ck_assert_int_eq(tw_task_children(fx.store, &fx_bob, &parent, 10, fx.arena, &ids, &n, &more),
                     TW_OK);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(sibling_keys_come_from_every_status)
{
    /* Children of 9: "b" todo, "d" done, "f" in progress. */
    ck_assert_int_eq(
        put(&fx_alice, NULL, record(1, TW__V1__TASK_STATUS__TASK_STATUS_TODO, 1, 9, "b", NULL)),
        TW_OK);
    ck_assert_int_eq(
        put(&fx_alice, NULL, record(2, TW__V1__TASK_STATUS__TASK_STATUS_DONE, 1, 9, "d", NULL)),
        TW_OK);
    ck_assert_int_eq(put(&fx_alice, NULL,
                         record(3, TW__V1__TASK_STATUS__TASK_STATUS_IN_PROGRESS, 1, 9, "f", NULL)),
                     TW_OK);
    tw_id parent = make_id(9), third = make_id(3);
    char *key;
    /* The last key, whatever its status; skipping self gives the one before. */
    ck_assert_int_eq(tw_task_sibling_key(fx.store, &fx_alice, &parent, NULL, NULL, fx.arena, &key),
                     TW_OK);
    ck_assert_str_eq(key, "f");
    ck_assert_int_eq(
        tw_task_sibling_key(fx.store, &fx_alice, &parent, NULL, &third, fx.arena, &key), TW_OK);
    ck_assert_str_eq(key, "d");
    /* The first key after a position. */
    ck_assert_int_eq(tw_task_sibling_key(fx.store, &fx_alice, &parent, "b", NULL, fx.arena, &key),
                     TW_OK);
    ck_assert_str_eq(key, "d");
    ck_assert_int_eq(tw_task_sibling_key(fx.store, &fx_alice, &parent, "c", NULL, fx.arena, &key),
                     TW_OK);
    ck_assert_str_eq(key, "d");
    ck_assert_int_eq(tw_task_sibling_key(fx.store, &fx_alice, &parent, "f", NULL, fx.arena, &key),
                     TW_OK);
    ck_assert_ptr_null(key);
    /* No children: no key. */
    ck_assert_int_eq(tw_task_sibling_key(fx.store, &fx_bob, &parent, NULL, NULL, fx.arena, &key),
                     TW_OK);
    ck_assert_ptr_null(key);
}
END_TEST

static const char *last_key(const tw_id *user, uint8_t parent)
{
    static char key[TW_HINT_VALUE_MAX];
    tw_id pid = make_id(parent);
    ck_assert_int_eq(tw_task_last_order_key(fx.store, user, &pid, key), TW_OK);
    return key;
}

/* The last order key is scanned once, then raised by every put under the
 * parent, in any status, and never goes down. */
START_TEST(the_last_order_key_is_held_and_raised_by_puts)
{
    const Tw__V1__TaskStatus todo = TW__V1__TASK_STATUS__TASK_STATUS_TODO,
                             done = TW__V1__TASK_STATUS__TASK_STATUS_DONE;
    ck_assert_str_eq(last_key(&fx_alice, 9), "");
    ck_assert_int_eq(put(&fx_alice, NULL, record(1, todo, 1, 9, "b", NULL)), TW_OK);
    ck_assert_int_eq(put(&fx_alice, NULL, record(2, done, 1, 9, "f", NULL)), TW_OK);
    ck_assert_str_eq(last_key(&fx_alice, 9), "f");
    /* Another parent's or user's puts are theirs. */
    ck_assert_int_eq(put(&fx_alice, NULL, record(3, todo, 1, 8, "z", NULL)), TW_OK);
    ck_assert_int_eq(put(&fx_bob, NULL, record(4, todo, 1, 9, "y", NULL)), TW_OK);
    ck_assert_str_eq(last_key(&fx_alice, 9), "f");
    ck_assert_str_eq(last_key(&fx_alice, 8), "z");
    /* A new version moved under 9 raises it; removing it does not lower it. */
    tw_task_record *moved = get(&fx_alice, 3), *old = get(&fx_alice, 3);
    tw_id nine = make_id(9);
    moved->task->parent_id = id_text(&nine);
    moved->task->order_key = "m";
    ck_assert_int_eq(put(&fx_alice, old, moved), TW_OK);
    ck_assert_str_eq(last_key(&fx_alice, 9), "m");
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_task_remove(t, &fx_alice, get(&fx_alice, 3)), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    ck_assert_str_eq(last_key(&fx_alice, 9), "m");
    /* A put that is not committed raises nothing. */
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_task_put(t, &fx_alice, NULL, record(5, todo, 1, 9, "x", NULL), NOW_MS,
                                 fx.arena),
                     TW_OK);
    tw_txn_abort(t);
    ck_assert_str_eq(last_key(&fx_alice, 9), "m");
}
END_TEST

/* ---- completions, missed occurrences, remembered requests ------------------------ */

static tw_completion_record *completion(uint8_t id, uint8_t task)
{
    Tw__V1__TaskCompletion *c = tw_arena_alloc(fx.arena, sizeof *c);
    tw__v1__task_completion__init(c);
    tw_id cid = make_id(id), tid = make_id(task);
    c->id = id_text(&cid);
    c->task_id = id_text(&tid);
    c->time_zone = "Europe/Paris";
    tw_completion_record *rec = tw_arena_alloc(fx.arena, sizeof *rec);
    tw__store__v1__completion_record__init(rec);
    rec->completion = c;
    rec->credit_unix_ms = NOW_MS;
    rec->day_start_hour = 4;
    return rec;
}

static tw_err put_completion(tw_completion_record *rec, bool indexed)
{
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    tw_err err = tw_completion_put(t, &fx_alice, rec, indexed);
    if (err) {
        tw_txn_abort(t);
        return err;
    }
    return tw_txn_commit(t);
}

START_TEST(a_completion_counts_only_while_indexed)
{
    tw_completion_record *rec = completion(5, 1);
    ck_assert_int_eq(put_completion(rec, true), TW_OK);
    tw_id id = make_id(5);
    tw_completion_record *stored;
    ck_assert_int_eq(tw_completion_get(fx.store, NULL, &fx_alice, &id, fx.arena, &stored), TW_OK);
    ck_assert_str_eq(stored->completion->time_zone, "Europe/Paris");
    ck_assert_int_eq(keys_under(TW_KF_COMPLETION_BY_TASK, &fx_alice), 1);
    ck_assert_int_eq(keys_under(TW_KF_COMPLETION_BY_CREDIT, &fx_alice), 1);
    /* The credit entry carries what a streak needs: zone and day start. */
    tw_key k;
    tw_key_init(&k, TW_KF_COMPLETION_BY_CREDIT);
    tw_key_id(&k, &fx_alice);
    tw_key_i64(&k, NOW_MS);
    tw_key_id(&k, &id);
    tw_value v;
    ck_assert_int_eq(tw_store_get(fx.store, &k, fx.arena, &v), TW_OK);
    const Tw__Store__V1__CompletionCredit *credit = (const void *)v.msg;
    ck_assert_str_eq(credit->time_zone, "Europe/Paris");
    ck_assert_int_eq(credit->day_start_hour, 4);
    /* Reverted: kept, no longer credited. */
    ck_assert_int_eq(put_completion(rec, false), TW_OK);
    ck_assert_int_eq(keys_under(TW_KF_COMPLETION_BY_TASK, &fx_alice), 1);
    ck_assert_int_eq(keys_under(TW_KF_COMPLETION_BY_CREDIT, &fx_alice), 0);
    tw_change_page page = changes(&fx_alice);
    ck_assert_uint_eq(page.count, 2);
    ck_assert_str_eq(page.changes[0].resource_type, TW_RESOURCE_TASK_COMPLETION);
    ck_assert(tw_id_equal(&page.changes[0].resource_id, &id));
}
END_TEST

START_TEST(a_completion_with_bad_ids_is_refused)
{
    tw_completion_record *rec = completion(5, 1);
    rec->completion->task_id = "not-an-id";
    ck_assert_int_eq(put_completion(rec, true), TW_ERR_INTERNAL);
    ck_assert_uint_eq(changes(&fx_alice).count, 0);
    tw_id id = make_id(5);
    tw_completion_record *none;
    ck_assert_int_eq(tw_completion_get(fx.store, NULL, &fx_alice, &id, fx.arena, &none),
                     TW_ERR_NOT_FOUND);
}
END_TEST

START_TEST(missed_occurrences_are_recorded_and_forgotten)
{
    tw_id task = make_id(1);
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_task_missed_put(t, &fx_alice, &task, NOW_MS, true), TW_OK);
    ck_assert_int_eq(tw_task_missed_put(t, &fx_alice, &task, NOW_MS + 86400000, true), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    ck_assert_int_eq(keys_under(TW_KF_TASK_MISSED, &fx_alice), 2);
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_task_missed_put(t, &fx_alice, &task, NOW_MS, false), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    ck_assert_int_eq(keys_under(TW_KF_TASK_MISSED, &fx_alice), 1);
}
END_TEST

START_TEST(requests_are_remembered_per_user_and_key)
{
    static uint8_t sha[32] = {1, 2, 3};
    Tw__Store__V1__RequestRecord rec = TW__STORE__V1__REQUEST_RECORD__INIT;
    rec.request_sha256 = (ProtobufCBinaryData){sizeof sha, sha};
    rec.response = (ProtobufCBinaryData){3, (uint8_t *)"abc"};
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_request_put(t, &fx_alice, "CreateTask:r1", &rec), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    Tw__Store__V1__RequestRecord *got;
    ck_assert_int_eq(tw_request_get(t, &fx_alice, "CreateTask:r1", fx.arena, &got), TW_OK);
    ck_assert_mem_eq(got->request_sha256.data, sha, sizeof sha);
    ck_assert_uint_eq(got->response.len, 3);
    ck_assert_int_eq(tw_request_get(t, &fx_alice, "CompleteTask:r1", fx.arena, &got),
                     TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_request_get(t, &fx_bob, "CreateTask:r1", fx.arena, &got), TW_ERR_NOT_FOUND);
    tw_txn_abort(t);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("task_store");
    TCase *tc = tcase_create("task_store");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, a_new_task_is_stored_with_its_indexes_and_a_change);
    tcase_add_test(tc, a_new_version_moves_every_index_entry);
    tcase_add_test(tc, a_removed_task_leaves_a_tombstone_and_its_deletion);
    tcase_add_test(tc, a_record_without_its_task_is_corrupt);
    tcase_add_test(tc, a_task_as_stored_packs_like_the_decoded_task);
    tcase_add_test(tc, children_are_listed_in_order_up_to_a_limit);
    tcase_add_test(tc, sibling_keys_come_from_every_status);
    tcase_add_test(tc, the_last_order_key_is_held_and_raised_by_puts);
    tcase_add_test(tc, a_completion_counts_only_while_indexed);
    tcase_add_test(tc, a_completion_with_bad_ids_is_refused);
    tcase_add_test(tc, missed_occurrences_are_recorded_and_forgotten);
    tcase_add_test(tc, requests_are_remembered_per_user_and_key);
    suite_add_tcase(s, tc);
    TCase *pure = tcase_create("etags");
    tcase_add_checked_fixture(pure, fx_setup, fx_teardown);
    tcase_add_test(pure, etags_are_versions);
    suite_add_tcase(s, pure);
    return s;
}
