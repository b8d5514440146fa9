#!/usr/bin/env bash
# check-src: fail when fcgi/ uses a banned function (style.md section 4) or a VLA-prone alloca.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(grep -rnE '\b(sprintf|strcpy|strcat|strtok|atoi|atol|gets|system|popen|alloca)\s*\(' \
      fcgi --include='*.c' --include='*.h' | grep -vE '\b(snprintf|vsnprintf)\s*\(' || true)
if [ -n "$bad" ]; then
    echo "banned functions in fcgi/:"
    echo "$bad"
    exit 1
fi
echo "check-src: ok"
