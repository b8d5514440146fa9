# Deploy tests (label deploy): the install as an operator does it, and the documentation of it.
add_test(NAME deploy_install COMMAND ${CMAKE_CURRENT_LIST_DIR}/deploy.sh)
set_tests_properties(deploy_install PROPERTIES LABELS deploy TIMEOUT 600 ${LB_SKIP}
  ENVIRONMENT "LABBOX_BUILD_DIR=${CMAKE_BINARY_DIR}")
add_test(NAME deploy_docs COMMAND ${CMAKE_CURRENT_LIST_DIR}/docs.sh)
set_tests_properties(deploy_docs PROPERTIES LABELS deploy TIMEOUT 60
  ENVIRONMENT "LABBOX_BUILD_DIR=${CMAKE_BINARY_DIR}")
# docs/openapi.yaml against the code: valid OpenAPI 3.1, every route, problem code and status the
# handlers and the nginx snippet can answer, and the validator the integration tests use.
find_program(NODE node)
add_test(NAME openapi_lint COMMAND ${NODE} ${CMAKE_SOURCE_DIR}/tests/integration/openapi-lint.test.mjs)
set_tests_properties(openapi_lint PROPERTIES LABELS deploy TIMEOUT 120 ${LB_SKIP})
