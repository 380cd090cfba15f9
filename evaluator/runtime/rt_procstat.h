/* rt_procstat.h - reads the board's /proc/stat defensively for the variant's
 * per-repetition readings (rt_probe.c): the CPU time of every process, the
 * run queue, and the steal time of the CPUs the variant runs on.  Header only
 * and plain C11 + stdio, so tests read fixture files through the same code
 * (tests/test_devices.c, tests/fixtures/procstat/).
 *
 * Lines look like "cpu  user nice system idle iowait irq softirq steal guest
 * guest_nice" (the aggregate) and "cpuN ..." (one per online CPU), in ticks of
 * 1/USER_HZ.  Kernels before 2.6.11 have no steal column, Android may hide the
 * file, CPUs go offline; anything that does not parse is left unknown (-1)
 * rather than guessed. */
#ifndef RT_PROCSTAT_H
#define RT_PROCSTAT_H

#include <stdio.h>
#include <string.h>

typedef struct rt_procstat {
    double busy_s;       /* CPU time of every process, all CPUs (aggregate line), -1 unknown */
    int procs_running;   /* run queue, -1 unknown */
    double steal_s;      /* steal time summed over the CPUs asked for, -1 unknown */
    int steal_cpus;      /* how many CPUs that sum covers (0 when unknown) */
} rt_procstat;

/* Parses "cpu" or "cpuN" and up to 10 unsigned decimal columns.  *cpu = -1 for
 * the aggregate line.  Returns the number of columns (0 if the line is not a
 * well-formed cpu line: a sign, a non-digit, an overflow, nothing after it). */
static inline int rt_procstat_cpu_line(const char *line, int *cpu, unsigned long long v[10])
{
    if (strncmp(line, "cpu", 3)) return 0;
    const char *p = line + 3;
    *cpu = -1;
    if (*p >= '0' && *p <= '9') {
        long n = 0;
        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (*p++ - '0');
            if (n > 1000000) return 0;
        }
        *cpu = (int)n;
    }
    if (*p != ' ' && *p != '\t') return 0;
    int k = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\n' || *p == '\r' || *p == '\0') break;
        if (k == 10) break;                          /* later kernels may add columns */
        if (*p < '0' || *p > '9') return 0;
        unsigned long long x = 0;
        while (*p >= '0' && *p <= '9') {
            unsigned d = (unsigned)(*p++ - '0');
            if (x > (~0ULL - d) / 10) return 0;      /* overflow */
            x = x * 10 + d;
        }
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\0') return 0;
        v[k++] = x;
    }
    return k;
}

/* Reads an open /proc/stat.  cpus[0..ncpus): the CPUs whose steal is summed
 * (ncpus 0: every CPU, from the aggregate line, steal_cpus = the number of
 * per-CPU lines).  A CPU asked for without a line (offline) is left out;
 * steal is unknown when no asked-for CPU has a steal column.  hz: ticks per
 * second (sysconf(_SC_CLK_TCK)). */
static inline void rt_procstat_read(FILE *f, long hz, const int *cpus, int ncpus, rt_procstat *out)
{
    out->busy_s = -1;
    out->procs_running = -1;
    out->steal_s = -1;
    out->steal_cpus = 0;
    if (!f || hz <= 0) return;
    char line[512];
    int at_start = 1, n_cpu_lines = 0, found = 0;
    unsigned long long steal = 0, all_steal = 0;
    int all_steal_ok = 0;
    while (fgets(line, sizeof line, f)) {
        int starts = at_start;
        at_start = strchr(line, '\n') != NULL;   /* a longer line ("intr ...") continues */
        if (!starts) continue;
        unsigned long long v[10];
        int cpu, n = rt_procstat_cpu_line(line, &cpu, v);
        if (n > 0 && cpu < 0) {
            if (n >= 3) {
                /* user nice system [idle iowait] irq softirq steal */
                unsigned long long busy = v[0] + v[1] + v[2];
                if (n >= 6) busy += v[5];
                if (n >= 7) busy += v[6];
                if (n >= 8) busy += v[7];
                out->busy_s = (double)busy / (double)hz;
            }
            if (n >= 8) { all_steal = v[7]; all_steal_ok = 1; }
        } else if (n > 0) {
            n_cpu_lines++;
            int want = 0;
            for (int i = 0; i < ncpus && !want; i++) want = cpus[i] == cpu;
            if (want && n >= 8) { steal += v[7]; found++; }
        } else if (!strncmp(line, "procs_running ", 14)) {
            const char *p = line + 14;
            long q = 0;
            int digits = 0;
            while (*p >= '0' && *p <= '9' && q < 10000000) { q = q * 10 + (*p++ - '0'); digits++; }
            if (digits && (*p == '\n' || *p == '\0')) out->procs_running = (int)q;
        }
    }
    if (ncpus > 0 && found > 0) {
        out->steal_s = (double)steal / (double)hz;
        out->steal_cpus = found;
    } else if (ncpus <= 0 && all_steal_ok && n_cpu_lines > 0) {
        out->steal_s = (double)all_steal / (double)hz;
        out->steal_cpus = n_cpu_lines;
    }
}

/* The share of the CPUs' time stolen between two readings wall_s apart, or
 * -1 when it cannot be told (unknown, a different set of CPUs, a counter that
 * went backwards). */
static inline double rt_procstat_steal_share(const rt_procstat *a, const rt_procstat *b, double wall_s)
{
    if (a->steal_s < 0 || b->steal_s < 0 || a->steal_cpus <= 0 || a->steal_cpus != b->steal_cpus || wall_s <= 0)
        return -1;
    double d = b->steal_s - a->steal_s;
    if (d < 0) return -1;
    return d / (wall_s * a->steal_cpus);
}

#endif
