/* rt_config.h - compile-time description of the variant: includes the generated
 * sh_variant.h (SHV_* macros, see docs/interfaces.md) and defines the per-layer
 * row struct that SHV_LAYER_TABLE initialises. */
#ifndef RT_CONFIG_H
#define RT_CONFIG_H

/* mixer / ffn kinds: same numbering as genome.h */
#ifndef SHV_CONV
#define SHV_CONV   0
#define SHV_GQA    1
#define SHV_SWIGLU 0
#define SHV_MOE    1
#endif

#include "sh_variant.h"

#ifndef SHV_GENOME_HASH
#error "sh_variant.h must define SHV_GENOME_HASH"
#endif
#ifndef SHV_ROPE_SCALING
#define SHV_ROPE_SCALING 0
#define SHV_ROPE_FACTOR 1.0
#define SHV_ROPE_LOW_FREQ 1.0
#define SHV_ROPE_HIGH_FREQ 4.0
#define SHV_ROPE_ORIG_CTX 8192
#endif

/* one row of SHV_LAYER_TABLE */
typedef struct rt_layer_cfg {
    int mixer;          /* SHV_CONV or SHV_GQA */
    int conv_kernel;    /* conv: L */
    int n_heads;        /* gqa: query heads */
    int n_kv_heads;     /* gqa: kv heads */
    int qk_norm;        /* gqa: per-head RMSNorm on q and k */
    int ffn;            /* SHV_SWIGLU or SHV_MOE */
    int width;          /* swiglu: F */
    int n_experts;      /* moe: E */
    int top_k;          /* moe: K */
    int expert_width;   /* moe: F_e */
    int router_bias;    /* moe: expert selection bias */
} rt_layer_cfg;

extern const rt_layer_cfg rt_layers[SHV_N_LAYERS];

#endif
