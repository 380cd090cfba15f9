/* runs_internal.h - private helpers shared by the run store's source files
 * (the .c files of runs/).  Not a contract: other modules use runs.h only. */
#ifndef SH_RUNS_INTERNAL_H
#define SH_RUNS_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runs/runs.h"

/* Largest JSON text the store accepts in any column (configs, results...). */
#define SH_DB_JSON_MAX (64u * 1024u * 1024u)

struct sh_db {
    sqlite3 *h;
    char *path;
    int flags;
    int tx_depth;        /* nesting count of sh_db_begin                   */
    bool tx_doomed;      /* an inner level rolled back: outermost rolls back */
};

/* ---- errors ---------------------------------------------------------------- */
/* "PATH: what: sqlite message".  Returns -1. */
int shdb_sql_error(sh_db *db, sh_err *err, const char *what);

/* ---- statements -------------------------------------------------------------- */
int shdb_prepare(sh_db *db, const char *sql, sqlite3_stmt **st, sh_err *err, const char *what);
/* Binds s, or SQL NULL when s is NULL (or empty, if empty_is_null). */
int shdb_bind_text(sqlite3_stmt *st, int i, const char *s, bool empty_is_null);
/* Steps a statement expected to finish without rows; finalizes it. */
int shdb_step_done(sh_db *db, sqlite3_stmt *st, sh_err *err, const char *what);
/* Copies a text column into a fixed buffer ("" for NULL). */
void shdb_col_copy(sqlite3_stmt *st, int col, char *buf, size_t cap);
/* malloc'd copy of a text column, NULL for SQL NULL; *oom set on failure. */
char *shdb_col_dup(sqlite3_stmt *st, int col, bool *oom);
/* Real column, NaN for SQL NULL. */
double shdb_col_real(sqlite3_stmt *st, int col);

/* ---- lists ------------------------------------------------------------------- */
/* Steps st to its end and finalizes it, reading each row into a new element of
 * a malloc'd array of `size`-byte elements: the element is zeroed, then filled
 * by read(st, elem) (0, or -1 when out of memory).  Success: *out and *n (NULL
 * and 0 for no rows).  Failure: every element read, the failing one included,
 * is released with free_elem (NULL when elements own nothing; it must accept
 * a zeroed or already released element), the array is freed, and -1 comes
 * back with "PATH: what: ..." in err. */
typedef int (*shdb_row_reader)(sqlite3_stmt *st, void *elem);
int shdb_collect(sh_db *db, sqlite3_stmt *st, size_t size, shdb_row_reader read, void (*free_elem)(void *elem),
                 void **out, int *n, sh_err *err, const char *what);

/* ---- values ------------------------------------------------------------------ */
uint64_t shdb_fnv1a64(const char *s, size_t n);
/* Canonical JSON text (keys sorted, compact) of `text`, malloc'd; NULL and a
 * message naming `what` if text is NULL, not valid JSON, or over the limit. */
char *shdb_canon_json(const char *text, const char *what, sh_err *err);
/* Validates JSON text (NULL allowed when nullable). 0 or -1. */
int shdb_check_json(const char *text, bool nullable, const char *what, sh_err *err);
/* Checks a user string fits a field of cap bytes (and is non-empty if required). */
int shdb_check_str(const char *s, size_t cap, bool required, const char *what, sh_err *err);
double shdb_now(void);

/* ---- schema (schema.c) ---------------------------------------------------- */
/* Brings the schema up to SH_DB_SCHEMA_VERSION, one transaction per migration. */
int shdb_migrate(sh_db *db, sh_err *err);
int shdb_read_pragma_int(sh_db *db, const char *pragma, long long *out, sh_err *err);

#endif
