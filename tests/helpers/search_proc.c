/* search_proc.c - process and file helpers for tests/test_search.c. */
#include "tests/helpers/search_proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char child_cwd[256];

void search_set_cwd(const char *dir)
{
    snprintf(child_cwd, sizeof child_cwd, "%s", dir ? dir : "");
}

static int open_out(const char *path)
{
    return open(path ? path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

pid_t search_spawn(char *const argv[], const char *out_path, const char *err_path)
{
    int out = open_out(out_path), err = open_out(err_path);
    if (out < 0 || err < 0) {
        if (out >= 0) close(out);
        if (err >= 0) close(err);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0) dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        if (child_cwd[0] && chdir(child_cwd) != 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    close(out);
    close(err);
    return pid;
}

int search_wait(pid_t pid)
{
    int st;
    if (pid < 0) return -1;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

int search_run(char *const argv[], const char *out_path, const char *err_path)
{
    return search_wait(search_spawn(argv, out_path, err_path));
}

int search_tmpdir(char path[64])
{
    snprintf(path, 64, "/tmp/sh_search_XXXXXX");
    return mkdtemp(path) ? 0 : -1;
}

char *search_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) { fclose(f); return NULL; }
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb) { free(buf); fclose(f); return NULL; }
        buf = nb;
    }
    buf[n] = 0;
    fclose(f);
    return buf;
}

void search_rmdir(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(path);
}
