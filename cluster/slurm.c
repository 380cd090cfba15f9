/* slurm.c - the coordinator side of the Slurm executor (see cluster.h): one
 * batch job per capability score, submitted with `sbatch --parsable`,
 * followed with `squeue --json --states=all` (`sacct --parsable2 --noheader`
 * for jobs the controller has forgotten), cancelled with `scancel`; every
 * command runs as an argv through util/proc.h, never through a shell.  Job
 * attempts live in the run store (runs/ score_jobs), results come back as
 * JSON files in the shared results directory and are stored with
 * sh_db_put_score. */
#include "cluster/cluster.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "util/proc.h"

#define SQUEUE_MAX_OUT (256u * 1024u * 1024u)
#define CMD_TIMEOUT_S 120
#define MAX_QUERY_FAILURES 10

enum phase { PH_WAITING, PH_SUBMITTING, PH_QUEUED, PH_FINAL, PH_CANCELLED };

typedef struct req {
    void *tag;
    struct req *leader;     /* same question already open: share its outcome */
    sh_genome *g;
    char *scorer_spec;
    sh_score_opts so;
    char *so_strings;
    char *params;
    char name[128];
    char version[32];
    sh_hash h;
    char key_hex[17];       /* hash of scorer + version + params, for file names */
    int attempt;            /* number of the current (or next) attempt row */
    int failures;           /* failed attempts in the current chain */
    int64_t row;
    char job_id[32];
    int phase;
    char cluster_state[32];
    bool seen_running;
    char spec_path[1024], result_path[1024], out_path[1024];
    sh_score_rec final;
    bool reported;
} req;

struct sh_cluster {
    sh_db *db;
    sh_exec_opts o;
    int64_t run_id;
    char binary[1024];
    char script[1100];
    char dir[1100];
    req **reqs;
    int n, cap;
    int query_failures;
    sh_cluster_counts counts;
};

/* ---- small helpers ------------------------------------------------------------------ */
static uint64_t fnv(const char *s, uint64_t h)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) h = (h ^ *p) * 1099511628211ull;
    return h;
}

static void req_free(req *r)
{
    if (!r) return;
    free(r->g);
    free(r->scorer_spec);
    free(r->so_strings);
    free(r->params);
    sh_score_rec_free(&r->final);
    free(r);
}

static bool is_open(const req *r) { return r->phase != PH_FINAL && r->phase != PH_CANCELLED; }

/* Runs argv; 0 with *pr filled when it exited 0, else -1 with a message that
 * names the command and quotes the tail of its stderr (pr freed). */
static int run_cmd(char *const argv[], size_t max_out, sh_proc_result *pr, sh_err *err)
{
    sh_proc_opts po = {.timeout_s = CMD_TIMEOUT_S, .max_out = max_out, .max_err = 4096};
    if (sh_proc_run(argv, &po, pr, err)) return sh_err_prefix(err, "%s", argv[0]);
    if (pr->exited && pr->exit_code == 0 && !pr->out_truncated) return 0;
    char how[128];
    sh_proc_describe(pr, how, sizeof how);
    const char *e = pr->err ? pr->err : "";
    size_t el = strlen(e);
    while (el && (e[el - 1] == '\n' || e[el - 1] == ' ')) el--;
    if (pr->out_truncated) sh_err_set(err, "%s: output larger than %zu bytes", argv[0], max_out);
    else sh_err_set(err, "%s failed (%s)%s%.*s", argv[0], how, el ? ": " : "", (int)(el > 400 ? 400 : el), e);
    sh_proc_result_free(pr);
    return -1;
}

/* ---- open / add -------------------------------------------------------------------------- */
static const char JOB_SCRIPT[] =
    "#!/bin/sh\n"
    "# starhil-job.sh - written by starhil (cluster/slurm.c): one capability score\n"
    "# inside a batch job.  Its arguments come from sbatch's argv and are never\n"
    "# spliced into this text: the starhil binary, the spec file, the result file.\n"
    "exec \"$1\" score --in-job \"$2\" --result \"$3\"\n";

static int write_script(const char *path, sh_err *err)
{
    FILE *f = fopen(path, "r");
    if (f) {
        char buf[sizeof JOB_SCRIPT + 8];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        if (n == sizeof JOB_SCRIPT - 1 && !memcmp(buf, JOB_SCRIPT, n)) return 0;
    }
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp, "w");
    if (!f) return sh_err_set(err, "%s: cannot create (%s)", tmp, strerror(errno));
    fputs(JOB_SCRIPT, f);
    if (fclose(f) != 0 || chmod(tmp, 0755) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return sh_err_set(err, "%s: cannot write (%s)", path, strerror(errno));
    }
    return 0;
}

int sh_cluster_open(sh_db *db, const sh_exec_opts *o, int64_t run_id, sh_cluster **out, sh_err *err)
{
    *out = NULL;
    if (o->kind != SH_EXEC_SLURM) return sh_err_set(err, "cluster: executor is not slurm");
    sh_cluster *c = calloc(1, sizeof *c);
    if (!c) return sh_err_set(err, "cluster: out of memory");
    c->db = db;
    c->o = *o;
    c->run_id = run_id;
    if (sh_exec_check(&c->o, sh_db_path(db), err)) goto fail;
    if (c->o.binary[0]) {
        snprintf(c->binary, sizeof c->binary, "%s", c->o.binary);
    } else {
        ssize_t n = readlink("/proc/self/exe", c->binary, sizeof c->binary - 1);
        if (n <= 0) { sh_err_set(err, "cluster: cannot find this program's path (give --binary)"); goto fail; }
        c->binary[n] = 0;
    }
    snprintf(c->script, sizeof c->script, "%s/starhil-job.sh", c->o.results_dir);
    /* one directory per database (run ids and row ids are per database) */
    char dbreal[PATH_MAX], dbdir[1100];
    const char *dbp = sh_db_path(db);
    if (!realpath(dbp, dbreal)) snprintf(dbreal, sizeof dbreal, "%s", dbp);
    char dbhex[17];
    sh_hash_hex(fnv(dbreal, 1469598103934665603ull), dbhex);
    snprintf(dbdir, sizeof dbdir, "%s/db-%.8s", c->o.results_dir, dbhex);
    if (run_id > 0) snprintf(c->dir, sizeof c->dir, "%s/run%lld", dbdir, (long long)run_id);
    else snprintf(c->dir, sizeof c->dir, "%s/scores", dbdir);
    if ((mkdir(dbdir, 0755) && errno != EEXIST) || (mkdir(c->dir, 0755) && errno != EEXIST)) {
        sh_err_set(err, "%s: cannot create (%s)", c->dir, strerror(errno));
        goto fail;
    }
    if (write_script(c->script, err)) goto fail;
    *out = c;
    return 0;
fail:
    free(c);
    return sh_err_prefix(err, "slurm executor");
}

static void set_paths(sh_cluster *c, req *r)
{
    char ghex[17];
    sh_hash_hex(r->h, ghex);
    snprintf(r->spec_path, sizeof r->spec_path, "%s/g%s-%s-a%d.spec.json", c->dir, ghex, r->key_hex, r->attempt);
    snprintf(r->result_path, sizeof r->result_path, "%s/g%s-%s-a%d.result.json", c->dir, ghex, r->key_hex, r->attempt);
    snprintf(r->out_path, sizeof r->out_path, "%s/g%s-%s-a%d.out", c->dir, ghex, r->key_hex, r->attempt);
}

static bool same_key(const req *a, const req *b)
{
    return a->h == b->h && !strcmp(a->name, b->name) && !strcmp(a->version, b->version) && !strcmp(a->params, b->params);
}

int sh_cluster_add(sh_cluster *c, const sh_genome *g, const char *scorer_spec, const sh_score_opts *so, void *tag,
                   sh_err *err)
{
    if (c->n == c->cap) {
        int ncap = c->cap ? c->cap * 2 : 16;
        req **nr = realloc(c->reqs, (size_t)ncap * sizeof *nr);
        if (!nr) return sh_err_set(err, "cluster: out of memory");
        c->reqs = nr;
        c->cap = ncap;
    }
    req *r = calloc(1, sizeof *r);
    if (!r) return sh_err_set(err, "cluster: out of memory");
    const char *spec = scorer_spec && *scorer_spec ? scorer_spec : "builtin";
    char *so_json = sh_score_opts_json(so);
    r->tag = tag;
    r->g = malloc(sizeof *r->g);
    r->scorer_spec = strdup(spec);
    if (!r->g || !r->scorer_spec || !so_json || sh_score_opts_from_json(so_json, &r->so, &r->so_strings, err)) {
        free(so_json);
        req_free(r);
        return err->msg[0] ? -1 : sh_err_set(err, "cluster: out of memory");
    }
    free(so_json);
    *r->g = *g;
    r->params = sh_score_params_json(g, spec, &r->so, err);
    if (!r->params) { req_free(r); return -1; }
    r->h = sh_genome_hash(g);
    sh_score_scorer_name(spec, r->name, sizeof r->name);
    snprintf(r->version, sizeof r->version, "%s", sh_score_version(spec));
    sh_hash_hex(fnv(r->params, fnv(r->version, fnv(r->name, 1469598103934665603ull))), r->key_hex);
    c->reqs[c->n++] = r;
    for (int i = 0; i < c->n - 1; i++)
        if (is_open(c->reqs[i]) && !c->reqs[i]->leader && same_key(c->reqs[i], r)) {
            r->leader = c->reqs[i];
            r->phase = PH_QUEUED;
            return 0;
        }
    /* answered before? */
    sh_err ferr = {{0}};
    sh_score_rec prev;
    if (sh_db_find_score(c->db, r->h, r->name, r->version, r->params, &prev, &ferr) == 0) {
        if (!strcmp(prev.status, "ok")) {
            r->final = prev;
            r->phase = PH_FINAL;
            c->counts.done++;
            return 0;
        }
        sh_score_rec_free(&prev);
    } else if (ferr.msg[0]) {
        *err = ferr;
        return -1;
    }
    /* attempts of this question: attach to one still in the cluster */
    sh_job_rec *rows;
    int n;
    if (sh_db_job_list_key(c->db, r->h, r->name, r->version, r->params, &rows, &n, err)) return -1;
    for (int i = 0; i < n; i++) {
        if (!strcmp(rows[i].state, "ok") || !strcmp(rows[i].state, "failed")) r->failures = 0;
        else if (!strcmp(rows[i].state, "retry")) r->failures++;
    }
    r->attempt = n + 1;
    r->phase = PH_WAITING;
    if (n > 0 && (!strcmp(rows[n - 1].state, "queued") || !strcmp(rows[n - 1].state, "submitting"))) {
        sh_job_rec *last = &rows[n - 1];
        r->attempt = last->attempt;
        r->row = last->id;
        snprintf(r->job_id, sizeof r->job_id, "%s", last->job_id);
        snprintf(r->spec_path, sizeof r->spec_path, "%s", last->spec_path);
        snprintf(r->result_path, sizeof r->result_path, "%s", last->result_path);
        size_t sl = strlen(r->spec_path), xl = strlen(".spec.json");
        if (sl > xl && !strcmp(r->spec_path + sl - xl, ".spec.json"))
            snprintf(r->out_path, sizeof r->out_path, "%.*s.out", (int)(sl - xl), r->spec_path);
        snprintf(r->cluster_state, sizeof r->cluster_state, "%s", last->cluster_state);
        r->phase = !strcmp(last->state, "queued") ? PH_QUEUED : PH_SUBMITTING;
        r->seen_running = !isnan(last->started_at);
    }
    sh_job_recs_free(rows, n);
    return 0;
}

/* ---- outcomes ------------------------------------------------------------------------------ */
static void make_final(sh_cluster *c, req *r, sh_score_rec *rec)
{
    r->final = *rec;
    memset(rec, 0, sizeof *rec);
    r->phase = PH_FINAL;
    if (!strcmp(r->final.status, "ok")) c->counts.done++;
    else c->counts.failed++;
}

/* Stores a failed score (kept out of the front by the caller) and makes r final. */
static int give_up(sh_cluster *c, req *r, const char *why, sh_err *err)
{
    sh_score_rec f;
    memset(&f, 0, sizeof f);
    f.genome = r->h;
    snprintf(f.scorer, sizeof f.scorer, "%s", r->name);
    snprintf(f.version, sizeof f.version, "%s", r->version);
    snprintf(f.status, sizeof f.status, "failed");
    f.params_json = strdup(r->params);
    f.error = strdup(why);
    f.aggregate = NAN;
    if (!f.params_json || !f.error) { sh_score_rec_free(&f); return sh_err_set(err, "cluster: out of memory"); }
    if (sh_db_put_score(c->db, &f, err)) { sh_score_rec_free(&f); return -1; }
    f.aggregate = 0;
    make_final(c, r, &f);
    return 0;
}

static const char *const PENDING_STATES[] = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING",
                                             "SUSPENDED", "STOPPED", "POWER_UP_NODE", "RESV_DEL_HOLD"};
static const char *const FAILED_STATES[] = {"FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL",
                                            "DEADLINE", "OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED"};

static bool in_list(const char *s, const char *const *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, l[i])) return true;
    return false;
}

/* One attempt ended with Slurm state `state` (exit code / signal, -1 unknown). */
static int attempt_ended(sh_cluster *c, req *r, const char *state, int exit_code, int sig, const char *note,
                         sh_err *err)
{
    char how[SH_ERR_MAX + 200];
    if (sig > 0) snprintf(how, sizeof how, "%s (signal %d)", state, sig);
    else if (exit_code >= 0) snprintf(how, sizeof how, "%s (exit %d)", state, exit_code);
    else snprintf(how, sizeof how, "%s", state);
    if (note) snprintf(how + strlen(how), sizeof how - strlen(how), " [%s]", note);
    int code = sig > 0 ? 128 + sig : exit_code;
    sh_score_rec rec;
    bool deterministic = false;
    sh_err rerr = {{0}};
    int rrc = sh_job_result_read(r->result_path, r->h, r->name, r->version, r->params, &rec, &deterministic, &rerr);
    if (rrc == 0 && !strcmp(rec.status, "ok") && !strcmp(state, "COMPLETED")) {
        if (sh_db_put_score(c->db, &rec, err) ||
            sh_db_job_finish(c->db, r->row, "ok", state, code, NULL, err)) {
            sh_score_rec_free(&rec);
            return -1;
        }
        make_final(c, r, &rec);
        return 0;
    }
    char reason[2 * SH_ERR_MAX + 400];
    if (rrc) snprintf(reason, sizeof reason, "%s: %s", how, rerr.msg);
    else if (strcmp(rec.status, "ok")) snprintf(reason, sizeof reason, "%s: %s", how, rec.error ? rec.error : "failed");
    else snprintf(reason, sizeof reason, "%s, though its results file %s says ok", how, r->result_path);
    if (rrc == 0) sh_score_rec_free(&rec);
    bool det = rrc == 0 && deterministic && exit_code == SH_JOB_EXIT_DETERMINISTIC;
    r->failures++;
    if (!det && r->failures < c->o.max_attempts) {
        if (sh_db_job_finish(c->db, r->row, "retry", state, code, reason, err)) return -1;
        c->counts.resubmitted++;
        r->attempt++;
        r->row = 0;
        r->job_id[0] = 0;
        r->seen_running = false;
        r->phase = PH_WAITING;
        return 0;
    }
    if (sh_db_job_finish(c->db, r->row, "failed", state, code, reason, err)) return -1;
    char why[2 * SH_ERR_MAX + 600];
    if (det) snprintf(why, sizeof why, "slurm job %s: %s (deterministic: not retried)", r->job_id, reason);
    else snprintf(why, sizeof why, "slurm job %s, attempt %d of %d: %s", r->job_id, r->failures, c->o.max_attempts, reason);
    return give_up(c, r, why, err);
}

/* The job's name: the attempt's row id and the genome (names are not unique
 * across databases; attaching by name also checks the job's output path). */
static void job_name(const req *r, char *buf, size_t cap)
{
    char ghex[17];
    sh_hash_hex(r->h, ghex);
    snprintf(buf, cap, "starhil-j%lld-%.8s", (long long)r->row, ghex);
}

/* ---- submitting -------------------------------------------------------------------------------- */
static int submit(sh_cluster *c, req *r, sh_err *err)
{
    set_paths(c, r);
    unlink(r->result_path);
    if (sh_job_spec_write(r->spec_path, r->g, r->scorer_spec, &r->so, r->params, err)) return -1;
    sh_job_rec j;
    memset(&j, 0, sizeof j);
    j.run_id = c->run_id;
    j.genome = r->h;
    snprintf(j.scorer, sizeof j.scorer, "%s", r->name);
    snprintf(j.version, sizeof j.version, "%s", r->version);
    snprintf(j.executor, sizeof j.executor, "slurm");
    snprintf(j.state, sizeof j.state, "submitting");
    snprintf(j.spec_path, sizeof j.spec_path, "%s", r->spec_path);
    snprintf(j.result_path, sizeof j.result_path, "%s", r->result_path);
    j.attempt = r->attempt;
    if (sh_db_job_add(c->db, &j, r->params, &r->row, err)) return -1;
    /* the row exists before the job: a coordinator killed right after sbatch
     * finds the job again by this name */
    char name[64], a_name[96], a_out[1100], a_chdir[1200], a_part[160];
    job_name(r, name, sizeof name);
    snprintf(a_name, sizeof a_name, "--job-name=%s", name);
    snprintf(a_out, sizeof a_out, "--output=%s", r->out_path);
    snprintf(a_chdir, sizeof a_chdir, "--chdir=%s", c->dir);
    snprintf(a_part, sizeof a_part, "--partition=%s", c->o.partition);
    char *argv[16 + SH_EXEC_MAX_SBATCH_ARGS];
    int k = 0;
    argv[k++] = "sbatch";
    argv[k++] = "--parsable";
    argv[k++] = a_name;
    argv[k++] = a_out;
    argv[k++] = a_chdir;
    if (c->o.partition[0]) argv[k++] = a_part;
    for (int i = 0; i < c->o.n_sbatch_args; i++) argv[k++] = c->o.sbatch_args[i];
    argv[k++] = c->script;
    argv[k++] = c->binary;
    argv[k++] = r->spec_path;
    argv[k++] = r->result_path;
    argv[k] = NULL;
    sh_proc_result pr;
    sh_err serr = {{0}};
    if (run_cmd(argv, 4096, &pr, &serr)) {
        sh_err ignore = {{0}};
        sh_db_job_finish(c->db, r->row, "failed", "", -1, serr.msg, &ignore);
        *err = serr;
        return -1;
    }
    /* "JOBID" or "JOBID;CLUSTER" */
    const char *out = pr.out ? pr.out : "";
    size_t n = strspn(out, "0123456789_");
    if (n == 0 || n >= sizeof r->job_id || (out[n] && out[n] != ';' && out[n] != '\n')) {
        sh_err_set(err, "sbatch --parsable printed '%.64s', not a job id", out);
        sh_proc_result_free(&pr);
        sh_err ignore = {{0}};
        sh_db_job_finish(c->db, r->row, "failed", "", -1, err->msg, &ignore);
        return -1;
    }
    memcpy(r->job_id, out, n);
    r->job_id[n] = 0;
    sh_proc_result_free(&pr);
    if (sh_db_job_set_submitted(c->db, r->row, r->job_id, err)) return -1;
    snprintf(r->cluster_state, sizeof r->cluster_state, "PENDING");
    r->phase = PH_QUEUED;
    return 0;
}

/* ---- asking the scheduler --------------------------------------------------------------------- */
typedef struct job_info {
    char id[32];
    char name[64];
    char state[32];
    char out[1024];         /* standard_output path ("" if not given) */
    int exit_code, sig;
    double start;
} job_info;

/* A number as 22.05 writes it (plain) or as later versions do ({"set":..,"number":..}). */
static double jnum(json_t *v)
{
    if (json_is_object(v)) {
        json_t *set = json_object_get(v, "set");
        if (set && json_is_false(set)) return NAN;
        v = json_object_get(v, "number");
    }
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void parse_exit(json_t *v, int *code, int *sig)
{
    *code = -1;
    *sig = 0;
    if (json_is_integer(v)) {   /* 22.05: the raw wait status */
        long s = (long)json_integer_value(v);
        if (s & 0x7f) *sig = (int)(s & 0x7f);
        else *code = (int)((s >> 8) & 0xff);
    } else if (json_is_object(v)) {   /* 23.02+: {"status":..., "return_code":..., "signal":{"id":...}} */
        double rc = jnum(json_object_get(v, "return_code"));
        json_t *s = json_object_get(v, "signal");
        double sg = json_is_object(s) ? jnum(json_object_get(s, "id")) : NAN;
        if (isfinite(rc)) *code = (int)rc;
        if (isfinite(sg) && sg > 0) *sig = (int)sg;
    }
}

static int parse_squeue(const char *text, size_t len, job_info **out, int *n, sh_err *err)
{
    *out = NULL;
    *n = 0;
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    json_t *jobs = root ? json_object_get(root, "jobs") : NULL;
    if (!json_is_array(jobs)) {
        json_decref(root);
        return sh_err_set(err, "squeue --json: no \"jobs\" array (%s)", root ? "wrong shape" : je.text);
    }
    size_t cnt = json_array_size(jobs);
    job_info *arr = calloc(cnt ? cnt : 1, sizeof *arr);
    if (!arr) { json_decref(root); return sh_err_set(err, "squeue: out of memory"); }
    size_t i;
    json_t *j;
    int k = 0;
    json_array_foreach(jobs, i, j) {
        job_info *ji = &arr[k];
        double id = jnum(json_object_get(j, "job_id"));
        if (!isfinite(id)) continue;
        snprintf(ji->id, sizeof ji->id, "%.0f", id);
        const char *nm = json_string_value(json_object_get(j, "name"));
        snprintf(ji->name, sizeof ji->name, "%s", nm ? nm : "");
        const char *so = json_string_value(json_object_get(j, "standard_output"));
        snprintf(ji->out, sizeof ji->out, "%s", so ? so : "");
        json_t *st = json_object_get(j, "job_state");
        const char *s = json_is_array(st) ? json_string_value(json_array_get(st, 0)) : json_string_value(st);
        snprintf(ji->state, sizeof ji->state, "%s", s ? s : "UNKNOWN");
        parse_exit(json_object_get(j, "exit_code"), &ji->exit_code, &ji->sig);
        ji->start = jnum(json_object_get(j, "start_time"));
        k++;
    }
    json_decref(root);
    *out = arr;
    *n = k;
    return 0;
}

/* sacct for jobs the controller no longer lists; fills infos for the ones it
 * knows.  -1 (message in err) when sacct cannot answer (no accounting). */
static int ask_sacct(req **missing, int nm, job_info *infos, bool *found, sh_err *err)
{
    char list[8192] = "--jobs=";
    size_t used = strlen(list);
    for (int i = 0; i < nm; i++) {
        size_t l = strlen(missing[i]->job_id);
        if (used + l + 2 >= sizeof list) break;
        if (i) list[used++] = ',';
        memcpy(list + used, missing[i]->job_id, l + 1);
        used += l;
    }
    char *argv[] = {"sacct", "--parsable2", "--noheader", "-X", list, "--format=JobIDRaw,State,ExitCode,Start", NULL};
    sh_proc_result pr;
    if (run_cmd(argv, 16u << 20, &pr, err)) return -1;
    char *save = NULL;
    for (char *line = strtok_r(pr.out ? pr.out : (char *)"", "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[4] = {0};
        int nf = 0;
        for (char *p = line; nf < 4;) {
            f[nf++] = p;
            char *bar = strchr(p, '|');
            if (!bar) break;
            *bar = 0;
            p = bar + 1;
        }
        if (nf < 3) continue;
        for (int i = 0; i < nm; i++) {
            if (found[i] || strcmp(missing[i]->job_id, f[0])) continue;
            job_info *ji = &infos[i];
            snprintf(ji->id, sizeof ji->id, "%s", f[0]);
            snprintf(ji->state, sizeof ji->state, "%.*s", (int)strcspn(f[1], " "), f[1]);
            int code = -1, sig = 0;
            if (sscanf(f[2], "%d:%d", &code, &sig) < 1) code = -1;
            ji->exit_code = code;
            ji->sig = sig;
            ji->start = NAN;
            found[i] = true;
        }
    }
    sh_proc_result_free(&pr);
    return 0;
}

static int observe(sh_cluster *c, req *r, const job_info *ji, sh_err *err)
{
    if (in_list(ji->state, FAILED_STATES, sizeof FAILED_STATES / sizeof FAILED_STATES[0]) ||
        !strcmp(ji->state, "COMPLETED")) {
        snprintf(r->cluster_state, sizeof r->cluster_state, "%s", ji->state);
        return attempt_ended(c, r, ji->state, ji->exit_code, ji->sig, NULL, err);
    }
    bool running = !in_list(ji->state, PENDING_STATES, sizeof PENDING_STATES / sizeof PENDING_STATES[0]);
    if (strcmp(r->cluster_state, ji->state) || (running && !r->seen_running)) {
        double started = running && isfinite(ji->start) && ji->start > 0 ? ji->start : NAN;
        if (running && isnan(started)) started = (double)time(NULL);
        if (sh_db_job_observe(c->db, r->row, ji->state, running ? started : NAN, err)) return -1;
        snprintf(r->cluster_state, sizeof r->cluster_state, "%s", ji->state);
        if (running) r->seen_running = true;
    }
    return 0;
}

/* One squeue call for all jobs in flight.  No --jobs filter: Slurm 22.05
 * ignores filters with --json, and a filter naming a job the controller has
 * forgotten makes later versions fail the whole call; we pick ours out. */
static int query(sh_cluster *c, sh_err *err)
{
    char *argv[] = {"squeue", "--json", "--states=all", NULL};
    sh_proc_result pr;
    sh_err qerr = {{0}};
    if (run_cmd(argv, SQUEUE_MAX_OUT, &pr, &qerr)) {
        /* the controller may be restarting: tolerate a few rounds */
        if (++c->query_failures >= MAX_QUERY_FAILURES) {
            *err = qerr;
            return sh_err_prefix(err, "slurm executor: %d squeue failures in a row", c->query_failures);
        }
        return 0;
    }
    c->query_failures = 0;
    job_info *jobs;
    int nj;
    int rc = parse_squeue(pr.out ? pr.out : "", pr.out_len, &jobs, &nj, err);
    sh_proc_result_free(&pr);
    if (rc) return -1;
    req **missing = calloc((size_t)c->n + 1, sizeof *missing);
    if (!missing) { free(jobs); return sh_err_set(err, "cluster: out of memory"); }
    int nm = 0;
    for (int i = 0; i < c->n && rc == 0; i++) {
        req *r = c->reqs[i];
        if (r->leader || (r->phase != PH_QUEUED && r->phase != PH_SUBMITTING)) continue;
        char name[64];
        job_name(r, name, sizeof name);
        const job_info *hit = NULL;
        for (int k = 0; k < nj; k++) {
            if (r->phase == PH_QUEUED && !strcmp(jobs[k].id, r->job_id)) hit = &jobs[k];
            /* found by its name and output file after a crash between sbatch
             * and the store (the latest such job) */
            if (r->phase == PH_SUBMITTING && !strcmp(jobs[k].name, name) && !strcmp(jobs[k].out, r->out_path) &&
                (!hit || atoll(jobs[k].id) > atoll(hit->id)))
                hit = &jobs[k];
        }
        if (hit && r->phase == PH_SUBMITTING) {
            snprintf(r->job_id, sizeof r->job_id, "%s", hit->id);
            if (sh_db_job_set_submitted(c->db, r->row, r->job_id, err)) { rc = -1; break; }
            r->phase = PH_QUEUED;
        }
        if (hit) rc = observe(c, r, hit, err);
        else if (r->phase == PH_QUEUED) missing[nm++] = r;
        else {
            /* never reached the scheduler: submit again (not a failed attempt) */
            rc = sh_db_job_finish(c->db, r->row, "cancelled", "", -1,
                                  "never reached the scheduler (coordinator stopped before sbatch answered)", err);
            r->attempt++;
            r->row = 0;
            r->phase = PH_WAITING;
        }
    }
    free(jobs);
    if (rc == 0 && nm > 0) {
        job_info *infos = calloc((size_t)nm, sizeof *infos);
        bool *found = calloc((size_t)nm, sizeof *found);
        sh_err aerr = {{0}};
        if (!infos || !found) rc = sh_err_set(err, "cluster: out of memory");
        else if (ask_sacct(missing, nm, infos, found, &aerr) != 0) memset(found, 0, (size_t)nm * sizeof *found);
        for (int i = 0; i < nm && rc == 0; i++) {
            if (found[i]) { rc = observe(c, missing[i], &infos[i], err); continue; }
            /* forgotten by the controller and no accounting: the results file decides */
            struct stat st;
            bool have = stat(missing[i]->result_path, &st) == 0;
            char note[SH_ERR_MAX + 100];
            snprintf(note, sizeof note, "job %s is known to neither squeue nor sacct: %s", missing[i]->job_id,
                     aerr.msg[0] ? aerr.msg : "no record");
            rc = attempt_ended(c, missing[i], have ? "COMPLETED" : "VANISHED", -1, 0, note, err);
        }
        free(infos);
        free(found);
    }
    free(missing);
    return rc;
}

/* ---- the round --------------------------------------------------------------------------------- */
static void count_live(sh_cluster *c)
{
    c->counts.waiting = c->counts.pending = c->counts.running = 0;
    for (int i = 0; i < c->n; i++) {
        const req *r = c->reqs[i];
        if (r->leader || !is_open(r)) continue;
        if (r->phase == PH_WAITING) c->counts.waiting++;
        else if (r->phase == PH_SUBMITTING || !r->seen_running) c->counts.pending++;
        else c->counts.running++;
    }
}

int sh_cluster_step(sh_cluster *c, sh_cluster_done_fn fn, void *ctx, sh_err *err)
{
    int inflight = 0;
    for (int i = 0; i < c->n; i++)
        if (!c->reqs[i]->leader && (c->reqs[i]->phase == PH_QUEUED || c->reqs[i]->phase == PH_SUBMITTING)) inflight++;
    for (int i = 0; i < c->n && inflight < c->o.max_jobs; i++) {
        req *r = c->reqs[i];
        if (r->leader || r->phase != PH_WAITING) continue;
        if (submit(c, r, err)) return sh_err_prefix(err, "slurm executor");
        inflight++;
    }
    if (inflight > 0 && query(c, err)) return -1;
    /* outcomes: followers share their leader's */
    int open = 0, w = 0;
    for (int i = 0; i < c->n; i++) {
        req *r = c->reqs[i];
        if (r->leader && r->leader->phase == PH_FINAL && !r->reported) {
            r->final = r->leader->final;
            r->final.params_json = r->final.params_json ? strdup(r->final.params_json) : NULL;
            r->final.scores_json = r->final.scores_json ? strdup(r->final.scores_json) : NULL;
            r->final.error = r->final.error ? strdup(r->final.error) : NULL;
            r->phase = PH_FINAL;
        }
    }
    for (int i = 0; i < c->n; i++) {
        req *r = c->reqs[i];
        if (r->phase == PH_FINAL && !r->reported) {
            r->reported = true;
            if (fn) fn(ctx, r->tag, &r->final);
        }
    }
    /* drop reported requests nobody unreported follows any more (their
     * reported followers go with them, so no live request points to a freed one) */
    bool *drop = calloc((size_t)c->n + 1, sizeof *drop);
    if (!drop) return sh_err_set(err, "cluster: out of memory");
    for (int i = 0; i < c->n; i++) {
        req *r = c->reqs[i];
        bool followed = false;
        for (int k = 0; k < c->n && !followed; k++)
            followed = c->reqs[k]->leader == r && !c->reqs[k]->reported;
        drop[i] = (r->reported || r->phase == PH_CANCELLED) && !followed;
    }
    for (int i = 0; i < c->n; i++)
        if (!drop[i] && c->reqs[i]->leader)
            for (int k = 0; k < c->n; k++)
                if (drop[k] && c->reqs[k] == c->reqs[i]->leader) c->reqs[i]->leader = NULL;
    for (int i = 0; i < c->n; i++) {
        req *r = c->reqs[i];
        if (drop[i]) { req_free(r); continue; }
        if (is_open(r)) open++;
        c->reqs[w++] = r;
    }
    free(drop);
    c->n = w;
    count_live(c);
    return open;
}

int sh_cluster_cancel(sh_cluster *c, sh_err *err)
{
    char *argv[64];
    int k = 0, rc = 0;
    argv[k++] = "scancel";
    for (int i = 0; i < c->n; i++) {
        req *r = c->reqs[i];
        if (r->leader || !is_open(r)) continue;
        if (r->phase == PH_QUEUED && r->job_id[0]) {
            argv[k++] = r->job_id;
            sh_err ignore = {{0}};
            sh_db_job_finish(c->db, r->row, "cancelled", r->cluster_state, -1,
                             "cancelled by the coordinator (stop requested)", &ignore);
        } else if (r->phase == PH_SUBMITTING) {
            sh_err ignore = {{0}};
            sh_db_job_finish(c->db, r->row, "cancelled", "", -1, "cancelled by the coordinator (stop requested)", &ignore);
        }
        r->phase = PH_CANCELLED;
        if (k == 63) {
            argv[k] = NULL;
            sh_proc_result pr;
            if (run_cmd(argv, 4096, &pr, err) == 0) sh_proc_result_free(&pr);
            else rc = -1;
            k = 1;
        }
    }
    if (k > 1) {
        argv[k] = NULL;
        sh_proc_result pr;
        if (run_cmd(argv, 4096, &pr, err) == 0) sh_proc_result_free(&pr);
        else rc = -1;
    }
    for (int i = 0; i < c->n; i++)
        if (is_open(c->reqs[i])) c->reqs[i]->phase = PH_CANCELLED;
    count_live(c);
    return rc;
}

void sh_cluster_counts_get(const sh_cluster *c, sh_cluster_counts *out) { *out = c->counts; }

double sh_cluster_poll_interval(const sh_cluster *c) { return c->o.poll_s; }

void sh_cluster_close(sh_cluster *c)
{
    if (!c) return;
    for (int i = 0; i < c->n; i++) req_free(c->reqs[i]);
    free(c->reqs);
    free(c);
}
