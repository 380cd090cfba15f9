/* mrecord.h - the measurement record: one typed struct for what a measurement
 * of one genome on one device found (decode latency with its statistics, the
 * robust estimate and its interval, prefill, memory and cache bytes, the
 * settings, build and device, the protocol's stability verdict), with its one
 * JSON writer (what the store keeps as an evaluation's result) and its one
 * reader.  The coordinator fills it (measure.c, from what benchparse.c parsed
 * of the variant's output), the store keeps its JSON, the search takes its
 * objectives from it and the reports read it back.
 *
 * Spellings: the JSON keys are the field names below (decode_ms is the robust
 * estimate; decode_ms_median the median of every token; conv_state_bytes the
 * conv state), except `reason` (key "stability_reason") and `rounds` (key
 * "rounds_measured"; "rounds" is the per-round list).  The reader also takes
 * what older starhils stored: rows without the robust estimate (decode_ms is
 * then the median, its interval the median's), decode_ms as the variant's
 * object {"median": ...}, "conv_bytes", a decode_tok_s alone, and rows stored
 * before stability checks (converged false reads as unstable).
 *
 * The variant's own printed JSON (docs/interfaces.md "bench") is a different
 * thing, per repetition and per token; benchparse.c is its one parser. */
#ifndef SH_MEASURE_MRECORD_H
#define SH_MEASURE_MRECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

/* What decode_ms (the figure the search ranks with) is, as stored and shown:
 * the Harrell-Davis estimate of a low quantile of the quiet repetitions'
 * medians (measure.h sh_decode_estimate_ci; docs/devices.md says why).
 * Rows stored before keep the name they were stored with (`estimator`). */
#define SH_DECODE_QUANTILE 0.20
#define SH_DECODE_ESTIMATOR "Harrell-Davis 20th percentile of per-repetition medians"
#define SH_DECODE_CI_METHOD "95% percentile bootstrap of the estimate (2000 resamples of the quiet repetitions)"
/* What rows stored before issue 18's estimator change carry (for readers). */
#define SH_DECODE_ESTIMATOR_MIN "min of per-repetition medians"

/* The kinds of block the variant times separately (share of prefill/decode). */
#define SH_SHARE_N 5
extern const char *const SH_SHARE_KINDS[SH_SHARE_N];   /* conv attention swiglu moe head */

typedef struct sh_mrecord {
    /* where it is kept (not part of the JSON) */
    int64_t eval_id;           /* the store's evaluation row, 0 if none */
    bool cached;               /* read from the store, not measured by this call */
    /* what was measured where */
    char device[64], kind[16], genome_hash[17];
    char *settings_json;       /* prompt, gen, depth, threads, wtype, kvtype, cpus, target (, gguf, exe, ref_seq) */
    /* decode latency per token, ms; NaN where a stored row lacks the figure */
    double decode_ms, decode_ms_low, decode_ms_high;       /* the robust estimate, its 95% interval */
    char estimator[96];        /* what decode_ms is, as stored (SH_DECODE_ESTIMATOR for new rows; "median of
                                  all tokens" for rows stored before the robust estimate) */
    char estimator_ci_method[128];
    double decode_ms_median, decode_ci_low, decode_ci_high; /* median of every token, its exact 95% CI */
    double decode_tok_s, prefill_tok_s, ttft_ms;
    /* memory, bytes */
    double peak_rss_bytes, weight_bytes, kv_bytes, conv_state_bytes;
    double share_prefill[SH_SHARE_N], share_decode[SH_SHARE_N];   /* time shares by block kind */
    /* the protocol */
    int reps, invocations, decode_samples;
    int quiet_reps, disturbed_reps, busy_reps, throttled_reps;
    int steal_reps;            /* repetitions disturbed by hypervisor steal over steal_max */
    double steal_max;          /* share of a CPU's time; NaN for rows stored before */
    int shared_reps;           /* repetitions disturbed by other processes using more
                                  than others_max CPUs beside them */
    double others_max;         /* CPUs; NaN for rows stored before */
    int rounds;                /* measurements made (1 + settle re-measurements) */
    bool converged, board_state_read;
    double tolerance, busy_wait;
    char stability[16];        /* quiet | disturbed | unstable ("" for rows stored before) */
    char reason[512];          /* why disturbed or unstable, "" if quiet */
    double rel_to_reference;   /* decode_ms / the reference genome's, 0 if none */
    /* Normalized by the reference genome (a candidate measured with one): decode_ms x
     * anchor / the latest reference's decode_ms, i.e. the figure at the board speed
     * of the run's first trusted reference on this device, so the board's own
     * wandering between measurements (a VM's or a phone's speed moves by 10-15% over
     * minutes while nothing runs beside it) cancels out.  Its interval combines the
     * candidate's and the reference's on the log scale.  0 or NaN: none (left out
     * of the JSON), without a reference or before one was trusted. */
    double decode_ms_normalized, decode_ms_normalized_low, decode_ms_normalized_high;
    /* On a reference row: the anchor it carries (the decode_ms of the first trusted
     * reading of this reference genome on this run and device, carried from row to
     * row); on a candidate row: the anchor its normalized figure used.  0 or NaN: none. */
    double reference_anchor_ms;
    /* Unmeasured decode tokens run after each prefill before the measured ones
     * (settings "decode_warmup"): the median over the invocations of each
     * invocation's median.  0 or NaN: none or not recorded. */
    double decode_warmup_tokens;
    /* sub-objects as compact JSON text, malloc'd, NULL if absent */
    char *reference_json;      /* {eval_id, genome_hash, decode_ms, decode_ms_low, decode_ms_high, stability,
                                  reason, anchor_ms, relative, factor (anchor / decode_ms)} */
    char *sped_up_json;        /* a reference that ran faster than the quiet one before it by more than
                                  the drift tolerance: {from_ms, from_eval, percent, marked, marked_ids}
                                  (the measurements since then, marked unstable), else NULL */
    char *rounds_json;         /* one object per measurement round */
    char *cpu_groups_json;     /* with auto-pinning in turn (measure.h sh_measure_auto_pin): one object per
                                  CPU set {cpus, reps, quiet_reps, decode_ms, decode_ms_low, decode_ms_high,
                                  used}, "used" true for the set decode_ms comes from; NULL otherwise */
    char *build_json, *cpu_json, *probe_before_json, *probe_after_json;
} sh_mrecord;

/* Zeroes r (strings empty, pointers NULL, numbers 0). */
void sh_mrecord_init(sh_mrecord *r);
void sh_mrecord_free(sh_mrecord *r);

/* The record as stored: compact JSON, malloc'd (NULL: out of memory).
 * Non-finite numbers are written as null. */
char *sh_mrecord_json(const sh_mrecord *r);

/* Reads a stored record (any spelling above) into r, which the caller frees
 * with sh_mrecord_free; figures the text lacks are NaN.  -1 with err when the
 * text is not a JSON object. */
int sh_mrecord_from_json(const char *text, sh_mrecord *r, sh_err *err);

/* The double field stored under JSON key `key` (e.g. "decode_ms",
 * "peak_rss_bytes"), or NULL if the record has no such number: lets a reader
 * take figures by the record's own names. */
const double *sh_mrecord_number(const sh_mrecord *r, const char *key);

/* Decode latency of r for ranking: the robust estimate (the reader already
 * falls back to the median for older rows); NaN if unknown. */
double sh_mrecord_decode_ms(const sh_mrecord *r);

/* The figure normalized by the reference genome (decode_ms_normalized), NaN
 * if r has none. */
double sh_mrecord_decode_ms_normalized(const sh_mrecord *r);

/* Median prefill time of the prompt, ms, from prefill_tok_s and the prompt
 * length (prompt <= 0: 512, the measurement's default); NaN if unknown. */
double sh_mrecord_prefill_ms(const sh_mrecord *r, int prompt);

#endif
