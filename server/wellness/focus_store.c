/*
 * Focus sessions and templates in the store.
 *
 * A session is FOCUS_SESSION(user, id), indexed by FOCUS_SESSION_BY_START
 * (user, start or creation time, id). FOCUS_ACTIVE(user) names the user's
 * session in progress: every start reads it for update, so of two starts
 * racing, one commits and the other, retried, finds the first one running.
 * Each change to a session in progress enqueues a "focus_abandon" job due
 * when the inactivity limit would pass; the job does nothing if the session
 * has changed since. Ending a session counts it (counters "focus_sessions"
 * and "focus_focused_seconds", dims "template=<built-in name or custom>,
 * outcome=<completed|abandoned>"); distractions count as
 * "focus_distractions", dims "type=<name>". A session's task must be one of
 * the user's tasks when the session is made; a completed session's focus
 * is added to that task's tracked focus time (tasks/task_ops.h). Writes append "focus_session" or
 * "focus_template" changes (and "task", when a task is credited).
 */
#include "focus.h"

#include "tasks/task_ops.h"
#include "tw_changelog.h"
#include "tw_counter.h"
#include "tw_jobs.h"
#include "tw_page.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_CHANGE  "focus_session"
#define TEMPLATE_CHANGE "focus_template"

#define PLANNED_MIN_MS  TW_MS_PER_MIN
#define PLANNED_MAX_MS  (12 * TW_MS_PER_HOUR)
#define TAGS_MAX        20
#define TAG_MAX_CHARS   50
#define NOTE_MAX_CHARS  500
#define ABANDON_PAYLOAD (2 * TW_ID_BYTES + 4)
/* Sessions decoded per scratch arena while collecting statistics. */
#define STATS_SCRATCH_SESSIONS 256

static const char *const distraction_names[TW_FOCUS_DISTRACTION_TYPE_COUNT] = {
    "unspecified", "internal", "external", "phone", "people", "noise", "other",
};

/* ---- Keys ------------------------------------------------------------------- */

static void session_key(tw_key *k, const tw_id *user, const tw_id *id)
{
    tw_key_init(k, TW_KF_FOCUS_SESSION);
    tw_key_id(k, user);
    tw_key_id(k, id);
}

static void start_key(tw_key *k, const tw_id *user, int64_t ms, const tw_id *id)
{
    tw_key_init(k, TW_KF_FOCUS_SESSION_BY_START);
    tw_key_id(k, user);
    tw_key_i64(k, ms);
    tw_key_id(k, id);
}

static void active_key(tw_key *k, const tw_id *user)
{
    tw_key_init(k, TW_KF_FOCUS_ACTIVE);
    tw_key_id(k, user);
}

static void template_key(tw_key *k, const tw_id *user, const tw_id *id)
{
    tw_key_init(k, TW_KF_FOCUS_TEMPLATE);
    tw_key_id(k, user);
    if (id != NULL)
        tw_key_id(k, id);
}

/* ---- Sessions: reading and writing ---------------------------------------------- */

static tw_err refuse(tw_focus_refusal *why, tw_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static tw_err refuse(tw_focus_refusal *why, tw_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->message, sizeof why->message, fmt, ap);
    va_end(ap);
    return err;
}

/* The time a session is listed under: when it started, or was created. */
static int64_t index_ms(const Tw__V1__FocusSession *s)
{
    int64_t ms = 0;
    if (s->start_time != NULL)
        tw_timestamp_to_ms(s->start_time, &ms);
    else if (s->create_time != NULL)
        tw_timestamp_to_ms(s->create_time, &ms);
    return ms;
}

/* Reads session id_text of user: for update in t, or committed when t is
 * NULL (then from s). */
static tw_err load_session(tw_store *store, tw_txn *t, const tw_id *user, const char *field,
                           const char *id_text, tw_arena *arena, tw_focus_refusal *why, tw_id *id,
                           Tw__V1__FocusSession **out)
{
    tw_err err = tw_check_id(&why->bad, "", field, id_text, id);
    if (err)
        return err;
    tw_key k;
    session_key(&k, user, id);
    tw_value v;
    err = t ? tw_txn_get_for_update(t, &k, arena, &v) : tw_store_get(store, &k, arena, &v);
    if (err == TW_ERR_NOT_FOUND)
        return refuse(why, err, "focus session %s not found", id_text);
    *out = err ? NULL : (Tw__V1__FocusSession *)v.msg;
    return err;
}

/* Writes s (its update time now), moving its index key from old_index_ms
 * (INT64_MIN for a new session), and appends the change. */
static tw_err save_session(tw_txn *t, const tw_id *user, const tw_id *id, Tw__V1__FocusSession *s,
                           int64_t old_index_ms, int64_t now_ms, tw_arena *arena)
{
    /* Stored with its focused time and break as of its last change, exact
     * for every state but RUNNING (which readers bring up to their clock,
     * tw_focus_present), so that a stored session says what it is to sync. */
    tw_err err = tw_focus_present(s, tw_focus_last_change_ms(s), arena);
    if (err || (s->update_time = tw_timestamp_new(arena, now_ms)) == NULL)
        return err ? err : TW_ERR_NO_MEMORY;
    tw_key k;
    session_key(&k, user, id);
    err = tw_txn_put(t, &k, &(tw_value){.msg = &s->base});
    int64_t new_index_ms = index_ms(s);
    if (!err && old_index_ms != new_index_ms) {
        if (old_index_ms != INT64_MIN) {
            start_key(&k, user, old_index_ms, id);
            err = tw_txn_delete(t, &k);
        }
        start_key(&k, user, new_index_ms, id);
        if (!err)
            err = tw_txn_put(t, &k, NULL);
    }
    return err ? err : tw_txn_changelog_append(t, user, SESSION_CHANGE, id, TW_CHANGE_UPSERT, NULL);
}

/* When an event happens: event_time (not ahead of the clock by more than
 * the skew, not before the last change), or now (never before the last
 * change). */
static tw_err event_at(const Google__Protobuf__Timestamp *event_time, const char *field,
                       int64_t last_change_ms, const tw_focus_env *env, tw_focus_refusal *why,
                       int64_t *at)
{
    if (event_time == NULL) {
        *at = env->now_ms > last_change_ms ? env->now_ms : last_change_ms;
        return TW_OK;
    }
    if (!tw_timestamp_to_ms(event_time, at) || *at < 0)
        return tw_bad(&why->bad, "", field, "must be a valid timestamp after 1970-01-01");
    if (*at > env->now_ms + TW_FOCUS_CLOCK_SKEW_MS)
        return tw_bad(&why->bad, "", field, "is more than a minute ahead of the server's clock");
    if (*at < last_change_ms)
        return tw_bad(&why->bad, "", field, "is before the session's last change");
    return TW_OK;
}

/* Enqueues the job that abandons s if it is left as it is now. */
static tw_err enqueue_abandon(tw_txn *t, const tw_id *user, const tw_id *id,
                              const Tw__V1__FocusSession *s, const tw_focus_env *env,
                              bool *job_enqueued)
{
    uint8_t payload[ABANDON_PAYLOAD];
    memcpy(payload, user->bytes, TW_ID_BYTES);
    memcpy(payload + TW_ID_BYTES, id->bytes, TW_ID_BYTES);
    uint32_t changes = (uint32_t)s->n_state_changes;
    for (int i = 0; i < 4; i++)
        payload[2 * TW_ID_BYTES + i] = (uint8_t)(changes >> (24 - 8 * i));
    int64_t delay = tw_focus_last_change_ms(s) + env->abandon_after_ms - env->now_ms;
    tw_job_options opts = {.delay_ms = delay > 0 ? delay : 0};
    tw_err err = tw_txn_job_enqueue(t, TW_FOCUS_ABANDON_JOB, payload, sizeof payload, &opts, NULL);
    if (err == TW_OK && job_enqueued != NULL)
        *job_enqueued = true;
    return err;
}

/*
 * The linked task's share of a completed session: its focused time, added
 * to the task's tracked focus time (a new task version and "task" change)
 * in the session's transaction; a task deleted since the session was made
 * gets nothing. The one place a session reaches its task.
 */
static tw_err credit_task(tw_txn *t, const tw_id *user, const char *task_id, int64_t focused_ms,
                          int64_t now_ms, tw_arena *arena)
{
    tw_id task;
    if (task_id[0] == '\0' || !tw_id_parse(task_id, &task))
        return TW_OK;
    tw_task_env task_env = {.user = *user, .arena = arena, .now_ms = now_ms};
    tw_err err = tw_task_op_add_focus(t, &task_env, &task, focused_ms);
    return err == TW_ERR_NOT_FOUND ? TW_OK : err;
}

/* What ending session s does besides its state: the active marker goes,
 * the outcome is counted, a completed session credits its task. */
static tw_err end_effects(tw_txn *t, const tw_id *user, const tw_id *id,
                          const Tw__V1__FocusSession *s, const tw_focus_env *env, tw_arena *arena)
{
    tw_key k;
    tw_value v;
    active_key(&k, user);
    tw_err err = tw_txn_get_for_update(t, &k, arena, &v);
    if (err == TW_OK && memcmp(v.id.bytes, id->bytes, TW_ID_BYTES) == 0)
        err = tw_txn_delete(t, &k);
    else if (err == TW_ERR_NOT_FOUND)
        err = TW_OK;
    if (err)
        return err;
    int64_t focused = tw_focus_focused_ms(s, tw_focus_last_change_ms(s));
    bool completed = s->state == TW_FOCUS_COMPLETED;
    char dims[128];
    snprintf(dims, sizeof dims, "template=%s,outcome=%s",
             tw_focus_builtin_find(s->template_id) ? s->template_id : "custom",
             completed ? "completed" : "abandoned");
    uint32_t day = tw_store_day(env->now_ms);
    if ((err = tw_txn_counter_add(t, &(tw_counter){NULL, "focus_sessions", dims}, day, 1)) ||
        (err = tw_txn_counter_add(t, &(tw_counter){NULL, "focus_focused_seconds", dims}, day,
                                  focused / TW_MS_PER_S)))
        return err;
    return completed ? credit_task(t, user, s->task_id, focused, env->now_ms, arena) : TW_OK;
}

/* Appends the first state change of a session made now. */
static tw_err set_planned(Tw__V1__FocusSession *s, int64_t at_ms, tw_arena *arena)
{
    Tw__V1__FocusStateChange **changes = tw_arena_alloc(arena, sizeof *changes);
    Tw__V1__FocusStateChange *c = tw_arena_alloc(arena, sizeof *c);
    if (changes == NULL || c == NULL)
        return TW_ERR_NO_MEMORY;
    tw__v1__focus_state_change__init(c);
    c->state = TW_FOCUS_PLANNED;
    if ((c->change_time = tw_timestamp_new(arena, at_ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    changes[0] = c;
    s->state_changes = changes;
    s->n_state_changes = 1;
    s->state = TW_FOCUS_PLANNED;
    return TW_OK;
}

/* ---- Sessions: making one ------------------------------------------------------------ */

/* The template a new session runs by: a built-in one, or the user's. */
static tw_err resolve_template(tw_txn *t, const tw_id *user, const char *template_id,
                               tw_arena *arena, tw_focus_refusal *why, Tw__V1__FocusTemplate **out)
{
    if (template_id[0] == '\0')
        return tw_bad(&why->bad, "", "template_id", "is required");
    const Tw__V1__FocusTemplate *builtin = tw_focus_builtin_find(template_id);
    if (builtin != NULL) {
        *out = (Tw__V1__FocusTemplate *)builtin;
        return TW_OK;
    }
    tw_id id;
    if (!tw_id_parse(template_id, &id))
        return tw_bad(&why->bad, "", "template_id",
                      "must be a built-in template (pomodoro, flowtime, fifty_ten, countdown) "
                      "or a template id");
    tw_key k;
    template_key(&k, user, &id);
    tw_value v;
    tw_err err = tw_txn_get(t, &k, arena, &v);
    if (err == TW_ERR_NOT_FOUND)
        return refuse(why, err, "focus template %s not found", template_id);
    *out = err ? NULL : (Tw__V1__FocusTemplate *)v.msg;
    return err;
}

/* Checks what a new session is made of and makes it (no state yet). When
 * its request id names a session already stored, *existing gets that one
 * instead. */
static tw_err make_session(tw_txn *t, const tw_id *user, const tw_focus_new *n,
                           const tw_focus_env *env, tw_arena *arena, tw_focus_refusal *why,
                           tw_id *id, Tw__V1__FocusSession **out, Tw__V1__FocusSession **existing)
{
    *existing = NULL;
    tw_err err;
    if (n->request_id[0] != '\0') {
        if ((err = tw_check_id(&why->bad, "", "request_id", n->request_id, id)))
            return err;
        err = load_session(NULL, t, user, "request_id", n->request_id, arena, why, id, existing);
        if (err != TW_ERR_NOT_FOUND)
            return err;
        why->message[0] = '\0';
    } else {
        *id = tw_id_new();
    }
    Tw__V1__FocusTemplate *tmpl;
    if ((err = resolve_template(t, user, n->template_id, arena, why, &tmpl)))
        return err;
    if (n->task_id[0] != '\0') {
        /* One of the user's tasks (another user's is as unknown). */
        tw_id task;
        tw_task_record *rec;
        if (!tw_id_parse(n->task_id, &task))
            return tw_bad(&why->bad, "", "task_id", "must be a UUID");
        if ((err = tw_task_get(NULL, t, user, &task, arena, &rec)) == TW_ERR_NOT_FOUND)
            return refuse(why, err, "task %s not found", n->task_id);
        if (err)
            return err;
    }
    int64_t planned = 0;
    const Google__Protobuf__Duration *planned_in = n->planned_duration;
    if (planned_in != NULL) {
        if (!tw_duration_to_ms(planned_in, &planned) || planned < PLANNED_MIN_MS ||
            planned > PLANNED_MAX_MS)
            return tw_bad(&why->bad, "", "planned_duration",
                          "must be between 1 minute and 12 hours");
    } else if (tmpl->focus_duration != NULL) {
        tw_duration_to_ms(tmpl->focus_duration, &planned);
    }
    if ((err = tw_check_labels(&why->bad, "", "tags", n->tags, n->n_tags, TAGS_MAX, TAG_MAX_CHARS)))
        return err;

    Tw__V1__FocusSession *s = tw_arena_alloc(arena, sizeof *s);
    char *id_text = tw_arena_alloc(arena, TW_ID_TEXT_SIZE);
    if (s == NULL || id_text == NULL)
        return TW_ERR_NO_MEMORY;
    tw__v1__focus_session__init(s);
    tw_id_format(id, id_text);
    s->id = id_text;
    s->template_id = (char *)n->template_id;
    s->template_ = tmpl;
    s->task_id = (char *)n->task_id;
    if (planned > 0 && (s->planned_duration = tw_duration_new(arena, planned)) == NULL)
        return TW_ERR_NO_MEMORY;
    s->tags = (char **)n->tags;
    s->n_tags = n->n_tags;
    if ((s->create_time = tw_timestamp_new(arena, env->now_ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    *out = s;
    return TW_OK;
}

tw_err tw_focus_create(tw_txn *t, const tw_id *user, const tw_focus_new *n, const tw_focus_env *env,
                       tw_arena *arena, tw_focus_refusal *why, Tw__V1__FocusSession **out)
{
    tw_id id;
    Tw__V1__FocusSession *s, *existing;
    tw_err err = make_session(t, user, n, env, arena, why, &id, &s, &existing);
    if (err || existing != NULL) {
        *out = existing;
        return err;
    }
    if ((err = set_planned(s, env->now_ms, arena)))
        return err;
    *out = s;
    return save_session(t, user, &id, s, INT64_MIN, env->now_ms, arena);
}

/* Makes session id the user's active one, unless another is in progress. */
static tw_err claim_active(tw_txn *t, const tw_id *user, const tw_id *id, tw_arena *arena,
                           tw_focus_refusal *why)
{
    tw_key k;
    tw_value v;
    active_key(&k, user);
    tw_err err = tw_txn_get_for_update(t, &k, arena, &v);
    if (err == TW_OK && memcmp(v.id.bytes, id->bytes, TW_ID_BYTES) != 0) {
        char other_text[TW_ID_TEXT_SIZE];
        tw_id_format(&v.id, other_text);
        tw_id other_id;
        Tw__V1__FocusSession *other;
        err = load_session(NULL, t, user, "session_id", other_text, arena, why, &other_id, &other);
        if (err == TW_OK && tw_focus_state_active(other->state)) {
            snprintf(why->message, sizeof why->message,
                     "focus session %s is already %s: complete or abandon it first", other_text,
                     tw_focus_state_name(other->state));
            return TW_ERR_FAILED_PRECONDITION;
        }
        if (err && err != TW_ERR_NOT_FOUND)
            return err;
        why->message[0] = '\0';
    } else if (err && err != TW_ERR_NOT_FOUND) {
        return err;
    }
    return tw_txn_put(t, &k, &(tw_value){.id = *id});
}

tw_err tw_focus_start(tw_txn *t, const tw_id *user, const char *session_id, const tw_focus_new *n,
                      const Google__Protobuf__Timestamp *event_time, const tw_focus_env *env,
                      tw_arena *arena, tw_focus_refusal *why, Tw__V1__FocusSession **out,
                      bool *job_enqueued)
{
    *out = NULL;
    tw_id id;
    Tw__V1__FocusSession *s;
    int64_t old_index = INT64_MIN, last_change = INT64_MIN;
    tw_err err;
    if (session_id[0] != '\0') {
        const char *extra = n->template_id[0]     ? "template_id"
                            : n->task_id[0]       ? "task_id"
                            : n->planned_duration ? "planned_duration"
                            : n->n_tags           ? "tags"
                            : n->request_id[0]    ? "request_id"
                                                  : NULL;
        if (extra != NULL)
            return tw_bad(&why->bad, "", extra,
                          "is for a new session: leave it empty with "
                          "session_id");
        if ((err = load_session(NULL, t, user, "session_id", session_id, arena, why, &id, &s)))
            return err;
        old_index = index_ms(s);
        last_change = tw_focus_last_change_ms(s);
    } else {
        Tw__V1__FocusSession *existing;
        if ((err = make_session(t, user, n, env, arena, why, &id, &s, &existing)))
            return err;
        if (existing != NULL) { /* a retry: the session it started */
            *out = existing;
            return TW_OK;
        }
        s->state = TW_FOCUS_PLANNED; /* never stored so: it starts at once */
    }
    int64_t at;
    if ((err = event_at(event_time, "event_time", last_change, env, why, &at)) ||
        (err = tw_focus_apply(s, TW_FOCUS_START, at, arena, why->message, sizeof why->message)) ||
        (err = claim_active(t, user, &id, arena, why)) ||
        (err = save_session(t, user, &id, s, old_index, env->now_ms, arena)) ||
        (err = enqueue_abandon(t, user, &id, s, env, job_enqueued)))
        return err;
    *out = s;
    return TW_OK;
}

tw_err tw_focus_transition(tw_txn *t, const tw_id *user, const char *session_id, tw_focus_event ev,
                           const Google__Protobuf__Timestamp *event_time, const tw_focus_env *env,
                           tw_arena *arena, tw_focus_refusal *why, Tw__V1__FocusSession **out,
                           bool *job_enqueued)
{
    *out = NULL;
    tw_id id;
    Tw__V1__FocusSession *s;
    tw_err err = load_session(NULL, t, user, "session_id", session_id, arena, why, &id, &s);
    if (err)
        return err;
    int64_t old_index = index_ms(s), at;
    if ((err = event_at(event_time, "event_time", tw_focus_last_change_ms(s), env, why, &at)) ||
        (err = tw_focus_apply(s, ev, at, arena, why->message, sizeof why->message)))
        return err;
    err = tw_focus_state_final(s->state) ? end_effects(t, user, &id, s, env, arena)
                                         : enqueue_abandon(t, user, &id, s, env, job_enqueued);
    if (err || (err = save_session(t, user, &id, s, old_index, env->now_ms, arena)))
        return err;
    *out = s;
    return TW_OK;
}

tw_err tw_focus_distract(tw_txn *t, const tw_id *user, const char *session_id,
                         const Tw__V1__FocusDistraction *d, const tw_focus_env *env,
                         tw_arena *arena, tw_focus_refusal *why, Tw__V1__FocusSession **out)
{
    *out = NULL;
    if (d == NULL)
        return tw_bad(&why->bad, "", "distraction", "is required");
    if ((int)d->type <= 0 || (int)d->type >= TW_FOCUS_DISTRACTION_TYPE_COUNT)
        return tw_bad(&why->bad, "", "distraction.type",
                      d->type == 0 ? "is required" : "is unknown");
    tw_err err = tw_check_text(&why->bad, "", "distraction.note", d->note, NOTE_MAX_CHARS, false);
    tw_id id;
    Tw__V1__FocusSession *s;
    if (err || (err = load_session(NULL, t, user, "session_id", session_id, arena, why, &id, &s)) ||
        (err = tw_focus_apply(s, TW_FOCUS_DISTRACT, 0, arena, why->message, sizeof why->message)))
        return err;
    if (s->n_distractions >= TW_FOCUS_DISTRACTIONS_MAX) {
        snprintf(why->message, sizeof why->message,
                 "the session has %d distractions, the most it may have",
                 TW_FOCUS_DISTRACTIONS_MAX);
        return TW_ERR_FAILED_PRECONDITION;
    }
    int64_t started = 0, at;
    tw_timestamp_to_ms(s->start_time, &started);
    if (d->occur_time == NULL) {
        at = env->now_ms > started ? env->now_ms : started;
    } else if (!tw_timestamp_to_ms(d->occur_time, &at)) {
        return tw_bad(&why->bad, "", "distraction.occur_time", "is not a valid timestamp");
    } else if (at < started) {
        return tw_bad(&why->bad, "", "distraction.occur_time", "is before the session started");
    } else if (at > env->now_ms + TW_FOCUS_CLOCK_SKEW_MS) {
        return tw_bad(&why->bad, "", "distraction.occur_time",
                      "is more than a minute ahead of the server's clock");
    }
    Tw__V1__FocusDistraction **list = tw_arena_alloc(arena, (s->n_distractions + 1) * sizeof *list);
    Tw__V1__FocusDistraction *copy = tw_arena_alloc(arena, sizeof *copy);
    if (list == NULL || copy == NULL)
        return TW_ERR_NO_MEMORY;
    if (s->n_distractions > 0)
        memcpy(list, s->distractions, s->n_distractions * sizeof *list);
    *copy = *d;
    if ((copy->occur_time = tw_timestamp_new(arena, at)) == NULL)
        return TW_ERR_NO_MEMORY;
    list[s->n_distractions] = copy;
    s->distractions = list;
    s->n_distractions++;
    char dims[32];
    snprintf(dims, sizeof dims, "type=%s", distraction_names[d->type]);
    if ((err = tw_txn_counter_add(t, &(tw_counter){NULL, "focus_distractions", dims},
                                  tw_store_day(env->now_ms), 1)) ||
        (err = save_session(t, user, &id, s, index_ms(s), env->now_ms, arena)))
        return err;
    *out = s;
    return TW_OK;
}

tw_err tw_focus_get(tw_store *s, const tw_id *user, const char *session_id, tw_arena *arena,
                    tw_focus_refusal *why, Tw__V1__FocusSession **out)
{
    tw_id id;
    return load_session(s, NULL, user, "id", session_id, arena, why, &id, out);
}

/* ---- Lists and statistics ------------------------------------------------------------- */

struct list_ctx {
    tw_store *store;
    const tw_id *user;
    int state;
    tw_arena *arena;
    Tw__V1__FocusSession **sessions;
    size_t count;
};

static tw_err get_by_id(tw_store *store, const tw_id *user, const tw_id *id, tw_arena *arena,
                        Tw__V1__FocusSession **out)
{
    tw_key k;
    session_key(&k, user, id);
    tw_value v;
    tw_err err = tw_store_get(store, &k, arena, &v);
    *out = err ? NULL : (Tw__V1__FocusSession *)v.msg;
    return err;
}

static tw_err list_item(void *ctx, int64_t time_ms, const tw_id *id, tw_store_iter *it, bool *taken)
{
    struct list_ctx *c = ctx;
    Tw__V1__FocusSession *s;
    tw_err err = get_by_id(c->store, c->user, id, c->arena, &s);
    if (err == TW_ERR_NOT_FOUND) /* changed since the scan began */
        return TW_OK;
    if (err)
        return err;
    if (c->state == 0 || (int)s->state == c->state) {
        c->sessions[c->count++] = s;
        *taken = true;
    }
    return TW_OK;
}

tw_err tw_focus_list(tw_store *s, const tw_id *user, int state, int64_t from_ms, int64_t to_ms,
                     const char *page_token, uint32_t limit, tw_arena *arena,
                     Tw__V1__FocusSession ***sessions, size_t *count, char **next_token)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_FOCUS_SESSION_BY_START);
    tw_key_id(&prefix, user);
    struct list_ctx c = {s, user, state, arena, tw_arena_alloc(arena, (limit + 1) * sizeof(void *)),
                         0};
    if (c.sessions == NULL)
        return TW_ERR_NO_MEMORY;
    int64_t query[3] = {state, from_ms, to_ms};
    tw_err err = tw_index_page(s, user, &prefix, from_ms, to_ms, query, sizeof query, page_token,
                               limit, arena, list_item, &c, next_token);
    *sessions = c.sessions;
    *count = c.count;
    return err;
}

tw_err tw_focus_collect_stats(tw_store *s, const tw_id *user, tw_focus_stats *st, int64_t now_ms,
                              tw_arena *arena)
{
    (void)arena;
    tw_key prefix, after;
    tw_key_init(&prefix, TW_KF_FOCUS_SESSION_BY_START);
    tw_key_id(&prefix, user);
    after = prefix;
    tw_key_i64(&after, st->from_ms - TW_FOCUS_STATS_LOOKBACK_MS);
    tw_store_iter *it;
    tw_err err = tw_store_scan(s, &prefix, after.bytes, after.len, false, &it);
    if (err)
        return err;
    tw_arena *scratch = NULL;
    for (uint32_t n = 0; tw_store_iter_next(it); n++) {
        if (n % STATS_SCRATCH_SESSIONS == 0) {
            tw_arena_free(scratch);
            if ((scratch = tw_arena_new(STATS_SCRATCH_SESSIONS * 512)) == NULL) {
                err = TW_ERR_NO_MEMORY;
                break;
            }
        }
        tw_key_reader r;
        tw_id skip, id;
        int64_t start_ms;
        tw_store_iter_read_key(it, &r);
        tw_key_read_id(&r, &skip);
        tw_key_read_i64(&r, &start_ms);
        tw_key_read_id(&r, &id);
        if (r.err) {
            err = r.err;
            break;
        }
        if (start_ms >= st->to_ms)
            break;
        Tw__V1__FocusSession *session;
        err = get_by_id(s, user, &id, scratch, &session);
        if (err == TW_ERR_NOT_FOUND) {
            err = TW_OK;
            continue;
        }
        if (err || (err = tw_focus_stats_add(st, session, now_ms)))
            break;
    }
    tw_arena_free(scratch);
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}

/* ---- Templates ------------------------------------------------------------------------- */

/* The user's templates (at most TW_FOCUS_USER_TEMPLATES_MAX are kept, so
 * they are read whole), in arena. */
static tw_err user_templates(tw_store *s, const tw_id *user, tw_arena *arena,
                             Tw__V1__FocusTemplate ***out, size_t *count)
{
    *count = 0;
    size_t cap = 16;
    Tw__V1__FocusTemplate **list = tw_arena_alloc(arena, cap * sizeof *list);
    tw_key prefix;
    template_key(&prefix, user, NULL);
    tw_store_iter *it;
    tw_err err = list ? tw_store_scan(s, &prefix, NULL, 0, false, &it) : TW_ERR_NO_MEMORY;
    if (err)
        return err;
    while (tw_store_iter_next(it)) {
        tw_value v;
        if ((err = tw_store_iter_value(it, arena, &v)))
            break;
        if (*count == cap) {
            Tw__V1__FocusTemplate **bigger = tw_arena_alloc(arena, 2 * cap * sizeof *bigger);
            if (bigger == NULL) {
                err = TW_ERR_NO_MEMORY;
                break;
            }
            memcpy(bigger, list, cap * sizeof *list);
            list = bigger;
            cap *= 2;
        }
        list[(*count)++] = (Tw__V1__FocusTemplate *)v.msg;
    }
    tw_err close_err = tw_store_iter_close(it);
    *out = list;
    return err ? err : close_err;
}

tw_err tw_focus_template_create(tw_store *s, tw_txn *t, const tw_id *user,
                                const Tw__V1__FocusTemplate *tmpl, const char *request_id,
                                int64_t now_ms, tw_arena *arena, tw_focus_refusal *why,
                                Tw__V1__FocusTemplate **out)
{
    *out = NULL;
    tw_id id = tw_id_new();
    tw_key k;
    tw_value v;
    tw_err err;
    if (request_id[0] != '\0') {
        if ((err = tw_check_id(&why->bad, "", "request_id", request_id, &id)))
            return err;
        template_key(&k, user, &id);
        err = tw_txn_get_for_update(t, &k, arena, &v);
        if (err == TW_OK) { /* a retry: the template it created */
            *out = (Tw__V1__FocusTemplate *)v.msg;
            return TW_OK;
        }
        if (err != TW_ERR_NOT_FOUND)
            return err;
    }
    Tw__V1__FocusTemplate *prepared;
    if ((err = tw_focus_template_prepare(tmpl, arena, &why->bad, &prepared)))
        return err;
    Tw__V1__FocusTemplate **mine;
    size_t count;
    if ((err = user_templates(s, user, arena, &mine, &count)))
        return err;
    if (count >= TW_FOCUS_USER_TEMPLATES_MAX) {
        snprintf(why->message, sizeof why->message,
                 "there are already %d templates of yours, the most allowed: delete one first",
                 TW_FOCUS_USER_TEMPLATES_MAX);
        return TW_ERR_FAILED_PRECONDITION;
    }
    char *id_text = tw_arena_alloc(arena, TW_ID_TEXT_SIZE);
    if (id_text == NULL || (prepared->create_time = tw_timestamp_new(arena, now_ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw_id_format(&id, id_text);
    prepared->id = id_text;
    template_key(&k, user, &id);
    if ((err = tw_txn_put(t, &k, &(tw_value){.msg = &prepared->base})) ||
        (err = tw_txn_changelog_append(t, user, TEMPLATE_CHANGE, &id, TW_CHANGE_UPSERT, NULL)))
        return err;
    *out = prepared;
    return TW_OK;
}

tw_err tw_focus_template_delete(tw_txn *t, const tw_id *user, const char *id_text, tw_arena *arena,
                                tw_focus_refusal *why)
{
    if (tw_focus_builtin_find(id_text) != NULL)
        return tw_bad(&why->bad, "", "id", "built-in templates cannot be deleted");
    tw_id id;
    tw_err err = tw_check_id(&why->bad, "", "id", id_text, &id);
    if (err)
        return err;
    tw_key k;
    tw_value v;
    template_key(&k, user, &id);
    err = tw_txn_get_for_update(t, &k, arena, &v);
    if (err == TW_ERR_NOT_FOUND)
        return refuse(why, err, "focus template %s not found", id_text);
    if (err || (err = tw_txn_delete(t, &k)))
        return err;
    return tw_txn_changelog_append(t, user, TEMPLATE_CHANGE, &id, TW_CHANGE_TOMBSTONE, NULL);
}

static int cmp_created(const void *a, const void *b)
{
    const Tw__V1__FocusTemplate *x = *(Tw__V1__FocusTemplate *const *)a;
    const Tw__V1__FocusTemplate *y = *(Tw__V1__FocusTemplate *const *)b;
    int64_t xs = 0, ys = 0;
    if (x->create_time != NULL)
        tw_timestamp_to_ms(x->create_time, &xs);
    if (y->create_time != NULL)
        tw_timestamp_to_ms(y->create_time, &ys);
    return xs != ys ? (xs < ys ? -1 : 1) : strcmp(x->id, y->id);
}

tw_err tw_focus_template_list(tw_store *s, const tw_id *user, const char *page_token,
                              uint32_t limit, tw_arena *arena, Tw__V1__FocusTemplate ***templates,
                              size_t *count, char **next_token)
{
    *next_token = "";
    *count = 0;
    /* The list is short, so its page token carries the offset of the next
     * template (4 bytes), bound to the user like any other. */
    uint8_t *cursor;
    size_t cursor_len;
    static const char query[] = "focus templates";
    tw_err err = tw_store_page_token_read(s, user, query, sizeof query, page_token, arena, &cursor,
                                          &cursor_len);
    if (err)
        return err;
    uint32_t offset = 0;
    if (cursor_len == 4)
        offset = (uint32_t)cursor[0] << 24 | (uint32_t)cursor[1] << 16 | (uint32_t)cursor[2] << 8 |
                 cursor[3];
    else if (cursor_len != 0)
        return TW_ERR_BAD_PAGE_TOKEN;
    Tw__V1__FocusTemplate **mine;
    size_t nmine;
    if ((err = user_templates(s, user, arena, &mine, &nmine)))
        return err;
    qsort(mine, nmine, sizeof *mine, cmp_created);
    size_t total = tw_focus_builtin_count() + nmine;
    Tw__V1__FocusTemplate **page = tw_arena_alloc(arena, (limit + 1) * sizeof *page);
    if (page == NULL)
        return TW_ERR_NO_MEMORY;
    size_t i = offset;
    for (; i < total && *count < limit; i++)
        page[(*count)++] = i < tw_focus_builtin_count()
                               ? (Tw__V1__FocusTemplate *)tw_focus_builtin(i)
                               : mine[i - tw_focus_builtin_count()];
    *templates = page;
    if (i < total) {
        uint8_t next[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        return tw_store_page_token_make(s, user, query, sizeof query, next, sizeof next, arena,
                                        next_token);
    }
    return TW_OK;
}

/* ---- The auto-abandon job ----------------------------------------------------------------- */

struct abandon_run {
    const uint8_t *payload;
    const tw_focus_env *env;
    tw_arena *arena;
    bool enqueued;
};

static tw_err abandon_in_txn(tw_txn *t, void *ctx)
{
    struct abandon_run *run = ctx;
    tw_id user, id;
    memcpy(user.bytes, run->payload, TW_ID_BYTES);
    memcpy(id.bytes, run->payload + TW_ID_BYTES, TW_ID_BYTES);
    const uint8_t *c = run->payload + 2 * TW_ID_BYTES;
    uint32_t changes = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
    run->enqueued = false;
    tw_key k;
    session_key(&k, &user, &id);
    tw_value v;
    tw_err err = tw_txn_get_for_update(t, &k, run->arena, &v);
    if (err == TW_ERR_NOT_FOUND)
        return TW_OK;
    if (err)
        return err;
    Tw__V1__FocusSession *s = (Tw__V1__FocusSession *)v.msg;
    if (!tw_focus_state_active(s->state) || s->n_state_changes != changes)
        return TW_OK; /* ended, or changed: a later job watches it */
    int64_t deadline = tw_focus_last_change_ms(s) + run->env->abandon_after_ms;
    if (run->env->now_ms < deadline) /* the limit was raised since */
        return enqueue_abandon(t, &user, &id, s, run->env, &run->enqueued);
    char why[200];
    int64_t old_index = index_ms(s);
    if ((err = tw_focus_apply(s, TW_FOCUS_ABANDON, deadline, run->arena, why, sizeof why)))
        return err;
    s->abandoned_by_server = true;
    if ((err = end_effects(t, &user, &id, s, run->env, run->arena)))
        return err;
    return save_session(t, &user, &id, s, old_index, run->env->now_ms, run->arena);
}

tw_err tw_focus_abandon_due(tw_store *s, const void *payload, size_t len, const tw_focus_env *env,
                            bool *job_enqueued)
{
    *job_enqueued = false;
    if (len != ABANDON_PAYLOAD)
        return TW_ERR_VALIDATION;
    struct abandon_run run = {payload, env, tw_arena_new(4096), false};
    if (run.arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err = tw_txn_run(s, abandon_in_txn, &run);
    *job_enqueued = err == TW_OK && run.enqueued;
    tw_arena_free(run.arena);
    return err;
}
