/* cap_model.h - the scaled-down LFM2-style model the capability scorer trains:
 * parameter layout, activations, and one forward/backward pair per operation
 * (embedding, RMSNorm, linear, short-conv block, GQA attention with QK-norm and
 * RoPE, SwiGLU, MoE with its sigmoid top-k router, tied-head cross-entropy).
 *
 * The code is written once over `cap_real`.  The library compiles it as float
 * (function names end in _f32); the gradient-check test compiles the same
 * source as double (names end in _f64) so finite differences are meaningful:
 *     #define CAP_REAL double
 *     #define CAP_FN(n) n##_f64
 *     #include "evaluator/capability/cap_model_impl.h"
 * Shapes are [rows, cols], row-major; linear weights are [out, in] as in HF. */
#ifndef SH_CAP_MODEL_H
#define SH_CAP_MODEL_H

#include "evaluator/capability/cap_internal.h"

#ifndef CAP_REAL
#define CAP_REAL float
#define CAP_FN(n) n##_f32
#endif
typedef CAP_REAL cap_real;

typedef struct cap_layer_params {
    cap_real *norm1, *norm2;              /* [D] operator / ffn RMSNorm gains        */
    cap_real *w_in, *w_conv, *w_out;      /* conv: [3D,D], [D,L], [D,D]              */
    cap_real *wq, *wk, *wv, *wo;          /* gqa: [nh*hd,D], [nkv*hd,D] x2, [D,nh*hd] */
    cap_real *gq, *gk;                    /* gqa qk-norm gains [hd] (NULL if off)    */
    cap_real *w1, *w3, *w2;               /* swiglu [F,D],[F,D],[D,F]; moe: E stacked */
    cap_real *wg;                         /* moe router [E,D]                        */
} cap_layer_params;

typedef struct cap_params {
    cap_real *emb;                        /* [V,D], tied output head                 */
    cap_real *norm_f;                     /* [D] final norm                          */
    cap_real *readout;                    /* [R,D] compression readout gains or NULL */
    cap_layer_params layer[CAP_MAX_LAYERS];
} cap_params;

typedef struct cap_block {
    size_t off, n;
    int decay;                            /* AdamW weight decay applies              */
    int mat;                              /* hidden matrix: lr scaled with width     */
} cap_block;

typedef struct cap_layer_acts {
    cap_real *a, *rs1;                    /* normed mixer input [T,D], 1/rms [T]     */
    cap_real *bcx, *cv, *cz, *cg;         /* conv: [T,3D], v=B*X, z=conv(v), g=C*z   */
    cap_real *qr, *kr, *q, *k, *v;        /* gqa: raw q/k, normed+roped q/k, v       */
    cap_real *qrs, *krs;                  /* gqa qk-norm 1/rms [T,nh], [T,nkv]       */
    cap_real *p, *o;                      /* gqa: probs [nh,T,T], head outputs [T,nh*hd] */
    cap_real *h_mid;                      /* residual after the mixer [T,D]          */
    cap_real *b, *rs2;                    /* normed ffn input, 1/rms                 */
    cap_real *u1, *u3, *m;                /* swiglu [T,F]; moe [T,K,Fe]              */
    cap_real *s, *wsel, *eo;              /* moe: sigmoid [T,E], weights [T,K], expert out [T,K,D] */
    int *sel;                             /* moe: selected experts [T,K]             */
} cap_layer_acts;

/* Per-thread workspace: activations of one sequence plus backward scratch. */
typedef struct cap_ws {
    cap_real *h[CAP_MAX_LAYERS + 1];      /* residual stream, h[0] = embeddings      */
    cap_layer_acts L[CAP_MAX_LAYERS];
    cap_real *hn, *rsf;                   /* final norm output [T,D], 1/rms [T]      */
    cap_real *logits;                     /* [max(T,R), V]                           */
    cap_real *rope_cos, *rope_sin;        /* [T, hd/2]                               */
    cap_real *scratch;                    /* backward temporaries                    */
    cap_real *dh, *dh2;                   /* [T,D] gradients of the residual stream  */
    void *mem;
} cap_ws;

#define cap_param_count     CAP_FN(cap_param_count)
#define cap_params_bind     CAP_FN(cap_params_bind)
#define cap_params_init     CAP_FN(cap_params_init)
#define cap_param_blocks    CAP_FN(cap_param_blocks)
#define cap_ws_alloc        CAP_FN(cap_ws_alloc)
#define cap_ws_free         CAP_FN(cap_ws_free)
#define cap_embed_fwd       CAP_FN(cap_embed_fwd)
#define cap_embed_bwd       CAP_FN(cap_embed_bwd)
#define cap_rmsnorm_fwd     CAP_FN(cap_rmsnorm_fwd)
#define cap_rmsnorm_bwd     CAP_FN(cap_rmsnorm_bwd)
#define cap_linear_fwd      CAP_FN(cap_linear_fwd)
#define cap_linear_bwd      CAP_FN(cap_linear_bwd)
#define cap_matmul_nn       CAP_FN(cap_matmul_nn)
#define cap_conv_fwd        CAP_FN(cap_conv_fwd)
#define cap_conv_bwd        CAP_FN(cap_conv_bwd)
#define cap_attn_fwd        CAP_FN(cap_attn_fwd)
#define cap_attn_bwd        CAP_FN(cap_attn_bwd)
#define cap_swiglu_fwd      CAP_FN(cap_swiglu_fwd)
#define cap_swiglu_bwd      CAP_FN(cap_swiglu_bwd)
#define cap_moe_fwd         CAP_FN(cap_moe_fwd)
#define cap_moe_bwd         CAP_FN(cap_moe_bwd)
#define cap_head_loss       CAP_FN(cap_head_loss)
#define cap_model_forward   CAP_FN(cap_model_forward)
#define cap_model_backward  CAP_FN(cap_model_backward)
#define cap_model_step      CAP_FN(cap_model_step)

size_t cap_param_count(const cap_model_cfg *c);
void cap_params_bind(const cap_model_cfg *c, cap_real *base, cap_params *p);
void cap_params_init(const cap_model_cfg *c, cap_real *base, uint64_t seed);
int cap_param_blocks(const cap_model_cfg *c, cap_block *out, int cap);
int cap_ws_alloc(const cap_model_cfg *c, cap_ws *ws);
void cap_ws_free(cap_ws *ws);

/* ---- single operations (dx/dW arguments accumulate: +=) ---------------- */
void cap_embed_fwd(const cap_real *emb, const int *tok, cap_real *h, int T, int D);
void cap_embed_bwd(cap_real *demb, const int *tok, const cap_real *dh, int T, int D);
/* y = g * x / sqrt(mean(x^2) + eps); rstd[T] saved for the backward pass. */
void cap_rmsnorm_fwd(const cap_real *x, const cap_real *g, cap_real *y, cap_real *rstd,
                     int T, int D, double eps);
void cap_rmsnorm_bwd(const cap_real *x, const cap_real *g, const cap_real *rstd, const cap_real *dy,
                     cap_real *dx, cap_real *dg, int T, int D);
/* y[T,O] = x[T,I] Wt[I,O] (the trainer's fastest kernel) */
void cap_matmul_nn(const cap_real *x, const cap_real *wt, cap_real *y, int T, int I, int O);
/* y[T,O] = x[T,I] W[O,I]^T */
void cap_linear_fwd(const cap_real *x, const cap_real *W, cap_real *y, int T, int I, int O);
void cap_linear_bwd(const cap_real *x, const cap_real *W, const cap_real *dy,
                    cap_real *dx, cap_real *dW, int T, int I, int O);
/* Mixers and FFNs of layer l: x [T,D] -> y [T,D] (overwritten). */
void cap_conv_fwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                  cap_layer_acts *a, const cap_real *x, cap_real *y);
void cap_conv_bwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                  cap_layer_params *gp, const cap_layer_acts *a, const cap_real *x,
                  const cap_real *dy, cap_real *dx, cap_real *scratch);
void cap_attn_fwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                  cap_layer_acts *a, const cap_real *x, cap_real *y,
                  const cap_real *rope_cos, const cap_real *rope_sin);
void cap_attn_bwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                  cap_layer_params *gp, const cap_layer_acts *a, const cap_real *x,
                  const cap_real *dy, cap_real *dx, cap_real *scratch,
                  const cap_real *rope_cos, const cap_real *rope_sin);
void cap_swiglu_fwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                    cap_layer_acts *a, const cap_real *x, cap_real *y);
void cap_swiglu_bwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                    cap_layer_params *gp, const cap_layer_acts *a, const cap_real *x,
                    const cap_real *dy, cap_real *dx, cap_real *scratch);
void cap_moe_fwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                 cap_layer_acts *a, const cap_real *x, cap_real *y);
void cap_moe_bwd(const cap_model_cfg *c, int l, int T, const cap_layer_params *p,
                 cap_layer_params *gp, const cap_layer_acts *a, const cap_real *x,
                 const cap_real *dy, cap_real *dx, cap_real *scratch);

/* Tied-head cross-entropy over graded positions (targets >= 0; or, with a
 * readout, over the R readout slots decoded from the last position).  Returns
 * the summed loss; if dhn != NULL writes d(loss*scale)/d(hn) into dhn and
 * accumulates head gradients into g.  *correct / *graded count argmax hits. */
double cap_head_loss(const cap_model_cfg *c, const cap_params *p, cap_params *g, cap_ws *ws,
                     const int *targets, int T, double scale, cap_real *dhn,
                     int *correct, int *graded);

/* Whole model on one sequence of T tokens. */
void cap_model_forward(const cap_model_cfg *c, const cap_params *p, cap_ws *ws, const int *tok, int T);
void cap_model_backward(const cap_model_cfg *c, const cap_params *p, cap_params *g, cap_ws *ws,
                        const int *tok, int T);
/* forward + loss + (if g) backward; returns summed loss. */
double cap_model_step(const cap_model_cfg *c, const cap_params *p, cap_params *g, cap_ws *ws,
                      const int *tok, const int *targets, int T, double scale,
                      int *correct, int *graded);

#endif
