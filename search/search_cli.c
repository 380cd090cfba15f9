/* search_cli.c - `starhil search` (start or resume a multi-objective search,
 * with a live progress line or JSON-lines progress) and `starhil front` (the
 * current Pareto front of a run as a table or JSON). */
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "search/eval_backends.h"
#include "search/run.h"
#include "search/space.h"
#include "util/cliopt.h"

#if defined(__has_include)
#if __has_include("reports/report_data.h")
#include "reports/report_data.h"
#define SH_SEARCH_HAVE_REPORTS 1
#endif
#endif

static const char SEARCH_USAGE[] =
    "usage: starhil search [--space FILE] [--devices A,B] [--scorer NAME] [--objectives LIST]\n"
    "                      [--budget N] [--population N] [--algorithm nsga2|hv|random]\n"
    "                      [--seed S] [--name NAME] [--evaluator device|analytic] [--jobs N]\n"
    "                      [--prompt N] [--gen N] [--reps N] [--wtype T] [--no-presets] [--json]\n"
    "       starhil search resume RUN [--json]\n"
    "\n"
    "Multi-objective search of architectures inside a search space.  Every candidate\n"
    "is measured on each device (one worker thread per healthy device) and scored for\n"
    "capability at the same time; every evaluation and the state at each generation\n"
    "boundary are stored in the run database, so `starhil search resume RUN` continues\n"
    "a killed run without losing or repeating an evaluation.  With no arguments, runs\n"
    "a small default search on the local device (about ten minutes on two cores).\n"
    "\n"
    "options:\n"
    "  --space FILE       search space JSON (default: the built-in space, see\n"
    "                     search/spaces/default.json)\n"
    "  --devices A,B      devices to measure on (default: local); objectives like\n"
    "                     decode_ms take the worst device, decode_ms@A one device\n"
    "  --scorer NAME      capability scorer: builtin, cmd:PROGRAM ARGS or an http(s) URL\n"
    "                     (default with the device evaluator: builtin, task lm = held-out\n"
    "                     bits/byte on real text, proxies at --score-scale 0.125 trained\n"
    "                     on --score-tokens 32768 bytes each, for speed)\n"
    "  --tasks LIST       built-in capability tasks to use (default: lm)\n"
    "  --score-scale F    built-in proxy width factor (default 0.125 with the implicit\n"
    "                     scorer, else the scorer's 1/32)\n"
    "  --score-tokens N   built-in lm training tokens per candidate (equal for all)\n"
    "  --score-halving    successive halving per generation (device evaluator): all\n"
    "                     candidates at rung 0 (1/9 of the tokens), the best third\n"
    "                     (non-dominated rank on capability and params) continued to\n"
    "                     rung 1, the best third of those to rung 2; lower rungs count\n"
    "                     as a constraint violation, so fronts hold top-rung scores\n"
    "  --score-rung R     score every candidate at fidelity rung R of 3 (0: 1/9 of the\n"
    "                     tokens, 1: 1/3, 2: all; default 2); stored with the run\n"
    "  --score-size F     built-in synthetic tasks' train-set size factor (default 1)\n"
    "  --score-threads N  capability training threads (default 1)\n"
    "  --objectives LIST  comma-separated, from decode_ms, prefill_ms, ttft_ms,\n"
    "                     peak_bytes, params, cache_bytes, capability (maximised);\n"
    "                     default decode_ms,params,capability (analytic: params,cache_bytes)\n"
    "  --budget N         evaluations in total (default 48)\n"
    "  --population N     population size (default 12)\n"
    "  --offspring N      children per generation (default: the population size;\n"
    "                     1 with --algorithm hv is a steady-state SMS-EMOA)\n"
    "  --algorithm A      nsga2 (default), hv (hypervolume contribution, SMS-EMOA-like)\n"
    "                     or random (random-search baseline with the same budget)\n"
    "  --seed S           random seed (default 1); same seed, same search\n"
    "  --name NAME        run name (default \"search\")\n"
    "  --evaluator E      device (default) or analytic: closed-form objectives (params,\n"
    "                     cache bytes, roofline latency estimates), no device needed\n"
    "  --jobs N           analytic evaluator threads (default 2)\n"
    "  --prompt N --gen N --reps N --wtype T --threads N\n"
    "                     measurement settings (default 64, 16, 6, f32, 1 thread)\n"
    "  --no-presets       seed from random genomes only (default: LFM2 presets scaled\n"
    "                     into the space, then random genomes)\n"
    "  --json             progress as JSON lines on stdout\n";

static const char FRONT_USAGE[] =
    "usage: starhil front RUN [--all] [--json]\n"
    "\n"
    "Prints the current Pareto front of a search run (id or name): the feasible,\n"
    "non-dominated members of its latest generation, with their objectives.\n"
    "\n"
    "options:\n"
    "  --all    the whole latest population with ranks, not only the front\n"
    "  --json   a JSON array of {genome, text, rank, objectives} objects\n";

typedef struct progress_ctx {
    bool json;
    bool tty;
    bool line_open;
} progress_ctx;

static void format_eta(double s, char *buf, size_t cap)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, cap, "?");
    else if (s < 60)
        snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

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
        char *txt = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (txt) {
            printf("%s\n", txt);
            fflush(stdout);
            free(txt);
        }
    }
    if (c->tty) {
        char eta[32], hv[32];
        format_eta(p->eta_s, eta, sizeof eta);
        if (isfinite(p->hypervolume))
            snprintf(hv, sizeof hv, "%.4f", p->hypervolume);
        else
            snprintf(hv, sizeof hv, "-");
        fprintf(stderr, "\r\033[Krun %" PRId64 "  gen %d  evals %ld/%ld  front %d  hv %s  eta %s", p->run_id,
                p->gen, p->evals, p->budget, p->front, hv, eta);
        fflush(stderr);
        c->line_open = true;
    }
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
    if (sh_search_run_objectives(db, run_id, obj, &n_obj, err) < 0)
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
static int parse_long(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "starhil search: %s: expected an integer from %ld to %ld, got \"%s\"\n", opt, lo, hi, s);
        return -1;
    }
    *out = (long)v;
    return 0;
}

static int copy_opt(const char *opt, const char *s, char *out, size_t cap)
{
    if (strlen(s) >= cap) {
        fprintf(stderr, "starhil search: %s: value too long (at most %zu bytes)\n", opt, cap - 1);
        return -1;
    }
    snprintf(out, cap, "%s", s);
    return 0;
}

typedef struct cli_state {
    sh_search_opts o;
    const char *space_path;
    bool json;
    bool scorer_given, objectives_given;
} cli_state;

/* Returns 0, 1 for --help, -1 for a usage error. */
static int parse_search_args(int argc, char **argv, cli_state *c)
{
    sh_search_opts *o = &c->o;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return 1;
        if (!strcmp(a, "--json")) { c->json = true; continue; }
        if (!strcmp(a, "--no-presets")) { o->no_presets = true; continue; }
        if (!strcmp(a, "--score-halving")) { o->score.halving = true; continue; }
        if (!v) {
            fprintf(stderr, "starhil search: unknown option or missing value: %s\n", a);
            return -1;
        }
        i++;
        if (!strcmp(a, "--space")) c->space_path = v;
        else if (!strcmp(a, "--devices")) { if (copy_opt(a, v, o->devices, sizeof o->devices)) return -1; }
        else if (!strcmp(a, "--scorer")) { if (copy_opt(a, v, o->score.spec, sizeof o->score.spec)) return -1; c->scorer_given = true; }
        else if (!strcmp(a, "--tasks")) { if (copy_opt(a, v, o->score.tasks, sizeof o->score.tasks)) return -1; }
        else if (!strcmp(a, "--score-threads")) { if (parse_long(a, v, 1, 64, &n)) return -1; o->score.threads = (int)n; }
        else if (!strcmp(a, "--score-rung")) { if (parse_long(a, v, 0, 2, &n)) return -1; o->score.rung = (int)n + 1; }
        else if (!strcmp(a, "--score-tokens")) { if (parse_long(a, v, 1, 1000000000L, &n)) return -1; o->score.tokens = n; }
        else if (!strcmp(a, "--score-scale")) {
            char *end;
            double f = strtod(v, &end);
            if (!*v || *end || !(f > 0 && f <= 1)) {
                fprintf(stderr, "starhil search: --score-scale: expected a factor in (0, 1], got \"%s\"\n", v);
                return -1;
            }
            o->score.scale = f;
        }
        else if (!strcmp(a, "--score-size")) {
            char *end;
            double f = strtod(v, &end);
            if (!*v || *end || !(f > 0 && f <= 100)) {
                fprintf(stderr, "starhil search: --score-size: expected a factor in (0, 100], got \"%s\"\n", v);
                return -1;
            }
            o->score.size_factor = f;
        }
        else if (!strcmp(a, "--objectives")) { if (copy_opt(a, v, o->objectives, sizeof o->objectives)) return -1; c->objectives_given = true; }
        else if (!strcmp(a, "--name")) { if (copy_opt(a, v, o->name, sizeof o->name)) return -1; }
        else if (!strcmp(a, "--wtype")) { if (copy_opt(a, v, o->measure.wtype, sizeof o->measure.wtype)) return -1; }
        else if (!strcmp(a, "--budget")) { if (parse_long(a, v, 1, 100000000, &o->budget)) return -1; }
        else if (!strcmp(a, "--population")) { if (parse_long(a, v, 2, 10000, &n)) return -1; o->population = (int)n; }
        else if (!strcmp(a, "--offspring")) { if (parse_long(a, v, 1, 10000, &n)) return -1; o->offspring = (int)n; }
        else if (!strcmp(a, "--jobs")) { if (parse_long(a, v, 1, 64, &n)) return -1; o->jobs = (int)n; }
        else if (!strcmp(a, "--eval-delay-ms")) { if (parse_long(a, v, 0, 600000, &n)) return -1; o->delay_ms = (int)n; }
        else if (!strcmp(a, "--prompt")) { if (parse_long(a, v, 1, 1 << 20, &n)) return -1; o->measure.prompt = (int)n; }
        else if (!strcmp(a, "--gen")) { if (parse_long(a, v, 1, 1 << 20, &n)) return -1; o->measure.gen = (int)n; }
        else if (!strcmp(a, "--reps")) { if (parse_long(a, v, 1, 10000, &n)) return -1; o->measure.reps = (int)n; }
        else if (!strcmp(a, "--threads")) { if (parse_long(a, v, 1, 1024, &n)) return -1; o->measure.threads = (int)n; }
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end || errno || *v == '-') {
                fprintf(stderr, "starhil search: --seed: expected a non-negative integer, got \"%s\"\n", v);
                return -1;
            }
            o->seed = s;
        } else if (!strcmp(a, "--algorithm")) {
            if (sh_moea_algo_parse(v, &o->algo) < 0) {
                fprintf(stderr, "starhil search: --algorithm: expected nsga2, hv or random, got \"%s\"\n", v);
                return -1;
            }
        } else if (!strcmp(a, "--evaluator")) {
            if (!strcmp(v, "device")) o->mode = SH_EVAL_DEVICE;
            else if (!strcmp(v, "analytic")) o->mode = SH_EVAL_ANALYTIC;
            else {
                fprintf(stderr, "starhil search: --evaluator: expected device or analytic, got \"%s\"\n", v);
                return -1;
            }
        } else {
            fprintf(stderr, "starhil search: unknown option: %s (see starhil search --help)\n", a);
            return -1;
        }
    }
    return 0;
}

/* Defaults that depend on what was given: capability when a scorer exists. */
static void apply_defaults(cli_state *c)
{
    sh_search_opts *o = &c->o;
    if (!c->scorer_given && o->mode == SH_EVAL_DEVICE && sh_search_backend_has_scorer()) {
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
    if (o->score.halving && !o->score.state_dir[0]) {
        const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
        if (x && *x) snprintf(o->score.state_dir, sizeof o->score.state_dir, "%s/starhil/cap-state", x);
        else if (h && *h) snprintf(o->score.state_dir, sizeof o->score.state_dir, "%s/.cache/starhil/cap-state", h);
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

#ifdef SH_SEARCH_HAVE_REPORTS
/* Writes report-run<ID>.html in the current directory (temporary file renamed
 * into place); 0 and the path, or -1 with err. */
static int write_html_report(sh_db *db, int64_t run_id, char *path, size_t cap, sh_err *err)
{
    sh_report r;
    if (sh_report_load(db, run_id, &r, err) != 0)
        return -1;
    char tmp[96];
    snprintf(path, cap, "report-run%" PRId64 ".html", run_id);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (!f) {
        sh_err_set(err, "%s: cannot create (%s)", tmp, strerror(errno));
    } else {
        rc = sh_report_write_html(&r, f, err);
        if (fclose(f) != 0 && rc == 0)
            rc = sh_err_set(err, "%s: write error", tmp);
        if (rc == 0 && rename(tmp, path) != 0)
            rc = sh_err_set(err, "%s: cannot rename into place (%s)", path, strerror(errno));
        if (rc != 0)
            remove(tmp);
    }
    sh_report_free(&r);
    return rc;
}
#endif

static void print_report_hint(sh_db *db, int64_t run_id)
{
#ifdef SH_SEARCH_HAVE_REPORTS
    char path[80];
    sh_err err = {{0}};
    if (write_html_report(db, run_id, path, sizeof path, &err) == 0) {
        printf("\nreport: %s (rewrite it with `starhil report %" PRId64 "`)\n", path, run_id);
        return;
    }
    fprintf(stderr, "starhil search: report not written: %s\n", err.msg);
#else
    (void)db;
#endif
    printf("\nrun %" PRId64 " done; write its report with `starhil report %" PRId64 "`\n", run_id, run_id);
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

static int run_and_finish(sh_db *db, int64_t run_id, bool json)
{
    progress_ctx pc = {json, sh_cli_is_tty(), false};
    sh_err err = {{0}};
    stop_requested = 0;
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    if (!json)
        fprintf(stderr, "starhil search: run %" PRId64 " (resume with `starhil search resume %" PRId64 "`)\n",
                run_id, run_id);
    int rc = sh_search_run(db, run_id, &stop_requested, on_progress, &pc, &err);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (pc.line_open)
        fprintf(stderr, "\n");
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
    print_report_hint(db, run_id);
    return 0;
}

static int open_db(const char *cmd, int flags, sh_db **db)
{
    sh_err err = {{0}};
    if (sh_db_open(sh_cli_db_path(), flags, db, &err) < 0) {
        fprintf(stderr, "starhil %s: %s\n", cmd, err.msg);
        return -1;
    }
    return 0;
}

static int cmd_resume(int argc, char **argv)
{
    bool json = false;
    const char *run = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(SEARCH_USAGE, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (argv[i][0] != '-' && !run)
            run = argv[i];
        else {
            fprintf(stderr, "starhil search resume: unexpected argument: %s\n", argv[i]);
            return 2;
        }
    }
    if (!run) {
        fprintf(stderr, "starhil search resume: which run? (usage: starhil search resume RUN)\n");
        return 2;
    }
    sh_db *db;
    if (open_db("search resume", 0, &db) < 0)
        return 1;
    sh_err err = {{0}};
    int64_t id;
    int rc;
    if (sh_search_find_run(db, run, &id, &err) < 0) {
        fprintf(stderr, "starhil search resume: %s\n", err.msg);
        rc = 1;
    } else {
        rc = run_and_finish(db, id, json);
    }
    sh_db_close(db);
    return rc;
}

int sh_cmd_search(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "resume"))
        return cmd_resume(argc, argv);
    cli_state c;
    memset(&c, 0, sizeof c);
    sh_search_opts_default(&c.o);
    int p = parse_search_args(argc, argv, &c);
    if (p == 1) {
        fputs(SEARCH_USAGE, stdout);
        return 0;
    }
    if (p < 0)
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
    if (open_db("search", SH_DB_CREATE, &db) < 0) {
        free(space_json);
        return 1;
    }
    int64_t id;
    int rc;
    if (sh_search_create(db, &c.o, &id, &err) < 0) {
        fprintf(stderr, "starhil search: %s\n", err.msg);
        rc = 1;
    } else {
        rc = run_and_finish(db, id, c.json);
    }
    sh_db_close(db);
    free(space_json);
    return rc;
}

int sh_cmd_front(int argc, char **argv)
{
    bool json = false, all = false;
    const char *run = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(FRONT_USAGE, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--all"))
            all = true;
        else if (argv[i][0] != '-' && !run)
            run = argv[i];
        else {
            fprintf(stderr, "starhil front: unexpected argument: %s (see starhil front --help)\n", argv[i]);
            return 2;
        }
    }
    if (!run) {
        fprintf(stderr, "starhil front: which run? (usage: starhil front RUN [--json])\n");
        return 2;
    }
    sh_db *db;
    if (open_db("front", SH_DB_READONLY, &db) < 0)
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
