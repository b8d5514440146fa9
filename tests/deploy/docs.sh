#!/usr/bin/env bash
# docs: the command line and the configuration as documented (ctest: deploy_docs): `labbox
# --help`, `help` and `<command> --help` exit 0, an unknown command or option exits 2 with the
# usage; every command is in labbox(8); every configuration key labbox knows is described in
# labbox.conf(5) and in the README's table; the man pages render without warnings.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${LABBOX_BUILD_DIR:-$src/build}
man5=$src/docs/man/labbox.conf.5.in
keys=$(LABBOX_AGENT_DIR=$src/scripts/agent "$build/labbox" check-config --print | sed -n 's/ = .*//p')
[ -n "$keys" ] || { echo "docs: labbox check-config --print printed no keys" >&2; exit 1; }
missing=0 n=0
lb=$build/labbox
expect() {  # expect STATUS PATTERN ARGS...: labbox ARGS exits STATUS and prints PATTERN
    local want=$1 pat=$2 out rc=0
    shift 2
    out=$("$lb" "$@" 2>&1) || rc=$?
    if [ "$rc" != "$want" ] || ! grep -q -- "$pat" <<<"$out"; then
        echo "labbox $*: exit $rc (want $want), output:"; echo "$out"; missing=1
    fi
}
expect 0 "^usage: labbox COMMAND" --help
expect 0 "^usage: labbox COMMAND" -h
expect 0 "^usage: labbox COMMAND" help
expect 2 "^usage: labbox COMMAND" 
expect 2 "unknown command frobnicate" frobnicate
expect 2 "^usage: labbox serve" serve --frobnicate
expect 2 "^usage: labbox supervise" supervise
expect 2 "^usage: labbox serve" serve --nginx-user www-data
expect 2 "no command frobnicate" help frobnicate
expect 0 "^labbox [0-9]" --version
cmds=$("$lb" help | sed -n 's/^  \([a-z-]*\) .*/\1/p')
[ -n "$cmds" ] || { echo "labbox help lists no commands"; missing=1; }
for c in $cmds; do
    expect 0 "^usage: labbox $c" "$c" --help
    expect 0 "^usage: labbox $c" help "$c"
    grep -qE "^\.B labbox ${c//-/\\\\-}\>" "$src/docs/man/labbox.8.in" || { echo "labbox(8) lacks $c"; missing=1; }
done
for k in $keys; do
    n=$((n + 1))
    grep -qE "^\.BR .*\<$k\>" "$man5" || { echo "labbox.conf(5) does not describe $k"; missing=1; }
    grep -qE "^\| [^|]*\`$k\`[^|]* \|" "$src/README.md" || { echo "README's table does not list $k"; missing=1; }
done
for m in "$build/install/labbox.8" "$build/install/labbox.conf.5"; do
    w=$(groff -t -man -ww -z "$m" 2>&1) || true
    [ -z "$w" ] || { echo "$m: $w"; missing=1; }
done
[ $missing = 0 ] || exit 1
echo "docs: the command line ($(wc -w <<<"$cmds") commands) and $n keys as documented; man pages render cleanly"
