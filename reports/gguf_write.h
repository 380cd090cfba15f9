/* gguf_write.h - write a genome as a GGUF file (architecture lfm2 / lfm2moe,
 * metadata and tensor names as llama.cpp expects, a no_vocab tokenizer or one
 * copied from a real GGUF) with
 * deterministic synthetic weights, so the candidate can be profiled in
 * llama.cpp and loaded back by starhil's runtime (`variant ... --gguf FILE`).
 *
 * For a given seed the weights are those the runtime's synthetic generator
 * makes for `--seed S --wtype T` (same formula, same quantisation), so
 * `logits --gguf FILE` and `logits --seed S --wtype T` agree. */
#ifndef SH_REPORTS_GGUF_WRITE_H
#define SH_REPORTS_GGUF_WRITE_H

#include <stdint.h>

#include "genome/genome.h"
#include "util/err.h"

/* GGUF value types (gguf spec); tensor types are genome.h's sh_dtype (ggml's numbers). */
enum {
    SH_GGUF_U8 = 0, SH_GGUF_I8 = 1, SH_GGUF_U16 = 2, SH_GGUF_I16 = 3, SH_GGUF_U32 = 4,
    SH_GGUF_I32 = 5, SH_GGUF_F32 = 6, SH_GGUF_BOOL = 7, SH_GGUF_STRING = 8,
    SH_GGUF_ARRAY = 9, SH_GGUF_U64 = 10, SH_GGUF_I64 = 11, SH_GGUF_F64 = 12
};

#define SH_GGUF_ALIGNMENT 32

/* Progress: bytes of tensor data written so far and in total. */
typedef void (*sh_gguf_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct sh_gguf_opts {
    sh_dtype wtype;      /* matrices; norms, conv kernels, router, bias stay f32 */
    uint64_t seed;
    /* NULL: tokenizer.ggml.model = no_vocab (llama.cpp loads and benchmarks the
     * file but cannot tokenize text).  Else a GGUF whose tokenizer.* pairs are
     * copied byte for byte (model, pre, tokens, token_type, merges, scores,
     * special ids, chat template...); its token list must be exactly the
     * genome's vocabulary size. */
    const char *tokenizer_from;
    sh_gguf_progress_fn progress;   /* optional, called after each tensor */
    void *progress_ctx;
} sh_gguf_opts;

/* Size of the file sh_gguf_write_genome would write (0 if it would refuse,
 * or if opts->tokenizer_from cannot be read). */
uint64_t sh_gguf_file_size(const sh_genome *g, const sh_gguf_opts *opts);

/* Writes PATH (through a temporary file renamed into place). Refuses genomes
 * LFM2 cannot express (sh_lfm2_shape_of) and q types on non-multiple-of-32
 * rows (sh_genome_check_quantizable). */
int sh_gguf_write_genome(const sh_genome *g, const char *path, const sh_gguf_opts *opts, sh_err *err);

/* ggml conversions (bit-exact with ggml's reference code). */
uint16_t sh_fp32_to_fp16(float f);
float sh_fp16_to_fp32(uint16_t h);
/* n must be a multiple of 32; out gets n/32 blocks of 34 (q8_0) / 18 (q4_0) bytes. */
void sh_quantize_q8_0(const float *x, uint8_t *out, int64_t n);
void sh_quantize_q4_0(const float *x, uint8_t *out, int64_t n);

#endif
