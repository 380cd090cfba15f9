/* mrecord.c - the measurement record's one JSON writer and one reader
 * (mrecord.h), including the spellings older starhils stored. */
#include "measure/mrecord.h"

#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const SH_SHARE_KINDS[SH_SHARE_N] = {"conv", "attention", "swiglu", "moe", "head"};

void sh_mrecord_init(sh_mrecord *r) { memset(r, 0, sizeof *r); }

/* ---- the fields, in the order the writer writes them ------------------------- */

/* kinds: 's' char array, 'd' double, 'o' a double written only when it is
 * finite and positive (read as 'd'), 'i' int, 'b' bool, 'c' a constant
 * (written, not read), 'j' JSON text (null when absent), 'J' JSON text
 * (left out when absent), 'S' the share object (special) */
typedef struct field { const char *key; char kind; size_t off, cap; const char *text; } field;
#define F(key, kind, member) {key, kind, offsetof(sh_mrecord, member), sizeof(((sh_mrecord *)0)->member), NULL}
#define C(key, text) {key, 'c', 0, 0, text}
static const field FIELDS[] = {
    F("device", 's', device), F("kind", 's', kind), F("genome_hash", 's', genome_hash),
    F("settings", 'j', settings_json),
    F("decode_ms_median", 'd', decode_ms_median), F("decode_ci_low", 'd', decode_ci_low),
    F("decode_ci_high", 'd', decode_ci_high),
    C("ci_method", "95% CI of the median from order statistics (exact binomial), over all per-token samples"),
    F("decode_ms", 'd', decode_ms), F("decode_ms_low", 'd', decode_ms_low), F("decode_ms_high", 'd', decode_ms_high),
    F("estimator", 's', estimator), F("estimator_ci_method", 's', estimator_ci_method),
    F("decode_ms_normalized", 'o', decode_ms_normalized), F("decode_ms_normalized_low", 'o', decode_ms_normalized_low),
    F("decode_ms_normalized_high", 'o', decode_ms_normalized_high),
    F("reference_anchor_ms", 'o', reference_anchor_ms), F("decode_warmup_tokens", 'o', decode_warmup_tokens),
    F("stability", 's', stability), F("stability_reason", 's', reason),
    F("quiet_reps", 'i', quiet_reps), F("disturbed_reps", 'i', disturbed_reps), F("busy_reps", 'i', busy_reps),
    F("throttled_reps", 'i', throttled_reps), F("steal_reps", 'i', steal_reps), F("steal_max", 'd', steal_max),
    F("shared_reps", 'i', shared_reps), F("others_max", 'd', others_max),
    F("board_state_read", 'b', board_state_read),
    F("busy_wait", 'd', busy_wait), F("rounds_measured", 'i', rounds), F("rounds", 'J', rounds_json), F("cpu_groups", 'J', cpu_groups_json),
    F("tolerance", 'd', tolerance), F("converged", 'b', converged),
    F("decode_tok_s", 'd', decode_tok_s), F("prefill_tok_s", 'd', prefill_tok_s), F("ttft_ms", 'd', ttft_ms),
    F("peak_rss_bytes", 'd', peak_rss_bytes), F("weight_bytes", 'd', weight_bytes), F("kv_bytes", 'd', kv_bytes),
    F("conv_state_bytes", 'd', conv_state_bytes),
    F("reps", 'i', reps), F("invocations", 'i', invocations), F("decode_samples", 'i', decode_samples),
    {"share", 'S', 0, 0, NULL},
    F("build", 'j', build_json), F("cpu", 'j', cpu_json), F("probe_before", 'j', probe_before_json),
    F("probe_after", 'j', probe_after_json), F("reference", 'J', reference_json),
    F("reference_sped_up", 'J', sped_up_json),
};
#undef F
#undef C
#define N_FIELDS (sizeof FIELDS / sizeof FIELDS[0])

#define AT(r, f, type) ((type)(void *)((char *)(r) + (f)->off))

const double *sh_mrecord_number(const sh_mrecord *r, const char *key)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if ((FIELDS[i].kind == 'd' || FIELDS[i].kind == 'o') && !strcmp(FIELDS[i].key, key))
            return AT(r, &FIELDS[i], const double *);
    return NULL;
}

void sh_mrecord_free(sh_mrecord *r)
{
    if (!r) return;
    for (size_t i = 0; i < N_FIELDS; i++)
        if (FIELDS[i].kind == 'j' || FIELDS[i].kind == 'J') free(*AT(r, &FIELDS[i], char **));
    memset(r, 0, sizeof *r);
}

/* ---- writer ------------------------------------------------------------------ */

static json_t *jreal(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *jtext(const char *s)
{
    json_t *j = s ? json_loads(s, 0, NULL) : NULL;
    return j ? j : json_null();
}

static json_t *share_json(const sh_mrecord *r)
{
    json_t *share = json_object(), *sp = json_object(), *sd = json_object();
    for (int k = 0; k < SH_SHARE_N; k++) {
        json_object_set_new(sp, SH_SHARE_KINDS[k], jreal(r->share_prefill[k]));
        json_object_set_new(sd, SH_SHARE_KINDS[k], jreal(r->share_decode[k]));
    }
    json_object_set_new(share, "prefill", sp);
    json_object_set_new(share, "decode", sd);
    return share;
}

char *sh_mrecord_json(const sh_mrecord *r)
{
    json_t *o = json_object();
    if (!o) return NULL;
    for (size_t i = 0; i < N_FIELDS; i++) {
        const field *f = &FIELDS[i];
        json_t *v = NULL;
        switch (f->kind) {
        case 's': v = json_string(AT(r, f, const char *)); break;
        case 'd': v = jreal(*AT(r, f, const double *)); break;
        case 'o': v = *AT(r, f, const double *) > 0 && isfinite(*AT(r, f, const double *))
                          ? json_real(*AT(r, f, const double *)) : NULL; break;
        case 'i': v = json_integer(*AT(r, f, const int *)); break;
        case 'b': v = json_boolean(*AT(r, f, const bool *)); break;
        case 'c': v = json_string(f->text); break;
        case 'j': v = jtext(*AT(r, f, char *const *)); break;
        case 'J': v = *AT(r, f, char *const *) ? jtext(*AT(r, f, char *const *)) : NULL; break;
        case 'S': v = share_json(r); break;
        }
        if (v) json_object_set_new(o, f->key, v);
    }
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

/* One field from o (absent: "", NaN, 0, false, NULL); -1 out of memory. */
static int read_field(json_t *o, const field *f, sh_mrecord *r)
{
    json_t *v = json_object_get(o, f->key);
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    switch (f->kind) {
    case 's': snprintf(AT(r, f, char *), f->cap, "%s", json_is_string(v) ? json_string_value(v) : ""); break;
    case 'd': case 'o': *AT(r, f, double *) = x; break;
    case 'i': *AT(r, f, int *) = isfinite(x) && fabs(x) < 2e9 ? (int)x : 0; break;
    case 'b': *AT(r, f, bool *) = json_is_true(v); break;
    case 'j': case 'J':
        if (v && !json_is_null(v) && !(*AT(r, f, char **) = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)))
            return -1;
        break;
    case 'S':
        for (int k = 0; k < SH_SHARE_N; k++) {
            r->share_prefill[k] = num(json_object_get(v, "prefill"), SH_SHARE_KINDS[k]);
            r->share_decode[k] = num(json_object_get(v, "decode"), SH_SHARE_KINDS[k]);
        }
        break;
    }
    return 0;
}

/* What older starhils stored, read as today's figures. */
static void read_older(json_t *o, sh_mrecord *r)
{
    json_t *dm = json_object_get(o, "decode_ms");
    if (!json_is_number(dm)) {           /* before the robust estimate: the median stands in */
        r->decode_ms = json_is_object(dm) ? num(dm, "median") : NAN;   /* the variant's own shape */
        if (isnan(r->decode_ms)) r->decode_ms = r->decode_ms_median;
        if (isnan(r->decode_ms) && r->decode_tok_s > 0) r->decode_ms = 1000.0 / r->decode_tok_s;
        r->decode_ms_low = r->decode_ci_low;
        r->decode_ms_high = r->decode_ci_high;
        snprintf(r->estimator, sizeof r->estimator, "median of all tokens");
        snprintf(r->estimator_ci_method, sizeof r->estimator_ci_method, "95%% CI of the median from order statistics");
    }
    if (isnan(r->conv_state_bytes)) r->conv_state_bytes = num(o, "conv_bytes");
    if (!json_is_string(json_object_get(o, "stability")) && json_is_false(json_object_get(o, "converged"))) {
        snprintf(r->stability, sizeof r->stability, "unstable");
        snprintf(r->reason, sizeof r->reason, "not converged (stored before stability checks)");
    }
}

int sh_mrecord_from_json(const char *text, sh_mrecord *r, sh_err *err)
{
    sh_mrecord_init(r);
    json_t *o = json_loads(text ? text : "", 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return sh_err_set(err, "stored measurement is not a JSON object");
    }
    int rc = 0;
    for (size_t i = 0; i < N_FIELDS && rc == 0; i++)
        if (read_field(o, &FIELDS[i], r)) rc = sh_err_set(err, "out of memory");
    read_older(o, r);
    double rel = num(json_object_get(o, "reference"), "relative");
    r->rel_to_reference = isfinite(rel) ? rel : 0;
    json_decref(o);
    if (rc) sh_mrecord_free(r);
    return rc;
}

double sh_mrecord_decode_ms(const sh_mrecord *r)
{
    if (r->decode_ms > 0) return r->decode_ms;
    return isfinite(r->decode_ms_median) ? r->decode_ms_median : NAN;
}

double sh_mrecord_decode_ms_normalized(const sh_mrecord *r)
{
    return r->decode_ms_normalized > 0 && isfinite(r->decode_ms_normalized) ? r->decode_ms_normalized : NAN;
}

double sh_mrecord_prefill_ms(const sh_mrecord *r, int prompt)
{
    return r->prefill_tok_s > 0 ? 1e3 * (prompt > 0 ? prompt : 512) / r->prefill_tok_s : NAN;
}
