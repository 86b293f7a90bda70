/*
 * Listing tasks and completions a page at a time, from the index that is
 * already in the order asked for: a page is a few prefix scans (one per
 * status asked for, merged), never a sort, so its cost does not grow with
 * the number of tasks a user has. Filters the index does not encode are
 * checked on each task read; a page reads at most TW_TASK_LIST_SCAN_MAX
 * entries and may end early with a cursor, so a rare filter cannot make
 * one call walk everything.
 *
 * Cursors are where the next page starts (the end of the last index key
 * read); the caller wraps them in MAC'd page tokens (tw_page.h).
 */
#ifndef TW_TASKS_TASK_LIST_H
#define TW_TASKS_TASK_LIST_H

#include "task_store.h"
#include "tw/v1/task_service.pb-c.h"

#define TW_TASK_LIST_SCAN_MAX 2000

/* A page of tasks for a request whose ids, statuses, times and order the
 * caller has checked, each as stored (tw_task_bytes, in arena): a record
 * is decoded only when a filter the index does not hold must be checked
 * on it. cursor (may be NULL) is where the previous page stopped. *next is
 * NULL after the last page. */
tw_err tw_task_list(tw_store *s, const tw_id *user, const Tw__V1__ListTasksRequest *req,
                    const uint8_t *cursor, size_t cursor_len, uint32_t page_size, tw_arena *arena,
                    tw_task_bytes **tasks, size_t *count, uint8_t **next, size_t *next_len);

/* A page of the completion log, newest first; task (may be NULL) keeps
 * only that task's. */
tw_err tw_completion_list(tw_store *s, const tw_id *user, const tw_id *task, const uint8_t *cursor,
                          size_t cursor_len, uint32_t page_size, tw_arena *arena,
                          Tw__V1__TaskCompletion ***completions, size_t *count, uint8_t **next,
                          size_t *next_len);

#endif
