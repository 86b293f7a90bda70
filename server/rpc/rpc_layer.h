/*
 * Included by every header of server/rpc, on purpose without an include
 * guard: the RPC engine's headers are for the layer above the domain (the
 * service kit, services/, the HTTP pages, serve.c and the commands).
 * Domain code (server/auth, billing, ops, sync, tasks, voice, wellness, and
 * the shared pieces at server/'s top) is built by the targets tw_domain and
 * tw_server_base with TW_NO_RPC defined (server/CMakeLists.txt), so an
 * engine header reached from there, directly or through kit/kit.h or a
 * services/ header, stops the build here. Domain code that must tell the
 * calls of something takes a callback instead (tw_voice_observer, the
 * store's commit listener, tw_ops_start's store_health).
 */
#ifdef TW_NO_RPC
#error "domain code must not include server/rpc headers: see server/rpc/rpc_layer.h"
#endif
