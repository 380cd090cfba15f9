/* evaluate.c - the search's evaluator: objectives by name, closed-form
 * (analytic) values, device measurement + capability scoring through the
 * devices and capability modules, one stored "search" evaluation per genome
 * and run (reused when present), and the worker threads. */
#include "search/evaluate.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "search/eval_backends.h"

static const char *const OBJ_NAMES[SH_OBJ_KIND_COUNT] = {
    "decode_ms", "prefill_ms", "ttft_ms", "peak_bytes", "params", "cache_bytes", "capability"};

bool sh_obj_maximised(sh_obj_kind k) { return k == SH_OBJ_CAPABILITY; }

static bool obj_is_measured(sh_obj_kind k)
{
    return k == SH_OBJ_DECODE_MS || k == SH_OBJ_PREFILL_MS || k == SH_OBJ_TTFT_MS || k == SH_OBJ_PEAK_BYTES;
}

int sh_objectives_parse(const char *list, sh_objective *out, int *n, sh_err *err)
{
    *n = 0;
    if (!list || !*list)
        return sh_err_set(err, "objectives: empty list (choose from decode_ms, prefill_ms, ttft_ms, "
                               "peak_bytes, params, cache_bytes, capability)");
    if (strlen(list) > 1000)
        return sh_err_set(err, "objectives: list too long");
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (*n >= SH_MAX_OBJ)
            return sh_err_set(err, "objectives: more than %d", SH_MAX_OBJ);
        sh_objective *o = &out[*n];
        memset(o, 0, sizeof *o);
        char *at = strchr(tok, '@');
        if (at) {
            *at = 0;
            if (!at[1] || strlen(at + 1) >= sizeof o->device)
                return sh_err_set(err, "objectives: bad device name after '@' in \"%s\"", tok);
            snprintf(o->device, sizeof o->device, "%s", at + 1);
        }
        int k = -1;
        for (int i = 0; i < SH_OBJ_KIND_COUNT; i++)
            if (!strcmp(tok, OBJ_NAMES[i]))
                k = i;
        if (k < 0)
            return sh_err_set(err, "objectives: unknown objective \"%.64s\" (choose from decode_ms, "
                                   "prefill_ms, ttft_ms, peak_bytes, params, cache_bytes, capability)", tok);
        if (o->device[0] && !obj_is_measured((sh_obj_kind)k))
            return sh_err_set(err, "objectives: %s does not depend on a device (drop \"@%s\")", tok, o->device);
        o->kind = (sh_obj_kind)k;
        snprintf(o->name, sizeof o->name, "%s%s%s", tok, o->device[0] ? "@" : "", o->device);
        for (int i = 0; i < *n; i++)
            if (!strcmp(out[i].name, o->name))
                return sh_err_set(err, "objectives: %s listed twice", o->name);
        (*n)++;
    }
    if (*n == 0)
        return sh_err_set(err, "objectives: empty list");
    return 0;
}

/* ---- analytic values -------------------------------------------------------- */
/* Roofline assumptions for analytic latency estimates (a mid-range CPU core). */
#define ANALYTIC_BYTES_PER_S 10e9
#define ANALYTIC_FLOPS_PER_S 20e9
#define ANALYTIC_PROMPT 512

void sh_search_analytic_values(const sh_space *s, const sh_genome *g, double v[SH_OBJ_KIND_COUNT])
{
    sh_param_count pc;
    sh_genome_params(g, &pc);
    uint64_t ctx = (uint64_t)s->cache_context;
    double weights = (double)sh_genome_weight_bytes(g, SH_DTYPE_F32);
    double cache = (double)sh_genome_kv_bytes(g, ctx, SH_DTYPE_F32) + (double)sh_genome_conv_state_bytes(g);
    double decode_s = (weights + (double)sh_genome_kv_bytes(g, ANALYTIC_PROMPT, SH_DTYPE_F32)) / ANALYTIC_BYTES_PER_S +
                      sh_genome_flops_decode(g, ANALYTIC_PROMPT) / ANALYTIC_FLOPS_PER_S;
    double prefill_s = ANALYTIC_PROMPT * sh_genome_flops_prefill(g, ANALYTIC_PROMPT) / ANALYTIC_FLOPS_PER_S +
                       weights / ANALYTIC_BYTES_PER_S;
    v[SH_OBJ_DECODE_MS] = decode_s * 1e3;
    v[SH_OBJ_PREFILL_MS] = prefill_s * 1e3;
    v[SH_OBJ_TTFT_MS] = (prefill_s + decode_s) * 1e3;
    v[SH_OBJ_PEAK_BYTES] = weights + cache;
    v[SH_OBJ_PARAMS] = (double)pc.total;
    v[SH_OBJ_CACHE_BYTES] = cache;
    v[SH_OBJ_CAPABILITY] = NAN;
}

/* ---- setup --------------------------------------------------------------------- */
static bool needs_capability(const sh_search_eval *e)
{
    for (int i = 0; i < e->n_obj; i++)
        if (e->obj[i].kind == SH_OBJ_CAPABILITY)
            return true;
    return false;
}

static bool uses_cluster(const sh_search_eval *e)
{
    return e->score.spec[0] && needs_capability(e) && e->score.exec.kind != SH_EXEC_LOCAL;
}

/* Successive halving scores the batch (either evaluator; scores computed
 * here by the halving worker, or as batch jobs by the cluster scorer). */
static bool halving_active(const sh_search_eval *e)
{
    return e->score.halving && e->score.spec[0] && needs_capability(e);
}

int sh_search_eval_init(sh_search_eval *e, sh_err *err)
{
    if (needs_capability(e) && !e->score.spec[0])
        return sh_err_set(err, "objectives: capability needs a scorer (--scorer builtin|cmd:...|URL)");
    if (e->mode == SH_EVAL_DEVICE && e->n_devices < 1)
        return sh_err_set(err, "search: no device to measure on");
    if (e->score.halving && !needs_capability(e))
        return sh_err_set(err, "--score-halving: the objectives have no capability to promote on (add capability to --objectives)");
    if (e->score.halving && uses_cluster(e) && !e->score.state_dir[0])
        return sh_err_set(err, "--score-halving with a cluster executor needs --score-state-dir on storage the "
                               "nodes share (default: DIR/cap-state of --results-dir)");
    if (e->score.halving && e->score.rung > 0)
        return sh_err_set(err, "--score-halving and --score-rung: halving chooses each candidate's rung; give one of them");
    if (e->measure.reference[0]) {
        if (e->mode != SH_EVAL_DEVICE)
            return sh_err_set(err, "--reference: the analytic evaluator measures nothing that could drift "
                                   "(it needs --evaluator device)");
        if (e->measure.reference_every < 1)
            return sh_err_set(err, "--every %d: must be at least 1", e->measure.reference_every);
        sh_genome *ref = malloc(sizeof *ref);
        if (!ref)
            return sh_err_set(err, "--reference: out of memory");
        int prc = sh_genome_parse(e->measure.reference, ref, err);
        free(ref);
        if (prc < 0)
            return sh_err_prefix(err, "--reference");
    }
    for (int i = 0; i < e->n_obj; i++) {
        if (!e->obj[i].device[0])
            continue;
        bool found = false;
        for (int d = 0; d < e->n_devices; d++)
            if (!strcmp(e->devices[d], e->obj[i].device))
                found = true;
        if (e->mode == SH_EVAL_DEVICE && !found)
            return sh_err_set(err, "objectives: %s names device \"%s\", which is not among the healthy devices of --devices",
                              e->obj[i].name, e->obj[i].device);
    }
    if (e->jobs < 1)
        e->jobs = 1;
    if (e->jobs > 64)
        e->jobs = 64;
    json_t *s = json_object(), *names = json_array();
    for (int i = 0; i < e->n_obj; i++)
        json_array_append_new(names, json_string(e->obj[i].name));
    json_object_set_new(s, "objectives", names);
    json_object_set_new(s, "evaluator", json_string(e->mode == SH_EVAL_DEVICE ? "device" : "analytic"));
    json_object_set_new(s, "scorer", json_string(e->score.spec));
    if (e->score.tasks[0])
        json_object_set_new(s, "tasks", json_string(e->score.tasks));
    if (e->score.scale > 0)
        json_object_set_new(s, "score_scale", json_real(e->score.scale));
    if (e->score.tokens > 0)
        json_object_set_new(s, "score_tokens", json_integer(e->score.tokens));
    if (e->score.halving)
        json_object_set_new(s, "score_halving", json_true());
    if (e->score.rung > 0)   /* every capability value of the run comes from this rung */
        json_object_set_new(s, "score_rung", json_integer(e->score.rung - 1));
    char *txt = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(s);
    if (!txt || strlen(txt) >= sizeof e->settings_json) {
        free(txt);
        return sh_err_set(err, "search: evaluation settings too long");
    }
    snprintf(e->settings_json, sizeof e->settings_json, "%s", txt);
    free(txt);
    pthread_mutex_init(&e->lock, NULL);
    return 0;
}

void sh_search_eval_destroy(sh_search_eval *e)
{
    if (e->cluster)
        sh_search_backend_cluster_close(e->cluster);
    e->cluster = NULL;
    for (int i = 0; i < 72; i++) {
        sh_db_close(e->worker_db[i]);
        e->worker_db[i] = NULL;
    }
    pthread_mutex_destroy(&e->lock);
}

/* ---- points <-> stored results ---------------------------------------------------- */
char *sh_search_objectives_json(const sh_search_eval *e, const sh_point *p)
{
    json_t *o = json_object();
    for (int i = 0; i < e->n_obj; i++) {
        double v = sh_obj_maximised(e->obj[i].kind) ? -p->f[i] : p->f[i];
        json_object_set_new(o, e->obj[i].name, isfinite(v) ? json_real(v) : json_null());
    }
    if (p->violation > 0)
        json_object_set_new(o, "violation", json_real(p->violation));
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return txt;
}

static int point_from_result(const sh_search_eval *e, const char *result_json, sh_point *p, sh_err *err)
{
    json_error_t je;
    json_t *root = json_loads(result_json ? result_json : "", 0, &je);
    json_t *obj = root ? json_object_get(root, "objectives") : NULL;
    if (!json_is_object(obj)) {
        json_decref(root);
        return sh_err_set(err, "stored search evaluation: result has no \"objectives\" object");
    }
    memset(p, 0, sizeof *p);
    for (int i = 0; i < e->n_obj; i++) {
        json_t *v = json_object_get(obj, e->obj[i].name);
        if (!json_is_number(v)) {
            json_decref(root);
            return sh_err_set(err, "stored search evaluation: objective %s missing", e->obj[i].name);
        }
        double d = json_number_value(v);
        p->f[i] = sh_obj_maximised(e->obj[i].kind) ? -d : d;
    }
    json_t *viol = json_object_get(root, "violation");
    p->violation = json_is_number(viol) ? json_number_value(viol) : 0;
    json_decref(root);
    return 0;
}

int sh_search_eval_lookup(sh_search_eval *e, const sh_genome *g, sh_point *out, char **objectives_json,
                          sh_err *err)
{
    int64_t id;
    char status[16];
    if (sh_db_eval_get_or_create(e->db, e->run_id, sh_genome_hash(g), "", "search", e->settings_json, &id,
                                 status, err) < 0)
        return -1;
    if (strcmp(status, "ok") && strcmp(status, "failed"))
        return sh_err_set(err, "search evaluation %lld is %s", (long long)id, status);
    memset(out, 0, sizeof *out);
    if (!strcmp(status, "failed")) {
        out->failed = true;
    } else {
        sh_eval_rec rec;
        if (sh_db_get_eval(e->db, id, &rec, err) < 0)
            return -1;
        int rc = point_from_result(e, rec.result_json, out, err);
        sh_eval_rec_free(&rec);
        if (rc < 0)
            return -1;
    }
    if (objectives_json)
        *objectives_json = sh_search_objectives_json(e, out);
    return 0;
}

/* True if a measurement the stored search result rests on is unstable now. */
static bool rests_on_unstable(sh_search_eval *e, const char *result_json)
{
    json_t *root = json_loads(result_json ? result_json : "", 0, NULL);
    json_t *v, *ms = json_object_get(root, "measurements");
    const char *device;
    bool unstable = false;
    json_object_foreach(ms, device, v) {
        sh_eval_rec m;
        sh_err ignored;
        /* a row that cannot be read (removed by hand) is not evidence of anything */
        if (!json_is_integer(v) || sh_db_get_eval(e->db, json_integer_value(v), &m, &ignored) < 0)
            continue;
        unstable = !strcmp(m.stability, "unstable");
        sh_eval_rec_free(&m);
        if (unstable)
            break;
    }
    json_decref(root);
    return unstable;
}

int sh_search_stale(sh_search_eval *e, const void *inds, size_t stride, int n, bool *redo, sh_err *err)
{
    int count = 0;
    for (int i = 0; i < n; i++)
        redo[i] = false;
    if (e->mode != SH_EVAL_DEVICE || e->measure.accept_unstable)
        return 0;
    for (int i = 0; i < n; i++) {
        const sh_genome *g = (const sh_genome *)((const unsigned char *)inds + (size_t)i * stride);
        int64_t id;
        char status[16];
        if (sh_db_eval_get_or_create(e->db, e->run_id, sh_genome_hash(g), "", "search", e->settings_json, &id,
                                     status, err) < 0)
            return -1;
        if (strcmp(status, "ok"))
            continue;
        sh_eval_rec rec;
        if (sh_db_get_eval(e->db, id, &rec, err) < 0)
            return -1;
        redo[i] = rests_on_unstable(e, rec.result_json);
        sh_eval_rec_free(&rec);
        if (redo[i]) {
            if (sh_db_eval_reset(e->db, id, err) < 0)
                return -1;
            count++;
        }
    }
    return count;
}

/* ---- one candidate ------------------------------------------------------------------ */
#define HALVING_RUNGS 3     /* the scorer's default rungs: 1/9, 1/3, 1 of the budget */
typedef struct cand_job {
    const sh_genome *g;
    int64_t eval_id;
    sh_point *out;
    double analytic[SH_OBJ_KIND_COUNT];
    double measured[8][SH_OBJ_KIND_COUNT];   /* per device */
    int64_t meas_id[8];     /* per device: the measurement behind measured[] (0: none) */
    double capability;
    int rung;               /* halving: the highest rung scored (-1 = none yet) */
    double ladder[HALVING_RUNGS];   /* halving: capability at each rung scored */
    int continued[HALVING_RUNGS];   /* halving: training step each rung continued from (0 = scratch) */
    int remaining;          /* device parts + scoring still to finish */
    bool failed;
    char error[SH_ERR_MAX + 128];
} cand_job;

typedef struct batch {
    sh_search_eval *e;
    cand_job *jobs;
    int n;
    int next;               /* analytic mode: next job to take */
    int fatal;
    sh_err fatal_err;
    bool stopped;           /* stop requested: cluster jobs cancelled */
} batch;

static void set_fatal(batch *b, const sh_err *err)
{
    pthread_mutex_lock(&b->e->lock);
    if (!b->fatal) {
        b->fatal = 1;
        b->fatal_err = *err;
    }
    pthread_mutex_unlock(&b->e->lock);
}

static bool is_fatal(batch *b)
{
    pthread_mutex_lock(&b->e->lock);
    bool f = b->fatal != 0;
    pthread_mutex_unlock(&b->e->lock);
    return f;
}

static void job_fail(batch *b, cand_job *j, const char *what, const sh_err *err)
{
    pthread_mutex_lock(&b->e->lock);
    if (!j->failed) {
        j->failed = true;
        snprintf(j->error, sizeof j->error, "%.100s: %s", what, err->msg);
    }
    pthread_mutex_unlock(&b->e->lock);
}

static double objective_value(const sh_search_eval *e, const cand_job *j, const sh_objective *o)
{
    if (o->kind == SH_OBJ_CAPABILITY)
        return j->capability;
    if (e->mode == SH_EVAL_ANALYTIC || !obj_is_measured(o->kind))
        return j->analytic[o->kind];
    double worst = -INFINITY;
    for (int d = 0; d < e->n_devices; d++) {
        if (o->device[0] && strcmp(o->device, e->devices[d]))
            continue;
        worst = fmax(worst, j->measured[d][o->kind]);
    }
    return worst;
}

static double worst_measured(const sh_search_eval *e, const cand_job *j, sh_obj_kind k)
{
    if (e->mode != SH_EVAL_DEVICE)
        return NAN;
    double worst = -INFINITY;
    for (int d = 0; d < e->n_devices; d++)
        worst = fmax(worst, j->measured[d][k]);
    return worst;
}

/* Writes the outcome of a finished job to the store and to its point. */
static int finalize(batch *b, sh_db *db, cand_job *j, sh_err *err)
{
    sh_search_eval *e = b->e;
    sh_point *p = j->out;
    memset(p, 0, sizeof *p);
    int rc;
    if (j->failed) {
        p->failed = true;
        rc = sh_db_eval_finish_failed(db, j->eval_id, j->error, err);
    } else {
        json_t *root = json_object(), *obj = json_object(), *vals = json_object();
        for (int i = 0; i < e->n_obj; i++) {
            double v = objective_value(e, j, &e->obj[i]);
            json_object_set_new(obj, e->obj[i].name, json_real(v));
            p->f[i] = sh_obj_maximised(e->obj[i].kind) ? -v : v;
        }
        p->violation = sh_space_violation(e->space, j->analytic[SH_OBJ_PARAMS],
                                          worst_measured(e, j, SH_OBJ_DECODE_MS),
                                          worst_measured(e, j, SH_OBJ_PEAK_BYTES), j->analytic[SH_OBJ_CACHE_BYTES]);
        if (halving_active(e)) {
            /* only top-rung capabilities compete on the front: a lower rung counts
             * as a violation (rung 1 ahead of rung 0) */
            json_object_set_new(root, "capability_rung", json_integer(j->rung));
            json_t *lad = json_array();
            for (int r = 0; r <= j->rung && r < HALVING_RUNGS; r++)
                json_array_append_new(lad, json_pack("{s:i, s:f, s:i}", "rung", r, "capability", j->ladder[r],
                                                     "continued_from_step", j->continued[r]));
            json_object_set_new(root, "capability_ladder", lad);
            if (j->rung < HALVING_RUNGS - 1)
                p->violation += HALVING_RUNGS - 1 - j->rung;
        }
        for (int k = 0; k < SH_OBJ_KIND_COUNT; k++)
            if (isfinite(j->analytic[k]))
                json_object_set_new(vals, OBJ_NAMES[k], json_real(j->analytic[k]));
        json_object_set_new(root, "objectives", obj);
        json_object_set_new(root, "violation", json_real(p->violation));
        if (e->mode == SH_EVAL_DEVICE) {
            /* the measurement behind each device's figures: a later finding
             * that one is unstable makes this evaluation stale (sh_search_stale) */
            json_t *ms = json_object();
            for (int d = 0; d < e->n_devices; d++)
                if (j->meas_id[d] > 0)
                    json_object_set_new(ms, e->devices[d], json_integer(j->meas_id[d]));
            json_object_set_new(root, "measurements", ms);
        }
        json_object_set_new(root, "analytic", vals);
        char *txt = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        if (!txt)
            return sh_err_set(err, "search: out of memory writing a result");
        for (int i = 0; i < e->n_obj; i++)
            if (!isfinite(p->f[i])) {
                free(txt);
                p->failed = true;
                return sh_db_eval_finish_failed(db, j->eval_id, "an objective is not a finite number", err);
            }
        rc = sh_db_eval_finish_ok(db, j->eval_id, txt, NULL, 0, err);
        free(txt);
    }
    if (rc == 0 && e->on_done) {
        pthread_mutex_lock(&e->lock);
        e->on_done(e->on_done_ctx, !p->failed);
        pthread_mutex_unlock(&e->lock);
    }
    return rc;
}

/* Marks one part of job j finished; the thread finishing the last part
 * finalises it. */
static int part_done(batch *b, sh_db *db, cand_job *j, sh_err *err)
{
    pthread_mutex_lock(&b->e->lock);
    int left = --j->remaining;
    pthread_mutex_unlock(&b->e->lock);
    return left == 0 ? finalize(b, db, j, err) : 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* ---- workers ---------------------------------------------------------------------------- */
typedef struct worker {
    batch *b;
    int device;             /* device index, -1 = analytic pool, -2 = scorer, -3 = cluster scorer */
    int slot;               /* index of its connection in e->worker_db    */
    pthread_t tid;
} worker;

/* The worker's own connection, opened on first use (a few retries: another
 * process may hold the file briefly while it switches journal mode). */
static sh_db *worker_connection(sh_search_eval *e, int slot, sh_err *err)
{
    if (e->worker_db[slot])
        return e->worker_db[slot];
    for (int attempt = 0;; attempt++) {
        if (sh_db_open(e->db_path, 0, &e->worker_db[slot], err) == 0)
            return e->worker_db[slot];
        e->worker_db[slot] = NULL;
        if (attempt >= 4)
            return NULL;
        sleep_ms(200 << attempt);
    }
}

static int score_job(batch *b, sh_db *db, cand_job *j)
{
    sh_err err = {{0}};
    double agg;
    if (sh_search_backend_score(db, j->g, &b->e->score, -1, &agg, &err) < 0)
        job_fail(b, j, "capability", &err);
    else
        j->capability = agg;
    return 0;
}

/* The candidates of b that go to rung r (indices into b->jobs, best first):
 * every candidate not failed at r = 0, else the best third (at least one) of
 * those scored at rung r - 1 by non-dominated rank on (capability, params),
 * then capability.  Returns how many. */
static int halving_pick(batch *b, int r, int *idx, int cap)
{
    int n = 0;
    for (int i = 0; i < b->n && n < cap; i++) {
        cand_job *j = &b->jobs[i];
        pthread_mutex_lock(&b->e->lock);
        bool failed = j->failed;
        pthread_mutex_unlock(&b->e->lock);
        if (!failed && j->rung == r - 1)
            idx[n++] = i;
    }
    int keep = r == 0 ? n : (n + 2) / 3;
    if (r > 0 && n > keep) {
        int *rank = malloc((size_t)n * sizeof *rank);
        if (!rank) {
            sh_err err = {{0}};
            sh_err_set(&err, "search: out of memory ranking %d candidates for rung %d", n, r);
            set_fatal(b, &err);
            return 0;
        }
        for (int a = 0; a < n; a++) {
            const cand_job *x = &b->jobs[idx[a]];
            rank[a] = 0;
            for (int c = 0; c < n; c++) {
                const cand_job *y = &b->jobs[idx[c]];
                if (y->capability >= x->capability && y->analytic[SH_OBJ_PARAMS] <= x->analytic[SH_OBJ_PARAMS] &&
                    (y->capability > x->capability || y->analytic[SH_OBJ_PARAMS] < x->analytic[SH_OBJ_PARAMS]))
                    rank[a]++;   /* dominated by c */
            }
        }
        for (int a = 1; a < n; a++)   /* insertion sort: rank, then capability */
            for (int c = a; c > 0; c--) {
                const cand_job *p = &b->jobs[idx[c - 1]], *q = &b->jobs[idx[c]];
                if (rank[c - 1] < rank[c] || (rank[c - 1] == rank[c] && p->capability >= q->capability))
                    break;
                int t = idx[c]; idx[c] = idx[c - 1]; idx[c - 1] = t;
                t = rank[c]; rank[c] = rank[c - 1]; rank[c - 1] = t;
            }
        free(rank);
    }
    return keep;
}

/* After a generation's halving: candidates that stopped below the top rung
 * can never be promoted (a genome is evaluated once per run), so their
 * training states are removed. */
static void halving_drop_states(batch *b)
{
    for (int i = 0; i < b->n; i++) {
        cand_job *j = &b->jobs[i];
        sh_err err = {{0}};
        if (j->rung < HALVING_RUNGS - 1 && sh_search_backend_drop_state(j->g, &b->e->score, &err) < 0)
            job_fail(b, j, "capability (removing training states)", &err);
    }
}

/* Successive halving over the batch (the scorer worker): every candidate at
 * rung 0, then rung by rung the best third of those scored at the rung below
 * (halving_pick) continue to the next rung (the scorer continues their saved
 * training state; the step it continues from is recorded).  Capabilities of
 * different rungs are never compared: each promotion ranks candidates of one
 * rung. */
static void halving_scores(batch *b, sh_db *db)
{
    for (int r = 0; r < HALVING_RUNGS && !is_fatal(b); r++) {
        int idx[4096];
        int keep = halving_pick(b, r, idx, 4096);
        for (int a = 0; a < keep && !is_fatal(b); a++) {
            cand_job *j = &b->jobs[idx[a]];
            sh_err err = {{0}};
            double agg;
            int from = 0;
            if (sh_search_backend_state_step(db, j->g, &b->e->score, r, &from, &err) < 0 ||
                sh_search_backend_score(db, j->g, &b->e->score, r, &agg, &err) < 0) {
                job_fail(b, j, "capability", &err);
                continue;
            }
            j->capability = agg;
            j->rung = r;
            j->ladder[r] = agg;
            j->continued[r] = from;
        }
    }
    if (is_fatal(b))
        return;   /* stopped: the states stay, so a resume continues them */
    halving_drop_states(b);
}

static void analytic_job(batch *b, sh_db *db, cand_job *j)
{
    sh_err err = {{0}};
    if (!uses_cluster(b->e) && sh_db_eval_mark_running(db, j->eval_id, &err) < 0) {
        set_fatal(b, &err);
        return;
    }
    if (b->e->delay_ms > 0)
        sleep_ms(b->e->delay_ms);
    if (uses_cluster(b->e)) {   /* the cluster scorer finishes the other part */
        if (part_done(b, db, j, &err) < 0)
            set_fatal(b, &err);
        return;
    }
    if (halving_active(b->e)) {   /* the halving worker finishes the other part */
        if (part_done(b, db, j, &err) < 0)
            set_fatal(b, &err);
        return;
    }
    if (b->e->score.spec[0] && needs_capability(b->e))
        score_job(b, db, j);
    if (finalize(b, db, j, &err) < 0)
        set_fatal(b, &err);
}

/* ---- the cluster scorer: all of a batch's scores as batch jobs, in flight
 * while the device workers measure ---------------------------------------------------------- */
typedef struct cluster_ctx {
    batch *b;
    sh_db *db;
    int rung;               /* halving: the rung being scored (-1: no halving) */
} cluster_ctx;

static void cluster_done(void *ctx, void *tag, bool ok, double aggregate, const char *error)
{
    cluster_ctx *cc = ctx;
    cand_job *j = tag;
    sh_err err = {{0}};
    if (ok) {
        j->capability = aggregate;
        if (cc->rung >= 0) {
            j->rung = cc->rung;
            j->ladder[cc->rung] = aggregate;
        }
    } else {
        sh_err_set(&err, "%s", error ? error : "failed");
        job_fail(cc->b, j, "capability", &err);
        sh_err_clear(&err);
    }
    if (cc->rung < 0 && part_done(cc->b, cc->db, j, &err) < 0)   /* halving: parts end with the last rung */
        set_fatal(cc->b, &err);
}

static void tick(sh_search_eval *e, const sh_search_jobs *jobs)
{
    pthread_mutex_lock(&e->lock);
    e->jobs_state = *jobs;
    if (e->on_tick)
        e->on_tick(e->on_done_ctx);
    pthread_mutex_unlock(&e->lock);
}

/* Steps the executor until every score added is final (0), or until a stop
 * is requested (the run's jobs are cancelled) or a worker failed (the jobs
 * stay queued for a resume): -1, b fatal. */
static int cluster_wait(batch *b, cluster_ctx *cc)
{
    sh_search_eval *e = b->e;
    sh_err err = {{0}};
    sh_search_jobs jobs = {0};
    for (;;) {
        int open = sh_search_backend_cluster_step(e->cluster, cluster_done, cc, &jobs, &err);
        if (open < 0) {
            set_fatal(b, &err);
            return -1;
        }
        tick(e, &jobs);
        if (open == 0)
            return 0;
        int slices = (int)(sh_search_backend_cluster_poll(e->cluster) * 20);
        for (int s = 0; s < (slices < 1 ? 1 : slices); s++) {
            if (e->stop && *e->stop) {
                sh_err cerr = {{0}};
                sh_search_backend_cluster_cancel(e->cluster, &cerr);
                sh_search_backend_cluster_step(e->cluster, NULL, NULL, &jobs, &cerr);
                tick(e, &jobs);
                pthread_mutex_lock(&e->lock);
                b->stopped = true;
                pthread_mutex_unlock(&e->lock);
                sh_err_set(&err, "search: stopped (the run's scoring jobs were cancelled)%s%s",
                           cerr.msg[0] ? ": " : "", cerr.msg);
                set_fatal(b, &err);
                return -1;
            }
            if (is_fatal(b))
                return -1;
            sleep_ms(50);
        }
    }
}

static int cluster_open(batch *b, sh_db *db)
{
    sh_err err = {{0}};
    if (!b->e->cluster && sh_search_backend_cluster_open(db, &b->e->score, b->e->run_id, &b->e->cluster, &err) < 0) {
        set_fatal(b, &err);
        return -1;
    }
    return 0;
}

static void cluster_scorer(batch *b, sh_db *db)
{
    sh_search_eval *e = b->e;
    sh_err err = {{0}};
    if (cluster_open(b, db) < 0)
        return;
    for (int i = 0; i < b->n; i++)
        if (sh_search_backend_cluster_add(e->cluster, b->jobs[i].g, &e->score, -1, &b->jobs[i], &err) < 0) {
            set_fatal(b, &err);
            return;
        }
    cluster_ctx cc = {b, db, -1};
    cluster_wait(b, &cc);
}

/* Successive halving with the cluster executor: the rungs of halving_scores,
 * each as a round of batch jobs.  A promoted candidate's job continues the
 * training state its rung-below job left in the state directory (on storage
 * the nodes share).  Everything a round needs is in the store or on that
 * storage: after a kill -9, the resumed batch finds the finished rungs' scores
 * stored (same promotions: they are ranked on the stored scores), attaches to
 * the jobs still in the cluster and submits only what never was. */
static void cluster_halving(batch *b, sh_db *db)
{
    sh_search_eval *e = b->e;
    if (cluster_open(b, db) < 0)
        return;
    for (int r = 0; r < HALVING_RUNGS && !is_fatal(b); r++) {
        int idx[4096];
        int keep = halving_pick(b, r, idx, 4096);
        for (int a = 0; a < keep; a++) {
            cand_job *j = &b->jobs[idx[a]];
            sh_err err = {{0}};
            int from = 0;
            if (sh_search_backend_state_step(db, j->g, &e->score, r, &from, &err) < 0) {
                job_fail(b, j, "capability", &err);
                continue;
            }
            j->continued[r] = from;
            if (sh_search_backend_cluster_add(e->cluster, j->g, &e->score, r, j, &err) < 0) {
                set_fatal(b, &err);
                return;
            }
        }
        cluster_ctx cc = {b, db, r};
        if (cluster_wait(b, &cc) < 0)
            return;   /* stopped or failed: the states stay, so a resume continues them */
    }
    if (is_fatal(b))
        return;
    halving_drop_states(b);
    for (int i = 0; i < b->n && !is_fatal(b); i++) {
        sh_err err = {{0}};
        if (part_done(b, db, &b->jobs[i], &err) < 0)
            set_fatal(b, &err);
    }
}

static void device_part(batch *b, sh_db *db, int d, cand_job *j)
{
    sh_err err = {{0}};
    bool skip;
    pthread_mutex_lock(&b->e->lock);
    skip = j->failed;
    pthread_mutex_unlock(&b->e->lock);
    if (!skip) {
        if (d == -2) {
            score_job(b, db, j);
        } else if (sh_search_backend_measure(db, b->e->devices[d], j->g, &b->e->measure, b->e->run_id,
                                             j->measured[d], &j->meas_id[d], &err) < 0) {
            job_fail(b, j, b->e->devices[d], &err);
        }
    }
    if (part_done(b, db, j, &err) < 0)
        set_fatal(b, &err);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    batch *b = w->b;
    sh_err err = {{0}};
    sh_db *db = worker_connection(b->e, w->slot, &err);
    if (!db) {
        set_fatal(b, &err);
        return NULL;
    }
    if (w->device == -3 && halving_active(b->e)) {
        cluster_halving(b, db);
    } else if (w->device == -3) {
        cluster_scorer(b, db);
    } else if (w->device == -1) {
        for (;;) {
            pthread_mutex_lock(&b->e->lock);
            int i = b->fatal ? b->n : b->next++;
            pthread_mutex_unlock(&b->e->lock);
            if (i >= b->n)
                break;
            analytic_job(b, db, &b->jobs[i]);
        }
    } else if (w->device == -2 && halving_active(b->e)) {
        halving_scores(b, db);
        for (int i = 0; i < b->n && !is_fatal(b); i++) {
            sh_err err = {{0}};
            if (part_done(b, db, &b->jobs[i], &err) < 0)
                set_fatal(b, &err);
        }
    } else {
        for (int i = 0; i < b->n && !is_fatal(b); i++)
            device_part(b, db, w->device, &b->jobs[i]);
    }
    return NULL;
}

static int run_workers(batch *b, sh_err *err)
{
    sh_search_eval *e = b->e;
    worker w[72];
    int nw = 0;
    if (e->mode == SH_EVAL_ANALYTIC) {
        int jobs = e->jobs < b->n ? e->jobs : b->n;
        for (int i = 0; i < jobs; i++, nw++)
            w[nw] = (worker){b, -1, nw, 0};
        if (halving_active(e) && !uses_cluster(e)) {
            w[nw] = (worker){b, -2, nw, 0};
            nw++;
        }
    } else {
        for (int d = 0; d < e->n_devices; d++, nw++)
            w[nw] = (worker){b, d, nw, 0};
        if (needs_capability(e) && !uses_cluster(e)) {
            w[nw] = (worker){b, -2, nw, 0};
            nw++;
        }
    }
    if (uses_cluster(e)) {   /* its own connection slot, kept for the run with the executor */
        w[nw] = (worker){b, -3, 71, 0};
        nw++;
    }
    int started = 0;
    for (; started < nw; started++)
        if (pthread_create(&w[started].tid, NULL, worker_main, &w[started]) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(w[i].tid, NULL);
    if (started < nw && !b->fatal)
        return sh_err_set(err, "search: cannot start worker threads");
    if (b->fatal) {
        *err = b->fatal_err;
        e->stopped = b->stopped;
        return -1;
    }
    return 0;
}

/* ---- the batch entry point ------------------------------------------------------------------ */
int sh_search_evaluate(void *ctx, const void *inds, size_t stride, int n, sh_point *out, sh_err *err)
{
    sh_search_eval *e = ctx;
    cand_job *jobs = calloc((size_t)n, sizeof *jobs);
    if (!jobs)
        return sh_err_set(err, "search: out of memory for %d candidates", n);
    batch b = {.e = e, .jobs = jobs};
    int parts = (e->mode == SH_EVAL_DEVICE ? e->n_devices : 0) + (e->mode == SH_EVAL_DEVICE && needs_capability(e));
    if (e->mode == SH_EVAL_ANALYTIC && (uses_cluster(e) || halving_active(e)))
        parts = 2;   /* the analytic values and the cluster's or the halving worker's score */
    e->stopped = false;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const sh_genome *g = (const sh_genome *)((const unsigned char *)inds + (size_t)i * stride);
        int64_t id;
        char status[16];
        if (sh_db_put_genome(e->db, g, err) < 0 ||
            sh_db_eval_get_or_create(e->db, e->run_id, sh_genome_hash(g), "", "search", e->settings_json, &id,
                                     status, err) < 0) {
            rc = -1;
            break;
        }
        if (!strcmp(status, "ok") || !strcmp(status, "failed")) {
            rc = sh_search_eval_lookup(e, g, &out[i], NULL, err);   /* done before: reuse */
            continue;
        }
        cand_job *j = &jobs[b.n++];
        j->g = g;
        j->eval_id = id;
        j->out = &out[i];
        j->remaining = parts;
        j->capability = NAN;
        j->rung = -1;
        sh_search_analytic_values(e->space, g, j->analytic);
        for (int d = 0; d < 8; d++)
            for (int k = 0; k < SH_OBJ_KIND_COUNT; k++)
                j->measured[d][k] = NAN;
        if ((e->mode == SH_EVAL_DEVICE || uses_cluster(e)) && sh_db_eval_mark_running(e->db, id, err) < 0)
            rc = -1;
    }
    if (rc == 0 && b.n > 0)
        rc = run_workers(&b, err);
    free(jobs);
    return rc;
}
