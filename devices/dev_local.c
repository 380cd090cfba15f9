/* dev_local.c - the `local` device (this host) and the `qemu-aarch64` device
 * (an emulated ARM board on this host, running aarch64 binaries through
 * qemu-user).  Both run programs by fork/exec with util/proc.h in a private
 * temporary directory, pinned to the device's CPU list through hwloc. */
#include "devices/device_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/proc.h"

#define QEMU_SYSROOT "/usr/aarch64-linux-gnu"

typedef struct local_impl {
    bool qemu;
    bool prepared;
    sh_proc_guard guard;   /* removes the working directory if we are killed */
} local_impl;

void shdev_random_hex(char *out, size_t n_chars)
{
    unsigned char raw[64];
    size_t nb = (n_chars + 1) / 2;
    if (nb > sizeof raw) nb = sizeof raw;
    if (getrandom(raw, nb, 0) != (ssize_t)nb) {
        /* fall back to a weak but unique-enough mix */
        unsigned long x = (unsigned long)getpid() * 2654435761u ^ (unsigned long)(size_t)out;
        for (size_t i = 0; i < nb; i++) { x = x * 6364136223846793005ul + 1442695040888963407ul; raw[i] = (unsigned char)(x >> 56); }
    }
    for (size_t i = 0; i < n_chars && i / 2 < nb; i++)
        out[i] = "0123456789abcdef"[(i % 2 ? raw[i / 2] : raw[i / 2] >> 4) & 15];
    out[n_chars] = '\0';
}

/* Working directories "starhil-NAME.PID.XXXXXX" in base whose process is
 * gone: left by a run killed so hard that its guard could not remove them. */
static void sweep_stale_workdirs(const char *base)
{
    DIR *dir = opendir(base);
    if (!dir) return;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (strncmp(e->d_name, "starhil-", 8)) continue;
        /* ....PID.XXXXXX: the pid is the second-to-last dot-separated field */
        const char *last = strrchr(e->d_name, '.');
        if (!last || last == e->d_name || strlen(last + 1) != 6) continue;
        const char *p = last - 1;
        while (p > e->d_name && *p >= '0' && *p <= '9') p--;
        if (*p != '.' || p + 1 == last) continue;
        long pid = strtol(p + 1, NULL, 10);
        if (!sh_proc_pid_dead(pid)) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", base, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid()) sh_proc_remove_tree(path);
    }
    closedir(dir);
}

static int local_prepare(sh_device *d, sh_err *err)
{
    local_impl *li = d->impl;
    if (li->prepared) {
        struct stat st;
        if (stat(d->workdir, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
        li->prepared = false;   /* removed under us: make a new one */
        sh_proc_guard_end(&li->guard);
    }
    const char *base = d->base_dir[0] ? d->base_dir : getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    sweep_stale_workdirs(base);
    char tmpl[1024];
    if (snprintf(tmpl, sizeof tmpl, "%s/starhil-%s.%ld.XXXXXX", base, d->name, (long)getpid()) >= (int)sizeof tmpl)
        return sh_err_set(err, "device %s: working directory path too long", d->name);
    if (!mkdtemp(tmpl))
        return sh_err_set(err, "device %s: cannot create a working directory in %s: %s",
                          d->name, base, strerror(errno));
    if (sh_proc_guard_start(tmpl, &li->guard, err)) {
        rmdir(tmpl);
        return sh_err_prefix(err, "device %s", d->name);
    }
    snprintf(d->workdir, sizeof d->workdir, "%s", tmpl);
    li->prepared = true;
    return 0;
}

static int copy_file(const char *from, const char *to, sh_err *err)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) return sh_err_set(err, "%s: %s", from, strerror(errno));
    struct stat st;
    if (fstat(in, &st) || !S_ISREG(st.st_mode)) {
        close(in);
        return sh_err_set(err, "%s: not a regular file", from);
    }
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 0777);
    if (out < 0) { int e = errno; close(in); return sh_err_set(err, "%s: %s", to, strerror(e)); }
    char buf[65536];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) { if (errno == EINTR) continue; rc = sh_err_set(err, "%s: write: %s", to, strerror(errno)); goto done; }
            off += w;
        }
    }
    if (n < 0) rc = sh_err_set(err, "%s: read: %s", from, strerror(errno));
done:
    close(in);
    if (close(out) && !rc) rc = sh_err_set(err, "%s: close: %s", to, strerror(errno));
    if (!rc) fchmodat(AT_FDCWD, to, st.st_mode & 0777, 0);
    return rc;
}

static int local_push(sh_device *d, const char *local_path, const char *remote_name,
                      char *remote_path_out, size_t cap, sh_err *err)
{
    char dst[2048];
    snprintf(dst, sizeof dst, "%s/%s", d->workdir, remote_name);
    if (copy_file(local_path, dst, err)) return sh_err_prefix(err, "device %s: push", d->name);
    if (remote_path_out) snprintf(remote_path_out, cap, "%s", dst);
    return 0;
}

static int local_fetch(sh_device *d, const char *remote_path, const char *local_path, sh_err *err)
{
    if (copy_file(remote_path, local_path, err)) return sh_err_prefix(err, "device %s: fetch", d->name);
    return 0;
}

static int local_run(sh_device *d, char *const argv[], double timeout_s, sh_dev_result *res, sh_err *err)
{
    local_impl *li = d->impl;
    int n = 0;
    while (argv[n]) n++;
    char **av = calloc((size_t)n + 4, sizeof *av);
    if (!av) return sh_err_set(err, "device %s: out of memory", d->name);
    int k = 0;
    if (li->qemu) {
        av[k++] = "qemu-aarch64";
        av[k++] = "-L";
        av[k++] = QEMU_SYSROOT;
    }
    for (int i = 0; i < n; i++) av[k++] = argv[i];
    av[k] = NULL;

    shdev_binding bind = {0};
    if (d->cpus[0] && shdev_bind_thread(d->cpus, &bind, err)) {
        free(av);
        return sh_err_prefix(err, "device %s", d->name);
    }
    sh_proc_opts po = {.timeout_s = timeout_s, .max_out = SH_DEV_MAX_STDOUT,
                       .max_err = SH_DEV_MAX_STDERR, .cwd = d->workdir};
    sh_proc_result pr;
    int rc = sh_proc_run(av, &po, &pr, err);
    shdev_unbind_thread(&bind);
    free(av);
    if (rc) return sh_err_prefix(err, "device %s: run", d->name);
    res->exited = pr.exited;
    res->exit_code = pr.exit_code;
    res->signal = pr.signal;
    res->timed_out = pr.timed_out;
    res->out = pr.out; pr.out = NULL;
    res->out_len = pr.out_len;
    res->out_truncated = pr.out_truncated;
    res->err = pr.err; pr.err = NULL;
    res->err_len = pr.err_len;
    res->seconds = pr.seconds;
    if (!res->out) res->out = calloc(1, 1);
    if (!res->err) res->err = calloc(1, 1);
    sh_proc_result_free(&pr);
    if (!res->out || !res->err) { sh_dev_result_free(res); return sh_err_set(err, "out of memory"); }
    return 0;
}

static int remove_tree(const char *dir, sh_err *err)
{
    char *argv[] = {"rm", "-rf", "--", (char *)dir, NULL};
    sh_proc_opts po = {.timeout_s = 60};
    sh_proc_result pr;
    if (sh_proc_run(argv, &po, &pr, err)) return -1;
    int ok = pr.exited && pr.exit_code == 0;
    sh_proc_result_free(&pr);
    return ok ? 0 : sh_err_set(err, "rm -rf %s failed", dir);
}

static int local_cleanup(sh_device *d, sh_err *err)
{
    local_impl *li = d->impl;
    if (!li->prepared) return 0;
    li->prepared = false;
    int rc = remove_tree(d->workdir, err);
    sh_proc_guard_end(&li->guard);
    d->workdir[0] = '\0';
    return rc;
}

static int local_describe(sh_device *d, char **json_out, sh_err *err)
{
    local_impl *li = d->impl;
    return shdev_topology_local(li->qemu ? "aarch64 emulated by qemu-user on this host" : NULL,
                                json_out, err);
}

static void local_destroy(sh_device *d)
{
    local_impl *li = d->impl;
    if (li) sh_proc_guard_end(&li->guard);
    free(d->impl);
    d->impl = NULL;
}

static const sh_device_ops LOCAL_OPS = {
    local_prepare, local_push, local_run, local_fetch, local_cleanup, local_describe, local_destroy,
};

int shdev_local_init(sh_device *d, bool qemu, sh_err *err)
{
    local_impl *li = calloc(1, sizeof *li);
    if (!li) return sh_err_set(err, "out of memory");
    li->qemu = qemu;
    li->guard.fd = -1;
    li->guard.pid = -1;
    d->impl = li;
    d->ops = &LOCAL_OPS;
    return 0;
}

/* ---- CPU binding through hwloc -------------------------------------------- */

int shdev_bind_thread(const char *cpus, shdev_binding *b, sh_err *err)
{
    memset(b, 0, sizeof *b);
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) || hwloc_topology_load(topo))
        return sh_err_set(err, "hwloc: cannot load the topology");
    hwloc_bitmap_t want = hwloc_bitmap_alloc(), old = hwloc_bitmap_alloc();
    if (!want || !old || hwloc_bitmap_list_sscanf(want, cpus) < 0) {
        hwloc_bitmap_free(want); hwloc_bitmap_free(old); hwloc_topology_destroy(topo);
        return sh_err_set(err, "cpu list '%.64s': not understood by hwloc", cpus);
    }
    hwloc_get_cpubind(topo, old, HWLOC_CPUBIND_THREAD);
    if (hwloc_set_cpubind(topo, want, HWLOC_CPUBIND_THREAD)) {
        int e = errno;
        hwloc_bitmap_free(want); hwloc_bitmap_free(old); hwloc_topology_destroy(topo);
        return sh_err_set(err, "cannot bind to cpus %.64s: %s", cpus, strerror(e));
    }
    hwloc_bitmap_free(want);
    b->topo = topo;
    b->old = old;
    b->active = true;
    return 0;
}

void shdev_unbind_thread(shdev_binding *b)
{
    if (!b->active) return;
    hwloc_set_cpubind((hwloc_topology_t)b->topo, (hwloc_bitmap_t)b->old, HWLOC_CPUBIND_THREAD);
    hwloc_bitmap_free((hwloc_bitmap_t)b->old);
    hwloc_topology_destroy((hwloc_topology_t)b->topo);
    b->active = false;
}
