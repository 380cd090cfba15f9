/* test_genome.c - the genome module: exact parameter counts of every preset,
 * text/JSON round trips, hash stability, every validation error, analytics by
 * hand, hostile input, and the `starhil genome` CLI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "genome/genome.h"
#include "util/proc.h"
#include "util/rng.h"

static sh_genome preset(const char *name)
{
    sh_genome g;
    sh_err err;
    int rc = sh_preset_get(name, &g, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    return g;
}

/* ---- presets reproduce the published counts exactly ---- */
static void test_preset_param_counts(void **state)
{
    (void)state;
    struct { const char *name; unsigned long long total, active; } want[] = {
        {"lfm2-350m", 354483968ULL, 354483968ULL},
        {"lfm2-700m", 742489344ULL, 742489344ULL},
        {"lfm2-1.2b", 1170340608ULL, 1170340608ULL},
        {"lfm2-2.6b", 2569272320ULL, 2569272320ULL},
        {"lfm2-8b-a1b", 8339929856ULL, 1557740288ULL},
        {"qwen3-0.6b", 596049920ULL, 596049920ULL},
        {"qwen3-1.7b", 1720574976ULL, 1720574976ULL},
        {"llama-3.2-1b", 1235814400ULL, 1235814400ULL},
    };
    assert_int_equal(sh_preset_count(), 8);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        sh_genome g = preset(want[i].name);
        sh_param_count pc;
        sh_genome_params(&g, &pc);
        if (pc.total != want[i].total || pc.active != want[i].active)
            fail_msg("%s: params %llu/%llu, want %llu/%llu", want[i].name, (unsigned long long)pc.total,
                     (unsigned long long)pc.active, want[i].total, want[i].active);
        assert_int_equal((long long)pc.total, sh_preset_at((int)i)->published_params);
    }
}

static void test_preset_layouts(void **state)
{
    (void)state;
    /* attention indices from the reference sheet */
    struct { const char *name; int n; int attn[8]; int n_attn; } want[] = {
        {"lfm2-350m", 16, {2, 5, 8, 10, 12, 14}, 6},
        {"lfm2-1.2b", 16, {2, 5, 8, 10, 12, 14}, 6},
        {"lfm2-2.6b", 30, {2, 5, 9, 13, 17, 21, 24, 27}, 8},
        {"lfm2-8b-a1b", 24, {2, 6, 10, 14, 18, 21}, 6},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        sh_genome g = preset(want[i].name);
        assert_int_equal(g.n_layers, want[i].n);
        int k = 0;
        for (int l = 0; l < g.n_layers; l++) {
            if (g.layers[l].mixer.kind == SH_MIXER_GQA) {
                assert_true(k < want[i].n_attn);
                assert_int_equal(l, want[i].attn[k]);
                assert_true(g.layers[l].mixer.qk_norm);
                assert_int_equal(g.layers[l].mixer.n_kv_heads, 8);
                k++;
            } else {
                assert_int_equal(g.layers[l].mixer.conv_kernel, 3);
            }
        }
        assert_int_equal(k, want[i].n_attn);
    }
    sh_genome moe = preset("lfm2-8b-a1b");
    assert_int_equal(moe.layers[0].ffn.kind, SH_FFN_SWIGLU);
    assert_int_equal(moe.layers[1].ffn.width, 7168);
    assert_int_equal(moe.layers[2].ffn.kind, SH_FFN_MOE);
    assert_int_equal(moe.layers[23].ffn.expert_width, 1792);
    sh_genome q = preset("qwen3-0.6b");
    assert_int_equal(q.head_dim, 128);           /* head_dim independent of hidden/heads */
    assert_int_equal(q.hidden / q.layers[0].mixer.n_heads, 64);
    sh_genome l = preset("llama-3.2-1b");
    assert_int_equal(l.rope_scaling, SH_ROPE_LLAMA3);
    assert_false(l.layers[0].mixer.qk_norm);
    sh_err err;
    sh_genome tmp;
    assert_int_equal(sh_preset_get("lfm2-9000m", &tmp, &err), -1);
    assert_non_null(strstr(err.msg, "unknown preset"));
    assert_non_null(strstr(err.msg, "lfm2-350m"));
}

/* ---- random genomes for round-trip properties ---- */
static int rnd(uint64_t *s, int lo, int hi) { return lo + (int)(sh_splitmix64(s) % (uint64_t)(hi - lo + 1)); }

static void random_genome(uint64_t *s, sh_genome *g)
{
    sh_genome_init(g);
    g->hidden = 32 * rnd(s, 1, 64);
    g->vocab = rnd(s, 2, 200000);
    g->head_dim = 2 * rnd(s, 1, 128);
    g->rope_theta = 1.0 + rnd(s, 1, 5000000) * 0.37;
    g->norm_eps = rnd(s, 1, 1000) * 1e-8;
    g->max_context = rnd(s, 1, 1 << 20);
    g->tied_embeddings = rnd(s, 0, 1);
    if (rnd(s, 0, 3) == 0) {
        g->rope_scaling = SH_ROPE_LLAMA3;
        g->rope_factor = rnd(s, 1, 64);
        g->rope_low_freq = rnd(s, 1, 3) * 0.5;
        g->rope_high_freq = g->rope_low_freq + rnd(s, 1, 8);
        g->rope_orig_context = rnd(s, 256, 16384);
    }
    g->n_layers = rnd(s, 1, 40);
    for (int i = 0; i < g->n_layers; i++) {
        sh_layer *l = &g->layers[i];
        memset(l, 0, sizeof *l);
        if (i > 0 && rnd(s, 0, 2) == 0) { *l = g->layers[i - 1]; continue; } /* runs for the *N form */
        if (rnd(s, 0, 1)) {
            l->mixer.kind = SH_MIXER_CONV;
            l->mixer.conv_kernel = rnd(s, 2, 8);
        } else {
            l->mixer.kind = SH_MIXER_GQA;
            l->mixer.n_kv_heads = rnd(s, 1, 8);
            l->mixer.n_heads = l->mixer.n_kv_heads * rnd(s, 1, 4);
            l->mixer.qk_norm = rnd(s, 0, 1);
        }
        if (rnd(s, 0, 2)) {
            l->ffn.kind = SH_FFN_SWIGLU;
            l->ffn.width = rnd(s, 1, 20000);
        } else {
            l->ffn.kind = SH_FFN_MOE;
            l->ffn.n_experts = rnd(s, 1, 64);
            l->ffn.top_k = rnd(s, 1, l->ffn.n_experts);
            l->ffn.expert_width = rnd(s, 1, 4096);
            l->ffn.router_bias = rnd(s, 0, 1);
        }
    }
}

static void test_round_trips(void **state)
{
    (void)state;
    uint64_t seed = 42;
    for (int it = 0; it < 400 + sh_preset_count(); it++) {
        sh_genome g;
        if (it < sh_preset_count()) g = preset(sh_preset_at(it)->name);
        else random_genome(&seed, &g);
        sh_err err;
        if (sh_genome_validate(&g, &err)) fail_msg("random genome invalid: %s", err.msg);
        char text[SH_GENOME_TEXT_MAX], text2[SH_GENOME_TEXT_MAX];
        assert_int_equal(sh_genome_format(&g, text, sizeof text, &err), 0);
        sh_genome back;
        if (sh_genome_parse(text, &back, &err)) fail_msg("parse of own text failed: %s\n%s", err.msg, text);
        assert_true(sh_genome_equal(&g, &back));
        assert_int_equal(memcmp(&g.layers, &back.layers, sizeof(sh_layer) * (size_t)g.n_layers), 0);
        assert_true(g.rope_theta == back.rope_theta && g.norm_eps == back.norm_eps);
        assert_int_equal(sh_genome_format(&back, text2, sizeof text2, &err), 0);
        assert_string_equal(text, text2);
        /* JSON both ways, compact and pretty */
        for (int pretty = 0; pretty < 2; pretty++) {
            char *js = sh_genome_to_json(&g, pretty, &err);
            assert_non_null(js);
            sh_genome fromj;
            if (sh_genome_from_json(js, &fromj, &err)) fail_msg("json parse failed: %s\n%s", err.msg, js);
            free(js);
            assert_true(sh_genome_equal(&g, &fromj));
            assert_true(fromj.rope_theta == g.rope_theta && fromj.norm_eps == g.norm_eps &&
                        fromj.rope_factor == g.rope_factor);
            assert_true(sh_genome_hash(&fromj) == sh_genome_hash(&g));
        }
    }
}

static void test_text_form_details(void **state)
{
    (void)state;
    sh_genome a, b;
    sh_err err;
    /* globals in any order, extra whitespace, repeats vs spelled out: same genome, same hash */
    assert_int_equal(sh_genome_parse("d=64 v=100 hd=16 | conv(3)/swiglu(64)*2 gqa(4,2,qk)/swiglu(64)", &a, &err), 0);
    assert_int_equal(sh_genome_parse("  hd=16   v=100\td=64|conv(3)/swiglu(64) conv(3)/swiglu(64)   gqa(4,2,qk)/swiglu(64) ",
                                     &b, &err), 0);
    assert_true(sh_genome_hash(&a) == sh_genome_hash(&b));
    char text[SH_GENOME_TEXT_MAX];
    sh_genome_format(&b, text, sizeof text, &err);
    assert_non_null(strstr(text, "conv(3)/swiglu(64)*2 gqa(4,2,qk)/swiglu(64)"));
    /* defaults for the optional globals are LFM2's */
    assert_true(a.rope_theta == 1e6 && a.norm_eps == 1e-5 && a.tied_embeddings);
    /* any change changes the hash */
    b.layers[2].mixer.qk_norm = false;
    assert_true(sh_genome_hash(&a) != sh_genome_hash(&b));
    b = a;
    b.norm_eps = 1e-6;
    assert_true(sh_genome_hash(&a) != sh_genome_hash(&b));
    /* format into a too-small buffer is an error, not an overflow */
    char tiny[16];
    assert_int_equal(sh_genome_format(&a, tiny, sizeof tiny, &err), -1);
    assert_non_null(strstr(err.msg, "does not fit"));
}

static void test_hash_stability(void **state)
{
    (void)state;
    /* Golden values: the hash is the identity stored in every database; if one
     * changes, existing databases no longer find their genomes.  Change these
     * only together with a schema migration. */
    struct { const char *name; const char *hex; } golden[] = {
        {"lfm2-350m", "0a8193c85ffc2d77"},
        {"lfm2-1.2b", "53d8093075d74c10"},
        {"lfm2-8b-a1b", "1d1bd71d9d93e096"},
        {"qwen3-1.7b", "85d9157e33fbc38a"},
        {"llama-3.2-1b", "d1174344ad0265db"},
    };
    for (size_t i = 0; i < sizeof golden / sizeof golden[0]; i++) {
        sh_genome g = preset(golden[i].name);
        char hex[17];
        sh_hash_hex(sh_genome_hash(&g), hex);
        assert_string_equal(hex, golden[i].hex);
        sh_hash back;
        assert_int_equal(sh_hash_parse(hex, &back), 0);
        assert_true(back == sh_genome_hash(&g));
    }
    sh_hash h;
    assert_int_equal(sh_hash_parse("xyz", &h), -1);
    assert_int_equal(sh_hash_parse("0123456789abcdeg", &h), -1);
    /* FNV-1a 64 of the canonical text, computed independently here */
    sh_genome g = preset("lfm2-350m");
    char text[SH_GENOME_TEXT_MAX];
    sh_genome_format(&g, text, sizeof text, NULL);
    uint64_t f = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) { f ^= *p; f *= 0x100000001b3ULL; }
    assert_true(f == sh_genome_hash(&g));
}

/* ---- every validation error names the layer and the field ---- */
static void expect_invalid(const char *text, const char *msg)
{
    sh_genome g;
    sh_err err = {{0}};
    int rc = sh_genome_parse(text, &g, &err);
    if (rc == 0) fail_msg("accepted invalid genome: %s", text);
    if (!strstr(err.msg, msg)) fail_msg("error for '%s' was '%s', expected it to contain '%s'", text, err.msg, msg);
}

static void test_validation_errors(void **state)
{
    (void)state;
    const char *G = "d=64 v=100 hd=16 | ";
    char buf[512];
#define BAD(layers, msg) do { snprintf(buf, sizeof buf, "%s%s", G, layers); expect_invalid(buf, msg); } while (0)
    BAD("conv(3)/swiglu(64)*7 gqa(12,5)/swiglu(64)", "layer 7: gqa heads (12) not a multiple of kv heads (5)");
    BAD("gqa(4,8)/swiglu(64)", "layer 0: gqa kv heads (8) exceed heads (4)");
    BAD("conv(1)/swiglu(64)", "conv kernel must be at least 2");
    BAD("conv(65)/swiglu(64)", "conv kernel too large (limit 64)");
    BAD("conv(3)/moe(8,9,32)", "layer 0: moe top-k (9) must be in [1, experts (8)]");
    BAD("conv(3)/moe(2000,2,32)", "moe experts too large");
    BAD("conv(3)/swiglu(0)", "swiglu width must be at least 1");
    BAD("conv(3)/swiglu(99999999)", "swiglu width too large");
    BAD("gqa(2000,1)/swiglu(64)", "gqa heads too large");
    BAD("conv(3)/swiglu(64)*200 conv(3)/swiglu(64)*57", "too many layers");
    BAD("", "at least one layer");
    BAD("conv(3)swiglu(64)", "expected '/'");
    BAD("conv(3)/swiglu(64)conv(3)/swiglu(64)", "expected a space between layers");
    BAD("attn(3)/swiglu(64)", "expected a token mixer");
    BAD("gqa(4,2,qq)/swiglu(64)", "expected 'qk'");
    BAD("conv(3)/moe(4,2,32,bais)", "expected 'bias'");
    BAD("conv(-3)/swiglu(64)", "expected a whole number for conv kernel");
#undef BAD
    expect_invalid("d=64 v=100 hd=15 | conv(3)/swiglu(64)", "head_dim (15) must be even");
    expect_invalid("d=64 v=100 hd=16 eps=2 | conv(3)/swiglu(64)", "norm eps (2) must be in (0, 1)");
    expect_invalid("d=64 v=100 hd=16 theta=0.5 | conv(3)/swiglu(64)", "rope theta (0.5)");
    expect_invalid("d=64 v=100 hd=16 theta=inf | conv(3)/swiglu(64)", "finite number for rope theta");
    expect_invalid("d=64 v=1 hd=16 | conv(3)/swiglu(64)", "vocab (v) must be at least 2");
    expect_invalid("d=64 v=9999999 hd=16 | conv(3)/swiglu(64)", "vocab (v) too large");
    expect_invalid("d=99999 v=100 hd=16 | conv(3)/swiglu(64)", "hidden (d) too large");
    expect_invalid("d=64 v=100 | conv(3)/swiglu(64)", "are required");
    expect_invalid("d=64 v=100 hd=16 d=32 | conv(3)/swiglu(64)", "given twice");
    expect_invalid("d=64 v=100 hd=16 zz=1 | conv(3)/swiglu(64)", "unknown global key");
    expect_invalid("d=64 v=100 hd=16 tie=2 | conv(3)/swiglu(64)", "tie");
    expect_invalid("d=64 v=100 hd=16 conv(3)/swiglu(64)", "expected key=value");
    expect_invalid("d=64 v=100 hd=16 rope=llama3(0.5,1,4,8192) | conv(3)/swiglu(64)", "rope factor (0.5)");
    expect_invalid("d=64 v=100 hd=16 rope=llama3(8,4,1,8192) | conv(3)/swiglu(64)", "low < high");
    /* a valid struct that is then broken is caught by validate with the layer named */
    sh_genome g = preset("lfm2-350m");
    sh_err err;
    g.layers[5].mixer.n_kv_heads = 5;
    g.layers[5].mixer.n_heads = 12;
    assert_int_equal(sh_genome_validate(&g, &err), -1);
    assert_string_equal(err.msg, "layer 5: gqa heads (12) not a multiple of kv heads (5)");
    g = preset("lfm2-350m");
    g.layers[3].mixer.kind = (sh_mixer_kind)7;
    assert_int_equal(sh_genome_validate(&g, &err), -1);
    assert_string_equal(err.msg, "layer 3: unknown token mixer kind (7)");
    g = preset("lfm2-350m");
    g.n_layers = 0;
    assert_int_equal(sh_genome_validate(&g, &err), -1);
    assert_non_null(strstr(err.msg, "layer count (0)"));
    /* total size bound: 256 layers of maximal experts */
    assert_int_equal(sh_genome_parse("d=65536 v=100 hd=64 | conv(3)/moe(1024,1,1048576)*256", &g, &err), -1);
    assert_non_null(strstr(err.msg, "exceed the limit"));
    /* quantisability is a separate check */
    assert_int_equal(sh_genome_parse("d=48 v=100 hd=16 | conv(3)/swiglu(64)", &g, &err), 0);
    assert_int_equal(sh_genome_check_quantizable(&g, &err), -1);
    assert_non_null(strstr(err.msg, "hidden (48) not a multiple of 32"));
    g = preset("lfm2-1.2b");
    assert_int_equal(sh_genome_check_quantizable(&g, &err), 0);
}

static void expect_json_invalid(const char *json, const char *msg)
{
    sh_genome g;
    sh_err err = {{0}};
    if (sh_genome_from_json(json, &g, &err) == 0) fail_msg("accepted invalid json: %s", json);
    if (!strstr(err.msg, msg)) fail_msg("error for %s was '%s', expected '%s'", json, err.msg, msg);
}

static void test_json_errors(void **state)
{
    (void)state;
    expect_json_invalid("[1,2]", "top level must be an object");
    expect_json_invalid("{\"hidden\":64", "line 1");
    expect_json_invalid("{\"hidden\":64,\"vocab\":100,\"head_dim\":16,\"layerz\":[]}", "unknown key \"layerz\"");
    expect_json_invalid("{\"hidden\":64.5,\"vocab\":100,\"head_dim\":16,\"layers\":[]}", "\"hidden\" must be a whole number");
    expect_json_invalid("{\"vocab\":100,\"head_dim\":16,\"layers\":[]}", "missing \"hidden\"");
    expect_json_invalid("{\"hidden\":64,\"vocab\":100,\"head_dim\":16,\"layers\":[]}", "\"layers\" is empty");
    expect_json_invalid("{\"hidden\":64,\"hidden\":64,\"vocab\":100,\"head_dim\":16,\"layers\":[]}", "duplicate");
    expect_json_invalid("{\"hidden\":64,\"vocab\":100,\"head_dim\":16,\"layers\":[{\"mixer\":{\"kind\":\"gqa\",\"heads\":12,"
                        "\"kv_heads\":5},\"ffn\":{\"kind\":\"swiglu\",\"width\":8}}]}",
                        "layer 0: gqa heads (12) not a multiple of kv heads (5)");
    expect_json_invalid("{\"hidden\":64,\"vocab\":100,\"head_dim\":16,\"layers\":[{\"mixer\":{\"kind\":\"mamba\"},"
                        "\"ffn\":{\"kind\":\"swiglu\",\"width\":8}}]}", "layers[0]: unknown mixer kind \"mamba\"");
    expect_json_invalid("{\"hidden\":64,\"vocab\":100,\"head_dim\":16,\"layers\":[{\"mixer\":{\"kind\":\"conv\",\"kernel\":3},"
                        "\"ffn\":{\"kind\":\"swiglu\",\"width\":8},\"repeat\":300}]}", "\"repeat\" (300) out of range");
    expect_json_invalid("{\"hidden\":64,\"vocab\":100,\"head_dim\":16,\"layers\":[{\"mixer\":{\"kind\":\"conv\",\"kernel\":3},"
                        "\"ffn\":{\"kind\":\"swiglu\",\"width\":8,\"gate\":1}}]}", "layers[0]: unknown key \"gate\"");
    expect_json_invalid("{\"format\":\"other/2\",\"hidden\":64,\"vocab\":100,\"head_dim\":16,\"layers\":[]}", "unsupported \"format\"");
}

/* ---- analytics against hand computation ---- */
static void test_analytics_by_hand(void **state)
{
    (void)state;
    sh_genome g;
    sh_err err;
    /* H=64, V=100, hd=16; layer0 conv L=3 + swiglu 96; layer1 gqa 4/2 qk + moe 8 experts top2 width 32 bias */
    assert_int_equal(sh_genome_parse("d=64 v=100 hd=16 | conv(3)/swiglu(96) gqa(4,2,qk)/moe(8,2,32,bias)", &g, &err), 0);
    sh_param_count pc;
    sh_genome_params(&g, &pc);
    uint64_t H = 64, V = 100;
    uint64_t conv = 4 * H * H + 3 * H, swiglu = 3 * H * 96;
    uint64_t attn = H * 64 + 2 * H * 32 + 64 * H + 2 * 16;
    uint64_t moe = H * 8 + 8 * 3 * H * 32, moe_active = H * 8 + 2 * 3 * H * 32;
    uint64_t total = V * H + H + 2 * (2 * H) + conv + swiglu + attn + moe;
    assert_int_equal(pc.total, total);
    assert_int_equal(pc.active, total - moe + moe_active);
    assert_int_equal(pc.conv, conv);
    assert_int_equal(pc.attention, attn);
    /* untied doubles the embedding */
    sh_genome u = g;
    u.tied_embeddings = false;
    sh_param_count pu;
    sh_genome_params(&u, &pu);
    assert_int_equal(pu.total, total + V * H);
    /* weight bytes: q8_0 34 B and q4_0 18 B per 32 weights, along rows; small tensors f32 */
    uint64_t f32_small = 4 * (H + 4 * H + 3 * H + 2 * 16 + H * 8 + 8);
    uint64_t mats = V * H + 3 * H * H + H * H + 2 * 96 * H + H * 96 + 64 * H + 2 * 32 * H + H * 64 + 8 * 3 * 32 * H;
    assert_int_equal(sh_genome_weight_bytes(&g, SH_DTYPE_F32), f32_small + 4 * mats);
    assert_int_equal(sh_genome_weight_bytes(&g, SH_DTYPE_F16), f32_small + 2 * mats);
    assert_int_equal(sh_genome_weight_bytes(&g, SH_DTYPE_Q8_0), f32_small + mats / 32 * 34);
    assert_int_equal(sh_genome_weight_bytes(&g, SH_DTYPE_Q4_0), f32_small + mats / 32 * 18);
    assert_int_equal(sh_dtype_bytes(SH_DTYPE_Q8_0, 64), 68);
    assert_int_equal(sh_dtype_bytes(SH_DTYPE_Q4_0, 64), 36);
    /* caches: one attention layer with 2 kv heads of 16; one conv layer with L-1 = 2 columns */
    assert_int_equal(sh_genome_kv_bytes(&g, 1000, SH_DTYPE_F16), 2ULL * 1000 * 32 * 2);
    assert_int_equal(sh_genome_kv_bytes(&g, 1000, SH_DTYPE_F32), 2ULL * 1000 * 32 * 4);
    assert_int_equal(sh_genome_kv_bytes(&g, 1000, SH_DTYPE_Q8_0), 2ULL * 1000 * 34);
    assert_int_equal(sh_genome_conv_state_bytes(&g), 4ULL * 2 * 64);
    /* FLOPs: linear 2/MAC, attention 4*heads*hd per key, depthwise conv, head */
    double lin = 2.0 * (4 * H * H + 3 * H * 96 + H * 64 * 2 + 2 * H * 32 + H * 8 + 2 * 3 * H * 32) + 2.0 * H * 3;
    double head = 2.0 * V * H;
    assert_true(sh_genome_flops_decode(&g, 99) == lin + head + 4.0 * 64 * 100);
    assert_true(sh_genome_flops_prefill(&g, 99) == lin + head + 4.0 * 64 * 50);
    /* decode cost grows with context only through attention */
    assert_true(sh_genome_flops_decode(&g, 200) - sh_genome_flops_decode(&g, 100) == 4.0 * 64 * 100);
}

static void test_cache_lfm2_vs_qwen3(void **state)
{
    (void)state;
    sh_genome l = preset("lfm2-1.2b"), q = preset("qwen3-1.7b");
    uint64_t lc = sh_genome_kv_bytes(&l, 32768, SH_DTYPE_F16) + sh_genome_conv_state_bytes(&l);
    uint64_t qc = sh_genome_kv_bytes(&q, 32768, SH_DTYPE_F16) + sh_genome_conv_state_bytes(&q);
    /* 6 attention layers x 2 x 8 x 64 vs 28 x 2 x 8 x 128, f16, 32k tokens */
    assert_int_equal(sh_genome_kv_bytes(&l, 32768, SH_DTYPE_F16), 6ULL * 2 * 512 * 32768 * 2);
    assert_int_equal(sh_genome_kv_bytes(&q, 32768, SH_DTYPE_F16), 28ULL * 2 * 1024 * 32768 * 2);
    double smaller = 1.0 - (double)lc / (double)qc;
    assert_true(smaller > 0.88 && smaller < 0.91);   /* "about 90%" */
}

static void test_hostile_text(void **state)
{
    (void)state;
    sh_genome g;
    sh_err err;
    /* longer than the limit */
    size_t n = SH_GENOME_TEXT_MAX + 10;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[n] = '\0';
    assert_int_equal(sh_genome_parse(big, &g, &err), -1);
    assert_non_null(strstr(err.msg, "longer than"));
    free(big);
    /* huge numbers never overflow */
    assert_int_equal(sh_genome_parse("d=99999999999999999999999 v=100 hd=16 | conv(3)/swiglu(64)", &g, &err), -1);
    assert_int_equal(sh_genome_parse("d=64 v=100 hd=16 | gqa(4,2)/swiglu(64)*0", &g, &err), -1);
    assert_int_equal(sh_genome_parse("d=64 v=100 hd=16 eps=1e-99999 | conv(3)/swiglu(64)", &g, &err), -1);
    assert_int_equal(sh_genome_parse("", &g, &err), -1);
    assert_int_equal(sh_genome_parse("|", &g, &err), -1);
    assert_int_equal(sh_genome_parse("d=64 v=100 hd=16 | conv(3)/swiglu(64", &g, &err), -1);
    assert_non_null(strstr(err.msg, "at end of input"));
}

/* ---- the CLI, driven as a user would ---- */
static sh_proc_result run_cli(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5)
{
    const char *bin = getenv("STARHIL_BIN");
    if (!bin) bin = "./starhil";
    char *argv[] = {(char *)bin, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, NULL};
    sh_proc_result r;
    sh_err err;
    sh_proc_opts o = {.timeout_s = 60};
    if (sh_proc_run(argv, &o, &r, &err)) fail_msg("%s", err.msg);
    return r;
}

static void test_cli(void **state)
{
    (void)state;
    sh_proc_result r = run_cli("genome", "show", "lfm2-8b-a1b", "--json", NULL);
    assert_int_equal(r.exit_code, 0);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "params"), "total")), 8339929856LL);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "params"), "active")), 1557740288LL);
    assert_string_equal(json_string_value(json_object_get(j, "preset")), "lfm2-8b-a1b");
    assert_non_null(json_object_get(json_object_get(j, "weight_bytes"), "q4_0"));
    json_decref(j);
    sh_proc_result_free(&r);

    r = run_cli("genome", "compare", "lfm2-1.2b", "qwen3-1.7b", "--context");
    assert_int_not_equal(r.exit_code, 0);              /* --context without a value */
    sh_proc_result_free(&r);
    const char *bin = getenv("STARHIL_BIN") ? getenv("STARHIL_BIN") : "./starhil";
    char *argv[] = {(char *)bin, "genome", "compare", "lfm2-1.2b", "qwen3-1.7b", "--context", "32768", NULL};
    sh_err err;
    sh_proc_opts o = {.timeout_s = 60};
    assert_int_equal(sh_proc_run(argv, &o, &r, &err), 0);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "A's cache is 89.3% smaller than B's"));
    sh_proc_result_free(&r);

    r = run_cli("genome", "show", "d=64 v=100 hd=16 | gqa(12,5)/swiglu(64)", NULL, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "layer 0: gqa heads (12) not a multiple of kv heads (5)"));
    sh_proc_result_free(&r);

    r = run_cli("genome", "list", "--json", NULL, NULL);
    assert_int_equal(r.exit_code, 0);
    j = json_loads(r.out, 0, &je);
    assert_true(json_is_array(j) && json_array_size(j) == 8);
    json_decref(j);
    sh_proc_result_free(&r);

    /* text -> json -> text through the CLI is lossless */
    r = run_cli("genome", "json", "llama-3.2-1b", NULL, NULL);
    assert_int_equal(r.exit_code, 0);
    char path[] = "/tmp/starhil-genome-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(r.out, f);
    fclose(f);
    sh_proc_result_free(&r);
    sh_proc_result a = run_cli("genome", "text", path, NULL, NULL);
    sh_proc_result b = run_cli("genome", "text", "llama-3.2-1b", NULL, NULL);
    assert_int_equal(a.exit_code, 0);
    assert_string_equal(a.out, b.out);
    sh_proc_result_free(&a);
    sh_proc_result_free(&b);
    unlink(path);

    r = run_cli("genome", "--help", NULL, NULL, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "usage: starhil genome"));
    sh_proc_result_free(&r);
    r = run_cli("genome", "frobnicate", NULL, NULL, NULL);
    assert_int_equal(r.exit_code, 2);
    sh_proc_result_free(&r);
    r = run_cli("genome", "show", "/nonexistent/file", NULL, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "not a preset, a file or genome text"));
    sh_proc_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preset_param_counts),
        cmocka_unit_test(test_preset_layouts),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_text_form_details),
        cmocka_unit_test(test_hash_stability),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_analytics_by_hand),
        cmocka_unit_test(test_cache_lfm2_vs_qwen3),
        cmocka_unit_test(test_hostile_text),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests_name("genome", tests, NULL, NULL);
}
