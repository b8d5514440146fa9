# docker.cmake: unit tests of the Docker backend's pieces (framing parser, backend against podman).
lb_unit_test(dockerframe lb_parse)
lb_unit_test(httpc lb_rpc)

# test_docker_backend drives sandbox_docker_ops against a real engine (podman's Docker-compatible
# service, see scripts/podman-service and tests/unit/docker-env.sh). It reads
# LABBOX_TEST_DOCKER_HOST; without it the test skips (77), except with CI=true, where it fails.
if(WITH_DOCKER)
  lb_unit_test(docker_backend lb_sandbox)
  set_tests_properties(unit_docker_backend PROPERTIES LABELS "unit;docker" ${LB_SKIP}
                       TIMEOUT 300)
endif()
