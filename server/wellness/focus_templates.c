/*
 * Focus templates: the built-in ones, the rules for the user's own, and
 * the user's own in the store. A user template is FOCUS_TEMPLATE(user,
 * id), a FocusTemplateRecord read and written through tw_owned.h; a user
 * has at most TW_FOCUS_USER_TEMPLATES_MAX of them, so they are always read
 * whole. Writes append "focus_template" changes.
 */
#include "focus.h"

#include "tw_changelog.h"
#include "tw_owned.h"

#include <stdlib.h>
#include <string.h>

#define TEMPLATE_CHANGE        "focus_template"
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

/* ---- The rules ----------------------------------------------------------------- */

/* An optional duration field between min and max (0 when unset). */
static void check_length(tw_violations *v, const char *field, const Google__Protobuf__Duration *d,
                         int64_t min_ms, int64_t max_ms, const char *range)
{
    int64_t ms = 0;
    if (d != NULL && !tw_duration_to_ms(d, &ms))
        tw_violations_add(v, field, "is not a valid duration");
    else if (ms < min_ms || ms > max_ms)
        tw_violations_add(v, field, "must be %s", range);
}

/* A field that the template's kind does not use must be left unset. */
static void check_unused(tw_violations *v, const char *field, bool set, const char *kind)
{
    if (set)
        tw_violations_add(v, field, "is not used by %s templates", kind);
}

static bool nonzero(const Google__Protobuf__Duration *d)
{
    return d != NULL && (d->seconds != 0 || d->nanos != 0);
}

/* The fields of in's kind (in->kind known). */
static void check_kind(const Tw__V1__FocusTemplate *in, tw_violations *v)
{
    if (in->kind == TW_FOCUS_CYCLES || in->kind == TW_FOCUS_COUNTDOWN)
        check_length(v, "focus_duration", in->focus_duration, FOCUS_MIN_MS, FOCUS_MAX_MS,
                     "between 1 minute and 4 hours");
    if (in->kind == TW_FOCUS_CYCLES) {
        check_length(v, "short_break_duration", in->short_break_duration, 0, BREAK_MAX_MS,
                     "between 0 and 2 hours");
        check_length(v, "long_break_duration", in->long_break_duration, 0, BREAK_MAX_MS,
                     "between 0 and 2 hours");
        if (in->long_break_every < 0 || in->long_break_every > LONG_BREAK_EVERY_MAX)
            tw_violations_add(v, "long_break_every", "must be between 0 and %d",
                              LONG_BREAK_EVERY_MAX);
        return;
    }
    /* Flowtime and countdown: no planned breaks; flowtime no timer either. */
    const char *kind = in->kind == TW_FOCUS_FLOWTIME ? "flowtime" : "countdown";
    if (in->kind == TW_FOCUS_FLOWTIME)
        check_unused(v, "focus_duration", in->focus_duration != NULL, kind);
    check_unused(v, "short_break_duration", nonzero(in->short_break_duration), kind);
    check_unused(v, "long_break_duration", nonzero(in->long_break_duration), kind);
    check_unused(v, "long_break_every", in->long_break_every != 0, kind);
}

tw_err tw_focus_template_prepare(const Tw__V1__FocusTemplate *in, tw_arena *arena,
                                 tw_violations *v, Tw__V1__FocusTemplate **out)
{
    *out = NULL;
    size_t before = tw_violations_total(v);
    const char *outer = tw_wellness_prefix(v, "template.");
    /* display_name is required by the engine. */
    tw_wellness_check_text(v, "display_name", in->display_name, DISPLAY_NAME_MAX_CHARS, false);
    if (in->kind == TW_FOCUS_CYCLES || in->kind == TW_FOCUS_FLOWTIME ||
        in->kind == TW_FOCUS_COUNTDOWN)
        check_kind(in, v);
    else
        tw_violations_add(v, "kind", in->kind == 0 ? "is required" : "is unknown");
    v->prefix = outer;
    if (tw_violations_total(v) > before)
        return TW_ERR_VALIDATION;
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

/* ---- The user's own in the store ---------------------------------------------- */

/* The template of a stored record. */
static tw_err unwrap(ProtobufCMessage *msg, Tw__V1__FocusTemplate **out)
{
    const Tw__Store__V1__FocusTemplateRecord *rec = (const void *)msg;
    *out = rec->template_;
    return *out != NULL ? TW_OK : TW_ERR_DB_CORRUPT;
}

static tw_err not_found(tw_wellness_env *env, const char *id)
{
    return tw_wellness_refuse(env, TW_ERR_NOT_FOUND, "focus template %s not found", id);
}

tw_err tw_focus_template_find(tw_txn *t, tw_wellness_env *env, const char *template_id,
                              Tw__V1__FocusTemplate **out)
{
    const Tw__V1__FocusTemplate *builtin = tw_focus_builtin_find(template_id);
    if (builtin != NULL) {
        *out = (Tw__V1__FocusTemplate *)builtin;
        return TW_OK;
    }
    tw_id id;
    ProtobufCMessage *msg;
    if (!tw_id_parse(template_id, &id)) /* tw_focus_check_new refused it */
        return not_found(env, template_id);
    tw_err err = tw_owned_get(NULL, t, TW_KF_FOCUS_TEMPLATE, &env->user, &id, env->arena, &msg);
    if (err == TW_ERR_NOT_FOUND)
        return not_found(env, template_id);
    return err ? err : unwrap(msg, out);
}

/* The user's templates, in arena (committed data: writes of the user are
 * serialised, so nothing of theirs is on its way). */
static tw_err user_templates(tw_wellness_env *env, Tw__V1__FocusTemplate ***out, size_t *count)
{
    *count = 0;
    size_t cap = 16;
    Tw__V1__FocusTemplate **list = tw_arena_alloc(env->arena, cap * sizeof *list);
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_FOCUS_TEMPLATE);
    tw_key_id(&prefix, &env->user);
    tw_store_iter *it;
    tw_err err = list ? tw_store_scan(env->store, &prefix, NULL, 0, false, &it) : TW_ERR_NO_MEMORY;
    if (err)
        return err;
    while (tw_store_iter_next(it)) {
        tw_value v;
        if ((err = tw_store_iter_value(it, env->arena, &v)))
            break;
        if (*count == cap) {
            Tw__V1__FocusTemplate **bigger = tw_arena_alloc(env->arena, 2 * cap * sizeof *bigger);
            if (bigger == NULL) {
                err = TW_ERR_NO_MEMORY;
                break;
            }
            memcpy(bigger, list, cap * sizeof *list);
            list = bigger;
            cap *= 2;
        }
        if ((err = unwrap(v.msg, &list[*count])))
            break;
        (*count)++;
    }
    tw_err close_err = tw_store_iter_close(it);
    *out = list;
    return err ? err : close_err;
}

tw_err tw_focus_template_create(tw_txn *t, tw_wellness_env *env, const Tw__V1__FocusTemplate *tmpl,
                                const tw_id *id, Tw__V1__FocusTemplate **out)
{
    *out = NULL;
    tw_id new_id = id != NULL ? *id : tw_id_new();
    char *id_text = tw_arena_alloc(env->arena, TW_ID_TEXT_SIZE);
    if (id_text == NULL)
        return TW_ERR_NO_MEMORY;
    tw_id_format(&new_id, id_text);
    tw_err err;
    if (id != NULL) {
        err = tw_owned_check(NULL, t, TW_KF_FOCUS_TEMPLATE, &env->user, &new_id);
        if (err == TW_OK)
            return tw_wellness_refuse(env, TW_ERR_ALREADY_EXISTS,
                                      "focus template %s already exists", id_text);
        if (err != TW_ERR_NOT_FOUND)
            return err;
    }
    Tw__V1__FocusTemplate **mine;
    size_t count;
    if ((err = user_templates(env, &mine, &count)))
        return err;
    if (count >= TW_FOCUS_USER_TEMPLATES_MAX)
        return tw_wellness_refuse(
            env, TW_ERR_FAILED_PRECONDITION,
            "there are already %d templates of yours, the most allowed: delete one first",
            TW_FOCUS_USER_TEMPLATES_MAX);
    Tw__V1__FocusTemplate *stored = tw_arena_alloc(env->arena, sizeof *stored);
    if (stored == NULL)
        return TW_ERR_NO_MEMORY;
    *stored = *tmpl;
    stored->id = id_text;
    if ((stored->create_time = tw_timestamp_new(env->arena, env->now_ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    Tw__Store__V1__FocusTemplateRecord rec = TW__STORE__V1__FOCUS_TEMPLATE_RECORD__INIT;
    rec.template_ = stored;
    if ((err = tw_owned_put(t, TW_KF_FOCUS_TEMPLATE, &env->user, &new_id, &rec.base)) ||
        (err = tw_txn_changelog_append(t, &env->user, TEMPLATE_CHANGE, &new_id, TW_CHANGE_UPSERT,
                                       NULL)))
        return err;
    *out = stored;
    return TW_OK;
}

tw_err tw_focus_template_delete(tw_txn *t, tw_wellness_env *env, const tw_id *id)
{
    tw_err err = tw_owned_check(NULL, t, TW_KF_FOCUS_TEMPLATE, &env->user, id);
    if (err == TW_ERR_NOT_FOUND) {
        char text[TW_ID_TEXT_SIZE];
        tw_id_format(id, text);
        return not_found(env, text);
    }
    if (err || (err = tw_owned_delete(t, TW_KF_FOCUS_TEMPLATE, &env->user, id)))
        return err;
    return tw_txn_changelog_append(t, &env->user, TEMPLATE_CHANGE, id, TW_CHANGE_TOMBSTONE, NULL);
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

tw_err tw_focus_template_list(tw_wellness_env *env, const uint8_t *cursor, size_t cursor_len,
                              uint32_t limit, Tw__V1__FocusTemplate ***templates, size_t *count,
                              const uint8_t **next, size_t *next_len)
{
    *count = 0;
    *next = NULL;
    *next_len = 0;
    /* The list is short, so its cursor is the offset of the next template
     * (4 bytes, big-endian). */
    uint32_t offset = 0;
    if (cursor_len == 4)
        offset = (uint32_t)cursor[0] << 24 | (uint32_t)cursor[1] << 16 | (uint32_t)cursor[2] << 8 |
                 cursor[3];
    else if (cursor_len != 0)
        return TW_ERR_BAD_PAGE_TOKEN;
    Tw__V1__FocusTemplate **mine;
    size_t nmine;
    tw_err err = user_templates(env, &mine, &nmine);
    if (err)
        return err;
    qsort(mine, nmine, sizeof *mine, cmp_created);
    size_t total = tw_focus_builtin_count() + nmine;
    Tw__V1__FocusTemplate **page = tw_arena_alloc(env->arena, (limit + 1) * sizeof *page);
    uint8_t *after = tw_arena_alloc(env->arena, 4);
    if (page == NULL || after == NULL)
        return TW_ERR_NO_MEMORY;
    size_t i = offset;
    for (; i < total && *count < limit; i++)
        page[(*count)++] = i < tw_focus_builtin_count()
                               ? (Tw__V1__FocusTemplate *)tw_focus_builtin(i)
                               : mine[i - tw_focus_builtin_count()];
    *templates = page;
    if (i < total) {
        after[0] = (uint8_t)(i >> 24), after[1] = (uint8_t)(i >> 16);
        after[2] = (uint8_t)(i >> 8), after[3] = (uint8_t)i;
        *next = after;
        *next_len = 4;
    }
    return TW_OK;
}
