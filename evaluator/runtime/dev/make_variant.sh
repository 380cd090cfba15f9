#!/bin/sh
# dev/make_variant.sh PRESET [native|avx2|scalar|aarch64|aarch64-nodot|clang] - builds a dev variant
# into /tmp/rtdev/PRESET-MODE/variant (see gen_variant.py for presets).
set -e
here=$(cd "$(dirname "$0")" && pwd)
rt="$here/.."
preset=$1; mode=${2:-native}
out=/tmp/rtdev/$preset-$mode
python3 "$here/gen_variant.py" "$preset" "$out"
W="-std=c11 -Wall -Wextra -Werror -O3"
case $mode in
  native)  cc=gcc; f="-march=native" ;;
  clang)   cc=clang; f="-march=native" ;;
  avx2)    cc=gcc; f="-mavx2 -mfma -mf16c" ;;
  scalar)  cc=gcc; f="-DSHV_SCALAR" ;;
  aarch64) cc=aarch64-linux-gnu-gcc; f="-static -march=armv8.2-a+dotprod" ;;
  aarch64-nodot) cc=aarch64-linux-gnu-gcc; f="-static -march=armv8-a" ;;
  *) echo "unknown mode $mode"; exit 2 ;;
esac
$cc $W $f -DSHV_BUILD_FLAGS="\"$f\"" -I"$out" "$rt"/*.c -o "$out/variant" -lm -lpthread
echo "$out/variant"
