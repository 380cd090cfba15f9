/* moea.c - the generic evolutionary engine: generation 0, offspring by
 * tournament + crossover + mutation + repair with duplicate rejection, batch
 * evaluation, and NSGA-II / hypervolume / random-search environmental
 * selection. */
#include "search/moea.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sh_moea {
    sh_moea_config cfg;
    sh_moea_ops ops;
    sh_rng rng;
    int gen;
    long evals;
    int stagnant;            /* generations in a row with no new individual */
    int n;                   /* population members                           */
    unsigned char *pop;      /* pop_size individuals                         */
    sh_point *pts;
    int *rank;
    double *crowd;
    /* every hash ever offered, in order, plus an open-addressing set */
    uint64_t *seen;
    long n_seen, cap_seen;
    uint64_t *table;
    long table_cap;
    /* scratch for a generation */
    unsigned char *kids, *tmp;
    sh_point *kid_pts;
};

const char *sh_moea_algo_name(sh_moea_algo a)
{
    switch (a) {
    case SH_ALGO_NSGA2: return "nsga2";
    case SH_ALGO_HV: return "hv";
    case SH_ALGO_RANDOM: return "random";
    }
    return "?";
}

int sh_moea_algo_parse(const char *s, sh_moea_algo *out)
{
    if (!strcmp(s, "nsga2") || !strcmp(s, "nsga-ii"))
        *out = SH_ALGO_NSGA2;
    else if (!strcmp(s, "hv") || !strcmp(s, "sms-emoa") || !strcmp(s, "smsemoa"))
        *out = SH_ALGO_HV;
    else if (!strcmp(s, "random"))
        *out = SH_ALGO_RANDOM;
    else
        return -1;
    return 0;
}

/* ---- seen set ------------------------------------------------------------ */
static uint64_t fnv_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t ind_hash(sh_moea *m, const void *ind)
{
    uint64_t h = m->ops.hash ? m->ops.hash(m->ops.ctx, ind) : fnv_bytes(ind, m->ops.size);
    return h ? h : 1;   /* 0 marks an empty table slot */
}

static int table_insert(uint64_t *t, long cap, uint64_t h)
{
    long i = (long)(h % (uint64_t)cap);
    while (t[i]) {
        if (t[i] == h)
            return 0;
        i = (i + 1) % cap;
    }
    t[i] = h;
    return 1;
}

static int seen_grow(sh_moea *m)
{
    if (m->n_seen + 1 > m->cap_seen) {
        long cap = m->cap_seen ? m->cap_seen * 2 : 256;
        uint64_t *s = realloc(m->seen, (size_t)cap * sizeof *s);
        if (!s)
            return -1;
        m->seen = s;
        m->cap_seen = cap;
    }
    if ((m->n_seen + 1) * 2 > m->table_cap) {
        long cap = m->table_cap ? m->table_cap * 2 : 512;
        uint64_t *t = calloc((size_t)cap, sizeof *t);
        if (!t)
            return -1;
        for (long i = 0; i < m->n_seen; i++)
            table_insert(t, cap, m->seen[i]);
        free(m->table);
        m->table = t;
        m->table_cap = cap;
    }
    return 0;
}

/* 1 if h is new (and now recorded), 0 if already seen, -1 on no memory. */
static int seen_add(sh_moea *m, uint64_t h)
{
    if (seen_grow(m) < 0)
        return -1;
    if (!table_insert(m->table, m->table_cap, h))
        return 0;
    m->seen[m->n_seen++] = h;
    return 1;
}

/* ---- construction ------------------------------------------------------- */
int sh_moea_new(const sh_moea_config *cfg, const sh_moea_ops *ops, sh_moea **out, sh_err *err)
{
    if (cfg->n_obj < 1 || cfg->n_obj > SH_MAX_OBJ)
        return sh_err_set(err, "search engine: %d objectives (must be 1 to %d)", cfg->n_obj, SH_MAX_OBJ);
    if (cfg->pop_size < 2 || cfg->pop_size > 100000)
        return sh_err_set(err, "search engine: population %d (must be 2 to 100000)", cfg->pop_size);
    if (cfg->offspring < 0 || cfg->offspring > 100000)
        return sh_err_set(err, "search engine: offspring %d (must be 0 to 100000)", cfg->offspring);
    if (!ops->size || !ops->random || !ops->crossover || !ops->mutate)
        return sh_err_set(err, "search engine: incomplete operator table");
    sh_moea *m = calloc(1, sizeof *m);
    if (!m)
        return sh_err_set(err, "search engine: out of memory");
    m->cfg = *cfg;
    if (m->cfg.offspring == 0)
        m->cfg.offspring = cfg->pop_size;
    if (!(m->cfg.crossover_prob >= 0 && m->cfg.crossover_prob <= 1))
        m->cfg.crossover_prob = 0.9;
    if (!(m->cfg.mutation_prob >= 0 && m->cfg.mutation_prob <= 1))
        m->cfg.mutation_prob = 1.0;
    m->ops = *ops;
    sh_rng_seed(&m->rng, cfg->seed);
    size_t mu = (size_t)m->cfg.pop_size, lam = (size_t)m->cfg.offspring;
    size_t big = mu > lam ? mu : lam;
    m->pop = malloc(mu * ops->size);
    m->pts = calloc(mu, sizeof *m->pts);
    m->rank = calloc(mu, sizeof *m->rank);
    m->crowd = calloc(mu, sizeof *m->crowd);
    m->kids = malloc((big + 2) * ops->size);
    m->tmp = malloc(2 * ops->size);
    m->kid_pts = calloc(big + 2, sizeof *m->kid_pts);
    if (!m->pop || !m->pts || !m->rank || !m->crowd || !m->kids || !m->tmp || !m->kid_pts) {
        sh_moea_free(m);
        return sh_err_set(err, "search engine: out of memory for population %zu", mu);
    }
    *out = m;
    return 0;
}

void sh_moea_free(sh_moea *m)
{
    if (!m)
        return;
    free(m->pop); free(m->pts); free(m->rank); free(m->crowd);
    free(m->seen); free(m->table); free(m->kids); free(m->tmp); free(m->kid_pts);
    free(m);
}

/* ---- selection ------------------------------------------------------------ */
typedef struct order {
    double key;
    int pos;
} order;

static int cmp_order_desc(const void *a, const void *b)
{
    const order *x = a, *y = b;
    if (x->key > y->key) return -1;
    if (x->key < y->key) return 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Ranks pts[0..n-1] and sets the crowding distance within each front. */
static int rank_and_crowd(const sh_point *pts, int n, int n_obj, int *rank, double *crowd)
{
    if (n == 0)
        return 0;
    int *idx = malloc((size_t)n * sizeof *idx), *members = malloc((size_t)n * sizeof *members);
    double *cd = malloc((size_t)n * sizeof *cd);
    if (!idx || !members || !cd) {
        free(idx); free(members); free(cd);
        return -1;
    }
    for (int i = 0; i < n; i++)
        idx[i] = i;
    int fronts = sh_nondominated_sort(pts, idx, n, n_obj, rank);
    if (fronts < 0) {
        free(idx); free(members); free(cd);
        return -1;
    }
    for (int f = 0; f < fronts; f++) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (rank[i] == f)
                members[k++] = i;
        sh_crowding(pts, members, k, n_obj, cd);
        for (int i = 0; i < k; i++)
            crowd[members[i]] = cd[i];
    }
    free(idx); free(members); free(cd);
    return fronts;
}

/* Removes from members[0..*k-1] (one front) the point with the smallest
 * exclusive hypervolume contribution, objectives normalised to the front's
 * range and the reference point at 2 in every normalised objective. */
static int drop_least_contributor(const sh_point *pts, int *members, int *k, int n_obj,
                                  const double *crowd)
{
    int n = *k, worst = n - 1;
    bool feasible = true;
    for (int i = 0; i < n; i++)
        if (pts[members[i]].violation > 0 || pts[members[i]].failed)
            feasible = false;
    if (n_obj <= 3 && feasible) {
        double lo[SH_MAX_OBJ], hi[SH_MAX_OBJ], ref[SH_MAX_OBJ];
        for (int d = 0; d < n_obj; d++) {
            lo[d] = INFINITY; hi[d] = -INFINITY; ref[d] = 2.0;
            for (int i = 0; i < n; i++) {
                lo[d] = fmin(lo[d], pts[members[i]].f[d]);
                hi[d] = fmax(hi[d], pts[members[i]].f[d]);
            }
        }
        double *rows = malloc((size_t)n * (size_t)n_obj * sizeof *rows);
        double *c = malloc((size_t)n * sizeof *c);
        if (!rows || !c) {
            free(rows); free(c);
            return -1;
        }
        for (int i = 0; i < n; i++)
            for (int d = 0; d < n_obj; d++) {
                double span = hi[d] - lo[d];
                rows[(size_t)i * (size_t)n_obj + (size_t)d] =
                    span > 0 ? (pts[members[i]].f[d] - lo[d]) / span : 0.0;
            }
        if (sh_hv_contributions(rows, n, n_obj, ref, c) < 0) {
            free(rows); free(c);
            return -1;
        }
        for (int i = n - 1; i >= 0; i--)
            if (c[i] < c[worst])
                worst = i;
        free(rows); free(c);
    } else {
        for (int i = n - 1; i >= 0; i--)
            if (crowd[members[i]] < crowd[members[worst]])
                worst = i;
    }
    memmove(members + worst, members + worst + 1, (size_t)(n - worst - 1) * sizeof *members);
    (*k)--;
    return 0;
}

/* Picks pop_size of the c candidates (individuals cand, points cpts) into the
 * population. */
static int environmental_select(sh_moea *m, const unsigned char *cand, const sh_point *cpts, int c)
{
    int mu = m->cfg.pop_size, n_obj = m->cfg.n_obj;
    int *rank = malloc((size_t)(c ? c : 1) * sizeof *rank);
    double *crowd = malloc((size_t)(c ? c : 1) * sizeof *crowd);
    int *chosen = malloc((size_t)(c ? c : 1) * sizeof *chosen);
    int *members = malloc((size_t)(c ? c : 1) * sizeof *members);
    order *ord = malloc((size_t)(c ? c : 1) * sizeof *ord);
    if (!rank || !crowd || !chosen || !members || !ord)
        goto oom;
    int fronts = rank_and_crowd(cpts, c, n_obj, rank, crowd);
    if (fronts < 0)
        goto oom;
    int n_chosen = 0;
    for (int f = 0; f < fronts && n_chosen < mu; f++) {
        int k = 0;
        for (int i = 0; i < c; i++)
            if (rank[i] == f)
                members[k++] = i;
        if (n_chosen + k > mu) {
            int need = mu - n_chosen;
            if (m->cfg.algo == SH_ALGO_HV) {
                while (k > need)
                    if (drop_least_contributor(cpts, members, &k, n_obj, crowd) < 0)
                        goto oom;
            } else {
                for (int i = 0; i < k; i++) {
                    ord[i].key = crowd[members[i]];
                    ord[i].pos = members[i];
                }
                qsort(ord, (size_t)k, sizeof *ord, cmp_order_desc);
                for (int i = 0; i < need; i++)
                    members[i] = ord[i].pos;
                k = need;
                /* keep candidate order stable for determinism */
                for (int i = 1; i < k; i++)
                    for (int j = i; j > 0 && members[j - 1] > members[j]; j--) {
                        int t = members[j]; members[j] = members[j - 1]; members[j - 1] = t;
                    }
            }
        }
        for (int i = 0; i < k; i++)
            chosen[n_chosen++] = members[i];
    }
    /* the population is full unless there were fewer candidates */
    assert(n_chosen == (c < mu ? c : mu));
    for (int i = 0; i < n_chosen; i++) {
        memcpy(m->pop + (size_t)i * m->ops.size, cand + (size_t)chosen[i] * m->ops.size, m->ops.size);
        m->pts[i] = cpts[chosen[i]];
    }
    m->n = n_chosen;
    if (rank_and_crowd(m->pts, m->n, n_obj, m->rank, m->crowd) < 0)
        goto oom;
    free(rank); free(crowd); free(chosen); free(members); free(ord);
    return 0;
oom:
    free(rank); free(crowd); free(chosen); free(members); free(ord);
    return -1;
}

/* Population + the non-failed children, then selection. */
static int merge_and_select(sh_moea *m, int n_kids, sh_err *err)
{
    size_t sz = m->ops.size;
    int c_max = m->n + n_kids;
    unsigned char *cand = malloc((size_t)(c_max ? c_max : 1) * sz);
    sh_point *cpts = malloc((size_t)(c_max ? c_max : 1) * sizeof *cpts);
    if (!cand || !cpts) {
        free(cand); free(cpts);
        return sh_err_set(err, "search engine: out of memory in selection");
    }
    int c = 0;
    for (int i = 0; i < m->n; i++, c++) {
        memcpy(cand + (size_t)c * sz, m->pop + (size_t)i * sz, sz);
        cpts[c] = m->pts[i];
    }
    for (int i = 0; i < n_kids; i++) {
        if (m->kid_pts[i].failed)
            continue;
        memcpy(cand + (size_t)c * sz, m->kids + (size_t)i * sz, sz);
        cpts[c++] = m->kid_pts[i];
    }
    assert(c <= c_max);
    int rc = environmental_select(m, cand, cpts, c);
    free(cand); free(cpts);
    if (rc < 0)
        return sh_err_set(err, "search engine: out of memory in selection");
    return 0;
}

/* ---- variation ------------------------------------------------------------ */
static int tournament(sh_moea *m)
{
    assert(m->n > 0);
    int a = sh_rng_int(&m->rng, 0, m->n - 1), b = sh_rng_int(&m->rng, 0, m->n - 1);
    if (m->rank[a] != m->rank[b])
        return m->rank[a] < m->rank[b] ? a : b;
    if (m->crowd[a] != m->crowd[b])
        return m->crowd[a] > m->crowd[b] ? a : b;
    return a;
}

/* Repairs, hashes and keeps ind as child number *k if it is new. */
static int offer(sh_moea *m, void *ind, int *k)
{
    if (m->ops.repair)
        m->ops.repair(m->ops.ctx, &m->rng, ind);
    int fresh = seen_add(m, ind_hash(m, ind));
    if (fresh < 0)
        return -1;
    if (fresh) {
        memcpy(m->kids + (size_t)(*k) * m->ops.size, ind, m->ops.size);
        (*k)++;
    }
    return 0;
}

static long remaining_budget(const sh_moea *m)
{
    return m->cfg.budget > 0 ? m->cfg.budget - m->evals : 1L << 40;
}

static int make_offspring(sh_moea *m, int want, int *n_out)
{
    size_t sz = m->ops.size;
    unsigned char *c1 = m->tmp, *c2 = m->tmp + sz;
    int k = 0;
    long attempts = 0, max_attempts = 30L * want + 100;
    while (k < want && attempts++ < max_attempts) {
        if (m->cfg.algo == SH_ALGO_RANDOM || m->n == 0) {
            m->ops.random(m->ops.ctx, &m->rng, c1);
            if (offer(m, c1, &k) < 0)
                return -1;
            continue;
        }
        const void *a = m->pop + (size_t)tournament(m) * sz;
        const void *b = m->pop + (size_t)tournament(m) * sz;
        if (sh_rng_bernoulli(&m->rng, m->cfg.crossover_prob)) {
            m->ops.crossover(m->ops.ctx, &m->rng, a, b, c1, c2);
        } else {
            memcpy(c1, a, sz);
            memcpy(c2, b, sz);
        }
        for (int j = 0; j < 2 && k < want; j++) {
            void *c = j ? c2 : c1;
            if (sh_rng_bernoulli(&m->rng, m->cfg.mutation_prob))
                m->ops.mutate(m->ops.ctx, &m->rng, c);
            if (offer(m, c, &k) < 0)
                return -1;
        }
    }
    *n_out = k;
    return 0;
}

static int evaluate_kids(sh_moea *m, int k, const sh_moea_evaluator *ev, sh_err *err)
{
    for (int i = 0; i < k; i++) {
        memset(&m->kid_pts[i], 0, sizeof m->kid_pts[i]);
    }
    if (k > 0 && ev->evaluate(ev->ctx, m->kids, m->ops.size, k, m->kid_pts, err) < 0)
        return -1;
    for (int i = 0; i < k; i++)   /* a NaN objective is a failed evaluation */
        if (sh_point_failed(&m->kid_pts[i], m->cfg.n_obj))
            m->kid_pts[i].failed = true;
    m->evals += k;
    return 0;
}

int sh_moea_init(sh_moea *m, const void *seeds, int n_seeds, const sh_moea_evaluator *ev, sh_err *err)
{
    int want = m->cfg.pop_size;
    if (remaining_budget(m) < want)
        want = (int)remaining_budget(m);
    int k = 0;
    size_t sz = m->ops.size;
    for (int i = 0; i < n_seeds && k < want; i++) {
        memcpy(m->tmp, (const unsigned char *)seeds + (size_t)i * sz, sz);
        if (offer(m, m->tmp, &k) < 0)
            return sh_err_set(err, "search engine: out of memory");
    }
    int more = 0;
    m->n = 0;
    int keep = k;
    /* random fill: make_offspring appends after the seeds */
    unsigned char *saved = m->kids;
    m->kids = saved + (size_t)keep * sz;
    int rc = want > keep ? make_offspring(m, want - keep, &more) : 0;
    m->kids = saved;
    if (rc < 0)
        return sh_err_set(err, "search engine: out of memory");
    k = keep + more;
    if (evaluate_kids(m, k, ev, err) < 0)
        return -1;
    m->gen = 0;
    return merge_and_select(m, k, err);
}

int sh_moea_step(sh_moea *m, const sh_moea_evaluator *ev, sh_err *err)
{
    int want = m->cfg.offspring;
    if (remaining_budget(m) < want)
        want = (int)remaining_budget(m);
    int k = 0;
    if (want > 0 && make_offspring(m, want, &k) < 0)
        return sh_err_set(err, "search engine: out of memory");
    if (evaluate_kids(m, k, ev, err) < 0)
        return -1;
    m->stagnant = k == 0 ? m->stagnant + 1 : 0;
    m->gen++;
    return merge_and_select(m, k, err);
}

int sh_moea_reevaluate(sh_moea *m, const bool *redo, const sh_moea_evaluator *ev, sh_err *err)
{
    const size_t sz = m->ops.size;
    int k = 0;
    for (int i = 0; i < m->n; i++)
        if (redo[i])
            memcpy(m->kids + (size_t)k++ * sz, m->pop + (size_t)i * sz, sz);
    if (k == 0)
        return 0;
    memset(m->kid_pts, 0, (size_t)k * sizeof *m->kid_pts);
    if (ev->evaluate(ev->ctx, m->kids, sz, k, m->kid_pts, err) < 0)
        return -1;
    k = 0;
    for (int i = 0; i < m->n; i++) {
        if (!redo[i])
            continue;
        m->pts[i] = m->kid_pts[k++];
        if (sh_point_failed(&m->pts[i], m->cfg.n_obj))
            m->pts[i].failed = true;
    }
    if (rank_and_crowd(m->pts, m->n, m->cfg.n_obj, m->rank, m->crowd) < 0)
        return sh_err_set(err, "search engine: out of memory");
    return 0;
}

int sh_moea_done(const sh_moea *m)
{
    if (m->cfg.budget > 0 && m->evals >= m->cfg.budget)
        return 1;
    if (m->cfg.max_gens > 0 && m->gen >= m->cfg.max_gens)
        return 1;
    return m->stagnant >= 5;
}

/* ---- state ------------------------------------------------------------------ */
int sh_moea_generation(const sh_moea *m) { return m->gen; }
long sh_moea_evaluations(const sh_moea *m) { return m->evals; }
int sh_moea_pop_size(const sh_moea *m) { return m->n; }
const void *sh_moea_individual(const sh_moea *m, int i)
{
    assert(i >= 0 && i < m->n);
    return m->pop + (size_t)i * m->ops.size;
}
const sh_point *sh_moea_point(const sh_moea *m, int i)
{
    assert(i >= 0 && i < m->n);
    return &m->pts[i];
}
int sh_moea_rank(const sh_moea *m, int i)
{
    assert(i >= 0 && i < m->n);
    return m->rank[i];
}
double sh_moea_crowding(const sh_moea *m, int i)
{
    assert(i >= 0 && i < m->n);
    return m->crowd[i];
}
const sh_rng *sh_moea_rng(const sh_moea *m) { return &m->rng; }
int sh_moea_stagnant(const sh_moea *m) { return m->stagnant; }

const uint64_t *sh_moea_seen(const sh_moea *m, long *n)
{
    *n = m->n_seen;
    return m->seen;
}

static bool on_front(const sh_moea *m, int i)
{
    return m->rank[i] == 0 && !m->pts[i].failed && m->pts[i].violation <= 0;
}

int sh_moea_front_size(const sh_moea *m)
{
    int k = 0;
    for (int i = 0; i < m->n; i++)
        k += on_front(m, i);
    return k;
}

double sh_moea_hypervolume(const sh_moea *m, const double *lo, const double *hi, const double *ref)
{
    int d = m->cfg.n_obj;
    double *rows = malloc((size_t)(m->n ? m->n : 1) * (size_t)d * sizeof *rows);
    if (!rows)
        return -1.0;
    int k = 0;
    for (int i = 0; i < m->n; i++) {
        if (!on_front(m, i))
            continue;
        for (int j = 0; j < d; j++) {
            double v = m->pts[i].f[j];
            if (lo && hi && hi[j] > lo[j])
                v = (v - lo[j]) / (hi[j] - lo[j]);
            rows[(size_t)k * (size_t)d + (size_t)j] = v;
        }
        k++;
    }
    double hv = sh_hypervolume(rows, k, d, ref);
    free(rows);
    return hv;
}

int sh_moea_restore(sh_moea *m, int gen, long evaluations, int stagnant, const sh_rng *rng,
                    const void *inds, const sh_point *pts, int n, const uint64_t *seen,
                    long n_seen, sh_err *err)
{
    if (n < 0 || n > m->cfg.pop_size)
        return sh_err_set(err, "search engine: saved population of %d (limit %d)", n, m->cfg.pop_size);
    m->gen = gen;
    m->evals = evaluations;
    m->stagnant = stagnant;
    m->rng = *rng;
    m->n_seen = 0;
    if (m->table)
        memset(m->table, 0, (size_t)m->table_cap * sizeof *m->table);
    for (long i = 0; i < n_seen; i++)
        if (seen_add(m, seen[i] ? seen[i] : 1) < 0)
            return sh_err_set(err, "search engine: out of memory");
    memcpy(m->pop, inds, (size_t)n * m->ops.size);
    memcpy(m->pts, pts, (size_t)n * sizeof *pts);
    m->n = n;
    if (rank_and_crowd(m->pts, m->n, m->cfg.n_obj, m->rank, m->crowd) < 0)
        return sh_err_set(err, "search engine: out of memory");
    return 0;
}
