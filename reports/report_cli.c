/* report_cli.c - `starhil report` (run reports, chip-profile comparison),
 * `starhil export` (Hugging Face config.json, GGUF) and `starhil compare`
 * (presets measured side by side on one device). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "devices/measure.h"
#include "reports/gguf_write.h"
#include "reports/hf_config.h"
#include "reports/report_data.h"
#include "runs/runs.h"
#include "util/cliopt.h"
#include "util/opt.h"
#include "util/progress.h"

/* Genomes given to compare (positionals, in order). */
typedef struct args {
    const char *positional[32];
    int n_pos;
} args;

/* Writes through a temporary file renamed into place ("-" = stdout). */
typedef int (*writer_fn)(FILE *f, const void *ctx, sh_err *err);

/* With `replace` false an existing file is left alone and reported (the new
 * file is linked into place, which fails if the name exists). */
static int write_output_ex(const char *path, writer_fn fn, const void *ctx, bool replace, sh_err *err)
{
    if (!strcmp(path, "-")) {
        int rc = fn(stdout, ctx, err);
        return fflush(stdout) == 0 ? rc : sh_err_set(err, "stdout: write error");
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return sh_err_set(err, "%s: path too long", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return sh_err_set(err, "%s: cannot create: %s", tmp, strerror(errno));
    int rc = fn(f, ctx, err);
    if (fclose(f) != 0 && rc == 0) rc = sh_err_set(err, "%s: write error: %s", tmp, strerror(errno));
    if (rc == 0 && replace && rename(tmp, path) != 0) rc = sh_err_set(err, "%s: %s", path, strerror(errno));
    if (rc == 0 && !replace) {
        if (link(tmp, path) != 0)
            rc = errno == EEXIST ? sh_err_set(err, "%s exists; not overwritten (give -o FILE, or --force to replace it)", path)
                                 : sh_err_set(err, "%s: %s", path, strerror(errno));
        unlink(tmp);
    }
    if (rc != 0) unlink(tmp);
    return rc;
}

static int write_output(const char *path, writer_fn fn, const void *ctx, sh_err *err)
{
    return write_output_ex(path, fn, ctx, true, err);
}

/* ---- starhil report --------------------------------------------------------------------- */

typedef enum { FMT_HTML, FMT_CSV, FMT_JSON, FMT_MD } out_format;

static int parse_format(const char *cmd, const char *s, out_format *f)
{
    if (!strcmp(s, "html")) *f = FMT_HTML;
    else if (!strcmp(s, "csv")) *f = FMT_CSV;
    else if (!strcmp(s, "json")) *f = FMT_JSON;
    else if (!strcmp(s, "md") || !strcmp(s, "markdown")) *f = FMT_MD;
    else {
        fprintf(stderr, "starhil %s: unknown format \"%s\" (html, csv, json, md)\n", cmd, s);
        return -1;
    }
    return 0;
}

typedef struct run_out { const sh_report *r; out_format fmt; } run_out;
typedef struct prof_out { const sh_prof_table *t; out_format fmt; } prof_out;

static int put_json_text(FILE *f, char *json, sh_err *err)
{
    if (!json) return -1;
    fprintf(f, "%s\n", json);
    free(json);
    return ferror(f) ? sh_err_set(err, "write error") : 0;
}

static int write_run(FILE *f, const void *ctx, sh_err *err)
{
    const run_out *o = ctx;
    switch (o->fmt) {
    case FMT_CSV: return sh_report_write_csv(o->r, f, err);
    case FMT_JSON: return put_json_text(f, sh_report_json(o->r, true, err), err);
    case FMT_MD: return sh_report_write_md(o->r, f, err);
    default: return sh_report_write_html(o->r, f, err);
    }
}

static int write_prof(FILE *f, const void *ctx, sh_err *err)
{
    const prof_out *o = ctx;
    switch (o->fmt) {
    case FMT_CSV: return sh_prof_write_csv(o->t, f, err);
    case FMT_JSON: return put_json_text(f, sh_prof_json(o->t, err), err);
    case FMT_MD: return sh_prof_write_md(o->t, f, err);
    default: return sh_prof_write_html(o->t, f, err);
    }
}

static const char REPORT_ABOUT[] =
    "RUN: a run id (or name). The HTML report (default) is one self-contained file of about\n"
    "0.5 MB (the data, CSS and JavaScript with Observable Plot inlined; nothing is fetched, it\n"
    "works offline): per device the front's capability against decode latency, peak memory\n"
    "and cache bytes (dominated points faded, presets measured on the same device as reference\n"
    "diamonds, a latency budget that picks the best front genome under it; hover or click a\n"
    "point for its genome, layer pattern and measurements), hypervolume over evaluations,\n"
    "device topologies and sortable tables. csv and json give the same data; md is a summary.\n"
    "--devices compares the chip profiles (starhil profile) of several devices block by block.\n"
    "The default HTML file is report-<database name>-run<ID>.html (e.g. report-starhil-run1.html)\n"
    "or report-profiles.html, never overwritten without --force; -o replaces its file.\n";

/* Splits "A,B,C" into at most cap names (in place). */
static int split_list(char *s, const char **out, int cap)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (n == cap) return -1;
        out[n++] = tok;
    }
    return n;
}

static int report_profiles(const char *list, out_format fmt, const char *out_path, bool force)
{
    char buf[2048];
    const char *names[16];
    if (snprintf(buf, sizeof buf, "%s", list) >= (int)sizeof buf) {
        fprintf(stderr, "starhil report: --devices list too long\n");
        return 2;
    }
    int n = split_list(buf, names, 16);
    if (n < 1) {
        fprintf(stderr, "starhil report: --devices needs 1 to 16 device names separated by commas\n");
        return 2;
    }
    sh_err err = {{0}};
    sh_db *db = NULL;
    if (sh_db_open(sh_cli_db_path(), SH_DB_READONLY, &db, &err) != 0) {
        fprintf(stderr, "starhil report: %s\n", err.msg);
        return 1;
    }
    sh_prof_table t;
    int rc = sh_prof_load(db, names, n, &t, &err);
    sh_db_close(db);
    if (rc != 0) { fprintf(stderr, "starhil report: %s\n", err.msg); return 1; }
    const char *path = out_path ? out_path : fmt == FMT_HTML ? "report-profiles.html" : "-";
    prof_out o = {&t, fmt};
    rc = write_output_ex(path, write_prof, &o, out_path || force, &err);
    sh_prof_free(&t);
    if (rc != 0) { fprintf(stderr, "starhil report: %s\n", err.msg); return 1; }
    if (strcmp(path, "-") != 0) printf("%s\n", path);
    return 0;
}

/* RUN is an id, or the name of a run (the newest of that name). 0 if none. */
static int64_t find_run(sh_db *db, const char *arg, sh_err *err)
{
    char *end;
    errno = 0;
    long long id = strtoll(arg, &end, 10);
    if (!errno && end != arg && !*end && id > 0) return id;
    sh_run_rec *runs = NULL;
    int n = 0;
    int64_t found = 0;
    if (sh_db_list_runs(db, &runs, &n, err) != 0) return 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(runs[i].name, arg) && runs[i].id > found) found = runs[i].id;
        sh_run_rec_free(&runs[i]);
    }
    free(runs);
    if (!found) sh_err_set(err, "%s: no run with id or name \"%.200s\"", sh_db_path(db), arg);
    return found;
}

static int report_run(const char *run_arg, out_format fmt, const char *out_path, bool force)
{
    sh_err err = {{0}};
    sh_db *db = NULL;
    if (sh_db_open(sh_cli_db_path(), SH_DB_READONLY, &db, &err) != 0) {
        fprintf(stderr, "starhil report: %s\n", err.msg);
        return 1;
    }
    int64_t id = find_run(db, run_arg, &err);
    if (id == 0) {
        sh_db_close(db);
        fprintf(stderr, "starhil report: %s\n", err.msg);
        return 1;
    }
    sh_report r;
    int rc = sh_report_load(db, id, &r, &err);
    sh_db_close(db);
    if (rc != 0) { fprintf(stderr, "starhil report: %s\n", err.msg); return 1; }
    char def[128];
    sh_report_default_name(sh_cli_db_path(), id, "html", def, sizeof def);
    const char *path = out_path ? out_path : fmt == FMT_HTML ? def : "-";
    run_out o = {&r, fmt};
    rc = write_output_ex(path, write_run, &o, out_path || force, &err);
    sh_report_free(&r);
    if (rc != 0) { fprintf(stderr, "starhil report: %s\n", err.msg); return 1; }
    if (strcmp(path, "-") != 0) printf("%s\n", path);
    return 0;
}

int sh_cmd_report(int argc, char **argv)
{
    const char *fmt_s = "html", *out = NULL, *devices = NULL, *db = NULL;
    bool force = false;
    const sh_opt t[] = {
        {"--format", NULL, SH_OPT_STR, &fmt_s, "F", "html (default), csv, json or md", 0, 0, NULL},
        {"-o", NULL, SH_OPT_STR, &out, "FILE", "output file ('-' = stdout; replaced if it exists); default: html\n"
         "to the default name above, the other formats to stdout", 0, 0, NULL},
        {"--devices", NULL, SH_OPT_STR, &devices, "A,B", "compare the chip profiles of these devices", 0, 0, NULL},
        {"--force", "-f", SH_OPT_FLAG, &force, NULL, "replace the default-named file if it exists", 0, 0, NULL},
        {"--db", NULL, SH_OPT_STR, &db, "FILE", "run database (default $STARHIL_DB or ./starhil.db)", 0, 0, NULL},
    };
    sh_cmd_spec spec = {"report", "RUN", "       starhil report --devices A,B[,...] [--format F] [-o FILE] [--force]\n",
                        REPORT_ABOUT, t, (int)(sizeof t / sizeof t[0]), 0, 1};
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    if (db) sh_cli_set_db_path(db);
    out_format fmt;
    if (parse_format("report", fmt_s, &fmt) != 0) return 2;
    if (devices && n_pos == 0) return report_profiles(devices, fmt, out, force);
    if (devices || n_pos != 1) {
        fprintf(stderr, "starhil report: give one RUN id, or --devices A,B (see starhil report --help)\n");
        return 2;
    }
    return report_run(pos[0], fmt, out, force);
}

/* ---- starhil export ----------------------------------------------------------------------- */

static const char EXPORT_ABOUT[] =
    "GENOME: a preset name, a genome file (text or JSON) or inline canonical text.\n"
    "hf:   a Hugging Face config.json for transformers' Lfm2Config (model_type lfm2) or\n"
    "      Lfm2MoeConfig (lfm2_moe); written to stdout unless -o is given. The FFN width\n"
    "      is exact (block_auto_adjust_ff_dim false).\n"
    "gguf: a GGUF file (architecture lfm2 or lfm2moe, no_vocab tokenizer) with the\n"
    "      deterministic synthetic weights the runtime makes for the same --seed and\n"
    "      --wtype, loadable by llama.cpp and by `variant ... --gguf FILE`.  For\n"
    "      benchmarking only: without a tokenizer llama-bench runs it, llama-cli cannot.\n"
    "      It carries general.file_type and general.quantization_version (2).  For the\n"
    "      k-quants (q4_k, q5_k, q6_k) use the variant's own `variant export --wtype`.\n"
    "      Default file: <genome hash>-<wtype>-s<seed>.gguf; the path is printed.\n"
    "Genomes LFM2 cannot express are refused with the reason: per-layer head counts or\n"
    "conv kernels, attention without QK-norm, heads x head_dim != hidden (llama.cpp\n"
    "requires it), dense layers after MoE layers, differing MoE layers, llama3 rope scaling.\n";

/* --json: what was written, for scripts */
static void print_written(const char *path, const char *format, const sh_genome *g, bool as_json)
{
    if (!as_json) { printf("%s\n", path); return; }
    char hex[17];
    sh_hash_hex(sh_genome_hash(g), hex);
    FILE *f = fopen(path, "rb");
    long size = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (f) fclose(f);
    json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "path", path, "format", format, "genome", hex, "bytes", (json_int_t)size);
    char *txt = o ? json_dumps(o, JSON_PRESERVE_ORDER) : NULL;
    if (txt) printf("%s\n", txt);
    free(txt);
    json_decref(o);
}

static int write_text(FILE *f, const void *ctx, sh_err *err)
{
    fprintf(f, "%s\n", (const char *)ctx);
    return ferror(f) ? sh_err_set(err, "write error") : 0;
}

static int export_hf(const sh_genome *g, const char *out, bool as_json)
{
    sh_err err = {{0}};
    char *text = sh_hf_config_export(g, &err);
    if (!text) { fprintf(stderr, "starhil export: %s\n", err.msg); return 1; }
    int rc = write_output(out ? out : "-", write_text, text, &err);
    free(text);
    if (rc != 0) { fprintf(stderr, "starhil export: %s\n", err.msg); return 1; }
    if (out && strcmp(out, "-") != 0) print_written(out, "hf", g, as_json);
    return 0;
}

static void gguf_progress(void *ctx, uint64_t done, uint64_t total)
{
    sh_progress *p = ctx;
    double frac = total ? (double)done / (double)total : 1.0;
    double el = sh_progress_elapsed(p);
    char eta[32];
    sh_format_duration(frac > 0 ? el / frac * (1 - frac) : NAN, eta, sizeof eta);
    sh_progress_update(p, "export: %5.1f%% of %.1f MiB of tensor data, eta %s", 100.0 * frac,
                       (double)total / 1048576.0, eta);
}

static int export_gguf(const sh_genome *g, const char *out, const char *wtype_s, const char *seed_s, bool quiet,
                       bool as_json)
{
    sh_gguf_opts o = {.wtype = SH_DTYPE_F32, .seed = 1};
    sh_err err = {{0}};
    if (wtype_s && sh_dtype_parse(wtype_s, &o.wtype) != 0) {
        fprintf(stderr, "starhil export: --wtype \"%s\" is not f32, f16, q8_0 or q4_0\n", wtype_s);
        return 2;
    }
    if (seed_s) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(seed_s, &end, 10);
        if (errno || end == seed_s || *end || seed_s[0] == '-') {
            fprintf(stderr, "starhil export: --seed \"%s\" is not a non-negative integer\n", seed_s);
            return 2;
        }
        o.seed = s;
    }
    char def[128], hex[17];
    sh_hash_hex(sh_genome_hash(g), hex);
    snprintf(def, sizeof def, "%s-%s-s%llu.gguf", hex, sh_dtype_name(o.wtype), (unsigned long long)o.seed);
    const char *path = out ? out : def;
    sh_progress line;
    sh_progress_init(&line, quiet);
    o.progress = gguf_progress;
    o.progress_ctx = &line;
    sh_progress_event(&line, "export: writing %s (%.1f MiB)", path, (double)sh_gguf_file_size(g, &o) / 1048576.0);
    sh_progress_done(&line);
    int wrc = sh_gguf_write_genome(g, path, &o, &err);
    sh_progress_done(&line);
    if (wrc != 0) {
        fprintf(stderr, "starhil export: %s\n", err.msg);
        return 1;
    }
    print_written(path, "gguf", g, as_json);
    return 0;
}

int sh_cmd_export(int argc, char **argv)
{
    const char *fmt = NULL, *out = NULL, *wtype = NULL, *seed = NULL;
    bool quiet = false, as_json = false;
    const sh_opt t[] = {
        {"--format", NULL, SH_OPT_STR, &fmt, "hf|gguf", "required", 0, 0, NULL},
        {"--wtype", NULL, SH_OPT_STR, &wtype, "T", "gguf matrix type: f32 (default), f16, q8_0 or q4_0; norms,\n"
         "conv kernels, router and expert bias stay f32", 0, 0, NULL},
        {"--seed", NULL, SH_OPT_STR, &seed, "S", "gguf weight seed (default 1)", 0, 0, NULL},
        {"-o", NULL, SH_OPT_STR, &out, "FILE", "output file", 0, 0, NULL},
        {"--json", NULL, SH_OPT_FLAG, &as_json, NULL, "print {path, format, genome, bytes} of the written file\n"
         "(hf to stdout is the config itself)", 0, 0, NULL},
        {"--quiet", "-q", SH_OPT_FLAG, &quiet, NULL, "no progress on stderr while a GGUF is written", 0, 0, NULL},
    };
    sh_cmd_spec spec = {"export", "GENOME", NULL, EXPORT_ABOUT, t, (int)(sizeof t / sizeof t[0]), 1, 1};
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    if (!fmt) {
        fprintf(stderr, "starhil export: --format hf|gguf is required (see starhil export --help)\n");
        return 2;
    }
    bool hf = !strcmp(fmt, "hf"), gguf = !strcmp(fmt, "gguf");
    if (!hf && !gguf) {
        fprintf(stderr, "starhil export: unknown format \"%s\" (hf or gguf)\n", fmt);
        return 2;
    }
    if (hf && (wtype || seed)) {
        fprintf(stderr, "starhil export: --wtype and --seed apply to --format gguf only\n");
        return 2;
    }
    static sh_genome g;
    sh_err err = {{0}};
    if (sh_genome_resolve(pos[0], &g, &err) != 0) {
        fprintf(stderr, "starhil export: %s\n", err.msg);
        return 1;
    }
    return hf ? export_hf(&g, out, as_json) : export_gguf(&g, out, wtype, seed, quiet || as_json, as_json);
}

/* ---- starhil compare ------------------------------------------------------------------------ */

static const char COMPARE_ABOUT[] =
    "Measures the genomes (preset names, files or inline text) on device D interleaved:\n"
    "in each round every genome runs one bench invocation, in alternating order (A B,\n"
    "B A, A B ...), so drift of the board hits all of them alike. Each ratio to the\n"
    "first genome is paired per round and reported as the median over rounds with its\n"
    "95% confidence interval. Table and summary use one estimator for decode: the\n"
    "minimum of per-repetition medians (repetitions disturbed by other load are left\n"
    "out; docs/devices.md). Nothing is stored: a comparison holds only paired in time.\n"
    "Example: check the claim that LFM2 decodes about 2x faster than Qwen3 on CPU:\n"
    "  starhil compare --device local lfm2-1.2b qwen3-1.7b --prompt 128 --gen 32\n";

typedef struct cmp_row {
    const char *arg;         /* as given */
    const char *name;        /* preset name, or the hash for other genomes */
    char hash[17];
    sh_measure_result res;
    sh_ratio_ci decode_x, prefill_x;   /* paired speed ratios to the first genome */
} cmp_row;

static double ratio(double a, double b) { return (isfinite(a) && isfinite(b) && b > 0) ? a / b : NAN; }

static json_t *jnum_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *ratio_json(const sh_ratio_ci *r)
{
    return json_pack("{s:o,s:o,s:o,s:i,s:f}", "ratio", jnum_or_null(r->est), "ci_low", jnum_or_null(r->lo),
                     "ci_high", jnum_or_null(r->hi), "rounds", r->n, "ci_coverage", r->coverage);
}

static void compare_print_json(const char *device, const sh_measure_opts *o, int rounds, const cmp_row *rows, int n,
                               const int *order)
{
    json_t *ord = json_array();
    for (int k = 0; k < rounds * n; k++) json_array_append_new(ord, json_integer(order[k]));
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const sh_measure_result *r = &rows[i].res, *b = &rows[0].res;
        json_t *x = json_object();
        json_object_set_new(x, "genome", json_string(rows[i].name));
        json_object_set_new(x, "hash", json_string(rows[i].hash));
        json_object_set_new(x, "decode_ms", jnum_or_null(r->decode_ms));
        json_object_set_new(x, "decode_ms_ci", json_pack("[o,o]", jnum_or_null(r->decode_ms_low),
                                                         jnum_or_null(r->decode_ms_high)));
        json_object_set_new(x, "decode_tok_s", jnum_or_null(r->decode_tok_s));
        json_object_set_new(x, "prefill_tok_s", jnum_or_null(r->prefill_tok_s));
        json_object_set_new(x, "decode_ms_median", jnum_or_null(r->decode_ms_median));
        json_object_set_new(x, "decode_ci_ms", json_pack("[o,o]", jnum_or_null(r->decode_ci_low),
                                                         jnum_or_null(r->decode_ci_high)));
        json_object_set_new(x, "ttft_ms", jnum_or_null(r->ttft_ms));
        json_object_set_new(x, "peak_rss_bytes", jnum_or_null(r->peak_rss_bytes));
        json_object_set_new(x, "weight_bytes", jnum_or_null(r->weight_bytes));
        json_object_set_new(x, "kv_bytes", jnum_or_null(r->kv_bytes));
        json_object_set_new(x, "conv_bytes", jnum_or_null(r->conv_bytes));
        json_object_set_new(x, "reps", json_integer(r->reps));
        json_object_set_new(x, "quiet_reps", json_integer(r->quiet_reps));
        json_object_set_new(x, "stability", json_string(r->stability));
        json_object_set_new(x, "stability_reason", json_string(r->reason));
        json_object_set_new(x, "decode_speed_vs_first", ratio_json(&rows[i].decode_x));
        json_object_set_new(x, "prefill_speed_vs_first", ratio_json(&rows[i].prefill_x));
        json_object_set_new(x, "peak_memory_vs_first", jnum_or_null(ratio(r->peak_rss_bytes, b->peak_rss_bytes)));
        json_array_append_new(arr, x);
    }
    json_t *root = json_pack("{s:s,s:{s:i,s:i,s:s,s:i,s:i,s:s,s:s},s:o,s:s,s:o}", "device", device, "settings",
                             "prompt", o->prompt, "gen", o->gen, "wtype", o->wtype, "threads", o->threads,
                             "rounds", rounds, "order", "interleaved, alternating (A B, B A, ...)",
                             "ratio", "median over rounds of paired ratios, 95% CI from order statistics "
                             "([min, max] below 6 rounds, covering less: ci_coverage)",
                             "run_order", ord, "decode_estimator", SH_DECODE_ESTIMATOR, "results", arr);
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) printf("%s\n", s);
    free(s);
    json_decref(root);
}

static void compare_print_table(const char *device, const sh_measure_opts *o, int rounds, const cmp_row *rows, int n)
{
    printf("device %s, prompt %d, gen %d, wtype %s, %d interleaved rounds\n", device, o->prompt, o->gen, o->wtype, rounds);
    printf("decode ms/token and tok/s: " SH_DECODE_ESTIMATOR " (95%% CI); x: paired ratio to %s, median over rounds [95%% CI]\n\n",
           rows[0].name);
    printf("%-16s %16s %13s %10s %19s %9s %20s %20s %8s\n", "genome", "hash", "prefill tok/s", "decode tok/s",
           "decode ms [CI]", "peak MiB", "prefill x [CI]", "decode x [CI]", "memory x");
    for (int i = 0; i < n; i++) {
        const sh_measure_result *r = &rows[i].res, *b = &rows[0].res;
        char dms[40], px[40], dx[40];
        snprintf(dms, sizeof dms, "%.3f [%.3f,%.3f]", r->decode_ms, r->decode_ms_low, r->decode_ms_high);
        snprintf(px, sizeof px, "%.2fx [%.2f,%.2f]", rows[i].prefill_x.est, rows[i].prefill_x.lo, rows[i].prefill_x.hi);
        snprintf(dx, sizeof dx, "%.2fx [%.2f,%.2f]", rows[i].decode_x.est, rows[i].decode_x.lo, rows[i].decode_x.hi);
        printf("%-16.16s %16s %13.1f %12.2f %19s %9.1f %20s %20s %7.2fx%s\n", rows[i].name, rows[i].hash,
               r->prefill_tok_s, r->decode_tok_s, dms, r->peak_rss_bytes / 1048576.0, px, dx,
               ratio(r->peak_rss_bytes, b->peak_rss_bytes), strcmp(r->stability, "unstable") ? "" : "  UNSTABLE");
    }
    printf("(speeds above 1 are faster than %s, memory above 1 is larger)\n", rows[0].name);
    for (int i = 0; i < n; i++)
        if (rows[i].res.reason[0])
            printf("%s: %s: %s\n", rows[i].name, rows[i].res.stability, rows[i].res.reason);
    if (n >= 2) {
        /* the same paired ratios as the table: genome 1's speed over genome 0's, inverted */
        const sh_ratio_ci *d = &rows[1].decode_x, *p = &rows[1].prefill_x;
        bool dfast = d->est <= 1, pfast = p->est <= 1;
        char dcov[16], pcov[16];
        snprintf(dcov, sizeof dcov, "%.0f%%", 100 * fmin(d->coverage, 0.95));
        snprintf(pcov, sizeof pcov, "%.0f%%", 100 * fmin(p->coverage, 0.95));
        printf("\n%s decodes %.2fx %s (%s CI %.2f-%.2fx) and prefills %.2fx %s (%s CI %.2f-%.2fx) than %s on %s.\n",
               rows[0].name, dfast ? 1 / d->est : d->est, dfast ? "faster" : "slower", dcov,
               dfast ? 1 / d->hi : d->lo, dfast ? 1 / d->lo : d->hi,
               pfast ? 1 / p->est : p->est, pfast ? "faster" : "slower", pcov,
               pfast ? 1 / p->hi : p->lo, pfast ? 1 / p->lo : p->hi, rows[1].name, device);
        if (d->coverage < 0.95)
            printf("(with %d rounds the ratio's interval is the range of the rounds and covers the true ratio only "
                   "%.0f%% of the time; 6 rounds or more give 95%%)\n", d->n, 100 * d->coverage);
    }
}

typedef struct cmp_progress {
    sh_progress line;
} cmp_progress;

/* The measurement reports each step (round r of R, genome g); shown with the
 * elapsed time, redrawn on a terminal and every few seconds in a log. */
static void compare_progress(void *ctx, const char *line)
{
    cmp_progress *c = ctx;
    char els[32];
    sh_format_duration(sh_progress_elapsed(&c->line), els, sizeof els);
    sh_progress_update(&c->line, "compare: %s (elapsed %s)", line, els);
}

static int compare_measure(const char *device, sh_measure_opts *o, int rounds, cmp_row *rows, int n, int *order,
                           bool quiet)
{
    cmp_progress cp;
    sh_progress_init(&cp.line, quiet);
    o->progress = compare_progress;
    o->progress_ctx = &cp;
    sh_err err = {{0}};
    sh_db *db = NULL;
    if (sh_db_open(sh_cli_db_path(), SH_DB_CREATE, &db, &err) != 0 || sh_device_ensure_local(db, &err) != 0) {
        fprintf(stderr, "starhil compare: %s\n", err.msg);
        sh_db_close(db);
        return 1;
    }
    static sh_genome g[32];
    for (int i = 0; i < n; i++) {
        if (sh_genome_resolve(rows[i].arg, &g[i], &err) != 0) {
            fprintf(stderr, "starhil compare: %s\n", err.msg);
            sh_db_close(db);
            return 1;
        }
        sh_hash_hex(sh_genome_hash(&g[i]), rows[i].hash);
        static sh_genome p;
        sh_err e2 = {{0}};
        rows[i].name = sh_preset_get(rows[i].arg, &p, &e2) == 0 ? rows[i].arg : rows[i].hash;
    }
    sh_measure_result res[32];
    sh_ratio_ci dx[32], px[32];
    int rc = 0;
    sh_progress_event(&cp.line, "compare: %d genomes on %s, %d interleaved rounds", n, device, rounds);
    if (sh_measure_interleaved(db, device, g, n, o, rounds, res, dx, px, order, &err) != 0) {
        sh_progress_done(&cp.line);
        fprintf(stderr, "starhil compare: %s\n", err.msg);
        rc = 1;
    } else {
        for (int i = 0; i < n; i++) {
            rows[i].res = res[i];
            rows[i].decode_x = dx[i];
            rows[i].prefill_x = px[i];
        }
    }
    sh_progress_done(&cp.line);
    sh_measure_shutdown();
    sh_db_close(db);
    return rc;
}

int sh_cmd_compare(int argc, char **argv)
{
    const char *device = NULL, *db = NULL, *wtype = NULL;
    bool as_json = false, quiet = false;
    long prompt = 512, gen = 128, threads = 0, rounds = 6, reps = 3;
    sh_measure_opts o = {.wtype = "q4_0"};
    const sh_opt t[] = {
        {"--device", NULL, SH_OPT_STR, &device, "D", "device name (required; `local` always exists)", 0, 0, NULL},
        {"--prompt", NULL, SH_OPT_LONG, &prompt, "N", "prompt tokens (default 512)", 1, 1 << 20, NULL},
        {"--gen", NULL, SH_OPT_LONG, &gen, "N", "generated tokens per repetition (default 128)", 1, 1 << 20, NULL},
        {"--wtype", NULL, SH_OPT_STR, &wtype, "T", "f32|f16|q8_0|q4_0 (default q4_0)", 0, 0, NULL},
        {"--threads", NULL, SH_OPT_LONG, &threads, "N", "threads (default: the device's)", 1, 1024, NULL},
        {"--rounds", NULL, SH_OPT_LONG, &rounds, "N", "interleaved rounds (default 6)", 2, 1000, NULL},
        {"--reps", NULL, SH_OPT_LONG, &reps, "N", "repetitions per genome per round (default 3)", 1, 1000, NULL},
        {"--json", NULL, SH_OPT_FLAG, &as_json, NULL, "one JSON object on stdout", 0, 0, NULL},
        {"--quiet", "-q", SH_OPT_FLAG, &quiet, NULL, "no progress lines on stderr", 0, 0, NULL},
        {"--db", NULL, SH_OPT_STR, &db, "FILE", "run database (for the device inventory)", 0, 0, NULL},
    };
    const char *pos[32];
    sh_cmd_spec spec = {"compare", "GENOME GENOME...", NULL, COMPARE_ABOUT, t, (int)(sizeof t / sizeof t[0]), 0, 32};
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    if (db) sh_cli_set_db_path(db);
    if (wtype) {
        sh_dtype dt;
        if (sh_dtype_parse(wtype, &dt) != 0) {
            fprintf(stderr, "starhil compare: --wtype \"%s\" is not f32, f16, q8_0 or q4_0\n", wtype);
            return 2;
        }
        o.wtype = wtype;
    }
    if (!device || n_pos < 2) {
        fprintf(stderr, "starhil compare: give --device D and at least two genomes (see starhil compare --help)\n");
        return 2;
    }
    args a = {.n_pos = n_pos};
    for (int i = 0; i < n_pos; i++) a.positional[i] = pos[i];
    o.prompt = (int)prompt; o.gen = (int)gen; o.threads = (int)threads; o.reps_per_run = (int)reps;
    cmp_row rows[32];
    memset(rows, 0, sizeof rows);
    for (int i = 0; i < a.n_pos; i++) rows[i].arg = rows[i].name = a.positional[i];
    int *order = calloc((size_t)rounds * (size_t)a.n_pos, sizeof *order);
    if (!order) { fprintf(stderr, "starhil compare: out of memory\n"); return 1; }
    int rc = compare_measure(device, &o, (int)rounds, rows, a.n_pos, order, quiet || as_json);   /* --json: no progress */
    if (rc == 0) {
        if (as_json) compare_print_json(device, &o, (int)rounds, rows, a.n_pos, order);
        else compare_print_table(device, &o, (int)rounds, rows, a.n_pos);
    }
    for (int i = 0; i < a.n_pos; i++) sh_measure_result_free(&rows[i].res);
    free(order);
    return rc;
}
