/* hf_config.c - genome <-> Hugging Face LFM2 config.json (Lfm2Config,
 * Lfm2MoeConfig); the command is in import_cli.c.  Field list and semantics
 * follow sections 2 and 3.5 of shared/reference/lfm2-architecture.md. */
#include "reports/hf_config.h"
#include "genome/gguf_meta.h"

#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shape analysis -------------------------------------------------------- */

static int shape_mixers(const sh_genome *g, sh_lfm2_shape *s, sh_err *err)
{
    int first_conv = -1, first_attn = -1;
    for (int i = 0; i < g->n_layers; i++) {
        const sh_mixer *m = &g->layers[i].mixer;
        if (m->kind == SH_MIXER_CONV) {
            if (first_conv < 0) { first_conv = i; s->conv_kernel = m->conv_kernel; }
            else if (m->conv_kernel != s->conv_kernel)
                return sh_err_set(err, "layer %d: conv kernel %d differs from layer %d's %d "
                                  "(LFM2 configs have one conv_L_cache)",
                                  i, m->conv_kernel, first_conv, s->conv_kernel);
        } else if (m->kind == SH_MIXER_GQA) {
            if (!m->qk_norm)
                return sh_err_set(err, "layer %d: attention without QK-norm (LFM2 attention "
                                  "always normalises q and k)", i);
            if (first_attn < 0) {
                first_attn = i; s->n_heads = m->n_heads; s->n_kv_heads = m->n_kv_heads;
            } else if (m->n_heads != s->n_heads || m->n_kv_heads != s->n_kv_heads)
                return sh_err_set(err, "layer %d: attention heads %d/%d differ from layer %d's "
                                  "%d/%d (LFM2 configs have one head count)", i, m->n_heads,
                                  m->n_kv_heads, first_attn, s->n_heads, s->n_kv_heads);
            s->n_attn++;
        } else {
            return sh_err_set(err, "layer %d: mixer kind %d has no LFM2 equivalent", i, (int)m->kind);
        }
    }
    if (first_conv < 0) s->conv_kernel = 3;
    else if (s->conv_kernel < 2)
        return sh_err_set(err, "conv kernel %d: llama.cpp requires shortconv.l_cache > 1",
                          s->conv_kernel);
    if (first_attn >= 0) {
        if ((long)s->n_heads * g->head_dim != g->hidden)
            return sh_err_set(err, "attention heads (%d) x head_dim (%d) = %ld differs from "
                              "hidden (%d): llama.cpp's LFM2 loader requires them equal",
                              s->n_heads, g->head_dim, (long)s->n_heads * g->head_dim, g->hidden);
    } else {
        s->n_heads = g->hidden % g->head_dim == 0 ? g->hidden / g->head_dim : 1;
        s->n_kv_heads = s->n_heads;
    }
    return 0;
}

static int shape_ffns(const sh_genome *g, sh_lfm2_shape *s, sh_err *err)
{
    int first_moe = -1;
    s->n_dense = 0;
    for (int i = 0; i < g->n_layers; i++) {
        const sh_ffn *f = &g->layers[i].ffn;
        if (f->kind == SH_FFN_SWIGLU) {
            if (first_moe >= 0)
                return sh_err_set(err, "layer %d: dense FFN after the MoE layer %d (LFM2-MoE "
                                  "puts all dense layers first)", i, first_moe);
            if (s->n_dense == 0) s->ffn_width = f->width;
            else if (f->width != s->ffn_width)
                return sh_err_set(err, "layer %d: FFN width %d differs from layer 0's %d "
                                  "(LFM2 configs have one intermediate_size)",
                                  i, f->width, s->ffn_width);
            s->n_dense++;
        } else if (f->kind == SH_FFN_MOE) {
            if (first_moe < 0) {
                first_moe = i; s->moe = true; s->n_experts = f->n_experts; s->top_k = f->top_k;
                s->expert_width = f->expert_width; s->expert_bias = f->router_bias;
            } else if (f->n_experts != s->n_experts || f->top_k != s->top_k ||
                       f->expert_width != s->expert_width || f->router_bias != s->expert_bias)
                return sh_err_set(err, "layer %d: MoE settings differ from layer %d's "
                                  "(LFM2-MoE configs have one expert setting)", i, first_moe);
        } else {
            return sh_err_set(err, "layer %d: FFN kind %d has no LFM2 equivalent", i, (int)f->kind);
        }
    }
    if (s->moe && s->n_dense == 0) s->ffn_width = s->expert_width;
    return 0;
}

int sh_lfm2_shape_of(const sh_genome *g, sh_lfm2_shape *out, sh_err *err)
{
    memset(out, 0, sizeof *out);
    if (sh_genome_validate(g, err) != 0) return -1;
    if (g->rope_scaling != SH_ROPE_NONE)
        return sh_err_set(err, "llama3 rope scaling cannot be expressed in an LFM2 config");
    if (shape_mixers(g, out, err) != 0 || shape_ffns(g, out, err) != 0) return -1;
    return 0;
}

long sh_lfm2_ff_auto_adjust(long width, bool has_multiplier, double multiplier, long multiple_of)
{
    long f = (long)(2.0 * (double)width / 3.0);          /* python int(2 * F / 3) */
    if (has_multiplier) f = (long)(multiplier * (double)f);
    if (multiple_of > 0) f = multiple_of * ((f + multiple_of - 1) / multiple_of);
    return f;
}

/* ---- export -------------------------------------------------------------------- */

static int set_new(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1;
}

static json_t *layer_type_list(const sh_genome *g, bool idx_only)
{
    json_t *a = json_array();
    for (int i = 0; a && i < g->n_layers; i++) {
        bool attn = g->layers[i].mixer.kind == SH_MIXER_GQA;
        if (idx_only) { if (attn) json_array_append_new(a, json_integer(i)); }
        else json_array_append_new(a, json_string(attn ? "full_attention" : "conv"));
    }
    return a;
}

static int export_common(json_t *o, const sh_genome *g, const sh_lfm2_shape *s)
{
    json_t *rope = json_pack("{s:f,s:s}", "rope_theta", g->rope_theta, "rope_type", "default");
    int rc = 0;
    rc |= set_new(o, "vocab_size", json_integer(g->vocab));
    rc |= set_new(o, "hidden_size", json_integer(g->hidden));
    rc |= set_new(o, "intermediate_size", json_integer(s->ffn_width));
    rc |= set_new(o, "num_hidden_layers", json_integer(g->n_layers));
    rc |= set_new(o, "num_attention_heads", json_integer(s->n_heads));
    rc |= set_new(o, "num_key_value_heads", json_integer(s->n_kv_heads));
    rc |= set_new(o, "head_dim", json_integer(g->head_dim));
    rc |= set_new(o, "max_position_embeddings", json_integer(g->max_context));
    rc |= set_new(o, "initializer_range", json_real(0.02));
    rc |= set_new(o, "norm_eps", json_real(g->norm_eps));
    rc |= set_new(o, "use_cache", json_true());
    rc |= set_new(o, "pad_token_id", json_integer(0));
    rc |= set_new(o, "bos_token_id", json_integer(1));
    rc |= set_new(o, "eos_token_id", json_integer(7));
    rc |= set_new(o, "tie_word_embeddings", json_boolean(g->tied_embeddings));
    rc |= set_new(o, "tie_embedding", json_boolean(g->tied_embeddings));
    rc |= set_new(o, "rope_theta", json_real(g->rope_theta));
    rc |= set_new(o, "rope_parameters", rope);
    rc |= set_new(o, "conv_bias", json_false());
    rc |= set_new(o, "conv_L_cache", json_integer(s->conv_kernel));
    rc |= set_new(o, "layer_types", layer_type_list(g, false));
    rc |= set_new(o, "torch_dtype", json_string("bfloat16"));
    return rc;
}

static int export_dense(json_t *o, const sh_genome *g, const sh_lfm2_shape *s)
{
    int rc = 0;
    rc |= set_new(o, "architectures", json_pack("[s]", "Lfm2ForCausalLM"));
    rc |= set_new(o, "model_type", json_string("lfm2"));
    rc |= export_common(o, g, s);
    rc |= set_new(o, "block_ff_dim", json_integer(s->ffn_width));
    rc |= set_new(o, "block_auto_adjust_ff_dim", json_false());
    rc |= set_new(o, "block_multiple_of", json_integer(256));
    rc |= set_new(o, "block_ffn_dim_multiplier", json_real(1.0));
    rc |= set_new(o, "full_attn_idxs", layer_type_list(g, true));
    return rc;
}

static int export_moe(json_t *o, const sh_genome *g, const sh_lfm2_shape *s)
{
    int rc = 0;
    rc |= set_new(o, "architectures", json_pack("[s]", "Lfm2MoeForCausalLM"));
    rc |= set_new(o, "model_type", json_string("lfm2_moe"));
    rc |= export_common(o, g, s);
    rc |= set_new(o, "moe_intermediate_size", json_integer(s->expert_width));
    rc |= set_new(o, "num_dense_layers", json_integer(s->n_dense));
    rc |= set_new(o, "num_experts", json_integer(s->n_experts));
    rc |= set_new(o, "num_experts_per_tok", json_integer(s->top_k));
    rc |= set_new(o, "use_expert_bias", json_boolean(s->expert_bias));
    rc |= set_new(o, "routed_scaling_factor", json_real(1.0));
    rc |= set_new(o, "norm_topk_prob", json_true());
    return rc;
}

/* true when every real in v prints exactly at `digits` significant digits */
static int reals_exact_at(const json_t *v, int digits)
{
    if (json_is_real(v)) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.*g", digits, json_real_value(v));
        return strtod(buf, NULL) == json_real_value(v);
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) if (!reals_exact_at(x, digits)) return 0;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) if (!reals_exact_at(x, digits)) return 0;
    }
    return 1;
}

char *sh_hf_config_export(const sh_genome *g, sh_err *err)
{
    sh_lfm2_shape s;
    if (sh_lfm2_shape_of(g, &s, err) != 0) {
        sh_err_prefix(err, "HF export");
        return NULL;
    }
    json_t *o = json_object();
    if (!o || (s.moe ? export_moe(o, g, &s) : export_dense(o, g, &s)) != 0) {
        json_decref(o);
        sh_err_set(err, "HF export: out of memory building config.json");
        return NULL;
    }
    /* 15 digits print the genome's decimal numbers as written (1e-05, not
     * 1.0000000000000001e-05); 17 when some value needs them to round-trip */
    int digits = reals_exact_at(o, 15) ? 15 : 17;
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(digits));
    json_decref(o);
    if (!text) sh_err_set(err, "HF export: out of memory writing config.json");
    return text;
}

/* ---- import -------------------------------------------------------------------- */

typedef struct import_ctx {
    json_t *root;
    sh_err *err;
    const sh_hf_import_opts *o;   /* may be NULL */
    bool alt;                     /* reading an alternative spelling: absence is no default */
} import_ctx;

/* A field is absent and `value` stands in for it: reported through the
 * callback, or an error with opts->strict.  0 or -1. */
static int note_default(import_ctx *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int note_default(import_ctx *c, const char *key, const char *fmt, ...)
{
    if (c->alt || !c->o) return 0;
    char value[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    if (c->o->strict)
        return sh_err_set(c->err, "config.json: \"%s\" is missing (strict import; the default would be %s)",
                          key, value);
    if (c->o->on_default) c->o->on_default(c->o->ctx, key, value);
    return 0;
}

/* Integer field in [lo, hi]; *out keeps dflt when absent (or null). */
static int get_int(import_ctx *c, const char *key, long dflt, long lo, long hi, long *out)
{
    json_t *v = json_object_get(c->root, key);
    *out = dflt;
    if (!v) return note_default(c, key, "%ld", dflt);
    if (json_is_null(v)) return 0;   /* given as null (None): the default, no warning */
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v)) d = json_real_value(v);
    else return sh_err_set(c->err, "config.json: \"%s\" must be an integer", key);
    if (d < (double)lo || d > (double)hi)
        return sh_err_set(c->err, "config.json: \"%s\" = %.0f outside [%ld, %ld]", key, d, lo, hi);
    *out = (long)d;
    return 0;
}

static int get_real(import_ctx *c, json_t *obj, const char *key, double dflt, double *out, bool *present)
{
    json_t *v = json_object_get(obj, key);
    *out = dflt;
    if (present) *present = false;
    if (!v) return note_default(c, key, "%g", dflt);
    if (json_is_null(v)) return 0;   /* given as null (None): the default, no warning */
    if (!json_is_number(v))
        return sh_err_set(c->err, "config.json: \"%s\" must be a number", key);
    *out = json_number_value(v);
    if (!isfinite(*out)) return sh_err_set(c->err, "config.json: \"%s\" is not finite", key);
    if (present) *present = true;
    return 0;
}

static int get_bool(import_ctx *c, const char *key, bool dflt, bool *out)
{
    json_t *v = json_object_get(c->root, key);
    *out = dflt;
    if (!v) return note_default(c, key, "%s", dflt ? "true" : "false");
    if (json_is_null(v)) return 0;   /* given as null (None): the default, no warning */
    if (!json_is_boolean(v)) return sh_err_set(c->err, "config.json: \"%s\" must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

/* attn[i] = layer i is attention: layer_types, else full_attn_idxs, else all
 * (Lfm2Config's fallback; Lfm2MoeConfig requires layer_types). */
static int import_layer_types(import_ctx *c, int n, bool moe, bool *attn)
{
    json_t *lt = json_object_get(c->root, "layer_types");
    json_t *idx = json_object_get(c->root, "full_attn_idxs");
    if (lt && !json_is_null(lt)) {
        if (!json_is_array(lt) || (int)json_array_size(lt) != n)
            return sh_err_set(c->err, "config.json: \"layer_types\" must be a list of %d strings", n);
        for (int i = 0; i < n; i++) {
            const char *t = json_string_value(json_array_get(lt, (size_t)i));
            if (t && strcmp(t, "full_attention") == 0) attn[i] = true;
            else if (t && strcmp(t, "conv") == 0) attn[i] = false;
            else return sh_err_set(c->err, "config.json: layer_types[%d] is not \"conv\" or "
                                   "\"full_attention\"", i);
        }
        return 0;
    }
    if (moe) return sh_err_set(c->err, "config.json: lfm2_moe config without \"layer_types\"");
    if (idx && !json_is_null(idx)) {
        if (!json_is_array(idx) || json_array_size(idx) > (size_t)n)
            return sh_err_set(c->err, "config.json: \"full_attn_idxs\" must be a list of layer indices");
        for (int i = 0; i < n; i++) attn[i] = false;
        for (size_t k = 0; k < json_array_size(idx); k++) {
            json_t *v = json_array_get(idx, k);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= n)
                return sh_err_set(c->err, "config.json: full_attn_idxs[%zu] is not a layer "
                                  "index in [0, %d)", k, n);
            attn[json_integer_value(v)] = true;
        }
        return 0;
    }
    for (int i = 0; i < n; i++) attn[i] = true;
    return note_default(c, "layer_types", "every layer full_attention (Lfm2Config's fallback)");
}

static int import_rope_theta(import_ctx *c, double *theta)
{
    json_t *rp = json_object_get(c->root, "rope_parameters");
    bool have = false;
    if (rp && json_is_object(rp)) {
        json_t *type = json_object_get(rp, "rope_type");
        if (type && json_is_string(type) && strcmp(json_string_value(type), "default") != 0)
            return sh_err_set(c->err, "config.json: rope_type \"%s\" is not supported (only default)",
                              json_string_value(type));
        c->alt = true;
        int rc = get_real(c, rp, "rope_theta", 1e6, theta, &have);
        c->alt = false;
        if (rc != 0) return -1;
    }
    c->alt = true;   /* rope_parameters.rope_theta, rope_theta or the legacy theta */
    if (!have && get_real(c, c->root, "rope_theta", 1e6, theta, &have) != 0) { c->alt = false; return -1; }
    if (!have && get_real(c, c->root, "theta", 1e6, theta, &have) != 0) { c->alt = false; return -1; }
    c->alt = false;
    if (!have && note_default(c, "rope_theta", "%g", *theta) != 0) return -1;
    json_t *rs = json_object_get(c->root, "rope_scaling");
    if (rs && !json_is_null(rs))
        return sh_err_set(c->err, "config.json: \"rope_scaling\" is not supported by LFM2 genomes");
    return 0;
}

/* FFN width of dense layers: block_ff_dim overrides intermediate_size; lfm2
 * applies block_auto_adjust_ff_dim (the round-up step unconditional, as in
 * llama.cpp's converter and the older modular_lfm2.py). */
static int import_ffn_width(import_ctx *c, bool moe, long *width)
{
    long raw, ff;
    json_t *bff = json_object_get(c->root, "block_ff_dim");
    c->alt = !moe && bff && !json_is_null(bff);   /* the legacy block_ff_dim takes its place */
    int rc = get_int(c, "intermediate_size", moe ? 7168 : 12288, 1, SH_LIMIT_FFN * 2L, &raw);
    c->alt = true;
    if (rc == 0 && !moe && get_int(c, "block_ff_dim", raw, 1, SH_LIMIT_FFN * 2L, &ff) == 0) raw = ff;
    else if (rc != 0 || !moe) { c->alt = false; return -1; }
    c->alt = false;
    *width = raw;
    if (moe) return 0;
    bool adjust, has_mult;
    double mult;
    long multiple;
    if (get_bool(c, "block_auto_adjust_ff_dim", true, &adjust) != 0) return -1;
    if (!adjust) return 0;   /* the width is used as given: the rounding fields do not matter */
    if (get_real(c, c->root, "block_ffn_dim_multiplier", 1.0, &mult, &has_mult) != 0 ||
        get_int(c, "block_multiple_of", 256, 1, SH_LIMIT_FFN, &multiple) != 0)
        return -1;
    json_t *m = json_object_get(c->root, "block_ffn_dim_multiplier");
    has_mult = !(m && json_is_null(m));   /* absent = class default 1.0; null = None */
    if (has_mult && (mult <= 0 || mult > 64))
        return sh_err_set(c->err, "config.json: block_ffn_dim_multiplier %g out of range", mult);
    *width = sh_lfm2_ff_auto_adjust(raw, has_mult, mult, multiple);
    return 0;
}

static int import_moe(import_ctx *c, sh_ffn *moe_ffn, long *n_dense, long n_layers)
{
    long e, k, fe;
    bool bias, norm;
    double scale;
    if (get_int(c, "num_dense_layers", 2, 0, n_layers, n_dense) != 0 ||
        get_int(c, "num_experts", 32, 1, SH_LIMIT_EXPERTS, &e) != 0 ||
        get_int(c, "num_experts_per_tok", 4, 1, SH_LIMIT_EXPERTS, &k) != 0 ||
        get_int(c, "moe_intermediate_size", 1792, 1, SH_LIMIT_FFN, &fe) != 0 ||
        get_bool(c, "use_expert_bias", true, &bias) != 0 ||
        get_bool(c, "norm_topk_prob", true, &norm) != 0 ||
        get_real(c, c->root, "routed_scaling_factor", 1.0, &scale, NULL) != 0)
        return -1;
    if (!norm) return sh_err_set(c->err, "config.json: norm_topk_prob false is not supported");
    if (scale != 1.0)
        return sh_err_set(c->err, "config.json: routed_scaling_factor %g is not supported (only 1.0)", scale);
    *moe_ffn = (sh_ffn){.kind = SH_FFN_MOE, .n_experts = (int)e, .top_k = (int)k,
                        .expert_width = (int)fe, .router_bias = bias};
    return 0;
}

/* tie_word_embeddings, or the legacy tie_embedding. */
static int import_tie(import_ctx *c, bool *tie)
{
    json_t *legacy = json_object_get(c->root, "tie_embedding");
    bool have_legacy = legacy && !json_is_null(legacy), tie_w;
    c->alt = have_legacy;
    int rc = get_bool(c, "tie_word_embeddings", true, &tie_w);
    c->alt = true;
    if (rc == 0) rc = get_bool(c, "tie_embedding", tie_w, tie);
    c->alt = false;
    return rc;
}

static int import_root(import_ctx *c, sh_genome *g)
{
    const char *mt = json_string_value(json_object_get(c->root, "model_type"));
    if (!mt) return sh_err_set(c->err, "config.json: no \"model_type\" string");
    bool moe = strcmp(mt, "lfm2_moe") == 0;
    if (!moe && strcmp(mt, "lfm2") != 0)
        return sh_err_set(c->err, "config.json: model_type \"%s\" is not lfm2 or lfm2_moe", mt);
    long vocab, hidden, layers, heads, kv, hd, ctx, conv_l, width, n_dense = 0;
    bool conv_bias, tie;
    memset(g, 0, sizeof *g);
    if (get_int(c, "vocab_size", 65536, 1, SH_LIMIT_VOCAB, &vocab) != 0 ||
        get_int(c, "hidden_size", moe ? 2048 : 2560, 1, SH_LIMIT_HIDDEN, &hidden) != 0 ||
        get_int(c, "num_hidden_layers", 32, 1, SH_MAX_LAYERS, &layers) != 0 ||
        get_int(c, "num_attention_heads", 32, 1, SH_LIMIT_HEADS, &heads) != 0 ||
        get_int(c, "num_key_value_heads", 8, 1, SH_LIMIT_HEADS, &kv) != 0)
        return -1;
    c->alt = true;   /* head_dim: derived from hidden_size / num_attention_heads when absent */
    int hd_rc = get_int(c, "head_dim", hidden % heads == 0 ? hidden / heads : 0, 0, SH_LIMIT_HEAD_DIM, &hd);
    c->alt = false;
    if (hd_rc != 0 ||
        get_int(c, "max_position_embeddings", 128000, 1, SH_LIMIT_CONTEXT, &ctx) != 0 ||
        get_int(c, "conv_L_cache", 3, 1, SH_LIMIT_CONV_KERNEL, &conv_l) != 0 ||
        get_bool(c, "conv_bias", false, &conv_bias) != 0 ||
        import_tie(c, &tie) != 0 ||
        get_real(c, c->root, "norm_eps", 1e-5, &g->norm_eps, NULL) != 0 ||
        import_rope_theta(c, &g->rope_theta) != 0 ||
        import_ffn_width(c, moe, &width) != 0)
        return -1;
    if (hd == 0)
        return sh_err_set(c->err, "config.json: hidden_size %ld not divisible by "
                          "num_attention_heads %ld and no head_dim", hidden, heads);
    if (conv_bias) return sh_err_set(c->err, "config.json: conv_bias true is not supported by genomes");
    if (width > SH_LIMIT_FFN) return sh_err_set(c->err, "config.json: FFN width %ld too large", width);
    sh_ffn moe_ffn = {0};
    if (moe && import_moe(c, &moe_ffn, &n_dense, layers) != 0) return -1;
    bool attn[SH_MAX_LAYERS];
    if (import_layer_types(c, (int)layers, moe, attn) != 0) return -1;
    g->vocab = (int)vocab; g->hidden = (int)hidden; g->head_dim = (int)hd;
    g->max_context = (int)ctx; g->tied_embeddings = tie; g->rope_scaling = SH_ROPE_NONE;
    g->n_layers = (int)layers;
    for (int i = 0; i < g->n_layers; i++) {
        sh_layer *l = &g->layers[i];
        l->mixer = attn[i] ? (sh_mixer){.kind = SH_MIXER_GQA, .n_heads = (int)heads,
                                        .n_kv_heads = (int)kv, .qk_norm = true}
                           : (sh_mixer){.kind = SH_MIXER_CONV, .conv_kernel = (int)conv_l};
        l->ffn = (!moe || i < n_dense) ? (sh_ffn){.kind = SH_FFN_SWIGLU, .width = (int)width} : moe_ffn;
    }
    return sh_genome_validate(g, c->err) == 0 ? 0 : sh_err_prefix(c->err, "config.json");
}

int sh_hf_config_import(const char *json_text, size_t len, sh_genome *out, sh_err *err)
{
    return sh_hf_config_import_ex(json_text, len, NULL, out, err);
}

int sh_hf_config_import_ex(const char *json_text, size_t len, const sh_hf_import_opts *o, sh_genome *out,
                           sh_err *err)
{
    if (len > SH_HF_CONFIG_MAX)
        return sh_err_set(err, "config.json: %zu bytes, more than the %u accepted", len, SH_HF_CONFIG_MAX);
    json_error_t je;
    json_t *root = json_loadb(json_text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return sh_err_set(err, "config.json: line %d: %s", je.line, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return sh_err_set(err, "config.json: top level is not an object");
    }
    import_ctx c = {root, err, o, false};
    int rc = import_root(&c, out);
    json_decref(root);
    return rc;
}

int sh_hf_config_import_file_ex(const char *path, const sh_hf_import_opts *o, sh_genome *out, sh_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sh_err_set(err, "%s: %s", path, strerror(errno));
    char *buf = malloc(SH_HF_CONFIG_MAX + 1);
    if (!buf) { fclose(f); return sh_err_set(err, "%s: out of memory", path); }
    size_t n = fread(buf, 1, SH_HF_CONFIG_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc;
    if (bad) rc = sh_err_set(err, "%s: read error", path);
    else if (n >= 4 && memcmp(buf, "GGUF", 4) == 0)
        rc = sh_err_set(err, "%s: this is a GGUF file, not a config.json (import takes a Hugging Face "
                        "config.json; GGUF import is not supported yet)", path);
    else if (n > SH_HF_CONFIG_MAX)
        rc = sh_err_set(err, "%s: larger than %u bytes, not a config.json", path, SH_HF_CONFIG_MAX);
    else if ((rc = sh_hf_config_import_ex(buf, n, o, out, err)) != 0) sh_err_prefix(err, "%s", path);
    free(buf);
    return rc;
}
