/* measure.c - sh_measure_genome: the measurement protocol of measure.h (build,
 * push, bench until the median decode latency's CI is tight, probe before and
 * after, retries with backoff, device health, reference re-measurement) and
 * the process-wide registry of open device sessions. */
#include "measure/measure.h"
#include "devices/device.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evaluator/build.h"

/* ---- device session registry ---------------------------------------------- */

typedef struct dev_slot {
    char name[64];
    char *sig;               /* record fields the session was opened with */
    sh_device *dev;
    pthread_mutex_t lock;
    struct dev_slot *next;
} dev_slot;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static dev_slot *slots;

static char *rec_signature(const sh_device_rec *r)
{
    size_t n = 4096 + (r->options_json ? strlen(r->options_json) : 0);
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s|%s|%d|%s|%s|%s|%s|%s|%s", r->kind, r->host, r->port, r->user, r->key_path,
                 r->target, r->cpus, r->workdir, r->options_json ? r->options_json : "");
    return s;
}

/* Returns the slot for rec, locked, with an open device. */
static dev_slot *acquire_device(const sh_device_rec *rec, sh_err *err)
{
    char *sig = rec_signature(rec);
    if (!sig) { sh_err_set(err, "out of memory"); return NULL; }
    pthread_mutex_lock(&reg_lock);
    dev_slot *s = slots;
    while (s && strcmp(s->name, rec->name)) s = s->next;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) { pthread_mutex_unlock(&reg_lock); free(sig); sh_err_set(err, "out of memory"); return NULL; }
        snprintf(s->name, sizeof s->name, "%s", rec->name);
        pthread_mutex_init(&s->lock, NULL);
        s->next = slots;
        slots = s;
    }
    pthread_mutex_unlock(&reg_lock);
    pthread_mutex_lock(&s->lock);
    if (s->dev && strcmp(s->sig, sig)) {   /* the record changed: new session */
        sh_device_close(s->dev);
        s->dev = NULL;
    }
    if (!s->dev) {
        if (sh_device_open(rec, &s->dev, err)) {
            pthread_mutex_unlock(&s->lock);
            free(sig);
            return NULL;
        }
        free(s->sig);
        s->sig = sig;
    } else {
        free(sig);
    }
    return s;
}

static void release_device(dev_slot *s) { pthread_mutex_unlock(&s->lock); }

void sh_measure_shutdown(void)
{
    pthread_mutex_lock(&reg_lock);
    dev_slot *s = slots;
    slots = NULL;
    pthread_mutex_unlock(&reg_lock);
    while (s) {
        dev_slot *next = s->next;
        pthread_mutex_lock(&s->lock);
        sh_device_close(s->dev);
        pthread_mutex_unlock(&s->lock);
        pthread_mutex_destroy(&s->lock);
        free(s->sig);
        free(s);
        s = next;
    }
}

/* ---- small helpers --------------------------------------------------------- */

int sh_device_ensure_local(sh_db *db, sh_err *err)
{
    sh_device_rec rec;
    if (sh_db_get_device(db, "local", &rec, err) == 0) { sh_device_rec_free(&rec); return 0; }
    memset(&rec, 0, sizeof rec);
    snprintf(rec.name, sizeof rec.name, "local");
    snprintf(rec.kind, sizeof rec.kind, "local");
    snprintf(rec.target, sizeof rec.target, "%s", sh_host_triple());
    rec.healthy = true;
    if (sh_db_add_device(db, &rec, err) == 0) return 0;
    /* another thread or process may have added it meanwhile */
    sh_device_rec got;
    if (sh_db_get_device(db, "local", &got, err) == 0) { sh_device_rec_free(&got); return 0; }
    return -1;
}

static void sleep_s(double s)
{
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts)) {}
}

static void progress(const sh_measure_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(const sh_measure_opts *o, const char *fmt, ...)
{
    if (!o->progress) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->progress(o->progress_ctx, line);
}

/* Effective options with defaults filled in. */
static sh_measure_opts effective(const sh_measure_opts *in)
{
    sh_measure_opts o = in ? *in : (sh_measure_opts){0};
    if (o.prompt <= 0) o.prompt = 512;
    if (o.gen <= 0) o.gen = 128;
    if (o.depth < 0) o.depth = 0;
    if (!o.wtype) o.wtype = SH_WTYPE_MEASURE;
    if (!o.kvtype) o.kvtype = "f32";
    if (o.tolerance <= 0) o.tolerance = 0.02;
    if (o.min_reps <= 0) o.min_reps = 3;
    if (o.max_reps <= 0) o.max_reps = 30;
    if (o.max_reps < o.min_reps) o.max_reps = o.min_reps;
    if (o.reps_per_run <= 0) o.reps_per_run = 3;
    if (o.warmup == 0) o.warmup = 1;
    if (o.warmup < 0) o.warmup = 0;
    if (o.timeout_s <= 0) o.timeout_s = 600;
    if (o.retries == 0) o.retries = 2;
    if (o.retries < 0) o.retries = 0;
    if (o.backoff_s <= 0) o.backoff_s = 1.0;
    if (o.busy_wait == 0) o.busy_wait = 0.05;
    if (o.steal_max == 0) o.steal_max = 0.05;
    if (o.others_max == 0) o.others_max = 0.5;
    if (o.drift_tol <= 0) o.drift_tol = 0.10;
    if (o.settle_rounds == 0) o.settle_rounds = 2;
    if (o.settle_rounds < 0) o.settle_rounds = 0;
    if (o.settle_max_s <= 0) o.settle_max_s = 60;
    return o;
}

int sh_decode_warmup_parse(const char *text, int *out, sh_err *err)
{
    if (!text || !strcmp(text, "auto")) { *out = 0; return 0; }
    if (!strcmp(text, "none")) { *out = -1; return 0; }
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < 0 || v > 4096)
        return sh_err_set(err, "'%.40s' is not auto, none or a token count 0..4096", text);
    *out = v ? (int)v : -1;
    return 0;
}

const char *sh_decode_warmup_text(int decode_warmup, char *buf, size_t cap)
{
    if (decode_warmup == 0) snprintf(buf, cap, "auto");
    else if (decode_warmup < 0) snprintf(buf, cap, "none");
    else snprintf(buf, cap, "%d", decode_warmup);
    return buf;
}

/* size and FNV-1a 64 of a file's contents (identifies a GGUF in the stored
 * settings: same bytes, same evaluation) */
static int file_fingerprint(const char *path, uint64_t *bytes, char hex[17], sh_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sh_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    unsigned char *buf = malloc(1 << 20);
    if (!buf) { fclose(f); return sh_err_set(err, "out of memory"); }
    uint64_t h = 1469598103934665603u, n = 0;
    size_t got;
    while ((got = fread(buf, 1, 1 << 20, f)) > 0) {
        for (size_t i = 0; i < got; i++) h = (h ^ buf[i]) * 1099511628211u;
        n += got;
    }
    int bad = ferror(f);
    free(buf);
    fclose(f);
    if (bad) return sh_err_set(err, "%s: read error", path);
    *bytes = n;
    snprintf(hex, 17, "%016llx", (unsigned long long)h);
    return 0;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static char *settings_json(const sh_measure_opts *o, const sh_device_rec *rec, int threads, int ref_seq,
                           uint64_t gguf_bytes, const char *gguf_fnv)
{
    json_t *s = json_object();
    json_object_set_new(s, "prompt", json_integer(o->prompt));
    json_object_set_new(s, "gen", json_integer(o->gen));
    json_object_set_new(s, "depth", json_integer(o->depth));
    json_object_set_new(s, "threads", json_integer(threads));
    json_object_set_new(s, "wtype", json_string(o->gguf ? "gguf" : o->wtype));
    if (o->gguf)
        json_object_set_new(s, "gguf", json_pack("{s:s,s:I,s:s}", "file", base_name(o->gguf),
                                                 "bytes", (json_int_t)gguf_bytes, "fnv1a64", gguf_fnv));
    json_object_set_new(s, "kvtype", json_string(o->kvtype));
    /* left out without a warm-up: rows stored before it keep their settings hash */
    if (o->decode_warmup == 0) json_object_set_new(s, "decode_warmup", json_string("auto"));
    else if (o->decode_warmup > 0) json_object_set_new(s, "decode_warmup", json_integer(o->decode_warmup));
    json_object_set_new(s, "cpus", json_string(rec->cpus));
    json_object_set_new(s, "target", json_string(rec->target));
    if (o->exe_path) json_object_set_new(s, "exe", json_string(o->exe_path));
    if (ref_seq >= 0) json_object_set_new(s, "ref_seq", json_integer(ref_seq));
    char *t = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(s);
    return t;
}

static double num_field(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : 0;
}

/* ---- one attempt -------------------------------------------------------------- */

typedef struct dbl_vec { double *v; int n, cap; } dbl_vec;

static int vec_push(dbl_vec *a, const double *x, int n)
{
    if (a->n + n > a->cap) {
        int nc = a->cap ? a->cap : 256;
        while (nc < a->n + n) nc *= 2;
        double *p = realloc(a->v, (size_t)nc * sizeof *p);
        if (!p) return -1;
        a->v = p;
        a->cap = nc;
    }
    memcpy(a->v + a->n, x, (size_t)n * sizeof *x);
    a->n += n;
    return 0;
}

#define MAX_PIN_GROUPS 16

typedef struct measure_acc {
    dbl_vec decode, prefill, ttft, rss, dec_tps, pre_tps;
    dbl_vec warmup_tokens;    /* per invocation: its median decode warm-up tokens */
    /* per repetition: decode median and the board's state (-1 unknown), and
     * whether it counts (1 quiet, 0 disturbed) */
    dbl_vec rep_med, rep_wait, rep_other, rep_runq, rep_load, rep_freq, rep_temp, rep_steal, rep_quiet;
    dbl_vec rep_wall;         /* the repetition's wall time, s (-1 unknown)   */
    dbl_vec rep_inv_other;    /* others' CPUs over the repetition's whole invocation
                                 less the tick grain of that longer window (-1 unknown) */
    int n_cpus;
    int quiet_reps, busy_reps, throttled_reps, steal_reps, shared_reps;
    bool have_state;
    double weight_bytes, kv_bytes, conv_state_bytes;
    double share_prefill[5], share_decode[5];
    int invocations, reps;
    bool converged;
    double ci_half_rel;       /* CI half-width / median of the quiet tokens */
    double median, lo, hi;
    char *build_json, *cpu_json;
    char *probe_before, *probe_after;
    /* auto-pinning in turn (sh_measure_auto_pin): per repetition the index of
     * its CPU set in groups (-1: not pinned by the coordinator) */
    dbl_vec rep_group;
    char groups[MAX_PIN_GROUPS][256];
    int n_groups;
    /* paired reference (sh_measure_opts.reference_paired): per pair of
     * invocations with a quiet repetition on both sides, the candidate's
     * estimate / the reference's and when the pair started (seconds after
     * the measurement began); the reference's quiet repetition medians */
    dbl_vec pair_ratio, pair_t, ref_rep_med;
    int ref_reps;             /* the reference's repetitions, quiet or not */
} measure_acc;

static void acc_free(measure_acc *a)
{
    free(a->decode.v); free(a->prefill.v); free(a->ttft.v); free(a->rss.v);
    free(a->dec_tps.v); free(a->pre_tps.v); free(a->warmup_tokens.v);
    free(a->rep_med.v); free(a->rep_wait.v); free(a->rep_other.v); free(a->rep_runq.v);
    free(a->rep_load.v); free(a->rep_freq.v); free(a->rep_temp.v); free(a->rep_steal.v); free(a->rep_quiet.v);
    free(a->rep_group.v); free(a->rep_wall.v); free(a->rep_inv_other.v);
    free(a->pair_ratio.v); free(a->pair_t.v); free(a->ref_rep_med.v);
    free(a->build_json); free(a->cpu_json); free(a->probe_before); free(a->probe_after);
    memset(a, 0, sizeof *a);
}

static int vec_dup(dbl_vec *dst, const dbl_vec *src)
{
    memset(dst, 0, sizeof *dst);
    return src->n ? vec_push(dst, src->v, src->n) : 0;
}

static int str_dup(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return src && !*dst ? -1 : 0;
}

/* A deep copy of src into dst (dst's contents are not freed): the
 * repetitions pooled over earlier settle rounds, which an attempt of the
 * next round starts from and a failed attempt goes back to. */
static int acc_copy(measure_acc *dst, const measure_acc *src)
{
    *dst = *src;
    dbl_vec *d[] = {&dst->decode, &dst->prefill, &dst->ttft, &dst->rss, &dst->dec_tps, &dst->pre_tps,
                    &dst->rep_med, &dst->rep_wait, &dst->rep_other, &dst->rep_runq, &dst->rep_load,
                    &dst->rep_freq, &dst->rep_temp, &dst->rep_steal, &dst->rep_quiet, &dst->rep_group,
                    &dst->rep_wall, &dst->rep_inv_other, &dst->warmup_tokens, &dst->pair_ratio, &dst->pair_t,
                    &dst->ref_rep_med};
    const dbl_vec *s[] = {&src->decode, &src->prefill, &src->ttft, &src->rss, &src->dec_tps, &src->pre_tps,
                          &src->rep_med, &src->rep_wait, &src->rep_other, &src->rep_runq, &src->rep_load,
                          &src->rep_freq, &src->rep_temp, &src->rep_steal, &src->rep_quiet, &src->rep_group,
                          &src->rep_wall, &src->rep_inv_other, &src->warmup_tokens, &src->pair_ratio,
                          &src->pair_t, &src->ref_rep_med};
    int bad = 0;
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) bad |= vec_dup(d[i], s[i]);
    bad |= str_dup(&dst->build_json, src->build_json) | str_dup(&dst->cpu_json, src->cpu_json) |
           str_dup(&dst->probe_before, src->probe_before) | str_dup(&dst->probe_after, src->probe_after);
    if (bad) acc_free(dst);
    return bad ? -1 : 0;
}

/* Failure text: reason plus the tail of stderr. */
static int fail_with_output(sh_err *err, const char *what, const sh_dev_result *r)
{
    char how[128];
    sh_dev_result_describe(r, how, sizeof how);
    const char *tail = r->err ? r->err : "";
    size_t n = strlen(tail);
    if (n > 600) tail += n - 600;
    return sh_err_set(err, "%s: %s%s%s", what, how, *tail ? "; stderr: " : "", tail);
}

int sh_device_probe_with(sh_device *d, const char *exe, double timeout_s, char **json_out, sh_err *err)
{
    *json_out = NULL;
    char *argv[] = {(char *)exe, "probe", NULL};
    sh_dev_result r;
    int rc = sh_device_run(d, argv, timeout_s, &r, err);
    if (rc) return rc;
    if (!(r.exited && r.exit_code == 0)) {
        rc = fail_with_output(err, "probe", &r);
    } else if (r.out_truncated) {
        rc = sh_err_set(err, "probe output: larger than %u bytes", SH_DEV_MAX_STDOUT);
    } else {
        rc = sh_probe_parse(r.out, r.out_len, json_out, err);
    }
    sh_dev_result_free(&r);
    return rc;
}

#define BAD_INPUT (-3)   /* attempt result: retrying cannot help */

typedef struct measure_ctx {
    sh_measure_opts o;
    const sh_device_rec *rec;
    sh_device *dev;
    char hash[17];
    const char *exe;          /* local path */
    int threads;
    const char *topology;     /* the board's CPUs for sh_measure_auto_pin (probe JSON), or NULL */
    int turn;                 /* bench invocations so far (auto-pin rotation) */
    int pin_cycle;            /* distinct CPU sets the rotation takes turns over (0: no pinning) */
    char last_pin[256];       /* the CPU set of the latest invocation, "" if not pinned */
    char best_pin[256];       /* once every set had its turn: the one with the lowest estimate */
    int attempt_no;           /* 0, 1, ...: the remote file name differs per attempt */
    char remote[2048];        /* the variant on the device once pushed */
    char gguf_fnv[17];        /* with o.gguf: its fingerprint, and its path there once pushed */
    char gguf_remote[2048];
    json_t *rounds_json;      /* one summary per measurement round */
    double started_at;        /* unix seconds when this measurement began */
    /* a reference faster than the last quiet one beyond the tolerance (judge) */
    double sped_from_ms;      /* that quiet value, 0 if not */
    int64_t sped_from_eval;
    /* paired reference: the reference genome's variant (local path, hash,
     * and on the device once pushed) */
    const char *ref_exe;
    char ref_hash[17];
    char ref_remote[2048];
} measure_ctx;

static int cmp_dbl(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Ticks of /proc/stat's CPU times (USER_HZ, 100 on Linux): others' CPU use
 * over a repetition is a difference of such counts, each CPU's off by up to
 * one tick, so a repetition is "shared" only when others' use exceeds
 * others_max by more than that grain: (CPUs + 1) ticks over its wall time
 * (one more for the variant's own time).  A repetition of 50 ms on 2 CPUs
 * has a grain of 0.6 CPU, too coarse to see one co-runner; but the variant
 * reads the board right after one repetition and right before the next, so
 * over an invocation's repetitions the differences add up to one difference
 * over the whole run (the tick errors cancel between neighbours), whose
 * grain is that of the summed wall time. */
#define PROCSTAT_TICK_S 0.01

static double procstat_grain(int n_cpus, double wall_s)
{
    return (fmax(n_cpus, 1) + 1) * PROCSTAT_TICK_S / wall_s;
}

/* Others' CPU use over an invocation's repetitions (time-weighted) less the
 * grain of their summed wall time; -1 if any repetition's reading is unknown. */
static double invocation_others(const sh_bench_out *b, int n_cpus)
{
    double cpu_s = 0, wall = 0;
    for (int r = 0; r < b->reps; r++) {
        const sh_rep_state *st = r < b->n_state ? &b->state[r] : NULL;
        if (!st || st->other_cpus < 0 || !(st->wall_s > 0)) return -1;
        cpu_s += st->other_cpus * st->wall_s;
        wall += st->wall_s;
    }
    return wall > 0 ? cpu_s / wall - procstat_grain(n_cpus, wall) : -1;
}

/* Appends one invocation's repetitions (median per rep, state) to a. */
static int push_reps(measure_acc *a, const sh_bench_out *b, double group)
{
    int per = b->reps > 0 ? b->n_decode / b->reps : 0;
    if (per <= 0) return 0;
    double *tmp = malloc((size_t)per * sizeof *tmp);
    if (!tmp) return -1;
    int bad = 0;
    const double inv_other = invocation_others(b, b->n_cpus ? b->n_cpus : a->n_cpus);
    for (int r = 0; r < b->reps && !bad; r++) {
        memcpy(tmp, b->decode_ms + (size_t)r * (size_t)per, (size_t)per * sizeof *tmp);
        qsort(tmp, (size_t)per, sizeof *tmp, cmp_dbl);
        double med = per % 2 ? tmp[per / 2] : 0.5 * (tmp[per / 2 - 1] + tmp[per / 2]);
        const sh_rep_state *st = r < b->n_state ? &b->state[r] : NULL;
        double wait = st && st->wait_s >= 0 && st->wall_s > 0 ? st->wait_s / st->wall_s : -1;
        double one = 1, unk = -1;
        bad = vec_push(&a->rep_med, &med, 1) || vec_push(&a->rep_wait, &wait, 1) ||
              vec_push(&a->rep_other, st ? &st->other_cpus : &unk, 1) ||
              vec_push(&a->rep_runq, st ? &st->procs_running : &unk, 1) ||
              vec_push(&a->rep_load, st ? &st->load1 : &unk, 1) ||
              vec_push(&a->rep_freq, st ? &st->freq_khz : &unk, 1) ||
              vec_push(&a->rep_temp, st ? &st->temp_mc : &unk, 1) ||
              vec_push(&a->rep_steal, st ? &st->steal : &unk, 1) || vec_push(&a->rep_quiet, &one, 1) ||
              vec_push(&a->rep_group, &group, 1) || vec_push(&a->rep_wall, st ? &st->wall_s : &unk, 1) ||
              vec_push(&a->rep_inv_other, &inv_other, 1);
    }
    if (b->n_state) a->have_state = true;
    if (b->n_cpus) a->n_cpus = b->n_cpus;
    free(tmp);
    return bad ? -1 : 0;
}

/* Marks each repetition quiet or disturbed (busy: its threads waited too long
 * for a CPU; throttled: its CPUs ran below 85% of the fastest seen; steal: the
 * hypervisor gave more than steal_max of its CPUs' time to other guests,
 * which the CPU wait does not show: the guest thread was "running"; shared:
 * other processes used more than others_max CPUs beside it, on CPUs the
 * variant did not use, which slows it through the shared caches and memory
 * without any CPU wait). */
static void classify_reps(const measure_ctx *c, measure_acc *a)
{
    double fmax_seen = 0;
    for (int i = 0; i < a->rep_freq.n; i++) fmax_seen = fmax(fmax_seen, a->rep_freq.v[i]);
    a->quiet_reps = a->busy_reps = a->throttled_reps = a->steal_reps = a->shared_reps = 0;
    for (int i = 0; i < a->rep_med.n; i++) {
        bool busy = false, throttled = false, stolen = false, shared = false;
        if (c->o.busy_wait >= 0) {
            if (a->rep_wait.v[i] >= 0) {
                busy = a->rep_wait.v[i] > c->o.busy_wait;
            } else if (a->rep_other.v[i] >= 0 && a->n_cpus > 0) {
                /* no schedstat: others' CPU use beyond the CPUs the variant leaves free */
                int thr = c->threads > 0 ? c->threads : a->n_cpus;
                busy = a->rep_other.v[i] > fmax(0, a->n_cpus - thr) + 0.5;
            }
        }
        if (a->rep_freq.v[i] > 0 && fmax_seen > 0) throttled = a->rep_freq.v[i] < 0.85 * fmax_seen;
        if (c->o.steal_max >= 0 && a->rep_steal.v[i] >= 0) stolen = a->rep_steal.v[i] > c->o.steal_max;
        if (c->o.others_max >= 0) {   /* over the repetition, or over its invocation */
            if (a->rep_other.v[i] >= 0 && a->rep_wall.v[i] > 0)
                shared = a->rep_other.v[i] > c->o.others_max + procstat_grain(a->n_cpus, a->rep_wall.v[i]);
            shared = shared || a->rep_inv_other.v[i] > c->o.others_max;
        }
        bool disturbed = busy || throttled || stolen || shared;
        a->busy_reps += busy;
        a->throttled_reps += throttled;
        a->steal_reps += stolen;
        a->shared_reps += shared;
        a->rep_quiet.v[i] = !disturbed;
        a->quiet_reps += !disturbed;
    }
}

/* The convergence rule (measure.h): enough quiet repetitions, and the robust
 * estimate's 95% interval within +-tolerance of it. */
static bool converged_rule(int quiet_reps, int min_reps, double est, double half, double tolerance)
{
    return quiet_reps >= min_reps && est > 0 && half <= tolerance * est;
}

bool sh_estimate_converged(const double *quiet_rep_medians, int n, int min_reps, double tolerance,
                           double *half_rel)
{
    double est = 0, lo = 0, hi = 0;
    if (half_rel) *half_rel = INFINITY;
    if (n <= 0 || sh_decode_estimate_ci(quiet_rep_medians, n, &est, &lo, &hi)) return false;
    double half = fmax(est - lo, hi - est);
    if (half_rel && est > 0) *half_rel = half / est;
    return converged_rule(n, min_reps, est, half, tolerance);
}

/* The CPU set of the next bench invocation into c->last_pin ("" when the
 * coordinator does not pin it): in turn over the board's fastest CPUs
 * (sh_measure_auto_pin), then the fastest set once each had its turn. */
static void next_pin(measure_ctx *c)
{
    c->last_pin[0] = '\0';
    if (!c->rec->cpus[0] &&
        sh_measure_auto_pin(c->topology, c->threads, c->turn++, c->last_pin, sizeof c->last_pin) == 1 &&
        c->best_pin[0])
        snprintf(c->last_pin, sizeof c->last_pin, "%s", c->best_pin);
}

/* One bench invocation of the variant remote_exe (genome hash: the bench
 * output must name it) on the device, pinned to c->last_pin (next_pin), with
 * the weights of the GGUF file gguf_remote on the device or, if NULL,
 * synthetic ones of the measurement's wtype. */
static int run_bench(measure_ctx *c, const char *remote_exe, const char *hash, const char *gguf_remote, int reps,
                     sh_bench_out *b, sh_err *err)
{
    char a_prompt[16], a_gen[16], a_depth[16], a_reps[16], a_warm[16], a_thr[16], a_dwarm[16];
    snprintf(a_prompt, sizeof a_prompt, "%d", c->o.prompt);
    snprintf(a_gen, sizeof a_gen, "%d", c->o.gen);
    snprintf(a_depth, sizeof a_depth, "%d", c->o.depth);
    snprintf(a_reps, sizeof a_reps, "%d", reps);
    snprintf(a_warm, sizeof a_warm, "%d", c->o.warmup);
    snprintf(a_thr, sizeof a_thr, "%d", c->threads);
    char *argv[32];
    int k = 0;
    argv[k++] = (char *)remote_exe;
    argv[k++] = "bench";
    argv[k++] = "--prompt"; argv[k++] = a_prompt;
    argv[k++] = "--gen"; argv[k++] = a_gen;
    argv[k++] = "--depth"; argv[k++] = a_depth;
    argv[k++] = "--reps"; argv[k++] = a_reps;
    argv[k++] = "--warmup"; argv[k++] = a_warm;
    if (gguf_remote) {
        assert(gguf_remote[0]);
        argv[k++] = "--gguf"; argv[k++] = (char *)gguf_remote;
    } else {
        argv[k++] = "--wtype"; argv[k++] = (char *)c->o.wtype;
        argv[k++] = "--seed"; argv[k++] = "1";
    }
    argv[k++] = "--kvtype"; argv[k++] = (char *)c->o.kvtype;
    if (c->o.decode_warmup >= 0) {   /* -1: none, and the option is left out (older variants, --exe) */
        if (c->o.decode_warmup) snprintf(a_dwarm, sizeof a_dwarm, "%d", c->o.decode_warmup);
        else snprintf(a_dwarm, sizeof a_dwarm, "auto");
        argv[k++] = "--decode-warmup"; argv[k++] = a_dwarm;
    }
    if (c->threads > 0) { argv[k++] = "--threads"; argv[k++] = a_thr; }
    if (c->rec->cpus[0]) { argv[k++] = "--cpus"; argv[k++] = (char *)c->rec->cpus; }
    else if (c->last_pin[0]) { argv[k++] = "--cpus"; argv[k++] = c->last_pin; }
    argv[k] = NULL;
    sh_dev_result r;
    int rc = sh_device_run(c->dev, argv, c->o.timeout_s, &r, err);
    if (rc) return rc;
    if (r.exited && (r.exit_code == 1 || r.exit_code == 2)) {
        /* the variant refused its input (docs/interfaces.md): not a device fault */
        fail_with_output(err, "variant bench refused the settings", &r);
        rc = BAD_INPUT;
    } else if (r.exited && r.exit_code == 126) {
        /* the program cannot be executed there (a noexec working directory,
         * a binary for another machine): the same next time */
        fail_with_output(err, "the device cannot execute the variant (exit 126: is its working "
                         "directory on a noexec mount, or the target wrong? `starhil device check` tells)", &r);
        rc = BAD_INPUT;
    } else if (!(r.exited && r.exit_code == 0)) rc = fail_with_output(err, "variant bench", &r);
    else if (r.out_truncated) rc = sh_err_set(err, "bench output: larger than %u bytes", SH_DEV_MAX_STDOUT);
    else rc = sh_bench_parse(r.out, r.out_len, b, err);
    sh_dev_result_free(&r);
    if (!rc && strcmp(b->genome_hash, hash)) {
        rc = sh_err_set(err, "bench output: genome hash %s is not the measured genome's %s", b->genome_hash, hash);
        sh_bench_out_free(b);
    }
    return rc;
}

static void estimate_from(const measure_acc *a, double *est, double *lo, double *hi, int *n_used, int *group);

/* Adds one bench invocation to a (takes b's contents) and re-judges the
 * repetitions; *qm and *half: the robust estimate over the quiet repetitions
 * and the larger distance from it to an end of its 95% interval. */
static int acc_add(measure_ctx *c, measure_acc *a, sh_bench_out *bp, double *qm_out, double *half_out,
                   int *est_quiet_out, sh_err *err)
{
    sh_bench_out b = *bp;
    memset(bp, 0, sizeof *bp);
    double group = -1;
    if (c->last_pin[0]) {
        int g = 0;
        while (g < a->n_groups && strcmp(a->groups[g], c->last_pin)) g++;
        if (g == a->n_groups && g < MAX_PIN_GROUPS)
            snprintf(a->groups[a->n_groups++], sizeof a->groups[0], "%s", c->last_pin);
        if (g < a->n_groups) group = g;
    }
    int bad = push_reps(a, &b, group) ||
              vec_push(&a->decode, b.decode_ms, b.n_decode) || vec_push(&a->prefill, b.prefill_ms, b.n_prefill) ||
              vec_push(&a->ttft, &b.ttft_ms, 1) || vec_push(&a->rss, &b.peak_rss_bytes, 1) ||
              vec_push(&a->dec_tps, &b.decode_tok_s, 1) || vec_push(&a->pre_tps, &b.prefill_tok_s, 1) ||
              (b.decode_warmup_tokens > 0 && vec_push(&a->warmup_tokens, &b.decode_warmup_tokens, 1));
    a->invocations++;
    a->reps += b.reps;
    a->weight_bytes = b.weight_bytes;
    a->kv_bytes = b.kv_bytes;
    a->conv_state_bytes = b.conv_state_bytes;
    for (int k = 0; k < 5; k++) {
        a->share_prefill[k] += (b.share_prefill[k] - a->share_prefill[k]) / a->invocations;
        a->share_decode[k] += (b.share_decode[k] - a->share_decode[k]) / a->invocations;
    }
    free(a->build_json); free(a->cpu_json);
    a->build_json = b.build_json; a->cpu_json = b.cpu_json;
    b.build_json = b.cpu_json = NULL;
    sh_bench_out_free(&b);
    if (bad) return sh_err_set(err, "out of memory");
    sh_median_ci(a->decode.v, a->decode.n, &a->median, &a->lo, &a->hi);
    /* convergence is judged on the quiet repetitions only, and on the figure
     * that is stored and ranked: the robust estimate and its interval */
    classify_reps(c, a);
    double est = 0, lo = 0, hi = 0;
    int est_quiet = 0, best = -1;
    if (a->quiet_reps > 0) estimate_from(a, &est, &lo, &hi, &est_quiet, &best);
    /* pinned in turn: each CPU set had one turn, then the fastest takes the rest */
    if (c->pin_cycle > 1 && a->n_groups >= c->pin_cycle && best >= 0)
        snprintf(c->best_pin, sizeof c->best_pin, "%s", a->groups[best]);
    double half = fmax(est - lo, hi - est);
    a->ci_half_rel = est > 0 ? half / est : INFINITY;
    *qm_out = est;
    *half_out = half;
    if (est_quiet_out) *est_quiet_out = est_quiet;
    return 0;
}

/* How many CPU sets a measurement tries before it stays on the fastest:
 * the distinct sets sh_measure_auto_pin takes turns over, at most
 * PIN_EXPLORE (1: a fixed set; 0: no pinning).  Bounded so that a board of
 * many equal CPUs does not spend a search's few invocations exploring. */
#define PIN_EXPLORE 2
static int pin_cycle(const char *topology, int threads)
{
    char first[256], pin[256];
    if (sh_measure_auto_pin(topology, threads, 0, first, sizeof first) != 1) return 0;
    int n = 1;
    while (n < PIN_EXPLORE && sh_measure_auto_pin(topology, threads, n, pin, sizeof pin) == 1 && strcmp(pin, first))
        n++;
    return n;
}

static double unix_now(void);
static int add_pair(const measure_ctx *c, measure_acc *a, const sh_bench_out *cand, const sh_bench_out *ref,
                    double t, sh_err *err);

/* Paired reference: pairs of invocations before a measurement can converge
 * (their per-pair ratios give the normalized figure; 3 give an interval that
 * is their range, covering the median ratio with 75%, sh_median_ci). */
#define PAIRED_MIN_PAIRS 3

/* One step of a measurement: a bench invocation of the candidate into *b, or
 * with a paired reference a pair of invocations on the same CPUs, the
 * reference first in every other pair (C R, R C, ...: neither always runs
 * first), the pair added to a (add_pair) and the candidate's into *b. */
static int measure_step(measure_ctx *c, measure_acc *a, const char *remote, int reps, sh_bench_out *b, sh_err *err)
{
    sh_bench_out rb;
    const char *gguf = c->o.gguf ? c->gguf_remote : NULL;
    const bool paired = c->ref_exe != NULL, ref_first = paired && a->invocations % 2 == 1;
    const double t = unix_now() - c->started_at;
    next_pin(c);
    int rc = ref_first ? run_bench(c, c->ref_remote, c->ref_hash, NULL, reps, &rb, err) : 0;
    if (rc) return rc;
    rc = run_bench(c, remote, c->hash, gguf, reps, b, err);
    if (rc) {
        if (ref_first) sh_bench_out_free(&rb);
        return rc;
    }
    if (paired && !ref_first && (rc = run_bench(c, c->ref_remote, c->ref_hash, NULL, reps, &rb, err))) {
        sh_bench_out_free(b);
        return rc;
    }
    if (paired) {
        rc = add_pair(c, a, b, &rb, t, err);
        sh_bench_out_free(&rb);
        if (rc) sh_bench_out_free(b);
    }
    return rc;
}

static int attempt(measure_ctx *c, measure_acc *a, sh_err *err)
{
    char remote[2048], name[64];
    /* a fresh name per attempt: an earlier attempt's program may still be
     * running there (a dropped connection), and its file cannot be rewritten */
    if (c->attempt_no) snprintf(name, sizeof name, "variant-%s.%d", c->hash, c->attempt_no);
    else snprintf(name, sizeof name, "variant-%s", c->hash);
    int rc = sh_device_push(c->dev, c->exe, name, remote, sizeof remote, err);
    if (rc) return rc;
    snprintf(c->remote, sizeof c->remote, "%s", remote);
    if (c->ref_exe) {   /* the paired reference, named the same way */
        char rname[64];
        if (c->attempt_no) snprintf(rname, sizeof rname, "variant-%s.%d", c->ref_hash, c->attempt_no);
        else snprintf(rname, sizeof rname, "variant-%s", c->ref_hash);
        rc = sh_device_push(c->dev, c->ref_exe, rname, c->ref_remote, sizeof c->ref_remote, err);
        if (rc) return rc;
    }
    if (c->o.gguf) {
        /* named by its contents: a retry or a later measurement of the same file reuses the name */
        char gname[64];
        snprintf(gname, sizeof gname, "model-%s.gguf", c->gguf_fnv);
        progress(&c->o, "measure %s on %s: pushing %s", c->hash, c->rec->name, c->o.gguf);
        rc = sh_device_push(c->dev, c->o.gguf, gname, c->gguf_remote, sizeof c->gguf_remote, err);
        if (rc) return rc;
    }
    if (!c->o.no_probe && !a->probe_before) {   /* before the first round */
        sh_err perr;
        if (sh_device_probe_with(c->dev, remote, 60, &a->probe_before, &perr) == SH_DEV_ETRANSPORT) {
            *err = perr;
            return SH_DEV_ETRANSPORT;
        }
    }
    c->topology = a->probe_before ? a->probe_before : c->rec->topology_json;
    c->pin_cycle = pin_cycle(c->rec->cpus[0] ? NULL : c->topology, c->threads);
    char pin[256];
    if (!c->rec->cpus[0] && c->turn == 0 && sh_measure_auto_pin(c->topology, c->threads, 0, pin, sizeof pin) == 1)
        progress(&c->o, "measure %s on %s: %d thread(s) of the board's CPUs: pinned, invocation by invocation "
                 "in turn over its fastest CPUs, to CPU %s first", c->hash, c->rec->name, c->threads, pin);
    /* a round measures up to max_reps repetitions, added to those of earlier
     * rounds (a is the pool); convergence is judged on the pool */
    int start = a->reps;
    a->converged = false;
    while (a->reps - start < c->o.max_reps) {
        int want = c->o.reps_per_run;
        if (want > c->o.max_reps - (a->reps - start)) want = c->o.max_reps - (a->reps - start);
        sh_bench_out b;
        rc = measure_step(c, a, remote, want, &b, err);
        if (rc) return rc;
        double qm, half;
        int est_quiet;
        rc = acc_add(c, a, &b, &qm, &half, &est_quiet, err);
        if (rc) return rc;
        char pairs[96] = "";   /* one line per step: a second one would replace it on a terminal */
        if (c->ref_exe)
            snprintf(pairs, sizeof pairs, ", %d pair(s) with the reference, latest ratio %.4f", a->pair_ratio.n,
                     a->pair_ratio.n ? a->pair_ratio.v[a->pair_ratio.n - 1] : 0.0);
        progress(&c->o, "measure %s on %s: %d reps (%d quiet), decode %.3f ms, interval +-%.1f%%%s", c->hash,
                 c->rec->name, a->reps, a->quiet_reps, qm, qm > 0 ? 100 * half / qm : 0, pairs);
        /* taking turns over CPUs: not before every CPU set had its turn, and
         * judged on the repetitions of the set the estimate comes from */
        if (a->n_groups >= c->pin_cycle && (!c->ref_exe || a->pair_ratio.n >= PAIRED_MIN_PAIRS) &&
            converged_rule(est_quiet, c->o.min_reps, qm, half, c->o.tolerance)) {
            a->converged = true;
            break;
        }
    }
    if (!c->o.no_probe) {
        sh_err perr;
        free(a->probe_after);
        a->probe_after = NULL;
        if (sh_device_probe_with(c->dev, remote, 60, &a->probe_after, &perr) == SH_DEV_ETRANSPORT) {
            *err = perr;
            return SH_DEV_ETRANSPORT;
        }
    }
    return 0;
}

/* ---- result and samples ----------------------------------------------------------- */

static double median_of(const dbl_vec *v)
{
    double m = 0, lo, hi;
    if (v->n) sh_median_ci(v->v, v->n, &m, &lo, &hi);
    return m;
}

/* The robust estimate over the quiet repetitions (all of them if none was quiet). */
/* The robust estimate over the quiet repetitions (all of them if none is
 * quiet).  With repetitions pinned in turn to several CPU sets, each set's
 * repetitions are estimated apart and the lowest estimate is the one taken
 * (its set in *group, else -1): a board's equal-ranked CPUs are not always
 * equal in fact (measure.h, sh_measure_auto_pin), and the slower one's time
 * is interference the guest cannot see.  *n_used: repetitions behind it. */
/* The repetition medians the estimate is taken from, of CPU set g (g < 0:
 * every set) into m: the quiet ones, or all if none is quiet.  Returns how
 * many; *reps (may be NULL) receives the set's repetitions. */
static int group_medians(const measure_acc *a, int g, double *m, int *reps)
{
    int n = 0, r = 0;
    for (int i = 0; i < a->rep_med.n; i++) {
        if (g >= 0 && a->rep_group.v[i] != g) continue;
        r++;
        if (a->quiet_reps == 0 || a->rep_quiet.v[i]) m[n++] = a->rep_med.v[i];
    }
    if (reps) *reps = r;
    return n;
}

static void estimate_from(const measure_acc *a, double *est, double *lo, double *hi, int *n_used, int *group)
{
    *est = *lo = *hi = 0;
    if (n_used) *n_used = 0;
    if (group) *group = -1;
    double *m = malloc((size_t)(a->rep_med.n ? a->rep_med.n : 1) * sizeof *m);
    if (!m) return;
    bool split = a->n_groups > 1;
    for (int g = 0; g < (split ? a->n_groups : 1); g++) {
        int n = group_medians(a, split ? g : -1, m, NULL);
        double e, l, h;
        if (!n || sh_decode_estimate_ci(m, n, &e, &l, &h)) continue;
        if (*est == 0 || e < *est) {
            *est = e; *lo = l; *hi = h;
            if (n_used) *n_used = n;
            if (group) *group = split ? g : -1;
        }
    }
    free(m);
}

static void estimate(const measure_acc *a, double *est, double *lo, double *hi)
{
    estimate_from(a, est, lo, hi, NULL, NULL);
}

/* One invocation's own robust estimate, its repetitions judged among
 * themselves (as compare and the paired reference take it): *quiet gets its
 * quiet repetitions, and quiet_med (may be NULL) their medians appended.
 * Returns 0, or -1 out of memory. */
static int invocation_estimate(const measure_ctx *c, const sh_bench_out *b, double *est, int *quiet,
                               dbl_vec *quiet_med)
{
    measure_acc one = {0};
    double lo, hi;
    *est = 0;
    *quiet = 0;
    int bad = push_reps(&one, b, -1);
    if (!bad) {
        one.reps = b->reps;
        classify_reps(c, &one);
        estimate(&one, est, &lo, &hi);
        *quiet = one.quiet_reps;
        for (int i = 0; quiet_med && i < one.rep_med.n && !bad; i++)
            if (one.rep_quiet.v[i] > 0) bad = vec_push(quiet_med, &one.rep_med.v[i], 1);
    }
    acc_free(&one);
    return bad ? -1 : 0;
}

/* Adds a pair of invocations, the candidate's and the reference's (paired
 * reference), started t seconds into the measurement: the reference's quiet
 * repetitions join its pool, and the pair's ratio (candidate estimate /
 * reference estimate) is kept when both sides had a quiet repetition. */
static int add_pair(const measure_ctx *c, measure_acc *a, const sh_bench_out *cand, const sh_bench_out *ref,
                    double t, sh_err *err)
{
    double ce, re;
    int cq, rq;
    if (invocation_estimate(c, cand, &ce, &cq, NULL) || invocation_estimate(c, ref, &re, &rq, &a->ref_rep_med))
        return sh_err_set(err, "out of memory");
    a->ref_reps += ref->reps;
    if (cq > 0 && rq > 0 && ce > 0 && re > 0) {
        double ratio = ce / re;
        if (vec_push(&a->pair_ratio, &ratio, 1) || vec_push(&a->pair_t, &t, 1))
            return sh_err_set(err, "out of memory");
    }
    return 0;
}

/* The paired reference's robust estimate over its quiet repetitions and its
 * interval; 0 if it has none. */
static void paired_reference_estimate(const measure_acc *a, double *est, double *lo, double *hi)
{
    *est = *lo = *hi = 0;
    if (a->ref_rep_med.n) sh_decode_estimate_ci(a->ref_rep_med.v, a->ref_rep_med.n, est, lo, hi);
}

/* The CPU sets of a measurement pinned in turn, as JSON (NULL if fewer than
 * two): what each set's repetitions gave, and which one the estimate took. */
static json_t *cpu_groups_json(const measure_acc *a)
{
    if (a->n_groups < 2) return NULL;
    int used = -1;
    double e, l, h;
    estimate_from(a, &e, &l, &h, NULL, &used);
    json_t *arr = json_array();
    double *m = malloc((size_t)(a->rep_med.n ? a->rep_med.n : 1) * sizeof *m);
    if (!arr || !m) { json_decref(arr); free(m); return NULL; }
    for (int g = 0; g < a->n_groups; g++) {
        int reps, n = group_medians(a, g, m, &reps);
        json_t *o = json_pack("{s:s, s:i, s:i}", "cpus", a->groups[g], "reps", reps, "quiet_reps", n);
        if (o && n && sh_decode_estimate_ci(m, n, &e, &l, &h) == 0) {
            json_object_set_new(o, "decode_ms", json_real(e));
            json_object_set_new(o, "decode_ms_low", json_real(l));
            json_object_set_new(o, "decode_ms_high", json_real(h));
        }
        if (o) json_object_set_new(o, "used", json_boolean(g == used));
        json_array_append_new(arr, o);
    }
    free(m);
    return arr;
}

/* A candidate's figure relative to the latest reference (reference: its
 * latest_reference object, which gets "relative" and, with an anchor,
 * "factor"), and normalized to the reference's anchor: decode_ms x anchor /
 * reference.  The interval combines both estimates' on the log scale (the
 * candidate's lower end over the reference's upper end, and so on). */
static void normalize_by_reference(sh_mrecord *res, json_t *reference)
{
    double ref = num_field(reference, "decode_ms"), anchor = num_field(reference, "anchor_ms");
    res->rel_to_reference = ref > 0 ? res->decode_ms / ref : 0;
    json_object_set_new(reference, "relative", json_real(res->rel_to_reference));
    if (!(ref > 0 && anchor > 0 && res->decode_ms > 0)) return;
    double f = anchor / ref;
    json_object_set_new(reference, "factor", json_real(f));
    res->reference_anchor_ms = anchor;
    res->decode_ms_normalized = res->decode_ms * f;
    double rlo = num_field(reference, "decode_ms_low"), rhi = num_field(reference, "decode_ms_high");
    double dl = res->decode_ms_low > 0 ? log(res->decode_ms / res->decode_ms_low) : 0;
    double dh = res->decode_ms_high > 0 ? log(res->decode_ms_high / res->decode_ms) : 0;
    double rl = rlo > 0 ? log(ref / rlo) : 0, rh = rhi > 0 ? log(rhi / ref) : 0;
    res->decode_ms_normalized_low = res->decode_ms_normalized * exp(-sqrt(dl * dl + rh * rh));
    res->decode_ms_normalized_high = res->decode_ms_normalized * exp(sqrt(dh * dh + rl * rl));
}

/* A candidate's figure normalized by the reference measured beside it
 * (paired reference): the anchor (in reference, the latest reference row's
 * object) x the median of the per-pair ratios, with the distribution-free
 * interval of that median (sh_median_ci: the range of the ratios below 6
 * pairs, `coverage` says how much it covers).  The per-pair ratio divides
 * out what slowed both genomes of a pair alike, the board's drift between
 * pairs included; normalize_by_reference divides by a reading taken before
 * the candidate, which drifts on its own.  reference gets "paired" {pairs,
 * ratio, ratio_low, ratio_high, coverage, the reference's estimate beside the
 * candidate (decode_ms, _low, _high), reps, quiet_reps, and each pair's
 * ratio and start in seconds after the measurement began (pair_ratios,
 * pair_t_s)}, "relative" (the ratio) and, with an anchor, "factor"
 * (normalized / decode_ms). */
static void normalize_paired(sh_mrecord *res, json_t *reference, const measure_acc *a)
{
    const int n = a->pair_ratio.n;
    double m = 0, lo = 0, hi = 0, re, rlo, rhi;
    if (n) sh_median_ci(a->pair_ratio.v, n, &m, &lo, &hi);
    paired_reference_estimate(a, &re, &rlo, &rhi);
    json_t *ratios = json_array(), *times = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(ratios, json_real(a->pair_ratio.v[i]));
        json_array_append_new(times, json_real(a->pair_t.v[i]));
    }
    json_object_set_new(reference, "paired",
                        json_pack("{s:i,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:i,s:i,s:o,s:o}", "pairs", n, "ratio", m,
                                  "ratio_low", lo, "ratio_high", hi, "coverage", n ? sh_median_ci_coverage(n) : 0.0,
                                  "decode_ms", re, "decode_ms_low", rlo, "decode_ms_high", rhi, "reps", a->ref_reps,
                                  "quiet_reps", a->ref_rep_med.n, "pair_ratios", ratios, "pair_t_s", times));
    res->rel_to_reference = m;
    json_object_set_new(reference, "relative", json_real(m));
    double anchor = num_field(reference, "anchor_ms");
    if (!(anchor > 0 && m > 0 && res->decode_ms > 0)) return;
    res->reference_anchor_ms = anchor;
    res->decode_ms_normalized = anchor * m;
    res->decode_ms_normalized_low = anchor * lo;
    res->decode_ms_normalized_high = anchor * hi;
    json_object_set_new(reference, "factor", json_real(res->decode_ms_normalized / res->decode_ms));
}

/* Fills res, the measurement record, from the accumulated repetitions and
 * returns its JSON as stored (sh_mrecord_json). */
static char *build_result(measure_ctx *c, measure_acc *a, const char *settings, json_t *reference,
                          sh_mrecord *res)
{
    double sum = 0, rss = 0;
    for (int i = 0; i < a->decode.n; i++) sum += a->decode.v[i];
    for (int i = 0; i < a->rss.n; i++) rss = fmax(rss, a->rss.v[i]);
    double mean = a->decode.n ? sum / a->decode.n : 0;
    double pre_med = median_of(&a->prefill);
    snprintf(res->device, sizeof res->device, "%s", c->rec->name);
    snprintf(res->kind, sizeof res->kind, "%s", c->rec->kind);
    snprintf(res->genome_hash, sizeof res->genome_hash, "%s", c->hash);
    res->decode_ms_median = a->median;
    res->decode_ci_low = a->lo;
    res->decode_ci_high = a->hi;
    res->decode_tok_s = mean > 0 ? 1000.0 / mean : 0;
    res->prefill_tok_s = pre_med > 0 ? c->o.prompt * 1000.0 / pre_med : 0;
    res->ttft_ms = median_of(&a->ttft);
    res->peak_rss_bytes = rss;
    res->weight_bytes = a->weight_bytes;
    res->kv_bytes = a->kv_bytes;
    res->conv_state_bytes = a->conv_state_bytes;
    res->decode_warmup_tokens = median_of(&a->warmup_tokens);
    memcpy(res->share_prefill, a->share_prefill, sizeof res->share_prefill);
    memcpy(res->share_decode, a->share_decode, sizeof res->share_decode);
    res->reps = a->reps;
    res->invocations = a->invocations;
    res->decode_samples = a->decode.n;
    res->converged = a->converged;
    res->quiet_reps = a->quiet_reps;
    res->disturbed_reps = a->reps - a->quiet_reps;
    res->busy_reps = a->busy_reps;
    res->throttled_reps = a->throttled_reps;
    res->board_state_read = a->have_state;
    res->busy_wait = c->o.busy_wait;
    res->tolerance = c->o.tolerance;
    estimate(a, &res->decode_ms, &res->decode_ms_low, &res->decode_ms_high);
    snprintf(res->estimator, sizeof res->estimator, "%s", SH_DECODE_ESTIMATOR);
    snprintf(res->estimator_ci_method, sizeof res->estimator_ci_method, "%s", SH_DECODE_CI_METHOD);
    res->steal_reps = a->steal_reps;
    res->steal_max = c->o.steal_max;
    res->shared_reps = a->shared_reps;
    res->others_max = c->o.others_max;
    if (reference && c->ref_exe) normalize_paired(res, reference, a);
    else if (reference) normalize_by_reference(res, reference);
    json_t *groups = cpu_groups_json(a);
    free(res->cpu_groups_json);
    res->cpu_groups_json = groups ? json_dumps(groups, JSON_COMPACT) : NULL;
    json_decref(groups);
    if (groups && !res->cpu_groups_json) return NULL;
    const struct { char **dst; const char *src; json_t *j; } sub[] = {
        {&res->settings_json, settings, NULL}, {&res->build_json, a->build_json, NULL},
        {&res->cpu_json, a->cpu_json, NULL}, {&res->probe_before_json, a->probe_before, NULL},
        {&res->probe_after_json, a->probe_after, NULL}, {&res->rounds_json, NULL, c->rounds_json},
        {&res->reference_json, NULL, reference}};
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        free(*sub[i].dst);
        *sub[i].dst = sub[i].j ? json_dumps(sub[i].j, JSON_COMPACT) : sub[i].src ? strdup(sub[i].src) : NULL;
        if ((sub[i].j || sub[i].src) && !*sub[i].dst) return NULL;
    }
    return sh_mrecord_json(res);
}

static sh_sample *make_samples(measure_acc *a, int *n_out)
{
    const struct { const char *m; dbl_vec *v; } S[] = {
        {"decode_ms", &a->decode}, {"prefill_ms", &a->prefill}, {"ttft_ms", &a->ttft},
        {"peak_rss_bytes", &a->rss}, {"decode_tok_s", &a->dec_tps}, {"prefill_tok_s", &a->pre_tps},
        {"rep_decode_median_ms", &a->rep_med}, {"rep_quiet", &a->rep_quiet}, {"rep_cpu_wait", &a->rep_wait},
        {"rep_other_cpus", &a->rep_other}, {"rep_procs_running", &a->rep_runq}, {"rep_load1", &a->rep_load},
        {"rep_freq_khz", &a->rep_freq}, {"rep_temp_mc", &a->rep_temp}, {"rep_steal", &a->rep_steal},
        {"rep_cpu_group", &a->rep_group}};
    int n = 0;
    for (size_t i = 0; i < sizeof S / sizeof S[0]; i++) n += S[i].v->n;
    sh_sample *s = malloc((size_t)(n ? n : 1) * sizeof *s);
    if (!s) return NULL;
    int k = 0;
    for (size_t i = 0; i < sizeof S / sizeof S[0]; i++)
        for (int j = 0; j < S[i].v->n; j++) s[k++] = (sh_sample){S[i].m, j, S[i].v->v[j]};
    *n_out = n;
    return s;
}

/* ---- reference genome --------------------------------------------------------------- */

/* The latest reference measurement of (run, device) (trusted_only: not
 * unstable), as {"eval_id", "genome_hash", "decode_ms", "decode_ms_low",
 * "decode_ms_high", "stability", "reason", "anchor_ms" (if it carries one),
 * "sped_up" (if it marked earlier measurements)}. */
static json_t *latest_reference(sh_db *db, int64_t run_id, const char *device, bool trusted_only)
{
    sh_eval_rec e;
    sh_err err;
    if (sh_db_latest_eval(db, run_id, device, "reference", trusted_only, &e, &err) != 0) return NULL;
    json_t *out = NULL;
    sh_mrecord m;
    if (e.result_json && sh_mrecord_from_json(e.result_json, &m, &err) == 0) {
        out = json_object();
        json_object_set_new(out, "eval_id", json_integer(e.id));
        json_object_set_new(out, "genome_hash", m.genome_hash[0] ? json_string(m.genome_hash) : json_null());
        json_object_set_new(out, "decode_ms", json_real(isfinite(m.decode_ms) ? m.decode_ms : 0));
        json_object_set_new(out, "decode_ms_low", json_real(isfinite(m.decode_ms_low) ? m.decode_ms_low : 0));
        json_object_set_new(out, "decode_ms_high", json_real(isfinite(m.decode_ms_high) ? m.decode_ms_high : 0));
        if (m.reference_anchor_ms > 0) json_object_set_new(out, "anchor_ms", json_real(m.reference_anchor_ms));
        json_object_set_new(out, "stability", json_string(e.stability));
        json_object_set_new(out, "reason", json_string(e.stability_reason ? e.stability_reason : ""));
        if (m.sped_up_json) {   /* it showed the board slower before it (judge) */
            json_t *su = json_loads(m.sped_up_json, 0, NULL);
            if (su) json_object_set_new(out, "sped_up", su);
        }
        sh_mrecord_free(&m);
    }
    sh_eval_rec_free(&e);
    return out;
}

/* The anchor a reference reading carries (mrecord.h reference_anchor_ms):
 * the one the latest reference reading of (run, device) carries, whatever
 * its stability (an in-place re-measurement's latest is its own previous
 * reading), if it is of the same genome; else this reading's own figure
 * when it is trusted; else none yet.  So the anchor stays the first trusted
 * reading's for the whole run, and normalized figures stay comparable. */
static void set_reference_anchor(sh_db *db, const measure_ctx *c, sh_mrecord *res)
{
    json_t *latest = latest_reference(db, c->o.run_id, c->rec->name, false);
    const char *gh = json_string_value(json_object_get(latest, "genome_hash"));
    double carried = gh && !strcmp(gh, c->hash) ? num_field(latest, "anchor_ms") : 0;
    json_decref(latest);
    if (carried > 0) res->reference_anchor_ms = carried;
    else if (strcmp(res->stability, "unstable") && res->decode_ms > 0) res->reference_anchor_ms = res->decode_ms;
    else res->reference_anchor_ms = 0;
}

/* ---- the entry point ----------------------------------------------------------------- */

static int measure_kind(sh_db *db, const char *device, const sh_genome *g, const sh_measure_opts *opts,
                        const char *kind, int ref_seq, sh_mrecord *res, sh_err *err);

static int maybe_reference(sh_db *db, const char *device, const sh_measure_opts *o, sh_err *err)
{
    if (!o->reference || o->reference_every <= 0) return 0;
    int count;
    if (sh_db_count_ok_evals(db, o->run_id, device, "measure", &count, err)) return -1;
    if (count % o->reference_every) return 0;
    sh_mrecord rr;
    sh_measure_opts ro = *o;
    ro.exe_path = o->reference_exe_path;
    ro.gguf = NULL;   /* the reference runs its own synthetic weights */
    if (measure_kind(db, device, o->reference, &ro, "reference", count / o->reference_every, &rr, err))
        return sh_err_prefix(err, "reference genome");
    sh_mrecord_free(&rr);
    return 0;
}

static int get_device_rec(sh_db *db, const char *device, sh_device_rec *rec, sh_err *err)
{
    if (sh_device_name_check(device, err)) return -1;
    if (!strcmp(device, "local") && sh_device_ensure_local(db, err)) return -1;
    if (sh_db_get_device(db, device, rec, err)) return -1;
    if (!rec->healthy) {
        sh_err_set(err, "device %s is marked unhealthy after %d failed evaluations; "
                   "`starhil device check %s` re-enables it", device, rec->fail_count, device);
        sh_device_rec_free(rec);
        return -1;
    }
    return 0;
}

typedef struct pin_cpu { int id; double khz; } pin_cpu;

static int cmp_pin(const void *x, const void *y)
{
    const pin_cpu *a = x, *b = y;
    if (a->khz != b->khz) return a->khz > b->khz ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static int cmp_int(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    return (a > b) - (a < b);
}

int sh_measure_auto_pin(const char *topology_json, int threads, int turn, char *out, size_t cap)
{
    enum { MAXC = 1024 };
    if (cap > 0) out[0] = '\0';
    if (threads <= 0 || turn < 0 || !topology_json) return 0;
    json_t *t = json_loads(topology_json, 0, NULL);
    if (!json_is_object(t)) { json_decref(t); return 0; }
    static const double unknown = -1.0;
    double khz[MAXC];
    bool online[MAXC];
    int n_online = 0;
    for (int i = 0; i < MAXC; i++) { khz[i] = unknown; online[i] = false; }
    json_t *cpus = json_object_get(t, "cpus"), *v;
    size_t i;
    if (json_is_array(cpus) && json_array_size(cpus) > 0) {
        json_array_foreach(cpus, i, v) {
            json_t *id = json_object_get(v, "id"), *on = json_object_get(v, "online");
            if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= MAXC) continue;
            if (on && !json_is_true(on)) continue;
            online[json_integer_value(id)] = true;
        }
    } else {
        json_t *n = json_object_get(t, "n_cpus");
        json_int_t nc = json_is_integer(n) ? json_integer_value(n) : 0;
        for (json_int_t c = 0; c < nc && c < MAXC; c++) online[c] = true;
    }
    json_t *clusters = json_object_get(t, "clusters");
    json_array_foreach(clusters, i, v) {
        json_t *mk = json_object_get(v, "max_khz"), *cl = json_object_get(v, "cpus"), *c;
        double f = json_is_number(mk) && json_number_value(mk) > 0 ? json_number_value(mk) : unknown;
        size_t k;
        json_array_foreach(cl, k, c)
            if (json_is_integer(c) && json_integer_value(c) >= 0 && json_integer_value(c) < MAXC)
                khz[json_integer_value(c)] = f;
    }
    json_decref(t);
    pin_cpu order[MAXC];
    for (int c = 0; c < MAXC; c++)
        if (online[c]) order[n_online++] = (pin_cpu){c, khz[c]};
    if (threads >= n_online) return 0;
    qsort(order, (size_t)n_online, sizeof order[0], cmp_pin);
    int top = 1;                       /* CPUs of the fastest rank */
    while (top < n_online && order[top].khz == order[0].khz) top++;
    int pick[MAXC];
    for (int k = 0; k < threads; k++)
        pick[k] = threads < top ? order[((long long)turn * threads + k) % top].id : order[k].id;
    qsort(pick, (size_t)threads, sizeof pick[0], cmp_int);
    size_t len = 0;
    for (int k = 0; k < threads;) {
        int e = k;
        while (e + 1 < threads && pick[e + 1] == pick[e] + 1) e++;
        int w = e > k ? snprintf(out + len, cap - len, "%s%d-%d", len ? "," : "", pick[k], pick[e])
                      : snprintf(out + len, cap - len, "%s%d", len ? "," : "", pick[k]);
        if (w < 0 || (size_t)w >= cap - len) { if (cap > 0) out[0] = '\0'; return -1; }
        len += (size_t)w;
        k = e + 1;
    }
    return 1;
}

static int threads_for(const sh_measure_opts *o, const sh_device_rec *rec)
{
    if (o->threads > 0) return o->threads;
    if (rec->cpus[0]) {
        bool set[1024];
        int n = 0;
        sh_err e;
        if (sh_cpulist_parse(rec->cpus, set, &n, &e) == 0 && n > 0) return n;
    }
    return 0;
}

static void record_health(sh_db *db, const sh_device_rec *rec, bool ok)
{
    sh_err e;
    sh_device_rec cur;
    if (sh_db_get_device(db, rec->name, &cur, &e)) return;
    int fails = ok ? 0 : cur.fail_count + 1;
    if (fails != cur.fail_count || cur.healthy != (fails < SH_DEVICE_MAX_FAILS))
        sh_db_set_device_health(db, rec->name, fails < SH_DEVICE_MAX_FAILS, fails, &e);
    sh_device_rec_free(&cur);
}

/* Why a measurement is doubtful ("" if it is not): too few quiet repetitions,
 * no convergence, or the reference genome drifting (for a candidate: the
 * latest reference is itself unstable; for the reference: its estimate is
 * more than drift_tol above its last quiet value; more than drift_tol below
 * it sets c->sped_from_ms instead). */
static void judge(sh_db *db, measure_ctx *c, const measure_acc *a, const sh_mrecord *res,
                  int ref_seq, char *why, size_t cap)
{
    why[0] = '\0';
    size_t len = 0;
#define ADD(...) do { if (len < cap) len += (size_t)snprintf(why + len, cap - len, __VA_ARGS__); } while (0)
    if (a->quiet_reps < c->o.min_reps) {
        double wmax = 0, qmax = 0, lmax = 0;
        for (int i = 0; i < a->rep_wait.n; i++) {
            wmax = fmax(wmax, a->rep_wait.v[i]);
            qmax = fmax(qmax, a->rep_runq.v[i]);
            lmax = fmax(lmax, a->rep_load.v[i]);
        }
        if (a->busy_reps)
            ADD("%sbusy: %d of %d repetitions waited for a CPU more than %.0f%% of the time (up to %.0f%%; "
                "run queue up to %.0f, load %.2f)", len ? "; " : "", a->busy_reps, a->reps,
                100 * c->o.busy_wait, 100 * wmax, qmax, lmax);
        if (a->throttled_reps)
            ADD("%sthrottled: %d of %d repetitions ran below 85%% of the fastest CPU frequency seen",
                len ? "; " : "", a->throttled_reps, a->reps);
        if (a->steal_reps) {
            double smax = 0;
            for (int i = 0; i < a->rep_steal.n; i++) smax = fmax(smax, a->rep_steal.v[i]);
            ADD("%ssteal: %d of %d repetitions lost more than %.0f%% of their CPUs' time to other virtual "
                "machines (up to %.0f%%)", len ? "; " : "", a->steal_reps, a->reps, 100 * c->o.steal_max, 100 * smax);
        }
        if (a->shared_reps) {
            double omax = 0;
            for (int i = 0; i < a->rep_other.n; i++) omax = fmax(omax, a->rep_other.v[i]);
            ADD("%sshared: %d of %d repetitions ran while other processes used more than %.2g CPUs beside them "
                "(up to %.2f)", len ? "; " : "", a->shared_reps, a->reps, c->o.others_max, omax);
        }
        ADD("%sonly %d quiet repetitions (%d needed)", len ? "; " : "", a->quiet_reps, c->o.min_reps);
    } else if (!a->converged && c->ref_exe && a->pair_ratio.n < PAIRED_MIN_PAIRS) {
        ADD("only %d pair(s) of invocations with the reference genome had quiet repetitions on both sides "
            "(%d needed) after %d repetitions", a->pair_ratio.n, PAIRED_MIN_PAIRS, a->reps);
    } else if (!a->converged) {
        ADD("not converged: 95%% interval of the estimate (" SH_DECODE_ESTIMATOR ") +-%.1f%% > tolerance "
            "%.1f%% after %d repetitions (%d quiet)",
            isfinite(a->ci_half_rel) ? 100 * a->ci_half_rel : 999.0, 100 * c->o.tolerance, a->reps, a->quiet_reps);
    }
    if (!c->o.reference) return;
    if (ref_seq < 0 && c->ref_exe) {
        /* paired: the reference measured beside the candidate, against its
         * last quiet reading (one way, as for reference rows below) */
        json_t *quiet = latest_reference(db, c->o.run_id, c->rec->name, true);
        double q = quiet ? num_field(quiet, "decode_ms") : 0, re, lo, hi;
        paired_reference_estimate(a, &re, &lo, &hi);
        if (q > 0 && re > 0 && re / q - 1 > c->o.drift_tol)
            ADD("%sdrift: the reference genome, measured beside it, at %.4g ms, %+.1f%% against its last quiet "
                "value %.4g ms (evaluation %lld)", len ? "; " : "", re, 100 * (re / q - 1), q,
                (long long)json_integer_value(json_object_get(quiet, "eval_id")));
        json_decref(quiet);
    } else if (ref_seq < 0) {
        json_t *latest = latest_reference(db, c->o.run_id, c->rec->name, false);
        const char *st = latest ? json_string_value(json_object_get(latest, "stability")) : NULL;
        if (st && !strcmp(st, "unstable"))
            ADD("%sreference genome unstable (evaluation %lld: %s)", len ? "; " : "",
                (long long)json_integer_value(json_object_get(latest, "eval_id")),
                json_string_value(json_object_get(latest, "reason")));
        json_decref(latest);
    } else {
        /* Drift counts one way.  Interference only adds time, so a reference
         * slower than its last quiet value means the board is slower now; a
         * faster one means it was slower then: it is quiet, becomes the value
         * later references are judged by, and the measurements taken since
         * the references it is faster than are marked (measure_kind).  Judged
         * both ways, one slow first reference made every later one "drift"
         * and the run never measured a trusted figure again.  Its own row's
         * earlier result counts when it is re-measured in place (measure
         * --force): that was the previous reading. */
        json_t *quiet = latest_reference(db, c->o.run_id, c->rec->name, true);
        double q = quiet ? num_field(quiet, "decode_ms") : 0;
        c->sped_from_ms = 0;
        if (q > 0 && res->decode_ms > 0 && res->decode_ms / q - 1 > c->o.drift_tol)
            ADD("%sdrift: reference at %.4g ms, %+.1f%% against its last quiet value %.4g ms (evaluation %lld)",
                len ? "; " : "", res->decode_ms, 100 * (res->decode_ms / q - 1), q,
                (long long)json_integer_value(json_object_get(quiet, "eval_id")));
        else if (q > 0 && res->decode_ms > 0 && 1 - res->decode_ms / q > c->o.drift_tol) {
            c->sped_from_ms = q;
            c->sped_from_eval = json_integer_value(json_object_get(quiet, "eval_id"));
        }
        json_decref(quiet);
    }
#undef ADD
}

static double unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A reference ran faster than the quiet one before it (judge): the board was
 * slower before.  The measurements of this run and device taken since the
 * latest quiet reference that was not slower than this one (beyond the
 * tolerance), up to this reference's start, were taken on that slower board:
 * they are marked unstable with the reason, so none is reused as a cached
 * answer (reports show them as unstable).  res->sped_up_json says what was
 * marked.  Returns 0 or -1. */
static int mark_slower_board(sh_db *db, measure_ctx *c, sh_mrecord *res, sh_err *err)
{
    double after = 0;
    if (sh_db_latest_trusted_at_most(db, c->o.run_id, c->rec->name, "reference",
                                     res->decode_ms * (1 + c->o.drift_tol), &after, err) < 0)
        return -1;
    char reason[320];
    double pct = 100 * (1 - res->decode_ms / c->sped_from_ms);
    snprintf(reason, sizeof reason, "drift: the reference genome measured after it ran %.1f%% faster (%.4g ms) than "
             "the quiet reference before it (%.4g ms, evaluation %lld): measured on a slower board", pct,
             res->decode_ms, c->sped_from_ms, (long long)c->sped_from_eval);
    int64_t ids[64];
    int n = 0;
    if (sh_db_mark_unstable(db, c->o.run_id, c->rec->name, "measure", after, c->started_at, reason, ids, 64, &n,
                            err) < 0)
        return -1;
    json_t *marked = json_array();
    for (int i = 0; i < n && i < 64; i++) json_array_append_new(marked, json_integer(ids[i]));
    json_t *su = json_pack("{s:f,s:I,s:f,s:i,s:o}", "from_ms", c->sped_from_ms, "from_eval",
                           (json_int_t)c->sped_from_eval, "percent", pct, "marked", n, "marked_ids", marked);
    free(res->sped_up_json);
    res->sped_up_json = su ? json_dumps(su, JSON_COMPACT) : NULL;
    json_decref(su);
    if (!res->sped_up_json) return sh_err_set(err, "out of memory");
    if (n) progress(&c->o, "reference on %s ran %.1f%% faster than before: %d measurement%s since marked unstable",
                    c->rec->name, pct, n, n == 1 ? "" : "s");
    return 0;
}

/* Waits for the board to settle before measuring again: sleeps with backoff
 * (cooldown, then doubling) and probes the device's load through its own
 * transport, until the CPUs others use leave the variant's threads free, or
 * settle_max_s have passed.  Returns the seconds waited. */
static double settle(measure_ctx *c, int round, int n_cpus)
{
    double delay = fmax(fmax(c->o.cooldown_s, c->o.backoff_s), 0.05) * (double)(1 << (round < 8 ? round : 8));
    double waited = 0;
    while (waited < c->o.settle_max_s) {
        double d = fmin(delay, c->o.settle_max_s - waited);
        progress(&c->o, "measure %s on %s: doubtful; waiting %.1f s for the board to settle", c->hash,
                 c->rec->name, d);
        sleep_s(d);
        waited += d;
        delay *= 2;
        if (c->o.no_probe || !c->remote[0]) continue;
        sh_err e;
        dev_slot *slot = acquire_device(c->rec, &e);
        if (!slot) break;
        char *pj = NULL;
        int rc = sh_device_probe_with(slot->dev, c->remote, 60, &pj, &e);
        release_device(slot);
        json_t *p = rc == 0 && pj ? json_loads(pj, 0, NULL) : NULL;
        free(pj);
        json_t *load = json_object_get(p, "load");
        double busy = json_is_object(load) ? num_field(load, "busy_cpus") : -1;
        int ncpu = n_cpus > 0 ? n_cpus : (int)num_field(p, "n_cpus");
        json_decref(p);
        if (busy < 0 || ncpu <= 0) continue;            /* load unknown: wait it out */
        int thr = c->threads > 0 ? c->threads : ncpu;
        double limit = fmax(0, ncpu - thr) + 0.25;        /* the variant's CPUs are free */
        if (c->o.others_max >= 0) limit = fmin(limit, fmax(c->o.others_max, 0.25));   /* and no co-runner */
        if (busy <= limit) break;
    }
    return waited;
}

static int measure_kind(sh_db *db, const char *device, const sh_genome *g, const sh_measure_opts *opts,
                        const char *kind, int ref_seq, sh_mrecord *res, sh_err *err)
{
    memset(res, 0, sizeof *res);
    measure_ctx c = {.o = effective(opts), .started_at = unix_now()};
    sh_device_rec rec;
    if (get_device_rec(db, device, &rec, err)) return -1;
    c.rec = &rec;
    c.threads = threads_for(&c.o, &rec);
    sh_hash_hex(sh_genome_hash(g), c.hash);
    uint64_t gguf_bytes = 0;
    if (c.o.gguf && file_fingerprint(c.o.gguf, &gguf_bytes, c.gguf_fnv, err)) return -1;
    char *settings = settings_json(&c.o, &rec, c.threads, ref_seq, gguf_bytes, c.gguf_fnv);
    int64_t id = 0;
    char status[16] = "";
    int rc = -1;
    measure_acc a = {0}, pool = {0};   /* pool: the repetitions of the rounds before this one */
    json_t *reference = NULL;
    char exe_buf[SH_BUILD_PATH_MAX], ref_exe_buf[SH_BUILD_PATH_MAX];
    bool replace = false;     /* an ok row (unstable, or forced) is replaced only by a new result */
    if (!settings) { sh_err_set(err, "out of memory"); goto out; }
    if (sh_db_put_genome(db, g, err) ||
        sh_db_eval_get_or_create(db, c.o.run_id, sh_genome_hash(g), rec.name, kind, settings, &id, status, err))
        goto out;
    res->eval_id = id;
    if (!strcmp(status, "ok")) {
        sh_eval_rec e;
        if (sh_db_get_eval(db, id, &e, err)) goto out;
        bool unstable = !strcmp(e.stability, "unstable");
        if (!unstable && !c.o.force) {
            rc = sh_mrecord_from_json(e.result_json, res, err);
            res->eval_id = id;
            snprintf(res->stability, sizeof res->stability, "%s", e.stability);
            snprintf(res->reason, sizeof res->reason, "%s", e.stability_reason ? e.stability_reason : "");
            sh_eval_rec_free(&e);
            res->cached = true;
            goto out;
        }
        progress(&c.o, "measure %s on %s: stored result is %s; measuring again", c.hash, rec.name,
                 unstable ? "unstable" : "forced out");
        sh_eval_rec_free(&e);
        replace = true;
    }
    if (ref_seq < 0) {
        /* a failed reference measurement is stored as such and does not block
         * the candidate, which is then compared with the latest good reference */
        sh_err rerr;
        if (maybe_reference(db, device, &c.o, &rerr))
            progress(&c.o, "measure %s on %s: %s", c.hash, rec.name, rerr.msg);
    }
    if (c.o.exe_path) {
        c.exe = c.o.exe_path;
    } else {
        sh_build_opts bo = {0};
        progress(&c.o, "building %s for %s", c.hash, rec.target);
        if (sh_build_variant(g, rec.target, &bo, exe_buf, sizeof exe_buf, err)) {
            char msg[SH_ERR_MAX + 32];
            snprintf(msg, sizeof msg, "build failed: %s", err->msg);
            sh_err e2;
            if (!replace && sh_db_eval_mark_running(db, id, &e2) == 0) sh_db_eval_finish_failed(db, id, msg, &e2);
            goto out;
        }
        c.exe = exe_buf;
    }
    if (ref_seq < 0 && c.o.reference && c.o.reference_paired) {
        sh_hash_hex(sh_genome_hash(c.o.reference), c.ref_hash);
        c.ref_exe = c.o.reference_exe_path;
        if (!c.ref_exe) {
            sh_build_opts bo = {0};
            progress(&c.o, "building the reference %s for %s", c.ref_hash, rec.target);
            if (sh_build_variant(c.o.reference, rec.target, &bo, ref_exe_buf, sizeof ref_exe_buf, err)) {
                char msg[SH_ERR_MAX + 48];
                snprintf(msg, sizeof msg, "build of the paired reference failed: %s", err->msg);
                sh_err e2;
                if (!replace && sh_db_eval_mark_running(db, id, &e2) == 0) sh_db_eval_finish_failed(db, id, msg, &e2);
                sh_err_set(err, "%s", msg);
                goto out;
            }
            c.ref_exe = ref_exe_buf;
        }
    }
    sleep_s(c.o.cooldown_s);
    c.rounds_json = json_array();
    char last[SH_ERR_MAX] = "", why[512] = "";
    bool bad_input = false, dropped = false;
    int attempts_made = 0;   /* each attempt pushes under its own remote name */
    for (int round = 0; ; round++) {
        rc = -1;
        /* a settle round adds to the quiet evidence of the rounds before it
         * (disturbed repetitions stay out of the estimate as they are); an
         * attempt that fails goes back to what those rounds had */
        acc_free(&pool);
        if (acc_copy(&pool, &a)) { sh_err_set(err, "out of memory"); goto out; }
        int round_start = a.reps;
        for (int att = 0; att <= c.o.retries; att++) {
            if (att) {
                double wait = c.o.backoff_s * (double)(1 << (att - 1 < 10 ? att - 1 : 10));
                /* a dropped connection: give the board time to notice and end the
                 * old session (its programs die with it) before reconnecting */
                if (dropped && wait < 2) wait = 2;
                progress(&c.o, "measure %s on %s: attempt %d failed (%s); retrying in %.1f s", c.hash,
                         rec.name, att, last, wait);
                sleep_s(wait);
            }
            if (!replace && sh_db_eval_mark_running(db, id, err)) goto out;
            acc_free(&a);
            if (acc_copy(&a, &pool)) { sh_err_set(err, "out of memory"); goto out; }
            dev_slot *slot = acquire_device(&rec, err);
            if (!slot) { snprintf(last, sizeof last, "%s", err->msg); break; }   /* bad record: no retry */
            c.dev = slot->dev;
            c.attempt_no = attempts_made++;
            int arc = attempt(&c, &a, err);
            release_device(slot);
            c.dev = NULL;
            if (arc == 0) { rc = 0; break; }
            snprintf(last, sizeof last, "%s", err->msg);
            if (arc == BAD_INPUT) { bad_input = true; break; }
            dropped = arc == SH_DEV_ETRANSPORT;
        }
        if (rc && round > 0) {
            /* a settle round that failed does not undo the rounds before it:
             * their (doubtful) result is stored as unstable, with both reasons */
            acc_free(&a);
            if (acc_copy(&a, &pool)) { sh_err_set(err, "out of memory"); goto out; }
            size_t wl = strlen(why);
            snprintf(why + wl, sizeof why - wl, "; the re-measurement failed (%s)", last);
            rc = 0;
            break;
        }
        if (rc) break;
        res->rounds = round + 1;
        estimate(&a, &res->decode_ms, &res->decode_ms_low, &res->decode_ms_high);
        judge(db, &c, &a, res, ref_seq, why, sizeof why);
        int round_quiet = 0;
        for (int i = round_start; i < a.rep_quiet.n; i++) round_quiet += a.rep_quiet.v[i] > 0;
        /* decode_ms, reps, quiet_reps: the pool after this round; round_*: this round's own */
        json_array_append_new(c.rounds_json,
                              json_pack("{s:f,s:f,s:i,s:i,s:i,s:i,s:b,s:s}", "decode_ms", res->decode_ms,
                                        "decode_ms_median", a.median, "reps", a.reps, "quiet_reps", a.quiet_reps,
                                        "round_reps", a.reps - round_start, "round_quiet_reps", round_quiet,
                                        "converged", a.converged, "doubtful", why));
        if (!why[0] || round >= c.o.settle_rounds) break;
        progress(&c.o, "measure %s on %s: doubtful (%s)", c.hash, rec.name, why);
        settle(&c, round, a.n_cpus);
        if (c.o.reference && ref_seq < 0 && strstr(why, "reference genome unstable")) {
            /* the unstable reference is not reused: this measures it again */
            sh_mrecord rr;
            sh_measure_opts ro = c.o;
            ro.exe_path = c.o.reference_exe_path;
            int cnt = 0;
            sh_err rerr;
            if (sh_db_count_ok_evals(db, c.o.run_id, rec.name, "measure", &cnt, &rerr) == 0 &&
                c.o.reference_every > 0 &&
                measure_kind(db, device, c.o.reference, &ro, "reference", cnt / c.o.reference_every, &rr, &rerr) == 0)
                sh_mrecord_free(&rr);
        }
    }
    if (rc == 0) {
        if (why[0]) {
            snprintf(res->stability, sizeof res->stability, "unstable");
            snprintf(res->reason, sizeof res->reason, "%s (after %d measurement%s)", why, res->rounds,
                     res->rounds > 1 ? "s" : "");
        } else if (a.quiet_reps < a.reps) {
            snprintf(res->stability, sizeof res->stability, "disturbed");
            snprintf(res->reason, sizeof res->reason,
                     "%d of %d repetitions disturbed (busy %d, throttled %d, steal %d, shared %d) and left out "
                     "of the estimate", a.reps - a.quiet_reps, a.reps, a.busy_reps, a.throttled_reps, a.steal_reps,
                     a.shared_reps);
        } else {
            snprintf(res->stability, sizeof res->stability, "quiet");
        }
        reference = ref_seq < 0 && c.o.reference ? latest_reference(db, c.o.run_id, rec.name, false) : NULL;
        if (!reference && c.ref_exe) reference = json_object();   /* no reference row yet: the pairs alone */
        if (ref_seq >= 0) set_reference_anchor(db, &c, res);
        /* a reference that shows the board was slower before marks what was measured then */
        bool marked = !(ref_seq >= 0 && !why[0] && c.sped_from_ms > 0) || mark_slower_board(db, &c, res, err) == 0;
        int n_s = 0;
        sh_sample *samples = make_samples(&a, &n_s);
        char *result = build_result(&c, &a, settings, reference, res);
        if (!marked) rc = -1;
        else if (!samples || !result) rc = sh_err_set(err, "out of memory");
        else rc = sh_db_eval_finish_measured(db, id, result, samples, n_s, res->stability, res->reason, replace, err);
        free(samples);
        free(result);
        record_health(db, &rec, rc == 0);
        if (rc == 0 && !rec.topology_json && a.probe_before) {
            /* first measurement on a device never probed: keep what the variant saw */
            sh_err terr;
            sh_db_set_device_topology(db, rec.name, a.probe_before, &terr);
        }
    } else {
        char msg[SH_ERR_MAX + 64];
        if (bad_input) snprintf(msg, sizeof msg, "not retried: %s", last);
        else snprintf(msg, sizeof msg, "after %d attempt(s): %s", c.o.retries + 1, last);
        sh_err e2;
        /* a stored (unstable or forced-out) result stays until a new one replaces it */
        if (!replace) sh_db_eval_finish_failed(db, id, msg, &e2);
        if (!bad_input) record_health(db, &rec, false);
        sh_err_set(err, "measure %s on %s failed %s", c.hash, rec.name, msg);
    }
out:
    json_decref(reference);
    json_decref(c.rounds_json);
    acc_free(&a);
    acc_free(&pool);
    free(settings);
    sh_device_rec_free(&rec);
    if (rc) {
        sh_mrecord_free(res);
        res->eval_id = id;
    }
    return rc;
}


int sh_measure_genome(sh_db *db, const char *device, const sh_genome *g, const sh_measure_opts *opts,
                      sh_mrecord *res, sh_err *err)
{
    if (!db || !device || !g || !res) return sh_err_set(err, "measure: missing argument");
    if (sh_genome_validate(g, err)) return sh_err_prefix(err, "measure");
    sh_measure_opts o = effective(opts);
    int fixed_warmup = o.decode_warmup > 0 ? o.decode_warmup : 0;   /* auto fits in what is left */
    long long need = (long long)o.depth + o.prompt + fixed_warmup + o.gen;
    if (need > g->max_context)
        return sh_err_set(err, "measure: depth %d + prompt %d + decode warm-up %d + gen %d = %lld tokens exceed "
                          "the genome's max context %d", o.depth, o.prompt, fixed_warmup, o.gen, need, g->max_context);
    return measure_kind(db, device, g, opts, "measure", -1, res, err);
}

/* ---- interleaved comparison ------------------------------------------------------------ */

void sh_ratio_ci_free(sh_ratio_ci *r)
{
    if (!r) return;
    free(r->round_ratio);
    free(r->round_t_s);
    r->round_ratio = r->round_t_s = NULL;
}

/* Widens a ratio's within-run 95% interval by a between-run component: a
 * run-level effect on the log ratio with standard deviation sd (what varies
 * between runs of the same compare and is shared by the rounds of one run:
 * drift of the host on a minutes timescale, placement of the process).  On
 * the log scale each side's half-width h becomes sqrt(h^2 + (1.96 sd)^2). */
void sh_compare_widen(sh_ratio_ci *r, double sd)
{
    if (!(sd > 0) || !(r->est > 0) || !(r->lo > 0) || !(r->hi > 0)) return;
    double l = log(r->est), z = 1.959964 * sd;
    double hl = l - log(r->lo), hh = log(r->hi) - l;
    r->lo = exp(l - sqrt(hl * hl + z * z));
    r->hi = exp(l + sqrt(hh * hh + z * z));
}

double sh_between_run_sd(const char *const *key, const double *x, const double *se, int n, double prior_sd,
                         double prior_dof, int *dof_out)
{
    assert(n >= 0 && prior_sd >= 0 && prior_dof >= 0);
    double ss = 0, se2 = 0;
    int dof = 0, used = 0;
    for (int i = 0; i < n; i++) {
        bool first = true;   /* each group is summed once, at its first run */
        for (int j = 0; j < i && first; j++) first = strcmp(key[j], key[i]) != 0;
        if (!first) continue;
        double sum = 0;
        int m = 0;
        for (int j = i; j < n; j++)
            if (!strcmp(key[j], key[i]) && isfinite(x[j])) { sum += x[j]; m++; }
        if (m < 2) continue;
        double mean = sum / m;
        for (int j = i; j < n; j++)
            if (!strcmp(key[j], key[i]) && isfinite(x[j])) {
                ss += (x[j] - mean) * (x[j] - mean);
                se2 += isfinite(se[j]) ? se[j] * se[j] : 0;
                used++;
            }
        dof += m - 1;
    }
    double est2 = dof > 0 ? fmax(0, ss / dof - se2 / used) : 0;
    if (dof_out) *dof_out = dof;
    if (prior_dof + dof <= 0) return prior_sd;
    return sqrt((prior_dof * prior_sd * prior_sd + dof * est2) / (prior_dof + dof));
}

static void ratio_ci(const double *x, const double *t, int n, sh_ratio_ci *out)
{
    memset(out, 0, sizeof *out);
    out->n = n;
    out->est = out->lo = out->hi = NAN;
    out->coverage = sh_median_ci_coverage(n);
    if (n > 0) sh_median_ci(x, n, &out->est, &out->lo, &out->hi);
    out->round_ratio = malloc((size_t)(n ? n : 1) * sizeof *out->round_ratio);
    out->round_t_s = malloc((size_t)(n ? n : 1) * sizeof *out->round_t_s);
    if (!out->round_ratio || !out->round_t_s) { sh_ratio_ci_free(out); return; }
    memcpy(out->round_ratio, x, (size_t)n * sizeof *x);
    memcpy(out->round_t_s, t, (size_t)n * sizeof *t);
}

int sh_measure_interleaved(sh_db *db, const char *device, const sh_genome *g, int n, const sh_measure_opts *opts,
                           const char *const *gguf, int rounds, sh_mrecord *res, sh_ratio_ci *decode_speed,
                           sh_ratio_ci *prefill_speed, int *order, sh_err *err)
{
    if (!db || !device || !g || !res || n < 2 || n > 32) return sh_err_set(err, "compare: need 2 to 32 genomes");
    if (opts && opts->gguf) return sh_err_set(err, "compare: a GGUF file holds one genome's weights: give one per genome (gguf[i])");
    if (rounds <= 0) rounds = 6;
    if (rounds > 1000) rounds = 1000;
    sh_device_rec rec;
    if (get_device_rec(db, device, &rec, err)) return -1;
    measure_ctx *c = calloc((size_t)n, sizeof *c);
    measure_acc *a = calloc((size_t)n, sizeof *a);
    char (*exe)[SH_BUILD_PATH_MAX] = calloc((size_t)n, sizeof *exe);
    double *est = calloc((size_t)n * (size_t)rounds, sizeof *est);     /* [round][genome] decode ms */
    double *pre = calloc((size_t)n * (size_t)rounds, sizeof *pre);     /* [round][genome] prefill ms */
    double *ratios = calloc((size_t)rounds, sizeof *ratios);
    double *round_t = calloc((size_t)rounds, sizeof *round_t), *ratio_t = calloc((size_t)rounds, sizeof *ratio_t);
    int rc = -1;
    dev_slot *slot = NULL;
    if (!c || !a || !exe || !est || !pre || !ratios || !round_t || !ratio_t) { sh_err_set(err, "out of memory"); goto out; }
    for (int i = 0; i < n; i++) {
        c[i].o = effective(opts);
        c[i].rec = &rec;
        c[i].threads = threads_for(&c[i].o, &rec);
        sh_hash_hex(sh_genome_hash(&g[i]), c[i].hash);
        if (gguf && gguf[i]) {
            uint64_t bytes;
            c[i].o.gguf = gguf[i];
            if (file_fingerprint(gguf[i], &bytes, c[i].gguf_fnv, err)) { sh_err_prefix(err, "compare"); goto out; }
        }
        if (sh_genome_validate(&g[i], err)) { sh_err_prefix(err, "compare"); goto out; }
        long long need = (long long)c[i].o.depth + c[i].o.prompt + c[i].o.gen +
                         (c[i].o.decode_warmup > 0 ? c[i].o.decode_warmup : 0);
        if (need > g[i].max_context) {
            sh_err_set(err, "compare: genome %s: %lld tokens exceed its max context %d", c[i].hash, need, g[i].max_context);
            goto out;
        }
        sh_build_opts bo = {0};
        progress(&c[i].o, "building %s for %s", c[i].hash, rec.target);
        if (sh_build_variant(&g[i], rec.target, &bo, exe[i], sizeof exe[i], err)) goto out;
        c[i].exe = exe[i];
    }
    slot = acquire_device(&rec, err);
    if (!slot) goto out;
    for (int i = 0; i < n; i++) {
        char name[64];
        c[i].dev = slot->dev;
        snprintf(name, sizeof name, "variant-%s", c[i].hash);
        if (sh_device_push(slot->dev, c[i].exe, name, c[i].remote, sizeof c[i].remote, err)) goto out;
        if (c[i].o.gguf) {   /* named by its contents, as measure names it */
            snprintf(name, sizeof name, "model-%s.gguf", c[i].gguf_fnv);
            progress(&c[i].o, "pushing %s", c[i].o.gguf);
            if (sh_device_push(slot->dev, c[i].o.gguf, name, c[i].gguf_remote, sizeof c[i].gguf_remote, err)) goto out;
        }
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < rounds; r++) {
        struct timespec tr;
        clock_gettime(CLOCK_MONOTONIC, &tr);
        round_t[r] = (double)(tr.tv_sec - t0.tv_sec) + (tr.tv_nsec - t0.tv_nsec) / 1e9;
        for (int k = 0; k < n; k++) {
            int i = r % 2 ? n - 1 - k : k;          /* A B, B A, A B, ... */
            if (order) order[r * n + k] = i;
            sh_bench_out b;
            next_pin(&c[i]);
            if (run_bench(&c[i], c[i].remote, c[i].hash, c[i].o.gguf ? c[i].gguf_remote : NULL, c[i].o.reps_per_run,
                          &b, err)) {
                sh_err_prefix(err, "compare %s on %s", c[i].hash, rec.name);
                goto out;
            }
            /* this invocation alone: its own robust estimate */
            int quiet;
            if (invocation_estimate(&c[i], &b, &est[r * n + i], &quiet, NULL)) {
                sh_bench_out_free(&b);
                sh_err_set(err, "out of memory");
                goto out;
            }
            double *pm = malloc((size_t)(b.n_prefill ? b.n_prefill : 1) * sizeof *pm);
            if (pm && b.n_prefill) {
                memcpy(pm, b.prefill_ms, (size_t)b.n_prefill * sizeof *pm);
                double m, l2, h2;
                sh_median_ci(pm, b.n_prefill, &m, &l2, &h2);
                pre[r * n + i] = m;
            }
            free(pm);
            double qm, half;
            if (acc_add(&c[i], &a[i], &b, &qm, &half, NULL, err)) goto out;
            progress(&c[i].o, "compare round %d/%d: %s %.3f ms/token", r + 1, rounds, c[i].hash, est[r * n + i]);
        }
    }
    for (int i = 0; i < n; i++) {
        sh_mrecord *x = &res[i];
        memset(x, 0, sizeof *x);
        estimate(&a[i], &x->decode_ms, &x->decode_ms_low, &x->decode_ms_high);
        snprintf(x->estimator, sizeof x->estimator, "%s", SH_DECODE_ESTIMATOR);
        snprintf(x->estimator_ci_method, sizeof x->estimator_ci_method, "%s", SH_DECODE_CI_METHOD);
        x->decode_ms_median = a[i].median;
        x->decode_ci_low = a[i].lo;
        x->decode_ci_high = a[i].hi;
        x->decode_tok_s = x->decode_ms > 0 ? 1000.0 / x->decode_ms : 0;
        double pm = median_of(&a[i].prefill);
        x->prefill_tok_s = pm > 0 ? c[i].o.prompt * 1000.0 / pm : 0;
        x->ttft_ms = median_of(&a[i].ttft);
        for (int j = 0; j < a[i].rss.n; j++) x->peak_rss_bytes = fmax(x->peak_rss_bytes, a[i].rss.v[j]);
        x->weight_bytes = a[i].weight_bytes;
        x->kv_bytes = a[i].kv_bytes;
        x->conv_state_bytes = a[i].conv_state_bytes;
        x->reps = a[i].reps;
        x->quiet_reps = a[i].quiet_reps;
        x->disturbed_reps = a[i].reps - a[i].quiet_reps;
        x->busy_reps = a[i].busy_reps;
        x->throttled_reps = a[i].throttled_reps;
        x->steal_reps = a[i].steal_reps;
        x->shared_reps = a[i].shared_reps;
        x->busy_wait = c[i].o.busy_wait;       /* the limits the repetitions were judged by */
        x->steal_max = c[i].o.steal_max;
        x->others_max = c[i].o.others_max;
        x->converged = a[i].quiet_reps >= c[i].o.min_reps && a[i].ci_half_rel <= c[i].o.tolerance;
        x->rounds = rounds;
        if (a[i].quiet_reps < c[i].o.min_reps) {
            snprintf(x->stability, sizeof x->stability, "unstable");
            snprintf(x->reason, sizeof x->reason,
                     "only %d quiet of %d repetitions (busy %d, throttled %d, steal %d, shared %d)", a[i].quiet_reps,
                     a[i].reps, a[i].busy_reps, a[i].throttled_reps, a[i].steal_reps, a[i].shared_reps);
        } else if (a[i].quiet_reps < a[i].reps) {
            snprintf(x->stability, sizeof x->stability, "disturbed");
            snprintf(x->reason, sizeof x->reason, "%d of %d repetitions disturbed and left out",
                     a[i].reps - a[i].quiet_reps, a[i].reps);
        } else {
            snprintf(x->stability, sizeof x->stability, "quiet");
        }
        int m = 0;
        for (int r = 0; r < rounds; r++)
            if (est[r * n] > 0 && est[r * n + i] > 0) { ratio_t[m] = round_t[r]; ratios[m++] = est[r * n] / est[r * n + i]; }
        ratio_ci(ratios, ratio_t, m, &decode_speed[i]);
        m = 0;
        for (int r = 0; r < rounds; r++)
            if (pre[r * n] > 0 && pre[r * n + i] > 0) { ratio_t[m] = round_t[r]; ratios[m++] = pre[r * n] / pre[r * n + i]; }
        ratio_ci(ratios, ratio_t, m, &prefill_speed[i]);
    }
    rc = 0;
out:
    if (slot) release_device(slot);
    if (a) for (int i = 0; i < n; i++) acc_free(&a[i]);
    free(a); free(c); free(exe); free(est); free(pre); free(ratios); free(round_t); free(ratio_t);
    sh_device_rec_free(&rec);
    return rc;
}
