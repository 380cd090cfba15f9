/* pareto.c - constrained domination, non-dominated sorting, crowding distance
 * and exact hypervolume (sweep in 2-D, slicing into 2-D sweeps in 3-D). */
#include "search/pareto.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool sh_point_failed(const sh_point *p, int n_obj)
{
    if (p->failed || isnan(p->violation))
        return true;
    for (int k = 0; k < n_obj; k++)
        if (isnan(p->f[k]))
            return true;
    return false;
}

int sh_cdominates(const sh_point *a, const sh_point *b, int n_obj)
{
    bool a_failed = sh_point_failed(a, n_obj), b_failed = sh_point_failed(b, n_obj);
    if (a_failed != b_failed)
        return a_failed ? -1 : 1;
    if (a_failed)
        return 0;
    bool fa = a->violation <= 0, fb = b->violation <= 0;
    if (fa && !fb)
        return 1;
    if (!fa && fb)
        return -1;
    if (!fa && !fb)
        return a->violation < b->violation ? 1 : (b->violation < a->violation ? -1 : 0);
    bool a_better = false, b_better = false;
    for (int k = 0; k < n_obj; k++) {
        if (a->f[k] < b->f[k])
            a_better = true;
        else if (b->f[k] < a->f[k])
            b_better = true;
    }
    if (a_better && !b_better)
        return 1;
    if (b_better && !a_better)
        return -1;
    return 0;
}

int sh_nondominated_sort(const sh_point *pts, const int *idx, int n, int n_obj, int *rank)
{
    assert(n_obj >= 1);
    if (n <= 0)
        return 0;
    assert(pts && idx && rank);
    int *count = calloc((size_t)n, sizeof *count);      /* dominated-by counter */
    int *dom = malloc((size_t)n * (size_t)n * sizeof *dom); /* dominated lists */
    int *ndom = calloc((size_t)n, sizeof *ndom);
    int *cur = malloc((size_t)n * sizeof *cur), *next = malloc((size_t)n * sizeof *next);
    if (!count || !dom || !ndom || !cur || !next) {
        free(count); free(dom); free(ndom); free(cur); free(next);
        return -1;
    }
    for (int p = 0; p < n; p++) {
        for (int q = p + 1; q < n; q++) {
            int d = sh_cdominates(&pts[idx[p]], &pts[idx[q]], n_obj);
            if (d > 0) {
                dom[(size_t)p * (size_t)n + (size_t)ndom[p]++] = q;
                count[q]++;
            } else if (d < 0) {
                dom[(size_t)q * (size_t)n + (size_t)ndom[q]++] = p;
                count[p]++;
            }
        }
    }
    int n_cur = 0, fronts = 0;
    for (int p = 0; p < n; p++)
        if (count[p] == 0) {
            rank[p] = 0;
            cur[n_cur++] = p;
        }
    while (n_cur > 0) {
        int n_next = 0;
        for (int i = 0; i < n_cur; i++) {
            int p = cur[i];
            for (int j = 0; j < ndom[p]; j++) {
                int q = dom[(size_t)p * (size_t)n + (size_t)j];
                if (--count[q] == 0) {
                    rank[q] = fronts + 1;
                    next[n_next++] = q;
                }
            }
        }
        fronts++;
        int *t = cur; cur = next; next = t;
        n_cur = n_next;
    }
    /* domination is a strict partial order: every point ended in a front */
    for (int p = 0; p < n; p++)
        assert(count[p] == 0 && rank[p] >= 0 && rank[p] < fronts);
    free(count); free(dom); free(ndom); free(cur); free(next);
    return fronts;
}

/* ---- crowding distance ------------------------------------------------ */
typedef struct sort_key {
    double v;
    int pos;
} sort_key;

static int cmp_key(const void *a, const void *b)
{
    const sort_key *x = a, *y = b;
    if (x->v < y->v) return -1;
    if (x->v > y->v) return 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static bool same_objectives(const sh_point *a, const sh_point *b, int n_obj)
{
    for (int m = 0; m < n_obj; m++)
        if (a->f[m] != b->f[m])
            return false;
    return true;
}

/* Crowding over the distinct objective vectors only: a copy of an earlier
 * point (same vector) gets 0, so duplicates share the first one's slot
 * instead of each claiming a boundary's infinity. */
void sh_crowding(const sh_point *pts, const int *idx, int n, int n_obj, double *out)
{
    assert(n >= 0 && n_obj >= 1 && (n == 0 || (pts && idx && out)));
    for (int i = 0; i < n; i++)
        out[i] = 0;
    int *uniq = malloc((size_t)(n > 0 ? n : 1) * sizeof *uniq);   /* positions in idx */
    sort_key *k = malloc((size_t)(n > 0 ? n : 1) * sizeof *k);
    if (!uniq || !k) {
        free(uniq);
        free(k);
        for (int i = 0; i < n; i++)
            out[i] = INFINITY;
        return;
    }
    int u = 0;
    for (int i = 0; i < n; i++) {
        bool copy = false;
        for (int j = 0; j < u && !copy; j++)
            copy = same_objectives(&pts[idx[i]], &pts[idx[uniq[j]]], n_obj);
        if (!copy)
            uniq[u++] = i;
    }
    if (u <= 2) {
        for (int j = 0; j < u; j++)
            out[uniq[j]] = INFINITY;
        free(uniq);
        free(k);
        return;
    }
    for (int m = 0; m < n_obj; m++) {
        for (int j = 0; j < u; j++) {
            k[j].v = pts[idx[uniq[j]]].f[m];
            k[j].pos = uniq[j];
        }
        qsort(k, (size_t)u, sizeof *k, cmp_key);
        double span = k[u - 1].v - k[0].v;
        out[k[0].pos] = INFINITY;
        out[k[u - 1].pos] = INFINITY;
        if (!(span > 0))
            continue;
        for (int j = 1; j < u - 1; j++)
            if (isfinite(out[k[j].pos]))
                out[k[j].pos] += (k[j + 1].v - k[j - 1].v) / span;
    }
    free(uniq);
    free(k);
}

/* ---- hypervolume --------------------------------------------------------- */
typedef struct pt3 {
    double x, y, z;
} pt3;

static int cmp_x(const void *a, const void *b)
{
    const pt3 *p = a, *q = b;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    return (p->y > q->y) - (p->y < q->y);
}

static int cmp_z(const void *a, const void *b)
{
    const pt3 *p = a, *q = b;
    return (p->z > q->z) - (p->z < q->z);
}

/* Area dominated by pts (sorted by x ascending) up to (rx, ry). */
static double area2d_sorted(const pt3 *p, int n, double rx, double ry)
{
    double area = 0, prev_y = ry;
    for (int i = 0; i < n; i++) {
        if (p[i].y < prev_y) {
            area += (rx - p[i].x) * (prev_y - p[i].y);
            prev_y = p[i].y;
        }
    }
    return area;
}

static double hv3(pt3 *p, int n, const double *ref)
{
    qsort(p, (size_t)n, sizeof *p, cmp_z);
    pt3 *slice = malloc((size_t)n * sizeof *slice);
    if (!slice)
        return -1.0;
    double vol = 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        /* insert p[i] into the x-sorted slice */
        int j = m;
        while (j > 0 && cmp_x(&slice[j - 1], &p[i]) > 0) {
            slice[j] = slice[j - 1];
            j--;
        }
        slice[j] = p[i];
        m++;
        double z_next = (i + 1 < n) ? p[i + 1].z : ref[2];
        if (z_next > p[i].z)
            vol += area2d_sorted(slice, m, ref[0], ref[1]) * (z_next - p[i].z);
    }
    free(slice);
    return vol;
}

double sh_hypervolume(const double *rows, int n, int n_obj, const double *ref)
{
    if (n_obj < 1 || n_obj > 3)
        return -1.0;
    pt3 *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    if (!p)
        return -1.0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        const double *r = rows + (size_t)i * (size_t)n_obj;
        bool inside = true;
        for (int k = 0; k < n_obj; k++)
            if (!(r[k] < ref[k]))   /* also rejects NaN */
                inside = false;
        if (!inside)
            continue;
        p[m].x = r[0];
        p[m].y = n_obj > 1 ? r[1] : 0;
        p[m].z = n_obj > 2 ? r[2] : 0;
        m++;
    }
    double hv = 0;
    if (m > 0) {
        if (n_obj == 1) {
            double best = p[0].x;
            for (int i = 1; i < m; i++)
                best = fmin(best, p[i].x);
            hv = ref[0] - best;
        } else if (n_obj == 2) {
            qsort(p, (size_t)m, sizeof *p, cmp_x);
            hv = area2d_sorted(p, m, ref[0], ref[1]);
        } else {
            hv = hv3(p, m, ref);
        }
    }
    free(p);
    return hv;
}

int sh_hv_contributions(const double *rows, int n, int n_obj, const double *ref, double *out)
{
    double total = sh_hypervolume(rows, n, n_obj, ref);
    if (total < 0)
        return -1;
    if (n <= 0)
        return 0;
    double *rest = malloc((size_t)n * (size_t)n_obj * sizeof *rest);
    if (!rest)
        return -1;
    for (int i = 0; i < n; i++) {
        int m = 0;
        for (int j = 0; j < n; j++)
            if (j != i)
                memcpy(rest + (size_t)(m++) * (size_t)n_obj, rows + (size_t)j * (size_t)n_obj,
                       (size_t)n_obj * sizeof *rest);
        double without = sh_hypervolume(rest, m, n_obj, ref);
        if (without < 0) {
            free(rest);
            return -1;
        }
        out[i] = total - without;
    }
    free(rest);
    return 0;
}
