/*
 * Retention (voice.h): notes older than voice_retention_days are deleted
 * with their audio, and audio a crash left without a note is removed; a
 * thread of its own sweeps every sweep interval (hourly).
 */
#include "voice_internal.h"

#include "tw_array.h"
#include "tw_log.h"
#include "tw_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Audio without a note is kept this long first: an upload commits its
 * audio a moment before its note. */
#define ORPHAN_AGE_MS (60 * 60 * 1000)
#define SWEEP_BATCH   128

struct aged {
    int64_t create_ms;
    tw_id user, note;
};

/* Up to SWEEP_BATCH notes created before cutoff, oldest first. */
static tw_err aged_notes(tw_voice *v, int64_t cutoff, struct aged *out, size_t *n)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_VOICE_NOTE_BY_AGE);
    tw_store_iter *it;
    tw_err err = tw_store_scan(v->store, &prefix, NULL, 0, false, &it);
    if (err)
        return err;
    *n = 0;
    while (*n < SWEEP_BATCH && tw_store_iter_next(it)) {
        tw_key_reader r;
        tw_store_iter_read_key(it, &r);
        int64_t created;
        tw_key_read_i64(&r, &created);
        tw_key_read_id(&r, &out[*n].user);
        tw_key_read_id(&r, &out[*n].note);
        if (r.err) {
            err = r.err;
            break;
        }
        if (created >= cutoff)
            break;
        out[(*n)++].create_ms = created;
    }
    tw_err closed = tw_store_iter_close(it);
    return err ? err : closed;
}

struct orphans {
    tw_voice *v;
    int64_t before_ms;
    char (*keys)[TW_BLOB_KEY_MAX + 1];
    size_t count, cap;
    tw_err err;
};

/* Audio under "<user-id>/<note-id>" with no note, older than the cutoff. */
static tw_err orphan_check(void *ctx, const char *key, const tw_blob_info *info)
{
    struct orphans *o = ctx;
    char user_text[TW_ID_TEXT_SIZE], note_text[TW_ID_TEXT_SIZE];
    tw_id user, note;
    const char *slash = strchr(key, '/');
    if (slash == NULL || slash - key != TW_ID_TEXT_SIZE - 1 ||
        strlen(slash + 1) != TW_ID_TEXT_SIZE - 1 || info->mtime_ms >= o->before_ms)
        return TW_OK;
    memcpy(user_text, key, TW_ID_TEXT_SIZE - 1);
    user_text[TW_ID_TEXT_SIZE - 1] = '\0';
    memcpy(note_text, slash + 1, TW_ID_TEXT_SIZE);
    if (!tw_id_parse(user_text, &user) || !tw_id_parse(note_text, &note))
        return TW_OK;
    tw_key k;
    tw_key_init(&k, TW_KF_VOICE_NOTE);
    tw_key_id(&k, &user);
    tw_key_id(&k, &note);
    tw_value val;
    tw_arena *arena = tw_arena_new(1024);
    tw_err err = arena ? tw_store_get(o->v->store, &k, arena, &val) : TW_ERR_NO_MEMORY;
    tw_arena_free(arena);
    if (err == TW_OK)
        return TW_OK;
    if (err != TW_ERR_NOT_FOUND)
        return err;
    if (o->count == o->cap) {
        void *keys = tw_array_grow(o->keys, o->count, &o->cap, sizeof *o->keys, 16);
        if (keys == NULL)
            return TW_ERR_NO_MEMORY;
        o->keys = keys;
    }
    snprintf(o->keys[o->count++], TW_BLOB_KEY_MAX + 1, "%s", key);
    return TW_OK;
}

tw_err tw_voice_sweep(tw_voice *v, int64_t now_ms, tw_voice_sweep_stats *out)
{
    *out = (tw_voice_sweep_stats){0};
    struct aged *batch = malloc(SWEEP_BATCH * sizeof *batch);
    if (batch == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err;
    size_t n;
    do {
        err = aged_notes(v, now_ms - v->retention_ms, batch, &n);
        for (size_t i = 0; i < n && err == TW_OK; i++) {
            err = tw_voice_note_delete(v, &batch[i].user, &batch[i].note);
            if (err == TW_OK)
                out->notes_deleted++;
            else if (err == TW_ERR_NOT_FOUND) /* its account was deleted */
                err = voice_age_entry_delete(v, batch[i].create_ms, &batch[i].user, &batch[i].note);
        }
    } while (err == TW_OK && n == SWEEP_BATCH && !atomic_load(&v->stopping));
    free(batch);
    if (err)
        return err;

    struct orphans o = {.v = v, .before_ms = now_ms - ORPHAN_AGE_MS};
    err = tw_blob_list(v->blobs, "", orphan_check, &o);
    for (size_t i = 0; i < o.count && err == TW_OK; i++) {
        tw_err gone = tw_blob_delete(v->blobs, o.keys[i]);
        if (gone == TW_OK)
            out->orphans_deleted++;
        else if (gone != TW_ERR_NOT_FOUND)
            err = gone;
    }
    free(o.keys);
    return err;
}

static void *sweeper_main(void *arg)
{
    tw_voice *v = arg;
    pthread_mutex_lock(&v->sweep_lock);
    while (!v->sweep_stop) {
        pthread_mutex_unlock(&v->sweep_lock);
        tw_voice_sweep_stats stats;
        tw_err err = tw_voice_sweep(v, voice_now_ms(v), &stats);
        if (err)
            tw_log(TW_LOG_ERROR, "voice retention sweep failed",
                   json_pack("{s:s, s:s}", "reason", tw_err_name(err), "detail",
                             tw_store_last_error()));
        else if (stats.notes_deleted || stats.orphans_deleted)
            tw_log(TW_LOG_INFO, "voice retention sweep",
                   json_pack("{s:I, s:I}", "notes_deleted", (json_int_t)stats.notes_deleted,
                             "orphans_deleted", (json_int_t)stats.orphans_deleted));
        struct timespec until = tw_mono_deadline(v->sweep_interval_ms);
        pthread_mutex_lock(&v->sweep_lock);
        while (!v->sweep_stop &&
               pthread_cond_timedwait(&v->sweep_wake, &v->sweep_lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&v->sweep_lock);
    return NULL;
}

tw_err voice_sweeper_start(tw_voice *v)
{
    if (pthread_create(&v->sweeper, NULL, sweeper_main, v) != 0)
        return TW_ERR_INTERNAL;
    v->sweeper_started = true;
    return TW_OK;
}

void voice_sweeper_stop(tw_voice *v)
{
    if (!v->sweeper_started)
        return;
    pthread_mutex_lock(&v->sweep_lock);
    v->sweep_stop = true;
    pthread_cond_broadcast(&v->sweep_wake);
    pthread_mutex_unlock(&v->sweep_lock);
    pthread_join(v->sweeper, NULL);
}
