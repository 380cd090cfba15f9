/* scores.c - capability scores, one row per (genome, scorer, version, params).
 * Params JSON is canonicalised (keys sorted, compact) before it is stored and
 * hashed, so the same question asked with keys in another order finds the
 * same row and is never computed twice. */
#include "runs/runs_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SCORE_COLS "id, genome_hash, scorer, version, status, params_json, scores_json, aggregate, " \
                   "error, seconds"

void sh_score_rec_free(sh_score_rec *s)
{
    if (!s) return;
    free(s->params_json);
    free(s->scores_json);
    free(s->error);
    s->params_json = s->scores_json = s->error = NULL;
}

void sh_score_recs_free(sh_score_rec *s, int n)
{
    if (!s) return;
    for (int i = 0; i < n; i++) sh_score_rec_free(&s[i]);
    free(s);
}

static int read_score(sqlite3_stmt *st, sh_score_rec *s)
{
    memset(s, 0, sizeof *s);
    s->id = sqlite3_column_int64(st, 0);
    const unsigned char *gh = sqlite3_column_text(st, 1);
    if (!gh || sh_hash_parse((const char *)gh, &s->genome) != 0) s->genome = 0;
    shdb_col_copy(st, 2, s->scorer, sizeof s->scorer);
    shdb_col_copy(st, 3, s->version, sizeof s->version);
    shdb_col_copy(st, 4, s->status, sizeof s->status);
    bool oom = false;
    s->params_json = shdb_col_dup(st, 5, &oom);
    s->scores_json = shdb_col_dup(st, 6, &oom);
    s->aggregate = shdb_col_real(st, 7);
    s->error = shdb_col_dup(st, 8, &oom);
    s->seconds = shdb_col_real(st, 9);
    if (isnan(s->seconds)) s->seconds = 0;
    if (oom) { sh_score_rec_free(s); return -1; }
    return 0;
}

/* Canonical params text and its hash key. */
static char *params_key(const char *params_json, char hex[17], sh_err *err)
{
    char *canon = shdb_canon_json(params_json ? params_json : "{}", "score params", err);
    if (canon) sh_hash_hex(shdb_fnv1a64(canon, strlen(canon)), hex);
    return canon;
}

int sh_db_find_score(sh_db *db, sh_hash genome, const char *scorer, const char *version,
                     const char *params_json, sh_score_rec *out, sh_err *err)
{
    memset(out, 0, sizeof *out);
    if (!scorer || !version) return sh_err_set(err, "%s: find score: scorer and version needed", db->path);
    char phex[17], ghex[17];
    char *canon = params_key(params_json, phex, err);
    if (!canon) return sh_err_prefix(err, "%s: find score", db->path);
    free(canon);
    sh_hash_hex(genome, ghex);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT " SCORE_COLS " FROM scores WHERE genome_hash = ?1 AND scorer = ?2 "
                         "AND version = ?3 AND params_hash = ?4", &st, err, "find score") != 0)
        return -1;
    sqlite3_bind_text(st, 1, ghex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, scorer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, phex, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), ret = -1;
    if (rc == SQLITE_ROW) {
        ret = read_score(st, out);
        if (ret != 0) sh_err_set(err, "%s: find score: out of memory", db->path);
    } else if (rc == SQLITE_DONE) {
        sh_err_clear(err);   /* absent: not an error */
    } else {
        shdb_sql_error(db, err, "find score");
    }
    sqlite3_finalize(st);
    return ret;
}

static int validate_score(const sh_score_rec *s, sh_err *err)
{
    if (shdb_check_str(s->scorer, sizeof s->scorer, true, "score: scorer", err) ||
        shdb_check_str(s->version, sizeof s->version, true, "score: version", err))
        return -1;
    if (strcmp(s->status, "ok") != 0 && strcmp(s->status, "failed") != 0)
        return sh_err_set(err, "score: status must be ok or failed, not '%.16s'", s->status);
    return shdb_check_json(s->scores_json, true, "score: scores", err);
}

int sh_db_put_score(sh_db *db, const sh_score_rec *s, sh_err *err)
{
    if (validate_score(s, err) != 0) return sh_err_prefix(err, "%s", db->path);
    char phex[17], ghex[17];
    char *canon = params_key(s->params_json, phex, err);
    if (!canon) return sh_err_prefix(err, "%s: put score", db->path);
    sh_hash_hex(s->genome, ghex);
    if (sh_db_begin(db, err) != 0) { free(canon); return -1; }
    sqlite3_stmt *st;
    if (shdb_prepare(db, "INSERT INTO scores(genome_hash, scorer, version, params_json, params_hash, "
                         "status, scores_json, aggregate, error, seconds) "
                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                         "ON CONFLICT(genome_hash, scorer, version, params_hash) DO UPDATE SET "
                         "params_json = excluded.params_json, status = excluded.status, "
                         "scores_json = excluded.scores_json, aggregate = excluded.aggregate, "
                         "error = excluded.error, seconds = excluded.seconds, "
                         "created_at = strftime('%Y-%m-%dT%H:%M:%SZ','now')",
                     &st, err, "put score") != 0)
        goto fail;
    sqlite3_bind_text(st, 1, ghex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->scorer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, s->version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, canon, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, phex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, s->status, -1, SQLITE_STATIC);
    shdb_bind_text(st, 7, s->scores_json, true);
    if (isnan(s->aggregate)) sqlite3_bind_null(st, 8);
    else sqlite3_bind_double(st, 8, s->aggregate);
    if (s->error) sqlite3_bind_text(st, 9, s->error, (int)strnlen(s->error, 16384), SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, 9);
    sqlite3_bind_double(st, 10, s->seconds);
    if (shdb_step_done(db, st, err, "put score") != 0) goto fail;
    free(canon);
    return sh_db_commit(db, err);
fail:
    free(canon);
    sh_db_rollback(db);
    return -1;
}

static int read_score_row(sqlite3_stmt *st, void *s) { return read_score(st, s); }
static void free_score(void *s) { sh_score_rec_free(s); }

int sh_db_list_scores(sh_db *db, const sh_hash *genome, sh_score_rec **out, int *n, sh_err *err)
{
    *out = NULL;
    *n = 0;
    char ghex[17] = "";
    if (genome) sh_hash_hex(*genome, ghex);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT " SCORE_COLS " FROM scores WHERE ?1 = '' OR genome_hash = ?1 ORDER BY id",
                     &st, err, "list scores") != 0)
        return -1;
    sqlite3_bind_text(st, 1, ghex, -1, SQLITE_STATIC);
    void *arr;
    int rc = shdb_collect(db, st, sizeof **out, read_score_row, free_score, &arr, n, err, "list scores");
    *out = arr;
    return rc;
}

int sh_db_latest_aggregate(sh_db *db, sh_hash genome, double *aggregate, sh_err *err)
{
    char ghex[17];
    sh_hash_hex(genome, ghex);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT aggregate FROM scores WHERE genome_hash = ?1 AND status = 'ok' "
                         "AND aggregate IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 1",
                     &st, err, "latest score") != 0)
        return -1;
    sqlite3_bind_text(st, 1, ghex, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), ret = 1;
    if (rc == SQLITE_ROW) {
        *aggregate = shdb_col_real(st, 0);
        ret = 0;
    } else if (rc != SQLITE_DONE) {
        ret = shdb_sql_error(db, err, "latest score");
    }
    sqlite3_finalize(st);
    return ret;
}
