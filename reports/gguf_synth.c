/* gguf_synth.c - host copy of the runtime's synthetic weight formula
 * (evaluator/runtime/rt_model.c, rt_model_synthetic): value of element i of a
 * tensor = center + scale * u, u uniform in [-1, 1) from the counter-based
 * splitmix64(seed, tensor id, i); tensor ids and (center, scale) per tensor
 * kind as the runtime assigns them.  The GGUF round-trip test in
 * tests/test_reports.c fails if the two ever drift apart. */
#include "reports/gguf_synth.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF   /* center + scale * u: no fused multiply-add */
#endif

#define MAT_STD 0.0346f        /* uniform +-0.0346: standard deviation 0.02 */

/* the runtime's tensor ids: globals, then 1000 + 32 * layer + kind */
enum {
    TID_EMBD = 1, TID_OUTPUT = 2, TID_FINAL_NORM = 3,
    TID_ATTN_NORM = 0, TID_FFN_NORM, TID_IN_PROJ, TID_OUT_PROJ, TID_CONV, TID_WQ, TID_WK,
    TID_WV, TID_WO, TID_QN, TID_KN, TID_W1, TID_W3, TID_W2, TID_ROUTER, TID_EBIAS,
    TID_GATE_EXPS, TID_UP_EXPS, TID_DOWN_EXPS, TID_PER_LAYER = 32
};

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

typedef struct kind_info {
    int tid;          /* global id, or per-layer kind */
    int per_layer;
    float center, scale;
} kind_info;

static kind_info info_of(sh_synth_kind k)
{
    switch (k) {
    case SH_SYN_TOKEN_EMBD: return (kind_info){TID_EMBD, 0, 0.0f, MAT_STD};
    case SH_SYN_OUTPUT: return (kind_info){TID_OUTPUT, 0, 0.0f, MAT_STD};
    case SH_SYN_FINAL_NORM: return (kind_info){TID_FINAL_NORM, 0, 1.0f, 0.1f};
    case SH_SYN_ATTN_NORM: return (kind_info){TID_ATTN_NORM, 1, 1.0f, 0.1f};
    case SH_SYN_FFN_NORM: return (kind_info){TID_FFN_NORM, 1, 1.0f, 0.1f};
    case SH_SYN_CONV_IN: return (kind_info){TID_IN_PROJ, 1, 0.0f, MAT_STD};
    case SH_SYN_CONV_OUT: return (kind_info){TID_OUT_PROJ, 1, 0.0f, MAT_STD};
    case SH_SYN_CONV_KERNEL: return (kind_info){TID_CONV, 1, 0.0f, 0.5f};
    case SH_SYN_ATTN_Q: return (kind_info){TID_WQ, 1, 0.0f, MAT_STD};
    case SH_SYN_ATTN_K: return (kind_info){TID_WK, 1, 0.0f, MAT_STD};
    case SH_SYN_ATTN_V: return (kind_info){TID_WV, 1, 0.0f, MAT_STD};
    case SH_SYN_ATTN_OUT: return (kind_info){TID_WO, 1, 0.0f, MAT_STD};
    case SH_SYN_Q_NORM: return (kind_info){TID_QN, 1, 1.0f, 0.1f};
    case SH_SYN_K_NORM: return (kind_info){TID_KN, 1, 1.0f, 0.1f};
    case SH_SYN_FFN_GATE: return (kind_info){TID_W1, 1, 0.0f, MAT_STD};
    case SH_SYN_FFN_UP: return (kind_info){TID_W3, 1, 0.0f, MAT_STD};
    case SH_SYN_FFN_DOWN: return (kind_info){TID_W2, 1, 0.0f, MAT_STD};
    case SH_SYN_ROUTER: return (kind_info){TID_ROUTER, 1, 0.0f, MAT_STD};
    case SH_SYN_EXP_BIAS: return (kind_info){TID_EBIAS, 1, 0.0f, 0.1f};
    case SH_SYN_EXP_GATE: return (kind_info){TID_GATE_EXPS, 1, 0.0f, MAT_STD};
    case SH_SYN_EXP_UP: return (kind_info){TID_UP_EXPS, 1, 0.0f, MAT_STD};
    default: return (kind_info){TID_DOWN_EXPS, 1, 0.0f, MAT_STD};
    }
}

void sh_synth_row(const sh_synth_tensor *t, uint64_t seed, uint64_t r, float *row)
{
    if (t->zero) {
        for (uint64_t c = 0; c < t->cols; c++) row[c] = 0.0f;
        return;
    }
    kind_info k = info_of(t->kind);
    uint64_t tid = k.per_layer ? 1000 + (uint64_t)t->layer * TID_PER_LAYER + (uint64_t)k.tid
                               : (uint64_t)k.tid;
    uint64_t stream = splitmix64(seed ^ splitmix64(tid * 0xD1B54A32D192ED03ull));
    for (uint64_t c = 0; c < t->cols; c++) {
        uint64_t h = splitmix64(stream + splitmix64(r * t->cols + c));
        float u = (float)((double)(h >> 40) * (1.0 / 8388608.0) - 1.0);
        row[c] = k.center + k.scale * u;
    }
}
