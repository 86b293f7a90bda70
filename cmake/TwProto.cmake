# Code generation from .proto files, shared by proto/ and the tests.
#
# TW_PROTO_PATH: every import root (our proto/, Debian's grpc-proto, the
# google.rpc protos from golang-github-gogo-googleapis-dev, well-known types).

set(TW_GRPC_PROTO_DIR /usr/share/grpc-proto)
set(TW_GOOGLEAPIS_PROTO_DIR /usr/share/gocode/src/github.com/gogo/googleapis)
set(TW_WKT_PROTO_DIR /usr/include)
set(TW_PROTO_PATH
  -I${PROJECT_SOURCE_DIR}/proto -I${TW_GRPC_PROTO_DIR} -I${TW_GOOGLEAPIS_PROTO_DIR}
  -I${TW_WKT_PROTO_DIR})

# tw_protoc_c(<out var> <gen dir> <import root> <proto relative to root>...)
# Generates <gen dir>/<name>.pb-c.c/.h with protoc-c and appends the .c files.
function(tw_protoc_c out_var gen_dir root)
  set(sources ${${out_var}})
  foreach(rel IN LISTS ARGN)
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    set(c ${gen_dir}/${base}.pb-c.c)
    add_custom_command(
      OUTPUT ${c} ${gen_dir}/${base}.pb-c.h
      COMMAND ${CMAKE_COMMAND} -E make_directory ${gen_dir}
      COMMAND ${PROTOC_C} ${TW_PROTO_PATH} -I${root} --c_out=${gen_dir} ${root}/${rel}
      COMMAND ${CMAKE_COMMAND} -DHEADER=${gen_dir}/${base}.pb-c.h
              -P ${PROJECT_SOURCE_DIR}/cmake/c_keywords.cmake
      DEPENDS ${root}/${rel} ${PROJECT_SOURCE_DIR}/cmake/c_keywords.cmake
      COMMENT "protoc-c ${rel}"
      VERBATIM)
    list(APPEND sources ${c})
  endforeach()
  set(${out_var} ${sources} PARENT_SCOPE)
endfunction()

# tw_embedded_descriptor_set(<out c file> <symbol> <gen dir> <import root> <proto>...)
# Writes the FileDescriptorSet of the protos (imports included) as a C array
# `const unsigned char <symbol>[]` with `const size_t <symbol>_size`.
function(tw_embedded_descriptor_set out_c symbol gen_dir root)
  set(pb ${gen_dir}/${symbol}.pb)
  set(deps)
  foreach(rel IN LISTS ARGN)
    if(EXISTS ${root}/${rel})
      list(APPEND deps ${root}/${rel})
    endif()
  endforeach()
  add_custom_command(
    OUTPUT ${pb}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${gen_dir}
    COMMAND ${PROTOC} ${TW_PROTO_PATH} -I${root} --include_imports --descriptor_set_out=${pb} ${ARGN}
    WORKING_DIRECTORY ${root}
    DEPENDS ${deps}
    COMMENT "protoc descriptor set ${symbol}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${out_c}
    COMMAND ${CMAKE_COMMAND} -DINPUT=${pb} -DOUTPUT=${out_c} -DSYMBOL=${symbol}
            -P ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
    DEPENDS ${pb} ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
    COMMENT "embedding ${symbol}"
    VERBATIM)
endfunction()
