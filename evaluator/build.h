/* build.h - turn a genome into a runtime variant executable for a target.
 *
 * sh_build_variant generates `sh_variant.h` (the SHV_* constants of
 * docs/interfaces.md) and compiles every *.c file of sh_runtime_dir() with it
 * (one compiler process per file, as many at once as there are CPUs, largest
 * first), then links one executable, kept in a content-addressed cache:
 *
 *   sh_cache_dir()/variants/<key>/{sh_variant.h, variant, build.json, .lock}
 *
 * Runtime sources that define RT_NO_MODEL see no genome; their objects are
 * kept in sh_cache_dir()/objects/<key>.o (key: compiler, version, flags and
 * the source's preprocessed text) and linked into every later variant of the
 * same compiler and flags, which halves the compile time of a new genome.
 *
 * key = FNV-1a 64 of (genome hash, target, compiler + full flag list, compiler
 * version line, hash of every runtime file name and content, the generated
 * header).  The compiler's version line is probed once per compiler binary
 * (path, size, mtime) and remembered in sh_cache_dir()/compilers/.  A cache hit runs
 * no compiler.  Builds compile into a temporary file that is renamed into place
 * while holding an flock on the entry's lock file, so concurrent builders never
 * see a half-written executable and never compile the same entry twice.
 *
 * Targets:
 *   native, x86_64-linux-gnu   cc -O3 -march=native, static when libc.a exists
 *   aarch64-linux-gnu          aarch64-linux-gnu-gcc -O3 -static -march=armv8.2-a+dotprod
 *   scalar                     cc -O2 -DSHV_SCALAR (portable C, no -march)
 * Any target may carry ":MARCH" to override -march, e.g. "aarch64-linux-gnu:armv8-a".
 */
#ifndef SH_EVALUATOR_BUILD_H
#define SH_EVALUATOR_BUILD_H

#include <stdbool.h>
#include <stddef.h>

#include "genome/genome.h"
#include "util/err.h"

#define SH_BUILD_PATH_MAX 4096

typedef struct sh_build_opts {
    const char *cc;        /* compiler override (NULL: the target's default)      */
    const char *cflags;    /* extra flags, split on whitespace (NULL: none)       */
    const char *march;     /* -march override (NULL: target's, "" drops -march)   */
    bool force;            /* recompile even when the cache has the entry         */
    /* called just before the compiler starts (never on a cache hit), e.g. for
     * a "compiling ..." progress line; the library itself prints nothing */
    void (*on_compile)(const char *genome_hash, const char *target, const char *cc, void *ctx);
    void *on_compile_ctx;
    double timeout_s;      /* compiler timeout (<= 0: 900 s)                      */
} sh_build_opts;

/* What a build did; filled by sh_build_variant_ex. */
typedef struct sh_build_result {
    bool cache_hit;
    char key[17];                       /* cache key, hex                        */
    char exe_path[SH_BUILD_PATH_MAX];   /* the variant executable                */
    char dir[SH_BUILD_PATH_MAX];        /* its cache entry directory             */
    double compile_seconds;             /* 0 on a cache hit                      */
} sh_build_result;

/* Builds (or finds in the cache) the variant of g for target and writes the
 * executable's path into exe_path_out.  opts may be NULL.  Returns 0 or -1. */
int sh_build_variant(const sh_genome *g, const char *target, const sh_build_opts *opts,
                     char *exe_path_out, size_t cap, sh_err *err);

int sh_build_variant_ex(const sh_genome *g, const char *target, const sh_build_opts *opts,
                        sh_build_result *res, sh_err *err);

/* The generated header text for g (malloc'd, caller frees).  target/cc/flags
 * are recorded as SHV_BUILD_* strings (NULL: ""). */
char *sh_build_header(const sh_genome *g, const char *target, const char *cc,
                      const char *flags, sh_err *err);

/* Hash of the runtime sources (names and contents of *.c and *.h in dir). */
int sh_build_runtime_hash(const char *dir, char hex[17], sh_err *err);

/* Known target names, NULL-terminated (for --help and validation). */
const char *const *sh_build_targets(void);

/* Compiler runs (version probes and compilations) made by this process; lets
 * tests check that a cache hit costs no compiler run. */
unsigned long sh_build_compiler_runs(void);

#endif
