/* genome_json.c - the JSON form of a genome (jansson), strict both ways.
 *
 * {
 *   "format": "starhil-genome/1",
 *   "hidden": 1024, "vocab": 65536, "head_dim": 64,
 *   "rope_theta": 1000000, "norm_eps": 1e-05, "max_context": 128000,
 *   "tied_embeddings": true,
 *   "rope_scaling": {"type": "llama3", "factor": 32, "low_freq_factor": 1,
 *                    "high_freq_factor": 4, "original_context": 8192},   (optional)
 *   "layers": [
 *     {"mixer": {"kind": "conv", "kernel": 3},
 *      "ffn": {"kind": "swiglu", "width": 4608}, "repeat": 2},
 *     {"mixer": {"kind": "gqa", "heads": 16, "kv_heads": 8, "qk_norm": true},
 *      "ffn": {"kind": "moe", "experts": 32, "top_k": 4, "expert_width": 1792,
 *              "router_bias": true}}
 *   ]
 * }
 * Unknown keys are errors (a typo must not silently change the model). */
#include "genome/genome.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GENOME_JSON_MAX (1u << 20)

static json_t *mixer_json(const sh_mixer *m)
{
    if (m->kind == SH_MIXER_CONV) return json_pack("{s:s, s:i}", "kind", "conv", "kernel", m->conv_kernel);
    return json_pack("{s:s, s:i, s:i, s:b}", "kind", "gqa", "heads", m->n_heads, "kv_heads", m->n_kv_heads,
                     "qk_norm", m->qk_norm);
}

static json_t *ffn_json(const sh_ffn *f)
{
    if (f->kind == SH_FFN_SWIGLU) return json_pack("{s:s, s:i}", "kind", "swiglu", "width", f->width);
    return json_pack("{s:s, s:i, s:i, s:i, s:b}", "kind", "moe", "experts", f->n_experts, "top_k", f->top_k,
                     "expert_width", f->expert_width, "router_bias", f->router_bias);
}

char *sh_genome_to_json(const sh_genome *g, bool pretty, sh_err *err)
{
    json_t *root = json_pack("{s:s, s:i, s:i, s:i, s:f, s:f, s:i, s:b}", "format", "starhil-genome/1", "hidden",
                             g->hidden, "vocab", g->vocab, "head_dim", g->head_dim, "rope_theta", g->rope_theta,
                             "norm_eps", g->norm_eps, "max_context", g->max_context, "tied_embeddings",
                             g->tied_embeddings);
    if (!root) { sh_err_set(err, "genome json: out of memory"); return NULL; }
    if (g->rope_scaling == SH_ROPE_LLAMA3)
        json_object_set_new(root, "rope_scaling",
                            json_pack("{s:s, s:f, s:f, s:f, s:i}", "type", "llama3", "factor", g->rope_factor,
                                      "low_freq_factor", g->rope_low_freq, "high_freq_factor", g->rope_high_freq,
                                      "original_context", g->rope_orig_context));
    json_t *layers = json_array();
    for (int i = 0; i < g->n_layers;) {
        int run = 1;
        while (i + run < g->n_layers && sh_layer_equal(&g->layers[i], &g->layers[i + run])) run++;
        json_t *l = json_pack("{s:o, s:o}", "mixer", mixer_json(&g->layers[i].mixer), "ffn",
                              ffn_json(&g->layers[i].ffn));
        if (run > 1) json_object_set_new(l, "repeat", json_integer(run));
        json_array_append_new(layers, l);
        i += run;
    }
    json_object_set_new(root, "layers", layers);
    char *s = json_dumps(root, (pretty ? JSON_INDENT(2) : JSON_COMPACT) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(root);
    if (!s) sh_err_set(err, "genome json: out of memory");
    return s;
}

/* ---- strict readers ---- */

static int only_keys(json_t *obj, const char *where, const char *const *allowed, sh_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(key, *a)) ok = 1;
        if (!ok) return sh_err_set(err, "genome json: %s: unknown key \"%s\"", where, key);
    }
    return 0;
}

static int get_int(json_t *obj, const char *where, const char *key, long long lo, long long hi, int required,
                   int *out, sh_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required) return sh_err_set(err, "genome json: %s: missing \"%s\"", where, key);
        return 0;
    }
    if (!json_is_integer(v)) return sh_err_set(err, "genome json: %s: \"%s\" must be a whole number", where, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return sh_err_set(err, "genome json: %s: \"%s\" (%lld) out of range [%lld, %lld]", where, key, (long long)x,
                          lo, hi);
    *out = (int)x;
    return 0;
}

static int get_num(json_t *obj, const char *where, const char *key, int required, double *out, sh_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required) return sh_err_set(err, "genome json: %s: missing \"%s\"", where, key);
        return 0;
    }
    if (!json_is_number(v)) return sh_err_set(err, "genome json: %s: \"%s\" must be a number", where, key);
    *out = json_number_value(v);
    return 0;
}

static int get_bool(json_t *obj, const char *where, const char *key, bool *out, sh_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) return sh_err_set(err, "genome json: %s: \"%s\" must be true or false", where, key);
    *out = json_is_true(v);
    return 0;
}

static int read_mixer(json_t *o, const char *where, sh_mixer *m, sh_err *err)
{
    memset(m, 0, sizeof *m);
    if (!json_is_object(o)) return sh_err_set(err, "genome json: %s: \"mixer\" must be an object", where);
    const char *kind = json_string_value(json_object_get(o, "kind"));
    if (!kind) return sh_err_set(err, "genome json: %s: mixer needs a \"kind\" string", where);
    if (!strcmp(kind, "conv")) {
        static const char *const k[] = {"kind", "kernel", NULL};
        m->kind = SH_MIXER_CONV;
        return only_keys(o, where, k, err) ||
               get_int(o, where, "kernel", 2, SH_LIMIT_CONV_KERNEL, 1, &m->conv_kernel, err) ? -1 : 0;
    }
    if (!strcmp(kind, "gqa")) {
        static const char *const k[] = {"kind", "heads", "kv_heads", "qk_norm", NULL};
        m->kind = SH_MIXER_GQA;
        return only_keys(o, where, k, err) || get_int(o, where, "heads", 1, SH_LIMIT_HEADS, 1, &m->n_heads, err) ||
               get_int(o, where, "kv_heads", 1, SH_LIMIT_HEADS, 1, &m->n_kv_heads, err) ||
               get_bool(o, where, "qk_norm", &m->qk_norm, err) ? -1 : 0;
    }
    return sh_err_set(err, "genome json: %s: unknown mixer kind \"%.40s\" (conv, gqa)", where, kind);
}

static int read_ffn(json_t *o, const char *where, sh_ffn *f, sh_err *err)
{
    memset(f, 0, sizeof *f);
    if (!json_is_object(o)) return sh_err_set(err, "genome json: %s: \"ffn\" must be an object", where);
    const char *kind = json_string_value(json_object_get(o, "kind"));
    if (!kind) return sh_err_set(err, "genome json: %s: ffn needs a \"kind\" string", where);
    if (!strcmp(kind, "swiglu")) {
        static const char *const k[] = {"kind", "width", NULL};
        f->kind = SH_FFN_SWIGLU;
        return only_keys(o, where, k, err) || get_int(o, where, "width", 1, SH_LIMIT_FFN, 1, &f->width, err) ? -1 : 0;
    }
    if (!strcmp(kind, "moe")) {
        static const char *const k[] = {"kind", "experts", "top_k", "expert_width", "router_bias", NULL};
        f->kind = SH_FFN_MOE;
        return only_keys(o, where, k, err) ||
               get_int(o, where, "experts", 1, SH_LIMIT_EXPERTS, 1, &f->n_experts, err) ||
               get_int(o, where, "top_k", 1, SH_LIMIT_EXPERTS, 1, &f->top_k, err) ||
               get_int(o, where, "expert_width", 1, SH_LIMIT_FFN, 1, &f->expert_width, err) ||
               get_bool(o, where, "router_bias", &f->router_bias, err) ? -1 : 0;
    }
    return sh_err_set(err, "genome json: %s: unknown ffn kind \"%.40s\" (swiglu, moe)", where, kind);
}

static int read_rope(json_t *o, sh_genome *g, sh_err *err)
{
    if (!json_is_object(o)) return sh_err_set(err, "genome json: \"rope_scaling\" must be an object");
    static const char *const k[] = {"type", "factor", "low_freq_factor", "high_freq_factor", "original_context", NULL};
    if (only_keys(o, "rope_scaling", k, err)) return -1;
    const char *type = json_string_value(json_object_get(o, "type"));
    if (!type) return sh_err_set(err, "genome json: rope_scaling: missing \"type\"");
    if (!strcmp(type, "none")) { g->rope_scaling = SH_ROPE_NONE; return 0; }
    if (strcmp(type, "llama3")) return sh_err_set(err, "genome json: rope_scaling: unknown type \"%.40s\"", type);
    g->rope_scaling = SH_ROPE_LLAMA3;
    return get_num(o, "rope_scaling", "factor", 1, &g->rope_factor, err) ||
           get_num(o, "rope_scaling", "low_freq_factor", 1, &g->rope_low_freq, err) ||
           get_num(o, "rope_scaling", "high_freq_factor", 1, &g->rope_high_freq, err) ||
           get_int(o, "rope_scaling", "original_context", 1, SH_LIMIT_CONTEXT, 1, &g->rope_orig_context, err) ? -1 : 0;
}

static int read_layers(json_t *arr, sh_genome *g, sh_err *err)
{
    if (!json_is_array(arr)) return sh_err_set(err, "genome json: \"layers\" must be an array");
    g->n_layers = 0;
    size_t i;
    json_t *l;
    json_array_foreach(arr, i, l) {
        char where[48];
        snprintf(where, sizeof where, "layers[%zu]", i);
        if (!json_is_object(l)) return sh_err_set(err, "genome json: %s must be an object", where);
        static const char *const k[] = {"mixer", "ffn", "repeat", NULL};
        if (only_keys(l, where, k, err)) return -1;
        sh_layer layer;
        int repeat = 1;
        if (read_mixer(json_object_get(l, "mixer"), where, &layer.mixer, err) ||
            read_ffn(json_object_get(l, "ffn"), where, &layer.ffn, err) ||
            get_int(l, where, "repeat", 1, SH_MAX_LAYERS, 0, &repeat, err))
            return -1;
        if (g->n_layers + repeat > SH_MAX_LAYERS)
            return sh_err_set(err, "genome json: %s: more than %d layers in total", where, SH_MAX_LAYERS);
        for (int r = 0; r < repeat; r++) g->layers[g->n_layers++] = layer;
    }
    if (g->n_layers == 0) return sh_err_set(err, "genome json: \"layers\" is empty");
    return 0;
}

int sh_genome_from_json(const char *text, sh_genome *out, sh_err *err)
{
    size_t n = strnlen(text, GENOME_JSON_MAX + 1);
    if (n > GENOME_JSON_MAX) return sh_err_set(err, "genome json: larger than %u bytes", GENOME_JSON_MAX);
    json_error_t je;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    if (!root) return sh_err_set(err, "genome json: line %d column %d: %s", je.line, je.column, je.text);
    int rc = -1;
    sh_genome g;
    sh_genome_init(&g);
    static const char *const k[] = {"format", "hidden", "vocab", "head_dim", "rope_theta", "norm_eps",
                                    "max_context", "tied_embeddings", "rope_scaling", "layers", NULL};
    if (!json_is_object(root)) { sh_err_set(err, "genome json: the top level must be an object"); goto done; }
    if (only_keys(root, "top level", k, err)) goto done;
    json_t *fmt = json_object_get(root, "format");
    if (fmt && (!json_is_string(fmt) || strcmp(json_string_value(fmt), "starhil-genome/1"))) {
        sh_err_set(err, "genome json: unsupported \"format\" (expected \"starhil-genome/1\")");
        goto done;
    }
    if (get_int(root, "top level", "hidden", 1, SH_LIMIT_HIDDEN, 1, &g.hidden, err) ||
        get_int(root, "top level", "vocab", 2, SH_LIMIT_VOCAB, 1, &g.vocab, err) ||
        get_int(root, "top level", "head_dim", 2, SH_LIMIT_HEAD_DIM, 1, &g.head_dim, err) ||
        get_num(root, "top level", "rope_theta", 0, &g.rope_theta, err) ||
        get_num(root, "top level", "norm_eps", 0, &g.norm_eps, err) ||
        get_int(root, "top level", "max_context", 1, SH_LIMIT_CONTEXT, 0, &g.max_context, err) ||
        get_bool(root, "top level", "tied_embeddings", &g.tied_embeddings, err))
        goto done;
    json_t *rope = json_object_get(root, "rope_scaling");
    if (rope && read_rope(rope, &g, err)) goto done;
    if (read_layers(json_object_get(root, "layers"), &g, err)) goto done;
    if (sh_genome_validate(&g, err)) goto done;
    *out = g;
    rc = 0;
done:
    json_decref(root);
    return rc;
}
