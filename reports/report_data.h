/* report_data.h - what a run report shows, gathered from the run store: the
 * measured genomes of a run with their metrics and front membership, the
 * presets measured on the same devices (reference points), the hypervolume per
 * generation and the devices' topologies; plus the chip-profile comparison of
 * several devices.  Also the plain-text renderings (JSON, CSV, Markdown); the
 * HTML page is in report_html.c. */
#ifndef SH_REPORTS_REPORT_DATA_H
#define SH_REPORTS_REPORT_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "measure/mrecord.h"   /* SH_DECODE_ESTIMATOR: what decode_ms is */
#include "runs/runs.h"
#include "util/err.h"

/* One genome measured on one device (device "" = not measured). */
typedef struct sh_rep_point {
    char hash[17];
    char *text;              /* canonical genome text, malloc'd; NULL if not stored */
    char device[64];
    char preset[32];         /* preset name for reference points, "" otherwise */
    char wtype[16];
    int rank;                /* last generation's rank, -1 if not in it */
    bool on_front;
    /* metrics, NaN when unknown */
    double capability;
    double decode_ms;        /* per decoded token: the stored robust estimate
                                (SH_DECODE_ESTIMATOR), the median for rows
                                stored before it existed */
    double decode_tok_s, prefill_tok_s, ttft_ms;
    double peak_rss_bytes, weight_bytes, kv_bytes, conv_state_bytes, cache_bytes;
    double params_total, params_active;
    double decode_ms_low, decode_ms_high;   /* decode_ms's 95% interval */
    double decode_ms_median;                /* median of every decoded token */
    double decode_ms_measured;              /* decode_ms as measured, when decode_ms is normalized
                                               (JSON and CSV have it only then), else NaN */
    double norm_ms, norm_low, norm_high;    /* the measurement's figure normalized by the reference
                                               genome (mrecord.h), NaN if none (not a metric) */
    bool normalized;         /* decode_ms and its interval are the normalized figure (the
                                run ranked with it: search --reference) */
    char stability[16];      /* quiet | disturbed | unstable | "" (unknown) */
    char stability_reason[256];
    char estimator[96];      /* what decode_ms is, as stored with it ("" if not measured) */
} sh_rep_point;


/* The numeric metrics of a point, by name (JSON/CSV/Markdown use this list). */
typedef struct sh_rep_metric {
    const char *name;
    size_t offset;           /* offsetof(sh_rep_point, field), a double */
} sh_rep_metric;
extern const sh_rep_metric sh_rep_metrics[];
extern const int sh_rep_n_metrics;
double sh_rep_metric_value(const sh_rep_point *p, int i);

typedef struct sh_rep_gen {
    int gen;
    double hypervolume;
    int evaluations, front_size;
} sh_rep_gen;

typedef struct sh_rep_device {
    char name[64], kind[16], target[64];
    char *topology_json;     /* malloc'd or NULL */
} sh_rep_device;

typedef struct sh_report {
    sh_run_rec run;
    sh_rep_point *points;  int n_points;    /* members of the run */
    sh_rep_point *presets; int n_presets;   /* presets measured on the run's devices */
    sh_rep_gen *gens;      int n_gens;
    sh_rep_device *devices; int n_devices;
    int last_gen;                           /* -1 if the run has no generations */
    /* what the decode column shows: the estimator the rows were stored with
     * (older rows keep theirs), "mixed: A; B" if they differ, the current
     * SH_DECODE_ESTIMATOR if no row says */
    char decode_estimator[320];
    bool decode_paired;                     /* ... by the reference measured beside each point
                                               (search --paired; run config measure.reference_paired) */
    bool decode_normalized;                 /* the run ranked decode_ms normalized by its reference
                                               genome; its points show that figure (presets as measured) */
} sh_report;

int sh_report_load(sh_db *db, int64_t run_id, sh_report *out, sh_err *err);
void sh_report_free(sh_report *r);

/* Renderings; 0 or -1 (write errors are reported by the caller's fclose). */
char *sh_report_json(const sh_report *r, bool pretty, sh_err *err);   /* malloc'd */
int sh_report_write_csv(const sh_report *r, FILE *f, sh_err *err);
int sh_report_write_md(const sh_report *r, FILE *f, sh_err *err);
int sh_report_write_html(const sh_report *r, FILE *f, sh_err *err);   /* report_html.c */

/* ---- chip profiles of several devices --------------------------------------- */
typedef struct sh_prof_cell {
    double latency_us, gbytes_per_s, gflops;    /* NaN when the device lacks the row */
} sh_prof_cell;

typedef struct sh_prof_row {
    char *block, *params_json, *dtype;          /* malloc'd */
    sh_prof_cell *cells;                        /* one per device */
} sh_prof_row;

typedef struct sh_prof_table {
    int n_devices;
    char (*devices)[64];
    sh_prof_row *rows;
    int n_rows;
} sh_prof_table;

int sh_prof_load(sh_db *db, const char *const *devices, int n, sh_prof_table *out, sh_err *err);
void sh_prof_free(sh_prof_table *t);
char *sh_prof_json(const sh_prof_table *t, sh_err *err);
int sh_prof_write_csv(const sh_prof_table *t, FILE *f, sh_err *err);
int sh_prof_write_md(const sh_prof_table *t, FILE *f, sh_err *err);
int sh_prof_write_html(const sh_prof_table *t, FILE *f, sh_err *err);   /* report_html.c */

/* The default report file name: "report-<database name>-run<ID>.<ext>", the
 * database's file name without its directory and .db/.sqlite suffix (other
 * characters than [A-Za-z0-9._-] become '_'), so runs numbered alike in two
 * databases in one folder get different reports.  0, or -1 if cap is short. */
int sh_report_default_name(const char *db_path, int64_t run_id, const char *ext, char *out, size_t cap);

/* Helpers shared with report_html.c. */
char *sh_rep_json_for_script(const char *json);  /* escapes '<' so it can sit in <script> */
void sh_rep_html_escape(FILE *f, const char *s);

#endif
