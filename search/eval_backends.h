/* eval_backends.h - the search's bridge to the modules that measure and score:
 * measure/measure.h (latency and memory on a device) and
 * evaluator/capability/score.h (capability).  Kept apart so the rest of the
 * search depends only on these two calls. */
#ifndef SH_SEARCH_EVAL_BACKENDS_H
#define SH_SEARCH_EVAL_BACKENDS_H

#include <stdint.h>

#include "genome/genome.h"
#include "runs/runs.h"
#include "search/evaluate.h"

/* The measurement options a search uses for m (the rest: measure.h's defaults;
 * o->reference is left NULL: sh_search_backend_measure parses m->reference). */
struct sh_measure_opts;
void sh_search_measure_opts(const sh_search_measure *m, int64_t run_id, struct sh_measure_opts *o);

/* Measures g on device; fills values[SH_OBJ_DECODE_MS .. SH_OBJ_PEAK_BYTES]
 * (other entries untouched).  The measurement is stored by the devices module
 * under run_id; *eval_id (may be NULL) gets its evaluation, also when it
 * fails as unstable (0 if none was stored). */
int sh_search_backend_measure(sh_db *db, const char *device, const sh_genome *g,
                              const sh_search_measure *m, int64_t run_id,
                              double values[SH_OBJ_KIND_COUNT], int64_t *eval_id, sh_err *err);

/* Capability aggregate (higher is better) of g with the scorer spec, at
 * rung (0..2; -1 = sc's rung). */
int sh_search_backend_score(sh_db *db, const sh_genome *g, const sh_search_score *sc, int rung, double *aggregate,
                            sh_err *err);

/* Successive halving's training states (sc->state_dir): the step rung would
 * continue g's proxy from (0 = from scratch; if that rung's score is stored
 * already, the step it continued from on the ladder), and removing g's states once it
 * can no longer be promoted (returns the files removed, or -1). */
int sh_search_backend_state_step(sh_db *db, const sh_genome *g, const sh_search_score *sc, int rung, int *step,
                                 sh_err *err);
int sh_search_backend_drop_state(const sh_genome *g, const sh_search_score *sc, sh_err *err);

/* Scoring through a cluster executor (sc->exec.kind == SH_EXEC_SLURM):
 * open once per run (db used by the calling thread only), add candidates,
 * step until none is open; fn gets each final outcome.  Returns like
 * sh_cluster_step (open count, or -1). */
typedef void (*sh_search_cluster_fn)(void *ctx, void *tag, bool ok, double aggregate, const char *error);
int sh_search_backend_cluster_open(sh_db *db, const sh_search_score *sc, int64_t run_id, void **out, sh_err *err);
/* rung: 0..2, or -1 = sc's rung; the job sees sc->state_dir (halving). */
int sh_search_backend_cluster_add(void *cl, const sh_genome *g, const sh_search_score *sc, int rung, void *tag,
                                  sh_err *err);
int sh_search_backend_cluster_step(void *cl, sh_search_cluster_fn fn, void *ctx, sh_search_jobs *jobs, sh_err *err);
int sh_search_backend_cluster_cancel(void *cl, sh_err *err);
double sh_search_backend_cluster_poll(void *cl);
void sh_search_backend_cluster_close(void *cl);

/* Creates the implicit local device if missing. */
int sh_search_backend_ensure_local(sh_db *db, sh_err *err);

/* Releases device sessions at the end of a search. */
void sh_search_backend_shutdown(void);

#endif
