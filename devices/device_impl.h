/* device_impl.h - private declarations shared by the device kinds (the dev_*.c files):
 * constructors of each kind and the topology helpers.  Not a contract. */
#ifndef SH_DEVICES_DEVICE_IMPL_H
#define SH_DEVICES_DEVICE_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "devices/device.h"

int shdev_local_init(sh_device *d, bool qemu, sh_err *err);
int shdev_ssh_init(sh_device *d, sh_err *err);
int shdev_adb_init(sh_device *d, sh_err *err);

/* Topology JSON of this host through hwloc (cpus: optional subset to report as
 * "pinned"). malloc'd string. */
int shdev_topology_local(const char *machine_note, char **json_out, sh_err *err);
/* Topology JSON from an hwloc XML export (lstopo --of xml) of another machine. */
int shdev_topology_from_xml(const char *xml, size_t len, char **json_out, sh_err *err);

/* Bind the calling thread to a CPU list through hwloc (children forked by
 * this thread inherit it); restore afterwards with shdev_unbind_thread. */
typedef struct shdev_binding { void *topo; void *old; bool active; } shdev_binding;
int shdev_bind_thread(const char *cpus, shdev_binding *b, sh_err *err);
void shdev_unbind_thread(shdev_binding *b);

/* Random hex token (for private directory names and output markers). */
void shdev_random_hex(char *out, size_t n_chars);

#endif
