/* build.c - variant code generation, compiler driving and the build cache
 * (see build.h).  The compiler runs through util/proc.h (argv, never a shell). */
#include "evaluator/build.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "util/cliopt.h"
#include "util/proc.h"

#define MAX_ARGS 256
#define FLAG_TEXT_MAX 4096

static atomic_ulong compiler_runs;
static atomic_uint tmp_serial;            /* unique temp names across threads */
static pthread_mutex_t cc_memo_lock = PTHREAD_MUTEX_INITIALIZER;

unsigned long sh_build_compiler_runs(void) { return atomic_load(&compiler_runs); }

/* "<path>.tmp.<pid>.<serial>": unique per process and thread. */
static void tmp_name(char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&tmp_serial, 1));
}

/* ---- hashing ------------------------------------------------------------ */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= FNV_PRIME; }
    return h;
}

/* Hashes the string and its terminating NUL, so ("ab","c") != ("a","bc"). */
static uint64_t fnv_str(uint64_t h, const char *s)
{
    return fnv_bytes(h, s, strlen(s) + 1);
}

/* ---- the generated header's text ---------------------------------------- */

/* C string literal contents: escapes quotes, backslashes, non-printables. */
static void sb_c_string(sh_strbuf *b, const char *s)
{
    sh_strbuf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') { char e[2] = {'\\', (char)*p}; sh_strbuf_add(b, e, 2); }
        else if (*p < 0x20 || *p >= 0x7f || *p == '?') sh_strbuf_printf(b, "\\%03o", *p);
        else sh_strbuf_add(b, (const char *)p, 1);
    }
    sh_strbuf_puts(b, "\"");
}

/* ---- the generated header ------------------------------------------------ */

static void header_globals(sh_strbuf *b, const sh_genome *g)
{
    char d[64];
    sh_strbuf_printf(b, "#define SHV_VOCAB          %d\n", g->vocab);
    sh_strbuf_printf(b, "#define SHV_HIDDEN         %d\n", g->hidden);
    sh_strbuf_printf(b, "#define SHV_HEAD_DIM       %d\n", g->head_dim);
    sh_fmt_double(g->rope_theta, d, sizeof d, 1);
    sh_strbuf_printf(b, "#define SHV_ROPE_THETA     %s\n", d);
    sh_fmt_double(g->norm_eps, d, sizeof d, 1);
    sh_strbuf_printf(b, "#define SHV_NORM_EPS       %s\n", d);
    sh_strbuf_printf(b, "#define SHV_MAX_CONTEXT    %d\n", g->max_context);
    sh_strbuf_printf(b, "#define SHV_TIED           %d\n", g->tied_embeddings ? 1 : 0);
    sh_strbuf_printf(b, "#define SHV_ROPE_SCALING   %d        /* 1 = llama3 */\n",
              g->rope_scaling == SH_ROPE_LLAMA3 ? 1 : 0);
    bool l3 = g->rope_scaling == SH_ROPE_LLAMA3;
    sh_fmt_double(l3 ? g->rope_factor : 1.0, d, sizeof d, 1);
    sh_strbuf_printf(b, "#define SHV_ROPE_FACTOR    %s\n", d);
    sh_fmt_double(l3 ? g->rope_low_freq : 1.0, d, sizeof d, 1);
    sh_strbuf_printf(b, "#define SHV_ROPE_LOW_FREQ  %s\n", d);
    sh_fmt_double(l3 ? g->rope_high_freq : 4.0, d, sizeof d, 1);
    sh_strbuf_printf(b, "#define SHV_ROPE_HIGH_FREQ %s\n", d);
    sh_strbuf_printf(b, "#define SHV_ROPE_ORIG_CTX  %d\n", l3 ? g->rope_orig_context : 8192);
    sh_strbuf_printf(b, "#define SHV_N_LAYERS       %d\n", g->n_layers);
}

static void header_layers(sh_strbuf *b, const sh_genome *g)
{
    sh_strbuf_puts(b, "/* one row per layer: mixer kind, conv kernel, heads, kv heads, qk_norm,\n"
              " *                    ffn kind, width, experts, top_k, expert width, router bias */\n");
    sh_strbuf_printf(b, "#define SHV_LAYER_TABLE { \\\n");
    for (int i = 0; i < g->n_layers; i++) {
        const sh_mixer *m = &g->layers[i].mixer;
        const sh_ffn *f = &g->layers[i].ffn;
        bool conv = m->kind == SH_MIXER_CONV, moe = f->kind == SH_FFN_MOE;
        sh_strbuf_printf(b, "    { %s, %d, %d, %d, %d, %s, %d, %d, %d, %d, %d }%s \\\n",
                  conv ? "SHV_CONV" : "SHV_GQA ",
                  conv ? m->conv_kernel : 0,
                  conv ? 0 : m->n_heads, conv ? 0 : m->n_kv_heads,
                  (!conv && m->qk_norm) ? 1 : 0,
                  moe ? "SHV_MOE   " : "SHV_SWIGLU",
                  moe ? 0 : f->width,
                  moe ? f->n_experts : 0, moe ? f->top_k : 0,
                  moe ? f->expert_width : 0, (moe && f->router_bias) ? 1 : 0,
                  i + 1 < g->n_layers ? "," : "");
    }
    sh_strbuf_puts(b, "}\n");
}

char *sh_build_header(const sh_genome *g, const char *target, const char *cc,
                      const char *flags, sh_err *err)
{
    if (sh_genome_validate(g, err) != 0) { sh_err_prefix(err, "build header"); return NULL; }
    char *text = malloc(SH_GENOME_TEXT_MAX);
    if (!text) { sh_err_set(err, "build header: out of memory"); return NULL; }
    if (sh_genome_format(g, text, SH_GENOME_TEXT_MAX, err) != 0) {
        free(text);
        sh_err_prefix(err, "build header");
        return NULL;
    }
    char hex[17];
    sh_hash_hex(sh_genome_hash(g), hex);
    sh_strbuf b = {0};
    sh_strbuf_printf(&b, "/* sh_variant.h - generated by `starhil build`; do not edit.\n"
                  " * The compile-time architecture of one runtime variant. */\n"
                  "#ifndef SH_VARIANT_H\n#define SH_VARIANT_H\n\n");
    sh_strbuf_printf(&b, "#define SHV_GENOME_HASH    \"%s\"\n", hex);
    sh_strbuf_puts(&b, "#define SHV_GENOME_TEXT    ");
    sb_c_string(&b, text);
    sh_strbuf_puts(&b, "\n");
    header_globals(&b, g);
    sh_strbuf_printf(&b, "\n/* block kinds: same numbering as genome.h */\n#ifndef SHV_CONV\n"
                  "#define SHV_CONV   %d\n#define SHV_GQA    %d\n"
                  "#define SHV_SWIGLU %d\n#define SHV_MOE    %d\n#endif\n\n",
              SH_MIXER_CONV, SH_MIXER_GQA, SH_FFN_SWIGLU, SH_FFN_MOE);
    header_layers(&b, g);
    sh_strbuf_puts(&b, "\n/* how this variant was built (reported by `variant info` and `bench`) */\n");
    sh_strbuf_puts(&b, "#define SHV_BUILD_TARGET   "); sb_c_string(&b, target ? target : ""); sh_strbuf_puts(&b, "\n");
    sh_strbuf_puts(&b, "#define SHV_BUILD_CC       "); sb_c_string(&b, cc ? cc : ""); sh_strbuf_puts(&b, "\n");
    sh_strbuf_puts(&b, "#define SHV_BUILD_FLAGS    "); sb_c_string(&b, flags ? flags : ""); sh_strbuf_puts(&b, "\n");
    sh_strbuf_puts(&b, "\n#endif\n");
    free(text);
    if (b.oom) { free(b.data); sh_err_set(err, "build header: out of memory"); return NULL; }
    return b.data;
}

/* ---- runtime source hash ------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* Sorted names of dir's regular files ending in one of the suffixes. */
static int list_sources(const char *dir, bool c_only, char ***names_out, size_t *n_out, sh_err *err)
{
    DIR *d = opendir(dir);
    if (!d) return sh_err_set(err, "runtime sources %s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (!has_suffix(e->d_name, ".c") && (c_only || !has_suffix(e->d_name, ".h"))) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **p = realloc(names, cap * sizeof *names);
            if (!p) break;
            names = p;
        }
        if (!(names[n] = strdup(e->d_name))) break;
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    *names_out = names;
    *n_out = n;
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int hash_file(uint64_t *h, const char *path, sh_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sh_err_set(err, "runtime source %s: %s", path, strerror(errno));
    char buf[65536];
    size_t k;
    uint64_t len = 0;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) { *h = fnv_bytes(*h, buf, k); len += k; }
    int bad = ferror(f);
    fclose(f);
    if (bad) return sh_err_set(err, "runtime source %s: read error", path);
    *h = fnv_bytes(*h, &len, sizeof len);
    return 0;
}

int sh_build_runtime_hash(const char *dir, char hex[17], sh_err *err)
{
    char **names;
    size_t n;
    if (list_sources(dir, false, &names, &n, err) != 0) return -1;
    uint64_t h = FNV_OFFSET;
    int rc = 0, n_c = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[SH_BUILD_PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        h = fnv_str(h, names[i]);
        rc = hash_file(&h, path, err);
        n_c += has_suffix(names[i], ".c");
    }
    free_names(names, n);
    if (rc == 0 && n_c == 0) return sh_err_set(err, "runtime sources %s: no .c files", dir);
    sh_hash_hex(h, hex);
    return rc;
}

/* ---- targets -------------------------------------------------------------- */

static const char *const TARGETS[] = {
    "native", "x86_64-linux-gnu", "aarch64-linux-gnu", "scalar", NULL
};

const char *const *sh_build_targets(void) { return TARGETS; }

typedef struct target_cfg {
    char name[64];          /* target without the ":MARCH" suffix          */
    char cc[256];           /* compiler (name or path)                     */
    const char *pkg;        /* Debian package providing the compiler       */
    const char *opt;        /* -O level                                    */
    char march[64];         /* "" = no -march                              */
    bool static_required;   /* fail rather than fall back to dynamic       */
    bool scalar;
} target_cfg;

static bool host_is(const char *machine)
{
    struct utsname u;
    return uname(&u) == 0 && strcmp(u.machine, machine) == 0;
}

static int resolve_target(const char *target, const sh_build_opts *o, target_cfg *t, sh_err *err)
{
    memset(t, 0, sizeof *t);
    if (!target || !*target) target = "native";
    const char *colon = strchr(target, ':');
    size_t n = colon ? (size_t)(colon - target) : strlen(target);
    if (n >= sizeof t->name) return sh_err_set(err, "build: target name too long");
    memcpy(t->name, target, n);
    t->opt = "-O3";
    if (!strcmp(t->name, "native")) {
        snprintf(t->cc, sizeof t->cc, "cc"); t->pkg = "build-essential";
        snprintf(t->march, sizeof t->march, "native");
    } else if (!strcmp(t->name, "x86_64-linux-gnu")) {
        snprintf(t->cc, sizeof t->cc, "%s", host_is("x86_64") ? "cc" : "x86_64-linux-gnu-gcc");
        t->pkg = host_is("x86_64") ? "build-essential" : "gcc-x86-64-linux-gnu";
        snprintf(t->march, sizeof t->march, "native");
    } else if (!strcmp(t->name, "aarch64-linux-gnu")) {
        snprintf(t->cc, sizeof t->cc, "aarch64-linux-gnu-gcc"); t->pkg = "gcc-aarch64-linux-gnu";
        snprintf(t->march, sizeof t->march, "armv8.2-a+dotprod");
        t->static_required = true;
    } else if (!strcmp(t->name, "scalar")) {
        snprintf(t->cc, sizeof t->cc, "cc"); t->pkg = "build-essential";
        t->opt = "-O2"; t->scalar = true;
    } else {
        return sh_err_set(err, "build: unknown target '%s' (known: native, x86_64-linux-gnu, "
                          "aarch64-linux-gnu[:MARCH], scalar)", target);
    }
    if (colon) {
        if (strlen(colon + 1) >= sizeof t->march || strspn(colon + 1,
                "abcdefghijklmnopqrstuvwxyz0123456789.+-_") != strlen(colon + 1))
            return sh_err_set(err, "build: bad -march '%s' in target '%s'", colon + 1, target);
        snprintf(t->march, sizeof t->march, "%s", colon + 1);
    }
    if (o && o->march) snprintf(t->march, sizeof t->march, "%s", o->march);
    if (o && o->cc && *o->cc) { snprintf(t->cc, sizeof t->cc, "%s", o->cc); t->pkg = NULL; }
    return 0;
}

/* ---- compiler lookup and version probe -------------------------------------- */

/* Full path of prog (as execvp would find it), or -1. */
static int which(const char *prog, char *out, size_t cap)
{
    struct stat st;
    if (strchr(prog, '/')) {
        if (stat(prog, &st) != 0 || !S_ISREG(st.st_mode) || access(prog, X_OK) != 0) return -1;
        snprintf(out, cap, "%s", prog);
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        char cand[SH_BUILD_PATH_MAX];
        snprintf(cand, sizeof cand, "%.*s/%s", (int)(n ? n : 1), n ? path : ".", prog);
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
            snprintf(out, cap, "%s", cand);
            return 0;
        }
        path += n + (end ? 1 : 0);
    }
    return -1;
}

typedef struct cc_info {
    uint64_t id;              /* hash of path, size, mtime                   */
    char version[256];        /* first line of `cc --version`                */
    bool has_static_libc;     /* `cc -print-file-name=libc.a` found one      */
} cc_info;

#define CC_MEMO 16
static cc_info cc_memo[CC_MEMO];
static int cc_memo_n;

static int run_capture_line(const char *cc, const char *arg, char *line, size_t cap, sh_err *err)
{
    char *argv[] = {(char *)cc, (char *)arg, NULL};
    sh_proc_opts po = {.timeout_s = 60, .max_out = 1 << 16};
    sh_proc_result r;
    atomic_fetch_add(&compiler_runs, 1);
    if (sh_proc_run(argv, &po, &r, err) != 0) return sh_err_prefix(err, "build: running %s", cc);
    int ok = r.exited && r.exit_code == 0;
    if (ok) {
        size_t n = strcspn(r.out, "\r\n");
        if (n >= cap) n = cap - 1;
        memcpy(line, r.out, n);
        line[n] = '\0';
    } else {
        char how[128];
        sh_proc_describe(&r, how, sizeof how);
        sh_err_set(err, "build: `%s %s` failed (%s): %.300s", cc, arg, how, r.err);
    }
    sh_proc_result_free(&r);
    return ok ? 0 : -1;
}

/* Reads a cached probe from the cache dir; 0 if found. */
static int probe_load(const char *file, cc_info *ci)
{
    FILE *f = fopen(file, "r");
    if (!f) return -1;
    char ver[sizeof ci->version], st[16];
    int ok = fgets(ver, sizeof ver, f) && fgets(st, sizeof st, f);
    fclose(f);
    if (!ok) return -1;
    ver[strcspn(ver, "\n")] = '\0';
    snprintf(ci->version, sizeof ci->version, "%s", ver);
    ci->has_static_libc = st[0] == '1';
    return 0;
}

static void probe_store(const char *dir, const char *file, const cc_info *ci)
{
    mkdir(dir, 0755);
    char tmp[SH_BUILD_PATH_MAX + 64];
    tmp_name(tmp, sizeof tmp, file);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "%s\n%d\n", ci->version, ci->has_static_libc ? 1 : 0);
    if (fclose(f) == 0) rename(tmp, file); else unlink(tmp);
}

static int mkdir_p(const char *path, sh_err *err);

/* Version line and static-libc availability of the compiler at cc_path.
 * Memoised per process and on disk (keyed by path, size and mtime), so a cache
 * hit in a fresh process runs no compiler either. */
static int cc_probe(const char *cc_path, cc_info *out, sh_err *err)
{
    struct stat st;
    if (stat(cc_path, &st) != 0) return sh_err_set(err, "build: compiler %s: %s", cc_path, strerror(errno));
    uint64_t id = fnv_str(FNV_OFFSET, cc_path);
    long long meta[3] = {(long long)st.st_size, (long long)st.st_mtim.tv_sec, (long long)st.st_mtim.tv_nsec};
    id = fnv_bytes(id, meta, sizeof meta);
    pthread_mutex_lock(&cc_memo_lock);
    int found = 0;
    for (int i = 0; i < cc_memo_n && !found; i++)
        if (cc_memo[i].id == id) { *out = cc_memo[i]; found = 1; }
    pthread_mutex_unlock(&cc_memo_lock);
    if (found) return 0;
    cc_info ci = {.id = id};
    char dir[SH_BUILD_PATH_MAX], file[SH_BUILD_PATH_MAX + 32], hex[17];
    snprintf(dir, sizeof dir, "%s/compilers", sh_cache_dir());
    sh_hash_hex(id, hex);
    snprintf(file, sizeof file, "%s/%s.txt", dir, hex);
    if (probe_load(file, &ci) != 0) {
        if (run_capture_line(cc_path, "--version", ci.version, sizeof ci.version, err) != 0) return -1;
        char libc[SH_BUILD_PATH_MAX];
        if (run_capture_line(cc_path, "-print-file-name=libc.a", libc, sizeof libc, err) != 0) return -1;
        ci.has_static_libc = strchr(libc, '/') && access(libc, R_OK) == 0;
        sh_err tmp;
        if (mkdir_p(sh_cache_dir(), &tmp) == 0) probe_store(dir, file, &ci);
    }
    pthread_mutex_lock(&cc_memo_lock);
    if (cc_memo_n < CC_MEMO) cc_memo[cc_memo_n++] = ci;
    pthread_mutex_unlock(&cc_memo_lock);
    *out = ci;
    return 0;
}

/* ---- files and directories ------------------------------------------------- */

static int mkdir_p(const char *path, sh_err *err)
{
    char tmp[SH_BUILD_PATH_MAX];
    if (!*path) return sh_err_set(err, "build: empty cache directory path");
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return sh_err_set(err, "build: path too long: %s", path);
    for (char *p = tmp + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return sh_err_set(err, "build: cannot create %s: %s", tmp, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    return 0;
}

/* Writes data to path via a temporary file and rename. */
static int write_atomic(const char *path, const char *data, size_t n, sh_err *err)
{
    char tmp[SH_BUILD_PATH_MAX + 32];
    tmp_name(tmp, sizeof tmp, path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return sh_err_set(err, "build: cannot write %s: %s", tmp, strerror(errno));
    size_t w = fwrite(data, 1, n, f);
    int rc = fclose(f);
    if (w != n || rc != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return sh_err_set(err, "build: cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

/* ---- compile command ---------------------------------------------------------- */

typedef struct argvec {
    char *v[MAX_ARGS + 1];
    int n;
    int overflow;
} argvec;

static void av_push(argvec *a, const char *s)
{
    if (a->n >= MAX_ARGS) { a->overflow = 1; return; }
    a->v[a->n++] = strdup(s);
    a->v[a->n] = NULL;
    if (!a->v[a->n - 1]) a->overflow = 1;
}

static void av_free(argvec *a)
{
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    a->n = 0;
}

/* The flags that decide the output (everything but paths). */
static int build_flags(const target_cfg *t, const cc_info *ci, const sh_build_opts *o,
                       argvec *flags, sh_err *err)
{
    av_push(flags, "-std=c11");
    av_push(flags, t->opt);
    if (t->march[0]) {
        char m[96];
        snprintf(m, sizeof m, "-march=%s", t->march);
        av_push(flags, m);
    }
    if (t->scalar) av_push(flags, "-DSHV_SCALAR");
    if (ci->has_static_libc) av_push(flags, "-static");
    else if (t->static_required)
        return sh_err_set(err, "build: no static C library for %s (install the Debian package %s)",
                          t->cc, !strcmp(t->name, "aarch64-linux-gnu") ? "libc6-dev-arm64-cross" : "libc6-dev");
    av_push(flags, "-pthread");
    if (o && o->cflags) {
        const char *p = o->cflags;
        while (*p) {
            p += strspn(p, " \t\n");
            size_t n = strcspn(p, " \t\n");
            if (!n) break;
            char word[512];
            if (n >= sizeof word) return sh_err_set(err, "build: compiler flag too long");
            memcpy(word, p, n);
            word[n] = '\0';
            av_push(flags, word);
            p += n;
        }
    }
    if (flags->overflow) return sh_err_set(err, "build: too many compiler flags");
    return 0;
}

static void join_args(const argvec *a, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < a->n && len + 1 < cap; i++) {
        int k = snprintf(out + len, cap - len, "%s%s", i ? " " : "", a->v[i]);
        if (k < 0) break;
        len += (size_t)k;
        if (len >= cap) { len = cap - 1; break; }
    }
}

/* ---- the build ------------------------------------------------------------------- */

typedef struct build_ctx {
    const sh_genome *g;
    target_cfg t;
    char cc_path[SH_BUILD_PATH_MAX];
    cc_info ci;
    argvec flags;
    char flag_text[FLAG_TEXT_MAX];
    char rt_dir[SH_BUILD_PATH_MAX];
    char rt_hash[17];
    char genome_hash[17];
    char target_name[128];
    uint64_t key;
} build_ctx;

static int compute_key(build_ctx *c, const char *target, const sh_build_opts *o, sh_err *err)
{
    if (sh_genome_validate(c->g, err) != 0) return sh_err_prefix(err, "build");
    if (resolve_target(target, o, &c->t, err) != 0) return -1;
    snprintf(c->target_name, sizeof c->target_name, "%s", target && *target ? target : "native");
    if (which(c->t.cc, c->cc_path, sizeof c->cc_path) != 0) {
        if (c->t.pkg)
            return sh_err_set(err, "build: compiler '%s' for target %s not found in PATH "
                              "(install the Debian package %s)", c->t.cc, c->t.name, c->t.pkg);
        return sh_err_set(err, "build: compiler '%s' not found (or not executable)", c->t.cc);
    }
    if (cc_probe(c->cc_path, &c->ci, err) != 0) return -1;
    if (build_flags(&c->t, &c->ci, o, &c->flags, err) != 0) return -1;
    join_args(&c->flags, c->flag_text, sizeof c->flag_text);
    snprintf(c->rt_dir, sizeof c->rt_dir, "%s", sh_runtime_dir());
    if (sh_build_runtime_hash(c->rt_dir, c->rt_hash, err) != 0) return sh_err_prefix(err, "build");
    sh_hash_hex(sh_genome_hash(c->g), c->genome_hash);
    uint64_t h = FNV_OFFSET;
    h = fnv_str(h, "starhil-variant-v1");
    h = fnv_str(h, c->genome_hash);
    h = fnv_str(h, c->target_name);
    h = fnv_str(h, c->cc_path);
    for (int i = 0; i < c->flags.n; i++) h = fnv_str(h, c->flags.v[i]);
    h = fnv_str(h, c->ci.version);
    h = fnv_str(h, c->rt_hash);
    /* the generated header itself, so a change of the generator is a new key */
    char *hdr = sh_build_header(c->g, c->target_name, c->cc_path, c->flag_text, err);
    if (!hdr) return -1;
    h = fnv_str(h, hdr);
    free(hdr);
    c->key = h;
    return 0;
}

static json_t *argv_json(const argvec *cmd)
{
    json_t *a = json_array();
    for (int i = 0; a && i < cmd->n; i++) json_array_append_new(a, json_string(cmd->v[i]));
    return a;
}

/* build.json: what was built from what, and how ("compile": one command per
 * runtime source, "objects_reused": how many of them the object cache
 * answered, "argv": the link command). */
static int write_build_json(const build_ctx *c, const char *dir, const argvec *compile,
                            size_t n_compile, int reused, const argvec *link, double seconds, sh_err *err)
{
    char *text = malloc(SH_GENOME_TEXT_MAX);
    if (!text) return sh_err_set(err, "build: out of memory");
    sh_genome_format(c->g, text, SH_GENOME_TEXT_MAX, NULL);
    json_t *flags = argv_json(&c->flags), *argv = argv_json(link), *units = json_array();
    for (size_t i = 0; i < n_compile; i++) json_array_append_new(units, argv_json(&compile[i]));
    char when[32], key[17];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    sh_hash_hex(c->key, key);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:i, s:o, s:s, s:s, s:f}",
                          "key", key, "genome_hash", c->genome_hash, "genome", text,
                          "target", c->target_name, "cc", c->cc_path, "cc_version", c->ci.version,
                          "flags", flags, "compile", units, "objects_reused", reused, "argv", argv, "runtime_hash", c->rt_hash,
                          "built_at", when, "compile_seconds", seconds);
    free(text);
    char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    if (!s) return sh_err_set(err, "build: cannot format build.json");
    char path[SH_BUILD_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/build.json", dir);
    size_t n = strlen(s);
    s[n] = '\n';   /* overwrite the NUL: json_dumps leaves no trailing newline */
    int rc = write_atomic(path, s, n + 1, err);
    free(s);
    return rc;
}

/* Tail of the compiler's stderr, trimmed to fit an sh_err with some context. */
static const char *stderr_tail(const char *s, size_t len, size_t keep)
{
    if (len <= keep) return s;
    const char *p = s + len - keep;
    const char *nl = strchr(p, '\n');
    return (nl && nl[1]) ? nl + 1 : p;
}

/* The environment for the compiler: ours with TMPDIR set to tmp_dir, so its
 * intermediate files (cc*.s, cc*.o) live in our temporary directory and go
 * with it.  Pointers into environ plus one malloc'd string (*own). */
static char **compiler_env(const char *tmp_dir, char **own)
{
    extern char **environ;
    size_t n = 0;
    while (environ && environ[n]) n++;
    char **env = calloc(n + 2, sizeof *env);
    size_t len = strlen(tmp_dir) + 8;
    *own = malloc(len);
    if (!env || !*own) { free(env); free(*own); *own = NULL; return NULL; }
    snprintf(*own, len, "TMPDIR=%s", tmp_dir);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "TMPDIR=", 7)) env[k++] = environ[i];
    env[k++] = *own;
    env[k] = NULL;
    return env;
}

/* Runs one compiler command (argv) in dir with env under the supervisor; on
 * failure the error names the genome, the target and the compiler's words. */
static int run_cc_command(const build_ctx *c, char *const argv[], const char *dir, char **env,
                          const char *tmp_dir, const sh_build_opts *o, sh_err *err)
{
    /* if we are killed meanwhile, the supervisor kills the compiler's whole
     * process group and removes the temporary directory (util/proc.h) */
    const char *const on_death[] = {tmp_dir, NULL};
    sh_proc_opts po = {.timeout_s = (o && o->timeout_s > 0) ? o->timeout_s : 900,
                       .max_out = 1 << 16, .max_err = 1 << 16, .cwd = dir, .envp = env,
                       .remove_on_death = on_death};
    sh_proc_result r;
    atomic_fetch_add(&compiler_runs, 1);
    if (sh_proc_run(argv, &po, &r, err) != 0) return sh_err_prefix(err, "build: running %s", c->cc_path);
    int rc = 0;
    if (!(r.exited && r.exit_code == 0)) {
        char how[128];
        sh_proc_describe(&r, how, sizeof how);
        while (r.err_len > 0 && (r.err[r.err_len - 1] == '\n' || r.err[r.err_len - 1] == ' '))
            r.err[--r.err_len] = '\0';
        rc = sh_err_set(err, "build: %s failed for genome %s target %s (%s): %s", c->t.cc,
                        c->genome_hash, c->target_name, how, stderr_tail(r.err, r.err_len, 700));
    }
    sh_proc_result_free(&r);
    return rc;
}

/* The runtime is compiled one translation unit per compiler process, as many
 * at a time as there are CPUs (the largest sources first), then linked: the
 * code is the same as from one `cc a.c b.c ...` (each file is its own unit
 * either way), in about half the time on two cores.
 *
 * A source that defines RT_NO_MODEL sees no genome (evaluator/runtime/rt.h),
 * so its object is the same for every variant of one compiler and flag list:
 * it is kept in sh_cache_dir()/objects/<key>.o, key = FNV-1a 64 of (compiler
 * path and version, flags, the source's preprocessed text), and later builds
 * link that object instead of compiling the source again.  Keying on the
 * preprocessed text (not on names) makes a wrong reuse impossible: any change
 * of the source, of a header it includes or of a macro it sees is a new key. */
typedef struct unit_jobs {
    const build_ctx *c;
    const sh_build_opts *o;
    const char *dir, *tmp_dir;
    char **env;
    argvec *cmds;            /* one compile command per unit              */
    const bool *shared;      /* unit may use / fill the object cache      */
    char (*obj)[SH_BUILD_PATH_MAX + 300];   /* the object each unit links */
    size_t n;
    atomic_size_t next;      /* next unit to start                        */
    atomic_int failed;       /* set by the first failure: start no more   */
    atomic_int reused;       /* units taken from the object cache         */
    pthread_mutex_t lock;
    sh_err first;            /* that failure's message                    */
} unit_jobs;

/* The object-cache key of unit i: its compile command with -E -P instead of
 * -c/-o, hashed with the compiler's identity.  0, or -1 (then no sharing). */
static int shared_object_key(const unit_jobs *j, size_t i, char hex[17])
{
    const argvec *cmd = &j->cmds[i];
    argvec pre = {0};
    for (int k = 0; k < cmd->n - 4; k++) av_push(&pre, cmd->v[k]);   /* drop "-c SRC -o OBJ" */
    av_push(&pre, "-E");
    av_push(&pre, "-P");
    av_push(&pre, cmd->v[cmd->n - 3]);                              /* SRC */
    int rc = -1;
    if (!pre.overflow) {
        sh_proc_opts po = {.timeout_s = 120, .max_out = (size_t)64 << 20, .max_err = 1 << 12,
                           .cwd = j->dir, .envp = j->env};
        sh_proc_result r;
        sh_err e = {{0}};
        atomic_fetch_add(&compiler_runs, 1);
        if (sh_proc_run(pre.v, &po, &r, &e) == 0) {
            if (r.exited && r.exit_code == 0 && !r.out_truncated) {
                uint64_t h = fnv_str(FNV_OFFSET, "starhil-object-v1");
                h = fnv_str(h, j->c->cc_path);
                h = fnv_str(h, j->c->ci.version);
                for (int k = 1; k < cmd->n - 4; k++)
                    if (strncmp(cmd->v[k], "-I", 2)) h = fnv_str(h, cmd->v[k]);   /* paths are in the text */
                h = fnv_bytes(h, r.out, r.out_len);
                sh_hash_hex(h, hex);
                rc = 0;
            }
            sh_proc_result_free(&r);
        }
    }
    av_free(&pre);
    return rc;
}

/* Keeps a freshly compiled object in the cache: a hard link to the complete,
 * closed file, so the name appears with all its bytes at once and a kill
 * leaves nothing half-written (a concurrent builder's link of the same bytes
 * may win: EEXIST).  Best effort: a failure only costs reuse. */
static void keep_object(const char *obj, const char *cached)
{
    (void)link(obj, cached);
}

static void compile_unit(unit_jobs *j, size_t i)
{
    char hex[17], cached[SH_BUILD_PATH_MAX + 300] = "";
    bool keyed = j->shared[i] && shared_object_key(j, i, hex) == 0;
    if (keyed) {
        snprintf(cached, sizeof cached, "%s/objects/%s.o", sh_cache_dir(), hex);
        if (!(j->o && j->o->force) && access(cached, R_OK) == 0) {
            snprintf(j->obj[i], sizeof j->obj[i], "%s", cached);
            atomic_fetch_add(&j->reused, 1);
            return;
        }
    }
    sh_err e = {{0}};
    if (run_cc_command(j->c, j->cmds[i].v, j->dir, j->env, j->tmp_dir, j->o, &e) != 0) {
        pthread_mutex_lock(&j->lock);
        if (!atomic_exchange(&j->failed, 1)) j->first = e;
        pthread_mutex_unlock(&j->lock);
        return;
    }
    if (keyed) keep_object(j->obj[i], cached);
}

static void *unit_worker(void *arg)
{
    unit_jobs *j = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n || atomic_load(&j->failed)) break;
        compile_unit(j, i);
    }
    return NULL;
}

typedef struct sized_name { char *name; long size; } sized_name;

static int by_size_desc(const void *a, const void *b)
{
    const sized_name *x = a, *y = b;
    return x->size < y->size ? 1 : x->size > y->size ? -1 : strcmp(x->name, y->name);
}

/* names[] reordered largest file first: the longest compile starts first. */
static void order_by_size(const char *dir, char **names, size_t n)
{
    sized_name *s = malloc(n * sizeof *s);
    if (!s) return;   /* keep the alphabetical order */
    for (size_t i = 0; i < n; i++) {
        char p[SH_BUILD_PATH_MAX + 256];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        s[i].name = names[i];
        s[i].size = stat(p, &st) == 0 ? (long)st.st_size : 0;
    }
    qsort(s, n, sizeof *s, by_size_desc);
    for (size_t i = 0; i < n; i++) names[i] = s[i].name;
    free(s);
}

/* True if the source defines RT_NO_MODEL (see above). */
static bool genome_free_source(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) found = !strncmp(line, "#define RT_NO_MODEL", 19);
    fclose(f);
    return found;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compile_jobs(size_t units)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    if (cpus > 8) cpus = 8;
    return (int)((size_t)cpus < units ? (size_t)cpus : units);
}

/* Pushes compiler, flags, include dirs: the start of every command. */
static void push_common(const build_ctx *c, const char *dir, argvec *cmd)
{
    char inc_dir[SH_BUILD_PATH_MAX + 4], inc_rt[SH_BUILD_PATH_MAX + 4];
    av_push(cmd, c->cc_path);
    for (int i = 0; i < c->flags.n; i++) av_push(cmd, c->flags.v[i]);
    snprintf(inc_dir, sizeof inc_dir, "-I%s", dir);
    snprintf(inc_rt, sizeof inc_rt, "-I%s", c->rt_dir);
    av_push(cmd, inc_dir);
    av_push(cmd, inc_rt);
}

/* Runs the unit compiles on compile_jobs() threads (this one included). */
static void run_units(unit_jobs *j)
{
    atomic_init(&j->next, 0);
    atomic_init(&j->failed, 0);
    atomic_init(&j->reused, 0);
    pthread_mutex_init(&j->lock, NULL);
    int nt = compile_jobs(j->n), started = 0;
    pthread_t th[8];
    for (int t = 1; t < nt; t++)
        if (pthread_create(&th[started], NULL, unit_worker, j) == 0) started++;
    unit_worker(j);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    pthread_mutex_destroy(&j->lock);
}

static int run_compiler(build_ctx *c, const char *dir, const char *tmp_dir, const char *tmp_exe,
                        const sh_build_opts *o, double *seconds, sh_err *err)
{
    char **names;
    size_t n;
    if (list_sources(c->rt_dir, true, &names, &n, err) != 0) return -1;
    if (n == 0) { free_names(names, n); return sh_err_set(err, "build: no C sources in %s", c->rt_dir); }
    order_by_size(c->rt_dir, names, n);

    argvec *cmds = calloc(n, sizeof *cmds);
    bool *shared = calloc(n, sizeof *shared);
    char (*obj)[SH_BUILD_PATH_MAX + 300] = calloc(n, sizeof *obj);
    int rc = (cmds && shared && obj) ? 0 : sh_err_set(err, "build: out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char src[SH_BUILD_PATH_MAX + 256];
        snprintf(src, sizeof src, "%s/%s", c->rt_dir, names[i]);
        snprintf(obj[i], sizeof obj[i], "%s/%zu-%s.o", tmp_dir, i, names[i]);
        shared[i] = genome_free_source(src);
        push_common(c, dir, &cmds[i]);
        av_push(&cmds[i], "-c");
        av_push(&cmds[i], src);
        av_push(&cmds[i], "-o");
        av_push(&cmds[i], obj[i]);
        if (cmds[i].overflow) rc = sh_err_set(err, "build: compiler command too long");
    }
    free_names(names, n);
    if (rc == 0) {
        char objects[SH_BUILD_PATH_MAX + 16];
        snprintf(objects, sizeof objects, "%s/objects", sh_cache_dir());
        sh_err ignored = {{0}};
        if (mkdir_p(objects, &ignored) != 0)
            for (size_t i = 0; i < n; i++) shared[i] = false;   /* no sharing, still a build */
    }

    char *tmp_env = NULL;
    char **env = NULL;
    if (rc == 0 && !(env = compiler_env(tmp_dir, &tmp_env))) rc = sh_err_set(err, "build: out of memory");
    double t0 = wall_now();
    int reused = 0;
    if (rc == 0) {
        unit_jobs j = {.c = c, .o = o, .dir = dir, .tmp_dir = tmp_dir, .env = env, .cmds = cmds,
                       .shared = shared, .obj = obj, .n = n};
        run_units(&j);
        reused = atomic_load(&j.reused);
        if (atomic_load(&j.failed)) { *err = j.first; rc = -1; }
    }
    argvec link = {0};
    if (rc == 0) {
        push_common(c, dir, &link);
        av_push(&link, "-o");
        av_push(&link, tmp_exe);
        for (size_t i = 0; i < n; i++) av_push(&link, obj[i]);
        av_push(&link, "-lm");
        if (link.overflow) rc = sh_err_set(err, "build: compiler command too long");
    }
    if (rc == 0) rc = run_cc_command(c, link.v, dir, env, tmp_dir, o, err);
    *seconds = wall_now() - t0;
    if (rc == 0) rc = write_build_json(c, dir, cmds, n, reused, &link, *seconds, err);
    free(env);
    free(tmp_env);
    for (size_t i = 0; cmds && i < n; i++) av_free(&cmds[i]);
    free(cmds);
    free(shared);
    free(obj);
    av_free(&link);
    return rc;
}

static void progress(const sh_build_opts *o, const build_ctx *c)
{
    if (o && o->on_compile) o->on_compile(c->genome_hash, c->target_name, c->t.cc, o->on_compile_ctx);
}

/* Under the entry lock: write the header, compile to a temp file, rename. */
static int build_locked(build_ctx *c, const char *dir, const char *exe,
                        const sh_build_opts *o, sh_build_result *res, sh_err *err)
{
    char *hdr = sh_build_header(c->g, c->target_name, c->cc_path, c->flag_text, err);
    if (!hdr) return -1;
    char path[SH_BUILD_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/sh_variant.h", dir);
    int rc = write_atomic(path, hdr, strlen(hdr), err);
    free(hdr);
    if (rc != 0) return -1;
    /* compile into a private directory "variant.tmp.PID.N/" (the compiler's
     * TMPDIR too), then rename the executable into place */
    char tmp_dir[SH_BUILD_PATH_MAX + 32], tmp_exe[SH_BUILD_PATH_MAX + 48];
    tmp_name(tmp_dir, sizeof tmp_dir, exe);
    snprintf(tmp_exe, sizeof tmp_exe, "%s/variant", tmp_dir);
    if (mkdir(tmp_dir, 0700) != 0)
        return sh_err_set(err, "build: cannot create %s: %s", tmp_dir, strerror(errno));
    /* the build runs several compiler processes one after another; a guard
     * removes the directory if we die between them, even by SIGKILL */
    sh_proc_guard guard;
    if (sh_proc_guard_start(tmp_dir, &guard, err) != 0) {
        sh_proc_remove_tree(tmp_dir);
        return sh_err_prefix(err, "build");
    }
    progress(o, c);
    double secs = 0;
    rc = run_compiler(c, dir, tmp_dir, tmp_exe, o, &secs, err);
    if (rc == 0 && rename(tmp_exe, exe) != 0)
        rc = sh_err_set(err, "build: cannot move the executable into %s: %s", exe, strerror(errno));
    sh_proc_guard_end(&guard);   /* removes tmp_dir */
    if (rc != 0) return -1;
    res->compile_seconds = secs;
    return 0;
}

/* ---- leftovers of killed builds ------------------------------------------- */

/* "NAME.tmp.<pid>.<n>" -> pid, or -1 if name is not one of our temporaries. */
static long tmp_owner(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    if (!t) return -1;
    char *end;
    errno = 0;
    long pid = strtol(t + 5, &end, 10);
    if (errno || end == t + 5 || *end != '.' || !end[1] || strspn(end + 1, "0123456789") != strlen(end + 1))
        return -1;
    return pid;
}

static void sweep_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = tmp_owner(e->d_name);
        if (pid <= 0 || !sh_proc_pid_dead(pid)) continue;
        char p[SH_BUILD_PATH_MAX + 300];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        sh_proc_remove_tree(p);
    }
    closedir(d);
}

/* Once per process: temporaries in the cache whose process is gone (a build
 * killed so hard that its supervisor could not remove them either). */
static void sweep_stale(void)
{
    char dir[SH_BUILD_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/compilers", sh_cache_dir());
    sweep_dir(dir);
    snprintf(dir, sizeof dir, "%s/objects", sh_cache_dir());
    sweep_dir(dir);
    snprintf(dir, sizeof dir, "%s/variants", sh_cache_dir());
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[SH_BUILD_PATH_MAX + 300];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        sweep_dir(sub);
    }
    closedir(d);
}

static pthread_once_t sweep_once = PTHREAD_ONCE_INIT;

int sh_build_variant_ex(const sh_genome *g, const char *target, const sh_build_opts *o,
                        sh_build_result *res, sh_err *err)
{
    pthread_once(&sweep_once, sweep_stale);
    memset(res, 0, sizeof *res);
    build_ctx c;
    memset(&c, 0, sizeof c);
    c.g = g;
    int rc = compute_key(&c, target, o, err);
    if (rc == 0) {
        sh_hash_hex(c.key, res->key);
        int k1 = snprintf(res->dir, sizeof res->dir, "%s/variants/%s", sh_cache_dir(), res->key);
        int k2 = snprintf(res->exe_path, sizeof res->exe_path, "%s/variant", res->dir);
        if (k1 >= (int)sizeof res->dir || k2 >= (int)sizeof res->exe_path)
            rc = sh_err_set(err, "build: cache path too long");
    }
    if (rc == 0 && !(o && o->force) && access(res->exe_path, X_OK) == 0) {
        res->cache_hit = true;
        av_free(&c.flags);
        return 0;
    }
    if (rc == 0) rc = mkdir_p(res->dir, err);
    int lock = -1;
    if (rc == 0) {
        char lp[SH_BUILD_PATH_MAX + 8];
        snprintf(lp, sizeof lp, "%s/.lock", res->dir);
        lock = open(lp, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
        if (lock < 0 || flock(lock, LOCK_EX) != 0)
            rc = sh_err_set(err, "build: cannot lock %s: %s", lp, strerror(errno));
    }
    if (rc == 0) {
        /* another builder may have finished while we waited for the lock */
        if (!(o && o->force) && access(res->exe_path, X_OK) == 0) res->cache_hit = true;
        else rc = build_locked(&c, res->dir, res->exe_path, o, res, err);
    }
    if (lock >= 0) close(lock);   /* releases the flock */
    av_free(&c.flags);
    return rc;
}

int sh_build_variant(const sh_genome *g, const char *target, const sh_build_opts *opts,
                     char *exe_path_out, size_t cap, sh_err *err)
{
    sh_build_result res;
    if (sh_build_variant_ex(g, target, opts, &res, err) != 0) return -1;
    if (!exe_path_out || strlen(res.exe_path) >= cap)
        return sh_err_set(err, "build: output buffer too small for %s", res.exe_path);
    memcpy(exe_path_out, res.exe_path, strlen(res.exe_path) + 1);
    return 0;
}
