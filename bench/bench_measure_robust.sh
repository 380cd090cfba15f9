#!/bin/sh
# bench_measure_robust.sh - how far stored latencies can be trusted on a busy
# board (issue 18).  One genome is measured again and again on a device
# (`measure --force`), alternately quiet and with N busy loops (N = cores + 1)
# running beside it; for each measurement it prints the stored figure (the
# robust estimate decode_ms), the median of all tokens, and the stability the
# store recorded; then the spread of the trusted figures and the check
# "every stored figure within 10% of the quiet one, or recorded unstable".
# Then it runs the LFM2-1.2B vs Qwen3-1.7B interleaved `compare` several times
# and prints each decode ratio with its 95% interval, and whether every ratio
# lies inside every other run's interval.
#
# Usage: bench/bench_measure_robust.sh [--rounds N=3] [--compare-runs N=5]
#            [--device D=local] [--json]
# Output: a readable table, or with --json one JSON object on stdout.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS=3 CMP_RUNS=5 DEVICE=local JSON=0
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --compare-runs) CMP_RUNS=$2; shift 2 ;;
        --device) DEVICE=$2; shift 2 ;;
        --json) JSON=1; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "bench_measure_robust: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -x ./starhil ] || make starhil >/dev/null
TMP=$(mktemp -d "${TMPDIR:-/tmp}/starhil_bench_robust.XXXXXX")
LOOPS=""
cleanup() {
    for p in $LOOPS; do kill "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
DB="$TMP/robust.db"
G='d=192 v=4096 hd=64 theta=10000 eps=1e-05 ctx=2048 tie=1 | conv(3)/swiglu(512)*6 gqa(3,1,qk)/swiglu(512)*3'
N=$(( $(nproc) + 1 ))
RES="$TMP/results.jsonl"
: > "$RES"

measure() {   # $1 = phase label
    ./starhil --db "$DB" measure "$G" --device "$DEVICE" --wtype f32 --prompt 64 --gen 64 \
        --max-reps 12 --force --settle-rounds 1 --settle-max 10 --json 2>"$TMP/err" >"$TMP/out" ||
        { echo "bench_measure_robust: measure failed: $(cat "$TMP/err")" >&2; exit 1; }
    python3 - "$1" "$TMP/out" >>"$RES" <<'EOF'
import json, sys
r = json.load(open(sys.argv[2]))
print(json.dumps({"phase": sys.argv[1], "decode_ms": r["decode_ms"], "decode_ms_low": r["decode_ms_low"],
                  "decode_ms_high": r["decode_ms_high"], "median": r["decode_ms_median"],
                  "stability": r["stability"], "reason": r["stability_reason"],
                  "quiet_reps": r["quiet_reps"], "reps": r["reps"]}))
EOF
}

i=0
while [ $i -lt "$ROUNDS" ]; do
    measure quiet
    LOOPS=""
    j=0
    while [ $j -lt $N ]; do
        sh -c 'while :; do :; done' &
        LOOPS="$LOOPS $!"
        j=$((j + 1))
    done
    measure "busy x$N"
    for p in $LOOPS; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    LOOPS=""
    i=$((i + 1))
done

CMP="$TMP/compare.jsonl"
: > "$CMP"
k=0
while [ $k -lt "$CMP_RUNS" ]; do
    ./starhil --db "$DB" compare --device "$DEVICE" lfm2-1.2b qwen3-1.7b --prompt 32 --gen 16 \
        --rounds 3 --reps 1 --json 2>"$TMP/err" >"$TMP/out" ||
        { echo "bench_measure_robust: compare failed: $(cat "$TMP/err")" >&2; exit 1; }
    python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$TMP/out" >>"$CMP"
    k=$((k + 1))
done

python3 - "$RES" "$CMP" "$JSON" "$N" "$(nproc)" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cmps = [json.loads(l) for l in open(sys.argv[2])]
as_json, n_loops, cores = sys.argv[3] == "1", int(sys.argv[4]), int(sys.argv[5])
quiet = [r for r in rows if r["phase"] == "quiet" and r["stability"] != "unstable"]
ref = min(r["decode_ms"] for r in quiet) if quiet else None
for r in rows:
    r["vs_quiet"] = r["decode_ms"] / ref if ref else None
    r["ok"] = r["stability"] == "unstable" or (ref is not None and abs(r["vs_quiet"] - 1) <= 0.10)
trusted = [r["decode_ms"] for r in rows if r["stability"] != "unstable"]
spread = (max(trusted) / min(trusted) - 1) if len(trusted) > 1 else 0.0
ratios = []
for c in cmps:
    x = c["results"][1]["decode_speed_vs_first"]
    ratios.append({"qwen_over_lfm2_speed": x["ratio"], "ci": [x["ci_low"], x["ci_high"]],
                   "lfm2_x_faster": 1 / x["ratio"] if x["ratio"] else None,
                   "stability": [c["results"][0]["stability"], c["results"][1]["stability"]]})
inside = all(lo <= r["qwen_over_lfm2_speed"] <= hi for r in ratios for (lo, hi) in [q["ci"] for q in ratios])
goal = all(r["ok"] for r in rows)
out = {"cores": cores, "busy_loops": n_loops, "quiet_reference_ms": ref, "measurements": rows,
       "trusted_spread": spread, "goal_met": goal, "compare_runs": ratios,
       "compare_ratios_within_every_interval": inside}
if as_json:
    print(json.dumps(out, indent=2))
    sys.exit(0)
print("== bench_measure_robust: %d cores, busy phases run %d busy loops" % (cores, n_loops))
print("%-9s %10s %21s %10s %-10s %s" % ("phase", "stored ms", "95% interval", "median ms", "stability", "vs quiet / reason"))
for r in rows:
    vs = "%.3fx" % r["vs_quiet"] if r["vs_quiet"] else "-"
    print("%-9s %10.4f   [%7.4f, %7.4f] %10.4f %-10s %s %s" % (r["phase"], r["decode_ms"], r["decode_ms_low"],
          r["decode_ms_high"], r["median"], r["stability"], vs, r["reason"][:90]))
print("quiet reference (lowest trusted quiet figure): %s" % ("%.4f ms" % ref if ref else "none (every quiet measurement was unstable)"))
print("spread of trusted (not unstable) stored figures: %.1f%%" % (100 * spread))
print("goal (each stored figure within 10%% of the quiet one, or recorded unstable): %s" % ("met" if goal else "NOT met"))
print("\ncompare lfm2-1.2b vs qwen3-1.7b, %d runs (decode speed of lfm2 over qwen3, paired over rounds):" % len(ratios))
for i, r in enumerate(ratios):
    lo, hi = r["ci"]
    print("  run %d: lfm2 %.3fx faster, 95%% CI %.3f-%.3fx  (stability %s)" % (i + 1, r["lfm2_x_faster"], 1 / hi, 1 / lo,
          "/".join(r["stability"])))
print("every run's ratio inside every run's interval: %s" % ("yes" if inside else "no"))
EOF
