/* The focus session state machine and its time arithmetic. */
#include "focus.h"

#include <stdio.h>
#include <string.h>

/* Shorter names for the table. */
enum {
    X = 0, /* not allowed */
    PLAN = TW_FOCUS_PLANNED,
    RUN = TW_FOCUS_RUNNING,
    PAUSE = TW_FOCUS_PAUSED,
    BREAK = TW_FOCUS_ON_BREAK,
    DONE = TW_FOCUS_COMPLETED,
    GONE = TW_FOCUS_ABANDONED,
};

/*
 * next_state[event][state]: the whole state machine. A row per event, a
 * column per state (UNSPECIFIED, PLANNED, RUNNING, PAUSED, ON_BREAK,
 * COMPLETED, ABANDONED); X where the event is refused. A distraction
 * leaves the state as it is.
 */
static const int next_state[TW_FOCUS_EVENT_COUNT][TW_FOCUS_STATE_COUNT] = {
    /*                    ?  PLANNED RUNNING PAUSED ON_BREAK COMPLETED ABANDONED */
    [TW_FOCUS_START] = {X, RUN, X, X, X, X, X},
    [TW_FOCUS_PAUSE] = {X, X, PAUSE, X, X, X, X},
    [TW_FOCUS_RESUME] = {X, X, X, RUN, RUN, X, X},
    [TW_FOCUS_BREAK] = {X, X, BREAK, BREAK, X, X, X},
    [TW_FOCUS_COMPLETE] = {X, X, DONE, DONE, DONE, X, X},
    [TW_FOCUS_ABANDON] = {X, GONE, GONE, GONE, GONE, X, X},
    [TW_FOCUS_DISTRACT] = {X, X, RUN, PAUSE, X, X, X},
};

static const char *const state_names[TW_FOCUS_STATE_COUNT] = {
    "UNSPECIFIED", "PLANNED", "RUNNING", "PAUSED", "ON_BREAK", "COMPLETED", "ABANDONED",
};

static const char *const event_verbs[TW_FOCUS_EVENT_COUNT] = {
    [TW_FOCUS_START] = "start",
    [TW_FOCUS_PAUSE] = "pause",
    [TW_FOCUS_RESUME] = "resume",
    [TW_FOCUS_BREAK] = "start a break in",
    [TW_FOCUS_COMPLETE] = "complete",
    [TW_FOCUS_ABANDON] = "abandon",
    [TW_FOCUS_DISTRACT] = "record a distraction in",
};

const char *tw_focus_state_name(int state)
{
    return state > 0 && state < TW_FOCUS_STATE_COUNT ? state_names[state] : state_names[0];
}

const char *tw_focus_event_verb(tw_focus_event ev)
{
    return ev < TW_FOCUS_EVENT_COUNT ? event_verbs[ev] : "change";
}

int tw_focus_next_state(int state, tw_focus_event ev)
{
    if (state <= 0 || state >= TW_FOCUS_STATE_COUNT || ev >= TW_FOCUS_EVENT_COUNT)
        return X;
    return next_state[ev][state];
}

bool tw_focus_state_active(int state)
{
    return state == RUN || state == PAUSE || state == BREAK;
}

bool tw_focus_state_final(int state)
{
    return state == DONE || state == GONE;
}

static int64_t change_ms(const Tw__V1__FocusStateChange *c)
{
    int64_t ms = 0;
    if (c->change_time != NULL)
        tw_timestamp_to_ms(c->change_time, &ms);
    return ms;
}

int64_t tw_focus_last_change_ms(const Tw__V1__FocusSession *s)
{
    if (s->n_state_changes > 0)
        return change_ms(s->state_changes[s->n_state_changes - 1]);
    int64_t ms = 0;
    if (s->create_time != NULL)
        tw_timestamp_to_ms(s->create_time, &ms);
    return ms;
}

tw_err tw_focus_apply(Tw__V1__FocusSession *s, tw_focus_event ev, int64_t at_ms, tw_arena *arena,
                      char *why, size_t why_len)
{
    int next = tw_focus_next_state(s->state, ev);
    if (next == X) {
        snprintf(why, why_len, "cannot %s a session that is %s", tw_focus_event_verb(ev),
                 tw_focus_state_name(s->state));
        return TW_ERR_FAILED_PRECONDITION;
    }
    if (ev == TW_FOCUS_DISTRACT)
        return TW_OK;
    if (s->n_state_changes >= TW_FOCUS_CHANGES_MAX) {
        snprintf(why, why_len, "the session has had %d state changes, the most it may have",
                 TW_FOCUS_CHANGES_MAX);
        return TW_ERR_FAILED_PRECONDITION;
    }
    Tw__V1__FocusStateChange **changes =
        tw_arena_alloc(arena, (s->n_state_changes + 1) * sizeof *changes);
    Tw__V1__FocusStateChange *c = tw_arena_alloc(arena, sizeof *c);
    if (changes == NULL || c == NULL)
        return TW_ERR_NO_MEMORY;
    if (s->n_state_changes > 0)
        memcpy(changes, s->state_changes, s->n_state_changes * sizeof *changes);
    tw__v1__focus_state_change__init(c);
    c->state = (Tw__V1__FocusSessionState)next;
    if ((c->change_time = tw_timestamp_new(arena, at_ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    changes[s->n_state_changes] = c;
    s->state_changes = changes;
    s->n_state_changes++;

    if (ev == TW_FOCUS_RESUME && s->state == TW_FOCUS_ON_BREAK)
        s->cycle_index++;
    if (ev == TW_FOCUS_START && s->start_time == NULL &&
        (s->start_time = tw_timestamp_new(arena, at_ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    if (tw_focus_state_final(next) && (s->end_time = tw_timestamp_new(arena, at_ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    s->state = (Tw__V1__FocusSessionState)next;
    return TW_OK;
}

void tw_focus_running_spans(const Tw__V1__FocusSession *s, int64_t now_ms,
                            void (*fn)(void *ctx, int64_t from_ms, int64_t to_ms), void *ctx)
{
    for (size_t i = 0; i < s->n_state_changes; i++) {
        if (s->state_changes[i]->state != TW_FOCUS_RUNNING)
            continue;
        int64_t from = change_ms(s->state_changes[i]);
        int64_t to = i + 1 < s->n_state_changes ? change_ms(s->state_changes[i + 1]) : now_ms;
        if (to > from)
            fn(ctx, from, to);
    }
}

static void add_span(void *ctx, int64_t from_ms, int64_t to_ms)
{
    *(int64_t *)ctx += to_ms - from_ms;
}

int64_t tw_focus_focused_ms(const Tw__V1__FocusSession *s, int64_t now_ms)
{
    int64_t total = 0;
    tw_focus_running_spans(s, now_ms, add_span, &total);
    return total;
}

int64_t tw_focus_cycle_focused_ms(const Tw__V1__FocusSession *s, int64_t now_ms)
{
    /* The current cycle began where the last break ended: the last RUNNING
     * that follows an ON_BREAK. Only the changes from there count. */
    size_t first = 0;
    for (size_t i = 1; i < s->n_state_changes; i++)
        if (s->state_changes[i]->state == TW_FOCUS_RUNNING &&
            s->state_changes[i - 1]->state == TW_FOCUS_ON_BREAK)
            first = i;
    Tw__V1__FocusSession cycle = *s;
    cycle.state_changes = s->state_changes + first;
    cycle.n_state_changes = s->n_state_changes - first;
    return tw_focus_focused_ms(&cycle, now_ms);
}

int64_t tw_focus_break_ms(const Tw__V1__FocusTemplate *t, int32_t cycle_index,
                          int64_t cycle_focused_ms)
{
    int64_t ms = 0;
    switch (t->kind) {
    case TW_FOCUS_FLOWTIME:
        /* Flowtime's rule of thumb: a fifth of the focus just spent. */
        return cycle_focused_ms / 5;
    case TW_FOCUS_CYCLES:
        if (t->long_break_every > 0 && (cycle_index + 1) % t->long_break_every == 0) {
            if (t->long_break_duration != NULL)
                tw_duration_to_ms(t->long_break_duration, &ms);
        } else if (t->short_break_duration != NULL) {
            tw_duration_to_ms(t->short_break_duration, &ms);
        }
        return ms;
    default:
        return 0;
    }
}

tw_err tw_focus_present(Tw__V1__FocusSession *s, int64_t now_ms, tw_arena *arena)
{
    int64_t last = tw_focus_last_change_ms(s);
    int64_t at = now_ms > last ? now_ms : last;
    s->focused_duration = tw_duration_new(arena, tw_focus_focused_ms(s, at));
    int64_t brk = s->template_ != NULL ? tw_focus_break_ms(s->template_, s->cycle_index,
                                                           tw_focus_cycle_focused_ms(s, at))
                                       : 0;
    s->break_duration = tw_duration_new(arena, brk);
    return s->focused_duration && s->break_duration ? TW_OK : TW_ERR_NO_MEMORY;
}
