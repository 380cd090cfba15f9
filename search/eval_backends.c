/* eval_backends.c - calls into measure/measure.h and
 * evaluator/capability/score.h for the search (see eval_backends.h). */
#include "search/eval_backends.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "measure/measure.h"
#include "evaluator/capability/score.h"

/* This host's CPUs, caches and memory bandwidth: the built-in scorer trains
 * on them and a local device measures on them.  Training beside a measurement
 * slows it without making its threads wait for a CPU (shared caches and
 * memory), so the repetitions scatter and the figure does not converge: a
 * default search on an idle 2-core VM stored 9 of 48 measurements unstable
 * that way, none without the scorer.  Trainings share the host among
 * themselves (read lock); a local measurement has it alone (write lock,
 * preferred, so a stream of trainings cannot starve it). */
static pthread_rwlock_t host_lock;
static pthread_once_t host_lock_once = PTHREAD_ONCE_INIT;

static void host_lock_init(void)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&host_lock, &a);
    pthread_rwlockattr_destroy(&a);
}

/* True if measuring on device runs on this host's CPUs (a local device). */
static bool measures_on_host(sh_db *db, const char *device)
{
    sh_device_rec d;
    sh_err ignored = {{0}};
    memset(&d, 0, sizeof d);
    if (sh_db_get_device(db, device, &d, &ignored) != 0) return !strcmp(device, "local");
    bool local = !strcmp(d.kind, "local");
    sh_device_rec_free(&d);
    return local;
}

void sh_search_measure_opts(const sh_search_measure *m, int64_t run_id, sh_measure_opts *o)
{
    memset(o, 0, sizeof *o);
    o->prompt = m->prompt;
    o->gen = m->gen;
    o->threads = m->threads;
    o->wtype = m->wtype[0] ? m->wtype : NULL;
    o->max_reps = m->reps;
    o->tolerance = m->tolerance;
    o->run_id = run_id;
    o->settle_rounds = m->settle_rounds;
    o->settle_max_s = m->settle_max_s;
    o->busy_wait = m->busy_wait;
    o->steal_max = m->steal_max;
    o->others_max = m->others_max;
    o->decode_warmup = m->decode_warmup;
    o->reference_every = m->reference[0] ? m->reference_every : 0;
    o->reference_paired = m->reference[0] && m->reference_paired;
    o->drift_tol = m->drift_tol;
    o->progress = m->progress;
    o->progress_ctx = m->progress_ctx;
}

int sh_search_backend_measure(sh_db *db, const char *device, const sh_genome *g,
                              const sh_search_measure *m, int64_t run_id,
                              double values[SH_OBJ_KIND_COUNT], int64_t *eval_id, sh_err *err)
{
    if (eval_id) *eval_id = 0;
    sh_measure_opts o;
    sh_search_measure_opts(m, run_id, &o);
    sh_genome *reference = NULL;
    if (m->reference[0]) {
        if (!(reference = malloc(sizeof *reference)))
            return sh_err_set(err, "search --reference: out of memory");
        if (sh_genome_parse(m->reference, reference, err) < 0) {
            free(reference);
            return sh_err_prefix(err, "search --reference");
        }
        o.reference = reference;
    }
    sh_mrecord r;
    memset(&r, 0, sizeof r);
    pthread_once(&host_lock_once, host_lock_init);
    bool alone = measures_on_host(db, device);
    if (alone) pthread_rwlock_wrlock(&host_lock);
    int mrc = sh_measure_genome(db, device, g, &o, &r, err);
    if (alone) pthread_rwlock_unlock(&host_lock);
    free(reference);
    if (eval_id) *eval_id = r.eval_id;
    if (mrc < 0)
        return -1;
    if (!strcmp(r.stability, "unstable") && !m->accept_unstable) {
        /* a doubtful figure is not ranked: the candidate fails with the reason */
        sh_err_set(err, "measurement unstable (evaluation %lld: %s); search --accept-unstable ranks with it",
                   (long long)r.eval_id, r.reason);
        sh_mrecord_free(&r);
        return -1;
    }
    /* the robust estimate (measure/measure.h, docs/devices.md), not the median;
     * with a reference, normalized by it: the board's own speed wanders between
     * measurements (docs/devices.md "Evidence"), the reference moves with it */
    values[SH_OBJ_DECODE_MS] = sh_mrecord_decode_ms(&r);
    if (m->reference[0] && !m->rank_absolute) {
        double norm = sh_mrecord_decode_ms_normalized(&r);
        if (!(norm > 0) && !m->accept_unstable) {
            sh_err_set(err, "measurement %lld has no figure normalized by the reference genome (no trusted reference "
                       "reading before it); search --rank-absolute ranks with decode_ms as measured",
                       (long long)r.eval_id);
            sh_mrecord_free(&r);
            return -1;
        }
        if (norm > 0) values[SH_OBJ_DECODE_MS] = norm;
    }
    values[SH_OBJ_TTFT_MS] = r.ttft_ms;
    values[SH_OBJ_PREFILL_MS] = sh_mrecord_prefill_ms(&r, m->prompt);
    values[SH_OBJ_PEAK_BYTES] = r.peak_rss_bytes;
    sh_mrecord_free(&r);
    return 0;
}

static void search_score_opts(const sh_search_score *sc, sh_score_opts *o)
{
    sh_score_opts_default(o);
    o->threads = sc->threads > 0 ? sc->threads : 1;
    if (sc->tasks[0])
        o->tasks = sc->tasks;
    if (sc->size_factor > 0)
        o->size_factor = sc->size_factor;
    if (sc->scale > 0)
        o->scale = sc->scale;
    if (sc->tokens > 0)
        o->tokens = sc->tokens;
    if (sc->rung > 0)
        o->rung = sc->rung - 1;
    if (sc->state_dir[0])
        o->state_dir = sc->state_dir;
    o->progress = sc->progress;
    o->progress_ctx = sc->progress_ctx;
}

int sh_search_backend_cluster_open(sh_db *db, const sh_search_score *sc, int64_t run_id, void **out, sh_err *err)
{
    sh_cluster *c;
    if (sh_cluster_open(db, &sc->exec, run_id, &c, err) < 0)
        return -1;
    *out = c;
    return 0;
}

int sh_search_backend_cluster_add(void *cl, const sh_genome *g, const sh_search_score *sc, int rung, void *tag,
                                  sh_err *err)
{
    sh_score_opts o;
    search_score_opts(sc, &o);
    if (rung >= 0)
        o.rung = rung;
    return sh_cluster_add(cl, g, sc->spec, &o, tag, err);
}

typedef struct cluster_relay {
    sh_search_cluster_fn fn;
    void *ctx;
} cluster_relay;

static void relay_done(void *ctx, void *tag, const sh_score_rec *rec)
{
    cluster_relay *r = ctx;
    bool ok = !strcmp(rec->status, "ok");
    r->fn(r->ctx, tag, ok, rec->aggregate, ok ? NULL : (rec->error ? rec->error : "failed"));
}

int sh_search_backend_cluster_step(void *cl, sh_search_cluster_fn fn, void *ctx, sh_search_jobs *jobs, sh_err *err)
{
    cluster_relay r = {fn, ctx};
    int open = sh_cluster_step(cl, relay_done, &r, err);
    sh_cluster_counts k;
    sh_cluster_counts_get(cl, &k);
    jobs->active = true;
    jobs->waiting = k.waiting;
    jobs->pending = k.pending;
    jobs->running = k.running;
    jobs->done = k.done;
    jobs->failed = k.failed;
    jobs->resubmitted = k.resubmitted;
    return open;
}

int sh_search_backend_cluster_cancel(void *cl, sh_err *err) { return sh_cluster_cancel(cl, err); }

double sh_search_backend_cluster_poll(void *cl) { return sh_cluster_poll_interval(cl); }

void sh_search_backend_cluster_close(void *cl) { sh_cluster_close(cl); }

int sh_search_backend_score(sh_db *db, const sh_genome *g, const sh_search_score *sc, int rung, double *aggregate,
                            sh_err *err)
{
    sh_score_opts o;
    search_score_opts(sc, &o);
    if (rung >= 0)
        o.rung = rung;
    sh_score_rec rec;
    memset(&rec, 0, sizeof rec);
    pthread_once(&host_lock_once, host_lock_init);
    bool on_host = !strncmp(sc->spec, "builtin", 7);   /* trains in this process */
    if (on_host) pthread_rwlock_rdlock(&host_lock);
    int rc = sh_score_genome(db, g, sc->spec, &o, &rec, err);
    if (on_host) pthread_rwlock_unlock(&host_lock);
    if (rc == 0 && strcmp(rec.status, "ok") != 0)
        rc = sh_err_set(err, "scorer %s: %s", sc->spec, rec.error ? rec.error : "failed");
    if (rc == 0)
        *aggregate = rec.aggregate;
    sh_score_rec_free(&rec);
    return rc;
}

int sh_search_backend_state_step(sh_db *db, const sh_genome *g, const sh_search_score *sc, int rung, int *step,
                                 sh_err *err)
{
    sh_score_opts o;
    search_score_opts(sc, &o);
    o.rung = rung;
    /* scored already, or a job of it submitted (a resumed batch): its state
     * is gone or moved on, the ladder says where it continued from */
    char *params = sh_score_params_json(g, sc->spec, &o, err);
    if (!params)
        return -1;
    char name[128];
    sh_score_scorer_name(sc->spec, name, sizeof name);
    sh_score_rec prev;
    sh_err ferr = {{0}};
    bool stored = false;
    if (sh_db_find_score(db, sh_genome_hash(g), name, sh_score_version(sc->spec), params, &prev, &ferr) == 0) {
        stored = !strcmp(prev.status, "ok");
        sh_score_rec_free(&prev);
    }
    if (!stored && !ferr.msg[0] && sc->exec.kind != SH_EXEC_LOCAL) {
        /* a batch job of this rung was submitted before (a coordinator killed
         * meanwhile): it continued from the state it found then, whatever
         * it left in the directory since */
        sh_job_rec *rows;
        int n = 0;
        if (sh_db_job_list_key(db, sh_genome_hash(g), name, sh_score_version(sc->spec), params, &rows, &n, &ferr) == 0) {
            for (int i = 0; i < n; i++)
                stored |= strcmp(rows[i].state, "cancelled") != 0 || rows[i].job_id[0] != 0;
            sh_job_recs_free(rows, n);
        }
    }
    free(params);
    if (ferr.msg[0]) {
        *err = ferr;
        return -1;
    }
    return stored ? sh_score_ladder_step(g, sc->spec, &o, step, err) : sh_score_state_step(g, sc->spec, &o, step, err);
}

int sh_search_backend_drop_state(const sh_genome *g, const sh_search_score *sc, sh_err *err)
{
    sh_score_opts o;
    search_score_opts(sc, &o);
    return sh_score_drop_state(g, sc->spec, &o, err);
}

int sh_search_backend_ensure_local(sh_db *db, sh_err *err)
{
    return sh_device_ensure_local(db, err);
}

void sh_search_backend_shutdown(void)
{
    sh_measure_shutdown();
}
