/* cliopt.h - options shared by every subcommand: the run database path
 * (--db, $STARHIL_DB, default ./starhil.db), whether stdout is a terminal, and
 * the location of the runtime sources that variants are compiled from. */
#ifndef SH_UTIL_CLIOPT_H
#define SH_UTIL_CLIOPT_H

#include <stdbool.h>

const char *sh_cli_db_path(void);
void sh_cli_set_db_path(const char *path);
bool sh_cli_is_tty(void);           /* stderr is a terminal: show progress lines */
/* Directory holding evaluator/runtime sources: $STARHIL_RUNTIME_DIR, the
 * installed PREFIX/share/starhil/runtime, or the source tree. */
const char *sh_runtime_dir(void);
/* Directory for the build cache: $STARHIL_CACHE_DIR or ~/.cache/starhil. */
const char *sh_cache_dir(void);

#endif
