/* genome.c - validation, identity (hash), equality and naming of genomes. */
#include "genome/genome.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *sh_mixer_kind_name(sh_mixer_kind k)
{
    switch (k) {
    case SH_MIXER_CONV: return "conv";
    case SH_MIXER_GQA: return "gqa";
    default: return "?";
    }
}

const char *sh_ffn_kind_name(sh_ffn_kind k)
{
    switch (k) {
    case SH_FFN_SWIGLU: return "swiglu";
    case SH_FFN_MOE: return "moe";
    default: return "?";
    }
}

static int check_range(sh_err *err, const char *where, const char *field, long long v,
                       long long lo, long long hi)
{
    if (v < lo || v > hi)
        return sh_err_set(err, "%s: %s (%lld) out of range [%lld, %lld]", where, field, v, lo, hi);
    return 0;
}

static int validate_globals(const sh_genome *g, sh_err *err)
{
    const char *w = "genome";
    if (check_range(err, w, "vocab", g->vocab, 2, SH_LIMIT_VOCAB)) return -1;
    if (check_range(err, w, "hidden", g->hidden, 1, SH_LIMIT_HIDDEN)) return -1;
    if (check_range(err, w, "head_dim", g->head_dim, 2, SH_LIMIT_HEAD_DIM)) return -1;
    if (g->head_dim % 2)
        return sh_err_set(err, "genome: head_dim (%d) must be even for RoPE", g->head_dim);
    if (check_range(err, w, "max context", g->max_context, 1, SH_LIMIT_CONTEXT)) return -1;
    if (!isfinite(g->rope_theta) || g->rope_theta <= 1.0 || g->rope_theta > 1e12)
        return sh_err_set(err, "genome: rope theta (%g) must be in (1, 1e12]", g->rope_theta);
    if (!isfinite(g->norm_eps) || g->norm_eps <= 0.0 || g->norm_eps >= 1.0)
        return sh_err_set(err, "genome: norm eps (%g) must be in (0, 1)", g->norm_eps);
    if (g->rope_scaling == SH_ROPE_LLAMA3) {
        if (!isfinite(g->rope_factor) || g->rope_factor < 1.0 || g->rope_factor > 1024.0)
            return sh_err_set(err, "genome: rope factor (%g) must be in [1, 1024]", g->rope_factor);
        if (!isfinite(g->rope_low_freq) || !isfinite(g->rope_high_freq) ||
            g->rope_low_freq <= 0.0 || g->rope_high_freq <= g->rope_low_freq || g->rope_high_freq > 1e6)
            return sh_err_set(err, "genome: rope low/high frequency factors (%g, %g) must satisfy 0 < low < high",
                              g->rope_low_freq, g->rope_high_freq);
        if (check_range(err, w, "rope original context", g->rope_orig_context, 1, SH_LIMIT_CONTEXT)) return -1;
    } else if (g->rope_scaling != SH_ROPE_NONE) {
        return sh_err_set(err, "genome: unknown rope scaling (%d)", (int)g->rope_scaling);
    }
    if (check_range(err, w, "layer count", g->n_layers, 1, SH_MAX_LAYERS)) return -1;
    return 0;
}

static int validate_mixer(const sh_genome *g, int i, const sh_mixer *m, sh_err *err)
{
    char w[32];
    snprintf(w, sizeof w, "layer %d", i);
    switch (m->kind) {
    case SH_MIXER_CONV:
        if (m->conv_kernel < 2 || m->conv_kernel > SH_LIMIT_CONV_KERNEL)
            return sh_err_set(err, "%s: conv kernel (%d) out of range [2, %d]", w, m->conv_kernel,
                              SH_LIMIT_CONV_KERNEL);
        return 0;
    case SH_MIXER_GQA:
        if (check_range(err, w, "gqa heads", m->n_heads, 1, SH_LIMIT_HEADS)) return -1;
        if (check_range(err, w, "gqa kv heads", m->n_kv_heads, 1, SH_LIMIT_HEADS)) return -1;
        if (m->n_kv_heads > m->n_heads)
            return sh_err_set(err, "%s: gqa kv heads (%d) exceed heads (%d)", w, m->n_kv_heads, m->n_heads);
        if (m->n_heads % m->n_kv_heads)
            return sh_err_set(err, "%s: gqa heads (%d) not a multiple of kv heads (%d)", w, m->n_heads,
                              m->n_kv_heads);
        if ((long long)m->n_heads * g->head_dim > 4LL * SH_LIMIT_HIDDEN)
            return sh_err_set(err, "%s: gqa heads x head_dim (%d x %d) exceeds %d", w, m->n_heads,
                              g->head_dim, 4 * SH_LIMIT_HIDDEN);
        return 0;
    default:
        return sh_err_set(err, "%s: unknown token mixer kind (%d)", w, (int)m->kind);
    }
}

static int validate_ffn(int i, const sh_ffn *f, sh_err *err)
{
    char w[32];
    snprintf(w, sizeof w, "layer %d", i);
    switch (f->kind) {
    case SH_FFN_SWIGLU:
        return check_range(err, w, "swiglu width", f->width, 1, SH_LIMIT_FFN);
    case SH_FFN_MOE:
        if (check_range(err, w, "moe experts", f->n_experts, 1, SH_LIMIT_EXPERTS)) return -1;
        if (f->top_k < 1 || f->top_k > f->n_experts)
            return sh_err_set(err, "%s: moe top-k (%d) must be in [1, experts (%d)]", w, f->top_k, f->n_experts);
        if (check_range(err, w, "moe expert width", f->expert_width, 1, SH_LIMIT_FFN)) return -1;
        return 0;
    default:
        return sh_err_set(err, "%s: unknown channel mixer kind (%d)", w, (int)f->kind);
    }
}

int sh_genome_validate(const sh_genome *g, sh_err *err)
{
    if (validate_globals(g, err)) return -1;
    for (int i = 0; i < g->n_layers; i++) {
        if (validate_mixer(g, i, &g->layers[i].mixer, err)) return -1;
        if (validate_ffn(i, &g->layers[i].ffn, err)) return -1;
    }
    /* bound the total size so no consumer can be asked to allocate without limit */
    sh_param_count pc;
    sh_genome_params(g, &pc);
    if (pc.total > 400ULL * 1000 * 1000 * 1000)
        return sh_err_set(err, "genome: %llu parameters exceed the limit of 400e9",
                          (unsigned long long)pc.total);
    return 0;
}

int sh_genome_check_quantizable(const sh_genome *g, sh_err *err)
{
    if (g->hidden % 32)
        return sh_err_set(err, "genome: hidden (%d) not a multiple of 32 (needed by q8_0/q4_0 blocks)", g->hidden);
    for (int i = 0; i < g->n_layers; i++) {
        const sh_layer *l = &g->layers[i];
        if (l->mixer.kind == SH_MIXER_GQA && (l->mixer.n_heads * g->head_dim) % 32)
            return sh_err_set(err, "layer %d: gqa heads x head_dim (%d) not a multiple of 32", i,
                              l->mixer.n_heads * g->head_dim);
        if (l->ffn.kind == SH_FFN_SWIGLU && l->ffn.width % 32)
            return sh_err_set(err, "layer %d: swiglu width (%d) not a multiple of 32", i, l->ffn.width);
        if (l->ffn.kind == SH_FFN_MOE && l->ffn.expert_width % 32)
            return sh_err_set(err, "layer %d: moe expert width (%d) not a multiple of 32", i, l->ffn.expert_width);
    }
    return 0;
}

static bool mixer_equal(const sh_mixer *a, const sh_mixer *b)
{
    if (a->kind != b->kind) return false;
    if (a->kind == SH_MIXER_CONV) return a->conv_kernel == b->conv_kernel;
    return a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads && a->qk_norm == b->qk_norm;
}

static bool ffn_equal(const sh_ffn *a, const sh_ffn *b)
{
    if (a->kind != b->kind) return false;
    if (a->kind == SH_FFN_SWIGLU) return a->width == b->width;
    return a->n_experts == b->n_experts && a->top_k == b->top_k && a->expert_width == b->expert_width &&
           a->router_bias == b->router_bias;
}

bool sh_layer_equal(const sh_layer *a, const sh_layer *b)
{
    return mixer_equal(&a->mixer, &b->mixer) && ffn_equal(&a->ffn, &b->ffn);
}

bool sh_genome_equal(const sh_genome *a, const sh_genome *b)
{
    char ta[SH_GENOME_TEXT_MAX], tb[SH_GENOME_TEXT_MAX];
    if (sh_genome_format(a, ta, sizeof ta, NULL) || sh_genome_format(b, tb, sizeof tb, NULL)) return false;
    return strcmp(ta, tb) == 0;
}

sh_hash sh_genome_hash(const sh_genome *g)
{
    char text[SH_GENOME_TEXT_MAX];
    if (sh_genome_format(g, text, sizeof text, NULL)) return 0;
    uint64_t h = 0xcbf29ce484222325ULL;              /* FNV-1a 64 */
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h;
}

void sh_hash_hex(sh_hash h, char hex[17])
{
    snprintf(hex, 17, "%016llx", (unsigned long long)h);
}

int sh_hash_parse(const char *hex, sh_hash *out)
{
    if (!hex || strlen(hex) != 16) return -1;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = hex[i];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = (v << 4) | (uint64_t)d;
    }
    *out = v;
    return 0;
}

int sh_genome_count_mixer(const sh_genome *g, sh_mixer_kind k)
{
    int n = 0;
    for (int i = 0; i < g->n_layers; i++) n += g->layers[i].mixer.kind == k;
    return n;
}

int sh_genome_count_ffn(const sh_genome *g, sh_ffn_kind k)
{
    int n = 0;
    for (int i = 0; i < g->n_layers; i++) n += g->layers[i].ffn.kind == k;
    return n;
}
