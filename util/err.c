/* err.c - formatting helpers for sh_err (see err.h). */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sh_err_set(sh_err *err, const char *fmt, ...)
{
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int sh_err_prefix(sh_err *err, const char *fmt, ...)
{
    if (!err) return -1;
    char prefix[SH_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[SH_ERR_MAX];
    memcpy(old, err->msg, sizeof old);
    /* assemble by hand: the result is deliberately cut at SH_ERR_MAX - 1 */
    size_t n = strnlen(prefix, SH_ERR_MAX - 1);
    memcpy(err->msg, prefix, n);
    if (n + 2 < SH_ERR_MAX) { memcpy(err->msg + n, ": ", 2); n += 2; }
    size_t m = strnlen(old, SH_ERR_MAX - 1);
    if (m > SH_ERR_MAX - 1 - n) m = SH_ERR_MAX - 1 - n;
    memcpy(err->msg + n, old, m);
    err->msg[n + m] = '\0';
    return -1;
}

void sh_err_clear(sh_err *err)
{
    if (err) err->msg[0] = '\0';
}
