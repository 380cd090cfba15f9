#!/bin/sh
# dev/check_paths.sh PRESET [NTOK=16] [MODES] - builds the preset for each SIMD path, runs
# `logits` (prefill and decode) for every weight type and prints the max |diff| /
# max |logit| of each path against the scalar prefill result.
set -e
here=$(cd "$(dirname "$0")" && pwd)
p=$1; n=${2:-16}; modes=${3:-"native avx2 scalar aarch64 aarch64-nodot"}
T=$(seq -s, 3 $((n + 2)))
for m in $modes; do sh "$here/make_variant.sh" "$p" "$m" >/dev/null; done
for m in $modes; do
  R=""; case $m in aarch64*) R=qemu-aarch64;; esac
  for w in f32 f16 q8_0 q4_0; do
    $R /tmp/rtdev/$p-$m/variant logits --tokens $T --wtype $w --out /tmp/rtdev/cp_${p}_${m}_$w.bin >/dev/null
    $R /tmp/rtdev/$p-$m/variant logits --tokens $T --wtype $w --mode decode --out /tmp/rtdev/cpd_${p}_${m}_$w.bin >/dev/null
  done
done
/usr/bin/python3 - "$p" "$modes" <<'PY'
import sys, numpy as np
p, modes = sys.argv[1], sys.argv[2].split()
for w in ['f32', 'f16', 'q8_0', 'q4_0']:
    ref = np.fromfile('/tmp/rtdev/cp_%s_scalar_%s.bin' % (p, w), np.float32); m = np.abs(ref).max()
    f32 = np.fromfile('/tmp/rtdev/cp_%s_scalar_f32.bin' % p, np.float32)
    out = ['%s prefill/decode:' % w]
    for k in modes:
        a = np.fromfile('/tmp/rtdev/cp_%s_%s_%s.bin' % (p, k, w), np.float32)
        d = np.fromfile('/tmp/rtdev/cpd_%s_%s_%s.bin' % (p, k, w), np.float32)
        out.append('%s %.2g/%.2g' % (k, np.abs(a - ref).max() / m, np.abs(d - ref).max() / m))
    out.append('| vs f32 weights %.2g' % (np.abs(ref - f32).max() / np.abs(f32).max()))
    print(' '.join(out))
PY
