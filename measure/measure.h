/* measure.h - the measurement protocol: build a genome's variant for a device,
 * push it, run its `bench` mode until its decode latency is known
 * within a tolerance, and store the evaluation with every raw sample.
 *
 * Protocol (docs/devices.md has the long form):
 *  - each bench invocation runs `--warmup` unmeasured repetitions first (the
 *    variant excludes them), then `--reps` measured ones;
 *  - invocations are repeated until the stored figure is known: at least
 *    min_reps repetitions were quiet and the 95% interval of the robust
 *    estimate (decode_ms, below) lies within +-tolerance of it, or the
 *    repetition cap is reached (sh_estimate_converged is the rule).  The
 *    median of every per-token sample is stored beside it with its 95% CI,
 *    distribution-free: order statistics x(l), x(n+1-l) with l the largest
 *    rank such that P(Binomial(n, 1/2) < l) <= 2.5% (exact binomial sums).
 *    (Until issue 18's second round convergence was judged on that CI of the
 *    median: the per-token jitter of small, fast genomes kept it wider than
 *    2% at a search's few repetitions even on an idle host, although the
 *    figure ranked with had settled.);
 *  - the variant's probe mode is run before and after (CPU frequencies,
 *    thermal zones) and stored with the result;
 *  - failures (timeouts, lost connections, crashes, malformed output) are
 *    retried with exponential backoff up to `retries` times; then the
 *    evaluation is stored as failed with the reason and the tail of stderr,
 *    and the device's fail count goes up (unhealthy after SH_DEVICE_MAX_FAILS
 *    consecutive failed evaluations).  Nothing partial is stored as ok.
 *    A deterministic failure is not retried and does not count against the
 *    device: a variant that refuses its settings (exit 1 or 2), or one the
 *    device cannot execute (exit 126, e.g. a noexec working directory).
 *    Each attempt pushes the variant under a new name, and a dropped
 *    connection waits at least 2 s before the next attempt;
 *  - an ok evaluation for the same (run, genome, device, settings) is returned
 *    as is (res->cached), never measured twice.  "settings" are prompt, gen,
 *    depth, threads, wtype, kvtype, decode_warmup (when on), cpus and target
 *    (not the protocol knobs);
 *  - each repetition decodes unmeasured warm-up tokens after its prefill
 *    (decode_warmup, default auto: until the token time stops falling): right
 *    after a prefill decode ran up to 2.3x slower for 10-20 tokens on a Xeon
 *    VM, and repetitions of 16 tokens measured that transient (rt_main.c);
 *  - with a reference genome and every-K, the reference is re-measured on the
 *    same device before every K-th evaluation of the run (kind "reference"),
 *    and results carry their latency relative to the latest reference.
 *
 * Interference (issue 18; docs/devices.md "Measurements on a busy board"):
 *  - the variant reads the board's state before and after every repetition
 *    (time its threads waited for a CPU, others' CPU use, run queue, load,
 *    frequency of the CPUs used, temperature); a repetition is disturbed when
 *    its threads waited more than `busy_wait` of its wall time for a CPU
 *    (busy), the CPUs used ran below 85% of the highest frequency seen in
 *    the measurement (throttled), or the hypervisor gave more than
 *    `steal_max` of their time to other guests (steal, /proc/stat), or other
 *    processes used more than `others_max` CPUs beside it (shared: a
 *    co-runner on the CPUs the variant leaves free slows it through the
 *    shared caches and memory without any CPU wait; /proc/stat's 10 ms ticks
 *    set how short a repetition can still tell).
 *    Disturbed repetitions are kept in the samples but left out of the
 *    estimate and of the convergence test;
 *  - the estimate the search ranks with is decode_ms: the Harrell-Davis
 *    20th percentile (SH_DECODE_QUANTILE) of the quiet repetitions' median
 *    per-token latencies (interference only adds time; a low quantile, not
 *    the minimum, because a bootstrap interval of the minimum is
 *    inconsistent), with a bootstrap 95% interval; the median over every
 *    token (decode_ms_median) and its CI are stored beside it;
 *  - a measurement is doubtful when fewer than min_reps repetitions were quiet,
 *    when the CI did not converge, or when the reference genome drifted more
 *    than `drift_tol` from its last quiet value.  A doubtful measurement is
 *    not final: the coordinator waits for the board to settle (probing its
 *    load with backoff, at most settle_max_s) and measures again, up to
 *    `settle_rounds` times, each round's repetitions pooled with the earlier
 *    rounds' (up to max_reps more per round; convergence judged on the
 *    pool); then it stores the result with stability
 *    "unstable" and the reason (else "quiet", or "disturbed" when some
 *    repetitions were left out);
 *  - an unstable stored result is never returned as a cached answer: the
 *    next request measures again and a quiet result replaces it; `force`
 *    re-measures even a quiet one.
 *
 * Paired reference (reference_paired; issue 18): a reference row is a
 * reading taken before the candidate, tens of seconds apart from it, and on
 * a shared host the two drift independently by 5-8% (docs/devices.md), so a
 * figure normalized by it carries the reference's noise as well.  Paired, each
 * bench invocation of the candidate is paired with one of the reference
 * genome, on the same CPUs, in alternating order (C R, R C, ...), as
 * `compare` runs its genomes; the figure normalized by the reference is the
 * anchor (the first trusted reference row's reading, as before) x the median
 * of the per-pair ratios (candidate estimate / reference estimate, each
 * invocation's repetitions judged among themselves; pairs without a quiet
 * repetition on both sides are left out), with that median's
 * distribution-free interval.  A measurement converges only after
 * PAIRED_MIN_PAIRS (3) such pairs, and is doubtful ("drift") when the
 * reference's estimate over its quiet paired repetitions is more than
 * drift_tol above its last quiet reading.  Reference rows are still measured
 * every reference_every evaluations: they carry the anchor and the last quiet
 * value.  It costs one reference invocation per candidate invocation.  Not in
 * the settings: a quiet result measured unpaired is reused as is.
 *
 * Threads: sh_measure_genome may be called from several threads at once if each
 * thread passes its OWN sh_db handle (SQLite handles are not shared).  Device
 * sessions (e.g. one SSH connection per device) are kept in a process-wide
 * registry guarded by a mutex; two threads measuring on the same device take
 * turns.  Call sh_measure_shutdown() at the end to clean up the devices'
 * working directories and close their sessions. */
#ifndef SH_MEASURE_MEASURE_H
#define SH_MEASURE_MEASURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "genome/genome.h"
#include "measure/mrecord.h"
#include "runs/runs.h"
#include "util/err.h"

#define SH_DEVICE_MAX_FAILS 3
#define SH_BENCH_MAX_JSON (4u * 1024u * 1024u)
#define SH_BENCH_MAX_SAMPLES 1000000

typedef void (*sh_measure_progress_fn)(void *ctx, const char *line);

typedef struct sh_measure_opts {
    int prompt;            /* tokens of prompt (prefill)            0: 512   */
    int gen;               /* decoded tokens per repetition         0: 128   */
    int depth;             /* context already in the KV cache       0: 0     */
    int threads;           /* 0: number of the device's pinned cpus, or the variant's default */
    const char *wtype;     /* f32|f16|q8_0|q4_0                  NULL: q4_0  */
    const char *kvtype;    /* f32|f16                            NULL: f32   */
    double tolerance;      /* relative half-width of the estimate's interval 0: 0.02 */
    int min_reps;          /* measured repetitions at least         0: 3     */
    int max_reps;          /* repetition cap of one round           0: 30    */
    int reps_per_run;      /* repetitions per bench invocation      0: 3     */
    int warmup;            /* warm-up reps per invocation  0: 1 (-1: none)   */
    int decode_warmup;     /* unmeasured decode tokens after each prefill
                              (`variant bench --decode-warmup`): 0: auto, until
                              the token time stops falling (at most 48);
                              -1: none (as before issue 18's third round); N: N */
    double cooldown_s;     /* sleep before measuring a candidate    0: none  */
    const sh_genome *reference;  /* reference genome, or NULL               */
    int reference_every;   /* re-measure the reference every K evals (0: off) */
    bool reference_paired; /* with a reference: pair every bench invocation of a
                              candidate with one of the reference on the same CPUs
                              (C R, R C, ...) and normalize by the median per-pair
                              ratio (see "Paired reference" above)            */
    int64_t run_id;        /* 0: no run                                      */
    double timeout_s;      /* per device command                   0: 600 s  */
    int retries;           /* extra attempts after a failure  0: 2 (-1: none) */
    double backoff_s;      /* first retry delay, doubled each time  0: 1 s   */
    bool no_probe;         /* skip the probe before/after                    */
    double busy_wait;      /* repetition busy above this CPU-wait fraction  0: 0.05 (<0: never) */
    double steal_max;      /* repetition disturbed ("steal") above this share of
                              its CPUs' time stolen by the hypervisor 0: 0.05 (<0: never) */
    double others_max;     /* repetition disturbed ("shared") when other processes
                              used more than this many CPUs beside it  0: 0.5 (<0: never) */
    double drift_tol;      /* reference drift tolerance (relative)          0: 0.10 */
    int settle_rounds;     /* re-measurements of a doubtful result   0: 2 (-1: none) */
    double settle_max_s;   /* longest wait for the board to settle per round 0: 60 s */
    bool force;            /* measure again even if a trusted result is stored */
    const char *exe_path;  /* measure this prebuilt executable instead of
                              building (tests, `measure --exe`)              */
    const char *reference_exe_path;  /* the same for the reference genome     */
    const char *gguf;      /* measure this GGUF file's weights as stored (pushed
                              to the device, `variant bench --gguf`) instead of
                              synthetic --wtype ones; the genome must be the
                              file's (`starhil measure FILE.gguf` derives it).
                              Stored settings name it: wtype "gguf" and
                              gguf {file, bytes, fnv1a64 of the contents}.
                              Not for the reference genome nor interleaving. */
    sh_measure_progress_fn progress;
    void *progress_ctx;
} sh_measure_opts;

/* A measurement's result is the measurement record (measure/mrecord.h): the
 * figures, the stability verdict and the store row (eval_id, cached); free it
 * with sh_mrecord_free. */

int sh_measure_genome(sh_db *db, const char *device, const sh_genome *g,
                      const sh_measure_opts *opts, sh_mrecord *res, sh_err *err);

/* A paired ratio: its median over rounds and a distribution-free 95% CI of
 * that median (order statistics of the per-round ratios; [min, max] below 6
 * rounds, which covers less: `coverage`, e.g. 0.75 for 3 rounds). */
typedef struct sh_ratio_ci {
    double est, lo, hi; int n; double coverage;
    double *round_ratio;   /* the n per-round ratios in the order measured (malloc'd, may be NULL) */
    double *round_t_s;     /* when each round started, seconds after the first */
} sh_ratio_ci;

/* Frees a ratio's per-round arrays. */
void sh_ratio_ci_free(sh_ratio_ci *r);

/* Widens r's interval by a between-run component with relative standard
 * deviation sd (compare --between-run-sd; compare_cli.c): on the log scale
 * each side's half-width h becomes sqrt(h^2 + (1.96 sd)^2).  sd <= 0: as is. */
void sh_compare_widen(sh_ratio_ci *r, double sd);

/* The between-run spread of a paired ratio on a device, learned from earlier
 * runs (compare_cli.c; runs/ keeps them).  x[i] is run i's log ratio, se[i]
 * its standard error from its rounds, key[i] what was compared (runs with
 * the same key form a group).  The pooled within-group variance of x, less
 * the mean se^2 (what the rounds already account for), estimates the
 * between-run variance with dof = sum over groups of (runs - 1); it is
 * combined with a prior sd of prior_dof degrees of freedom:
 * sd^2 = (prior_dof prior_sd^2 + dof est^2) / (prior_dof + dof).  *dof_out
 * gets dof (0: the prior alone). */
double sh_between_run_sd(const char *const *key, const double *x, const double *se, int n, double prior_sd,
                         double prior_dof, int *dof_out);

/* Interleaved comparison of n genomes (n >= 2) on one device: `rounds`
 * rounds, each running one bench invocation of reps_per_run repetitions per
 * genome, in alternating order (A B, B A, A B ... so neither genome always
 * runs first), so drift of the board hits every genome alike.  res[i] gets
 * genome i's figures over all rounds (decode_ms is the robust estimate, and
 * decode_tok_s = 1000 / decode_ms, so table and summary use one estimator;
 * stability from its repetitions).  decode_speed[i] is the paired ratio of
 * genome i's decode speed to genome 0's (per round: estimate of 0 / estimate
 * of i), prefill_speed[i] the same for prefill (median prefill time per
 * invocation).  order (NULL, or rounds * n ints) receives the genome index
 * of each invocation in the order they ran.  gguf (NULL, or n paths or
 * NULLs): genome i is measured with the weights of GGUF file gguf[i] as
 * stored (pushed to the device, as `measure FILE.gguf`; g[i] must be the
 * file's genome, sh_gguf_import_genome_file) instead of synthetic ones in
 * opts->wtype.  Nothing is stored: a comparison is only valid paired in
 * time.  rounds 0: 6. */
int sh_measure_interleaved(sh_db *db, const char *device, const sh_genome *g, int n, const sh_measure_opts *opts,
                           const char *const *gguf, int rounds, sh_mrecord *res, sh_ratio_ci *decode_speed,
                           sh_ratio_ci *prefill_speed, int *order, sh_err *err);

/* The protocol options of every command that measures (measure, compare,
 * search), as command-line options: the disturbance limits --busy-wait,
 * --max-steal and --max-others into *busy_wait, *steal_max, *others_max
 * (sh_measure_opts' fields of those names), and --decode-warmup's text into
 * *decode_warmup (NULL if not given; sh_decode_warmup_parse reads it).
 * Fills out[0 .. SH_MEASURE_LIMIT_OPTS-1]. */
struct sh_opt;
#define SH_MEASURE_LIMIT_OPTS 4
void sh_measure_limit_opts(double *busy_wait, double *steal_max, double *others_max, const char **decode_warmup,
                           struct sh_opt *out);

/* sh_measure_opts.decode_warmup from its text: "auto" (0), "none" or "0"
 * (-1), or a token count 1..4096.  Returns 0, or -1 with err naming the
 * value (the caller names the option). */
int sh_decode_warmup_parse(const char *text, int *out, sh_err *err);

/* The text of a decode_warmup value ("auto", "none" or the count) in buf. */
const char *sh_decode_warmup_text(int decode_warmup, char *buf, size_t cap);

/* Closes every cached device session (removing their working directories). */
void sh_measure_shutdown(void);

/* Creates the implicit `local` device in db if it is absent. */
int sh_device_ensure_local(sh_db *db, sh_err *err);

/* Runs `EXE probe` on an open device and returns normalized probe JSON. */
struct sh_device;
int sh_device_probe_with(struct sh_device *d, const char *exe_on_device, double timeout_s,
                         char **json_out, sh_err *err);

/* ---- parsing and statistics (exposed for tests and the profile sweep) ---- */

/* The board's state around one repetition, as the variant read it on the
 * device (docs/interfaces.md "state"); -1 where unknown. */
typedef struct sh_rep_state {
    double wall_s;        /* the repetition's wall time                        */
    double wait_s;        /* time the variant's threads waited for a CPU       */
    double other_cpus;    /* CPUs used by other processes, on average          */
    double procs_running; /* run queue (larger of before/after)                */
    double load1;         /* 1-minute load average                             */
    double freq_khz;      /* lowest current frequency of the CPUs used         */
    double temp_mc;       /* hottest thermal zone, millidegrees Celsius        */
    double steal;         /* share of the used CPUs' time the hypervisor gave to
                             other guests (/proc/stat steal; ticks of 1/USER_HZ) */
} sh_rep_state;

typedef struct sh_bench_out {
    char genome_hash[17];
    double *decode_ms;  int n_decode;     /* every decoded token of every rep */
    double *prefill_ms; int n_prefill;    /* one per rep                     */
    double decode_tok_s, prefill_tok_s, ttft_ms;
    double peak_rss_bytes, weight_bytes, kv_bytes, conv_state_bytes;
    double share_prefill[SH_SHARE_N], share_decode[SH_SHARE_N];   /* by SH_SHARE_KINDS */
    int reps;
    int n_cpus;                           /* cpu.n_cpus, 0 if absent          */
    double decode_warmup_tokens;          /* median over the reps, 0 if absent */
    sh_rep_state *state;  int n_state;    /* one per rep, or none (older variants) */
    char *build_json, *cpu_json;          /* malloc'd sub-objects (validated) */
} sh_bench_out;

/* Validates a variant's bench output: size cap, a single JSON object with
 * mode "bench", every field of docs/interfaces.md present with its type,
 * finite non-negative numbers, sample counts within bounds. */
int sh_bench_parse(const char *text, size_t len, sh_bench_out *out, sh_err *err);
void sh_bench_out_free(sh_bench_out *b);

/* Validates probe output and returns it re-serialized with known fields only. */
int sh_probe_parse(const char *text, size_t len, char **json_out, sh_err *err);

/* The robust estimate of per-repetition decode medians (SH_DECODE_ESTIMATOR):
 * their Harrell-Davis SH_DECODE_QUANTILE-quantile, a weighted sum of all
 * sorted medians with Beta(p(n+1), (1-p)(n+1)) weights (Harrell & Davis
 * 1982), and a 95% percentile bootstrap interval of it (2000 resamples of the
 * repetitions, fixed seed, so the same input gives the same interval).  A
 * smooth L-statistic, unlike the minimum, whose bootstrap is inconsistent.
 * Returns -1 if n == 0. */
int sh_decode_estimate_ci(const double *rep_medians, int n, double *est, double *lo, double *hi);

/* The Harrell-Davis estimate of the p-quantile (0 < p < 1) of x; NaN if
 * n == 0 or p is out of range.  x is not modified. */
double sh_hd_quantile(const double *x, int n, double p);

/* The convergence rule of the protocol: true when n >= min_reps quiet
 * repetitions were measured and the 95% interval of their robust estimate
 * (sh_decode_estimate_ci) lies within +-tolerance of the estimate.  *half_rel
 * (may be NULL) receives the interval's larger distance from the estimate,
 * relative to it (INFINITY when n == 0). */
bool sh_estimate_converged(const double *quiet_rep_medians, int n, int min_reps, double tolerance,
                           double *half_rel);

/* The CPUs the `turn`-th bench invocation (0, 1, ...) of a measurement with
 * `threads` threads is pinned to when its device names none (device `cpus`
 * ""), from the device's topology (the variant's probe JSON: "n_cpus", "cpus"
 * [{id, online, max_khz}], "clusters" [{max_khz, cpus}]), as a CPU list
 * ("0", "4,6-7").  The online CPUs are ranked by their cluster's max_khz
 * (unknown frequencies rank equal), then by id.  If fewer threads than there
 * are CPUs of the top rank, invocations take turns over those: turn t uses
 * `threads` consecutive ones from position t*threads (wrapping); else the
 * first `threads` of the ranking, every time.
 * The coordinator gives the first two such sets one turn each, then pins
 * the rest of the measurement to the set whose repetitions estimate lowest,
 * and takes the estimate from that set's repetitions alone (the result's
 * "cpu_groups" shows each set's).
 * Why: an unpinned process that uses fewer threads than the board has lands
 * wherever the scheduler puts it, and the cores of a board are not equal:
 * big.LITTLE phones, and on the VM of issue 18 one vCPU decoded memory-bound
 * genomes 1.2-2.6x slower than the other, which of the two changing within
 * minutes, with no steal or run-queue sign of it.  Repetitions then fell into
 * one mode per CPU in whatever mix the scheduler made, and small genomes did
 * not converge.  Pinned in turn, a measurement sees every CPU of the top
 * rank and ranks with the fastest of them (interference only adds time),
 * never with a little core.
 * Returns 1 with out set, 0 when no pinning applies (threads <= 0, turn < 0,
 * not fewer threads than online CPUs, or no usable topology), -1 if cap is
 * too small. */
int sh_measure_auto_pin(const char *topology_json, int threads, int turn, char *out, size_t cap);

/* The probability that sh_median_ci's interval for n samples covers the true
 * median: at least 0.95 from n = 6 on; below that the interval is [min, max]
 * and covers 1 - 2^(1-n) (n = 3: 75%, n = 5: 93.75%). */
double sh_median_ci_coverage(int n);

/* Median and its distribution-free 95% CI (see above). x is not modified.
 * With fewer than 6 samples the CI is [min, max]. Returns -1 if n == 0. */
int sh_median_ci(const double *x, int n, double *median, double *lo, double *hi);

#endif
