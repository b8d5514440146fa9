#!/usr/bin/env bash
# docker-env.sh: run a command with podman's Docker-compatible service up and LABBOX_TEST_DOCKER_HOST set.
#
#   tests/unit/docker-env.sh ctest --test-dir build -L docker --output-on-failure
#
# If LABBOX_TEST_DOCKER_HOST is already set (the integration harness or .ci/run started the
# service), the command just runs. Otherwise this starts scripts/podman-service in a temp dir
# (building localhost/labbox-test:latest once per machine), exports the socket, runs the
# command and stops the service again. Needs root, podman and runc (Debian: podman, runc,
# conmon, catatonit, fuse-overlayfs, slirp4netns, uidmap).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
if [ -n "${LABBOX_TEST_DOCKER_HOST:-}" ]; then
    exec "$@"
fi
dir=$(mktemp -d /tmp/labbox-podman.XXXXXX)
cleanup() {
    "$here/scripts/podman-service" stop "$dir" || true
    rm -rf "$dir"
}
trap cleanup EXIT
LABBOX_TEST_DOCKER_HOST=$("$here/scripts/podman-service" start "$dir")
export LABBOX_TEST_DOCKER_HOST
"$@"
