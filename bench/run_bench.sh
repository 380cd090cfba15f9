#!/bin/sh
# run_bench.sh - `make bench`: run every executable bench/bench_*.sh in name
# order; exits non-zero if any of them failed (after running all of them).
cd "$(dirname "$0")/.." || exit 1
status=0
for script in bench/bench_*.sh; do
    [ -x "$script" ] || continue
    echo "== $script"
    "$script" || { echo "bench: $script failed"; status=1; }
done
exit $status
