/* rt_numerics.c - test harness for the runtime's element-wise numerics
 * (evaluator/runtime/rt_quant.c): quantises activation blocks to q8 and
 * applies silu(g)*u on fixed, awkward inputs (exact .5 ties, NaN, +-inf,
 * zeros, subnormals, huge values, the clamps of exp), sums squares in the
 * runtime's fixed order (RMSNorm), and prints every
 * output bit as hex.  test_runtime compiles it for each SIMD path (scalar,
 * AVX2, AVX-512, NEON with and without dotprod under qemu) and requires the
 * same text from all of them: the SIMD paths are exact copies of the scalar
 * arithmetic, not approximations of it.
 * Compiled with -I DIR where DIR/sh_variant.h defines a one-layer variant. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

const rt_layer_cfg rt_layers[SHV_N_LAYERS] = SHV_LAYER_TABLE;

#define NB 12                  /* activation blocks */
#define NS 400                 /* silu inputs */

/* the bits of f as hex; every NaN prints as "nan" (the payload and sign of a
 * NaN made by an operation differ between CPUs: x86 makes -nan, ARM +nan) */
static const char *hex(float f, char buf[16])
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if (f != f) snprintf(buf, 16, "nan");
    else snprintf(buf, 16, "%08x", (unsigned)u);
    return buf;
}
static float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* xorshift32: the same sequence on every machine */
static uint32_t rng = 2463534242u;
static float uniform(float lo, float hi)
{
    rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5;
    return lo + (hi - lo) * (float)(rng >> 8) / 16777216.0f;
}

static void fill_blocks(float *x)
{
    for (int i = 0; i < NB * RT_QK; i++) x[i] = uniform(-3.0f, 3.0f);
    /* block 1: amax 127, so d = 1 and every x/d is exact: ties at k + 0.5 */
    for (int j = 0; j < RT_QK; j++) x[RT_QK + j] = (float)(j - 16) + 0.5f;
    x[RT_QK] = 127.0f;
    /* block 2: amax 254 (d = 2): more ties, negative and positive */
    for (int j = 0; j < RT_QK; j++) x[2 * RT_QK + j] = (float)(2 * j - 31);
    x[2 * RT_QK + 5] = 254.0f;
    /* block 3: all zero */
    for (int j = 0; j < RT_QK; j++) x[3 * RT_QK + j] = 0.0f;
    /* block 4: a NaN among normal values (corrupt weights) */
    x[4 * RT_QK + 7] = NAN;
    /* block 5: +inf and -inf */
    x[5 * RT_QK + 3] = INFINITY;
    x[5 * RT_QK + 9] = -INFINITY;
    /* block 6: subnormals only */
    for (int j = 0; j < RT_QK; j++) x[6 * RT_QK + j] = from_bits(1u + 37u * (uint32_t)j) * ((j & 1) ? -1.0f : 1.0f);
    /* block 7: huge values */
    for (int j = 0; j < RT_QK; j++) x[7 * RT_QK + j] = uniform(-3e38f, 3e38f);
    /* block 8: negative zero and tiny values next to one large one */
    for (int j = 0; j < RT_QK; j++) x[8 * RT_QK + j] = -0.0f;
    x[8 * RT_QK + 31] = 1e-30f;
    /* blocks 9-11: values whose quotient lands just beside .5 */
    for (int j = 0; j < RT_QK; j++) {
        float k = (float)(j % 20) + 0.5f;
        x[9 * RT_QK + j] = nextafterf(k, 0.0f);
        x[10 * RT_QK + j] = -nextafterf(k, 100.0f);
        x[11 * RT_QK + j] = k * 0.0078125f;   /* exact binary fractions */
    }
    x[9 * RT_QK] = 127.0f;
    x[10 * RT_QK] = -127.0f;
}

static void fill_silu(float *g, float *u)
{
    const float special[] = {0.0f, -0.0f, NAN, INFINITY, -INFINITY, 87.0f, -87.0f, 88.3f, -88.3f,
                             88.29999f, -87.00001f, 100.0f, -100.0f, 1e-40f, -1e-40f, 1e30f, -1e30f,
                             0.5f, -0.5f, 1.0f, -1.0f};
    int ns = (int)(sizeof special / sizeof special[0]);
    for (int i = 0; i < NS; i++) {
        g[i] = i < ns ? special[i] : uniform(-20.0f, 20.0f);
        u[i] = i % 7 == 3 ? -1.5f : uniform(-2.0f, 2.0f);
    }
}

int main(void)
{
    static float x[NB * RT_QK], g[NS], u[NS];
    static int8_t qs[NB * RT_QK];
    static float d[NB], ds[NB];
    fill_blocks(x);
    rt_act a = { 1, NB * RT_QK, x, NB * RT_QK, qs, d, ds, NULL, NULL, 0, 0, NULL, NULL, NULL, 0 };
    rt_act_quantize(&a, 0, 1);
    printf("simd %s\n", RT_SIMD_NAME);
    for (int b = 0; b < NB; b++) {
        char h1[16], h2[16];
        printf("block %d d %s ds %s q", b, hex(d[b], h1), hex(ds[b], h2));
        for (int j = 0; j < RT_QK; j++) printf(" %d", qs[b * RT_QK + j]);
        printf("\n");
    }
    /* ggml's convention, checked against the runtime's own copy of
     * quantize_row_q8_0_ref (rt_quantize_row): same quants, and the scale is
     * the fp16 of amax/127 (skipped: blocks 4 and 5 hold NaN / inf, block 6
     * subnormals only, where 1/d overflows and the reference converts inf to
     * int8; the runtime clamps to +-127 there) */
    for (int b = 0; b < NB; b++) {
        if (b == 4 || b == 5 || b == 6) continue;
        uint8_t blk[RT_Q8_BYTES];
        rt_quantize_row(RT_Q8_0, x + b * RT_QK, blk, RT_QK);
        uint16_t h;
        memcpy(&h, blk, 2);
        int same = rt_f16_to_f32(h) == d[b] || (d[b] != d[b] && rt_f16_to_f32(h) != rt_f16_to_f32(h));
        same = same && memcmp(blk + 2, qs + b * RT_QK, RT_QK) == 0;
        printf("block %d ggml_q8_0_ref %s\n", b, same ? "same" : "DIFFERENT");
    }
    fill_silu(g, u);
    rt_silu_mul(g, u, NS);
    for (int i = 0; i < NS; i++) {
        char h[16];
        printf("silu %d %s\n", i, hex(g[i], h));
    }
    /* sums of squares over lengths with and without a tail of n % 16 */
    static const int lens[] = {0, 1, 15, 16, 17, 64, 100, 1024, 1030};
    static float v[1030];
    for (int i = 0; i < 1030; i++) v[i] = uniform(-4.0f, 4.0f) * (i % 97 == 5 ? 1e6f : 1.0f);
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        char h[16];
        printf("sumsq %d %s\n", lens[k], hex(rt_sumsq(v, lens[k]), h));
    }
    /* softmax exponentials and their sum (attention), same lengths */
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        static float sc[1030];
        for (int i = 0; i < lens[k]; i++) sc[i] = uniform(-30.0f, 5.0f);
        if (lens[k] > 20) { sc[3] = -INFINITY; sc[7] = -200.0f; sc[11] = 5.0f; }
        char h[16];
        float sum = rt_softmax_exp(sc, lens[k], 5.0f);
        printf("softmax %d sum %s", lens[k], hex(sum, h));
        for (int i = 0; i < lens[k]; i += 7) printf(" %s", hex(sc[i], h));
        printf("\n");
    }
    return 0;
}
