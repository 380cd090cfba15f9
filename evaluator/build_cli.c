/* build_cli.c - `starhil build`: compile a genome into a runtime variant
 * executable for a target (through the build cache of evaluator/build.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/commands.h"
#include "evaluator/build.h"
#include "genome/genome.h"

static void build_usage(FILE *f)
{
    fprintf(f,
        "usage: starhil build GENOME [--target TRIPLE] [--cc CC] [--cflags FLAGS]\n"
        "                     [--march ARCH] [--force] [--json] [--header] [--quiet]\n\n"
        "Compile GENOME (a preset name, a genome file, or canonical text) into a runtime\n"
        "variant executable and print its path. Builds are cached in\n"
        "$STARHIL_CACHE_DIR (default ~/.cache/starhil)/variants; a cache hit runs no compiler.\n\n"
        "options:\n"
        "  --target TRIPLE  native (default), x86_64-linux-gnu, aarch64-linux-gnu, scalar;\n"
        "                   append :ARCH to override -march (aarch64-linux-gnu:armv8-a)\n"
        "  --cc CC          compiler to use instead of the target's default\n"
        "  --cflags FLAGS   extra compiler flags (one argument, split on spaces)\n"
        "  --march ARCH     -march value (\"\" drops -march)\n"
        "  --force          recompile even if the cache holds this variant\n"
        "  --json           print {\"exe\",\"dir\",\"key\",\"cache_hit\",...} as JSON\n"
        "  --header         print the generated sh_variant.h and do not compile\n"
        "  --quiet, -q      no \"compiling ...\" line on stderr\n"
        "  --help           this text\n");
}

typedef struct build_args {
    const char *genome;
    const char *target;
    sh_build_opts opts;
    int json, header;
} build_args;

/* Returns 0, 1 for --help, or 2 for a usage error (message printed). */
static int parse_args(int argc, char **argv, build_args *a)
{
    memset(a, 0, sizeof *a);
    a->target = "native";
    a->opts.progress = true;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char **val = NULL;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) return 1;
        else if (!strcmp(s, "--json")) { a->json = 1; a->opts.progress = false; }   /* stdout for a script */
        else if (!strcmp(s, "--force")) a->opts.force = true;
        else if (!strcmp(s, "--quiet") || !strcmp(s, "-q")) a->opts.progress = false;
        else if (!strcmp(s, "--header")) a->header = 1;
        else if (!strcmp(s, "--target")) val = &a->target;
        else if (!strcmp(s, "--cc")) val = &a->opts.cc;
        else if (!strcmp(s, "--cflags")) val = &a->opts.cflags;
        else if (!strcmp(s, "--march")) val = &a->opts.march;
        else if (!strncmp(s, "--", 2)) {
            fprintf(stderr, "starhil build: unknown option '%s'\n", s);
            return 2;
        } else if (!a->genome) a->genome = s;
        else {
            fprintf(stderr, "starhil build: unexpected argument '%s' (one GENOME only)\n", s);
            return 2;
        }
        if (val) {
            if (i + 1 >= argc) { fprintf(stderr, "starhil build: %s needs a value\n", s); return 2; }
            *val = argv[++i];
        }
    }
    if (!a->genome) { fprintf(stderr, "starhil build: missing GENOME\n"); return 2; }
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
    if (pr == 1) { build_usage(stdout); return 0; }
    if (pr == 2) { build_usage(stderr); return 2; }
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
