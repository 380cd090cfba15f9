/* run.c - creating, running and resuming search runs (see run.h). */
#include "search/run.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "measure/measure.h"
#include "search/eval_backends.h"
#include "search/operators.h"

#define STATE_VERSION 1
#define MAX_SEEDS 16

void sh_search_opts_default(sh_search_opts *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->objectives, sizeof o->objectives, "decode_ms,params");
    o->mode = SH_EVAL_DEVICE;
    o->algo = SH_ALGO_NSGA2;
    o->budget = 48;
    o->population = 12;
    o->seed = 1;
    o->jobs = 2;
    sh_exec_opts_default(&o->score.exec);
    o->measure.prompt = 64;
    o->measure.gen = 16;
    /* repetitions are measured 3 at a time until the estimate the search ranks
     * with (SH_DECODE_ESTIMATOR) is known within +-5%, at most 12:
     * candidates of a space differ by far more than that, and 6 repetitions
     * judged on the per-token median's CI left a third of an idle host's
     * measurements unconverged (issue 18) */
    o->measure.reps = 12;
    o->measure.tolerance = 0.05;
    o->measure.threads = 1;
    snprintf(o->measure.wtype, sizeof o->measure.wtype, "%s", SH_WTYPE_SEARCH);
    o->measure.settle_rounds = 1;     /* a search measures many candidates: wait less */
    o->measure.settle_max_s = 15;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- configuration <-> JSON ----------------------------------------------------- */
static char *config_to_json(const sh_search_opts *o, const char *space_json, sh_err *err)
{
    json_error_t je;
    json_t *space = json_loads(space_json, JSON_REJECT_DUPLICATES, &je);
    if (!space) {
        sh_err_set(err, "search space: invalid JSON: %s", je.text);
        return NULL;
    }
    json_t *c = json_object();
    json_object_set_new(c, "kind", json_string("search"));
    json_object_set_new(c, "space", space);
    json_object_set_new(c, "devices", json_string(o->devices));
    json_object_set_new(c, "scorer", json_string(o->score.spec));
    json_object_set_new(c, "score_tasks", json_string(o->score.tasks));
    json_object_set_new(c, "score_size_factor", json_real(o->score.size_factor));
    json_object_set_new(c, "score_scale", json_real(o->score.scale));
    json_object_set_new(c, "score_tokens", json_integer(o->score.tokens));
    json_object_set_new(c, "score_rung", json_integer(o->score.rung));
    json_object_set_new(c, "score_halving", json_boolean(o->score.halving));
    json_object_set_new(c, "score_state_dir", json_string(o->score.state_dir));
    json_object_set_new(c, "score_threads", json_integer(o->score.threads));
    if (o->score.exec.kind != SH_EXEC_LOCAL) {
        char *ex = sh_exec_opts_to_json(&o->score.exec);
        json_t *exj = ex ? json_loads(ex, 0, &je) : NULL;
        free(ex);
        if (!exj) {
            json_decref(c);
            sh_err_set(err, "search: out of memory writing the executor settings");
            return NULL;
        }
        json_object_set_new(c, "executor", exj);
    }
    json_object_set_new(c, "objectives", json_string(o->objectives));
    json_object_set_new(c, "evaluator", json_string(o->mode == SH_EVAL_DEVICE ? "device" : "analytic"));
    json_object_set_new(c, "algorithm", json_string(sh_moea_algo_name(o->algo)));
    json_object_set_new(c, "budget", json_integer(o->budget));
    json_object_set_new(c, "population", json_integer(o->population));
    json_object_set_new(c, "offspring", json_integer(o->offspring));
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, o->seed);
    json_object_set_new(c, "seed", json_string(seed));
    json_object_set_new(c, "jobs", json_integer(o->jobs));
    json_object_set_new(c, "eval_delay_ms", json_integer(o->delay_ms));
    json_object_set_new(c, "presets", json_boolean(!o->no_presets));
    json_t *m = json_object();
    json_object_set_new(m, "prompt", json_integer(o->measure.prompt));
    json_object_set_new(m, "gen", json_integer(o->measure.gen));
    json_object_set_new(m, "reps", json_integer(o->measure.reps));
    json_object_set_new(m, "tolerance", json_real(o->measure.tolerance));
    json_object_set_new(m, "threads", json_integer(o->measure.threads));
    json_object_set_new(m, "wtype", json_string(o->measure.wtype));
    if (o->measure.accept_unstable) json_object_set_new(m, "accept_unstable", json_true());
    json_object_set_new(m, "settle_rounds", json_integer(o->measure.settle_rounds));
    json_object_set_new(m, "settle_max_s", json_real(o->measure.settle_max_s));
    if (o->measure.busy_wait != 0) json_object_set_new(m, "busy_wait", json_real(o->measure.busy_wait));
    if (o->measure.steal_max != 0) json_object_set_new(m, "steal_max", json_real(o->measure.steal_max));
    if (o->measure.others_max != 0) json_object_set_new(m, "others_max", json_real(o->measure.others_max));
    char dw[16];
    json_object_set_new(m, "decode_warmup", json_string(sh_decode_warmup_text(o->measure.decode_warmup, dw, sizeof dw)));
    if (o->measure.reference[0]) {
        json_object_set_new(m, "reference", json_string(o->measure.reference));
        json_object_set_new(m, "reference_every", json_integer(o->measure.reference_every));
        if (o->measure.reference_paired) json_object_set_new(m, "reference_paired", json_true());
        if (o->measure.drift_tol > 0) json_object_set_new(m, "drift_tol", json_real(o->measure.drift_tol));
        /* absent in runs stored before normalized ranking: they ranked absolute */
        json_object_set_new(m, "rank", json_string(o->measure.rank_absolute ? "absolute" : "normalized"));
    }
    json_object_set_new(c, "measure", m);
    char *txt = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    if (!txt)
        sh_err_set(err, "search: out of memory writing the configuration");
    return txt;
}

static int cfg_str(json_t *c, const char *key, char *out, size_t cap, sh_err *err)
{
    const char *s = json_string_value(json_object_get(c, key));
    if (!s || strlen(s) >= cap)
        return sh_err_set(err, "run configuration: \"%s\" missing or too long", key);
    snprintf(out, cap, "%s", s);
    return 0;
}

static long cfg_int(json_t *c, const char *key, long lo, long hi, long dflt)
{
    json_t *v = json_object_get(c, key);
    if (!json_is_integer(v))
        return dflt;
    long long x = json_integer_value(v);
    return x < lo ? lo : (x > hi ? hi : (long)x);
}

static double cfg_real(json_t *c, const char *key, double lo, double hi, double dflt)
{
    json_t *v = json_object_get(c, key);
    if (!json_is_number(v))
        return dflt;
    double x = json_number_value(v);
    return isfinite(x) && x >= lo && x <= hi ? x : dflt;
}

/* Parses a stored configuration; *space_json_out is malloc'd. */
static int config_from_json(const char *txt, sh_search_opts *o, char **space_json_out, sh_err *err)
{
    json_error_t je;
    json_t *c = json_loads(txt ? txt : "", 0, &je);
    if (!json_is_object(c)) {
        json_decref(c);
        return sh_err_set(err, "run configuration: not a JSON object");
    }
    sh_search_opts_default(o);
    char tmp[64];
    int rc = -1;
    if (!json_is_object(json_object_get(c, "space"))) {
        sh_err_set(err, "run configuration: no search space (is this a search run?)");
        goto out;
    }
    if (cfg_str(c, "devices", o->devices, sizeof o->devices, err) < 0 ||
        cfg_str(c, "scorer", o->score.spec, sizeof o->score.spec, err) < 0 ||
        cfg_str(c, "objectives", o->objectives, sizeof o->objectives, err) < 0 ||
        cfg_str(c, "evaluator", tmp, sizeof tmp, err) < 0)
        goto out;
    o->mode = !strcmp(tmp, "analytic") ? SH_EVAL_ANALYTIC : SH_EVAL_DEVICE;
    if (cfg_str(c, "algorithm", tmp, sizeof tmp, err) < 0)
        goto out;
    if (sh_moea_algo_parse(tmp, &o->algo) < 0) {
        sh_err_set(err, "run configuration: unknown algorithm \"%s\"", tmp);
        goto out;
    }
    o->budget = cfg_int(c, "budget", 1, 100000000, 40);
    o->population = (int)cfg_int(c, "population", 2, 100000, 8);
    o->offspring = (int)cfg_int(c, "offspring", 0, 100000, 0);
    o->jobs = (int)cfg_int(c, "jobs", 1, 64, 1);
    o->delay_ms = (int)cfg_int(c, "eval_delay_ms", 0, 600000, 0);
    o->no_presets = json_is_false(json_object_get(c, "presets"));
    const char *tasks = json_string_value(json_object_get(c, "score_tasks"));
    snprintf(o->score.tasks, sizeof o->score.tasks, "%s", tasks && strlen(tasks) < sizeof o->score.tasks ? tasks : "");
    json_t *sf = json_object_get(c, "score_size_factor");
    o->score.size_factor = json_is_number(sf) && json_number_value(sf) > 0 && json_number_value(sf) <= 100
                               ? json_number_value(sf) : 0;
    o->score.threads = (int)cfg_int(c, "score_threads", 0, 64, 0);
    json_t *ss = json_object_get(c, "score_scale");
    o->score.scale = json_is_number(ss) && json_number_value(ss) > 0 && json_number_value(ss) <= 1 ? json_number_value(ss) : 0;
    o->score.tokens = (long)cfg_int(c, "score_tokens", 0, 1000000000L, 0);
    o->score.rung = (int)cfg_int(c, "score_rung", 0, 8, 0);
    o->score.halving = json_is_true(json_object_get(c, "score_halving"));
    const char *sd = json_string_value(json_object_get(c, "score_state_dir"));
    snprintf(o->score.state_dir, sizeof o->score.state_dir, "%s", sd && strlen(sd) < sizeof o->score.state_dir ? sd : "");
    json_t *ex = json_object_get(c, "executor");
    if (ex) {
        char *ext = json_dumps(ex, JSON_COMPACT);
        int xr = ext ? sh_exec_opts_from_json(ext, &o->score.exec, err) : sh_err_set(err, "out of memory");
        free(ext);
        if (xr < 0) {
            sh_err_prefix(err, "run configuration");
            goto out;
        }
    }
    const char *seed = json_string_value(json_object_get(c, "seed"));
    o->seed = seed ? strtoull(seed, NULL, 10) : 1;
    json_t *m = json_object_get(c, "measure");
    if (json_is_object(m)) {
        o->measure.prompt = (int)cfg_int(m, "prompt", 0, 1 << 20, 64);
        o->measure.gen = (int)cfg_int(m, "gen", 0, 1 << 20, 16);
        o->measure.reps = (int)cfg_int(m, "reps", 0, 10000, 6);
        json_t *tol = json_object_get(m, "tolerance");   /* absent in runs stored before it */
        o->measure.tolerance = json_is_number(tol) && json_number_value(tol) > 0 && json_number_value(tol) < 1
                                   ? json_number_value(tol) : 0.05;
        o->measure.threads = (int)cfg_int(m, "threads", 0, 1024, 0);
        const char *w = json_string_value(json_object_get(m, "wtype"));
        snprintf(o->measure.wtype, sizeof o->measure.wtype, "%s", w ? w : "");
        o->measure.accept_unstable = json_is_true(json_object_get(m, "accept_unstable"));
        o->measure.settle_rounds = (int)cfg_int(m, "settle_rounds", -1, 100, 1);
        json_t *sm = json_object_get(m, "settle_max_s");
        o->measure.settle_max_s = json_is_number(sm) && json_number_value(sm) > 0 && json_number_value(sm) < 86400
                                      ? json_number_value(sm) : 15;
        /* absent in runs stored before them: measure.h's defaults */
        o->measure.busy_wait = cfg_real(m, "busy_wait", -1, 1e6, 0);
        o->measure.steal_max = cfg_real(m, "steal_max", -1, 1e6, 0);
        o->measure.others_max = cfg_real(m, "others_max", -1, 1e6, 0);
        /* absent in runs stored before it: they measured without a warm-up */
        json_t *dw = json_object_get(m, "decode_warmup");
        if (!dw) o->measure.decode_warmup = -1;
        else if (!json_is_string(dw) || sh_decode_warmup_parse(json_string_value(dw), &o->measure.decode_warmup, err)) {
            if (!json_is_string(dw)) sh_err_set(err, "not a string");
            sh_err_prefix(err, "run configuration: measure.decode_warmup");
            goto out;
        }
        json_t *ref = json_object_get(m, "reference");
        if (ref) {
            const char *rt = json_string_value(ref);
            if (!rt || !*rt || strlen(rt) >= sizeof o->measure.reference) {
                sh_err_set(err, "run configuration: measure.reference is not a genome's text (or longer than %zu bytes)",
                           sizeof o->measure.reference - 1);
                goto out;
            }
            snprintf(o->measure.reference, sizeof o->measure.reference, "%s", rt);
            o->measure.reference_every = (int)cfg_int(m, "reference_every", 0, 1000000, 0);
            o->measure.drift_tol = cfg_real(m, "drift_tol", 0, 10, 0);
            json_t *paired = json_object_get(m, "reference_paired");
            if (paired && !json_is_boolean(paired)) {
                sh_err_set(err, "run configuration: measure.reference_paired is not true or false");
                goto out;
            }
            o->measure.reference_paired = json_is_true(paired);
            const char *rank = json_string_value(json_object_get(m, "rank"));
            if (rank && strcmp(rank, "absolute") && strcmp(rank, "normalized")) {
                sh_err_set(err, "run configuration: measure.rank is \"%.32s\" (absolute or normalized)", rank);
                goto out;
            }
            o->measure.rank_absolute = !rank || !strcmp(rank, "absolute");
        }
    }
    *space_json_out = json_dumps(json_object_get(c, "space"), JSON_COMPACT);
    rc = *space_json_out ? 0 : sh_err_set(err, "run configuration: out of memory");
out:
    json_decref(c);
    return rc;
}

/* ---- the evaluator from options ------------------------------------------------------- */
static int split_devices(const char *list, char out[8][64], int *n, sh_err *err)
{
    *n = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list && *list ? list : "local");
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n >= 8)
            return sh_err_set(err, "--devices: more than 8 devices");
        if (!*t || strlen(t) >= 64)
            return sh_err_set(err, "--devices: bad device name \"%.70s\"", t);
        for (int i = 0; i < *n; i++)
            if (!strcmp(out[i], t))
                return sh_err_set(err, "--devices: %s listed twice", t);
        snprintf(out[(*n)++], 64, "%s", t);
    }
    return 0;
}

/* Keeps the healthy devices; error if a named one does not exist or none is healthy. */
static int pick_devices(sh_db *db, sh_search_eval *e, const char *list, sh_err *err)
{
    char names[8][64];
    int n;
    if (split_devices(list, names, &n, err) < 0)
        return -1;
    e->n_devices = 0;
    for (int i = 0; i < n; i++) {
        sh_device_rec d;
        memset(&d, 0, sizeof d);
        if (sh_db_get_device(db, names[i], &d, err) < 0) {
            if (strcmp(names[i], "local") != 0)
                return sh_err_prefix(err, "device %s (add it with `starhil device add`)", names[i]);
            if (sh_search_backend_ensure_local(db, err) < 0 || sh_db_get_device(db, names[i], &d, err) < 0)
                return -1;
        }
        bool healthy = d.healthy;
        sh_device_rec_free(&d);
        if (healthy)
            snprintf(e->devices[e->n_devices++], 64, "%s", names[i]);
    }
    if (e->n_devices == 0)
        return sh_err_set(err, "search: none of the devices (%s) is healthy (see `starhil device check`)",
                          list && *list ? list : "local");
    return 0;
}

static int setup_eval(sh_db *db, const sh_search_opts *o, const sh_space *space, sh_search_eval *e,
                      sh_err *err)
{
    memset(e, 0, sizeof *e);
    e->mode = o->mode;
    e->space = space;
    if (sh_objectives_parse(o->objectives, e->obj, &e->n_obj, err) < 0)
        return -1;
    e->score = o->score;
    e->measure = o->measure;
    e->jobs = o->jobs;
    e->delay_ms = o->delay_ms;
    e->db = db;
    e->db_path = sh_db_path(db);
    if (o->mode == SH_EVAL_DEVICE) {
        if (pick_devices(db, e, o->devices, err) < 0)
            return -1;
    } else if (o->devices[0]) {
        split_devices(o->devices, e->devices, &e->n_devices, err);
    }
    return sh_search_eval_init(e, err);
}

/* ---- create ------------------------------------------------------------------------------- */
int sh_search_create(sh_db *db, const sh_search_opts *o, int64_t *run_id, sh_err *err)
{
    sh_space space;
    const char *sj = o->space_json ? o->space_json : sh_default_space_json;
    if (sh_space_parse(sj, &space, err) < 0)
        return -1;
    if (o->budget < 1 || o->budget > 100000000)
        return sh_err_set(err, "--budget %ld: must be 1 to 100000000", o->budget);
    if (o->population < 2 || o->population > 10000)
        return sh_err_set(err, "--population %d: must be 2 to 10000", o->population);
    sh_search_eval e;
    if (setup_eval(db, o, &space, &e, err) < 0)
        return -1;
    sh_search_eval_destroy(&e);
    char *cfg = config_to_json(o, sj, err);
    if (!cfg)
        return -1;
    char name[160];
    snprintf(name, sizeof name, "%s", o->name[0] ? o->name : "search");
    int rc = sh_db_create_run(db, name, cfg, o->seed, run_id, err);
    free(cfg);
    return rc;
}

int sh_search_find_run(sh_db *db, const char *arg, int64_t *run_id, sh_err *err)
{
    char *end;
    errno = 0;
    long long id = strtoll(arg, &end, 10);
    if (*arg && !*end && errno == 0 && id > 0) {
        sh_run_rec r;
        if (sh_db_get_run(db, id, &r, err) < 0)
            return -1;
        sh_run_rec_free(&r);
        *run_id = id;
        return 0;
    }
    if (sh_db_find_run_by_name(db, arg, run_id, err) < 0) {
        if (!err || !err->msg[0])
            sh_err_set(err, "%s: no run with id or name \"%.128s\"", sh_db_path(db), arg);
        return -1;
    }
    return 0;
}

int sh_search_run_objectives(sh_db *db, int64_t run_id, sh_objective *obj, int *n, sh_err *err)
{
    sh_run_rec r;
    if (sh_db_get_run(db, run_id, &r, err) < 0)
        return -1;
    sh_search_opts o;
    char *space = NULL;
    int rc = config_from_json(r.config_json, &o, &space, err);
    sh_run_rec_free(&r);
    free(space);
    if (rc < 0)
        return -1;
    return sh_objectives_parse(o.objectives, obj, n, err);
}

/* ---- state at generation boundaries ------------------------------------------------------- */
typedef struct driver {
    sh_db *db;
    int64_t run_id;
    sh_search_opts opts;
    sh_space space;
    sh_search_eval eval;
    sh_moea *m;
    bool have_norm;
    double lo[SH_MAX_OBJ], hi[SH_MAX_OBJ];
    sh_search_progress_fn fn;
    void *fn_ctx;
    double t0;
    long fresh;             /* evaluations computed in this session   */
    long base_evals;        /* evaluations at the last boundary       */
    long in_batch;          /* completed in the current batch         */
    bool revisiting;        /* evaluating population members again (revisit_population) */
    long remeasured;        /* ... how many so far, in this session   */
    int last_front;
    double last_hv;
    bool started;           /* generation 0 is complete */
} driver;

static json_t *hash_array(const uint64_t *h, long n)
{
    json_t *a = json_array();
    for (long i = 0; i < n; i++) {
        char hex[17];
        sh_hash_hex(h[i], hex);
        json_array_append_new(a, json_string(hex));
    }
    return a;
}

static char *state_to_json(driver *d)
{
    json_t *s = json_object();
    json_object_set_new(s, "version", json_integer(STATE_VERSION));
    json_object_set_new(s, "gen", json_integer(sh_moea_generation(d->m)));
    json_object_set_new(s, "evals", json_integer(sh_moea_evaluations(d->m)));
    json_object_set_new(s, "stagnant", json_integer(sh_moea_stagnant(d->m)));
    const sh_rng *r = sh_moea_rng(d->m);
    uint64_t rs[4] = {r->s[0], r->s[1], r->s[2], r->s[3]};
    json_object_set_new(s, "rng", hash_array(rs, 4));
    int n = sh_moea_pop_size(d->m);
    uint64_t *pop = malloc((size_t)(n ? n : 1) * sizeof *pop);
    if (!pop) {
        json_decref(s);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        pop[i] = sh_genome_hash(sh_moea_individual(d->m, i));
    json_object_set_new(s, "population", hash_array(pop, n));
    free(pop);
    long n_seen;
    const uint64_t *seen = sh_moea_seen(d->m, &n_seen);
    json_object_set_new(s, "seen", hash_array(seen, n_seen));
    json_t *lo = json_array(), *hi = json_array();
    for (int k = 0; k < d->eval.n_obj && d->have_norm; k++) {
        json_array_append_new(lo, json_real(d->lo[k]));
        json_array_append_new(hi, json_real(d->hi[k]));
    }
    json_object_set_new(s, "hv_lo", lo);
    json_object_set_new(s, "hv_hi", hi);
    char *txt = json_dumps(s, JSON_COMPACT);
    json_decref(s);
    return txt;
}

/* Normalisation for the reported hypervolume, fixed for the whole run: each
 * objective maps its natural best (0 for sizes and latencies, -1 for the
 * negated capability) to 0 and the worst feasible value of generation 0 to 1;
 * the reference point is 1.1 in every objective. */
static void set_norm(driver *d)
{
    int n_obj = d->eval.n_obj;
    for (int k = 0; k < n_obj; k++) {
        d->lo[k] = d->eval.obj[k].kind == SH_OBJ_CAPABILITY ? -1.0 : 0.0;
        d->hi[k] = -INFINITY;
    }
    bool any = false;
    for (int i = 0; i < sh_moea_pop_size(d->m); i++) {
        const sh_point *p = sh_moea_point(d->m, i);
        if (p->failed || p->violation > 0)
            continue;
        any = true;
        for (int k = 0; k < n_obj; k++) {
            d->lo[k] = fmin(d->lo[k], p->f[k]);
            d->hi[k] = fmax(d->hi[k], p->f[k]);
        }
    }
    if (!any)
        return;
    for (int k = 0; k < n_obj; k++)
        if (!(d->hi[k] > d->lo[k]))
            d->hi[k] = d->lo[k] + fmax(fabs(d->lo[k]) * 0.1, 1e-9);
    d->have_norm = true;
}

static double current_hv(driver *d)
{
    if (!d->have_norm)
        set_norm(d);
    if (!d->have_norm || d->eval.n_obj > 3)
        return NAN;
    double ref[SH_MAX_OBJ];
    for (int k = 0; k < SH_MAX_OBJ; k++)
        ref[k] = 1.1;
    return sh_moea_hypervolume(d->m, d->lo, d->hi, ref);
}

static void report(driver *d, bool generation_end)
{
    if (!d->fn)
        return;
    sh_search_progress p = {0};
    p.run_id = d->run_id;
    p.gen = sh_moea_generation(d->m) + (generation_end || !d->started ? 0 : 1);
    p.evals = generation_end ? sh_moea_evaluations(d->m) : d->base_evals + d->in_batch;
    p.budget = d->opts.budget;
    p.front = d->last_front;
    p.hypervolume = d->last_hv;
    p.elapsed_s = now_s() - d->t0;
    p.eta_s = NAN;
    if (d->fresh > 0 && p.evals <= p.budget)
        p.eta_s = p.elapsed_s / (double)d->fresh * (double)(p.budget - p.evals);
    p.generation_end = generation_end;
    p.jobs = d->eval.jobs_state;
    p.remeasured = d->remeasured;
    d->fn(d->fn_ctx, &p);
}

static void on_eval_done(void *ctx, bool ok)
{
    driver *d = ctx;
    (void)ok;
    if (d->revisiting) {   /* the same individuals again: not against the budget */
        d->remeasured++;
    } else {
        d->fresh++;
        d->in_batch++;
    }
    report(d, false);
}

/* After each poll of the cluster executor (under the evaluator's lock). */
static void on_jobs_tick(void *ctx)
{
    report(ctx, false);
}

static int save_boundary(driver *d, sh_err *err)
{
    int n = sh_moea_pop_size(d->m);
    sh_gen_member *mem = calloc((size_t)(n ? n : 1), sizeof *mem);
    char **objs = calloc((size_t)(n ? n : 1), sizeof *objs);
    int rc = -1;
    if (!mem || !objs) {
        sh_err_set(err, "search: out of memory saving generation");
        goto out;
    }
    double hv = current_hv(d);
    int front = 0;
    for (int i = 0; i < n; i++) {
        const sh_point *p = sh_moea_point(d->m, i);
        objs[i] = sh_search_objectives_json(&d->eval, p);
        if (!objs[i]) {
            sh_err_set(err, "search: out of memory saving generation");
            goto out;
        }
        mem[i].genome = sh_genome_hash(sh_moea_individual(d->m, i));
        mem[i].rank = sh_moea_rank(d->m, i);
        mem[i].crowding = sh_moea_crowding(d->m, i);
        mem[i].on_front = mem[i].rank == 0 && !p->failed && p->violation <= 0;
        mem[i].objectives_json = objs[i];
        front += mem[i].on_front;
    }
    char *state = state_to_json(d);
    if (!state) {
        sh_err_set(err, "search: out of memory saving state");
        goto out;
    }
    if (sh_db_begin(d->db, err) < 0) {
        free(state);
        goto out;
    }
    if (sh_db_put_generation(d->db, d->run_id, sh_moea_generation(d->m), mem, n, hv,
                             (int)sh_moea_evaluations(d->m), err) < 0 ||
        sh_db_save_run_state(d->db, d->run_id, state, (int)strlen(state), err) < 0 ||
        sh_db_commit(d->db, err) < 0) {
        sh_db_rollback(d->db);
        free(state);
        goto out;
    }
    free(state);
    d->last_front = front;
    d->last_hv = hv;
    d->base_evals = sh_moea_evaluations(d->m);
    d->in_batch = 0;
    d->started = true;
    report(d, true);
    rc = 0;
out:
    for (int i = 0; i < n && objs; i++)
        free(objs[i]);
    free(objs);
    free(mem);
    return rc;
}

/* ---- restore ------------------------------------------------------------------------------------ */
static int parse_hashes(json_t *a, uint64_t **out, long *n, const char *what, sh_err *err)
{
    if (!json_is_array(a))
        return sh_err_set(err, "run state: \"%s\" is not an array", what);
    *n = (long)json_array_size(a);
    *out = malloc((size_t)(*n ? *n : 1) * sizeof **out);
    if (!*out)
        return sh_err_set(err, "run state: out of memory");
    for (long i = 0; i < *n; i++) {
        const char *s = json_string_value(json_array_get(a, (size_t)i));
        if (!s || sh_hash_parse(s, &(*out)[i]) < 0) {
            free(*out);
            *out = NULL;
            return sh_err_set(err, "run state: bad hash in \"%s\"", what);
        }
    }
    return 0;
}

static int restore_population(driver *d, json_t *s, const sh_rng *rng, sh_err *err)
{
    uint64_t *pop = NULL, *seen = NULL;
    long n_pop = 0, n_seen = 0;
    sh_genome *g = NULL;
    sh_point *pts = NULL;
    int rc = -1;
    if (parse_hashes(json_object_get(s, "population"), &pop, &n_pop, "population", err) < 0 ||
        parse_hashes(json_object_get(s, "seen"), &seen, &n_seen, "seen", err) < 0)
        goto out;
    g = malloc((size_t)(n_pop ? n_pop : 1) * sizeof *g);
    pts = calloc((size_t)(n_pop ? n_pop : 1), sizeof *pts);
    if (!g || !pts) {
        sh_err_set(err, "run state: out of memory");
        goto out;
    }
    for (long i = 0; i < n_pop; i++)
        if (sh_db_get_genome(d->db, pop[i], &g[i], err) < 0)
            goto out;
    /* the stored evaluations (an evaluation set back to pending by
     * revisit_population before a kill is evaluated again here) */
    d->revisiting = true;   /* stored already: only such a member is evaluated, and it is no new evaluation */
    int erc = sh_search_evaluate(&d->eval, g, sizeof *g, (int)n_pop, pts, err);
    d->revisiting = false;
    if (erc < 0)
        goto out;
    json_t *lo = json_object_get(s, "hv_lo"), *hi = json_object_get(s, "hv_hi");
    if (json_array_size(lo) == (size_t)d->eval.n_obj && json_array_size(hi) == (size_t)d->eval.n_obj) {
        for (int k = 0; k < d->eval.n_obj; k++) {
            d->lo[k] = json_number_value(json_array_get(lo, (size_t)k));
            d->hi[k] = json_number_value(json_array_get(hi, (size_t)k));
        }
        d->have_norm = true;
    }
    rc = sh_moea_restore(d->m, (int)json_integer_value(json_object_get(s, "gen")),
                         (long)json_integer_value(json_object_get(s, "evals")),
                         (int)json_integer_value(json_object_get(s, "stagnant")), rng, g, pts, (int)n_pop,
                         seen, n_seen, err);
out:
    free(pop);
    free(seen);
    free(g);
    free(pts);
    return rc;
}

static int restore_state(driver *d, const char *blob, int len, sh_err *err)
{
    json_error_t je;
    json_t *s = json_loadb(blob, (size_t)len, 0, &je);
    if (!json_is_object(s)) {
        json_decref(s);
        return sh_err_set(err, "run state: not a JSON object (%s)", je.text);
    }
    int rc = -1;
    if (json_integer_value(json_object_get(s, "version")) != STATE_VERSION) {
        sh_err_set(err, "run state: unknown version");
        goto out;
    }
    uint64_t *r = NULL;
    long nr = 0;
    if (parse_hashes(json_object_get(s, "rng"), &r, &nr, "rng", err) < 0)
        goto out;
    if (nr != 4) {
        free(r);
        sh_err_set(err, "run state: rng must have 4 words");
        goto out;
    }
    sh_rng rng = {{r[0], r[1], r[2], r[3]}};
    free(r);
    rc = restore_population(d, s, &rng, err);
    if (rc == 0) {
        d->last_front = sh_moea_front_size(d->m);
        d->last_hv = current_hv(d);
        d->base_evals = sh_moea_evaluations(d->m);
        d->started = true;
    }
out:
    json_decref(s);
    return rc;
}

/* ---- run -------------------------------------------------------------------------------------- */
static int start_fresh(driver *d, sh_err *err)
{
    sh_genome *seeds = calloc(MAX_SEEDS, sizeof *seeds);
    if (!seeds)
        return sh_err_set(err, "search: out of memory");
    int n = d->opts.no_presets ? 0 : sh_op_preset_seeds(&d->space, seeds, MAX_SEEDS);
    sh_moea_evaluator ev = {&d->eval, sh_search_evaluate};
    int rc = sh_moea_init(d->m, seeds, n, &ev, err);
    free(seeds);
    if (rc < 0)
        return d->eval.stopped ? 1 : -1;
    return save_boundary(d, err);
}

/* Population members whose figures rest on a measurement marked unstable
 * since they were evaluated (sh_search_stale: a later reference showed the
 * board was slower then) are measured again and the population is ranked
 * with the new figures, before offspring are made from it.  Returns how many
 * were, or -1. */
static int revisit_population(driver *d, const sh_moea_evaluator *ev, sh_err *err)
{
    int n = sh_moea_pop_size(d->m);
    if (n <= 0 || d->eval.mode != SH_EVAL_DEVICE)
        return 0;
    bool *redo = calloc((size_t)n, sizeof *redo);
    sh_genome *g = malloc((size_t)n * sizeof *g);
    int k = -1;
    if (!redo || !g) {
        sh_err_set(err, "search: out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++)
        memcpy(&g[i], sh_moea_individual(d->m, i), sizeof *g);
    k = sh_search_stale(&d->eval, g, sizeof *g, n, redo, err);
    if (k > 0) {
        d->revisiting = true;
        if (sh_moea_reevaluate(d->m, redo, ev, err) < 0)
            k = -1;
        d->revisiting = false;
    }
out:
    free(redo);
    free(g);
    return k;
}

static int run_loop(driver *d, const sh_run_rec *r, const volatile int *stop, sh_err *err)
{
    if (r->state && r->state_len > 0) {
        if (restore_state(d, r->state, r->state_len, err) < 0)
            return -1;
    } else {
        int rc = start_fresh(d, err);
        if (rc != 0)
            return rc;
    }
    sh_moea_evaluator ev = {&d->eval, sh_search_evaluate};
    while (!sh_moea_done(d->m)) {
        if (stop && *stop)
            return 1;
        if (revisit_population(d, &ev, err) < 0)
            return d->eval.stopped ? 1 : -1;
        if (sh_moea_step(d->m, &ev, err) < 0)
            return d->eval.stopped ? 1 : -1;
        if (save_boundary(d, err) < 0)
            return -1;
    }
    return 0;
}

int sh_search_run(sh_db *db, int64_t run_id, const volatile int *stop, sh_search_progress_fn fn, void *ctx,
                  sh_err *err)
{
    sh_run_rec r;
    if (sh_db_get_run(db, run_id, &r, err) < 0)
        return -1;
    driver *d = calloc(1, sizeof *d);
    char *space_json = NULL;
    int rc = -1;
    bool eval_ready = false;
    if (!d) {
        sh_err_set(err, "search: out of memory");
        goto out;
    }
    d->db = db;
    d->run_id = run_id;
    d->fn = fn;
    d->fn_ctx = ctx;
    d->t0 = now_s();
    d->last_hv = NAN;
    if (config_from_json(r.config_json, &d->opts, &space_json, err) < 0 ||
        sh_space_parse(space_json, &d->space, err) < 0 ||
        setup_eval(db, &d->opts, &d->space, &d->eval, err) < 0)
        goto out;
    eval_ready = true;
    d->eval.run_id = run_id;
    d->eval.on_done = on_eval_done;
    d->eval.on_done_ctx = d;
    d->eval.on_tick = on_jobs_tick;
    d->eval.stop = stop;
    sh_moea_config mc = {0};
    mc.algo = d->opts.algo;
    mc.n_obj = d->eval.n_obj;
    mc.pop_size = d->opts.population;
    mc.offspring = d->opts.offspring;
    mc.budget = d->opts.budget;
    mc.crossover_prob = 0.9;
    mc.mutation_prob = 1.0;
    mc.seed = d->opts.seed;
    sh_moea_ops ops;
    sh_genome_ops(&d->space, &ops);
    if (sh_moea_new(&mc, &ops, &d->m, err) < 0)
        goto out;
    if (strcmp(r.status, "running") && sh_db_set_run_status(db, run_id, "running", err) < 0)
        goto out;
    rc = run_loop(d, &r, stop, err);
    if (rc == 0)
        rc = sh_db_set_run_status(db, run_id, "done", err);
    else if (rc == 1)
        rc = sh_db_set_run_status(db, run_id, "stopped", err) < 0 ? -1 : 1;
    else
        sh_db_set_run_status(db, run_id, "failed", NULL);
out:
    if (d) {
        if (eval_ready)
            sh_search_eval_destroy(&d->eval);
        if (d->opts.mode == SH_EVAL_DEVICE && eval_ready)
            sh_search_backend_shutdown();
        sh_moea_free(d->m);
    }
    free(d);
    free(space_json);
    sh_run_rec_free(&r);
    return rc;
}
