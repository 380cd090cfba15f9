/* cap_model_impl.h - forward and backward passes, by hand, of the scaled-down
 * LFM2-style model trained by the capability scorer (math: lfm2-architecture.md
 * section 3).  One forward/backward pair per operation, shapes in comments.
 * Written over cap_real (see cap_model.h) and included (it holds definitions,
 * no include guard) by cap_model.c (float), cap_simd_x86.c (float, AVX2) and
 * tests/test_capability.c (double).  It is a .h so that the Makefile's header
 * dependencies rebuild every includer when it changes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "evaluator/capability/cap_model.h"

typedef cap_real real;

/* ---- vector kernels (GCC/Clang vector extensions) ------------------------- */
#ifndef CAP_VBYTES
#define CAP_VBYTES 16      /* 32 in the AVX2 build (cap_simd_x86.c) */
#endif
#define VBYTES CAP_VBYTES
#define VL ((int)(VBYTES / sizeof(real)))
typedef real vreal __attribute__((vector_size(VBYTES)));

static inline vreal vload(const real *p) { vreal v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(real *p, vreal v) { memcpy(p, &v, sizeof v); }
static inline real vsum(vreal v)
{
    real s = 0;
    for (int i = 0; i < VL; i++) s += v[i];
    return s;
}

static inline real dot(const real *a, const real *b, int n)
{
    vreal s0 = {0}, s1 = {0};
    int i = 0;
    for (; i + 2 * VL <= n; i += 2 * VL) {
        s0 += vload(a + i) * vload(b + i);
        s1 += vload(a + i + VL) * vload(b + i + VL);
    }
    for (; i + VL <= n; i += VL) s0 += vload(a + i) * vload(b + i);
    real s = vsum(s0 + s1);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* y += alpha * x */
static inline void axpy(real *y, real alpha, const real *x, int n)
{
    vreal va = {0};
    va += alpha;
    int i = 0;
    for (; i + VL <= n; i += VL) vstore(y + i, vload(y + i) + va * vload(x + i));
    for (; i < n; i++) y[i] += alpha * x[i];
}

/* y += a0*x0 + a1*x1 + a2*x2 + a3*x3 (one pass over y) */
static inline void axpy4(real *y, real a0, const real *x0, real a1, const real *x1, real a2,
                         const real *x2, real a3, const real *x3, int n)
{
    vreal v0 = {0}, v1 = {0}, v2 = {0}, v3 = {0};
    v0 += a0; v1 += a1; v2 += a2; v3 += a3;
    int i = 0;
    for (; i + VL <= n; i += VL)
        vstore(y + i, vload(y + i) + v0 * vload(x0 + i) + v1 * vload(x1 + i) + v2 * vload(x2 + i) +
                      v3 * vload(x3 + i));
    for (; i < n; i++) y[i] += a0 * x0[i] + a1 * x1[i] + a2 * x2[i] + a3 * x3[i];
}

/* four dot products of one x row against four W rows (reuses the x loads) */
static inline void dot4(const real *x, const real *w0, const real *w1, const real *w2,
                        const real *w3, int n, real *out)
{
    vreal s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    int i = 0;
    for (; i + VL <= n; i += VL) {
        vreal xv = vload(x + i);
        s0 += xv * vload(w0 + i); s1 += xv * vload(w1 + i);
        s2 += xv * vload(w2 + i); s3 += xv * vload(w3 + i);
    }
    real r0 = vsum(s0), r1 = vsum(s1), r2 = vsum(s2), r3 = vsum(s3);
    for (; i < n; i++) { r0 += x[i] * w0[i]; r1 += x[i] * w1[i]; r2 += x[i] * w2[i]; r3 += x[i] * w3[i]; }
    out[0] = r0; out[1] = r1; out[2] = r2; out[3] = r3;
}

/* expf in the float build, exp in the double (gradient-check) build */
#define REAL_EXP(x) _Generic((real)0, float: expf, default: exp)(x)
static inline real sigm(real x) { return (real)1 / ((real)1 + REAL_EXP(-x)); }

/* ---- parameter layout ----------------------------------------------------- */
/* Walks the layout in a fixed order; with base == NULL only counts. */
typedef struct layout { real *base; size_t off; cap_block *blk; int nblk, cap; } layout;

static real *take(layout *L, size_t n, int decay)
{
    real *p = L->base ? L->base + L->off : NULL;
    /* every decayed block but the embedding (always first) is a hidden matrix */
    if (L->blk && L->nblk < L->cap) L->blk[L->nblk] = (cap_block){L->off, n, decay, decay && L->off > 0};
    L->nblk++;
    L->off += n;
    return p;
}

static void walk_layout(const cap_model_cfg *c, layout *L, cap_params *p)
{
    cap_params dummy;
    if (!p) p = &dummy;
    memset(p, 0, sizeof *p);
    size_t D = (size_t)c->D, hd = (size_t)c->hd;
    p->emb = take(L, (size_t)c->V * D, 1);
    p->norm_f = take(L, D, 0);
    if (c->readout > 0) p->readout = take(L, (size_t)c->readout * D, 0);
    for (int l = 0; l < c->n_layers; l++) {
        const cap_layer_cfg *lc = &c->layers[l];
        cap_layer_params *lp = &p->layer[l];
        lp->norm1 = take(L, D, 0);
        if (lc->mixer == CAP_CONV) {
            lp->w_in = take(L, 3 * D * D, 1);                 /* [3D, D] */
            lp->w_conv = take(L, D * (size_t)lc->conv_L, 0);  /* [D, L]  */
            lp->w_out = take(L, D * D, 1);                    /* [D, D]  */
        } else {
            size_t qd = (size_t)lc->nh * hd, kd = (size_t)lc->nkv * hd;
            lp->wq = take(L, qd * D, 1);
            lp->wk = take(L, kd * D, 1);
            lp->wv = take(L, kd * D, 1);
            lp->wo = take(L, D * qd, 1);
            if (lc->qk_norm) { lp->gq = take(L, hd, 0); lp->gk = take(L, hd, 0); }
        }
        lp->norm2 = take(L, D, 0);
        if (lc->ffn == CAP_SWIGLU) {
            size_t F = (size_t)lc->F;
            lp->w1 = take(L, F * D, 1);
            lp->w3 = take(L, F * D, 1);
            lp->w2 = take(L, D * F, 1);
        } else {
            size_t E = (size_t)lc->E, Fe = (size_t)lc->Fe;
            lp->wg = take(L, E * D, 1);
            lp->w1 = take(L, E * Fe * D, 1);   /* [E][Fe, D] */
            lp->w3 = take(L, E * Fe * D, 1);   /* [E][Fe, D] */
            lp->w2 = take(L, E * D * Fe, 1);   /* [E][D, Fe] */
        }
    }
}

size_t cap_param_count(const cap_model_cfg *c)
{
    layout L = {0};
    walk_layout(c, &L, NULL);
    return L.off;
}

void cap_params_bind(const cap_model_cfg *c, real *base, cap_params *p)
{
    layout L = {.base = base};
    walk_layout(c, &L, p);
}

int cap_param_blocks(const cap_model_cfg *c, cap_block *out, int cap)
{
    layout L = {.blk = out, .cap = cap};
    walk_layout(c, &L, NULL);
    return L.nblk;
}

static void fill_normal(cap_rng *r, real *x, size_t n, double std)
{
    for (size_t i = 0; i < n; i++) x[i] = (real)(std * cap_rng_normal(r));
}
static void fill_const(real *x, size_t n, double v)
{
    for (size_t i = 0; i < n; i++) x[i] = (real)v;
}

/* Init: embeddings N(0, 1/sqrt(D)); linear weights N(0, 1/sqrt(fan_in)), output
 * projections further scaled by 1/sqrt(2*layers); conv kernel N(0, 1/sqrt(L));
 * norm gains 1; readout gains 1. */
void cap_params_init(const cap_model_cfg *c, real *base, uint64_t seed)
{
    cap_params p;
    cap_params_bind(c, base, &p);
    cap_rng r;
    cap_rng_seed(&r, seed);
    size_t D = (size_t)c->D, hd = (size_t)c->hd;
    double sd = 1.0 / sqrt((double)D), res = 1.0 / sqrt(2.0 * c->n_layers);
    fill_normal(&r, p.emb, (size_t)c->V * D, sd);
    fill_const(p.norm_f, D, 1.0);
    if (p.readout) fill_const(p.readout, (size_t)c->readout * D, 1.0);
    for (int l = 0; l < c->n_layers; l++) {
        const cap_layer_cfg *lc = &c->layers[l];
        cap_layer_params *lp = &p.layer[l];
        fill_const(lp->norm1, D, 1.0);
        fill_const(lp->norm2, D, 1.0);
        if (lc->mixer == CAP_CONV) {
            fill_normal(&r, lp->w_in, 3 * D * D, sd);
            fill_normal(&r, lp->w_conv, D * (size_t)lc->conv_L, 1.0 / sqrt((double)lc->conv_L));
            fill_normal(&r, lp->w_out, D * D, sd * res);
        } else {
            size_t qd = (size_t)lc->nh * hd, kd = (size_t)lc->nkv * hd;
            fill_normal(&r, lp->wq, qd * D, sd);
            fill_normal(&r, lp->wk, kd * D, sd);
            fill_normal(&r, lp->wv, kd * D, sd);
            fill_normal(&r, lp->wo, D * qd, res / sqrt((double)qd));
            if (lc->qk_norm) { fill_const(lp->gq, hd, 1.0); fill_const(lp->gk, hd, 1.0); }
        }
        if (lc->ffn == CAP_SWIGLU) {
            size_t F = (size_t)lc->F;
            fill_normal(&r, lp->w1, F * D, sd);
            fill_normal(&r, lp->w3, F * D, sd);
            fill_normal(&r, lp->w2, D * F, res / sqrt((double)F));
        } else {
            size_t E = (size_t)lc->E, Fe = (size_t)lc->Fe;
            fill_normal(&r, lp->wg, E * D, sd);
            fill_normal(&r, lp->w1, E * Fe * D, sd);
            fill_normal(&r, lp->w3, E * Fe * D, sd);
            fill_normal(&r, lp->w2, E * D * Fe, res / sqrt((double)Fe));
        }
    }
}

/* ---- workspace ------------------------------------------------------------ */
typedef struct wsalloc { real *base; size_t off; } wsalloc;
static real *wtake(wsalloc *w, size_t n)
{
    real *p = w->base ? w->base + w->off : NULL;
    w->off += (n + 7) & ~(size_t)7;
    return p;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

static void walk_ws(const cap_model_cfg *c, wsalloc *w, cap_ws *ws)
{
    size_t T = (size_t)c->T, D = (size_t)c->D, hd = (size_t)c->hd;
    size_t R = (size_t)c->readout, scratch = 6 * T * D + 16;
    for (int l = 0; l <= c->n_layers; l++) ws->h[l] = wtake(w, T * D);
    for (int l = 0; l < c->n_layers; l++) {
        const cap_layer_cfg *lc = &c->layers[l];
        cap_layer_acts *a = &ws->L[l];
        memset(a, 0, sizeof *a);
        a->a = wtake(w, T * D);
        a->rs1 = wtake(w, T);
        if (lc->mixer == CAP_CONV) {
            a->bcx = wtake(w, 3 * T * D);
            a->cv = wtake(w, T * D);
            a->cz = wtake(w, T * D);
            a->cg = wtake(w, T * D);
        } else {
            size_t qd = (size_t)lc->nh * hd, kd = (size_t)lc->nkv * hd;
            a->qr = wtake(w, T * qd);
            a->kr = wtake(w, T * kd);
            a->q = wtake(w, T * qd);
            a->k = wtake(w, T * kd);
            a->v = wtake(w, T * kd);
            a->qrs = wtake(w, T * (size_t)lc->nh);
            a->krs = wtake(w, T * (size_t)lc->nkv);
            a->p = wtake(w, (size_t)lc->nh * T * T);
            a->o = wtake(w, T * qd);
            scratch = max_sz(scratch, T * (4 * qd + 4 * kd) + T + 16);
        }
        a->h_mid = wtake(w, T * D);
        a->b = wtake(w, T * D);
        a->rs2 = wtake(w, T);
        if (lc->ffn == CAP_SWIGLU) {
            size_t F = (size_t)lc->F;
            a->u1 = wtake(w, T * F);
            a->u3 = wtake(w, T * F);
            a->m = wtake(w, T * F);
            scratch = max_sz(scratch, 3 * T * F + 16);
        } else {
            size_t E = (size_t)lc->E, K = (size_t)lc->K, Fe = (size_t)lc->Fe;
            a->u1 = wtake(w, T * K * Fe);
            a->u3 = wtake(w, T * K * Fe);
            a->m = wtake(w, T * K * Fe);
            a->s = wtake(w, T * E);
            a->wsel = wtake(w, T * K);
            a->eo = wtake(w, T * K * D);
            a->sel = (int *)(void *)wtake(w, T * K);   /* ints stored in the same block */
            scratch = max_sz(scratch, D + 3 * Fe + 2 * E + 16);
        }
    }
    ws->hn = wtake(w, T * D);
    ws->rsf = wtake(w, T);
    ws->logits = wtake(w, max_sz(T, R) * (size_t)c->V);
    ws->rope_cos = wtake(w, T * (hd / 2 + 1));
    ws->rope_sin = wtake(w, T * (hd / 2 + 1));
    ws->scratch = wtake(w, scratch);
    ws->dh = wtake(w, T * D);
    ws->dh2 = wtake(w, T * D);
}

int cap_ws_alloc(const cap_model_cfg *c, cap_ws *ws)
{
    memset(ws, 0, sizeof *ws);
    wsalloc w = {0};
    walk_ws(c, &w, ws);
    ws->mem = calloc(w.off, sizeof(real));
    if (!ws->mem) return -1;
    w = (wsalloc){.base = ws->mem};
    walk_ws(c, &w, ws);
    /* RoPE table (half-split / NeoX): angle(t, i) = t * theta^(-2i/hd) */
    int hh = c->hd / 2;
    for (int t = 0; t < c->T; t++)
        for (int i = 0; i < hh; i++) {
            double ang = t * pow(c->theta, -2.0 * i / c->hd);
            ws->rope_cos[t * hh + i] = (real)cos(ang);
            ws->rope_sin[t * hh + i] = (real)sin(ang);
        }
    return 0;
}

void cap_ws_free(cap_ws *ws)
{
    free(ws->mem);
    memset(ws, 0, sizeof *ws);
}

/* ---- embedding ------------------------------------------------------------ */
/* h[t,:] = emb[tok[t],:]   emb [V,D], h [T,D] */
void cap_embed_fwd(const real *emb, const int *tok, real *h, int T, int D)
{
    for (int t = 0; t < T; t++) memcpy(h + (size_t)t * D, emb + (size_t)tok[t] * D, sizeof(real) * (size_t)D);
}
void cap_embed_bwd(real *demb, const int *tok, const real *dh, int T, int D)
{
    for (int t = 0; t < T; t++) axpy(demb + (size_t)tok[t] * D, 1, dh + (size_t)t * D, D);
}

/* ---- RMSNorm ---------------------------------------------------------------- */
/* x [T,D] -> y [T,D]; rstd [T] */
void cap_rmsnorm_fwd(const real *x, const real *g, real *y, real *rstd, int T, int D, double eps)
{
    for (int t = 0; t < T; t++) {
        const real *xt = x + (size_t)t * D;
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double)xt[i] * xt[i];
        real r = (real)(1.0 / sqrt(ss / D + eps));
        rstd[t] = r;
        for (int i = 0; i < D; i++) y[(size_t)t * D + i] = g[i] * (xt[i] * r);
    }
}
/* dx_i = r * (g_i dy_i - xhat_i * mean_j(g_j dy_j xhat_j));  dg_i += dy_i xhat_i */
void cap_rmsnorm_bwd(const real *x, const real *g, const real *rstd, const real *dy,
                     real *dx, real *dg, int T, int D)
{
    for (int t = 0; t < T; t++) {
        const real *xt = x + (size_t)t * D, *dyt = dy + (size_t)t * D;
        real r = rstd[t];
        double m = 0;
        for (int i = 0; i < D; i++) m += (double)g[i] * dyt[i] * xt[i] * r;
        m /= D;
        for (int i = 0; i < D; i++) {
            real xh = xt[i] * r;
            if (dx) dx[(size_t)t * D + i] += r * (g[i] * dyt[i] - xh * (real)m);
            if (dg) dg[i] += dyt[i] * xh;
        }
    }
}

/* ---- linear ----------------------------------------------------------------- */
/* y[T,O] = x[T,I] Wt[I,O]: every output row built with vector multiply-adds. */
void cap_matmul_nn(const real *x, const real *wt, real *y, int T, int I, int O)
{
    for (int t = 0; t < T; t++) {
        const real *xt = x + (size_t)t * I;
        real *yt = y + (size_t)t * O;
        memset(yt, 0, sizeof(real) * (size_t)O);
        int i = 0;
        for (; i + 4 <= I; i += 4)
            axpy4(yt, xt[i], wt + (size_t)i * O, xt[i + 1], wt + (size_t)(i + 1) * O, xt[i + 2],
                  wt + (size_t)(i + 2) * O, xt[i + 3], wt + (size_t)(i + 3) * O, O);
        for (; i < I; i++) axpy(yt, xt[i], wt + (size_t)i * O, O);
    }
}

/* y[T,O] = x[T,I] W[O,I]^T.  Small weights are transposed into a stack buffer
 * so every output row is built with vector multiply-adds (no horizontal sums);
 * larger ones use four dot products at a time. */
#define LINEAR_T_MAX 16384
void cap_linear_fwd(const real *x, const real *W, real *y, int T, int I, int O)
{
    if ((size_t)I * O <= LINEAR_T_MAX && T >= 4) {
        real wt[LINEAR_T_MAX];                   /* W^T [I,O] */
        for (int o = 0; o < O; o++)
            for (int i = 0; i < I; i++) wt[(size_t)i * O + o] = W[(size_t)o * I + i];
        cap_matmul_nn(x, wt, y, T, I, O);
        return;
    }
    for (int t = 0; t < T; t++) {
        const real *xt = x + (size_t)t * I;
        real *yt = y + (size_t)t * O;
        int o = 0;
        for (; o + 4 <= O; o += 4)
            dot4(xt, W + (size_t)o * I, W + (size_t)(o + 1) * I, W + (size_t)(o + 2) * I,
                 W + (size_t)(o + 3) * I, I, yt + o);
        for (; o < O; o++) yt[o] = dot(xt, W + (size_t)o * I, I);
    }
}
/* dx[T,I] += dy[T,O] W[O,I];  dW[O,I] += dy^T[O,T] x[T,I] */
void cap_linear_bwd(const real *x, const real *W, const real *dy, real *dx, real *dW, int T, int I, int O)
{
    if (dx)
        for (int t = 0; t < T; t++) {
            const real *d = dy + (size_t)t * O;
            real *dxt = dx + (size_t)t * I;
            int o = 0;
            for (; o + 4 <= O; o += 4)
                axpy4(dxt, d[o], W + (size_t)o * I, d[o + 1], W + (size_t)(o + 1) * I, d[o + 2],
                      W + (size_t)(o + 2) * I, d[o + 3], W + (size_t)(o + 3) * I, I);
            for (; o < O; o++) axpy(dxt, d[o], W + (size_t)o * I, I);
        }
    if (dW)
        for (int o = 0; o < O; o++) {
            real *dw = dW + (size_t)o * I;
            int t = 0;
            for (; t + 4 <= T; t += 4)
                axpy4(dw, dy[(size_t)t * O + o], x + (size_t)t * I, dy[(size_t)(t + 1) * O + o],
                      x + (size_t)(t + 1) * I, dy[(size_t)(t + 2) * O + o], x + (size_t)(t + 2) * I,
                      dy[(size_t)(t + 3) * O + o], x + (size_t)(t + 3) * I, I);
            for (; t < T; t++) axpy(dw, dy[(size_t)t * O + o], x + (size_t)t * I, I);
        }
}

/* ---- short-conv block (LFM2 "LIV conv") --------------------------------------- */
/* [B|C|X] = x W_in^T [T,3D]; v = B*X; z[t,c] = sum_k w[c,k] v[t-(L-1)+k, c];
 * g = C*z; y = g W_out^T */
void cap_conv_fwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                  cap_layer_acts *a, const real *x, real *y)
{
    int D = c->D, L = c->layers[l].conv_L;
    cap_linear_fwd(x, p->w_in, a->bcx, T, D, 3 * D);
    for (int t = 0; t < T; t++) {
        const real *bcx = a->bcx + (size_t)t * 3 * D;
        for (int i = 0; i < D; i++) a->cv[(size_t)t * D + i] = bcx[i] * bcx[2 * D + i];
    }
    for (int t = 0; t < T; t++)
        for (int i = 0; i < D; i++) {
            real z = 0;
            for (int k = 0; k < L; k++) {
                int s = t - (L - 1) + k;
                if (s >= 0) z += p->w_conv[(size_t)i * L + k] * a->cv[(size_t)s * D + i];
            }
            a->cz[(size_t)t * D + i] = z;
            a->cg[(size_t)t * D + i] = a->bcx[(size_t)t * 3 * D + D + i] * z;
        }
    cap_linear_fwd(a->cg, p->w_out, y, T, D, D);
}

void cap_conv_bwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                  cap_layer_params *gp, const cap_layer_acts *a, const real *x,
                  const real *dy, real *dx, real *scratch)
{
    int D = c->D, L = c->layers[l].conv_L;
    real *dbcx = scratch;                        /* [T,3D] */
    real *dg = dbcx + (size_t)3 * T * D;         /* [T,D]  */
    real *dv = dg + (size_t)T * D;               /* [T,D]  */
    memset(dg, 0, sizeof(real) * (size_t)T * D);
    memset(dv, 0, sizeof(real) * (size_t)T * D);
    cap_linear_bwd(a->cg, p->w_out, dy, dg, gp->w_out, T, D, D);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < D; i++) {
            size_t ti = (size_t)t * D + i;
            real dz = dg[ti] * a->bcx[(size_t)t * 3 * D + D + i];
            dbcx[(size_t)t * 3 * D + D + i] = dg[ti] * a->cz[ti];      /* dC */
            for (int k = 0; k < L; k++) {
                int s = t - (L - 1) + k;
                if (s < 0) continue;
                dv[(size_t)s * D + i] += p->w_conv[(size_t)i * L + k] * dz;
                gp->w_conv[(size_t)i * L + k] += dz * a->cv[(size_t)s * D + i];
            }
        }
    for (int t = 0; t < T; t++)
        for (int i = 0; i < D; i++) {
            size_t ti = (size_t)t * D + i;
            const real *bcx = a->bcx + (size_t)t * 3 * D;
            dbcx[(size_t)t * 3 * D + i] = dv[ti] * bcx[2 * D + i];          /* dB */
            dbcx[(size_t)t * 3 * D + 2 * D + i] = dv[ti] * bcx[i];          /* dX */
        }
    cap_linear_bwd(x, p->w_in, dbcx, dx, gp->w_in, T, D, 3 * D);
}

/* ---- GQA attention with QK-norm and RoPE --------------------------------------- */
/* In-place half-split rotation of one head vector at position t. dir=+1 forward,
 * -1 applies the transpose (the backward of the rotation). */
static void rope_apply(real *x, int hd, const real *cs, const real *sn, int dir)
{
    int h2 = hd / 2;
    for (int i = 0; i < h2; i++) {
        real co = cs[i], si = dir > 0 ? sn[i] : -sn[i];
        real a = x[i], b = x[i + h2];
        x[i] = a * co - b * si;
        x[i + h2] = b * co + a * si;
    }
}

/* raw [T, n*hd] -> out: per head RMSNorm over hd with gain g (if g), then RoPE */
static void qk_prepare(const real *raw, real *out, real *rs, const real *g, int T, int n, int hd,
                       double eps, const real *rope_cos, const real *rope_sin)
{
    int h2 = hd / 2;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n; h++) {
            const real *r = raw + ((size_t)t * n + h) * hd;
            real *o = out + ((size_t)t * n + h) * hd;
            if (g) cap_rmsnorm_fwd(r, g, o, rs + (size_t)t * n + h, 1, hd, eps);
            else memcpy(o, r, sizeof(real) * (size_t)hd);
            rope_apply(o, hd, rope_cos + (size_t)t * h2, rope_sin + (size_t)t * h2, +1);
        }
}

/* d(out) -> d(raw) (overwrites draw), accumulates dg */
static void qk_prepare_bwd(const real *raw, const real *rs, const real *g, real *dout, real *draw,
                           real *dg, int T, int n, int hd, const real *rope_cos, const real *rope_sin)
{
    int h2 = hd / 2;
    memset(draw, 0, sizeof(real) * (size_t)T * n * hd);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n; h++) {
            real *d = dout + ((size_t)t * n + h) * hd;
            rope_apply(d, hd, rope_cos + (size_t)t * h2, rope_sin + (size_t)t * h2, -1);
            real *dr = draw + ((size_t)t * n + h) * hd;
            if (g) cap_rmsnorm_bwd(raw + ((size_t)t * n + h) * hd, g, rs + (size_t)t * n + h, d, dr, dg, 1, hd);
            else memcpy(dr, d, sizeof(real) * (size_t)hd);
        }
}

/* q = x Wq^T [T,nh*hd], k,v = x Wk^T, x Wv^T [T,nkv*hd]; q,k: QK-norm, RoPE;
 * p[h,t,s] = softmax_s<=t(q_th . k_s,g(h) / sqrt(hd)); o[t,h] = sum_s p v_s,g(h);
 * y = o Wo^T */
void cap_attn_fwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                  cap_layer_acts *a, const real *x, real *y, const real *rope_cos, const real *rope_sin)
{
    const cap_layer_cfg *lc = &c->layers[l];
    int D = c->D, hd = c->hd, nh = lc->nh, nkv = lc->nkv, grp = nh / nkv;
    int qd = nh * hd, kd = nkv * hd;
    real scale = (real)(1.0 / sqrt((double)hd));
    cap_linear_fwd(x, p->wq, a->qr, T, D, qd);
    cap_linear_fwd(x, p->wk, a->kr, T, D, kd);
    cap_linear_fwd(x, p->wv, a->v, T, D, kd);
    qk_prepare(a->qr, a->q, a->qrs, lc->qk_norm ? p->gq : NULL, T, nh, hd, c->eps, rope_cos, rope_sin);
    qk_prepare(a->kr, a->k, a->krs, lc->qk_norm ? p->gk : NULL, T, nkv, hd, c->eps, rope_cos, rope_sin);
    memset(a->o, 0, sizeof(real) * (size_t)T * qd);
    for (int h = 0; h < nh; h++) {
        int g = h / grp;
        for (int t = 0; t < T; t++) {
            const real *qt = a->q + ((size_t)t * nh + h) * hd;
            real *pr = a->p + ((size_t)h * T + t) * T;
            real mx = -INFINITY;
            for (int s = 0; s <= t; s++) {
                pr[s] = dot(qt, a->k + ((size_t)s * nkv + g) * hd, hd) * scale;
                if (pr[s] > mx) mx = pr[s];
            }
            double sum = 0;
            for (int s = 0; s <= t; s++) { pr[s] = (real)exp((double)(pr[s] - mx)); sum += pr[s]; }
            real inv = (real)(1.0 / sum);
            real *ot = a->o + ((size_t)t * nh + h) * hd;
            for (int s = 0; s <= t; s++) {
                pr[s] *= inv;
                axpy(ot, pr[s], a->v + ((size_t)s * nkv + g) * hd, hd);
            }
            for (int s = t + 1; s < T; s++) pr[s] = 0;
        }
    }
    cap_linear_fwd(a->o, p->wo, y, T, qd, D);
}

void cap_attn_bwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                  cap_layer_params *gp, const cap_layer_acts *a, const real *x,
                  const real *dy, real *dx, real *scratch, const real *rope_cos, const real *rope_sin)
{
    const cap_layer_cfg *lc = &c->layers[l];
    int D = c->D, hd = c->hd, nh = lc->nh, nkv = lc->nkv, grp = nh / nkv;
    size_t qd = (size_t)nh * hd, kd = (size_t)nkv * hd;
    real scale = (real)(1.0 / sqrt((double)hd));
    real *dO = scratch;                 /* [T,qd] */
    real *dq = dO + T * qd;             /* [T,qd] */
    real *dk = dq + T * qd;             /* [T,kd] */
    real *dv = dk + T * kd;             /* [T,kd] */
    real *dqr = dv + T * kd;            /* [T,qd] */
    real *dkr = dqr + T * qd;           /* [T,kd] */
    real *dp = dkr + T * kd;            /* [T]    */
    memset(dO, 0, sizeof(real) * T * qd);
    memset(dq, 0, sizeof(real) * T * qd);
    memset(dk, 0, sizeof(real) * T * kd);
    memset(dv, 0, sizeof(real) * T * kd);
    cap_linear_bwd(a->o, p->wo, dy, dO, gp->wo, T, (int)qd, D);
    for (int h = 0; h < nh; h++) {
        int g = h / grp;
        for (int t = 0; t < T; t++) {
            const real *pr = a->p + ((size_t)h * T + t) * T;
            const real *dot_ = dO + ((size_t)t * nh + h) * hd;
            double acc = 0;
            for (int s = 0; s <= t; s++) {
                dp[s] = dot(dot_, a->v + ((size_t)s * nkv + g) * hd, hd);
                axpy(dv + ((size_t)s * nkv + g) * hd, pr[s], dot_, hd);
                acc += (double)pr[s] * dp[s];
            }
            const real *qt = a->q + ((size_t)t * nh + h) * hd;
            real *dqt = dq + ((size_t)t * nh + h) * hd;
            for (int s = 0; s <= t; s++) {
                real ds = pr[s] * (dp[s] - (real)acc) * scale;
                if (ds == 0) continue;
                axpy(dqt, ds, a->k + ((size_t)s * nkv + g) * hd, hd);
                axpy(dk + ((size_t)s * nkv + g) * hd, ds, qt, hd);
            }
        }
    }
    qk_prepare_bwd(a->qr, a->qrs, lc->qk_norm ? p->gq : NULL, dq, dqr, lc->qk_norm ? gp->gq : NULL,
                   T, nh, hd, rope_cos, rope_sin);
    qk_prepare_bwd(a->kr, a->krs, lc->qk_norm ? p->gk : NULL, dk, dkr, lc->qk_norm ? gp->gk : NULL,
                   T, nkv, hd, rope_cos, rope_sin);
    cap_linear_bwd(x, p->wq, dqr, dx, gp->wq, T, D, (int)qd);
    cap_linear_bwd(x, p->wk, dkr, dx, gp->wk, T, D, (int)kd);
    cap_linear_bwd(x, p->wv, dv, dx, gp->wv, T, D, (int)kd);
}

/* ---- SwiGLU --------------------------------------------------------------------- */
static inline real silu(real u) { return u * sigm(u); }

/* u1 = x W1^T, u3 = x W3^T [T,F]; m = silu(u1) * u3; y = m W2^T */
static void swiglu_core_fwd(const real *x, const real *w1, const real *w3, const real *w2,
                            real *u1, real *u3, real *m, real *y, int T, int D, int F)
{
    cap_linear_fwd(x, w1, u1, T, D, F);
    cap_linear_fwd(x, w3, u3, T, D, F);
    for (size_t i = 0; i < (size_t)T * F; i++) m[i] = silu(u1[i]) * u3[i];
    cap_linear_fwd(m, w2, y, T, F, D);
}

static void swiglu_core_bwd(const real *x, const real *w1, const real *w3, const real *w2,
                            const real *u1, const real *u3, const real *m, const real *dy,
                            real *dx, real *dw1, real *dw3, real *dw2, real *scratch, int T, int D, int F)
{
    size_t n = (size_t)T * F;
    real *dm = scratch, *du1 = dm + n, *du3 = du1 + n;
    memset(dm, 0, sizeof(real) * n);
    cap_linear_bwd(m, w2, dy, dm, dw2, T, F, D);
    for (size_t i = 0; i < n; i++) {
        real sg = sigm(u1[i]);                    /* silu'(u) = s (1 + u (1 - s)) */
        du1[i] = dm[i] * u3[i] * sg * (1 + u1[i] * (1 - sg));
        du3[i] = dm[i] * u1[i] * sg;
    }
    cap_linear_bwd(x, w1, du1, dx, dw1, T, D, F);
    cap_linear_bwd(x, w3, du3, dx, dw3, T, D, F);
}

void cap_swiglu_fwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                    cap_layer_acts *a, const real *x, real *y)
{
    swiglu_core_fwd(x, p->w1, p->w3, p->w2, a->u1, a->u3, a->m, y, T, c->D, c->layers[l].F);
}

void cap_swiglu_bwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                    cap_layer_params *gp, const cap_layer_acts *a, const real *x,
                    const real *dy, real *dx, real *scratch)
{
    swiglu_core_bwd(x, p->w1, p->w3, p->w2, a->u1, a->u3, a->m, dy, dx, gp->w1, gp->w3, gp->w2,
                    scratch, T, c->D, c->layers[l].F);
}

/* ---- MoE (LFM2-MoE: sigmoid router, top-k, normalised weights) -------------------- */
/* per token: s = sigmoid(Wg x) [E]; S = top-k of s (+ selection bias, 0 here);
 * w_e = s_e / (sum_S s + 1e-6); y = sum_{e in S} w_e * SwiGLU_e(x) */
void cap_moe_fwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                 cap_layer_acts *a, const real *x, real *y)
{
    const cap_layer_cfg *lc = &c->layers[l];
    int D = c->D, E = lc->E, K = lc->K, Fe = lc->Fe;
    memset(y, 0, sizeof(real) * (size_t)T * D);
    for (int t = 0; t < T; t++) {
        const real *xt = x + (size_t)t * D;
        real *s = a->s + (size_t)t * E;
        for (int e = 0; e < E; e++) s[e] = sigm(dot(xt, p->wg + (size_t)e * D, D));
        int *sel = a->sel + (size_t)t * K;
        double z = 1e-6;
        for (int k = 0; k < K; k++) {       /* top-k, ties to the lower index */
            int best = -1;
            for (int e = 0; e < E; e++) {
                int used = 0;
                for (int j = 0; j < k; j++) used |= sel[j] == e;
                if (!used && (best < 0 || s[e] > s[best])) best = e;
            }
            sel[k] = best;
            z += s[best];
        }
        for (int k = 0; k < K; k++) {
            int e = sel[k];
            size_t tk = (size_t)t * K + k;
            a->wsel[tk] = (real)(s[e] / z);
            real *eo = a->eo + tk * D;
            swiglu_core_fwd(xt, p->w1 + (size_t)e * Fe * D, p->w3 + (size_t)e * Fe * D,
                            p->w2 + (size_t)e * D * Fe, a->u1 + tk * Fe, a->u3 + tk * Fe,
                            a->m + tk * Fe, eo, 1, D, Fe);
            axpy(y + (size_t)t * D, a->wsel[tk], eo, D);
        }
    }
}

void cap_moe_bwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                 cap_layer_params *gp, const cap_layer_acts *a, const real *x,
                 const real *dy, real *dx, real *scratch)
{
    const cap_layer_cfg *lc = &c->layers[l];
    int D = c->D, E = lc->E, K = lc->K, Fe = lc->Fe;
    real *deo = scratch;                /* [D]      */
    real *dw = deo + D;                 /* [K] <= E */
    real *core = dw + E;                /* [3*Fe]   */
    for (int t = 0; t < T; t++) {
        const real *xt = x + (size_t)t * D, *dyt = dy + (size_t)t * D;
        real *dxt = dx ? dx + (size_t)t * D : NULL;
        const real *s = a->s + (size_t)t * E;
        const int *sel = a->sel + (size_t)t * K;
        double z = 1e-6, acc = 0;
        for (int k = 0; k < K; k++) {
            int e = sel[k];
            size_t tk = (size_t)t * K + k;
            z += s[e];
            dw[k] = dot(dyt, a->eo + tk * D, D);         /* d loss / d w_k */
            acc += (double)dw[k] * a->wsel[tk];
            for (int i = 0; i < D; i++) deo[i] = a->wsel[tk] * dyt[i];
            swiglu_core_bwd(xt, p->w1 + (size_t)e * Fe * D, p->w3 + (size_t)e * Fe * D,
                            p->w2 + (size_t)e * D * Fe, a->u1 + tk * Fe, a->u3 + tk * Fe,
                            a->m + tk * Fe, deo, dxt, gp->w1 + (size_t)e * Fe * D,
                            gp->w3 + (size_t)e * Fe * D, gp->w2 + (size_t)e * D * Fe, core, 1, D, Fe);
        }
        for (int k = 0; k < K; k++) {       /* through w = s/z and s = sigmoid(logit) */
            int e = sel[k];
            real ds = (real)((dw[k] - acc) / z);
            real dlogit = ds * s[e] * (1 - s[e]);
            axpy(gp->wg + (size_t)e * D, dlogit, xt, D);
            if (dxt) axpy(dxt, dlogit, p->wg + (size_t)e * D, D);
        }
    }
}

/* ---- tied head + cross-entropy ------------------------------------------------- */
/* logits[v] = emb[v] . z; loss = -log softmax(logits)[y]; returns loss, writes
 * dz (+=) and accumulates demb if the pointers are given. */
static double xent_row(const cap_model_cfg *c, const real *emb, real *demb, const real *z, real *dz,
                       real *logits, int y, double scale, int *hit)
{
    int V = c->V, D = c->D;
    real mx = -INFINITY;
    int arg = 0;
    for (int v = 0; v < V; v++) {
        logits[v] = dot(emb + (size_t)v * D, z, D);
        if (logits[v] > mx) { mx = logits[v]; arg = v; }
    }
    double sum = 0;
    for (int v = 0; v < V; v++) sum += exp((double)(logits[v] - mx));
    double loss = -((double)(logits[y] - mx) - log(sum));
    *hit = arg == y;
    if (dz) {
        for (int v = 0; v < V; v++) {
            double pv = exp((double)(logits[v] - mx)) / sum;
            real d = (real)((pv - (v == y)) * scale);
            if (d == 0) continue;
            axpy(dz, d, emb + (size_t)v * D, D);
            if (demb) axpy(demb + (size_t)v * D, d, z, D);
        }
    }
    return loss;
}

double cap_head_loss(const cap_model_cfg *c, const cap_params *p, cap_params *g, cap_ws *ws,
                     const int *targets, int T, double scale, real *dhn, int *correct, int *graded)
{
    int D = c->D;
    double loss = 0;
    int hit;
    *correct = 0;
    *graded = 0;
    if (dhn) memset(dhn, 0, sizeof(real) * (size_t)T * D);
    if (c->readout > 0) {
        /* compression: slot i decodes from z_i = hn[T-1] * readout[i] (bottleneck) */
        const real *hl = ws->hn + (size_t)(T - 1) * D;
        real *z = ws->scratch, *dz = z + D;
        for (int i = 0; i < c->readout; i++) {
            const real *ri = p->readout + (size_t)i * D;
            for (int d = 0; d < D; d++) { z[d] = hl[d] * ri[d]; dz[d] = 0; }
            loss += xent_row(c, p->emb, g ? g->emb : NULL, z, dhn ? dz : NULL, ws->logits, targets[i],
                             scale, &hit);
            *correct += hit;
            (*graded)++;
            if (dhn)
                for (int d = 0; d < D; d++) {
                    dhn[(size_t)(T - 1) * D + d] += dz[d] * ri[d];
                    if (g) g->readout[(size_t)i * D + d] += dz[d] * hl[d];
                }
        }
        return loss;
    }
    for (int t = 0; t < T; t++) {
        if (targets[t] < 0) continue;
        loss += xent_row(c, p->emb, g ? g->emb : NULL, ws->hn + (size_t)t * D,
                         dhn ? dhn + (size_t)t * D : NULL, ws->logits, targets[t], scale, &hit);
        *correct += hit;
        (*graded)++;
    }
    return loss;
}

/* ---- whole model ------------------------------------------------------------------ */
void cap_model_forward(const cap_model_cfg *c, const cap_params *p, cap_ws *ws, const int *tok, int T)
{
    int D = c->D;
    size_t n = (size_t)T * D;
    cap_embed_fwd(p->emb, tok, ws->h[0], T, D);
    for (int l = 0; l < c->n_layers; l++) {
        const cap_layer_cfg *lc = &c->layers[l];
        const cap_layer_params *lp = &p->layer[l];
        cap_layer_acts *a = &ws->L[l];
        const real *hin = ws->h[l];
        real *tmp = ws->dh;                      /* mixer / ffn output before the residual add */
        cap_rmsnorm_fwd(hin, lp->norm1, a->a, a->rs1, T, D, c->eps);
        if (lc->mixer == CAP_CONV) cap_conv_fwd(c, l, T, lp, a, a->a, tmp);
        else cap_attn_fwd(c, l, T, lp, a, a->a, tmp, ws->rope_cos, ws->rope_sin);
        for (size_t i = 0; i < n; i++) a->h_mid[i] = hin[i] + tmp[i];
        cap_rmsnorm_fwd(a->h_mid, lp->norm2, a->b, a->rs2, T, D, c->eps);
        if (lc->ffn == CAP_SWIGLU) cap_swiglu_fwd(c, l, T, lp, a, a->b, tmp);
        else cap_moe_fwd(c, l, T, lp, a, a->b, tmp);
        for (size_t i = 0; i < n; i++) ws->h[l + 1][i] = a->h_mid[i] + tmp[i];
    }
    cap_rmsnorm_fwd(ws->h[c->n_layers], p->norm_f, ws->hn, ws->rsf, T, D, c->eps);
}

/* Expects ws->dh2 = d loss / d hn (from cap_head_loss). */
void cap_model_backward(const cap_model_cfg *c, const cap_params *p, cap_params *g, cap_ws *ws,
                        const int *tok, int T)
{
    int D = c->D;
    size_t n = (size_t)T * D;
    real *dh = ws->dh, *dtmp = ws->dh2;
    memset(dh, 0, sizeof(real) * n);
    cap_rmsnorm_bwd(ws->h[c->n_layers], p->norm_f, ws->rsf, ws->dh2, dh, g->norm_f, T, D);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        const cap_layer_cfg *lc = &c->layers[l];
        const cap_layer_params *lp = &p->layer[l];
        cap_layer_params *gl = &g->layer[l];
        const cap_layer_acts *a = &ws->L[l];
        /* dh is d/d h_out = d/d h_mid (residual) + through the ffn */
        memset(dtmp, 0, sizeof(real) * n);
        if (lc->ffn == CAP_SWIGLU) cap_swiglu_bwd(c, l, T, lp, gl, a, a->b, dh, dtmp, ws->scratch);
        else cap_moe_bwd(c, l, T, lp, gl, a, a->b, dh, dtmp, ws->scratch);
        cap_rmsnorm_bwd(a->h_mid, lp->norm2, a->rs2, dtmp, dh, gl->norm2, T, D);
        memset(dtmp, 0, sizeof(real) * n);
        if (lc->mixer == CAP_CONV) cap_conv_bwd(c, l, T, lp, gl, a, a->a, dh, dtmp, ws->scratch);
        else cap_attn_bwd(c, l, T, lp, gl, a, a->a, dh, dtmp, ws->scratch, ws->rope_cos, ws->rope_sin);
        cap_rmsnorm_bwd(ws->h[l], lp->norm1, a->rs1, dtmp, dh, gl->norm1, T, D);
    }
    cap_embed_bwd(g->emb, tok, dh, T, D);
}

double cap_model_step(const cap_model_cfg *c, const cap_params *p, cap_params *g, cap_ws *ws,
                      const int *tok, const int *targets, int T, double scale, int *correct, int *graded)
{
    cap_model_forward(c, p, ws, tok, T);
    double loss = cap_head_loss(c, p, g, ws, targets, T, scale, g ? ws->dh2 : NULL, correct, graded);
    if (g) cap_model_backward(c, p, g, ws, tok, T);
    return loss;
}
