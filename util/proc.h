/* proc.h - run a local program (argv, never a shell) with a timeout, optional
 * stdin, and bounded capture of stdout/stderr.  Used by the local device, the
 * compiler driver and the command scorer.
 *
 * Nothing outlives the caller: the program runs in its own process group under
 * a small supervisor process, which kills that whole group (the program and
 * whatever it started: cc1, as, ld...) when the program ends, when the timeout
 * hits, and when the calling process dies, even by SIGKILL (the supervisor
 * gets a parent-death signal).  It then removes the paths in
 * `remove_on_death`.  The group is separate from the caller's, so a Ctrl-C at
 * the terminal reaches only the caller, which decides what to do. */
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
    /* Removed (a file, or a directory with its contents) by the
     * supervisor if the caller dies or the timeout hits while the program
     * runs: the program's temporary outputs.  NULL-terminated, or NULL. */
    const char *const *remove_on_death;
} sh_proc_opts;

/* Runs argv[0] (looked up in PATH) with argv.  Returns 0 if the program could
 * be started and waited for (whatever its exit status), -1 otherwise.  A
 * program that cannot be executed exits 126 (permission, e.g. a noexec mount)
 * or 127 (not found), as in a shell. */
int sh_proc_run(char *const argv[], const sh_proc_opts *opts, sh_proc_result *res, sh_err *err);
void sh_proc_result_free(sh_proc_result *res);

/* "exit 3", "signal 11 (SIGSEGV)", "timed out after 5.0 s" */
void sh_proc_describe(const sh_proc_result *res, char *buf, size_t cap);

/* Removes path: a file, or a directory with everything in it (symbolic links
 * are removed, not followed; at most 16 levels deep).  Async-signal-safe (no
 * allocation), so it can run in a forked child.  Returns 0 if path is gone. */
int sh_proc_remove_tree(const char *path);

/* A guard: a tiny process that removes `path` (sh_proc_remove_tree) as soon
 * as the caller ends, whichever way, including SIGKILL: it waits for the end
 * of a pipe only the caller can write to, which the kernel closes when the
 * caller dies.  For temporary directories that live longer than one program
 * (a device's working directory).  sh_proc_guard_end removes path and waits
 * for the guard. */
typedef struct sh_proc_guard { int fd; pid_t pid; } sh_proc_guard;
int sh_proc_guard_start(const char *path, sh_proc_guard *g, sh_err *err);
void sh_proc_guard_end(sh_proc_guard *g);

/* Process-id part of a temporary name "<anything>.<pid>.<n>" or
 * "<anything>.<pid>.<random>": true if that process no longer exists on this
 * host (kill(pid, 0) fails with ESRCH), i.e. the name is a leftover of a
 * crashed or killed run and may be swept. */
int sh_proc_pid_dead(long pid);

#endif
