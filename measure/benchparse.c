/* benchparse.c - defensive parsing of what a variant prints on a device (bench
 * and probe JSON, untrusted: size caps, type and range checks on every field)
 * and the distribution-free confidence interval of a median. */
#include "measure/measure.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b);

#define MAX_STR 256
#define MAX_ARRAY 4096

static json_t *load_object(const char *text, size_t len, size_t cap, const char *what, sh_err *err)
{
    if (!text || len == 0) { sh_err_set(err, "%s output: empty", what); return NULL; }
    if (len > cap) { sh_err_set(err, "%s output: %zu bytes, more than the %zu allowed", what, len, cap); return NULL; }
    json_error_t je;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        sh_err_set(err, "%s output: not valid JSON (line %d: %.200s)", what, je.line, je.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        sh_err_set(err, "%s output: not a JSON object", what);
        return NULL;
    }
    return o;
}

static int get_num(json_t *o, const char *key, double lo, double hi, double *out, const char *what, sh_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v) return sh_err_set(err, "%s output: field '%s' missing", what, key);
    if (!json_is_number(v)) return sh_err_set(err, "%s output: field '%s' is not a number", what, key);
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi)
        return sh_err_set(err, "%s output: field '%s' = %g out of range [%g, %g]", what, key, x, lo, hi);
    *out = x;
    return 0;
}

static int get_num_array(json_t *o, const char *key, int min_n, int max_n, double **out, int *n,
                         const char *what, sh_err *err)
{
    json_t *a = json_object_get(o, key);
    if (!a) return sh_err_set(err, "%s output: field '%s' missing", what, key);
    if (!json_is_array(a)) return sh_err_set(err, "%s output: field '%s' is not an array", what, key);
    size_t len = json_array_size(a);
    if ((int)len < min_n || len > (size_t)max_n)
        return sh_err_set(err, "%s output: '%s' has %zu values (allowed %d to %d)", what, key, len, min_n, max_n);
    double *x = malloc((len ? len : 1) * sizeof *x);
    if (!x) return sh_err_set(err, "out of memory");
    for (size_t i = 0; i < len; i++) {
        json_t *v = json_array_get(a, i);
        double d = json_is_number(v) ? json_number_value(v) : -1;
        if (!json_is_number(v) || !isfinite(d) || d < 0 || d > 1e9) {
            free(x);
            return sh_err_set(err, "%s output: '%s'[%zu] is not a finite non-negative number", what, key, i);
        }
        x[i] = d;
    }
    *out = x;
    *n = (int)len;
    return 0;
}

static int get_share(json_t *share, const char *phase, double out[5], sh_err *err)
{
    json_t *o = json_object_get(share, phase);
    if (!json_is_object(o)) return sh_err_set(err, "bench output: share.%s missing or not an object", phase);
    for (int k = 0; k < SH_SHARE_N; k++) {
        char key[40];
        snprintf(key, sizeof key, "%s", SH_SHARE_KINDS[k]);
        if (get_num(o, key, 0, 1.0001, &out[k], "bench (share)", err)) return -1;
    }
    return 0;
}

/* Optional "state": one object per repetition (numbers, -1 = unknown; its
 * "steal" is optional within it). */
static int get_state(json_t *o, sh_bench_out *out, sh_err *err)
{
    json_t *a = json_object_get(o, "state");
    if (!a) return 0;
    if (!json_is_array(a) || (int)json_array_size(a) != out->reps)
        return sh_err_set(err, "bench output: 'state' is not an array of one object per repetition (%d)", out->reps);
    out->state = calloc((size_t)out->reps + 1, sizeof *out->state);
    if (!out->state) return sh_err_set(err, "out of memory");
    static const char *const keys[] = {"wall_s", "wait_s", "other_cpus", "procs_running", "load1", "freq_khz", "temp_mc"};
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *e = json_array_get(a, i);
        if (!json_is_object(e)) return sh_err_set(err, "bench output: state[%zu] is not an object", i);
        double v[7];
        for (int k = 0; k < 7; k++) {
            char what[48];
            snprintf(what, sizeof what, "bench (state[%zu])", i);
            if (get_num(e, keys[k], -1, 1e12, &v[k], what, err)) return -1;
        }
        /* "steal" came later: absent (an older variant) means unknown */
        double steal = -1;
        if (json_object_get(e, "steal")) {
            char what[48];
            snprintf(what, sizeof what, "bench (state[%zu])", i);
            if (get_num(e, "steal", -1, 1e6, &steal, what, err)) return -1;
        }
        out->state[i] = (sh_rep_state){v[0], v[1], v[2], v[3], v[4], v[5], v[6], steal};
    }
    out->n_state = (int)json_array_size(a);
    return 0;
}

void sh_bench_out_free(sh_bench_out *b)
{
    if (!b) return;
    free(b->decode_ms);
    free(b->prefill_ms);
    free(b->build_json);
    free(b->cpu_json);
    free(b->state);
    memset(b, 0, sizeof *b);
}

int sh_bench_parse(const char *text, size_t len, sh_bench_out *out, sh_err *err)
{
    memset(out, 0, sizeof *out);
    json_t *o = load_object(text, len, SH_BENCH_MAX_JSON, "bench", err);
    if (!o) return -1;
    int rc = -1;
    json_t *mode = json_object_get(o, "mode");
    json_t *hash = json_object_get(o, "genome_hash");
    json_t *build = json_object_get(o, "build"), *cpu = json_object_get(o, "cpu");
    json_t *dec = json_object_get(o, "decode_ms"), *share = json_object_get(o, "share");
    if (!json_is_string(mode) || strcmp(json_string_value(mode), "bench")) {
        sh_err_set(err, "bench output: 'mode' is not \"bench\"");
        goto done;
    }
    if (!json_is_string(hash) || strlen(json_string_value(hash)) != 16 ||
        strspn(json_string_value(hash), "0123456789abcdef") != 16) {
        sh_err_set(err, "bench output: 'genome_hash' is not 16 hex digits");
        goto done;
    }
    memcpy(out->genome_hash, json_string_value(hash), 17);
    if (!json_is_object(build) || !json_is_object(cpu)) {
        sh_err_set(err, "bench output: 'build' or 'cpu' missing or not an object");
        goto done;
    }
    if (!json_is_object(dec)) { sh_err_set(err, "bench output: 'decode_ms' is not an object"); goto done; }
    if (!json_is_object(share)) { sh_err_set(err, "bench output: 'share' is not an object"); goto done; }
    double reps_d;
    if (get_num(o, "prefill_tok_s", 0, 1e12, &out->prefill_tok_s, "bench", err) ||
        get_num(o, "decode_tok_s", 0, 1e12, &out->decode_tok_s, "bench", err) ||
        get_num(o, "ttft_ms", 0, 1e9, &out->ttft_ms, "bench", err) ||
        get_num(o, "peak_rss_bytes", 0, 1e15, &out->peak_rss_bytes, "bench", err) ||
        get_num(o, "weight_bytes", 0, 1e15, &out->weight_bytes, "bench", err) ||
        get_num(o, "kv_bytes", 0, 1e15, &out->kv_bytes, "bench", err) ||
        get_num(o, "conv_state_bytes", 0, 1e15, &out->conv_state_bytes, "bench", err) ||
        get_num_array(o, "prefill_ms", 1, 100000, &out->prefill_ms, &out->n_prefill, "bench", err) ||
        get_num_array(dec, "samples", 1, SH_BENCH_MAX_SAMPLES, &out->decode_ms, &out->n_decode, "bench (decode_ms)", err) ||
        get_num(dec, "median", 0, 1e9, &reps_d, "bench (decode_ms)", err) ||
        get_share(share, "prefill", out->share_prefill, err) ||
        get_share(share, "decode", out->share_decode, err))
        goto done;
    out->reps = out->n_prefill;
    if (get_state(o, out, err)) goto done;
    if (json_object_get(o, "decode_warmup_tokens")) {   /* absent from older variants */
        double *w = NULL;
        int nw = 0;
        if (get_num_array(o, "decode_warmup_tokens", 1, 100000, &w, &nw, "bench", err)) goto done;
        if (nw != out->reps) {
            free(w);
            sh_err_set(err, "bench output: 'decode_warmup_tokens' has %d entries for %d repetitions", nw, out->reps);
            goto done;
        }
        qsort(w, (size_t)nw, sizeof *w, cmp_double);
        out->decode_warmup_tokens = w[nw / 2];
        free(w);
    }
    json_t *ncpu = json_object_get(cpu, "n_cpus");
    if (json_is_integer(ncpu) && json_integer_value(ncpu) > 0 && json_integer_value(ncpu) <= 65536)
        out->n_cpus = (int)json_integer_value(ncpu);
    out->build_json = json_dumps(build, JSON_COMPACT);
    out->cpu_json = json_dumps(cpu, JSON_COMPACT);
    if (!out->build_json || !out->cpu_json) { sh_err_set(err, "out of memory"); goto done; }
    rc = 0;
done:
    json_decref(o);
    if (rc) sh_bench_out_free(out);
    return rc;
}

/* ---- probe ------------------------------------------------------------------ */

static json_t *copy_str(json_t *v)
{
    if (!json_is_string(v)) return NULL;
    const char *s = json_string_value(v);
    size_t n = strlen(s);
    return json_stringn(s, n > MAX_STR ? MAX_STR : n);
}

static json_t *copy_int(json_t *v, double lo, double hi)
{
    if (!json_is_number(v)) return NULL;
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi) return NULL;
    return json_integer((json_int_t)x);
}

/* Copies an array of objects keeping only the listed fields of the listed
 * types ('s' string, 'i' integer, 'b' bool, 'I' array of integers). */
static int copy_objects(json_t *src, json_t *dst_parent, const char *name, const char *const keys[],
                        const char *types, sh_err *err)
{
    json_t *a = json_object_get(src, name);
    if (!a) return 0;
    if (!json_is_array(a) || json_array_size(a) > MAX_ARRAY)
        return sh_err_set(err, "probe output: '%s' is not an array of at most %d", name, MAX_ARRAY);
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *e = json_array_get(a, i);
        if (!json_is_object(e)) { json_decref(out); return sh_err_set(err, "probe output: %s[%zu] is not an object", name, i); }
        json_t *c = json_object();
        for (int k = 0; keys[k]; k++) {
            json_t *v = json_object_get(e, keys[k]), *nv = NULL;
            if (!v) continue;
            switch (types[k]) {
            case 's': nv = copy_str(v); break;
            case 'i': nv = copy_int(v, -1e15, 1e15); break;
            case 'b': nv = json_is_boolean(v) ? json_boolean(json_is_true(v)) : NULL; break;
            case 'I':
                if (json_is_array(v) && json_array_size(v) <= MAX_ARRAY) {
                    nv = json_array();
                    for (size_t j = 0; j < json_array_size(v) && nv; j++) {
                        json_t *x = copy_int(json_array_get(v, j), 0, 1e6);
                        if (!x) { json_decref(nv); nv = NULL; break; }
                        json_array_append_new(nv, x);
                    }
                }
                break;
            }
            if (!nv) {
                json_decref(c);
                json_decref(out);
                return sh_err_set(err, "probe output: %s[%zu].%s has the wrong type", name, i, keys[k]);
            }
            json_object_set_new(c, keys[k], nv);
        }
        json_array_append_new(out, c);
    }
    json_object_set_new(dst_parent, name, out);
    return 0;
}

int sh_probe_parse(const char *text, size_t len, char **json_out, sh_err *err)
{
    *json_out = NULL;
    json_t *o = load_object(text, len, SH_BENCH_MAX_JSON, "probe", err);
    if (!o) return -1;
    json_t *n = json_object();
    int rc = -1;
    json_t *mode = json_object_get(o, "mode");
    if (!json_is_string(mode) || strcmp(json_string_value(mode), "probe")) {
        sh_err_set(err, "probe output: 'mode' is not \"probe\"");
        goto done;
    }
    json_object_set_new(n, "source", json_string("probe"));
    static const char *const strs[] = {"machine", "model"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(o, strs[i]);
        if (!v) continue;
        json_t *c = copy_str(v);
        if (!c) { sh_err_set(err, "probe output: '%s' is not a string", strs[i]); goto done; }
        json_object_set_new(n, strs[i], c);
    }
    static const char *const ints[] = {"n_cpus", "mem_total_bytes", "mem_available_bytes"};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(o, ints[i]);
        if (!v) continue;
        json_t *c = copy_int(v, 0, 1e16);
        if (!c) { sh_err_set(err, "probe output: '%s' is not a non-negative number", ints[i]); goto done; }
        json_object_set_new(n, ints[i], c);
    }
    static const char *const cpu_k[] = {"id", "online", "max_khz", "cur_khz", NULL};
    static const char *const cl_k[] = {"max_khz", "cpus", NULL};
    static const char *const ca_k[] = {"level", "type", "size_bytes", "cpus", NULL};
    static const char *const th_k[] = {"zone", "type", "millicelsius", NULL};
    if (copy_objects(o, n, "cpus", cpu_k, "ibii", err) ||
        copy_objects(o, n, "clusters", cl_k, "iI", err) ||
        copy_objects(o, n, "caches", ca_k, "isis", err) ||
        copy_objects(o, n, "thermal", th_k, "ssi", err))
        goto done;
    json_t *load = json_object_get(o, "load");
    if (load) {
        double busy, q, l1;
        if (!json_is_object(load) || get_num(load, "busy_cpus", -1, 1e6, &busy, "probe (load)", err) ||
            get_num(load, "procs_running", -1, 1e9, &q, "probe (load)", err) ||
            get_num(load, "load1", -1, 1e9, &l1, "probe (load)", err))
            goto done;
        json_object_set_new(n, "load", json_pack("{s:f,s:i,s:f}", "busy_cpus", busy, "procs_running",
                                                 (int)q, "load1", l1));
    }
    json_t *f = json_object_get(o, "freqs_khz");
    if (f) {
        if (!json_is_array(f) || json_array_size(f) > MAX_ARRAY) { sh_err_set(err, "probe output: 'freqs_khz' is not an array"); goto done; }
        json_t *fa = json_array();
        for (size_t i = 0; i < json_array_size(f); i++) {
            json_t *x = copy_int(json_array_get(f, i), -1, 1e9);   /* -1: unreadable */
            if (!x) { json_decref(fa); sh_err_set(err, "probe output: freqs_khz[%zu] is not a frequency", i); goto done; }
            json_array_append_new(fa, x);
        }
        json_object_set_new(n, "freqs_khz", fa);
    }
    *json_out = json_dumps(n, JSON_COMPACT);
    rc = *json_out ? 0 : sh_err_set(err, "out of memory");
done:
    json_decref(n);
    json_decref(o);
    return rc;
}

/* ---- median CI ---------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* log of P(Binomial(n, 1/2) = k) */
static double log_pmf_half(int n, int k)
{
    return lgamma(n + 1.0) - lgamma(k + 1.0) - lgamma(n - k + 1.0) - n * log(2.0);
}

int sh_median_ci(const double *x, int n, double *median, double *lo, double *hi)
{
    if (n <= 0) return -1;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return -1;
    memcpy(s, x, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    *median = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    /* l = largest rank with P(B <= l-1) <= 0.025; start the sum where the lower
     * tail is negligible so large n cost O(sqrt n). */
    int start = (int)floor(n / 2.0 - 8.0 * sqrt((double)n) / 2.0);
    if (start < 0) start = 0;
    double cdf = 0;
    int l = 1;
    for (int k = start; k < n; k++) {
        cdf += exp(log_pmf_half(n, k));
        if (cdf > 0.025) break;
        l = k + 1;   /* P(B <= l-1) <= 0.025 holds for l = k+1 */
    }
    if (l > (n + 1) / 2) l = (n + 1) / 2;
    if (l < 1) l = 1;
    *lo = s[l - 1];
    *hi = s[n - l];
    free(s);
    return 0;
}

double sh_median_ci_coverage(int n)
{
    if (n <= 0) return 0;
    /* the same rank l as sh_median_ci; coverage = 1 - 2 P(B <= l-1) */
    int start = (int)floor(n / 2.0 - 8.0 * sqrt((double)n) / 2.0);
    if (start < 0) start = 0;
    double cdf = 0, below = 0;
    int l = 1;
    for (int k = start; k < n; k++) {
        cdf += exp(log_pmf_half(n, k));
        if (cdf > 0.025) break;
        l = k + 1;
        below = cdf;
    }
    if (l > (n + 1) / 2) l = (n + 1) / 2;
    if (l <= 1) below = exp(log_pmf_half(n, 0));   /* [min, max]: misses when all fall on one side */
    return fmax(0, 1 - 2 * below);
}

/* ---- the robust estimate -------------------------------------------------------- */

/* Continued fraction of the regularized incomplete beta function (DLMF
 * 8.17.22), evaluated from the top by the modified Lentz method; converges
 * fast for x < (a+1)/(a+b+2). */
static double beta_cf(double a, double b, double x)
{
    const double tiny = 1e-300;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    if (fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double f = d;
    for (int m = 1; m <= 300; m++) {
        for (int step = 0; step < 2; step++) {
            /* d_2m, then d_2m+1 */
            double num = step == 0 ? m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
                                   : -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
            d = 1 + num * d;
            if (fabs(d) < tiny) d = tiny;
            c = 1 + num / c;
            if (fabs(c) < tiny) c = tiny;
            d = 1 / d;
            f *= c * d;
            if (step == 1 && fabs(c * d - 1) < 1e-15) return f;
        }
    }
    return f;
}

/* I_x(a, b), the Beta(a, b) distribution function at x. */
static double beta_cdf(double a, double b, double x)
{
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
    if (x < (a + 1) / (a + b + 2)) return front * beta_cf(a, b, x) / a;
    return 1 - front * beta_cf(b, a, 1 - x) / b;
}

/* Harrell-Davis weights of the p-quantile for n sorted values. */
static void hd_weights(int n, double p, double *w)
{
    double a = p * (n + 1), b = (1 - p) * (n + 1), prev = 0;
    for (int i = 1; i <= n; i++) {
        double cur = i == n ? 1 : beta_cdf(a, b, (double)i / n);
        w[i - 1] = cur - prev;
        prev = cur;
    }
}

static double hd_sorted(const double *s, const double *w, int n)
{
    double e = 0;
    for (int i = 0; i < n; i++) e += w[i] * s[i];
    return e;
}

double sh_hd_quantile(const double *x, int n, double p)
{
    if (n <= 0 || !(p > 0 && p < 1)) return NAN;
    double *s = malloc(2 * (size_t)n * sizeof *s);
    if (!s) return NAN;
    double *w = s + n;
    memcpy(s, x, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    hd_weights(n, p, w);
    double e = hd_sorted(s, w, n);
    free(s);
    return e;
}

int sh_decode_estimate_ci(const double *x, int n, double *est, double *lo, double *hi)
{
    if (n <= 0) return -1;
    enum { B = 2000 };
    double *s = malloc(((size_t)2 * n + B) * sizeof *s);
    if (!s) return -1;
    double *w = s + n, *boot = s + 2 * n;
    hd_weights(n, SH_DECODE_QUANTILE, w);
    memcpy(s, x, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    *est = hd_sorted(s, w, n);
    /* percentile bootstrap: resample the repetitions with replacement (a
     * fixed seed: the same input gives the same interval); a resample is
     * sorted by counting how often each sorted value was drawn */
    int *cnt = malloc((size_t)n * sizeof *cnt);
    if (!cnt) { free(s); return -1; }
    uint64_t st = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    for (int b = 0; b < B; b++) {
        memset(cnt, 0, (size_t)n * sizeof *cnt);
        for (int i = 0; i < n; i++) {
            st ^= st << 13; st ^= st >> 7; st ^= st << 17;          /* xorshift64 */
            cnt[st % (uint64_t)n]++;
        }
        double e = 0;
        for (int i = 0, k = 0; i < n; i++)
            for (int c = 0; c < cnt[i]; c++) e += w[k++] * s[i];
        boot[b] = e;
    }
    free(cnt);
    qsort(boot, B, sizeof *boot, cmp_double);
    *lo = fmin(boot[(int)(0.025 * (B - 1))], *est);
    *hi = fmax(boot[(int)(0.975 * (B - 1))], *est);
    free(s);
    return 0;
}
