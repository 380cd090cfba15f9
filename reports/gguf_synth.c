/* gguf_synth.c - the runtime's synthetic weights on the host, for the GGUF
 * exporter.  The formula, tensor ids and scales come from the runtime's own
 * evaluator/runtime/rt_synth.h (shared, not copied); this file only maps GGUF
 * tensor kinds to them.  The GGUF round-trip test in tests/test_reports.c
 * checks that the runtime reproduces its synthetic logits from the file. */
#include "reports/gguf_synth.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF   /* center + scale * u: no fused multiply-add */
#endif

#include "evaluator/runtime/rt_synth.h"

#define MAT_STD SYN_MAT_STD

typedef struct kind_info {
    int tid;          /* global id, or per-layer kind */
    int per_layer;
    float center, scale;
} kind_info;

static kind_info info_of(sh_synth_kind k)
{
    switch (k) {
    case SH_SYN_TOKEN_EMBD: return (kind_info){TID_EMBD, 0, 0.0f, SYN_EMB_STD};
    case SH_SYN_OUTPUT: return (kind_info){TID_OUTPUT, 0, 0.0f, MAT_STD};
    case SH_SYN_FINAL_NORM: return (kind_info){TID_FINAL_NORM, 0, SYN_NORM_CENTER, SYN_NORM_SCALE};
    case SH_SYN_ATTN_NORM: return (kind_info){TID_ATTN_NORM, 1, SYN_NORM_CENTER, SYN_NORM_SCALE};
    case SH_SYN_FFN_NORM: return (kind_info){TID_FFN_NORM, 1, SYN_NORM_CENTER, SYN_NORM_SCALE};
    case SH_SYN_CONV_IN: return (kind_info){TID_IN_PROJ, 1, 0.0f, MAT_STD};
    case SH_SYN_CONV_OUT: return (kind_info){TID_OUT_PROJ, 1, 0.0f, SYN_OUT_STD};
    case SH_SYN_CONV_KERNEL: return (kind_info){TID_CONV, 1, 0.0f, SYN_CONV_SCALE};
    case SH_SYN_ATTN_Q: return (kind_info){TID_WQ, 1, 0.0f, MAT_STD};
    case SH_SYN_ATTN_K: return (kind_info){TID_WK, 1, 0.0f, MAT_STD};
    case SH_SYN_ATTN_V: return (kind_info){TID_WV, 1, 0.0f, MAT_STD};
    case SH_SYN_ATTN_OUT: return (kind_info){TID_WO, 1, 0.0f, SYN_OUT_STD};
    case SH_SYN_Q_NORM: return (kind_info){TID_QN, 1, SYN_NORM_CENTER, SYN_NORM_SCALE};
    case SH_SYN_K_NORM: return (kind_info){TID_KN, 1, SYN_NORM_CENTER, SYN_NORM_SCALE};
    case SH_SYN_FFN_GATE: return (kind_info){TID_W1, 1, 0.0f, MAT_STD};
    case SH_SYN_FFN_UP: return (kind_info){TID_W3, 1, 0.0f, MAT_STD};
    case SH_SYN_FFN_DOWN: return (kind_info){TID_W2, 1, 0.0f, SYN_OUT_STD};
    case SH_SYN_ROUTER: return (kind_info){TID_ROUTER, 1, 0.0f, MAT_STD};
    case SH_SYN_EXP_BIAS: return (kind_info){TID_EBIAS, 1, 0.0f, SYN_BIAS_SCALE};
    case SH_SYN_EXP_GATE: return (kind_info){TID_GATE_EXPS, 1, 0.0f, MAT_STD};
    case SH_SYN_EXP_UP: return (kind_info){TID_UP_EXPS, 1, 0.0f, MAT_STD};
    default: return (kind_info){TID_DOWN_EXPS, 1, 0.0f, SYN_OUT_STD};
    }
}

void sh_synth_row(const sh_synth_tensor *t, uint64_t seed, uint64_t r, float *row)
{
    if (t->zero) {
        for (uint64_t c = 0; c < t->cols; c++) row[c] = 0.0f;
        return;
    }
    kind_info k = info_of(t->kind);
    uint64_t tid = k.per_layer ? LAYER_TID(t->layer, (uint64_t)k.tid) : (uint64_t)k.tid;
    uint64_t stream = rt_synth_stream(seed, tid);
    for (uint64_t c = 0; c < t->cols; c++) row[c] = k.center + k.scale * rt_synth_uniform(stream, r * t->cols + c);
}
