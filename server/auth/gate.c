/* Admission rules for gate.h. */
#include "gate.h"

#include <string.h>

#define ROLE_ADMIN "admin"

tw_err tw_gate_admit(void *ctx, tw_call *call, const tw_method *method)
{
    if (tw_call_from_operator_socket(call)) {
        tw_call_set_caller(call, NULL, ROLE_ADMIN);
        return TW_OK;
    }
    if (method->flags & TW_PUBLIC)
        return TW_OK;
    if (tw_call_metadata(call, "authorization") == NULL)
        return TW_ERR_AUTH_MISSING_TOKEN;
    /* No account can hold a token yet: sign-in arrives with AuthService. */
    return TW_ERR_AUTH_INVALID_TOKEN;
}
