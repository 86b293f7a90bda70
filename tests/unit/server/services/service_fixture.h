/*
 * What the handler-level tests of server/services/ share: one service
 * served by a real RPC engine over a store in a temporary directory (the
 * store fixture's, with its test clock: the engine reads calls' "now" from
 * it), the real auth state, and a blocking client (rpc_test_client.h).
 *
 * The gate: "Bearer <user-id>" (a UUID) makes that user the caller with the
 * user role (refused by admin methods), "Admin <user-id>" with the admin
 * role, and anything else goes
 * to the real gate (kit/gate.h), so tokens AuthService hands out work too.
 * Every helper fails the running test on an error.
 */
#ifndef TW_SERVICE_FIXTURE_H
#define TW_SERVICE_FIXTURE_H

#include "app.h"
#include "services/services.h"
#include "store_fixture.h"

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#define SF_USER_A "0190a6b2-1111-7000-8000-00000000000a"
#define SF_USER_B "0190a6b2-2222-7000-8000-00000000000b"
#define SF_ADMIN  "0190a6b2-3333-7000-8000-00000000000c"

extern const char *const sf_user_a[]; /* metadata: the caller is SF_USER_A */
extern const char *const sf_user_b[];
extern const char *const sf_admin[]; /* SF_ADMIN with the admin role */

/* The running test's app (store, auth, configuration) and channel. */
extern tw_app sf_app;
extern grpc_channel *sf_channel;

/* Serves def (borrowed, static) for the running test: a Check fixture
 * calls it through a setup function of the test file. */
void sf_setup(const tw_service_def *def);
/* The same for several services on one engine (defs borrowed, static,
 * NULL-terminated; at most four), for a service and its admin half. */
void sf_setup_services(const tw_service_def *const *defs);
void sf_teardown(void);

/* What a call got: its status, the ErrorInfo reason ("" when none), the
 * fields of its BadRequest violations (comma-separated, in order), and the
 * response decoded as the method's output type (NULL unless OK; freed at
 * teardown). */
typedef struct sf_result {
    grpc_status_code status;
    char message[256];
    char reason[32];
    char fields[256];
    ProtobufCMessage *response;
} sf_result;

/* Calls path ("/tw.v1.TaskService/GetTask") with request as the caller of
 * md (NULL: no metadata); the response is decoded as out_type. */
sf_result sf_call(const char *path, const ProtobufCMessage *request, const char *const *md,
                  const ProtobufCMessageDescriptor *out_type);

/* The call succeeded; returns its response. */
void *sf_ok(const char *path, const ProtobufCMessage *request, const char *const *md,
            const ProtobufCMessageDescriptor *out_type);

/* The call failed with code and reason; a failure names the test's line. */
#define sf_assert_error(r, code, reason) sf_assert_error_at(__FILE__, __LINE__, r, code, reason)
void sf_assert_error_at(const char *file, int line, const sf_result *r, grpc_status_code code,
                        const char *reason);

/* A fresh UUID (for request_id and client-chosen ids) in a static ring of
 * buffers: a few may be held at once. */
const char *sf_uuid(void);

#endif
