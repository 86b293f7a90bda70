/*
 * The user's time zone and day-start hour, for wellness.h: the one place
 * the health log and focus features read the profile (the Account record
 * kept by server/auth).
 */
#include "wellness.h"

#include "auth/account.h"

#define DEFAULT_TIME_ZONE "UTC"

tw_err tw_user_days_read(tw_store *store, const tw_id *user, tw_arena *arena, tw_day_settings *out)
{
    out->time_zone = DEFAULT_TIME_ZONE;
    out->day_start_hour = 0;
    Tw__Store__V1__Account *account;
    tw_err err = tw_account_load(store, user, arena, &account);
    if (err == TW_OK) {
        /* A zone checked when the profile was saved may be gone from the
         * system's tz database since (tzdata renames zones rarely). */
        if (account->time_zone[0] != '\0' && tw_tz_known(account->time_zone))
            out->time_zone = account->time_zone;
        if (account->day_start_hour >= 0 && account->day_start_hour <= 23)
            out->day_start_hour = account->day_start_hour;
    } else if (err != TW_ERR_NOT_FOUND) { /* none: an account being deleted */
        return err;
    }
    return TW_OK;
}
