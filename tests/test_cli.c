/* test_cli.c - the command-line surface shared by every command (util/opt.h):
 * every command and subcommand walked from `starhil --help`: one help layout
 * whose usage line lists every option of the option list, every listed option
 * known to the parser, errors that name the option, and --json where a script
 * reads the output.
 * Runs the real starhil binary (sanitized; the walk the release build, see walk_bin). */
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "tests/helpers/devices_util.h"
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

/* The walk below starts about 70 processes: it runs the release build that
 * `make test` builds next to the sanitized one (same sources, a third of the
 * start-up time), if there is one; the other tests run the sanitized binary. */
static const char *walk_bin(void)
{
    static char path[1024];
    const char *root = getenv("STARHIL_ROOT");
    if (root) {
        snprintf(path, sizeof path, "%s/starhil", root);
        if (access(path, X_OK) == 0) return path;
    }
    return bin();
}

/* Runs starhil (walk_bin) with argv (NULL-terminated, at most 120 entries) in tmpdir; exit code. */
static int run_v(sh_proc_result *r, char **args)
{
    char *argv[128];
    int n = 0;
    argv[n++] = (char *)walk_bin();
    argv[n++] = "--db";
    argv[n++] = "cli.db";
    for (int i = 0; args[i] && n < 127; i++) argv[n++] = args[i];
    argv[n] = NULL;
    sh_proc_opts o = {.timeout_s = 120, .cwd = tmpdir};
    sh_err err = {{0}};
    if (sh_proc_run(argv, &o, r, &err) != 0) fail_msg("cannot run starhil: %s", err.msg);
    return r->exited ? r->exit_code : 128 + r->signal;
}

/* One option of a command's list: its name and whether it takes a value. */
typedef struct listed_opt {
    char name[48];
    bool value;
} listed_opt;

/* Commands whose output is not for scripts to parse as JSON, with the reason. */
static const char *const NO_JSON[][2] = {
    {"report", "--format json writes JSON"},
    {"genome json", "its output is JSON"},
};

/* Walks one command (a2 NULL) or subcommand: `--help` exits 0 with
 * "usage: starhil CMD" generated from the option table (every option of the
 * list is in the usage line and every usage item in the list); then one run
 * with every listed option (value "1") followed by an unknown option must stop
 * at the unknown one, naming it, exit 2 (an option whose value "1" is out of
 * range is named by its own error instead, and the run repeats without it).
 * Unless exempt above, --json is one of the options. Returns the subcommands
 * a group's help lists (into subs), or those its usage names ("starhil CMD X"). */
static int walk(const char *a1, const char *a2, char subs[][32], int max_subs)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "%s%s%s", a1, a2 ? " " : "", a2 ? a2 : "");
    sh_proc_result r;
    char *hargs[] = {(char *)a1, a2 ? (char *)a2 : "--help", a2 ? "--help" : NULL, NULL};
    int rc = run_v(&r, hargs);
    char want[96];
    snprintf(want, sizeof want, "usage: starhil %s", cmd);
    if (rc != 0) fail_msg("%s --help: exit %d: %s", cmd, rc, r.err);
    if (strncmp(r.out, want, strlen(want)) != 0) fail_msg("%s --help starts with: %.80s", cmd, r.out);
    char *usage_end = strstr(r.out, "\n\n");
    if (!usage_end) fail_msg("%s --help: no description after the usage line:\n%s", cmd, r.out);
    int n_subs = 0;
    char *group = strstr(r.out, "\nsubcommands (");
    if (group) {   /* a group: "  NAME ..." lines after the heading */
        for (char *l = strchr(group + 1, '\n'); l && l[1]; l = strchr(l + 1, '\n'))
            if (l[1] == ' ' && l[2] == ' ' && l[3] != ' ' && n_subs < max_subs) sscanf(l + 3, "%31[a-z-]", subs[n_subs++]);
        if (n_subs == 0) fail_msg("%s: a group without subcommands:\n%s", cmd, r.out);
        sh_proc_result_free(&r);
        return n_subs;
    }
    /* further usage lines naming a subcommand: "       starhil CMD SUB ..." */
    char pre[80];
    snprintf(pre, sizeof pre, "\n       starhil %s ", cmd);
    for (char *l = strstr(r.out, pre); l && l < usage_end; l = strstr(l + 1, pre))
        if (islower((unsigned char)l[strlen(pre)]) && n_subs < max_subs) sscanf(l + strlen(pre), "%31[a-z-]", subs[n_subs++]);

    listed_opt opts[64];
    int n_opts = 0;
    char *list = strstr(r.out, "\noptions:\n");
    for (char *l = list ? list + 10 : NULL; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, "  -", 3) != 0) continue;
        if (n_opts == 64) fail_msg("%s: more than 64 options", cmd);
        listed_opt *o = &opts[n_opts++];
        int len = 0;
        sscanf(l + 2, "%47[^ ,\n]%n", o->name, &len);
        const char *p = l + 2 + len;
        if (!strncmp(p, ", -", 3)) p += 3 + strcspn(p + 3, " \n");   /* ", -q" alias */
        o->value = p[0] == ' ' && p[1] != ' ' && p[1] != '\n';
        char item[64];
        snprintf(item, sizeof item, "[%s", o->name);
        char *hit = strstr(r.out, item);
        if (!hit || hit > usage_end) fail_msg("%s: option %s is listed but not in the usage line:\n%s", cmd, o->name, r.out);
    }
    for (char *u = strstr(r.out, "[-"); u && u < usage_end; u = strstr(u + 1, "[-")) {
        char name[48], item[56];
        sscanf(u + 1, "%47[^] \n]", name);
        snprintf(item, sizeof item, "\n  %s", name);
        if (!list || !strstr(list, item)) fail_msg("%s: usage names %s, the option list does not:\n%s", cmd, name, r.out);
    }
    bool exempt = false, has_json = false;
    for (size_t i = 0; i < sizeof NO_JSON / sizeof NO_JSON[0]; i++) exempt |= !strcmp(cmd, NO_JSON[i][0]);
    for (int i = 0; i < n_opts; i++) has_json |= !strcmp(opts[i].name, "--json");
    if (!exempt && !has_json) fail_msg("%s has no --json", cmd);
    sh_proc_result_free(&r);

    /* every listed option is known to the parser; the unknown one is named */
    bool skip[64] = {false};
    for (int round = 0; round <= n_opts; round++) {
        char *args[140];
        int n = 0;
        args[n++] = (char *)a1;
        if (a2) args[n++] = (char *)a2;
        for (int i = 0; i < n_opts; i++) {
            if (skip[i]) continue;
            args[n++] = opts[i].name;
            if (opts[i].value) args[n++] = "1";
        }
        args[n++] = "--zz-no-such-option";
        args[n] = NULL;
        rc = run_v(&r, args);
        if (rc != 2) fail_msg("%s with every option and an unknown one: exit %d (want 2): %s", cmd, rc, r.err);
        if (strstr(r.err, "unknown option --zz-no-such-option (")) {
            char prefix[80];
            snprintf(prefix, sizeof prefix, "starhil %s: ", cmd);
            if (strncmp(r.err, prefix, strlen(prefix)) != 0) fail_msg("%s: error not prefixed: %s", cmd, r.err);
            sh_proc_result_free(&r);
            return n_subs;
        }
        int named = -1;   /* the option whose value "1" was refused, named by its error */
        for (int i = 0; i < n_opts; i++) {
            char pat[64];
            snprintf(pat, sizeof pat, ": %s", opts[i].name);
            const char *h = strstr(r.err, pat);
            if (!skip[i] && h && (h[strlen(pat)] == ':' || h[strlen(pat)] == ' ')) named = i;
        }
        if (named < 0 || strstr(r.err, "unknown option"))
            fail_msg("%s: an option of its list was refused: %s", cmd, r.err);
        skip[named] = true;
        sh_proc_result_free(&r);
    }
    fail_msg("%s: never reached the unknown option", cmd);
    return 0;
}

/* Every command of `starhil --help`, every subcommand of a group's help and
 * every subcommand a usage line names (search resume). */
static void test_every_command(void **state)
{
    (void)state;
    sh_proc_result r;
    char *top[] = {"--help", NULL};
    assert_int_equal(run_v(&r, top), 0);
    char *cmds = strstr(r.out, "\ncommands:\n");
    assert_non_null(cmds);
    int walked = 0;
    for (char *l = cmds + 11; l && !strncmp(l, "  ", 2); l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        char cmd[32];
        if (sscanf(l + 2, "%31[a-z-]", cmd) != 1) continue;
        char subs[16][32];
        int n = walk(cmd, NULL, subs, 16);
        walked++;
        for (int i = 0; i < n; i++) {
            char sub2[16][32];
            walk(cmd, subs[i], sub2, 16);
            walked++;
        }
    }
    sh_proc_result_free(&r);
    if (walked < 25) fail_msg("walked only %d commands", walked);
    /* the top level and a group name an unknown option too */
    char *bad_top[] = {"--zz-no-such-option", NULL};
    assert_int_equal(run_v(&r, bad_top), 2);
    assert_non_null(strstr(r.err, "--zz-no-such-option"));
    sh_proc_result_free(&r);
    char *bad_group[] = {"genome", "--zz-no-such-option", NULL};
    assert_int_equal(run_v(&r, bad_group), 2);
    assert_non_null(strstr(r.err, "starhil genome: unknown option --zz-no-such-option"));
    sh_proc_result_free(&r);
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

/* Runs `sh scripts/check_layers.sh ROOT`; exit code. */
static int check_layers(sh_proc_result *r, const char *root)
{
    const char *src = getenv("STARHIL_ROOT");
    char script[512];
    snprintf(script, sizeof script, "%s/scripts/check_layers.sh", src ? src : ".");
    char *argv[] = {"sh", script, (char *)root, NULL};
    sh_proc_opts o = {.timeout_s = 60};
    sh_err err = {{0}};
    if (sh_proc_run(argv, &o, r, &err) != 0) fail_msg("cannot run %s: %s", script, err.msg);
    return r->exited ? r->exit_code : 128 + r->signal;
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(dt_write_file(path, text, 0600), 0);
}

/* The module include graph follows ARCHITECTURE.md's "Who owns what" table
 * (scripts/check_layers.sh reads the table): the tree passes, and a tree with
 * one include against the table fails, naming the file, line and modules. */
static void test_layers(void **state)
{
    (void)state;
    const char *src = getenv("STARHIL_ROOT");
    sh_proc_result r;
    int rc = check_layers(&r, src ? src : ".");
    if (rc != 0) fail_msg("include against ARCHITECTURE.md:\n%s%s", r.out, r.err);
    assert_non_null(strstr(r.out, "no arrow against ARCHITECTURE.md"));
    sh_proc_result_free(&r);

    char root[128];
    snprintf(root, sizeof root, "%s/layers", tmpdir);
    const char *dirs[] = {"", "/low", "/high"};
    for (int i = 0; i < 3; i++) {
        char d[160];
        snprintf(d, sizeof d, "%s%s", root, dirs[i]);
        assert_int_equal(mkdir(d, 0700), 0);
    }
    write_text(root, "ARCHITECTURE.md",
               "# x\n\n## Who owns what\n\n| module | owns | may call |\n|---|---|---|\n"
               "| `low/` | the bottom | libc only |\n| `high/` | the top | low |\n\n## Conventions\n");
    write_text(root, "high/a.c", "#include \"low/l.h\"\n#include \"high/a.h\"\n");
    write_text(root, "low/l.h", "/* fine */\n#include <stdio.h>\n");
    assert_int_equal(check_layers(&r, root), 0);
    sh_proc_result_free(&r);
    write_text(root, "low/l.c", "#include \"low/l.h\"\n\n#include \"high/a.h\"\n");
    assert_int_equal(check_layers(&r, root), 1);
    assert_non_null(strstr(r.out, "low/l.c:3: low/ includes high/a.h"));
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
        cmocka_unit_test(test_every_command),
        cmocka_unit_test(test_errors_name_the_option),
        cmocka_unit_test(test_json_outputs),
        cmocka_unit_test(test_layers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
