/*
 * Migrations: numbered steps that change stored data, each with an up and
 * a down, applied in order and recorded in the store (one MigrationRecord
 * per applied number). `twd serve` applies all pending ones at start-up
 * (tw_store_migrate_up with tw_store_migrations); `twd migrate status|up|
 * down` calls the three functions below.
 *
 * A step may be large (a backfill), so it is not one transaction: up and
 * down must be safe to run again after a crash half-way (write what should
 * be there, delete what should not), and the record is written only when
 * the step has finished. A database that records a migration this binary
 * does not know is newer than the binary: it is refused rather than
 * guessed at.
 */
#ifndef TW_MIGRATE_H
#define TW_MIGRATE_H

#include "tw_store.h"

typedef struct tw_migration {
    uint32_t number; /* from 1, increasing along the table */
    const char *name;
    tw_err (*up)(tw_store *s);
    tw_err (*down)(tw_store *s);
} tw_migration;

typedef struct tw_migration_set {
    const tw_migration *rows;
    size_t count;
} tw_migration_set;

/* twd's migrations (store/migrations.c). */
extern const tw_migration_set tw_store_migrations;

/* Receives one line of tw_store_migration_notes. */
typedef void tw_migration_line_fn(void *ctx, const char *text);

/* What twd's applied migrations left for an operator to resolve (today:
 * migration 2's email case collisions still open), one line at a time to
 * line(ctx, text); `twd migrate status` prints them. */
tw_err tw_store_migration_notes(tw_store *s, tw_migration_line_fn *line, void *ctx);

typedef struct tw_migration_status {
    uint32_t number;
    const char *name;
    bool applied;
    int64_t apply_ms; /* when applied; 0 if pending */
} tw_migration_status;

/* One row per migration of set, in order, in arena. */
tw_err tw_store_migrate_status(tw_store *s, const tw_migration_set *set, tw_arena *arena,
                               tw_migration_status **rows, size_t *count);

/* Applies every pending migration in order, stopping at the first that
 * fails (it stays pending); *applied (may be NULL) gets how many ran.
 * TW_ERR_FAILED_PRECONDITION when the database records a migration the set
 * lacks, or a pending one before an applied one. */
tw_err tw_store_migrate_up(tw_store *s, const tw_migration_set *set, size_t *applied);

/* Reverts the last applied migration; *number (may be NULL) gets its
 * number, 0 when none was applied. */
tw_err tw_store_migrate_down(tw_store *s, const tw_migration_set *set, uint32_t *number);

#endif
