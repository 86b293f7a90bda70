/* Unit tests for server/wellness/focus_templates.c: the built-in templates
 * and the rules for a user's own. */
#include "wellness/focus.h"

#include "tw_check.h"
#include "wellness_fixture.h"

#include <string.h>

static tw_arena *arena;

static void setup(void)
{
    arena = tw_arena_new(4096);
}

static void teardown(void)
{
    tw_arena_free(arena);
}

static int64_t minutes(const Google__Protobuf__Duration *d)
{
    int64_t ms = 0;
    if (d != NULL)
        ck_assert(tw_duration_to_ms(d, &ms));
    return ms / TW_MS_PER_MIN;
}

START_TEST(builtins)
{
    ck_assert_int_eq(tw_focus_builtin_count(), 4);
    const char *ids[] = {"pomodoro", "flowtime", "fifty_ten", "countdown"};
    for (size_t i = 0; i < 4; i++) {
        const Tw__V1__FocusTemplate *t = tw_focus_builtin(i);
        ck_assert_str_eq(t->id, ids[i]);
        ck_assert(t->built_in);
        ck_assert_ptr_eq(tw_focus_builtin_find(ids[i]), t);
    }
    ck_assert_ptr_null(tw_focus_builtin(4));
    ck_assert_ptr_null(tw_focus_builtin_find("Pomodoro"));
    const Tw__V1__FocusTemplate *p = tw_focus_builtin_find("pomodoro");
    ck_assert_int_eq(p->kind, TW_FOCUS_CYCLES);
    ck_assert_int_eq(minutes(p->focus_duration), 25);
    ck_assert_int_eq(minutes(p->short_break_duration), 5);
    ck_assert_int_eq(minutes(p->long_break_duration), 15);
    ck_assert_int_eq(p->long_break_every, 4);
    const Tw__V1__FocusTemplate *f = tw_focus_builtin_find("fifty_ten");
    ck_assert_int_eq(minutes(f->focus_duration), 50);
    ck_assert_int_eq(minutes(f->short_break_duration), 10);
    ck_assert_int_eq(tw_focus_builtin_find("flowtime")->kind, TW_FOCUS_FLOWTIME);
    ck_assert_ptr_null(tw_focus_builtin_find("flowtime")->focus_duration);
    ck_assert_int_eq(tw_focus_builtin_find("countdown")->kind, TW_FOCUS_COUNTDOWN);
    /* They pack: they are served as they are. */
    ck_assert_int_gt(tw__v1__focus_template__get_packed_size(p), 0);
}
END_TEST

static Tw__V1__FocusTemplate *user_template(int kind)
{
    Tw__V1__FocusTemplate *t = tw_arena_alloc(arena, sizeof *t);
    tw__v1__focus_template__init(t);
    t->display_name = "Deep work";
    t->kind = (Tw__V1__FocusTemplateKind)kind;
    if (kind != TW_FOCUS_FLOWTIME)
        t->focus_duration = tw_duration_new(arena, 90 * TW_MS_PER_MIN);
    if (kind == TW_FOCUS_CYCLES) {
        t->short_break_duration = tw_duration_new(arena, 15 * TW_MS_PER_MIN);
        t->long_break_every = 2;
    }
    return t;
}

#define ASSERT_REFUSED(t, want_field, why_part)                                                    \
    do {                                                                                           \
        tw_violations *v_ = wx_violations(arena);                                                  \
        Tw__V1__FocusTemplate *out_;                                                               \
        ck_assert_int_eq(tw_focus_template_prepare(t, arena, v_, &out_), TW_ERR_VALIDATION);       \
        WX_ASSERT_VIOLATION(v_, want_field, why_part);                                             \
    } while (0)

START_TEST(user_templates)
{
    for (int kind = TW_FOCUS_CYCLES; kind <= TW_FOCUS_COUNTDOWN; kind++) {
        Tw__V1__FocusTemplate *t = user_template(kind), *out;
        t->id = "pomodoro";
        t->built_in = true;
        ck_assert_int_eq(tw_focus_template_prepare(t, arena, wx_violations(arena), &out), TW_OK);
        ck_assert_str_eq(out->id, "");
        ck_assert(!out->built_in);
    }
    /* An empty display_name, or no template at all, is the engine's
     * (required). */
    Tw__V1__FocusTemplate *t = user_template(TW_FOCUS_CYCLES);
    t->display_name = "a name of more than a hundred characters, which is more than anyone needs "
                      "to tell one template from another";
    ASSERT_REFUSED(t, "template.display_name", "longer than 100 characters");
    t = user_template(TW_FOCUS_CYCLES);
    t->focus_duration = tw_duration_new(arena, 30000);
    ASSERT_REFUSED(t, "template.focus_duration", "between 1 minute and 4 hours");
    t = user_template(TW_FOCUS_CYCLES);
    t->focus_duration = NULL;
    ASSERT_REFUSED(t, "template.focus_duration", "between 1 minute and 4 hours");
    t = user_template(TW_FOCUS_CYCLES);
    t->long_break_duration = tw_duration_new(arena, 3 * TW_MS_PER_HOUR);
    ASSERT_REFUSED(t, "template.long_break_duration", "between 0 and 2 hours");
    t = user_template(TW_FOCUS_CYCLES);
    t->long_break_every = 13;
    ASSERT_REFUSED(t, "template.long_break_every", "between 0 and 12");
    t = user_template(TW_FOCUS_FLOWTIME);
    t->focus_duration = tw_duration_new(arena, TW_MS_PER_HOUR);
    ASSERT_REFUSED(t, "template.focus_duration", "not used by flowtime");
    t = user_template(TW_FOCUS_COUNTDOWN);
    t->short_break_duration = tw_duration_new(arena, TW_MS_PER_MIN);
    ASSERT_REFUSED(t, "template.short_break_duration", "not used by countdown");
    t = user_template(TW_FOCUS_COUNTDOWN);
    t->kind = 0;
    ASSERT_REFUSED(t, "template.kind", "is required");
    t->kind = (Tw__V1__FocusTemplateKind)7;
    ASSERT_REFUSED(t, "template.kind", "is unknown");

    /* Every bad field at once. */
    t = user_template(TW_FOCUS_CYCLES);
    t->focus_duration = NULL;
    t->long_break_every = 13;
    tw_violations *v = wx_violations(arena);
    Tw__V1__FocusTemplate *out;
    ck_assert_int_eq(tw_focus_template_prepare(t, arena, v, &out), TW_ERR_VALIDATION);
    ck_assert_uint_eq(tw_violations_total(v), 2);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("focus_templates");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, builtins);
    tcase_add_test(tc, user_templates);
    suite_add_tcase(s, tc);
    return s;
}
