#!/bin/sh
# bench_llamacpp.sh - the variant runtime and llama.cpp's CPU path side by side on
# the same GGUF files.  LLAMA_CPP=DIR names a folder holding llama.cpp's shared
# libraries (libllama*.so, libggml*.so with its CPU backends: a CPU build's bin/
# or lib/, or a prebuilt package); bench/llamacpp_peer.c loads them with dlopen
# and measures pp (PROMPT tokens in one batch) and tg (GEN single-token decodes
# from an empty cache) as llama-bench does.  Nothing of llama.cpp is built into
# starhil.  For every model and type: `variant export` writes the GGUF
# (synthetic weights), then PAIRS alternating pairs (llama.cpp then the variant,
# next pair the other way round), each run preceded by a memory-bandwidth reading
# (bench/membw.c, same threads); prints a table with medians, spread (min-max),
# ratios variant/llama.cpp, decode bytes/s as a share of the bandwidth read in the
# same pair, `uptime` load before and after, and the llama.cpp commit.
# Environment: STARHIL (tool, default ./starhil), BENCH_MODELS (lfm2-350m),
# BENCH_TYPES (q4_0 q8_0 f16 q4_k), BENCH_PROMPT (512), BENCH_GEN (128),
# BENCH_THREADS (2), BENCH_PAIRS (3), BENCH_KVTYPE (f16, llama.cpp's default).
# --json: print the rows as JSON instead of the table.
set -eu
cd "$(dirname "$0")/.."
[ "${1:-}" = "--help" ] && { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
JSON=0; [ "${1:-}" = "--json" ] && JSON=1
: "${LLAMA_CPP:?set LLAMA_CPP to a folder with llama.cpp's libllama/libggml shared libraries}"
STARHIL=${STARHIL:-./starhil}
MODELS=${BENCH_MODELS:-"lfm2-350m"}
TYPES=${BENCH_TYPES:-"q4_0 q8_0 f16 q4_k"}
PROMPT=${BENCH_PROMPT:-512}
GEN=${BENCH_GEN:-128}
THREADS=${BENCH_THREADS:-2}
PAIRS=${BENCH_PAIRS:-3}
KV=${BENCH_KVTYPE:-f16}
OUT=build/bench/llamacpp
mkdir -p "$OUT"
[ -x "$STARHIL" ] || { echo "bench_llamacpp: $STARHIL not built (run make)"; exit 1; }
cc -std=c11 -O3 -march=native -pthread -o "$OUT/membw" bench/membw.c
cc -std=c11 -O2 -o "$OUT/peer" bench/llamacpp_peer.c -ldl
"$OUT/peer" info "$LLAMA_CPP" >"$OUT/info.json" 2>/dev/null
uptime >"$OUT/uptime_before.txt"
: >"$OUT/runs.jsonl"
for model in $MODELS; do
    exe=$("$STARHIL" build "$model" --target native)
    for t in $TYPES; do
        gguf="$OUT/$model-$t.gguf"
        [ -s "$gguf" ] || "$exe" export --out "$gguf" --wtype "$t" --seed 1 >/dev/null
        i=0
        while [ "$i" -lt "$PAIRS" ]; do
            if [ $((i % 2)) -eq 0 ]; then order="llama variant"; else order="variant llama"; fi
            for who in $order; do
                bw=$("$OUT/membw" --threads "$THREADS" --mib 512 --reps 5 | tr -d '\n')
                echo "bench $model $t pair $i: $who" >&2
                if [ "$who" = llama ]; then
                    r=$("$OUT/peer" bench "$LLAMA_CPP" "$gguf" "$PROMPT" "$GEN" "$THREADS" 1 2>/dev/null | tr -d '\n')
                else
                    pp=$("$exe" bench --gguf "$gguf" --prompt "$PROMPT" --gen 0 --threads "$THREADS" --reps 1 \
                         --warmup 1 --kvtype "$KV" | tr -d '\n')
                    tg=$("$exe" bench --gguf "$gguf" --prompt 1 --gen "$GEN" --threads "$THREADS" --reps 1 \
                         --warmup 1 --kvtype "$KV" | tr -d '\n')
                    r="{\"pp\":$pp,\"tg\":$tg}"
                fi
                printf '{"model":"%s","type":"%s","pair":%d,"who":"%s","bw":%s,"run":%s,"gguf_bytes":%s}\n' \
                    "$model" "$t" "$i" "$who" "$bw" "$r" "$(wc -c <"$gguf")" >>"$OUT/runs.jsonl"
            done
            i=$((i + 1))
        done
    done
done
uptime >"$OUT/uptime_after.txt"
/usr/bin/python3 bench/llamacpp_table.py "$OUT" "$JSON"
