/* genome_text.c - the canonical one-line text form of a genome: parser and
 * formatter (grammar in genome.h).  The parser is written for hostile input:
 * bounded length, bounded numbers, bounded repeat counts, and every error names
 * the character position and what was expected. */
#include "genome/genome.h"
#include "util/strbuf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sh_genome_init(sh_genome *g)
{
    memset(g, 0, sizeof *g);
    g->vocab = 65536;
    g->hidden = 1024;
    g->head_dim = 64;
    g->rope_theta = 1000000.0;
    g->norm_eps = 1e-5;
    g->max_context = 128000;
    g->tied_embeddings = true;
    g->rope_scaling = SH_ROPE_NONE;
    g->rope_factor = 1.0;
    g->rope_low_freq = 1.0;
    g->rope_high_freq = 4.0;
    g->rope_orig_context = 8192;
}

/* ---- formatting ------------------------------------------------------------ */

typedef struct outbuf {
    char *buf;
    size_t cap, len;
    int overflow;
} outbuf;

__attribute__((format(printf, 2, 3)))
static void out_printf(outbuf *o, const char *fmt, ...)
{
    if (o->overflow) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) { o->overflow = 1; return; }
    o->len += (size_t)n;
}

static void format_layer(outbuf *o, const sh_layer *l)
{
    const sh_mixer *m = &l->mixer;
    const sh_ffn *f = &l->ffn;
    if (m->kind == SH_MIXER_CONV) out_printf(o, "conv(%d)", m->conv_kernel);
    else out_printf(o, "gqa(%d,%d%s)", m->n_heads, m->n_kv_heads, m->qk_norm ? ",qk" : "");
    if (f->kind == SH_FFN_SWIGLU) out_printf(o, "/swiglu(%d)", f->width);
    else out_printf(o, "/moe(%d,%d,%d%s)", f->n_experts, f->top_k, f->expert_width, f->router_bias ? ",bias" : "");
}

int sh_genome_format(const sh_genome *g, char *buf, size_t cap, sh_err *err)
{
    outbuf o = {buf, cap, 0, 0};
    char theta[32], eps[32];
    sh_fmt_double(g->rope_theta, theta, sizeof theta, 0);
    sh_fmt_double(g->norm_eps, eps, sizeof eps, 0);
    out_printf(&o, "d=%d v=%d hd=%d theta=%s eps=%s ctx=%d tie=%d", g->hidden, g->vocab, g->head_dim,
               theta, eps, g->max_context, g->tied_embeddings ? 1 : 0);
    if (g->rope_scaling == SH_ROPE_LLAMA3) {
        char f[32], lo[32], hi[32];
        sh_fmt_double(g->rope_factor, f, sizeof f, 0);
        sh_fmt_double(g->rope_low_freq, lo, sizeof lo, 0);
        sh_fmt_double(g->rope_high_freq, hi, sizeof hi, 0);
        out_printf(&o, " rope=llama3(%s,%s,%s,%d)", f, lo, hi, g->rope_orig_context);
    }
    out_printf(&o, " |");
    for (int i = 0; i < g->n_layers;) {
        int run = 1;
        while (i + run < g->n_layers && sh_layer_equal(&g->layers[i], &g->layers[i + run])) run++;
        out_printf(&o, " ");
        format_layer(&o, &g->layers[i]);
        if (run > 1) out_printf(&o, "*%d", run);
        i += run;
    }
    if (o.overflow) {
        if (cap) buf[0] = '\0';
        return sh_err_set(err, "genome text: does not fit in %zu bytes", cap);
    }
    return 0;
}

/* ---- parsing ---------------------------------------------------------------- */

typedef struct parser {
    const char *text;
    const char *p;
    sh_err *err;
} parser;

static int perr(parser *ps, const char *what)
{
    size_t pos = (size_t)(ps->p - ps->text);
    char near[24];
    size_t k = 0;
    for (const char *q = ps->p; *q && k < sizeof near - 1 && !isspace((unsigned char)*q); q++) near[k++] = *q;
    near[k] = '\0';
    if (*ps->p == '\0') return sh_err_set(ps->err, "genome text: at end of input: %s", what);
    return sh_err_set(ps->err, "genome text: at character %zu ('%s'): %s", pos + 1, near, what);
}

static void skip_space(parser *ps)
{
    while (isspace((unsigned char)*ps->p)) ps->p++;
}

static int expect_char(parser *ps, char c)
{
    if (*ps->p != c) {
        char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", c);
        return perr(ps, msg);
    }
    ps->p++;
    return 0;
}

static int parse_int(parser *ps, long long lo, long long hi, const char *field, int *out)
{
    if (!isdigit((unsigned char)*ps->p)) {
        char msg[96];
        snprintf(msg, sizeof msg, "expected a whole number for %s", field);
        return perr(ps, msg);
    }
    long long v = 0;
    const char *start = ps->p;
    while (isdigit((unsigned char)*ps->p)) {
        v = v * 10 + (*ps->p - '0');
        if (v > hi || v > INT_MAX) {
            ps->p = start;
            char msg[128];
            snprintf(msg, sizeof msg, "%s too large (limit %lld)", field, hi);
            return perr(ps, msg);
        }
        ps->p++;
    }
    if (v < lo) {
        ps->p = start;
        char msg[128];
        snprintf(msg, sizeof msg, "%s must be at least %lld", field, lo);
        return perr(ps, msg);
    }
    *out = (int)v;
    return 0;
}

static int parse_double(parser *ps, const char *field, double *out)
{
    char buf[64];
    size_t k = 0;
    while ((isalnum((unsigned char)*ps->p) || *ps->p == '.' || *ps->p == '-' || *ps->p == '+') && k < sizeof buf - 1)
        buf[k++] = *ps->p++;
    buf[k] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (k == 0 || *end || errno || !isfinite(v)) {
        ps->p -= k;
        char msg[96];
        snprintf(msg, sizeof msg, "expected a finite number for %s", field);
        return perr(ps, msg);
    }
    *out = v;
    return 0;
}

static bool match_word(parser *ps, const char *w)
{
    size_t n = strlen(w);
    if (strncmp(ps->p, w, n) == 0 && !isalnum((unsigned char)ps->p[n])) {
        ps->p += n;
        return true;
    }
    return false;
}

static int parse_mixer(parser *ps, sh_mixer *m)
{
    memset(m, 0, sizeof *m);
    if (match_word(ps, "conv")) {
        m->kind = SH_MIXER_CONV;
        if (expect_char(ps, '(') || parse_int(ps, 2, SH_LIMIT_CONV_KERNEL, "conv kernel", &m->conv_kernel) ||
            expect_char(ps, ')'))
            return -1;
        return 0;
    }
    if (match_word(ps, "gqa")) {
        m->kind = SH_MIXER_GQA;
        if (expect_char(ps, '(') || parse_int(ps, 1, SH_LIMIT_HEADS, "gqa heads", &m->n_heads) ||
            expect_char(ps, ',') || parse_int(ps, 1, SH_LIMIT_HEADS, "gqa kv heads", &m->n_kv_heads))
            return -1;
        if (*ps->p == ',') {
            ps->p++;
            if (!match_word(ps, "qk")) return perr(ps, "expected 'qk' (QK-norm) or ')'");
            m->qk_norm = true;
        }
        return expect_char(ps, ')');
    }
    return perr(ps, "expected a token mixer: conv(L) or gqa(H,KV[,qk])");
}

static int parse_ffn(parser *ps, sh_ffn *f)
{
    memset(f, 0, sizeof *f);
    if (match_word(ps, "swiglu")) {
        f->kind = SH_FFN_SWIGLU;
        if (expect_char(ps, '(') || parse_int(ps, 1, SH_LIMIT_FFN, "swiglu width", &f->width) ||
            expect_char(ps, ')'))
            return -1;
        return 0;
    }
    if (match_word(ps, "moe")) {
        f->kind = SH_FFN_MOE;
        if (expect_char(ps, '(') || parse_int(ps, 1, SH_LIMIT_EXPERTS, "moe experts", &f->n_experts) ||
            expect_char(ps, ',') || parse_int(ps, 1, SH_LIMIT_EXPERTS, "moe top-k", &f->top_k) ||
            expect_char(ps, ',') || parse_int(ps, 1, SH_LIMIT_FFN, "moe expert width", &f->expert_width))
            return -1;
        if (*ps->p == ',') {
            ps->p++;
            if (!match_word(ps, "bias")) return perr(ps, "expected 'bias' (router bias) or ')'");
            f->router_bias = true;
        }
        return expect_char(ps, ')');
    }
    return perr(ps, "expected a channel mixer: swiglu(F) or moe(E,K,FE[,bias])");
}

static int parse_layers(parser *ps, sh_genome *g)
{
    g->n_layers = 0;
    for (;;) {
        skip_space(ps);
        if (!*ps->p) break;
        sh_layer l;
        if (parse_mixer(ps, &l.mixer)) return -1;
        if (expect_char(ps, '/')) return -1;
        if (parse_ffn(ps, &l.ffn)) return -1;
        int repeat = 1;
        if (*ps->p == '*') {
            ps->p++;
            if (parse_int(ps, 1, SH_MAX_LAYERS, "repeat count", &repeat)) return -1;
        }
        if (*ps->p && !isspace((unsigned char)*ps->p)) return perr(ps, "expected a space between layers");
        if (g->n_layers + repeat > SH_MAX_LAYERS)
            return perr(ps, "too many layers (limit " /* keep the literal in sync */ "256)");
        for (int r = 0; r < repeat; r++) g->layers[g->n_layers++] = l;
    }
    if (g->n_layers == 0) return perr(ps, "a genome needs at least one layer after '|'");
    return 0;
}

static int parse_rope(parser *ps, sh_genome *g)
{
    if (match_word(ps, "none")) {
        g->rope_scaling = SH_ROPE_NONE;
        return 0;
    }
    if (!match_word(ps, "llama3")) return perr(ps, "expected rope scaling 'none' or 'llama3(f,lo,hi,ctx)'");
    g->rope_scaling = SH_ROPE_LLAMA3;
    if (expect_char(ps, '(') || parse_double(ps, "rope factor", &g->rope_factor) || expect_char(ps, ',') ||
        parse_double(ps, "rope low frequency factor", &g->rope_low_freq) || expect_char(ps, ',') ||
        parse_double(ps, "rope high frequency factor", &g->rope_high_freq) || expect_char(ps, ',') ||
        parse_int(ps, 1, SH_LIMIT_CONTEXT, "rope original context", &g->rope_orig_context) ||
        expect_char(ps, ')'))
        return -1;
    return 0;
}

static int parse_global(parser *ps, sh_genome *g, unsigned *seen)
{
    const char *start = ps->p;
    char key[16];
    size_t k = 0;
    while (isalpha((unsigned char)*ps->p) && k < sizeof key - 1) key[k++] = *ps->p++;
    key[k] = '\0';
    if (*ps->p != '=') {
        ps->p = start;
        return perr(ps, "expected key=value (d, v, hd, theta, eps, ctx, tie, rope) or '|'");
    }
    ps->p++;
    static const char *keys[] = {"d", "v", "hd", "theta", "eps", "ctx", "tie", "rope"};
    int idx = -1;
    for (int i = 0; i < 8; i++)
        if (!strcmp(key, keys[i])) idx = i;
    if (idx < 0) {
        ps->p = start;
        return perr(ps, "unknown global key");
    }
    if (*seen & (1u << idx)) {
        ps->p = start;
        return perr(ps, "global key given twice");
    }
    *seen |= 1u << idx;
    int tie;
    switch (idx) {
    case 0: return parse_int(ps, 1, SH_LIMIT_HIDDEN, "hidden (d)", &g->hidden);
    case 1: return parse_int(ps, 2, SH_LIMIT_VOCAB, "vocab (v)", &g->vocab);
    case 2: return parse_int(ps, 2, SH_LIMIT_HEAD_DIM, "head_dim (hd)", &g->head_dim);
    case 3: return parse_double(ps, "rope theta", &g->rope_theta);
    case 4: return parse_double(ps, "norm eps", &g->norm_eps);
    case 5: return parse_int(ps, 1, SH_LIMIT_CONTEXT, "max context (ctx)", &g->max_context);
    case 6:
        if (parse_int(ps, 0, 1, "tied embeddings (tie, 0 or 1)", &tie)) return -1;
        g->tied_embeddings = tie == 1;
        return 0;
    default: return parse_rope(ps, g);
    }
}

int sh_genome_parse(const char *text, sh_genome *out, sh_err *err)
{
    if (!text) return sh_err_set(err, "genome text: empty");
    size_t n = strnlen(text, SH_GENOME_TEXT_MAX + 1);
    if (n > SH_GENOME_TEXT_MAX)
        return sh_err_set(err, "genome text: longer than %d bytes", SH_GENOME_TEXT_MAX);
    sh_genome g;
    sh_genome_init(&g);
    parser ps = {text, text, err};
    unsigned seen = 0;
    for (;;) {
        skip_space(&ps);
        if (*ps.p == '|') { ps.p++; break; }
        if (!*ps.p) return perr(&ps, "expected '|' before the layers");
        if (parse_global(&ps, &g, &seen)) return -1;
        if (*ps.p && !isspace((unsigned char)*ps.p) && *ps.p != '|')
            return perr(&ps, "expected a space after a global value");
    }
    const unsigned required = (1u << 0) | (1u << 1) | (1u << 2);
    if ((seen & required) != required)
        return sh_err_set(err, "genome text: the globals d= (hidden), v= (vocab) and hd= (head_dim) are required");
    if (parse_layers(&ps, &g)) return -1;
    if (sh_genome_validate(&g, err)) return -1;
    *out = g;
    return 0;
}
