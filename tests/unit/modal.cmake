# modal.cmake: unit tests and fuzz targets of the gRPC client and the Modal backend's pieces
# (gRPC framing, JWT, .modal.toml and credentials, generic and Modal retries, protobuf round
# trips) and the backend against the fake server. Only the generic parts are built without
# WITH_MODAL.
lb_unit_test(grpcframe lb_parse)
lb_unit_test(jwt lb_parse)
lb_unit_test(modaltoml lb_parse)
lb_unit_test(grpc_retry lb_rpc)
lb_fuzz_target(grpcframe lb_parse)

if(WITH_MODAL AND TARGET lb_modalpb)
  lb_unit_test(modal_retry lb_rpc)
  lb_unit_test(modal_settings lb_rpc)
  lb_unit_test(modalpb lb_rpc)
  # The generated INIT macros cast away const; clang warns where they are expanded.
  target_compile_options(test_modal_retry PRIVATE -Wno-cast-qual)
  target_compile_options(test_modalpb PRIVATE -Wno-cast-qual)
  # test_modal_backend starts `node tests/fake-modal/server.mjs` (or uses LABBOX_TEST_MODAL_URL);
  # without node or the fake it skips (77), except with CI=true, where it fails.
  lb_unit_test(modal_backend lb_sandbox)
  set_tests_properties(unit_modal_backend PROPERTIES LABELS "unit;modal" ${LB_SKIP}
                       TIMEOUT 300)
endif()
