#!/bin/sh
# run_tests.sh - run every test binary (cmocka, TAP output) and print one closing
# line CI can read: "N passed, N failed".  A binary that dies (sanitizer abort,
# signal) counts as one failure on top of its reported results.
passed=0; failed=0; crashed=""
# One build cache for the whole run, empty at the start and removed at the end
# (never the user's ~/.cache/starhil): binaries that build the same variant
# share it, and each run starts as cold as a fresh machine's.  Tests that must
# see a cold cache make their own.
if [ -z "${STARHIL_CACHE_DIR:-}" ]; then
    STARHIL_CACHE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/starhil-suite-cache.XXXXXX") || exit 1
    export STARHIL_CACHE_DIR
    trap 'rm -rf "$STARHIL_CACHE_DIR"' EXIT
    trap 'exit 130' INT TERM
fi
t_start=$(date +%s)
for bin in "$@"; do
    name=$(basename "$bin")
    out=$(mktemp)
    echo "== $name"
    t0=$(date +%s)
    CMOCKA_MESSAGE_OUTPUT=TAP "$bin" >"$out" 2>&1
    rc=$?
    t1=$(date +%s)
    cat "$out"
    p=$(grep -c '^ok ' "$out"); f=$(grep -c '^not ok ' "$out")
    passed=$((passed + p)); failed=$((failed + f))
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        failed=$((failed + 1)); crashed="$crashed $name(rc=$rc)"
    fi
    rm -f "$out"
    echo "== $name took $((t1 - t0)) s"
done
[ -n "$crashed" ] && echo "crashed or failed outside a test:$crashed"
echo "== all test binaries took $(( $(date +%s) - t_start )) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
