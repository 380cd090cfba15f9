/* opt.c - option tables: parsing and generated help (see opt.h). */
#include "util/opt.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WRAP 88

static const sh_opt *find(const sh_cmd_spec *s, const char *arg, size_t len)
{
    for (int i = 0; i < s->n_opts; i++) {
        const sh_opt *o = &s->opts[i];
        if ((strlen(o->name) == len && !strncmp(o->name, arg, len)) ||
            (o->alias && strlen(o->alias) == len && !strncmp(o->alias, arg, len)))
            return o;
    }
    return NULL;
}

static bool bounded(const sh_opt *o) { return o->lo != 0 || o->hi != 0; }

static int set_value(const sh_cmd_spec *s, const sh_opt *o, const char *v)
{
    char *end;
    errno = 0;
    switch (o->kind) {
    case SH_OPT_STR:
        *(const char **)o->dest = v;
        return 0;
    case SH_OPT_LONG:
    case SH_OPT_INT: {
        long long x = strtoll(v, &end, 10);
        bool bad = !*v || *end || errno || (bounded(o) && (x < (long long)o->lo || x > (long long)o->hi));
        if (o->kind == SH_OPT_INT && !bounded(o) && (x < -2147483647LL || x > 2147483647LL)) bad = true;
        if (bad) {
            if (bounded(o))
                fprintf(stderr, "starhil %s: %s: expected an integer from %.0f to %.0f, got \"%s\"\n", s->name,
                        o->name, o->lo, o->hi, v);
            else
                fprintf(stderr, "starhil %s: %s: expected an integer, got \"%s\"\n", s->name, o->name, v);
            return -1;
        }
        if (o->kind == SH_OPT_LONG) *(long *)o->dest = (long)x;
        else *(int *)o->dest = (int)x;
        return 0;
    }
    case SH_OPT_DOUBLE: {
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x) || (bounded(o) && (x < o->lo || x > o->hi))) {
            if (bounded(o))
                fprintf(stderr, "starhil %s: %s: expected a number from %g to %g, got \"%s\"\n", s->name, o->name,
                        o->lo, o->hi, v);
            else
                fprintf(stderr, "starhil %s: %s: expected a number, got \"%s\"\n", s->name, o->name, v);
            return -1;
        }
        *(double *)o->dest = x;
        return 0;
    }
    case SH_OPT_MULTI: {
        sh_opt_multi *m = o->dest;
        if (m->n >= SH_OPT_MULTI_MAX) {
            fprintf(stderr, "starhil %s: %s: given more than %d times\n", s->name, o->name, SH_OPT_MULTI_MAX);
            return -1;
        }
        m->v[m->n++] = v;
        return 0;
    }
    case SH_OPT_FLAG:
        break;
    }
    assert(0 && "flag has no value");
    return -1;
}

int sh_opt_parse(const sh_cmd_spec *s, int argc, char **argv, const char **pos, int *n_pos)
{
    *n_pos = 0;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && (!strcmp(a, "--help") || !strcmp(a, "-h"))) {
            sh_opt_usage(s, stdout);
            return 1;
        }
        if (!options_done && !strcmp(a, "--")) { options_done = true; continue; }
        if (options_done || a[0] != '-' || a[1] == '\0') {
            if (s->max_pos >= 0 && *n_pos >= s->max_pos) {
                fprintf(stderr, "starhil %s: unexpected argument \"%s\" (see starhil %s --help)\n", s->name, a,
                        s->name);
                return 2;
            }
            pos[(*n_pos)++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
        const sh_opt *o = find(s, a, len);
        if (!o) {
            fprintf(stderr, "starhil %s: unknown option %.*s (see starhil %s --help)\n", s->name, (int)len, a,
                    s->name);
            return 2;
        }
        if (o->given) *o->given = true;
        if (o->kind == SH_OPT_FLAG) {
            if (eq && len < strlen(a)) {
                fprintf(stderr, "starhil %s: %s takes no value\n", s->name, o->name);
                return 2;
            }
            *(bool *)o->dest = true;
            continue;
        }
        const char *v;
        if (eq && len < strlen(a)) v = eq + 1;
        else if (i + 1 < argc) v = argv[++i];
        else {
            fprintf(stderr, "starhil %s: %s needs a value (%s)\n", s->name, o->name, o->metavar ? o->metavar : "a value");
            return 2;
        }
        if (set_value(s, o, v) != 0) return 2;
    }
    if (*n_pos < s->min_pos) {
        fprintf(stderr, "starhil %s: missing %s (usage: starhil %s%s%s)\n", s->name, s->args ? s->args : "argument",
                s->name, s->args ? " " : "", s->args ? s->args : "");
        return 2;
    }
    return 0;
}

/* "[--name METAVAR]" or "[--name]" */
static int item(const sh_opt *o, char *buf, size_t cap)
{
    if (o->kind == SH_OPT_FLAG) return snprintf(buf, cap, "[%s]", o->name);
    return snprintf(buf, cap, "[%s %s]", o->name, o->metavar ? o->metavar : "VALUE");
}

void sh_opt_usage(const sh_cmd_spec *s, FILE *f)
{
    char head[128];
    int indent = snprintf(head, sizeof head, "usage: starhil %s", s->name);
    fputs(head, f);
    int col = indent;
    if (s->args && s->args[0]) {
        fprintf(f, " %s", s->args);
        col += 1 + (int)strlen(s->args);
    }
    for (int i = 0; i < s->n_opts; i++) {
        if (!s->opts[i].help) continue;
        char it[128];
        int n = item(&s->opts[i], it, sizeof it);
        if (col + 1 + n > WRAP) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        }
        fprintf(f, " %s", it);
        col += 1 + n;
    }
    fputc('\n', f);
    if (s->more_usage) fputs(s->more_usage, f);
    if (s->about) fprintf(f, "\n%s", s->about);
    bool any = false;
    for (int i = 0; i < s->n_opts; i++) any |= s->opts[i].help != NULL;
    if (!any) return;
    fputs("\noptions:\n", f);
    for (int i = 0; i < s->n_opts; i++) {
        const sh_opt *o = &s->opts[i];
        if (!o->help) continue;
        char left[96];
        int n = snprintf(left, sizeof left, "  %s%s%s%s%s", o->name, o->alias ? ", " : "", o->alias ? o->alias : "",
                         o->kind == SH_OPT_FLAG ? "" : " ", o->kind == SH_OPT_FLAG ? "" : (o->metavar ? o->metavar : "VALUE"));
        fputs(left, f);
        const int col2 = 22;
        if (n >= col2) fprintf(f, "\n%*s", col2, "");
        else fprintf(f, "%*s", col2 - n, "");
        for (const char *h = o->help; *h; h++) {
            fputc(*h, f);
            if (*h == '\n' && h[1]) fprintf(f, "%*s", col2, "");
        }
        fputc('\n', f);
    }
}

void sh_opt_group_usage(const sh_group_spec *g, FILE *f)
{
    fprintf(f, "usage: starhil %s ", g->name);
    for (int i = 0; i < g->n_subs; i++) fprintf(f, "%s%s", i ? "|" : "", g->subs[i].name);
    fprintf(f, " [ARGS] [--help]\n");
    if (g->about) fprintf(f, "\n%s", g->about);
    fprintf(f, "\nsubcommands (`starhil %s SUBCOMMAND --help` for its options):\n", g->name);
    const int col2 = 22;
    for (int i = 0; i < g->n_subs; i++) {
        const sh_subcmd *c = &g->subs[i];
        char left[96];
        int n = snprintf(left, sizeof left, "  %s%s%s", c->name, c->args ? " " : "", c->args ? c->args : "");
        fputs(left, f);
        if (n >= col2) fprintf(f, "\n%*s", col2, "");
        else fprintf(f, "%*s", col2 - n, "");
        fprintf(f, "%s\n", c->summary);
    }
}

int sh_opt_group_pick(const sh_group_spec *g, int argc, char **argv, int *rc)
{
    if (argc < 2) {
        sh_opt_group_usage(g, stderr);
        *rc = 2;
        return -1;
    }
    const char *a = argv[1];
    if (!strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "help")) {
        sh_opt_group_usage(g, stdout);
        *rc = 0;
        return -1;
    }
    for (int i = 0; i < g->n_subs; i++)
        if (!strcmp(a, g->subs[i].name)) return i;
    *rc = 2;
    if (a[0] == '-') fprintf(stderr, "starhil %s: unknown option %.64s (expected a subcommand: ", g->name, a);
    else fprintf(stderr, "starhil %s: unknown subcommand \"%.64s\" (", g->name, a);
    for (int i = 0; i < g->n_subs; i++) fprintf(stderr, "%s%s", i ? ", " : "", g->subs[i].name);
    fprintf(stderr, "; see starhil %s --help)\n", g->name);
    return -1;
}
