/*
 * Unit tests for server/wellness/focus_stats.c over a week of generated
 * sessions whose figures are worked out by hand below: sessions and
 * outcomes by start day and hour, focused time split across hours and
 * days (and cut at the range's edges), completion rate, best hours,
 * distractions by type, average focused time.
 */
#include "wellness/focus.h"

#include "tw_check.h"

#define MIN  TW_MS_PER_MIN
#define HOUR TW_MS_PER_HOUR
#define DAY  TW_MS_PER_DAY

static tw_arena *arena;
static int32_t first_day; /* 2024-06-03, a Monday */

static void setup(void)
{
    arena = tw_arena_new(4096);
    first_day = tw_date_to_day(2024, 6, 3);
}

static void teardown(void)
{
    tw_arena_free(arena);
}

/* A session through a list of (event, minutes after start). */
struct step {
    tw_focus_event ev;
    int64_t at_min;
};

static Tw__V1__FocusSession *run(int64_t start_ms, const struct step *steps, size_t n,
                                 const int *distractions, size_t nd)
{
    Tw__V1__FocusSession *s = tw_arena_alloc(arena, sizeof *s);
    tw__v1__focus_session__init(s);
    s->template_id = "pomodoro";
    s->state = TW_FOCUS_PLANNED;
    s->create_time = tw_timestamp_new(arena, start_ms);
    char why[200];
    ck_assert_int_eq(tw_focus_apply(s, TW_FOCUS_START, start_ms, arena, why, sizeof why), TW_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(tw_focus_apply(s, steps[i].ev, start_ms + steps[i].at_min * MIN, arena,
                                        why, sizeof why),
                         TW_OK);
    s->distractions = tw_arena_alloc(arena, (nd + 1) * sizeof *s->distractions);
    for (size_t i = 0; i < nd; i++) {
        Tw__V1__FocusDistraction *d = tw_arena_alloc(arena, sizeof *d);
        tw__v1__focus_distraction__init(d);
        d->type = (Tw__V1__FocusDistractionType)distractions[i];
        s->distractions[i] = d;
    }
    s->n_distractions = nd;
    return s;
}

/* Counts a session; counting never fails in a known zone. */
#define ADD(...) ck_assert_int_eq(tw_focus_stats_add(__VA_ARGS__), TW_OK)

enum {
    PHONE = TW__V1__FOCUS_DISTRACTION_TYPE__FOCUS_DISTRACTION_TYPE_PHONE,
    INTERNAL = TW__V1__FOCUS_DISTRACTION_TYPE__FOCUS_DISTRACTION_TYPE_INTERNAL,
};

START_TEST(a_week_of_sessions)
{
    tw_day_settings clock = {"UTC", 0};
    tw_focus_stats st;
    ck_assert_int_eq(tw_focus_stats_init(&st, &clock, first_day, 7, arena), TW_OK);
    int64_t now = (first_day + 8) * DAY;

    /* Every day: a pomodoro at 09:00 (25 on, a 5-minute break, 25 on,
     * completed: 50 minutes, one phone distraction) and a session at 14:30
     * (40 on, 10 paused, 10 on, abandoned: 50 minutes, two internal
     * distractions on even days). */
    static const struct step morning[] = {
        {TW_FOCUS_BREAK, 25}, {TW_FOCUS_RESUME, 30}, {TW_FOCUS_COMPLETE, 55}};
    static const struct step afternoon[] = {
        {TW_FOCUS_PAUSE, 40}, {TW_FOCUS_RESUME, 50}, {TW_FOCUS_ABANDON, 60}};
    const int phone[] = {PHONE}, internal[] = {INTERNAL, INTERNAL};
    for (int d = 0; d < 7; d++) {
        int64_t day = (first_day + d) * DAY;
        ADD(&st, run(day + 9 * HOUR, morning, 3, phone, 1), now);
        ADD(&st, run(day + 14 * HOUR + 30 * MIN, afternoon, 3, internal, d % 2 == 0 ? 2 : 0), now);
    }
    /* Late on the last day: 20 minutes from 23:50, half after the range. */
    static const struct step late[] = {{TW_FOCUS_COMPLETE, 20}};
    ADD(&st, run((first_day + 7) * DAY - 10 * MIN, late, 1, NULL, 0), now);
    /* Started before the range (23:30 the day before, 50 minutes): its 20
     * minutes after midnight count, the session itself does not. */
    static const struct step early[] = {{TW_FOCUS_COMPLETE, 50}};
    ADD(&st, run(first_day * DAY - 30 * MIN, early, 1, phone, 1), now);
    /* A planned session counts for nothing. */
    Tw__V1__FocusSession planned = TW__V1__FOCUS_SESSION__INIT;
    planned.state = TW_FOCUS_PLANNED;
    ADD(&st, &planned, now);

    ck_assert_int_eq(st.sessions, 15);
    ck_assert_int_eq(st.completed, 8);
    ck_assert_int_eq(st.abandoned, 7);
    ck_assert_double_eq_tol(tw_focus_stats_completion_rate(&st), 8.0 / 15, 1e-12);
    ck_assert_int_eq(st.focused_ms, (7 * 100 + 10 + 20) * MIN);
    ck_assert_int_eq(st.day_focused_ms[0], 120 * MIN);
    for (int d = 1; d < 6; d++)
        ck_assert_int_eq(st.day_focused_ms[d], 100 * MIN);
    ck_assert_int_eq(st.day_focused_ms[6], 110 * MIN);
    ck_assert_int_eq(st.day_sessions[0], 2);
    ck_assert_int_eq(st.day_sessions[6], 3);
    ck_assert_int_eq(st.day_completed[6], 2);
    /* 09:00-09:25 and 09:30-09:55; 14:30-15:10 and 15:20-15:30. */
    ck_assert_int_eq(st.hour_focused_ms[9], 7 * 50 * MIN);
    ck_assert_int_eq(st.hour_focused_ms[14], 7 * 30 * MIN);
    ck_assert_int_eq(st.hour_focused_ms[15], 7 * 20 * MIN);
    ck_assert_int_eq(st.hour_focused_ms[23], 10 * MIN);
    ck_assert_int_eq(st.hour_focused_ms[0], 20 * MIN);
    ck_assert_int_eq(st.hour_sessions[9], 7);
    ck_assert_int_eq(st.hour_completed[9], 7);
    ck_assert_int_eq(st.hour_sessions[14], 7);
    ck_assert_int_eq(st.hour_completed[14], 0);
    int32_t best[3];
    size_t n;
    tw_focus_stats_best_hours(&st, best, &n);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(best[0], 9);
    ck_assert_int_eq(best[1], 14);
    ck_assert_int_eq(best[2], 15);
    ck_assert_int_eq(st.distractions[PHONE], 7);
    ck_assert_int_eq(st.distractions[INTERNAL], 8);
    /* Ended sessions started in the range: 7 x 50, 7 x 50 and 20 minutes. */
    ck_assert_int_eq(st.ended, 15);
    ck_assert_int_eq(st.ended_focused_ms / st.ended, 48 * MIN);
}
END_TEST

START_TEST(hours_are_local_and_days_start_late)
{
    /* Paris in June is UTC+2; days start at 05:00. A session from 04:30 to
     * 05:30 Paris time on June 4 belongs, started, to June 3 and splits
     * its focus between June 3 (04:30-05:00) and June 4. */
    tw_day_settings clock = {"Europe/Paris", 5};
    tw_focus_stats st;
    ck_assert_int_eq(tw_focus_stats_init(&st, &clock, first_day, 2, arena), TW_OK);
    int64_t start = (first_day + 1) * DAY + 2 * HOUR + 30 * MIN; /* 04:30 CEST */
    static const struct step one[] = {{TW_FOCUS_COMPLETE, 60}};
    ADD(&st, run(start, one, 1, NULL, 0), start + DAY);
    ck_assert_int_eq(st.day_sessions[0], 1);
    ck_assert_int_eq(st.day_focused_ms[0], 30 * MIN);
    ck_assert_int_eq(st.day_focused_ms[1], 30 * MIN);
    ck_assert_int_eq(st.hour_focused_ms[4], 30 * MIN);
    ck_assert_int_eq(st.hour_focused_ms[5], 30 * MIN);
    ck_assert_int_eq(st.hour_sessions[4], 1);
}
END_TEST

START_TEST(a_running_session_counts_until_now)
{
    tw_day_settings clock = {"UTC", 0};
    tw_focus_stats st;
    ck_assert_int_eq(tw_focus_stats_init(&st, &clock, first_day, 1, arena), TW_OK);
    int64_t start = first_day * DAY + 10 * HOUR;
    ADD(&st, run(start, NULL, 0, NULL, 0), start + 42 * MIN);
    ck_assert_int_eq(st.focused_ms, 42 * MIN);
    ck_assert_int_eq(st.sessions, 1);
    ck_assert_int_eq(st.ended, 0);
    ck_assert_double_eq(tw_focus_stats_completion_rate(&st), 0);
    int32_t best[3];
    size_t n;
    tw_focus_stats_best_hours(&st, best, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(best[0], 10);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("focus_stats");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_week_of_sessions);
    tcase_add_test(tc, hours_are_local_and_days_start_late);
    tcase_add_test(tc, a_running_session_counts_until_now);
    suite_add_tcase(s, tc);
    return s;
}
