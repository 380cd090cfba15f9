/* gguf_write.c - GGUF v3 writer for genomes with synthetic weights: LFM2 /
 * LFM2-MoE (lfm2, lfm2moe), and attention-only genomes as llama.cpp's qwen3
 * (QK-norm on every layer) or llama (none; q/k rows in its converter's order
 * for its pairwise RoPE, llama3 scaling as rope_freqs.weight).  Metadata
 * keys, GGUF value types and tensor names follow section 4 of
 * shared/reference/lfm2-architecture.md and llama.cpp's src/llama-arch.cpp;
 * block layouts follow ggml
 * (q8_0: f16 d + 32 int8; q4_0: f16 d + 16 bytes, low nibbles = elements
 * 0..15, high nibbles = 16..31). */
#include "reports/gguf_write.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "genome/gguf_meta.h"
#include "reports/gguf_synth.h"
#include "reports/hf_config.h"
#include "evaluator/runtime/rt_wtype.h"
#include "evaluator/runtime/rt_rope.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF   /* q4_0 rounding must not fuse x*id + 8.5 */
#endif

/* ---- number conversions --------------------------------------------------------- */

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

uint16_t sh_fp32_to_fp16(float f)
{
    uint32_t x = f32_bits(f), sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
    if (a >= 0x7f800000u) return (uint16_t)(sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);          /* rounds to inf */
    if (a < 0x38800000u) {                                             /* half subnormal */
        int e = (int)(a >> 23);
        if (e < 102) return (uint16_t)sign;
        uint32_t mant = (a & 0x7fffffu) | 0x800000u;
        int shift = 126 - e;
        uint32_t h = mant >> shift, rest = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = (a - 0x38000000u) >> 13, rest = a & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

float sh_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return bits_f32(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

void sh_quantize_q8_0(const float *x, uint8_t *out, int64_t n)
{
    for (int64_t b = 0; b < n / 32; b++, x += 32, out += 34) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = sh_fp32_to_fp16(d);
        memcpy(out, &dh, 2);
        for (int j = 0; j < 32; j++) out[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    }
}

void sh_quantize_q4_0(const float *x, uint8_t *out, int64_t n)
{
    for (int64_t b = 0; b < n / 32; b++, x += 32, out += 18) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = sh_fp32_to_fp16(d);
        memcpy(out, &dh, 2);
        for (int j = 0; j < 16; j++) {
            int q0 = (int)(int8_t)(x[j] * id + 8.5f), q1 = (int)(int8_t)(x[16 + j] * id + 8.5f);
            if (q0 > 15) q0 = 15;
            if (q1 > 15) q1 = 15;
            out[2 + j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* ---- tensor table ------------------------------------------------------------------ */

typedef struct tensor {
    char name[64];
    int n_dims;
    uint64_t ne[3];          /* ggml order: ne[0] innermost (row length) */
    int ggml_type;
    sh_synth_tensor synth;   /* what the runtime's generator calls it */
    uint64_t bytes, offset;
    int pair_rows;           /* llama q/k: file row r is generated row pair_src(r) */
    const float *fixed;      /* f32 values written as they are (rope_freqs), or NULL */
} tensor;

typedef struct writer {
    FILE *f;
    bool dry;                /* count metadata pairs without writing */
    int n_kv;
    uint64_t counted;        /* bytes a dry run would have written */
    const char *path;
    sh_err *err;
    bool failed;
    tensor *t;
    int nt, cap;
    const char *arch;        /* lfm2, lfm2moe, qwen3, llama */
    int head_dim;
    float rope_freqs[SH_LIMIT_HEAD_DIM / 2];
} writer;

/* within each head of hd rows: file row 2i holds row i, row 2i+1 row i + hd/2
 * (llama.cpp's converter order for llama files, whose RoPE turns pairs) */
static uint64_t pair_src(uint64_t r, uint64_t hd)
{
    uint64_t h = r / hd, i = r % hd;
    return h * hd + (i % 2 ? hd / 2 + i / 2 : i / 2);
}

/* One numbering of weight types: the tool's (sh_dtype) is ggml's, which the
 * per-genome runtime reads GGUF files with. */
_Static_assert((int)SH_DTYPE_F32 == RT_F32 && (int)SH_DTYPE_F16 == RT_F16 && (int)SH_DTYPE_Q4_0 == RT_Q4_0 &&
               (int)SH_DTYPE_Q8_0 == RT_Q8_0, "genome.h sh_dtype and the runtime's rt_wtype.h disagree");

static uint64_t row_bytes(int type, uint64_t n)
{
    switch (type) {
    case SH_DTYPE_F16: return 2 * n;
    case SH_DTYPE_Q8_0: return n / 32 * 34;
    case SH_DTYPE_Q4_0: return n / 32 * 18;
    default: return 4 * n;
    }
}

static int add_tensor(writer *w, int type, sh_synth_kind kind, int layer, int n_dims,
                      uint64_t ne0, uint64_t ne1, uint64_t ne2, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));

static int add_tensor(writer *w, int type, sh_synth_kind kind, int layer, int n_dims,
                      uint64_t ne0, uint64_t ne1, uint64_t ne2, const char *fmt, ...)
{
    if (w->nt == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        tensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t) return sh_err_set(w->err, "%s: out of memory", w->path);
        w->t = t; w->cap = cap;
    }
    tensor *t = &w->t[w->nt++];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->n_dims = n_dims;
    t->ne[0] = ne0; t->ne[1] = ne1; t->ne[2] = ne2;
    t->ggml_type = type;
    t->synth = (sh_synth_tensor){.kind = kind, .layer = layer,
                                 .rows = ne1 * (n_dims > 2 ? ne2 : 1), .cols = ne0};
    t->bytes = row_bytes(type, ne0) * t->synth.rows;
    return 0;
}

static int plan_layer(writer *w, const sh_genome *g, int i, int wt)
{
    const sh_layer *l = &g->layers[i];
    uint64_t H = (uint64_t)g->hidden, hd = (uint64_t)g->head_dim;
    int rc = add_tensor(w, SH_DTYPE_F32, SH_SYN_ATTN_NORM, i, 1, H, 1, 1, "blk.%d.attn_norm.weight", i);
    if (l->mixer.kind == SH_MIXER_CONV) {
        uint64_t L = (uint64_t)l->mixer.conv_kernel;
        rc |= add_tensor(w, wt, SH_SYN_CONV_IN, i, 2, H, 3 * H, 1, "blk.%d.shortconv.in_proj.weight", i);
        rc |= add_tensor(w, SH_DTYPE_F32, SH_SYN_CONV_KERNEL, i, 2, L, H, 1, "blk.%d.shortconv.conv.weight", i);
        rc |= add_tensor(w, wt, SH_SYN_CONV_OUT, i, 2, H, H, 1, "blk.%d.shortconv.out_proj.weight", i);
    } else {
        uint64_t q = (uint64_t)l->mixer.n_heads * hd, kv = (uint64_t)l->mixer.n_kv_heads * hd;
        bool llama = !strcmp(w->arch, "llama");
        rc |= add_tensor(w, wt, SH_SYN_ATTN_Q, i, 2, H, q, 1, "blk.%d.attn_q.weight", i);
        if (rc == 0) w->t[w->nt - 1].pair_rows = llama;
        rc |= add_tensor(w, wt, SH_SYN_ATTN_K, i, 2, H, kv, 1, "blk.%d.attn_k.weight", i);
        if (rc == 0) w->t[w->nt - 1].pair_rows = llama;
        rc |= add_tensor(w, wt, SH_SYN_ATTN_V, i, 2, H, kv, 1, "blk.%d.attn_v.weight", i);
        rc |= add_tensor(w, wt, SH_SYN_ATTN_OUT, i, 2, q, H, 1, "blk.%d.attn_output.weight", i);
        if (l->mixer.qk_norm) {
            rc |= add_tensor(w, SH_DTYPE_F32, SH_SYN_Q_NORM, i, 1, hd, 1, 1, "blk.%d.attn_q_norm.weight", i);
            rc |= add_tensor(w, SH_DTYPE_F32, SH_SYN_K_NORM, i, 1, hd, 1, 1, "blk.%d.attn_k_norm.weight", i);
        }
    }
    rc |= add_tensor(w, SH_DTYPE_F32, SH_SYN_FFN_NORM, i, 1, H, 1, 1, "blk.%d.ffn_norm.weight", i);
    if (l->ffn.kind == SH_FFN_SWIGLU) {
        uint64_t F = (uint64_t)l->ffn.width;
        rc |= add_tensor(w, wt, SH_SYN_FFN_GATE, i, 2, H, F, 1, "blk.%d.ffn_gate.weight", i);
        rc |= add_tensor(w, wt, SH_SYN_FFN_UP, i, 2, H, F, 1, "blk.%d.ffn_up.weight", i);
        rc |= add_tensor(w, wt, SH_SYN_FFN_DOWN, i, 2, F, H, 1, "blk.%d.ffn_down.weight", i);
    } else {
        uint64_t E = (uint64_t)l->ffn.n_experts, Fe = (uint64_t)l->ffn.expert_width;
        rc |= add_tensor(w, SH_DTYPE_F32, SH_SYN_ROUTER, i, 2, H, E, 1, "blk.%d.ffn_gate_inp.weight", i);
        rc |= add_tensor(w, wt, SH_SYN_EXP_GATE, i, 3, H, Fe, E, "blk.%d.ffn_gate_exps.weight", i);
        rc |= add_tensor(w, wt, SH_SYN_EXP_UP, i, 3, H, Fe, E, "blk.%d.ffn_up_exps.weight", i);
        rc |= add_tensor(w, wt, SH_SYN_EXP_DOWN, i, 3, Fe, H, E, "blk.%d.ffn_down_exps.weight", i);
        /* llama.cpp requires the bias tensor: zeros when the genome has none */
        rc |= add_tensor(w, SH_DTYPE_F32, SH_SYN_EXP_BIAS, i, 1, E, 1, 1, "blk.%d.exp_probs_b.bias", i);
        if (rc == 0 && !l->ffn.router_bias) w->t[w->nt - 1].synth.zero = 1;
    }
    return rc ? -1 : 0;
}

static int plan_tensors(writer *w, const sh_genome *g, sh_dtype wtype)
{
    int wt = (int)wtype;
    uint64_t H = (uint64_t)g->hidden, V = (uint64_t)g->vocab;
    if (add_tensor(w, wt, SH_SYN_TOKEN_EMBD, -1, 2, H, V, 1, "token_embd.weight") != 0) return -1;
    for (int i = 0; i < g->n_layers; i++)
        if (plan_layer(w, g, i, wt) != 0) return -1;
    bool lfm = !strncmp(w->arch, "lfm2", 4);   /* llama.cpp names LFM2's final norm token_embd_norm */
    if (add_tensor(w, SH_DTYPE_F32, SH_SYN_FINAL_NORM, -1, 1, H, 1, 1, lfm ? "token_embd_norm.weight" : "output_norm.weight") != 0)
        return -1;
    if (g->rope_scaling == SH_ROPE_LLAMA3) {   /* llama files only (check_genome) */
        rt_llama3_divisors(g->rope_theta, g->head_dim, g->rope_factor, g->rope_low_freq, g->rope_high_freq,
                           g->rope_orig_context, w->rope_freqs);
        if (add_tensor(w, SH_DTYPE_F32, SH_SYN_FINAL_NORM, -1, 1, (uint64_t)g->head_dim / 2, 1, 1, "rope_freqs.weight") != 0)
            return -1;
        w->t[w->nt - 1].fixed = w->rope_freqs;
    }
    if (!g->tied_embeddings &&
        add_tensor(w, wt, SH_SYN_OUTPUT, -1, 2, H, V, 1, "output.weight") != 0)
        return -1;
    uint64_t off = 0;
    for (int k = 0; k < w->nt; k++) {
        w->t[k].offset = off;
        off += (w->t[k].bytes + SH_GGUF_ALIGNMENT - 1) / SH_GGUF_ALIGNMENT * SH_GGUF_ALIGNMENT;
    }
    return 0;
}

/* ---- primitive writes ---------------------------------------------------------------- */

static void put(writer *w, const void *p, size_t n)
{
    if (w->dry) { w->counted += n; return; }
    if (!w->failed && n && fwrite(p, 1, n, w->f) != n) {
        w->failed = true;
        sh_err_set(w->err, "%s: write failed: %s", w->path, strerror(errno));
    }
}
static void put_u32(writer *w, uint32_t v) { put(w, &v, 4); }   /* GGUF is little endian */
static void put_u64(writer *w, uint64_t v) { put(w, &v, 8); }
static void put_str(writer *w, const char *s) { put_u64(w, strlen(s)); put(w, s, strlen(s)); }
static void kv_head(writer *w, const char *key, uint32_t type)
{
    w->n_kv++;
    put_str(w, key);
    put_u32(w, type);
}
static void kv_u32(writer *w, const char *key, uint32_t v) { kv_head(w, key, SH_GGUF_U32); put_u32(w, v); }
static void kv_u64(writer *w, const char *key, uint64_t v) { kv_head(w, key, SH_GGUF_U64); put_u64(w, v); }
static void kv_f32(writer *w, const char *key, float v) { kv_head(w, key, SH_GGUF_F32); put(w, &v, 4); }
static void kv_str(writer *w, const char *key, const char *v) { kv_head(w, key, SH_GGUF_STRING); put_str(w, v); }
static void pad_to(writer *w, uint64_t pos)
{
    static const uint8_t zeros[SH_GGUF_ALIGNMENT];
    uint64_t rem = pos % SH_GGUF_ALIGNMENT;
    if (rem) put(w, zeros, SH_GGUF_ALIGNMENT - rem);
}

/* ---- metadata ------------------------------------------------------------------------ */

typedef struct meta {
    const char *arch;
    const sh_genome *g;
    const sh_lfm2_shape *s;
    const sh_gguf_opts *o;
    const char *text;
    const sh_gguf_meta *tok;   /* tokenizer source, or NULL */
} meta;

static bool is_tokenizer_key(const char *k) { return !strncmp(k, "tokenizer.", 10); }

/* Reads opts->tokenizer_from (if set) into *tok and checks it fits the genome. */
static int load_tokenizer(const sh_genome *g, const sh_gguf_opts *o, sh_gguf_meta *tok, bool *have, sh_err *err)
{
    *have = false;
    if (!o->tokenizer_from) return 0;
    if (sh_gguf_meta_read(o->tokenizer_from, tok, err) != 0) return sh_err_prefix(err, "--tokenizer-from");
    const sh_gguf_kv *model = sh_gguf_meta_find(tok, "tokenizer.ggml.model");
    const sh_gguf_kv *tokens = sh_gguf_meta_find(tok, "tokenizer.ggml.tokens");
    int rc = 0;
    if (!model || model->type != SH_GGUF_STRING)
        rc = sh_err_set(err, "--tokenizer-from %s: no tokenizer.ggml.model string", o->tokenizer_from);
    else if (!tokens || tokens->type != SH_GGUF_ARRAY || tokens->arr_type != SH_GGUF_STRING)
        rc = sh_err_set(err, "--tokenizer-from %s: no tokenizer.ggml.tokens string array", o->tokenizer_from);
    else if (tokens->arr_len != (uint64_t)g->vocab)
        rc = sh_err_set(err, "--tokenizer-from %s: the tokenizer has %llu tokens, the genome's vocabulary is %d",
                        o->tokenizer_from, (unsigned long long)tokens->arr_len, g->vocab);
    if (rc) { sh_gguf_meta_free(tok); return rc; }
    *have = true;
    return 0;
}

static void write_kvs(writer *w, const meta *m)
{
    const sh_genome *g = m->g;
    const char *arch = m->arch;
    bool lfm = !strncmp(arch, "lfm2", 4);
    char key[96];
#define K(suffix) (snprintf(key, sizeof key, "%s." suffix, arch), key)
    kv_str(w, "general.architecture", arch);
    kv_str(w, "general.name", "starhil synthetic");
    kv_u32(w, "general.alignment", SH_GGUF_ALIGNMENT);
    /* llama_ftype of the matrices (ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2,
     * MOSTLY_Q8_0 7) and ggml's quantisation format version (2) */
    uint32_t ftype = m->o->wtype == SH_DTYPE_F16 ? 1 : m->o->wtype == SH_DTYPE_Q8_0 ? 7
                   : m->o->wtype == SH_DTYPE_Q4_0 ? 2 : 0;
    kv_u32(w, "general.file_type", ftype);
    kv_u32(w, "general.quantization_version", 2);
    kv_u32(w, K("context_length"), (uint32_t)g->max_context);
    kv_u32(w, K("embedding_length"), (uint32_t)g->hidden);
    kv_u32(w, K("block_count"), (uint32_t)g->n_layers);
    kv_u32(w, K("feed_forward_length"), (uint32_t)m->s->ffn_width);
    kv_u32(w, K("attention.head_count"), (uint32_t)m->s->n_heads);
    kv_head(w, K("attention.head_count_kv"), SH_GGUF_ARRAY);
    put_u32(w, SH_GGUF_U32);
    put_u64(w, (uint64_t)g->n_layers);
    for (int i = 0; i < g->n_layers; i++)
        put_u32(w, g->layers[i].mixer.kind == SH_MIXER_GQA ? (uint32_t)g->layers[i].mixer.n_kv_heads : 0);
    kv_f32(w, K("attention.layer_norm_rms_epsilon"), (float)g->norm_eps);
    kv_u32(w, K("attention.key_length"), (uint32_t)g->head_dim);
    kv_u32(w, K("attention.value_length"), (uint32_t)g->head_dim);
    if (lfm) kv_u32(w, K("shortconv.l_cache"), (uint32_t)m->s->conv_kernel);
    else kv_u32(w, K("rope.dimension_count"), (uint32_t)g->head_dim);
    kv_f32(w, K("rope.freq_base"), (float)g->rope_theta);
    /* read back by genome import; llama.cpp uses it for YaRN only, which llama3 files do not select */
    if (g->rope_scaling == SH_ROPE_LLAMA3)
        kv_u32(w, K("rope.scaling.original_context_length"), (uint32_t)g->rope_orig_context);
    kv_u32(w, K("vocab_size"), (uint32_t)g->vocab);
    if (!m->tok) kv_str(w, "tokenizer.ggml.model", "no_vocab");
    else
        for (uint64_t i = 0; i < m->tok->n_kv; i++) {
            const sh_gguf_kv *kv = &m->tok->kv[i];
            if (!is_tokenizer_key(kv->key)) continue;
            w->n_kv++;
            put(w, m->tok->buf + kv->off, kv->len);   /* key, type and value as they are */
        }
    kv_str(w, "starhil.genome", m->text);
    kv_u64(w, "starhil.seed", m->o->seed);
    if (m->s->moe) {
        kv_u32(w, K("expert_count"), (uint32_t)m->s->n_experts);
        kv_u32(w, K("expert_used_count"), (uint32_t)m->s->top_k);
        kv_u32(w, K("expert_feed_forward_length"), (uint32_t)m->s->expert_width);
        kv_u32(w, K("leading_dense_block_count"), (uint32_t)m->s->n_dense);
        kv_u32(w, K("expert_gating_func"), 2);   /* sigmoid */
    }
#undef K
}

static uint64_t write_header(writer *w, const meta *m)
{
    put(w, "GGUF", 4);
    put_u32(w, 3);
    put_u64(w, (uint64_t)w->nt);
    w->dry = true;
    w->n_kv = 0;
    write_kvs(w, m);
    w->dry = false;
    put_u64(w, (uint64_t)w->n_kv);
    write_kvs(w, m);
    for (int k = 0; k < w->nt; k++) {
        const tensor *t = &w->t[k];
        put_str(w, t->name);
        put_u32(w, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(w, t->ne[d]);
        put_u32(w, (uint32_t)t->ggml_type);
        put_u64(w, t->offset);
    }
    long pos = ftell(w->f);
    if (pos < 0) { w->failed = true; sh_err_set(w->err, "%s: ftell: %s", w->path, strerror(errno)); return 0; }
    pad_to(w, (uint64_t)pos);
    return (uint64_t)pos;
}

/* ---- tensor data ----------------------------------------------------------------------- */

static void write_rows(writer *w, const tensor *t, const sh_gguf_opts *o, float *row, uint8_t *enc)
{
    uint64_t n = t->ne[0];
    for (uint64_t r = 0; r < t->synth.rows && !w->failed; r++) {
        if (t->fixed) memcpy(row, t->fixed + r * n, n * sizeof *row);
        else sh_synth_row(&t->synth, o->seed, t->pair_rows ? pair_src(r, (uint64_t)w->head_dim) : r, row);
        switch (t->ggml_type) {
        case SH_DTYPE_F32: put(w, row, 4 * n); break;
        case SH_DTYPE_F16:
            for (uint64_t j = 0; j < n; j++) {
                uint16_t h = sh_fp32_to_fp16(row[j]);
                memcpy(enc + 2 * j, &h, 2);
            }
            put(w, enc, 2 * n);
            break;
        case SH_DTYPE_Q8_0: sh_quantize_q8_0(row, enc, (int64_t)n); put(w, enc, n / 32 * 34); break;
        default: sh_quantize_q4_0(row, enc, (int64_t)n); put(w, enc, n / 32 * 18); break;
        }
    }
    pad_to(w, t->bytes);
}

static int write_data(writer *w, const sh_gguf_opts *o)
{
    uint64_t widest = 1;
    for (int k = 0; k < w->nt; k++)
        if (w->t[k].ne[0] > widest) widest = w->t[k].ne[0];
    float *row = malloc(widest * sizeof *row);
    uint8_t *enc = malloc(widest * 4);
    if (!row || !enc) {
        free(row); free(enc);
        return sh_err_set(w->err, "%s: out of memory", w->path);
    }
    uint64_t total = 0, done = 0;
    for (int k = 0; k < w->nt; k++) total += w->t[k].bytes;
    for (int k = 0; k < w->nt && !w->failed; k++) {
        write_rows(w, &w->t[k], o, row, enc);
        done += w->t[k].bytes;
        if (o->progress) o->progress(o->progress_ctx, done, total);
    }
    free(row); free(enc);
    return w->failed ? -1 : 0;
}

/* attention-only genomes: llama.cpp's qwen3 (QK-norm everywhere) or llama
 * (none) graph, one head count and FFN width for every layer */
static int transformer_shape(const sh_genome *g, sh_lfm2_shape *s, const char **arch, sh_err *err)
{
    memset(s, 0, sizeof *s);
    const sh_layer *l0 = &g->layers[0];
    for (int i = 0; i < g->n_layers; i++) {
        const sh_layer *l = &g->layers[i];
        if (l->mixer.qk_norm != l0->mixer.qk_norm)
            return sh_err_set(err, "layer %d: QK-norm %s but layer 0 %s: a qwen3 file needs it on every layer, a llama "
                              "file on none", i, l->mixer.qk_norm ? "on" : "off", l0->mixer.qk_norm ? "on" : "off");
        if (l->mixer.n_heads != l0->mixer.n_heads || l->mixer.n_kv_heads != l0->mixer.n_kv_heads)
            return sh_err_set(err, "layer %d: attention heads %d/%d differ from layer 0's %d/%d (one head count per "
                              "file)", i, l->mixer.n_heads, l->mixer.n_kv_heads, l0->mixer.n_heads, l0->mixer.n_kv_heads);
        if (l->ffn.width != l0->ffn.width)
            return sh_err_set(err, "layer %d: FFN width %d differs from layer 0's %d (one feed_forward_length per file)",
                              i, l->ffn.width, l0->ffn.width);
    }
    *arch = l0->mixer.qk_norm ? "qwen3" : "llama";
    if (g->rope_scaling != SH_ROPE_NONE && l0->mixer.qk_norm)
        return sh_err_set(err, "llama3 rope scaling in a qwen3 file: llama.cpp applies it to llama files only");
    s->conv_kernel = 3;
    s->n_heads = l0->mixer.n_heads;
    s->n_kv_heads = l0->mixer.n_kv_heads;
    s->n_attn = g->n_layers;
    s->ffn_width = l0->ffn.width;
    s->n_dense = g->n_layers;
    return 0;
}

static int check_genome(const sh_genome *g, const sh_gguf_opts *o, sh_lfm2_shape *s, const char **arch, sh_err *err)
{
    if (sh_genome_validate(g, err) != 0) return sh_err_prefix(err, "GGUF export");
    bool attn_only = sh_genome_count_mixer(g, SH_MIXER_GQA) == g->n_layers && sh_genome_count_ffn(g, SH_FFN_MOE) == 0;
    if (attn_only) {
        if (transformer_shape(g, s, arch, err) != 0) return sh_err_prefix(err, "GGUF export");
    } else {
        if (sh_lfm2_shape_of(g, s, err) != 0) return sh_err_prefix(err, "GGUF export");
        *arch = s->moe ? "lfm2moe" : "lfm2";
    }
    if (o->wtype != SH_DTYPE_F32 && o->wtype != SH_DTYPE_F16 &&
        sh_genome_check_quantizable(g, err) != 0)
        return sh_err_prefix(err, "GGUF export as %s", sh_dtype_name(o->wtype));
    return 0;
}

int sh_gguf_write_genome(const sh_genome *g, const char *path, const sh_gguf_opts *o, sh_err *err)
{
    sh_lfm2_shape s;
    const char *arch;
    if (check_genome(g, o, &s, &arch, err) != 0) return -1;
    static char text[SH_GENOME_TEXT_MAX];
    if (sh_genome_format(g, text, sizeof text, err) != 0) return -1;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return sh_err_set(err, "%s: path too long", path);
    sh_gguf_meta tok;
    bool have_tok;
    if (load_tokenizer(g, o, &tok, &have_tok, err) != 0) return -1;
    writer w = {.path = path, .err = err, .arch = arch, .head_dim = g->head_dim};
    meta m = {arch, g, &s, o, text, have_tok ? &tok : NULL};
    int rc = plan_tensors(&w, g, o->wtype);
    if (rc == 0 && !(w.f = fopen(tmp, "wb")))
        rc = sh_err_set(err, "%s: cannot create: %s", tmp, strerror(errno));
    if (rc == 0) {
        write_header(&w, &m);
        rc = w.failed ? -1 : write_data(&w, o);
        if (fclose(w.f) != 0 && rc == 0) rc = sh_err_set(err, "%s: close: %s", tmp, strerror(errno));
        if (rc == 0 && rename(tmp, path) != 0)
            rc = sh_err_set(err, "%s: rename from %s: %s", path, tmp, strerror(errno));
        if (rc != 0) unlink(tmp);
    }
    free(w.t);
    if (have_tok) sh_gguf_meta_free(&tok);
    return rc;
}

uint64_t sh_gguf_file_size(const sh_genome *g, const sh_gguf_opts *o)
{
    sh_lfm2_shape s;
    sh_err err = {{0}};
    const char *arch;
    if (check_genome(g, o, &s, &arch, &err) != 0) return 0;
    static char text[SH_GENOME_TEXT_MAX];
    if (sh_genome_format(g, text, sizeof text, &err) != 0) return 0;
    sh_gguf_meta tok;
    bool have_tok;
    if (load_tokenizer(g, o, &tok, &have_tok, &err) != 0) return 0;
    writer w = {.path = "(size)", .err = &err, .dry = true, .arch = arch, .head_dim = g->head_dim};
    meta m = {arch, g, &s, o, text, have_tok ? &tok : NULL};
    if (plan_tensors(&w, g, o->wtype) != 0) { free(w.t); if (have_tok) sh_gguf_meta_free(&tok); return 0; }
    /* header size: count bytes of a dry run */
    uint64_t header = 24;
    w.n_kv = 0;
    w.counted = 0;
    write_kvs(&w, &m);
    header += w.counted;
    for (int k = 0; k < w.nt; k++) header += 8 + strlen(w.t[k].name) + 4 + 8 * (uint64_t)w.t[k].n_dims + 4 + 8;
    header = (header + SH_GGUF_ALIGNMENT - 1) / SH_GGUF_ALIGNMENT * SH_GGUF_ALIGNMENT;
    uint64_t data = w.nt ? w.t[w.nt - 1].offset + (w.t[w.nt - 1].bytes + SH_GGUF_ALIGNMENT - 1) /
                               SH_GGUF_ALIGNMENT * SH_GGUF_ALIGNMENT : 0;
    free(w.t);
    if (have_tok) sh_gguf_meta_free(&tok);
    return header + data;
}
