/* profiles.c - chip profiles: per-device latency/bandwidth/FLOP rates of block
 * kinds at given sizes and dtypes, replaced as a whole in one transaction. */
#include "runs/runs_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sh_profile_recs_free(sh_profile_rec *p, int n)
{
    if (!p) return;
    for (int i = 0; i < n; i++) free(p[i].params_json);
    free(p);
}

static void bind_real(sqlite3_stmt *st, int i, double v)
{
    if (isnan(v)) sqlite3_bind_null(st, i);
    else sqlite3_bind_double(st, i, v);
}

static int check_rows(const sh_profile_row *rows, int n, sh_err *err)
{
    if (n < 0 || (n > 0 && !rows)) return sh_err_set(err, "bad profile row list (%d)", n);
    sh_profile_rec tmp;
    for (int i = 0; i < n; i++) {
        if (shdb_check_str(rows[i].block, sizeof tmp.block, true, "profile block", err) ||
            shdb_check_str(rows[i].dtype, sizeof tmp.dtype, true, "profile dtype", err) ||
            shdb_check_json(rows[i].params_json, false, "profile params", err))
            return sh_err_prefix(err, "profile row %d", i);
    }
    return 0;
}

static int insert_rows(sh_db *db, const char *device, const sh_profile_row *rows, int n, sh_err *err)
{
    sqlite3_stmt *st;
    if (shdb_prepare(db, "INSERT INTO profiles(device, block, params_json, dtype, latency_us, "
                         "gbytes_per_s, gflops) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)", &st, err,
                     "store profile") != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, rows[i].block, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, rows[i].params_json, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, rows[i].dtype, -1, SQLITE_STATIC);
        bind_real(st, 5, rows[i].latency_us);
        bind_real(st, 6, rows[i].gbytes_per_s);
        bind_real(st, 7, rows[i].gflops);
        if (sqlite3_step(st) != SQLITE_DONE) {
            shdb_sql_error(db, err, "store profile row");
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

int sh_db_put_profile(sh_db *db, const char *device, const sh_profile_row *rows, int n, sh_err *err)
{
    if (!device || !*device) return sh_err_set(err, "%s: put profile: no device", db->path);
    if (check_rows(rows, n, err) != 0) return sh_err_prefix(err, "%s: device '%s'", db->path, device);
    if (sh_db_begin(db, err) != 0) return -1;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT 1 FROM devices WHERE name = ?1", &st, err, "find device") != 0) goto fail;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE) sh_err_set(err, "%s: put profile: no device named '%s'", db->path, device);
        else shdb_sql_error(db, err, "find device");
        goto fail;
    }
    if (shdb_prepare(db, "DELETE FROM profiles WHERE device = ?1", &st, err, "replace profile") != 0) goto fail;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    if (shdb_step_done(db, st, err, "replace profile") != 0) goto fail;
    if (insert_rows(db, device, rows, n, err) != 0) goto fail;
    return sh_db_commit(db, err);
fail:
    sh_db_rollback(db);
    return -1;
}

static int read_profile_row(sqlite3_stmt *st, void *elem)
{
    sh_profile_rec *p = elem;
    shdb_col_copy(st, 0, p->block, sizeof p->block);
    shdb_col_copy(st, 1, p->dtype, sizeof p->dtype);
    bool oom = false;
    p->params_json = shdb_col_dup(st, 2, &oom);
    p->latency_us = shdb_col_real(st, 3);
    p->gbytes_per_s = shdb_col_real(st, 4);
    p->gflops = shdb_col_real(st, 5);
    shdb_col_copy(st, 6, p->created_at, sizeof p->created_at);
    return oom ? -1 : 0;
}

static void free_profile_row(void *elem)
{
    sh_profile_rec *p = elem;
    free(p->params_json);
    p->params_json = NULL;
}

int sh_db_list_profile(sh_db *db, const char *device, sh_profile_rec **out, int *n, sh_err *err)
{
    *out = NULL;
    *n = 0;
    if (!device) return sh_err_set(err, "%s: list profile: no device", db->path);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT block, dtype, params_json, latency_us, gbytes_per_s, gflops, created_at "
                         "FROM profiles WHERE device = ?1 ORDER BY rowid", &st, err, "list profile") != 0)
        return -1;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    void *arr;
    int rc = shdb_collect(db, st, sizeof **out, read_profile_row, free_profile_row, &arr, n, err, "list profile");
    *out = arr;
    return rc;
}
