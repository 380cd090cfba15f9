/* proc.c - fork/exec under a supervisor with pipes, poll-based capture,
 * timeout and kill of the whole process group (see proc.h). */
#include "util/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

/* ---- the supervisor ---------------------------------------------------------
 *
 * Why a supervisor process and not just PR_SET_PDEATHSIG on the program: the
 * parent-death signal reaches only the direct child (cc), not what it started
 * (cc1, as, collect2, ld), and a program must not be left running when the
 * caller is killed.  So:
 *
 *   caller ──fork──> S (supervisor, own process group)
 *                     └─fork──> P (the program, process group P) ──> cc1, as ...
 *
 * S asks the kernel for SIGTERM when the caller's thread dies
 * (PR_SET_PDEATHSIG; the caller's thread blocks in sh_proc_run for S's whole
 * life, so that means the process died) and checks getppid() afterwards for
 * a death before the prctl.  P gets SIGKILL if S dies.  S waits with
 * sigwaitinfo for either P's end (SIGCHLD) or a kill request (SIGTERM from the
 * parent-death signal or from the caller's timeout, or SIGHUP/SIGINT/SIGQUIT
 * sent to S itself), then SIGKILLs process group P, which takes every
 * descendant that did not leave the group (compilers and variants do not).
 * Group P is killed while P is still an unreaped zombie, so the id cannot
 * have been reused.  On a kill request S also waits for the group to be gone
 * and removes opts->remove_on_death.  S reports P's status and rusage
 * through a pipe, since S itself then ends.  S only makes async-signal-safe
 * calls (the caller may be multi-threaded); it is its own group leader so a
 * terminal's Ctrl-C, sent to the caller's group, does not reach it. */

typedef struct proc_report {
    int started;        /* 1: P was forked                         */
    int status;         /* wait status of P                        */
    long maxrss_kb;
    int fork_errno;
} proc_report;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int move_high(int fd)
{
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    return n;
}

static void close_from(int lo)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lo, ~0u, 0) == 0) return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (int fd = lo; fd < max; fd++) close(fd);
}

static void write_report(int fd, const proc_report *r)
{
    ssize_t w = write(fd, r, sizeof *r);   /* < PIPE_BUF: atomic */
    (void)w;
}

/* Kills process group pg and waits (bounded) until none of it is left. */
static void kill_group_and_wait(pid_t pg)
{
    kill(-pg, SIGKILL);
    for (int i = 0; i < 500 && kill(-pg, 0) == 0; i++) {
        /* reap P if it is ours, so the group can empty */
        int st;
        waitpid(pg, &st, WNOHANG);
        sleep_ms(4);
    }
}

static _Noreturn void supervise(char *const argv[], const sh_proc_opts *opts, pid_t caller,
                                const sigset_t *caller_mask, int fd_in, int fd_out, int fd_err,
                                int fd_rep)
{
    setpgid(0, 0);
    sigset_t waitset;
    sigemptyset(&waitset);
    sigaddset(&waitset, SIGCHLD);
    sigaddset(&waitset, SIGTERM);
    sigaddset(&waitset, SIGHUP);
    sigaddset(&waitset, SIGINT);
    sigaddset(&waitset, SIGQUIT);
    sigprocmask(SIG_BLOCK, &waitset, NULL);
    /* default dispositions: a handler inherited from the caller must not run here */
    signal(SIGCHLD, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    /* fds: 0,1,2 for P, 3 the report pipe, nothing else (other threads'
     * pipes must not be held open by us) */
    int hi[4] = {move_high(fd_in), move_high(fd_out), move_high(fd_err), move_high(fd_rep)};
    if (hi[0] < 0 || hi[1] < 0 || hi[2] < 0 || hi[3] < 0) _exit(127);
    dup2(hi[0], 0); dup2(hi[1], 1); dup2(hi[2], 2); dup2(hi[3], 3);
    fcntl(3, F_SETFD, FD_CLOEXEC);
    close_from(4);
    proc_report rep = {0};
    if (getppid() != caller) _exit(0);   /* the caller died before the prctl */
    pid_t self = getpid();
    pid_t p = fork();
    if (p < 0) {
        rep.fork_errno = errno;
        write_report(3, &rep);
        _exit(0);
    }
    if (p == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != self) _exit(127);    /* S already gone */
        sigprocmask(SIG_SETMASK, caller_mask, NULL);
        if (opts->cwd && chdir(opts->cwd) != 0) { dprintf(2, "chdir %s: %s\n", opts->cwd, strerror(errno)); _exit(127); }
        if (opts->envp) execvpe(argv[0], argv, opts->envp);
        else execvp(argv[0], argv);
        int e = errno;
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(e));
        _exit(e == ENOENT || e == ENOTDIR ? 127 : 126);
    }
    setpgid(p, p);   /* both sides, so the group exists before anyone kills it */
    rep.started = 1;
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&waitset, &si);
        if (sig < 0) continue;
        if (sig == SIGCHLD) {
            siginfo_t wi;
            memset(&wi, 0, sizeof wi);
            if (waitid(P_PID, (id_t)p, &wi, WEXITED | WNOHANG | WNOWAIT) != 0 || wi.si_pid != p) continue;
            kill(-p, SIGKILL);   /* P is a zombie: the group id is still P's */
            struct rusage ru;
            memset(&ru, 0, sizeof ru);
            int st = 0;
            while (wait4(p, &st, 0, &ru) < 0 && errno == EINTR) {}
            rep.status = st;
            rep.maxrss_kb = ru.ru_maxrss;
            write_report(3, &rep);
            _exit(0);
        }
        /* the caller died, timed out, or asked: end everything, remove the
         * program's temporary outputs */
        kill_group_and_wait(p);
        for (const char *const *r = opts->remove_on_death; r && *r; r++) sh_proc_remove_tree(*r);
        rep.status = SIGKILL;   /* as a wait status: killed by SIGKILL */
        write_report(3, &rep);
        _exit(0);
    }
}

int sh_proc_run(char *const argv[], const sh_proc_opts *opts, sh_proc_result *res, sh_err *err)
{
    sh_proc_opts def = {0};
    if (!opts) opts = &def;
    memset(res, 0, sizeof *res);
    int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, rep_p[2] = {-1, -1};
    if (pipe2(out_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC) || pipe2(in_p, O_CLOEXEC) || pipe2(rep_p, O_CLOEXEC)) {
        sh_err_set(err, "%s: pipe: %s", argv[0], strerror(errno));
        goto fail_fds;
    }
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    pid_t caller = getpid();
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        sh_err_set(err, "%s: fork: %s", argv[0], strerror(errno));
        goto fail_fds;
    }
    if (pid == 0) supervise(argv, opts, caller, &mask, in_p[0], out_p[1], err_p[1], rep_p[1]);
    setpgid(pid, pid);
    close(in_p[0]); close(out_p[1]); close(err_p[1]); close(rep_p[1]);
    in_p[0] = out_p[1] = err_p[1] = rep_p[1] = -1;
    fcntl(in_p[1], F_SETFL, O_NONBLOCK);

    capbuf out = { .limit = opts->max_out ? opts->max_out : (16u << 20) };
    capbuf eb = { .limit = opts->max_err ? opts->max_err : (64u << 10), .keep_tail = 1 };
    size_t in_off = 0;
    double kill_sent = 0;
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
            if (left <= 0) {
                /* the supervisor kills the program's whole group and ends */
                res->timed_out = 1;
                kill(pid, SIGTERM);
                kill_sent = now_s();
                break;
            }
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
    /* the output pipes closed; the program may still be running (it closed
     * them itself), so the timeout still applies while we wait for it */
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) break;
        if (opts->timeout_s > 0 && now_s() - t0 > opts->timeout_s && !res->timed_out) {
            res->timed_out = 1;
            kill(pid, SIGTERM);
            kill_sent = now_s();
        }
        /* the supervisor does not answer: end it and the program */
        if (kill_sent > 0 && now_s() - kill_sent > 5) { kill(pid, SIGKILL); kill_sent = now_s(); }
        usleep(2000);
    }
    proc_report rep;
    memset(&rep, 0, sizeof rep);
    ssize_t got = read(rep_p[0], &rep, sizeof rep);
    close(rep_p[0]);
    rep_p[0] = -1;
    res->seconds = now_s() - t0;
    if (got == (ssize_t)sizeof rep && !rep.started && rep.fork_errno) {
        sh_err_set(err, "%s: fork: %s", argv[0], strerror(rep.fork_errno));
        capbuf_add(&out, "", 0);
        capbuf_add(&eb, "", 0);
        free(out.data);
        free(eb.data);
        return -1;
    }
    if (got == (ssize_t)sizeof rep) { status = rep.status; res->max_rss_kb = rep.maxrss_kb; }
    else status = SIGKILL;   /* the supervisor itself was killed */
    if (WIFEXITED(status)) { res->exited = 1; res->exit_code = WEXITSTATUS(status); }
    else if (WIFSIGNALED(status)) res->signal = WTERMSIG(status);
    if (res->timed_out) { res->exited = 0; res->exit_code = 0; }
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
        if (rep_p[i] >= 0) close(rep_p[i]);
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

/* One level of directory entries through getdents64 into a stack buffer: no
 * allocation, so it is safe in the supervisor (a fork of a threaded caller). */
struct sh_dirent64 {
    unsigned long long d_ino;
    long long d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Empties directory fd (recursively, depth-bounded); closes fd. */
static void empty_dir_fd(int fd, int depth)
{
    char buf[4096] __attribute__((aligned(8)));
    for (int round = 0; round < 100000; round++) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0) break;
        for (long off = 0; off < n;) {
            struct sh_dirent64 *e = (struct sh_dirent64 *)(void *)(buf + off);
            off += e->d_reclen;
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            if (unlinkat(fd, e->d_name, 0) == 0 || errno == ENOENT) continue;
            if (depth <= 0) continue;
            int sub = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
            if (sub < 0) continue;
            empty_dir_fd(sub, depth - 1);
            unlinkat(fd, e->d_name, AT_REMOVEDIR);
        }
    }
    close(fd);
}

int sh_proc_remove_tree(const char *path)
{
    if (unlink(path) == 0 || errno == ENOENT) return 0;
    if (errno != EISDIR && errno != EPERM) return -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    empty_dir_fd(fd, 16);
    return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
}

int sh_proc_pid_dead(long pid)
{
    if (pid <= 1 || pid > 0x7fffffffL) return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int sh_proc_guard_start(const char *path, sh_proc_guard *g, sh_err *err)
{
    g->fd = -1;
    g->pid = -1;
    int p[2];
    if (pipe2(p, O_CLOEXEC)) return sh_err_set(err, "guard for %s: pipe: %s", path, strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]); close(p[1]);
        return sh_err_set(err, "guard for %s: fork: %s", path, strerror(errno));
    }
    if (pid == 0) {
        /* own process group: a terminal's Ctrl-C for the caller does not end
         * the guard before the caller; hold no other descriptor, so no other
         * guard's or program's pipe stays open because of us */
        setpgid(0, 0);
        int r = move_high(p[0]);
        if (r < 0) _exit(1);
        dup2(r, 3);
        close_from(4);
        char c;
        for (;;) {
            ssize_t n = read(3, &c, 1);
            if (n == 0 || (n < 0 && errno != EINTR)) break;
        }
        sh_proc_remove_tree(path);
        _exit(0);
    }
    close(p[0]);
    g->fd = p[1];
    g->pid = pid;
    return 0;
}

void sh_proc_guard_end(sh_proc_guard *g)
{
    if (g->fd >= 0) close(g->fd);
    if (g->pid > 0) {
        int st;
        while (waitpid(g->pid, &st, 0) < 0 && errno == EINTR) {}
    }
    g->fd = -1;
    g->pid = -1;
}
