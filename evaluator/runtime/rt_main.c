/* rt_main.c - command line of the variant executable (docs/interfaces.md):
 *   variant bench  [--prompt N=512] [--gen N=128] [--depth N=0] [--threads N]
 *                  [--reps N=5] [--warmup N=1] [--cpus LIST] [--wtype T=q8_0]
 *                  [--kvtype f32|f16|f16-f32q|f16-fa] [--seed S=1] [--gguf FILE]
 *                  [--decode-warmup N|auto]
 *   variant logits --tokens 1,2,3 [--wtype T] [--seed S] [--gguf FILE]
 *                  [--mode prefill|decode] [--out FILE] [--all] [--threads N] [--cpus LIST]
 *                  [--kvtype f32|f16|f16-f32q|f16-fa] [--dump-act FILE]
 *   variant export --out FILE [--wtype T] [--seed S] [--tokenizer-from FILE.gguf]
 *                  (synthetic weights as GGUF; tokenizer copied from FILE.gguf, else no_vocab)
 *   variant probe
 *   variant info
 * Every mode prints one JSON object on stdout; errors go to stderr with exit
 * code 1 (bad input) or 2 (usage). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "rt.h"
#include "rt_synth.h"

int rt_probe_main(void);   /* rt_probe.c */
void rt_json_str(FILE *f, const char *s);

/* --decode-warmup auto: unmeasured decode tokens after each prefill, in groups
 * of DW_GROUP, until a group's median token time is no more than DW_SETTLED
 * below the group before it (the post-prefill slowdown has ended), at most
 * DW_AUTO_MAX tokens (fewer if the genome's context has no room).  Why: right
 * after a prefill, decode ran up to 2.3x slower for its first 10-20 tokens on
 * a Xeon VM (f32 weights about the size of its L3; 2-3 tokens for q4_0), so a
 * repetition of 16 tokens measured mostly that transient, whose length varied
 * from process to process: per-repetition medians scattered +-30% on an idle
 * host (docs/devices.md, "Decode right after a prefill").  llama-bench's tg
 * test measures decode without a prefill before it, in steady state. */
#define DECODE_WARMUP_AUTO (-1)
#define DW_GROUP 4
#define DW_SETTLED 0.05
#define DW_AUTO_MAX 48

typedef struct opts {
    long prompt, gen, depth, threads, reps, warmup;
    long decode_warmup;   /* unmeasured decode tokens after each prefill; DECODE_WARMUP_AUTO: until settled */
    const char *cpus, *gguf, *tokens, *mode, *out, *dump_act, *tok_from;
    int wtype, kv_f16, all;
    uint64_t seed;
} opts;

static int usage(const char *msg)
{
    FILE *out = msg ? stderr : stdout;   /* --help goes to stdout */
    if (msg) fprintf(stderr, "variant: %s\n", msg);
    fprintf(out,
            "usage: variant bench  [--prompt N=512] [--gen N=128] [--depth N=0] [--threads N]\n"
            "                      [--reps N=5] [--warmup N=1] [--cpus LIST] [--wtype f32|f16|q8_0|q4_0|q4_k|q5_k|q6_k|q4_k_m|q5_k_m]\n"
            "                      [--kvtype f32|f16|f16-f32q|f16-fa] [--seed S=1] [--gguf FILE]\n"
            "                      [--decode-warmup N|auto]\n"
            "       variant logits --tokens 1,2,3 [--wtype T] [--seed S] [--gguf FILE]\n"
            "                      [--mode prefill|decode] [--out FILE] [--all] [--threads N] [--cpus LIST]\n"
            "                      [--kvtype f32|f16|f16-f32q|f16-fa] [--dump-act FILE]\n"
            "       variant export --out FILE [--wtype T] [--seed S] [--tokenizer-from FILE.gguf]\n"
            "  --tokenizer-from copies that file's tokenizer.* metadata byte for byte (its\n"
            "  token count must equal the vocabulary); without it the file has no tokenizer\n"
            "  (no_vocab: for benchmarking only, llama-cli cannot tokenize text with it).\n"
            "  --dump-act FILE writes every f32 activation row rounded to q8_0 blocks\n"
            "  (int32 T, int32 K, T x K f32 per product input) for parity tests.\n"
            "  --kvtype f16 keeps K and V in f16 and, as llama.cpp's CPU path does without\n"
            "  flash attention (-fa off), rounds the query and the softmax weights to f16\n"
            "  too; f16-f32q keeps those in f32; f16-fa follows llama.cpp's CPU flash\n"
            "  attention (its default): online softmax, values accumulated in f16 (slower).\n"
            "  --decode-warmup N decodes N tokens after each prefill before the measured\n"
            "  ones (auto: until the token time stops falling, at most %d; default 0):\n"
            "  decode right after a prefill can run slower for a few tokens.\n"
            "       variant probe | info\n", DW_AUTO_MAX);
    return 2;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->prompt = 512; o->gen = 128; o->reps = 5; o->warmup = 1; o->seed = 1;
    o->wtype = RT_Q8_0; o->mode = "prefill";   /* by hand only: genome/genome.h, SH_WTYPE_* */
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--all")) { o->all = 1; continue; }
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) return usage(NULL) - 3; /* -1: help */
        if (i + 1 >= argc) { fprintf(stderr, "variant: option %s needs a value\n", k); return 2; }
        const char *v = argv[++i];
        long n;
#define NUM(name, lo, hi, dst) \
        if (!strcmp(k, name)) { \
            if (parse_long(v, lo, hi, &n)) { fprintf(stderr, "variant: %s: bad value '%s' (%ld..%ld)\n", name, v, (long)(lo), (long)(hi)); return 2; } \
            dst = n; continue; }
        NUM("--prompt", 0, 1 << 20, o->prompt)
        NUM("--gen", 0, 1 << 20, o->gen)
        NUM("--depth", 0, 1 << 22, o->depth)
        NUM("--threads", 1, 1024, o->threads)
        NUM("--reps", 1, 100000, o->reps)
        NUM("--warmup", 0, 100000, o->warmup)
#undef NUM
        if (!strcmp(k, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end) { fprintf(stderr, "variant: --seed: bad value '%s'\n", v); return 2; }
            o->seed = s;
        } else if (!strcmp(k, "--wtype")) {
            if ((o->wtype = rt_type_parse(v)) < 0) { fprintf(stderr, "variant: --wtype: unknown type '%s' (f32|f16|q8_0|q4_0|q4_k|q5_k|q6_k|q4_k_m|q5_k_m)\n", v); return 2; }
        } else if (!strcmp(k, "--kvtype")) {
            if (!strcmp(v, "f32")) o->kv_f16 = 0;
            else if (!strcmp(v, "f16")) o->kv_f16 = RT_KV_F16;
            else if (!strcmp(v, "f16-f32q")) o->kv_f16 = RT_KV_F16_F32Q;
            else if (!strcmp(v, "f16-fa")) o->kv_f16 = RT_KV_F16_FA;
            else { fprintf(stderr, "variant: --kvtype: unknown type '%s' (f32|f16|f16-f32q|f16-fa)\n", v); return 2; }
        } else if (!strcmp(k, "--cpus")) o->cpus = v;
        else if (!strcmp(k, "--gguf")) o->gguf = v;
        else if (!strcmp(k, "--decode-warmup")) {
            if (!strcmp(v, "auto")) o->decode_warmup = DECODE_WARMUP_AUTO;
            else if (parse_long(v, 0, 1 << 20, &n)) {
                fprintf(stderr, "variant: --decode-warmup: bad value '%s' (a token count 0..%d, or auto)\n", v, 1 << 20);
                return 2;
            } else o->decode_warmup = n;
        }
        else if (!strcmp(k, "--tokens")) o->tokens = v;
        else if (!strcmp(k, "--out")) o->out = v;
        else if (!strcmp(k, "--tokenizer-from")) o->tok_from = v;
        else if (!strcmp(k, "--dump-act")) o->dump_act = v;
        else if (!strcmp(k, "--mode")) {
            if (strcmp(v, "prefill") && strcmp(v, "decode")) { fprintf(stderr, "variant: --mode: '%s' is not prefill|decode\n", v); return 2; }
            o->mode = v;
        } else {
            fprintf(stderr, "variant: unknown option '%s'\n", k);
            return 2;
        }
    }
    return 0;
}

/* ---- JSON helpers ------------------------------------------------------ */

void rt_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static const char *target_name(void)
{
#if defined(SHV_BUILD_TARGET)
    /* a triple from the generated header; build names such as "native" or
     * "scalar" are not triples, so the compiler's own answer is used then */
    if (strstr(SHV_BUILD_TARGET, "-linux-")) return SHV_BUILD_TARGET;
#endif
#if defined(__aarch64__) && defined(__ANDROID__)
    return "aarch64-linux-android";
#elif defined(__aarch64__)
    return "aarch64-linux-gnu";
#elif defined(__x86_64__)
    return "x86_64-linux-gnu";
#else
    return "unknown";
#endif
}

static const char *cc_name(void)
{
#if defined(SHV_BUILD_CC)
    if (SHV_BUILD_CC[0]) return SHV_BUILD_CC;
#endif
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "cc";
#endif
}

#ifndef SHV_BUILD_FLAGS
#define SHV_BUILD_FLAGS ""
#endif

static void print_build(FILE *f)
{
    fprintf(f, "{\"target\":");
    rt_json_str(f, target_name());
    fprintf(f, ",\"simd\":\"%s\",\"cc\":", RT_SIMD_NAME);
    rt_json_str(f, cc_name());
    fprintf(f, ",\"flags\":");
    rt_json_str(f, SHV_BUILD_FLAGS);
    fprintf(f, "}");
}

/* the bytes of a "Key:   N kB" line of a /proc file; -1 where it cannot be read */
static long long proc_kb_field(const char *path, const char *key)
{
    long long kb = -1;
    const size_t kl = strlen(key);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, key, kl)) kb = strtoll(line + kl, NULL, 10);
        fclose(f);
    }
    return kb < 0 ? -1 : kb * 1024;
}

/* this process's anonymous memory on transparent huge pages; -1: unreadable */
static long long huge_page_bytes(void)
{
    return proc_kb_field("/proc/self/smaps_rollup", "AnonHugePages:");
}

static uint64_t peak_rss(void)
{
    long long hwm = proc_kb_field("/proc/self/status", "VmHWM:");
    uint64_t best = hwm > 0 ? (uint64_t)hwm : 0;
    if (!best) {
        struct rusage ru;
        if (!getrusage(RUSAGE_SELF, &ru)) best = (uint64_t)ru.ru_maxrss * 1024;
    }
    return best;
}

/* ---- setup shared by modes -------------------------------------------- */

typedef struct env { rt_pool *pool; rt_model model; int have_model; int cpus[1024]; int ncpus; int threads; } env;

/* pool and weights; pack: rewrite q4_0 / q8_0 weights into the kernels'
 * order (every mode that computes; not export, which writes ggml blocks) */
static int setup(env *e, const opts *o, int pack)
{
    char err[512] = "";
    e->ncpus = 0;
    if (o->cpus) {
        e->ncpus = rt_parse_cpulist(o->cpus, e->cpus, 1024);
        if (e->ncpus <= 0) { fprintf(stderr, "variant: --cpus: bad CPU list '%s' (e.g. 0-3,6)\n", o->cpus); return 2; }
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    e->threads = o->threads ? (int)o->threads : (e->ncpus ? e->ncpus : (online > 0 ? (int)online : 1));
    e->pool = rt_pool_create(e->threads, e->cpus, e->ncpus, err, sizeof err);
    if (!e->pool) { fprintf(stderr, "variant: %s\n", err); return 1; }
    int rc = o->gguf ? rt_model_gguf(&e->model, o->gguf, err, sizeof err)
                     : rt_model_synthetic(&e->model, e->pool, o->wtype, o->seed, err, sizeof err);
    if (rc == 0 && pack) rc = rt_model_pack(&e->model, e->pool, err, sizeof err);
    if (rc) {
        fprintf(stderr, "variant: %s\n", err);
        rt_model_free(&e->model);
        rt_pool_destroy(e->pool);
        return 1;
    }
    e->have_model = 1;
    return 0;
}

static void teardown(env *e)
{
    if (e->have_model) rt_model_free(&e->model);
    rt_pool_destroy(e->pool);
}

/* splitmix64 as a sequence: the runtime's one mixer (rt_synth.h) */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = rt_splitmix64(*s);
    *s += RT_GOLDEN64;
    return x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile(double *v, size_t n, double q)
{
    if (!n) return 0.0;
    qsort(v, n, sizeof *v, cmp_double);
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    double f = pos - (double)i;
    return i + 1 < n ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

static void print_share(FILE *f, const double *t)
{
    static const char *names[RT_T_COUNT] = { "conv", "attention", "swiglu", "moe", "head" };
    double sum = 0.0;
    for (int i = 0; i < RT_T_COUNT; i++) sum += t[i];
    fputc('{', f);
    for (int i = 0; i < RT_T_COUNT; i++)
        fprintf(f, "%s\"%s\":%.4f", i ? "," : "", names[i], sum > 0 ? t[i] / sum : 0.0);
    fputc('}', f);
}

static void cpus_used(const env *e, const opts *o, char *buf, size_t cap)
{
    if (o->cpus) { snprintf(buf, cap, "%s", o->cpus); return; }
    buf[0] = 0;
#if defined(CPU_ISSET)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        size_t len = 0;
        for (int c = 0; c < CPU_SETSIZE && len + 8 < cap; c++) {
            if (!CPU_ISSET(c, &set)) continue;
            int d = c;
            while (d + 1 < CPU_SETSIZE && CPU_ISSET(d + 1, &set)) d++;
            len += (size_t)snprintf(buf + len, cap - len, "%s%d", len ? "," : "", c);
            if (d > c) len += (size_t)snprintf(buf + len, cap - len, "-%d", d);
            c = d;
        }
        return;
    }
#endif
    (void)e;
}

/* Room for the warm-up tokens of one repetition in the context: N, or for
 * auto at most DW_AUTO_MAX within the genome's context. */
static long decode_warmup_room(const opts *o)
{
    if (o->decode_warmup != DECODE_WARMUP_AUTO) return o->decode_warmup;
    long room = (long)SHV_MAX_CONTEXT - (o->depth + o->prompt + o->gen);
    room = room < DW_AUTO_MAX ? room : DW_AUTO_MAX;
    return room > 0 ? room - room % DW_GROUP : 0;
}

/* Decodes one repetition's unmeasured warm-up tokens (--decode-warmup) after
 * its prefill: want of them, or for auto groups of DW_GROUP until the token
 * time has settled, within room.  Returns how many, or -1 if a pass failed. */
static long decode_warmup(rt_state *s, long want, long room, uint64_t *prng, float *logits)
{
    double prev = 0.0;
    long n = 0;
    while (want == DECODE_WARMUP_AUTO ? n + DW_GROUP <= room : n < want) {
        double t[DW_GROUP];
        int k = want == DECODE_WARMUP_AUTO ? DW_GROUP : 1;
        for (int i = 0; i < k; i++) {
            int32_t t1 = (int32_t)(rng_next(prng) % SHV_VOCAB);
            double t0 = rt_now();
            if (rt_forward(s, &t1, 1, logits, 0)) return -1;
            t[i] = rt_now() - t0;
        }
        n += k;
        if (want != DECODE_WARMUP_AUTO) continue;
        double m = quantile(t, DW_GROUP, 0.5);
        if (prev > 0 && m >= prev * (1 - DW_SETTLED)) break;
        prev = m;
    }
    return n;
}

static int mode_bench(const opts *o)
{
    env e;
    memset(&e, 0, sizeof e);
    int rc = setup(&e, o, 1);
    if (rc) return rc;
    char err[512] = "";
    long warm_room = decode_warmup_room(o);
    long ctx = o->depth + o->prompt + warm_room + o->gen;
    if (ctx < 1) ctx = 1;
    long chunk = o->prompt > o->depth ? o->prompt : o->depth;
    if (chunk > 256) chunk = 256;
    if (chunk < 1) chunk = 1;
    rt_state *s = rt_state_create(&e.model, e.pool, (int)ctx, (int)chunk, o->kv_f16, err, sizeof err);
    if (!s) { fprintf(stderr, "variant: %s\n", err); teardown(&e); return 1; }
    size_t ntok = (size_t)(o->depth > o->prompt ? o->depth : o->prompt) + 1;
    int32_t *tok = malloc(ntok * sizeof *tok);
    float *logits = malloc((size_t)SHV_VOCAB * sizeof *logits);
    double *pre = calloc((size_t)o->reps, sizeof *pre);
    long *warmed = calloc((size_t)o->reps, sizeof *warmed);   /* warm-up tokens per timed rep */
    size_t nsamp = (size_t)o->reps * (size_t)o->gen;
    double *dec = calloc(nsamp + 1, sizeof *dec), *sorted = calloc(nsamp + 1, sizeof *sorted);
    if (!tok || !logits || !pre || !warmed || !dec || !sorted) {
        fprintf(stderr, "variant: out of memory\n");
        free(tok); free(logits); free(pre); free(warmed); free(dec); free(sorted);
        rt_state_free(s); teardown(&e); return 1;
    }
    uint64_t rng = o->seed ^ 0x5bd1e995ull;
    int bench_fail = 0;
    if (o->depth) {
        for (long i = 0; i < o->depth; i++) tok[i] = (int32_t)(rng_next(&rng) % SHV_VOCAB);
        if (rt_forward(s, tok, (int)o->depth, NULL, 0)) bench_fail = 1;
    }
    rt_state_save(s);
    double tpre[RT_T_COUNT] = { 0 }, tdec[RT_T_COUNT] = { 0 };
    double dec_total = 0.0;
    size_t k = 0;
    double *times = rt_state_times(s);
    rt_sysstate *st_before = calloc((size_t)o->reps + 1, sizeof *st_before);
    rt_sysstate *st_after = calloc((size_t)o->reps + 1, sizeof *st_after);
    if (!st_before || !st_after) bench_fail = 1;
    for (long r = 0; r < o->warmup + o->reps && !bench_fail; r++) {
        int timed = r >= o->warmup;
        if (timed) rt_sysstate_read(&st_before[r - o->warmup], e.cpus, e.ncpus);
        rt_state_restore(s);
        uint64_t prng = o->seed * RT_GOLDEN64 + (uint64_t)r;
        for (long i = 0; i < o->prompt; i++) tok[i] = (int32_t)(rng_next(&prng) % SHV_VOCAB);
        memset(times, 0, sizeof(double) * RT_T_COUNT);
        if (o->prompt) {
            double t0 = rt_now();
            if (rt_forward(s, tok, (int)o->prompt, logits, 0)) bench_fail = 1;
            double dt = rt_now() - t0;
            if (timed) {
                pre[r - o->warmup] = dt * 1e3;
                for (int i = 0; i < RT_T_COUNT; i++) tpre[i] += times[i];
            }
        }
        long w = decode_warmup(s, o->decode_warmup, warm_room, &prng, logits);
        if (w < 0) bench_fail = 1;
        else if (timed) warmed[r - o->warmup] = w;
        memset(times, 0, sizeof(double) * RT_T_COUNT);
        for (long g = 0; g < o->gen; g++) {
            int32_t t1 = (int32_t)(rng_next(&prng) % SHV_VOCAB);
            double t0 = rt_now();
            if (rt_forward(s, &t1, 1, logits, 0)) bench_fail = 1;
            double dt = rt_now() - t0;
            if (timed) { dec[k++] = dt * 1e3; dec_total += dt; }
        }
        if (timed) for (int i = 0; i < RT_T_COUNT; i++) tdec[i] += times[i];
        if (timed) rt_sysstate_read(&st_after[r - o->warmup], e.cpus, e.ncpus);
    }
    if (bench_fail) {
        fprintf(stderr, "variant: forward pass failed (out of memory)\n");
        free(st_before); free(st_after);
        free(tok); free(logits); free(pre); free(warmed); free(dec); free(sorted);
        rt_state_free(s); teardown(&e); return 1;
    }
    memcpy(sorted, pre, (size_t)o->reps * sizeof *pre);
    double pre_med = quantile(sorted, (size_t)o->reps, 0.5);
    memcpy(sorted, dec, k * sizeof *dec);
    double dec_med = quantile(sorted, k, 0.5), dec_p90 = quantile(sorted, k, 0.9);
    char model[256], used[512];
    rt_cpu_model(model, sizeof model);
    cpus_used(&e, o, used, sizeof used);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    FILE *f = stdout;
    fprintf(f, "{\"mode\":\"bench\",\"genome_hash\":\"%s\",\"build\":", SHV_GENOME_HASH);
    print_build(f);
    fprintf(f, ",\"cpu\":{\"model\":");
    rt_json_str(f, model);
    fprintf(f, ",\"n_cpus\":%ld,\"cpus_used\":", online);
    rt_json_str(f, used);
    fprintf(f, "},\"settings\":{\"prompt\":%ld,\"gen\":%ld,\"depth\":%ld,\"threads\":%d,\"reps\":%ld,"
               "\"warmup\":%ld,\"wtype\":\"%s\",\"kvtype\":\"%s\",\"seed\":%llu,\"weights\":",
            o->prompt, o->gen, o->depth, e.threads, o->reps, o->warmup,
            o->gguf ? "gguf" : rt_type_name(o->wtype), o->kv_f16 == RT_KV_F16_F32Q ? "f16-f32q" : o->kv_f16 == RT_KV_F16_FA ? "f16-fa" : o->kv_f16 ? "f16" : "f32",
            (unsigned long long)o->seed);
    rt_json_str(f, o->gguf ? o->gguf : "synthetic");
    if (o->decode_warmup == DECODE_WARMUP_AUTO) fprintf(f, ",\"decode_warmup\":\"auto\"");
    else fprintf(f, ",\"decode_warmup\":%ld", o->decode_warmup);
    fprintf(f, "},\"decode_warmup_tokens\":[");
    for (long r = 0; r < o->reps; r++) fprintf(f, "%s%ld", r ? "," : "", warmed[r]);
    fprintf(f, "],\"prefill_tok_s\":%.3f,\"decode_tok_s\":%.3f,\"ttft_ms\":%.4f,\"prefill_ms\":[",
            pre_med > 0 ? (double)o->prompt / (pre_med * 1e-3) : 0.0,
            dec_total > 0 ? (double)k / dec_total : 0.0, pre_med);
    for (long r = 0; r < o->reps; r++) fprintf(f, "%s%.4f", r ? "," : "", pre[r]);
    fprintf(f, "],\"decode_ms\":{\"median\":%.4f,\"p90\":%.4f,\"samples\":[", dec_med, dec_p90);
    for (size_t i = 0; i < k; i++) fprintf(f, "%s%.4f", i ? "," : "", dec[i]);
    fprintf(f, "]},\"peak_rss_bytes\":%llu,", (unsigned long long)peak_rss());
    long long huge = huge_page_bytes();
    if (huge >= 0) fprintf(f, "\"huge_page_bytes\":%lld,", huge);
    fprintf(f, "\"weight_bytes\":%llu,\"kv_bytes\":%llu,\"conv_state_bytes\":%llu,\"share\":{\"prefill\":",
            (unsigned long long)e.model.weight_bytes,
            (unsigned long long)rt_state_kv_bytes(s), (unsigned long long)rt_state_conv_state_bytes(s));
    print_share(f, tpre);
    fprintf(f, ",\"decode\":");
    print_share(f, tdec);
    fprintf(f, "},\"state\":[");
    for (long r = 0; r < o->reps; r++) {
        if (r) fputc(',', f);
        rt_sysstate_print(f, &st_before[r], &st_after[r]);
    }
    fprintf(f, "]}\n");
    free(st_before); free(st_after);
    free(tok); free(logits); free(pre); free(warmed); free(dec); free(sorted);
    rt_state_free(s);
    teardown(&e);
    return 0;
}

static int parse_tokens(const char *s, int32_t **out, int *n)
{
    int cap = 16, k = 0;
    int32_t *v = malloc((size_t)cap * sizeof *v);
    if (!v) return -1;
    const char *c = s;
    while (*c) {
        char *end;
        errno = 0;
        long t = strtol(c, &end, 10);
        if (errno || end == c || t < 0 || t >= SHV_VOCAB) {
            fprintf(stderr, "variant: --tokens: bad token near '%.20s' (ids are 0..%d)\n", c, SHV_VOCAB - 1);
            free(v);
            return -1;
        }
        if (k == cap) {
            if (cap > (1 << 22)) { fprintf(stderr, "variant: --tokens: too many tokens\n"); free(v); return -1; }
            int32_t *nv = realloc(v, (size_t)cap * 2 * sizeof *v);
            if (!nv) { free(v); return -1; }
            v = nv;
            cap *= 2;
        }
        v[k++] = (int32_t)t;
        c = end;
        if (*c == ',') { c++; if (!*c) { fprintf(stderr, "variant: --tokens: trailing comma\n"); free(v); return -1; } }
        else if (*c) { fprintf(stderr, "variant: --tokens: unexpected '%c'\n", *c); free(v); return -1; }
    }
    if (!k) { fprintf(stderr, "variant: --tokens: empty list\n"); free(v); return -1; }
    *out = v;
    *n = k;
    return 0;
}

static int mode_logits(const opts *o)
{
    if (!o->tokens) return usage("logits needs --tokens");
    int32_t *tok;
    int n;
    if (parse_tokens(o->tokens, &tok, &n)) return 1;
    env e;
    memset(&e, 0, sizeof e);
    int rc = setup(&e, o, 1);
    if (rc) { free(tok); return rc; }
    char err[512] = "";
    int decode = !strcmp(o->mode, "decode");
    int chunk = decode ? 1 : (n < 256 ? n : 256);
    rt_state *s = rt_state_create(&e.model, e.pool, n, chunk, o->kv_f16, err, sizeof err);
    size_t nout = o->all ? (size_t)n : 1;
    float *lg = malloc(nout * SHV_VOCAB * sizeof *lg);
    if (!s || !lg) {
        fprintf(stderr, "variant: %s\n", s ? "out of memory for logits" : err);
        free(lg); free(tok); rt_state_free(s); teardown(&e); return 1;
    }
    if (o->dump_act && !(rt_act_trace = fopen(o->dump_act, "wb"))) {
        fprintf(stderr, "variant: --dump-act: cannot create %s: %s\n", o->dump_act, strerror(errno));
        free(lg); free(tok); rt_state_free(s); teardown(&e); return 1;
    }
    int frc = 0;
    if (!decode) frc = rt_forward(s, tok, n, lg, o->all);
    else
        for (int i = 0; i < n && !frc; i++) {
            float *dst = o->all ? lg + (size_t)i * SHV_VOCAB : lg;
            frc = rt_forward(s, tok + i, 1, (o->all || i == n - 1) ? dst : NULL, 0);
        }
    rc = 0;
    if (rt_act_trace) {
        int bad = ferror(rt_act_trace);
        if (fclose(rt_act_trace) || bad) {
            fprintf(stderr, "variant: --dump-act: cannot write %s\n", o->dump_act);
            rc = 1;
        }
        rt_act_trace = NULL;
    }
    if (frc) {
        fprintf(stderr, "variant: forward pass failed (out of memory)\n");
        free(lg); free(tok); rt_state_free(s); teardown(&e); return 1;
    }
    if (o->out) {
        FILE *f = fopen(o->out, "wb");
        if (!f || fwrite(lg, sizeof *lg, nout * SHV_VOCAB, f) != nout * SHV_VOCAB) {
            fprintf(stderr, "variant: cannot write %s: %s\n", o->out, strerror(errno));
            rc = 1;
        }
        if (f && fclose(f)) { fprintf(stderr, "variant: cannot write %s\n", o->out); rc = 1; }
        if (!rc) {
            printf("{\"mode\":\"logits\",\"genome_hash\":\"%s\",\"simd\":\"%s\",\"n_tokens\":%d,\"vocab\":%d,"
                   "\"positions\":%zu,\"out\":", SHV_GENOME_HASH, RT_SIMD_NAME, n, SHV_VOCAB, nout);
            rt_json_str(stdout, o->out);
            printf("}\n");
        }
    } else {
        printf("{\"mode\":\"logits\",\"genome_hash\":\"%s\",\"simd\":\"%s\",\"n_tokens\":%d,\"vocab\":%d,"
               "\"positions\":%zu,\"logits\":", SHV_GENOME_HASH, RT_SIMD_NAME, n, SHV_VOCAB, nout);
        if (o->all) putchar('[');
        for (size_t p = 0; p < nout; p++) {
            printf("%s[", p ? "," : "");
            for (int v = 0; v < SHV_VOCAB; v++) printf("%s%.9g", v ? "," : "", lg[p * SHV_VOCAB + v]);
            putchar(']');
        }
        if (o->all) putchar(']');
        printf("}\n");
    }
    free(lg); free(tok);
    rt_state_free(s);
    teardown(&e);
    return rc;
}

static int mode_export(const opts *o)
{
    if (!o->out) return usage("export needs --out FILE");
    if (o->gguf) return usage("export writes synthetic weights; --gguf is not accepted");
    if (o->tok_from && !*o->tok_from) return usage("--tokenizer-from needs a file");
    env e;
    memset(&e, 0, sizeof e);
    int rc = setup(&e, o, 0);
    if (rc) return rc;
    char err[512] = "";
    rc = rt_model_export_gguf(&e.model, o->out, o->tok_from, err, sizeof err);
    if (rc) fprintf(stderr, "variant: %s\n", err);
    else {
        printf("{\"mode\":\"export\",\"genome_hash\":\"%s\",\"wtype\":\"%s\",\"seed\":%llu,\"out\":",
               SHV_GENOME_HASH, rt_type_name(o->wtype), (unsigned long long)o->seed);
        rt_json_str(stdout, o->out);
        printf(",\"weight_bytes\":%llu}\n", (unsigned long long)e.model.weight_bytes);
    }
    teardown(&e);
    return rc ? 1 : 0;
}

static int mode_info(void)
{
    printf("{\"mode\":\"info\",\"genome_hash\":\"%s\",\"genome\":", SHV_GENOME_HASH);
    rt_json_str(stdout, SHV_GENOME_TEXT);
    printf(",\"build\":");
    print_build(stdout);
    printf(",\"n_layers\":%d,\"hidden\":%d,\"vocab\":%d,\"head_dim\":%d,\"tied\":%d,"
           "\"wtypes\":[\"f32\",\"f16\",\"q8_0\",\"q4_0\",\"q4_k\",\"q5_k\",\"q6_k\",\"q4_k_m\",\"q5_k_m\"],\"kvtypes\":[\"f32\",\"f16\",\"f16-f32q\",\"f16-fa\"]}\n",
           SHV_N_LAYERS, SHV_HIDDEN, SHV_VOCAB, SHV_HEAD_DIM, SHV_TIED);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage("missing mode");
    const char *mode = argv[1];
    if (!strcmp(mode, "--help") || !strcmp(mode, "-h") || !strcmp(mode, "help")) { usage(NULL); return 0; }
    opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc == -1) return 0;   /* --help */
    if (rc) return rc;
    if (!strcmp(mode, "bench")) return mode_bench(&o);
    if (!strcmp(mode, "logits")) return mode_logits(&o);
    if (!strcmp(mode, "export")) return mode_export(&o);
    if (!strcmp(mode, "probe")) return rt_probe_main();
    if (!strcmp(mode, "info")) return mode_info();
    return usage("unknown mode");
}
