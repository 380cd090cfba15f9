/* test_capability.c - tests of evaluator/capability: finite-difference gradient
 * checks (double precision) of every trainer operation and of whole small
 * models, task generators, the genome-to-small-model mapping, thread-count
 * independence, score caching in a real SQLite store, the cmd: and http
 * scorers (against a real local HTTP server), and the discrimination of
 * hybrid vs all-conv genomes on associative recall (through the release
 * `starhil` binary so training runs at full speed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* the trainer's source, compiled here in double precision */
#define CAP_REAL double
#define CAP_FN(n) n##_f64
#include "evaluator/capability/cap_model_impl.h"

#include "evaluator/capability/score.h"
#include "runs/runs.h"
#include "util/proc.h"

/* ---- gradient checks ---------------------------------------------------------- */
enum { OP_EMBED, OP_RMSNORM, OP_LINEAR, OP_CONV, OP_ATTN, OP_SWIGLU, OP_MOE, OP_HEAD, OP_MODEL };

typedef struct gc {
    cap_model_cfg c;
    double *pbase, *gbase;
    cap_params p, g;
    size_t np;
    cap_ws ws;
    int op, T;
    double *x, *dx, *y, *R;
    int tok[16], tgt[16];
    int ref_sel[64];
    int sel_changed;
} gc;

static cap_layer_cfg conv_swiglu(void) { return (cap_layer_cfg){.mixer = CAP_CONV, .conv_L = 3, .ffn = CAP_SWIGLU, .F = 12}; }

static void gc_setup(gc *G, int op, const cap_layer_cfg *layers, int n_layers, int readout)
{
    memset(G, 0, sizeof *G);
    G->op = op;
    G->T = 6;
    G->c = (cap_model_cfg){.V = 7, .D = 8, .hd = 4, .T = G->T, .readout = readout, .theta = 10000, .eps = 1e-5,
                           .n_layers = n_layers};
    for (int l = 0; l < n_layers; l++) G->c.layers[l] = layers[l];
    G->np = cap_param_count(&G->c);
    G->pbase = calloc(G->np, sizeof(double));
    G->gbase = calloc(G->np, sizeof(double));
    cap_params_init(&G->c, G->pbase, 42);
    cap_rng r;
    cap_rng_seed(&r, 7);
    for (size_t i = 0; i < G->np; i++) G->pbase[i] += 0.3 * cap_rng_normal(&r);   /* gains != 1 */
    cap_params_bind(&G->c, G->pbase, &G->p);
    cap_params_bind(&G->c, G->gbase, &G->g);
    assert_int_equal(cap_ws_alloc(&G->c, &G->ws), 0);
    size_t n = (size_t)G->T * 3 * G->c.D;
    G->x = calloc(n, sizeof(double));
    G->dx = calloc(n, sizeof(double));
    G->y = calloc(n, sizeof(double));
    G->R = calloc(n, sizeof(double));
    for (size_t i = 0; i < n; i++) { G->x[i] = cap_rng_normal(&r); G->R[i] = cap_rng_normal(&r); }
    for (int t = 0; t < G->T; t++) {
        G->tok[t] = cap_rng_int(&r, G->c.V);
        G->tgt[t] = (t % 2) ? cap_rng_int(&r, G->c.V) : -1;
    }
    if (readout)
        for (int i = 0; i < readout; i++) G->tgt[i] = cap_rng_int(&r, G->c.V);
}

static void gc_free(gc *G)
{
    cap_ws_free(&G->ws);
    free(G->pbase); free(G->gbase); free(G->x); free(G->dx); free(G->y); free(G->R);
}

static double sum_yr(const gc *G, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += G->y[i] * G->R[i];
    return s;
}

static void check_moe_selection(gc *G, int record)
{
    int l = G->c.layers[0].ffn == CAP_MOE ? 0 : 1;
    int n = G->T * G->c.layers[l].K;
    for (int i = 0; i < n; i++) {
        if (record) G->ref_sel[i] = G->ws.L[l].sel[i];
        else if (G->ref_sel[i] != G->ws.L[l].sel[i]) G->sel_changed = 1;
    }
}

static double op_loss(gc *G)
{
    int T = G->T, D = G->c.D, correct, graded;
    cap_layer_acts *a = &G->ws.L[0];
    switch (G->op) {
    case OP_EMBED: cap_embed_fwd(G->p.emb, G->tok, G->y, T, D); return sum_yr(G, T * D);
    case OP_RMSNORM: cap_rmsnorm_fwd(G->x, G->p.layer[0].norm1, G->y, a->rs1, T, D, G->c.eps); return sum_yr(G, T * D);
    case OP_LINEAR: cap_linear_fwd(G->x, G->p.layer[0].w_in, G->y, T, D, 3 * D); return sum_yr(G, 3 * T * D);
    case OP_CONV: cap_conv_fwd(&G->c, 0, T, &G->p.layer[0], a, G->x, G->y); return sum_yr(G, T * D);
    case OP_ATTN:
        cap_attn_fwd(&G->c, 0, T, &G->p.layer[0], a, G->x, G->y, G->ws.rope_cos, G->ws.rope_sin);
        return sum_yr(G, T * D);
    case OP_SWIGLU: cap_swiglu_fwd(&G->c, 0, T, &G->p.layer[0], a, G->x, G->y); return sum_yr(G, T * D);
    case OP_MOE:
        cap_moe_fwd(&G->c, 0, T, &G->p.layer[0], a, G->x, G->y);
        check_moe_selection(G, 0);
        return sum_yr(G, T * D);
    case OP_HEAD:
        memcpy(G->ws.hn, G->x, sizeof(double) * (size_t)T * D);
        return cap_head_loss(&G->c, &G->p, NULL, &G->ws, G->tgt, T, 1.0, NULL, &correct, &graded);
    default: {
        double l = cap_model_step(&G->c, &G->p, NULL, &G->ws, G->tok, G->tgt, T, 1.0, &correct, &graded);
        for (int i = 0; i < G->c.n_layers; i++)
            if (G->c.layers[i].ffn == CAP_MOE) check_moe_selection(G, 0);
        return l;
    }
    }
}

static void op_grad(gc *G)
{
    int T = G->T, D = G->c.D, correct, graded;
    cap_layer_acts *a = &G->ws.L[0];
    memset(G->gbase, 0, sizeof(double) * G->np);
    memset(G->dx, 0, sizeof(double) * (size_t)T * 3 * D);
    op_loss(G);
    if (G->op == OP_MOE) check_moe_selection(G, 1);
    switch (G->op) {
    case OP_EMBED: cap_embed_bwd(G->g.emb, G->tok, G->R, T, D); break;
    case OP_RMSNORM: cap_rmsnorm_bwd(G->x, G->p.layer[0].norm1, a->rs1, G->R, G->dx, G->g.layer[0].norm1, T, D); break;
    case OP_LINEAR: cap_linear_bwd(G->x, G->p.layer[0].w_in, G->R, G->dx, G->g.layer[0].w_in, T, D, 3 * D); break;
    case OP_CONV: cap_conv_bwd(&G->c, 0, T, &G->p.layer[0], &G->g.layer[0], a, G->x, G->R, G->dx, G->ws.scratch); break;
    case OP_ATTN:
        cap_attn_bwd(&G->c, 0, T, &G->p.layer[0], &G->g.layer[0], a, G->x, G->R, G->dx, G->ws.scratch,
                     G->ws.rope_cos, G->ws.rope_sin);
        break;
    case OP_SWIGLU: cap_swiglu_bwd(&G->c, 0, T, &G->p.layer[0], &G->g.layer[0], a, G->x, G->R, G->dx, G->ws.scratch); break;
    case OP_MOE: cap_moe_bwd(&G->c, 0, T, &G->p.layer[0], &G->g.layer[0], a, G->x, G->R, G->dx, G->ws.scratch); break;
    case OP_HEAD:
        memcpy(G->ws.hn, G->x, sizeof(double) * (size_t)T * D);
        cap_head_loss(&G->c, &G->p, &G->g, &G->ws, G->tgt, T, 1.0, G->dx, &correct, &graded);
        break;
    default:
        cap_model_step(&G->c, &G->p, &G->g, &G->ws, G->tok, G->tgt, T, 1.0, &correct, &graded);
        for (int i = 0; i < G->c.n_layers; i++)
            if (G->c.layers[i].ffn == CAP_MOE) {
                int n = T * G->c.layers[i].K;
                for (int j = 0; j < n; j++) G->ref_sel[j] = G->ws.L[i].sel[j];
            }
        break;
    }
}

/* Central differences on up to 40 entries of param; returns entries checked. */
static int check_array(gc *G, const char *what, double *param, const double *grad, size_t n)
{
    assert_non_null(param);
    size_t step = n > 40 ? n / 40 : 1;
    int checked = 0, skipped = 0, nonzero = 0;
    const double h = 1e-6;
    for (size_t i = 0; i < n; i += step) {
        double save = param[i];
        G->sel_changed = 0;
        param[i] = save + h;
        double lp = op_loss(G);
        param[i] = save - h;
        double lm = op_loss(G);
        param[i] = save;
        if (G->sel_changed) { skipped++; continue; }     /* top-k selection moved: not differentiable here */
        double num = (lp - lm) / (2 * h), ana = grad[i];
        double tol = 1e-7 + 1e-5 * fmax(fabs(num), fabs(ana));
        if (fabs(num - ana) > tol)
            fail_msg("%s[%zu]: analytic %.10g vs numeric %.10g", what, i, ana, num);
        checked++;
        nonzero += fabs(ana) > 1e-9;
    }
    assert_true(checked > skipped);
    assert_true(nonzero > 0);      /* a check on all-zero gradients would prove nothing */
    return checked;
}

static void test_grad_embedding_rmsnorm_linear(void **state)
{
    (void)state;
    cap_layer_cfg l = conv_swiglu();
    gc G;
    gc_setup(&G, OP_EMBED, &l, 1, 0);
    op_grad(&G);
    check_array(&G, "embedding", G.p.emb, G.g.emb, (size_t)G.c.V * G.c.D);
    G.op = OP_RMSNORM;
    op_grad(&G);
    check_array(&G, "rmsnorm gain", G.p.layer[0].norm1, G.g.layer[0].norm1, (size_t)G.c.D);
    check_array(&G, "rmsnorm input", G.x, G.dx, (size_t)G.T * G.c.D);
    G.op = OP_LINEAR;
    op_grad(&G);
    check_array(&G, "linear weight", G.p.layer[0].w_in, G.g.layer[0].w_in, (size_t)3 * G.c.D * G.c.D);
    check_array(&G, "linear input", G.x, G.dx, (size_t)G.T * G.c.D);
    gc_free(&G);
}

static void test_grad_conv_block(void **state)
{
    (void)state;
    cap_layer_cfg l = conv_swiglu();
    gc G;
    gc_setup(&G, OP_CONV, &l, 1, 0);
    op_grad(&G);
    size_t D = (size_t)G.c.D;
    check_array(&G, "conv in_proj", G.p.layer[0].w_in, G.g.layer[0].w_in, 3 * D * D);
    check_array(&G, "conv kernel", G.p.layer[0].w_conv, G.g.layer[0].w_conv, D * 3);
    check_array(&G, "conv out_proj", G.p.layer[0].w_out, G.g.layer[0].w_out, D * D);
    check_array(&G, "conv input", G.x, G.dx, (size_t)G.T * D);
    gc_free(&G);
}

static void check_attention(int nh, int nkv, bool qk)
{
    cap_layer_cfg l = {.mixer = CAP_GQA, .nh = nh, .nkv = nkv, .qk_norm = qk, .ffn = CAP_SWIGLU, .F = 12};
    gc G;
    gc_setup(&G, OP_ATTN, &l, 1, 0);
    op_grad(&G);
    size_t D = (size_t)G.c.D, qd = (size_t)nh * G.c.hd, kd = (size_t)nkv * G.c.hd;
    check_array(&G, "attn wq", G.p.layer[0].wq, G.g.layer[0].wq, qd * D);
    check_array(&G, "attn wk", G.p.layer[0].wk, G.g.layer[0].wk, kd * D);
    check_array(&G, "attn wv", G.p.layer[0].wv, G.g.layer[0].wv, kd * D);
    check_array(&G, "attn wo", G.p.layer[0].wo, G.g.layer[0].wo, D * qd);
    if (qk) {
        check_array(&G, "attn q-norm gain", G.p.layer[0].gq, G.g.layer[0].gq, (size_t)G.c.hd);
        check_array(&G, "attn k-norm gain", G.p.layer[0].gk, G.g.layer[0].gk, (size_t)G.c.hd);
    }
    check_array(&G, "attn input", G.x, G.dx, (size_t)G.T * D);
    gc_free(&G);
}

static void test_grad_attention(void **state)
{
    (void)state;
    check_attention(2, 1, true);    /* GQA 2:1 with QK-norm and RoPE */
    check_attention(4, 2, false);   /* without QK-norm */
    check_attention(2, 2, true);    /* plain multi-head */
}

static void test_grad_swiglu_moe(void **state)
{
    (void)state;
    cap_layer_cfg l = conv_swiglu();
    gc G;
    gc_setup(&G, OP_SWIGLU, &l, 1, 0);
    op_grad(&G);
    size_t D = (size_t)G.c.D, F = 12;
    check_array(&G, "swiglu w1", G.p.layer[0].w1, G.g.layer[0].w1, F * D);
    check_array(&G, "swiglu w3", G.p.layer[0].w3, G.g.layer[0].w3, F * D);
    check_array(&G, "swiglu w2", G.p.layer[0].w2, G.g.layer[0].w2, D * F);
    check_array(&G, "swiglu input", G.x, G.dx, (size_t)G.T * D);
    gc_free(&G);

    cap_layer_cfg m = {.mixer = CAP_CONV, .conv_L = 3, .ffn = CAP_MOE, .E = 4, .K = 2, .Fe = 6};
    gc_setup(&G, OP_MOE, &m, 1, 0);
    op_grad(&G);
    size_t E = 4, Fe = 6;
    check_array(&G, "moe router", G.p.layer[0].wg, G.g.layer[0].wg, E * D);
    check_array(&G, "moe w1", G.p.layer[0].w1, G.g.layer[0].w1, E * Fe * D);
    check_array(&G, "moe w3", G.p.layer[0].w3, G.g.layer[0].w3, E * Fe * D);
    check_array(&G, "moe w2", G.p.layer[0].w2, G.g.layer[0].w2, E * D * Fe);
    check_array(&G, "moe input", G.x, G.dx, (size_t)G.T * D);
    gc_free(&G);
}

static void test_grad_head_xent(void **state)
{
    (void)state;
    cap_layer_cfg l = conv_swiglu();
    gc G;
    gc_setup(&G, OP_HEAD, &l, 1, 0);
    op_grad(&G);
    check_array(&G, "head embedding", G.p.emb, G.g.emb, (size_t)G.c.V * G.c.D);
    check_array(&G, "head input", G.x, G.dx, (size_t)G.T * G.c.D);
    gc_free(&G);
    gc_setup(&G, OP_HEAD, &l, 1, 3);   /* compression readout */
    op_grad(&G);
    check_array(&G, "readout gains", G.p.readout, G.g.readout, (size_t)3 * G.c.D);
    check_array(&G, "readout input", G.x, G.dx, (size_t)G.T * G.c.D);
    gc_free(&G);
}

static void check_whole_model(int readout)
{
    cap_layer_cfg L[3] = {
        conv_swiglu(),
        {.mixer = CAP_GQA, .nh = 2, .nkv = 1, .qk_norm = true, .ffn = CAP_MOE, .E = 4, .K = 2, .Fe = 6},
        conv_swiglu(),
    };
    gc G;
    gc_setup(&G, OP_MODEL, L, 3, readout);
    op_grad(&G);
    /* every parameter block of the layout */
    cap_block blk[64];
    int nb = cap_param_blocks(&G.c, blk, 64);
    assert_true(nb > 10 && nb <= 64);
    for (int b = 0; b < nb; b++) {
        char what[32];
        snprintf(what, sizeof what, "model block %d", b);
        check_array(&G, what, G.pbase + blk[b].off, G.gbase + blk[b].off, blk[b].n);
    }
    gc_free(&G);
}

static void test_grad_whole_model(void **state)
{
    (void)state;
    check_whole_model(0);
    check_whole_model(2);
}

/* ---- tasks ------------------------------------------------------------------------ */
static void test_tasks_deterministic_and_valid(void **state)
{
    (void)state;
    sh_err err = {{0}};
    for (int k = 0; k < CAP_TASK_LM; k++) {       /* lm (real text) is tested below */
        cap_task t;
        cap_task_default((cap_task_kind)k, &t);
        t.n_train = 50;
        t.n_test = 20;
        cap_dataset a, b, c;
        assert_int_equal(cap_task_generate(&t, 5, 0, &a, &err), 0);
        assert_int_equal(cap_task_generate(&t, 5, 0, &b, &err), 0);
        assert_int_equal(cap_task_generate(&t, 5, 1, &c, &err), 0);
        size_t nt = (size_t)a.n * a.T, ng = (size_t)a.n * (a.readout ? a.readout : a.T);
        assert_memory_equal(a.tokens, b.tokens, nt * sizeof(int));
        assert_memory_equal(a.targets, b.targets, ng * sizeof(int));
        assert_true(memcmp(a.tokens, c.tokens, (size_t)c.n * c.T * sizeof(int)) != 0);
        int V = cap_task_model_vocab(&t), graded = 0;
        for (size_t i = 0; i < nt; i++) assert_true(a.tokens[i] >= 0 && a.tokens[i] < V);
        for (size_t i = 0; i < ng; i++) {
            assert_true(a.targets[i] >= -1 && a.targets[i] < V);
            graded += a.targets[i] >= 0;
        }
        assert_true(graded >= a.n);
        cap_dataset_free(&a); cap_dataset_free(&b); cap_dataset_free(&c);
    }
    cap_task bad;
    cap_task_default(CAP_TASK_MQAR, &bad);
    bad.pairs = 30;
    assert_int_not_equal(cap_task_check(&bad, &err), 0);
    assert_non_null(strstr(err.msg, "mqar"));
}

/* MQAR: every query's key sits farther back than a 4-layer kernel-3 conv stack sees. */
static void test_mqar_beyond_conv_reach(void **state)
{
    (void)state;
    sh_err err = {{0}};
    cap_task t;
    cap_task_default(CAP_TASK_MQAR, &t);
    t.n_train = 200;
    cap_dataset d;
    assert_int_equal(cap_task_generate(&t, 3, 0, &d, &err), 0);
    int reach = 4 * (3 - 1), queries = 0;
    for (int i = 0; i < d.n; i++) {
        const int *tok = d.tokens + (size_t)i * d.T, *tgt = d.targets + (size_t)i * d.T;
        for (int q = 0; q < d.T; q++) {
            if (tgt[q] < 0) continue;
            int s = 0;
            while (tok[s] != tok[q]) s++;        /* first occurrence = the key */
            assert_true(s < 2 * t.pairs && tok[s + 1] == tgt[q]);
            assert_true(q - (s + 1) > reach);
            queries++;
        }
    }
    assert_int_equal(queries, d.n * t.pairs);
    cap_dataset_free(&d);
    /* memorisation: one fixed map shared by train and test */
    cap_task_default(CAP_TASK_MEMORIZE, &t);
    t.n_train = 100;
    t.n_test = 100;
    cap_dataset tr, te;
    assert_int_equal(cap_task_generate(&t, 9, 0, &tr, &err), 0);
    assert_int_equal(cap_task_generate(&t, 9, 1, &te, &err), 0);
    int map[256];
    for (int i = 0; i < 256; i++) map[i] = -1;
    const cap_dataset *both[2] = {&tr, &te};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < (size_t)both[s]->n * both[s]->T; i++) {
            int tg = both[s]->targets[i];
            if (tg < 0) continue;
            int key = both[s]->tokens[i];
            if (map[key] < 0) map[key] = tg;
            assert_int_equal(map[key], tg);
        }
    cap_dataset_free(&tr); cap_dataset_free(&te);
}

/* ---- mapping ---------------------------------------------------------------------- */
static void test_map_genome(void **state)
{
    (void)state;
    sh_err err = {{0}};
    sh_genome g;
    cap_scale_cfg s;
    cap_model_cfg c;
    cap_scale_default(&s);
    assert_true(s.scale == 1.0 / 32 && s.max_layers == 32);
    assert_int_equal(sh_preset_get("lfm2-350m", &g, &err), 0);
    assert_int_equal(cap_map_genome(&g, &s, &c, &err), 0);
    assert_int_equal(c.n_layers, 16);                          /* depth kept */
    for (int l = 0; l < 16; l++)                               /* the exact layer pattern */
        assert_int_equal(c.layers[l].mixer, g.layers[l].mixer.kind == SH_MIXER_GQA ? CAP_GQA : CAP_CONV);
    assert_int_equal(c.D, 32);                                 /* 1024 / 32 */
    assert_int_equal(c.hd, 32);
    assert_int_equal(c.layers[2].nh, 1);                       /* 16*64/32 / 32 */
    assert_int_equal(c.layers[2].nkv, 1);
    assert_true(c.layers[2].qk_norm);
    assert_int_equal(c.layers[0].conv_L, 3);
    assert_int_equal(c.layers[0].F, 144);                      /* 4608 / 32: FFN ratio kept */
    s.scale = 1.0 / 16;
    assert_int_equal(cap_map_genome(&g, &s, &c, &err), 0);
    assert_int_equal(c.D, 64);
    assert_int_equal(c.layers[2].nh, 2);                       /* heads scale with width */
    assert_int_equal(c.layers[2].nkv, 1);                      /* GQA ratio 2 kept */
    assert_int_equal(c.layers[0].F, 288);
    s.max_layers = 6;                                          /* a depth cap squeezes the pattern */
    assert_int_equal(cap_map_genome(&g, &s, &c, &err), 0);
    int a6 = 0;
    for (int l = 0; l < 6; l++) a6 += c.layers[l].mixer == CAP_GQA;
    assert_int_equal(a6, 2);                                   /* round(6*6/16) */
    cap_scale_default(&s);
    assert_int_equal(sh_preset_get("lfm2-2.6b", &g, &err), 0);
    assert_int_equal(cap_map_genome(&g, &s, &c, &err), 0);
    assert_int_equal(c.n_layers, 30);                          /* 30 layers: all kept */
    assert_int_equal(c.D, 64);
    assert_int_equal(sh_preset_get("lfm2-8b-a1b", &g, &err), 0);
    assert_int_equal(cap_map_genome(&g, &s, &c, &err), 0);
    int moe = 0;
    for (int l = 0; l < c.n_layers; l++)
        if (c.layers[l].ffn == CAP_MOE) {
            moe++;
            assert_int_equal(c.layers[l].E, 32);               /* experts and top-k kept */
            assert_int_equal(c.layers[l].K, 4);
            assert_int_equal(c.layers[l].Fe, 56);              /* 1792 / 32 */
        }
    assert_true(moe > 0);
    /* genomes that differ only in hidden size get different proxies */
    sh_genome a, b;
    cap_model_cfg ca, cb;
    assert_int_equal(sh_genome_parse("d=1024 v=4096 hd=64 | conv(3)/swiglu(2048) gqa(8,4,qk)/swiglu(2048)", &a, &err), 0);
    assert_int_equal(sh_genome_parse("d=1088 v=4096 hd=64 | conv(3)/swiglu(2048) gqa(8,4,qk)/swiglu(2048)", &b, &err), 0);
    assert_int_equal(cap_map_genome(&a, &s, &ca, &err), 0);
    assert_int_equal(cap_map_genome(&b, &s, &cb, &err), 0);
    assert_int_equal(ca.D, 32);
    assert_int_equal(cb.D, 34);
    assert_true(cap_width_lr_mult(ca.D) > cap_width_lr_mult(cb.D));   /* 1/width rule */
    assert_true(cap_param_count_f64(&ca) < cap_param_count_f64(&cb));
    s.scale = 0.25;                                            /* the search's default scale, hidden step 64 */
    assert_int_equal(sh_genome_parse("d=128 v=4096 hd=32 | conv(3)/swiglu(256)", &a, &err), 0);
    assert_int_equal(sh_genome_parse("d=192 v=4096 hd=32 | conv(3)/swiglu(256)", &b, &err), 0);
    assert_int_equal(cap_map_genome(&a, &s, &ca, &err), 0);
    assert_int_equal(cap_map_genome(&b, &s, &cb, &err), 0);
    assert_int_not_equal(ca.D, cb.D);
    s.scale = 1;
    assert_int_equal(sh_genome_parse("d=64 v=256 hd=16 | conv(4)/swiglu(96) gqa(4,2,qk)/moe(4,2,32)", &g, &err), 0);
    assert_int_equal(cap_map_genome(&g, &s, &c, &err), 0);
    assert_int_equal(c.n_layers, 2);
    assert_int_equal(c.layers[0].conv_L, 4);
    assert_int_equal(c.layers[1].mixer, CAP_GQA);
    assert_int_equal(c.layers[1].nh, 2);                       /* 4*16 / 32 */
    assert_int_equal(c.layers[1].nkv, 1);
    s.scale = 0;
    assert_int_not_equal(cap_map_genome(&g, &s, &c, &err), 0);
    assert_non_null(strstr(err.msg, "scale"));
    s.scale = 2;
    assert_int_not_equal(cap_map_genome(&g, &s, &c, &err), 0);
    assert_non_null(strstr(err.msg, "scale"));
}

/* ---- training determinism ---------------------------------------------------------- */
static void tiny_train(int threads, cap_train_result *res)
{
    sh_err err = {{0}};
    cap_task t;
    cap_task_default(CAP_TASK_MQAR, &t);
    t.n_train = 48;
    t.n_test = 16;
    cap_model_cfg c = {.V = cap_task_model_vocab(&t), .D = 16, .hd = 8, .T = t.seq, .theta = 1e4, .eps = 1e-5, .n_layers = 2};
    c.layers[0] = (cap_layer_cfg){.mixer = CAP_CONV, .conv_L = 3, .ffn = CAP_SWIGLU, .F = 16};
    c.layers[1] = (cap_layer_cfg){.mixer = CAP_GQA, .nh = 2, .nkv = 1, .qk_norm = true, .ffn = CAP_MOE, .E = 4, .K = 2, .Fe = 8};
    cap_dataset tr, te;
    assert_int_equal(cap_task_generate(&t, 1, 0, &tr, &err), 0);
    assert_int_equal(cap_task_generate(&t, 1, 1, &te, &err), 0);
    cap_train_opts o = {.threads = threads, .seed = 3, .epochs = 2, .batch = 16, .lr = 3e-3, .clip = 1.0,
                        .warmup_steps = 1, .decay_frac = 0.2, .lr_mat_mult = 2};
    assert_int_equal(cap_train_and_eval(&c, &tr, &te, &o, res, &err), 0);
    cap_dataset_free(&tr); cap_dataset_free(&te);
}

static void test_training_thread_independent(void **state)
{
    (void)state;
    cap_train_result a, b;
    tiny_train(1, &a);
    tiny_train(2, &b);
    assert_true(a.final_loss > 0 && isfinite(a.final_loss));
    assert_true(a.final_loss == b.final_loss);       /* bitwise: fixed chunk reduction order */
    assert_true(a.accuracy == b.accuracy);
    assert_true(a.flops > 0 && a.examples == 2 * 48 + 16);
}

/* ---- store + scorers ------------------------------------------------------------------ */
typedef struct tmpdb { char dir[64], path[128]; sh_db *db; } tmpdb;

static void tmpdb_open(tmpdb *t)
{
    sh_err err = {{0}};
    snprintf(t->dir, sizeof t->dir, "/tmp/shcapXXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/runs.db", t->dir);
    assert_int_equal(sh_db_open(t->path, SH_DB_CREATE, &t->db, &err), 0);
}

static void tmpdb_close(tmpdb *t)
{
    sh_db_close(t->db);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s-wal", t->path); unlink(cmd);
    snprintf(cmd, sizeof cmd, "%s-shm", t->path); unlink(cmd);
    unlink(t->path);
    rmdir(t->dir);
}

static void count_progress(void *ctx, const char *line) { (void)line; (*(int *)ctx)++; }

static const char *SMALL = "d=64 v=256 hd=16 | conv(3)/swiglu(128) gqa(4,2,qk)/swiglu(128)";

static void test_builtin_score_is_stored_and_reused(void **state)
{
    (void)state;
    tmpdb t;
    tmpdb_open(&t);
    sh_err err = {{0}};
    sh_genome g;
    assert_int_equal(sh_genome_parse(SMALL, &g, &err), 0);
    sh_score_opts o;
    sh_score_opts_default(&o);
    int lines = 0;
    o.tasks = "mqar,compression";
    o.size_factor = 0.02;
    o.threads = 2;
    o.progress = count_progress;
    o.progress_ctx = &lines;
    sh_score_rec r1, r2, r3;
    assert_int_equal(sh_score_genome(t.db, &g, "builtin", &o, &r1, &err), 0);
    assert_string_equal(r1.status, "ok");
    assert_string_equal(r1.version, SH_SCORER_BUILTIN_VERSION);
    json_t *s = json_loads(r1.scores_json, 0, NULL);
    assert_non_null(s);
    assert_int_equal(json_object_size(s), 2);
    double m = json_number_value(json_object_get(s, "mqar")), c = json_number_value(json_object_get(s, "compression"));
    assert_true(m >= 0 && m <= 1 && c >= 0 && c <= 1);
    assert_true(fabs(r1.aggregate - (m + c) / 2) < 1e-12);
    json_decref(s);
    assert_non_null(strstr(r1.params_json, "\"n_train\":60"));  /* 3000 * 0.02 */
    assert_true(lines > 0);
    int after_first = lines;
    /* same question: answered from the store, nothing trained */
    assert_int_equal(sh_score_genome(t.db, &g, NULL, &o, &r2, &err), 0);
    assert_int_equal(lines, after_first);
    assert_string_equal(r2.scores_json, r1.scores_json);
    assert_true(r2.seconds == r1.seconds);
    /* different parameters (seed) are a different question */
    o.seed = 2;
    assert_int_equal(sh_score_genome(t.db, &g, "builtin", &o, &r3, &err), 0);
    assert_true(lines > after_first);
    sh_score_rec_free(&r3);
    /* --force recomputes and, being deterministic, gives the same scores */
    o.seed = 1;
    o.force = true;
    int before = lines;
    assert_int_equal(sh_score_genome(t.db, &g, "builtin", &o, &r3, &err), 0);
    assert_true(lines > before);
    assert_string_equal(r3.scores_json, r1.scores_json);
    sh_score_rec_free(&r1); sh_score_rec_free(&r2); sh_score_rec_free(&r3);
    /* bad task name: clear error, nothing stored */
    o.tasks = "mqar,telepathy";
    assert_int_not_equal(sh_score_genome(t.db, &g, "builtin", &o, &r1, &err), 0);
    assert_non_null(strstr(err.msg, "telepathy"));
    assert_int_not_equal(sh_score_genome(t.db, &g, "ftp://x", &o, &r1, &err), 0);
    assert_non_null(strstr(err.msg, "unknown scorer"));
    tmpdb_close(&t);
}

typedef struct worker_arg { const char *db_path, *genome; int rc; char status[16]; } worker_arg;

static void *score_worker(void *p)
{
    worker_arg *w = p;
    sh_err err = {{0}};
    sh_db *db;
    sh_genome g;
    w->rc = -1;
    if (sh_db_open(w->db_path, SH_DB_CREATE, &db, &err)) return NULL;
    if (sh_genome_parse(w->genome, &g, &err) == 0) {
        sh_score_opts o;
        sh_score_opts_default(&o);
        o.tasks = "compression";
        o.size_factor = 0.01;
        sh_score_rec r;
        w->rc = sh_score_genome(db, &g, "builtin", &o, &r, &err);
        snprintf(w->status, sizeof w->status, "%s", r.status);
        sh_score_rec_free(&r);
    }
    sh_db_close(db);
    return NULL;
}

/* Worker threads (one per device in the search) score different genomes at once. */
static void test_concurrent_scoring(void **state)
{
    (void)state;
    tmpdb t;
    tmpdb_open(&t);
    worker_arg a[2] = {{t.path, SMALL, 0, ""}, {t.path, "d=64 v=256 hd=16 | conv(3)/swiglu(64)*2", 0, ""}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, score_worker, &a[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(a[i].rc, 0);
        assert_string_equal(a[i].status, "ok");
    }
    tmpdb_close(&t);
}

static void test_split_argv(void **state)
{
    (void)state;
    sh_err err = {{0}};
    int n;
    char **a = sh_score_split_argv("  prog 'a b' \"c \\\" d\" e\\ f  g", &n, &err);
    assert_non_null(a);
    assert_int_equal(n, 5);
    assert_string_equal(a[0], "prog");
    assert_string_equal(a[1], "a b");
    assert_string_equal(a[2], "c \" d");
    assert_string_equal(a[3], "e f");
    assert_string_equal(a[4], "g");
    assert_null(a[5]);
    sh_score_argv_free(a);
    assert_null(sh_score_split_argv("prog 'open", &n, &err));
    assert_non_null(strstr(err.msg, "unterminated"));
    assert_null(sh_score_split_argv("   ", &n, &err));
}

/* Runs an external scorer expected to fail; checks the message and the stored failure. */
static void expect_failure(tmpdb *t, const sh_genome *g, const char *spec, sh_score_opts *o, const char *needle)
{
    sh_err err = {{0}};
    sh_score_rec r;
    if (sh_score_genome(t->db, g, spec, o, &r, &err) == 0) fail_msg("'%s' succeeded, expected '%s'", spec, needle);
    if (!strstr(err.msg, needle)) fail_msg("'%s': expected '%s' in: %s", spec, needle, err.msg);
    assert_string_equal(r.status, "failed");
    sh_score_rec_free(&r);
    sh_score_rec st;
    char name[128];
    sh_score_scorer_name(spec, name, sizeof name);
    char *params = sh_score_params_json(g, spec, o, &err);
    assert_non_null(params);
    if (sh_db_find_score(t->db, sh_genome_hash(g), name, SH_SCORER_EXTERNAL_VERSION, params, &st, &err))
        fail_msg("stored failure of '%s' not found: %s", spec, err.msg);
    free(params);
    assert_string_equal(st.status, "failed");
    assert_non_null(st.error);
    assert_non_null(strstr(st.error, needle));
    assert_null(st.scores_json);
    sh_score_rec_free(&st);
}

static void test_cmd_scorer(void **state)
{
    (void)state;
    tmpdb t;
    tmpdb_open(&t);
    sh_err err = {{0}};
    sh_genome g;
    assert_int_equal(sh_genome_parse(SMALL, &g, &err), 0);
    sh_score_opts o;
    sh_score_opts_default(&o);
    o.timeout_s = 20;
    sh_score_rec r;
    const char *good = "cmd:python3 -c 'import sys,json; g=json.load(sys.stdin); "
                       "print(json.dumps({\"layers\": len(g[\"layers\"]), \"hidden\": g[\"hidden\"], \"aggregate\": 0.5}))'";
    assert_int_equal(sh_score_genome(t.db, &g, good, &o, &r, &err), 0);
    assert_string_equal(r.status, "ok");
    assert_true(r.aggregate == 0.5);
    assert_non_null(strstr(r.scores_json, "\"layers\":2"));
    assert_non_null(strstr(r.scores_json, "\"hidden\":64"));
    assert_true(strlen(good) > 127 && strchr(r.scorer, '#') != NULL);   /* long spec: shortened + hash */
    assert_non_null(strstr(r.params_json, "print(json.dumps"));          /* full spec kept */
    sh_score_rec_free(&r);
    assert_int_equal(sh_score_genome(t.db, &g, good, &o, &r, &err), 0); /* stored: found again */
    assert_true(r.aggregate == 0.5);
    sh_score_rec_free(&r);
    /* the request carries the proxy scale and rung asked for */
    const char *echo = "cmd:python3 -c 'import sys,json; g=json.load(sys.stdin); "
                       "print(json.dumps({\"scale\": g[\"proxy_scale\"], \"rung\": g[\"rung\"], \"rungs\": g[\"rungs\"], "
                       "\"fraction\": g[\"rung_fraction\"]}))'";
    o.scale = 0.125;
    o.rung = 1;
    assert_int_equal(sh_score_genome(t.db, &g, echo, &o, &r, &err), 0);
    assert_non_null(strstr(r.scores_json, "\"scale\":0.125"));
    assert_non_null(strstr(r.scores_json, "\"rung\":1"));
    assert_non_null(strstr(r.scores_json, "\"rungs\":3"));
    assert_non_null(strstr(r.params_json, "\"rung\":1"));            /* stored per rung */
    json_t *js = json_loads(r.scores_json, 0, NULL);
    assert_true(fabs(json_number_value(json_object_get(js, "fraction")) - 1.0 / 3) < 1e-12);
    json_decref(js);
    sh_score_rec_free(&r);
    o.scale = 0;
    o.rung = -1;
    const char *mean = "cmd:python3 -c 'print(\"{\\\"a\\\": 1, \\\"b\\\": 0.5}\")'";
    assert_int_equal(sh_score_genome(t.db, &g, mean, &o, &r, &err), 0);
    assert_true(fabs(r.aggregate - 0.75) < 1e-12);                   /* mean when absent */
    sh_score_rec_free(&r);
    expect_failure(&t, &g, "cmd:python3 -c 'print(\"hello\")'", &o, "not JSON");
    expect_failure(&t, &g, "cmd:python3 -c 'print(\"[1, 2]\")'", &o, "not an object");
    expect_failure(&t, &g, "cmd:python3 -c 'print(\"{\\\"a\\\": \\\"x\\\"}\")'", &o, "not a finite number");
    expect_failure(&t, &g, "cmd:python3 -c 'import sys; sys.stderr.write(\"boom\\n\"); sys.exit(3)'", &o, "boom");
    expect_failure(&t, &g, "cmd:python3 -c 'print(\"x\" * 2000000)'", &o, "larger than");
    expect_failure(&t, &g, "cmd:/nonexistent/scorer", &o, "scorer");
    o.timeout_s = 0.5;
    expect_failure(&t, &g, "cmd:python3 -c 'import time; time.sleep(20)'", &o, "timed out");
    tmpdb_close(&t);
}

/* A real HTTP server on 127.0.0.1 (tests/helpers/capability_server.py). */
typedef struct server { pid_t pid; int to_child; int port; } server;

static void server_start_args(server *s, const char *a1, const char *a2, const char *a3);

static void server_start(server *s) { server_start_args(s, NULL, NULL, NULL); }

static void server_start_args(server *s, const char *a1, const char *a2, const char *a3)
{
    const char *root = getenv("STARHIL_ROOT");
    char script[1024];
    snprintf(script, sizeof script, "%s/tests/helpers/capability_server.py", root ? root : ".");
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]); close(out[0]);
        execlp("python3", "python3", script, a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    close(in[0]); close(out[1]);
    s->to_child = in[1];
    char line[64] = "";
    size_t n = 0;
    while (n + 1 < sizeof line) {
        ssize_t k = read(out[0], line + n, 1);
        if (k <= 0 || line[n] == '\n') break;
        n++;
    }
    line[n] = 0;
    close(out[0]);
    assert_int_equal(sscanf(line, "PORT %d", &s->port), 1);
}

static void server_stop(server *s)
{
    close(s->to_child);
    int st;
    waitpid(s->pid, &st, 0);
}

static void test_http_scorer(void **state)
{
    (void)state;
    server srv;
    server_start(&srv);
    tmpdb t;
    tmpdb_open(&t);
    sh_err err = {{0}};
    sh_genome g;
    assert_int_equal(sh_genome_parse(SMALL, &g, &err), 0);
    sh_score_opts o;
    sh_score_opts_default(&o);
    o.timeout_s = 10;
    o.backoff_s = 0.05;
    char url[128];
    sh_score_rec r;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", srv.port);
    assert_int_equal(sh_score_genome(t.db, &g, url, &o, &r, &err), 0);
    assert_true(fabs(r.aggregate - 0.5) < 1e-12);
    assert_non_null(strstr(r.scores_json, "\"mqar\":0.75"));
    sh_score_rec_free(&r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/flaky", srv.port);     /* 500, then 200 */
    assert_int_equal(sh_score_genome(t.db, &g, url, &o, &r, &err), 0);
    assert_string_equal(r.status, "ok");
    sh_score_rec_free(&r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/garbage", srv.port);
    expect_failure(&t, &g, url, &o, "not JSON");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/missing", srv.port);
    expect_failure(&t, &g, url, &o, "HTTP 404 (not retried)");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/big", srv.port);
    expect_failure(&t, &g, url, &o, "larger than");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/auth", srv.port);
    expect_failure(&t, &g, url, &o, "HTTP 401");
    setenv("SH_TEST_SCORER_TOKEN", "s3cret", 1);
    o.token_env = "SH_TEST_SCORER_TOKEN";
    assert_int_equal(sh_score_genome(t.db, &g, url, &o, &r, &err), 0);
    assert_null(strstr(r.params_json, "s3cret"));                        /* token never stored */
    sh_score_rec_free(&r);
    o.token_env = "SH_TEST_SCORER_UNSET_VAR";
    o.force = true;                                 /* else the stored ok answer is returned */
    expect_failure(&t, &g, url, &o, "is not set");
    o.token_env = NULL;
    o.timeout_s = 0.5;
    o.retries = 1;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", srv.port);
    expect_failure(&t, &g, url, &o, "after 2 attempts");
    server_stop(&srv);
    o.retries = 0;
    expect_failure(&t, &g, url, &o, "http scorer");                      /* connection refused */
    tmpdb_close(&t);
}

/* HTTPS with a throwaway self-signed certificate: verification is on by
 * default (the scorer must refuse the unknown issuer), and --insecure (an
 * explicit opt-in) accepts it.  A real TLS server, not a mock. */
static void test_https_scorer_verifies(void **state)
{
    (void)state;
    char dir[] = "/tmp/starhil-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[256], key[256], san[64];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(san, sizeof san, "subjectAltName=IP:127.0.0.1");
    char *argv[] = {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", san, NULL};
    sh_proc_opts po = {.timeout_s = 60};
    sh_proc_result pr;
    sh_err err = {{0}};
    assert_int_equal(sh_proc_run(argv, &po, &pr, &err), 0);
    if (!pr.exited || pr.exit_code != 0) fail_msg("openssl failed: %s", pr.err);
    sh_proc_result_free(&pr);
    server srv;
    server_start_args(&srv, "--tls", cert, key);
    tmpdb t;
    tmpdb_open(&t);
    sh_genome g;
    assert_int_equal(sh_genome_parse(SMALL, &g, &err), 0);
    sh_score_opts o;
    sh_score_opts_default(&o);
    o.timeout_s = 10;
    o.retries = 0;
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/ok", srv.port);
    expect_failure(&t, &g, url, &o, "certificate");      /* self-signed: refused by default */
    o.insecure = true;
    o.force = true;
    sh_score_rec r;
    assert_int_equal(sh_score_genome(t.db, &g, url, &o, &r, &err), 0);
    assert_string_equal(r.status, "ok");
    assert_true(fabs(r.aggregate - 0.5) < 1e-12);
    sh_score_rec_free(&r);
    server_stop(&srv);
    tmpdb_close(&t);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

/* ---- language modelling on text ------------------------------------------------------ */
/* Deterministic English-like text of about n bytes. */
static char *make_prose(size_t n)
{
    static const char *const W[] = {"the", "quick", "model", "reads", "every", "byte", "of", "plain", "text",
                                    "and", "learns", "which", "letter", "comes", "next", "in", "a", "sentence"};
    char *t = malloc(n + 64);
    size_t k = 0;
    uint64_t x = 88172645463325252ull;
    while (k < n) {
        int words = 4 + (int)(x % 7);
        for (int w = 0; w < words && k < n; w++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            const char *wd = W[x % 18];
            if (w) k += (size_t)sprintf(t + k, " %s", wd);
            else k += (size_t)sprintf(t + k, "%c%s", wd[0] - 32, wd + 1);   /* capitalised */
        }
        k += (size_t)sprintf(t + k, ".%s", (x & 3) ? " " : "\n");
    }
    t[n] = 0;
    return t;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void test_lm_heldout_never_overlaps(void **state)
{
    (void)state;
    sh_err err = {{0}};
    char *txt = make_prose(40000);
    cap_corpus c;
    assert_int_equal(cap_corpus_from_bytes("prose", txt, 40000, &c, &err), 0);
    assert_true(c.split >= 36000 && c.split < 40000 && c.data[c.split - 1] == '\n');   /* a line start */
    cap_task t;
    cap_task_default(CAP_TASK_LM, &t);
    t.corpus = &c;
    t.n_train = 400;
    t.n_test = 20;
    cap_dataset tr, te, tr2;
    assert_int_equal(cap_task_generate(&t, 5, 0, &tr, &err), 0);
    assert_int_equal(cap_task_generate(&t, 5, 1, &te, &err), 0);
    assert_int_equal(cap_task_generate(&t, 6, 0, &tr2, &err), 0);
    long lo = -1, hi = 0;
    for (int i = 0; i < tr.n; i++) {
        assert_true(tr.offsets[i] >= 0 && (size_t)tr.offsets[i] + (size_t)t.seq + 1 <= c.split);  /* inside train */
        if (lo < 0 || tr.offsets[i] < lo) lo = tr.offsets[i];
        if (tr.offsets[i] > hi) hi = tr.offsets[i];
        for (int j = 0; j < t.seq; j++) {
            assert_int_equal(tr.tokens[i * t.seq + j], (unsigned char)txt[tr.offsets[i] + j]);
            assert_int_equal(tr.targets[i * t.seq + j], (unsigned char)txt[tr.offsets[i] + j + 1]);
        }
    }
    assert_true(hi - lo > 30000);                   /* the windows cover the train range */
    for (int i = 0; i < te.n; i++)
        assert_true((size_t)te.offsets[i] >= c.split && (size_t)te.offsets[i] + (size_t)t.seq + 1 <= c.n);
    assert_true(memcmp(tr.offsets, tr2.offsets, sizeof(long) * 8) != 0);   /* seeded */
    cap_dataset_free(&tr); cap_dataset_free(&te); cap_dataset_free(&tr2);
    cap_corpus_free(&c);
    free(txt);
}

static void test_lm_bad_corpus(void **state)
{
    (void)state;
    tmpdb t;
    tmpdb_open(&t);
    sh_err err = {{0}};
    sh_genome g;
    assert_int_equal(sh_genome_parse(SMALL, &g, &err), 0);
    sh_score_opts o;
    sh_score_opts_default(&o);
    o.tasks = "lm";
    o.tokens = 2048;
    sh_score_rec r;
    char path[256];
    struct { const char *data; size_t n; const char *want; } cases[] = {
        {"", 0, "empty"},
        {"text\0with a NUL", 15, "binary"},
        {"\x01\x02\x03\x04 mostly control bytes \x05\x06\x07\x08\x0b\x0e\x0f\x10", 30, "binary"},
        {"Far too short to hold one batch of windows.\n", 44, "smaller than one batch"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/corpus%zu.txt", t.dir, i);
        write_file(path, cases[i].data, cases[i].n);
        o.corpus = path;
        err.msg[0] = 0;
        assert_int_not_equal(sh_score_genome(t.db, &g, "builtin", &o, &r, &err), 0);
        if (!strstr(err.msg, cases[i].want) || !strstr(err.msg, path)) {
            print_message("case %zu: %s\n", i, err.msg);
            fail();
        }
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/no-such-corpus.txt", t.dir);
    o.corpus = path;
    assert_int_not_equal(sh_score_genome(t.db, &g, "builtin", &o, &r, &err), 0);
    assert_non_null(strstr(err.msg, "cannot read"));
    assert_non_null(strstr(err.msg, "no-such-corpus"));
    sh_score_rec *all;
    int n;
    assert_int_equal(sh_db_list_scores(t.db, NULL, &all, &n, &err), 0);
    assert_int_equal(n, 0);                          /* nothing stored for bad input */
    sh_score_recs_free(all, n);
    tmpdb_close(&t);
}

/* A score is the same bits for a seed whatever the thread count; a higher rung
 * continued from a lower rung's state equals training it from scratch. */
static void test_lm_reproducible_and_rungs_continue(void **state)
{
    (void)state;
    tmpdb t;
    tmpdb_open(&t);
    sh_err err = {{0}};
    char *txt = make_prose(60000), path[256], sdir[256];
    snprintf(path, sizeof path, "%s/prose.txt", t.dir);
    snprintf(sdir, sizeof sdir, "%s/states", t.dir);
    write_file(path, txt, strlen(txt));
    free(txt);
    sh_genome g;
    assert_int_equal(sh_genome_parse("d=512 v=4096 hd=32 | conv(3)/swiglu(768) gqa(4,2,qk)/swiglu(768)", &g, &err), 0);
    sh_score_opts o;
    sh_score_opts_default(&o);
    o.tasks = "lm";
    o.corpus = path;
    o.tokens = 18 * 1024;                            /* 18 steps at the top rung: 2, 6, 18 */
    o.threads = 1;
    sh_score_rec a, b, r0, r1, r1s, r2;
    assert_int_equal(sh_score_genome(t.db, &g, "builtin", &o, &a, &err), 0);
    assert_non_null(strstr(a.params_json, "\"rung\":{"));
    assert_non_null(strstr(a.params_json, "\"fraction\":1"));
    assert_non_null(strstr(a.params_json, "\"scale\":0.03125"));
    assert_non_null(strstr(a.params_json, "\"tokens\":18432"));
    assert_non_null(strstr(a.params_json, "\"heldout_from\":"));
    json_t *sj = json_loads(a.scores_json, 0, NULL);
    double bpb = json_number_value(json_object_get(sj, "lm_bpb"));
    json_decref(sj);
    assert_true(bpb > 0.5 && bpb < 8.5);
    assert_true(fabs(a.aggregate - (1 - bpb / 8)) < 1e-12);
    /* the options read back from the stored parameters ask the same question */
    sh_score_opts back;
    sh_score_opts_default(&back);
    assert_int_equal(sh_score_opts_from_params_json(a.params_json, &back, &err), 0);
    char *again = sh_score_params_json(&g, "builtin", &back, &err);
    assert_non_null(again);
    assert_string_equal(again, a.params_json);
    free(again);
    sh_score_opts_free_strings(&back);
    o.force = true;
    o.threads = 2;
    assert_int_equal(sh_score_genome(t.db, &g, "builtin", &o, &b, &err), 0);
    assert_string_equal(a.scores_json, b.scores_json);   /* bitwise, 1 vs 2 threads */
    o.force = false;
    /* rungs: 0 then 1 with a state dir (1 continues 0), 1 without (from scratch) */
    o.state_dir = sdir;
    o.rung = 0;
    assert_int_equal(sh_score_genome(t.db, &g, "builtin", &o, &r0, &err), 0);
    assert_non_null(strstr(r0.params_json, "\"rung\":0"));
    int files = 0;
    DIR *dir = opendir(sdir);
    assert_non_null(dir);
    for (struct dirent *e; (e = readdir(dir));) files += strstr(e->d_name, ".state") != NULL;
    closedir(dir);
    assert_int_equal(files, 1);                      /* rung 0 left its checkpoint */
    int from0 = -1, from1 = -1, from2 = -1;
    o.rung = 1;
    assert_int_equal(sh_score_state_step(&g, "builtin", &o, &from1, &err), 0);
    assert_true(from1 > 0 && from1 < 2);             /* rung 1 would continue rung 0's decay start */
    int lines = 0;
    o.progress = count_progress;
    o.progress_ctx = &lines;
    assert_int_equal(sh_score_genome(t.db, &g, "builtin", &o, &r1, &err), 0);
    assert_true(lines > 0);
    o.state_dir = NULL;
    o.force = true;
    assert_int_equal(sh_score_genome(t.db, &g, "builtin", &o, &r1s, &err), 0);
    assert_string_equal(r1.scores_json, r1s.scores_json);   /* continued == from scratch, bit for bit */
    assert_string_not_equal(r0.scores_json, r1.scores_json);
    /* the top rung continued from rung 1 equals the scratch top-rung score */
    o.state_dir = sdir;
    o.rung = 2;
    assert_int_equal(sh_score_state_step(&g, "builtin", &o, &from2, &err), 0);
    assert_true(from2 > from1 && from2 < 6);         /* rung 1's decay start */
    o.rung = 0;
    assert_int_equal(sh_score_state_step(&g, "builtin", &o, &from0, &err), 0);
    assert_int_equal(from0, 0);                      /* a higher rung's state: rung 0 would start afresh */
    o.rung = 2;
    assert_int_equal(sh_score_genome(t.db, &g, "builtin", &o, &r2, &err), 0);
    assert_string_equal(r2.scores_json, a.scores_json);
    sh_score_rec_free(&a); sh_score_rec_free(&b); sh_score_rec_free(&r0);
    sh_score_rec_free(&r1); sh_score_rec_free(&r1s); sh_score_rec_free(&r2);
    dir = opendir(sdir);
    assert_non_null(dir);
    files = 0;
    for (struct dirent *e; (e = readdir(dir));) files += strstr(e->d_name, ".state") != NULL;
    closedir(dir);
    assert_int_equal(files, 0);                      /* the top rung removed the checkpoint */
    assert_int_equal(sh_score_state_step(&g, "builtin", &o, &from2, &err), 0);
    assert_int_equal(from2, 0);
    assert_int_equal(sh_score_drop_state(&g, "builtin", &o, &err), 0);   /* nothing left to remove */
    rmdir(sdir);
    unlink(path);
    tmpdb_close(&t);
}

/* ---- discrimination: hybrid solves MQAR, all-conv cannot (release binary) ---------------- */
static double score_mqar(const char *exe, const char *db, const char *genome)
{
    /* width 64 (scale 1/16), 4 layers: the pattern squeezed as in MAD's 4-layer setting */
    char *argv[] = {(char *)exe, "--db", (char *)db, "score", (char *)genome, "--tasks", "mqar", "--scale", "0.0625",
                    "--layers", "4", "--threads", "2", "--no-state", "--quiet", "--json", NULL};
    sh_proc_opts po = {.timeout_s = 900};
    sh_proc_result pr;
    sh_err err = {{0}};
    assert_int_equal(sh_proc_run(argv, &po, &pr, &err), 0);
    if (!pr.exited || pr.exit_code != 0) fail_msg("starhil score failed: %s", pr.err ? pr.err : "");
    json_t *j = json_loads(pr.out, 0, NULL);
    assert_non_null(j);
    double acc = json_number_value(json_object_get(json_object_get(j, "scores"), "mqar"));
    print_message("# mqar %.3f  %s\n", acc, genome);
    json_decref(j);
    sh_proc_result_free(&pr);
    return acc;
}

static void test_hybrid_beats_all_conv_on_recall(void **state)
{
    (void)state;
    const char *root = getenv("STARHIL_ROOT");
    char exe[1024];
    snprintf(exe, sizeof exe, "%s/starhil", root ? root : ".");
    if (access(exe, X_OK) != 0) fail_msg("release binary %s missing (make builds it before tests)", exe);
    tmpdb t;
    tmpdb_open(&t);
    double hybrid = score_mqar(exe, t.path, "lfm2-350m");
    double conv = score_mqar(exe, t.path, "d=1024 v=65536 hd=64 theta=1e+06 eps=1e-05 ctx=128000 tie=1 | conv(3)/swiglu(4608)*16");
    assert_true(hybrid >= 0.9);
    assert_true(conv <= 0.5);
    tmpdb_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_embedding_rmsnorm_linear),
        cmocka_unit_test(test_grad_conv_block),
        cmocka_unit_test(test_grad_attention),
        cmocka_unit_test(test_grad_swiglu_moe),
        cmocka_unit_test(test_grad_head_xent),
        cmocka_unit_test(test_grad_whole_model),
        cmocka_unit_test(test_tasks_deterministic_and_valid),
        cmocka_unit_test(test_mqar_beyond_conv_reach),
        cmocka_unit_test(test_map_genome),
        cmocka_unit_test(test_training_thread_independent),
        cmocka_unit_test(test_lm_heldout_never_overlaps),
        cmocka_unit_test(test_lm_bad_corpus),
        cmocka_unit_test(test_lm_reproducible_and_rungs_continue),
        cmocka_unit_test(test_builtin_score_is_stored_and_reused),
        cmocka_unit_test(test_concurrent_scoring),
        cmocka_unit_test(test_split_argv),
        cmocka_unit_test(test_cmd_scorer),
        cmocka_unit_test(test_http_scorer),
        cmocka_unit_test(test_https_scorer_verifies),
        cmocka_unit_test(test_hybrid_beats_all_conv_on_recall),
    };
    if (getenv("SH_TEST_FILTER")) cmocka_set_test_filter(getenv("SH_TEST_FILTER"));   /* e.g. "*rungs*" */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
