/*
 * Paced server streams (paced_stream.h). The engine's thread starts steps
 * (on drains) and hears of cancels; steps run on the pool, and a drain may
 * start the next step while the one that asked for it is still winding
 * up. `pending` counts steps started and not finished; the stream is over
 * once a step ended it or the client cancelled; whoever then sees pending
 * reach zero finishes the call, once: finishing frees the arena holding
 * this state, so never while a step still holds it.
 */
#include "paced_stream.h"

#include <pthread.h>

struct paced {
    tw_call *call;
    tw_pool *pool;
    tw_paced_step_fn *step;
    tw_paced_done_fn *done;
    void *ctx;
    pthread_mutex_t lock;
    int pending;
    bool cancelled, ended, finished;
    tw_err end_err;
};

/* A step is over (lock held); true when the caller is to finish the call. */
static bool step_over_locked(struct paced *p, bool end, tw_err err)
{
    p->pending--;
    if (end && !p->ended) {
        p->ended = true;
        p->end_err = err;
    }
    bool finish = !p->finished && p->pending == 0 && (p->ended || p->cancelled);
    if (finish)
        p->finished = true;
    return finish;
}

static void finish(struct paced *p)
{
    tw_err err = p->ended ? p->end_err : TW_ERR_CANCELLED;
    p->done(p->ctx);
    pthread_mutex_destroy(&p->lock);
    tw_call_finish(p->call, err);
}

static void drained(tw_call *call, void *ctx);

static void run_step(void *arg)
{
    struct paced *p = arg;
    bool end = false;
    tw_err err = p->step(p->call, p->ctx, &end);
    end = end || err;
    /* Asked while this step still counts, so a cancel cannot finish the
     * call under it. */
    if (!end)
        tw_call_on_drain(p->call, drained, p);
    pthread_mutex_lock(&p->lock);
    bool over = step_over_locked(p, end, err);
    pthread_mutex_unlock(&p->lock);
    if (over)
        finish(p);
}

static void drained(tw_call *call, void *ctx)
{
    (void)call;
    struct paced *p = ctx;
    pthread_mutex_lock(&p->lock);
    bool go = !p->cancelled && !p->ended && !p->finished;
    if (go)
        p->pending++;
    pthread_mutex_unlock(&p->lock);
    if (go && tw_pool_submit(p->pool, run_step, p) != TW_OK) {
        pthread_mutex_lock(&p->lock);
        bool over = step_over_locked(p, true, TW_ERR_BUSY);
        pthread_mutex_unlock(&p->lock);
        if (over)
            finish(p);
    }
}

static void cancelled(tw_call *call, void *ctx)
{
    (void)call;
    struct paced *p = ctx;
    pthread_mutex_lock(&p->lock);
    p->cancelled = true;
    bool over = !p->finished && p->pending == 0;
    if (over)
        p->finished = true;
    pthread_mutex_unlock(&p->lock);
    if (over)
        finish(p);
}

tw_err tw_paced_stream_start(tw_call *call, tw_pool *pool, tw_paced_step_fn *step,
                             tw_paced_done_fn *done, void *ctx)
{
    struct paced *p = tw_arena_alloc(tw_call_arena(call), sizeof *p);
    if (p == NULL)
        return TW_ERR_NO_MEMORY;
    *p = (struct paced){.call = call, .pool = pool, .step = step, .done = done, .ctx = ctx};
    pthread_mutex_init(&p->lock, NULL);
    tw_call_on_cancel(call, cancelled, p);
    /* Nothing is queued yet: the first step starts now. */
    tw_call_on_drain(call, drained, p);
    return TW_DEFERRED;
}
