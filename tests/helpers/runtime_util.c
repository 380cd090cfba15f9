/* runtime_util.c - what tests/test_runtime.c and tests/test_parity.c share: the
 * tiny genomes, a temp dir and the variant build cache, building a variant,
 * running it for its logits (natively or under qemu-aarch64), the numpy
 * reference (tests/reference/lfm2_ref.py) and the relative-error comparison.
 * The two files are one suite split in two binaries so that the suite's two
 * lanes (tests/run_tests.sh) take about as long. */
#include "runtime_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "evaluator/build.h"

/* ---- tiny genomes covering every block kind --------------------------------- */
/* dense LFM2 shape, every row length a multiple of 32 (quantisable) */
const char *const G_DENSE =
    "d=64 v=256 hd=32 theta=10000 eps=1e-05 ctx=512 tie=1 | "
    "conv(3)/swiglu(128)*2 gqa(2,1,qk)/swiglu(128) conv(3)/swiglu(128)";
/* no QK-norm, head_dim 24, untied head, llama3 rope scaling, odd vocab */
const char *const G_ODD =
    "d=96 v=300 hd=24 theta=500000 eps=1e-06 ctx=1024 tie=0 rope=llama3(8,1,4,64) | "
    "gqa(4,2)/swiglu(160) conv(3)/swiglu(160) gqa(4,2)/swiglu(160)";
/* LFM2-MoE shape: leading dense layer, MoE with and without router bias */
const char *const G_MOE =
    "d=64 v=256 hd=16 theta=1000000 eps=1e-05 ctx=512 tie=1 | "
    "conv(3)/swiglu(128) gqa(4,2,qk)/moe(8,2,32,bias) conv(3)/moe(8,2,32)";
/* same names as G_DENSE, other FFN width: a GGUF of it must not load into G_DENSE */
const char *const G_DENSE_WIDER =
    "d=64 v=256 hd=32 theta=10000 eps=1e-05 ctx=512 tie=1 | "
    "conv(3)/swiglu(160)*2 gqa(2,1,qk)/swiglu(160) conv(3)/swiglu(160)";
/* rows long enough for the AVX-512 group kernels, with leftover blocks */
const char *const G_WIDE =
    "d=576 v=320 hd=64 theta=10000 eps=1e-05 ctx=512 tie=1 | "
    "conv(3)/swiglu(1024) gqa(9,3,qk)/swiglu(1024) conv(3)/moe(4,2,544)";
/* every row a multiple of 256: the k-quants (q4_K/q5_K/q6_K) apply to every matrix */
const char *const G_KQ =
    "d=256 v=320 hd=64 theta=1000000 eps=1e-05 ctx=512 tie=1 | "
    "conv(3)/swiglu(512) gqa(4,2,qk)/swiglu(768) conv(3)/moe(4,2,256,bias)";
/* k-quant matrices whose row counts are not multiples of 16 (the AVX-512
 * packed bands of 16 rows plus rows left in the ggml layout): embedding and
 * untied head of 312 rows; every row length a multiple of 256 (no q8_0
 * fallback, whose float order differs between builds) */
const char *const G_KQ_ODD =
    "d=256 v=312 hd=64 theta=1000000 eps=1e-05 ctx=512 tie=0 | "
    "conv(3)/swiglu(512) gqa(4,1,qk)/swiglu(768) conv(3)/moe(4,2,256)";
const char *const RTT_TOKENS = "1,5,9,200,3,17,42,7";
const char *rtt_tokens = "1,5,9,200,3,17,42,7";   /* the sequence in use */

char rtt_tmp[256];
char rtt_root[1024];
char rtt_runtime[1200];
char rtt_tool[1200];

/* ---- small helpers ------------------------------------------------------------ */

void rtt_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", rtt_tmp, name);
}

void rtt_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Runs argv; the result must be freed.  Fails the test if it cannot start. */
void rtt_run(char *const argv[], double timeout, sh_proc_result *r)
{
    sh_err err = {{0}};
    sh_proc_opts po = {.timeout_s = timeout, .max_out = 64u << 20};
    int rc = sh_proc_run(argv, &po, r, &err);
    if (rc != 0) fail_msg("cannot run %s: %s", argv[0], err.msg);
}

void rtt_parse_genome(const char *text, sh_genome *g)
{
    sh_err err = {{0}};
    if (sh_genome_parse(text, g, &err) != 0) fail_msg("genome '%s': %s", text, err.msg);
}

/* Builds text for target with the real runtime; returns a malloc'd path.
 * A failed build is remembered so later tests fail fast instead of recompiling. */
char *rtt_build(const char *text, const char *target)
{
    static struct { const char *text, *target; char msg[SH_ERR_MAX]; } failed[16];
    static int n_failed;
    for (int i = 0; i < n_failed; i++)
        if (failed[i].text == text && !strcmp(failed[i].target, target))
            fail_msg("build for %s failed earlier: %s", target, failed[i].msg);
    static sh_genome g;
    rtt_parse_genome(text, &g);
    sh_build_result res;
    sh_err err = {{0}};
    if (sh_build_variant_ex(&g, target, NULL, &res, &err) != 0) {
        if (n_failed < 16) {
            failed[n_failed].text = text;
            failed[n_failed].target = target;
            snprintf(failed[n_failed++].msg, SH_ERR_MAX, "%s", err.msg);
        }
        fail_msg("build %s for %s: %s", text, target, err.msg);
    }
    return strdup(res.exe_path);
}

float *rtt_read_f32(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(len > 0 && len % 4 == 0);
    float *v = malloc((size_t)len);
    assert_non_null(v);
    assert_int_equal(fread(v, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len / 4;
    return v;
}

/* max|a-b| / max|b|; fails on NaN/Inf in a */
double rtt_rel_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) fail_msg("non-finite logit %g at %zu", a[i], i);
        double d = fabs((double)a[i] - b[i]);
        if (d > num) num = d;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}

/* Writes a GGUF of `text` with random weights and the reference logits of
 * rtt_tokens (and, if logits_actq, those with q8_0-rounded activations); returns
 * the smallest MoE routing gap (or 1 if none). */
double rtt_reference(const char *text, int seed, const char *wtype,
                        const char *gguf, const char *logits, const char *logits_actq)
{
    char script[1200], seed_s[16];
    snprintf(script, sizeof script, "%s/tests/reference/lfm2_ref.py", rtt_root);
    snprintf(seed_s, sizeof seed_s, "%d", seed);
    char *argv[] = {"/usr/bin/python3", script, "--genome", (char *)text, "--seed", seed_s,
                    "--wtype", (char *)wtype, "--gguf", (char *)gguf,
                    "--tokens", (char *)rtt_tokens, "--logits", (char *)logits,
                    logits_actq ? "--logits-actq" : NULL, (char *)logits_actq, NULL};
    sh_proc_result r;
    rtt_run(argv, 120, &r);
    if (!(r.exited && r.exit_code == 0)) fail_msg("lfm2_ref.py failed: %s", r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    json_t *gap = json_object_get(j, "min_moe_gap");
    double v = json_is_number(gap) ? json_number_value(gap) : 1.0;
    json_decref(j);
    sh_proc_result_free(&r);
    return v;
}

/* The reference logits with q8_0-rounded activations, rounding the rows the
 * variant wrote with --dump-act to `trace`; fails unless every row found its
 * variant counterpart within TOL_ACT_ROWS.  Returns the smallest MoE routing gap. */
double rtt_reference_actq(const char *text, int seed, const char *wtype,
                             const char *trace, const char *logits_actq)
{
    char script[1200], seed_s[16];
    snprintf(script, sizeof script, "%s/tests/reference/lfm2_ref.py", rtt_root);
    snprintf(seed_s, sizeof seed_s, "%d", seed);
    char *argv[] = {"/usr/bin/python3", script, "--genome", (char *)text, "--seed", seed_s,
                    "--wtype", (char *)wtype, "--tokens", (char *)rtt_tokens,
                    "--logits-actq", (char *)logits_actq, "--act-from", (char *)trace, NULL};
    sh_proc_result r;
    rtt_run(argv, 120, &r);
    if (!(r.exited && r.exit_code == 0)) fail_msg("lfm2_ref.py --act-from failed: %s", r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    json_int_t rows = json_integer_value(json_object_get(j, "act_rows"));
    json_int_t unmatched = json_integer_value(json_object_get(j, "act_unmatched"));
    double dist = json_number_value(json_object_get(j, "act_max_dist"));
    json_t *gap = json_object_get(j, "min_moe_gap");
    double v = json_is_number(gap) ? json_number_value(gap) : 1.0;
    json_decref(j);
    sh_proc_result_free(&r);
    print_message("# actq reference: %lld rows from the variant, max dist %.2g\n", (long long)rows, dist);
    if (rows <= 0 || unmatched != 0)
        fail_msg("%s: %lld of %lld rounded rows have no variant row within 1e-4", wtype,
                 (long long)unmatched, (long long)rows);
    if (!(dist <= TOL_ACT_ROWS)) fail_msg("%s: variant rows differ from the reference's by %.3g > %.0e",
                                          wtype, dist, TOL_ACT_ROWS);
    return v;
}

/* Runs `exe logits ... --all --out FILE` (extra args NULL-terminated) and
 * returns the logits of every position. */
float *rtt_logits(const char *exe, const char *out_name, size_t *n, ...)
{
    char out[512];
    rtt_path(out, sizeof out, out_name);
    char *argv[32] = {(char *)exe, "logits", "--tokens", (char *)rtt_tokens, "--all", "--out", out};
    int k = 7;
    va_list ap;
    va_start(ap, n);
    for (const char *a; k < 30 && (a = va_arg(ap, const char *));) argv[k++] = (char *)a;
    va_end(ap);
    argv[k] = NULL;
    sh_proc_result r;
    rtt_run(argv, 300, &r);
    if (!(r.exited && r.exit_code == 0)) fail_msg("%s logits failed (exit %d sig %d): %s",
                                                  exe, r.exit_code, r.signal, r.err);
    sh_proc_result_free(&r);
    return rtt_read_f32(out, n);
}

/* ---- setup -------------------------------------------------------------------- */

char rtt_cache[600];
char rtt_own_cache[600];

int rtt_setup(const char *name)
{
    snprintf(rtt_tmp, sizeof rtt_tmp, "/tmp/%s_XXXXXX", name);
    if (!mkdtemp(rtt_tmp)) return -1;
    const char *root = getenv("STARHIL_ROOT");
    snprintf(rtt_root, sizeof rtt_root, "%s", root && *root ? root : ".");
    snprintf(rtt_runtime, sizeof rtt_runtime, "%s/evaluator/runtime", rtt_root);
    const char *bin = getenv("STARHIL_BIN");
    snprintf(rtt_tool, sizeof rtt_tool, "%s", bin && *bin ? bin : "./starhil");
    rtt_path(rtt_own_cache, sizeof rtt_own_cache, "cache");
    /* one cache for every variant: each is compiled once, and a variant
     * test_runtime and test_parity both run is compiled once per suite run */
    const char *keep = getenv("STARHIL_TEST_CACHE"), *suite = getenv("STARHIL_CACHE_DIR");
    if (keep && *keep) snprintf(rtt_cache, sizeof rtt_cache, "%s", keep);
    else if (suite && *suite) snprintf(rtt_cache, sizeof rtt_cache, "%s", suite);
    else snprintf(rtt_cache, sizeof rtt_cache, "%s", rtt_own_cache);
    setenv("STARHIL_CACHE_DIR", rtt_cache, 1);
    setenv("STARHIL_RUNTIME_DIR", rtt_runtime, 1);
    return 0;
}

int rtt_teardown(void)
{
    char *argv[] = {"rm", "-rf", rtt_tmp, NULL};
    sh_proc_result r;
    sh_err err;
    if (sh_proc_run(argv, NULL, &r, &err) == 0) sh_proc_result_free(&r);
    return 0;
}

void rtt_compare(const char *what, float *a, size_t na, float *b, size_t nb, double tol)
{
    if (na != nb) fail_msg("%s: %zu vs %zu logits", what, na, nb);
    double e = rtt_rel_err(a, b, na);
    print_message("# %s rel err %.3g (tol %.0e)\n", what, e, tol);
    if (!(e <= tol)) fail_msg("%s: relative error %.3g > %.0e", what, e, tol);
    free(a); free(b);
}

/* Logits of RTT_TOKENS from an aarch64 variant run under qemu-aarch64. */
float *rtt_arm_logits(const char *arm, const char *wtype, const char *mode, size_t *n)
{
    char out[512];
    rtt_path(out, sizeof out, "arm.out");
    char *argv[] = {"/usr/bin/qemu-aarch64", (char *)arm, "logits", "--tokens", (char *)RTT_TOKENS,
                    "--all", "--out", out, "--seed", "9", "--wtype", (char *)wtype,
                    "--mode", (char *)mode, NULL};
    sh_proc_result r;
    rtt_run(argv, 300, &r);
    if (r.exit_code != 0) fail_msg("aarch64 variant under qemu: exit %d: %s", r.exit_code, r.err);
    sh_proc_result_free(&r);
    return rtt_read_f32(out, n);
}

int rtt_cpu_has(const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0;
    char line[8192], word[64];
    int found = 0;
    snprintf(word, sizeof word, " %s", flag);
    while (!found && fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            char *p = strstr(line, word);
            found = p && (p[strlen(word)] == ' ' || p[strlen(word)] == '\n');
        }
    fclose(f);
    return found;
}

/* `exe export` of synthetic weights (wtype, seed) into gguf; fails the test on error */
void rtt_export(const char *exe, const char *gguf, const char *wtype, const char *seed)
{
    char *argv[] = {(char *)exe, "export", "--out", (char *)gguf, "--wtype", (char *)wtype, "--seed", (char *)seed, NULL};
    sh_proc_result r;
    rtt_run(argv, 60, &r);
    if (r.exit_code != 0) fail_msg("variant export: exit %d: %s", r.exit_code, r.err);
    sh_proc_result_free(&r);
}


unsigned char *rtt_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

void rtt_write_bytes(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* The variant must reject the file with exit 1 and a message that contains
 * `needle` (any message when needle is NULL), never crash. */
void rtt_expect_rejected_msg(const char *exe, const char *gguf, const char *what, const char *needle)
{
    char out[512];
    rtt_path(out, sizeof out, "bad.out");
    char *argv[] = {(char *)exe, "logits", "--tokens", "1,2,3", "--gguf", (char *)gguf, "--out", out, NULL};
    sh_proc_result r;
    rtt_run(argv, 60, &r);
    if (!r.exited) fail_msg("%s: variant killed by signal %d", what, r.signal);
    if (r.exit_code != 1) fail_msg("%s: exit %d (want 1), stderr: %s", what, r.exit_code, r.err);
    if (r.err_len < 8) fail_msg("%s: no error message", what);
    if (needle && !strstr(r.err, needle)) fail_msg("%s: message lacks '%s': %s", what, needle, r.err);
    sh_proc_result_free(&r);
}

void rtt_expect_rejected(const char *exe, const char *gguf, const char *what)
{
    rtt_expect_rejected_msg(exe, gguf, what, NULL);
}

/* the message names the problem: `what` itself */
void rtt_expect_rejected_saying(const char *exe, const char *gguf, const char *what)
{
    rtt_expect_rejected_msg(exe, gguf, what, what);
}
