/* test_runtime.c - the variant build cache (evaluator/build.c), `starhil build`,
 * and the correctness of the runtime variants (evaluator/runtime/):
 *
 *  - build cache: header contents compile and match the genome, a hit runs no
 *    compiler (counted with a logging compiler wrapper), concurrent builders
 *    compile once, compiler errors and missing cross compilers surface clearly;
 *  - consistency: scalar vs SIMD build, prefill vs token-by-token decode,
 *    aarch64 (static, under qemu-aarch64) vs x86-64; the element-wise
 *    numerics (q8 activation rounding, SiLU) bit-identical on every SIMD path;
 *  - GGUF files: the variant's own export, qwen3 and llama files;
 *  - robustness: malformed GGUF files exit 1 with a message, never a signal;
 *  - the bench JSON carries every field of docs/interfaces.md with sane values.
 *
 * Parity with independent forward passes (the numpy references, llama.cpp's
 * fixtures) is in tests/test_parity.c; the helpers both use, tolerances and
 * tiny genomes in tests/helpers/runtime_util.c.  Variants are compiled once
 * into the suite's build cache (or the test's own; set STARHIL_TEST_CACHE=DIR
 * to keep one between runs); the build-cache tests use a cache of their own. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "evaluator/build.h"
#include "genome/genome.h"
#include "genome/gguf_meta.h"
#include "util/proc.h"
#include "tests/helpers/reports_gguf.h"
#include "tests/helpers/runtime_util.h"

static int count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f)) n += !needle || strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* ---- build cache (with a small self-contained runtime) -------------------------- */

/* A runtime that only checks the generated header: it compiles SHV_LAYER_TABLE
 * into rows and prints what it sees as JSON. */
static const char *FAKE_RUNTIME =
    "#include <stdio.h>\n#include \"sh_variant.h\"\n"
    "typedef struct { int mixer, kernel, heads, kv, qk, ffn, width, e, k, fe, bias; } row;\n"
    "static const row rows[] = SHV_LAYER_TABLE;\n"
    "int main(void) {\n"
    "  long widths = 0; int moe = 0;\n"
    "  for (unsigned i = 0; i < sizeof rows / sizeof rows[0]; i++) { widths += rows[i].width; moe += rows[i].ffn == SHV_MOE; }\n"
    "  printf(\"{\\\"hash\\\":\\\"%s\\\",\\\"rows\\\":%u,\\\"layers\\\":%d,\\\"widths\\\":%ld,\\\"moe\\\":%d,"
    "\\\"hidden\\\":%d,\\\"theta\\\":%g,\\\"target\\\":\\\"%s\\\",\\\"text\\\":\\\"%s\\\"}\\n\",\n"
    "    SHV_GENOME_HASH, (unsigned)(sizeof rows / sizeof rows[0]), SHV_N_LAYERS, widths, moe,\n"
    "    SHV_HIDDEN, SHV_ROPE_THETA, SHV_BUILD_TARGET, SHV_GENOME_TEXT);\n"
    "  return 0;\n}\n";

static char g_fake_rt[512], g_cc_wrap[512], g_cc_log[512];
/* a build runs the compiler once per runtime source ("-c ... -o N-x.c.o") and
 * once to link ("-o DIR/variant OBJS"): this picks the link, one per build */
#define LINK_LINE "/variant "

static void use_fake_runtime(void)
{
    rtt_path(g_fake_rt, sizeof g_fake_rt, "fake_rt");
    mkdir(g_fake_rt, 0755);
    char p[600];
    snprintf(p, sizeof p, "%s/main.c", g_fake_rt);
    rtt_write_text(p, FAKE_RUNTIME);
    rtt_path(g_cc_log, sizeof g_cc_log, "cc.log");
    rtt_path(g_cc_wrap, sizeof g_cc_wrap, "cc-wrap.sh");
    char script[2048];
    snprintf(script, sizeof script, "#!/bin/sh\necho \"$*\" >> '%s'\nexec cc \"$@\"\n", g_cc_log);
    rtt_write_text(g_cc_wrap, script);
    chmod(g_cc_wrap, 0755);
    setenv("STARHIL_RUNTIME_DIR", g_fake_rt, 1);
    setenv("STARHIL_CACHE_DIR", rtt_own_cache, 1);
}

/* the build-cache tests count compiler runs and cache hits: in a cache of
 * their own, whatever other binaries of the suite have built */
static void use_real_runtime(void)
{
    setenv("STARHIL_RUNTIME_DIR", rtt_runtime, 1);
    setenv("STARHIL_CACHE_DIR", rtt_cache, 1);
}

static void test_header_compiles_and_matches_genome(void **state)
{
    (void)state;
    use_fake_runtime();
    sh_genome g;
    rtt_parse_genome(G_MOE, &g);
    sh_build_opts o = {.cc = g_cc_wrap};
    sh_build_result res;
    sh_err err = {{0}};
    if (sh_build_variant_ex(&g, "scalar", &o, &res, &err) != 0) fail_msg("%s", err.msg);
    char *argv[] = {res.exe_path, NULL};
    sh_proc_result r;
    rtt_run(argv, 30, &r);
    assert_int_equal(r.exit_code, 0);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    char hex[17];
    sh_hash_hex(sh_genome_hash(&g), hex);
    assert_string_equal(json_string_value(json_object_get(j, "hash")), hex);
    assert_int_equal(json_integer_value(json_object_get(j, "rows")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "layers")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "widths")), 128);
    assert_int_equal(json_integer_value(json_object_get(j, "moe")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "hidden")), 64);
    assert_true(fabs(json_number_value(json_object_get(j, "theta")) - 1e6) < 1e-6);
    assert_string_equal(json_string_value(json_object_get(j, "target")), "scalar");
    char text[4096];
    assert_int_equal(sh_genome_format(&g, text, sizeof text, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(j, "text")), text);
    json_decref(j);
    sh_proc_result_free(&r);
    /* the entry holds the header and a build.json naming the genome */
    char p[SH_BUILD_PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/build.json", res.dir);
    json_t *b = json_load_file(p, 0, NULL);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(b, "genome_hash")), hex);
    assert_string_equal(json_string_value(json_object_get(b, "target")), "scalar");
    json_decref(b);
    use_real_runtime();
}

static void test_cache_hit_runs_no_compiler(void **state)
{
    (void)state;
    use_fake_runtime();
    sh_genome g;
    rtt_parse_genome(G_DENSE, &g);
    sh_build_opts o = {.cc = g_cc_wrap};
    sh_build_result r1, r2;
    sh_err err = {{0}};
    if (sh_build_variant_ex(&g, "native", &o, &r1, &err) != 0) fail_msg("%s", err.msg);
    assert_false(r1.cache_hit);
    int compiles = count_lines(g_cc_log, LINK_LINE);
    int lines = count_lines(g_cc_log, NULL);
    unsigned long runs = sh_build_compiler_runs();
    assert_true(compiles >= 1);
    /* same build again: a hit, no compiler run of any kind */
    if (sh_build_variant_ex(&g, "native", &o, &r2, &err) != 0) fail_msg("%s", err.msg);
    assert_true(r2.cache_hit);
    assert_string_equal(r1.exe_path, r2.exe_path);
    assert_int_equal(count_lines(g_cc_log, NULL), lines);
    assert_int_equal(sh_build_compiler_runs(), runs);
    /* a fresh process (`starhil build`) also hits without running the compiler */
    char *argv[] = {rtt_tool, "build", (char *)G_DENSE, "--target", "native", "--cc", g_cc_wrap, "--json", NULL};
    sh_proc_result r;
    rtt_run(argv, 60, &r);
    if (r.exit_code != 0) fail_msg("starhil build: %s", r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "cache_hit")));
    assert_string_equal(json_string_value(json_object_get(j, "exe")), r1.exe_path);
    json_decref(j);
    sh_proc_result_free(&r);
    assert_int_equal(count_lines(g_cc_log, NULL), lines);
    /* another target, changed flags, --force, and changed runtime sources all recompile */
    sh_build_result r3;
    if (sh_build_variant_ex(&g, "scalar", &o, &r3, &err) != 0) fail_msg("%s", err.msg);
    assert_string_not_equal(r3.key, r1.key);
    sh_build_opts o2 = {.cc = g_cc_wrap, .cflags = "-DEXTRA_FLAG=1"};
    if (sh_build_variant_ex(&g, "native", &o2, &r3, &err) != 0) fail_msg("%s", err.msg);
    assert_false(r3.cache_hit);
    assert_string_not_equal(r3.key, r1.key);
    sh_build_opts of = {.cc = g_cc_wrap, .force = true};
    int before = count_lines(g_cc_log, LINK_LINE);
    if (sh_build_variant_ex(&g, "native", &of, &r3, &err) != 0) fail_msg("%s", err.msg);
    assert_false(r3.cache_hit);
    assert_int_equal(count_lines(g_cc_log, LINK_LINE), before + 1);
    char p[600];
    snprintf(p, sizeof p, "%s/extra.h", g_fake_rt);
    rtt_write_text(p, "/* a new runtime file changes the runtime hash */\n");
    if (sh_build_variant_ex(&g, "native", &o, &r3, &err) != 0) fail_msg("%s", err.msg);
    assert_false(r3.cache_hit);
    assert_string_not_equal(r3.key, r1.key);
    unlink(p);
    use_real_runtime();
}

/* objects_reused of a build (its build.json) */
static int objects_reused(const sh_build_result *r)
{
    char p[SH_BUILD_PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/build.json", r->dir);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    if (!j) fail_msg("%s: %s", p, je.text);
    json_t *v = json_object_get(j, "objects_reused");
    assert_true(json_is_integer(v));
    int n = (int)json_integer_value(v);
    json_decref(j);
    return n;
}

/* A runtime source that defines RT_NO_MODEL is compiled once per compiler and
 * flags, and its object is linked into every genome's variant; a change of
 * its text is a new object, and --force compiles it again. */
static void test_genome_free_objects_shared(void **state)
{
    (void)state;
    use_fake_runtime();
    char lib[600];
    snprintf(lib, sizeof lib, "%s/lib.c", g_fake_rt);
    rtt_write_text(lib, "#define RT_NO_MODEL\nint shared_fn(int x);\nint shared_fn(int x) { return x + 1; }\n");
    sh_genome a, b;
    rtt_parse_genome(G_DENSE_WIDER, &a);
    rtt_parse_genome(G_KQ, &b);
    sh_build_opts o = {.cc = g_cc_wrap}, of = {.cc = g_cc_wrap, .force = true};
    sh_build_result ra, rb;
    sh_err err = {{0}};
    int c0 = count_lines(g_cc_log, "lib.c -o ");
    if (sh_build_variant_ex(&a, "native", &o, &ra, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(count_lines(g_cc_log, "lib.c -o "), c0 + 1);
    assert_int_equal(objects_reused(&ra), 0);
    /* another genome: main.c compiled, lib.c's object reused */
    if (sh_build_variant_ex(&b, "native", &o, &rb, &err) != 0) fail_msg("%s", err.msg);
    assert_false(rb.cache_hit);
    assert_int_equal(count_lines(g_cc_log, "lib.c -o "), c0 + 1);
    assert_int_equal(objects_reused(&rb), 1);
    char *argv[] = {rb.exe_path, NULL};
    sh_proc_result r;
    rtt_run(argv, 30, &r);
    assert_int_equal(r.exit_code, 0);
    sh_proc_result_free(&r);
    /* another target (other flags): its own object */
    sh_build_result rs;
    if (sh_build_variant_ex(&b, "scalar", &o, &rs, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(count_lines(g_cc_log, "lib.c -o "), c0 + 2);
    /* changed text: compiled again */
    rtt_write_text(lib, "#define RT_NO_MODEL\nint shared_fn(int x);\nint shared_fn(int x) { return x + 2; }\n");
    if (sh_build_variant_ex(&a, "native", &o, &ra, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(count_lines(g_cc_log, "lib.c -o "), c0 + 3);
    assert_int_equal(objects_reused(&ra), 0);
    /* --force trusts no cache, the object cache included */
    if (sh_build_variant_ex(&a, "native", &of, &ra, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(count_lines(g_cc_log, "lib.c -o "), c0 + 4);
    unlink(lib);
    use_real_runtime();
}

static void test_concurrent_builders_compile_once(void **state)
{
    (void)state;
    use_fake_runtime();
    sh_genome g;
    rtt_parse_genome(G_ODD, &g);
    int before = count_lines(g_cc_log, LINK_LINE);
    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            sh_build_opts o = {.cc = g_cc_wrap};
            sh_build_result res;
            sh_err err;
            int rc = sh_build_variant_ex(&g, "native", &o, &res, &err);
            _exit(rc == 0 && access(res.exe_path, X_OK) == 0 ? 0 : 1);
        }
    }
    for (int i = 0; i < 3; i++) {
        int st = 0;
        assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    assert_int_equal(count_lines(g_cc_log, LINK_LINE), before + 1);
    use_real_runtime();
}

static void test_compiler_error_surfaces(void **state)
{
    (void)state;
    char dir[512], p[600];
    rtt_path(dir, sizeof dir, "broken_rt");
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/main.c", dir);
    rtt_write_text(p, "int main(void) { return undefined_thing_xyz; }\n");
    setenv("STARHIL_RUNTIME_DIR", dir, 1);
    setenv("STARHIL_CACHE_DIR", rtt_own_cache, 1);
    sh_genome g;
    rtt_parse_genome(G_DENSE, &g);
    sh_build_result res;
    sh_err err = {{0}};
    assert_int_equal(sh_build_variant_ex(&g, "scalar", NULL, &res, &err), -1);
    assert_non_null(strstr(err.msg, "undefined_thing_xyz"));
    assert_non_null(strstr(err.msg, "scalar"));
    /* nothing half-built is left in the entry */
    assert_int_not_equal(access(res.exe_path, F_OK), 0);
    DIR *d = opendir(res.dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) fail_msg("left-over temp file %s", e->d_name);
    closedir(d);
    /* an empty runtime directory is an error too */
    unlink(p);
    assert_int_equal(sh_build_variant_ex(&g, "scalar", NULL, &res, &err), -1);
    assert_non_null(strstr(err.msg, "no .c files"));
    use_real_runtime();
}

static void test_missing_compiler_and_bad_target(void **state)
{
    (void)state;
    sh_genome g;
    rtt_parse_genome(G_DENSE, &g);
    sh_build_result res;
    sh_err err = {{0}};
    char *old = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    char empty[512];
    rtt_path(empty, sizeof empty, "empty_path");
    mkdir(empty, 0755);
    setenv("PATH", empty, 1);
    int rc = sh_build_variant_ex(&g, "aarch64-linux-gnu", NULL, &res, &err);
    setenv("PATH", old, 1);
    free(old);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err.msg, "gcc-aarch64-linux-gnu"));
    assert_int_equal(sh_build_variant_ex(&g, "riscv64-linux-gnu", NULL, &res, &err), -1);
    assert_non_null(strstr(err.msg, "riscv64-linux-gnu"));
    assert_int_equal(sh_build_variant_ex(&g, "aarch64-linux-gnu:bad march!", NULL, &res, &err), -1);
    sh_build_opts o = {.cc = "/nonexistent/cc"};
    assert_int_equal(sh_build_variant_ex(&g, "native", &o, &res, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/cc"));
    char small[8];
    assert_int_equal(sh_build_variant(&g, "riscv", NULL, small, sizeof small, &err), -1);
}

static void test_build_cli(void **state)
{
    (void)state;
    sh_proc_result r;
    char *help[] = {rtt_tool, "build", "--help", NULL};
    rtt_run(help, 30, &r);
    if (r.exit_code != 0) fail_msg("%s build --help: exit %d: %s", rtt_tool, r.exit_code, r.err);
    assert_non_null(strstr(r.out, "usage: starhil build"));
    sh_proc_result_free(&r);
    char *none[] = {rtt_tool, "build", NULL};
    rtt_run(none, 30, &r);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "missing GENOME"));
    sh_proc_result_free(&r);
    char *bad[] = {rtt_tool, "build", (char *)G_DENSE, "--target", "sparc", NULL};
    rtt_run(bad, 30, &r);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "unknown target"));
    sh_proc_result_free(&r);
    char *badg[] = {rtt_tool, "build", "d=64 v=1 | nonsense", NULL};
    rtt_run(badg, 30, &r);
    assert_int_equal(r.exit_code, 1);
    assert_true(r.err_len > 0);
    sh_proc_result_free(&r);
    char *hdr[] = {rtt_tool, "build", "lfm2-350m", "--header", NULL};
    rtt_run(hdr, 30, &r);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "#define SHV_HIDDEN         1024"));
    assert_non_null(strstr(r.out, "{ SHV_GQA , 0, 16, 8, 1, SHV_SWIGLU, 4608, 0, 0, 0, 0 }"));
    sh_proc_result_free(&r);
}

/* ---- consistency between builds and paths (synthetic weights) --------------------------- */
static void test_scalar_matches_simd(void **state)
{
    (void)state;
    char *simd = rtt_build(G_MOE, "native"), *scal = rtt_build(G_MOE, "scalar");
    size_t na, nb;
    float *a = rtt_logits(simd, "simd.out", &na, "--seed", "5", (const char *)NULL);
    float *b = rtt_logits(scal, "scalar.out", &nb, "--seed", "5", (const char *)NULL);
    rtt_compare("scalar vs simd f32", a, na, b, nb, TOL_SAME_MATH);
    const char *qtypes[] = {"q8_0", "q4_0", "f16"};
    for (int t = 0; t < 3; t++) {
        a = rtt_logits(simd, "simd.out", &na, "--seed", "5", "--wtype", qtypes[t], (const char *)NULL);
        b = rtt_logits(scal, "scalar.out", &nb, "--seed", "5", "--wtype", qtypes[t], (const char *)NULL);
        char what[64];
        snprintf(what, sizeof what, "scalar vs simd %s", qtypes[t]);
        rtt_compare(what, a, na, b, nb, t == 2 ? TOL_SAME_MATH : TOL_SAME_Q);
    }
    /* f16 decode has its own AVX-512 kernel (8 rows, split sums) */
    a = rtt_logits(simd, "simd.out", &na, "--seed", "5", "--wtype", "f16", "--mode", "decode", (const char *)NULL);
    b = rtt_logits(scal, "scalar.out", &nb, "--seed", "5", "--wtype", "f16", "--mode", "decode", (const char *)NULL);
    rtt_compare("scalar vs simd f16 decode", a, na, b, nb, TOL_SAME_MATH);
    free(simd); free(scal);
}

static void test_decode_matches_prefill(void **state)
{
    (void)state;
    const char *genomes[] = {G_MOE, G_ODD};
    for (int i = 0; i < 2; i++) {
        char *exe = rtt_build(genomes[i], "native");
        size_t na, nb;
        float *a = rtt_logits(exe, "prefill.out", &na, "--seed", "7", "--mode", "prefill", (const char *)NULL);
        float *b = rtt_logits(exe, "decode.out", &nb, "--seed", "7", "--mode", "decode", (const char *)NULL);
        rtt_compare(i ? "decode vs prefill (odd)" : "decode vs prefill (moe)", b, nb, a, na, TOL_SAME_MATH);
        free(exe);
    }
}

/* An f16 KV cache (keys in transposed blocks, values by row, both rounded
 * to f16) against the f32 cache: prefill and decode, head dims 64 and 24
 * (not a multiple of the vector width), in three conventions: "f16" (llama.cpp's
 * CPU path without flash attention: the query and the softmax weights are
 * rounded to f16 as well), "f16-f32q" (those kept in f32) and "f16-fa"
 * (llama.cpp's default CPU flash attention: values accumulated in f16).  Bound: f16 rounding (2^-11 relative)
 * through a few layers, measured ~1e-4..1e-3. */
#define TOL_KV_F16 5e-3
static void test_kv_f16_matches_f32(void **state)
{
    (void)state;
    const char *genomes[] = {G_WIDE, G_ODD};
    const char *modes[] = {"prefill", "decode"};
    for (int i = 0; i < 2; i++) {
        char *exe = rtt_build(genomes[i], "native");
        for (int m = 0; m < 2; m++) {
            size_t na, nb, nc;
            float *a = rtt_logits(exe, "kv16.out", &na, "--seed", "6", "--kvtype", "f16", "--mode", modes[m],
                                      (const char *)NULL);
            float *c = rtt_logits(exe, "kv16q.out", &nc, "--seed", "6", "--kvtype", "f16-f32q", "--mode", modes[m],
                                      (const char *)NULL);
            float *b = rtt_logits(exe, "kv32.out", &nb, "--seed", "6", "--kvtype", "f32", "--mode", modes[m],
                                      (const char *)NULL);
            float *b2 = malloc(nb * sizeof(float));
            assert_non_null(b2);
            memcpy(b2, b, nb * sizeof(float));
            char what[96];
            snprintf(what, sizeof what, "kv f16 vs f32 (%s, hd %s)", modes[m], i ? "24" : "64");
            assert_int_equal(na, nb);
            assert_int_equal(nc, nb);
            assert_true(memcmp(a, b, na * sizeof(float)) != 0);   /* the f16 cache is really in use */
            assert_true(memcmp(a, c, na * sizeof(float)) != 0);   /* the query / weight rounding too */
            assert_true(memcmp(c, b, na * sizeof(float)) != 0);
            rtt_compare(what, a, na, b, nb, TOL_KV_F16);          /* frees a and b */
            snprintf(what, sizeof what, "kv f16-f32q vs f32 (%s, hd %s)", modes[m], i ? "24" : "64");
            float *b3 = malloc(nb * sizeof(float));
            assert_non_null(b3);
            memcpy(b3, b2, nb * sizeof(float));
            rtt_compare(what, c, nc, b2, nb, TOL_KV_F16);
            /* llama.cpp's flash-attention convention: its own f16 rounding of
             * the value accumulator, within the same bound */
            size_t nf;
            float *f = rtt_logits(exe, "kv16fa.out", &nf, "--seed", "6", "--kvtype", "f16-fa", "--mode", modes[m],
                                      (const char *)NULL);
            assert_int_equal(nf, nb);
            assert_true(memcmp(f, b3, nf * sizeof(float)) != 0);
            snprintf(what, sizeof what, "kv f16-fa vs f32 (%s, hd %s)", modes[m], i ? "24" : "64");
            rtt_compare(what, f, nf, b3, nb, TOL_KV_F16);
        }
        free(exe);
    }
}

static void test_aarch64_matches_x86(void **state)
{
    (void)state;
    if (access("/usr/bin/qemu-aarch64", X_OK) != 0) fail_msg("qemu-aarch64 missing (Debian package qemu-user)");
    char *x86 = rtt_build(G_MOE, "native"), *arm = rtt_build(G_MOE, "aarch64-linux-gnu");
    char *arm8 = rtt_build(G_MOE, "aarch64-linux-gnu:armv8-a");   /* NEON without dotprod */
    const char *simd_want[] = {"neon-dotprod", "neon"};
    char *arms[] = {arm, arm8};
    for (int i = 0; i < 2; i++) {
        char *info[] = {"/usr/bin/qemu-aarch64", arms[i], "info", NULL};
        sh_proc_result r;
        rtt_run(info, 60, &r);
        assert_int_equal(r.exit_code, 0);
        json_t *j = json_loads(r.out, 0, NULL);
        assert_non_null(j);
        json_t *simd = json_object_get(json_object_get(j, "build"), "simd");
        if (!simd) simd = json_object_get(j, "simd");
        if (!json_is_string(simd) || strcmp(json_string_value(simd), simd_want[i]))
            fail_msg("aarch64 variant %d reports simd %s, want %s: %s", i,
                     json_is_string(simd) ? json_string_value(simd) : "(none)", simd_want[i], r.out);
        json_decref(j);
        sh_proc_result_free(&r);
    }
    /* every weight type; prefill, and token-by-token decode for the
     * quantised types (their decode kernels differ from prefill on both) */
    const char *types[] = {"f32", "f16", "q8_0", "q4_0"};
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < 2; i++) {
            if (i == 1 && t < 2) continue;   /* float kernels do not use dotprod */
            for (int m = 0; m < (t >= 2 ? 2 : 1); m++) {
                const char *mode = m ? "decode" : "prefill";
                size_t na, nb;
                float *b = rtt_arm_logits(arms[i], types[t], mode, &nb);
                float *a = rtt_logits(x86, "x86.out", &na, "--seed", "9", "--wtype", types[t],
                                          "--mode", mode, (const char *)NULL);
                char what[96];
                snprintf(what, sizeof what, "aarch64 %s (qemu) vs x86-64, %s %s", simd_want[i], types[t], mode);
                rtt_compare(what, b, nb, a, na, t >= 2 ? TOL_SAME_Q : TOL_SAME_MATH);
            }
        }
    }
    /* rows long enough for x86's AVX-512 group kernels, with leftover blocks */
    char *xw = rtt_build(G_WIDE, "native"), *aw = rtt_build(G_WIDE, "aarch64-linux-gnu");
    for (int t = 2; t < 4; t++)
        for (int m = 0; m < 2; m++) {
            const char *mode = m ? "decode" : "prefill";
            size_t na, nb;
            float *b = rtt_arm_logits(aw, types[t], mode, &nb);
            float *a = rtt_logits(xw, "x86.out", &na, "--seed", "9", "--wtype", types[t], "--mode", mode,
                                      (const char *)NULL);
            char what[96];
            snprintf(what, sizeof what, "aarch64 neon-dotprod (qemu) vs x86-64, wide rows, %s %s", types[t], mode);
            rtt_compare(what, b, nb, a, na, TOL_SAME_Q);
        }
    free(xw); free(aw);
    free(x86); free(arm); free(arm8);
}

/* ---- element-wise numerics: bit-identical on every SIMD path ---------------------------- */

/* Compiles tests/harness/rt_numerics.c with the runtime's rt_quant.c for one
 * SIMD path and returns its output (malloc'd) after checking the path name
 * it reports; emu = "/usr/bin/qemu-aarch64" or NULL. */
static char *numerics_run(const char *cc, const char *flags, const char *want, const char *emu, const char *name)
{
    char exe[512], hdr[512], src[1400], quant[1400], inc[1400];
    rtt_path(exe, sizeof exe, name);
    rtt_path(hdr, sizeof hdr, "numerics");
    snprintf(src, sizeof src, "%s/tests/harness/rt_numerics.c", rtt_root);
    snprintf(quant, sizeof quant, "%s/rt_quant.c", rtt_runtime);
    snprintf(inc, sizeof inc, "-I%s", rtt_runtime);
    char ihdr[600];
    snprintf(ihdr, sizeof ihdr, "-I%s", hdr);
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)cc;
    char flagbuf[256];
    snprintf(flagbuf, sizeof flagbuf, "%s", flags);
    for (char *tok = strtok(flagbuf, " "); tok && n < 12; tok = strtok(NULL, " ")) argv[n++] = tok;
    char *rest[] = {"-std=c11", "-O3", "-Wall", "-Wextra", "-Werror", ihdr, inc, "-o", exe, src, quant, "-lm", NULL};
    for (int i = 0; rest[i]; i++) argv[n++] = rest[i];
    argv[n] = NULL;
    sh_proc_result r;
    rtt_run(argv, 120, &r);
    if (r.exit_code != 0) fail_msg("%s %s: compile failed: %s", cc, flags, r.err);
    sh_proc_result_free(&r);
    char *ex[] = {emu ? (char *)emu : exe, exe, NULL};
    rtt_run(emu ? ex : ex + 1, 60, &r);
    if (r.exit_code != 0) fail_msg("numerics %s: exit %d: %s", name, r.exit_code, r.err);
    char first[64];
    snprintf(first, sizeof first, "simd %s\n", want);
    if (strncmp(r.out, first, strlen(first)) != 0) fail_msg("numerics %s: built as %.30s, want %s", name, r.out, want);
    char *body = strdup(r.out + strlen(first));
    sh_proc_result_free(&r);
    return body;
}

/* q8 activation quantisation and SiLU give the same bits on every path */
static void test_numerics_bit_identical(void **state)
{
    (void)state;
    char hdr[512], path[600];
    rtt_path(hdr, sizeof hdr, "numerics");
    mkdir(hdr, 0755);
    snprintf(path, sizeof path, "%s/sh_variant.h", hdr);
    rtt_write_text(path, "#define SHV_GENOME_HASH \"0000000000000000\"\n#define SHV_N_LAYERS 1\n"
                     "#define SHV_LAYER_TABLE { { 0, 3, 0, 0, 0, 0, 64, 0, 0, 0, 0 } }\n");
    char *ref = numerics_run("cc", "-DSHV_SCALAR", "scalar", NULL, "num_scalar");
    assert_true(strstr(ref, "block 1 d 3f800000") != NULL);   /* ties case present */
    /* activation blocks follow ggml's quantize_row_q8_0_ref: fp16 scale, same quants */
    assert_true(strstr(ref, "ggml_q8_0_ref same") != NULL);
    if (strstr(ref, "DIFFERENT")) fail_msg("q8 activation blocks differ from ggml's q8_0 reference:\n%s", ref);
    struct { const char *cc, *flags, *want, *emu, *name; int run; } paths[] = {
        {"cc", "-mavx2 -mfma -mf16c", "avx2", NULL, "num_avx2", rtt_cpu_has("avx2") && rtt_cpu_has("fma")},
        {"cc", "-mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c", "avx512", NULL, "num_avx512",
         rtt_cpu_has("avx512f") && rtt_cpu_has("avx512bw") && rtt_cpu_has("avx512vl") && rtt_cpu_has("avx512_vnni")},
        {"clang", "-mavx2 -mfma -mf16c", "avx2", NULL, "num_clang_avx2", rtt_cpu_has("avx2") && rtt_cpu_has("fma")},
        {"aarch64-linux-gnu-gcc", "-static -march=armv8.2-a+dotprod", "neon-dotprod", "/usr/bin/qemu-aarch64",
         "num_neon_dot", 1},
        {"aarch64-linux-gnu-gcc", "-static -march=armv8-a", "neon", "/usr/bin/qemu-aarch64", "num_neon", 1},
        {"aarch64-linux-gnu-gcc", "-static -DSHV_SCALAR", "scalar", "/usr/bin/qemu-aarch64", "num_arm_scalar", 1},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (!paths[i].run) { print_message("# numerics %s: CPU lacks the instructions, not run\n", paths[i].name); continue; }
        char *out = numerics_run(paths[i].cc, paths[i].flags, paths[i].want, paths[i].emu, paths[i].name);
        if (strcmp(out, ref) != 0) {
            const char *a = out, *b = ref;
            while (*a && *a == *b) a++, b++;
            while (a > out && a[-1] != '\n') a--, b--;
            fail_msg("numerics %s differs from scalar at:\n  %.120s\n  scalar: %.120s", paths[i].name, a, b);
        }
        print_message("# numerics %s: bit-identical to scalar\n", paths[i].name);
        free(out);
    }
    free(ref);
}

/* ---- the variant's own GGUF export ------------------------------------------------------- */

/* a tokenizer-only GGUF of n byte-named tokens (gpt2 model), no tensors */
static void tok_source(const char *path, int n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
#define P32(v) do { uint32_t x_ = (uint32_t)(v); fwrite(&x_, 4, 1, f); } while (0)
#define P64(v) do { uint64_t x_ = (uint64_t)(v); fwrite(&x_, 8, 1, f); } while (0)
#define PS(s) do { P64(strlen(s)); fwrite((s), 1, strlen(s), f); } while (0)
    fwrite("GGUF", 1, 4, f); P32(3); P64(0); P64(4);
    PS("general.architecture"); P32(8); PS("lfm2");
    PS("tokenizer.ggml.model"); P32(8); PS("gpt2");
    PS("tokenizer.ggml.tokens"); P32(9); P32(8); P64(n);
    for (int i = 0; i < n; i++) { char t[16]; snprintf(t, sizeof t, "t%d", i); PS(t); }
    PS("tokenizer.ggml.bos_token_id"); P32(4); P32(1);
#undef P32
#undef P64
#undef PS
    assert_int_equal(fclose(f), 0);
}

/* `variant export --tokenizer-from`: the source's tokenizer.* entries, the
 * weights of the plain export; a tokenizer of another size is refused */
static void test_variant_export_tokenizer_from(void **state)
{
    (void)state;
    char *exe = rtt_build(G_DENSE, "native");
    char src[512], out[512], plain[512], msg[256];
    rtt_path(src, sizeof src, "toksrc.gguf");
    rtt_path(out, sizeof out, "tokout.gguf");
    rtt_path(plain, sizeof plain, "tokplain.gguf");
    tok_source(src, 256);
    char *argv[] = {exe, "export", "--out", out, "--wtype", "q8_0", "--seed", "3", "--tokenizer-from", src, NULL};
    sh_proc_result r;
    rtt_run(argv, 60, &r);
    if (r.exit_code != 0) fail_msg("variant export --tokenizer-from: exit %d: %s", r.exit_code, r.err);
    sh_proc_result_free(&r);
    rtt_export(exe, plain, "q8_0", "3");
    tg_file f, p;
    if (tg_read(out, &f, msg, sizeof msg) != 0) fail_msg("%s", msg);
    if (tg_read(plain, &p, msg, sizeof msg) != 0) fail_msg("%s", msg);
    assert_string_equal(tg_kv_find(&f, "tokenizer.ggml.model")->str, "gpt2");
    assert_string_equal(tg_kv_find(&p, "tokenizer.ggml.model")->str, "no_vocab");
    assert_int_equal(tg_kv_find(&f, "tokenizer.ggml.tokens")->arr_len, 256);
    assert_int_equal(tg_kv_find(&f, "tokenizer.ggml.bos_token_id")->u, 1);
    int n_model = 0;
    for (uint64_t i = 0; i < f.n_kv; i++) n_model += !strcmp(f.kv[i].key, "tokenizer.ggml.model");
    assert_int_equal(n_model, 1);
    assert_int_equal(p.size - p.data_start, f.size - f.data_start);
    assert_memory_equal(p.data + p.data_start, f.data + f.data_start, f.size - f.data_start);
    tg_free(&f);
    tg_free(&p);
    tok_source(src, 257);
    rtt_run(argv, 60, &r);
    assert_int_equal(r.exit_code, 1);
    if (!strstr(r.err, "257 tokens, the genome's vocabulary is 256")) fail_msg("wrong vocabulary: %s", r.err);
    sh_proc_result_free(&r);
    free(exe);
}

/* `variant export` writes a file llama.cpp can load (every MoE layer has its
 * exp_probs_b.bias, zeros without a router bias) that loads back into the
 * variant with the same logits as the synthetic weights it came from. */
static void test_variant_export_roundtrip(void **state)
{
    (void)state;
    char *exe = rtt_build(G_MOE, "native");
    char gguf[512];
    rtt_path(gguf, sizeof gguf, "export_moe.gguf");
    rtt_export(exe, gguf, "q8_0", "4");
    tg_file f;
    char msg[256];
    if (tg_read(gguf, &f, msg, sizeof msg) != 0) fail_msg("exported GGUF unreadable: %s", msg);
    const tg_kv *arch = tg_kv_find(&f, "general.architecture");
    assert_non_null(arch);
    assert_string_equal(arch->str, "lfm2moe");
    /* G_MOE: layer 1 moe with bias, layer 2 moe without */
    for (int l = 1; l <= 2; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.exp_probs_b.bias", l);
        const tg_tensor *t = tg_tensor_find(&f, name);
        if (!t) fail_msg("export lacks %s", name);
        assert_int_equal(t->ne[0], 8);
        assert_int_equal(t->type, 0);   /* f32 */
        const float *v = (const float *)(const void *)(f.data + f.data_start + t->offset);
        int nonzero = 0;
        for (int e = 0; e < 8; e++) nonzero += v[e] != 0.0f;
        if (l == 1) assert_true(nonzero > 0);
        else assert_int_equal(nonzero, 0);
    }
    tg_free(&f);
    size_t na, nb;
    float *a = rtt_logits(exe, "exp_gguf.out", &na, "--gguf", gguf, (const char *)NULL);
    float *b = rtt_logits(exe, "exp_syn.out", &nb, "--wtype", "q8_0", "--seed", "4", (const char *)NULL);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof(float));
    free(a); free(b); free(exe);
}

/* the k-quant products are exact integer sums per super-block with the float
 * steps in one scalar order: every build (scalar, AVX-512/AVX2 native, NEON
 * with and without dotprod under qemu) gives the same bits */
static void test_kquant_paths_bit_identical(void **state)
{
    (void)state;
    if (access("/usr/bin/qemu-aarch64", X_OK) != 0) fail_msg("qemu-aarch64 missing (Debian package qemu-user)");
    char *nat = rtt_build(G_KQ, "native"), *sca = rtt_build(G_KQ, "scalar");
    char *arm = rtt_build(G_KQ, "aarch64-linux-gnu"), *arm8 = rtt_build(G_KQ, "aarch64-linux-gnu:armv8-a");
    char *hsw = rtt_build(G_KQ, "x86_64-linux-gnu:haswell");   /* AVX2 */
    const char *types[] = {"q4_k", "q5_k", "q6_k"};
    for (int t = 0; t < 3; t++) {
        size_t n0, n1, n2, n3, n4, n5;
        /* decode runs the direct kernels (packed bits), prefill unpacks rows once */
        float *h = rtt_logits(hsw, "kqh.out", &n5, "--seed", "9", "--wtype", types[t], "--mode", "decode",
                                  (const char *)NULL);
        size_t n6;
        float *hp = rtt_logits(hsw, "kqhp.out", &n6, "--seed", "9", "--wtype", types[t], (const char *)NULL);
        float *s = rtt_logits(sca, "kqs.out", &n0, "--seed", "9", "--wtype", types[t], (const char *)NULL);
        float *a = rtt_logits(nat, "kqn.out", &n1, "--seed", "9", "--wtype", types[t], (const char *)NULL);
        float *b = rtt_logits(nat, "kqd.out", &n2, "--seed", "9", "--wtype", types[t], "--mode", "decode",
                                  (const char *)NULL);
        float *c = rtt_arm_logits(arm, types[t], "prefill", &n3);
        size_t n7, n8;
        float *cd = rtt_arm_logits(arm, types[t], "decode", &n7);
        float *ep = rtt_arm_logits(arm8, types[t], "prefill", &n8);
        float *e = rtt_arm_logits(arm8, types[t], "decode", &n4);
        float *s9 = rtt_logits(sca, "kqs9.out", &n0, "--seed", "9", "--wtype", types[t], (const char *)NULL);
        assert_int_equal(n0, n1); assert_int_equal(n0, n2); assert_int_equal(n0, n3); assert_int_equal(n0, n4);
        assert_int_equal(n0, n5); assert_int_equal(n0, n6); assert_int_equal(n0, n7); assert_int_equal(n0, n8);
        if (memcmp(s, ep, n0 * 4)) fail_msg("%s: aarch64 neon prefill differs from scalar (%.3g)", types[t], rtt_rel_err(ep, s, n0));
        if (memcmp(s, cd, n0 * 4)) fail_msg("%s: aarch64 dotprod decode differs from scalar (%.3g)", types[t], rtt_rel_err(cd, s, n0));
        if (memcmp(s, hp, n0 * 4)) fail_msg("%s: AVX2 prefill differs from scalar (%.3g)", types[t], rtt_rel_err(hp, s, n0));
        if (memcmp(s, a, n0 * 4)) fail_msg("%s: native build differs from scalar (%.3g)", types[t], rtt_rel_err(a, s, n0));
        if (memcmp(s, h, n0 * 4)) fail_msg("%s: AVX2 build differs from scalar (%.3g)", types[t], rtt_rel_err(h, s, n0));
        if (memcmp(s, b, n0 * 4)) fail_msg("%s: native decode differs from scalar (%.3g)", types[t], rtt_rel_err(b, s, n0));
        if (memcmp(s, c, n0 * 4)) fail_msg("%s: aarch64 dotprod differs from scalar (%.3g)", types[t], rtt_rel_err(c, s, n0));
        if (memcmp(s9, e, n0 * 4)) fail_msg("%s: aarch64 neon decode differs from scalar (%.3g)", types[t], rtt_rel_err(e, s9, n0));
        print_message("# %s: scalar, native prefill/decode, AVX2 prefill/decode, aarch64 neon-dotprod prefill/decode, "
                      "neon prefill/decode: bit-identical\n", types[t]);
        free(ep); free(cd); free(hp); free(h); free(s); free(a); free(b); free(c); free(e); free(s9);
    }
    /* 23 tokens on 3 threads: the AVX-512 prefill runs 16-row blocks against
     * tiles of 8 tokens plus single-token tails, on row ranges that need not
     * be multiples of 16; every logit must equal the decode kernels' */
    const char *saved = rtt_tokens;
    rtt_tokens = "1,5,9,200,3,17,42,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22";
    const char *types4[] = {"q4_k", "q5_k", "q6_k", "q4_k_m"};
    for (int t = 0; t < 4; t++) {
        size_t np, nd;
        float *p = rtt_logits(nat, "kq23p.out", &np, "--seed", "9", "--wtype", types4[t], "--threads", "3",
                                  (const char *)NULL);
        float *d = rtt_logits(nat, "kq23d.out", &nd, "--seed", "9", "--wtype", types4[t], "--mode", "decode",
                                  (const char *)NULL);
        assert_int_equal(np, nd);
        if (memcmp(p, d, np * 4)) fail_msg("%s: 23-token native prefill differs from decode (%.3g)", types4[t],
                                           rtt_rel_err(p, d, np));
        free(p); free(d);
    }
    print_message("# q4_k, q5_k, q6_k, q4_k_m: 23-token native prefill (3 threads) = decode, bit for bit\n");
    rtt_tokens = saved;
    free(nat); free(sca); free(arm); free(arm8); free(hsw);
}

/* ---- malformed GGUF files ---------------------------------------------------------------- */

/* q4_0 weights are repacked at load on AVX-512 builds (rt_model_pack):
 * synthetic weights in their buffers, GGUF weights after being copied out of
 * the file mapping.  A GGUF file exported from the synthetic weights gives the same
 * bits as the synthetic weights in prefill and in decode (so packing a
 * mapped file and packing generated weights agree), the file on disk is not
 * modified, and on the packed layout decode and
 * prefill read the same kernels: identical logits.  G_WIDE has rows of 576
 * and 544 (one full group plus leftover blocks in the ggml layout). */
static void test_q4_repacked_weights(void **state)
{
    (void)state;
    char *exe = rtt_build(G_WIDE, "native");
    char gguf[512];
    rtt_path(gguf, sizeof gguf, "wide_q4.gguf");
    rtt_export(exe, gguf, "q4_0", "9");
    size_t n0, n1;
    unsigned char *before = rtt_slurp(gguf, &n0);
    size_t n[4];
    float *v[4];
    v[0] = rtt_logits(exe, "rp_syn_pre.out", &n[0], "--wtype", "q4_0", "--seed", "9", "--mode", "prefill", (const char *)NULL);
    v[1] = rtt_logits(exe, "rp_syn_dec.out", &n[1], "--wtype", "q4_0", "--seed", "9", "--mode", "decode", (const char *)NULL);
    v[2] = rtt_logits(exe, "rp_gguf_pre.out", &n[2], "--gguf", gguf, "--mode", "prefill", (const char *)NULL);
    v[3] = rtt_logits(exe, "rp_gguf_dec.out", &n[3], "--gguf", gguf, "--mode", "decode", (const char *)NULL);
    unsigned char *after = rtt_slurp(gguf, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    for (int i = 1; i < 4; i++) assert_int_equal(n[i], n[0]);
    assert_memory_equal(v[2], v[0], n[0] * sizeof(float));   /* GGUF = synthetic, prefill */
    assert_memory_equal(v[3], v[1], n[0] * sizeof(float));   /* GGUF = synthetic, decode */
    if (rtt_cpu_has("avx512f") && rtt_cpu_has("avx512bw") && rtt_cpu_has("avx512vl") && rtt_cpu_has("avx512_vnni")) {
        assert_memory_equal(v[1], v[0], n[0] * sizeof(float));
        print_message("# q4_0 repacked: decode and prefill bit-identical, GGUF file unchanged\n");
    } else {
        rtt_compare("q4_0 decode vs prefill", v[1], n[1], v[0], n[0], TOL_SAME_Q);   /* frees both */
        v[0] = v[1] = NULL;
        print_message("# no AVX-512 VNNI here: q4_0 weights stay in the ggml layout\n");
    }
    for (int i = 0; i < 4; i++) free(v[i]);
    free(before); free(after); free(exe);
}

#define RT_TYPE_Q4_K_FOR_TEST 12u
/* the message names the problem: `what` itself */
/* sets the ggml type of tensor `name` in a GGUF image (its tensor-info record) */
static void retype(unsigned char *c, size_t n, const char *name, uint32_t type)
{
    size_t len = strlen(name);
    for (size_t i = 8; i + len + 4 < n; i++) {
        uint64_t sl;
        memcpy(&sl, c + i - 8, 8);
        if (sl != len || memcmp(c + i, name, len)) continue;
        uint32_t nd;
        memcpy(&nd, c + i + len, 4);
        assert_true(nd >= 1 && nd <= 4);
        memcpy(c + i + len + 4 + 8 * (size_t)nd, &type, 4);
        return;
    }
    fail_msg("tensor %s not found in the GGUF image", name);
}

/* k-quant files: truncated data, unsupported neighbouring types, k-quant
 * types on rows that are not multiples of 256 or on norm vectors */
static void test_malformed_kquant_gguf_rejected(void **state)
{
    (void)state;
    char good[512], bad[512], dense[512], ref[512];
    rtt_path(good, sizeof good, "kq_good.gguf");
    rtt_path(bad, sizeof bad, "kq_bad.gguf");
    char *exe = rtt_build(G_KQ, "native");
    rtt_export(exe, good, "q5_k", "3");
    size_t n;
    unsigned char *b = rtt_slurp(good, &n), *c = malloc(n);
    assert_non_null(c);
    size_t cuts[] = {n / 3, n / 2, n - 4096, n - 177};   /* the file ends in < 32 bytes of padding */
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "q5_K file truncated at %zu of %zu", cuts[i], n);
        rtt_write_bytes(bad, b, cuts[i]);
        rtt_expect_rejected_msg(exe, bad, what, "past the end");
    }
    const uint32_t unsupported[] = {15 /* q8_K */, 10 /* q2_K */, 11 /* q3_K */, 16, 99, 0xffffffffu};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        memcpy(c, b, n);
        retype(c, n, "blk.1.ffn_down.weight", unsupported[i]);
        rtt_write_bytes(bad, c, n);
        rtt_expect_rejected_msg(exe, bad, "unsupported type", "ggml type");
    }
    memcpy(c, b, n);
    retype(c, n, "blk.0.attn_norm.weight", RT_TYPE_Q4_K_FOR_TEST);
    rtt_write_bytes(bad, c, n);
    rtt_expect_rejected_msg(exe, bad, "q4_K norm vector", "must be f32");
    /* a row of 64 elements cannot hold q4_K super-blocks */
    rtt_path(dense, sizeof dense, "kq_dense.gguf");
    rtt_path(ref, sizeof ref, "kq_dense.ref");
    rtt_reference(G_DENSE, 23, "f32", dense, ref, NULL);
    char *de = rtt_build(G_DENSE, "native");
    size_t nd;
    unsigned char *db = rtt_slurp(dense, &nd);
    retype(db, nd, "blk.0.ffn_gate.weight", RT_TYPE_Q4_K_FOR_TEST);
    rtt_write_bytes(bad, db, nd);
    rtt_expect_rejected_msg(de, bad, "q4_K row of 64", "not a multiple of 256");
    /* the good file still loads */
    size_t nv;
    float *v = rtt_logits(exe, "kq_good.out", &nv, "--gguf", good, (const char *)NULL);
    free(v);
    free(b); free(c); free(db); free(exe); free(de);
}

/* K-quant weights are repacked at load on AVX-512 builds into bands of 16
 * rows (rt_model_pack), rows past the last band staying in the ggml layout.
 * On G_KQ_ODD (312-row embedding and head) the repacked native build
 * must give the scalar build's bits for every K type, in prefill and in
 * decode (8 tokens), and decode's for 23 tokens of prefill on 3 threads (row
 * ranges that split bands); a
 * GGUF export loaded from the file (packed after the copy out of its mapping) must give
 * the synthetic weights' bits and leave the file unchanged; a truncated
 * q4_K file is still rejected with a clear message. */
static void test_kquant_repacked_odd_rows(void **state)
{
    (void)state;
    char *nat = rtt_build(G_KQ_ODD, "native"), *sca = rtt_build(G_KQ_ODD, "scalar");
    const char *types[] = {"q4_k", "q5_k", "q6_k", "q4_k_m"};
    const char *saved = rtt_tokens;
    for (int t = 0; t < 4; t++) {
        size_t n[6];
        rtt_tokens = RTT_TOKENS;
        float *s = rtt_logits(sca, "kqo_s.out", &n[0], "--seed", "4", "--wtype", types[t], (const char *)NULL);
        float *p = rtt_logits(nat, "kqo_p.out", &n[1], "--seed", "4", "--wtype", types[t], (const char *)NULL);
        float *d = rtt_logits(nat, "kqo_d.out", &n[2], "--seed", "4", "--wtype", types[t], "--mode", "decode",
                                  (const char *)NULL);
        char gguf[512];
        rtt_path(gguf, sizeof gguf, "kq_odd.gguf");
        rtt_export(nat, gguf, types[t], "4");
        size_t nb0, nb1;
        unsigned char *before = rtt_slurp(gguf, &nb0);
        float *gd = rtt_logits(nat, "kqo_gd.out", &n[3], "--gguf", gguf, "--mode", "decode", (const char *)NULL);
        unsigned char *after = rtt_slurp(gguf, &nb1);
        assert_int_equal(nb0, nb1);
        assert_memory_equal(before, after, nb0);
        rtt_tokens = "1,5,9,200,3,17,42,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22";
        /* (23 positions: the scalar build's f32 attention sums part ways in the
         * last bits from the SIMD builds' here, so decode is the reference) */
        float *s23 = rtt_logits(nat, "kqo_d23.out", &n[4], "--seed", "4", "--wtype", types[t], "--mode", "decode",
                                    (const char *)NULL);
        float *p23 = rtt_logits(nat, "kqo_p23.out", &n[5], "--seed", "4", "--wtype", types[t], "--threads", "3",
                                    (const char *)NULL);
        for (int i = 1; i < 4; i++) assert_int_equal(n[i], n[0]);
        assert_int_equal(n[5], n[4]);
        if (memcmp(s, p, n[0] * 4)) fail_msg("%s: native prefill differs from scalar (%.3g)", types[t], rtt_rel_err(p, s, n[0]));
        if (memcmp(s, d, n[0] * 4)) fail_msg("%s: native decode differs from scalar (%.3g)", types[t], rtt_rel_err(d, s, n[0]));
        if (memcmp(s, gd, n[0] * 4)) fail_msg("%s: GGUF decode differs from scalar (%.3g)", types[t], rtt_rel_err(gd, s, n[0]));
        if (memcmp(s23, p23, n[4] * 4))
            fail_msg("%s: 23-token 3-thread prefill differs from decode (%.3g)", types[t], rtt_rel_err(p23, s23, n[4]));
        if (t == 0) {   /* truncated inside the packed bands */
            char bad[512];
            rtt_path(bad, sizeof bad, "kq_odd_bad.gguf");
            size_t cuts[] = {nb0 / 2, nb0 - 3000};
            for (size_t i = 0; i < 2; i++) {
                char what[64];
                snprintf(what, sizeof what, "q4_K file truncated at %zu of %zu", cuts[i], nb0);
                rtt_write_bytes(bad, before, cuts[i]);
                rtt_expect_rejected_msg(nat, bad, what, "past the end");
            }
            unlink(bad);
        }
        unlink(gguf);
        free(s); free(p); free(d); free(gd); free(s23); free(p23); free(before); free(after);
    }
    rtt_tokens = saved;
    print_message("# q4_k, q5_k, q6_k, q4_k_m with rows not multiples of 16: native (repacked bands where AVX-512) "
                  "prefill, decode, GGUF decode = scalar; 23-token 3-thread prefill = decode; bit for bit\n");
    free(nat); free(sca);
}

static void test_malformed_gguf_rejected(void **state)
{
    (void)state;
    char good[512], ref[512], bad[512];
    rtt_path(good, sizeof good, "good.gguf");
    rtt_path(ref, sizeof ref, "good.ref");
    rtt_path(bad, sizeof bad, "bad.gguf");
    rtt_reference(G_DENSE, 21, "f32", good, ref, NULL);
    char *exe = rtt_build(G_DENSE, "native");
    size_t n;
    unsigned char *b = rtt_slurp(good, &n);
    unsigned char *c = malloc(n);
    assert_non_null(c);
    /* bad magic, bad version */
    memcpy(c, b, n); memcpy(c, "GGUX", 4);
    rtt_write_bytes(bad, c, n); rtt_expect_rejected(exe, bad, "bad magic");
    memcpy(c, b, n); c[4] = 99;
    rtt_write_bytes(bad, c, n); rtt_expect_rejected(exe, bad, "bad version");
    /* absurd tensor and key counts */
    memcpy(c, b, n); memset(c + 8, 0xff, 7);
    rtt_write_bytes(bad, c, n); rtt_expect_rejected(exe, bad, "absurd tensor count");
    memcpy(c, b, n); memset(c + 16, 0x7f, 8);
    rtt_write_bytes(bad, c, n); rtt_expect_rejected(exe, bad, "absurd kv count");
    /* a file cut to 100 bytes: its counts are plausible, the file is short */
    rtt_write_bytes(bad, b, 100); rtt_expect_rejected_saying(exe, bad, "truncated file: 100 bytes");
    /* a string length running past the end (first key's length) */
    memcpy(c, b, n); memset(c + 24, 0xee, 8);
    rtt_write_bytes(bad, c, n); rtt_expect_rejected(exe, bad, "huge string length");
    /* truncated at several points: header, metadata, tensor infos, data */
    size_t cuts[] = {0, 3, 12, 23, 40, 200, n / 4, n / 2, n - 4096, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        if (cuts[i] >= n) continue;
        char what[64];
        snprintf(what, sizeof what, "truncated at %zu of %zu", cuts[i], n);
        rtt_write_bytes(bad, b, cuts[i]);
        rtt_expect_rejected(exe, bad, what);
    }
    /* tensors with other shapes than the genome's */
    rtt_reference(G_DENSE_WIDER, 22, "f32", bad, ref, NULL);
    rtt_expect_rejected(exe, bad, "mismatched shapes");
    /* a missing file */
    rtt_expect_rejected(exe, "/nonexistent/model.gguf", "missing file");
    /* and the good file still loads */
    size_t nv;
    float *v = rtt_logits(exe, "good.out", &nv, "--gguf", good, (const char *)NULL);
    free(v);
    free(b); free(c); free(exe);
}

/* ---- qwen3 and llama files (llama.cpp's names and RoPE conventions) ---------------------------- */

/* the fixtures' qwen3- and llama-shaped genomes (tests/fixtures/llamacpp/make_fixtures.sh) */
static const char *G_QWEN3 =
    "d=256 v=512 hd=64 theta=1000000 eps=1e-06 ctx=512 tie=1 | gqa(4,2,qk)/swiglu(768)*3";
static const char *G_LLAMA =
    "d=256 v=512 hd=64 theta=500000 eps=1e-05 ctx=512 tie=1 rope=llama3(32,1,4,8192) | gqa(4,2)/swiglu(768)*3";

/* renames tensor (or key) `from` to `to` (same length) in a GGUF image */
static void rename_tensor(unsigned char *c, size_t n, const char *from, const char *to)
{
    size_t len = strlen(from);
    assert_int_equal(strlen(to), len);
    for (size_t i = 8; i + len < n; i++) {
        uint64_t sl;
        memcpy(&sl, c + i - 8, 8);
        if (sl == len && !memcmp(c + i, from, len)) { memcpy(c + i, to, len); return; }
    }
    fail_msg("tensor %s not found in the GGUF image", from);
}

/* A llama file stores q/k rows in llama.cpp's pair order and the runtime
 * turns pairs for it: the file gives the synthetic weights' logits.  Files
 * and genomes that disagree (QK-norm, rope_freqs.weight values, biases, a
 * file cut in its RoPE factors) are refused naming the place, by the variant
 * and by genome import. */
static void test_qwen3_llama_gguf(void **state)
{
    (void)state;
    char *eq = rtt_build(G_QWEN3, "native"), *el = rtt_build(G_LLAMA, "native");
    char q[512], l[512], bad[512];
    rtt_path(q, sizeof q, "qwen3.gguf");
    rtt_path(l, sizeof l, "llama.gguf");
    rtt_path(bad, sizeof bad, "llama_bad.gguf");
    rtt_export(eq, q, "q8_0", "3");
    rtt_export(el, l, "q8_0", "3");
    size_t na, nb;
    float *a = rtt_logits(el, "ll_syn.out", &na, "--wtype", "q8_0", "--seed", "3", (const char *)NULL);
    float *b = rtt_logits(el, "ll_file.out", &nb, "--gguf", l, (const char *)NULL);
    rtt_compare("llama file (pair order, pairwise RoPE) vs synthetic", b, nb, a, na, TOL_SAME_MATH);
    a = rtt_logits(eq, "q3_syn.out", &na, "--wtype", "q8_0", "--seed", "3", (const char *)NULL);
    b = rtt_logits(eq, "q3_file.out", &nb, "--gguf", q, (const char *)NULL);
    rtt_compare("qwen3 file vs synthetic", b, nb, a, na, TOL_SAME_MATH);
    rtt_expect_rejected_msg(eq, l, "llama file into a QK-norm genome", "llama files have none");
    rtt_expect_rejected_msg(el, q, "qwen3 file into a genome without QK-norm", "qwen3 files have it on every layer");
    /* the llama file's RoPE divisors: one changed, then the file cut inside them */
    sh_gguf_meta meta;
    sh_err err = {{0}};
    if (sh_gguf_meta_read(l, &meta, &err)) fail_msg("%s", err.msg);
    uint64_t rf_at = 0;
    for (uint64_t i = 0; i < meta.n_tensors; i++)
        if (!strcmp(meta.t[i].name, "rope_freqs.weight")) rf_at = meta.data_off + meta.t[i].off;
    sh_gguf_meta_free(&meta);
    assert_true(rf_at > 0);
    size_t n;
    unsigned char *img = rtt_slurp(l, &n);
    assert_true(rf_at + 128 <= n);
    float v;
    memcpy(&v, img + rf_at + 4 * 20, 4);
    v /= 1.5f;   /* 32 -> 21.3: below the largest divisor, which import takes as the factor */
    memcpy(img + rf_at + 4 * 20, &v, 4);
    rtt_write_bytes(bad, img, n);
    rtt_expect_rejected_msg(el, bad, "changed RoPE divisor", "rope_freqs.weight[20]");
    sh_genome g;
    assert_int_equal(sh_gguf_import_genome_file(bad, &g, &err), -1);
    if (!strstr(err.msg, "rope_freqs.weight[20]")) fail_msg("import of a changed divisor: %s", err.msg);
    free(img);
    img = rtt_slurp(l, &n);
    rtt_write_bytes(bad, img, (size_t)rf_at + 40);
    rtt_expect_rejected_msg(el, bad, "file cut in rope_freqs.weight", "past the end");
    memset(&err, 0, sizeof err);
    assert_int_equal(sh_gguf_import_genome_file(bad, &g, &err), -1);
    if (!strstr(err.msg, "rope_freqs.weight")) fail_msg("import of a file cut in its RoPE divisors: %s", err.msg);
    /* a bias tensor (the names have equal lengths) */
    rename_tensor(img, n, "blk.0.attn_q.weight", "blk.0.ffn_down.bias");
    rtt_write_bytes(bad, img, n);
    rtt_expect_rejected_msg(el, bad, "bias tensor", "biases are not part of a genome");
    free(img);
    /* as llama.cpp's converter writes it: no rope.scaling.* key at all (the
     * original context is then its 8192, which G_LLAMA has) */
    img = rtt_slurp(l, &n);
    rename_tensor(img, n, "llama.rope.scaling.original_context_length", "llama.rope.scaling.original_context_lengtX");
    rtt_write_bytes(bad, img, n);
    free(img);
    memset(&err, 0, sizeof err);
    if (sh_gguf_import_genome_file(bad, &g, &err)) fail_msg("import without rope.scaling keys: %s", err.msg);
    {
        sh_genome want;
        rtt_parse_genome(G_LLAMA, &want);
        assert_true(sh_genome_equal(&g, &want));
    }
    /* and genome import gives back both genomes */
    const char *files[2] = {q, l}, *texts[2] = {G_QWEN3, G_LLAMA};
    for (int i = 0; i < 2; i++) {
        sh_genome want;
        rtt_parse_genome(texts[i], &want);
        memset(&err, 0, sizeof err);
        if (sh_gguf_import_genome_file(files[i], &g, &err)) fail_msg("import %s: %s", files[i], err.msg);
        assert_true(sh_genome_equal(&g, &want));
    }
    free(eq); free(el);
}

/* ---- bench JSON ----------------------------------------------------------------------------- */

static double num(json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, ".")) cur = json_object_get(cur, tok);
    if (!json_is_number(cur)) fail_msg("bench JSON: %s missing or not a number", path);
    return json_number_value(cur);
}

static const char *str(json_t *o, const char *a, const char *b)
{
    json_t *cur = json_object_get(o, a);
    if (b) cur = json_object_get(cur, b);
    if (!json_is_string(cur)) fail_msg("bench JSON: %s%s%s missing or not a string", a, b ? "." : "", b ? b : "");
    return json_string_value(cur);
}

/* `starhil measure FILE.gguf`: the genome is derived from the file, its
 * variant built (a device of target native: the cached G_DENSE build), the
 * file pushed and benched as stored; the stored settings name the file */
static void test_measure_gguf_file(void **state)
{
    (void)state;
    free(rtt_build(G_DENSE, "native"));   /* the variant the derived genome must hit */
    char gguf[512], db[512], trunc[512];
    rtt_path(gguf, sizeof gguf, "measure_dense.gguf");
    rtt_path(db, sizeof db, "measure_gguf.db");
    rtt_path(trunc, sizeof trunc, "measure_trunc.gguf");
    sh_proc_result r;
    char *ex[] = {rtt_tool, "export", (char *)G_DENSE, "--format", "gguf", "-o", gguf, "--json", NULL};
    rtt_run(ex, 120, &r);
    if (r.exit_code != 0) fail_msg("export: exit %d: %s", r.exit_code, r.err);
    sh_proc_result_free(&r);
    struct stat st;
    assert_int_equal(stat(gguf, &st), 0);
    char *add[] = {rtt_tool, "--db", db, "device", "add", "nat", "--kind", "local", "--target", "native", NULL};
    rtt_run(add, 30, &r);
    if (r.exit_code != 0) fail_msg("device add: exit %d: %s", r.exit_code, r.err);
    sh_proc_result_free(&r);
    char *ms[] = {rtt_tool, "--db", db, "measure", gguf, "--device", "nat", "--prompt=8", "--gen=4", "--max-reps=2",
                  "--settle-rounds=0", "--json", NULL};
    rtt_run(ms, 300, &r);
    if (r.exit_code != 0) fail_msg("measure FILE.gguf: exit %d: %s", r.exit_code, r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    sh_proc_result_free(&r);
    sh_genome g;
    rtt_parse_genome(G_DENSE, &g);
    char hex[17];
    sh_hash_hex(sh_genome_hash(&g), hex);
    assert_string_equal(json_string_value(json_object_get(j, "genome_hash")), hex);
    json_t *set = json_object_get(j, "settings"), *gg = json_object_get(set, "gguf");
    assert_string_equal(json_string_value(json_object_get(set, "wtype")), "gguf");
    assert_string_equal(json_string_value(json_object_get(gg, "file")), "measure_dense.gguf");
    assert_int_equal(json_integer_value(json_object_get(gg, "bytes")), (json_int_t)st.st_size);
    assert_int_equal(strlen(json_string_value(json_object_get(gg, "fnv1a64"))), 16);
    /* the file's f32 weights were benched, not synthetic q4_0 ones (~1/7 of that) */
    double wb = json_number_value(json_object_get(j, "weight_bytes"));
    print_message("# measure FILE.gguf: %.0f weight bytes of a %lld-byte file\n", wb, (long long)st.st_size);
    assert_true(wb > 0.9 * (double)st.st_size && wb <= (double)st.st_size);
    /* by default each repetition warmed decode up after its prefill (auto:
     * two groups of 4 tokens at least), and the settings say so */
    assert_string_equal(json_string_value(json_object_get(set, "decode_warmup")), "auto");
    double dw = json_number_value(json_object_get(j, "decode_warmup_tokens"));
    if (!(dw >= 8 && dw <= 48)) fail_msg("decode_warmup_tokens %g (want 8..48)", dw);
    json_decref(j);
    /* --wtype does not apply; a file cut short is refused, naming the problem */
    char *wt[] = {rtt_tool, "--db", db, "measure", gguf, "--device", "nat", "--wtype", "q8_0", NULL};
    rtt_run(wt, 30, &r);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "--wtype does not apply"));
    sh_proc_result_free(&r);
    char *cut[] = {"/usr/bin/truncate", "-s", "400000", trunc, NULL};
    char *cp[] = {"/bin/cp", gguf, trunc, NULL};
    rtt_run(cp, 30, &r);
    sh_proc_result_free(&r);
    rtt_run(cut, 30, &r);
    sh_proc_result_free(&r);
    char *mt[] = {rtt_tool, "--db", db, "measure", trunc, "--device", "nat", "--prompt=8", "--gen=4",
                  "--retries=0", "--settle-rounds=0", NULL};
    rtt_run(mt, 120, &r);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "runs past the end of the file"));
    sh_proc_result_free(&r);
}

static void test_bench_json(void **state)
{
    (void)state;
    char *exe = rtt_build(G_MOE, "native");
    const int gen = 4, reps = 2;
    char *argv[] = {exe, "bench", "--prompt", "16", "--gen", "4", "--reps", "2", "--warmup", "0",
                    "--threads", "2", "--wtype", "f32", "--seed", "3", NULL};
    sh_proc_result r;
    rtt_run(argv, 300, &r);
    if (r.exit_code != 0) fail_msg("bench: exit %d: %s", r.exit_code, r.err);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    if (!j) fail_msg("bench output is not one JSON object: %s", je.text);
    sh_genome g;
    rtt_parse_genome(G_MOE, &g);
    char hex[17];
    sh_hash_hex(sh_genome_hash(&g), hex);
    assert_string_equal(str(j, "mode", NULL), "bench");
    assert_string_equal(str(j, "genome_hash", NULL), hex);
    /* the variant reports its real triple (x86_64-linux-gnu for a native build here) */
    assert_non_null(strstr(str(j, "build", "target"), "-linux-"));
    const char *simd = str(j, "build", "simd");
    assert_true(strstr("avx512 avx2 neon-dotprod neon scalar", simd) != NULL);
    str(j, "build", "cc"); str(j, "build", "flags");
    str(j, "cpu", "model"); str(j, "cpu", "cpus_used");
    assert_true(num(j, "cpu.n_cpus") >= 1);
    assert_int_equal((int)num(j, "settings.prompt"), 16);
    assert_int_equal((int)num(j, "settings.gen"), gen);
    assert_int_equal((int)num(j, "settings.depth"), 0);
    assert_int_equal((int)num(j, "settings.threads"), 2);
    assert_int_equal((int)num(j, "settings.reps"), reps);
    assert_int_equal((int)num(j, "settings.warmup"), 0);
    assert_int_equal((int)num(j, "settings.seed"), 3);
    assert_string_equal(str(j, "settings", "wtype"), "f32");
    assert_string_equal(str(j, "settings", "kvtype"), "f32");
    assert_true(num(j, "prefill_tok_s") > 0 && num(j, "decode_tok_s") > 0 && num(j, "ttft_ms") > 0);
    json_t *pm = json_object_get(j, "prefill_ms");
    assert_true(json_is_array(pm) && (int)json_array_size(pm) == reps);
    for (size_t i = 0; i < json_array_size(pm); i++) assert_true(json_number_value(json_array_get(pm, i)) > 0);
    double med = num(j, "decode_ms.median"), p90 = num(j, "decode_ms.p90");
    assert_true(med > 0 && p90 >= med);
    json_t *samples = json_object_get(json_object_get(j, "decode_ms"), "samples");
    assert_true(json_is_array(samples));
    assert_int_equal((int)json_array_size(samples), gen * reps);
    /* the rates agree with the raw times (whatever average they use) */
    double lo = 1e30, hi = 0;
    for (size_t i = 0; i < json_array_size(samples); i++) {
        double v = json_number_value(json_array_get(samples, i));
        assert_true(v > 0);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    double dec = num(j, "decode_tok_s");
    if (!(dec >= 1000.0 / hi * 0.999 && dec <= 1000.0 / lo * 1.001))
        fail_msg("decode_tok_s %g outside the range of its samples (%g..%g ms)", dec, lo, hi);
    lo = 1e30; hi = 0;
    for (size_t i = 0; i < json_array_size(pm); i++) {
        double v = json_number_value(json_array_get(pm, i));
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    double pre = num(j, "prefill_tok_s");
    if (!(pre >= 16 * 1000.0 / hi * 0.999 && pre <= 16 * 1000.0 / lo * 1.001))
        fail_msg("prefill_tok_s %g outside the range of prefill_ms (%g..%g ms)", pre, lo, hi);
    assert_true(num(j, "peak_rss_bytes") > num(j, "weight_bytes"));
    double wb = num(j, "weight_bytes"), want = (double)sh_genome_weight_bytes(&g, SH_DTYPE_F32);
    if (fabs(wb - want) / want > 0.02) fail_msg("weight_bytes %.0f, genome analytics say %.0f", wb, want);
    assert_true(num(j, "kv_bytes") > 0);
    assert_true(num(j, "conv_state_bytes") >= (double)sh_genome_conv_state_bytes(&g));
    const char *phases[] = {"prefill", "decode"}, *kinds[] = {"conv", "attention", "swiglu", "moe", "head"};
    for (int p = 0; p < 2; p++) {
        double sum = 0;
        for (int k = 0; k < 5; k++) {
            char path[64];
            snprintf(path, sizeof path, "share.%s.%s", phases[p], kinds[k]);
            double v = num(j, path);
            if (!(v > 0 && v <= 1)) fail_msg("%s = %g (every block kind runs in this genome)", path, v);
            sum += v;
        }
        if (fabs(sum - 1) > 0.05) fail_msg("share.%s sums to %g", phases[p], sum);
    }
    /* the board around each repetition, steal time included (this host's
     * /proc/stat has the steal column: known, never negative) */
    json_t *st = json_object_get(j, "state");
    assert_true(json_is_array(st) && (int)json_array_size(st) == reps);
    for (size_t i = 0; i < json_array_size(st); i++) {
        json_t *e = json_array_get(st, i), *sv = json_object_get(e, "steal");
        if (!json_is_number(sv) || json_number_value(sv) < 0) fail_msg("state[%zu].steal missing or unknown", i);
        assert_true(json_number_value(json_object_get(e, "wall_s")) > 0);
    }
    /* no decode warm-up unless asked for: every repetition says so */
    assert_int_equal((int)num(j, "settings.decode_warmup"), 0);
    json_t *wt = json_object_get(j, "decode_warmup_tokens");
    assert_true(json_is_array(wt) && (int)json_array_size(wt) == reps);
    for (size_t i = 0; i < json_array_size(wt); i++) assert_int_equal(json_integer_value(json_array_get(wt, i)), 0);
    json_decref(j);
    sh_proc_result_free(&r);
    free(exe);
}

/* bench --decode-warmup: N unmeasured decode tokens after each prefill, or
 * auto: groups of 4 until the token time stops falling (at least two groups
 * to tell, at most 48, never past the genome's context of 512); the measured
 * samples stay gen per repetition; a bad value is a usage error. */
static void test_bench_decode_warmup(void **state)
{
    (void)state;
    char *exe = rtt_build(G_MOE, "native");
    struct { const char *warm, *prompt; int lo, hi; } cases[] = {
        {"5", "16", 5, 5}, {"auto", "16", 8, 48},
        {"auto", "494", 8, 12},    /* 512 - 494 - 4 gen = 14 tokens of room: 3 groups at most */
        {"auto", "506", 0, 0},     /* 2 tokens of room: none */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *argv[] = {exe, "bench", "--prompt", (char *)cases[c].prompt, "--gen", "4", "--reps", "3",
                        "--warmup", "0", "--threads", "1", "--wtype", "f32", "--decode-warmup",
                        (char *)cases[c].warm, NULL};
        sh_proc_result r;
        rtt_run(argv, 300, &r);
        if (r.exit_code != 0) fail_msg("bench --decode-warmup %s: exit %d: %s", cases[c].warm, r.exit_code, r.err);
        json_t *j = json_loads(r.out, 0, NULL);
        assert_non_null(j);
        json_t *sw = json_object_get(json_object_get(j, "settings"), "decode_warmup");
        if (!strcmp(cases[c].warm, "auto")) assert_string_equal(json_string_value(sw), "auto");
        else assert_int_equal(json_integer_value(sw), atoi(cases[c].warm));
        json_t *wt = json_object_get(j, "decode_warmup_tokens");
        assert_true(json_is_array(wt) && json_array_size(wt) == 3);
        for (size_t i = 0; i < 3; i++) {
            int w = (int)json_integer_value(json_array_get(wt, i));
            if (w < cases[c].lo || w > cases[c].hi)
                fail_msg("--decode-warmup %s, prompt %s: repetition %zu warmed %d tokens (want %d..%d)",
                         cases[c].warm, cases[c].prompt, i, w, cases[c].lo, cases[c].hi);
            if (!strcmp(cases[c].warm, "auto")) assert_int_equal(w % 4, 0);
        }
        assert_int_equal((int)json_array_size(json_object_get(json_object_get(j, "decode_ms"), "samples")), 3 * 4);
        json_decref(j);
        sh_proc_result_free(&r);
    }
    char *bad[] = {exe, "bench", "--decode-warmup", "soon", NULL};
    sh_proc_result r;
    rtt_run(bad, 60, &r);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "--decode-warmup: bad value 'soon'"));
    sh_proc_result_free(&r);
    free(exe);
}

/* Peak RSS stays within weights + KV cache + conv state + the stated fixed
 * overhead (RT_RSS_OVERHEAD, README: under 40 MiB), with synthetic weights
 * and with the same weights mmapped from a GGUF; and it is at least the
 * weights (they are really resident, not lazily skipped). */
#define RT_RSS_OVERHEAD (40.0 * 1024 * 1024)
static void test_peak_rss_bound(void **state)
{
    (void)state;
    const char *text = "d=1024 v=16384 hd=64 theta=1000000 eps=1e-05 ctx=4096 tie=1 | "
                       "conv(3)/swiglu(4608)*2 gqa(16,8,qk)/swiglu(4608)";
    char *exe = rtt_build(text, "native");
    char gguf[512];
    rtt_path(gguf, sizeof gguf, "rss.gguf");
    char *ex[] = {exe, "export", "--out", gguf, "--wtype", "q8_0", NULL};
    sh_proc_result r;
    rtt_run(ex, 120, &r);
    assert_int_equal(r.exit_code, 0);
    sh_proc_result_free(&r);
    /* The file's pages leave the page cache, so the variant reads it from
     * disk as a user's download is read: the page cache may then hold it in
     * large folios, and a read fault maps a whole one (2 MiB) */
    int fd = open(gguf, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(fdatasync(fd), 0);
    assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
    double huge[2] = {-1, -1}, peak[2] = {0, 0};
    for (int src = 0; src < 2; src++) {
        char *argv[] = {exe, "bench", "--prompt", "256", "--gen", "8", "--reps", "1", "--warmup", "0",
                        "--threads", "2", src ? "--gguf" : "--wtype", src ? gguf : "q8_0", NULL};
        rtt_run(argv, 300, &r);
        if (r.exit_code != 0) fail_msg("bench: exit %d: %s", r.exit_code, r.err);
        json_t *j = json_loads(r.out, 0, NULL);
        assert_non_null(j);
        double rss = num(j, "peak_rss_bytes"), wb = num(j, "weight_bytes");
        double budget = wb + num(j, "kv_bytes") + num(j, "conv_state_bytes") + RT_RSS_OVERHEAD;
        print_message("# peak RSS (%s): %.1f MiB, weights %.1f MiB, bound %.1f MiB\n", src ? "gguf" : "synthetic",
                      rss / 1048576, wb / 1048576, budget / 1048576);
        assert_true(wb > 50e6);
        if (!(rss >= wb && rss <= budget))
            fail_msg("peak RSS %.0f outside [weights %.0f, budget %.0f]", rss, wb, budget);
        if (json_object_get(j, "huge_page_bytes")) huge[src] = num(j, "huge_page_bytes");
        peak[src] = rss;
        json_decref(j);
        sh_proc_result_free(&r);
    }
    /* The GGUF file's weights, repacked for the kernels, leave the file
     * mapping for huge-page buffers as the synthetic ones are born in (4 KiB
     * copy-on-write pages decode about 5% slower).  Where the kernel gave
     * the synthetic model huge pages, it gives the file's weights as many. */
    print_message("# on huge pages: synthetic %.1f MiB, gguf %.1f MiB\n", huge[0] / 1048576, huge[1] / 1048576);
#if defined(__linux__)
    assert_true(huge[0] >= 0 && huge[1] >= 0);   /* smaps_rollup is read on Linux */
#endif
    if (huge[0] > 0 && !(huge[1] >= 0.8 * huge[0]))
        fail_msg("GGUF weights on huge pages: %.0f bytes, the synthetic model had %.0f", huge[1], huge[0]);
    /* and the file costs no more resident memory than the same weights
     * generated (2 MiB of slack): nothing of it stays mapped.  A load slice
     * (16 MiB) is resident only while the weights are copied; the peak
     * comes later, in prefill.  With the small tensors left in the mapping
     * the GGUF peak was 4 MiB higher here (64 MiB for LFM2-1.2B). */
    if (!(peak[1] <= peak[0] + 2.0 * 1048576))
        fail_msg("peak RSS from the GGUF file %.1f MiB, from synthetic weights %.1f MiB", peak[1] / 1048576,
                 peak[0] / 1048576);
    free(exe);
}

static int group_setup(void **state)
{
    (void)state;
    return rtt_setup("sh_test_runtime");
}

static int group_teardown(void **state)
{
    (void)state;
    return rtt_teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_compiles_and_matches_genome),
        cmocka_unit_test(test_cache_hit_runs_no_compiler),
        cmocka_unit_test(test_concurrent_builders_compile_once),
        cmocka_unit_test(test_genome_free_objects_shared),
        cmocka_unit_test(test_compiler_error_surfaces),
        cmocka_unit_test(test_missing_compiler_and_bad_target),
        cmocka_unit_test(test_build_cli),
        cmocka_unit_test(test_scalar_matches_simd),
        cmocka_unit_test(test_decode_matches_prefill),
        cmocka_unit_test(test_kv_f16_matches_f32),
        cmocka_unit_test(test_aarch64_matches_x86),
        cmocka_unit_test(test_numerics_bit_identical),
        cmocka_unit_test(test_q4_repacked_weights),
        cmocka_unit_test(test_variant_export_roundtrip),
        cmocka_unit_test(test_qwen3_llama_gguf),
        cmocka_unit_test(test_kquant_paths_bit_identical),
        cmocka_unit_test(test_variant_export_tokenizer_from),
        cmocka_unit_test(test_malformed_gguf_rejected),
        cmocka_unit_test(test_malformed_kquant_gguf_rejected),
        cmocka_unit_test(test_kquant_repacked_odd_rows),
        cmocka_unit_test(test_bench_json),
        cmocka_unit_test(test_bench_decode_warmup),
        cmocka_unit_test(test_measure_gguf_file),
        cmocka_unit_test(test_peak_rss_bound),
    };
    /* RT_TEST_FILTER=PATTERN (cmocka wildcards) runs a subset while developing */
    if (getenv("RT_TEST_FILTER")) cmocka_set_test_filter(getenv("RT_TEST_FILTER"));
    if (getenv("SH_TEST_FILTER")) cmocka_set_test_filter(getenv("SH_TEST_FILTER"));   /* as in the other test files */
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
