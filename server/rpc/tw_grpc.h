/* Starting gRPC core the same way in every program that uses it. */
#ifndef TW_GRPC_H
#define TW_GRPC_H

#include "rpc_layer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* grpc_init(), reference counted as gRPC's own (pair it with
 * grpc_shutdown()), after turning off abseil's tracking of lock order. Debian
 * builds abseil without NDEBUG, so by default every absl::Mutex that gRPC
 * takes also walks a lock graph under one process-wide spin lock: about 8k
 * instructions per call in twd, and a lock every core contends for
 * (bench/README.md, seventh pass). */
void tw_grpc_init(void);

#ifdef __cplusplus
}
#endif

#endif
