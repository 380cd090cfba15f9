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

static void score_usage(FILE *f)
{
    fprintf(f,
        "usage: starhil score GENOME [--scorer NAME] [--json] [--threads N] [--seed S]\n"
        "                     [--tasks a,b] [--force] [--width N] [--layers N] [--head-dim N]\n"
        "                     [--size-factor X] [--timeout S] [--retries N]\n"
        "                     [--token-env NAME] [--insecure] [--executor local|slurm ...]\n"
        "       starhil score --in-job SPEC.json --result RESULT.json   (inside a batch job)\n\n"
        "Capability score of GENOME (a preset name, a genome file, or canonical text).\n"
        "The answer is stored in the run database (--db) keyed by genome, scorer,\n"
        "scorer version and parameters; asking again prints the stored answer.\n\n"
        "scorers (--scorer):\n"
        "  builtin            (default) trains a scaled-down model of the genome on\n"
        "                     synthetic tasks and reports test accuracy per task:\n"
        "                     %s\n"
        "  cmd:PROGRAM ARGS   runs PROGRAM (no shell) with the genome JSON on stdin;\n"
        "                     it prints a JSON object of numeric scores (optional\n"
        "                     \"aggregate\", else the mean is used)\n"
        "  http(s)://URL      POSTs the genome JSON, reads the same JSON object back\n\n"
        "options:\n"
        "  --json             print the stored record as JSON\n"
        "  --threads N        training threads (default: online CPUs, max 8; scores do\n"
        "                     not depend on it)\n"
        "  --seed S           task data and model initialisation seed (default 1)\n"
        "  --tasks a,b        built-in tasks to run (default: all)\n"
        "  --force            recompute even if a stored score exists\n"
        "  --width N          trained model width (default 64)\n"
        "  --layers N         trained model depth cap (default 4)\n"
        "  --head-dim N       trained model head dim (default 32)\n"
        "  --size-factor X    scale training-set sizes (default 1; smaller is faster)\n"
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
    (void)ctx;
    fprintf(stderr, "\r\033[Kscore %s", line);
    fflush(stderr);
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
    int as_json = 0;
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
        else if (a[0] == '-' && a[1] == '-' && !v) {
            fprintf(stderr, "starhil score: %s needs a value (or is unknown; see --help)\n", a);
            return 2;
        }
        else if (!strcmp(a, "--scorer")) { scorer = v; i++; }
        else if (!strcmp(a, "--tasks")) { o.tasks = v; i++; }
        else if (!strcmp(a, "--token-env")) { o.token_env = v; i++; }
        else if (!strcmp(a, "--threads") && !parse_long(v, 1, 64, &n)) { o.threads = (int)n; i++; }
        else if (!strcmp(a, "--seed") && !parse_long(v, 0, 2147483647L, &n)) { o.seed = (uint64_t)n; i++; }
        else if (!strcmp(a, "--width") && !parse_long(v, 8, 1024, &n)) { o.width = (int)n; i++; }
        else if (!strcmp(a, "--layers") && !parse_long(v, 1, 16, &n)) { o.max_layers = (int)n; i++; }
        else if (!strcmp(a, "--head-dim") && !parse_long(v, 2, 1024, &n)) { o.head_dim = (int)n; i++; }
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
    if (sh_cli_is_tty()) o.progress = cli_progress;
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
    if (o.progress) fprintf(stderr, "\r\033[K");
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
