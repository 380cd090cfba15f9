/* store_sql.c - the test's own SQLite connection on a store's file (see
 * store_sql.h). */
#include "store_sql.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
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
