/* The migration runner of tw_migrate.h. */
#include "tw_migrate.h"

#include "store_internal.h"
#include "tw/store/v1/records.pb-c.h"

/* The refusal of a database a newer twd migrated: both versions, and the
 * way back. */
static tw_err newer_database(const tw_migration_set *set, const Tw__Store__V1__MigrationRecord *rec)
{
    const tw_migration *last = set->count ? &set->rows[set->count - 1] : NULL;
    const char *by = rec->twd_version[0] ? rec->twd_version : "a newer version";
    return store_fail(TW_ERR_FAILED_PRECONDITION,
                      "the database is at migration %u (%s), applied by twd %s; this twd %s "
                      "knows migrations up to %u (%s). To use this twd, first run `twd migrate "
                      "down --to %u` with twd %s on this data directory",
                      rec->number, rec->name, by, TW_VERSION, last ? last->number : 0,
                      last ? last->name : "none", last ? last->number : 0, by);
}

/* Which migrations of set are applied. Records are read in number order
 * and must name the set's first migrations, in order: *applied gets how
 * many, and apply_ms (NULL, or one slot per row) when each was applied, 0
 * for pending ones. A record the set lacks means a newer database; one
 * that skips a row, a hole left by hand. Both are refused. */
static tw_err load_applied(tw_store *s, const tw_migration_set *set, int64_t *apply_ms,
                           size_t *applied)
{
    *applied = 0;
    for (size_t i = 0; i < set->count; i++) {
        if (apply_ms != NULL)
            apply_ms[i] = 0;
        if (set->rows[i].number == 0 || (i > 0 && set->rows[i].number <= set->rows[i - 1].number))
            return store_fail(TW_ERR_INTERNAL, "migration table out of order at %zu", i);
    }
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_MIGRATION);
    tw_store_iter *it;
    tw_arena *arena = tw_arena_new(1024);
    tw_err err = arena ? tw_store_scan(s, &prefix, NULL, 0, false, &it) : TW_ERR_NO_MEMORY;
    if (err) {
        tw_arena_free(arena);
        return err;
    }
    size_t n = 0;
    while (err == TW_OK && tw_store_iter_next(it)) {
        tw_value v;
        if ((err = tw_store_iter_value(it, arena, &v)))
            break;
        const Tw__Store__V1__MigrationRecord *rec = (const Tw__Store__V1__MigrationRecord *)v.msg;
        size_t i = n;
        while (i < set->count && set->rows[i].number != rec->number)
            i++;
        if (i == set->count)
            err = newer_database(set, rec);
        else if (i != n)
            err = store_fail(TW_ERR_FAILED_PRECONDITION,
                             "migration %u is applied but %u before it is not", rec->number,
                             set->rows[n].number);
        else if (apply_ms != NULL)
            apply_ms[n] = rec->apply_unix_ms ? rec->apply_unix_ms : 1;
        n += err == TW_OK;
    }
    tw_err close_err = tw_store_iter_close(it);
    tw_arena_free(arena);
    *applied = n;
    return err ? err : close_err;
}

struct record_ctx {
    const tw_migration *m;
    bool applied;
};

static tw_err record_apply(tw_txn *t, void *ctx)
{
    const struct record_ctx *c = ctx;
    tw_key k;
    tw_key_init(&k, TW_KF_MIGRATION);
    tw_key_u32(&k, c->m->number);
    if (!c->applied)
        return tw_txn_delete(t, &k);
    Tw__Store__V1__MigrationRecord rec = TW__STORE__V1__MIGRATION_RECORD__INIT;
    rec.number = c->m->number;
    rec.name = (char *)c->m->name;
    rec.apply_unix_ms = tw_store_now_ms(t->store);
    rec.twd_version = TW_VERSION;
    return tw_txn_put(t, &k, &(tw_value){.msg = &rec.base});
}

static tw_err record(tw_store *s, const tw_migration *m, bool applied)
{
    return tw_txn_run(s, record_apply, &(struct record_ctx){m, applied});
}

tw_err tw_store_migrate_status(tw_store *s, const tw_migration_set *set, tw_arena *arena,
                               tw_migration_status **rows, size_t *count)
{
    size_t applied;
    *count = 0;
    *rows = tw_arena_alloc(arena, (set->count + 1) * sizeof **rows);
    int64_t *apply_ms = tw_arena_alloc(arena, (set->count + 1) * sizeof *apply_ms);
    if (*rows == NULL || apply_ms == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err = load_applied(s, set, apply_ms, &applied);
    if (err)
        return err;
    for (size_t i = 0; i < set->count; i++) {
        (*rows)[i] = (tw_migration_status){set->rows[i].number, set->rows[i].name, apply_ms[i] != 0,
                                           apply_ms[i]};
    }
    *count = set->count;
    return TW_OK;
}

tw_err tw_store_migrate_up(tw_store *s, const tw_migration_set *set, size_t *applied)
{
    size_t first_pending, done = 0;
    tw_err err = load_applied(s, set, NULL, &first_pending);
    for (size_t i = first_pending; err == TW_OK && i < set->count; i++) {
        const tw_migration *m = &set->rows[i];
        if ((err = m->up(s)) == TW_OK && (err = record(s, m, true)) == TW_OK)
            done++;
    }
    if (applied != NULL)
        *applied = done;
    return err;
}

tw_err tw_store_migrate_down(tw_store *s, const tw_migration_set *set, uint32_t *number)
{
    size_t napplied;
    uint32_t reverted = 0;
    tw_err err = load_applied(s, set, NULL, &napplied);
    if (err == TW_OK && napplied > 0) {
        const tw_migration *m = &set->rows[napplied - 1];
        if ((err = m->down(s)) == TW_OK && (err = record(s, m, false)) == TW_OK)
            reverted = m->number;
    }
    if (number != NULL)
        *number = reverted;
    return err;
}
