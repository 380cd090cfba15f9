/* cap_tasks.c - seeded generators of the synthetic capability tasks (after MAD,
 * Poli et al. 2024, and Zoology's MQAR, Arora et al. 2023; written from the
 * task descriptions, not their code).  Every example is T input tokens and T
 * targets (-1 = not graded); the model predicts targets[t] after reading
 * tokens[0..t].  Token ids:
 *   recall tasks: keys [0, vocab/2), values [vocab/2, vocab), then specials. */
#include <stdlib.h>
#include <string.h>

#include "evaluator/capability/cap_internal.h"

static const char *const TASK_NAMES[CAP_TASK_COUNT] = {
    "mqar", "fuzzy_recall", "noisy_recall", "selective_copy", "compression", "memorization", "lm",
};

const char *cap_task_name(cap_task_kind k)
{
    return (unsigned)k < CAP_TASK_COUNT ? TASK_NAMES[k] : "?";
}

int cap_task_parse_name(const char *s, cap_task_kind *out)
{
    for (int i = 0; i < CAP_TASK_COUNT; i++)
        if (!strcmp(s, TASK_NAMES[i])) { *out = (cap_task_kind)i; return 0; }
    return -1;
}

/* Defaults: small enough that the whole suite trains in about a minute on two
 * cores at width 64 (see docs/capability-results.md). */
void cap_task_default(cap_task_kind k, cap_task *t)
{
    memset(t, 0, sizeof *t);
    t->kind = k;
    t->n_train = 3000;
    t->n_test = 200;
    t->epochs = 4;
    t->batch = 16;
    t->lr = 3e-3;
    t->wd = 0.0;
    switch (k) {
    case CAP_TASK_MQAR:     t->vocab = 32; t->seq = 32; t->pairs = 4; t->min_gap = 8; break;
    case CAP_TASK_FUZZY:    t->vocab = 32; t->seq = 32; t->pairs = 2; t->min_gap = 8; t->motif = 2; break;
    case CAP_TASK_NOISY:    t->vocab = 32; t->seq = 32; t->pairs = 4; t->min_gap = 8;
                            t->noise_vocab = 8; t->noise = 0.2; break;
    case CAP_TASK_SELCOPY:  t->vocab = 16; t->seq = 32; t->pairs = 6; break;
    case CAP_TASK_COMPRESS: t->vocab = 16; t->seq = 9; t->pairs = 8; t->n_train = 4000; t->epochs = 3; break;
    case CAP_TASK_MEMORIZE: t->vocab = 128; t->seq = 32; t->pairs = 16; t->n_train = 512;
                            t->epochs = 12; t->lr = 5e-3; break;
    case CAP_TASK_LM:       t->vocab = 256; t->seq = 128; t->pairs = 1; t->batch = 8;
                            t->n_train = 8 * 160; t->n_test = 128; t->epochs = 1; t->lr = 4e-3; break;
    default: break;
    }
}

int cap_task_readout(const cap_task *t) { return t->kind == CAP_TASK_COMPRESS ? t->pairs : 0; }

int cap_task_model_vocab(const cap_task *t)
{
    switch (t->kind) {
    case CAP_TASK_NOISY:   return t->vocab + t->noise_vocab + 1;   /* + FILL          */
    case CAP_TASK_SELCOPY: return t->vocab + 2;                    /* + BLANK, SEP    */
    case CAP_TASK_LM:      return 256;                             /* bytes           */
    default:               return t->vocab + 1;                    /* + FILL / COMP   */
    }
}

/* Length of the key-value region of the recall tasks. */
static int kv_region(const cap_task *t)
{
    if (t->kind == CAP_TASK_FUZZY) return 2 * t->pairs * t->motif;
    if (t->kind == CAP_TASK_NOISY) return (int)((2.0 * t->pairs) / (1.0 - t->noise) + 0.999);
    return 2 * t->pairs;
}

int cap_task_check(const cap_task *t, sh_err *err)
{
    const char *n = cap_task_name(t->kind);
    if ((unsigned)t->kind >= CAP_TASK_COUNT) return sh_err_set(err, "capability: unknown task kind %d", (int)t->kind);
    if (t->vocab < 4 || t->vocab > CAP_MAX_VOCAB - 64)
        return sh_err_set(err, "capability task %s: vocab %d out of range 4..%d", n, t->vocab, CAP_MAX_VOCAB - 64);
    if (t->seq < 2 || t->seq > CAP_MAX_SEQ)
        return sh_err_set(err, "capability task %s: seq %d out of range 2..%d", n, t->seq, CAP_MAX_SEQ);
    if (t->pairs < 1) return sh_err_set(err, "capability task %s: pairs %d must be >= 1", n, t->pairs);
    if (t->n_train < 1 || t->n_test < 1 || t->n_train > 1000000 || t->n_test > 1000000)
        return sh_err_set(err, "capability task %s: train/test sizes %d/%d out of range 1..1000000", n, t->n_train, t->n_test);
    if (t->epochs < 1 || t->epochs > 10000 || t->batch < 1 || t->batch > 4096)
        return sh_err_set(err, "capability task %s: epochs %d / batch %d out of range", n, t->epochs, t->batch);
    if (!(t->lr > 0 && t->lr < 1) || !(t->wd >= 0 && t->wd < 10))
        return sh_err_set(err, "capability task %s: lr %g / wd %g out of range", n, t->lr, t->wd);
    switch (t->kind) {
    case CAP_TASK_MQAR: case CAP_TASK_FUZZY: case CAP_TASK_NOISY: {
        if (t->kind == CAP_TASK_FUZZY && (t->motif < 1 || t->motif > 8))
            return sh_err_set(err, "capability task %s: motif %d out of range 1..8", n, t->motif);
        if (t->kind == CAP_TASK_NOISY && (!(t->noise >= 0 && t->noise <= 0.9) || t->noise_vocab < 1 || t->noise_vocab > 1024))
            return sh_err_set(err, "capability task %s: noise %g (0..0.9) / noise_vocab %d (1..1024) out of range",
                              n, t->noise, t->noise_vocab);
        if (t->kind != CAP_TASK_FUZZY && t->pairs > t->vocab / 2)
            return sh_err_set(err, "capability task %s: %d pairs need %d distinct keys but vocab %d has %d",
                              n, t->pairs, t->pairs, t->vocab, t->vocab / 2);
        int need = kv_region(t) + (t->min_gap < 0 ? 0 : t->min_gap) +
                   (t->kind == CAP_TASK_FUZZY ? 2 * t->pairs * t->motif : 2 * t->pairs);
        if (need > t->seq)
            return sh_err_set(err, "capability task %s: seq %d too short: pairs, gap and queries need %d", n, t->seq, need);
        break;
    }
    case CAP_TASK_SELCOPY:
        if (2 * t->pairs + 1 > t->seq)
            return sh_err_set(err, "capability task %s: copying %d tokens needs seq >= %d", n, t->pairs, 2 * t->pairs + 1);
        break;
    case CAP_TASK_COMPRESS:
        if (t->seq != t->pairs + 1)
            return sh_err_set(err, "capability task %s: seq must be pairs+1 (%d tokens + compression token)", n, t->pairs);
        break;
    case CAP_TASK_MEMORIZE:
        if (t->seq != 2 * t->pairs || t->pairs > t->vocab / 2)
            return sh_err_set(err, "capability task %s: seq must be 2*pairs and pairs <= vocab/2", n);
        break;
    case CAP_TASK_LM:
        if (t->vocab != 256) return sh_err_set(err, "capability task %s: vocab must be 256 (bytes)", n);
        if (!t->corpus) return sh_err_set(err, "capability task %s: no corpus", n);
        break;
    default: break;
    }
    return 0;
}

/* Fisher-Yates shuffle of a[0..n) */
static void shuffle(cap_rng *r, int *a, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = cap_rng_int(r, i + 1), x = a[i];
        a[i] = a[j]; a[j] = x;
    }
}

/* n distinct values from [0, range) in random order */
static void distinct(cap_rng *r, int *out, int n, int range, int *tmp)
{
    for (int i = 0; i < range; i++) tmp[i] = i;
    for (int i = 0; i < n; i++) {
        int j = i + cap_rng_int(r, range - i), x = tmp[i];
        tmp[i] = tmp[j]; tmp[j] = x;
        out[i] = tmp[i];
    }
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* Queries of single-token keys: slots (key, value) at q0 + 2j, P of them. */
static void place_queries(cap_rng *r, int *tok, int *tgt, int T, int q0, const int *keys,
                          const int *vals, int P, int *tmp)
{
    int nslots = (T - q0) / 2, slots[CAP_MAX_SEQ], order[CAP_MAX_SEQ];
    distinct(r, slots, P, nslots, tmp);
    distinct(r, order, P, P, tmp);
    for (int i = 0; i < P; i++) {
        int pos = q0 + 2 * slots[i], k = order[i];
        tok[pos] = keys[k];
        tgt[pos] = vals[k];
        tok[pos + 1] = vals[k];
    }
}

static void gen_mqar(const cap_task *t, cap_rng *r, int *tok, int *tgt, int *tmp)
{
    int T = t->seq, P = t->pairs, half = t->vocab / 2, fill = t->vocab;
    int keys[CAP_MAX_SEQ], vals[CAP_MAX_SEQ];
    distinct(r, keys, P, half, tmp);
    for (int i = 0; i < P; i++) vals[i] = half + cap_rng_int(r, t->vocab - half);
    for (int i = 0; i < T; i++) { tok[i] = fill; tgt[i] = -1; }
    for (int i = 0; i < P; i++) { tok[2 * i] = keys[i]; tok[2 * i + 1] = vals[i]; }
    place_queries(r, tok, tgt, T, 2 * P + t->min_gap, keys, vals, P, tmp);
}

static void gen_noisy(const cap_task *t, cap_rng *r, int *tok, int *tgt, int *tmp)
{
    int T = t->seq, P = t->pairs, half = t->vocab / 2, fill = t->vocab + t->noise_vocab;
    int keys[CAP_MAX_SEQ], vals[CAP_MAX_SEQ], items[CAP_MAX_SEQ];
    distinct(r, keys, P, half, tmp);
    for (int i = 0; i < P; i++) vals[i] = half + cap_rng_int(r, t->vocab - half);
    int region = kv_region(t), n_noise = region - 2 * P, n_items = P + n_noise;
    for (int i = 0; i < n_items; i++) items[i] = i < P ? i : -1;   /* pair index or noise */
    shuffle(r, items, n_items);
    for (int i = 0; i < T; i++) { tok[i] = fill; tgt[i] = -1; }
    int pos = 0;
    for (int i = 0; i < n_items; i++) {
        if (items[i] < 0) { tok[pos++] = t->vocab + cap_rng_int(r, t->noise_vocab); continue; }
        tok[pos++] = keys[items[i]];
        tok[pos++] = vals[items[i]];
    }
    for (; pos < T; pos++)
        if (cap_rng_uniform(r) < t->noise) tok[pos] = t->vocab + cap_rng_int(r, t->noise_vocab);
    place_queries(r, tok, tgt, T, region + t->min_gap, keys, vals, P, tmp);
}

static void gen_fuzzy(const cap_task *t, cap_rng *r, int *tok, int *tgt, int *tmp)
{
    (void)tmp;
    int T = t->seq, P = t->pairs, half = t->vocab / 2, M = t->motif, fill = t->vocab;
    int klen[CAP_MAX_SEQ], vlen[CAP_MAX_SEQ], key[CAP_MAX_SEQ][8], val[CAP_MAX_SEQ][8];
    for (int i = 0; i < P; i++) {
        for (int tries = 0;; tries++) {          /* keys distinct as motifs */
            klen[i] = 1 + cap_rng_int(r, M);
            for (int j = 0; j < klen[i]; j++) key[i][j] = cap_rng_int(r, half);
            int dup = 0;
            for (int q = 0; q < i && !dup; q++)
                dup = klen[q] == klen[i] && !memcmp(key[q], key[i], sizeof(int) * (size_t)klen[i]);
            if (!dup || tries > 100) break;
        }
        vlen[i] = 1 + cap_rng_int(r, M);
        for (int j = 0; j < vlen[i]; j++) val[i][j] = half + cap_rng_int(r, t->vocab - half);
    }
    for (int i = 0; i < T; i++) { tok[i] = fill; tgt[i] = -1; }
    int pos = 0, qlen = 0;
    for (int i = 0; i < P; i++) {
        for (int j = 0; j < klen[i]; j++) tok[pos++] = key[i][j];
        for (int j = 0; j < vlen[i]; j++) tok[pos++] = val[i][j];
        qlen += klen[i] + vlen[i];
    }
    int q0 = kv_region(t) + t->min_gap, free_ = T - q0 - qlen, order[CAP_MAX_SEQ];
    for (int i = 0; i < P; i++) order[i] = i;
    shuffle(r, order, P);
    pos = q0;
    for (int n = 0; n < P; n++) {
        int i = order[n], gap = cap_rng_int(r, free_ / (P - n) + 1);
        pos += gap;
        free_ -= gap;
        for (int j = 0; j < klen[i]; j++) tok[pos++] = key[i][j];
        tgt[pos - 1] = val[i][0];
        for (int j = 0; j < vlen[i]; j++) {
            tok[pos] = val[i][j];
            if (j + 1 < vlen[i]) tgt[pos] = val[i][j + 1];
            pos++;
        }
    }
}

static void gen_selcopy(const cap_task *t, cap_rng *r, int *tok, int *tgt, int *tmp)
{
    int T = t->seq, n = t->pairs, R = T - 1 - n, blank = t->vocab, sep = t->vocab + 1;
    int pos[CAP_MAX_SEQ];
    distinct(r, pos, n, R, tmp);
    qsort(pos, (size_t)n, sizeof(int), cmp_int);
    for (int i = 0; i < T; i++) { tok[i] = blank; tgt[i] = -1; }
    for (int i = 0; i < n; i++) {
        int c = cap_rng_int(r, t->vocab);
        tok[pos[i]] = c;
        tok[R + 1 + i] = c;                        /* teacher-forced copy     */
        tgt[R + i] = c;                            /* SEP predicts the first  */
    }
    tok[R] = sep;
}

static void gen_compress(const cap_task *t, cap_rng *r, int *tok, int *tgt)
{
    for (int i = 0; i < t->pairs; i++) { tok[i] = cap_rng_int(r, t->vocab); tgt[i] = tok[i]; }
    tok[t->pairs] = t->vocab;                      /* compression token       */
}

static void gen_memorize(const cap_task *t, cap_rng *r, const int *map, int *tok, int *tgt, int *tmp)
{
    int half = t->vocab / 2, keys[CAP_MAX_SEQ];
    distinct(r, keys, t->pairs, half, tmp);
    for (int i = 0; i < t->pairs; i++) {
        tok[2 * i] = keys[i];
        tgt[2 * i] = map[keys[i]];
        tok[2 * i + 1] = map[keys[i]];
        tgt[2 * i + 1] = -1;
    }
}

void cap_dataset_free(cap_dataset *ds)
{
    free(ds->offsets);
    free(ds->tokens);
    free(ds->targets);
    memset(ds, 0, sizeof *ds);
}

int cap_task_generate(const cap_task *t, uint64_t seed, int split, cap_dataset *ds, sh_err *err)
{
    memset(ds, 0, sizeof *ds);
    if (cap_task_check(t, err)) return -1;
    if (t->kind == CAP_TASK_LM) return cap_lm_generate(t, seed, split, ds, err);
    int n = split ? t->n_test : t->n_train, T = t->seq, R = cap_task_readout(t);
    ds->n = n;
    ds->T = T;
    ds->readout = R;
    ds->tokens = malloc(sizeof(int) * (size_t)n * T);
    ds->targets = malloc(sizeof(int) * (size_t)n * (R ? R : T));
    int *tmp = malloc(sizeof(int) * (CAP_MAX_VOCAB + CAP_MAX_SEQ));
    int *map = malloc(sizeof(int) * CAP_MAX_VOCAB);
    if (!ds->tokens || !ds->targets || !tmp || !map) {
        free(tmp); free(map); cap_dataset_free(ds);
        return sh_err_set(err, "capability task %s: out of memory for %d examples", cap_task_name(t->kind), n);
    }
    cap_rng r;
    cap_rng_seed(&r, seed ^ 0x6d656d6f72697a65ull);          /* the fixed map: seed only */
    for (int k = 0; k < t->vocab / 2; k++) map[k] = t->vocab / 2 + cap_rng_int(&r, t->vocab - t->vocab / 2);
    cap_rng_seed(&r, seed * 0x9E3779B97F4A7C15ull + 0x1234567ull * (uint64_t)(split + 1) + (uint64_t)t->kind);
    for (int i = 0; i < n; i++) {
        int *tok = ds->tokens + (size_t)i * T, *tgt = ds->targets + (size_t)i * (R ? R : T);
        switch (t->kind) {
        case CAP_TASK_MQAR:     gen_mqar(t, &r, tok, tgt, tmp); break;
        case CAP_TASK_FUZZY:    gen_fuzzy(t, &r, tok, tgt, tmp); break;
        case CAP_TASK_NOISY:    gen_noisy(t, &r, tok, tgt, tmp); break;
        case CAP_TASK_SELCOPY:  gen_selcopy(t, &r, tok, tgt, tmp); break;
        case CAP_TASK_COMPRESS: gen_compress(t, &r, tok, tgt); break;
        case CAP_TASK_MEMORIZE: gen_memorize(t, &r, map, tok, tgt, tmp); break;
        default: break;
        }
    }
    free(tmp);
    free(map);
    return 0;
}
