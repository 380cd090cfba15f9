/* runtime_util.h - shared by tests/test_runtime.c and tests/test_parity.c (one
 * suite of the variant runtime split in two binaries, see runtime_util.c):
 * tolerances, tiny genomes, the temp dir and build cache, building and running
 * variants, the numpy reference.  Every function fails the running cmocka
 * test on error.  Relative error = max|a - b| / max|b| over all logits
 * (b = reference). */
#ifndef SH_TEST_RUNTIME_UTIL_H
#define SH_TEST_RUNTIME_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "genome/genome.h"
#include "util/proc.h"

/* ---- tolerances (relative, see above) ------------------------------------ */
#define TOL_F32       1e-4   /* f32 weights vs float64 reference                     */
#define TOL_F16       1e-4   /* f16 weights (the reference uses the same f16 values) */
/* q8_0 / q4_0: the reference holds the same dequantised weights, so the only
 * difference left is the rounding of activations to q8_0 blocks in the dot
 * products.  Against a reference that rounds the variant's own f32 rows the
 * same way (lfm2_ref.py --act-from, fed by `variant logits --dump-act`) the
 * match must be tight; against the unrounded reference it only bounds the
 * size of that rounding error.  (Rounding its own float64 rows instead, the
 * reference meets values within f32 noise of a boundary - x/d at k + 1/2, or
 * amax/127 midway between two fp16 values - about once per run on G_WIDE,
 * and one such flip moves later logits by ~5e-3.) */
#define TOL_Q_ACTQ    1e-4   /* measured ~8e-8 with the variant's rows */
#define TOL_ACT_ROWS  1e-5   /* variant row vs float64 row, max|diff|/max|row|: ~6e-7 */
#define TOL_Q_EXACT   1e-1
#define TOL_SAME_MATH 1e-4   /* scalar vs SIMD, prefill vs decode, aarch64 vs x86  */
#define TOL_SAME_Q    1e-3   /* same, quantised weights: an activation rounding may flip */

/* ---- tiny genomes covering every block kind (see runtime_util.c) ----------- */
extern const char *const G_DENSE, *const G_ODD, *const G_MOE, *const G_DENSE_WIDER,
                  *const G_WIDE, *const G_KQ, *const G_KQ_ODD;
extern const char *const RTT_TOKENS;   /* the default token sequence */
extern const char *rtt_tokens;         /* the sequence in use */

extern char rtt_tmp[256];        /* this binary's temp dir */
extern char rtt_root[1024];      /* the repository (STARHIL_ROOT) */
extern char rtt_runtime[1200];   /* evaluator/runtime */
extern char rtt_tool[1200];      /* the starhil tool (STARHIL_BIN) */
extern char rtt_cache[600];      /* the variant build cache in use (see rtt_setup) */
extern char rtt_own_cache[600];  /* a cache of this binary's own, empty at the start */

/* Makes the temp dir /tmp/NAME_XXXXXX and points the build at the real
 * runtime and at a build cache: STARHIL_TEST_CACHE if set, else the suite's
 * (STARHIL_CACHE_DIR, fresh per run of tests/run_tests.sh: variants one
 * binary builds are hits in the other), else rtt_own_cache.  0 or -1. */
int rtt_setup(const char *name);
int rtt_teardown(void);

void rtt_path(char *out, size_t cap, const char *name);          /* rtt_tmp/name */
void rtt_write_text(const char *path, const char *text);
void rtt_run(char *const argv[], double timeout, sh_proc_result *r);   /* result must be freed */
void rtt_parse_genome(const char *text, sh_genome *g);
char *rtt_build(const char *text, const char *target);           /* malloc'd path of the variant */
float *rtt_read_f32(const char *path, size_t *n);
double rtt_rel_err(const float *a, const float *b, size_t n);    /* fails on NaN/Inf in a */
double rtt_reference(const char *text, int seed, const char *wtype,
                     const char *gguf, const char *logits, const char *logits_actq);
double rtt_reference_actq(const char *text, int seed, const char *wtype,
                          const char *trace, const char *logits_actq);
/* `exe logits --tokens rtt_tokens --all` with extra args (NULL-terminated) */
float *rtt_logits(const char *exe, const char *out_name, size_t *n, ...);
/* fails unless rel err <= tol; frees a and b */
void rtt_compare(const char *what, float *a, size_t na, float *b, size_t nb, double tol);
float *rtt_arm_logits(const char *arm, const char *wtype, const char *mode, size_t *n);
int rtt_cpu_has(const char *flag);
void rtt_export(const char *exe, const char *gguf, const char *wtype, const char *seed);
unsigned char *rtt_slurp(const char *path, size_t *n);
void rtt_write_bytes(const char *path, const unsigned char *b, size_t n);
void rtt_expect_rejected_msg(const char *exe, const char *gguf, const char *what, const char *needle);
void rtt_expect_rejected(const char *exe, const char *gguf, const char *what);
void rtt_expect_rejected_saying(const char *exe, const char *gguf, const char *what);

#endif
