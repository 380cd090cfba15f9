/* genome.h - the genome: a candidate architecture, its text/JSON forms, its
 * identity (hash), its validation and its closed-form analytics.
 *
 * A genome is a set of global sizes plus an ordered list of layers; each layer is
 * a token mixer (short conv, GQA attention, ...) followed by a channel mixer
 * (SwiGLU, mixture of experts, ...), both pre-normed with residuals, exactly as in
 * LFM2 (see ../shared/reference/lfm2-architecture.md section 3).
 *
 * Canonical text form (one line, whitespace-separated tokens):
 *
 *   d=1024 v=65536 hd=64 theta=1000000 eps=1e-05 ctx=128000 tie=1 |
 *     conv(3)/swiglu(4608)*2 gqa(16,8,qk)/swiglu(4608) ...
 *
 * globals: d hidden, v vocab, hd head_dim, theta rope base, eps norm epsilon,
 * ctx max context, tie tied embeddings (0/1), optional rope=llama3(f,lo,hi,orig).
 * layers:  MIXER/FFN[*N]   MIXER = conv(L) | gqa(H,KV[,qk])
 *                          FFN   = swiglu(F) | moe(E,K,FE[,bias])
 * "*N" repeats the same layer N times.  The canonical form run-length-encodes
 * equal consecutive layers and prints numbers in a fixed format, so equal
 * genomes have byte-equal canonical text and therefore equal hashes.
 *
 * Sizes are bounded (SH_LIMIT_*) so hostile input cannot make anything allocate
 * without bound.  Genomes are plain values: no heap, copy with '='.
 */
#ifndef SH_GENOME_H
#define SH_GENOME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* ---- limits (validation rejects anything outside) ---------------------- */
#define SH_MAX_LAYERS        256
#define SH_LIMIT_VOCAB       (1 << 20)   /* 1,048,576 tokens            */
#define SH_LIMIT_HIDDEN      65536
#define SH_LIMIT_HEAD_DIM    1024
#define SH_LIMIT_HEADS       1024
#define SH_LIMIT_FFN         (1 << 20)
#define SH_LIMIT_EXPERTS     1024
#define SH_LIMIT_CONV_KERNEL 64
#define SH_LIMIT_CONTEXT     (1 << 24)   /* 16M tokens                  */
#define SH_GENOME_TEXT_MAX   (64 * 1024) /* longest accepted text form  */

/* ---- layer parts -------------------------------------------------------- */
typedef enum sh_mixer_kind {
    SH_MIXER_CONV = 0,   /* gated short convolution (LFM2 "LIV conv")       */
    SH_MIXER_GQA  = 1,   /* grouped-query attention with optional QK-norm   */
    SH_MIXER_KIND_COUNT
    /* room for: sliding-window attention, KV sharing across layers, ...  */
} sh_mixer_kind;

typedef enum sh_ffn_kind {
    SH_FFN_SWIGLU = 0,
    SH_FFN_MOE    = 1,
    SH_FFN_KIND_COUNT
} sh_ffn_kind;

typedef struct sh_mixer {
    sh_mixer_kind kind;
    int conv_kernel;     /* conv: kernel length L (LFM2: 3)                  */
    int n_heads;         /* gqa: query heads                                 */
    int n_kv_heads;      /* gqa: key/value heads; n_heads % n_kv_heads == 0  */
    bool qk_norm;        /* gqa: per-head RMSNorm on q and k before RoPE     */
} sh_mixer;

typedef struct sh_ffn {
    sh_ffn_kind kind;
    int width;           /* swiglu: hidden width F                           */
    int n_experts;       /* moe: E                                           */
    int top_k;           /* moe: experts used per token                      */
    int expert_width;    /* moe: per-expert width F_e                        */
    bool router_bias;    /* moe: selection bias (expert_bias), sigmoid router */
} sh_ffn;

typedef struct sh_layer {
    sh_mixer mixer;
    sh_ffn ffn;
} sh_layer;

typedef enum sh_rope_scaling {
    SH_ROPE_NONE = 0,
    SH_ROPE_LLAMA3 = 1   /* Llama 3.x frequency-dependent scaling            */
} sh_rope_scaling;

typedef struct sh_genome {
    int vocab;
    int hidden;
    int head_dim;        /* independent of hidden / heads (Qwen3: 128)       */
    double rope_theta;
    double norm_eps;
    int max_context;
    bool tied_embeddings;
    sh_rope_scaling rope_scaling;
    double rope_factor, rope_low_freq, rope_high_freq; /* llama3 scaling     */
    int rope_orig_context;
    int n_layers;
    sh_layer layers[SH_MAX_LAYERS];
} sh_genome;

typedef uint64_t sh_hash;

/* ---- construction, text, JSON, hash ------------------------------------ */

/* Parse the canonical text form (also accepts extra whitespace, and any order
 * of the global key=value pairs). Validates. */
int sh_genome_parse(const char *text, sh_genome *out, sh_err *err);

/* Write the canonical one-line text form. Returns 0, or -1 if cap is too small. */
int sh_genome_format(const sh_genome *g, char *buf, size_t cap, sh_err *err);

/* JSON form (an object, see genome_json.c for the schema), as a malloc'd
 * string the caller frees.  Parsing validates. */
char *sh_genome_to_json(const sh_genome *g, bool pretty, sh_err *err);
int sh_genome_from_json(const char *json, sh_genome *out, sh_err *err);

/* FNV-1a 64 of the canonical text. hex must hold 17 bytes. */
sh_hash sh_genome_hash(const sh_genome *g);
void sh_hash_hex(sh_hash h, char hex[17]);
int sh_hash_parse(const char *hex, sh_hash *out);

bool sh_genome_equal(const sh_genome *a, const sh_genome *b);
bool sh_layer_equal(const sh_layer *a, const sh_layer *b);

/* A genome with every global set to LFM2's defaults and no layers. */
void sh_genome_init(sh_genome *g);

/* Validation: names the layer and the field, e.g.
 * "layer 7: gqa heads (12) not a multiple of kv heads (5)". */
int sh_genome_validate(const sh_genome *g, sh_err *err);

/* Extra condition for ggml block quantisation (q8_0/q4_0): every matrix row
 * length (hidden, heads*head_dim, widths) is a multiple of 32. */
int sh_genome_check_quantizable(const sh_genome *g, sh_err *err);

/* Resolve a user's GENOME argument: a preset name, a path to a text or JSON
 * genome file, or inline canonical text. */
int sh_genome_resolve(const char *arg, sh_genome *out, sh_err *err);

/* ---- presets ------------------------------------------------------------ */
typedef struct sh_preset {
    const char *name;        /* "lfm2-350m" */
    const char *description;
    long long published_params;   /* from the reference sheet, 0 if none */
    long long published_active;   /* MoE active params, 0 if dense       */
} sh_preset;

int sh_preset_count(void);
const sh_preset *sh_preset_at(int i);
int sh_preset_get(const char *name, sh_genome *out, sh_err *err); /* -1 unknown */

/* ---- analytics (closed form, exact) ------------------------------------- */
/* Storage types, numbered as ggml and GGUF number tensor types, like the
 * runtime (evaluator/runtime/rt_wtype.h; reports/gguf_write.c checks at
 * compile time that the two agree).  The numbers are not contiguous: list
 * the types with sh_dtype_at. */
typedef enum sh_dtype {
    SH_DTYPE_F32 = 0,
    SH_DTYPE_F16 = 1,
    SH_DTYPE_Q4_0 = 2,   /* ggml: 32 weights in 18 bytes (f16 scale + 16 B)    */
    SH_DTYPE_Q8_0 = 8,   /* ggml: 32 weights in 34 bytes (f16 scale + 32 int8) */
} sh_dtype;
#define SH_DTYPE_COUNT 4   /* how many types there are */

/* The default weight type of each concept, stated here once (names as
 * sh_dtype_name spells them; each command's --wtype overrides its own):
 *  - SH_WTYPE_SEARCH: what a search measures its candidates in (f32: the
 *    analytic objectives and peak_bytes count f32 weights, so measured and
 *    analytic figures compare; search/run.c);
 *  - SH_WTYPE_MEASURE: `measure` and `compare` (q4_0, what edge deployments
 *    ship; measure/measure.c, measure/compare_cli.c);
 *  - SH_WTYPE_EXPORT: `export --format gguf` (f32, lossless; reports/report_cli.c);
 *  - the variant run by hand without --wtype uses q8_0 (evaluator/runtime/
 *    rt_main.c, which cannot include this header); starhil always passes
 *    --wtype to it, so that default never reaches a stored measurement. */
#define SH_WTYPE_SEARCH "f32"
#define SH_WTYPE_MEASURE "q4_0"
#define SH_WTYPE_EXPORT SH_DTYPE_F32

/* The i-th type, 0 <= i < SH_DTYPE_COUNT, in listing order: f32, f16, q8_0, q4_0. */
sh_dtype sh_dtype_at(int i);

const char *sh_dtype_name(sh_dtype t);
int sh_dtype_parse(const char *s, sh_dtype *out);
/* Bytes of n values of type t (n must be a multiple of 32 for q types). */
uint64_t sh_dtype_bytes(sh_dtype t, uint64_t n);

typedef struct sh_param_count {
    uint64_t total;
    uint64_t active;         /* per token (MoE: router + top_k experts)      */
    uint64_t embedding;      /* V*H (and the untied output head if any)      */
    uint64_t conv;           /* all conv mixers                              */
    uint64_t attention;      /* all gqa mixers                               */
    uint64_t ffn_dense;      /* all swiglu                                   */
    uint64_t ffn_moe;        /* all moe (router + experts)                   */
    uint64_t norms;          /* all RMSNorm gains incl. QK-norm and final    */
} sh_param_count;

void sh_genome_params(const sh_genome *g, sh_param_count *out);

/* FLOPs (2 per multiply-add) per token: linear layers (active experts only),
 * attention score and value products, depthwise conv, output head.  Norms,
 * activations and gating multiplies are not counted. */
double sh_genome_flops_decode(const sh_genome *g, uint64_t context); /* one step at context n */
double sh_genome_flops_prefill(const sh_genome *g, uint64_t n);      /* per token, prompt of n */

/* Weight bytes with matrices stored in `t`; norms, conv kernels, MoE routers
 * and expert biases stay f32 (as llama.cpp's converter keeps them). */
uint64_t sh_genome_weight_bytes(const sh_genome *g, sh_dtype t);

/* KV cache of all attention layers at context n, K and V in kv_type. */
uint64_t sh_genome_kv_bytes(const sh_genome *g, uint64_t context, sh_dtype kv_type);
/* Conv state: (L-1)*H f32 values per conv layer (independent of context). */
uint64_t sh_genome_conv_state_bytes(const sh_genome *g);

int sh_genome_count_mixer(const sh_genome *g, sh_mixer_kind k);
int sh_genome_count_ffn(const sh_genome *g, sh_ffn_kind k);

const char *sh_mixer_kind_name(sh_mixer_kind k);
const char *sh_ffn_kind_name(sh_ffn_kind k);

#endif
