#!/bin/sh
# netns.sh: run a command in a network namespace of its own with loopback up and a veth pair
# whose one end has 192.0.2.1 (TEST-NET-1, never routed): a "non-loopback address of the host"
# that no traffic can leave the namespace through. Needs root and iproute2.
set -e
if [ "$1" != "--inside" ]; then
    exec unshare --net -- "$0" --inside "$@"
fi
shift
ip link set lo up
ip link add lbhost0 type veth peer name lbhost1
ip addr add 192.0.2.1/24 dev lbhost0
ip link set lbhost0 up
ip link set lbhost1 up
export LABBOX_TEST_HOST_ADDR=192.0.2.1
exec "$@"
