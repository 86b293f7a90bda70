/* Unit tests for server/tasks/task_ops.c: every task step against a real
 * store, that nothing is written when a step fails, recurring tasks moving
 * along their series (daylight saving, skipped occurrences, COUNT, repeat
 * from completion), undoing completions, field-by-field merges and moves. */
#include "task_fixture.h"

#include "tw_check.h"

#include <string.h>

#define NY "America/New_York"

static int64_t due_ms(const tw_task_record *rec)
{
    int64_t ms;
    ck_assert(tw_timestamp_to_ms(rec->task->due->time, &ms));
    return ms;
}

START_TEST(creates_with_defaults)
{
    uint64_t before = tf_log_end();
    tw_task_record *a = tf_create_ok(tf_task("Write the report"));
    ck_assert_int_eq(a->task->status, TW__V1__TASK_STATUS__TASK_STATUS_TODO);
    ck_assert_int_eq(a->task->priority, 4);
    ck_assert_str_eq(a->task->etag, "1");
    tw_id id = tf_id(a);
    ck_assert(tw_id_is_v7(&id));
    ck_assert_str_eq(a->task->order_key, "V0000001");
    ck_assert_int_eq(tf_log_end(), before + 1);
    tw_task_record *b = tf_create_ok(tf_task("Second"));
    ck_assert_int_gt(strcmp(b->task->order_key, a->task->order_key), 0);
    tw_task_record *stored = tf_get(&id);
    ck_assert_str_eq(stored->task->title, "Write the report");
    int64_t created;
    ck_assert(tw_timestamp_to_ms(stored->task->create_time, &created));
    ck_assert_int_eq(created, FX_EPOCH_MS);
}
END_TEST

START_TEST(client_ids_are_kept_and_never_reused)
{
    tw_id mine = tw_id_new();
    char text[TW_ID_TEXT_SIZE];
    tw_id_format(&mine, text);
    Tw__V1__Task *t = tf_task("Offline");
    t->id = text;
    tw_task_record *rec = tf_create_ok(t);
    ck_assert_str_eq(rec->task->id, text);
    uint64_t end = tf_log_end();
    Tw__V1__Task *again = tf_task("Offline again");
    again->id = text;
    ck_assert_int_eq(tf_create(again, &rec), TW_ERR_ALREADY_EXISTS);
    ck_assert_int_eq(tf_log_end(), end);
    ck_assert_str_eq(tf_get(&mine)->task->title, "Offline");
}
END_TEST

START_TEST(parents_must_exist_and_nesting_is_bounded)
{
    tw_task_record *rec;
    uint64_t end = tf_log_end();
    Tw__V1__Task *t = tf_task("Orphan");
    tw_id nobody = tw_id_new();
    char text[TW_ID_TEXT_SIZE];
    tw_id_format(&nobody, text);
    t->parent_id = text;
    ck_assert_int_eq(tf_create(t, &rec), TW_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(tf_env.message, "not found"));
    /* Bob's task is no parent for alice: the same answer. */
    tf_env.user = fx_bob;
    tw_task_record *bobs = tf_create_ok(tf_task("Bob's"));
    tf_env.user = fx_alice;
    Tw__V1__Task *t2 = tf_task("Stowaway");
    t2->parent_id = bobs->task->id;
    ck_assert_int_eq(tf_create(t2, &rec), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tf_log_end(), end);
    /* Eight levels, then no more. */
    const char *parent = "";
    for (int level = 1; level <= 8; level++) {
        Tw__V1__Task *child = tf_task("Level");
        child->parent_id = (char *)parent;
        parent = tf_create_ok(child)->task->id;
    }
    Tw__V1__Task *ninth = tf_task("Too deep");
    ninth->parent_id = (char *)parent;
    ck_assert_int_eq(tf_create(ninth, &rec), TW_ERR_VALIDATION);
    ck_assert_str_eq(tf_violation_field(), "task.parent_id");
}
END_TEST

START_TEST(bad_input_writes_nothing)
{
    tw_task_record *rec;
    uint64_t end = tf_log_end();
    Tw__V1__Task *t = tf_task("Recurring without due");
    t->recurrence = tf_rrule("FREQ=DAILY");
    ck_assert_int_eq(tf_create(t, &rec), TW_ERR_VALIDATION);
    ck_assert_str_eq(tf_violation_field(), "task.recurrence");
    t = tf_task("Never");
    t->due = tf_due_date(NY, 2024, 6, 1);
    t->recurrence = tf_rrule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30");
    ck_assert_int_eq(tf_create(t, &rec), TW_ERR_VALIDATION);
    ck_assert_str_eq(tf_violation_field(), "task.recurrence.rrule");
    t = tf_task("Bad zone");
    t->due = tf_due_date("Mars/Base", 2024, 6, 1);
    ck_assert_int_eq(tf_create(t, &rec), TW_ERR_VALIDATION);
    ck_assert_str_eq(tf_violation_field(), "task.due.time_zone");
    t = tf_task("Bad priority");
    t->priority = 5;
    ck_assert_int_eq(tf_create(t, &rec), TW_ERR_VALIDATION);
    ck_assert_str_eq(tf_violation_field(), "task.priority");
    char long_title[TW_TASK_TITLE_MAX + 2];
    memset(long_title, 'x', sizeof long_title - 1);
    long_title[sizeof long_title - 1] = '\0';
    ck_assert_int_eq(tf_create(tf_task(long_title), &rec), TW_ERR_VALIDATION);
    ck_assert_str_eq(tf_violation_field(), "task.title");
    ck_assert_int_eq(tf_log_end(), end);
}
END_TEST

START_TEST(dues_without_a_zone_take_the_users)
{
    Tw__V1__Task *t = tf_task("Call");
    t->due = tf_due_time(NY, 2024, 6, 3, 9, 0);
    t->due->time_zone = "";
    tw_task_record *rec = tf_create_ok(t);
    ck_assert_str_eq(rec->task->due->time_zone, NY);
    ck_assert(rec->has_due);
    ck_assert_int_eq(rec->due_unix_ms, tf_at(NY, 2024, 6, 3, 9, 0));
    /* An all-day due is indexed at the start of its day in its zone. */
    t = tf_task("Birthday");
    t->due = tf_due_date("Europe/Berlin", 2024, 6, 3);
    rec = tf_create_ok(t);
    ck_assert_int_eq(rec->due_unix_ms, tf_at("Europe/Berlin", 2024, 6, 3, 0, 0));
}
END_TEST

START_TEST(updates_check_etags_and_status)
{
    tw_task_record *rec = tf_create_ok(tf_task("Draft"));
    tw_id id = tf_id(rec);
    Tw__V1__Task *values = tf_task("Final");
    tw_task_record *after;
    ck_assert_int_eq(tf_update(&id, values, TW_TF_TITLE, NULL, &after), TW_OK);
    ck_assert_str_eq(after->task->title, "Final");
    ck_assert_str_eq(after->task->etag, "2");
    /* A stale etag: ABORTED (CONFLICT), nothing changed. */
    uint64_t stale = 1, end = tf_log_end();
    tw_task_update u = {.version = &stale};
    ck_assert_int_eq(tf_update(&id, tf_task("Lost"), TW_TF_TITLE, &u, &after), TW_ERR_CONFLICT);
    ck_assert_int_eq(tf_log_end(), end);
    ck_assert_str_eq(tf_get(&id)->task->title, "Final");
    /* DONE is reached by completing, and left by reopening or archiving. */
    values->status = TW__V1__TASK_STATUS__TASK_STATUS_DONE;
    ck_assert_int_eq(tf_update(&id, values, TW_TF_STATUS, NULL, &after), TW_ERR_VALIDATION);
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, NULL, NULL), TW_OK);
    values->status = TW__V1__TASK_STATUS__TASK_STATUS_TODO;
    ck_assert_int_eq(tf_update(&id, values, TW_TF_STATUS, NULL, &after), TW_ERR_VALIDATION);
    ck_assert_str_eq(tf_violation_field(), "task.status");
    values->status = TW__V1__TASK_STATUS__TASK_STATUS_ARCHIVED;
    ck_assert_int_eq(tf_update(&id, values, TW_TF_STATUS, NULL, &after), TW_OK);
    tw_id nobody = tw_id_new();
    ck_assert_int_eq(tf_update(&nobody, values, TW_TF_TITLE, NULL, &after), TW_ERR_NOT_FOUND);
}
END_TEST

START_TEST(merges_settle_fields_edited_on_both_sides_by_edit_time)
{
    tw_task_record *rec = tf_create_ok(tf_task("Base")); /* version 1 at t0 */
    tw_id id = tf_id(rec);
    int64_t t0 = tf_env.now_ms;
    /* The server edits the title at t0 + 10 s (version 2). */
    tf_set_now(t0 + 10000);
    tw_task_record *after;
    ck_assert_int_eq(tf_update(&id, tf_task("Server title"), TW_TF_TITLE, NULL, &after), TW_OK);
    /* A device edited title and notes offline at t0 + 20 s from version 1:
     * notes apply, the title conflicts and the later edit (the device) wins. */
    tf_set_now(t0 + 30000);
    Tw__V1__Task *offline = tf_task("Device title");
    offline->notes = "device notes";
    tw_task_update u = {.merge = true, .base_version = 1, .edit_ms = t0 + 20000};
    ck_assert_int_eq(tf_update(&id, offline, TW_TF_TITLE | TW_TF_NOTES, &u, &after), TW_OK);
    ck_assert_uint_eq(u.conflicting, TW_TF_TITLE);
    ck_assert_uint_eq(u.server_won, 0);
    ck_assert_str_eq(after->task->title, "Device title");
    ck_assert_str_eq(after->task->notes, "device notes");
    /* Another device edited the title at t0 + 5 s, also from version 1:
     * the server's later edit (t0 + 20 s) keeps it; nothing is written. */
    uint64_t end = tf_log_end();
    tw_task_update late = {.merge = true, .base_version = 1, .edit_ms = t0 + 5000};
    ck_assert_int_eq(tf_update(&id, tf_task("Old edit"), TW_TF_TITLE, &late, &after), TW_OK);
    ck_assert_uint_eq(late.conflicting, TW_TF_TITLE);
    ck_assert_uint_eq(late.server_won, TW_TF_TITLE);
    ck_assert_uint_eq(late.applied, 0);
    ck_assert_str_eq(after->task->title, "Device title");
    ck_assert_int_eq(tf_log_end(), end);
    /* From the current version there is nothing to settle. */
    tw_task_update fresh = {.merge = true, .base_version = tf_get(&id)->version, .edit_ms = t0};
    ck_assert_int_eq(tf_update(&id, tf_task("Newest"), TW_TF_TITLE, &fresh, &after), TW_OK);
    ck_assert_uint_eq(fresh.conflicting, 0);
    ck_assert_str_eq(after->task->title, "Newest");
}
END_TEST

static bool was_deleted(const tw_id *user, const tw_id *id)
{
    tw_txn *t;
    bool deleted;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_task_was_deleted(t, user, id, &deleted), TW_OK);
    tw_txn_abort(t);
    return deleted;
}

START_TEST(deletes_need_force_for_subtasks)
{
    tw_task_record *parent = tf_create_ok(tf_task("Parent"));
    Tw__V1__Task *c = tf_task("Child");
    c->parent_id = parent->task->id;
    tw_task_record *child = tf_create_ok(c);
    Tw__V1__Task *g = tf_task("Grandchild");
    g->parent_id = child->task->id;
    tf_create_ok(g);
    tw_id id = tf_id(parent), child_id = tf_id(child);
    int32_t deleted = -1;
    uint64_t end = tf_log_end();
    ck_assert_int_eq(tf_delete(&id, false, &deleted), TW_ERR_FAILED_PRECONDITION);
    ck_assert_int_eq(tf_log_end(), end);
    ck_assert_int_eq(tf_delete(&id, true, &deleted), TW_OK);
    ck_assert_int_eq(deleted, 3);
    tw_task_record *gone;
    ck_assert_int_eq(tw_task_get(fx.store, NULL, &fx_alice, &child_id, fx.arena, &gone),
                     TW_ERR_NOT_FOUND);
    /* Three tombstones. */
    tw_change_page page;
    ck_assert_int_eq(tw_store_changelog_read(fx.store, &fx_alice, end, 10, fx.arena, &page), TW_OK);
    ck_assert_uint_eq(page.count, 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(page.changes[i].op, TW_CHANGE_TOMBSTONE);
    ck_assert_int_eq(tf_delete(&id, true, &deleted), TW_ERR_NOT_FOUND);
    /* Each deletion is recorded for its user (Push tells a deleted task
     * from an id never had); another user never deleted them. */
    tw_id never = tw_id_new();
    ck_assert(was_deleted(&fx_alice, &id));
    ck_assert(was_deleted(&fx_alice, &child_id));
    ck_assert(!was_deleted(&fx_alice, &never));
    ck_assert(!was_deleted(&fx_bob, &id));
}
END_TEST

START_TEST(one_off_tasks_complete_and_reopen)
{
    Tw__V1__Task *t = tf_task("Pay rent");
    t->due = tf_due_time(NY, 2024, 6, 1, 9, 0);
    tw_task_record *rec = tf_create_ok(t), *done_task;
    tw_id id = tf_id(rec);
    tw_completion_record *done;
    int64_t at = tf_at(NY, 2024, 6, 1, 10, 0);
    tf_set_now(at);
    ck_assert_int_eq(tf_complete(&id, at, &done_task, &done), TW_OK);
    ck_assert_int_eq(done_task->task->status, TW__V1__TASK_STATUS__TASK_STATUS_DONE);
    ck_assert_int_eq(done_task->task->completed_occurrence_count, 1);
    ck_assert(done->completion->on_time);
    ck_assert_int_eq(done->completion->credited_date->day, 1);
    ck_assert_str_eq(done->completion->time_zone, NY);
    ck_assert_int_eq(tf_complete(&id, at, NULL, NULL), TW_ERR_FAILED_PRECONDITION);
    tw_task_record *reopened;
    ck_assert_int_eq(tf_reopen(&id, &reopened), TW_OK);
    ck_assert_int_eq(reopened->task->status, TW__V1__TASK_STATUS__TASK_STATUS_TODO);
    ck_assert_int_eq(reopened->task->completed_occurrence_count, 0);
    ck_assert_ptr_null(reopened->task->complete_time);
    tw_id cid;
    ck_assert(tw_id_parse(done->completion->id, &cid));
    tw_completion_record *stored;
    ck_assert_int_eq(tw_completion_get(fx.store, NULL, &fx_alice, &cid, fx.arena, &stored), TW_OK);
    ck_assert_ptr_nonnull(stored->completion->revert_time);
    ck_assert_int_eq(tf_reopen(&id, &reopened), TW_ERR_FAILED_PRECONDITION);
}
END_TEST

START_TEST(daily_tasks_stay_at_nine_across_daylight_saving)
{
    Tw__V1__Task *t = tf_task("Stretch");
    t->due = tf_due_time(NY, 2024, 3, 9, 9, 0);
    t->recurrence = tf_rrule("FREQ=DAILY");
    tw_task_record *rec = tf_create_ok(t);
    tw_id id = tf_id(rec);
    tf_set_now(tf_at(NY, 2024, 3, 9, 9, 30));
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, NULL), TW_OK);
    ck_assert_int_eq(rec->task->status, TW__V1__TASK_STATUS__TASK_STATUS_TODO);
    ck_assert_int_eq(due_ms(rec), tf_at(NY, 2024, 3, 10, 9, 0));
    ck_assert_int_eq(due_ms(rec) - tf_at(NY, 2024, 3, 9, 9, 0), 23 * 3600 * 1000);
    tf_set_now(tf_at(NY, 2024, 3, 10, 9, 30));
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, NULL), TW_OK);
    ck_assert_int_eq(due_ms(rec), tf_at(NY, 2024, 3, 11, 9, 0));
    ck_assert_int_eq(rec->task->completed_occurrence_count, 2);
    /* All-day tasks move by dates. */
    t = tf_task("Water plants");
    t->due = tf_due_date("Europe/Berlin", 2024, 10, 26);
    t->recurrence = tf_rrule("FREQ=WEEKLY;BYDAY=SA,SU");
    rec = tf_create_ok(t);
    id = tf_id(rec);
    tf_set_now(tf_at(NY, 2024, 10, 26, 12, 0));
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, NULL), TW_OK);
    ck_assert_int_eq(rec->task->due->date->day, 27);
}
END_TEST

START_TEST(missed_occurrences_are_skipped_and_restored_by_reopen)
{
    Tw__V1__Task *t = tf_task("Journal");
    t->due = tf_due_time(NY, 2024, 3, 1, 9, 0);
    t->recurrence = tf_rrule("FREQ=DAILY");
    tw_task_record *rec = tf_create_ok(t);
    tw_id id = tf_id(rec);
    tw_completion_record *done;
    tf_set_now(tf_at(NY, 2024, 3, 5, 10, 0));
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, &done), TW_OK);
    /* Done on 5 March after its 09:00: that occurrence, on time; 1-4
     * March were missed; next is the 6th. */
    ck_assert(done->completion->on_time);
    ck_assert_int_eq(done->completion->skipped_occurrence_count, 4);
    ck_assert_uint_eq(done->n_skipped_due_unix_ms, 4);
    int64_t occurrence;
    ck_assert(tw_timestamp_to_ms(done->completion->occurrence_due->time, &occurrence));
    ck_assert_int_eq(occurrence, tf_at(NY, 2024, 3, 5, 9, 0));
    ck_assert_int_eq(due_ms(rec), tf_at(NY, 2024, 3, 6, 9, 0));
    ck_assert_int_eq(tf_reopen(&id, &rec), TW_OK);
    ck_assert_int_eq(due_ms(rec), tf_at(NY, 2024, 3, 1, 9, 0));
    /* The missed entries went with the completion. */
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_TASK_MISSED);
    tw_key_id(&prefix, &fx_alice);
    tw_store_iter *it;
    ck_assert_int_eq(tw_store_scan(fx.store, &prefix, NULL, 0, false, &it), TW_OK);
    ck_assert(!tw_store_iter_next(it));
    ck_assert_int_eq(tw_store_iter_close(it), TW_OK);
}
END_TEST

START_TEST(series_end_with_count_and_restart_from_completion)
{
    Tw__V1__Task *t = tf_task("Twice");
    t->due = tf_due_time(NY, 2024, 6, 3, 9, 0);
    t->recurrence = tf_rrule("FREQ=DAILY;COUNT=2");
    tw_task_record *rec = tf_create_ok(t);
    tw_id id = tf_id(rec);
    tf_set_now(tf_at(NY, 2024, 6, 3, 9, 5));
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, NULL), TW_OK);
    ck_assert_int_eq(rec->task->status, TW__V1__TASK_STATUS__TASK_STATUS_TODO);
    tf_set_now(tf_at(NY, 2024, 6, 4, 9, 5));
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, NULL), TW_OK);
    ck_assert_int_eq(rec->task->status, TW__V1__TASK_STATUS__TASK_STATUS_DONE);

    /* Every 3 days after it was done, at the first due's 09:00. */
    t = tf_task("Water the cactus");
    t->due = tf_due_time(NY, 2024, 3, 1, 9, 0);
    t->recurrence = tf_rrule("FREQ=DAILY;INTERVAL=3;COUNT=3");
    t->recurrence->repeat_from_completion = true;
    rec = tf_create_ok(t);
    id = tf_id(rec);
    tf_set_now(tf_at(NY, 2024, 3, 10, 18, 0));
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, NULL), TW_OK);
    ck_assert_int_eq(due_ms(rec), tf_at(NY, 2024, 3, 13, 9, 0));
    tf_set_now(tf_at(NY, 2024, 3, 12, 7, 0)); /* early: counted from the 12th */
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, NULL), TW_OK);
    ck_assert_int_eq(due_ms(rec), tf_at(NY, 2024, 3, 15, 9, 0));
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, NULL), TW_OK);
    ck_assert_int_eq(rec->task->status, TW__V1__TASK_STATUS__TASK_STATUS_DONE); /* COUNT=3 */
}
END_TEST

START_TEST(late_within_grace_counts_for_yesterday)
{
    Tw__V1__Task *t = tf_task("Evening walk");
    t->due = tf_due_time(NY, 2024, 6, 3, 20, 0);
    t->recurrence = tf_rrule("FREQ=DAILY");
    tw_task_record *rec = tf_create_ok(t);
    tw_id id = tf_id(rec);
    tw_completion_record *done;
    tf_set_now(tf_at(NY, 2024, 6, 4, 1, 30));
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, &done), TW_OK);
    ck_assert(done->completion->on_time);
    ck_assert_int_eq(done->completion->credited_date->day, 3);
    ck_assert_int_eq(done->completion->skipped_occurrence_count, 0);
    ck_assert_int_eq(due_ms(rec), tf_at(NY, 2024, 6, 4, 20, 0));
}
END_TEST

/* A recurrence excluding the given days (1-4 of them). */
static Tw__V1__TaskRecurrence *rrule_except(const char *rrule, const int32_t *days, size_t n)
{
    static Tw__V1__CalendarDate *dates[4];
    Tw__V1__TaskRecurrence *r = tf_rrule(rrule);
    for (size_t i = 0; i < n; i++)
        dates[i] = tw_calendar_date_new(fx.arena, days[i]);
    r->exception_dates = dates;
    r->n_exception_dates = n;
    return r;
}

/* Issue 16: an EXDATE on the due removes that occurrence: the due moves to
 * the next one not excluded, and COUNT still counts from the due given
 * (DTSTART), as RFC 5545 and dateutil's rruleset count. */
START_TEST(an_exception_on_the_due_moves_it_to_the_next_occurrence)
{
    int32_t jun3 = tw_date_to_day(2024, 6, 3);
    Tw__V1__Task *t = tf_task("Swim");
    t->due = tf_due_time(NY, 2024, 6, 3, 9, 0);
    t->recurrence = rrule_except("FREQ=DAILY", (int32_t[]){jun3, jun3 + 1}, 2);
    tw_task_record *rec = tf_create_ok(t);
    ck_assert_int_eq(due_ms(rec), tf_at(NY, 2024, 6, 5, 9, 0));

    t = tf_task("Swim twice");
    t->due = tf_due_date(NY, 2024, 6, 3);
    t->recurrence = rrule_except("FREQ=DAILY;COUNT=2", &jun3, 1);
    rec = tf_create_ok(t);
    tw_id id = tf_id(rec);
    ck_assert_int_eq(tw_calendar_date_day(rec->task->due->date), jun3 + 1);
    tf_set_now(tf_at(NY, 2024, 6, 4, 12, 0));
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, NULL), TW_OK);
    ck_assert_int_eq(rec->task->status, TW__V1__TASK_STATUS__TASK_STATUS_DONE);

    /* Excluding every occurrence is refused, and nothing is written. */
    uint64_t end = tf_log_end();
    t = tf_task("Never");
    t->due = tf_due_date(NY, 2024, 6, 3);
    t->recurrence = rrule_except("FREQ=DAILY;COUNT=1", &jun3, 1);
    ck_assert_int_eq(tf_create(t, &rec), TW_ERR_VALIDATION);
    ck_assert_str_eq(tf_violation_field(), "task.recurrence.exception_dates");
    ck_assert_uint_eq(tf_log_end(), end);

    /* An update excluding the current due moves it too. */
    t = tf_task("Read");
    t->due = tf_due_time(NY, 2024, 6, 3, 21, 0);
    t->recurrence = tf_rrule("FREQ=WEEKLY");
    rec = tf_create_ok(t);
    id = tf_id(rec);
    Tw__V1__Task *values = tf_task("Read");
    values->recurrence = rrule_except("FREQ=WEEKLY", &jun3, 1);
    ck_assert_int_eq(tf_update(&id, values, TW_TF_RECURRENCE, NULL, &rec), TW_OK);
    ck_assert_int_eq(due_ms(rec), tf_at(NY, 2024, 6, 10, 21, 0));
    ck_assert_int_eq(due_ms(tf_get(&id)), tf_at(NY, 2024, 6, 10, 21, 0));
}
END_TEST

/* Issue 16: one grace rule for all-day and timed habits. A completion in
 * the first 6 hours of the logical day, while yesterday's occurrence is
 * open, completes yesterday's, on time; today's has not come yet. */
START_TEST(grace_is_the_same_for_all_day_and_timed_habits)
{
    tw_completion_record *done;
    /* All day, due 2 December, done at 05:00 on the 3rd. */
    Tw__V1__Task *t = tf_task("Meditate");
    t->due = tf_due_date(NY, 2026, 12, 2);
    t->recurrence = tf_rrule("FREQ=DAILY");
    tw_task_record *rec = tf_create_ok(t);
    tw_id id = tf_id(rec);
    tf_set_now(tf_at(NY, 2026, 12, 3, 5, 0));
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, &done), TW_OK);
    ck_assert(done->completion->on_time);
    ck_assert_int_eq(done->completion->skipped_occurrence_count, 0);
    ck_assert_int_eq(done->completion->occurrence_due->date->day, 2);
    ck_assert_int_eq(done->completion->credited_date->day, 2);
    ck_assert_int_eq(rec->task->due->date->day, 3);
    /* Done again at once: the 3rd's, early, counted on the 3rd. */
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, &done), TW_OK);
    ck_assert(done->completion->on_time);
    ck_assert_int_eq(done->completion->occurrence_due->date->day, 3);
    ck_assert_int_eq(done->completion->credited_date->day, 3);
    ck_assert_int_eq(rec->task->due->date->day, 4);
    /* After the grace window the day's own occurrence has come: the 4th
     * done at 06:00 on the 5th is the 5th's, and the 4th is missed. */
    tf_set_now(tf_at(NY, 2026, 12, 5, 6, 0));
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, &done), TW_OK);
    ck_assert_int_eq(done->completion->skipped_occurrence_count, 1);
    ck_assert_int_eq(done->completion->occurrence_due->date->day, 5);
    ck_assert_int_eq(done->completion->credited_date->day, 5);

    /* Timed, daily at 01:00: done at 05:00 on the 3rd with the 2nd's
     * open is the 2nd's, although the 3rd's 01:00 has passed. */
    t = tf_task("Night pill");
    t->due = tf_due_time(NY, 2026, 12, 2, 1, 0);
    t->recurrence = tf_rrule("FREQ=DAILY");
    tf_set_now(tf_at(NY, 2026, 12, 1, 12, 0));
    rec = tf_create_ok(t);
    id = tf_id(rec);
    tf_set_now(tf_at(NY, 2026, 12, 3, 5, 0));
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, &done), TW_OK);
    ck_assert(done->completion->on_time);
    ck_assert_int_eq(done->completion->skipped_occurrence_count, 0);
    ck_assert_int_eq(done->completion->credited_date->day, 2);
    ck_assert_int_eq(due_ms(rec), tf_at(NY, 2026, 12, 3, 1, 0));
    /* Again: the 3rd's 01:00, on its day. */
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, &rec, &done), TW_OK);
    ck_assert(done->completion->on_time);
    ck_assert_int_eq(done->completion->credited_date->day, 3);
    ck_assert_int_eq(due_ms(rec), tf_at(NY, 2026, 12, 4, 1, 0));
}
END_TEST

START_TEST(moves_reorder_and_reparent)
{
    tw_task_record *a = tf_create_ok(tf_task("A")), *b = tf_create_ok(tf_task("B")),
                   *c = tf_create_ok(tf_task("C")), *moved;
    tw_id ida = tf_id(a), idb = tf_id(b), idc = tf_id(c);
    /* C right after A: between A and B. */
    ck_assert_int_eq(tf_move(&idc, "", a->task->id, &moved), TW_OK);
    ck_assert_int_gt(strcmp(moved->task->order_key, a->task->order_key), 0);
    ck_assert_int_lt(strcmp(moved->task->order_key, b->task->order_key), 0);
    /* B first. */
    ck_assert_int_eq(tf_move(&idb, "", "", &moved), TW_OK);
    ck_assert_int_lt(strcmp(moved->task->order_key, a->task->order_key), 0);
    /* A under B, then B under A would be a cycle. */
    ck_assert_int_eq(tf_move(&ida, b->task->id, "", &moved), TW_OK);
    ck_assert_str_eq(moved->task->parent_id, b->task->id);
    uint64_t end = tf_log_end();
    ck_assert_int_eq(tf_move(&idb, a->task->id, "", &moved), TW_ERR_VALIDATION);
    ck_assert_str_eq(tf_violation_field(), "parent_id");
    /* C is not a child of B: no place after it there. */
    ck_assert_int_eq(tf_move(&ida, b->task->id, c->task->id, &moved), TW_ERR_VALIDATION);
    ck_assert_str_eq(tf_violation_field(), "after_id");
    ck_assert_int_eq(tf_log_end(), end);
}
END_TEST

START_TEST(focus_time_adds_up)
{
    tw_task_record *rec = tf_create_ok(tf_task("Deep work"));
    tw_id id = tf_id(rec);
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_task_op_add_focus(t, &tf_env, &id, 25 * 60000), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_task_op_add_focus(t, &tf_env, &id, 5 * 60000), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    ck_assert_int_eq(tf_get(&id)->task->tracked_focus_duration->seconds, 30 * 60);
    /* Milliseconds are kept; time taken back never goes below zero. */
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_task_op_add_focus(t, &tf_env, &id, -1500), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    const Google__Protobuf__Duration *d = tf_get(&id)->task->tracked_focus_duration;
    ck_assert(d->seconds == 30 * 60 - 2 && d->nanos == 500000000);
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_task_op_add_focus(t, &tf_env, &id, -31 * 60000), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    d = tf_get(&id)->task->tracked_focus_duration;
    ck_assert(d->seconds == 0 && d->nanos == 0);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("task_ops");
    TCase *tc = tcase_create("task_ops");
    tcase_add_checked_fixture(tc, tf_setup, tf_teardown);
    tcase_add_test(tc, creates_with_defaults);
    tcase_add_test(tc, client_ids_are_kept_and_never_reused);
    tcase_add_test(tc, parents_must_exist_and_nesting_is_bounded);
    tcase_add_test(tc, bad_input_writes_nothing);
    tcase_add_test(tc, dues_without_a_zone_take_the_users);
    tcase_add_test(tc, updates_check_etags_and_status);
    tcase_add_test(tc, merges_settle_fields_edited_on_both_sides_by_edit_time);
    tcase_add_test(tc, deletes_need_force_for_subtasks);
    tcase_add_test(tc, one_off_tasks_complete_and_reopen);
    tcase_add_test(tc, daily_tasks_stay_at_nine_across_daylight_saving);
    tcase_add_test(tc, missed_occurrences_are_skipped_and_restored_by_reopen);
    tcase_add_test(tc, series_end_with_count_and_restart_from_completion);
    tcase_add_test(tc, late_within_grace_counts_for_yesterday);
    tcase_add_test(tc, grace_is_the_same_for_all_day_and_timed_habits);
    tcase_add_test(tc, an_exception_on_the_due_moves_it_to_the_next_occurrence);
    tcase_add_test(tc, moves_reorder_and_reparent);
    tcase_add_test(tc, focus_time_adds_up);
    suite_add_tcase(s, tc);
    return s;
}
