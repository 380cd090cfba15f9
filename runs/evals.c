/* evals.c - evaluations (one measurement or scoring job of a genome) and
 * their raw samples.  Lifecycle: pending -> running -> ok | failed; an ok
 * result and all of its samples are committed together or not at all. */
#include "runs/runs_internal.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVAL_COLS "id, ifnull(run_id, 0), genome_hash, ifnull(device, ''), kind, status, attempts, " \
                  "settings_json, result_json, error, started_at, finished_at, stability, stability_reason"

void sh_eval_rec_free(sh_eval_rec *e)
{
    if (!e) return;
    free(e->settings_json);
    free(e->result_json);
    free(e->error);
    free(e->stability_reason);
    e->settings_json = e->result_json = e->error = e->stability_reason = NULL;
}

void sh_eval_recs_free(sh_eval_rec *e, int n)
{
    if (!e) return;
    for (int i = 0; i < n; i++) sh_eval_rec_free(&e[i]);
    free(e);
}

static void settings_key(const char *canon, char hex[17])
{
    sh_hash_hex(shdb_fnv1a64(canon, strlen(canon)), hex);
}

/* Looks the evaluation up by its key: 0 found, 1 absent, -1 error. */
static int find_eval(sh_db *db, int64_t run_id, const char *ghex, const char *device,
                     const char *kind, const char *shex, int64_t *id, char *status, sh_err *err)
{
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT id, status FROM evaluations WHERE ifnull(run_id, 0) = ?1 AND "
                         "genome_hash = ?2 AND ifnull(device, '') = ?3 AND kind = ?4 AND "
                         "settings_hash = ?5", &st, err, "find evaluation") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, ghex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, device, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, shex, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), ret = 1;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        if (status) shdb_col_copy(st, 1, status, 16);
        ret = 0;
    } else if (rc != SQLITE_DONE) {
        ret = shdb_sql_error(db, err, "find evaluation");
    }
    sqlite3_finalize(st);
    return ret;
}

/* 0 if run `id` exists, -1 with a message otherwise. */
static int check_run_exists(sh_db *db, int64_t id, sh_err *err)
{
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT 1 FROM runs WHERE id = ?1", &st, err, "find run") != 0) return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc == SQLITE_DONE) return sh_err_set(err, "%s: evaluation: no run with id %lld", db->path, (long long)id);
    return shdb_sql_error(db, err, "find run");
}

static int insert_eval(sh_db *db, int64_t run_id, const char *ghex, const char *device,
                       const char *kind, const char *canon, const char *shex, sh_err *err)
{
    sqlite3_stmt *st;
    if (shdb_prepare(db, "INSERT OR IGNORE INTO evaluations(run_id, genome_hash, device, kind, "
                         "settings_json, settings_hash) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                     &st, err, "create evaluation") != 0)
        return -1;
    if (run_id > 0) sqlite3_bind_int64(st, 1, run_id);
    else sqlite3_bind_null(st, 1);
    sqlite3_bind_text(st, 2, ghex, -1, SQLITE_STATIC);
    shdb_bind_text(st, 3, device, true);
    sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, canon, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, shex, -1, SQLITE_STATIC);
    return shdb_step_done(db, st, err, "create evaluation");
}

int sh_db_eval_get_or_create(sh_db *db, int64_t run_id, sh_hash genome, const char *device,
                             const char *kind, const char *settings_json,
                             int64_t *id_out, char *status_out, sh_err *err)
{
    sh_eval_rec tmp;
    if (!device) device = "";
    if (shdb_check_str(device, sizeof tmp.device, false, "evaluation device", err) != 0 ||
        shdb_check_str(kind, sizeof tmp.kind, true, "evaluation kind", err) != 0)
        return sh_err_prefix(err, "%s", db->path);
    if (run_id < 0) return sh_err_set(err, "%s: evaluation: bad run id %lld", db->path, (long long)run_id);
    char *canon = shdb_canon_json(settings_json ? settings_json : "{}", "evaluation settings", err);
    if (!canon) return sh_err_prefix(err, "%s", db->path);
    char ghex[17], shex[17];
    sh_hash_hex(genome, ghex);
    settings_key(canon, shex);

    int64_t id = 0;
    char status[16] = "";
    if (sh_db_begin(db, err) != 0) { free(canon); return -1; }
    /* INSERT OR IGNORE then SELECT, under the write lock: two workers asking
     * for the same evaluation at once get the same row */
    if (run_id > 0 && check_run_exists(db, run_id, err) != 0) goto fail;
    if (insert_eval(db, run_id, ghex, device, kind, canon, shex, err) != 0) goto fail;
    int found = find_eval(db, run_id, ghex, device, kind, shex, &id, status, err);
    if (found < 0) goto fail;
    if (found > 0) {
        sh_err_set(err, "%s: evaluation of %s was neither created nor found", db->path, ghex);
        goto fail;
    }
    free(canon);
    if (sh_db_commit(db, err) != 0) return -1;
    *id_out = id;
    if (status_out) memcpy(status_out, status, sizeof status);
    return 0;
fail:
    free(canon);
    sh_db_rollback(db);
    return -1;
}

/* Current status of an evaluation into status[16]; -1 if absent/error. */
static int eval_status(sh_db *db, int64_t id, char *status, sh_err *err)
{
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT status FROM evaluations WHERE id = ?1", &st, err, "read evaluation") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st), ret = -1;
    if (rc == SQLITE_ROW) { shdb_col_copy(st, 0, status, 16); ret = 0; }
    else if (rc == SQLITE_DONE) sh_err_set(err, "%s: no evaluation with id %lld", db->path, (long long)id);
    else shdb_sql_error(db, err, "read evaluation");
    sqlite3_finalize(st);
    return ret;
}

/* Begins a transaction and checks that evaluation `id` exists and is not ok. */
static int begin_not_ok(sh_db *db, int64_t id, const char *what, sh_err *err)
{
    if (sh_db_begin(db, err) != 0) return -1;
    char status[16];
    if (eval_status(db, id, status, err) != 0) goto fail;
    if (strcmp(status, "ok") == 0) {
        sh_err_set(err, "%s: %s: evaluation %lld is already ok (reset it first to redo it)", db->path,
                   what, (long long)id);
        goto fail;
    }
    return 0;
fail:
    sh_db_rollback(db);
    return -1;
}

/* Steps an UPDATE inside the current transaction, committing on success. */
static int step_commit(sh_db *db, sqlite3_stmt *st, const char *what, sh_err *err)
{
    if (shdb_step_done(db, st, err, what) != 0) {
        sh_db_rollback(db);
        return -1;
    }
    return sh_db_commit(db, err);
}

int sh_db_eval_mark_running(sh_db *db, int64_t id, sh_err *err)
{
    if (begin_not_ok(db, id, "mark running", err) != 0) return -1;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "UPDATE evaluations SET status = 'running', attempts = attempts + 1, "
                         "started_at = ?2, finished_at = NULL WHERE id = ?1", &st, err,
                     "mark evaluation running") != 0) {
        sh_db_rollback(db);
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_double(st, 2, shdb_now());
    return step_commit(db, st, "mark evaluation running", err);
}

static int check_samples(sh_db *db, int64_t id, const sh_sample *s, int n, sh_err *err)
{
    if (n < 0 || (n > 0 && !s))
        return sh_err_set(err, "%s: evaluation %lld: bad sample list (%d)", db->path, (long long)id, n);
    for (int i = 0; i < n; i++) {
        if (!s[i].metric || !*s[i].metric || strlen(s[i].metric) > 64)
            return sh_err_set(err, "%s: evaluation %lld: sample %d has no (or too long a) metric name",
                              db->path, (long long)id, i);
        if (!isfinite(s[i].value))
            return sh_err_set(err, "%s: evaluation %lld: sample %d (%s[%d]) is not a finite number",
                              db->path, (long long)id, i, s[i].metric, s[i].idx);
    }
    return 0;
}

static int insert_samples(sh_db *db, int64_t id, const sh_sample *s, int n, sh_err *err)
{
    sqlite3_stmt *st;
    if (shdb_prepare(db, "DELETE FROM samples WHERE eval_id = ?1", &st, err, "clear samples") != 0) return -1;
    sqlite3_bind_int64(st, 1, id);
    if (shdb_step_done(db, st, err, "clear samples") != 0) return -1;
    if (shdb_prepare(db, "INSERT INTO samples(eval_id, metric, idx, value) VALUES(?1, ?2, ?3, ?4)",
                     &st, err, "store samples") != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, s[i].metric, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, s[i].idx);
        sqlite3_bind_double(st, 4, s[i].value);
        if (sqlite3_step(st) != SQLITE_DONE) {
            char what[128];
            snprintf(what, sizeof what, "store sample %d (%.64s[%d])", i, s[i].metric, s[i].idx);
            shdb_sql_error(db, err, what);
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

int sh_db_eval_finish_ok(sh_db *db, int64_t id, const char *result_json,
                         const sh_sample *samples, int n_samples, sh_err *err)
{
    if (shdb_check_json(result_json, false, "evaluation result", err) != 0)
        return sh_err_prefix(err, "%s: evaluation %lld", db->path, (long long)id);
    if (check_samples(db, id, samples, n_samples, err) != 0) return -1;
    if (begin_not_ok(db, id, "finish", err) != 0) return -1;
    if (insert_samples(db, id, samples, n_samples, err) != 0) { sh_db_rollback(db); return -1; }
    sqlite3_stmt *st;
    if (shdb_prepare(db, "UPDATE evaluations SET status = 'ok', result_json = ?2, error = NULL, "
                         "finished_at = ?3 WHERE id = ?1", &st, err, "store evaluation result") != 0) {
        sh_db_rollback(db);
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, result_json, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, shdb_now());
    return step_commit(db, st, "store evaluation result", err);
}

static int read_eval(sqlite3_stmt *st, sh_eval_rec *e);

int sh_db_eval_finish_measured(sh_db *db, int64_t id, const char *result_json,
                               const sh_sample *samples, int n_samples, const char *stability,
                               const char *reason, bool replace, sh_err *err)
{
    static const char *const KNOWN[] = {"", "quiet", "disturbed", "unstable"};
    bool known = false;
    for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0]; i++) known = known || (stability && !strcmp(stability, KNOWN[i]));
    if (!known)
        return sh_err_set(err, "%s: evaluation %lld: unknown stability '%.32s' (quiet|disturbed|unstable)", db->path,
                          (long long)id, stability ? stability : "(null)");
    if (shdb_check_json(result_json, false, "evaluation result", err) != 0)
        return sh_err_prefix(err, "%s: evaluation %lld", db->path, (long long)id);
    if (check_samples(db, id, samples, n_samples, err) != 0) return -1;
    if (replace) {
        char status[16];
        if (sh_db_begin(db, err) != 0) return -1;
        if (eval_status(db, id, status, err) != 0) { sh_db_rollback(db); return -1; }
    } else if (begin_not_ok(db, id, "finish", err) != 0) {
        return -1;
    }
    if (insert_samples(db, id, samples, n_samples, err) != 0) { sh_db_rollback(db); return -1; }
    sqlite3_stmt *st;
    if (shdb_prepare(db, "UPDATE evaluations SET status = 'ok', result_json = ?2, error = NULL, "
                         "finished_at = ?3, stability = ?4, stability_reason = ?5 WHERE id = ?1", &st, err,
                     "store evaluation result") != 0) {
        sh_db_rollback(db);
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, result_json, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, shdb_now());
    sqlite3_bind_text(st, 4, stability, -1, SQLITE_STATIC);
    if (reason && *reason) sqlite3_bind_text(st, 5, reason, (int)strnlen(reason, 16384), SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, 5);
    return step_commit(db, st, "store evaluation result", err);
}

int sh_db_latest_eval(sh_db *db, int64_t run_id, const char *device, const char *kind, bool trusted_only,
                      sh_eval_rec *out, sh_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT " EVAL_COLS " FROM evaluations WHERE ifnull(run_id, 0) = ?1 AND "
                         "ifnull(device, '') = ?2 AND kind = ?3 AND status = 'ok' AND "
                         "(?4 = 0 OR stability <> 'unstable') ORDER BY finished_at DESC, id DESC LIMIT 1",
                     &st, err, "latest evaluation") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, device ? device : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, kind ? kind : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, trusted_only);
    int rc = sqlite3_step(st), ret;
    if (rc == SQLITE_ROW) {
        ret = read_eval(st, out);
        if (ret != 0) sh_err_set(err, "%s: latest evaluation: out of memory", db->path);
    } else if (rc == SQLITE_DONE) {
        ret = 1;
    } else {
        ret = shdb_sql_error(db, err, "latest evaluation");
    }
    sqlite3_finalize(st);
    return ret;
}

int sh_db_latest_trusted_at_most(sh_db *db, int64_t run_id, const char *device, const char *kind, double max_ms,
                                 double *finished_at, sh_err *err)
{
    *finished_at = 0;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT finished_at FROM evaluations WHERE ifnull(run_id, 0) = ?1 AND "
                         "ifnull(device, '') = ?2 AND kind = ?3 AND status = 'ok' AND stability <> 'unstable' AND "
                         "finished_at IS NOT NULL AND json_valid(result_json) AND "
                         "json_extract(result_json, '$.decode_ms') <= ?4 ORDER BY finished_at DESC, id DESC LIMIT 1",
                     &st, err, "latest trusted evaluation") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, device ? device : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, kind ? kind : "", -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, max_ms);
    int rc = sqlite3_step(st), ret;
    if (rc == SQLITE_ROW) {
        *finished_at = sqlite3_column_double(st, 0);
        ret = 0;
    } else {
        ret = rc == SQLITE_DONE ? 1 : shdb_sql_error(db, err, "latest trusted evaluation");
    }
    sqlite3_finalize(st);
    return ret;
}

int sh_db_mark_unstable(sh_db *db, int64_t run_id, const char *device, const char *kind, double after,
                        double before, const char *reason, int64_t *ids, int cap, int *n_marked, sh_err *err)
{
    *n_marked = 0;
    assert(reason && *reason);
    sqlite3_stmt *st;
    /* the reason appended to the row's own (column and JSON alike) */
    if (shdb_prepare(db, "UPDATE evaluations SET stability = 'unstable', "
                         "stability_reason = CASE WHEN ifnull(stability_reason, '') = '' THEN ?6 "
                         "ELSE stability_reason || '; ' || ?6 END, "
                         "result_json = CASE WHEN json_valid(result_json) THEN json_set(result_json, "
                         "'$.stability', 'unstable', '$.stability_reason', "
                         "CASE WHEN ifnull(stability_reason, '') = '' THEN ?6 ELSE stability_reason || '; ' || ?6 END) "
                         "ELSE result_json END "
                         "WHERE ifnull(run_id, 0) = ?1 AND ifnull(device, '') = ?2 AND kind = ?3 AND status = 'ok' "
                         "AND stability <> 'unstable' AND finished_at > ?4 AND finished_at <= ?5 RETURNING id",
                     &st, err, "mark evaluations unstable") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, device ? device : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, kind ? kind : "", -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, after);
    sqlite3_bind_double(st, 5, before);
    sqlite3_bind_text(st, 6, reason, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n_marked < cap) ids[*n_marked] = sqlite3_column_int64(st, 0);
        (*n_marked)++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : shdb_sql_error(db, err, "mark evaluations unstable");
}

int sh_db_count_ok_evals(sh_db *db, int64_t run_id, const char *device, const char *kind, int *count,
                         sh_err *err)
{
    *count = 0;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT count(*) FROM evaluations WHERE ifnull(run_id, 0) = ?1 AND "
                         "ifnull(device, '') = ?2 AND kind = ?3 AND status = 'ok'", &st, err,
                     "count evaluations") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, device ? device : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, kind ? kind : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *count = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : shdb_sql_error(db, err, "count evaluations");
}

int sh_db_eval_finish_failed(sh_db *db, int64_t id, const char *error_text, sh_err *err)
{
    if (begin_not_ok(db, id, "record failure", err) != 0) return -1;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "UPDATE evaluations SET status = 'failed', error = ?2, result_json = NULL, "
                         "stability = '', stability_reason = NULL, "
                         "finished_at = ?3 WHERE id = ?1", &st, err, "record evaluation failure") != 0) {
        sh_db_rollback(db);
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    /* error texts come from devices: keep them bounded */
    const char *e = error_text && *error_text ? error_text : "unknown error";
    size_t len = strnlen(e, 16384);
    sqlite3_bind_text(st, 2, e, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 3, shdb_now());
    return step_commit(db, st, "record evaluation failure", err);
}

int sh_db_eval_reset(sh_db *db, int64_t id, sh_err *err)
{
    if (sh_db_begin(db, err) != 0) return -1;
    char status[16];
    sqlite3_stmt *st;
    if (eval_status(db, id, status, err) != 0 ||
        shdb_prepare(db, "DELETE FROM samples WHERE eval_id = ?1", &st, err, "reset evaluation") != 0)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    if (shdb_step_done(db, st, err, "reset evaluation") != 0) goto fail;
    if (shdb_prepare(db, "UPDATE evaluations SET status = 'pending', result_json = NULL, error = NULL, "
                         "stability = '', stability_reason = NULL, "
                         "started_at = NULL, finished_at = NULL WHERE id = ?1", &st, err,
                     "reset evaluation") != 0)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    return step_commit(db, st, "reset evaluation", err);
fail:
    sh_db_rollback(db);
    return -1;
}

static int read_eval(sqlite3_stmt *st, sh_eval_rec *e)
{
    memset(e, 0, sizeof *e);
    e->id = sqlite3_column_int64(st, 0);
    e->run_id = sqlite3_column_int64(st, 1);
    const unsigned char *gh = sqlite3_column_text(st, 2);
    if (!gh || sh_hash_parse((const char *)gh, &e->genome) != 0) e->genome = 0;
    shdb_col_copy(st, 3, e->device, sizeof e->device);
    shdb_col_copy(st, 4, e->kind, sizeof e->kind);
    shdb_col_copy(st, 5, e->status, sizeof e->status);
    e->attempts = sqlite3_column_int(st, 6);
    bool oom = false;
    e->settings_json = shdb_col_dup(st, 7, &oom);
    e->result_json = shdb_col_dup(st, 8, &oom);
    e->error = shdb_col_dup(st, 9, &oom);
    e->started_at = shdb_col_real(st, 10);
    e->finished_at = shdb_col_real(st, 11);
    shdb_col_copy(st, 12, e->stability, sizeof e->stability);
    e->stability_reason = shdb_col_dup(st, 13, &oom);
    if (isnan(e->started_at)) e->started_at = 0;
    if (isnan(e->finished_at)) e->finished_at = 0;
    if (oom) { sh_eval_rec_free(e); return -1; }
    return 0;
}

static int read_eval_row(sqlite3_stmt *st, void *e) { return read_eval(st, e); }
static void free_eval(void *e) { sh_eval_rec_free(e); }

int sh_db_get_eval(sh_db *db, int64_t id, sh_eval_rec *out, sh_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT " EVAL_COLS " FROM evaluations WHERE id = ?1", &st, err, "get evaluation") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st), ret = -1;
    if (rc == SQLITE_ROW) {
        ret = read_eval(st, out);
        if (ret != 0) sh_err_set(err, "%s: get evaluation %lld: out of memory", db->path, (long long)id);
    } else if (rc == SQLITE_DONE) {
        sh_err_set(err, "%s: no evaluation with id %lld", db->path, (long long)id);
    } else {
        shdb_sql_error(db, err, "get evaluation");
    }
    sqlite3_finalize(st);
    return ret;
}

#define MEASURE_KINDS "kind IN ('measure', 'bench')"

/* Lists the rows of a prepared "SELECT EVAL_COLS ..." statement. */
static int list_eval_rows(sh_db *db, sqlite3_stmt *st, sh_eval_rec **out, int *n, sh_err *err, const char *what)
{
    void *arr;
    int rc = shdb_collect(db, st, sizeof **out, read_eval_row, free_eval, &arr, n, err, what);
    *out = arr;
    return rc;
}

int sh_db_list_evals(sh_db *db, int64_t run_id, sh_eval_rec **out, int *n, sh_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT " EVAL_COLS " FROM evaluations WHERE ?1 = 0 OR run_id = ?1 ORDER BY id",
                     &st, err, "list evaluations") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    return list_eval_rows(db, st, out, n, err, "list evaluations");
}

static int read_sample(sqlite3_stmt *st, void *v)
{
    *(double *)v = sqlite3_column_double(st, 0);
    return 0;
}

int sh_db_list_run_measurements(sh_db *db, int64_t run_id, sh_eval_rec **out, int *n, sh_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT " EVAL_COLS " FROM evaluations WHERE run_id = ?1 AND " MEASURE_KINDS
                         " AND status = 'ok' ORDER BY ifnull(finished_at, 0), id",
                     &st, err, "list measurements") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    return list_eval_rows(db, st, out, n, err, "list measurements");
}

int sh_db_list_ok_results(sh_db *db, int64_t run_id, const char *kind, sh_eval_rec **out, int *n, sh_err *err)
{
    *out = NULL;
    *n = 0;
    if (!kind) return sh_err_set(err, "%s: list results: no kind", db->path);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT " EVAL_COLS " FROM evaluations WHERE run_id = ?1 AND kind = ?2 AND "
                         "status = 'ok' AND result_json IS NOT NULL ORDER BY id", &st, err, "list results") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    return list_eval_rows(db, st, out, n, err, "list results");
}

int sh_db_latest_measurement(sh_db *db, sh_hash genome, const char *device, sh_eval_rec *out, sh_err *err)
{
    memset(out, 0, sizeof *out);
    char ghex[17];
    sh_hash_hex(genome, ghex);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT " EVAL_COLS " FROM evaluations WHERE genome_hash = ?1 AND "
                         "ifnull(device, '') = ?2 AND " MEASURE_KINDS " AND status = 'ok' AND "
                         "result_json IS NOT NULL ORDER BY ifnull(finished_at, 0) DESC, id DESC LIMIT 1",
                     &st, err, "latest measurement") != 0)
        return -1;
    sqlite3_bind_text(st, 1, ghex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, device ? device : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), ret = 1;
    if (rc == SQLITE_ROW) {
        ret = read_eval(st, out);
        if (ret != 0) sh_err_set(err, "%s: latest measurement: out of memory", db->path);
    } else if (rc != SQLITE_DONE) {
        ret = shdb_sql_error(db, err, "latest measurement");
    }
    sqlite3_finalize(st);
    return ret;
}

int sh_db_get_samples(sh_db *db, int64_t eval_id, const char *metric, double **values, int *n, sh_err *err)
{
    *values = NULL;
    *n = 0;
    if (!metric) return sh_err_set(err, "%s: get samples: no metric", db->path);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT value FROM samples WHERE eval_id = ?1 AND metric = ?2 ORDER BY idx",
                     &st, err, "get samples") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, eval_id);
    sqlite3_bind_text(st, 2, metric, -1, SQLITE_STATIC);
    void *arr;
    int rc = shdb_collect(db, st, sizeof **values, read_sample, NULL, &arr, n, err, "get samples");
    *values = arr;
    return rc;
}

int sh_db_count_evals(sh_db *db, int64_t run_id, sh_eval_counts *out, sh_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT status, count(*) FROM evaluations WHERE ?1 = 0 OR run_id = ?1 "
                         "GROUP BY status", &st, err, "count evaluations") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        int c = sqlite3_column_int(st, 1);
        out->total += c;
        if (!s) continue;
        if (!strcmp(s, "pending")) out->pending = c;
        else if (!strcmp(s, "running")) out->running = c;
        else if (!strcmp(s, "ok")) out->ok = c;
        else if (!strcmp(s, "failed")) out->failed = c;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return shdb_sql_error(db, err, "count evaluations");
    return 0;
}
