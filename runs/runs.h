/* runs.h - the run store: one SQLite file holding genomes, devices, runs,
 * evaluations, raw measurement samples, capability scores, per-generation
 * populations, and chip profiles.
 *
 * The file is opened in WAL mode with foreign keys on; the schema is versioned
 * with PRAGMA user_version and upgraded by ordered migrations (runs/schema.c).
 * Every write runs in a transaction.  All SQL is prepared with bound
 * parameters: no SQL text is ever built from strings that come from users,
 * devices or scorers.
 *
 * Opening fails with a clear message, and changes nothing, for: a file that is
 * not an SQLite database, a database written by a newer starhil (user_version
 * above SH_DB_SCHEMA_VERSION), and a read-only file when writing is needed.
 *
 * Tables (see schema.c for the exact DDL):
 *   genomes(hash PK text16, text, json, params_total, params_active, created_at)
 *   devices(name PK, kind, host, port, user, key_path, target, cpus, workdir,
 *           options_json, topology_json, healthy, fail_count, created_at)
 *   runs(id PK, name, config_json, seed, status, state_blob, created_at, updated_at)
 *   evaluations(id PK, run_id NULL, genome_hash, device NULL, kind, settings_json,
 *           settings_hash, status, attempts, error, result_json, started_at,
 *           finished_at, stability, stability_reason,
 *           UNIQUE(run_id, genome_hash, device, kind, settings_hash)
 *           with NULL run/device counted as 0/'' (a unique expression index))
 *   samples(eval_id, metric, idx, value)              raw measurement samples
 *   scores(id PK, genome_hash, scorer, version, params_json, params_hash, status,
 *           scores_json, aggregate, error, seconds, created_at,
 *           UNIQUE(genome_hash, scorer, version, params_hash))
 *   generations(run_id, gen, genome_hash, rank, crowding, on_front, objectives_json,
 *           PRIMARY KEY(run_id, gen, genome_hash))
 *   run_metrics(run_id, gen, hypervolume, evaluations, front_size, created_at,
 *           PRIMARY KEY(run_id, gen))
 *   profiles(device, block, params_json, dtype, latency_us, gbytes_per_s, gflops,
 *           created_at)
 *   score_jobs(id PK, run_id NULL, genome_hash, scorer, version, params_hash,
 *           executor, attempt, job_id, state, cluster_state, exit_code, reason,
 *           spec_path, result_path, submitted_at, started_at, finished_at,
 *           created_at)                           (schema 2)
 *   comparisons(id PK, device, key, metric, log_ratio, se, rounds, created_at)
 *                                                 (schema 4)
 */
#ifndef SH_RUNS_H
#define SH_RUNS_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/device_rec.h"
#include "genome/genome.h"
#include "util/err.h"

#define SH_DB_SCHEMA_VERSION 4
/* The oldest schema a read-only open accepts: later migrations only add
 * tables that readers (report, runs list/show) do not read. */
#define SH_DB_READABLE_FROM 3
/* PRAGMA application_id of every starhil database ("STHL"); a database with
 * another id, or with tables but no id, is refused as not ours. */
#define SH_DB_APPLICATION_ID 0x5354484C

typedef struct sh_db sh_db;

enum {
    SH_DB_READONLY = 1,   /* open an existing file for reading only */
    SH_DB_CREATE = 2,     /* create the file if missing             */
};

int sh_db_open(const char *path, int flags, sh_db **out, sh_err *err);
void sh_db_close(sh_db *db);
const char *sh_db_path(const sh_db *db);

/* Explicit transactions (BEGIN IMMEDIATE); nestable by counting. */
int sh_db_begin(sh_db *db, sh_err *err);
int sh_db_commit(sh_db *db, sh_err *err);
void sh_db_rollback(sh_db *db);

/* ---- genomes ----------------------------------------------------------- */
int sh_db_put_genome(sh_db *db, const sh_genome *g, sh_err *err);   /* idempotent */
int sh_db_get_genome(sh_db *db, sh_hash h, sh_genome *out, sh_err *err); /* -1 if absent */

/* ---- devices ----------------------------------------------------------- */
/* The record (sh_device_rec, sh_device_rec_free) is devices/device_rec.h's. */
int sh_db_add_device(sh_db *db, const sh_device_rec *d, sh_err *err);   /* error if it exists */
int sh_db_get_device(sh_db *db, const char *name, sh_device_rec *out, sh_err *err);
/* Fills a malloc'd array; caller frees each with sh_device_rec_free then the array. */
int sh_db_list_devices(sh_db *db, sh_device_rec **out, int *n, sh_err *err);
int sh_db_remove_device(sh_db *db, const char *name, sh_err *err);
int sh_db_set_device_topology(sh_db *db, const char *name, const char *topology_json, sh_err *err);
int sh_db_set_device_health(sh_db *db, const char *name, bool healthy, int fail_count, sh_err *err);

/* ---- runs -------------------------------------------------------------- */
typedef struct sh_run_rec {
    int64_t id;
    char name[128];
    char status[16];        /* running | done | failed | stopped */
    uint64_t seed;
    char *config_json;      /* malloc'd */
    void *state;            /* malloc'd resumable state blob (RNG, population) */
    int state_len;
    char created_at[32], updated_at[32];
} sh_run_rec;

void sh_run_rec_free(sh_run_rec *r);
/* 0 if every JSON value stored for the run (config, generations' objectives,
 * evaluations' results and settings) parses; else -1 with a message naming
 * the run and the first damaged row.  Readers call it before showing a run, so
 * damage is reported instead of shown as empty values. */
int sh_db_check_run_json(sh_db *db, int64_t run_id, sh_err *err);
int sh_db_create_run(sh_db *db, const char *name, const char *config_json, uint64_t seed,
                     int64_t *id_out, sh_err *err);
int sh_db_get_run(sh_db *db, int64_t id, sh_run_rec *out, sh_err *err);
int sh_db_list_runs(sh_db *db, sh_run_rec **out, int *n, sh_err *err);
int sh_db_set_run_status(sh_db *db, int64_t id, const char *status, sh_err *err);
int sh_db_save_run_state(sh_db *db, int64_t id, const void *state, int len, sh_err *err);

/* ---- evaluations and samples -------------------------------------------- */
typedef struct sh_eval_rec {
    int64_t id;
    int64_t run_id;          /* 0 = none */
    sh_hash genome;
    char device[64];         /* "" = none (e.g. capability scoring) */
    char kind[16];           /* measure | score | ... */
    char status[16];         /* pending | running | ok | failed */
    int attempts;
    char *settings_json;     /* malloc'd */
    char *result_json;       /* malloc'd or NULL */
    char *error;             /* malloc'd or NULL */
    double started_at, finished_at;  /* unix seconds */
    char stability[16];      /* measurements: quiet | disturbed | unstable | "" (see below) */
    char *stability_reason;  /* malloc'd or NULL: why it is disturbed or unstable */
} sh_eval_rec;

void sh_eval_rec_free(sh_eval_rec *e);
/* Finds the evaluation for (run, genome, device, kind, settings) or creates it
 * as pending; *id_out gets its id and *status_out (if non-NULL, 16 bytes) its
 * status, so callers can skip work that is already ok. */
int sh_db_eval_get_or_create(sh_db *db, int64_t run_id, sh_hash genome, const char *device,
                             const char *kind, const char *settings_json,
                             int64_t *id_out, char *status_out, sh_err *err);
int sh_db_eval_mark_running(sh_db *db, int64_t id, sh_err *err);  /* attempts++ */
/* Success: result summary and all raw samples in one transaction. metric[i]
 * names the series of values[i]; idx is the position within that series. */
typedef struct sh_sample {
    const char *metric;
    int idx;
    double value;
} sh_sample;
int sh_db_eval_finish_ok(sh_db *db, int64_t id, const char *result_json,
                         const sh_sample *samples, int n_samples, sh_err *err);
int sh_db_eval_finish_failed(sh_db *db, int64_t id, const char *error_text, sh_err *err);
int sh_db_get_eval(sh_db *db, int64_t id, sh_eval_rec *out, sh_err *err);
/* All evaluations of a run (run_id > 0) or all (run_id == 0). */
int sh_db_list_evals(sh_db *db, int64_t run_id, sh_eval_rec **out, int *n, sh_err *err);
/* Samples of one metric of an evaluation, ordered by idx; *values malloc'd. */
int sh_db_get_samples(sh_db *db, int64_t eval_id, const char *metric,
                      double **values, int *n, sh_err *err);

/* ---- capability scores --------------------------------------------------- */
typedef struct sh_score_rec {
    int64_t id;
    sh_hash genome;
    char scorer[128];
    char version[32];
    char status[16];        /* ok | failed */
    char *params_json;      /* malloc'd: task parameters / scorer settings */
    char *scores_json;      /* malloc'd: {"task": accuracy, ...} or NULL */
    double aggregate;
    char *error;            /* malloc'd or NULL */
    double seconds;
} sh_score_rec;

void sh_score_rec_free(sh_score_rec *s);
/* -1 with err cleared (err->msg[0]==0) if absent; -1 with a message on error. */
int sh_db_find_score(sh_db *db, sh_hash genome, const char *scorer, const char *version,
                     const char *params_json, sh_score_rec *out, sh_err *err);
/* Insert or replace the row for (genome, scorer, version, params). */
int sh_db_put_score(sh_db *db, const sh_score_rec *s, sh_err *err);
/* The aggregate of a genome's newest ok score that has one, any scorer or
 * version: 0 found (*aggregate set), 1 none, -1 error. */
int sh_db_latest_aggregate(sh_db *db, sh_hash genome, double *aggregate, sh_err *err);

/* ---- generations (search) ------------------------------------------------ */
typedef struct sh_gen_member {
    sh_hash genome;
    int rank;               /* non-domination rank, 0 = front */
    double crowding;
    bool on_front;
    const char *objectives_json;
} sh_gen_member;

int sh_db_put_generation(sh_db *db, int64_t run_id, int gen, const sh_gen_member *m, int n,
                         double hypervolume, int evaluations, sh_err *err);

/* ---- chip profiles -------------------------------------------------------- */
typedef struct sh_profile_row {
    const char *block;      /* conv | gqa | swiglu | moe | head */
    const char *params_json;
    const char *dtype;
    double latency_us;
    double gbytes_per_s;
    double gflops;
} sh_profile_row;

/* Replaces the device's profile with these rows, in one transaction. */
int sh_db_put_profile(sh_db *db, const char *device, const sh_profile_row *rows, int n, sh_err *err);

/* ==== additions (beyond the first contract) ================================
 * Threads: one sh_db per thread (the transaction counter is per handle);
 * several handles/processes may write the same file: writers wait up to 10 s
 * for each other (busy timeout) and take the write lock at BEGIN IMMEDIATE.
 * Timestamps (created_at, updated_at) are UTC text "YYYY-MM-DDTHH:MM:SSZ".
 * JSON given to the store is validated (jansson, duplicate keys rejected);
 * evaluation settings and score params are stored canonicalised (keys
 * sorted, compact, reals in their shortest exact form: 0.1 stays 0.1), so
 * equal objects written with keys in another order find the same row; other
 * JSON (configs, results, objectives...) is stored as given.
 * A NaN real (aggregate, crowding, hypervolume...) is stored as NULL and
 * read back as NaN.  Samples: metric names of 1-64 bytes, finite values,
 * (metric, idx) unique within an evaluation, else finish_ok fails and stores
 * nothing.  Error texts are kept up to 16 KiB. */

/* sh_db_open(":memory:", SH_DB_CREATE, ...) gives a private in-memory store
 * (no file, no WAL), handy for tools and tests. */
/* Depth of the current explicit transaction (0 = none). */
int sh_db_in_transaction(const sh_db *db);
/* PRAGMA user_version of the open file, or -1 with a message. */
int sh_db_schema_version(sh_db *db, sh_err *err);

/* Latest run with this name: 0 and *id_out, or -1 with err cleared if none. */
int sh_db_find_run_by_name(sh_db *db, const char *name, int64_t *id_out, sh_err *err);
/* sh_db_list_runs leaves config_json filled and state NULL (state blobs are
 * only loaded by sh_db_get_run). Runs are listed by id. */

/* Sets an evaluation back to pending and deletes its samples, result and error
 * (e.g. to measure again on purpose).  sh_db_eval_mark_running refuses an
 * evaluation that is already ok, and sh_db_eval_finish_failed never replaces
 * an ok result; both say so in the error. */
int sh_db_eval_reset(sh_db *db, int64_t id, sh_err *err);

/* ---- measurement stability (schema 3) -------------------------------------
 * A stored measurement says how far it can be trusted: "quiet", "disturbed"
 * (disturbed repetitions were left out of its estimate), "unstable" (still
 * doubtful after re-measuring: callers must not reuse it as a cached answer
 * nor rank with it unless asked to), or "" (older rows, not measurements).
 * Like sh_db_eval_finish_ok, plus the stability and its reason (NULL/"" for
 * none).  With replace, an evaluation that is already ok is overwritten
 * (its samples too) in the same transaction: a quiet re-measurement
 * replacing an unstable one, or `measure --force`. */
int sh_db_eval_finish_measured(sh_db *db, int64_t id, const char *result_json,
                               const sh_sample *samples, int n_samples, const char *stability,
                               const char *reason, bool replace, sh_err *err);
/* The latest ok evaluation of (run, device, kind), newest first; with
 * trusted_only, only quiet or disturbed ones (or older rows without a
 * stability).  0 found (*out filled), 1 none, -1 error. */
int sh_db_latest_eval(sh_db *db, int64_t run_id, const char *device, const char *kind, bool trusted_only,
                      sh_eval_rec *out, sh_err *err);
/* Finish time of the latest trusted (not unstable) ok evaluation of (run,
 * device, kind) whose result's decode_ms is at most max_ms: 0 found
 * (*finished_at set), 1 none, -1 error. */
int sh_db_latest_trusted_at_most(sh_db *db, int64_t run_id, const char *device, const char *kind, double max_ms,
                                 double *finished_at, sh_err *err);
/* Marks the ok evaluations of (run, device, kind) that finished after
 * `after` and up to `before` (unix seconds), and are not unstable yet,
 * unstable: the stability column and the result JSON's "stability" become
 * "unstable", and reason is appended to their reason (column and JSON
 * "stability_reason").  One statement, so all or none.  ids gets up to cap
 * of the marked ids, *n_marked how many were marked. */
int sh_db_mark_unstable(sh_db *db, int64_t run_id, const char *device, const char *kind, double after,
                        double before, const char *reason, int64_t *ids, int cap, int *n_marked, sh_err *err);
/* Device measurements are the evaluations of kind "measure" (measure/measure.c)
 * or "bench" (older rows).  The ok measurements of a run, first finished
 * first (rows without a finish time before all others), then by id. */
int sh_db_list_run_measurements(sh_db *db, int64_t run_id, sh_eval_rec **out, int *n, sh_err *err);
/* The ok evaluations of a run of one kind that have a result, by id. */
int sh_db_list_ok_results(sh_db *db, int64_t run_id, const char *kind, sh_eval_rec **out, int *n,
                          sh_err *err);
/* The newest ok measurement with a result of a genome on a device ("" = none),
 * in any run.  0 found (*out filled), 1 none, -1 error. */
int sh_db_latest_measurement(sh_db *db, sh_hash genome, const char *device, sh_eval_rec *out, sh_err *err);
/* Number of ok evaluations of (run, device, kind). */
int sh_db_count_ok_evals(sh_db *db, int64_t run_id, const char *device, const char *kind, int *count,
                         sh_err *err);

/* Scores of one genome (genome != NULL) or all, by id. */
int sh_db_list_scores(sh_db *db, const sh_hash *genome, sh_score_rec **out, int *n, sh_err *err);
void sh_score_recs_free(sh_score_rec *s, int n);
void sh_eval_recs_free(sh_eval_rec *e, int n);
void sh_run_recs_free(sh_run_rec *r, int n);

/* One stored member of a generation. */
typedef struct sh_gen_row {
    sh_hash genome;
    int gen;
    int rank;
    double crowding;        /* may be INFINITY (boundary) or NaN (unset) */
    bool on_front;
    char *objectives_json;  /* malloc'd */
} sh_gen_row;
void sh_gen_rows_free(sh_gen_row *rows, int n);
/* Highest stored generation of a run: 0 and *gen_out, or -1 with err cleared
 * if the run has no generation yet. */
int sh_db_latest_generation(sh_db *db, int64_t run_id, int *gen_out, sh_err *err);
/* Members of generation `gen` (gen < 0: the latest), ordered by rank then
 * crowding (descending); front_only keeps on_front members only.  An empty
 * result (n = 0, out = NULL) is not an error. */
int sh_db_list_generation(sh_db *db, int64_t run_id, int gen, bool front_only,
                          sh_gen_row **out, int *n, sh_err *err);
/* All generation numbers stored for a run, ascending (malloc'd). */
int sh_db_list_generation_numbers(sh_db *db, int64_t run_id, int **gens, int *n, sh_err *err);

/* Per-generation metrics of a run, ascending by gen. */
typedef struct sh_run_metric {
    int gen;
    double hypervolume;
    int evaluations;
    int front_size;
    char created_at[32];
} sh_run_metric;
int sh_db_list_run_metrics(sh_db *db, int64_t run_id, sh_run_metric **out, int *n, sh_err *err);

/* Stored profile rows of a device (in insertion order). */
typedef struct sh_profile_rec {
    char block[16];
    char dtype[16];
    char *params_json;      /* malloc'd */
    double latency_us, gbytes_per_s, gflops;
    char created_at[32];
} sh_profile_rec;
void sh_profile_recs_free(sh_profile_rec *p, int n);
int sh_db_list_profile(sh_db *db, const char *device, sh_profile_rec **out, int *n, sh_err *err);

/* Counts of a run's evaluations (run_id 0: of all), total and by status. */
typedef struct sh_eval_counts {
    int total, pending, running, ok, failed;
} sh_eval_counts;
int sh_db_count_evals(sh_db *db, int64_t run_id, sh_eval_counts *out, sh_err *err);

/* ---- batch jobs of cluster executors (schema 2) ---------------------------
 * One row per attempt of a capability score run as a batch job (cluster/).
 * Keyed like scores: (genome, scorer, version, params), params canonicalised.
 * States: submitting (row written before sbatch, job id not yet known),
 * queued (job id known; pending or running in the cluster), and the final
 * ok (result ingested), retry (this attempt failed; another follows),
 * failed (given up: deterministic failure or attempts exhausted), cancelled
 * (by the coordinator, e.g. Ctrl-C).  cluster_state is the scheduler's last
 * word (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...). */
typedef struct sh_job_rec {
    int64_t id;
    int64_t run_id;          /* 0 = none */
    sh_hash genome;
    char scorer[128];
    char version[32];
    char executor[16];       /* slurm */
    int attempt;             /* 1, 2, ... within the key's current chain */
    char job_id[32];         /* "" while submitting */
    char state[16];
    char cluster_state[32];
    int exit_code;           /* -1 = unknown */
    char *reason;            /* malloc'd or NULL */
    char spec_path[1024];
    char result_path[1024];
    double submitted_at, started_at, finished_at;   /* unix seconds, NaN unknown */
} sh_job_rec;

void sh_job_recs_free(sh_job_rec *j, int n);
/* Inserts an attempt (state submitting or queued) for the key of params_json. */
int sh_db_job_add(sh_db *db, const sh_job_rec *j, const char *params_json, int64_t *id_out, sh_err *err);
/* submitting -> queued with the scheduler's job id (submitted_at = now). */
int sh_db_job_set_submitted(sh_db *db, int64_t id, const char *job_id, sh_err *err);
/* Latest observation of a queued job: cluster state, and started_at when not NaN. */
int sh_db_job_observe(sh_db *db, int64_t id, const char *cluster_state, double started_at, sh_err *err);
/* Final state of an attempt (ok | retry | failed | cancelled) with the
 * cluster's state, exit code (-1 unknown) and reason (NULL for none). */
int sh_db_job_finish(sh_db *db, int64_t id, const char *state, const char *cluster_state, int exit_code,
                     const char *reason, sh_err *err);
/* Attempts of one key, oldest first (n = 0 and out = NULL when none). */
int sh_db_job_list_key(sh_db *db, sh_hash genome, const char *scorer, const char *version,
                       const char *params_json, sh_job_rec **out, int *n, sh_err *err);
/* Attempts of a run (run_id > 0) or all (0), oldest first. */
int sh_db_job_list(sh_db *db, int64_t run_id, sh_job_rec **out, int *n, sh_err *err);

/* ---- paired ratios of compare runs (schema 4) ------------------------------
 * One row per `starhil compare` run, ratio and metric ("decode" | "prefill"):
 * the log of the run's median paired ratio and its standard error from the
 * rounds.  key names what was compared (genomes, weights and settings: the
 * caller's text), so runs of the same comparison on a device can be grouped. */
typedef struct sh_comparison_row {
    const char *device, *key, *metric;
    double log_ratio, se;
    int rounds;
} sh_comparison_row;
int sh_db_add_comparison(sh_db *db, const sh_comparison_row *r, sh_err *err);

typedef struct sh_comparison_rec {
    char *key;               /* malloc'd */
    double log_ratio, se;
    int rounds;
    char created_at[32];
} sh_comparison_rec;
void sh_comparison_recs_free(sh_comparison_rec *c, int n);
/* Stored comparisons of a device for one metric, oldest first. */
int sh_db_list_comparisons(sh_db *db, const char *device, const char *metric, sh_comparison_rec **out, int *n,
                           sh_err *err);

#endif
