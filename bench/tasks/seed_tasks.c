/*
 * tw-seed-tasks: fills a stopped twd's database with one user's tasks,
 * through the same task steps CreateTask runs (record, every index, the
 * change log), many tasks per transaction, so a benchmark can start from a
 * million tasks in a minute or two rather than an hour of RPCs.
 *
 *   tw-seed-tasks --data-dir DIR --user UUID --count N [--batch B]
 *
 * Tasks get priorities 1-4, dues spread over the next year for two in
 * three of them, a third IN_PROGRESS, and order keys in creation order.
 * Prints one JSON line: tasks written, seconds, tasks/s. Not a test.
 */
#include "tasks/task_ops.h"
#include "tw_time.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BATCH 1000
#define DAY_MS        (86400 * INT64_C(1000))

struct batch {
    tw_task_env *env;
    uint64_t first, count; /* task numbers in this batch */
    char order_key[TW_TASK_ORDER_KEY_MAX + 2];
};

static tw_err seed_batch(tw_txn *t, void *ctx)
{
    struct batch *b = ctx;
    tw_task_env *env = b->env;
    char key[TW_TASK_ORDER_KEY_MAX + 2];
    strcpy(key, b->order_key);
    for (uint64_t i = b->first; i < b->first + b->count; i++) {
        Tw__V1__Task task = TW__V1__TASK__INIT;
        Tw__V1__TaskDue due = TW__V1__TASK_DUE__INIT;
        task.title = tw_arena_printf(env->arena, "seeded task %llu", (unsigned long long)i);
        task.priority = 1 + (int32_t)(i % 4);
        task.status = i % 3 == 1 ? TW__V1__TASK_STATUS__TASK_STATUS_IN_PROGRESS
                                 : TW__V1__TASK_STATUS__TASK_STATUS_TODO;
        tw_order_key_after(key, key);
        task.order_key = tw_arena_strdup(env->arena, key);
        if (i % 3 != 0) {
            due.value_case = TW__V1__TASK_DUE__VALUE_TIME;
            due.time = tw_timestamp_new(env->arena, env->now_ms + (int64_t)(i % 365) * DAY_MS);
            due.time_zone = "UTC";
            task.due = &due;
        }
        tw_task_record *rec;
        tw_err err = tw_task_op_create(t, env, &task, env->now_ms, &rec);
        if (err)
            return err;
    }
    return TW_OK;
}

static int usage(void)
{
    fprintf(stderr, "usage: tw-seed-tasks --data-dir DIR --user UUID --count N [--batch B]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"user", required_argument, NULL, 'u'},
        {"count", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},
        {NULL, 0, NULL, 0},
    };
    const char *data_dir = NULL, *user = NULL;
    unsigned long long count = 0, batch = DEFAULT_BATCH;
    for (int c; (c = getopt_long(argc, argv, "", options, NULL)) != -1;) {
        if (c == 'd')
            data_dir = optarg;
        else if (c == 'u')
            user = optarg;
        else if (c == 'n')
            count = strtoull(optarg, NULL, 10);
        else if (c == 'b')
            batch = strtoull(optarg, NULL, 10);
        else
            return usage();
    }
    tw_task_env env = {0};
    if (data_dir == NULL || user == NULL || !tw_id_parse(user, &env.user) || batch == 0)
        return usage();

    tw_store_options opts = {.data_dir = data_dir, .durability = TW_FAST};
    tw_err err = tw_store_open(&opts, &env.store);
    if (err) {
        fprintf(stderr, "tw-seed-tasks: cannot open %s: %s\n", data_dir, tw_store_last_error());
        return 1;
    }
    tw_violations violations;
    env.day = (tw_day_settings){"UTC", 0};
    env.prefix = "task.";
    env.now_ms = tw_wall_ms();
    struct batch b = {.env = &env};
    tw_order_key_after(NULL, b.order_key);
    int64_t start = tw_mono_ns();
    for (uint64_t done = 0; done < count && err == TW_OK; done += b.count) {
        env.arena = tw_arena_new(1 << 20);
        if (env.arena == NULL) {
            err = TW_ERR_NO_MEMORY;
            break;
        }
        tw_violations_init(&violations, env.arena, TW_CALL_VIOLATIONS_MAX,
                           TW_CALL_VIOLATIONS_MAX_BYTES);
        env.violations = &violations;
        b.first = done;
        b.count = count - done < batch ? count - done : batch;
        err = tw_txn_run(env.store, seed_batch, &b);
        for (uint64_t i = 0; i < b.count; i++)
            tw_order_key_after(b.order_key, b.order_key);
        tw_arena_free(env.arena);
    }
    double seconds = (double)(tw_mono_ns() - start) / 1e9;
    tw_store_close(env.store);
    if (err) {
        fprintf(stderr, "tw-seed-tasks: %s: %s\n", tw_err_name(err), tw_store_last_error());
        return 1;
    }
    printf("{\"tool\":\"tw-seed-tasks\",\"tasks\":%llu,\"seconds\":%.1f,\"tasks_per_s\":%.0f}\n",
           count, seconds, seconds > 0 ? (double)count / seconds : 0.0);
    return 0;
}
