/* cluster.h - capability scoring as batch jobs on a cluster engine (Slurm).
 *
 * What runs where.  The coordinator (`starhil score` or `starhil search` with
 * --executor slurm) keeps the run database (SQLite, local disk only) and, per
 * score, writes a spec file into the shared results directory, submits one
 * batch job with `sbatch --parsable` (argv, never a shell) and follows it with
 * `squeue --json --states=all` (falling back to `sacct --parsable2 --noheader`
 * for jobs the controller has forgotten).  The job runs, on a node,
 *     starhil score --in-job SPEC.json --result RESULT.json
 * (the installed binary, or --binary), which trains/scores exactly as the
 * local executor would (the built-in trainer or the user's cmd:/http scorer)
 * and writes the result JSON atomically (temp file + rename).  The coordinator
 * reads it and stores it with the run store's own functions; the store also
 * holds every attempt (score_jobs: job id, Slurm state, exit code, reason), so
 * a coordinator killed with -9 re-attaches on `search resume` to the jobs still
 * queued or running and ingests those that finished meanwhile.
 *
 * Faults: a job that ends FAILED, CANCELLED (not by us), TIMEOUT, PREEMPTED,
 * NODE_FAIL, OUT_OF_MEMORY... or COMPLETED without a readable result file is
 * resubmitted up to max_attempts in all, each reason recorded; then the score
 * is stored as failed (so the candidate stays out of the front).  A
 * deterministic failure (the scorer rejects the genome or its settings: the
 * in-job mode exits SH_JOB_EXIT_DETERMINISTIC) is not retried. */
#ifndef SH_CLUSTER_H
#define SH_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "evaluator/capability/score.h"
#include "genome/genome.h"
#include "runs/runs.h"
#include "util/err.h"

/* Exit codes of `starhil score --in-job`. */
#define SH_JOB_EXIT_OK 0
#define SH_JOB_EXIT_TRANSIENT 1        /* I/O, external scorer failure: worth another attempt */
#define SH_JOB_EXIT_DETERMINISTIC 3    /* the scorer rejects this genome/setting: never retried */

#define SH_EXEC_MAX_SBATCH_ARGS 16

typedef enum sh_exec_kind { SH_EXEC_LOCAL = 0, SH_EXEC_SLURM = 1 } sh_exec_kind;

typedef struct sh_exec_opts {
    sh_exec_kind kind;
    char partition[128];        /* "" = the cluster's default partition      */
    int max_jobs;               /* jobs in flight at once (default 4)        */
    int max_attempts;           /* attempts per score in all (default 3)     */
    char sbatch_args[SH_EXEC_MAX_SBATCH_ARGS][256];  /* passed to sbatch as given */
    int n_sbatch_args;
    char results_dir[1024];     /* absolute; shared by coordinator and nodes */
    char binary[1024];          /* starhil on the nodes; "" = this program   */
    double poll_s;              /* seconds between squeue polls (default 2)  */
} sh_exec_opts;

void sh_exec_opts_default(sh_exec_opts *o);
/* One command-line option: returns 1 if opt is an executor option (its value
 * val consumed), 0 if it is not one, -1 with a message on a bad value. */
int sh_exec_parse_arg(sh_exec_opts *o, const char *opt, const char *val, sh_err *err);
/* Checks the settings (slurm needs --results-dir; the directory is created
 * and made absolute) and that the database is not inside the results
 * directory (SQLite must stay off shared file systems). */
int sh_exec_check(sh_exec_opts *o, const char *db_path, sh_err *err);
/* The settings as JSON (for a search run's stored configuration) and back. */
char *sh_exec_opts_to_json(const sh_exec_opts *o);
int sh_exec_opts_from_json(const char *json, sh_exec_opts *o, sh_err *err);

/* ---- the job side ------------------------------------------------------------ */
/* Score options <-> JSON (the spec file carries them; the in-job side
 * recomputes sh_score_params_json from them and refuses a mismatch). */
char *sh_score_opts_json(const sh_score_opts *o);
int sh_score_opts_from_json(const char *json, sh_score_opts *o, char **strings_out, sh_err *err);
/* Writes a spec file (atomically). */
int sh_job_spec_write(const char *path, const sh_genome *g, const char *scorer_spec, const sh_score_opts *o,
                      const char *params_json, sh_err *err);
/* `starhil score --in-job SPEC --result RESULT`: reads the spec, scores, writes
 * the result file; returns an SH_JOB_EXIT_* code (message in err when not 0). */
int sh_job_run(const char *spec_path, const char *result_path, sh_err *err);

/* A result file read back: 0 with *out filled (status ok or failed,
 * *deterministic set), -1 with a message naming the path when it is missing,
 * truncated, not JSON, or for another question than expected. */
int sh_job_result_read(const char *path, sh_hash genome, const char *scorer, const char *version,
                       const char *params_json, sh_score_rec *out, bool *deterministic, sh_err *err);

/* ---- the coordinator side --------------------------------------------------- */
typedef struct sh_cluster sh_cluster;

typedef struct sh_cluster_counts {
    int waiting;        /* not submitted yet (max_jobs reached)  */
    int pending;        /* queued in the cluster                 */
    int running;
    int done;           /* results ingested (or found stored)    */
    int failed;         /* given up                              */
    int resubmitted;    /* attempts that failed and were retried */
} sh_cluster_counts;

/* Called once per added score when it is final: rec->status "ok" or
 * "failed" (error then says why). */
typedef void (*sh_cluster_done_fn)(void *ctx, void *tag, const sh_score_rec *rec);

/* db is used from the calling thread only. run_id 0 = no run. */
int sh_cluster_open(sh_db *db, const sh_exec_opts *o, int64_t run_id, sh_cluster **out, sh_err *err);
/* Queues the score of g: answered from the store if already scored, attached
 * to a job of the same question still queued or running (e.g. after a
 * coordinator crash), else submitted when a slot is free. */
int sh_cluster_add(sh_cluster *c, const sh_genome *g, const char *scorer_spec, const sh_score_opts *so, void *tag,
                   sh_err *err);
/* One round: submit what fits, ask the scheduler, ingest finished jobs,
 * resubmit failed ones, call fn for each score that became final.  Returns the
 * number of scores still open (0: all final), -1 on an error that stops the
 * executor (the scheduler's commands cannot be run, the store fails). */
int sh_cluster_step(sh_cluster *c, sh_cluster_done_fn fn, void *ctx, sh_err *err);
/* scancel every job in flight; their attempts are recorded cancelled. */
int sh_cluster_cancel(sh_cluster *c, sh_err *err);
void sh_cluster_counts_get(const sh_cluster *c, sh_cluster_counts *out);
double sh_cluster_poll_interval(const sh_cluster *c);
void sh_cluster_close(sh_cluster *c);

#endif
