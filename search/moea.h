/* moea.h - the generic multi-objective evolutionary engine.
 *
 * The engine knows nothing about what an individual is: a problem supplies a
 * vtable of operators over fixed-size individuals (random, crossover, mutate,
 * repair, hash), and an evaluator turns a batch of individuals into points
 * (objectives, constraint violation, failed flag).  The same engine runs the
 * architecture search over genomes and the real-valued benchmark problems
 * (ZDT) used to prove it.
 *
 * Algorithms: NSGA-II (constrained domination, fast non-dominated sort,
 * crowding distance, binary tournaments), a hypervolume-based (mu + lambda)
 * variant that drops the points of the worst front with the smallest exclusive
 * hypervolume contribution (like SMS-EMOA; exact for up to 3 objectives,
 * crowding distance beyond), and random search with the same budget and the
 * same elitist archive as a baseline.
 *
 * Determinism: everything random comes from one sh_rng.  The offspring of a
 * generation depend only on the state at the previous generation boundary
 * (rng, population, seen hashes), which sh_moea_export/restore expose, so a run
 * resumed from that state repeats exactly the same candidates.  Individuals
 * whose hash was already seen are never offered for evaluation again. */
#ifndef SH_SEARCH_MOEA_H
#define SH_SEARCH_MOEA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "search/pareto.h"
#include "search/rng.h"
#include "util/err.h"

typedef struct sh_moea_ops {
    size_t size;                        /* bytes of one individual          */
    void *ctx;
    void (*random)(void *ctx, sh_rng *r, void *out);
    /* Writes two children; either may equal a parent. */
    void (*crossover)(void *ctx, sh_rng *r, const void *a, const void *b, void *c1, void *c2);
    void (*mutate)(void *ctx, sh_rng *r, void *ind);
    void (*repair)(void *ctx, sh_rng *r, void *ind);  /* may be NULL         */
    uint64_t (*hash)(void *ctx, const void *ind);     /* NULL: hash of bytes */
} sh_moea_ops;

/* Evaluates n individuals stored stride bytes apart; fills out[0..n-1].
 * A failed evaluation is a point with failed = true, not an error: return -1
 * only when the whole search must stop (database gone, interrupted).  A point
 * with a NaN objective or violation is treated as failed (sh_point_failed):
 * it never dominates, never enters a front and adds no hypervolume. */
typedef struct sh_moea_evaluator {
    void *ctx;
    int (*evaluate)(void *ctx, const void *inds, size_t stride, int n, sh_point *out, sh_err *err);
} sh_moea_evaluator;

typedef enum sh_moea_algo {
    SH_ALGO_NSGA2 = 0,
    SH_ALGO_HV = 1,       /* hypervolume-contribution selection (SMS-EMOA-like) */
    SH_ALGO_RANDOM = 2
} sh_moea_algo;

const char *sh_moea_algo_name(sh_moea_algo a);
int sh_moea_algo_parse(const char *s, sh_moea_algo *out);

typedef struct sh_moea_config {
    sh_moea_algo algo;
    int n_obj;              /* 1..SH_MAX_OBJ                                 */
    int pop_size;           /* mu                                            */
    int offspring;          /* lambda per generation (0: pop_size)           */
    long budget;            /* max evaluations in total (0: no limit)        */
    int max_gens;           /* max generations after the first (0: no limit) */
    double crossover_prob;  /* per pair (default 0.9)                        */
    double mutation_prob;   /* per child (default 1.0)                       */
    uint64_t seed;
} sh_moea_config;

typedef struct sh_moea sh_moea;

int sh_moea_new(const sh_moea_config *cfg, const sh_moea_ops *ops, sh_moea **out, sh_err *err);
void sh_moea_free(sh_moea *m);

/* Generation 0: the seeds (deduplicated, repaired), then random individuals up
 * to pop_size; evaluates them and ranks the population. */
int sh_moea_init(sh_moea *m, const void *seeds, int n_seeds, const sh_moea_evaluator *ev, sh_err *err);
/* One generation: offspring, evaluation, environmental selection.  Returns 0,
 * or -1 with err set. */
int sh_moea_step(sh_moea *m, const sh_moea_evaluator *ev, sh_err *err);
/* Evaluates again the population members i with redo[i] (their points no
 * longer hold, e.g. a measurement behind one was found unstable later), with
 * ev, and ranks the population again.  The same individuals: not counted as
 * new evaluations, and the random state is untouched, so the offspring still
 * depend only on the state at the boundary.  Returns 0 or -1. */
int sh_moea_reevaluate(sh_moea *m, const bool *redo, const sh_moea_evaluator *ev, sh_err *err);

/* True when the budget or the generation limit is reached, or when several
 * generations in a row produced no new individual (space exhausted). */
int sh_moea_done(const sh_moea *m);

/* ---- state ------------------------------------------------------------- */
int sh_moea_generation(const sh_moea *m);
long sh_moea_evaluations(const sh_moea *m);
int sh_moea_pop_size(const sh_moea *m);
const void *sh_moea_individual(const sh_moea *m, int i);
const sh_point *sh_moea_point(const sh_moea *m, int i);
int sh_moea_rank(const sh_moea *m, int i);
double sh_moea_crowding(const sh_moea *m, int i);
/* Population members of rank 0 that are feasible and not failed. */
int sh_moea_front_size(const sh_moea *m);
/* Hypervolume of the feasible rank-0 points after mapping objective k to
 * (f - lo[k]) / (hi[k] - lo[k]) (lo/hi may be NULL: identity), against ref. */
double sh_moea_hypervolume(const sh_moea *m, const double *lo, const double *hi, const double *ref);

const sh_rng *sh_moea_rng(const sh_moea *m);
/* Hashes of every individual ever offered for evaluation, in order. */
const uint64_t *sh_moea_seen(const sh_moea *m, long *n);
int sh_moea_stagnant(const sh_moea *m);

/* Restores the state saved at a generation boundary.  inds/pts hold the
 * population (n members); seen the hashes returned by sh_moea_seen. */
int sh_moea_restore(sh_moea *m, int gen, long evaluations, int stagnant, const sh_rng *rng,
                    const void *inds, const sh_point *pts, int n, const uint64_t *seen,
                    long n_seen, sh_err *err);

/* ---- real-valued representation (benchmarks) ---------------------------- */
/* Individuals are double[n_var] within [lo, hi]; SBX crossover (eta_c) and
 * polynomial mutation (eta_m, probability 1/n_var per variable). */
#define SH_REAL_MAX_VARS 64
typedef struct sh_real_problem {
    int n_var;
    double lo[SH_REAL_MAX_VARS], hi[SH_REAL_MAX_VARS];
    double eta_c, eta_m;
} sh_real_problem;

void sh_real_ops(sh_real_problem *p, sh_moea_ops *ops);

/* ZDT1 (n_var variables in [0,1], 2 objectives), evaluator context = NULL. */
void sh_zdt1_problem(sh_real_problem *p, int n_var);
int sh_zdt1_evaluate(void *ctx, const void *inds, size_t stride, int n, sh_point *out, sh_err *err);

#endif
