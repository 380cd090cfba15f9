/* score_cli.c - `starhil score GENOME`: capability score of a genome with the
 * built-in synthetic-task suite or an external scorer, stored in the run
 * database (a stored answer is printed without recomputing). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cluster/cluster_cli.h"
#include "evaluator/capability/score.h"
#include "util/cliopt.h"
#include "util/progress.h"

static void score_usage(FILE *f)
{
    fprintf(f,
        "usage: starhil score GENOME [--scorer NAME] [--json] [--threads N] [--seed S]\n"
        "                     [--tasks a,b] [--scale F] [--layers N] [--head-dim N]\n"
        "                     [--corpus PATH] [--tokens N | --flops F] [--rung R] [--rungs N]\n"
        "                     [--state-dir DIR | --no-state] [--size-factor X] [--force] [--quiet]\n"
        "                     [--timeout S] [--retries N] [--token-env NAME] [--insecure]\n"
        "                     [--executor local|slurm ...]\n"
        "       starhil score --in-job SPEC.json --result RESULT.json   (inside a batch job)\n\n"
        "Capability score of GENOME (a preset name, a genome file, or canonical text).\n"
        "The answer is stored in the run database (--db) keyed by genome, scorer,\n"
        "scorer version and parameters (scale, tasks, budget, corpus, rung, seed);\n"
        "asking again prints the stored answer.\n\n"
        "scorers (--scorer):\n"
        "  builtin            (default) trains a proxy of the genome (every width times\n"
        "                     --scale, the layer pattern kept) and reports, per task,\n"
        "                     held-out bits/byte (lm: byte-level language modelling on\n"
        "                     real English text, score 1 - bits/8) or test accuracy\n"
        "                     (MAD-style synthetic tasks); aggregate = mean task score.\n"
        "                     tasks: %s (default: lm)\n"
        "  cmd:PROGRAM ARGS   runs PROGRAM (no shell) with the genome JSON on stdin\n"
        "                     (plus \"proxy_scale\" and \"rung\"); it prints a JSON object\n"
        "                     of numeric scores (optional \"aggregate\", else the mean)\n"
        "  http(s)://URL      POSTs the same JSON, reads the same JSON object back\n\n"
        "options:\n"
        "  --json             print the stored record as JSON\n"
        "  --threads N        training threads (default: online CPUs, max 8; scores do\n"
        "                     not depend on it)\n"
        "  --seed S           task data and model initialisation seed (default 1)\n"
        "  --tasks a,b        built-in tasks to run (default: lm)\n"
        "  --scale F          proxy width factor (default 1/32 = 0.03125; LFM2-350M's\n"
        "                     hidden 1024 -> 32); head dim stays --head-dim\n"
        "  --layers N         proxy depth cap (default 32; deeper genomes are squeezed)\n"
        "  --head-dim N       proxy head dim (default 32)\n"
        "  --corpus PATH      lm text: a file or a directory of text files (default\n"
        "                     /usr/share/games/fortunes, Debian package fortunes);\n"
        "                     the last 10%% is held out\n"
        "  --tokens N         lm training tokens at the top rung (default 327680; equal\n"
        "                     for every genome)\n"
        "  --flops F          lm: equal training FLOPs instead of equal tokens\n"
        "  --rungs N          fidelity rungs (default 3): rung r trains 3^(r-N+1) of the\n"
        "                     budget (1/9, 1/3, 1)\n"
        "  --rung R           rung to score, 0..N-1 (default: the top rung)\n"
        "  --state-dir DIR    where training states are kept so that a higher rung\n"
        "                     continues a lower one (default $XDG_CACHE_HOME/starhil/\n"
        "                     cap-state or ~/.cache/starhil/cap-state)\n"
        "  --no-state         keep no training states (every rung trains from scratch)\n"
        "  --size-factor X    scale synthetic train-set sizes (default 1)\n"
        "  --force            recompute even if a stored score exists\n"
        "  --quiet            no progress lines on stderr\n"
        "  --timeout S        external scorer timeout per attempt (default 600)\n"
        "  --retries N        http: retries on connection errors and 5xx (default 2)\n"
        "  --token-env NAME   http: send 'Authorization: Bearer $NAME' (never stored)\n"
        "  --insecure         http: do not verify TLS certificates\n\n"
        "%s\n"
        "  --in-job SPEC --result RESULT\n"
        "                     what a batch job runs: score the spec file's genome and\n"
        "                     write RESULT (exit 0 ok, 3 the scorer rejects the genome\n"
        "                     or settings: not retried, else 1)\n",
        sh_score_builtin_tasks(), sh_exec_usage());
}

static void cli_progress(void *ctx, const char *line)
{
    sh_progress *p = ctx;
    if (strstr(line, "bits/byte") || strstr(line, "accuracy")) sh_progress_event(p, "score %s", line);
    else sh_progress_update(p, "score %s", line);
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

static void print_record(const sh_score_rec *r, int cached, int as_json)
{
    char hex[17];
    sh_hash_hex(r->genome, hex);
    json_t *scores = r->scores_json ? json_loads(r->scores_json, 0, NULL) : NULL;
    if (as_json) {
        json_t *params = r->params_json ? json_loads(r->params_json, 0, NULL) : NULL;
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:f, s:f}", "genome_hash", hex, "scorer", r->scorer,
                              "version", r->version, "status", r->status, "cached", cached,
                              "aggregate", r->aggregate, "seconds", r->seconds);
        json_object_set_new(o, "scores", scores ? scores : json_null());
        json_object_set_new(o, "params", params ? params : json_null());
        json_object_set_new(o, "error", r->error ? json_string(r->error) : json_null());
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (s) puts(s);
        free(s);
        json_decref(o);
        return;
    }
    printf("genome %s  scorer %s (%s)  %s%s\n", hex, r->scorer, r->version, r->status, cached ? "  [stored]" : "");
    if (scores) {
        const char *k;
        json_t *v;
        json_object_foreach(scores, k, v) printf("  %-16s %.4f\n", k, json_number_value(v));
        json_decref(scores);
    }
    if (!strcmp(r->status, "ok")) printf("  %-16s %.4f\n", "aggregate", r->aggregate);
    if (r->error) printf("  error: %s\n", r->error);
    printf("  seconds          %.1f\n", r->seconds);
}

int sh_cmd_score(int argc, char **argv)
{
    sh_score_opts o;
    sh_score_opts_default(&o);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = ncpu < 1 ? 1 : (ncpu > 8 ? 8 : (int)ncpu);
    const char *genome_arg = NULL, *scorer = "builtin";
    int as_json = 0, quiet = 0, no_state = 0;
    char state_dir[4096] = "";
    sh_exec_opts ex;
    sh_exec_opts_default(&ex);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--in-job")) return sh_cluster_in_job_cli(argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        double d;
        sh_err xerr = {{0}};
        int xr = sh_exec_parse_arg(&ex, a, v, &xerr);
        if (xr < 0) { fprintf(stderr, "starhil score: %s\n", xerr.msg); return 2; }
        if (xr > 0) { i++; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { score_usage(stdout); return 0; }
        else if (!strcmp(a, "--json")) as_json = 1;
        else if (!strcmp(a, "--force")) o.force = true;
        else if (!strcmp(a, "--insecure")) o.insecure = true;
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--no-state")) no_state = 1;
        else if (!strcmp(a, "--width")) {
            fprintf(stderr, "starhil score: --width was replaced by --scale (proxy width = hidden x scale)\n");
            return 2;
        }
        else if (a[0] == '-' && a[1] == '-' && !v) {
            fprintf(stderr, "starhil score: %s needs a value (or is unknown; see --help)\n", a);
            return 2;
        }
        else if (!strcmp(a, "--scorer")) { scorer = v; i++; }
        else if (!strcmp(a, "--tasks")) { o.tasks = v; i++; }
        else if (!strcmp(a, "--token-env")) { o.token_env = v; i++; }
        else if (!strcmp(a, "--threads") && !parse_long(v, 1, 64, &n)) { o.threads = (int)n; i++; }
        else if (!strcmp(a, "--seed") && !parse_long(v, 0, 2147483647L, &n)) { o.seed = (uint64_t)n; i++; }
        else if (!strcmp(a, "--layers") && !parse_long(v, 1, 32, &n)) { o.max_layers = (int)n; i++; }
        else if (!strcmp(a, "--head-dim") && !parse_long(v, 2, 256, &n) && n % 2 == 0) { o.head_dim = (int)n; i++; }
        else if (!strcmp(a, "--scale") && !parse_double(v, 1e-4, 1, &d)) { o.scale = d; i++; }
        else if (!strcmp(a, "--corpus")) { o.corpus = v; i++; }
        else if (!strcmp(a, "--state-dir")) { snprintf(state_dir, sizeof state_dir, "%s", v); i++; }
        else if (!strcmp(a, "--tokens") && !parse_long(v, 1, 1000000000L, &n)) { o.tokens = n; i++; }
        else if (!strcmp(a, "--flops") && !parse_double(v, 1, 1e18, &d)) { o.flops = d; i++; }
        else if (!strcmp(a, "--rungs") && !parse_long(v, 1, 8, &n)) { o.rungs = (int)n; i++; }
        else if (!strcmp(a, "--rung") && !parse_long(v, 0, 7, &n)) { o.rung = (int)n; i++; }
        else if (!strcmp(a, "--retries") && !parse_long(v, 0, 20, &n)) { o.retries = (int)n; i++; }
        else if (!strcmp(a, "--size-factor") && !parse_double(v, 0.001, 100, &d)) { o.size_factor = d; i++; }
        else if (!strcmp(a, "--timeout") && !parse_double(v, 0.001, 86400, &d)) { o.timeout_s = d; i++; }
        else if (a[0] == '-') {
            fprintf(stderr, "starhil score: bad option or value: %s %s (see --help)\n", a, v ? v : "");
            return 2;
        } else if (!genome_arg) genome_arg = a;
        else { fprintf(stderr, "starhil score: unexpected argument '%s'\n", a); return 2; }
    }
    if (!genome_arg) { score_usage(stderr); return 2; }
    sh_err err = {{0}};
    sh_genome g;
    if (sh_genome_resolve(genome_arg, &g, &err)) { fprintf(stderr, "starhil score: %s\n", err.msg); return 1; }
    if (o.rung >= sh_score_rungs(&o)) {
        fprintf(stderr, "starhil score: --rung %d out of range 0..%d (--rungs %d)\n", o.rung, sh_score_rungs(&o) - 1,
                sh_score_rungs(&o));
        return 2;
    }
    if (!no_state) {
        if (!state_dir[0]) {
            const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
            if (x && *x) snprintf(state_dir, sizeof state_dir, "%s/starhil/cap-state", x);
            else if (h && *h) snprintf(state_dir, sizeof state_dir, "%s/.cache/starhil/cap-state", h);
        }
        if (state_dir[0]) o.state_dir = state_dir;
    }
    sh_progress prog;
    sh_progress_init(&prog, quiet);
    o.progress = cli_progress;
    o.progress_ctx = &prog;
    sh_db *db;
    if (sh_db_open(sh_cli_db_path(), SH_DB_CREATE, &db, &err)) { fprintf(stderr, "starhil score: %s\n", err.msg); return 1; }
    /* cached? (find before compute so we can say so) */
    int cached = 0;
    if (!o.force) {
        char *params = sh_score_params_json(&g, scorer, &o, &err);
        if (!params) { fprintf(stderr, "starhil score: %s\n", err.msg); sh_db_close(db); return 2; }
        sh_score_rec prev;
        char name[sizeof prev.scorer];
        sh_score_scorer_name(scorer, name, sizeof name);
        const char *ver = sh_score_version(scorer);
        sh_err ferr = {{0}};
        if (sh_db_find_score(db, sh_genome_hash(&g), name, ver, params, &prev, &ferr) == 0) {
            cached = !strcmp(prev.status, "ok");
            sh_score_rec_free(&prev);
        }
        free(params);
    }
    sh_score_rec rec;
    int rc;
    if (ex.kind == SH_EXEC_SLURM) {
        o.progress = NULL;
        rc = sh_cluster_score_cli(db, &ex, &g, scorer, &o, &rec, &err);
    } else {
        rc = sh_score_genome(db, &g, scorer, &o, &rec, &err);
    }
    sh_progress_done(&prog);
    if (rc && !rec.status[0]) {
        fprintf(stderr, "starhil score: %s\n", err.msg);
        sh_db_close(db);
        return 1;
    }
    print_record(&rec, cached, as_json);
    if (rc) fprintf(stderr, "starhil score: %s\n", err.msg);
    sh_score_rec_free(&rec);
    sh_db_close(db);
    return rc ? 1 : 0;
}
