/* clidb.c - opening the run database from a command (see clidb.h). */
#include "cli/clidb.h"

#include <stdio.h>

#include "util/cliopt.h"

int sh_cli_open_db(const char *cmd, int flags, sh_db **db)
{
    sh_err err = {{0}};
    *db = NULL;
    if (sh_db_open(sh_cli_db_path(), flags, db, &err) != 0) {
        fprintf(stderr, "starhil %s: %s\n", cmd, err.msg);
        return -1;
    }
    return 0;
}
