# Pure parsers (fcgi/parse): unit tests and fuzz targets; see tests/README.md.
lb_unit_test(multipart lb_parse)
lb_unit_test(names lb_parse)
lb_unit_test(logsplit lb_parse)
lb_unit_test(imagedef lb_parse)
lb_fuzz_target(multipart lb_parse)
lb_fuzz_target(names lb_parse)
lb_fuzz_target(logsplit lb_parse)
lb_fuzz_target(modaltoml lb_parse)
if(ENABLE_FUZZ)
  # libFuzzer needs coverage from the code under test, not only from the fuzz driver.
  target_compile_options(lb_parse PRIVATE -fsanitize=fuzzer-no-link)
endif()
