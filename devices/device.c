/* device.c - the device interface: opening a device of any kind from its
 * inventory record, the vtable wrappers, name validation, shell quoting and CPU
 * list helpers shared by every kind. */
#include "devices/device.h"
#include "devices/device_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sh_dev_result_free(sh_dev_result *r)
{
    if (!r) return;
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

void sh_dev_result_describe(const sh_dev_result *r, char *buf, size_t cap)
{
    if (r->timed_out) snprintf(buf, cap, "timed out after %.1f s", r->seconds);
    else if (r->signal) snprintf(buf, cap, "killed by signal %d", r->signal);
    else if (r->exited) snprintf(buf, cap, "exit %d", r->exit_code);
    else snprintf(buf, cap, "ended without an exit status");
}

static const char *const KINDS[] = {"local", "ssh", "adb", "qemu-aarch64"};

bool sh_device_kind_valid(const char *kind)
{
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
        if (kind && !strcmp(kind, KINDS[i])) return true;
    return false;
}

int sh_device_name_check(const char *name, sh_err *err)
{
    if (!name || !*name) return sh_err_set(err, "device name: empty");
    size_t n = strlen(name);
    if (n > 63) return sh_err_set(err, "device name: longer than 63 characters");
    if (name[0] == '-' || name[0] == '.')
        return sh_err_set(err, "device name '%.63s': must not start with '-' or '.'", name);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return sh_err_set(err, "device name: character 0x%02x at %zu not in [A-Za-z0-9._-]", c, i);
    }
    return 0;
}

const char *sh_host_triple(void)
{
#if defined(__x86_64__)
    return "x86_64-linux-gnu";
#elif defined(__aarch64__)
    return "aarch64-linux-gnu";
#elif defined(__arm__)
    return "arm-linux-gnueabihf";
#elif defined(__riscv) && __riscv_xlen == 64
    return "riscv64-linux-gnu";
#else
    return "unknown-linux-gnu";
#endif
}

const char *sh_device_default_target(const char *kind)
{
    if (!kind) return "";
    if (!strcmp(kind, "local")) return sh_host_triple();
    if (!strcmp(kind, "qemu-aarch64") || !strcmp(kind, "adb")) return "aarch64-linux-gnu";
    return "";
}

/* ---- opening ------------------------------------------------------------ */

static int read_options(sh_device *d, const char *options_json, sh_err *err)
{
    if (!options_json || !*options_json) return 0;
    json_error_t je;
    json_t *o = json_loads(options_json, JSON_REJECT_DUPLICATES, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return sh_err_set(err, "device %s: options: not a JSON object", d->name);
    }
    json_t *v;
    if ((v = json_object_get(o, "known_hosts")) && json_is_string(v))
        snprintf(d->known_hosts, sizeof d->known_hosts, "%s", json_string_value(v));
    if ((v = json_object_get(o, "serial")) && json_is_string(v))
        snprintf(d->serial, sizeof d->serial, "%s", json_string_value(v));
    if ((v = json_object_get(o, "trust_host_key")) && json_is_boolean(v))
        d->trust_host_key = json_is_true(v);
    if ((v = json_object_get(o, "replace_host_key")) && json_is_boolean(v))
        d->replace_host_key = json_is_true(v);
    if ((v = json_object_get(o, "connect_timeout_s")) && json_is_number(v)) {
        double t = json_number_value(v);
        if (t > 0 && t < 3600) d->connect_timeout_s = t;
    }
    json_decref(o);
    return 0;
}

int sh_device_open(const sh_device_rec *rec, sh_device **out, sh_err *err)
{
    *out = NULL;
    if (sh_device_name_check(rec->name, err)) return -1;
    if (!sh_device_kind_valid(rec->kind))
        return sh_err_set(err, "device %s: unknown kind '%.15s' (local, ssh, adb, qemu-aarch64)",
                          rec->name, rec->kind);
    sh_device *d = calloc(1, sizeof *d);
    if (!d) return sh_err_set(err, "device %s: out of memory", rec->name);
    snprintf(d->name, sizeof d->name, "%s", rec->name);
    snprintf(d->kind, sizeof d->kind, "%s", rec->kind);
    snprintf(d->host, sizeof d->host, "%s", rec->host);
    d->port = rec->port;
    snprintf(d->user, sizeof d->user, "%s", rec->user);
    snprintf(d->key_path, sizeof d->key_path, "%s", rec->key_path);
    snprintf(d->target, sizeof d->target, "%s",
             rec->target[0] ? rec->target : sh_device_default_target(rec->kind));
    snprintf(d->cpus, sizeof d->cpus, "%s", rec->cpus);
    snprintf(d->base_dir, sizeof d->base_dir, "%s", rec->workdir);
    d->connect_timeout_s = 10.0;
    if (read_options(d, rec->options_json, err)) { free(d); return -1; }
    if (d->cpus[0]) {
        bool set[1024];
        int n;
        if (sh_cpulist_parse(d->cpus, set, &n, err)) {
            sh_err_prefix(err, "device %s", d->name);
            free(d);
            return -1;
        }
    }
    int rc;
    if (!strcmp(d->kind, "local")) rc = shdev_local_init(d, false, err);
    else if (!strcmp(d->kind, "qemu-aarch64")) rc = shdev_local_init(d, true, err);
    else if (!strcmp(d->kind, "ssh")) rc = shdev_ssh_init(d, err);
    else rc = shdev_adb_init(d, err);
    if (rc) { free(d); return -1; }
    *out = d;
    return 0;
}

void sh_device_close(sh_device *d)
{
    if (!d) return;
    sh_err e;
    if (d->ops->cleanup) d->ops->cleanup(d, &e);
    if (d->ops->destroy) d->ops->destroy(d);
    free(d);
}

int sh_device_prepare(sh_device *d, sh_err *err) { return d->ops->prepare(d, err); }

int sh_device_push(sh_device *d, const char *local_path, const char *remote_name,
                   char *remote_path_out, size_t cap, sh_err *err)
{
    /* remote names are plain file names inside the private directory */
    if (!remote_name || !*remote_name || strchr(remote_name, '/') || !strcmp(remote_name, ".") ||
        !strcmp(remote_name, "..") || strlen(remote_name) > 200)
        return sh_err_set(err, "device %s: push: bad remote file name", d->name);
    int rc = d->ops->prepare(d, err);
    if (rc) return rc;
    return d->ops->push(d, local_path, remote_name, remote_path_out, cap, err);
}

int sh_device_run(sh_device *d, char *const argv[], double timeout_s, sh_dev_result *res, sh_err *err)
{
    memset(res, 0, sizeof *res);
    if (!argv || !argv[0]) return sh_err_set(err, "device %s: run: empty command", d->name);
    int rc = d->ops->prepare(d, err);
    if (rc) return rc;
    return d->ops->run(d, argv, timeout_s, res, err);
}

int sh_device_fetch(sh_device *d, const char *remote_path, const char *local_path, sh_err *err)
{
    int rc = d->ops->prepare(d, err);
    if (rc) return rc;
    return d->ops->fetch(d, remote_path, local_path, err);
}

int sh_device_cleanup(sh_device *d, sh_err *err) { return d->ops->cleanup(d, err); }

int sh_device_describe(sh_device *d, char **json_out, sh_err *err)
{
    *json_out = NULL;
    return d->ops->describe(d, json_out, err);
}

/* ---- shell quoting ------------------------------------------------------- */

int sh_shell_quote(const char *s, char *out, size_t cap)
{
    size_t o = 0;
#define PUT(c) do { if (o + 1 >= cap) { if (cap) out[0] = '\0'; return -1; } out[o++] = (c); } while (0)
    PUT('\'');
    for (const char *p = s; *p; p++) {
        if (*p == '\'') { PUT('\''); PUT('\\'); PUT('\''); PUT('\''); }
        else PUT(*p);
    }
    PUT('\'');
#undef PUT
    out[o] = '\0';
    return (int)o;
}

char *sh_shell_join(const char *prefix, char *const argv[], size_t max_len, sh_err *err)
{
    size_t need = prefix ? strlen(prefix) + 1 : 0;
    for (int i = 0; argv[i]; i++) need += strlen(argv[i]) * 4 + 3;
    if (need + 1 > max_len) {
        sh_err_set(err, "command line longer than %zu bytes", max_len);
        return NULL;
    }
    char *buf = malloc(need + 1);
    if (!buf) { sh_err_set(err, "out of memory"); return NULL; }
    size_t o = 0;
    if (prefix) { o = (size_t)sprintf(buf, "%s", prefix); }
    for (int i = 0; argv[i]; i++) {
        if (o) buf[o++] = ' ';
        int n = sh_shell_quote(argv[i], buf + o, need + 1 - o);
        if (n < 0) { free(buf); sh_err_set(err, "command line too long"); return NULL; }
        o += (size_t)n;
    }
    buf[o] = '\0';
    return buf;
}

/* ---- CPU lists ------------------------------------------------------------ */

static int parse_uint(const char **p, int *out)
{
    const char *s = *p;
    if (*s < '0' || *s > '9') return -1;
    long v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        if (v > 1023) return -1;
        s++;
    }
    *p = s;
    *out = (int)v;
    return 0;
}

int sh_cpulist_parse(const char *list, bool set[1024], int *count, sh_err *err)
{
    memset(set, 0, 1024 * sizeof set[0]);
    *count = 0;
    const char *p = list;
    if (!p || !*p) return sh_err_set(err, "cpu list: empty");
    for (;;) {
        int a, b;
        if (parse_uint(&p, &a)) return sh_err_set(err, "cpu list '%.64s': expected a cpu number (0-1023)", list);
        b = a;
        if (*p == '-') {
            p++;
            if (parse_uint(&p, &b) || b < a)
                return sh_err_set(err, "cpu list '%.64s': bad range", list);
        }
        for (int c = a; c <= b; c++) if (!set[c]) { set[c] = true; (*count)++; }
        if (*p == '\0') break;
        if (*p != ',') return sh_err_set(err, "cpu list '%.64s': unexpected '%c'", list, *p);
        p++;
    }
    return 0;
}

int sh_cpulist_mask_hex(const char *list, char *out, size_t cap, sh_err *err)
{
    bool set[1024];
    int n;
    if (sh_cpulist_parse(list, set, &n, err)) return -1;
    int top = 0;
    for (int c = 0; c < 1024; c++) if (set[c]) top = c;
    int digits = top / 4 + 1;
    if ((size_t)digits + 1 > cap) return sh_err_set(err, "cpu mask: buffer too small");
    for (int dgt = 0; dgt < digits; dgt++) {
        int v = 0;
        for (int bit = 0; bit < 4; bit++) if (set[dgt * 4 + bit]) v |= 1 << bit;
        out[digits - 1 - dgt] = "0123456789abcdef"[v];
    }
    out[digits] = '\0';
    return 0;
}
