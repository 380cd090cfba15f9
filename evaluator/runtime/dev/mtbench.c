/* dev/mtbench.c - decode (one token) matmul throughput per matrix shape with
 * the runtime's thread pool, against a plain read of the same bytes by the
 * same pool in the same process (alternating, so both see the same board).
 * Each shape is laid out in enough copies (each on its own 2 MiB-aligned,
 * MADV_HUGEPAGE buffer, like rt_model.c's weights) that a pass streams them
 * from DRAM; one pass runs rt_matmul on every copy in turn, as decode does.
 * Also times an empty parallel dispatch (the pool's start/finish cost).
 * Default shapes: LFM2-1.2B (hidden 2048, ff 8192, q 2048, k/v 512, vocab
 * 65536); --hidden/--ff/--kv/--vocab change them.
 * build: gcc -std=c11 -O3 -march=native -I.. mtbench.c ../rt_quant.c ../rt_kernels.c ../rt_pool.c -lm -pthread
 * The plain read goes through the same pool in the same 16-row ranges; on
 * some shapes it ran below the kernel (2 threads), so check it against
 * bench/membw.c before reading a ratio as a loss.
 * run:   ./mtbench [--threads 2] [--type q4_0|q8_0|q4_k|q6_k|f16] [--mib 512] [--reps 7] [--only NAME]
 *        [--pages 4k: the copies on 4 KiB pages, MADV_NOHUGEPAGE]
 * Prefetch distances in one process (--pf-list 4096,8192: each kernel pass
 * repeated at those distances): build with -DMT_PF_VAR -DPACKED_PF=mt_pf
 * -DKQ_PPF=mt_pf -include F, F a header holding "extern int mt_pf;"; with
 * -DPACKED_PF='(mt_pf % 100000)' -DPF_T0='(mt_pf / 100000)' an entry
 * 51202048 is T0 512 + T1 2048 (rt_kernels.c, prefetch_plan).  In such a
 * build the first column runs at mt_pf's initial value (T1 4096, no T0),
 * not at prefetch_plan's distances.  For the k-quants this bench and the
 * whole model have disagreed (prefetch_plan's comment): check a distance in
 * alternating variant pairs before keeping it. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define RT_NO_MODEL
#include "rt.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int small_pages;   /* --pages 4k: weights on 4 KiB pages (a board without THP) */

static void *huge_alloc(size_t bytes)
{
    void *p = NULL;
    size_t hp = (size_t)2 << 20;
    if (posix_memalign(&p, hp, (bytes + hp - 1) / hp * hp)) return NULL;
    (void)madvise(p, (bytes + hp - 1) / hp * hp, small_pages ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
    return p;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* plain read of byte ranges: item i = 16 rows of the shape's matrices */
typedef struct rd_job { const uint8_t *const *base; const size_t *bytes; int n; size_t chunk, pf; _Atomic uint64_t sink; } rd_job;
static void read_range(void *ctx, int b, int e)
{
    rd_job *j = ctx;
    uint64_t acc = 0;
    /* items laid end to end over the matrices, as rt_matmul's rows are */
    size_t lo = (size_t)b * j->chunk, hi = (size_t)e * j->chunk, off = 0;
    for (int i = 0; i < j->n && lo < hi; i++) {
        size_t s = lo > off ? lo - off : 0, t = hi - off < j->bytes[i] ? hi - off : j->bytes[i];
#if defined(RT_SIMD_AVX512)
        __m512i v = _mm512_setzero_si512();
        for (size_t k = s; k + 64 <= t; k += 64) {
            if (j->pf && (k & 255) == 0)
                for (int l = 0; l < 4; l++) _mm_prefetch((const char *)(j->base[i] + k + j->pf + 64 * l), _MM_HINT_T1);
            v = _mm512_add_epi64(v, _mm512_load_si512((const void *)(j->base[i] + k)));
        }
        acc += (uint64_t)_mm512_reduce_add_epi64(v);
#else
        for (size_t k = s; k + 8 <= t; k += 8) {
            uint64_t w;
            memcpy(&w, j->base[i] + k, 8);
            acc += w;
        }
#endif
        off += j->bytes[i];
    }
    atomic_fetch_add(&j->sink, acc);
}
static void nop_range(void *ctx, int b, int e) { (void)ctx; (void)b; (void)e; }

#if defined(MT_PF_VAR)
int mt_pf = 4096;   /* rt_kernels.c built with -DPACKED_PF=mt_pf -DKQ_PPF=mt_pf -include mt_pf.h */
#endif

typedef struct shape { const char *name; int n; int rows[3]; int K; } shape;

int main(int argc, char **argv)
{
    int threads = 2, reps = 7, H = 2048, F = 8192, KV = 512, V = 65536;
    size_t mib = 512;
    int type = RT_Q4_0;
    const char *only = NULL;
    size_t rpf = 0;
    int pfl[8] = { 0 }, npf = 0;
    int crows = 0, ck = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            printf("usage: mtbench [--threads 2] [--type q4_0|q8_0|q4_k|q5_k|q6_k|f16] [--mib 512] [--reps 7]\n"
                   "               [--hidden 2048] [--ff 8192] [--kv 512] [--vocab 65536] [--only NAME]\n"
                   "               [--rows R --k K: with --only custom, one R x K matrix]\n"
                   "               [--read-pf BYTES: the plain read prefetches into L2 this far ahead]\n"
                   "               [--pages 4k: weights on 4 KiB pages, not huge pages]\n"
                   "               [--pf-list A,B,..: kernel passes at these prefetch distances (MT_PF_VAR builds)]\n"
                   "shapes: qkv out in_proj w1w3 w2 head custom; --mib 0: two copies (in cache if small)\n");
            return 0;
        }
        if (i + 1 >= argc) { fprintf(stderr, "mtbench: %s needs a value\n", argv[i]); return 2; }
        const char *v = argv[++i];
        if (!strcmp(argv[i - 1], "--threads")) threads = atoi(v);
        else if (!strcmp(argv[i - 1], "--reps")) reps = atoi(v);
        else if (!strcmp(argv[i - 1], "--mib")) mib = (size_t)atol(v);
        else if (!strcmp(argv[i - 1], "--hidden")) H = atoi(v);
        else if (!strcmp(argv[i - 1], "--ff")) F = atoi(v);
        else if (!strcmp(argv[i - 1], "--kv")) KV = atoi(v);
        else if (!strcmp(argv[i - 1], "--vocab")) V = atoi(v);
        else if (!strcmp(argv[i - 1], "--only")) only = v;
        else if (!strcmp(argv[i - 1], "--rows")) crows = atoi(v);
        else if (!strcmp(argv[i - 1], "--read-pf")) rpf = (size_t)atol(v);
        else if (!strcmp(argv[i - 1], "--pf-list")) {
            for (const char *c = v; *c && npf < 8; c = strchr(c, ',') ? strchr(c, ',') + 1 : c + strlen(c)) pfl[npf++] = atoi(c);
        }
        else if (!strcmp(argv[i - 1], "--k")) ck = atoi(v);
        else if (!strcmp(argv[i - 1], "--pages")) small_pages = !strcmp(v, "4k");
        else if (!strcmp(argv[i - 1], "--type")) {
            if ((type = rt_type_parse(v)) < 0 || type == RT_MIX_Q4_K_M || type == RT_MIX_Q5_K_M) {
                fprintf(stderr, "mtbench: --type: '%s' is not a single type\n", v);
                return 2;
            }
        } else { fprintf(stderr, "mtbench: unknown option %s\n", argv[i - 1]); return 2; }
    }
    if (threads < 1 || reps < 1 || reps > 99 || H % 512 || F % 512 || KV % 16 || V % 16) {
        fprintf(stderr, "mtbench: bad arguments (hidden and ff multiples of 512)\n");
        return 2;
    }
    /* a fixed mmap threshold: glibc otherwise raises it after the first large
     * free, and later shapes' buffers would come from the brk heap */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    char err[256];
    rt_pool *pool = rt_pool_create(threads, NULL, 0, err, sizeof err);
    if (!pool) { fprintf(stderr, "mtbench: %s\n", err); return 1; }
    const shape shapes[] = {
        { "qkv", 3, { H, KV, KV }, H }, { "out", 1, { H, 0, 0 }, H }, { "in_proj", 1, { 3 * H, 0, 0 }, H },
        { "w1w3", 2, { F, F, 0 }, H }, { "w2", 1, { H, 0, 0 }, F }, { "head", 1, { V, 0, 0 }, H },
        { "custom", 1, { crows, 0, 0 }, ck },
    };
    /* empty dispatch: what one parallel step costs with nothing to do */
    {
        double dt[99];
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            for (int i = 0; i < 2000; i++) rt_pool_for(pool, 1 << 14, 16, nop_range, NULL);
            dt[r] = (now_s() - t0) / 2000 * 1e6;
        }
        printf("empty dispatch (%d threads): %.2f us median\n", threads, median(dt, reps));
    }
    printf("type %s, %d threads, %zu MiB per pass\n", rt_type_name(type), threads, mib);
    printf("%-8s %-22s %6s %9s %9s %9s %7s %8s\n", "shape", "rows x K", "copies", "us/call", "kern GB/s", "read GB/s",
           "ratio", "min-max");
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *sh = &shapes[si];
        if (only ? strcmp(only, sh->name) != 0 : !strcmp(sh->name, "custom")) continue;
        if (sh->rows[0] < 16 || sh->K % 512) { fprintf(stderr, "mtbench: --only custom needs --rows >= 16 and --k a multiple of 512\n"); return 2; }
        const int K = sh->K;
        size_t rb = rt_row_bytes(type, K), ib[3], tot = 0;
        int rows_all = 0;
        for (int i = 0; i < sh->n; i++) { ib[i] = rb * (size_t)sh->rows[i]; tot += ib[i]; rows_all += sh->rows[i]; }
        int copies = mib ? (int)((mib << 20) / tot) + 1 : 2;
        if (copies < 2) copies = 2;
        /* one instance, filled and packed, then copied */
        uint8_t *proto[3];
        float *xr = malloc((size_t)K * 4);
        for (int i = 0; i < sh->n; i++) {
            proto[i] = huge_alloc(ib[i]);
            for (int r = 0; r < 64 && r < sh->rows[i]; r++) {
                for (int k = 0; k < K; k++) xr[k] = (float)(((r * 31 + k * 17 + i * 7) % 200) - 100) / 3000.0f;
                rt_quantize_row(type, xr, proto[i] + (size_t)r * rb, K);
            }
            for (int r = 64; r < sh->rows[i]; r++) memcpy(proto[i] + (size_t)r * rb, proto[i] + (size_t)(r % 64) * rb, rb);
        }
        rt_mat *mats = calloc((size_t)copies * 3, sizeof *mats);
        rt_mm_item *items = calloc((size_t)copies * 3, sizeof *items);
        const uint8_t **bases = calloc((size_t)copies * 3, sizeof *bases);
        size_t *bytes = calloc((size_t)copies * 3, sizeof *bytes);
        float *y = huge_alloc((size_t)rows_all * 4 + 64);
        int packed = 0;
        for (int i = 0; i < sh->n; i++) {
            rt_mat m = { type, sh->rows[i], K, rb, proto[i], 0 };
            if (rt_mat_packable(&m)) {
                for (int r = 0; r < m.rows; r += 16)
                    if (rt_mat_pack_rows(&m, r, r + 16 < m.rows ? r + 16 : m.rows)) { fprintf(stderr, "mtbench: pack: out of memory\n"); return 1; }
                packed = 1;
            }
        }
        for (int c = 0; c < copies; c++) {
            int yo = 0;
            for (int i = 0; i < sh->n; i++) {
                uint8_t *d = huge_alloc(ib[i]);
                if (!d) { fprintf(stderr, "mtbench: out of memory\n"); return 1; }
                memcpy(d, proto[i], ib[i]);
                rt_mat *m = &mats[c * 3 + i];
                *m = (rt_mat){ type, sh->rows[i], K, rb, d, packed };
                items[c * 3 + i] = (rt_mm_item){ m, y + yo, (size_t)rows_all };
                bases[c * 3 + i] = d;
                bytes[c * 3 + i] = ib[i];
                yo += sh->rows[i];
            }
        }
        /* the activation, as rt_forward's make_act sets it up for decode */
        float *x = malloc((size_t)K * 4);
        for (int k = 0; k < K; k++) x[k] = (float)((k * 7919) % 1000) / 1000.0f - 0.5f;
        rt_act a = { 1, K, x, (size_t)K, rt_alloc64((size_t)K), rt_alloc64((size_t)K / 8 + 64), rt_alloc64((size_t)K / 8 + 64),
                     NULL, NULL, 0, 0, rt_alloc64((size_t)K), rt_alloc64((size_t)K / 64 + 64), rt_alloc64((size_t)K / 8 + 64), 0 };
#if defined(RT_SIMD_AVX512)
        a.gx = rt_alloc64((size_t)(K / 512 + 1) * RT_GX_BYTES);
#if defined(__AVX512VBMI__)
        if (!packed) a.gx4 = rt_alloc64((size_t)(K / 512 + 1) * RT_GX_BYTES);
#endif
        a.gx_too = packed;
#endif
        double tk[99], tr[99], ratio[99], call[99], tkp[8][99], rp[8][99];
        rd_job rj;
        rj.n = 0;
        atomic_init(&rj.sink, 0);
        for (int rep = -1; rep < reps; rep++) {   /* rep -1 warms up */
            double t0 = now_s();
            for (int c = 0; c < copies; c++) rt_matmul(pool, &a, items + c * 3, sh->n);
            double t1 = now_s();
            for (int c = 0; c < copies; c++) {
                rj.base = bases + c * 3; rj.bytes = bytes + c * 3; rj.n = sh->n; rj.chunk = 16 * rb; rj.pf = rpf;
                rt_pool_for(pool, rows_all / 16, 1, read_range, &rj);
            }
            double t2 = now_s();
#if defined(MT_PF_VAR)
            for (int p = 0; p < npf; p++) {   /* the same passes at other prefetch distances */
                mt_pf = pfl[p];
                double u0 = now_s();
                for (int c = 0; c < copies; c++) rt_matmul(pool, &a, items + c * 3, sh->n);
                if (rep >= 0) {
                    tkp[p][rep] = (double)tot * copies / (now_s() - u0) * 1e-9;
                    rp[p][rep] = tkp[p][rep] / ((double)tot * copies / (t2 - t1) * 1e-9);
                }
            }
            mt_pf = 4096;
#endif
            if (rep < 0) continue;
            tk[rep] = (double)tot * copies / (t1 - t0) * 1e-9;
            tr[rep] = (double)tot * copies / (t2 - t1) * 1e-9;
            ratio[rep] = tk[rep] / tr[rep];
            call[rep] = (t1 - t0) / copies * 1e6;
        }
        char rc[64];
        int o = snprintf(rc, sizeof rc, "%d", sh->rows[0]);
        for (int i = 1; i < sh->n; i++) o += snprintf(rc + o, sizeof rc - (size_t)o, "+%d", sh->rows[i]);
        snprintf(rc + o, sizeof rc - (size_t)o, " x %d", K);
        double mk = median(tk, reps), mr = median(tr, reps), mc = median(call, reps);
        double lo = 1e9, hi = 0;
        for (int r = 0; r < reps; r++) { lo = ratio[r] < lo ? ratio[r] : lo; hi = ratio[r] > hi ? ratio[r] : hi; }
        printf("%-8s %-22s %6d %9.1f %9.1f %9.1f %7.3f %.2f-%.2f\n", sh->name, rc, copies, mc, mk, mr, median(ratio, reps), lo, hi);
        for (int p = 0; p < npf; p++)
            printf("   prefetch %6d: kernel %6.1f GB/s, %.3f of the read\n", pfl[p], median(tkp[p], reps), median(rp[p], reps));
        fflush(stdout);
        for (int c = 0; c < copies * 3; c++) if (bases[c]) free((void *)bases[c]);
        for (int i = 0; i < sh->n; i++) free(proto[i]);
        free(mats); free(items); free(bases); free(bytes); free(y); free(x); free(xr);
        free(a.qs); free(a.d); free(a.ds); free(a.kq); free(a.kd); free(a.kbs); free(a.gx); free(a.gx4);
        if (atomic_load(&rj.sink) == 42) printf(" ");
    }
    rt_pool_destroy(pool);
    return 0;
}
