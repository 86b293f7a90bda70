/* Fixed threads over a bounded ring of jobs, for pool.h. */
#include "pool.h"

#include "tw_log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job {
    void (*fn)(void *arg);
    void *arg;
};

struct tw_pool {
    char name[32];
    pthread_mutex_t lock;
    pthread_cond_t has_work;
    struct job *ring;
    size_t cap, head, count;
    bool stopping;
    pthread_t *threads;
    int nthreads;
};

static void *pool_worker(void *arg)
{
    tw_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (pool->count == 0 && !pool->stopping)
            pthread_cond_wait(&pool->has_work, &pool->lock);
        if (pool->count == 0) /* stopping, and nothing left to run */
            break;
        struct job job = pool->ring[pool->head];
        pool->head = (pool->head + 1) % pool->cap;
        pool->count--;
        pthread_mutex_unlock(&pool->lock);
        job.fn(job.arg);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

tw_err tw_pool_new(const char *name, int threads, size_t queue_cap, tw_pool **out)
{
    *out = NULL;
    tw_pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL)
        return TW_ERR_NO_MEMORY;
    snprintf(pool->name, sizeof pool->name, "%s", name);
    pool->cap = queue_cap > 0 ? queue_cap : 1;
    pool->ring = calloc(pool->cap, sizeof *pool->ring);
    pool->threads = calloc((size_t)(threads > 0 ? threads : 1), sizeof *pool->threads);
    if (pool->ring == NULL || pool->threads == NULL) {
        free(pool->ring);
        free(pool->threads);
        free(pool);
        return TW_ERR_NO_MEMORY;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->has_work, NULL);
    for (int i = 0; i < (threads > 0 ? threads : 1); i++) {
        if (pthread_create(&pool->threads[i], NULL, pool_worker, pool) != 0)
            break;
        pool->nthreads++;
    }
    if (pool->nthreads == 0) {
        tw_pool_free(pool);
        return TW_ERR_INTERNAL;
    }
    *out = pool;
    return TW_OK;
}

tw_err tw_pool_submit(tw_pool *pool, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&pool->lock);
    tw_err err = TW_OK;
    if (pool->stopping)
        err = TW_ERR_SHUTTING_DOWN;
    else if (pool->count == pool->cap)
        err = TW_ERR_BUSY;
    else {
        pool->ring[(pool->head + pool->count) % pool->cap] = (struct job){fn, arg};
        pool->count++;
        pthread_cond_signal(&pool->has_work);
    }
    pthread_mutex_unlock(&pool->lock);
    if (err == TW_ERR_BUSY)
        tw_logf(TW_LOG_WARN, "pool %s is full (%zu jobs waiting)", pool->name, pool->cap);
    return err;
}

size_t tw_pool_waiting(tw_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    size_t n = pool->count;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

void tw_pool_free(tw_pool *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->has_work);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->nthreads; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->has_work);
    free(pool->ring);
    free(pool->threads);
    free(pool);
}
