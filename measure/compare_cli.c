/* compare_cli.c - `starhil compare`: genomes measured side by side on one
 * device, interleaved round by round (sh_measure_interleaved), with paired
 * speed ratios to the first.  A measure/ command: the latencies it measures
 * are not stored as evaluations (a comparison holds only paired in time); the
 * store gives the device inventory (`local` is added when missing) and keeps
 * each run's ratios, from which later runs of comparisons on the device learn
 * how much a ratio moves between runs (their intervals include that). */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "genome/gguf_meta.h"
#include "measure/measure.h"
#include "runs/runs.h"
#include "util/cliopt.h"
#include "util/opt.h"
#include "util/progress.h"

/* Genomes given to compare (positionals, in order). */
typedef struct args {
    const char *positional[32];
    int n_pos;
} args;

static const char COMPARE_ABOUT[] =
    "Measures the genomes (preset names, files or inline text) on device D interleaved:\n"
    "a GGUF file (lfm2, lfm2moe, qwen3, llama) is measured with its own weights as\n"
    "stored (its genome derived from its metadata, as `measure FILE.gguf` does),\n"
    "the others with synthetic weights in --wtype.\n"
    "in each round every genome runs one bench invocation, in alternating order (A B,\n"
    "B A, A B ...), so drift of the board hits all of them alike. Each ratio to the\n"
    "first genome is paired per round and reported as the median over rounds with its\n"
    "95% confidence interval. Table and summary use one estimator for decode: the\n"
    "Harrell-Davis 20th percentile of per-repetition medians (repetitions disturbed by\n"
    "other load are left out; docs/devices.md). A ratio's interval covers this run's\n"
    "rounds and drift between runs: its between-run part is learned from earlier compare\n"
    "runs on the device kept in the store (pooled over what was compared), combined with\n"
    "a prior of 1% (2 degrees of freedom) measured on an idle 2-core VM\n"
    "(bench/bench_compare_runs.sh); --between-run-sd sets it. Latencies are not stored.\n"
    "Example: check the claim that LFM2 decodes about 2x faster than Qwen3 on CPU:\n"
    "  starhil compare --device local lfm2-1.2b qwen3-1.7b --prompt 128 --gen 32\n"
    "or on files: starhil compare --device local LFM2-1.2B-Q4_0.gguf Qwen3-1.7B-Q4_0.gguf\n";

typedef struct cmp_row {
    const char *arg;         /* as given */
    const char *gguf;        /* arg, when it is a GGUF file */
    const char *name;        /* preset name, or the hash for other genomes */
    char hash[17];
    sh_mrecord res;
    sh_ratio_ci decode_x, prefill_x;   /* paired speed ratios to the first genome */
} cmp_row;

/* The between-run part of the ratio intervals, and where it came from. */
typedef struct between_run {
    double sd;            /* relative sd of a ratio from run to run (0: rounds only) */
    int dof;              /* degrees of freedom learned from earlier runs */
    int runs;             /* earlier runs of the device in the store */
    const char *source;   /* "learned", "prior" (no usable history), "given", "none" */
} between_run;

#define COMPARE_PRIOR_SD 0.01   /* bench_compare_runs.sh, idle 2-core VM: 0.95% */
#define COMPARE_PRIOR_DOF 2.0

static double ratio(double a, double b) { return (isfinite(a) && isfinite(b) && b > 0) ? a / b : NAN; }

static json_t *jnum_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *ratio_json(const sh_ratio_ci *r)
{
    json_t *per = json_array(), *t = json_array();
    for (int k = 0; k < r->n && r->round_ratio && r->round_t_s; k++) {
        json_array_append_new(per, jnum_or_null(r->round_ratio[k]));
        json_array_append_new(t, json_real(r->round_t_s[k]));
    }
    return json_pack("{s:o,s:o,s:o,s:i,s:f,s:o,s:o}", "ratio", jnum_or_null(r->est), "ci_low", jnum_or_null(r->lo),
                     "ci_high", jnum_or_null(r->hi), "rounds", r->n, "ci_coverage", r->coverage,
                     "round_ratios", per, "round_start_s", t);
}

static void compare_print_json(const char *device, const sh_measure_opts *o, int rounds, const cmp_row *rows, int n,
                               const int *order, const between_run *br, const between_run *brp)
{
    json_t *ord = json_array();
    for (int k = 0; k < rounds * n; k++) json_array_append_new(ord, json_integer(order[k]));
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const sh_mrecord *r = &rows[i].res, *b = &rows[0].res;
        json_t *x = json_object();
        json_object_set_new(x, "genome", json_string(rows[i].name));
        json_object_set_new(x, "hash", json_string(rows[i].hash));
        json_object_set_new(x, "gguf", rows[i].gguf ? json_string(rows[i].gguf) : json_null());
        json_object_set_new(x, "decode_ms", jnum_or_null(r->decode_ms));
        json_object_set_new(x, "decode_ms_ci", json_pack("[o,o]", jnum_or_null(r->decode_ms_low),
                                                         jnum_or_null(r->decode_ms_high)));
        json_object_set_new(x, "decode_tok_s", jnum_or_null(r->decode_tok_s));
        json_object_set_new(x, "prefill_tok_s", jnum_or_null(r->prefill_tok_s));
        json_object_set_new(x, "decode_ms_median", jnum_or_null(r->decode_ms_median));
        json_object_set_new(x, "decode_ci_ms", json_pack("[o,o]", jnum_or_null(r->decode_ci_low),
                                                         jnum_or_null(r->decode_ci_high)));
        json_object_set_new(x, "ttft_ms", jnum_or_null(r->ttft_ms));
        json_object_set_new(x, "peak_rss_bytes", jnum_or_null(r->peak_rss_bytes));
        json_object_set_new(x, "weight_bytes", jnum_or_null(r->weight_bytes));
        json_object_set_new(x, "kv_bytes", jnum_or_null(r->kv_bytes));
        json_object_set_new(x, "conv_state_bytes", jnum_or_null(r->conv_state_bytes));
        json_object_set_new(x, "reps", json_integer(r->reps));
        json_object_set_new(x, "quiet_reps", json_integer(r->quiet_reps));
        json_object_set_new(x, "stability", json_string(r->stability));
        json_object_set_new(x, "stability_reason", json_string(r->reason));
        json_object_set_new(x, "decode_speed_vs_first", ratio_json(&rows[i].decode_x));
        json_object_set_new(x, "prefill_speed_vs_first", ratio_json(&rows[i].prefill_x));
        json_object_set_new(x, "peak_memory_vs_first", jnum_or_null(ratio(r->peak_rss_bytes, b->peak_rss_bytes)));
        json_array_append_new(arr, x);
    }
    char dw[16];
    json_t *root = json_pack("{s:s,s:{s:i,s:i,s:s,s:s,s:i,s:i,s:s,s:s},s:o,s:s,s:o}", "device", device, "settings",
                             "prompt", o->prompt, "gen", o->gen, "decode_warmup",
                             sh_decode_warmup_text(o->decode_warmup, dw, sizeof dw), "wtype", o->wtype, "threads", o->threads,
                             "rounds", rounds, "order", "interleaved, alternating (A B, B A, ...)",
                             "ratio", br->sd > 0
                                 ? "median over rounds of paired ratios, 95% CI from order statistics over the "
                                   "rounds, widened by the between-run sd (ci_between_run_sd, from "
                                   "ci_between_run_source)"
                                 : "median over rounds of paired ratios, 95% CI from order statistics over the "
                                   "rounds ([min, max] below 6 rounds, covering less: ci_coverage); it covers "
                                   "the rounds of this run, not drift between runs (--between-run-sd 0)",
                             "run_order", ord, "decode_estimator", SH_DECODE_ESTIMATOR, "results", arr);
    /* what a repetition counted as disturbed by (the effective limits) */
    json_object_set_new(root, "disturbance_limits",
                        json_pack("{s:f,s:f,s:f}", "busy_wait", rows[0].res.busy_wait, "steal_max",
                                  rows[0].res.steal_max, "others_max", rows[0].res.others_max));
    json_object_set_new(root, "ci_between_run_sd", json_real(br->sd));
    json_object_set_new(root, "ci_between_run_source", json_string(br->source));
    json_object_set_new(root, "ci_between_run_dof", json_integer(br->dof));
    json_object_set_new(root, "earlier_runs_on_device", json_integer(br->runs));
    json_object_set_new(root, "ci_between_run_sd_prefill", json_real(brp->sd));
    json_object_set_new(root, "ci_between_run_dof_prefill", json_integer(brp->dof));
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) printf("%s\n", s);
    free(s);
    json_decref(root);
}

static void compare_print_table(const char *device, const sh_measure_opts *o, int rounds, const cmp_row *rows, int n,
                                const between_run *br, const between_run *brp)
{
    int n_gguf = 0;
    for (int i = 0; i < n; i++) n_gguf += rows[i].gguf != NULL;
    char dw[16];
    printf("device %s, prompt %d, gen %d (after a decode warm-up: %s), wtype %s%s, %d interleaved rounds\n", device,
           o->prompt, o->gen, sh_decode_warmup_text(o->decode_warmup, dw, sizeof dw),
           n_gguf == n ? "as stored" : o->wtype, n_gguf && n_gguf < n ? " (GGUF files: as stored)" : "", rounds);
    printf("decode ms/token and tok/s: " SH_DECODE_ESTIMATOR " (95%% CI); x: paired ratio to %s, median over rounds [95%% CI]\n",
           rows[0].name);
    if (!strcmp(br->source, "learned"))
        printf("x intervals include drift between runs: sd %.2f%% of the decode ratio (prefill %.2f%%), learned "
               "from %d earlier runs on %s (%d dof) with a %.0f%% prior\n\n", 100 * br->sd, 100 * brp->sd, br->runs,
               device, br->dof, 100 * COMPARE_PRIOR_SD);
    else if (!strcmp(br->source, "prior"))
        printf("x intervals include drift between runs: sd %.2f%% of the ratio, the prior (no earlier runs of a "
               "comparison repeated on %s yet; each run is kept to learn it)\n\n", 100 * br->sd, device);
    else if (br->sd > 0)
        printf("x intervals include drift between runs: sd %.2f%% of the ratio (--between-run-sd)\n\n", 100 * br->sd);
    else
        printf("x intervals cover this run's rounds only, not drift between runs (--between-run-sd 0)\n\n");
    printf("%-16s %16s %13s %10s %19s %9s %20s %20s %8s\n", "genome", "hash", "prefill tok/s", "decode tok/s",
           "decode ms [CI]", "peak MiB", "prefill x [CI]", "decode x [CI]", "memory x");
    for (int i = 0; i < n; i++) {
        const sh_mrecord *r = &rows[i].res, *b = &rows[0].res;
        char dms[40], px[40], dx[40];
        snprintf(dms, sizeof dms, "%.3f [%.3f,%.3f]", r->decode_ms, r->decode_ms_low, r->decode_ms_high);
        snprintf(px, sizeof px, "%.2fx [%.2f,%.2f]", rows[i].prefill_x.est, rows[i].prefill_x.lo, rows[i].prefill_x.hi);
        snprintf(dx, sizeof dx, "%.2fx [%.2f,%.2f]", rows[i].decode_x.est, rows[i].decode_x.lo, rows[i].decode_x.hi);
        printf("%-16.16s %16s %13.1f %12.2f %19s %9.1f %20s %20s %7.2fx%s\n", rows[i].name, rows[i].hash,
               r->prefill_tok_s, r->decode_tok_s, dms, r->peak_rss_bytes / 1048576.0, px, dx,
               ratio(r->peak_rss_bytes, b->peak_rss_bytes), strcmp(r->stability, "unstable") ? "" : "  UNSTABLE");
    }
    printf("(speeds above 1 are faster than %s, memory above 1 is larger)\n", rows[0].name);
    for (int i = 0; i < n; i++)
        if (rows[i].res.reason[0])
            printf("%s: %s: %s\n", rows[i].name, rows[i].res.stability, rows[i].res.reason);
    if (n >= 2) {
        /* the same paired ratios as the table: genome 1's speed over genome 0's, inverted */
        const sh_ratio_ci *d = &rows[1].decode_x, *p = &rows[1].prefill_x;
        bool dfast = d->est <= 1, pfast = p->est <= 1;
        char dcov[16], pcov[16];
        snprintf(dcov, sizeof dcov, "%.0f%%", 100 * fmin(d->coverage, 0.95));
        snprintf(pcov, sizeof pcov, "%.0f%%", 100 * fmin(p->coverage, 0.95));
        printf("\n%s decodes %.2fx %s (%s CI %.2f-%.2fx) and prefills %.2fx %s (%s CI %.2f-%.2fx) than %s on %s.\n",
               rows[0].name, dfast ? 1 / d->est : d->est, dfast ? "faster" : "slower", dcov,
               dfast ? 1 / d->hi : d->lo, dfast ? 1 / d->lo : d->hi,
               pfast ? 1 / p->est : p->est, pfast ? "faster" : "slower", pcov,
               pfast ? 1 / p->hi : p->lo, pfast ? 1 / p->lo : p->hi, rows[1].name, device);
        if (d->coverage < 0.95)
            printf("(with %d rounds the ratio's interval is the range of the rounds and covers the true ratio only "
                   "%.0f%% of the time; 6 rounds or more give 95%%)\n", d->n, 100 * d->coverage);
    }
}

typedef struct cmp_progress {
    sh_progress line;
} cmp_progress;

/* The measurement reports each step (round r of R, genome g); shown with the
 * elapsed time, redrawn on a terminal and every few seconds in a log. */
static void compare_progress(void *ctx, const char *line)
{
    cmp_progress *c = ctx;
    char els[32];
    sh_format_duration(sh_progress_elapsed(&c->line), els, sizeof els);
    sh_progress_update(&c->line, "compare: %s (elapsed %s)", line, els);
}

/* The weights a row was measured with: a GGUF file's size, or the wtype. */
static void weights_tag(const cmp_row *r, const sh_measure_opts *o, char *buf, size_t cap)
{
    struct stat st;
    if (r->gguf && stat(r->gguf, &st) == 0) snprintf(buf, cap, "gguf:%lld", (long long)st.st_size);
    else snprintf(buf, cap, "%s", r->gguf ? "gguf" : o->wtype);
}

/* What row i was compared against row 0 with: the stored comparison's key. */
static void comparison_key(const sh_measure_opts *o, const cmp_row *rows, int i, char *buf, size_t cap)
{
    char w0[40], wi[40];
    weights_tag(&rows[0], o, w0, sizeof w0);
    weights_tag(&rows[i], o, wi, sizeof wi);
    snprintf(buf, cap, "%s@%s vs %s@%s prompt=%d gen=%d depth=%d threads=%d reps=%d kvtype=%s", rows[i].hash, wi,
             rows[0].hash, w0, o->prompt, o->gen, o->depth, o->threads, o->reps_per_run,
             o->kvtype ? o->kvtype : "f32");
}

/* Standard error of log(r->est) from the spread of its rounds (the median's
 * large-sample factor 1.2533 over the rounds' sd); NaN below 2 rounds. */
static double log_ratio_se(const sh_ratio_ci *r)
{
    if (!r->round_ratio || r->n < 2) return NAN;
    double sum = 0, ss = 0;
    for (int k = 0; k < r->n; k++) {
        if (!(r->round_ratio[k] > 0)) return NAN;
        sum += log(r->round_ratio[k]);
    }
    double mean = sum / r->n;
    for (int k = 0; k < r->n; k++) ss += (log(r->round_ratio[k]) - mean) * (log(r->round_ratio[k]) - mean);
    return 1.2533 * sqrt(ss / (r->n - 1)) / sqrt(r->n);
}

/* The between-run part of one metric's intervals: given (>= 0), or learned
 * from the device's earlier comparisons in the store with the prior. */
static int learn_between_run(sh_db *db, const char *device, const char *metric, double given, between_run *br,
                             sh_err *err)
{
    memset(br, 0, sizeof *br);
    if (given >= 0) {
        br->sd = given;
        br->source = given > 0 ? "given" : "none";
        return 0;
    }
    sh_comparison_rec *c = NULL;
    int n = 0;
    if (sh_db_list_comparisons(db, device, metric, &c, &n, err) != 0) return -1;
    const char **key = malloc((size_t)(n ? n : 1) * sizeof *key);
    double *x = malloc((size_t)(n ? n : 1) * sizeof *x), *se = malloc((size_t)(n ? n : 1) * sizeof *se);
    int rc = 0;
    if (!key || !x || !se) rc = sh_err_set(err, "out of memory");
    else {
        for (int i = 0; i < n; i++) { key[i] = c[i].key; x[i] = c[i].log_ratio; se[i] = c[i].se; }
        br->sd = sh_between_run_sd(key, x, se, n, COMPARE_PRIOR_SD, COMPARE_PRIOR_DOF, &br->dof);
        br->runs = n;
        br->source = br->dof > 0 ? "learned" : "prior";
    }
    free(key); free(x); free(se);
    sh_comparison_recs_free(c, n);
    return rc;
}

/* Keeps this run's ratios for later runs (after they were learned from). */
static int keep_ratios(sh_db *db, const char *device, const sh_measure_opts *o, const cmp_row *rows, int n,
                       sh_err *err)
{
    for (int i = 1; i < n; i++) {
        char key[512];
        comparison_key(o, rows, i, key, sizeof key);
        const sh_ratio_ci *r[2] = {&rows[i].decode_x, &rows[i].prefill_x};
        const char *metric[2] = {"decode", "prefill"};
        for (int m = 0; m < 2; m++) {
            double se = log_ratio_se(r[m]);
            if (!(r[m]->est > 0) || !isfinite(se)) continue;   /* nothing to learn from */
            sh_comparison_row row = {device, key, metric[m], log(r[m]->est), se, r[m]->n};
            if (sh_db_add_comparison(db, &row, err) != 0) return -1;
        }
    }
    return 0;
}

static int compare_measure(const char *device, sh_measure_opts *o, int rounds, cmp_row *rows, int n, int *order,
                           bool quiet, double given_sd, between_run *br_decode, between_run *br_prefill)
{
    cmp_progress cp;
    sh_progress_init(&cp.line, quiet);
    o->progress = compare_progress;
    o->progress_ctx = &cp;
    sh_err err = {{0}};
    sh_db *db = NULL;
    if (sh_db_open(sh_cli_db_path(), SH_DB_CREATE, &db, &err) != 0 || sh_device_ensure_local(db, &err) != 0) {
        fprintf(stderr, "starhil compare: %s\n", err.msg);
        sh_db_close(db);
        return 1;
    }
    static sh_genome g[32];
    const char *gguf[32] = {0};
    for (int i = 0; i < n; i++) {
        int bad = rows[i].gguf ? sh_gguf_import_genome_file(rows[i].arg, &g[i], &err)
                               : sh_genome_resolve(rows[i].arg, &g[i], &err);
        if (bad != 0) {
            fprintf(stderr, "starhil compare: %s\n", err.msg);
            sh_db_close(db);
            return 1;
        }
        sh_hash_hex(sh_genome_hash(&g[i]), rows[i].hash);
        static sh_genome p;
        sh_err e2 = {{0}};
        gguf[i] = rows[i].gguf;
        if (rows[i].gguf) {
            const char *b = strrchr(rows[i].arg, '/');
            rows[i].name = b ? b + 1 : rows[i].arg;
        } else {
            rows[i].name = sh_preset_get(rows[i].arg, &p, &e2) == 0 ? rows[i].arg : rows[i].hash;
        }
    }
    sh_mrecord res[32];
    sh_ratio_ci dx[32], px[32];
    int rc = 0;
    sh_progress_event(&cp.line, "compare: %d genomes on %s, %d interleaved rounds", n, device, rounds);
    if (sh_measure_interleaved(db, device, g, n, o, gguf, rounds, res, dx, px, order, &err) != 0) {
        sh_progress_done(&cp.line);
        fprintf(stderr, "starhil compare: %s\n", err.msg);
        rc = 1;
    } else {
        for (int i = 0; i < n; i++) {
            rows[i].res = res[i];
            rows[i].decode_x = dx[i];
            rows[i].prefill_x = px[i];
        }
        if (learn_between_run(db, device, "decode", given_sd, br_decode, &err) != 0 ||
            learn_between_run(db, device, "prefill", given_sd, br_prefill, &err) != 0) {
            fprintf(stderr, "starhil compare: earlier comparisons: %s\n", err.msg);
            rc = 1;
        } else if (keep_ratios(db, device, o, rows, n, &err) != 0) {
            /* the measurement stands; only the learning for later runs is lost */
            fprintf(stderr, "starhil compare: warning: this run's ratios were not kept: %s\n", err.msg);
        }
    }
    sh_progress_done(&cp.line);
    sh_measure_shutdown();
    sh_db_close(db);
    return rc;
}

int sh_cmd_compare(int argc, char **argv)
{
    const char *device = NULL, *db = NULL, *wtype = NULL, *decode_warmup = NULL;
    bool as_json = false, quiet = false;
    long prompt = 512, gen = 128, threads = 0, rounds = 6, reps = 3;
    double between_sd = -1;   /* learned */
    sh_measure_opts o = {.wtype = SH_WTYPE_MEASURE};
    const sh_opt head[] = {
        {"--device", NULL, SH_OPT_STR, &device, "D", "device name (required; `local` always exists)", 0, 0, NULL},
        {"--prompt", NULL, SH_OPT_LONG, &prompt, "N", "prompt tokens (default 512)", 1, 1 << 20, NULL},
        {"--gen", NULL, SH_OPT_LONG, &gen, "N", "generated tokens per repetition (default 128)", 1, 1 << 20, NULL},
        {"--wtype", NULL, SH_OPT_STR, &wtype, "T", "f32|f16|q8_0|q4_0 (default q4_0)", 0, 0, NULL},
        {"--threads", NULL, SH_OPT_LONG, &threads, "N", "threads (default: the device's)", 1, 1024, NULL},
        {"--rounds", NULL, SH_OPT_LONG, &rounds, "N", "interleaved rounds (default 6)", 2, 1000, NULL},
        {"--reps", NULL, SH_OPT_LONG, &reps, "N", "repetitions per genome per round (default 3)", 1, 1000, NULL},
        {"--between-run-sd", NULL, SH_OPT_DOUBLE, &between_sd, "X",
         "the between-run part of each ratio's interval: the relative\nsd of a ratio from run to run (e.g. 0.01; "
         "0: this run's\nrounds only; default: learned from the device's earlier runs)", 0, 1, NULL},
    };
    const sh_opt tail[] = {
        {"--json", NULL, SH_OPT_FLAG, &as_json, NULL, "one JSON object on stdout", 0, 0, NULL},
        {"--quiet", "-q", SH_OPT_FLAG, &quiet, NULL, "no progress lines on stderr", 0, 0, NULL},
        {"--db", NULL, SH_OPT_STR, &db, "FILE", "run database (for the device inventory)", 0, 0, NULL},
    };
    /* the disturbance limits of measure (a phone's services, a VM's steal) */
    sh_opt t[sizeof head / sizeof head[0] + SH_MEASURE_LIMIT_OPTS + sizeof tail / sizeof tail[0]];
    size_t n_head = sizeof head / sizeof head[0];
    memcpy(t, head, sizeof head);
    sh_measure_limit_opts(&o.busy_wait, &o.steal_max, &o.others_max, &decode_warmup, t + n_head);
    memcpy(t + n_head + SH_MEASURE_LIMIT_OPTS, tail, sizeof tail);
    const char *pos[32];
    sh_cmd_spec spec = {"compare", "GENOME GENOME...", NULL, COMPARE_ABOUT, t, (int)(sizeof t / sizeof t[0]), 0, 32};
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    if (db) sh_cli_set_db_path(db);
    sh_err dwe;
    if (sh_decode_warmup_parse(decode_warmup, &o.decode_warmup, &dwe)) {
        fprintf(stderr, "starhil compare: --decode-warmup: %s\n", dwe.msg);
        return 2;
    }
    if (wtype) {
        sh_dtype dt;
        if (sh_dtype_parse(wtype, &dt) != 0) {
            fprintf(stderr, "starhil compare: --wtype \"%s\" is not f32, f16, q8_0 or q4_0\n", wtype);
            return 2;
        }
        o.wtype = wtype;
    }
    if (!device || n_pos < 2) {
        fprintf(stderr, "starhil compare: give --device D and at least two genomes (see starhil compare --help)\n");
        return 2;
    }
    args a = {.n_pos = n_pos};
    for (int i = 0; i < n_pos; i++) a.positional[i] = pos[i];
    o.prompt = (int)prompt; o.gen = (int)gen; o.threads = (int)threads; o.reps_per_run = (int)reps;
    cmp_row rows[32];
    memset(rows, 0, sizeof rows);
    int n_gguf = 0;
    for (int i = 0; i < a.n_pos; i++) {
        rows[i].arg = rows[i].name = a.positional[i];
        char magic[4] = {0};
        FILE *mf = fopen(rows[i].arg, "rb");
        if (mf) { if (fread(magic, 1, 4, mf) != 4) magic[0] = 0; fclose(mf); }
        if (!memcmp(magic, "GGUF", 4)) { rows[i].gguf = rows[i].arg; n_gguf++; }
    }
    if (wtype && n_gguf == a.n_pos) {
        fprintf(stderr, "starhil compare: --wtype does not apply to GGUF files (their weights are measured as stored)\n");
        return 2;
    }
    int *order = calloc((size_t)rounds * (size_t)a.n_pos, sizeof *order);
    if (!order) { fprintf(stderr, "starhil compare: out of memory\n"); return 1; }
    between_run brd, brp;
    int rc = compare_measure(device, &o, (int)rounds, rows, a.n_pos, order, quiet || as_json,   /* --json: no progress */
                             between_sd, &brd, &brp);
    if (rc == 0) {
        for (int i = 0; i < a.n_pos; i++) {
            sh_compare_widen(&rows[i].decode_x, brd.sd);
            sh_compare_widen(&rows[i].prefill_x, brp.sd);
        }
        if (as_json) compare_print_json(device, &o, (int)rounds, rows, a.n_pos, order, &brd, &brp);
        else compare_print_table(device, &o, (int)rounds, rows, a.n_pos, &brd, &brp);
    }
    for (int i = 0; i < a.n_pos; i++) {
        sh_mrecord_free(&rows[i].res);
        sh_ratio_ci_free(&rows[i].decode_x);
        sh_ratio_ci_free(&rows[i].prefill_x);
    }
    free(order);
    return rc;
}
