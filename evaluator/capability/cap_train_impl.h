/* cap_train_impl.h - included by cap_train.c and cap_simd_x86.c: trains the
 * scaled-down model on one task and measures test
 * accuracy and loss: AdamW with a warmup-stable-decay schedule (linear
 * warm-up, constant, linear decay to 0 over the last decay_frac of the steps),
 * hidden matrices at lr * lr_mat_mult (width rule), global-norm gradient
 * clipping, pthreads over the batch.  A run can start from a saved state and
 * save the state where its decay starts: the data order is a function of the
 * step index only, so continuing a checkpoint of a shorter run to a longer
 * budget gives the same bits as training the longer budget from scratch.
 *
 * Determinism: each batch is cut into CAP_CHUNKS fixed chunks; each chunk's
 * gradient goes into its own buffer (whichever thread computes it) and the
 * buffers are summed in chunk order, so results depend on the seed only, not
 * on the thread count.
 *
 * Threads: a pool started once per training (threads - 1 workers beside the
 * calling thread).  Every parallel phase (the chunks of a batch; summing the
 * chunk gradients; the AdamW update) is a list of work items that whichever
 * thread is running claims one at a time, and the phase ends when every item
 * is done, not when every thread has reported.  On a machine shared with
 * other work a thread may wait for a CPU for a whole time slice: with a fixed
 * share per thread (and a thread created per step) the step waited for it;
 * now the threads that run take its items, and a worker that wakes late finds
 * the phase done.  The sum and the update go by fixed element ranges (each
 * element's arithmetic as in one pass); only the gradient norm, a sum whose
 * order decides its last bits, stays one sequential pass. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evaluator/capability/cap_model.h"

/* Exported names get a suffix: _generic here, _avx2 in cap_simd_x86.c; the
 * dispatcher (cap_dispatch.c) picks one at run time. */
#ifndef CAP_TRAIN_FN
#define CAP_TRAIN_FN(n) n##_generic
#endif
int CAP_TRAIN_FN(cap_train_and_eval)(const cap_model_cfg *cfg, const cap_dataset *train, const cap_dataset *test,
                                     const cap_train_opts *o, cap_train_result *res, sh_err *err);
double CAP_TRAIN_FN(cap_measure_matmul_gflops)(int n, int threads);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct trainer trainer;
typedef struct adamw adamw;

typedef struct worker {
    trainer *tr;
    int id;
    cap_ws ws;
    double loss;
    long correct, graded;
} worker;

struct trainer {
    const cap_model_cfg *cfg;
    const cap_dataset *ds;
    cap_params p;
    cap_real *pbase;
    cap_real *gbase[CAP_CHUNKS];
    cap_params g[CAP_CHUNKS];
    size_t np;
    int nthreads;
    worker w[CAP_CHUNKS];
    /* current job */
    const int *batch;      /* example indices */
    int bn;
    double scale;
    int train;             /* 1: forward+backward into chunk buffers, 0: eval */
    double chunk_loss[CAP_CHUNKS];
    /* the pool: the phase running is items 0..n_items-1 of fn (generation gen);
     * next = first unclaimed item, done = items finished */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    pthread_t th[CAP_CHUNKS];
    int n_th;               /* pool threads started (workers 1..n_th) */
    int pool_ok, quit;
    unsigned gen;
    void (*fn)(worker *w, int item);
    int n_items, next, done;
    /* the optimizer step being applied (phase adam_range) */
    adamw *opt;
    double lr0, mat_mult, wd, gscale, c1, c2;
};

/* Element ranges of the parallel gradient sum and AdamW update. */
#define CAP_RANGE 8192

static const int *targets_of(const cap_dataset *ds, int i)
{
    return ds->targets + (size_t)i * (ds->readout ? ds->readout : ds->T);
}

static void run_chunk(worker *w, int c)
{
    /* (one chunk of the batch: its own gradient buffer and loss slot) */
    trainer *tr = w->tr;
    int lo = (int)((long)tr->bn * c / CAP_CHUNKS), hi = (int)((long)tr->bn * (c + 1) / CAP_CHUNKS);
    double loss = 0;
    if (tr->train) memset(tr->gbase[c], 0, sizeof(cap_real) * tr->np);
    for (int i = lo; i < hi; i++) {
        int ex = tr->batch[i], correct, graded;
        const int *tok = tr->ds->tokens + (size_t)ex * tr->ds->T;
        loss += cap_model_step(tr->cfg, &tr->p, tr->train ? &tr->g[c] : NULL, &w->ws, tok,
                               targets_of(tr->ds, ex), tr->ds->T, tr->scale, &correct, &graded);
        w->correct += correct;
        w->graded += graded;
    }
    tr->chunk_loss[c] = loss;
}

/* Claims and runs items of the current phase until none is left (called
 * and returning with tr->mu held). */
static void claim_items(trainer *tr, worker *w)
{
    while (tr->next < tr->n_items) {
        int i = tr->next++;
        void (*fn)(worker *, int) = tr->fn;
        pthread_mutex_unlock(&tr->mu);
        fn(w, i);
        pthread_mutex_lock(&tr->mu);
        if (++tr->done == tr->n_items) pthread_cond_signal(&tr->done_cv);
    }
}

static void *pool_main(void *arg)
{
    worker *w = arg;
    trainer *tr = w->tr;
    unsigned seen = 0;
    pthread_mutex_lock(&tr->mu);
    for (;;) {
        while (!tr->quit && tr->gen == seen) pthread_cond_wait(&tr->work_cv, &tr->mu);
        if (tr->quit) break;
        seen = tr->gen;
        claim_items(tr, w);
    }
    pthread_mutex_unlock(&tr->mu);
    return NULL;
}

/* Runs items 0..n-1 of fn: the calling thread (worker 0) and the pool claim
 * them; returns when all are done. */
static void run_phase(trainer *tr, void (*fn)(worker *, int), int n)
{
    if (!tr->pool_ok) {   /* one thread */
        for (int i = 0; i < n; i++) fn(&tr->w[0], i);
        return;
    }
    pthread_mutex_lock(&tr->mu);
    tr->fn = fn;
    tr->n_items = n;
    tr->next = tr->done = 0;
    tr->gen++;
    if (n > 1) pthread_cond_broadcast(&tr->work_cv);
    claim_items(tr, &tr->w[0]);
    while (tr->done < tr->n_items) pthread_cond_wait(&tr->done_cv, &tr->mu);
    pthread_mutex_unlock(&tr->mu);
}

static void pool_start(trainer *tr)
{
    if (tr->nthreads < 2 || pthread_mutex_init(&tr->mu, NULL)) return;
    pthread_cond_init(&tr->work_cv, NULL);
    pthread_cond_init(&tr->done_cv, NULL);
    tr->pool_ok = 1;
    for (int k = 1; k < tr->nthreads; k++) {
        if (pthread_create(&tr->th[k - 1], NULL, pool_main, &tr->w[k]) != 0) break;   /* fewer: the others claim more */
        tr->n_th++;
    }
}

static void pool_stop(trainer *tr)
{
    if (!tr->pool_ok) return;
    pthread_mutex_lock(&tr->mu);
    tr->quit = 1;
    pthread_cond_broadcast(&tr->work_cv);
    pthread_mutex_unlock(&tr->mu);
    for (int k = 0; k < tr->n_th; k++) pthread_join(tr->th[k], NULL);
    pthread_cond_destroy(&tr->work_cv);
    pthread_cond_destroy(&tr->done_cv);
    pthread_mutex_destroy(&tr->mu);
    tr->pool_ok = 0;
}

/* Runs all chunks of the current job on the worker threads. */
static void run_job(trainer *tr) { run_phase(tr, run_chunk, CAP_CHUNKS); }

static void trainer_free(trainer *tr)
{
    pool_stop(tr);
    free(tr->pbase);
    for (int c = 0; c < CAP_CHUNKS; c++) free(tr->gbase[c]);
    for (int k = 0; k < CAP_CHUNKS; k++) cap_ws_free(&tr->w[k].ws);
}

static double forward_flops(const cap_model_cfg *c, int T, int graded) { return cap_forward_flops(c, T, graded); }

static int trainer_init(trainer *tr, const cap_model_cfg *cfg, const cap_train_opts *o, sh_err *err)
{
    memset(tr, 0, sizeof *tr);
    tr->cfg = cfg;
    tr->np = cap_param_count(cfg);
    tr->nthreads = o->threads < 1 ? 1 : (o->threads > CAP_CHUNKS ? CAP_CHUNKS : o->threads);
    tr->pbase = calloc(tr->np, sizeof(cap_real));
    if (!tr->pbase) return sh_err_set(err, "capability trainer: out of memory for %zu parameters", tr->np);
    for (int c = 0; c < CAP_CHUNKS; c++) {
        tr->gbase[c] = calloc(tr->np, sizeof(cap_real));
        if (!tr->gbase[c]) return sh_err_set(err, "capability trainer: out of memory for gradients");
        cap_params_bind(cfg, tr->gbase[c], &tr->g[c]);
    }
    if (o->resume) {
        if (o->resume->np != tr->np || !o->resume->p)
            return sh_err_set(err, "capability trainer: saved state has %zu parameters, the proxy %zu",
                              o->resume->np, tr->np);
        for (size_t i = 0; i < tr->np; i++) tr->pbase[i] = (cap_real)o->resume->p[i];
    } else {
        cap_params_init(cfg, tr->pbase, o->seed);
    }
    cap_params_bind(cfg, tr->pbase, &tr->p);
    for (int k = 0; k < tr->nthreads; k++) {
        tr->w[k].tr = tr;
        tr->w[k].id = k;
        if (cap_ws_alloc(cfg, &tr->w[k].ws)) return sh_err_set(err, "capability trainer: out of memory for activations");
    }
    pool_start(tr);
    return 0;
}

static void reset_counts(trainer *tr)
{
    for (int k = 0; k < tr->nthreads; k++) { tr->w[k].correct = 0; tr->w[k].graded = 0; }
}

static int n_ranges(const trainer *tr) { return (int)((tr->np + CAP_RANGE - 1) / CAP_RANGE); }

/* One element range of the chunk gradients summed in chunk order into gbase[0]. */
static void sum_range(worker *w, int r)
{
    trainer *tr = w->tr;
    size_t lo = (size_t)r * CAP_RANGE, hi = lo + CAP_RANGE < tr->np ? lo + CAP_RANGE : tr->np;
    cap_real *g = tr->gbase[0];
    for (size_t i = lo; i < hi; i++) {
        cap_real s = g[i];
        for (int c = 1; c < CAP_CHUNKS; c++) s += tr->gbase[c][i];
        g[i] = s;
    }
}

/* Sum chunk gradients in chunk order into gbase[0]; returns the global L2 norm
 * (summed in element order: its bits do not depend on the threads). */
static double reduce_grads(trainer *tr)
{
    run_phase(tr, sum_range, n_ranges(tr));
    const cap_real *g = tr->gbase[0];
    double ss = 0;
    for (size_t i = 0; i < tr->np; i++) ss += (double)g[i] * g[i];
    return sqrt(ss);
}

struct adamw {
    float *m, *v;
    cap_block blk[4 + 16 * CAP_MAX_LAYERS];
    int nblk;
};

/* The AdamW update of one element range (blocks give each element its rate
 * and decay). */
static void adam_range(worker *w, int r)
{
    const double b1 = 0.9, b2 = 0.99, eps = 1e-8;
    trainer *tr = w->tr;
    adamw *a = tr->opt;
    size_t lo = (size_t)r * CAP_RANGE, hi = lo + CAP_RANGE < tr->np ? lo + CAP_RANGE : tr->np;
    cap_real *p = tr->pbase, *g = tr->gbase[0];
    double c1 = tr->c1, c2 = tr->c2, gscale = tr->gscale;
    for (int b = 0; b < a->nblk; b++) {
        size_t b0 = a->blk[b].off, b1e = a->blk[b].off + a->blk[b].n;
        if (b1e <= lo || b0 >= hi) continue;
        double decay = a->blk[b].decay ? tr->wd : 0, lr = a->blk[b].mat ? tr->lr0 * tr->mat_mult : tr->lr0;
        for (size_t i = b0 > lo ? b0 : lo; i < (b1e < hi ? b1e : hi); i++) {
            double gi = g[i] * gscale;
            a->m[i] = (float)(b1 * a->m[i] + (1 - b1) * gi);
            a->v[i] = (float)(b2 * a->v[i] + (1 - b2) * gi * gi);
            double upd = (a->m[i] / c1) / (sqrt(a->v[i] / c2) + eps) + decay * p[i];
            p[i] = (cap_real)(p[i] - lr * upd);
        }
    }
}

static void adamw_step(trainer *tr, adamw *a, double lr0, double mat_mult, double wd, double gscale, int step)
{
    tr->opt = a;
    tr->lr0 = lr0;
    tr->mat_mult = mat_mult;
    tr->wd = wd;
    tr->gscale = gscale;
    tr->c1 = 1 - pow(0.9, step + 1);
    tr->c2 = 1 - pow(0.99, step + 1);
    run_phase(tr, adam_range, n_ranges(tr));
}

/* warmup-stable-decay: linear warm-up over `warm` steps, constant, then
 * linear decay to 0 over the steps from cap_decay_start(total). */
static double lr_at(const cap_train_opts *o, int step, int total, int warm)
{
    double f = step < warm ? (double)(step + 1) / warm : 1.0;
    int d0 = cap_decay_start(total, o->decay_frac);
    if (step >= d0 && total > d0) f *= (double)(total - step) / (total - d0);
    return o->lr * f;
}

static long count_graded(const cap_dataset *ds, int i)
{
    if (ds->readout) return ds->readout;
    long n = 0;
    const int *t = targets_of(ds, i);
    for (int j = 0; j < ds->T; j++) n += t[j] >= 0;
    return n;
}

static int save_state(const trainer *tr, const adamw *a, int step, cap_train_state *st, sh_err *err)
{
    cap_train_state_free(st);
    st->p = malloc(sizeof(float) * tr->np);
    st->m = malloc(sizeof(float) * tr->np);
    st->v = malloc(sizeof(float) * tr->np);
    if (!st->p || !st->m || !st->v) {
        cap_train_state_free(st);
        return sh_err_set(err, "capability trainer: out of memory for a checkpoint");
    }
    for (size_t i = 0; i < tr->np; i++) st->p[i] = (float)tr->pbase[i];
    memcpy(st->m, a->m, sizeof(float) * tr->np);
    memcpy(st->v, a->v, sizeof(float) * tr->np);
    st->np = tr->np;
    st->step = step;
    return 0;
}

/* The example order of one epoch: identity (sequential) or a shuffle seeded by
 * (seed, epoch), so the order at any step does not depend on the budget. */
static void epoch_order(const cap_train_opts *o, int *order, int n, int epoch)
{
    for (int i = 0; i < n; i++) order[i] = i;
    if (o->sequential) return;
    cap_rng r;
    cap_rng_seed(&r, (o->seed ^ 0x5348554646ull) + 0x9E3779B97F4A7C15ull * (uint64_t)(epoch + 1));
    for (int i = n - 1; i > 0; i--) {
        int j = cap_rng_int(&r, i + 1), x = order[i];
        order[i] = order[j]; order[j] = x;
    }
}

static int train_loop(trainer *tr, const cap_dataset *train, const cap_train_opts *o,
                      cap_train_result *res, sh_err *err)
{
    adamw a = {0};
    a.nblk = cap_param_blocks(tr->cfg, a.blk, (int)(sizeof a.blk / sizeof a.blk[0]));
    a.m = calloc(tr->np, sizeof(float));
    a.v = calloc(tr->np, sizeof(float));
    int *order = malloc(sizeof(int) * (size_t)train->n);
    if (!a.m || !a.v || !order || a.nblk > (int)(sizeof a.blk / sizeof a.blk[0])) {
        free(a.m); free(a.v); free(order);
        return sh_err_set(err, "capability trainer: out of memory for optimizer state");
    }
    int B = o->batch < train->n ? o->batch : train->n;
    int spe = (train->n + B - 1) / B;
    int total = o->steps > 0 ? o->steps : spe * o->epochs;
    int warm = o->warmup_steps > 0 ? o->warmup_steps : (int)(0.05 * total);
    if (warm < 1) warm = 1;
    int step = 0, d0 = cap_decay_start(total, o->decay_frac);
    double mat = o->lr_mat_mult > 0 ? o->lr_mat_mult : 1.0;
    if (o->resume) {
        if (o->resume->step > total || !o->resume->m || !o->resume->v) {
            free(a.m); free(a.v); free(order);
            return sh_err_set(err, "capability trainer: saved state is at step %d, beyond this budget (%d steps)",
                              o->resume->step, total);
        }
        memcpy(a.m, o->resume->m, sizeof(float) * tr->np);
        memcpy(a.v, o->resume->v, sizeof(float) * tr->np);
        step = o->resume->step;
    }
    tr->ds = train;
    tr->train = 1;
    double loss_sum = 0;
    long graded_sum = 0;
    int cur_epoch = -1, first = step;
    for (; step < total; step++) {
        if (o->checkpoint && step == d0 && save_state(tr, &a, step, o->checkpoint, err)) {
            free(a.m); free(a.v); free(order);
            return -1;
        }
        int ep = step / spe, s = step % spe;
        if (ep != cur_epoch) { epoch_order(o, order, train->n, ep); cur_epoch = ep; }
        tr->batch = order + (size_t)s * B;
        tr->bn = (s + 1) * B <= train->n ? B : train->n - s * B;
        long ng = 0;
        for (int i = 0; i < tr->bn; i++) ng += count_graded(train, tr->batch[i]);
        if (ng == 0) continue;
        tr->scale = 1.0 / ng;
        run_job(tr);
        double bl = 0;
        for (int c = 0; c < CAP_CHUNKS; c++) bl += tr->chunk_loss[c];
        if (step >= total - spe) { loss_sum += bl; graded_sum += ng; }
        double norm = reduce_grads(tr);
        double gscale = (o->clip > 0 && norm > o->clip) ? o->clip / norm : 1.0;
        adamw_step(tr, &a, lr_at(o, step, total, warm), mat, o->wd, gscale, step);
        res->flops += 3.0 * tr->bn * forward_flops(tr->cfg, train->T, (int)(ng / tr->bn));
        res->examples += tr->bn;
        if (o->progress && (step % 10 == 0 || step == total - 1))
            o->progress(o->progress_ctx, o->task_name, step + 1, total, bl / ng);
    }
    if (o->checkpoint && d0 >= total && save_state(tr, &a, total, o->checkpoint, err)) {
        free(a.m); free(a.v); free(order);
        return -1;
    }
    res->steps = total - first;
    res->final_loss = graded_sum ? loss_sum / graded_sum : 0;
    free(a.m); free(a.v); free(order);
    return 0;
}

static void evaluate(trainer *tr, const cap_dataset *test, cap_train_result *res)
{
    int *all = malloc(sizeof(int) * (size_t)test->n);
    long correct = 0, graded = 0;
    double loss = 0;
    tr->ds = test;
    tr->train = 0;
    tr->scale = 1.0;
    if (all) {
        for (int i = 0; i < test->n; i++) all[i] = i;
        for (int s = 0; s < test->n; s += 256) {
            tr->batch = all + s;
            tr->bn = test->n - s < 256 ? test->n - s : 256;
            reset_counts(tr);
            run_job(tr);
            for (int k = 0; k < tr->nthreads; k++) { correct += tr->w[k].correct; graded += tr->w[k].graded; }
            for (int c = 0; c < CAP_CHUNKS; c++) loss += tr->chunk_loss[c];
            res->flops += tr->bn * forward_flops(tr->cfg, test->T, 1);
            res->examples += tr->bn;
        }
    }
    free(all);
    res->accuracy = graded ? (double)correct / graded : 0;
    res->test_loss = graded ? loss / graded : 0;
}

int CAP_TRAIN_FN(cap_train_and_eval)(const cap_model_cfg *cfg, const cap_dataset *train, const cap_dataset *test,
                                     const cap_train_opts *o, cap_train_result *res, sh_err *err)
{
    memset(res, 0, sizeof *res);
    if (train->T != cfg->T || test->T != cfg->T || train->readout != cfg->readout)
        return sh_err_set(err, "capability trainer: dataset shape (T=%d) does not match the model (T=%d)", train->T, cfg->T);
    double t0 = now_s();
    trainer tr;
    int rc = trainer_init(&tr, cfg, o, err);
    if (!rc) rc = train_loop(&tr, train, o, res, err);
    if (!rc) evaluate(&tr, test, res);
    res->params = (long)tr.np;
    trainer_free(&tr);
    res->seconds = now_s() - t0;
    return rc;
}

/* ---- machine matmul rate ------------------------------------------------------- */
typedef struct mm_job { const cap_real *x, *w; cap_real *y; int lo, hi, n; } mm_job;

static void *mm_main(void *arg)
{
    mm_job *j = arg;
    cap_matmul_nn(j->x + (size_t)j->lo * j->n, j->w, j->y + (size_t)j->lo * j->n, j->hi - j->lo, j->n, j->n);
    return NULL;
}

/* Best of 3 runs of an n x n x n f32 matmul split by rows over the threads,
 * with the trainer's fastest kernel (cap_matmul_nn). */
double CAP_TRAIN_FN(cap_measure_matmul_gflops)(int n, int threads)
{
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    size_t nn = (size_t)n * n;
    cap_real *x = malloc(nn * sizeof *x), *w = malloc(nn * sizeof *w), *y = malloc(nn * sizeof *y);
    double best = 0;
    if (x && w && y) {
        for (size_t i = 0; i < nn; i++) { x[i] = (cap_real)((i % 7) * 0.1); w[i] = (cap_real)((i % 5) * 0.1); }
        for (int rep = 0; rep < 3; rep++) {
            pthread_t th[64];
            int started[64] = {0};
            mm_job jobs[64];
            double t0 = now_s();
            for (int k = 0; k < threads; k++) {
                jobs[k] = (mm_job){x, w, y, n * k / threads, n * (k + 1) / threads, n};
                if (k) started[k] = pthread_create(&th[k], NULL, mm_main, &jobs[k]) == 0;
            }
            mm_main(&jobs[0]);
            for (int k = 1; k < threads; k++) {
                if (started[k]) pthread_join(th[k], NULL);
                else mm_main(&jobs[k]);
            }
            double dt = now_s() - t0, g = 2.0 * n * nn / dt / 1e9;
            if (g > best) best = g;
        }
    }
    free(x); free(w); free(y);
    return best;
}
