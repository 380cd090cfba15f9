/* dev_adb.c - the adb wire protocol client (adb.h) and the `adb` device kind:
 * an Android phone reached through the adb server.  Every operation opens a
 * fresh socket to the server (that is how adb works: one service per socket),
 * switches it to the phone with host:transport:SERIAL, then speaks shell: or
 * sync:.  Programs run in a private directory under /data/local/tmp, pinned to
 * the chosen cores with taskset, bounded by timeout(1); the exit status and
 * stderr come back after a random marker line since shell: has neither. */
#include "devices/adb.h"
#include "devices/device_impl.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SYNC_CHUNK 65536
#define DEFAULT_BASE "/data/local/tmp"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- socket I/O with a deadline -------------------------------------------- */

static int wait_fd(int fd, short ev, double deadline, sh_err *err)
{
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0) return sh_err_set(err, "adb: timed out");
        struct pollfd p = {.fd = fd, .events = ev};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r > 0) return 0;
        if (r < 0 && errno != EINTR) return sh_err_set(err, "adb: poll: %s", strerror(errno));
    }
}

static int write_all(int fd, const void *buf, size_t n, double deadline, sh_err *err)
{
    const char *p = buf;
    while (n) {
        if (wait_fd(fd, POLLOUT, deadline, err)) return -1;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return sh_err_set(err, "adb: send: %s", strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes; fails on EOF. */
static int read_exact(int fd, void *buf, size_t n, double deadline, sh_err *err)
{
    char *p = buf;
    while (n) {
        if (wait_fd(fd, POLLIN, deadline, err)) return -1;
        ssize_t r = recv(fd, p, n, 0);
        if (r == 0) return sh_err_set(err, "adb: connection closed by the peer");
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return sh_err_set(err, "adb: recv: %s", strerror(errno));
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int parse_hex4(const char *h, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = h[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return 0;
}

/* Reads a 4-hex-digit length and that many bytes (malloc'd, NUL-terminated). */
static int read_hex_string(int fd, char **out, double deadline, sh_err *err)
{
    char h[4];
    unsigned len;
    if (read_exact(fd, h, 4, deadline, err)) return -1;
    if (parse_hex4(h, &len)) return sh_err_set(err, "adb: malformed length prefix");
    char *s = malloc(len + 1);
    if (!s) return sh_err_set(err, "out of memory");
    if (read_exact(fd, s, len, deadline, err)) { free(s); return -1; }
    s[len] = '\0';
    *out = s;
    return 0;
}

/* ---- host protocol ------------------------------------------------------------ */

void sh_adb_server_addr(const char *host, int port, char *host_out, size_t cap, int *port_out)
{
    snprintf(host_out, cap, "127.0.0.1");
    *port_out = SH_ADB_DEFAULT_PORT;
    const char *env = getenv("ADB_SERVER_SOCKET");
    if (env && !strncmp(env, "tcp:", 4)) {
        const char *colon = strrchr(env + 4, ':');
        if (colon && colon > env + 4) {
            snprintf(host_out, cap, "%.*s", (int)(colon - (env + 4)), env + 4);
            int p = atoi(colon + 1);
            if (p > 0 && p < 65536) *port_out = p;
        } else if (atoi(env + 4) > 0) {
            *port_out = atoi(env + 4);
        }
    }
    if (host && *host) snprintf(host_out, cap, "%s", host);
    if (port > 0) *port_out = port;
}

int sh_adb_connect(const char *host, int port, double timeout_s, sh_err *err)
{
    char h[256];
    int p;
    sh_adb_server_addr(host, port, h, sizeof h, &p);
    char ps[16];
    snprintf(ps, sizeof ps, "%d", p);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(h, ps, &hints, &ai);
    if (g) return sh_err_set(err, "adb server %s:%d: %s", h, p, gai_strerror(g));
    int fd = -1;
    int last = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (poll(&pf, 1, (int)(timeout_s * 1000)) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                break;
            last = soerr ? soerr : ETIMEDOUT;
        } else {
            last = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return sh_err_set(err, "adb server %s:%d: cannot connect: %s (is `adb start-server` running?)",
                          h, p, strerror(last));
    return fd;
}

int sh_adb_request(int fd, const char *service, double timeout_s, sh_err *err)
{
    size_t n = strlen(service);
    if (n == 0 || n > 0xffff) return sh_err_set(err, "adb: request of %zu bytes", n);
    char hdr[5];
    snprintf(hdr, sizeof hdr, "%04zx", n);
    double deadline = now_s() + timeout_s;
    if (write_all(fd, hdr, 4, deadline, err) || write_all(fd, service, n, deadline, err)) return -1;
    char st[4];
    if (read_exact(fd, st, 4, deadline, err)) return -1;
    if (!memcmp(st, "OKAY", 4)) return 0;
    if (!memcmp(st, "FAIL", 4)) {
        char *msg = NULL;
        if (read_hex_string(fd, &msg, deadline, err)) return -1;
        sh_err_set(err, "adb: %.60s refused: %.300s", service, msg);
        free(msg);
        return -1;
    }
    return sh_err_set(err, "adb: %.60s: unexpected reply (not OKAY/FAIL)", service);
}

int sh_adb_host_query(const char *host, int port, const char *service, double timeout_s,
                      char **reply, sh_err *err)
{
    *reply = NULL;
    int fd = sh_adb_connect(host, port, timeout_s, err);
    if (fd < 0) return -1;
    int rc = sh_adb_request(fd, service, timeout_s, err);
    if (!rc) rc = read_hex_string(fd, reply, now_s() + timeout_s, err);
    close(fd);
    return rc;
}

int sh_adb_transport(const char *host, int port, const char *serial, double timeout_s, sh_err *err)
{
    int fd = sh_adb_connect(host, port, timeout_s, err);
    if (fd < 0) return -1;
    char svc[300];
    if (serial && *serial) snprintf(svc, sizeof svc, "host:transport:%s", serial);
    else snprintf(svc, sizeof svc, "host:transport-any");
    if (sh_adb_request(fd, svc, timeout_s, err)) { close(fd); return -1; }
    return fd;
}

/* ---- sync protocol ---------------------------------------------------------------- */

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int sync_header(int fd, const char *id, uint32_t len, double deadline, sh_err *err)
{
    unsigned char h[8];
    memcpy(h, id, 4);
    put_le32(h + 4, len);
    return write_all(fd, h, 8, deadline, err);
}

static int sync_fail_message(int fd, uint32_t len, double deadline, const char *what, sh_err *err)
{
    if (len > 4096) return sh_err_set(err, "adb sync: %s: FAIL message too long", what);
    char msg[4097];
    if (read_exact(fd, msg, len, deadline, err)) return -1;
    msg[len] = '\0';
    return sh_err_set(err, "adb sync: %s: %s", what, msg);
}

int sh_adb_sync_send(int fd, const char *local_path, const char *remote_path, unsigned mode,
                     double timeout_s, sh_err *err)
{
    double deadline = now_s() + timeout_s;
    FILE *f = fopen(local_path, "rb");
    if (!f) return sh_err_set(err, "adb push: %s: %s", local_path, strerror(errno));
    char spec[1100];
    int n = snprintf(spec, sizeof spec, "%s,%u", remote_path, mode);
    if (n < 0 || n >= (int)sizeof spec || strlen(remote_path) > 1024) {
        fclose(f);
        return sh_err_set(err, "adb push: remote path too long");
    }
    int rc = sync_header(fd, "SEND", (uint32_t)n, deadline, err) ||
             write_all(fd, spec, (size_t)n, deadline, err);
    char *buf = rc ? NULL : malloc(SYNC_CHUNK);
    if (!rc && !buf) rc = sh_err_set(err, "out of memory");
    size_t r;
    while (!rc && (r = fread(buf, 1, SYNC_CHUNK, f)) > 0)
        rc = sync_header(fd, "DATA", (uint32_t)r, deadline, err) || write_all(fd, buf, r, deadline, err);
    free(buf);
    fclose(f);
    if (rc) return -1;
    if (sync_header(fd, "DONE", (uint32_t)time(NULL), deadline, err)) return -1;
    unsigned char h[8];
    if (read_exact(fd, h, 8, deadline, err)) return -1;
    if (!memcmp(h, "OKAY", 4)) return 0;
    if (!memcmp(h, "FAIL", 4)) return sync_fail_message(fd, get_le32(h + 4), deadline, "push", err);
    return sh_err_set(err, "adb push: unexpected sync reply");
}

int sh_adb_sync_recv(int fd, const char *remote_path, const char *local_path, size_t max_bytes,
                     double timeout_s, sh_err *err)
{
    double deadline = now_s() + timeout_s;
    size_t n = strlen(remote_path);
    if (n > 1024) return sh_err_set(err, "adb fetch: remote path too long");
    if (sync_header(fd, "RECV", (uint32_t)n, deadline, err) || write_all(fd, remote_path, n, deadline, err))
        return -1;
    FILE *f = fopen(local_path, "wb");
    if (!f) return sh_err_set(err, "adb fetch: %s: %s", local_path, strerror(errno));
    char *buf = malloc(SYNC_CHUNK);
    size_t total = 0;
    int rc = buf ? 0 : sh_err_set(err, "out of memory");
    while (!rc) {
        unsigned char h[8];
        if (read_exact(fd, h, 8, deadline, err)) { rc = -1; break; }
        uint32_t len = get_le32(h + 4);
        if (!memcmp(h, "DONE", 4)) break;
        if (!memcmp(h, "FAIL", 4)) { rc = sync_fail_message(fd, len, deadline, "fetch", err); break; }
        if (memcmp(h, "DATA", 4)) { rc = sh_err_set(err, "adb fetch: unexpected sync id"); break; }
        if (len > SYNC_CHUNK) { rc = sh_err_set(err, "adb fetch: DATA chunk of %u bytes (max 65536)", len); break; }
        total += len;
        if (total > max_bytes) { rc = sh_err_set(err, "adb fetch: %s larger than %zu bytes", remote_path, max_bytes); break; }
        if (read_exact(fd, buf, len, deadline, err)) { rc = -1; break; }
        if (fwrite(buf, 1, len, f) != len) { rc = sh_err_set(err, "adb fetch: cannot write %s", local_path); break; }
    }
    free(buf);
    if (fclose(f) && !rc) rc = sh_err_set(err, "adb fetch: cannot write %s", local_path);
    return rc;
}

int sh_adb_sync_stat(int fd, const char *remote_path, uint32_t *mode, uint32_t *size,
                     uint32_t *mtime, double timeout_s, sh_err *err)
{
    double deadline = now_s() + timeout_s;
    size_t n = strlen(remote_path);
    if (n > 1024) return sh_err_set(err, "adb stat: remote path too long");
    if (sync_header(fd, "STAT", (uint32_t)n, deadline, err) || write_all(fd, remote_path, n, deadline, err))
        return -1;
    unsigned char r[16];
    if (read_exact(fd, r, 16, deadline, err)) return -1;
    if (memcmp(r, "STAT", 4)) return sh_err_set(err, "adb stat: unexpected sync reply");
    *mode = get_le32(r + 4);
    *size = get_le32(r + 8);
    *mtime = get_le32(r + 12);
    return 0;
}

/* ---- the adb device ------------------------------------------------------------------ */

typedef struct adb_impl {
    bool prepared;
    bool has_timeout, has_taskset;
} adb_impl;

static double op_timeout(const sh_device *d) { return d->connect_timeout_s > 0 ? d->connect_timeout_s : 10; }

/* Runs one shell command line; output read until the phone closes the stream. */
static int adb_shell(sh_device *d, const char *cmdline, double timeout_s, char **out, size_t *out_len,
                     int *truncated, sh_err *err)
{
    *out = NULL;
    *out_len = 0;
    *truncated = 0;
    int fd = sh_adb_transport(d->host, d->port, d->serial, op_timeout(d), err);
    if (fd < 0) { sh_err_prefix(err, "device %s", d->name); return SH_DEV_ETRANSPORT; }
    size_t n = strlen(cmdline);
    if (n > 60000) { close(fd); return sh_err_set(err, "device %s: command line too long for adb", d->name); }
    char *svc = malloc(n + 7);
    if (!svc) { close(fd); return sh_err_set(err, "out of memory"); }
    memcpy(svc, "shell:", 6);
    memcpy(svc + 6, cmdline, n + 1);
    int rc = sh_adb_request(fd, svc, op_timeout(d), err);
    free(svc);
    if (rc) { close(fd); sh_err_prefix(err, "device %s", d->name); return SH_DEV_ETRANSPORT; }
    double deadline = now_s() + (timeout_s > 0 ? timeout_s : 1e9);
    size_t cap = 8192, len = 0, limit = SH_DEV_MAX_STDOUT + SH_DEV_MAX_STDERR + 256;
    char *buf = malloc(cap);
    rc = buf ? 0 : sh_err_set(err, "out of memory");
    while (!rc) {
        if (wait_fd(fd, POLLIN, deadline, err)) { rc = 1; break; }   /* timed out */
        if (len + 65536 + 1 > cap) {
            size_t nc = cap * 2;
            while (nc < len + 65536 + 1) nc *= 2;
            char *q = realloc(buf, nc);
            if (!q) { rc = sh_err_set(err, "out of memory"); break; }
            buf = q;
            cap = nc;
        }
        ssize_t r = recv(fd, buf + len, 65536, 0);
        if (r == 0) break;
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            sh_err_set(err, "device %s: adb shell: %s", d->name, strerror(errno));
            rc = SH_DEV_ETRANSPORT;
            break;
        }
        len += (size_t)r;
        if (len > limit) { *truncated = 1; len = limit; }
    }
    close(fd);
    if (rc < 0) { free(buf); return rc; }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return rc;   /* 1 = timed out (output so far kept) */
}

static int adb_prepare(sh_device *d, sh_err *err)
{
    adb_impl *ai = d->impl;
    if (ai->prepared) return 0;
    char base[1100], hex[17], cmd[3000];
    sh_shell_quote(d->base_dir[0] ? d->base_dir : DEFAULT_BASE, base, sizeof base);
    shdev_random_hex(hex, 16);
    snprintf(cmd, sizeof cmd,
             "umask 077; mkdir -p %s && cd %s && mkdir starhil-%s && cd starhil-%s && pwd; "
             "command -v timeout >/dev/null 2>&1 && echo HAS_TIMEOUT; "
             "command -v taskset >/dev/null 2>&1 && echo HAS_TASKSET; true",
             base, base, hex, hex);
    char *out;
    size_t len;
    int trunc;
    int rc = adb_shell(d, cmd, op_timeout(d) + 20, &out, &len, &trunc, err);
    if (rc < 0) return rc;
    if (rc == 1) { free(out); return sh_err_set(err, "device %s: preparing the working directory timed out", d->name); }
    char *nl = strpbrk(out, "\r\n");
    if (nl) *nl = '\0';
    bool ok = out[0] == '/' && strstr(out, hex) && strlen(out) < sizeof d->workdir;
    if (ok) {
        snprintf(d->workdir, sizeof d->workdir, "%s", out);
        ai->has_timeout = nl && strstr(nl + 1, "HAS_TIMEOUT");
        ai->has_taskset = nl && strstr(nl + 1, "HAS_TASKSET");
        ai->prepared = true;
    } else {
        sh_err_set(err, "device %s: cannot create a working directory under %s: %.200s", d->name,
                   d->base_dir[0] ? d->base_dir : DEFAULT_BASE, out);
    }
    free(out);
    return ok ? 0 : -1;
}

static int sync_open(sh_device *d, sh_err *err)
{
    int fd = sh_adb_transport(d->host, d->port, d->serial, op_timeout(d), err);
    if (fd < 0) { sh_err_prefix(err, "device %s", d->name); return SH_DEV_ETRANSPORT; }
    if (sh_adb_request(fd, "sync:", op_timeout(d), err)) {
        close(fd);
        sh_err_prefix(err, "device %s", d->name);
        return SH_DEV_ETRANSPORT;
    }
    return fd;
}

static int adb_push(sh_device *d, const char *local_path, const char *remote_name,
                    char *remote_path_out, size_t cap, sh_err *err)
{
    struct stat st;
    if (stat(local_path, &st) || !S_ISREG(st.st_mode))
        return sh_err_set(err, "device %s: push: %s: not a readable regular file", d->name, local_path);
    char dst[2048];
    snprintf(dst, sizeof dst, "%s/%s", d->workdir, remote_name);
    int fd = sync_open(d, err);
    if (fd < 0) return fd;
    double t = op_timeout(d) + (double)st.st_size / 1e6;   /* >= 1 MB/s */
    int rc = sh_adb_sync_send(fd, local_path, dst, 0100000u | (st.st_mode & 0777), t, err);
    uint32_t mode = 0, size = 0, mtime = 0;
    if (!rc) rc = sh_adb_sync_stat(fd, dst, &mode, &size, &mtime, op_timeout(d), err);
    if (!rc && size != (uint32_t)st.st_size)
        rc = sh_err_set(err, "adb push: %s has %u bytes on the phone, %lld here", dst, size, (long long)st.st_size);
    close(fd);
    if (rc) { sh_err_prefix(err, "device %s", d->name); return SH_DEV_ETRANSPORT; }
    if (remote_path_out) snprintf(remote_path_out, cap, "%s", dst);
    return 0;
}

static int adb_fetch(sh_device *d, const char *remote_path, const char *local_path, sh_err *err)
{
    int fd = sync_open(d, err);
    if (fd < 0) return fd;
    int rc = sh_adb_sync_recv(fd, remote_path, local_path, SH_DEV_MAX_FETCH, op_timeout(d) + 60, err);
    close(fd);
    if (rc) return sh_err_prefix(err, "device %s", d->name);
    return 0;
}

static char *bounded_copy(const char *s, size_t n, size_t keep_tail_max)
{
    if (n > keep_tail_max) { s += n - keep_tail_max; n = keep_tail_max; }
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static int adb_run(sh_device *d, char *const argv[], double timeout_s, sh_dev_result *res, sh_err *err)
{
    adb_impl *ai = d->impl;
    char wq[1100], hex[17], prefix[1400], mask[300];
    sh_shell_quote(d->workdir, wq, sizeof wq);
    shdev_random_hex(hex, 16);
    int k = snprintf(prefix, sizeof prefix, "cd %s && {", wq);
    if (ai->has_timeout && timeout_s > 0)
        k += snprintf(prefix + k, sizeof prefix - (size_t)k, " timeout -s KILL %d", (int)(timeout_s + 0.999));
    if (ai->has_taskset && d->cpus[0] && sh_cpulist_mask_hex(d->cpus, mask, sizeof mask, err) == 0)
        snprintf(prefix + k, sizeof prefix - (size_t)k, " taskset %s", mask);
    char *core = sh_shell_join(prefix, argv, 50000, err);
    if (!core) return sh_err_prefix(err, "device %s: run", d->name);
    size_t cl = strlen(core) + 300;
    char *cmd = malloc(cl);
    if (!cmd) { free(core); return sh_err_set(err, "out of memory"); }
    snprintf(cmd, cl, "%s; } 2>.stderr-%s; rc=$?; printf '\\n%s:%%d\\n' $rc; tail -c %u .stderr-%s; rm -f .stderr-%s",
             core, hex, hex, SH_DEV_MAX_STDERR, hex, hex);
    free(core);
    double t0 = now_s();
    char *out;
    size_t len;
    int trunc;
    int rc = adb_shell(d, cmd, timeout_s > 0 ? timeout_s + (ai->has_timeout ? 10 : 0) : 0, &out, &len, &trunc, err);
    free(cmd);
    if (rc < 0) return rc;
    res->seconds = now_s() - t0;
    char marker[24];
    snprintf(marker, sizeof marker, "\n%s:", hex);
    char *m = strstr(out, marker);
    if (rc == 1 || !m) {
        /* no marker: timed out on our side, or the stream broke off */
        res->timed_out = rc == 1;
        res->out = bounded_copy(out, m ? (size_t)(m - out) : len, SH_DEV_MAX_STDOUT);
        res->err = calloc(1, 1);
        free(out);
        if (!res->out || !res->err) { sh_dev_result_free(res); return sh_err_set(err, "out of memory"); }
        if (rc == 1) return 0;
        sh_dev_result_free(res);
        sh_err_set(err, "device %s: adb shell ended without an exit status (connection lost?)", d->name);
        return SH_DEV_ETRANSPORT;
    }
    size_t out_n = (size_t)(m - out);
    if (out_n && out[out_n - 1] == '\r') out_n--;
    char *p = m + strlen(marker);
    int code = atoi(p);
    char *eol = strchr(p, '\n');
    const char *se = eol ? eol + 1 : p + strlen(p);
    res->out = bounded_copy(out, out_n > SH_DEV_MAX_STDOUT ? SH_DEV_MAX_STDOUT : out_n, SH_DEV_MAX_STDOUT);
    res->out_len = out_n > SH_DEV_MAX_STDOUT ? SH_DEV_MAX_STDOUT : out_n;
    res->out_truncated = out_n > SH_DEV_MAX_STDOUT || trunc;
    res->err = bounded_copy(se, strlen(se), SH_DEV_MAX_STDERR);
    res->err_len = res->err ? strlen(res->err) : 0;
    free(out);
    if (!res->out || !res->err) { sh_dev_result_free(res); return sh_err_set(err, "out of memory"); }
    if (code == 137 && timeout_s > 0 && res->seconds >= timeout_s - 0.5) res->timed_out = 1;
    else if (code > 128 && code < 160) res->signal = code - 128;
    else { res->exited = 1; res->exit_code = code; }
    return 0;
}

static int adb_cleanup(sh_device *d, sh_err *err)
{
    adb_impl *ai = d->impl;
    if (!ai->prepared) return 0;
    ai->prepared = false;
    char q[1100], cmd[1200];
    sh_shell_quote(d->workdir, q, sizeof q);
    snprintf(cmd, sizeof cmd, "rm -rf -- %s", q);
    d->workdir[0] = '\0';
    char *out;
    size_t len;
    int trunc;
    int rc = adb_shell(d, cmd, 30, &out, &len, &trunc, err);
    if (rc >= 0) free(out);
    return rc < 0 ? rc : 0;
}

static int adb_describe(sh_device *d, char **json_out, sh_err *err)
{
    return sh_err_set(err, "device %s: phones have no lstopo; the variant's probe mode is used", d->name);
}

static void adb_destroy(sh_device *d)
{
    free(d->impl);
    d->impl = NULL;
}

static const sh_device_ops ADB_OPS = {
    adb_prepare, adb_push, adb_run, adb_fetch, adb_cleanup, adb_describe, adb_destroy,
};

int shdev_adb_init(sh_device *d, sh_err *err)
{
    adb_impl *ai = calloc(1, sizeof *ai);
    if (!ai) return sh_err_set(err, "out of memory");
    d->impl = ai;
    d->ops = &ADB_OPS;
    return 0;
}
