/* rt_synth.h - the definition of the deterministic synthetic weights, shared
 * by the runtime (rt_model.c generates them on the device) and the host's GGUF
 * exporter (reports/gguf_synth.c writes the same weights into a file), so the
 * two can never drift apart.  Self-contained: no dependency on sh_variant.h.
 *
 * Element i of tensor `tid` = center + scale * u, u uniform in [-1, 1) from
 * the counter-based splitmix64(seed, tensor id, i): the same on every machine
 * and for every thread count. */
#ifndef RT_SYNTH_H
#define RT_SYNTH_H

#include <stdint.h>

/* tensor ids: globals, then 1000 + RT_TID_PER_LAYER * layer + kind */
enum {
    TID_EMBD = 1, TID_OUTPUT = 2, TID_FINAL_NORM = 3,
    TID_ATTN_NORM = 0, TID_FFN_NORM, TID_IN_PROJ, TID_OUT_PROJ, TID_CONV, TID_WQ, TID_WK,
    TID_WV, TID_WO, TID_QN, TID_KN, TID_W1, TID_W3, TID_W2, TID_ROUTER, TID_EBIAS,
    TID_GATE_EXPS, TID_UP_EXPS, TID_DOWN_EXPS, TID_PER_LAYER = 32
};
#define LAYER_TID(l, k) (1000 + (uint64_t)(l) * TID_PER_LAYER + (k))

/* Scales (uniform in +-scale): matrices std 0.02 as HF's init; embeddings
 * +-0.2 and the output projection of every block (conv out_proj, attention
 * output, w2, expert down) scaled by 0.18 (GPT-2 style), so each block is a
 * modest update of the residual stream.  With plain 0.02 everywhere a 16-layer
 * random network is chaotic: a last-bit rounding difference between SIMD
 * paths grows to 4% of the logits; with these scales it stays < 1% and q8_0 /
 * q4_0 change the logits by ~1% / ~10% of the f32 result, as for trained
 * models.  Norm gains 1 +- 0.1, conv kernels +-0.5, expert bias +-0.1. */
#define SYN_MAT_STD 0.0346f
#define SYN_EMB_STD 0.2f
#define SYN_OUT_STD (SYN_MAT_STD * 0.18f)
#define SYN_NORM_CENTER 1.0f
#define SYN_NORM_SCALE 0.1f
#define SYN_CONV_SCALE 0.5f
#define SYN_BIAS_SCALE 0.1f

/* 2^64 / golden ratio: splitmix64's increment (also the bench's prompt seed step) */
#define RT_GOLDEN64 0x9E3779B97F4A7C15ull

/* splitmix64's output of state x (the runtime's one mixer: synthetic weights
 * here, the bench's prompt tokens in rt_main.c) */
static inline uint64_t rt_splitmix64(uint64_t x)
{
    x += RT_GOLDEN64;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* the random stream of one tensor */
static inline uint64_t rt_synth_stream(uint64_t seed, uint64_t tid)
{
    return rt_splitmix64(seed ^ rt_splitmix64(tid * 0xD1B54A32D192ED03ull));
}

/* uniform in [-1, 1) */
static inline float rt_synth_uniform(uint64_t stream, uint64_t idx)
{
    uint64_t h = rt_splitmix64(stream + rt_splitmix64(idx));
    return (float)((double)(h >> 40) * (1.0 / 8388608.0) - 1.0);
}

#endif
