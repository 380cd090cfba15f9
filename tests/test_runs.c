/* test_runs.c - the run store (runs/) on real SQLite files in a temporary
 * directory: opening, refusing foreign/newer/read-only files without touching
 * them, migrations, every table's read/write paths, transactions, a two-thread
 * race, and the `starhil runs` CLI driven through STARHIL_BIN. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runs/runs.h"
#include "helpers/store_sql.h"
#include "util/cliopt.h"
#include "util/proc.h"

static char g_dir[128];

/* ---- helpers ------------------------------------------------------------ */

static void path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", g_dir, name);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    assert_int_equal(got, (size_t)n);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* Asserts the file's bytes equal `before` and no WAL/journal was left behind. */
static void assert_unchanged(const char *path, const char *before, size_t before_len)
{
    size_t n;
    char *now = slurp(path, &n);
    assert_non_null(now);
    assert_int_equal(n, before_len);
    assert_memory_equal(now, before, n);
    free(now);
}

static sh_db *open_new(const char *name)
{
    char p[512];
    path_in(p, sizeof p, name);
    sh_db *db = NULL;
    sh_err err = {{0}};
    int rc = sh_db_open(p, SH_DB_CREATE, &db, &err);
    if (rc != 0) fprintf(stderr, "open %s: %s\n", p, err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(db);
    return db;
}

static long long query_int(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Runs SQL on a file with a plain SQLite connection (to craft test files). */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) fprintf(stderr, "raw_exec: %s\n", msg ? msg : "?");
    sqlite3_free(msg);
    assert_int_equal(rc, SQLITE_OK);
    assert_int_equal(sqlite3_close(h), SQLITE_OK);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/sh_test_runs_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char sub[256];
    snprintf(sub, sizeof sub, "%s/rodir", g_dir);
    chmod(sub, 0700);   /* in case test_readonly_refused stopped half-way */
    chmod(g_dir, 0700);
    return nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *const TABLES[] = {"genomes", "devices", "runs", "evaluations", "samples",
                                     "scores", "generations", "run_metrics", "profiles", "score_jobs"};

static void assert_all_tables(const sh_db *db)
{
    for (size_t i = 0; i < sizeof TABLES / sizeof TABLES[0]; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='%s'",
                 TABLES[i]);
        assert_int_equal(tsql_int(db, sql), 1);
    }
}

/* ---- opening ------------------------------------------------------------- */

static void test_create_open_reopen(void **state)
{
    (void)state;
    char p[512];
    path_in(p, sizeof p, "create.db");
    sh_db *db = NULL;
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(p, 0, &db, &err), -1);   /* missing, no CREATE */
    assert_non_null(strstr(err.msg, "no such database file"));
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(sh_db_open(p, SH_DB_READONLY, &db, &err), -1);
    assert_int_equal(access(p, F_OK), -1);

    db = open_new("create.db");
    assert_string_equal(sh_db_path(db), p);
    assert_int_equal(sh_db_schema_version(db, &err), SH_DB_SCHEMA_VERSION);
    assert_int_equal(tsql_int(db, "PRAGMA application_id"), SH_DB_APPLICATION_ID);
    assert_all_tables(db);
    int64_t id;
    assert_int_equal(sh_db_create_run(db, "first", "{}", 7, &id, &err), 0);
    sh_db_close(db);

    assert_int_equal(sh_db_open(p, 0, &db, &err), 0);   /* exists: no CREATE needed */
    sh_run_rec r;
    assert_int_equal(sh_db_get_run(db, id, &r, &err), 0);
    assert_string_equal(r.name, "first");
    sh_run_rec_free(&r);
    sh_db_close(db);

    assert_int_equal(sh_db_open(p, SH_DB_READONLY, &db, &err), 0);
    assert_int_equal(sh_db_get_run(db, id, &r, &err), 0);
    sh_run_rec_free(&r);
    /* writes through a read-only handle fail with a message */
    assert_int_equal(sh_db_create_run(db, "second", "{}", 1, &id, &err), -1);
    assert_true(err.msg[0] != '\0');
    sh_db_close(db);
}

static void test_open_cli_and_memory(void **state)
{
    (void)state;
    char p[512];
    path_in(p, sizeof p, "env.db");
    setenv("STARHIL_DB", p, 1);
    sh_db *db = NULL;
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(sh_cli_db_path(), SH_DB_CREATE, &db, &err), 0);
    assert_string_equal(sh_db_path(db), p);
    sh_db_close(db);
    unsetenv("STARHIL_DB");
    assert_int_equal(access(p, F_OK), 0);

    assert_int_equal(sh_db_open(":memory:", SH_DB_CREATE, &db, &err), 0);
    int64_t id;
    assert_int_equal(sh_db_create_run(db, "mem", "{}", 1, &id, &err), 0);
    assert_int_equal(sh_db_schema_version(db, &err), SH_DB_SCHEMA_VERSION);
    sh_db_close(db);
    assert_int_equal(sh_db_open("", SH_DB_CREATE, &db, &err), -1);
    assert_non_null(strstr(err.msg, "empty database path"));
}

static void test_pragmas(void **state)
{
    (void)state;
    sh_db *db = open_new("pragmas.db");
    char mode[32];
    tsql_text(db, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "wal");
    /* foreign keys enforced on the store's own connection: removing a device
     * removes its chip profile (ON DELETE CASCADE acts only with them on) */
    sh_err err = {{0}};
    sh_device_rec d = {.name = "fk-box", .kind = "local", .healthy = true};
    sh_profile_row row = {"conv", "{\"d\":64}", "f32", 1.0, 1.0, 1.0};
    if (sh_db_add_device(db, &d, &err) != 0 || sh_db_put_profile(db, "fk-box", &row, 1, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(tsql_int(db, "SELECT count(*) FROM profiles"), 1);
    assert_int_equal(sh_db_remove_device(db, "fk-box", &err), 0);
    assert_int_equal(tsql_int(db, "SELECT count(*) FROM profiles"), 0);
    sh_db_close(db);
}

static void test_migrate_empty_file(void **state)
{
    (void)state;
    char p[512];
    path_in(p, sizeof p, "empty.db");
    write_bytes(p, "", 0);
    sh_db *db = NULL;
    sh_err err = {{0}};
    /* read-only open of an empty file refuses, and writes nothing */
    assert_int_equal(sh_db_open(p, SH_DB_READONLY, &db, &err), -1);
    assert_non_null(strstr(err.msg, "empty database"));
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 0);
    /* opening for writing migrates it */
    assert_int_equal(sh_db_open(p, 0, &db, &err), 0);
    assert_int_equal(sh_db_schema_version(db, &err), SH_DB_SCHEMA_VERSION);
    assert_all_tables(db);
    sh_db_close(db);
}

/* A database written before measurement stability existed (schema 1, as
 * today's main writes it) opens, gains the columns, keeps its rows, and its
 * non-converged measurements become unstable (so they are measured again). */
static void test_migrate_v1_stability(void **state)
{
    (void)state;
    char p[512];
    path_in(p, sizeof p, "v1.db");
    sh_db *db = NULL;
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(p, SH_DB_CREATE, &db, &err), 0);
    sh_db_close(db);
    /* back to the schema-1 shape of evaluations, with two old measurements */
    raw_exec(p, "ALTER TABLE evaluations DROP COLUMN stability_reason;"
                "ALTER TABLE evaluations DROP COLUMN stability;"
                "DROP TABLE score_jobs; DROP TABLE comparisons;"
                "INSERT INTO evaluations(genome_hash, device, kind, settings_json, settings_hash, status, result_json) "
                "VALUES('0123456789abcdef', 'local', 'measure', '{}', 'a', 'ok', '{\"converged\":false,\"decode_ms_median\":1.451}'),"
                "('0123456789abcdef', 'local', 'measure', '{\"x\":1}', 'b', 'ok', '{\"converged\":true,\"decode_ms_median\":0.379}');"
                "PRAGMA user_version = 1;");
    assert_int_equal(sh_db_open(p, SH_DB_READONLY, &db, &err), -1);   /* needs the upgrade */
    assert_non_null(strstr(err.msg, "older"));
    assert_int_equal(sh_db_open(p, 0, &db, &err), 0);
    assert_int_equal(sh_db_schema_version(db, &err), SH_DB_SCHEMA_VERSION);
    sh_eval_rec *e = NULL;
    int n = 0;
    assert_int_equal(sh_db_list_evals(db, 0, &e, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(e[0].stability, "unstable");
    assert_non_null(strstr(e[0].stability_reason, "not converged"));
    assert_string_equal(e[1].stability, "");
    assert_null(e[1].stability_reason);
    sh_eval_recs_free(e, n);
    /* a quiet re-measurement replaces the unstable one, samples and all */
    sh_sample s[2] = {{"decode_ms", 0, 0.38}, {"decode_ms", 1, 0.39}};
    assert_int_equal(sh_db_eval_finish_measured(db, 1, "{\"converged\":true}", s, 1, "quiet", NULL, false, &err), -1);
    assert_non_null(strstr(err.msg, "already ok"));
    assert_int_equal(sh_db_eval_finish_measured(db, 1, "{\"converged\":true}", s, 2, "bogus", NULL, true, &err), -1);
    assert_non_null(strstr(err.msg, "unknown stability"));
    assert_int_equal(sh_db_eval_finish_measured(db, 1, "{\"converged\":true}", s, 2, "quiet", NULL, true, &err), 0);
    sh_eval_rec r;
    assert_int_equal(sh_db_get_eval(db, 1, &r, &err), 0);
    assert_string_equal(r.stability, "quiet");
    assert_null(r.stability_reason);
    sh_eval_rec_free(&r);
    double *v = NULL;
    assert_int_equal(sh_db_get_samples(db, 1, "decode_ms", &v, &n, &err), 0);
    assert_int_equal(n, 2);
    free(v);
    /* latest trusted skips unstable rows */
    assert_int_equal(sh_db_eval_finish_measured(db, 2, "{}", NULL, 0, "unstable", "busy", true, &err), 0);
    assert_int_equal(sh_db_latest_eval(db, 0, "local", "measure", true, &r, &err), 0);
    assert_int_equal(r.id, 1);
    sh_eval_rec_free(&r);
    assert_int_equal(sh_db_latest_eval(db, 0, "local", "measure", false, &r, &err), 0);
    assert_int_equal(r.id, 2);
    assert_string_equal(r.stability_reason, "busy");
    sh_eval_rec_free(&r);
    assert_int_equal(sh_db_latest_eval(db, 0, "local", "reference", false, &r, &err), 1);
    int count = 0;
    assert_int_equal(sh_db_count_ok_evals(db, 0, "local", "measure", &count, &err), 0);
    assert_int_equal(count, 2);
    /* a reset clears the stability */
    assert_int_equal(sh_db_eval_reset(db, 2, &err), 0);
    assert_int_equal(sh_db_get_eval(db, 2, &r, &err), 0);
    assert_string_equal(r.stability, "");
    assert_null(r.stability_reason);
    sh_eval_rec_free(&r);
    sh_db_close(db);
}

static void test_migrate_v0_file(void **state)
{
    (void)state;
    char p[512];
    path_in(p, sizeof p, "v0.db");
    /* a real SQLite file (non-empty) at user_version 0 with no tables */
    raw_exec(p, "CREATE TABLE t(x); DROP TABLE t; PRAGMA user_version = 0;");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_true(st.st_size > 0);
    sh_db *db = NULL;
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(p, SH_DB_READONLY, &db, &err), -1);   /* needs migrating */
    assert_int_equal(sh_db_open(p, 0, &db, &err), 0);
    assert_int_equal(sh_db_schema_version(db, &err), SH_DB_SCHEMA_VERSION);
    assert_int_equal(tsql_int(db, "PRAGMA application_id"), SH_DB_APPLICATION_ID);
    assert_all_tables(db);
    sh_db_close(db);
    /* reopening does not migrate twice */
    assert_int_equal(sh_db_open(p, 0, &db, &err), 0);
    assert_int_equal(sh_db_schema_version(db, &err), SH_DB_SCHEMA_VERSION);
    sh_db_close(db);
}

/* A schema-1 file (as written before score_jobs existed) gains the table and
 * keeps its rows. */
static void test_migrate_v1_to_v2(void **state)
{
    (void)state;
    char p[512];
    path_in(p, sizeof p, "v1.db");
    sh_db *db = NULL;
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(p, SH_DB_CREATE, &db, &err), 0);
    int64_t run;
    assert_int_equal(sh_db_create_run(db, "old", "{}", 7, &run, &err), 0);
    sh_db_close(db);
    raw_exec(p, "DROP TABLE score_jobs; DROP TABLE comparisons; ALTER TABLE evaluations DROP COLUMN stability; "
                "ALTER TABLE evaluations DROP COLUMN stability_reason; PRAGMA user_version = 1;");
    assert_int_equal(sh_db_open(p, SH_DB_READONLY, &db, &err), -1);   /* needs migrating */
    assert_int_equal(sh_db_open(p, 0, &db, &err), 0);
    assert_int_equal(sh_db_schema_version(db, &err), SH_DB_SCHEMA_VERSION);
    assert_all_tables(db);
    assert_int_equal(tsql_int(db, "SELECT count(*) FROM runs WHERE name = 'old'"), 1);
    assert_int_equal(tsql_int(db, "SELECT count(*) FROM score_jobs"), 0);
    sh_db_close(db);
}

/* A migration that fails leaves nothing behind: no table, no version bump. */
static void test_failed_migration_is_atomic(void **state)
{
    (void)state;
    char p[512], sql[160];
    path_in(p, sizeof p, "halfway.db");
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; CREATE TABLE genomes(x);",
             (int)SH_DB_APPLICATION_ID);
    raw_exec(p, sql);   /* ours, version 0, but a table in the way of migration 1 */
    sh_db *db = NULL;
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(p, 0, &db, &err), -1);
    assert_non_null(strstr(err.msg, "migration 1"));
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(p, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(query_int(h, "PRAGMA user_version"), 0);
    assert_int_equal(query_int(h, "SELECT count(*) FROM sqlite_schema WHERE name = 'devices'"), 0);
    sqlite3_close(h);
}

static void test_foreign_sqlite_refused(void **state)
{
    (void)state;
    char p[512];
    path_in(p, sizeof p, "foreign.db");
    raw_exec(p, "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);"
                "INSERT INTO customers(name) VALUES('ada');");
    size_t n;
    char *before = slurp(p, &n);
    sh_db *db = NULL;
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(p, SH_DB_CREATE, &db, &err), -1);
    assert_null(db);
    assert_non_null(strstr(err.msg, "not a starhil database"));
    assert_non_null(strstr(err.msg, p));
    assert_unchanged(p, before, n);
    free(before);

    /* another application's id */
    path_in(p, sizeof p, "otherapp.db");
    raw_exec(p, "PRAGMA application_id = 1234;");
    before = slurp(p, &n);
    assert_int_equal(sh_db_open(p, 0, &db, &err), -1);
    assert_non_null(strstr(err.msg, "application_id"));
    assert_unchanged(p, before, n);
    free(before);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    char p[512];
    path_in(p, sizeof p, "newer.db");
    sh_db *db = open_new("newer.db");
    sh_db_close(db);
    raw_exec(p, "PRAGMA user_version = 99;");   /* closing checkpoints the WAL */
    size_t n;
    char *before = slurp(p, &n);
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(p, 0, &db, &err), -1);
    assert_non_null(strstr(err.msg, "newer starhil"));
    assert_non_null(strstr(err.msg, "99"));
    char mine[32];
    snprintf(mine, sizeof mine, "version %d", SH_DB_SCHEMA_VERSION);
    assert_non_null(strstr(err.msg, mine));
    assert_int_equal(sh_db_open(p, SH_DB_READONLY, &db, &err), -1);
    assert_non_null(strstr(err.msg, "99"));
    assert_unchanged(p, before, n);
    free(before);
}

static void test_not_a_database_refused(void **state)
{
    (void)state;
    char p[512];
    path_in(p, sizeof p, "notes.txt");
    const char text[] = "these are my notes, not a database\n";
    write_bytes(p, text, sizeof text - 1);
    sh_db *db = NULL;
    sh_err err = {{0}};
    assert_int_equal(sh_db_open(p, SH_DB_CREATE, &db, &err), -1);
    char want[700];
    snprintf(want, sizeof want, "%s: not a starhil database (file is not an SQLite database)", p);
    assert_string_equal(err.msg, want);
    assert_unchanged(p, text, sizeof text - 1);
    assert_int_equal(access(p, F_OK), 0);
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", p);
    assert_int_equal(access(wal, F_OK), -1);

    /* right magic, garbage after it */
    path_in(p, sizeof p, "fake.db");
    char junk[4096];
    memset(junk, 0xA5, sizeof junk);
    memcpy(junk, "SQLite format 3", 16);
    write_bytes(p, junk, sizeof junk);
    assert_int_equal(sh_db_open(p, SH_DB_CREATE, &db, &err), -1);
    assert_true(err.msg[0] != '\0');
    assert_unchanged(p, junk, sizeof junk);

    /* a directory */
    assert_int_equal(sh_db_open(g_dir, SH_DB_CREATE, &db, &err), -1);
    assert_non_null(strstr(err.msg, "not a regular file"));
}

static void test_readonly_refused(void **state)
{
    (void)state;
    char p[512];
    path_in(p, sizeof p, "ro.db");
    sh_db *db = open_new("ro.db");
    int64_t id;
    sh_err err = {{0}};
    assert_int_equal(sh_db_create_run(db, "kept", "{\"a\":1}", 3, &id, &err), 0);
    sh_db_close(db);
    assert_int_equal(chmod(p, 0444), 0);
    size_t n;
    char *before = slurp(p, &n);
    assert_int_equal(sh_db_open(p, 0, &db, &err), -1);
    assert_non_null(strstr(err.msg, "read-only"));
    assert_non_null(strstr(err.msg, p));
    assert_unchanged(p, before, n);
    /* reading still works */
    assert_int_equal(sh_db_open(p, SH_DB_READONLY, &db, &err), 0);
    sh_run_rec r;
    assert_int_equal(sh_db_get_run(db, id, &r, &err), 0);
    assert_string_equal(r.name, "kept");
    sh_run_rec_free(&r);
    sh_db_close(db);
    assert_unchanged(p, before, n);
    free(before);
    assert_int_equal(chmod(p, 0644), 0);

    /* a read-only directory: WAL needs to create files beside the database */
    char sub[256];
    snprintf(sub, sizeof sub, "%s/rodir", g_dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(p, sizeof p, "%s/x.db", sub);
    assert_int_equal(sh_db_open(p, SH_DB_CREATE, &db, &err), 0);
    sh_db_close(db);
    before = slurp(p, &n);
    assert_int_equal(chmod(sub, 0555), 0);
    assert_int_equal(sh_db_open(p, 0, &db, &err), -1);
    assert_non_null(strstr(err.msg, "read-only"));
    assert_int_equal(chmod(sub, 0755), 0);
    assert_unchanged(p, before, n);
    free(before);
}

/* ---- transactions ----------------------------------------------------------- */

static void test_nested_transactions(void **state)
{
    (void)state;
    sh_db *db = open_new("tx.db");
    sh_err err = {{0}};
    int64_t id;
    /* inner commit, outer rollback: nothing stays */
    assert_int_equal(sh_db_begin(db, &err), 0);
    assert_int_equal(sh_db_begin(db, &err), 0);
    assert_int_equal(sh_db_in_transaction(db), 2);
    assert_int_equal(sh_db_create_run(db, "gone", "{}", 1, &id, &err), 0);
    assert_int_equal(sh_db_commit(db, &err), 0);
    sh_db_rollback(db);
    assert_int_equal(sh_db_in_transaction(db), 0);
    sh_run_rec r;
    assert_int_equal(sh_db_get_run(db, id, &r, &err), -1);
    assert_non_null(strstr(err.msg, "no run"));
    /* inner rollback dooms the outer commit */
    assert_int_equal(sh_db_begin(db, &err), 0);
    assert_int_equal(sh_db_create_run(db, "doomed", "{}", 1, &id, &err), 0);
    assert_int_equal(sh_db_begin(db, &err), 0);
    sh_db_rollback(db);
    assert_int_equal(sh_db_commit(db, &err), -1);
    assert_non_null(strstr(err.msg, "rolled back"));
    assert_int_equal(sh_db_get_run(db, id, &r, &err), -1);
    /* both commit: stays */
    assert_int_equal(sh_db_begin(db, &err), 0);
    assert_int_equal(sh_db_create_run(db, "kept", "{}", 1, &id, &err), 0);
    assert_int_equal(sh_db_commit(db, &err), 0);
    assert_int_equal(sh_db_get_run(db, id, &r, &err), 0);
    sh_run_rec_free(&r);
    assert_int_equal(sh_db_commit(db, &err), -1);   /* unbalanced */
    sh_db_close(db);
}

/* ---- genomes -------------------------------------------------------------- */

static void test_genome_round_trip(void **state)
{
    (void)state;
    sh_db *db = open_new("genomes.db");
    sh_err err = {{0}};
    static sh_genome g, back, other;
    assert_int_equal(sh_preset_get("lfm2-350m", &g, &err), 0);
    assert_int_equal(sh_db_put_genome(db, &g, &err), 0);
    assert_int_equal(sh_db_put_genome(db, &g, &err), 0);   /* idempotent */
    assert_int_equal(tsql_int(db, "SELECT count(*) FROM genomes"), 1);
    sh_hash h = sh_genome_hash(&g);
    assert_int_equal(sh_db_get_genome(db, h, &back, &err), 0);
    assert_true(sh_genome_equal(&g, &back));

    /* stored columns: canonical text, JSON that parses back, param counts */
    char hex[17], sql[256], text[4096];
    sh_hash_hex(h, hex);
    snprintf(sql, sizeof sql, "SELECT text FROM genomes WHERE hash = '%s'", hex);
    tsql_text(db, sql, text, sizeof text);
    char canon[4096];
    assert_int_equal(sh_genome_format(&g, canon, sizeof canon, &err), 0);
    assert_string_equal(text, canon);
    sh_param_count pc;
    sh_genome_params(&g, &pc);
    snprintf(sql, sizeof sql, "SELECT params_total FROM genomes WHERE hash = '%s'", hex);
    assert_int_equal(tsql_int(db, sql), (long long)pc.total);
    static char json[16384];
    tsql_text(db, "SELECT json FROM genomes", json, sizeof json);
    assert_int_equal(sh_genome_from_json(json, &other, &err), 0);
    assert_true(sh_genome_equal(&g, &other));

    /* absent hash */
    assert_int_equal(sh_db_get_genome(db, h ^ 1, &back, &err), -1);
    assert_non_null(strstr(err.msg, "not in the store"));
    /* a second preset is a second row */
    if (sh_preset_count() > 1) {
        const sh_preset *pr = sh_preset_at(1);
        assert_int_equal(sh_preset_get(pr->name, &other, &err), 0);
        if (sh_genome_hash(&other) != h) {
            assert_int_equal(sh_db_put_genome(db, &other, &err), 0);
            assert_int_equal(tsql_int(db, "SELECT count(*) FROM genomes"), 2);
        }
    }
    sh_db_close(db);
}

/* ---- devices ------------------------------------------------------------------ */

static sh_device_rec make_device(const char *name, const char *kind)
{
    sh_device_rec d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "%s", name);
    snprintf(d.kind, sizeof d.kind, "%s", kind);
    d.healthy = true;
    return d;
}

static void test_devices(void **state)
{
    (void)state;
    sh_db *db = open_new("devices.db");
    sh_err err = {{0}};
    sh_device_rec a = make_device("pi5", "ssh");
    snprintf(a.host, sizeof a.host, "127.0.0.1");
    a.port = 2222;
    snprintf(a.user, sizeof a.user, "o'brien");
    snprintf(a.key_path, sizeof a.key_path, "/home/x/.ssh/id_ed25519");
    snprintf(a.target, sizeof a.target, "aarch64-linux-gnu");
    snprintf(a.cpus, sizeof a.cpus, "4-7");
    snprintf(a.workdir, sizeof a.workdir, "/tmp/starhil work");
    a.options_json = (char *)"{\"strict_host_key\": true}";
    assert_int_equal(sh_db_add_device(db, &a, &err), 0);
    assert_int_equal(sh_db_add_device(db, &a, &err), -1);
    assert_non_null(strstr(err.msg, "already exists"));

    sh_device_rec b = make_device("box", "local");
    assert_int_equal(sh_db_add_device(db, &b, &err), 0);
    sh_device_rec bad = make_device("bad", "local");
    bad.options_json = (char *)"{not json";
    assert_int_equal(sh_db_add_device(db, &bad, &err), -1);
    assert_non_null(strstr(err.msg, "invalid JSON"));
    bad = make_device("", "local");
    assert_int_equal(sh_db_add_device(db, &bad, &err), -1);
    bad = make_device("badport", "ssh");
    bad.port = 70000;
    assert_int_equal(sh_db_add_device(db, &bad, &err), -1);

    sh_device_rec got;
    assert_int_equal(sh_db_get_device(db, "pi5", &got, &err), 0);
    assert_string_equal(got.kind, "ssh");
    assert_string_equal(got.host, "127.0.0.1");
    assert_int_equal(got.port, 2222);
    assert_string_equal(got.user, "o'brien");
    assert_string_equal(got.cpus, "4-7");
    assert_string_equal(got.workdir, "/tmp/starhil work");
    assert_string_equal(got.options_json, "{\"strict_host_key\": true}");
    assert_null(got.topology_json);
    assert_true(got.healthy);
    sh_device_rec_free(&got);

    assert_int_equal(sh_db_set_device_topology(db, "pi5", "{\"cores\":8}", &err), 0);
    assert_int_equal(sh_db_set_device_topology(db, "pi5", "[1,", &err), -1);
    assert_int_equal(sh_db_set_device_health(db, "pi5", false, 3, &err), 0);
    assert_int_equal(sh_db_set_device_health(db, "nope", false, 3, &err), -1);
    assert_non_null(strstr(err.msg, "nope"));
    assert_int_equal(sh_db_get_device(db, "pi5", &got, &err), 0);
    assert_string_equal(got.topology_json, "{\"cores\":8}");
    assert_false(got.healthy);
    assert_int_equal(got.fail_count, 3);
    sh_device_rec_free(&got);

    sh_device_rec *list;
    int n;
    assert_int_equal(sh_db_list_devices(db, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "box");   /* by name */
    assert_string_equal(list[1].name, "pi5");
    sh_device_recs_free(list, n);

    assert_int_equal(sh_db_remove_device(db, "box", &err), 0);
    assert_int_equal(sh_db_remove_device(db, "box", &err), -1);
    assert_int_equal(sh_db_get_device(db, "box", &got, &err), -1);
    assert_non_null(strstr(err.msg, "no device named 'box'"));
    sh_db_close(db);
}

static void test_injection_stored_verbatim(void **state)
{
    (void)state;
    sh_db *db = open_new("inject.db");
    sh_err err = {{0}};
    const char *evil = "x'); DROP TABLE runs;--";
    sh_device_rec d = make_device(evil, "local");
    snprintf(d.host, sizeof d.host, "\"; DELETE FROM devices; --");
    assert_int_equal(sh_db_add_device(db, &d, &err), 0);
    int64_t id;
    assert_int_equal(sh_db_create_run(db, evil, "{\"n\":\"'; DROP TABLE evaluations;--\"}", 1, &id, &err), 0);
    sh_device_rec got;
    assert_int_equal(sh_db_get_device(db, evil, &got, &err), 0);
    assert_string_equal(got.name, evil);
    assert_string_equal(got.host, "\"; DELETE FROM devices; --");
    sh_device_rec_free(&got);
    assert_int_equal(tsql_int(db,
                     "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='runs'"), 1);
    assert_int_equal(tsql_int(db, "SELECT count(*) FROM runs"), 1);
    assert_int_equal(tsql_int(db, "SELECT count(*) FROM devices"), 1);
    sh_run_rec r;
    assert_int_equal(sh_db_get_run(db, id, &r, &err), 0);
    assert_string_equal(r.name, evil);
    sh_run_rec_free(&r);
    assert_all_tables(db);
    sh_db_close(db);
}

/* ---- runs ---------------------------------------------------------------------- */

static void test_runs_state(void **state)
{
    (void)state;
    sh_db *db = open_new("runs.db");
    sh_err err = {{0}};
    int64_t a, b;
    uint64_t big_seed = 0xFEDCBA9876543210ULL;
    assert_int_equal(sh_db_create_run(db, "search-a", "{\"pop\":16}", big_seed, &a, &err), 0);
    assert_int_equal(sh_db_create_run(db, "search-b", "{\"pop\":8}", 5, &b, &err), 0);
    assert_true(b > a);
    assert_int_equal(sh_db_create_run(db, "bad", "{pop:8}", 5, &b, &err), -1);
    assert_non_null(strstr(err.msg, "run config"));
    assert_int_equal(sh_db_create_run(db, "", "{}", 5, &b, &err), -1);

    sh_run_rec r;
    assert_int_equal(sh_db_get_run(db, a, &r, &err), 0);
    assert_string_equal(r.status, "running");
    assert_true(r.seed == big_seed);
    assert_string_equal(r.config_json, "{\"pop\":16}");
    assert_null(r.state);
    assert_int_equal(r.state_len, 0);
    assert_int_equal((int)strlen(r.created_at), 20);
    sh_run_rec_free(&r);

    unsigned char blob[300];
    for (int i = 0; i < 300; i++) blob[i] = (unsigned char)(i * 7);   /* includes NUL bytes */
    assert_int_equal(sh_db_save_run_state(db, a, blob, sizeof blob, &err), 0);
    assert_int_equal(sh_db_save_run_state(db, 999, blob, sizeof blob, &err), -1);
    assert_int_equal(sh_db_set_run_status(db, a, "stopped", &err), 0);
    assert_int_equal(sh_db_set_run_status(db, a, "paused", &err), -1);
    assert_non_null(strstr(err.msg, "paused"));
    assert_int_equal(sh_db_get_run(db, a, &r, &err), 0);
    assert_string_equal(r.status, "stopped");
    assert_int_equal(r.state_len, 300);
    assert_memory_equal(r.state, blob, 300);
    sh_run_rec_free(&r);

    sh_run_rec *list;
    int n;
    assert_int_equal(sh_db_list_runs(db, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "search-a");
    assert_null(list[0].state);
    assert_string_equal(list[1].config_json, "{\"pop\":8}");
    sh_run_recs_free(list, n);

    int64_t found;
    assert_int_equal(sh_db_find_run_by_name(db, "search-b", &found, &err), 0);
    assert_int_equal(found, b);
    assert_int_equal(sh_db_find_run_by_name(db, "none", &found, &err), -1);
    assert_string_equal(err.msg, "");
    assert_int_equal(sh_db_get_run(db, 12345, &r, &err), -1);
    assert_non_null(strstr(err.msg, "12345"));
    sh_db_close(db);
}

/* ---- evaluations ------------------------------------------------------------- */

static void test_eval_lifecycle(void **state)
{
    (void)state;
    sh_db *db = open_new("evals.db");
    sh_err err = {{0}};
    int64_t run;
    assert_int_equal(sh_db_create_run(db, "r", "{}", 1, &run, &err), 0);
    sh_hash g = 0x0123456789abcdefULL;
    int64_t id, id2;
    char status[16];
    assert_int_equal(sh_db_eval_get_or_create(db, run, g, "pi5", "measure",
                     "{\"prompt\":512,\"gen\":128}", &id, status, &err), 0);
    assert_string_equal(status, "pending");
    /* same key with reordered settings: same row */
    assert_int_equal(sh_db_eval_get_or_create(db, run, g, "pi5", "measure",
                     "{ \"gen\": 128, \"prompt\": 512 }", &id2, status, &err), 0);
    assert_int_equal(id2, id);
    /* different settings, device or run: different rows */
    assert_int_equal(sh_db_eval_get_or_create(db, run, g, "pi5", "measure", "{\"prompt\":256}", &id2, NULL, &err), 0);
    assert_int_not_equal(id2, id);
    assert_int_equal(sh_db_eval_get_or_create(db, run, g, "box", "measure", "{\"prompt\":512,\"gen\":128}", &id2, NULL, &err), 0);
    assert_int_not_equal(id2, id);
    /* missing run */
    assert_int_equal(sh_db_eval_get_or_create(db, 777, g, "pi5", "measure", "{}", &id2, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "777"));
    assert_int_equal(sh_db_eval_get_or_create(db, run, g, "pi5", "measure", "{bad", &id2, NULL, &err), -1);
    assert_int_equal(sh_db_eval_get_or_create(db, run, g, "pi5", "measure", "{\"a\":1,\"a\":2}", &id2, NULL,
                     &err), -1);   /* duplicate keys are ambiguous */
    /* settings are stored canonical: sorted keys, compact, shortest reals */
    int64_t cid;
    assert_int_equal(sh_db_eval_get_or_create(db, run, g, "pi5", "measure",
                     "{ \"b\": 0.1, \"a\": {\"y\": 1, \"x\": [1.0, \"s\\\"q\", 1e-5, null, true]} }",
                     &cid, NULL, &err), 0);
    sh_eval_rec ce;
    assert_int_equal(sh_db_get_eval(db, cid, &ce, &err), 0);
    assert_string_equal(ce.settings_json, "{\"a\":{\"x\":[1.0,\"s\\\"q\",1e-05,null,true],\"y\":1},\"b\":0.1}");
    sh_eval_rec_free(&ce);

    assert_int_equal(sh_db_eval_mark_running(db, id, &err), 0);
    sh_eval_rec e;
    assert_int_equal(sh_db_get_eval(db, id, &e, &err), 0);
    assert_string_equal(e.status, "running");
    assert_int_equal(e.attempts, 1);
    assert_true(e.started_at > 1.6e9);
    assert_int_equal(e.run_id, run);
    assert_true(e.genome == g);
    assert_string_equal(e.device, "pi5");
    assert_string_equal(e.settings_json, "{\"gen\":128,\"prompt\":512}");
    sh_eval_rec_free(&e);

    /* all-or-nothing: a bad sample leaves status and samples untouched */
    sh_sample badsamp[] = {{"decode_ms", 0, 20.0}, {"decode_ms", 1, NAN}};
    assert_int_equal(sh_db_eval_finish_ok(db, id, "{\"decode_tok_s\":45}", badsamp, 2, &err), -1);
    sh_sample dup[] = {{"decode_ms", 0, 20.0}, {"decode_ms", 0, 21.0}};
    assert_int_equal(sh_db_eval_finish_ok(db, id, "{\"decode_tok_s\":45}", dup, 2, &err), -1);
    assert_int_equal(sh_db_eval_finish_ok(db, id, "{truncated", dup, 1, &err), -1);
    assert_int_equal(sh_db_get_eval(db, id, &e, &err), 0);
    assert_string_equal(e.status, "running");
    assert_null(e.result_json);
    sh_eval_rec_free(&e);
    assert_int_equal(tsql_int(db, "SELECT count(*) FROM samples"), 0);

    sh_sample samples[] = {{"decode_ms", 2, 22.5}, {"decode_ms", 0, 20.5}, {"decode_ms", 1, 21.5},
                           {"prefill_ms", 0, 100.0}};
    assert_int_equal(sh_db_eval_finish_ok(db, id, "{\"decode_tok_s\":45.6}", samples, 4, &err), 0);
    assert_int_equal(sh_db_get_eval(db, id, &e, &err), 0);
    assert_string_equal(e.status, "ok");
    assert_string_equal(e.result_json, "{\"decode_tok_s\":45.6}");
    assert_true(e.finished_at >= e.started_at);
    sh_eval_rec_free(&e);
    double *vals;
    int nv;
    assert_int_equal(sh_db_get_samples(db, id, "decode_ms", &vals, &nv, &err), 0);
    assert_int_equal(nv, 3);
    assert_true(vals[0] == 20.5 && vals[1] == 21.5 && vals[2] == 22.5);
    free(vals);
    assert_int_equal(sh_db_eval_get_or_create(db, run, g, "pi5", "measure", "{\"gen\":128,\"prompt\":512}",
                     &id2, status, &err), 0);
    assert_int_equal(id2, id);
    assert_string_equal(status, "ok");

    /* an ok result is final */
    assert_int_equal(sh_db_eval_mark_running(db, id, &err), -1);
    assert_non_null(strstr(err.msg, "already ok"));
    assert_int_equal(sh_db_eval_finish_failed(db, id, "late failure", &err), -1);
    assert_int_equal(sh_db_get_eval(db, id, &e, &err), 0);
    assert_string_equal(e.status, "ok");
    sh_eval_rec_free(&e);

    /* failure path, then retry */
    int64_t fid;
    assert_int_equal(sh_db_eval_get_or_create(db, run, g, "box", "measure", "{\"prompt\":64}", &fid, NULL, &err), 0);
    assert_int_equal(sh_db_eval_mark_running(db, fid, &err), 0);
    assert_int_equal(sh_db_eval_finish_failed(db, fid, "ssh: connection refused", &err), 0);
    assert_int_equal(sh_db_get_eval(db, fid, &e, &err), 0);
    assert_string_equal(e.status, "failed");
    assert_string_equal(e.error, "ssh: connection refused");
    sh_eval_rec_free(&e);
    assert_int_equal(sh_db_eval_mark_running(db, fid, &err), 0);
    assert_int_equal(sh_db_get_eval(db, fid, &e, &err), 0);
    assert_int_equal(e.attempts, 2);
    sh_eval_rec_free(&e);

    /* reset makes an ok evaluation pending again and drops its samples */
    assert_int_equal(sh_db_eval_reset(db, id, &err), 0);
    assert_int_equal(sh_db_get_samples(db, id, "decode_ms", &vals, &nv, &err), 0);
    assert_int_equal(nv, 0);
    free(vals);

    sh_eval_counts c;
    assert_int_equal(sh_db_count_evals(db, run, &c, &err), 0);
    assert_int_equal(c.total, 5);
    assert_int_equal(c.pending, 4);   /* 3 never started + the reset one */
    assert_int_equal(c.running, 1);
    assert_int_equal(c.ok + c.failed, 0);
    sh_eval_rec *list;
    int n;
    assert_int_equal(sh_db_list_evals(db, run, &list, &n, &err), 0);
    assert_int_equal(n, 5);
    assert_int_equal(list[0].id, id);   /* by id */
    sh_eval_recs_free(list, n);
    assert_int_equal(sh_db_get_eval(db, 99999, &e, &err), -1);
    sh_db_close(db);
}

static void test_eval_without_run_or_device(void **state)
{
    (void)state;
    sh_db *db = open_new("evals0.db");
    sh_err err = {{0}};
    int64_t a, b;
    sh_hash g = 42;
    assert_int_equal(sh_db_eval_get_or_create(db, 0, g, "", "score", NULL, &a, NULL, &err), 0);
    assert_int_equal(sh_db_eval_get_or_create(db, 0, g, NULL, "score", "{}", &b, NULL, &err), 0);
    assert_int_equal(a, b);   /* NULL run/device still unique */
    assert_int_equal(tsql_int(db, "SELECT count(*) FROM evaluations"), 1);
    sh_eval_rec e;
    assert_int_equal(sh_db_get_eval(db, a, &e, &err), 0);
    assert_int_equal(e.run_id, 0);
    assert_string_equal(e.device, "");
    sh_eval_rec_free(&e);
    sh_eval_rec *list;
    int n;
    assert_int_equal(sh_db_list_evals(db, 0, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    sh_eval_recs_free(list, n);
    sh_db_close(db);
}

typedef struct race_arg {
    const char *path;
    int64_t ids[40];
    int rc;
} race_arg;

static void *race_worker(void *p)
{
    race_arg *a = p;
    sh_db *db = NULL;
    sh_err err = {{0}};
    a->rc = sh_db_open(a->path, SH_DB_CREATE, &db, &err);
    for (int i = 0; a->rc == 0 && i < 40; i++) {
        char settings[64];
        snprintf(settings, sizeof settings, "{\"i\":%d}", i);
        a->rc = sh_db_eval_get_or_create(db, 0, 7, "dev", "measure", settings, &a->ids[i], NULL, &err);
    }
    if (a->rc != 0) fprintf(stderr, "race worker: %s\n", err.msg);
    sh_db_close(db);
    return NULL;
}

static void test_get_or_create_race(void **state)
{
    (void)state;
    /* both threads create and migrate the same new file at once, then ask
     * for the same 40 evaluations: each must be created exactly once */
    char p[512];
    path_in(p, sizeof p, "race.db");
    race_arg a = {.path = p}, b = {.path = p};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, race_worker, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, race_worker, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    for (int i = 0; i < 40; i++) assert_int_equal(a.ids[i], b.ids[i]);
    sh_db *db = open_new("race.db");
    assert_int_equal(tsql_int(db, "SELECT count(*) FROM evaluations"), 40);
    assert_int_equal(sh_db_schema_version(db, NULL), SH_DB_SCHEMA_VERSION);
    sh_db_close(db);
}

/* ---- batch jobs of cluster executors (schema 2) ------------------------------------ */

static void test_score_jobs(void **state)
{
    (void)state;
    sh_db *db = open_new("jobs.db");
    sh_err err = {{0}};
    sh_job_rec j;
    memset(&j, 0, sizeof j);
    j.genome = 0x1234;
    snprintf(j.scorer, sizeof j.scorer, "builtin");
    snprintf(j.version, sizeof j.version, "builtin-3");
    snprintf(j.executor, sizeof j.executor, "slurm");
    snprintf(j.state, sizeof j.state, "submitting");
    snprintf(j.spec_path, sizeof j.spec_path, "/shared/a.spec.json");
    snprintf(j.result_path, sizeof j.result_path, "/shared/a.result.json");
    j.attempt = 1;
    int64_t id1, id2;
    assert_int_equal(sh_db_job_add(db, &j, "{\"seed\":\"1\",\"a\":2}", &id1, &err), 0);
    /* a new attempt cannot start final, attempt must be >= 1 */
    snprintf(j.state, sizeof j.state, "ok");
    assert_int_equal(sh_db_job_add(db, &j, "{}", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "submitting or queued"));
    snprintf(j.state, sizeof j.state, "submitting");
    assert_int_equal(sh_db_job_set_submitted(db, id1, "4711", &err), 0);
    assert_int_equal(sh_db_job_observe(db, id1, "RUNNING", 1000.5, &err), 0);
    assert_int_equal(sh_db_job_finish(db, id1, "retry", "CANCELLED", 15, "CANCELLED by 0 (signal 15)", &err), 0);
    /* final is final */
    assert_int_equal(sh_db_job_finish(db, id1, "ok", "COMPLETED", 0, NULL, &err), -1);
    assert_int_equal(sh_db_job_observe(db, id1, "RUNNING", NAN, &err), -1);
    assert_int_equal(sh_db_job_finish(db, id1, "queued", "", -1, NULL, &err), -1);
    j.attempt = 2;
    assert_int_equal(sh_db_job_add(db, &j, "{\"a\":2,\"seed\":\"1\"}", &id2, &err), 0);
    assert_int_equal(sh_db_job_set_submitted(db, id2, "4712", &err), 0);

    /* the same key with keys in another order finds both attempts, oldest first */
    sh_job_rec *list;
    int n;
    assert_int_equal(sh_db_job_list_key(db, 0x1234, "builtin", "builtin-3", "{ \"a\": 2, \"seed\": \"1\" }",
                                        &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].state, "retry");
    assert_string_equal(list[0].job_id, "4711");
    assert_string_equal(list[0].cluster_state, "CANCELLED");
    assert_int_equal(list[0].exit_code, 15);
    assert_string_equal(list[0].reason, "CANCELLED by 0 (signal 15)");
    assert_true(list[0].started_at == 1000.5);
    assert_false(isnan(list[0].finished_at));
    assert_string_equal(list[1].state, "queued");
    assert_int_equal(list[1].attempt, 2);
    assert_int_equal(list[1].exit_code, -1);
    assert_null(list[1].reason);
    assert_string_equal(list[1].result_path, "/shared/a.result.json");
    sh_job_recs_free(list, n);
    /* another params: nothing */
    assert_int_equal(sh_db_job_list_key(db, 0x1234, "builtin", "builtin-3", "{\"a\":3}", &list, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(list);
    assert_int_equal(sh_db_job_list(db, 0, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    sh_job_recs_free(list, n);
    assert_int_equal(sh_db_job_finish(db, id2, "failed", "FAILED", 9, "FAILED (signal 9)", &err), 0);
    sh_db_close(db);
}

/* ---- scores ---------------------------------------------------------------------- */

static void test_scores(void **state)
{
    (void)state;
    sh_db *db = open_new("scores.db");
    sh_err err = {{0}};
    sh_score_rec s;
    memset(&s, 0, sizeof s);
    s.genome = 0xabcdef;
    snprintf(s.scorer, sizeof s.scorer, "builtin");
    snprintf(s.version, sizeof s.version, "1");
    snprintf(s.status, sizeof s.status, "ok");
    s.params_json = (char *)"{\"tasks\":[\"mqar\",\"copy\"],\"seed\":3,\"steps\":200}";
    s.scores_json = (char *)"{\"mqar\":0.5,\"copy\":0.75}";
    s.aggregate = 0.625;
    s.seconds = 12.5;
    assert_int_equal(sh_db_put_score(db, &s, &err), 0);

    sh_score_rec f;
    const char *reordered = "{ \"steps\": 200, \"seed\": 3, \"tasks\": [\"mqar\", \"copy\"] }";
    assert_int_equal(sh_db_find_score(db, 0xabcdef, "builtin", "1", reordered, &f, &err), 0);
    assert_true(f.aggregate == 0.625);
    assert_true(f.seconds == 12.5);
    assert_string_equal(f.status, "ok");
    assert_string_equal(f.scores_json, "{\"mqar\":0.5,\"copy\":0.75}");
    sh_score_rec_free(&f);

    /* same question, keys in another order: replaces the same row */
    s.params_json = (char *)reordered;
    s.aggregate = 0.7;
    assert_int_equal(sh_db_put_score(db, &s, &err), 0);
    assert_int_equal(tsql_int(db, "SELECT count(*) FROM scores"), 1);
    assert_int_equal(sh_db_find_score(db, 0xabcdef, "builtin", "1", s.params_json, &f, &err), 0);
    assert_true(f.aggregate == 0.7);
    sh_score_rec_free(&f);

    /* array order matters, version matters: different rows */
    s.params_json = (char *)"{\"tasks\":[\"copy\",\"mqar\"],\"seed\":3,\"steps\":200}";
    assert_int_equal(sh_db_put_score(db, &s, &err), 0);
    snprintf(s.version, sizeof s.version, "2");
    snprintf(s.status, sizeof s.status, "failed");
    s.scores_json = NULL;
    s.aggregate = NAN;
    s.error = (char *)"scorer exited 3";
    assert_int_equal(sh_db_put_score(db, &s, &err), 0);
    assert_int_equal(tsql_int(db, "SELECT count(*) FROM scores"), 3);
    assert_int_equal(sh_db_find_score(db, 0xabcdef, "builtin", "2", s.params_json, &f, &err), 0);
    assert_true(isnan(f.aggregate));
    assert_string_equal(f.error, "scorer exited 3");
    assert_null(f.scores_json);
    sh_score_rec_free(&f);

    /* absent: -1 with the message cleared; bad params: -1 with a message */
    assert_int_equal(sh_db_find_score(db, 0xabcdef, "builtin", "9", "{}", &f, &err), -1);
    assert_string_equal(err.msg, "");
    assert_int_equal(sh_db_find_score(db, 0xabcdef, "builtin", "1", "{\"a\":", &f, &err), -1);
    assert_true(err.msg[0] != '\0');
    snprintf(s.status, sizeof s.status, "maybe");
    assert_int_equal(sh_db_put_score(db, &s, &err), -1);

    sh_score_rec *list;
    int n;
    sh_hash g = 0xabcdef, other = 1;
    assert_int_equal(sh_db_list_scores(db, &g, &list, &n, &err), 0);
    assert_int_equal(n, 3);
    sh_score_recs_free(list, n);
    assert_int_equal(sh_db_list_scores(db, &other, &list, &n, &err), 0);
    assert_int_equal(n, 0);
    sh_score_recs_free(list, n);
    assert_int_equal(sh_db_list_scores(db, NULL, &list, &n, &err), 0);
    assert_int_equal(n, 3);
    sh_score_recs_free(list, n);
    sh_db_close(db);
}

/* ---- generations and profiles -------------------------------------------------- */

static void test_generations(void **state)
{
    (void)state;
    sh_db *db = open_new("gens.db");
    sh_err err = {{0}};
    int64_t run;
    assert_int_equal(sh_db_create_run(db, "nsga", "{}", 1, &run, &err), 0);
    int gen;
    assert_int_equal(sh_db_latest_generation(db, run, &gen, &err), -1);
    assert_string_equal(err.msg, "");
    sh_gen_member m0[] = {
        {1, 0, INFINITY, true, "{\"latency_ms\":10,\"loss\":2.5}"},
        {2, 0, 0.5, true, "{\"latency_ms\":20,\"loss\":2.0}"},
        {3, 1, 1.0, false, "{\"latency_ms\":30,\"loss\":2.6}"},
    };
    assert_int_equal(sh_db_put_generation(db, run, 0, m0, 3, 0.25, 3, &err), 0);
    sh_gen_member m1[] = {
        {4, 0, INFINITY, true, "{\"latency_ms\":9,\"loss\":2.4}"},
        {2, 1, 0.1, false, "{\"latency_ms\":20,\"loss\":2.0}"},
    };
    assert_int_equal(sh_db_put_generation(db, run, 1, m1, 2, 0.5, 5, &err), 0);
    assert_int_equal(sh_db_latest_generation(db, run, &gen, &err), 0);
    assert_int_equal(gen, 1);

    sh_gen_row *rows;
    int n;
    assert_int_equal(sh_db_list_generation(db, run, 0, false, &rows, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_true(rows[0].genome == 1 && isinf(rows[0].crowding));   /* rank 0, crowding desc */
    assert_true(rows[1].genome == 2);
    assert_true(rows[2].genome == 3 && rows[2].rank == 1 && !rows[2].on_front);
    assert_string_equal(rows[1].objectives_json, "{\"latency_ms\":20,\"loss\":2.0}");
    sh_gen_rows_free(rows, n);
    assert_int_equal(sh_db_list_generation(db, run, -1, true, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_true(rows[0].genome == 4 && rows[0].gen == 1);
    sh_gen_rows_free(rows, n);

    /* a bad member leaves the stored generation as it was */
    sh_gen_member dup[] = {{5, 0, 1.0, true, "{}"}, {5, 0, 1.0, true, "{}"}};
    assert_int_equal(sh_db_put_generation(db, run, 1, dup, 2, 9.0, 9, &err), -1);
    assert_non_null(strstr(err.msg, "twice"));
    sh_gen_member badjson[] = {{6, 0, 1.0, true, "{\"x\":"}};
    assert_int_equal(sh_db_put_generation(db, run, 1, badjson, 1, 9.0, 9, &err), -1);
    assert_int_equal(sh_db_put_generation(db, 4242, 0, m0, 1, 1.0, 1, &err), -1);
    assert_non_null(strstr(err.msg, "4242"));

    sh_run_metric *mets;
    assert_int_equal(sh_db_list_run_metrics(db, run, &mets, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(mets[0].gen, 0);
    assert_true(mets[0].hypervolume == 0.25);
    assert_int_equal(mets[0].front_size, 2);
    assert_int_equal(mets[1].evaluations, 5);
    assert_true(mets[1].hypervolume == 0.5);
    assert_int_equal(mets[1].front_size, 1);
    free(mets);

    /* storing generation 1 again replaces it */
    assert_int_equal(sh_db_put_generation(db, run, 1, m0, 3, 0.75, 6, &err), 0);
    assert_int_equal(sh_db_list_generation(db, run, 1, false, &rows, &n, &err), 0);
    assert_int_equal(n, 3);
    sh_gen_rows_free(rows, n);
    int *gens;
    assert_int_equal(sh_db_list_generation_numbers(db, run, &gens, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(gens[1], 1);
    free(gens);
    sh_db_close(db);
}

static void test_profiles(void **state)
{
    (void)state;
    sh_db *db = open_new("profiles.db");
    sh_err err = {{0}};
    sh_device_rec d = make_device("pi5", "ssh");
    assert_int_equal(sh_db_add_device(db, &d, &err), 0);
    sh_profile_row rows[] = {
        {"conv", "{\"d\":1024,\"L\":3}", "f32", 12.5, 8.0, 1.5},
        {"gqa", "{\"d\":1024,\"heads\":16,\"kv\":8}", "q4_0", 30.0, 6.0, NAN},
    };
    assert_int_equal(sh_db_put_profile(db, "pi5", rows, 2, &err), 0);
    sh_profile_rec *p;
    int n;
    assert_int_equal(sh_db_list_profile(db, "pi5", &p, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(p[0].block, "conv");
    assert_true(p[0].latency_us == 12.5);
    assert_string_equal(p[1].dtype, "q4_0");
    assert_true(isnan(p[1].gflops));
    sh_profile_recs_free(p, n);
    /* replaced as a whole */
    assert_int_equal(sh_db_put_profile(db, "pi5", rows + 1, 1, &err), 0);
    assert_int_equal(sh_db_list_profile(db, "pi5", &p, &n, &err), 0);
    assert_int_equal(n, 1);
    sh_profile_recs_free(p, n);
    assert_int_equal(sh_db_put_profile(db, "ghost", rows, 1, &err), -1);
    assert_non_null(strstr(err.msg, "ghost"));
    sh_profile_row bad[] = {{"conv", "not json", "f32", 1, 1, 1}};
    assert_int_equal(sh_db_put_profile(db, "pi5", bad, 1, &err), -1);
    assert_int_equal(sh_db_list_profile(db, "pi5", &p, &n, &err), 0);
    assert_int_equal(n, 1);   /* the failed replacement changed nothing */
    sh_profile_recs_free(p, n);
    /* removing the device removes its profile */
    assert_int_equal(sh_db_remove_device(db, "pi5", &err), 0);
    assert_int_equal(tsql_int(db, "SELECT count(*) FROM profiles"), 0);
    sh_db_close(db);
}

/* ---- CLI ----------------------------------------------------------------------- */

static int run_cli(const char *db, const char *const *args, sh_proc_result *res)
{
    const char *bin = getenv("STARHIL_BIN");
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)bin;
    argv[n++] = (char *)"--db";
    argv[n++] = (char *)db;
    for (int i = 0; args[i] && n < 15; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    sh_proc_opts o;
    memset(&o, 0, sizeof o);
    o.timeout_s = 60;
    sh_err err = {{0}};
    memset(res, 0, sizeof *res);
    int rc = sh_proc_run(argv, &o, res, &err);
    if (rc != 0) fprintf(stderr, "run_cli: %s\n", err.msg);
    return rc;
}

static void test_cli(void **state)
{
    (void)state;
    if (!getenv("STARHIL_BIN")) skip();
    char p[512];
    path_in(p, sizeof p, "cli.db");
    sh_db *db = open_new("cli.db");
    sh_err err = {{0}};
    int64_t run;
    assert_int_equal(sh_db_create_run(db, "cli run", "{\"population\":12}", 99, &run, &err), 0);
    int64_t e1, e2;
    assert_int_equal(sh_db_eval_get_or_create(db, run, 11, "pi5", "measure", "{}", &e1, NULL, &err), 0);
    assert_int_equal(sh_db_eval_get_or_create(db, run, 12, "pi5", "measure", "{}", &e2, NULL, &err), 0);
    assert_int_equal(sh_db_eval_mark_running(db, e1, &err), 0);
    assert_int_equal(sh_db_eval_finish_ok(db, e1, "{}", NULL, 0, &err), 0);
    assert_int_equal(sh_db_eval_mark_running(db, e2, &err), 0);
    assert_int_equal(sh_db_eval_finish_failed(db, e2, "device went away", &err), 0);
    sh_gen_member m[] = {{11, 0, INFINITY, true, "{\"lat\":1}"}};
    assert_int_equal(sh_db_put_generation(db, run, 0, m, 1, 0.125, 2, &err), 0);
    sh_db_close(db);

    sh_proc_result res;
    const char *list_json[] = {"runs", "list", "--json", NULL};
    assert_int_equal(run_cli(p, list_json, &res), 0);
    assert_int_equal(res.exit_code, 0);
    json_error_t je;
    json_t *arr = json_loads(res.out, 0, &je);
    assert_non_null(arr);
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 1);
    json_t *r0 = json_array_get(arr, 0);
    assert_int_equal(json_integer_value(json_object_get(r0, "id")), run);
    assert_string_equal(json_string_value(json_object_get(r0, "name")), "cli run");
    assert_int_equal(json_integer_value(json_object_get(r0, "evaluations_ok")), 1);
    assert_int_equal(json_integer_value(json_object_get(r0, "evaluations_failed")), 1);
    assert_int_equal(json_integer_value(json_object_get(r0, "generations")), 1);
    assert_int_equal(json_integer_value(json_object_get(r0, "seed")), 99);
    json_decref(arr);
    sh_proc_result_free(&res);

    const char *list_table[] = {"runs", "list", NULL};
    assert_int_equal(run_cli(p, list_table, &res), 0);
    assert_int_equal(res.exit_code, 0);
    assert_non_null(strstr(res.out, "cli run"));
    assert_non_null(strstr(res.out, "STATUS"));
    sh_proc_result_free(&res);

    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)run);
    const char *show_json[] = {"runs", "show", idbuf, "--json", NULL};
    assert_int_equal(run_cli(p, show_json, &res), 0);
    assert_int_equal(res.exit_code, 0);
    json_t *o = json_loads(res.out, 0, &je);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "config"), "population")), 12);
    json_t *ev = json_object_get(o, "evaluations");
    assert_int_equal(json_integer_value(json_object_get(ev, "ok")), 1);
    assert_int_equal(json_integer_value(json_object_get(ev, "failed")), 1);
    json_t *bd = json_array_get(json_object_get(ev, "by_device"), 0);
    assert_string_equal(json_string_value(json_object_get(bd, "device")), "pi5");
    json_t *lg = json_object_get(o, "latest_generation");
    assert_int_equal(json_integer_value(json_object_get(lg, "front_size")), 1);
    assert_true(json_real_value(json_object_get(lg, "hypervolume")) == 0.125);
    json_t *le = json_array_get(json_object_get(o, "last_errors"), 0);
    assert_string_equal(json_string_value(json_object_get(le, "error")), "device went away");
    json_decref(o);
    sh_proc_result_free(&res);

    const char *show_text[] = {"runs", "show", idbuf, NULL};
    assert_int_equal(run_cli(p, show_text, &res), 0);
    assert_int_equal(res.exit_code, 0);
    assert_non_null(strstr(res.out, "hypervolume 0.125"));
    assert_non_null(strstr(res.out, "device went away"));
    sh_proc_result_free(&res);

    const char *show_missing[] = {"runs", "show", "999", NULL};
    assert_int_equal(run_cli(p, show_missing, &res), 0);
    assert_int_equal(res.exit_code, 1);
    assert_non_null(strstr(res.err, "999"));
    assert_string_equal(res.out, "");
    sh_proc_result_free(&res);

    const char *show_bad[] = {"runs", "show", "abc", NULL};
    assert_int_equal(run_cli(p, show_bad, &res), 0);
    assert_int_equal(res.exit_code, 1);
    assert_non_null(strstr(res.err, "abc"));
    sh_proc_result_free(&res);

    const char *helps[][4] = {{"runs", "--help", NULL}, {"runs", "list", "--help", NULL},
                              {"runs", "show", "--help", NULL}};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(run_cli(p, helps[i], &res), 0);
        assert_int_equal(res.exit_code, 0);
        assert_non_null(strstr(res.out, "usage: starhil runs"));
        sh_proc_result_free(&res);
    }

    /* a file that is not a database: message, exit 1, file untouched */
    char notdb[512];
    path_in(notdb, sizeof notdb, "cli-notes.txt");
    write_bytes(notdb, "hello\n", 6);
    assert_int_equal(run_cli(notdb, list_json, &res), 0);
    assert_int_equal(res.exit_code, 1);
    assert_non_null(strstr(res.err, "not a starhil database"));
    sh_proc_result_free(&res);
    assert_unchanged(notdb, "hello\n", 6);

    /* no database yet: an empty list */
    char none[512];
    path_in(none, sizeof none, "does-not-exist.db");
    assert_int_equal(run_cli(none, list_json, &res), 0);
    assert_int_equal(res.exit_code, 0);
    arr = json_loads(res.out, 0, &je);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    sh_proc_result_free(&res);
    assert_int_equal(access(none, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_open_reopen),
        cmocka_unit_test(test_open_cli_and_memory),
        cmocka_unit_test(test_pragmas),
        cmocka_unit_test(test_migrate_empty_file),
        cmocka_unit_test(test_migrate_v0_file),
        cmocka_unit_test(test_migrate_v1_stability),
        cmocka_unit_test(test_failed_migration_is_atomic),
        cmocka_unit_test(test_foreign_sqlite_refused),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_not_a_database_refused),
        cmocka_unit_test(test_readonly_refused),
        cmocka_unit_test(test_nested_transactions),
        cmocka_unit_test(test_genome_round_trip),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_injection_stored_verbatim),
        cmocka_unit_test(test_runs_state),
        cmocka_unit_test(test_eval_lifecycle),
        cmocka_unit_test(test_eval_without_run_or_device),
        cmocka_unit_test(test_get_or_create_race),
        cmocka_unit_test(test_scores),
        cmocka_unit_test(test_migrate_v1_to_v2),
        cmocka_unit_test(test_score_jobs),
        cmocka_unit_test(test_generations),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
