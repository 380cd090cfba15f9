/* report_cli.c - `starhil report` (run reports, chip-profile comparison) and
 * `starhil export` (Hugging Face config.json, GGUF). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/clidb.h"
#include "cli/commands.h"
#include "reports/gguf_write.h"
#include "reports/hf_config.h"
#include "reports/report_data.h"
#include "runs/runs.h"
#include "search/run.h"
#include "util/cliopt.h"
#include "util/opt.h"
#include "util/progress.h"

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
    if (sh_cli_open_db("report", SH_DB_READONLY, &db)) return 1;
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

static int report_run(const char *run_arg, out_format fmt, const char *out_path, bool force)
{
    sh_err err = {{0}};
    sh_db *db = NULL;
    if (sh_cli_open_db("report", SH_DB_READONLY, &db)) return 1;
    int64_t id = 0;   /* RUN: an id, or the name of a run (the newest of that name) */
    if (sh_search_find_run(db, run_arg, &id, &err) != 0) {
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

/* Writes report-<db name>-run<ID>.html in the current directory (temporary
 * file linked into place, so an existing report is never overwritten); 0 and
 * the path, or -1 with err. */
static int write_html_report(sh_db *db, int64_t run_id, char *path, size_t cap, sh_err *err)
{
    if (sh_report_default_name(sh_cli_db_path(), run_id, "html", path, cap) != 0)
        return sh_err_set(err, "report file name too long");
    if (access(path, F_OK) == 0)
        return sh_err_set(err, "%s exists; not overwritten (write it with `starhil report %" PRId64
                          " -o FILE` or `--force`)", path, run_id);
    sh_report r;
    if (sh_report_load(db, run_id, &r, err) != 0)
        return -1;
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (!f) {
        sh_err_set(err, "%s: cannot create (%s)", tmp, strerror(errno));
    } else {
        rc = sh_report_write_html(&r, f, err);
        if (fclose(f) != 0 && rc == 0)
            rc = sh_err_set(err, "%s: write error", tmp);
        if (rc == 0 && link(tmp, path) != 0)
            rc = sh_err_set(err, errno == EEXIST ? "%s exists; not overwritten" : "%s: cannot link into place (%s)",
                            path, strerror(errno));
        remove(tmp);
    }
    sh_report_free(&r);
    return rc;
}

/* The end of `starhil search` (composed by cli/main.c): the finished run's
 * HTML report under its default name, and where it is, or how to write it. */
void sh_report_run_end(int64_t run_id)
{
    char path[160];
    sh_err err = {{0}};
    sh_db *db;
    /* read-write, as the search had it: its last close removes the WAL files */
    int rc = sh_db_open(sh_cli_db_path(), 0, &db, &err);
    if (rc == 0) {
        rc = write_html_report(db, run_id, path, sizeof path, &err);
        sh_db_close(db);
    }
    if (rc == 0) {
        printf("\nreport: %s (rewrite it with `starhil report %" PRId64 " --force`)\n", path, run_id);
        return;
    }
    fprintf(stderr, "starhil search: report not written: %s\n", err.msg);
    printf("\nrun %" PRId64 " done; write its report with `starhil report %" PRId64 "`\n", run_id, run_id);
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
    "gguf: a GGUF file (architecture lfm2 or lfm2moe; attention-only genomes as qwen3\n"
    "      with QK-norm on every layer or llama with none, e.g. the qwen3-* and\n"
    "      llama-3.2-1b presets) with the deterministic synthetic\n"
    "      weights the runtime makes for the same --seed and --wtype, loadable by\n"
    "      llama.cpp and by `variant ... --gguf FILE`.  Without --tokenizer-from its\n"
    "      tokenizer is no_vocab and the file is for benchmarking only (llama-bench runs\n"
    "      it, llama-cli cannot tokenize text); --tokenizer-from REAL.gguf copies that\n"
    "      file's tokenizer.* metadata byte for byte (its token count must equal the\n"
    "      genome's vocabulary, 65536 for the LFM2 presets).\n"
    "      It carries general.file_type and general.quantization_version (2).  For the\n"
    "      k-quants (q4_k, q5_k, q6_k) use the variant's own `variant export --wtype`.\n"
    "      Default file: <genome hash>-<wtype>-s<seed>.gguf; the path is printed.\n"
    "Genomes a file cannot express are refused with the reason: per-layer head counts or\n"
    "conv kernels, attention without QK-norm beside conv layers (lfm2), heads x head_dim\n"
    "!= hidden (llama.cpp's lfm2 requires it), dense layers after MoE layers, differing\n"
    "MoE layers, llama3 rope scaling outside a llama file (hf: always), QK-norm on some\n"
    "attention-only layers but not all, per-layer FFN widths (qwen3, llama).\n";

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

static int export_gguf(const sh_genome *g, const char *out, const char *wtype_s, const char *seed_s,
                       const char *tok_from, bool quiet, bool as_json)
{
    sh_gguf_opts o = {.wtype = SH_WTYPE_EXPORT, .seed = 1, .tokenizer_from = tok_from};
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
    const char *fmt = NULL, *out = NULL, *wtype = NULL, *seed = NULL, *tok_from = NULL;
    bool quiet = false, as_json = false;
    const sh_opt t[] = {
        {"--format", NULL, SH_OPT_STR, &fmt, "hf|gguf", "required", 0, 0, NULL},
        {"--wtype", NULL, SH_OPT_STR, &wtype, "T", "gguf matrix type: f32 (default), f16, q8_0 or q4_0; norms,\n"
         "conv kernels, router and expert bias stay f32", 0, 0, NULL},
        {"--seed", NULL, SH_OPT_STR, &seed, "S", "gguf weight seed (default 1)", 0, 0, NULL},
        {"--tokenizer-from", NULL, SH_OPT_STR, &tok_from, "FILE.gguf", "gguf: copy this GGUF's tokenizer (default:\n"
         "no_vocab, for benchmarking only)", 0, 0, NULL},
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
    if (hf && (wtype || seed || tok_from)) {
        fprintf(stderr, "starhil export: --wtype, --seed and --tokenizer-from apply to --format gguf only\n");
        return 2;
    }
    static sh_genome g;
    sh_err err = {{0}};
    if (sh_genome_resolve(pos[0], &g, &err) != 0) {
        fprintf(stderr, "starhil export: %s\n", err.msg);
        return 1;
    }
    return hf ? export_hf(&g, out, as_json) : export_gguf(&g, out, wtype, seed, tok_from, quiet || as_json, as_json);
}
