/* rt_quant.c - number formats of the runtime: exact f16<->f32 conversion, ggml
 * q8_0 / q4_0 block quantisation (reference rounding of ggml's *_ref functions),
 * on-the-fly q8 quantisation of activations, and a vectorisable exp. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>

#include "rt.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

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
    default: return "unknown";
    }
}

int rt_type_parse(const char *s)
{
    if (!strcmp(s, "f32")) return RT_F32;
    if (!strcmp(s, "f16")) return RT_F16;
    if (!strcmp(s, "q8_0")) return RT_Q8_0;
    if (!strcmp(s, "q4_0")) return RT_Q4_0;
    return -1;
}

int rt_type_supported(int type)
{
    return type == RT_F32 || type == RT_F16 || type == RT_Q8_0 || type == RT_Q4_0;
}

size_t rt_row_bytes(int type, int cols)
{
    switch (type) {
    case RT_F32: return (size_t)cols * 4;
    case RT_F16: return (size_t)cols * 2;
    case RT_Q8_0: return cols % RT_QK ? 0 : (size_t)cols / RT_QK * RT_Q8_BYTES;
    case RT_Q4_0: return cols % RT_QK ? 0 : (size_t)cols / RT_QK * RT_Q4_BYTES;
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

const int rt_sigma16[16] = { 0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15 };

const int rt_sigma4[16] = { 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15 };

/* q4_0 decode layout of token t (see rt_act.gx4) */
static void act_halves(rt_act *a, int t)
{
    int nb = a->K / RT_QK, ng = nb / 16;
    const int8_t *q = a->qs + (size_t)t * a->K;
    for (int g = 0; g < ng; g++) {
        uint8_t *dst = a->gx4 + ((size_t)t * ng + g) * RT_GX_BYTES;
        for (int s = 0; s < 4; s++)
            for (int b = 0; b < 4; b++) {
                const int8_t *qb = q + (size_t)(g * 16 + 4 * s + b) * RT_QK;
                memcpy(dst + s * 128 + 16 * b, qb, 16);
                memcpy(dst + s * 128 + 64 + 16 * b, qb + 16, 16);
            }
        float *d = (float *)(void *)(dst + 512);
        int32_t *nsa = (int32_t *)(void *)(dst + 576);
        for (int i = 0; i < 16; i++) {
            int b = g * 16 + rt_sigma4[i];
            int sum = 0;
            for (int k = 0; k < RT_QK; k++) sum += q[(size_t)b * RT_QK + k];
            d[i] = a->d[(size_t)t * nb + b];
            nsa[i] = -sum;
        }
    }
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

/* q8 activation blocks: d = amax/127 kept in f32, q = round(x/d). */
void rt_act_quantize(rt_act *a, int t0, int t1)
{
    int nb = a->K / RT_QK;
    for (int t = t0; t < t1; t++) {
        const float *x = a->x + (size_t)t * a->ldx;
        int8_t *q = a->qs + (size_t)t * a->K;
        for (int b = 0; b < nb; b++) {
            float amax = 0.0f;
            for (int j = 0; j < RT_QK; j++) amax = fmaxf(amax, fabsf(x[b * RT_QK + j]));
            float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            int sum = 0;
            for (int j = 0; j < RT_QK; j++) {
                float f = x[b * RT_QK + j] * id;
                f = f > 127.0f ? 127.0f : (f < -127.0f ? -127.0f : f);
                int v = f == f ? (int)roundf(f) : 0;   /* NaN/inf from corrupt weights: no UB */
                q[b * RT_QK + j] = (int8_t)v;
                sum += v;
            }
            a->d[(size_t)t * nb + b] = d;
            a->ds[(size_t)t * nb + b] = d * (float)sum;
        }
        if (a->gx) act_interleave(a, t);
        if (a->gx4) act_halves(a, t);
    }
}
