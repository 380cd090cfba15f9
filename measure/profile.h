/* profile.h - chip profiles: sweep the block kinds one by one on a device
 * (conv at several widths, GQA at several head layouts and context depths,
 * SwiGLU and MoE at several widths, each weight type) and store a latency and
 * bandwidth table per device (runs.h sh_db_put_profile).
 *
 * Each point is a small genome made of one block kind repeated (the other half
 * of every layer is a cheap companion block), measured with sh_measure_genome;
 * the variant's per-block-kind share of decode time gives the block's time:
 *   latency_us = decode median * share[kind] / layers of that kind,
 *   gbytes_per_s = bytes the block reads per token (weights, plus the KV cache
 *                  for attention) / latency,  gflops = its FLOPs / latency. */
#ifndef SH_DEVICES_PROFILE_H
#define SH_DEVICES_PROFILE_H

#include <stdbool.h>

#include "measure/measure.h"

typedef struct sh_profile_opts {
    bool quick;              /* a handful of tiny points (tests, smoke checks) */
    const char *wtypes;      /* comma list, NULL: f32,f16,q8_0,q4_0 (quick: f32) */
    int threads;             /* 0: the device's default                       */
    int max_depth;           /* deepest GQA context, 0: 32768 (quick: 64)     */
    double timeout_s;
    int retries;
    sh_measure_progress_fn progress;
    void *progress_ctx;
} sh_profile_opts;

/* Runs the sweep on device and replaces its stored profile.  *rows_json gets a
 * malloc'd JSON array of the rows (may be NULL). */
int sh_profile_device(sh_db *db, const char *device, const sh_profile_opts *opts,
                      int *n_rows, char **rows_json, sh_err *err);

/* The stored profile of device a, joined point by point with device b's (b may
 * be NULL): a malloc'd JSON array of {block, params, dtype, a:{latency_us,
 * gbytes_per_s, gflops}, b:{...} or null, b_over_a: latency ratio or null}. */
int sh_profile_compare(sh_db *db, const char *a, const char *b, char **json_out, sh_err *err);

#endif
