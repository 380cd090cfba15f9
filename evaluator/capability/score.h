/* score.h - capability scores of a genome: the built-in synthetic-task suite
 * (a scaled-down model of the genome trained on each task), or an external
 * scorer (`cmd:PROGRAM ARGS` or an http(s) URL).  Results are stored in the run
 * database keyed by (genome hash, scorer, version, parameters JSON), so the
 * same question is never computed twice.
 *
 * Thread-safe: no globals; several threads may score different genomes at
 * once, each with its own sh_db handle on the same file (tested).  Whether one
 * handle may be shared between threads is up to runs/ (SQLite serialises
 * access when built thread-safe). */
#ifndef SH_CAPABILITY_SCORE_H
#define SH_CAPABILITY_SCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "genome/genome.h"
#include "runs/runs.h"
#include "util/err.h"

/* Bump whenever task generators, the trainer or the mapping change meaning. */
#define SH_SCORER_BUILTIN_VERSION "builtin-4"
/* Version recorded for external scorers (their own semantics are theirs). */
#define SH_SCORER_EXTERNAL_VERSION "external-1"
/* External scorer replies larger than this are rejected. */
#define SH_SCORER_MAX_REPLY (1024 * 1024)

typedef void (*sh_score_progress_fn)(void *ctx, const char *line);

typedef struct sh_score_opts {
    int threads;            /* training threads (>= 1; results do not depend on it) */
    uint64_t seed;          /* task data and model init                        */
    const char *tasks;      /* comma list of built-in tasks, NULL = default suite (lm) */
    /* proxy scale of the built-in trainer (0 = default) */
    double scale;           /* width factor, default 1/32 (see docs/quality-signal.md) */
    int max_layers;         /* depth cap, default 32 */
    int head_dim;           /* proxy head dim, default 32 */
    int max_experts;        /* default 64 */
    double size_factor;     /* multiplies the synthetic tasks' train-set sizes (default 1) */
    /* language modelling (task "lm") */
    const char *corpus;     /* text file or directory, NULL = the default corpus */
    long tokens;            /* training tokens at the top rung (0 = default 327680) */
    double flops;           /* > 0: equal-FLOPs budget instead: training FLOPs at the top rung */
    /* multi-fidelity: rung r of R trains fraction eta^(r-R+1) of the budget (eta 3) */
    int rungs;              /* 0 = 3 */
    int rung;               /* -1 = the top rung (the whole budget); else 0..rungs-1 */
    const char *state_dir;  /* where training states are kept so that a higher
                               rung continues a lower one (NULL = not kept) */
    /* external scorers */
    double timeout_s;       /* per attempt (default 600 s)                      */
    int retries;            /* http: extra attempts on connection errors / 5xx (default 2) */
    double backoff_s;       /* http: first retry delay, doubled each time (default 0.5) */
    const char *token_env;  /* http: env var holding a bearer token (never stored) */
    bool insecure;          /* http: disable TLS certificate verification       */
    bool force;             /* recompute even if a stored score exists          */
    sh_score_progress_fn progress;  /* optional progress lines                  */
    void *progress_ctx;
    char *owned_tasks, *owned_corpus;  /* set by sh_score_opts_from_params_json */
} sh_score_opts;

void sh_score_opts_default(sh_score_opts *o);

/* Number of rungs and the rung a set of options asks for (top if rung < 0). */
int sh_score_rungs(const sh_score_opts *o);
int sh_score_rung(const sh_score_opts *o);
/* Share of the full budget rung r of R trains: 3^(r-R+1). */
double sh_score_rung_fraction(int rung, int rungs);
#define SH_SCORE_DEFAULT_SCALE 0.03125

/* Reads the built-in scorer options back from a parameters JSON written by
 * sh_score_params_json (e.g. by a batch job): scale, depth/head/expert caps,
 * tasks, size factor, seed, corpus, token/FLOP budget, rung.  Strings are
 * malloc'd into *o (free with sh_score_opts_free_strings); other fields of *o
 * (threads, timeouts, state_dir) are left as they are. */
int sh_score_opts_from_params_json(const char *params_json, sh_score_opts *o, sh_err *err);
void sh_score_opts_free_strings(sh_score_opts *o);

/* Score g with scorer_spec ("builtin" or NULL, "cmd:...", "http(s)://...").
 * Returns 0 with *out filled (status "ok") — from the store when the same
 * question was answered before (unless opts->force).  A scorer that fails is
 * stored with status "failed" and its error text, and this returns -1 with the
 * message in err (*out then holds the failed record). Stored failures are not
 * reused: the next call tries again.  Free *out with sh_score_rec_free. */
int sh_score_genome(sh_db *db, const sh_genome *g, const char *scorer_spec,
                    const sh_score_opts *opts, sh_score_rec *out, sh_err *err);

/* Runs the scorer without the store (the batch-job side of cluster/): fills
 * *out like sh_score_genome would store it.  0 ok; -1 the scorer failed (*out
 * holds the failed record, err the message); -2 the request is invalid (bad
 * spec or genome; nothing run).  Free *out with sh_score_rec_free. */
int sh_score_compute(const sh_genome *g, const char *scorer_spec, const sh_score_opts *opts,
                     sh_score_rec *out, sh_err *err);

/* Training states kept between rungs (built-in scorer with opts->state_dir;
 * other scorers and no state_dir: nothing kept, both return 0).
 * sh_score_state_step: *step = the training step the rung opts asks for would
 * continue from (the smallest over the tasks), 0 if it would train from
 * scratch.  sh_score_drop_state: removes g's states under opts (every rung:
 * the key leaves the rung out); returns how many files were removed, or -1. */
int sh_score_state_step(const sh_genome *g, const char *scorer_spec, const sh_score_opts *opts, int *step,
                        sh_err *err);
int sh_score_drop_state(const sh_genome *g, const char *scorer_spec, const sh_score_opts *opts, sh_err *err);
/* The step rung opts->rung continues from on a ladder whose every rung kept
 * its state (the rung below's decay start, the smallest over the tasks; 0 for
 * rung 0 and for other scorers): what a rung scored earlier continued from,
 * once its own state is gone (successive halving resumed after a kill). */
int sh_score_ladder_step(const sh_genome *g, const char *scorer_spec, const sh_score_opts *opts, int *step,
                         sh_err *err);

/* The parameters JSON that keys a stored score (malloc'd; NULL on error). */
char *sh_score_params_json(const sh_genome *g, const char *scorer_spec, const sh_score_opts *opts,
                           sh_err *err);

/* Name under which a spec's scores are stored (specs longer than the store's
 * 127-character column are shortened with a hash of the whole spec). */
void sh_score_scorer_name(const char *spec, char *out, size_t cap);
/* Version string recorded for a spec. */
const char *sh_score_version(const char *spec);

/* Names of the built-in tasks, comma separated (static string). */
const char *sh_score_builtin_tasks(void);

/* ---- used by the scorer implementations and their tests ------------------- */
/* Split "PROGRAM ARGS" into argv: whitespace separates, '...' is literal,
 * "..." allows \" and \\, a backslash outside quotes escapes the next char.
 * Returns a malloc'd NULL-terminated array (free with sh_score_argv_free). */
char **sh_score_split_argv(const char *cmd, int *argc_out, sh_err *err);
void sh_score_argv_free(char **argv);
/* Validate a scorer reply: a JSON object of numbers (optional "aggregate").
 * Writes canonical scores JSON (malloc'd) and the aggregate (mean of the
 * scores when absent). */
int sh_score_parse_reply(const char *text, size_t len, char **scores_json, double *aggregate, sh_err *err);

#endif
