/* build_cli.c - `starhil build`: compile a genome into a runtime variant
 * executable for a target (through the build cache of evaluator/build.c). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/commands.h"
#include "evaluator/build.h"
#include "genome/genome.h"
#include "util/opt.h"

typedef struct build_args {
    const char *genome;
    const char *target;
    sh_build_opts opts;
    bool json, header, force, quiet;
} build_args;

/* Returns 0, 1 after --help (printed), or 2 for a usage error (printed). */
/* "compiling ..." on stderr (terminal or log alike) before a build that misses the cache. */
static void say_compiling(const char *genome_hash, const char *target, const char *cc, void *ctx)
{
    (void)ctx;
    fprintf(stderr, "compiling variant %s for %s with %s ...\n", genome_hash, target, cc);
}

static int parse_args(int argc, char **argv, build_args *a)
{
    memset(a, 0, sizeof *a);
    a->target = "native";
    const sh_opt t[] = {
        {"--target", NULL, SH_OPT_STR, &a->target, "TRIPLE", "native (default), x86_64-linux-gnu, aarch64-linux-gnu,\n"
         "scalar; append :ARCH to override -march (aarch64-linux-gnu:armv8-a)", 0, 0, NULL},
        {"--cc", NULL, SH_OPT_STR, &a->opts.cc, "CC", "compiler to use instead of the target's default", 0, 0, NULL},
        {"--cflags", NULL, SH_OPT_STR, &a->opts.cflags, "FLAGS", "extra compiler flags (one argument, split on spaces)",
         0, 0, NULL},
        {"--march", NULL, SH_OPT_STR, &a->opts.march, "ARCH", "-march value (\"\" drops -march)", 0, 0, NULL},
        {"--force", NULL, SH_OPT_FLAG, &a->force, NULL, "recompile even if the cache holds this variant", 0, 0, NULL},
        {"--json", NULL, SH_OPT_FLAG, &a->json, NULL, "print {\"exe\",\"dir\",\"key\",\"cache_hit\",...} as JSON", 0, 0,
         NULL},
        {"--header", NULL, SH_OPT_FLAG, &a->header, NULL, "print the generated sh_variant.h and do not compile", 0, 0,
         NULL},
        {"--quiet", "-q", SH_OPT_FLAG, &a->quiet, NULL, "no \"compiling ...\" line on stderr", 0, 0, NULL},
    };
    sh_cmd_spec spec = {"build", "GENOME", NULL,
                        "Compile GENOME (a preset name, a genome file, or canonical text) into a runtime\n"
                        "variant executable and print its path. Builds are cached in\n"
                        "$STARHIL_CACHE_DIR (default ~/.cache/starhil)/variants; a cache hit runs no compiler.\n",
                        t, (int)(sizeof t / sizeof t[0]), 1, 1};
    const char *pos[1];
    int n_pos, rc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (rc) return rc;
    a->genome = pos[0];
    a->opts.force = a->force;
    if (!a->quiet && !a->json)   /* --json: stdout is for a script, no progress */
        a->opts.on_compile = say_compiling;
    return 0;
}

static int print_json(const sh_build_result *r, const char *genome_hash, const char *target)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:f}",
                          "exe", r->exe_path, "dir", r->dir, "key", r->key,
                          "cache_hit", r->cache_hit, "genome_hash", genome_hash,
                          "target", target, "compile_seconds", r->compile_seconds);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) { fprintf(stderr, "starhil build: cannot format JSON\n"); return 1; }
    printf("%s\n", s);
    free(s);
    return 0;
}

int sh_cmd_build(int argc, char **argv)
{
    build_args a;
    int pr = parse_args(argc, argv, &a);
    if (pr) return pr == 1 ? 0 : 2;
    static sh_genome g;   /* large: keep it off the stack */
    sh_err err = {{0}};
    if (sh_genome_resolve(a.genome, &g, &err) != 0) {
        fprintf(stderr, "starhil build: %s\n", err.msg);
        return 1;
    }
    if (a.header) {
        char *h = sh_build_header(&g, a.target, a.opts.cc, a.opts.cflags, &err);
        if (!h) { fprintf(stderr, "starhil build: %s\n", err.msg); return 1; }
        fputs(h, stdout);
        free(h);
        return 0;
    }
    sh_build_result r;
    if (sh_build_variant_ex(&g, a.target, &a.opts, &r, &err) != 0) {
        fprintf(stderr, "starhil build: %s\n", err.msg);
        return 1;
    }
    char hex[17];
    sh_hash_hex(sh_genome_hash(&g), hex);
    if (a.json) return print_json(&r, hex, a.target);
    printf("%s\n", r.exe_path);
    if (r.cache_hit) fprintf(stderr, "starhil build: cache hit (%s)\n", r.key);
    else fprintf(stderr, "starhil build: compiled in %.1f s (%s)\n", r.compile_seconds, r.key);
    return 0;
}
