/* score_cli.c - `starhil score GENOME`: capability score of a genome with the
 * built-in synthetic-task suite or an external scorer, stored in the run
 * database (a stored answer is printed without recomputing); here or as Slurm
 * jobs (--executor), so the command lives in cluster/, above the scorer it
 * runs: cluster -> evaluator/capability, never the other way. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/clidb.h"
#include "cli/commands.h"
#include "cluster/cluster_cli.h"
#include "evaluator/capability/score.h"
#include "util/cliopt.h"
#include "util/opt.h"
#include "util/progress.h"

#define SCORE_MORE_USAGE "       starhil score --in-job SPEC.json --result RESULT.json   (inside a batch job)\n"

/* The description: the scorers; "%s" is the list of built-in tasks. */
static const char SCORE_ABOUT[] =
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
    "--in-job SPEC --result RESULT is what a batch job runs: score the spec file's\n"
    "genome and write RESULT (exit 0 ok, 3 the scorer rejects the genome or settings:\n"
    "not retried, else 1).\n";

static void cli_progress(void *ctx, const char *line)
{
    sh_progress *p = ctx;
    if (strstr(line, "bits/byte") || strstr(line, "accuracy")) sh_progress_event(p, "score %s", line);
    else sh_progress_update(p, "score %s", line);
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
    const char *genome_arg = NULL, *scorer = "builtin", *state_arg = NULL, *width = NULL, *in_job = NULL,
               *result = NULL;
    bool as_json = false, quiet = false, no_state = false;
    int seed = (int)o.seed;
    char state_dir[4096] = "";
    sh_exec_opts ex;
    sh_exec_opts_default(&ex);
    sh_exec_cli exc;
    memset(&exc, 0, sizeof exc);
    sh_opt t[40];
    const sh_opt own[] = {
        {"--scorer", NULL, SH_OPT_STR, &scorer, "NAME", "builtin (default), cmd:PROGRAM ARGS or an http(s) URL", 0, 0,
         NULL},
        {"--json", NULL, SH_OPT_FLAG, &as_json, NULL, "print the stored record as JSON", 0, 0, NULL},
        {"--threads", NULL, SH_OPT_INT, &o.threads, "N",
         "training threads (default: online CPUs, max 8; scores do\nnot depend on it)", 1, 64, NULL},
        {"--seed", NULL, SH_OPT_INT, &seed, "S", "task data and model initialisation seed (default 1)", 0, 2147483647,
         NULL},
        {"--tasks", NULL, SH_OPT_STR, &o.tasks, "a,b", "built-in tasks to run (default: lm)", 0, 0, NULL},
        {"--scale", NULL, SH_OPT_DOUBLE, &o.scale, "F",
         "proxy width factor (default 1/32 = 0.03125; LFM2-350M's\nhidden 1024 -> 32); head dim stays --head-dim", 1e-4,
         1, NULL},
        {"--layers", NULL, SH_OPT_INT, &o.max_layers, "N", "proxy depth cap (default 32; deeper genomes are squeezed)",
         1, 32, NULL},
        {"--head-dim", NULL, SH_OPT_INT, &o.head_dim, "N", "proxy head dim, even (default 32)", 2, 256, NULL},
        {"--corpus", NULL, SH_OPT_STR, &o.corpus, "PATH",
         "lm text: a file or a directory of text files (default\n/usr/share/games/fortunes, Debian package fortunes);\n"
         "the last 10% is held out", 0, 0, NULL},
        {"--tokens", NULL, SH_OPT_LONG, &o.tokens, "N",
         "lm training tokens at the top rung (default 327680; equal\nfor every genome)", 1, 1000000000, NULL},
        {"--flops", NULL, SH_OPT_DOUBLE, &o.flops, "F", "lm: equal training FLOPs instead of equal tokens", 1, 1e18,
         NULL},
        {"--rungs", NULL, SH_OPT_INT, &o.rungs, "N",
         "fidelity rungs (default 3): rung r trains 3^(r-N+1) of the\nbudget (1/9, 1/3, 1)", 1, 8, NULL},
        {"--rung", NULL, SH_OPT_INT, &o.rung, "R", "rung to score, 0..N-1 (default: the top rung)", 0, 7, NULL},
        {"--state-dir", NULL, SH_OPT_STR, &state_arg, "DIR",
         "where training states are kept so that a higher rung\ncontinues a lower one (default the cache's cap-state:\n"
         "$STARHIL_CACHE_DIR/cap-state, ~/.cache/starhil/cap-state;\nwith --executor slurm: DIR/cap-state of --results-dir)",
         0, 0, NULL},
        {"--no-state", NULL, SH_OPT_FLAG, &no_state, NULL, "keep no training states (every rung trains from scratch)", 0,
         0, NULL},
        {"--size-factor", NULL, SH_OPT_DOUBLE, &o.size_factor, "X", "scale synthetic train-set sizes (default 1)", 0.001,
         100, NULL},
        {"--force", NULL, SH_OPT_FLAG, &o.force, NULL, "recompute even if a stored score exists", 0, 0, NULL},
        {"--quiet", "-q", SH_OPT_FLAG, &quiet, NULL, "no progress lines on stderr", 0, 0, NULL},
        {"--timeout", NULL, SH_OPT_DOUBLE, &o.timeout_s, "S", "external scorer timeout per attempt (default 600)", 0.001,
         86400, NULL},
        {"--retries", NULL, SH_OPT_INT, &o.retries, "N", "http: retries on connection errors and 5xx (default 2)", 0, 20,
         NULL},
        {"--token-env", NULL, SH_OPT_STR, &o.token_env, "NAME",
         "http: send 'Authorization: Bearer $NAME' (never stored)", 0, 0, NULL},
        {"--insecure", NULL, SH_OPT_FLAG, &o.insecure, NULL, "http: do not verify TLS certificates", 0, 0, NULL},
        {"--in-job", NULL, SH_OPT_STR, &in_job, "SPEC", "batch job mode: score the spec file's genome (see above)", 0, 0,
         NULL},
        {"--result", NULL, SH_OPT_STR, &result, "RESULT", "batch job mode: where the result is written", 0, 0, NULL},
        /* replaced by --scale: named in the error so old scripts learn the new option */
        {"--width", NULL, SH_OPT_STR, &width, "N", NULL, 0, 0, NULL},
    };
    int n_own = (int)(sizeof own / sizeof own[0]);
    assert(n_own + SH_EXEC_CLI_N_OPTS <= (int)(sizeof t / sizeof t[0]));
    memcpy(t, own, sizeof own);
    sh_exec_cli_table(&exc, t + n_own);
    char about[sizeof SCORE_ABOUT + 256];
    snprintf(about, sizeof about, SCORE_ABOUT, sh_score_builtin_tasks());
    sh_cmd_spec spec = {"score", "GENOME", SCORE_MORE_USAGE, about, t, n_own + SH_EXEC_CLI_N_OPTS, 0, 1};
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    if (width) {
        fprintf(stderr, "starhil score: --width was replaced by --scale (proxy width = hidden x scale)\n");
        return 2;
    }
    if (in_job || result) {
        if (!in_job || !result || n_pos) {
            fprintf(stderr, "starhil score: --in-job needs --result and no GENOME (usage: starhil score --in-job "
                            "SPEC.json --result RESULT.json)\n");
            return 2;
        }
        return sh_cluster_in_job_cli(in_job, result);
    }
    if (n_pos < 1) {
        fprintf(stderr, "starhil score: missing GENOME (usage: starhil score GENOME; see starhil score --help)\n");
        return 2;
    }
    genome_arg = pos[0];
    if (o.head_dim % 2) {
        fprintf(stderr, "starhil score: --head-dim: expected an even number, got %d\n", o.head_dim);
        return 2;
    }
    o.seed = (uint64_t)seed;
    if (sh_exec_cli_apply(&exc, "score", &ex)) return 2;
    if (state_arg) snprintf(state_dir, sizeof state_dir, "%s", state_arg);
    sh_err err = {{0}};
    sh_genome g;
    if (sh_genome_resolve(genome_arg, &g, &err)) { fprintf(stderr, "starhil score: %s\n", err.msg); return 1; }
    if (o.rung >= sh_score_rungs(&o)) {
        fprintf(stderr, "starhil score: --rung %d out of range 0..%d (--rungs %d)\n", o.rung, sh_score_rungs(&o) - 1,
                sh_score_rungs(&o));
        return 2;
    }
    if (!no_state) {
        if (state_dir[0] && state_dir[0] != '/' && ex.kind == SH_EXEC_SLURM) {
            /* the job runs elsewhere: it gets the directory by its absolute path */
            char cwd[2048], abs_dir[sizeof state_dir];
            if (!getcwd(cwd, sizeof cwd) ||
                snprintf(abs_dir, sizeof abs_dir, "%s/%s", cwd, state_dir) >= (int)sizeof abs_dir) {
                fprintf(stderr, "starhil score: --state-dir %s: cannot make it an absolute path\n", state_dir);
                return 1;
            }
            snprintf(state_dir, sizeof state_dir, "%s", abs_dir);
        }
        if (!state_dir[0] && ex.kind == SH_EXEC_SLURM) {
            /* the job keeps its state where the next rung's job finds it */
            if (sh_exec_check(&ex, NULL, &err)) { fprintf(stderr, "starhil score: %s\n", err.msg); return 1; }
            snprintf(state_dir, sizeof state_dir, "%s/cap-state", ex.results_dir);
        }
        if (!state_dir[0]) {
            snprintf(state_dir, sizeof state_dir, "%s/cap-state", sh_cache_dir());
        }
        if (state_dir[0]) o.state_dir = state_dir;
    }
    sh_progress prog;
    sh_progress_init(&prog, quiet);
    o.progress = cli_progress;
    o.progress_ctx = &prog;
    sh_db *db;
    if (sh_cli_open_db("score", SH_DB_CREATE, &db)) return 1;
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
