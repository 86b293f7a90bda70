/*
 * Admission rules for gate.h, in order: the operator socket is an admin
 * (for admin and public methods; a user's own calls need their token);
 * public methods need nobody (but maintenance mode stops all except
 * sign-ins); everything else needs `authorization: Bearer <jwt>` with a
 * valid signature and claims, whose session still exists (one point read
 * of SESSION(user, session), which also carries the account's role and
 * disabled flag); then maintenance mode, the admin role, and the caller's
 * API rate limit.
 */
#include "gate.h"

#include "auth/account.h"
#include "auth/auth.h"
#include "tw_time.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define BEARER "bearer "

static tw_err maintenance_error(tw_call *call, tw_auth *auth)
{
    char message[TW_MAINTENANCE_MESSAGE_MAX + 1];
    if (!tw_auth_maintenance(auth, message, sizeof message))
        return TW_OK;
    return message[0] ? tw_call_error(call, TW_ERR_MAINTENANCE, "%s", message) : TW_ERR_MAINTENANCE;
}

/* Verifies the bearer token and reads its session; sets the caller. */
static tw_err authenticate(tw_call *call, tw_auth *auth, const char *header, bool *admin)
{
    /* RFC 6750: the scheme is case-insensitive, the token follows one space. */
    if (strncasecmp(header, BEARER, strlen(BEARER)) != 0)
        return tw_call_error(call, TW_ERR_AUTH_INVALID_TOKEN,
                             "authorization must be \"Bearer <access token>\"");
    /* Ours are far shorter; the engine accepts headers of up to 256 KiB so
     * that a longer one gets this answer rather than gRPC's own refusal. */
    const char *token = header + strlen(BEARER);
    if (strlen(token) > TW_JWT_MAX_BYTES)
        return tw_call_error(call, TW_ERR_AUTH_INVALID_TOKEN,
                             "access token is longer than %d bytes", TW_JWT_MAX_BYTES);
    tw_jwt_claims claims;
    tw_err err = tw_token_cache_verify(auth->tokens, token, tw_keyring_lookup, auth->keys,
                                       tw_call_now_ms(call) / 1000, &claims);
    if (err)
        return err;
    tw_id user, session;
    if (!tw_id_parse(claims.sub, &user) || !tw_id_parse(claims.sid, &session))
        return TW_ERR_AUTH_INVALID_TOKEN;
    err = tw_session_cache_admit(auth->sessions, auth->store, &user, &session, tw_call_arena(call),
                                 admin);
    if (err != TW_OK && err != TW_ERR_AUTH_REVOKED && err != TW_ERR_AUTH_DISABLED)
        tw_call_log_detail(call, "%s", tw_store_last_error()); /* the store failed */
    if (err)
        return err;
    tw_call_set_caller(call, &user, &session, *admin ? TW_ROLE_ADMIN : TW_ROLE_USER);
    return TW_OK;
}

tw_err tw_gate_admit(void *ctx, tw_call *call, const tw_method *method)
{
    tw_app *app = ctx;
    tw_auth *auth = app->auth;
    /* The operator is an admin but no user: calls that act on a user's own
     * data need that user's token even here. */
    if (tw_call_from_operator_socket(call) && (method->flags & (TW_ADMIN | TW_PUBLIC))) {
        tw_call_set_caller(call, NULL, NULL, TW_ROLE_ADMIN);
        return TW_OK;
    }
    if (method->flags & TW_PUBLIC)
        return auth == NULL || (method->flags & TW_SIGN_IN) ? TW_OK : maintenance_error(call, auth);
    const char *header = tw_call_metadata(call, "authorization");
    if (header == NULL)
        return TW_ERR_AUTH_MISSING_TOKEN;
    if (auth == NULL)
        return TW_ERR_AUTH_INVALID_TOKEN;
    bool admin = false;
    tw_err err = authenticate(call, auth, header, &admin);
    if (err)
        return err;
    if (!admin && (err = maintenance_error(call, auth)))
        return err;
    if ((method->flags & TW_ADMIN) && !admin)
        return TW_ERR_AUTH_FORBIDDEN;
    int64_t retry_ms;
    if (!tw_api_limiter_take(auth->api, tw_call_caller(call), method->flags & TW_WRITE,
                             tw_mono_ns() / 1000, &retry_ms)) {
        tw_call_retry_after(call, retry_ms);
        return tw_call_error(call, TW_ERR_RATE_LIMITED, "too many calls; retry in %lld s",
                             (long long)(retry_ms + 999) / 1000);
    }
    if ((method->flags & TW_METERED) && app->meter != NULL)
        return app->meter(app, call);
    return TW_OK;
}
