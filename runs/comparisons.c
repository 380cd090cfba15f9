/* comparisons.c - paired speed ratios of earlier `starhil compare` runs, kept
 * so that a later run of a comparison on the same device can learn how much a
 * ratio moves from run to run (measure/compare_cli.c widens its intervals by
 * that between-run spread).  One row per run, ratio and metric. */
#include "runs/runs_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int sh_db_add_comparison(sh_db *db, const sh_comparison_row *r, sh_err *err)
{
    if (!r || !r->device || !*r->device) return sh_err_set(err, "%s: store comparison: no device", db->path);
    if (shdb_check_str(r->key, 4096, true, "comparison key", err) != 0) return sh_err_prefix(err, "%s", db->path);
    if (!r->metric || (strcmp(r->metric, "decode") && strcmp(r->metric, "prefill")))
        return sh_err_set(err, "%s: store comparison: metric must be decode or prefill", db->path);
    if (!isfinite(r->log_ratio) || !(r->se >= 0) || !isfinite(r->se) || r->rounds < 1)
        return sh_err_set(err, "%s: store comparison: ratio %g, standard error %g over %d rounds is not a "
                          "measurement", db->path, r->log_ratio, r->se, r->rounds);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "INSERT INTO comparisons(device, key, metric, log_ratio, se, rounds) "
                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6)", &st, err, "store comparison") != 0)
        return -1;
    sqlite3_bind_text(st, 1, r->device, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->metric, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, r->log_ratio);
    sqlite3_bind_double(st, 5, r->se);
    sqlite3_bind_int(st, 6, r->rounds);
    return shdb_step_done(db, st, err, "store comparison");
}

static int read_comparison(sqlite3_stmt *st, void *elem)
{
    sh_comparison_rec *c = elem;
    bool oom = false;
    c->key = shdb_col_dup(st, 0, &oom);
    c->log_ratio = shdb_col_real(st, 1);
    c->se = shdb_col_real(st, 2);
    c->rounds = sqlite3_column_int(st, 3);
    shdb_col_copy(st, 4, c->created_at, sizeof c->created_at);
    return oom ? -1 : 0;
}

static void free_comparison(void *elem)
{
    sh_comparison_rec *c = elem;
    free(c->key);
    c->key = NULL;
}

void sh_comparison_recs_free(sh_comparison_rec *c, int n)
{
    if (!c) return;
    for (int i = 0; i < n; i++) free(c[i].key);
    free(c);
}

int sh_db_list_comparisons(sh_db *db, const char *device, const char *metric, sh_comparison_rec **out, int *n,
                           sh_err *err)
{
    *out = NULL;
    *n = 0;
    if (!device || !metric) return sh_err_set(err, "%s: list comparisons: no device or metric", db->path);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT key, log_ratio, se, rounds, created_at FROM comparisons "
                         "WHERE device = ?1 AND metric = ?2 ORDER BY id", &st, err, "list comparisons") != 0)
        return -1;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, metric, -1, SQLITE_STATIC);
    void *arr;
    int rc = shdb_collect(db, st, sizeof **out, read_comparison, free_comparison, &arr, n, err, "list comparisons");
    *out = arr;
    return rc;
}
