/* hf_config.h - conversion between genomes and LFM2 model descriptions:
 * Hugging Face config.json (model_type lfm2 / lfm2_moe) both ways, and the
 * "LFM2 shape" analysis that tells whether a genome fits what LFM2 configs
 * (and llama.cpp's lfm2/lfm2moe loaders) can express.
 *
 * Decisions:
 *  - exported configs set block_auto_adjust_ff_dim = false and give the real
 *    FFN width in both intermediate_size and block_ff_dim;
 *  - every attention layer must have the same heads/kv heads and QK-norm on,
 *    and heads * head_dim must equal hidden (llama.cpp's loader requires it);
 *    head_dim is still written explicitly (modeling reads getattr(head_dim));
 *  - every conv layer must have the same kernel length (> 1);
 *  - dense layers may only precede MoE layers (lfm2_moe num_dense_layers),
 *    all MoE layers identical; llama3 rope scaling is refused.
 */
#ifndef SH_REPORTS_HF_CONFIG_H
#define SH_REPORTS_HF_CONFIG_H

#include <stdbool.h>

#include "genome/genome.h"
#include "util/err.h"

/* Largest config.json accepted by the importer. */
#define SH_HF_CONFIG_MAX (4u * 1024u * 1024u)

typedef struct sh_lfm2_shape {
    bool moe;            /* lfm2_moe / lfm2moe                               */
    int conv_kernel;     /* conv_L_cache (3 if there are no conv layers)     */
    int n_heads;         /* attention heads (hidden/head_dim if no attention) */
    int n_kv_heads;
    int n_attn;          /* number of attention layers                       */
    int ffn_width;       /* dense width (placeholder = expert width if none) */
    int n_dense;         /* leading dense layers (all layers if !moe)        */
    int n_experts, top_k, expert_width;
    bool expert_bias;
} sh_lfm2_shape;

/* 0 and the shape, or -1 with a reason the genome cannot be written as an
 * LFM2 config / GGUF. */
int sh_lfm2_shape_of(const sh_genome *g, sh_lfm2_shape *out, sh_err *err);

/* config.json text (pretty, malloc'd) for a genome, or NULL with a reason. */
char *sh_hf_config_export(const sh_genome *g, sh_err *err);

/* How an import treats fields the config does not give (transformers fills
 * them from its config class's defaults): each one is passed to on_default
 * (key, the value used) or, with strict, is an error naming the field.
 * Derived values (head_dim = hidden / heads) and legacy spellings (block_ff_dim,
 * full_attn_idxs, tie_embedding, theta) count as given. */
typedef struct sh_hf_import_opts {
    bool strict;
    void (*on_default)(void *ctx, const char *key, const char *value);
    void *ctx;
} sh_hf_import_opts;

/* Genome from config.json text (lfm2 or lfm2_moe, legacy keys included);
 * defaults are filled in silently (opts NULL) or as opts says.  The _file
 * form refuses a GGUF file ("this is a GGUF file"). */
int sh_hf_config_import(const char *json_text, size_t len, sh_genome *out, sh_err *err);
int sh_hf_config_import_ex(const char *json_text, size_t len, const sh_hf_import_opts *opts, sh_genome *out,
                           sh_err *err);
int sh_hf_config_import_file_ex(const char *path, const sh_hf_import_opts *opts, sh_genome *out, sh_err *err);

/* The FFN width rule of Lfm2MLP (section 3.5 of the reference sheet). */
long sh_lfm2_ff_auto_adjust(long width, bool has_multiplier, double multiplier, long multiple_of);

#endif
