/*
 * The user's time zone and day-start hour, for wellness.h: the one place
 * the health log and focus features read the profile.
 *
 * Accounts (and with them profiles) are not stored yet, so every user is
 * on UTC with days starting at midnight. When the accounts work lands,
 * this reads the profile's time_zone and day_start_hour instead; nothing
 * else changes.
 */
#include "wellness.h"

#define DEFAULT_TIME_ZONE "UTC"

tw_err tw_user_days_read(tw_store *store, const tw_id *user, tw_arena *arena, tw_user_days *out)
{
    (void)store;
    (void)user;
    (void)arena;
    out->time_zone = DEFAULT_TIME_ZONE;
    out->day_start_hour = 0;
    const tw_tz *tz;
    tw_err err = tw_tz_get(out->time_zone, &tz);
    if (err)
        return err;
    out->clock = (tw_day_clock){tz, out->day_start_hour};
    return TW_OK;
}
