/* Caller and refusals for the health log and focus services. */
#include "wellness_call.h"

#include "tw_store.h"

tw_err tw_wellness_caller(tw_call *call, tw_id *user)
{
    const char *id = tw_call_user_id(call);
    if (id == NULL)
        return tw_call_error(call, TW_ERR_AUTH_MISSING_TOKEN,
                             "this call acts for a signed-in user: send their access token");
    if (!tw_id_parse(id, user))
        return TW_ERR_INTERNAL;
    return TW_OK;
}

tw_err tw_wellness_fail(tw_call *call, tw_err err, const tw_bad_field *bad, const char *message)
{
    switch (err) {
    case TW_ERR_VALIDATION:
        if (bad != NULL && bad->field[0] != '\0')
            return tw_call_field_violation(call, bad->field, "%s", bad->why);
        return err;
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
