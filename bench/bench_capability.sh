#!/bin/sh
# bench_capability.sh - evidence for the built-in quality signal: f32 matmul
# rate; held-out bits/byte, wall time and trainer GFLOP/s of LFM2-350M..2.6B
# proxies at the default scale (and the cost exponent); rank correlation of
# the 1/9 and 1/3 rungs against the full rung on 12 genomes; part 4: seed-to-
# seed spread at the search's settings; part 5: LFM2-350M's pattern against
# all-GQA at equal parameters (and all-conv), --seeds seeds each.
# Usage: bench/bench_capability.sh [--threads N] [--part 1,2,3,4,5] [--genomes a,b]
#        [--scale F] [--tokens N] [--rank-scale F] [--rank-tokens N] [--seeds N]
# (the default runs parts 1-3, as before: parts 4 and 5 take a while)
set -eu
case " $* " in *" --help "*|*" -h "*) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ -f build/rel/libstarhil.a ] || make starhil >/dev/null
WORK=$(mktemp -d "${TMPDIR:-/tmp}/starhil_bench_capability.XXXXXX")
BIN=$WORK/capability_bench
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM PIPE
export TMPDIR="$WORK"
PKGS="sqlite3 libcurl hwloc libssh2 jansson"
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -I. bench/capability_bench.c build/rel/libstarhil.a \
    $(pkg-config --libs $PKGS) -lm -lpthread -o "$BIN"
echo "== bench_capability"
if [ $# -eq 0 ]; then set -- --threads 2; fi
"$BIN" "$@"
