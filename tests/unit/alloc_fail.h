/*
 * Allocation-failure injection for tests: fail the Nth allocation.
 *
 * A test program linked with TW_ALLOC_FAIL_LINK_OPTIONS (tests/CMakeLists.txt:
 * tw_add_alloc_fail_test) has every call to malloc, calloc, realloc,
 * strdup, strndup, asprintf and vasprintf made by our own code (the static
 * libraries tw_common, tw_store, tw_server_lib and the test itself) routed
 * through alloc_fail.c by the linker's --wrap. Shared libraries (RocksDB,
 * gRPC, protobuf-c) are not affected: what they allocate is theirs to handle.
 *
 * While armed, the shim counts the wrapped allocations of the threads in
 * scope and makes the Nth one return NULL (errno ENOMEM), once. Disarmed, it
 * only passes calls through. Check itself allocates on the test's thread
 * (ck_assert records where it passed), so assert only after disarming.
 */
#ifndef ALLOC_FAIL_H
#define ALLOC_FAIL_H

#include <stdbool.h>
#include <stdint.h>

typedef enum alloc_scope {
    ALLOC_THIS_THREAD,   /* only the thread that armed: a direct call */
    ALLOC_OTHER_THREADS, /* every thread but the arming one: a server's side of a call */
} alloc_scope;

/* Starts counting from 0 the allocations of threads in scope; the fail_at'th
 * one (counted from 1) fails. fail_at 0 fails none: to measure a total. */
void alloc_fail_arm(uint64_t fail_at, alloc_scope scope);

/* Stops counting and failing; returns how many allocations were counted
 * since arming. */
uint64_t alloc_fail_disarm(void);

/* Allocations counted since arming so far. */
uint64_t alloc_count(void);

/* Whether the armed failure happened (an allocation returned NULL). */
bool alloc_fail_fired(void);

#endif
