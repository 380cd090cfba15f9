/* cap_map.c - maps a full-size genome onto the proxy the capability scorer
 * trains (the genome scaled down by one width factor), and the scorer's
 * random numbers.
 *
 * Mapping rules (documented in docs/quality-signal.md), scale factor s:
 *  - width D' = max(8, round(hidden * s)); head dim fixed at scale.head_dim
 *    (lowered to D' rounded down to even if D' is smaller); vocabulary and
 *    sequence length come from the task, not the genome.
 *  - attention: q width nh*hd*s, so nh' = max(1, round(nh*hd*s / hd')); the GQA
 *    ratio nh/nkv is kept (nkv' = nh'/ratio, lowered until it divides nh').
 *  - SwiGLU width F' = max(8, round(F * s)); MoE expert width likewise
 *    (>= 4); expert count and top-k are the genome's up to scale.max_experts
 *    (above it, top-k shrinks by the same factor, >= 1); router bias a flag.
 *  - depth and the layer pattern are the genome's exactly (every layer's mixer,
 *    kernel, heads ratio, QK-norm, FFN kind) up to scale.max_layers (default 32).
 *    A deeper genome keeps its proportion of attention layers in N slots:
 *    round(N * A / layers) (at least 1 if the genome has any, at most N-1 if it
 *    has any conv layer), placed in the slots whose share of the genome's depth
 *    holds the most attention (slot j covers genome layers
 *    [j*layers/N, (j+1)*layers/N); ties go to the later slot); each slot copies
 *    its mixer from the nearest genome layer of that kind, its FFN from the
 *    genome layer at the slot centre.
 *  - conv kernel length, QK-norm, rope theta and norm eps are the genome's. */
#include <math.h>
#include <string.h>

#include "evaluator/capability/cap_internal.h"

void cap_scale_default(cap_scale_cfg *s)
{
    s->scale = CAP_DEFAULT_SCALE;
    s->head_dim = 32;
    s->max_layers = CAP_MAX_LAYERS;
    s->max_experts = 64;
}

double cap_width_lr_mult(int D)
{
    double m = (double)CAP_REF_WIDTH / (D > 0 ? D : 1);
    return m < 1.0 / 16 ? 1.0 / 16 : (m > 4 ? 4 : m);
}

static int scaled(double x, double s, int lo)
{
    long v = lround(x * s);
    return v < lo ? lo : (int)v;
}

static void pick_attention_slots(const sh_genome *g, int N, int *is_attn)
{
    int Lg = g->n_layers, A = sh_genome_count_mixer(g, SH_MIXER_GQA);
    memset(is_attn, 0, sizeof(int) * (size_t)N);
    if (N == Lg) {
        for (int j = 0; j < N; j++) is_attn[j] = g->layers[j].mixer.kind == SH_MIXER_GQA;
        return;
    }
    int na = (int)lround((double)N * A / Lg);
    if (A > 0 && na < 1) na = 1;
    if (A < Lg && na > N - 1) na = N - 1;
    if (A == Lg) na = N;
    double dens[CAP_MAX_LAYERS];
    for (int j = 0; j < N; j++) {
        double lo = (double)j * Lg / N, hi = (double)(j + 1) * Lg / N, s = 0;
        for (int i = 0; i < Lg; i++) {
            if (g->layers[i].mixer.kind != SH_MIXER_GQA) continue;
            double a = fmax(lo, i), b = fmin(hi, i + 1.0);
            if (b > a) s += b - a;
        }
        dens[j] = s;
    }
    for (int k = 0; k < na; k++) {
        int best = -1;
        for (int j = 0; j < N; j++)
            if (!is_attn[j] && (best < 0 || dens[j] >= dens[best])) best = j;
        is_attn[best] = 1;
    }
}

static int nearest_layer_of_kind(const sh_genome *g, sh_mixer_kind kind, double centre)
{
    int best = -1;
    double bd = 0;
    for (int i = 0; i < g->n_layers; i++) {
        if (g->layers[i].mixer.kind != kind) continue;
        double d = fabs(i + 0.5 - centre);
        if (best < 0 || d < bd) { best = i; bd = d; }
    }
    return best;
}

static void map_mixer(const sh_genome *g, const sh_mixer *m, const cap_scale_cfg *s, int hd,
                      cap_layer_cfg *o)
{
    if (m->kind == SH_MIXER_CONV) {
        o->mixer = CAP_CONV;
        o->conv_L = m->conv_kernel;
        return;
    }
    o->mixer = CAP_GQA;
    o->qk_norm = m->qk_norm;
    int nh = (int)lround((double)m->n_heads * g->head_dim * s->scale / hd);
    if (nh < 1) nh = 1;
    int ratio = m->n_kv_heads > 0 ? m->n_heads / m->n_kv_heads : 1;
    if (ratio < 1) ratio = 1;
    int nkv = nh / ratio;
    if (nkv < 1) nkv = 1;
    while (nh % nkv) nkv--;
    o->nh = nh;
    o->nkv = nkv;
}

static void map_ffn(const sh_ffn *f, const cap_scale_cfg *s, cap_layer_cfg *o)
{
    if (f->kind == SH_FFN_SWIGLU) {
        o->ffn = CAP_SWIGLU;
        o->F = scaled(f->width, s->scale, 8);
        return;
    }
    o->ffn = CAP_MOE;
    o->E = f->n_experts < s->max_experts ? f->n_experts : s->max_experts;
    if (o->E < 1) o->E = 1;
    int k = (int)lround((double)f->top_k * o->E / (f->n_experts > 0 ? f->n_experts : 1));
    o->K = k < 1 ? 1 : (k > o->E ? o->E : k);
    o->Fe = scaled(f->expert_width, s->scale, 4);
    o->router_bias = f->router_bias;
}

int cap_map_genome(const sh_genome *g, const cap_scale_cfg *s, cap_model_cfg *out, sh_err *err)
{
    if (g->n_layers < 1) return sh_err_set(err, "capability: genome has no layers");
    if (!(s->scale > 0 && s->scale <= 1))
        return sh_err_set(err, "capability: scale %g out of range (0, 1]", s->scale);
    if (s->head_dim < 2 || s->head_dim % 2 || s->head_dim > 256)
        return sh_err_set(err, "capability: proxy head_dim %d must be even, 2..256", s->head_dim);
    if (s->max_layers < 1 || s->max_layers > CAP_MAX_LAYERS)
        return sh_err_set(err, "capability: max_layers %d out of range 1..%d", s->max_layers, CAP_MAX_LAYERS);
    if (s->max_experts < 1 || s->max_experts > 64)
        return sh_err_set(err, "capability: max_experts %d out of range 1..64", s->max_experts);
    memset(out, 0, sizeof *out);
    int D = scaled(g->hidden, s->scale, 8);
    if (D > 2048)
        return sh_err_set(err, "capability: proxy width %d (hidden %d x scale %g) above 2048; use a smaller --scale",
                          D, g->hidden, s->scale);
    int hd = s->head_dim <= D ? s->head_dim : (D / 2) * 2;
    int N = g->n_layers < s->max_layers ? g->n_layers : s->max_layers;
    int is_attn[CAP_MAX_LAYERS];
    pick_attention_slots(g, N, is_attn);
    out->D = D;
    out->hd = hd;
    out->theta = g->rope_theta > 0 ? g->rope_theta : 10000.0;
    out->eps = g->norm_eps > 0 ? g->norm_eps : 1e-5;
    out->n_layers = N;
    for (int j = 0; j < N; j++) {
        double centre = (j + 0.5) * g->n_layers / N;
        int src = nearest_layer_of_kind(g, is_attn[j] ? SH_MIXER_GQA : SH_MIXER_CONV, centre);
        int fsrc = (int)centre;
        if (src < 0 || fsrc >= g->n_layers) return sh_err_set(err, "capability: layer mapping failed at slot %d", j);
        map_mixer(g, &g->layers[src].mixer, s, hd, &out->layers[j]);
        map_ffn(&g->layers[fsrc].ffn, s, &out->layers[j]);
        if (out->layers[j].mixer == CAP_CONV && (out->layers[j].conv_L < 1 || out->layers[j].conv_L > SH_LIMIT_CONV_KERNEL))
            return sh_err_set(err, "capability: genome layer %d: conv kernel %d out of range", src, out->layers[j].conv_L);
    }
    return 0;
}

/* Matmul FLOPs of one forward pass over a sequence (2 per multiply-add). */
double cap_forward_flops(const cap_model_cfg *c, int T, int graded)
{
    double D = c->D, f = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const cap_layer_cfg *lc = &c->layers[l];
        if (lc->mixer == CAP_CONV) f += T * (4.0 * D * D + D * lc->conv_L);
        else {
            double qd = (double)lc->nh * c->hd, kd = (double)lc->nkv * c->hd;
            f += T * (2 * qd * D + 2 * kd * D) + 2.0 * qd * T * (T + 1) / 2.0;
        }
        if (lc->ffn == CAP_SWIGLU) f += T * 3.0 * D * lc->F;
        else f += T * (D * lc->E + lc->K * 3.0 * D * lc->Fe);
    }
    f += (double)graded * D * c->V;
    return 2 * f;
}

/* ---- random numbers: the tool's generator (util/rng.h) ---------------------- */
void cap_rng_seed(cap_rng *r, uint64_t seed) { sh_rng_seed(r, seed); }

uint64_t cap_rng_next(cap_rng *r) { return sh_rng_next(r); }

int cap_rng_int(cap_rng *r, int n)
{
    return n <= 1 ? 0 : (int)(cap_rng_next(r) % (uint64_t)n);
}

double cap_rng_uniform(cap_rng *r) { return sh_rng_uniform(r); }

double cap_rng_normal(cap_rng *r)
{
    double u1 = cap_rng_uniform(r), u2 = cap_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
