/* reports_gguf.c - independent GGUF reader used by tests/test_reports.c. */
#include "reports_gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cur { const uint8_t *p; size_t n, i; int bad; } cur;

static int take(cur *c, void *out, size_t n)
{
    if (c->bad || c->n - c->i < n) { c->bad = 1; if (out) memset(out, 0, n); return -1; }
    if (out) memcpy(out, c->p + c->i, n);
    c->i += n;
    return 0;
}
static uint32_t u32(cur *c) { uint32_t v; take(c, &v, 4); return v; }
static uint64_t u64(cur *c) { uint64_t v; take(c, &v, 8); return v; }
static void str(cur *c, char *out, size_t cap)
{
    uint64_t n = u64(c);
    if (c->bad || n > c->n - c->i) { c->bad = 1; if (cap) out[0] = 0; return; }
    size_t k = n < cap - 1 ? (size_t)n : cap - 1;
    memcpy(out, c->p + c->i, k);
    out[k] = 0;
    c->i += (size_t)n;
}

static const size_t SCALAR_SIZE[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static void scalar(cur *c, uint32_t type, uint64_t *u, double *f)
{
    uint8_t b[8] = {0};
    if (type > 12 || type == 8 || type == 9) { c->bad = 1; return; }
    take(c, b, SCALAR_SIZE[type]);
    uint64_t v = 0;
    memcpy(&v, b, SCALAR_SIZE[type]);
    *u = v;
    if (type == 6) { float x; memcpy(&x, b, 4); *f = x; }
    else if (type == 12) { double x; memcpy(&x, b, 8); *f = x; }
    else *f = (double)v;
}

static void read_kv(cur *c, tg_kv *kv)
{
    memset(kv, 0, sizeof *kv);
    str(c, kv->key, sizeof kv->key);
    kv->type = u32(c);
    if (kv->type == 8) { str(c, kv->str, sizeof kv->str); return; }
    if (kv->type != 9) { scalar(c, kv->type, &kv->u, &kv->f); return; }
    kv->arr_type = u32(c);
    kv->arr_len = u64(c);
    for (uint64_t k = 0; k < kv->arr_len && !c->bad; k++) {
        if (kv->arr_type == 8) { char tmp[256]; str(c, tmp, sizeof tmp); continue; }
        uint64_t u; double f;
        scalar(c, kv->arr_type, &u, &f);
        if (k < 512) kv->arr_u32[k] = (uint32_t)u;
        if (k == 0) kv->u = u;
    }
}

int tg_read(const char *path, tg_file *f, char *msg, size_t cap)
{
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) { snprintf(msg, cap, "%s: cannot open", path); return -1; }
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    f->data = malloc(n > 0 ? (size_t)n : 1);
    f->size = f->data && n > 0 ? fread(f->data, 1, (size_t)n, fp) : 0;
    fclose(fp);
    cur c = {f->data, f->size, 0, 0};
    char magic[4];
    take(&c, magic, 4);
    if (memcmp(magic, "GGUF", 4) != 0) { snprintf(msg, cap, "bad magic"); return -1; }
    f->version = u32(&c);
    f->n_tensors = u64(&c);
    f->n_kv = u64(&c);
    if (f->n_kv > 10000 || f->n_tensors > 100000) { snprintf(msg, cap, "absurd counts"); return -1; }
    f->kv = calloc(f->n_kv + 1, sizeof *f->kv);
    f->t = calloc(f->n_tensors + 1, sizeof *f->t);
    for (uint64_t k = 0; k < f->n_kv && !c.bad; k++) read_kv(&c, &f->kv[k]);
    for (uint64_t k = 0; k < f->n_tensors && !c.bad; k++) {
        tg_tensor *t = &f->t[k];
        str(&c, t->name, sizeof t->name);
        t->n_dims = u32(&c);
        if (t->n_dims > 4) { c.bad = 1; break; }
        for (uint32_t d = 0; d < t->n_dims; d++) t->ne[d] = u64(&c);
        t->type = u32(&c);
        t->offset = u64(&c);
    }
    if (c.bad) { snprintf(msg, cap, "truncated or malformed at byte %zu", c.i); return -1; }
    uint64_t align = 32;
    const tg_kv *a = tg_kv_find(f, "general.alignment");
    if (a) align = a->u;
    f->data_start = (c.i + align - 1) / align * align;
    return 0;
}

void tg_free(tg_file *f)
{
    free(f->data); free(f->kv); free(f->t);
    memset(f, 0, sizeof *f);
}

const tg_kv *tg_kv_find(const tg_file *f, const char *key)
{
    for (uint64_t k = 0; k < f->n_kv; k++)
        if (!strcmp(f->kv[k].key, key)) return &f->kv[k];
    return NULL;
}

const tg_tensor *tg_tensor_find(const tg_file *f, const char *name)
{
    for (uint64_t k = 0; k < f->n_tensors; k++)
        if (!strcmp(f->t[k].name, name)) return &f->t[k];
    return NULL;
}
