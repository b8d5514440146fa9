# Pure parsers (fcgi/parse): unit tests and fuzz targets; see tests/README.md.
lb_unit_test(multipart lb_parse)
lb_unit_test(names lb_parse)
lb_unit_test(logsplit lb_parse)
lb_unit_test(imagedef lb_parse)
lb_unit_test(nginxconf lb_parse)
lb_fuzz_target(multipart lb_parse)
lb_fuzz_target(names lb_parse)
lb_fuzz_target(logsplit lb_parse)
lb_fuzz_target(modaltoml lb_parse)
lb_unit_test(pschema lb_parse)
lb_fuzz_target(pschema lb_parse)
lb_fuzz_target(nginxconf lb_parse)
if(ENABLE_FUZZ)
  # libFuzzer needs coverage from the code under test, not only from the fuzz driver.
  target_compile_options(lb_parse PRIVATE -fsanitize=fuzzer-no-link)
endif()
# The C schema check against scripts/agent/params.py, the definition of the subset.
add_executable(pschema_tool unit/pschema_tool.c)
target_link_libraries(pschema_tool PRIVATE lb_parse)
find_program(LB_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
add_test(NAME unit_pschema_parity
         COMMAND ${LB_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/unit/pschema_parity.py
                 $<TARGET_FILE:pschema_tool>)
set_tests_properties(unit_pschema_parity PROPERTIES LABELS unit TIMEOUT 120)
