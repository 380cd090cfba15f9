/* rt_quant.c - number formats of the runtime: exact f16<->f32 conversion, ggml
 * q8_0 / q4_0 block quantisation (reference rounding of ggml's *_ref functions),
 * on-the-fly q8 quantisation of activations, and a vectorisable exp. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>

#define RT_NO_MODEL   /* the same object for every genome (rt.h) */
#include "rt.h"

/* 64-byte aligned, rounded up to a multiple of 64; posix_memalign rather than
 * aligned_alloc, which old Android API levels lack.  Free with free(). */
void *rt_alloc64(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, (bytes + 63) / 64 * 64 + 64)) return NULL;
    return p;
}

const char *rt_type_name(int type)
{
    switch (type) {
    case RT_F32: return "f32";
    case RT_F16: return "f16";
    case RT_Q8_0: return "q8_0";
    case RT_Q4_0: return "q4_0";
    case RT_BF16: return "bf16";
    case RT_Q4_K: return "q4_k";
    case RT_Q5_K: return "q5_k";
    case RT_Q6_K: return "q6_k";
    case RT_MIX_Q4_K_M: return "q4_k_m";
    case RT_MIX_Q5_K_M: return "q5_k_m";
    default: return "unknown";
    }
}

int rt_type_parse(const char *s)
{
    if (!strcmp(s, "f32")) return RT_F32;
    if (!strcmp(s, "f16")) return RT_F16;
    if (!strcmp(s, "q8_0")) return RT_Q8_0;
    if (!strcmp(s, "q4_0")) return RT_Q4_0;
    if (!strcmp(s, "q4_k") || !strcmp(s, "q4_K")) return RT_Q4_K;
    if (!strcmp(s, "q5_k") || !strcmp(s, "q5_K")) return RT_Q5_K;
    if (!strcmp(s, "q6_k") || !strcmp(s, "q6_K")) return RT_Q6_K;
    if (!strcmp(s, "q4_k_m") || !strcmp(s, "Q4_K_M")) return RT_MIX_Q4_K_M;
    if (!strcmp(s, "q5_k_m") || !strcmp(s, "Q5_K_M")) return RT_MIX_Q5_K_M;
    return -1;
}

int rt_type_supported(int type)
{
    return type == RT_F32 || type == RT_F16 || type == RT_Q8_0 || type == RT_Q4_0 || rt_type_is_k(type);
}

size_t rt_row_bytes(int type, int cols)
{
    switch (type) {
    case RT_F32: return (size_t)cols * 4;
    case RT_F16: return (size_t)cols * 2;
    case RT_BF16: return (size_t)cols * 2;
    case RT_Q8_0: return cols % RT_QK ? 0 : (size_t)cols / RT_QK * RT_Q8_BYTES;
    case RT_Q4_0: return cols % RT_QK ? 0 : (size_t)cols / RT_QK * RT_Q4_BYTES;
    case RT_Q4_K: return cols % RT_QKK ? 0 : (size_t)cols / RT_QKK * RT_Q4K_BYTES;
    case RT_Q5_K: return cols % RT_QKK ? 0 : (size_t)cols / RT_QKK * RT_Q5K_BYTES;
    case RT_Q6_K: return cols % RT_QKK ? 0 : (size_t)cols / RT_QKK * RT_Q6K_BYTES;
    default: return 0;
    }
}

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float rt_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign);
        int e = -1;
        do { mant <<= 1; e++; } while (!(mant & 0x400u));
        mant &= 0x3ffu;
        return bits_f32(sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13));
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000u | (mant << 13));
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

/* round to nearest even, like the hardware converters */
uint16_t rt_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) return (uint16_t)(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (x >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    if (x < 0x38800000u) {              /* subnormal or zero: let the FPU round */
        float v = bits_f32(x) + 0.5f;
        return (uint16_t)(sign | (f32_bits(v) - 0x3f000000u));
    }
    uint32_t odd = (x >> 13) & 1u;
    x += 0xc8000fffu + odd;
    return (uint16_t)(sign | (x >> 13));
}

static void quant_q8_0(const float *x, uint8_t *dst, int n)
{
    for (int b = 0; b < n / RT_QK; b++, x += RT_QK, dst += RT_Q8_BYTES) {
        float amax = 0.0f;
        for (int j = 0; j < RT_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t h = rt_f32_to_f16(d);
        memcpy(dst, &h, 2);
        for (int j = 0; j < RT_QK; j++) dst[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    }
}

static void quant_q4_0(const float *x, uint8_t *dst, int n)
{
    for (int b = 0; b < n / RT_QK; b++, x += RT_QK, dst += RT_Q4_BYTES) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < RT_QK; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t h = rt_f32_to_f16(d);
        memcpy(dst, &h, 2);
        for (int j = 0; j < RT_QK / 2; j++) {
            int x0 = (int)(int8_t)(x[j] * id + 8.5f), x1 = (int)(int8_t)(x[j + 16] * id + 8.5f);
            if (x0 > 15) x0 = 15;
            if (x1 > 15) x1 = 15;
            dst[2 + j] = (uint8_t)(x0 | (x1 << 4));
        }
    }
}


/* ---- k-quants ------------------------------------------------------------ */

/* round to nearest, ties to even, via the float adder (ggml's nearest_int);
 * |f| <= 2^22 for a meaningful result, never UB */
static inline int nearest_int(float f)
{
    float v = f + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* the 6-bit scale and min of sub-block j (0..7) of a q4_K / q5_K block */
void rt_k_scale_min(const uint8_t *sc, int j, int *d, int *m)
{
    if (j < 4) {
        *d = sc[j] & 63;
        *m = sc[j + 4] & 63;
    } else {
        *d = (sc[j + 4] & 15) | ((sc[j - 4] >> 6) << 4);
        *m = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
    }
}

static void k_put_scale_min(uint8_t *sc, int j, int d, int m)
{
    if (j < 4) {
        sc[j] = (uint8_t)((sc[j] & 0xc0) | d);
        sc[j + 4] = (uint8_t)((sc[j + 4] & 0xc0) | m);
    } else {
        sc[j + 4] = (uint8_t)((d & 15) | ((m & 15) << 4));
        sc[j - 4] = (uint8_t)((sc[j - 4] & 0x3f) | ((d >> 4) << 6));
        sc[j] = (uint8_t)((sc[j] & 0x3f) | ((m >> 4) << 6));
    }
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* q4_K (nmax 15) / q5_K (nmax 31) of one super-block: a plain quantiser for
 * synthetic weights (sub-block min/max, no search; ggml's quantize_row_q4_K_ref
 * searches for better scales, the format is the same) */
static void quant_k45(const float *x, uint8_t *b, int nmax)
{
    float scale[8], mn[8], smax = 0.0f, mmax = 0.0f;
    for (int j = 0; j < 8; j++) {
        float lo = 0.0f, hi = 0.0f;
        for (int l = 0; l < 32; l++) {
            float v = x[32 * j + l];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        scale[j] = (hi - lo) / (float)nmax;
        mn[j] = -lo;
        smax = scale[j] > smax ? scale[j] : smax;
        mmax = mn[j] > mmax ? mn[j] : mmax;
    }
    memset(b, 0, nmax == 15 ? RT_Q4K_BYTES : RT_Q5K_BYTES);
    uint16_t hd = rt_f32_to_f16(smax / 63.0f), hm = rt_f32_to_f16(mmax / 63.0f);
    memcpy(b, &hd, 2);
    memcpy(b + 2, &hm, 2);
    float d = rt_f16_to_f32(hd), dm = rt_f16_to_f32(hm);
    uint8_t q[RT_QKK];
    for (int j = 0; j < 8; j++) {
        int is = d > 0.0f ? clampi(nearest_int(scale[j] / d), 0, 63) : 0;
        int im = dm > 0.0f ? clampi(nearest_int(mn[j] / dm), 0, 63) : 0;
        k_put_scale_min(b + 4, j, is, im);
        float ed = d * (float)is, em = dm * (float)im;
        for (int l = 0; l < 32; l++)
            q[32 * j + l] = (uint8_t)(ed > 0.0f ? clampi(nearest_int((x[32 * j + l] + em) / ed), 0, nmax) : 0);
    }
    uint8_t *qs = b + (nmax == 15 ? 16 : 48), *qh = b + 16;
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
            qs[32 * c + l] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
            if (nmax == 31) qh[l] |= (uint8_t)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
        }
}

/* q6_K of one super-block (plain: per-16 scale = signed max / -32) */
static void quant_k6(const float *x, uint8_t *b)
{
    float sg[16], smax = 0.0f;
    for (int g = 0; g < 16; g++) {
        float amax = 0.0f, max = 0.0f;
        for (int l = 0; l < 16; l++)
            if (fabsf(x[16 * g + l]) > amax) { amax = fabsf(x[16 * g + l]); max = x[16 * g + l]; }
        sg[g] = max / -32.0f;
        smax = fabsf(sg[g]) > smax ? fabsf(sg[g]) : smax;
    }
    memset(b, 0, RT_Q6K_BYTES);
    uint16_t hd = rt_f32_to_f16(smax / 127.0f);
    memcpy(b + 208, &hd, 2);
    float d = rt_f16_to_f32(hd);
    uint8_t q[RT_QKK];
    int8_t *sc = (int8_t *)(b + 192);
    for (int g = 0; g < 16; g++) {
        int is = d > 0.0f ? clampi(nearest_int(sg[g] / d), -127, 127) : 0;
        sc[g] = (int8_t)is;
        float ed = d * (float)is;
        for (int l = 0; l < 16; l++)
            q[16 * g + l] = (uint8_t)(ed != 0.0f ? clampi(nearest_int(x[16 * g + l] / ed), -32, 31) + 32 : 32);
    }
    uint8_t *ql = b, *qh = b + 128;
    for (int n = 0; n < 2; n++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *e = q + 128 * n + l;
            ql[64 * n + l] = (uint8_t)((e[0] & 15) | ((e[64] & 15) << 4));
            ql[64 * n + 32 + l] = (uint8_t)((e[32] & 15) | ((e[96] & 15) << 4));
            qh[32 * n + l] = (uint8_t)((e[0] >> 4) | ((e[32] >> 4) << 2) | ((e[64] >> 4) << 4) | ((e[96] >> 4) << 6));
        }
}

static void dequant_k(int type, const uint8_t *b, float *y)
{
    if (type == RT_Q6_K) {
        uint16_t h; memcpy(&h, b + 208, 2);
        float d = rt_f16_to_f32(h);
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int n = 0; n < 2; n++)
            for (int l = 0; l < 32; l++) {
                int q1 = ((ql[64 * n + l] & 15) | (((qh[32 * n + l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[64 * n + 32 + l] & 15) | (((qh[32 * n + l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[64 * n + l] >> 4) | (((qh[32 * n + l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[64 * n + 32 + l] >> 4) | (((qh[32 * n + l] >> 6) & 3) << 4)) - 32;
                int g = 8 * n + l / 16;
                y[128 * n + l] = d * (float)sc[g] * (float)q1;
                y[128 * n + l + 32] = d * (float)sc[g + 2] * (float)q2;
                y[128 * n + l + 64] = d * (float)sc[g + 4] * (float)q3;
                y[128 * n + l + 96] = d * (float)sc[g + 6] * (float)q4;
            }
        return;
    }
    uint16_t h0, h1; memcpy(&h0, b, 2); memcpy(&h1, b + 2, 2);
    float d = rt_f16_to_f32(h0), dmin = rt_f16_to_f32(h1);
    const uint8_t *qs = b + (type == RT_Q4_K ? 16 : 48), *qh = b + 16;
    for (int c = 0; c < 4; c++) {
        int s0, m0, s1, m1;
        rt_k_scale_min(b + 4, 2 * c, &s0, &m0);
        rt_k_scale_min(b + 4, 2 * c + 1, &s1, &m1);
        float d1 = d * (float)s0, mm1 = dmin * (float)m0, d2 = d * (float)s1, mm2 = dmin * (float)m1;
        for (int l = 0; l < 32; l++) {
            int lo = qs[32 * c + l] & 15, hi = qs[32 * c + l] >> 4;
            if (type == RT_Q5_K) {
                lo += ((qh[l] >> (2 * c)) & 1) << 4;
                hi += ((qh[l] >> (2 * c + 1)) & 1) << 4;
            }
            y[64 * c + l] = d1 * (float)lo - mm1;
            y[64 * c + 32 + l] = d2 * (float)hi - mm2;
        }
    }
}

/* q8_K activation blocks, ggml's quantize_row_q8_K_ref: iscale = -127/max
 * (max the signed value of largest magnitude), q = min(127, nearest(x*iscale))
 * rounding ties to even, d = 1/iscale kept in f32, sums of 16.  One scalar
 * loop on every path, so every build gives the same bits. */
void rt_act_quantize_k(rt_act *a, int t0, int t1)
{
    int nb = a->K / RT_QKK;
    for (int t = t0; t < t1; t++) {
        const float *x = a->x + (size_t)t * a->ldx;
        int8_t *q = a->kq + (size_t)t * a->K;
        for (int b = 0; b < nb; b++) {
            const float *xb = x + b * RT_QKK;
            int8_t *qb = q + b * RT_QKK;
            int16_t *bs = a->kbs + ((size_t)t * nb + b) * 16;
            float amax = 0.0f, max = 0.0f;
            for (int j = 0; j < RT_QKK; j++) {
                float ax = fabsf(xb[j]);
                if (ax > amax) { amax = ax; max = xb[j]; }
            }
            if (!(amax > 0.0f)) {
                a->kd[(size_t)t * nb + b] = 0.0f;
                memset(qb, 0, RT_QKK);
                memset(bs, 0, 16 * sizeof *bs);
                continue;
            }
            float iscale = -127.0f / max;
            for (int j = 0; j < RT_QKK; j++) {
                float f = iscale * xb[j];
                /* finite inputs give |f| <= 127; inf/NaN (corrupt weights) give 0 */
                int v = fabsf(f) <= 128.0f ? nearest_int(f) : 0;
                qb[j] = (int8_t)(v < 127 ? v : 127);
            }
            for (int g = 0; g < 16; g++) {
                int sum = 0;
                for (int l = 0; l < 16; l++) sum += qb[16 * g + l];
                bs[g] = (int16_t)sum;
            }
            a->kd[(size_t)t * nb + b] = 1.0f / iscale;
        }
    }
}

void rt_quantize_row(int type, const float *x, void *dst, int n)
{
    switch (type) {
    case RT_F32: memcpy(dst, x, (size_t)n * 4); break;
    case RT_F16: {
        uint16_t *h = dst;
        for (int i = 0; i < n; i++) h[i] = rt_f32_to_f16(x[i]);
        break;
    }
    case RT_Q8_0: quant_q8_0(x, dst, n); break;
    case RT_Q4_0: quant_q4_0(x, dst, n); break;
    case RT_Q4_K: case RT_Q5_K: case RT_Q6_K: {
        size_t bb = rt_row_bytes(type, RT_QKK);
        for (int b = 0; b < n / RT_QKK; b++) {
            uint8_t *o = (uint8_t *)dst + (size_t)b * bb;
            if (type == RT_Q6_K) quant_k6(x + b * RT_QKK, o);
            else quant_k45(x + b * RT_QKK, o, type == RT_Q4_K ? 15 : 31);
        }
        break;
    }
    default: break;
    }
}

void rt_dequantize_row(int type, const void *src, float *y, int n)
{
    const uint8_t *s = src;
    switch (type) {
    case RT_F32: memcpy(y, src, (size_t)n * 4); break;
    case RT_F16:
        for (int i = 0; i < n; i++) { uint16_t h; memcpy(&h, s + 2 * i, 2); y[i] = rt_f16_to_f32(h); }
        break;
    case RT_BF16:   /* the top half of an f32: exact */
        for (int i = 0; i < n; i++) {
            uint16_t h; memcpy(&h, s + 2 * i, 2);
            uint32_t u = (uint32_t)h << 16;
            memcpy(&y[i], &u, 4);
        }
        break;
    case RT_Q8_0:
        for (int b = 0; b < n / RT_QK; b++, s += RT_Q8_BYTES) {
            uint16_t h; memcpy(&h, s, 2);
            float d = rt_f16_to_f32(h);
            for (int j = 0; j < RT_QK; j++) y[b * RT_QK + j] = (float)(int8_t)s[2 + j] * d;
        }
        break;
    case RT_Q4_0:
        for (int b = 0; b < n / RT_QK; b++, s += RT_Q4_BYTES) {
            uint16_t h; memcpy(&h, s, 2);
            float d = rt_f16_to_f32(h);
            for (int j = 0; j < 16; j++) {
                y[b * RT_QK + j] = (float)((s[2 + j] & 15) - 8) * d;
                y[b * RT_QK + j + 16] = (float)((s[2 + j] >> 4) - 8) * d;
            }
        }
        break;
    case RT_Q4_K: case RT_Q5_K: case RT_Q6_K: {
        size_t bb = rt_row_bytes(type, RT_QKK);
        for (int b = 0; b < n / RT_QKK; b++) dequant_k(type, s + (size_t)b * bb, y + b * RT_QKK);
        break;
    }
    default: break;
    }
}

/* exp via 2^n * p(r), |r| <= ln2/2, degree-7 Taylor: relative error < 2e-7.
 * Branch-free so loops over it vectorise; arguments are clamped to the
 * normal float range. */
float rt_expf(float x)
{
    x = x < -87.0f ? -87.0f : (x > 88.3f ? 88.3f : x);
    float n = floorf(x * 1.44269504f + 0.5f);
    n = n == n ? n : 0.0f;   /* NaN stays NaN through r below, without UB in the int conversion */
    float r = x - n * 0.693145752f;
    r = r - n * 1.42860677e-06f;
    float p = 1.98412701e-04f;
    p = p * r + 1.38888892e-03f;
    p = p * r + 8.33333377e-03f;
    p = p * r + 4.16666679e-02f;
    p = p * r + 1.66666672e-01f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return p * bits_f32((uint32_t)((int32_t)n + 127) << 23);
}

float rt_silu(float x) { return x / (1.0f + rt_expf(-x)); }

/* The SIMD paths below repeat rt_expf / rt_silu operation by operation (no
 * FMA contraction, the same clamps and NaN handling), so every build gives
 * bit-identical results to the scalar functions. */
#if defined(RT_SIMD_AVX512)
static inline __m512 exp16(__m512 e)   /* rt_expf, lane by lane */
{
    e = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(e, _mm512_set1_ps(-87.0f), _CMP_LT_OQ), e, _mm512_set1_ps(-87.0f));
    e = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(e, _mm512_set1_ps(88.3f), _CMP_GT_OQ), e, _mm512_set1_ps(88.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_add_ps(_mm512_mul_ps(e, _mm512_set1_ps(1.44269504f)), _mm512_set1_ps(0.5f)),
                                    _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    n = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(n, n, _CMP_ORD_Q), n);
    __m512 r = _mm512_sub_ps(e, _mm512_mul_ps(n, _mm512_set1_ps(0.693145752f)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(1.42860677e-06f)));
    __m512 p = _mm512_set1_ps(1.98412701e-04f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.38888892e-03f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.33333377e-03f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.16666679e-02f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.66666672e-01f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(0.5f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

static inline __m512 silu16(__m512 x)
{
    __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}
#elif defined(RT_SIMD_AVX2)
static inline __m256 exp8(__m256 e)   /* rt_expf, lane by lane */
{
    e = _mm256_blendv_ps(e, _mm256_set1_ps(-87.0f), _mm256_cmp_ps(e, _mm256_set1_ps(-87.0f), _CMP_LT_OQ));
    e = _mm256_blendv_ps(e, _mm256_set1_ps(88.3f), _mm256_cmp_ps(e, _mm256_set1_ps(88.3f), _CMP_GT_OQ));
    __m256 n = _mm256_floor_ps(_mm256_add_ps(_mm256_mul_ps(e, _mm256_set1_ps(1.44269504f)), _mm256_set1_ps(0.5f)));
    n = _mm256_and_ps(n, _mm256_cmp_ps(n, n, _CMP_ORD_Q));
    __m256 r = _mm256_sub_ps(e, _mm256_mul_ps(n, _mm256_set1_ps(0.693145752f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(1.42860677e-06f)));
    __m256 p = _mm256_set1_ps(1.98412701e-04f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.38888892e-03f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.33333377e-03f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.16666679e-02f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.66666672e-01f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(0.5f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

static inline __m256 silu8(__m256 x)
{
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}
#elif defined(RT_SIMD_NEON)
static inline float32x4_t exp4(float32x4_t e)   /* rt_expf, lane by lane */
{
    e = vbslq_f32(vcltq_f32(e, vdupq_n_f32(-87.0f)), vdupq_n_f32(-87.0f), e);
    e = vbslq_f32(vcgtq_f32(e, vdupq_n_f32(88.3f)), vdupq_n_f32(88.3f), e);
    float32x4_t n = vrndmq_f32(vaddq_f32(vmulq_f32(e, vdupq_n_f32(1.44269504f)), vdupq_n_f32(0.5f)));
    n = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(n), vceqq_f32(n, n)));
    float32x4_t r = vsubq_f32(e, vmulq_f32(n, vdupq_n_f32(0.693145752f)));
    r = vsubq_f32(r, vmulq_f32(n, vdupq_n_f32(1.42860677e-06f)));
    float32x4_t p = vdupq_n_f32(1.98412701e-04f);
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(1.38888892e-03f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(8.33333377e-03f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(4.16666679e-02f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(1.66666672e-01f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(0.5f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(1.0f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(1.0f));
    int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(bits));
}

static inline float32x4_t silu4(float32x4_t x)
{
    float32x4_t e = exp4(vnegq_f32(x));
    return vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), e));
}
#endif

/* The fixed fold of 16 running sums shared by rt_sumsq and rt_softmax_exp:
 * lane j + lane j+8, then j + j+4, j + j+2, j + j+1 (the same roundings on
 * every path; AVX2 holds lanes 0-7 and 8-15 in two vectors, NEON in four). */
#if defined(RT_SIMD_AVX512)
static inline float fold16(__m512 acc)
{
    __m256 h8 = _mm256_add_ps(_mm512_castps512_ps256(acc),   /* AVX512F only */
                              _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)));
    __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
    __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
    return _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
}
#elif defined(RT_SIMD_AVX2)
static inline float fold16(__m256 a0, __m256 a1)
{
    __m256 h8 = _mm256_add_ps(a0, a1);
    __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
    __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
    return _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
}
#elif defined(RT_SIMD_NEON)
static inline float fold16(const float32x4_t a[4])
{
    float32x4_t h4 = vaddq_f32(vaddq_f32(a[0], a[2]), vaddq_f32(a[1], a[3]));
    float32x2_t h2 = vadd_f32(vget_low_f32(h4), vget_high_f32(h4));
    return vget_lane_f32(h2, 0) + vget_lane_f32(h2, 1);
}
#else
static inline float fold16(float acc[16])
{
    for (int w = 8; w >= 1; w /= 2)
        for (int j = 0; j < w; j++) acc[j] += acc[j + w];
    return acc[0];
}
#endif

/* sum of x[i]^2 in one fixed order on every path: 16 running sums (lane j
 * takes i = j mod 16), folded as j + j+8, j + j+4, j + j+2, j + j+1, then the
 * n % 16 last elements in order.  Products and sums are separate roundings
 * (no FMA), so the SIMD paths and the scalar one agree bit for bit. */
float rt_sumsq(const float *x, int n)
{
    int n16 = n / 16 * 16, i = 0;
    float total;
#if defined(RT_SIMD_AVX512)
    __m512 acc = _mm512_setzero_ps();
    for (; i < n16; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        acc = _mm512_add_ps(acc, _mm512_mul_ps(v, v));
    }
    total = fold16(acc);
#elif defined(RT_SIMD_AVX2)
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; i < n16; i += 16) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(v0, v0));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(v1, v1));
    }
    total = fold16(a0, a1);
#elif defined(RT_SIMD_NEON)
    float32x4_t a[4] = { vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f) };
    for (; i < n16; i += 16)
        for (int k = 0; k < 4; k++) {
            float32x4_t v = vld1q_f32(x + i + 4 * k);
            a[k] = vaddq_f32(a[k], vmulq_f32(v, v));
        }
    total = fold16(a);
#else
    float acc[16] = {0};
    for (; i < n16; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += x[i + j] * x[i + j];
    total = fold16(acc);
#endif
    for (; i < n; i++) total += x[i] * x[i];
    return total;
}

/* s[i] = rt_expf(s[i] - mx) for i < n; returns their sum, folded in the
 * same fixed 16-lane order as rt_sumsq, so every path gives the same bits */
float rt_softmax_exp(float *s, int n, float mx)
{
    int n16 = n / 16 * 16, i = 0;
    float total;
#if defined(RT_SIMD_AVX512)
    __m512 acc = _mm512_setzero_ps(), vm = _mm512_set1_ps(mx);
    for (; i < n16; i += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + i), vm));
        _mm512_storeu_ps(s + i, e);
        acc = _mm512_add_ps(acc, e);
    }
    total = fold16(acc);
#elif defined(RT_SIMD_AVX2)
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), vm = _mm256_set1_ps(mx);
    for (; i < n16; i += 16) {
        __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + i), vm));
        __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + i + 8), vm));
        _mm256_storeu_ps(s + i, e0);
        _mm256_storeu_ps(s + i + 8, e1);
        a0 = _mm256_add_ps(a0, e0);
        a1 = _mm256_add_ps(a1, e1);
    }
    total = fold16(a0, a1);
#elif defined(RT_SIMD_NEON)
    float32x4_t a[4] = { vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f) };
    for (; i < n16; i += 16)
        for (int k = 0; k < 4; k++) {
            float32x4_t e = exp4(vsubq_f32(vld1q_f32(s + i + 4 * k), vdupq_n_f32(mx)));
            vst1q_f32(s + i + 4 * k, e);
            a[k] = vaddq_f32(a[k], e);
        }
    total = fold16(a);
#else
    float acc[16] = {0};
    for (; i < n16; i += 16)
        for (int j = 0; j < 16; j++) {
            s[i + j] = rt_expf(s[i + j] - mx);
            acc[j] += s[i + j];
        }
    total = fold16(acc);
#endif
    for (; i < n; i++) {
        s[i] = rt_expf(s[i] - mx);
        total += s[i];
    }
    return total;
}

void rt_silu_mul(float *g, const float *u, int n)
{
    int i = 0;
#if defined(RT_SIMD_AVX512)
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(g + i, _mm512_mul_ps(silu16(_mm512_loadu_ps(g + i)), _mm512_loadu_ps(u + i)));
#elif defined(RT_SIMD_AVX2)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(g + i, _mm256_mul_ps(silu8(_mm256_loadu_ps(g + i)), _mm256_loadu_ps(u + i)));
#elif defined(RT_SIMD_NEON)
    for (; i + 4 <= n; i += 4) vst1q_f32(g + i, vmulq_f32(silu4(vld1q_f32(g + i)), vld1q_f32(u + i)));
#endif
    for (; i < n; i++) g[i] = rt_silu(g[i]) * u[i];
}

const int rt_sigma16[16] = { 0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15 };

/* block b of token t into the q4_0 / q8_0 decode layout (see rt_act.gx4):
 * group b/16, step s and slot k of block i = b%16 = 4s + k; its d and
 * -sum(q) go to lane 4k + s, the lane of block 4s + k in sigma4 order */
static void act_half_block(rt_act *a, int t, int b, const int8_t *qb, float d, int sum)
{
    int ng = a->K / RT_QK / 16, g = b / 16, i = b % 16, s = i / 4, k = i % 4;
    if (g >= ng) return;                       /* blocks past the last group */
    uint8_t *dst = a->gx4 + ((size_t)t * ng + g) * RT_GX_BYTES;
    memcpy(dst + s * 128 + 16 * k, qb, 16);
    memcpy(dst + s * 128 + 64 + 16 * k, qb + 16, 16);
    int32_t nsa = -sum;
    memcpy(dst + 512 + 4 * (4 * k + s), &d, 4);
    memcpy(dst + 576 + 4 * (4 * k + s), &nsa, 4);
}

/* group-interleaved copy of token t for the AVX-512 kernels (see rt_act) */
static void act_interleave(rt_act *a, int t)
{
    int nb = a->K / RT_QK, ng = nb / 16;
    const int8_t *q = a->qs + (size_t)t * a->K;
    for (int g = 0; g < ng; g++) {
        uint8_t *dst = a->gx + ((size_t)t * ng + g) * RT_GX_BYTES;
        float *d = (float *)(void *)(dst + 512);
        int32_t *nsa = (int32_t *)(void *)(dst + 576);
        for (int i = 0; i < 16; i++) {
            int b = g * 16 + rt_sigma16[i];
            const int8_t *qb = q + (size_t)b * RT_QK;
            for (int j = 0; j < 8; j++) memcpy(dst + j * 64 + i * 4, qb + j * 4, 4);
            int sum = 0;
            for (int k = 0; k < RT_QK; k++) sum += qb[k];
            d[i] = a->d[(size_t)t * nb + b];
            nsa[i] = -sum;
        }
    }
}

/* One q8 activation block, ggml's quantize_row_q8_0_ref convention: the
 * quants use the f32 scale d = amax/127 (q = round(x * (1/d)), half away from
 * zero, as roundf), and the block keeps fp16(d), so every dot product uses
 * the fp16-rounded scale, as ggml's stored block_q8_0 does; returns sum(q).
 * The SIMD paths compute the same values as the scalar one bit for bit (max
 * is exact; the division, the product, the rounding and the f16 conversion
 * are the same IEEE operations). */
static inline float f16_round(float d) { return rt_f16_to_f32(rt_f32_to_f16(d)); }

#if defined(RT_SIMD_AVX512)
/* |x| with AVX512F integer logic (the _ps logic ops need AVX512DQ) */
static inline __m512 abs16(__m512 x, __m512i absmask)
{
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), absmask));
}
#endif

static inline int quant_block_q8(const float *x, int8_t *q, float *dout)
{
#if defined(RT_SIMD_AVX512)
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff);
    __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    /* max(|x|, acc) returns acc when |x| is NaN, as fmaxf does */
    __m512 m = _mm512_max_ps(abs16(x0, absmask), _mm512_setzero_ps());
    m = _mm512_max_ps(abs16(x1, absmask), m);
    float amax = _mm512_reduce_max_ps(m);
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    __m512i s = _mm512_setzero_si512();
    for (int h = 0; h < 2; h++) {
        __m512 f = _mm512_mul_ps(h ? x1 : x0, _mm512_set1_ps(id));
        f = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(f, _mm512_set1_ps(127.0f), _CMP_GT_OQ), f, _mm512_set1_ps(127.0f));
        f = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(f, _mm512_set1_ps(-127.0f), _CMP_LT_OQ), f, _mm512_set1_ps(-127.0f));
        __m512 tr = _mm512_roundscale_ps(f, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        __m512 fr = abs16(_mm512_sub_ps(f, tr), absmask);      /* exact */
        __m512 one = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)),
                                                         _mm512_andnot_si512(absmask, _mm512_castps_si512(f))));
        __m512 r = _mm512_mask_add_ps(tr, _mm512_cmp_ps_mask(fr, _mm512_set1_ps(0.5f), _CMP_GE_OQ), tr, one);
        __m512i v = _mm512_maskz_cvttps_epi32(_mm512_cmp_ps_mask(f, f, _CMP_ORD_Q), r);
        _mm_storeu_si128((__m128i *)(void *)(q + 16 * h), _mm512_cvtepi32_epi8(v));
        s = _mm512_add_epi32(s, v);
    }
    *dout = f16_round(d);
    return _mm512_reduce_add_epi32(s);
#elif defined(RT_SIMD_AVX2)
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 xv[4], m = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        xv[k] = _mm256_loadu_ps(x + 8 * k);
        m = _mm256_max_ps(_mm256_and_ps(xv[k], absmask), m);   /* NaN |x| keeps m */
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float amax = _mm_cvtss_f32(h);
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    __m256i s = _mm256_setzero_si256();
    for (int k = 0; k < 4; k++) {
        __m256 f = _mm256_mul_ps(xv[k], _mm256_set1_ps(id));
        f = _mm256_blendv_ps(f, _mm256_set1_ps(127.0f), _mm256_cmp_ps(f, _mm256_set1_ps(127.0f), _CMP_GT_OQ));
        f = _mm256_blendv_ps(f, _mm256_set1_ps(-127.0f), _mm256_cmp_ps(f, _mm256_set1_ps(-127.0f), _CMP_LT_OQ));
        __m256 tr = _mm256_round_ps(f, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        __m256 fr = _mm256_and_ps(_mm256_sub_ps(f, tr), absmask);      /* exact */
        __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_andnot_ps(absmask, f));
        __m256 r = _mm256_add_ps(tr, _mm256_and_ps(one, _mm256_cmp_ps(fr, _mm256_set1_ps(0.5f), _CMP_GE_OQ)));
        __m256i v = _mm256_and_si256(_mm256_cvttps_epi32(r), _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_ORD_Q)));
        __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)(void *)(q + 8 * k), _mm_packs_epi16(p16, p16));
        s = _mm256_add_epi32(s, v);
    }
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    *dout = f16_round(d);
    return _mm_cvtsi128_si32(s4);
#elif defined(RT_SIMD_NEON)
    float32x4_t xv[8], m = vdupq_n_f32(0.0f);
    for (int k = 0; k < 8; k++) {
        xv[k] = vld1q_f32(x + 4 * k);
        m = vmaxnmq_f32(m, vabsq_f32(xv[k]));   /* maxNum: a NaN lane keeps m, as fmaxf */
    }
    float amax = vmaxnmvq_f32(m);
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    int32x4_t s = vdupq_n_s32(0);
    for (int k = 0; k < 8; k++) {
        float32x4_t f = vmulq_n_f32(xv[k], id);
        f = vbslq_f32(vcgtq_f32(f, vdupq_n_f32(127.0f)), vdupq_n_f32(127.0f), f);
        f = vbslq_f32(vcltq_f32(f, vdupq_n_f32(-127.0f)), vdupq_n_f32(-127.0f), f);
        int32x4_t v = vandq_s32(vcvtq_s32_f32(vrndaq_f32(f)), vreinterpretq_s32_u32(vceqq_f32(f, f)));
        int16x4_t v16 = vmovn_s32(v);
        int8x8_t v8 = vmovn_s16(vcombine_s16(v16, v16));
        vst1_lane_s32((int32_t *)(void *)(q + 4 * k), vreinterpret_s32_s8(v8), 0);
        s = vaddq_s32(s, v);
    }
    *dout = f16_round(d);
    return vaddvq_s32(s);
#else
    float amax = 0.0f;
    for (int j = 0; j < RT_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < RT_QK; j++) {
        float f = x[j] * id;
        f = f > 127.0f ? 127.0f : (f < -127.0f ? -127.0f : f);
        int v = f == f ? (int)roundf(f) : 0;   /* NaN/inf from corrupt weights: no UB */
        q[j] = (int8_t)v;
        sum += v;
    }
    *dout = f16_round(d);
    return sum;
#endif
}

/* q8 activation blocks as ggml's q8_0: q = round(x * 127/amax) with the f32
 * scale, d stored as fp16(amax/127) (kept widened to f32 here). */
void rt_act_quantize(rt_act *a, int t0, int t1)
{
    int nb = a->K / RT_QK;
    for (int t = t0; t < t1; t++) {
        const float *x = a->x + (size_t)t * a->ldx;
        int8_t *q = a->qs + (size_t)t * a->K;
        for (int b = 0; b < nb; b++) {
            float d;
            int sum = quant_block_q8(x + b * RT_QK, q + b * RT_QK, &d);
            a->d[(size_t)t * nb + b] = d;
            a->ds[(size_t)t * nb + b] = d * (float)sum;
            if (a->gx4) act_half_block(a, t, b, q + b * RT_QK, d, sum);
        }
        if (a->gx && (!a->gx4 || a->gx_too)) act_interleave(a, t);
    }
}
