#!/bin/sh
# bench_llamacpp.sh - the variant runtime and llama.cpp's CPU path side by side on
# the same GGUF files.  LLAMA_CPP=DIR names llama.cpp: a build folder (or its
# bin/) holding `llama-bench`, which is then run as it is
# (`llama-bench -m FILE -p PROMPT -n GEN -t THREADS -r 1 -o json`), or, without
# llama-bench, a folder of llama.cpp's shared libraries (libllama*.so,
# libggml*.so: a prebuilt package), which bench/llamacpp_peer.c loads with
# dlopen and measures the same way.  Nothing of llama.cpp is built into starhil.
# For every model and type: `variant export` writes the GGUF (synthetic
# weights); type q4_k_m is made the way users get it when llama-quantize is
# there (f16 export -> `llama-quantize F16 Q4_K_M`), else by `variant export
# --wtype q4_k_m`.  Then PAIRS alternating pairs (llama.cpp then the variant,
# next pair the other way round), each run preceded by a memory-bandwidth
# reading (bench/membw.c, same threads); prints a table with medians, spread
# (min-max), ratios variant/llama.cpp, decode bytes/s as a share of the
# bandwidth, the peak RSS of each side (the kernel's maximum resident set of
# the llama-bench (or peer) process, and of the variant's prefill and decode
# processes, the larger of the two; read with getrusage on the finished
# child, the same way for both), `uptime` before and after, and the llama.cpp commit (from a COMMIT
# file or the git checkout above the build folder, else what llama.cpp reports).
# Environment: STARHIL (tool, default ./starhil), BENCH_MODELS (lfm2-350m
# lfm2-1.2b), BENCH_TYPES (q4_0 q8_0 f16 q4_k_m), BENCH_PROMPT (512), BENCH_GEN
# (128), BENCH_THREADS (2), BENCH_PAIRS (3), BENCH_KVTYPE (f16, llama.cpp's
# default), BENCH_LLAMA_ARGS (extra llama-bench options, default none),
# BENCH_MARCH (the variant's -march, e.g. haswell for its AVX2 paths beside
# a llama.cpp built with GGML_NATIVE=OFF GGML_AVX2=ON; default: native).
# --json: print the rows as JSON instead of the table.
set -eu
cd "$(dirname "$0")/.."
[ "${1:-}" = "--help" ] && { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
JSON=0; [ "${1:-}" = "--json" ] && JSON=1
if [ -z "${LLAMA_CPP:-}" ]; then   # `make bench` without LLAMA_CPP=DIR: nothing to compare with
    echo "bench_llamacpp: skipped (set LLAMA_CPP to llama.cpp's build folder, e.g. make bench LLAMA_CPP=/path/to/llama.cpp/build)"
    exit 0
fi
[ -d "$LLAMA_CPP" ] || { echo "bench_llamacpp: LLAMA_CPP=$LLAMA_CPP is not a folder"; exit 1; }
STARHIL=${STARHIL:-./starhil}
MODELS=${BENCH_MODELS:-"lfm2-350m lfm2-1.2b"}
TYPES=${BENCH_TYPES:-"q4_0 q8_0 f16 q4_k_m"}
PROMPT=${BENCH_PROMPT:-512}
GEN=${BENCH_GEN:-128}
THREADS=${BENCH_THREADS:-2}
PAIRS=${BENCH_PAIRS:-3}
KV=${BENCH_KVTYPE:-f16}
LARGS=${BENCH_LLAMA_ARGS:-}
OUT=build/bench/llamacpp
mkdir -p "$OUT"
[ -x "$STARHIL" ] || { echo "bench_llamacpp: $STARHIL not built (run make)"; exit 1; }
BIN=""
for d in "$LLAMA_CPP" "$LLAMA_CPP/bin"; do
    [ -x "$d/llama-bench" ] && { BIN=$d; break; }
done
cc -std=c11 -O3 -march=native -pthread -o "$OUT/membw" bench/membw.c
if [ -n "$BIN" ]; then
    mode=llama-bench
    commit=""
    for f in "$BIN/COMMIT" "$BIN/../COMMIT" "$BIN/../../COMMIT"; do
        [ -z "$commit" ] && [ -s "$f" ] && commit=$(head -c 40 "$f")
    done
    [ -z "$commit" ] && commit=$(git -C "$BIN" rev-parse HEAD 2>/dev/null || true)
    [ -z "$commit" ] && commit=$("$BIN/llama-bench" --version 2>&1 | sed -n 's/.*(\([0-9a-f]*\)).*/\1/p' | head -1)
    printf '{"commit":"%s","system_info":"llama-bench %s","runner":"llama-bench"}\n' \
        "${commit:-unknown}" "$BIN/llama-bench" >"$OUT/info.json"
else
    mode=peer
    cc -std=c11 -O2 -o "$OUT/peer" bench/llamacpp_peer.c -ldl
    "$OUT/peer" info "$LLAMA_CPP" >"$OUT/info.json" 2>/dev/null
fi
uptime >"$OUT/uptime_before.txt"
: >"$OUT/runs.jsonl"
# llama-bench's JSON (one object per test) -> {"pp_tok_s":[...],"tg_tok_s":[...]}
lb_json() {
    /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
pp = [x for t in r if t["n_prompt"] > 0 and t["n_gen"] == 0 for x in t["samples_ts"]]
tg = [x for t in r if t["n_gen"] > 0 and t["n_prompt"] == 0 for x in t["samples_ts"]]
print(json.dumps({"pp_tok_s": pp, "tg_tok_s": tg, "build_commit": r[0].get("build_commit")}))'
}
# rss_run FILE CMD...: runs CMD (its stdout passes through) and writes its peak
# resident set in bytes to FILE (the finished child's ru_maxrss)
rss_run() {
    /usr/bin/python3 -c '
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write("%d\n" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024))
sys.exit(rc)' "$@"
}
for model in $MODELS; do
    exe=$("$STARHIL" build "$model" --target native ${BENCH_MARCH:+--march "$BENCH_MARCH"})
    for t in $TYPES; do
        gguf="$OUT/$model-$t.gguf"
        made="variant export --wtype $t"
        if [ "$t" = q4_k_m ] && [ -x "${BIN:-/nonexistent}/llama-quantize" ]; then
            made="llama-quantize Q4_K_M of the f16 export"
            gguf="$OUT/$model-q4_k_m-llamaquant.gguf"
            if [ ! -s "$gguf" ]; then
                f16="$OUT/$model-f16.gguf"
                [ -s "$f16" ] || "$exe" export --out "$f16" --wtype f16 --seed 1 >/dev/null
                "$BIN/llama-quantize" "$f16" "$gguf.tmp" Q4_K_M "$THREADS" >"$OUT/quantize.log" 2>&1 ||
                    { echo "bench_llamacpp: llama-quantize failed (see $OUT/quantize.log)"; rm -f "$gguf.tmp"; exit 1; }
                mv "$gguf.tmp" "$gguf"
            fi
        fi
        [ -s "$gguf" ] || "$exe" export --out "$gguf" --wtype "$t" --seed 1 >/dev/null
        i=0
        while [ "$i" -lt "$PAIRS" ]; do
            if [ $((i % 2)) -eq 0 ]; then order="llama variant"; else order="variant llama"; fi
            for who in $order; do
                bw=$("$OUT/membw" --threads "$THREADS" --mib 512 --reps 5 | tr -d '\n')
                echo "bench $model $t pair $i: $who ($(uptime | sed 's/.*load/load/'))" >&2
                if [ "$who" = llama ] && [ $mode = llama-bench ]; then
                    # shellcheck disable=SC2086
                    r=$(rss_run "$OUT/rss1" "$BIN/llama-bench" -m "$gguf" -p "$PROMPT" -n "$GEN" -t "$THREADS" -r 1 \
                        -o json $LARGS 2>"$OUT/llama-bench.err" | lb_json | tr -d '\n')
                    echo 0 >"$OUT/rss2"
                elif [ "$who" = llama ]; then
                    r=$(rss_run "$OUT/rss1" "$OUT/peer" bench "$LLAMA_CPP" "$gguf" "$PROMPT" "$GEN" "$THREADS" 1 \
                        2>/dev/null | tr -d '\n')
                    echo 0 >"$OUT/rss2"
                else
                    pp=$(rss_run "$OUT/rss1" "$exe" bench --gguf "$gguf" --prompt "$PROMPT" --gen 0 --threads "$THREADS" \
                         --reps 1 --warmup 1 --kvtype "$KV" | tr -d '\n')
                    tg=$(rss_run "$OUT/rss2" "$exe" bench --gguf "$gguf" --prompt 1 --gen "$GEN" --threads "$THREADS" \
                         --reps 1 --warmup 1 --kvtype "$KV" | tr -d '\n')
                    r="{\"pp\":$pp,\"tg\":$tg}"
                fi
                rss=$(cat "$OUT/rss1" "$OUT/rss2" | sort -n | tail -1)
                case "$r" in
                    *tok_s*) ;;
                    *) echo "bench_llamacpp: $who gave no result for $gguf (see $OUT/llama-bench.err)"; exit 1 ;;
                esac
                load=$(sed 's/.*load average: //' /proc/loadavg 2>/dev/null | cut -d' ' -f1)
                printf '{"model":"%s","type":"%s","made":"%s","pair":%d,"who":"%s","load1":%s,"bw":%s,"run":%s,"gguf_bytes":%s,"peak_rss_bytes":%s}\n' \
                    "$model" "$t" "$made" "$i" "$who" "${load:-null}" "$bw" "$r" "$(wc -c <"$gguf")" "${rss:-null}" \
                    >>"$OUT/runs.jsonl"
            done
            i=$((i + 1))
        done
    done
done
uptime >"$OUT/uptime_after.txt"
/usr/bin/python3 bench/llamacpp_table.py "$OUT" "$JSON"
