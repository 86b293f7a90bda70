/* Day settings from the user's account profile (profile.h). */
#include "profile.h"

#include "account.h"

tw_err tw_profile_day_settings(tw_store *s, const tw_id *user, tw_arena *arena,
                               tw_day_settings *out)
{
    *out = (tw_day_settings){.time_zone = "UTC", .day_start_hour = 0};
    Tw__Store__V1__Account *account;
    tw_err err = tw_account_load(s, user, arena, &account);
    if (err == TW_ERR_NOT_FOUND)
        return TW_OK;
    if (err)
        return err;
    if (account->time_zone[0] != '\0' && tw_tz_known(account->time_zone))
        out->time_zone = account->time_zone;
    if (account->day_start_hour >= 0 && account->day_start_hour <= 23)
        out->day_start_hour = account->day_start_hour;
    return TW_OK;
}
