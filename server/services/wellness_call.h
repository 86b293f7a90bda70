/*
 * What the health log and focus services share between their handlers:
 * who the caller is, and how a refusal from server/wellness/ becomes the
 * call's status and details.
 */
#ifndef TW_SERVICES_WELLNESS_CALL_H
#define TW_SERVICES_WELLNESS_CALL_H

#include "rpc/call.h"
#include "tw_id.h"
#include "wellness/wellness.h"

/* The signed-in user the call acts for. Calls through the operator socket
 * act for nobody: they get UNAUTHENTICATED (AUTH_002). */
tw_err tw_wellness_caller(tw_call *call, tw_id *user);

/*
 * Ends a failed store call: TW_ERR_VALIDATION reports bad as a field
 * violation; NOT_FOUND and FAILED_PRECONDITION carry message (when not
 * empty) to the client; storage errors log the store's detail. Returns the
 * error to return from the handler.
 */
tw_err tw_wellness_fail(tw_call *call, tw_err err, const tw_bad_field *bad, const char *message);

#endif
