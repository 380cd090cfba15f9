/* search_cli.c - `starhil search` (start or resume a multi-objective search,
 * with a live progress line or JSON-lines progress) and `starhil front` (the
 * current Pareto front of a run as a table or JSON). */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/clidb.h"
#include "cli/commands.h"
#include "cluster/cluster_cli.h"
#include "measure/measure.h"
#include "search/eval_backends.h"
#include "search/run.h"
#include "search/space.h"
#include "util/cliopt.h"
#include "util/opt.h"
#include "util/progress.h"


typedef struct progress_ctx {
    bool json;
    sh_progress line;        /* the human progress line on stderr (quiet with --json / --quiet) */
    sh_search_progress last; /* the latest state, for the closing line */
    bool have_last;
} progress_ctx;

static void on_progress(void *ctx, const sh_search_progress *p)
{
    progress_ctx *c = ctx;
    if (c->json) {
        json_t *o = json_object();
        json_object_set_new(o, "event", json_string(p->generation_end ? "generation" : "evaluation"));
        json_object_set_new(o, "run", json_integer(p->run_id));
        json_object_set_new(o, "gen", json_integer(p->gen));
        json_object_set_new(o, "evaluations", json_integer(p->evals));
        json_object_set_new(o, "budget", json_integer(p->budget));
        json_object_set_new(o, "front_size", json_integer(p->front));
        json_object_set_new(o, "hypervolume", isfinite(p->hypervolume) ? json_real(p->hypervolume) : json_null());
        json_object_set_new(o, "elapsed_s", json_real(p->elapsed_s));
        json_object_set_new(o, "eta_s", isfinite(p->eta_s) ? json_real(p->eta_s) : json_null());
        if (p->remeasured) json_object_set_new(o, "remeasured", json_integer(p->remeasured));
        if (p->jobs.active)
            json_object_set_new(o, "jobs", json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "waiting", p->jobs.waiting,
                                                     "pending", p->jobs.pending, "running", p->jobs.running,
                                                     "done", p->jobs.done, "failed", p->jobs.failed,
                                                     "resubmitted", p->jobs.resubmitted));
        char *txt = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (txt) {
            printf("%s\n", txt);
            fflush(stdout);
            free(txt);
        }
        return;
    }
    char eta[32], elapsed[32], hv[32];
    sh_format_duration(p->eta_s, eta, sizeof eta);
    sh_format_duration(p->elapsed_s, elapsed, sizeof elapsed);
    if (isfinite(p->hypervolume))
        snprintf(hv, sizeof hv, "%.4f", p->hypervolume);
    else
        snprintf(hv, sizeof hv, "-");
    /* the same facts on a terminal (redrawn) and in a log (a line every few seconds,
     * and one at every generation end) */
    char jobs[192] = "";
    size_t jl = 0;
    if (p->remeasured)   /* members whose measurement was marked unstable later, measured again */
        jl = (size_t)snprintf(jobs, sizeof jobs, ", re-measured %ld", p->remeasured);
    if (p->jobs.active)
        snprintf(jobs + jl, sizeof jobs - jl, ", jobs %d waiting %d pending %d running %d done%s", p->jobs.waiting,
                 p->jobs.pending, p->jobs.running, p->jobs.done, p->jobs.failed ? " (some failed)" : "");
    const char *fmt = "search run %" PRId64 ": gen %d, evaluation %ld/%ld (%.0f%%), front %d, hv %s, "
                      "elapsed %s, eta %s%s";
    double pct = p->budget > 0 ? 100.0 * (double)p->evals / (double)p->budget : 0;
    sh_progress_update(&c->line, fmt, p->run_id, p->gen, p->evals, p->budget, pct, p->front, hv, elapsed, eta, jobs);
    c->last = *p;
    c->have_last = true;
}

/* ---- front ------------------------------------------------------------------------ */
static void genome_summary(const sh_genome *g, char *buf, size_t cap)
{
    snprintf(buf, cap, "d=%d L=%d conv=%d gqa=%d moe=%d", g->hidden, g->n_layers,
             sh_genome_count_mixer(g, SH_MIXER_CONV), sh_genome_count_mixer(g, SH_MIXER_GQA),
             sh_genome_count_ffn(g, SH_FFN_MOE));
}

static int print_front(sh_db *db, int64_t run_id, bool all, bool json, sh_err *err)
{
    sh_objective obj[SH_MAX_OBJ];
    int n_obj;
    if (sh_db_check_run_json(db, run_id, err) < 0 || sh_search_run_objectives(db, run_id, obj, &n_obj, err) < 0)
        return -1;
    sh_gen_row *rows = NULL;
    int n = 0;
    if (sh_db_list_generation(db, run_id, -1, !all, &rows, &n, err) < 0)
        return -1;
    json_t *arr = json_array();
    if (!json) {
        printf("%-3s %-16s %-4s", "#", "genome", "rank");
        for (int k = 0; k < n_obj; k++)
            printf(" %14s", obj[k].name);
        printf("  %s\n", "shape");
    }
    for (int i = 0; i < n; i++) {
        char hex[17];
        sh_hash_hex(rows[i].genome, hex);
        sh_genome g;
        sh_err gerr = {{0}};
        bool have = sh_db_get_genome(db, rows[i].genome, &g, &gerr) == 0;
        char text[SH_GENOME_TEXT_MAX] = "";
        if (have)
            sh_genome_format(&g, text, sizeof text, NULL);
        json_error_t je;
        json_t *o = json_loads(rows[i].objectives_json ? rows[i].objectives_json : "{}", 0, &je);
        if (json) {
            json_t *e = json_object();
            json_object_set_new(e, "genome", json_string(hex));
            json_object_set_new(e, "text", json_string(text));
            json_object_set_new(e, "rank", json_integer(rows[i].rank));
            json_object_set_new(e, "on_front", json_boolean(rows[i].on_front));
            json_object_set_new(e, "objectives", o ? o : json_object());
            json_array_append_new(arr, e);
            continue;
        }
        printf("%-3d %-16s %-4d", i + 1, hex, rows[i].rank);
        for (int k = 0; k < n_obj; k++) {
            json_t *v = o ? json_object_get(o, obj[k].name) : NULL;
            if (json_is_number(v))
                printf(" %14.6g", json_number_value(v));
            else
                printf(" %14s", "-");
        }
        char shape[128] = "?";
        if (have)
            genome_summary(&g, shape, sizeof shape);
        printf("  %s\n", shape);
        json_decref(o);
    }
    if (json) {
        char *txt = json_dumps(arr, JSON_INDENT(2));
        if (txt)
            printf("%s\n", txt);
        free(txt);
    } else if (n == 0) {
        int gen;
        sh_err gerr = {{0}};
        if (sh_db_latest_generation(db, run_id, &gen, &gerr) == 0)
            printf("(empty: no feasible, successfully evaluated member in generation %d)\n", gen);
        else
            printf("(no generation stored yet)\n");
    }
    json_decref(arr);
    sh_gen_rows_free(rows, n);
    return 0;
}

/* ---- option parsing ---------------------------------------------------------------- */
static int copy_opt(const char *opt, const char *s, char *out, size_t cap)
{
    if (!s) return 0;
    if (strlen(s) >= cap) {
        fprintf(stderr, "starhil search: %s: value too long (at most %zu bytes)\n", opt, cap - 1);
        return -1;
    }
    snprintf(out, cap, "%s", s);
    return 0;
}

/* --reference GENOME (a preset, a file or text) as canonical text. */
static int resolve_reference(const char *arg, sh_search_measure *m)
{
    sh_err err = {{0}};
    sh_genome *g = malloc(sizeof *g);
    int rc = g ? sh_genome_resolve(arg, g, &err) : sh_err_set(&err, "out of memory");
    if (rc == 0)
        rc = sh_genome_format(g, m->reference, sizeof m->reference, &err);
    free(g);
    if (rc < 0) {
        fprintf(stderr, "starhil search: --reference: %s\n", err.msg);
        return -1;
    }
    if (m->reference_every <= 0)
        m->reference_every = 10;
    return 0;
}

typedef struct cli_state {
    sh_search_opts o;
    const char *space_path;
    bool json, quiet;
    bool scorer_given, objectives_given;
    /* string options, copied into o after parsing */
    const char *devices, *scorer, *tasks, *objectives, *name, *wtype, *seed, *algorithm, *evaluator;
    sh_exec_cli exec;             /* executor options (cluster/cluster_cli.h), applied after parsing */
    const char *state_dir;        /* --score-state-dir */
    int settle_rounds, score_rung;
    bool settle_rounds_given, score_rung_given;
    const char *reference;        /* --reference GENOME, resolved after parsing */
    bool every_given, drift_given, rank_abs_given, paired_given;
    const char *decode_warmup;    /* --decode-warmup text, NULL: auto */
} cli_state;

static const char SEARCH_ABOUT[] =
    "Multi-objective search of architectures inside a search space.  Every candidate\n"
    "is measured on each device (one worker thread per healthy device) and scored for\n"
    "capability at the same time; every evaluation and the state at each generation\n"
    "boundary are stored in the run database, so `starhil search resume RUN` continues\n"
    "a killed run without losing or repeating an evaluation.  With no arguments, runs\n"
    "a small default search on the local device.  Progress goes to stderr: a live line\n"
    "on a terminal, a plain line every few seconds in a log or pipe\n"
    "($STARHIL_PROGRESS_INTERVAL seconds, default 5).\n";

/* The option table of `starhil search` (its help is generated from it). */
static int search_spec(cli_state *c, sh_opt *t, int cap)
{
    sh_search_opts *o = &c->o;
    const sh_opt head[] = {
        {"--space", NULL, SH_OPT_STR, &c->space_path, "FILE",
         "search space JSON (default: the built-in space, see\nsearch/spaces/default.json)", 0, 0, NULL},
        {"--devices", NULL, SH_OPT_STR, &c->devices, "A,B",
         "devices to measure on (default: local); objectives like\ndecode_ms take the worst device, decode_ms@A one device",
         0, 0, NULL},
        {"--scorer", NULL, SH_OPT_STR, &c->scorer, "NAME",
         "capability scorer: builtin, cmd:PROGRAM ARGS or an http(s) URL\n(default with the device evaluator: builtin, task "
         "lm = held-out\nbits/byte on real text, proxies at --score-scale 0.125 trained\non --score-tokens 32768 bytes each, "
         "for speed)", 0, 0, &c->scorer_given},
        {"--tasks", NULL, SH_OPT_STR, &c->tasks, "LIST", "built-in capability tasks to use (default: lm)", 0, 0, NULL},
        {"--score-scale", NULL, SH_OPT_DOUBLE, &o->score.scale, "F",
         "built-in proxy width factor (default 0.125 with the implicit\nscorer, else the scorer's 1/32)", 1e-6, 1, NULL},
        {"--score-tokens", NULL, SH_OPT_LONG, &o->score.tokens, "N",
         "built-in lm training tokens per candidate (equal for all)", 1, 1000000000, NULL},
        {"--score-rung", NULL, SH_OPT_INT, &c->score_rung, "R",
         "score every candidate at fidelity rung R of 3 (0: 1/9 of the\ntokens, 1: 1/3, 2: all; default 2); stored with "
         "the run", 0, 2, &c->score_rung_given},
        {"--score-halving", NULL, SH_OPT_FLAG, &o->score.halving, NULL,
         "successive halving per generation (either evaluator and\nexecutor): all candidates at rung 0 (1/9 of the "
         "tokens), the\nbest third (non-dominated rank on capability and params)\ncontinued to rung 1 from their saved "
         "state, the best third\nof those to rung 2; lower rungs count as a constraint\nviolation, so fronts hold top-rung "
         "scores; the states of\ncandidates not promoted are removed after each generation", 0, 0, NULL},
        {"--score-state-dir", NULL, SH_OPT_STR, &c->state_dir, "DIR",
         "halving: where training states are kept between rungs\n(default the cache's cap-state:\n"
         "$STARHIL_CACHE_DIR/cap-state, ~/.cache/starhil/cap-state;\nwith --executor slurm: DIR/cap-state of --results-dir)", 0, 0, NULL},
        {"--score-size", NULL, SH_OPT_DOUBLE, &o->score.size_factor, "F",
         "built-in scorer train-set size factor (default 1)", 1e-9, 100, NULL},
        {"--score-threads", NULL, SH_OPT_INT, &o->score.threads, "N", "capability training threads (default 1)", 1, 64,
         NULL},
        {"--objectives", NULL, SH_OPT_STR, &c->objectives, "LIST",
         "comma-separated, from decode_ms, prefill_ms, ttft_ms,\npeak_bytes, params, cache_bytes, capability (maximised);\n"
         "default decode_ms,params,capability (analytic: params,cache_bytes)", 0, 0, &c->objectives_given},
        {"--budget", NULL, SH_OPT_LONG, &o->budget, "N", "evaluations in total (default 48)", 1, 100000000, NULL},
        {"--population", NULL, SH_OPT_INT, &o->population, "N", "population size (default 12)", 2, 10000, NULL},
        {"--offspring", NULL, SH_OPT_INT, &o->offspring, "N",
         "children per generation (default: the population size;\n1 with --algorithm hv is a steady-state SMS-EMOA)", 1,
         10000, NULL},
        {"--algorithm", NULL, SH_OPT_STR, &c->algorithm, "A",
         "nsga2 (default), hv (hypervolume contribution, SMS-EMOA-like)\nor random (random-search baseline, same budget)",
         0, 0, NULL},
        {"--seed", NULL, SH_OPT_STR, &c->seed, "S", "random seed (default 1); same seed, same search", 0, 0, NULL},
        {"--name", NULL, SH_OPT_STR, &c->name, "NAME", "run name (default \"search\")", 0, 0, NULL},
        {"--evaluator", NULL, SH_OPT_STR, &c->evaluator, "E",
         "device (default) or analytic: closed-form objectives (params,\ncache bytes, roofline latency estimates), no "
         "device needed", 0, 0, NULL},
        {"--jobs", NULL, SH_OPT_INT, &o->jobs, "N", "analytic evaluator threads (default 2)", 1, 64, NULL},
        {"--prompt", NULL, SH_OPT_INT, &o->measure.prompt, "N", "prompt tokens per measurement (default 64)", 1, 1 << 20,
         NULL},
        {"--gen", NULL, SH_OPT_INT, &o->measure.gen, "N", "generated tokens per measurement (default 16)", 1, 1 << 20,
         NULL},
        {"--reps", NULL, SH_OPT_INT, &o->measure.reps, "N",
         "repetition cap per measurement round (default 12): repetitions\nrun 3 at a time until the estimate is known "
         "within --tolerance;\na settle round adds up to as many again", 1, 10000, NULL},
        {"--tolerance", NULL, SH_OPT_DOUBLE, &o->measure.tolerance, "X",
         "a measurement converges when the 95% interval of its estimate\n(Harrell-Davis 20th percentile of "
         "per-repetition medians)\nis within +-X of it (default 0.05)", 1e-4, 0.99, NULL},
        {"--wtype", NULL, SH_OPT_STR, &c->wtype, "T", "weight type measured (default " SH_WTYPE_SEARCH ")", 0, 0, NULL},
        {"--threads", NULL, SH_OPT_INT, &o->measure.threads, "N", "threads per measurement (default 1)", 1, 1024, NULL},
        {"--accept-unstable", NULL, SH_OPT_FLAG, &o->measure.accept_unstable, NULL,
         "rank with measurements stored as unstable (taken while the\nboard stayed busy, throttled, stolen from or "
         "drifting);\nby default such a candidate counts as failed, with the reason", 0, 0, NULL},
        {"--settle-rounds", NULL, SH_OPT_INT, &c->settle_rounds, "N",
         "re-measurements of a doubtful measurement after waiting for\nthe board to settle (default 1; 0: none)", 0, 100,
         &c->settle_rounds_given},
        {"--settle-max", NULL, SH_OPT_DOUBLE, &o->measure.settle_max_s, "S",
         "longest wait for the board to settle, seconds (default 15)", 1e-3, 86400, NULL},
        {"--reference", NULL, SH_OPT_STR, &c->reference, "GENOME",
         "drift check: measure this genome again on each device\nbefore every --every-th measurement there; a "
         "candidate\nmeasured while the board ran more than --drift-tol\nslower than the reference's last quiet value "
         "is doubtful\n(measured again, else unstable); decode_ms is ranked\nnormalized by the reference (x its first "
         "trusted reading\n/ the latest), so the board's own wandering cancels", 0, 0, NULL},
        {"--every", NULL, SH_OPT_INT, &o->measure.reference_every, "K",
         "reference period in measurements per device (default 10;\n1 tracks a board whose speed wanders fastest)", 1,
         1000000, &c->every_given},
        {"--drift-tol", NULL, SH_OPT_DOUBLE, &o->measure.drift_tol, "X",
         "reference drift tolerance, a fraction (default 0.10)", 0.001, 10, &c->drift_given},
        {"--paired", NULL, SH_OPT_FLAG, &o->measure.reference_paired, NULL,
         "with --reference, pair each invocation of a candidate\nwith one of the reference on the same CPUs and rank "
         "with\nthe median per-pair ratio x the first trusted reading:\nrobust to drift between readings, at twice the "
         "cost", 0, 0, &c->paired_given},
        {"--rank-absolute", NULL, SH_OPT_FLAG, &o->measure.rank_absolute, NULL,
         "with --reference, rank decode_ms as measured, not\nnormalized by the reference", 0, 0, &c->rank_abs_given},
    };
    const sh_opt tail[] = {
        {"--no-presets", NULL, SH_OPT_FLAG, &o->no_presets, NULL,
         "seed from random genomes only (default: LFM2 presets scaled\ninto the space, then random genomes)", 0, 0, NULL},
        {"--json", NULL, SH_OPT_FLAG, &c->json, NULL, "progress as JSON lines on stdout", 0, 0, NULL},
        {"--quiet", "-q", SH_OPT_FLAG, &c->quiet, NULL, "no progress on stderr", 0, 0, NULL},
        /* test hook: slows the analytic evaluator so runs last long enough to interrupt */
        {"--eval-delay-ms", NULL, SH_OPT_INT, &o->delay_ms, "MS", NULL, 0, 600000, NULL},
    };
    /* the executor options (shared with `score`) sit between the two parts */
    int n_head = (int)(sizeof head / sizeof head[0]), n_tail = (int)(sizeof tail / sizeof tail[0]);
    int n = n_head + SH_MEASURE_LIMIT_OPTS + SH_EXEC_CLI_N_OPTS + n_tail;
    assert(n <= cap);
    memcpy(t, head, sizeof head);
    /* the disturbance limits of measure, stored with the run */
    sh_measure_limit_opts(&o->measure.busy_wait, &o->measure.steal_max, &o->measure.others_max, &c->decode_warmup,
                          t + n_head);
    n_head += SH_MEASURE_LIMIT_OPTS;
    sh_exec_cli_table(&c->exec, t + n_head);
    /* `search resume` uses the settings the run was started with */
    t[n_head].help = "where capability scores run: local (default) or slurm, one\nbatch job per score "
                     "(docs/scale-out.md); `search resume`\nuses the settings the run was started with";
    memcpy(t + n_head + SH_EXEC_CLI_N_OPTS, tail, sizeof tail);
    return n;
}

#define SEARCH_MORE_USAGE "       starhil search resume RUN [--json] [--quiet]\n"

/* Returns 0, 1 for --help (printed), 2 for a usage error (printed). */
static int parse_search_args(int argc, char **argv, cli_state *c)
{
    sh_opt t[64];
    sh_cmd_spec spec = {"search", NULL, SEARCH_MORE_USAGE, SEARCH_ABOUT, t, 0, 0, 0};
    spec.n_opts = search_spec(c, t, 64);
    const char *pos[1];
    int n_pos, rc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (rc) return rc;
    sh_search_opts *o = &c->o;
    if (sh_exec_cli_apply(&c->exec, "search", &o->score.exec)) return 2;
    if (c->settle_rounds_given) o->measure.settle_rounds = c->settle_rounds ? c->settle_rounds : -1;
    if (c->score_rung_given) o->score.rung = c->score_rung + 1;   /* stored 1-based: 0 means the default */
    if (copy_opt("--devices", c->devices, o->devices, sizeof o->devices) ||
        copy_opt("--scorer", c->scorer, o->score.spec, sizeof o->score.spec) ||
        copy_opt("--tasks", c->tasks, o->score.tasks, sizeof o->score.tasks) ||
        copy_opt("--objectives", c->objectives, o->objectives, sizeof o->objectives) ||
        copy_opt("--name", c->name, o->name, sizeof o->name) ||
        copy_opt("--wtype", c->wtype, o->measure.wtype, sizeof o->measure.wtype) ||
        copy_opt("--score-state-dir", c->state_dir, o->score.state_dir, sizeof o->score.state_dir))
        return 2;
    if (c->seed) {
        char *end;
        errno = 0;
        unsigned long long sv = strtoull(c->seed, &end, 10);
        if (!*c->seed || *end || errno || *c->seed == '-') {
            fprintf(stderr, "starhil search: --seed: expected a non-negative integer, got \"%s\"\n", c->seed);
            return 2;
        }
        o->seed = sv;
    }
    if ((c->every_given || c->drift_given || c->rank_abs_given || c->paired_given) && !c->reference) {
        fprintf(stderr, "starhil search: %s: needs --reference GENOME (the genome to re-measure)\n",
                c->every_given ? "--every" : c->drift_given ? "--drift-tol" : c->rank_abs_given ? "--rank-absolute"
                : "--paired");
        return 2;
    }
    if (c->reference && resolve_reference(c->reference, &o->measure) < 0)
        return 2;
    sh_err dwe;
    if (sh_decode_warmup_parse(c->decode_warmup, &o->measure.decode_warmup, &dwe)) {
        fprintf(stderr, "starhil search: --decode-warmup: %s\n", dwe.msg);
        return 2;
    }
    if (c->algorithm && sh_moea_algo_parse(c->algorithm, &o->algo) < 0) {
        fprintf(stderr, "starhil search: --algorithm: expected nsga2, hv or random, got \"%s\"\n", c->algorithm);
        return 2;
    }
    if (c->evaluator) {
        if (!strcmp(c->evaluator, "device")) o->mode = SH_EVAL_DEVICE;
        else if (!strcmp(c->evaluator, "analytic")) o->mode = SH_EVAL_ANALYTIC;
        else {
            fprintf(stderr, "starhil search: --evaluator: expected device or analytic, got \"%s\"\n", c->evaluator);
            return 2;
        }
    }
    return 0;
}

/* Defaults that depend on what was given: capability when a scorer exists. */
static void apply_defaults(cli_state *c)
{
    sh_search_opts *o = &c->o;
    if (!c->scorer_given && o->mode == SH_EVAL_DEVICE) {
        /* the implicit scorer: held-out bits/byte of proxies sized for the
         * default space (hidden 128..512 -> width 16..64), cheap enough for a
         * 15-minute run on two cores */
        snprintf(o->score.spec, sizeof o->score.spec, "builtin");
        if (!o->score.tasks[0])
            snprintf(o->score.tasks, sizeof o->score.tasks, "lm");
        if (!(o->score.scale > 0))
            o->score.scale = 0.125;
        if (!(o->score.tokens > 0))
            o->score.tokens = 32768;
    }
    if (o->score.halving && !o->score.state_dir[0] && o->score.exec.kind == SH_EXEC_LOCAL) {
        snprintf(o->score.state_dir, sizeof o->score.state_dir, "%s/cap-state", sh_cache_dir());
    }
    if (!c->objectives_given) {
        if (o->score.spec[0])
            snprintf(o->objectives, sizeof o->objectives, "decode_ms,params,capability");
        else if (o->mode == SH_EVAL_ANALYTIC)
            snprintf(o->objectives, sizeof o->objectives, "params,cache_bytes");
        else
            snprintf(o->objectives, sizeof o->objectives, "decode_ms,params");
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The candidates whose measurement failed only to converge, every doubt
 * else absent (a quiet but noisy board: a shared VM's repetitions scatter
 * with nothing the guest can read): how wide their intervals were, and the
 * tolerance that would have kept three in four of them.  half[] are the
 * intervals' relative half-widths parsed from the reasons ("+-X% > tolerance"). */
static void print_convergence_hint(double *half, int n)
{
    if (n == 0) return;
    qsort(half, (size_t)n, sizeof *half, cmp_double);
    double q75 = half[(3 * n - 1) / 4];
    int tol_pct = (int)ceil(q75 * 100 - 1e-9);
    int kept = 0;
    for (int i = 0; i < n; i++) kept += half[i] * 100 <= tol_pct + 1e-9;
    fprintf(stderr, "starhil search: %d of them only did not converge (enough quiet repetitions, no drift): their intervals were "
            "+-%.1f%% to +-%.1f%% (median +-%.1f%%); this board's repetitions scatter more than --tolerance allows. "
            "More repetitions (--reps, --settle-rounds) narrow them; --tolerance %.2f would have kept %d of the %d\n",
            n, 100 * half[0], 100 * half[n - 1], 100 * half[n / 2], tol_pct / 100.0, kept, n);
}

/* Candidates that failed only because their measurement stayed unstable. */
static void print_unstable_hint(sh_db *db, int64_t run_id)
{
    sh_eval_rec *e = NULL;
    int n = 0, unstable = 0, why[6] = {0, 0, 0, 0, 0, 0}, n_half = 0;
    double *half = NULL;
    static const char *const key[6] = {"busy:", "throttled:", "steal:", "shared:", "reference", "not converged"};
    static const char *const name[6] = {"busy", "throttled", "steal", "shared", "reference drift", "not converged"};
    sh_err err = {{0}};
    if (sh_db_list_evals(db, run_id, &e, &n, &err) != 0)
        return;
    half = malloc((size_t)(n ? n : 1) * sizeof *half);
    for (int i = 0; i < n; i++) {
        if (strcmp(e[i].kind, "search") || strcmp(e[i].status, "failed") || !e[i].error ||
            !strstr(e[i].error, "measurement unstable"))
            continue;
        unstable++;
        int reasons = 0;
        for (int k = 0; k < 6; k++) {
            bool has = strstr(e[i].error, key[k]) != NULL;
            why[k] += has;
            reasons += has;
        }
        const char *pm = strstr(e[i].error, "+-");
        double h = pm ? strtod(pm + 2, NULL) / 100 : 0;
        if (half && reasons == 1 && strstr(e[i].error, key[5]) && h > 0 && isfinite(h))
            half[n_half++] = h;
    }
    sh_eval_recs_free(e, n);
    if (!unstable) {
        free(half);
        return;
    }
    char reasons[160] = "";
    size_t len = 0;
    for (int k = 0; k < 6; k++)
        if (why[k] && len < sizeof reasons)
            len += (size_t)snprintf(reasons + len, sizeof reasons - len, "%s%s %d", len ? ", " : "", name[k], why[k]);
    fprintf(stderr, "starhil search: %d candidate(s) counted as failed because their measurement stayed unstable "
            "(%s; the reasons are stored: `starhil runs show %" PRId64 "`); measure on a quieter board, or rank with "
            "them anyway: --accept-unstable\n", unstable, reasons, run_id);
    if (half) print_convergence_hint(half, n_half);
    free(half);
}

/* Ctrl-C (or SIGTERM) once: stop at the next generation boundary; the
 * handler then restores the default so a second one ends the process. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    stop_requested = 1;
    static const char msg[] = "\nstarhil search: stopping after this generation (again to quit now)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    signal(sig, SIG_DFL);
}

/* Runs the search; when it finishes here (not stopped, not --json) prints the
 * front and sets *finished to the run id, so cli/main.c writes its report. */
static int run_and_finish(sh_db *db, int64_t run_id, bool json, bool quiet, int64_t *finished)
{
    progress_ctx pc;
    memset(&pc, 0, sizeof pc);
    pc.json = json;
    sh_progress_init(&pc.line, quiet || json);
    sh_err err = {{0}};
    stop_requested = 0;
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    if (!json && !quiet)
        fprintf(stderr, "starhil search: run %" PRId64 " (resume with `starhil search resume %" PRId64 "`)\n",
                run_id, run_id);
    int rc = sh_search_run(db, run_id, &stop_requested, on_progress, &pc, &err);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (pc.have_last && !pc.line.tty) {
        /* a log ends with where the run got to, however recent the last line was */
        char elapsed[32];
        sh_format_duration(pc.last.elapsed_s, elapsed, sizeof elapsed);
        sh_progress_event(&pc.line, "search run %" PRId64 ": %s at gen %d, evaluation %ld/%ld, front %d, elapsed %s",
                          run_id, rc == 0 ? "finished" : rc == 1 ? "stopped" : "failed", pc.last.gen,
                          pc.last.evals, pc.last.budget, pc.last.front, elapsed);
    }
    sh_progress_done(&pc.line);
    if (rc == 1) {
        fprintf(stderr, "starhil search: run %" PRId64 " stopped; continue it with `starhil search resume %" PRId64 "`\n",
                run_id, run_id);
        if (json)
            printf("{\"event\":\"stopped\",\"run\":%" PRId64 "}\n", run_id);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "starhil search: run %" PRId64 ": %s\n", run_id, err.msg);
        return 1;
    }
    if (json) {
        printf("{\"event\":\"done\",\"run\":%" PRId64 "}\n", run_id);
        return 0;
    }
    printf("Pareto front of run %" PRId64 ":\n", run_id);
    if (print_front(db, run_id, false, false, &err) < 0) {
        fprintf(stderr, "starhil search: %s\n", err.msg);
        return 1;
    }
    print_unstable_hint(db, run_id);
    *finished = run_id;
    return 0;
}

static int cmd_resume(int argc, char **argv, int64_t *finished)
{
    bool json = false, quiet = false;
    const sh_opt t[] = {
        {"--json", NULL, SH_OPT_FLAG, &json, NULL, "progress as JSON lines on stdout", 0, 0, NULL},
        {"--quiet", "-q", SH_OPT_FLAG, &quiet, NULL, "no progress on stderr", 0, 0, NULL},
    };
    sh_cmd_spec spec = {"search resume", "RUN", NULL,
                        "Continues a stopped or killed search run (id or name) where its last generation\n"
                        "boundary left it; no evaluation is lost or repeated.\n",
                        t, 2, 1, 1};
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(&spec, argc - 1, argv + 1, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    const char *run = pos[0];
    sh_db *db;
    if (sh_cli_open_db("search resume", 0, &db) < 0)
        return 1;
    sh_err err = {{0}};
    int64_t id;
    int rc;
    if (sh_search_find_run(db, run, &id, &err) < 0) {
        fprintf(stderr, "starhil search resume: %s\n", err.msg);
        rc = 1;
    } else {
        rc = run_and_finish(db, id, json, quiet, finished);
    }
    sh_db_close(db);
    return rc;
}

/* Prefixes a relative path with the working directory (in place); -1 if
 * that does not fit or the directory is unknown. */
static int absolute_path(char *path, size_t cap)
{
    char cwd[4096], out[4096];
    if (!getcwd(cwd, sizeof cwd) || snprintf(out, sizeof out, "%s/%s", cwd, path) >= (int)sizeof out ||
        strlen(out) >= cap)
        return -1;
    snprintf(path, cap, "%s", out);
    return 0;
}

int sh_cmd_search_run(int argc, char **argv, int64_t *finished)
{
    *finished = 0;
    if (argc > 1 && !strcmp(argv[1], "resume"))
        return cmd_resume(argc, argv, finished);
    cli_state c;
    memset(&c, 0, sizeof c);
    sh_search_opts_default(&c.o);
    int p = parse_search_args(argc, argv, &c);
    if (p == 1)
        return 0;
    if (p)
        return 2;
    apply_defaults(&c);
    sh_err err = {{0}};
    char *space_json = NULL;
    if (c.space_path) {
        sh_space s;
        if (sh_space_load_file(c.space_path, &s, &space_json, &err) < 0) {
            fprintf(stderr, "starhil search: %s\n", err.msg);
            return 1;
        }
    }
    c.o.space_json = space_json;
    sh_db *db;
    if (sh_cli_open_db("search", SH_DB_CREATE, &db) < 0) {
        free(space_json);
        return 1;
    }
    int64_t id;
    int rc;
    if (c.o.score.exec.kind != SH_EXEC_LOCAL && sh_exec_check(&c.o.score.exec, sh_db_path(db), &err) < 0) {
        fprintf(stderr, "starhil search: %s\n", err.msg);
        rc = 1;
    } else if (c.o.score.exec.kind != SH_EXEC_LOCAL && c.o.score.state_dir[0] && c.o.score.state_dir[0] != '/' &&
               absolute_path(c.o.score.state_dir, sizeof c.o.score.state_dir) < 0) {
        /* the jobs run elsewhere: they get the directory by its absolute path */
        fprintf(stderr, "starhil search: --score-state-dir %s: cannot make it an absolute path\n", c.o.score.state_dir);
        rc = 1;
    } else if (c.o.score.halving && !c.o.score.state_dir[0] &&
               snprintf(c.o.score.state_dir, sizeof c.o.score.state_dir, "%s/cap-state",
                        c.o.score.exec.results_dir) >= (int)sizeof c.o.score.state_dir) {
        /* halving on a cluster: the jobs pass training states on through the shared directory */
        fprintf(stderr, "starhil search: --results-dir too long for the training states' directory\n");
        rc = 1;
    } else if (sh_search_create(db, &c.o, &id, &err) < 0) {
        fprintf(stderr, "starhil search: %s\n", err.msg);
        rc = 1;
    } else {
        rc = run_and_finish(db, id, c.json, c.quiet, finished);
    }
    sh_db_close(db);
    free(space_json);
    return rc;
}

int sh_cmd_front(int argc, char **argv)
{
    bool json = false, all = false;
    const sh_opt t[] = {
        {"--all", NULL, SH_OPT_FLAG, &all, NULL, "the whole latest population with ranks, not only the front", 0, 0, NULL},
        {"--json", NULL, SH_OPT_FLAG, &json, NULL, "a JSON array of {genome, text, rank, objectives} objects", 0, 0,
         NULL},
    };
    sh_cmd_spec spec = {"front", "RUN", NULL,
                        "Prints the current Pareto front of a search run (id or name): the feasible,\n"
                        "non-dominated members of its latest generation, with their objectives.\n",
                        t, 2, 1, 1};
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    const char *run = pos[0];
    sh_db *db;
    if (sh_cli_open_db("front", SH_DB_READONLY, &db) < 0)
        return 1;
    sh_err err = {{0}};
    int64_t id;
    int rc = 0;
    if (sh_search_find_run(db, run, &id, &err) < 0 || print_front(db, id, all, json, &err) < 0) {
        fprintf(stderr, "starhil front: %s\n", err.msg);
        rc = 1;
    }
    sh_db_close(db);
    return rc;
}
