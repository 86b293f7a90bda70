/*
 * Day settings from the user's profile (profile.h). Accounts (and with them
 * profiles) are not in this build yet, so every user's day is UTC from
 * midnight until the profile store arrives; this is the function to wire
 * to it.
 */
#include "profile.h"

tw_err tw_profile_day_settings(tw_store *s, const tw_id *user, tw_arena *arena,
                               tw_day_settings *out)
{
    (void)s;
    (void)user;
    (void)arena;
    *out = (tw_day_settings){.time_zone = "UTC", .day_start_hour = 0};
    return TW_OK;
}
