/* evaluate.h - turning genomes into points for the search: the objectives a
 * run can optimise, and the evaluator that computes them (closed-form
 * analytics, or measurement on devices plus capability scoring), records
 * every evaluation in the run store as it completes, reuses the ones already
 * stored (so nothing is evaluated twice, also across a resume) and runs
 * candidates in parallel (one worker thread per device, or --jobs threads for
 * analytic objectives, with capability scoring overlapped). */
#ifndef SH_SEARCH_EVALUATE_H
#define SH_SEARCH_EVALUATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/cluster.h"
#include "genome/genome.h"
#include "runs/runs.h"
#include "search/pareto.h"
#include "search/space.h"

typedef enum sh_obj_kind {
    SH_OBJ_DECODE_MS = 0,   /* ms per decoded token (median)              */
    SH_OBJ_PREFILL_MS,      /* ms to prefill the prompt                   */
    SH_OBJ_TTFT_MS,         /* time to first token                        */
    SH_OBJ_PEAK_BYTES,      /* peak resident memory                       */
    SH_OBJ_PARAMS,          /* total parameters                           */
    SH_OBJ_CACHE_BYTES,     /* KV cache + conv state at the cache context */
    SH_OBJ_CAPABILITY,      /* capability score (maximised)               */
    SH_OBJ_KIND_COUNT
} sh_obj_kind;

typedef struct sh_objective {
    sh_obj_kind kind;
    char device[64];        /* "" = the worst over all devices            */
    char name[96];          /* as written: "decode_ms" or "decode_ms@pi5" */
} sh_objective;

bool sh_obj_maximised(sh_obj_kind k);
/* Comma-separated names, each optionally "@device"; 1..SH_MAX_OBJ of them. */
int sh_objectives_parse(const char *list, sh_objective *out, int *n, sh_err *err);

typedef enum sh_eval_mode { SH_EVAL_ANALYTIC = 0, SH_EVAL_DEVICE = 1 } sh_eval_mode;

/* Measurement settings passed to the devices (device mode). */
#define SH_SEARCH_REFERENCE_CAP 8192
typedef struct sh_search_measure {
    int prompt, gen, reps, threads;   /* reps: the repetition cap of one measurement round */
    double tolerance;       /* the estimate's 95% interval within +-this (measure.h) */
    char wtype[16];
    bool accept_unstable;   /* rank with measurements stored unstable (default:
                               they count as failed evaluations, with the reason) */
    int settle_rounds;      /* re-measurements of a doubtful result (measure.h; -1 none) */
    double settle_max_s;    /* longest wait for the board to settle per round */
    /* when a repetition counts as disturbed (measure.h's busy_wait, steal_max,
     * others_max; 0: its defaults, <0: that rule off) */
    double busy_wait, steal_max, others_max;
    int decode_warmup;      /* measure.h: 0 auto, -1 none (runs stored before it), N */
    /* the drift check (measure.h): this genome (canonical text, "" none) is
     * measured again on each device before every reference_every-th
     * measurement of the run there; candidates measured while the board
     * drifted more than drift_tol from the reference's last quiet value are
     * doubtful, and decode_ms is ranked normalized by it (below) */
    char reference[SH_SEARCH_REFERENCE_CAP];
    int reference_every;
    double drift_tol;       /* drift beyond this fraction (0: measure.h's 0.10) */
    bool reference_paired;  /* pair each invocation with one of the reference (measure.h
                               reference_paired, `search --paired`)           */
    bool rank_absolute;     /* with a reference, rank decode_ms as measured; by default
                               the figure normalized by the reference (mrecord.h
                               decode_ms_normalized) */
    /* optional: the measurement's progress lines (measure.h), e.g. to see when
     * it ran; called on the measuring thread.  NULL: none */
    void (*progress)(void *ctx, const char *line);
    void *progress_ctx;
} sh_search_measure;

/* Capability scoring settings. */
typedef struct sh_search_score {
    char spec[256];         /* "" = none; builtin | cmd:... | http(s)://... */
    char tasks[256];        /* builtin task subset, "" = the default suite  */
    double size_factor;     /* builtin train-set size factor, 0 = default   */
    double scale;           /* builtin proxy width factor, 0 = the scorer's default */
    long tokens;            /* builtin lm training tokens, 0 = the scorer's default */
    int rung;               /* fidelity rung + 1 every candidate is scored at (0 = the top rung) */
    bool halving;           /* successive halving per batch (device mode, builtin): all at
                               rung 0, the best third (non-dominated rank on capability and
                               params) continued to rung 1, the best third of those to rung 2 */
    char state_dir[512];    /* halving: where training states are kept between rungs */
    int threads;            /* training threads, 0 = 1                      */
    sh_exec_opts exec;      /* where scores run: local (default) or slurm  */
    /* optional: the built-in trainer's progress lines (score.h: "... step N/M
     * ..." every 10 steps), called on the scoring thread.  NULL: none */
    void (*progress)(void *ctx, const char *line);
    void *progress_ctx;
} sh_search_score;

/* Scoring jobs of a cluster executor, for the progress line. */
typedef struct sh_search_jobs {
    bool active;            /* a cluster executor is in use                 */
    int waiting, pending, running, done, failed, resubmitted;
} sh_search_jobs;

typedef void (*sh_eval_done_fn)(void *ctx, bool ok);

typedef struct sh_search_eval {
    sh_eval_mode mode;
    const sh_space *space;
    sh_objective obj[SH_MAX_OBJ];
    int n_obj;
    char devices[8][64];    /* device mode: the healthy devices in use    */
    int n_devices;
    sh_search_score score;  /* score.spec "" = no capability scoring      */
    sh_search_measure measure;
    int jobs;               /* analytic mode: worker threads              */
    int delay_ms;           /* analytic mode: sleep per evaluation        */
    int64_t run_id;
    const char *db_path;    /* each worker opens its own connection       */
    sh_db *db;              /* the caller's connection (main thread)      */
    char settings_json[1024];
    sh_eval_done_fn on_done;  /* called (under a lock) as each completes  */
    void *on_done_ctx;
    void (*on_tick)(void *ctx); /* called (under the lock) after each poll of
                                 * the cluster executor, with jobs updated    */
    const volatile int *stop; /* non-zero: cancel the cluster jobs and stop */
    bool stopped;           /* the last batch was stopped (jobs cancelled)  */
    sh_search_jobs jobs_state;
    void *cluster;          /* the cluster executor, opened on first use    */
    pthread_mutex_t lock;
    sh_db *worker_db[72];   /* one connection per worker slot, kept for the run */
} sh_search_eval;

/* Fills settings_json and checks the objectives against the mode (e.g. the
 * capability objective needs a scorer). */
int sh_search_eval_init(sh_search_eval *e, sh_err *err);
void sh_search_eval_destroy(sh_search_eval *e);

/* The engine's evaluator callback (ctx = sh_search_eval, individuals are
 * sh_genome). */
int sh_search_evaluate(void *ctx, const void *inds, size_t stride, int n, sh_point *out, sh_err *err);

/* Which of n individuals (sh_genome, stride bytes apart) have a stored
 * evaluation that no longer holds: a measurement behind it (the row's
 * "measurements") was marked unstable after the evaluation finished
 * (measure.h: a later reference showed the board was slower then), so its
 * figures are not trusted any more.  Their search rows are set back to
 * pending, so that sh_search_evaluate measures them again (the unstable
 * measurement is not reused; a quiet one replaces it); redo[i] says which.
 * None in analytic mode or with accept_unstable.  Returns how many, or -1. */
int sh_search_stale(sh_search_eval *e, const void *inds, size_t stride, int n, bool *redo, sh_err *err);

/* Point of a genome already evaluated in the run: 0, or -1 if absent/pending. */
int sh_search_eval_lookup(sh_search_eval *e, const sh_genome *g, sh_point *out, char **objectives_json,
                          sh_err *err);

/* {"name": value, ...} of a point in user units (capability positive). */
char *sh_search_objectives_json(const sh_search_eval *e, const sh_point *p);

/* Closed-form values of a genome (analytic mode; capability NaN). */
void sh_search_analytic_values(const sh_space *s, const sh_genome *g, double v[SH_OBJ_KIND_COUNT]);

#endif
