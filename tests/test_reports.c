/* test_reports.c - reports/: Hugging Face config export/import (every LFM2
 * preset round-trips, legacy keys, refusals), the GGUF writer (container,
 * metadata types, tensor names/shapes, block layouts, and a round trip through
 * the runtime: `logits --gguf FILE` equals `logits --seed S --wtype T`), run
 * reports from a fixture database built through runs.h (JSON/CSV/Markdown and
 * the HTML page opened in headless Chromium), the chip-profile comparison and
 * the CLI's errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evaluator/build.h"
#include "genome/genome.h"
#include "measure/mrecord.h"
#include "measure/measure.h"
#include "tests/helpers/reports_gguf.h"
#include "tests/helpers/store_sql.h"
#include "reports/gguf_synth.h"
#include "genome/gguf_meta.h"
#include "reports/gguf_write.h"
#include "reports/hf_config.h"
#include "reports/report_assets.h"
#include "reports/report_data.h"
#include "runs/runs.h"
#include "util/proc.h"

static char tmpdir[256];

/* ---- helpers ----------------------------------------------------------------------- */

static const char *bin(void)
{
    const char *b = getenv("STARHIL_BIN");
    return b && *b ? b : "./build/san/starhil";
}

static const char *root_dir(void)
{
    const char *r = getenv("STARHIL_ROOT");
    return r && *r ? r : ".";
}

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

/* Runs starhil with args (NULL-terminated) in tmpdir; returns exit code. */
static int run_cli(sh_proc_result *r, ...)
{
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)bin();
    va_list ap;
    va_start(ap, r);
    for (char *a; n < 39 && (a = va_arg(ap, char *)); ) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    sh_proc_opts o = {.timeout_s = 300, .cwd = tmpdir};
    sh_err err = {{0}};
    memset(r, 0, sizeof *r);
    if (sh_proc_run(argv, &o, r, &err) != 0) fail_msg("cannot run %s: %s", argv[0], err.msg);
    return r->exited ? r->exit_code : 128 + r->signal;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = 0;
    if (len) *len = got;
    return buf;
}

static int count_substr(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void parse_genome(const char *text, sh_genome *g)
{
    sh_err err = {{0}};
    if (sh_genome_parse(text, g, &err) != 0) fail_msg("parse %s: %s", text, err.msg);
}

/* ---- HF config ---------------------------------------------------------------------- */

static void test_ff_auto_adjust(void **state)
{
    (void)state;
    assert_int_equal(sh_lfm2_ff_auto_adjust(6656, true, 1.0, 256), 4608);
    assert_int_equal(sh_lfm2_ff_auto_adjust(10240, true, 1.0, 256), 6912);
    assert_int_equal(sh_lfm2_ff_auto_adjust(12288, true, 1.0, 256), 8192);
    assert_int_equal(sh_lfm2_ff_auto_adjust(6656, false, 0, 256), 4608);
}

static void test_hf_roundtrip_every_lfm2_preset(void **state)
{
    (void)state;
    int tried = 0;
    static sh_genome g, back;
    for (int i = 0; i < sh_preset_count(); i++) {
        const sh_preset *p = sh_preset_at(i);
        if (strncmp(p->name, "lfm2", 4) != 0) continue;
        sh_err err = {{0}};
        assert_int_equal(sh_preset_get(p->name, &g, &err), 0);
        char *json = sh_hf_config_export(&g, &err);
        if (!json) fail_msg("%s: %s", p->name, err.msg);
        if (sh_hf_config_import(json, strlen(json), &back, &err) != 0) fail_msg("%s: %s", p->name, err.msg);
        if (!sh_genome_equal(&g, &back)) fail_msg("%s: export then import changed the genome", p->name);
        free(json);
        tried++;
    }
    assert_true(tried >= 5);   /* 350m, 700m, 1.2b, 2.6b, 8b-a1b */
}

/* Shapes beyond the presets: MoE without dense layers or bias, all-conv with
 * hidden not a multiple of head_dim, all-attention untied, other conv kernel. */
static void test_hf_roundtrip_shapes(void **state)
{
    (void)state;
    const char *texts[] = {
        "d=128 v=1000 hd=32 theta=10000 eps=1e-06 ctx=4096 tie=1 | conv(3)/moe(8,2,64)*2 gqa(4,1,qk)/moe(8,2,64)",
        "d=96 v=500 hd=64 theta=10000 eps=1e-05 ctx=1024 tie=1 | conv(4)/swiglu(256)*3",
        "d=256 v=2000 hd=32 theta=500000 eps=1e-05 ctx=8192 tie=0 | gqa(8,8,qk)/swiglu(640)*5",
        "d=64 v=300 hd=16 theta=10000 eps=1e-05 ctx=256 tie=1 | gqa(4,2,qk)/swiglu(128)*2 gqa(4,2,qk)/moe(4,1,32,bias)",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        static sh_genome g, back;
        parse_genome(texts[i], &g);
        sh_err err = {{0}};
        char *json = sh_hf_config_export(&g, &err);
        if (!json) fail_msg("%s: %s", texts[i], err.msg);
        if (sh_hf_config_import(json, strlen(json), &back, &err) != 0) fail_msg("%s: %s", texts[i], err.msg);
        if (!sh_genome_equal(&g, &back)) fail_msg("round trip changed %s", texts[i]);
        free(json);
    }
}

/* What Lfm2Config does with the fields (section 2.1/3.5): the effective FFN
 * width must be the genome's, whichever of the two keys a version reads. */
static void check_dense_fields(json_t *o, const sh_genome *g)
{
    assert_string_equal(json_string_value(json_object_get(o, "model_type")), "lfm2");
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "architectures"), 0)),
                        "Lfm2ForCausalLM");
    struct { const char *k; long v; } ints[] = {
        {"vocab_size", g->vocab}, {"hidden_size", g->hidden}, {"num_hidden_layers", g->n_layers},
        {"num_attention_heads", 16}, {"num_key_value_heads", 8}, {"max_position_embeddings", g->max_context},
        {"intermediate_size", 4608}, {"block_ff_dim", 4608}, {"conv_L_cache", 3}, {"block_multiple_of", 256},
        {"pad_token_id", 0}, {"bos_token_id", 1}, {"eos_token_id", 7}, {"head_dim", 64},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        json_t *v = json_object_get(o, ints[i].k);
        if (!json_is_integer(v)) fail_msg("%s missing or not an integer", ints[i].k);
        if (json_integer_value(v) != ints[i].v)
            fail_msg("%s = %lld, want %ld", ints[i].k, (long long)json_integer_value(v), ints[i].v);
    }
    struct { const char *k; double v; } reals[] = {
        {"norm_eps", 1e-5}, {"rope_theta", 1e6}, {"initializer_range", 0.02}, {"block_ffn_dim_multiplier", 1.0},
    };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        json_t *v = json_object_get(o, reals[i].k);
        if (!json_is_real(v)) fail_msg("%s missing or not a float", reals[i].k);
        assert_true(json_real_value(v) == reals[i].v);
    }
    struct { const char *k; int v; } bools[] = {
        {"use_cache", 1}, {"tie_word_embeddings", 1}, {"tie_embedding", 1}, {"conv_bias", 0},
        {"block_auto_adjust_ff_dim", 0},
    };
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        json_t *v = json_object_get(o, bools[i].k);
        if (!json_is_boolean(v)) fail_msg("%s missing or not a boolean", bools[i].k);
        assert_int_equal(json_is_true(v), bools[i].v);
    }
    json_t *rp = json_object_get(o, "rope_parameters");
    assert_true(json_is_object(rp));
    assert_true(json_real_value(json_object_get(rp, "rope_theta")) == 1e6);
    assert_string_equal(json_string_value(json_object_get(rp, "rope_type")), "default");
    json_t *lt = json_object_get(o, "layer_types"), *idx = json_object_get(o, "full_attn_idxs");
    assert_int_equal(json_array_size(lt), 16);
    static const int attn[] = {2, 5, 8, 10, 12, 14};
    assert_int_equal(json_array_size(idx), 6);
    for (int i = 0, k = 0; i < 16; i++) {
        bool is_attn = k < 6 && attn[k] == i;
        assert_string_equal(json_string_value(json_array_get(lt, (size_t)i)), is_attn ? "full_attention" : "conv");
        if (is_attn) assert_int_equal(json_integer_value(json_array_get(idx, (size_t)k++)), i);
    }
}

static void test_hf_export_fields(void **state)
{
    (void)state;
    static sh_genome g;
    sh_err err = {{0}};
    assert_int_equal(sh_preset_get("lfm2-350m", &g, &err), 0);
    char *text = sh_hf_config_export(&g, &err);
    assert_non_null(text);
    /* decimals print as written, not as 17-digit expansions */
    if (!strstr(text, "\"norm_eps\": 1e-5,")) fail_msg("norm_eps not printed as 1e-5:\n%s", text);
    json_t *o = json_loads(text, 0, NULL);
    assert_non_null(o);
    check_dense_fields(o, &g);
    json_decref(o);
    free(text);

    assert_int_equal(sh_preset_get("lfm2-8b-a1b", &g, &err), 0);
    text = sh_hf_config_export(&g, &err);
    assert_non_null(text);
    o = json_loads(text, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "model_type")), "lfm2_moe");
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "architectures"), 0)),
                        "Lfm2MoeForCausalLM");
    assert_int_equal(json_integer_value(json_object_get(o, "intermediate_size")), 7168);
    assert_int_equal(json_integer_value(json_object_get(o, "moe_intermediate_size")), 1792);
    assert_int_equal(json_integer_value(json_object_get(o, "num_dense_layers")), 2);
    assert_int_equal(json_integer_value(json_object_get(o, "num_experts")), 32);
    assert_int_equal(json_integer_value(json_object_get(o, "num_experts_per_tok")), 4);
    assert_true(json_is_true(json_object_get(o, "use_expert_bias")));
    assert_true(json_is_true(json_object_get(o, "norm_topk_prob")));
    assert_true(json_real_value(json_object_get(o, "routed_scaling_factor")) == 1.0);
    assert_int_equal(json_array_size(json_object_get(o, "layer_types")), 24);
    json_decref(o);
    free(text);
}

/* Published-style configs with the legacy keys (section 1/2 of the sheet). */
static void test_hf_import_legacy(void **state)
{
    (void)state;
    static sh_genome g, want;
    sh_err err = {{0}};
    const char *c350 =
        "{\"architectures\":[\"Lfm2ForCausalLM\"],\"model_type\":\"lfm2\",\"block_dim\":1024,"
        "\"block_ff_dim\":6656,\"block_auto_adjust_ff_dim\":true,\"block_ffn_dim_multiplier\":1.0,"
        "\"block_multiple_of\":256,\"conv_L_cache\":3,\"conv_bias\":false,\"full_attn_idxs\":[2,5,8,10,12,14],"
        "\"hidden_size\":1024,\"intermediate_size\":4608,\"max_position_embeddings\":128000,\"norm_eps\":1e-05,"
        "\"num_attention_heads\":16,\"num_heads\":16,\"num_hidden_layers\":16,\"num_key_value_heads\":8,"
        "\"rope_theta\":1000000.0,\"tie_embedding\":true,\"vocab_size\":65536}";
    assert_int_equal(sh_hf_config_import(c350, strlen(c350), &g, &err), 0);
    assert_int_equal(sh_preset_get("lfm2-350m", &want, &err), 0);
    assert_true(sh_genome_equal(&g, &want));

    const char *c26 =
        "{\"model_type\":\"lfm2\",\"block_ff_dim\":10752,\"block_auto_adjust_ff_dim\":false,"
        "\"hidden_size\":2048,\"num_attention_heads\":32,\"num_key_value_heads\":8,\"num_hidden_layers\":30,"
        "\"full_attn_idxs\":[2,5,9,13,17,21,24,27],\"theta\":1000000.0}";
    assert_int_equal(sh_hf_config_import(c26, strlen(c26), &g, &err), 0);
    assert_int_equal(sh_preset_get("lfm2-2.6b", &want, &err), 0);
    if (!sh_genome_equal(&g, &want)) fail_msg("2.6B legacy config does not give the preset");

    const char *cmoe =
        "{\"model_type\":\"lfm2_moe\",\"hidden_size\":2048,\"intermediate_size\":7168,"
        "\"moe_intermediate_size\":1792,\"num_hidden_layers\":24,\"num_dense_layers\":2,\"num_experts\":32,"
        "\"num_experts_per_tok\":4,\"use_expert_bias\":true,\"rope_parameters\":{\"rope_theta\":1000000.0,"
        "\"rope_type\":\"default\"},\"layer_types\":[\"conv\",\"conv\",\"full_attention\",\"conv\",\"conv\","
        "\"conv\",\"full_attention\",\"conv\",\"conv\",\"conv\",\"full_attention\",\"conv\",\"conv\",\"conv\","
        "\"full_attention\",\"conv\",\"conv\",\"conv\",\"full_attention\",\"conv\",\"conv\",\"full_attention\","
        "\"conv\",\"conv\"]}";
    assert_int_equal(sh_hf_config_import(cmoe, strlen(cmoe), &g, &err), 0);
    assert_int_equal(sh_preset_get("lfm2-8b-a1b", &want, &err), 0);
    assert_true(sh_genome_equal(&g, &want));

    /* no layer_types, no full_attn_idxs: Lfm2Config makes every layer attention */
    const char *all = "{\"model_type\":\"lfm2\",\"hidden_size\":256,\"num_attention_heads\":4,"
                      "\"num_key_value_heads\":2,\"num_hidden_layers\":3,\"intermediate_size\":768,"
                      "\"vocab_size\":1000,\"tie_word_embeddings\":false}";
    assert_int_equal(sh_hf_config_import(all, strlen(all), &g, &err), 0);
    assert_int_equal(sh_genome_count_mixer(&g, SH_MIXER_GQA), 3);
    assert_int_equal(g.layers[0].ffn.width, 512);    /* 768 -> 512 -> 512 */
    assert_false(g.tied_embeddings);
}

/* refused as an HF LFM2 config; as GGUF too, unless gguf_arch names the
 * architecture it is written as instead (attention-only genomes: qwen3 /
 * llama), in which case the file's genome must import back unchanged */
static void expect_export_refused_as(const char *text, const char *reason_part, const char *gguf_arch)
{
    static sh_genome g, back;
    parse_genome(text, &g);
    sh_err err = {{0}};
    char *j = sh_hf_config_export(&g, &err);
    if (j) fail_msg("export of %s should be refused", text);
    if (!strstr(err.msg, reason_part)) fail_msg("reason \"%s\" lacks \"%s\"", err.msg, reason_part);
    char path[512];
    path_in(path, sizeof path, "refused.gguf");
    sh_gguf_opts o = {.wtype = SH_DTYPE_F32, .seed = 1};
    if (!gguf_arch) {
        assert_int_equal(sh_gguf_write_genome(&g, path, &o, &err), -1);
        assert_int_equal(access(path, F_OK), -1);
        return;
    }
    if (sh_gguf_write_genome(&g, path, &o, &err) != 0) fail_msg("GGUF export of %s: %s", text, err.msg);
    sh_gguf_meta m;
    if (sh_gguf_meta_read(path, &m, &err) != 0) fail_msg("%s", err.msg);
    const sh_gguf_kv *a = sh_gguf_meta_find(&m, "general.architecture");
    assert_non_null(a);
    uint64_t len;
    memcpy(&len, m.buf + a->val_off, 8);
    if (len != strlen(gguf_arch) || memcmp(m.buf + a->val_off + 8, gguf_arch, len))
        fail_msg("%s: architecture %.*s, want %s", text, (int)len, (const char *)m.buf + a->val_off + 8, gguf_arch);
    assert_int_equal(sh_gguf_import_genome(&m, &back, &err), 0);
    assert_true(sh_genome_equal(&g, &back));
    sh_gguf_meta_free(&m);
    unlink(path);
}

static void expect_export_refused(const char *text, const char *reason_part)
{
    expect_export_refused_as(text, reason_part, NULL);
}

static void test_hf_export_refusals(void **state)
{
    (void)state;
    const char *G = "d=256 v=512 hd=32 theta=10000 eps=1e-05 ctx=256 tie=1 | ";
    char t[512];
    snprintf(t, sizeof t, "%sgqa(8,2,qk)/swiglu(512) gqa(4,2,qk)/swiglu(512)", G);
    expect_export_refused(t, "head count");
    snprintf(t, sizeof t, "%sconv(3)/swiglu(512) conv(4)/swiglu(512)", G);
    expect_export_refused(t, "conv_L_cache");
    snprintf(t, sizeof t, "%sconv(3)/moe(4,2,128) conv(3)/swiglu(512)", G);
    expect_export_refused(t, "dense FFN after the MoE");
    snprintf(t, sizeof t, "%sgqa(8,2)/swiglu(512)", G);
    expect_export_refused_as(t, "QK-norm", "llama");
    snprintf(t, sizeof t, "%sgqa(8,2,qk)/swiglu(512) gqa(8,2)/swiglu(512)", G);
    expect_export_refused(t, "QK-norm");   /* GGUF: "a qwen3 file needs it on every layer, a llama file on none" */
    snprintf(t, sizeof t, "%sgqa(8,2,qk)/swiglu(512) gqa(8,2,qk)/swiglu(256)", G);
    expect_export_refused(t, "intermediate_size");   /* GGUF: "one feed_forward_length per file" */
    snprintf(t, sizeof t, "%sconv(3)/swiglu(512) conv(3)/swiglu(256)", G);
    expect_export_refused(t, "intermediate_size");
    expect_export_refused_as("d=256 v=512 hd=64 theta=10000 eps=1e-05 ctx=256 tie=1 | gqa(8,2,qk)/swiglu(512)",
                             "head_dim", "qwen3");   /* qwen3 files allow heads x head_dim != hidden */
    expect_export_refused_as("d=256 v=512 hd=32 theta=500000 eps=1e-05 ctx=256 tie=1 "
                             "rope=llama3(32,1,4,8192) | gqa(8,2)/swiglu(512)", "rope scaling", "llama");
    expect_export_refused("d=256 v=512 hd=32 theta=10000 eps=1e-05 ctx=256 tie=1 "
                          "rope=llama3(32,1,4,8192) | gqa(8,2,qk)/swiglu(512)", "rope scaling");
}

static void expect_import_refused(const char *json, const char *reason_part)
{
    static sh_genome g;
    sh_err err = {{0}};
    if (sh_hf_config_import(json, strlen(json), &g, &err) == 0) fail_msg("import of %s should fail", json);
    if (!strstr(err.msg, reason_part)) fail_msg("reason \"%s\" lacks \"%s\"", err.msg, reason_part);
}

static void test_hf_import_refusals(void **state)
{
    (void)state;
    expect_import_refused("{\"model_type\": ", "line 1");
    expect_import_refused("[1,2]", "not an object");
    expect_import_refused("{\"model_type\":\"llama\"}", "not lfm2");
    expect_import_refused("{\"hidden_size\":64}", "model_type");
    expect_import_refused("{\"model_type\":\"lfm2\",\"num_hidden_layers\":2,\"layer_types\":[\"conv\"]}",
                          "layer_types");
    expect_import_refused("{\"model_type\":\"lfm2\",\"num_hidden_layers\":1,\"layer_types\":[\"mamba\"]}",
                          "layer_types[0]");
    expect_import_refused("{\"model_type\":\"lfm2\",\"conv_bias\":true}", "conv_bias");
    expect_import_refused("{\"model_type\":\"lfm2\",\"hidden_size\":-5}", "hidden_size");
    expect_import_refused("{\"model_type\":\"lfm2\",\"hidden_size\":\"big\"}", "hidden_size");
    expect_import_refused("{\"model_type\":\"lfm2\",\"num_hidden_layers\":100000}", "num_hidden_layers");
    expect_import_refused("{\"model_type\":\"lfm2\",\"full_attn_idxs\":[99]}", "full_attn_idxs");
    expect_import_refused("{\"model_type\":\"lfm2_moe\",\"num_hidden_layers\":2}", "layer_types");
    expect_import_refused("{\"model_type\":\"lfm2\",\"model_type\":\"lfm2\"}", "duplicate");
    expect_import_refused("{\"model_type\":\"lfm2\",\"rope_scaling\":{\"type\":\"llama3\"}}", "rope_scaling");
}

/* export --format hf | genome import through the real CLI, for every LFM2 preset. */
static void test_cli_export_import(void **state)
{
    (void)state;
    sh_proc_result r;
    for (int i = 0; i < sh_preset_count(); i++) {
        const char *name = sh_preset_at(i)->name;
        if (strncmp(name, "lfm2", 4) != 0) continue;
        char file[64];
        snprintf(file, sizeof file, "%s.config.json", name);
        assert_int_equal(run_cli(&r, "export", name, "--format", "hf", "-o", file, NULL), 0);
        sh_proc_result_free(&r);
        /* an exported config is complete: nothing filled with a default, --strict passes */
        assert_int_equal(run_cli(&r, "genome", "import", file, "--strict", NULL), 0);
        if (strstr(r.err, "warning")) fail_msg("%s: %s", name, r.err);
        static sh_genome g, want;
        sh_err err = {{0}};
        char *nl = strchr(r.out, '\n');
        if (nl) *nl = 0;
        if (sh_genome_parse(r.out, &g, &err) != 0) fail_msg("import printed \"%s\": %s", r.out, err.msg);
        sh_proc_result_free(&r);
        assert_int_equal(sh_preset_get(name, &want, &err), 0);
        assert_true(sh_genome_equal(&g, &want));
    }
    assert_int_equal(run_cli(&r, "genome", "import", "lfm2-350m.config.json", "--json", NULL), 0);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    json_decref(j);
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "export", "qwen3-0.6b", "--format", "hf", NULL), 1);
    assert_non_null(strstr(r.err, "head_dim"));
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "genome", "import", "no-such-file.json", NULL), 1);
    assert_non_null(strstr(r.err, "no-such-file.json"));
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "export", "lfm2-350m", "--format", "onnx", NULL), 2);
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "export", "lfm2-350m", NULL), 2);
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "export", "--help", NULL), 0);
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "genome", "import", "--help", NULL), 0);
    assert_non_null(strstr(r.out, "--strict"));
    sh_proc_result_free(&r);

    /* a field left out is filled with transformers' default, and said so on stderr;
     * --strict refuses it, naming the field */
    char path[512];
    path_in(path, sizeof path, "partial.json");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"model_type\":\"lfm2\",\"vocab_size\":1000,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
          "\"num_key_value_heads\":2,\"intermediate_size\":512,\"max_position_embeddings\":1024,"
          "\"conv_L_cache\":3,\"norm_eps\":1e-5,\"rope_theta\":10000,\"layer_types\":[\"conv\",\"full_attention\"],"
          "\"tie_word_embeddings\":true,\"conv_bias\":false,\"block_auto_adjust_ff_dim\":false}", f);
    fclose(f);
    assert_int_equal(run_cli(&r, "genome", "import", "partial.json", NULL), 0);
    assert_non_null(strstr(r.out, "d=2560 "));                     /* Lfm2Config's hidden_size */
    assert_non_null(strstr(r.err, "warning: partial.json: \"hidden_size\" missing, using transformers' default 2560"));
    assert_int_equal(count_substr(r.err, "warning"), 1);           /* only the field that is missing */
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "genome", "import", "partial.json", "--strict", NULL), 1);
    assert_non_null(strstr(r.err, "\"hidden_size\" is missing"));
    assert_string_equal(r.out, "");
    sh_proc_result_free(&r);

    /* a GGUF file is recognised by its magic and read as GGUF metadata (not
     * judged as an oversized JSON); this one has none */
    path_in(path, sizeof path, "model.gguf");
    f = fopen(path, "wb");
    assert_non_null(f);
    fwrite("GGUF\3\0\0\0", 1, 8, f);
    for (int i = 0; i < 92; i++) fputc(0, f);
    fclose(f);
    assert_int_equal(run_cli(&r, "genome", "import", "model.gguf", NULL), 1);
    assert_non_null(strstr(r.err, "GGUF: general.architecture missing"));
    assert_null(strstr(r.err, "config.json"));
    sh_proc_result_free(&r);
}

/* ---- GGUF ---------------------------------------------------------------------------- */

static void test_fp16_and_blocks(void **state)
{
    (void)state;
    assert_int_equal(sh_fp32_to_fp16(1.0f), 0x3c00);
    assert_int_equal(sh_fp32_to_fp16(-2.0f), 0xc000);
    assert_int_equal(sh_fp32_to_fp16(65504.0f), 0x7bff);
    assert_int_equal(sh_fp32_to_fp16(1e6f), 0x7c00);
    assert_int_equal(sh_fp32_to_fp16(0x1p-24f), 0x0001);     /* smallest subnormal */
    assert_int_equal(sh_fp32_to_fp16(0x1p-25f), 0x0000);     /* tie to even */
    assert_int_equal(sh_fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00); /* tie to even */
    assert_int_equal(sh_fp32_to_fp16(1.0f + 0x1.8p-11f), 0x3c01);
    for (uint32_t h = 0; h < 0x7c00; h += 7) assert_int_equal(sh_fp32_to_fp16(sh_fp16_to_fp32((uint16_t)h)), h);

    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16) / 4.0f;   /* -4 .. 3.75 */
    uint8_t q8[34], q4[18];
    sh_quantize_q8_0(x, q8, 32);
    uint16_t d;
    memcpy(&d, q8, 2);
    assert_true(fabsf(sh_fp16_to_fp32(d) - 4.0f / 127.0f) < 1e-5f);
    assert_int_equal((int8_t)q8[2], -127);
    assert_int_equal((int8_t)q8[2 + 16], 0);
    sh_quantize_q4_0(x, q4, 32);
    memcpy(&d, q4, 2);
    assert_true(sh_fp16_to_fp32(d) == 0.5f);          /* max |x| is -4 -> d = -4 / -8 */
    /* element j in the low nibble of byte j, element 16 + j in the high nibble */
    for (int j = 0; j < 16; j++) {
        float lo = (float)((q4[2 + j] & 15) - 8) * 0.5f, hi = (float)((q4[2 + j] >> 4) - 8) * 0.5f;
        assert_true(fabsf(lo - x[j]) <= 0.25f + 1e-6f);
        assert_true(fabsf(hi - x[16 + j]) <= 0.25f + 1e-6f);
    }
}

static const char *TINY_MOE =
    "d=64 v=256 hd=16 theta=10000 eps=1e-05 ctx=512 tie=0 | conv(3)/swiglu(96) gqa(4,2,qk)/moe(4,2,32,bias) "
    "conv(3)/moe(4,2,32,bias)";

static void check_u32(const tg_file *f, const char *key, uint32_t want)
{
    const tg_kv *kv = tg_kv_find(f, key);
    if (!kv) fail_msg("GGUF key %s missing", key);
    if (kv->type != SH_GGUF_U32) fail_msg("GGUF key %s has type %u, want u32", key, kv->type);
    if (kv->u != want) fail_msg("GGUF key %s = %llu, want %u", key, (unsigned long long)kv->u, want);
}

static void check_tensor(const tg_file *f, const char *name, uint32_t type, uint64_t n0, uint64_t n1, uint64_t n2)
{
    const tg_tensor *t = tg_tensor_find(f, name);
    if (!t) fail_msg("tensor %s missing", name);
    if (t->type != type) fail_msg("tensor %s type %u, want %u", name, t->type, type);
    uint64_t ne[3] = {n0, n1, n2};
    uint32_t dims = n2 ? 3 : n1 ? 2 : 1;
    if (t->n_dims != dims) fail_msg("tensor %s has %u dims, want %u", name, t->n_dims, dims);
    for (uint32_t d = 0; d < dims; d++)
        if (t->ne[d] != ne[d]) fail_msg("tensor %s ne[%u] = %llu, want %llu", name, d,
                                        (unsigned long long)t->ne[d], (unsigned long long)ne[d]);
    assert_int_equal(t->offset % 32, 0);
}

/* ---- genome import from GGUF metadata -------------------------------------------------- */

/* a minimal GGUF: the given u32/f32 keys, a string architecture, an optional
 * per-layer head_count_kv array, tensor infos only (no data) */
typedef struct mini_kv { const char *key; int f32; double v; } mini_kv;
static void put_bytes(FILE *f, const void *p, size_t n) { assert_int_equal(fwrite(p, 1, n, f), n); }
static void put32(FILE *f, uint32_t v) { put_bytes(f, &v, 4); }
static void put64(FILE *f, uint64_t v) { put_bytes(f, &v, 8); }
static void putstr(FILE *f, const char *s) { put64(f, strlen(s)); put_bytes(f, s, strlen(s)); }
static void mini_gguf(const char *path, const char *arch, const mini_kv *kv, int nkv, int H, int V, int untied)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    put_bytes(f, "GGUF", 4); put32(f, 3);
    put64(f, untied ? 2 : 1);
    put64(f, (uint64_t)nkv + 1);
    putstr(f, "general.architecture"); put32(f, 8); putstr(f, arch);
    for (int i = 0; i < nkv; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s.%s", arch, kv[i].key);
        putstr(f, key);
        if (kv[i].f32) { float x = (float)kv[i].v; put32(f, 6); put_bytes(f, &x, 4); }
        else { put32(f, 4); put32(f, (uint32_t)kv[i].v); }
    }
    const char *names[2] = {"token_embd.weight", "output.weight"};
    for (int t = 0; t < (untied ? 2 : 1); t++) {
        putstr(f, names[t]); put32(f, 2); put64(f, (uint64_t)H); put64(f, (uint64_t)V); put32(f, 0);
        put64(f, (uint64_t)t * (uint64_t)H * (uint64_t)V * 4);
    }
    assert_int_equal(fclose(f), 0);
}

static void expect_import(const char *path, const char *want_text)
{
    sh_genome g, w;
    sh_err err = {{0}};
    if (sh_gguf_import_genome_file(path, &g, &err) != 0) fail_msg("import %s: %s", path, err.msg);
    if (sh_genome_parse(want_text, &w, &err) != 0) fail_msg("want: %s", err.msg);
    char a[SH_GENOME_TEXT_MAX], b[SH_GENOME_TEXT_MAX];
    assert_int_equal(sh_genome_format(&g, a, sizeof a, &err), 0);
    assert_int_equal(sh_genome_format(&w, b, sizeof b, &err), 0);
    if (strcmp(a, b)) fail_msg("import %s:\n  got  %s\n  want %s", path, a, b);
}

static void test_genome_import_gguf(void **state)
{
    (void)state;
    /* round trip through starhil's own GGUF export: lfm2moe and lfm2 */
    const char *texts[] = {TINY_MOE,
        "d=64 v=256 hd=32 theta=10000 eps=1e-05 ctx=512 tie=1 | conv(3)/swiglu(128)*2 gqa(2,1,qk)/swiglu(128) conv(3)/swiglu(128)"};
    for (int i = 0; i < 2; i++) {
        static sh_genome g;
        parse_genome(texts[i], &g);
        char path[512];
        path_in(path, sizeof path, "import.gguf");
        sh_gguf_opts o = {.wtype = SH_DTYPE_Q8_0, .seed = 1};
        sh_err err = {{0}};
        if (sh_gguf_write_genome(&g, path, &o, &err) != 0) fail_msg("%s", err.msg);
        expect_import(path, texts[i]);
    }
    /* qwen3: every layer attention with QK-norm, head_dim from key_length */
    char path[512];
    path_in(path, sizeof path, "qwen3.gguf");
    mini_kv q[] = {{"embedding_length", 0, 1024}, {"block_count", 0, 3}, {"context_length", 0, 40960},
                   {"attention.layer_norm_rms_epsilon", 1, 1e-6}, {"rope.freq_base", 1, 1e6},
                   {"attention.head_count", 0, 16}, {"attention.head_count_kv", 0, 8},
                   {"attention.key_length", 0, 128}, {"feed_forward_length", 0, 3072}};
    mini_gguf(path, "qwen3", q, 9, 1024, 1000, 0);
    expect_import(path, "d=1024 v=1000 hd=128 theta=1000000 eps=1e-06 ctx=40960 tie=1 | gqa(16,8,qk)/swiglu(3072)*3");
    /* llama: no QK-norm, untied output */
    path_in(path, sizeof path, "llama.gguf");
    mini_kv l[] = {{"embedding_length", 0, 512}, {"block_count", 0, 2}, {"context_length", 0, 8192},
                   {"attention.layer_norm_rms_epsilon", 1, 1e-5}, {"rope.freq_base", 1, 500000},
                   {"attention.head_count", 0, 8}, {"attention.head_count_kv", 0, 2},
                   {"feed_forward_length", 0, 1536}};
    mini_gguf(path, "llama", l, 8, 512, 700, 1);
    expect_import(path, "d=512 v=700 hd=64 theta=500000 eps=1e-05 ctx=8192 tie=0 | gqa(8,2)/swiglu(1536)*2");
    /* refusals name the problem */
    sh_genome g;
    sh_err err = {{0}};
    mini_gguf(path, "gpt2", l, 8, 512, 700, 1);
    assert_int_equal(sh_gguf_import_genome_file(path, &g, &err), -1);
    assert_non_null(strstr(err.msg, "gpt2"));
    mini_gguf(path, "llama", l, 7, 512, 700, 1);   /* no feed_forward_length */
    memset(&err, 0, sizeof err);
    assert_int_equal(sh_gguf_import_genome_file(path, &g, &err), -1);
    assert_non_null(strstr(err.msg, "llama.feed_forward_length missing"));
    /* truncated anywhere in the metadata: an error, never a crash */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char cut[512];
    path_in(cut, sizeof cut, "cut.gguf");
    for (size_t k = 0; k + 1 < n; k += 7) {
        FILE *o = fopen(cut, "wb");
        assert_non_null(o);
        put_bytes(o, buf, k);
        assert_int_equal(fclose(o), 0);
        memset(&err, 0, sizeof err);
        if (sh_gguf_import_genome_file(cut, &g, &err) != -1) fail_msg("truncated at %zu: accepted", k);
        assert_true(strlen(err.msg) > 10);
    }
    /* 100 bytes of a file whose header declares 148 tensors and 20 keys: said
     * to be truncated, not "absurd" (issue 17) */
    unsigned char hdr[100] = {'G', 'G', 'U', 'F', 3, 0, 0, 0, 148, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0};
    FILE *o = fopen(cut, "wb");
    assert_non_null(o);
    put_bytes(o, hdr, sizeof hdr);
    assert_int_equal(fclose(o), 0);
    memset(&err, 0, sizeof err);
    assert_int_equal(sh_gguf_import_genome_file(cut, &g, &err), -1);
    if (!strstr(err.msg, "truncated")) fail_msg("100-byte GGUF: %s", err.msg);
}

/* a tokenizer-only GGUF: general.name, a gpt2-style tokenizer of n tokens (or
 * none), a chat template; no tensors */
static void tokenizer_gguf(const char *path, int n, bool with_model)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    put_bytes(f, "GGUF", 4); put32(f, 3);
    put64(f, 0);
    put64(f, with_model ? 9 : 2);
    putstr(f, "general.architecture"); put32(f, 8); putstr(f, "lfm2");
    putstr(f, "general.name"); put32(f, 8); putstr(f, "tokenizer source");
    if (with_model) {
        putstr(f, "tokenizer.ggml.model"); put32(f, 8); putstr(f, "gpt2");
        putstr(f, "tokenizer.ggml.pre"); put32(f, 8); putstr(f, "lfm2");
        putstr(f, "tokenizer.ggml.tokens"); put32(f, 9); put32(f, 8); put64(f, (uint64_t)n);
        for (int i = 0; i < n; i++) {
            char t[16];
            snprintf(t, sizeof t, i < 4 ? "<|s%d|>" : "tok%d", i);
            putstr(f, t);
        }
        putstr(f, "tokenizer.ggml.token_type"); put32(f, 9); put32(f, 5); put64(f, (uint64_t)n);
        for (int i = 0; i < n; i++) put32(f, i < 4 ? 3 : 1);
        putstr(f, "tokenizer.ggml.merges"); put32(f, 9); put32(f, 8); put64(f, 2);
        putstr(f, "t o"); putstr(f, "to k");
        putstr(f, "tokenizer.ggml.bos_token_id"); put32(f, 4); put32(f, 1);
        putstr(f, "tokenizer.chat_template"); put32(f, 8); putstr(f, "{{ messages }}");
    }
    assert_int_equal(fclose(f), 0);
}

/* export --tokenizer-from: the tokenizer.* pairs of a real GGUF copied byte for
 * byte (nothing else of it), the size estimate still exact; a tokenizer of
 * another size or none at all is refused with the reason */
static void test_gguf_tokenizer_from(void **state)
{
    (void)state;
    static sh_genome g;
    parse_genome(TINY_MOE, &g);
    char src[512], out[512], bad[512], msg[256];
    path_in(src, sizeof src, "tok-src.gguf");
    path_in(out, sizeof out, "tok-out.gguf");
    path_in(bad, sizeof bad, "tok-bad.gguf");
    tokenizer_gguf(src, g.vocab, true);
    sh_gguf_opts o = {.wtype = SH_DTYPE_Q8_0, .seed = 2, .tokenizer_from = src};
    sh_err err = {{0}};
    if (sh_gguf_write_genome(&g, out, &o, &err) != 0) fail_msg("%s", err.msg);
    tg_file f;
    if (tg_read(out, &f, msg, sizeof msg) != 0) fail_msg("%s", msg);
    assert_int_equal(sh_gguf_file_size(&g, &o), f.size);
    assert_string_equal(tg_kv_find(&f, "tokenizer.ggml.model")->str, "gpt2");
    assert_string_equal(tg_kv_find(&f, "tokenizer.ggml.pre")->str, "lfm2");
    assert_string_equal(tg_kv_find(&f, "tokenizer.chat_template")->str, "{{ messages }}");
    assert_string_equal(tg_kv_find(&f, "general.name")->str, "starhil synthetic");   /* not the source's */
    assert_int_equal(tg_kv_find(&f, "tokenizer.ggml.bos_token_id")->u, 1);
    assert_int_equal(tg_kv_find(&f, "tokenizer.ggml.token_type")->arr_len, (uint64_t)g.vocab);
    assert_int_equal(tg_kv_find(&f, "tokenizer.ggml.merges")->arr_len, 2);
    int n_model = 0;
    for (uint64_t i = 0; i < f.n_kv; i++) n_model += !strcmp(f.kv[i].key, "tokenizer.ggml.model");
    assert_int_equal(n_model, 1);   /* no second, no_vocab model key */
    /* the token list, byte for byte */
    sh_gguf_meta a, b;
    if (sh_gguf_meta_read(src, &a, &err) != 0 || sh_gguf_meta_read(out, &b, &err) != 0) fail_msg("%s", err.msg);
    const sh_gguf_kv *ta = sh_gguf_meta_find(&a, "tokenizer.ggml.tokens"), *tb = sh_gguf_meta_find(&b, "tokenizer.ggml.tokens");
    assert_non_null(ta);
    assert_non_null(tb);
    assert_int_equal(ta->len, tb->len);
    assert_memory_equal(a.buf + ta->off, b.buf + tb->off, ta->len);
    sh_gguf_meta_free(&a);
    sh_gguf_meta_free(&b);
    /* the weights are those of the export without a tokenizer */
    sh_gguf_opts plain = {.wtype = SH_DTYPE_Q8_0, .seed = 2};
    char pl[512];
    path_in(pl, sizeof pl, "tok-plain.gguf");
    if (sh_gguf_write_genome(&g, pl, &plain, &err) != 0) fail_msg("%s", err.msg);
    tg_file p;
    if (tg_read(pl, &p, msg, sizeof msg) != 0) fail_msg("%s", msg);
    assert_string_equal(tg_kv_find(&p, "tokenizer.ggml.model")->str, "no_vocab");
    assert_int_equal(p.size - p.data_start, f.size - f.data_start);
    assert_memory_equal(p.data + p.data_start, f.data + f.data_start, f.size - f.data_start);
    tg_free(&p);
    tg_free(&f);
    tokenizer_gguf(bad, g.vocab + 1, true);
    o.tokenizer_from = bad;
    assert_int_equal(sh_gguf_write_genome(&g, out, &o, &err), -1);
    assert_non_null(strstr(err.msg, "the tokenizer has 257 tokens, the genome's vocabulary is 256"));
    tokenizer_gguf(bad, 0, false);
    assert_int_equal(sh_gguf_write_genome(&g, out, &o, &err), -1);
    assert_non_null(strstr(err.msg, "no tokenizer.ggml.model"));
    assert_int_equal(sh_gguf_file_size(&g, &o), 0);
    /* the CLI: the option, and refused for --format hf */
    sh_proc_result r;
    assert_int_equal(run_cli(&r, "export", TINY_MOE, "--format", "gguf", "--tokenizer-from", src, "-o", out, "-q", NULL), 0);
    sh_proc_result_free(&r);
    if (tg_read(out, &f, msg, sizeof msg) != 0) fail_msg("%s", msg);
    assert_string_equal(tg_kv_find(&f, "tokenizer.ggml.model")->str, "gpt2");
    tg_free(&f);
    assert_int_equal(run_cli(&r, "export", TINY_MOE, "--format", "gguf", "--tokenizer-from", bad, "-o", out, "-q", NULL), 1);
    assert_non_null(strstr(r.err, "no tokenizer.ggml.model"));
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "export", TINY_MOE, "--format", "hf", "--tokenizer-from", src, NULL), 2);
    sh_proc_result_free(&r);
}

static void test_gguf_layout(void **state)
{
    (void)state;
    static sh_genome g;
    parse_genome(TINY_MOE, &g);
    char path[512], msg[256];
    path_in(path, sizeof path, "tiny-moe-q4.gguf");
    sh_gguf_opts o = {.wtype = SH_DTYPE_Q4_0, .seed = 5};
    sh_err err = {{0}};
    if (sh_gguf_write_genome(&g, path, &o, &err) != 0) fail_msg("%s", err.msg);
    tg_file f;
    if (tg_read(path, &f, msg, sizeof msg) != 0) fail_msg("%s", msg);
    assert_int_equal(f.version, 3);
    const tg_kv *arch = tg_kv_find(&f, "general.architecture");
    assert_non_null(arch);
    assert_int_equal(arch->type, SH_GGUF_STRING);
    assert_string_equal(arch->str, "lfm2moe");
    check_u32(&f, "general.file_type", 2);              /* LLAMA_FTYPE_MOSTLY_Q4_0 */
    check_u32(&f, "general.quantization_version", 2);
    check_u32(&f, "lfm2moe.context_length", 512);
    check_u32(&f, "lfm2moe.embedding_length", 64);
    check_u32(&f, "lfm2moe.block_count", 3);
    check_u32(&f, "lfm2moe.feed_forward_length", 96);
    check_u32(&f, "lfm2moe.attention.head_count", 4);
    check_u32(&f, "lfm2moe.shortconv.l_cache", 3);
    check_u32(&f, "lfm2moe.vocab_size", 256);
    check_u32(&f, "lfm2moe.expert_count", 4);
    check_u32(&f, "lfm2moe.expert_used_count", 2);
    check_u32(&f, "lfm2moe.expert_feed_forward_length", 32);
    check_u32(&f, "lfm2moe.leading_dense_block_count", 1);
    check_u32(&f, "lfm2moe.expert_gating_func", 2);
    const tg_kv *eps = tg_kv_find(&f, "lfm2moe.attention.layer_norm_rms_epsilon");
    assert_non_null(eps);
    assert_int_equal(eps->type, SH_GGUF_F32);
    assert_true((float)eps->f == 1e-5f);
    const tg_kv *base = tg_kv_find(&f, "lfm2moe.rope.freq_base");
    assert_int_equal(base->type, SH_GGUF_F32);
    assert_true(base->f == 10000.0);
    const tg_kv *kv = tg_kv_find(&f, "lfm2moe.attention.head_count_kv");
    assert_non_null(kv);
    assert_int_equal(kv->type, SH_GGUF_ARRAY);
    assert_int_equal(kv->arr_type, SH_GGUF_U32);
    assert_int_equal(kv->arr_len, 3);
    assert_int_equal(kv->arr_u32[0], 0);
    assert_int_equal(kv->arr_u32[1], 2);
    assert_int_equal(kv->arr_u32[2], 0);
    const tg_kv *tok = tg_kv_find(&f, "tokenizer.ggml.model");
    assert_int_equal(tok->type, SH_GGUF_STRING);
    assert_string_equal(tok->str, "no_vocab");

    check_tensor(&f, "token_embd.weight", SH_DTYPE_Q4_0, 64, 256, 0);
    check_tensor(&f, "output.weight", SH_DTYPE_Q4_0, 64, 256, 0);
    check_tensor(&f, "token_embd_norm.weight", SH_DTYPE_F32, 64, 0, 0);
    check_tensor(&f, "blk.0.attn_norm.weight", SH_DTYPE_F32, 64, 0, 0);
    check_tensor(&f, "blk.0.shortconv.in_proj.weight", SH_DTYPE_Q4_0, 64, 192, 0);
    check_tensor(&f, "blk.0.shortconv.conv.weight", SH_DTYPE_F32, 3, 64, 0);
    check_tensor(&f, "blk.0.shortconv.out_proj.weight", SH_DTYPE_Q4_0, 64, 64, 0);
    check_tensor(&f, "blk.0.ffn_gate.weight", SH_DTYPE_Q4_0, 64, 96, 0);
    check_tensor(&f, "blk.0.ffn_up.weight", SH_DTYPE_Q4_0, 64, 96, 0);
    check_tensor(&f, "blk.0.ffn_down.weight", SH_DTYPE_Q4_0, 96, 64, 0);
    check_tensor(&f, "blk.1.attn_q.weight", SH_DTYPE_Q4_0, 64, 64, 0);
    check_tensor(&f, "blk.1.attn_k.weight", SH_DTYPE_Q4_0, 64, 32, 0);
    check_tensor(&f, "blk.1.attn_v.weight", SH_DTYPE_Q4_0, 64, 32, 0);
    check_tensor(&f, "blk.1.attn_output.weight", SH_DTYPE_Q4_0, 64, 64, 0);
    check_tensor(&f, "blk.1.attn_q_norm.weight", SH_DTYPE_F32, 16, 0, 0);
    check_tensor(&f, "blk.1.attn_k_norm.weight", SH_DTYPE_F32, 16, 0, 0);
    check_tensor(&f, "blk.1.ffn_gate_inp.weight", SH_DTYPE_F32, 64, 4, 0);
    check_tensor(&f, "blk.1.ffn_gate_exps.weight", SH_DTYPE_Q4_0, 64, 32, 4);
    check_tensor(&f, "blk.1.ffn_up_exps.weight", SH_DTYPE_Q4_0, 64, 32, 4);
    check_tensor(&f, "blk.1.ffn_down_exps.weight", SH_DTYPE_Q4_0, 32, 64, 4);
    check_tensor(&f, "blk.1.exp_probs_b.bias", SH_DTYPE_F32, 4, 0, 0);
    assert_null(tg_tensor_find(&f, "blk.0.attn_q.weight"));
    assert_null(tg_tensor_find(&f, "blk.1.shortconv.conv.weight"));
    assert_int_equal(f.n_tensors, 1 + 1 + 1 + 8 + 13 + 10);

    /* data: tensors tile the data section in order, the last one ends the file */
    uint64_t end = 0;
    for (uint64_t k = 0; k < f.n_tensors; k++) {
        const tg_tensor *t = &f.t[k];
        uint64_t n = t->ne[0] * (t->n_dims > 1 ? t->ne[1] : 1) * (t->n_dims > 2 ? t->ne[2] : 1);
        uint64_t bytes = t->type == SH_DTYPE_F32 ? 4 * n : t->type == SH_DTYPE_Q4_0 ? n / 32 * 18 : 0;
        assert_true(t->offset >= end);
        end = t->offset + bytes;
    }
    assert_true(f.data_start + end <= f.size && f.size - (f.data_start + end) < 32);
    assert_int_equal(sh_gguf_file_size(&g, &o), f.size);

    /* values: dequantised q4_0 rows of the embedding match the synthetic f32
     * values within half a quantisation step, norms are exact */
    const tg_tensor *emb = tg_tensor_find(&f, "token_embd.weight");
    const uint8_t *blk = f.data + f.data_start + emb->offset + 3 * (64 / 32 * 18);   /* row 3 */
    sh_synth_tensor st = {.kind = SH_SYN_TOKEN_EMBD, .layer = -1, .rows = 256, .cols = 64};
    float row[64];
    sh_synth_row(&st, 5, 3, row);
    for (int b = 0; b < 2; b++, blk += 18) {
        uint16_t dh;
        memcpy(&dh, blk, 2);
        float dd = sh_fp16_to_fp32(dh);
        /* ggml's q4_0 maps the largest-magnitude value to code 0 and clamps the
         * other side at code 15 (7 steps), so a clamped value may be off by a
         * whole step; every other value is within half a step (+1% for the f16
         * rounding of d) */
        for (int j = 0; j < 32; j++) {
            int code = j < 16 ? (blk[2 + j] & 15) : (blk[2 + j - 16] >> 4);
            float bound = fabsf(dd) * (code == 15 ? 1.01f : 0.505f) + 1e-6f;
            assert_true(fabsf((float)(code - 8) * dd - row[32 * b + j]) <= bound);
        }
    }
    const tg_tensor *nrm = tg_tensor_find(&f, "blk.2.ffn_norm.weight");
    sh_synth_tensor sn = {.kind = SH_SYN_FFN_NORM, .layer = 2, .rows = 1, .cols = 64};
    sh_synth_row(&sn, 5, 0, row);
    assert_memory_equal(f.data + f.data_start + nrm->offset, row, sizeof row);
    tg_free(&f);
}

static void test_gguf_dense_types(void **state)
{
    (void)state;
    static sh_genome g;
    sh_err err = {{0}};
    assert_int_equal(sh_preset_get("lfm2-350m", &g, &err), 0);
    g.vocab = 512;                 /* keep the file small: the layer stack is the preset's */
    g.n_layers = 3;                /* conv, conv, gqa */
    const char *types[] = {"f32", "f16", "q8_0"};
    const uint32_t ggml[] = {SH_DTYPE_F32, SH_DTYPE_F16, SH_DTYPE_Q8_0};
    for (int k = 0; k < 3; k++) {
        char path[512], msg[256];
        path_in(path, sizeof path, "dense.gguf");
        sh_gguf_opts o = {.seed = 3};
        assert_int_equal(sh_dtype_parse(types[k], &o.wtype), 0);
        if (sh_gguf_write_genome(&g, path, &o, &err) != 0) fail_msg("%s", err.msg);
        tg_file f;
        if (tg_read(path, &f, msg, sizeof msg) != 0) { tg_free(&f); fail_msg("%s", msg); }
        assert_string_equal(tg_kv_find(&f, "general.architecture")->str, "lfm2");
        check_u32(&f, "lfm2.feed_forward_length", 4608);
        check_tensor(&f, "blk.2.attn_q.weight", ggml[k], 1024, 1024, 0);
        check_tensor(&f, "blk.0.shortconv.conv.weight", SH_DTYPE_F32, 3, 1024, 0);
        assert_null(tg_tensor_find(&f, "output.weight"));    /* tied */
        assert_null(tg_kv_find(&f, "lfm2.expert_count"));
        tg_free(&f);
    }
    /* q4_0 needs rows that are multiples of 32 */
    static sh_genome odd;
    parse_genome("d=48 v=100 hd=16 theta=10000 eps=1e-05 ctx=64 tie=1 | conv(3)/swiglu(40)", &odd);
    char path[512];
    path_in(path, sizeof path, "odd.gguf");
    sh_gguf_opts o = {.wtype = SH_DTYPE_Q4_0, .seed = 1};
    assert_int_equal(sh_gguf_write_genome(&odd, path, &o, &err), -1);
    assert_non_null(strstr(err.msg, "q4_0"));
    o.wtype = SH_DTYPE_F32;
    assert_int_equal(sh_gguf_write_genome(&odd, path, &o, &err), 0);
}

/* The planned file of every LFM2 preset holds exactly the weight bytes the
 * genome analytics predict, plus a small header (no file is written). */
static void test_gguf_sizes_match_analytics(void **state)
{
    (void)state;
    static sh_genome g;
    int n = 0;
    for (int i = 0; i < sh_preset_count(); i++) {
        const char *name = sh_preset_at(i)->name;
        if (strncmp(name, "lfm2", 4) != 0) continue;
        sh_err err = {{0}};
        assert_int_equal(sh_preset_get(name, &g, &err), 0);
        for (int t = 0; t < SH_DTYPE_COUNT; t++) {
            sh_gguf_opts o = {.wtype = sh_dtype_at(t), .seed = 1};
            uint64_t file = sh_gguf_file_size(&g, &o), weights = sh_genome_weight_bytes(&g, o.wtype);
            if (file < weights || file - weights > 65536)
                fail_msg("%s %s: GGUF %llu bytes for %llu weight bytes", name, sh_dtype_name(o.wtype),
                         (unsigned long long)file, (unsigned long long)weights);
        }
        n++;
    }
    assert_true(n >= 5);
}

/* Builds the native variant of `text`; -1 on failure (message printed). */
static int build_variant(const char *text, char *exe, size_t cap)
{
    static sh_genome g;
    parse_genome(text, &g);
    sh_err err = {{0}};
    sh_build_opts bo = {.timeout_s = 600};
    if (sh_build_variant(&g, "native", &bo, exe, cap, &err) != 0) {
        print_message("build failed: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static float *logits_of(const char *exe, const char *out_name, const char *a1, const char *a2,
                        const char *a3, const char *a4, size_t *n)
{
    char out[512];
    path_in(out, sizeof out, out_name);
    char *argv[] = {(char *)exe, "logits", "--tokens", "3,1,4,1,5,9,2,6", "--all", "--out", out,
                    (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL};
    sh_proc_opts o = {.timeout_s = 120};
    sh_proc_result r;
    sh_err err = {{0}};
    if (sh_proc_run(argv, &o, &r, &err) != 0) fail_msg("%s", err.msg);
    if (!(r.exited && r.exit_code == 0)) fail_msg("logits %s %s failed: %s", a1, a2, r.err);
    sh_proc_result_free(&r);
    size_t len;
    char *buf = read_file(out, &len);
    assert_non_null(buf);
    *n = len / sizeof(float);
    return (float *)(void *)buf;
}

/* The runtime loads our GGUF and reproduces the logits of its own synthetic
 * weights for the same seed and type: lfm2moe, qwen3 (untied head) and llama
 * (q/k rows in llama.cpp's pair order, which the runtime's pairwise RoPE for
 * llama files undoes; llama3 scaling read from rope_freqs.weight). */
static void test_gguf_runtime_roundtrip(void **state)
{
    (void)state;
    const char *texts[] = {"d=64 v=256 hd=16 theta=500000 eps=1e-06 ctx=512 tie=0 | conv(3)/swiglu(96) "
                           "gqa(4,2,qk)/moe(4,2,32,bias) conv(3)/moe(4,2,32,bias)",
                           "d=64 v=256 hd=32 theta=1000000 eps=1e-06 ctx=512 tie=0 | gqa(4,2,qk)/swiglu(96)*2",
                           "d=64 v=256 hd=32 theta=500000 eps=1e-05 ctx=512 tie=1 rope=llama3(32,1,4,64) | "
                           "gqa(4,2)/swiglu(96)*2"};
    for (int t = 0; t < 3; t++) {
    const char *text = texts[t];
    char exe[SH_BUILD_PATH_MAX];
    if (build_variant(text, exe, sizeof exe) != 0) fail_msg("variant build failed");
    static sh_genome g;
    parse_genome(text, &g);
    const char *types[] = {"f32", "q8_0", "q4_0"};
    for (int k = 0; k < (t ? 2 : 3); k++) {
        char gguf[512];
        path_in(gguf, sizeof gguf, "rt.gguf");
        sh_gguf_opts o = {.seed = 11};
        assert_int_equal(sh_dtype_parse(types[k], &o.wtype), 0);
        sh_err err = {{0}};
        if (sh_gguf_write_genome(&g, gguf, &o, &err) != 0) fail_msg("%s", err.msg);
        size_t na, nb;
        float *a = logits_of(exe, "a.bin", "--seed", "11", "--wtype", types[k], &na);
        float *b = logits_of(exe, "b.bin", "--gguf", gguf, NULL, NULL, &nb);
        assert_int_equal(na, nb);
        assert_true(na >= 256);
        double maxdiff = 0, maxabs = 0;
        for (size_t i = 0; i < na; i++) {
            maxdiff = fmax(maxdiff, fabs((double)a[i] - b[i]));
            maxabs = fmax(maxabs, fabs((double)a[i]));
        }
        if (!(maxdiff <= 1e-5 * fmax(maxabs, 1.0)))
            fail_msg("%s: GGUF logits differ from synthetic ones by %g (max |logit| %g)", types[k], maxdiff, maxabs);
        /* and another seed really gives other logits */
        free(b);
        b = logits_of(exe, "b.bin", "--seed", "12", "--wtype", types[k], &nb);
        double d2 = 0;
        for (size_t i = 0; i < na; i++) d2 = fmax(d2, fabs((double)a[i] - b[i]));
        assert_true(d2 > 1e-3 * fmax(maxabs, 1e-3));
        free(a);
        free(b);
    }
    }
}

/* ---- run report fixture ------------------------------------------------------------------ */

static const char *TOPOLOGY =
    "{\"machine\":\"x86_64\",\"model\":\"Fixture CPU <script>alert(1)</script>\",\"n_cpus\":4,"
    "\"clusters\":[{\"max_khz\":0,\"cpus\":[0,1,2,3]}],"
    "\"caches\":[{\"level\":1,\"type\":\"Data\",\"size_bytes\":32768,\"cpus\":\"0\"},"
    "{\"level\":2,\"type\":\"Unified\",\"size_bytes\":1048576,\"cpus\":\"0\"},"
    "{\"level\":2,\"type\":\"Unified\",\"size_bytes\":1048576,\"cpus\":\"1\"}],"
    "\"mem_total_bytes\":8589934592}";

static void bench_json(char *out, size_t cap, double decode_ms, double rss, double kv, double conv)
{
    snprintf(out, cap,
             "{\"mode\":\"bench\",\"genome_hash\":\"x\",\"build\":{\"target\":\"x86_64-linux-gnu\","
             "\"simd\":\"avx2\",\"cc\":\"cc\",\"flags\":\"-O3\"},\"cpu\":{\"model\":\"m\",\"n_cpus\":4,"
             "\"cpus_used\":\"0-3\"},\"settings\":{\"prompt\":512,\"gen\":128,\"depth\":0,\"threads\":4,"
             "\"reps\":5,\"warmup\":1,\"wtype\":\"q4_0\",\"kvtype\":\"f32\",\"seed\":1},"
             "\"prefill_tok_s\":%.3f,\"decode_tok_s\":%.3f,\"ttft_ms\":%.3f,\"prefill_ms\":[1,2],"
             "\"decode_ms\":{\"median\":%.4f,\"p90\":%.4f,\"samples\":[%.4f,%.4f]},"
             "\"peak_rss_bytes\":%.0f,\"weight_bytes\":%.0f,\"kv_bytes\":%.0f,\"conv_state_bytes\":%.0f,"
             "\"share\":{\"prefill\":{\"conv\":0.1,\"attention\":0.1,\"swiglu\":0.5,\"moe\":0.0,\"head\":0.3},"
             "\"decode\":{\"conv\":0.1,\"attention\":0.1,\"swiglu\":0.5,\"moe\":0.0,\"head\":0.3}}}",
             20000.0 / decode_ms, 1000.0 / decode_ms, decode_ms * 3, decode_ms, decode_ms * 1.1, decode_ms,
             decode_ms, rss, rss * 0.8, kv, conv);
}

/* The summary measure/measure.c stores (decode_ms_median instead of decode_ms.median). */
static void summary_json(char *out, size_t cap, double decode_ms, double rss, double kv, double conv)
{
    snprintf(out, cap,
             "{\"device\":\"fixture-box\",\"kind\":\"local\",\"settings\":{\"prompt\":512,\"gen\":128,"
             "\"wtype\":\"q4_0\"},\"decode_ms_median\":%.4f,\"decode_ci_low\":1,\"decode_ci_high\":2,"
             "\"decode_tok_s\":%.3f,\"prefill_tok_s\":%.3f,\"ttft_ms\":%.3f,\"peak_rss_bytes\":%.0f,"
             "\"weight_bytes\":%.0f,\"kv_bytes\":%.0f,\"conv_state_bytes\":%.0f,\"reps\":5,"
             "\"decode_ms\":%.4f,\"decode_ms_low\":%.4f,\"decode_ms_high\":%.4f,\"stability\":\"%s\","
             "\"stability_reason\":\"%s\",\"estimator\":\"" SH_DECODE_ESTIMATOR "\"}",
             decode_ms, 1000.0 / decode_ms, 20000.0 / decode_ms, decode_ms * 3, rss, rss * 0.8, kv, conv,
             decode_ms, decode_ms * 0.9, decode_ms * 1.1, (int)decode_ms == 5 ? "unstable" : "quiet",
             (int)decode_ms == 5 ? "busy: fixture" : "");
}

static void put_measurement(sh_db *db, int64_t run, const sh_genome *g, const char *device, double ms,
                            double rss, double kv, double conv)
{
    sh_err err = {{0}};
    int64_t id;
    char status[16], res[4096];
    if (sh_db_put_genome(db, g, &err) != 0) fail_msg("%s", err.msg);
    if (sh_db_eval_get_or_create(db, run, sh_genome_hash(g), device, "measure",
                                 "{\"prompt\":512,\"gen\":128,\"wtype\":\"q4_0\"}", &id, status, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(sh_db_eval_mark_running(db, id, &err), 0);
    if ((int)ms % 2) summary_json(res, sizeof res, ms, rss, kv, conv);
    else bench_json(res, sizeof res, ms, rss, kv, conv);
    sh_sample s[2] = {{"decode_ms", 0, ms}, {"decode_ms", 1, ms}};
    if (sh_db_eval_finish_ok(db, id, res, s, 2, &err) != 0) fail_msg("%s", err.msg);
}

static void put_score(sh_db *db, const sh_genome *g, double acc)
{
    sh_err err = {{0}};
    sh_score_rec s = {.genome = sh_genome_hash(g), .aggregate = acc, .seconds = 1.0};
    snprintf(s.scorer, sizeof s.scorer, "builtin");
    snprintf(s.version, sizeof s.version, "1");
    snprintf(s.status, sizeof s.status, "ok");
    s.params_json = "{}";
    s.scores_json = "{\"copy\":0.5}";
    if (sh_db_put_score(db, &s, &err) != 0) fail_msg("%s", err.msg);
}

#define N_FIX 6
static int64_t fixture_run, empty_run, analytic_run, normalized_run, paired_run;

/* A search run with a reference genome that ranked normalized figures: two
 * genomes measured on "fixture-box", the first with a figure normalized by
 * the reference (10 ms as measured, 8 ms normalized), the second without
 * (its reference was not trusted). */
static void build_normalized_run(sh_db *db)
{
    sh_err err = {{0}};
    if (sh_db_create_run(db, "normalized", "{\"kind\":\"search\",\"measure\":{\"reference\":\"d=64 v=256 hd=32 "
                         "| conv(3)/swiglu(64)\",\"reference_every\":1,\"rank\":\"normalized\"}}", 3,
                         &normalized_run, &err) != 0)
        fail_msg("%s", err.msg);
    /* the same with the reference paired with each invocation (search --paired) */
    if (sh_db_create_run(db, "normalized-paired", "{\"kind\":\"search\",\"measure\":{\"reference\":\"d=64 "
                         "v=256 hd=32 | conv(3)/swiglu(64)\",\"reference_every\":1,\"reference_paired\":true,"
                         "\"rank\":\"normalized\"}}", 3, &paired_run, &err) != 0)
        fail_msg("%s", err.msg);
    static sh_genome g[2];
    for (int i = 0; i < 2; i++) {
        char text[256], res[1024];
        snprintf(text, sizeof text, "d=128 v=512 hd=32 theta=10000 eps=1e-05 ctx=1024 tie=1 | conv(3)/swiglu(%d)*2",
                 256 * (i + 1));
        parse_genome(text, &g[i]);
        assert_int_equal(sh_db_put_genome(db, &g[i], &err), 0);
        int64_t id;
        char status[16];
        if (sh_db_eval_get_or_create(db, normalized_run, sh_genome_hash(&g[i]), "fixture-box", "measure",
                                     "{\"prompt\":16,\"gen\":8,\"wtype\":\"q4_0\"}", &id, status, &err) != 0)
            fail_msg("%s", err.msg);
        snprintf(res, sizeof res, "{\"decode_ms\":10,\"decode_ms_low\":9.5,\"decode_ms_high\":10.5,"
                 "\"stability\":\"%s\",\"estimator\":\"" SH_DECODE_ESTIMATOR "\"%s}", i ? "unstable" : "quiet",
                 i ? "" : ",\"decode_ms_normalized\":8,\"decode_ms_normalized_low\":7.5,"
                          "\"decode_ms_normalized_high\":8.6,\"reference_anchor_ms\":0.4");
        assert_int_equal(sh_db_eval_mark_running(db, id, &err), 0);
        if (sh_db_eval_finish_ok(db, id, res, NULL, 0, &err) != 0) fail_msg("%s", err.msg);
    }
}

/* A run of the search in analytic mode: "search" evaluations only. */
static void build_analytic_run(sh_db *db)
{
    sh_err err = {{0}};
    if (sh_db_create_run(db, "analytic", "{\"kind\":\"search\",\"evaluator\":\"analytic\"}", 7,
                         &analytic_run, &err) != 0)
        fail_msg("%s", err.msg);
    static sh_genome g[3];
    sh_gen_member m[3];
    for (int i = 0; i < 3; i++) {
        char text[256], res[1024];
        snprintf(text, sizeof text, "d=128 v=512 hd=32 theta=10000 eps=1e-05 ctx=1024 tie=1 | "
                 "conv(3)/swiglu(%d)*2 gqa(4,2,qk)/swiglu(%d)", 256 * (i + 1), 256 * (i + 1));
        parse_genome(text, &g[i]);
        assert_int_equal(sh_db_put_genome(db, &g[i], &err), 0);
        int64_t id;
        char status[16];
        if (sh_db_eval_get_or_create(db, analytic_run, sh_genome_hash(&g[i]), "", "search", "{}", &id, status,
                                     &err) != 0)
            fail_msg("%s", err.msg);
        snprintf(res, sizeof res, "{\"objectives\":{\"capability\":%.2f,\"decode_ms\":%.1f},\"violation\":0,"
                 "\"analytic\":{\"decode_ms\":%.1f,\"peak_bytes\":%d,\"cache_bytes\":%d,\"params\":1000}}",
                 0.3 + 0.1 * i, 1.0 + i, 1.0 + i, 1000000 * (i + 1), 50000 * (i + 1));
        assert_int_equal(sh_db_eval_mark_running(db, id, &err), 0);
        if (sh_db_eval_finish_ok(db, id, res, NULL, 0, &err) != 0) fail_msg("%s", err.msg);
        m[i] = (sh_gen_member){sh_genome_hash(&g[i]), i == 1 ? 1 : 0, 0.5, i != 1, "{}"};
    }
    if (sh_db_put_generation(db, analytic_run, 0, m, 3, 0.25, 3, &err) != 0) fail_msg("%s", err.msg);
}

/* 6 genomes measured on "fixture-box", 3 on the front; presets lfm2-350m and
 * qwen3-0.6b measured on the same device outside the run; 3 generations;
 * profiles of two devices. */
static void build_fixture(const char *path)
{
    sh_db *db = NULL;
    sh_err err = {{0}};
    if (sh_db_open(path, SH_DB_CREATE, &db, &err) != 0) fail_msg("%s", err.msg);
    sh_device_rec d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "fixture-box");
    snprintf(d.kind, sizeof d.kind, "local");
    snprintf(d.target, sizeof d.target, "x86_64-linux-gnu");
    d.healthy = true;
    if (sh_db_add_device(db, &d, &err) != 0) fail_msg("%s", err.msg);
    if (sh_db_set_device_topology(db, "fixture-box", TOPOLOGY, &err) != 0) fail_msg("%s", err.msg);
    snprintf(d.name, sizeof d.name, "fixture-pi");
    snprintf(d.target, sizeof d.target, "aarch64-linux-gnu");
    if (sh_db_add_device(db, &d, &err) != 0) fail_msg("%s", err.msg);
    if (sh_db_create_run(db, "fixture \"run\" <b>", "{\"objectives\":[\"capability\",\"decode_ms\"]}", 42,
                         &fixture_run, &err) != 0)
        fail_msg("%s", err.msg);
    if (sh_db_create_run(db, "empty", "{}", 1, &empty_run, &err) != 0) fail_msg("%s", err.msg);
    build_analytic_run(db);
    build_normalized_run(db);
    static sh_genome g[N_FIX];
    sh_gen_member m[N_FIX];
    for (int i = 0; i < N_FIX; i++) {
        char text[512];
        snprintf(text, sizeof text, "d=256 v=1024 hd=32 theta=10000 eps=1e-05 ctx=2048 tie=1 | "
                 "conv(3)/swiglu(%d)*%d gqa(8,2,qk)/swiglu(%d)", 256 + 128 * i, 1 + i % 3, 256 + 128 * i);
        parse_genome(text, &g[i]);
        bool front = i % 2 == 0;
        /* front members: faster and better */
        put_measurement(db, fixture_run, &g[i], "fixture-box", 2.0 + i, 5e7 + 1e7 * i, 1e6 * (i + 1), 3e4);
        put_score(db, &g[i], front ? 0.5 + 0.05 * i : 0.2 + 0.01 * i);
        m[i] = (sh_gen_member){sh_genome_hash(&g[i]), front ? 0 : 1, 0.5, front, "{\"capability\":0.5}"};
    }
    for (int gen = 0; gen < 3; gen++)
        if (sh_db_put_generation(db, fixture_run, gen, m, N_FIX, 0.1 + 0.2 * gen, 6 * (gen + 1), &err) != 0)
            fail_msg("%s", err.msg);
    static sh_genome p;
    assert_int_equal(sh_preset_get("lfm2-350m", &p, &err), 0);
    put_measurement(db, 0, &p, "fixture-box", 9.0, 4e8, 2e6, 6e4);
    put_score(db, &p, 0.7);
    assert_int_equal(sh_preset_get("qwen3-0.6b", &p, &err), 0);
    put_measurement(db, 0, &p, "fixture-box", 15.0, 7e8, 9e6, 0);
    put_score(db, &p, 0.72);
    sh_profile_row rows[3] = {
        {"conv", "{\"d\":1024,\"L\":3}", "q4_0", 120.0, 10.0, 5.0},
        {"gqa", "{\"d\":1024,\"heads\":16,\"kv\":8,\"ctx\":512}", "q4_0", 300.0, 8.0, 4.0},
        {"swiglu", "{\"d\":1024,\"f\":4608}", "q4_0", 800.0, 12.0, 6.0},
    };
    if (sh_db_put_profile(db, "fixture-box", rows, 3, &err) != 0) fail_msg("%s", err.msg);
    rows[0].latency_us = 360.0; rows[1].latency_us = 900.0; rows[2].latency_us = 2000.0;
    if (sh_db_put_profile(db, "fixture-pi", rows, 2, &err) != 0) fail_msg("%s", err.msg);
    sh_db_close(db);
}

static char fixture_db[512];

static void test_report_data(void **state)
{
    (void)state;
    sh_db *db = NULL;
    sh_err err = {{0}};
    if (sh_db_open(fixture_db, SH_DB_READONLY, &db, &err) != 0) fail_msg("%s", err.msg);
    sh_report r;
    if (sh_report_load(db, fixture_run, &r, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(r.n_points, N_FIX);
    assert_int_equal(r.n_gens, 3);
    assert_int_equal(r.last_gen, 2);
    assert_int_equal(r.n_devices, 1);
    assert_string_equal(r.devices[0].name, "fixture-box");
    assert_non_null(r.devices[0].topology_json);
    assert_int_equal(r.n_presets, 2);
    int front = 0, n_flag = 0;
    for (int i = 0; i < r.n_points; i++) {
        const sh_rep_point *p = &r.points[i];
        front += p->on_front;
        assert_non_null(p->text);
        assert_true(isfinite(p->capability));
        assert_true(p->decode_ms >= 2.0 && p->decode_ms <= 7.0);
        assert_true(p->cache_bytes == p->kv_bytes + p->conv_state_bytes);
        assert_true(p->params_total > 0);
        assert_string_equal(p->wtype, "q4_0");
        if (p->stability[0]) {   /* measure summaries: the interval and the flag travel with the point */
            assert_true(p->decode_ms_low <= p->decode_ms && p->decode_ms <= p->decode_ms_high);
            n_flag += !strcmp(p->stability, "unstable") && !strcmp(p->stability_reason, "busy: fixture");
        }
    }
    assert_int_equal(n_flag, 1);
    assert_int_equal(front, 3);
    bool saw_lfm2 = false;
    for (int i = 0; i < r.n_presets; i++) {
        if (!strcmp(r.presets[i].preset, "lfm2-350m")) {
            saw_lfm2 = true;
            assert_true(r.presets[i].decode_ms == 9.0);
            assert_true(r.presets[i].capability == 0.7);
        }
    }
    assert_true(saw_lfm2);
    sh_report_free(&r);

    if (sh_report_load(db, analytic_run, &r, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(r.n_points, 3);
    assert_int_equal(r.n_devices, 0);
    for (int i = 0; i < 3; i++) {
        const sh_rep_point *p = &r.points[i];
        assert_string_equal(p->device, "");
        assert_true(fabs(p->capability - (0.3 + 0.1 * i)) < 1e-9);
        assert_true(p->decode_ms == 1.0 + i);
        assert_true(p->peak_rss_bytes == 1e6 * (i + 1));
        assert_int_equal(p->on_front, i != 1);
    }
    sh_report_free(&r);

    /* a run that ranked figures normalized by its reference shows those */
    if (sh_report_load(db, normalized_run, &r, &err) != 0) fail_msg("%s", err.msg);
    assert_true(r.decode_normalized);
    assert_true(!strncmp(r.decode_estimator, "normalized by the run's reference genome", 40));
    assert_non_null(strstr(r.decode_estimator, SH_DECODE_ESTIMATOR));
    assert_null(strstr(r.decode_estimator, "beside"));
    assert_int_equal(r.n_points, 2);
    int n_norm = 0;
    for (int i = 0; i < 2; i++) {
        const sh_rep_point *p = &r.points[i];
        if (p->normalized) {
            n_norm++;
            assert_true(p->decode_ms == 8 && p->decode_ms_low == 7.5 && p->decode_ms_high == 8.6);
            assert_true(p->decode_ms_measured == 10);
        } else {
            assert_true(p->decode_ms == 10 && isnan(p->decode_ms_measured));
        }
    }
    assert_int_equal(n_norm, 1);
    char *js = sh_report_json(&r, false, &err);
    assert_non_null(js);
    assert_non_null(strstr(js, "\"decode_normalized\":true"));
    assert_non_null(strstr(js, "\"decode_ms_measured\":10"));
    free(js);
    char *csv = NULL;
    size_t csv_len = 0;
    FILE *cf = open_memstream(&csv, &csv_len);
    assert_int_equal(sh_report_write_csv(&r, cf, &err), 0);
    fclose(cf);
    assert_non_null(strstr(csv, ",decode_ms_median,decode_ms_measured,stability,"));
    free(csv);
    sh_report_free(&r);
    /* paired: the label says by what the figures were divided */
    if (sh_report_load(db, paired_run, &r, &err) != 0) fail_msg("%s", err.msg);
    assert_true(r.decode_normalized && r.decode_paired);
    assert_non_null(strstr(r.decode_estimator, "the median ratio to the reference measured beside each point"));
    assert_non_null(strstr(r.decode_estimator, SH_DECODE_ESTIMATOR));
    sh_report_free(&r);
    assert_int_equal(sh_report_load(db, 999, &r, &err), -1);
    assert_true(err.msg[0] != 0);
    sh_db_close(db);
}

static void test_report_cli_formats(void **state)
{
    (void)state;
    sh_proc_result r;
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)fixture_run);
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", id, "--format", "json", NULL), 0);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "points")), N_FIX);
    assert_int_equal(json_array_size(json_object_get(j, "presets")), 2);
    assert_int_equal(json_array_size(json_object_get(j, "generations")), 3);
    json_t *p0 = json_array_get(json_object_get(j, "points"), 0);
    assert_true(json_is_string(json_object_get(p0, "genome")));
    assert_true(json_is_number(json_object_get(p0, "decode_ms")));
    /* the column names what the rows were stored with: this run holds rows
     * of today's estimator and rows from before the robust estimate */
    const char *est = json_string_value(json_object_get(j, "decode_estimator"));
    assert_non_null(est);
    assert_non_null(strstr(est, "mixed: "));
    assert_non_null(strstr(est, SH_DECODE_ESTIMATOR));
    assert_non_null(strstr(est, "median of all tokens"));
    int n_disturbed = 0;
    for (size_t k = 0; k < json_array_size(json_object_get(j, "points")); k++) {
        json_t *p = json_array_get(json_object_get(j, "points"), k);
        assert_true(json_is_boolean(json_object_get(p, "disturbed")));
        assert_non_null(json_object_get(p, "decode_ms_low"));
        n_disturbed += json_is_true(json_object_get(p, "disturbed"));
    }
    assert_int_equal(n_disturbed, 1);
    json_decref(j);
    sh_proc_result_free(&r);

    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", id, "--format", "csv", "-o", "r.csv", NULL), 0);
    assert_non_null(strstr(r.out, "r.csv"));
    sh_proc_result_free(&r);
    char path[512];
    path_in(path, sizeof path, "r.csv");
    char *csv = read_file(path, NULL);
    assert_non_null(csv);
    assert_int_equal(count_substr(csv, "\nmember,"), N_FIX);
    assert_int_equal(count_substr(csv, "\npreset,"), 2);
    assert_non_null(strstr(csv, "\"d=256 v=1024"));          /* genome text quoted (commas) */
    assert_int_equal(strncmp(csv, "role,hash,device,preset,on_front,rank,wtype,capability,decode_ms", 63), 0);
    assert_non_null(strstr(csv, ",decode_ms_low,decode_ms_high,decode_ms_median,stability,stability_reason,genome\n"));
    assert_non_null(strstr(csv, ",unstable,busy: fixture,"));
    free(csv);

    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", id, "--format", "md", NULL), 0);
    assert_non_null(strstr(r.out, "## Front"));
    /* the front table names the estimator its rows were stored with */
    assert_non_null(strstr(r.out, "decode ms/tok (mixed: "));
    assert_non_null(strstr(r.out, SH_DECODE_ESTIMATOR));
    assert_non_null(strstr(r.out, "lfm2-350m"));
    assert_int_equal(count_substr(r.out, "| fixture-box |"), 3 + 2);
    sh_proc_result_free(&r);

    /* '|' in a genome cannot break the Markdown table: every row has the same 10 cells (stability included) */
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", id, "--format", "md", NULL), 0);
    for (const char *line = r.out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (*line != '|') continue;
        int bars = 0;
        for (const char *c = line; *c && *c != '\n'; c++)
            if (*c == '|' && (c == line || c[-1] != '\\')) bars++;
        assert_int_equal(bars, 11);
    }
    assert_non_null(strstr(r.out, " \\| conv("));         /* genome text's separator escaped */
    sh_proc_result_free(&r);

    /* default HTML name in the current directory: after the database and the run;
     * an existing one is not overwritten without --force (or -o) */
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", id, NULL), 0);
    char want[64];
    snprintf(want, sizeof want, "report-fixture-run%s.html", id);
    assert_non_null(strstr(r.out, want));
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", id, NULL), 1);
    assert_non_null(strstr(r.err, "exists; not overwritten"));
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", id, "--force", NULL), 0);
    sh_proc_result_free(&r);
    path_in(path, sizeof path, want);
    char *html = read_file(path, NULL);
    assert_non_null(html);
    /* the only URLs are XML namespace names and d3's banner comment (nothing is fetched;
     * the page's Content-Security-Policy forbids it anyway) */
    assert_int_equal(count_substr(html, "http://"), count_substr(html, "http://www.w3.org/"));
    assert_int_equal(count_substr(html, "https://"), count_substr(html, "// https://d3js.org v7"));
    assert_non_null(strstr(html, "default-src 'none'"));
    assert_non_null(strstr(html, "ISC licence"));
    assert_null(strstr(html, "<script src"));
    assert_null(strstr(html, "<link"));
    assert_null(strstr(html, "<script>alert(1)"));   /* device text cannot break out */
    free(html);

    /* errors */
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", "999", NULL), 1);
    assert_non_null(strstr(r.err, "999"));
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", "abc", NULL), 1);
    assert_non_null(strstr(r.err, "no run with id or name"));
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", "analytic", "--format", "md", NULL), 0);
    assert_non_null(strstr(r.out, ": analytic"));
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", id, "--format", "pdf", NULL), 2);
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "--db", "missing.db", "report", id, NULL), 1);
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "report", "--help", NULL), 0);
    assert_non_null(strstr(r.out, "--devices"));
    sh_proc_result_free(&r);
}

/* The measurement record (measure/mrecord.h): what its writer stores its
 * reader gives back field for field, and the spellings older starhils stored
 * (no robust estimate, the variant's decode_ms object, conv_bytes, a
 * decode_tok_s alone, no stability) read as the same figures. */
static void test_mrecord_spellings(void **state)
{
    (void)state;
    sh_mrecord a, b;
    sh_err err;
    sh_mrecord_init(&a);
    snprintf(a.device, sizeof a.device, "pi5");
    snprintf(a.kind, sizeof a.kind, "ssh");
    snprintf(a.genome_hash, sizeof a.genome_hash, "0123456789abcdef");
    a.settings_json = strdup("{\"gen\":4,\"prompt\":8,\"wtype\":\"q4_0\"}");
    a.rounds_json = strdup("[{\"decode_ms\":1.5}]");
    a.decode_ms = 1.25; a.decode_ms_low = 1.2; a.decode_ms_high = 1.3;
    a.decode_ms_median = 1.5; a.decode_ci_low = 1.4; a.decode_ci_high = 1.6;
    a.decode_tok_s = 660; a.prefill_tok_s = 4000; a.ttft_ms = 3.5;
    a.peak_rss_bytes = 1 << 20; a.weight_bytes = 4096; a.kv_bytes = 512; a.conv_state_bytes = 256;
    for (int k = 0; k < SH_SHARE_N; k++) { a.share_prefill[k] = 0.1 * k; a.share_decode[k] = 0.05 * k; }
    a.reps = 9; a.invocations = 3; a.decode_samples = 36; a.quiet_reps = 7; a.disturbed_reps = 2;
    a.busy_reps = 1; a.throttled_reps = 1; a.rounds = 2; a.converged = true; a.board_state_read = true;
    a.tolerance = 0.02; a.busy_wait = 0.05;
    a.decode_ms_normalized = 1.1; a.decode_ms_normalized_low = 1.0; a.decode_ms_normalized_high = 1.2;
    a.reference_anchor_ms = 0.3;
    snprintf(a.stability, sizeof a.stability, "disturbed");
    snprintf(a.reason, sizeof a.reason, "2 of 9 repetitions disturbed");
    char *text = sh_mrecord_json(&a);
    assert_non_null(text);
    assert_int_equal(sh_mrecord_from_json(text, &b, &err), 0);
    assert_string_equal(b.device, "pi5");
    assert_string_equal(b.kind, "ssh");
    assert_string_equal(b.genome_hash, a.genome_hash);
    assert_string_equal(b.settings_json, a.settings_json);
    assert_string_equal(b.rounds_json, a.rounds_json);
#define SAME(f) assert_true(a.f == b.f)
    SAME(decode_ms); SAME(decode_ms_low); SAME(decode_ms_high); SAME(decode_ms_median); SAME(decode_ci_low);
    SAME(decode_ci_high); SAME(decode_tok_s); SAME(prefill_tok_s); SAME(ttft_ms); SAME(peak_rss_bytes);
    SAME(weight_bytes); SAME(kv_bytes); SAME(conv_state_bytes); SAME(tolerance); SAME(busy_wait);
    SAME(decode_ms_normalized); SAME(decode_ms_normalized_low); SAME(decode_ms_normalized_high);
    SAME(reference_anchor_ms);
#undef SAME
    assert_true(sh_mrecord_decode_ms_normalized(&b) == 1.1);
    for (int k = 0; k < SH_SHARE_N; k++) assert_true(b.share_decode[k] == a.share_decode[k]);
    assert_int_equal(b.reps, 9);
    assert_int_equal(b.quiet_reps, 7);
    assert_int_equal(b.rounds, 2);
    assert_true(b.converged && b.board_state_read);
    assert_string_equal(b.stability, "disturbed");
    assert_string_equal(b.reason, a.reason);
    assert_null(b.reference_json);
    char *again = sh_mrecord_json(&b);
    assert_string_equal(again, text);     /* writer and reader agree on every key */
    free(again);
    free(text);
    sh_mrecord_free(&b);
    sh_mrecord_free(&a);

    /* a row stored before the robust estimate: the median and its CI stand in */
    assert_int_equal(sh_mrecord_from_json("{\"decode_ms_median\":2.5,\"decode_ci_low\":2.4,\"decode_ci_high\":2.7,"
                                          "\"conv_bytes\":128,\"converged\":false}", &b, &err), 0);
    assert_true(b.decode_ms == 2.5 && b.decode_ms_low == 2.4 && b.decode_ms_high == 2.7);
    assert_true(b.conv_state_bytes == 128);
    assert_true(isnan(b.peak_rss_bytes));
    assert_string_equal(b.stability, "unstable");
    assert_non_null(strstr(b.reason, "stored before stability checks"));
    assert_true(sh_mrecord_decode_ms(&b) == 2.5);
    assert_true(isnan(sh_mrecord_decode_ms_normalized(&b)));   /* no reference: no normalized figure */
    sh_mrecord_free(&b);
    /* the variant's own shape, and a throughput alone */
    assert_int_equal(sh_mrecord_from_json("{\"decode_ms\":{\"median\":3.0,\"samples\":[3.0]},\"prefill_tok_s\":1000}",
                                          &b, &err), 0);
    assert_true(b.decode_ms == 3.0);
    assert_true(sh_mrecord_prefill_ms(&b, 8) == 8.0);
    assert_string_equal(b.stability, "");
    sh_mrecord_free(&b);
    assert_int_equal(sh_mrecord_from_json("{\"decode_tok_s\":500}", &b, &err), 0);
    assert_true(b.decode_ms == 2.0);
    sh_mrecord_free(&b);
    assert_int_equal(sh_mrecord_from_json("[1]", &b, &err), -1);
    assert_non_null(strstr(err.msg, "not a JSON object"));
}

/* A store written by an older starhil (tests/fixtures/store-b3f6c4c: a real
 * search on this machine's local device, dumped) opens read-only and every
 * text rendering of its run is the same, byte for byte, as that version wrote. */
static void test_report_old_database(void **state)
{
    (void)state;
    char db[512], fix[512];
    path_in(db, sizeof db, "old-b3f6c4c.db");
    snprintf(fix, sizeof fix, "%s/tests/fixtures/store-b3f6c4c/runs.sql", root_dir());
    tsql_load(db, fix);
    assert_int_equal(chmod(db, 0444), 0);   /* a reader must not need to write */
    const char *formats[] = {"json", "csv", "md"};
    for (int i = 0; i < 3; i++) {
        sh_proc_result r;
        assert_int_equal(run_cli(&r, "--db", db, "report", "1", "--format", formats[i], "-o", "-", NULL), 0);
        snprintf(fix, sizeof fix, "%s/tests/fixtures/store-b3f6c4c/report.%s", root_dir(), formats[i]);
        char *want = read_file(fix, NULL);
        assert_non_null(want);
        assert_non_null(r.out);
        if (strcmp(r.out, want) != 0) fail_msg("report --format %s of the old store differs from %s", formats[i], fix);
        free(want);
        sh_proc_result_free(&r);
    }
}

static void test_report_profiles(void **state)
{
    (void)state;
    sh_proc_result r;
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", "--devices", "fixture-box,fixture-pi",
                             "--format", "json", NULL), 0);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    json_t *rows = json_object_get(j, "rows");
    assert_int_equal(json_array_size(rows), 3);
    json_t *conv = json_object_get(json_object_get(json_array_get(rows, 0), "devices"), "fixture-pi");
    assert_true(json_real_value(json_object_get(conv, "latency_us")) == 360.0);
    json_t *sw = json_object_get(json_object_get(json_array_get(rows, 2), "devices"), "fixture-pi");
    assert_true(json_is_null(json_object_get(sw, "latency_us")));    /* pi has no swiglu row */
    json_decref(j);
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", "--devices", "fixture-box,fixture-pi",
                             "--format", "md", NULL), 0);
    assert_non_null(strstr(r.out, "(x3.00)"));
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", "--devices", "fixture-box,nobody", NULL), 1);
    assert_non_null(strstr(r.err, "nobody"));
    sh_proc_result_free(&r);
}

/* ---- the HTML page in a real browser ------------------------------------------------------ */

/* Loads `html` in headless Chromium and returns the DOM after scripts ran.
 * Console messages go to stderr (--enable-logging=stderr): with `clean`, any
 * "Uncaught" error there fails the test; otherwise one is required. */
static char *chromium_dom_ex(const char *html, const char *screenshot, bool clean, int width)
{
    char profile[512], url[600], shot[600];
    path_in(profile, sizeof profile, "chromium-profile");
    snprintf(url, sizeof url, "file://%s", html);
    char udd[600];
    snprintf(udd, sizeof udd, "--user-data-dir=%s", profile);
    const char *base[] = {"chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                          "--no-first-run", "--disable-background-networking", "--disable-component-update",
                          "--disable-sync", "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0", udd};
    char *argv[20], size[64];
    int n = 0;
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) argv[n++] = (char *)base[i];
    snprintf(size, sizeof size, "--window-size=%d,%d", width, screenshot ? 1400 : 1800);
    argv[n++] = size;
    if (screenshot) {
        snprintf(shot, sizeof shot, "--screenshot=%s", screenshot);
        argv[n++] = shot;
        argv[n++] = "--hide-scrollbars";
    } else {
        argv[n++] = "--virtual-time-budget=5000";
        argv[n++] = "--dump-dom";
    }
    argv[n++] = url;
    argv[n] = NULL;
    sh_proc_opts o = {.timeout_s = 90, .max_out = 64u << 20};
    sh_proc_result r;
    sh_err err = {{0}};
    if (sh_proc_run(argv, &o, &r, &err) != 0) fail_msg("chromium: %s", err.msg);
    if (!(r.exited && r.exit_code == 0)) fail_msg("chromium failed (exit %d, signal %d): %.2000s",
                                                  r.exit_code, r.signal, r.err);
    bool uncaught = r.err && strstr(r.err, "Uncaught");
    if (clean && uncaught) fail_msg("console errors: %.2000s", strstr(r.err, "Uncaught"));
    if (!clean && !screenshot && !uncaught) fail_msg("expected a console error, stderr: %.2000s", r.err);
    char *out = r.out;
    r.out = NULL;
    sh_proc_result_free(&r);
    return out;
}

static char *chromium_dom(const char *html, const char *screenshot)
{
    return chromium_dom_ex(html, screenshot, true, 1400);
}

static int attr_int(const char *dom, const char *attr)
{
    const char *p = strstr(dom, attr);
    if (!p) return -1;
    p += strlen(attr);
    if (*p++ != '=' || *p++ != '"') return -1;
    return atoi(p);
}

/* The page drawn at `width` px: no script error, drawn, and no plot label
 * outside its SVG (the page's own check, body[data-clipped]). */
static char *chromium_dom_checked(const char *html, int width)
{
    char *dom = chromium_dom_ex(html, NULL, true, width);
    assert_int_equal(attr_int(dom, "data-drawn"), 1);
    if (strstr(dom, "data-errors=\"")) fail_msg("script errors in the page at %d px: %.2000s", width,
                                               strstr(dom, "id=\"errors\""));
    if (attr_int(dom, "data-clipped") != 0)
        fail_msg("clipped plot labels at %d px: %.2000s", width,
                 strstr(dom, "id=\"clip-report\"") ? strstr(dom, "id=\"clip-report\"") : dom);
    return dom;
}


static void test_report_in_browser(void **state)
{
    (void)state;
    if (access("/usr/bin/chromium", X_OK) != 0) fail_msg("/usr/bin/chromium missing: run make deps");
    sh_proc_result r;
    char id[32], html[512];
    snprintf(id, sizeof id, "%lld", (long long)fixture_run);
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", id, "-o", "browser.html", NULL), 0);
    sh_proc_result_free(&r);
    path_in(html, sizeof html, "browser.html");
    /* the page must be whole at a wide and a narrow window */
    static const int widths[] = {1400, 800};
    char *dom = NULL;
    for (int w = 0; w < 2; w++) {
        dom = chromium_dom_checked(html, widths[w]);
        /* 3 plots x (3 front + 3 dominated members + 2 presets), drawn by Observable Plot */
        assert_true(attr_int(dom, "data-labels-checked") > 3 * 8);   /* ticks and axis labels were checked */
        assert_int_equal(attr_int(dom, "data-points"), 3 * (N_FIX + 2));
        assert_int_equal(attr_int(dom, "data-front-dots"), 3 * 3);
        assert_int_equal(attr_int(dom, "data-dominated-dots"), 3 * 3);
        assert_int_equal(attr_int(dom, "data-preset-dots"), 3 * 2);
        assert_int_equal(attr_int(dom, "data-hv-dots"), 3);
        assert_true(attr_int(dom, "data-errbars") >= 3);             /* the measured members' intervals */
        assert_true(attr_int(dom, "data-unstable") >= 3);            /* the member measured unstable, on every plot */
        assert_int_equal(attr_int(dom, "data-genome-overflow"), 0);  /* genome text within the window */
        if (w == 0) { free(dom); dom = NULL; }
    }
    assert_non_null(strstr(dom, "id=\"front-table\""));
    /* the genome text in a full-width row under each front member (no side scrolling) */
    assert_int_equal(count_substr(dom, "<td class=\"genome\" colspan=\"16\"><div class=\"gtext\">d=256 v=1024"), 3);
    assert_non_null(strstr(dom, "Fixture CPU &lt;script&gt;"));    /* topology shown, escaped */
    assert_non_null(strstr(dom, "L2 unified 1 MiB x 2"));          /* caches grouped as the machine has them */
    assert_null(strstr(dom, "unknown GHz"));                       /* unknown frequency left out */
    assert_non_null(strstr(dom, "4 cores;"));
    assert_non_null(strstr(dom, "data-chosen=\""));                 /* the latency budget picked a genome */
    assert_null(strstr(dom, "data-chosen=\"\""));
    free(dom);

    /* latency intervals and disturbed measurements, when the data has them, are
     * drawn as error bars and rings (the same page with the fields added) */
    char *page = read_file(html, NULL);
    assert_non_null(page);
    /* every point carries these keys: each is given a value and the original is
     * kept under another name, so the injected one is the one the page reads */
    static const char *const from[] = {"\"decode_ms_low\":", "\"decode_ms_high\":", "\"disturbed\":"};
    static const char *const to[] = {"\"decode_ms_low\":1.5,\"x_low\":", "\"decode_ms_high\":16,\"x_high\":",
                                      "\"disturbed\":true,\"x_disturbed\":"};
    char *with = page;
    for (int k = 0; k < 3; k++) {
        size_t n_from = (size_t)count_substr(with, from[k]);
        assert_int_equal(n_from, N_FIX + 2);
        char *next = malloc(strlen(with) + n_from * strlen(to[k]) + 1), *w = next;
        assert_non_null(next);
        for (const char *p = with, *q; ; p = q + strlen(from[k])) {
            q = strstr(p, from[k]);
            if (!q) { strcpy(w, p); break; }
            memcpy(w, p, (size_t)(q - p));
            w += q - p;
            w = stpcpy(w, to[k]);
        }
        if (with != page) free(with);
        with = next;
    }
    char ci_html[512];
    path_in(ci_html, sizeof ci_html, "intervals.html");
    FILE *cf = fopen(ci_html, "w");
    assert_non_null(cf);
    fputs(with, cf);
    fclose(cf);
    free(with);
    free(page);
    dom = chromium_dom_checked(ci_html, 1400);
    assert_int_equal(attr_int(dom, "data-errbars"), N_FIX + 2);        /* on the decode latency plot */
    assert_int_equal(attr_int(dom, "data-unstable"), 3 * (N_FIX + 2)); /* ringed on every plot */
    free(dom);

    /* the screenshot is kept for people to look at: build/test-artifacts */
    char dir[600], shot[700];
    snprintf(dir, sizeof dir, "%s/build/test-artifacts", root_dir());
    mkdir(dir, 0755);
    snprintf(shot, sizeof shot, "%s/report.png", dir);
    unlink(shot);
    free(chromium_dom(html, shot));
    struct stat st;
    assert_int_equal(stat(shot, &st), 0);
    assert_true(st.st_size > 10000);
    /* docs/report.png (the README's picture) only on request, so a test run
     * leaves the work tree unchanged: SH_UPDATE_DOCS=1 make test T=reports */
    if (getenv("SH_UPDATE_DOCS")) {
        char docs[700];
        snprintf(docs, sizeof docs, "%s/docs/report.png", root_dir());
        char *png = read_file(shot, NULL);
        FILE *pf = fopen(docs, "wb");
        if (png && pf) fwrite(png, 1, (size_t)st.st_size, pf);
        if (pf) fclose(pf);
        free(png);
    }

    /* profile comparison page */
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", "--devices", "fixture-box,fixture-pi",
                             "-o", "profiles.html", NULL), 0);
    sh_proc_result_free(&r);
    path_in(html, sizeof html, "profiles.html");
    dom = chromium_dom_checked(html, 1400);
    assert_int_equal(attr_int(dom, "data-points"), 3 + 2);
    assert_non_null(strstr(dom, "id=\"profile-table\""));
    free(dom);
    snprintf(shot, sizeof shot, "%s/profiles.png", dir);
    free(chromium_dom(html, shot));
    assert_int_equal(stat(shot, &st), 0);

    /* a run with nothing measured yet still draws, and says why the plots are empty */
    char empty_id[32];
    snprintf(empty_id, sizeof empty_id, "%lld", (long long)empty_run);
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", empty_id, "-o", "empty.html", NULL), 0);
    sh_proc_result_free(&r);
    path_in(html, sizeof html, "empty.html");
    dom = chromium_dom_checked(html, 800);
    assert_int_equal(attr_int(dom, "data-points"), 0);
    assert_non_null(strstr(dom, "has been measured on a device yet"));
    assert_non_null(strstr(dom, "No generation metrics"));
    free(dom);

    /* the search's closed-form estimates are plotted when nothing was measured */
    snprintf(empty_id, sizeof empty_id, "%lld", (long long)analytic_run);
    assert_int_equal(run_cli(&r, "--db", fixture_db, "report", empty_id, "-o", "analytic.html", NULL), 0);
    sh_proc_result_free(&r);
    path_in(html, sizeof html, "analytic.html");
    dom = chromium_dom_checked(html, 800);
    assert_int_equal(attr_int(dom, "data-points"), 3 * 3);
    assert_int_equal(attr_int(dom, "data-front-dots"), 3 * 2);
    free(dom);

    /* a page whose script fails shows it (the check above can fail) */
    path_in(html, sizeof html, "broken.html");
    FILE *f = fopen(html, "w");
    assert_non_null(f);
    fputs("<!DOCTYPE html><html><body data-drawn=\"0\"><div id=\"errors\"></div>", f);
    fputs("<script>window.onerror=function(m){document.body.setAttribute('data-errors','1');};</script>", f);
    fputs("<script>undefinedFunction();</script></body></html>", f);
    fclose(f);
    dom = chromium_dom_ex(html, NULL, false, 1400);
    assert_non_null(strstr(dom, "data-errors=\"1\""));
    free(dom);
}

/* The inline assets are generated from reports/assets: keep them in sync. */
static void test_assets_current(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/reports/assets/report.js", root_dir());
    char *js = read_file(path, NULL);
    assert_non_null(js);
    if (strcmp(js, SH_REPORT_JS) != 0) fail_msg("reports/report_assets.h is stale: run python3 reports/assets/embed.py");
    free(js);
    snprintf(path, sizeof path, "%s/reports/assets/report.css", root_dir());
    char *css = read_file(path, NULL);
    assert_non_null(css);
    assert_string_equal(css, SH_REPORT_CSS);
    free(css);
    /* the vendored plotting library is inlined whole, with its licence */
    static const char *vendor[] = {"plot.umd.min.js", "d3.min.js", "LICENSE.plot", "LICENSE.d3"};
    for (size_t i = 0; i < sizeof vendor / sizeof vendor[0]; i++) {
        snprintf(path, sizeof path, "%s/reports/assets/vendor/%s", root_dir(), vendor[i]);
        char *v = read_file(path, NULL);
        assert_non_null(v);
        size_t n = strlen(v);
        while (n && v[n - 1] == '\n') v[--n] = '\0';
        char *first_line_end = strchr(v, '\n');
        if (first_line_end && strncmp(vendor[i], "LICENSE", 7) == 0) *first_line_end = '\0';   /* "Copyright ..." */
        if (!strstr(SH_REPORT_VENDOR_JS, v)) fail_msg("reports/report_assets.h lacks vendor/%s: run embed.py", vendor[i]);
        free(v);
    }
}

/* ---- compare ------------------------------------------------------------------------------ */

/* Two tiny genomes measured for real on the local device, interleaved: the
 * run order alternates (A B, B A, A B), each ratio is paired per round and
 * comes with its interval, and table and summary sentence use one estimator. */
static void test_compare_local(void **state)
{
    (void)state;
    const char *g1 = "d=64 v=256 hd=16 theta=10000 eps=1e-05 ctx=512 tie=1 | conv(3)/swiglu(96)*3 gqa(4,2,qk)/swiglu(96)";
    const char *g2 = "d=64 v=256 hd=16 theta=10000 eps=1e-05 ctx=512 tie=1 | gqa(4,2,qk)/swiglu(96)*4";
    sh_proc_result r;
    int rc = run_cli(&r, "--db", "compare.db", "compare", "--device", "local", g1, g2, "--prompt", "16",
                     "--gen", "8", "--rounds", "3", "--reps", "2", "--wtype", "f32", "--between-run-sd", "0",
                     "--max-others", "64", "--json",
                     NULL);
    if (rc != 0) fail_msg("compare failed (%d): %s", rc, r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    if (!j) fail_msg("compare --json printed: %.500s", r.out);
    sh_proc_result_free(&r);
    assert_string_equal(json_string_value(json_object_get(j, "device")), "local");
    assert_string_equal(json_string_value(json_object_get(j, "decode_estimator")), SH_DECODE_ESTIMATOR);
    json_t *lim = json_object_get(j, "disturbance_limits");   /* given, and measure.h's defaults */
    assert_true(json_number_value(json_object_get(lim, "others_max")) == 64);
    assert_true(json_number_value(json_object_get(lim, "busy_wait")) == 0.05);
    json_t *ord = json_object_get(j, "run_order");
    const int want[6] = {0, 1, 1, 0, 0, 1};
    assert_int_equal(json_array_size(ord), 6);
    for (int k = 0; k < 6; k++) assert_int_equal(json_integer_value(json_array_get(ord, k)), want[k]);
    json_t *res = json_object_get(j, "results");
    assert_int_equal(json_array_size(res), 2);
    json_t *a = json_array_get(res, 0), *b = json_array_get(res, 1);
    static sh_genome g;
    parse_genome(g2, &g);
    char hex[17];
    sh_hash_hex(sh_genome_hash(&g), hex);
    assert_string_equal(json_string_value(json_object_get(b, "hash")), hex);
    double da = json_number_value(json_object_get(a, "decode_tok_s"));
    double db_ = json_number_value(json_object_get(b, "decode_tok_s"));
    assert_true(da > 0 && db_ > 0);
    /* tok/s is the same estimator as decode_ms */
    assert_true(fabs(da * json_number_value(json_object_get(a, "decode_ms")) - 1000.0) < 1e-6);
    json_t *ra = json_object_get(a, "decode_speed_vs_first"), *rb = json_object_get(b, "decode_speed_vs_first");
    assert_true(json_number_value(json_object_get(ra, "ratio")) == 1.0);
    assert_int_equal(json_integer_value(json_object_get(rb, "rounds")), 3);
    /* 3 rounds: the interval is their range, which covers the true ratio 75% of the time */
    assert_true(fabs(json_number_value(json_object_get(rb, "ci_coverage")) - 0.75) < 1e-9);
    double x = json_number_value(json_object_get(rb, "ratio"));
    double lo = json_number_value(json_object_get(rb, "ci_low")), hi = json_number_value(json_object_get(rb, "ci_high"));
    assert_true(x > 0 && lo <= x && x <= hi);
    /* computed as documented: the median of the per-round ratios, and with 3
     * rounds their range */
    json_t *per = json_object_get(rb, "round_ratios");
    assert_int_equal(json_array_size(per), 3);
    assert_int_equal(json_array_size(json_object_get(rb, "round_start_s")), 3);
    double pr[3];
    for (int k = 0; k < 3; k++) pr[k] = json_number_value(json_array_get(per, k));
    double pmin = fmin(pr[0], fmin(pr[1], pr[2])), pmax = fmax(pr[0], fmax(pr[1], pr[2]));
    assert_true(fabs(x - (pr[0] + pr[1] + pr[2] - pmin - pmax)) < 1e-12);
    assert_true(lo == pmin && hi == pmax);
    assert_true(json_number_value(json_array_get(json_object_get(rb, "round_start_s"), 2)) >
                json_number_value(json_array_get(json_object_get(rb, "round_start_s"), 0)));
    assert_true(json_number_value(json_object_get(j, "ci_between_run_sd")) == 0);
    assert_string_equal(json_string_value(json_object_get(j, "ci_between_run_source")), "none");
    assert_true(json_is_string(json_object_get(b, "stability")));
    assert_true(json_number_value(json_object_get(b, "peak_rss_bytes")) > 0);
    json_decref(j);

    /* the table names its estimator; the summary sentence carries an interval */
    rc = run_cli(&r, "--db", "compare.db", "compare", "--device", "local", g1, g2, "--prompt", "16",
                 "--gen", "8", "--rounds", "2", "--reps", "1", "--wtype", "f32", "--between-run-sd", "0.01", NULL);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(r.out, "decodes"));
    assert_non_null(strstr(r.out, SH_DECODE_ESTIMATOR));
    assert_non_null(strstr(r.out, "include drift between runs: sd 1.00% of the ratio (--between-run-sd)"));
    /* 2 rounds: the sentence says how much its interval covers, and why */
    assert_non_null(strstr(r.out, "(50% CI"));
    assert_non_null(strstr(r.out, "covers the true ratio only 50% of the time; 6 rounds or more give 95%"));
    sh_proc_result_free(&r);

    /* by default the between-run part is learned from the device's earlier
     * runs kept in the store: the two above differ in --reps, so no comparison
     * has been repeated yet and the prior (1%) holds; after one repeat it is
     * learned, as sh_between_run_sd computes from the stored rows */
    for (int k = 0; k < 2; k++) {
        rc = run_cli(&r, "--db", "compare.db", "compare", "--device", "local", g1, g2, "--prompt", "16",
                     "--gen", "8", "--rounds", "2", "--reps", "1", "--wtype", "f32", "--json", NULL);
        if (rc != 0) fail_msg("compare failed (%d): %s", rc, r.err);
        j = json_loads(r.out, 0, NULL);
        if (!j) fail_msg("compare --json printed: %.500s", r.out);
        sh_proc_result_free(&r);
        assert_int_equal(json_integer_value(json_object_get(j, "earlier_runs_on_device")), 2 + k);
        assert_string_equal(json_string_value(json_object_get(j, "ci_between_run_source")), k ? "learned" : "prior");
        assert_int_equal(json_integer_value(json_object_get(j, "ci_between_run_dof")), k);
        double sd = json_number_value(json_object_get(j, "ci_between_run_sd"));
        if (!k) assert_true(sd == 0.01);
        else {
            sh_db *db = NULL;
            sh_err err = {{0}};
            char dbp[512];
            path_in(dbp, sizeof dbp, "compare.db");
            if (sh_db_open(dbp, SH_DB_READONLY, &db, &err) != 0) fail_msg("%s", err.msg);
            sh_comparison_rec *c = NULL;
            int n = 0;
            if (sh_db_list_comparisons(db, "local", "decode", &c, &n, &err) != 0) fail_msg("%s", err.msg);
            assert_int_equal(n, 4);   /* this run's row came after it learned from the first three */
            const char *key[3];
            double x[3], se[3];
            for (int i = 0; i < 3; i++) { key[i] = c[i].key; x[i] = c[i].log_ratio; se[i] = c[i].se; }
            assert_string_equal(key[1], key[2]);
            assert_true(strcmp(key[0], key[1]) != 0);
            int dof = -1;
            assert_true(fabs(sh_between_run_sd(key, x, se, 3, 0.01, 2, &dof) - sd) < 1e-12);
            assert_int_equal(dof, 1);
            sh_comparison_recs_free(c, n);
            sh_db_close(db);
        }
        /* widened beyond the range of its 2 rounds */
        json_t *rb2 = json_object_get(json_array_get(json_object_get(j, "results"), 1), "decode_speed_vs_first");
        json_t *per2 = json_object_get(rb2, "round_ratios");
        double m2 = fmin(json_number_value(json_array_get(per2, 0)), json_number_value(json_array_get(per2, 1)));
        assert_true(json_number_value(json_object_get(rb2, "ci_low")) < m2);
        json_decref(j);
    }

    /* GGUF files (lfm2 and, all attention with QK-norm, qwen3): measured with
     * their own weights, pushed like `measure FILE.gguf`, named by file */
    char fa[512], fb[512];
    path_in(fa, sizeof fa, "cmp_lfm2.gguf");
    path_in(fb, sizeof fb, "cmp_qwen3.gguf");
    const char *gs[2] = {g1, g2}, *fs[2] = {fa, fb};
    for (int i = 0; i < 2; i++) {
        static sh_genome gg;
        parse_genome(gs[i], &gg);
        sh_gguf_opts o = {.wtype = SH_DTYPE_F32, .seed = 4};
        sh_err err = {{0}};
        if (sh_gguf_write_genome(&gg, fs[i], &o, &err) != 0) fail_msg("%s", err.msg);
    }
    rc = run_cli(&r, "--db", "compare.db", "compare", "--device", "local", fa, fb, "--prompt", "16", "--gen", "4",
                 "--rounds", "2", "--reps", "1", "--json", NULL);
    if (rc != 0) fail_msg("compare of GGUF files failed (%d): %s", rc, r.err);
    j = json_loads(r.out, 0, NULL);
    if (!j) fail_msg("compare --json printed: %.500s", r.out);
    sh_proc_result_free(&r);
    res = json_object_get(j, "results");
    assert_int_equal(json_array_size(res), 2);
    for (int i = 0; i < 2; i++) {
        json_t *x = json_array_get(res, (size_t)i);
        parse_genome(gs[i], &g);
        sh_hash_hex(sh_genome_hash(&g), hex);
        assert_string_equal(json_string_value(json_object_get(x, "hash")), hex);
        assert_string_equal(json_string_value(json_object_get(x, "gguf")), fs[i]);
        assert_string_equal(json_string_value(json_object_get(x, "genome")), i ? "cmp_qwen3.gguf" : "cmp_lfm2.gguf");
        struct stat st;
        assert_int_equal(stat(fs[i], &st), 0);
        double wb = json_number_value(json_object_get(x, "weight_bytes"));   /* the file's f32 weights */
        if (!(wb > 0.9 * (double)st.st_size && wb <= (double)st.st_size))
            fail_msg("compare %s: %g weight bytes of a %lld-byte file", fs[i], wb, (long long)st.st_size);
    }
    json_decref(j);
    assert_int_equal(run_cli(&r, "--db", "compare.db", "compare", "--device", "local", fa, fb, "--wtype", "q8_0", NULL), 2);
    assert_non_null(strstr(r.err, "--wtype does not apply"));
    sh_proc_result_free(&r);

    assert_int_equal(run_cli(&r, "--db", "compare.db", "compare", "--device", "local", g1, NULL), 2);
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "--db", "compare.db", "compare", "--device", "local", g1, g2, "--rounds", "1", NULL), 2);
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "--db", "compare.db", "compare", "--device", "nowhere", g1, g2, NULL), 1);
    assert_non_null(strstr(r.err, "nowhere"));
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "compare", "--help", NULL), 0);
    sh_proc_result_free(&r);
    assert_int_equal(run_cli(&r, "--db", "compare.db", "compare", "--device", "local", g1, g2,
                             "--between-run-sd", "-0.1", NULL), 2);
    sh_proc_result_free(&r);

    /* the between-run component: each side's log half-width h becomes
     * sqrt(h^2 + (1.96 sd)^2); sd 0 leaves the interval as it is */
    sh_ratio_ci w = {.est = 1.5, .lo = 1.5 * exp(-0.005), .hi = 1.5 * exp(0.01), .n = 6};
    sh_compare_widen(&w, 0);
    assert_true(w.lo == 1.5 * exp(-0.005) && w.hi == 1.5 * exp(0.01));
    sh_compare_widen(&w, 0.01);
    double z = 1.959964 * 0.01;
    assert_true(fabs(log(1.5 / w.lo) - sqrt(0.005 * 0.005 + z * z)) < 1e-12);
    assert_true(fabs(log(w.hi / 1.5) - sqrt(0.01 * 0.01 + z * z)) < 1e-12);
    assert_true(w.est == 1.5);
}

/* The between-run sd of compare's ratios, on numbers worked by hand: groups
 * pool their within-group variance (singletons add nothing), the rounds'
 * own se^2 is taken off, and the prior weighs in with its degrees of freedom. */
static void test_between_run_sd(void **state)
{
    (void)state;
    const char *key[6] = {"a", "b", "a", "c", "a", "b"};
    double x[6] = {0.00, 0.10, 0.02, 0.50, -0.02, 0.14};
    double se0[6] = {0}, se[6] = {0.01, 0.01, 0.01, 0.01, 0.01, 0.01};
    int dof = -1;
    /* a: mean 0, ss 8e-4; b: mean 0.12, ss 8e-4; c alone: dof 2 + 1 = 3, est^2 = 1.6e-3 / 3 */
    double est2 = 1.6e-3 / 3;
    assert_true(fabs(sh_between_run_sd(key, x, se0, 6, 0.01, 0, &dof) - sqrt(est2)) < 1e-12);
    assert_int_equal(dof, 3);
    /* with the rounds' se (1e-4 each over the 5 grouped runs) taken off */
    assert_true(fabs(sh_between_run_sd(key, x, se, 6, 0.01, 0, &dof) - sqrt(est2 - 1e-4)) < 1e-12);
    /* the prior of 2 dof: (2 * 1e-4 + 3 * est^2) / 5 */
    assert_true(fabs(sh_between_run_sd(key, x, se0, 6, 0.01, 2, &dof) - sqrt((2e-4 + 3 * est2) / 5)) < 1e-12);
    /* no repeated comparison: the prior alone */
    assert_true(sh_between_run_sd(key + 3, x + 3, se0, 1, 0.01, 2, &dof) == 0.01);
    assert_int_equal(dof, 0);
    /* rounds noisier than the runs' spread: the estimate is 0, not negative */
    double big[6] = {0.1, 0.1, 0.1, 0.1, 0.1, 0.1};
    assert_true(sh_between_run_sd(key, x, big, 6, 0.01, 0, &dof) == 0);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/starhil-test-reports-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    path_in(fixture_db, sizeof fixture_db, "fixture.db");
    build_fixture(fixture_db);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *argv[] = {"rm", "-rf", tmpdir, NULL};
    sh_proc_opts o = {.timeout_s = 60};
    sh_proc_result r;
    sh_err err = {{0}};
    if (sh_proc_run(argv, &o, &r, &err) == 0) sh_proc_result_free(&r);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ff_auto_adjust),
        cmocka_unit_test(test_hf_roundtrip_every_lfm2_preset),
        cmocka_unit_test(test_hf_roundtrip_shapes),
        cmocka_unit_test(test_hf_export_fields),
        cmocka_unit_test(test_hf_import_legacy),
        cmocka_unit_test(test_hf_export_refusals),
        cmocka_unit_test(test_hf_import_refusals),
        cmocka_unit_test(test_cli_export_import),
        cmocka_unit_test(test_fp16_and_blocks),
        cmocka_unit_test(test_gguf_layout),
        cmocka_unit_test(test_gguf_tokenizer_from),
        cmocka_unit_test(test_genome_import_gguf),
        cmocka_unit_test(test_gguf_dense_types),
        cmocka_unit_test(test_gguf_sizes_match_analytics),
        cmocka_unit_test(test_gguf_runtime_roundtrip),
        cmocka_unit_test(test_report_data),
        cmocka_unit_test(test_report_cli_formats),
        cmocka_unit_test(test_report_old_database),
        cmocka_unit_test(test_mrecord_spellings),
        cmocka_unit_test(test_report_profiles),
        cmocka_unit_test(test_report_in_browser),
        cmocka_unit_test(test_assets_current),
        cmocka_unit_test(test_compare_local),
        cmocka_unit_test(test_between_run_sd),
    };
    if (getenv("SH_TEST_FILTER")) cmocka_set_test_filter(getenv("SH_TEST_FILTER"));   /* e.g. "*compare*" */
    return cmocka_run_group_tests(tests, setup, teardown);
}
