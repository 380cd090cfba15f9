#!/bin/sh
# run_tests.sh - run every test binary (cmocka, TAP output) and print one closing
# line CI can read: "N passed, N failed".  A binary that dies (sanitizer abort,
# signal) counts as one failure on top of its reported results.
passed=0; failed=0; crashed=""
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
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
