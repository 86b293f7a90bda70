# protoc-c 1.4.1 names each RPC's member of the generated service struct
# after the method in lower case, so `rpc Register` becomes a member named
# `register`, a C keyword, and the header does not compile. This renames such
# members to `<keyword>_` in the generated header; nothing else in it refers
# to them by name (twd uses the descriptors, never the service structs).
#   cmake -DHEADER=<file.pb-c.h> -P cmake/c_keywords.cmake
file(READ ${HEADER} text)
set(fixed "${text}")
foreach(word auto break case char const continue default do double else enum extern float for
        goto if inline int long register restrict return short signed sizeof static struct
        switch typedef union unsigned void volatile while)
  string(REPLACE "(*${word})(" "(*${word}_)(" fixed "${fixed}")
endforeach()
if(NOT fixed STREQUAL text)
  file(WRITE ${HEADER} "${fixed}")
endif()
