#!/bin/sh
# bench_compare_runs.sh - do runs of the same `starhil compare` agree within
# their intervals (issue 18)?  Runs the LFM2-1.2B vs Qwen3-1.7B interleaved
# compare K times in a row (default 5) and prints, per run, the decode ratio
# (LFM2's speed over Qwen3's), compare's own 95% interval, and whether that
# interval holds every other run's ratio.  Then it explains the answer with
# the per-round ratios compare prints (`round_ratios`):
#   - a one-way analysis of variance of the log round ratios across runs:
#     F = (between-run mean square) / (within-run mean square) and its
#     p-value.  F near 1: runs differ only as much as their rounds predict
#     (the intervals should hold); F >> 1: something is shared by the rounds
#     of a run and changes between runs (drift of the host on a minutes
#     timescale, or process-level placement), which no within-run interval
#     can see;
#   - the between-run standard deviation beyond what the rounds explain
#     (random-effects estimate), and each run's interval widened by it
#     ("with between-run component, learned from these K runs": a t interval
#     with K-1 degrees of freedom), and whether those hold the other runs;
#   - the trend of the round ratios within each run (slope per minute): a
#     drift inside runs shows as slopes of one sign.
# With --long-rounds N it also runs one compare of N rounds (spread over N
# times as long): if the host drifts, its rounds spread as widely as the
# short runs' ratios do.  --between-run-sd X is passed to every compare, so
# the "compare's 95% CI" column is compare's interval widened by X: with an X
# learned earlier (e.g. 0.0095 from the idle runs in docs/devices.md) this is
# the out-of-sample test of whether widened intervals hold each other.
# --between-run-sd learned passes nothing: compare then learns the
# between-run part from the earlier runs in the bench's own database (the
# first run uses compare's prior), which is what a user gets by default.
#
# Record `uptime` beside the figures; the machine may be shared.
#
# Usage: bench/bench_compare_runs.sh [--runs K=5] [--rounds N=6] [--prompt N=32]
#            [--gen N=16] [--reps N=1] [--long-rounds N=0] [--device D=local]
#            [--threads N] [--between-run-sd X=0|learned] [--json]
# Output: a readable table, or with --json one JSON object on stdout.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
RUNS=5 ROUNDS=6 PROMPT=32 GEN=16 REPS=1 LONG=0 DEVICE=local THREADS="" JSON=0 BSD=0
need() { [ $# -ge 2 ] || { echo "bench_compare_runs: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) need "$@"; RUNS=$2; shift 2 ;;
        --rounds) need "$@"; ROUNDS=$2; shift 2 ;;
        --prompt) need "$@"; PROMPT=$2; shift 2 ;;
        --gen) need "$@"; GEN=$2; shift 2 ;;
        --reps) need "$@"; REPS=$2; shift 2 ;;
        --long-rounds) need "$@"; LONG=$2; shift 2 ;;
        --device) need "$@"; DEVICE=$2; shift 2 ;;
        --threads) need "$@"; THREADS=$2; shift 2 ;;
        --between-run-sd) need "$@"; BSD=$2; shift 2 ;;
        --json) JSON=1; shift ;;
        -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
        *) echo "bench_compare_runs: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in "$RUNS" "$ROUNDS" "$PROMPT" "$GEN" "$REPS" "$LONG"; do
    case "$v" in ''|*[!0-9]*) echo "bench_compare_runs: '$v' is not a non-negative integer" >&2; exit 2 ;; esac
done
[ "$RUNS" -ge 2 ] || { echo "bench_compare_runs: --runs must be at least 2" >&2; exit 2; }
[ -x ./starhil ] || make starhil >/dev/null
TMP=$(mktemp -d "${TMPDIR:-/tmp}/starhil_bench_cmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
DB="$TMP/cmp.db"
OUT="$TMP/runs.jsonl"
: > "$OUT"

one() {   # $1 = label, $2 = rounds
    LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
    T0=$(date +%s)
    ./starhil --db "$DB" compare --device "$DEVICE" lfm2-1.2b qwen3-1.7b --prompt "$PROMPT" --gen "$GEN" \
        --rounds "$2" --reps "$REPS" ${THREADS:+--threads "$THREADS"} $BSD_ARG --json \
        2>"$TMP/err" >"$TMP/out" ||
        { echo "bench_compare_runs: compare failed: $(cat "$TMP/err")" >&2; exit 1; }
    python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); print(json.dumps({"label": sys.argv[2], "load": sys.argv[3], "started": sys.argv[4], "seconds": int(sys.argv[5]), "compare": o}))' \
        "$TMP/out" "$1" "$LOAD" "$(date -u -d @"$T0" +%H:%M:%S)" "$(( $(date +%s) - T0 ))" >>"$OUT"
}
case "$BSD" in
    learned) BSD_ARG="" ;;
    *[!0-9.]*|'') echo "bench_compare_runs: --between-run-sd '$BSD' is not a number or 'learned'" >&2; exit 2 ;;
    *) BSD_ARG="--between-run-sd $BSD" ;;
esac
k=0
while [ $k -lt "$RUNS" ]; do one run "$ROUNDS"; k=$((k + 1)); done
[ "$LONG" -gt 0 ] && one long "$LONG"

python3 - "$OUT" "$JSON" "$(uptime)" "$BSD" <<'EOF'
import json, math, sys

def betacf(a, b, x):
    # continued fraction of the incomplete beta (modified Lentz)
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + num * d; d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c; c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1) < 1e-14:
            break
    return f

def ibeta(a, b, x):
    if x <= 0: return 0.0
    if x >= 1: return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    return front * betacf(a, b, x) / a if x < (a + 1) / (a + b + 2) else 1 - front * betacf(b, a, 1 - x) / b

def f_sf(F, d1, d2):        # P(F(d1, d2) > F)
    return ibeta(d2 / 2, d1 / 2, d2 / (d2 + d1 * F)) if F > 0 else 1.0

def t_quant(p, df):         # p-quantile of Student's t, by bisection on its CDF
    def cdf(t):
        x = df / (df + t * t)
        tail = 0.5 * ibeta(df / 2, 0.5, x)
        return 1 - tail if t > 0 else tail
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2

rows = [json.loads(l) for l in open(sys.argv[1])]
as_json, up = sys.argv[2] == "1", sys.argv[3]
bsd = -1.0 if sys.argv[4] == "learned" else float(sys.argv[4])   # -1: learned by compare, per run
runs, long_run = [], None
for r in rows:
    x = r["compare"]["results"][1]["decode_speed_vs_first"]     # qwen3 speed / lfm2 speed
    lr = [-math.log(v) for v in x["round_ratios"] if v]             # log(lfm2 over qwen3), per round
    t = x["round_start_s"]
    n = len(lr)
    mean = sum(lr) / n
    var = sum((v - mean) ** 2 for v in lr) / (n - 1) if n > 1 else 0.0
    tm = sum(t) / n
    stt = sum((ti - tm) ** 2 for ti in t)
    slope = sum((ti - tm) * (v - mean) for ti, v in zip(t, lr)) / stt * 60 if stt > 0 else 0.0
    d = {"started": r["started"], "load": r["load"], "seconds": r["seconds"], "rounds": n,
         "lfm2_x_faster": 1 / x["ratio"], "ci": [1 / x["ci_high"], 1 / x["ci_low"]],
         "ci_coverage": x["ci_coverage"], "round_x": [math.exp(v) for v in lr],
         "mean_log": mean, "var_log": var, "slope_pct_per_min": 100 * slope,
         "stability": [r["compare"]["results"][0]["stability"], r["compare"]["results"][1]["stability"]]}
    if r["label"] == "run":
        runs.append(d)
    else:
        long_run = d
K = len(runs)
for d in runs:
    d["holds_others"] = all(d["ci"][0] <= o["lfm2_x_faster"] <= d["ci"][1] for o in runs)
# one-way ANOVA of log round ratios across runs
N = sum(d["rounds"] for d in runs)
grand = sum(d["mean_log"] * d["rounds"] for d in runs) / N
ssb = sum(d["rounds"] * (d["mean_log"] - grand) ** 2 for d in runs)
ssw = sum(d["var_log"] * (d["rounds"] - 1) for d in runs)
dfb, dfw = K - 1, N - K
msb, msw = ssb / dfb, (ssw / dfw if dfw > 0 else float("nan"))
F = msb / msw if msw and msw > 0 else float("inf")
p = f_sf(F, dfb, dfw) if math.isfinite(F) else 0.0
r_bar = N / K
sd_between = math.sqrt(max(0.0, (msb - msw) / r_bar)) if math.isfinite(msw) else float("nan")
sd_within = math.sqrt(msw) if math.isfinite(msw) else float("nan")
tq = t_quant(0.975, K - 1)
for d in runs:
    half = tq * math.sqrt(msw / d["rounds"] + sd_between ** 2)
    d["ci_with_between"] = [math.exp(d["mean_log"] - half), math.exp(d["mean_log"] + half)]
    d["with_between_holds_others"] = all(d["ci_with_between"][0] <= o["lfm2_x_faster"] <= d["ci_with_between"][1]
                                         for o in runs)
ratios = [d["lfm2_x_faster"] for d in runs]
out = {"uptime": up, "between_run_sd_passed": bsd, "runs": runs, "long_run": long_run,
       "spread": max(ratios) / min(ratios) - 1,
       "every_interval_holds_every_ratio": all(d["holds_others"] for d in runs),
       "anova": {"F": F, "df": [dfb, dfw], "p": p, "sd_within_log": sd_within, "sd_between_log": sd_between},
       "with_between_all_hold": all(d["with_between_holds_others"] for d in runs),
       # what to pass to compare --between-run-sd: the sd of the run ratios
       # themselves (rounds and run effect together, on the log scale)
       "between_run_sd_suggested": math.sqrt(sum((math.log(x) - sum(map(math.log, ratios)) / K) ** 2
                                                 for x in ratios) / (K - 1))}
if long_run:
    out["long_run_sd_log"] = math.sqrt(long_run["var_log"])
if as_json:
    print(json.dumps(out, indent=2))
    sys.exit(0)
print("== bench_compare_runs: lfm2-1.2b vs qwen3-1.7b, %d runs; %s" % (K, up.strip()))
print("%-4s %-9s %-16s %5s %8s %-21s %-7s %-22s %-7s %s" % ("run", "start UTC", "load", "s", "lfm2 x", "compare's 95% CI",
      "holds", "with between-run part", "holds", "trend %/min"))
for i, d in enumerate(runs):
    print("%-4d %-9s %-16s %5d %8.3f [%6.3f, %6.3f]     %-7s [%6.3f, %6.3f]       %-7s %+6.2f" % (
          i + 1, d["started"], d["load"], d["seconds"], d["lfm2_x_faster"], d["ci"][0], d["ci"][1],
          "yes" if d["holds_others"] else "NO", d["ci_with_between"][0], d["ci_with_between"][1],
          "yes" if d["with_between_holds_others"] else "NO", d["slope_pct_per_min"]))
print("spread of the %d ratios: %.1f%%; compare's own intervals%s each hold every ratio: %s" % (
      K, 100 * out["spread"], (" (widened by --between-run-sd %g)" % bsd if bsd > 0 else
       " (widened by the between-run sd compare learned: %s)" % ", ".join(
           "%.2f%%" % (100 * r["compare"].get("ci_between_run_sd", 0)) for r in rows if r["label"] == "run")
       if bsd < 0 else " (rounds only)"),
      "yes" if out["every_interval_holds_every_ratio"] else "no"))
print("rounds within a run: sd %.2f%% (log ratio); runs beyond what their rounds explain: sd %.2f%%" % (
      100 * sd_within, 100 * sd_between))
print("one-way ANOVA across runs: F = %.2f on (%d, %d) df, p = %.3g -> %s" % (F, dfb, dfw, p,
      "runs differ more than their rounds predict (a per-run effect: host drift or placement)" if p < 0.05
      else "no evidence that runs differ more than their rounds predict"))
print("intervals with the between-run part (t, %d df, learned from these runs) each hold every ratio: %s" % (
      K - 1, "yes" if out["with_between_all_hold"] else "no"))
print("learned between-run sd of the ratio: %.4f -> later runs on this device: starhil compare ... --between-run-sd %.4f" % (
      out["between_run_sd_suggested"], out["between_run_sd_suggested"]))
if long_run:
    print("long run: %d rounds over %d s: lfm2 %.3fx [%.3f, %.3f], round sd %.2f%%, trend %+.2f%%/min "
          "(drift on this timescale shows as a round sd near the runs' spread)" % (
          long_run["rounds"], long_run["seconds"], long_run["lfm2_x_faster"], long_run["ci"][0], long_run["ci"][1],
          100 * out["long_run_sd_log"], long_run["slope_pct_per_min"]))
EOF
