/* rt_forward.c - the forward pass of the variant (reference sheet section 3):
 * embeddings, pre-norm layers (gated short conv with rolling state, or GQA with
 * optional QK-norm, NeoX RoPE and a KV cache), SwiGLU or MoE FFN, final norm
 * and output head.  Prompts run as chunks of tokens through matrix-matrix
 * kernels; decode is the same code with one token.  The KV cache keeps keys
 * in transposed blocks of RT_KB positions so scores need no horizontal sums,
 * and attention runs in tiles of up to RT_AQ queries (the heads of one KV
 * group times a few tokens) that share every key and value load.  Per-block-
 * kind times are accumulated with a monotonic clock for the bench "share"
 * report. */
#define _GNU_SOURCE
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "rt.h"


struct rt_state {
    const rt_model *m;
    rt_pool *pool;
    int ctx_cap, pos, chunk, kv_f16;
    int saved_pos;
    /* keys [kv head][kv_cap / RT_KB][hd][RT_KB] (blocks of positions,
     * transposed, see rt_attn_scores); values [kv head][kv_cap][hd] */
    void *k[SHV_N_LAYERS], *v[SHV_N_LAYERS];
    int kv_cap;                               /* ctx_cap rounded up to RT_KB */
    float *conv[SHV_N_LAYERS];                /* [L-1][H] oldest first */
    float *conv_saved;
    size_t conv_total;
    uint64_t kv_bytes;
    /* scratch, chunk rows each */
    float *h, *x, *o, *y, *a, *b, *vwin, *gx;
    int ldy, lda, ldb;
    int8_t *qs; float *qd, *qds; uint8_t *qgx, *qgx4;
    int8_t *kq; float *kd; int16_t *kbs;   /* q8_K activations (k-quant weights) */
    float *rope_cos, *rope_sin;               /* [ctx_cap][hd/2] */
    float *rlog, *selw; int *sel, *elist;     /* moe */
    int kmax_act;
    double times[RT_T_COUNT];
    atomic_int oom;                           /* a worker could not get scratch */
    void *owned[32]; int n_owned;
};

double rt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *st_alloc(rt_state *s, size_t bytes)
{
    if (s->n_owned >= 32) return NULL;
    void *p = rt_alloc64(bytes);
    if (p) { memset(p, 0, (bytes + 63) / 64 * 64 + 64); s->owned[s->n_owned++] = p; }
    return p;
}

static int imax(int a, int b) { return a > b ? a : b; }

static void rope_tables(rt_state *s)
{
    int half = SHV_HEAD_DIM / 2;
    float inv[SHV_HEAD_DIM / 2 + 1];
    for (int i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)SHV_HEAD_DIM;
        inv[i] = 1.0f / powf((float)SHV_ROPE_THETA, e);
    }
#if SHV_ROPE_SCALING == 1
    if (s->m->rope_freqs) {   /* the file's divisors, as llama.cpp applies them */
        for (int i = 0; i < half; i++) inv[i] /= s->m->rope_freqs[i];
    } else {   /* HF _compute_llama3_parameters */
        const float factor = (float)SHV_ROPE_FACTOR, lo = (float)SHV_ROPE_LOW_FREQ,
                    hi = (float)SHV_ROPE_HIGH_FREQ, old = (float)SHV_ROPE_ORIG_CTX;
        const float lo_wl = old / lo, hi_wl = old / hi;
        for (int i = 0; i < half; i++) {
            float wl = 2.0f * 3.14159265358979f / inv[i];
            float f = wl > lo_wl ? inv[i] / factor : inv[i];
            float smooth = (old / wl - lo) / (hi - lo);
            float smoothed = (1.0f - smooth) * f / factor + smooth * f;
            if (!(wl < hi_wl) && !(wl > lo_wl)) f = smoothed;
            inv[i] = f;
        }
    }
#endif
    for (int p = 0; p < s->ctx_cap; p++)
        for (int i = 0; i < half; i++) {
            float ang = (float)p * inv[i];
            s->rope_cos[(size_t)p * half + i] = (float)cos((double)ang);
            s->rope_sin[(size_t)p * half + i] = (float)sin((double)ang);
        }
}

rt_state *rt_state_create(const rt_model *m, rt_pool *pool, int ctx_cap, int max_chunk,
                          int kv_f16, char *err, size_t cap)
{
    rt_state *s = calloc(1, sizeof *s);
    if (!s) { snprintf(err, cap, "state: out of memory"); return NULL; }
    const int H = SHV_HIDDEN, hd = SHV_HEAD_DIM;
    int C = max_chunk < 1 ? 1 : max_chunk;
    s->m = m; s->pool = pool; s->ctx_cap = ctx_cap < 1 ? 1 : ctx_cap; s->chunk = C; s->kv_f16 = kv_f16;
    s->kv_cap = (s->ctx_cap + RT_KB - 1) / RT_KB * RT_KB;
    int maxK = H, maxA = 3 * H, maxB = 1, maxY = H, maxL = 1, maxE = 1, maxTop = 1;
    size_t conv_total = 0;
    for (int l = 0; l < SHV_N_LAYERS; l++) {
        const rt_layer_cfg *c = &rt_layers[l];
        if (c->mixer == SHV_CONV) {
            maxL = imax(maxL, c->conv_kernel);
            conv_total += (size_t)(c->conv_kernel - 1) * H;
        } else {
            int qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
            maxK = imax(maxK, qd); maxY = imax(maxY, qd); maxA = imax(maxA, qd + 2 * kvd);
        }
        if (c->ffn == SHV_SWIGLU) { maxK = imax(maxK, c->width); maxA = imax(maxA, c->width); maxB = imax(maxB, c->width); }
        else {
            maxK = imax(maxK, c->expert_width); maxA = imax(maxA, c->expert_width);
            maxB = imax(maxB, c->expert_width); maxE = imax(maxE, c->n_experts); maxTop = imax(maxTop, c->top_k);
        }
    }
    s->ldy = maxY; s->lda = maxA; s->ldb = maxB; s->kmax_act = maxK;
    s->conv_total = conv_total;
    int ok = 1;
#define AL(dst, bytes) do { if (!((dst) = st_alloc(s, (bytes)))) ok = 0; } while (0)
    AL(s->h, (size_t)C * H * 4);
    AL(s->x, (size_t)C * H * 4);
    AL(s->o, (size_t)C * H * 4);
    AL(s->gx, (size_t)C * H * 4);
    AL(s->y, (size_t)C * maxY * 4);
    AL(s->a, (size_t)C * maxA * 4);
    AL(s->b, (size_t)C * maxB * 4);
    AL(s->vwin, (size_t)(C + maxL) * H * 4);
    AL(s->qs, (size_t)C * maxK);
    AL(s->qd, (size_t)C * (maxK / RT_QK + 1) * 4);
    AL(s->qds, (size_t)C * (maxK / RT_QK + 1) * 4);
    AL(s->qgx, (size_t)C * (maxK / (16 * RT_QK) + 1) * RT_GX_BYTES);
    AL(s->qgx4, (size_t)(maxK / (16 * RT_QK) + 1) * RT_GX_BYTES);
    AL(s->kq, (size_t)C * maxK);
    AL(s->kd, (size_t)C * (maxK / RT_QKK + 1) * 4);
    AL(s->kbs, (size_t)C * (maxK / 16 + 1) * 2);
    AL(s->rope_cos, (size_t)s->ctx_cap * (hd / 2) * 4);
    AL(s->rope_sin, (size_t)s->ctx_cap * (hd / 2) * 4);
    AL(s->rlog, (size_t)C * maxE * 4);
    AL(s->selw, (size_t)C * maxTop * 4);
    AL(s->sel, (size_t)C * maxTop * 4);
    AL(s->elist, (size_t)C * maxTop * 4 + 4);
    AL(s->conv_saved, conv_total * 4 + 4);
#undef AL
    if (!ok) { rt_state_free(s); snprintf(err, cap, "state: out of memory for scratch buffers"); return NULL; }
    for (int l = 0; l < SHV_N_LAYERS && ok; l++) {
        const rt_layer_cfg *c = &rt_layers[l];
        if (c->mixer == SHV_CONV) {
            s->conv[l] = calloc((size_t)(c->conv_kernel - 1) * H + 1, 4);
            ok = s->conv[l] != NULL;
        } else {
            size_t n = (size_t)c->n_kv_heads * s->kv_cap * hd * (kv_f16 ? 2 : 4);
            /* zeroed (untouched pages cost no memory): the unused lanes of a
             * key block hold numbers, never garbage */
            s->k[l] = calloc(n, 1);
            s->v[l] = malloc(n);
            ok = s->k[l] && s->v[l];
            s->kv_bytes += 2 * n;
        }
    }
    if (!ok) {
        rt_state_free(s);
        snprintf(err, cap, "state: out of memory for the KV cache of %d tokens", ctx_cap);
        return NULL;
    }
    rope_tables(s);
    rt_state_reset(s);
    return s;
}

void rt_state_free(rt_state *s)
{
    if (!s) return;
    for (int l = 0; l < SHV_N_LAYERS; l++) { free(s->conv[l]); free(s->k[l]); free(s->v[l]); }
    for (int i = 0; i < s->n_owned; i++) free(s->owned[i]);
    free(s);
}

void rt_state_reset(rt_state *s)
{
    s->pos = 0;
    for (int l = 0; l < SHV_N_LAYERS; l++)
        if (s->conv[l]) memset(s->conv[l], 0, (size_t)(rt_layers[l].conv_kernel - 1) * SHV_HIDDEN * 4);
}

int rt_state_pos(const rt_state *s) { return s->pos; }
uint64_t rt_state_kv_bytes(const rt_state *s) { return s->kv_bytes; }
uint64_t rt_state_conv_state_bytes(const rt_state *s) { return (uint64_t)s->conv_total * 4; }
double *rt_state_times(rt_state *s) { return s->times; }

int rt_state_save(rt_state *s)
{
    size_t off = 0;
    for (int l = 0; l < SHV_N_LAYERS; l++)
        if (s->conv[l]) {
            size_t n = (size_t)(rt_layers[l].conv_kernel - 1) * SHV_HIDDEN;
            memcpy(s->conv_saved + off, s->conv[l], n * 4);
            off += n;
        }
    s->saved_pos = s->pos;
    return 0;
}

void rt_state_restore(rt_state *s)
{
    size_t off = 0;
    for (int l = 0; l < SHV_N_LAYERS; l++)
        if (s->conv[l]) {
            size_t n = (size_t)(rt_layers[l].conv_kernel - 1) * SHV_HIDDEN;
            memcpy(s->conv[l], s->conv_saved + off, n * 4);
            off += n;
        }
    s->pos = s->saved_pos;
}

/* ---- helpers ------------------------------------------------------------ */

/* RMS norm as ggml's rms_norm computes it (then a separate multiply by the
 * gain): the squares rounded to f32, summed in double in index order, the
 * mean divided in double and rounded to f32, 1/sqrtf(mean + eps) in f32.
 * (The 16-lane f32 sum of rt_sumsq left the norm's output a last bit away
 * from llama.cpp's on some rows, enough to flip a later q8 activation
 * rounding.)  Scalar, so the same bits on every path. */
static float mean_sq_ggml(const float *x, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)(x[i] * x[i]);
    return (float)(s / n);
}

static void rmsnorm(float *out, const float *x, const float *g, int n)
{
    float r = 1.0f / sqrtf(mean_sq_ggml(x, n) + (float)SHV_NORM_EPS);
    for (int i = 0; i < n; i++) out[i] = (x[i] * r) * g[i];
}

static rt_act make_act(rt_state *s, const float *x, size_t ldx, int T, int K)
{
    rt_act a = { T, K, x, ldx, s->qs, s->qd, s->qds, NULL, NULL, 0, 0, s->kq, s->kd, s->kbs, 0 };
#if defined(RT_SIMD_AVX512)
    a.gx = s->qgx;
#if defined(__AVX512VBMI__)
    /* decode: the q8_0 permute kernel reads gx4, packed weights gx */
    if (T == 1 && (!s->m->packed || s->m->ggml_q8)) a.gx4 = s->qgx4;
#endif
    a.gx_too = s->m->packed;
#endif
    return a;
}

typedef struct rows_job {
    rt_state *s; int T, l; int kind;
} rows_job;

enum { RJ_NORM_ATTN, RJ_NORM_FFN, RJ_NORM_FINAL, RJ_SWIGLU, RJ_RESID, RJ_QKROPE, RJ_CONV };

static void conv_channels(rt_state *s, int l, int T, int c0, int c1);
static void qk_rope(rt_state *s, int l, int t);

static void rows_range(void *ctx, int b, int e)
{
    rows_job *j = ctx;
    rt_state *s = j->s;
    const int H = SHV_HIDDEN;
    if (j->kind == RJ_CONV) { conv_channels(s, j->l, j->T, b, e); return; }
    for (int t = b; t < e; t++) {
        switch (j->kind) {
        case RJ_NORM_ATTN: rmsnorm(s->x + (size_t)t * H, s->h + (size_t)t * H, s->m->L[j->l].attn_norm, H); break;
        case RJ_NORM_FFN: rmsnorm(s->x + (size_t)t * H, s->h + (size_t)t * H, s->m->L[j->l].ffn_norm, H); break;
        case RJ_NORM_FINAL: rmsnorm(s->x + (size_t)t * H, s->h + (size_t)t * H, s->m->final_norm, H); break;
        case RJ_SWIGLU: {
            int F = rt_layers[j->l].width;
            float *g = s->a + (size_t)t * s->lda, *u = s->b + (size_t)t * s->ldb;
            rt_silu_mul(g, u, F);
            break;
        }
        case RJ_RESID: {
            float *h = s->h + (size_t)t * H, *o = s->o + (size_t)t * H;
            for (int i = 0; i < H; i++) h[i] += o[i];
            break;
        }
        case RJ_QKROPE: qk_rope(s, j->l, t); break;
        default: break;
        }
    }
}

static void run_rows(rt_state *s, int kind, int l, int T)
{
    rows_job j = { s, T, l, kind };
    if (kind == RJ_CONV) {
        if (T == 1) conv_channels(s, l, T, 0, SHV_HIDDEN);
        else rt_pool_for(s->pool, SHV_HIDDEN, 64, rows_range, &j);
    } else {
        rt_pool_for(s->pool, T, 1, rows_range, &j);
    }
}

/* ---- short conv ----------------------------------------------------------- */

/* channels [c0,c1): window = state rows then v = B*X of the T new tokens;
 * y = C * causal_conv(v); the state keeps the last L-1 rows of v. */
static void conv_channels(rt_state *s, int l, int T, int c0, int c1)
{
    const int H = SHV_HIDDEN, L = rt_layers[l].conv_kernel;
    const float *w = s->m->L[l].conv_w;
    float *st = s->conv[l], *win = s->vwin;
    for (int r = 0; r < L - 1; r++)
        memcpy(win + (size_t)r * H + c0, st + (size_t)r * H + c0, (size_t)(c1 - c0) * 4);
    for (int t = 0; t < T; t++) {
        const float *bcx = s->a + (size_t)t * s->lda;
        float *wr = win + (size_t)(L - 1 + t) * H;
        for (int c = c0; c < c1; c++) wr[c] = bcx[c] * bcx[2 * H + c];
    }
    for (int t = 0; t < T; t++) {
        const float *bcx = s->a + (size_t)t * s->lda;
        float *y = s->y + (size_t)t * s->ldy;
        for (int c = c0; c < c1; c++) {
            float z = 0.0f;
            for (int k = 0; k < L; k++) z += w[(size_t)c * L + k] * win[(size_t)(t + k) * H + c];
            y[c] = bcx[H + c] * z;
        }
    }
    for (int r = 0; r < L - 1; r++)
        memcpy(st + (size_t)r * H + c0, win + (size_t)(T + r) * H + c0, (size_t)(c1 - c0) * 4);
}

static void conv_block(rt_state *s, int l, int T)
{
    const int H = SHV_HIDDEN;
    const rt_layer_w *w = &s->m->L[l];
    run_rows(s, RJ_NORM_ATTN, l, T);
    rt_act a = make_act(s, s->x, H, T, H);
    rt_mm_item in = { &w->in_proj, s->a, (size_t)s->lda };
    rt_matmul(s->pool, &a, &in, 1);
    run_rows(s, RJ_CONV, l, T);
    rt_act a2 = make_act(s, s->y, (size_t)s->ldy, T, H);
    rt_mm_item out = { &w->out_proj, s->o, H };
    rt_matmul(s->pool, &a2, &out, 1);
    run_rows(s, RJ_RESID, l, T);
}

/* ---- attention -------------------------------------------------------------- */

static void head_norm(float *x, const float *g)
{
    rmsnorm(x, x, g, SHV_HEAD_DIM);
}

static void rope(float *x, const float *cs, const float *sn, int pairs)
{
    const int half = SHV_HEAD_DIM / 2;
    if (pairs) {   /* llama files: frequency i turns (x[2i], x[2i+1]) */
        for (int i = 0; i < half; i++) {
            float x0 = x[2 * i], x1 = x[2 * i + 1];
            x[2 * i] = x0 * cs[i] - x1 * sn[i];
            x[2 * i + 1] = x1 * cs[i] + x0 * sn[i];
        }
        return;
    }
    for (int i = 0; i < half; i++) {
        float x0 = x[i], x1 = x[i + half];
        x[i] = x0 * cs[i] - x1 * sn[i];
        x[i + half] = x1 * cs[i] + x0 * sn[i];
    }
}

/* q/k norm + RoPE for token t; k and v go to the cache at position pos+t */
/* x[i] = f32(f16(x[i])), round to nearest even: the F16C conversions on x86
 * give the bits of rt_f32_to_f16 / rt_f16_to_f32 */
static void round_f16(float *x, int n)
{
    int i = 0;
#if defined(RT_SIMD_AVX512)
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i),
                                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
#elif defined(RT_SIMD_AVX2)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
#endif
    for (; i < n; i++) x[i] = rt_f16_to_f32(rt_f32_to_f16(x[i]));
}

static void qk_rope(rt_state *s, int l, int t)
{
    const rt_layer_cfg *c = &rt_layers[l];
    const rt_layer_w *w = &s->m->L[l];
    const int hd = SHV_HEAD_DIM, half = hd / 2, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    int p = s->pos + t;
    float *q = s->a + (size_t)t * s->lda, *k = q + qd, *v = k + kvd;
    const float *cs = s->rope_cos + (size_t)p * half, *sn = s->rope_sin + (size_t)p * half;
    for (int h = 0; h < c->n_heads; h++) {
        if (c->qk_norm) head_norm(q + h * hd, w->q_norm);
        rope(q + h * hd, cs, sn, s->m->rope_pairs);
    }
    if (s->kv_f16 == RT_KV_F16 || s->kv_f16 == RT_KV_F16_FA)   /* llama.cpp's CPU path: q meets an f16 K as f16 */
        round_f16(q, qd);
    for (int h = 0; h < c->n_kv_heads; h++) {
        if (c->qk_norm) head_norm(k + h * hd, w->k_norm);
        rope(k + h * hd, cs, sn, s->m->rope_pairs);
        size_t off = ((size_t)h * s->kv_cap + p) * hd;
        size_t koff = ((size_t)h * s->kv_cap + (size_t)p / RT_KB * RT_KB) * hd + (size_t)p % RT_KB;
        if (s->kv_f16) {
            uint16_t *kc = (uint16_t *)s->k[l] + koff, *vc = (uint16_t *)s->v[l] + off;
            for (int i = 0; i < hd; i++) { kc[(size_t)i * RT_KB] = rt_f32_to_f16(k[h * hd + i]); vc[i] = rt_f32_to_f16(v[h * hd + i]); }
        } else {
            float *kc = (float *)s->k[l] + koff;
            for (int i = 0; i < hd; i++) kc[(size_t)i * RT_KB] = k[h * hd + i];
            memcpy((float *)s->v[l] + off, v + h * hd, (size_t)hd * 4);
        }
    }
}

typedef struct attn_job { rt_state *s; int l, T, tq; } attn_job;

/* tokens per attention tile: RT_AQ queries = heads of one KV group x tokens */
static int attn_tile_tokens(const rt_layer_cfg *c)
{
    int group = c->n_heads / c->n_kv_heads;
    return group >= RT_AQ ? 1 : RT_AQ / group;
}

/* items = (token tile, KV head): the queries of the tile's tokens and the
 * KV head's query heads run together, RT_AQ at a time, so every key block
 * and value row is loaded once per tile instead of once per query */
/* --kvtype f16-fa: llama.cpp's CPU flash attention (its default on CPU:
 * flash_attn "auto" turns it on; ggml_compute_forward_flash_attn_ext_f16 at
 * 10e9780), reproduced operation by operation for one query against keys
 * 0..len-1 of KV head base kb/vb (keys in transposed blocks of RT_KB, values
 * by row, both f16; q already rounded to f16):
 *   s = q.k summed as ggml_vec_dot_f16 on AVX-512 does (4 x 16 lanes over
 *       chunks of 64, lanes 0+2 and 1+3, then 0+1, then _mm512_reduce_add_ps's
 *       tree, the tail added in double), times 1/sqrt(hd);
 *   online softmax in key order: a new maximum M scales the accumulator by
 *   expf(Mold - M), else the key's weight is expf(s - M); the accumulator of
 *   weighted values is f16, rounded after every scale and every
 *   fma(v, w, acc); S = S*ms + vs; out = f32(acc) * (1/S).
 * The f16 accumulator is what puts llama.cpp's default 3e-4..1e-3 (of the
 * largest logit) away from its own -fa off run on the parity genomes; the
 * weights-rounded convention of --kvtype f16 matches -fa off instead.  The
 * same scalar code on every build, so every path gives the same bits. */
static float fa_score(const uint16_t *kt, const float *q, int hd)
{
    const int np = hd / 64 * 64;
    float acc[4][16] = {{0.0f}};
    for (int i = 0; i < np; i += 64)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 16; l++) {
                int d = i + 16 * j + l;
                acc[j][l] = fmaf(rt_f16_to_f32(kt[(size_t)d * RT_KB]), q[d], acc[j][l]);
            }
    float r = 0.0f;
    if (np) {
        float a[16], b[8], c[4];
        for (int l = 0; l < 16; l++) a[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
        for (int l = 0; l < 8; l++) b[l] = a[l + 8] + a[l];
        for (int l = 0; l < 4; l++) c[l] = b[l + 4] + b[l];
        r = (c[0] + c[2]) + (c[1] + c[3]);
    }
    double sum = r;
    for (int d = np; d < hd; d++) sum += (double)(rt_f16_to_f32(kt[(size_t)d * RT_KB]) * q[d]);
    return (float)sum;
}

static void fa_query(const uint16_t *kb, const uint16_t *vb, const float *q, int len, int hd, float scale,
                     uint16_t *acc, float *out)
{
    float M = -INFINITY, S = 0.0f;
    for (int d = 0; d < hd; d++) acc[d] = 0;
    for (int p = 0; p < len; p++) {
        const uint16_t *kt = kb + (size_t)p / RT_KB * RT_KB * hd + (size_t)p % RT_KB, *v = vb + (size_t)p * hd;
        float sc = fa_score(kt, q, hd) * scale, Mold = M, ms = 1.0f, vs = 1.0f;
        if (sc > M) {
            M = sc;
            ms = expf(Mold - M);
            for (int d = 0; d < hd; d++) acc[d] = rt_f32_to_f16(rt_f16_to_f32(acc[d]) * ms);
        } else {
            vs = expf(sc - M);
        }
        for (int d = 0; d < hd; d++) acc[d] = rt_f32_to_f16(fmaf(rt_f16_to_f32(v[d]), vs, rt_f16_to_f32(acc[d])));
        S = fmaf(S, ms, vs);
    }
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (int d = 0; d < hd; d++) out[d] = rt_f16_to_f32(acc[d]) * inv;
}

static void attn_range_fa(attn_job *j, int b, int e)
{
    rt_state *s = j->s;
    const rt_layer_cfg *c = &rt_layers[j->l];
    const int hd = SHV_HEAD_DIM, nkv = c->n_kv_heads, group = c->n_heads / c->n_kv_heads;
    const size_t ws = (size_t)s->kv_cap;
    const float scale = 1.0f / sqrtf((float)hd);
    uint16_t acc[SHV_HEAD_DIM];
    for (int it = b; it < e; it++) {
        int g = it % nkv, t0 = it / nkv * j->tq, t1 = t0 + j->tq < j->T ? t0 + j->tq : j->T;
        const uint16_t *kb = (const uint16_t *)s->k[j->l] + (size_t)g * ws * hd;
        const uint16_t *vb = (const uint16_t *)s->v[j->l] + (size_t)g * ws * hd;
        for (int t = t0; t < t1; t++)
            for (int h = g * group; h < (g + 1) * group; h++)
                fa_query(kb, vb, s->a + (size_t)t * s->lda + (size_t)h * hd, s->pos + t + 1, hd, scale, acc,
                         s->y + (size_t)t * s->ldy + (size_t)h * hd);
    }
}

static void attn_range(void *ctx, int b, int e)
{
    if (((attn_job *)ctx)->s->kv_f16 == RT_KV_F16_FA) { attn_range_fa(ctx, b, e); return; }

    attn_job *j = ctx;
    rt_state *s = j->s;
    const rt_layer_cfg *c = &rt_layers[j->l];
    const int hd = SHV_HEAD_DIM, nkv = c->n_kv_heads, group = c->n_heads / c->n_kv_heads;
    const size_t esz = s->kv_f16 ? 2 : 4, ws = (size_t)s->kv_cap;
    const float scale = 1.0f / sqrtf((float)hd);
    float *sc = rt_thread_floats((size_t)RT_AQ * ws);
    if (!sc) { atomic_store(&s->oom, 1); return; }
    for (int it = b; it < e; it++) {
        int g = it % nkv, t0 = it / nkv * j->tq, t1 = t0 + j->tq < j->T ? t0 + j->tq : j->T;
        const uint8_t *kb = (const uint8_t *)s->k[j->l] + (size_t)g * ws * hd * esz;
        const uint8_t *vb = (const uint8_t *)s->v[j->l] + (size_t)g * ws * hd * esz;
        int total = (t1 - t0) * group;
        for (int q0 = 0; q0 < total; q0 += RT_AQ) {
            int nq = total - q0 < RT_AQ ? total - q0 : RT_AQ, nmax = 0, len[RT_AQ];
            const float *qs[RT_AQ];
            float *outs[RT_AQ];
            for (int i = 0; i < nq; i++) {
                int t = t0 + (q0 + i) / group, h = g * group + (q0 + i) % group;
                qs[i] = s->a + (size_t)t * s->lda + (size_t)h * hd;
                outs[i] = s->y + (size_t)t * s->ldy + (size_t)h * hd;
                len[i] = s->pos + t + 1;               /* causal: positions < len */
                nmax = len[i] > nmax ? len[i] : nmax;
            }
            /* whole key blocks; lanes past a query's length are ignored */
            for (int p = 0; p < nmax; p += RT_KB)
                rt_attn_scores(qs, nq, kb + (size_t)p * hd * esz, s->kv_f16, hd, sc + p, ws);
            for (int i = 0; i < nq; i++) {
                float *w = sc + (size_t)i * ws, mx = -INFINITY;
                for (int p = 0; p < len[i]; p++) {
                    w[p] *= scale;
                    mx = w[p] > mx ? w[p] : mx;
                }
                float inv = 1.0f / rt_softmax_exp(w, len[i], mx);
                for (int p = 0; p < len[i]; p++) w[p] *= inv;
                if (s->kv_f16 == RT_KV_F16)   /* llama.cpp: the weights meet an f16 V as f16 */
                    round_f16(w, len[i]);
                for (int p = len[i]; p < nmax; p++) w[p] = 0.0f;
            }
            rt_attn_values(outs, nq, sc, ws, vb, s->kv_f16, nmax, hd);
        }
    }
}

static void attn_block(rt_state *s, int l, int T)
{
    const int H = SHV_HIDDEN, hd = SHV_HEAD_DIM;
    const rt_layer_cfg *c = &rt_layers[l];
    const rt_layer_w *w = &s->m->L[l];
    int qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    run_rows(s, RJ_NORM_ATTN, l, T);
    rt_act a = make_act(s, s->x, H, T, H);
    rt_mm_item qkv[3] = { { &w->wq, s->a, (size_t)s->lda }, { &w->wk, s->a + qd, (size_t)s->lda },
                          { &w->wv, s->a + qd + kvd, (size_t)s->lda } };
    rt_matmul(s->pool, &a, qkv, 3);
    run_rows(s, RJ_QKROPE, l, T);
    attn_job j = { s, l, T, attn_tile_tokens(c) };
    rt_pool_for(s->pool, (T + j.tq - 1) / j.tq * c->n_kv_heads, 1, attn_range, &j);
    rt_act a2 = make_act(s, s->y, (size_t)s->ldy, T, qd);
    rt_mm_item out = { &w->wo, s->o, H };
    rt_matmul(s->pool, &a2, &out, 1);
    run_rows(s, RJ_RESID, l, T);
}

/* ---- FFN ---------------------------------------------------------------------- */

static void swiglu_block(rt_state *s, int l, int T)
{
    const int H = SHV_HIDDEN;
    const rt_layer_w *w = &s->m->L[l];
    run_rows(s, RJ_NORM_FFN, l, T);
    rt_act a = make_act(s, s->x, H, T, H);
    rt_mm_item gu[2] = { { &w->w1, s->a, (size_t)s->lda }, { &w->w3, s->b, (size_t)s->ldb } };
    rt_matmul(s->pool, &a, gu, 2);
    run_rows(s, RJ_SWIGLU, l, T);
    rt_act a2 = make_act(s, s->a, (size_t)s->lda, T, rt_layers[l].width);
    rt_mm_item down = { &w->w2, s->o, H };
    rt_matmul(s->pool, &a2, &down, 1);
    run_rows(s, RJ_RESID, l, T);
}

static rt_mat sub_rows(const rt_mat *m, int r0, int n)
{
    rt_mat v = *m;
    v.rows = n;
    v.data = m->data + (size_t)r0 * m->row_bytes;
    return v;
}

typedef struct silu_job { rt_state *s; int n, F; } silu_job;
static void silu_range(void *ctx, int b, int e)
{
    silu_job *j = ctx;
    for (int t = b; t < e; t++) {
        float *g = j->s->a + (size_t)t * j->s->lda, *u = j->s->b + (size_t)t * j->s->ldb;
        rt_silu_mul(g, u, j->F);
    }
}

static void moe_route(rt_state *s, int l, int T)
{
    const rt_layer_cfg *c = &rt_layers[l];
    const rt_layer_w *w = &s->m->L[l];
    const int E = c->n_experts, K = c->top_k;
    for (int t = 0; t < T; t++) {
        float *lg = s->rlog + (size_t)t * E;
        for (int e = 0; e < E; e++) lg[e] = 1.0f / (1.0f + rt_expf(-lg[e]));
        int *sel = s->sel + (size_t)t * K;
        float *sw = s->selw + (size_t)t * K, sum = 0.0f;
        for (int k = 0; k < K; k++) {
            int best = -1;
            float bv = -INFINITY;
            for (int e = 0; e < E; e++) {
                int used = 0;
                for (int q = 0; q < k; q++) used |= sel[q] == e;
                float v = lg[e] + (w->exp_bias ? w->exp_bias[e] : 0.0f);
                if (!used && (best < 0 || v > bv)) { best = e; bv = v; }
            }
            sel[k] = best;
            sw[k] = lg[best];
            sum += sw[k];
        }
        for (int k = 0; k < K; k++) sw[k] = sw[k] / (sum + 1e-6f);
    }
}

static void moe_block(rt_state *s, int l, int T)
{
    const int H = SHV_HIDDEN;
    const rt_layer_cfg *c = &rt_layers[l];
    const rt_layer_w *w = &s->m->L[l];
    const int E = c->n_experts, K = c->top_k, Fe = c->expert_width;
    run_rows(s, RJ_NORM_FFN, l, T);
    rt_act a = make_act(s, s->x, H, T, H);
    rt_mm_item r = { &w->router, s->rlog, (size_t)E };
    rt_matmul(s->pool, &a, &r, 1);
    moe_route(s, l, T);
    for (int e = 0; e < E; e++) {
        int n = 0;
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++)
                if (s->sel[(size_t)t * K + k] == e) s->elist[n++] = t * K + k;
        if (!n) continue;
        for (int i = 0; i < n; i++)
            memcpy(s->gx + (size_t)i * H, s->x + (size_t)(s->elist[i] / K) * H, (size_t)H * 4);
        rt_mat g = sub_rows(&w->gate_exps, e * Fe, Fe), u = sub_rows(&w->up_exps, e * Fe, Fe);
        rt_mat d = sub_rows(&w->down_exps, e * H, H);
        rt_act ga = make_act(s, s->gx, H, n, H);
        rt_mm_item gu[2] = { { &g, s->a, (size_t)s->lda }, { &u, s->b, (size_t)s->ldb } };
        rt_matmul(s->pool, &ga, gu, 2);
        silu_job sj = { s, n, Fe };
        rt_pool_for(s->pool, n, 1, silu_range, &sj);
        rt_act da = make_act(s, s->a, (size_t)s->lda, n, Fe);
        rt_mm_item dn = { &d, s->o, H };
        rt_matmul(s->pool, &da, &dn, 1);
        for (int i = 0; i < n; i++) {
            int t = s->elist[i] / K;
            rt_axpy_f32(s->h + (size_t)t * H, s->o + (size_t)i * H, s->selw[s->elist[i]], H);
        }
    }
}

/* ---- top level ---------------------------------------------------------------- */

static void embed(rt_state *s, const int32_t *tok, int T)
{
    const rt_mat *e = &s->m->embd;
    for (int t = 0; t < T; t++) rt_mat_row_f32(e, tok[t], s->h + (size_t)t * SHV_HIDDEN);
}

static int forward_chunk(rt_state *s, const int32_t *tok, int T, float *logits, int all, int last)
{
    double t0 = rt_now();
    embed(s, tok, T);
    s->times[RT_T_HEAD] += rt_now() - t0;
    for (int l = 0; l < SHV_N_LAYERS; l++) {
        const rt_layer_cfg *c = &rt_layers[l];
        t0 = rt_now();
        if (c->mixer == SHV_CONV) conv_block(s, l, T);
        else attn_block(s, l, T);
        double t1 = rt_now();
        s->times[c->mixer == SHV_CONV ? RT_T_CONV : RT_T_ATTN] += t1 - t0;
        if (c->ffn == SHV_SWIGLU) swiglu_block(s, l, T);
        else moe_block(s, l, T);
        s->times[c->ffn == SHV_SWIGLU ? RT_T_SWIGLU : RT_T_MOE] += rt_now() - t1;
    }
    s->pos += T;
    if (!logits || (!all && !last)) return 0;
    t0 = rt_now();
    const int H = SHV_HIDDEN;
    int first = all ? 0 : T - 1, n = T - first;
    if (first) memcpy(s->h, s->h + (size_t)first * H, (size_t)H * 4);
    run_rows(s, RJ_NORM_FINAL, 0, n);
    rt_act a = make_act(s, s->x, H, n, H);
    rt_mm_item out = { &s->m->output, logits, (size_t)SHV_VOCAB };
    rt_matmul(s->pool, &a, &out, 1);
    s->times[RT_T_HEAD] += rt_now() - t0;
    return 0;
}

int rt_forward(rt_state *s, const int32_t *tokens, int n, float *logits, int all)
{
    if (n < 1 || s->pos + n > s->ctx_cap) return -1;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= SHV_VOCAB) return -1;
    for (int i = 0; i < n; i += s->chunk) {
        int T = n - i < s->chunk ? n - i : s->chunk;
        float *lg = logits && all ? logits + (size_t)i * SHV_VOCAB : logits;
        forward_chunk(s, tokens + i, T, lg, all, i + T == n);
    }
    return atomic_load(&s->oom) ? -1 : 0;
}
