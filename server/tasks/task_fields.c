/* Task fields, masks and value helpers (task_fields.h). */
#include "task_fields.h"

#include "recurrence.h"
#include "tw_utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Timestamps are accepted from year 1 to 9999, as protobuf defines them. */
#define TS_MIN_SECONDS INT64_C(-62135596800)
#define TS_MAX_SECONDS INT64_C(253402300799)
#define ESTIMATE_MAX_S (366 * INT64_C(86400))

/* ---- Fields and masks ------------------------------------------------------ */

const tw_mask_path tw_task_mask_paths[] = {
    {"title", TW_TF_TITLE, NULL},
    {"notes", TW_TF_NOTES, NULL},
    {"status", TW_TF_STATUS, NULL},
    {"priority", TW_TF_PRIORITY, NULL},
    {"due", TW_TF_DUE, NULL},
    {"deadline_time", TW_TF_DEADLINE, NULL},
    {"estimated_duration", TW_TF_ESTIMATE, NULL},
    {"labels", TW_TF_LABELS, NULL},
    {"order_key", TW_TF_ORDER_KEY, NULL},
    {"recurrence", TW_TF_RECURRENCE, NULL},
    {"parent_id", TW_TF_PARENT, "use MoveTask"},
    {NULL},
};

void tw_task_check_new_id(const char *id, bool required, const char *field, tw_violations *v)
{
    tw_id parsed;
    if (id[0] == '\0' && !required)
        return;
    if (!tw_id_parse(id, &parsed) || !tw_id_is_v7(&parsed))
        tw_violations_add(v, field, "must be a UUIDv7 the client made");
}

const char *tw_task_field_name(unsigned field)
{
    return tw_mask_path_of(tw_task_mask_paths, field);
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

static bool timestamp_ok(const Google__Protobuf__Timestamp *t)
{
    return t->seconds >= TS_MIN_SECONDS && t->seconds <= TS_MAX_SECONDS && t->nanos >= 0 &&
           t->nanos <= 999999999;
}

/* The field path prefix + name, in the violation list's arena. */
static const char *path(tw_violations *v, const char *prefix, const char *name)
{
    return tw_arena_printf(v->arena, "%s%s", prefix, name);
}

static void validate_due(Tw__V1__TaskDue *due, const char *prefix, tw_violations *v)
{
    switch (due->value_case) {
    case TW__V1__TASK_DUE__VALUE_DATE:
        if (!tw_calendar_date_valid(due->date))
            tw_violations_add(v, path(v, prefix, "due.date"), "is not a valid date");
        break;
    case TW__V1__TASK_DUE__VALUE_TIME:
        if (!timestamp_ok(due->time))
            tw_violations_add(v, path(v, prefix, "due.time"), "is out of range");
        break;
    default:
        tw_violations_add(v, path(v, prefix, "due"), "needs a date or a time");
    }
    if (due->time_zone[0] != '\0' && !tw_tz_known(due->time_zone))
        tw_violations_add(v, path(v, prefix, "due.time_zone"),
                          "\"%.64s\" is not an IANA time zone (like \"Europe/Berlin\")",
                          due->time_zone);
}

static void validate_recurrence(const Tw__V1__TaskRecurrence *r, const char *prefix,
                                tw_violations *v)
{
    char why[200];
    if (!tw_rrule_check(r->rrule, why, sizeof why))
        tw_violations_add(v, path(v, prefix, "recurrence.rrule"), "%s", why);
    for (size_t i = 0; i < r->n_exception_dates; i++) {
        if (!tw_calendar_date_valid(r->exception_dates[i])) {
            tw_violations_add(v, path(v, prefix, "recurrence.exception_dates"),
                              "date %zu is not a valid date", i);
            break;
        }
    }
}

/* Labels: checked, and duplicates dropped in place (first one kept). */
static void validate_labels(Tw__V1__Task *t, const char *prefix, tw_violations *v)
{
    size_t kept = 0;
    for (size_t i = 0; i < t->n_labels; i++) {
        const char *label = t->labels[i];
        size_t chars = tw_utf8_chars(label);
        if (chars == 0 || chars > TW_TASK_LABEL_MAX || strchr(label, ',') != NULL || blank(label)) {
            tw_violations_add(v, path(v, prefix, "labels"),
                              "label %zu must be 1 to %d characters, not blank, without commas", i,
                              TW_TASK_LABEL_MAX);
            return;
        }
        bool dup = false;
        for (size_t j = 0; j < kept && !dup; j++)
            dup = strcmp(t->labels[j], label) == 0;
        if (!dup)
            t->labels[kept++] = t->labels[i];
    }
    t->n_labels = kept;
}

tw_err tw_task_validate(Tw__V1__Task *t, unsigned fields, bool creating, const char *prefix,
                        tw_violations *v)
{
    size_t before = tw_violations_total(v);
    if (fields & TW_TF_TITLE) {
        size_t chars = tw_utf8_chars(t->title);
        if (chars == 0 || blank(t->title))
            tw_violations_add(v, path(v, prefix, "title"), "is required");
        else if (chars > TW_TASK_TITLE_MAX)
            tw_violations_add(v, path(v, prefix, "title"), "is longer than %d characters",
                              TW_TASK_TITLE_MAX);
    }
    if ((fields & TW_TF_NOTES) && tw_utf8_chars(t->notes) > TW_TASK_NOTES_MAX)
        tw_violations_add(v, path(v, prefix, "notes"), "is longer than %d characters",
                          TW_TASK_NOTES_MAX);
    if (fields & TW_TF_STATUS) {
        if (creating && t->status == TW__V1__TASK_STATUS__TASK_STATUS_UNSPECIFIED)
            t->status = TW__V1__TASK_STATUS__TASK_STATUS_TODO;
        if (t->status == TW__V1__TASK_STATUS__TASK_STATUS_DONE)
            tw_violations_add(v, path(v, prefix, "status"),
                              "cannot be set to DONE: complete the task with CompleteTask");
        else if (t->status != TW__V1__TASK_STATUS__TASK_STATUS_TODO &&
                 t->status != TW__V1__TASK_STATUS__TASK_STATUS_IN_PROGRESS &&
                 t->status != TW__V1__TASK_STATUS__TASK_STATUS_ARCHIVED)
            tw_violations_add(v, path(v, prefix, "status"),
                              "must be TODO, IN_PROGRESS or ARCHIVED");
    }
    if (fields & TW_TF_PRIORITY) {
        if (creating && t->priority == 0)
            t->priority = TW_TASK_PRIORITY_LOWEST;
        if (t->priority < 1 || t->priority > TW_TASK_PRIORITY_LOWEST)
            tw_violations_add(v, path(v, prefix, "priority"), "must be 1 (highest) to 4 (lowest)");
    }
    if ((fields & TW_TF_DUE) && t->due != NULL)
        validate_due(t->due, prefix, v);
    if ((fields & TW_TF_DEADLINE) && t->deadline_time != NULL && !timestamp_ok(t->deadline_time))
        tw_violations_add(v, path(v, prefix, "deadline_time"), "is out of range");
    if ((fields & TW_TF_ESTIMATE) && t->estimated_duration != NULL) {
        const Google__Protobuf__Duration *d = t->estimated_duration;
        if (d->seconds < 0 || d->nanos < 0 || d->nanos > 999999999 || d->seconds > ESTIMATE_MAX_S)
            tw_violations_add(v, path(v, prefix, "estimated_duration"),
                              "must be between 0 and 366 days");
    }
    if (fields & TW_TF_LABELS)
        validate_labels(t, prefix, v);
    if ((fields & TW_TF_ORDER_KEY) && t->order_key[0] != '\0' && !tw_order_key_valid(t->order_key))
        tw_violations_add(v, path(v, prefix, "order_key"),
                          "must be 1 to %d characters of [0-9A-Za-z], not ending in \"0\"",
                          TW_TASK_ORDER_KEY_MAX);
    if ((fields & TW_TF_RECURRENCE) && t->recurrence != NULL)
        validate_recurrence(t->recurrence, prefix, v);
    tw_id parent;
    if ((fields & TW_TF_PARENT) && t->parent_id[0] != '\0' &&
        !tw_task_parse_id(t->parent_id, &parent))
        tw_violations_add(v, path(v, prefix, "parent_id"), "is not a task id (a UUID)");
    return tw_violations_total(v) > before ? TW_ERR_VALIDATION : TW_OK;
}

void tw_task_copy_fields(Tw__V1__Task *dst, const Tw__V1__Task *src, unsigned fields)
{
    if (fields & TW_TF_TITLE)
        dst->title = src->title;
    if (fields & TW_TF_NOTES)
        dst->notes = src->notes;
    if (fields & TW_TF_STATUS)
        dst->status = src->status;
    if (fields & TW_TF_PRIORITY)
        dst->priority = src->priority;
    if (fields & TW_TF_DUE)
        dst->due = src->due;
    if (fields & TW_TF_DEADLINE)
        dst->deadline_time = src->deadline_time;
    if (fields & TW_TF_ESTIMATE)
        dst->estimated_duration = src->estimated_duration;
    if (fields & TW_TF_LABELS) {
        dst->labels = src->labels;
        dst->n_labels = src->n_labels;
    }
    if (fields & TW_TF_ORDER_KEY)
        dst->order_key = src->order_key;
    if (fields & TW_TF_RECURRENCE)
        dst->recurrence = src->recurrence;
    if (fields & TW_TF_PARENT)
        dst->parent_id = src->parent_id;
}

/* ---- Values -------------------------------------------------------------------- */

Tw__V1__CalendarDate *tw_calendar_date_new(tw_arena *arena, int32_t day)
{
    Tw__V1__CalendarDate *d = tw_arena_alloc(arena, sizeof *d);
    if (d == NULL)
        return NULL;
    tw__v1__calendar_date__init(d);
    int y, m, dd;
    tw_day_to_date(day, &y, &m, &dd);
    d->year = y;
    d->month = m;
    d->day = dd;
    return d;
}

bool tw_calendar_date_valid(const Tw__V1__CalendarDate *d)
{
    return d != NULL && tw_date_valid(d->year, d->month, d->day);
}

int32_t tw_calendar_date_day(const Tw__V1__CalendarDate *d)
{
    return tw_date_to_day(d->year, d->month, d->day);
}

bool tw_task_parse_id(const char *text, tw_id *out)
{
    return tw_id_parse(text, out);
}

char *tw_task_format_id(tw_arena *arena, const tw_id *id)
{
    char *text = tw_arena_alloc(arena, TW_ID_TEXT_SIZE);
    if (text != NULL)
        tw_id_format(id, text);
    return text;
}

/* ---- Order keys ------------------------------------------------------------------ */

/* Digits of order keys, in byte order, so keys sort as their values. */
static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
#define BASE 62

static int digit_of(char c)
{
    const char *p = c ? strchr(digits, c) : NULL;
    return p ? (int)(p - digits) : -1;
}

bool tw_order_key_valid(const char *key)
{
    size_t len = strlen(key);
    if (len == 0 || len > TW_TASK_ORDER_KEY_MAX || key[len - 1] == '0')
        return false;
    for (size_t i = 0; i < len; i++)
        if (digit_of(key[i]) < 0)
            return false;
    return true;
}

/* The midpoint of fractional-indexing keys (a < b, b NULL: unbounded; a
 * read as padded with '0'); appends to out at *len. */
static bool midpoint(const char *a, const char *b, char *out, size_t *len)
{
    for (;;) {
        if (b != NULL) {
            size_t n = 0, alen = strlen(a);
            while (b[n] != '\0' && (n < alen ? a[n] : '0') == b[n])
                n++;
            if (*len + n > TW_TASK_ORDER_KEY_MAX)
                return false;
            memcpy(out + *len, b, n);
            *len += n;
            a += alen >= n ? n : alen;
            b += n;
        }
        int da = a[0] ? digit_of(a[0]) : 0;
        int db = b != NULL ? digit_of(b[0]) : BASE;
        if (*len + 1 > TW_TASK_ORDER_KEY_MAX)
            return false;
        if (db - da > 1) {
            out[(*len)++] = digits[(da + db + 1) / 2];
            return true;
        }
        /* Consecutive first digits. */
        if (b != NULL && b[1] != '\0') {
            out[(*len)++] = b[0];
            return true;
        }
        out[(*len)++] = digits[da];
        a = a[0] ? a + 1 : a;
        b = NULL;
    }
}

bool tw_order_key_between(const char *a, const char *b, char *out)
{
    size_t len = 0;
    if (b != NULL && b[0] == '\0')
        b = NULL;
    if (!midpoint(a ? a : "", b, out, &len))
        return false;
    out[len] = '\0';
    return true;
}

void tw_order_key_after(const char *a, char *out)
{
    if (a == NULL || a[0] == '\0') {
        strcpy(out, "V0000001");
        return;
    }
    size_t len = strlen(a);
    memcpy(out, a, len + 1);
    /* Add one in base 62, then once more if that ends in '0'. */
    for (int round = 0; round < 2; round++) {
        size_t i = len;
        while (i > 0 && out[i - 1] == 'z')
            out[--i] = '0';
        if (i == 0) {
            /* All 'z': nothing of this length is greater; go one longer. */
            if (len + 1 > TW_TASK_ORDER_KEY_MAX) {
                memcpy(out, a, len + 1); /* cannot happen with sane keys */
                return;
            }
            memcpy(out, a, len);
            out[len] = 'V';
            out[len + 1] = '\0';
            return;
        }
        out[i - 1] = digits[digit_of(out[i - 1]) + 1];
        if (out[len - 1] != '0')
            return;
    }
}
