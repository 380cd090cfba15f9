/* test_store.c - what the run store guarantees to several starhil processes
 * (issue 12): a second connection never deletes the live WAL, searches and
 * other commands running at once on one file lose nothing, read-only files
 * are readable by every reading command and refused with a reason by writing
 * ones, and damaged stored JSON is reported (naming the run and row) rather
 * than shown as empty.  Everything runs the real binary ($STARHIL_BIN) on real
 * SQLite files; the read-only mount uses a private mount namespace (unshare)
 * and "another user" is uid 65534 (setpriv), both real. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runs/runs.h"
#include "tests/helpers/search_proc.h"

static char g_dir[64];
static const char *g_bin;

static void path_in(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", g_dir, name); }

static bool exists(const char *p) { return access(p, F_OK) == 0; }

/* Runs the binary on db with args; stdout/stderr into files in g_dir (paths
 * returned in out/err if non-NULL).  Returns the exit code. */
static int run_bin(const char *db, const char *const *args, char *out, char *err)
{
    static int seq;
    char o[256], e[256];
    snprintf(o, sizeof o, "%s/out.%d.%d", g_dir, (int)getpid(), seq);
    snprintf(e, sizeof e, "%s/err.%d.%d", g_dir, (int)getpid(), seq++);
    char *argv[40];
    int k = 0;
    argv[k++] = (char *)g_bin;
    argv[k++] = "--db";
    argv[k++] = (char *)db;
    for (int i = 0; args[i] && k < 39; i++) argv[k++] = (char *)args[i];
    argv[k] = NULL;
    int rc = search_run(argv, o, e);
    if (out) snprintf(out, 256, "%s", o);
    if (err) snprintf(err, 256, "%s", e);
    return rc;
}

static long long q_int(const char *db, const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static void assert_integrity_ok(const char *db)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(h);
}

static int group_setup(void **state)
{
    (void)state;
    g_bin = getenv("STARHIL_BIN");
    if (!g_bin || !*g_bin) {
        fprintf(stderr, "STARHIL_BIN not set (run through make test)\n");
        return -1;
    }
    if (search_tmpdir(g_dir) != 0) return -1;
    chmod(g_dir, 0755);
    search_set_cwd(g_dir);   /* a finished search writes its report into the cwd */
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/rm", "-rf", g_dir, NULL};
    return search_run((char *const *)argv, NULL, NULL) == 0 ? 0 : -1;
}

/* ---- 1. a second open in a process that already has connections ------------ */

/* Before the fix, sh_db_open read the file header with open()+close(); the
 * close dropped every POSIX lock this process held on the file, so the next
 * process to close believed it was the last connection, checkpointed and
 * deleted the WAL under our still-open connection (whose later writes were lost). */
static void test_second_open_keeps_live_wal(void **state)
{
    (void)state;
    char p[256], wal[300];
    path_in(p, sizeof p, "wal.db");
    snprintf(wal, sizeof wal, "%s-wal", p);
    sh_err err = {{0}};
    sh_db *a = NULL, *b = NULL;
    int64_t id1, id2;
    assert_int_equal(sh_db_open(p, SH_DB_CREATE, &a, &err), 0);
    assert_int_equal(sh_db_create_run(a, "first", "{}", 1, &id1, &err), 0);
    assert_true(exists(wal));
    assert_int_equal(sh_db_open(p, 0, &b, &err), 0);       /* a worker's connection */
    /* another process opens and closes the store */
    const char *args[] = {"runs", "list", NULL};
    assert_int_equal(run_bin(p, args, NULL, NULL), 0);
    const char *sq[] = {"/usr/bin/sqlite3", p, "SELECT count(*) FROM runs", NULL};
    assert_int_equal(search_run((char *const *)sq, NULL, NULL), 0);
    assert_true(exists(wal));                                /* still ours */
    assert_int_equal(sh_db_create_run(a, "second", "{}", 2, &id2, &err), 0);
    sh_db_close(b);
    sh_db_close(a);
    assert_int_equal(q_int(p, "SELECT count(*) FROM runs"), 2);
    assert_integrity_ok(p);
}

/* ---- 2. many processes at once -------------------------------------------- */

static const char *SCORER_SCRIPT = "#!/bin/sh\ncat >/dev/null\necho '{\"mqar\": 0.25}'\n";

/* Rounds recorded per phase; a fast host stops running rounds at this many and
 * waits for the searches (68 rounds fitted in one search's time on a Xeon). */
#define MAX_ROUNDS 256

typedef struct stored {
    char devices[MAX_ROUNDS][16];
    int n_devices;
    char scores[MAX_ROUNDS][17];
    int n_scores;
    int n_lists, n_reports;
} stored;

static bool child_running(pid_t pid, int *rc)
{
    int st;
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == 0) return true;
    *rc = w == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return false;
}

/* Reads "genome_hash" from a score --json output file. */
static bool score_hash(const char *out_path, char hex[17])
{
    char *txt = search_read_file(out_path);
    json_t *o = txt ? json_loads(txt, 0, NULL) : NULL;
    free(txt);
    const char *h = json_string_value(json_object_get(o, "genome_hash"));
    bool ok = h && strlen(h) == 16;
    if (ok) memcpy(hex, h, 17);
    json_decref(o);
    return ok;
}

/* One round of the other commands a user runs beside a search. */
static void side_round(const char *db, int i, const char *scorer, stored *s)
{
    char name[16], genome[256], out[256], rpt[256], spec[300];
    snprintf(name, sizeof name, "zz%d", i);
    const char *add[] = {"device", "add", name, "--kind", "qemu-aarch64", NULL};
    if (run_bin(db, add, NULL, NULL) == 0 && s->n_devices < MAX_ROUNDS)
        snprintf(s->devices[s->n_devices++], 16, "%s", name);
    snprintf(genome, sizeof genome,
             "d=%d v=256 hd=16 theta=10000 eps=1e-05 ctx=2048 tie=1 | conv(3)/swiglu(128) gqa(4,2)/swiglu(128)",
             64 + 16 * i);
    snprintf(spec, sizeof spec, "cmd:%s", scorer);
    const char *sc[] = {"score", genome, "--scorer", spec, "--json", NULL};
    if (run_bin(db, sc, out, NULL) == 0 && s->n_scores < MAX_ROUNDS && score_hash(out, s->scores[s->n_scores]))
        s->n_scores++;
    const char *ls[] = {"runs", "list", NULL};
    if (run_bin(db, ls, NULL, NULL) == 0) s->n_lists++;
    snprintf(rpt, sizeof rpt, "%s/r%d.html", g_dir, i);
    const char *rp[] = {"report", "1", "-o", rpt, NULL};
    if (run_bin(db, rp, NULL, NULL) == 0) s->n_reports++;
}

static void assert_all_stored(const char *db, const stored *s)
{
    for (int i = 0; i < s->n_devices; i++) {
        char sql[200];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM devices WHERE name = '%s'", s->devices[i]);
        assert_int_equal(q_int(db, sql), 1);
    }
    for (int i = 0; i < s->n_scores; i++) {
        char sql[200];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM scores WHERE genome_hash = '%s' AND status = 'ok'",
                 s->scores[i]);
        assert_int_equal(q_int(db, sql), 1);
    }
}

static pid_t spawn_search(const char *db, const char *name, int budget)
{
    char b[16];
    snprintf(b, sizeof b, "%d", budget);
    char *argv[] = {(char *)g_bin, "--db", (char *)db, "search", "--evaluator", "analytic",
                    "--eval-delay-ms", "200", "--jobs", "1", "--budget", b, "--population", "6",
                    "--name", (char *)name, "--seed", "3", NULL};
    char err[256];
    snprintf(err, sizeof err, "%s/search-%s.err", g_dir, name);
    return search_spawn(argv, NULL, err);
}

static void test_concurrent_processes_lose_nothing(void **state)
{
    (void)state;
    char db[256], scorer[256];
    path_in(db, sizeof db, "busy.db");
    path_in(scorer, sizeof scorer, "scorer.sh");
    FILE *f = fopen(scorer, "w");
    assert_non_null(f);
    fputs(SCORER_SCRIPT, f);
    fclose(f);
    chmod(scorer, 0755);

    /* one search, commands in a loop beside it */
    const int budget = 36;
    pid_t s1 = spawn_search(db, "one", budget);
    assert_true(s1 > 0);
    stored st = {0};
    int rc = -1, i = 0;
    while (child_running(s1, &rc)) {
        if (i < MAX_ROUNDS) side_round(db, i++, scorer, &st);
        else usleep(50 * 1000);
    }
    assert_int_equal(rc, 0);
    print_message("# %d rounds beside one search: %d devices, %d scores, %d lists, %d reports\n", i,
                  st.n_devices, st.n_scores, st.n_lists, st.n_reports);
    assert_true(i >= 2);                     /* the commands did overlap the search */
    assert_int_equal(st.n_devices, i);
    assert_int_equal(st.n_scores, i);
    assert_int_equal(st.n_lists, i);
    assert_all_stored(db, &st);
    assert_int_equal(q_int(db, "SELECT count(*) FROM evaluations e JOIN runs r ON r.id = e.run_id "
                               "WHERE r.name = 'one' AND e.status = 'ok'"), budget);
    assert_int_equal(q_int(db, "SELECT count(*) FROM runs WHERE name = 'one' AND status = 'done'"), 1);
    assert_integrity_ok(db);

    /* two searches on one file, with the same commands beside them */
    pid_t a = spawn_search(db, "two-a", budget), b = spawn_search(db, "two-b", budget);
    assert_true(a > 0 && b > 0);
    int rca = -1, rcb = -1;
    bool ra = true, rb = true;
    stored st2 = {0};
    int j = 100;
    for (;;) {
        /* poll both every round (no short-circuit): each exit status is reaped */
        ra = ra && child_running(a, &rca);
        rb = rb && child_running(b, &rcb);
        if (!ra && !rb) break;
        if (j - 100 < MAX_ROUNDS) side_round(db, j++, scorer, &st2);
        else usleep(50 * 1000);
    }
    assert_int_equal(rca, 0);
    assert_int_equal(rcb, 0);
    assert_int_equal(st2.n_devices, j - 100);
    assert_int_equal(st2.n_scores, j - 100);
    assert_all_stored(db, &st2);
    assert_all_stored(db, &st);
    assert_int_equal(q_int(db, "SELECT count(*) FROM evaluations e JOIN runs r ON r.id = e.run_id "
                               "WHERE r.name = 'two-a' AND e.status = 'ok'"), budget);
    assert_int_equal(q_int(db, "SELECT count(*) FROM evaluations e JOIN runs r ON r.id = e.run_id "
                               "WHERE r.name = 'two-b' AND e.status = 'ok'"), budget);
    assert_int_equal(q_int(db, "SELECT count(*) FROM runs WHERE status = 'done'"), 3);
    assert_integrity_ok(db);
}

/* ---- 3. read-only use ------------------------------------------------------- */

static char *slurp(const char *p)
{
    char *t = search_read_file(p);
    assert_non_null(t);
    return t;
}

/* Makes a finished small search in dir/name; returns the path in out. */
static void make_store(const char *dir, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, name);
    char *argv[] = {(char *)g_bin, "--db", out, "search", "--evaluator", "analytic", "--budget", "12",
                    "--population", "6", "--seed", "5", NULL};
    assert_int_equal(search_run(argv, NULL, NULL), 0);
}

/* The reading commands, run through `prefix` (setpriv / unshare wrappers);
 * `outdir` is a directory the runner may write the report into. */
static void check_reads_and_refused_write(const char *const *prefix, const char *db, const char *outdir)
{
    const char *reads[][6] = {
        {"front", "1", NULL},
        {"runs", "list", NULL},
        {"runs", "show", "1", NULL},
        {"device", "list", NULL},
        {"report", "1", "-o", NULL, NULL},
    };
    char rpt[300];
    snprintf(rpt, sizeof rpt, "%s/ro-report.html", outdir);
    reads[4][3] = rpt;
    for (size_t c = 0; c < sizeof reads / sizeof reads[0]; c++) {
        char *argv[40];
        int k = 0;
        for (int i = 0; prefix[i]; i++) argv[k++] = (char *)prefix[i];
        argv[k++] = (char *)g_bin;
        argv[k++] = "--db";
        argv[k++] = (char *)db;
        for (int i = 0; reads[c][i]; i++) argv[k++] = (char *)reads[c][i];
        argv[k] = NULL;
        char ep[256];
        snprintf(ep, sizeof ep, "%s/ro.err", g_dir);
        int rc = search_run(argv, NULL, ep);
        if (rc != 0) {
            char *e = slurp(ep);
            fprintf(stderr, "read-only %s %s: rc %d: %s\n", reads[c][0], reads[c][1], rc, e);
            free(e);
        }
        assert_int_equal(rc, 0);
    }
    assert_true(exists(rpt));
    /* a writing command is refused and says why */
    char *argv[40];
    int k = 0;
    for (int i = 0; prefix[i]; i++) argv[k++] = (char *)prefix[i];
    const char *w[] = {(char *)g_bin, "--db", db, "device", "add", "zz", "--kind", "qemu-aarch64", NULL};
    for (int i = 0; w[i]; i++) argv[k++] = (char *)w[i];
    argv[k] = NULL;
    char ep[256];
    snprintf(ep, sizeof ep, "%s/ro-w.err", g_dir);
    assert_int_not_equal(search_run(argv, NULL, ep), 0);
    char *e = slurp(ep);
    print_message("# refused: %s", e);
    assert_true(strstr(e, "read-only") || strstr(e, "may not write"));
    assert_non_null(strstr(e, "reading commands work"));
    assert_null(strstr(e, "attempt to write a readonly database"));
    free(e);
}

static void test_read_only_use(void **state)
{
    (void)state;
    char dir[256], db[300], outdir[300];
    snprintf(dir, sizeof dir, "%s/rostore", g_dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    make_store(dir, "ro.db", db, sizeof db);
    snprintf(outdir, sizeof outdir, "%s/out", g_dir);
    assert_int_equal(mkdir(outdir, 0777), 0);
    chmod(outdir, 0777);
    char *before = slurp(db);
    struct stat st0;
    assert_int_equal(stat(db, &st0), 0);

    /* mode 0444, as root (the mode is honoured) */
    assert_int_equal(chmod(db, 0444), 0);
    const char *none[] = {NULL};
    check_reads_and_refused_write(none, db, outdir);

    /* another user, who may read but not write the file or its directory */
    const char *nobody[] = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", NULL};
    check_reads_and_refused_write(nobody, db, outdir);

    /* a read-only mount (root, private mount namespace) */
    assert_int_equal(chmod(db, 0644), 0);
    /* ... and another user's ordinary 0644 file */
    check_reads_and_refused_write(nobody, db, outdir);
    char bind[600];
    snprintf(bind, sizeof bind, "mount --bind %s %s && mount -o remount,bind,ro %s %s && exec \"$@\"", dir, dir,
             dir, dir);
    const char *probe[] = {"/usr/bin/unshare", "-m", "/bin/sh", "-c", bind, "sh", "/bin/true", NULL};
    if (search_run((char *const *)probe, NULL, NULL) == 0) {
        const char *ro_mount[] = {"/usr/bin/unshare", "-m", "/bin/sh", "-c", bind, "sh", NULL};
        check_reads_and_refused_write(ro_mount, db, outdir);
    } else {
        print_message("# read-only mount not possible here (unshare -m / mount refused); skipped that case\n");
    }
    char *after = slurp(db);
    assert_string_equal(before, after);  /* nothing was written (text compare up to the first NUL is */
    struct stat st1;                       /* not enough: compare sizes and bytes too) */
    assert_int_equal(stat(db, &st1), 0);
    assert_int_equal(st0.st_size, st1.st_size);
    FILE *f0 = fopen(db, "rb");
    assert_non_null(f0);
    fclose(f0);
    free(before);
    free(after);
}

/* ---- 4. damaged stored JSON ----------------------------------------------------- */

static void test_damaged_json_is_reported(void **state)
{
    (void)state;
    char db[300];
    make_store(g_dir, "damaged.db", db, sizeof db);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "UPDATE generations SET objectives_json = '{\"params\": 1' "
                                     "WHERE run_id = 1 AND rowid = (SELECT min(rowid) FROM generations "
                                     "WHERE run_id = 1 AND gen = (SELECT max(gen) FROM generations WHERE run_id = 1))",
                                  NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_changes(h), 1);
    sqlite3_close(h);
    const char *cmds[][5] = {{"front", "1", NULL}, {"front", "1", "--json", NULL}};
    for (int c = 0; c < 2; c++) {
        char out[256], err[256];
        assert_int_not_equal(run_bin(db, cmds[c], out, err), 0);
        char *e = slurp(err);
        print_message("# %s", e);
        assert_non_null(strstr(e, "run 1"));
        assert_non_null(strstr(e, "generation"));
        assert_non_null(strstr(e, "objectives"));
        free(e);
    }
    char rpt[300];
    snprintf(rpt, sizeof rpt, "%s/damaged.html", g_dir);
    const char *rp[] = {"report", "1", "-o", rpt, NULL};
    char err[256];
    assert_int_not_equal(run_bin(db, rp, NULL, err), 0);
    char *e = slurp(err);
    assert_non_null(strstr(e, "run 1"));
    free(e);

    /* a damaged evaluation result */
    char db2[300];
    make_store(g_dir, "damaged2.db", db2, sizeof db2);
    assert_int_equal(sqlite3_open(db2, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "UPDATE evaluations SET result_json = 'not json' WHERE id = "
                                     "(SELECT min(id) FROM evaluations WHERE run_id = 1)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    const char *show[] = {"runs", "show", "1", NULL};
    assert_int_not_equal(run_bin(db2, show, NULL, err), 0);
    e = slurp(err);
    print_message("# %s", e);
    assert_non_null(strstr(e, "run 1"));
    assert_non_null(strstr(e, "evaluation"));
    free(e);
    snprintf(rpt, sizeof rpt, "%s/damaged2.html", g_dir);
    const char *rp2[] = {"report", "1", "-o", rpt, NULL};
    assert_int_not_equal(run_bin(db2, rp2, NULL, err), 0);
    e = slurp(err);
    assert_non_null(strstr(e, "evaluation"));
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_open_keeps_live_wal),
        cmocka_unit_test(test_concurrent_processes_lose_nothing),
        cmocka_unit_test(test_read_only_use),
        cmocka_unit_test(test_damaged_json_is_reported),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
