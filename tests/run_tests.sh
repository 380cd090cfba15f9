#!/bin/sh
# run_tests.sh - run every test binary (cmocka, TAP output) and print one closing
# line CI can read: "N passed, N failed".  A binary that dies (sanitizer abort,
# signal) counts as one failure on top of its reported results.
#
# Binaries whose tests measure latencies on this host (test_devices,
# test_search: they test how a busy board is detected) run alone.  The others
# assert no timing, so they run in two lanes at once to use both cores: each
# lane takes the next binary not yet taken from one list, longest first (the
# order of LONGEST, from CI's times; binaries not named there come last), so
# the lanes end within a short binary of each other.
# Each binary's output is printed whole when it ends, with its time.
passed=0; failed=0; crashed=""
# One build cache for the whole run, empty at the start and removed at the end
# (never the user's ~/.cache/starhil): binaries that build the same variant
# share it, and each run starts as cold as a fresh machine's.  Tests that must
# see a cold cache make their own.
if [ -z "${STARHIL_CACHE_DIR:-}" ]; then
    STARHIL_CACHE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/starhil-suite-cache.XXXXXX") || exit 1
    export STARHIL_CACHE_DIR
fi
outdir=$(mktemp -d "${TMPDIR:-/tmp}/starhil-suite-out.XXXXXX") || exit 1
cleanup() {
    rm -rf "$outdir"
    case "$STARHIL_CACHE_DIR" in */starhil-suite-cache.*) rm -rf "$STARHIL_CACHE_DIR" ;; esac
}
trap cleanup EXIT
trap 'exit 130' INT TERM
t_start=$(date +%s)

MEASURING="test_devices test_search"
# longest first (CI before the split: runtime 182 s, about a third of it now in
# parity; reports 82, cluster 60, capability 48, store 28)
LONGEST="test_runtime test_reports test_parity test_cluster test_capability test_store"

# run_one BIN: runs it, keeps its output and exit status in $outdir
run_one() {
    name=$(basename "$1")
    t0=$(date +%s)
    CMOCKA_MESSAGE_OUTPUT=TAP "$1" >"$outdir/$name.out" 2>&1
    echo $? >"$outdir/$name.rc"
    echo $(( $(date +%s) - t0 )) >"$outdir/$name.secs"
}

# report BIN: prints its output and adds its results to the totals
report() {
    name=$(basename "$1")
    echo "== $name"
    cat "$outdir/$name.out"
    p=$(grep -c '^ok ' "$outdir/$name.out"); f=$(grep -c '^not ok ' "$outdir/$name.out")
    rc=$(cat "$outdir/$name.rc")
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        failed=$((failed + 1)); crashed="$crashed $name(rc=$rc)"
    fi
    echo "== $name took $(cat "$outdir/$name.secs") s"
}

in_list() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }

queue=""; rest=""; alone=""
for bin in "$@"; do
    name=$(basename "$bin")
    if [ $# -eq 1 ] || in_list "$name" "$MEASURING"; then alone="$alone $bin"
    elif ! in_list "$name" "$LONGEST"; then rest="$rest $bin"; fi
done
for name in $LONGEST; do
    for bin in "$@"; do
        [ $# -gt 1 ] && [ "$(basename "$bin")" = "$name" ] && queue="$queue $bin"
    done
done
queue="$queue $rest"

# lane: runs the binaries of $queue that the other lane has not taken
# (mkdir is atomic: the lane that creates the claim runs the binary)
lane() {
    for bin in $queue; do
        mkdir "$outdir/$(basename "$bin").claim" 2>/dev/null && run_one "$bin"
    done
}

if [ -n "$(echo $queue)" ]; then
    lane & l1=$!
    lane & l2=$!
    wait $l1; wait $l2
    for bin in $queue; do report "$bin"; done
fi
for bin in $alone; do
    run_one "$bin"
    report "$bin"
done

[ -n "$crashed" ] && echo "crashed or failed outside a test:$crashed"
echo "== all test binaries took $(( $(date +%s) - t_start )) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
