/* genomes.c - storing genomes by hash: canonical text, JSON form and parameter
 * counts; reading them back by parsing the canonical text. */
#include "runs/runs_internal.h"

#include <stdlib.h>
#include <string.h>

/* Text of a stored genome with this hash, or NULL (not found or error; err
 * is cleared when simply absent). */
static char *stored_text(sh_db *db, const char *hex, sh_err *err)
{
    sh_err_clear(err);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT text FROM genomes WHERE hash = ?1", &st, err, "read genome") != 0)
        return NULL;
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    char *text = NULL;
    bool oom = false;
    if (rc == SQLITE_ROW) text = shdb_col_dup(st, 0, &oom);
    else if (rc != SQLITE_DONE) shdb_sql_error(db, err, "read genome");
    sqlite3_finalize(st);
    if (oom) sh_err_set(err, "%s: genome %s: out of memory", db->path, hex);
    return text;
}

static int insert_genome(sh_db *db, const char *hex, const char *text, const char *json,
                         const sh_param_count *pc, sh_err *err)
{
    sqlite3_stmt *st;
    if (shdb_prepare(db, "INSERT OR IGNORE INTO genomes(hash, text, json, params_total, params_active)"
                         " VALUES(?1, ?2, ?3, ?4, ?5)", &st, err, "store genome") != 0)
        return -1;
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)pc->total);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)pc->active);
    return shdb_step_done(db, st, err, "store genome");
}

int sh_db_put_genome(sh_db *db, const sh_genome *g, sh_err *err)
{
    char *text = malloc(SH_GENOME_TEXT_MAX);
    if (!text) return sh_err_set(err, "%s: store genome: out of memory", db->path);
    if (sh_genome_format(g, text, SH_GENOME_TEXT_MAX, err) != 0) {
        free(text);
        return sh_err_prefix(err, "%s: store genome", db->path);
    }
    char hex[17];
    sh_hash_hex(sh_genome_hash(g), hex);
    char *json = sh_genome_to_json(g, false, err);
    if (!json) {
        free(text);
        return sh_err_prefix(err, "%s: store genome %s", db->path, hex);
    }
    sh_param_count pc;
    sh_genome_params(g, &pc);

    int ret = -1;
    if (sh_db_begin(db, err) != 0) goto out;
    if (insert_genome(db, hex, text, json, &pc, err) != 0) goto fail;
    /* the row may have been there already: it must be the same genome */
    char *have = stored_text(db, hex, err);
    if (!have) goto fail;
    bool same = strcmp(have, text) == 0;
    free(have);
    if (!same) {
        sh_err_set(err, "%s: genome hash %s already stored for a different genome text "
                   "(hash collision or corrupted store)", db->path, hex);
        goto fail;
    }
    ret = sh_db_commit(db, err);
    goto out;
fail:
    sh_db_rollback(db);
out:
    free(text);
    free(json);
    return ret;
}

int sh_db_get_genome(sh_db *db, sh_hash h, sh_genome *out, sh_err *err)
{
    char hex[17];
    sh_hash_hex(h, hex);
    char *text = stored_text(db, hex, err);
    if (!text) {
        if (!err || !err->msg[0]) sh_err_set(err, "%s: genome %s is not in the store", db->path, hex);
        return -1;
    }
    int rc = sh_genome_parse(text, out, err);
    free(text);
    if (rc != 0) return sh_err_prefix(err, "%s: stored genome %s", db->path, hex);
    if (sh_genome_hash(out) != h)
        return sh_err_set(err, "%s: stored genome %s: its text hashes differently (corrupted store)",
                          db->path, hex);
    return 0;
}
