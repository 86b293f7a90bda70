/* Refusals and request ranges for the health log and focus services. */
#include "wellness_call.h"

#include "auth/profile.h"
#include "list_call.h"
#include "tw_store.h"

tw_err tw_wellness_fail(tw_call *call, tw_err err, const tw_bad_field *bad, const char *message)
{
    switch (err) {
    case TW_ERR_VALIDATION:
        if (bad != NULL && bad->field[0] != '\0')
            return tw_call_field_violation(call, bad->field, "%s", bad->why);
        return err;
    case TW_ERR_BAD_PAGE_TOKEN:
        return tw_list_call_token(call, err);
    case TW_ERR_NOT_FOUND:
    case TW_ERR_FAILED_PRECONDITION:
        return message != NULL && message[0] != '\0' ? tw_call_error(call, err, "%s", message)
                                                     : err;
    case TW_ERR_DB:
    case TW_ERR_DB_CORRUPT:
    case TW_ERR_DB_READ_ONLY:
    case TW_ERR_CONFLICT:
        tw_call_log_detail(call, "%s", tw_store_last_error());
        return err;
    default:
        return err;
    }
}

tw_err tw_wellness_day_request(tw_call *call, tw_store *store, const char *start_date,
                               const char *end_date, tw_day_request *out)
{
    tw_bad_field bad;
    tw_err err = tw_call_user(call, &out->user);
    if (err)
        return err;
    if ((err = tw_check_date_range(&bad, start_date, end_date, &out->first_day, &out->ndays)) ||
        (err = tw_profile_day_settings(store, &out->user, tw_call_arena(call), &out->days)))
        return tw_wellness_fail(call, err, &bad, NULL);
    return TW_OK;
}

tw_err tw_wellness_list_bounds(tw_call *call, int32_t page_size,
                               const Google__Protobuf__Timestamp *start_time,
                               const Google__Protobuf__Timestamp *end_time, uint32_t *limit,
                               int64_t *from_ms, int64_t *to_ms)
{
    tw_bad_field bad;
    tw_err err = tw_list_call_page_size(call, page_size, limit);
    if (err)
        return err;
    if ((err = tw_check_time(&bad, "", "start_time", start_time, INT64_MIN, from_ms)) ||
        (err = tw_check_time(&bad, "", "end_time", end_time, INT64_MAX, to_ms)))
        return tw_wellness_fail(call, err, &bad, NULL);
    if (*to_ms <= *from_ms)
        return tw_call_field_violation(call, "end_time", "is not after start_time");
    return TW_OK;
}
