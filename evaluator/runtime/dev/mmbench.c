/* dev/mmbench.c - single-thread kernel throughput in GMAC per CPU-second
 * (thread CPU clock, so other load on the machine does not distort it).
 * build: gcc -O3 -march=native -I<variant dir> -I.. mmbench.c ../rt_quant.c ../rt_kernels.c -lm */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <math.h>
#include "rt.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int rows = argc > 1 ? atoi(argv[1]) : 4608, K = argc > 2 ? atoi(argv[2]) : 1024, T = argc > 3 ? atoi(argv[3]) : 64;
    int types[4] = { RT_Q4_0, RT_Q8_0, RT_F16, RT_F32 };
    float *x = malloc((size_t)T * K * 4), *y = malloc((size_t)T * rows * 4), *row = malloc((size_t)K * 4);
    for (size_t i = 0; i < (size_t)T * K; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    int nb = K / 32;
    rt_act a = { T, K, x, (size_t)K, malloc((size_t)T * K), malloc((size_t)T * nb * 4), malloc((size_t)T * nb * 4), NULL, NULL, 0, 0, NULL, NULL, NULL, 0 };
#if defined(RT_SIMD_AVX512)
    a.gx = aligned_alloc(64, (size_t)T * (nb / 16 + 1) * RT_GX_BYTES);
#if defined(__AVX512VBMI__)
    a.gx4 = aligned_alloc(64, (size_t)T * (nb / 16 + 1) * RT_GX_BYTES);
#endif
#endif
    rt_act_quantize(&a, 0, T);
    for (int ti = 0; ti < 4; ti++) {
        rt_mat w = { types[ti], rows, K, rt_row_bytes(types[ti], K), NULL };
        uint8_t *d = malloc(w.row_bytes * rows);
        for (int r = 0; r < rows; r++) {
            for (int k = 0; k < K; k++) row[k] = (float)(((r * 31 + k * 17) % 200) - 100) / 3000.0f;
            rt_quantize_row(w.type, row, d + (size_t)r * w.row_bytes, K);
        }
        w.data = d;
        if (w.type == RT_Q4_0 || w.type == RT_Q8_0) { /* exactness check vs dequantised double dot */
            float *wr = malloc((size_t)K * 4), *xr = malloc((size_t)K * 4);
            double maxrel = 0;
            for (int nt = 1; nt <= T; nt += T - 1) {
                rt_mm_rows(&w, &a, 0, rows, 0, nt, y, rows);
                for (int t = 0; t < nt; t += 7)
                    for (int r = 0; r < rows; r += 13) {
                        rt_dequantize_row(w.type, d + (size_t)r * w.row_bytes, wr, K);
                        double ref = 0, mag = 0;
                        for (int k = 0; k < K; k++) {
                            double xv = (double)a.qs[(size_t)t * K + k] * a.d[(size_t)t * nb + k / 32];
                            ref += (double)wr[k] * xv; mag += fabs((double)wr[k] * xv);
                        }
                        double e = fabs(ref - y[(size_t)t * rows + r]) / (mag + 1e-30);
                        if (e > maxrel) maxrel = e;
                    }
            }
            printf("%-5s exactness: max |y - ref| / sum|w x| = %.2g\n", rt_type_name(w.type), maxrel);
            free(wr); free(xr);
        }
        for (int tt = 0; tt < 2; tt++) {
            int nt = tt ? T : 1;
            int iters = tt ? 3 : 200;
            rt_mm_rows(&w, &a, 0, rows, 0, nt, y, rows);
            double t0 = cpu_now();
            for (int it = 0; it < iters; it++) rt_mm_rows(&w, &a, 0, rows, 0, nt, y, rows);
            double dt = cpu_now() - t0;
            double macs = (double)rows * K * nt * iters;
            printf("%-5s T=%-3d %7.1f GMAC/cpu-s  %6.1f GB/s weights\n", rt_type_name(w.type), nt, macs / dt * 1e-9,
                   (double)w.row_bytes * rows * iters / dt * 1e-9);
        }
        free(d);
    }
    return 0;
}
