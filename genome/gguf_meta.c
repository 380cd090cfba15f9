/* gguf_meta.c - GGUF metadata reader (bounded, defensive: every count and length
 * is checked against the bytes read) and the genome import from it.  Keys
 * follow shared/reference/lfm2-architecture.md section 4 for lfm2 / lfm2moe and
 * llama.cpp's names for qwen3 / llama ({arch}.embedding_length, ...). */
#include "genome/gguf_meta.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { G_U8, G_I8, G_U16, G_I16, G_U32, G_I32, G_F32, G_BOOL, G_STR, G_ARR, G_U64, G_I64, G_F64 };

typedef struct rd { const uint8_t *p; size_t n, o; sh_err *err; const char *path; } rd;

static int need(rd *r, size_t k, const char *what)
{
    if (r->n - r->o < k)
        return sh_err_set(r->err, "%s: truncated in %s (offset %zu)", r->path, what, r->o);
    return 0;
}
static int u32(rd *r, uint32_t *v, const char *w) { if (need(r, 4, w)) return -1; memcpy(v, r->p + r->o, 4); r->o += 4; return 0; }
static int u64(rd *r, uint64_t *v, const char *w) { if (need(r, 8, w)) return -1; memcpy(v, r->p + r->o, 8); r->o += 8; return 0; }

static size_t scalar_size(uint32_t t)
{
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < sizeof sz / sizeof sz[0] ? sz[t] : 0;
}

static int skip_str(rd *r, const char *w)
{
    uint64_t len;
    if (u64(r, &len, w)) return -1;
    if (len > r->n - r->o) return sh_err_set(r->err, "%s: %s: string of %llu bytes runs past the end", r->path, w,
                                             (unsigned long long)len);
    r->o += (size_t)len;
    return 0;
}

int sh_gguf_meta_read(const char *path, sh_gguf_meta *m, sh_err *err)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "rb");
    if (!f) return sh_err_set(err, "%s: %s", path, strerror(errno));
    size_t cap = SH_GGUF_META_MAX;   /* a smaller file: its size (an empty one: 1) */
    if (fseek(f, 0, SEEK_END) == 0) {
        long sz = ftell(f);
        if (sz >= 0 && (unsigned long)sz < cap) cap = sz ? (size_t)sz : 1;
        rewind(f);
    }
    m->buf = malloc(cap);
    if (!m->buf) { fclose(f); return sh_err_set(err, "%s: out of memory", path); }
    m->n = fread(m->buf, 1, cap, f);
    fclose(f);
    rd r = {m->buf, m->n, 0, err, path};
    uint32_t ver;
    if (m->n < 4 || memcmp(m->buf, "GGUF", 4)) { sh_gguf_meta_free(m); return sh_err_set(err, "%s: not a GGUF file (bad magic)", path); }
    r.o = 4;
    if (u32(&r, &ver, "header") || u64(&r, &m->n_tensors, "header") || u64(&r, &m->n_kv, "header")) goto fail;
    if (ver < 2 || ver > 3) { sh_err_set(err, "%s: GGUF version %u (2 or 3 supported)", path, ver); goto fail; }
    if (m->n_kv > m->n / 12 || m->n_tensors > m->n / 24) {
        sh_err_set(err, "%s: truncated or not a GGUF file: its header declares %llu keys and %llu tensors, more "
                   "than %s%zu bytes can hold", path, (unsigned long long)m->n_kv, (unsigned long long)m->n_tensors,
                   m->n < SH_GGUF_META_MAX ? "its " : "the metadata limit of ", m->n);
        goto fail;
    }
    m->kv = calloc((size_t)m->n_kv + 1, sizeof *m->kv);
    m->t = calloc((size_t)m->n_tensors + 1, sizeof *m->t);
    m->names = malloc(m->n + 1);   /* keys and names together are shorter than the section */
    if (!m->kv || !m->t || !m->names) { sh_err_set(err, "%s: out of memory", path); goto fail; }
    size_t nn = 0;
    for (uint64_t i = 0; i < m->n_kv; i++) {
        sh_gguf_kv *kv = &m->kv[i];
        kv->off = r.o;
        uint64_t klen;
        if (u64(&r, &klen, "a key") ) goto fail;
        if (klen == 0 || klen > 65535 || klen > r.n - r.o) { sh_err_set(err, "%s: key %llu: bad length %llu", path, (unsigned long long)i, (unsigned long long)klen); goto fail; }
        memcpy(m->names + nn, r.p + r.o, (size_t)klen);
        m->names[nn + klen] = 0;
        kv->key = m->names + nn;
        nn += (size_t)klen + 1;
        r.o += (size_t)klen;
        if (u32(&r, &kv->type, kv->key)) goto fail;
        kv->val_off = r.o;
        if (kv->type == G_STR) { if (skip_str(&r, kv->key)) goto fail; }
        else if (kv->type == G_ARR) {
            if (u32(&r, &kv->arr_type, kv->key) || u64(&r, &kv->arr_len, kv->key)) goto fail;
            kv->val_off = r.o;
            if (kv->arr_type == G_STR) {
                if (kv->arr_len > r.n - r.o) { sh_err_set(err, "%s: %s: %llu strings cannot fit", path, kv->key, (unsigned long long)kv->arr_len); goto fail; }
                for (uint64_t k = 0; k < kv->arr_len; k++) if (skip_str(&r, kv->key)) goto fail;
            } else {
                size_t es = scalar_size(kv->arr_type);
                if (!es) { sh_err_set(err, "%s: %s: array of unknown type %u", path, kv->key, kv->arr_type); goto fail; }
                if (kv->arr_len > (r.n - r.o) / es) { sh_err_set(err, "%s: %s: array of %llu runs past the end", path, kv->key, (unsigned long long)kv->arr_len); goto fail; }
                r.o += (size_t)kv->arr_len * es;
            }
        } else {
            size_t es = scalar_size(kv->type);
            if (!es) { sh_err_set(err, "%s: %s: unknown value type %u", path, kv->key, kv->type); goto fail; }
            if (need(&r, es, kv->key)) goto fail;
            r.o += es;
        }
        kv->len = r.o - kv->off;
    }
    for (uint64_t i = 0; i < m->n_tensors; i++) {
        sh_gguf_tinfo *t = &m->t[i];
        uint64_t len, off;
        if (u64(&r, &len, "a tensor name")) goto fail;
        if (len == 0 || len > 4096 || len > r.n - r.o) { sh_err_set(err, "%s: tensor %llu: bad name length", path, (unsigned long long)i); goto fail; }
        memcpy(m->names + nn, r.p + r.o, (size_t)len);
        m->names[nn + len] = 0;
        t->name = m->names + nn;
        nn += (size_t)len + 1;
        r.o += (size_t)len;
        if (u32(&r, &t->n_dims, t->name)) goto fail;
        if (t->n_dims < 1 || t->n_dims > 4) { sh_err_set(err, "%s: tensor %s: %u dimensions", path, t->name, t->n_dims); goto fail; }
        for (uint32_t d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) if (u64(&r, &t->ne[d], t->name)) goto fail;
        if (u32(&r, &t->type, t->name) || u64(&r, &off, t->name)) goto fail;
        t->off = off;
    }
    uint64_t align = 32;
    const sh_gguf_kv *ak = sh_gguf_meta_find(m, "general.alignment");
    if (ak && ak->type == G_U32) {
        uint32_t a;
        memcpy(&a, m->buf + ak->val_off, 4);
        if (a < 1 || a > 65536 || (a & (a - 1))) { sh_err_set(err, "%s: general.alignment %u is not a power of two in 1..65536", path, a); goto fail; }
        align = a;
    }
    m->data_off = (r.o + align - 1) / align * align;
    return 0;
fail:
    sh_gguf_meta_free(m);
    return -1;
}

void sh_gguf_meta_free(sh_gguf_meta *m)
{
    free(m->buf); free(m->kv); free(m->t); free(m->names);
    memset(m, 0, sizeof *m);
}

const sh_gguf_kv *sh_gguf_meta_find(const sh_gguf_meta *m, const char *key)
{
    for (uint64_t i = 0; i < m->n_kv; i++) if (!strcmp(m->kv[i].key, key)) return &m->kv[i];
    return NULL;
}

static const sh_gguf_tinfo *tensor(const sh_gguf_meta *m, const char *name)
{
    for (uint64_t i = 0; i < m->n_tensors; i++) if (!strcmp(m->t[i].name, name)) return &m->t[i];
    return NULL;
}

/* element i of an integer value (scalar: i ignored) as a double; -1 error */
static int num_at(const sh_gguf_meta *m, const sh_gguf_kv *kv, uint64_t i, double *out)
{
    uint32_t t = kv->type == G_ARR ? kv->arr_type : kv->type;
    size_t es = scalar_size(t);
    if (!es || t == G_STR) return -1;
    if (kv->type == G_ARR && i >= kv->arr_len) return -1;
    const uint8_t *p = m->buf + kv->val_off + (kv->type == G_ARR ? (size_t)i * es : 0);
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f; uint64_t u64;
            int64_t i64; double d; } v;
    memcpy(&v, p, es);
    switch (t) {
    case G_U8: *out = v.u8; break;      case G_I8: *out = v.i8; break;
    case G_U16: *out = v.u16; break;    case G_I16: *out = v.i16; break;
    case G_U32: *out = v.u32; break;    case G_I32: *out = v.i32; break;
    case G_F32: *out = v.f; break;      case G_BOOL: *out = v.u8 != 0; break;
    case G_U64: *out = (double)v.u64; break; case G_I64: *out = (double)v.i64; break;
    case G_F64: *out = v.d; break;
    default: return -1;
    }
    return 0;
}

/* the shortest decimal that gives the same f32: GGUF stores eps and theta as
 * f32, the genome keeps the value the config meant (1e-05, not 9.99999975e-06) */
static double f32_clean(double v)
{
    char b[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(b, sizeof b, "%.*g", p, v);
        double w = strtod(b, NULL);
        if ((float)w == (float)v) return w;
    }
    return v;
}

typedef struct imp { const sh_gguf_meta *m; const char *arch; sh_err *err; } imp;

/* {arch}.suffix, element i for per-layer arrays (a scalar applies to every layer) */
static int get(imp *c, const char *suffix, uint64_t i, bool required, double dflt, double *out)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", c->arch, suffix);
    const sh_gguf_kv *kv = sh_gguf_meta_find(c->m, key);
    if (!kv) {
        if (required) return sh_err_set(c->err, "GGUF: key %s missing", key);
        *out = dflt;
        return 0;
    }
    if (kv->type == G_ARR && i >= kv->arr_len)
        return sh_err_set(c->err, "GGUF: %s has %llu entries, layer %llu needs one", key,
                          (unsigned long long)kv->arr_len, (unsigned long long)i);
    if (num_at(c->m, kv, i, out) || !isfinite(*out)) return sh_err_set(c->err, "GGUF: %s is not a number", key);
    return 0;
}

static int get_int(imp *c, const char *suffix, uint64_t i, bool required, long dflt, long lo, long hi, long *out)
{
    double v;
    if (get(c, suffix, i, required, (double)dflt, &v)) return -1;
    if (v != floor(v) || v < (double)lo || v > (double)hi)
        return sh_err_set(c->err, "GGUF: %s.%s = %g out of range %ld..%ld", c->arch, suffix, v, lo, hi);
    *out = (long)v;
    return 0;
}

/* the llama3 RoPE scaling of a llama file.  Its converter stores only the
 * per-frequency divisors (rope_freqs.weight), not the config: the factor is
 * their largest value, the original context the file's
 * rope.scaling.original_context_length (else the converter's 8192), the
 * low / high frequency factors Llama 3's 1 and 4; the divisors must then be
 * what those give, else the genome has to be given as text. */
static int rope_llama3(imp *c, const sh_gguf_tinfo *t, long hd, double theta, sh_genome *g)
{
    sh_err *err = c->err;
    const long half = hd / 2;
    if (t->type != 0 || t->n_dims != 1 || t->ne[0] != (uint64_t)half)
        return sh_err_set(err, "GGUF: tensor rope_freqs.weight is not f32 {%ld} (head_dim %ld)", half, hd);
    if (c->m->data_off > c->m->n || t->off > c->m->n - c->m->data_off ||
        (uint64_t)half * 4 > c->m->n - c->m->data_off - t->off)
        return sh_err_set(err, "GGUF: tensor rope_freqs.weight lies past the first %zu bytes read (truncated file, or "
                          "give the genome as text)", c->m->n);
    const uint8_t *p = c->m->buf + c->m->data_off + t->off;
    double factor = 0, oc;
    if (get(c, "rope.scaling.original_context_length", 0, false, 8192, &oc)) return -1;
    if (!(oc >= 1 && oc <= SH_LIMIT_CONTEXT && oc == floor(oc)))
        return sh_err_set(err, "GGUF: %s.rope.scaling.original_context_length = %g out of range", c->arch, oc);
    for (long i = 0; i < half; i++) {
        float v;
        memcpy(&v, p + 4 * i, 4);
        if (!(v >= 1.0f && v <= 1e6f)) return sh_err_set(err, "GGUF: rope_freqs.weight[%ld] = %g (divisors are 1 or more)", i, (double)v);
        if (v > factor) factor = v;
    }
    const double lo = 1.0, hi = 4.0;
    for (long i = 0; i < half; i++) {
        float v;
        memcpy(&v, p + 4 * i, 4);
        double wl = 2.0 * 3.141592653589793 * pow(theta, (double)(2 * i) / (double)hd), want;
        if (wl < oc / hi) want = 1.0;
        else if (wl > oc / lo) want = factor;
        else { double s = (oc / wl - lo) / (hi - lo); want = 1.0 / ((1.0 - s) / factor + s); }
        if (fabs(v - want) > 1e-3 * want)
            return sh_err_set(err, "GGUF: rope_freqs.weight[%ld] = %g, llama3 scaling (factor %g, low 1, high 4, original "
                              "context %g) gives %g: give the genome as text with its rope=llama3(...)", i, (double)v,
                              factor, oc, want);
    }
    g->rope_scaling = SH_ROPE_LLAMA3;
    g->rope_factor = f32_clean(factor); g->rope_low_freq = lo; g->rope_high_freq = hi; g->rope_orig_context = (int)oc;
    return 0;
}

int sh_gguf_import_genome(const sh_gguf_meta *m, sh_genome *g, sh_err *err)
{
    const sh_gguf_kv *a = sh_gguf_meta_find(m, "general.architecture");
    if (!a || a->type != G_STR) return sh_err_set(err, "GGUF: general.architecture missing or not a string");
    char arch[32];
    uint64_t alen;
    memcpy(&alen, m->buf + a->val_off, 8);
    if (alen == 0 || alen >= sizeof arch) return sh_err_set(err, "GGUF: unknown architecture");
    memcpy(arch, m->buf + a->val_off + 8, (size_t)alen);
    arch[alen] = 0;
    bool lfm2 = !strcmp(arch, "lfm2"), moe = !strcmp(arch, "lfm2moe"), qwen3 = !strcmp(arch, "qwen3"),
         llama = !strcmp(arch, "llama");
    if (!lfm2 && !moe && !qwen3 && !llama)
        return sh_err_set(err, "GGUF: architecture '%s' (importable: lfm2, lfm2moe, qwen3, llama)", arch);
    imp c = {m, arch, err};
    memset(g, 0, sizeof *g);
    long H, L, heads, ctx, hd, vocab = 0, conv_l = 3;
    double eps, theta;
    if (get_int(&c, "embedding_length", 0, true, 0, 1, SH_LIMIT_HIDDEN, &H) ||
        get_int(&c, "block_count", 0, true, 0, 1, SH_MAX_LAYERS, &L) ||
        get_int(&c, "context_length", 0, false, 4096, 1, SH_LIMIT_CONTEXT, &ctx) ||
        get(&c, "attention.layer_norm_rms_epsilon", 0, true, 0, &eps) ||
        get(&c, "rope.freq_base", 0, false, 10000.0, &theta))
        return -1;
    /* head count: a scalar in real files; an array takes its first non-zero entry */
    heads = 0;
    for (long l = 0; l < L && !heads; l++)
        if (get_int(&c, "attention.head_count", (uint64_t)l, true, 0, 0, SH_LIMIT_HEADS, &heads)) return -1;
    if (!heads) return sh_err_set(err, "GGUF: %s.attention.head_count is 0 on every layer", arch);
    if (get_int(&c, "attention.key_length", 0, false, H / heads, 1, SH_LIMIT_HEAD_DIM, &hd)) return -1;
    const sh_gguf_tinfo *emb = tensor(m, "token_embd.weight");
    if (!emb || emb->n_dims != 2 || emb->ne[0] != (uint64_t)H)
        return sh_err_set(err, "GGUF: tensor token_embd.weight missing or not {%ld, vocab}", H);
    if (emb->ne[1] < 1 || emb->ne[1] > SH_LIMIT_VOCAB) return sh_err_set(err, "GGUF: vocabulary of %llu", (unsigned long long)emb->ne[1]);
    vocab = (long)emb->ne[1];
    if ((lfm2 || moe) && get_int(&c, "shortconv.l_cache", 0, true, 3, 2, SH_LIMIT_CONV_KERNEL, &conv_l)) return -1;
    long n_dense = L, E = 0, K = 0, Fe = 0;
    bool bias = false;
    if (moe) {
        long gating;
        if (get_int(&c, "expert_count", 0, true, 0, 1, 4096, &E) || get_int(&c, "expert_used_count", 0, true, 0, 1, 4096, &K) ||
            get_int(&c, "expert_feed_forward_length", 0, true, 0, 1, SH_LIMIT_FFN, &Fe) ||
            get_int(&c, "leading_dense_block_count", 0, false, 0, 0, L, &n_dense) ||
            get_int(&c, "expert_gating_func", 0, false, 2, 0, 3, &gating))
            return -1;
        if (gating != 2) return sh_err_set(err, "GGUF: lfm2moe.expert_gating_func %ld (genomes route with sigmoid, 2)", gating);
        char name[64];
        snprintf(name, sizeof name, "blk.%ld.exp_probs_b.bias", n_dense);
        bias = tensor(m, name) != NULL;
    }
    g->vocab = (int)vocab; g->hidden = (int)H; g->head_dim = (int)hd; g->max_context = (int)ctx;
    g->norm_eps = f32_clean(eps); g->rope_theta = f32_clean(theta); g->n_layers = (int)L;
    g->tied_embeddings = tensor(m, "output.weight") == NULL;
    g->rope_scaling = SH_ROPE_NONE;
    {
        double f, rd;
        if (get(&c, "rope.scaling.factor", 0, false, 0, &f) || get(&c, "rope.dimension_count", 0, false, (double)hd, &rd))
            return -1;
        if (f != 0.0 && f != 1.0)   /* llama.cpp divides every angle by it: not a genome's RoPE */
            return sh_err_set(err, "GGUF: %s.rope.scaling.factor = %g: linear / YaRN RoPE scaling is not supported", arch, f);
        if (rd != (double)hd)
            return sh_err_set(err, "GGUF: %s.rope.dimension_count = %g, head_dim %ld: partial RoPE is not supported", arch, rd, hd);
    }
    const sh_gguf_tinfo *rf = tensor(m, "rope_freqs.weight");
    if (rf && !llama) return sh_err_set(err, "GGUF: tensor rope_freqs.weight in a %s file (llama files only)", arch);
    if (rf && rope_llama3(&c, rf, hd, theta, g)) return -1;
    for (long l = 0; l < L; l++) {
        sh_layer *ly = &g->layers[l];
        long kvh, ff;
        if (get_int(&c, "attention.head_count_kv", (uint64_t)l, !(lfm2 || moe) ? false : true, heads, 0, SH_LIMIT_HEADS, &kvh))
            return -1;
        if (kvh == 0 && (lfm2 || moe)) ly->mixer = (sh_mixer){.kind = SH_MIXER_CONV, .conv_kernel = (int)conv_l};
        else if (kvh == 0) return sh_err_set(err, "GGUF: %s layer %ld has no KV heads", arch, l);
        else ly->mixer = (sh_mixer){.kind = SH_MIXER_GQA, .n_heads = (int)heads, .n_kv_heads = (int)kvh, .qk_norm = !llama};
        if (moe && l >= n_dense) {
            ly->ffn = (sh_ffn){.kind = SH_FFN_MOE, .n_experts = (int)E, .top_k = (int)K, .expert_width = (int)Fe, .router_bias = bias};
        } else {
            if (get_int(&c, "feed_forward_length", (uint64_t)l, true, 0, 1, SH_LIMIT_FFN, &ff)) return -1;
            ly->ffn = (sh_ffn){.kind = SH_FFN_SWIGLU, .width = (int)ff};
        }
    }
    if (sh_genome_validate(g, err) != 0) return sh_err_prefix(err, "GGUF (%s)", arch);
    return 0;
}

int sh_gguf_import_genome_file(const char *path, sh_genome *out, sh_err *err)
{
    sh_gguf_meta m;
    if (sh_gguf_meta_read(path, &m, err) != 0) return -1;
    int rc = sh_gguf_import_genome(&m, out, err);
    if (rc) sh_err_prefix(err, "%s", path);
    sh_gguf_meta_free(&m);
    return rc;
}
