# Integration tests: real nginx + labbox (+ podman, + the fake Modal server) on loopback.
find_program(NODE node)
set(LB_IT_ENV "LABBOX_BUILD_DIR=${CMAKE_BINARY_DIR}")
# Suites of a backend are registered only when the backend is compiled in (WITH_*).
set(LB_IT_BACKENDS local)
set(LB_IT_REMOTE)
foreach(backend docker modal)
  string(TOUPPER ${backend} upper)
  if(WITH_${upper})
    list(APPEND LB_IT_BACKENDS ${backend})
    list(APPEND LB_IT_REMOTE ${backend})
  endif()
endforeach()
# The cases every backend must pass (backend_*), and labbox run on every backend (run_*).
foreach(suite backend run)
  foreach(backend ${LB_IT_BACKENDS})
    add_test(NAME ${suite}_${backend}
             COMMAND ${NODE} ${CMAKE_CURRENT_LIST_DIR}/${suite}.test.mjs)
    set_tests_properties(${suite}_${backend} PROPERTIES LABELS "integration;${backend}"
      TIMEOUT 600 ${LB_SKIP} ENVIRONMENT "${LB_IT_ENV};LABBOX_TEST_BACKEND=${backend}")
  endforeach()
endforeach()
# Modal's V2 sandbox family (modal_sandbox_version = 2) through the shared cases as well.
if(WITH_MODAL)
  add_test(NAME backend_modal_v2
           COMMAND ${NODE} ${CMAKE_CURRENT_LIST_DIR}/backend.test.mjs)
  set_tests_properties(backend_modal_v2 PROPERTIES LABELS "integration;modal" TIMEOUT 600
    ${LB_SKIP}
    ENVIRONMENT "${LB_IT_ENV};LABBOX_TEST_BACKEND=modal;LABBOX_MODAL_SANDBOX_VERSION=2")
endif()
# The Modal backend over time (capacity waits, cut connections, tokens, headers, images, stopping).
if(WITH_MODAL)
  add_test(NAME modal_behaviour
           COMMAND ${NODE} ${CMAKE_CURRENT_LIST_DIR}/modal.test.mjs)
  set_tests_properties(modal_behaviour PROPERTIES LABELS "integration;modal" TIMEOUT 600
    ${LB_SKIP} ENVIRONMENT "${LB_IT_ENV}")
endif()
foreach(backend ${LB_IT_REMOTE})
  add_test(NAME remote_${backend}
           COMMAND ${NODE} ${CMAKE_CURRENT_LIST_DIR}/remote.test.mjs)
  set_tests_properties(remote_${backend} PROPERTIES LABELS "integration;${backend}" TIMEOUT 600
    ${LB_SKIP} ENVIRONMENT "${LB_IT_ENV};LABBOX_TEST_BACKEND=${backend}")
endforeach()
foreach(suite api events service people results)
  add_test(NAME integration_${suite}
           COMMAND ${NODE} ${CMAKE_CURRENT_LIST_DIR}/${suite}.test.mjs)
  set_tests_properties(integration_${suite} PROPERTIES LABELS "integration;local" TIMEOUT 600
    ${LB_SKIP} ENVIRONMENT "${LB_IT_ENV}")
endforeach()
find_program(PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
add_test(NAME integration_listen COMMAND ${PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/listen.py)
set_tests_properties(integration_listen PROPERTIES LABELS "integration;local" TIMEOUT 90
  ENVIRONMENT "${LB_IT_ENV}")
