#!/bin/sh
# bench_runtime.sh - runtime speed against llama.cpp and the memory roofline.
# Builds the LFM2-350M and LFM2-1.2B variants (native) and, for each model with
# q8_0 and q4_0 weights:
#   pp  bench --prompt 512 --gen 128: prefill of a 512-token prompt (llama-bench
#       pp512) and decode continuing at depth 512 (an extra column);
#   tg  BENCH_TG_RUNS (7) runs of bench --prompt 1 --gen 128: decode from an
#       empty context, as llama-bench measures tg128; the figure compared with
#       llama.cpp and with the roofline;
#   bw  the memory read bandwidth (bench/membw.c, same thread count, 512 MiB,
#       4 KiB and huge pages, median of 5 reads: a sustained rate like the
#       decode throughput) measured before the first tg run, between runs and
#       after the last.  Bandwidth on a shared host drifts from minute to
#       minute, so each tg run is paired with the mean of the readings just
#       before and just after it, and the row reports medians over the runs.
# Prints one table.  Environment: STARHIL (tool, default ./starhil),
# BENCH_MODELS, BENCH_TYPES, BENCH_PROMPT, BENCH_GEN, BENCH_THREADS, BENCH_REPS,
# BENCH_TG_RUNS.
set -eu
cd "$(dirname "$0")/.."
STARHIL=${STARHIL:-./starhil}
MODELS=${BENCH_MODELS:-"lfm2-350m lfm2-1.2b"}
TYPES=${BENCH_TYPES:-"q8_0 q4_0"}
PROMPT=${BENCH_PROMPT:-512}
GEN=${BENCH_GEN:-128}
THREADS=${BENCH_THREADS:-2}
REPS=${BENCH_REPS:-3}
TG_RUNS=${BENCH_TG_RUNS:-7}
OUT=build/bench/runtime
mkdir -p "$OUT"
[ -x "$STARHIL" ] || { echo "bench_runtime: $STARHIL not built (run make)"; exit 1; }

cc -std=c11 -O3 -march=native -pthread -o "$OUT/membw" bench/membw.c

for model in $MODELS; do
    exe=$("$STARHIL" build "$model" --target native)
    for t in $TYPES; do
        row="$OUT/$model-$t"
        echo "bench $model $t: pp$PROMPT, then $TG_RUNS x (bandwidth, tg$GEN), bandwidth ..." >&2
        "$exe" bench --prompt "$PROMPT" --gen "$GEN" --threads "$THREADS" --reps "$REPS" \
            --warmup 1 --wtype "$t" >"$row.pp.json"
        : >"$row.tg.jsonl"
        : >"$row.bw.jsonl"
        i=0
        while [ "$i" -lt "$TG_RUNS" ]; do
            "$OUT/membw" --threads "$THREADS" --mib 512 --reps 5 >>"$row.bw.jsonl"
            "$exe" bench --prompt 1 --gen "$GEN" --threads "$THREADS" --reps 1 \
                --warmup 1 --wtype "$t" | tr -d '\n' >>"$row.tg.jsonl"
            echo >>"$row.tg.jsonl"
            i=$((i + 1))
        done
        "$OUT/membw" --threads "$THREADS" --mib 512 --reps 5 >>"$row.bw.jsonl"
    done
done

/usr/bin/python3 bench/runtime_table.py "$OUT" "$MODELS" "$TYPES" "$PROMPT" "$GEN"
