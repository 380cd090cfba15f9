/* score_ext.h - external scorers (internal to the capability module): a local
 * program given the genome JSON on stdin, or an HTTP(S) endpoint the genome
 * JSON is POSTed to.  Both reply with a JSON object of numeric scores. */
#ifndef SH_CAP_SCORE_EXT_H
#define SH_CAP_SCORE_EXT_H

#include "evaluator/capability/score.h"

/* cmd = "PROGRAM ARGS" (without the "cmd:" prefix). */
int sh_score_run_cmd(const sh_genome *g, const char *cmd, const sh_score_opts *o,
                     char **scores_json, double *aggregate, sh_err *err);
int sh_score_run_http(const sh_genome *g, const char *url, const sh_score_opts *o,
                      char **scores_json, double *aggregate, sh_err *err);

#endif
