/* gguf_meta.h - reads the metadata of a GGUF file (header, key/value pairs, tensor
 * names and shapes; never the weights) and derives a genome from it for the
 * architectures the runtime runs: lfm2, lfm2moe, qwen3 and llama. */
#ifndef SH_GENOME_GGUF_META_H
#define SH_GENOME_GGUF_META_H

#include <stddef.h>
#include <stdint.h>

#include "genome/genome.h"
#include "util/err.h"

/* Largest metadata section read (key/values and tensor infos together). */
#define SH_GGUF_META_MAX (64u * 1024u * 1024u)

typedef struct sh_gguf_kv {
    const char *key;          /* points into the metadata buffer, NUL-terminated copy */
    uint32_t type;            /* GGUF value type (8 string, 9 array, ...) */
    uint32_t arr_type;        /* element type of an array */
    uint64_t arr_len;
    size_t off, len;          /* the whole record (key, type, value) in the file */
    size_t val_off;           /* the value's first byte in the file */
} sh_gguf_kv;

typedef struct sh_gguf_tinfo {
    const char *name;
    uint32_t n_dims, type;
    uint64_t ne[4];
    uint64_t off;             /* data offset from the data section's start */
} sh_gguf_tinfo;

typedef struct sh_gguf_meta {
    uint8_t *buf; size_t n;   /* the file's first n bytes (header, metadata, tensor infos) */
    uint64_t n_kv, n_tensors;
    uint64_t data_off;        /* the data section's start in the file (may lie past n) */
    sh_gguf_kv *kv;
    sh_gguf_tinfo *t;
    char *names;              /* NUL-terminated copies of keys and tensor names */
} sh_gguf_meta;

int sh_gguf_meta_read(const char *path, sh_gguf_meta *out, sh_err *err);
void sh_gguf_meta_free(sh_gguf_meta *m);
const sh_gguf_kv *sh_gguf_meta_find(const sh_gguf_meta *m, const char *key);
/* the genome of an lfm2 / lfm2moe / qwen3 / llama GGUF; errors name the key */
int sh_gguf_import_genome(const sh_gguf_meta *m, sh_genome *out, sh_err *err);
int sh_gguf_import_genome_file(const char *path, sh_genome *out, sh_err *err);

#endif
