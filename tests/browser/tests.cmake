# Browser tests: the frontend in Debian's headless Chromium (playwright-core) against real stacks
# started by run-stack.mjs (frontend.test.mjs, results.test.mjs). Needs `npm install` in
# tests/browser (bootstrap).
add_test(NAME browser_frontend COMMAND node ${CMAKE_CURRENT_LIST_DIR}/run-stack.mjs
         WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(browser_frontend PROPERTIES LABELS "browser" TIMEOUT 600
  ${LB_SKIP} ENVIRONMENT "LABBOX_BUILD_DIR=${CMAKE_BINARY_DIR}")
# "My jobs" with nginx signing users in (identity = remote_user): starts its own stack.
add_test(NAME browser_myjobs COMMAND node ${CMAKE_CURRENT_LIST_DIR}/myjobs.test.mjs
         WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(browser_myjobs PROPERTIES LABELS "browser" TIMEOUT 600
  ${LB_SKIP} ENVIRONMENT "LABBOX_BUILD_DIR=${CMAKE_BINARY_DIR}")
