/* rt_kernels.c - matrix-product kernels of the runtime for each SIMD path
 * (AVX-512+VNNI, AVX2/FMA, NEON with/without dotprod, scalar) and the parallel
 * driver that hands out chunks of rows to the thread pool.
 *
 * Weights f32/f16 multiply f32 activations with FMA (f16 prefill of 16+
 * tokens on AVX-512 and AVX2: the transposed product over f32 row panels,
 * see mm_f16_prefill).  Weights q8_0/q4_0 (ggml
 * blocks, used in place) multiply activations quantised to q8_0 blocks the way
 * ggml quantises them (quants from the f32 scale, the scale kept as fp16, see
 * rt_quant.c) with integer dot products, as ggml's vec_dot_q8_0_q8_0 /
 * vec_dot_q4_0_q8_0 do:  y = sum_b dw_b * da_b * sum_i w_bi * a_bi.
 *
 * AVX-512 (VNNI): groups of 16 blocks.  The 16 weight blocks are unpacked to
 * unsigned bytes (q4_0: raw nibbles = w + 8; q8_0: w ^ 0x80 = w + 128) and
 * transposed so that lane i of vector j holds dword j of block sigma(i); the
 * activations are stored in the same interleaved order (rt_act.gx), so eight
 * vpdpbusd give sixteen complete block sums, started at -off * sum(a) to make
 * them exact signed sums; then one convert and one FMA with dw*da per group.
 * Prefill transposes a block of 16 rows once per 64 tokens and streams tiles
 * of 8 (or 4) tokens against it.  q4_0 and q8_0 weights are repacked once
 * at load (rt_model_pack) into that transposed order, so prefill and decode
 * read them without any transposing, and decode gives the same bits as
 * prefill.  Decode of packed weights prefetches (L2) 4 KiB ahead in the
 * stream (8 KiB until the batched row sums below; 4 KiB was then faster on
 * Zen 5, 1 thread, for q4_0 and q8_0): GGUF weights are read in place from
 * the file mapping, on 4 KiB
 * pages, where the hardware prefetchers stop; without it q8_0 in the ggml
 * layout streamed from such pages at about 0.7 of its rate from huge pages
 * (the earlier finding that packed q8_0 streamed 15% slower was measured on
 * huge pages, where the permute kernel's lack of prefetch cost nothing).
 * Unpacked q8_0 (no packing run, e.g. dev/mmbench) decodes with AVX512-VBMI
 * byte permutes (two vpermt2b per 4 blocks, first and last 16 quants)
 * against the activation halves of rt_act.gx4.
 * Decode sums 16 rows (f16: 8) in one transposed reduction (reduce_tree)
 * that keeps _mm512_reduce_add_ps's order, so the bits are those of one
 * horizontal sum per row.
 * Blocks past the last full group use a
 * two-block loop.  AVX2 (vpmaddubsw; q4_0 raw nibbles with the -8 offset
 * taken off in f32, q8_0 by the sign trick, exact): decode runs 4 rows at
 * once (rows4_q: the activation loads shared, 4 FMA chains side by side,
 * software prefetch 4 KiB ahead in the stream), q4_0 with two blocks per
 * vector (rows4_q4p); prefill of 8 tokens or more turns bands of 8 rows
 * once per call into vectors with the rows in the lanes and streams tiles
 * of 4 tokens past them (mm_q_avx2_bands).  NEON: sdot (or vmull) on signed
 * values.  Integer parts are exact on every path; only the f32 summation order
 * differs, plus, rarely, an activation landing on the other side of a q8
 * rounding boundary because its input differed in the last bits.
 *
 * Tolerances, measured by dev/check_paths.sh (logits of the last position,
 * max |diff| / max |logit|, each build against the scalar build, for prefill
 * and for token-by-token decode; builds: -march=native (AVX-512 VNNI+VBMI),
 * AVX2, clang, aarch64 NEON dotprod and plain NEON under qemu):
 *   f32 / f16 weights:  measured <= 1.2e-6;           guaranteed < 1e-5
 *                       (f16 panel prefill, LFM2-350M shapes, 32 tokens,
 *                       against the scalar build: AVX-512 9.8e-7 when
 *                       added; with the AVX2 panels, AVX2 9.0e-7 and
 *                       AVX-512 9.1e-7)
 *   q8_0 / q4_0:        measured <= 8e-3 (LFM2-350M shapes, 16 layers),
 *                       <= 1e-3 (small genome with MoE layers),
 *                       <= 2e-5 (tiny 4-layer genome); guaranteed < 2e-2
 *   prefill vs decode on one build: identical except f16 on AVX-512 and
 *   on AVX2 (prefill of 16+ tokens in panels), unpacked q8_0 on AVX-512
 *   VBMI, and q4_0 / q8_0 on AVX2 (prefill of 8+ tokens in row bands,
 *   decode by rows): their kernels sum in another order, within the same
 *   bounds
 *   (tests: parity of both modes against the reference, 1e-3).
 *   Versus the numpy reference (dev/ref.py: f64 math, dequantised weights,
 *   unquantised activations): f32 ~1e-7, q8_0 / q4_0 ~1e-3 .. 5e-3; against
 *   tests/reference/lfm2_ref.py rounding activations as ggml does (fp16 block
 *   scales) from the variant's own f32 rows (--dump-act / --act-from):
 *   ~1e-7 .. 4e-7 (test_parity_dense_q*, test_parity_wide_rows).  Rounding
 *   its float64 rows instead, the reference sometimes meets a value within
 *   f32 noise of a boundary (x/d near k + 1/2, or amax/127 midway between two
 *   fp16 values: about one per 8-token run of the 576-wide test genome), and
 *   one such flip alone moves later logits by ~5e-3.
 *   Tiny genome (dev/check_paths.sh tiny, fp16 activation scales): q8_0 /
 *   q4_0 AVX-512 and AVX2 vs scalar <= 6e-8, prefill and decode (AVX2 with
 *   the band / 4-row kernels, on an AVX2-only EPYC: 3.1e-8 / 2.3e-8).
 *   Effect of the weight type itself (same seed, synthetic weights): q8_0 vs
 *   f32 ~1e-2, q4_0 vs f32 ~1e-1 of the largest logit.
 */
#include <assert.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#define RT_NO_MODEL   /* the same object for every genome (rt.h) */
#include "rt.h"

#define TR 4     /* rows per tile   */
#define TT 4     /* tokens per tile */
#define TB 64    /* tokens per block */

/* Software prefetch distance (L2) of the AVX2 decode kernels: rows of a
 * decode range are contiguous, so this runs ahead in the stream of the
 * range, across the 4 KiB page boundaries of a GGUF mapping where the
 * hardware prefetchers stop. */
#ifndef AVX2_PF
#define AVX2_PF 4096
#endif

static inline float ld_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
#if defined(RT_SIMD_AVX512) || defined(RT_SIMD_AVX2)
    return _cvtsh_ss(h);
#else
    return rt_f16_to_f32(h);
#endif
}

/* per-thread scratch for expanded weight scales */
static _Thread_local float *tl_buf;
static _Thread_local size_t tl_cap;

static _Thread_local float *tl_buf2;
static _Thread_local size_t tl_cap2;

static _Thread_local float *tl_buf3;   /* k-quant row blocks (AVX-512 prefill) */
static _Thread_local size_t tl_cap3;

void rt_scratch_free(void)
{
    free(tl_buf);
    tl_buf = NULL;
    tl_cap = 0;
    free(tl_buf2);
    tl_buf2 = NULL;
    tl_cap2 = 0;
    free(tl_buf3);
    tl_buf3 = NULL;
    tl_cap3 = 0;
}

float *rt_thread_floats(size_t n)
{
    if (n > tl_cap2) {
        free(tl_buf2);
        tl_buf2 = rt_alloc64(n * sizeof(float));
        tl_cap2 = tl_buf2 ? n : 0;
    }
    return tl_buf2;
}

static float *scratch(size_t n)
{
    if (n > tl_cap) {
        free(tl_buf);
        tl_buf = rt_alloc64(n * sizeof(float));
        tl_cap = tl_buf ? n : 0;
    }
    return tl_buf;
}

/* ---------------------------------------------------------------------- */
/* f32 helpers                                                              */

float rt_dot_f32(const float *a, const float *b, int n)
{
    int i = 0;
    float s = 0.0f;
#if defined(RT_SIMD_AVX512)
    __m512 acc = _mm512_setzero_ps();
    for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
    s = _mm512_reduce_add_ps(acc);
#elif defined(RT_SIMD_AVX2)
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    s = _mm_cvtss_f32(h);
#elif defined(RT_SIMD_NEON)
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (; i + 4 <= n; i += 4) acc = vfmaq_f32(acc, vld1q_f32(a + i), vld1q_f32(b + i));
    s = vaddvq_f32(acc);
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

void rt_axpy_f32(float *y, const float *x, float s, int n)
{
    int i = 0;
#if defined(RT_SIMD_AVX512)
    __m512 vs = _mm512_set1_ps(s);
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(_mm512_loadu_ps(x + i), vs, _mm512_loadu_ps(y + i)));
#elif defined(RT_SIMD_AVX2)
    __m256 vs = _mm256_set1_ps(s);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), vs, _mm256_loadu_ps(y + i)));
#elif defined(RT_SIMD_NEON)
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), s));
#endif
    for (; i < n; i++) y[i] += s * x[i];
}

/* ---------------------------------------------------------------------- */
/* float weights (f32 / f16) x f32 activations                              */

#if defined(RT_SIMD_AVX512)
#define FV 16
typedef __m512 fvec;
static inline fvec fv_zero(void) { return _mm512_setzero_ps(); }
static inline fvec fv_ld(const float *p) { return _mm512_loadu_ps(p); }
static inline fvec fv_ldw(const uint8_t *row, int k, int type)
{
    if (type == RT_F32) return _mm512_loadu_ps((const float *)(const void *)row + k);
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(row + 2 * (size_t)k)));
}
static inline fvec fv_fma(fvec a, fvec b, fvec c) { return _mm512_fmadd_ps(a, b, c); }
static inline float fv_sum(fvec a) { return _mm512_reduce_add_ps(a); }
#elif defined(RT_SIMD_AVX2)
#define FV 8
typedef __m256 fvec;
static inline fvec fv_zero(void) { return _mm256_setzero_ps(); }
static inline fvec fv_ld(const float *p) { return _mm256_loadu_ps(p); }
static inline fvec fv_ldw(const uint8_t *row, int k, int type)
{
    if (type == RT_F32) return _mm256_loadu_ps((const float *)(const void *)row + k);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(row + 2 * (size_t)k)));
}
static inline fvec fv_fma(fvec a, fvec b, fvec c) { return _mm256_fmadd_ps(a, b, c); }
static inline float fv_sum(fvec a)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}
#elif defined(RT_SIMD_NEON)
#define FV 4
typedef float32x4_t fvec;
static inline fvec fv_zero(void) { return vdupq_n_f32(0.0f); }
static inline fvec fv_ld(const float *p) { return vld1q_f32(p); }
static inline fvec fv_ldw(const uint8_t *row, int k, int type)
{
    if (type == RT_F32) return vld1q_f32((const float *)(const void *)row + k);
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(const void *)(row + 2 * (size_t)k))));
}
static inline fvec fv_fma(fvec a, fvec b, fvec c) { return vfmaq_f32(c, a, b); }
static inline float fv_sum(fvec a) { return vaddvq_f32(a); }
#else
#define FV 1
typedef float fvec;
static inline fvec fv_zero(void) { return 0.0f; }
static inline fvec fv_ld(const float *p) { return *p; }
static inline fvec fv_ldw(const uint8_t *row, int k, int type)
{
    if (type == RT_F32) { float f; memcpy(&f, row + 4 * (size_t)k, 4); return f; }
    return ld_f16(row + 2 * (size_t)k);
}
static inline fvec fv_fma(fvec a, fvec b, fvec c) { return c + a * b; }
static inline float fv_sum(fvec a) { return a; }
#endif

static inline fvec fv_set1(float x)
{
#if FV == 1
    return x;
#elif defined(RT_SIMD_AVX512)
    return _mm512_set1_ps(x);
#elif defined(RT_SIMD_AVX2)
    return _mm256_set1_ps(x);
#else
    return vdupq_n_f32(x);
#endif
}

static inline void fv_st(float *p, fvec v)
{
#if FV == 1
    *p = v;
#elif defined(RT_SIMD_AVX512)
    _mm512_storeu_ps(p, v);
#elif defined(RT_SIMD_AVX2)
    _mm256_storeu_ps(p, v);
#else
    vst1q_f32(p, v);
#endif
}

static inline float w_scalar(const uint8_t *row, int k, int type)
{
    if (type == RT_F32) { float f; memcpy(&f, row + 4 * (size_t)k, 4); return f; }
    return ld_f16(row + 2 * (size_t)k);
}

/* A tile of R rows x T tokens of f32/f16 weights against f32 activations
 * (nr <= R, nt <= T): per (row, token) one FMA chain over the vectors, its
 * horizontal sum and the scalar tail, so every tile shape gives the same bits. */
#define DEFINE_TILE_FLOAT(NAME, R, T, ATTR)                                                            \
    static inline ATTR void NAME(const rt_mat *w, const rt_act *a, int r, int nr, int t, int nt,      \
                                 float *y, size_t ldy, int type)                                      \
    {                                                                                                  \
        fvec acc[R][T];                                                                                \
        const uint8_t *rows[R];                                                                        \
        const float *xs[T];                                                                            \
        int K = w->cols, kv = K / FV * FV;                                                             \
        for (int i = 0; i < nr; i++) rows[i] = w->data + (size_t)(r + i) * w->row_bytes;             \
        for (int j = 0; j < nt; j++) xs[j] = a->x + (size_t)(t + j) * a->ldx;                         \
        for (int i = 0; i < nr; i++)                                                                   \
            for (int j = 0; j < nt; j++) acc[i][j] = fv_zero();                                        \
        for (int k = 0; k < kv; k += FV) {                                                             \
            fvec wv[R];                                                                                \
            for (int i = 0; i < nr; i++) wv[i] = fv_ldw(rows[i], k, type);                             \
            for (int j = 0; j < nt; j++) {                                                             \
                fvec xv = fv_ld(xs[j] + k);                                                            \
                for (int i = 0; i < nr; i++) acc[i][j] = fv_fma(wv[i], xv, acc[i][j]);                 \
            }                                                                                          \
        }                                                                                              \
        for (int i = 0; i < nr; i++)                                                                   \
            for (int j = 0; j < nt; j++) {                                                             \
                float s = fv_sum(acc[i][j]);                                                           \
                for (int k = kv; k < K; k++) s += w_scalar(rows[i], k, type) * xs[j][k];               \
                y[(size_t)(t + j) * ldy + r + i] = s;                                                  \
            }                                                                                          \
    }

DEFINE_TILE_FLOAT(tile_float, TR, TT, )

#if defined(RT_SIMD_AVX512)
/* The horizontal sums of n = 16 (or 8: lanes 0-7) vectors at once: lane i of the result is
 * v[i] summed in the order of _mm512_reduce_add_ps (GCC's and clang's
 * halving tree: lanes i + i+8, then i + i+4, i + i+2, i + i+1), so the
 * same bits as 16 separate reductions, in 15 adds and 31 shuffles instead of
 * 64 adds and shuffles.  On short rows (K = 1024: 2 groups of q8_0) the
 * separate reductions were a large part of the decode work, and the kernel
 * streamed from DRAM at 0.76 of a plain read on one core; with these (and
 * PACKED_PF 4096) 0.91 (dev A/B, Zen 5, shared machine). */
static inline __m512 reduce_tree(const __m512 *v, int n)
{
    __m512 b[8], c[4], d[2];
    for (int k = 0; k < n / 2; k++)   /* 128-bit lanes: v2k low half sums, v2k+1 low half sums */
        b[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int k = 0; k < n / 4; k++)   /* 128-bit lane j: quarter sums of vector 4k + j */
        c[k] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * k], b[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(b[2 * k], b[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    for (int k = 0; k < n / 8; k++)   /* 128-bit lane j: the two eighth sums of vectors 8k + j, 8k + 4 + j */
        d[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(c[2 * k]), _mm512_castps_pd(c[2 * k + 1]))),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(c[2 * k]), _mm512_castps_pd(c[2 * k + 1]))));
    if (n == 8) d[1] = d[0];
    /* lane 4j + m of e: vector 4m + j (n = 8: lanes 4j + 2, 4j + 3 repeat) */
    __m512 e = _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), e);
}

/* f16 decode (one token): 8 rows at a time, two accumulators each (16
 * independent FMA chains hide the conversion and FMA latency).  Each 64-byte
 * step also prefetches into L2 the same offset of the 8 rows after these,
 * when they are in the range (pf_next), so the stream runs one block ahead
 * across 4 KiB page boundaries, where the hardware prefetchers stop (GGUF
 * weights are used in place from the file mapping, on 4 KiB pages); the last
 * block prefetches F16_PF bytes ahead in its own rows instead.  The sums are
 * split differently from tile_float's, so f16 decode may differ from f16
 * prefill in the last bits (within the f32/f16 bound of the header). */
#define F16_PF 2048
#define F16_PFB 1   /* blocks of 8 rows ahead (2 was no better) */
static void mv_f16_8(const rt_mat *w, const float *x, int r, float *y, int pf_next)
{
    int K = w->cols, kv = K / 32 * 32;
    const uint8_t *rows[8];
    __m512 a0[8], a1[8];
    for (int i = 0; i < 8; i++) {
        rows[i] = w->data + (size_t)(r + i) * w->row_bytes;
        a0[i] = _mm512_setzero_ps();
        a1[i] = _mm512_setzero_ps();
    }
    for (int k = 0; k < kv; k += 32) {
        __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
        if (pf_next)
            for (int i = 0; i < 8; i++) _mm_prefetch((const char *)(rows[i] + F16_PFB * 8 * w->row_bytes + 2 * (size_t)k), _MM_HINT_T1);
        else if (2 * (size_t)k + F16_PF < w->row_bytes)
            for (int i = 0; i < 8; i++) _mm_prefetch((const char *)(rows[i] + 2 * (size_t)k + F16_PF), _MM_HINT_T1);
        for (int i = 0; i < 8; i++) {
            __m512i h = _mm512_loadu_si512((const void *)(rows[i] + 2 * (size_t)k));
            a0[i] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(h)), x0, a0[i]);
            a1[i] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)), x1, a1[i]);
        }
    }
    __m512 v[8];
    for (int i = 0; i < 8; i++) v[i] = _mm512_add_ps(a0[i], a1[i]);
    if (kv == K) {
        _mm256_storeu_ps(y + r, _mm512_castps512_ps256(reduce_tree(v, 8)));
        return;
    }
    for (int i = 0; i < 8; i++) {
        float s = _mm512_reduce_add_ps(v[i]);
        for (int k = kv; k < K; k++) s += ld_f16(rows[i] + 2 * (size_t)k) * x[k];
        y[r + i] = s;
    }
}

/* 16 x 16 transpose: r[i][j] -> r[j][i] */
static inline void fp_tr16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) {   /* u[4g + c], 128-bit lane L: rows 4g..4g+3 of column 4L + c */
        u[4 * g] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44), v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        r[8 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
}
#endif

#if defined(RT_SIMD_AVX2)
/* AVX2 prefill tiles of 2 rows x 6 tokens (f32 weights; f16 of 6 to 15
 * tokens, 16+ go to mm_f16_prefill's panels): 12 accumulators, 2 weight
 * vectors and 1 activation vector fit the 16 ymm registers (tile_float's
 * 4 x 4 needs 21 and spills on AVX2); per (row, token) the same FMA chain,
 * horizontal sum and tail as tile_float, so the same bits. */
#define FT_R 2
#define FT_T 6
DEFINE_TILE_FLOAT(tile_float26, FT_R, FT_T, __attribute__((always_inline)))

/* AVX2 decode of f16 / f32 rows, 8 at once: 8 FMA chains side by side
 * (tile_float's 4 leave the FMA latency exposed), each row's chain, sum and
 * tail those of tile_float (so the same bits as prefill, except f16
 * prefill of 16+ tokens: mm_f16_prefill), and the 8 rows' bytes prefetched
 * AVX2_PF ahead in the stream. */
static inline __attribute__((always_inline)) void mv_float8(const rt_mat *w, const float *x, int r, float *y, const int type)
{
    const int K = w->cols, kv = K / 8 * 8;
    const size_t es = type == RT_F32 ? 4 : 2, rb = w->row_bytes;
    const uint8_t *row0 = w->data + (size_t)r * rb;
    __m256 acc[8];
    for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
    const uint8_t *pf = row0 + AVX2_PF;
    for (int k = 0; k < kv; k += 8) {
        /* 8 rows x 8 elements: 8 * 8 * es bytes of the group per step */
        for (size_t o = 0; o < 8 * 8 * es; o += 64) _mm_prefetch((const char *)(pf + o), _MM_HINT_T1);
        pf += 8 * 8 * es;
        const __m256 xv = _mm256_loadu_ps(x + k);
        for (int i = 0; i < 8; i++) acc[i] = _mm256_fmadd_ps(fv_ldw(row0 + (size_t)i * rb, k, type), xv, acc[i]);
    }
    for (int i = 0; i < 8; i++) {
        float s = fv_sum(acc[i]);
        for (int k = kv; k < K; k++) s += w_scalar(row0 + (size_t)i * rb, k, type) * x[k];
        y[r + i] = s;
    }
}

static void mm_float_avx2(const rt_mat *w, const rt_act *a, int r0, int r1, int t0, int t1, float *y, size_t ldy)
{
    for (int tb = t0; tb < t1; tb += TB) {
        int te = tb + TB < t1 ? tb + TB : t1;
        for (int r = r0; r < r1; r += FT_R) {
            int nr = r1 - r < FT_R ? r1 - r : FT_R;
            for (int t = tb; t < te; t += FT_T) {
                int nt = te - t < FT_T ? te - t : FT_T;
                if (nr == FT_R && nt == FT_T) {
                    if (w->type == RT_F32) tile_float26(w, a, r, FT_R, t, FT_T, y, ldy, RT_F32);
                    else tile_float26(w, a, r, FT_R, t, FT_T, y, ldy, RT_F16);
                } else {
                    tile_float26(w, a, r, nr, t, nt, y, ldy, w->type);
                }
            }
        }
    }
}
#endif

#if defined(RT_SIMD_AVX512) || defined(RT_SIMD_AVX2)
/* f16 prefill (16 tokens or more; AVX-512 and AVX2): the transposed
 * product, vectors over output rows.  A panel of up to FP_MR rows x FP_KC
 * columns is converted to f32 once, in strips of FP_SR = FP_NV vectors of
 * rows, each strip column by column (strip[k][row]), and every tile of
 * FP_NT tokens x one strip runs against it: per k, FP_NV loads of the
 * strip, FP_NT broadcasts of the tokens' activations (read in place) and
 * FP_NV * FP_NT FMA, the accumulators in registers, no horizontal sums, and
 * the results are rows of y already (y[t][r]).
 *   AVX-512: one strip of 48 rows per panel (3 vectors x 8 tokens, 24
 *   accumulators), FP_KC 1152: the panel (<= 216 KiB) stays in L2.
 *   AVX2: strips of 16 rows (2 vectors x 6 tokens, 12 accumulators: with 2
 *   weight vectors and 1 broadcast, 15 of the 16 ymm registers), FP_MR 96
 *   rows, FP_KC 512 (panel 192 KiB, in L2); the tokens' tile (6 x 512 floats,
 *   12 KiB) stays in L1 while the 6 strips of the panel stream past it.
 * Each weight is converted once per call instead of once per tile of tokens.
 * Every output is one FMA chain in k order (a K split only stores and
 * reloads the running sum), so it equals the one-chain sum of the scalar
 * order up to FMA's single rounding: within the f32/f16 bound of the
 * header. */
#if defined(RT_SIMD_AVX512)
#define FP_NV 3
#define FP_NT 8
#define FP_MR 48
#define FP_KC 1152
typedef __mmask16 fp_mask;   /* the rows of the last vector of a strip */
static inline fp_mask fp_mask_of(int n) { return (__mmask16)(n % 16 ? (1u << (n % 16)) - 1 : 0xffffu); }
static inline fvec fp_ldm(const float *p, fp_mask m) { return _mm512_maskz_loadu_ps(m, p); }
static inline void fp_stm(float *p, fp_mask m, fvec v) { _mm512_mask_storeu_ps(p, m, v); }
static inline fvec fp_bc(const float *p) { return _mm512_set1_ps(*p); }
static inline fvec fp_cvt(const uint8_t *h) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)h)); }
static inline void fp_tr(fvec r[FV]) { fp_tr16(r); }
#else
#define FP_NV 2
#define FP_NT 6
#define FP_MR 96
#define FP_KC 512
typedef __m256i fp_mask;
static inline fp_mask fp_mask_of(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n % 8 ? n % 8 : 8), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline fvec fp_ldm(const float *p, fp_mask m) { return _mm256_maskload_ps(p, m); }
static inline void fp_stm(float *p, fp_mask m, fvec v) { _mm256_maskstore_ps(p, m, v); }
static inline fvec fp_bc(const float *p) { return _mm256_broadcast_ss(p); }
static inline fvec fp_cvt(const uint8_t *h) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)h)); }
/* 8 x 8 transpose: r[i][j] -> r[j][i] */
static inline void fp_tr(fvec r[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 2; g++) {   /* u[4g + c], 128-bit lane L: rows 4g..4g+3 of column 4L + c */
        u[4 * g] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}
#endif
#define FP_SR (FP_NV * FV)   /* rows per strip */

/* tile: nt tokens x nv vectors of one strip (sw = 16 * nv floats per k) */
static inline __attribute__((always_inline)) void fp_tile(const float *pan, const int nv, int kc,
                                                          const float *const *xs, const int nt, int first,
                                                          float *y, size_t ldy, fp_mask last)
{
    const fp_mask full = fp_mask_of(0);
    fvec acc[FP_NV][FP_NT];
    for (int j = 0; j < nt; j++)
        for (int v = 0; v < nv; v++)
            acc[v][j] = first ? fv_zero() : fp_ldm(y + (size_t)j * ldy + FV * v, v == nv - 1 ? last : full);
    for (int k = 0; k < kc; k++) {
        fvec wv[FP_NV];
        for (int v = 0; v < nv; v++) wv[v] = fv_ld(pan + (size_t)k * (FV * nv) + FV * v);
        for (int j = 0; j < nt; j++) {
            fvec b = fp_bc(xs[j] + k);
            for (int v = 0; v < nv; v++) acc[v][j] = fv_fma(wv[v], b, acc[v][j]);
        }
    }
    for (int j = 0; j < nt; j++)
        for (int v = 0; v < nv; v++) fp_stm(y + (size_t)j * ldy + FV * v, v == nv - 1 ? last : full, acc[v][j]);
}

/* rows [r, r+nr) (nr <= FP_MR), columns [k0, k0+kc) -> strips of FP_SR rows
 * (the last one nv vectors wide, rows rounded up to whole vectors with
 * zeros), strip s at pan + s * FP_SR * kc, element [k][i]; FV x FV blocks
 * converted and transposed in registers */
static void fp_pack(const rt_mat *w, int r, int nr, int k0, int kc, float *pan)
{
    const int st = (nr + FV - 1) / FV * FV, kv = kc / FV * FV, ns = (st + FP_SR - 1) / FP_SR;
    for (int g = 0; g < st; g += FV) {
        const uint8_t *rows[FV];
        const int s = g / FP_SR, sw = s < ns - 1 ? FP_SR : st - s * FP_SR;
        float *sp = pan + (size_t)s * FP_SR * kc + g % FP_SR;
        int n = nr - g < FV ? nr - g : FV;
        for (int i = 0; i < FV; i++)
            rows[i] = i < n ? w->data + (size_t)(r + g + i) * w->row_bytes + 2 * (size_t)k0 : NULL;
        for (int k = 0; k < kv; k += FV) {
            fvec b[FV];
            for (int i = 0; i < FV; i++) b[i] = rows[i] ? fp_cvt(rows[i] + 2 * (size_t)k) : fv_zero();
            fp_tr(b);
            for (int u = 0; u < FV; u++) fv_st(sp + (size_t)(k + u) * sw, b[u]);
        }
        for (int k = kv; k < kc; k++)
            for (int i = 0; i < FV; i++) sp[(size_t)k * sw + i] = rows[i] ? ld_f16(rows[i] + 2 * (size_t)k) : 0.0f;
    }
}

/* one tile of nt tokens against every strip of a panel of ns strips, the
 * last nvl vectors wide */
static inline __attribute__((always_inline)) void fp_strips(const float *pan, int ns, int nvl, int kc,
                                                            const float *const *xs, const int nt, int first,
                                                            float *y, size_t ldy, fp_mask last)
{
#if FP_MR > FP_SR   /* (AVX-512: one strip per panel, no loop to keep registers for) */
    const fp_mask full = fp_mask_of(0);
    for (int s = 0; s < ns - 1; s++)
        fp_tile(pan + (size_t)s * FP_SR * kc, FP_NV, kc, xs, nt, first, y + (size_t)s * FP_SR, ldy, full);
    pan += (size_t)(ns - 1) * FP_SR * kc;
    y += (size_t)(ns - 1) * FP_SR;
#else
    (void)ns;
#endif
    switch (nvl) {
#if FP_NV > 2
    case 3: fp_tile(pan, 3, kc, xs, nt, first, y, ldy, last); break;
#endif
    case 2: fp_tile(pan, 2, kc, xs, nt, first, y, ldy, last); break;
    default: fp_tile(pan, 1, kc, xs, nt, first, y, ldy, last); break;
    }
}

static void fp_tiles(const float *pan, int ns, int nvl, int kc, const rt_act *a, int k0, int t0, int t1,
                     int first, float *y, size_t ldy, int r, fp_mask last)
{
    const float *xs[FP_NT];
    int t = t0;
    for (; t + FP_NT <= t1; t += FP_NT) {
        for (int j = 0; j < FP_NT; j++) xs[j] = a->x + (size_t)(t + j) * a->ldx + k0;
        fp_strips(pan, ns, nvl, kc, xs, FP_NT, first, y + (size_t)t * ldy + r, ldy, last);
    }
    int nt = t1 - t;
    for (int j = 0; j < nt; j++) xs[j] = a->x + (size_t)(t + j) * a->ldx + k0;
    y += (size_t)t * ldy + r;
    switch (nt) {
    case 1: fp_strips(pan, ns, nvl, kc, xs, 1, first, y, ldy, last); break;
    case 2: fp_strips(pan, ns, nvl, kc, xs, 2, first, y, ldy, last); break;
    case 3: fp_strips(pan, ns, nvl, kc, xs, 3, first, y, ldy, last); break;
    case 4: fp_strips(pan, ns, nvl, kc, xs, 4, first, y, ldy, last); break;
    case 5: fp_strips(pan, ns, nvl, kc, xs, 5, first, y, ldy, last); break;
#if FP_NT > 6
    case 6: fp_strips(pan, ns, nvl, kc, xs, 6, first, y, ldy, last); break;
    case 7: fp_strips(pan, ns, nvl, kc, xs, 7, first, y, ldy, last); break;
#endif
    default: break;
    }
}

static void mm_f16_prefill(const rt_mat *w, const rt_act *a, int r0, int r1, int t0, int t1,
                           float *y, size_t ldy)
{
    const int K = w->cols, nkc = (K + FP_KC - 1) / FP_KC;
    const int kcs = (K + nkc - 1) / nkc;
    float *pan = scratch((size_t)FP_MR * kcs);
    for (int r = r0; r < r1; r += FP_MR) {
        int nr = r1 - r < FP_MR ? r1 - r : FP_MR, nv = (nr + FV - 1) / FV;
        int ns = (nv + FP_NV - 1) / FP_NV, nvl = nv - (ns - 1) * FP_NV;
        fp_mask last = fp_mask_of(nr);
        for (int k0 = 0; k0 < K; k0 += kcs) {
            int kc = K - k0 < kcs ? K - k0 : kcs;
            fp_pack(w, r, nr, k0, kc, pan);
            fp_tiles(pan, ns, nvl, kc, a, k0, t0, t1, k0 == 0, y, ldy, r, last);
        }
    }
}
#endif

static void mm_float(const rt_mat *w, const rt_act *a, int r0, int r1, int t0, int t1,
                     float *y, size_t ldy)
{
#if defined(RT_SIMD_AVX512)
    if (w->type == RT_F16 && t1 - t0 == 1) {
        int r = r0;
        for (; r + 8 <= r1; r += 8) mv_f16_8(w, a->x + (size_t)t0 * a->ldx, r, y + (size_t)t0 * ldy, r + 8 + 8 * F16_PFB <= r1);
        for (; r < r1; r += TR) tile_float(w, a, r, r1 - r < TR ? r1 - r : TR, t0, 1, y, ldy, RT_F16);
        return;
    }
#endif
#if defined(RT_SIMD_AVX512) || defined(RT_SIMD_AVX2)
    if (w->type == RT_F16 && t1 - t0 >= 16) {
        mm_f16_prefill(w, a, r0, r1, t0, t1, y, ldy);
        return;
    }
#endif
#if defined(RT_SIMD_AVX2)
    if (t1 - t0 >= 6) { mm_float_avx2(w, a, r0, r1, t0, t1, y, ldy); return; }
    if (t1 - t0 == 1) {
        const float *x = a->x + (size_t)t0 * a->ldx;
        float *yt = y + (size_t)t0 * ldy;
        for (; r0 + 8 <= r1; r0 += 8) {
            if (w->type == RT_F16) mv_float8(w, x, r0, yt, RT_F16);
            else mv_float8(w, x, r0, yt, RT_F32);
        }
        if (r0 >= r1) return;
    }
#endif
    for (int tb = t0; tb < t1; tb += TB) {
        int te = tb + TB < t1 ? tb + TB : t1;
        for (int r = r0; r < r1; r += TR) {
            int nr = r1 - r < TR ? r1 - r : TR;
            for (int t = tb; t < te; t += TT) {
                int nt = te - t < TT ? te - t : TT;
                if (nr == TR && nt == TT) {
                    if (w->type == RT_F32) tile_float(w, a, r, TR, t, TT, y, ldy, RT_F32);
                    else tile_float(w, a, r, TR, t, TT, y, ldy, RT_F16);
                } else if (nt == 1 && nr == TR) {
                    if (w->type == RT_F32) tile_float(w, a, r, TR, t, 1, y, ldy, RT_F32);
                    else tile_float(w, a, r, TR, t, 1, y, ldy, RT_F16);
                } else {
                    tile_float(w, a, r, nr, t, nt, y, ldy, w->type);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------- */
/* quantised weights x q8 activations                                       */

/* weight scales of rows [r, r+nr) as f32: dwf[i*nb + b] */
static void row_scales(const rt_mat *w, int r, int nr, float *dwf)
{
    int nb = w->cols / RT_QK;
    size_t bb = w->type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    for (int i = 0; i < nr; i++) {
        const uint8_t *row = w->data + (size_t)(r + i) * w->row_bytes;
        for (int b = 0; b < nb; b++) dwf[(size_t)i * nb + b] = ld_f16(row + b * bb);
    }
}

#if defined(RT_SIMD_AVX512)

/* Two blocks as 64 unsigned bytes in natural element order: q4_0 raw nibbles
 * (offset 8), q8_0 as w ^ 0x80 (offset 128). */
static inline __m512i q4_pair(const uint8_t *b0)
{
    __m256i lo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(b0 + 2)));
    __m256i hi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(b0 + 2 + RT_Q4_BYTES)));
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    z = _mm512_mask_srli_epi16(z, (__mmask32)0xFF00FF00u, z, 4);
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
}

static inline __m512i q8_pair(const uint8_t *b0)
{
    __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)(b0 + 2));
    __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(b0 + 2 + RT_Q8_BYTES));
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    return _mm512_xor_si512(z, _mm512_set1_epi8((char)0x80));
}

/* A group of 16 weight blocks transposed so that Z[j] lane i holds dword j of
 * block rt_sigma16[i] (matching rt_act.gx), plus the 16 block scales. */
static inline void w_group(const uint8_t *base, int type, __m512i Z[8], __m512 *dw)
{
    const size_t bb = type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    __m512i P[8], t[8], u[8];
    for (int k = 0; k < 8; k++) P[k] = type == RT_Q4_0 ? q4_pair(base + 2 * k * bb) : q8_pair(base + 2 * k * bb);
    for (int h = 0; h < 8; h += 4) {
        t[h + 0] = _mm512_unpacklo_epi32(P[h + 0], P[h + 1]);
        t[h + 1] = _mm512_unpackhi_epi32(P[h + 0], P[h + 1]);
        t[h + 2] = _mm512_unpacklo_epi32(P[h + 2], P[h + 3]);
        t[h + 3] = _mm512_unpackhi_epi32(P[h + 2], P[h + 3]);
        u[h + 0] = _mm512_unpacklo_epi64(t[h + 0], t[h + 2]);
        u[h + 1] = _mm512_unpackhi_epi64(t[h + 0], t[h + 2]);
        u[h + 2] = _mm512_unpacklo_epi64(t[h + 1], t[h + 3]);
        u[h + 3] = _mm512_unpackhi_epi64(t[h + 1], t[h + 3]);
    }
    for (int p = 0; p < 4; p++) {
        Z[p] = _mm512_shuffle_i32x4(u[p], u[p + 4], 0x88);
        Z[p + 4] = _mm512_shuffle_i32x4(u[p], u[p + 4], 0xDD);
    }
    if (type == RT_Q4_0) {
        /* the 16 scales are the 16-bit words 9*sigma(i) of the 288-byte group:
         * two 2-source word permutes instead of a gather */
        const __m512i i1 = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                            0, 0, 0, 0, 0, 0, 0, 0, 63, 45, 27, 9, 54, 36, 18, 0);
        const __m512i i2 = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                            135 - 72, 117 - 72, 99 - 72, 81 - 72, 126 - 72, 108 - 72, 90 - 72, 72 - 72,
                                            0, 0, 0, 0, 0, 0, 0, 0);
        __m512i A = _mm512_loadu_si512((const void *)base), B = _mm512_loadu_si512((const void *)(base + 64));
        __m512i C = _mm512_loadu_si512((const void *)(base + 144)), D = _mm512_loadu_si512((const void *)(base + 208));
        __m512i r = _mm512_mask_mov_epi16(_mm512_permutex2var_epi16(A, i1, B), (__mmask32)0xFF00u,
                                          _mm512_permutex2var_epi16(C, i2, D));
        *dw = _mm512_cvtph_ps(_mm512_castsi512_si256(r));
    } else {
        const __m512i sig = _mm512_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
        __m512i idx = _mm512_mullo_epi32(sig, _mm512_set1_epi32((int)bb));
        __m512i raw = _mm512_i32gather_epi32(idx, (const void *)base, 1);
        *dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw));
    }
}

/* ---- packed groups -----------------------------------------------------
 * rt_model_pack rewrites every full group of 16 blocks of a q4_0 / q8_0 row
 * in place, same size, into the order the kernels consume, so neither decode
 * nor prefill transposes or permutes weights again:
 *   32 bytes: the 16 f16 scales, lane i = block rt_sigma16[i]
 *   q4_0, 256 bytes: 4 x 64 bytes, dword lane i of vector j = nibble bytes
 *             4j..4j+3 of block rt_sigma16[i] (low nibbles: elements 4j..,
 *             high nibbles: elements 16+4j..)
 *   q8_0, 512 bytes: 8 x 64 bytes, dword lane i of vector j = quants
 *             4j..4j+3 of block rt_sigma16[i], stored as w ^ 0x80 (= w + 128)
 * A group that starts on a 64-byte boundary has its quants first, any other
 * group its scales first: groups are 288 / 544 bytes, so in 64-byte aligned
 * rows every vector load falls on one cache line (no split loads).
 * Blocks past the last full group keep the ggml layout. */
/* Software prefetch of the decode kernels: each weight byte is prefetched
 * into L2 (T1) some distance ahead and, on Intel, into L1 (T0) a second
 * distance ahead.  A core streaming one row range keeps too few misses in
 * flight on its own (the loads sit behind the kernel's arithmetic in the
 * out-of-order window); a plain read of the same bytes needs no prefetch.
 * Distances by CPU vendor, measured with dev/mtbench --pf-list (each kernel
 * pass at several distances interleaved in one process, LFM2-1.2B shapes,
 * 2 threads, weights on huge pages):
 *   Zen 4 / Zen 5: T1 4096 for q4_0, q8_0 and the k-quants, no T0 (into L1
 *     the prefetches competed with the demand loads and were slower).
 *   Sapphire Rapids VM (session 15): q4_0 and q8_0 T1 2048 + T0 512, +4-10%
 *     per shape over T1 4096 alone; q6_K T1 2048 + T0 2304 (into L1 most of a
 *     3360-byte tile ahead), +6-8% over T1 1024; q4_K T1 1024 + T0 256.
 *     For q4_K dev/mtbench and the whole model disagree: there a T0 of 512
 *     made the kernel 5% slower, while LFM2-1.2B Q4_K_M decode (alternating
 *     variant pairs, everything else equal) ran 1.01-1.08x faster with it
 *     than without, and 256 was 1.00-1.02x faster than 512, 1024 slower.
 *     Whole-model decode, new / old, 4 alternating pairs: LFM2-1.2B q4_0
 *     1.07-1.11x, q8_0 1.05-1.11x; LFM2-350M q8_0 1.04-1.08x, q4_0 0.96-1.07x.
 * -DPACKED_PF=N / -DKQ_PPF=N fix the T1 distance of q4_0-q8_0 / the k-quants
 * and -DPF_T0=N the T0 one for every CPU, for such experiments. */
typedef struct pf_plan { size_t t1, t0; } pf_plan;
static pf_plan prefetch_plan(int type)
{
    const int intel = __builtin_cpu_is("intel");
    pf_plan p = { 4096, 0 };
    if (intel) {
        const int kq45 = type == RT_Q4_K || type == RT_Q5_K;
        p.t1 = kq45 ? 1024 : 2048;
        p.t0 = kq45 ? 256 : type == RT_Q6_K ? 2304 : 512;
    }
#ifdef PACKED_PF
    if (type == RT_Q4_0 || type == RT_Q8_0) p.t1 = (size_t)(PACKED_PF);
#endif
#ifdef KQ_PPF
    if (type == RT_Q4_K || type == RT_Q5_K || type == RT_Q6_K) p.t1 = (size_t)(KQ_PPF);
#endif
#ifdef PF_T0
    p.t0 = (size_t)(PF_T0);
#endif
    return p;
}
static inline size_t pk_qoff(const uint8_t *g) { return ((uintptr_t)g & 63) ? 32 : 0; }
static inline size_t pk_soff(const uint8_t *g, int nv) { return ((uintptr_t)g & 63) ? 0 : (size_t)nv * 64; }
static void pack_group(uint8_t *g, int type)
{
    const size_t bb = type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    const int nv = type == RT_Q4_0 ? 4 : 8;
    const size_t qo = pk_qoff(g), so = pk_soff(g, nv);
    uint8_t tmp[16 * RT_Q8_BYTES];
    memcpy(tmp, g, 16 * bb);
    for (int i = 0; i < 16; i++) {
        const uint8_t *blk = tmp + (size_t)rt_sigma16[i] * bb;
        memcpy(g + so + 2 * i, blk, 2);
        for (int j = 0; j < nv; j++)
            for (int k = 0; k < 4; k++) {
                uint8_t b = blk[2 + 4 * j + k];
                g[qo + 64 * j + 4 * i + k] = type == RT_Q4_0 ? b : (uint8_t)(b ^ 0x80);
            }
    }
}

/* the inverse of pack_group: 16 ggml blocks into out */
static void unpack_group(const uint8_t *g, int type, uint8_t *out)
{
    const size_t bb = type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    const int nv = type == RT_Q4_0 ? 4 : 8;
    const size_t qo = pk_qoff(g), so = pk_soff(g, nv);
    for (int i = 0; i < 16; i++) {
        uint8_t *blk = out + (size_t)rt_sigma16[i] * bb;
        memcpy(blk, g + so + 2 * i, 2);
        for (int j = 0; j < nv; j++)
            for (int k = 0; k < 4; k++) {
                uint8_t b = g[qo + 64 * j + 4 * i + k];
                blk[2 + 4 * j + k] = type == RT_Q4_0 ? b : (uint8_t)(b ^ 0x80);
            }
    }
}

/* Z[8] and the scales of a packed group: what w_group computes from ggml blocks */
static inline void w_group_packed(const uint8_t *g, int type, __m512i Z[8], __m512 *dw)
{
    const size_t qo = pk_qoff(g);
    *dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(g + pk_soff(g, type == RT_Q4_0 ? 4 : 8))));
    if (type == RT_Q4_0) {
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        for (int j = 0; j < 4; j++) {
            __m512i v = _mm512_loadu_si512((const void *)(g + qo + 64 * j));
            Z[j] = _mm512_and_si512(v, m4);
#if defined(__GFNI__)
            /* v >> 4 per byte in one instruction: the affine map moving bits 4-7 to 0-3 */
            Z[j + 4] = _mm512_gf2p8affine_epi64_epi8(v, _mm512_set1_epi64(0x1020408000000000LL), 0);
#else
            Z[j + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
#endif
        }
    } else {
        for (int j = 0; j < 8; j++) Z[j] = _mm512_loadu_si512((const void *)(g + qo + 64 * j));
    }
}

/* one group of one token: exact signed block sums scaled by dw*da, added to acc */
static inline __m512 group_dot(const __m512i Z[8], __m512 dw, const uint8_t *gx, int shift, __m512 acc)
{
    __m512i init = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(gx + 576)), (unsigned)shift);
    __m512i s0 = init, s1 = _mm512_setzero_si512();
    for (int j = 0; j < 8; j += 2) {
        s0 = _mm512_dpbusd_epi32(s0, Z[j], _mm512_loadu_si512((const void *)(gx + j * 64)));
        s1 = _mm512_dpbusd_epi32(s1, Z[j + 1], _mm512_loadu_si512((const void *)(gx + (j + 1) * 64)));
    }
    __m512 f = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
    return _mm512_fmadd_ps(f, _mm512_mul_ps(dw, _mm512_loadu_ps((const float *)(const void *)(gx + 512))), acc);
}

/* blocks [b0, nb) of one row and one token, two blocks per step */
static inline float row_q_from(const uint8_t *row, const rt_act *a, int t, int K, int type, int b0)
{
    int nb = K / RT_QK;
    size_t bb = type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    float off = type == RT_Q4_0 ? 8.0f : 128.0f;
    const int8_t *q = a->qs + (size_t)t * K;
    const float *d = a->d + (size_t)t * nb, *ds = a->ds + (size_t)t * nb;
    __m512 acc = _mm512_setzero_ps();
    const __m512i zero = _mm512_setzero_si512();
    float corr = 0.0f, tail = 0.0f;
    int b = b0;
    for (; b + 1 < nb; b += 2) {
        const uint8_t *blk = row + b * bb;
        __m512i wv = type == RT_Q4_0 ? q4_pair(blk) : q8_pair(blk);
        float w0 = ld_f16(blk), w1 = ld_f16(blk + bb);
        __m512 sv = _mm512_mask_blend_ps((__mmask16)0xFF00, _mm512_set1_ps(w0 * d[b]), _mm512_set1_ps(w1 * d[b + 1]));
        __m512 p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, wv, _mm512_loadu_si512((const void *)(q + b * RT_QK))));
        acc = _mm512_fmadd_ps(p, sv, acc);
        corr += w0 * ds[b] + w1 * ds[b + 1];
    }
    if (b < nb) {
        const uint8_t *blk = row + b * bb;
        float w0 = ld_f16(blk);
        int isum = 0;
        for (int k = 0; k < 16; k++) {
            if (type == RT_Q4_0) isum += (blk[2 + k] & 15) * q[b * RT_QK + k] + (blk[2 + k] >> 4) * q[b * RT_QK + k + 16];
            else isum += ((int)(int8_t)blk[2 + k] + 128) * q[b * RT_QK + k] + ((int)(int8_t)blk[18 + k] + 128) * q[b * RT_QK + k + 16];
        }
        tail = w0 * d[b] * (float)isum;
        corr += w0 * ds[b];
    }
    return _mm512_reduce_add_ps(acc) + tail - off * corr;
}

#define TT5 8   /* tokens per AVX-512 quantised tile */

#if defined(__AVX512VBMI__)
/* q8_0 decode with byte permutes: per 4 blocks (136 bytes) one vpermt2b over
 * bytes [0,128) picks the first 16 quants of each block and one over
 * [8,136) the last 16; both as w ^ 0x80 (w + 128) against the activation
 * halves of rt_act.gx4, so no transpose and no gather.  The 4 scales sit at
 * words 0, 17, 34, 51 of the first window; they go to lanes 4k + s, the
 * lanes of block 4s + k in sigma4 order (lane 4k + s = block 4s + k). */
static inline __m512 q8_group_one(const uint8_t *base, const uint8_t *gx4, __m512 acc)
{
    static const int8_t idx_lo[64] = {
        2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
        36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,
        70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85,
        104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119 };
    static const int8_t idx_hi[64] = {   /* window starts 8 bytes later */
        10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
        44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
        78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93,
        112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127 };
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i il = _mm512_loadu_si512((const void *)idx_lo), ih = _mm512_loadu_si512((const void *)idx_hi);
    const __m512i isc = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         51, 51, 51, 51, 34, 34, 34, 34, 17, 17, 17, 17, 0, 0, 0, 0);
    __m512i a4[4], sc = _mm512_setzero_si512();
    for (int s = 0; s < 4; s++) {
        const uint8_t *w = base + s * 4 * RT_Q8_BYTES;
        __m512i t0 = _mm512_loadu_si512((const void *)w), t1 = _mm512_loadu_si512((const void *)(w + 64));
        __m512i u0 = _mm512_loadu_si512((const void *)(w + 8)), u1 = _mm512_loadu_si512((const void *)(w + 72));
        __m512i lo = _mm512_xor_si512(_mm512_permutex2var_epi8(t0, il, t1), flip);
        __m512i hi = _mm512_xor_si512(_mm512_permutex2var_epi8(u0, ih, u1), flip);
        __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512((const void *)(gx4 + s * 128)));
        a4[s] = _mm512_dpbusd_epi32(d, hi, _mm512_loadu_si512((const void *)(gx4 + s * 128 + 64)));
        sc = _mm512_mask_mov_epi16(sc, (__mmask32)(0x1111u << s), _mm512_permutex2var_epi16(t0, isc, t1));
    }
    __m512i u01 = _mm512_add_epi32(_mm512_unpacklo_epi32(a4[0], a4[1]), _mm512_unpackhi_epi32(a4[0], a4[1]));
    __m512i u23 = _mm512_add_epi32(_mm512_unpacklo_epi32(a4[2], a4[3]), _mm512_unpackhi_epi32(a4[2], a4[3]));
    __m512i sum = _mm512_add_epi32(_mm512_unpacklo_epi64(u01, u23), _mm512_unpackhi_epi64(u01, u23));
    sum = _mm512_add_epi32(sum, _mm512_slli_epi32(_mm512_loadu_si512((const void *)(gx4 + 576)), 7));
    __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(sc));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, _mm512_loadu_ps((const float *)(const void *)(gx4 + 512))), acc);
}
#endif

/* The full groups of one decode row, one kernel per weight layout; each
 * returns the 16 lane sums (the leftover blocks are added by the caller). */

/* packed weights (q4_0, q8_0), prefetched as prefetch_plan says */
static inline __m512 row_groups_packed(const uint8_t *row, const uint8_t *gx, int ng, int type, int shift, pf_plan pp)
{
    const size_t bb = type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    const int pf_lines = type == RT_Q4_0 ? 5 : 9;   /* lines of a group at any alignment */
    __m512 acc = _mm512_setzero_ps();
    for (int g = 0; g < ng; g++) {
        __m512i Z[8];
        __m512 dw;
        const uint8_t *pf = row + (size_t)g * 16 * bb + pp.t1;
        for (int l = 0; l < pf_lines; l++) _mm_prefetch((const char *)(pf + 64 * l), _MM_HINT_T1);
        if (pp.t0) {
            const uint8_t *p0 = row + (size_t)g * 16 * bb + pp.t0;
            for (int l = 0; l < pf_lines; l++) _mm_prefetch((const char *)(p0 + 64 * l), _MM_HINT_T0);
        }
        w_group_packed(row + (size_t)g * 16 * bb, type, Z, &dw);
        acc = group_dot(Z, dw, gx + (size_t)g * RT_GX_BYTES, shift, acc);
    }
    return acc;
}

#if defined(__AVX512VBMI__)
/* q8_0 in the ggml layout with byte permutes; no software prefetch: for q8_0
 * (twice the bytes per weight of q4_0) the hardware prefetchers keep up, and
 * the 9 prefetch instructions per group cost more than they gained (A/B on
 * Zen4, 2 threads, huge pages: 8.7 vs 8.1 ms/token) */
static inline __m512 row_groups_q8_permute(const uint8_t *row, const uint8_t *g4, int ng)
{
    __m512 acc = _mm512_setzero_ps();
    for (int g = 0; g < ng; g++)
        acc = q8_group_one(row + (size_t)g * 16 * RT_Q8_BYTES, g4 + (size_t)g * RT_GX_BYTES, acc);
    return acc;
}
#endif

/* ggml layout, transposed group by group */
static inline __m512 row_groups_ggml(const uint8_t *row, const uint8_t *gx, int ng, int type, int shift)
{
    const size_t bb = type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    __m512 acc = _mm512_setzero_ps();
    for (int g = 0; g < ng; g++) {
        __m512i Z[8];
        __m512 dw;
        if (g + 1 < ng) _mm_prefetch((const char *)(row + (size_t)(g + 1) * 16 * bb + 256), _MM_HINT_T0);
        w_group(row + (size_t)g * 16 * bb, type, Z, &dw);
        acc = group_dot(Z, dw, gx + (size_t)g * RT_GX_BYTES, shift, acc);
    }
    return acc;
}

enum { ROWS_PACKED, ROWS_Q8_PERMUTE, ROWS_GGML };

/* rows [r0, r1) of one token with one row kernel; inlined with a constant
 * kind, so each kernel gets its own loop (and its constants hoisted).
 * Blocks of 16 rows share one reduce_tree. */
static inline __attribute__((always_inline)) void decode_rows(int kind, const rt_mat *w, const rt_act *a, int r0, int r1,
                                                              int t, const uint8_t *gxt, float *y, size_t ldy)
{
    const int type = w->type, K = w->cols, nb = K / RT_QK, ng = nb / 16, shift = type == RT_Q4_0 ? 3 : 7;
    const pf_plan pp = prefetch_plan(type);
    int r = r0;
    for (; r + 16 <= r1; r += 16) {
        __m512 acc[16];
        for (int i = 0; i < 16; i++) {
            const uint8_t *row = w->data + (size_t)(r + i) * w->row_bytes;
            if (kind == ROWS_PACKED) acc[i] = row_groups_packed(row, gxt, ng, type, shift, pp);
#if defined(__AVX512VBMI__)
            else if (kind == ROWS_Q8_PERMUTE) acc[i] = row_groups_q8_permute(row, gxt, ng);
#endif
            else acc[i] = row_groups_ggml(row, gxt, ng, type, shift);
        }
        float *yr = y + (size_t)t * ldy + r;
        _mm512_storeu_ps(yr, reduce_tree(acc, 16));
        if (ng * 16 < nb)
            for (int i = 0; i < 16; i++) yr[i] += row_q_from(w->data + (size_t)(r + i) * w->row_bytes, a, t, K, type, ng * 16);
    }
    for (; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        __m512 acc;
        if (kind == ROWS_PACKED) acc = row_groups_packed(row, gxt, ng, type, shift, pp);
#if defined(__AVX512VBMI__)
        else if (kind == ROWS_Q8_PERMUTE) acc = row_groups_q8_permute(row, gxt, ng);
#endif
        else acc = row_groups_ggml(row, gxt, ng, type, shift);
        float s = _mm512_reduce_add_ps(acc);
        if (ng * 16 < nb) s += row_q_from(row, a, t, K, type, ng * 16);
        y[(size_t)t * ldy + r] = s;
    }
}

/* decode: one token, rows [r0, r1).  Aligned to a cache line, so that the
 * layout of its hot loops does not move with unrelated code (an edit
 * elsewhere in this file that shifted it by 96 bytes cost q4_0 decode of
 * LFM2-1.2B about 3% in alternating pairs, with identical instructions). */
__attribute__((aligned(64))) static void mm_q_avx512_one(const rt_mat *w, const rt_act *a, int r0, int r1, int t, float *y, size_t ldy)
{
    const size_t off = (size_t)t * (size_t)(w->cols / RT_QK / 16) * RT_GX_BYTES;
    if (w->packed) { decode_rows(ROWS_PACKED, w, a, r0, r1, t, a->gx + off, y, ldy); return; }
#if defined(__AVX512VBMI__)
    if (w->type == RT_Q8_0 && a->gx4) { decode_rows(ROWS_Q8_PERMUTE, w, a, r0, r1, t, a->gx4 + off, y, ldy); return; }
#endif
    decode_rows(ROWS_GGML, w, a, r0, r1, t, a->gx + off, y, ldy);
}

/* one transposed row (zr: per group 8 Z + dw) x nt tokens from token t */
static inline void q_tile(const __m512i *zr, const rt_act *a, int t, int ng, int shift, int nt, float *y, size_t ldy)
{
    __m512 acc[TT5];
    for (int k = 0; k < nt; k++) acc[k] = _mm512_setzero_ps();
    for (int g = 0; g < ng; g++) {
        __m512i Z[8];
        for (int j = 0; j < 8; j++) Z[j] = _mm512_load_si512((const void *)(zr + (size_t)g * 9 + j));
        __m512 dw = _mm512_load_ps((const float *)(const void *)(zr + (size_t)g * 9 + 8));
        const uint8_t *gx = a->gx + ((size_t)t * ng + g) * RT_GX_BYTES;
        for (int k = 0; k < nt; k++) acc[k] = group_dot(Z, dw, gx + (size_t)k * ng * RT_GX_BYTES, shift, acc[k]);
    }
    for (int k = 0; k < nt; k++) y[(size_t)k * ldy] = _mm512_reduce_add_ps(acc[k]);
}

/* prefill: rows [r0, r1) x tokens [t0, t1).  Blocks of RB rows are
 * transposed once per 64 tokens into a per-thread buffer (L2), then each tile
 * of 8 tokens (L1) is streamed against every row of the block. */
#define RB5 16
static void mm_q_avx512(const rt_mat *w, const rt_act *a, int r0, int r1, int t0, int t1, float *y, size_t ldy, float *buf)
{
    const int type = w->type, K = w->cols, nb = K / RT_QK, ng = nb / 16, shift = type == RT_Q4_0 ? 3 : 7;
    const size_t bb = type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    const size_t per_row = (size_t)ng * 9;   /* vectors per row: 8 Z + 1 dw per group */
    __m512i *zbuf = (__m512i *)(void *)buf;
    for (int tb = t0; tb < t1; tb += TB) {
        int te = tb + TB < t1 ? tb + TB : t1;
        for (int rb = r0; rb < r1; rb += RB5) {
            int re = rb + RB5 < r1 ? rb + RB5 : r1;
            for (int r = rb; r < re; r++) {
                const uint8_t *row = w->data + (size_t)r * w->row_bytes;
                __m512i *zr = zbuf + (size_t)(r - rb) * per_row;
                for (int g = 0; g < ng; g++) {
                    __m512i *z = zr + (size_t)g * 9;
                    if (w->packed) w_group_packed(row + (size_t)g * 16 * bb, type, z, (__m512 *)(void *)(z + 8));
                    else w_group(row + (size_t)g * 16 * bb, type, z, (__m512 *)(void *)(z + 8));
                }
            }
            /* token tile: 8 tokens while their activations fit L1, else 4 */
            int tile = ng * RT_GX_BYTES * TT5 <= 24 * 1024 ? TT5 : TT5 / 2;
            for (int t = tb; t < te; t += tile) {
                int nt = te - t < tile ? te - t : tile;
                for (int r = rb; r < re; r++) {
                    const __m512i *zr = zbuf + (size_t)(r - rb) * per_row;
                    float *yr = y + (size_t)t * ldy + r;
                    if (nt == TT5) q_tile(zr, a, t, ng, shift, TT5, yr, ldy);
                    else if (nt == TT5 / 2) q_tile(zr, a, t, ng, shift, TT5 / 2, yr, ldy);
                    else q_tile(zr, a, t, ng, shift, nt, yr, ldy);
                    if (ng * 16 < nb)
                        for (int k = 0; k < nt; k++)
                            yr[(size_t)k * ldy] += row_q_from(w->data + (size_t)r * w->row_bytes, a, t + k, K, type, ng * 16);
                }
            }
        }
    }
}

static inline float row_q(const uint8_t *row, const rt_act *a, int t, int K, int type)
{
    return row_q_from(row, a, t, K, type, 0);
}

static inline void tile_q(const rt_mat *w, const rt_act *a, int r, int nr, int t, int nt,
                          const float *dwx, const float *dwf, float *y, size_t ldy, int type)
{
    (void)dwx; (void)dwf;
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nt; j++)
            y[(size_t)(t + j) * ldy + r + i] = row_q(w->data + (size_t)(r + i) * w->row_bytes, a, t + j, w->cols, type);
}

#elif defined(RT_SIMD_AVX2)

static inline __m256i q4_block(const uint8_t *blk)
{
    __m128i q = _mm_loadu_si128((const __m128i *)(const void *)(blk + 2));
    __m128i m = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
}

/* integer dot of one block as 8 int32 lanes (q4: unsigned nibbles, needs the
 * -8 correction; q8: exact signed via the sign trick) */
static inline __m256i blk_dot(__m256i wv, __m256i wabs, __m256i av, int type)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i p16 = type == RT_Q4_0 ? _mm256_maddubs_epi16(wv, av)
                                  : _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(av, wv));
    return _mm256_madd_epi16(p16, ones);
}

static inline float hsum8(__m256 a)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

static inline void tile_q(const rt_mat *w, const rt_act *a, int r, int nr, int t, int nt,
                          const float *dwx, const float *dwf, float *y, size_t ldy, int type)
{
    (void)dwx;
    int K = w->cols, nb = K / RT_QK;
    size_t bb = type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    __m256 acc[TR][TT];
    const uint8_t *rows[TR];
    for (int i = 0; i < nr; i++) rows[i] = w->data + (size_t)(r + i) * w->row_bytes;
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nt; j++) acc[i][j] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i wv[TR], wa[TR];
        for (int i = 0; i < nr; i++) {
            if (type == RT_Q4_0) { wv[i] = q4_block(rows[i] + b * bb); wa[i] = wv[i]; }
            else {
                wv[i] = _mm256_loadu_si256((const __m256i *)(const void *)(rows[i] + b * bb + 2));
                wa[i] = _mm256_abs_epi8(wv[i]);
            }
        }
        for (int j = 0; j < nt; j++) {
            size_t ta = (size_t)(t + j);
            __m256i av = _mm256_loadu_si256((const __m256i *)(const void *)(a->qs + ta * K + b * RT_QK));
            float da = a->d[ta * nb + b];
            for (int i = 0; i < nr; i++) {
                __m256 p = _mm256_cvtepi32_ps(blk_dot(wv[i], wa[i], av, type));
                acc[i][j] = _mm256_fmadd_ps(p, _mm256_set1_ps(dwf[(size_t)i * nb + b] * da), acc[i][j]);
            }
        }
    }
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nt; j++) {
            size_t ta = (size_t)(t + j);
            float s = hsum8(acc[i][j]);
            if (type == RT_Q4_0) s -= 8.0f * rt_dot_f32(dwf + (size_t)i * nb, a->ds + ta * nb, nb);
            y[ta * ldy + r + i] = s;
        }
}

static inline float row_q(const uint8_t *row, const rt_act *a, int t, int K, int type)
{
    int nb = K / RT_QK;
    size_t bb = type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    const int8_t *q = a->qs + (size_t)t * K;
    const float *d = a->d + (size_t)t * nb, *ds = a->ds + (size_t)t * nb;
    __m256 acc = _mm256_setzero_ps();
    float corr = 0.0f;
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = row + b * bb;
        float dw = ld_f16(blk);
        __m256i wv, wa;
        if (type == RT_Q4_0) { wv = q4_block(blk); wa = wv; corr += dw * ds[b]; }
        else { wv = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2)); wa = _mm256_abs_epi8(wv); }
        __m256i av = _mm256_loadu_si256((const __m256i *)(const void *)(q + b * RT_QK));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(blk_dot(wv, wa, av, type)), _mm256_set1_ps(dw * d[b]), acc);
    }
    return hsum8(acc) - (type == RT_Q4_0 ? 8.0f * corr : 0.0f);
}


/* row_q for 4 consecutive rows of one token (decode): each activation block
 * is loaded once for the 4 rows and the 4 FMA chains run side by side
 * instead of one after the other; per row the same operations in the same
 * order as row_q, so the same bits.  The 4 rows (4 * row_bytes contiguous
 * bytes) are prefetched AVX2_PF ahead, 4 blocks' worth of lines per step. */
static inline __attribute__((always_inline)) void rows4_q(const uint8_t *row0, size_t rb, const rt_act *a, int t,
                                                          int K, int type, float *out)
{
    int nb = K / RT_QK;
    const size_t bb = type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    const int8_t *q = a->qs + (size_t)t * K;
    const float *d = a->d + (size_t)t * nb, *ds = a->ds + (size_t)t * nb;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    float corr[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    /* the group's bytes are [row0, row0 + 4 rb): 4 bb of them per step */
    const uint8_t *pf = row0 + AVX2_PF;
    for (int b = 0; b < nb; b++) {
        _mm_prefetch((const char *)pf, _MM_HINT_T1);
        _mm_prefetch((const char *)(pf + 64), _MM_HINT_T1);
        if (type == RT_Q8_0) _mm_prefetch((const char *)(pf + 128), _MM_HINT_T1);
        pf += 4 * bb;
        __m256i av = _mm256_loadu_si256((const __m256i *)(const void *)(q + b * RT_QK));
        float db = d[b];
        for (int i = 0; i < 4; i++) {
            const uint8_t *blk = row0 + (size_t)i * rb + b * bb;
            float dw = ld_f16(blk);
            __m256i wv, wa;
            if (type == RT_Q4_0) { wv = q4_block(blk); wa = wv; corr[i] += dw * ds[b]; }
            else { wv = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2)); wa = _mm256_abs_epi8(wv); }
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(blk_dot(wv, wa, av, type)), _mm256_set1_ps(dw * db), acc[i]);
        }
    }
    for (int i = 0; i < 4; i++) out[i] = hsum8(acc[i]) - (type == RT_Q4_0 ? 8.0f * corr[i] : 0.0f);
}

/* q4_0 decode of 4 consecutive rows, two blocks per vector: one 256-bit
 * register holds the 16 nibble bytes of blocks b and b+1, so the low
 * nibbles are [b: elements 0-15 | b+1: 0-15] and the high ones
 * [b: 16-31 | b+1: 16-31]; the activations are put in that order once per
 * pair for the 4 rows (two lane permutes).  vpmaddubsw of both halves, summed
 * in int16 (|2 x 2 x 15 x 127| < 2^15, exact), one vpmaddwd: lanes 0-3 hold
 * block b's four partial sums, lanes 4-7 block b+1's.  The -8 offset is
 * folded into the block's float step, per lane:
 *   acc += dw * (da * p - 2 ds)        (4 lanes per block: 8 ds / 4, exact)
 * (an odd last block: 8 lanes, da * p - ds).  Integer sums exact; the f32
 * order differs from row_q within the header's bounds.  About 9 instructions
 * per row and block where row_q has 16. */
static inline void rows4_q4p(const uint8_t *row0, size_t rb, const rt_act *a, int t, int K, float *out)
{
    const int nb = K / RT_QK;
    const int8_t *q = a->qs + (size_t)t * K;
    const float *d = a->d + (size_t)t * nb, *ds = a->ds + (size_t)t * nb;
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const __m256i dup = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const uint8_t *pf = row0 + AVX2_PF;
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        _mm_prefetch((const char *)pf, _MM_HINT_T1);
        _mm_prefetch((const char *)(pf + 64), _MM_HINT_T1);
        _mm_prefetch((const char *)(pf + 128), _MM_HINT_T1);
        pf += 8 * RT_Q4_BYTES;
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)(const void *)(q + b * RT_QK));
        const __m256i x1 = _mm256_loadu_si256((const __m256i *)(const void *)(q + b * RT_QK + 32));
        const __m256i a0 = _mm256_permute2x128_si256(x0, x1, 0x20), a1 = _mm256_permute2x128_si256(x0, x1, 0x31);
        const __m256 dav = _mm256_set_m128(_mm_set1_ps(d[b + 1]), _mm_set1_ps(d[b]));
        const __m256 dsv = _mm256_set_m128(_mm_set1_ps(2.0f * ds[b + 1]), _mm_set1_ps(2.0f * ds[b]));
        for (int i = 0; i < 4; i++) {
            const uint8_t *blk = row0 + (size_t)i * rb + (size_t)b * RT_Q4_BYTES;
            const __m256i v = _mm256_loadu2_m128i((const __m128i *)(const void *)(blk + 2 + RT_Q4_BYTES),
                                                  (const __m128i *)(const void *)(blk + 2));
            const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, a0), _mm256_maddubs_epi16(hi, a1));
            const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(s16, ones));
            uint16_t h0, h1;
            memcpy(&h0, blk, 2);
            memcpy(&h1, blk + RT_Q4_BYTES, 2);
            const __m256 dw = _mm256_permutevar8x32_ps(
                _mm256_castps128_ps256(_mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)h0 | (uint32_t)h1 << 16)))), dup);
            acc[i] = _mm256_fmadd_ps(dw, _mm256_fmsub_ps(p, dav, dsv), acc[i]);
        }
    }
    if (b < nb) {
        const __m256i av = _mm256_loadu_si256((const __m256i *)(const void *)(q + b * RT_QK));
        for (int i = 0; i < 4; i++) {
            const uint8_t *blk = row0 + (size_t)i * rb + (size_t)b * RT_Q4_BYTES;
            const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(q4_block(blk), av), ones));
            acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(ld_f16(blk)), _mm256_fmsub_ps(p, _mm256_set1_ps(d[b]), _mm256_set1_ps(ds[b])),
                                     acc[i]);
        }
    }
    for (int i = 0; i < 4; i++) out[i] = hsum8(acc[i]);
}

/* Prefill: bands of 8 rows with the rows in the lanes.  A band is transposed
 * once per call into Z: per block, 8 vectors, dword lane i of vector j =
 * quants 4j..4j+3 of row i's block (q4_0 as raw nibbles w + 8, q8_0 as
 * stored), and dw: the 8 rows' scales per block.  Then for tiles of up to 4
 * tokens each dword of a token's block is broadcast against Z[j]
 * (vpmaddubsw): q4_0 sums the 8 pair products in int16 (|8 x 2 x 15 x 127| <
 * 2^15, exact) and widens once per block; q8_0 uses the sign trick per dword
 * and widens each.  Per lane and block: one convert, then
 *   q4_0: acc += dw * (da * isum - 8 * ds)      (8 ds exact, one fmsub)
 *   q8_0: acc += (dw * da) * isum
 * so the integer sums are exact and only the f32 order differs from the
 * row kernels (decode), within the header's bounds.  The band's Z
 * (256 B per block) stays in L1/L2 while every token streams past it. */
#define QB_ROWS 8
#define QB_NT 4
static void qband_pack(const rt_mat *w, int r, int nr, uint8_t *Z, float *dw)
{
    const int nb = w->cols / RT_QK, type = w->type;
    const size_t bb = type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    for (int i = 0; i < QB_ROWS; i++) {
        if (i >= nr) {   /* rows past the matrix: zero weights */
            for (int b = 0; b < nb; b++) {
                dw[(size_t)b * QB_ROWS + i] = 0.0f;
                for (int j = 0; j < 8; j++) memset(Z + (size_t)b * 256 + 32 * j + 4 * i, 0, 4);
            }
            continue;
        }
        const uint8_t *row = w->data + (size_t)(r + i) * w->row_bytes;
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = row + (size_t)b * bb;
            uint8_t u[32];
            dw[(size_t)b * QB_ROWS + i] = ld_f16(blk);
            if (type == RT_Q4_0) _mm256_storeu_si256((__m256i *)(void *)u, q4_block(blk));
            else memcpy(u, blk + 2, 32);
            for (int j = 0; j < 8; j++) memcpy(Z + (size_t)b * 256 + 32 * j + 4 * i, u + 4 * j, 4);
        }
    }
}

static inline __attribute__((always_inline)) void qband_tile(const uint8_t *Z, const float *dw, int nb, const rt_act *a,
                                                            int t, const int nt, const int type, int r, int nr,
                                                            float *y, size_t ldy)
{
    const int K = a->K;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[QB_NT];
    for (int k = 0; k < nt; k++) acc[k] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *zb = Z + (size_t)b * 256;
        __m256i s[QB_NT];
        for (int k = 0; k < nt; k++) s[k] = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            const __m256i z = _mm256_load_si256((const __m256i *)(const void *)(zb + 32 * j));
            if (type == RT_Q4_0) {
                for (int k = 0; k < nt; k++) {
                    int32_t v;
                    memcpy(&v, a->qs + (size_t)(t + k) * K + (size_t)b * RT_QK + 4 * j, 4);
                    s[k] = _mm256_add_epi16(s[k], _mm256_maddubs_epi16(z, _mm256_set1_epi32(v)));
                }
            } else {
                const __m256i za = _mm256_abs_epi8(z);
                for (int k = 0; k < nt; k++) {
                    int32_t v;
                    memcpy(&v, a->qs + (size_t)(t + k) * K + (size_t)b * RT_QK + 4 * j, 4);
                    __m256i p = _mm256_maddubs_epi16(za, _mm256_sign_epi8(_mm256_set1_epi32(v), z));
                    s[k] = _mm256_add_epi32(s[k], _mm256_madd_epi16(p, ones));
                }
            }
        }
        const __m256 dwv = _mm256_load_ps(dw + (size_t)b * QB_ROWS);
        for (int k = 0; k < nt; k++) {
            const size_t tb = (size_t)(t + k) * nb + b;
            if (type == RT_Q4_0) {
                __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(s[k], ones));
                __m256 e = _mm256_fmsub_ps(p, _mm256_set1_ps(a->d[tb]), _mm256_set1_ps(8.0f * a->ds[tb]));
                acc[k] = _mm256_fmadd_ps(dwv, e, acc[k]);
            } else {
                acc[k] = _mm256_fmadd_ps(_mm256_mul_ps(dwv, _mm256_set1_ps(a->d[tb])), _mm256_cvtepi32_ps(s[k]), acc[k]);
            }
        }
    }
    for (int k = 0; k < nt; k++) {
        float o[8];
        _mm256_storeu_ps(o, acc[k]);
        for (int i = 0; i < nr; i++) y[(size_t)(t + k) * ldy + r + i] = o[i];
    }
}

/* rows [r0, r1), tokens [t0, t1) in bands of 8; -1 without scratch */
static int mm_q_avx2_bands(const rt_mat *w, const rt_act *a, int r0, int r1, int t0, int t1, float *y, size_t ldy,
                           float *buf)
{
    const int nb = w->cols / RT_QK;
    float *dw = buf;
    uint8_t *Z = (uint8_t *)(void *)(buf + (size_t)nb * QB_ROWS);   /* 32-byte aligned: nb * 32 bytes of dw before */
    for (int r = r0; r < r1; r += QB_ROWS) {
        const int nr = r1 - r < QB_ROWS ? r1 - r : QB_ROWS;
        qband_pack(w, r, nr, Z, dw);
        int t = t0;
        if (w->type == RT_Q4_0) {
            for (; t + QB_NT <= t1; t += QB_NT) qband_tile(Z, dw, nb, a, t, QB_NT, RT_Q4_0, r, nr, y, ldy);
            for (; t < t1; t++) qband_tile(Z, dw, nb, a, t, 1, RT_Q4_0, r, nr, y, ldy);
        } else {
            for (; t + QB_NT <= t1; t += QB_NT) qband_tile(Z, dw, nb, a, t, QB_NT, RT_Q8_0, r, nr, y, ldy);
            for (; t < t1; t++) qband_tile(Z, dw, nb, a, t, 1, RT_Q8_0, r, nr, y, ldy);
        }
    }
    return 0;
}

#elif defined(RT_SIMD_NEON)

static inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t x)
{
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, w, x);
#else
    int16x8_t lo = vmull_s8(vget_low_s8(w), vget_low_s8(x));
    int16x8_t hi = vmull_high_s8(w, x);
    return vaddq_s32(acc, vaddq_s32(vpaddlq_s16(lo), vpaddlq_s16(hi)));
#endif
}

static inline void wblock(const uint8_t *blk, int type, int8x16_t *w0, int8x16_t *w1)
{
    if (type == RT_Q4_0) {
        uint8x16_t q = vld1q_u8(blk + 2);
        const int8x16_t eight = vdupq_n_s8(8);
        *w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), eight);
        *w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
    } else {
        *w0 = vld1q_s8((const int8_t *)(blk + 2));
        *w1 = vld1q_s8((const int8_t *)(blk + 18));
    }
}

static inline void tile_q(const rt_mat *w, const rt_act *a, int r, int nr, int t, int nt,
                          const float *dwx, const float *dwf, float *y, size_t ldy, int type)
{
    (void)dwx;
    int K = w->cols, nb = K / RT_QK;
    size_t bb = type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    float32x4_t acc[TR][TT];
    const uint8_t *rows[TR];
    for (int i = 0; i < nr; i++) rows[i] = w->data + (size_t)(r + i) * w->row_bytes;
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nt; j++) acc[i][j] = vdupq_n_f32(0.0f);
    for (int b = 0; b < nb; b++) {
        int8x16_t w0[TR], w1[TR];
        for (int i = 0; i < nr; i++) wblock(rows[i] + b * bb, type, &w0[i], &w1[i]);
        for (int j = 0; j < nt; j++) {
            size_t ta = (size_t)(t + j);
            const int8_t *q = a->qs + ta * K + b * RT_QK;
            int8x16_t a0 = vld1q_s8(q), a1 = vld1q_s8(q + 16);
            float da = a->d[ta * nb + b];
            for (int i = 0; i < nr; i++) {
                int32x4_t p = dot16(dot16(vdupq_n_s32(0), w0[i], a0), w1[i], a1);
                acc[i][j] = vfmaq_n_f32(acc[i][j], vcvtq_f32_s32(p), dwf[(size_t)i * nb + b] * da);
            }
        }
    }
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nt; j++) y[(size_t)(t + j) * ldy + r + i] = vaddvq_f32(acc[i][j]);
}

static inline float row_q(const uint8_t *row, const rt_act *a, int t, int K, int type)
{
    int nb = K / RT_QK;
    size_t bb = type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    const int8_t *q = a->qs + (size_t)t * K;
    const float *d = a->d + (size_t)t * nb;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = row + b * bb;
        int8x16_t w0, w1;
        wblock(blk, type, &w0, &w1);
        int32x4_t p = dot16(dot16(vdupq_n_s32(0), w0, vld1q_s8(q + b * RT_QK)), w1, vld1q_s8(q + b * RT_QK + 16));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), ld_f16(blk) * d[b]);
    }
    return vaddvq_f32(acc);
}

#else /* scalar */

static inline int blk_isum(const uint8_t *blk, const int8_t *q, int type)
{
    int s = 0;
    if (type == RT_Q4_0) {
        for (int k = 0; k < 16; k++)
            s += ((blk[2 + k] & 15) - 8) * q[k] + ((blk[2 + k] >> 4) - 8) * q[k + 16];
    } else {
        for (int k = 0; k < RT_QK; k++) s += (int8_t)blk[2 + k] * q[k];
    }
    return s;
}

static inline float row_q(const uint8_t *row, const rt_act *a, int t, int K, int type)
{
    int nb = K / RT_QK;
    size_t bb = type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    const int8_t *q = a->qs + (size_t)t * K;
    const float *d = a->d + (size_t)t * nb;
    float s = 0.0f;
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = row + b * bb;
        s += ld_f16(blk) * d[b] * (float)blk_isum(blk, q + b * RT_QK, type);
    }
    return s;
}

static inline void tile_q(const rt_mat *w, const rt_act *a, int r, int nr, int t, int nt,
                          const float *dwx, const float *dwf, float *y, size_t ldy, int type)
{
    (void)dwx; (void)dwf;
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nt; j++)
            y[(size_t)(t + j) * ldy + r + i] =
                row_q(w->data + (size_t)(r + i) * w->row_bytes, a, t + j, w->cols, type);
}
#endif

static void mm_quant(const rt_mat *w, const rt_act *a, int r0, int r1, int t0, int t1,
                     float *y, size_t ldy)
{
    int K = w->cols, nb = K / RT_QK, type = w->type;
#if defined(RT_SIMD_AVX512)
    if (a->gx) {
        if (t1 - t0 == 1) { mm_q_avx512_one(w, a, r0, r1, t0, y, ldy); return; }
        float *zb = scratch((size_t)RB5 * (nb / 16) * 144 + 16);
        if (zb) { mm_q_avx512(w, a, r0, r1, t0, t1, y, ldy, zb); return; }
    }
#endif
    if (t1 - t0 == 1) {
#if defined(RT_SIMD_AVX2)
        for (; r0 + 4 <= r1; r0 += 4) {
            float o4[4];
            const uint8_t *row = w->data + (size_t)r0 * w->row_bytes;
            if (type == RT_Q4_0) rows4_q4p(row, w->row_bytes, a, t0, K, o4);
            else rows4_q(row, w->row_bytes, a, t0, K, RT_Q8_0, o4);
            for (int i = 0; i < 4; i++) y[(size_t)t0 * ldy + r0 + i] = o4[i];
        }
#endif
        for (int r = r0; r < r1; r++)
            y[(size_t)t0 * ldy + r] = type == RT_Q4_0
                ? row_q(w->data + (size_t)r * w->row_bytes, a, t0, K, RT_Q4_0)
                : row_q(w->data + (size_t)r * w->row_bytes, a, t0, K, RT_Q8_0);
        return;
    }
#if defined(RT_SIMD_AVX2)
    if (t1 - t0 >= 8) {
        float *zb = scratch((size_t)nb * 72 + 16);
        if (zb && mm_q_avx2_bands(w, a, r0, r1, t0, t1, y, ldy, zb) == 0) return;
    }
#endif
    float *buf = scratch((size_t)TR * nb * 9);
    if (!buf) { /* out of memory for 9*TR*nb floats: fall back to row kernel */
        for (int t = t0; t < t1; t++)
            for (int r = r0; r < r1; r++)
                y[(size_t)t * ldy + r] = row_q(w->data + (size_t)r * w->row_bytes, a, t, K, type);
        return;
    }
    float *dwf = buf, *dwx = buf + (size_t)TR * nb;
    for (int tb = t0; tb < t1; tb += TB) {
        int te = tb + TB < t1 ? tb + TB : t1;
        for (int r = r0; r < r1; r += TR) {
            int nr = r1 - r < TR ? r1 - r : TR;
            row_scales(w, r, nr, dwf);
            for (int t = tb; t < te; t += TT) {
                int nt = te - t < TT ? te - t : TT;
                if (nr == TR && nt == TT) {
                    if (type == RT_Q4_0) tile_q(w, a, r, TR, t, TT, dwx, dwf, y, ldy, RT_Q4_0);
                    else tile_q(w, a, r, TR, t, TT, dwx, dwf, y, ldy, RT_Q8_0);
                } else {
                    tile_q(w, a, r, nr, t, nt, dwx, dwf, y, ldy, type);
                }
            }
        }
    }
}


/* ---------------------------------------------------------------------- */
/* k-quant weights (q4_K, q5_K, q6_K) x q8_K activations                     */
/*
 * A row is unpacked once per call into unsigned element values u (natural
 * order, q4_K 0..15, q5_K 0..31, q6_K 0..63), one int16 scale per group of
 * 16 elements, the q4_K/q5_K mins per sub-block of 32 and the f32 super-block
 * scales; then for each token and super-block s the integer sums
 *   isum = sum_g sc_g * (sum_{e in g} u_e q_e  -  off * bsum_g)   (off 32 for q6_K)
 *   msum = sum_j m_j * (bsum_2j + bsum_2j+1)                       (q4_K, q5_K)
 * are exact on every path (only the u.q dot uses SIMD), and
 *   y += (d_act * d) * isum;  y -= (d_act * dmin) * msum
 * runs in the same scalar order everywhere: every build gives the same bits
 * for these products (the f32 parts of a model may still differ, see above).
 * Decode (fewer than 4 tokens) skips the unpacking on AVX2 / NEON (and on
 * AVX-512 for weights not repacked): q4k/q5k/q6k_row_token build the same u
 * values in registers from the packed bits and compute the same integer sums
 * and float steps.  AVX-512 prefill (4 tokens or more) puts 16 rows in the
 * lanes instead (mm_kquant_rows16 below): same integers, same float steps
 * per lane.  On AVX-512 rt_model_pack also rewrites every band of 16 whole
 * rows in place into tiles with the rows in the lanes ("packed k-quant
 * bands" below): decode then runs 16 rows per vector straight from the
 * stream (kband_token) and prefill fills its lane block from the tiles
 * without a transpose; same integers, same float steps, same bits.  Decode
 * of LFM2-350M Q4_K_M went from about 0.55 of the memory bandwidth (the row
 * kernels: scalar scale unpacking and horizontal sums per 144-210 bytes) to
 * 0.91 (2 threads, shared host; README).  AVX2 decode runs 4 rows at once
 * (q45k_rows4 / q6k_rows4: activations read once for the 4, the 4 rows'
 * sums reduced together, the float steps in 4 lanes) and AVX2 prefill puts
 * 8 rows in the lanes (mm_kquant_band8, unpacked once per call); same
 * integers, same float steps per lane, same bits.
 */
typedef struct kunp {
    uint8_t *u; int16_t *sc, *mn; float *d, *dm;
} kunp;

static void k_unpack_row(int type, const uint8_t *row, int nsb, const kunp *k)
{
    size_t bb = rt_row_bytes(type, RT_QKK);
    for (int s = 0; s < nsb; s++) {
        const uint8_t *b = row + (size_t)s * bb;
        uint8_t *u = k->u + (size_t)s * RT_QKK;
        int16_t *sc = k->sc + (size_t)s * 16;
        if (type == RT_Q6_K) {
            uint16_t h; memcpy(&h, b + 208, 2);
            k->d[s] = ld_f16(b + 208); k->dm[s] = 0.0f;
            (void)h;
            const uint8_t *ql = b, *qh = b + 128;
            for (int n = 0; n < 2; n++)
                for (int l = 0; l < 32; l++) {
                    uint8_t lo = ql[64 * n + l], hi = ql[64 * n + 32 + l], hb = qh[32 * n + l];
                    u[128 * n + l] = (uint8_t)((lo & 15) | ((hb & 3) << 4));
                    u[128 * n + l + 32] = (uint8_t)((hi & 15) | (((hb >> 2) & 3) << 4));
                    u[128 * n + l + 64] = (uint8_t)((lo >> 4) | (((hb >> 4) & 3) << 4));
                    u[128 * n + l + 96] = (uint8_t)((hi >> 4) | (((hb >> 6) & 3) << 4));
                }
            for (int g = 0; g < 16; g++) sc[g] = (int8_t)b[192 + g];
            continue;
        }
        k->d[s] = ld_f16(b);
        k->dm[s] = ld_f16(b + 2);
        const uint8_t *qs = b + (type == RT_Q4_K ? 16 : 48), *qh = b + 16;
        for (int j = 0; j < 8; j++) {
            int d, m;
            rt_k_scale_min(b + 4, j, &d, &m);
            sc[2 * j] = sc[2 * j + 1] = (int16_t)d;
            k->mn[(size_t)s * 8 + j] = (int16_t)m;
        }
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int lo = qs[32 * c + l] & 15, hi = qs[32 * c + l] >> 4;
                if (type == RT_Q5_K) {
                    lo |= ((qh[l] >> (2 * c)) & 1) << 4;
                    hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
                }
                u[64 * c + l] = (uint8_t)lo;
                u[64 * c + 32 + l] = (uint8_t)hi;
            }
    }
}

/* sum_g sc[g] * sum_{e<16} u[16g+e] * q[16g+e] over one super-block, exact */
static inline int32_t k_dot256(const uint8_t *u, const int8_t *q, const int16_t *sc)
{
#if defined(RT_SIMD_AVX512)
    /* 64 elements = 4 groups per step: vpmaddubsw (pairs <= 2*63*127, no
     * saturation), vpmaddwd against the group scales */
    __m512i acc = _mm512_setzero_si512();
    for (int i = 0; i < 4; i++) {
        __m512i uv = _mm512_loadu_si512((const void *)(u + 64 * i));
        __m512i qv = _mm512_loadu_si512((const void *)(q + 64 * i));
        __m512i sv = _mm512_inserti64x4(_mm512_castsi256_si512(
                         _mm256_set_m128i(_mm_set1_epi16(sc[4 * i + 1]), _mm_set1_epi16(sc[4 * i]))),
                         _mm256_set_m128i(_mm_set1_epi16(sc[4 * i + 3]), _mm_set1_epi16(sc[4 * i + 2])), 1);
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(uv, qv), sv));
    }
    return _mm512_reduce_add_epi32(acc);
#elif defined(RT_SIMD_AVX2)
    __m256i acc = _mm256_setzero_si256();
    for (int i = 0; i < 8; i++) {
        __m256i uv = _mm256_loadu_si256((const __m256i *)(const void *)(u + 32 * i));
        __m256i qv = _mm256_loadu_si256((const __m256i *)(const void *)(q + 32 * i));
        __m256i sv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * i + 1]), _mm_set1_epi16(sc[2 * i]));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(uv, qv), sv));
    }
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    return _mm_cvtsi128_si32(s4);
#elif defined(RT_SIMD_NEON)
    int32x4_t acc = vdupq_n_s32(0);
    for (int g = 0; g < 16; g++) {   /* u <= 63 fits int8 */
        int32x4_t p = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(vld1q_u8(u + 16 * g)), vld1q_s8(q + 16 * g));
        acc = vmlaq_n_s32(acc, p, sc[g]);
    }
    return vaddvq_s32(acc);
#else
    int32_t total = 0;
    for (int g = 0; g < 16; g++) {
        int32_t s = 0;
        for (int e = 0; e < 16; e++) s += (int32_t)u[16 * g + e] * q[16 * g + e];
        total += (int32_t)sc[g] * s;
    }
    return total;
#endif
}

static inline float k_row_token(int type, const kunp *k, int nsb, const rt_act *a, int t)
{
    const int8_t *q = a->kq + (size_t)t * a->K;
    const float *yd = a->kd + (size_t)t * nsb;
    const int16_t *bs = a->kbs + (size_t)t * nsb * 16;
    float acc = 0.0f;
    for (int s = 0; s < nsb; s++) {
        const int16_t *sc = k->sc + (size_t)s * 16, *b = bs + (size_t)s * 16;
        int32_t isum = k_dot256(k->u + (size_t)s * RT_QKK, q + (size_t)s * RT_QKK, sc);
        if (type == RT_Q6_K) {
            int32_t o = 0;
            for (int g = 0; g < 16; g++) o += (int32_t)sc[g] * b[g];
            isum -= 32 * o;
            acc += (yd[s] * k->d[s]) * (float)isum;
        } else {
            int32_t msum = 0;
            for (int j = 0; j < 8; j++) msum += (int32_t)k->mn[(size_t)s * 8 + j] * (b[2 * j] + b[2 * j + 1]);
            acc += (yd[s] * k->d[s]) * (float)isum;
            acc -= (yd[s] * k->dm[s]) * (float)msum;
        }
    }
    return acc;
}

#if defined(RT_SIMD_AVX512) || defined(RT_SIMD_AVX2)
/* k_row_token for 4 tokens at once (prefill): each unpacked u vector and
 * scale vector is loaded once for the 4, the correction sums use vpmaddwd;
 * per token the same integer sums and the same float steps, so the same bits */
static inline void k_row_tokens4(int type, const kunp *k, int nsb, const rt_act *a, int t, float *out)
{
    const int8_t *q = a->kq + (size_t)t * a->K;
    const size_t K = (size_t)a->K;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int s = 0; s < nsb; s++) {
        const int16_t *sc = k->sc + (size_t)s * 16;
        const uint8_t *u = k->u + (size_t)s * RT_QKK;
        int32_t isum[4];
#if defined(RT_SIMD_AVX512)
        __m512i v[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
        for (int i = 0; i < 4; i++) {
            __m512i uv = _mm512_loadu_si512((const void *)(u + 64 * i));
            __m512i sv = _mm512_inserti64x4(_mm512_castsi256_si512(
                             _mm256_set_m128i(_mm_set1_epi16(sc[4 * i + 1]), _mm_set1_epi16(sc[4 * i]))),
                             _mm256_set_m128i(_mm_set1_epi16(sc[4 * i + 3]), _mm_set1_epi16(sc[4 * i + 2])), 1);
            for (int j = 0; j < 4; j++) {
                __m512i qv = _mm512_loadu_si512((const void *)(q + j * K + (size_t)s * RT_QKK + 64 * i));
                v[j] = _mm512_add_epi32(v[j], _mm512_madd_epi16(_mm512_maddubs_epi16(uv, qv), sv));
            }
        }
        for (int j = 0; j < 4; j++) isum[j] = _mm512_reduce_add_epi32(v[j]);
#else
        __m256i v[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int i = 0; i < 8; i++) {
            __m256i uv = _mm256_loadu_si256((const __m256i *)(const void *)(u + 32 * i));
            __m256i sv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * i + 1]), _mm_set1_epi16(sc[2 * i]));
            for (int j = 0; j < 4; j++) {
                __m256i qv = _mm256_loadu_si256((const __m256i *)(const void *)(q + j * K + (size_t)s * RT_QKK + 32 * i));
                v[j] = _mm256_add_epi32(v[j], _mm256_madd_epi16(_mm256_maddubs_epi16(uv, qv), sv));
            }
        }
        for (int j = 0; j < 4; j++) {
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(v[j]), _mm256_extracti128_si256(v[j], 1));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
            isum[j] = _mm_cvtsi128_si32(s4);
        }
#endif
        /* correction weights per group of 16: q6_K the scale (offset 32), q4_K /
         * q5_K the sub-block's min */
        int16_t cw[16];
        for (int g = 0; g < 16; g++) cw[g] = type == RT_Q6_K ? sc[g] : k->mn[(size_t)s * 8 + g / 2];
        __m256i cwv = _mm256_loadu_si256((const __m256i *)(const void *)cw);
        for (int j = 0; j < 4; j++) {
            const int16_t *b = a->kbs + ((size_t)(t + j) * nsb + s) * 16;
            __m256i pr = _mm256_madd_epi16(cwv, _mm256_loadu_si256((const __m256i *)(const void *)b));
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(pr), _mm256_extracti128_si256(pr, 1));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
            int32_t corr = _mm_cvtsi128_si32(s4);
            float yd = a->kd[(size_t)(t + j) * nsb + s];
            if (type == RT_Q6_K) {
                acc[j] += (yd * k->d[s]) * (float)(isum[j] - 32 * corr);
            } else {
                acc[j] += (yd * k->d[s]) * (float)isum[j];
                acc[j] -= (yd * k->dm[s]) * (float)corr;
            }
        }
    }
    for (int j = 0; j < 4; j++) out[j] = acc[j];
}

/* Software prefetch into L2 for the direct k-quant decode kernels: KQ_PF
 * bytes ahead of the super-block being read, every line of it.  Rows of a
 * decode range are contiguous, so near a row's end this runs into the next
 * rows; it keeps the stream going across 4 KiB page boundaries (GGUF weights
 * are read in place from the file mapping), where the hardware prefetchers
 * stop.  Prefetches past the matrix are harmless (no fault).  always_inline:
 * GCC (12) left this out of line in the AVX2 q4_K / q5_K 4-row kernels,
 * found the out-of-line body free of side effects (prefetches do not count)
 * and deleted the calls, so those kernels ran without any prefetch (AVX2
 * q4_K decode from L3/DRAM then streamed 25-35% slower, dev/kqbench and
 * dev/mtbench). */
#define KQ_PF 4096
static inline __attribute__((always_inline)) void kq_prefetch(const uint8_t *b, size_t bytes)
{
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)(b + KQ_PF + o), _MM_HINT_T1);
}

/* q4_K straight from the packed nibbles (no unpacking to memory): the same
 * integer sums and the same float steps as k_row_token, so the same bits */
static inline float q4k_row_token(const uint8_t *row, int nsb, const rt_act *a, int t)
{
    const int8_t *q = a->kq + (size_t)t * a->K;
    const float *yd = a->kd + (size_t)t * nsb;
    const int16_t *bs = a->kbs + (size_t)t * nsb * 16;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    float acc = 0.0f;
    for (int s = 0; s < nsb; s++) {
        const uint8_t *b = row + (size_t)s * RT_Q4K_BYTES;
        const int8_t *qs = q + (size_t)s * RT_QKK;
        const int16_t *bb = bs + (size_t)s * 16;
        kq_prefetch(b, RT_Q4K_BYTES);
        /* the 8 6-bit scales and mins of the 12 packed bytes, four at a time in
         * 32-bit words (rt_k_scale_min's layout): bytes j of sw = scale j */
        uint32_t w0, w1, w2;
        memcpy(&w0, b + 4, 4); memcpy(&w1, b + 8, 4); memcpy(&w2, b + 12, 4);
        uint32_t sw[2] = {w0 & 0x3f3f3f3fu, (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4)};
        uint32_t mw[2] = {w1 & 0x3f3f3f3fu, ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4)};
        uint8_t sc[8];
        memcpy(sc, sw, 8);
        __m256i vacc = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(const void *)(b + 16 + 32 * c));
            __m256i lo = _mm256_and_si256(qv, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
            __m256i a0 = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 64 * c));
            __m256i a1 = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 64 * c + 32));
            vacc = _mm256_add_epi32(vacc, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0), _mm256_set1_epi16((short)sc[2 * c])));
            vacc = _mm256_add_epi32(vacc, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1), _mm256_set1_epi16((short)sc[2 * c + 1])));
        }
        /* msum = sum_j m_j (bsum_2j + bsum_2j+1): the mins doubled to 16 int16
         * against the 16 group sums, exact */
        __m128i m8 = _mm_cvtsi64_si128((long long)((uint64_t)mw[0] | ((uint64_t)mw[1] << 32)));
        __m256i mv = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
        __m256i pv = _mm256_madd_epi16(mv, _mm256_loadu_si256((const __m256i *)(const void *)bb));
        __m256i both = _mm256_hadd_epi32(vacc, pv);   /* per 128-bit lane: isum pairs, msum pairs */
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(both), _mm256_extracti128_si256(both, 1));
        s4 = _mm_hadd_epi32(s4, s4);                   /* isum, msum, isum, msum */
        int32_t isum = _mm_cvtsi128_si32(s4), msum = _mm_extract_epi32(s4, 1);
        acc += (yd[s] * ld_f16(b)) * (float)isum;
        acc -= (yd[s] * ld_f16(b + 2)) * (float)msum;
    }
    return acc;
}

static inline int32_t hsum8_i32(__m256i v)
{
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    return _mm_cvtsi128_si32(s4);
}

/* 32 unsigned element values u (< 64) against 32 activations, groups of 16
 * scaled by s0 (first 16) and s1: exact int32 lanes */
static inline __m256i k_dot32(__m256i u, const int8_t *q, int s0, int s1)
{
    __m256i qv = _mm256_loadu_si256((const __m256i *)(const void *)q);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, qv), _mm256_set_m128i(_mm_set1_epi16((short)s1), _mm_set1_epi16((short)s0)));
}

/* q5_K straight from the packed bits, as q4k_row_token */
static inline float q5k_row_token(const uint8_t *row, int nsb, const rt_act *a, int t)
{
    const int8_t *q = a->kq + (size_t)t * a->K;
    const float *yd = a->kd + (size_t)t * nsb;
    const int16_t *bs = a->kbs + (size_t)t * nsb * 16;
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    float acc = 0.0f;
    for (int s = 0; s < nsb; s++) {
        const uint8_t *b = row + (size_t)s * RT_Q5K_BYTES;
        const int8_t *qs = q + (size_t)s * RT_QKK;
        const int16_t *bb = bs + (size_t)s * 16;
        kq_prefetch(b, RT_Q5K_BYTES);
        int sc[8], mn[8];
        for (int j = 0; j < 8; j++) rt_k_scale_min(b + 4, j, &sc[j], &mn[j]);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(const void *)(b + 16));
        __m256i vacc = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(const void *)(b + 48 + 32 * c));
            __m256i bl = _mm256_set1_epi8((char)(1 << (2 * c))), bh = _mm256_set1_epi8((char)(1 << (2 * c + 1)));
            __m256i hl = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bl), bl), b4);
            __m256i hh = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bh), bh), b4);
            __m256i lo = _mm256_or_si256(_mm256_and_si256(qv, m4), hl);
            __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qv, 4), m4), hh);
            vacc = _mm256_add_epi32(vacc, k_dot32(lo, qs + 64 * c, sc[2 * c], sc[2 * c]));
            vacc = _mm256_add_epi32(vacc, k_dot32(hi, qs + 64 * c + 32, sc[2 * c + 1], sc[2 * c + 1]));
        }
        int32_t isum = hsum8_i32(vacc), msum = 0;
        for (int j = 0; j < 8; j++) msum += (int32_t)mn[j] * (bb[2 * j] + bb[2 * j + 1]);
        acc += (yd[s] * ld_f16(b)) * (float)isum;
        acc -= (yd[s] * ld_f16(b + 2)) * (float)msum;
    }
    return acc;
}

/* q6_K straight from the packed bits: the same integer sums (u = stored
 * value 0..63, offset 32 taken off through the block sums) and float steps
 * as k_row_token */
static inline float q6k_row_token(const uint8_t *row, int nsb, const rt_act *a, int t)
{
    const int8_t *q = a->kq + (size_t)t * a->K;
    const float *yd = a->kd + (size_t)t * nsb;
    const int16_t *bs = a->kbs + (size_t)t * nsb * 16;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    float acc = 0.0f;
    for (int s = 0; s < nsb; s++) {
        const uint8_t *b = row + (size_t)s * RT_Q6K_BYTES;
        const int8_t *qs = q + (size_t)s * RT_QKK, *sc = (const int8_t *)(b + 192);
        const int16_t *bb = bs + (size_t)s * 16;
        kq_prefetch(b, RT_Q6K_BYTES);
        __m256i vacc = _mm256_setzero_si256();
        for (int n = 0; n < 2; n++) {
            const int8_t *qn = qs + 128 * n, *sn = sc + 8 * n;
            __m256i l0 = _mm256_loadu_si256((const __m256i *)(const void *)(b + 64 * n));
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(const void *)(b + 64 * n + 32));
            __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(b + 128 + 32 * n));
            /* bits 2k, 2k+1 of each qh byte to bits 4, 5 of that byte (the 16-bit
             * shifts move other bytes' bits in only outside the mask) */
            __m256i u1 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
            __m256i u2 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
            __m256i u3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m30));
            __m256i u4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
            vacc = _mm256_add_epi32(vacc, k_dot32(u1, qn, sn[0], sn[1]));
            vacc = _mm256_add_epi32(vacc, k_dot32(u2, qn + 32, sn[2], sn[3]));
            vacc = _mm256_add_epi32(vacc, k_dot32(u3, qn + 64, sn[4], sn[5]));
            vacc = _mm256_add_epi32(vacc, k_dot32(u4, qn + 96, sn[6], sn[7]));
        }
        int32_t isum = hsum8_i32(vacc), o = 0;
        for (int g = 0; g < 16; g++) o += (int32_t)sc[g] * bb[g];
        isum -= 32 * o;
        acc += (yd[s] * ld_f16(b + 208)) * (float)isum;
    }
    return acc;
}

#if defined(RT_SIMD_AVX2)
/* AVX2 decode of 4 consecutive rows at once (q4k/q5k/q6k_row_token for 4
 * rows): the activations and block sums of a super-block are read once for
 * the 4 rows, the group scales reach their lanes by one byte shuffle each
 * (not a broadcast from a scalar), the 4 rows' integer sums are reduced
 * together (hadd tree: exact) and the float steps run in 4 lanes, each lane
 * the scalar steps of one row in the scalar order: the same bits as the
 * row kernels (and as every other build, test_kquant_paths_bit_identical).
 * q4_K / q5_K: the 4 rows' 16-byte headers (d, dmin, 6-bit scales and mins)
 * are decoded together in one transposed xmm set (not 4 scalar chains of
 * about 20 instructions), and msum comes from the block sums added in pairs
 * once per super-block against the two rows' mins of a vector: the same
 * integers.  The kernels were bound by the instruction count, about 95 per
 * row and super-block before (q4_K in cache 16.2-17.4 -> 18.6-20.4 GB/s, one
 * core, dev/kqbench; from L3 with the prefetch below back 12.6-13.7 ->
 * 17.2-18.5).  The 4 rows' bytes are prefetched KQ_PF ahead in the stream.
 * q6_K: the 4 rows' bodies as straight code (q6k_row_sb), each row's
 * offset term 32 * o from one vpmaddwd of its 16 scales against 16 * bsum
 * (no second hadd tree), the sums kept negated (32 * o - isum, undone in
 * the float step by a subtraction: the same bits) and the 4 fp16 d
 * gathered in a general register; the 32-weight step (and/shift/or,
 * vpmaddubsw, scale shuffle, vpmaddwd) is unchanged.  In cache, one core,
 * 1.05-1.08x (dev microbench, 256 x 4096); from DRAM, 2 threads, dev/mtbench
 * w2 (2048 x 8192) 19.6-20.6 -> 25.4-26.1 GB/s, the K = 2048 shapes
 * 1.05-1.10x.  Loading the scale vectors from a per-row table (vmovddup)
 * instead of the shuffles was slower. */

/* lane i = the sum of the 8 lanes of v_i (exact) */
static inline __m128i hsum4x8_i32(__m256i v0, __m256i v1, __m256i v2, __m256i v3)
{
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* byte shuffle that fills a 128-bit lane with int16 lane j (lo) / lane k (hi) */
static inline __m256i kq_sel16(int j, int k)
{
    const char a = (char)(2 * j), b = (char)(2 * j + 1), c = (char)(2 * k), e = (char)(2 * k + 1);
    return _mm256_setr_epi8(a, b, a, b, a, b, a, b, a, b, a, b, a, b, a, b,
                            c, e, c, e, c, e, c, e, c, e, c, e, c, e, c, e);
}

/* byte shuffle: int16 lanes all = byte j of each 128-bit lane, zero-extended */
static inline __m256i kq_selb(int j)
{
    const char a = (char)j, z = (char)0x80;
    return _mm256_setr_epi8(a, z, a, z, a, z, a, z, a, z, a, z, a, z, a, z,
                            a, z, a, z, a, z, a, z, a, z, a, z, a, z, a, z);
}

static inline __attribute__((always_inline)) void q45k_rows4(const int type, const uint8_t *row0, size_t rb, int nsb,
                                                            const rt_act *a, int t, float *out)
{
    const size_t bb = type == RT_Q4_K ? RT_Q4K_BYTES : RT_Q5K_BYTES;
    const size_t qo = type == RT_Q4_K ? 16 : 48;
    const int8_t *q = a->kq + (size_t)t * a->K;
    const float *yd = a->kd + (size_t)t * nsb;
    const int16_t *bs = a->kbs + (size_t)t * nsb * 16;
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    const __m128i m3f = _mm_set1_epi8(0x3F), m0f = _mm_set1_epi8(0x0F), m30 = _mm_set1_epi8(0x30);
    const __m256i dsel = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __m128 acc = _mm_setzero_ps();
    for (int s = 0; s < nsb; s++) {
        const int8_t *qs = q + (size_t)s * RT_QKK;
        const uint8_t *b0 = row0 + (size_t)s * bb;
        /* one run of 4 super-blocks' bytes, KQ_PF ahead, sweeping the 4
         * rows (and into the next 4) at 4x the read speed of each: it does
         * not follow the 4 streams a row apart, but prefetching each row's
         * own stream (512-2048 bytes ahead) was 10-40% slower, on 4 KiB and
         * on huge pages (dev/mtbench --pages 4k, 2 threads, haswell build,
         * session 14) */
        kq_prefetch(row0 + (size_t)s * 4 * bb, 4 * bb);
        /* the 4 rows' 16-byte headers (d, dmin, 12 bytes of scales and mins)
         * transposed: lane i of dd / w0 / w1 / w2 = that word of row i */
        __m128i h0 = _mm_loadu_si128((const __m128i *)(const void *)b0);
        __m128i h1 = _mm_loadu_si128((const __m128i *)(const void *)(b0 + rb));
        __m128i h2 = _mm_loadu_si128((const __m128i *)(const void *)(b0 + 2 * rb));
        __m128i h3 = _mm_loadu_si128((const __m128i *)(const void *)(b0 + 3 * rb));
        __m128i t0 = _mm_unpacklo_epi32(h0, h1), t1 = _mm_unpacklo_epi32(h2, h3);
        __m128i t2 = _mm_unpackhi_epi32(h0, h1), t3 = _mm_unpackhi_epi32(h2, h3);
        const __m128i dd = _mm_unpacklo_epi64(t0, t1), w0 = _mm_unpackhi_epi64(t0, t1);
        const __m128i w1 = _mm_unpacklo_epi64(t2, t3), w2 = _mm_unpackhi_epi64(t2, t3);
        /* the 8 6-bit scales and mins (rt_k_scale_min's layout, as
         * q4k_row_token): bytes of sl (scales 0-3), sh (4-7), ml, mh */
        const __m128i sl = _mm_and_si128(w0, m3f), ml = _mm_and_si128(w1, m3f);
        const __m128i sh = _mm_or_si128(_mm_and_si128(w2, m0f), _mm_and_si128(_mm_srli_epi32(w0, 2), m30));
        const __m128i mh = _mm_or_si128(_mm_and_si128(_mm_srli_epi32(w2, 4), m0f), _mm_and_si128(_mm_srli_epi32(w1, 2), m30));
        /* row i: its 8 scales in bytes 0-7 of both 128-bit lanes (a byte
         * shuffle per group puts one scale in every int16 lane) */
        const __m128i s01 = _mm_unpacklo_epi32(sl, sh), s23 = _mm_unpackhi_epi32(sl, sh);
        const __m256i ss[4] = {_mm256_broadcastsi128_si256(s01), _mm256_broadcastsi128_si256(_mm_unpackhi_epi64(s01, s01)),
                               _mm256_broadcastsi128_si256(s23), _mm256_broadcastsi128_si256(_mm_unpackhi_epi64(s23, s23))};
        /* msum = sum_j m_j (bsum_2j + bsum_2j+1): the block sums added in
         * pairs (8 int16, |.| <= 2 * 16 * 128) against the mins of two rows
         * per vector (row 2i low lane, 2i+1 high), exact */
        const __m256i bs2 = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(bs + (size_t)s * 16)),
                                              _mm256_set1_epi16(1));
        const __m256i bsp = _mm256_broadcastsi128_si256(
            _mm_packs_epi32(_mm256_castsi256_si128(bs2), _mm256_extracti128_si256(bs2, 1)));
        const __m256i x01 = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi32(ml, mh)), bsp);
        const __m256i x23 = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpackhi_epi32(ml, mh)), bsp);
        __m256i hm = _mm256_hadd_epi32(x01, x23);   /* lanes: r0 r0 r2 r2 | r1 r1 r3 r3 */
        hm = _mm256_hadd_epi32(hm, hm);             /* r0 r2 r0 r2 | r1 r3 r1 r3 */
        const __m128i mi = _mm_unpacklo_epi32(_mm256_castsi256_si128(hm), _mm256_extracti128_si256(hm, 1));
        __m256i vi[4];
        for (int i = 0; i < 4; i++) {
            const uint8_t *b = b0 + (size_t)i * rb;
            const __m256i sv = ss[i];
            __m256i qh = _mm256_setzero_si256();
            if (type == RT_Q5_K) qh = _mm256_loadu_si256((const __m256i *)(const void *)(b + 16));
            __m256i v = _mm256_setzero_si256();
            for (int c = 0; c < 4; c++) {
                __m256i qv = _mm256_loadu_si256((const __m256i *)(const void *)(b + qo + 32 * c));
                __m256i lo = _mm256_and_si256(qv, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
                if (type == RT_Q5_K) {
                    __m256i bl = _mm256_set1_epi8((char)(1 << (2 * c))), bh = _mm256_set1_epi8((char)(1 << (2 * c + 1)));
                    lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bl), bl), b4));
                    hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bh), bh), b4));
                }
                __m256i a0 = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 64 * c));
                __m256i a1 = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 64 * c + 32));
                v = _mm256_add_epi32(v, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0), _mm256_shuffle_epi8(sv, kq_selb(2 * c))));
                v = _mm256_add_epi32(v, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1), _mm256_shuffle_epi8(sv, kq_selb(2 * c + 1))));
            }
            vi[i] = v;
        }
        const __m128 isum = _mm_cvtepi32_ps(hsum4x8_i32(vi[0], vi[1], vi[2], vi[3]));
        const __m128 msum = _mm_cvtepi32_ps(mi);
        const __m256 dm = _mm256_permutevar8x32_ps(_mm256_cvtph_ps(dd), dsel);
        const __m128 y = _mm_set1_ps(yd[s]);
        acc = _mm_add_ps(acc, _mm_mul_ps(_mm_mul_ps(y, _mm256_castps256_ps128(dm)), isum));
        acc = _mm_sub_ps(acc, _mm_mul_ps(_mm_mul_ps(y, _mm256_extractf128_ps(dm, 1)), msum));
    }
    _mm_storeu_ps(out, acc);
}

static inline int kq_ld16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* q6k_rows4's work on one row and super-block: 32 * o - isum in 8 int32
 * lanes, o = sum_g sc_g * bsum_g (bs16 = 16 * bsum_g), exact.  Called 4
 * times as straight code (always_inline; GCC 12 kept a loop over the rows
 * and ran it 5-10% slower) */
static inline __attribute__((always_inline)) __m256i q6k_row_sb(const uint8_t *b, const int8_t *qs, __m256i bs16,
                                                               const __m256i sel[4])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    /* the 16 scales as int16 (y), each half's 8 in both 128-bit lanes (z) */
    const __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(b + 192)));
    const __m256i z[2] = {_mm256_permute4x64_epi64(y, 0x44), _mm256_permute4x64_epi64(y, 0xEE)};
    const __m256i o16 = _mm256_madd_epi16(y, bs16);   /* lanes sum to 16 * o */
    __m256i v = _mm256_add_epi32(o16, o16);
    for (int n = 0; n < 2; n++) {
        const int8_t *qn = qs + 128 * n;
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(const void *)(b + 64 * n));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(const void *)(b + 64 * n + 32));
        const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(b + 128 + 32 * n));
        /* bits 2k, 2k+1 of each qh byte to bits 4, 5 of that byte (the 16-bit
         * shifts move other bytes' bits in only outside the mask) */
        const __m256i u[4] = {
            _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30)),
            _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m30)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(h, 2), m30))};
        for (int k = 0; k < 4; k++) {
            const __m256i qv = _mm256_loadu_si256((const __m256i *)(const void *)(qn + 32 * k));
            v = _mm256_sub_epi32(v, _mm256_madd_epi16(_mm256_maddubs_epi16(u[k], qv), _mm256_shuffle_epi8(z[n], sel[k])));
        }
    }
    return v;
}

static inline void q6k_rows4(const uint8_t *row0, size_t rb, int nsb, const rt_act *a, int t, float *out)
{
    const int8_t *q = a->kq + (size_t)t * a->K;
    const float *yd = a->kd + (size_t)t * nsb;
    const int16_t *bs = a->kbs + (size_t)t * nsb * 16;
    const __m256i sel[4] = {kq_sel16(0, 1), kq_sel16(2, 3), kq_sel16(4, 5), kq_sel16(6, 7)};
    __m128 acc = _mm_setzero_ps();
    for (int s = 0; s < nsb; s++) {
        const int8_t *qs = q + (size_t)s * RT_QKK;
        const uint8_t *b = row0 + (size_t)s * RT_Q6K_BYTES;
        kq_prefetch(row0 + (size_t)s * 4 * RT_Q6K_BYTES, 4 * RT_Q6K_BYTES);
        /* 16 * bsum_g: bsum in [-2048, 2032], so 16 * bsum fits int16 exactly */
        const __m256i bs16 = _mm256_slli_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(bs + (size_t)s * 16)), 4);
        const __m256i v0 = q6k_row_sb(b, qs, bs16, sel), v1 = q6k_row_sb(b + rb, qs, bs16, sel);
        const __m256i v2 = q6k_row_sb(b + 2 * rb, qs, bs16, sel), v3 = q6k_row_sb(b + 3 * rb, qs, bs16, sel);
        /* the 4 rows' fp16 d gathered in a general register */
        const uint64_t dw = (uint64_t)kq_ld16(b + 208) | (uint64_t)kq_ld16(b + rb + 208) << 16 |
                            (uint64_t)kq_ld16(b + 2 * rb + 208) << 32 | (uint64_t)kq_ld16(b + 3 * rb + 208) << 48;
        /* -isum: acc - (yd d) (-isum) has the bits of acc + (yd d) isum
         * (int -> float, the product and the sum are exact under negation) */
        const __m128i nisum = hsum4x8_i32(v0, v1, v2, v3);
        const __m128 d4 = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)dw));
        acc = _mm_sub_ps(acc, _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(yd[s]), d4), _mm_cvtepi32_ps(nisum)));
    }
    _mm_storeu_ps(out, acc);
}
#endif
#elif defined(RT_SIMD_NEON)
/* k_row_token for 4 tokens at once (prefill), as on x86: each unpacked u
 * vector is loaded once for the 4; the same integer sums and float steps */
static inline void k_row_tokens4(int type, const kunp *k, int nsb, const rt_act *a, int t, float *out)
{
    const int8_t *q = a->kq + (size_t)t * a->K;
    const size_t K = (size_t)a->K;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int s = 0; s < nsb; s++) {
        const int16_t *sc = k->sc + (size_t)s * 16;
        const uint8_t *u = k->u + (size_t)s * RT_QKK;
        int32x4_t v[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int g = 0; g < 16; g++) {
            int8x16_t uv = vreinterpretq_s8_u8(vld1q_u8(u + 16 * g));
            for (int j = 0; j < 4; j++)
                v[j] = vmlaq_n_s32(v[j], dot16(vdupq_n_s32(0), uv, vld1q_s8(q + j * K + (size_t)s * RT_QKK + 16 * g)), sc[g]);
        }
        for (int j = 0; j < 4; j++) {
            const int16_t *b = a->kbs + ((size_t)(t + j) * nsb + s) * 16;
            int32_t isum = vaddvq_s32(v[j]), corr = 0;
            for (int g = 0; g < 16; g++)
                corr += (int32_t)(type == RT_Q6_K ? sc[g] : k->mn[(size_t)s * 8 + g / 2]) * b[g];
            float yd = a->kd[(size_t)(t + j) * nsb + s];
            if (type == RT_Q6_K) {
                acc[j] += (yd * k->d[s]) * (float)(isum - 32 * corr);
            } else {
                acc[j] += (yd * k->d[s]) * (float)isum;
                acc[j] -= (yd * k->dm[s]) * (float)corr;
            }
        }
    }
    for (int j = 0; j < 4; j++) out[j] = acc[j];
}

/* the direct kernels on NEON: element values u < 64 as int8 against the
 * activations with dot16 per group of 16, times the group's scale; the same
 * integer sums and float steps as k_row_token */
static inline int32x4_t kg(int32x4_t acc, uint8x16_t u, const int8_t *q, int sc)
{
    return vmlaq_n_s32(acc, dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(u), vld1q_s8(q)), sc);
}

static inline float q45k_row_token(const uint8_t *row, int nsb, const rt_act *a, int t, int five)
{
    const int8_t *q = a->kq + (size_t)t * a->K;
    const float *yd = a->kd + (size_t)t * nsb;
    const int16_t *bs = a->kbs + (size_t)t * nsb * 16;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), b4 = vdupq_n_u8(0x10);
    const size_t bytes = five ? RT_Q5K_BYTES : RT_Q4K_BYTES;
    float acc = 0.0f;
    for (int s = 0; s < nsb; s++) {
        const uint8_t *b = row + (size_t)s * bytes, *qsb = b + (five ? 48 : 16);
        const int8_t *qs = q + (size_t)s * RT_QKK;
        const int16_t *bb = bs + (size_t)s * 16;
        int sc[8], mn[8];
        for (int j = 0; j < 8; j++) rt_k_scale_min(b + 4, j, &sc[j], &mn[j]);
        uint8x16_t qh0 = vdupq_n_u8(0), qh1 = vdupq_n_u8(0);
        if (five) { qh0 = vld1q_u8(b + 16); qh1 = vld1q_u8(b + 32); }
        int32x4_t vacc = vdupq_n_s32(0);
        for (int c = 0; c < 4; c++) {
            uint8x16_t v0 = vld1q_u8(qsb + 32 * c), v1 = vld1q_u8(qsb + 32 * c + 16);
            uint8x16_t lo0 = vandq_u8(v0, m4), lo1 = vandq_u8(v1, m4), hi0 = vshrq_n_u8(v0, 4), hi1 = vshrq_n_u8(v1, 4);
            if (five) {
                uint8x16_t bl = vdupq_n_u8((uint8_t)(1u << (2 * c))), bh = vdupq_n_u8((uint8_t)(2u << (2 * c)));
                lo0 = vorrq_u8(lo0, vandq_u8(vtstq_u8(qh0, bl), b4));
                lo1 = vorrq_u8(lo1, vandq_u8(vtstq_u8(qh1, bl), b4));
                hi0 = vorrq_u8(hi0, vandq_u8(vtstq_u8(qh0, bh), b4));
                hi1 = vorrq_u8(hi1, vandq_u8(vtstq_u8(qh1, bh), b4));
            }
            const int8_t *qc = qs + 64 * c;
            vacc = kg(vacc, lo0, qc, sc[2 * c]);
            vacc = kg(vacc, lo1, qc + 16, sc[2 * c]);
            vacc = kg(vacc, hi0, qc + 32, sc[2 * c + 1]);
            vacc = kg(vacc, hi1, qc + 48, sc[2 * c + 1]);
        }
        int32_t isum = vaddvq_s32(vacc), msum = 0;
        for (int j = 0; j < 8; j++) msum += (int32_t)mn[j] * (bb[2 * j] + bb[2 * j + 1]);
        acc += (yd[s] * ld_f16(b)) * (float)isum;
        acc -= (yd[s] * ld_f16(b + 2)) * (float)msum;
    }
    return acc;
}

static inline float q4k_row_token(const uint8_t *row, int nsb, const rt_act *a, int t)
{
    return q45k_row_token(row, nsb, a, t, 0);
}

static inline float q5k_row_token(const uint8_t *row, int nsb, const rt_act *a, int t)
{
    return q45k_row_token(row, nsb, a, t, 1);
}

static inline float q6k_row_token(const uint8_t *row, int nsb, const rt_act *a, int t)
{
    const int8_t *q = a->kq + (size_t)t * a->K;
    const float *yd = a->kd + (size_t)t * nsb;
    const int16_t *bs = a->kbs + (size_t)t * nsb * 16;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(0x03), m30 = vdupq_n_u8(0x30);
    float acc = 0.0f;
    for (int s = 0; s < nsb; s++) {
        const uint8_t *b = row + (size_t)s * RT_Q6K_BYTES;
        const int8_t *qs = q + (size_t)s * RT_QKK, *sc = (const int8_t *)(b + 192);
        const int16_t *bb = bs + (size_t)s * 16;
        int32x4_t vacc = vdupq_n_s32(0);
        for (int n = 0; n < 2; n++) {
            const int8_t *qn = qs + 128 * n, *sn = sc + 8 * n;
            for (int h = 0; h < 2; h++) {   /* elements l = 16h .. 16h+15 of each quarter */
                uint8x16_t l0 = vld1q_u8(b + 64 * n + 16 * h), l1 = vld1q_u8(b + 64 * n + 32 + 16 * h);
                uint8x16_t qh = vld1q_u8(b + 128 + 32 * n + 16 * h);
                uint8x16_t u1 = vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(qh, m3), 4));
                uint8x16_t u2 = vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 2), m3), 4));
                uint8x16_t u3 = vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(qh, m30));
                uint8x16_t u4 = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(qh, 6), 4));
                vacc = kg(vacc, u1, qn + 16 * h, sn[h]);
                vacc = kg(vacc, u2, qn + 32 + 16 * h, sn[2 + h]);
                vacc = kg(vacc, u3, qn + 64 + 16 * h, sn[4 + h]);
                vacc = kg(vacc, u4, qn + 96 + 16 * h, sn[6 + h]);
            }
        }
        int32_t isum = vaddvq_s32(vacc), o = 0;
        for (int g = 0; g < 16; g++) o += (int32_t)sc[g] * bb[g];
        isum -= 32 * o;
        acc += (yd[s] * ld_f16(b + 208)) * (float)isum;
    }
    return acc;
}
#endif

#if defined(RT_SIMD_AVX512)
/* Prefill with rows in lanes (the q4_0 treatment): a block of 16 rows is
 * unpacked once per call into an interleaved layout (per super-block s and
 * dword p, the 16 rows' dword p of u side by side), and tiles of 8 tokens run
 * against it: for each group of 16 elements, 4 vpdpbusd per token against the
 * token's activation dword broadcast from the natural q8_K row (no copy of
 * the activations), then one vpmulld by the 16 rows' group scales; the
 * correction sums take vpmaddwd of the rows' (scale|min) pairs against the
 * token's block sums.  Per row and token the integer sums are the same exact
 * integers as k_row_token's and the float steps the same operations in the
 * same order (vector lanes instead of scalars, no FMA), so the same bits. */
#define KRB 16   /* rows per block (lanes) */
#define KTT 8    /* tokens per tile */
typedef struct kblk {
    uint8_t *u;      /* [nsb][64 dwords][16 rows] */
    int32_t *sc;     /* [nsb][16 groups][16 rows] */
    int32_t *cw;     /* [nsb][8 pairs][16 rows]: int16 pair (c_2h, c_2h+1) */
    float *d, *dm;   /* [nsb][16 rows] */
    uint8_t *tmp;    /* [16 rows][K] u in natural order */
} kblk;

static size_t kblk_floats(int K)
{
    size_t nsb = (size_t)K / RT_QKK;
    return (nsb * (64 * 16 * 4 + 16 * 16 * 4 + 8 * 16 * 4 + 2 * 16 * 4) + (size_t)KRB * K) / 4 + 64;
}

/* u of one row in natural order, from the packed bits (SIMD for q4_K and q6_K) */
static void k_unpack_u(int type, const uint8_t *row, int nsb, uint8_t *u)
{
    size_t bb = rt_row_bytes(type, RT_QKK);
    const __m256i m4 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3);
    for (int s = 0; s < nsb; s++) {
        const uint8_t *b = row + (size_t)s * bb;
        uint8_t *o = u + (size_t)s * RT_QKK;
        if (type == RT_Q4_K) {
            for (int c = 0; c < 4; c++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(b + 16 + 32 * c));
                _mm256_storeu_si256((__m256i *)(void *)(o + 64 * c), _mm256_and_si256(v, m4));
                _mm256_storeu_si256((__m256i *)(void *)(o + 64 * c + 32), _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
            }
        } else if (type == RT_Q6_K) {
            for (int n = 0; n < 2; n++) {
                __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)(b + 64 * n));
                __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(b + 64 * n + 32));
                __m256i hb = _mm256_loadu_si256((const __m256i *)(const void *)(b + 128 + 32 * n));
                __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4);
                __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4);
                __m256i h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4);
                __m256i h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4);
                _mm256_storeu_si256((__m256i *)(void *)(o + 128 * n), _mm256_or_si256(_mm256_and_si256(lo, m4), h0));
                _mm256_storeu_si256((__m256i *)(void *)(o + 128 * n + 32), _mm256_or_si256(_mm256_and_si256(hi, m4), h1));
                _mm256_storeu_si256((__m256i *)(void *)(o + 128 * n + 64),
                                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo, 4), m4), h2));
                _mm256_storeu_si256((__m256i *)(void *)(o + 128 * n + 96),
                                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(hi, 4), m4), h3));
            }
        } else {   /* q5_K */
            const uint8_t *qs = b + 48, *qh = b + 16;
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++) {
                    o[64 * c + l] = (uint8_t)((qs[32 * c + l] & 15) | (((qh[l] >> (2 * c)) & 1) << 4));
                    o[64 * c + 32 + l] = (uint8_t)((qs[32 * c + l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4));
                }
        }
    }
}

/* rows r .. r+nr (nr <= 16) of w into the interleaved block; missing lanes 0 */
static void k_block_unpack(const rt_mat *w, int r, int nr, int nsb, const kblk *k)
{
    int type = w->type, K = w->cols;
    size_t bb = rt_row_bytes(type, RT_QKK);
    for (int i = 0; i < KRB; i++) {
        uint8_t *ui = k->tmp + (size_t)i * K;
        if (i >= nr) {
            memset(ui, 0, (size_t)K);
            for (int s = 0; s < nsb; s++) {
                for (int g = 0; g < 16; g++) k->sc[((size_t)s * 16 + g) * KRB + i] = 0;
                for (int h = 0; h < 8; h++) k->cw[((size_t)s * 8 + h) * KRB + i] = 0;
                k->d[(size_t)s * KRB + i] = 0.0f;
                k->dm[(size_t)s * KRB + i] = 0.0f;
            }
            continue;
        }
        const uint8_t *row = w->data + (size_t)(r + i) * w->row_bytes;
        k_unpack_u(type, row, nsb, ui);
        for (int s = 0; s < nsb; s++) {
            const uint8_t *b = row + (size_t)s * bb;
            int16_t sc[16], cw[16];
            if (type == RT_Q6_K) {
                for (int g = 0; g < 16; g++) sc[g] = cw[g] = (int8_t)b[192 + g];
                k->d[(size_t)s * KRB + i] = ld_f16(b + 208);
                k->dm[(size_t)s * KRB + i] = 0.0f;
            } else {
                for (int j = 0; j < 8; j++) {
                    int d, m;
                    rt_k_scale_min(b + 4, j, &d, &m);
                    sc[2 * j] = sc[2 * j + 1] = (int16_t)d;
                    cw[2 * j] = cw[2 * j + 1] = (int16_t)m;
                }
                k->d[(size_t)s * KRB + i] = ld_f16(b);
                k->dm[(size_t)s * KRB + i] = ld_f16(b + 2);
            }
            for (int g = 0; g < 16; g++) k->sc[((size_t)s * 16 + g) * KRB + i] = sc[g];
            for (int h = 0; h < 8; h++)
                k->cw[((size_t)s * 8 + h) * KRB + i] =
                    (int32_t)((uint32_t)(uint16_t)cw[2 * h] | ((uint32_t)(uint16_t)cw[2 * h + 1] << 16));
        }
    }
    /* transpose dwords: lane i of vector (s, p) = row i's dword p of super-block s */
    const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32(K));
    for (int p = 0; p < K / 4; p++)
        _mm512_store_si512((void *)(k->u + (size_t)p * 64),
                           _mm512_i32gather_epi32(idx, (const void *)(k->tmp + 4 * (size_t)p), 1));
}

static inline __attribute__((always_inline)) void k_tile16(int type, const kblk *k, int nsb, const rt_act *a,
                                                          int t, int nt, float *y, size_t ldy, int r, __mmask16 m)
{
    const size_t K = (size_t)a->K;
    __m512 acc[KTT];
    for (int j = 0; j < nt; j++) acc[j] = _mm512_setzero_ps();
    for (int s = 0; s < nsb; s++) {
        __m512i is[KTT];
        for (int j = 0; j < nt; j++) is[j] = _mm512_setzero_si512();
        const uint8_t *u = k->u + (size_t)s * 64 * 64;
        for (int g = 0; g < 16; g++) {
            __m512i ga[KTT];
            for (int j = 0; j < nt; j++) ga[j] = _mm512_setzero_si512();
            for (int p = 0; p < 4; p++) {
                __m512i uv = _mm512_load_si512((const void *)(u + (size_t)(4 * g + p) * 64));
                for (int j = 0; j < nt; j++) {
                    int32_t qd;
                    memcpy(&qd, a->kq + (size_t)(t + j) * K + (size_t)s * RT_QKK + 16 * g + 4 * p, 4);
                    ga[j] = _mm512_dpbusd_epi32(ga[j], uv, _mm512_set1_epi32(qd));
                }
            }
            __m512i scv = _mm512_load_si512((const void *)(k->sc + ((size_t)s * 16 + g) * KRB));
            for (int j = 0; j < nt; j++) is[j] = _mm512_add_epi32(is[j], _mm512_mullo_epi32(ga[j], scv));
        }
        __m512 dv = _mm512_load_ps(k->d + (size_t)s * KRB), dmv = _mm512_load_ps(k->dm + (size_t)s * KRB);
        for (int j = 0; j < nt; j++) {
            const int16_t *bs = a->kbs + ((size_t)(t + j) * nsb + s) * 16;
            __m512i corr = _mm512_setzero_si512();
            for (int h = 0; h < 8; h++) {
                int32_t pr;
                memcpy(&pr, bs + 2 * h, 4);
                corr = _mm512_add_epi32(corr, _mm512_madd_epi16(
                           _mm512_load_si512((const void *)(k->cw + ((size_t)s * 8 + h) * KRB)), _mm512_set1_epi32(pr)));
            }
            __m512 yd = _mm512_set1_ps(a->kd[(size_t)(t + j) * nsb + s]);
            if (type == RT_Q6_K) {
                __m512i v = _mm512_sub_epi32(is[j], _mm512_slli_epi32(corr, 5));
                acc[j] = _mm512_add_ps(acc[j], _mm512_mul_ps(_mm512_mul_ps(yd, dv), _mm512_cvtepi32_ps(v)));
            } else {
                acc[j] = _mm512_add_ps(acc[j], _mm512_mul_ps(_mm512_mul_ps(yd, dv), _mm512_cvtepi32_ps(is[j])));
                acc[j] = _mm512_sub_ps(acc[j], _mm512_mul_ps(_mm512_mul_ps(yd, dmv), _mm512_cvtepi32_ps(corr)));
            }
        }
    }
    for (int j = 0; j < nt; j++) _mm512_mask_storeu_ps(y + (size_t)(t + j) * ldy + r, m, acc[j]);
}


/* ---- packed k-quant bands (AVX-512) ---------------------------------------
 * rt_model_pack rewrites every band of 16 whole rows of a q4_K / q5_K / q6_K
 * matrix in place, same size: the band's 16 x nsb super-blocks become nsb
 * tiles, tile s holding super-block s of the 16 rows with every field
 * interleaved by rows: dword k of row i's bytes [o, o + 4n) of the field at
 * tile offset to + 64k + 4i (vector k, lane i), the f16 scales as 16 words.
 *   q4_K (2304 B): 32 vectors of nibbles (qs), 3 of 6-bit scales/mins, d, dmin
 *   q5_K (2816 B): 32 of nibbles, 8 of fifth bits (qh), 3 of scales, d, dmin
 *   q6_K (3360 B): 32 of low nibbles (ql), 16 of high pairs (qh), 4 of int8
 *                  scales, d
 * A decode step then reads each weight once as part of a 64-byte vector whose
 * lanes are 16 rows, multiplies it (vpdpbusd) against one activation dword
 * broadcast to all lanes, and needs no horizontal sum: 16 rows' exact integer
 * sums come out in the lanes, and the float steps run per lane in k_row_token's
 * order, so the bits are the scalar path's.  Rows past the last whole band
 * keep the ggml layout.  Bands are contiguous, so a matrix is one stream. */
typedef struct kseg { unsigned short to, from, n; } kseg;   /* n vectors of dwords; n == 0: 16 f16 words */
static const kseg kseg_q4[] = { {0, 16, 32}, {2048, 4, 3}, {2240, 0, 0}, {2272, 2, 0}, {0, 0, 0} };
static const kseg kseg_q5[] = { {0, 48, 32}, {2048, 16, 8}, {2560, 4, 3}, {2752, 0, 0}, {2784, 2, 0}, {0, 0, 0} };
static const kseg kseg_q6[] = { {0, 0, 32}, {2048, 128, 16}, {3072, 192, 4}, {3328, 208, 0}, {0, 0, 0} };
static const kseg *kseg_of(int type) { return type == RT_Q4_K ? kseg_q4 : type == RT_Q5_K ? kseg_q5 : kseg_q6; }

/* row i's block <-> its bytes in tile (dir 0: block to tile, 1: back) */
static void ktile_row(int type, uint8_t *tile, uint8_t *blk, int i, int dir)
{
    for (const kseg *g = kseg_of(type); g->to || g->from || g->n; g++) {
        if (g->n == 0) {
            if (dir) memcpy(blk + g->from, tile + g->to + 2 * i, 2);
            else memcpy(tile + g->to + 2 * i, blk + g->from, 2);
            continue;
        }
        for (int k = 0; k < g->n; k++) {
            if (dir) memcpy(blk + g->from + 4 * k, tile + g->to + 64 * k + 4 * i, 4);
            else memcpy(tile + g->to + 64 * k + 4 * i, blk + g->from + 4 * k, 4);
        }
    }
}

static void kpack_band(uint8_t *band, int type, int nsb, uint8_t *tmp)
{
    const size_t bb = rt_row_bytes(type, RT_QKK), rb = bb * (size_t)nsb;
    memcpy(tmp, band, 16 * rb);
    for (int s = 0; s < nsb; s++)
        for (int i = 0; i < 16; i++) ktile_row(type, band + (size_t)s * 16 * bb, tmp + (size_t)i * rb + (size_t)s * bb, i, 0);
}

/* the 16 lanes' int32 scale of each group of 16 elements, the correction
 * pairs (as kblk.cw) and d, dmin of one tile */
static inline void ktile_scales(int type, const uint8_t *t, __m512i sc[16], __m512i cw[8], __m512 *d, __m512 *dm)
{
    const __m512i ff = _mm512_set1_epi32(0xff);
    if (type == RT_Q6_K) {
        for (int k = 0; k < 4; k++) {
            __m512i v = _mm512_loadu_si512((const void *)(t + 3072 + 64 * k));
            for (int b = 0; b < 4; b++) sc[4 * k + b] = _mm512_srai_epi32(_mm512_slli_epi32(v, 24 - 8 * b), 24);
        }
        for (int h = 0; h < 8; h++)
            cw[h] = _mm512_or_si512(_mm512_and_si512(sc[2 * h], _mm512_set1_epi32(0xffff)), _mm512_slli_epi32(sc[2 * h + 1], 16));
        *d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(t + 3328)));
        *dm = _mm512_setzero_ps();
        return;
    }
    const size_t so = type == RT_Q4_K ? 2048 : 2560;
    const __m512i m6 = _mm512_set1_epi8(0x3f), m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(0x03);
    __m512i S0 = _mm512_loadu_si512((const void *)(t + so)), S1 = _mm512_loadu_si512((const void *)(t + so + 64));
    __m512i S2 = _mm512_loadu_si512((const void *)(t + so + 128));
    __m512i sw[2], mw[2];
    sw[0] = _mm512_and_si512(S0, m6);
    sw[1] = _mm512_or_si512(_mm512_and_si512(S2, m4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(S0, 6), m2), 4));
    mw[0] = _mm512_and_si512(S1, m6);
    mw[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(S2, 4), m4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(S1, 6), m2), 4));
    for (int j = 0; j < 8; j++) {
        __m512i s = _mm512_and_si512(_mm512_srli_epi32(sw[j / 4], 8 * (j % 4)), ff);
        __m512i m = _mm512_and_si512(_mm512_srli_epi32(mw[j / 4], 8 * (j % 4)), ff);
        sc[2 * j] = sc[2 * j + 1] = s;
        cw[j] = _mm512_or_si512(m, _mm512_slli_epi32(m, 16));
    }
    *d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(t + so + 192)));
    *dm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(t + so + 224)));
}

/* the 16 lanes' element values u of elements 4p .. 4p+3 of one tile */
static inline __m512i ktile_u(int type, const uint8_t *t, int p)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
#define KLD(o) _mm512_loadu_si512((const void *)(t + (o)))
    if (type == RT_Q6_K) {
        const __m512i m30 = _mm512_set1_epi8(0x30);
        int n = p / 32, m = (p % 32) / 8, l = p % 8;
        __m512i L = KLD(64 * (16 * n + 8 * (m & 1) + l)), H = KLD(2048 + 64 * (8 * n + l));
        __m512i lo = m < 2 ? _mm512_and_si512(L, m4) : _mm512_and_si512(_mm512_srli_epi16(L, 4), m4);
        __m512i hi = m == 0 ? _mm512_slli_epi16(H, 4) : m == 1 ? _mm512_slli_epi16(H, 2) : m == 2 ? H : _mm512_srli_epi16(H, 2);
        return _mm512_or_si512(lo, _mm512_and_si512(hi, m30));
    }
    int c = p / 16, r = p % 16;
    __m512i V = KLD(64 * (8 * c + r % 8));
    __m512i u = r < 8 ? _mm512_and_si512(V, m4) : _mm512_and_si512(_mm512_srli_epi16(V, 4), m4);
    if (type == RT_Q5_K) {
        int bit = 2 * c + (r >= 8);
        __m512i H = KLD(2048 + 64 * (r % 8));
        __m512i h = bit < 4 ? _mm512_slli_epi16(H, 4 - bit) : _mm512_srli_epi16(H, bit - 4);
        u = _mm512_or_si512(u, _mm512_and_si512(h, _mm512_set1_epi8(0x10)));
    }
#undef KLD
    return u;
}

/* the packed k-quant decode prefetches as prefetch_plan says (T1 4 KiB on
 * AMD: 8 KiB before; on LFM2-1.2B shapes, 2 threads, Zen 5, interleaved in
 * one process by dev/mtbench: q4_K 1.01-1.10x, q6_K 0.99-1.03x; 2, 3 and
 * 6 KiB were no better.  On Sapphire Rapids the q4_K kernel's best T1 was
 * 1 KiB of 0.5-16 KiB on every LFM2 shape, +8-13% over 4 KiB, and LFM2-1.2B
 * Q4_K_M decode ran 7% faster in alternating variant pairs, session 12;
 * the T0 prefetches came in session 15). */
static inline size_t ktile_bytes(int type) { return 16 * rt_row_bytes(type, RT_QKK); }

/* an activation dword in every lane */
static inline __m512i bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* one token against one band: the 16 rows' sums, in k_tile16's integer and
 * float steps (so k_row_token's bits per row) */
static inline __attribute__((always_inline)) __m512 kband_token(const int type, const uint8_t *band, int nsb,
                                                                const rt_act *a, int t, pf_plan pp)
{
    const size_t tb = ktile_bytes(type);
    const int8_t *q = a->kq + (size_t)t * a->K;
    const int16_t *bs = a->kbs + (size_t)t * nsb * 16;
    const float *yd = a->kd + (size_t)t * nsb;
    const __m512i m4 = _mm512_set1_epi8(0x0f), m33 = _mm512_set1_epi8(0x33), b4 = _mm512_set1_epi8(0x10);
    __m512 acc = _mm512_setzero_ps();
    for (int s = 0; s < nsb; s++) {
        const uint8_t *tl = band + (size_t)s * tb;
        for (size_t o = 0; o < tb; o += 64) _mm_prefetch((const char *)(tl + pp.t1 + o), _MM_HINT_T1);
        if (pp.t0)
            for (size_t o = 0; o < tb; o += 64) _mm_prefetch((const char *)(tl + pp.t0 + o), _MM_HINT_T0);
        const int8_t *qs = q + (size_t)s * RT_QKK;
        /* the dot products first, the scales after: fewer live registers */
        __m512i ga[16];
        if (type == RT_Q6_K) {
            for (int g = 0; g < 16; g++) ga[g] = _mm512_setzero_si512();
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++) {   /* ql pair, qh vector of half n = j / 8, l = j % 8 */
                const int n = j / 8, l = j % 8;
                __m512i L0 = _mm512_loadu_si512((const void *)(tl + 64 * (16 * n + l)));
                __m512i L1 = _mm512_loadu_si512((const void *)(tl + 64 * (16 * n + 8 + l)));
                __m512i H = _mm512_loadu_si512((const void *)(tl + 2048 + 64 * (8 * n + l)));
                /* u = low nibble | high pair << 4: the pairs of u1, u3 (bits 0-1, 4-5 of H)
                 * and of u2, u4 (bits 2-3, 6-7) masked apart once, so each shifted copy
                 * has its pair at bits 4-5 and zeros above, and one bit select
                 * (vpternlogd 0xE4: m4 ? nibble : pair) builds each u */
                __m512i Hm = _mm512_and_si512(H, m33), Hn = _mm512_andnot_si512(m33, H);
                __m512i u1 = _mm512_ternarylogic_epi32(L0, _mm512_slli_epi16(Hm, 4), m4, 0xE4);
                __m512i u2 = _mm512_ternarylogic_epi32(L1, _mm512_slli_epi16(Hn, 2), m4, 0xE4);
                __m512i u3 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(L0, 4), Hm, m4, 0xE4);
                __m512i u4 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(L1, 4), _mm512_srli_epi16(Hn, 2), m4, 0xE4);
                const int8_t *qn = qs + 128 * n + 4 * l;
                ga[8 * n + l / 4] = _mm512_dpbusd_epi32(ga[8 * n + l / 4], u1, bcast4(qn));
                ga[8 * n + 2 + l / 4] = _mm512_dpbusd_epi32(ga[8 * n + 2 + l / 4], u2, bcast4(qn + 32));
                ga[8 * n + 4 + l / 4] = _mm512_dpbusd_epi32(ga[8 * n + 4 + l / 4], u3, bcast4(qn + 64));
                ga[8 * n + 6 + l / 4] = _mm512_dpbusd_epi32(ga[8 * n + 6 + l / 4], u4, bcast4(qn + 96));
            }
        } else {
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {   /* sub-blocks 2c (low nibbles) and 2c+1 (high) */
                __m512i dl = _mm512_setzero_si512(), dh = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int r = 0; r < 8; r++) {
                    __m512i V = _mm512_loadu_si512((const void *)(tl + 64 * (8 * c + r)));
                    __m512i lo = _mm512_and_si512(V, m4);
                    if (type == RT_Q5_K) {
                        /* fifth bits: bit 2c (low) / 2c+1 (high) of qh byte l to bit 4 */
                        __m512i H = _mm512_loadu_si512((const void *)(tl + 2048 + 64 * r));
                        __m512i hl = c == 0 ? _mm512_slli_epi16(H, 4) : c == 1 ? _mm512_slli_epi16(H, 2)
                                   : c == 2 ? H : _mm512_srli_epi16(H, 2);
                        __m512i hh = c == 0 ? _mm512_slli_epi16(H, 3) : c == 1 ? _mm512_slli_epi16(H, 1)
                                   : c == 2 ? _mm512_srli_epi16(H, 1) : _mm512_srli_epi16(H, 3);
                        lo = _mm512_or_si512(lo, _mm512_and_si512(hl, b4));
                        __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(V, 4), m4), _mm512_and_si512(hh, b4));
                        dh = _mm512_dpbusd_epi32(dh, hi, bcast4(qs + 64 * c + 32 + 4 * r));
                    } else {
                        /* high nibbles in place (16 u): their sums are exact multiples of 16 */
                        dh = _mm512_dpbusd_epi32(dh, _mm512_andnot_si512(m4, V), bcast4(qs + 64 * c + 32 + 4 * r));
                    }
                    dl = _mm512_dpbusd_epi32(dl, lo, bcast4(qs + 64 * c + 4 * r));
                }
                ga[4 * c] = dl;   /* groups 4c, 4c+1 share sub-block 2c's scale */
                ga[4 * c + 2] = type == RT_Q4_K ? _mm512_srai_epi32(dh, 4) : dh;
            }
        }
        __m512i sc[16], cw[8];
        __m512 dv, dmv;
        ktile_scales(type, tl, sc, cw, &dv, &dmv);
        __m512i is = _mm512_setzero_si512();
        for (int g = 0; g < 16; g += type == RT_Q6_K ? 1 : 2) is = _mm512_add_epi32(is, _mm512_mullo_epi32(ga[g], sc[g]));
        __m512i corr = _mm512_setzero_si512();
        for (int h = 0; h < 8; h++) {
            int32_t pr;
            memcpy(&pr, bs + (size_t)s * 16 + 2 * h, 4);
            corr = _mm512_add_epi32(corr, _mm512_madd_epi16(cw[h], _mm512_set1_epi32(pr)));
        }
        __m512 y = _mm512_set1_ps(yd[s]);
        if (type == RT_Q6_K) {
            __m512i v = _mm512_sub_epi32(is, _mm512_slli_epi32(corr, 5));
            acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(y, dv), _mm512_cvtepi32_ps(v)));
        } else {
            acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(y, dv), _mm512_cvtepi32_ps(is)));
            acc = _mm512_sub_ps(acc, _mm512_mul_ps(_mm512_mul_ps(y, dmv), _mm512_cvtepi32_ps(corr)));
        }
    }
    return acc;
}

/* the bands of a packed k-quant matrix that rows [r0, r1) touch, tokens
 * [t0, t1) one by one; rows of the band outside the range are not stored */
static void mm_kquant_packed_decode(const rt_mat *w, const rt_act *a, int r0, int r1, int t0, int t1,
                                    float *y, size_t ldy)
{
    const int nsb = w->cols / RT_QKK;
    const pf_plan pp = prefetch_plan(w->type);
    for (int rb = r0 / 16 * 16; rb < r1; rb += 16) {
        const uint8_t *band = w->data + (size_t)rb * w->row_bytes;
        int lo = r0 > rb ? r0 - rb : 0, hi = r1 - rb < 16 ? r1 - rb : 16;
        __mmask16 m = (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
        for (int t = t0; t < t1; t++) {
            __m512 v = w->type == RT_Q4_K ? kband_token(RT_Q4_K, band, nsb, a, t, pp)
                     : w->type == RT_Q5_K ? kband_token(RT_Q5_K, band, nsb, a, t, pp)
                                          : kband_token(RT_Q6_K, band, nsb, a, t, pp);
            _mm512_mask_storeu_ps(y + (size_t)t * ldy + rb, m, v);
        }
    }
}

/* kblk of one packed band (prefill): the same values k_block_unpack makes */
static void k_block_from_tiles(int type, const uint8_t *band, int nsb, const kblk *k)
{
    const size_t tb = ktile_bytes(type);
    for (int s = 0; s < nsb; s++) {
        const uint8_t *tl = band + (size_t)s * tb;
        for (int p = 0; p < 64; p++)
            _mm512_store_si512((void *)(k->u + ((size_t)s * 64 + p) * 64), ktile_u(type, tl, p));
        __m512i sc[16], cw[8];
        __m512 dv, dmv;
        ktile_scales(type, tl, sc, cw, &dv, &dmv);
        for (int g = 0; g < 16; g++) _mm512_store_si512((void *)(k->sc + ((size_t)s * 16 + g) * KRB), sc[g]);
        for (int h = 0; h < 8; h++) _mm512_store_si512((void *)(k->cw + ((size_t)s * 8 + h) * KRB), cw[h]);
        _mm512_store_ps(k->d + (size_t)s * KRB, dv);
        _mm512_store_ps(k->dm + (size_t)s * KRB, dmv);
    }
}

static int mm_kquant_rows16(const rt_mat *w, const rt_act *a, int r0, int r1, int t0, int t1,
                            float *y, size_t ldy)
{
    int K = w->cols, nsb = K / RT_QKK;
    size_t need = kblk_floats(K);
    if (need > tl_cap3) {
        free(tl_buf3);
        tl_buf3 = rt_alloc64(need * sizeof(float));
        tl_cap3 = tl_buf3 ? need : 0;
    }
    if (!tl_buf3) return -1;
    kblk k;
    k.u = (uint8_t *)tl_buf3;                           /* 64-byte aligned */
    k.sc = (int32_t *)(void *)(k.u + (size_t)nsb * 64 * 64);
    k.cw = k.sc + (size_t)nsb * 16 * KRB;
    k.d = (float *)(void *)(k.cw + (size_t)nsb * 8 * KRB);
    k.dm = k.d + (size_t)nsb * KRB;
    k.tmp = (uint8_t *)(k.dm + (size_t)nsb * KRB);
    /* packed: whole bands from their tiles (lanes outside [r0, r1) not
     * stored), then the rows past the last band in the ggml layout */
    const int pk_end = w->packed ? w->rows / 16 * 16 : 0;
    for (int r = r0; r < r1;) {
        int nr, lo = 0;
        if (r < pk_end) {
            int rb = r / 16 * 16, hi = r1 - rb < 16 ? r1 - rb : 16;
            lo = r - rb;
            nr = hi;
            r = rb;
            k_block_from_tiles(w->type, w->data + (size_t)rb * w->row_bytes, nsb, &k);
        } else {
            nr = r1 - r < KRB ? r1 - r : KRB;
            k_block_unpack(w, r, nr, nsb, &k);
        }
        __mmask16 m = (__mmask16)(((1u << nr) - 1u) & ~((1u << lo) - 1u));
        int t = t0;
        if (w->type == RT_Q6_K) {
            for (; t + KTT <= t1; t += KTT) k_tile16(RT_Q6_K, &k, nsb, a, t, KTT, y, ldy, r, m);
            for (; t < t1; t++) k_tile16(RT_Q6_K, &k, nsb, a, t, 1, y, ldy, r, m);
        } else {
            for (; t + KTT <= t1; t += KTT) k_tile16(RT_Q4_K, &k, nsb, a, t, KTT, y, ldy, r, m);
            for (; t < t1; t++) k_tile16(RT_Q4_K, &k, nsb, a, t, 1, y, ldy, r, m);
        }
        r += nr;
    }
    return 0;
}
#endif

#if defined(RT_SIMD_AVX2)
/* AVX2 k-quant prefill: bands of 8 rows with the rows in the lanes (the
 * AVX-512 path's 16-row lane blocks at half the width, without repacking
 * the weights).  A band is unpacked once per call (k_unpack_row per row)
 * into, per super-block: 64 vectors of element values u (dword lane i of
 * vector j = u[4j..4j+3] of row i), 16 vectors of the group scales as int16
 * pairs (sc, sc), 8 vectors of the q4_K/q5_K mins as (m, m) (q6_K: the scale
 * pairs (sc_2j, sc_2j+1) for the offset-32 sums), and the rows' d and dmin.
 * Per token and super-block each activation dword is broadcast against the
 * 64 u vectors (vpmaddubsw); a group's 4 products are summed in int16 (q4_K
 * |4 x 2 x 15 x 128| and q5_K |4 x 2 x 31 x 128| < 2^15; q6_K 2 at a time)
 * and weighted with vpmaddwd by the scale pairs; the mins (or offsets) take
 * one vpmaddwd per pair of block sums.  The integer sums are those of
 * k_row_token, exact, and each lane runs k_row_token's float steps in its
 * order: the same bits. */
#define KB_ROWS 8
#define KB_NT 4
#define KB_SB_BYTES (64 * 32 + 16 * 32 + 8 * 32 + 2 * 32)   /* u, scales, mins, d + dmin */
static void kband8_pack(const rt_mat *w, int r, int nr, int nsb, const kunp *k, uint8_t *band)
{
    const int type = w->type;
    memset(band, 0, (size_t)nsb * KB_SB_BYTES);
    for (int i = 0; i < nr; i++) {
        k_unpack_row(type, w->data + (size_t)(r + i) * w->row_bytes, nsb, k);
        for (int s = 0; s < nsb; s++) {
            uint8_t *sb = band + (size_t)s * KB_SB_BYTES;
            int16_t *scv = (int16_t *)(void *)(sb + 2048), *mnv = (int16_t *)(void *)(sb + 2048 + 512);
            float *dv = (float *)(void *)(sb + 2048 + 512 + 256);
            const uint8_t *u = k->u + (size_t)s * RT_QKK;
            for (int j = 0; j < 64; j++) memcpy(sb + 32 * j + 4 * i, u + 4 * j, 4);
            for (int g = 0; g < 16; g++) scv[16 * g + 2 * i] = scv[16 * g + 2 * i + 1] = k->sc[(size_t)s * 16 + g];
            for (int j = 0; j < 8; j++) {
                if (type == RT_Q6_K) {
                    mnv[16 * j + 2 * i] = k->sc[(size_t)s * 16 + 2 * j];
                    mnv[16 * j + 2 * i + 1] = k->sc[(size_t)s * 16 + 2 * j + 1];
                } else {
                    mnv[16 * j + 2 * i] = mnv[16 * j + 2 * i + 1] = k->mn[(size_t)s * 8 + j];
                }
            }
            dv[i] = k->d[s];
            dv[8 + i] = k->dm[s];
        }
    }
}

static inline __attribute__((always_inline)) void kband8_tile(const int type, const uint8_t *band, int nsb, const rt_act *a,
                                                             int t, const int nt, int r, int nr, float *y, size_t ldy)
{
    const size_t K = (size_t)a->K;
    __m256 acc[KB_NT];
    for (int k = 0; k < nt; k++) acc[k] = _mm256_setzero_ps();
    for (int s = 0; s < nsb; s++) {
        const uint8_t *sb = band + (size_t)s * KB_SB_BYTES;
        const __m256i *Z = (const __m256i *)(const void *)sb;
        const __m256i *SC = (const __m256i *)(const void *)(sb + 2048), *MN = (const __m256i *)(const void *)(sb + 2560);
        const float *dv = (const float *)(const void *)(sb + 2816);
        __m256i isum[KB_NT];
        for (int k = 0; k < nt; k++) isum[k] = _mm256_setzero_si256();
        for (int g = 0; g < 16; g++) {
            const __m256i scg = _mm256_load_si256(SC + g);
            for (int h = 0; h < (type == RT_Q6_K ? 2 : 1); h++) {
                const int n4 = type == RT_Q6_K ? 2 : 4, j0 = 4 * g + 2 * h;
                __m256i s16[KB_NT];
                for (int k = 0; k < nt; k++) s16[k] = _mm256_setzero_si256();
                for (int jj = 0; jj < n4; jj++) {
                    const __m256i z = _mm256_load_si256(Z + j0 + jj);
                    for (int k = 0; k < nt; k++) {
                        int32_t v;
                        memcpy(&v, a->kq + (size_t)(t + k) * K + (size_t)s * RT_QKK + 4 * (j0 + jj), 4);
                        s16[k] = _mm256_add_epi16(s16[k], _mm256_maddubs_epi16(z, _mm256_set1_epi32(v)));
                    }
                }
                for (int k = 0; k < nt; k++) isum[k] = _mm256_add_epi32(isum[k], _mm256_madd_epi16(s16[k], scg));
            }
        }
        const __m256 d = _mm256_load_ps(dv), dm = _mm256_load_ps(dv + 8);
        for (int k = 0; k < nt; k++) {
            const int16_t *bs = a->kbs + ((size_t)(t + k) * nsb + s) * 16;
            __m256i c = _mm256_setzero_si256();
            for (int j = 0; j < 8; j++) {
                int32_t v;
                memcpy(&v, bs + 2 * j, 4);
                c = _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_load_si256(MN + j), _mm256_set1_epi32(v)));
            }
            const __m256 yd = _mm256_set1_ps(a->kd[(size_t)(t + k) * nsb + s]);
            if (type == RT_Q6_K) {
                __m256i is = _mm256_sub_epi32(isum[k], _mm256_slli_epi32(c, 5));
                acc[k] = _mm256_add_ps(acc[k], _mm256_mul_ps(_mm256_mul_ps(yd, d), _mm256_cvtepi32_ps(is)));
            } else {
                acc[k] = _mm256_add_ps(acc[k], _mm256_mul_ps(_mm256_mul_ps(yd, d), _mm256_cvtepi32_ps(isum[k])));
                acc[k] = _mm256_sub_ps(acc[k], _mm256_mul_ps(_mm256_mul_ps(yd, dm), _mm256_cvtepi32_ps(c)));
            }
        }
    }
    for (int k = 0; k < nt; k++) {
        float o[8];
        _mm256_storeu_ps(o, acc[k]);
        for (int i = 0; i < nr; i++) y[(size_t)(t + k) * ldy + r + i] = o[i];
    }
}

static inline __attribute__((always_inline)) void kband8_tokens(const int type, const uint8_t *band, int nsb,
                                                               const rt_act *a, int t0, int t1, int r, int nr,
                                                               float *y, size_t ldy)
{
    int t = t0;
    for (; t + KB_NT <= t1; t += KB_NT) kband8_tile(type, band, nsb, a, t, KB_NT, r, nr, y, ldy);
    for (; t < t1; t++) kband8_tile(type, band, nsb, a, t, 1, r, nr, y, ldy);
}

/* rows [r0, r1) in bands of 8; -1 without scratch (the caller's row path runs) */
static int mm_kquant_band8(const rt_mat *w, const rt_act *a, int r0, int r1, int t0, int t1, float *y, size_t ldy,
                           const kunp *k)
{
    const int nsb = w->cols / RT_QKK;
    size_t need = (size_t)nsb * KB_SB_BYTES / sizeof(float) + 16;
    if (need > tl_cap3) {
        free(tl_buf3);
        tl_buf3 = rt_alloc64(need * sizeof(float));
        tl_cap3 = tl_buf3 ? need : 0;
    }
    if (!tl_buf3) return -1;
    uint8_t *band = (uint8_t *)(void *)tl_buf3;
    for (int r = r0; r < r1; r += KB_ROWS) {
        const int nr = r1 - r < KB_ROWS ? r1 - r : KB_ROWS;
        kband8_pack(w, r, nr, nsb, k, band);
        if (w->type == RT_Q4_K) kband8_tokens(RT_Q4_K, band, nsb, a, t0, t1, r, nr, y, ldy);
        else if (w->type == RT_Q5_K) kband8_tokens(RT_Q5_K, band, nsb, a, t0, t1, r, nr, y, ldy);
        else kband8_tokens(RT_Q6_K, band, nsb, a, t0, t1, r, nr, y, ldy);
    }
    return 0;
}
#endif

static void mm_kquant(const rt_mat *w, const rt_act *a, int r0, int r1, int t0, int t1,
                      float *y, size_t ldy)
{
    int K = w->cols, nsb = K / RT_QKK;
#if defined(RT_SIMD_AVX512) || defined(RT_SIMD_AVX2) || defined(RT_SIMD_NEON)
    /* a few tokens (decode): straight from the packed bits; more (prefill):
     * unpack each row once and reuse it for every token (1.6x faster for
     * q4_K at prompt 128 on LFM2-350M shapes, while the direct kernels decode
     * 1.3x faster); both give the same bits */
    if (t1 - t0 < 4) {
#if defined(RT_SIMD_AVX512)
        if (w->packed) {   /* whole bands from their tiles, then the ggml-layout rows */
            int pe = w->rows / 16 * 16, e = r1 < pe ? r1 : pe;
            if (r0 < e) mm_kquant_packed_decode(w, a, r0, e, t0, t1, y, ldy);
            if (r0 < pe) r0 = pe;
        }
#endif
#if defined(RT_SIMD_AVX2)
        for (; r0 + 4 <= r1; r0 += 4) {
            const uint8_t *row = w->data + (size_t)r0 * w->row_bytes;
            for (int t = t0; t < t1; t++) {
                float o4[4];
                if (w->type == RT_Q4_K) q45k_rows4(RT_Q4_K, row, w->row_bytes, nsb, a, t, o4);
                else if (w->type == RT_Q5_K) q45k_rows4(RT_Q5_K, row, w->row_bytes, nsb, a, t, o4);
                else q6k_rows4(row, w->row_bytes, nsb, a, t, o4);
                for (int i = 0; i < 4; i++) y[(size_t)t * ldy + r0 + i] = o4[i];
            }
        }
#endif
        for (int r = r0; r < r1; r++) {
            const uint8_t *row = w->data + (size_t)r * w->row_bytes;
            for (int t = t0; t < t1; t++)
                y[(size_t)t * ldy + r] = w->type == RT_Q4_K ? q4k_row_token(row, nsb, a, t)
                                       : w->type == RT_Q5_K ? q5k_row_token(row, nsb, a, t)
                                                            : q6k_row_token(row, nsb, a, t);
        }
        return;
    }
#endif
#if defined(RT_SIMD_AVX512)
    if (mm_kquant_rows16(w, a, r0, r1, t0, t1, y, ldy) == 0) return;
#endif
    /* u (K bytes), sc (K/16 int16), mn (K/32 int16), d and dm (nsb floats) */
    size_t need = (size_t)K + (size_t)K / 8 + (size_t)K / 16 + (size_t)nsb * 8 + 64;
    float *buf = scratch(need / 4 + 1);
    if (!buf) {   /* out of memory for scratch: NaN marks the rows (never silent) */
        for (int t = t0; t < t1; t++)
            for (int r = r0; r < r1; r++) y[(size_t)t * ldy + r] = NAN;
        return;
    }
    kunp k;
    k.d = buf; k.dm = buf + nsb;
    k.u = (uint8_t *)(buf + 2 * (size_t)nsb);
    k.sc = (int16_t *)(void *)(k.u + K);
    k.mn = k.sc + K / 16;
#if defined(RT_SIMD_AVX2)
    if (mm_kquant_band8(w, a, r0, r1, t0, t1, y, ldy, &k) == 0) return;
#endif
    for (int r = r0; r < r1; r++) {
        k_unpack_row(w->type, w->data + (size_t)r * w->row_bytes, nsb, &k);
        int t = t0;
#if defined(RT_SIMD_AVX512) || defined(RT_SIMD_AVX2) || defined(RT_SIMD_NEON)
        for (; t + 4 <= t1; t += 4) {
            float o4[4];
            k_row_tokens4(w->type, &k, nsb, a, t, o4);
            for (int j = 0; j < 4; j++) y[(size_t)(t + j) * ldy + r] = o4[j];
        }
#endif
        for (; t < t1; t++) y[(size_t)t * ldy + r] = k_row_token(w->type, &k, nsb, a, t);
    }
}

void rt_mm_rows(const rt_mat *w, const rt_act *a, int r0, int r1, int t0, int t1,
                float *y, size_t ldy)
{
    if (r0 >= r1 || t0 >= t1) return;
    if (w->type == RT_F32 || w->type == RT_F16) mm_float(w, a, r0, r1, t0, t1, y, ldy);
    else if (rt_type_is_k(w->type)) mm_kquant(w, a, r0, r1, t0, t1, y, ldy);
    else mm_quant(w, a, r0, r1, t0, t1, y, ldy);
}

/* ---------------------------------------------------------------------- */
/* parallel driver                                                          */

typedef struct mm_job { rt_act *a; const rt_mm_item *items; int n; } mm_job;

/* rows [b, e) of the matrices of the job laid end to end */
static void mm_range(void *ctx, int b, int e)
{
    mm_job *j = ctx;
    int base = 0;
    for (int i = 0; i < j->n && b < e; i++) {
        const rt_mm_item *it = &j->items[i];
        int rows = it->w->rows;
        int lo = b > base ? b - base : 0, hi = e - base < rows ? e - base : rows;
        if (lo < hi) rt_mm_rows(it->w, j->a, lo, hi, 0, j->a->T, it->y, it->ldy);
        base += rows;
    }
}

FILE *rt_act_trace;

static void trace_act(const rt_act *a)
{
    int32_t hdr[2] = { a->T, a->K };
    fwrite(hdr, sizeof hdr[0], 2, rt_act_trace);
    for (int t = 0; t < a->T; t++) fwrite(a->x + (size_t)t * a->ldx, sizeof(float), (size_t)a->K, rt_act_trace);
}

static void q_range(void *ctx, int b, int e) { rt_act_quantize(ctx, b, e); }
static void qk_range(void *ctx, int b, int e) { rt_act_quantize_k(ctx, b, e); }

void rt_matmul(rt_pool *pool, rt_act *a, const rt_mm_item *items, int n)
{
    int need_q = 0, need_k = 0, total = 0;
    for (int i = 0; i < n; i++) {
        if (items[i].w->type == RT_Q8_0 || items[i].w->type == RT_Q4_0) need_q = 1;
        if (rt_type_is_k(items[i].w->type)) need_k = 1;
        total += items[i].w->rows;
    }
    if (need_q && !a->quantised) {
        rt_pool_for(pool, a->T, 4, q_range, a);
        a->quantised = 1;
        if (rt_act_trace) trace_act(a);
    }
    if (need_k && !a->kquantised) {
        assert(a->kq && a->K % RT_QKK == 0);
        rt_pool_for(pool, a->T, 4, qk_range, a);
        a->kquantised = 1;
    }
    mm_job j = { a, items, n };
    /* the pool hands out guided ranges (large first); 16 rows is the
     * smallest: one AVX-512 prefill row block, a few KiB of decode weights */
    rt_pool_for(pool, total, 16, mm_range, &j);
}

/* ---------------------------------------------------------------------- */
/* attention                                                                */

/* nq queries against one key block (see rt.h); nq is a constant after
 * inlining, so the accumulators live in registers */
static inline __attribute__((always_inline)) void scores_n(const float *const *q, const int nq, const void *kt,
                                                           int kv_f16, int hd, float *out, size_t ostride)
{
    enum { NV = RT_KB / FV };
    fvec acc[RT_AQ][NV];
    for (int i = 0; i < nq; i++)
        for (int v = 0; v < NV; v++) acc[i][v] = fv_zero();
    for (int d = 0; d < hd; d++) {
        fvec k[NV];
        for (int v = 0; v < NV; v++)
            k[v] = kv_f16 ? fv_ldw((const uint8_t *)kt + (size_t)d * RT_KB * 2, v * FV, RT_F16)
                          : fv_ld((const float *)kt + (size_t)d * RT_KB + v * FV);
        for (int i = 0; i < nq; i++) {
            fvec qd = fv_set1(q[i][d]);
            for (int v = 0; v < NV; v++) acc[i][v] = fv_fma(qd, k[v], acc[i][v]);
        }
    }
    for (int i = 0; i < nq; i++)
        for (int v = 0; v < NV; v++) fv_st(out + (size_t)i * ostride + v * FV, acc[i][v]);
}

void rt_attn_scores(const float *const *q, int nq, const void *kt, int kv_f16, int hd, float *out, size_t ostride)
{
    switch (nq) {
    case 1: scores_n(q, 1, kt, kv_f16, hd, out, ostride); break;
    case 2: scores_n(q, 2, kt, kv_f16, hd, out, ostride); break;
    case 3: scores_n(q, 3, kt, kv_f16, hd, out, ostride); break;
    case 4: scores_n(q, 4, kt, kv_f16, hd, out, ostride); break;
    case 5: scores_n(q, 5, kt, kv_f16, hd, out, ostride); break;
    case 6: scores_n(q, 6, kt, kv_f16, hd, out, ostride); break;
    case 7: scores_n(q, 7, kt, kv_f16, hd, out, ostride); break;
    default: scores_n(q, RT_AQ, kt, kv_f16, hd, out, ostride); break;
    }
}

/* out_i[d] = sum_p w_i[p] v[p][d] for nq queries sharing each value load;
 * 32 components of d at a time stay in registers */
#define VS 32
static inline __attribute__((always_inline)) void values_n(float *const *out, const int nq, const float *w, size_t wstride,
                                                           const void *v, int kv_f16, int n, int hd)
{
    enum { NV = VS / FV };
    const size_t rb = (size_t)hd * (kv_f16 ? 2 : 4);
    int d0 = 0;
    for (; d0 + VS <= hd; d0 += VS) {
        fvec acc[RT_AQ][NV];
        for (int i = 0; i < nq; i++)
            for (int u = 0; u < NV; u++) acc[i][u] = fv_zero();
        for (int p = 0; p < n; p++) {
            const uint8_t *row = (const uint8_t *)v + (size_t)p * rb;
            fvec x[NV];
            for (int u = 0; u < NV; u++) x[u] = fv_ldw(row, d0 + u * FV, kv_f16 ? RT_F16 : RT_F32);
            for (int i = 0; i < nq; i++) {
                fvec wp = fv_set1(w[(size_t)i * wstride + p]);
                for (int u = 0; u < NV; u++) acc[i][u] = fv_fma(wp, x[u], acc[i][u]);
            }
        }
        for (int i = 0; i < nq; i++)
            for (int u = 0; u < NV; u++) fv_st(out[i] + d0 + u * FV, acc[i][u]);
    }
    for (int i = 0; i < nq; i++)
        for (int d = d0; d < hd; d++) {
            float a = 0.0f;
            for (int p = 0; p < n; p++)
                a += w[(size_t)i * wstride + p] * w_scalar((const uint8_t *)v + (size_t)p * rb, d, kv_f16 ? RT_F16 : RT_F32);
            out[i][d] = a;
        }
}

void rt_attn_values(float *const *out, int nq, const float *w, size_t wstride, const void *v, int kv_f16, int n, int hd)
{
    switch (nq) {
    case 1: values_n(out, 1, w, wstride, v, kv_f16, n, hd); break;
    case 2: values_n(out, 2, w, wstride, v, kv_f16, n, hd); break;
    case 3: values_n(out, 3, w, wstride, v, kv_f16, n, hd); break;
    case 4: values_n(out, 4, w, wstride, v, kv_f16, n, hd); break;
    case 5: values_n(out, 5, w, wstride, v, kv_f16, n, hd); break;
    case 6: values_n(out, 6, w, wstride, v, kv_f16, n, hd); break;
    case 7: values_n(out, 7, w, wstride, v, kv_f16, n, hd); break;
    default: values_n(out, RT_AQ, w, wstride, v, kv_f16, n, hd); break;
    }
}

/* ---------------------------------------------------------------------- */
/* packing and row access                                                    */

int rt_mat_packable(const rt_mat *m)
{
#if defined(RT_SIMD_AVX512)
    if (rt_type_is_k(m->type)) return m->rows >= 16 && m->cols % RT_QKK == 0 && !m->packed;
    return (m->type == RT_Q4_0 || m->type == RT_Q8_0) && m->cols / RT_QK >= 16 && !m->packed;
#else
    (void)m;
    return 0;
#endif
}

int rt_mat_pack_rows(const rt_mat *m, int r0, int r1)
{
#if defined(RT_SIMD_AVX512)
    if (rt_type_is_k(m->type)) {   /* the whole bands that start in [r0, r1) */
        uint8_t *tmp = NULL;
        for (int rb = (r0 + 15) / 16 * 16; rb < r1 && rb + 16 <= m->rows; rb += 16) {
            if (!tmp && !(tmp = malloc(16 * m->row_bytes))) return -1;
            kpack_band((uint8_t *)(uintptr_t)(m->data + (size_t)rb * m->row_bytes), m->type, m->cols / RT_QKK, tmp);
        }
        free(tmp);
        return 0;
    }
    const size_t bb = m->type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
    const int ng = m->cols / RT_QK / 16;
    for (int r = r0; r < r1; r++) {
        uint8_t *row = (uint8_t *)(uintptr_t)(m->data + (size_t)r * m->row_bytes);
        for (int g = 0; g < ng; g++) pack_group(row + (size_t)g * 16 * bb, m->type);
    }
#else
    (void)m; (void)r0; (void)r1;
#endif
    return 0;
}

void rt_mat_row_f32(const rt_mat *m, int r, float *y)
{
    const uint8_t *row = m->data + (size_t)r * m->row_bytes;
#if defined(RT_SIMD_AVX512)
    if (m->packed && rt_type_is_k(m->type) && r < m->rows / 16 * 16) {
        const size_t bb = rt_row_bytes(m->type, RT_QKK);
        const uint8_t *band = m->data + (size_t)(r / 16 * 16) * m->row_bytes;
        uint8_t blk[RT_Q6K_BYTES];
        for (int s = 0; s < m->cols / RT_QKK; s++) {
            ktile_row(m->type, (uint8_t *)(uintptr_t)(band + (size_t)s * 16 * bb), blk, r % 16, 1);
            rt_dequantize_row(m->type, blk, y + (size_t)s * RT_QKK, RT_QKK);
        }
        return;
    }
    if (m->packed && !rt_type_is_k(m->type)) {
        const size_t bb = m->type == RT_Q4_0 ? RT_Q4_BYTES : RT_Q8_BYTES;
        const int ng = m->cols / RT_QK / 16;
        uint8_t tmp[16 * RT_Q8_BYTES];
        for (int g = 0; g < ng; g++) {
            unpack_group(row + (size_t)g * 16 * bb, m->type, tmp);
            rt_dequantize_row(m->type, tmp, y + (size_t)g * 16 * RT_QK, 16 * RT_QK);
        }
        if (ng * 16 * RT_QK < m->cols)
            rt_dequantize_row(m->type, row + (size_t)ng * 16 * bb, y + (size_t)ng * 16 * RT_QK, m->cols - ng * 16 * RT_QK);
        return;
    }
#endif
    rt_dequantize_row(m->type, row, y, m->cols);
}
