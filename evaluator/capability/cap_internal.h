/* cap_internal.h - internal types of the capability scorer shared by its files:
 * the scaled-down model configuration (and how a genome maps onto it), the
 * synthetic task parameters and datasets, and the training options/results.
 * Nothing here depends on the float type the trainer computes in. */
#ifndef SH_CAP_INTERNAL_H
#define SH_CAP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "genome/genome.h"
#include "util/err.h"

#define CAP_MAX_LAYERS 16
#define CAP_MAX_SEQ 512
#define CAP_MAX_VOCAB 4096

enum { CAP_CONV = 0, CAP_GQA = 1 };
enum { CAP_SWIGLU = 0, CAP_MOE = 1 };

typedef struct cap_layer_cfg {
    int mixer;           /* CAP_CONV | CAP_GQA                          */
    int conv_L;          /* conv kernel length                          */
    int nh, nkv;         /* query / key-value heads                     */
    bool qk_norm;
    int ffn;             /* CAP_SWIGLU | CAP_MOE                        */
    int F;               /* swiglu width                                */
    int E, K, Fe;        /* moe: experts, top-k, expert width           */
    bool router_bias;    /* moe: selection bias buffer (kept at 0 here) */
} cap_layer_cfg;

typedef struct cap_model_cfg {
    int V;               /* task vocabulary                             */
    int D;               /* width                                       */
    int hd;              /* head dim                                    */
    int T;               /* sequence length                             */
    int readout;         /* compression task: readout slots (0 = none)  */
    double theta, eps;
    int n_layers;
    cap_layer_cfg layers[CAP_MAX_LAYERS];
} cap_model_cfg;

/* How a full-size genome is scaled down (see cap_map.c for the rules). */
typedef struct cap_scale_cfg {
    int width;           /* model width D (default 64)                  */
    int head_dim;        /* head dim (default 32)                       */
    int max_layers;      /* depth cap (default 4)                       */
    double max_ffn_mult; /* FFN width cap as a multiple of D (default 2) */
    int max_experts;     /* expert cap (default 8)                      */
} cap_scale_cfg;

void cap_scale_default(cap_scale_cfg *s);
int cap_map_genome(const sh_genome *g, const cap_scale_cfg *s, cap_model_cfg *out, sh_err *err);

/* ---- tasks ------------------------------------------------------------ */
typedef enum cap_task_kind {
    CAP_TASK_MQAR = 0,
    CAP_TASK_FUZZY,
    CAP_TASK_NOISY,
    CAP_TASK_SELCOPY,
    CAP_TASK_COMPRESS,
    CAP_TASK_MEMORIZE,
    CAP_TASK_COUNT
} cap_task_kind;

typedef struct cap_task {
    cap_task_kind kind;
    int vocab;           /* content tokens (task-specific meaning)      */
    int seq;             /* sequence length                             */
    int pairs;           /* recall: key-value pairs; copy/compress: tokens to copy */
    int min_gap;         /* recall: min distance from the key region to a query */
    int motif;           /* fuzzy: max tokens per key/value             */
    int noise_vocab;     /* noisy: extra noise tokens                   */
    double noise;        /* noisy: fraction of noise                    */
    int n_train, n_test;
    int epochs, batch;
    double lr, wd;
} cap_task;

const char *cap_task_name(cap_task_kind k);
int cap_task_parse_name(const char *s, cap_task_kind *out);
void cap_task_default(cap_task_kind k, cap_task *t);
int cap_task_check(const cap_task *t, sh_err *err);
/* Total vocabulary the model needs for this task (content + special tokens). */
int cap_task_model_vocab(const cap_task *t);
/* Readout slots for the compression task, else 0. */
int cap_task_readout(const cap_task *t);

typedef struct cap_dataset {
    int n, T;
    int *tokens;         /* [n*T]                                        */
    int *targets;        /* [n*T], -1 = not graded (readout: [n*readout]) */
    int readout;         /* compression: targets are [n*readout] instead */
} cap_dataset;

/* Deterministic for (task, seed, split). split 0 = train, 1 = test.  The
 * memorisation map depends on seed only (shared by both splits). */
int cap_task_generate(const cap_task *t, uint64_t seed, int split, cap_dataset *ds, sh_err *err);
void cap_dataset_free(cap_dataset *ds);

/* ---- random numbers (xoshiro256**) ------------------------------------ */
typedef struct cap_rng { uint64_t s[4]; } cap_rng;
void cap_rng_seed(cap_rng *r, uint64_t seed);
uint64_t cap_rng_next(cap_rng *r);
int cap_rng_int(cap_rng *r, int n);          /* uniform in [0, n) */
double cap_rng_uniform(cap_rng *r);          /* [0, 1) */
double cap_rng_normal(cap_rng *r);

/* ---- training --------------------------------------------------------- */
typedef void (*cap_progress_fn)(void *ctx, const char *task, int step, int steps, double loss);

typedef struct cap_train_opts {
    int threads;
    uint64_t seed;
    int epochs, batch;
    double lr, wd, clip, warmup_frac;
    cap_progress_fn progress;
    void *progress_ctx;
    const char *task_name;
} cap_train_opts;

typedef struct cap_train_result {
    double accuracy;     /* graded test positions predicted exactly     */
    double final_loss;   /* mean train loss over the last epoch         */
    double seconds;
    double flops;        /* matmul FLOPs executed (train + eval)        */
    long examples;       /* examples processed (train passes + eval)    */
    long params;
} cap_train_result;

#define CAP_CHUNKS 8     /* gradient chunks per batch (fixed: results do not depend on threads) */

/* Train a fresh model of cfg on train, evaluate on test (single precision). */
int cap_train_and_eval(const cap_model_cfg *cfg, const cap_dataset *train, const cap_dataset *test,
                       const cap_train_opts *o, cap_train_result *res, sh_err *err);

/* "avx2" or "generic": the trainer build used on this CPU (cap_dispatch.c). */
const char *cap_simd_name(void);

/* Plain f32 matmul rate of this machine with the trainer's best kernel (GFLOP/s). */
double cap_measure_matmul_gflops(int n, int threads);

#endif
