# modal.cmake: protobuf-c code for Modal's gRPC API (fcgi/rpc/proto/*.proto), generated at build
# time into the build directory and linked into lb_rpc and lb_sandbox. Included by the top
# CMakeLists.txt when WITH_MODAL is on.
find_program(PROTOC_C NAMES protoc-c protoc-gen-c REQUIRED)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)

set(LB_PROTO_DIR ${CMAKE_SOURCE_DIR}/fcgi/rpc/proto)
set(LB_PROTO_OUT ${CMAKE_BINARY_DIR}/gen/modalpb)
file(MAKE_DIRECTORY ${LB_PROTO_OUT})
set(LB_PROTO_SRC)
foreach(stem modal_client task_command_router)
  add_custom_command(
    OUTPUT ${LB_PROTO_OUT}/${stem}.pb-c.c ${LB_PROTO_OUT}/${stem}.pb-c.h
    COMMAND ${PROTOC_C} --c_out=${LB_PROTO_OUT} -I${LB_PROTO_DIR} ${LB_PROTO_DIR}/${stem}.proto
    DEPENDS ${LB_PROTO_DIR}/${stem}.proto ${LB_PROTO_DIR}/modal_client.proto
    COMMENT "protoc-c ${stem}.proto"
    VERBATIM)
  list(APPEND LB_PROTO_SRC ${LB_PROTO_OUT}/${stem}.pb-c.c)
endforeach()

add_library(lb_modalpb STATIC ${LB_PROTO_SRC})
# SYSTEM: the INIT macros of generated headers cast away const (protobuf_c_empty_string).
target_include_directories(lb_modalpb SYSTEM PUBLIC ${LB_PROTO_OUT})
target_link_libraries(lb_modalpb PUBLIC PkgConfig::PROTOBUFC)
# Generated code is not ours to keep warning-free under our strict flags.
target_compile_options(lb_modalpb PRIVATE -w)

target_link_libraries(lb_rpc ${lb_rpc_KIND} lb_modalpb)
target_link_libraries(lb_sandbox ${lb_sandbox_KIND} lb_modalpb)
# clang (unlike gcc) warns about those casts where the macros are expanded, in our files.
# (tests/unit/modal.cmake does the same for test_modalpb.)
set_source_files_properties(${CMAKE_SOURCE_DIR}/fcgi/rpc/modal_client.c PROPERTIES
  COMPILE_OPTIONS -Wno-cast-qual)
