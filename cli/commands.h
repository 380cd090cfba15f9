/* commands.h - the `starhil` subcommands.  Each is implemented by the module
 * that owns it (file named in the comment) and follows the same contract:
 * argv[0] is the subcommand name, `--help` prints usage and returns 0, errors are
 * printed to stderr as "starhil CMD: message" and return non-zero (2 for usage
 * errors, 1 for failures). */
#ifndef SH_CLI_COMMANDS_H
#define SH_CLI_COMMANDS_H

#include <stdint.h>

int sh_cmd_genome(int argc, char **argv);   /* genome/genome_cli.c    */
int sh_cmd_runs(int argc, char **argv);     /* runs/runs_cli.c        */
int sh_cmd_build(int argc, char **argv);    /* evaluator/build_cli.c  */
int sh_cmd_score(int argc, char **argv);    /* cluster/score_cli.c (runs here or as Slurm jobs) */
int sh_cmd_device(int argc, char **argv);   /* measure/device_cli.c   */
int sh_cmd_measure(int argc, char **argv);  /* measure/device_cli.c   */
int sh_cmd_profile(int argc, char **argv);  /* measure/device_cli.c   */
/* `search` and `search resume` (search/search_cli.c): *finished is the id of
 * a run that finished in this call and printed its front (else 0); cli/main.c
 * then composes "search, then report": sh_report_run_end (reports/report_cli.c)
 * writes the run's HTML report, so the search module does not call reports/. */
int sh_cmd_search_run(int argc, char **argv, int64_t *finished);
void sh_report_run_end(int64_t run_id);
int sh_cmd_front(int argc, char **argv);    /* search/search_cli.c    */
int sh_cmd_report(int argc, char **argv);   /* reports/report_cli.c   */
int sh_cmd_export(int argc, char **argv);   /* reports/report_cli.c   */
int sh_cmd_compare(int argc, char **argv);  /* measure/compare_cli.c  */
/* `starhil genome import CONFIG.json|FILE.gguf`: the format converters are
 * reports/'s, so cli/main.c routes it to reports/import_cli.c (the genome
 * module does not call reports/); argv[0] is "import". */
int sh_cmd_genome_import(int argc, char **argv);

#endif
