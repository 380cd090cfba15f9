/* test_devices.c - the devices module with real parts: this host, qemu-aarch64,
 * a real OpenSSH sshd on 127.0.0.1, the real adb server (host services), an
 * adb protocol peer thread for device services (no phone is attached here, so
 * a thread in this test plays the phone's side of the adb server protocol),
 * real SQLite run databases, and the measurement protocol with its faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evaluator/runtime/rt_procstat.h"   /* header only: the variant's /proc/stat reader */
#include "devices/adb.h"
#include "devices/device.h"
#include "measure/measure.h"
#include "measure/profile.h"
#include "evaluator/build.h"
#include "helpers/devices_util.h"
#include "runs/runs.h"
#include "util/proc.h"

#define TINY "d=64 v=256 hd=32 theta=10000 eps=1e-05 ctx=256 tie=1 | conv(3)/swiglu(64) gqa(2,1)/swiglu(64)"
#define TINY2 "d=64 v=256 hd=32 theta=10000 eps=1e-05 ctx=256 tie=1 | conv(3)/swiglu(128)*2"
#define TINY3 "d=64 v=256 hd=32 theta=10000 eps=1e-05 ctx=256 tie=1 | gqa(2,2)/swiglu(64)*2"

static int run_cliv(const char *db, char **out, const char *const *args);

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void genome_of(const char *text, sh_genome *g, char hex[17])
{
    sh_err err = {{0}};
    assert_int_equal(sh_genome_parse(text, g, &err), 0);
    sh_hash_hex(sh_genome_hash(g), hex);
}

static sh_db *open_test_db(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/runs.db", dir);
    sh_db *db = NULL;
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(path, SH_DB_CREATE, &db, &err), 0);
    return db;
}

static void add_device(sh_db *db, sh_device_rec *rec)
{
    sh_err err = {{0}};
    rec->healthy = true;
    if (sh_db_add_device(db, rec, &err)) fail_msg("add device: %s", err.msg);
}

/* ---- pure helpers ------------------------------------------------------------- */

/* The result JSON stored for evaluation id (what the measurement record's
 * writer wrote), parsed; fails the test if the row is missing. */
static json_t *stored_result(sh_db *db, int64_t id)
{
    sh_eval_rec e;
    sh_err err = {{0}};
    if (sh_db_get_eval(db, id, &e, &err) != 0) fail_msg("evaluation %lld: %s", (long long)id, err.msg);
    json_t *j = json_loads(e.result_json ? e.result_json : "", 0, NULL);
    sh_eval_rec_free(&e);
    return j;
}

static void test_shell_quote_hostile(void **state)
{
    (void)state;
    const char *hostile[] = {
        "", "plain", "it's", "'", "''", "\\'", "$(touch /tmp/starhil-pwned)", "`id`", "a b\tc\nd",
        "; rm -rf / ;", "\"double\"", "$HOME ${PATH}", "*?[a-z]", "-n", "\\", "end\\", "'; echo x; '",
        "caf\xc3\xa9 \xe2\x98\x83", "|&<>(){}!#~", NULL};
    for (int i = 0; hostile[i]; i++) {
        char q[512];
        assert_true(sh_shell_quote(hostile[i], q, sizeof q) > 0);
        char cmd[700];
        snprintf(cmd, sizeof cmd, "printf %%s %s", q);
        char *argv[] = {"/bin/sh", "-c", cmd, NULL};
        sh_proc_result r;
        sh_err err = {{0}};
        assert_int_equal(sh_proc_run(argv, NULL, &r, &err), 0);
        assert_true(r.exited && r.exit_code == 0);
        assert_string_equal(r.out, hostile[i]);
        sh_proc_result_free(&r);
    }
    struct stat st;
    assert_int_not_equal(stat("/tmp/starhil-pwned", &st), 0);
    char tiny[4];
    assert_int_equal(sh_shell_quote("abcdef", tiny, sizeof tiny), -1);
    /* join: every argument stays one word */
    char *args[] = {"printf", "[%s]", "a b", "it's", "$(x)", NULL};
    sh_err err = {{0}};
    char *line = sh_shell_join(NULL, args, 4096, &err);
    assert_non_null(line);
    char *argv[] = {"/bin/sh", "-c", line, NULL};
    sh_proc_result r;
    assert_int_equal(sh_proc_run(argv, NULL, &r, &err), 0);
    assert_string_equal(r.out, "[a b][it's][$(x)]");
    sh_proc_result_free(&r);
    free(line);
}

static void test_names_and_cpulists(void **state)
{
    (void)state;
    sh_err err = {{0}};
    assert_int_equal(sh_device_name_check("pixel-8_pro.2", &err), 0);
    assert_int_not_equal(sh_device_name_check("", &err), 0);
    assert_int_not_equal(sh_device_name_check("a b", &err), 0);
    assert_non_null(strstr(err.msg, "0x20"));
    assert_int_not_equal(sh_device_name_check("-rf", &err), 0);
    assert_int_not_equal(sh_device_name_check("x;reboot", &err), 0);
    assert_int_not_equal(sh_device_name_check("../etc", &err), 0);
    char long_name[80];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    assert_int_not_equal(sh_device_name_check(long_name, &err), 0);

    char mask[64];
    assert_int_equal(sh_cpulist_mask_hex("4-7", mask, sizeof mask, &err), 0);
    assert_string_equal(mask, "f0");
    assert_int_equal(sh_cpulist_mask_hex("0-3,6", mask, sizeof mask, &err), 0);
    assert_string_equal(mask, "4f");
    assert_int_equal(sh_cpulist_mask_hex("8", mask, sizeof mask, &err), 0);
    assert_string_equal(mask, "100");
    bool set[1024];
    int n;
    assert_int_equal(sh_cpulist_parse("0,2-3", set, &n, &err), 0);
    assert_int_equal(n, 3);
    const char *bad[] = {"", "3-1", "a", "1,,2", "2000", "1-", "0;reboot", NULL};
    for (int i = 0; bad[i]; i++) assert_int_not_equal(sh_cpulist_parse(bad[i], set, &n, &err), 0);
}

static void test_median_ci_order_statistics(void **state)
{
    (void)state;
    /* published ranks of the 95% distribution-free CI of a median:
     * n=10 -> (2, 9), n=100 -> (40, 61) */
    double x[100];
    for (int i = 0; i < 100; i++) x[i] = 100 - i;   /* reversed: must sort */
    double m, lo, hi;
    assert_int_equal(sh_median_ci(x, 100, &m, &lo, &hi), 0);
    assert_true(fabs(m - 50.5) < 1e-9);
    assert_true(fabs(lo - 40) < 1e-9);
    assert_true(fabs(hi - 61) < 1e-9);
    assert_int_equal(sh_median_ci(x + 90, 10, &m, &lo, &hi), 0);   /* values 10..1 */
    assert_true(fabs(lo - 2) < 1e-9 && fabs(hi - 9) < 1e-9);
    assert_true(fabs(m - 5.5) < 1e-9);
    assert_int_equal(sh_median_ci(x, 3, &m, &lo, &hi), 0);          /* tiny: [min, max] */
    assert_true(fabs(lo - 98) < 1e-9 && fabs(hi - 100) < 1e-9 && fabs(m - 99) < 1e-9);
    assert_int_equal(sh_median_ci(x, 0, &m, &lo, &hi), -1);
    /* how often those intervals cover the median: [min, max] of 3 only 75%
     * (1 - 2/2^3), of 6 96.9%; ranks (2, 9) of 10: 1 - 2 P(B(10, 1/2) <= 1) */
    assert_true(fabs(sh_median_ci_coverage(3) - 0.75) < 1e-12);
    assert_true(fabs(sh_median_ci_coverage(5) - 0.9375) < 1e-12);
    assert_true(fabs(sh_median_ci_coverage(6) - (1 - 2.0 / 64)) < 1e-12);
    assert_true(fabs(sh_median_ci_coverage(10) - (1 - 2 * 11.0 / 1024)) < 1e-12);
    for (int k = 6; k <= 400; k++) assert_true(sh_median_ci_coverage(k) >= 0.95);
    assert_true(sh_median_ci_coverage(0) == 0);
    /* a large sample: the CI narrows around the median */
    int n = 20001;
    double *big = malloc((size_t)n * sizeof *big);
    for (int i = 0; i < n; i++) big[i] = i;
    assert_int_equal(sh_median_ci(big, n, &m, &lo, &hi), 0);
    assert_true(fabs(m - 10000) < 1e-9);
    assert_true(lo < m && hi > m && hi - lo < 300 && hi - lo > 200);   /* ~ 2*1.96*sqrt(n)/2 = 277 */
    free(big);
}

static const char *VALID_BENCH =
    "{\"mode\":\"bench\",\"genome_hash\":\"0123456789abcdef\",\"build\":{\"target\":\"x\"},\"cpu\":{\"n_cpus\":2},"
    "\"settings\":{},\"prefill_tok_s\":100,\"decode_tok_s\":50,\"ttft_ms\":12.5,\"prefill_ms\":[10,11],"
    "\"decode_ms\":{\"median\":20,\"p90\":21,\"samples\":[19,20,21]},\"peak_rss_bytes\":1000,"
    "\"weight_bytes\":1,\"kv_bytes\":2,\"conv_state_bytes\":3,"
    "\"share\":{\"prefill\":{\"conv\":0.1,\"attention\":0.1,\"swiglu\":0.5,\"moe\":0,\"head\":0.3},"
    "\"decode\":{\"conv\":0.1,\"attention\":0.2,\"swiglu\":0.4,\"moe\":0,\"head\":0.3}}}";

static void expect_bench_error(const char *text, const char *needle)
{
    sh_bench_out b;
    sh_err err = {{0}};
    assert_int_not_equal(sh_bench_parse(text, strlen(text), &b, &err), 0);
    if (!strstr(err.msg, needle)) fail_msg("error '%s' does not mention '%s'", err.msg, needle);
}

static char *replace(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    assert_non_null(p);
    char *out = malloc(strlen(s) + strlen(to) + 1);
    sprintf(out, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
    return out;
}

static void test_bench_parse_hostile(void **state)
{
    (void)state;
    sh_bench_out b;
    sh_err err = {{0}};
    assert_int_equal(sh_bench_parse(VALID_BENCH, strlen(VALID_BENCH), &b, &err), 0);
    assert_int_equal(b.n_decode, 3);
    assert_int_equal(b.reps, 2);
    assert_string_equal(b.genome_hash, "0123456789abcdef");
    assert_true(fabs(b.share_decode[2] - 0.4) < 1e-12);
    sh_bench_out_free(&b);

    expect_bench_error("", "empty");
    expect_bench_error("not json", "not valid JSON");
    expect_bench_error("[1,2]", "not a JSON object");
    char *t;
    t = malloc(strlen(VALID_BENCH) + 10); sprintf(t, "%s{}", VALID_BENCH);
    expect_bench_error(t, "not valid JSON"); free(t);                       /* trailing data */
    t = replace(VALID_BENCH, "\"decode_tok_s\":50", "\"decode_tok_s\":\"50\"");
    expect_bench_error(t, "decode_tok_s"); free(t);
    t = replace(VALID_BENCH, "\"ttft_ms\":12.5", "\"ttft_ms\":-1");
    expect_bench_error(t, "ttft_ms"); free(t);
    t = replace(VALID_BENCH, "\"samples\":[19,20,21]", "\"samples\":[19,\"x\",21]");
    expect_bench_error(t, "samples"); free(t);
    t = replace(VALID_BENCH, "\"samples\":[19,20,21]", "\"samples\":[]");
    expect_bench_error(t, "samples"); free(t);
    t = replace(VALID_BENCH, "\"mode\":\"bench\"", "\"mode\":\"probe\"");
    expect_bench_error(t, "mode"); free(t);
    t = replace(VALID_BENCH, "0123456789abcdef", "0123456789abcdeg");
    expect_bench_error(t, "genome_hash"); free(t);
    t = replace(VALID_BENCH, "\"kv_bytes\":2,", "");
    expect_bench_error(t, "kv_bytes"); free(t);
    t = replace(VALID_BENCH, "\"kv_bytes\":2,", "\"kv_bytes\":2,\"kv_bytes\":3,");
    expect_bench_error(t, "not valid JSON"); free(t);                       /* duplicate key */
    t = replace(VALID_BENCH, "\"swiglu\":0.4", "\"swiglu\":7");
    expect_bench_error(t, "swiglu"); free(t);
    t = replace(VALID_BENCH, "\"prefill_ms\":[10,11]", "\"prefill_ms\":{}");
    expect_bench_error(t, "prefill_ms"); free(t);
    /* the per-repetition state; its "steal" is optional (older variants), checked when present */
    const char *st = "\"state\":[{\"wall_s\":1,\"wait_s\":0,\"other_cpus\":0,\"procs_running\":1,\"load1\":0,"
                     "\"freq_khz\":-1,\"temp_mc\":-1,\"steal\":0.25},{\"wall_s\":1,\"wait_s\":0,\"other_cpus\":0,"
                     "\"procs_running\":1,\"load1\":0,\"freq_khz\":-1,\"temp_mc\":-1}],\"peak_rss_bytes\"";
    t = replace(VALID_BENCH, "\"peak_rss_bytes\"", st);
    assert_int_equal(sh_bench_parse(t, strlen(t), &b, &err), 0);
    assert_int_equal(b.n_state, 2);
    assert_true(b.state[0].steal == 0.25 && b.state[1].steal == -1);
    sh_bench_out_free(&b);
    char *t2 = replace(t, "\"steal\":0.25", "\"steal\":\"high\"");
    expect_bench_error(t2, "steal"); free(t2);
    t2 = replace(t, "\"steal\":0.25", "\"steal\":-3");
    expect_bench_error(t2, "steal"); free(t2);
    t2 = replace(t, "\"steal\":0.25", "\"steal\":1e300");
    expect_bench_error(t2, "steal"); free(t2);
    free(t);
    /* oversized output is refused before parsing */
    size_t big = SH_BENCH_MAX_JSON + 16;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[big] = '\0';
    assert_int_not_equal(sh_bench_parse(huge, big, &b, &err), 0);
    assert_non_null(strstr(err.msg, "allowed"));
    free(huge);
}

static void test_probe_parse(void **state)
{
    (void)state;
    const char *ok = "{\"mode\":\"probe\",\"machine\":\"aarch64\",\"model\":\"X4\",\"n_cpus\":8,"
                     "\"cpus\":[{\"id\":7,\"online\":true,\"max_khz\":3300000,\"cur_khz\":1000,\"junk\":[1]}],"
                     "\"clusters\":[{\"max_khz\":3300000,\"cpus\":[7]}],\"thermal\":[{\"zone\":\"z\",\"type\":\"cpu\",\"millicelsius\":40000}],"
                     "\"freqs_khz\":[1000],\"extra\":{\"a\":1}}";
    char *out = NULL;
    sh_err err = {{0}};
    assert_int_equal(sh_probe_parse(ok, strlen(ok), &out, &err), 0);
    assert_non_null(strstr(out, "\"max_khz\":3300000"));
    assert_null(strstr(out, "junk"));
    assert_null(strstr(out, "extra"));
    free(out);
    const char *bad[] = {
        "{\"mode\":\"bench\"}",
        "{\"mode\":\"probe\",\"n_cpus\":\"8\"}",
        "{\"mode\":\"probe\",\"cpus\":[{\"id\":\"zero\"}]}",
        "{\"mode\":\"probe\",\"clusters\":[{\"cpus\":[-1]}]}",
        "{\"mode\":\"probe\",\"thermal\":7}",
        "{\"mode\":\"probe\"",
        NULL};
    for (int i = 0; bad[i]; i++) {
        assert_int_not_equal(sh_probe_parse(bad[i], strlen(bad[i]), &out, &err), 0);
        assert_null(out);
    }
}

/* ---- local and qemu-aarch64 devices -------------------------------------------------- */

static void test_local_device_ops(void **state)
{
    (void)state;
    char *dir = dt_mkdtemp("local");
    sh_device_rec rec = {0};
    snprintf(rec.name, sizeof rec.name, "here");
    snprintf(rec.kind, sizeof rec.kind, "local");
    snprintf(rec.workdir, sizeof rec.workdir, "%s", dir);
    snprintf(rec.cpus, sizeof rec.cpus, "0");
    sh_device *d;
    sh_err err = {{0}};
    assert_int_equal(sh_device_open(&rec, &d, &err), 0);
    assert_string_equal(d->target, sh_host_triple());
    char src[600], remote[2048], back[600];
    snprintf(src, sizeof src, "%s/in.txt", dir);
    snprintf(back, sizeof back, "%s/back.txt", dir);
    assert_int_equal(dt_write_file(src, "payload 123\n", 0644), 0);
    assert_int_equal(sh_device_push(d, src, "f.txt", remote, sizeof remote, &err), 0);
    assert_non_null(strstr(remote, dir));                    /* private dir inside the base */
    assert_int_not_equal(sh_device_push(d, src, "../escape", remote, sizeof remote, &err), 0);
    sh_dev_result r;
    char *cat[] = {"cat", "f.txt", NULL};
    assert_int_equal(sh_device_run(d, cat, 10, &r, &err), 0);
    assert_true(r.exited && r.exit_code == 0);
    assert_string_equal(r.out, "payload 123\n");
    sh_dev_result_free(&r);
    /* pinned to cpu 0 through hwloc */
    char *aff[] = {"grep", "Cpus_allowed_list", "/proc/self/status", NULL};
    assert_int_equal(sh_device_run(d, aff, 10, &r, &err), 0);
    assert_non_null(strstr(r.out, "\t0\n"));
    sh_dev_result_free(&r);
    char *slow[] = {"sleep", "5", NULL};
    assert_int_equal(sh_device_run(d, slow, 0.3, &r, &err), 0);
    assert_true(r.timed_out);
    assert_true(r.seconds < 3);
    sh_dev_result_free(&r);
    char *crash[] = {"sh", "-c", "echo dying >&2; kill -SEGV $$", NULL};
    assert_int_equal(sh_device_run(d, crash, 10, &r, &err), 0);
    assert_int_equal(r.signal, SIGSEGV);
    assert_non_null(strstr(r.err, "dying"));
    sh_dev_result_free(&r);
    assert_int_equal(sh_device_fetch(d, remote, back, &err), 0);
    char *got = dt_read_file(back, NULL);
    assert_string_equal(got, "payload 123\n");
    free(got);
    char workdir[1024];
    snprintf(workdir, sizeof workdir, "%s", d->workdir);
    char *topo = NULL;
    assert_int_equal(sh_device_describe(d, &topo, &err), 0);
    json_t *t = json_loads(topo, 0, NULL);
    assert_true(json_integer_value(json_object_get(t, "n_cpus")) >= 1);
    assert_true(json_array_size(json_object_get(t, "clusters")) >= 1);
    assert_true(json_integer_value(json_object_get(t, "mem_total_bytes")) > 0);
    json_decref(t);
    free(topo);
    sh_device_close(d);
    struct stat st;
    assert_int_not_equal(stat(workdir, &st), 0);              /* cleanup removed it */
    dt_rm_rf(dir);
    free(dir);
}

static void test_qemu_aarch64_hello(void **state)
{
    (void)state;
    char *dir = dt_mkdtemp("qemu");
    char src[600], exe[600];
    snprintf(src, sizeof src, "%s/hello.c", dir);
    snprintf(exe, sizeof exe, "%s/hello", dir);
    assert_int_equal(dt_write_file(src,
        "#include <stdio.h>\n#include <sys/utsname.h>\n"
        "int main(int c, char **v) { struct utsname u; uname(&u); printf(\"%s %s\\n\", u.machine, c > 1 ? v[1] : \"\");"
        " fprintf(stderr, \"to stderr\\n\"); return 3; }\n", 0644), 0);
    char *cc[] = {"aarch64-linux-gnu-gcc", "-static", "-O1", "-o", exe, src, NULL};
    assert_int_equal(dt_run(cc), 0);
    sh_device_rec rec = {0};
    snprintf(rec.name, sizeof rec.name, "emu");
    snprintf(rec.kind, sizeof rec.kind, "qemu-aarch64");
    sh_device *d;
    sh_err err = {{0}};
    assert_int_equal(sh_device_open(&rec, &d, &err), 0);
    assert_string_equal(d->target, "aarch64-linux-gnu");
    char remote[2048];
    assert_int_equal(sh_device_push(d, exe, "hello", remote, sizeof remote, &err), 0);
    char *argv[] = {remote, "it's me", NULL};
    sh_dev_result r;
    assert_int_equal(sh_device_run(d, argv, 30, &r, &err), 0);
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 3);
    assert_string_equal(r.out, "aarch64 it's me\n");
    assert_non_null(strstr(r.err, "to stderr"));
    sh_dev_result_free(&r);
    sh_device_close(d);
    dt_rm_rf(dir);
    free(dir);
}

/* ---- measurement protocol on the local device with a scripted variant ------------------------ */

static void test_measure_ok_cached_and_samples(void **state)
{
    (void)state;
    char *dir = dt_mkdtemp("meas");
    sh_db *db = open_test_db(dir);
    sh_genome g;
    char hex[17], exe[600];
    genome_of(TINY, &g, hex);
    snprintf(exe, sizeof exe, "%s/variant", dir);
    assert_int_equal(dt_fake_variant(exe, hex, "ok", NULL, 10.0, 0), 0);
    sh_measure_opts o = {.exe_path = exe, .prompt = 16, .gen = 8, .min_reps = 3, .max_reps = 12,
                         .reps_per_run = 3, .tolerance = 0.02};
    sh_mrecord r;
    sh_err err = {{0}};
    if (sh_measure_genome(db, "local", &g, &o, &r, &err)) fail_msg("measure: %s", err.msg);   /* 'local' is implicit */
    assert_false(r.cached);
    assert_true(r.converged);
    assert_true(fabs(r.decode_ms_median - 10.0) < 0.1);
    assert_true(r.decode_ci_low <= r.decode_ms_median && r.decode_ci_high >= r.decode_ms_median);
    assert_true(r.reps >= 3);
    assert_true(fabs(r.decode_tok_s - 100.0) < 1.0);
    assert_true(fabs(r.prefill_tok_s - 1000.0) < 5);          /* 16 tokens in ~16 ms */
    assert_true(r.weight_bytes == 4096 && r.kv_bytes == 512 && r.conv_state_bytes == 256);
    json_t *res = stored_result(db, r.eval_id);
    assert_non_null(res);
    json_t *pb = json_object_get(res, "probe_before");
    assert_true(json_is_object(pb));
    assert_null(json_object_get(json_array_get(json_object_get(pb, "cpus"), 0), "evil"));
    assert_true(json_is_object(json_object_get(res, "probe_after")));
    json_decref(res);
    /* every raw sample is stored and the summary agrees with them */
    double *v = NULL;
    int n = 0;
    assert_int_equal(sh_db_get_samples(db, r.eval_id, "decode_ms", &v, &n, &err), 0);
    assert_int_equal(n, r.reps * 8);
    double m, lo, hi;
    sh_median_ci(v, n, &m, &lo, &hi);
    assert_true(fabs(m - r.decode_ms_median) < 1e-9);
    free(v);
    assert_int_equal(sh_db_get_samples(db, r.eval_id, "prefill_ms", &v, &n, &err), 0);
    assert_int_equal(n, r.reps);
    free(v);
    int64_t id = r.eval_id;
    sh_mrecord_free(&r);
    /* same settings again: returned from the store, not measured (the variant is gone) */
    unlink(exe);
    assert_int_equal(sh_measure_genome(db, "local", &g, &o, &r, &err), 0);
    assert_true(r.cached);
    assert_int_equal(r.eval_id, id);
    assert_true(fabs(r.decode_ms_median - 10.0) < 0.1);
    sh_mrecord_free(&r);
    sh_eval_rec e;
    assert_int_equal(sh_db_get_eval(db, id, &e, &err), 0);
    assert_string_equal(e.status, "ok");
    assert_int_equal(e.attempts, 1);
    sh_eval_rec_free(&e);
    sh_measure_shutdown();
    sh_db_close(db);
    dt_rm_rf(dir);
    free(dir);
}

/* One thread on a board of two equal-ranked CPUs of which one is slower (as
 * the vCPUs of issue 18's VM were): each CPU gets one turn, then the faster
 * one takes every later invocation, and the estimate comes from its
 * repetitions alone; the result says what each CPU gave. */
static void test_measure_pins_in_turn_then_fastest(void **state)
{
    (void)state;
    char *dir = dt_mkdtemp("meas");
    sh_db *db = open_test_db(dir);
    sh_genome g;
    char hex[17], exe[600], marker[600];
    genome_of(TINY, &g, hex);
    snprintf(exe, sizeof exe, "%s/variant", dir);
    snprintf(marker, sizeof marker, "%s/cpus.log", dir);
    assert_int_equal(dt_fake_variant(exe, hex, "twocpus", marker, 10.0, 0), 0);
    /* 9 quiet repetitions needed: CPU 0, CPU 1, then CPU 0 twice more */
    sh_measure_opts o = {.exe_path = exe, .prompt = 16, .gen = 8, .min_reps = 9, .max_reps = 12,
                         .reps_per_run = 3, .tolerance = 0.02, .threads = 1};
    sh_mrecord r;
    sh_err err = {{0}};
    if (sh_measure_genome(db, "local", &g, &o, &r, &err)) fail_msg("measure: %s", err.msg);
    assert_true(r.converged);
    assert_int_equal(r.invocations, 4);
    assert_string_equal(r.stability, "quiet");
    assert_true(fabs(r.decode_ms - 10.0) < 0.1);              /* CPU 0's, not the 16 ms of CPU 1 */
    assert_true(r.decode_ms_median > 10.0);                   /* every token, both CPUs */
    char *log = dt_read_file(marker, NULL);
    assert_non_null(log);
    assert_int_equal(strncmp(log, "0\n1\n", 4), 0);          /* one turn each, in order */
    for (const char *p = log + 4; *p; p += 2) assert_int_equal(strncmp(p, "0\n", 2), 0);   /* then the fastest */
    int invocations = (int)(strlen(log) / 2);
    free(log);
    assert_int_equal(invocations, r.invocations);
    json_t *groups = json_loads(r.cpu_groups_json, 0, NULL);
    assert_int_equal(json_array_size(groups), 2);
    json_t *g0 = json_array_get(groups, 0), *g1 = json_array_get(groups, 1);
    assert_string_equal(json_string_value(json_object_get(g0, "cpus")), "0");
    assert_true(json_is_true(json_object_get(g0, "used")) && json_is_false(json_object_get(g1, "used")));
    assert_int_equal(json_integer_value(json_object_get(g1, "reps")), 3);
    assert_true(fabs(json_number_value(json_object_get(g1, "decode_ms")) - 16.0) < 0.2);
    json_decref(groups);
    double *v = NULL;
    int n = 0;
    assert_int_equal(sh_db_get_samples(db, r.eval_id, "rep_cpu_group", &v, &n, &err), 0);
    assert_int_equal(n, r.reps);
    assert_true(v[0] == 0 && v[3] == 1 && v[6] == 0 && v[n - 1] == 0);
    free(v);
    sh_mrecord_free(&r);
    sh_measure_shutdown();
    sh_db_close(db);
    dt_rm_rf(dir);
    free(dir);
}

/* Each fault: retried `retries` times, then failed with a clear reason, no samples, no ok. */
static void expect_fault(const char *behaviour, const char *needle, double timeout_s)
{
    char *dir = dt_mkdtemp("fault");
    sh_db *db = open_test_db(dir);
    sh_genome g;
    char hex[17], exe[600];
    genome_of(TINY, &g, hex);
    snprintf(exe, sizeof exe, "%s/variant", dir);
    assert_int_equal(dt_fake_variant(exe, hex, behaviour, NULL, 10.0, 30), 0);
    sh_measure_opts o = {.exe_path = exe, .prompt = 16, .gen = 8, .retries = 1, .backoff_s = 0.05,
                         .timeout_s = timeout_s, .no_probe = true};
    sh_mrecord r;
    sh_err err = {{0}};
    assert_int_not_equal(sh_measure_genome(db, "local", &g, &o, &r, &err), 0);
    if (!strstr(err.msg, needle)) fail_msg("%s: error '%s' lacks '%s'", behaviour, err.msg, needle);
    sh_eval_rec e;
    assert_int_equal(sh_db_get_eval(db, r.eval_id, &e, &err), 0);
    assert_string_equal(e.status, "failed");
    assert_int_equal(e.attempts, 2);                          /* first try + 1 retry */
    assert_non_null(e.error);
    assert_non_null(strstr(e.error, needle));
    assert_null(e.result_json);
    sh_eval_rec_free(&e);
    double *v = NULL;
    int n = -1;
    assert_int_equal(sh_db_get_samples(db, r.eval_id, "decode_ms", &v, &n, &err), 0);
    assert_int_equal(n, 0);
    free(v);
    sh_device_rec dev;
    assert_int_equal(sh_db_get_device(db, "local", &dev, &err), 0);
    assert_int_equal(dev.fail_count, 1);
    assert_true(dev.healthy);
    sh_device_rec_free(&dev);
    sh_measure_shutdown();
    sh_db_close(db);
    dt_rm_rf(dir);
    free(dir);
}

static void test_measure_faults(void **state)
{
    (void)state;
    expect_fault("crash", "signal 11", 30);
    expect_fault("crash", "about to crash", 30);           /* the tail of stderr is kept */
    expect_fault("oom", "signal 9", 30);
    expect_fault("garbage", "not valid JSON", 30);
    expect_fault("huge", "larger than", 30);
    expect_fault("wronghash", "genome hash 00000000deadbeef", 30);
    expect_fault("hang", "timed out", 0.5);

    /* refused input (exit 1): stored as failed at once, not retried, not the device's fault */
    char *dir = dt_mkdtemp("badin");
    sh_db *db = open_test_db(dir);
    sh_genome g;
    char hex[17], exe[600];
    genome_of(TINY, &g, hex);
    snprintf(exe, sizeof exe, "%s/variant", dir);
    assert_int_equal(dt_fake_variant(exe, hex, "badinput", NULL, 10.0, 0), 0);
    sh_measure_opts o = {.exe_path = exe, .prompt = 16, .gen = 8, .retries = 3, .no_probe = true};
    sh_mrecord r;
    sh_err err = {{0}};
    assert_int_not_equal(sh_measure_genome(db, "local", &g, &o, &r, &err), 0);
    assert_non_null(strstr(err.msg, "too deep"));
    sh_eval_rec e;
    assert_int_equal(sh_db_get_eval(db, r.eval_id, &e, &err), 0);
    assert_string_equal(e.status, "failed");
    assert_int_equal(e.attempts, 1);
    sh_eval_rec_free(&e);
    sh_device_rec dev;
    assert_int_equal(sh_db_get_device(db, "local", &dev, &err), 0);
    assert_int_equal(dev.fail_count, 0);
    sh_device_rec_free(&dev);
    /* settings the genome cannot hold are refused before anything runs */
    o.depth = 1000;   /* TINY has ctx=256 */
    assert_int_not_equal(sh_measure_genome(db, "local", &g, &o, &r, &err), 0);
    assert_non_null(strstr(err.msg, "max context"));
    sh_measure_shutdown();
    sh_db_close(db);
    dt_rm_rf(dir);
    free(dir);
}

static void test_measure_flaky_retry_and_health(void **state)
{
    (void)state;
    char *dir = dt_mkdtemp("flaky");
    sh_db *db = open_test_db(dir);
    sh_genome g, g2, g3;
    char hex[17], hex2[17], hex3[17], exe[600], marker[600];
    genome_of(TINY, &g, hex);
    genome_of(TINY2, &g2, hex2);
    genome_of(TINY3, &g3, hex3);
    snprintf(exe, sizeof exe, "%s/variant", dir);
    snprintf(marker, sizeof marker, "%s/marker", dir);
    assert_int_equal(dt_fake_variant(exe, hex, "flaky", marker, 10.0, 0), 0);
    sh_measure_opts o = {.exe_path = exe, .prompt = 16, .gen = 8, .retries = 2, .backoff_s = 0.05,
                         .no_probe = true};
    sh_mrecord r;
    sh_err err = {{0}};
    if (sh_measure_genome(db, "local", &g, &o, &r, &err)) fail_msg("flaky: %s", err.msg);
    sh_eval_rec e;
    assert_int_equal(sh_db_get_eval(db, r.eval_id, &e, &err), 0);
    assert_string_equal(e.status, "ok");
    assert_int_equal(e.attempts, 2);
    sh_eval_rec_free(&e);
    sh_mrecord_free(&r);

    /* a device that keeps failing is marked unhealthy and then refused */
    sh_device_rec rec = {0};
    snprintf(rec.name, sizeof rec.name, "sick");
    snprintf(rec.kind, sizeof rec.kind, "local");
    add_device(db, &rec);
    assert_int_equal(dt_fake_variant(exe, hex, "crash", NULL, 10.0, 0), 0);
    o.retries = -1;
    const sh_genome *gs[3] = {&g, &g2, &g3};
    for (int i = 0; i < SH_DEVICE_MAX_FAILS; i++) {
        assert_int_not_equal(sh_measure_genome(db, "sick", gs[i], &o, &r, &err), 0);
    }
    sh_device_rec got;
    assert_int_equal(sh_db_get_device(db, "sick", &got, &err), 0);
    assert_false(got.healthy);
    assert_int_equal(got.fail_count, SH_DEVICE_MAX_FAILS);
    sh_device_rec_free(&got);
    assert_int_not_equal(sh_measure_genome(db, "sick", &g, &o, &r, &err), 0);
    assert_non_null(strstr(err.msg, "unhealthy"));
    assert_int_not_equal(sh_measure_genome(db, "no-such", &g, &o, &r, &err), 0);
    assert_non_null(strstr(err.msg, "no device named"));
    assert_int_not_equal(sh_measure_genome(db, "bad name;", &g, &o, &r, &err), 0);
    /* a failed evaluation is measured again later (it is not an ok result to reuse) */
    assert_int_equal(dt_fake_variant(exe, hex2, "crash", NULL, 10.0, 0), 0);
    assert_int_not_equal(sh_measure_genome(db, "local", &g2, &o, &r, &err), 0);
    int64_t failed_id = r.eval_id;
    assert_int_equal(dt_fake_variant(exe, hex2, "ok", NULL, 10.0, 0), 0);
    if (sh_measure_genome(db, "local", &g2, &o, &r, &err)) fail_msg("re-measure: %s", err.msg);
    assert_int_equal(r.eval_id, failed_id);
    assert_false(r.cached);
    sh_mrecord_free(&r);
    assert_int_equal(sh_db_get_eval(db, failed_id, &e, &err), 0);
    assert_string_equal(e.status, "ok");
    assert_null(e.error);
    sh_eval_rec_free(&e);
    sh_measure_shutdown();
    sh_db_close(db);
    dt_rm_rf(dir);
    free(dir);
}

static void test_measure_reference_every_k(void **state)
{
    (void)state;
    char *dir = dt_mkdtemp("ref");
    sh_db *db = open_test_db(dir);
    sh_genome ref, a, b, c;
    char hr[17], ha[17], hb[17], hc[17];
    genome_of(TINY, &ref, hr);
    genome_of(TINY2, &a, ha);
    genome_of(TINY3, &b, hb);
    genome_of("d=64 v=256 hd=32 theta=10000 eps=1e-05 ctx=256 tie=1 | conv(4)/swiglu(64)*2", &c, hc);
    sh_err err = {{0}};
    int64_t run_id;
    assert_int_equal(sh_db_create_run(db, "refrun", "{}", 1, &run_id, &err), 0);
    const sh_genome *gs[3] = {&a, &b, &c};
    const char *hs[3] = {ha, hb, hc};
    char exer[600];
    snprintf(exer, sizeof exer, "%s/v-%s", dir, hr);
    assert_int_equal(dt_fake_variant(exer, hr, "ok", NULL, 10.0, 0), 0);
    for (int i = 0; i < 3; i++) {
        char exe[600];
        snprintf(exe, sizeof exe, "%s/v-%s", dir, hs[i]);
        assert_int_equal(dt_fake_variant(exe, hs[i], "ok", NULL, 20.0, 0), 0);
        sh_measure_opts o = {.exe_path = exe, .reference_exe_path = exer, .prompt = 16, .gen = 8,
                             .run_id = run_id, .no_probe = true, .reference = &ref, .reference_every = 2};
        sh_mrecord r;
        if (sh_measure_genome(db, "local", gs[i], &o, &r, &err)) fail_msg("measure: %s", err.msg);
        assert_true(fabs(r.rel_to_reference - 2.0) < 0.02);     /* 20 ms vs the reference's 10 ms */
        json_t *res = stored_result(db, r.eval_id);
        json_t *ref_j = json_object_get(res, "reference");
        assert_string_equal(json_string_value(json_object_get(ref_j, "genome_hash")), hr);
        json_decref(res);
        sh_mrecord_free(&r);
    }
    /* evaluations 0 and 2 were preceded by a reference measurement */
    sh_eval_rec *evs;
    int n;
    assert_int_equal(sh_db_list_evals(db, run_id, &evs, &n, &err), 0);
    int refs = 0, meas = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(evs[i].kind, "reference")) refs++;
        if (!strcmp(evs[i].kind, "measure")) meas++;
        assert_string_equal(evs[i].status, "ok");
        sh_eval_rec_free(&evs[i]);
    }
    free(evs);
    assert_int_equal(refs, 2);
    assert_int_equal(meas, 3);
    sh_measure_shutdown();
    sh_db_close(db);
    dt_rm_rf(dir);
    free(dir);
}

/* The reference drift tests' board: a run, the reference genome (its
 * variant replays one recorded token shape, median 0.5 ms, times a factor
 * the test sets: the board's speed) and two candidates (fixed 20 and 30 ms
 * per token), measured with the reference before every candidate. */
typedef struct drift_board {
    char *dir;
    sh_db *db;
    int64_t run_id;
    sh_genome ref, a, b;
    char hr[17], ha[17], hb[17];
    char exer[600], cnt[600], exea[600], exeb[600];
    sh_measure_opts o;
} drift_board;

#define DRIFT_SHAPE "0.787 0.573 0.486 0.514 0.434 0.414 0.363 0.544"   /* median 0.5 */

static void drift_board_open(drift_board *d, const char *name, const char *factor)
{
    memset(d, 0, sizeof *d);
    d->dir = dt_mkdtemp(name);
    d->db = open_test_db(d->dir);
    genome_of(TINY, &d->ref, d->hr);
    genome_of(TINY2, &d->a, d->ha);
    genome_of(TINY3, &d->b, d->hb);
    sh_err err = {{0}};
    assert_int_equal(sh_db_create_run(d->db, name, "{}", 1, &d->run_id, &err), 0);
    snprintf(d->exer, sizeof d->exer, "%s/ref", d->dir);
    snprintf(d->cnt, sizeof d->cnt, "%s/ref.count", d->dir);
    snprintf(d->exea, sizeof d->exea, "%s/a", d->dir);
    snprintf(d->exeb, sizeof d->exeb, "%s/b", d->dir);
    assert_int_equal(dt_replay_variant(d->exer, d->hr, DRIFT_SHAPE, factor, 0, d->cnt), 0);
    assert_int_equal(dt_fake_variant(d->exea, d->ha, "ok", NULL, 20.0, 0), 0);
    assert_int_equal(dt_fake_variant(d->exeb, d->hb, "ok", NULL, 30.0, 0), 0);
    d->o = (sh_measure_opts){.reference_exe_path = d->exer, .prompt = 16, .gen = 8, .run_id = d->run_id,
                             .no_probe = true, .reference = &d->ref, .reference_every = 1, .settle_rounds = 1,
                             .settle_max_s = 0.05, .backoff_s = 0.01};
}

/* Measures g with its variant exe on the board (the reference first, as the
 * options say); fails the test with what if it cannot. */
static void drift_measure(drift_board *d, const sh_genome *g, const char *exe, sh_mrecord *r, const char *what)
{
    sh_err err = {{0}};
    d->o.exe_path = exe;
    if (sh_measure_genome(d->db, "local", g, &d->o, r, &err)) fail_msg("%s: %s", what, err.msg);
}

/* The board's speed from now on: the reference's token times times factor. */
static void drift_board_speed(drift_board *d, const char *factor)
{
    assert_int_equal(dt_replay_variant(d->exer, d->hr, DRIFT_SHAPE, factor, 0, d->cnt), 0);
}

static void drift_board_close(drift_board *d)
{
    sh_measure_shutdown();
    sh_db_close(d->db);
    dt_rm_rf(d->dir);
    free(d->dir);
}

/* Reference drift (issue 18): the reference genome is measured before every
 * candidate (--every 1).  Its variant replays one recorded token shape; the
 * "board" then slows it by 30% (a clock or bandwidth drift the CPU-wait
 * readings cannot see).  The drifted reference is stored unstable with the
 * drift and its size in the reason; a candidate measured while the latest
 * reference is unstable is doubtful too, waits, has the reference measured
 * again and, still drifting, is stored unstable saying why; once the board
 * is back, asking again measures both again and the quiet figures replace
 * the unstable candidate in place. */
static void test_measure_reference_drift(void **state)
{
    (void)state;
    static drift_board d;
    drift_board_open(&d, "drift", "1.0");
    sh_db *db = d.db;
    sh_genome *a = &d.a, *b = &d.b;
    char *exea = d.exea, *exeb = d.exeb;
    int64_t run_id = d.run_id;
    sh_err err = {{0}};
    sh_mrecord r;

    /* a steady board: the first reference is quiet, so is the candidate */
    drift_measure(&d, a, exea, &r, "measure a");
    assert_string_equal(r.stability, "quiet");
    assert_true(fabs(r.rel_to_reference - 40.0) < 0.5);       /* 20 ms against 0.5 ms */
    sh_mrecord_free(&r);
    sh_eval_rec ref0;
    assert_int_equal(sh_db_latest_eval(db, run_id, "local", "reference", true, &ref0, &err), 0);
    assert_string_equal(ref0.stability, "quiet");

    /* the board drifts: the reference runs 30% slower */
    drift_board_speed(&d, "1.3");
    drift_measure(&d, b, exeb, &r, "measure b");
    int64_t b_id = r.eval_id;
    assert_string_equal(r.stability, "unstable");
    if (!strstr(r.reason, "reference genome unstable") ||
        !strstr(r.reason, "drift: reference at 0.65 ms, +30.0% against its last quiet value 0.5 ms"))
        fail_msg("reason: %s", r.reason);
    assert_int_equal(r.rounds, 2);
    assert_true(r.quiet_reps >= 3);            /* the candidate itself ran undisturbed */
    sh_mrecord_free(&r);
    sh_eval_rec ref1;
    assert_int_equal(sh_db_latest_eval(db, run_id, "local", "reference", false, &ref1, &err), 0);
    assert_true(ref1.id != ref0.id);
    assert_string_equal(ref1.status, "ok");
    assert_string_equal(ref1.stability, "unstable");
    assert_non_null(ref1.stability_reason);
    char want[64];
    snprintf(want, sizeof want, "(evaluation %lld)", (long long)ref0.id);
    assert_non_null(strstr(ref1.stability_reason, "drift"));
    assert_non_null(strstr(ref1.stability_reason, want));     /* against the last quiet reference */
    sh_eval_rec_free(&ref1);

    /* the board is back: the unstable candidate is not an answer; asked
     * again, the reference is quiet again and the candidate's quiet figure
     * replaces its unstable one in place */
    drift_board_speed(&d, "1.0");
    drift_measure(&d, b, exeb, &r, "measure b again");
    assert_false(r.cached);
    assert_int_equal(r.eval_id, b_id);
    assert_string_equal(r.stability, "quiet");
    assert_true(fabs(r.rel_to_reference - 60.0) < 0.5);
    sh_mrecord_free(&r);
    sh_eval_rec ref2;
    assert_int_equal(sh_db_latest_eval(db, run_id, "local", "reference", false, &ref2, &err), 0);
    assert_string_equal(ref2.stability, "quiet");
    sh_eval_rec_free(&ref2);
    sh_eval_rec_free(&ref0);
    drift_board_close(&d);
}

/* Drift counts one way (issue 18): the board is slow at the start (the
 * reference replays 30% slower), so the first reference and the candidate
 * measured after it are quiet at the slow level.  Then the board is back:
 * the next reference runs 23% faster than the quiet one before it.  That is
 * not drift (interference only adds time): it is stored quiet and becomes
 * the value later references are judged by, and the candidate measured on
 * the slower board is marked unstable with the reason (column and result
 * JSON), so asking for it again measures it again.  A reference slower than
 * the new value is still drift.  Judged both ways, every reference after a
 * slow first one was "drift" and no candidate was ever trusted again. */
static void test_measure_reference_speedup_marks_earlier(void **state)
{
    (void)state;
    static drift_board d;
    drift_board_open(&d, "speedup", "1.3");
    sh_db *db = d.db;
    sh_genome *a = &d.a, *b = &d.b;
    char *exea = d.exea, *exeb = d.exeb;
    int64_t run_id = d.run_id;
    sh_err err = {{0}};
    sh_mrecord r;

    /* a slow board from the start: nothing to compare with yet */
    drift_measure(&d, a, exea, &r, "measure a");
    assert_string_equal(r.stability, "quiet");
    int64_t a_id = r.eval_id;
    sh_mrecord_free(&r);

    /* the board is back: the reference runs 23% faster */
    drift_board_speed(&d, "1.0");
    drift_measure(&d, b, exeb, &r, "measure b");
    assert_string_equal(r.stability, "quiet");
    assert_int_equal(r.rounds, 1);
    assert_true(fabs(r.rel_to_reference - 60.0) < 0.5);
    int64_t b_id = r.eval_id;
    sh_mrecord_free(&r);
    sh_eval_rec ref1;
    assert_int_equal(sh_db_latest_eval(db, run_id, "local", "reference", false, &ref1, &err), 0);
    assert_string_equal(ref1.stability, "quiet");
    json_t *rj = stored_result(db, ref1.id);
    json_t *su = json_object_get(rj, "reference_sped_up");
    assert_non_null(su);
    assert_int_equal(json_integer_value(json_object_get(su, "marked")), 1);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(su, "marked_ids"), 0)), a_id);
    assert_true(fabs(json_number_value(json_object_get(su, "from_ms")) - 0.65) < 1e-3);
    json_decref(rj);
    /* the candidate measured on the slower board, in the column and the JSON */
    sh_eval_rec ea;
    assert_int_equal(sh_db_get_eval(db, a_id, &ea, &err), 0);
    assert_string_equal(ea.stability, "unstable");
    if (!ea.stability_reason || !strstr(ea.stability_reason, "ran 23.1% faster (0.5 ms) than the quiet reference "
                                                            "before it (0.65 ms"))
        fail_msg("reason: %s", ea.stability_reason ? ea.stability_reason : "(none)");
    json_t *aj = json_loads(ea.result_json, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(aj, "stability")), "unstable");
    assert_string_equal(json_string_value(json_object_get(aj, "stability_reason")), ea.stability_reason);
    json_decref(aj);
    sh_eval_rec_free(&ea);
    sh_eval_rec eb;   /* measured after the faster reference: left alone */
    assert_int_equal(sh_db_get_eval(db, b_id, &eb, &err), 0);
    assert_string_equal(eb.stability, "quiet");
    sh_eval_rec_free(&eb);

    /* slower than the new value is drift, as before */
    sh_genome c4;
    char hc[17], exec4[600];
    genome_of("d=64 v=256 hd=32 theta=10000 eps=1e-05 ctx=256 tie=1 | conv(3)/swiglu(192)", &c4, hc);
    snprintf(exec4, sizeof exec4, "%s/c", d.dir);
    assert_int_equal(dt_fake_variant(exec4, hc, "ok", NULL, 25.0, 0), 0);
    drift_board_speed(&d, "1.3");
    drift_measure(&d, &c4, exec4, &r, "measure c");
    assert_string_equal(r.stability, "unstable");
    if (!strstr(r.reason, "drift: reference at 0.65 ms, +30.0% against its last quiet value 0.5 ms"))
        fail_msg("reason: %s", r.reason);
    sh_mrecord_free(&r);

    /* the board is back; asked again, the marked candidate is measured
     * again, in place, and is quiet */
    drift_board_speed(&d, "1.0");
    drift_measure(&d, a, exea, &r, "measure a again");
    assert_false(r.cached);
    assert_int_equal(r.eval_id, a_id);
    assert_string_equal(r.stability, "quiet");
    assert_true(fabs(r.rel_to_reference - 40.0) < 0.5);
    sh_mrecord_free(&r);
    sh_eval_rec_free(&ref1);
    drift_board_close(&d);
}

/* One step of the normalized board: the board at `speed` (the reference's
 * token times times it), genome g's variant replaying the shape times
 * `scale`; its measurement is quiet, decode_ms want_ms and the normalized
 * figure want_norm, against the anchor 0.5 ms. */
static void normalized_step(drift_board *d, const char *speed, const sh_genome *g, const char *exe, const char *hash,
                            const char *scale, const char *cnt, double want_ms, double want_norm)
{
    drift_board_speed(d, speed);
    assert_int_equal(dt_replay_variant(exe, hash, DRIFT_SHAPE, scale, 0, cnt), 0);
    sh_mrecord r;
    drift_measure(d, g, exe, &r, "measure");
    assert_string_equal(r.stability, "quiet");
    assert_true(fabs(r.decode_ms - want_ms) < 0.01);
    assert_true(fabs(r.decode_ms_normalized - want_norm) < 0.01);
    assert_true(fabs(r.reference_anchor_ms - 0.5) < 1e-6);
    sh_mrecord_free(&r);
}

/* Normalized by the reference (issue 18): the board's own speed wanders
 * (a VM's by 10-15% over minutes, in steps each within the drift tolerance),
 * and a candidate measured on a slower board is slower by the same factor as
 * the reference measured before it.  Each reference reading carries the
 * anchor (the first trusted reading, 0.5 ms here), also through an in-place
 * re-measurement, and each candidate stores decode_ms x anchor / reference:
 * the same figure on every board speed, while decode_ms moves with it.
 * --drift-tol (drift_tol) sets when a slower reference is drift. */
static void test_measure_normalized_by_reference(void **state)
{
    (void)state;
    static drift_board d;
    drift_board_open(&d, "normalized", "1.0");
    sh_err err = {{0}};
    sh_mrecord r;
    char exea[600], cnta[600], exeb[600], cntb[600], exec4[600], cntc[600], hc[17];
    snprintf(exea, sizeof exea, "%s/ra", d.dir);
    snprintf(cnta, sizeof cnta, "%s/ra.count", d.dir);
    snprintf(exeb, sizeof exeb, "%s/rb", d.dir);
    snprintf(cntb, sizeof cntb, "%s/rb.count", d.dir);
    snprintf(exec4, sizeof exec4, "%s/rc", d.dir);
    snprintf(cntc, sizeof cntc, "%s/rc.count", d.dir);
    sh_genome c4;
    genome_of("d=64 v=256 hd=32 theta=10000 eps=1e-05 ctx=256 tie=1 | conv(3)/swiglu(192)", &c4, hc);
    /* candidates slowed by the board like the reference: a 20 ms, b 30 ms, c 20 ms on the first board */
    assert_int_equal(dt_replay_variant(exea, d.ha, DRIFT_SHAPE, "40", 0, cnta), 0);
    drift_measure(&d, &d.a, exea, &r, "measure a");
    assert_string_equal(r.stability, "quiet");
    assert_true(fabs(r.decode_ms - 20) < 0.01);
    assert_true(fabs(r.reference_anchor_ms - 0.5) < 1e-6);
    assert_true(fabs(r.decode_ms_normalized - 20) < 0.01);
    assert_true(r.decode_ms_normalized_low <= r.decode_ms_normalized &&
                r.decode_ms_normalized <= r.decode_ms_normalized_high);
    json_t *res = stored_result(d.db, r.eval_id);
    assert_true(fabs(json_number_value(json_object_get(res, "decode_ms_normalized")) - 20) < 0.01);
    assert_true(fabs(json_number_value(json_object_get(json_object_get(res, "reference"), "factor")) - 1) < 1e-6);
    json_decref(res);
    sh_mrecord_free(&r);

    /* the board 8% slower: within the drift tolerance, so quiet; decode_ms
     * moves with the board, the normalized figure does not */
    normalized_step(&d, "1.08", &d.b, exeb, d.hb, "64.8", cntb, 32.4, 30);
    sh_eval_rec ref;
    assert_int_equal(sh_db_latest_eval(d.db, d.run_id, "local", "reference", false, &ref, &err), 0);
    res = json_loads(ref.result_json, 0, NULL);
    assert_true(fabs(json_number_value(json_object_get(res, "decode_ms")) - 0.54) < 1e-6);
    assert_true(fabs(json_number_value(json_object_get(res, "reference_anchor_ms")) - 0.5) < 1e-6);
    json_decref(res);
    sh_eval_rec_free(&ref);

    /* 15.7% slower than the last quiet reading: drift by default, not with a
     * tolerance of 20% (measure --drift-tol 0.2) */
    d.o.drift_tol = 0.2;
    normalized_step(&d, "1.25", &c4, exec4, hc, "50", cntc, 25, 20);

    /* measured again in place (--force), the reference too: its row keeps
     * the anchor its previous reading carried */
    d.o.force = true;
    for (int k = 0; k < 2; k++) normalized_step(&d, "1.1", &d.a, exea, d.ha, "44", cnta, 22, 20);
    int refs = 0;
    assert_int_equal(sh_db_count_ok_evals(d.db, d.run_id, "local", "reference", &refs, &err), 0);
    assert_int_equal(refs, 4);      /* the last reading replaced its row's first */
    drift_board_close(&d);
}

/* The scales of a replaying variant on a board whose speed changes from one
 * bench invocation to the next (3 repetitions each): invocation i runs at
 * board[i] (the last entry from then on), the variant's own token times
 * times base. */
static void paired_scales(char *out, size_t cap, double base, const double *board, int n_board, int invocations)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < invocations; i++)
        for (int r = 0; r < 3; r++)
            len += (size_t)snprintf(out + len, cap - len, "%s%.6g", len ? " " : "",
                                    base * board[i < n_board ? i : n_board - 1]);
}

/* The paired reference (issue 18, measure --paired): the board's speed
 * changes between bench invocations, as a shared host's did by 5-8% between
 * readings 30 s apart (docs/devices.md).  A reference row read before the
 * candidate cannot follow that; paired, each invocation of the candidate
 * runs beside one of the reference at the same board speed, in alternating
 * order, so every per-pair ratio is the genomes' true ratio (40) and the
 * normalized figure is exactly anchor x 40 = 20 ms however the board moved.
 * The candidate and the reference replay their shapes under one shared
 * invocation counter, so the schedule below is the board's.  Then the board
 * slows 30% for the whole measurement: the normalized figure still holds,
 * but the reference measured beside the candidate shows the drift, so the
 * measured figure is stored unstable with that reason; once the board is
 * back, asking again measures again and a quiet result replaces it. */
static void test_measure_paired_reference(void **state)
{
    (void)state;
    static drift_board d;
    drift_board_open(&d, "paired", "1.0");
    static char ref_scales[4096], cand_scales[4096];
    /* invocation 0: the reference row (the anchor, 0.5 ms); then pairs
     * (1,2), (3,4), (5,6) ... at 1.0, 1.08, 1.0, 1.08 ... of the board */
    double board[24];
    board[0] = 1.0;
    for (int i = 1; i < 24; i++) board[i] = ((i - 1) / 2) % 2 ? 1.08 : 1.0;
    paired_scales(ref_scales, sizeof ref_scales, 1.0, board, 24, 24);
    paired_scales(cand_scales, sizeof cand_scales, 40.0, board, 24, 24);
    assert_int_equal(dt_replay_variant(d.exer, d.hr, DRIFT_SHAPE, ref_scales, 0, d.cnt), 0);
    assert_int_equal(dt_replay_variant(d.exea, d.ha, DRIFT_SHAPE, cand_scales, 0, d.cnt), 0);
    d.o.reference_paired = true;
    d.o.tolerance = 0.25;           /* the candidate's own repetitions move with the board */
    sh_mrecord r;
    drift_measure(&d, &d.a, d.exea, &r, "measure a paired");
    assert_string_equal(r.stability, "quiet");
    assert_true(r.reps >= 9);       /* at least PAIRED_MIN_PAIRS pairs of 3 */
    assert_true(fabs(r.reference_anchor_ms - 0.5) < 1e-9);
    assert_true(fabs(r.rel_to_reference - 40) < 1e-6);
    assert_true(fabs(r.decode_ms_normalized - 20) < 1e-6);
    assert_true(fabs(r.decode_ms_normalized_low - 20) < 1e-6 && fabs(r.decode_ms_normalized_high - 20) < 1e-6);
    json_t *res = stored_result(d.db, r.eval_id);
    json_t *pj = json_object_get(json_object_get(res, "reference"), "paired");
    assert_non_null(pj);
    int pairs = (int)json_integer_value(json_object_get(pj, "pairs"));
    assert_true(pairs >= 3 && 3 * pairs == r.reps);
    assert_true(fabs(json_number_value(json_object_get(pj, "ratio_low")) - 40) < 1e-6);
    assert_true(fabs(json_number_value(json_object_get(pj, "ratio_high")) - 40) < 1e-6);
    assert_int_equal(json_integer_value(json_object_get(pj, "reps")), r.reps);
    json_t *pr = json_object_get(pj, "pair_ratios"), *pt = json_object_get(pj, "pair_t_s");
    assert_int_equal((int)json_array_size(pr), pairs);
    assert_int_equal((int)json_array_size(pt), pairs);
    for (int i = 0; i < pairs; i++) {
        assert_true(fabs(json_number_value(json_array_get(pr, (size_t)i)) - 40) < 1e-6);
        if (i) assert_true(json_number_value(json_array_get(pt, (size_t)i)) >= json_number_value(json_array_get(pt, (size_t)i - 1)));
    }
    /* the candidate itself ran at both board speeds: its figure moved */
    double m = json_number_value(json_object_get(res, "decode_ms_median"));
    assert_true(m > 20.5 || r.decode_ms_high > 20.5);
    json_decref(res);
    sh_mrecord_free(&r);

    /* 30% slower for the whole measurement (no reference row: --every 0) */
    d.o.reference_every = 0;
    d.o.force = true;
    assert_int_equal(dt_replay_variant(d.exer, d.hr, DRIFT_SHAPE, "1.3", 0, d.cnt), 0);
    assert_int_equal(dt_replay_variant(d.exea, d.ha, DRIFT_SHAPE, "52", 0, d.cnt), 0);
    drift_measure(&d, &d.a, d.exea, &r, "measure a on a slower board");
    int64_t id = r.eval_id;
    assert_string_equal(r.stability, "unstable");
    if (!strstr(r.reason, "drift: the reference genome, measured beside it, at 0.65 ms, +30.0% against its last "
                          "quiet value 0.5 ms"))
        fail_msg("reason: %s", r.reason);
    assert_int_equal(r.rounds, 2);   /* measured again after settling, still slow */
    assert_true(fabs(r.decode_ms - 26) < 0.01);
    assert_true(fabs(r.decode_ms_normalized - 20) < 1e-6);
    sh_mrecord_free(&r);

    /* the board is back: not reused, measured again in place, quiet */
    d.o.force = false;
    assert_int_equal(dt_replay_variant(d.exer, d.hr, DRIFT_SHAPE, "1.0", 0, d.cnt), 0);
    assert_int_equal(dt_replay_variant(d.exea, d.ha, DRIFT_SHAPE, "40", 0, d.cnt), 0);
    drift_measure(&d, &d.a, d.exea, &r, "measure a again");
    assert_false(r.cached);
    assert_int_equal(r.eval_id, id);
    assert_string_equal(r.stability, "quiet");
    assert_true(fabs(r.decode_ms - 20) < 0.01);
    sh_mrecord_free(&r);
    drift_board_close(&d);
}

/* ---- ssh ---------------------------------------------------------------------------------- */

static dt_sshd sshd;
static bool sshd_up;

static int ssh_setup(void **state)
{
    (void)state;
    sshd_up = dt_sshd_start(&sshd) == 0;
    return 0;
}

static int ssh_teardown(void **state)
{
    (void)state;
    dt_sshd_stop(&sshd);
    return 0;
}

static void ssh_rec(sh_device_rec *rec, const char *name, const char *key, const char *known, const char *workdir)
{
    memset(rec, 0, sizeof *rec);
    snprintf(rec->name, sizeof rec->name, "%s", name);
    snprintf(rec->kind, sizeof rec->kind, "ssh");
    snprintf(rec->host, sizeof rec->host, "127.0.0.1");
    rec->port = sshd.port;
    snprintf(rec->user, sizeof rec->user, "%s", sshd.user);
    snprintf(rec->key_path, sizeof rec->key_path, "%s", key);
    snprintf(rec->target, sizeof rec->target, "%s", sh_host_triple());
    if (workdir) snprintf(rec->workdir, sizeof rec->workdir, "%s", workdir);
    char opts[1200];
    snprintf(opts, sizeof opts, "{\"known_hosts\":\"%s\",\"connect_timeout_s\":5}", known);
    rec->options_json = strdup(opts);
    rec->healthy = true;
}

static void test_ssh_upload_run_fetch_timeout(void **state)
{
    (void)state;
    assert_true(sshd_up);
    sh_device_rec rec;
    ssh_rec(&rec, "board", sshd.user_key, sshd.known_hosts, NULL);
    sh_device *d;
    sh_err err = {{0}};
    assert_int_equal(sh_device_open(&rec, &d, &err), 0);
    if (sh_device_prepare(d, &err)) fail_msg("prepare: %s", err.msg);
    char workdir[1024];
    snprintf(workdir, sizeof workdir, "%s", d->workdir);
    struct stat st;
    assert_int_equal(stat(workdir, &st), 0);                  /* same host: we can look */
    assert_int_equal(st.st_mode & 0777, 0700);                /* private */
    char src[700], back[700], remote[2048];
    snprintf(src, sizeof src, "%s/up.sh", sshd.dir);
    snprintf(back, sizeof back, "%s/back.sh", sshd.dir);
    assert_int_equal(dt_write_file(src, "#!/bin/sh\necho \"args:$#:$1\"\necho err-line >&2\nexit 4\n", 0755), 0);
    assert_int_equal(sh_device_push(d, src, "up.sh", remote, sizeof remote, &err), 0);
    char *argv[] = {remote, "$(touch /tmp/starhil-pwned) it's", NULL};
    sh_dev_result r;
    if (sh_device_run(d, argv, 20, &r, &err)) fail_msg("run: %s", err.msg);
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 4);
    assert_string_equal(r.out, "args:1:$(touch /tmp/starhil-pwned) it's\n");
    assert_string_equal(r.err, "err-line\n");
    sh_dev_result_free(&r);
    assert_int_not_equal(stat("/tmp/starhil-pwned", &st), 0);
    char *slow[] = {"sleep", "10", NULL};
    assert_int_equal(sh_device_run(d, slow, 1, &r, &err), 0);
    if (!r.timed_out) fail_msg("ssh timeout: exited %d code %d signal %d after %.2f s", r.exited, r.exit_code, r.signal, r.seconds);
    assert_true(r.seconds < 8);
    sh_dev_result_free(&r);
    char *sig[] = {"sh", "-c", "kill -SEGV $$", NULL};
    assert_int_equal(sh_device_run(d, sig, 10, &r, &err), 0);
    assert_int_equal(r.signal, SIGSEGV);
    sh_dev_result_free(&r);
    assert_int_equal(sh_device_fetch(d, remote, back, &err), 0);
    char *a = dt_read_file(src, NULL), *b = dt_read_file(back, NULL);
    assert_string_equal(a, b);
    free(a);
    free(b);
    char *topo = NULL;                                      /* lstopo XML over ssh, loaded by hwloc here */
    if (sh_device_describe(d, &topo, &err)) fail_msg("describe over ssh: %s", err.msg);
    json_t *t = json_loads(topo, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(t, "source")), "hwloc-xml");
    assert_int_equal(json_integer_value(json_object_get(t, "n_cpus")), sysconf(_SC_NPROCESSORS_ONLN));
    json_decref(t);
    free(topo);
    char nothere[1200];
    snprintf(nothere, sizeof nothere, "%s/missing", workdir);
    assert_int_not_equal(sh_device_fetch(d, nothere, back, &err), 0);
    sh_device_close(d);
    assert_int_not_equal(stat(workdir, &st), 0);              /* removed by cleanup */
    sh_device_rec_free(&rec);
}

static void test_ssh_host_keys_and_auth(void **state)
{
    (void)state;
    assert_true(sshd_up);
    sh_err err = {{0}};
    sh_device *d;
    sh_device_rec rec;
    /* a changed host key is refused */
    ssh_rec(&rec, "b1", sshd.user_key, sshd.wrong_known_hosts, NULL);
    assert_int_equal(sh_device_open(&rec, &d, &err), 0);
    assert_int_not_equal(sh_device_prepare(d, &err), 0);
    assert_non_null(strstr(err.msg, "CHANGED"));
    sh_device_close(d);
    sh_device_rec_free(&rec);
    /* an unknown host key is refused ... (lines libssh2 cannot read are skipped and kept) */
    char fresh[700];
    snprintf(fresh, sizeof fresh, "%s/fresh_known_hosts", sshd.dir);
    const char *foreign = "@cert-authority *.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE\n"
                          "this line is not a known_hosts entry\n";
    assert_int_equal(dt_write_file(fresh, foreign, 0600), 0);
    ssh_rec(&rec, "b2", sshd.user_key, fresh, NULL);
    assert_int_equal(sh_device_open(&rec, &d, &err), 0);
    assert_int_not_equal(sh_device_prepare(d, &err), 0);
    assert_non_null(strstr(err.msg, "unknown"));
    sh_device_close(d);
    sh_device_rec_free(&rec);
    /* ... unless explicitly trusted, which records it; then it must match */
    ssh_rec(&rec, "b3", sshd.user_key, fresh, NULL);
    free(rec.options_json);
    char opts[1000];
    snprintf(opts, sizeof opts, "{\"known_hosts\":\"%s\",\"trust_host_key\":true}", fresh);
    rec.options_json = strdup(opts);
    assert_int_equal(sh_device_open(&rec, &d, &err), 0);
    if (sh_device_prepare(d, &err)) fail_msg("trusted prepare: %s", err.msg);
    sh_device_close(d);
    sh_device_rec_free(&rec);
    char *kh = dt_read_file(fresh, NULL);
    char needle[64];
    snprintf(needle, sizeof needle, "[127.0.0.1]:%d ssh-ed25519", sshd.port);
    assert_non_null(kh);
    assert_non_null(strstr(kh, needle));
    assert_true(strncmp(kh, foreign, strlen(foreign)) == 0);   /* appended, nothing lost */
    free(kh);
    ssh_rec(&rec, "b4", sshd.user_key, fresh, NULL);
    assert_int_equal(sh_device_open(&rec, &d, &err), 0);
    if (sh_device_prepare(d, &err)) fail_msg("recorded key: %s", err.msg);
    sh_device_close(d);
    sh_device_rec_free(&rec);
    /* a key the server does not know is refused */
    ssh_rec(&rec, "b5", sshd.bad_user_key, sshd.known_hosts, NULL);
    assert_int_equal(sh_device_open(&rec, &d, &err), 0);
    assert_int_not_equal(sh_device_prepare(d, &err), 0);
    assert_non_null(strstr(err.msg, "refused"));
    sh_device_close(d);
    sh_device_rec_free(&rec);
    /* nobody listening: a transport error, quickly */
    ssh_rec(&rec, "b6", sshd.user_key, sshd.known_hosts, NULL);
    rec.port = dt_free_port();
    assert_int_equal(sh_device_open(&rec, &d, &err), 0);
    assert_int_equal(sh_device_prepare(d, &err), SH_DEV_ETRANSPORT);
    assert_non_null(strstr(err.msg, "cannot connect"));
    sh_device_close(d);
    sh_device_rec_free(&rec);
}

typedef struct killer_arg {
    char marker[700];
    char remote_base[700];
    int killed, restarted;
} killer_arg;

/* Waits for the variant's first (slow) run to start, kills sshd and every
 * session, wipes the board's working directories (a reboot), restarts sshd. */
static void *killer_main(void *p)
{
    killer_arg *k = p;
    struct stat st;
    for (int i = 0; i < 400 && stat(k->marker, &st); i++) sleep_ms(25);
    sleep_ms(200);
    dt_sshd_kill(&sshd);
    k->killed = 1;
    char cmd[900];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/starhil.*", k->remote_base);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    dt_run(argv);
    sleep_ms(300);
    k->restarted = dt_sshd_restart(&sshd) == 0;
    return NULL;
}

static void test_ssh_measure_with_sshd_killed(void **state)
{
    (void)state;
    assert_true(sshd_up);
    char *dir = dt_mkdtemp("sshmeas");
    sh_db *db = open_test_db(dir);
    char remote_base[700];
    snprintf(remote_base, sizeof remote_base, "%s/board-tmp", dir);
    sh_device_rec rec;
    ssh_rec(&rec, "board", sshd.user_key, sshd.known_hosts, remote_base);
    add_device(db, &rec);
    sh_device_rec_free(&rec);
    sh_genome g, g2;
    char hex[17], hex2[17], exe[600];
    genome_of(TINY, &g, hex);
    genome_of(TINY2, &g2, hex2);
    snprintf(exe, sizeof exe, "%s/variant", dir);
    killer_arg k;
    memset(&k, 0, sizeof k);
    snprintf(k.marker, sizeof k.marker, "%s/started", dir);
    snprintf(k.remote_base, sizeof k.remote_base, "%s", remote_base);
    assert_int_equal(dt_fake_variant(exe, hex, "slowfirst", k.marker, 5.0, 20), 0);
    sh_measure_opts o = {.exe_path = exe, .prompt = 16, .gen = 8, .retries = 4, .backoff_s = 0.5,
                         .timeout_s = 60};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, killer_main, &k), 0);
    sh_mrecord r;
    sh_err err = {{0}};
    int rc = sh_measure_genome(db, "board", &g, &o, &r, &err);
    pthread_join(th, NULL);
    assert_true(k.killed && k.restarted);
    if (rc) fail_msg("measure over ssh after sshd restart: %s", err.msg);
    assert_true(fabs(r.decode_ms_median - 5.0) < 0.05);
    sh_eval_rec e;
    assert_int_equal(sh_db_get_eval(db, r.eval_id, &e, &err), 0);
    assert_string_equal(e.status, "ok");
    assert_true(e.attempts >= 2);                               /* the dropped attempt was retried */
    sh_eval_rec_free(&e);
    sh_mrecord_free(&r);
    /* the re-established session is reused for the next evaluation */
    assert_int_equal(dt_fake_variant(exe, hex2, "ok", NULL, 6.0, 0), 0);
    if (sh_measure_genome(db, "board", &g2, &o, &r, &err)) fail_msg("second measure: %s", err.msg);
    assert_int_equal(sh_db_get_eval(db, r.eval_id, &e, &err), 0);
    assert_int_equal(e.attempts, 1);
    sh_eval_rec_free(&e);
    sh_mrecord_free(&r);
    /* and the real variant, built for the board's target, over the same session */
    sh_measure_opts real = {.prompt = 8, .gen = 4, .min_reps = 1, .max_reps = 2, .reps_per_run = 2,
                            .wtype = "f32", .tolerance = 0.5, .threads = 1, .retries = -1};
    if (sh_measure_genome(db, "board", &g, &real, &r, &err)) fail_msg("real variant over ssh: %s", err.msg);
    assert_true(r.decode_ms_median > 0 && r.reps >= 1);
    json_t *res = stored_result(db, r.eval_id);
    assert_true(json_is_object(json_object_get(res, "probe_after")));
    /* one thread on a board of more CPUs runs pinned to one of the CPU sets
     * sh_measure_auto_pin takes turns over (the board names no CPUs); on a
     * one-CPU host nothing is pinned.  The stored cpu object is the last
     * invocation's. */
    char *probe = json_dumps(json_object_get(res, "probe_before"), 0);
    char pin[64];
    const char *used = json_string_value(json_object_get(json_object_get(res, "cpu"), "cpus_used"));
    assert_non_null(used);
    if (sh_measure_auto_pin(probe, 1, 0, pin, sizeof pin) == 1) {
        bool found = false;
        for (int t = 0; t < 64 && !found; t++)
            found = sh_measure_auto_pin(probe, 1, t, pin, sizeof pin) == 1 && !strcmp(pin, used);
        assert_true(found);
    }
    free(probe);
    json_decref(res);
    sh_mrecord_free(&r);
    sh_measure_shutdown();
    sh_db_close(db);
    dt_rm_rf(dir);
    free(dir);
}

/* ---- adb ------------------------------------------------------------------------------------- */

/* Where a measurement of fewer threads than the board's CPUs is pinned: the
 * fastest cluster's online CPUs in turn, then the rest by rank; nothing when
 * it would take every CPU or the topology is unknown */
static void test_measure_auto_pin(void **state)
{
    (void)state;
    char out[64];
    const char *big_little =
        "{\"n_cpus\":8,\"cpus\":[{\"id\":0,\"online\":true},{\"id\":1,\"online\":true},"
        "{\"id\":2,\"online\":true},{\"id\":3,\"online\":true},{\"id\":4,\"online\":true},"
        "{\"id\":5,\"online\":false},{\"id\":6,\"online\":true},{\"id\":7,\"online\":true}],"
        "\"clusters\":[{\"max_khz\":1800000,\"cpus\":[0,1,2,3]},{\"max_khz\":2800000,\"cpus\":[4,5,6,7]}]}";
    /* one thread: in turn over the big cluster's online CPUs (5 is offline) */
    const char *want1[] = {"4", "6", "7", "4"};
    for (int t = 0; t < 4; t++) {
        assert_int_equal(sh_measure_auto_pin(big_little, 1, t, out, sizeof out), 1);
        assert_string_equal(out, want1[t]);
    }
    assert_int_equal(sh_measure_auto_pin(big_little, 2, 1, out, sizeof out), 1);
    assert_string_equal(out, "4,7");                       /* positions 2 and 3 of {4,6,7}, wrapped */
    /* as many threads as big CPUs or more: fixed, then the little ones, lowest first */
    assert_int_equal(sh_measure_auto_pin(big_little, 3, 5, out, sizeof out), 1);
    assert_string_equal(out, "4,6-7");
    assert_int_equal(sh_measure_auto_pin(big_little, 5, 0, out, sizeof out), 1);
    assert_string_equal(out, "0-1,4,6-7");
    assert_int_equal(sh_measure_auto_pin(big_little, 7, 0, out, sizeof out), 0);   /* every online CPU */
    assert_int_equal(sh_measure_auto_pin(big_little, 0, 0, out, sizeof out), 0);
    assert_int_equal(sh_measure_auto_pin(big_little, 1, -1, out, sizeof out), 0);
    assert_int_equal(sh_measure_auto_pin(big_little, 3, 0, out, 4), -1);         /* "4,6-7" does not fit */
    assert_string_equal(out, "");
    /* frequencies unknown (a VM): equal rank, pairs in turn */
    const char *vm = "{\"n_cpus\":4,\"cpus\":[{\"id\":0,\"online\":true,\"max_khz\":-1},"
                     "{\"id\":1,\"online\":true,\"max_khz\":-1},{\"id\":2,\"online\":true,\"max_khz\":-1},"
                     "{\"id\":3,\"online\":true,\"max_khz\":-1}],\"clusters\":[{\"max_khz\":-1,\"cpus\":[0,1,2,3]}]}";
    assert_int_equal(sh_measure_auto_pin(vm, 2, 0, out, sizeof out), 1);
    assert_string_equal(out, "0-1");
    assert_int_equal(sh_measure_auto_pin(vm, 2, 1, out, sizeof out), 1);
    assert_string_equal(out, "2-3");
    /* only n_cpus known */
    assert_int_equal(sh_measure_auto_pin("{\"n_cpus\":2}", 1, 1, out, sizeof out), 1);
    assert_string_equal(out, "1");
    /* nothing to go by: no pinning, no crash */
    assert_int_equal(sh_measure_auto_pin(NULL, 1, 0, out, sizeof out), 0);
    assert_int_equal(sh_measure_auto_pin("not json", 1, 0, out, sizeof out), 0);
    assert_int_equal(sh_measure_auto_pin("[1,2]", 1, 0, out, sizeof out), 0);
    assert_int_equal(sh_measure_auto_pin("{\"cpus\":[{\"id\":99999}],\"clusters\":7}", 1, 0, out, sizeof out), 0);
}

static void test_adb_real_server_host_services(void **state)
{
    (void)state;
    /* the real adb server from Debian, on a private port; no phone is attached.
     * Everything is asked first and checked after the server is stopped, so a
     * failed check never leaves the server running. */
    int port = dt_free_port();
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    char *start[] = {"adb", "-P", ps, "start-server", NULL};
    char *kill_srv[] = {"adb", "-P", ps, "kill-server", NULL};
    /* the adb server writes its log to $TMPDIR/adb.UID.log (newer ones to
     * $ANDROID_ADB_LOG_PATH): both point into a directory removed below */
    char *logdir = dt_mkdtemp("adblog");
    char logpath[600];
    snprintf(logpath, sizeof logpath, "%s/adb.log", logdir);
    const char *old_tmp = getenv("TMPDIR");
    char *saved_tmp = old_tmp ? strdup(old_tmp) : NULL;
    setenv("TMPDIR", logdir, 1);
    setenv("ANDROID_ADB_LOG_PATH", logpath, 1);
    int started = dt_run(start);
    if (saved_tmp) setenv("TMPDIR", saved_tmp, 1); else unsetenv("TMPDIR");
    free(saved_tmp);
    sh_err e1 = {{0}}, e2 = {{0}}, e3 = {{0}};
    char *version = NULL, *devices = NULL;
    int rv = sh_adb_host_query("127.0.0.1", port, "host:version", 10, &version, &e1);
    int rd = sh_adb_host_query("127.0.0.1", port, "host:devices", 10, &devices, &e2);
    int fd = sh_adb_transport("127.0.0.1", port, "nosuchphone", 10, &e3);
    if (fd >= 0) close(fd);
    dt_run(kill_srv);
    unsetenv("ANDROID_ADB_LOG_PATH");
    dt_rm_rf(logdir);
    free(logdir);
    assert_int_equal(started, 0);
    if (rv) fail_msg("host:version: %s", e1.msg);
    assert_int_equal(strlen(version), 4);
    assert_true(strtol(version, NULL, 16) >= 32);
    if (rd) fail_msg("host:devices: %s", e2.msg);
    assert_string_equal(devices, "");
    assert_int_equal(fd, -1);
    assert_non_null(strstr(e3.msg, "refused"));
    free(version);
    free(devices);
    /* and once it is gone: a clear error */
    char *none = NULL;
    assert_int_not_equal(sh_adb_host_query("127.0.0.1", port, "host:version", 2, &none, &e1), 0);
    assert_non_null(strstr(e1.msg, "cannot connect"));
}

static void adb_rec(sh_device_rec *rec, int port, const char *serial, const char *workdir)
{
    memset(rec, 0, sizeof *rec);
    snprintf(rec->name, sizeof rec->name, "phone");
    snprintf(rec->kind, sizeof rec->kind, "adb");
    snprintf(rec->host, sizeof rec->host, "127.0.0.1");
    rec->port = port;
    snprintf(rec->target, sizeof rec->target, "%s", sh_host_triple());   /* the peer runs host programs */
    snprintf(rec->workdir, sizeof rec->workdir, "%s", workdir);
    snprintf(rec->cpus, sizeof rec->cpus, "0");
    char opts[200];
    snprintf(opts, sizeof opts, "{\"serial\":\"%s\"}", serial);
    rec->options_json = strdup(opts);
    rec->healthy = true;
}

static void test_adb_peer_device_services(void **state)
{
    (void)state;
    dt_adb_peer peer;
    assert_int_equal(dt_adb_peer_start(&peer, "R5CX0TEST"), 0);
    char *dir = dt_mkdtemp("adb");
    sh_err err = {{0}};
    char *reply = NULL;
    assert_int_equal(sh_adb_host_query("127.0.0.1", peer.port, "host:devices", 5, &reply, &err), 0);
    assert_string_equal(reply, "R5CX0TEST\tdevice\n");
    free(reply);
    sh_device_rec rec;
    adb_rec(&rec, peer.port, "R5CX0TEST", dir);
    sh_device *d;
    assert_int_equal(sh_device_open(&rec, &d, &err), 0);
    if (sh_device_prepare(d, &err)) fail_msg("prepare: %s", err.msg);
    assert_true(strncmp(d->workdir, dir, strlen(dir)) == 0);
    char src[600], back[600], remote[2048];
    snprintf(src, sizeof src, "%s/in.sh", dir);
    snprintf(back, sizeof back, "%s/back", dir);
    /* a payload bigger than one 64 KiB DATA chunk */
    size_t big = 150000;
    char *payload = malloc(big + 64);
    strcpy(payload, "#!/bin/sh\necho \"out:$1\"\necho oops >&2\nexit 5\n#");
    size_t hl = strlen(payload);
    for (size_t i = hl; i < big; i++) payload[i] = (char)('a' + i % 26);
    payload[big] = '\n';
    payload[big + 1] = '\0';
    assert_int_equal(dt_write_file(src, payload, 0755), 0);
    if (sh_device_push(d, src, "in.sh", remote, sizeof remote, &err)) fail_msg("push: %s", err.msg);
    int fd = sh_adb_transport("127.0.0.1", peer.port, "R5CX0TEST", 5, &err);
    assert_true(fd >= 0);
    assert_int_equal(sh_adb_request(fd, "sync:", 5, &err), 0);
    uint32_t mode, size, mtime;
    assert_int_equal(sh_adb_sync_stat(fd, remote, &mode, &size, &mtime, 5, &err), 0);
    assert_int_equal(size, big + 1);
    assert_int_equal(mode & 0777, 0755);
    close(fd);
    char *argv[] = {remote, "a 'quoted' $(arg)", NULL};
    sh_dev_result r;
    if (sh_device_run(d, argv, 20, &r, &err)) fail_msg("run: %s", err.msg);
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 5);
    assert_string_equal(r.out, "out:a 'quoted' $(arg)\n");
    assert_string_equal(r.err, "oops\n");
    sh_dev_result_free(&r);
    char *aff[] = {"grep", "Cpus_allowed_list", "/proc/self/status", NULL};   /* taskset 1 */
    assert_int_equal(sh_device_run(d, aff, 10, &r, &err), 0);
    assert_non_null(strstr(r.out, "\t0\n"));
    sh_dev_result_free(&r);
    char *slow[] = {"sleep", "10", NULL};
    assert_int_equal(sh_device_run(d, slow, 1, &r, &err), 0);
    assert_true(r.timed_out);
    sh_dev_result_free(&r);
    assert_int_equal(sh_device_fetch(d, remote, back, &err), 0);
    char *got = dt_read_file(back, NULL);
    assert_string_equal(got, payload);
    free(got);
    free(payload);
    char missing[2100];
    snprintf(missing, sizeof missing, "%s/missing", d->workdir);
    assert_int_not_equal(sh_device_fetch(d, missing, back, &err), 0);
    assert_non_null(strstr(err.msg, "No such file"));
    sh_device_close(d);
    sh_device_rec_free(&rec);
    /* wrong serial: the server's FAIL message comes through */
    adb_rec(&rec, peer.port, "OTHER", dir);
    assert_int_equal(sh_device_open(&rec, &d, &err), 0);
    assert_int_equal(sh_device_prepare(d, &err), SH_DEV_ETRANSPORT);
    assert_non_null(strstr(err.msg, "not found"));
    sh_device_close(d);
    sh_device_rec_free(&rec);
    dt_adb_peer_stop(&peer);
    dt_rm_rf(dir);
    free(dir);
}

static void test_adb_measure_through_peer(void **state)
{
    (void)state;
    dt_adb_peer peer;
    assert_int_equal(dt_adb_peer_start(&peer, "R5CX0TEST"), 0);
    char *dir = dt_mkdtemp("adbm");
    sh_db *db = open_test_db(dir);
    sh_device_rec rec;
    char base[600];
    snprintf(base, sizeof base, "%s/data-local-tmp", dir);
    adb_rec(&rec, peer.port, "R5CX0TEST", base);
    add_device(db, &rec);
    sh_device_rec_free(&rec);
    sh_genome g;
    char hex[17], exe[600];
    genome_of(TINY, &g, hex);
    snprintf(exe, sizeof exe, "%s/variant", dir);
    assert_int_equal(dt_fake_variant(exe, hex, "ok", NULL, 7.0, 0), 0);
    sh_measure_opts o = {.exe_path = exe, .prompt = 16, .gen = 8};
    sh_mrecord r;
    sh_err err = {{0}};
    if (sh_measure_genome(db, "phone", &g, &o, &r, &err)) fail_msg("adb measure: %s", err.msg);
    assert_true(fabs(r.decode_ms_median - 7.0) < 0.05);
    json_t *res = stored_result(db, r.eval_id);
    json_t *thermal = json_object_get(json_object_get(res, "probe_before"), "thermal");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(thermal, 0), "millicelsius")), 41000);
    json_decref(res);
    sh_mrecord_free(&r);
    sh_device_rec stored;
    assert_int_equal(sh_db_get_device(db, "phone", &stored, &err), 0);
    assert_non_null(stored.topology_json);                     /* kept from the first probe */
    assert_non_null(strstr(stored.topology_json, "\"source\":\"probe\""));
    sh_device_rec_free(&stored);
    sh_measure_shutdown();
    /* cleanup removed the phone-side directory */
    char *ls[] = {"/bin/sh", "-c", NULL, NULL};
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", base);
    ls[2] = cmd;
    assert_int_equal(dt_run(ls), 0);
    sh_db_close(db);
    /* the CLI against the same peer: check, and probe through the variant's probe mode */
    char dbp[600];
    snprintf(dbp, sizeof dbp, "%s/runs.db", dir);
    char *out = NULL;
    const char *check[] = {"device", "check", "phone", "--json", NULL};
    assert_int_equal(run_cliv(dbp, &out, check), 0);
    assert_non_null(strstr(out, "\"ok\":true"));
    free(out);
    const char *probe[] = {"device", "probe", "phone", "--json", NULL};
    if (run_cliv(dbp, &out, probe)) fail_msg("device probe over adb: %s", out);
    json_t *t = json_loads(out, 0, NULL);
    free(out);
    assert_string_equal(json_string_value(json_object_get(t, "source")), "probe");
    assert_true(json_integer_value(json_object_get(t, "n_cpus")) >= 1);
    json_decref(t);
    dt_adb_peer_stop(&peer);
    dt_rm_rf(dir);
    free(dir);
}

/* ---- the real variant: build, push, bench, parse, store ----------------------------------- */

static void test_qemu_full_path_real_variant(void **state)
{
    (void)state;
    char *dir = dt_mkdtemp("qfull");
    sh_db *db = open_test_db(dir);
    sh_device_rec rec = {0};
    snprintf(rec.name, sizeof rec.name, "arm-emu");
    snprintf(rec.kind, sizeof rec.kind, "qemu-aarch64");
    snprintf(rec.target, sizeof rec.target, "aarch64-linux-gnu");
    add_device(db, &rec);
    sh_genome g;
    char hex[17];
    genome_of(TINY, &g, hex);
    sh_measure_opts o = {.prompt = 8, .gen = 4, .min_reps = 1, .max_reps = 2, .reps_per_run = 2,
                         .wtype = "f32", .tolerance = 0.5, .timeout_s = 120, .retries = -1};
    sh_mrecord r;
    sh_err err = {{0}};
    if (sh_measure_genome(db, "arm-emu", &g, &o, &r, &err)) fail_msg("qemu measure: %s", err.msg);
    assert_true(r.decode_ms_median > 0);
    json_t *res = stored_result(db, r.eval_id);
    const char *target = json_string_value(json_object_get(json_object_get(res, "build"), "target"));
    assert_non_null(target);
    assert_non_null(strstr(target, "aarch64"));
    const char *machine = json_string_value(json_object_get(json_object_get(res, "probe_before"), "machine"));
    assert_non_null(machine);
    assert_string_equal(machine, "aarch64");
    json_decref(res);
    double *v;
    int n;
    assert_int_equal(sh_db_get_samples(db, r.eval_id, "decode_ms", &v, &n, &err), 0);
    assert_int_equal(n, r.reps * 4);
    free(v);
    sh_mrecord_free(&r);
    sh_measure_shutdown();
    sh_db_close(db);
    dt_rm_rf(dir);
    free(dir);
}

/* ---- one worker thread per device, each with its own sh_db handle ------------------------ */

typedef struct worker_arg {
    const char *dir, *device, *exe;
    const sh_genome *g;
    double expect;
    int rc;
    char msg[SH_ERR_MAX];
} worker_arg;

static void *worker_main(void *p)
{
    worker_arg *w = p;
    sh_db *db = NULL;
    sh_err err = {{0}};
    char path[600];
    snprintf(path, sizeof path, "%s/runs.db", w->dir);
    w->rc = sh_db_open(path, SH_DB_CREATE, &db, &err);
    for (int i = 0; i < 2 && !w->rc; i++) {
        sh_measure_opts o = {.exe_path = w->exe, .prompt = 16, .gen = 8 + i, .no_probe = true};
        sh_mrecord r;
        w->rc = sh_measure_genome(db, w->device, w->g, &o, &r, &err);
        if (!w->rc && fabs(r.decode_ms_median - w->expect) > 0.05) { w->rc = -1; snprintf(err.msg, sizeof err.msg, "wrong median"); }
        sh_mrecord_free(&r);
    }
    if (w->rc) snprintf(w->msg, sizeof w->msg, "%s", err.msg);
    sh_db_close(db);
    return NULL;
}

static void test_measure_threads_per_device(void **state)
{
    (void)state;
    char *dir = dt_mkdtemp("thr");
    sh_db *db = open_test_db(dir);
    sh_device_rec a = {0}, b = {0};
    snprintf(a.name, sizeof a.name, "w1");
    snprintf(a.kind, sizeof a.kind, "local");
    snprintf(b.name, sizeof b.name, "w2");
    snprintf(b.kind, sizeof b.kind, "local");
    add_device(db, &a);
    add_device(db, &b);
    sh_db_close(db);
    sh_genome g1, g2;
    char h1[17], h2[17], e1[600], e2[600];
    genome_of(TINY, &g1, h1);
    genome_of(TINY2, &g2, h2);
    snprintf(e1, sizeof e1, "%s/v1", dir);
    snprintf(e2, sizeof e2, "%s/v2", dir);
    assert_int_equal(dt_fake_variant(e1, h1, "ok", NULL, 3.0, 0), 0);
    assert_int_equal(dt_fake_variant(e2, h2, "ok", NULL, 4.0, 0), 0);
    worker_arg w[2] = {{.dir = dir, .device = "w1", .exe = e1, .g = &g1, .expect = 3.0},
                       {.dir = dir, .device = "w2", .exe = e2, .g = &g2, .expect = 4.0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) if (w[i].rc) fail_msg("worker %d: %s", i, w[i].msg);
    sh_measure_shutdown();
    db = open_test_db(dir);
    sh_eval_rec *evs;
    int n;
    sh_err err = {{0}};
    assert_int_equal(sh_db_list_evals(db, 0, &evs, &n, &err), 0);
    assert_int_equal(n, 4);
    for (int i = 0; i < n; i++) { assert_string_equal(evs[i].status, "ok"); sh_eval_rec_free(&evs[i]); }
    free(evs);
    sh_db_close(db);
    dt_rm_rf(dir);
    free(dir);
}

/* ---- measurements on a busy board (issue 18) --------------------------------------------- */

#define SMALL "d=192 v=4096 hd=64 theta=10000 eps=1e-05 ctx=2048 tie=1 | conv(3)/swiglu(512)*6 gqa(3,1,qk)/swiglu(512)*3"

/* Starts n busy loops pinned to CPU `cpu` (real load; each ends itself after
 * 5 minutes should the test die before killing it). */
static void start_busy_loops(pid_t *pids, int n, int cpu)
{
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        assert_true(p >= 0);
        if (p == 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
            alarm(300);
            for (volatile unsigned long x = 0;; x++) {}
        }
        pids[i] = p;
    }
}

static void stop_busy_loops(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++) {
        kill(pids[i], SIGKILL);
        waitpid(pids[i], NULL, 0);
    }
}

/* A measurement taken beside busy loops on its CPU is recorded unstable with
 * the reason, is not reused as a cached answer, and a quiet re-measurement
 * replaces it in place; `force` re-measures a quiet one.  Mechanism only:
 * "quiet" is obtained with the busy threshold switched off, never by
 * expecting this shared machine to be idle. */
static void test_measure_busy_unstable_then_replaced(void **state)
{
    (void)state;
    char *dir = dt_mkdtemp("busy");
    sh_db *db = open_test_db(dir);
    sh_device_rec d = {0};
    snprintf(d.name, sizeof d.name, "pin0");
    snprintf(d.kind, sizeof d.kind, "local");
    snprintf(d.cpus, sizeof d.cpus, "0");
    add_device(db, &d);
    sh_genome g;
    char hex[17];
    genome_of(SMALL, &g, hex);
    sh_measure_opts o = {.prompt = 32, .gen = 32, .wtype = "f32", .min_reps = 3, .max_reps = 6,
                         .reps_per_run = 3, .tolerance = 0.5, .settle_rounds = 1, .settle_max_s = 0.2,
                         .backoff_s = 0.05};
    pid_t busy[3];
    start_busy_loops(busy, 3, 0);
    sh_mrecord r;
    sh_err err = {{0}};
    int rc = sh_measure_genome(db, "pin0", &g, &o, &r, &err);
    stop_busy_loops(busy, 3);
    if (rc) fail_msg("measure: %s", err.msg);
    assert_false(r.cached);
    assert_string_equal(r.stability, "unstable");
    assert_non_null(strstr(r.reason, "busy"));
    assert_int_equal(r.rounds, 2);                       /* measured, waited, measured again */
    assert_true(r.disturbed_reps > 0);
    int64_t id = r.eval_id;
    sh_eval_rec e;
    assert_int_equal(sh_db_get_eval(db, id, &e, &err), 0);
    assert_string_equal(e.status, "ok");
    assert_string_equal(e.stability, "unstable");
    assert_non_null(e.stability_reason);
    assert_non_null(strstr(e.stability_reason, "busy"));
    json_t *res = json_loads(e.result_json, 0, NULL);
    assert_true(json_is_true(json_object_get(res, "board_state_read")));
    assert_string_equal(json_string_value(json_object_get(res, "estimator")), SH_DECODE_ESTIMATOR);
    assert_int_equal(json_array_size(json_object_get(res, "rounds")), 2);
    json_decref(res);
    sh_eval_rec_free(&e);
    /* the per-repetition state is stored with the samples */
    double *v = NULL;
    int n = 0;
    assert_int_equal(sh_db_get_samples(db, id, "rep_cpu_wait", &v, &n, &err), 0);
    assert_int_equal(n, r.reps);
    double wmax = 0;
    for (int i = 0; i < n; i++) wmax = fmax(wmax, v[i]);
    assert_true(wmax > 0.05);
    free(v);
    sh_mrecord_free(&r);

    /* asked again: the unstable figure is not an answer, it is measured again
     * and the quiet result replaces it (same evaluation, new samples) */
    o.busy_wait = -1;      /* no disturbance rule: quiet however busy this host is */
    o.others_max = -1;
    o.steal_max = -1;      /* a shared VM's hypervisor steals 0-7% of a repetition here */
    o.tolerance = 0.99;
    assert_int_equal(sh_measure_genome(db, "pin0", &g, &o, &r, &err), 0);
    assert_false(r.cached);
    assert_int_equal(r.eval_id, id);
    assert_string_equal(r.stability, "quiet");
    assert_string_equal(r.reason, "");
    assert_true(r.decode_ms > 0 && r.decode_ms_low <= r.decode_ms && r.decode_ms <= r.decode_ms_high);
    int reps = r.reps;
    /* the figure is a Harrell-Davis quantile of the repetition medians: a
     * weighted mean of them, so never outside their range (it may sit above
     * the median of all tokens when the repetitions agree closely) */
    assert_int_equal(sh_db_get_samples(db, id, "rep_decode_median_ms", &v, &n, &err), 0);
    assert_int_equal(n, reps);
    double mlo = INFINITY, mhi = 0;
    for (int i = 0; i < n; i++) { mlo = fmin(mlo, v[i]); mhi = fmax(mhi, v[i]); }
    free(v);
    if (!(r.decode_ms >= mlo - 1e-9 && r.decode_ms <= mhi + 1e-9))
        fail_msg("decode_ms %.6f outside the repetition medians' range [%.6f, %.6f]", r.decode_ms, mlo, mhi);
    sh_mrecord_free(&r);
    assert_int_equal(sh_db_get_eval(db, id, &e, &err), 0);
    assert_string_equal(e.stability, "quiet");
    assert_null(e.stability_reason);
    sh_eval_rec_free(&e);
    assert_int_equal(sh_db_get_samples(db, id, "rep_quiet", &v, &n, &err), 0);
    assert_int_equal(n, reps);
    for (int i = 0; i < n; i++) assert_true(v[i] == 1.0);
    free(v);

    /* a quiet result is reused; force measures again */
    assert_int_equal(sh_measure_genome(db, "pin0", &g, &o, &r, &err), 0);
    assert_true(r.cached);
    assert_string_equal(r.stability, "quiet");
    sh_mrecord_free(&r);
    o.force = true;
    assert_int_equal(sh_measure_genome(db, "pin0", &g, &o, &r, &err), 0);
    assert_false(r.cached);
    assert_int_equal(r.eval_id, id);
    sh_mrecord_free(&r);
    sh_measure_shutdown();
    sh_db_close(db);
    dt_rm_rf(dir);
    free(dir);
}

/* A variant: a script speaking the bench protocol with made-up, deterministic
 * figures, so that the mechanism, not this machine's load, is under test.
 * Every repetition r (awk) decodes `rep_ms` ms/token and reports the board
 * state that the awk statement `state` prints (one JSON object, preceded by a
 * comma when r > 0); `awk_vars` passes extra -v assignments. */
static void write_scripted_variant(const char *path, const char *hash, const char *awk_vars, const char *rep_ms,
                                   const char *state)
{
    char script[4096];
    int n = snprintf(script, sizeof script,
        "#!/bin/sh\n"
        "mode=$1; [ $# -gt 0 ] && shift\n"
        "reps=3; gen=8\n"
        "while [ $# -gt 0 ]; do case \"$1\" in --reps) reps=$2; shift;; --gen) gen=$2; shift;; esac; shift; done\n"
        "[ \"$mode\" = bench ] || { echo usage >&2; exit 2; }\n"
        "awk -v reps=\"$reps\" -v gen=\"$gen\" -v h=%s %s 'BEGIN {\n"
        "  printf \"{\\\"mode\\\":\\\"bench\\\",\\\"genome_hash\\\":\\\"%%s\\\",\\\"build\\\":{},\\\"cpu\\\":{\\\"n_cpus\\\":2},\", h;\n"
        "  printf \"\\\"prefill_tok_s\\\":1000,\\\"decode_tok_s\\\":70,\\\"ttft_ms\\\":16,\\\"prefill_ms\\\":[\";\n"
        "  for (r = 0; r < reps; r++) printf \"%%s16\", (r ? \",\" : \"\"); printf \"],\\\"decode_ms\\\":{\\\"median\\\":15,\\\"samples\\\":[\";\n"
        "  for (r = 0; r < reps; r++) { c = %s;\n"
        "    for (i = 0; i < gen; i++) printf \"%%s%%.4f\", (r + i ? \",\" : \"\"), c * (1 + ((i * 7) %% 11 - 5) * 0.001) }\n"
        "  printf \"]},\\\"peak_rss_bytes\\\":1,\\\"weight_bytes\\\":1,\\\"kv_bytes\\\":1,\\\"conv_state_bytes\\\":1,\";\n"
        "  printf \"\\\"share\\\":{\\\"prefill\\\":{\\\"conv\\\":1,\\\"attention\\\":0,\\\"swiglu\\\":0,\\\"moe\\\":0,\\\"head\\\":0},\";\n"
        "  printf \"\\\"decode\\\":{\\\"conv\\\":1,\\\"attention\\\":0,\\\"swiglu\\\":0,\\\"moe\\\":0,\\\"head\\\":0}},\\\"state\\\":[\";\n"
        "  for (r = 0; r < reps; r++) { if (r) printf \",\"; %s }\n"
        "  printf \"]}\\n\" }'\n", hash, awk_vars, rep_ms, state);
    assert_true(n > 0 && (size_t)n < sizeof script);
    assert_int_equal(dt_write_file(path, script, 0755), 0);
}

/* A variant whose board readings say: in every invocation the first
 * repetition ran busy (its threads waited half the time for a CPU, 20
 * ms/token), the second throttled (half the frequency, 15 ms/token), the
 * third quiet (10 ms/token). */
static void write_disturbed_variant(const char *path, const char *hash)
{
    write_scripted_variant(path, hash, "", "(r % 3 == 0 ? 20 : (r % 3 == 1 ? 15 : 10))",
        "k = r % 3;\n"
        "    printf \"{\\\"wall_s\\\":1,\\\"wait_s\\\":%s,\\\"self_cpu_s\\\":1,\\\"other_cpus\\\":0,\\\"procs_running\\\":%d,\", k == 0 ? \"0.5\" : \"0\", k == 0 ? 7 : 1;\n"
        "    printf \"\\\"load1\\\":1,\\\"freq_khz\\\":%d,\\\"temp_mc\\\":40000}\", k == 1 ? 1000000 : 2000000");
}

/* Busy and throttled repetitions are recorded and left out of the estimate:
 * the stored figure is the minimum of the quiet repetitions' medians (what
 * the docs say), the median of all tokens stays beside it, the result is
 * "disturbed" with the counts in its reason.  Needing more quiet repetitions
 * than a round gives, the result is unstable after the re-measurement, whose
 * repetitions are pooled with the first round's; needing as many as two
 * rounds give together, the pooled result converges. */
static void test_measure_disturbed_reps_left_out(void **state)
{
    (void)state;
    char *dir = dt_mkdtemp("dist");
    sh_db *db = open_test_db(dir);
    sh_genome g;
    char hex[17], exe[600];
    genome_of(TINY, &g, hex);
    snprintf(exe, sizeof exe, "%s/variant", dir);
    write_disturbed_variant(exe, hex);
    sh_measure_opts o = {.exe_path = exe, .prompt = 16, .gen = 8, .min_reps = 3, .max_reps = 30,
                         .reps_per_run = 3, .tolerance = 0.02, .no_probe = true};
    sh_mrecord r;
    sh_err err = {{0}};
    if (sh_measure_genome(db, "local", &g, &o, &r, &err)) fail_msg("measure: %s", err.msg);
    assert_true(r.converged);
    assert_int_equal(r.reps, 9);                 /* 3 quiet repetitions take 3 invocations */
    assert_int_equal(r.quiet_reps, 3);
    assert_int_equal(r.disturbed_reps, 6);
    assert_string_equal(r.stability, "disturbed");
    assert_non_null(strstr(r.reason, "busy 3, throttled 3"));
    assert_true(r.decode_ms >= 10 * 0.994 && r.decode_ms <= 10 * 1.006);   /* quiet reps only */
    assert_true(r.decode_ms_median > 14);                                    /* all tokens */
    json_t *res = stored_result(db, r.eval_id);
    assert_string_equal(json_string_value(json_object_get(res, "estimator")), SH_DECODE_ESTIMATOR);
    assert_string_equal(json_string_value(json_object_get(res, "estimator_ci_method")), SH_DECODE_CI_METHOD);
    assert_int_equal(json_integer_value(json_object_get(res, "busy_reps")), 3);
    assert_int_equal(json_integer_value(json_object_get(res, "throttled_reps")), 3);
    json_decref(res);
    double *v = NULL;
    int n = 0;
    assert_int_equal(sh_db_get_samples(db, r.eval_id, "rep_quiet", &v, &n, &err), 0);
    assert_int_equal(n, 9);
    for (int i = 0; i < n; i++) assert_true(v[i] == (i % 3 == 2 ? 1.0 : 0.0));
    free(v);
    assert_int_equal(sh_db_get_samples(db, r.eval_id, "rep_procs_running", &v, &n, &err), 0);
    assert_true(n == 9 && v[0] == 7 && v[2] == 1);
    free(v);
    sh_mrecord_free(&r);
    /* a disturbed (not unstable) result is an answer: reused */
    assert_int_equal(sh_measure_genome(db, "local", &g, &o, &r, &err), 0);
    assert_true(r.cached);
    assert_string_equal(r.stability, "disturbed");
    sh_mrecord_free(&r);
    /* needing more quiet repetitions than the cap allows: unstable after
     * waiting and measuring again, with the reason */
    o.force = true;
    o.min_reps = 5;
    o.max_reps = 6;
    o.settle_rounds = 1;
    o.settle_max_s = 0.05;
    o.backoff_s = 0.01;
    assert_int_equal(sh_measure_genome(db, "local", &g, &o, &r, &err), 0);
    assert_false(r.cached);
    assert_string_equal(r.stability, "unstable");
    assert_int_equal(r.rounds, 2);
    /* the settle round's repetitions are pooled with the first round's */
    assert_int_equal(r.reps, 12);
    assert_non_null(strstr(r.reason, "busy: 4 of 12 repetitions"));
    assert_non_null(strstr(r.reason, "throttled: 4 of 12"));
    assert_non_null(strstr(r.reason, "only 4 quiet repetitions (5 needed)"));
    sh_mrecord_free(&r);
    /* pooling adds evidence: 4 quiet repetitions needed, each round has 2,
     * together they have 4: the second round completes the first */
    o.min_reps = 4;
    assert_int_equal(sh_measure_genome(db, "local", &g, &o, &r, &err), 0);
    assert_string_equal(r.stability, "disturbed");
    assert_true(r.converged);
    assert_int_equal(r.rounds, 2);
    assert_int_equal(r.reps, 12);
    assert_int_equal(r.quiet_reps, 4);
    assert_true(r.decode_ms >= 10 * 0.994 && r.decode_ms <= 10 * 1.006);
    res = stored_result(db, r.eval_id);
    json_t *rounds = json_object_get(res, "rounds");
    assert_int_equal(json_array_size(rounds), 2);
    json_t *r0 = json_array_get(rounds, 0), *r1 = json_array_get(rounds, 1);
    assert_int_equal(json_integer_value(json_object_get(r0, "round_quiet_reps")), 2);
    assert_non_null(strstr(json_string_value(json_object_get(r0, "doubtful")), "only 2 quiet"));
    assert_int_equal(json_integer_value(json_object_get(r1, "round_reps")), 6);
    assert_int_equal(json_integer_value(json_object_get(r1, "round_quiet_reps")), 2);
    assert_int_equal(json_integer_value(json_object_get(r1, "quiet_reps")), 4);   /* the pool */
    assert_string_equal(json_string_value(json_object_get(r1, "doubtful")), "");
    json_decref(res);
    assert_int_equal(sh_db_get_samples(db, r.eval_id, "rep_quiet", &v, &n, &err), 0);
    assert_int_equal(n, 12);                      /* every repetition of both rounds is stored */
    free(v);
    sh_mrecord_free(&r);
    /* the robust estimate of known repetition medians: the Harrell-Davis
     * quantile against values computed independently (mpmath's incomplete
     * beta, 30 digits): the 10th percentile of 1..20 is 2.5008341758180;
     * the median of a symmetric sample is its centre */
    double seq[20];
    for (int i = 0; i < 20; i++) seq[i] = 20 - i;          /* unsorted on purpose */
    assert_true(fabs(sh_hd_quantile(seq, 20, 0.10) - 2.5008341758180) < 1e-9);
    double sym[5] = {4, 1, 3, 5, 2};
    assert_true(fabs(sh_hd_quantile(sym, 5, 0.5) - 3.0) < 1e-12);
    assert_true(isnan(sh_hd_quantile(sym, 0, 0.5)) && isnan(sh_hd_quantile(sym, 5, 1.0)));
    double med[4] = {3.0, 1.0, 2.0, 1.5}, est, lo, hi;
    assert_int_equal(sh_decode_estimate_ci(med, 4, &est, &lo, &hi), 0);
    assert_true(fabs(est - sh_hd_quantile(med, 4, SH_DECODE_QUANTILE)) < 1e-12);
    assert_true(est > 1.0 && est < 1.5);                /* between the two lowest, nearer the lowest */
    assert_true(lo >= 1.0 && lo <= est && hi >= est && hi <= 3.0);
    double again, lo2, hi2;                             /* a fixed seed: the same interval */
    assert_int_equal(sh_decode_estimate_ci(med, 4, &again, &lo2, &hi2), 0);
    assert_true(again == est && lo2 == lo && hi2 == hi);
    double one = 2.5;
    assert_int_equal(sh_decode_estimate_ci(&one, 1, &est, &lo, &hi), 0);
    assert_true(est == 2.5 && lo == 2.5 && hi == 2.5);
    assert_int_equal(sh_decode_estimate_ci(med, 0, &est, &lo, &hi), -1);
    sh_measure_shutdown();
    sh_db_close(db);
    dt_rm_rf(dir);
    free(dir);
}


/* ---- steal time: the variant's /proc/stat reader on fixtures -------------------------------- */

static void read_procstat_fixture(const char *name, const int *cpus, int ncpus, rt_procstat *out)
{
    const char *root = getenv("STARHIL_ROOT");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/procstat/%s", root ? root : ".", name);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("fixture %s missing", path);
    rt_procstat_read(f, 100, cpus, ncpus, out);
    fclose(f);
}

/* rt_procstat.h, as the variant reads /proc/stat around every repetition:
 * steal summed over the CPUs it runs on (every CPU when not pinned), shares
 * over a repetition, and files that do not parse left unknown, never guessed:
 * a kernel without the steal column, negative numbers, letters, overflows,
 * a missing (offline) CPU, and a long "intr" line whose continuation (past
 * the 511 bytes read at a time) starts like a cpu line. */
static void test_procstat_steal_fixtures(void **state)
{
    (void)state;
    rt_procstat a, b;
    int c1[] = {1}, c0[] = {0}, both[] = {0, 1}, c05[] = {0, 5}, c2[] = {2};
    read_procstat_fixture("vm-before", c1, 1, &a);
    read_procstat_fixture("vm-after", c1, 1, &b);
    assert_int_equal(a.procs_running, 3);                 /* not the 77 inside the intr line */
    assert_int_equal(b.procs_running, 5);
    assert_true(fabs(a.steal_s - 2.50) < 1e-9);           /* 250 ticks at 100 Hz, not 999999 */
    assert_int_equal(a.steal_cpus, 1);
    assert_true(fabs(a.busy_s - (1000 + 100 + 500 + 0 + 30 + 400) / 100.0) < 1e-9);
    assert_true(fabs(rt_procstat_steal_share(&a, &b, 1.0) - 0.60) < 1e-9);   /* cpu1: 60 ticks in 1 s */
    read_procstat_fixture("vm-before", c0, 1, &a);
    read_procstat_fixture("vm-after", c0, 1, &b);
    assert_true(fabs(rt_procstat_steal_share(&a, &b, 1.0) - 0.20) < 1e-9);
    assert_true(fabs(rt_procstat_steal_share(&a, &b, 2.0) - 0.10) < 1e-9);
    read_procstat_fixture("vm-before", both, 2, &a);
    read_procstat_fixture("vm-after", both, 2, &b);
    assert_int_equal(a.steal_cpus, 2);
    assert_true(fabs(rt_procstat_steal_share(&a, &b, 1.0) - 0.40) < 1e-9);
    read_procstat_fixture("vm-before", NULL, 0, &a);      /* not pinned: every CPU, aggregate line */
    read_procstat_fixture("vm-after", NULL, 0, &b);
    assert_int_equal(a.steal_cpus, 2);
    assert_true(fabs(rt_procstat_steal_share(&a, &b, 1.0) - 0.40) < 1e-9);
    assert_true(rt_procstat_steal_share(&b, &a, 1.0) == -1);   /* a counter going backwards */
    assert_true(rt_procstat_steal_share(&a, &b, 0) == -1);
    read_procstat_fixture("vm-before", c05, 2, &a);       /* CPU 5 has no line (offline): left out */
    assert_int_equal(a.steal_cpus, 1);
    assert_true(fabs(a.steal_s - 1.50) < 1e-9);
    read_procstat_fixture("vm-after", both, 2, &b);
    assert_true(rt_procstat_steal_share(&a, &b, 1.0) == -1);   /* different CPU sets */

    read_procstat_fixture("old-kernel", both, 2, &a);     /* 7 columns: no steal */
    assert_true(a.steal_s == -1 && a.steal_cpus == 0);
    assert_true(fabs(a.busy_s - (1000 + 100 + 500 + 0 + 30) / 100.0) < 1e-9);
    assert_int_equal(a.procs_running, 2);
    read_procstat_fixture("old-kernel", NULL, 0, &a);
    assert_true(a.steal_s == -1);

    read_procstat_fixture("hostile", NULL, 0, &a);
    assert_true(a.busy_s == -1 && a.steal_s == -1 && a.procs_running == -1);
    read_procstat_fixture("hostile", both, 2, &a);       /* "x" and an overflow: both lines refused */
    assert_true(a.steal_s == -1);
    read_procstat_fixture("hostile", c2, 1, &a);         /* the one well-formed line */
    assert_true(fabs(a.steal_s - 0.05) < 1e-9 && a.steal_cpus == 1);
    rt_procstat_read(NULL, 100, c2, 1, &a);              /* no /proc/stat (hidden) */
    assert_true(a.busy_s == -1 && a.steal_s == -1 && a.procs_running == -1);

    unsigned long long v[10];
    int cpu;
    assert_int_equal(rt_procstat_cpu_line("cpu12 1 2 3 4 5 6 7 8 9 10 11 12\n", &cpu, v), 10);
    assert_int_equal(cpu, 12);
    assert_int_equal(rt_procstat_cpu_line("cpu  1 2 3\n", &cpu, v), 3);
    assert_int_equal(cpu, -1);
    assert_int_equal(rt_procstat_cpu_line("cpu 18446744073709551615 0\n", &cpu, v), 2);
    assert_true(v[0] == 18446744073709551615ULL);
    assert_int_equal(rt_procstat_cpu_line("cpu 18446744073709551616 0\n", &cpu, v), 0);
    assert_int_equal(rt_procstat_cpu_line("cpu 1 2+3\n", &cpu, v), 0);
    assert_int_equal(rt_procstat_cpu_line("cpufreq 1 2\n", &cpu, v), 0);
    assert_int_equal(rt_procstat_cpu_line("ctxt 1\n", &cpu, v), 0);
}

/* A variant whose board readings say: the first repetition of every
 * invocation lost `steal` of its CPUs' time to other guests (and ran at 20
 * ms/token), the others none (10 ms/token); nothing waited for a CPU, so
 * only the steal reading can tell. */
static void write_steal_variant(const char *path, const char *hash, const char *steal_first, const char *steal_rest)
{
    char vars[128];
    snprintf(vars, sizeof vars, "-v s0=%s -v s1=%s", steal_first, steal_rest);
    write_scripted_variant(path, hash, vars, "(r == 0 ? 20 : 10)",
        "printf \"{\\\"wall_s\\\":1,\\\"wait_s\\\":0,\\\"self_cpu_s\\\":1,\\\"other_cpus\\\":0,\\\"procs_running\\\":1,\\\"load1\\\":1,\\\"freq_khz\\\":2000000,\\\"temp_mc\\\":40000,\\\"steal\\\":%s}\", r == 0 ? s0 : s1");
}

/* Measures with exe_all, whose every repetition is disturbed, at 6
 * repetitions and one quick settle round: the result must be unstable with
 * `reason` in its reason (12 of 12 repetitions).  Then closes db and
 * removes dir (the end of the disturbance-class tests). */
static void expect_unstable_then_clean_up(sh_db *db, const sh_genome *g, sh_measure_opts *o, const char *exe_all,
                                          const char *reason, char *dir)
{
    sh_mrecord r;
    sh_err err = {{0}};
    o->exe_path = exe_all;
    o->max_reps = 6;
    o->settle_rounds = 1;
    o->settle_max_s = 0.05;
    o->backoff_s = 0.01;
    if (sh_measure_genome(db, "local", g, o, &r, &err)) fail_msg("measure: %s", err.msg);
    assert_string_equal(r.stability, "unstable");
    assert_int_equal(r.quiet_reps, 0);
    if (!strstr(r.reason, reason)) fail_msg("reason: %s", r.reason);
    sh_mrecord_free(&r);
    sh_measure_shutdown();
    sh_db_close(db);
    dt_rm_rf(dir);
    free(dir);
}

/* Repetitions that lost time to the hypervisor (steal) are disturbed: left
 * out of the estimate, counted, stored per repetition (rep_steal), and the
 * reason says "steal"; below the threshold, or with the check off, they count. */
static void test_measure_steal_reps_left_out(void **state)
{
    (void)state;
    char *dir = dt_mkdtemp("steal");
    sh_db *db = open_test_db(dir);
    sh_genome g;
    char hex[17], exe[600], exe_all[600];
    genome_of(TINY, &g, hex);
    snprintf(exe, sizeof exe, "%s/variant", dir);
    snprintf(exe_all, sizeof exe_all, "%s/variant-all", dir);
    write_steal_variant(exe, hex, "0.30", "0.01");
    write_steal_variant(exe_all, hex, "0.30", "0.30");
    sh_measure_opts o = {.exe_path = exe, .prompt = 16, .gen = 8, .min_reps = 3, .max_reps = 30,
                         .reps_per_run = 3, .tolerance = 0.02, .no_probe = true};
    sh_mrecord r;
    sh_err err = {{0}};
    if (sh_measure_genome(db, "local", &g, &o, &r, &err)) fail_msg("measure: %s", err.msg);
    assert_true(r.converged);
    assert_int_equal(r.reps, 6);                  /* 3 quiet repetitions take 2 invocations */
    assert_int_equal(r.quiet_reps, 4);
    assert_string_equal(r.stability, "disturbed");
    assert_non_null(strstr(r.reason, "busy 0, throttled 0, steal 2"));
    assert_true(r.decode_ms < 10.1);              /* the 20 ms repetitions are left out */
    json_t *res = stored_result(db, r.eval_id);
    assert_int_equal(json_integer_value(json_object_get(res, "steal_reps")), 2);
    assert_true(json_real_value(json_object_get(res, "steal_max")) == 0.05);
    json_decref(res);
    double *v = NULL;
    int n = 0;
    assert_int_equal(sh_db_get_samples(db, r.eval_id, "rep_steal", &v, &n, &err), 0);
    assert_int_equal(n, 6);
    assert_true(v[0] == 0.30 && v[1] == 0.01 && v[3] == 0.30);
    free(v);
    sh_mrecord_free(&r);
    /* a higher threshold, or none: every repetition counts (and the 20 ms ones keep the interval wide) */
    o.force = true;
    o.steal_max = 0.5;
    assert_int_equal(sh_measure_genome(db, "local", &g, &o, &r, &err), 0);
    assert_int_equal(r.quiet_reps, r.reps);
    assert_string_equal(r.stability, "quiet");
    sh_mrecord_free(&r);
    /* every repetition stolen from: unstable after waiting and measuring again, with the reason */
    o.steal_max = 0;
    expect_unstable_then_clean_up(db, &g, &o, exe_all, "steal: 12 of 12 repetitions lost more than 5% of their "
                                  "CPUs' time to other virtual machines (up to 30%)", dir);
}

/* A variant whose board readings say: beside the first repetition of every
 * invocation other processes used `others` CPUs (wall `wall` s, 20 ms/token),
 * beside the others `rest` (10 ms/token); nothing waited for a CPU and
 * nothing was stolen, so only others' CPU use can tell (a co-runner on the
 * CPU the variant leaves free, slowing it through caches and memory). */
static void write_shared_variant(const char *path, const char *hash, const char *others, const char *rest,
                                 const char *wall)
{
    char vars[160];
    snprintf(vars, sizeof vars, "-v o0=%s -v o1=%s -v w=%s", others, rest, wall);
    write_scripted_variant(path, hash, vars, "(r == 0 ? 20 : 10)",
        "printf \"{\\\"wall_s\\\":%s,\\\"wait_s\\\":0,\\\"self_cpu_s\\\":1,\\\"other_cpus\\\":%s,\\\"procs_running\\\":1,\\\"load1\\\":1,\\\"freq_khz\\\":2000000,\\\"temp_mc\\\":40000,\\\"steal\\\":0}\", w, r == 0 ? o0 : o1");
}

/* Repetitions beside which other processes used more than others_max CPUs
 * are disturbed ("shared"): left out of the estimate, counted, and named in
 * the reason; too short a repetition for /proc/stat's ticks to tell is not
 * flagged on its own, but is when its whole invocation tells; with a limit above the CPU count nothing is; a co-runner beside
 * every repetition leaves the result unstable with the reason. */
static void test_measure_shared_reps_left_out(void **state)
{
    (void)state;
    char *dir = dt_mkdtemp("shared");
    sh_db *db = open_test_db(dir);
    sh_genome g;
    char hex[17], exe[600], exe_short[600], exe_inv[600], exe_all[600];
    genome_of(TINY, &g, hex);
    snprintf(exe, sizeof exe, "%s/variant", dir);
    snprintf(exe_short, sizeof exe_short, "%s/variant-short", dir);
    snprintf(exe_inv, sizeof exe_inv, "%s/variant-inv", dir);
    snprintf(exe_all, sizeof exe_all, "%s/variant-all", dir);
    write_shared_variant(exe, hex, "0.9", "0.1", "1");
    write_shared_variant(exe_short, hex, "0.9", "0.1", "0.02");   /* 10 ms ticks: +-1.5 CPUs */
    write_shared_variant(exe_inv, hex, "0.9", "0.9", "0.05");
    write_shared_variant(exe_all, hex, "1.2", "1.2", "1");
    sh_measure_opts o = {.exe_path = exe, .prompt = 16, .gen = 8, .min_reps = 3, .max_reps = 30,
                         .reps_per_run = 3, .tolerance = 0.02, .no_probe = true};
    sh_mrecord r;
    sh_err err = {{0}};
    if (sh_measure_genome(db, "local", &g, &o, &r, &err)) fail_msg("measure: %s", err.msg);
    assert_true(r.converged);
    assert_int_equal(r.reps, 6);
    assert_int_equal(r.quiet_reps, 4);
    assert_int_equal(r.shared_reps, 2);
    assert_string_equal(r.stability, "disturbed");
    if (!strstr(r.reason, "busy 0, throttled 0, steal 0, shared 2")) fail_msg("reason: %s", r.reason);
    assert_true(r.decode_ms < 10.1);
    json_t *res = stored_result(db, r.eval_id);
    assert_int_equal(json_integer_value(json_object_get(res, "shared_reps")), 2);
    assert_true(json_real_value(json_object_get(res, "others_max")) == 0.5);
    json_decref(res);
    sh_mrecord_free(&r);
    /* repetitions of 20 ms: others' use is not known to better than the ticks, so none is flagged */
    o.force = true;
    o.exe_path = exe_short;
    assert_int_equal(sh_measure_genome(db, "local", &g, &o, &r, &err), 0);
    assert_int_equal(r.shared_reps, 0);
    assert_int_equal(r.quiet_reps, r.reps);
    sh_mrecord_free(&r);
    /* 50 ms repetitions beside a co-runner using 0.9 CPU: too short to tell one by one (grain
     * 0.6 CPU), but over the invocation's three (grain 0.2) every one is shared */
    o.exe_path = exe_inv;
    o.settle_rounds = -1;
    assert_int_equal(sh_measure_genome(db, "local", &g, &o, &r, &err), 0);
    assert_int_equal(r.shared_reps, r.reps);
    assert_string_equal(r.stability, "unstable");
    sh_mrecord_free(&r);
    o.settle_rounds = 0;
    /* a limit above the CPU count: every repetition counts */
    o.exe_path = exe;
    o.others_max = 4;
    assert_int_equal(sh_measure_genome(db, "local", &g, &o, &r, &err), 0);
    assert_int_equal(r.quiet_reps, r.reps);
    assert_string_equal(r.stability, "quiet");
    sh_mrecord_free(&r);
    /* a co-runner beside every repetition: unstable after waiting and measuring again, with the reason */
    o.others_max = 0;
    expect_unstable_then_clean_up(db, &g, &o, exe_all, "shared: 12 of 12 repetitions ran while other processes "
                                  "used more than 0.5 CPUs beside them (up to 1.20)", dir);
}

/* ---- chip profile (quick sweep, real variants on this host) --------------------------------- */

static void test_profile_quick_local(void **state)
{
    (void)state;
    char *dir = dt_mkdtemp("prof");
    sh_db *db = open_test_db(dir);
    sh_profile_opts o = {.quick = true, .threads = 1, .timeout_s = 120, .retries = -1};
    int n = 0;
    char *rows = NULL;
    sh_err err = {{0}};
    if (sh_profile_device(db, "local", &o, &n, &rows, &err)) fail_msg("profile: %s", err.msg);
    assert_int_equal(n, 5);                                   /* conv, gqa x2 depths, swiglu, moe */
    json_t *a = json_loads(rows, 0, NULL);
    assert_int_equal(json_array_size(a), 5);
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *e = json_array_get(a, i);
        assert_true(json_number_value(json_object_get(e, "latency_us")) > 0);
        assert_true(json_number_value(json_object_get(e, "gbytes_per_s")) > 0);
    }
    json_decref(a);
    free(rows);
    sh_profile_rec *stored;
    int n_stored, n_blocks = 0;
    assert_int_equal(sh_db_list_profile(db, "local", &stored, &n_stored, &err), 0);
    assert_int_equal(n_stored, 5);
    for (int i = 0; i < n_stored; i++) {   /* distinct blocks */
        int k = 0;
        while (k < i && strcmp(stored[k].block, stored[i].block)) k++;
        n_blocks += k == i;
    }
    assert_int_equal(n_blocks, 4);
    sh_profile_recs_free(stored, n_stored);
    sh_measure_shutdown();
    sh_db_close(db);
    /* the stored table, side by side with itself (ratio 1) and with a device without one */
    char dbp[600], *out = NULL;
    snprintf(dbp, sizeof dbp, "%s/runs.db", dir);
    const char *show[] = {"profile", "--show", "local", "--vs", "local", "--json", NULL};
    assert_int_equal(run_cliv(dbp, &out, show), 0);
    json_t *cmp = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_array_size(cmp), 5);
    assert_true(fabs(json_number_value(json_object_get(json_array_get(cmp, 0), "b_over_a")) - 1.0) < 1e-9);
    json_decref(cmp);
    const char *none[] = {"profile", "--show", "nosuch", NULL};
    assert_int_equal(run_cliv(dbp, &out, none), 1);
    assert_non_null(strstr(out, "no stored profile"));
    free(out);
    dt_rm_rf(dir);
    free(dir);
}

/* ---- CLI ------------------------------------------------------------------------------------- */

/* What a command said: stdout then stderr; but for a --json command that
 * succeeded, stdout alone (progress and waiting lines go to stderr, and a
 * loaded host makes a measurement wait and say so). */
static char *cli_output(char *const *argv, const sh_proc_result *r, int rc)
{
    bool json = false;
    for (int i = 0; argv[i]; i++)
        if (!strcmp(argv[i], "--json")) json = true;
    size_t n = r->out_len + r->err_len + 2;
    char *out = malloc(n);
    snprintf(out, n, "%s%s", r->out, rc == 0 && json ? "" : r->err);
    return out;
}

static int run_cli(const char *db, char **out, const char *a1, const char *a2, const char *a3,
                   const char *a4, const char *a5, const char *a6)
{
    const char *bin = getenv("STARHIL_BIN");
    if (!bin) bin = "./build/san/starhil";
    char *argv[12] = {(char *)bin, "--db", (char *)db, (char *)a1, (char *)a2, (char *)a3, (char *)a4,
                      (char *)a5, (char *)a6, NULL};
    sh_proc_opts po = {.timeout_s = 120};
    sh_proc_result r;
    sh_err err = {{0}};
    if (sh_proc_run(argv, &po, &r, &err)) return -1;
    int rc = r.exited ? r.exit_code : 128 + r.signal;
    if (out) *out = cli_output(argv, &r, rc);
    sh_proc_result_free(&r);
    return rc;
}

static int run_cliv(const char *db, char **out, const char *const *args)
{
    const char *bin = getenv("STARHIL_BIN");
    if (!bin) bin = "./build/san/starhil";
    char *argv[40] = {(char *)bin, "--db", (char *)db};
    int k = 3;
    for (int i = 0; args[i] && k < 39; i++) argv[k++] = (char *)args[i];
    argv[k] = NULL;
    sh_proc_opts po = {.timeout_s = 120};
    sh_proc_result r;
    sh_err err = {{0}};
    if (sh_proc_run(argv, &po, &r, &err)) return -1;
    int rc = r.exited ? r.exit_code : 128 + r.signal;
    *out = cli_output(argv, &r, rc);
    sh_proc_result_free(&r);
    return rc;
}

static void test_ssh_cli_add_trust_check_probe(void **state)
{
    (void)state;
    assert_true(sshd_up);
    char *dir = dt_mkdtemp("sshcli");
    char db[600], kh[600], port[16];
    snprintf(db, sizeof db, "%s/cli.db", dir);
    snprintf(kh, sizeof kh, "%s/known_hosts", dir);
    snprintf(port, sizeof port, "%d", sshd.port);
    char *out = NULL;
    const char *add_untrusted[] = {"device", "add", "rpi", "--kind", "ssh", "--host", "127.0.0.1", "--port", port,
                                   "--user", sshd.user, "--key", sshd.user_key, "--known-hosts", kh,
                                   "--target", "x86_64-linux-gnu", "--cpus", "0", NULL};
    assert_int_equal(run_cliv(db, &out, add_untrusted), 0);   /* stored; not contacted yet */
    free(out);
    const char *check[] = {"device", "check", "rpi", "--json", NULL};
    assert_int_equal(run_cliv(db, &out, check), 1);           /* unknown host key: refused */
    assert_non_null(strstr(out, "unknown"));
    free(out);
    const char *rm[] = {"device", "rm", "rpi", NULL};
    assert_int_equal(run_cliv(db, &out, rm), 0);
    free(out);
    const char *add_trusted[] = {"device", "add", "rpi", "--kind", "ssh", "--host", "127.0.0.1", "--port", port,
                                 "--user", sshd.user, "--key", sshd.user_key, "--known-hosts", kh,
                                 "--target", "x86_64-linux-gnu", "--cpus", "0", "--trust-host-key", NULL};
    assert_int_equal(run_cliv(db, &out, add_trusted), 0);
    assert_non_null(strstr(out, "host key recorded"));
    free(out);
    assert_int_equal(run_cliv(db, &out, check), 0);
    json_t *c = json_loads(out, 0, NULL);
    free(out);
    assert_true(json_is_true(json_object_get(c, "ok")));
    assert_true(json_number_value(json_object_get(c, "run_ms")) > 0);
    json_decref(c);
    const char *probe[] = {"device", "probe", "rpi", "--json", NULL};
    assert_int_equal(run_cliv(db, &out, probe), 0);
    json_t *t = json_loads(out, 0, NULL);
    free(out);
    assert_true(json_integer_value(json_object_get(t, "n_cpus")) >= 1);
    json_decref(t);
    const char *list[] = {"device", "list", "--json", NULL};
    assert_int_equal(run_cliv(db, &out, list), 0);
    assert_non_null(strstr(out, "\"topology\": {"));           /* stored with the device */
    assert_null(strstr(out, "PRIVATE KEY"));                  /* only the key's path */
    free(out);
    const char *bad_key[] = {"device", "add", "x", "--kind", "ssh", "--host", "127.0.0.1", "--key", "/nonexistent/key",
                             "--target", "x86_64-linux-gnu", NULL};
    assert_int_equal(run_cliv(db, &out, bad_key), 2);
    free(out);
    dt_rm_rf(dir);
    free(dir);
}

static void test_cli_inventory(void **state)
{
    (void)state;
    char *dir = dt_mkdtemp("cli");
    char db[600];
    snprintf(db, sizeof db, "%s/cli.db", dir);
    char *out = NULL;
    assert_int_equal(run_cli(db, &out, "device", "--help", NULL, NULL, NULL, NULL), 0);
    assert_non_null(strstr(out, "device add"));
    free(out);
    assert_int_equal(run_cli(db, &out, "measure", "--help", NULL, NULL, NULL, NULL), 0);
    free(out);
    assert_int_equal(run_cli(db, &out, "profile", "--help", NULL, NULL, NULL, NULL), 0);
    free(out);
    assert_int_equal(run_cli(db, &out, "device", "add", "bad;name", NULL, NULL, NULL), 2);
    assert_non_null(strstr(out, "device name"));
    free(out);
    assert_int_equal(run_cli(db, &out, "device", "add", "b1", "--kind", "ssh", NULL), 2);
    assert_non_null(strstr(out, "--host"));
    free(out);
    assert_int_equal(run_cli(db, &out, "device", "add", "b1", "--kind", "toaster", NULL), 2);
    free(out);
    assert_int_equal(run_cli(db, &out, "device", "add", "q", "--kind", "qemu-aarch64", NULL), 0);
    free(out);
    assert_int_equal(run_cli(db, &out, "device", "add", "q", "--kind", "qemu-aarch64", NULL), 1);
    free(out);
    assert_int_equal(run_cli(db, &out, "device", "add", "l2", "--cpus", "0", NULL), 0);
    free(out);
    assert_int_equal(run_cli(db, &out, "device", "add", "l3", "--cpus", "0-", NULL), 2);
    free(out);
    assert_int_equal(run_cli(db, &out, "device", "list", "--json", NULL, NULL, NULL), 0);
    json_t *a = json_loads(out, 0, NULL);
    free(out);
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), 3);                   /* local (implicit), q, l2 */
    json_decref(a);
    assert_int_equal(run_cli(db, &out, "device", "check", "l2", "--json", NULL, NULL), 0);
    json_t *c = json_loads(out, 0, NULL);
    assert_true(json_is_true(json_object_get(c, "ok")));
    json_decref(c);
    free(out);
    assert_int_equal(run_cli(db, &out, "device", "probe", "local", NULL, NULL, NULL), 0);
    assert_non_null(strstr(out, "cluster 0"));
    free(out);
    assert_int_equal(run_cli(db, &out, "device", "rm", "q", NULL, NULL, NULL), 0);
    free(out);
    assert_int_equal(run_cli(db, &out, "device", "rm", "q", NULL, NULL, NULL), 1);
    free(out);
    assert_int_equal(run_cli(db, &out, "measure", TINY, "--device", "nope", "--prompt=8", "--gen=4"), 1);
    assert_non_null(strstr(out, "no device named"));
    free(out);
    assert_int_equal(run_cli(db, &out, "measure", TINY, "--wtype", "q3_k", NULL, NULL), 2);
    free(out);
    /* the real variant end to end through the CLI, then the stored result
     * (settle waits bounded: on a loaded host two default 60 s waits would
     * outlast run_cliv's 120 s) */
    const char *meas[] = {"measure", TINY, "--prompt=8", "--gen=4", "--max-reps=2", "--settle-max=5", "--json", NULL};
    assert_int_equal(run_cliv(db, &out, meas), 0);
    json_t *m = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(m);
    assert_false(json_is_true(json_object_get(m, "cached")));
    assert_true(json_number_value(json_object_get(m, "decode_ms_median")) > 0);
    /* a result stored unstable (this machine was busy) is never reused */
    const char *stab = json_string_value(json_object_get(m, "stability"));
    bool first_unstable = stab && !strcmp(stab, "unstable");
    json_decref(m);
    assert_int_equal(run_cliv(db, &out, meas), 0);
    m = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_is_true(json_object_get(m, "cached")), !first_unstable);
    json_decref(m);
    dt_rm_rf(dir);
    free(dir);
}


/* ---- kills leave nothing behind --------------------------------------------------------------- */

/* A starhil process started with a marker in its environment, which every
 * local descendant inherits (the compiler and its cc1/as/ld, the variant). */
static pid_t spawn_marked(char *const argv[], const char *marker, const char *tmpdir, const char *cache)
{
    pid_t pid = fork();
    if (pid == 0) {
        setenv("STARHIL_KILLMARK", marker, 1);
        setenv("TMPDIR", tmpdir, 1);
        setenv("STARHIL_CACHE_DIR", cache, 1);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) { dup2(devnull, 0); dup2(devnull, 1); dup2(devnull, 2); }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static bool file_has(const char *path, const char *needle, size_t nlen)
{
    size_t len = 0;
    char *t = dt_read_file(path, &len);
    bool found = false;
    for (size_t i = 0; t && i + nlen <= len && !found; i++) found = memcmp(t + i, needle, nlen) == 0;
    free(t);
    return found;
}

/* Processes (not zombies) carrying the marker, or (remote board on this host)
 * whose command line names remote_base or whose directory is inside it.
 * If comm is given, only processes with that name. */
static int count_marked(const char *marker, const char *remote_base, const char *comm)
{
    char env_needle[128];
    int en = snprintf(env_needle, sizeof env_needle, "STARHIL_KILLMARK=%s", marker);
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0 || pid == getpid()) continue;
        char p[128], buf[600];
        snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
        char *st = dt_read_file(p, NULL);
        char *rp = st ? strrchr(st, ')') : NULL;
        bool zombie = rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
        bool name_ok = true;
        if (comm && st) {
            char want[64];
            snprintf(want, sizeof want, "(%s)", comm);
            name_ok = strstr(st, want) != NULL;
        }
        free(st);
        if (!rp || zombie || !name_ok) continue;
        snprintf(p, sizeof p, "/proc/%d/environ", (int)pid);
        bool hit = file_has(p, env_needle, (size_t)en);
        if (!hit && remote_base) {
            snprintf(p, sizeof p, "/proc/%d/cmdline", (int)pid);
            hit = file_has(p, remote_base, strlen(remote_base));
            snprintf(p, sizeof p, "/proc/%d/cwd", (int)pid);
            ssize_t k = readlink(p, buf, sizeof buf - 1);
            if (!hit && k > 0) { buf[k] = '\0'; hit = strncmp(buf, remote_base, strlen(remote_base)) == 0; }
        }
        n += hit;
    }
    if (d) closedir(d);
    return n;
}

/* Entries of dir whose name contains part (recursing one level into dirs when deep). */
static int count_entries(const char *dir, const char *part, bool deep)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (strstr(e->d_name, part)) n++;
        if (deep && e->d_type == DT_DIR) {
            char sub[1200];
            snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
            n += count_entries(sub, part, false);
        }
    }
    if (d) closedir(d);
    return n;
}

typedef struct kill_case {
    const char *what;
    const char *const *args;   /* after `starhil --db DB` */
    const char *wait_comm;     /* kill once a marked process of this name runs */
    bool remote;               /* the process to wait for runs on the ssh board */
    int sig;
} kill_case;

/* Starts the command, waits until wait_comm runs, then a random 0-400 ms,
 * sends sig, and checks that within 10 s no process of it is left and no
 * temporary file or directory. */
static void kill_and_count(const kill_case *k, const char *db, const char *base, const char *remote_base)
{
    static unsigned seed;
    if (!seed) seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    char marker[64], tmpdir[800], cache[800];
    snprintf(marker, sizeof marker, "k%u", (unsigned)rand_r(&seed));
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp-%s", base, marker);
    snprintf(cache, sizeof cache, "%s/cache-%s", base, marker);
    mkdir(tmpdir, 0700);
    const char *bin = getenv("STARHIL_BIN");
    if (!bin) bin = "./build/san/starhil";
    char *argv[40] = {(char *)bin, "--db", (char *)db};
    int n = 3;
    for (int i = 0; k->args[i] && n < 39; i++) argv[n++] = (char *)k->args[i];
    argv[n] = NULL;
    pid_t pid = spawn_marked(argv, marker, tmpdir, cache);
    assert_true(pid > 0);
    bool seen = false;
    for (int i = 0; i < 1200 && !seen; i++) {   /* up to 2 minutes on a loaded machine */
        seen = count_marked(marker, k->remote ? remote_base : NULL, k->wait_comm) > 0;
        if (!seen) sleep_ms(100);
    }
    if (!seen) { dt_kill_tree(pid); fail_msg("%s: %s never ran", k->what, k->wait_comm); }
    sleep_ms((int)(rand_r(&seed) % 400));
    kill(pid, k->sig);
    int st;
    waitpid(pid, &st, 0);
    int left = -1;
    for (int i = 0; i < 100 && left != 0; i++) {   /* 2 s is the promise; 10 s on a loaded machine */
        left = count_marked(marker, k->remote ? remote_base : NULL, NULL);
        if (left) sleep_ms(100);
    }
    if (left) fail_msg("%s: %d process(es) still running after %s", k->what, left, strsignal(k->sig));
    int tmp_left = count_entries(tmpdir, "", false);
    int cache_left = count_entries(cache, ".tmp.", true);
    char variants[900];
    snprintf(variants, sizeof variants, "%s/variants", cache);
    cache_left += count_entries(variants, ".tmp.", true);
    int remote_left = k->remote ? count_entries(remote_base, "starhil.", false) : 0;
    for (int i = 0; i < 50 && remote_left; i++) {   /* the board's keeper ends a moment later */
        sleep_ms(100);
        remote_left = count_entries(remote_base, "starhil.", false);
    }
    if (tmp_left || cache_left || remote_left)
        fail_msg("%s: left %d file(s) in TMPDIR, %d temporary file(s) in the cache, %d remote working "
                 "director(ies)", k->what, tmp_left, cache_left, remote_left);
    dt_rm_rf(tmpdir);
    dt_rm_rf(cache);
}

static void test_kill_leaves_nothing(void **state)
{
    (void)state;
    assert_true(sshd_up);
    char *dir = dt_mkdtemp("kill");
    char db[600], remote_base[700], exe[700], port[16];
    snprintf(db, sizeof db, "%s/k.db", dir);
    snprintf(remote_base, sizeof remote_base, "%s/board", dir);
    snprintf(exe, sizeof exe, "%s/hang-variant", dir);
    snprintf(port, sizeof port, "%d", sshd.port);
    sh_genome g;
    char hex[17];
    genome_of(TINY, &g, hex);
    assert_int_equal(dt_fake_variant(exe, hex, "hang", NULL, 5.0, 300), 0);
    char *out = NULL;
    const char *add[] = {"device", "add", "board", "--kind", "ssh", "--host", "127.0.0.1", "--port", port,
                         "--user", sshd.user, "--key", sshd.user_key, "--known-hosts", sshd.known_hosts,
                         "--target", sh_host_triple(), "--workdir", remote_base, NULL};
    if (run_cliv(db, &out, add)) fail_msg("device add: %s", out);
    free(out);
    const char *build[] = {"build", TINY, NULL};
    const char *measure_local[] = {"measure", TINY, "--exe", exe, "--prompt=8", "--gen=4", "--retries=0", NULL};
    const char *measure_board[] = {"measure", TINY, "--device", "board", "--exe", exe, "--prompt=8", "--gen=4",
                                   "--retries=0", NULL};
    const char *search[] = {"search", "--budget", "4", "--population", "2", "--seed", "3", NULL};
    const char *score[] = {"score", TINY, "--tasks", "mqar", NULL};
    const kill_case cases[] = {
        {"build (kill -9 in the compiler)", build, "cc1", false, SIGKILL},
        {"build (Ctrl-C in the compiler)", build, "cc1", false, SIGINT},
        {"measure local (kill -9 in the variant)", measure_local, "sleep", false, SIGKILL},
        {"measure local (Ctrl-C in the variant)", measure_local, "sleep", false, SIGINT},
        {"measure on the ssh board (kill -9 in the variant)", measure_board, "sleep", true, SIGKILL},
        {"search (kill -9 in the compiler)", search, "cc1", false, SIGKILL},
        {"score (kill -9)", score, "starhil", false, SIGKILL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) kill_and_count(&cases[i], db, dir, remote_base);

    /* leftovers of harder crashes (no supervisor, no keeper either) are swept
     * by the next run: pid 999999999 does not exist */
    char cache[800], stale[1200], tmpdir[800], marker[] = "sweep";
    snprintf(cache, sizeof cache, "%s/cache-sweep", dir);
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp-sweep", dir);
    mkdir(tmpdir, 0700);
    snprintf(stale, sizeof stale, "%s/variants", cache);
    assert_int_equal(mkdir(cache, 0700) || mkdir(stale, 0700), 0);
    snprintf(stale, sizeof stale, "%s/variants/0123456789abcdef", cache);
    assert_int_equal(mkdir(stale, 0700), 0);
    snprintf(stale, sizeof stale, "%s/variants/0123456789abcdef/variant.tmp.999999999.4", cache);
    assert_int_equal(mkdir(stale, 0700), 0);
    snprintf(stale, sizeof stale, "%s/variants/0123456789abcdef/variant.tmp.999999999.4/ccXYZ.o", cache);
    assert_int_equal(dt_write_file(stale, "x", 0600), 0);
    snprintf(stale, sizeof stale, "%s/starhil-local.999999999.AbCdEf", tmpdir);
    assert_int_equal(mkdir(stale, 0700), 0);
    snprintf(stale, sizeof stale, "%s/starhil.QwErTy", remote_base);
    assert_int_equal(mkdir(stale, 0700), 0);
    snprintf(stale, sizeof stale, "%s/starhil.QwErTy/.owner", remote_base);
    assert_int_equal(dt_write_file(stale, "999999999\n", 0600), 0);
    assert_int_equal(dt_fake_variant(exe, hex, "ok", NULL, 5.0, 0), 0);
    const char *const sweepers[][12] = {
        {"measure", TINY, "--exe", exe, "--prompt=8", "--gen=4", NULL},
        {"measure", TINY, "--device", "board", "--exe", exe, "--prompt=8", "--gen=4", NULL},
        /* sweeping comes first, even in a build that then fails (bad target: fast) */
        {"build", TINY, "--target", "no-such-target", NULL},
    };
    for (size_t i = 0; i < 3; i++) {
        const char *bin = getenv("STARHIL_BIN");
        if (!bin) bin = "./build/san/starhil";
        char *argv[20] = {(char *)bin, "--db", db};
        int n = 3;
        for (int j = 0; sweepers[i][j]; j++) argv[n++] = (char *)sweepers[i][j];
        argv[n] = NULL;
        pid_t pid = spawn_marked(argv, marker, tmpdir, cache);
        int st;
        waitpid(pid, &st, 0);
        int want = i == 2 ? 1 : 0;
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == want)) fail_msg("%s: status %d", sweepers[i][0], st);
    }
    snprintf(stale, sizeof stale, "%s/variants/0123456789abcdef", cache);
    assert_int_equal(count_entries(stale, ".tmp.", false), 0);
    assert_int_equal(count_entries(tmpdir, "starhil-", false), 0);
    assert_int_equal(count_entries(remote_base, "starhil.", false), 0);
    dt_rm_rf(dir);
    free(dir);
}

/* ---- retries that can succeed; deterministic failures -------------------------------------------- */

/* A real executable (not a script: a running binary's file cannot be
 * rewritten, a running script's can) that runs `sh SCRIPT ARGS...` and waits
 * for it, so the binary stays busy as long as the script runs. */
static void compile_wrapper(const char *exe, const char *script)
{
    char src[800], text[2000];
    snprintf(src, sizeof src, "%s.c", exe);
    snprintf(text, sizeof text,
             "#include <unistd.h>\n#include <sys/wait.h>\n"
             "int main(int argc, char **argv) {\n"
             "  char *av[64] = {\"sh\", \"%s\"}; int k = 2;\n"
             "  for (int i = 1; i < argc && k < 63; i++) av[k++] = argv[i];\n"
             "  av[k] = 0; pid_t p = fork();\n"
             "  if (p == 0) { execv(\"/bin/sh\", av); _exit(127); }\n"
             "  int st; waitpid(p, &st, 0);\n"
             "  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);\n}\n", script);
    assert_int_equal(dt_write_file(src, text, 0644), 0);
    char *argv[] = {"cc", "-O0", "-o", (char *)exe, src, NULL};
    assert_int_equal(dt_run(argv), 0);
}

typedef struct dropper_arg { char marker[700]; int dropped; } dropper_arg;

static void *dropper_main(void *p)
{
    dropper_arg *k = p;
    struct stat st;
    for (int i = 0; i < 2400 && stat(k->marker, &st); i++) sleep_ms(25);
    sleep_ms(300);
    k->dropped = dt_sshd_drop_connections(&sshd);
    return NULL;
}

static void test_ssh_retry_after_dropped_connection(void **state)
{
    (void)state;
    assert_true(sshd_up);
    char *dir = dt_mkdtemp("sshdrop");
    sh_db *db = open_test_db(dir);
    char remote_base[700], script[700], exe[700];
    snprintf(remote_base, sizeof remote_base, "%s/board-tmp", dir);
    snprintf(script, sizeof script, "%s/fake.sh", dir);
    snprintf(exe, sizeof exe, "%s/variant", dir);
    sh_device_rec rec;
    ssh_rec(&rec, "board", sshd.user_key, sshd.known_hosts, remote_base);
    add_device(db, &rec);
    sh_device_rec_free(&rec);
    sh_genome g;
    char hex[17];
    genome_of(TINY, &g, hex);
    dropper_arg k;
    memset(&k, 0, sizeof k);
    snprintf(k.marker, sizeof k.marker, "%s/started", dir);
    /* the first bench run hangs for 40 s: the connection drops under it while
     * sshd stays up, so the old run goes on unless its session takes it down */
    assert_int_equal(dt_fake_variant(script, hex, "slowfirst", k.marker, 5.0, 40), 0);
    compile_wrapper(exe, script);
    sh_measure_opts o = {.exe_path = exe, .prompt = 16, .gen = 8, .retries = 2, .backoff_s = 0.5,
                         .timeout_s = 120};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, dropper_main, &k), 0);
    sh_mrecord r;
    sh_err err = {{0}};
    int rc = sh_measure_genome(db, "board", &g, &o, &r, &err);
    pthread_join(th, NULL);
    assert_true(k.dropped > 0);
    if (rc) fail_msg("measure after a dropped connection: %s", err.msg);
    sh_eval_rec e;
    assert_int_equal(sh_db_get_eval(db, r.eval_id, &e, &err), 0);
    assert_string_equal(e.status, "ok");
    assert_true(e.attempts >= 2);
    sh_eval_rec_free(&e);
    sh_mrecord_free(&r);
    sh_measure_shutdown();
    /* nothing of the dropped run is left on the board */
    int left = 1;
    for (int i = 0; i < 50 && left; i++) {
        left = count_entries(remote_base, "starhil.", false);
        if (left) sleep_ms(100);
    }
    assert_int_equal(left, 0);
    sh_db_close(db);
    dt_rm_rf(dir);
    free(dir);
}

static char noexec_mount[700];

/* unmounts the test's tmpfs even when the test failed half-way */
static int noexec_teardown(void **state)
{
    (void)state;
    if (noexec_mount[0]) {
        char *umnt[] = {"umount", noexec_mount, NULL};
        dt_run(umnt);
        noexec_mount[0] = '\0';
    }
    return 0;
}

/* exit 126 (a noexec working directory) is not retried and does not count
 * against the device; `device check` finds it, and cpus the board lacks */
static void test_deterministic_failures_and_check(void **state)
{
    (void)state;
    assert_true(sshd_up);
    char *dir = dt_mkdtemp("noexec");
    char dbp[600], nx[700], exe[700], port[16];
    snprintf(dbp, sizeof dbp, "%s/n.db", dir);
    snprintf(nx, sizeof nx, "%s/noexec", dir);
    snprintf(exe, sizeof exe, "%s/variant", dir);
    snprintf(port, sizeof port, "%d", sshd.port);
    mkdir(nx, 0755);
    char *mnt[] = {"mount", "-t", "tmpfs", "-o", "noexec,size=8m", "tmpfs", nx, NULL};
    bool mounted = dt_run(mnt) == 0;
    if (mounted) snprintf(noexec_mount, sizeof noexec_mount, "%s", nx);
    char *out = NULL;
    /* a cpu list the board does not have (cpu 1000) passes `add` (the board is
     * not contacted) and is found by `check` */
    const char *add_cpus[] = {"device", "add", "cpub", "--kind", "ssh", "--host", "127.0.0.1", "--port", port,
                              "--user", sshd.user, "--key", sshd.user_key, "--known-hosts", sshd.known_hosts,
                              "--target", sh_host_triple(), "--cpus", "0,1000", NULL};
    assert_int_equal(run_cliv(dbp, &out, add_cpus), 0);
    free(out);
    const char *check_cpus[] = {"device", "check", "cpub", NULL};
    assert_int_equal(run_cliv(dbp, &out, check_cpus), 1);
    if (!strstr(out, "cpu 1000")) fail_msg("check of --cpus 0,1000: %s", out);
    free(out);
    if (!mounted) {
        print_message("# noexec part skipped: cannot mount a tmpfs here (needs root)\n");
        dt_rm_rf(dir);
        free(dir);
        return;
    }
    const char *add_local[] = {"device", "add", "nxl", "--workdir", nx, NULL};
    const char *add_ssh[] = {"device", "add", "nxb", "--kind", "ssh", "--host", "127.0.0.1", "--port", port,
                             "--user", sshd.user, "--key", sshd.user_key, "--known-hosts", sshd.known_hosts,
                             "--target", sh_host_triple(), "--workdir", nx, NULL};
    assert_int_equal(run_cliv(dbp, &out, add_local), 0);
    free(out);
    assert_int_equal(run_cliv(dbp, &out, add_ssh), 0);
    free(out);
    const char *names[] = {"nxl", "nxb"};
    sh_genome g;
    char hex[17];
    genome_of(TINY, &g, hex);
    assert_int_equal(dt_fake_variant(exe, hex, "ok", NULL, 5.0, 0), 0);
    sh_db *db;
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(dbp, 0, &db, &err), 0);
    for (int i = 0; i < 2; i++) {
        const char *check[] = {"device", "check", names[i], NULL};
        assert_int_equal(run_cliv(dbp, &out, check), 1);
        if (!strstr(out, "noexec")) fail_msg("check %s: %s", names[i], out);
        free(out);
        sh_measure_opts o = {.exe_path = exe, .prompt = 16, .gen = 8, .retries = 3, .backoff_s = 0.2};
        sh_mrecord r;
        assert_int_not_equal(sh_measure_genome(db, names[i], &g, &o, &r, &err), 0);
        if (!strstr(err.msg, "126")) fail_msg("measure on %s: %s", names[i], err.msg);
        sh_eval_rec e;
        assert_int_equal(sh_db_get_eval(db, r.eval_id, &e, &err), 0);
        assert_int_equal(e.attempts, 1);                /* not retried */
        sh_eval_rec_free(&e);
        sh_device_rec dev;
        assert_int_equal(sh_db_get_device(db, names[i], &dev, &err), 0);
        assert_int_equal(dev.fail_count, 0);            /* not the device's health */
        assert_true(dev.healthy);
        sh_device_rec_free(&dev);
    }
    sh_measure_shutdown();
    sh_db_close(db);
    noexec_teardown(NULL);
    dt_rm_rf(dir);
    free(dir);
}

/* ---- host keys ----------------------------------------------------------------------------------- */

/* "SHA256:..." of a public key file, from OpenSSH's own ssh-keygen -l. */
static void keygen_fingerprint(const char *pub, char *out, size_t cap)
{
    char *argv[] = {"ssh-keygen", "-l", "-E", "sha256", "-f", (char *)pub, NULL};
    sh_proc_result r;
    sh_err err = {{0}};
    assert_int_equal(sh_proc_run(argv, NULL, &r, &err), 0);
    const char *p = strstr(r.out, "SHA256:");
    assert_non_null(p);
    snprintf(out, cap, "%.*s", (int)strcspn(p, " \n"), p);
    sh_proc_result_free(&r);
}

static void test_ssh_changed_host_key(void **state)
{
    (void)state;
    assert_true(sshd_up);
    char *dir = dt_mkdtemp("hostkey");
    char db[600], kh[600], port[16], pub[700], oldpub[700], old[700];
    snprintf(db, sizeof db, "%s/h.db", dir);
    snprintf(kh, sizeof kh, "%s/known_hosts", dir);
    snprintf(port, sizeof port, "%d", sshd.port);
    const char *foreign = "# kept\nother.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOZKgiV0yIFZqZ1VyQ0zYyOCnY8Tq3Zm7hQmC4z3m0e1\n";
    assert_int_equal(dt_write_file(kh, foreign, 0600), 0);
    char *out = NULL;
    const char *add[] = {"device", "add", "kb", "--kind", "ssh", "--host", "127.0.0.1", "--port", port,
                         "--user", sshd.user, "--key", sshd.user_key, "--known-hosts", kh,
                         "--target", sh_host_triple(), "--trust-host-key", NULL};
    assert_int_equal(run_cliv(db, &out, add), 0);                 /* first seen: recorded */
    free(out);
    snprintf(pub, sizeof pub, "%s.pub", sshd.host_key);
    char fp_old[128], fp_new[128];
    keygen_fingerprint(pub, fp_old, sizeof fp_old);
    /* the board is reinstalled: same address, new host key */
    assert_int_equal(dt_sshd_restart_new_host_key(&sshd), 0);
    keygen_fingerprint(pub, fp_new, sizeof fp_new);
    assert_string_not_equal(fp_old, fp_new);
    const char *check[] = {"device", "check", "kb", NULL};
    const char *check_trust[] = {"device", "check", "kb", "--trust-host-key", NULL};
    const char *probe[] = {"device", "probe", "kb", NULL};
    const char *measure[] = {"measure", TINY, "--device", "kb", "--prompt=8", "--gen=4", "--retries=0", NULL};
    const char *trust[] = {"device", "trust", "kb", NULL};
    const char *const *refused[] = {check, check_trust, probe, measure, trust};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_not_equal(run_cliv(db, &out, refused[i]), 0);   /* --trust-host-key included */
        if (!strstr(out, "CHANGED") || !strstr(out, fp_new) || !strstr(out, fp_old))
            fail_msg("`%s %s %s`: %s", refused[i][0], refused[i][1], refused[i][2], out);
        free(out);
    }
    char *text = dt_read_file(kh, NULL);
    assert_string_equal(strstr(text, "[127.0.0.1]") ? "" : "gone", "");   /* old entry untouched */
    free(text);
    /* the explicit replacement says which fingerprint replaced which */
    const char *replace[] = {"device", "trust", "kb", "--replace", NULL};
    assert_int_equal(run_cliv(db, &out, replace), 0);
    char expect[300];
    snprintf(expect, sizeof expect, "%s -> %s", fp_old, fp_new);
    if (!strstr(out, expect)) fail_msg("device trust --replace: %s (expected %s)", out, expect);
    free(out);
    assert_int_equal(run_cliv(db, &out, check), 0);
    free(out);
    /* known_hosts: the other lines as they were, one entry for the board, the new key */
    text = dt_read_file(kh, NULL);
    assert_true(strncmp(text, foreign, strlen(foreign)) == 0);
    char needle[64];
    snprintf(needle, sizeof needle, "[127.0.0.1]:%d ", sshd.port);
    const char *first = strstr(text, needle);
    assert_non_null(first);
    assert_null(strstr(first + 1, needle));
    char *newpub = dt_read_file(pub, NULL);
    char *sp = strchr(newpub, ' '), *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
    if (sp2) *sp2 = '\0';
    assert_non_null(strstr(first, strchr(newpub, ' ') + 1));
    free(newpub);
    free(text);
    /* the old key back for the other tests */
    dt_sshd_kill(&sshd);
    snprintf(old, sizeof old, "%s.old", sshd.host_key);
    snprintf(oldpub, sizeof oldpub, "%s.old.pub", sshd.host_key);
    assert_int_equal(rename(old, sshd.host_key) || rename(oldpub, pub), 0);
    assert_int_equal(dt_sshd_restart(&sshd), 0);
    dt_rm_rf(dir);
    free(dir);
}

int main(void)
{
    /* the suite's shared build cache (tests/run_tests.sh), or a private one */
    char own_cache[] = "/tmp/starhil-test-cache.XXXXXX";
    bool own = !getenv("STARHIL_CACHE_DIR");
    if (own) {
        if (!mkdtemp(own_cache)) { perror("mkdtemp"); return 1; }
        setenv("STARHIL_CACHE_DIR", own_cache, 1);
    }
    if (getenv("CMOCKA_TEST_FILTER")) cmocka_set_test_filter(getenv("CMOCKA_TEST_FILTER"));
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_shell_quote_hostile),
        cmocka_unit_test(test_names_and_cpulists),
        cmocka_unit_test(test_median_ci_order_statistics),
        cmocka_unit_test(test_bench_parse_hostile),
        cmocka_unit_test(test_probe_parse),
        cmocka_unit_test(test_local_device_ops),
        cmocka_unit_test(test_measure_auto_pin),
        cmocka_unit_test(test_measure_pins_in_turn_then_fastest),
        cmocka_unit_test(test_qemu_aarch64_hello),
        cmocka_unit_test(test_measure_ok_cached_and_samples),
        cmocka_unit_test(test_measure_busy_unstable_then_replaced),
        cmocka_unit_test(test_measure_disturbed_reps_left_out),
        cmocka_unit_test(test_procstat_steal_fixtures),
        cmocka_unit_test(test_measure_steal_reps_left_out),
        cmocka_unit_test(test_measure_shared_reps_left_out),
        cmocka_unit_test(test_measure_faults),
        cmocka_unit_test(test_measure_flaky_retry_and_health),
        cmocka_unit_test(test_measure_reference_every_k),
        cmocka_unit_test(test_measure_reference_drift),
        cmocka_unit_test(test_measure_reference_speedup_marks_earlier),
        cmocka_unit_test(test_measure_normalized_by_reference),
        cmocka_unit_test(test_measure_paired_reference),
        cmocka_unit_test(test_adb_real_server_host_services),
        cmocka_unit_test(test_adb_peer_device_services),
        cmocka_unit_test(test_adb_measure_through_peer),
        cmocka_unit_test(test_qemu_full_path_real_variant),
        cmocka_unit_test(test_measure_threads_per_device),
        cmocka_unit_test(test_profile_quick_local),
        cmocka_unit_test(test_cli_inventory),
    };
    const struct CMUnitTest ssh[] = {
        cmocka_unit_test(test_ssh_upload_run_fetch_timeout),
        cmocka_unit_test(test_ssh_host_keys_and_auth),
        cmocka_unit_test(test_ssh_measure_with_sshd_killed),
        cmocka_unit_test(test_ssh_cli_add_trust_check_probe),
        cmocka_unit_test(test_kill_leaves_nothing),
        cmocka_unit_test(test_ssh_retry_after_dropped_connection),
        cmocka_unit_test_teardown(test_deterministic_failures_and_check, noexec_teardown),
        cmocka_unit_test(test_ssh_changed_host_key),
    };
    if (getenv("SH_TEST_FILTER")) cmocka_set_test_filter(getenv("SH_TEST_FILTER"));   /* e.g. "*busy*" */
    int failed = cmocka_run_group_tests_name("devices", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("devices_ssh", ssh, ssh_setup, ssh_teardown);
    if (own) dt_rm_rf(own_cache);
    return failed ? 1 : 0;
}
