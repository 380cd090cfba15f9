/* jobs.c - batch-job attempts of capability scores run by a cluster executor
 * (score_jobs table, schema 2): what was submitted, under which scheduler job
 * id, what the scheduler said, and how each attempt ended.  The coordinator
 * writes a row before it submits, so a crash between the two is found again
 * on resume (by the row id in the job name). */
#include "runs/runs_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOB_COLS "id, ifnull(run_id, 0), genome_hash, scorer, version, executor, attempt, job_id, state, " \
                 "cluster_state, ifnull(exit_code, -1), reason, spec_path, result_path, submitted_at, " \
                 "started_at, finished_at"

static const char *const JOB_STATES[] = {"submitting", "queued", "ok", "retry", "failed", "cancelled"};

void sh_job_recs_free(sh_job_rec *j, int n)
{
    if (!j) return;
    for (int i = 0; i < n; i++) free(j[i].reason);
    free(j);
}

static bool known_state(const char *s)
{
    for (size_t i = 0; i < sizeof JOB_STATES / sizeof JOB_STATES[0]; i++)
        if (!strcmp(s, JOB_STATES[i])) return true;
    return false;
}

static int read_job(sqlite3_stmt *st, sh_job_rec *j)
{
    memset(j, 0, sizeof *j);
    j->id = sqlite3_column_int64(st, 0);
    j->run_id = sqlite3_column_int64(st, 1);
    const unsigned char *gh = sqlite3_column_text(st, 2);
    if (!gh || sh_hash_parse((const char *)gh, &j->genome) != 0) j->genome = 0;
    shdb_col_copy(st, 3, j->scorer, sizeof j->scorer);
    shdb_col_copy(st, 4, j->version, sizeof j->version);
    shdb_col_copy(st, 5, j->executor, sizeof j->executor);
    j->attempt = sqlite3_column_int(st, 6);
    shdb_col_copy(st, 7, j->job_id, sizeof j->job_id);
    shdb_col_copy(st, 8, j->state, sizeof j->state);
    shdb_col_copy(st, 9, j->cluster_state, sizeof j->cluster_state);
    j->exit_code = sqlite3_column_int(st, 10);
    bool oom = false;
    j->reason = shdb_col_dup(st, 11, &oom);
    shdb_col_copy(st, 12, j->spec_path, sizeof j->spec_path);
    shdb_col_copy(st, 13, j->result_path, sizeof j->result_path);
    j->submitted_at = shdb_col_real(st, 14);
    j->started_at = shdb_col_real(st, 15);
    j->finished_at = shdb_col_real(st, 16);
    return oom ? -1 : 0;
}

/* Canonical params text -> its hash (as scores.c keys them). */
static int params_hex(const char *params_json, char hex[17], sh_err *err)
{
    char *canon = shdb_canon_json(params_json ? params_json : "{}", "score job params", err);
    if (!canon) return -1;
    sh_hash_hex(shdb_fnv1a64(canon, strlen(canon)), hex);
    free(canon);
    return 0;
}

int sh_db_job_add(sh_db *db, const sh_job_rec *j, const char *params_json, int64_t *id_out, sh_err *err)
{
    if (shdb_check_str(j->scorer, sizeof j->scorer, true, "score job: scorer", err) ||
        shdb_check_str(j->version, sizeof j->version, true, "score job: version", err) ||
        shdb_check_str(j->executor, sizeof j->executor, true, "score job: executor", err) ||
        shdb_check_str(j->spec_path, sizeof j->spec_path, true, "score job: spec path", err) ||
        shdb_check_str(j->result_path, sizeof j->result_path, true, "score job: result path", err))
        return sh_err_prefix(err, "%s", db->path);
    if (strcmp(j->state, "submitting") && strcmp(j->state, "queued"))
        return sh_err_set(err, "%s: score job: a new attempt is submitting or queued, not '%.16s'", db->path, j->state);
    if (j->attempt < 1) return sh_err_set(err, "%s: score job: attempt %d < 1", db->path, j->attempt);
    char phex[17], ghex[17];
    if (params_hex(params_json, phex, err)) return sh_err_prefix(err, "%s: add score job", db->path);
    sh_hash_hex(j->genome, ghex);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "INSERT INTO score_jobs(run_id, genome_hash, scorer, version, params_hash, executor, "
                         "attempt, job_id, state, spec_path, result_path, submitted_at) "
                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                     &st, err, "add score job") != 0)
        return -1;
    if (j->run_id > 0) sqlite3_bind_int64(st, 1, j->run_id);
    else sqlite3_bind_null(st, 1);
    sqlite3_bind_text(st, 2, ghex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, j->scorer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, j->version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, phex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, j->executor, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, j->attempt);
    sqlite3_bind_text(st, 8, j->job_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, j->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, j->spec_path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, j->result_path, -1, SQLITE_STATIC);
    if (!strcmp(j->state, "queued")) sqlite3_bind_double(st, 12, shdb_now());
    else sqlite3_bind_null(st, 12);
    if (shdb_step_done(db, st, err, "add score job") != 0) return -1;
    if (id_out) *id_out = sqlite3_last_insert_rowid(db->h);
    return 0;
}

/* Runs an UPDATE that must touch exactly one row. */
static int update_one(sh_db *db, sqlite3_stmt *st, int64_t id, const char *what, sh_err *err)
{
    if (shdb_step_done(db, st, err, what) != 0) return -1;
    if (sqlite3_changes(db->h) != 1)
        return sh_err_set(err, "%s: %s: no score job %lld in a state that allows it", db->path, what, (long long)id);
    return 0;
}

int sh_db_job_set_submitted(sh_db *db, int64_t id, const char *job_id, sh_err *err)
{
    if (!job_id || !*job_id || strlen(job_id) >= sizeof ((sh_job_rec *)0)->job_id)
        return sh_err_set(err, "%s: score job %lld: bad job id", db->path, (long long)id);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "UPDATE score_jobs SET state = 'queued', job_id = ?2, submitted_at = ?3 "
                         "WHERE id = ?1 AND state IN ('submitting', 'queued')", &st, err, "set job submitted") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, job_id, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, shdb_now());
    return update_one(db, st, id, "set job submitted", err);
}

int sh_db_job_observe(sh_db *db, int64_t id, const char *cluster_state, double started_at, sh_err *err)
{
    if (shdb_check_str(cluster_state, sizeof ((sh_job_rec *)0)->cluster_state, false, "score job: cluster state", err))
        return sh_err_prefix(err, "%s", db->path);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "UPDATE score_jobs SET cluster_state = ?2, started_at = ifnull(?3, started_at) "
                         "WHERE id = ?1 AND state = 'queued'", &st, err, "observe job") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, cluster_state, -1, SQLITE_STATIC);
    if (isnan(started_at)) sqlite3_bind_null(st, 3);
    else sqlite3_bind_double(st, 3, started_at);
    return update_one(db, st, id, "observe job", err);
}

int sh_db_job_finish(sh_db *db, int64_t id, const char *state, const char *cluster_state, int exit_code,
                     const char *reason, sh_err *err)
{
    if (!state || !known_state(state) || !strcmp(state, "submitting") || !strcmp(state, "queued"))
        return sh_err_set(err, "%s: score job %lld: final state must be ok, retry, failed or cancelled",
                          db->path, (long long)id);
    if (shdb_check_str(cluster_state ? cluster_state : "", sizeof ((sh_job_rec *)0)->cluster_state, false,
                       "score job: cluster state", err))
        return sh_err_prefix(err, "%s", db->path);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "UPDATE score_jobs SET state = ?2, cluster_state = ?3, exit_code = ?4, reason = ?5, "
                         "finished_at = ?6 WHERE id = ?1 AND state IN ('submitting', 'queued')",
                     &st, err, "finish job") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, cluster_state ? cluster_state : "", -1, SQLITE_STATIC);
    if (exit_code >= 0) sqlite3_bind_int(st, 4, exit_code);
    else sqlite3_bind_null(st, 4);
    if (reason) sqlite3_bind_text(st, 5, reason, (int)strnlen(reason, 16384), SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, 5);
    sqlite3_bind_double(st, 6, shdb_now());
    return update_one(db, st, id, "finish job", err);
}

static int read_job_row(sqlite3_stmt *st, void *j) { return read_job(st, j); }

static void free_job(void *elem)
{
    sh_job_rec *j = elem;
    free(j->reason);
    j->reason = NULL;
}

static int list_jobs(sh_db *db, sqlite3_stmt *st, sh_job_rec **out, int *n, sh_err *err)
{
    void *arr;
    int rc = shdb_collect(db, st, sizeof **out, read_job_row, free_job, &arr, n, err, "list score jobs");
    *out = arr;
    return rc;
}

int sh_db_job_list_key(sh_db *db, sh_hash genome, const char *scorer, const char *version,
                       const char *params_json, sh_job_rec **out, int *n, sh_err *err)
{
    *out = NULL;
    *n = 0;
    char phex[17], ghex[17];
    if (params_hex(params_json, phex, err)) return sh_err_prefix(err, "%s: list score jobs", db->path);
    sh_hash_hex(genome, ghex);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT " JOB_COLS " FROM score_jobs WHERE genome_hash = ?1 AND scorer = ?2 AND "
                         "version = ?3 AND params_hash = ?4 ORDER BY id", &st, err, "list score jobs") != 0)
        return -1;
    sqlite3_bind_text(st, 1, ghex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, scorer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, phex, -1, SQLITE_STATIC);
    return list_jobs(db, st, out, n, err);
}

int sh_db_job_list(sh_db *db, int64_t run_id, sh_job_rec **out, int *n, sh_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT " JOB_COLS " FROM score_jobs WHERE ?1 = 0 OR run_id = ?1 ORDER BY id",
                     &st, err, "list score jobs") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    return list_jobs(db, st, out, n, err);
}
