/* test_cluster.c - the Slurm executor (cluster/) against a real single-node
 * Slurm: Debian's slurmctld + slurmd + munged, started once for this file by
 * tests/helpers/slurm_local.sh in a temporary directory on free ports, and
 * stopped at the end (no process left).  Configured around (see the script):
 * proctrack/linuxproc + task/none (no delegated cgroups here), no slurmdbd
 * (it needs MySQL), hence no sacct: job states come from `squeue --json
 * --states=all`, which keeps finished jobs for MinJobAge (1 h here).
 *
 * Shown here: a job runs at all (sbatch); the job-file protocol (spec,
 * result, truncated/invalid/foreign results named by path); `starhil score
 * --executor slurm` gives the local executor's answer and is stored once; a
 * deterministic scorer failure is not retried; a job whose step is killed is
 * recorded with Slurm's state and resubmitted up to the limit; a results file
 * that is not JSON is a recorded failure naming the path; an scancel of a
 * running job is resubmitted and completes; a search with the Slurm executor
 * has the same front as with the local one; Ctrl-C cancels the run's jobs;
 * kill -9 of the coordinator then `search resume` trains nothing twice;
 * successive halving runs its rungs as jobs (training states passed on
 * through the results directory), survives kill -9 and ends as the local
 * executor does.
 *
 * The searches use a small `cmd:` scorer (sh + cksum, deterministic in the
 * genome) so each job takes well under a second; the built-in trainer runs in
 * jobs in the `starhil score` tests (tiny proxies) to keep the file fast. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "runs/runs.h"
#include "tests/helpers/devices_util.h"
#include "tests/helpers/search_proc.h"
#include "util/proc.h"

static char g_dir[512];        /* everything of this file */
static char g_slurm[600];      /* the cluster's directory */
static bool g_up;
static const char *g_bin;
static char g_scorer[700];     /* cmd: scorer script */

/* ---- helpers ----------------------------------------------------------------------- */
static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int run_script(const char *cmd, const char *dir)
{
    char root[600];
    const char *r = getenv("STARHIL_ROOT");
    snprintf(root, sizeof root, "%s/tests/helpers/slurm_local.sh", r ? r : ".");
    char *argv[] = {"sh", root, (char *)cmd, (char *)dir, NULL};
    return dt_run(argv);
}

static int setup(void **state)
{
    (void)state;
    g_bin = getenv("STARHIL_BIN");
    char *d = dt_mkdtemp("cluster");
    if (!d) return -1;
    snprintf(g_dir, sizeof g_dir, "%s", d);
    free(d);
    snprintf(g_slurm, sizeof g_slurm, "%s/slurm", g_dir);
    search_set_cwd(g_dir);   /* starhil writes report files into its cwd */
    g_up = run_script("start", g_slurm) == 0;
    if (g_up) {
        char conf[700];
        snprintf(conf, sizeof conf, "%s/slurm.conf", g_slurm);
        setenv("SLURM_CONF", conf, 1);
    } else {
        fprintf(stderr, "# slurm did not start (see %s/log)\n", g_slurm);
    }
    /* a deterministic cmd: scorer: a number from the checksum of the genome JSON */
    snprintf(g_scorer, sizeof g_scorer, "%s/scorer.sh", g_dir);
    dt_write_file(g_scorer,
                  "h=$(cksum | cut -d' ' -f1)\n"
                  "echo \"{\\\"q\\\": $((h % 997)).$((h % 7))}\"\n", 0644);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    run_script("stop", g_slurm);
    dt_rm_rf(g_dir);
    return 0;
}

static void path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", g_dir, name);
}

/* Runs starhil with args (NULL-terminated); returns the exit code, stdout in *out. */
static int starhil(char **out, const char *first, ...)
{
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)g_bin;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 63; a = va_arg(ap, const char *)) argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    char op[700], ep[700];
    path_in(op, sizeof op, "last.out");
    path_in(ep, sizeof ep, "last.err");
    int rc = search_run(argv, op, ep);
    if (out) *out = search_read_file(op);
    if (rc != 0) {
        char *e = search_read_file(ep);
        fprintf(stderr, "# starhil exit %d: %s\n", rc, e ? e : "");
        free(e);
    }
    return rc;
}

static sh_job_rec *jobs_of(const char *db_path, int *n)
{
    sh_db *db;
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(db_path, SH_DB_READONLY, &db, &err), 0);
    sh_job_rec *j;
    assert_int_equal(sh_db_job_list(db, 0, &j, n, &err), 0);
    sh_db_close(db);
    return j;
}

/* Writes an executable wrapper that stands for the starhil binary on the nodes. */
static void wrapper(const char *path, const char *body)
{
    char text[4096];
    snprintf(text, sizeof text, "#!/bin/sh\n# args: score --in-job SPEC --result RESULT\n%s\n", body);
    assert_int_equal(dt_write_file(path, text, 0755), 0);
}

static json_t *score_json(const char *out)
{
    json_error_t je;
    json_t *j = json_loads(out ? out : "", 0, &je);
    assert_non_null(j);
    return j;
}

#define TINY "--tasks", "mqar", "--size-factor", "0.05", "--scale", "0.015625", "--layers", "1", "--head-dim", "8", \
             "--threads", "1"

/* ---- a job runs at all ---------------------------------------------------------------------- */
static void test_sbatch_runs_a_job(void **state)
{
    (void)state;
    assert_true(g_up);
    char out[700];
    path_in(out, sizeof out, "hello.out");
    char arg[800];
    snprintf(arg, sizeof arg, "--output=%s", out);
    char *argv[] = {"sbatch", "--parsable", "--job-name=hello", arg, "--wrap", "echo hello from slurm", NULL};
    sh_proc_opts po = {.timeout_s = 60};
    sh_proc_result pr;
    sh_err err = {{0}};
    assert_int_equal(sh_proc_run(argv, &po, &pr, &err), 0);
    assert_int_equal(pr.exit_code, 0);
    assert_true(atoi(pr.out) > 0);
    sh_proc_result_free(&pr);
    char *text = NULL;
    for (int i = 0; i < 300 && !(text && strstr(text, "hello from slurm")); i++) {
        free(text);
        sleep_ms(100);
        text = search_read_file(out);
    }
    assert_non_null(text);
    assert_non_null(strstr(text, "hello from slurm"));
    free(text);
}

/* ---- the file protocol, without the cluster ------------------------------------------------------- */
static void test_job_files(void **state)
{
    (void)state;
    sh_genome g;
    sh_err err = {{0}};
    assert_int_equal(sh_preset_get("lfm2-350m", &g, &err), 0);
    sh_score_opts o;
    sh_score_opts_default(&o);
    o.tasks = "mqar";
    o.size_factor = 0.05;
    o.scale = 1.0 / 64;   /* lfm2-350m: proxy width 16 */
    o.max_layers = 1;
    o.head_dim = 8;
    char *params = sh_score_params_json(&g, "builtin", &o, &err);
    assert_non_null(params);
    char spec[700], res[700];
    path_in(spec, sizeof spec, "p.spec.json");
    path_in(res, sizeof res, "p.result.json");
    assert_int_equal(sh_job_spec_write(spec, &g, "builtin", &o, params, &err), 0);
    assert_int_equal(sh_job_run(spec, res, &err), SH_JOB_EXIT_OK);
    sh_score_rec r;
    bool det;
    assert_int_equal(sh_job_result_read(res, sh_genome_hash(&g), "builtin", SH_SCORER_BUILTIN_VERSION, params, &r, &det,
                                        &err), 0);
    assert_string_equal(r.status, "ok");
    /* the same as computing here */
    sh_score_rec here;
    assert_int_equal(sh_score_compute(&g, "builtin", &o, &here, &err), 0);
    assert_true(here.aggregate == r.aggregate);
    sh_score_rec_free(&here);
    sh_score_rec_free(&r);
    /* another question: refused */
    assert_int_equal(sh_job_result_read(res, sh_genome_hash(&g) ^ 1, "builtin", SH_SCORER_BUILTIN_VERSION, params, &r,
                                        &det, &err), -1);
    assert_non_null(strstr(err.msg, "another question"));
    assert_non_null(strstr(err.msg, res));
    /* truncated: not valid JSON, the path named */
    char *text = search_read_file(res);
    text[strlen(text) / 2] = 0;
    dt_write_file(res, text, 0644);
    free(text);
    assert_int_equal(sh_job_result_read(res, sh_genome_hash(&g), "builtin", SH_SCORER_BUILTIN_VERSION, params, &r, &det,
                                        &err), -1);
    assert_non_null(strstr(err.msg, "not valid JSON"));
    assert_non_null(strstr(err.msg, res));
    unlink(res);
    assert_int_equal(sh_job_result_read(res, sh_genome_hash(&g), "builtin", SH_SCORER_BUILTIN_VERSION, params, &r, &det,
                                        &err), -1);
    assert_non_null(strstr(err.msg, "missing"));
    assert_non_null(strstr(err.msg, res));
    /* a spec whose parameters this binary would compute differently: deterministic refusal */
    char *bad = search_read_file(spec);
    char *at = strstr(bad, "\"n_train\": ");
    assert_non_null(at);
    at[11] = '9';
    dt_write_file(spec, bad, 0644);
    free(bad);
    assert_int_equal(sh_job_run(spec, res, &err), SH_JOB_EXIT_DETERMINISTIC);
    assert_non_null(strstr(err.msg, "other score parameters"));
    free(params);

    /* settings: bad values are refused with the option named */
    sh_exec_opts x;
    sh_exec_opts_default(&x);
    assert_int_equal(sh_exec_parse_arg(&x, "--partition", "a b;rm", &err), -1);
    assert_non_null(strstr(err.msg, "--partition"));
    assert_int_equal(sh_exec_parse_arg(&x, "--sbatch-arg", "time=1", &err), -1);
    assert_int_equal(sh_exec_parse_arg(&x, "--results-dir", "/tmp/a%jb", &err), -1);
    assert_int_equal(sh_exec_parse_arg(&x, "--max-jobs", "0", &err), -1);
    assert_int_equal(sh_exec_parse_arg(&x, "--executor", "pbs", &err), -1);
    assert_int_equal(sh_exec_parse_arg(&x, "--tasks", "x", &err), 0);
    assert_int_equal(sh_exec_parse_arg(&x, "--executor", "slurm", &err), 1);
    assert_int_equal(sh_exec_check(&x, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "--results-dir"));
    /* the database inside the results directory is refused */
    char rd[700], dbp[800];
    path_in(rd, sizeof rd, "shared");
    snprintf(dbp, sizeof dbp, "%s/x.db", rd);
    assert_int_equal(sh_exec_parse_arg(&x, "--results-dir", rd, &err), 1);
    assert_int_equal(sh_exec_check(&x, dbp, &err), -1);
    assert_non_null(strstr(err.msg, "local disk"));
    /* round trip through the run configuration */
    assert_int_equal(sh_exec_parse_arg(&x, "--sbatch-arg", "--time=0:10:00", &err), 1);
    char *j = sh_exec_opts_to_json(&x);
    sh_exec_opts y;
    assert_int_equal(sh_exec_opts_from_json(j, &y, &err), 0);
    free(j);
    assert_int_equal(y.kind, SH_EXEC_SLURM);
    assert_int_equal(y.n_sbatch_args, 1);
    assert_string_equal(y.sbatch_args[0], "--time=0:10:00");
}

/* ---- starhil score --executor slurm --------------------------------------------------------------- */
static void test_score_same_as_local(void **state)
{
    (void)state;
    assert_true(g_up);
    char db1[700], db2[700], rd[700];
    path_in(db1, sizeof db1, "score-slurm.db");
    path_in(db2, sizeof db2, "score-local.db");
    path_in(rd, sizeof rd, "results");
    char *o1 = NULL, *o2 = NULL;
    assert_int_equal(starhil(&o1, "--db", db1, "score", "lfm2-350m", TINY, "--json", "--executor", "slurm",
                             "--results-dir", rd, "--poll-interval", "0.1", NULL), 0);
    assert_int_equal(starhil(&o2, "--db", db2, "score", "lfm2-350m", TINY, "--json", NULL), 0);
    json_t *a = score_json(o1), *b = score_json(o2);
    assert_string_equal(json_string_value(json_object_get(a, "status")), "ok");
    assert_true(json_real_value(json_object_get(a, "aggregate")) == json_real_value(json_object_get(b, "aggregate")));
    assert_true(json_equal(json_object_get(a, "scores"), json_object_get(b, "scores")));
    assert_true(json_equal(json_object_get(a, "params"), json_object_get(b, "params")));
    json_decref(a);
    json_decref(b);
    free(o1);
    free(o2);
    int n;
    sh_job_rec *j = jobs_of(db1, &n);
    assert_int_equal(n, 1);
    assert_string_equal(j[0].state, "ok");
    assert_string_equal(j[0].cluster_state, "COMPLETED");
    assert_int_equal(j[0].exit_code, 0);
    assert_true(atoi(j[0].job_id) > 0);
    sh_job_recs_free(j, n);
    /* asked again: the stored answer, no second job */
    assert_int_equal(starhil(&o1, "--db", db1, "score", "lfm2-350m", TINY, "--json", "--executor", "slurm",
                             "--results-dir", rd, NULL), 0);
    a = score_json(o1);
    assert_true(json_is_true(json_object_get(a, "cached")));
    json_decref(a);
    free(o1);
    j = jobs_of(db1, &n);
    assert_int_equal(n, 1);
    sh_job_recs_free(j, n);
}

static void test_deterministic_failure_not_retried(void **state)
{
    (void)state;
    assert_true(g_up);
    char db[700], rd[700];
    path_in(db, sizeof db, "det.db");
    path_in(rd, sizeof rd, "results");
    /* scale 1: the proxy would be LFM2-350M itself, above the trainer's parameter cap */
    assert_int_equal(starhil(NULL, "--db", db, "score", "lfm2-350m", "--tasks", "mqar", "--scale", "1",
                             "--executor", "slurm", "--results-dir", rd, "--poll-interval", "0.1",
                             "--max-attempts", "3", NULL), 1);
    int n;
    sh_job_rec *j = jobs_of(db, &n);
    assert_int_equal(n, 1);
    assert_string_equal(j[0].state, "failed");
    assert_string_equal(j[0].cluster_state, "FAILED");
    assert_int_equal(j[0].exit_code, SH_JOB_EXIT_DETERMINISTIC);
    assert_non_null(strstr(j[0].reason, "cap"));
    sh_job_recs_free(j, n);
}

static void test_killed_step_recorded_and_retried(void **state)
{
    (void)state;
    assert_true(g_up);
    char db[700], rd[700], w[700];
    path_in(db, sizeof db, "killed.db");
    path_in(rd, sizeof rd, "results");
    path_in(w, sizeof w, "killer.sh");
    wrapper(w, "kill -9 $$");
    assert_int_equal(starhil(NULL, "--db", db, "score", "lfm2-350m", TINY, "--executor", "slurm", "--results-dir", rd,
                             "--poll-interval", "0.1", "--max-attempts", "2", "--binary", w, NULL), 1);
    int n;
    sh_job_rec *j = jobs_of(db, &n);
    assert_int_equal(n, 2);
    assert_string_equal(j[0].state, "retry");
    assert_string_equal(j[1].state, "failed");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(j[i].attempt, i + 1);
        assert_string_equal(j[i].cluster_state, "FAILED");   /* Slurm's word for it */
        assert_non_null(strstr(j[i].reason, "FAILED (signal 9)"));
    }
    assert_string_not_equal(j[0].job_id, j[1].job_id);
    sh_job_recs_free(j, n);
    /* the score is stored failed, with the reason */
    char *out = NULL;
    sh_db *h;
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(db, SH_DB_READONLY, &h, &err), 0);
    sh_score_rec *s;
    int ns;
    assert_int_equal(sh_db_list_scores(h, NULL, &s, &ns, &err), 0);
    assert_int_equal(ns, 1);
    assert_string_equal(s[0].status, "failed");
    assert_non_null(strstr(s[0].error, "attempt 2 of 2"));
    sh_score_recs_free(s, ns);
    sh_db_close(h);
    free(out);
}

static void test_bad_results_file(void **state)
{
    (void)state;
    assert_true(g_up);
    char db[700], rd[700], w[700];
    path_in(db, sizeof db, "garbage.db");
    path_in(rd, sizeof rd, "results");
    path_in(w, sizeof w, "garbage.sh");
    wrapper(w, "printf '{\"format\": \"starhil-score-res' > \"$5\"");
    assert_int_equal(starhil(NULL, "--db", db, "score", "lfm2-350m", TINY, "--executor", "slurm", "--results-dir", rd,
                             "--poll-interval", "0.1", "--max-attempts", "1", "--binary", w, NULL), 1);
    int n;
    sh_job_rec *j = jobs_of(db, &n);
    assert_int_equal(n, 1);
    assert_string_equal(j[0].state, "failed");
    assert_string_equal(j[0].cluster_state, "COMPLETED");
    assert_non_null(strstr(j[0].reason, "not valid JSON"));
    assert_non_null(strstr(j[0].reason, j[0].result_path));
    sh_job_recs_free(j, n);
}

static void test_scancel_resubmits(void **state)
{
    (void)state;
    assert_true(g_up);
    char db[700], rd[700], w[700], body[1200];
    path_in(db, sizeof db, "scancel.db");
    path_in(rd, sizeof rd, "results");
    path_in(w, sizeof w, "slow.sh");
    char marker[700];
    path_in(marker, sizeof marker, "scancel.first");
    /* the first attempt waits to be cancelled; the next one runs at once */
    snprintf(body, sizeof body, "if [ ! -e '%s' ]; then touch '%s'; sleep 60; fi\nexec '%s' \"$@\"", marker, marker,
             g_bin);
    wrapper(w, body);
    char *argv[] = {(char *)g_bin, "--db", db, "score", "lfm2-350m", TINY, "--executor", "slurm", "--results-dir", rd,
                    "--poll-interval", "0.1", "--binary", w, NULL};
    char ep[700];
    path_in(ep, sizeof ep, "scancel.err");
    pid_t pid = search_spawn(argv, NULL, ep);
    assert_true(pid > 0);
    /* wait until the first attempt runs, then cancel it from outside */
    char job[32] = "";
    for (int i = 0; i < 600 && !job[0]; i++) {
        sleep_ms(100);
        struct stat st;
        if (stat(db, &st) != 0) continue;
        sh_db *h;
        sh_err err = {{0}};
        if (sh_db_open(db, SH_DB_READONLY, &h, &err) != 0) continue;
        sh_job_rec *j;
        int n;
        if (sh_db_job_list(h, 0, &j, &n, &err) == 0) {
            if (n > 0 && !strcmp(j[0].cluster_state, "RUNNING")) snprintf(job, sizeof job, "%s", j[0].job_id);
            sh_job_recs_free(j, n);
        }
        sh_db_close(h);
    }
    assert_true(job[0] != 0);
    char *sc[] = {"scancel", job, NULL};
    assert_int_equal(dt_run(sc), 0);
    assert_int_equal(search_wait(pid), 0);
    int n;
    sh_job_rec *j = jobs_of(db, &n);
    assert_int_equal(n, 2);
    assert_string_equal(j[0].state, "retry");
    assert_string_equal(j[0].cluster_state, "CANCELLED");
    assert_non_null(strstr(j[0].reason, "CANCELLED"));
    assert_string_equal(j[1].state, "ok");
    assert_string_equal(j[1].cluster_state, "COMPLETED");
    sh_job_recs_free(j, n);
}

/* A coordinator killed between writing an attempt's row and storing the job
 * id sbatch printed: the next coordinator finds the job by its name and
 * attaches to it (nothing trained twice); a row whose job never reached
 * Slurm is submitted again, recorded as such. */
static void test_crash_between_sbatch_and_store(void **state)
{
    (void)state;
    assert_true(g_up);
    char dbp[700], rd[700];
    path_in(dbp, sizeof dbp, "crash.db");
    path_in(rd, sizeof rd, "results-crash");
    sh_db *db;
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(dbp, SH_DB_CREATE, &db, &err), 0);
    sh_exec_opts x;
    sh_exec_opts_default(&x);
    assert_int_equal(sh_exec_parse_arg(&x, "--executor", "slurm", &err), 1);
    assert_int_equal(sh_exec_parse_arg(&x, "--results-dir", rd, &err), 1);
    assert_int_equal(sh_exec_parse_arg(&x, "--binary", g_bin, &err), 1);
    assert_int_equal(sh_exec_parse_arg(&x, "--poll-interval", "0.1", &err), 1);
    sh_cluster *c;
    assert_int_equal(sh_cluster_open(db, &x, 0, &c, &err), 0);   /* writes the batch script */
    sh_cluster_close(c);
    sh_genome g[2];
    assert_int_equal(sh_preset_get("lfm2-350m", &g[0], &err), 0);
    assert_int_equal(sh_preset_get("lfm2-700m", &g[1], &err), 0);
    sh_score_opts o;
    sh_score_opts_default(&o);
    o.tasks = "mqar";
    o.size_factor = 0.05;
    o.scale = 1.0 / 64;   /* lfm2-350m: proxy width 16 */
    o.max_layers = 1;
    o.head_dim = 8;
    int64_t rows[2];
    char manual_job[32] = "";
    for (int i = 0; i < 2; i++) {
        char *params = sh_score_params_json(&g[i], "builtin", &o, &err);
        assert_non_null(params);
        sh_job_rec j;
        memset(&j, 0, sizeof j);
        j.genome = sh_genome_hash(&g[i]);
        snprintf(j.scorer, sizeof j.scorer, "builtin");
        snprintf(j.version, sizeof j.version, "%s", SH_SCORER_BUILTIN_VERSION);
        snprintf(j.executor, sizeof j.executor, "slurm");
        snprintf(j.state, sizeof j.state, "submitting");
        snprintf(j.spec_path, sizeof j.spec_path, "%s/crash%d.spec.json", rd, i);
        snprintf(j.result_path, sizeof j.result_path, "%s/crash%d.result.json", rd, i);
        j.attempt = 1;
        assert_int_equal(sh_job_spec_write(j.spec_path, &g[i], "builtin", &o, params, &err), 0);
        assert_int_equal(sh_db_job_add(db, &j, params, &rows[i], &err), 0);
        free(params);
        if (i == 0) {   /* this one reached Slurm before the "crash" */
            char name[64], script[800], outp[800], hex[17];
            sh_hash_hex(j.genome, hex);
            snprintf(name, sizeof name, "--job-name=starhil-j%lld-%.8s", (long long)rows[i], hex);
            snprintf(script, sizeof script, "%s/starhil-job.sh", rd);
            snprintf(outp, sizeof outp, "--output=%s/crash%d.out", rd, i);
            char *argv[] = {"sbatch", "--parsable", name, outp, script, (char *)g_bin, j.spec_path,
                            j.result_path, NULL};
            sh_proc_opts po = {.timeout_s = 60};
            sh_proc_result pr;
            assert_int_equal(sh_proc_run(argv, &po, &pr, &err), 0);
            assert_int_equal(pr.exit_code, 0);
            snprintf(manual_job, sizeof manual_job, "%.*s", (int)strcspn(pr.out, ";\n"), pr.out);
            sh_proc_result_free(&pr);
        }
    }
    /* the next coordinator */
    assert_int_equal(sh_cluster_open(db, &x, 0, &c, &err), 0);
    for (int i = 0; i < 2; i++) assert_int_equal(sh_cluster_add(c, &g[i], "builtin", &o, NULL, &err), 0);
    int open = 2;
    for (int t = 0; t < 600 && open > 0; t++) {
        open = sh_cluster_step(c, NULL, NULL, &err);
        assert_true(open >= 0);
        if (open) sleep_ms(200);
    }
    assert_int_equal(open, 0);
    sh_cluster_counts k;
    sh_cluster_counts_get(c, &k);
    sh_cluster_close(c);
    sh_job_rec *j;
    int n;
    assert_int_equal(sh_db_job_list(db, 0, &j, &n, &err), 0);
    assert_int_equal(k.done, 2);
    assert_int_equal(k.resubmitted, 0);
    assert_int_equal(n, 3);
    assert_int_equal(j[0].id, rows[0]);
    assert_string_equal(j[0].state, "ok");
    assert_string_equal(j[0].job_id, manual_job);   /* attached, not submitted again */
    assert_int_equal(j[1].id, rows[1]);
    assert_string_equal(j[1].state, "cancelled");
    assert_non_null(strstr(j[1].reason, "never reached the scheduler"));
    assert_string_equal(j[2].state, "ok");
    assert_int_equal(j[2].attempt, 2);
    sh_job_recs_free(j, n);
    sh_db_close(db);
}

/* ---- searches ---------------------------------------------------------------------------------------- */
static char *front_of(const char *db)
{
    char *out = NULL;
    assert_int_equal(starhil(&out, "--db", db, "front", "1", "--json", NULL), 0);
    return out;
}

#define SEARCH_ARGS(scorer) "search", "--evaluator", "analytic", "--scorer", scorer, "--objectives", \
    "params,capability", "--budget", "6", "--population", "3", "--seed", "5", "--jobs", "1"

static void test_search_same_front(void **state)
{
    (void)state;
    assert_true(g_up);
    char db1[700], db2[700], rd[700], scorer[800];
    path_in(db1, sizeof db1, "search-slurm.db");
    path_in(db2, sizeof db2, "search-local.db");
    path_in(rd, sizeof rd, "results");
    snprintf(scorer, sizeof scorer, "cmd:sh %s", g_scorer);
    assert_int_equal(starhil(NULL, "--db", db1, SEARCH_ARGS(scorer), "--executor", "slurm", "--results-dir", rd,
                             "--max-jobs", "3", "--poll-interval", "0.1", NULL), 0);
    assert_int_equal(starhil(NULL, "--db", db2, SEARCH_ARGS(scorer), NULL), 0);
    char *f1 = front_of(db1), *f2 = front_of(db2);
    assert_non_null(strstr(f1, "capability"));
    assert_string_equal(f1, f2);
    free(f1);
    free(f2);
    int n;
    sh_job_rec *j = jobs_of(db1, &n);
    assert_true(n >= 3);
    for (int i = 0; i < n; i++) {
        assert_string_equal(j[i].state, "ok");
        assert_int_equal(j[i].run_id, 1);
    }
    sh_job_recs_free(j, n);
}

/* Waits until some job of the run is RUNNING; returns its count of rows. */
static int wait_running(const char *db)
{
    for (int i = 0; i < 600; i++) {
        sleep_ms(100);
        sh_db *h;
        sh_err err = {{0}};
        if (sh_db_open(db, SH_DB_READONLY, &h, &err) != 0) continue;
        sh_job_rec *j;
        int n, running = 0;
        if (sh_db_job_list(h, 0, &j, &n, &err) == 0) {
            for (int k = 0; k < n; k++) running += !strcmp(j[k].cluster_state, "RUNNING");
            sh_job_recs_free(j, n);
        }
        sh_db_close(h);
        if (running) return n;
    }
    return 0;
}

static void test_ctrl_c_cancels_jobs(void **state)
{
    (void)state;
    assert_true(g_up);
    char db[700], rd[700], w[700], body[1200], scorer[800];
    path_in(db, sizeof db, "ctrlc.db");
    path_in(rd, sizeof rd, "results");
    path_in(w, sizeof w, "slow2.sh");
    snprintf(body, sizeof body, "sleep 30\nexec '%s' \"$@\"", g_bin);
    wrapper(w, body);
    snprintf(scorer, sizeof scorer, "cmd:sh %s", g_scorer);
    char *argv[] = {(char *)g_bin, "--db", db, SEARCH_ARGS(scorer), "--executor", "slurm", "--results-dir", rd,
                    "--max-jobs", "2", "--poll-interval", "0.1", "--binary", w, NULL};
    pid_t pid = search_spawn(argv, NULL, NULL);
    assert_true(pid > 0);
    assert_true(wait_running(db) > 0);
    kill(pid, SIGINT);
    assert_int_equal(search_wait(pid), 0);
    int n;
    sh_job_rec *j = jobs_of(db, &n);
    assert_true(n >= 2);
    int cancelled = 0;
    for (int i = 0; i < n; i++) {
        assert_string_not_equal(j[i].state, "queued");
        assert_string_not_equal(j[i].state, "ok");
        cancelled += !strcmp(j[i].state, "cancelled");
    }
    assert_int_equal(cancelled, n);
    /* and Slurm says so too: none of them is still pending or running */
    char *argv2[] = {"squeue", "-h", "--states=PENDING,RUNNING", "-o", "%i", NULL};
    sh_proc_opts po = {.timeout_s = 60};
    sh_proc_result pr;
    sh_err err = {{0}};
    for (int tries = 0;; tries++) {
        assert_int_equal(sh_proc_run(argv2, &po, &pr, &err), 0);
        bool any = false;
        for (int i = 0; i < n; i++) {
            char needle[40];
            snprintf(needle, sizeof needle, "%s\n", j[i].job_id);
            if (pr.out && strstr(pr.out, needle)) any = true;
        }
        sh_proc_result_free(&pr);
        if (!any) break;
        assert_true(tries < 50);
        sleep_ms(200);
    }
    sh_job_recs_free(j, n);
    sh_db *h;
    assert_int_equal(sh_db_open(db, SH_DB_READONLY, &h, &err), 0);
    sh_run_rec r;
    assert_int_equal(sh_db_get_run(h, 1, &r, &err), 0);
    assert_string_equal(r.status, "stopped");
    sh_run_rec_free(&r);
    sh_db_close(h);
}

static void test_kill9_resume_trains_nothing_twice(void **state)
{
    (void)state;
    assert_true(g_up);
    char db[700], rd[700], w[700], body[1500], log[700], scorer[800];
    path_in(db, sizeof db, "kill9.db");
    path_in(rd, sizeof rd, "results");
    path_in(w, sizeof w, "counting.sh");
    path_in(log, sizeof log, "trained.log");
    /* every training is logged (its result file names genome and question) */
    snprintf(body, sizeof body, "echo \"$5\" >> '%s'\nsleep 1\nexec '%s' \"$@\"", log, g_bin);
    wrapper(w, body);
    snprintf(scorer, sizeof scorer, "cmd:sh %s", g_scorer);
    char *argv[] = {(char *)g_bin, "--db", db, SEARCH_ARGS(scorer), "--executor", "slurm", "--results-dir", rd,
                    "--max-jobs", "3", "--poll-interval", "0.1", "--binary", w, NULL};
    pid_t pid = search_spawn(argv, NULL, NULL);
    assert_true(pid > 0);
    assert_true(wait_running(db) > 0);
    kill(pid, SIGKILL);
    assert_int_equal(search_wait(pid), 128 + SIGKILL);
    sleep_ms(2500);   /* some jobs finish while nobody watches */
    assert_int_equal(starhil(NULL, "--db", db, "search", "resume", "1", NULL), 0);
    /* nothing trained twice: each (genome, question) once in the log, and
     * every attempt is the first and ended ok */
    char *text = search_read_file(log);
    assert_non_null(text);
    int lines = 0;
    for (char *p = text; (p = strchr(p, '\n')); p++) lines++;
    char *save = NULL;
    char **seen = calloc((size_t)lines + 1, sizeof *seen);
    int ns = 0;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        const char *g = strrchr(l, '/');
        assert_non_null(g);
        for (int i = 0; i < ns; i++) assert_string_not_equal(seen[i], g);
        seen[ns++] = (char *)g;
    }
    int n;
    sh_job_rec *j = jobs_of(db, &n);
    assert_int_equal(n, ns);
    for (int i = 0; i < n; i++) {
        assert_string_equal(j[i].state, "ok");
        assert_int_equal(j[i].attempt, 1);
    }
    sh_job_recs_free(j, n);
    free(seen);
    free(text);
    /* and the run is complete */
    char *f = front_of(db);
    assert_non_null(strstr(f, "capability"));
    free(f);
}

/* ---- successive halving on the cluster ------------------------------------------------------------ */
static const char *TINY_SPACE =
    "{\"name\":\"tiny\",\"vocab\":256,\"max_context\":256,\"layers\":{\"min\":2,\"max\":3},"
    "\"hidden\":{\"min\":64,\"max\":96,\"step\":32},\"head_dim\":32,"
    "\"mixers\":{\"conv\":{\"kernel\":3},\"gqa\":{\"heads\":2,\"kv_heads\":{\"min\":1,\"max\":2}}},"
    "\"channel_mixers\":{\"swiglu\":{\"width\":{\"min\":64,\"max\":128,\"step\":64}}}}";

/* 27 steps of 8 x 128 bytes at the top rung: 3 at rung 0, 9 at rung 1 */
#define HALVING_ARGS(space) "search", "--evaluator", "analytic", "--space", space, "--objectives", \
    "params,capability", "--scorer", "builtin", "--score-scale", "0.25", "--score-tokens", "27648", \
    "--score-halving", "--budget", "6", "--population", "6", "--seed", "5", "--jobs", "1"

/* Per search evaluation of run 1, sorted by genome: "genome rung ladder" (the
 * rung reached, then capability and continued-from step per rung). */
static char *halving_outcome(const char *db_path)
{
    sh_db *h;
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(db_path, SH_DB_READONLY, &h, &err), 0);
    sh_eval_rec *e;
    int n;
    assert_int_equal(sh_db_list_evals(h, 1, &e, &n, &err), 0);
    char lines[16][512];
    int nl = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(e[i].kind, "search")) continue;
        assert_string_equal(e[i].status, "ok");
        assert_true(nl < 16);
        json_t *r = json_loads(e[i].result_json, 0, NULL);
        assert_non_null(r);
        char hex[17];
        sh_hash_hex(e[i].genome, hex);
        int k = snprintf(lines[nl], sizeof lines[nl], "%s rung %lld:", hex,
                         (long long)json_integer_value(json_object_get(r, "capability_rung")));
        size_t idx;
        json_t *step;
        json_array_foreach(json_object_get(r, "capability_ladder"), idx, step)
            k += snprintf(lines[nl] + k, sizeof lines[nl] - (size_t)k, " %.17g@%lld",
                          json_number_value(json_object_get(step, "capability")),
                          (long long)json_integer_value(json_object_get(step, "continued_from_step")));
        json_decref(r);
        nl++;
    }
    sh_eval_recs_free(e, n);
    sh_db_close(h);
    for (int a = 1; a < nl; a++)   /* sort by genome */
        for (int b = a; b > 0 && strcmp(lines[b - 1], lines[b]) > 0; b--) {
            char t[512];
            memcpy(t, lines[b], sizeof t);
            memcpy(lines[b], lines[b - 1], sizeof t);
            memcpy(lines[b - 1], t, sizeof t);
        }
    char *out = calloc(16, 520);
    for (int i = 0; i < nl; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
    }
    return out;
}

static int files_in(const char *dir)
{
    char *argv[] = {"find", (char *)dir, "-type", "f", NULL};
    sh_proc_opts po = {.timeout_s = 30};
    sh_proc_result pr;
    sh_err err = {{0}};
    assert_int_equal(sh_proc_run(argv, &po, &pr, &err), 0);
    int n = 0;
    for (const char *p = pr.out ? pr.out : ""; (p = strchr(p, '\n')); p++) n++;
    sh_proc_result_free(&pr);
    return n;
}

/* `search --score-halving --executor slurm`: every rung a round of batch
 * jobs, promotions continuing the rung below's training state through the
 * shared results directory.  The coordinator is killed (-9) once the
 * promotions are in the cluster and resumed: nothing is trained twice, and
 * the run ends with the promoted set, ladders (capabilities and the steps
 * each rung continued from) and front of the local executor for the same
 * seed; no training state is left behind. */
static void test_halving_on_cluster(void **state)
{
    (void)state;
    assert_true(g_up);
    char space[700], dbl[700], dbs[700], rd[700], sdl[700], w[700], body[1500], log[700], sdir[800];
    path_in(space, sizeof space, "tiny.json");
    path_in(dbl, sizeof dbl, "halving-local.db");
    path_in(dbs, sizeof dbs, "halving-slurm.db");
    path_in(rd, sizeof rd, "results-halving");
    path_in(sdl, sizeof sdl, "states-local");
    path_in(w, sizeof w, "counting-halving.sh");
    path_in(log, sizeof log, "trained-halving.log");
    snprintf(sdir, sizeof sdir, "%s/cap-state", rd);
    assert_int_equal(dt_write_file(space, TINY_SPACE, 0644), 0);
    assert_int_equal(starhil(NULL, "--db", dbl, HALVING_ARGS(space), "--score-state-dir", sdl, NULL), 0);
    /* every job is logged by its result file (genome, question incl. the rung, attempt) */
    snprintf(body, sizeof body, "echo \"$5\" >> '%s'\nsleep 1\nexec '%s' \"$@\"", log, g_bin);
    wrapper(w, body);
    char *argv[] = {(char *)g_bin, "--db", dbs, HALVING_ARGS(space), "--executor", "slurm", "--results-dir", rd,
                    "--max-jobs", "3", "--poll-interval", "0.1", "--binary", w, NULL};
    pid_t pid = search_spawn(argv, NULL, NULL);
    assert_true(pid > 0);
    /* kill once a promotion (a 7th job: rung 0 has 6) runs in the cluster */
    bool promoted_running = false;
    for (int i = 0; i < 900 && !promoted_running; i++) {
        sleep_ms(100);
        sh_db *h;
        sh_err err = {{0}};
        if (sh_db_open(dbs, SH_DB_READONLY, &h, &err) != 0) continue;
        sh_job_rec *j;
        int n;
        if (sh_db_job_list(h, 0, &j, &n, &err) == 0) {
            for (int k = 6; k < n; k++) promoted_running |= !strcmp(j[k].cluster_state, "RUNNING");
            sh_job_recs_free(j, n);
        }
        sh_db_close(h);
    }
    assert_true(promoted_running);
    kill(pid, SIGKILL);
    assert_int_equal(search_wait(pid), 128 + SIGKILL);
    sleep_ms(1500);   /* the promoted job finishes while nobody watches */
    assert_int_equal(starhil(NULL, "--db", dbs, "search", "resume", "1", NULL), 0);
    /* nothing trained twice: each job's result file once, every attempt the first and ok */
    char *text = search_read_file(log);
    assert_non_null(text);
    char *seen[32];
    int ns = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        const char *g = strrchr(l, '/');
        assert_non_null(g);
        for (int i = 0; i < ns; i++) assert_string_not_equal(seen[i], g);
        assert_true(ns < 32);
        seen[ns++] = (char *)g;
    }
    assert_int_equal(ns, 6 + 2 + 1);   /* rung 0: all 6; rung 1: the best third (2); rung 2: 1 */
    int n, ok = 0;
    sh_job_rec *j = jobs_of(dbs, &n);
    for (int i = 0; i < n; i++) {
        if (!strcmp(j[i].state, "ok")) {
            ok++;
            continue;
        }
        /* the only other row allowed: a submission the kill cut off before sbatch answered */
        assert_string_equal(j[i].state, "cancelled");
        assert_non_null(strstr(j[i].reason, "never reached the scheduler"));
    }
    assert_int_equal(ok, ns);
    sh_job_recs_free(j, n);
    free(text);
    /* the local executor's promotions, ladders and front */
    char *ol = halving_outcome(dbl), *os = halving_outcome(dbs);
    assert_non_null(strstr(ol, "rung 2: "));
    assert_non_null(strstr(ol, "@2 "));   /* rung 1 continued from rung 0's decay start (step 2) */
    assert_string_equal(os, ol);
    free(ol);
    free(os);
    char *fl = front_of(dbl), *fs = front_of(dbs);
    assert_non_null(strstr(fl, "capability"));
    assert_string_equal(fs, fl);
    free(fl);
    free(fs);
    /* the training states went through the shared directory and none is left */
    struct stat st;
    assert_int_equal(stat(sdir, &st), 0);
    assert_int_equal(files_in(sdir), 0);
    assert_int_equal(files_in(sdl), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sbatch_runs_a_job),
        cmocka_unit_test(test_job_files),
        cmocka_unit_test(test_score_same_as_local),
        cmocka_unit_test(test_deterministic_failure_not_retried),
        cmocka_unit_test(test_killed_step_recorded_and_retried),
        cmocka_unit_test(test_bad_results_file),
        cmocka_unit_test(test_scancel_resubmits),
        cmocka_unit_test(test_crash_between_sbatch_and_store),
        cmocka_unit_test(test_search_same_front),
        cmocka_unit_test(test_ctrl_c_cancels_jobs),
        cmocka_unit_test(test_kill9_resume_trains_nothing_twice),
        cmocka_unit_test(test_halving_on_cluster),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
