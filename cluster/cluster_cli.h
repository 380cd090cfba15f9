/* cluster_cli.h - command-line ends of the Slurm executor, called by
 * cluster/score_cli.c (`starhil score`) and
 * search/search_cli.c (the executor options). */
#ifndef SH_CLUSTER_CLI_H
#define SH_CLUSTER_CLI_H

#include "cluster/cluster.h"
#include "util/opt.h"

/* The executor options of a command line (`score`, `search`): one table
 * (util/opt.h) shared by both commands, the values checked afterwards by
 * sh_exec_parse_arg. */
#define SH_EXEC_CLI_N_OPTS 8
typedef struct sh_exec_cli {
    const char *val[SH_EXEC_CLI_N_OPTS - 1];   /* --executor ... --poll-interval, NULL: not given */
    sh_opt_multi sbatch;                       /* --sbatch-arg, repeatable                        */
} sh_exec_cli;
/* Writes the executor options' entries, bound to *c, into t[0..SH_EXEC_CLI_N_OPTS). */
void sh_exec_cli_table(sh_exec_cli *c, sh_opt *t);
/* Applies the parsed values to *o: 0, or 2 after printing "starhil CMD: --opt: problem". */
int sh_exec_cli_apply(const sh_exec_cli *c, const char *cmd, sh_exec_opts *o);

/* `starhil score --in-job SPEC --result RESULT`: the process exit code. */
int sh_cluster_in_job_cli(const char *spec, const char *result);
/* One score as one Slurm job, with a progress line; Ctrl-C cancels the job.
 * 0 with *out (status ok), or -1 with err (*out may hold the failed record). */
int sh_cluster_score_cli(sh_db *db, const sh_exec_opts *ex, const sh_genome *g, const char *scorer,
                         const sh_score_opts *o, sh_score_rec *out, sh_err *err);

#endif
