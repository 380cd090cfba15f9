/* err.h - the error record every library function in starhil fills on failure.
 *
 * Convention: functions return 0 on success and -1 (or another negative code) on
 * failure, after writing a one-line message that names the place and the problem
 * into a caller-provided sh_err.  Library code never prints and never exits. */
#ifndef SH_UTIL_ERR_H
#define SH_UTIL_ERR_H

#include <stddef.h>

#define SH_ERR_MAX 1024

typedef struct sh_err {
    char msg[SH_ERR_MAX];
} sh_err;

/* Set the message (printf-style). Safe with err == NULL. Returns -1 so that
 * `return sh_err_set(err, "...")` reads naturally. */
int sh_err_set(sh_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepend context: "context: previous message". Returns -1. */
int sh_err_prefix(sh_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void sh_err_clear(sh_err *err);

#endif
