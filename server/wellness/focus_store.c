/*
 * Focus sessions in the store.
 *
 * A session is FOCUS_SESSION(user, id), a FocusSessionRecord read and
 * written through tw_owned.h, indexed by FOCUS_SESSION_BY_START (user,
 * start or creation time, id). FOCUS_ACTIVE(user) names the user's session
 * in progress: every start reads it for update, so of two starts racing,
 * one commits and the other, retried, finds the first one running. Each
 * change to a session in progress enqueues a "focus_abandon" job due when
 * the inactivity limit would pass; the job does nothing if the session has
 * changed since. Ending a session counts it (counters "focus_sessions" and
 * "focus_focused_seconds", dims "template=<built-in name or custom>,
 * outcome=<completed|abandoned>"); distractions count as
 * "focus_distractions", dims "type=<name>". A session's task must be one of
 * the user's tasks when the session is made; a completed session's focus
 * is added to that task's tracked focus time (tasks/task_ops.h). Writes
 * append "focus_session" changes (and "task", when a task is credited).
 */
#include "focus.h"

#include "tasks/task_fields.h"
#include "tasks/task_ops.h"
#include "tw_changelog.h"
#include "tw_counter.h"
#include "tw_jobs.h"
#include "tw_owned.h"

#include <stdio.h>
#include <string.h>

#define SESSION_CHANGE  "focus_session"
#define PLANNED_MIN_MS  TW_MS_PER_MIN
#define PLANNED_MAX_MS  (12 * TW_MS_PER_HOUR)
#define TAG_MAX_CHARS   50
#define NOTE_MAX_CHARS  500
#define ABANDON_PAYLOAD (2 * TW_ID_BYTES + 4)
/* Sessions decoded per scratch arena while collecting statistics. */
#define STATS_SCRATCH_SESSIONS 256

static const char *const distraction_names[TW_FOCUS_DISTRACTION_TYPE_COUNT] = {
    "unspecified", "internal", "external", "phone", "people", "noise", "other",
};

/* ---- Checks without the store -------------------------------------------------- */

void tw_focus_check_new(const tw_focus_new *n, tw_violations *v)
{
    tw_task_check_new_id(n->id, false, "focus_session_id", v);
    tw_id id;
    if (n->template_id[0] == '\0')
        tw_violations_add(v, "template_id", "is required");
    else if (tw_focus_builtin_find(n->template_id) == NULL && !tw_id_parse(n->template_id, &id))
        tw_violations_add(v, "template_id",
                          "must be a built-in template (pomodoro, flowtime, fifty_ten, countdown) "
                          "or a template id");
    int64_t planned;
    if (n->planned_duration != NULL && (!tw_duration_to_ms(n->planned_duration, &planned) ||
                                        planned < PLANNED_MIN_MS || planned > PLANNED_MAX_MS))
        tw_violations_add(v, "planned_duration", "must be between 1 minute and 12 hours");
    tw_wellness_check_labels(v, "tags", n->tags, n->n_tags, TAG_MAX_CHARS);
}

void tw_focus_check_distraction(const Tw__V1__FocusDistraction *d, tw_violations *v)
{
    if ((int)d->type <= 0 || (int)d->type >= TW_FOCUS_DISTRACTION_TYPE_COUNT)
        tw_violations_add(v, "distraction.type", d->type == 0 ? "is required" : "is unknown");
    tw_wellness_check_text(v, "distraction.note", d->note, NOTE_MAX_CHARS, false);
}

/* ---- Sessions: reading and writing ---------------------------------------------- */

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

/* Session id of user: for update in t, or committed from s when t is NULL. */
static tw_err read_session(tw_store *s, tw_txn *t, const tw_id *user, const tw_id *id,
                           tw_arena *arena, Tw__V1__FocusSession **out)
{
    ProtobufCMessage *msg;
    tw_err err = tw_owned_get(s, t, TW_KF_FOCUS_SESSION, user, id, arena, &msg);
    const Tw__Store__V1__FocusSessionRecord *rec = (const void *)msg;
    if (err == TW_OK && rec->session == NULL)
        err = TW_ERR_DB_CORRUPT;
    *out = err ? NULL : rec->session;
    return err;
}

tw_err tw_focus_get(tw_txn *t, tw_wellness_env *env, const tw_id *session_id,
                    Tw__V1__FocusSession **out)
{
    tw_err err = read_session(env->store, t, &env->user, session_id, env->arena, out);
    if (err != TW_ERR_NOT_FOUND)
        return err;
    char text[TW_ID_TEXT_SIZE];
    tw_id_format(session_id, text);
    return tw_wellness_refuse(env, err, "focus session %s not found", text);
}

/* Writes s (its update time now), moving its index key from old_index_ms
 * (INT64_MIN for a new session), and appends the change. */
static tw_err save_session(tw_txn *t, tw_wellness_env *env, const tw_id *id,
                           Tw__V1__FocusSession *s, int64_t old_index_ms)
{
    /* Stored with its focused time and break as of its last change, exact
     * for every state but RUNNING (which readers bring up to their clock,
     * tw_focus_present), so that a stored session says what it is to sync. */
    tw_err err = tw_focus_present(s, tw_focus_last_change_ms(s), env->arena);
    if (err || (s->update_time = tw_timestamp_new(env->arena, env->now_ms)) == NULL)
        return err ? err : TW_ERR_NO_MEMORY;
    Tw__Store__V1__FocusSessionRecord rec = TW__STORE__V1__FOCUS_SESSION_RECORD__INIT;
    rec.session = s;
    err = tw_owned_put(t, TW_KF_FOCUS_SESSION, &env->user, id, &rec.base);
    int64_t new_index_ms = index_ms(s);
    if (!err && old_index_ms != new_index_ms) {
        tw_key k;
        if (old_index_ms != INT64_MIN) {
            start_key(&k, &env->user, old_index_ms, id);
            err = tw_txn_delete(t, &k);
        }
        start_key(&k, &env->user, new_index_ms, id);
        if (!err)
            err = tw_txn_put(t, &k, NULL);
    }
    return err ? err
               : tw_txn_changelog_append(t, &env->user, SESSION_CHANGE, id, TW_CHANGE_UPSERT, NULL);
}

/* When an event happens: event_time (the engine kept it within the last
 * 24 hours and at most a minute ahead), not before the last change; or now
 * (never before the last change). */
static tw_err event_at(tw_wellness_env *env, const Google__Protobuf__Timestamp *event_time,
                       int64_t last_change_ms, int64_t *at)
{
    if (event_time == NULL || !tw_timestamp_to_ms(event_time, at)) {
        *at = env->now_ms > last_change_ms ? env->now_ms : last_change_ms;
        return TW_OK;
    }
    if (*at < last_change_ms)
        return tw_violations_add(env->violations, "event_time",
                                 "is before the session's last change");
    return TW_OK;
}

/* Applies ev at at_ms to s, refusing what the state machine forbids. */
static tw_err apply(tw_wellness_env *env, Tw__V1__FocusSession *s, tw_focus_event ev, int64_t at_ms)
{
    char why[200];
    tw_err err = tw_focus_apply(s, ev, at_ms, env->arena, why, sizeof why);
    return err ? tw_wellness_refuse(env, err, "%s", why) : TW_OK;
}

/* Enqueues the job that abandons s if it is left as it is now. */
static tw_err enqueue_abandon(tw_txn *t, tw_wellness_env *env, const tw_id *id,
                              const Tw__V1__FocusSession *s, bool *job_enqueued)
{
    uint8_t payload[ABANDON_PAYLOAD];
    memcpy(payload, env->user.bytes, TW_ID_BYTES);
    memcpy(payload + TW_ID_BYTES, id->bytes, TW_ID_BYTES);
    uint32_t changes = (uint32_t)s->n_state_changes;
    for (int i = 0; i < 4; i++)
        payload[2 * TW_ID_BYTES + i] = (uint8_t)(changes >> (24 - 8 * i));
    int64_t delay = tw_focus_last_change_ms(s) + env->abandon_after_ms - env->now_ms;
    tw_job_options opts = {.delay_ms = delay > 0 ? delay : 0};
    tw_err err = tw_txn_job_enqueue(t, TW_FOCUS_ABANDON_JOB, payload, sizeof payload, &opts, NULL);
    if (err == TW_OK)
        *job_enqueued = true;
    return err;
}

/*
 * The linked task's share of a completed session: its focused time, added
 * to the task's tracked focus time (a new task version and "task" change)
 * in the session's transaction; a task deleted since the session was made
 * gets nothing. The one place a session reaches its task.
 */
static tw_err credit_task(tw_txn *t, tw_wellness_env *env, const char *task_id, int64_t focused_ms)
{
    tw_id task;
    if (task_id[0] == '\0' || !tw_id_parse(task_id, &task))
        return TW_OK;
    tw_task_env task_env = {.user = env->user, .arena = env->arena, .now_ms = env->now_ms};
    tw_err err = tw_task_op_add_focus(t, &task_env, &task, focused_ms);
    return err == TW_ERR_NOT_FOUND ? TW_OK : err;
}

/* What ending session s does besides its state: the active marker goes,
 * the outcome is counted, a completed session credits its task. */
static tw_err end_effects(tw_txn *t, tw_wellness_env *env, const tw_id *id,
                          const Tw__V1__FocusSession *s)
{
    tw_key k;
    tw_value v;
    active_key(&k, &env->user);
    tw_err err = tw_txn_get_for_update(t, &k, env->arena, &v);
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
    return completed ? credit_task(t, env, s->task_id, focused) : TW_OK;
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

/* Makes the session n describes (no state yet) with its id: the client's
 * (refused when taken) or a new one. What the store knows is checked here:
 * the template and the task must be the user's. */
static tw_err make_session(tw_txn *t, tw_wellness_env *env, const tw_focus_new *n, tw_id *id,
                           Tw__V1__FocusSession **out)
{
    tw_err err;
    if (n->id[0] == '\0') {
        *id = tw_id_new();
    } else if (!tw_id_parse(n->id, id)) { /* tw_focus_check_new refused it */
        return TW_ERR_VALIDATION;
    } else if ((err = tw_owned_check(NULL, t, TW_KF_FOCUS_SESSION, &env->user, id)) == TW_OK) {
        return tw_wellness_refuse(env, TW_ERR_ALREADY_EXISTS, "focus session %s already exists",
                                  n->id);
    } else if (err != TW_ERR_NOT_FOUND) {
        return err;
    }
    Tw__V1__FocusTemplate *tmpl;
    if ((err = tw_focus_template_find(t, env, n->template_id, &tmpl)))
        return err;
    tw_id task;
    if (n->task_id[0] != '\0' && tw_id_parse(n->task_id, &task)) {
        /* One of the user's tasks (another user's is as unknown). */
        err = tw_owned_check(NULL, t, TW_KF_TASK, &env->user, &task);
        if (err == TW_ERR_NOT_FOUND)
            return tw_wellness_refuse(env, err, "task %s not found", n->task_id);
        if (err)
            return err;
    }
    int64_t planned = 0;
    if (n->planned_duration != NULL)
        tw_duration_to_ms(n->planned_duration, &planned);
    else if (tmpl->focus_duration != NULL)
        tw_duration_to_ms(tmpl->focus_duration, &planned);

    Tw__V1__FocusSession *s = tw_arena_alloc(env->arena, sizeof *s);
    char *id_text = tw_arena_alloc(env->arena, TW_ID_TEXT_SIZE);
    if (s == NULL || id_text == NULL)
        return TW_ERR_NO_MEMORY;
    tw__v1__focus_session__init(s);
    tw_id_format(id, id_text);
    s->id = id_text;
    s->template_id = (char *)n->template_id;
    s->template_ = tmpl;
    s->task_id = (char *)n->task_id;
    if (planned > 0 && (s->planned_duration = tw_duration_new(env->arena, planned)) == NULL)
        return TW_ERR_NO_MEMORY;
    s->tags = (char **)n->tags;
    s->n_tags = n->n_tags;
    if ((s->create_time = tw_timestamp_new(env->arena, env->now_ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    *out = s;
    return TW_OK;
}

tw_err tw_focus_create(tw_txn *t, tw_wellness_env *env, const tw_focus_new *n,
                       Tw__V1__FocusSession **out)
{
    tw_id id;
    Tw__V1__FocusSession *s;
    tw_err err = make_session(t, env, n, &id, &s);
    if (err || (err = set_planned(s, env->now_ms, env->arena)) ||
        (err = save_session(t, env, &id, s, INT64_MIN)))
        return err;
    *out = s;
    return TW_OK;
}

/* Makes session id the user's active one, unless another is in progress. */
static tw_err claim_active(tw_txn *t, tw_wellness_env *env, const tw_id *id)
{
    tw_key k;
    tw_value v;
    active_key(&k, &env->user);
    tw_err err = tw_txn_get_for_update(t, &k, env->arena, &v);
    if (err == TW_OK && memcmp(v.id.bytes, id->bytes, TW_ID_BYTES) != 0) {
        Tw__V1__FocusSession *other;
        err = read_session(NULL, t, &env->user, &v.id, env->arena, &other);
        if (err == TW_OK && tw_focus_state_active(other->state))
            return tw_wellness_refuse(
                env, TW_ERR_FAILED_PRECONDITION,
                "focus session %s is already %s: complete or abandon it first", other->id,
                tw_focus_state_name(other->state));
        if (err && err != TW_ERR_NOT_FOUND)
            return err;
    } else if (err && err != TW_ERR_NOT_FOUND) {
        return err;
    }
    return tw_txn_put(t, &k, &(tw_value){.id = *id});
}

tw_err tw_focus_start(tw_txn *t, tw_wellness_env *env, const tw_id *session_id,
                      const tw_focus_new *n, const Google__Protobuf__Timestamp *event_time,
                      Tw__V1__FocusSession **out, bool *job_enqueued)
{
    *out = NULL;
    tw_id id;
    Tw__V1__FocusSession *s;
    int64_t old_index = INT64_MIN, last_change = INT64_MIN, at;
    tw_err err;
    if (session_id != NULL) {
        id = *session_id;
        if ((err = tw_focus_get(t, env, &id, &s)))
            return err;
        old_index = index_ms(s);
        last_change = tw_focus_last_change_ms(s);
    } else {
        if ((err = make_session(t, env, n, &id, &s)))
            return err;
        s->state = TW_FOCUS_PLANNED; /* never stored so: it starts at once */
    }
    if ((err = event_at(env, event_time, last_change, &at)) ||
        (err = apply(env, s, TW_FOCUS_START, at)) || (err = claim_active(t, env, &id)) ||
        (err = save_session(t, env, &id, s, old_index)) ||
        (err = enqueue_abandon(t, env, &id, s, job_enqueued)))
        return err;
    *out = s;
    return TW_OK;
}

tw_err tw_focus_transition(tw_txn *t, tw_wellness_env *env, const tw_id *session_id,
                           tw_focus_event ev, const Google__Protobuf__Timestamp *event_time,
                           Tw__V1__FocusSession **out, bool *job_enqueued)
{
    *out = NULL;
    Tw__V1__FocusSession *s;
    tw_err err = tw_focus_get(t, env, session_id, &s);
    if (err)
        return err;
    int64_t old_index = index_ms(s), at;
    if ((err = event_at(env, event_time, tw_focus_last_change_ms(s), &at)) ||
        (err = apply(env, s, ev, at)))
        return err;
    err = tw_focus_state_final(s->state) ? end_effects(t, env, session_id, s)
                                         : enqueue_abandon(t, env, session_id, s, job_enqueued);
    if (err || (err = save_session(t, env, session_id, s, old_index)))
        return err;
    *out = s;
    return TW_OK;
}

tw_err tw_focus_distract(tw_txn *t, tw_wellness_env *env, const tw_id *session_id,
                         const Tw__V1__FocusDistraction *d, Tw__V1__FocusSession **out)
{
    *out = NULL;
    Tw__V1__FocusSession *s;
    tw_err err = tw_focus_get(t, env, session_id, &s);
    if (err || (err = apply(env, s, TW_FOCUS_DISTRACT, 0)))
        return err;
    if (s->n_distractions >= TW_FOCUS_DISTRACTIONS_MAX)
        return tw_wellness_refuse(env, TW_ERR_FAILED_PRECONDITION,
                                  "the session has %d distractions, the most it may have",
                                  TW_FOCUS_DISTRACTIONS_MAX);
    /* The engine kept occur_time within the last 24 hours and at most a
     * minute ahead; the session bounds it from below. */
    int64_t started = 0, at;
    tw_timestamp_to_ms(s->start_time, &started);
    if (d->occur_time == NULL || !tw_timestamp_to_ms(d->occur_time, &at))
        at = env->now_ms > started ? env->now_ms : started;
    else if (at < started)
        return tw_violations_add(env->violations, "distraction.occur_time",
                                 "is before the session started");
    Tw__V1__FocusDistraction **list =
        tw_arena_alloc(env->arena, (s->n_distractions + 1) * sizeof *list);
    Tw__V1__FocusDistraction *copy = tw_arena_alloc(env->arena, sizeof *copy);
    if (list == NULL || copy == NULL)
        return TW_ERR_NO_MEMORY;
    if (s->n_distractions > 0)
        memcpy(list, s->distractions, s->n_distractions * sizeof *list);
    *copy = *d;
    if ((copy->occur_time = tw_timestamp_new(env->arena, at)) == NULL)
        return TW_ERR_NO_MEMORY;
    list[s->n_distractions] = copy;
    s->distractions = list;
    s->n_distractions++;
    char dims[32];
    snprintf(dims, sizeof dims, "type=%s", distraction_names[d->type]);
    if ((err = tw_txn_counter_add(t, &(tw_counter){NULL, "focus_distractions", dims},
                                  tw_store_day(env->now_ms), 1)) ||
        (err = save_session(t, env, session_id, s, index_ms(s))))
        return err;
    *out = s;
    return TW_OK;
}

/* ---- Lists and statistics ------------------------------------------------------------- */

struct list_ctx {
    tw_wellness_env *env;
    int state;
    Tw__V1__FocusSession **sessions;
    size_t count;
};

static tw_err list_item(void *ctx, int64_t time_ms, const tw_id *id, tw_store_iter *it, bool *taken)
{
    (void)time_ms, (void)it;
    struct list_ctx *c = ctx;
    Tw__V1__FocusSession *s;
    tw_err err = read_session(c->env->store, NULL, &c->env->user, id, c->env->arena, &s);
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

tw_err tw_focus_list(tw_wellness_env *env, int state, int64_t from_ms, int64_t to_ms,
                     const uint8_t *cursor, size_t cursor_len, uint32_t limit,
                     Tw__V1__FocusSession ***sessions, size_t *count, const uint8_t **next,
                     size_t *next_len)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_FOCUS_SESSION_BY_START);
    tw_key_id(&prefix, &env->user);
    struct list_ctx c = {env, state, tw_arena_alloc(env->arena, (limit + 1) * sizeof(void *)), 0};
    if (c.sessions == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err = tw_index_page(env->store, &prefix, from_ms, to_ms, cursor, cursor_len, limit,
                               env->arena, list_item, &c, next, next_len);
    *sessions = c.sessions;
    *count = c.count;
    return err;
}

/* What each session of the stats window is added to. */
struct stats_ctx {
    tw_store *store;
    const tw_id *user;
    tw_focus_stats *st;
    int64_t now_ms;
};

static tw_err stats_item(void *ctx, int64_t time_ms, const tw_id *id, tw_store_iter *it,
                         tw_arena *scratch)
{
    (void)time_ms, (void)it;
    struct stats_ctx *c = ctx;
    Tw__V1__FocusSession *session;
    tw_err err = read_session(c->store, NULL, c->user, id, scratch, &session);
    if (err == TW_ERR_NOT_FOUND) /* changed since the scan began */
        return TW_OK;
    return err ? err : tw_focus_stats_add(c->st, session, c->now_ms);
}

tw_err tw_focus_collect_stats(tw_store *s, const tw_id *user, tw_focus_stats *st, int64_t now_ms)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_FOCUS_SESSION_BY_START);
    tw_key_id(&prefix, user);
    struct stats_ctx c = {s, user, st, now_ms};
    return tw_index_window(s, &prefix, st->from_ms - TW_FOCUS_STATS_LOOKBACK_MS, st->to_ms,
                           STATS_SCRATCH_SESSIONS, STATS_SCRATCH_SESSIONS * 512, stats_item, &c);
}

/* ---- The auto-abandon job ----------------------------------------------------------------- */

bool tw_focus_abandon_read(const void *payload, size_t len, tw_focus_abandon *out)
{
    if (len != ABANDON_PAYLOAD)
        return false;
    const uint8_t *p = payload;
    memcpy(out->user.bytes, p, TW_ID_BYTES);
    memcpy(out->session.bytes, p + TW_ID_BYTES, TW_ID_BYTES);
    const uint8_t *c = p + 2 * TW_ID_BYTES;
    out->changes = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
    return true;
}

tw_err tw_focus_abandon_due(tw_txn *t, tw_wellness_env *env, const tw_focus_abandon *job,
                            bool *job_enqueued)
{
    *job_enqueued = false;
    Tw__V1__FocusSession *s;
    tw_err err = read_session(NULL, t, &env->user, &job->session, env->arena, &s);
    if (err == TW_ERR_NOT_FOUND)
        return TW_OK;
    if (err)
        return err;
    if (!tw_focus_state_active(s->state) || s->n_state_changes != job->changes)
        return TW_OK; /* ended, or changed: a later job watches it */
    int64_t deadline = tw_focus_last_change_ms(s) + env->abandon_after_ms;
    if (env->now_ms < deadline) /* the limit was raised since */
        return enqueue_abandon(t, env, &job->session, s, job_enqueued);
    int64_t old_index = index_ms(s);
    if ((err = apply(env, s, TW_FOCUS_ABANDON, deadline)))
        return err;
    s->abandoned_by_server = true;
    if ((err = end_effects(t, env, &job->session, s)))
        return err;
    return save_session(t, env, &job->session, s, old_index);
}
