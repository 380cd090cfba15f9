/* progress.h - one progress line for long commands, wherever stderr goes.
 *
 * On a terminal the line is redrawn in place ("\r\033[K...") at most every
 * 0.1 s.  On anything else (a file, a pipe, nohup, CI) a plain line ending in
 * '\n' is written at most every `interval_s` seconds (default 5), so logs show
 * the same facts (what, how far, ETA) without flooding.  `quiet` silences it.
 * This is CLI-side code: library modules report progress through callbacks
 * and the *_cli.c files feed those into an sh_progress. */
#ifndef SH_UTIL_PROGRESS_H
#define SH_UTIL_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

typedef struct sh_progress {
    FILE *out;            /* stderr unless set                         */
    bool tty;             /* redraw in place                           */
    bool quiet;           /* print nothing                             */
    bool line_open;       /* a tty line is drawn and not yet ended     */
    double interval_s;    /* non-tty: minimum seconds between lines    */
    double last_s;        /* monotonic time of the last line written   */
    double start_s;       /* monotonic time of sh_progress_init         */
} sh_progress;

/* Set up for stderr; `quiet` from --quiet. Non-tty interval: $STARHIL_PROGRESS_INTERVAL
 * seconds if set (tests use it), else 5. */
void sh_progress_init(sh_progress *p, bool quiet);

/* Report the current state (printf-style, no newline).  Rate-limited as above;
 * returns true if something was written. */
bool sh_progress_update(sh_progress *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like update, but always written (a milestone: generation end, task end). */
void sh_progress_event(sh_progress *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* End an open tty line (before printing anything else to stderr / stdout). */
void sh_progress_done(sh_progress *p);

/* Seconds since sh_progress_init. */
double sh_progress_elapsed(const sh_progress *p);

/* "42s", "3m07s", "1h05m", or "?" for a negative / non-finite value. */
void sh_format_duration(double seconds, char *buf, size_t cap);

#endif
