/* cluster_cli.h - command-line ends of the Slurm executor, called by
 * evaluator/capability/score_cli.c (`starhil score`). */
#ifndef SH_CLUSTER_CLI_H
#define SH_CLUSTER_CLI_H

#include "cluster/cluster.h"

/* `starhil score --in-job SPEC --result RESULT`: the process exit code. */
int sh_cluster_in_job_cli(int argc, char **argv);
/* One score as one Slurm job, with a progress line; Ctrl-C cancels the job.
 * 0 with *out (status ok), or -1 with err (*out may hold the failed record). */
int sh_cluster_score_cli(sh_db *db, const sh_exec_opts *ex, const sh_genome *g, const char *scorer,
                         const sh_score_opts *o, sh_score_rec *out, sh_err *err);

#endif
