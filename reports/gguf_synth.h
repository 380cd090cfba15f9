/* gguf_synth.h - the runtime's synthetic weight generator reproduced on the
 * host: for a seed, the value of every weight of every tensor, so the GGUF
 * writer emits exactly what `variant ... --seed S` builds on the device. */
#ifndef SH_REPORTS_GGUF_SYNTH_H
#define SH_REPORTS_GGUF_SYNTH_H

#include <stdint.h>

typedef enum sh_synth_kind {
    SH_SYN_TOKEN_EMBD, SH_SYN_OUTPUT, SH_SYN_FINAL_NORM,
    SH_SYN_ATTN_NORM, SH_SYN_FFN_NORM,
    SH_SYN_CONV_IN, SH_SYN_CONV_KERNEL, SH_SYN_CONV_OUT,
    SH_SYN_ATTN_Q, SH_SYN_ATTN_K, SH_SYN_ATTN_V, SH_SYN_ATTN_OUT, SH_SYN_Q_NORM, SH_SYN_K_NORM,
    SH_SYN_FFN_GATE, SH_SYN_FFN_UP, SH_SYN_FFN_DOWN,
    SH_SYN_ROUTER, SH_SYN_EXP_GATE, SH_SYN_EXP_UP, SH_SYN_EXP_DOWN, SH_SYN_EXP_BIAS
} sh_synth_kind;

typedef struct sh_synth_tensor {
    sh_synth_kind kind;
    int layer;           /* -1 for global tensors */
    uint64_t rows, cols; /* row-major [rows][cols]; experts stacked as E*rows */
    int zero;            /* all zeros (expert bias of a genome without one) */
} sh_synth_tensor;

/* Fills row r (cols values) of tensor t for seed. */
void sh_synth_row(const sh_synth_tensor *t, uint64_t seed, uint64_t r, float *row);

#endif
