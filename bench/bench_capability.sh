#!/bin/sh
# bench_capability.sh - times the default capability suite for one candidate
# (LFM2-350M's layer pattern at the scorer's default width 64) and reports
# examples/s and GFLOP/s against the machine's f32 matmul rate measured in the
# same run.  Usage: bench/bench_capability.sh [--threads N] [--genome G] [--tasks a,b]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ -f build/rel/libstarhil.a ] || make starhil >/dev/null
BIN=$(mktemp "${TMPDIR:-/tmp}/starhil_bench_capability.XXXXXX")
trap 'rm -f "$BIN"' EXIT INT TERM
PKGS="sqlite3 libcurl hwloc libssh2 jansson"
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -I. bench/capability_bench.c build/rel/libstarhil.a \
    $(pkg-config --libs $PKGS) -lm -lpthread -o "$BIN"
echo "== bench_capability"
if [ $# -eq 0 ]; then set -- --threads 2; fi
"$BIN" "$@"
