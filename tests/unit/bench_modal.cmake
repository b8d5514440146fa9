# bench_modal.cmake: bench_modal_backend, the C driver scripts/bench-modal uses to time one job
# through the Modal backend alone (no HTTP, no queue); a benchmark tool, not a test.
if(WITH_MODAL AND TARGET lb_modalpb)
  add_executable(bench_modal_backend ${CMAKE_SOURCE_DIR}/scripts/bench/modal_backend.c)
  target_link_libraries(bench_modal_backend PRIVATE lb_sandbox)
endif()
