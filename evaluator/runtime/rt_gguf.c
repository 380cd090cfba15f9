/* rt_gguf.c - GGUF (v2/v3) weights for the variant: a bounds-checked parser
 * that mmaps the file and uses tensors in place (types f32, f16, q8_0, q4_0,
 * the k-quants; llama.cpp's lfm2 / lfm2moe / qwen3 / llama tensor names and
 * RoPE conventions), verification of the metadata and
 * every tensor shape against the compiled genome, and a writer that exports
 * the synthetic weights as a GGUF file (tokenizer "no_vocab", or the
 * tokenizer.* entries of another GGUF copied byte for byte).
 * Malformed input never crashes: every read is checked against the file size
 * and every failure is a message naming the key or tensor. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"
#include "rt_rope.h"

enum { G_U8, G_I8, G_U16, G_I16, G_U32, G_I32, G_F32, G_BOOL, G_STR, G_ARR, G_U64, G_I64, G_F64, G_NTYPES };
static const size_t g_size[G_NTYPES] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };

#define MAX_KV      (1 << 20)
#define MAX_TENSORS (1 << 20)
#define MAX_NAME    (1 << 16)

typedef struct kv { const char *key; size_t klen; int type; size_t off, end; int arr_type; uint64_t arr_n; } kv;
typedef struct tinfo { const char *name; size_t nlen; int ndim; uint64_t ne[4]; int type; uint64_t off; } tinfo;

typedef struct gguf {
    const uint8_t *p; size_t n, off;
    kv *kvs; uint64_t nkv;
    tinfo *ts; uint64_t nt;
    size_t data_off; uint64_t align;
    char arch[32];
    char *err; size_t cap;
    int meta_only;   /* metadata is all that is read (a tokenizer source): no data section needed */
} gguf;

static int gerr(gguf *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int gerr(gguf *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = snprintf(g->err, g->cap, "gguf: ");
    if (k > 0 && (size_t)k < g->cap) vsnprintf(g->err + k, g->cap - (size_t)k, fmt, ap);
    va_end(ap);
    for (char *c = g->err; *c; c++)      /* names come from the file: keep the message printable */
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) *c = '?';
    return -1;
}

static int need(gguf *g, size_t k, const char *what)
{
    if (k > g->n - g->off) return gerr(g, "truncated file: %s needs %zu bytes at offset %zu, file has %zu", what, k, g->off, g->n);
    return 0;
}

static int rd_u32(gguf *g, uint32_t *v, const char *what)
{
    if (need(g, 4, what)) return -1;
    memcpy(v, g->p + g->off, 4); g->off += 4;
    return 0;
}

static int rd_u64(gguf *g, uint64_t *v, const char *what)
{
    if (need(g, 8, what)) return -1;
    memcpy(v, g->p + g->off, 8); g->off += 8;
    return 0;
}

static int rd_str(gguf *g, const char **s, size_t *len, const char *what)
{
    uint64_t n;
    if (rd_u64(g, &n, what)) return -1;
    if (n > g->n - g->off) return gerr(g, "%s: string length %llu runs past the end of the file", what, (unsigned long long)n);
    *s = (const char *)(g->p + g->off);
    *len = (size_t)n;
    g->off += (size_t)n;
    return 0;
}

static int skip_value(gguf *g, int type, int depth, kv *rec)
{
    if (type < 0 || type >= G_NTYPES) return gerr(g, "unknown metadata value type %d at offset %zu", type, g->off);
    if (type == G_STR) { const char *s; size_t l; return rd_str(g, &s, &l, "metadata string"); }
    if (type == G_ARR) {
        uint32_t et; uint64_t n;
        if (depth > 2) return gerr(g, "metadata arrays nested too deeply");
        if (rd_u32(g, &et, "array type") || rd_u64(g, &n, "array length")) return -1;
        if (et >= G_NTYPES) return gerr(g, "unknown array element type %u", et);
        if (rec) { rec->arr_type = (int)et; rec->arr_n = n; }
        if (et != G_STR && et != G_ARR) {
            if (n > (g->n - g->off) / g_size[et]) return gerr(g, "array of %llu elements runs past the end of the file", (unsigned long long)n);
            g->off += (size_t)n * g_size[et];
            return 0;
        }
        if (n > g->n - g->off) return gerr(g, "array of %llu elements runs past the end of the file", (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++) if (skip_value(g, (int)et, depth + 1, NULL)) return -1;
        return 0;
    }
    if (need(g, g_size[type], "metadata value")) return -1;
    g->off += g_size[type];
    return 0;
}

static const kv *find_kv(const gguf *g, const char *key)
{
    size_t l = strlen(key);
    for (uint64_t i = 0; i < g->nkv; i++)
        if (g->kvs[i].klen == l && !memcmp(g->kvs[i].key, key, l)) return &g->kvs[i];
    return NULL;
}

static int num_at(const uint8_t *p, int type, double *out)
{
    switch (type) {
    case G_U8: *out = p[0]; return 0;
    case G_I8: *out = (int8_t)p[0]; return 0;
    case G_BOOL: *out = p[0] != 0; return 0;
    case G_U16: { uint16_t v; memcpy(&v, p, 2); *out = v; return 0; }
    case G_I16: { int16_t v; memcpy(&v, p, 2); *out = v; return 0; }
    case G_U32: { uint32_t v; memcpy(&v, p, 4); *out = v; return 0; }
    case G_I32: { int32_t v; memcpy(&v, p, 4); *out = v; return 0; }
    case G_F32: { float v; memcpy(&v, p, 4); *out = v; return 0; }
    case G_U64: { uint64_t v; memcpy(&v, p, 8); *out = (double)v; return 0; }
    case G_I64: { int64_t v; memcpy(&v, p, 8); *out = (double)v; return 0; }
    case G_F64: { double v; memcpy(&v, p, 8); *out = v; return 0; }
    default: return -1;
    }
}

/* value of a numeric key; for arrays, element idx (idx < 0: scalar only).
 * returns 1 found, 0 absent, -1 wrong type */
static int get_num(const gguf *g, const char *key, int idx, double *out, int *is_array)
{
    const kv *k = find_kv(g, key);
    if (!k) return 0;
    *is_array = k->type == G_ARR;
    if (k->type == G_ARR) {
        if (k->arr_type == G_STR || k->arr_type == G_ARR || idx < 0 || (uint64_t)idx >= k->arr_n) return -1;
        return num_at(g->p + k->off + 12 + (size_t)idx * g_size[k->arr_type], k->arr_type, out) ? -1 : 1;
    }
    return num_at(g->p + k->off, k->type, out) ? -1 : 1;
}

static int parse(gguf *g)
{
    uint32_t magic, version;
    if (rd_u32(g, &magic, "magic")) return -1;
    if (memcmp(g->p, "GGUF", 4)) return gerr(g, "bad magic (not a GGUF file)");
    if (rd_u32(g, &version, "version")) return -1;
    if (version != 2 && version != 3) return gerr(g, "unsupported GGUF version %u (need 2 or 3)", version);
    if (rd_u64(g, &g->nt, "tensor count") || rd_u64(g, &g->nkv, "kv count")) return -1;
    if (g->nt > MAX_TENSORS) return gerr(g, "absurd tensor count %llu", (unsigned long long)g->nt);
    if (g->nkv > MAX_KV) return gerr(g, "absurd metadata count %llu", (unsigned long long)g->nkv);
    /* plausible counts in a file too short for them: the file was cut short */
    if (g->nt > g->n / 24 || g->nkv > g->n / 12)
        return gerr(g, "truncated file: %zu bytes cannot hold %llu tensors and %llu metadata entries", g->n,
                    (unsigned long long)g->nt, (unsigned long long)g->nkv);
    g->kvs = calloc((size_t)g->nkv + 1, sizeof *g->kvs);
    g->ts = calloc((size_t)g->nt + 1, sizeof *g->ts);
    if (!g->kvs || !g->ts) return gerr(g, "out of memory");
    for (uint64_t i = 0; i < g->nkv; i++) {
        kv *k = &g->kvs[i];
        uint32_t t;
        if (rd_str(g, &k->key, &k->klen, "metadata key")) return -1;
        if (k->klen > MAX_NAME) return gerr(g, "metadata key %llu too long", (unsigned long long)i);
        if (rd_u32(g, &t, "metadata type")) return -1;
        k->type = (int)t;
        k->off = g->off;
        if (skip_value(g, (int)t, 0, k)) return gerr(g, "metadata '%.*s': %s", (int)(k->klen > 200 ? 200 : k->klen), k->key, g->err + 6);
        k->end = g->off;
    }
    for (uint64_t i = 0; i < g->nt; i++) {
        tinfo *t = &g->ts[i];
        uint32_t nd, ty;
        if (rd_str(g, &t->name, &t->nlen, "tensor name")) return -1;
        if (t->nlen > MAX_NAME) return gerr(g, "tensor name %llu too long", (unsigned long long)i);
        if (rd_u32(g, &nd, "tensor dims")) return -1;
        if (nd < 1 || nd > 4) return gerr(g, "tensor '%.*s': %u dimensions (1..4 allowed)", (int)(t->nlen > 200 ? 200 : t->nlen), t->name, nd);
        t->ndim = (int)nd;
        for (uint32_t d = 0; d < nd; d++) {
            if (rd_u64(g, &t->ne[d], "tensor shape")) return -1;
            if (t->ne[d] < 1 || t->ne[d] > ((uint64_t)1 << 40))
                return gerr(g, "tensor '%.*s': absurd dimension %llu", (int)(t->nlen > 200 ? 200 : t->nlen), t->name, (unsigned long long)t->ne[d]);
        }
        for (uint32_t d = nd; d < 4; d++) t->ne[d] = 1;
        if (rd_u32(g, &ty, "tensor type") || rd_u64(g, &t->off, "tensor offset")) return -1;
        t->type = (int)ty;
    }
    g->align = 32;
    double a;
    int arr;
    int r = get_num(g, "general.alignment", -1, &a, &arr);
    if (r < 0 || (r == 1 && (a < 1 || a > 65536 || ((uint64_t)a & ((uint64_t)a - 1)))))
        return gerr(g, "general.alignment is not a power of two in 1..65536");
    if (r == 1) g->align = (uint64_t)a;
    g->data_off = (g->off + g->align - 1) / g->align * g->align;
    if (g->data_off > g->n && !(g->meta_only && g->nt == 0))
        return gerr(g, "truncated file: data section starts past the end");
    const kv *ak = find_kv(g, "general.architecture");
    if (!ak || ak->type != G_STR) return gerr(g, "general.architecture missing or not a string");
    uint64_t al;
    memcpy(&al, g->p + ak->off, 8);
    if (al >= sizeof g->arch) return gerr(g, "general.architecture too long");
    memcpy(g->arch, g->p + ak->off + 8, (size_t)al);
    g->arch[al] = 0;
    return 0;
}

static const tinfo *find_t(const gguf *g, const char *name)
{
    size_t l = strlen(name);
    for (uint64_t i = 0; i < g->nt; i++)
        if (g->ts[i].nlen == l && !memcmp(g->ts[i].name, name, l)) return &g->ts[i];
    return NULL;
}

/* locate a tensor with the expected shape (ne order); dims beyond nd must be 1 */
static const tinfo *tensor(gguf *g, const char *name, int nd, const uint64_t *ne, size_t *bytes)
{
    const tinfo *t = find_t(g, name);
    if (!t) { gerr(g, "missing tensor '%s'", name); return NULL; }
    char want[96], got[96];
    int k = 0, q = 0;
    for (int d = 0; d < nd; d++) k += snprintf(want + k, sizeof want - (size_t)k, "%s%llu", d ? "," : "", (unsigned long long)ne[d]);
    for (int d = 0; d < t->ndim; d++) q += snprintf(got + q, sizeof got - (size_t)q, "%s%llu", d ? "," : "", (unsigned long long)t->ne[d]);
    int ok = 1;
    for (int d = 0; d < 4; d++) ok &= t->ne[d] == (d < nd ? ne[d] : 1);
    if (!ok) { gerr(g, "tensor '%s' has shape {%s}, the genome needs {%s}", name, got, want); return NULL; }
    if (!rt_type_supported(t->type) && t->type != RT_BF16) {
        gerr(g, "tensor '%s' has ggml type %d, supported: f32 (0), f16 (1), q4_0 (2), q8_0 (8), q4_K (12), "
             "q5_K (13), q6_K (14), bf16 (30); requantise with llama-quantize to one of them", name, t->type);
        return NULL;
    }
    size_t rb = rt_row_bytes(t->type, (int)t->ne[0]);
    if (!rb) { gerr(g, "tensor '%s': row of %llu is not a multiple of %d for %s", name, (unsigned long long)t->ne[0],
                    rt_type_is_k(t->type) ? RT_QKK : RT_QK, rt_type_name(t->type)); return NULL; }
    uint64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    if (rows > (uint64_t)SIZE_MAX / rb) { gerr(g, "tensor '%s' too large", name); return NULL; }
    *bytes = (size_t)rows * rb;
    size_t avail = g->n - g->data_off;
    if (t->off > avail || *bytes > avail - t->off) {
        gerr(g, "tensor '%s': data (offset %llu, %zu bytes) runs past the end of the file", name, (unsigned long long)t->off, *bytes);
        return NULL;
    }
    return t;
}

static int load_mat(gguf *g, rt_model *m, const char *name, int cols, uint64_t rows, uint64_t e3, rt_mat *out)
{
    uint64_t ne[3] = { (uint64_t)cols, rows, e3 };
    size_t bytes;
    const tinfo *t = tensor(g, name, e3 > 1 ? 3 : 2, ne, &bytes);
    if (!t) return -1;
    if (t->type == RT_BF16) {   /* no bf16 kernels: widen to f32 once (exact) */
        uint64_t n = rows * e3;
        if (m->n_allocs >= (int)(sizeof m->allocs / sizeof m->allocs[0])) return gerr(g, "too many tensors");
        float *dst = rt_alloc64((size_t)n * (size_t)cols * sizeof(float));
        if (!dst) return gerr(g, "out of memory widening bf16 tensor '%s' to f32", name);
        m->allocs[m->n_allocs++] = dst;
        const uint8_t *src = g->p + g->data_off + t->off;
        for (uint64_t r = 0; r < n; r++)
            rt_dequantize_row(RT_BF16, src + r * (size_t)cols * 2, dst + r * (size_t)cols, cols);
#if defined(MADV_DONTNEED)
        {   /* the file's pages of this tensor are no longer read: drop them from RSS */
            long pg = sysconf(_SC_PAGESIZE);
            uintptr_t a = ((uintptr_t)src + (uintptr_t)pg - 1) / (uintptr_t)pg * (uintptr_t)pg;
            uintptr_t e = ((uintptr_t)src + bytes) / (uintptr_t)pg * (uintptr_t)pg;
            if (pg > 0 && e > a) (void)madvise((void *)a, e - a, MADV_DONTNEED);
        }
#endif
        out->type = RT_F32;
        out->cols = cols;
        out->rows = (int)n;
        out->row_bytes = (size_t)cols * 4;
        out->data = (const uint8_t *)dst;
        out->packed = 0;
        m->weight_bytes += (size_t)n * (size_t)cols * 4;
        return 0;
    }
    out->type = t->type;
    out->cols = cols;
    out->rows = (int)(rows * e3);
    out->row_bytes = rt_row_bytes(t->type, cols);
    out->data = g->p + g->data_off + t->off;
    out->packed = 0;
    m->weight_bytes += bytes;
    return 0;
}

static const float *load_vec(gguf *g, rt_model *m, const char *name, int nd, const uint64_t *ne)
{
    size_t bytes;
    const tinfo *t = tensor(g, name, nd, ne, &bytes);
    if (!t) return NULL;
    const uint8_t *src = g->p + g->data_off + t->off;
    size_t n = 1;
    for (int d = 0; d < nd; d++) n *= (size_t)ne[d];
    m->weight_bytes += bytes;
    /* always a copy of its own (a few KiB per layer): no vector stays in the
     * file mapping, which rt_model_pack can then unmap once the matrices
     * have left it */
    if (t->type != RT_F32 && t->type != RT_F16 && t->type != RT_BF16) {
        gerr(g, "tensor '%s' must be f32, f16 or bf16, not %s", name, rt_type_name(t->type));
        return NULL;
    }
    if (m->n_allocs >= (int)(sizeof m->allocs / sizeof m->allocs[0])) { gerr(g, "too many tensors"); return NULL; }
    float *dst = malloc(n * sizeof *dst);
    if (!dst) { gerr(g, "out of memory"); return NULL; }
    m->allocs[m->n_allocs++] = dst;
    if (t->type == RT_F32) memcpy(dst, src, n * sizeof *dst);
    else rt_dequantize_row(t->type, src, dst, (int)n);
    return dst;
}

/* metadata check: key must be absent (if optional) or equal `want` */
static int check_num(gguf *g, const char *suffix, int layer, double want, int required)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", g->arch, suffix);
    double v;
    int arr = 0;
    int r = get_num(g, key, layer, &v, &arr);
    if (r < 0) {
        const kv *k = find_kv(g, key);
        if (k && k->type == G_ARR && layer >= 0 && (uint64_t)layer >= k->arr_n)
            return gerr(g, "%s has %llu entries, the genome has %d layers", key, (unsigned long long)k->arr_n, SHV_N_LAYERS);
        return gerr(g, "%s has a non-numeric type", key);
    }
    if (r == 0) return required ? gerr(g, "required key %s missing", key) : 0;
    if (fabs(v - want) > 1e-6 * fabs(want) + 1e-12) {
        if (layer >= 0) return gerr(g, "%s[%d] = %g but the compiled genome has %g (layer %d)", key, layer, v, want, layer);
        return gerr(g, "%s = %g but the compiled genome has %g", key, v, want);
    }
    return 0;
}

static int check_meta(gguf *g)
{
    int has_moe = 0, has_conv = 0, lead_dense = 0, lead_done = 0;
    for (int l = 0; l < SHV_N_LAYERS; l++) {
        has_moe |= rt_layers[l].ffn == SHV_MOE;
        has_conv |= rt_layers[l].mixer == SHV_CONV;
        if (!lead_done && rt_layers[l].ffn == SHV_SWIGLU) lead_dense++;
        else lead_done = 1;
    }
    const int lfm = !strcmp(g->arch, "lfm2") || !strcmp(g->arch, "lfm2moe");
    const int qwen3 = !strcmp(g->arch, "qwen3"), llama = !strcmp(g->arch, "llama");
    if (!lfm && !qwen3 && !llama)
        return gerr(g, "general.architecture is '%s', expected lfm2, lfm2moe, qwen3 or llama", g->arch);
    if (has_moe && strcmp(g->arch, "lfm2moe")) return gerr(g, "the genome has MoE layers but the file's architecture is '%s'", g->arch);
    if (!lfm && has_conv) return gerr(g, "the genome has conv layers but the file's architecture is '%s' (attention only)", g->arch);
    for (int l = 0; !lfm && l < SHV_N_LAYERS; l++) {
        if (qwen3 && !rt_layers[l].qk_norm)
            return gerr(g, "layer %d: the genome has no QK-norm there, qwen3 files have it on every layer", l);
        if (llama && rt_layers[l].qk_norm)
            return gerr(g, "layer %d: the genome has QK-norm there, llama files have none (qwen3 files do)", l);
    }
    if (!lfm && check_num(g, "rope.dimension_count", -1, SHV_HEAD_DIM, 0)) return -1;
    {   /* linear / YaRN scaling (llama.cpp divides every angle by the factor): not a genome's RoPE */
        char key[96];
        snprintf(key, sizeof key, "%s.rope.scaling.factor", g->arch);
        double v; int arr;
        int r = get_num(g, key, -1, &v, &arr);
        if (r < 0) return gerr(g, "%s has a non-numeric type", key);
        if (r == 1 && v != 0.0 && v != 1.0)
            return gerr(g, "%s = %g: linear / YaRN RoPE scaling is not supported (llama3 scaling comes as rope_freqs.weight)",
                        key, v);
    }
    if (SHV_ROPE_SCALING == 1 && qwen3)   /* lfm2 files keep the genome's own formula (tests' reference files) */
        return gerr(g, "the genome has llama3 RoPE scaling, which qwen3 files cannot hold (llama files can)");
    if (check_num(g, "block_count", -1, SHV_N_LAYERS, 1)) return -1;
    if (check_num(g, "embedding_length", -1, SHV_HIDDEN, 1)) return -1;
    if (check_num(g, "attention.key_length", -1, SHV_HEAD_DIM, 0)) return -1;
    if (check_num(g, "attention.value_length", -1, SHV_HEAD_DIM, 0)) return -1;
    if (check_num(g, "rope.freq_base", -1, SHV_ROPE_THETA, 0)) return -1;
    {
        char key[96];
        snprintf(key, sizeof key, "%s.rope.freq_base", g->arch);
        int uses_attn = 0;
        for (int l = 0; l < SHV_N_LAYERS; l++) uses_attn |= rt_layers[l].mixer == SHV_GQA;
        if (uses_attn && !find_kv(g, key) && fabs(SHV_ROPE_THETA - 10000.0) > 1e-6)
            return gerr(g, "%s missing (llama.cpp would use 10000) but the genome has theta %g", key, (double)SHV_ROPE_THETA);
        snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", g->arch);
        double v; int arr;
        if (get_num(g, key, -1, &v, &arr) == 1 && fabs(v - SHV_NORM_EPS) > 1e-3 * SHV_NORM_EPS)
            return gerr(g, "%s = %g but the compiled genome has %g", key, v, (double)SHV_NORM_EPS);
    }
    for (int l = 0; l < SHV_N_LAYERS; l++) {
        const rt_layer_cfg *c = &rt_layers[l];
        if (check_num(g, "attention.head_count_kv", l, c->mixer == SHV_CONV ? 0 : c->n_kv_heads, lfm)) return -1;
        if (!lfm) {   /* absent, llama.cpp takes head_count */
            char key[96];
            snprintf(key, sizeof key, "%s.attention.head_count_kv", g->arch);
            if (!find_kv(g, key) && c->n_kv_heads != c->n_heads)
                return gerr(g, "%s missing (llama.cpp would use head_count, %d) but layer %d has %d KV heads", key,
                            c->n_heads, l, c->n_kv_heads);
        }
        if (c->mixer == SHV_GQA && check_num(g, "attention.head_count", l, c->n_heads, 1)) return -1;
        if (c->mixer == SHV_CONV && check_num(g, "shortconv.l_cache", l, c->conv_kernel, 1)) return -1;
        if (c->ffn == SHV_SWIGLU && check_num(g, "feed_forward_length", l, c->width, 0)) return -1;
        if (c->ffn == SHV_MOE) {
            if (check_num(g, "expert_count", l, c->n_experts, 1)) return -1;
            if (check_num(g, "expert_used_count", l, c->top_k, 1)) return -1;
            if (check_num(g, "expert_feed_forward_length", l, c->expert_width, 0)) return -1;
        }
    }
    (void)has_conv;
    if (has_moe && check_num(g, "leading_dense_block_count", -1, lead_dense, 0)) return -1;
    if (has_moe) {
        for (int l = lead_dense; l < SHV_N_LAYERS; l++)
            if (rt_layers[l].ffn != SHV_MOE)
                return gerr(g, "layer %d is dense after MoE layers: lfm2moe files cannot express this genome", l);
    }
    return 0;
}

/* the divisors of llama3 RoPE scaling per frequency for the compiled genome */
static void llama3_factors(float *ff)
{
    rt_llama3_divisors(SHV_ROPE_THETA, SHV_HEAD_DIM, SHV_ROPE_FACTOR, SHV_ROPE_LOW_FREQ, SHV_ROPE_HIGH_FREQ,
                       SHV_ROPE_ORIG_CTX, ff);
}

static int load_tensors(gguf *g, rt_model *m)
{
    const uint64_t H = SHV_HIDDEN, hd = SHV_HEAD_DIM, V = SHV_VOCAB;
    char nm[128];
    uint64_t ne[3];
    if (load_mat(g, m, "token_embd.weight", (int)H, V, 1, &m->embd)) return -1;
    if (find_t(g, "output.weight")) { if (load_mat(g, m, "output.weight", (int)H, V, 1, &m->output)) return -1; }
    else if (!SHV_TIED) return gerr(g, "missing tensor 'output.weight' (the genome has untied embeddings)");
    else m->output = m->embd;
    const int lfm = !strcmp(g->arch, "lfm2") || !strcmp(g->arch, "lfm2moe"), llama = !strcmp(g->arch, "llama");
    ne[0] = H;   /* llama.cpp names LFM2's final norm token_embd_norm */
    if (!(m->final_norm = load_vec(g, m, lfm ? "token_embd_norm.weight" : "output_norm.weight", 1, ne))) return -1;
    const tinfo *rf = find_t(g, "rope_freqs.weight");
    if (rf && !llama) return gerr(g, "tensor 'rope_freqs.weight' in a %s file (llama files carry RoPE factors, %s files none)",
                                  g->arch, g->arch);
    if (llama) {
        m->rope_pairs = 1;   /* llama.cpp's normal RoPE for llama files */
        if (rf && SHV_ROPE_SCALING != 1)
            return gerr(g, "the file has rope_freqs.weight (llama3 RoPE scaling) but the genome has no rope=llama3(...)");
        if (!rf && SHV_ROPE_SCALING == 1)
            return gerr(g, "the genome has llama3 RoPE scaling but the file has no rope_freqs.weight");
        if (rf) {
            ne[0] = hd / 2;
            const float *f = load_vec(g, m, "rope_freqs.weight", 1, ne);
            if (!f) return -1;
            float want[SHV_HEAD_DIM / 2 + 1];
            llama3_factors(want);
            for (int i = 0; i < SHV_HEAD_DIM / 2; i++)
                if (!(f[i] > 0.0f) || fabs((double)f[i] - want[i]) > 1e-4 * want[i])
                    return gerr(g, "rope_freqs.weight[%d] = %g, the genome's llama3 scaling gives %g", i, (double)f[i],
                                (double)want[i]);
            m->rope_freqs = f;
        }
    }
#define NAME(fmt) (snprintf(nm, sizeof nm, "blk.%d." fmt, l), nm)
    for (int l = 0; l < SHV_N_LAYERS; l++) {
        const rt_layer_cfg *c = &rt_layers[l];
        rt_layer_w *w = &m->L[l];
        ne[0] = H;
        if (!(w->attn_norm = load_vec(g, m, NAME("attn_norm.weight"), 1, ne))) return -1;
        if (!(w->ffn_norm = load_vec(g, m, NAME("ffn_norm.weight"), 1, ne))) return -1;
        if (c->mixer == SHV_CONV) {
            if (find_t(g, NAME("attn_q.weight"))) return gerr(g, "layer %d: file has attention tensors, the genome has a conv layer", l);
            if (load_mat(g, m, NAME("shortconv.in_proj.weight"), (int)H, 3 * H, 1, &w->in_proj)) return -1;
            if (load_mat(g, m, NAME("shortconv.out_proj.weight"), (int)H, H, 1, &w->out_proj)) return -1;
            const tinfo *t = find_t(g, NAME("shortconv.conv.weight"));
            ne[0] = (uint64_t)c->conv_kernel; ne[1] = H; ne[2] = 1;
            if (t && t->ndim == 3) { ne[1] = 1; ne[2] = H; }
            if (!(w->conv_w = load_vec(g, m, nm, t && t->ndim == 3 ? 3 : 2, ne))) return -1;
        } else {
            uint64_t qd = (uint64_t)c->n_heads * hd, kvd = (uint64_t)c->n_kv_heads * hd;
            if (find_t(g, NAME("shortconv.in_proj.weight"))) return gerr(g, "layer %d: file has conv tensors, the genome has an attention layer", l);
            static const char *const biases[] = {"attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_output.bias",
                                                 "ffn_gate.bias", "ffn_up.bias", "ffn_down.bias"};
            for (size_t b = 0; b < sizeof biases / sizeof biases[0]; b++) {
                snprintf(nm, sizeof nm, "blk.%d.%s", l, biases[b]);
                if (find_t(g, nm)) return gerr(g, "tensor '%s': biases are not part of a genome (no bias in lfm2, qwen3, llama 3)", nm);
            }
            if (load_mat(g, m, NAME("attn_q.weight"), (int)H, qd, 1, &w->wq)) return -1;
            if (load_mat(g, m, NAME("attn_k.weight"), (int)H, kvd, 1, &w->wk)) return -1;
            if (load_mat(g, m, NAME("attn_v.weight"), (int)H, kvd, 1, &w->wv)) return -1;
            if (load_mat(g, m, NAME("attn_output.weight"), (int)qd, H, 1, &w->wo)) return -1;
            ne[0] = hd;
            if (c->qk_norm) {
                if (!(w->q_norm = load_vec(g, m, NAME("attn_q_norm.weight"), 1, ne))) return -1;
                if (!(w->k_norm = load_vec(g, m, NAME("attn_k_norm.weight"), 1, ne))) return -1;
            } else if (find_t(g, NAME("attn_q_norm.weight"))) {
                return gerr(g, "layer %d: file has attn_q_norm but the genome has no QK-norm", l);
            }
        }
        if (c->ffn == SHV_SWIGLU) {
            uint64_t F = (uint64_t)c->width;
            if (load_mat(g, m, NAME("ffn_gate.weight"), (int)H, F, 1, &w->w1)) return -1;
            if (load_mat(g, m, NAME("ffn_up.weight"), (int)H, F, 1, &w->w3)) return -1;
            if (load_mat(g, m, NAME("ffn_down.weight"), (int)F, H, 1, &w->w2)) return -1;
        } else {
            uint64_t E = (uint64_t)c->n_experts, Fe = (uint64_t)c->expert_width;
            if (load_mat(g, m, NAME("ffn_gate_inp.weight"), (int)H, E, 1, &w->router)) return -1;
            if (load_mat(g, m, NAME("ffn_gate_exps.weight"), (int)H, Fe, E, &w->gate_exps)) return -1;
            if (load_mat(g, m, NAME("ffn_up_exps.weight"), (int)H, Fe, E, &w->up_exps)) return -1;
            if (load_mat(g, m, NAME("ffn_down_exps.weight"), (int)Fe, H, E, &w->down_exps)) return -1;
            ne[0] = E;
            if (c->router_bias) { if (!(w->exp_bias = load_vec(g, m, NAME("exp_probs_b.bias"), 1, ne))) return -1; }
            else if (find_t(g, NAME("exp_probs_b.bias"))) {
                /* llama.cpp requires the tensor on every MoE layer, so writers
                 * store zeros when there is no bias: accept exactly that */
                const float *b = load_vec(g, m, NAME("exp_probs_b.bias"), 1, ne);
                if (!b) return -1;
                for (uint64_t e = 0; e < E; e++)
                    if (b[e] != 0.0f)
                        return gerr(g, "layer %d: file has a non-zero exp_probs_b.bias but the genome has no router bias", l);
            }
        }
    }
#undef NAME
    return 0;
}

int rt_model_gguf(rt_model *m, const char *path, char *err, size_t cap)
{
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY);
    if (fd < 0) { snprintf(err, cap, "gguf: cannot open %s: %s", path, strerror(errno)); return -1; }
    struct stat st;
    if (fstat(fd, &st) || st.st_size < 24) {
        close(fd);
        snprintf(err, cap, "gguf: %s: %s", path, st.st_size < 24 ? "file too small to be GGUF" : strerror(errno));
        return -1;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) { snprintf(err, cap, "gguf: cannot mmap %s: %s", path, strerror(errno)); return -1; }
    m->map = map;
    m->map_len = (size_t)st.st_size;
    gguf g = { .p = map, .n = (size_t)st.st_size, .err = err, .cap = cap };
    int rc = parse(&g);
    if (!rc) rc = check_meta(&g);
    if (!rc) rc = load_tensors(&g, m);
    free(g.kvs);
    free(g.ts);
    if (rc) {
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s", err);
        snprintf(err, cap, "%s: %s", path, tmp);
        rt_model_free(m);
        return -1;
    }
    return 0;
}

/* ---- writer ---------------------------------------------------------------- */

typedef struct wr { FILE *f; int bad; uint64_t pos; } wr;
static void w_bytes(wr *w, const void *p, size_t n) { if (fwrite(p, 1, n, w->f) != n) w->bad = 1; w->pos += n; }
static void w_u32(wr *w, uint32_t v) { w_bytes(w, &v, 4); }
static void w_u64(wr *w, uint64_t v) { w_bytes(w, &v, 8); }
static void w_str(wr *w, const char *s) { w_u64(w, strlen(s)); w_bytes(w, s, strlen(s)); }
static void kv_u32(wr *w, const char *k, uint32_t v) { w_str(w, k); w_u32(w, G_U32); w_u32(w, v); }
static void kv_f32(wr *w, const char *k, float v) { w_str(w, k); w_u32(w, G_F32); w_bytes(w, &v, 4); }
static void kv_str(wr *w, const char *k, const char *v) { w_str(w, k); w_u32(w, G_STR); w_str(w, v); }
static void kv_arr(wr *w, const char *k, const int32_t *v, int n)
{
    w_str(w, k); w_u32(w, G_ARR); w_u32(w, G_I32); w_u64(w, (uint64_t)n);
    w_bytes(w, v, (size_t)n * 4);
}

typedef struct wt { char name[96]; int nd; uint64_t ne[3]; int type; const void *data; size_t bytes; } wt;

static void add_t(wt *ts, int *n, const char *name, int type, const void *data, int nd, uint64_t e0, uint64_t e1, uint64_t e2)
{
    wt *t = &ts[(*n)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->nd = nd; t->ne[0] = e0; t->ne[1] = e1; t->ne[2] = e2; t->type = type; t->data = data;
    t->bytes = rt_row_bytes(type, (int)e0) * (size_t)(e1 * e2);
}

static void add_m(wt *ts, int *n, const char *name, const rt_mat *m, int nd, uint64_t e1, uint64_t e2)
{
    add_t(ts, n, name, m->type, m->data, nd, (uint64_t)m->cols, e1, e2);
}

/* the tokenizer.* entries of another GGUF file, copied byte for byte by the
 * writer; its token count must equal the genome's vocabulary */
typedef struct tokcopy { uint8_t *map; size_t len; gguf g; uint64_t n; } tokcopy;

static int tok_open(tokcopy *t, const char *path, char *err, size_t cap)
{
    memset(t, 0, sizeof *t);
    int fd = open(path, O_RDONLY);
    if (fd < 0) { snprintf(err, cap, "export: --tokenizer-from %s: %s", path, strerror(errno)); return -1; }
    struct stat st;
    if (fstat(fd, &st) || st.st_size < 24) {
        close(fd);
        snprintf(err, cap, "export: --tokenizer-from %s: not a GGUF file (too small)", path);
        return -1;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) { snprintf(err, cap, "export: --tokenizer-from %s: %s", path, strerror(errno)); return -1; }
    t->map = map;
    t->len = (size_t)st.st_size;
    char e2[400] = "";
    t->g = (gguf){ .p = map, .n = (size_t)st.st_size, .err = e2, .cap = sizeof e2, .meta_only = 1 };
    if (parse(&t->g)) { snprintf(err, cap, "export: --tokenizer-from %s: %s", path, e2); return -1; }
    const kv *tm = find_kv(&t->g, "tokenizer.ggml.model");
    if (!tm || tm->type != G_STR) {
        snprintf(err, cap, "export: --tokenizer-from %s: no tokenizer.ggml.model string", path);
        return -1;
    }
    const kv *tk = find_kv(&t->g, "tokenizer.ggml.tokens");
    if (!tk || tk->type != G_ARR || tk->arr_type != G_STR) {
        snprintf(err, cap, "export: --tokenizer-from %s: no tokenizer.ggml.tokens string array", path);
        return -1;
    }
    if (tk->arr_n != (uint64_t)SHV_VOCAB) {
        snprintf(err, cap, "export: --tokenizer-from %s: %llu tokens, the genome's vocabulary is %d", path,
                 (unsigned long long)tk->arr_n, SHV_VOCAB);
        return -1;
    }
    for (uint64_t i = 0; i < t->g.nkv; i++)
        if (t->g.kvs[i].klen > 10 && !memcmp(t->g.kvs[i].key, "tokenizer.", 10)) t->n++;
    return 0;
}

static void tok_close(tokcopy *t)
{
    free(t->g.kvs);
    free(t->g.ts);
    if (t->map) munmap(t->map, t->len);
    memset(t, 0, sizeof *t);
}

/* a copy of q/k rows in llama.cpp's llama order (see rt_model_export_gguf);
 * whole rows move, so any storage type is copied exactly */
static void *pair_rows(const rt_mat *m)
{
    const int hd = SHV_HEAD_DIM, half = hd / 2;
    uint8_t *d = malloc((size_t)m->rows * m->row_bytes + 1);
    if (!d) return NULL;
    for (int r = 0; r < m->rows; r++) {
        int h = r / hd, i = r % hd;
        int src = h * hd + (i % 2 ? half + i / 2 : i / 2);
        memcpy(d + (size_t)r * m->row_bytes, m->data + (size_t)src * m->row_bytes, m->row_bytes);
    }
    return d;
}

int rt_model_export_gguf(const rt_model *m, const char *path, const char *tok_from, char *err, size_t cap)
{
    if (m->packed) { snprintf(err, cap, "export: the weights were repacked for the kernels; export reads ggml blocks"); return -1; }
    const uint64_t H = SHV_HIDDEN, hd = SHV_HEAD_DIM;
    int has_moe = 0, lead = 0, lead_done = 0, heads = 0, ff = 0, lc = 0, E = 0, K = 0, Fe = 0;
    int32_t kvh[SHV_N_LAYERS], ffl[SHV_N_LAYERS];
    int ff_varies = 0;
    for (int l = 0; l < SHV_N_LAYERS; l++) {
        const rt_layer_cfg *c = &rt_layers[l];
        kvh[l] = c->mixer == SHV_GQA ? c->n_kv_heads : 0;
        if (c->mixer == SHV_GQA && !heads) heads = c->n_heads;
        if (c->mixer == SHV_CONV) lc = c->conv_kernel;
        ffl[l] = c->ffn == SHV_SWIGLU ? c->width : 0;
        if (c->ffn == SHV_SWIGLU) { if (ff && ff != c->width) ff_varies = 1; if (!ff) ff = c->width; }
        if (c->ffn == SHV_MOE) { has_moe = 1; E = c->n_experts; K = c->top_k; Fe = c->expert_width; }
        if (!lead_done && c->ffn == SHV_SWIGLU) lead++;
        else lead_done = 1;
    }
    /* the architecture: lfm2moe with MoE layers, lfm2 with conv layers, else
     * qwen3 (QK-norm on every layer) or llama (none); llama.cpp's lfm2 graph
     * needs a conv layer, its qwen3 / llama graphs have no place for one */
    int n_qk = 0, n_gqa = 0;
    for (int l = 0; l < SHV_N_LAYERS; l++)
        if (rt_layers[l].mixer == SHV_GQA) { n_gqa++; n_qk += rt_layers[l].qk_norm != 0; }
    const char *arch = has_moe ? "lfm2moe" : n_gqa < SHV_N_LAYERS ? "lfm2" : n_qk == n_gqa ? "qwen3" : n_qk == 0 ? "llama" : NULL;
    if (!arch) {
        snprintf(err, cap, "export: attention layers with and without QK-norm and no conv layer: neither a qwen3 nor a "
                 "llama file (llama.cpp) can hold this genome");
        return -1;
    }
    const int lfm = arch[0] == 'l' && arch[1] == 'f', llama = !strcmp(arch, "llama");
    if (SHV_ROPE_SCALING == 1 && !strcmp(arch, "qwen3")) {
        snprintf(err, cap, "export: llama3 RoPE scaling in a qwen3 file: llama.cpp applies it to llama files only");
        return -1;
    }
    static wt ts[SHV_N_LAYERS * 16 + 8];     /* at most 13 per layer, 3 global */
    /* llama files: llama.cpp turns consecutive pairs (normal RoPE), so q/k rows
     * are stored as its converter permutes them: within each head, row 2i is
     * row i of the model and row 2i+1 row i + hd/2 (the same function) */
    static void *perm[2 * SHV_N_LAYERS + 1];
    int nperm = 0;
    float ropef[SHV_HEAD_DIM / 2 + 1];
    static const float zero_bias[4096];       /* genomes allow up to 1024 experts */
    int nt = 0;
    char nm[96];
    add_m(ts, &nt, "token_embd.weight", &m->embd, 2, SHV_VOCAB, 1);
    if (m->output.data != m->embd.data) add_m(ts, &nt, "output.weight", &m->output, 2, SHV_VOCAB, 1);
    add_t(ts, &nt, lfm ? "token_embd_norm.weight" : "output_norm.weight", RT_F32, m->final_norm, 1, H, 1, 1);
    if (llama && SHV_ROPE_SCALING == 1) {
        llama3_factors(ropef);
        add_t(ts, &nt, "rope_freqs.weight", RT_F32, ropef, 1, hd / 2, 1, 1);
    }
    for (int l = 0; l < SHV_N_LAYERS; l++) {
        const rt_layer_cfg *c = &rt_layers[l];
        const rt_layer_w *w = &m->L[l];
#define N(fmt) (snprintf(nm, sizeof nm, "blk.%d." fmt, l), nm)
        add_t(ts, &nt, N("attn_norm.weight"), RT_F32, w->attn_norm, 1, H, 1, 1);
        add_t(ts, &nt, N("ffn_norm.weight"), RT_F32, w->ffn_norm, 1, H, 1, 1);
        if (c->mixer == SHV_CONV) {
            add_m(ts, &nt, N("shortconv.in_proj.weight"), &w->in_proj, 2, 3 * H, 1);
            add_t(ts, &nt, N("shortconv.conv.weight"), RT_F32, w->conv_w, 2, (uint64_t)c->conv_kernel, H, 1);
            add_m(ts, &nt, N("shortconv.out_proj.weight"), &w->out_proj, 2, H, 1);
        } else {
            add_m(ts, &nt, N("attn_q.weight"), &w->wq, 2, (uint64_t)c->n_heads * hd, 1);
            if (llama && !(ts[nt - 1].data = perm[nperm++] = pair_rows(&w->wq))) goto oom;
            add_m(ts, &nt, N("attn_k.weight"), &w->wk, 2, (uint64_t)c->n_kv_heads * hd, 1);
            if (llama && !(ts[nt - 1].data = perm[nperm++] = pair_rows(&w->wk))) goto oom;
            add_m(ts, &nt, N("attn_v.weight"), &w->wv, 2, (uint64_t)c->n_kv_heads * hd, 1);
            add_m(ts, &nt, N("attn_output.weight"), &w->wo, 2, H, 1);
            if (c->qk_norm) {
                add_t(ts, &nt, N("attn_q_norm.weight"), RT_F32, w->q_norm, 1, hd, 1, 1);
                add_t(ts, &nt, N("attn_k_norm.weight"), RT_F32, w->k_norm, 1, hd, 1, 1);
            }
        }
        if (c->ffn == SHV_SWIGLU) {
            add_m(ts, &nt, N("ffn_gate.weight"), &w->w1, 2, (uint64_t)c->width, 1);
            add_m(ts, &nt, N("ffn_up.weight"), &w->w3, 2, (uint64_t)c->width, 1);
            add_m(ts, &nt, N("ffn_down.weight"), &w->w2, 2, H, 1);
        } else {
            add_m(ts, &nt, N("ffn_gate_inp.weight"), &w->router, 2, (uint64_t)c->n_experts, 1);
            add_m(ts, &nt, N("ffn_gate_exps.weight"), &w->gate_exps, 3, (uint64_t)c->expert_width, (uint64_t)c->n_experts);
            add_m(ts, &nt, N("ffn_up_exps.weight"), &w->up_exps, 3, (uint64_t)c->expert_width, (uint64_t)c->n_experts);
            add_m(ts, &nt, N("ffn_down_exps.weight"), &w->down_exps, 3, H, (uint64_t)c->n_experts);
            if (c->n_experts > 4096) { snprintf(err, cap, "export: layer %d: %d experts (max 4096)", l, c->n_experts); goto fail; }
            /* llama.cpp requires the selection bias tensor: zeros when the genome has none */
            add_t(ts, &nt, N("exp_probs_b.bias"), RT_F32, c->router_bias ? w->exp_bias : zero_bias, 1,
                  (uint64_t)c->n_experts, 1, 1);
        }
#undef N
    }
    tokcopy tok;
    memset(&tok, 0, sizeof tok);
    if (tok_from && tok_open(&tok, tok_from, err, cap)) { tok_close(&tok); goto fail; }
    FILE *f = fopen(path, "wb");
    if (!f) { snprintf(err, cap, "export: cannot create %s: %s", path, strerror(errno)); tok_close(&tok); goto fail; }
    wr w = { f, 0, 0 };
    /* lfm2: shortconv.l_cache; qwen3 / llama: rope.dimension_count */
    int nkv = 17 + (has_moe ? 5 : 0) + (tok_from ? (int)tok.n - 1 : 0) + (llama && SHV_ROPE_SCALING == 1);
    /* general.file_type: the llama_ftype of the type holding most matrix bytes
     * (q4_K / q5_K with q6_K beside them: the _M mixes, else _S) */
    uint64_t by[64] = {0};
    for (int i = 0; i < nt; i++)
        if (ts[i].nd >= 2 && ts[i].type >= 0 && ts[i].type < 64) by[ts[i].type] += ts[i].bytes;
    int main_t = RT_F32;
    for (int t = 0; t < 64; t++) if (by[t] > by[main_t]) main_t = t;
    uint32_t ftype = 0;
    switch (main_t) {
    case RT_F16: ftype = 1; break;
    case RT_Q4_0: ftype = 2; break;
    case RT_Q8_0: ftype = 7; break;
    case RT_Q4_K: ftype = by[RT_Q6_K] ? 15 : 14; break;
    case RT_Q5_K: ftype = by[RT_Q6_K] ? 17 : 16; break;
    case RT_Q6_K: ftype = 18; break;
    default: ftype = 0; break;
    }
    w_bytes(&w, "GGUF", 4);
    w_u32(&w, 3);
    w_u64(&w, (uint64_t)nt);
    w_u64(&w, (uint64_t)nkv);
    char k[128];
#define K_(s) (snprintf(k, sizeof k, "%s." s, arch), k)
    kv_str(&w, "general.architecture", arch);
    kv_str(&w, "general.name", "starhil synthetic " SHV_GENOME_HASH);
    kv_u32(&w, "general.alignment", 32);
    kv_u32(&w, "general.file_type", ftype);
    kv_u32(&w, "general.quantization_version", 2);   /* ggml's block formats, version 2 */
    kv_u32(&w, K_("context_length"), (uint32_t)SHV_MAX_CONTEXT);
    kv_u32(&w, K_("embedding_length"), (uint32_t)H);
    kv_u32(&w, K_("block_count"), SHV_N_LAYERS);
    if (ff_varies) kv_arr(&w, K_("feed_forward_length"), ffl, SHV_N_LAYERS);
    else kv_u32(&w, K_("feed_forward_length"), (uint32_t)(ff ? ff : 0));
    kv_u32(&w, K_("attention.head_count"), (uint32_t)(heads ? heads : 1));
    kv_arr(&w, K_("attention.head_count_kv"), kvh, SHV_N_LAYERS);
    kv_f32(&w, K_("attention.layer_norm_rms_epsilon"), (float)SHV_NORM_EPS);
    if (lfm) kv_u32(&w, K_("shortconv.l_cache"), (uint32_t)(lc ? lc : 3));
    else kv_u32(&w, K_("rope.dimension_count"), (uint32_t)hd);
    /* read by genome import (llama.cpp uses it for YaRN only, which llama3 files do not select) */
    if (llama && SHV_ROPE_SCALING == 1) kv_u32(&w, K_("rope.scaling.original_context_length"), (uint32_t)SHV_ROPE_ORIG_CTX);
    kv_f32(&w, K_("rope.freq_base"), (float)SHV_ROPE_THETA);
    kv_u32(&w, K_("vocab_size"), SHV_VOCAB);
    if (!tok_from) kv_str(&w, "tokenizer.ggml.model", "no_vocab");
    for (uint64_t i = 0; tok_from && i < tok.g.nkv; i++) {
        const kv *e = &tok.g.kvs[i];
        if (e->klen > 10 && !memcmp(e->key, "tokenizer.", 10))
            w_bytes(&w, e->key - 8, e->end - (size_t)((const uint8_t *)(e->key - 8) - tok.g.p));
    }
    tok_close(&tok);
    if (has_moe) {
        kv_u32(&w, K_("expert_count"), (uint32_t)E);
        kv_u32(&w, K_("expert_used_count"), (uint32_t)K);
        kv_u32(&w, K_("expert_feed_forward_length"), (uint32_t)Fe);
        kv_u32(&w, K_("leading_dense_block_count"), (uint32_t)lead);
        kv_u32(&w, K_("expert_gating_func"), 2);
    }
    kv_u32(&w, K_("attention.key_length"), (uint32_t)hd);
#undef K_
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        w_str(&w, ts[i].name);
        w_u32(&w, (uint32_t)ts[i].nd);
        for (int d = 0; d < ts[i].nd; d++) w_u64(&w, ts[i].ne[d]);
        w_u32(&w, (uint32_t)ts[i].type);
        w_u64(&w, off);
        off += (ts[i].bytes + 31) / 32 * 32;
    }
    static const uint8_t zeros[32];
    w_bytes(&w, zeros, (size_t)((32 - w.pos % 32) % 32));
    for (int i = 0; i < nt; i++) {
        w_bytes(&w, ts[i].data, ts[i].bytes);
        w_bytes(&w, zeros, (size_t)((32 - ts[i].bytes % 32) % 32));
    }
    for (int i = 0; i < nperm; i++) free(perm[i]);
    if (fclose(f) || w.bad) { snprintf(err, cap, "export: write error on %s", path); return -1; }
    return 0;
oom:
    snprintf(err, cap, "export: out of memory permuting q/k rows");
fail:
    for (int i = 0; i < nperm; i++) free(perm[i]);
    return -1;
}
