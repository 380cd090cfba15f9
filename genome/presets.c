/* presets.c - built-in genomes: the LFM2 family exactly as published, and the
 * transformer baselines (Qwen3, Llama 3.2) built from the same blocks, with
 * their published configurations (../shared/reference/lfm2-architecture.md,
 * sections 1 and 7).  Each preset is written in the canonical text form, so the
 * presets also exercise the parser. */
#include "genome/genome.h"

#include <stdio.h>
#include <string.h>

typedef struct preset_def {
    sh_preset info;
    const char *text;
} preset_def;

/* LFM2 conv layer and attention layer, per size */
#define LFM2_C(F) "conv(3)/swiglu(" #F ")"
#define LFM2_A(H, F) "gqa(" #H ",8,qk)/swiglu(" #F ")"

static const preset_def PRESETS[] = {
    {{"lfm2-350m", "LFM2-350M: 10 short-conv + 6 GQA layers, hidden 1024", 354483968LL, 0},
     "d=1024 v=65536 hd=64 theta=1000000 eps=1e-05 ctx=128000 tie=1 | "
     LFM2_C(4608) "*2 " LFM2_A(16, 4608) " " LFM2_C(4608) "*2 " LFM2_A(16, 4608) " " LFM2_C(4608) "*2 "
     LFM2_A(16, 4608) " " LFM2_C(4608) " " LFM2_A(16, 4608) " " LFM2_C(4608) " " LFM2_A(16, 4608) " "
     LFM2_C(4608) " " LFM2_A(16, 4608) " " LFM2_C(4608)},
    {{"lfm2-700m", "LFM2-700M: 10 short-conv + 6 GQA layers, hidden 1536", 742489344LL, 0},
     "d=1536 v=65536 hd=64 theta=1000000 eps=1e-05 ctx=128000 tie=1 | "
     LFM2_C(6912) "*2 " LFM2_A(24, 6912) " " LFM2_C(6912) "*2 " LFM2_A(24, 6912) " " LFM2_C(6912) "*2 "
     LFM2_A(24, 6912) " " LFM2_C(6912) " " LFM2_A(24, 6912) " " LFM2_C(6912) " " LFM2_A(24, 6912) " "
     LFM2_C(6912) " " LFM2_A(24, 6912) " " LFM2_C(6912)},
    {{"lfm2-1.2b", "LFM2-1.2B: 10 short-conv + 6 GQA layers, hidden 2048", 1170340608LL, 0},
     "d=2048 v=65536 hd=64 theta=1000000 eps=1e-05 ctx=128000 tie=1 | "
     LFM2_C(8192) "*2 " LFM2_A(32, 8192) " " LFM2_C(8192) "*2 " LFM2_A(32, 8192) " " LFM2_C(8192) "*2 "
     LFM2_A(32, 8192) " " LFM2_C(8192) " " LFM2_A(32, 8192) " " LFM2_C(8192) " " LFM2_A(32, 8192) " "
     LFM2_C(8192) " " LFM2_A(32, 8192) " " LFM2_C(8192)},
    /* attention at 2,5,9,13,17,21,24,27 of 30 */
    {{"lfm2-2.6b", "LFM2-2.6B: 22 short-conv + 8 GQA layers, hidden 2048", 2569272320LL, 0},
     "d=2048 v=65536 hd=64 theta=1000000 eps=1e-05 ctx=128000 tie=1 | "
     LFM2_C(10752) "*2 " LFM2_A(32, 10752) " " LFM2_C(10752) "*2 " LFM2_A(32, 10752) " " LFM2_C(10752) "*3 "
     LFM2_A(32, 10752) " " LFM2_C(10752) "*3 " LFM2_A(32, 10752) " " LFM2_C(10752) "*3 " LFM2_A(32, 10752) " "
     LFM2_C(10752) "*3 " LFM2_A(32, 10752) " " LFM2_C(10752) "*2 " LFM2_A(32, 10752) " " LFM2_C(10752) "*2 "
     LFM2_A(32, 10752) " " LFM2_C(10752) "*2"},
    /* 24 layers, attention at 2,6,10,14,18,21; layers 0-1 dense (7168), the rest MoE */
    {{"lfm2-8b-a1b", "LFM2-8B-A1B: 18 short-conv + 6 GQA layers, 32 experts top-4", 8339929856LL, 1557740288LL},
     "d=2048 v=65536 hd=64 theta=1000000 eps=1e-05 ctx=128000 tie=1 | "
     "conv(3)/swiglu(7168)*2 gqa(32,8,qk)/moe(32,4,1792,bias) conv(3)/moe(32,4,1792,bias)*3 "
     "gqa(32,8,qk)/moe(32,4,1792,bias) conv(3)/moe(32,4,1792,bias)*3 gqa(32,8,qk)/moe(32,4,1792,bias) "
     "conv(3)/moe(32,4,1792,bias)*3 gqa(32,8,qk)/moe(32,4,1792,bias) conv(3)/moe(32,4,1792,bias)*3 "
     "gqa(32,8,qk)/moe(32,4,1792,bias) conv(3)/moe(32,4,1792,bias)*2 gqa(32,8,qk)/moe(32,4,1792,bias) "
     "conv(3)/moe(32,4,1792,bias)*2"},
    {{"qwen3-0.6b", "Qwen3-0.6B baseline: 28 GQA layers with QK-norm, head_dim 128", 596049920LL, 0},
     "d=1024 v=151936 hd=128 theta=1000000 eps=1e-06 ctx=40960 tie=1 | gqa(16,8,qk)/swiglu(3072)*28"},
    {{"qwen3-1.7b", "Qwen3-1.7B baseline: 28 GQA layers with QK-norm, head_dim 128", 1720574976LL, 0},
     "d=2048 v=151936 hd=128 theta=1000000 eps=1e-06 ctx=40960 tie=1 | gqa(16,8,qk)/swiglu(6144)*28"},
    {{"llama-3.2-1b", "Llama-3.2-1B baseline: 16 GQA layers, llama3 RoPE scaling", 1235814400LL, 0},
     "d=2048 v=128256 hd=64 theta=500000 eps=1e-05 ctx=131072 tie=1 rope=llama3(32,1,4,8192) | "
     "gqa(32,8)/swiglu(8192)*16"},
};

#define N_PRESETS ((int)(sizeof PRESETS / sizeof PRESETS[0]))

int sh_preset_count(void) { return N_PRESETS; }

const sh_preset *sh_preset_at(int i)
{
    return (i >= 0 && i < N_PRESETS) ? &PRESETS[i].info : NULL;
}

int sh_preset_get(const char *name, sh_genome *out, sh_err *err)
{
    for (int i = 0; i < N_PRESETS; i++) {
        if (strcmp(name, PRESETS[i].info.name) == 0) {
            if (sh_genome_parse(PRESETS[i].text, out, err)) return sh_err_prefix(err, "preset %s", name);
            return 0;
        }
    }
    char names[512] = "";
    for (int i = 0; i < N_PRESETS; i++) {
        strncat(names, PRESETS[i].info.name, sizeof names - strlen(names) - 1);
        if (i + 1 < N_PRESETS) strncat(names, ", ", sizeof names - strlen(names) - 1);
    }
    return sh_err_set(err, "unknown preset '%.64s' (known: %s)", name, names);
}
