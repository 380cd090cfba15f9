#!/bin/sh
# bench_runtime.sh - runtime speed against llama.cpp and the memory roofline.
# Builds the LFM2-350M and LFM2-1.2B variants (native), measures the memory read
# bandwidth in the same run (bench/membw.c, 2 threads, 1 GiB), benches each model
# with q8_0 and q4_0 weights (--prompt 512 --gen 64 --threads 2) and prints one
# table.  Environment: STARHIL (tool, default ./starhil), BENCH_MODELS,
# BENCH_TYPES, BENCH_PROMPT, BENCH_GEN, BENCH_THREADS, BENCH_REPS.
set -eu
cd "$(dirname "$0")/.."
STARHIL=${STARHIL:-./starhil}
MODELS=${BENCH_MODELS:-"lfm2-350m lfm2-1.2b"}
TYPES=${BENCH_TYPES:-"q8_0 q4_0"}
PROMPT=${BENCH_PROMPT:-512}
GEN=${BENCH_GEN:-64}
THREADS=${BENCH_THREADS:-2}
REPS=${BENCH_REPS:-3}
OUT=build/bench/runtime
mkdir -p "$OUT"
[ -x "$STARHIL" ] || { echo "bench_runtime: $STARHIL not built (run make)"; exit 1; }

cc -O3 -march=native -pthread -o "$OUT/membw" bench/membw.c
echo "memory bandwidth ($THREADS threads, 1 GiB) ..." >&2
"$OUT/membw" --threads "$THREADS" --mib 1024 --reps 5 >"$OUT/membw.json"

for model in $MODELS; do
    exe=$("$STARHIL" build "$model" --target native)
    for t in $TYPES; do
        echo "bench $model $t ..." >&2
        "$exe" bench --prompt "$PROMPT" --gen "$GEN" --threads "$THREADS" --reps "$REPS" \
            --warmup 1 --wtype "$t" >"$OUT/$model-$t.json"
    done
done

/usr/bin/python3 bench/runtime_table.py "$OUT" "$MODELS" "$TYPES"
