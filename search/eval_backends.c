/* eval_backends.c - calls into devices/measure.h and
 * evaluator/capability/score.h for the search (see eval_backends.h). */
#include "search/eval_backends.h"

#include <math.h>
#include <string.h>

#include "devices/measure.h"
#if defined(__has_include)
#if __has_include("evaluator/capability/score.h")
#include "evaluator/capability/score.h"
#define SH_HAVE_SCORER 1
#endif
#endif

int sh_search_backend_measure(sh_db *db, const char *device, const sh_genome *g,
                              const sh_search_measure *m, int64_t run_id,
                              double values[SH_OBJ_KIND_COUNT], sh_err *err)
{
    sh_measure_opts o;
    memset(&o, 0, sizeof o);
    o.prompt = m->prompt;
    o.gen = m->gen;
    o.threads = m->threads;
    o.wtype = m->wtype[0] ? m->wtype : NULL;
    o.max_reps = m->reps;
    o.run_id = run_id;
    sh_measure_result r;
    memset(&r, 0, sizeof r);
    if (sh_measure_genome(db, device, g, &o, &r, err) < 0)
        return -1;
    values[SH_OBJ_DECODE_MS] = r.decode_ms_median;
    values[SH_OBJ_TTFT_MS] = r.ttft_ms;
    values[SH_OBJ_PREFILL_MS] = r.prefill_tok_s > 0 ? 1e3 * (m->prompt > 0 ? m->prompt : 512) / r.prefill_tok_s : NAN;
    values[SH_OBJ_PEAK_BYTES] = r.peak_rss_bytes;
    sh_measure_result_free(&r);
    return 0;
}

#ifdef SH_HAVE_SCORER
int sh_search_backend_has_scorer(void) { return 1; }

int sh_search_backend_score(sh_db *db, const sh_genome *g, const sh_search_score *sc, int rung, double *aggregate,
                            sh_err *err)
{
    sh_score_opts o;
    sh_score_opts_default(&o);
    o.threads = sc->threads > 0 ? sc->threads : 1;
    if (sc->tasks[0])
        o.tasks = sc->tasks;
    if (sc->size_factor > 0)
        o.size_factor = sc->size_factor;
    if (sc->scale > 0)
        o.scale = sc->scale;
    if (sc->tokens > 0)
        o.tokens = sc->tokens;
    if (sc->rung > 0)
        o.rung = sc->rung - 1;
    if (rung >= 0)
        o.rung = rung;
    if (sc->state_dir[0])
        o.state_dir = sc->state_dir;
    sh_score_rec rec;
    memset(&rec, 0, sizeof rec);
    int rc = sh_score_genome(db, g, sc->spec, &o, &rec, err);
    if (rc == 0 && strcmp(rec.status, "ok") != 0)
        rc = sh_err_set(err, "scorer %s: %s", sc->spec, rec.error ? rec.error : "failed");
    if (rc == 0)
        *aggregate = rec.aggregate;
    sh_score_rec_free(&rec);
    return rc;
}
#else
int sh_search_backend_has_scorer(void) { return 0; }

int sh_search_backend_score(sh_db *db, const sh_genome *g, const sh_search_score *sc, int rung, double *aggregate,
                            sh_err *err)
{
    (void)db; (void)g; (void)aggregate; (void)rung;
    return sh_err_set(err, "scorer %s: the capability module is not part of this build", sc->spec);
}
#endif

int sh_search_backend_ensure_local(sh_db *db, sh_err *err)
{
    return sh_device_ensure_local(db, err);
}

void sh_search_backend_shutdown(void)
{
    sh_measure_shutdown();
}
