/* The hints of tw_hint.h. */
#include "tw_hint.h"

#include "store_internal.h"

#include <string.h>

static size_t set_index(tw_store *s, const tw_id *user)
{
    return (size_t)(store_log_lock(s, user) - s->log_locks);
}

/* The way holding name in set, or NULL. Call with set->lock held. */
static struct store_hint *way_of(struct store_hint_set *set, const uint8_t *name, size_t len)
{
    for (int i = 0; i < STORE_HINT_WAYS; i++) {
        struct store_hint *h = &set->ways[i];
        if (h->held && h->name_len == len && memcmp(h->name, name, len) == 0)
            return h;
    }
    return NULL;
}

tw_err tw_store_hint(tw_store *s, const tw_id *user, const tw_key *name, tw_hint_scan_fn scan,
                     void *ctx, char *value)
{
    if (name->err)
        return name->err;
    struct store_hint_set *set = &s->hints[set_index(s, user)];
    bool cacheable = name->len <= STORE_HINT_NAME_MAX;
    if (cacheable) {
        pthread_mutex_lock(&set->lock);
        struct store_hint *h = way_of(set, name->bytes, name->len);
        if (h != NULL)
            memcpy(value, h->value, TW_HINT_VALUE_MAX);
        pthread_mutex_unlock(&set->lock);
        if (h != NULL)
            return TW_OK;
    }
    /* Under the user's commit lock no commit of theirs runs: the scan sees
     * every raise that a fill could otherwise miss. */
    pthread_mutex_t *log_lock = store_log_lock(s, user);
    pthread_mutex_lock(log_lock);
    tw_err err = scan(ctx, value, TW_HINT_VALUE_MAX);
    if (err == TW_OK && cacheable) {
        pthread_mutex_lock(&set->lock);
        struct store_hint *h = way_of(set, name->bytes, name->len);
        if (h == NULL) {
            h = &set->ways[set->next];
            set->next = (set->next + 1) % STORE_HINT_WAYS;
        }
        h->held = true;
        h->name_len = (uint8_t)name->len;
        memcpy(h->name, name->bytes, name->len);
        memcpy(h->value, value, TW_HINT_VALUE_MAX);
        pthread_mutex_unlock(&set->lock);
    }
    pthread_mutex_unlock(log_lock);
    return err;
}

tw_err tw_txn_hint_raise(tw_txn *t, const tw_id *user, const tw_key *name, const char *value)
{
    if (name->err)
        return name->err;
    if (name->len > STORE_HINT_NAME_MAX)
        return TW_OK; /* never held */
    struct store_log *l = store_log_of(t, user);
    struct store_raise *r = tw_arena_alloc(t->arena, sizeof *r);
    char *copy = tw_arena_strdup(t->arena, value);
    if (l == NULL || r == NULL || copy == NULL)
        return TW_ERR_NO_MEMORY;
    r->name_len = (uint8_t)name->len;
    memcpy(r->name, name->bytes, name->len);
    r->value = copy;
    r->next = l->raises;
    l->raises = r;
    return TW_OK;
}

void store_hints_raise(tw_store *s, const struct store_log *l)
{
    if (l->raises == NULL)
        return;
    struct store_hint_set *set = &s->hints[set_index(s, &l->user)];
    pthread_mutex_lock(&set->lock);
    for (const struct store_raise *r = l->raises; r != NULL; r = r->next) {
        struct store_hint *h = way_of(set, r->name, r->name_len);
        if (h == NULL || strcmp(r->value, h->value) <= 0)
            continue;
        if (strlen(r->value) < TW_HINT_VALUE_MAX)
            strcpy(h->value, r->value);
        else
            h->held = false; /* too long to hold: its readers scan */
    }
    pthread_mutex_unlock(&set->lock);
}

void store_hints_init(tw_store *s)
{
    for (int i = 0; i < STORE_LOG_LOCKS; i++)
        pthread_mutex_init(&s->hints[i].lock, NULL);
}

void store_hints_free(tw_store *s)
{
    for (int i = 0; i < STORE_LOG_LOCKS; i++)
        pthread_mutex_destroy(&s->hints[i].lock);
}
