/* report_data.c - gathers a run report from the run store (through the typed
 * readers of runs/runs.h) and renders it as JSON, CSV and Markdown. */
#include "reports/report_data.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "genome/genome.h"
#include "measure/mrecord.h"

const sh_rep_metric sh_rep_metrics[] = {
    {"capability", offsetof(sh_rep_point, capability)},
    {"decode_ms", offsetof(sh_rep_point, decode_ms)},
    {"decode_tok_s", offsetof(sh_rep_point, decode_tok_s)},
    {"prefill_tok_s", offsetof(sh_rep_point, prefill_tok_s)},
    {"ttft_ms", offsetof(sh_rep_point, ttft_ms)},
    {"peak_rss_bytes", offsetof(sh_rep_point, peak_rss_bytes)},
    {"weight_bytes", offsetof(sh_rep_point, weight_bytes)},
    {"kv_bytes", offsetof(sh_rep_point, kv_bytes)},
    {"conv_state_bytes", offsetof(sh_rep_point, conv_state_bytes)},
    {"cache_bytes", offsetof(sh_rep_point, cache_bytes)},
    {"params_total", offsetof(sh_rep_point, params_total)},
    {"params_active", offsetof(sh_rep_point, params_active)},
    {"decode_ms_low", offsetof(sh_rep_point, decode_ms_low)},
    {"decode_ms_high", offsetof(sh_rep_point, decode_ms_high)},
    {"decode_ms_median", offsetof(sh_rep_point, decode_ms_median)},
};
const int sh_rep_n_metrics = (int)(sizeof sh_rep_metrics / sizeof sh_rep_metrics[0]);

double sh_rep_metric_value(const sh_rep_point *p, int i)
{
    assert(p && i >= 0 && i < sh_rep_n_metrics);
    double v;
    memcpy(&v, (const char *)p + sh_rep_metrics[i].offset, sizeof v);
    return v;
}

/* ---- points ------------------------------------------------------------------- */

static void point_init(sh_rep_point *p, const char *hash)
{
    memset(p, 0, sizeof *p);
    snprintf(p->hash, sizeof p->hash, "%s", hash);
    p->rank = -1;
    p->norm_ms = p->norm_low = p->norm_high = p->decode_ms_measured = NAN;
    for (int i = 0; i < sh_rep_n_metrics; i++) {
        double nan = NAN;
        memcpy((char *)p + sh_rep_metrics[i].offset, &nan, sizeof nan);
    }
}

static double jnum(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Metrics from a stored measurement (measure/mrecord.h reads every spelling). */
static void point_take_result(sh_rep_point *p, const char *result_json)
{
    sh_mrecord m;
    sh_err ignored;
    if (sh_mrecord_from_json(result_json, &m, &ignored)) return;
    for (int i = 0; i < sh_rep_n_metrics; i++) {   /* the metrics the record has, by its own names */
        const double *v = sh_mrecord_number(&m, sh_rep_metrics[i].name);
        if (v) memcpy((char *)p + sh_rep_metrics[i].offset, v, sizeof *v);
    }
    snprintf(p->stability, sizeof p->stability, "%s", m.stability);
    snprintf(p->stability_reason, sizeof p->stability_reason, "%s", m.reason);
    snprintf(p->estimator, sizeof p->estimator, "%s", m.estimator);
    p->norm_ms = sh_mrecord_decode_ms_normalized(&m);
    p->norm_low = m.decode_ms_normalized_low;
    p->norm_high = m.decode_ms_normalized_high;
    p->cache_bytes = (isnan(p->kv_bytes) ? 0 : p->kv_bytes) +
                     (isnan(p->conv_state_bytes) ? 0 : p->conv_state_bytes);
    if (isnan(p->kv_bytes) && isnan(p->conv_state_bytes)) p->cache_bytes = NAN;
    json_t *settings = m.settings_json ? json_loads(m.settings_json, 0, NULL) : NULL;
    const char *wt = json_string_value(json_object_get(settings, "wtype"));
    if (wt) snprintf(p->wtype, sizeof p->wtype, "%s", wt);
    json_decref(settings);
    sh_mrecord_free(&m);
}

/* Genome text and parameter counts of g into p (buffers on the heap: a
 * genome and its text are tens of KiB). */
static int point_set_genome(sh_rep_point *p, const sh_genome *g, sh_err *err)
{
    sh_param_count pc;
    sh_genome_params(g, &pc);
    p->params_total = (double)pc.total;
    p->params_active = (double)pc.active;
    char *text = malloc(SH_GENOME_TEXT_MAX);
    if (!text) return sh_err_set(err, "report: out of memory");
    sh_err e2 = {{0}};
    int rc = 0;
    if (sh_genome_format(g, text, SH_GENOME_TEXT_MAX, &e2) == 0 && !(p->text = strdup(text)))
        rc = sh_err_set(err, "report: out of memory");
    free(text);
    return rc;
}

/* Genome text and parameter counts from the genomes table (if stored). */
static int point_take_genome(sh_db *db, sh_rep_point *p, sh_err *err)
{
    sh_hash h;
    if (sh_hash_parse(p->hash, &h) != 0) return 0;
    sh_genome *g = malloc(sizeof *g);
    if (!g) return sh_err_set(err, "report: out of memory");
    sh_err e2 = {{0}};
    int rc = sh_db_get_genome(db, h, g, &e2) == 0 ? point_set_genome(p, g, err) : 0;   /* not stored: no text */
    free(g);
    return rc;
}

/* Latest ok capability score of a genome (any scorer; the newest wins). */
static int point_take_score(sh_db *db, sh_rep_point *p, sh_err *err)
{
    sh_hash h;
    double aggregate;
    if (sh_hash_parse(p->hash, &h) != 0) return 0;
    int rc = sh_db_latest_aggregate(db, h, &aggregate, err);
    if (rc == 0) p->capability = aggregate;
    return rc < 0 ? -1 : 0;
}

typedef struct point_list {
    sh_rep_point *v;
    int n, cap;
} point_list;

static sh_rep_point *list_add(point_list *l, const char *hash, sh_err *err)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        sh_rep_point *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) { sh_err_set(err, "report: out of memory"); return NULL; }
        l->v = v; l->cap = cap;
    }
    sh_rep_point *p = &l->v[l->n++];
    point_init(p, hash);
    return p;
}

static sh_rep_point *list_find(point_list *l, const char *hash, const char *device)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i].hash, hash) == 0 && strcmp(l->v[i].device, device) == 0) return &l->v[i];
    return NULL;
}

/* Every (genome, device) with an ok measurement in the run; newest wins. */
static int load_measured(sh_db *db, int64_t run, point_list *l, sh_err *err)
{
    sh_eval_rec *e;
    int n, rc = 0;
    if (sh_db_list_run_measurements(db, run, &e, &n, err) != 0) return -1;
    for (int i = 0; i < n && rc == 0; i++) {
        char hash[17];
        sh_hash_hex(e[i].genome, hash);
        sh_rep_point *p = list_find(l, hash, e[i].device);
        if (!p && !(p = list_add(l, hash, err))) { rc = -1; break; }
        snprintf(p->device, sizeof p->device, "%s", e[i].device);
        if (e[i].result_json) point_take_result(p, e[i].result_json);
    }
    sh_eval_recs_free(e, n);
    return rc;
}

/* The search's own evaluations (kind "search", one per genome and run): its
 * objectives (capability as the search saw it) and closed-form estimates.
 * Genomes without a device measurement get a point with device "" from them. */
static void point_take_search(sh_rep_point *p, json_t *r, bool metrics)
{
    json_t *obj = json_object_get(r, "objectives"), *an = json_object_get(r, "analytic");
    double cap = jnum(obj, "capability");
    if (isfinite(cap)) p->capability = cap;
    if (!metrics) return;
    json_t *src[2] = {obj, an};
    for (int k = 0; k < 2; k++) {
        if (!json_is_object(src[k])) continue;
        if (isnan(p->decode_ms)) p->decode_ms = jnum(src[k], "decode_ms");
        if (isnan(p->ttft_ms)) p->ttft_ms = jnum(src[k], "ttft_ms");
        if (isnan(p->peak_rss_bytes)) p->peak_rss_bytes = jnum(src[k], "peak_bytes");
        if (isnan(p->cache_bytes)) p->cache_bytes = jnum(src[k], "cache_bytes");
    }
    if (isnan(p->decode_tok_s) && p->decode_ms > 0) p->decode_tok_s = 1000.0 / p->decode_ms;
}

static int load_search_evals(sh_db *db, int64_t run, point_list *l, sh_err *err)
{
    sh_eval_rec *e;
    int n, rc = 0;
    if (sh_db_list_ok_results(db, run, "search", &e, &n, err) != 0) return -1;
    for (int k = 0; k < n && rc == 0; k++) {
        char hash[17];
        sh_hash_hex(e[k].genome, hash);
        json_t *r = json_loads(e[k].result_json, 0, NULL);
        if (!json_is_object(r)) { json_decref(r); continue; }
        bool measured = false;
        for (int i = 0; i < l->n; i++)
            if (strcmp(l->v[i].hash, hash) == 0) { measured = true; point_take_search(&l->v[i], r, false); }
        if (!measured) {
            sh_rep_point *p = list_find(l, hash, "");
            if (!p && !(p = list_add(l, hash, err))) rc = -1;
            else point_take_search(p, r, true);
        }
        json_decref(r);
    }
    sh_eval_recs_free(e, n);
    return rc;
}

/* Front membership from the last generation; members never measured get a
 * point without a device. */
static int by_genome(const void *a, const void *b)
{
    sh_hash x = ((const sh_gen_row *)a)->genome, y = ((const sh_gen_row *)b)->genome;
    return (x > y) - (x < y);
}

static int load_front(sh_db *db, int64_t run, point_list *l, int *last_gen, sh_err *err)
{
    sh_gen_row *m;
    int n, rc = 0;
    *last_gen = -1;
    if (sh_db_list_generation(db, run, -1, false, &m, &n, err) != 0) return -1;
    /* members in genome order, the order the store keeps them in, so members
     * that were never measured are listed as before */
    if (n > 1) qsort(m, (size_t)n, sizeof *m, by_genome);
    for (int k = 0; k < n && rc == 0; k++) {
        char hash[17];
        sh_hash_hex(m[k].genome, hash);
        *last_gen = m[k].gen;
        bool any = false;
        for (int i = 0; i < l->n; i++)
            if (strcmp(l->v[i].hash, hash) == 0) {
                l->v[i].rank = m[k].rank;
                l->v[i].on_front = m[k].on_front;
                any = true;
            }
        if (!any) {
            sh_rep_point *p = list_add(l, hash, err);
            if (!p) { rc = -1; break; }
            p->rank = m[k].rank;
            p->on_front = m[k].on_front;
        }
    }
    sh_gen_rows_free(m, n);
    return rc;
}

static int load_gens(sh_db *db, sh_report *r, sh_err *err)
{
    sh_run_metric *m;
    int n;
    if (sh_db_list_run_metrics(db, r->run.id, &m, &n, err) != 0) return -1;
    if (n > 0 && !(r->gens = malloc((size_t)n * sizeof *r->gens))) {
        free(m);
        return sh_err_set(err, "report: out of memory");
    }
    for (int i = 0; i < n; i++)
        r->gens[i] = (sh_rep_gen){m[i].gen, m[i].hypervolume, m[i].evaluations, m[i].front_size};
    r->n_gens = n;
    free(m);
    return 0;
}

static int load_devices(sh_db *db, sh_report *r, sh_err *err)
{
    for (int i = 0; i < r->n_points; i++) {
        const char *name = r->points[i].device;
        bool seen = !*name;
        for (int k = 0; k < r->n_devices && !seen; k++) seen = strcmp(r->devices[k].name, name) == 0;
        if (seen) continue;
        sh_rep_device *d = realloc(r->devices, (size_t)(r->n_devices + 1) * sizeof *d);
        if (!d) return sh_err_set(err, "report: out of memory");
        r->devices = d;
        d = &r->devices[r->n_devices++];
        memset(d, 0, sizeof *d);
        snprintf(d->name, sizeof d->name, "%s", name);
        sh_device_rec rec;
        sh_err e2 = {{0}};
        memset(&rec, 0, sizeof rec);
        if (sh_db_get_device(db, name, &rec, &e2) == 0) {   /* removed devices keep no topology */
            snprintf(d->kind, sizeof d->kind, "%s", rec.kind);
            snprintf(d->target, sizeof d->target, "%s", rec.target);
            d->topology_json = rec.topology_json;
            rec.topology_json = NULL;
            sh_device_rec_free(&rec);
        }
    }
    return 0;
}

/* The presets measured on each of the run's devices (any run, newest wins). */
static int load_presets(sh_db *db, sh_report *r, sh_err *err)
{
    point_list l = {0};
    int rc = 0;
    sh_genome *g = malloc(sizeof *g);   /* tens of KiB: not on the stack */
    if (!g) return sh_err_set(err, "report: out of memory");
    for (int k = 0; k < r->n_devices && rc == 0; k++)
        for (int i = 0; i < sh_preset_count() && rc == 0; i++) {
            const sh_preset *pr = sh_preset_at(i);
            sh_err e2 = {{0}};
            if (sh_preset_get(pr->name, g, &e2) != 0) continue;
            char hex[17];
            sh_hash h = sh_genome_hash(g);
            sh_hash_hex(h, hex);
            sh_eval_rec e;
            int s = sh_db_latest_measurement(db, h, r->devices[k].name, &e, err);
            if (s == 1) continue;
            if (s != 0) { rc = -1; break; }
            sh_rep_point *p = list_add(&l, hex, err);
            if (!p) { sh_eval_rec_free(&e); rc = -1; break; }
            snprintf(p->device, sizeof p->device, "%s", r->devices[k].name);
            snprintf(p->preset, sizeof p->preset, "%s", pr->name);
            point_take_result(p, e.result_json);
            sh_eval_rec_free(&e);
            rc = point_set_genome(p, g, err);
            if (rc == 0) rc = point_take_score(db, p, err);
        }
    free(g);
    r->presets = l.v;
    r->n_presets = l.n;
    return rc;
}

static void set_decode_estimator(sh_report *r);

/* A run that ranked decode_ms normalized by its reference genome (search
 * --reference; run config measure.rank) shows its points' normalized figures
 * as decode_ms, the one its front was computed with; the figure as measured
 * moves to decode_ms_measured.  Presets, measured outside the run, stay as
 * measured. */
static void use_normalized(sh_report *r)
{
    json_t *cfg = r->run.config_json ? json_loads(r->run.config_json, 0, NULL) : NULL;
    const char *rank = json_string_value(json_object_get(json_object_get(cfg, "measure"), "rank"));
    r->decode_normalized = rank && !strcmp(rank, "normalized");
    r->decode_paired = json_is_true(json_object_get(json_object_get(cfg, "measure"), "reference_paired"));
    json_decref(cfg);
    if (!r->decode_normalized) return;
    for (int i = 0; i < r->n_points; i++) {
        sh_rep_point *p = &r->points[i];
        if (!(p->norm_ms > 0)) continue;
        p->decode_ms_measured = p->decode_ms;
        p->decode_ms = p->norm_ms;
        p->decode_ms_low = p->norm_low;
        p->decode_ms_high = p->norm_high;
        p->normalized = true;
    }
}

int sh_report_load(sh_db *db, int64_t run_id, sh_report *r, sh_err *err)
{
    memset(r, 0, sizeof *r);
    if (sh_db_get_run(db, run_id, &r->run, err) != 0) return -1;
    if (sh_db_check_run_json(db, run_id, err) != 0) return -1;
    point_list l = {0};
    int rc = load_measured(db, run_id, &l, err);
    if (rc == 0) rc = load_search_evals(db, run_id, &l, err);
    if (rc == 0) rc = load_front(db, run_id, &l, &r->last_gen, err);
    r->points = l.v;
    r->n_points = l.n;
    for (int i = 0; i < r->n_points && rc == 0; i++) {
        rc = point_take_genome(db, &r->points[i], err);
        if (rc == 0 && isnan(r->points[i].capability)) rc = point_take_score(db, &r->points[i], err);
    }
    if (rc == 0) rc = load_gens(db, r, err);
    if (rc == 0) rc = load_devices(db, r, err);
    if (rc == 0) rc = load_presets(db, r, err);
    if (rc == 0) use_normalized(r);
    if (rc == 0) set_decode_estimator(r);
    if (rc != 0) sh_report_free(r);
    return rc;
}

/* The decode column's estimator: what the rows were stored with (issue 18
 * changed it; older rows keep their name), the current one if none says. */
static void set_decode_estimator(sh_report *r)
{
    const char *seen[4];
    int n = 0;
    bool more = false;
    for (int k = 0; k < r->n_points + r->n_presets; k++) {
        const sh_rep_point *p = k < r->n_points ? &r->points[k] : &r->presets[k - r->n_points];
        if (!p->estimator[0]) continue;
        bool dup = false;
        for (int j = 0; j < n; j++) dup |= !strcmp(seen[j], p->estimator);
        if (dup) continue;
        if (n < 4) seen[n++] = p->estimator;
        else more = true;
    }
    size_t len = 0;
    if (r->decode_normalized)
        len = (size_t)snprintf(r->decode_estimator, sizeof r->decode_estimator, "%s",
                               r->decode_paired ? "normalized by the run's reference genome (its first trusted "
                                                  "reading x the median ratio to the reference measured beside "
                                                  "each point; presets as measured), of the "
                                                : "normalized by the run's reference genome (x its first trusted "
                                                  "reading / the reading before; presets as measured), of the ");
    if (len >= sizeof r->decode_estimator) return;
    if (n == 0) {
        snprintf(r->decode_estimator + len, sizeof r->decode_estimator - len, "%s", SH_DECODE_ESTIMATOR);
        return;
    }
    if (n == 1) {
        snprintf(r->decode_estimator + len, sizeof r->decode_estimator - len, "%s", seen[0]);
        return;
    }
    len += (size_t)snprintf(r->decode_estimator + len, sizeof r->decode_estimator - len, "mixed:");
    for (int j = 0; j < n && len < sizeof r->decode_estimator; j++)
        len += (size_t)snprintf(r->decode_estimator + len, sizeof r->decode_estimator - len, "%s %s",
                                j ? ";" : "", seen[j]);
    if (more && len < sizeof r->decode_estimator)
        snprintf(r->decode_estimator + len, sizeof r->decode_estimator - len, "; ...");
}

static void free_points(sh_rep_point *v, int n)
{
    for (int i = 0; i < n; i++) free(v[i].text);
    free(v);
}

void sh_report_free(sh_report *r)
{
    if (!r) return;
    sh_run_rec_free(&r->run);
    free_points(r->points, r->n_points);
    free_points(r->presets, r->n_presets);
    free(r->gens);
    for (int i = 0; i < r->n_devices; i++) free(r->devices[i].topology_json);
    free(r->devices);
    memset(r, 0, sizeof *r);
}

/* ---- JSON ----------------------------------------------------------------------- */

/* A JSON string even for text that is not valid UTF-8 (bytes outside ASCII
 * become '?'), so one odd device name cannot break the whole report. */
static json_t *jstr(const char *s)
{
    json_t *v = json_string(s ? s : "");
    if (v) return v;
    char *copy = strdup(s);
    if (!copy) return NULL;
    for (char *c = copy; *c; c++)
        if ((unsigned char)*c >= 0x80) *c = '?';
    v = json_string(copy);
    free(copy);
    return v;
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *point_json(const sh_rep_point *p)
{
    json_t *o = json_object();
    json_object_set_new(o, "hash", jstr(p->hash));
    json_object_set_new(o, "device", jstr(p->device));
    if (*p->preset) json_object_set_new(o, "preset", jstr(p->preset));
    json_object_set_new(o, "on_front", json_boolean(p->on_front));
    json_object_set_new(o, "rank", p->rank >= 0 ? json_integer(p->rank) : json_null());
    json_object_set_new(o, "wtype", jstr(p->wtype));
    for (int i = 0; i < sh_rep_n_metrics; i++)
        json_object_set_new(o, sh_rep_metrics[i].name, num_or_null(sh_rep_metric_value(p, i)));
    if (p->normalized) {   /* only then: reports of other runs stay as they were */
        json_object_set_new(o, "decode_normalized", json_true());
        json_object_set_new(o, "decode_ms_measured", num_or_null(p->decode_ms_measured));
    }
    json_object_set_new(o, "stability", jstr(p->stability));
    json_object_set_new(o, "stability_reason", jstr(p->stability_reason));
    json_object_set_new(o, "disturbed", json_boolean(!strcmp(p->stability, "disturbed") || !strcmp(p->stability, "unstable")));
    json_object_set_new(o, "genome", p->text ? jstr(p->text) : json_null());
    return o;
}

static json_t *points_json(const sh_rep_point *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, point_json(&v[i]));
    return a;
}

static json_t *devices_json(const sh_report *r)
{
    json_t *a = json_array();
    for (int i = 0; i < r->n_devices; i++) {
        const sh_rep_device *d = &r->devices[i];
        json_t *topo = d->topology_json ? json_loads(d->topology_json, 0, NULL) : NULL;
        json_array_append_new(a, json_pack("{s:o,s:o,s:o,s:o}", "name", jstr(d->name), "kind", jstr(d->kind),
                                           "target", jstr(d->target), "topology", topo ? topo : json_null()));
    }
    return a;
}

static json_t *gens_json(const sh_report *r)
{
    json_t *a = json_array();
    for (int i = 0; i < r->n_gens; i++)
        json_array_append_new(a, json_pack("{s:i,s:o,s:i,s:i}", "gen", r->gens[i].gen,
                                           "hypervolume", num_or_null(r->gens[i].hypervolume),
                                           "evaluations", r->gens[i].evaluations,
                                           "front_size", r->gens[i].front_size));
    return a;
}

char *sh_report_json(const sh_report *r, bool pretty, sh_err *err)
{
    json_t *cfg = r->run.config_json ? json_loads(r->run.config_json, 0, NULL) : NULL;
    json_t *run = json_pack("{s:I,s:o,s:o,s:I,s:o,s:o,s:o,s:i}", "id", (json_int_t)r->run.id,
                            "name", jstr(r->run.name), "status", jstr(r->run.status),
                            "seed", (json_int_t)r->run.seed, "config", cfg ? cfg : json_null(),
                            "created_at", jstr(r->run.created_at), "updated_at", jstr(r->run.updated_at),
                            "last_generation", r->last_gen);
    json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "starhil_report", "run",
                          "decode_estimator", r->decode_estimator, "run", run,
                          "devices", devices_json(r), "points", points_json(r->points, r->n_points),
                          "presets", points_json(r->presets, r->n_presets), "generations", gens_json(r));
    if (o && r->decode_normalized) json_object_set_new(o, "decode_normalized", json_true());
    char *s = o ? json_dumps(o, (pretty ? JSON_INDENT(2) : JSON_COMPACT) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!s) sh_err_set(err, "report: out of memory building JSON");
    return s;
}

/* ---- CSV ------------------------------------------------------------------------- */

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* measured: the decode_ms_measured column (a run that ranked normalized figures) */
static void csv_point(FILE *f, const sh_rep_point *p, const char *role, bool measured)
{
    fprintf(f, "%s,%s,", role, p->hash);
    csv_field(f, p->device);
    fprintf(f, ",%s,%d,%d,%s", p->preset, p->on_front ? 1 : 0, p->rank, p->wtype);
    for (int i = 0; i < sh_rep_n_metrics; i++) {
        double v = sh_rep_metric_value(p, i);
        if (isfinite(v)) fprintf(f, ",%.17g", v);
        else fputs(",", f);
    }
    if (measured && isfinite(p->decode_ms_measured)) fprintf(f, ",%.17g", p->decode_ms_measured);
    else if (measured) fputs(",", f);
    fprintf(f, ",%s,", p->stability);
    csv_field(f, p->stability_reason);
    fputc(',', f);
    csv_field(f, p->text ? p->text : "");
    fputc('\n', f);
}

int sh_report_write_csv(const sh_report *r, FILE *f, sh_err *err)
{
    fputs("role,hash,device,preset,on_front,rank,wtype", f);
    for (int i = 0; i < sh_rep_n_metrics; i++) fprintf(f, ",%s", sh_rep_metrics[i].name);
    if (r->decode_normalized) fputs(",decode_ms_measured", f);
    fputs(",stability,stability_reason,genome\n", f);
    for (int i = 0; i < r->n_points; i++) csv_point(f, &r->points[i], "member", r->decode_normalized);
    for (int i = 0; i < r->n_presets; i++) csv_point(f, &r->presets[i], "preset", r->decode_normalized);
    return ferror(f) ? sh_err_set(err, "report: write error") : 0;
}

/* ---- Markdown ---------------------------------------------------------------------- */

/* Text in a Markdown table cell: '|' escaped (also inside code spans, as
 * GitHub-flavoured Markdown requires), line breaks as spaces. */
static void md_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else if (*s == '\n' || *s == '\r') fputc(' ', f);
        else fputc(*s, f);
    }
}

static void md_num(FILE *f, double v, double scale, const char *fmt)
{
    if (isfinite(v)) { fputs(" ", f); fprintf(f, fmt, v / scale); fputs(" |", f); }
    else fputs(" - |", f);
}

static void md_point(FILE *f, const sh_rep_point *p, const char *label)
{
    fputs("| ", f);
    md_text(f, label);
    fputs(" | ", f);
    md_text(f, *p->device ? p->device : "-");
    fputs(" |", f);
    if (isfinite(p->capability)) md_num(f, p->capability, 1, "%.4f");
    else fputs(" not scored |", f);
    if (isfinite(p->decode_ms) && isfinite(p->decode_ms_low) && isfinite(p->decode_ms_high))
        fprintf(f, " %.3f [%.3f, %.3f] |", p->decode_ms, p->decode_ms_low, p->decode_ms_high);
    else md_num(f, p->decode_ms, 1, "%.3f");
    fprintf(f, " %s |", p->stability[0] ? p->stability : "-");
    md_num(f, p->prefill_tok_s, 1, "%.1f");
    md_num(f, p->peak_rss_bytes, 1048576.0, "%.1f");
    md_num(f, p->cache_bytes, 1048576.0, "%.2f");
    md_num(f, p->params_total, 1e6, "%.1f");
    fputs(" `", f);
    md_text(f, p->text ? p->text : "(not stored)");
    fputs("` |\n", f);
}

static void md_table_head(FILE *f, const char *first, const char *est)
{
    fprintf(f, "| %s | device | capability | decode ms/tok (%s) [95%% CI] | measured "
               "| prefill tok/s | peak MiB | cache MiB | params M | genome |\n|---|---|---|---|---|---|---|---|---|---|\n", first,
            est);
}

int sh_report_write_md(const sh_report *r, FILE *f, sh_err *err)
{
    int front = 0;
    for (int i = 0; i < r->n_points; i++) front += r->points[i].on_front;
    fprintf(f, "# starhil run %lld: ", (long long)r->run.id);
    md_text(f, r->run.name);
    fputs("\n\n", f);
    fprintf(f, "- status: %s, seed %llu, created %s, updated %s\n", r->run.status,
            (unsigned long long)r->run.seed, r->run.created_at, r->run.updated_at);
    fprintf(f, "- genomes measured or ranked: %d; on the front: %d; generations: %d\n",
            r->n_points, front, r->n_gens);
    if (r->n_gens > 0) {
        const sh_rep_gen *g = &r->gens[r->n_gens - 1];
        fprintf(f, "- last generation %d: hypervolume %.6g, %d evaluations, front size %d\n",
                g->gen, g->hypervolume, g->evaluations, g->front_size);
    }
    fprintf(f, "- devices:");
    for (int i = 0; i < r->n_devices; i++) fprintf(f, " %s%s", r->devices[i].name, i + 1 < r->n_devices ? "," : "");
    fprintf(f, "%s\n\n## Front\n\n", r->n_devices ? "" : " none");
    md_table_head(f, "hash", r->decode_estimator);
    for (int i = 0; i < r->n_points; i++)
        if (r->points[i].on_front) md_point(f, &r->points[i], r->points[i].hash);
    for (int i = 0; i < r->n_points; i++)
        if (r->points[i].on_front && r->points[i].stability_reason[0])
            fprintf(f, "%s- %s on %s measured %s: %s\n", i ? "" : "\n", r->points[i].hash, r->points[i].device,
                    r->points[i].stability, r->points[i].stability_reason);
    fprintf(f, "\n## Presets on the same devices\n\n");
    if (r->n_presets == 0) fprintf(f, "No preset has been measured on these devices.\n");
    else {
        md_table_head(f, "preset", r->decode_estimator);
        for (int i = 0; i < r->n_presets; i++) md_point(f, &r->presets[i], r->presets[i].preset);
    }
    return ferror(f) ? sh_err_set(err, "report: write error") : 0;
}

/* ---- file names ------------------------------------------------------------------------ */

int sh_report_default_name(const char *db_path, int64_t run_id, const char *ext, char *out, size_t cap)
{
    const char *base = strrchr(db_path, '/');
    base = base ? base + 1 : db_path;
    char name[64];
    size_t n = 0;
    for (const char *c = base; *c && n + 1 < sizeof name; c++) {
        if (!strcmp(c, ".db") || !strcmp(c, ".sqlite") || !strcmp(c, ".sqlite3")) break;
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                  *c == '-' || *c == '_' || *c == '.';
        name[n++] = ok ? *c : '_';
    }
    name[n] = '\0';
    if (!n) snprintf(name, sizeof name, "db");
    return snprintf(out, cap, "report-%s-run%lld.%s", name, (long long)run_id, ext) < (int)cap ? 0 : -1;
}

/* ---- shared HTML helpers ------------------------------------------------------------- */

char *sh_rep_json_for_script(const char *json)
{
    size_t n = 0;
    for (const char *s = json; *s; s++) n += *s == '<' ? 6 : 1;
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (const char *s = json; *s; s++) {
        if (*s == '<') { memcpy(o, "\\u003c", 6); o += 6; }
        else *o++ = *s;
    }
    *o = 0;
    return out;
}

void sh_rep_html_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* ---- chip profiles ----------------------------------------------------------------------- */

static sh_prof_row *prof_find(sh_prof_table *t, const char *block, const char *params, const char *dtype)
{
    for (int i = 0; i < t->n_rows; i++)
        if (!strcmp(t->rows[i].block, block) && !strcmp(t->rows[i].params_json, params) &&
            !strcmp(t->rows[i].dtype, dtype))
            return &t->rows[i];
    return NULL;
}

static sh_prof_row *prof_add(sh_prof_table *t, const char *block, const char *params, const char *dtype)
{
    sh_prof_row *rows = realloc(t->rows, (size_t)(t->n_rows + 1) * sizeof *rows);
    if (!rows) return NULL;
    t->rows = rows;
    sh_prof_row *r = &rows[t->n_rows];
    r->block = strdup(block); r->params_json = strdup(params); r->dtype = strdup(dtype);
    r->cells = malloc((size_t)t->n_devices * sizeof *r->cells);
    t->n_rows++;
    if (!r->block || !r->params_json || !r->dtype || !r->cells) return NULL;
    for (int k = 0; k < t->n_devices; k++) r->cells[k] = (sh_prof_cell){NAN, NAN, NAN};
    return r;
}

static int prof_load_device(sh_db *db, sh_prof_table *t, int k, sh_err *err)
{
    sh_profile_rec *p;
    int n, rc = 0;
    if (sh_db_list_profile(db, t->devices[k], &p, &n, err) != 0) return -1;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *params = p[i].params_json ? p[i].params_json : "";
        sh_prof_row *r = prof_find(t, p[i].block, params, p[i].dtype);
        if (!r && !(r = prof_add(t, p[i].block, params, p[i].dtype))) rc = sh_err_set(err, "report: out of memory");
        else r->cells[k] = (sh_prof_cell){p[i].latency_us, p[i].gbytes_per_s, p[i].gflops};
    }
    sh_profile_recs_free(p, n);
    if (rc == 0 && n == 0)
        rc = sh_err_set(err, "device %s has no chip profile (run `starhil profile --device %s`)",
                        t->devices[k], t->devices[k]);
    return rc;
}

int sh_prof_load(sh_db *db, const char *const *devices, int n, sh_prof_table *t, sh_err *err)
{
    memset(t, 0, sizeof *t);
    if (n < 1) return sh_err_set(err, "profile comparison: no device given");
    t->devices = calloc((size_t)n, sizeof *t->devices);
    if (!t->devices) return sh_err_set(err, "report: out of memory");
    t->n_devices = n;
    for (int k = 0; k < n; k++) {
        if (strlen(devices[k]) >= sizeof t->devices[k] || !*devices[k]) {
            sh_prof_free(t);
            return sh_err_set(err, "device name \"%.80s\" is empty or too long", devices[k]);
        }
        snprintf(t->devices[k], sizeof t->devices[k], "%s", devices[k]);
    }
    int rc = 0;
    for (int k = 0; k < n && rc == 0; k++) rc = prof_load_device(db, t, k, err);
    if (rc != 0) sh_prof_free(t);
    return rc;
}

void sh_prof_free(sh_prof_table *t)
{
    if (!t) return;
    for (int i = 0; i < t->n_rows; i++) {
        free(t->rows[i].block); free(t->rows[i].params_json); free(t->rows[i].dtype);
        free(t->rows[i].cells);
    }
    free(t->rows);
    free(t->devices);
    memset(t, 0, sizeof *t);
}

char *sh_prof_json(const sh_prof_table *t, sh_err *err)
{
    json_t *devs = json_array(), *rows = json_array();
    for (int k = 0; k < t->n_devices; k++) json_array_append_new(devs, jstr(t->devices[k]));
    for (int i = 0; i < t->n_rows; i++) {
        const sh_prof_row *r = &t->rows[i];
        json_t *cells = json_object();
        for (int k = 0; k < t->n_devices; k++)
            json_object_set_new(cells, t->devices[k],
                                json_pack("{s:o,s:o,s:o}", "latency_us", num_or_null(r->cells[k].latency_us),
                                          "gbytes_per_s", num_or_null(r->cells[k].gbytes_per_s),
                                          "gflops", num_or_null(r->cells[k].gflops)));
        json_t *params = json_loads(r->params_json, 0, NULL);
        json_array_append_new(rows, json_pack("{s:o,s:o,s:o,s:o}", "block", jstr(r->block), "params",
                                              params ? params : jstr(r->params_json),
                                              "dtype", jstr(r->dtype), "devices", cells));
    }
    json_t *o = json_pack("{s:s,s:o,s:o}", "starhil_report", "profiles", "devices", devs, "rows", rows);
    char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!s) sh_err_set(err, "report: out of memory building JSON");
    return s;
}

int sh_prof_write_csv(const sh_prof_table *t, FILE *f, sh_err *err)
{
    fputs("block,params,dtype,device,latency_us,gbytes_per_s,gflops,latency_ratio_to_first\n", f);
    for (int i = 0; i < t->n_rows; i++)
        for (int k = 0; k < t->n_devices; k++) {
            const sh_prof_row *r = &t->rows[i];
            const sh_prof_cell *c = &r->cells[k];
            csv_field(f, r->block); fputc(',', f);
            csv_field(f, r->params_json); fputc(',', f);
            csv_field(f, r->dtype); fputc(',', f);
            csv_field(f, t->devices[k]);
            double vals[4] = {c->latency_us, c->gbytes_per_s, c->gflops,
                              c->latency_us / r->cells[0].latency_us};
            for (int j = 0; j < 4; j++) {
                if (isfinite(vals[j])) fprintf(f, ",%.17g", vals[j]);
                else fputc(',', f);
            }
            fputc('\n', f);
        }
    return ferror(f) ? sh_err_set(err, "report: write error") : 0;
}

int sh_prof_write_md(const sh_prof_table *t, FILE *f, sh_err *err)
{
    fprintf(f, "# Chip profiles: latency in us (ratio to %s)\n\n| block | params | dtype |", t->devices[0]);
    for (int k = 0; k < t->n_devices; k++) fprintf(f, " %s |", t->devices[k]);
    fputs("\n|---|---|---|", f);
    for (int k = 0; k < t->n_devices; k++) fputs("---|", f);
    fputc('\n', f);
    for (int i = 0; i < t->n_rows; i++) {
        const sh_prof_row *r = &t->rows[i];
        fprintf(f, "| %s | `%s` | %s |", r->block, r->params_json, r->dtype);
        for (int k = 0; k < t->n_devices; k++) {
            double v = r->cells[k].latency_us, base = r->cells[0].latency_us;
            if (!isfinite(v)) fputs(" - |", f);
            else if (k > 0 && isfinite(base) && base > 0) fprintf(f, " %.2f (x%.2f) |", v, v / base);
            else fprintf(f, " %.2f |", v);
        }
        fputc('\n', f);
    }
    return ferror(f) ? sh_err_set(err, "report: write error") : 0;
}
