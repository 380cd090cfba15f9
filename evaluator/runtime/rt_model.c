/* rt_model.c - the variant's weights: the layer table of the compiled genome,
 * deterministic synthetic weights generated on the device from a seed, and
 * freeing.  Synthetic values come from a counter-based generator,
 * splitmix64(seed, tensor id, element index), so they are the same on every
 * machine and for every thread count; they are generated row by row straight
 * into the final (possibly quantised) buffer of each tensor.  rt_model_pack
 * then rewrites q4_0 / q8_0 and k-quant weights into the order the kernels
 * read, after moving a GGUF file's matrices out of its mapping (onto huge
 * pages where they are usable). */
#define _GNU_SOURCE          /* MADV_HUGEPAGE */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rt.h"
#include "rt_synth.h"

const rt_layer_cfg rt_layers[SHV_N_LAYERS] = SHV_LAYER_TABLE;

/* tensor ids of the generator (stable: changing them changes every weight) */


#define HUGE_PAGE ((size_t)2 << 20)

/* Tensors of 2 MiB and more start on a 2 MiB boundary and ask for transparent
 * huge pages (Linux, Android: honoured when THP is "always" or "madvise"):
 * decode streams every weight once per token, and with 4 KiB pages the page
 * walks and the prefetchers' stop at each page boundary cost about 5-10% of
 * the bandwidth.  Only touched memory counts in RSS, so the alignment costs
 * address space, not memory. */
static void *weight_alloc(size_t bytes)
{
#if defined(MADV_HUGEPAGE)
    if (bytes >= HUGE_PAGE) {
        void *p = NULL;
        if (posix_memalign(&p, HUGE_PAGE, (bytes + 63) / 64 * 64 + 64)) return NULL;
        (void)madvise(p, bytes / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);   /* advice only */
        return p;
    }
#endif
    return rt_alloc64(bytes);
}

static void *model_alloc(rt_model *m, size_t bytes)
{
    if (m->n_allocs >= (int)(sizeof m->allocs / sizeof m->allocs[0])) return NULL;
    void *p = weight_alloc(bytes);
    if (p) m->allocs[m->n_allocs++] = p;
    return p;
}

typedef struct gen_job {
    uint64_t stream;
    int type, rows, cols;
    float center, scale;
    uint8_t *dst;
    size_t row_bytes;
    int failed;
} gen_job;

static void gen_range(void *ctx, int b, int e)
{
    gen_job *j = ctx;
    float *row = malloc((size_t)j->cols * sizeof(float));
    if (!row) { j->failed = 1; return; }
    for (int r = b; r < e; r++) {
        for (int c = 0; c < j->cols; c++)
            row[c] = j->center + j->scale * rt_synth_uniform(j->stream, (uint64_t)r * (uint64_t)j->cols + (uint64_t)c);
        rt_quantize_row(j->type, row, j->dst + (size_t)r * j->row_bytes, j->cols);
    }
    free(row);
}

static int gen_tensor(rt_model *m, rt_pool *pool, uint64_t seed, uint64_t tid, int type, int rows,
                      int cols, float center, float scale, rt_mat *out, char *err, size_t cap)
{
    /* k-quants need rows of multiples of 256; shorter or odd rows fall back
     * to q8_0 (llama-quantize also falls back to a 32-block type there) */
    if (rt_type_is_k(type) && cols % RT_QKK) type = RT_Q8_0;
    size_t rb = rt_row_bytes(type, cols);
    if (rb == 0) {
        snprintf(err, cap, "weights: row length %d is not a multiple of 32, required by %s", cols,
                 rt_type_name(type));
        return -1;
    }
    uint8_t *dst = model_alloc(m, rb * (size_t)rows);
    if (!dst) {
        snprintf(err, cap, "weights: out of memory for a %d x %d %s tensor", rows, cols, rt_type_name(type));
        return -1;
    }
    gen_job j = { rt_synth_stream(seed, tid), type, rows, cols,
                  center, scale, dst, rb, 0 };
    rt_pool_for(pool, rows, 16, gen_range, &j);
    if (j.failed) { snprintf(err, cap, "weights: out of memory"); return -1; }
    out->type = type;
    out->rows = rows;
    out->cols = cols;
    out->row_bytes = rb;
    out->data = dst;
    out->packed = 0;
    m->weight_bytes += rb * (size_t)rows;
    return 0;
}

static const float *gen_vec(rt_model *m, rt_pool *pool, uint64_t seed, uint64_t tid, int n,
                            float center, float scale, char *err, size_t cap)
{
    rt_mat t;
    if (gen_tensor(m, pool, seed, tid, RT_F32, 1, n, center, scale, &t, err, cap)) return NULL;
    return (const float *)(const void *)t.data;
}

/* scales: see rt_synth.h */
#define MAT_STD SYN_MAT_STD
#define EMB_STD SYN_EMB_STD
#define OUT_STD SYN_OUT_STD

/* the type of one matrix for wtype; roles: 0 plain, 1 output / tied embedding,
 * 2 attn_v and ffn_down (llama-quantize's use_more_bits layers get q6_K) */
static int mix_type(int wtype, int role, int l)
{
    if (wtype != RT_MIX_Q4_K_M && wtype != RT_MIX_Q5_K_M) return wtype;
    int n = SHV_N_LAYERS, base = wtype == RT_MIX_Q4_K_M ? RT_Q4_K : RT_Q5_K;
    if (role == 1) return RT_Q6_K;
    if (role == 2 && (l < n / 8 || l >= 7 * n / 8 || (l - n / 8) % 3 == 2)) return RT_Q6_K;
    return base;
}

int rt_model_synthetic(rt_model *m, rt_pool *pool, int wtype_in, uint64_t seed, char *err, size_t cap)
{
    memset(m, 0, sizeof *m);
    const int H = SHV_HIDDEN, hd = SHV_HEAD_DIM;
#define GT(tid, ty, r, c, ctr, sc, out) \
    do { if (gen_tensor(m, pool, seed, (tid), (ty), (r), (c), (ctr), (sc), (out), err, cap)) return -1; } while (0)
#define GV(dst, tid, n, ctr, sc) \
    do { if (!((dst) = gen_vec(m, pool, seed, (tid), (n), (ctr), (sc), err, cap))) return -1; } while (0)
    int wtype = mix_type(wtype_in, 0, 0);
    GT(TID_EMBD, mix_type(wtype_in, SHV_TIED ? 1 : 0, 0), SHV_VOCAB, H, 0.0f, EMB_STD, &m->embd);
    if (SHV_TIED) m->output = m->embd;
    else GT(TID_OUTPUT, mix_type(wtype_in, 1, 0), SHV_VOCAB, H, 0.0f, MAT_STD, &m->output);
    GV(m->final_norm, TID_FINAL_NORM, H, SYN_NORM_CENTER, SYN_NORM_SCALE);
    for (int l = 0; l < SHV_N_LAYERS; l++) {
        const rt_layer_cfg *c = &rt_layers[l];
        rt_layer_w *w = &m->L[l];
        GV(w->attn_norm, LAYER_TID(l, TID_ATTN_NORM), H, SYN_NORM_CENTER, SYN_NORM_SCALE);
        GV(w->ffn_norm, LAYER_TID(l, TID_FFN_NORM), H, SYN_NORM_CENTER, SYN_NORM_SCALE);
        if (c->mixer == SHV_CONV) {
            GT(LAYER_TID(l, TID_IN_PROJ), wtype, 3 * H, H, 0.0f, MAT_STD, &w->in_proj);
            GT(LAYER_TID(l, TID_OUT_PROJ), wtype, H, H, 0.0f, OUT_STD, &w->out_proj);
            GV(w->conv_w, LAYER_TID(l, TID_CONV), H * c->conv_kernel, 0.0f, SYN_CONV_SCALE);
        } else {
            int qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
            GT(LAYER_TID(l, TID_WQ), wtype, qd, H, 0.0f, MAT_STD, &w->wq);
            GT(LAYER_TID(l, TID_WK), wtype, kvd, H, 0.0f, MAT_STD, &w->wk);
            GT(LAYER_TID(l, TID_WV), mix_type(wtype_in, 2, l), kvd, H, 0.0f, MAT_STD, &w->wv);
            GT(LAYER_TID(l, TID_WO), wtype, H, qd, 0.0f, OUT_STD, &w->wo);
            if (c->qk_norm) {
                GV(w->q_norm, LAYER_TID(l, TID_QN), hd, SYN_NORM_CENTER, SYN_NORM_SCALE);
                GV(w->k_norm, LAYER_TID(l, TID_KN), hd, SYN_NORM_CENTER, SYN_NORM_SCALE);
            }
        }
        if (c->ffn == SHV_SWIGLU) {
            GT(LAYER_TID(l, TID_W1), wtype, c->width, H, 0.0f, MAT_STD, &w->w1);
            GT(LAYER_TID(l, TID_W3), wtype, c->width, H, 0.0f, MAT_STD, &w->w3);
            GT(LAYER_TID(l, TID_W2), mix_type(wtype_in, 2, l), H, c->width, 0.0f, OUT_STD, &w->w2);
        } else {
            int E = c->n_experts, Fe = c->expert_width;
            GT(LAYER_TID(l, TID_ROUTER), RT_F32, E, H, 0.0f, MAT_STD, &w->router);
            if (c->router_bias) GV(w->exp_bias, LAYER_TID(l, TID_EBIAS), E, 0.0f, SYN_BIAS_SCALE);
            GT(LAYER_TID(l, TID_GATE_EXPS), wtype, E * Fe, H, 0.0f, MAT_STD, &w->gate_exps);
            GT(LAYER_TID(l, TID_UP_EXPS), wtype, E * Fe, H, 0.0f, MAT_STD, &w->up_exps);
            GT(LAYER_TID(l, TID_DOWN_EXPS), mix_type(wtype_in, 2, l), E * H, Fe, 0.0f, OUT_STD, &w->down_exps);
        }
    }
#undef GT
#undef GV
    return 0;
}

/* ---- packing ---------------------------------------------------------------- */

/* Where a tensor gets packed or huge pages are usable, every matrix of a
 * GGUF file is moved out of the file mapping into a buffer of its own
 * (weight_alloc: 2 MiB and more 2 MiB-aligned on transparent huge pages),
 * packed there if it is packed, and the mapping is unmapped at the end (the
 * vectors were copied at load).  Large tensors alone would not do: where the
 * page cache holds the file in large folios, a read of a small tensor left
 * in the mapping maps the whole 2 MiB folio around it (64 MiB more RSS for
 * LFM2-1.2B q4_0 read from disk).  In the mapping the weights sat on 4 KiB
 * pages (packed: copy-on-write copies), which decode streamed more slowly:
 * on a Sapphire Rapids VM, 5 alternating pairs each, LFM2-1.2B decode ran
 * 1.03x (q4_0, q8_0), 1.06x (Q4_K_M) and 1.02x (f16) faster moved, the
 * AVX2 build's q4_0 1.08x; q4_0 loaded in 0.4 s instead of 2.3 s (no
 * copy-on-write faults), f16 0.3 s slower (README, "A Sapphire Rapids
 * host").
 * The copy goes in slices of MOVE_SLICE bytes; the file pages of each slice
 * are dropped from the mapping as soon as it is copied (MADV_DONTNEED on a
 * private mapping never written: the pages would be read from the file again
 * if touched), so peak RSS grows by about one slice, not by one tensor. */
#define MOVE_SLICE ((size_t)16 << 20)
#define MOVE_PART ((size_t)256 << 10)

typedef struct move_job { const uint8_t *src; uint8_t *dst; size_t bytes; } move_job;
static void move_range(void *ctx, int b, int e)
{
    move_job *j = ctx;
    size_t lo = (size_t)b * MOVE_PART, hi = (size_t)e * MOVE_PART;
    if (hi > j->bytes) hi = j->bytes;
    if (lo < hi) memcpy(j->dst + lo, j->src + lo, hi - lo);
}

static int in_map(const rt_model *m, const rt_mat *mat)
{
    const uint8_t *base = m->map;
    return base && mat->data >= base && mat->data < base + m->map_len;
}

/* mat's bytes copied out of the mapping into a buffer the model owns; mat
 * then points there.  -1: out of memory (mat unchanged). */
static int move_out_of_map(rt_model *m, rt_pool *pool, rt_mat *mat)
{
    const size_t bytes = (size_t)mat->rows * mat->row_bytes;
    uint8_t *dst = model_alloc(m, bytes);
    if (!dst) return -1;
    const long pg = sysconf(_SC_PAGESIZE);
    const uintptr_t lo = (uintptr_t)m->map, hi = lo + (pg > 0 ? (m->map_len + (size_t)pg - 1) / (size_t)pg * (size_t)pg : 0);
    for (size_t off = 0; off < bytes; off += MOVE_SLICE) {
        size_t n = bytes - off < MOVE_SLICE ? bytes - off : MOVE_SLICE;
        move_job j = { mat->data + off, dst + off, n };
        rt_pool_for(pool, (int)((n + MOVE_PART - 1) / MOVE_PART), 1, move_range, &j);
#if defined(MADV_DONTNEED)
        /* The drop is rounded out to 2 MiB: where the page cache holds the
         * file in large folios, a read fault maps 2 MiB of it at once, and
         * the parts of such mappings that straddle a slice's edges stayed
         * (64 MiB more peak RSS for LFM2-1.2B q4_0 read from disk).  The
         * neighbours' bytes dropped with them fault back when read: the
         * mapping is never written. */
        uintptr_t a = (uintptr_t)(mat->data + off) / HUGE_PAGE * HUGE_PAGE;
        uintptr_t e = ((uintptr_t)(mat->data + off + n) + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
        if (a < lo) a = lo;
        if (e > hi) e = hi;
        if (e > a) (void)madvise((void *)a, e - a, MADV_DONTNEED);
#else
        (void)lo; (void)hi;
#endif
    }
    mat->data = dst;
    return 0;
}

typedef struct pack_job { const rt_mat *m; atomic_int failed; } pack_job;
static void pack_range(void *ctx, int b, int e)
{
    pack_job *j = ctx;
    if (rt_mat_pack_rows(j->m, b, e)) atomic_store(&j->failed, 1);
}

/* 1 if mat is an expert tensor of layer l whose experts' row counts are not
 * multiples of 16: the forward pass takes row views of it per expert, and a
 * packed k-quant band must not straddle two experts */
static int split_bands(const rt_model *m, const rt_mat *mat)
{
    for (int l = 0; l < SHV_N_LAYERS; l++) {
        const rt_layer_w *w = &m->L[l];
        int E = rt_layers[l].n_experts;
        if (E <= 0 || (mat != &w->gate_exps && mat != &w->up_exps && mat != &w->down_exps)) continue;
        return (mat->rows / E) % 16 != 0;
    }
    return 0;
}

/* every weight matrix of the model, the tied output once */
static int model_mats(rt_model *m, rt_mat **out)
{
    int n = 0;
    out[n++] = &m->embd;
    if (m->output.data != m->embd.data) out[n++] = &m->output;
    for (int l = 0; l < SHV_N_LAYERS; l++) {
        rt_layer_w *w = &m->L[l];
        rt_mat *ls[] = { &w->in_proj, &w->out_proj, &w->wq, &w->wk, &w->wv, &w->wo,
                         &w->w1, &w->w3, &w->w2, &w->router, &w->gate_exps, &w->up_exps, &w->down_exps };
        for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++)
            if (ls[i]->data) out[n++] = ls[i];
    }
    return n;
}

/* 1 if transparent huge pages can back an madvise'd buffer here (Linux with
 * THP "always" or "madvise"); read once */
static int huge_pages_usable(void)
{
    static atomic_int known = -1;
    int v = atomic_load(&known);
    if (v >= 0) return v;
    v = 0;
#if defined(MADV_HUGEPAGE)
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f) {
        char line[128] = "";
        if (fgets(line, sizeof line, f)) v = strstr(line, "[always]") || strstr(line, "[madvise]");
        fclose(f);
    }
#endif
    atomic_store(&known, v);
    return v;
}

/* 1 if rt_model_pack rewrites mat (a k-quant band must not straddle experts) */
static int packs(const rt_model *m, const rt_mat *mat)
{
    return rt_mat_packable(mat) && !(rt_type_is_k(mat->type) && split_bands(m, mat));
}

int rt_model_pack(rt_model *m, rt_pool *pool, char *err, size_t cap)
{
    rt_mat **mats = malloc((2 + 13 * (size_t)SHV_N_LAYERS) * sizeof *mats);
    if (!mats) { snprintf(err, cap, "weights: out of memory"); return -1; }
    const int n = model_mats(m, mats), tied = m->output.data == m->embd.data, huge = huge_pages_usable();
    int any = 0;
    for (int i = 0; i < n; i++) any |= packs(m, mats[i]);
    for (int i = 0; i < n; i++) {
        rt_mat *mat = mats[i];
        const int pack = packs(m, mat);
        if (any && !pack) m->ggml_q8 |= mat->type == RT_Q8_0 && mat->cols / RT_QK >= 16;
        /* the file mapping is never written: every matrix moves out first */
        if ((any || huge) && in_map(m, mat) && move_out_of_map(m, pool, mat)) {
            snprintf(err, cap, "weights: out of memory moving a %d x %d %s tensor out of the GGUF mapping",
                     mat->rows, mat->cols, rt_type_name(mat->type));
            free(mats);
            return -1;
        }
        if (!pack) continue;
        pack_job j = { mat, 0 };
        rt_pool_for(pool, mat->rows, 16, pack_range, &j);
        if (atomic_load(&j.failed)) {
            snprintf(err, cap, "weights: out of memory repacking a %d x %d %s tensor", mat->rows, mat->cols,
                     rt_type_name(mat->type));
            free(mats);
            return -1;
        }
        mat->packed = 1;
    }
    if (tied) {
        m->output.data = m->embd.data;
        m->output.packed = m->embd.packed;
    }
    int left = 0;
    for (int i = 0; i < n; i++) left += in_map(m, mats[i]);
    if (m->map && !left) {   /* nothing reads the file any more */
        munmap(m->map, m->map_len);
        m->map = NULL;
        m->map_len = 0;
    }
    m->packed = any;
    free(mats);
    return 0;
}

void rt_model_free(rt_model *m)
{
    for (int i = 0; i < m->n_allocs; i++) free(m->allocs[i]);
    m->n_allocs = 0;
    if (m->map) munmap(m->map, m->map_len);
    m->map = NULL;
}
