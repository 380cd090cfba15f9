/* rt.h - internal interfaces of the variant runtime (evaluator/runtime):
 * numeric types and f16 conversion, quantised blocks, activation buffers,
 * the thread pool, matrix kernels, the model, the forward pass and GGUF loading.
 * Plain C11 + libm + pthreads; SIMD path chosen by compiler feature macros. */
#ifndef RT_H
#define RT_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

/* A file that defines RT_NO_MODEL before including this header sees no
 * genome (no sh_variant.h, no model or state): its object is the same for
 * every variant of a compiler and flags, and the build shares it (build.c). */
#ifndef RT_NO_MODEL
#include "rt_config.h"
#endif

/* ---- SIMD path selection ---------------------------------------------- */
#if defined(SHV_SCALAR)
#define RT_SIMD_SCALAR 1
#define RT_SIMD_NAME "scalar"
#elif defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
      defined(__AVX512VNNI__) && defined(__FMA__) && defined(__F16C__)
#define RT_SIMD_AVX512 1
#define RT_SIMD_NAME "avx512"
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define RT_SIMD_AVX2 1
#define RT_SIMD_NAME "avx2"
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define RT_SIMD_NEON 1
#if defined(__ARM_FEATURE_DOTPROD)
#define RT_SIMD_NAME "neon-dotprod"
#else
#define RT_SIMD_NAME "neon"
#endif
#else
#define RT_SIMD_SCALAR 1
#define RT_SIMD_NAME "scalar"
#endif

/* the intrinsics of the chosen path */
#if defined(RT_SIMD_AVX512) || defined(RT_SIMD_AVX2)
#include <immintrin.h>
#elif defined(RT_SIMD_NEON)
#include <arm_neon.h>
#endif

/* Products and sums are rounded separately everywhere in the runtime (gcc
 * does so under -std=c11; clang needs the pragma): the SIMD paths that copy
 * scalar arithmetic stay bit-identical to it. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- weight types (ggml numbering, rt_wtype.h) ---------------------------- */
#include "rt_wtype.h"
#define RT_QK 32                 /* elements per quantised block */
#define RT_Q8_BYTES 34           /* f16 d + 32 int8 */
#define RT_Q4_BYTES 18           /* f16 d + 16 bytes of nibbles */
/* k-quants (ggml-common.h layouts, read from the public format description):
 * q4_K: f16 d, f16 dmin, 12 B of 6-bit sub-block scales and mins (8 of 32
 *       elements each), 128 B of nibbles; x = d*sc*q - dmin*m, q in 0..15
 * q5_K: as q4_K plus 32 B of fifth bits (qh) before the nibbles; q in 0..31
 * q6_K: 128 B low nibbles (ql), 64 B high 2-bit pairs (qh), 16 int8 scales
 *       (16 groups of 16), f16 d; x = d*sc*(q-32), q in 0..63
 * activations for them: q8_K blocks of 256 (f32 d, int8 q, 16 int16 sums). */
#define RT_QKK 256
#define RT_Q4K_BYTES 144
#define RT_Q5K_BYTES 176
#define RT_Q6K_BYTES 210
static inline int rt_type_is_k(int t) { return t == RT_Q4_K || t == RT_Q5_K || t == RT_Q6_K; }
/* synthetic weights only: llama-quantize's Q4_K_M / Q5_K_M mixes (q6_K for the
 * output / tied embedding and for attn_v and ffn_down in the layers its
 * use_more_bits rule picks, q4_K / q5_K elsewhere) */
#define RT_MIX_Q4_K_M 1015
#define RT_MIX_Q5_K_M 1017

void *rt_alloc64(size_t bytes);
const char *rt_type_name(int type);
int rt_type_parse(const char *s);             /* -1 if unknown */
int rt_type_supported(int type);
size_t rt_row_bytes(int type, int cols);      /* 0 if cols not a multiple of 32 for q types */

uint16_t rt_f32_to_f16(float f);
float rt_f16_to_f32(uint16_t h);
void rt_quantize_row(int type, const float *x, void *dst, int n);
void rt_dequantize_row(int type, const void *src, float *y, int n);
void rt_k_scale_min(const uint8_t *sc, int j, int *d, int *m);   /* q4_K/q5_K sub-block j */
float rt_expf(float x);          /* accurate (~2 ulp) branch-free exp */
float rt_silu(float x);
void rt_silu_mul(float *g, const float *u, int n);   /* g = silu(g) * u */
float rt_sumsq(const float *x, int n);   /* sum x^2, one fixed order on every path */

/* A weight matrix [rows][cols] in one type, row-major, rows of row_bytes.
 * packed: q4_0 / q8_0 rows whose full groups of 16 blocks, or q4_K / q5_K /
 * q6_K bands of 16 whole rows, were rewritten by rt_model_pack into the order
 * the AVX-512 kernels read (see rt_kernels.c);
 * read single rows of any matrix with rt_mat_row_f32. */
typedef struct rt_mat {
    int type, rows, cols;
    size_t row_bytes;
    const uint8_t *data;
    int packed;
} rt_mat;
void rt_mat_row_f32(const rt_mat *m, int r, float *y);   /* row r dequantised */
int rt_mat_packable(const rt_mat *m);                     /* 1 if this build packs m */
int rt_mat_pack_rows(const rt_mat *m, int r0, int r1);    /* in place; data must be writable; -1: no memory */

/* Activations of T tokens x K: f32 source plus (lazily) q8 blocks:
 * qs int8 [T][K], d float [T][K/32], ds float [T][K/32] (= d * sum(qs)). */
typedef struct rt_act {
    int T, K;
    const float *x; size_t ldx;  /* f32 rows */
    int8_t *qs; float *d, *ds;   /* quantised copy (capacity set by owner) */
    uint8_t *gx;                 /* AVX-512 only, else NULL: per token, per group of
                                  * 16 blocks, RT_GX_BYTES: 512 B of quants with
                                  * dword j of block sigma(i) at [j][i], then
                                  * 16 f32 d and 16 int32 -sum(q) in sigma order */
    uint8_t *gx4;                /* AVX-512 VBMI q4_0 decode layout, else NULL: per
                                  * group, 4 x (64 B low halves, 64 B high halves of
                                  * 4 blocks), then d and -sum(q) in sigma4 order:
                                  * lane 4k + s holds block 4s + k */
    int quantised;
    int gx_too;                  /* with gx4: fill gx as well (packed weights read it) */
    /* q8_K copy for k-quant weights (capacity set by owner, NULL if none):
     * kq int8 [T][K], kd float [T][K/256], kbs int16 [T][K/16] (sums of 16) */
    int8_t *kq; float *kd; int16_t *kbs;
    int kquantised;
} rt_act;

void rt_act_quantize(rt_act *a, int t0, int t1);
void rt_act_quantize_k(rt_act *a, int t0, int t1);   /* ggml's quantize_row_q8_K_ref */
#define RT_GX_BYTES 640
extern const int rt_sigma16[16];   /* lane -> block of the AVX-512 transpose */

/* ---- thread pool ---------------------------------------------------------- */
typedef void (*rt_range_fn)(void *ctx, int begin, int end);
typedef struct rt_pool rt_pool;
rt_pool *rt_pool_create(int nthreads, const int *cpus, int ncpus, char *err, size_t errcap);
/* parallel loop over items [0, n) in ranges of `grain`, taken dynamically by
 * all threads (the caller too); returns when every item is done */
void rt_pool_for(rt_pool *p, int n, int grain, rt_range_fn fn, void *ctx);
int rt_pool_size(const rt_pool *p);
void rt_pool_destroy(rt_pool *p);
int rt_parse_cpulist(const char *s, int *out, int cap); /* count, -1 on error */

/* ---- matrix products -------------------------------------------------------
 * Y[t][r] = sum_k W[r][k] * X[t][k] for t < A->T, r < rows of every matrix in
 * the job; several matrices sharing one input run in one parallel dispatch. */
typedef struct rt_mm_item { const rt_mat *w; float *y; size_t ldy; } rt_mm_item;
void rt_matmul(rt_pool *pool, rt_act *a, const rt_mm_item *items, int n);
/* If set (variant logits --dump-act), rt_matmul appends every f32 input it
 * rounds to q8_0 blocks: int32 T, int32 K, then T rows of K f32 (host byte
 * order), so a test can round exactly these values in its reference and
 * compare everything else without activation-rounding near-ties. */
extern FILE *rt_act_trace;
/* single-thread kernel for rows [r0,r1) of one matrix, tokens [t0,t1) */
void rt_mm_rows(const rt_mat *w, const rt_act *a, int r0, int r1, int t0, int t1,
                float *y, size_t ldy);
void rt_scratch_free(void);   /* frees the calling thread's kernel scratch */
float *rt_thread_floats(size_t n);   /* per-thread buffer (attention scores) */
float rt_dot_f32(const float *a, const float *b, int n);
void rt_axpy_f32(float *y, const float *x, float s, int n); /* y += s*x */
/* attention over the KV cache: keys are stored in blocks of RT_KB positions,
 * transposed ([d][RT_KB]); values row by row ([pos][hd]).  Up to RT_AQ
 * queries (heads of one KV group, several tokens) share each load.
 * scores: out[i * ostride + j] = q_i . key j of the block, j < RT_KB;
 * values: out_i[d] = sum_{p<n} w[i * wstride + p] * v[p][d]. */
#define RT_KB 16
#define RT_AQ 8
void rt_attn_scores(const float *const *q, int nq, const void *kt, int kv_f16, int hd, float *out, size_t ostride);
void rt_attn_values(float *const *out, int nq, const float *w, size_t wstride, const void *v, int kv_f16, int n, int hd);
float rt_softmax_exp(float *s, int n, float mx);   /* s = exp(s - mx); returns the sum */

#ifndef RT_NO_MODEL
/* ---- model -------------------------------------------------------------- */
typedef struct rt_layer_w {
    const float *attn_norm, *ffn_norm;
    rt_mat in_proj, out_proj; const float *conv_w;      /* conv [H][L] */
    rt_mat wq, wk, wv, wo; const float *q_norm, *k_norm; /* gqa */
    rt_mat w1, w3, w2;                                   /* swiglu */
    rt_mat router; const float *exp_bias;                /* moe (f32) */
    rt_mat gate_exps, up_exps, down_exps;                /* [E*Fe][H], [E*H][Fe] */
} rt_layer_w;

typedef struct rt_model {
    rt_layer_w L[SHV_N_LAYERS];
    rt_mat embd, output;          /* output == embd when tied */
    const float *final_norm;
    /* RoPE as the file's architecture applies it (GGUF): rope_pairs rotates
     * consecutive pairs (x[2i], x[2i+1]), llama.cpp's "normal" RoPE of llama
     * files, whose converter permutes the q/k rows to match; 0 rotates
     * (x[i], x[i+hd/2]) (NEOX: lfm2, lfm2moe, qwen3, synthetic weights).
     * rope_freqs: the file's per-frequency divisors (llama3 scaling,
     * rope_freqs.weight, hd/2 values) or NULL: the genome's own formula. */
    int rope_pairs;
    const float *rope_freqs;
    uint64_t weight_bytes;
    void *allocs[24 * SHV_N_LAYERS + 64]; int n_allocs; /* owned buffers */
    void *map; size_t map_len;    /* GGUF mmap (NULL once every tensor has left it) */
    int packed;                   /* rt_model_pack ran: every packable matrix is packed */
    int ggml_q8;                  /* with packed: q8_0 matrices of full groups stay in ggml layout */
} rt_model;

int rt_model_synthetic(rt_model *m, rt_pool *pool, int wtype, uint64_t seed, char *err, size_t cap);
int rt_model_gguf(rt_model *m, const char *path, char *err, size_t cap);
int rt_model_export_gguf(const rt_model *m, const char *path, const char *tok_from, char *err, size_t cap);
void rt_model_free(rt_model *m);
/* Make the weights ready for the kernels: rewrite the q4_0 / q8_0 weights
 * and the q4_K / q5_K / q6_K bands of 16 rows into the kernels' order
 * (AVX-512 builds), and, where any tensor gets packed or transparent huge
 * pages are usable, move every matrix of a GGUF file out of the file
 * mapping into buffers of the model's own (2 MiB and more: on huge pages)
 * and unmap the file (it is never written).  After this the model cannot be
 * exported. */
int rt_model_pack(rt_model *m, rt_pool *pool, char *err, size_t cap);

/* block-kind timing buckets */
enum { RT_T_CONV, RT_T_ATTN, RT_T_SWIGLU, RT_T_MOE, RT_T_HEAD, RT_T_COUNT };

/* KV cache kinds (rt_state_create's kv_f16): f32; f16 with llama.cpp's CPU
 * convention (the query is rounded to f16 before q.k and the softmax weights
 * before they multiply V, as ggml's mul_mat with an f16 operand does); f16
 * with query and weights kept in f32 (about half llama.cpp's f16 noise) */
enum { RT_KV_F32 = 0, RT_KV_F16 = 1, RT_KV_F16_F32Q = 2, RT_KV_F16_FA = 3 };
/* RT_KV_F16_FA: f16 with llama.cpp's CPU flash-attention convention (its
 * default; online softmax, values accumulated in f16: rt_forward.c fa_query) */

typedef struct rt_state rt_state;
rt_state *rt_state_create(const rt_model *m, rt_pool *pool, int ctx_cap, int max_chunk,
                          int kv_f16, char *err, size_t cap);
void rt_state_free(rt_state *s);
void rt_state_reset(rt_state *s);
int rt_state_pos(const rt_state *s);
/* snapshot/restore position + conv states (KV beyond pos is simply overwritten) */
int rt_state_save(rt_state *s);
void rt_state_restore(rt_state *s);
uint64_t rt_state_kv_bytes(const rt_state *s);
uint64_t rt_state_conv_state_bytes(const rt_state *s);
double *rt_state_times(rt_state *s);   /* seconds per RT_T_* (accumulating) */
/* Run n tokens (n==1: decode path).  logits: NULL = no output head;
 * otherwise writes [n_out][V] where n_out = all ? n : 1 (last position). */
int rt_forward(rt_state *s, const int32_t *tokens, int n, float *logits, int all);
#endif /* RT_NO_MODEL */

double rt_now(void);

/* What the board was doing around one bench repetition (rt_probe.c): read
 * before and after it, printed as the difference (docs/interfaces.md). */
typedef struct rt_sysstate {
    double wall_s;
    double run_delay_s;   /* time this process's threads waited for a CPU, -1 unknown */
    double self_cpu_s;    /* this process's CPU time, -1 unknown */
    double busy_s;        /* CPU time of every process (/proc/stat), -1 unknown */
    int procs_running;    /* run queue, -1 unknown */
    double load1;         /* 1-minute load average, -1 unknown */
    long long freq_khz;   /* lowest current frequency of the CPUs used, -1 unknown */
    long long temp_mc;    /* hottest thermal zone, -1000000 unknown */
    double steal_s;       /* steal time of the CPUs used (summed), -1 unknown */
    int steal_cpus;       /* how many CPUs steal_s covers */
} rt_sysstate;
void rt_sysstate_read(rt_sysstate *s, const int *cpus, int ncpus);
void rt_sysstate_print(FILE *f, const rt_sysstate *a, const rt_sysstate *b);

/* The CPU's name from /proc/cpuinfo (rt_probe.c; the probe's "model" and the
 * bench's cpu.model): "model name" (x86) or "Hardware", else the last "CPU
 * part" (ARM boards without either), else "unknown". */
void rt_cpu_model(char *buf, size_t cap);

#endif
