/* space.c - reading and checking search-space files (JSON, via jansson).
 * Unknown keys are rejected so typos do not silently widen a search. */
#include "search/space.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPACE_FILE_MAX (1024 * 1024)

/* ---- ranges ---------------------------------------------------------------- */
int sh_irange_count(const sh_irange *r)
{
    return (r->max - r->min) / r->step + 1;
}

int sh_irange_at(const sh_irange *r, int i)
{
    return r->min + i * r->step;
}

int sh_irange_snap(const sh_irange *r, int v)
{
    if (v <= r->min)
        return r->min;
    int n = sh_irange_count(r);
    int i = (int)(((long long)v - r->min + r->step / 2) / r->step);
    if (i >= n)
        i = n - 1;
    return sh_irange_at(r, i);
}

bool sh_irange_contains(const sh_irange *r, int v)
{
    return v >= r->min && v <= r->max && (v - r->min) % r->step == 0;
}

/* ---- JSON helpers ------------------------------------------------------------ */
static int check_keys(json_t *obj, const char *where, const char *const *allowed, sh_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (int i = 0; allowed[i]; i++)
            if (!strcmp(key, allowed[i]))
                ok = true;
        if (!ok)
            return sh_err_set(err, "search space: %s: unknown key \"%.64s\"", where, key);
    }
    return 0;
}

static int get_number(json_t *obj, const char *key, const char *where, double lo, double hi,
                      bool required, double *out, sh_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return sh_err_set(err, "search space: %s: missing \"%s\"", where, key);
        return 0;
    }
    if (!json_is_number(v))
        return sh_err_set(err, "search space: %s.%s: expected a number", where, key);
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return sh_err_set(err, "search space: %s.%s (%g) out of range [%g, %g]", where, key, d, lo, hi);
    *out = d;
    return 0;
}

static int get_int(json_t *obj, const char *key, const char *where, int lo, int hi, bool required,
                   int *out, sh_err *err)
{
    double d = *out;
    if (get_number(obj, key, where, lo, hi, required, &d, err) < 0)
        return -1;
    if (d != floor(d))
        return sh_err_set(err, "search space: %s.%s (%g) must be an integer", where, key, d);
    *out = (int)d;
    return 0;
}

/* {"min": a, "max": b, "step": s} or a single integer (fixed value). */
static int get_range(json_t *obj, const char *key, const char *where, int lo, int hi, bool required,
                     sh_irange *r, sh_err *err)
{
    char w[96];
    snprintf(w, sizeof w, "%s.%s", where, key);
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return sh_err_set(err, "search space: %s: missing \"%s\"", where, key);
        return 0;
    }
    if (json_is_integer(v)) {
        long long x = json_integer_value(v);
        if (x < lo || x > hi)
            return sh_err_set(err, "search space: %s (%lld) out of range [%d, %d]", w, x, lo, hi);
        r->min = r->max = (int)x;
        r->step = 1;
        return 0;
    }
    if (!json_is_object(v))
        return sh_err_set(err, "search space: %s: expected {\"min\":..,\"max\":..[,\"step\":..]} or an integer", w);
    static const char *const keys[] = {"min", "max", "step", NULL};
    if (check_keys(v, w, keys, err) < 0)
        return -1;
    r->step = 1;
    if (get_int(v, "min", w, lo, hi, true, &r->min, err) < 0 ||
        get_int(v, "max", w, lo, hi, true, &r->max, err) < 0 ||
        get_int(v, "step", w, 1, hi, false, &r->step, err) < 0)
        return -1;
    if (r->max < r->min)
        return sh_err_set(err, "search space: %s: max (%d) below min (%d)", w, r->max, r->min);
    r->max = r->min + (r->max - r->min) / r->step * r->step;
    return 0;
}

static int get_tristate(json_t *obj, const char *key, const char *where, sh_tristate *out, sh_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (json_is_boolean(v)) {
        *out = json_is_true(v) ? SH_ALWAYS : SH_NEVER;
        return 0;
    }
    const char *s = json_string_value(v);
    if (s && !strcmp(s, "always"))
        *out = SH_ALWAYS;
    else if (s && !strcmp(s, "never"))
        *out = SH_NEVER;
    else if (s && !strcmp(s, "either"))
        *out = SH_EITHER;
    else
        return sh_err_set(err, "search space: %s.%s: expected true, false, \"always\", \"never\" or \"either\"",
                          where, key);
    return 0;
}

/* ---- sections ---------------------------------------------------------------- */
static int parse_mixers(json_t *root, sh_space *s, sh_err *err)
{
    json_t *mx = json_object_get(root, "mixers");
    if (!json_is_object(mx))
        return sh_err_set(err, "search space: \"mixers\" must be an object with \"conv\" and/or \"gqa\"");
    static const char *const keys[] = {"conv", "gqa", NULL};
    if (check_keys(mx, "mixers", keys, err) < 0)
        return -1;
    json_t *conv = json_object_get(mx, "conv"), *gqa = json_object_get(mx, "gqa");
    if (conv) {
        static const char *const ck[] = {"kernel", NULL};
        if (!json_is_object(conv) || check_keys(conv, "mixers.conv", ck, err) < 0)
            return json_is_object(conv) ? -1 : sh_err_set(err, "search space: mixers.conv must be an object");
        s->allow_mixer[SH_MIXER_CONV] = true;
        s->conv_kernel = (sh_irange){3, 3, 1};
        if (get_range(conv, "kernel", "mixers.conv", 2, SH_LIMIT_CONV_KERNEL, false, &s->conv_kernel, err) < 0)
            return -1;
    }
    if (gqa) {
        static const char *const gk[] = {"heads", "kv_heads", "qk_norm", NULL};
        if (!json_is_object(gqa) || check_keys(gqa, "mixers.gqa", gk, err) < 0)
            return json_is_object(gqa) ? -1 : sh_err_set(err, "search space: mixers.gqa must be an object");
        s->allow_mixer[SH_MIXER_GQA] = true;
        s->qk_norm = SH_ALWAYS;
        if (get_range(gqa, "heads", "mixers.gqa", 1, 256, true, &s->gqa_heads, err) < 0 ||
            get_range(gqa, "kv_heads", "mixers.gqa", 1, 256, true, &s->gqa_kv_heads, err) < 0 ||
            get_tristate(gqa, "qk_norm", "mixers.gqa", &s->qk_norm, err) < 0)
            return -1;
        if (s->gqa_kv_heads.min > s->gqa_heads.max)
            return sh_err_set(err, "search space: mixers.gqa: kv_heads min (%d) above heads max (%d)",
                              s->gqa_kv_heads.min, s->gqa_heads.max);
    }
    if (!conv && !gqa)
        return sh_err_set(err, "search space: \"mixers\" allows no token mixer");
    return 0;
}

static int parse_ffns(json_t *root, sh_space *s, sh_err *err)
{
    json_t *cm = json_object_get(root, "channel_mixers");
    if (!json_is_object(cm))
        return sh_err_set(err, "search space: \"channel_mixers\" must be an object with \"swiglu\" and/or \"moe\"");
    static const char *const keys[] = {"swiglu", "moe", NULL};
    if (check_keys(cm, "channel_mixers", keys, err) < 0)
        return -1;
    json_t *sw = json_object_get(cm, "swiglu"), *moe = json_object_get(cm, "moe");
    if (sw) {
        static const char *const sk[] = {"width", NULL};
        if (!json_is_object(sw) || check_keys(sw, "channel_mixers.swiglu", sk, err) < 0)
            return json_is_object(sw) ? -1 : sh_err_set(err, "search space: channel_mixers.swiglu must be an object");
        s->allow_ffn[SH_FFN_SWIGLU] = true;
        if (get_range(sw, "width", "channel_mixers.swiglu", 1, 65536, true, &s->swiglu_width, err) < 0)
            return -1;
    }
    if (moe) {
        static const char *const mk[] = {"experts", "top_k", "expert_width", "router_bias", NULL};
        if (!json_is_object(moe) || check_keys(moe, "channel_mixers.moe", mk, err) < 0)
            return json_is_object(moe) ? -1 : sh_err_set(err, "search space: channel_mixers.moe must be an object");
        s->allow_ffn[SH_FFN_MOE] = true;
        s->router_bias = SH_ALWAYS;
        if (get_range(moe, "experts", "channel_mixers.moe", 1, 256, true, &s->moe_experts, err) < 0 ||
            get_range(moe, "top_k", "channel_mixers.moe", 1, 256, true, &s->moe_top_k, err) < 0 ||
            get_range(moe, "expert_width", "channel_mixers.moe", 1, 65536, true, &s->moe_expert_width, err) < 0 ||
            get_tristate(moe, "router_bias", "channel_mixers.moe", &s->router_bias, err) < 0)
            return -1;
        if (s->moe_top_k.min > s->moe_experts.max)
            return sh_err_set(err, "search space: channel_mixers.moe: top_k min (%d) above experts max (%d)",
                              s->moe_top_k.min, s->moe_experts.max);
    }
    if (!sw && !moe)
        return sh_err_set(err, "search space: \"channel_mixers\" allows no channel mixer");
    return 0;
}

static int parse_constraints(json_t *root, sh_space *s, sh_err *err)
{
    json_t *c = json_object_get(root, "constraints");
    s->cache_context = s->max_context;
    if (!c)
        return 0;
    static const char *const keys[] = {"max_params", "max_decode_ms", "max_peak_bytes",
                                       "max_cache_bytes", "cache_context", NULL};
    if (!json_is_object(c))
        return sh_err_set(err, "search space: \"constraints\" must be an object");
    if (check_keys(c, "constraints", keys, err) < 0)
        return -1;
    const char *w = "constraints";
    if (get_number(c, "max_params", w, 0, 1e13, false, &s->max_params, err) < 0 ||
        get_number(c, "max_decode_ms", w, 0, 1e7, false, &s->max_decode_ms, err) < 0 ||
        get_number(c, "max_peak_bytes", w, 0, 1e15, false, &s->max_peak_bytes, err) < 0 ||
        get_number(c, "max_cache_bytes", w, 0, 1e15, false, &s->max_cache_bytes, err) < 0 ||
        get_int(c, "cache_context", w, 1, SH_LIMIT_CONTEXT, false, &s->cache_context, err) < 0)
        return -1;
    return 0;
}

static int parse_root(json_t *root, sh_space *s, sh_err *err)
{
    static const char *const keys[] = {"name", "vocab", "max_context", "rope_theta", "norm_eps",
                                       "tied_embeddings", "layers", "hidden", "head_dim", "mixers",
                                       "channel_mixers", "constraints", "description", NULL};
    if (!json_is_object(root))
        return sh_err_set(err, "search space: expected a JSON object");
    if (check_keys(root, "top level", keys, err) < 0)
        return -1;
    json_t *name = json_object_get(root, "name");
    if (name && (!json_is_string(name) || strlen(json_string_value(name)) >= sizeof s->name))
        return sh_err_set(err, "search space: \"name\" must be a string of at most %zu bytes", sizeof s->name - 1);
    snprintf(s->name, sizeof s->name, "%s", name ? json_string_value(name) : "custom");
    const char *w = "top level";
    s->max_context = 2048;
    s->rope_theta = 1e6;
    s->norm_eps = 1e-5;
    s->tied_embeddings = true;
    if (get_int(root, "vocab", w, 2, SH_LIMIT_VOCAB, true, &s->vocab, err) < 0 ||
        get_int(root, "max_context", w, 1, SH_LIMIT_CONTEXT, false, &s->max_context, err) < 0 ||
        get_number(root, "rope_theta", w, 1.0001, 1e12, false, &s->rope_theta, err) < 0 ||
        get_number(root, "norm_eps", w, 1e-12, 0.5, false, &s->norm_eps, err) < 0)
        return -1;
    json_t *tie = json_object_get(root, "tied_embeddings");
    if (tie && !json_is_boolean(tie))
        return sh_err_set(err, "search space: \"tied_embeddings\" must be true or false");
    if (tie)
        s->tied_embeddings = json_is_true(tie);
    if (get_range(root, "layers", w, 1, SH_MAX_LAYERS, true, &s->layers, err) < 0 ||
        get_range(root, "hidden", w, 8, 16384, true, &s->hidden, err) < 0)
        return -1;
    s->head_dim = (sh_irange){64, 64, 1};
    if (get_range(root, "head_dim", w, 2, 512, false, &s->head_dim, err) < 0)
        return -1;
    if (s->head_dim.min % 2 || (s->head_dim.max > s->head_dim.min && s->head_dim.step % 2))
        return sh_err_set(err, "search space: head_dim values must be even (RoPE)");
    if (parse_mixers(root, s, err) < 0 || parse_ffns(root, s, err) < 0)
        return -1;
    return parse_constraints(root, s, err);
}

int sh_space_parse(const char *json, sh_space *out, sh_err *err)
{
    if (strlen(json) > SPACE_FILE_MAX)
        return sh_err_set(err, "search space: larger than %d bytes", SPACE_FILE_MAX);
    json_error_t je;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return sh_err_set(err, "search space: invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
    memset(out, 0, sizeof *out);
    int rc = parse_root(root, out, err);
    json_decref(root);
    return rc;
}

int sh_space_load_file(const char *path, sh_space *out, char **json_out, sh_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return sh_err_set(err, "search space %s: cannot open", path);
    char *buf = malloc(SPACE_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return sh_err_set(err, "search space %s: out of memory", path);
    }
    size_t n = fread(buf, 1, SPACE_FILE_MAX + 1, f);
    fclose(f);
    if (n > SPACE_FILE_MAX) {
        free(buf);
        return sh_err_set(err, "search space %s: larger than %d bytes", path, SPACE_FILE_MAX);
    }
    buf[n] = 0;
    if (memchr(buf, 0, n)) {
        free(buf);
        return sh_err_set(err, "search space %s: contains a NUL byte", path);
    }
    if (sh_space_parse(buf, out, err) < 0) {
        free(buf);
        return sh_err_prefix(err, "%s", path);
    }
    if (json_out)
        *json_out = buf;
    else
        free(buf);
    return 0;
}

int sh_space_default(sh_space *out, sh_err *err)
{
    return sh_space_parse(sh_default_space_json, out, err);
}

/* ---- membership and constraints ------------------------------------------------ */
static int layer_contains(const sh_space *s, const sh_genome *g, int i, sh_err *err)
{
    const sh_mixer *m = &g->layers[i].mixer;
    const sh_ffn *f = &g->layers[i].ffn;
    if (m->kind < 0 || m->kind >= SH_MIXER_KIND_COUNT || !s->allow_mixer[m->kind])
        return sh_err_set(err, "layer %d: token mixer %s not allowed by the space", i, sh_mixer_kind_name(m->kind));
    if (m->kind == SH_MIXER_CONV && !sh_irange_contains(&s->conv_kernel, m->conv_kernel))
        return sh_err_set(err, "layer %d: conv kernel %d outside the space", i, m->conv_kernel);
    if (m->kind == SH_MIXER_GQA) {
        if (!sh_irange_contains(&s->gqa_heads, m->n_heads))
            return sh_err_set(err, "layer %d: gqa heads %d outside the space", i, m->n_heads);
        if (!sh_irange_contains(&s->gqa_kv_heads, m->n_kv_heads))
            return sh_err_set(err, "layer %d: gqa kv heads %d outside the space", i, m->n_kv_heads);
        if ((s->qk_norm == SH_ALWAYS && !m->qk_norm) || (s->qk_norm == SH_NEVER && m->qk_norm))
            return sh_err_set(err, "layer %d: qk-norm setting not allowed by the space", i);
    }
    if (f->kind < 0 || f->kind >= SH_FFN_KIND_COUNT || !s->allow_ffn[f->kind])
        return sh_err_set(err, "layer %d: channel mixer %s not allowed by the space", i, sh_ffn_kind_name(f->kind));
    if (f->kind == SH_FFN_SWIGLU && !sh_irange_contains(&s->swiglu_width, f->width))
        return sh_err_set(err, "layer %d: swiglu width %d outside the space", i, f->width);
    if (f->kind == SH_FFN_MOE) {
        if (!sh_irange_contains(&s->moe_experts, f->n_experts) || !sh_irange_contains(&s->moe_top_k, f->top_k) ||
            !sh_irange_contains(&s->moe_expert_width, f->expert_width))
            return sh_err_set(err, "layer %d: moe(%d,%d,%d) outside the space", i, f->n_experts, f->top_k,
                              f->expert_width);
        if ((s->router_bias == SH_ALWAYS && !f->router_bias) || (s->router_bias == SH_NEVER && f->router_bias))
            return sh_err_set(err, "layer %d: router bias setting not allowed by the space", i);
    }
    return 0;
}

int sh_space_contains(const sh_space *s, const sh_genome *g, sh_err *err)
{
    if (sh_genome_validate(g, err) < 0)
        return -1;
    if (g->vocab != s->vocab)
        return sh_err_set(err, "genome: vocab %d differs from the space's %d", g->vocab, s->vocab);
    if (g->max_context != s->max_context)
        return sh_err_set(err, "genome: max context %d differs from the space's %d", g->max_context, s->max_context);
    if (!sh_irange_contains(&s->layers, g->n_layers))
        return sh_err_set(err, "genome: %d layers outside the space [%d, %d]", g->n_layers, s->layers.min, s->layers.max);
    if (!sh_irange_contains(&s->hidden, g->hidden))
        return sh_err_set(err, "genome: hidden %d outside the space", g->hidden);
    if (!sh_irange_contains(&s->head_dim, g->head_dim))
        return sh_err_set(err, "genome: head_dim %d outside the space", g->head_dim);
    for (int i = 0; i < g->n_layers; i++)
        if (layer_contains(s, g, i, err) < 0)
            return -1;
    return 0;
}

static double excess(double value, double limit)
{
    if (!(limit > 0) || isnan(value))
        return 0;
    return value > limit ? value / limit - 1.0 : 0.0;
}

double sh_space_violation(const sh_space *s, double params, double decode_ms, double peak_bytes,
                          double cache_bytes)
{
    return excess(params, s->max_params) + excess(decode_ms, s->max_decode_ms) +
           excess(peak_bytes, s->max_peak_bytes) + excess(cache_bytes, s->max_cache_bytes);
}
