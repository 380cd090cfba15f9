/* cluster_cli.c - the command-line ends of the Slurm executor: the hidden-but-
 * documented `starhil score --in-job SPEC --result RESULT` mode a batch job
 * runs, and `starhil score --executor slurm` (one job, a progress line with
 * its Slurm state, Ctrl-C cancels it). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "cluster/cluster_cli.h"
#include "util/progress.h"

int sh_cluster_in_job_cli(int argc, char **argv)
{
    const char *spec = NULL, *result = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--in-job") && i + 1 < argc) spec = argv[++i];
        else if (!strcmp(argv[i], "--result") && i + 1 < argc) result = argv[++i];
        else {
            fprintf(stderr, "starhil score --in-job: unexpected argument '%s' (usage: starhil score --in-job SPEC.json "
                            "--result RESULT.json)\n", argv[i]);
            return 2;
        }
    }
    if (!spec || !result) {
        fprintf(stderr, "starhil score --in-job: needs SPEC.json and --result RESULT.json\n");
        return 2;
    }
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
