# The layer rule of server/CMakeLists.txt, checked on the sources:
#  - no file of the domain (auth, billing, ops, sync, tasks, voice, wellness)
#    or of the base (cli, config, jobs, pbtime, pool, tz, http/http_server)
#    includes an RPC engine header (rpc/), the kit built on it (kit/ but
#    mask.h), a services/ header or an HTTP page's header (http/ but
#    http_server.h);
#  - every engine header includes rpc_layer.h, which stops the build of
#    such an include.
# Run as: cmake -DSERVER_DIR=<server/> -P layers_check.cmake
if(NOT SERVER_DIR)
  message(FATAL_ERROR "SERVER_DIR is not set")
endif()

set(files)
foreach(dir auth billing ops sync tasks voice wellness)
  file(GLOB_RECURSE found ${SERVER_DIR}/${dir}/*.c ${SERVER_DIR}/${dir}/*.h)
  list(APPEND files ${found})
endforeach()
foreach(base cli config jobs pbtime pool tz http/http_server)
  list(APPEND files ${SERVER_DIR}/${base}.c ${SERVER_DIR}/${base}.h)
endforeach()

set(bad "")
foreach(f IN LISTS files)
  file(STRINGS ${f} includes REGEX "^[ \t]*#[ \t]*include[ \t]+\"")
  foreach(line IN LISTS includes)
    string(REGEX REPLACE "^[^\"]*\"([^\"]*)\".*$" "\\1" header "${line}")
    if(header MATCHES "^(rpc|services)/" OR
       (header MATCHES "^kit/" AND NOT header STREQUAL "kit/mask.h") OR
       (header MATCHES "^http/" AND NOT header STREQUAL "http/http_server.h"))
      file(RELATIVE_PATH rel ${SERVER_DIR} ${f})
      string(APPEND bad "  server/${rel} includes ${header}\n")
    endif()
  endforeach()
endforeach()

file(GLOB engine_headers ${SERVER_DIR}/rpc/*.h)
foreach(h IN LISTS engine_headers)
  get_filename_component(name ${h} NAME)
  if(NOT name STREQUAL "rpc_layer.h")
    file(STRINGS ${h} guard REGEX "^#include \"rpc_layer.h\"")
    if(NOT guard)
      string(APPEND bad "  server/rpc/${name} does not include rpc_layer.h\n")
    endif()
  endif()
endforeach()

if(bad)
  message(FATAL_ERROR "layers: domain code must not reach the RPC engine (server/rpc/rpc_layer.h):\n${bad}")
endif()
list(LENGTH files checked)
message(STATUS "layers: ${checked} domain and base files include no engine header")
