/* operators.c - random genomes, mutation, crossover, repair and preset seeds
 * over sh_genome, bounded by a search space (see operators.h). */
#include "search/operators.h"

#include <math.h>
#include <string.h>

static int pick(sh_rng *r, const sh_irange *rg)
{
    return sh_irange_at(rg, sh_rng_int(r, 0, sh_irange_count(rg) - 1));
}

/* One step up or down inside the range. */
static int nudge(sh_rng *r, const sh_irange *rg, int v)
{
    int d = sh_rng_bernoulli(r, 0.5) ? rg->step : -rg->step;
    int n = sh_irange_snap(rg, v + d);
    if (n == v)
        n = sh_irange_snap(rg, v - d);
    return n;
}

static bool tristate_value(sh_rng *r, sh_tristate t)
{
    return t == SH_EITHER ? sh_rng_bernoulli(r, 0.5) : t == SH_ALWAYS;
}

/* ---- layers ----------------------------------------------------------------- */
/* Valid (heads, kv) pair near the requested one: kv must divide heads. */
static void fix_gqa(const sh_space *s, sh_rng *r, sh_mixer *m)
{
    m->n_heads = sh_irange_snap(&s->gqa_heads, m->n_heads);
    m->n_kv_heads = sh_irange_snap(&s->gqa_kv_heads, m->n_kv_heads);
    if (m->n_kv_heads <= m->n_heads && m->n_heads % m->n_kv_heads == 0)
        return;
    /* largest allowed kv dividing heads */
    for (int i = sh_irange_count(&s->gqa_kv_heads) - 1; i >= 0; i--) {
        int kv = sh_irange_at(&s->gqa_kv_heads, i);
        if (kv <= m->n_heads && m->n_heads % kv == 0) {
            m->n_kv_heads = kv;
            return;
        }
    }
    /* else the nearest heads that the kv divides, else any valid pair */
    int nh = sh_irange_count(&s->gqa_heads), nk = sh_irange_count(&s->gqa_kv_heads);
    int start = sh_rng_int(r, 0, nh - 1);
    for (int t = 0; t < nh; t++) {
        int h = sh_irange_at(&s->gqa_heads, (start + t) % nh);
        for (int i = nk - 1; i >= 0; i--) {
            int kv = sh_irange_at(&s->gqa_kv_heads, i);
            if (kv <= h && h % kv == 0) {
                m->n_heads = h;
                m->n_kv_heads = kv;
                return;
            }
        }
    }
}

static void random_mixer(const sh_space *s, sh_rng *r, sh_mixer_kind kind, sh_mixer *m)
{
    memset(m, 0, sizeof *m);
    m->kind = kind;
    if (kind == SH_MIXER_CONV) {
        m->conv_kernel = pick(r, &s->conv_kernel);
    } else {
        m->n_heads = pick(r, &s->gqa_heads);
        m->n_kv_heads = pick(r, &s->gqa_kv_heads);
        m->qk_norm = tristate_value(r, s->qk_norm);
        fix_gqa(s, r, m);
    }
}

static void random_ffn(const sh_space *s, sh_rng *r, sh_ffn_kind kind, sh_ffn *f)
{
    memset(f, 0, sizeof *f);
    f->kind = kind;
    if (kind == SH_FFN_SWIGLU) {
        f->width = pick(r, &s->swiglu_width);
    } else {
        f->n_experts = pick(r, &s->moe_experts);
        f->top_k = pick(r, &s->moe_top_k);
        f->expert_width = pick(r, &s->moe_expert_width);
        f->router_bias = tristate_value(r, s->router_bias);
        if (f->top_k > f->n_experts)
            f->top_k = sh_irange_snap(&s->moe_top_k, f->n_experts);
        if (f->top_k > f->n_experts)
            f->n_experts = sh_irange_snap(&s->moe_experts, f->top_k);
    }
}

/* LFM2-like bias: conv is more common than attention when both are allowed. */
static sh_mixer_kind random_mixer_kind(const sh_space *s, sh_rng *r)
{
    bool c = s->allow_mixer[SH_MIXER_CONV], a = s->allow_mixer[SH_MIXER_GQA];
    if (c && a)
        return sh_rng_bernoulli(r, 0.65) ? SH_MIXER_CONV : SH_MIXER_GQA;
    return c ? SH_MIXER_CONV : SH_MIXER_GQA;
}

static sh_ffn_kind random_ffn_kind(const sh_space *s, sh_rng *r)
{
    bool w = s->allow_ffn[SH_FFN_SWIGLU], e = s->allow_ffn[SH_FFN_MOE];
    if (w && e)
        return sh_rng_bernoulli(r, 0.5) ? SH_FFN_SWIGLU : SH_FFN_MOE;
    return w ? SH_FFN_SWIGLU : SH_FFN_MOE;
}

static void random_layer(const sh_space *s, sh_rng *r, sh_layer *l)
{
    random_mixer(s, r, random_mixer_kind(s, r), &l->mixer);
    random_ffn(s, r, random_ffn_kind(s, r), &l->ffn);
}

static void set_fixed_globals(const sh_space *s, sh_genome *g)
{
    g->vocab = s->vocab;
    g->max_context = s->max_context;
    g->rope_theta = s->rope_theta;
    g->norm_eps = s->norm_eps;
    g->tied_embeddings = s->tied_embeddings;
    g->rope_scaling = SH_ROPE_NONE;
    g->rope_factor = 1.0;
    g->rope_low_freq = 1.0;
    g->rope_high_freq = 4.0;
    g->rope_orig_context = 8192;
}

void sh_op_random_genome(const sh_space *s, sh_rng *r, sh_genome *g)
{
    memset(g, 0, sizeof *g);
    set_fixed_globals(s, g);
    g->hidden = pick(r, &s->hidden);
    g->head_dim = pick(r, &s->head_dim);
    g->n_layers = pick(r, &s->layers);
    sh_ffn shared;
    random_ffn(s, r, random_ffn_kind(s, r), &shared);
    for (int i = 0; i < g->n_layers; i++) {
        random_layer(s, r, &g->layers[i]);
        if (sh_rng_bernoulli(r, 0.75))
            g->layers[i].ffn = shared;   /* LFM2 keeps one width for all layers */
    }
}

/* ---- repair --------------------------------------------------------------------- */
static void repair_layer(const sh_space *s, sh_rng *r, sh_layer *l)
{
    sh_mixer *m = &l->mixer;
    if (m->kind < 0 || m->kind >= SH_MIXER_KIND_COUNT || !s->allow_mixer[m->kind]) {
        random_mixer(s, r, random_mixer_kind(s, r), m);
    } else if (m->kind == SH_MIXER_CONV) {
        int k = sh_irange_snap(&s->conv_kernel, m->conv_kernel);
        memset(m, 0, sizeof *m);
        m->kind = SH_MIXER_CONV;
        m->conv_kernel = k;
    } else {
        m->conv_kernel = 0;
        if (s->qk_norm != SH_EITHER)
            m->qk_norm = s->qk_norm == SH_ALWAYS;
        fix_gqa(s, r, m);
    }
    sh_ffn *f = &l->ffn;
    if (f->kind < 0 || f->kind >= SH_FFN_KIND_COUNT || !s->allow_ffn[f->kind]) {
        /* keep the capacity roughly: a MoE becomes a SwiGLU of its active width */
        int width = f->kind == SH_FFN_MOE ? f->top_k * f->expert_width : f->width;
        random_ffn(s, r, random_ffn_kind(s, r), f);
        if (f->kind == SH_FFN_SWIGLU && width > 0)
            f->width = sh_irange_snap(&s->swiglu_width, width);
    } else if (f->kind == SH_FFN_SWIGLU) {
        int w = sh_irange_snap(&s->swiglu_width, f->width);
        memset(f, 0, sizeof *f);
        f->kind = SH_FFN_SWIGLU;
        f->width = w;
    } else {
        f->width = 0;
        f->n_experts = sh_irange_snap(&s->moe_experts, f->n_experts);
        f->top_k = sh_irange_snap(&s->moe_top_k, f->top_k);
        f->expert_width = sh_irange_snap(&s->moe_expert_width, f->expert_width);
        if (s->router_bias != SH_EITHER)
            f->router_bias = s->router_bias == SH_ALWAYS;
        if (f->top_k > f->n_experts)
            f->n_experts = sh_irange_snap(&s->moe_experts, f->top_k);
        while (f->top_k > f->n_experts && f->top_k > s->moe_top_k.min)
            f->top_k -= s->moe_top_k.step;
    }
}

static void delete_layer(sh_genome *g, int i)
{
    memmove(&g->layers[i], &g->layers[i + 1], (size_t)(g->n_layers - i - 1) * sizeof g->layers[0]);
    g->n_layers--;
    memset(&g->layers[g->n_layers], 0, sizeof g->layers[0]);
}

static void insert_layer(sh_genome *g, int i, const sh_layer *l)
{
    memmove(&g->layers[i + 1], &g->layers[i], (size_t)(g->n_layers - i) * sizeof g->layers[0]);
    g->layers[i] = *l;
    g->n_layers++;
}

void sh_op_repair(const sh_space *s, sh_rng *r, sh_genome *g)
{
    set_fixed_globals(s, g);
    g->hidden = sh_irange_snap(&s->hidden, g->hidden);
    g->head_dim = sh_irange_snap(&s->head_dim, g->head_dim);
    if (g->n_layers < 0 || g->n_layers > SH_MAX_LAYERS)
        g->n_layers = 0;
    while (g->n_layers > s->layers.max)
        delete_layer(g, sh_rng_int(r, 0, g->n_layers - 1));
    while (g->n_layers < s->layers.min) {
        sh_layer l;
        if (g->n_layers > 0)
            l = g->layers[sh_rng_int(r, 0, g->n_layers - 1)];
        else
            random_layer(s, r, &l);
        insert_layer(g, sh_rng_int(r, 0, g->n_layers), &l);
    }
    /* layer counts off the step grid: drop layers until on it */
    while (!sh_irange_contains(&s->layers, g->n_layers) && g->n_layers > s->layers.min)
        delete_layer(g, sh_rng_int(r, 0, g->n_layers - 1));
    for (int i = 0; i < g->n_layers; i++)
        repair_layer(s, r, &g->layers[i]);
    for (int i = g->n_layers; i < SH_MAX_LAYERS; i++)
        memset(&g->layers[i], 0, sizeof g->layers[i]);
    if (sh_space_contains(s, g, NULL) < 0)
        sh_op_random_genome(s, r, g);
}

/* ---- mutation ------------------------------------------------------------------- */
enum {
    MUT_MIXER_KIND, MUT_MIXER_PARAMS, MUT_FFN_PARAMS, MUT_FFN_KIND, MUT_INSERT, MUT_DELETE,
    MUT_DUPLICATE, MUT_SWAP, MUT_HIDDEN, MUT_HEAD_DIM, MUT_ALL_WIDTHS, MUT_COUNT
};

static void mutate_mixer_params(const sh_space *s, sh_rng *r, sh_mixer *m)
{
    if (m->kind == SH_MIXER_CONV) {
        m->conv_kernel = nudge(r, &s->conv_kernel, m->conv_kernel);
        return;
    }
    int what = sh_rng_int(r, 0, s->qk_norm == SH_EITHER ? 2 : 1);
    if (what == 0)
        m->n_heads = nudge(r, &s->gqa_heads, m->n_heads);
    else if (what == 1)
        m->n_kv_heads = nudge(r, &s->gqa_kv_heads, m->n_kv_heads);
    else
        m->qk_norm = !m->qk_norm;
    fix_gqa(s, r, m);
}

static void mutate_ffn_params(const sh_space *s, sh_rng *r, sh_ffn *f)
{
    if (f->kind == SH_FFN_SWIGLU) {
        f->width = nudge(r, &s->swiglu_width, f->width);
        return;
    }
    switch (sh_rng_int(r, 0, s->router_bias == SH_EITHER ? 3 : 2)) {
    case 0: f->n_experts = nudge(r, &s->moe_experts, f->n_experts); break;
    case 1: f->top_k = nudge(r, &s->moe_top_k, f->top_k); break;
    case 2: f->expert_width = nudge(r, &s->moe_expert_width, f->expert_width); break;
    default: f->router_bias = !f->router_bias; break;
    }
}

static void mutate_once(const sh_space *s, sh_rng *r, sh_genome *g)
{
    int n = g->n_layers, i = sh_rng_int(r, 0, n - 1);
    sh_layer *l = &g->layers[i];
    switch (sh_rng_int(r, 0, MUT_COUNT - 1)) {
    case MUT_MIXER_KIND: {
        sh_mixer_kind k = random_mixer_kind(s, r);
        if (k == l->mixer.kind && s->allow_mixer[SH_MIXER_CONV] && s->allow_mixer[SH_MIXER_GQA])
            k = k == SH_MIXER_CONV ? SH_MIXER_GQA : SH_MIXER_CONV;
        random_mixer(s, r, k, &l->mixer);
        break;
    }
    case MUT_MIXER_PARAMS: mutate_mixer_params(s, r, &l->mixer); break;
    case MUT_FFN_PARAMS: mutate_ffn_params(s, r, &l->ffn); break;
    case MUT_FFN_KIND: {
        sh_ffn_kind k = random_ffn_kind(s, r);
        if (k == l->ffn.kind && s->allow_ffn[SH_FFN_SWIGLU] && s->allow_ffn[SH_FFN_MOE])
            k = k == SH_FFN_SWIGLU ? SH_FFN_MOE : SH_FFN_SWIGLU;
        random_ffn(s, r, k, &l->ffn);
        break;
    }
    case MUT_INSERT:
        if (n < s->layers.max && n < SH_MAX_LAYERS) {
            sh_layer nl;
            random_layer(s, r, &nl);
            nl.ffn = l->ffn;   /* keep the neighbour's width */
            insert_layer(g, sh_rng_int(r, 0, n), &nl);
        }
        break;
    case MUT_DELETE:
        if (n > s->layers.min && n > 1)
            delete_layer(g, i);
        break;
    case MUT_DUPLICATE:
        if (n < s->layers.max && n < SH_MAX_LAYERS) {
            sh_layer copy = *l;
            insert_layer(g, i + 1, &copy);
        }
        break;
    case MUT_SWAP: {
        int j = sh_rng_int(r, 0, n - 1);
        sh_layer t = g->layers[i];
        g->layers[i] = g->layers[j];
        g->layers[j] = t;
        break;
    }
    case MUT_HIDDEN: g->hidden = nudge(r, &s->hidden, g->hidden); break;
    case MUT_HEAD_DIM: g->head_dim = nudge(r, &s->head_dim, g->head_dim); break;
    default: {
        int d = sh_rng_bernoulli(r, 0.5) ? 1 : -1;
        for (int k = 0; k < n; k++) {
            sh_ffn *f = &g->layers[k].ffn;
            if (f->kind == SH_FFN_SWIGLU)
                f->width = sh_irange_snap(&s->swiglu_width, f->width + d * s->swiglu_width.step);
            else
                f->expert_width = sh_irange_snap(&s->moe_expert_width, f->expert_width + d * s->moe_expert_width.step);
        }
        break;
    }
    }
}

void sh_op_mutate(const sh_space *s, sh_rng *r, sh_genome *g)
{
    if (g->n_layers < 1)
        sh_op_random_genome(s, r, g);
    mutate_once(s, r, g);
    while (sh_rng_bernoulli(r, 0.3))
        mutate_once(s, r, g);
}

/* ---- crossover ---------------------------------------------------------------- */
/* child = a[0..ca) + b[cb..nb), truncated to the layer limit. */
static void splice(const sh_genome *a, int ca, const sh_genome *b, int cb, sh_genome *c)
{
    *c = *a;
    int n = ca;
    for (int i = cb; i < b->n_layers && n < SH_MAX_LAYERS; i++)
        c->layers[n++] = b->layers[i];
    c->n_layers = n;
}

static void take_globals(sh_rng *r, const sh_genome *a, const sh_genome *b, sh_genome *c1, sh_genome *c2)
{
    if (sh_rng_bernoulli(r, 0.5)) {
        c1->hidden = b->hidden; c2->hidden = a->hidden;
    }
    if (sh_rng_bernoulli(r, 0.5)) {
        c1->head_dim = b->head_dim; c2->head_dim = a->head_dim;
    }
}

void sh_op_crossover_kind(const sh_space *s, sh_rng *r, sh_xover_kind kind, const sh_genome *a,
                          const sh_genome *b, sh_genome *c1, sh_genome *c2)
{
    (void)s;
    int na = a->n_layers, nb = b->n_layers;
    if (kind == SH_XOVER_ONE_POINT) {
        int pa = sh_rng_int(r, 0, na), pb = sh_rng_int(r, 0, nb);
        splice(a, pa, b, pb, c1);
        splice(b, pb, a, pa, c2);
    } else if (kind == SH_XOVER_TWO_POINT) {
        /* exchange the segment [x1, x2) of a with [y1, y2) of b */
        int x1 = sh_rng_int(r, 0, na), x2 = sh_rng_int(r, x1, na);
        int y1 = sh_rng_int(r, 0, nb), y2 = sh_rng_int(r, y1, nb);
        sh_genome t;
        splice(a, x1, b, y1, &t);          /* a[0,x1) + b[y1,..) */
        t.n_layers = x1 + (y2 - y1);
        for (int i = x2; i < na && t.n_layers < SH_MAX_LAYERS; i++)
            t.layers[t.n_layers++] = a->layers[i];
        *c1 = t;
        splice(b, y1, a, x1, &t);
        t.n_layers = y1 + (x2 - x1);
        for (int i = y2; i < nb && t.n_layers < SH_MAX_LAYERS; i++)
            t.layers[t.n_layers++] = b->layers[i];
        *c2 = t;
    } else {
        *c1 = *a;
        *c2 = *b;
        int n = na < nb ? na : nb;
        for (int i = 0; i < n; i++)
            if (sh_rng_bernoulli(r, 0.5)) {
                c1->layers[i] = b->layers[i];
                c2->layers[i] = a->layers[i];
            }
    }
    take_globals(r, a, b, c1, c2);
}

void sh_op_crossover(const sh_space *s, sh_rng *r, const sh_genome *a, const sh_genome *b,
                     sh_genome *c1, sh_genome *c2)
{
    sh_op_crossover_kind(s, r, (sh_xover_kind)sh_rng_int(r, 0, SH_XOVER_COUNT - 1), a, b, c1, c2);
}

/* ---- preset seeds ----------------------------------------------------------------- */
static int scale_value(const sh_irange *rg, double v)
{
    return sh_irange_snap(rg, (int)lround(v));
}

static void scale_preset(const sh_space *s, const sh_genome *p, sh_genome *g)
{
    memset(g, 0, sizeof *g);
    set_fixed_globals(s, g);
    /* LFM2 hidden 1024..2048 maps onto the space's hidden range */
    double t = (p->hidden - 1024.0) / 1024.0;
    t = t < 0 ? 0 : (t > 1 ? 1 : t);
    g->hidden = scale_value(&s->hidden, s->hidden.min + t * (s->hidden.max - s->hidden.min));
    g->head_dim = sh_irange_snap(&s->head_dim, p->head_dim);
    /* depth: the deepest preset (30 layers) maps to the space's maximum */
    int n = scale_value(&s->layers, p->n_layers * (double)s->layers.max / 30.0);
    g->n_layers = n;
    double ratio_h = (double)g->hidden / p->hidden;
    for (int j = 0; j < n; j++) {
        /* conv everywhere, attention where the preset has it (positions scaled) */
        sh_layer *l = &g->layers[j];
        const sh_layer *src = &p->layers[(int)((long long)j * p->n_layers / n)];
        l->mixer.kind = SH_MIXER_CONV;
        l->mixer.conv_kernel = src->mixer.kind == SH_MIXER_CONV ? src->mixer.conv_kernel : 3;
        l->ffn = src->ffn;
        if (l->ffn.kind == SH_FFN_SWIGLU)
            l->ffn.width = (int)lround(src->ffn.width * ratio_h);
        else
            l->ffn.expert_width = (int)lround(src->ffn.expert_width * ratio_h);
    }
    /* attention: the preset's share of layers, spread evenly (LFM2 puts the
     * first one after two conv layers and spaces the rest) */
    int n_attn = sh_genome_count_mixer(p, SH_MIXER_GQA);
    const sh_mixer *pm = NULL;
    for (int i = 0; i < p->n_layers && !pm; i++)
        if (p->layers[i].mixer.kind == SH_MIXER_GQA)
            pm = &p->layers[i].mixer;
    if (n_attn > 0 && pm) {
        int k_attn = (int)lround((double)n * n_attn / p->n_layers);
        if (k_attn < 1)
            k_attn = 1;
        for (int k = 0; k < k_attn; k++) {
            int j = (int)lround((k + 1) * (double)n / (k_attn + 1));
            j = j >= n ? n - 1 : j;
            sh_mixer *d = &g->layers[j].mixer;
            d->kind = SH_MIXER_GQA;
            d->conv_kernel = 0;
            d->n_heads = g->hidden / g->head_dim > 0 ? g->hidden / g->head_dim : 1;
            d->n_kv_heads = d->n_heads * pm->n_kv_heads / pm->n_heads;
            if (d->n_kv_heads < 1)
                d->n_kv_heads = 1;
            d->qk_norm = pm->qk_norm;
        }
    }
}

int sh_op_preset_seeds(const sh_space *s, sh_genome *out, int max)
{
    sh_rng r;
    sh_rng_seed(&r, 0x5eed);
    int k = 0;
    for (int i = 0; i < sh_preset_count() && k < max; i++) {
        const sh_preset *info = sh_preset_at(i);
        if (!info || strncmp(info->name, "lfm2", 4) != 0)
            continue;
        sh_genome p;
        if (sh_preset_get(info->name, &p, NULL) < 0)
            continue;
        scale_preset(s, &p, &out[k]);
        sh_op_repair(s, &r, &out[k]);
        k++;
    }
    return k;
}

/* ---- engine vtable ------------------------------------------------------------------ */
static void v_random(void *ctx, sh_rng *r, void *out) { sh_op_random_genome(ctx, r, out); }
static void v_cross(void *ctx, sh_rng *r, const void *a, const void *b, void *c1, void *c2)
{
    sh_op_crossover(ctx, r, a, b, c1, c2);
}
static void v_mutate(void *ctx, sh_rng *r, void *ind) { sh_op_mutate(ctx, r, ind); }
static void v_repair(void *ctx, sh_rng *r, void *ind) { sh_op_repair(ctx, r, ind); }
static uint64_t v_hash(void *ctx, const void *ind)
{
    (void)ctx;
    return sh_genome_hash(ind);
}

void sh_genome_ops(const sh_space *s, sh_moea_ops *ops)
{
    memset(ops, 0, sizeof *ops);
    ops->size = sizeof(sh_genome);
    ops->ctx = (void *)s;
    ops->random = v_random;
    ops->crossover = v_cross;
    ops->mutate = v_mutate;
    ops->repair = v_repair;
    ops->hash = v_hash;
}
