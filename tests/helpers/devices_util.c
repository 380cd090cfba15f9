/* devices_util.c - real parts for the device tests (see devices_util.h): a
 * throwaway sshd from Debian's openssh-server, a scriptable fake variant for
 * fault injection, and an adb protocol peer thread standing in for a phone. */
#include "devices_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char *dt_mkdtemp(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    char *p = malloc(512);
    if (!p) return NULL;
    snprintf(p, 512, "%s/shdt-%s.XXXXXX", base, tag);
    if (!mkdtemp(p)) { free(p); return NULL; }
    return p;
}

int dt_run(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) { dup2(devnull, 0); dup2(devnull, 1); dup2(devnull, 2); }
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int dt_rm_rf(const char *path)
{
    char *argv[] = {"rm", "-rf", "--", (char *)path, NULL};
    return dt_run(argv);
}

int dt_write_file(const char *path, const char *text, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0) return -1;
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    close(fd);
    chmod(path, (mode_t)mode);
    return w == (ssize_t)n ? 0 : -1;
}

char *dt_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2) { char *q = realloc(b, cap * 2); if (!q) { free(b); b = NULL; break; } b = q; cap *= 2; }
    }
    fclose(f);
    if (b) b[n] = '\0';
    if (len) *len = n;
    return b;
}

int dt_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &l)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t ppid_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');
    int ppid = -1;
    char state;
    if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2) return -1;
    return (pid_t)ppid;
}

void dt_kill_tree(pid_t root)
{
    /* collect descendants first (breadth by repeated scans), then kill all */
    pid_t tree[512];
    int n = 0;
    tree[n++] = root;
    for (int changed = 1; changed;) {
        changed = 0;
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            pid_t pid = (pid_t)atoi(e->d_name);
            if (pid <= 0) continue;
            bool known = false;
            for (int i = 0; i < n; i++) if (tree[i] == pid) known = true;
            if (known) continue;
            pid_t pp = ppid_of(pid);
            for (int i = 0; i < n && n < 512; i++)
                if (tree[i] == pp) { tree[n++] = pid; changed = 1; break; }
        }
        if (d) closedir(d);
    }
    for (int i = 0; i < n; i++) kill(tree[i], SIGKILL);
    int st;
    waitpid(root, &st, 0);
}

/* ---- sshd ------------------------------------------------------------------------ */

static int keygen(const char *path)
{
    unlink(path);
    char *argv[] = {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "starhil-test", "-f", (char *)path, NULL};
    return dt_run(argv);
}

static int wait_port(int port, double seconds)
{
    for (double t = 0; t < seconds; t += 0.05) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons((uint16_t)port)};
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok) return 0;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int spawn_sshd(dt_sshd *s)
{
    char conf[600];
    snprintf(conf, sizeof conf, "%s/sshd_config", s->dir);
    mkdir("/run/sshd", 0755);   /* privilege separation directory sshd insists on */
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) { dup2(devnull, 0); dup2(devnull, 1); }
        char log[640];
        snprintf(log, sizeof log, "%s/sshd.log", s->dir);
        int lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (lf >= 0) dup2(lf, 2);
        execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", conf, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    if (wait_port(s->port, 10)) { dt_kill_tree(pid); s->pid = 0; return -1; }
    return 0;
}

static int write_known_hosts(const char *path, int port, const char *pubkey_file)
{
    char *pub = dt_read_file(pubkey_file, NULL);
    if (!pub) return -1;
    /* "ssh-ed25519 AAAA... comment" -> "[127.0.0.1]:PORT ssh-ed25519 AAAA..." */
    char line[2048];
    char *sp = strchr(pub, ' ');
    char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
    if (sp2) *sp2 = '\0';
    snprintf(line, sizeof line, "[127.0.0.1]:%d %s\n", port, pub);
    free(pub);
    return dt_write_file(path, line, 0600);
}

int dt_sshd_start(dt_sshd *s)
{
    memset(s, 0, sizeof s[0]);
    char *dir = dt_mkdtemp("sshd");
    if (!dir) return -1;
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    free(dir);
    s->port = dt_free_port();
    snprintf(s->host_key, sizeof s->host_key, "%s/host_key", s->dir);
    snprintf(s->other_host_key, sizeof s->other_host_key, "%s/other_host_key", s->dir);
    snprintf(s->user_key, sizeof s->user_key, "%s/user_key", s->dir);
    snprintf(s->bad_user_key, sizeof s->bad_user_key, "%s/bad_user_key", s->dir);
    snprintf(s->known_hosts, sizeof s->known_hosts, "%s/known_hosts", s->dir);
    snprintf(s->wrong_known_hosts, sizeof s->wrong_known_hosts, "%s/wrong_known_hosts", s->dir);
    const char *u = getenv("USER");
    snprintf(s->user, sizeof s->user, "%s", geteuid() == 0 ? "root" : (u ? u : "root"));
    if (keygen(s->host_key) || keygen(s->other_host_key) || keygen(s->user_key) || keygen(s->bad_user_key))
        return -1;
    char path[700], *pub;
    snprintf(path, sizeof path, "%s.pub", s->user_key);
    pub = dt_read_file(path, NULL);
    char ak[700];
    snprintf(ak, sizeof ak, "%s/authorized_keys", s->dir);
    if (!pub || dt_write_file(ak, pub, 0600)) { free(pub); return -1; }
    free(pub);
    char conf[4096];
    snprintf(conf, sizeof conf,
             "Port %d\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s/sshd.pid\n"
             "AuthorizedKeysFile %s\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
             "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
             "Subsystem sftp internal-sftp\nLogLevel ERROR\nMaxStartups 50\n",
             s->port, s->host_key, s->dir, ak);
    snprintf(path, sizeof path, "%s/sshd_config", s->dir);
    if (dt_write_file(path, conf, 0600)) return -1;
    char pubf[700];
    snprintf(pubf, sizeof pubf, "%s.pub", s->host_key);
    if (write_known_hosts(s->known_hosts, s->port, pubf)) return -1;
    snprintf(pubf, sizeof pubf, "%s.pub", s->other_host_key);
    if (write_known_hosts(s->wrong_known_hosts, s->port, pubf)) return -1;
    return spawn_sshd(s);
}

int dt_sshd_restart(dt_sshd *s)
{
    if (s->pid > 0) dt_sshd_kill(s);
    return spawn_sshd(s);
}

void dt_sshd_kill(dt_sshd *s)
{
    if (s->pid > 0) dt_kill_tree(s->pid);
    s->pid = 0;
}

static bool is_sshd(pid_t pid)
{
    char path[64], comm[64] = "";
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
    fclose(f);
    return !strncmp(comm, "sshd", 4);
}

int dt_sshd_drop_connections(dt_sshd *s)
{
    if (s->pid <= 0) return 0;
    pid_t tree[256];
    int n = 0;
    tree[n++] = s->pid;
    for (int changed = 1; changed;) {
        changed = 0;
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            pid_t pid = (pid_t)atoi(e->d_name);
            if (pid <= 0 || !is_sshd(pid)) continue;
            bool known = false;
            for (int i = 0; i < n; i++) if (tree[i] == pid) known = true;
            if (known) continue;
            pid_t pp = ppid_of(pid);
            for (int i = 0; i < n && n < 256; i++)
                if (tree[i] == pp) { tree[n++] = pid; changed = 1; break; }
        }
        if (d) closedir(d);
    }
    for (int i = 1; i < n; i++) kill(tree[i], SIGKILL);
    return n - 1;
}

int dt_sshd_restart_new_host_key(dt_sshd *s)
{
    dt_sshd_kill(s);
    char old[700], oldpub[700], pub[700];
    snprintf(old, sizeof old, "%s.old", s->host_key);
    snprintf(oldpub, sizeof oldpub, "%s.old.pub", s->host_key);
    snprintf(pub, sizeof pub, "%s.pub", s->host_key);
    if (rename(s->host_key, old) || rename(pub, oldpub) || keygen(s->host_key)) return -1;
    return spawn_sshd(s);
}

void dt_sshd_stop(dt_sshd *s)
{
    dt_sshd_kill(s);
    if (s->dir[0]) dt_rm_rf(s->dir);
    s->dir[0] = '\0';
}

/* ---- fake variant -------------------------------------------------------------------- */

int dt_fake_variant(const char *path, const char *hash, const char *behaviour, const char *marker,
                    double decode_ms, int sleep_s)
{
    char pre[1024] = "";
    const char *m = marker ? marker : "/nonexistent";
    if (!strcmp(behaviour, "crash")) snprintf(pre, sizeof pre, "echo 'variant: about to crash' >&2; kill -SEGV $$\n");
    else if (!strcmp(behaviour, "oom")) snprintf(pre, sizeof pre, "[ \"$mode\" = bench ] && { echo 'allocating weights' >&2; kill -KILL $$; }\n");
    else if (!strcmp(behaviour, "badinput")) snprintf(pre, sizeof pre, "[ \"$mode\" = bench ] && { echo 'bench: --depth too deep' >&2; exit 1; }\n");
    else if (!strcmp(behaviour, "garbage")) snprintf(pre, sizeof pre, "[ \"$mode\" = bench ] && { echo '{\"mode\":\"bench\", oops'; exit 0; }\n");
    else if (!strcmp(behaviour, "huge")) snprintf(pre, sizeof pre, "[ \"$mode\" = bench ] && { head -c 9437184 /dev/zero | tr '\\0' 'x'; exit 0; }\n");
    else if (!strcmp(behaviour, "hang")) snprintf(pre, sizeof pre, "[ \"$mode\" = bench ] && sleep %d\n", sleep_s);
    else if (!strcmp(behaviour, "flaky"))
        snprintf(pre, sizeof pre, "if [ ! -e '%s' ]; then : > '%s'; echo 'variant: flaky failure' >&2; kill -BUS $$; fi\n", m, m);
    else if (!strcmp(behaviour, "twocpus"))   /* two equal-ranked CPUs; CPU 1 decodes 1.6x slower; each
                                                  invocation's --cpus appended to the marker */
        snprintf(pre, sizeof pre,
                 "if [ \"$mode\" = probe ]; then echo '{\"mode\":\"probe\",\"machine\":\"fake\",\"model\":\"fake\","
                 "\"n_cpus\":2,\"cpus\":[{\"id\":0,\"online\":true,\"max_khz\":-1},{\"id\":1,\"online\":true,"
                 "\"max_khz\":-1}],\"clusters\":[{\"max_khz\":-1,\"cpus\":[0,1]}],\"caches\":[],"
                 "\"mem_total_bytes\":1000,\"mem_available_bytes\":500}'; exit 0; fi\n"
                 "[ \"$mode\" = bench ] && { echo \"${cpus:-none}\" >> '%s'; [ \"$cpus\" = 1 ] && k=1.6; }\n", m);
    else if (!strcmp(behaviour, "slowfirst"))
        snprintf(pre, sizeof pre, "if [ \"$mode\" = bench ] && [ ! -e '%s' ]; then : > '%s'; sleep %d; fi\n", m, m, sleep_s);
    const char *h = !strcmp(behaviour, "wronghash") ? "00000000deadbeef" : hash;
    char *script = malloc(8192);
    if (!script) return -1;
    snprintf(script, 8192,
        "#!/bin/sh\n"
        "# fake variant for starhil device tests (behaviour: %s)\n"
        "mode=$1; [ $# -gt 0 ] && shift\n"
        "reps=5; gen=8; prompt=16\n"
        "while [ $# -gt 0 ]; do case \"$1\" in --reps) reps=$2; shift;; --gen) gen=$2; shift;; "
        "--prompt) prompt=$2; shift;; --cpus) cpus=$2; shift;; esac; shift; done\n"
        "%s"
        "if [ \"$mode\" = probe ]; then\n"
        "  echo '{\"mode\":\"probe\",\"machine\":\"fake\",\"model\":\"fake cpu\",\"n_cpus\":2,"
        "\"cpus\":[{\"id\":0,\"online\":true,\"max_khz\":2000000,\"cur_khz\":1500000,\"evil\":\"dropped\"}],"
        "\"clusters\":[{\"max_khz\":2000000,\"cpus\":[0,1]}],\"caches\":[],\"mem_total_bytes\":1000,"
        "\"mem_available_bytes\":500,\"thermal\":[{\"zone\":\"thermal_zone0\",\"type\":\"cpu\",\"millicelsius\":41000}],"
        "\"freqs_khz\":[1500000,1500000]}'\n"
        "  exit 0\n"
        "fi\n"
        "[ \"$mode\" = bench ] || { echo \"usage: variant bench|probe\" >&2; exit 2; }\n"
        "awk -v reps=\"$reps\" -v gen=\"$gen\" -v c=%.6f -v k=\"${k:-1}\" -v h=%s 'BEGIN {\n"
        "  c = c * k;\n"
        "  printf \"{\\\"mode\\\":\\\"bench\\\",\\\"genome_hash\\\":\\\"%%s\\\",\", h;\n"
        "  printf \"\\\"build\\\":{\\\"target\\\":\\\"fake\\\",\\\"simd\\\":\\\"scalar\\\",\\\"cc\\\":\\\"sh\\\",\\\"flags\\\":\\\"\\\"},\";\n"
        "  printf \"\\\"cpu\\\":{\\\"model\\\":\\\"fake\\\",\\\"n_cpus\\\":2,\\\"cpus_used\\\":\\\"0-1\\\"},\";\n"
        "  printf \"\\\"settings\\\":{\\\"reps\\\":%%d,\\\"gen\\\":%%d},\", reps, gen;\n"
        "  printf \"\\\"prefill_tok_s\\\":1000.0,\\\"decode_tok_s\\\":%%.3f,\\\"ttft_ms\\\":16.0,\", 1000.0 / c;\n"
        "  printf \"\\\"prefill_ms\\\":[\"; for (r = 0; r < reps; r++) printf \"%%s%%.3f\", (r ? \",\" : \"\"), 16.0 + r * 0.01; printf \"],\";\n"
        "  printf \"\\\"decode_ms\\\":{\\\"median\\\":%%.3f,\\\"p90\\\":%%.3f,\\\"samples\\\":[\", c, c;\n"
        "  n = reps * gen; for (i = 0; i < n; i++) printf \"%%s%%.4f\", (i ? \",\" : \"\"), c * (1 + ((i * 7) %% 11 - 5) * 0.001);\n"
        "  printf \"]},\\\"peak_rss_bytes\\\":1048576,\\\"weight_bytes\\\":4096,\\\"kv_bytes\\\":512,\\\"conv_state_bytes\\\":256,\";\n"
        "  printf \"\\\"share\\\":{\\\"prefill\\\":{\\\"conv\\\":0.2,\\\"attention\\\":0.2,\\\"swiglu\\\":0.4,\\\"moe\\\":0.0,\\\"head\\\":0.2},\";\n"
        "  printf \"\\\"decode\\\":{\\\"conv\\\":0.25,\\\"attention\\\":0.25,\\\"swiglu\\\":0.3,\\\"moe\\\":0.0,\\\"head\\\":0.2}}}\\n\";\n"
        "}'\n",
        behaviour, pre, decode_ms, h);
    int rc = dt_write_file(path, script, 0755);
    free(script);
    return rc;
}

int dt_replay_variant(const char *path, const char *hash, const char *shape, const char *scales,
                      double wait_frac, const char *counter)
{
    size_t cap = 8192 + strlen(shape) + strlen(scales) + 2 * strlen(counter);
    char *script = malloc(cap);
    if (!script) return -1;
    snprintf(script, cap,
        "#!/bin/sh\n"
        "# replaying variant for starhil tests: recorded token shape, scaled per repetition\n"
        "mode=$1; [ $# -gt 0 ] && shift\n"
        "reps=3; gen=16\n"
        "while [ $# -gt 0 ]; do case \"$1\" in --reps) reps=$2; shift;; --gen) gen=$2; shift;; esac; shift; done\n"
        "if [ \"$mode\" = probe ]; then\n"
        "  echo '{\"mode\":\"probe\",\"machine\":\"replay\",\"model\":\"replay cpu\",\"n_cpus\":2,"
        "\"cpus\":[{\"id\":0,\"online\":true,\"max_khz\":2000000,\"cur_khz\":2000000}],"
        "\"clusters\":[{\"max_khz\":2000000,\"cpus\":[0,1]}],\"caches\":[],\"mem_total_bytes\":1000,"
        "\"mem_available_bytes\":500,\"thermal\":[],\"freqs_khz\":[2000000,2000000],"
        "\"load\":{\"busy_cpus\":0,\"procs_running\":1,\"load1\":0.1}}'\n"
        "  exit 0\n"
        "fi\n"
        "[ \"$mode\" = bench ] || { echo \"usage: variant bench|probe\" >&2; exit 2; }\n"
        "k=$(cat '%s' 2>/dev/null || echo 0)\n"
        "echo $((k + reps)) > '%s'\n"
        "awk -v reps=\"$reps\" -v gen=\"$gen\" -v k0=\"$k\" -v h=%s -v w=%.6f -v shape='%s' -v scales='%s' 'BEGIN {\n"
        "  ns = split(shape, S, \" \"); nc = split(scales, C, \" \");\n"
        "  if (gen > ns) { print \"replay: --gen above the recorded tokens\" > \"/dev/stderr\"; exit 1 }\n"
        "  printf \"{\\\"mode\\\":\\\"bench\\\",\\\"genome_hash\\\":\\\"%%s\\\",\\\"build\\\":{},\\\"cpu\\\":{\\\"n_cpus\\\":2},\", h;\n"
        "  printf \"\\\"prefill_tok_s\\\":1000,\\\"decode_tok_s\\\":1000,\\\"ttft_ms\\\":16,\\\"prefill_ms\\\":[\";\n"
        "  for (r = 0; r < reps; r++) printf \"%%s16\", (r ? \",\" : \"\");\n"
        "  printf \"],\\\"decode_ms\\\":{\\\"median\\\":1,\\\"samples\\\":[\";\n"
        "  for (r = 0; r < reps; r++) { c = C[(k0 + r) %% nc + 1];\n"
        "    for (i = 0; i < gen; i++) printf \"%%s%%.6f\", (r + i ? \",\" : \"\"), S[i + 1] * c }\n"
        "  printf \"]},\\\"peak_rss_bytes\\\":1,\\\"weight_bytes\\\":1,\\\"kv_bytes\\\":1,\\\"conv_state_bytes\\\":1,\";\n"
        "  printf \"\\\"share\\\":{\\\"prefill\\\":{\\\"conv\\\":1,\\\"attention\\\":0,\\\"swiglu\\\":0,\\\"moe\\\":0,\\\"head\\\":0},\";\n"
        "  printf \"\\\"decode\\\":{\\\"conv\\\":1,\\\"attention\\\":0,\\\"swiglu\\\":0,\\\"moe\\\":0,\\\"head\\\":0}},\\\"state\\\":[\";\n"
        "  for (r = 0; r < reps; r++)\n"
        "    printf \"%%s{\\\"wall_s\\\":1,\\\"wait_s\\\":%%.6f,\\\"self_cpu_s\\\":1,\\\"other_cpus\\\":0,\\\"procs_running\\\":1,\\\"load1\\\":0.1,\\\"freq_khz\\\":2000000,\\\"temp_mc\\\":40000}\", (r ? \",\" : \"\"), w;\n"
        "  printf \"]}\\n\" }'\n",
        counter, counter, hash, wait_frac, shape, scales);
    int rc = dt_write_file(path, script, 0755);
    free(script);
    return rc;
}

/* ---- adb peer ----------------------------------------------------------------------------- */

static int rd(int fd, void *b, size_t n)
{
    char *p = b;
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0) { if (r < 0 && errno == EINTR) continue; return -1; }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int wr(int fd, const void *b, size_t n)
{
    const char *p = b;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) { if (w < 0 && errno == EINTR) continue; return -1; }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fail_msg(int fd, const char *msg)
{
    char h[32];
    snprintf(h, sizeof h, "FAIL%04x", (unsigned)(strlen(msg) & 0xffff));
    return wr(fd, h, 8) || wr(fd, msg, strlen(msg));
}

static char *read_request(int fd)
{
    char h[5] = {0};
    if (rd(fd, h, 4)) return NULL;
    unsigned len = (unsigned)strtoul(h, NULL, 16);
    char *s = malloc(len + 1);
    if (!s || rd(fd, s, len)) { free(s); return NULL; }
    s[len] = '\0';
    return s;
}

static void le32(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24); }
static uint32_t get32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static void peer_shell(int fd, const char *cmd)
{
    wr(fd, "OKAY", 4);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st;
    if (pid > 0) while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
}

static void peer_sync(int fd)
{
    wr(fd, "OKAY", 4);
    for (;;) {
        unsigned char h[8];
        if (rd(fd, h, 8)) return;
        uint32_t len = get32(h + 4);
        if (len > 4096) return;
        char path[4097];
        if (rd(fd, path, len)) return;
        path[len] = '\0';
        if (!memcmp(h, "SEND", 4)) {
            char *comma = strrchr(path, ',');
            unsigned mode = comma ? (unsigned)strtoul(comma + 1, NULL, 10) & 0777 : 0644;
            if (comma) *comma = '\0';
            int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
            char *buf = malloc(65536);
            for (;;) {
                if (rd(fd, h, 8)) { free(buf); if (out >= 0) close(out); return; }
                uint32_t n = get32(h + 4);
                if (!memcmp(h, "DONE", 4)) break;
                if (memcmp(h, "DATA", 4) || n > 65536 || rd(fd, buf, n)) { free(buf); if (out >= 0) close(out); return; }
                if (out >= 0 && write(out, buf, n) != (ssize_t)n) { close(out); out = -1; }
            }
            free(buf);
            if (out < 0) {
                const char *msg = "couldn't create file";
                unsigned char f[8];
                memcpy(f, "FAIL", 4);
                le32(f + 4, (uint32_t)strlen(msg));
                wr(fd, f, 8);
                wr(fd, msg, strlen(msg));
            } else {
                close(out);
                chmod(path, mode);
                unsigned char ok[8] = {'O', 'K', 'A', 'Y', 0, 0, 0, 0};
                wr(fd, ok, 8);
            }
        } else if (!memcmp(h, "RECV", 4)) {
            int in = open(path, O_RDONLY);
            unsigned char d[8];
            if (in < 0) {
                const char *msg = "No such file or directory";
                memcpy(d, "FAIL", 4);
                le32(d + 4, (uint32_t)strlen(msg));
                wr(fd, d, 8);
                wr(fd, msg, strlen(msg));
                continue;
            }
            char *buf = malloc(65536);
            ssize_t n;
            while ((n = read(in, buf, 65536)) > 0) {
                memcpy(d, "DATA", 4);
                le32(d + 4, (uint32_t)n);
                wr(fd, d, 8);
                wr(fd, buf, (size_t)n);
            }
            free(buf);
            close(in);
            memcpy(d, "DONE", 4);
            le32(d + 4, 0);
            wr(fd, d, 8);
        } else if (!memcmp(h, "STAT", 4)) {
            struct stat st;
            unsigned char r[16] = {'S', 'T', 'A', 'T'};
            if (stat(path, &st) == 0) {
                le32(r + 4, (uint32_t)st.st_mode);
                le32(r + 8, (uint32_t)st.st_size);
                le32(r + 12, (uint32_t)st.st_mtime);
            }
            wr(fd, r, 16);
        } else {
            return;   /* QUIT or anything else */
        }
    }
}

static void peer_serve(dt_adb_peer *p, int fd)
{
    char *req = read_request(fd);
    if (!req) return;
    if (!strcmp(req, "host:version")) {
        wr(fd, "OKAY00040029", 12);
    } else if (!strcmp(req, "host:devices")) {
        char line[128], out[160];
        snprintf(line, sizeof line, "%s\tdevice\n", p->serial);
        snprintf(out, sizeof out, "OKAY%04zx%s", strlen(line), line);
        wr(fd, out, strlen(out));
    } else if (!strncmp(req, "host:transport:", 15) || !strcmp(req, "host:transport-any")) {
        if (req[14] == ':' && strcmp(req + 15, p->serial)) {
            char msg[200];
            snprintf(msg, sizeof msg, "device '%.100s' not found", req + 15);
            fail_msg(fd, msg);
        } else {
            wr(fd, "OKAY", 4);
            char *svc = read_request(fd);
            if (svc && !strncmp(svc, "shell:", 6)) peer_shell(fd, svc + 6);
            else if (svc && !strcmp(svc, "sync:")) peer_sync(fd);
            else if (svc) fail_msg(fd, "unknown service");
            free(svc);
        }
    } else {
        fail_msg(fd, "unknown host service");
    }
    free(req);
}

static void *peer_main(void *arg)
{
    dt_adb_peer *p = arg;
    while (!p->stop) {
        struct pollfd pf = {.fd = p->listen_fd, .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0) continue;
        int fd = accept(p->listen_fd, NULL, NULL);
        if (fd < 0) continue;
        p->connections++;
        peer_serve(p, fd);
        close(fd);
    }
    return NULL;
}

int dt_adb_peer_start(dt_adb_peer *p, const char *serial)
{
    memset(p, 0, sizeof *p);
    snprintf(p->serial, sizeof p->serial, "%s", serial);
    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(p->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    socklen_t l = sizeof a;
    if (bind(p->listen_fd, (struct sockaddr *)&a, sizeof a) || listen(p->listen_fd, 8) ||
        getsockname(p->listen_fd, (struct sockaddr *)&a, &l)) {
        close(p->listen_fd);
        return -1;
    }
    p->port = ntohs(a.sin_port);
    return pthread_create(&p->thread, NULL, peer_main, p) ? -1 : 0;
}

void dt_adb_peer_stop(dt_adb_peer *p)
{
    p->stop = 1;
    pthread_join(p->thread, NULL);
    close(p->listen_fd);
}
