#!/bin/sh
# run_fuzz.sh SECONDS - build the libFuzzer harnesses with clang (ASan+UBSan)
# and run each for SECONDS on a copy of its seed corpus: fuzz_genome (the
# genome's text and JSON parsers) and fuzz_gguf_meta (GGUF metadata and the
# genome import of lfm2 / lfm2moe / qwen3 / llama files; its seeds are tiny
# exports of each architecture, written by `starhil export --format gguf`).  Crashes are kept in
# tests/fuzz/crashes/.  Exit status is non-zero if the fuzzer found a crash.
set -e
secs=${1:-30}
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/build/fuzz"
mkdir -p "$out" "$root/tests/fuzz/crashes"
CFLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I$root $(pkg-config --cflags jansson)"
clang $CFLAGS -o "$out/fuzz_genome" "$root/tests/fuzz/fuzz_genome.c" \
    "$root"/genome/genome.c "$root"/genome/genome_text.c "$root"/genome/genome_json.c \
    "$root"/genome/analytics.c "$root"/genome/presets.c "$root"/util/err.c "$root"/util/strbuf.c \
    $(pkg-config --libs jansson) -lm
work="$out/corpus_genome"
mkdir -p "$work"
cp "$root"/tests/fuzz/corpus_genome/* "$work"/
echo "fuzz_genome: running for ${secs}s"
"$out/fuzz_genome" -max_total_time="$secs" -max_len=4096 -timeout=10 \
    -artifact_prefix="$root/tests/fuzz/crashes/" "$work"
clang $CFLAGS -o "$out/fuzz_gguf_meta" "$root/tests/fuzz/fuzz_gguf_meta.c" \
    "$root"/genome/gguf_meta.c "$root"/genome/genome.c "$root"/genome/genome_text.c "$root"/genome/genome_json.c \
    "$root"/genome/analytics.c "$root"/genome/presets.c "$root"/util/err.c "$root"/util/strbuf.c \
    $(pkg-config --libs jansson) -lm
work="$out/corpus_gguf"
mkdir -p "$work"
cp "$root"/tests/fuzz/corpus_gguf/* "$work"/
echo "fuzz_gguf_meta: running for ${secs}s"
"$out/fuzz_gguf_meta" -max_total_time="$secs" -max_len=65536 -timeout=10 \
    -artifact_prefix="$root/tests/fuzz/crashes/" "$work"
