/* generations.c - per-generation populations of a search run (rank, crowding,
 * front membership, objectives) and the run's per-generation metrics
 * (hypervolume, evaluations so far, front size). */
#include "runs/runs_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sh_gen_rows_free(sh_gen_row *rows, int n)
{
    if (!rows) return;
    for (int i = 0; i < n; i++) free(rows[i].objectives_json);
    free(rows);
}

static int check_members(sh_db *db, const sh_gen_member *m, int n, sh_err *err)
{
    if (n < 0 || (n > 0 && !m)) return sh_err_set(err, "%s: generation: bad member list (%d)", db->path, n);
    for (int i = 0; i < n; i++) {
        if (shdb_check_json(m[i].objectives_json, false, "generation member objectives", err) != 0) {
            char hex[17];
            sh_hash_hex(m[i].genome, hex);
            return sh_err_prefix(err, "%s: generation member %d (%s)", db->path, i, hex);
        }
    }
    return 0;
}

static int run_delete(sh_db *db, const char *sql, int64_t run_id, int gen, sh_err *err)
{
    sqlite3_stmt *st;
    if (shdb_prepare(db, sql, &st, err, "replace generation") != 0) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, gen);
    return shdb_step_done(db, st, err, "replace generation");
}

static int insert_members(sh_db *db, int64_t run_id, int gen, const sh_gen_member *m, int n, sh_err *err)
{
    sqlite3_stmt *st;
    if (shdb_prepare(db, "INSERT INTO generations(run_id, gen, genome_hash, rank, crowding, on_front, "
                         "objectives_json) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)", &st, err,
                     "store generation") != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        char hex[17];
        sh_hash_hex(m[i].genome, hex);
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_int(st, 2, gen);
        sqlite3_bind_text(st, 3, hex, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 4, m[i].rank);
        if (isnan(m[i].crowding)) sqlite3_bind_null(st, 5);
        else sqlite3_bind_double(st, 5, m[i].crowding);
        sqlite3_bind_int(st, 6, m[i].on_front ? 1 : 0);
        sqlite3_bind_text(st, 7, m[i].objectives_json, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            shdb_sql_error(db, err, "store generation member");
            if (sqlite3_extended_errcode(db->h) == SQLITE_CONSTRAINT_PRIMARYKEY)
                sh_err_prefix(err, "genome %s listed twice in generation %d", hex, gen);
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

static int insert_metric(sh_db *db, int64_t run_id, int gen, double hv, int evaluations,
                         int front_size, sh_err *err)
{
    sqlite3_stmt *st;
    if (shdb_prepare(db, "INSERT INTO run_metrics(run_id, gen, hypervolume, evaluations, front_size) "
                         "VALUES(?1, ?2, ?3, ?4, ?5)", &st, err, "store run metrics") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, gen);
    if (isnan(hv)) sqlite3_bind_null(st, 3);
    else sqlite3_bind_double(st, 3, hv);
    sqlite3_bind_int(st, 4, evaluations);
    sqlite3_bind_int(st, 5, front_size);
    return shdb_step_done(db, st, err, "store run metrics");
}

int sh_db_put_generation(sh_db *db, int64_t run_id, int gen, const sh_gen_member *m, int n,
                         double hypervolume, int evaluations, sh_err *err)
{
    if (gen < 0) return sh_err_set(err, "%s: generation number %d is negative", db->path, gen);
    if (check_members(db, m, n, err) != 0) return -1;
    int front = 0;
    for (int i = 0; i < n; i++) front += m[i].on_front ? 1 : 0;
    if (sh_db_begin(db, err) != 0) return -1;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT 1 FROM runs WHERE id = ?1", &st, err, "find run") != 0) goto fail;
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE) sh_err_set(err, "%s: generation %d: no run with id %lld", db->path, gen, (long long)run_id);
        else shdb_sql_error(db, err, "find run");
        goto fail;
    }
    /* storing a generation again (a resumed run) replaces it */
    if (run_delete(db, "DELETE FROM generations WHERE run_id = ?1 AND gen = ?2", run_id, gen, err) != 0 ||
        run_delete(db, "DELETE FROM run_metrics WHERE run_id = ?1 AND gen = ?2", run_id, gen, err) != 0 ||
        insert_members(db, run_id, gen, m, n, err) != 0 ||
        insert_metric(db, run_id, gen, hypervolume, evaluations, front, err) != 0)
        goto fail;
    return sh_db_commit(db, err);
fail:
    sh_db_rollback(db);
    return -1;
}

int sh_db_latest_generation(sh_db *db, int64_t run_id, int *gen_out, sh_err *err)
{
    sh_err_clear(err);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT max(gen) FROM generations WHERE run_id = ?1", &st, err,
                     "latest generation") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st), ret = -1;
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
            *gen_out = sqlite3_column_int(st, 0);
            ret = 0;
        }
    } else {
        shdb_sql_error(db, err, "latest generation");
    }
    sqlite3_finalize(st);
    return ret;
}

static int read_gen_row(sqlite3_stmt *st, void *elem)
{
    sh_gen_row *r = elem;
    const unsigned char *gh = sqlite3_column_text(st, 0);
    if (!gh || sh_hash_parse((const char *)gh, &r->genome) != 0) r->genome = 0;
    r->gen = sqlite3_column_int(st, 1);
    r->rank = sqlite3_column_int(st, 2);
    r->crowding = shdb_col_real(st, 3);
    r->on_front = sqlite3_column_int(st, 4) != 0;
    bool oom = false;
    r->objectives_json = shdb_col_dup(st, 5, &oom);
    return oom ? -1 : 0;
}

static void free_gen_row(void *elem)
{
    sh_gen_row *r = elem;
    free(r->objectives_json);
    r->objectives_json = NULL;
}

static int read_int(sqlite3_stmt *st, void *elem)
{
    *(int *)elem = sqlite3_column_int(st, 0);
    return 0;
}

static int read_run_metric(sqlite3_stmt *st, void *elem)
{
    sh_run_metric *m = elem;
    m->gen = sqlite3_column_int(st, 0);
    m->hypervolume = shdb_col_real(st, 1);
    m->evaluations = sqlite3_column_int(st, 2);
    m->front_size = sqlite3_column_int(st, 3);
    shdb_col_copy(st, 4, m->created_at, sizeof m->created_at);
    return 0;
}

int sh_db_list_generation(sh_db *db, int64_t run_id, int gen, bool front_only,
                          sh_gen_row **out, int *n, sh_err *err)
{
    *out = NULL;
    *n = 0;
    if (gen < 0) {
        if (sh_db_latest_generation(db, run_id, &gen, err) != 0)
            return (err && err->msg[0]) ? -1 : 0;   /* no generation yet: empty */
    }
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT genome_hash, gen, rank, crowding, on_front, objectives_json "
                         "FROM generations WHERE run_id = ?1 AND gen = ?2 AND (?3 = 0 OR on_front = 1) "
                         "ORDER BY rank, crowding DESC, genome_hash", &st, err, "list generation") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, gen);
    sqlite3_bind_int(st, 3, front_only ? 1 : 0);
    void *arr;
    int rc = shdb_collect(db, st, sizeof **out, read_gen_row, free_gen_row, &arr, n, err, "list generation");
    *out = arr;
    return rc;
}

int sh_db_list_generation_numbers(sh_db *db, int64_t run_id, int **gens, int *n, sh_err *err)
{
    *gens = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT DISTINCT gen FROM generations WHERE run_id = ?1 ORDER BY gen", &st, err,
                     "list generations") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    void *arr;
    int rc = shdb_collect(db, st, sizeof **gens, read_int, NULL, &arr, n, err, "list generations");
    *gens = arr;
    return rc;
}

int sh_db_list_run_metrics(sh_db *db, int64_t run_id, sh_run_metric **out, int *n, sh_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT gen, hypervolume, evaluations, front_size, created_at FROM run_metrics "
                         "WHERE run_id = ?1 ORDER BY gen", &st, err, "list run metrics") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    void *arr;
    int rc = shdb_collect(db, st, sizeof **out, read_run_metric, NULL, &arr, n, err, "list run metrics");
    *out = arr;
    return rc;
}
