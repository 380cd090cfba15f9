/* fuzz_rt_gguf.c - libFuzzer harness for the variant runtime's GGUF loader
 * (evaluator/runtime/rt_gguf.c) over every weight type it reads: f32, f16,
 * q8_0, q4_0, q4_K, q5_K, q6_K and the Q4_K_M mix.  Built by run_fuzz.sh
 * against one small genome's sh_variant.h (hidden 256 so the k-quants apply),
 * seeded with that genome's own exports.  Whatever the bytes: rt_model_gguf
 * refuses with a message, or it loads a model that the kernels can run, so a
 * loaded file is also packed and run for a 2-token prefill and one decode
 * step (a size check the loader missed shows as an out-of-bounds read). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static rt_pool *pool;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    if (!path[0]) {   /* one scratch file and pool per fuzzing process */
        snprintf(path, sizeof path, "/dev/shm/fuzz_rt_gguf.%ld", (long)getpid());
        FILE *t = fopen(path, "wb");
        if (!t) { snprintf(path, sizeof path, "/tmp/fuzz_rt_gguf.%ld", (long)getpid()); t = fopen(path, "wb"); }
        if (!t) abort();
        fclose(t);
        pool = rt_pool_create(1, NULL, 0, err, sizeof err);
        if (!pool) abort();
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f)) abort();
    static rt_model m;
    memset(&m, 0, sizeof m);
    err[0] = '\0';
    if (rt_model_gguf(&m, path, err, sizeof err) != 0) {
        if (!err[0]) abort();   /* a refusal always says why */
        rt_model_free(&m);
        return 0;
    }
    if (rt_model_pack(&m, pool, err, sizeof err) == 0) {
        rt_state *s = rt_state_create(&m, pool, 8, 2, RT_KV_F16, err, sizeof err);
        if (!s) abort();
        static float logits[2 * SHV_VOCAB];
        const int32_t tokens[3] = {1, (int32_t)(SHV_VOCAB - 1), 7 % SHV_VOCAB};
        if (rt_forward(s, tokens, 2, logits, 1) != 0 || rt_forward(s, tokens + 2, 1, logits, 0) != 0) abort();
        rt_state_free(s);
    } else if (!err[0]) {
        abort();
    }
    rt_model_free(&m);
    return 0;
}

__attribute__((destructor)) static void drop_scratch(void)
{
    if (path[0]) unlink(path);
    if (pool) rt_pool_destroy(pool);
}
