/* runs_cli.c - `starhil runs list|show`: what the run store holds, as aligned
 * tables for people or JSON for scripts.  Opens the database read-only. */
#include "cli/clidb.h"
#include "cli/commands.h"
#include "runs/runs_internal.h"
#include "util/cliopt.h"
#include "util/opt.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_LAST_ERRORS 5

static const char LIST_ABOUT[] =
    "One line per stored run: id, name, status, seed, creation time, number of\n"
    "evaluations ok and failed, and number of generations.  With --json, an array\n"
    "of objects with the same fields.\n";

static const char SHOW_ABOUT[] =
    "Details of run ID: config, status, evaluation counts by status and by device,\n"
    "latest generation's population, front size and hypervolume, last errors.\n"
    "An unknown ID is an error (exit 1).\n";

typedef struct cli_opts {
    bool json;
    bool help;
    const char *id_arg;
} cli_opts;

/* Parses the options after `runs list|show` (table in util/opt.h). Returns 0
 * (o->help set after printing the help), or 2 after printing a usage error. */
static int parse_opts(int argc, char **argv, bool want_id, cli_opts *o)
{
    memset(o, 0, sizeof *o);
    const char *db = NULL;
    const sh_opt t[] = {
        {"--json", NULL, SH_OPT_FLAG, &o->json, NULL, "print JSON for scripts instead of a table", 0, 0, NULL},
        {"--db", NULL, SH_OPT_STR, &db, "FILE", "run database (default $STARHIL_DB or ./starhil.db)", 0, 0, NULL},
    };
    sh_cmd_spec spec = {want_id ? "runs show" : "runs list", want_id ? "ID" : NULL, NULL,
                        want_id ? SHOW_ABOUT : LIST_ABOUT, t, 2, 0, want_id ? 1 : 0};
    const char *pos[1];
    int n_pos, rc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (rc == 1) { o->help = true; return 0; }
    if (rc) return 2;
    if (db) sh_cli_set_db_path(db);
    if (want_id && n_pos) o->id_arg = pos[0];
    return 0;
}

/* Terminal-safe copy: control characters from stored text become '?'. */
static void safe_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++)
        dst[i] = ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) ? '?' : src[i];
    dst[i] = '\0';
}

static bool db_missing(const char *path)
{
    struct stat st;
    return stat(path, &st) != 0 && errno == ENOENT;
}

static json_t *json_seed(uint64_t seed)
{
    if (seed <= (uint64_t)INT64_MAX) return json_integer((json_int_t)seed);
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)seed);
    return json_string(buf);
}

static json_t *json_real_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static int print_json(json_t *j)
{
    if (!j) {
        fprintf(stderr, "starhil runs: out of memory building JSON\n");
        return 1;
    }
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(j);
    if (!s) {
        fprintf(stderr, "starhil runs: cannot encode JSON\n");
        return 1;
    }
    puts(s);
    free(s);
    return 0;
}

/* ---- runs list ------------------------------------------------------------ */

typedef struct list_row {
    char id[24], name[64], status[16], seed[24], created[32], ok[16], failed[16], gens[16];
} list_row;

static void print_table(const list_row *rows, int n)
{
    const list_row head = {"ID", "NAME", "STATUS", "SEED", "CREATED", "OK", "FAILED", "GENS"};
    int w[8];
    for (int c = 0; c < 8; c++) w[c] = 0;
    for (int r = -1; r < n; r++) {
        const list_row *x = r < 0 ? &head : &rows[r];
        const char *cols[8] = {x->id, x->name, x->status, x->seed, x->created, x->ok, x->failed, x->gens};
        for (int c = 0; c < 8; c++) if ((int)strlen(cols[c]) > w[c]) w[c] = (int)strlen(cols[c]);
    }
    for (int r = -1; r < n; r++) {
        const list_row *x = r < 0 ? &head : &rows[r];
        /* numbers right-aligned, text left-aligned */
        printf("%*s  %-*s  %-*s  %*s  %-*s  %*s  %*s  %*s\n", w[0], x->id, w[1], x->name, w[2], x->status,
               w[3], x->seed, w[4], x->created, w[5], x->ok, w[6], x->failed, w[7], x->gens);
    }
}

static int run_list_stats(sh_db *db, const sh_run_rec *r, sh_eval_counts *c, int *gens, sh_err *err)
{
    if (sh_db_count_evals(db, r->id, c, err) != 0) return -1;
    int *g = NULL;
    if (sh_db_list_generation_numbers(db, r->id, &g, gens, err) != 0) return -1;
    free(g);
    return 0;
}

static json_t *list_json_row(const sh_run_rec *r, const sh_eval_counts *c, int gens)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(r->id));
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "status", json_string(r->status));
    json_object_set_new(o, "seed", json_seed(r->seed));
    json_object_set_new(o, "created_at", json_string(r->created_at));
    json_object_set_new(o, "updated_at", json_string(r->updated_at));
    json_object_set_new(o, "evaluations_ok", json_integer(c->ok));
    json_object_set_new(o, "evaluations_failed", json_integer(c->failed));
    json_object_set_new(o, "evaluations_total", json_integer(c->total));
    json_object_set_new(o, "generations", json_integer(gens));
    return o;
}

static int list_runs(sh_db *db, bool as_json)
{
    sh_err err = {{0}};
    sh_run_rec *runs = NULL;
    int n = 0;
    if (sh_db_list_runs(db, &runs, &n, &err) != 0) {
        fprintf(stderr, "starhil runs list: %s\n", err.msg);
        return 1;
    }
    json_t *arr = as_json ? json_array() : NULL;
    list_row *rows = n > 0 ? calloc((size_t)n, sizeof *rows) : NULL;
    int ret = 0;
    if (n > 0 && !rows) { fprintf(stderr, "starhil runs list: out of memory\n"); ret = 1; }
    for (int i = 0; ret == 0 && i < n; i++) {
        sh_eval_counts c;
        int gens = 0;
        if (run_list_stats(db, &runs[i], &c, &gens, &err) != 0) {
            fprintf(stderr, "starhil runs list: run %lld: %s\n", (long long)runs[i].id, err.msg);
            ret = 1;
            break;
        }
        if (arr) { json_array_append_new(arr, list_json_row(&runs[i], &c, gens)); continue; }
        list_row *x = &rows[i];
        snprintf(x->id, sizeof x->id, "%lld", (long long)runs[i].id);
        safe_copy(x->name, sizeof x->name, runs[i].name);
        safe_copy(x->status, sizeof x->status, runs[i].status);
        snprintf(x->seed, sizeof x->seed, "%llu", (unsigned long long)runs[i].seed);
        safe_copy(x->created, sizeof x->created, runs[i].created_at);
        snprintf(x->ok, sizeof x->ok, "%d", c.ok);
        snprintf(x->failed, sizeof x->failed, "%d", c.failed);
        snprintf(x->gens, sizeof x->gens, "%d", gens);
    }
    if (ret == 0) {
        if (arr) { ret = print_json(arr); arr = NULL; }
        else if (n == 0) printf("no runs stored in %s\n", sh_db_path(db));
        else print_table(rows, n);
    }
    json_decref(arr);
    free(rows);
    sh_run_recs_free(runs, n);
    return ret;
}

static int cmd_list(int argc, char **argv)
{
    cli_opts o;
    int rc = parse_opts(argc, argv, false, &o);
    if (rc) return rc;
    if (o.help) return 0;
    if (db_missing(sh_cli_db_path())) {
        /* nothing stored yet is not an error for a listing */
        if (o.json) puts("[]");
        else printf("no runs stored in %s (no such file)\n", sh_cli_db_path());
        return 0;
    }
    sh_db *db;
    if (sh_cli_open_db("runs list", SH_DB_READONLY, &db) != 0) return 1;
    rc = list_runs(db, o.json);
    sh_db_close(db);
    return rc;
}

/* ---- runs show ------------------------------------------------------------ */

typedef struct device_counts {
    char device[64];
    int pending, running, ok, failed;
} device_counts;

typedef struct show_data {
    sh_run_rec run;
    sh_eval_counts counts;
    device_counts *by_dev;
    int n_dev;
    bool has_gen;
    int gen, population;
    sh_run_metric metric;   /* of the latest generation, if stored */
    bool has_metric;
    sh_eval_rec errors[MAX_LAST_ERRORS];
    int n_errors;
} show_data;

static void show_data_free(show_data *d)
{
    sh_run_rec_free(&d->run);
    free(d->by_dev);
    for (int i = 0; i < d->n_errors; i++) sh_eval_rec_free(&d->errors[i]);
}

static device_counts *device_slot(show_data *d, const char *device)
{
    for (int i = 0; i < d->n_dev; i++)
        if (!strcmp(d->by_dev[i].device, device)) return &d->by_dev[i];
    device_counts *na = realloc(d->by_dev, (size_t)(d->n_dev + 1) * sizeof *na);
    if (!na) return NULL;
    d->by_dev = na;
    device_counts *s = &na[d->n_dev++];
    memset(s, 0, sizeof *s);
    snprintf(s->device, sizeof s->device, "%s", device);
    return s;
}

static int load_device_counts(sh_db *db, show_data *d, sh_err *err)
{
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT ifnull(device, ''), status, count(*) FROM evaluations WHERE run_id = ?1 "
                         "GROUP BY 1, 2 ORDER BY 1", &st, err, "count evaluations by device") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, d->run.id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char dev[64], status[16];
        shdb_col_copy(st, 0, dev, sizeof dev);
        shdb_col_copy(st, 1, status, sizeof status);
        device_counts *s = device_slot(d, dev);
        if (!s) { sqlite3_finalize(st); return sh_err_set(err, "out of memory"); }
        int c = sqlite3_column_int(st, 2);
        if (!strcmp(status, "pending")) s->pending += c;
        else if (!strcmp(status, "running")) s->running += c;
        else if (!strcmp(status, "ok")) s->ok += c;
        else if (!strcmp(status, "failed")) s->failed += c;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : shdb_sql_error(db, err, "count evaluations by device");
}

static int load_last_errors(sh_db *db, show_data *d, sh_err *err)
{
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT id FROM evaluations WHERE run_id = ?1 AND status = 'failed' "
                         "ORDER BY finished_at DESC, id DESC LIMIT ?2", &st, err, "last errors") != 0)
        return -1;
    sqlite3_bind_int64(st, 1, d->run.id);
    sqlite3_bind_int(st, 2, MAX_LAST_ERRORS);
    int64_t ids[MAX_LAST_ERRORS];
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < MAX_LAST_ERRORS) ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return shdb_sql_error(db, err, "last errors");
    for (int i = 0; i < n; i++) {
        if (sh_db_get_eval(db, ids[i], &d->errors[i], err) != 0) return -1;
        d->n_errors = i + 1;
    }
    return 0;
}

static int load_latest_gen(sh_db *db, show_data *d, sh_err *err)
{
    if (sh_db_latest_generation(db, d->run.id, &d->gen, err) != 0)
        return err->msg[0] ? -1 : 0;
    d->has_gen = true;
    sh_gen_row *rows;
    if (sh_db_list_generation(db, d->run.id, d->gen, false, &rows, &d->population, err) != 0) return -1;
    sh_gen_rows_free(rows, d->population);
    sh_run_metric *m;
    int n;
    if (sh_db_list_run_metrics(db, d->run.id, &m, &n, err) != 0) return -1;
    for (int i = 0; i < n; i++)
        if (m[i].gen == d->gen) { d->metric = m[i]; d->has_metric = true; }
    free(m);
    return 0;
}

static int load_show(sh_db *db, int64_t id, show_data *d, sh_err *err)
{
    memset(d, 0, sizeof *d);
    if (sh_db_get_run(db, id, &d->run, err) != 0) return -1;
    if (sh_db_check_run_json(db, id, err) != 0) return -1;
    if (sh_db_count_evals(db, id, &d->counts, err) != 0) return -1;
    if (load_device_counts(db, d, err) != 0) return -1;
    if (load_latest_gen(db, d, err) != 0) return -1;
    return load_last_errors(db, d, err);
}

static json_t *show_json(const show_data *d)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(d->run.id));
    json_object_set_new(o, "name", json_string(d->run.name));
    json_object_set_new(o, "status", json_string(d->run.status));
    json_object_set_new(o, "seed", json_seed(d->run.seed));
    json_object_set_new(o, "created_at", json_string(d->run.created_at));
    json_object_set_new(o, "updated_at", json_string(d->run.updated_at));
    json_t *cfg = d->run.config_json ? json_loads(d->run.config_json, JSON_DECODE_ANY, NULL) : NULL;
    json_object_set_new(o, "config", cfg ? cfg : json_null());
    json_object_set_new(o, "has_state", json_boolean(d->run.state_len > 0));

    json_t *ev = json_object();
    json_object_set_new(ev, "total", json_integer(d->counts.total));
    json_object_set_new(ev, "pending", json_integer(d->counts.pending));
    json_object_set_new(ev, "running", json_integer(d->counts.running));
    json_object_set_new(ev, "ok", json_integer(d->counts.ok));
    json_object_set_new(ev, "failed", json_integer(d->counts.failed));
    json_t *bd = json_array();
    for (int i = 0; i < d->n_dev; i++) {
        const device_counts *c = &d->by_dev[i];
        json_t *x = json_object();
        json_object_set_new(x, "device", c->device[0] ? json_string(c->device) : json_null());
        json_object_set_new(x, "pending", json_integer(c->pending));
        json_object_set_new(x, "running", json_integer(c->running));
        json_object_set_new(x, "ok", json_integer(c->ok));
        json_object_set_new(x, "failed", json_integer(c->failed));
        json_array_append_new(bd, x);
    }
    json_object_set_new(ev, "by_device", bd);
    json_object_set_new(o, "evaluations", ev);

    json_t *lg = json_null();
    if (d->has_gen) {
        lg = json_object();
        json_object_set_new(lg, "gen", json_integer(d->gen));
        json_object_set_new(lg, "population", json_integer(d->population));
        json_object_set_new(lg, "front_size", d->has_metric ? json_integer(d->metric.front_size) : json_null());
        json_object_set_new(lg, "hypervolume", d->has_metric ? json_real_or_null(d->metric.hypervolume) : json_null());
        json_object_set_new(lg, "evaluations", d->has_metric ? json_integer(d->metric.evaluations) : json_null());
    }
    json_object_set_new(o, "latest_generation", lg);

    json_t *errs = json_array();
    for (int i = 0; i < d->n_errors; i++) {
        const sh_eval_rec *e = &d->errors[i];
        char hex[17];
        sh_hash_hex(e->genome, hex);
        json_t *x = json_object();
        json_object_set_new(x, "eval_id", json_integer(e->id));
        json_object_set_new(x, "genome", json_string(hex));
        json_object_set_new(x, "device", e->device[0] ? json_string(e->device) : json_null());
        json_object_set_new(x, "kind", json_string(e->kind));
        json_object_set_new(x, "attempts", json_integer(e->attempts));
        json_object_set_new(x, "error", e->error ? json_string(e->error) : json_null());
        json_array_append_new(errs, x);
    }
    json_object_set_new(o, "last_errors", errs);
    return o;
}

static void print_config(const char *config_json)
{
    json_t *j = config_json ? json_loads(config_json, JSON_DECODE_ANY, NULL) : NULL;
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    printf("config:\n");
    const char *text = s ? s : (config_json ? config_json : "(none)");
    /* indent every line by two spaces */
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        char line[512];
        char raw[512];
        snprintf(raw, sizeof raw, "%.*s", len, p);
        safe_copy(line, sizeof line, raw);
        printf("  %s%s\n", line, len >= (int)sizeof raw ? "..." : "");
        p += len + (nl ? 1 : 0);
    }
    free(s);
}

static void print_device_table(const show_data *d)
{
    int w = 6;   /* "DEVICE" */
    for (int i = 0; i < d->n_dev; i++) {
        int l = d->by_dev[i].device[0] ? (int)strlen(d->by_dev[i].device) : 6;
        if (l > w) w = l;
    }
    printf("  %-*s  %7s  %7s  %7s  %7s\n", w, "DEVICE", "PENDING", "RUNNING", "OK", "FAILED");
    for (int i = 0; i < d->n_dev; i++) {
        const device_counts *c = &d->by_dev[i];
        char name[64];
        safe_copy(name, sizeof name, c->device[0] ? c->device : "(none)");
        printf("  %-*s  %7d  %7d  %7d  %7d\n", w, name, c->pending, c->running, c->ok, c->failed);
    }
}

static void print_show(const show_data *d)
{
    char name[128], status[16];
    safe_copy(name, sizeof name, d->run.name);
    safe_copy(status, sizeof status, d->run.status);
    printf("run %lld: %s\n", (long long)d->run.id, name);
    printf("status:   %s\n", status);
    printf("seed:     %llu\n", (unsigned long long)d->run.seed);
    printf("created:  %s\n", d->run.created_at);
    printf("updated:  %s\n", d->run.updated_at);
    printf("state:    %s\n", d->run.state_len > 0 ? "saved (resumable)" : "none");
    print_config(d->run.config_json);
    const sh_eval_counts *c = &d->counts;
    printf("evaluations: %d (%d ok, %d failed, %d pending, %d running)\n", c->total, c->ok, c->failed,
           c->pending, c->running);
    if (d->n_dev > 0) print_device_table(d);
    if (!d->has_gen) {
        printf("latest generation: none yet\n");
    } else {
        printf("latest generation: %d (population %d", d->gen, d->population);
        if (d->has_metric) {
            printf(", front %d, evaluations %d, hypervolume ", d->metric.front_size, d->metric.evaluations);
            if (isfinite(d->metric.hypervolume)) printf("%.6g", d->metric.hypervolume);
            else printf("n/a");
        }
        printf(")\n");
    }
    if (d->n_errors == 0) return;
    printf("last errors:\n");
    for (int i = 0; i < d->n_errors; i++) {
        const sh_eval_rec *e = &d->errors[i];
        char hex[17], dev[64], msg[240];
        sh_hash_hex(e->genome, hex);
        safe_copy(dev, sizeof dev, e->device[0] ? e->device : "-");
        safe_copy(msg, sizeof msg, e->error ? e->error : "");
        printf("  eval %lld  %s  %s  %s: %s\n", (long long)e->id, hex, dev, e->kind, msg);
    }
}

/* Run ids are positive decimal integers. */
static int parse_id(const char *s, int64_t *id)
{
    if (!s || !*s || strlen(s) > 18) return -1;
    for (const char *p = s; *p; p++) if (*p < '0' || *p > '9') return -1;
    *id = strtoll(s, NULL, 10);
    return *id > 0 ? 0 : -1;
}

static int cmd_show(int argc, char **argv)
{
    cli_opts o;
    int rc = parse_opts(argc, argv, true, &o);
    if (rc) return rc;
    if (o.help) return 0;
    if (!o.id_arg) {
        fprintf(stderr, "starhil runs show: which run? give its ID (see starhil runs list)\n");
        return 2;
    }
    int64_t id;
    if (parse_id(o.id_arg, &id) != 0) {
        char shown[64];
        safe_copy(shown, sizeof shown, o.id_arg);
        fprintf(stderr, "starhil runs show: bad run ID '%s' (a positive integer, see starhil runs list)\n", shown);
        return 1;
    }
    if (db_missing(sh_cli_db_path())) {
        fprintf(stderr, "starhil runs show: no run with id %lld (%s does not exist)\n", (long long)id,
                sh_cli_db_path());
        return 1;
    }
    sh_db *db;
    if (sh_cli_open_db("runs show", SH_DB_READONLY, &db) != 0) return 1;
    show_data d;
    sh_err err = {{0}};
    if (load_show(db, id, &d, &err) != 0) {
        fprintf(stderr, "starhil runs show: %s\n", err.msg);
        show_data_free(&d);
        sh_db_close(db);
        return 1;
    }
    if (o.json) rc = print_json(show_json(&d));
    else print_show(&d);
    show_data_free(&d);
    sh_db_close(db);
    return rc;
}

int sh_cmd_runs(int argc, char **argv)
{
    static const sh_subcmd subs[] = {
        {"list", NULL, "the runs stored in the database, one line each"},
        {"show", "ID", "one run: config, status, counts, latest generation, errors"},
    };
    static int (*const run[])(int, char **) = {cmd_list, cmd_show};
    const sh_group_spec g = {"runs", "The search runs stored in the run database (--db).\n", subs, 2};
    int rc, i = sh_opt_group_pick(&g, argc, argv, &rc);
    return i < 0 ? rc : run[i](argc - 1, argv + 1);
}
