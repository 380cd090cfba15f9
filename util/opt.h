/* opt.h - one option table per command: parsing, bounded numbers, errors that
 * name the option, and the help text, all from the same table.
 *
 * A command describes itself once (sh_cmd_spec: name, positional synopsis,
 * description, options); sh_opt_parse reads argv against it and
 * sh_opt_usage prints "usage: starhil CMD [--opt VALUE]..." generated from
 * the same table, then the description and the option list.  So the usage
 * line can never omit an option the list shows.  Messages:
 *   "starhil search: --budget needs a value"
 *   "starhil search: unknown option --foo (see starhil search --help)"
 *   "starhil search: --budget: expected an integer from 1 to 100000000, got \"x\""
 * This is CLI code (it prints to stderr); library modules do not use it. */
#ifndef SH_UTIL_OPT_H
#define SH_UTIL_OPT_H

#include <stdbool.h>
#include <stdio.h>

typedef enum sh_opt_kind {
    SH_OPT_FLAG,     /* bool *dest = true                                   */
    SH_OPT_STR,      /* const char **dest = the value                       */
    SH_OPT_LONG,     /* long *dest, within [lo, hi]                         */
    SH_OPT_INT,      /* int *dest, within [lo, hi]                          */
    SH_OPT_DOUBLE,   /* double *dest, within [lo, hi] (and finite)          */
} sh_opt_kind;

typedef struct sh_opt {
    const char *name;     /* "--budget"                                       */
    const char *alias;    /* "-q", or NULL                                    */
    sh_opt_kind kind;
    void *dest;
    const char *metavar;  /* "N" (ignored for flags)                          */
    const char *help;     /* text for the option list; '\n' continues it; NULL
                             hides the option from the help (test hooks)      */
    double lo, hi;        /* bounds of numbers (both 0: no bound)             */
    bool *given;          /* set when the option appears, or NULL             */
} sh_opt;

typedef struct sh_cmd_spec {
    const char *name;     /* "search", "genome show"                          */
    const char *args;     /* positional synopsis after the options, or NULL   */
    const char *more_usage; /* further usage lines ("starhil search resume RUN"), or NULL */
    const char *about;    /* description paragraph(s), or NULL                */
    const sh_opt *opts;
    int n_opts;
    int min_pos, max_pos; /* positional argument count bounds (max -1: any)   */
} sh_cmd_spec;

/* Parses argv[1..argc-1] ("--opt VALUE", "--opt=VALUE", flags, positionals;
 * "--" ends options).  Positionals go to pos[0..*n_pos).  Returns 0, 1 after
 * printing the help for --help/-h, or 2 after printing a usage error. */
int sh_opt_parse(const sh_cmd_spec *spec, int argc, char **argv, const char **pos, int *n_pos);

/* The help: generated usage line(s), description, option list. */
void sh_opt_usage(const sh_cmd_spec *spec, FILE *f);

#endif
