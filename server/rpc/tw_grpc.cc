/* tw_grpc.h. C++ only for abseil's switch; nothing else here. */
#include "tw_grpc.h"

#include <absl/synchronization/mutex.h>
#include <grpc/grpc.h>

void tw_grpc_init(void)
{
    /* One atomic store; the same value each time, so calling it from any
     * thread before each grpc_init() is safe. */
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    grpc_init();
}
