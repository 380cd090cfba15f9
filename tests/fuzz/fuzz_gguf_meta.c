/* fuzz_gguf_meta.c - libFuzzer harness for the GGUF metadata reader and the
 * genome import from it (genome/gguf_meta.c: lfm2, lfm2moe, qwen3, llama,
 * including llama3 RoPE scaling read from the rope_freqs.weight data).
 * Whatever the bytes, reading and importing must not crash, and a genome that
 * is imported must validate and survive its canonical text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "genome/gguf_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {   /* one scratch file per fuzzing process, removed at exit */
        snprintf(path, sizeof path, "/dev/shm/fuzz_gguf_meta.%ld", (long)getpid());
        FILE *t = fopen(path, "wb");
        if (!t) { snprintf(path, sizeof path, "/tmp/fuzz_gguf_meta.%ld", (long)getpid()); t = fopen(path, "wb"); }
        if (!t) abort();
        fclose(t);
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f)) abort();
    sh_gguf_meta m;
    sh_err err;
    err.msg[0] = '\0';
    if (sh_gguf_meta_read(path, &m, &err) == 0) {
        static sh_genome g, back;
        if (sh_gguf_import_genome(&m, &g, &err) == 0) {
            static char text[SH_GENOME_TEXT_MAX];
            if (sh_genome_validate(&g, &err)) abort();
            if (sh_genome_format(&g, text, sizeof text, &err)) abort();
            if (sh_genome_parse(text, &back, &err) || sh_genome_hash(&back) != sh_genome_hash(&g)) abort();
        }
        sh_gguf_meta_free(&m);
    } else if (!err.msg[0]) {
        abort();   /* a refusal always says why */
    }
    return 0;
}

__attribute__((destructor)) static void drop_scratch(void)
{
    if (path[0]) unlink(path);
}
