/* proc.c - fork/exec with pipes, poll-based capture, timeout and kill (see proc.h). */
#include "util/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct capbuf {
    char *data;
    size_t len, cap, limit;
    int truncated;
    int keep_tail;
} capbuf;

static int capbuf_add(capbuf *b, const char *src, size_t n)
{
    if (b->keep_tail && b->len + n > b->limit) {
        b->truncated = 1;
        if (n >= b->limit) { src += n - b->limit; n = b->limit; b->len = 0; }
        else { size_t drop = b->len + n - b->limit; memmove(b->data, b->data + drop, b->len - drop); b->len -= drop; }
    } else if (!b->keep_tail && b->len + n > b->limit) {
        b->truncated = 1;
        n = b->limit - b->len;
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n + 1) nc *= 2;
        char *p = realloc(b->data, nc);
        if (!p) return -1;
        b->data = p; b->cap = nc;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sh_proc_run(char *const argv[], const sh_proc_opts *opts, sh_proc_result *res, sh_err *err)
{
    sh_proc_opts def = {0};
    if (!opts) opts = &def;
    memset(res, 0, sizeof *res);
    int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
    if (pipe2(out_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC) || pipe2(in_p, O_CLOEXEC)) {
        sh_err_set(err, "%s: pipe: %s", argv[0], strerror(errno));
        goto fail_fds;
    }
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        sh_err_set(err, "%s: fork: %s", argv[0], strerror(errno));
        goto fail_fds;
    }
    if (pid == 0) {
        setpgid(0, 0);
        dup2(in_p[0], 0); dup2(out_p[1], 1); dup2(err_p[1], 2);
        if (opts->cwd && chdir(opts->cwd) != 0) { dprintf(2, "chdir %s: %s\n", opts->cwd, strerror(errno)); _exit(127); }
        if (opts->envp) execvpe(argv[0], argv, opts->envp);
        else execvp(argv[0], argv);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    close(in_p[0]); close(out_p[1]); close(err_p[1]);
    in_p[0] = out_p[1] = err_p[1] = -1;
    fcntl(in_p[1], F_SETFL, O_NONBLOCK);

    capbuf out = { .limit = opts->max_out ? opts->max_out : (16u << 20) };
    capbuf eb = { .limit = opts->max_err ? opts->max_err : (64u << 10), .keep_tail = 1 };
    size_t in_off = 0;
    if (!opts->stdin_data || opts->stdin_len == 0) { close(in_p[1]); in_p[1] = -1; }
    int open_out = 1, open_err = 1;
    while (open_out || open_err) {
        struct pollfd pf[3];
        int n = 0, io = -1, ie = -1, ii = -1;
        if (open_out) { pf[n].fd = out_p[0]; pf[n].events = POLLIN; io = n++; }
        if (open_err) { pf[n].fd = err_p[0]; pf[n].events = POLLIN; ie = n++; }
        if (in_p[1] >= 0) { pf[n].fd = in_p[1]; pf[n].events = POLLOUT; ii = n++; }
        int wait_ms = -1;
        if (opts->timeout_s > 0) {
            double left = opts->timeout_s - (now_s() - t0);
            if (left <= 0) { res->timed_out = 1; kill(-pid, SIGKILL); break; }
            wait_ms = (int)(left * 1000) + 1;
        }
        int r = poll(pf, n, wait_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) break;
        char buf[65536];
        if (io >= 0 && pf[io].revents) {
            ssize_t k = read(out_p[0], buf, sizeof buf);
            if (k <= 0) open_out = 0; else capbuf_add(&out, buf, (size_t)k);
        }
        if (ie >= 0 && pf[ie].revents) {
            ssize_t k = read(err_p[0], buf, sizeof buf);
            if (k <= 0) open_err = 0; else capbuf_add(&eb, buf, (size_t)k);
        }
        if (ii >= 0 && pf[ii].revents) {
            ssize_t k = write(in_p[1], opts->stdin_data + in_off, opts->stdin_len - in_off);
            if (k > 0) in_off += (size_t)k;
            if (k < 0 && errno != EAGAIN) in_off = opts->stdin_len;
            if (in_off >= opts->stdin_len) { close(in_p[1]); in_p[1] = -1; }
        }
    }
    if (in_p[1] >= 0) { close(in_p[1]); in_p[1] = -1; }
    close(out_p[0]); close(err_p[0]);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    /* the output pipes closed; the child may still be running (it closed them
     * itself), so the timeout still applies while we wait for it */
    for (;;) {
        pid_t w = wait4(pid, &status, WNOHANG, &ru);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) break;
        if (opts->timeout_s > 0 && now_s() - t0 > opts->timeout_s && !res->timed_out) {
            res->timed_out = 1; kill(-pid, SIGKILL);
        }
        usleep(2000);
    }
    res->seconds = now_s() - t0;
    res->max_rss_kb = ru.ru_maxrss;
    if (WIFEXITED(status)) { res->exited = 1; res->exit_code = WEXITSTATUS(status); }
    else if (WIFSIGNALED(status)) res->signal = WTERMSIG(status);
    if (!out.data) capbuf_add(&out, "", 0);
    if (!eb.data) capbuf_add(&eb, "", 0);
    res->out = out.data; res->out_len = out.len; res->out_truncated = out.truncated;
    res->err = eb.data; res->err_len = eb.len; res->err_truncated = eb.truncated;
    return 0;

fail_fds:
    for (int i = 0; i < 2; i++) {
        if (in_p[i] >= 0) close(in_p[i]);
        if (out_p[i] >= 0) close(out_p[i]);
        if (err_p[i] >= 0) close(err_p[i]);
    }
    return -1;
}

void sh_proc_result_free(sh_proc_result *res)
{
    free(res->out);
    free(res->err);
    res->out = res->err = NULL;
}

void sh_proc_describe(const sh_proc_result *res, char *buf, size_t cap)
{
    if (res->timed_out) snprintf(buf, cap, "timed out after %.1f s", res->seconds);
    else if (res->signal) snprintf(buf, cap, "killed by signal %d (%s)", res->signal, strsignal(res->signal));
    else snprintf(buf, cap, "exit %d", res->exit_code);
}
