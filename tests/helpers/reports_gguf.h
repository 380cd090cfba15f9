/* reports_gguf.h - a small, independent GGUF v3 reader for the tests of the
 * GGUF writer (reports/gguf_write.c): header, metadata (with their GGUF value
 * types), tensor infos and the data offset. */
#ifndef SH_TEST_REPORTS_GGUF_H
#define SH_TEST_REPORTS_GGUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct tg_kv {
    char key[128];
    uint32_t type;          /* GGUF value type */
    uint32_t arr_type;      /* element type when type == ARRAY */
    uint64_t arr_len;
    uint64_t u;             /* integer / bool value (or first array element) */
    double f;               /* float value */
    char str[1024];         /* string value */
    uint32_t arr_u32[512];  /* first elements of an integer array */
} tg_kv;

typedef struct tg_tensor {
    char name[128];
    uint32_t n_dims;
    uint64_t ne[4];
    uint32_t type;
    uint64_t offset;
} tg_tensor;

typedef struct tg_file {
    uint8_t *data;          /* whole file */
    size_t size;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    tg_kv *kv;
    tg_tensor *t;
    uint64_t data_start;
} tg_file;

/* 0, or -1 with a message in msg. */
int tg_read(const char *path, tg_file *f, char *msg, size_t cap);
void tg_free(tg_file *f);
const tg_kv *tg_kv_find(const tg_file *f, const char *key);
const tg_tensor *tg_tensor_find(const tg_file *f, const char *name);

#endif
