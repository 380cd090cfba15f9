/* proc.h - run a local program (argv, never a shell) with a timeout, optional
 * stdin, and bounded capture of stdout/stderr.  Used by the local device, the
 * compiler driver and the command scorer. */
#ifndef SH_UTIL_PROC_H
#define SH_UTIL_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "util/err.h"

typedef struct sh_proc_result {
    int exited;          /* 1 if the program exited normally          */
    int exit_code;       /* exit status when exited                   */
    int signal;          /* terminating signal, 0 if none             */
    int timed_out;       /* 1 if killed because of the timeout        */
    char *out;           /* captured stdout (NUL-terminated, malloc'd) */
    size_t out_len;
    char *err;           /* captured stderr                           */
    size_t err_len;
    int out_truncated;   /* output exceeded the cap; the tail was dropped */
    int err_truncated;   /* stderr exceeded the cap; we keep its tail  */
    double seconds;      /* wall time                                 */
    long max_rss_kb;     /* peak RSS of the child (getrusage)         */
} sh_proc_result;

typedef struct sh_proc_opts {
    double timeout_s;          /* <= 0: no timeout                         */
    const char *stdin_data;    /* NULL: /dev/null                          */
    size_t stdin_len;
    size_t max_out;            /* cap on stdout kept (default 16 MiB)      */
    size_t max_err;            /* cap on stderr kept, tail (default 64 KiB) */
    const char *cwd;           /* NULL: inherit                            */
    char *const *envp;         /* NULL: inherit                            */
} sh_proc_opts;

/* Runs argv[0] (looked up in PATH) with argv.  Returns 0 if the program could
 * be started and waited for (whatever its exit status), -1 otherwise. */
int sh_proc_run(char *const argv[], const sh_proc_opts *opts, sh_proc_result *res, sh_err *err);
void sh_proc_result_free(sh_proc_result *res);

/* "exit 3", "signal 11 (SIGSEGV)", "timed out after 5.0 s" */
void sh_proc_describe(const sh_proc_result *res, char *buf, size_t cap);

#endif
