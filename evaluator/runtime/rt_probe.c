/* rt_probe.c - `variant probe`: describes the device as JSON (CPUs and their
 * frequencies, clusters by cpuinfo_max_freq, caches, memory, thermal zones).
 * Every sysfs/procfs read is optional: Android hides many of these files. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "rt.h"

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

static void cpu_model(char *buf, size_t cap)
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

int rt_probe_main(void)
{
    struct utsname u;
    char model[256];
    cpu_model(model, sizeof model);
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
    printf("]}\n");
    return 0;
}
