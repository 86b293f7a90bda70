/*
 * What every list call answers the same way, whatever it lists (tasks,
 * completions, health logs, focus sessions and templates, an account's
 * sessions): a page_size it cannot use and a page_token it did not give.
 */
#ifndef TW_SERVICES_LIST_CALL_H
#define TW_SERVICES_LIST_CALL_H

#include "rpc/call.h"

#include <stdint.h>

/* The page size of a request (tw_store_page_size: 0 gives the default,
 * more than the most gives the most); a negative one is refused as a
 * page_size field violation. Returns the error to return. */
tw_err tw_list_call_page_size(tw_call *call, int32_t requested, uint32_t *limit);

/* err, with a page_token field violation added when it is
 * TW_ERR_BAD_PAGE_TOKEN (a token of another list, user or set of filters,
 * or none of ours): the status stays INVALID_ARGUMENT, VAL_003. */
tw_err tw_list_call_token(tw_call *call, tw_err err);

#endif
