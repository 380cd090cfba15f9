/* device_cli.c - the `starhil device`, `starhil measure` and `starhil profile`
 * subcommands: the device inventory (add, list, probe, check, rm), measuring a
 * genome on a device, and chip profiles. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/clidb.h"
#include "cli/commands.h"
#include "devices/device.h"
#include "measure/measure.h"
#include "measure/profile.h"
#include "evaluator/build.h"
#include "genome/gguf_meta.h"
#include "runs/runs.h"
#include "util/cliopt.h"
#include "util/opt.h"
#include "util/progress.h"

void sh_measure_limit_opts(double *busy_wait, double *steal_max, double *others_max, const char **decode_warmup,
                           struct sh_opt *out)
{
    const sh_opt t[SH_MEASURE_LIMIT_OPTS] = {
        {"--busy-wait", NULL, SH_OPT_DOUBLE, busy_wait, "X",
         "CPU-wait fraction above which a repetition is busy\n(default 0.05)", 0.001, 100, NULL},
        {"--max-steal", NULL, SH_OPT_DOUBLE, steal_max, "X",
         "share of its CPUs' time the hypervisor may give\nto other guests before a repetition is disturbed\n"
         "(steal; default 0.05)", 0.001, 100, NULL},
        {"--max-others", NULL, SH_OPT_DOUBLE, others_max, "X",
         "CPUs other processes may use beside a repetition\nbefore it is disturbed (shared: a co-runner slows\n"
         "it through the caches and memory; default 0.5;\na phone whose services keep a core busy needs\n"
         "more; above the CPU count: off)", 0.01, 1e6, NULL},
        {"--decode-warmup", NULL, SH_OPT_STR, decode_warmup, "N|auto|none",
         "decode tokens run unmeasured after each prefill\n(default auto: until the token time stops falling,\n"
         "at most 48; decode right after a prefill can run\nslower for a few tokens)", 0, 0, NULL},
    };
    memcpy(out, t, sizeof t);
}

/* A tiny genome used to build a probe/check variant for a remote target. */
#define PROBE_GENOME "d=64 v=256 hd=32 theta=10000 eps=1e-05 ctx=256 tie=1 | conv(3)/swiglu(64) gqa(2,1)/swiglu(64)"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Measurement / profile progress lines from the library, through the shared
 * progress line (live on a terminal, every few seconds in a log). */
static void line_progress(void *ctx, const char *line)
{
    sh_progress *p = ctx;
    char el[32];
    sh_format_duration(sh_progress_elapsed(p), el, sizeof el);
    sh_progress_update(p, "%s (elapsed %s)", line, el);
}

/* Prints {"k1": v1[, "k2": v2]} on one line (--json of trust and rm). */
static void print_json_pair(const char *k1, const char *v1, const char *k2, const char *v2)
{
    json_t *o = json_object();
    json_object_set_new(o, k1, json_string(v1));
    if (k2) json_object_set_new(o, k2, json_string(v2 ? v2 : ""));
    char *txt = json_dumps(o, JSON_PRESERVE_ORDER);
    if (txt) printf("%s\n", txt);
    free(txt);
    json_decref(o);
}

/* measure's line also says how far it may go: the repetition cap (the CI
 * decides when it stops, so there is no ETA before the cap). */
typedef struct measure_line {
    sh_progress p;
    int max_reps;
} measure_line;

static void measure_progress(void *ctx, const char *line)
{
    measure_line *m = ctx;
    char el[32];
    sh_format_duration(sh_progress_elapsed(&m->p), el, sizeof el);
    if (strstr(line, " reps ("))   /* "N reps (K quiet), ...": per measuring round */
        sh_progress_update(&m->p, "%s (at most %d reps a round; elapsed %s)", line, m->max_reps, el);
    else
        sh_progress_update(&m->p, "%s (elapsed %s)", line, el);
}

/* ---- device add ------------------------------------------------------------ */

static const char DEVICE_ABOUT[] =
    "Measurement devices are stored in the run database (--db). Kinds:\n"
    "  local         this host (a device named 'local' exists implicitly)\n"
    "  qemu-aarch64  an emulated ARM board on this host (qemu-user), target aarch64-linux-gnu\n"
    "  ssh           a board over SSH: key file (--key) or the ssh agent; the host key must be\n"
    "                in known_hosts (~/.ssh/known_hosts or --known-hosts), or --trust-host-key\n"
    "                records it at `add` (only for a host seen for the first time: a CHANGED key\n"
    "                is refused by every command; `device trust NAME --replace` replaces it,\n"
    "                saying which fingerprint replaced which)\n"
    "  adb           an Android phone through the adb server (--host/--port of the server,\n"
    "                default 127.0.0.1:5037 or $ADB_SERVER_SOCKET; --serial picks the phone);\n"
    "                works in /data/local/tmp, pinned with taskset to --cpus\n"
    "Only paths to key files are stored, never secrets. Names: [A-Za-z0-9._-]{1,63}.\n"
    "See docs/devices.md.\n";

static int abs_path(const char *cmd, const char *what, const char *p, bool must_exist, char *out, size_t cap)
{
    char buf[PATH_MAX];
    char joined[2 * PATH_MAX + 2];
    if (realpath(p, buf)) {
        snprintf(joined, sizeof joined, "%s", buf);
    } else if (must_exist) {
        fprintf(stderr, "starhil %s: %s %s: %s\n", cmd, what, p, strerror(errno));
        return -1;
    } else if (p[0] == '/') {
        snprintf(joined, sizeof joined, "%s", p);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) return -1;
        snprintf(joined, sizeof joined, "%s/%.*s", cwd, PATH_MAX, p);
    }
    if (strlen(joined) >= cap) {
        fprintf(stderr, "starhil %s: %s %s: path longer than %zu bytes\n", cmd, what, p, cap - 1);
        return -1;
    }
    memcpy(out, joined, strlen(joined) + 1);
    return 0;
}

static char *make_options(const char *known_hosts, const char *serial, double connect_timeout)
{
    json_t *o = json_object();
    if (known_hosts && *known_hosts) json_object_set_new(o, "known_hosts", json_string(known_hosts));
    if (serial && *serial) json_object_set_new(o, "serial", json_string(serial));
    if (connect_timeout > 0) json_object_set_new(o, "connect_timeout_s", json_real(connect_timeout));
    char *s = json_object_size(o) ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return s;
}

/* Opens the device with trust_host_key and connects, so the host key of a
 * host seen for the first time gets recorded (a changed key is refused). */
static char host_key_event[400];

static int record_host_key(const sh_device_rec *rec, sh_err *err)
{
    sh_device_rec r = *rec;
    json_t *o = rec->options_json ? json_loads(rec->options_json, 0, NULL) : json_object();
    if (!o) o = json_object();
    json_object_set_new(o, "trust_host_key", json_true());
    r.options_json = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    sh_device *d;
    int rc = sh_device_open(&r, &d, err);
    free(r.options_json);
    if (rc) return -1;
    rc = sh_device_prepare(d, err);
    snprintf(host_key_event, sizeof host_key_event, "%s", d->host_key_event);
    sh_device_close(d);
    return rc ? -1 : 0;
}

static json_t *rec_json(const sh_device_rec *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "kind", json_string(r->kind));
    json_object_set_new(o, "host", json_string(r->host));
    json_object_set_new(o, "port", json_integer(r->port));
    json_object_set_new(o, "user", json_string(r->user));
    json_object_set_new(o, "key_path", json_string(r->key_path));
    json_object_set_new(o, "target", json_string(r->target));
    json_object_set_new(o, "cpus", json_string(r->cpus));
    json_object_set_new(o, "workdir", json_string(r->workdir));
    json_object_set_new(o, "healthy", json_boolean(r->healthy));
    json_object_set_new(o, "fail_count", json_integer(r->fail_count));
    json_t *opt = r->options_json ? json_loads(r->options_json, 0, NULL) : NULL;
    json_object_set_new(o, "options", opt ? opt : json_null());
    json_t *topo = r->topology_json ? json_loads(r->topology_json, 0, NULL) : NULL;
    json_object_set_new(o, "topology", topo ? topo : json_null());
    return o;
}

static int device_add(int argc, char **argv)
{
    const char *cmd = "device add";
    sh_device_rec rec;
    memset(&rec, 0, sizeof rec);
    rec.healthy = true;
    const char *name = NULL, *kind = "local", *host = "", *user = "", *key = "", *target = "",
               *cpus = "", *workdir = "", *serial = "", *known = "";
    int port = 0;
    double ctimeout = 0;
    bool trust = false, as_json = false;
    const sh_opt t[] = {
        {"--kind", NULL, SH_OPT_STR, &kind, "K", "local (default), ssh, adb or qemu-aarch64", 0, 0, NULL},
        {"--host", NULL, SH_OPT_STR, &host, "H", "ssh host, or the adb server's host", 0, 0, NULL},
        {"--port", NULL, SH_OPT_INT, &port, "P", "ssh port (default 22) or adb server port (default 5037)", 1, 65535,
         NULL},
        {"--user", NULL, SH_OPT_STR, &user, "U", "ssh user (default $USER)", 0, 0, NULL},
        {"--key", NULL, SH_OPT_STR, &key, "FILE", "ssh private key file (default: the ssh agent); only its path is "
         "stored", 0, 0, NULL},
        {"--known-hosts", NULL, SH_OPT_STR, &known, "FILE", "known_hosts file (default ~/.ssh/known_hosts)", 0, 0, NULL},
        {"--trust-host-key", NULL, SH_OPT_FLAG, &trust, NULL, "record the ssh host key now (trust on first use)", 0, 0,
         NULL},
        {"--target", NULL, SH_OPT_STR, &target, "TRIPLE", "build target (e.g. aarch64-linux-gnu; ssh needs it)", 0, 0,
         NULL},
        {"--cpus", NULL, SH_OPT_STR, &cpus, "LIST", "cores to pin to (taskset list, e.g. 4-7)", 0, 0, NULL},
        {"--workdir", NULL, SH_OPT_STR, &workdir, "DIR", "working directory on the device", 0, 0, NULL},
        {"--serial", NULL, SH_OPT_STR, &serial, "S", "adb: the phone's serial", 0, 0, NULL},
        {"--connect-timeout", NULL, SH_OPT_DOUBLE, &ctimeout, "S", "connection timeout in seconds", 0.1, 600, NULL},
        {"--json", NULL, SH_OPT_FLAG, &as_json, NULL, "print the stored device as JSON", 0, 0, NULL},
    };
    sh_cmd_spec spec = {"device add", "NAME", NULL,
                        "Stores a measurement device in the run database (--db); see `starhil device --help`\n"
                        "for the kinds and docs/devices.md.  Names: [A-Za-z0-9._-]{1,63}.\n",
                        t, (int)(sizeof t / sizeof t[0]), 1, 1};
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    name = pos[0];
    sh_err err = {{0}};
    if (!name) { fprintf(stderr, "starhil %s: a device NAME is needed\n", cmd); return 2; }
    if (sh_device_name_check(name, &err)) { fprintf(stderr, "starhil %s: %s\n", cmd, err.msg); return 2; }
    if (!sh_device_kind_valid(kind)) { fprintf(stderr, "starhil %s: unknown kind '%s' (local, ssh, adb, qemu-aarch64)\n", cmd, kind); return 2; }
    if (!strcmp(kind, "ssh") && !*host) { fprintf(stderr, "starhil %s: --kind ssh needs --host\n", cmd); return 2; }
    if (strlen(host) >= sizeof rec.host || strlen(user) >= sizeof rec.user || strlen(target) >= sizeof rec.target ||
        strlen(cpus) >= sizeof rec.cpus || strlen(serial) > 127) {
        fprintf(stderr, "starhil %s: an option value is too long\n", cmd);
        return 2;
    }
    if (strspn(serial, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") != strlen(serial)) {
        fprintf(stderr, "starhil %s: --serial '%s': only [A-Za-z0-9._:-] allowed\n", cmd, serial);
        return 2;
    }
    if (strspn(user, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(user)) {
        fprintf(stderr, "starhil %s: --user '%s': only [A-Za-z0-9._-] allowed\n", cmd, user);
        return 2;
    }
    if (*cpus) {
        bool set[1024];
        int n;
        if (sh_cpulist_parse(cpus, set, &n, &err)) { fprintf(stderr, "starhil %s: --cpus: %s\n", cmd, err.msg); return 2; }
    }
    snprintf(rec.name, sizeof rec.name, "%s", name);
    snprintf(rec.kind, sizeof rec.kind, "%s", kind);
    snprintf(rec.host, sizeof rec.host, "%s", host);
    rec.port = port ? port : !strcmp(kind, "ssh") ? 22 : 0;
    snprintf(rec.user, sizeof rec.user, "%s", *user ? user : (!strcmp(kind, "ssh") && getenv("USER")) ? getenv("USER") : "");
    snprintf(rec.target, sizeof rec.target, "%s", *target ? target : sh_device_default_target(kind));
    if (!strcmp(kind, "ssh") && !rec.target[0]) {
        fprintf(stderr, "starhil %s: --kind ssh needs --target (e.g. aarch64-linux-gnu)\n", cmd);
        return 2;
    }
    snprintf(rec.cpus, sizeof rec.cpus, "%s", cpus);
    snprintf(rec.workdir, sizeof rec.workdir, "%s", workdir);
    if (*key && abs_path(cmd, "--key", key, true, rec.key_path, sizeof rec.key_path)) return 2;
    char known_abs[1024] = "";
    if (*known && abs_path(cmd, "--known-hosts", known, false, known_abs, sizeof known_abs)) return 2;
    rec.options_json = make_options(known_abs, serial, ctimeout);
    sh_device *probe_open;
    if (sh_device_open(&rec, &probe_open, &err)) {
        fprintf(stderr, "starhil %s: %s\n", cmd, err.msg);
        free(rec.options_json);
        return 2;
    }
    sh_device_close(probe_open);
    if (trust && !strcmp(kind, "ssh") && record_host_key(&rec, &err)) {
        fprintf(stderr, "starhil %s: %s\n", cmd, err.msg);
        free(rec.options_json);
        return 1;
    }
    sh_db *db;
    if (sh_cli_open_db(cmd, SH_DB_CREATE, &db)) { free(rec.options_json); return 1; }
    int rc = sh_db_add_device(db, &rec, &err);
    sh_db_close(db);
    if (rc) { fprintf(stderr, "starhil %s: %s\n", cmd, err.msg); free(rec.options_json); return 1; }
    if (as_json) {
        json_t *o = rec_json(&rec);
        char *txt = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (txt) printf("%s\n", txt);
        free(txt);
        json_decref(o);
    } else {
        printf("added device %s (%s%s)\n", name, kind, trust && !strcmp(kind, "ssh") ? ", host key recorded" : "");
        if (trust && !strcmp(kind, "ssh") && host_key_event[0]) printf("  %s\n", host_key_event);
    }
    free(rec.options_json);
    return 0;
}

/* ---- device list ----------------------------------------------------------- */

static int device_list(int argc, char **argv)
{
    bool as_json = false;
    const sh_opt t[] = {{"--json", NULL, SH_OPT_FLAG, &as_json, NULL, "print a JSON array", 0, 0, NULL}};
    sh_cmd_spec spec = {"device list", NULL, NULL, "The devices stored in the run database (--db).\n", t, 1, 0, 0};
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    /* Listing only reads: an existing store is opened read-only (so a file the
     * user may not write lists fine); the implicit 'local' device is shown
     * even when no command has stored it yet. */
    sh_db *db;
    sh_err err = {{0}};
    bool have_file = access(sh_cli_db_path(), F_OK) == 0;
    if (have_file ? sh_db_open(sh_cli_db_path(), SH_DB_READONLY, &db, &err) != 0 : sh_cli_open_db("device list", SH_DB_CREATE, &db) != 0) {
        if (have_file) fprintf(stderr, "starhil device list: %s\n", err.msg);
        return 1;
    }
    sh_device_rec *recs = NULL;
    int n = 0;
    if ((!have_file && sh_device_ensure_local(db, &err)) || sh_db_list_devices(db, &recs, &n, &err)) {
        fprintf(stderr, "starhil device list: %s\n", err.msg);
        sh_db_close(db);
        return 1;
    }
    bool has_local = false;
    for (int i = 0; i < n; i++) has_local = has_local || !strcmp(recs[i].name, "local");
    sh_device_rec *grown = has_local ? NULL : realloc(recs, (size_t)(n + 1) * sizeof *recs);
    if (grown) {
        recs = grown;
        memmove(recs + 1, recs, (size_t)n * sizeof *recs);
        memset(&recs[0], 0, sizeof recs[0]);
        snprintf(recs[0].name, sizeof recs[0].name, "local");
        snprintf(recs[0].kind, sizeof recs[0].kind, "local");
        snprintf(recs[0].target, sizeof recs[0].target, "%s", sh_host_triple());
        recs[0].healthy = true;
        n++;
    }
    if (as_json) {
        json_t *a = json_array();
        for (int i = 0; i < n; i++) json_array_append_new(a, rec_json(&recs[i]));
        char *s = json_dumps(a, JSON_INDENT(2));
        printf("%s\n", s ? s : "[]");
        free(s);
        json_decref(a);
    } else {
        printf("%-20s %-13s %-26s %-20s %-8s %s\n", "NAME", "KIND", "ADDRESS", "TARGET", "CPUS", "HEALTH");
        for (int i = 0; i < n; i++) {
            char addr[400] = "-";
            if (recs[i].host[0]) snprintf(addr, sizeof addr, "%s%s%s:%d", recs[i].user, recs[i].user[0] ? "@" : "", recs[i].host, recs[i].port);
            printf("%-20s %-13s %-26s %-20s %-8s %s", recs[i].name, recs[i].kind, addr, recs[i].target,
                   recs[i].cpus[0] ? recs[i].cpus : "all", recs[i].healthy ? "ok" : "UNHEALTHY");
            if (recs[i].fail_count) printf(" (%d failures)", recs[i].fail_count);
            printf("\n");
        }
    }
    for (int i = 0; i < n; i++) sh_device_rec_free(&recs[i]);
    free(recs);
    sh_db_close(db);
    return 0;
}

/* ---- device probe / check ------------------------------------------------------ */

static int load_rec(sh_db *db, const char *cmd, const char *name, sh_device_rec *rec)
{
    sh_err err = {{0}};
    if (sh_device_name_check(name, &err) ||
        (!strcmp(name, "local") && sh_device_ensure_local(db, &err)) ||
        sh_db_get_device(db, name, rec, &err)) {
        fprintf(stderr, "starhil %s: %s\n", cmd, err.msg);
        return -1;
    }
    return 0;
}

/* "compiling ..." on stderr (terminal or log alike) before a build that misses the cache. */
static void say_compiling(const char *genome_hash, const char *target, const char *cc, void *ctx)
{
    (void)ctx;
    fprintf(stderr, "compiling variant %s for %s with %s ...\n", genome_hash, target, cc);
}

/* Builds the tiny probe variant for the device's target and pushes it. */
/* --json was given: stdout is for a script and stderr gets no progress lines. */
static bool json_quiet;

static int push_probe_variant(sh_device *d, char *remote, size_t cap, sh_err *err)
{
    sh_genome g;
    if (sh_genome_parse(PROBE_GENOME, &g, err)) return -1;
    char exe[SH_BUILD_PATH_MAX];
    sh_build_opts bo = {.on_compile = json_quiet ? NULL : say_compiling};
    if (sh_build_variant(&g, d->target, &bo, exe, sizeof exe, err)) return -1;
    return sh_device_push(d, exe, "starhil-probe", remote, cap, err);
}

/* `device SUB NAME`: parses the command line (as_json: its --json flag, read
 * after parsing), opens the store and loads NAME's record.  -1 when the caller
 * goes on with both open, else the exit code. */
static int open_named(const sh_cmd_spec *spec, int argc, char **argv, const bool *as_json, sh_db **db,
                      sh_device_rec *rec)
{
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    json_quiet = *as_json;
    if (!pos[0]) { fprintf(stderr, "starhil %s: a device NAME is needed\n", spec->name); return 2; }
    if (sh_cli_open_db(spec->name, SH_DB_CREATE, db)) return 1;
    if (load_rec(*db, spec->name, pos[0], rec)) { sh_db_close(*db); return 1; }
    return -1;
}

static int device_probe(int argc, char **argv)
{
    const char *cmd = "device probe";
    bool as_json = false;
    const sh_opt t[] = {{"--json", NULL, SH_OPT_FLAG, &as_json, NULL, "print the topology as JSON", 0, 0, NULL}};
    sh_cmd_spec spec = {"device probe", "NAME", NULL,
                        "Reads the device's topology (CPUs, clusters, caches, memory) and stores it.\n", t, 1, 1, 1};
    sh_db *db;
    sh_device_rec rec;
    int orc = open_named(&spec, argc, argv, &as_json, &db, &rec);
    if (orc >= 0) return orc;
    sh_err err = {{0}};
    sh_device *d = NULL;
    char *topo = NULL;
    int rc = sh_device_open(&rec, &d, &err);
    if (!rc) {
        rc = sh_device_describe(d, &topo, &err);
        bool remote = strcmp(rec.kind, "local") != 0;
        if (rc && remote && rc != SH_DEV_ETRANSPORT) {
            /* no lstopo there: the variant's own probe mode */
            char remote_exe[2048];
            rc = push_probe_variant(d, remote_exe, sizeof remote_exe, &err);
            if (!rc) rc = sh_device_probe_with(d, remote_exe, 120, &topo, &err);
        } else if (!rc && !strcmp(rec.kind, "qemu-aarch64")) {
            /* the emulated board: add what the aarch64 variant itself sees */
            char remote_exe[2048], *probe = NULL;
            sh_err e2;
            if (!push_probe_variant(d, remote_exe, sizeof remote_exe, &e2) &&
                !sh_device_probe_with(d, remote_exe, 120, &probe, &e2)) {
                json_t *t = json_loads(topo, 0, NULL), *p = json_loads(probe, 0, NULL);
                if (t && p) {
                    json_object_set(t, "probe", p);
                    json_t *m = json_object_get(p, "machine");   /* what the emulated programs see */
                    if (json_is_string(m)) json_object_set(t, "machine", m);
                    free(topo);
                    topo = json_dumps(t, JSON_COMPACT);
                }
                json_decref(t);
                json_decref(p);
            }
            free(probe);
        }
    }
    if (!rc && topo) rc = sh_db_set_device_topology(db, rec.name, topo, &err);
    sh_device_close(d);
    if (rc) {
        fprintf(stderr, "starhil %s: %s\n", cmd, err.msg);
    } else if (as_json) {
        printf("%s\n", topo);
    } else {
        json_t *t = json_loads(topo, 0, NULL);
        printf("device %s: %s, %s, %lld cpus\n", rec.name,
               json_string_value(json_object_get(t, "machine")) ? json_string_value(json_object_get(t, "machine")) : "?",
               json_string_value(json_object_get(t, "model")) ? json_string_value(json_object_get(t, "model")) : "?",
               (long long)json_integer_value(json_object_get(t, "n_cpus")));
        json_t *cl = json_object_get(t, "clusters");
        for (size_t i = 0; i < json_array_size(cl); i++) {
            json_t *c = json_array_get(cl, i);
            printf("  cluster %zu: max %lld kHz, %zu cpus\n", i,
                   (long long)json_integer_value(json_object_get(c, "max_khz")),
                   json_array_size(json_object_get(c, "cpus")));
        }
        printf("  memory: %lld bytes (topology stored)\n", (long long)json_integer_value(json_object_get(t, "mem_total_bytes")));
        json_decref(t);
    }
    free(topo);
    sh_device_rec_free(&rec);
    sh_db_close(db);
    return rc ? 1 : 0;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static char *read_text(const char *path, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *b = calloc(1, cap + 1);
    if (b) b[fread(b, 1, cap, f)] = '\0';
    fclose(f);
    return b;
}

/* Can programs pushed to the device run there?  A working directory on a
 * noexec mount accepts files but not their execution (exit 126).  The check
 * program is a shell script without "#!" line, which every shell and execvp
 * run with the system's sh (Android's too). */
static int check_exec(sh_device *d, const char *local, sh_err *err)
{
    if (write_text(local, "echo starhil-exec-ok\n") || chmod(local, 0755))
        return sh_err_set(err, "cannot write %s", local);
    char remote[2048];
    int rc = sh_device_push(d, local, "exec-check", remote, sizeof remote, err);
    if (rc) return rc;
    char *argv[] = {remote, NULL};
    sh_dev_result r = {0};
    rc = sh_device_run(d, argv, 30, &r, err);
    if (!rc && r.exited && r.exit_code == 126)
        rc = sh_err_set(err, "the working directory %s does not allow running programs (mounted noexec?): "
                        "give the device a --workdir on a filesystem that does", d->workdir);
    else if (!rc && !(r.exited && r.exit_code == 0 && strstr(r.out, "starhil-exec-ok")))
        rc = sh_err_set(err, "a program pushed to %s did not run (%.200s)", d->workdir, r.err);
    sh_dev_result_free(&r);
    return rc;
}

/* Does the device have every cpu of its --cpus list?  Read from Linux's
 * /sys/devices/system/cpu/online there (skipped where that does not exist). */
static int check_cpus(sh_device *d, const sh_device_rec *rec, sh_err *err)
{
    if (!rec->cpus[0]) return 0;
    char *argv[] = {"cat", "/sys/devices/system/cpu/online", NULL};
    sh_dev_result r = {0};
    int rc = sh_device_run(d, argv, 30, &r, err);
    if (rc) return rc;
    char online[256];
    snprintf(online, sizeof online, "%.*s", (int)strcspn(r.out, "\r\n"), r.out);
    bool ok_read = r.exited && r.exit_code == 0;
    sh_dev_result_free(&r);
    if (!ok_read) return 0;
    bool want[1024], have[1024];
    int nw = 0, nh = 0;
    sh_err e2;
    if (sh_cpulist_parse(rec->cpus, want, &nw, &e2) || sh_cpulist_parse(online, have, &nh, &e2)) return 0;
    for (int c = 0; c < 1024; c++)
        if (want[c] && !have[c])
            return sh_err_set(err, "--cpus %s asks for cpu %d, which the device does not have (online: %s)",
                              rec->cpus, c, online);
    return 0;
}

/* push, run, fetch a small file and time each step */
static int check_steps(sh_device *d, const sh_device_rec *rec, double t[3], sh_err *err)
{
    char tmpd[] = "/tmp/starhil-check.XXXXXX";
    if (!mkdtemp(tmpd)) return sh_err_set(err, "mkdtemp: %s", strerror(errno));
    char local[128], back[128], remote[2048], payload[128];
    snprintf(local, sizeof local, "%s/check.txt", tmpd);
    snprintf(back, sizeof back, "%s/back.txt", tmpd);
    char hex[17];
    snprintf(hex, sizeof hex, "%08lx%08lx", (unsigned long)time(NULL), (unsigned long)getpid());
    snprintf(payload, sizeof payload, "starhil device check %s\n", hex);
    int rc = write_text(local, payload) ? sh_err_set(err, "cannot write %s", local) : 0;
    double t0 = now_s();
    if (!rc) rc = sh_device_push(d, local, "check.txt", remote, sizeof remote, err);
    t[0] = now_s() - t0;
    sh_dev_result r = {0};
    t0 = now_s();
    if (!rc) {
        if (!strcmp(rec->kind, "qemu-aarch64")) {
            /* the emulated board runs aarch64 programs only: run the probe variant */
            char exe[2048];
            rc = push_probe_variant(d, exe, sizeof exe, err);
            t0 = now_s();
            char *argv[] = {exe, "info", NULL};
            if (!rc) rc = sh_device_run(d, argv, 60, &r, err);
            if (!rc && !(r.exited && r.exit_code == 0 && strstr(r.out, "{")))
                rc = sh_err_set(err, "running the aarch64 probe variant failed: %.300s", r.err);
        } else {
            char *argv[] = {"cat", "check.txt", NULL};
            rc = sh_device_run(d, argv, 30, &r, err);
            if (!rc && !(r.exited && r.exit_code == 0 && !strcmp(r.out, payload)))
                rc = sh_err_set(err, "`cat` on the device did not return the pushed file (%.200s)", r.err);
        }
    }
    t[1] = now_s() - t0;
    sh_dev_result_free(&r);
    t0 = now_s();
    if (!rc) rc = sh_device_fetch(d, remote, back, err);
    t[2] = now_s() - t0;
    if (!rc) {
        char *got = read_text(back, 4096);
        if (!got || strcmp(got, payload)) rc = sh_err_set(err, "the fetched file differs from the pushed one");
        free(got);
    }
    if (!rc && strcmp(rec->kind, "qemu-aarch64")) rc = check_exec(d, local, err);
    if (!rc) rc = check_cpus(d, rec, err);
    unlink(local);
    unlink(back);
    rmdir(tmpd);
    return rc;
}

static int device_check(int argc, char **argv)
{
    const char *cmd = "device check";
    bool as_json = false, trust = false;
    const sh_opt ot[] = {
        {"--json", NULL, SH_OPT_FLAG, &as_json, NULL, "print the check's result as JSON", 0, 0, NULL},
        {"--trust-host-key", NULL, SH_OPT_FLAG, &trust, NULL, "record an ssh device's host key first", 0, 0, NULL},
    };
    sh_cmd_spec spec = {"device check", "NAME", NULL,
                        "Connects, pushes a file, runs a program and times each step; marks the device\n"
                        "healthy or not.\n", ot, 2, 1, 1};
    sh_db *db;
    sh_device_rec rec;
    int orc = open_named(&spec, argc, argv, &as_json, &db, &rec);
    if (orc >= 0) return orc;
    sh_err err = {{0}};
    int rc = 0;
    if (trust && !strcmp(rec.kind, "ssh")) rc = record_host_key(&rec, &err);
    sh_device *d = NULL;
    double t[3] = {0, 0, 0};
    if (!rc) rc = sh_device_open(&rec, &d, &err);
    if (!rc) rc = check_steps(d, &rec, t, &err);
    sh_device_close(d);
    if (!rc) {
        sh_err e2;
        sh_db_set_device_health(db, rec.name, true, 0, &e2);
    }
    if (rc) {
        fprintf(stderr, "starhil %s: %s\n", cmd, err.msg);
    } else if (as_json) {
        printf("{\"device\":\"%s\",\"ok\":true,\"push_ms\":%.3f,\"run_ms\":%.3f,\"fetch_ms\":%.3f}\n",
               rec.name, t[0] * 1e3, t[1] * 1e3, t[2] * 1e3);
    } else {
        printf("device %s: ok (push %.1f ms, run %.1f ms, fetch %.1f ms)\n", rec.name, t[0] * 1e3, t[1] * 1e3, t[2] * 1e3);
    }
    sh_device_rec_free(&rec);
    sh_db_close(db);
    return rc ? 1 : 0;
}

/* device trust NAME [--replace]: records the host key of an ssh board seen for
 * the first time, or with --replace one that changed (a reinstalled board):
 * the old entries are removed and the fingerprints printed. */
static int device_trust(int argc, char **argv)
{
    const char *cmd = "device trust", *name = NULL;
    bool replace = false, as_json = false;
    const sh_opt t[] = {
        {"--replace", NULL, SH_OPT_FLAG, &replace, NULL, "replace a changed host key (a reinstalled board), printing\n"
         "which fingerprint replaced which", 0, 0, NULL},
        {"--json", NULL, SH_OPT_FLAG, &as_json, NULL, "print {device, event} as JSON", 0, 0, NULL},
    };
    sh_cmd_spec spec = {cmd, "NAME", NULL,
                        "Records the ssh host key of device NAME seen for the first time, or with --replace\n"
                        "one that changed; the old entries are removed and the fingerprints printed.\n",
                        t, 2, 1, 1};
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    name = pos[0];
    sh_db *db;
    if (sh_cli_open_db(cmd, SH_DB_CREATE, &db)) return 1;
    sh_device_rec rec;
    if (load_rec(db, cmd, name, &rec)) { sh_db_close(db); return 1; }
    sh_db_close(db);
    if (strcmp(rec.kind, "ssh")) {
        fprintf(stderr, "starhil %s: device %s is not an ssh board (kind %s): no host key\n", cmd, name, rec.kind);
        sh_device_rec_free(&rec);
        return 2;
    }
    sh_err err = {{0}};
    json_t *o = rec.options_json ? json_loads(rec.options_json, 0, NULL) : NULL;
    if (!json_is_object(o)) { json_decref(o); o = json_object(); }
    json_object_set_new(o, "trust_host_key", json_true());
    if (replace) json_object_set_new(o, "replace_host_key", json_true());
    free(rec.options_json);
    rec.options_json = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    sh_device *d = NULL;
    int rc = sh_device_open(&rec, &d, &err);
    if (!rc) rc = sh_device_prepare(d, &err);
    if (rc) fprintf(stderr, "starhil %s: %s\n", cmd, err.msg);
    else if (as_json) print_json_pair("device", name, "event", d->host_key_event);
    else printf("device %s: %s\n", name, d->host_key_event);
    sh_device_close(d);
    sh_device_rec_free(&rec);
    return rc ? 1 : 0;
}

static int device_rm(int argc, char **argv)
{
    bool as_json = false;
    const sh_opt t[] = {{"--json", NULL, SH_OPT_FLAG, &as_json, NULL, "print {removed: NAME} as JSON", 0, 0, NULL}};
    sh_cmd_spec spec = {"device rm", "NAME", NULL, "Removes a device from the run database (--db).\n", t, 1, 1, 1};
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    const char *name = pos[0];
    sh_err err = {{0}};
    if (!name) { fprintf(stderr, "starhil device rm: a device NAME is needed\n"); return 2; }
    if (sh_device_name_check(name, &err)) { fprintf(stderr, "starhil device rm: %s\n", err.msg); return 2; }
    sh_db *db;
    if (sh_cli_open_db("device rm", SH_DB_CREATE, &db)) return 1;
    int rc = sh_db_remove_device(db, name, &err);
    sh_db_close(db);
    if (rc) { fprintf(stderr, "starhil device rm: %s\n", err.msg); return 1; }
    if (as_json) print_json_pair("removed", name, NULL, NULL);
    else printf("removed device %s\n", name);
    return 0;
}

int sh_cmd_device(int argc, char **argv)
{
    static const sh_subcmd subs[] = {
        {"add", "NAME", "store a measurement device (local, ssh, adb, qemu-aarch64)"},
        {"list", NULL, "the stored devices"},
        {"probe", "NAME", "read and store the device's topology (CPUs, caches, memory)"},
        {"check", "NAME", "connect, push, run and time each step; mark healthy or not"},
        {"trust", "NAME", "record (or --replace) an ssh board's host key"},
        {"rm", "NAME", "remove a device (`device remove` is the same)"},
    };
    static int (*const run[])(int, char **) = {device_add, device_list, device_probe, device_check, device_trust,
                                               device_rm};
    if (argc > 1 && !strcmp(argv[1], "remove")) return device_rm(argc - 1, argv + 1);
    const sh_group_spec g = {"device", DEVICE_ABOUT, subs, (int)(sizeof subs / sizeof subs[0])};
    int rc, i = sh_opt_group_pick(&g, argc, argv, &rc);
    return i < 0 ? rc : run[i](argc - 1, argv + 1);
}

/* ---- measure ------------------------------------------------------------------- */

static const char MEASURE_ABOUT[] =
    "Builds the genome's variant for the device's target (cached), pushes it, runs its bench\n"
    "mode until the figure it stores, decode_ms (the Harrell-Davis 20th percentile of the\n"
    "quiet repetitions' medians), has a 95% interval within +-tolerance (or the repetition\n"
    "cap), and stores\n"
    "the evaluation and every raw sample in the run database.\n"
    "An ok evaluation with the same settings is returned without measuring again, unless\n"
    "it is stored as unstable or --force is given. The variant reads the board's state\n"
    "around every repetition: a repetition whose threads waited more than --busy-wait of\n"
    "its time for a CPU (busy), whose CPUs slowed down (throttled), lost more than\n"
    "--max-steal of their time to other virtual machines (steal) or ran while other\n"
    "processes used more than --max-others CPUs (shared) is left out of the\n"
    "estimate. A doubtful result (too few quiet repetitions, no convergence, reference\n"
    "drift) waits for the board to settle and is measured again, up to --settle-rounds\n"
    "times, each round's quiet repetitions pooled with the earlier ones', then stored\n"
    "as unstable with the reason. The search ranks with decode_ms\n"
    "(docs/devices.md); the median of all tokens and its CI are stored beside it.\n"
    "With --reference GENOME, that genome is measured on the device before every\n"
    "--every-th evaluation of the run: a reading more than --drift-tol slower than its\n"
    "last quiet one makes what follows doubtful, a faster one marks what was measured\n"
    "since the slower one unstable, and each figure is also stored normalized by it\n"
    "(decode_ms_normalized = decode_ms x the first trusted reference reading / the\n"
    "latest one: the figure at one board speed for the whole run, which a search with\n"
    "--reference ranks with).  With --paired as well, each invocation of the genome is\n"
    "paired with one of the reference on the same CPUs (in alternating order) and the\n"
    "normalized figure is the first trusted reference reading x the median per-pair\n"
    "ratio: a reading taken before the genome drifts on its own, a pair drifts together\n"
    "(docs/devices.md). It costs one reference invocation per invocation.\n"
    "GENOME is a preset name, a genome file or inline canonical text.  FILE.gguf (lfm2,\n"
    "lfm2moe, qwen3, llama) is measured as it is: its genome is derived from the metadata\n"
    "(as `starhil genome import` does), that variant is built, the file is pushed to the\n"
    "device and the variant runs on its weights (--wtype does not apply; the stored\n"
    "settings name the file by size and content hash).\n"
    "Progress goes to stderr: a live line on a terminal, a plain line every few seconds\n"
    "otherwise ($STARHIL_PROGRESS_INTERVAL); --quiet silences it.\n";

/* Checks the type options of measure after parsing; 0 or -1 (printed). */
static int check_types(const char *cmd, const sh_measure_opts *o)
{
    sh_dtype t;
    /* the k-quants are runtime weight types only (no genome dtype): passed to the variant */
    const char *v = o->wtype;
    if (v && strcmp(v, "q4_k") && strcmp(v, "q5_k") && strcmp(v, "q6_k") && sh_dtype_parse(v, &t)) {
        fprintf(stderr, "starhil %s: --wtype: unknown weight type '%s' (f32, f16, q8_0, q4_0, q4_k, q5_k, q6_k)\n",
                cmd, v);
        return -1;
    }
    v = o->kvtype;
    if (v && (sh_dtype_parse(v, &t) || (t != SH_DTYPE_F32 && t != SH_DTYPE_F16))) {
        fprintf(stderr, "starhil %s: --kvtype: unknown kv type '%s' (f32, f16)\n", cmd, v);
        return -1;
    }
    return 0;
}

static void print_result(const char *device, const sh_mrecord *r, bool as_json)
{
    if (as_json) {
        char *text = sh_mrecord_json(r);
        json_t *o = text ? json_loads(text, 0, NULL) : NULL;
        free(text);
        if (!o) o = json_object();
        json_object_set_new(o, "eval_id", json_integer(r->eval_id));
        json_object_set_new(o, "cached", json_boolean(r->cached));
        char *s = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
        return;
    }
    printf("device %s, evaluation %lld%s\n", device, (long long)r->eval_id, r->cached ? " (stored earlier, not re-measured)" : "");
    printf("  stored   %s%s%s\n", r->stability[0] ? r->stability : "(no stability: stored by an older starhil)",
           r->reason[0] ? ": " : "", r->reason);
    printf("  decode   %.3f ms/token (%s, %d quiet of %d reps), 95%% CI [%.3f, %.3f]%s\n",
           r->decode_ms, r->estimator[0] ? r->estimator : SH_DECODE_ESTIMATOR_MIN, r->quiet_reps, r->reps, r->decode_ms_low, r->decode_ms_high,
           r->converged ? "" : " (repetition cap hit)");
    printf("  decode   %.3f ms/token median of all tokens, 95%% CI [%.3f, %.3f], %.2f tok/s\n", r->decode_ms_median,
           r->decode_ci_low, r->decode_ci_high, r->decode_tok_s);
    printf("  prefill  %.2f tok/s, time to first token %.2f ms\n", r->prefill_tok_s, r->ttft_ms);
    printf("  memory   peak RSS %.1f MiB, weights %.1f MiB, KV %.1f MiB, conv state %.1f KiB\n",
           r->peak_rss_bytes / 1048576.0, r->weight_bytes / 1048576.0, r->kv_bytes / 1048576.0, r->conv_state_bytes / 1024.0);
    printf("  reps     %d\n", r->reps);
    if (r->rel_to_reference > 0) printf("  relative to the reference genome: %.3fx\n", r->rel_to_reference);
    if (sh_mrecord_decode_ms_normalized(r) > 0)
        printf("  normalized %.3f ms/token at the board speed of the first trusted reference (%.4g ms), 95%% CI "
               "[%.3f, %.3f]%s\n", r->decode_ms_normalized, r->reference_anchor_ms, r->decode_ms_normalized_low,
               r->decode_ms_normalized_high, r->reference_json && strstr(r->reference_json, "\"paired\"") ?
               " (per-pair ratios with the reference measured beside it)" : "");
    else if (r->reference_anchor_ms > 0 && r->rel_to_reference <= 0)
        printf("  reference anchor %.4g ms (the first trusted reading; board speed now %.3fx of it)\n",
               r->reference_anchor_ms, r->reference_anchor_ms / r->decode_ms);
}

int sh_cmd_measure(int argc, char **argv)
{
    const char *cmd = "measure", *genome_arg = NULL, *device = "local", *ref_arg = NULL, *decode_warmup = NULL;
    bool as_json = false, quiet = false, retries_given = false, settle_given = false;
    sh_measure_opts o = {0};
    int retries = 0, settle_rounds = 0, run_id = 0;
    const sh_opt head[] = {
        {"--device", NULL, SH_OPT_STR, &device, "NAME", "device to measure on (default local)", 0, 0, NULL},
        {"--prompt", NULL, SH_OPT_INT, &o.prompt, "N", "prompt tokens (default 512)", 1, 1 << 20, NULL},
        {"--gen", NULL, SH_OPT_INT, &o.gen, "N", "generated tokens per repetition (default 128)", 1, 1 << 20, NULL},
        {"--depth", NULL, SH_OPT_INT, &o.depth, "N", "context already in the KV cache (default 0)", 0, 1 << 24, NULL},
        {"--threads", NULL, SH_OPT_INT, &o.threads, "N", "threads (default: the device's pinned cpus)", 1, 1024, NULL},
        {"--wtype", NULL, SH_OPT_STR, &o.wtype, "T", "weight type: f32, f16, q8_0, q4_0 (default), q4_k, q5_k, q6_k",
         0, 0, NULL},
        {"--kvtype", NULL, SH_OPT_STR, &o.kvtype, "T", "KV cache type: f32 or f16 (default f16, llama.cpp's CPU\n"
         "convention)", 0, 0, NULL},
        {"--tolerance", NULL, SH_OPT_DOUBLE, &o.tolerance, "X", "relative half-width of the 95% CI to reach (default "
         "0.02)", 1e-4, 1, NULL},
        {"--min-reps", NULL, SH_OPT_INT, &o.min_reps, "N", "repetitions at least (default 3)", 1, 100000, NULL},
        {"--max-reps", NULL, SH_OPT_INT, &o.max_reps, "N", "repetition cap (default 30)", 1, 100000, NULL},
        {"--reps-per-run", NULL, SH_OPT_INT, &o.reps_per_run, "N", "repetitions per variant invocation (default 3)", 1,
         1000, NULL},
        {"--cooldown", NULL, SH_OPT_DOUBLE, &o.cooldown_s, "S", "seconds to wait before measuring (default 0)", 0, 3600,
         NULL},
        {"--timeout", NULL, SH_OPT_DOUBLE, &o.timeout_s, "S", "per device command, seconds (default 600)", 0.1, 86400,
         NULL},
        {"--retries", NULL, SH_OPT_INT, &retries, "N", "extra attempts after a failure (default 2)", 0, 100,
         &retries_given},
        {"--backoff", NULL, SH_OPT_DOUBLE, &o.backoff_s, "S", "first retry delay, doubled each time (default 1)", 0.001,
         600, NULL},
        {"--run", NULL, SH_OPT_INT, &run_id, "ID", "store the evaluation with this run", 1, INT_MAX, NULL},
        {"--reference", NULL, SH_OPT_STR, &ref_arg, "GENOME", "re-measure this genome every --every evaluations\n"
         "(drift check)", 0, 0, NULL},
        {"--every", NULL, SH_OPT_INT, &o.reference_every, "K", "reference period (default 10 with --reference)", 1,
         1000000, NULL},
        {"--drift-tol", NULL, SH_OPT_DOUBLE, &o.drift_tol, "X", "a reference slower than its last quiet value by more\n"
         "than this fraction is drift (default 0.10)", 0.001, 10, NULL},
        {"--paired", NULL, SH_OPT_FLAG, &o.reference_paired, NULL, "pair each invocation with one of the --reference\n"
         "genome and normalize by the per-pair ratios", 0, 0, NULL},
        {"--exe", NULL, SH_OPT_STR, &o.exe_path, "VARIANT", "measure this prebuilt variant instead of building", 0, 0,
         NULL},
        {"--force", NULL, SH_OPT_FLAG, &o.force, NULL, "measure again even if a trusted result is stored", 0, 0, NULL},
    };
    const sh_opt tail[] = {
        {"--settle-rounds", NULL, SH_OPT_INT, &settle_rounds, "N", "re-measurements of a doubtful result (default 2; 0: "
         "none)", 0, 100, &settle_given},
        {"--settle-max", NULL, SH_OPT_DOUBLE, &o.settle_max_s, "S", "longest wait for the board to settle (default 60)",
         0.001, 86400, NULL},
        {"--json", NULL, SH_OPT_FLAG, &as_json, NULL, "print the stored result as JSON (no progress)", 0, 0, NULL},
        {"--quiet", "-q", SH_OPT_FLAG, &quiet, NULL, "no progress on stderr", 0, 0, NULL},
    };
    sh_opt t[sizeof head / sizeof head[0] + SH_MEASURE_LIMIT_OPTS + sizeof tail / sizeof tail[0]];
    size_t n_head = sizeof head / sizeof head[0];
    memcpy(t, head, sizeof head);
    sh_measure_limit_opts(&o.busy_wait, &o.steal_max, &o.others_max, &decode_warmup, t + n_head);
    memcpy(t + n_head + SH_MEASURE_LIMIT_OPTS, tail, sizeof tail);
    sh_cmd_spec spec = {cmd, "GENOME|FILE.gguf", NULL, MEASURE_ABOUT, t, (int)(sizeof t / sizeof t[0]), 1, 1};
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    genome_arg = pos[0];
    if (check_types(cmd, &o)) return 2;
    sh_err dwe;
    if (sh_decode_warmup_parse(decode_warmup, &o.decode_warmup, &dwe)) {
        fprintf(stderr, "starhil %s: --decode-warmup: %s\n", cmd, dwe.msg);
        return 2;
    }
    if (retries_given) o.retries = retries ? retries : -1;
    if (settle_given) o.settle_rounds = settle_rounds ? settle_rounds : -1;
    o.run_id = run_id;
    if (!ref_arg && (o.reference_every > 0 || o.drift_tol > 0 || o.reference_paired)) {
        fprintf(stderr, "starhil %s: %s needs --reference\n", cmd,
                o.reference_every > 0 ? "--every" : o.drift_tol > 0 ? "--drift-tol" : "--paired");
        return 2;
    }
    if (ref_arg && o.reference_every <= 0) o.reference_every = 10;
    sh_err err = {{0}};
    static sh_genome g, ref;
    char magic[4] = {0};
    FILE *mf = fopen(genome_arg, "rb");
    if (mf) { if (fread(magic, 1, 4, mf) != 4) magic[0] = 0; fclose(mf); }
    if (!memcmp(magic, "GGUF", 4)) {
        if (o.wtype) {
            fprintf(stderr, "starhil %s: --wtype does not apply to %s (its weights are measured as stored)\n",
                    cmd, genome_arg);
            return 2;
        }
        if (sh_gguf_import_genome_file(genome_arg, &g, &err)) { fprintf(stderr, "starhil %s: %s\n", cmd, err.msg); return 1; }
        o.gguf = genome_arg;
    } else if (sh_genome_resolve(genome_arg, &g, &err)) { fprintf(stderr, "starhil %s: %s\n", cmd, err.msg); return 2; }
    if (ref_arg) {
        if (sh_genome_resolve(ref_arg, &ref, &err)) { fprintf(stderr, "starhil %s: --reference: %s\n", cmd, err.msg); return 2; }
        o.reference = &ref;
    }
    if (sh_device_name_check(device, &err)) { fprintf(stderr, "starhil %s: --device: %s\n", cmd, err.msg); return 2; }
    sh_db *db;
    if (sh_cli_open_db(cmd, SH_DB_CREATE, &db)) return 1;
    measure_line line;
    sh_progress_init(&line.p, quiet || as_json);   /* --json: a script reads stdout, no progress */
    line.max_reps = o.max_reps > 0 ? o.max_reps : 30;
    o.progress = measure_progress;
    o.progress_ctx = &line;
    sh_mrecord r;
    int rc = sh_measure_genome(db, device, &g, &o, &r, &err);
    sh_progress_done(&line.p);
    sh_measure_shutdown();
    if (rc) fprintf(stderr, "starhil %s: %s\n", cmd, err.msg);
    else print_result(device, &r, as_json);
    sh_mrecord_free(&r);
    sh_db_close(db);
    return rc ? 1 : 0;
}

/* ---- profile ----------------------------------------------------------------------- */

static const char PROFILE_ABOUT[] =
    "Sweeps the block kinds one at a time on a device (conv at several widths, GQA at several\n"
    "head layouts and context depths, SwiGLU and MoE at several widths, each weight type)\n"
    "and stores a per-block latency / bandwidth / FLOP-rate table with the device, so chips\n"
    "can be compared block by block. --quick runs a few tiny points (smoke test).\n"
    "--show prints a stored profile; with --vs, side by side with another device's\n"
    "(b/a = latency ratio per point).\n";

static int profile_show(const char *a, const char *b, bool as_json)
{
    const char *cmd = "profile";
    sh_err err = {{0}};
    if (sh_device_name_check(a, &err) || (b && sh_device_name_check(b, &err))) {
        fprintf(stderr, "starhil %s: %s\n", cmd, err.msg);
        return 2;
    }
    sh_db *db;
    if (sh_cli_open_db(cmd, SH_DB_CREATE, &db)) return 1;
    char *rows = NULL;
    int rc = sh_profile_compare(db, a, b, &rows, &err);
    sh_db_close(db);
    if (rc) { fprintf(stderr, "starhil %s: %s\n", cmd, err.msg); return 1; }
    if (as_json) {
        printf("%s\n", rows);
        free(rows);
        return 0;
    }
    json_t *arr = json_loads(rows, 0, NULL);
    free(rows);
    printf("%-7s %-6s %-44s %12s %10s", "BLOCK", "DTYPE", "PARAMS", "A_US", "A_GB/S");
    if (b) printf(" %12s %10s %7s", "B_US", "B_GB/S", "B/A");
    printf("\n");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i), *ma = json_object_get(e, "a"), *mb = json_object_get(e, "b");
        char *p = json_dumps(json_object_get(e, "params"), JSON_COMPACT | JSON_SORT_KEYS);
        printf("%-7s %-6s %-44s %12.2f %10.2f", json_string_value(json_object_get(e, "block")),
               json_string_value(json_object_get(e, "dtype")), p ? p : "",
               json_number_value(json_object_get(ma, "latency_us")), json_number_value(json_object_get(ma, "gbytes_per_s")));
        if (b && json_is_object(mb))
            printf(" %12.2f %10.2f %7.2f", json_number_value(json_object_get(mb, "latency_us")),
                   json_number_value(json_object_get(mb, "gbytes_per_s")),
                   json_number_value(json_object_get(e, "b_over_a")));
        else if (b)
            printf(" %12s %10s %7s", "-", "-", "-");
        printf("\n");
        free(p);
    }
    json_decref(arr);
    return 0;
}

int sh_cmd_profile(int argc, char **argv)
{
    const char *cmd = "profile", *device = "local", *show = NULL, *vs = NULL;
    sh_profile_opts o = {0};
    bool as_json = false, quiet = false;
    const sh_opt t[] = {
        {"--device", NULL, SH_OPT_STR, &device, "NAME", "device to profile (default local)", 0, 0, NULL},
        {"--quick", NULL, SH_OPT_FLAG, &o.quick, NULL, "a few tiny points (smoke test)", 0, 0, NULL},
        {"--wtypes", NULL, SH_OPT_STR, &o.wtypes, "LIST", "weight types to sweep (default f32,f16,q8_0,q4_0;\n"
         "--quick: f32)", 0, 0, NULL},
        {"--threads", NULL, SH_OPT_INT, &o.threads, "N", "threads (default: the device's default)", 1, 1024, NULL},
        {"--max-depth", NULL, SH_OPT_INT, &o.max_depth, "N", "deepest GQA context (default 32768; --quick: 64)", 1,
         1 << 20, NULL},
        {"--timeout", NULL, SH_OPT_DOUBLE, &o.timeout_s, "S", "per device command, seconds", 0.1, 86400, NULL},
        {"--show", NULL, SH_OPT_STR, &show, "NAME", "print the stored profile of device NAME (no sweep)", 0, 0, NULL},
        {"--vs", NULL, SH_OPT_STR, &vs, "NAME2", "with --show: side by side with NAME2's profile", 0, 0, NULL},
        {"--json", NULL, SH_OPT_FLAG, &as_json, NULL, "print the rows as JSON (no progress)", 0, 0, NULL},
        {"--quiet", "-q", SH_OPT_FLAG, &quiet, NULL, "no progress on stderr", 0, 0, NULL},
    };
    sh_cmd_spec spec = {cmd, NULL, "       starhil profile --show NAME [--vs NAME2] [--json]\n", PROFILE_ABOUT, t,
                        (int)(sizeof t / sizeof t[0]), 0, 0};
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    if (vs && !show) { fprintf(stderr, "starhil %s: --vs needs --show NAME\n", cmd); return 2; }
    if (show) return profile_show(show, vs, as_json);
    sh_err err = {{0}};
    if (sh_device_name_check(device, &err)) { fprintf(stderr, "starhil %s: --device: %s\n", cmd, err.msg); return 2; }
    sh_db *db;
    if (sh_cli_open_db(cmd, SH_DB_CREATE, &db)) return 1;
    sh_progress line;
    sh_progress_init(&line, quiet || as_json);   /* --json: a script reads stdout, no progress */
    o.progress = line_progress;
    o.progress_ctx = &line;
    int n = 0;
    char *rows = NULL;
    int rc = sh_profile_device(db, device, &o, &n, &rows, &err);
    sh_progress_done(&line);
    sh_measure_shutdown();
    if (rc) {
        fprintf(stderr, "starhil %s: %s\n", cmd, err.msg);
    } else if (as_json) {
        printf("%s\n", rows);
    } else {
        json_t *a = json_loads(rows, 0, NULL);
        printf("profile of device %s: %d points stored\n", device, n);
        printf("%-7s %-6s %-44s %12s %10s %9s\n", "BLOCK", "DTYPE", "PARAMS", "LATENCY_US", "GB/S", "GFLOP/S");
        for (size_t i = 0; i < json_array_size(a); i++) {
            json_t *e = json_array_get(a, i);
            char *p = json_dumps(json_object_get(e, "params"), JSON_COMPACT | JSON_SORT_KEYS);
            printf("%-7s %-6s %-44s %12.2f %10.2f %9.2f\n", json_string_value(json_object_get(e, "block")),
                   json_string_value(json_object_get(e, "dtype")), p ? p : "",
                   json_number_value(json_object_get(e, "latency_us")),
                   json_number_value(json_object_get(e, "gbytes_per_s")),
                   json_number_value(json_object_get(e, "gflops")));
            free(p);
        }
        json_decref(a);
    }
    free(rows);
    sh_db_close(db);
    return rc ? 1 : 0;
}
