/*
 * The fields of a task: what each may hold, how an update mask names them,
 * and the small value helpers (timestamps, ids, order keys) the task and
 * sync services share. Nothing here touches the store.
 *
 * Validation collects every bad field into a tw_violations list rather
 * than stopping at the first, so a client learns all its mistakes at once;
 * TaskService turns the list into google.rpc.BadRequest, SyncService.Push
 * into a rejected mutation's field_violations. Field paths are given
 * relative to the request ("task.title").
 */
#ifndef TW_TASKS_TASK_FIELDS_H
#define TW_TASKS_TASK_FIELDS_H

#include "kit/mask.h"
#include "pbtime.h"
#include "tw/v1/task_service.pb-c.h"
#include "tw_arena.h"
#include "tw_err.h"
#include "tw_id.h"
#include "tw_violations.h"
#include "tz.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define TW_TASK_TITLE_MAX       500   /* characters */
#define TW_TASK_NOTES_MAX       20000 /* characters */
#define TW_TASK_LABEL_MAX       64 /* characters */
#define TW_TASK_ORDER_KEY_MAX   128
#define TW_TASK_DEPTH_MAX       8 /* levels of nesting, the top level included */
#define TW_TASK_PRIORITY_LOWEST 4

/* ---- Fields and masks ------------------------------------------------------ */

/* The fields a mask may name, as bits. */
enum tw_task_field {
    TW_TF_TITLE = 1u << 0,
    TW_TF_NOTES = 1u << 1,
    TW_TF_STATUS = 1u << 2,
    TW_TF_PRIORITY = 1u << 3,
    TW_TF_DUE = 1u << 4,
    TW_TF_DEADLINE = 1u << 5,
    TW_TF_ESTIMATE = 1u << 6,
    TW_TF_LABELS = 1u << 7,
    TW_TF_ORDER_KEY = 1u << 8,
    TW_TF_RECURRENCE = 1u << 9,
    TW_TF_PARENT = 1u << 10,
};
/* Every field a client edits (a new task sets them all). */
#define TW_TF_ALL 0x7ffu

/* The paths an update mask of a Task may name (kit/mask.h). */
extern const tw_mask_path tw_task_mask_paths[];

/* The mask name of one field bit ("deadline_time"). */
const char *tw_task_field_name(unsigned field);

/* The id a client chose for a new task (CreateTask, Push): a UUIDv7, so
 * ids sort by creation; empty is refused only when required. */
void tw_task_check_new_id(const char *id, bool required, const char *field, tw_violations *v);

/* Checks the fields of t named in fields, each reported as prefix + name
 * ("task." + "title"); creating says t is a new task (status and
 * priority may be unset then). Fills defaults it may (labels
 * deduplicated). Returns TW_ERR_VALIDATION when anything was added to v. */
tw_err tw_task_validate(Tw__V1__Task *t, unsigned fields, bool creating, const char *prefix,
                        tw_violations *v);

/* Copies the fields named in fields from src to dst (pointers are shared,
 * not deep-copied: both must live as long as dst is used). */
void tw_task_copy_fields(Tw__V1__Task *dst, const Tw__V1__Task *src, unsigned fields);

/* ---- Values -------------------------------------------------------------------- */

Tw__V1__CalendarDate *tw_calendar_date_new(tw_arena *arena, int32_t day);
bool tw_calendar_date_valid(const Tw__V1__CalendarDate *d);
int32_t tw_calendar_date_day(const Tw__V1__CalendarDate *d);

/* Parses a UUID into out; false when text is not one. */
bool tw_task_parse_id(const char *text, tw_id *out);
/* The text form of id, in arena. */
char *tw_task_format_id(tw_arena *arena, const tw_id *id);

/* Whether key is a valid order key: 1 to TW_TASK_ORDER_KEY_MAX characters
 * of [0-9A-Za-z], not ending in '0'. */
bool tw_order_key_valid(const char *key);
/* A key strictly between a and b (either may be NULL or "": unbounded),
 * written to out (TW_TASK_ORDER_KEY_MAX + 1 bytes). a < b when both are
 * given. False when the result would be too long. */
bool tw_order_key_between(const char *a, const char *b, char *out);
/* A key after a (NULL: the first key of an empty list) that keeps its
 * length where it can, so appending many tasks keeps keys short. */
void tw_order_key_after(const char *a, char *out);

#endif
