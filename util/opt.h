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
    SH_OPT_MULTI,    /* sh_opt_multi *dest: every value in order (repeatable) */
} sh_opt_kind;

/* The values of a repeatable option (SH_OPT_MULTI), in the order given. */
#define SH_OPT_MULTI_MAX 16
typedef struct sh_opt_multi {
    const char *v[SH_OPT_MULTI_MAX];
    int n;
} sh_opt_multi;

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

/* A command made of subcommands ("starhil genome list"), each with its own
 * table and --help.  The group's help has the same layout: a usage line, the
 * description, then "subcommands:" (name, arguments, one-line summary). */
typedef struct sh_subcmd {
    const char *name;     /* "add"                                            */
    const char *args;     /* positional synopsis ("NAME"), or NULL            */
    const char *summary;  /* one line                                         */
} sh_subcmd;

typedef struct sh_group_spec {
    const char *name;     /* "device"                                         */
    const char *about;    /* description, or NULL                             */
    const sh_subcmd *subs;
    int n_subs;
} sh_group_spec;

void sh_opt_group_usage(const sh_group_spec *g, FILE *f);
/* Picks the subcommand named by argv[1]: its index in g->subs, or -1 with
 * *rc = 0 after printing the help (--help, -h, help) or *rc = 2 after
 * printing a usage error (none given, or an unknown name, which it names). */
int sh_opt_group_pick(const sh_group_spec *g, int argc, char **argv, int *rc);

#endif
