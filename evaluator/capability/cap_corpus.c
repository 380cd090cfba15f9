/* cap_corpus.c - the text of the language-modelling task: loads a corpus (one
 * file, or every regular file of a directory), rejects input that is not
 * text, splits off a contiguous held-out range, and cuts training / held-out
 * windows of bytes (the model predicts each next byte). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "evaluator/capability/cap_internal.h"

#define CORPUS_MAX_BYTES (256L * 1024 * 1024)

void cap_corpus_free(cap_corpus *c)
{
    free(c->data);
    memset(c, 0, sizeof *c);
}

static int append_file(const char *path, unsigned char **buf, size_t *n, size_t *cap, sh_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sh_err_set(err, "corpus %.400s: cannot read (%s)", path, strerror(errno));
    unsigned char chunk[65536];
    size_t got;
    int rc = 0;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (*n + got > (size_t)CORPUS_MAX_BYTES) { rc = sh_err_set(err, "corpus %.400s: larger than %ld bytes", path, CORPUS_MAX_BYTES); break; }
        if (*n + got > *cap) {
            size_t nc = (*cap ? *cap * 2 : 1 << 20);
            while (nc < *n + got) nc *= 2;
            unsigned char *nb = realloc(*buf, nc);
            if (!nb) { rc = sh_err_set(err, "corpus %.400s: out of memory", path); break; }
            *buf = nb;
            *cap = nc;
        }
        memcpy(*buf + *n, chunk, got);
        *n += got;
    }
    if (!rc && ferror(f)) rc = sh_err_set(err, "corpus %.400s: read error (%s)", path, strerror(errno));
    fclose(f);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_index_file(const char *name)
{
    size_t l = strlen(name);
    return name[0] == '.' || (l > 4 && !strcmp(name + l - 4, ".dat"));
}

int cap_corpus_from_bytes(const char *name, const void *data, size_t n, cap_corpus *c, sh_err *err)
{
    memset(c, 0, sizeof *c);
    snprintf(c->source, sizeof c->source, "%s", name);
    if (n == 0) return sh_err_set(err, "corpus %.400s: empty (no text to train on)", name);
    const unsigned char *d = data;
    size_t ctrl = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i] == 0)
            return sh_err_set(err, "corpus %.400s: binary data (NUL byte at offset %zu); give a text file", name, i);
        if (d[i] < 32 && d[i] != '\n' && d[i] != '\t' && d[i] != '\r' && d[i] != '\f') ctrl++;
    }
    if (ctrl * 20 > n)
        return sh_err_set(err, "corpus %.400s: binary data (%zu of %zu bytes are control characters); give a text file",
                          name, ctrl, n);
    c->data = malloc(n);
    if (!c->data) return sh_err_set(err, "corpus %.400s: out of memory", name);
    memcpy(c->data, d, n);
    c->n = n;
    /* held out: from the first line start at or after 1 - CAP_HELDOUT_FRAC */
    size_t s = (size_t)((double)n * (1.0 - CAP_HELDOUT_FRAC));
    while (s < n && s > 0 && c->data[s - 1] != '\n') s++;
    if (s >= n) s = (size_t)((double)n * (1.0 - CAP_HELDOUT_FRAC));
    c->split = s;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ c->data[i]) * 1099511628211ull;
    c->hash = h;
    c->files = 1;
    return 0;
}

int cap_corpus_load(const char *path, cap_corpus *c, sh_err *err)
{
    memset(c, 0, sizeof *c);
    struct stat st;
    if (stat(path, &st) != 0) {
        if (!strcmp(path, CAP_DEFAULT_CORPUS))
            return sh_err_set(err, "corpus %s: cannot read (%s); install Debian's `fortunes` package (make deps) "
                              "or give --corpus FILE", path, strerror(errno));
        return sh_err_set(err, "corpus %.400s: cannot read (%s)", path, strerror(errno));
    }
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    int files = 0, rc = 0;
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        if (!dir) return sh_err_set(err, "corpus %.400s: cannot read directory (%s)", path, strerror(errno));
        char **names = NULL;
        int nn = 0, ncap = 0;
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (is_index_file(e->d_name)) continue;
            if (nn == ncap) {
                ncap = ncap ? ncap * 2 : 64;
                char **nb = realloc(names, sizeof *names * (size_t)ncap);
                if (!nb) { rc = sh_err_set(err, "corpus: out of memory"); break; }
                names = nb;
            }
            names[nn] = strdup(e->d_name);
            if (!names[nn]) { rc = sh_err_set(err, "corpus: out of memory"); break; }
            nn++;
        }
        closedir(dir);
        if (!rc && nn) qsort(names, (size_t)nn, sizeof *names, cmp_str);
        for (int i = 0; i < nn && !rc; i++) {
            char fp[4096];
            struct stat fs;
            snprintf(fp, sizeof fp, "%s/%s", path, names[i]);
            if (lstat(fp, &fs) != 0 || !S_ISREG(fs.st_mode)) continue;   /* symlinks, subdirectories */
            rc = append_file(fp, &buf, &n, &cap, err);
            files++;
        }
        for (int i = 0; i < nn; i++) free(names[i]);
        free(names);
    } else {
        rc = append_file(path, &buf, &n, &cap, err);
        files = 1;
    }
    if (!rc) rc = cap_corpus_from_bytes(path, buf, n, c, err);
    free(buf);
    if (!rc) c->files = files;
    return rc;
}

int cap_lm_generate(const cap_task *t, uint64_t seed, int split, cap_dataset *ds, sh_err *err)
{
    const cap_corpus *c = t->corpus;
    int T = t->seq, n = split ? t->n_test : t->n_train;
    size_t W = (size_t)T + 1;
    size_t lo = split ? c->split : 0, hi = split ? c->n : c->split;
    size_t need = split ? W : W * (size_t)t->batch;
    if (hi - lo < need)
        return sh_err_set(err, "corpus %.400s: %zu bytes (%zu for training, %zu held out): smaller than one batch "
                          "(needs %zu training bytes = %d windows of %zu, and %zu held out)",
                          c->source, c->n, c->split, c->n - c->split, W * (size_t)t->batch, t->batch, W, W);
    ds->n = n;
    ds->T = T;
    ds->tokens = malloc(sizeof(int) * (size_t)n * T);
    ds->targets = malloc(sizeof(int) * (size_t)n * T);
    ds->offsets = malloc(sizeof(long) * (size_t)n);
    if (!ds->tokens || !ds->targets || !ds->offsets) {
        cap_dataset_free(ds);
        return sh_err_set(err, "capability task lm: out of memory for %d windows", n);
    }
    cap_rng r;
    cap_rng_seed(&r, (seed * 0x9E3779B97F4A7C15ull + 0x6c6d) ^ 0x7472616e);
    size_t span = hi - lo - W;   /* last valid start - lo */
    for (int i = 0; i < n; i++) {
        size_t off;
        if (split) off = lo + (n > 1 ? (size_t)((double)span * i / (n - 1)) : 0);
        else off = lo + (size_t)(cap_rng_next(&r) % (uint64_t)(span + 1));
        ds->offsets[i] = (long)off;
        int *tok = ds->tokens + (size_t)i * T, *tgt = ds->targets + (size_t)i * T;
        for (int j = 0; j < T; j++) {
            tok[j] = c->data[off + (size_t)j];
            tgt[j] = c->data[off + (size_t)j + 1];
        }
    }
    return 0;
}
