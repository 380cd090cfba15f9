/* score.c - sh_score_genome: looks the question up in the run store, else runs
 * the scorer (built-in synthetic-task suite here; external scorers in
 * score_ext.c) and stores the answer, ok or failed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "evaluator/capability/cap_internal.h"
#include "evaluator/capability/score.h"
#include "evaluator/capability/score_ext.h"

#define DEFAULT_TASKS "mqar,fuzzy_recall,noisy_recall,selective_copy,compression,memorization"

const char *sh_score_builtin_tasks(void) { return DEFAULT_TASKS; }

void sh_score_opts_default(sh_score_opts *o)
{
    memset(o, 0, sizeof *o);
    o->threads = 1;
    o->seed = 1;
    o->size_factor = 1.0;
    o->timeout_s = 600;
    o->retries = 2;
    o->backoff_s = 0.5;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void scale_from_opts(const sh_score_opts *o, cap_scale_cfg *s)
{
    cap_scale_default(s);
    if (o->width > 0) s->width = o->width;
    if (o->max_layers > 0) s->max_layers = o->max_layers;
    if (o->head_dim > 0) s->head_dim = o->head_dim;
    if (o->max_ffn_mult > 0) s->max_ffn_mult = o->max_ffn_mult;
    if (o->max_experts > 0) s->max_experts = o->max_experts;
}

/* Parses the task list into tasks[] (defaults, train size scaled). */
static int parse_tasks(const sh_score_opts *o, cap_task *tasks, int *n, sh_err *err)
{
    const char *list = o->tasks && *o->tasks ? o->tasks : DEFAULT_TASKS;
    char buf[512];
    if (strlen(list) >= sizeof buf) return sh_err_set(err, "capability: task list too long");
    strcpy(buf, list);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        cap_task_kind k;
        if (cap_task_parse_name(tok, &k))
            return sh_err_set(err, "capability: unknown task '%.64s' (known: %s)", tok, DEFAULT_TASKS);
        for (int i = 0; i < *n; i++)
            if (tasks[i].kind == k) return sh_err_set(err, "capability: task '%s' listed twice", tok);
        cap_task_default(k, &tasks[*n]);
        double f = o->size_factor > 0 ? o->size_factor : 1.0;
        int nt = (int)lround(tasks[*n].n_train * f);
        tasks[*n].n_train = nt < 16 ? 16 : nt;
        if (cap_task_check(&tasks[*n], err)) return -1;
        (*n)++;
    }
    if (*n == 0) return sh_err_set(err, "capability: empty task list");
    return 0;
}

static json_t *task_json(const cap_task *t)
{
    json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f}",
                          "name", cap_task_name(t->kind), "vocab", t->vocab, "seq", t->seq,
                          "pairs", t->pairs, "n_train", t->n_train, "n_test", t->n_test,
                          "epochs", t->epochs, "batch", t->batch, "lr", t->lr, "wd", t->wd);
    if (!j) return NULL;
    if (t->kind == CAP_TASK_MQAR || t->kind == CAP_TASK_FUZZY || t->kind == CAP_TASK_NOISY)
        json_object_set_new(j, "min_gap", json_integer(t->min_gap));
    if (t->kind == CAP_TASK_FUZZY) json_object_set_new(j, "motif", json_integer(t->motif));
    if (t->kind == CAP_TASK_NOISY) {
        json_object_set_new(j, "noise_vocab", json_integer(t->noise_vocab));
        json_object_set_new(j, "noise", json_real(t->noise));
    }
    return j;
}

static char *builtin_params_json(const sh_score_opts *o, sh_err *err)
{
    cap_scale_cfg s;
    cap_task tasks[CAP_TASK_COUNT];
    int n;
    scale_from_opts(o, &s);
    if (parse_tasks(o, tasks, &n, err)) return NULL;
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(arr, task_json(&tasks[i]));
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    json_t *root = json_pack("{s:o, s:s, s:{s:i, s:i, s:i, s:f, s:i}, s:{s:f, s:f, s:s}}",
                             "tasks", arr, "seed", seed,
                             "scale", "width", s.width, "head_dim", s.head_dim, "max_layers", s.max_layers,
                             "max_ffn_mult", s.max_ffn_mult, "max_experts", s.max_experts,
                             "trainer", "clip", 1.0, "warmup_frac", 0.05, "optimizer", "adamw(0.9,0.99)+cosine");
    char *out = root ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    if (!out) sh_err_set(err, "capability: out of memory building parameters JSON");
    return out;
}

typedef struct progress_ctx { const sh_score_opts *o; } progress_ctx;

static void train_progress(void *ctx, const char *task, int step, int steps, double loss)
{
    const sh_score_opts *o = ((progress_ctx *)ctx)->o;
    char line[160];
    snprintf(line, sizeof line, "%s: step %d/%d loss %.3f", task, step, steps, loss);
    o->progress(o->progress_ctx, line);
}

static int run_builtin(const sh_genome *g, const sh_score_opts *o, sh_score_rec *rec, sh_err *err)
{
    cap_scale_cfg s;
    cap_task tasks[CAP_TASK_COUNT];
    cap_model_cfg base;
    int n;
    scale_from_opts(o, &s);
    if (parse_tasks(o, tasks, &n, err) || cap_map_genome(g, &s, &base, err)) return -1;
    json_t *scores = json_object();
    double sum = 0;
    progress_ctx pc = {o};
    for (int i = 0; i < n; i++) {
        const cap_task *t = &tasks[i];
        cap_model_cfg cfg = base;
        cfg.V = cap_task_model_vocab(t);
        cfg.T = t->seq;
        cfg.readout = cap_task_readout(t);
        cap_dataset train, test;
        cap_train_result res;
        cap_train_opts to = {.threads = o->threads, .seed = o->seed + 7919u * (uint64_t)t->kind,
                             .epochs = t->epochs, .batch = t->batch, .lr = t->lr, .wd = t->wd,
                             .clip = 1.0, .warmup_frac = 0.05, .task_name = cap_task_name(t->kind),
                             .progress = o->progress ? train_progress : NULL, .progress_ctx = &pc};
        int rc = cap_task_generate(t, o->seed, 0, &train, err);
        if (!rc) {
            rc = cap_task_generate(t, o->seed, 1, &test, err);
            if (!rc) {
                rc = cap_train_and_eval(&cfg, &train, &test, &to, &res, err);
                cap_dataset_free(&test);
            }
            cap_dataset_free(&train);
        }
        if (rc) {
            json_decref(scores);
            return sh_err_prefix(err, "task %s", cap_task_name(t->kind));
        }
        json_object_set_new(scores, cap_task_name(t->kind), json_real(res.accuracy));
        sum += res.accuracy;
        if (o->progress) {
            char line[160];
            snprintf(line, sizeof line, "%s: accuracy %.3f (%.1f s, %.0f examples/s)", cap_task_name(t->kind),
                     res.accuracy, res.seconds, res.examples / (res.seconds > 0 ? res.seconds : 1));
            o->progress(o->progress_ctx, line);
        }
    }
    rec->aggregate = sum / n;
    rec->scores_json = json_dumps(scores, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(scores);
    if (!rec->scores_json) return sh_err_set(err, "capability: out of memory");
    return 0;
}

static int is_builtin(const char *spec) { return !spec || !*spec || !strcmp(spec, "builtin"); }

char *sh_score_params_json(const sh_genome *g, const char *spec, const sh_score_opts *o, sh_err *err)
{
    (void)g;
    if (is_builtin(spec)) return builtin_params_json(o, err);
    if (!strncmp(spec, "cmd:", 4) || !strncmp(spec, "http://", 7) || !strncmp(spec, "https://", 8)) {
        json_t *j = json_pack("{s:s}", "spec", spec);
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(j);
        if (!s) sh_err_set(err, "score: out of memory");
        return s;
    }
    sh_err_set(err, "score: unknown scorer '%.100s' (use builtin, cmd:PROGRAM ARGS, or an http(s):// URL)", spec);
    return NULL;
}

/* The stored scorer name: the spec itself, or for specs longer than the store's
 * column its first 110 characters + '#' + a 64-bit hash of the whole spec (the
 * full spec is kept in the parameters JSON). */
void sh_score_scorer_name(const char *spec, char *out, size_t cap)
{
    if (is_builtin(spec)) { snprintf(out, cap, "builtin"); return; }
    if (strlen(spec) < cap) { snprintf(out, cap, "%s", spec); return; }
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)spec; *p; p++) h = (h ^ *p) * 1099511628211ull;
    snprintf(out, cap, "%.110s#%016llx", spec, (unsigned long long)h);
}

const char *sh_score_version(const char *spec)
{
    return is_builtin(spec) ? SH_SCORER_BUILTIN_VERSION : SH_SCORER_EXTERNAL_VERSION;
}

static int run_scorer(const sh_genome *g, const char *spec, const sh_score_opts *o, sh_score_rec *rec, sh_err *err)
{
    if (is_builtin(spec)) return run_builtin(g, o, rec, err);
    if (!strncmp(spec, "cmd:", 4)) return sh_score_run_cmd(g, spec + 4, o, &rec->scores_json, &rec->aggregate, err);
    return sh_score_run_http(g, spec, o, &rec->scores_json, &rec->aggregate, err);
}

int sh_score_genome(sh_db *db, const sh_genome *g, const char *spec, const sh_score_opts *opts,
                    sh_score_rec *out, sh_err *err)
{
    sh_score_opts defaults;
    if (!opts) { sh_score_opts_default(&defaults); opts = &defaults; }
    memset(out, 0, sizeof *out);
    char name[sizeof out->scorer];
    sh_score_scorer_name(spec, name, sizeof name);
    if (!is_builtin(spec) && strlen(spec) > 8192) return sh_err_set(err, "score: scorer spec longer than 8192 characters");
    if (sh_genome_validate(g, err)) return sh_err_prefix(err, "score");
    const char *version = sh_score_version(spec);
    char *params = sh_score_params_json(g, spec, opts, err);
    if (!params) return -1;
    sh_hash h = sh_genome_hash(g);
    if (!opts->force) {
        sh_err ferr = {{0}};
        if (sh_db_find_score(db, h, name, version, params, out, &ferr) == 0) {
            if (!strcmp(out->status, "ok")) { free(params); return 0; }
            sh_score_rec_free(out);
            memset(out, 0, sizeof *out);
        } else if (ferr.msg[0]) {
            free(params);
            *err = ferr;
            return sh_err_prefix(err, "score");
        }
    }
    if (sh_db_put_genome(db, g, err)) { free(params); return sh_err_prefix(err, "score"); }
    out->genome = h;
    snprintf(out->scorer, sizeof out->scorer, "%s", name);
    snprintf(out->version, sizeof out->version, "%s", version);
    out->params_json = params;
    double t0 = now_s();
    sh_err serr = {{0}};
    int rc = run_scorer(g, spec, opts, out, &serr);
    out->seconds = now_s() - t0;
    if (rc) {
        free(out->scores_json);
        out->scores_json = NULL;
        out->aggregate = 0;
        snprintf(out->status, sizeof out->status, "failed");
        out->error = strdup(serr.msg[0] ? serr.msg : "scorer failed");
    } else {
        snprintf(out->status, sizeof out->status, "ok");
    }
    sh_err perr = {{0}};
    if (sh_db_put_score(db, out, &perr)) {
        *err = perr;
        return sh_err_prefix(err, "score: storing the result");
    }
    if (rc) {
        *err = serr;
        return sh_err_prefix(err, "score %s", name);
    }
    return 0;
}

/* The scorer without the store: what a batch job runs (cluster/).  Fills out
 * (scorer, version, params, status, scores or error, seconds); 0 ok, -1 the
 * scorer failed (out says why), -2 the request itself is invalid. */
int sh_score_compute(const sh_genome *g, const char *spec, const sh_score_opts *opts, sh_score_rec *out, sh_err *err)
{
    sh_score_opts defaults;
    if (!opts) { sh_score_opts_default(&defaults); opts = &defaults; }
    memset(out, 0, sizeof *out);
    if (!is_builtin(spec) && strlen(spec) > 8192) { sh_err_set(err, "score: scorer spec longer than 8192 characters"); return -2; }
    if (sh_genome_validate(g, err)) { sh_err_prefix(err, "score"); return -2; }
    char *params = sh_score_params_json(g, spec, opts, err);
    if (!params) return -2;
    out->genome = sh_genome_hash(g);
    sh_score_scorer_name(spec, out->scorer, sizeof out->scorer);
    snprintf(out->version, sizeof out->version, "%s", sh_score_version(spec));
    out->params_json = params;
    double t0 = now_s();
    sh_err serr = {{0}};
    int rc = run_scorer(g, spec, opts, out, &serr);
    out->seconds = now_s() - t0;
    if (rc) {
        free(out->scores_json);
        out->scores_json = NULL;
        out->aggregate = 0;
        snprintf(out->status, sizeof out->status, "failed");
        out->error = strdup(serr.msg[0] ? serr.msg : "scorer failed");
        *err = serr;
        return -1;
    }
    snprintf(out->status, sizeof out->status, "ok");
    return 0;
}
