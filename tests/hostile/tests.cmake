# Hostile suite (tests/hostile/README.md): every attack of issue 9 and the older escape checks,
# on the local backend; `ctest -L hostile` runs the whole hostile surface.
find_program(NODE node)
set(LB_HOSTILE_ENV "LABBOX_BUILD_DIR=${CMAKE_BINARY_DIR}")
foreach(suite disk kernel names escape results privilege others fulldisk)
  add_test(NAME hostile_${suite}
           COMMAND ${NODE} ${CMAKE_CURRENT_LIST_DIR}/${suite}.test.mjs)
  set_tests_properties(hostile_${suite} PROPERTIES LABELS "hostile;integration;local" TIMEOUT 600
    ${LB_SKIP} ENVIRONMENT "${LB_HOSTILE_ENV}")
endforeach()
# The network attacks run in a network namespace of their own (netns.sh), so that a
# "non-loopback address of the host" exists without any traffic leaving the machine.
add_test(NAME hostile_network
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/netns.sh ${NODE} ${CMAKE_CURRENT_LIST_DIR}/network.test.mjs)
set_tests_properties(hostile_network PROPERTIES LABELS "hostile;integration;local" TIMEOUT 600
  ${LB_SKIP} ENVIRONMENT "${LB_HOSTILE_ENV}")
# The hostile case every backend shares (outputs: links, FIFOs, hard links) lives in
# backend.test.mjs; here it runs alone on the local backend as part of the hostile surface.
add_test(NAME hostile_outputs
         COMMAND ${NODE} --test-name-pattern=hostile
                 ${CMAKE_SOURCE_DIR}/tests/integration/backend.test.mjs)
set_tests_properties(hostile_outputs PROPERTIES LABELS "hostile;integration;local" TIMEOUT 600
  ${LB_SKIP} ENVIRONMENT "${LB_HOSTILE_ENV};LABBOX_TEST_BACKEND=local")
# The attacks where the docker backend has the same surface, against podman's Docker API service
# (LABBOX_TEST_DOCKER_HOST, or one started for the run by scripts/podman-service).
if(WITH_DOCKER)
  add_test(NAME hostile_docker
           COMMAND ${NODE} ${CMAKE_CURRENT_LIST_DIR}/docker.test.mjs)
  set_tests_properties(hostile_docker PROPERTIES LABELS "hostile;integration;docker" TIMEOUT 900
    ${LB_SKIP} ENVIRONMENT "${LB_HOSTILE_ENV}")
endif()
