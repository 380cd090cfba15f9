/* jobspec.c - the files exchanged with a batch job through the shared results
 * directory (spec in, result out), the job side (`starhil score --in-job`),
 * and the executor settings (command-line options, JSON for a run's config). */
#include "cluster/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#define SPEC_FORMAT "starhil-score-job/1"
#define RESULT_FORMAT "starhil-score-result/1"
#define FILE_MAX (4 * 1024 * 1024)

/* ---- executor settings ---------------------------------------------------------- */
void sh_exec_opts_default(sh_exec_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kind = SH_EXEC_LOCAL;
    o->max_jobs = 4;
    o->max_attempts = 3;
    o->poll_s = 2.0;
}

static int parse_int(const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

/* Paths and names handed to sbatch: printable, no '%' (sbatch expands it in
 * --output), no newline. */
static int check_path(const char *what, const char *p, sh_err *err)
{
    for (const unsigned char *c = (const unsigned char *)p; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == '%')
            return sh_err_set(err, "%s: '%.200s' holds a control character or '%%' (not allowed in job paths)", what, p);
    return 0;
}

int sh_exec_parse_arg(sh_exec_opts *o, const char *opt, const char *val, sh_err *err)
{
    long n;
    if (!strcmp(opt, "--executor")) {
        if (!val) return sh_err_set(err, "--executor needs a value (local or slurm)");
        if (!strcmp(val, "local")) o->kind = SH_EXEC_LOCAL;
        else if (!strcmp(val, "slurm")) o->kind = SH_EXEC_SLURM;
        else return sh_err_set(err, "--executor: expected local or slurm, got '%.64s'", val);
        return 1;
    }
    if (strcmp(opt, "--partition") && strcmp(opt, "--max-jobs") && strcmp(opt, "--max-attempts") &&
        strcmp(opt, "--sbatch-arg") && strcmp(opt, "--results-dir") && strcmp(opt, "--binary") &&
        strcmp(opt, "--poll-interval"))
        return 0;
    if (!val) return sh_err_set(err, "%s needs a value", opt);
    if (!strcmp(opt, "--partition")) {
        if (!*val || strlen(val) >= sizeof o->partition || strspn(val, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,-") != strlen(val))
            return sh_err_set(err, "--partition: '%.64s' is not a partition name (letters, digits, _ . , -)", val);
        snprintf(o->partition, sizeof o->partition, "%s", val);
    } else if (!strcmp(opt, "--max-jobs")) {
        if (parse_int(val, 1, 10000, &n)) return sh_err_set(err, "--max-jobs: expected 1 to 10000, got '%.32s'", val);
        o->max_jobs = (int)n;
    } else if (!strcmp(opt, "--max-attempts")) {
        if (parse_int(val, 1, 100, &n)) return sh_err_set(err, "--max-attempts: expected 1 to 100, got '%.32s'", val);
        o->max_attempts = (int)n;
    } else if (!strcmp(opt, "--sbatch-arg")) {
        if (o->n_sbatch_args >= SH_EXEC_MAX_SBATCH_ARGS)
            return sh_err_set(err, "--sbatch-arg: more than %d", SH_EXEC_MAX_SBATCH_ARGS);
        if (val[0] != '-' || strlen(val) >= sizeof o->sbatch_args[0] || strchr(val, '\n'))
            return sh_err_set(err, "--sbatch-arg: '%.64s' is not one sbatch option (write --sbatch-arg=--time=1:00:00)", val);
        snprintf(o->sbatch_args[o->n_sbatch_args++], sizeof o->sbatch_args[0], "%s", val);
    } else if (!strcmp(opt, "--results-dir")) {
        if (!*val || strlen(val) >= sizeof o->results_dir) return sh_err_set(err, "--results-dir: empty or too long");
        if (check_path("--results-dir", val, err)) return -1;
        snprintf(o->results_dir, sizeof o->results_dir, "%s", val);
    } else if (!strcmp(opt, "--binary")) {
        if (!*val || strlen(val) >= sizeof o->binary) return sh_err_set(err, "--binary: empty or too long");
        if (check_path("--binary", val, err)) return -1;
        snprintf(o->binary, sizeof o->binary, "%s", val);
    } else {
        char *end;
        double d = strtod(val, &end);
        if (!*val || *end || !(d >= 0.05 && d <= 3600))
            return sh_err_set(err, "--poll-interval: expected 0.05 to 3600 seconds, got '%.32s'", val);
        o->poll_s = d;
    }
    return 1;
}

static int mkdir_p(const char *path, sh_err *err)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return sh_err_set(err, "%s: cannot create (%s)", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) && errno != EEXIST) return sh_err_set(err, "%s: cannot create (%s)", buf, strerror(errno));
    return 0;
}

int sh_exec_check(sh_exec_opts *o, const char *db_path, sh_err *err)
{
    if (o->kind == SH_EXEC_LOCAL) return 0;
    if (!o->results_dir[0])
        return sh_err_set(err, "--executor slurm needs --results-dir DIR (a directory the nodes share with this host)");
    if (mkdir_p(o->results_dir, err)) return sh_err_prefix(err, "--results-dir");
    char real[PATH_MAX];
    if (!realpath(o->results_dir, real)) return sh_err_set(err, "--results-dir %.200s: %s", o->results_dir, strerror(errno));
    if (strlen(real) >= sizeof o->results_dir - 64) return sh_err_set(err, "--results-dir: path too long");
    if (check_path("--results-dir", real, err)) return -1;
    snprintf(o->results_dir, sizeof o->results_dir, "%s", real);
    if (access(real, W_OK) != 0) return sh_err_set(err, "--results-dir %.200s: not writable", real);
    if (db_path && strcmp(db_path, ":memory:")) {
        char dbreal[PATH_MAX], dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", db_path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
        if (realpath(dir[0] ? dir : "/", dbreal)) {
            size_t n = strlen(real);
            if (!strncmp(dbreal, real, n) && (dbreal[n] == 0 || dbreal[n] == '/'))
                return sh_err_set(err, "the run database %.200s is inside --results-dir %.200s: keep SQLite on local "
                                       "disk (never on a shared file system)", db_path, real);
        }
    }
    return 0;
}

char *sh_exec_opts_to_json(const sh_exec_opts *o)
{
    json_t *a = json_array();
    for (int i = 0; i < o->n_sbatch_args; i++) json_array_append_new(a, json_string(o->sbatch_args[i]));
    json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:o, s:s, s:s, s:f}", "executor",
                          o->kind == SH_EXEC_SLURM ? "slurm" : "local", "partition", o->partition, "max_jobs",
                          o->max_jobs, "max_attempts", o->max_attempts, "sbatch_args", a, "results_dir",
                          o->results_dir, "binary", o->binary, "poll_s", o->poll_s);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    return s;
}

int sh_exec_opts_from_json(const char *text, sh_exec_opts *o, sh_err *err)
{
    sh_exec_opts_default(o);
    json_error_t je;
    json_t *j = json_loads(text ? text : "", 0, &je);
    if (!json_is_object(j)) { json_decref(j); return sh_err_set(err, "executor settings: not a JSON object"); }
    int rc = 0;
    const char *ex = json_string_value(json_object_get(j, "executor"));
    if (ex && sh_exec_parse_arg(o, "--executor", ex, err) < 0) rc = -1;
    const char *keys[][2] = {{"partition", "--partition"}, {"results_dir", "--results-dir"}, {"binary", "--binary"}};
    for (int i = 0; i < 3 && !rc; i++) {
        const char *v = json_string_value(json_object_get(j, keys[i][0]));
        if (v && *v && sh_exec_parse_arg(o, keys[i][1], v, err) < 0) rc = -1;
    }
    json_t *v;
    if (!rc && json_is_integer(v = json_object_get(j, "max_jobs"))) o->max_jobs = (int)json_integer_value(v);
    if (!rc && json_is_integer(v = json_object_get(j, "max_attempts"))) o->max_attempts = (int)json_integer_value(v);
    if (!rc && json_is_number(v = json_object_get(j, "poll_s"))) o->poll_s = json_number_value(v);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(j, "sbatch_args"), i, a) {
        if (rc) break;
        if (!json_is_string(a) || sh_exec_parse_arg(o, "--sbatch-arg", json_string_value(a), err) < 0) rc = -1;
    }
    if (o->max_jobs < 1 || o->max_jobs > 10000 || o->max_attempts < 1 || o->max_attempts > 100 ||
        !(o->poll_s >= 0.05 && o->poll_s <= 3600))
        rc = sh_err_set(err, "executor settings: values out of range");
    json_decref(j);
    return rc ? sh_err_prefix(err, "executor settings") : 0;
}

/* ---- score options <-> JSON ----------------------------------------------------------
 * Every field of sh_score_opts that changes what is computed goes here; the
 * job side recomputes the parameters JSON from these and refuses to run when
 * it differs from the coordinator's (another starhil version on the nodes). */
char *sh_score_opts_json(const sh_score_opts *o)
{
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    json_t *j = json_pack("{s:i, s:s, s:s?, s:f, s:i, s:i, s:i, s:f, s:s?, s:I, s:f, s:i, s:i, s:f, s:i, s:f, s:s?, s:b, "
                          "s:s?}",
                          "threads", o->threads, "seed", seed, "tasks", o->tasks, "scale", o->scale,
                          "max_layers", o->max_layers, "head_dim", o->head_dim, "max_experts", o->max_experts,
                          "size_factor", o->size_factor, "corpus", o->corpus, "tokens", (json_int_t)o->tokens,
                          "flops", o->flops, "rungs", o->rungs, "rung", o->rung, "timeout_s", o->timeout_s,
                          "retries", o->retries, "backoff_s", o->backoff_s, "token_env", o->token_env,
                          "insecure", o->insecure, "state_dir", o->state_dir);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    return s;
}

static int get_int(json_t *j, const char *k, long lo, long hi, int *out, sh_err *err)
{
    json_t *v = json_object_get(j, k);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return sh_err_set(err, "score options: \"%s\" not an integer in %ld..%ld", k, lo, hi);
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_real(json_t *j, const char *k, double lo, double hi, double *out, sh_err *err)
{
    json_t *v = json_object_get(j, k);
    if (!v) return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi))
        return sh_err_set(err, "score options: \"%s\" not a number in %g..%g", k, lo, hi);
    *out = json_number_value(v);
    return 0;
}

/* strings_out: one malloc'd block holding the tasks, token_env, corpus and
 * state_dir strings the options point into (free it after use).  state_dir
 * (where a rung's job finds the training state of the rung below and leaves
 * its own: successive halving) is not part of the score's parameters. */
int sh_score_opts_from_json(const char *text, sh_score_opts *o, char **strings_out, sh_err *err)
{
    sh_score_opts_default(o);
    *strings_out = NULL;
    json_error_t je;
    json_t *j = json_loads(text ? text : "", JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) { json_decref(j); return sh_err_set(err, "score options: not a JSON object"); }
    int rc = -1;
    double tokens = (double)o->tokens;
    if (get_int(j, "threads", 1, 64, &o->threads, err) || get_real(j, "scale", 0, 1, &o->scale, err) ||
        get_int(j, "max_layers", 0, 64, &o->max_layers, err) || get_int(j, "head_dim", 0, 1024, &o->head_dim, err) ||
        get_int(j, "max_experts", 0, 1024, &o->max_experts, err) || get_int(j, "retries", 0, 100, &o->retries, err) ||
        get_real(j, "size_factor", 0, 1e6, &o->size_factor, err) || get_real(j, "tokens", 0, 1e12, &tokens, err) ||
        get_real(j, "flops", 0, 1e30, &o->flops, err) || get_int(j, "rungs", 0, 16, &o->rungs, err) ||
        get_int(j, "rung", -1, 15, &o->rung, err) ||
        get_real(j, "timeout_s", 0, 1e9, &o->timeout_s, err) || get_real(j, "backoff_s", 0, 1e6, &o->backoff_s, err))
        goto out;
    o->tokens = (long)tokens;
    const char *seed = json_string_value(json_object_get(j, "seed"));
    if (seed) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(seed, &end, 10);
        if (!*seed || *end || errno) { sh_err_set(err, "score options: bad seed '%.32s'", seed); goto out; }
        o->seed = s;
    }
    o->insecure = json_is_true(json_object_get(j, "insecure"));
    const char *tasks = json_string_value(json_object_get(j, "tasks"));
    const char *tok = json_string_value(json_object_get(j, "token_env"));
    const char *corpus = json_string_value(json_object_get(j, "corpus"));
    const char *sdir = json_string_value(json_object_get(j, "state_dir"));
    size_t lt = tasks ? strlen(tasks) + 1 : 0, lk = tok ? strlen(tok) + 1 : 0, lc = corpus ? strlen(corpus) + 1 : 0;
    size_t ls = sdir ? strlen(sdir) + 1 : 0;
    if (lt > 4096 || lk > 256 || lc > 4096 || ls > 4096) {
        sh_err_set(err, "score options: tasks, token_env, corpus or state_dir too long");
        goto out;
    }
    if (sdir && sdir[0] != '/') {
        sh_err_set(err, "score options: state_dir '%.200s' is not an absolute path", sdir);
        goto out;
    }
    char *block = malloc(lt + lk + lc + ls + 1);
    if (!block) { sh_err_set(err, "score options: out of memory"); goto out; }
    if (tasks) { memcpy(block, tasks, lt); o->tasks = block; }
    if (tok) { memcpy(block + lt, tok, lk); o->token_env = block + lt; }
    if (corpus) { memcpy(block + lt + lk, corpus, lc); o->corpus = block + lt + lk; }
    if (sdir) { memcpy(block + lt + lk + lc, sdir, ls); o->state_dir = block + lt + lk + lc; }
    *strings_out = block;
    rc = 0;
out:
    json_decref(j);
    return rc;
}

/* ---- files ---------------------------------------------------------------------------- */
/* Writes text to path through a temporary file in the same directory and a
 * rename, so a reader sees the whole file or none. */
static int write_atomic(const char *path, const char *text, sh_err *err)
{
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return sh_err_set(err, "%s: cannot create (%s)", tmp, strerror(errno));
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            sh_err_set(err, "%s: write failed (%s)", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        sh_err_set(err, "%s: cannot flush (%s)", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        sh_err_set(err, "%s: cannot rename into place (%s)", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Reads a whole file (at most FILE_MAX bytes); malloc'd, NUL-terminated. */
static char *read_file(const char *path, size_t *len, sh_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) { sh_err_set(err, "%s: %s", path, errno == ENOENT ? "missing" : strerror(errno)); return NULL; }
    char *buf = malloc(FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, FILE_MAX + 1, f) : 0;
    fclose(f);
    if (!buf) { sh_err_set(err, "%s: out of memory", path); return NULL; }
    if (n > FILE_MAX) { free(buf); sh_err_set(err, "%s: larger than %d bytes", path, FILE_MAX); return NULL; }
    buf[n] = 0;
    *len = n;
    return buf;
}

int sh_job_spec_write(const char *path, const sh_genome *g, const char *scorer_spec, const sh_score_opts *o,
                      const char *params_json, sh_err *err)
{
    char *text = malloc(SH_GENOME_TEXT_MAX);
    if (!text) return sh_err_set(err, "job spec: out of memory");
    if (sh_genome_format(g, text, SH_GENOME_TEXT_MAX, err)) { free(text); return sh_err_prefix(err, "job spec"); }
    char hex[17];
    sh_hash_hex(sh_genome_hash(g), hex);
    char *opts = sh_score_opts_json(o);
    json_error_t je;
    json_t *params = json_loads(params_json ? params_json : "", 0, &je);
    json_t *optj = opts ? json_loads(opts, 0, &je) : NULL;
    free(opts);
    json_t *j = (params && optj) ? json_pack("{s:s, s:s, s:s, s:s, s:O, s:O}", "format", SPEC_FORMAT, "genome", text,
                                             "genome_hash", hex, "scorer", scorer_spec ? scorer_spec : "builtin",
                                             "params", params, "opts", optj) : NULL;
    free(text);
    json_decref(params);
    json_decref(optj);
    char *s = j ? json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!s) return sh_err_set(err, "job spec %s: cannot build the JSON", path);
    int rc = write_atomic(path, s, err);
    free(s);
    return rc;
}

static int write_result(const char *path, const sh_score_rec *r, bool deterministic, sh_err *err)
{
    char hex[17], host[256] = "";
    sh_hash_hex(r->genome, hex);
    gethostname(host, sizeof host - 1);
    json_error_t je;
    json_t *params = r->params_json ? json_loads(r->params_json, 0, &je) : NULL;
    json_t *scores = r->scores_json ? json_loads(r->scores_json, 0, &je) : NULL;
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:b, s:s}", "format", RESULT_FORMAT, "genome_hash", hex,
                          "scorer", r->scorer, "version", r->version, "status", r->status, "seconds", r->seconds,
                          "deterministic", deterministic, "host", host);
    if (!j) { json_decref(params); json_decref(scores); return sh_err_set(err, "%s: out of memory", path); }
    json_object_set_new(j, "params", params ? params : json_null());
    json_object_set_new(j, "scores", scores ? scores : json_null());
    json_object_set_new(j, "aggregate", !strcmp(r->status, "ok") && isfinite(r->aggregate) ? json_real(r->aggregate) : json_null());
    json_object_set_new(j, "error", r->error ? json_string(r->error) : json_null());
    char *s = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(j);
    if (!s) return sh_err_set(err, "%s: out of memory", path);
    int rc = write_atomic(path, s, err);
    free(s);
    return rc;
}

/* A failure that happened before the scorer ran (unreadable spec...). */
static int fail_early(const char *result_path, const char *scorer, const char *msg, int code)
{
    sh_score_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.scorer, sizeof r.scorer, "%s", scorer ? scorer : "?");
    snprintf(r.version, sizeof r.version, "?");
    snprintf(r.status, sizeof r.status, "failed");
    r.error = (char *)msg;
    sh_err e = {{0}};
    write_result(result_path, &r, code == SH_JOB_EXIT_DETERMINISTIC, &e);
    return code;
}

int sh_job_run(const char *spec_path, const char *result_path, sh_err *err)
{
    size_t len;
    char *text = read_file(spec_path, &len, err);
    if (!text) return fail_early(result_path, NULL, err->msg, SH_JOB_EXIT_TRANSIENT);
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    int code = SH_JOB_EXIT_DETERMINISTIC;
    sh_genome g;
    sh_score_opts o;
    char *strings = NULL, *opts_text = NULL, *params = NULL;
    if (!json_is_object(j) || !json_is_string(json_object_get(j, "format")) ||
        strcmp(json_string_value(json_object_get(j, "format")), SPEC_FORMAT)) {
        sh_err_set(err, "%s: not a %s spec (%s)", spec_path, SPEC_FORMAT, j ? "wrong format field" : je.text);
        goto fail;
    }
    const char *gtext = json_string_value(json_object_get(j, "genome"));
    const char *ghex = json_string_value(json_object_get(j, "genome_hash"));
    const char *scorer = json_string_value(json_object_get(j, "scorer"));
    json_t *want = json_object_get(j, "params");
    if (!gtext || !ghex || !scorer || !json_is_object(want) || !json_is_object(json_object_get(j, "opts"))) {
        sh_err_set(err, "%s: genome, genome_hash, scorer, params or opts missing", spec_path);
        goto fail;
    }
    if (sh_genome_parse(gtext, &g, err)) { sh_err_prefix(err, "%s: genome", spec_path); goto fail; }
    char hex[17];
    sh_hash_hex(sh_genome_hash(&g), hex);
    if (strcmp(hex, ghex)) {
        sh_err_set(err, "%s: genome hashes to %s, the spec says %.16s", spec_path, hex, ghex);
        goto fail;
    }
    opts_text = json_dumps(json_object_get(j, "opts"), JSON_COMPACT);
    if (!opts_text || sh_score_opts_from_json(opts_text, &o, &strings, err)) { sh_err_prefix(err, "%s", spec_path); goto fail; }
    params = sh_score_params_json(&g, scorer, &o, err);
    if (!params) { sh_err_prefix(err, "%s", spec_path); goto fail; }
    json_t *have = json_loads(params, 0, &je);
    bool same = have && json_equal(have, want);
    json_decref(have);
    if (!same) {
        sh_err_set(err, "%s: this starhil computes other score parameters than the coordinator's (another "
                        "starhil version on the nodes?)", spec_path);
        goto fail;
    }
    sh_score_rec r;
    int rc = sh_score_compute(&g, scorer, &o, &r, err);
    if (rc == -2) goto fail;
    /* the built-in trainer is deterministic: its failures are the genome's;
     * an external scorer may fail for reasons of its own */
    bool builtin = !strcmp(scorer, "builtin") || !*scorer;
    code = rc == 0 ? SH_JOB_EXIT_OK : (builtin ? SH_JOB_EXIT_DETERMINISTIC : SH_JOB_EXIT_TRANSIENT);
    sh_err werr = {{0}};
    if (write_result(result_path, &r, code == SH_JOB_EXIT_DETERMINISTIC, &werr)) {
        *err = werr;
        code = SH_JOB_EXIT_TRANSIENT;
    }
    sh_score_rec_free(&r);
    free(params);
    free(opts_text);
    free(strings);
    json_decref(j);
    return code;
fail:
    free(params);
    free(opts_text);
    free(strings);
    json_decref(j);
    return fail_early(result_path, NULL, err->msg, code);
}

int sh_job_result_read(const char *path, sh_hash genome, const char *scorer, const char *version,
                       const char *params_json, sh_score_rec *out, bool *deterministic, sh_err *err)
{
    memset(out, 0, sizeof *out);
    *deterministic = false;
    size_t len;
    char *text = read_file(path, &len, err);
    if (!text) return sh_err_prefix(err, "results file");
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!j) return sh_err_set(err, "results file %s: not valid JSON (%s at line %d; truncated?)", path, je.text, je.line);
    int rc = -1;
    const char *fmt = json_string_value(json_object_get(j, "format"));
    const char *gh = json_string_value(json_object_get(j, "genome_hash"));
    const char *sc = json_string_value(json_object_get(j, "scorer"));
    const char *ver = json_string_value(json_object_get(j, "version"));
    const char *st = json_string_value(json_object_get(j, "status"));
    json_t *params = json_object_get(j, "params");
    if (!json_is_object(j) || !fmt || strcmp(fmt, RESULT_FORMAT) || !st || (strcmp(st, "ok") && strcmp(st, "failed"))) {
        sh_err_set(err, "results file %s: not a %s file", path, RESULT_FORMAT);
        goto out;
    }
    *deterministic = json_is_true(json_object_get(j, "deterministic"));
    const char *error = json_string_value(json_object_get(j, "error"));
    if (!strcmp(st, "failed") && (!gh || !json_is_object(params))) {
        /* the job failed before it knew what it was scoring */
        snprintf(out->status, sizeof out->status, "failed");
        out->error = strdup(error ? error : "failed");
        rc = 0;
        goto out;
    }
    char want[17];
    sh_hash_hex(genome, want);
    json_t *wp = json_loads(params_json ? params_json : "", 0, &je);
    bool same = gh && sc && ver && !strcmp(gh, want) && !strcmp(sc, scorer) && !strcmp(ver, version) && wp &&
                json_equal(wp, params);
    json_decref(wp);
    if (!same) {
        sh_err_set(err, "results file %s: answers another question (genome, scorer, version or parameters differ)", path);
        goto out;
    }
    out->genome = genome;
    snprintf(out->scorer, sizeof out->scorer, "%s", scorer);
    snprintf(out->version, sizeof out->version, "%s", version);
    snprintf(out->status, sizeof out->status, "%s", st);
    json_t *secs = json_object_get(j, "seconds");
    out->seconds = json_is_number(secs) ? json_number_value(secs) : 0;
    out->params_json = strdup(params_json);
    if (!strcmp(st, "ok")) {
        json_t *scores = json_object_get(j, "scores"), *agg = json_object_get(j, "aggregate");
        if (!json_is_object(scores) || !json_is_number(agg) || !isfinite(json_number_value(agg))) {
            sh_score_rec_free(out);
            sh_err_set(err, "results file %s: status ok without scores and a finite aggregate", path);
            goto out;
        }
        out->scores_json = json_dumps(scores, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
        out->aggregate = json_number_value(agg);
    } else {
        out->error = strdup(error ? error : "failed");
    }
    rc = 0;
out:
    json_decref(j);
    return rc;
}
