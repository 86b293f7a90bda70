/*
 * Unit tests for server/wellness/focus_machine.c: every (state, event) pair
 * of the transition table, the messages of refused ones, focused time with
 * pauses and breaks, cycles, and break lengths per template.
 */
#include "wellness/focus.h"

#include "tw_check.h"

#include <string.h>

#define T0  INT64_C(1717243200000) /* 2024-06-01T12:00:00Z */
#define MIN TW_MS_PER_MIN

static tw_arena *arena;

static void setup(void)
{
    arena = tw_arena_new(4096);
}

static void teardown(void)
{
    tw_arena_free(arena);
}

static Tw__V1__FocusSession *session(const char *template_id)
{
    Tw__V1__FocusSession *s = tw_arena_alloc(arena, sizeof *s);
    tw__v1__focus_session__init(s);
    s->template_id = (char *)template_id;
    s->template_ = (Tw__V1__FocusTemplate *)tw_focus_builtin_find(template_id);
    s->create_time = tw_timestamp_new(arena, T0);
    s->state = TW_FOCUS_PLANNED;
    return s;
}

static void apply(Tw__V1__FocusSession *s, tw_focus_event ev, int64_t at)
{
    char why[200] = "";
    tw_err err = tw_focus_apply(s, ev, at, arena, why, sizeof why);
    ck_assert_msg(err == TW_OK, "%s", why);
}

/* The table as the proto documents it: legal[state][event]. */
static const bool legal[TW_FOCUS_STATE_COUNT][TW_FOCUS_EVENT_COUNT] = {
    /*                  start  pause  resume break  complete abandon distract */
    [TW_FOCUS_PLANNED] = {true, false, false, false, false, true, false},
    [TW_FOCUS_RUNNING] = {false, true, false, true, true, true, true},
    [TW_FOCUS_PAUSED] = {false, false, true, true, true, true, true},
    [TW_FOCUS_ON_BREAK] = {false, false, true, false, true, true, false},
    [TW_FOCUS_COMPLETED] = {false},
    [TW_FOCUS_ABANDONED] = {false},
};

START_TEST(every_state_and_event)
{
    int checked = 0;
    for (int state = 1; state < TW_FOCUS_STATE_COUNT; state++) {
        for (int ev = 0; ev < TW_FOCUS_EVENT_COUNT; ev++) {
            Tw__V1__FocusSession *s = session("pomodoro");
            s->state = (Tw__V1__FocusSessionState)state;
            char why[200] = "";
            tw_err err = tw_focus_apply(s, (tw_focus_event)ev, T0, arena, why, sizeof why);
            if (legal[state][ev]) {
                ck_assert_msg(err == TW_OK, "%s on %s: %s", tw_focus_event_verb(ev),
                              tw_focus_state_name(state), why);
                ck_assert_int_eq(s->state, tw_focus_next_state(state, (tw_focus_event)ev));
                ck_assert_int_eq(s->n_state_changes, ev == TW_FOCUS_DISTRACT ? 0 : 1);
            } else {
                ck_assert_int_eq(err, TW_ERR_FAILED_PRECONDITION);
                ck_assert_int_eq(tw_focus_next_state(state, (tw_focus_event)ev), 0);
                /* The message names the current state; nothing changed. */
                ck_assert_msg(strstr(why, tw_focus_state_name(state)) != NULL, "%s", why);
                ck_assert_int_eq(s->state, state);
                ck_assert_int_eq(s->n_state_changes, 0);
            }
            checked++;
        }
    }
    ck_assert_int_eq(checked, 6 * 7);
    char why[200];
    Tw__V1__FocusSession *s = session("pomodoro");
    s->state = TW_FOCUS_COMPLETED;
    tw_focus_apply(s, TW_FOCUS_PAUSE, T0, arena, why, sizeof why);
    ck_assert_str_eq(why, "cannot pause a session that is COMPLETED");
}
END_TEST

START_TEST(next_states)
{
    ck_assert_int_eq(tw_focus_next_state(TW_FOCUS_PLANNED, TW_FOCUS_START), TW_FOCUS_RUNNING);
    ck_assert_int_eq(tw_focus_next_state(TW_FOCUS_RUNNING, TW_FOCUS_PAUSE), TW_FOCUS_PAUSED);
    ck_assert_int_eq(tw_focus_next_state(TW_FOCUS_PAUSED, TW_FOCUS_RESUME), TW_FOCUS_RUNNING);
    ck_assert_int_eq(tw_focus_next_state(TW_FOCUS_PAUSED, TW_FOCUS_BREAK), TW_FOCUS_ON_BREAK);
    ck_assert_int_eq(tw_focus_next_state(TW_FOCUS_ON_BREAK, TW_FOCUS_RESUME), TW_FOCUS_RUNNING);
    ck_assert_int_eq(tw_focus_next_state(TW_FOCUS_ON_BREAK, TW_FOCUS_COMPLETE), TW_FOCUS_COMPLETED);
    ck_assert_int_eq(tw_focus_next_state(TW_FOCUS_PLANNED, TW_FOCUS_ABANDON), TW_FOCUS_ABANDONED);
    ck_assert_int_eq(tw_focus_next_state(0, TW_FOCUS_START), 0);
    ck_assert_int_eq(tw_focus_next_state(99, TW_FOCUS_START), 0);
    ck_assert(tw_focus_state_active(TW_FOCUS_ON_BREAK));
    ck_assert(!tw_focus_state_active(TW_FOCUS_PLANNED));
    ck_assert(tw_focus_state_final(TW_FOCUS_ABANDONED));
    ck_assert(!tw_focus_state_final(TW_FOCUS_PAUSED));
    ck_assert_str_eq(tw_focus_state_name(99), "UNSPECIFIED");
}
END_TEST

START_TEST(focused_time_leaves_out_pauses_and_breaks)
{
    Tw__V1__FocusSession *s = session("pomodoro");
    apply(s, TW_FOCUS_START, T0);
    ck_assert_int_eq(tw_focus_focused_ms(s, T0 + 10 * MIN), 10 * MIN);
    apply(s, TW_FOCUS_PAUSE, T0 + 10 * MIN);
    /* Paused for 7 minutes: nothing more. */
    ck_assert_int_eq(tw_focus_focused_ms(s, T0 + 17 * MIN), 10 * MIN);
    apply(s, TW_FOCUS_RESUME, T0 + 17 * MIN);
    apply(s, TW_FOCUS_BREAK, T0 + 32 * MIN); /* 15 more: 25 */
    ck_assert_int_eq(tw_focus_focused_ms(s, T0 + 36 * MIN), 25 * MIN);
    ck_assert_int_eq(s->cycle_index, 0);
    apply(s, TW_FOCUS_RESUME, T0 + 37 * MIN); /* a 5-minute break, then cycle 1 */
    ck_assert_int_eq(s->cycle_index, 1);
    ck_assert_int_eq(tw_focus_cycle_focused_ms(s, T0 + 40 * MIN), 3 * MIN);
    apply(s, TW_FOCUS_PAUSE, T0 + 50 * MIN);
    apply(s, TW_FOCUS_BREAK, T0 + 52 * MIN); /* a break straight from a pause */
    apply(s, TW_FOCUS_COMPLETE, T0 + 60 * MIN);
    ck_assert_int_eq(tw_focus_focused_ms(s, T0 + 500 * MIN), 38 * MIN);
    ck_assert_int_eq(s->state, TW_FOCUS_COMPLETED);
    ck_assert_int_eq(s->n_state_changes, 8);
    int64_t ms;
    ck_assert(tw_timestamp_to_ms(s->start_time, &ms) && ms == T0);
    ck_assert(tw_timestamp_to_ms(s->end_time, &ms) && ms == T0 + 60 * MIN);
    ck_assert_int_eq(tw_focus_last_change_ms(s), T0 + 60 * MIN);
    /* A second start does not move start_time. */
    ck_assert_int_eq(s->state_changes[0]->state, TW_FOCUS_RUNNING);

    ck_assert_int_eq(tw_focus_present(s, T0 + 500 * MIN, arena), TW_OK);
    ck_assert_int_eq(s->focused_duration->seconds, 38 * 60);
}
END_TEST

START_TEST(a_running_session_counts_until_now)
{
    Tw__V1__FocusSession *s = session("flowtime");
    ck_assert_int_eq(tw_focus_last_change_ms(s), T0); /* created */
    apply(s, TW_FOCUS_START, T0 + MIN);
    ck_assert_int_eq(tw_focus_focused_ms(s, T0 + 41 * MIN), 40 * MIN);
    /* A clock behind the last change counts nothing negative. */
    ck_assert_int_eq(tw_focus_focused_ms(s, T0), 0);
    ck_assert_int_eq(tw_focus_present(s, T0 + 41 * MIN, arena), TW_OK);
    /* Flowtime: the next break is a fifth of the focus so far. */
    ck_assert_int_eq(s->break_duration->seconds, 8 * 60);
}
END_TEST

START_TEST(pomodoro_takes_a_long_break_every_fourth_cycle)
{
    const Tw__V1__FocusTemplate *p = tw_focus_builtin_find("pomodoro");
    for (int cycle = 0; cycle < 12; cycle++) {
        int64_t want = (cycle + 1) % 4 == 0 ? 15 * MIN : 5 * MIN;
        ck_assert_int_eq(tw_focus_break_ms(p, cycle, 25 * MIN), want);
    }
    /* Through the machine: four cycles, the fourth break is long. */
    Tw__V1__FocusSession *s = session("pomodoro");
    int64_t t = T0;
    apply(s, TW_FOCUS_START, t);
    for (int cycle = 0; cycle < 4; cycle++) {
        t += 25 * MIN;
        apply(s, TW_FOCUS_BREAK, t);
        ck_assert_int_eq(tw_focus_present(s, t, arena), TW_OK);
        ck_assert_int_eq(s->break_duration->seconds, cycle == 3 ? 15 * 60 : 5 * 60);
        t += s->break_duration->seconds * 1000;
        apply(s, TW_FOCUS_RESUME, t);
    }
    ck_assert_int_eq(s->cycle_index, 4);
    ck_assert_int_eq(tw_focus_focused_ms(s, t), 100 * MIN);

    ck_assert_int_eq(tw_focus_break_ms(tw_focus_builtin_find("fifty_ten"), 3, 0), 10 * MIN);
    ck_assert_int_eq(tw_focus_break_ms(tw_focus_builtin_find("countdown"), 0, 25 * MIN), 0);
    ck_assert_int_eq(tw_focus_break_ms(tw_focus_builtin_find("flowtime"), 0, 50 * MIN), 10 * MIN);
}
END_TEST

struct span_count {
    int64_t total;
    int n;
};

static void count_span(void *ctx, int64_t from_ms, int64_t to_ms)
{
    struct span_count *c = ctx;
    c->total += to_ms - from_ms;
    c->n++;
}

START_TEST(running_spans)
{
    Tw__V1__FocusSession *s = session("pomodoro");
    apply(s, TW_FOCUS_START, T0);
    apply(s, TW_FOCUS_PAUSE, T0 + 5 * MIN);
    apply(s, TW_FOCUS_RESUME, T0 + 5 * MIN); /* an empty pause */
    apply(s, TW_FOCUS_PAUSE, T0 + 9 * MIN);
    apply(s, TW_FOCUS_RESUME, T0 + 10 * MIN);
    struct span_count c = {0, 0};
    tw_focus_running_spans(s, T0 + 12 * MIN, count_span, &c);
    /* [0, 5), [5, 9) and [10, 12): the empty pause splits nothing away. */
    ck_assert_int_eq(c.n, 3);
    ck_assert_int_eq(c.total, 11 * MIN);
}
END_TEST

START_TEST(changes_are_bounded)
{
    Tw__V1__FocusSession *s = session("pomodoro");
    apply(s, TW_FOCUS_START, T0);
    for (int i = 1; i < TW_FOCUS_CHANGES_MAX; i++)
        apply(s, i % 2 ? TW_FOCUS_PAUSE : TW_FOCUS_RESUME, T0 + i);
    char why[200];
    ck_assert_int_eq(tw_focus_apply(s, TW_FOCUS_COMPLETE, T0 + 5000, arena, why, sizeof why),
                     TW_ERR_FAILED_PRECONDITION);
    ck_assert_ptr_nonnull(strstr(why, "1000 state changes"));
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("focus_machine");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, every_state_and_event);
    tcase_add_test(tc, next_states);
    tcase_add_test(tc, focused_time_leaves_out_pauses_and_breaks);
    tcase_add_test(tc, a_running_session_counts_until_now);
    tcase_add_test(tc, pomodoro_takes_a_long_break_every_fourth_cycle);
    tcase_add_test(tc, running_spans);
    tcase_add_test(tc, changes_are_bounded);
    suite_add_tcase(s, tc);
    return s;
}
