/* Page sizes and page tokens of list calls (list_call.h). */
#include "list_call.h"

#include "tw_page.h"

tw_err tw_list_call_page_size(tw_call *call, int32_t requested, uint32_t *limit)
{
    if (tw_store_page_size(requested, limit) != TW_OK)
        return tw_call_field_violation(call, "page_size", "must not be negative");
    return TW_OK;
}

tw_err tw_list_call_token(tw_call *call, tw_err err)
{
    if (err == TW_ERR_BAD_PAGE_TOKEN)
        tw_call_field_violation(call, "page_token",
                                "is not a token this list gave for these filters");
    return err;
}
