/* space.h - the search space: bounds on every choice the search may make
 * (layer count, widths, allowed token mixers and channel mixers with their
 * parameter ranges, fixed vocabulary and globals) and the constraints a
 * candidate must meet (parameters, decode latency, peak memory, cache bytes
 * at a context length).  Read from a JSON file (see search/spaces/default.json
 * for the schema, which is also built in as the default space). */
#ifndef SH_SEARCH_SPACE_H
#define SH_SEARCH_SPACE_H

#include <stdbool.h>

#include "genome/genome.h"
#include "util/err.h"

typedef struct sh_irange {
    int min, max, step;     /* values min, min+step, ... <= max */
} sh_irange;

typedef enum sh_tristate { SH_NEVER = 0, SH_ALWAYS = 1, SH_EITHER = 2 } sh_tristate;

typedef struct sh_space {
    char name[64];
    /* fixed globals */
    int vocab;
    int max_context;
    double rope_theta, norm_eps;
    bool tied_embeddings;
    /* searched globals */
    sh_irange layers, hidden, head_dim;
    /* token mixers */
    bool allow_mixer[SH_MIXER_KIND_COUNT];
    sh_irange conv_kernel;
    sh_irange gqa_heads, gqa_kv_heads;
    sh_tristate qk_norm;
    /* channel mixers */
    bool allow_ffn[SH_FFN_KIND_COUNT];
    sh_irange swiglu_width;
    sh_irange moe_experts, moe_top_k, moe_expert_width;
    sh_tristate router_bias;
    /* constraints; 0 = not constrained */
    double max_params;          /* total parameters                          */
    double max_decode_ms;       /* per decoded token, measured               */
    double max_peak_bytes;      /* peak resident memory                      */
    double max_cache_bytes;     /* KV + conv state at cache_context          */
    int cache_context;
} sh_space;

/* The built-in default space (scaled-down LFM2-like models, vocab 4096). */
extern const char sh_default_space_json[];

/* Parses and checks a space; every error names the field. */
int sh_space_parse(const char *json, sh_space *out, sh_err *err);
int sh_space_load_file(const char *path, sh_space *out, char **json_out, sh_err *err);
int sh_space_default(sh_space *out, sh_err *err);

/* Values of a range. */
int sh_irange_count(const sh_irange *r);
int sh_irange_at(const sh_irange *r, int i);
/* Nearest allowed value to v. */
int sh_irange_snap(const sh_irange *r, int v);
bool sh_irange_contains(const sh_irange *r, int v);

/* 0 if g lies inside the space (layer count, every size, every kind), else
 * -1 with a message naming the layer and field. */
int sh_space_contains(const sh_space *s, const sh_genome *g, sh_err *err);

/* Constraint violation from the quantities that are known (pass NaN for
 * unknown ones): sum over constraints of max(0, value / limit - 1). */
double sh_space_violation(const sh_space *s, double params, double decode_ms, double peak_bytes,
                          double cache_bytes);

#endif
