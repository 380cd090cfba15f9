/* analytics.c - closed-form analytics of a genome: parameter counts (total and
 * active), FLOPs per token for prefill and decode, weight bytes per storage
 * type, KV-cache and conv-state bytes.  The formulas are those of
 * ../shared/reference/lfm2-architecture.md section 1.1 (verified there against
 * the published parameter counts) generalised to per-layer shapes. */
#include "genome/genome.h"

#include <assert.h>
#include <string.h>

/* ---- storage types ---- */

static const struct {
    sh_dtype type;
    const char *name;
} DTYPES[SH_DTYPE_COUNT] = {
    {SH_DTYPE_F32, "f32"}, {SH_DTYPE_F16, "f16"}, {SH_DTYPE_Q8_0, "q8_0"}, {SH_DTYPE_Q4_0, "q4_0"},
};

sh_dtype sh_dtype_at(int i)
{
    assert(i >= 0 && i < SH_DTYPE_COUNT);
    return DTYPES[i].type;
}

const char *sh_dtype_name(sh_dtype t)
{
    for (int i = 0; i < SH_DTYPE_COUNT; i++)
        if (DTYPES[i].type == t) return DTYPES[i].name;
    return "?";
}

int sh_dtype_parse(const char *s, sh_dtype *out)
{
    for (int i = 0; i < SH_DTYPE_COUNT; i++)
        if (strcmp(s, DTYPES[i].name) == 0) { *out = DTYPES[i].type; return 0; }
    return -1;
}

uint64_t sh_dtype_bytes(sh_dtype t, uint64_t n)
{
    switch (t) {
    case SH_DTYPE_F32: return 4 * n;
    case SH_DTYPE_F16: return 2 * n;
    case SH_DTYPE_Q8_0: return (n + 31) / 32 * 34;
    case SH_DTYPE_Q4_0: return (n + 31) / 32 * 18;
    default: return 0;
    }
}

/* a [rows x cols] matrix, quantised row by row (ggml blocks run along a row) */
static uint64_t matrix_bytes(sh_dtype t, uint64_t rows, uint64_t cols)
{
    return rows * sh_dtype_bytes(t, cols);
}

/* ---- parameters ---- */

static uint64_t attn_width(const sh_genome *g, const sh_mixer *m) { return (uint64_t)m->n_heads * g->head_dim; }
static uint64_t kv_width(const sh_genome *g, const sh_mixer *m) { return (uint64_t)m->n_kv_heads * g->head_dim; }

static uint64_t mixer_params(const sh_genome *g, const sh_mixer *m, uint64_t *norms)
{
    uint64_t H = (uint64_t)g->hidden;
    if (m->kind == SH_MIXER_CONV) return 3 * H * H + H * H + H * (uint64_t)m->conv_kernel;
    uint64_t qk = m->qk_norm ? 2 * (uint64_t)g->head_dim : 0;
    *norms += qk;
    return H * attn_width(g, m) + 2 * H * kv_width(g, m) + attn_width(g, m) * H + qk;
}

static uint64_t ffn_params(const sh_genome *g, const sh_ffn *f, uint64_t *active)
{
    uint64_t H = (uint64_t)g->hidden;
    if (f->kind == SH_FFN_SWIGLU) {
        *active = 3 * H * (uint64_t)f->width;
        return *active;
    }
    uint64_t expert = 3 * H * (uint64_t)f->expert_width;
    uint64_t router = H * (uint64_t)f->n_experts;       /* expert_bias is a buffer, not a parameter */
    *active = router + (uint64_t)f->top_k * expert;
    return router + (uint64_t)f->n_experts * expert;
}

void sh_genome_params(const sh_genome *g, sh_param_count *pc)
{
    memset(pc, 0, sizeof *pc);
    uint64_t H = (uint64_t)g->hidden, V = (uint64_t)g->vocab;
    pc->embedding = V * H * (g->tied_embeddings ? 1 : 2);
    pc->norms = H;                                      /* final norm */
    uint64_t active_ffn = 0;
    for (int i = 0; i < g->n_layers; i++) {
        const sh_layer *l = &g->layers[i];
        pc->norms += 2 * H;                             /* operator norm + ffn norm */
        uint64_t mp = mixer_params(g, &l->mixer, &pc->norms);
        if (l->mixer.kind == SH_MIXER_CONV) pc->conv += mp;
        else pc->attention += mp;
        uint64_t act = 0;
        uint64_t fp = ffn_params(g, &l->ffn, &act);
        if (l->ffn.kind == SH_FFN_SWIGLU) pc->ffn_dense += fp;
        else pc->ffn_moe += fp;
        active_ffn += act;
    }
    /* attention already includes its QK-norm gains; count them in norms only as a view */
    pc->total = pc->embedding + pc->conv + pc->attention + pc->ffn_dense + pc->ffn_moe +
                (uint64_t)(g->n_layers) * 2 * H + H;
    pc->active = pc->total - pc->ffn_dense - pc->ffn_moe + active_ffn;
}

/* ---- FLOPs ---- */

/* FLOPs of one token through the linear parts of a layer (active experts only) */
static double layer_linear_flops(const sh_genome *g, const sh_layer *l)
{
    double H = g->hidden;
    double f = 0;
    const sh_mixer *m = &l->mixer;
    if (m->kind == SH_MIXER_CONV) f += 2.0 * (3 * H * H + H * H) + 2.0 * H * m->conv_kernel;
    else f += 2.0 * (H * (double)attn_width(g, m) * 2 + 2 * H * (double)kv_width(g, m));
    const sh_ffn *ff = &l->ffn;
    if (ff->kind == SH_FFN_SWIGLU) f += 2.0 * 3 * H * ff->width;
    else f += 2.0 * H * ff->n_experts + 2.0 * ff->top_k * 3 * H * ff->expert_width;
    return f;
}

/* attention FLOPs of one query against `keys` keys: q.k and p.v for every head */
static double attn_flops(const sh_genome *g, const sh_mixer *m, double keys)
{
    return 4.0 * (double)attn_width(g, m) * keys;
}

double sh_genome_flops_decode(const sh_genome *g, uint64_t context)
{
    double f = 2.0 * g->vocab * g->hidden;      /* output head */
    for (int i = 0; i < g->n_layers; i++) {
        f += layer_linear_flops(g, &g->layers[i]);
        if (g->layers[i].mixer.kind == SH_MIXER_GQA)
            f += attn_flops(g, &g->layers[i].mixer, (double)context + 1); /* cached tokens + itself */
    }
    return f;
}

double sh_genome_flops_prefill(const sh_genome *g, uint64_t n)
{
    if (n == 0) return 0;
    double f = 2.0 * g->vocab * g->hidden;      /* logits for every position */
    for (int i = 0; i < g->n_layers; i++) {
        f += layer_linear_flops(g, &g->layers[i]);
        if (g->layers[i].mixer.kind == SH_MIXER_GQA)
            f += attn_flops(g, &g->layers[i].mixer, ((double)n + 1) / 2.0); /* causal mean */
    }
    return f;
}

/* ---- bytes ---- */

uint64_t sh_genome_weight_bytes(const sh_genome *g, sh_dtype t)
{
    uint64_t H = (uint64_t)g->hidden, V = (uint64_t)g->vocab;
    uint64_t b = matrix_bytes(t, V, H) * (g->tied_embeddings ? 1 : 2);
    b += 4 * H;                                         /* final norm */
    for (int i = 0; i < g->n_layers; i++) {
        const sh_layer *l = &g->layers[i];
        b += 4 * 2 * H;
        const sh_mixer *m = &l->mixer;
        if (m->kind == SH_MIXER_CONV) {
            b += matrix_bytes(t, 3 * H, H) + matrix_bytes(t, H, H) + 4 * H * (uint64_t)m->conv_kernel;
        } else {
            b += matrix_bytes(t, attn_width(g, m), H) + 2 * matrix_bytes(t, kv_width(g, m), H) +
                 matrix_bytes(t, H, attn_width(g, m));
            if (m->qk_norm) b += 4 * 2 * (uint64_t)g->head_dim;
        }
        const sh_ffn *f = &l->ffn;
        if (f->kind == SH_FFN_SWIGLU) {
            b += 2 * matrix_bytes(t, (uint64_t)f->width, H) + matrix_bytes(t, H, (uint64_t)f->width);
        } else {
            b += 4 * H * (uint64_t)f->n_experts;        /* router, f32 */
            if (f->router_bias) b += 4 * (uint64_t)f->n_experts;
            b += (uint64_t)f->n_experts *
                 (2 * matrix_bytes(t, (uint64_t)f->expert_width, H) + matrix_bytes(t, H, (uint64_t)f->expert_width));
        }
    }
    return b;
}

uint64_t sh_genome_kv_bytes(const sh_genome *g, uint64_t context, sh_dtype kv_type)
{
    uint64_t b = 0;
    for (int i = 0; i < g->n_layers; i++) {
        const sh_mixer *m = &g->layers[i].mixer;
        if (m->kind == SH_MIXER_GQA) b += 2 * context * sh_dtype_bytes(kv_type, kv_width(g, m));
    }
    return b;
}

uint64_t sh_genome_conv_state_bytes(const sh_genome *g)
{
    uint64_t b = 0;
    for (int i = 0; i < g->n_layers; i++) {
        const sh_mixer *m = &g->layers[i].mixer;
        if (m->kind == SH_MIXER_CONV) b += 4 * (uint64_t)(m->conv_kernel - 1) * (uint64_t)g->hidden;
    }
    return b;
}
