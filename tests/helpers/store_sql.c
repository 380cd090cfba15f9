/* store_sql.c - the test's own SQLite connection on a store's file (see
 * store_sql.h). */
#include "store_sql.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

sqlite3 *tsql_open(const sh_db *db)
{
    sqlite3 *h = NULL;
    int rc = sqlite3_open_v2(sh_db_path(db), &h, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK) fprintf(stderr, "tsql_open %s: %s\n", sh_db_path(db), h ? sqlite3_errmsg(h) : "?");
    assert_int_equal(rc, SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    return h;
}

/* Steps sql to its first row on a fresh connection; the caller reads column 0. */
static sqlite3_stmt *first_row(const sh_db *db, const char *sql, sqlite3 **h)
{
    *h = tsql_open(db);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(*h, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    return st;
}

void tsql_load(const char *path, const char *sql_file)
{
    FILE *f = fopen(sql_file, "rb");
    if (!f) fprintf(stderr, "tsql_load: cannot read %s\n", sql_file);
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(len > 0);
    char *sql = malloc((size_t)len + 1);
    assert_non_null(sql);
    assert_int_equal(fread(sql, 1, (size_t)len, f), (size_t)len);
    sql[len] = 0;
    fclose(f);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXCLUSIVE,
                                     NULL), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) fprintf(stderr, "tsql_load %s: %s\n", sql_file, msg ? msg : "?");
    sqlite3_free(msg);
    free(sql);
    assert_int_equal(rc, SQLITE_OK);
    assert_int_equal(sqlite3_close(h), SQLITE_OK);
}

long long tsql_int(const sh_db *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st = first_row(db, sql, &h);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(h), SQLITE_OK);
    return v;
}

void tsql_text(const sh_db *db, const char *sql, char *out, size_t cap)
{
    sqlite3 *h;
    sqlite3_stmt *st = first_row(db, sql, &h);
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(h), SQLITE_OK);
}
