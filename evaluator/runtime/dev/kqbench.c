/* dev/kqbench.c - k-quant decode (one token) single-thread throughput, the
 * ggml layout against the repacked 16-row bands (rt_mat_pack_rows), with a
 * bit-for-bit check of the two.  Weight GB/s per CPU-second (thread CPU
 * clock): a small matrix (in cache) and a large one (streamed from DRAM; a
 * malloc buffer, so on huge pages where THP is "always"; a GGUF file's
 * packed tensors are moved onto huge pages at load too, rt_model_pack).
 * build: gcc -std=c11 -O3 -march=native -I<variant dir> -I.. kqbench.c ../rt_quant.c ../rt_kernels.c
 *        ../rt_pool.c -lm -pthread
 * run:   ./kqbench [K=1024] [small rows=256] [large rows=65536] */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "rt.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int K = argc > 1 ? atoi(argv[1]) : 1024, small = argc > 2 ? atoi(argv[2]) : 256, large = argc > 3 ? atoi(argv[3]) : 65536;
    if (K % RT_QKK || K <= 0 || small <= 0 || large <= 0) { fprintf(stderr, "kqbench: K must be a multiple of 256\n"); return 2; }
    int nsb = K / RT_QKK;
    float *x = malloc((size_t)K * 4), *row = malloc((size_t)K * 4);
    for (int i = 0; i < K; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    rt_act a = { 1, K, x, (size_t)K, NULL, NULL, NULL, NULL, NULL, 0, 0, malloc((size_t)K), malloc((size_t)nsb * 4),
                 malloc((size_t)nsb * 32), 0 };
    rt_act_quantize_k(&a, 0, 1);
    const int types[3] = { RT_Q4_K, RT_Q5_K, RT_Q6_K };
    for (int ti = 0; ti < 3; ti++) {
        for (int sz = 0; sz < 2; sz++) {
            int rows = sz ? large : small;
            rt_mat w = { types[ti], rows, K, rt_row_bytes(types[ti], K), NULL, 0 };
            uint8_t *d = malloc(w.row_bytes * rows + 64);
            for (int r = 0; r < rows; r++) {
                for (int k = 0; k < K; k++) row[k] = (float)(((r * 31 + k * 17) % 200) - 100) / 3000.0f;
                rt_quantize_row(w.type, row, d + (size_t)r * w.row_bytes, K);
            }
            w.data = d;
            float *y0 = malloc((size_t)rows * 4), *y1 = malloc((size_t)rows * 4);
            double gbs[2];
            for (int pk = 0; pk < 2; pk++) {
                if (pk) {
                    if (!rt_mat_packable(&w)) { gbs[1] = 0; memcpy(y1, y0, (size_t)rows * 4); break; }
                    if (rt_mat_pack_rows(&w, 0, rows)) { fprintf(stderr, "kqbench: out of memory\n"); return 1; }
                    w.packed = 1;
                }
                float *y = pk ? y1 : y0;
                int iters = (int)(2e8 / ((double)w.row_bytes * rows)) + 3;
                rt_mm_rows(&w, &a, 0, rows, 0, 1, y, (size_t)rows);
                double t0 = cpu_now();
                for (int it = 0; it < iters; it++) rt_mm_rows(&w, &a, 0, rows, 0, 1, y, (size_t)rows);
                gbs[pk] = (double)w.row_bytes * rows * iters / (cpu_now() - t0) * 1e-9;
            }
            int same = !memcmp(y0, y1, (size_t)rows * 4);
            printf("%-5s K=%-5d rows=%-6d (%7.2f MiB)  ggml layout %6.1f GB/s  packed bands %6.1f GB/s  %s\n",
                   rt_type_name(w.type), K, rows, (double)w.row_bytes * rows / 1048576.0, gbs[0], gbs[1],
                   same ? "bit-identical" : "DIFFERENT");
            free(d); free(y0); free(y1);
            if (!same) return 1;
        }
    }
    return 0;
}
