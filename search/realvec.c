/* realvec.c - the real-vector representation for the engine's benchmark
 * problems: uniform initialisation, SBX crossover and polynomial mutation
 * (Deb and Agrawal), and the ZDT1 test problem (Zitzler, Deb, Thiele 2000). */
#include <math.h>
#include <string.h>

#include "search/moea.h"

static void real_random(void *ctx, sh_rng *r, void *out)
{
    const sh_real_problem *p = ctx;
    double *x = out;
    for (int i = 0; i < p->n_var; i++)
        x[i] = p->lo[i] + sh_rng_uniform(r) * (p->hi[i] - p->lo[i]);
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

static double sbx_betaq(double u, double beta, double eta)
{
    double alpha = 2.0 - pow(beta, -(eta + 1.0));
    if (u <= 1.0 / alpha)
        return pow(u * alpha, 1.0 / (eta + 1.0));
    return pow(1.0 / (2.0 - u * alpha), 1.0 / (eta + 1.0));
}

static void real_crossover(void *ctx, sh_rng *r, const void *a, const void *b, void *c1, void *c2)
{
    const sh_real_problem *p = ctx;
    const double *x1 = a, *x2 = b;
    double *y1 = c1, *y2 = c2;
    for (int i = 0; i < p->n_var; i++) {
        double lo = p->lo[i], hi = p->hi[i];
        if (sh_rng_uniform(r) > 0.5 || fabs(x1[i] - x2[i]) <= 1e-14) {
            y1[i] = x1[i];
            y2[i] = x2[i];
            continue;
        }
        double lo_v = fmin(x1[i], x2[i]), hi_v = fmax(x1[i], x2[i]), d = hi_v - lo_v;
        double u = sh_rng_uniform(r);
        double bq1 = sbx_betaq(u, 1.0 + 2.0 * (lo_v - lo) / d, p->eta_c);
        double bq2 = sbx_betaq(u, 1.0 + 2.0 * (hi - hi_v) / d, p->eta_c);
        double v1 = clampd(0.5 * ((lo_v + hi_v) - bq1 * d), lo, hi);
        double v2 = clampd(0.5 * ((lo_v + hi_v) + bq2 * d), lo, hi);
        if (sh_rng_uniform(r) < 0.5) {
            double t = v1; v1 = v2; v2 = t;
        }
        y1[i] = v1;
        y2[i] = v2;
    }
}

static void real_mutate(void *ctx, sh_rng *r, void *ind)
{
    const sh_real_problem *p = ctx;
    double *x = ind, pm = 1.0 / p->n_var, eta = p->eta_m, pw = 1.0 / (eta + 1.0);
    for (int i = 0; i < p->n_var; i++) {
        if (sh_rng_uniform(r) >= pm)
            continue;
        double lo = p->lo[i], hi = p->hi[i], span = hi - lo;
        if (!(span > 0))
            continue;
        double y = x[i], d1 = (y - lo) / span, d2 = (hi - y) / span, u = sh_rng_uniform(r), dq;
        if (u < 0.5) {
            double v = 2.0 * u + (1.0 - 2.0 * u) * pow(1.0 - d1, eta + 1.0);
            dq = pow(v, pw) - 1.0;
        } else {
            double v = 2.0 * (1.0 - u) + 2.0 * (u - 0.5) * pow(1.0 - d2, eta + 1.0);
            dq = 1.0 - pow(v, pw);
        }
        x[i] = clampd(y + dq * span, lo, hi);
    }
}

void sh_real_ops(sh_real_problem *p, sh_moea_ops *ops)
{
    memset(ops, 0, sizeof *ops);
    ops->size = (size_t)p->n_var * sizeof(double);
    ops->ctx = p;
    ops->random = real_random;
    ops->crossover = real_crossover;
    ops->mutate = real_mutate;
}

void sh_zdt1_problem(sh_real_problem *p, int n_var)
{
    memset(p, 0, sizeof *p);
    p->n_var = n_var < 2 ? 2 : (n_var > SH_REAL_MAX_VARS ? SH_REAL_MAX_VARS : n_var);
    for (int i = 0; i < p->n_var; i++) {
        p->lo[i] = 0.0;
        p->hi[i] = 1.0;
    }
    p->eta_c = 15.0;
    p->eta_m = 20.0;
}

/* ZDT1: f1 = x1, g = 1 + 9 * mean(x2..xn), f2 = g * (1 - sqrt(f1 / g)).
 * The variable count is recovered from the stride. */
int sh_zdt1_evaluate(void *ctx, const void *inds, size_t stride, int n, sh_point *out, sh_err *err)
{
    (void)ctx;
    (void)err;
    int n_var = (int)(stride / sizeof(double));
    for (int k = 0; k < n; k++) {
        const double *x = (const double *)((const unsigned char *)inds + (size_t)k * stride);
        double s = 0;
        for (int i = 1; i < n_var; i++)
            s += x[i];
        double g = 1.0 + 9.0 * s / (n_var - 1);
        memset(&out[k], 0, sizeof out[k]);
        out[k].f[0] = x[0];
        out[k].f[1] = g * (1.0 - sqrt(x[0] / g));
    }
    return 0;
}
