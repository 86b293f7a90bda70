/*
 * The one place the user's day settings are read from their profile (the
 * Account record, account.h): the time zone and day-start hour that define
 * the user's logical day, for tasks (streaks, "today", the zone a due
 * without one is given), health logs (daily summaries) and focus sessions
 * (statistics).
 */
#ifndef TW_AUTH_PROFILE_H
#define TW_AUTH_PROFILE_H

#include "tw_arena.h"
#include "tw_id.h"
#include "tw_store.h"
#include "tz.h"

/* The user's day settings from their account (the zone string lives in
 * arena). A profile without a zone, or with one the system no longer knows
 * (tzdata renames zones rarely), gives UTC; an hour outside 0-23 gives 0;
 * no account (being deleted: its calls are refused elsewhere) gives UTC
 * and 0. Errors are the store's. */
tw_err tw_profile_day_settings(tw_store *s, const tw_id *user, tw_arena *arena,
                               tw_day_settings *out);

#endif
