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

/* ---- small argument parser ---------------------------------------------------------- */

typedef struct args {
    const char *cmd;
    int argc, i;
    char **argv;
    const char *positional[32];
    int n_pos;
} args;

/* Matches "--name VALUE" or "--name=VALUE"; 1 matched, 0 not, -1 missing value. */
static int opt_value(args *a, const char *name, const char **out)
{
    const char *s = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(s, name, n) != 0) return 0;
    if (s[n] == '=') { *out = s + n + 1; return 1; }
    if (s[n] != 0) return 0;
    if (a->i + 1 >= a->argc) {
        fprintf(stderr, "starhil %s: %s needs a value\n", a->cmd, name);
        return -1;
    }
    *out = a->argv[++a->i];
    return 1;
}

static bool parse_long(const char *cmd, const char *what, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "starhil %s: %s \"%s\" is not an integer in [%ld, %ld]\n", cmd, what, s, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

static bool is_help(const char *s) { return !strcmp(s, "--help") || !strcmp(s, "-h"); }

/* Writes through a temporary file renamed into place ("-" = stdout). */
typedef int (*writer_fn)(FILE *f, const void *ctx, sh_err *err);

static int write_output(const char *path, writer_fn fn, const void *ctx, sh_err *err)
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
    if (rc == 0 && rename(tmp, path) != 0) rc = sh_err_set(err, "%s: %s", path, strerror(errno));
    if (rc != 0) unlink(tmp);
    return rc;
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

static void report_usage(FILE *f)
{
    fprintf(f,
        "usage: starhil report RUN [--format html|csv|json|md] [-o FILE]\n"
        "       starhil report --devices A,B[,...] [--format html|csv|json|md] [-o FILE]\n\n"
        "RUN: a run id (or name). The HTML report (default) is one self-contained file (inline SVG,\n"
        "JavaScript and CSS; nothing is fetched): the front's capability against decode latency,\n"
        "peak memory and cache bytes per device (dominated points faded, presets measured on\n"
        "the same device as reference diamonds), hypervolume per generation, device topologies\n"
        "and a sortable table of the front. csv and json give the same data; md is a summary.\n"
        "--devices compares the chip profiles (starhil profile) of several devices block by block.\n\n"
        "options:\n"
        "  --format F   html (default), csv, json or md\n"
        "  -o FILE      output file ('-' = stdout). Default: report-run<ID>.html or\n"
        "               report-profiles.html for html, stdout for the other formats\n"
        "  --db FILE    run database (default $STARHIL_DB or ./starhil.db)\n");
}

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

static int report_profiles(const char *list, out_format fmt, const char *out_path)
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
    rc = write_output(path, write_prof, &o, &err);
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

static int report_run(const char *run_arg, out_format fmt, const char *out_path)
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
    char def[64];
    snprintf(def, sizeof def, "report-run%lld.html", (long long)id);
    const char *path = out_path ? out_path : fmt == FMT_HTML ? def : "-";
    run_out o = {&r, fmt};
    rc = write_output(path, write_run, &o, &err);
    sh_report_free(&r);
    if (rc != 0) { fprintf(stderr, "starhil report: %s\n", err.msg); return 1; }
    if (strcmp(path, "-") != 0) printf("%s\n", path);
    return 0;
}

int sh_cmd_report(int argc, char **argv)
{
    args a = {.cmd = "report", .argc = argc, .argv = argv};
    const char *fmt_s = "html", *out = NULL, *devices = NULL, *v;
    for (a.i = 1; a.i < argc; a.i++) {
        int m;
        if (is_help(argv[a.i])) { report_usage(stdout); return 0; }
        if ((m = opt_value(&a, "--format", &v)) != 0) { if (m < 0) return 2; fmt_s = v; }
        else if ((m = opt_value(&a, "-o", &v)) != 0) { if (m < 0) return 2; out = v; }
        else if ((m = opt_value(&a, "--devices", &v)) != 0) { if (m < 0) return 2; devices = v; }
        else if ((m = opt_value(&a, "--db", &v)) != 0) { if (m < 0) return 2; sh_cli_set_db_path(v); }
        else if (argv[a.i][0] == '-') {
            fprintf(stderr, "starhil report: unknown option %s\n", argv[a.i]);
            report_usage(stderr);
            return 2;
        } else if (a.n_pos < 32) a.positional[a.n_pos++] = argv[a.i];
    }
    out_format fmt;
    if (parse_format("report", fmt_s, &fmt) != 0) return 2;
    if (devices && a.n_pos == 0) return report_profiles(devices, fmt, out);
    if (devices || a.n_pos != 1) {
        fprintf(stderr, "starhil report: give one RUN id, or --devices A,B\n");
        report_usage(stderr);
        return 2;
    }
    return report_run(a.positional[0], fmt, out);
}

/* ---- starhil export ----------------------------------------------------------------------- */

static void export_usage(FILE *f)
{
    fprintf(f,
        "usage: starhil export GENOME --format hf [-o FILE]\n"
        "       starhil export GENOME --format gguf [--wtype f32|f16|q8_0|q4_0] [--seed S] [-o FILE]\n\n"
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
        "requires it), dense layers after MoE layers, differing MoE layers, llama3 rope scaling.\n\n"
        "options:\n"
        "  --format hf|gguf   required\n"
        "  --wtype T          gguf matrix type (default f32); norms, conv kernels, router and\n"
        "                     expert bias stay f32\n"
        "  --seed S           gguf weight seed (default 1)\n"
        "  -o FILE            output file\n");
}

static int write_text(FILE *f, const void *ctx, sh_err *err)
{
    fprintf(f, "%s\n", (const char *)ctx);
    return ferror(f) ? sh_err_set(err, "write error") : 0;
}

static int export_hf(const sh_genome *g, const char *out)
{
    sh_err err = {{0}};
    char *text = sh_hf_config_export(g, &err);
    if (!text) { fprintf(stderr, "starhil export: %s\n", err.msg); return 1; }
    int rc = write_output(out ? out : "-", write_text, text, &err);
    free(text);
    if (rc != 0) { fprintf(stderr, "starhil export: %s\n", err.msg); return 1; }
    if (out && strcmp(out, "-") != 0) printf("%s\n", out);
    return 0;
}

static void gguf_progress(void *ctx, uint64_t done, uint64_t total)
{
    int *last = ctx, pct = total ? (int)(1000.0 * (double)done / (double)total) : 1000;
    if (pct == *last) return;
    *last = pct;
    fprintf(stderr, "\r%5.1f%% of %.1f MiB of tensor data%s", total ? 100.0 * (double)done / (double)total : 100.0,
            (double)total / 1048576.0, done == total ? "\n" : "");
}

static int export_gguf(const sh_genome *g, const char *out, const char *wtype_s, const char *seed_s)
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
    if (sh_cli_is_tty()) {
        static int last_permille = -1;
        o.progress = gguf_progress;
        o.progress_ctx = &last_permille;
        fprintf(stderr, "writing %s (%.1f MiB)\n", path, (double)sh_gguf_file_size(g, &o) / 1048576.0);
    }
    if (sh_gguf_write_genome(g, path, &o, &err) != 0) {
        if (sh_cli_is_tty()) fputc('\n', stderr);
        fprintf(stderr, "starhil export: %s\n", err.msg);
        return 1;
    }
    printf("%s\n", path);
    return 0;
}

int sh_cmd_export(int argc, char **argv)
{
    args a = {.cmd = "export", .argc = argc, .argv = argv};
    const char *fmt = NULL, *out = NULL, *wtype = NULL, *seed = NULL, *v;
    for (a.i = 1; a.i < argc; a.i++) {
        int m;
        if (is_help(argv[a.i])) { export_usage(stdout); return 0; }
        if ((m = opt_value(&a, "--format", &v)) != 0) { if (m < 0) return 2; fmt = v; }
        else if ((m = opt_value(&a, "-o", &v)) != 0) { if (m < 0) return 2; out = v; }
        else if ((m = opt_value(&a, "--wtype", &v)) != 0) { if (m < 0) return 2; wtype = v; }
        else if ((m = opt_value(&a, "--seed", &v)) != 0) { if (m < 0) return 2; seed = v; }
        else if (argv[a.i][0] == '-' && argv[a.i][1]) {
            fprintf(stderr, "starhil export: unknown option %s\n", argv[a.i]);
            export_usage(stderr);
            return 2;
        } else if (a.n_pos < 32) a.positional[a.n_pos++] = argv[a.i];
    }
    if (a.n_pos != 1 || !fmt) {
        fprintf(stderr, "starhil export: give one GENOME and --format hf|gguf\n");
        export_usage(stderr);
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
    if (sh_genome_resolve(a.positional[0], &g, &err) != 0) {
        fprintf(stderr, "starhil export: %s\n", err.msg);
        return 1;
    }
    return hf ? export_hf(&g, out) : export_gguf(&g, out, wtype, seed);
}

/* ---- starhil compare ------------------------------------------------------------------------ */

static void compare_usage(FILE *f)
{
    fprintf(f,
        "usage: starhil compare --device D GENOME GENOME... [options]\n\n"
        "Measures each genome (preset name, file or inline text) on device D with the\n"
        "measurement protocol of `starhil measure` and prints prefill and decode speed and\n"
        "memory side by side, with ratios to the first genome. Example: check the claim that\n"
        "LFM2 decodes about 2x faster than Qwen3 on CPU:\n"
        "  starhil compare --device local lfm2-1.2b qwen3-1.7b --prompt 128 --gen 32\n\n"
        "options:\n"
        "  --device D       device name (required; `local` always exists)\n"
        "  --prompt N       prompt tokens (default 512)\n"
        "  --gen N          generated tokens per repetition (default 128)\n"
        "  --wtype T        f32|f16|q8_0|q4_0 (default q4_0)\n"
        "  --threads N      threads (default: the device's)\n"
        "  --max-reps N     repetition cap per genome (default 30)\n"
        "  --tolerance X    relative CI half-width target (default 0.02)\n"
        "  --json           one JSON object on stdout\n"
        "  --db FILE        run database (measurements are stored and reused)\n");
}

typedef struct cmp_row {
    const char *arg;         /* as given */
    const char *name;        /* preset name, or the hash for other genomes */
    char hash[17];
    sh_measure_result res;
} cmp_row;

static double ratio(double a, double b) { return (isfinite(a) && isfinite(b) && b > 0) ? a / b : NAN; }

static json_t *jnum_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static void compare_print_json(const char *device, const sh_measure_opts *o, const cmp_row *rows, int n)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const sh_measure_result *r = &rows[i].res, *b = &rows[0].res;
        json_t *x = json_object();
        json_object_set_new(x, "genome", json_string(rows[i].name));
        json_object_set_new(x, "hash", json_string(rows[i].hash));
        json_object_set_new(x, "eval_id", json_integer(r->eval_id));
        json_object_set_new(x, "prefill_tok_s", jnum_or_null(r->prefill_tok_s));
        json_object_set_new(x, "decode_tok_s", jnum_or_null(r->decode_tok_s));
        json_object_set_new(x, "decode_ms_median", jnum_or_null(r->decode_ms_median));
        json_object_set_new(x, "decode_ci_ms", json_pack("[o,o]", jnum_or_null(r->decode_ci_low),
                                                         jnum_or_null(r->decode_ci_high)));
        json_object_set_new(x, "ttft_ms", jnum_or_null(r->ttft_ms));
        json_object_set_new(x, "peak_rss_bytes", jnum_or_null(r->peak_rss_bytes));
        json_object_set_new(x, "weight_bytes", jnum_or_null(r->weight_bytes));
        json_object_set_new(x, "kv_bytes", jnum_or_null(r->kv_bytes));
        json_object_set_new(x, "conv_bytes", jnum_or_null(r->conv_bytes));
        json_object_set_new(x, "reps", json_integer(r->reps));
        json_object_set_new(x, "converged", json_boolean(r->converged));
        json_object_set_new(x, "cached", json_boolean(r->cached));
        json_object_set_new(x, "prefill_speed_vs_first", jnum_or_null(ratio(r->prefill_tok_s, b->prefill_tok_s)));
        json_object_set_new(x, "decode_speed_vs_first", jnum_or_null(ratio(r->decode_tok_s, b->decode_tok_s)));
        json_object_set_new(x, "peak_memory_vs_first", jnum_or_null(ratio(r->peak_rss_bytes, b->peak_rss_bytes)));
        json_array_append_new(arr, x);
    }
    json_t *root = json_pack("{s:s,s:{s:i,s:i,s:s,s:i},s:o}", "device", device, "settings",
                             "prompt", o->prompt, "gen", o->gen, "wtype", o->wtype, "threads", o->threads,
                             "results", arr);
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) printf("%s\n", s);
    free(s);
    json_decref(root);
}

static void compare_print_table(const char *device, const sh_measure_opts *o, const cmp_row *rows, int n)
{
    printf("device %s, prompt %d, gen %d, wtype %s\n\n", device, o->prompt, o->gen, o->wtype);
    printf("%-16s %16s %13s %12s %10s %9s %9s %9s %8s\n", "genome", "hash", "prefill tok/s",
           "decode tok/s", "decode ms", "peak MiB", "prefill x", "decode x", "memory x");
    for (int i = 0; i < n; i++) {
        const sh_measure_result *r = &rows[i].res, *b = &rows[0].res;
        printf("%-16.16s %16s %13.1f %12.2f %10.3f %9.1f %8.2fx %8.2fx %7.2fx\n", rows[i].name, rows[i].hash,
               r->prefill_tok_s, r->decode_tok_s, r->decode_ms_median, r->peak_rss_bytes / 1048576.0,
               ratio(r->prefill_tok_s, b->prefill_tok_s), ratio(r->decode_tok_s, b->decode_tok_s),
               ratio(r->peak_rss_bytes, b->peak_rss_bytes));
    }
    printf("(x: ratio to %s; speeds above 1 are faster, memory above 1 is larger)\n", rows[0].name);
    if (n >= 2)
        printf("\n%s decodes %.2fx %s and prefills %.2fx %s than %s on %s.\n", rows[0].name,
               ratio(rows[0].res.decode_tok_s, rows[1].res.decode_tok_s) >= 1 ?
                   ratio(rows[0].res.decode_tok_s, rows[1].res.decode_tok_s) :
                   ratio(rows[1].res.decode_tok_s, rows[0].res.decode_tok_s),
               rows[0].res.decode_tok_s >= rows[1].res.decode_tok_s ? "faster" : "slower",
               ratio(rows[0].res.prefill_tok_s, rows[1].res.prefill_tok_s) >= 1 ?
                   ratio(rows[0].res.prefill_tok_s, rows[1].res.prefill_tok_s) :
                   ratio(rows[1].res.prefill_tok_s, rows[0].res.prefill_tok_s),
               rows[0].res.prefill_tok_s >= rows[1].res.prefill_tok_s ? "faster" : "slower",
               rows[1].name, device);
}

static void compare_progress(void *ctx, const char *line)
{
    (void)ctx;
    if (sh_cli_is_tty()) fprintf(stderr, "\r%-78.78s", line);
}

static int compare_measure(const char *device, const sh_measure_opts *o, cmp_row *rows, int n)
{
    sh_err err = {{0}};
    sh_db *db = NULL;
    if (sh_db_open(sh_cli_db_path(), SH_DB_CREATE, &db, &err) != 0 || sh_device_ensure_local(db, &err) != 0) {
        fprintf(stderr, "starhil compare: %s\n", err.msg);
        sh_db_close(db);
        return 1;
    }
    int rc = 0;
    static sh_genome g;
    for (int i = 0; i < n && rc == 0; i++) {
        if (sh_genome_resolve(rows[i].arg, &g, &err) != 0) {
            fprintf(stderr, "starhil compare: %s\n", err.msg);
            rc = 1;
            break;
        }
        sh_hash_hex(sh_genome_hash(&g), rows[i].hash);
        static sh_genome p;
        sh_err e2 = {{0}};
        rows[i].name = sh_preset_get(rows[i].arg, &p, &e2) == 0 ? rows[i].arg : rows[i].hash;
        if (sh_cli_is_tty()) fprintf(stderr, "measuring %s on %s (%d/%d)\n", rows[i].name, device, i + 1, n);
        if (sh_measure_genome(db, device, &g, o, &rows[i].res, &err) != 0) {
            fprintf(stderr, "starhil compare: %s on %s: %s\n", rows[i].name, device, err.msg);
            rc = 1;
        }
    }
    if (sh_cli_is_tty()) fputc('\n', stderr);
    sh_measure_shutdown();
    sh_db_close(db);
    return rc;
}

int sh_cmd_compare(int argc, char **argv)
{
    args a = {.cmd = "compare", .argc = argc, .argv = argv};
    const char *device = NULL, *v;
    bool as_json = false;
    long prompt = 512, gen = 128, threads = 0, max_reps = 0;
    sh_measure_opts o = {.wtype = "q4_0"};
    for (a.i = 1; a.i < argc; a.i++) {
        int m;
        if (is_help(argv[a.i])) { compare_usage(stdout); return 0; }
        if (!strcmp(argv[a.i], "--json")) as_json = true;
        else if ((m = opt_value(&a, "--device", &v)) != 0) { if (m < 0) return 2; device = v; }
        else if ((m = opt_value(&a, "--prompt", &v)) != 0) {
            if (m < 0 || !parse_long("compare", "--prompt", v, 1, 1 << 20, &prompt)) return 2;
        } else if ((m = opt_value(&a, "--gen", &v)) != 0) {
            if (m < 0 || !parse_long("compare", "--gen", v, 1, 1 << 20, &gen)) return 2;
        } else if ((m = opt_value(&a, "--threads", &v)) != 0) {
            if (m < 0 || !parse_long("compare", "--threads", v, 1, 1024, &threads)) return 2;
        } else if ((m = opt_value(&a, "--max-reps", &v)) != 0) {
            if (m < 0 || !parse_long("compare", "--max-reps", v, 1, 100000, &max_reps)) return 2;
        } else if ((m = opt_value(&a, "--tolerance", &v)) != 0) {
            char *end;
            if (m < 0) return 2;
            o.tolerance = strtod(v, &end);
            if (end == v || *end || !(o.tolerance > 0 && o.tolerance < 1)) {
                fprintf(stderr, "starhil compare: --tolerance \"%s\" is not in (0, 1)\n", v);
                return 2;
            }
        } else if ((m = opt_value(&a, "--wtype", &v)) != 0) {
            sh_dtype t;
            if (m < 0) return 2;
            if (sh_dtype_parse(v, &t) != 0) {
                fprintf(stderr, "starhil compare: --wtype \"%s\" is not f32, f16, q8_0 or q4_0\n", v);
                return 2;
            }
            o.wtype = v;
        } else if ((m = opt_value(&a, "--db", &v)) != 0) { if (m < 0) return 2; sh_cli_set_db_path(v); }
        else if (argv[a.i][0] == '-') {
            fprintf(stderr, "starhil compare: unknown option %s\n", argv[a.i]);
            compare_usage(stderr);
            return 2;
        } else if (a.n_pos < 32) a.positional[a.n_pos++] = argv[a.i];
        else { fprintf(stderr, "starhil compare: at most 32 genomes\n"); return 2; }
    }
    if (!device || a.n_pos < 2) {
        fprintf(stderr, "starhil compare: give --device D and at least two genomes\n");
        compare_usage(stderr);
        return 2;
    }
    o.prompt = (int)prompt; o.gen = (int)gen; o.threads = (int)threads; o.max_reps = (int)max_reps;
    if (max_reps > 0 && max_reps < 3) o.min_reps = (int)max_reps;
    o.progress = compare_progress;
    cmp_row rows[32];
    memset(rows, 0, sizeof rows);
    for (int i = 0; i < a.n_pos; i++) rows[i].arg = rows[i].name = a.positional[i];
    int rc = compare_measure(device, &o, rows, a.n_pos);
    if (rc == 0) {
        if (as_json) compare_print_json(device, &o, rows, a.n_pos);
        else compare_print_table(device, &o, rows, a.n_pos);
    }
    for (int i = 0; i < a.n_pos; i++) sh_measure_result_free(&rows[i].res);
    return rc;
}
