#!/usr/bin/env python3
"""compare_intervals_sim.py - what "K runs of one compare agree within their
intervals" can be expected to look like when every interval is right (issue 18).

Simulates K runs of `starhil compare` with R rounds each.  A round's log
decode ratio is the true log ratio plus a run effect (sd --between-sd, shared
by the rounds of one run: host drift between runs) plus round noise (sd
--within-sd).  Each run's interval is compare's: the median of the round ratios
with the distribution-free interval of the median (for 6 rounds [min, max],
96.9%), widened on the log scale by --widen the way sh_compare_widen does
(each half-width h becomes sqrt(h^2 + (1.96 widen)^2)).

Prints how often (over --trials sets of K runs):
  - each interval covers the true ratio (calibration);
  - all intervals share a common value (one true ratio consistent with all);
  - one run's ratio lies inside another run's interval, per ordered pair;
  - every run's ratio lies inside every other run's interval (all K(K-1)
    pairs), the strict reading of "runs agree within their intervals".
The last is much rarer than calibration: two runs' ratios differ by the noise
of both, so a well-calibrated interval misses another run's ratio now and then,
and with 20 pairs one miss is likely.

Usage: bench/compare_intervals_sim.py [--runs K=5] [--rounds R=6]
           [--within-sd S=0.024] [--between-sd B=0] [--widen W=0.01]
           [--trials N=20000] [--seed N=1] [--json]
Defaults: within-run sd of the log round ratio 2.4% (the idle runs in
docs/devices.md), compare's prior between-run part 1%.
"""
import argparse
import json
import math
import random
import sys


def median_interval(x):
    """compare's interval of the median: order statistics (l, n+1-l), with l
    the largest rank such that P(Binomial(n, 1/2) <= l-1) <= 0.025."""
    s = sorted(x)
    n = len(s)
    med = s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
    cdf, l = 0.0, 1
    for k in range(n):
        cdf += math.comb(n, k) / 2.0 ** n
        if cdf > 0.025:
            break
        l = k + 1
    l = max(1, min(l, (n + 1) // 2))
    return med, s[l - 1], s[n - l]


def one_run(rng, a):
    effect = rng.gauss(0.0, a.between_sd)
    med, lo, hi = median_interval([rng.gauss(effect, a.within_sd) for _ in range(a.rounds)])
    z = 1.959964 * a.widen
    return med, med - math.hypot(med - lo, z), med + math.hypot(hi - med, z)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--within-sd", type=float, default=0.024)
    p.add_argument("--between-sd", type=float, default=0.0)
    p.add_argument("--widen", type=float, default=0.01)
    p.add_argument("--trials", type=int, default=20000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.runs < 2 or a.rounds < 1 or a.trials < 1 or min(a.within_sd, a.between_sd, a.widen) < 0:
        sys.exit("compare_intervals_sim: need --runs >= 2, --rounds >= 1, --trials >= 1 and sds >= 0")
    rng = random.Random(a.seed)
    k = a.runs
    covers = common = pairs = all_pairs = 0
    for _ in range(a.trials):
        r = [one_run(rng, a) for _ in range(k)]
        covers += sum(lo <= 0.0 <= hi for _, lo, hi in r)
        common += max(lo for _, lo, _ in r) <= min(hi for _, _, hi in r)
        held = sum(r[j][1] <= r[i][0] <= r[j][2] for i in range(k) for j in range(k) if i != j)
        pairs += held
        all_pairs += held == k * (k - 1)
    out = {"runs": k, "rounds": a.rounds, "within_sd": a.within_sd, "between_sd": a.between_sd,
           "widen": a.widen, "trials": a.trials,
           "interval_covers_truth": covers / (a.trials * k),
           "intervals_share_a_value": common / a.trials,
           "pair_ratio_inside_other_interval": pairs / (a.trials * k * (k - 1)),
           "all_pairs_hold": all_pairs / a.trials}
    if a.json:
        print(json.dumps(out, indent=2))
        return
    print("%d runs of %d rounds; round sd %.2f%%, run sd %.2f%%, intervals widened by %.2f%% (%d trials):" % (
        k, a.rounds, 100 * a.within_sd, 100 * a.between_sd, 100 * a.widen, a.trials))
    print("  each interval covers the true ratio:            %5.1f%%" % (100 * out["interval_covers_truth"]))
    print("  all intervals share a value:                    %5.1f%%" % (100 * out["intervals_share_a_value"]))
    print("  a run's ratio inside another run's interval:    %5.1f%% of ordered pairs" % (
        100 * out["pair_ratio_inside_other_interval"]))
    print("  every ratio inside every interval (%d pairs):   %5.1f%% of sets" % (k * (k - 1), 100 * out["all_pairs_hold"]))


if __name__ == "__main__":
    main()
