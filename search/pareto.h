/* pareto.h - Pareto machinery shared by the search algorithms: constrained
 * domination (Deb et al. 2002), fast non-dominated sorting, crowding distance,
 * and exact hypervolume (and per-point contributions) for 1 to 3 objectives.
 * Every objective is minimised (callers negate the ones they maximise). */
#ifndef SH_SEARCH_PARETO_H
#define SH_SEARCH_PARETO_H

#include <stdbool.h>

#define SH_MAX_OBJ 8

/* One evaluated point: objective values, total constraint violation (0 =
 * feasible) and a failed flag (failed points never enter a front). */
typedef struct sh_point {
    double f[SH_MAX_OBJ];
    double violation;
    bool failed;
} sh_point;

/* True if p counts as failed: its flag is set, or its violation or one of its
 * n_obj objectives is NaN (a NaN compares false both ways and would otherwise
 * let a broken point dominate, e.g. (NaN, 0) over (1, 1)). */
bool sh_point_failed(const sh_point *p, int n_obj);

/* 1 if a constrained-dominates b, -1 if b dominates a, 0 otherwise.  Failed
 * points (sh_point_failed) are dominated by every non-failed point. */
int sh_cdominates(const sh_point *a, const sh_point *b, int n_obj);

/* Fast non-dominated sort of pts[idx[0..n-1]]: rank[k] gets the front number
 * (0 = best) of idx[k].  Returns the number of fronts, -1 on allocation failure. */
int sh_nondominated_sort(const sh_point *pts, const int *idx, int n, int n_obj, int *rank);

/* Crowding distance of the points idx[0..n-1] (one front); boundary points get
 * +infinity.  Points with the same objective vector share one slot: the first
 * (in idx order) gets the distance computed over the distinct vectors, each
 * later copy gets 0, so copies do not take places at the boundaries.
 * out[k] belongs to idx[k]. */
void sh_crowding(const sh_point *pts, const int *idx, int n, int n_obj, double *out);

/* Exact hypervolume dominated by rows[0..n-1] (n_obj values each, minimised)
 * and bounded by ref; points not strictly better than ref in every objective
 * add nothing.  n_obj 1, 2 or 3; returns -1.0 for other n_obj or on
 * allocation failure. */
double sh_hypervolume(const double *rows, int n, int n_obj, const double *ref);

/* Exclusive hypervolume contribution of each row (n_obj 1 to 3), 0 on success. */
int sh_hv_contributions(const double *rows, int n, int n_obj, const double *ref, double *out);

#endif
