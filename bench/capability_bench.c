/* capability_bench.c - evidence for the built-in quality signal
 * (docs/quality-signal.md), built and run by bench/bench_capability.sh:
 *  1. this machine's plain f32 matmul rate with the trainer's own kernel;
 *  2. `score` (task lm, default scale and budget) of LFM2-350M/700M/1.2B/2.6B:
 *     held-out bits/byte, wall time, proxy size, achieved GFLOP/s and its share
 *     of the matmul rate (the best-of-3 probe, and a matmul sustained for 3 s
 *     right before and right after each training: on a shared machine the
 *     fair reference), Spearman of bits/byte against size, and the cost
 *     exponent (slope of log seconds, wall and CPU, against log proxy
 *     parameters);
 *  3. rung correlation: 12 genomes of the default search space at the search's
 *     scorer settings, each scored at rung 0 (1/9), 1 (1/3) and 2 (all of the
 *     budget; every rung continues the lower one's state), Spearman of each
 *     rung against the top one;
 *  4. seed-to-seed spread: 5 genomes of the default search space (hidden
 *     128..512) at the search's scorer settings, --seeds seeds each: mean,
 *     standard deviation and range of bits/byte per genome, next to the
 *     differences between neighbouring sizes;
 *  5. pattern at equal parameters: LFM2-350M against the same genome with
 *     every layer GQA (the FFN widened to equal the parameter count as
 *     closely as integer widths allow) and against all-conv, at the default
 *     scale and budget, --seeds seeds each.
 * Options: --threads N  --part 1,2,3,4,5  --genomes a,b  --scale F  --tokens N
 *          --rank-scale F  --rank-tokens N  --seeds N */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "evaluator/capability/cap_internal.h"
#include "evaluator/capability/cap_model.h"
#include "evaluator/capability/score.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of this process, all threads: on a shared machine a rate per
 * CPU second is what time-slicing by other processes does not dilute. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The matmul rate sustained over `secs` seconds (n x n x n, split over the
 * threads as the probe does, repeated): total FLOPs per wall second and per
 * CPU second.  Measured right before and after each training, it shares the
 * machine with the same other work the training does, which a best-of-3
 * probe of a few milliseconds does not. */
static void matmul_sustained(int n, int threads, double secs, double *wall_rate, double *cpu_rate)
{
    double t0 = now_s(), c0 = cpu_s(), flops = 0;
    do {
        cap_measure_matmul_gflops(n, threads);   /* 3 repetitions */
        flops += 3 * 2.0 * n * n * (double)n;
    } while (now_s() - t0 < secs);
    *wall_rate = flops / (now_s() - t0) / 1e9;
    *cpu_rate = flops / (cpu_s() - c0) / 1e9;
}

/* Spearman rank correlation (no ties expected; ties get their order). */
static double spearman(const double *a, const double *b, int n)
{
    double ra[64], rb[64];
    for (int i = 0; i < n; i++) {
        ra[i] = rb[i] = 0;
        for (int j = 0; j < n; j++) {
            if (a[j] < a[i] || (a[j] == a[i] && j < i)) ra[i]++;
            if (b[j] < b[i] || (b[j] == b[i] && j < i)) rb[i]++;
        }
    }
    double d2 = 0;
    for (int i = 0; i < n; i++) d2 += (ra[i] - rb[i]) * (ra[i] - rb[i]);
    return 1 - 6 * d2 / ((double)n * ((double)n * n - 1));
}

static double last_cpu;   /* CPU seconds of the last score_one */

static int score_one(sh_db *db, const char *genome, const sh_score_opts *o, double *bpb, double *sec,
                     long *params, double *flops)
{
    sh_err err = {{0}};
    sh_genome g;
    if (sh_genome_resolve(genome, &g, &err)) { fprintf(stderr, "bench_capability: %s\n", err.msg); return -1; }
    sh_score_rec r;
    double t0 = now_s(), c0 = cpu_s();
    if (sh_score_genome(db, &g, "builtin", o, &r, &err)) { fprintf(stderr, "bench_capability: %s\n", err.msg); return -1; }
    *sec = now_s() - t0;
    last_cpu = cpu_s() - c0;
    json_t *j = json_loads(r.scores_json, 0, NULL);
    *bpb = json_number_value(json_object_get(j, "lm_bpb"));
    json_decref(j);
    sh_score_rec_free(&r);
    cap_scale_cfg s;
    cap_scale_default(&s);
    if (o->scale > 0) s.scale = o->scale;
    cap_model_cfg c;
    if (cap_map_genome(&g, &s, &c, &err)) return -1;
    cap_task t;
    cap_task_default(CAP_TASK_LM, &t);
    c.V = 256;
    c.T = t.seq;
    *params = (long)cap_param_count_f32(&c);
    long tokens = o->tokens > 0 ? o->tokens : 327680;
    long steps = (tokens + (long)t.seq * t.batch - 1) / ((long)t.seq * t.batch);
    double frac = sh_score_rung_fraction(sh_score_rung(o), sh_score_rungs(o));
    long run_steps = lround(steps * frac) < 1 ? 1 : lround(steps * frac);
    *flops = 3.0 * (double)run_steps * t.batch * cap_forward_flops(&c, t.seq, t.seq) +
             (double)t.n_test * cap_forward_flops(&c, t.seq, t.seq);
    return 0;
}

/* The scorer's options for the LM task at one scale and token budget. */
static void lm_opts(sh_score_opts *o, int threads, double scale, long tokens)
{
    sh_score_opts_default(o);
    o->threads = threads;
    o->tasks = "lm";
    o->scale = scale;
    o->tokens = tokens;
}

int main(int argc, char **argv)
{
    int threads = 2;
    const char *parts = "1,2,3", *genomes = "lfm2-350m,lfm2-700m,lfm2-1.2b,lfm2-2.6b";
    double scale = 0, rank_scale = 0.125;
    long tokens = 0, rank_tokens = 32768;
    int seeds = 3;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: capability_bench [--threads N] [--part 1,2,3,4,5] [--genomes a,b] [--scale F]\n"
                   "       [--tokens N] [--rank-scale F] [--rank-tokens N] [--seeds N]\n"
                   "(run it through bench/bench_capability.sh, which builds it; see that script's header)\n");
            return 0;
        }
    if (argc % 2 == 0) {
        fprintf(stderr, "bench_capability: %s needs a value\n", argv[argc - 1]);
        return 2;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--part")) parts = argv[i + 1];
        else if (!strcmp(argv[i], "--genomes")) genomes = argv[i + 1];
        else if (!strcmp(argv[i], "--scale")) scale = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--tokens")) tokens = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--rank-scale")) rank_scale = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--rank-tokens")) rank_tokens = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--seeds")) seeds = atoi(argv[i + 1]);
        else { fprintf(stderr, "bench_capability: unknown option %s\n", argv[i]); return 2; }
    }
    if (threads < 1) threads = 1;
    if (seeds < 1) seeds = 1;
    if (seeds > 16) seeds = 16;
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* under $TMPDIR: the script points it at a directory it removes on exit,
     * also when this program is killed */
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[600], sdir[600];
    snprintf(dir, sizeof dir, "%s/shcapbenchXXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    snprintf(path, sizeof path, "%s/bench.db", dir);
    snprintf(sdir, sizeof sdir, "%s/states", dir);
    sh_err err = {{0}};
    sh_db *db;
    if (sh_db_open(path, SH_DB_CREATE, &db, &err)) { fprintf(stderr, "bench_capability: %s\n", err.msg); return 1; }
    FILE *la = fopen("/proc/loadavg", "r");
    char load[64] = "?";
    if (la) { if (!fgets(load, sizeof load, la)) load[0] = 0; fclose(la); load[strcspn(load, " ")] = 0; }
    printf("== capability bench: %d threads, %s build, load average %s\n", threads, cap_simd_name(), load);
    double mm = 0, mm_cpu = 0;
    int mm_n = 0;
    for (int n = 128; n <= 512; n *= 2) {
        double c0 = cpu_s();
        double r = cap_measure_matmul_gflops(n, threads);   /* best of 3 repetitions, wall clock */
        double rcpu = 3 * 2.0 * n * n * (double)n / (cpu_s() - c0) / 1e9;
        if (r > mm) { mm = r; mm_n = n; }
        if (rcpu > mm_cpu) mm_cpu = rcpu;
    }
    printf("f32 matmul %dx%d (best of 128/256/512, trainer kernel, %d threads): %.2f GFLOP/s; per CPU second: %.2f "
           "GFLOP/s\n", mm_n, mm_n, threads, mm, mm_cpu);
    int rc = 0;
    if (strchr(parts, '2')) {
        sh_score_opts o;
        lm_opts(&o, threads, scale, tokens);
        o.force = true;
        printf("\n-- score, task lm, scale %g, %ld tokens each\n", scale > 0 ? scale : SH_SCORE_DEFAULT_SCALE,
               tokens > 0 ? tokens : 327680L);
        printf("| genome | proxy params | bits/byte | seconds | GFLOP/s | of matmul | CPU s | GFLOP per CPU s | of matmul "
               "per CPU s | sustained matmul before/after GFLOP/s | of sustained (wall) | of sustained (per CPU s) | load |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        char list[512];
        snprintf(list, sizeof list, "%s", genomes);
        double bpb[16], sec[16], size[16], lp[16], ls[16], lc[16];
        int n = 0;
        for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && n < 16; tok = strtok_r(NULL, ",", &save)) {
            long params;
            double fl, sw0, sc0, sw1, sc1;
            matmul_sustained(mm_n, threads, 3.0, &sw0, &sc0);
            if (score_one(db, tok, &o, &bpb[n], &sec[n], &params, &fl)) { rc = 1; break; }
            double tcpu = last_cpu;
            matmul_sustained(mm_n, threads, 3.0, &sw1, &sc1);
            size[n] = (double)params;
            lp[n] = log((double)params);
            ls[n] = log(sec[n]);
            lc[n] = log(tcpu);
            char ld[64] = "?";
            FILE *lf = fopen("/proc/loadavg", "r");
            if (lf) { if (!fgets(ld, sizeof ld, lf)) ld[0] = 0; fclose(lf); ld[strcspn(ld, " ")] = 0; }
            printf("| %s | %ld | %.4f | %.1f | %.2f | %.0f%% | %.1f | %.2f | %.0f%% | %.2f / %.2f | %.0f%% | %.0f%% | %s |\n",
                   tok, params, bpb[n], sec[n], fl / sec[n] / 1e9, 100 * fl / sec[n] / 1e9 / mm, tcpu, fl / tcpu / 1e9,
                   100 * fl / tcpu / 1e9 / mm_cpu, sw0, sw1, 100 * fl / sec[n] / 1e9 / ((sw0 + sw1) / 2),
                   100 * fl / tcpu / 1e9 / ((sc0 + sc1) / 2), ld);
            n++;
        }
        if (n >= 2) {
            int strict = 1;
            for (int i = 1; i < n; i++) strict &= bpb[i] < bpb[i - 1];
            double neg[16];
            for (int i = 0; i < n; i++) neg[i] = -bpb[i];
            double mx = 0, my = 0, mc = 0, sxy = 0, sxc = 0, sxx = 0;
            for (int i = 0; i < n; i++) { mx += lp[i] / n; my += ls[i] / n; mc += lc[i] / n; }
            for (int i = 0; i < n; i++) {
                sxy += (lp[i] - mx) * (ls[i] - my);
                sxc += (lp[i] - mx) * (lc[i] - mc);
                sxx += (lp[i] - mx) * (lp[i] - mx);
            }
            printf("bits/byte strictly improves with size: %s; Spearman(size, -bits/byte) = %.3f; "
                   "cost exponent (seconds ~ params^k): k = %.2f wall, %.2f CPU\n", strict ? "yes" : "NO",
                   spearman(size, neg, n), sxx > 0 ? sxy / sxx : NAN, sxx > 0 ? sxc / sxx : NAN);
        }
    }
    if (!rc && strchr(parts, '3')) {
        /* 12 genomes of the default search space: hidden 128..512, 4..12 layers, three patterns */
        char gen[12][512], label[12][64];
        for (int i = 0; i < 12; i++) {
            int d = 128 + 128 * (i % 4), L = 4 + 4 * ((i / 4) % 3), pat = (i * 7) % 3, F = (d * 3 / 128) * 128;
            if (F > 1536) F = 1536;
            snprintf(label[i], sizeof label[i], "d=%d, %d layers, %s", d, L,
                     pat == 0 ? "1 attention" : (pat == 1 ? "attention every 3rd" : "attention every 2nd"));
            int k = snprintf(gen[i], sizeof gen[i], "d=%d v=4096 hd=32 theta=1000000 eps=1e-05 ctx=2048 tie=1 |", d);
            for (int l = 0; l < L; l++) {
                int attn = pat == 0 ? l == L / 2 : (pat == 1 ? l % 3 == 2 : l % 2 == 1);
                if (attn) k += snprintf(gen[i] + k, sizeof gen[i] - (size_t)k, " gqa(%d,%d,qk)/swiglu(%d)", d / 32, d / 64, F);
                else k += snprintf(gen[i] + k, sizeof gen[i] - (size_t)k, " conv(3)/swiglu(%d)", F);
            }
        }
        sh_score_opts o;
        lm_opts(&o, threads, rank_scale, rank_tokens);
        o.state_dir = sdir;
        printf("\n-- rung correlation: 12 genomes, scale %g, %ld tokens at the top rung, rungs 1/9, 1/3, 1 (each continues the last)\n",
               rank_scale, rank_tokens);
        printf("| genome | rung 0 bpb | rung 1 bpb | rung 2 bpb | s rung 0 | s rung 1 | s rung 2 |\n|---|---|---|---|---|---|---|\n");
        double b[3][12], s[3][12], tot[3] = {0}, cpu[3] = {0}, flops[3] = {0};
        for (int i = 0; i < 12 && !rc; i++) {
            for (int r = 0; r < 3 && !rc; r++) {
                long params;
                double fl;
                o.rung = r;
                if (score_one(db, gen[i], &o, &b[r][i], &s[r][i], &params, &fl)) rc = 1;
                tot[r] += s[r][i];
                cpu[r] += last_cpu;
                flops[r] += fl;   /* training this rung from scratch + its held-out pass */
            }
            if (!rc)
                printf("| %s | %.4f | %.4f | %.4f | %.1f | %.1f | %.1f |\n", label[i], b[0][i],
                       b[1][i], b[2][i], s[0][i], s[1][i], s[2][i]);
        }
        if (!rc)
            printf("Spearman vs the top rung: rung 0 (1/9 budget) %.3f, rung 1 (1/3) %.3f; wall seconds per rung "
                   "(continued): %.1f / %.1f / %.1f\n", spearman(b[0], b[2], 12), spearman(b[1], b[2], 12), tot[0], tot[1],
                   tot[2]);
        if (!rc)
            printf("CPU seconds per rung (continued): %.1f / %.1f / %.1f; rung 0 = %.1f%% of the ladder's CPU seconds; "
                   "FLOPs of rung 0 / rung 1 / a from-scratch top rung (training + held-out pass): %.1f%% / %.1f%% / 100%%\n",
                   cpu[0], cpu[1], cpu[2], 100 * cpu[0] / (cpu[0] + cpu[1] + cpu[2]), 100 * flops[0] / flops[2],
                   100 * flops[1] / flops[2]);
    }
    if (!rc && strchr(parts, '4')) {
        /* the search's settings; 8 layers, attention every 3rd, FFN 3 x hidden */
        static const int dims[5] = {128, 192, 256, 320, 512};
        sh_score_opts o;
        lm_opts(&o, threads, rank_scale, rank_tokens);
        o.force = true;
        printf("\n-- seed spread: scale %g, %ld tokens, top rung, seeds 1..%d, 8 layers (attention every 3rd)\n",
               rank_scale, rank_tokens, seeds);
        printf("| hidden | proxy params | bits/byte per seed | mean | sd | range |\n|---|---|---|---|---|---|\n");
        double mean[5], sd[5], maxsd = 0, maxrange = 0;
        for (int i = 0; i < 5 && !rc; i++) {
            int d = dims[i], F = (d * 3 / 128) * 128;
            char gen[512];
            int k = snprintf(gen, sizeof gen, "d=%d v=4096 hd=32 theta=1000000 eps=1e-05 ctx=2048 tie=1 |", d);
            for (int l = 0; l < 8; l++) {
                if (l % 3 == 2) k += snprintf(gen + k, sizeof gen - (size_t)k, " gqa(%d,%d,qk)/swiglu(%d)", d / 32, d / 64, F);
                else k += snprintf(gen + k, sizeof gen - (size_t)k, " conv(3)/swiglu(%d)", F);
            }
            double b[16], lo = INFINITY, hi = -INFINITY, sum = 0, ss = 0;
            long params = 0;
            char per[256] = "";
            for (int sd_i = 0; sd_i < seeds && !rc; sd_i++) {
                double sec, fl;
                o.seed = (uint64_t)sd_i + 1;
                if (score_one(db, gen, &o, &b[sd_i], &sec, &params, &fl)) { rc = 1; break; }
                sum += b[sd_i];
                lo = fmin(lo, b[sd_i]);
                hi = fmax(hi, b[sd_i]);
                size_t len = strlen(per);
                snprintf(per + len, sizeof per - len, "%s%.4f", sd_i ? ", " : "", b[sd_i]);
            }
            if (rc) break;
            mean[i] = sum / seeds;
            for (int sd_i = 0; sd_i < seeds; sd_i++) ss += (b[sd_i] - mean[i]) * (b[sd_i] - mean[i]);
            sd[i] = seeds > 1 ? sqrt(ss / (seeds - 1)) : 0;
            maxsd = fmax(maxsd, sd[i]);
            maxrange = fmax(maxrange, hi - lo);
            printf("| %d | %ld | %s | %.4f | %.4f | %.4f |\n", d, params, per, mean[i], sd[i], hi - lo);
        }
        if (!rc) {
            printf("largest seed sd %.4f, largest range %.4f bits/byte; differences of the means between neighbouring sizes:",
                   maxsd, maxrange);
            for (int i = 1; i < 5; i++) printf(" %d->%d %.4f", dims[i - 1], dims[i], mean[i - 1] - mean[i]);
            printf("\n");
        }
    }
    if (!rc && strchr(parts, '5')) {
        /* LFM2-350M's pattern against all-GQA with the same attention layer and
         * the FFN widened (15 x 4822 + 1 x 4821: 256 parameters more, the closest
         * FFN widths get) and against all-conv (same FFN: fewer parameters) */
        const char *G = "d=1024 v=65536 hd=64 theta=1e+06 eps=1e-05 ctx=128000 tie=1 |";
        char gen[3][2048], label[3][64];
        snprintf(gen[0], sizeof gen[0], "lfm2-350m");
        snprintf(label[0], sizeof label[0], "LFM2-350M (10 conv + 6 GQA)");
        snprintf(gen[1], sizeof gen[1], "%s gqa(16,8,qk)/swiglu(4822)*15 gqa(16,8,qk)/swiglu(4821)", G);
        snprintf(label[1], sizeof label[1], "all GQA(16,8), FFN 4822");
        snprintf(gen[2], sizeof gen[2], "%s conv(3)/swiglu(4608)*16", G);
        snprintf(label[2], sizeof label[2], "all conv(3), FFN 4608");
        sh_score_opts o;
        lm_opts(&o, threads, scale, tokens);
        o.force = true;
        printf("\n-- pattern at (near) equal parameters: task lm, scale %g, %ld tokens, seeds 1..%d\n",
               scale > 0 ? scale : SH_SCORE_DEFAULT_SCALE, tokens > 0 ? tokens : 327680L, seeds);
        printf("| genome | params | proxy params | bits/byte per seed | mean |\n|---|---|---|---|---|\n");
        for (int i = 0; i < 3 && !rc; i++) {
            sh_genome g;
            if (sh_genome_resolve(gen[i], &g, &err)) { fprintf(stderr, "bench_capability: %s\n", err.msg); rc = 1; break; }
            sh_param_count pc;
            sh_genome_params(&g, &pc);
            double sum = 0;
            long params = 0;
            char per[256] = "";
            for (int sd_i = 0; sd_i < seeds && !rc; sd_i++) {
                double b, sec, fl;
                o.seed = (uint64_t)sd_i + 1;
                if (score_one(db, gen[i], &o, &b, &sec, &params, &fl)) { rc = 1; break; }
                sum += b;
                size_t len = strlen(per);
                snprintf(per + len, sizeof per - len, "%s%.4f", sd_i ? ", " : "", b);
            }
            if (!rc)
                printf("| %s | %llu | %ld | %s | %.4f |\n", label[i], (unsigned long long)pc.total, params, per, sum / seeds);
        }
    }
    sh_db_close(db);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char f[640];
        snprintf(f, sizeof f, "%s%s", path, suffix[i]);
        unlink(f);
    }
    rmdir(sdir);
    rmdir(dir);
    return rc;
}
