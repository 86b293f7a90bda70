/*
 * grpc.health.v1.Health, the standard health protocol load balancers and
 * orchestrators speak. "" is the whole server; each registered service name
 * answers too. Everything is SERVING while the store answers its probe
 * (server/ops: a real read every second) and NOT_SERVING while it does not,
 * Watch streams hearing each change. Once shutdown begins Watch streams get
 * NOT_SERVING and end with UNAVAILABLE so clients reconnect elsewhere, and
 * Check answers NOT_SERVING.
 */
#include "services.h"

#include "grpc/health/v1/health.pb-c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

typedef Grpc__Health__V1__HealthCheckResponse__ServingStatus serving_status;

/* One open Watch stream; it lives in its call's state. */
struct watcher {
    tw_call *call;
    const char *service;
    struct watcher *next;
};

static struct {
    tw_engine *engine;
    pthread_mutex_t lock;
    bool stopping;
    bool store_failing;
    struct watcher *watchers;
} health = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The status of a service name; the lock must be held. */
static serving_status status_of_locked(const char *service)
{
    if (!tw_engine_has_service(health.engine, service))
        return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
    return health.stopping || health.store_failing
               ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
               : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
}

static tw_err check(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Grpc__Health__V1__HealthCheckRequest *in = (const void *)request;
    Grpc__Health__V1__HealthCheckResponse *out = (void *)response;
    pthread_mutex_lock(&health.lock);
    out->status = status_of_locked(in->service);
    pthread_mutex_unlock(&health.lock);
    if (out->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN)
        return tw_call_error(call, TW_ERR_NOT_FOUND, "unknown service \"%s\"", in->service);
    return TW_OK;
}

/* Takes w out of the list; false when shutdown already took it. */
static bool unlink_watcher_locked(struct watcher *w)
{
    for (struct watcher **p = &health.watchers; *p != NULL; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            return true;
        }
    }
    return false;
}

static void watch_cancelled(tw_call *call, void *ctx)
{
    struct watcher *w = tw_call_state(call);
    pthread_mutex_lock(&health.lock);
    bool ours = unlink_watcher_locked(w);
    pthread_mutex_unlock(&health.lock);
    if (ours)
        tw_call_finish(call, TW_ERR_CANCELLED);
}

static tw_err watch(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Grpc__Health__V1__HealthCheckRequest *in = (const void *)request;
    Grpc__Health__V1__HealthCheckResponse *out = (void *)response;
    struct watcher *w = tw_call_state(call);
    w->call = call;
    w->service = in->service; /* the request lives as long as the call */

    pthread_mutex_lock(&health.lock);
    out->status = status_of_locked(w->service);
    tw_err err = tw_call_send(call, response);
    bool keep = err == TW_OK && !health.stopping;
    if (keep) {
        w->next = health.watchers;
        health.watchers = w;
    }
    pthread_mutex_unlock(&health.lock);
    if (!keep)
        return err ? err : TW_ERR_SHUTTING_DOWN;
    tw_call_on_cancel(call, watch_cancelled, NULL);
    return TW_DEFERRED;
}

void tw_health_service_set_store_ok(bool ok)
{
    pthread_mutex_lock(&health.lock);
    bool changed = health.store_failing == ok;
    health.store_failing = !ok;
    /* Each watcher hears the change for the service it watches; sends
     * only queue, so the lock is not held across a network wait. */
    for (struct watcher *w = changed && !health.stopping ? health.watchers : NULL; w != NULL;
         w = w->next) {
        Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        out.status = status_of_locked(w->service);
        tw_call_send(w->call, &out.base);
    }
    pthread_mutex_unlock(&health.lock);
}

/* Shutdown: every watcher hears NOT_SERVING, then its stream ends. */
static void health_shutdown(void *ctx)
{
    pthread_mutex_lock(&health.lock);
    health.stopping = true;
    struct watcher *list = health.watchers;
    health.watchers = NULL;
    pthread_mutex_unlock(&health.lock);

    Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    out.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    while (list != NULL) {
        struct watcher *w = list;
        list = w->next; /* w dies with its call once finished */
        tw_call_send(w->call, &out.base);
        tw_call_finish(w->call, TW_ERR_SHUTTING_DOWN);
    }
}

static const tw_method health_methods[] = {
    {"Check", TW_UNARY, TW_INFRA, .handle = check},
    {"Watch", TW_SERVER_STREAM, TW_INFRA, .handle = watch, .state_size = sizeof(struct watcher)},
    {NULL},
};

static tw_err health_attach(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen)
{
    (void)app, (void)errbuf, (void)errlen;
    pthread_mutex_lock(&health.lock);
    health.engine = engine;
    health.stopping = false;
    health.store_failing = false;
    health.watchers = NULL;
    pthread_mutex_unlock(&health.lock);
    return TW_OK;
}

const tw_service_def tw_health_service = {
    .rpc = {.descriptor = &grpc__health__v1__health__descriptor,
            .methods = health_methods,
            .shutdown = health_shutdown},
    .attach = health_attach,
};
