/* progress.c - progress lines on a terminal or in a log (see progress.h). */
#include "util/progress.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void sh_progress_init(sh_progress *p, bool quiet)
{
    p->out = stderr;
    p->tty = isatty(2) != 0;
    p->quiet = quiet;
    p->line_open = false;
    p->interval_s = 5.0;
    const char *e = getenv("STARHIL_PROGRESS_INTERVAL");
    if (e && *e) {
        char *end;
        double v = strtod(e, &end);
        if (end != e && *end == '\0' && v >= 0 && v < 3600) p->interval_s = v;
    }
    p->start_s = now_s();
    p->last_s = -1e9;
}

static void emit(sh_progress *p, const char *fmt, va_list ap)
{
    if (p->tty) {
        fputs("\r\033[K", p->out);
        vfprintf(p->out, fmt, ap);
        p->line_open = true;
    } else {
        vfprintf(p->out, fmt, ap);
        fputc('\n', p->out);
    }
    fflush(p->out);
    p->last_s = now_s();
}

bool sh_progress_update(sh_progress *p, const char *fmt, ...)
{
    if (p->quiet) return false;
    double min_gap = p->tty ? 0.1 : p->interval_s;
    if (now_s() - p->last_s < min_gap) return false;
    va_list ap;
    va_start(ap, fmt);
    emit(p, fmt, ap);
    va_end(ap);
    return true;
}

void sh_progress_event(sh_progress *p, const char *fmt, ...)
{
    if (p->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    emit(p, fmt, ap);
    va_end(ap);
}

void sh_progress_done(sh_progress *p)
{
    if (p->line_open) {
        fputc('\n', p->out);
        fflush(p->out);
        p->line_open = false;
    }
}

double sh_progress_elapsed(const sh_progress *p) { return now_s() - p->start_s; }

void sh_format_duration(double s, char *buf, size_t cap)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, cap, "?");
    else if (s < 60)
        snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}
