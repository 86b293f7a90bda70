/*
 * Focus sessions (tw.v1.FocusService): the state machine as a transition
 * table and the time arithmetic (focus_machine.c), templates, built-in and
 * the user's own, with their store (focus_templates.c), statistics
 * (focus_stats.c), and sessions in the store (focus_store.c): one
 * transaction per call writing the session, its start index, the user's
 * active-session marker, a "focus_session" change, counters, the linked
 * task's focus and the auto-abandon job together.
 */
#ifndef TW_WELLNESS_FOCUS_H
#define TW_WELLNESS_FOCUS_H

#include "tw/store/v1/wellness_records.pb-c.h"
#include "tw/v1/focus_service.pb-c.h"
#include "tw_txn.h"
#include "wellness.h"

/* Shorter names for the generated enums. */
#define TW_FOCUS_PLANNED     TW__V1__FOCUS_SESSION_STATE__FOCUS_SESSION_STATE_PLANNED
#define TW_FOCUS_RUNNING     TW__V1__FOCUS_SESSION_STATE__FOCUS_SESSION_STATE_RUNNING
#define TW_FOCUS_PAUSED      TW__V1__FOCUS_SESSION_STATE__FOCUS_SESSION_STATE_PAUSED
#define TW_FOCUS_ON_BREAK    TW__V1__FOCUS_SESSION_STATE__FOCUS_SESSION_STATE_ON_BREAK
#define TW_FOCUS_COMPLETED   TW__V1__FOCUS_SESSION_STATE__FOCUS_SESSION_STATE_COMPLETED
#define TW_FOCUS_ABANDONED   TW__V1__FOCUS_SESSION_STATE__FOCUS_SESSION_STATE_ABANDONED
#define TW_FOCUS_STATE_COUNT 7 /* UNSPECIFIED and the six states */

#define TW_FOCUS_CYCLES    TW__V1__FOCUS_TEMPLATE_KIND__FOCUS_TEMPLATE_KIND_CYCLES
#define TW_FOCUS_FLOWTIME  TW__V1__FOCUS_TEMPLATE_KIND__FOCUS_TEMPLATE_KIND_FLOWTIME
#define TW_FOCUS_COUNTDOWN TW__V1__FOCUS_TEMPLATE_KIND__FOCUS_TEMPLATE_KIND_COUNTDOWN

#define TW_FOCUS_DISTRACTION_TYPE_COUNT 7 /* UNSPECIFIED and the six types */

/* Limits, as focus_service.proto documents them. */
#define TW_FOCUS_USER_TEMPLATES_MAX 50
#define TW_FOCUS_DISTRACTIONS_MAX   500
#define TW_FOCUS_CHANGES_MAX        1000
/* How far before a stats range sessions are looked for. */
#define TW_FOCUS_STATS_LOOKBACK_MS (48 * TW_MS_PER_HOUR)
/* The job that abandons a session left active too long. */
#define TW_FOCUS_ABANDON_JOB "focus_abandon"

/* ---- The state machine (focus_machine.c) ---------------------------------- */

/* What a client (or the server) does to a session. */
typedef enum tw_focus_event {
    TW_FOCUS_START,
    TW_FOCUS_PAUSE,
    TW_FOCUS_RESUME,
    TW_FOCUS_BREAK,
    TW_FOCUS_COMPLETE,
    TW_FOCUS_ABANDON,
    TW_FOCUS_DISTRACT, /* allowed in some states; changes none */
    TW_FOCUS_EVENT_COUNT,
} tw_focus_event;

/* "RUNNING", "ON_BREAK"...; "UNSPECIFIED" for anything else. */
const char *tw_focus_state_name(int state);

/* "pause", "start a break in"...: what the event does, for messages. */
const char *tw_focus_event_verb(tw_focus_event ev);

/* The state event ev takes a session in state to, from the transition
 * table; 0 (UNSPECIFIED) when ev is not allowed in state. */
int tw_focus_next_state(int state, tw_focus_event ev);

/* RUNNING, PAUSED or ON_BREAK: the user's one session in progress. */
bool tw_focus_state_active(int state);

/* COMPLETED or ABANDONED. */
bool tw_focus_state_final(int state);

/*
 * Applies ev at at_ms (not before the session's last change) to s, in
 * place: appends the state change (repeated fields are copied into arena),
 * counts the cycle when a break ends, sets start_time on the first start and
 * end_time at the end. TW_ERR_FAILED_PRECONDITION, with a message naming
 * the current state in why, when the table forbids it; TW_ERR_FAILED_PRECONDITION
 * also when the session has TW_FOCUS_CHANGES_MAX changes.
 */
tw_err tw_focus_apply(Tw__V1__FocusSession *s, tw_focus_event ev, int64_t at_ms, tw_arena *arena,
                      char *why, size_t why_len);

/* When the session last changed state (its creation time when it has no
 * changes). */
int64_t tw_focus_last_change_ms(const Tw__V1__FocusSession *s);

/* Time spent RUNNING up to now_ms (a session still running counts until
 * then); the whole session, or only its current cycle (since the last
 * break ended). */
int64_t tw_focus_focused_ms(const Tw__V1__FocusSession *s, int64_t now_ms);
int64_t tw_focus_cycle_focused_ms(const Tw__V1__FocusSession *s, int64_t now_ms);

/* Calls fn for each stretch [from_ms, to_ms) the session was RUNNING, up
 * to now_ms. */
void tw_focus_running_spans(const Tw__V1__FocusSession *s, int64_t now_ms,
                            void (*fn)(void *ctx, int64_t from_ms, int64_t to_ms), void *ctx);

/* The planned length of a break taken after cycle cycle_index (from 0)
 * that held cycle_focused_ms of focus. */
int64_t tw_focus_break_ms(const Tw__V1__FocusTemplate *t, int32_t cycle_index,
                          int64_t cycle_focused_ms);

/* Fills the fields computed when a session is read: focused_duration and
 * break_duration as of now_ms. */
tw_err tw_focus_present(Tw__V1__FocusSession *s, int64_t now_ms, tw_arena *arena);

/* ---- Templates (focus_templates.c) ------------------------------------------ */

/* The built-in templates, in the order they are listed. */
size_t tw_focus_builtin_count(void);
const Tw__V1__FocusTemplate *tw_focus_builtin(size_t i);
/* The built-in template named id, or NULL. */
const Tw__V1__FocusTemplate *tw_focus_builtin_find(const char *id);

/* Checks a template a client sent (every bad field a violation in v, named
 * under "template.") and makes the one to store (in arena, output-only
 * fields and its id cleared). TW_ERR_VALIDATION when there was any. */
tw_err tw_focus_template_prepare(const Tw__V1__FocusTemplate *in, tw_arena *arena,
                                 tw_violations *v, Tw__V1__FocusTemplate **out);

/* The template a new session runs by, named by template_id: a built-in one
 * or one of env->user's (read in t). TW_ERR_NOT_FOUND, with env->message,
 * when the user has none with that id. */
tw_err tw_focus_template_find(tw_txn *t, tw_wellness_env *env, const char *template_id,
                              Tw__V1__FocusTemplate **out);

/* Stores prepared template tmpl as env->user's, with id (NULL: a new one):
 * TW_ERR_ALREADY_EXISTS when the id is taken, TW_ERR_FAILED_PRECONDITION
 * when the user has TW_FOCUS_USER_TEMPLATES_MAX already (both with
 * env->message). *out gets it as stored. */
tw_err tw_focus_template_create(tw_txn *t, tw_wellness_env *env, const Tw__V1__FocusTemplate *tmpl,
                                const tw_id *id, Tw__V1__FocusTemplate **out);

/* Deletes one of env->user's templates; TW_ERR_NOT_FOUND (with
 * env->message) when there is none. */
tw_err tw_focus_template_delete(tw_txn *t, tw_wellness_env *env, const tw_id *id);

/* One page of the built-in templates followed by env->user's, oldest
 * first, from cursor (one this function returned, or none): *next is the
 * next page's cursor, NULL at the end. */
tw_err tw_focus_template_list(tw_wellness_env *env, const uint8_t *cursor, size_t cursor_len,
                              uint32_t limit, Tw__V1__FocusTemplate ***templates, size_t *count,
                              const uint8_t **next, size_t *next_len);

/* ---- Statistics (focus_stats.c) --------------------------------------------- */

typedef struct tw_focus_stats {
    const char *time_zone; /* the profile's (borrowed), for local hours */
    tw_day_range range;    /* the days, cut by the profile's zone */
    int32_t first_day;
    int32_t ndays;
    int64_t from_ms, to_ms; /* the range's instants */
    tw_err err;             /* the first error met while counting */
    int64_t *day_focused_ms;
    int32_t *day_sessions, *day_completed;
    int64_t hour_focused_ms[24];
    int32_t hour_sessions[24], hour_completed[24];
    int32_t sessions, completed, abandoned, ended;
    int64_t focused_ms, ended_focused_ms;
    int32_t distractions[TW_FOCUS_DISTRACTION_TYPE_COUNT];
} tw_focus_stats;

/* Starts statistics of the logical days (settings: the profile's zone and
 * day-start hour, borrowed) first_day .. first_day + ndays - 1, in arena.
 * TW_ERR_VALIDATION: unknown zone. */
tw_err tw_focus_stats_init(tw_focus_stats *st, const tw_day_settings *settings, int32_t first_day,
                           int32_t ndays, tw_arena *arena);

/* Counts one session as of now_ms (planned ones count for nothing). */
tw_err tw_focus_stats_add(tw_focus_stats *st, const Tw__V1__FocusSession *s, int64_t now_ms);

/* completed / (completed + abandoned); 0 when none ended. */
double tw_focus_stats_completion_rate(const tw_focus_stats *st);

/* Up to three hours with the most focused time, best first, ties to the
 * earlier hour; *n gets how many (hours with none are left out). */
void tw_focus_stats_best_hours(const tw_focus_stats *st, int32_t best[3], size_t *n);

/* ---- The store (focus_store.c) ---------------------------------------------- */

/* What a new session is made of (strings borrowed). */
typedef struct tw_focus_new {
    const char *id; /* the id its client chose (focus_session_id), "" for a new one */
    const char *template_id;
    const char *task_id; /* "" for none */
    const Google__Protobuf__Duration *planned_duration;
    char *const *tags;
    size_t n_tags;
} tw_focus_new;

/* Checks what a new session is made of, as far as it can be without the
 * store (the id a UUIDv7, the template id's form, the planned duration, the
 * tags): each bad field a violation in v, named as the request's fields. */
void tw_focus_check_new(const tw_focus_new *n, tw_violations *v);

/* Checks a distraction a client sent ("distraction.type", ".note"). */
void tw_focus_check_distraction(const Tw__V1__FocusDistraction *d, tw_violations *v);

/* The steps below run in t for env->user, as of env->now_ms, and refuse
 * with env->message: TW_ERR_NOT_FOUND for a session, template or task the
 * user does not have, TW_ERR_ALREADY_EXISTS for a session id taken,
 * TW_ERR_FAILED_PRECONDITION for what the state machine forbids; an
 * event_time or occur_time before the session allows is a violation.
 * *job_enqueued says whether a step enqueued a job (wake the workers once
 * committed). Sessions are returned as stored: tw_focus_present brings
 * them up to a clock. */

/* Plans a session (PLANNED), made of n (tw_focus_check_new'd). */
tw_err tw_focus_create(tw_txn *t, tw_wellness_env *env, const tw_focus_new *n,
                       Tw__V1__FocusSession **out);

/* Starts the planned session session_id, or (session_id NULL) a new one
 * made of n, at event_time (NULL: now). One active session per user:
 * FAILED_PRECONDITION when another is in progress. */
tw_err tw_focus_start(tw_txn *t, tw_wellness_env *env, const tw_id *session_id,
                      const tw_focus_new *n, const Google__Protobuf__Timestamp *event_time,
                      Tw__V1__FocusSession **out, bool *job_enqueued);

/* Pause, resume, break, complete or abandon session_id at event_time
 * (NULL: now). */
tw_err tw_focus_transition(tw_txn *t, tw_wellness_env *env, const tw_id *session_id,
                           tw_focus_event ev, const Google__Protobuf__Timestamp *event_time,
                           Tw__V1__FocusSession **out, bool *job_enqueued);

/* Records a distraction (tw_focus_check_distraction'd) in session_id. */
tw_err tw_focus_distract(tw_txn *t, tw_wellness_env *env, const tw_id *session_id,
                         const Tw__V1__FocusDistraction *d, Tw__V1__FocusSession **out);

/* Reads a session: for update in t, or committed when t is NULL. */
tw_err tw_focus_get(tw_txn *t, tw_wellness_env *env, const tw_id *session_id,
                    Tw__V1__FocusSession **out);

/* One page of env->user's sessions, newest start first, state 0 for any,
 * from cursor (see tw_index_page): *next is the next page's cursor, NULL
 * at the end. */
tw_err tw_focus_list(tw_wellness_env *env, int state, int64_t from_ms, int64_t to_ms,
                     const uint8_t *cursor, size_t cursor_len, uint32_t limit,
                     Tw__V1__FocusSession ***sessions, size_t *count, const uint8_t **next,
                     size_t *next_len);

/* Adds user's sessions to statistics st as of now_ms. */
tw_err tw_focus_collect_stats(tw_store *s, const tw_id *user, tw_focus_stats *st, int64_t now_ms);

/*
 * The auto-abandon job: its payload names a user, a session, and how many
 * state changes the session had when it was enqueued. tw_focus_abandon_read
 * reads one (false when it is none). tw_focus_abandon_due, in t for
 * job->user (env->user), abandons the session as of its last change +
 * env->abandon_after_ms when that has passed and it has not changed since;
 * enqueues the job again for later when the limit has not passed yet;
 * does nothing for a session that changed or ended. Safe to run twice.
 */
typedef struct tw_focus_abandon {
    tw_id user, session;
    uint32_t changes;
} tw_focus_abandon;

bool tw_focus_abandon_read(const void *payload, size_t len, tw_focus_abandon *out);
tw_err tw_focus_abandon_due(tw_txn *t, tw_wellness_env *env, const tw_focus_abandon *job,
                            bool *job_enqueued);

#endif
