/*
 * The gate every call passes before its handler (tw_gate_fn, engine.h):
 * who is calling, and may they call this method. Calls through the
 * operator socket act with the admin role; public methods need nobody;
 * everything else needs a bearer token whose session is alive. Then
 * maintenance mode (admins pass), the admin role of TW_ADMIN methods and
 * the caller's API rate limit.
 */
#ifndef TW_GATE_H
#define TW_GATE_H

#include "app.h"
#include "rpc/call.h"

/* ctx is the tw_app. */
tw_err tw_gate_admit(void *ctx, tw_call *call, const tw_method *method);

#endif
