/*
 * What the health log and focus services share between their handlers:
 * how a refusal from server/wellness/ becomes the call's status and
 * details, and the ranges summaries and lists ask for. (Who the caller is:
 * tw_call_user.)
 */
#ifndef TW_SERVICES_WELLNESS_CALL_H
#define TW_SERVICES_WELLNESS_CALL_H

#include "rpc/call.h"
#include "tw_id.h"
#include "wellness/wellness.h"

/*
 * Ends a failed store call: TW_ERR_VALIDATION reports bad as a field
 * violation; NOT_FOUND and FAILED_PRECONDITION carry message (when not
 * empty) to the client; storage errors log the store's detail. Returns the
 * error to return from the handler.
 */
tw_err tw_wellness_fail(tw_call *call, tw_err err, const tw_bad_field *bad, const char *message);

/* What a summary or statistics request is about: the caller, the range of
 * their logical days, and how their days are cut. */
typedef struct tw_day_request {
    tw_id user;
    int32_t first_day;
    int32_t ndays;
    tw_day_settings days;
} tw_day_request;

/* Reads the caller and start_date..end_date (refusing bad ones as field
 * violations) and the caller's profile settings; strings in the call's
 * arena. Returns the error to return from the handler. */
tw_err tw_wellness_day_request(tw_call *call, tw_store *store, const char *start_date,
                               const char *end_date, tw_day_request *out);

/* The page size and [start_time, end_time) of a list request (unset ends
 * are open), refusing bad ones as field violations. */
tw_err tw_wellness_list_bounds(tw_call *call, int32_t page_size,
                               const Google__Protobuf__Timestamp *start_time,
                               const Google__Protobuf__Timestamp *end_time, uint32_t *limit,
                               int64_t *from_ms, int64_t *to_ms);

#endif
