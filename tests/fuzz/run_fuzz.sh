#!/bin/sh
# run_fuzz.sh SECONDS - build the libFuzzer harnesses with clang (ASan+UBSan)
# and run each for SECONDS on a copy of its seed corpus:
#   fuzz_genome     the genome's text and JSON parsers;
#   fuzz_gguf_meta  GGUF metadata and the genome import of lfm2 / lfm2moe /
#                   qwen3 / llama files (seeds: tiny exports of each
#                   architecture, written by `starhil export --format gguf`);
#   fuzz_rt_gguf    the variant runtime's GGUF loader over every weight type
#                   (f32, f16, q8_0, q4_0, q4_K, q5_K, q6_K, Q4_K_M), built
#                   against one small genome's sh_variant.h (`starhil build
#                   --header`), seeded with that genome's own exports (made
#                   here by the variant, so the tool must be built: `make`).
# Each prints libFuzzer's final stats line (execs).  Crashes are kept in
# tests/fuzz/crashes/.  Exit status is non-zero if a fuzzer found a crash.
set -e
secs=${1:-30}
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/build/fuzz"
mkdir -p "$out" "$root/tests/fuzz/crashes"
CFLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I$root $(pkg-config --cflags jansson)"
GENOME_SRC="$root/genome/genome.c $root/genome/genome_text.c $root/genome/genome_json.c $root/genome/analytics.c
            $root/genome/presets.c $root/util/err.c $root/util/strbuf.c"

# fuzz NAME MAX_LEN: runs build/fuzz/NAME for secs on a copy of $out/corpus_NAME
fuzz() {
    echo "$1: running for ${secs}s"
    "$out/$1" -max_total_time="$secs" -max_len="$2" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$root/tests/fuzz/crashes/" "$out/corpus_$1" 2>&1 |
        grep -E "stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY|crash|Done" || true
    ! ls "$root/tests/fuzz/crashes/" | grep -q "^crash-\|^leak-\|^timeout-"
}
seed() {   # seed NAME DIR: the corpus copy of NAME starts from DIR's files
    rm -rf "$out/corpus_$1"
    mkdir -p "$out/corpus_$1"
    cp "$2"/* "$out/corpus_$1"/
}

# shellcheck disable=SC2086
clang $CFLAGS -o "$out/fuzz_genome" "$root/tests/fuzz/fuzz_genome.c" $GENOME_SRC $(pkg-config --libs jansson) -lm
seed fuzz_genome "$root/tests/fuzz/corpus_genome"
fuzz fuzz_genome 4096

# shellcheck disable=SC2086
clang $CFLAGS -o "$out/fuzz_gguf_meta" "$root/tests/fuzz/fuzz_gguf_meta.c" "$root/genome/gguf_meta.c" $GENOME_SRC \
    $(pkg-config --libs jansson) -lm
seed fuzz_gguf_meta "$root/tests/fuzz/corpus_gguf"
fuzz fuzz_gguf_meta 65536

starhil="$root/starhil"
[ -x "$starhil" ] || { echo "run_fuzz: $starhil not built (run make) for fuzz_rt_gguf" >&2; exit 1; }
genome="d=256 v=256 hd=64 theta=10000 eps=1e-05 ctx=512 tie=1 | conv(3)/swiglu(256) gqa(4,2,qk)/swiglu(256)"
hdr="$out/rt_gguf_variant"
mkdir -p "$hdr"
"$starhil" build "$genome" --header > "$hdr/sh_variant.h"
variant=$("$starhil" build "$genome" -q)
rm -rf "$hdr/seeds" && mkdir -p "$hdr/seeds"
for t in f32 f16 q8_0 q4_0 q4_k q5_k q6_k q4_k_m; do
    "$variant" export --out "$hdr/seeds/$t.gguf" --wtype "$t" --seed 3 > /dev/null
done
rt="$root/evaluator/runtime"
# shellcheck disable=SC2086
clang -std=c11 -g -O2 -march=native -pthread -fsanitize=fuzzer,address,undefined -I"$hdr" -I"$rt" \
    -o "$out/fuzz_rt_gguf" "$root/tests/fuzz/fuzz_rt_gguf.c" $(ls "$rt"/*.c | grep -v '/rt_main\.c$\|/rt_probe\.c$') -lm
seed fuzz_rt_gguf "$hdr/seeds"
fuzz fuzz_rt_gguf 4000000
