/* test_cli.c - the command-line surface shared by every command (util/opt.h):
 * one help layout whose usage line lists every option of the option list,
 * errors that name the option, and --json where a script reads the output.
 * Runs the real (sanitized) starhil binary. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "util/proc.h"

static char tmpdir[64];

static const char *bin(void)
{
    const char *b = getenv("STARHIL_BIN");
    return b ? b : "./build/san/starhil";
}

/* Runs starhil with the given arguments (NULL-terminated) in tmpdir; exit code. */
static int run(sh_proc_result *r, ...)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)bin();
    argv[n++] = "--db";
    argv[n++] = "cli.db";
    va_list ap;
    va_start(ap, r);
    for (char *a; n < 31 && (a = va_arg(ap, char *));) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    sh_proc_opts o = {.timeout_s = 120, .cwd = tmpdir};
    sh_err err = {{0}};
    if (sh_proc_run(argv, &o, r, &err) != 0) fail_msg("cannot run starhil: %s", err.msg);
    return r->exited ? r->exit_code : 128 + r->signal;
}

/* `CMD --help`: "usage: starhil CMD" first, then a description and "options:";
 * every option of the list is in the usage line(s) above the first blank line. */
static void check_help(const char *a1, const char *a2)
{
    sh_proc_result r;
    int rc = a2 ? run(&r, a1, a2, "--help", NULL) : run(&r, a1, "--help", NULL);
    char want[64];
    snprintf(want, sizeof want, "usage: starhil %s%s%s", a1, a2 ? " " : "", a2 ? a2 : "");
    if (rc != 0) fail_msg("%s --help: exit %d", want, rc);
    if (strncmp(r.out, want, strlen(want)) != 0) fail_msg("%s --help starts with: %.80s", want, r.out);
    char *usage_end = strstr(r.out, "\n\n");
    char *opts = strstr(r.out, "\noptions:\n");
    if (!usage_end || !opts) fail_msg("%s --help: no description or options section:\n%s", want, r.out);
    int listed = 0;
    for (char *line = opts + 10; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "  --", 4) != 0 && strncmp(line, "  -", 3) != 0) continue;
        char name[48], item[64];
        sscanf(line + 2, "%47[^ ,\n]", name);
        snprintf(item, sizeof item, "[%s", name);
        char *hit = strstr(r.out, item);
        if (!hit || hit > usage_end) fail_msg("%s: option %s is listed but not in the usage line:\n%s", want, name, r.out);
        listed++;
    }
    if (listed == 0) fail_msg("%s --help lists no option", want);
    sh_proc_result_free(&r);
}

static void test_help_layout(void **state)
{
    (void)state;
    static const char *const cmds[][2] = {
        {"search", NULL}, {"search", "resume"}, {"front", NULL}, {"report", NULL}, {"export", NULL},
        {"compare", NULL}, {"genome", "list"}, {"genome", "show"}, {"genome", "compare"}, {"genome", "validate"},
        {"genome", "hash"}, {"genome", "import"}, {"device", "add"}, {"device", "list"}, {"device", "probe"},
        {"device", "check"}, {"runs", "list"}, {"runs", "show"}, {"build", NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) check_help(cmds[i][0], cmds[i][1]);
}

static void expect_usage_error(const char *msg, const char *a1, const char *a2, const char *a3, const char *a4)
{
    sh_proc_result r;
    int rc = run(&r, a1, a2, a3, a4, NULL);
    if (rc != 2) fail_msg("%s %s %s: exit %d (want 2): %s", a1, a2, a3 ? a3 : "", rc, r.err);
    if (!strstr(r.err, msg)) fail_msg("want \"%s\" in: %s", msg, r.err);
    sh_proc_result_free(&r);
}

static void test_errors_name_the_option(void **state)
{
    (void)state;
    expect_usage_error("starhil genome show: --context needs a value", "genome", "show", "lfm2-350m", "--context");
    expect_usage_error("unknown option --foo", "genome", "show", "lfm2-350m", "--foo");
    expect_usage_error("starhil search: --budget needs a value", "search", "--evaluator", "analytic", "--budget");
    expect_usage_error("starhil search: unknown option --foo", "search", "--foo", NULL, NULL);
    expect_usage_error("--budget: expected an integer from 1 to", "search", "--budget", "x", NULL);
    expect_usage_error("starhil report: -o needs a value", "report", "1", "-o", NULL);
    expect_usage_error("starhil device add: --port: expected an integer from 1 to 65535", "device", "add", "b",
                       "--port=0");
    expect_usage_error("starhil runs show: unknown option --bogus", "runs", "show", "1", "--bogus");
}

static json_t *json_of(sh_proc_result *r)
{
    json_error_t je;
    json_t *j = json_loads(r->out, 0, &je);
    if (!j) fail_msg("not JSON (%s): %s", je.text, r->out);
    return j;
}

static void test_json_outputs(void **state)
{
    (void)state;
    sh_proc_result r;
    /* validate: --json is an option, not a genome */
    assert_int_equal(run(&r, "genome", "validate", "lfm2-350m", "--json", NULL), 0);
    json_t *j = json_of(&r);
    assert_int_equal(json_array_size(j), 1);
    assert_true(json_is_true(json_object_get(json_array_get(j, 0), "ok")));
    const char *hash = json_string_value(json_object_get(json_array_get(j, 0), "hash"));
    assert_non_null(hash);
    char want_hash[17];
    snprintf(want_hash, sizeof want_hash, "%s", hash);
    json_decref(j);
    sh_proc_result_free(&r);
    assert_int_equal(run(&r, "genome", "validate", "lfm2-350m", "not-a-genome", "--json", NULL), 1);
    j = json_of(&r);
    assert_false(json_is_true(json_object_get(json_array_get(j, 1), "ok")));
    assert_non_null(json_string_value(json_object_get(json_array_get(j, 1), "error")));
    json_decref(j);
    sh_proc_result_free(&r);

    assert_int_equal(run(&r, "genome", "hash", "lfm2-350m", "--json", NULL), 0);
    j = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(j, "hash")), want_hash);
    assert_non_null(strstr(json_string_value(json_object_get(j, "text")), "d=1024"));
    json_decref(j);
    sh_proc_result_free(&r);

    assert_int_equal(run(&r, "export", "lfm2-350m", "--format", "hf", "-o", "c.json", "--json", NULL), 0);
    j = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "c.json");
    assert_string_equal(json_string_value(json_object_get(j, "genome")), want_hash);
    assert_true(json_integer_value(json_object_get(j, "bytes")) > 100);
    json_decref(j);
    sh_proc_result_free(&r);

    assert_int_equal(run(&r, "device", "add", "box", "--json", NULL), 0);
    j = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "box");
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "local");
    json_decref(j);
    sh_proc_result_free(&r);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/starhil-test-cli-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
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
        cmocka_unit_test(test_help_layout),
        cmocka_unit_test(test_errors_name_the_option),
        cmocka_unit_test(test_json_outputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
