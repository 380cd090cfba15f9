/* run.h - a search run: its configuration (stored whole in the run store, the
 * space included, so `search resume` needs nothing else), the loop that
 * evaluates generations and persists the state at every generation boundary
 * in one transaction (population, RNG state, generation number, seen hashes,
 * generation rows, metrics), and resumption from that state after any crash.
 * Evaluations are stored one by one as they complete (evaluate.h), so a
 * resumed run repeats none of them. */
#ifndef SH_SEARCH_RUN_H
#define SH_SEARCH_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "runs/runs.h"
#include "search/evaluate.h"
#include "search/moea.h"

typedef struct sh_search_opts {
    char name[128];
    const char *space_json;     /* NULL: the built-in default space           */
    char devices[512];          /* comma-separated; "" = local                */
    sh_search_score score;      /* capability scorer; score.spec "" = none    */
    char objectives[512];
    sh_eval_mode mode;
    sh_moea_algo algo;
    long budget;                /* evaluations                                */
    int population;
    int offspring;              /* 0 = population                             */
    uint64_t seed;
    int jobs;                   /* analytic mode worker threads               */
    int delay_ms;               /* analytic mode: sleep per evaluation        */
    bool no_presets;            /* seed from random genomes only              */
    sh_search_measure measure;
} sh_search_opts;

void sh_search_opts_default(sh_search_opts *o);

typedef struct sh_search_progress {
    int64_t run_id;
    int gen;
    long evals;                 /* evaluations counted against the budget     */
    long budget;
    int front;
    double hypervolume;         /* NaN when not computable (> 3 objectives)   */
    double elapsed_s;
    double eta_s;               /* NaN when unknown                           */
    bool generation_end;        /* false: an evaluation just completed        */
    sh_search_jobs jobs;        /* cluster executor's jobs (jobs.active)      */
    long remeasured;            /* population members evaluated again in this
                                   session because a measurement behind them was
                                   marked unstable later (not in evals)         */
} sh_search_progress;

typedef void (*sh_search_progress_fn)(void *ctx, const sh_search_progress *p);

/* Checks the options (space, objectives, devices, scorer) and creates the run
 * with its configuration; nothing is evaluated yet. */
int sh_search_create(sh_db *db, const sh_search_opts *o, int64_t *run_id, sh_err *err);
/* Runs (or resumes) a run until its budget is spent; the run ends "done".
 * If *stop (may be NULL) becomes non-zero, the run stops at the next
 * generation boundary with status "stopped" (resumable) and returns 1; with
 * a cluster executor it stops at once and cancels the run's scoring jobs
 * (the generation in progress is evaluated again on resume, reusing every
 * stored measurement and score). */
int sh_search_run(sh_db *db, int64_t run_id, const volatile int *stop, sh_search_progress_fn fn, void *ctx,
                  sh_err *err);

/* RUN argument: a run id or a run name (latest of that name). */
int sh_search_find_run(sh_db *db, const char *arg, int64_t *run_id, sh_err *err);

/* Names of a run's objectives (from its stored configuration). */
int sh_search_run_objectives(sh_db *db, int64_t run_id, sh_objective *obj, int *n, sh_err *err);

#endif
