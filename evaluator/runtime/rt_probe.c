/* rt_probe.c - `variant probe`: describes the device as JSON (CPUs and their
 * frequencies, clusters by cpuinfo_max_freq, caches, memory, thermal zones).
 * Every sysfs/procfs read is optional: Android hides many of these files. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define RT_NO_MODEL   /* the same object for every genome (rt.h) */
#include "rt.h"
#include "rt_procstat.h"

void rt_json_str(FILE *f, const char *s);

#define MAX_CPUS 1024

/* first line of a small file, trimmed; 0 on success */
static int read_line(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *r = fgets(buf, (int)cap, f);
    fclose(f);
    if (!r) return -1;
    buf[strcspn(buf, "\r\n")] = 0;
    return 0;
}

static long long read_ll(const char *path, long long dflt)
{
    char b[64];
    if (read_line(path, b, sizeof b)) return dflt;
    char *end;
    long long v = strtoll(b, &end, 10);
    return end == b ? dflt : v;
}

void rt_cpu_model(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10) || !strncmp(line, "Hardware", 8) || !strncmp(line, "CPU part", 8)) {
            char *c = strchr(line, ':');
            if (!c) continue;
            c++;
            while (*c == ' ' || *c == '\t') c++;
            c[strcspn(c, "\r\n")] = 0;
            snprintf(buf, cap, "%s", c);
            if (strncmp(line, "CPU part", 8)) break;
        }
    }
    fclose(f);
}

static long long size_with_unit(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s) return -1;
    if (*end == 'K') v *= 1024;
    else if (*end == 'M') v *= 1024 * 1024;
    return v;
}

static void print_caches(int ncpu)
{
    printf(",\"caches\":[");
    int first = 1;
    char seen[64][400];
    int nseen = 0;
    for (int c = 0; c < ncpu; c++) {
        for (int i = 0; i < 16; i++) {
            char path[256], level[32], type[64], size[64], shared[256], key[400];
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/level", c, i);
            if (read_line(path, level, sizeof level)) break;
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/type", c, i);
            if (read_line(path, type, sizeof type)) snprintf(type, sizeof type, "Unknown");
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/size", c, i);
            if (read_line(path, size, sizeof size)) continue;
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/shared_cpu_list", c, i);
            if (read_line(path, shared, sizeof shared)) snprintf(shared, sizeof shared, "%d", c);
            snprintf(key, sizeof key, "%s|%s|%.200s", level, type, shared);
            int dup = 0;
            for (int k = 0; k < nseen; k++) dup |= !strcmp(seen[k], key);
            if (dup) continue;
            if (nseen < 64) snprintf(seen[nseen++], sizeof seen[0], "%s", key);
            printf("%s{\"level\":%d,\"type\":", first ? "" : ",", atoi(level));
            rt_json_str(stdout, type);
            printf(",\"size_bytes\":%lld,\"cpus\":", size_with_unit(size));
            rt_json_str(stdout, shared);
            printf("}");
            first = 0;
        }
    }
    printf("]");
}

static void print_mem(void)
{
    long long total = -1, avail = -1;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if (!strncmp(line, "MemTotal:", 9)) total = strtoll(line + 9, NULL, 10) * 1024;
            if (!strncmp(line, "MemAvailable:", 13)) avail = strtoll(line + 13, NULL, 10) * 1024;
        }
        fclose(f);
    }
    printf(",\"mem_total_bytes\":%lld,\"mem_available_bytes\":%lld", total, avail);
}

static void print_thermal(void)
{
    printf(",\"thermal\":[");
    int first = 1;
    for (int z = 0; z < 128; z++) {
        char path[256], type[128];
        snprintf(path, sizeof path, "/sys/class/thermal/thermal_zone%d/temp", z);
        long long t = read_ll(path, -1000000);
        if (t == -1000000) {
            snprintf(path, sizeof path, "/sys/class/thermal/thermal_zone%d", z);
            if (access(path, F_OK)) break;
            continue;
        }
        snprintf(path, sizeof path, "/sys/class/thermal/thermal_zone%d/type", z);
        if (read_line(path, type, sizeof type)) snprintf(type, sizeof type, "unknown");
        char zone[32];
        snprintf(zone, sizeof zone, "thermal_zone%d", z);
        printf("%s{\"zone\":\"%s\",\"type\":", first ? "" : ",", zone);
        rt_json_str(stdout, type);
        printf(",\"millicelsius\":%lld}", t);
        first = 0;
    }
    printf("]");
}

static void stat_busy(double *busy_s, int *procs_running);

int rt_probe_main(void)
{
    struct utsname u;
    char model[256];
    rt_cpu_model(model, sizeof model);
    long nconf = sysconf(_SC_NPROCESSORS_CONF), nonl = sysconf(_SC_NPROCESSORS_ONLN);
    int n = (int)(nconf > 0 ? nconf : (nonl > 0 ? nonl : 1));
    if (n > MAX_CPUS) n = MAX_CPUS;
    static long long maxf[MAX_CPUS], curf[MAX_CPUS];
    static int online[MAX_CPUS];
    printf("{\"mode\":\"probe\",\"machine\":");
    rt_json_str(stdout, uname(&u) == 0 ? u.machine : "unknown");
    printf(",\"model\":");
    rt_json_str(stdout, model);
    printf(",\"n_cpus\":%d,\"cpus\":[", n);
    for (int c = 0; c < n; c++) {
        char path[256];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/online", c);
        online[c] = (int)read_ll(path, c < nonl ? 1 : 0);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cpufreq/cpuinfo_max_freq", c);
        maxf[c] = read_ll(path, -1);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cpufreq/scaling_cur_freq", c);
        curf[c] = read_ll(path, -1);
        printf("%s{\"id\":%d,\"online\":%s,\"max_khz\":%lld,\"cur_khz\":%lld}", c ? "," : "", c,
               online[c] ? "true" : "false", maxf[c], curf[c]);
    }
    printf("],\"clusters\":[");
    int done[MAX_CPUS] = { 0 }, firstc = 1;
    for (int c = 0; c < n; c++) {
        if (done[c]) continue;
        printf("%s{\"max_khz\":%lld,\"cpus\":[", firstc ? "" : ",", maxf[c]);
        firstc = 0;
        int firstm = 1;
        for (int d = c; d < n; d++)
            if (!done[d] && maxf[d] == maxf[c]) { printf("%s%d", firstm ? "" : ",", d); firstm = 0; done[d] = 1; }
        printf("]}");
    }
    printf("]");
    print_caches(n);
    print_mem();
    print_thermal();
    printf(",\"freqs_khz\":[");
    for (int c = 0; c < n; c++) printf("%s%lld", c ? "," : "", curf[c]);
    /* how busy the board is right now: CPUs in use over 200 ms (by others:
     * this process sleeps), the run queue and the load average */
    double b0, b1;
    int q0, q1;
    stat_busy(&b0, &q0);
    double t0 = rt_now();
    struct timespec ts = { 0, 200000000L };
    nanosleep(&ts, NULL);
    stat_busy(&b1, &q1);
    double dt = rt_now() - t0;
    char la[128];
    double load1 = read_line("/proc/loadavg", la, sizeof la) ? -1 : atof(la);
    double busy = b0 >= 0 && b1 >= 0 && dt > 0 ? (b1 - b0) / dt : -1;
    printf("],\"load\":{\"busy_cpus\":%.3f,\"procs_running\":%d,\"load1\":%.2f}}\n", busy,
           q0 > q1 ? q0 : q1, load1);
    return 0;
}

/* ---- per-repetition device state (bench) ----------------------------------------
 * What the board was doing while one repetition ran, read before and after it:
 * the time this process's threads spent runnable but waiting for a CPU
 * (/proc/self/task/N/schedstat, field 2, ns: interference itself), the CPU
 * time every process used (/proc/stat "cpu" line) and this process's own
 * (getrusage), the run queue (procs_running) and load average, the lowest
 * current frequency of the CPUs used, the hottest thermal zone, and the
 * steal time of the CPUs used (time the hypervisor ran other guests on them,
 * which the CPU wait cannot see: rt_procstat.h).  Each read
 * is optional (-1 when the file is missing, e.g. hidden on Android). */


static double run_delay_sum(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    double sum = 0;
    int any = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[96], line[128];
        snprintf(path, sizeof path, "/proc/self/task/%.32s/schedstat", e->d_name);
        if (read_line(path, line, sizeof line)) continue;
        unsigned long long run = 0, wait = 0;
        if (sscanf(line, "%llu %llu", &run, &wait) == 2) { sum += (double)wait * 1e-9; any = 1; }
    }
    closedir(d);
    return any ? sum : -1;
}

static void stat_read(const int *cpus, int ncpus, rt_procstat *ps)
{
    FILE *f = fopen("/proc/stat", "r");
    rt_procstat_read(f, sysconf(_SC_CLK_TCK), cpus, ncpus, ps);
    if (f) fclose(f);
}

static void stat_busy(double *busy_s, int *procs_running)
{
    rt_procstat ps;
    stat_read(NULL, 0, &ps);
    *busy_s = ps.busy_s;
    *procs_running = ps.procs_running;
}

void rt_sysstate_read(rt_sysstate *s, const int *cpus, int ncpus)
{
    s->wall_s = rt_now();
    s->run_delay_s = run_delay_sum();
    struct rusage ru;
    s->self_cpu_s = getrusage(RUSAGE_SELF, &ru) ? -1
                    : (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
                      (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
    rt_procstat ps;
    stat_read(cpus, ncpus, &ps);
    s->busy_s = ps.busy_s;
    s->procs_running = ps.procs_running;
    s->steal_s = ps.steal_s;
    s->steal_cpus = ps.steal_cpus;
    char line[128];
    s->load1 = -1;
    if (!read_line("/proc/loadavg", line, sizeof line)) s->load1 = atof(line);
    s->freq_khz = -1;
    long nonl = sysconf(_SC_NPROCESSORS_ONLN);
    int n = ncpus > 0 ? ncpus : (int)(nonl > 0 ? nonl : 1);
    for (int i = 0; i < n && i < MAX_CPUS; i++) {
        char path[128];
        int c = ncpus > 0 ? cpus[i] : i;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cpufreq/scaling_cur_freq", c);
        long long f = read_ll(path, -1);
        if (f > 0 && (s->freq_khz < 0 || f < s->freq_khz)) s->freq_khz = f;
    }
    s->temp_mc = -1000000;
    for (int z = 0; z < 64; z++) {
        char path[128];
        snprintf(path, sizeof path, "/sys/class/thermal/thermal_zone%d/temp", z);
        long long t = read_ll(path, -1000000);
        if (t == -1000000) {
            snprintf(path, sizeof path, "/sys/class/thermal/thermal_zone%d", z);
            if (access(path, F_OK)) break;
            continue;
        }
        if (t > s->temp_mc) s->temp_mc = t;
    }
}

/* One repetition's state as JSON: differences over the repetition, instant
 * readings after it (run queue and load: the larger of before and after). */
void rt_sysstate_print(FILE *f, const rt_sysstate *a, const rt_sysstate *b)
{
    double wall = b->wall_s - a->wall_s;
    double wait = a->run_delay_s >= 0 && b->run_delay_s >= 0 ? b->run_delay_s - a->run_delay_s : -1;
    double self = a->self_cpu_s >= 0 && b->self_cpu_s >= 0 ? b->self_cpu_s - a->self_cpu_s : -1;
    double busy = a->busy_s >= 0 && b->busy_s >= 0 ? b->busy_s - a->busy_s : -1;
    double other = busy >= 0 && self >= 0 && wall > 0 ? (busy - self) / wall : -1;
    if (other < 0 && busy >= 0 && self >= 0) other = 0;   /* tick granularity */
    rt_procstat pa = {a->busy_s, a->procs_running, a->steal_s, a->steal_cpus};
    rt_procstat pb = {b->busy_s, b->procs_running, b->steal_s, b->steal_cpus};
    double steal = rt_procstat_steal_share(&pa, &pb, wall);
    fprintf(f, "{\"wall_s\":%.6f,\"wait_s\":%.6f,\"self_cpu_s\":%.6f,\"other_cpus\":%.3f,"
               "\"procs_running\":%d,\"load1\":%.2f,\"freq_khz\":%lld,\"temp_mc\":%lld,\"steal\":%.4f}",
            wall > 0 ? wall : 0, wait >= 0 ? wait : -1, self >= 0 ? self : -1, other,
            a->procs_running > b->procs_running ? a->procs_running : b->procs_running,
            b->load1 > a->load1 ? b->load1 : a->load1, b->freq_khz,
            b->temp_mc > -1000000 ? b->temp_mc : -1, steal >= 0 ? (steal < 1e6 ? steal : 1e6) : -1.0);
}
