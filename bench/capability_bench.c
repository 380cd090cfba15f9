/* capability_bench.c - times the built-in capability suite (default tasks) on
 * LFM2-350M's layer pattern at the scorer's default scale (width 64) and
 * reports examples/s and achieved GFLOP/s against this machine's plain f32
 * matmul rate measured in the same run with the trainer's own kernel.
 * Built and run by bench/bench_capability.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evaluator/capability/cap_internal.h"
#include "evaluator/capability/score.h"

int main(int argc, char **argv)
{
    int threads = 2;
    const char *genome = "lfm2-350m", *tasks = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--genome")) genome = argv[i + 1];
        else if (!strcmp(argv[i], "--tasks")) tasks = argv[i + 1];
    }
    if (threads < 1) threads = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);     /* one line per task as it finishes */
    sh_err err = {{0}};
    sh_genome g;
    if (sh_genome_resolve(genome, &g, &err)) { fprintf(stderr, "bench_capability: %s\n", err.msg); return 1; }
    cap_scale_cfg s;
    cap_scale_default(&s);
    cap_model_cfg base;
    if (cap_map_genome(&g, &s, &base, &err)) { fprintf(stderr, "bench_capability: %s\n", err.msg); return 1; }
    char list[512];
    snprintf(list, sizeof list, "%s", tasks ? tasks : sh_score_builtin_tasks());
    double mm = 0;
    int mm_n = 0;
    for (int n = 128; n <= 512; n *= 2) {          /* the best size of the plain kernel */
        double r = cap_measure_matmul_gflops(n, threads);
        if (r > mm) { mm = r; mm_n = n; }
    }
    double tot_s = 0, tot_f = 0;
    long tot_ex = 0;
    printf("capability suite: genome %s at width %d, %d layers, %d threads, %s build\n", genome, s.width,
           base.n_layers, threads, cap_simd_name());
    printf("%-16s %8s %9s %10s %9s %8s\n", "task", "accuracy", "seconds", "examples/s", "GFLOP/s", "of mm");
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        cap_task_kind k;
        if (cap_task_parse_name(tok, &k)) { fprintf(stderr, "bench_capability: unknown task %s\n", tok); return 1; }
        cap_task t;
        cap_task_default(k, &t);
        cap_model_cfg c = base;
        c.V = cap_task_model_vocab(&t);
        c.T = t.seq;
        c.readout = cap_task_readout(&t);
        cap_dataset tr, te;
        cap_train_result r;
        cap_train_opts o = {.threads = threads, .seed = 1, .epochs = t.epochs, .batch = t.batch, .lr = t.lr,
                            .wd = t.wd, .clip = 1.0, .warmup_frac = 0.05};
        if (cap_task_generate(&t, 1, 0, &tr, &err) || cap_task_generate(&t, 1, 1, &te, &err) ||
            cap_train_and_eval(&c, &tr, &te, &o, &r, &err)) {
            fprintf(stderr, "bench_capability: %s\n", err.msg);
            return 1;
        }
        cap_dataset_free(&tr);
        cap_dataset_free(&te);
        double gf = r.flops / r.seconds / 1e9;
        printf("%-16s %8.3f %9.2f %10.0f %9.2f %7.0f%%\n", tok, r.accuracy, r.seconds, r.examples / r.seconds, gf, 100 * gf / mm);
        tot_s += r.seconds; tot_f += r.flops; tot_ex += r.examples;
    }
    printf("%-16s %8s %9.2f %10.0f %9.2f %7.0f%%\n", "suite", "", tot_s, tot_ex / tot_s, tot_f / tot_s / 1e9,
           100 * tot_f / tot_s / 1e9 / mm);
    printf("f32 matmul %dx%d (best of 128/256/512, trainer kernel, %d threads): %.2f GFLOP/s\n", mm_n, mm_n, threads, mm);
    printf("{\"bench\":\"capability\",\"genome\":\"%s\",\"threads\":%d,\"suite_seconds\":%.3f,\"examples_per_s\":%.1f,"
           "\"gflops\":%.3f,\"matmul_gflops\":%.3f,\"ratio\":%.3f}\n",
           genome, threads, tot_s, tot_ex / tot_s, tot_f / tot_s / 1e9, mm, tot_f / tot_s / 1e9 / mm);
    return 0;
}
