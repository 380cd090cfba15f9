/* cluster_cli.c - the command-line ends of the Slurm executor: the hidden-but-
 * documented `starhil score --in-job SPEC --result RESULT` mode a batch job
 * runs, and `starhil score --executor slurm` (one job, a progress line with
 * its Slurm state, Ctrl-C cancels it); the executor options' table shared by
 * `score` and `search`. */
#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "cluster/cluster_cli.h"
#include "util/progress.h"

static const char *const EXEC_NAMES[SH_EXEC_CLI_N_OPTS - 1] = {
    "--executor", "--results-dir", "--partition", "--max-jobs", "--max-attempts", "--binary", "--poll-interval"};

void sh_exec_cli_table(sh_exec_cli *c, sh_opt *t)
{
    const sh_opt all[SH_EXEC_CLI_N_OPTS] = {
        {EXEC_NAMES[0], NULL, SH_OPT_STR, &c->val[0], "local|slurm",
         "where capability scores run: local (default) or slurm, one\nbatch job per score (docs/scale-out.md)", 0, 0,
         NULL},
        {EXEC_NAMES[1], NULL, SH_OPT_STR, &c->val[1], "DIR",
         "slurm: job specs and results, on storage the nodes share\n(the database never goes there)", 0, 0, NULL},
        {EXEC_NAMES[2], NULL, SH_OPT_STR, &c->val[2], "P", "slurm partition (default: the cluster's default)", 0, 0,
         NULL},
        {EXEC_NAMES[3], NULL, SH_OPT_STR, &c->val[3], "N", "scoring jobs in flight at once (default 4)", 0, 0, NULL},
        {EXEC_NAMES[4], NULL, SH_OPT_STR, &c->val[4], "N",
         "attempts per score before it is recorded as failed (default 3)", 0, 0, NULL},
        {EXEC_NAMES[5], NULL, SH_OPT_STR, &c->val[5], "PATH", "starhil on the nodes (default: this program)", 0, 0, NULL},
        {EXEC_NAMES[6], NULL, SH_OPT_STR, &c->val[6], "S", "seconds between squeue polls (default 2)", 0, 0, NULL},
        {"--sbatch-arg", NULL, SH_OPT_MULTI, &c->sbatch, "ARG",
         "passed to sbatch as given, repeatable\n(e.g. --sbatch-arg=--time=1:00:00)", 0, 0, NULL},
    };
    memcpy(t, all, sizeof all);
}

int sh_exec_cli_apply(const sh_exec_cli *c, const char *cmd, sh_exec_opts *o)
{
    sh_err err = {{0}};
    for (int k = 0; k < SH_EXEC_CLI_N_OPTS - 1; k++)
        if (c->val[k] && sh_exec_parse_arg(o, EXEC_NAMES[k], c->val[k], &err) < 0) {
            fprintf(stderr, "starhil %s: %s\n", cmd, err.msg);
            return 2;
        }
    for (int k = 0; k < c->sbatch.n; k++)
        if (sh_exec_parse_arg(o, "--sbatch-arg", c->sbatch.v[k], &err) < 0) {
            fprintf(stderr, "starhil %s: %s\n", cmd, err.msg);
            return 2;
        }
    return 0;
}

int sh_cluster_in_job_cli(const char *spec, const char *result)
{
    assert(spec && result);
    sh_err err = {{0}};
    int code = sh_job_run(spec, result, &err);
    if (code != SH_JOB_EXIT_OK) fprintf(stderr, "starhil score --in-job: %s\n", err.msg);
    else fprintf(stderr, "starhil score --in-job: wrote %s\n", result);
    return code;
}

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct one_ctx {
    sh_score_rec *out;
    bool done;
} one_ctx;

static void on_done(void *ctx, void *tag, const sh_score_rec *rec)
{
    (void)tag;
    one_ctx *c = ctx;
    *c->out = *rec;
    c->out->params_json = rec->params_json ? strdup(rec->params_json) : NULL;
    c->out->scores_json = rec->scores_json ? strdup(rec->scores_json) : NULL;
    c->out->error = rec->error ? strdup(rec->error) : NULL;
    c->done = true;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

int sh_cluster_score_cli(sh_db *db, const sh_exec_opts *ex, const sh_genome *g, const char *scorer,
                         const sh_score_opts *o, sh_score_rec *out, sh_err *err)
{
    memset(out, 0, sizeof *out);
    sh_cluster *c;
    if (sh_cluster_open(db, ex, 0, &c, err)) return -1;
    one_ctx oc = {out, false};
    int rc = sh_cluster_add(c, g, scorer, o, NULL, err);
    sh_progress p;
    sh_progress_init(&p, false);
    stop_requested = 0;
    void (*old_int)(int) = signal(SIGINT, on_stop);
    void (*old_term)(int) = signal(SIGTERM, on_stop);
    while (rc == 0) {
        int open = sh_cluster_step(c, on_done, &oc, err);
        if (open < 0) { rc = -1; break; }
        if (open == 0) break;
        if (stop_requested) {
            sh_progress_done(&p);
            fprintf(stderr, "starhil score: cancelling the slurm job\n");
            sh_cluster_cancel(c, err);
            rc = sh_err_set(err, "stopped: the slurm job was cancelled");
            break;
        }
        sh_cluster_counts k;
        sh_cluster_counts_get(c, &k);
        char el[32];
        sh_format_duration(sh_progress_elapsed(&p), el, sizeof el);
        sh_progress_update(&p, "score: slurm job %s  (attempts failed %d)  %s",
                           k.running ? "running" : (k.pending ? "pending" : "waiting"), k.resubmitted, el);
        sleep_s(sh_cluster_poll_interval(c));
    }
    signal(SIGINT, old_int);
    signal(SIGTERM, old_term);
    sh_progress_done(&p);
    sh_cluster_close(c);
    if (rc) return -1;
    if (!oc.done) return sh_err_set(err, "slurm executor: no result");
    if (strcmp(out->status, "ok")) return sh_err_set(err, "%s", out->error ? out->error : "failed");
    return 0;
}
