/* mrecord.c - the measurement record's one JSON writer and one reader
 * (mrecord.h), including the spellings older starhils stored. */
#include "measure/mrecord.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const SH_SHARE_KINDS[SH_SHARE_N] = {"conv", "attention", "swiglu", "moe", "head"};

void sh_mrecord_init(sh_mrecord *r) { memset(r, 0, sizeof *r); }

void sh_mrecord_free(sh_mrecord *r)
{
    if (!r) return;
    free(r->settings_json);
    free(r->reference_json);
    free(r->rounds_json);
    free(r->build_json);
    free(r->cpu_json);
    free(r->probe_before_json);
    free(r->probe_after_json);
    memset(r, 0, sizeof *r);
}

/* ---- writer ------------------------------------------------------------------ */

static json_t *jreal(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *jtext(const char *s)
{
    json_t *j = s ? json_loads(s, 0, NULL) : NULL;
    return j ? j : json_null();
}

static void set(json_t *o, const char *k, json_t *v) { json_object_set_new(o, k, v); }

char *sh_mrecord_json(const sh_mrecord *r)
{
    json_t *o = json_object();
    if (!o) return NULL;
    set(o, "device", json_string(r->device));
    set(o, "kind", json_string(r->kind));
    set(o, "genome_hash", json_string(r->genome_hash));
    set(o, "settings", jtext(r->settings_json));
    set(o, "decode_ms_median", jreal(r->decode_ms_median));
    set(o, "decode_ci_low", jreal(r->decode_ci_low));
    set(o, "decode_ci_high", jreal(r->decode_ci_high));
    set(o, "ci_method", json_string("95% CI of the median from order statistics (exact binomial), over all per-token samples"));
    set(o, "decode_ms", jreal(r->decode_ms));
    set(o, "decode_ms_low", jreal(r->decode_ms_low));
    set(o, "decode_ms_high", jreal(r->decode_ms_high));
    set(o, "estimator", json_string(SH_DECODE_ESTIMATOR));
    set(o, "estimator_ci_method", json_string("95% bootstrap interval of the minimum (2000 resamples of the quiet repetitions)"));
    set(o, "stability", json_string(r->stability));
    set(o, "stability_reason", json_string(r->reason));
    set(o, "quiet_reps", json_integer(r->quiet_reps));
    set(o, "disturbed_reps", json_integer(r->disturbed_reps));
    set(o, "busy_reps", json_integer(r->busy_reps));
    set(o, "throttled_reps", json_integer(r->throttled_reps));
    set(o, "board_state_read", json_boolean(r->board_state_read));
    set(o, "busy_wait", jreal(r->busy_wait));
    set(o, "rounds_measured", json_integer(r->rounds));
    if (r->rounds_json) set(o, "rounds", jtext(r->rounds_json));
    set(o, "tolerance", jreal(r->tolerance));
    set(o, "converged", json_boolean(r->converged));
    set(o, "decode_tok_s", jreal(r->decode_tok_s));
    set(o, "prefill_tok_s", jreal(r->prefill_tok_s));
    set(o, "ttft_ms", jreal(r->ttft_ms));
    set(o, "peak_rss_bytes", jreal(r->peak_rss_bytes));
    set(o, "weight_bytes", jreal(r->weight_bytes));
    set(o, "kv_bytes", jreal(r->kv_bytes));
    set(o, "conv_state_bytes", jreal(r->conv_state_bytes));
    set(o, "reps", json_integer(r->reps));
    set(o, "invocations", json_integer(r->invocations));
    set(o, "decode_samples", json_integer(r->decode_samples));
    json_t *share = json_object(), *sp = json_object(), *sd = json_object();
    for (int k = 0; k < SH_SHARE_N; k++) {
        set(sp, SH_SHARE_KINDS[k], jreal(r->share_prefill[k]));
        set(sd, SH_SHARE_KINDS[k], jreal(r->share_decode[k]));
    }
    set(share, "prefill", sp);
    set(share, "decode", sd);
    set(o, "share", share);
    set(o, "build", jtext(r->build_json));
    set(o, "cpu", jtext(r->cpu_json));
    set(o, "probe_before", jtext(r->probe_before_json));
    set(o, "probe_after", jtext(r->probe_after_json));
    if (r->reference_json) set(o, "reference", jtext(r->reference_json));
    char *t = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return t;
}

/* ---- reader ------------------------------------------------------------------ */

static double num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int integer(json_t *o, const char *k)
{
    double v = num(o, k);
    return isfinite(v) && fabs(v) < 2e9 ? (int)v : 0;
}

static void str(json_t *o, const char *k, char *dst, size_t cap)
{
    json_t *v = json_object_get(o, k);
    snprintf(dst, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* The sub-object k as compact text (NULL if absent or null); -1 out of memory. */
static int sub(json_t *o, const char *k, char **dst)
{
    json_t *v = json_object_get(o, k);
    *dst = NULL;
    if (!v || json_is_null(v)) return 0;
    *dst = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return *dst ? 0 : -1;
}

int sh_mrecord_from_json(const char *text, sh_mrecord *r, sh_err *err)
{
    sh_mrecord_init(r);
    json_t *o = json_loads(text ? text : "", 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return sh_err_set(err, "stored measurement is not a JSON object");
    }
    str(o, "device", r->device, sizeof r->device);
    str(o, "kind", r->kind, sizeof r->kind);
    str(o, "genome_hash", r->genome_hash, sizeof r->genome_hash);
    r->decode_ms_median = num(o, "decode_ms_median");
    r->decode_ci_low = num(o, "decode_ci_low");
    r->decode_ci_high = num(o, "decode_ci_high");
    r->decode_tok_s = num(o, "decode_tok_s");
    json_t *dm = json_object_get(o, "decode_ms");
    if (json_is_number(dm)) {            /* the robust estimate */
        r->decode_ms = json_number_value(dm);
        r->decode_ms_low = num(o, "decode_ms_low");
        r->decode_ms_high = num(o, "decode_ms_high");
    } else {                             /* older rows: the median stands in */
        r->decode_ms = json_is_object(dm) ? num(dm, "median") : NAN;   /* the variant's own shape */
        if (isnan(r->decode_ms)) r->decode_ms = r->decode_ms_median;
        if (isnan(r->decode_ms) && r->decode_tok_s > 0) r->decode_ms = 1000.0 / r->decode_tok_s;
        r->decode_ms_low = r->decode_ci_low;
        r->decode_ms_high = r->decode_ci_high;
    }
    r->prefill_tok_s = num(o, "prefill_tok_s");
    r->ttft_ms = num(o, "ttft_ms");
    r->peak_rss_bytes = num(o, "peak_rss_bytes");
    r->weight_bytes = num(o, "weight_bytes");
    r->kv_bytes = num(o, "kv_bytes");
    r->conv_state_bytes = num(o, "conv_state_bytes");
    if (isnan(r->conv_state_bytes)) r->conv_state_bytes = num(o, "conv_bytes");
    json_t *share = json_object_get(o, "share");
    for (int k = 0; k < SH_SHARE_N; k++) {
        r->share_prefill[k] = num(json_object_get(share, "prefill"), SH_SHARE_KINDS[k]);
        r->share_decode[k] = num(json_object_get(share, "decode"), SH_SHARE_KINDS[k]);
    }
    r->reps = integer(o, "reps");
    r->invocations = integer(o, "invocations");
    r->decode_samples = integer(o, "decode_samples");
    r->quiet_reps = integer(o, "quiet_reps");
    r->disturbed_reps = integer(o, "disturbed_reps");
    r->busy_reps = integer(o, "busy_reps");
    r->throttled_reps = integer(o, "throttled_reps");
    r->rounds = integer(o, "rounds_measured");
    r->converged = json_is_true(json_object_get(o, "converged"));
    r->board_state_read = json_is_true(json_object_get(o, "board_state_read"));
    r->tolerance = num(o, "tolerance");
    r->busy_wait = num(o, "busy_wait");
    json_t *stab = json_object_get(o, "stability");
    if (json_is_string(stab)) {
        str(o, "stability", r->stability, sizeof r->stability);
        str(o, "stability_reason", r->reason, sizeof r->reason);
    } else if (json_is_false(json_object_get(o, "converged"))) {
        snprintf(r->stability, sizeof r->stability, "unstable");
        snprintf(r->reason, sizeof r->reason, "not converged (stored before stability checks)");
    }
    json_t *ref = json_object_get(o, "reference");
    double rel = num(ref, "relative");
    r->rel_to_reference = isfinite(rel) ? rel : 0;
    int rc = 0;
    if (sub(o, "settings", &r->settings_json) || sub(o, "reference", &r->reference_json) ||
        sub(o, "rounds", &r->rounds_json) || sub(o, "build", &r->build_json) || sub(o, "cpu", &r->cpu_json) ||
        sub(o, "probe_before", &r->probe_before_json) || sub(o, "probe_after", &r->probe_after_json))
        rc = sh_err_set(err, "out of memory");
    json_decref(o);
    if (rc) sh_mrecord_free(r);
    return rc;
}

double sh_mrecord_decode_ms(const sh_mrecord *r)
{
    if (r->decode_ms > 0) return r->decode_ms;
    return isfinite(r->decode_ms_median) ? r->decode_ms_median : NAN;
}

double sh_mrecord_prefill_ms(const sh_mrecord *r, int prompt)
{
    return r->prefill_tok_s > 0 ? 1e3 * (prompt > 0 ? prompt : 512) / r->prefill_tok_s : NAN;
}
