/* import_cli.c - `starhil genome import`: a Hugging Face LFM2 config.json or
 * the metadata of a GGUF file turned into a genome (the converters are
 * hf_config.c and gguf_meta.c).  The genome module knows nothing of these
 * formats: cli/main.c routes `genome import` here. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "genome/genome.h"
#include "genome/gguf_meta.h"
#include "reports/hf_config.h"
#include "util/opt.h"

static const char IMPORT_ABOUT[] =
    "Turns a Hugging Face LFM2 config.json (model_type lfm2 or lfm2_moe, legacy keys\n"
    "block_ff_dim / full_attn_idxs / tie_embedding included) or the metadata of a GGUF\n"
    "file (architectures lfm2, lfm2moe, qwen3, llama; only the header is read) into a\n"
    "genome and prints its canonical text (or its JSON form with --json).  A field a\n"
    "config.json does not give is filled with transformers' default, with a warning\n"
    "on stderr naming it.\n";

static void warn_default(void *ctx, const char *key, const char *value)
{
    fprintf(stderr, "starhil genome import: warning: %s: \"%s\" missing, using transformers' default %s\n",
            (const char *)ctx, key, value);
}

int sh_cmd_genome_import(int argc, char **argv)
{
    const char *path = NULL;
    bool as_json = false, strict = false;
    const sh_opt t[] = {
        {"--strict", NULL, SH_OPT_FLAG, &strict, NULL, "a missing config field is an error instead of a warning", 0, 0,
         NULL},
        {"--json", NULL, SH_OPT_FLAG, &as_json, NULL, "print the genome as JSON", 0, 0, NULL},
    };
    sh_cmd_spec spec = {"genome import", "CONFIG.JSON|FILE.gguf", NULL, IMPORT_ABOUT, t, (int)(sizeof t / sizeof t[0]),
                        1, 1};
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    path = pos[0];
    sh_err err = {{0}};
    static sh_genome g;
    sh_hf_import_opts o = {.strict = strict, .on_default = warn_default, .ctx = (void *)path};
    char magic[4] = {0};
    FILE *mf = fopen(path, "rb");
    if (mf) { if (fread(magic, 1, 4, mf) != 4) magic[0] = 0; fclose(mf); }
    int rc = !memcmp(magic, "GGUF", 4) ? sh_gguf_import_genome_file(path, &g, &err)
                                       : sh_hf_config_import_file_ex(path, &o, &g, &err);
    if (rc != 0) {
        fprintf(stderr, "starhil genome import: %s\n", err.msg);
        return 1;
    }
    if (as_json) {
        char *j = sh_genome_to_json(&g, true, &err);
        if (!j) { fprintf(stderr, "starhil genome import: %s\n", err.msg); return 1; }
        printf("%s\n", j);
        free(j);
        return 0;
    }
    static char text[SH_GENOME_TEXT_MAX];
    if (sh_genome_format(&g, text, sizeof text, &err) != 0) {
        fprintf(stderr, "starhil genome import: %s\n", err.msg);
        return 1;
    }
    printf("%s\n", text);
    return 0;
}
