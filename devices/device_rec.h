/* device_rec.h - the device record: what one measurement device is (its kind,
 * address, toolchain target, CPU set, working directory, kind-specific
 * options, topology and health).  Owned by devices/: the transports are opened
 * from it (device.h) and know nothing of where it is kept; the run store
 * (runs/) keeps it in its devices table, as it keeps genomes. */
#ifndef SH_DEVICES_DEVICE_REC_H
#define SH_DEVICES_DEVICE_REC_H

#include <stdbool.h>

typedef struct sh_device_rec {
    char name[64];
    char kind[16];          /* local | ssh | adb | qemu-aarch64 */
    char host[256];
    int port;
    char user[64];
    char key_path[1024];    /* a path only: secrets are never stored */
    char target[64];        /* toolchain triple, e.g. aarch64-linux-gnu */
    char cpus[128];         /* CPU list like "4-7" or "" for all */
    char workdir[1024];
    char *options_json;     /* malloc'd or NULL: kind-specific extras */
    char *topology_json;    /* malloc'd or NULL: cores, clusters, caches, memory */
    bool healthy;
    int fail_count;
} sh_device_rec;

/* Frees the malloc'd members (and sets them NULL); the record itself is the
 * caller's.  sh_device_recs_free also frees an array of n records. */
void sh_device_rec_free(sh_device_rec *d);
void sh_device_recs_free(sh_device_rec *d, int n);

#endif
