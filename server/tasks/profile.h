/*
 * The one place tasks read the user's profile: the time zone and day-start
 * hour that define the user's logical day (streaks, "today", the zone a
 * due without one is given).
 */
#ifndef TW_TASKS_PROFILE_H
#define TW_TASKS_PROFILE_H

#include "tw_store.h"
#include "tz.h"

/* The user's day settings from their account (the zone string lives in
 * arena). A profile without a zone, or with one libical cannot read, gives
 * UTC; no account (being deleted) gives UTC and hour 0. */
tw_err tw_profile_day_settings(tw_store *s, const tw_id *user, tw_arena *arena,
                               tw_day_settings *out);

#endif
