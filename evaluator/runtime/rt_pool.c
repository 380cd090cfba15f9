/* rt_pool.c - the runtime's thread pool: workers created once; a parallel
 * loop hands out ranges of items from one atomic counter that also carries
 * the job's generation, so any thread (the caller included) takes the next
 * range when it is free; ranges are guided (large first, shrinking to the
 * grain at the end).  A worker that is descheduled (busy machine) or runs
 * on a slow core simply takes fewer ranges; the caller waits only for ranges
 * already taken.  Idle workers spin briefly, then sleep on a condition
 * variable.  Optional pinning to a CPU list via sched_setaffinity(0, ...),
 * which pins the calling thread on Linux and Android alike. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define RT_NO_MODEL   /* the same object for every genome (rt.h) */
#include "rt.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_ITERS 20000      /* idle worker spins (~0.5 ms) before sleeping */
#define WAIT_SPINS 20000      /* caller spins before sleeping */
#define CLAIM_CLOSED 0x7fffffffu  /* next-item value of a counter being rewritten */

typedef struct worker { struct rt_pool *pool; int tid; int cpu; } worker;

struct rt_pool {
    int n;
    pthread_t *th;
    worker *w;
    _Atomic uint64_t claim;          /* generation << 32 | next item */
    _Atomic(rt_range_fn) fn;
    _Atomic(void *) ctx;
    atomic_int total, grain, done;
    atomic_uint wake;                /* bumped for every job and at shutdown */
    atomic_int quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t done_mu;         /* the caller sleeps here when ranges run long */
    pthread_cond_t done_cv;
};

static void pin_self(int cpu)
{
#if defined(CPU_SET)
    if (cpu < 0 || cpu >= CPU_SETSIZE) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)sched_setaffinity(0, sizeof set, &set);
#else
    (void)cpu;
#endif
}

/* take ranges of the current job until none is left */
static void do_work(rt_pool *p)
{
    for (;;) {
        uint64_t v = atomic_load_explicit(&p->claim, memory_order_acquire);
        rt_range_fn fn = atomic_load_explicit(&p->fn, memory_order_acquire);
        void *ctx = atomic_load_explicit(&p->ctx, memory_order_acquire);
        int total = atomic_load_explicit(&p->total, memory_order_acquire);
        int grain = atomic_load_explicit(&p->grain, memory_order_acquire);
        /* fields are rewritten only after the job completed; re-check */
        if (atomic_load_explicit(&p->claim, memory_order_acquire) >> 32 != v >> 32) continue;
        int next = (int)(uint32_t)v;
        if (next >= total || grain < 1) return;
        /* guided sizes: half of an even share of what is left, in multiples
         * of grain, so ranges shrink towards the end and threads finish
         * together */
        int size = (total - next) / (2 * p->n) / grain * grain;
        if (size < grain) size = grain;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &v, v + (uint64_t)size,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        int end = next + size < total ? next + size : total;
        fn(ctx, next, end);
        if (atomic_fetch_add_explicit(&p->done, end - next, memory_order_acq_rel) + (end - next) == total) {
            pthread_mutex_lock(&p->done_mu);
            pthread_cond_broadcast(&p->done_cv);
            pthread_mutex_unlock(&p->done_mu);
        }
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    rt_pool *p = w->pool;
    unsigned seen = 0;
    pin_self(w->cpu);
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->wake, memory_order_acquire)) == seen && spins < SPIN_ITERS) {
            CPU_RELAX();
            spins++;
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->wake, memory_order_acquire)) == seen)
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (atomic_load(&p->quit)) break;
        do_work(p);
    }
    rt_scratch_free();
    return NULL;
}

rt_pool *rt_pool_create(int nthreads, const int *cpus, int ncpus, char *err, size_t errcap)
{
    if (nthreads < 1) nthreads = 1;
    rt_pool *p = calloc(1, sizeof *p);
    if (!p) { snprintf(err, errcap, "thread pool: out of memory"); return NULL; }
    p->n = nthreads;
    p->th = calloc((size_t)nthreads, sizeof *p->th);
    p->w = calloc((size_t)nthreads, sizeof *p->w);
    if (!p->th || !p->w) {
        free(p->th); free(p->w); free(p);
        snprintf(err, errcap, "thread pool: out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_mutex_init(&p->done_mu, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->claim, 0);
    atomic_init(&p->fn, NULL);
    atomic_init(&p->ctx, NULL);
    atomic_init(&p->total, 0);
    atomic_init(&p->grain, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->wake, 0);
    atomic_init(&p->quit, 0);
    for (int i = 0; i < nthreads; i++) {
        p->w[i].pool = p;
        p->w[i].tid = i;
        p->w[i].cpu = ncpus > 0 ? cpus[i % ncpus] : -1;
    }
    if (ncpus > 0) pin_self(p->w[0].cpu);
    for (int i = 1; i < nthreads; i++) {
        if (pthread_create(&p->th[i], NULL, worker_main, &p->w[i]) != 0) {
            snprintf(err, errcap, "thread pool: cannot create thread %d of %d", i, nthreads);
            p->n = i;
            rt_pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

int rt_pool_size(const rt_pool *p) { return p->n; }

void rt_pool_for(rt_pool *p, int n, int grain, rt_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (p->n == 1 || n <= grain) { fn(ctx, 0, n); return; }
    /* The previous job is complete (we waited for it).  Close the counter
     * under the new generation first, so a late worker that read the old
     * counter fails its re-check instead of pairing it with the new fields;
     * then write the fields and open the counter. */
    uint64_t gen = ((atomic_load_explicit(&p->claim, memory_order_relaxed) >> 32) + 1) & 0xffffffffu;
    atomic_store_explicit(&p->claim, gen << 32 | CLAIM_CLOSED, memory_order_seq_cst);
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&p->total, n, memory_order_relaxed);
    atomic_store_explicit(&p->grain, grain, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->claim, gen << 32, memory_order_release);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->wake, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    do_work(p);
    long spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) != n) {
        if (++spins < WAIT_SPINS) { CPU_RELAX(); continue; }
        pthread_mutex_lock(&p->done_mu);
        while (atomic_load_explicit(&p->done, memory_order_acquire) != n)
            pthread_cond_wait(&p->done_cv, &p->done_mu);
        pthread_mutex_unlock(&p->done_mu);
    }
}

void rt_pool_destroy(rt_pool *p)
{
    if (!p) return;
    atomic_store(&p->quit, 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->wake, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    rt_scratch_free();
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->done_mu);
    pthread_cond_destroy(&p->done_cv);
    free(p->th);
    free(p->w);
    free(p);
}

/* "0-3,6" -> [0,1,2,3,6]; returns count or -1 */
int rt_parse_cpulist(const char *s, int *out, int cap)
{
    int n = 0;
    const char *c = s;
    if (!*c) return -1;
    while (*c) {
        char *end;
        long a = strtol(c, &end, 10), b;
        if (end == c || a < 0 || a > 4095) return -1;
        c = end;
        b = a;
        if (*c == '-') {
            c++;
            b = strtol(c, &end, 10);
            if (end == c || b < a || b > 4095) return -1;
            c = end;
        }
        for (long i = a; i <= b; i++) {
            if (n >= cap) return -1;
            out[n++] = (int)i;
        }
        if (*c == ',') { c++; if (!*c) return -1; }
        else if (*c) return -1;
    }
    return n;
}
