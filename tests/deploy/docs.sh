#!/usr/bin/env bash
# docs: every configuration key labbox knows is described in labbox.conf(5) and in the README's
# configuration table, and the man pages render without warnings (ctest: deploy_docs).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${LABBOX_BUILD_DIR:-$src/build}
man5=$src/docs/man/labbox.conf.5.in
keys=$(LABBOX_AGENT_DIR=$src/scripts/agent "$build/labbox" check-config --print | sed -n 's/ = .*//p')
[ -n "$keys" ] || { echo "docs: labbox check-config --print printed no keys" >&2; exit 1; }
missing=0 n=0
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
echo "docs: $n keys in labbox.conf(5) and the README; man pages render cleanly"
