#!/bin/sh
# llamacpp_tokenizer_check.sh - checks with llama.cpp itself that `starhil export
# --format gguf --tokenizer-from FILE.gguf` gives a file llama.cpp can tokenize
# text with (what llama-cli -p does), and that the default no_vocab export cannot.
# LLAMA_CPP=DIR: llama.cpp's shared libraries (see bench_llamacpp.sh).  The
# tokenizer source is made here: a byte-level GPT-2 BPE vocabulary of 256 tokens
# (no real model's tokenizer is needed); the genome has vocabulary 256 to match.
# Prints the tokens of "Hello" and runs llama.cpp's forward pass on them; when
# DIR (or DIR/bin) has llama-cli, also runs `llama-cli -p Hello -n 8 -no-cnv` on
# the export and on `variant export --tokenizer-from` (same tokenizer copy).
set -eu
cd "$(dirname "$0")/.."
[ "${1:-}" = "--help" ] && { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
: "${LLAMA_CPP:?set LLAMA_CPP to a folder with llama.cpp's libllama/libggml shared libraries}"
STARHIL=${STARHIL:-./starhil}
OUT=build/bench/tokenizer
mkdir -p "$OUT"
LIB=$LLAMA_CPP
[ -e "$LLAMA_CPP/libllama.so" ] || [ ! -d "$LLAMA_CPP/bin" ] || LIB=$LLAMA_CPP/bin
cc -std=c11 -O2 -o "$OUT/peer" bench/llamacpp_peer.c -ldl
python3 - "$OUT/bytetok.gguf" <<'PY'
import struct, sys
def s(x): b = x.encode(); return struct.pack('<Q', len(b)) + b
bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
cs, n = bs[:], 0
for b in range(256):
    if b not in bs: bs.append(b); cs.append(256 + n); n += 1
m = dict(zip(bs, cs)); toks = [chr(m[b]) for b in range(256)]   # GPT-2's byte-to-unicode map
kv = [s('general.architecture') + struct.pack('<I', 8) + s('lfm2'),
      s('tokenizer.ggml.model') + struct.pack('<I', 8) + s('gpt2'),
      s('tokenizer.ggml.pre') + struct.pack('<I', 8) + s('default'),
      s('tokenizer.ggml.tokens') + struct.pack('<IIQ', 9, 8, 256) + b''.join(s(t) for t in toks),
      s('tokenizer.ggml.token_type') + struct.pack('<IIQ', 9, 5, 256) + struct.pack('<256i', *[1] * 256),
      s('tokenizer.ggml.merges') + struct.pack('<IIQ', 9, 8, 0),
      s('tokenizer.ggml.bos_token_id') + struct.pack('<II', 4, 1),
      s('tokenizer.ggml.eos_token_id') + struct.pack('<II', 4, 2)]
open(sys.argv[1], 'wb').write(b'GGUF' + struct.pack('<IQQ', 3, 0, len(kv)) + b''.join(kv))
PY
G="d=64 v=256 hd=32 theta=10000 eps=1e-05 ctx=512 tie=1 | conv(3)/swiglu(128)*2 gqa(2,1,qk)/swiglu(128) conv(3)/swiglu(128)"
"$STARHIL" export "$G" --format gguf --wtype q8_0 -o "$OUT/with_tokenizer.gguf" -q --tokenizer-from "$OUT/bytetok.gguf" >/dev/null
"$STARHIL" export "$G" --format gguf --wtype q8_0 -o "$OUT/no_vocab.gguf" -q >/dev/null
commit=$("$OUT/peer" info "$LIB" 2>/dev/null | sed 's/.*"commit":"\([^"]*\)".*/\1/')
for f in "$LLAMA_CPP/COMMIT" "$LLAMA_CPP/../COMMIT" "$LLAMA_CPP/../../COMMIT"; do
    [ "$commit" = unknown ] && [ -s "$f" ] && commit=$(head -c 40 "$f")
done
echo "llama.cpp commit: $commit"
toks=$("$OUT/peer" tokenize "$LIB" "$OUT/with_tokenizer.gguf" "Hello" 2>/dev/null)
echo "with --tokenizer-from: \"Hello\" -> $toks"
ids=$(echo "$toks" | sed 's/.*"tokens":\[\([^]]*\)\].*/\1/')
"$OUT/peer" logits "$LIB" "$OUT/with_tokenizer.gguf" "$ids" "$OUT/logits.f32" 2>/dev/null
echo "llama.cpp forward pass on them: $(wc -c <"$OUT/logits.f32") bytes of logits"
if "$OUT/peer" tokenize "$LIB" "$OUT/no_vocab.gguf" "Hello" >/dev/null 2>&1; then
    echo "unexpected: the no_vocab export tokenized text"; exit 1
fi
echo "without it (no_vocab): llama.cpp refuses to tokenize, as expected"
CLI=""
for d in "$LLAMA_CPP" "$LLAMA_CPP/bin"; do [ -x "$d/llama-cli" ] && { CLI=$d/llama-cli; break; }; done
if [ -n "$CLI" ]; then
    exe=$("$STARHIL" build "$G" --target native 2>/dev/null)
    "$exe" export --out "$OUT/variant_tokenizer.gguf" --wtype q8_0 --tokenizer-from "$OUT/bytetok.gguf" >/dev/null
    for f in with_tokenizer variant_tokenizer; do
        txt=$("$CLI" -m "$OUT/$f.gguf" -p Hello -n 8 -no-cnv --temp 0 -t 2 2>"$OUT/llama-cli.err") ||
            { echo "llama-cli failed on $f.gguf (see $OUT/llama-cli.err)"; exit 1; }
        case "$txt" in Hello*) ;; *) echo "llama-cli on $f.gguf did not echo the prompt: $txt"; exit 1 ;; esac
        echo "llama-cli -p Hello -n 8 on $f.gguf: $(printf '%s' "$txt" | tr -d '\n' | head -c 60)"
    done
fi
