/* clidb.h - opening the run database from a command (*_cli.c): the path of
 * --db / $STARHIL_DB (util/cliopt.h), an error printed as "starhil CMD: ...".
 * One helper instead of a copy per command file. */
#ifndef SH_CLI_CLIDB_H
#define SH_CLI_CLIDB_H

#include "runs/runs.h"

/* sh_db_open(sh_cli_db_path(), flags, db): 0, or -1 after printing the error. */
int sh_cli_open_db(const char *cmd, int flags, sh_db **db);

#endif
