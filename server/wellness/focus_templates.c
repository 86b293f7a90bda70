/* Focus templates: the built-in ones and the rules for the user's own. */
#include "focus.h"

#include <string.h>

#define DISPLAY_NAME_MAX_CHARS 100
#define FOCUS_MIN_MS           TW_MS_PER_MIN
#define FOCUS_MAX_MS           (4 * TW_MS_PER_HOUR)
#define BREAK_MAX_MS           (2 * TW_MS_PER_HOUR)
#define LONG_BREAK_EVERY_MAX   12

#define MINUTES(n)                                                                                 \
    {                                                                                              \
        PROTOBUF_C_MESSAGE_INIT(&google__protobuf__duration__descriptor), (n)*60, 0                \
    }

static Google__Protobuf__Duration m5 = MINUTES(5), m10 = MINUTES(10), m15 = MINUTES(15),
                                  m25 = MINUTES(25), m50 = MINUTES(50);

/* In field order: id, display_name, kind, focus, short break, long break,
 * long break every, built_in, create_time. */
#define TEMPLATE(id, name, kind, focus, short_break, long_break, every)                            \
    {                                                                                              \
        PROTOBUF_C_MESSAGE_INIT(&tw__v1__focus_template__descriptor), id, name, kind, focus,       \
            short_break, long_break, every, true, NULL                                             \
    }

static Tw__V1__FocusTemplate builtins[] = {
    TEMPLATE("pomodoro", "Pomodoro", TW_FOCUS_CYCLES, &m25, &m5, &m15, 4),
    TEMPLATE("flowtime", "Flowtime", TW_FOCUS_FLOWTIME, NULL, NULL, NULL, 0),
    TEMPLATE("fifty_ten", "50/10", TW_FOCUS_CYCLES, &m50, &m10, &m10, 0),
    TEMPLATE("countdown", "Countdown", TW_FOCUS_COUNTDOWN, &m25, NULL, NULL, 0),
};

#define NBUILTINS (sizeof builtins / sizeof builtins[0])

size_t tw_focus_builtin_count(void)
{
    return NBUILTINS;
}

const Tw__V1__FocusTemplate *tw_focus_builtin(size_t i)
{
    return i < NBUILTINS ? &builtins[i] : NULL;
}

const Tw__V1__FocusTemplate *tw_focus_builtin_find(const char *id)
{
    for (size_t i = 0; i < NBUILTINS; i++)
        if (strcmp(builtins[i].id, id) == 0)
            return &builtins[i];
    return NULL;
}

/* An optional duration field between min and max; 0 when unset. */
static tw_err check_length(tw_bad_field *bad, const char *field,
                           const Google__Protobuf__Duration *d, int64_t min_ms, int64_t max_ms,
                           const char *range)
{
    int64_t ms = 0;
    if (d != NULL && !tw_duration_to_ms(d, &ms))
        return tw_bad(bad, "template.", field, "is not a valid duration");
    if (ms < min_ms || ms > max_ms)
        return tw_bad(bad, "template.", field, "must be %s", range);
    return TW_OK;
}

/* A field that the template's kind does not use must be left unset. */
static tw_err check_unused(tw_bad_field *bad, const char *field, bool set, const char *kind)
{
    return set ? tw_bad(bad, "template.", field, "is not used by %s templates", kind) : TW_OK;
}

static bool nonzero(const Google__Protobuf__Duration *d)
{
    return d != NULL && (d->seconds != 0 || d->nanos != 0);
}

tw_err tw_focus_template_prepare(const Tw__V1__FocusTemplate *in, tw_arena *arena,
                                 tw_bad_field *bad, Tw__V1__FocusTemplate **out)
{
    *out = NULL;
    if (in == NULL)
        return tw_bad(bad, "", "template", "is required");
    tw_err err = tw_check_text(bad, "template.", "display_name", in->display_name,
                               DISPLAY_NAME_MAX_CHARS, true);
    if (err)
        return err;
    switch (in->kind) {
    case TW_FOCUS_CYCLES:
        if ((err = check_length(bad, "focus_duration", in->focus_duration, FOCUS_MIN_MS,
                                FOCUS_MAX_MS, "between 1 minute and 4 hours")) ||
            (err = check_length(bad, "short_break_duration", in->short_break_duration, 0,
                                BREAK_MAX_MS, "between 0 and 2 hours")) ||
            (err = check_length(bad, "long_break_duration", in->long_break_duration, 0,
                                BREAK_MAX_MS, "between 0 and 2 hours")))
            return err;
        if (in->long_break_every < 0 || in->long_break_every > LONG_BREAK_EVERY_MAX)
            return tw_bad(bad, "template.", "long_break_every", "must be between 0 and %d",
                          LONG_BREAK_EVERY_MAX);
        break;
    case TW_FOCUS_COUNTDOWN:
        if ((err = check_length(bad, "focus_duration", in->focus_duration, FOCUS_MIN_MS,
                                FOCUS_MAX_MS, "between 1 minute and 4 hours")))
            return err;
        /* fall through: no breaks either */
        __attribute__((fallthrough));
    case TW_FOCUS_FLOWTIME: {
        const char *kind = in->kind == TW_FOCUS_FLOWTIME ? "flowtime" : "countdown";
        if ((in->kind == TW_FOCUS_FLOWTIME &&
             (err = check_unused(bad, "focus_duration", in->focus_duration != NULL, kind))) ||
            (err = check_unused(bad, "short_break_duration", nonzero(in->short_break_duration),
                                kind)) ||
            (err = check_unused(bad, "long_break_duration", nonzero(in->long_break_duration),
                                kind)) ||
            (err = check_unused(bad, "long_break_every", in->long_break_every != 0, kind)))
            return err;
        break;
    }
    default:
        return tw_bad(bad, "template.", "kind", in->kind == 0 ? "is required" : "is unknown");
    }
    Tw__V1__FocusTemplate *t = tw_arena_alloc(arena, sizeof *t);
    if (t == NULL)
        return TW_ERR_NO_MEMORY;
    *t = *in;
    t->id = (char *)protobuf_c_empty_string;
    t->built_in = false;
    t->create_time = NULL;
    if (in->kind != TW_FOCUS_CYCLES) {
        t->short_break_duration = NULL;
        t->long_break_duration = NULL;
    }
    *out = t;
    return TW_OK;
}
