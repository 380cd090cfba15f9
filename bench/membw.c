/* membw.c - memory read bandwidth for the runtime benchmark's roofline: N threads
 * (default 2) each stream through their share of a 1 GiB buffer, several
 * repetitions.  The buffer is read twice over: once on ordinary 4 KiB pages
 * and once on transparent huge pages (madvise, as the runtime asks for its
 * weights); the bandwidth is the median repetition on the faster of the two
 * (a sustained rate, like the decode throughput it is compared with: the
 * best repetition catches short bursts on a shared host and is reported as
 * gb_s_best).
 * Prints one JSON line (GB/s = 1e9 bytes/s).
 *
 *   membw [--threads N] [--mib M] [--reps R]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef struct job {
    const uint64_t *p;
    size_t n;                 /* words */
    uint64_t sum;
} job;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Eight independent accumulators let the compiler vectorise the read loop. */
static void *reader(void *arg)
{
    job *j = arg;
    uint64_t a[8] = {0};
    size_t n = j->n & ~(size_t)7;
    for (size_t i = 0; i < n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += j->p[i + k];
    uint64_t s = 0;
    for (int k = 0; k < 8; k++) s += a[k];
    j->sum = s;
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* times of `reps` parallel reads of the buffer, sorted; -1 on thread failure */
static int timed_reads(const uint64_t *buf, size_t words, int threads, int reps, uint64_t *check, double *times)
{
    pthread_t tid[256];
    job jobs[256];
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        for (int t = 0; t < threads; t++) {
            size_t b = words * (size_t)t / (size_t)threads, e = words * (size_t)(t + 1) / (size_t)threads;
            jobs[t] = (job){buf + b, e - b, 0};
            if (pthread_create(&tid[t], NULL, reader, &jobs[t]) != 0) return -1;
        }
        for (int t = 0; t < threads; t++) { pthread_join(tid[t], NULL); *check += jobs[t].sum; }
        times[r] = now_s() - t0;
    }
    qsort(times, (size_t)reps, sizeof *times, cmp_double);
    return 0;
}

static uint64_t *filled_buffer(size_t bytes, int huge)
{
    uint64_t *buf = NULL;
    if (posix_memalign((void **)&buf, (size_t)2 << 20, bytes)) return NULL;
#if defined(MADV_HUGEPAGE)
    if (huge) (void)madvise(buf, bytes, MADV_HUGEPAGE);
#else
    (void)huge;
#endif
    for (size_t i = 0; i < bytes / sizeof(uint64_t); i++) buf[i] = i;   /* touch every page */
    return buf;
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 5;
    size_t mib = 1024;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            printf("usage: membw [--threads N=2] [--mib M=1024] [--reps R=5]\n"
                   "read bandwidth of an M MiB buffer on 4 KiB and on huge pages; prints JSON\n");
            return 0;
        }
        if (i + 1 >= argc) { fprintf(stderr, "membw: %s needs a value\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mib")) mib = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[++i]);
        else { fprintf(stderr, "membw: unknown option %s\n", argv[i]); return 2; }
    }
    if (threads < 1 || threads > 256 || mib < 1 || mib > (1u << 20) || reps < 1) {
        fprintf(stderr, "membw: bad arguments (threads 1-256, mib >= 1, reps >= 1)\n");
        return 2;
    }
    size_t bytes = mib << 20, words = bytes / sizeof(uint64_t);
    double best[2], med[2], times[64];
    if (reps > 64) reps = 64;
    uint64_t check = 0;
    for (int huge = 0; huge < 2; huge++) {
        uint64_t *buf = filled_buffer(bytes, huge);
        if (!buf) { fprintf(stderr, "membw: cannot allocate %zu MiB\n", mib); return 1; }
        int rc = timed_reads(buf, words, threads, reps, &check, times);
        free(buf);
        if (rc < 0) { fprintf(stderr, "membw: pthread_create failed\n"); return 1; }
        best[huge] = bytes / times[0] / 1e9;
        med[huge] = bytes / (reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2])) / 1e9;
    }
    /* gb_s: the median repetition on the better page size (a sustained
     * rate, like the decode it is compared with); gb_s_best: the best one */
    int h = med[1] > med[0];
    printf("{\"threads\":%d,\"bytes\":%zu,\"reps\":%d,\"gb_s_4k\":%.3f,\"gb_s_huge\":%.3f,"
           "\"gb_s_best\":%.3f,\"gb_s\":%.3f,\"check\":%llu}\n",
           threads, bytes, reps, med[0], med[1], best[0] > best[1] ? best[0] : best[1], med[h],
           (unsigned long long)(check & 0xff));
    return 0;
}
