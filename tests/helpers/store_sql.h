/* store_sql.h - test-only raw SQL on a store file: the test's own SQLite
 * connection on the file an sh_db has open (sh_db_path), so store tests can
 * look at rows, counts and file-wide pragmas that the typed API of runs.h
 * does not show.  The store's own connection stays private to runs/: pragmas
 * that belong to a connection (foreign_keys, busy_timeout) are not visible
 * here and are tested through the store's behaviour instead. */
#ifndef SH_TESTS_STORE_SQL_H
#define SH_TESTS_STORE_SQL_H

#include <sqlite3.h>
#include <stddef.h>

#include "runs/runs.h"

/* A read-write connection on the store's file; fails the test if it cannot
 * be opened.  Close it with sqlite3_close. */
sqlite3 *tsql_open(const sh_db *db);
/* The first column of the only (first) row of sql, as an integer / as text. */
long long tsql_int(const sh_db *db, const char *sql);
void tsql_text(const sh_db *db, const char *sql, char *out, size_t cap);

/* Creates the store file `path` from an SQL text file (a `sqlite3 .dump` of a
 * store kept as a fixture); fails the test if it exists or does not load. */
void tsql_load(const char *path, const char *sql_file);

#endif
