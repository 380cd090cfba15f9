/* run_records.c - the runs table: one row per search run with its config,
 * seed, status and resumable state blob. */
#include "runs/runs_internal.h"

#include <stdlib.h>
#include <string.h>

#define RUN_COLS "id, name, status, seed, config_json, created_at, updated_at"

static const char *const RUN_STATUSES[] = {"running", "done", "failed", "stopped"};

void sh_run_rec_free(sh_run_rec *r)
{
    if (!r) return;
    free(r->config_json);
    free(r->state);
    r->config_json = NULL;
    r->state = NULL;
    r->state_len = 0;
}

void sh_run_recs_free(sh_run_rec *r, int n)
{
    if (!r) return;
    for (int i = 0; i < n; i++) sh_run_rec_free(&r[i]);
    free(r);
}

int sh_db_create_run(sh_db *db, const char *name, const char *config_json, uint64_t seed,
                     int64_t *id_out, sh_err *err)
{
    sh_run_rec tmp;
    if (shdb_check_str(name, sizeof tmp.name, true, "run name", err) != 0 ||
        shdb_check_json(config_json, false, "run config", err) != 0)
        return sh_err_prefix(err, "%s: create run", db->path);
    if (sh_db_begin(db, err) != 0) return -1;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "INSERT INTO runs(name, config_json, seed, status) VALUES(?1, ?2, ?3, 'running')",
                     &st, err, "create run") != 0)
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, config_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)seed);
    if (shdb_step_done(db, st, err, "create run") != 0) goto fail;
    if (id_out) *id_out = sqlite3_last_insert_rowid(db->h);
    return sh_db_commit(db, err);
fail:
    sh_db_rollback(db);
    return -1;
}

static int read_run(sqlite3_stmt *st, sh_run_rec *r)
{
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    shdb_col_copy(st, 1, r->name, sizeof r->name);
    shdb_col_copy(st, 2, r->status, sizeof r->status);
    r->seed = (uint64_t)sqlite3_column_int64(st, 3);
    bool oom = false;
    r->config_json = shdb_col_dup(st, 4, &oom);
    shdb_col_copy(st, 5, r->created_at, sizeof r->created_at);
    shdb_col_copy(st, 6, r->updated_at, sizeof r->updated_at);
    return oom ? -1 : 0;
}

static int read_state(sqlite3_stmt *st, int col, sh_run_rec *r)
{
    int len = sqlite3_column_bytes(st, col);
    const void *blob = sqlite3_column_blob(st, col);
    if (!blob || len <= 0) return 0;
    r->state = malloc((size_t)len);
    if (!r->state) return -1;
    memcpy(r->state, blob, (size_t)len);
    r->state_len = len;
    return 0;
}

int sh_db_get_run(sh_db *db, int64_t id, sh_run_rec *out, sh_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT " RUN_COLS ", state_blob FROM runs WHERE id = ?1", &st, err, "get run") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st), ret = -1;
    if (rc == SQLITE_ROW) {
        ret = read_run(st, out) == 0 && read_state(st, 7, out) == 0 ? 0 : -1;
        if (ret != 0) {
            sh_run_rec_free(out);
            sh_err_set(err, "%s: get run %lld: out of memory", db->path, (long long)id);
        }
    } else if (rc == SQLITE_DONE) {
        sh_err_set(err, "%s: no run with id %lld", db->path, (long long)id);
    } else {
        shdb_sql_error(db, err, "get run");
    }
    sqlite3_finalize(st);
    return ret;
}

static int read_run_row(sqlite3_stmt *st, void *r) { return read_run(st, r); }
static void free_run(void *r) { sh_run_rec_free(r); }

int sh_db_list_runs(sh_db *db, sh_run_rec **out, int *n, sh_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT " RUN_COLS " FROM runs ORDER BY id", &st, err, "list runs") != 0)
        return -1;
    void *arr;
    int rc = shdb_collect(db, st, sizeof **out, read_run_row, free_run, &arr, n, err, "list runs");
    *out = arr;
    return rc;
}

int sh_db_find_run_by_name(sh_db *db, const char *name, int64_t *id_out, sh_err *err)
{
    sh_err_clear(err);
    if (!name) return -1;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT id FROM runs WHERE name = ?1 ORDER BY id DESC LIMIT 1", &st, err,
                     "find run") != 0)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), ret = -1;
    if (rc == SQLITE_ROW) {
        *id_out = sqlite3_column_int64(st, 0);
        ret = 0;
    } else if (rc != SQLITE_DONE) {
        shdb_sql_error(db, err, "find run");
    }
    sqlite3_finalize(st);
    return ret;
}

/* One-row UPDATE of a run, in a transaction; error if the run does not exist. */
static int update_run(sh_db *db, sqlite3_stmt *st, int64_t id, const char *what, sh_err *err)
{
    if (sh_db_begin(db, err) != 0) { sqlite3_finalize(st); return -1; }
    if (shdb_step_done(db, st, err, what) != 0) goto fail;
    if (sqlite3_changes(db->h) == 0) {
        sh_err_set(err, "%s: %s: no run with id %lld", db->path, what, (long long)id);
        goto fail;
    }
    return sh_db_commit(db, err);
fail:
    sh_db_rollback(db);
    return -1;
}

int sh_db_set_run_status(sh_db *db, int64_t id, const char *status, sh_err *err)
{
    bool known = false;
    for (size_t i = 0; status && i < sizeof RUN_STATUSES / sizeof RUN_STATUSES[0]; i++)
        known = known || strcmp(status, RUN_STATUSES[i]) == 0;
    if (!known)
        return sh_err_set(err, "%s: run %lld: unknown status '%s' (running|done|failed|stopped)",
                          db->path, (long long)id, status ? status : "(null)");
    sqlite3_stmt *st;
    if (shdb_prepare(db, "UPDATE runs SET status = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%SZ','now')"
                         " WHERE id = ?1", &st, err, "set run status") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_TRANSIENT);
    return update_run(db, st, id, "set run status", err);
}

int sh_db_save_run_state(sh_db *db, int64_t id, const void *state, int len, sh_err *err)
{
    if (len < 0 || (len > 0 && !state))
        return sh_err_set(err, "%s: run %lld: bad state (%d bytes)", db->path, (long long)id, len);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "UPDATE runs SET state_blob = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%SZ','now')"
                         " WHERE id = ?1", &st, err, "save run state") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    if (len > 0) sqlite3_bind_blob(st, 2, state, len, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, 2);
    return update_run(db, st, id, "save run state", err);
}

/* One query per JSON column that belongs to a run; the first damaged value
 * found (json_valid false, or NULL where the schema expects text) wins. */
int sh_db_check_run_json(sh_db *db, int64_t run_id, sh_err *err)
{
    static const struct {
        const char *sql, *what;
    } checks[] = {
        {"SELECT id, '', '' FROM runs WHERE id = ?1 AND NOT json_valid(config_json)",
         "the run's stored config"},
        {"SELECT gen, genome_hash, '' FROM generations WHERE run_id = ?1 AND "
         "(objectives_json IS NULL OR NOT json_valid(objectives_json)) ORDER BY gen, genome_hash LIMIT 1",
         "the stored objectives"},
        {"SELECT id, genome_hash, ifnull(device, '') FROM evaluations WHERE run_id = ?1 AND "
         "result_json IS NOT NULL AND NOT json_valid(result_json) ORDER BY id LIMIT 1",
         "the stored result"},
        {"SELECT id, genome_hash, ifnull(device, '') FROM evaluations WHERE run_id = ?1 AND "
         "NOT json_valid(settings_json) ORDER BY id LIMIT 1",
         "the stored settings"},
    };
    for (size_t c = 0; c < sizeof checks / sizeof checks[0]; c++) {
        sqlite3_stmt *st;
        if (shdb_prepare(db, checks[c].sql, &st, err, "check stored JSON") != 0) return -1;
        sqlite3_bind_int64(st, 1, run_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            long long k = sqlite3_column_int64(st, 0);
            char hash[32], dev[80];
            shdb_col_copy(st, 1, hash, sizeof hash);
            shdb_col_copy(st, 2, dev, sizeof dev);
            sqlite3_finalize(st);
            if (c == 0)
                return sh_err_set(err, "%s: run %lld: %s is not valid JSON; the database is damaged",
                                  db->path, (long long)run_id, checks[c].what);
            if (c == 1)
                return sh_err_set(err, "%s: run %lld, generation %lld, genome %s: %s are not valid JSON; "
                                  "the database is damaged", db->path, (long long)run_id, k, hash,
                                  checks[c].what);
            return sh_err_set(err, "%s: run %lld, evaluation %lld (genome %s%s%s): %s is not valid JSON; "
                              "the database is damaged", db->path, (long long)run_id, k, hash,
                              dev[0] ? ", device " : "", dev, checks[c].what);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) return shdb_sql_error(db, err, "check stored JSON");
    }
    return 0;
}
