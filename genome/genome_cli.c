/* genome_cli.c - `starhil genome`: list presets, show a genome's analytics,
 * compare two genomes, validate, convert between text and JSON, hash, import. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "genome/genome.h"
#include "util/opt.h"

#define DEFAULT_CONTEXT 32768

#define STR_(x) #x
#define STR(x) STR_(x)
static const char GENOME_ABOUT[] =
    "GENOME is a preset name (see `genome list`), a file holding the text or JSON\n"
    "form, or the text form itself, e.g.\n"
    "  'd=256 v=4096 hd=64 | conv(3)/swiglu(768)*2 gqa(4,2,qk)/swiglu(768)'\n"
    "Text form: globals d= v= hd= [theta= eps= ctx= tie= rope=llama3(f,lo,hi,ctx)] then '|'\n"
    "and layers MIXER/FFN[*N] with MIXER conv(L) | gqa(H,KV[,qk]) and FFN\n"
    "swiglu(F) | moe(E,K,FE[,bias]).  Cache bytes are at --context tokens (default " STR(DEFAULT_CONTEXT) ")\n"
    "with the KV cache in --kv-type (default f16, as llama.cpp).\n";

typedef struct show_opts {
    long long context;
    sh_dtype kv_type;
    bool json;
    const char *args[2];
    int n_args;
} show_opts;

/* Options of `genome show` / `genome compare`; 0, -1 after --help, 2 on a usage error. */
static int parse_show_opts(int argc, char **argv, int want_args, show_opts *o)
{
    memset(o, 0, sizeof *o);
    o->context = DEFAULT_CONTEXT;
    o->kv_type = SH_DTYPE_F16;
    long context = DEFAULT_CONTEXT;
    const char *kv = NULL;
    const sh_opt t[] = {
        {"--context", NULL, SH_OPT_LONG, &context, "N", "context length for cache bytes (default 32768)", 0,
         SH_LIMIT_CONTEXT, NULL},
        {"--kv-type", NULL, SH_OPT_STR, &kv, "T", "KV cache type: f16 (default, as llama.cpp), f32 or q8_0", 0, 0, NULL},
        {"--json", NULL, SH_OPT_FLAG, &o->json, NULL, "print JSON", 0, 0, NULL},
    };
    char name[32];
    snprintf(name, sizeof name, "genome %s", argv[0]);
    sh_cmd_spec spec = {name, want_args == 1 ? "GENOME" : "A B", NULL,
                        want_args == 1 ? "Parameters, memory and cache bytes of a genome (preset, file or text).\n"
                                       : "Two genomes side by side, with their ratios.\n",
                        t, 3, want_args, want_args};
    int n, rc = sh_opt_parse(&spec, argc, argv, o->args, &n);
    if (rc) return rc == 1 ? -1 : 2;
    o->n_args = n;
    o->context = context;
    if (kv && (sh_dtype_parse(kv, &o->kv_type) || o->kv_type == SH_DTYPE_Q4_0)) {
        fprintf(stderr, "starhil genome %s: --kv-type: '%s' is not one of f32, f16, q8_0\n", argv[0], kv);
        return 2;
    }
    return 0;
}

static int load(const char *arg, sh_genome *g)
{
    sh_err err;
    if (sh_genome_resolve(arg, g, &err)) {
        fprintf(stderr, "starhil genome: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* 1234567 -> "1,234,567" */
static const char *commas(unsigned long long v, char *buf, size_t cap)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%llu", v);
    size_t n = strlen(tmp), o = 0;
    for (size_t i = 0; i < n && o + 2 < cap; i++) {
        buf[o++] = tmp[i];
        if ((n - i - 1) % 3 == 0 && i + 1 < n) buf[o++] = ',';
    }
    buf[o] = '\0';
    return buf;
}

static const char *human_bytes(double b, char *buf, size_t cap)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) { b /= 1024; i++; }
    snprintf(buf, cap, i ? "%.2f %s" : "%.0f %s", b, u[i]);
    return buf;
}

static const sh_preset *find_preset(const sh_genome *g)
{
    for (int i = 0; i < sh_preset_count(); i++) {
        sh_genome p;
        if (sh_preset_get(sh_preset_at(i)->name, &p, NULL) == 0 && sh_genome_equal(&p, g)) return sh_preset_at(i);
    }
    return NULL;
}

/* ---- the analytics record, shared by show and compare ---- */
typedef struct analytics {
    sh_param_count pc;
    double flops_prefill, flops_decode;
    uint64_t weight_bytes[SH_DTYPE_COUNT];
    uint64_t kv_bytes, conv_bytes;
    int n_conv, n_gqa, n_swiglu, n_moe;
} analytics;

static void compute(const sh_genome *g, const show_opts *o, analytics *a)
{
    sh_genome_params(g, &a->pc);
    a->flops_prefill = sh_genome_flops_prefill(g, (uint64_t)(o->context ? o->context : 1));
    a->flops_decode = sh_genome_flops_decode(g, (uint64_t)o->context);
    for (int t = 0; t < SH_DTYPE_COUNT; t++) a->weight_bytes[t] = sh_genome_weight_bytes(g, sh_dtype_at(t));
    a->kv_bytes = sh_genome_kv_bytes(g, (uint64_t)o->context, o->kv_type);
    a->conv_bytes = sh_genome_conv_state_bytes(g);
    a->n_conv = sh_genome_count_mixer(g, SH_MIXER_CONV);
    a->n_gqa = sh_genome_count_mixer(g, SH_MIXER_GQA);
    a->n_swiglu = sh_genome_count_ffn(g, SH_FFN_SWIGLU);
    a->n_moe = sh_genome_count_ffn(g, SH_FFN_MOE);
}

static json_t *analytics_json(const sh_genome *g, const show_opts *o, const analytics *a)
{
    char hex[17], text[SH_GENOME_TEXT_MAX];
    sh_hash_hex(sh_genome_hash(g), hex);
    sh_genome_format(g, text, sizeof text, NULL);
    const sh_preset *p = find_preset(g);
    char *gj = sh_genome_to_json(g, false, NULL);
    json_t *genome = gj ? json_loads(gj, 0, NULL) : json_null();
    free(gj);
    json_t *wb = json_object();
    for (int t = 0; t < SH_DTYPE_COUNT; t++)
        json_object_set_new(wb, sh_dtype_name(sh_dtype_at(t)), json_integer((json_int_t)a->weight_bytes[t]));
    json_t *r = json_pack(
        "{s:s, s:s, s:o, s:o, s:{s:i, s:i, s:i, s:i, s:i},"
        " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I},"
        " s:{s:I, s:f, s:f}, s:o, s:{s:I, s:s, s:I, s:I, s:I}}",
        "hash", hex, "text", text, "preset", p ? json_string(p->name) : json_null(), "genome", genome,
        "layers", "total", g->n_layers, "conv", a->n_conv, "gqa", a->n_gqa, "swiglu", a->n_swiglu, "moe", a->n_moe,
        "params", "total", (json_int_t)a->pc.total, "active", (json_int_t)a->pc.active, "embedding",
        (json_int_t)a->pc.embedding, "conv", (json_int_t)a->pc.conv, "attention", (json_int_t)a->pc.attention,
        "ffn_dense", (json_int_t)a->pc.ffn_dense, "ffn_moe", (json_int_t)a->pc.ffn_moe, "norms",
        (json_int_t)a->pc.norms,
        "flops_per_token", "context", (json_int_t)o->context, "prefill", a->flops_prefill, "decode", a->flops_decode,
        "weight_bytes", wb,
        "cache_bytes", "context", (json_int_t)o->context, "kv_type", sh_dtype_name(o->kv_type), "kv",
        (json_int_t)a->kv_bytes, "conv_state", (json_int_t)a->conv_bytes, "total",
        (json_int_t)(a->kv_bytes + a->conv_bytes));
    if (p && p->published_params) {
        json_object_set_new(r, "published_params", json_integer(p->published_params));
        if (p->published_active) json_object_set_new(r, "published_active", json_integer(p->published_active));
    }
    return r;
}

static void print_layers(const sh_genome *g)
{
    printf("layers\n");
    for (int i = 0; i < g->n_layers;) {
        int run = 1;
        while (i + run < g->n_layers && sh_layer_equal(&g->layers[i], &g->layers[i + run])) run++;
        char idx[24];
        if (run > 1) snprintf(idx, sizeof idx, "%d-%d", i, i + run - 1);
        else snprintf(idx, sizeof idx, "%d", i);
        const sh_layer *l = &g->layers[i];
        char mix[64], ffn[64];
        if (l->mixer.kind == SH_MIXER_CONV) snprintf(mix, sizeof mix, "conv   L=%d", l->mixer.conv_kernel);
        else snprintf(mix, sizeof mix, "gqa    heads %d/%d%s", l->mixer.n_heads, l->mixer.n_kv_heads,
                      l->mixer.qk_norm ? " qk-norm" : "");
        if (l->ffn.kind == SH_FFN_SWIGLU) snprintf(ffn, sizeof ffn, "swiglu %d", l->ffn.width);
        else snprintf(ffn, sizeof ffn, "moe    %d experts top-%d width %d%s", l->ffn.n_experts, l->ffn.top_k,
                      l->ffn.expert_width, l->ffn.router_bias ? " bias" : "");
        printf("  %-8s %-26s %s\n", idx, mix, ffn);
        i += run;
    }
}

static int cmd_show(int argc, char **argv)
{
    show_opts o;
    int rc = parse_show_opts(argc, argv, 1, &o);
    if (rc) return rc < 0 ? 0 : rc;
    sh_genome g;
    if (load(o.args[0], &g)) return 1;
    analytics a;
    compute(&g, &o, &a);
    if (o.json) {
        json_t *j = analytics_json(&g, &o, &a);
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        printf("%s\n", s);
        free(s);
        json_decref(j);
        return 0;
    }
    char hex[17], text[SH_GENOME_TEXT_MAX], b1[48], b2[48];
    sh_hash_hex(sh_genome_hash(&g), hex);
    sh_genome_format(&g, text, sizeof text, NULL);
    const sh_preset *p = find_preset(&g);
    printf("genome %s%s%s\n", hex, p ? "  preset " : "", p ? p->name : "");
    printf("text   %s\n\n", text);
    printf("hidden %d  vocab %d  head_dim %d  rope theta %g  norm eps %g  max context %d  tied %s%s\n",
           g.hidden, g.vocab, g.head_dim, g.rope_theta, g.norm_eps, g.max_context, g.tied_embeddings ? "yes" : "no",
           g.rope_scaling == SH_ROPE_LLAMA3 ? "  rope scaling llama3" : "");
    printf("%d layers: %d conv, %d gqa; %d swiglu, %d moe\n\n", g.n_layers, a.n_conv, a.n_gqa, a.n_swiglu, a.n_moe);
    print_layers(&g);
    printf("\nparameters\n");
    printf("  %-14s %18s\n", "embedding", commas(a.pc.embedding, b1, sizeof b1));
    printf("  %-14s %18s\n", "conv mixers", commas(a.pc.conv, b1, sizeof b1));
    printf("  %-14s %18s\n", "attention", commas(a.pc.attention, b1, sizeof b1));
    printf("  %-14s %18s\n", "swiglu", commas(a.pc.ffn_dense, b1, sizeof b1));
    printf("  %-14s %18s\n", "moe", commas(a.pc.ffn_moe, b1, sizeof b1));
    printf("  %-14s %18s  (QK-norm gains included; they are counted under attention)\n", "norm gains", commas(a.pc.norms, b1, sizeof b1));
    printf("  %-14s %18s", "total", commas(a.pc.total, b1, sizeof b1));
    if (p && p->published_params)
        printf("  published %s: %s", commas((unsigned long long)p->published_params, b2, sizeof b2),
               (long long)a.pc.total == p->published_params ? "exact match" : "MISMATCH");
    printf("\n  %-14s %18s", "active/token", commas(a.pc.active, b1, sizeof b1));
    if (p && p->published_active)
        printf("  published %s: %s", commas((unsigned long long)p->published_active, b2, sizeof b2),
               (long long)a.pc.active == p->published_active ? "exact match" : "MISMATCH");
    printf("\n\nFLOPs per token at context %lld\n", o.context);
    printf("  %-14s %14.4g  (mean over a prompt of %lld tokens)\n", "prefill", a.flops_prefill,
           o.context ? o.context : 1);
    printf("  %-14s %14.4g  (one step with %lld tokens cached)\n", "decode", a.flops_decode, o.context);
    printf("\nweight bytes (norms, conv kernels, routers stay f32)\n");
    for (int t = 0; t < SH_DTYPE_COUNT; t++)
        printf("  %-14s %18s  %s\n", sh_dtype_name(sh_dtype_at(t)), commas(a.weight_bytes[t], b1, sizeof b1),
               human_bytes((double)a.weight_bytes[t], b2, sizeof b2));
    printf("\ncache at context %lld\n", o.context);
    printf("  %-14s %18s  %s\n", "kv", commas(a.kv_bytes, b1, sizeof b1), human_bytes((double)a.kv_bytes, b2, sizeof b2));
    printf("  %-14s %18s  %s\n", "conv state", commas(a.conv_bytes, b1, sizeof b1),
           human_bytes((double)a.conv_bytes, b2, sizeof b2));
    printf("  %-14s %18s  %s  (KV in %s)\n", "total", commas(a.kv_bytes + a.conv_bytes, b1, sizeof b1),
           human_bytes((double)(a.kv_bytes + a.conv_bytes), b2, sizeof b2), sh_dtype_name(o.kv_type));
    return 0;
}

static void compare_row(const char *label, double va, double vb, int bytes)
{
    char a[48], b[48];
    if (bytes) { human_bytes(va, a, sizeof a); human_bytes(vb, b, sizeof b); }
    else { snprintf(a, sizeof a, "%.4g", va); snprintf(b, sizeof b, "%.4g", vb); }
    if (va > 0) printf("  %-22s %16s %16s %9.3fx\n", label, a, b, vb / va);
    else printf("  %-22s %16s %16s %10s\n", label, a, b, "-");
}

static int cmd_compare(int argc, char **argv)
{
    show_opts o;
    int rc = parse_show_opts(argc, argv, 2, &o);
    if (rc) return rc < 0 ? 0 : rc;
    sh_genome ga, gb;
    if (load(o.args[0], &ga) || load(o.args[1], &gb)) return 1;
    analytics a, b;
    compute(&ga, &o, &a);
    compute(&gb, &o, &b);
    double cache_a = (double)(a.kv_bytes + a.conv_bytes), cache_b = (double)(b.kv_bytes + b.conv_bytes);
    if (o.json) {
        json_t *j = json_pack("{s:o, s:o, s:{s:f, s:f, s:f}}", "a", analytics_json(&ga, &o, &a), "b",
                              analytics_json(&gb, &o, &b), "ratios_b_over_a", "params",
                              (double)b.pc.total / (double)a.pc.total, "decode_flops",
                              b.flops_decode / a.flops_decode, "cache_bytes", cache_a > 0 ? cache_b / cache_a : 0.0);
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        printf("%s\n", s);
        free(s);
        json_decref(j);
        return 0;
    }
    printf("A: %s\nB: %s\n\n", o.args[0], o.args[1]);
    printf("  %-22s %16s %16s %10s\n", "", "A", "B", "B/A");
    compare_row("layers", ga.n_layers, gb.n_layers, 0);
    compare_row("attention layers", a.n_gqa, b.n_gqa, 0);
    compare_row("conv layers", a.n_conv, b.n_conv, 0);
    compare_row("params total", (double)a.pc.total, (double)b.pc.total, 0);
    compare_row("params active", (double)a.pc.active, (double)b.pc.active, 0);
    compare_row("FLOPs/token prefill", a.flops_prefill, b.flops_prefill, 0);
    compare_row("FLOPs/token decode", a.flops_decode, b.flops_decode, 0);
    for (int t = 0; t < SH_DTYPE_COUNT; t++) {
        char label[40];
        snprintf(label, sizeof label, "weights %s", sh_dtype_name(sh_dtype_at(t)));
        compare_row(label, (double)a.weight_bytes[t], (double)b.weight_bytes[t], 1);
    }
    char label[64];
    snprintf(label, sizeof label, "kv cache (%s)", sh_dtype_name(o.kv_type));
    compare_row(label, (double)a.kv_bytes, (double)b.kv_bytes, 1);
    compare_row("conv state", (double)a.conv_bytes, (double)b.conv_bytes, 1);
    compare_row("cache total", cache_a, cache_b, 1);
    printf("\nat context %lld: ", o.context);
    if (cache_a < cache_b) printf("A's cache is %.1f%% smaller than B's\n", 100.0 * (1.0 - cache_a / cache_b));
    else if (cache_b < cache_a) printf("B's cache is %.1f%% smaller than A's\n", 100.0 * (1.0 - cache_b / cache_a));
    else printf("the caches are the same size\n");
    return 0;
}

static int cmd_list(int argc, char **argv)
{
    bool json = false;
    const sh_opt t[] = {{"--json", NULL, SH_OPT_FLAG, &json, NULL, "print a JSON array", 0, 0, NULL}};
    sh_cmd_spec spec = {"genome list", NULL, NULL, "The preset genomes with their parameter counts and hashes.\n", t, 1,
                        0, 0};
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    json_t *arr = json_array();
    if (!json) printf("%-14s %16s %16s  %-16s %s\n", "preset", "params", "active", "hash", "description");
    for (int i = 0; i < sh_preset_count(); i++) {
        const sh_preset *p = sh_preset_at(i);
        sh_genome g;
        sh_err err;
        if (sh_preset_get(p->name, &g, &err)) { fprintf(stderr, "starhil genome: %s\n", err.msg); json_decref(arr); return 1; }
        sh_param_count pc;
        sh_genome_params(&g, &pc);
        char hex[17], b1[32], b2[32], text[SH_GENOME_TEXT_MAX];
        sh_hash_hex(sh_genome_hash(&g), hex);
        sh_genome_format(&g, text, sizeof text, NULL);
        if (json)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "name", p->name, "description",
                                                 p->description, "hash", hex, "text", text, "params",
                                                 (json_int_t)pc.total, "active", (json_int_t)pc.active));
        else
            printf("%-14s %16s %16s  %-16s %s\n", p->name, commas(pc.total, b1, sizeof b1),
                   commas(pc.active, b2, sizeof b2), hex, p->description);
    }
    if (json) {
        char *s = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
    }
    json_decref(arr);
    return 0;
}

static int cmd_validate(int argc, char **argv)
{
    bool json = false;
    const sh_opt t[] = {{"--json", NULL, SH_OPT_FLAG, &json, NULL,
                         "a JSON array of {genome, ok, hash | error} objects", 0, 0, NULL}};
    sh_cmd_spec spec = {"genome validate", "GENOME...", NULL,
                        "Checks each genome (preset, file or text); exit 1 if any is invalid.\n", t, 1, 1, 256};
    const char *pos[256];
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    int bad = 0;
    json_t *arr = json_array();
    for (int i = 0; i < n_pos; i++) {
        sh_genome g;
        sh_err err;
        if (sh_genome_resolve(pos[i], &g, &err)) {
            if (json) json_array_append_new(arr, json_pack("{s:s,s:b,s:s}", "genome", pos[i], "ok", 0, "error", err.msg));
            else fprintf(stderr, "%s\n", err.msg);
            bad = 1;
        } else {
            char hex[17];
            sh_hash_hex(sh_genome_hash(&g), hex);
            if (json) json_array_append_new(arr, json_pack("{s:s,s:b,s:s}", "genome", pos[i], "ok", 1, "hash", hex));
            else printf("ok %s %s\n", hex, pos[i]);
        }
    }
    if (json) {
        char *txt = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (txt) printf("%s\n", txt);
        free(txt);
    }
    json_decref(arr);
    return bad;
}

static int cmd_convert(int argc, char **argv, int what)
{
    bool json = false;
    static const char *const about[] = {"The canonical one-line text form of a genome.\n",
                                        "The JSON form of a genome.\n",
                                        "The 64-bit identity of a genome (hex), as stored in runs.\n"};
    const sh_opt t[] = {{"--json", NULL, SH_OPT_FLAG, &json, NULL, "print {hash, text} as JSON", 0, 0, NULL}};
    char name[32];
    snprintf(name, sizeof name, "genome %s", argv[0]);
    sh_cmd_spec spec = {name, "GENOME", NULL, about[what], t, what == 1 ? 0 : 1, 1, 1};   /* json: JSON already */
    const char *pos[1];
    int n_pos, prc = sh_opt_parse(&spec, argc, argv, pos, &n_pos);
    if (prc) return prc == 1 ? 0 : 2;
    sh_genome g;
    if (load(pos[0], &g)) return 1;
    if (json) {   /* text --json, hash --json */
        char hex[17], text[SH_GENOME_TEXT_MAX];
        sh_hash_hex(sh_genome_hash(&g), hex);
        sh_genome_format(&g, text, sizeof text, NULL);
        json_t *o = json_pack("{s:s,s:s}", "hash", hex, "text", text);
        char *txt = o ? json_dumps(o, JSON_PRESERVE_ORDER) : NULL;
        if (txt) printf("%s\n", txt);
        free(txt);
        json_decref(o);
        return 0;
    }
    if (what == 0) {
        char text[SH_GENOME_TEXT_MAX];
        sh_genome_format(&g, text, sizeof text, NULL);
        printf("%s\n", text);
    } else if (what == 1) {
        sh_err err;
        char *s = sh_genome_to_json(&g, true, &err);
        if (!s) { fprintf(stderr, "starhil genome: %s\n", err.msg); return 1; }
        printf("%s\n", s);
        free(s);
    } else {
        char hex[17];
        sh_hash_hex(sh_genome_hash(&g), hex);
        printf("%s\n", hex);
    }
    return 0;
}

/* `genome import` reads formats of the reports module (config.json, GGUF);
 * cli/main.c routes it there before this group is reached.  It is listed here
 * so that `starhil genome --help` names it. */
static int cmd_import_routed(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "starhil genome import: not available in this program (cli/main.c routes it)\n");
    return 2;
}

static int cmd_text(int argc, char **argv) { return cmd_convert(argc, argv, 0); }
static int cmd_json(int argc, char **argv) { return cmd_convert(argc, argv, 1); }
static int cmd_hash(int argc, char **argv) { return cmd_convert(argc, argv, 2); }

int sh_cmd_genome(int argc, char **argv)
{
    static const sh_subcmd subs[] = {
        {"list", NULL, "the preset genomes with their parameter counts and hashes"},
        {"show", "GENOME", "parameters, memory and cache bytes of a genome"},
        {"compare", "A B", "two genomes side by side, with their ratios"},
        {"validate", "GENOME...", "check genomes, naming the place and the problem"},
        {"text", "GENOME", "canonical one-line text form"},
        {"json", "GENOME", "JSON form"},
        {"hash", "GENOME", "64-bit identity (hex)"},
        {"import", "CONFIG.json|FILE.gguf", "from a Hugging Face LFM2 config or the metadata of a GGUF file"},
    };
    static int (*const run[])(int, char **) = {cmd_list, cmd_show, cmd_compare, cmd_validate,
                                               cmd_text, cmd_json, cmd_hash, cmd_import_routed};
    const sh_group_spec g = {"genome", GENOME_ABOUT, subs, (int)(sizeof subs / sizeof subs[0])};
    int rc, i = sh_opt_group_pick(&g, argc, argv, &rc);
    return i < 0 ? rc : run[i](argc - 1, argv + 1);   /* each subcommand has its own --help */
}
