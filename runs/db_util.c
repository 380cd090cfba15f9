/* db_util.c - small helpers of the run store: error messages from SQLite,
 * statement preparation and column access, JSON canonicalisation and the
 * FNV-1a hash used for settings/params keys. */
#include "runs/runs_internal.h"
#include "util/strbuf.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int shdb_sql_error(sh_db *db, sh_err *err, const char *what)
{
    return sh_err_set(err, "%s: %s: %s", db->path, what, db->h ? sqlite3_errmsg(db->h) : "no handle");
}

int shdb_prepare(sh_db *db, const char *sql, sqlite3_stmt **st, sh_err *err, const char *what)
{
    *st = NULL;
    if (sqlite3_prepare_v2(db->h, sql, -1, st, NULL) != SQLITE_OK) {
        shdb_sql_error(db, err, what);
        sqlite3_finalize(*st);
        *st = NULL;
        return -1;
    }
    return 0;
}

int shdb_bind_text(sqlite3_stmt *st, int i, const char *s, bool empty_is_null)
{
    if (!s || (empty_is_null && !*s)) return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

int shdb_step_done(sh_db *db, sqlite3_stmt *st, sh_err *err, const char *what)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) ret = shdb_sql_error(db, err, what);
    sqlite3_finalize(st);
    return ret;
}

void shdb_col_copy(sqlite3_stmt *st, int col, char *buf, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(buf, cap, "%s", t ? (const char *)t : "");
}

int shdb_collect(sh_db *db, sqlite3_stmt *st, size_t size, shdb_row_reader read, void (*free_elem)(void *elem),
                 void **out, int *n, sh_err *err, const char *what)
{
    assert(st && size > 0 && read && out && n);
    *out = NULL;
    *n = 0;
    char *arr = NULL;
    int count = 0, cap = 0, rc;
    bool oom = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            int ncap = cap ? cap * 2 : 16;
            char *na = realloc(arr, (size_t)ncap * size);
            if (!na) { oom = true; break; }
            arr = na;
            cap = ncap;
        }
        void *elem = arr + (size_t)count++ * size;
        memset(elem, 0, size);
        if (read(st, elem) != 0) { oom = true; break; }
    }
    sqlite3_finalize(st);
    if (oom || rc != SQLITE_DONE) {
        for (int i = 0; free_elem && i < count; i++) free_elem(arr + (size_t)i * size);
        free(arr);
        return oom ? sh_err_set(err, "%s: %s: out of memory", db->path, what) : shdb_sql_error(db, err, what);
    }
    *out = arr;
    *n = count;
    return 0;
}

char *shdb_col_dup(sqlite3_stmt *st, int col, bool *oom)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL) return NULL;
    const unsigned char *t = sqlite3_column_text(st, col);
    if (!t) { *oom = true; return NULL; }
    char *s = strdup((const char *)t);
    if (!s) *oom = true;
    return s;
}

double shdb_col_real(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL) return NAN;
    return sqlite3_column_double(st, col);
}

uint64_t shdb_fnv1a64(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static json_t *parse_json(const char *text, const char *what, sh_err *err)
{
    if (!text) { sh_err_set(err, "%s: missing JSON", what); return NULL; }
    size_t n = strlen(text);
    if (n > SH_DB_JSON_MAX) {
        sh_err_set(err, "%s: JSON text too large (%zu bytes, limit %u)", what, n, SH_DB_JSON_MAX);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(text, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!j) sh_err_set(err, "%s: invalid JSON at line %d column %d: %s", what, je.line, je.column, je.text);
    return j;
}

/* ---- canonical JSON: keys sorted, compact, shortest round-trip reals ---- */

/* shortest round-trip real, always with a '.' or an exponent so it stays a
 * real ("n": nan/inf cannot occur in parsed JSON) */
static void sb_real(sh_strbuf *b, double v)
{
    char buf[40];
    sh_fmt_double(v, buf, sizeof buf, 1);
    sh_strbuf_puts(b, buf);
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void sb_json(sh_strbuf *b, json_t *j);

static void sb_object(sh_strbuf *b, json_t *j)
{
    size_t n = json_object_size(j), i = 0;
    const char **keys = n ? malloc(n * sizeof *keys) : NULL;
    if (n && !keys) { b->oom = true; return; }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) keys[i++] = k;
    if (n > 1) qsort(keys, n, sizeof *keys, cmp_keys);
    sh_strbuf_puts(b, "{");
    for (i = 0; i < n; i++) {
        if (i) sh_strbuf_puts(b, ",");
        json_t *ks = json_string(keys[i]);
        sb_json(b, ks);
        json_decref(ks);
        sh_strbuf_puts(b, ":");
        sb_json(b, json_object_get(j, keys[i]));
    }
    sh_strbuf_puts(b, "}");
    free(keys);
}

static void sb_json(sh_strbuf *b, json_t *j)
{
    char buf[32];
    switch (json_typeof(j)) {
    case JSON_OBJECT: sb_object(b, j); break;
    case JSON_ARRAY:
        sh_strbuf_puts(b, "[");
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i) sh_strbuf_puts(b, ",");
            sb_json(b, json_array_get(j, i));
        }
        sh_strbuf_puts(b, "]");
        break;
    case JSON_STRING: {
        char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!s) { b->oom = true; break; }
        sh_strbuf_puts(b, s);
        free(s);
        break;
    }
    case JSON_INTEGER:
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        sh_strbuf_puts(b, buf);
        break;
    case JSON_REAL: sb_real(b, json_real_value(j)); break;
    case JSON_TRUE: sh_strbuf_puts(b, "true"); break;
    case JSON_FALSE: sh_strbuf_puts(b, "false"); break;
    case JSON_NULL: sh_strbuf_puts(b, "null"); break;
    }
}

char *shdb_canon_json(const char *text, const char *what, sh_err *err)
{
    json_t *j = parse_json(text, what, err);
    if (!j) return NULL;
    sh_strbuf b = {0};
    sb_json(&b, j);
    json_decref(j);
    if (b.oom || !b.data) {
        free(b.data);
        sh_err_set(err, "%s: cannot encode JSON (out of memory)", what);
        return NULL;
    }
    return b.data;
}

int shdb_check_json(const char *text, bool nullable, const char *what, sh_err *err)
{
    if ((!text || !*text) && nullable) return 0;   /* "" counts as absent */
    json_t *j = parse_json(text, what, err);
    if (!j) return -1;
    json_decref(j);
    return 0;
}

int shdb_check_str(const char *s, size_t cap, bool required, const char *what, sh_err *err)
{
    if (!s || !*s) return required ? sh_err_set(err, "%s: must not be empty", what) : 0;
    size_t n = strnlen(s, cap);
    if (n >= cap) return sh_err_set(err, "%s: too long (limit %zu bytes)", what, cap - 1);
    return 0;
}

double shdb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int shdb_read_pragma_int(sh_db *db, const char *pragma, long long *out, sh_err *err)
{
    /* pragma names come from this module's own constants, never from input */
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA %s", pragma);
    sqlite3_stmt *st;
    if (shdb_prepare(db, sql, &st, err, pragma) != 0) return -1;
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        if ((rc & 0xff) == SQLITE_NOTADB)
            return sh_err_set(err, "%s: not a starhil database (file is not an SQLite database)", db->path);
        return shdb_sql_error(db, err, pragma);
    }
    return 0;
}
