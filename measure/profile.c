/* profile.c - the chip-profile sweep of profile.h: builds single-block-kind
 * genomes, measures them, and turns the per-kind decode time shares into a
 * per-block latency / bandwidth / FLOP-rate table stored with the device. */
#include "measure/profile.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { P_CONV, P_GQA, P_SWIGLU, P_MOE } point_kind;

typedef struct point {
    point_kind kind;
    int d;           /* hidden */
    int a, b, c;     /* conv: kernel | gqa: heads, kv heads | swiglu: width | moe: E, K, Fe */
    int depth;       /* gqa context depth */
} point;

#define HEAD_DIM_FULL 64
#define HEAD_DIM_QUICK 32

static int head_dim(bool quick) { return quick ? HEAD_DIM_QUICK : HEAD_DIM_FULL; }

/* The sweep's points (at most cap). */
static int make_points(bool quick, int max_depth, point *p, int cap)
{
    int n = 0;
#define ADD(...) do { if (n < cap) p[n++] = (point){__VA_ARGS__}; } while (0)
    if (quick) {
        ADD(P_CONV, 64, 3, 0, 0, 0);
        ADD(P_GQA, 64, 2, 1, 0, 0);
        if (max_depth > 0) ADD(P_GQA, 64, 2, 1, 0, max_depth);
        ADD(P_SWIGLU, 64, 128, 0, 0, 0);
        ADD(P_MOE, 64, 4, 2, 64, 0);
        return n;
    }
    static const int conv_d[] = {512, 1024, 2048};
    for (size_t i = 0; i < 3; i++) ADD(P_CONV, conv_d[i], 3, 0, 0, 0);
    static const int heads[][2] = {{8, 8}, {16, 8}, {16, 4}, {32, 8}};
    static const int depths[] = {0, 1024, 8192, 32768};
    for (size_t h = 0; h < 4; h++)
        for (size_t k = 0; k < 4; k++)
            if (depths[k] <= max_depth) ADD(P_GQA, 1024, heads[h][0], heads[h][1], 0, depths[k]);
    static const int widths[] = {1024, 2816, 4608, 8192};
    for (size_t i = 0; i < 4; i++) ADD(P_SWIGLU, 1024, widths[i], 0, 0, 0);
    static const int moe[][3] = {{8, 2, 512}, {32, 4, 512}, {64, 8, 256}};
    for (size_t i = 0; i < 3; i++) ADD(P_MOE, 1024, moe[i][0], moe[i][1], moe[i][2], 0);
#undef ADD
    return n;
}

static int point_genome(const point *pt, bool quick, int ctx, sh_genome *g, sh_err *err)
{
    int layers = quick ? 2 : 4;
    int small_f = quick ? 64 : 256;       /* companion FFN, cheap */
    char text[512], layer[128];
    switch (pt->kind) {
    case P_CONV: snprintf(layer, sizeof layer, "conv(%d)/swiglu(%d)", pt->a, small_f); break;
    case P_GQA: snprintf(layer, sizeof layer, "gqa(%d,%d)/swiglu(%d)", pt->a, pt->b, small_f); break;
    case P_SWIGLU: snprintf(layer, sizeof layer, "conv(3)/swiglu(%d)", pt->a); break;
    case P_MOE: snprintf(layer, sizeof layer, "conv(3)/moe(%d,%d,%d)", pt->a, pt->b, pt->c); break;
    }
    snprintf(text, sizeof text, "d=%d v=256 hd=%d theta=10000 eps=1e-05 ctx=%d tie=1 | %s*%d",
             pt->d, head_dim(quick), ctx, layer, layers);
    return sh_genome_parse(text, g, err);
}

static const char *point_block(point_kind k)
{
    static const char *const names[] = {"conv", "gqa", "swiglu", "moe"};
    return names[k];
}

/* index into SH_SHARE_KINDS */
static int share_index(point_kind k)
{
    switch (k) {
    case P_CONV: return 0;
    case P_GQA: return 1;
    case P_SWIGLU: return 2;
    default: return 3;
    }
}

/* Bytes read and FLOPs per decoded token of one block at context n. */
static void block_cost(const point *pt, bool quick, sh_dtype t, int n, double *bytes, double *flops)
{
    double d = pt->d, hd = head_dim(quick);
    switch (pt->kind) {
    case P_CONV:
        *bytes = (double)sh_dtype_bytes(t, (uint64_t)(4 * pt->d) * (uint64_t)pt->d) + 4.0 * pt->a * d;
        *flops = 2.0 * 4 * d * d + 2.0 * pt->a * d;
        break;
    case P_GQA: {
        double mat = d * hd * (2.0 * pt->a + 2.0 * pt->b);
        *bytes = (double)sh_dtype_bytes(t, (uint64_t)mat) + 2.0 * pt->b * hd * n * 4.0;
        *flops = 2.0 * mat + 4.0 * pt->a * hd * n;
        break;
    }
    case P_SWIGLU:
        *bytes = (double)sh_dtype_bytes(t, (uint64_t)(3 * pt->d) * (uint64_t)pt->a);
        *flops = 6.0 * d * pt->a;
        break;
    case P_MOE:
        *bytes = (double)sh_dtype_bytes(t, (uint64_t)(3 * pt->d) * (uint64_t)pt->c * (uint64_t)pt->b) + 4.0 * d * pt->a;
        *flops = 6.0 * d * pt->c * pt->b + 2.0 * d * pt->a;
        break;
    }
}

static char *point_params(const point *pt, bool quick, int prompt, int gen)
{
    json_t *o = json_object();
    json_object_set_new(o, "d", json_integer(pt->d));
    switch (pt->kind) {
    case P_CONV: json_object_set_new(o, "kernel", json_integer(pt->a)); break;
    case P_GQA:
        json_object_set_new(o, "heads", json_integer(pt->a));
        json_object_set_new(o, "kv_heads", json_integer(pt->b));
        json_object_set_new(o, "head_dim", json_integer(head_dim(quick)));
        json_object_set_new(o, "depth", json_integer(pt->depth));
        break;
    case P_SWIGLU: json_object_set_new(o, "width", json_integer(pt->a)); break;
    case P_MOE:
        json_object_set_new(o, "experts", json_integer(pt->a));
        json_object_set_new(o, "top_k", json_integer(pt->b));
        json_object_set_new(o, "expert_width", json_integer(pt->c));
        break;
    }
    json_object_set_new(o, "prompt", json_integer(prompt));
    json_object_set_new(o, "gen", json_integer(gen));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

typedef struct row_store {
    sh_profile_row *rows;
    char **strs;       /* owned params_json / dtype strings */
    int n, cap, n_strs;
} row_store;

static void rows_free(row_store *r)
{
    for (int i = 0; i < r->n_strs; i++) free(r->strs[i]);
    free(r->strs);
    free(r->rows);
}

static int rows_add(row_store *r, sh_profile_row row, char *params, char *dtype)
{
    if (r->n == r->cap) {
        int nc = r->cap ? r->cap * 2 : 32;
        sh_profile_row *p = realloc(r->rows, (size_t)nc * sizeof *p);
        char **s = p ? realloc(r->strs, (size_t)nc * 2 * sizeof *s) : NULL;
        if (p) r->rows = p;
        if (!p || !s) { free(params); free(dtype); return -1; }
        r->strs = s;
        r->cap = nc;
    }
    r->strs[r->n_strs++] = params;
    r->strs[r->n_strs++] = dtype;
    row.params_json = params;
    row.dtype = dtype;
    r->rows[r->n++] = row;
    return 0;
}

static int parse_wtypes(const char *list, sh_dtype out[SH_DTYPE_COUNT], int *n, sh_err *err)
{
    *n = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        sh_dtype t;
        if (sh_dtype_parse(tok, &t)) return sh_err_set(err, "profile: unknown weight type '%.32s'", tok);
        if (*n < SH_DTYPE_COUNT) out[(*n)++] = t;
    }
    if (!*n) return sh_err_set(err, "profile: no weight types given");
    return 0;
}

int sh_profile_device(sh_db *db, const char *device, const sh_profile_opts *opts,
                      int *n_rows, char **rows_json, sh_err *err)
{
    sh_profile_opts o = opts ? *opts : (sh_profile_opts){0};
    if (n_rows) *n_rows = 0;
    if (rows_json) *rows_json = NULL;
    sh_dtype types[SH_DTYPE_COUNT];
    int nt;
    if (parse_wtypes(o.wtypes ? o.wtypes : o.quick ? "f32" : "f32,f16,q8_0,q4_0", types, &nt, err)) return -1;
    int max_depth = o.max_depth > 0 ? o.max_depth : o.quick ? 64 : 32768;
    point pts[64];
    int np = make_points(o.quick, max_depth, pts, 64);
    int prompt = o.quick ? 8 : 64, gen = o.quick ? 8 : 64;
    row_store rs = {0};
    int rc = 0;
    for (int ti = 0; ti < nt && !rc; ti++) {
        for (int i = 0; i < np && !rc; i++) {
            const point *pt = &pts[i];
            sh_genome g;
            int ctx = pt->depth + prompt + gen + 64;
            if (ctx < 1024) ctx = 1024;
            if (point_genome(pt, o.quick, ctx, &g, err)) { rc = -1; break; }
            sh_measure_opts mo = {
                .prompt = prompt, .gen = gen, .depth = pt->depth, .threads = o.threads,
                .wtype = sh_dtype_name(types[ti]), .tolerance = 0.05,
                .min_reps = o.quick ? 1 : 3, .max_reps = o.quick ? 2 : 9,
                .reps_per_run = o.quick ? 2 : 3, .timeout_s = o.timeout_s, .retries = o.retries,
                .no_probe = true, .settle_rounds = -1, .progress = o.progress, .progress_ctx = o.progress_ctx};
            sh_mrecord r;
            if (sh_measure_genome(db, device, &g, &mo, &r, err)) {
                sh_err_prefix(err, "profile point %s #%d (%s)", point_block(pt->kind), i, sh_dtype_name(types[ti]));
                rc = -1;
                break;
            }
            int layers = g.n_layers;
            double share = r.share_decode[share_index(pt->kind)];
            if (!isfinite(share)) share = 0;
            double lat_us = r.decode_ms * 1000.0 * share / layers;   /* the robust estimate */
            double bytes = 0, flops = 0;
            block_cost(pt, o.quick, types[ti], pt->depth + prompt + gen / 2, &bytes, &flops);
            sh_profile_row row = {
                .block = point_block(pt->kind), .latency_us = lat_us,
                .gbytes_per_s = lat_us > 0 ? bytes / (lat_us * 1e-6) / 1e9 : 0,
                .gflops = lat_us > 0 ? flops / (lat_us * 1e-6) / 1e9 : 0};
            sh_mrecord_free(&r);
            char *params = point_params(pt, o.quick, prompt, gen);
            char *dt = strdup(sh_dtype_name(types[ti]));
            if (!params || !dt || rows_add(&rs, row, params, dt)) {
                rc = sh_err_set(err, "out of memory");
                break;
            }
        }
    }
    if (!rc) rc = sh_db_put_profile(db, device, rs.rows, rs.n, err);
    if (!rc && rows_json) {
        json_t *a = json_array();
        for (int i = 0; i < rs.n; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "block", json_string(rs.rows[i].block));
            json_object_set_new(e, "params", json_loads(rs.rows[i].params_json, 0, NULL));
            json_object_set_new(e, "dtype", json_string(rs.rows[i].dtype));
            json_object_set_new(e, "latency_us", json_real(rs.rows[i].latency_us));
            json_object_set_new(e, "gbytes_per_s", json_real(rs.rows[i].gbytes_per_s));
            json_object_set_new(e, "gflops", json_real(rs.rows[i].gflops));
            json_array_append_new(a, e);
        }
        *rows_json = json_dumps(a, JSON_INDENT(1));
        json_decref(a);
    }
    if (!rc && n_rows) *n_rows = rs.n;
    rows_free(&rs);
    return rc;
}

/* ---- comparing stored profiles ---------------------------------------------------- */

static json_t *metrics(const sh_profile_rec *r)
{
    if (!r || isnan(r->latency_us)) return json_null();
    json_t *m = json_object();
    json_object_set_new(m, "latency_us", json_real(r->latency_us));
    json_object_set_new(m, "gbytes_per_s", json_real(r->gbytes_per_s));
    json_object_set_new(m, "gflops", json_real(r->gflops));
    return m;
}

/* The row of `rows` measuring the same block, sizes and dtype as `r`. */
static const sh_profile_rec *same_block(const sh_profile_rec *r, const sh_profile_rec *rows, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].block, r->block) && !strcmp(rows[i].dtype, r->dtype) &&
            !strcmp(rows[i].params_json ? rows[i].params_json : "", r->params_json ? r->params_json : ""))
            return &rows[i];
    return NULL;
}

int sh_profile_compare(sh_db *db, const char *a, const char *b, char **json_out, sh_err *err)
{
    *json_out = NULL;
    sh_profile_rec *ra = NULL, *rb = NULL;
    int na = 0, nb = 0;
    if (sh_db_list_profile(db, a, &ra, &na, err) != 0) return -1;
    if (b && sh_db_list_profile(db, b, &rb, &nb, err) != 0) {
        sh_profile_recs_free(ra, na);
        return -1;
    }
    json_t *arr = json_array();
    for (int i = 0; i < na; i++) {
        const sh_profile_rec *pa = &ra[i], *pb = b ? same_block(pa, rb, nb) : NULL;
        json_t *e = json_object();
        json_object_set_new(e, "block", json_string(pa->block));
        json_t *params = pa->params_json ? json_loads(pa->params_json, 0, NULL) : NULL;
        json_object_set_new(e, "params", params ? params : json_null());
        json_object_set_new(e, "dtype", json_string(pa->dtype));
        json_object_set_new(e, "a", metrics(pa));
        json_object_set_new(e, "b", b ? metrics(pb) : json_null());
        bool both = pb && !isnan(pb->latency_us) && pa->latency_us > 0;
        json_object_set_new(e, "b_over_a", both ? json_real(pb->latency_us / pa->latency_us) : json_null());
        json_array_append_new(arr, e);
    }
    sh_profile_recs_free(ra, na);
    sh_profile_recs_free(rb, nb);
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return sh_err_set(err, "device %s has no stored profile (run `starhil profile --device %s`)", a, a);
    }
    *json_out = json_dumps(arr, JSON_INDENT(1));
    json_decref(arr);
    return *json_out ? 0 : sh_err_set(err, "out of memory");
}
