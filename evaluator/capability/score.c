/* score.c - sh_score_genome: looks the question up in the run store, else runs
 * the scorer (built-in synthetic-task suite here; external scorers in
 * score_ext.c) and stores the answer, ok or failed. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "evaluator/capability/cap_internal.h"
#include "evaluator/capability/cap_model.h"
#include "evaluator/capability/score.h"
#include "evaluator/capability/score_ext.h"

#define ALL_TASKS "lm,mqar,fuzzy_recall,noisy_recall,selective_copy,compression,memorization"
#define DEFAULT_TASKS "lm"
#define DEFAULT_TOKENS 327680L
#define DEFAULT_RUNGS 3
#define RUNG_ETA 3
#define DECAY_FRAC 0.2

static double rung_fraction(int rung, int rungs);
static int is_builtin(const char *spec);

const char *sh_score_builtin_tasks(void) { return ALL_TASKS; }

void sh_score_opts_default(sh_score_opts *o)
{
    assert(CAP_DEFAULT_SCALE == SH_SCORE_DEFAULT_SCALE);   /* one default scale, two headers */
    memset(o, 0, sizeof *o);
    o->threads = 1;
    o->seed = 1;
    o->size_factor = 1.0;
    o->rung = -1;
    o->timeout_s = 600;
    o->retries = 2;
    o->backoff_s = 0.5;
}

int sh_score_rungs(const sh_score_opts *o) { return o->rungs > 0 ? o->rungs : DEFAULT_RUNGS; }
int sh_score_rung(const sh_score_opts *o)
{
    int R = sh_score_rungs(o);
    return o->rung < 0 || o->rung >= R ? R - 1 : o->rung;
}

double sh_score_rung_fraction(int rung, int rungs) { return rung_fraction(rung, rungs); }

static double rung_fraction(int rung, int rungs)
{
    return pow((double)RUNG_ETA, (double)(rung - (rungs - 1)));
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
    if (o->scale > 0) s->scale = o->scale;
    if (o->max_layers > 0) s->max_layers = o->max_layers;
    if (o->head_dim > 0) s->head_dim = o->head_dim;
    if (o->max_experts > 0) s->max_experts = o->max_experts;
}

/* The parsed task list, with the corpus when "lm" is in it. */
typedef struct suite {
    cap_task tasks[CAP_TASK_COUNT];
    int n;
    cap_corpus corpus;
    bool has_lm;
} suite;

static void suite_free(suite *s) { cap_corpus_free(&s->corpus); }

static int parse_tasks(const sh_score_opts *o, suite *su, sh_err *err)
{
    memset(su, 0, sizeof *su);
    const char *list = o->tasks && *o->tasks ? o->tasks : DEFAULT_TASKS;
    char buf[512];
    if (strlen(list) >= sizeof buf) return sh_err_set(err, "capability: task list too long");
    strcpy(buf, list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        cap_task_kind k;
        if (cap_task_parse_name(tok, &k))
            return sh_err_set(err, "capability: unknown task '%.64s' (known: %s)", tok, ALL_TASKS);
        for (int i = 0; i < su->n; i++)
            if (su->tasks[i].kind == k) return sh_err_set(err, "capability: task '%s' listed twice", tok);
        cap_task *t = &su->tasks[su->n];
        cap_task_default(k, t);
        if (k == CAP_TASK_LM) {
            long tokens = o->tokens > 0 ? o->tokens : DEFAULT_TOKENS;
            long per = (long)t->seq * t->batch, steps = (tokens + per - 1) / per;
            if (tokens < 1 || steps > 1000000L / t->batch)
                return sh_err_set(err, "capability task lm: token budget %ld out of range 1..%ld", tokens,
                                  1000000L * t->seq);
            t->n_train = (int)(steps * t->batch);
            su->has_lm = true;
        } else {
            double f = o->size_factor > 0 ? o->size_factor : 1.0;
            int nt = (int)lround(t->n_train * f);
            t->n_train = nt < 16 ? 16 : nt;
        }
        su->n++;
    }
    if (su->n == 0) return sh_err_set(err, "capability: empty task list");
    if (su->has_lm) {
        if (cap_corpus_load(o->corpus && *o->corpus ? o->corpus : CAP_DEFAULT_CORPUS, &su->corpus, err))
            return sh_err_prefix(err, "capability task lm");
        for (int i = 0; i < su->n; i++)
            if (su->tasks[i].kind == CAP_TASK_LM) su->tasks[i].corpus = &su->corpus;
    }
    for (int i = 0; i < su->n; i++) {
        if (cap_task_check(&su->tasks[i], err)) return -1;
        if (su->tasks[i].kind == CAP_TASK_LM) {
            /* check the corpus holds a batch and a held-out window now (clear error, nothing trained) */
            cap_task probe = su->tasks[i];
            probe.n_train = probe.batch;
            probe.n_test = 1;
            cap_dataset d;
            if (cap_lm_generate(&probe, 1, 0, &d, err)) return -1;
            cap_dataset_free(&d);
            if (cap_lm_generate(&probe, 1, 1, &d, err)) return -1;
            cap_dataset_free(&d);
        }
    }
    return 0;
}

static json_t *task_json(const cap_task *t, const sh_score_opts *o)
{
    json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:f, s:f}",
                          "name", cap_task_name(t->kind), "vocab", t->vocab, "seq", t->seq,
                          "n_test", t->n_test, "epochs", t->epochs, "batch", t->batch, "lr", t->lr, "wd", t->wd);
    if (!j) return NULL;
    if (t->kind == CAP_TASK_LM) {
        const cap_corpus *c = t->corpus;
        char h[17];
        snprintf(h, sizeof h, "%016llx", (unsigned long long)c->hash);
        json_object_set_new(j, "corpus", json_pack("{s:s, s:I, s:I, s:s}", "source", c->source,
                                                   "bytes", (json_int_t)c->n, "heldout_from", (json_int_t)c->split,
                                                   "fnv64", h));
        if (o->flops > 0) json_object_set_new(j, "flops", json_real(o->flops));
        else json_object_set_new(j, "tokens", json_integer((json_int_t)t->n_train * t->seq));
        return j;
    }
    json_object_set_new(j, "pairs", json_integer(t->pairs));
    json_object_set_new(j, "n_train", json_integer(t->n_train));
    if (t->kind == CAP_TASK_MQAR || t->kind == CAP_TASK_FUZZY || t->kind == CAP_TASK_NOISY)
        json_object_set_new(j, "min_gap", json_integer(t->min_gap));
    if (t->kind == CAP_TASK_FUZZY) json_object_set_new(j, "motif", json_integer(t->motif));
    if (t->kind == CAP_TASK_NOISY) {
        json_object_set_new(j, "noise_vocab", json_integer(t->noise_vocab));
        json_object_set_new(j, "noise", json_real(t->noise));
    }
    return j;
}

/* with_rung = 0: the key of a proxy's training across rungs (state files). */
static char *builtin_params_json(const sh_score_opts *o, int with_rung, sh_err *err)
{
    cap_scale_cfg s;
    suite su;
    scale_from_opts(o, &s);
    if (parse_tasks(o, &su, err)) { suite_free(&su); return NULL; }
    json_t *arr = json_array();
    for (int i = 0; i < su.n; i++) json_array_append_new(arr, task_json(&su.tasks[i], o));
    suite_free(&su);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    int R = sh_score_rungs(o), r = sh_score_rung(o);
    json_t *root = json_pack("{s:o, s:s, s:{s:f, s:i, s:i, s:i, s:s}, s:{s:f, s:f, s:s, s:s}, s:f}",
                             "tasks", arr, "seed", seed,
                             "scale", "scale", s.scale, "head_dim", s.head_dim, "max_layers", s.max_layers,
                             "max_experts", s.max_experts, "lr_rule", "hidden matrices x 64/width",
                             "trainer", "clip", 1.0, "decay_frac", DECAY_FRAC, "optimizer", "adamw(0.9,0.99)",
                             "schedule", "wsd(warmup 5% of rung 0, linear decay to 0)",
                             "size_factor", o->size_factor > 0 ? o->size_factor : 1.0);
    if (root && with_rung)
        json_object_set_new(root, "rung", json_pack("{s:i, s:i, s:i, s:f}", "rung", r, "rungs", R, "eta", RUNG_ETA,
                                                    "fraction", rung_fraction(r, R)));
    else if (root)
        json_object_set_new(root, "rungs", json_integer(R));
    char *out = root ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    if (!out) sh_err_set(err, "capability: out of memory building parameters JSON");
    return out;
}

void sh_score_opts_free_strings(sh_score_opts *o)
{
    free(o->owned_tasks);
    free(o->owned_corpus);
    if (o->tasks == o->owned_tasks) o->tasks = NULL;
    if (o->corpus == o->owned_corpus) o->corpus = NULL;
    o->owned_tasks = o->owned_corpus = NULL;
}

int sh_score_opts_from_params_json(const char *params_json, sh_score_opts *o, sh_err *err)
{
    json_error_t je;
    json_t *root = json_loads(params_json ? params_json : "", 0, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        return sh_err_set(err, "score params: not a JSON object (line %d: %.100s)", je.line, je.text);
    }
    int rc = 0;
    json_t *v;
    if ((v = json_object_get(root, "proxy_scale")) && json_is_number(v)) o->scale = json_number_value(v);  /* external */
    json_t *sc = json_object_get(root, "scale");
    if (json_is_object(sc)) {
        if (json_is_number(v = json_object_get(sc, "scale"))) o->scale = json_number_value(v);
        if (json_is_integer(v = json_object_get(sc, "head_dim"))) o->head_dim = (int)json_integer_value(v);
        if (json_is_integer(v = json_object_get(sc, "max_layers"))) o->max_layers = (int)json_integer_value(v);
        if (json_is_integer(v = json_object_get(sc, "max_experts"))) o->max_experts = (int)json_integer_value(v);
    }
    if (json_is_number(v = json_object_get(root, "size_factor"))) o->size_factor = json_number_value(v);
    if (json_is_string(v = json_object_get(root, "seed"))) o->seed = strtoull(json_string_value(v), NULL, 10);
    json_t *rg = json_object_get(root, "rung");
    if (json_is_object(rg)) {
        if (json_is_integer(v = json_object_get(rg, "rung"))) o->rung = (int)json_integer_value(v);
        if (json_is_integer(v = json_object_get(rg, "rungs"))) o->rungs = (int)json_integer_value(v);
    } else if (json_is_integer(rg)) {
        o->rung = (int)json_integer_value(rg);
        if (json_is_integer(v = json_object_get(root, "rungs"))) o->rungs = (int)json_integer_value(v);
    }
    json_t *tasks = json_object_get(root, "tasks");
    if (json_is_array(tasks)) {
        char list[512] = "";
        size_t i;
        json_t *t;
        json_array_foreach(tasks, i, t) {
            const char *name = json_string_value(json_object_get(t, "name"));
            if (!name || strlen(list) + strlen(name) + 2 >= sizeof list) { rc = sh_err_set(err, "score params: bad task list"); break; }
            if (list[0]) strcat(list, ",");
            strcat(list, name);
            if (!strcmp(name, "lm")) {
                json_t *c = json_object_get(t, "corpus");
                const char *src = json_string_value(json_object_get(c, "source"));
                if (src) {
                    free(o->owned_corpus);
                    o->owned_corpus = strdup(src);
                    o->corpus = o->owned_corpus;
                }
                if (json_is_integer(v = json_object_get(t, "tokens"))) o->tokens = (long)json_integer_value(v);
                if (json_is_number(v = json_object_get(t, "flops"))) o->flops = json_number_value(v);
            }
        }
        if (!rc) {
            free(o->owned_tasks);
            o->owned_tasks = strdup(list);
            o->tasks = o->owned_tasks;
            if (!o->owned_tasks) rc = sh_err_set(err, "score params: out of memory");
        }
    }
    json_decref(root);
    return rc;
}

/* ---- training states kept between rungs ------------------------------------------ */
#define STATE_MAGIC "SHCAPST1"

static void state_path(const sh_score_opts *o, const sh_genome *g, const char *base_params, const cap_task *t,
                       char *out, size_t cap)
{
    char gh[17];
    sh_hash_hex(sh_genome_hash(g), gh);
    uint64_t h = 1469598103934665603ull;
    const char *parts[3] = {gh, cap_task_name(t->kind), base_params};
    for (int k = 0; k < 3; k++) {
        for (const unsigned char *p = (const unsigned char *)parts[k]; *p; p++) h = (h ^ *p) * 1099511628211ull;
        h = (h ^ '|') * 1099511628211ull;
    }
    snprintf(out, cap, "%s/%s-%s-%016llx.state", o->state_dir, gh, cap_task_name(t->kind), (unsigned long long)h);
}

static int state_read(const char *path, size_t np, cap_train_state *st)
{
    memset(st, 0, sizeof *st);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char magic[8];
    int64_t hdr[2];
    int ok = fread(magic, 1, 8, f) == 8 && !memcmp(magic, STATE_MAGIC, 8) && fread(hdr, sizeof hdr, 1, f) == 1 &&
             hdr[0] >= 0 && (size_t)hdr[1] == np;
    if (ok) {
        st->p = malloc(sizeof(float) * np);
        st->m = malloc(sizeof(float) * np);
        st->v = malloc(sizeof(float) * np);
        ok = st->p && st->m && st->v && fread(st->p, sizeof(float), np, f) == np &&
             fread(st->m, sizeof(float), np, f) == np && fread(st->v, sizeof(float), np, f) == np;
        st->np = np;
        st->step = (int)hdr[0];
    }
    fclose(f);
    if (!ok) { cap_train_state_free(st); return -1; }
    return 0;
}

/* Written to a temporary file and renamed into place (a killed write leaves
 * the previous state or none, never a torn one). */
static int state_write(const char *path, const cap_train_state *st, sh_err *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return sh_err_set(err, "training state %.300s: cannot create (%s)", tmp, strerror(errno));
    int64_t hdr[2] = {st->step, (int64_t)st->np};
    int ok = fwrite(STATE_MAGIC, 1, 8, f) == 8 && fwrite(hdr, sizeof hdr, 1, f) == 1 &&
             fwrite(st->p, sizeof(float), st->np, f) == st->np && fwrite(st->m, sizeof(float), st->np, f) == st->np &&
             fwrite(st->v, sizeof(float), st->np, f) == st->np;
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return sh_err_set(err, "training state %.300s: write failed (%s)", path, strerror(errno));
    }
    return 0;
}

static int mkdir_p(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *q = p + 1; *q; q++)
        if (*q == '/') { *q = 0; mkdir(p, 0755); *q = '/'; }
    return mkdir(p, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* ---- running the suite ------------------------------------------------------------ */
typedef struct progress_ctx {
    const sh_score_opts *o;
    int rung, rungs;
    double t0;
    int first_step;
} progress_ctx;

static void train_progress(void *ctx, const char *task, int step, int steps, double loss)
{
    progress_ctx *pc = ctx;
    const sh_score_opts *o = pc->o;
    double now = now_s();
    if (pc->first_step < 0) { pc->first_step = step - 1; pc->t0 = now; }
    double done = step - pc->first_step, el = now - pc->t0;
    char line[200];
    if (done > 1 && el > 0)
        snprintf(line, sizeof line, "%s rung %d/%d: step %d/%d loss %.3f eta %.0fs", task, pc->rung + 1, pc->rungs,
                 step, steps, loss, el / done * (steps - step));
    else
        snprintf(line, sizeof line, "%s rung %d/%d: step %d/%d loss %.3f", task, pc->rung + 1, pc->rungs, step, steps, loss);
    o->progress(o->progress_ctx, line);
}

/* Training steps of task t at the top rung (equal FLOPs: sets t->n_train
 * from the budget and this proxy's cost per token). */
static int task_top_steps(cap_task *t, const cap_model_cfg *cfg, const sh_score_opts *o)
{
    if (t->kind == CAP_TASK_LM) {
        if (o->flops > 0) {   /* equal FLOPs: tokens from the budget and this proxy's cost per token */
            double per_tok = 3.0 * cap_forward_flops(cfg, t->seq, t->seq) / t->seq;
            long steps = (long)(o->flops / per_tok / ((double)t->seq * t->batch));
            if (steps < 1) steps = 1;
            if (steps > 1000000L / t->batch) steps = 1000000L / t->batch;
            t->n_train = (int)(steps * t->batch);
        }
        return t->n_train / t->batch;
    }
    int B = t->batch < t->n_train ? t->batch : t->n_train;
    return (t->n_train + B - 1) / B * t->epochs;
}

static int rung_steps(int top_steps, double frac)
{
    int steps = (int)lround(top_steps * frac);
    return steps < 1 ? 1 : steps;
}

/* The saved states of g's proxy under o, task by task: with drop, removes
 * them (returns how many files were removed); else *step = the smallest step
 * o's rung would continue from (0: some task would train from scratch); with
 * expected, the step it continues from when the rung below left its state
 * (its decay start; no file is read). */
static int state_walk(const sh_genome *g, const sh_score_opts *o, bool drop, bool expected, int *step, sh_err *err)
{
    if (step) *step = 0;
    if (!o->state_dir && !expected) return 0;
    cap_scale_cfg s;
    suite su;
    cap_model_cfg base;
    scale_from_opts(o, &s);
    if (parse_tasks(o, &su, err) || cap_map_genome(g, &s, &base, err)) { suite_free(&su); return -1; }
    char *base_params = builtin_params_json(o, 0, err);
    if (!base_params) { suite_free(&su); return -1; }
    int R = sh_score_rungs(o), rung = sh_score_rung(o), removed = 0, lowest = INT32_MAX;
    for (int i = 0; i < su.n; i++) {
        cap_task *t = &su.tasks[i];
        cap_model_cfg cfg = base;
        cfg.V = cap_task_model_vocab(t);
        cfg.T = t->seq;
        cfg.readout = cap_task_readout(t);
        if (expected) {
            int below = rung > 0 ? cap_decay_start(rung_steps(task_top_steps(t, &cfg, o), rung_fraction(rung - 1, R)),
                                                   DECAY_FRAC) : 0;
            if (below < lowest) lowest = below;
            continue;
        }
        char spath[4400];
        state_path(o, g, base_params, t, spath, sizeof spath);
        if (drop) {
            removed += remove(spath) == 0;
            continue;
        }
        int64_t hdr[2] = {-1, -1};
        char magic[8];
        FILE *f = fopen(spath, "rb");
        bool ok = f && fread(magic, 1, 8, f) == 8 && !memcmp(magic, STATE_MAGIC, 8) && fread(hdr, sizeof hdr, 1, f) == 1;
        if (f) fclose(f);
        int steps = rung_steps(task_top_steps(t, &cfg, o), rung_fraction(rung, R));
        if (!ok || hdr[1] != (int64_t)cap_param_count_f32(&cfg) || hdr[0] < 0 || hdr[0] > cap_decay_start(steps, DECAY_FRAC))
            lowest = 0;   /* absent, another proxy's, or from a higher rung: this rung starts afresh */
        else if (hdr[0] < lowest)
            lowest = (int)hdr[0];
    }
    free(base_params);
    suite_free(&su);
    if (step) *step = su.n > 0 && lowest != INT32_MAX ? lowest : 0;
    return removed;
}

int sh_score_state_step(const sh_genome *g, const char *spec, const sh_score_opts *o, int *step, sh_err *err)
{
    *step = 0;
    if (!is_builtin(spec)) return 0;
    return state_walk(g, o, false, false, step, err) < 0 ? -1 : 0;
}

int sh_score_ladder_step(const sh_genome *g, const char *spec, const sh_score_opts *o, int *step, sh_err *err)
{
    *step = 0;
    if (!is_builtin(spec)) return 0;
    return state_walk(g, o, false, true, step, err) < 0 ? -1 : 0;
}

int sh_score_drop_state(const sh_genome *g, const char *spec, const sh_score_opts *o, sh_err *err)
{
    return is_builtin(spec) ? state_walk(g, o, true, false, NULL, err) : 0;
}

static int run_builtin(const sh_genome *g, const sh_score_opts *o, sh_score_rec *rec, sh_err *err)
{
    cap_scale_cfg s;
    suite su;
    cap_model_cfg base;
    scale_from_opts(o, &s);
    if (parse_tasks(o, &su, err) || cap_map_genome(g, &s, &base, err)) { suite_free(&su); return -1; }
    int R = sh_score_rungs(o), rung = sh_score_rung(o);
    double frac = rung_fraction(rung, R);
    char *base_params = o->state_dir ? builtin_params_json(o, 0, err) : NULL;
    if (o->state_dir && (!base_params || mkdir_p(o->state_dir))) {
        free(base_params);
        suite_free(&su);
        return base_params ? sh_err_set(err, "training states: cannot create %.300s (%s)", o->state_dir, strerror(errno)) : -1;
    }
    json_t *scores = json_object();
    double sum = 0;
    int rc = 0;
    for (int i = 0; i < su.n && !rc; i++) {
        cap_task *t = &su.tasks[i];
        cap_model_cfg cfg = base;
        cfg.V = cap_task_model_vocab(t);
        cfg.T = t->seq;
        cfg.readout = cap_task_readout(t);
        size_t np = cap_param_count_f32(&cfg);
        if ((long)np > CAP_MAX_PARAMS) {
            rc = sh_err_set(err, "proxy has %zu parameters, above the %ld cap; use a smaller --scale", np, CAP_MAX_PARAMS);
            break;
        }
        int top_steps = task_top_steps(t, &cfg, o);
        int steps = rung_steps(top_steps, frac), low = rung_steps(top_steps, rung_fraction(0, R));
        int warm = (int)lround(0.05 * low);
        cap_dataset train, test;
        cap_train_result res;
        progress_ctx pc = {o, rung, R, 0, -1};
        cap_train_state resume = {0}, ckpt = {0};
        char spath[4400] = "";
        if (o->state_dir) {
            state_path(o, g, base_params, t, spath, sizeof spath);
            if (state_read(spath, np, &resume) == 0 && resume.step > cap_decay_start(steps, DECAY_FRAC))
                cap_train_state_free(&resume);   /* from a higher rung: not usable here */
        }
        cap_train_opts to = {.threads = o->threads, .seed = o->seed + 7919u * (uint64_t)t->kind,
                             .epochs = t->epochs, .batch = t->batch, .lr = t->lr, .wd = t->wd,
                             .clip = 1.0, .lr_mat_mult = cap_width_lr_mult(cfg.D), .steps = steps,
                             .warmup_steps = warm < 1 ? 1 : warm, .decay_frac = DECAY_FRAC,
                             .sequential = t->kind == CAP_TASK_LM, .resume = resume.p ? &resume : NULL,
                             .checkpoint = o->state_dir ? &ckpt : NULL, .task_name = cap_task_name(t->kind),
                             .progress = o->progress ? train_progress : NULL, .progress_ctx = &pc};
        rc = cap_task_generate(t, o->seed, 0, &train, err);
        if (!rc) {
            rc = cap_task_generate(t, o->seed, 1, &test, err);
            if (!rc) {
                rc = cap_train_and_eval(&cfg, &train, &test, &to, &res, err);
                cap_dataset_free(&test);
            }
            cap_dataset_free(&train);
        }
        if (!rc && o->state_dir) {
            if (rung == R - 1) remove(spath);   /* the top rung: nothing left to continue */
            else if (ckpt.p && (!resume.p || ckpt.step >= resume.step)) rc = state_write(spath, &ckpt, err);
        }
        bool resumed = resume.p != NULL;
        cap_train_state_free(&resume);
        cap_train_state_free(&ckpt);
        if (rc) {
            sh_err_prefix(err, "task %s", cap_task_name(t->kind));
            break;
        }
        double task_score = res.accuracy;
        char line[200];
        if (t->kind == CAP_TASK_LM) {
            double bpb = res.test_loss / log(2.0);
            task_score = 1.0 - bpb / 8.0;
            if (task_score < 0) task_score = 0;
            json_object_set_new(scores, "lm_bpb", json_real(bpb));
            snprintf(line, sizeof line, "lm rung %d/%d: held-out %.4f bits/byte, %ld tokens%s (%.1f s)", rung + 1, R, bpb,
                     (long)steps * t->batch * t->seq, resumed ? ", continued" : "", res.seconds);
        } else {
            snprintf(line, sizeof line, "%s rung %d/%d: accuracy %.3f (%.1f s)", cap_task_name(t->kind), rung + 1, R,
                     res.accuracy, res.seconds);
        }
        json_object_set_new(scores, cap_task_name(t->kind), json_real(task_score));
        sum += task_score;
        if (o->progress) o->progress(o->progress_ctx, line);
    }
    free(base_params);
    if (!rc) {
        rec->aggregate = sum / su.n;
        rec->scores_json = json_dumps(scores, JSON_COMPACT | JSON_SORT_KEYS);
        if (!rec->scores_json) rc = sh_err_set(err, "capability: out of memory");
    }
    json_decref(scores);
    suite_free(&su);
    return rc;
}

static int is_builtin(const char *spec) { return !spec || !*spec || !strcmp(spec, "builtin"); }

char *sh_score_params_json(const sh_genome *g, const char *spec, const sh_score_opts *o, sh_err *err)
{
    (void)g;
    if (is_builtin(spec)) return builtin_params_json(o, 1, err);
    if (!strncmp(spec, "cmd:", 4) || !strncmp(spec, "http://", 7) || !strncmp(spec, "https://", 8)) {
        int R = sh_score_rungs(o), r = sh_score_rung(o);
        json_t *j = json_pack("{s:s, s:f, s:i, s:i}", "spec", spec,
                              "proxy_scale", o->scale > 0 ? o->scale : SH_SCORE_DEFAULT_SCALE, "rung", r, "rungs", R);
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

/* Runs the scorer and records the outcome in out: seconds, status "ok", or
 * "failed" with the error (scores cleared).  Returns run_scorer's code; serr
 * holds the scorer's message on failure. */
static int run_and_record(const sh_genome *g, const char *spec, const sh_score_opts *opts, sh_score_rec *out,
                          sh_err *serr)
{
    double t0 = now_s();
    int rc = run_scorer(g, spec, opts, out, serr);
    out->seconds = now_s() - t0;
    if (rc) {
        free(out->scores_json);
        out->scores_json = NULL;
        out->aggregate = 0;
        snprintf(out->status, sizeof out->status, "failed");
        out->error = strdup(serr->msg[0] ? serr->msg : "scorer failed");
    } else {
        snprintf(out->status, sizeof out->status, "ok");
    }
    return rc;
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
    sh_err serr = {{0}};
    int rc = run_and_record(g, spec, opts, out, &serr);
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
    return run_and_record(g, spec, opts, out, err) ? -1 : 0;
}
