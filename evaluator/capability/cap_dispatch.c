/* cap_dispatch.c - picks the trainer build for this CPU: the AVX2 one
 * (cap_simd_x86.c) on x86-64 CPUs that have AVX2, else the portable one.
 * STARHIL_CAP_SIMD=generic forces the portable build (results may differ in
 * the last bits between the two: vector width changes summation order). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "evaluator/capability/cap_internal.h"

int cap_train_and_eval_generic(const cap_model_cfg *cfg, const cap_dataset *train, const cap_dataset *test,
                               const cap_train_opts *o, cap_train_result *res, sh_err *err);
double cap_measure_matmul_gflops_generic(int n, int threads);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
int cap_train_and_eval_avx2(const cap_model_cfg *cfg, const cap_dataset *train, const cap_dataset *test,
                            const cap_train_opts *o, cap_train_result *res, sh_err *err);
double cap_measure_matmul_gflops_avx2(int n, int threads);

static int use_avx2(void)
{
    const char *e = getenv("STARHIL_CAP_SIMD");
    if (e && !strcmp(e, "generic")) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#endif

void cap_train_state_free(cap_train_state *s)
{
    if (!s) return;
    free(s->p); free(s->m); free(s->v);
    memset(s, 0, sizeof *s);
}

int cap_decay_start(int steps, double decay_frac)
{
    if (!(decay_frac > 0)) return steps;
    if (decay_frac > 1) decay_frac = 1;
    int d = (int)lround(decay_frac * steps);
    return steps - (d < 1 ? 1 : d);
}

const char *cap_simd_name(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (use_avx2()) return "avx2";
#endif
    return "generic";
}

int cap_train_and_eval(const cap_model_cfg *cfg, const cap_dataset *train, const cap_dataset *test,
                       const cap_train_opts *o, cap_train_result *res, sh_err *err)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (use_avx2()) return cap_train_and_eval_avx2(cfg, train, test, o, res, err);
#endif
    return cap_train_and_eval_generic(cfg, train, test, o, res, err);
}

double cap_measure_matmul_gflops(int n, int threads)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (use_avx2()) return cap_measure_matmul_gflops_avx2(n, threads);
#endif
    return cap_measure_matmul_gflops_generic(n, threads);
}
