/* llamacpp_peer.c - drives llama.cpp's CPU library (libllama + libggml, loaded at
 * run time with dlopen from the directory given) as a benchmark and parity peer
 * of the variant runtime.  Nothing of llama.cpp is compiled into starhil: this
 * file declares only the few C entry points it calls, and treats llama.cpp's
 * parameter structs as opaque buffers returned by its own *_default_params(),
 * setting only their first three fields (n_ctx, n_batch, n_ubatch of the
 * context parameters, stable since the C API began); threads are set with
 * llama_set_n_threads.  Everything else stays at llama.cpp's defaults.
 *
 *   llamacpp_peer info   LIBDIR
 *   llamacpp_peer logits LIBDIR FILE.gguf TOKENS OUT.f32 [prefill|decode] [THREADS]
 *       logits of every position of TOKENS (comma-separated ids) as f32 [n][V]
 *   llamacpp_peer tokenize LIBDIR FILE.gguf TEXT
 *       the file's tokenizer applied to TEXT (add_special, parse_special) as
 *       llama-cli does with -p TEXT; prints {"n_tokens":N,"tokens":[...]}, exit 1
 *       if llama.cpp refuses (a no_vocab file cannot tokenize text)
 *   llamacpp_peer bench  LIBDIR FILE.gguf PROMPT GEN THREADS REPS
 *       llama-bench's pp/tg measurements: pp = PROMPT random tokens in one batch
 *       (n_batch = n_ubatch = PROMPT) on a cleared cache; tg = GEN single-token
 *       decodes from an empty cache; one warm-up run of each first; prints JSON
 *       with tokens/s of every repetition.
 * Build: cc -O2 -o llamacpp_peer llamacpp_peer.c -ldl */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { unsigned char b[2048]; } opaque_params;   /* larger than either real struct */
typedef struct peer_batch {   /* llama_batch, unchanged since the C API began */
    int32_t n_tokens;
    int32_t *token;
    float *embd;
    int32_t *pos;
    int32_t *n_seq_id;
    int32_t **seq_id;
    int8_t *logits;
} peer_batch;

static void (*p_backend_init)(void);
static void (*p_load_all_from_path)(const char *);
static opaque_params (*p_model_defaults)(void);
static opaque_params (*p_ctx_defaults)(void);
static void *(*p_model_load)(const char *, opaque_params);
static void *(*p_init_from_model)(void *, opaque_params);
static peer_batch (*p_batch_init)(int32_t, int32_t, int32_t);
static void (*p_batch_free)(peer_batch);
static int32_t (*p_decode)(void *, peer_batch);
static float *(*p_logits_ith)(void *, int32_t);
static void *(*p_get_memory)(void *);
static void (*p_memory_clear)(void *, _Bool);
static void (*p_set_threads)(void *, int32_t, int32_t);
static const void *(*p_model_vocab)(const void *);
static int32_t (*p_vocab_n)(const void *);
static int32_t (*p_tokenize)(const void *, const char *, int32_t, int32_t *, int32_t, _Bool, _Bool);
static void (*p_free)(void *);
static void (*p_model_free)(void *);
static const char *(*p_sysinfo)(void);
static const char *(*p_commit)(void);

static void *sym(void *h, const char *name)
{
    void *p = dlsym(h, name);
    if (!p) { fprintf(stderr, "llamacpp_peer: %s not found: %s\n", name, dlerror()); exit(1); }
    return p;
}

static void *open_lib(const char *dir, const char *const *names)
{
    char path[4096];
    for (int i = 0; names[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
        if (h) return h;
    }
    return NULL;
}

static void load(const char *dir)
{
    static const char *const ggml[] = {"libggml.so", "libggml.v0.4.0.so", NULL};
    static const char *const llama[] = {"libllama.so", "libllama.v0.4.0.so", NULL};
    static const char *const common[] = {"libllama-common.so", "libcommon.so", NULL};
    void *g = open_lib(dir, ggml), *l = open_lib(dir, llama);
    if (!g || !l) { fprintf(stderr, "llamacpp_peer: no libggml/libllama in %s: %s\n", dir, dlerror()); exit(1); }
    void *c = open_lib(dir, common);
    *(void **)&p_load_all_from_path = sym(g, "ggml_backend_load_all_from_path");
    *(void **)&p_backend_init = sym(l, "llama_backend_init");
    *(void **)&p_model_defaults = sym(l, "llama_model_default_params");
    *(void **)&p_ctx_defaults = sym(l, "llama_context_default_params");
    *(void **)&p_model_load = sym(l, "llama_model_load_from_file");
    *(void **)&p_init_from_model = sym(l, "llama_init_from_model");
    *(void **)&p_batch_init = sym(l, "llama_batch_init");
    *(void **)&p_batch_free = sym(l, "llama_batch_free");
    *(void **)&p_decode = sym(l, "llama_decode");
    *(void **)&p_logits_ith = sym(l, "llama_get_logits_ith");
    *(void **)&p_get_memory = sym(l, "llama_get_memory");
    *(void **)&p_memory_clear = sym(l, "llama_memory_clear");
    *(void **)&p_set_threads = sym(l, "llama_set_n_threads");
    *(void **)&p_model_vocab = sym(l, "llama_model_get_vocab");
    *(void **)&p_vocab_n = sym(l, "llama_vocab_n_tokens");
    *(void **)&p_tokenize = sym(l, "llama_tokenize");
    *(void **)&p_free = sym(l, "llama_free");
    *(void **)&p_model_free = sym(l, "llama_model_free");
    *(void **)&p_sysinfo = sym(l, "llama_print_system_info");
    if (c) *(void **)&p_commit = dlsym(c, "_Z12llama_commitv");
    p_load_all_from_path(dir);
    p_backend_init();
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *g_model, *g_ctx;

static void open_model(const char *gguf, uint32_t n_ctx, uint32_t n_batch, int threads)
{
    g_model = p_model_load(gguf, p_model_defaults());
    if (!g_model) { fprintf(stderr, "llamacpp_peer: llama.cpp could not load %s\n", gguf); exit(1); }
    opaque_params cp = p_ctx_defaults();
    uint32_t f[3] = {n_ctx, n_batch, n_batch};   /* n_ctx, n_batch, n_ubatch */
    memcpy(cp.b, f, sizeof f);
    g_ctx = p_init_from_model(g_model, cp);
    if (!g_ctx) { fprintf(stderr, "llamacpp_peer: no context for %s\n", gguf); exit(1); }
    p_set_threads(g_ctx, threads, threads);
}

/* decode tokens[0..n) at positions pos0.., outputs for all (all=1) or the last */
static void run_batch(const int32_t *tok, int n, int pos0, int all)
{
    peer_batch b = p_batch_init(n, 0, 1);
    b.n_tokens = n;
    for (int i = 0; i < n; i++) {
        b.token[i] = tok[i];
        b.pos[i] = pos0 + i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = (int8_t)(all || i == n - 1);
    }
    int32_t rc = p_decode(g_ctx, b);
    p_batch_free(b);
    if (rc != 0) { fprintf(stderr, "llamacpp_peer: llama_decode returned %d\n", rc); exit(1); }
}

static int parse_tokens(const char *s, int32_t **out)
{
    int n = 1;
    for (const char *p = s; *p; p++) n += *p == ',';
    int32_t *t = malloc((size_t)n * sizeof *t);
    if (!t) exit(1);
    char *end;
    for (int i = 0; i < n; i++) {
        t[i] = (int32_t)strtol(s, &end, 10);
        if (end == s) { fprintf(stderr, "llamacpp_peer: bad token list\n"); exit(2); }
        s = *end == ',' ? end + 1 : end;
    }
    *out = t;
    return n;
}

static void json_str(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 32) printf("\\u%04x", (unsigned char)*s);
        else putchar(*s);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: llamacpp_peer info LIBDIR | logits LIBDIR GGUF TOKENS OUT [prefill|decode] [THREADS]\n"
                        "       | tokenize LIBDIR GGUF TEXT | bench LIBDIR GGUF PROMPT GEN THREADS REPS\n");
        return 2;
    }
    load(argv[2]);
    if (!strcmp(argv[1], "info")) {
        printf("{\"commit\":");
        json_str(p_commit ? p_commit() : "unknown");
        printf(",\"system_info\":");
        json_str(p_sysinfo());
        printf("}\n");
        return 0;
    }
    if (!strcmp(argv[1], "tokenize") && argc >= 5) {
        g_model = p_model_load(argv[3], p_model_defaults());
        if (!g_model) { fprintf(stderr, "llamacpp_peer: llama.cpp could not load %s\n", argv[3]); return 1; }
        int32_t tok[4096];
        int32_t n = p_tokenize(p_model_vocab(g_model), argv[4], (int32_t)strlen(argv[4]), tok, 4096, 1, 1);
        if (n < 0) { fprintf(stderr, "llamacpp_peer: llama_tokenize failed (%d)\n", (int)n); return 1; }
        printf("{\"n_tokens\":%d,\"tokens\":[", (int)n);
        for (int i = 0; i < n; i++) printf("%s%d", i ? "," : "", (int)tok[i]);
        printf("]}\n");
        p_model_free(g_model);
        return 0;
    }
    if (!strcmp(argv[1], "logits") && argc >= 6) {
        int32_t *tok;
        int n = parse_tokens(argv[4], &tok);
        int decode = argc > 6 && !strcmp(argv[6], "decode");
        int threads = argc > 7 ? atoi(argv[7]) : 2;
        open_model(argv[3], (uint32_t)(n < 64 ? 64 : n), (uint32_t)(n < 64 ? 64 : n), threads);
        int V = p_vocab_n(p_model_vocab(g_model));
        FILE *f = fopen(argv[5], "wb");
        if (!f) { perror(argv[5]); return 1; }
        if (!decode) {
            run_batch(tok, n, 0, 1);
            for (int i = 0; i < n; i++) fwrite(p_logits_ith(g_ctx, i), sizeof(float), (size_t)V, f);
        } else {
            for (int i = 0; i < n; i++) {
                run_batch(tok + i, 1, i, 1);
                fwrite(p_logits_ith(g_ctx, 0), sizeof(float), (size_t)V, f);
            }
        }
        if (fclose(f)) return 1;
        p_free(g_ctx);
        p_model_free(g_model);
        free(tok);
        return 0;
    }
    if (!strcmp(argv[1], "bench") && argc >= 8) {
        int prompt = atoi(argv[4]), gen = atoi(argv[5]), threads = atoi(argv[6]), reps = atoi(argv[7]);
        if (prompt < 1 || gen < 1 || threads < 1 || reps < 1) { fprintf(stderr, "llamacpp_peer: bad numbers\n"); return 2; }
        open_model(argv[3], (uint32_t)(prompt > gen ? prompt : gen) + 16, (uint32_t)prompt, threads);
        int V = p_vocab_n(p_model_vocab(g_model));
        int32_t *tok = malloc((size_t)prompt * sizeof *tok);
        if (!tok) return 1;
        srand(1);
        for (int i = 0; i < prompt; i++) tok[i] = rand() % V;
        double *pp = calloc((size_t)reps, sizeof *pp), *tg = calloc((size_t)reps, sizeof *tg);
        if (!pp || !tg) return 1;
        for (int r = -1; r < reps; r++) {   /* r = -1: warm-up */
            p_memory_clear(p_get_memory(g_ctx), 1);
            double t0 = now();
            run_batch(tok, prompt, 0, 0);
            double t1 = now();
            p_memory_clear(p_get_memory(g_ctx), 1);
            int32_t t = tok[0];
            double t2 = now();
            for (int i = 0; i < gen; i++) {
                run_batch(&t, 1, i, 0);
                t = (t * 7 + 13) % V;
            }
            double t3 = now();
            if (r >= 0) { pp[r] = prompt / (t1 - t0); tg[r] = gen / (t3 - t2); }
        }
        printf("{\"commit\":");
        json_str(p_commit ? p_commit() : "unknown");
        printf(",\"prompt\":%d,\"gen\":%d,\"threads\":%d,\"pp_tok_s\":[", prompt, gen, threads);
        for (int r = 0; r < reps; r++) printf("%s%.3f", r ? "," : "", pp[r]);
        printf("],\"tg_tok_s\":[");
        for (int r = 0; r < reps; r++) printf("%s%.3f", r ? "," : "", tg[r]);
        printf("]}\n");
        p_free(g_ctx);
        p_model_free(g_model);
        free(tok); free(pp); free(tg);
        return 0;
    }
    fprintf(stderr, "llamacpp_peer: unknown command or missing arguments\n");
    return 2;
}
