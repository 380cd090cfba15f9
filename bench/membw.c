/* membw.c - memory read bandwidth for the runtime benchmark's roofline: N threads
 * (default 2) each stream through their half of a 1 GiB buffer, several
 * repetitions, best repetition reported as one JSON line (GB/s = 1e9 bytes/s).
 *
 *   membw [--threads N] [--mib M] [--reps R]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(int argc, char **argv)
{
    int threads = 2, reps = 5;
    size_t mib = 1024;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mib")) mib = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else { fprintf(stderr, "membw: unknown option %s\n", argv[i]); return 2; }
    }
    if (threads < 1 || threads > 256 || mib < 1 || reps < 1) {
        fprintf(stderr, "membw: bad arguments\n");
        return 2;
    }
    size_t bytes = mib << 20, words = bytes / sizeof(uint64_t);
    uint64_t *buf = aligned_alloc(64, bytes);
    if (!buf) { fprintf(stderr, "membw: cannot allocate %zu MiB\n", mib); return 1; }
    for (size_t i = 0; i < words; i++) buf[i] = i;   /* touch every page */
    pthread_t tid[256];
    job jobs[256];
    double best = 1e30;
    uint64_t check = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        for (int t = 0; t < threads; t++) {
            size_t b = words * (size_t)t / (size_t)threads, e = words * (size_t)(t + 1) / (size_t)threads;
            jobs[t] = (job){buf + b, e - b, 0};
            if (pthread_create(&tid[t], NULL, reader, &jobs[t]) != 0) { fprintf(stderr, "membw: pthread_create failed\n"); return 1; }
        }
        for (int t = 0; t < threads; t++) { pthread_join(tid[t], NULL); check += jobs[t].sum; }
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    printf("{\"threads\":%d,\"bytes\":%zu,\"reps\":%d,\"best_s\":%.6f,\"gb_s\":%.3f,\"check\":%llu}\n",
           threads, bytes, reps, best, bytes / best / 1e9, (unsigned long long)(check & 0xff));
    free(buf);
    return 0;
}
