/* topology.c - a device's topology as JSON (cores, clusters grouped by maximum
 * frequency, caches, memory), from hwloc: either this host's live topology or
 * an XML export (lstopo --of xml) fetched from a remote board. */
#include "devices/device_impl.h"

#include <hwloc.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#define MAX_XML (8u * 1024u * 1024u)

static long long read_sys_khz(unsigned cpu)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%u/cpufreq/cpuinfo_max_freq", cpu);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long long v = 0;
    if (fscanf(f, "%lld", &v) != 1 || v < 0 || v > 100000000) v = 0;
    fclose(f);
    return v;
}

/* Max frequency of a PU from hwloc's CPU kinds (FrequencyMaxMHz), if known. */
static long long kind_khz(hwloc_topology_t t, hwloc_obj_t pu)
{
    int nk = hwloc_cpukinds_get_nr(t, 0);
    for (int k = 0; k < nk; k++) {
        hwloc_bitmap_t set = hwloc_bitmap_alloc();
        unsigned n_infos = 0;
        struct hwloc_info_s *infos = NULL;
        int eff;
        long long khz = 0;
        if (set && hwloc_cpukinds_get_info(t, (unsigned)k, set, &eff, &n_infos, &infos, 0) == 0 &&
            hwloc_bitmap_isset(set, pu->os_index)) {
            for (unsigned i = 0; i < n_infos; i++)
                if (!strcmp(infos[i].name, "FrequencyMaxMHz")) khz = atoll(infos[i].value) * 1000;
        }
        hwloc_bitmap_free(set);
        if (khz > 0) return khz;
    }
    return 0;
}

static const char *cache_type(hwloc_obj_cache_type_t t)
{
    switch (t) {
    case HWLOC_OBJ_CACHE_DATA: return "Data";
    case HWLOC_OBJ_CACHE_INSTRUCTION: return "Instruction";
    default: return "Unified";
    }
}

static int topo_to_json(hwloc_topology_t t, bool live, const char *note, char **json_out, sh_err *err)
{
    json_t *o = json_object();
    json_t *cpus = json_array(), *clusters = json_array(), *caches = json_array();
    hwloc_obj_t root = hwloc_get_root_obj(t);
    const char *machine = hwloc_obj_get_info_by_name(root, "Architecture");
    const char *model = NULL;
    hwloc_obj_t pkg = hwloc_get_obj_by_type(t, HWLOC_OBJ_PACKAGE, 0);
    if (pkg) model = hwloc_obj_get_info_by_name(pkg, "CPUModel");
    struct utsname un;
    if (!machine && live && uname(&un) == 0) machine = un.machine;
    json_object_set_new(o, "source", json_string(live ? "hwloc" : "hwloc-xml"));
    json_object_set_new(o, "machine", json_string(machine ? machine : "unknown"));
    json_object_set_new(o, "model", json_string(model ? model : "unknown"));
    if (note) json_object_set_new(o, "note", json_string(note));

    int n_pu = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    /* clusters: distinct max frequencies, each with its cpus */
    long long fkhz[1024];
    unsigned ids[1024];
    int n = 0;
    for (int i = 0; i < n_pu && n < 1024; i++) {
        hwloc_obj_t pu = hwloc_get_obj_by_type(t, HWLOC_OBJ_PU, (unsigned)i);
        long long khz = kind_khz(t, pu);
        if (!khz && live) khz = read_sys_khz(pu->os_index);
        ids[n] = pu->os_index;
        fkhz[n] = khz;
        json_t *c = json_object();
        json_object_set_new(c, "id", json_integer(pu->os_index));
        json_object_set_new(c, "max_khz", json_integer(khz));
        json_array_append_new(cpus, c);
        n++;
    }
    bool done[1024] = {false};
    for (;;) {
        long long best = -1;
        for (int i = 0; i < n; i++) if (!done[i] && fkhz[i] > best) best = fkhz[i];
        if (best < 0) break;
        json_t *cl = json_object(), *members = json_array();
        for (int i = 0; i < n; i++)
            if (!done[i] && fkhz[i] == best) { done[i] = true; json_array_append_new(members, json_integer(ids[i])); }
        json_object_set_new(cl, "max_khz", json_integer(best));
        json_object_set_new(cl, "cpus", members);
        json_array_append_new(clusters, cl);
    }
    for (hwloc_obj_type_t ty = HWLOC_OBJ_L1CACHE; ty <= HWLOC_OBJ_L3ICACHE; ty++) {
        if (!hwloc_obj_type_is_cache(ty)) continue;
        int nc = hwloc_get_nbobjs_by_type(t, ty);
        for (int i = 0; i < nc; i++) {
            hwloc_obj_t c = hwloc_get_obj_by_type(t, ty, (unsigned)i);
            char list[256];
            hwloc_bitmap_list_snprintf(list, sizeof list, c->cpuset);
            json_t *cj = json_object();
            json_object_set_new(cj, "level", json_integer(c->attr->cache.depth));
            json_object_set_new(cj, "type", json_string(cache_type(c->attr->cache.type)));
            json_object_set_new(cj, "size_bytes", json_integer((json_int_t)c->attr->cache.size));
            json_object_set_new(cj, "cpus", json_string(list));
            json_array_append_new(caches, cj);
        }
    }
    json_object_set_new(o, "n_cpus", json_integer(n));
    json_object_set_new(o, "cpus", cpus);
    json_object_set_new(o, "clusters", clusters);
    json_object_set_new(o, "caches", caches);
    json_object_set_new(o, "mem_total_bytes", json_integer((json_int_t)root->total_memory));
    *json_out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!*json_out) return sh_err_set(err, "topology: out of memory");
    return 0;
}

int shdev_topology_local(const char *note, char **json_out, sh_err *err)
{
    hwloc_topology_t t;
    if (hwloc_topology_init(&t)) return sh_err_set(err, "hwloc: init failed");
    if (hwloc_topology_load(t)) {
        hwloc_topology_destroy(t);
        return sh_err_set(err, "hwloc: cannot load this host's topology");
    }
    int rc = topo_to_json(t, true, note, json_out, err);
    hwloc_topology_destroy(t);
    return rc;
}

int shdev_topology_from_xml(const char *xml, size_t len, char **json_out, sh_err *err)
{
    *json_out = NULL;
    if (len == 0 || len > MAX_XML) return sh_err_set(err, "topology XML: empty or larger than %u bytes", MAX_XML);
    hwloc_topology_t t;
    if (hwloc_topology_init(&t)) return sh_err_set(err, "hwloc: init failed");
    /* hwloc wants the terminating NUL counted in the length */
    char *buf = malloc(len + 1);
    if (!buf) { hwloc_topology_destroy(t); return sh_err_set(err, "out of memory"); }
    memcpy(buf, xml, len);
    buf[len] = '\0';
    int rc;
    if (hwloc_topology_set_xmlbuffer(t, buf, (int)len + 1) || hwloc_topology_load(t))
        rc = sh_err_set(err, "topology XML: hwloc could not load it (malformed?)");
    else
        rc = topo_to_json(t, false, NULL, json_out, err);
    free(buf);
    hwloc_topology_destroy(t);
    return rc;
}
