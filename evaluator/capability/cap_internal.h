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
#include "util/rng.h"

#define CAP_MAX_LAYERS 32
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

/* Learning-rate multiplier of the hidden matrices (fan-in proportional to the
 * width) for a proxy of width D: CAP_REF_WIDTH / D, clamped to [1/16, 4]
 * (the 1/width rule of standard parameterisation under Adam). */
double cap_width_lr_mult(int D);

/* How a full-size genome is scaled down (see cap_map.c for the rules): every
 * width (hidden, FFN, expert, attention q/k/v) times `scale`, head dim fixed. */
typedef struct cap_scale_cfg {
    double scale;        /* width factor (default CAP_DEFAULT_SCALE)    */
    int head_dim;        /* proxy head dim (default 32; <= proxy width) */
    int max_layers;      /* depth cap (default 32 = CAP_MAX_LAYERS)     */
    int max_experts;     /* expert cap (default 64)                     */
} cap_scale_cfg;

#define CAP_DEFAULT_SCALE 0.03125   /* 1/32: LFM2-350M -> width 32, 2.6B -> 64 */
#define CAP_REF_WIDTH 64            /* width at which the tasks' lr is the base lr */
#define CAP_MAX_PARAMS 50000000L    /* proxy parameter cap (memory) */

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
    CAP_TASK_LM,         /* byte-level language modelling on real text  */
    CAP_TASK_COUNT
} cap_task_kind;

/* A text corpus for the language-modelling task: bytes [0, split) train,
 * [split, n) held out (one contiguous range, never overlapping). */
typedef struct cap_corpus {
    unsigned char *data;
    size_t n, split;
    uint64_t hash;       /* FNV-1a 64 of the bytes (part of the score key) */
    char source[512];    /* file or directory it was read from          */
    int files;           /* files read                                  */
} cap_corpus;

/* Default corpus: the fortune files of Debian's `fortunes` package. */
#define CAP_DEFAULT_CORPUS "/usr/share/games/fortunes"
#define CAP_HELDOUT_FRAC 0.1

/* Reads a text file, or every regular file of a directory (sorted by name;
 * symlinks and *.dat index files skipped), and splits off the last
 * CAP_HELDOUT_FRAC (from the next line start) as held-out text.  Errors name
 * the path: unreadable, empty, binary (NUL bytes or > 5% control bytes). */
int cap_corpus_load(const char *path, cap_corpus *c, sh_err *err);
/* Same on bytes in memory (tests); `name` is used in messages. */
int cap_corpus_from_bytes(const char *name, const void *data, size_t n, cap_corpus *c, sh_err *err);
void cap_corpus_free(cap_corpus *c);

typedef struct cap_task {
    cap_task_kind kind;
    const cap_corpus *corpus;   /* lm: the text (not owned)                 */
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
    long *offsets;       /* lm: byte offset of each window in the corpus, else NULL */
    int *tokens;         /* [n*T]                                        */
    int *targets;        /* [n*T], -1 = not graded (readout: [n*readout]) */
    int readout;         /* compression: targets are [n*readout] instead */
} cap_dataset;

/* Deterministic for (task, seed, split). split 0 = train, 1 = test.  The
 * memorisation map depends on seed only (shared by both splits). */
int cap_task_generate(const cap_task *t, uint64_t seed, int split, cap_dataset *ds, sh_err *err);
void cap_dataset_free(cap_dataset *ds);
/* lm: windows of seq bytes (targets: the next byte) from the train range at
 * offsets drawn from (seed), or from the held-out range evenly spaced
 * (independent of seed).  Errors if the ranges hold less than one batch / one
 * window. */
int cap_lm_generate(const cap_task *t, uint64_t seed, int split, cap_dataset *ds, sh_err *err);
/* Matmul FLOPs of one forward pass over a sequence of T with `graded` head rows. */
double cap_forward_flops(const cap_model_cfg *c, int T, int graded);

/* ---- random numbers (the tool's xoshiro256**, util/rng.h) --------------- */
typedef sh_rng cap_rng;
void cap_rng_seed(cap_rng *r, uint64_t seed);
uint64_t cap_rng_next(cap_rng *r);
int cap_rng_int(cap_rng *r, int n);          /* uniform in [0, n) */
double cap_rng_uniform(cap_rng *r);          /* [0, 1) */
double cap_rng_normal(cap_rng *r);

/* ---- training --------------------------------------------------------- */
typedef void (*cap_progress_fn)(void *ctx, const char *task, int step, int steps, double loss);

/* Training state at a step boundary (parameters and AdamW moments), used to
 * continue a proxy from a lower rung instead of restarting. */
typedef struct cap_train_state {
    int step;            /* steps already taken                          */
    size_t np;           /* parameters                                   */
    float *p, *m, *v;    /* [np] each (malloc'd; free with cap_train_state_free) */
} cap_train_state;

void cap_train_state_free(cap_train_state *s);

typedef struct cap_train_opts {
    int threads;
    uint64_t seed;
    int epochs, batch;
    double lr, wd, clip;
    double lr_mat_mult;  /* lr multiplier of hidden matrices (0 = 1)      */
    int steps;           /* optimizer steps of this run (0 = epochs over the train set) */
    int warmup_steps;    /* linear warm-up (0 = 5% of steps, >= 1)        */
    double decay_frac;   /* WSD: the last decay_frac*steps decay linearly to 0 */
    bool sequential;     /* batches take examples in order (no shuffle)  */
    const cap_train_state *resume;   /* continue from this state (NULL = fresh init) */
    cap_train_state *checkpoint;     /* if set: filled with the state at the start of the decay */
    cap_progress_fn progress;
    void *progress_ctx;
    const char *task_name;
} cap_train_opts;

typedef struct cap_train_result {
    double accuracy;     /* graded test positions predicted exactly     */
    double test_loss;    /* mean test cross-entropy per graded position (nats) */
    double final_loss;   /* mean train loss over the last epoch         */
    double seconds;
    double flops;        /* matmul FLOPs executed (train + eval)        */
    long examples;       /* examples processed (train passes + eval)    */
    long params;
    int steps;           /* optimizer steps taken in this call          */
} cap_train_result;

/* Steps of the WSD schedule before the decay starts (the checkpoint step). */
int cap_decay_start(int steps, double decay_frac);

#define CAP_CHUNKS 8     /* gradient chunks per batch (fixed: results do not depend on threads) */

/* Train a fresh model of cfg on train, evaluate on test (single precision). */
int cap_train_and_eval(const cap_model_cfg *cfg, const cap_dataset *train, const cap_dataset *test,
                       const cap_train_opts *o, cap_train_result *res, sh_err *err);

/* "avx2" or "generic": the trainer build used on this CPU (cap_dispatch.c). */
const char *cap_simd_name(void);

/* Plain f32 matmul rate of this machine with the trainer's best kernel (GFLOP/s). */
double cap_measure_matmul_gflops(int n, int threads);

#endif
