/* schema.c - the run store's DDL as an ordered list of migrations.
 *
 * MIGRATIONS[i] brings user_version from i to i+1.  Each runs in one
 * BEGIN IMMEDIATE transaction together with its user_version bump, after
 * re-reading the version inside the transaction (so two processes opening a
 * new file at once do not both apply it).  To change the schema: append a
 * migration and raise SH_DB_SCHEMA_VERSION in runs.h; never edit a released
 * migration.
 *
 * Notes on migration 1:
 *  - tables are STRICT, so a wrong type is an error, not a silent conversion;
 *  - genome hashes are 16 lowercase hex digits (sh_hash_hex); they are loose
 *    references (no foreign key) so measuring or scoring a genome does not
 *    require storing it first;
 *  - evaluations are unique on (run, genome, device, kind, settings hash) with
 *    a missing run/device counted as 0/'' (an expression index: plain UNIQUE
 *    would treat NULLs as all distinct);
 *  - runs own their evaluations, generations and metrics, devices own their
 *    profiles (ON DELETE CASCADE); evaluations keep the device name as text so
 *    removing a device keeps its measurement history.
 */
#include "runs/runs_internal.h"

#include <stdio.h>

#define NOW_ISO "(strftime('%Y-%m-%dT%H:%M:%SZ','now'))"

static const char MIGRATION_1[] =
    "CREATE TABLE genomes("
    "  hash TEXT PRIMARY KEY CHECK(length(hash) = 16),"
    "  text TEXT NOT NULL,"
    "  json TEXT NOT NULL,"
    "  params_total INTEGER NOT NULL,"
    "  params_active INTEGER NOT NULL,"
    "  created_at TEXT NOT NULL DEFAULT " NOW_ISO ") STRICT;"

    "CREATE TABLE devices("
    "  name TEXT PRIMARY KEY CHECK(length(name) BETWEEN 1 AND 63),"
    "  kind TEXT NOT NULL CHECK(length(kind) BETWEEN 1 AND 15),"
    "  host TEXT NOT NULL DEFAULT '',"
    "  port INTEGER NOT NULL DEFAULT 0,"
    "  user TEXT NOT NULL DEFAULT '',"
    "  key_path TEXT NOT NULL DEFAULT '',"
    "  target TEXT NOT NULL DEFAULT '',"
    "  cpus TEXT NOT NULL DEFAULT '',"
    "  workdir TEXT NOT NULL DEFAULT '',"
    "  options_json TEXT,"
    "  topology_json TEXT,"
    "  healthy INTEGER NOT NULL DEFAULT 1,"
    "  fail_count INTEGER NOT NULL DEFAULT 0,"
    "  created_at TEXT NOT NULL DEFAULT " NOW_ISO ") STRICT;"

    "CREATE TABLE runs("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  config_json TEXT NOT NULL,"
    "  seed INTEGER NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'running'"
    "    CHECK(status IN ('running','done','failed','stopped')),"
    "  state_blob BLOB,"
    "  created_at TEXT NOT NULL DEFAULT " NOW_ISO ","
    "  updated_at TEXT NOT NULL DEFAULT " NOW_ISO ") STRICT;"
    "CREATE INDEX runs_name ON runs(name);"

    "CREATE TABLE evaluations("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,"
    "  genome_hash TEXT NOT NULL CHECK(length(genome_hash) = 16),"
    "  device TEXT,"
    "  kind TEXT NOT NULL CHECK(length(kind) BETWEEN 1 AND 15),"
    "  settings_json TEXT NOT NULL,"
    "  settings_hash TEXT NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'pending'"
    "    CHECK(status IN ('pending','running','ok','failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT,"
    "  result_json TEXT,"
    "  started_at REAL,"
    "  finished_at REAL,"
    "  created_at TEXT NOT NULL DEFAULT " NOW_ISO ") STRICT;"
    "CREATE UNIQUE INDEX evaluations_key ON evaluations("
    "  ifnull(run_id, 0), genome_hash, ifnull(device, ''), kind, settings_hash);"
    "CREATE INDEX evaluations_run ON evaluations(run_id, status);"
    "CREATE INDEX evaluations_genome ON evaluations(genome_hash);"

    "CREATE TABLE samples("
    "  eval_id INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,"
    "  metric TEXT NOT NULL,"
    "  idx INTEGER NOT NULL,"
    "  value REAL NOT NULL,"
    "  PRIMARY KEY(eval_id, metric, idx)) STRICT, WITHOUT ROWID;"

    "CREATE TABLE scores("
    "  id INTEGER PRIMARY KEY,"
    "  genome_hash TEXT NOT NULL CHECK(length(genome_hash) = 16),"
    "  scorer TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  params_json TEXT NOT NULL,"
    "  params_hash TEXT NOT NULL,"
    "  status TEXT NOT NULL CHECK(status IN ('ok','failed')),"
    "  scores_json TEXT,"
    "  aggregate REAL,"
    "  error TEXT,"
    "  seconds REAL,"
    "  created_at TEXT NOT NULL DEFAULT " NOW_ISO ","
    "  UNIQUE(genome_hash, scorer, version, params_hash)) STRICT;"

    "CREATE TABLE generations("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  gen INTEGER NOT NULL,"
    "  genome_hash TEXT NOT NULL CHECK(length(genome_hash) = 16),"
    "  rank INTEGER NOT NULL,"
    "  crowding REAL,"
    "  on_front INTEGER NOT NULL,"
    "  objectives_json TEXT NOT NULL,"
    "  PRIMARY KEY(run_id, gen, genome_hash)) STRICT;"

    "CREATE TABLE run_metrics("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  gen INTEGER NOT NULL,"
    "  hypervolume REAL,"
    "  evaluations INTEGER NOT NULL,"
    "  front_size INTEGER NOT NULL,"
    "  created_at TEXT NOT NULL DEFAULT " NOW_ISO ","
    "  PRIMARY KEY(run_id, gen)) STRICT;"

    "CREATE TABLE profiles("
    "  device TEXT NOT NULL REFERENCES devices(name) ON DELETE CASCADE,"
    "  block TEXT NOT NULL,"
    "  params_json TEXT NOT NULL,"
    "  dtype TEXT NOT NULL,"
    "  latency_us REAL,"
    "  gbytes_per_s REAL,"
    "  gflops REAL,"
    "  created_at TEXT NOT NULL DEFAULT " NOW_ISO ") STRICT;"
    "CREATE INDEX profiles_device ON profiles(device);";

/* Migration 2: one row per batch-job attempt of a capability score run by a
 * cluster executor (cluster/).  Keyed like scores (genome, scorer, version,
 * params hash) so a resumed coordinator finds the jobs still queued or
 * running and attaches to them instead of training again. */
static const char MIGRATION_2[] =
    "CREATE TABLE score_jobs("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,"
    "  genome_hash TEXT NOT NULL CHECK(length(genome_hash) = 16),"
    "  scorer TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  params_hash TEXT NOT NULL,"
    "  executor TEXT NOT NULL CHECK(length(executor) BETWEEN 1 AND 15),"
    "  attempt INTEGER NOT NULL CHECK(attempt >= 1),"
    "  job_id TEXT NOT NULL DEFAULT '',"
    "  state TEXT NOT NULL"
    "    CHECK(state IN ('submitting','queued','ok','retry','failed','cancelled')),"
    "  cluster_state TEXT NOT NULL DEFAULT '',"
    "  exit_code INTEGER,"
    "  reason TEXT,"
    "  spec_path TEXT NOT NULL,"
    "  result_path TEXT NOT NULL,"
    "  submitted_at REAL,"
    "  started_at REAL,"
    "  finished_at REAL,"
    "  created_at TEXT NOT NULL DEFAULT " NOW_ISO ") STRICT;"
    "CREATE INDEX score_jobs_key ON score_jobs(genome_hash, scorer, version, params_hash);"
    "CREATE INDEX score_jobs_run ON score_jobs(run_id, state);";

/* Migration 3 (measurement stability, issue 18): an ok measurement carries
 * how far it can be trusted: 'quiet' (the board was quiet and the CI within
 * tolerance), 'disturbed' (some repetitions were disturbed and left out of
 * the estimate, the rest quiet), 'unstable' (still doubtful after waiting
 * for the board to settle and measuring again), '' (stored before this
 * migration, or not a measurement).  Rows written by older versions that
 * recorded "converged": false are marked unstable, so they are measured
 * again instead of being reused. */
static const char MIGRATION_3[] =
    "ALTER TABLE evaluations ADD COLUMN stability TEXT NOT NULL DEFAULT ''"
    "  CHECK(stability IN ('', 'quiet', 'disturbed', 'unstable'));"
    "ALTER TABLE evaluations ADD COLUMN stability_reason TEXT;"
    "UPDATE evaluations SET stability = 'unstable',"
    "  stability_reason = 'not converged (stored before stability checks)'"
    "  WHERE status = 'ok' AND kind IN ('measure', 'reference') AND result_json IS NOT NULL"
    "  AND json_valid(result_json) AND json_extract(result_json, '$.converged') = 0;";

/* Migration 4 (issue 18): the paired ratios of `starhil compare` runs, one
 * row per run, ratio and metric, so a later run of the same comparison
 * (key: genomes, weights, settings) on the same device learns how much the
 * ratio moves between runs.  log_ratio is the log of the run's median ratio
 * over rounds, se its standard error from the rounds' spread. */
static const char MIGRATION_4[] =
    "CREATE TABLE comparisons("
    "  id INTEGER PRIMARY KEY,"
    "  device TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  metric TEXT NOT NULL CHECK(metric IN ('decode', 'prefill')),"
    "  log_ratio REAL NOT NULL,"
    "  se REAL NOT NULL CHECK(se >= 0),"
    "  rounds INTEGER NOT NULL CHECK(rounds >= 1),"
    "  created_at TEXT NOT NULL DEFAULT " NOW_ISO ") STRICT;"
    "CREATE INDEX comparisons_device ON comparisons(device, metric);";

typedef struct migration {
    const char *what;
    const char *sql;
} migration;

static const migration MIGRATIONS[] = {
    {"create the starhil tables", MIGRATION_1},
    {"score_jobs: batch jobs of cluster executors", MIGRATION_2},
    {"measurement stability columns", MIGRATION_3},
    {"comparisons: paired ratios of compare runs", MIGRATION_4},
};
#define N_MIGRATIONS ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

_Static_assert(N_MIGRATIONS == SH_DB_SCHEMA_VERSION,
               "one migration per schema version: update SH_DB_SCHEMA_VERSION in runs.h");

/* Applies migration number `to` (1-based) unless another process already did. */
static int apply_one(sh_db *db, int to, sh_err *err)
{
    if (sh_db_begin(db, err) != 0) return -1;
    long long version, app_id;
    if (shdb_read_pragma_int(db, "user_version", &version, err) != 0 ||
        shdb_read_pragma_int(db, "application_id", &app_id, err) != 0)
        goto fail;
    if (version >= to) { sh_db_rollback(db); return 0; }
    if (app_id != 0 && app_id != SH_DB_APPLICATION_ID) {
        sh_err_set(err, "%s: not a starhil database (application_id changed to 0x%08llx)",
                   db->path, (unsigned long long)(uint32_t)app_id);
        goto fail;
    }
    if (version != to - 1) {
        sh_err_set(err, "%s: schema version %lld changed while migrating to %d", db->path, version, to);
        goto fail;
    }
    if (sqlite3_exec(db->h, MIGRATIONS[to - 1].sql, NULL, NULL, NULL) != SQLITE_OK) {
        char what[128];
        snprintf(what, sizeof what, "migration %d (%s)", to, MIGRATIONS[to - 1].what);
        shdb_sql_error(db, err, what);
        goto fail;
    }
    /* integer constants of this module only: PRAGMA takes no bound values */
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d",
             (int)SH_DB_APPLICATION_ID, to);
    if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK) {
        shdb_sql_error(db, err, "set the schema version");
        goto fail;
    }
    return sh_db_commit(db, err);
fail:
    sh_db_rollback(db);
    return -1;
}

int shdb_migrate(sh_db *db, sh_err *err)
{
    long long version;
    if (shdb_read_pragma_int(db, "user_version", &version, err) != 0) return -1;
    for (int to = (int)version + 1; to <= N_MIGRATIONS; to++)
        if (apply_one(db, to, err) != 0) return -1;
    return 0;
}

int sh_db_schema_version(sh_db *db, sh_err *err)
{
    long long v;
    if (shdb_read_pragma_int(db, "user_version", &v, err) != 0) return -1;
    return (int)v;
}
