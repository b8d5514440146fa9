# bench.cmake: the C programs of scripts/bench, built with the rest (so they keep compiling) into
# <build>/bench/, never installed: the bare libfcgi handlers the API is measured against, and
# the Modal backend driver (one job through the backend alone, no HTTP, no queue).
foreach(t fixed upload)
  add_executable(bench_fcgi_${t} ${CMAKE_CURRENT_LIST_DIR}/bare_${t}.c)
  target_include_directories(bench_fcgi_${t} PRIVATE ${FCGI_INC})
  target_link_libraries(bench_fcgi_${t} PRIVATE ${FCGI_LIB} Threads::Threads)
  set_target_properties(bench_fcgi_${t} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
endforeach()
if(WITH_MODAL AND TARGET lb_modalpb)
  add_executable(bench_modal_backend ${CMAKE_CURRENT_LIST_DIR}/modal_backend.c)
  target_link_libraries(bench_modal_backend PRIVATE lb_sandbox)
  set_target_properties(bench_modal_backend PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
endif()
