/* cliopt.c - shared CLI settings (see cliopt.h). */
#include "util/cliopt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#ifndef SH_SOURCE_ROOT
#define SH_SOURCE_ROOT "."
#endif
#ifndef SH_PREFIX
#define SH_PREFIX "/usr/local"
#endif

static const char *db_override;

const char *sh_cli_db_path(void)
{
    if (db_override) return db_override;
    const char *e = getenv("STARHIL_DB");
    return (e && *e) ? e : "starhil.db";
}

void sh_cli_set_db_path(const char *path) { db_override = path; }

bool sh_cli_is_tty(void) { return isatty(2) != 0; }

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *sh_runtime_dir(void)
{
    static char buf[4096];
    const char *e = getenv("STARHIL_RUNTIME_DIR");
    if (e && *e) return e;
    snprintf(buf, sizeof buf, "%s/share/starhil/runtime", SH_PREFIX);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        /* installed layout: PREFIX/bin/starhil -> PREFIX/share/starhil/runtime */
        char *slash = NULL;
        for (char *p = exe; *p; p++) if (*p == '/') slash = p;
        if (slash) {
            *slash = '\0';
            char cand[4096 + 64];
            snprintf(cand, sizeof cand, "%s/../share/starhil/runtime", exe);
            if (is_dir(cand) && strlen(cand) < sizeof buf) { memcpy(buf, cand, strlen(cand) + 1); return buf; }
        }
    }
    snprintf(buf, sizeof buf, "%s/evaluator/runtime", SH_SOURCE_ROOT);
    if (is_dir(buf)) return buf;
    snprintf(buf, sizeof buf, "%s/share/starhil/runtime", SH_PREFIX);
    return buf;
}

const char *sh_cache_dir(void)
{
    static char buf[4096];
    const char *e = getenv("STARHIL_CACHE_DIR");
    if (e && *e) return e;
    const char *x = getenv("XDG_CACHE_HOME");
    if (x && *x) snprintf(buf, sizeof buf, "%s/starhil", x);
    else snprintf(buf, sizeof buf, "%s/.cache/starhil", getenv("HOME") ? getenv("HOME") : "/tmp");
    return buf;
}
