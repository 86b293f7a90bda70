/*
 * GetTaskStats: streaks and completion rates read from the completion log's
 * indexes (by credited instant, by task) and the missed-occurrence index,
 * on the user's logical day (streak.h).
 */
#ifndef TW_TASKS_TASK_STATS_H
#define TW_TASKS_TASK_STATS_H

#include "task_store.h"
#include "tw/v1/task_service.pb-c.h"
#include "tz.h"

/* Fills out for all of user's tasks (task NULL) or one task, as of now_ms
 * under day. TW_ERR_NOT_FOUND when task does not exist. */
tw_err tw_task_stats(tw_store *s, const tw_id *user, const tw_day_settings *day, int64_t now_ms,
                     const tw_id *task, tw_arena *arena, Tw__V1__GetTaskStatsResponse *out);

#endif
