#!/bin/sh
# bench_slurm.sh - overhead per capability-score job of the Slurm executor on
# the single-node test cluster (tests/helpers/slurm_local.sh: slurmctld +
# slurmd + munged on this host, batch_sched_delay=0).  Runs N one-job
# `starhil score --executor slurm` calls with a tiny built-in setting (each a
# different seed, so each is trained), through a wrapper that logs when the
# job's process starts and ends, and reports per job:
#   submit-to-start   job process start - row submitted_at (after sbatch returned)
#   in-job            the starhil --in-job process itself (training included)
#   end-to-stored     job process end - row finished_at (squeue poll at
#                     --poll-interval, reading the result file, storing it)
#   total             submitted_at .. finished_at
# usage: bench/bench_slurm.sh [N] [--json]     (default N = 8)
# Speed is measured here, never in tests.
set -eu
cd "$(dirname "$0")/.."
N=8
JSON=0
for a in "$@"; do
    case "$a" in
    --json) JSON=1 ;;
    --help|-h) sed -n '2,16p' "$0"; exit 0 ;;
    *) N=$a ;;
    esac
done
[ -x ./starhil ] || make -s starhil
BIN=$(pwd)/starhil
DIR=$(mktemp -d /tmp/starhil-bench-slurm.XXXXXX)
trap 'sh tests/helpers/slurm_local.sh stop "$DIR/slurm" >/dev/null 2>&1; rm -rf "$DIR"' EXIT INT TERM
conf=$(sh tests/helpers/slurm_local.sh start "$DIR/slurm")
export "$conf"
POLL=0.2
cat >"$DIR/wrap.sh" <<EOF
#!/bin/sh
# args: score --in-job SPEC --result RESULT
echo "start \$5 \$(date +%s.%N)" >> "$DIR/times.log"
"$BIN" "\$@"
rc=\$?
echo "end \$5 \$(date +%s.%N)" >> "$DIR/times.log"
exit \$rc
EOF
chmod +x "$DIR/wrap.sh"
i=1
while [ "$i" -le "$N" ]; do
    "$BIN" --db "$DIR/bench.db" score lfm2-350m --tasks mqar --size-factor 0.05 --width 16 --layers 1 \
        --head-dim 8 --threads 1 --seed "$i" --executor slurm --results-dir "$DIR/results" \
        --poll-interval "$POLL" --binary "$DIR/wrap.sh" >/dev/null 2>"$DIR/err.log" ||
        { cat "$DIR/err.log" >&2; exit 1; }
    i=$((i + 1))
done
sqlite3 -separator ' ' "$DIR/bench.db" \
    "SELECT result_path, submitted_at, finished_at, state FROM score_jobs ORDER BY id" >"$DIR/rows.txt"
python3 - "$DIR/rows.txt" "$DIR/times.log" "$JSON" "$POLL" <<'EOF'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
t = {}
for l in open(sys.argv[2]):
    kind, path, ts = l.split()
    t.setdefault(path, {})[kind] = float(ts)
m = {"submit_to_start_s": [], "in_job_s": [], "end_to_stored_s": [], "total_s": []}
for path, sub, fin, state in rows:
    if state != "ok" or path not in t:
        continue
    s, e = t[path]["start"], t[path]["end"]
    m["submit_to_start_s"].append(s - float(sub))
    m["in_job_s"].append(e - s)
    m["end_to_stored_s"].append(float(fin) - e)
    m["total_s"].append(float(fin) - float(sub))
out = {k: {"median": statistics.median(v), "min": min(v), "max": max(v)} for k, v in m.items() if v}
out["jobs"] = len(m["total_s"])
out["poll_interval_s"] = float(sys.argv[4])
if sys.argv[3] == "1":
    print(json.dumps(out, indent=2))
else:
    print("slurm executor, single-node cluster, %d jobs (poll interval %.1f s)" % (out["jobs"], out["poll_interval_s"]))
    print("%-18s %8s %8s %8s" % ("per job", "median", "min", "max"))
    for k in ("submit_to_start_s", "in_job_s", "end_to_stored_s", "total_s"):
        v = out[k]
        print("%-18s %7.2fs %7.2fs %7.2fs" % (k[:-2], v["median"], v["min"], v["max"]))
EOF
