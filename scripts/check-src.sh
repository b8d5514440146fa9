#!/usr/bin/env bash
# check-src: the source checks scripts/test runs; any finding fails.
#   scripts/check-src.sh [BUILD_DIR]
# 1. banned functions in fcgi/ (sprintf strcpy strcat strtok atoi atol gets system popen alloca)
# 2. clang-format (.clang-format) on every tracked C file: the diff is printed
# 3. clang-tidy (.clang-tidy) over fcgi/, one file per run (clang-tidy 14 carries analyzer state
#    across files of one run), with BUILD_DIR's compile_commands.json (default build/)
# 4. references outside the repository in any tracked file, this one included: the original
#    design documents kept beside the checkout, or paths of one machine (a home, root's or the
#    work directory); the repository explains itself in docs/
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
status=0

# The patterns are spelled in pieces so that this file passes its own check. A machine path
# starts with the directory ("/<home>/u", "file:///<root>/x"), not "~/x" or "a/<home>/x".
beside=shared
outside=$(git grep -nIE -e "\\.\\./$beside|$beside/docs|modal-""protocol\\.md" \
          -e '(^|[^A-Za-z0-9_.~-])/(work|root|home)/' -- . || true)
if [ -n "$outside" ]; then
    echo "references outside the repository (point at docs/ instead):"
    echo "$outside"
    status=1
fi

bad=$(grep -rnE '\b(sprintf|strcpy|strcat|strtok|atoi|atol|gets|system|popen|alloca)\s*\(' \
      fcgi --include='*.c' --include='*.h' | grep -vE '\b(snprintf|vsnprintf)\s*\(' || true)
if [ -n "$bad" ]; then
    echo "banned functions in fcgi/:"
    echo "$bad"
    status=1
fi

unformatted=0
while IFS= read -r f; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "not clang-formatted: $f"
        clang-format "$f" | diff -u "$f" - | head -20 || true
        unformatted=1
    fi
done < <(git ls-files '*.c' '*.h')
[ $unformatted = 0 ] || { echo "run: clang-format -i <file>"; status=1; }

if [ -f "$build/compile_commands.json" ]; then
    tidy=$(git ls-files 'fcgi/*.c' | xargs -P 2 -n 1 clang-tidy -p "$build" --quiet 2>/dev/null |
           grep -E '(warning|error):' || true)
    if [ -n "$tidy" ]; then
        echo "clang-tidy:"
        echo "$tidy"
        status=1
    fi
else
    echo "check-src: no $build/compile_commands.json; configure $build first"
    status=1
fi

[ $status = 0 ] && echo "check-src: ok"
exit $status
