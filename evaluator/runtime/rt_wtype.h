/* rt_wtype.h - the runtime's weight types, numbered as ggml and GGUF number
 * tensor types.  A header of its own, including nothing, so the tool can
 * check at compile time that its numbering (genome/genome.h sh_dtype) is this
 * one (reports/gguf_write.c); the runtime itself stays standalone. */
#ifndef RT_WTYPE_H
#define RT_WTYPE_H

enum { RT_F32 = 0, RT_F16 = 1, RT_Q4_0 = 2, RT_Q8_0 = 8,
       RT_Q4_K = 12, RT_Q5_K = 13, RT_Q6_K = 14,   /* ggml k-quants, super-blocks of 256 */
       RT_BF16 = 30 };           /* bf16: GGUF input only, widened to f32 at load */

#endif
