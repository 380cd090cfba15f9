/* device.h - one interface for every place a variant can be measured: this host
 * (`local`), an emulated ARM board (`qemu-aarch64`), boards over SSH (`ssh`,
 * libssh2) and Android phones through the adb server (`adb`).
 *
 * A device is opened from its record (device_rec.h sh_device_rec) and then:
 *   prepare   connect if needed and create a private working directory;
 *   push      copy a local file into the working directory (mode bits kept);
 *   run       run argv (never through an unquoted shell) with a timeout,
 *             capturing exit status, stdout (capped) and the tail of stderr;
 *   fetch     copy a file from the device back to this host;
 *   cleanup   remove the working directory;
 *   describe  the device's topology as JSON (cores, clusters, caches, memory).
 *
 * Return codes: 0 success; SH_DEV_ETRANSPORT when the device could not be
 * reached or the connection dropped (the next call reconnects); -1 for other
 * errors (bad arguments, file missing, refused host key...).  `run` returns 0
 * whenever the program ran, whatever its exit status: look at the result.
 *
 * A sh_device is not thread-safe: use one per thread (or lock around it). */
#ifndef SH_DEVICES_DEVICE_H
#define SH_DEVICES_DEVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "devices/device_rec.h"
#include "util/err.h"

#define SH_DEV_ETRANSPORT (-2)

/* Caps on what a device may send back (its output is untrusted). */
#define SH_DEV_MAX_STDOUT (8u * 1024u * 1024u)
#define SH_DEV_MAX_STDERR (16u * 1024u)
#define SH_DEV_MAX_FETCH  (256u * 1024u * 1024u)

typedef struct sh_dev_result {
    int exited;          /* 1 if the program exited normally               */
    int exit_code;
    int signal;          /* terminating signal if known, else 0            */
    int timed_out;
    char *out;           /* stdout, NUL-terminated, malloc'd               */
    size_t out_len;
    int out_truncated;
    char *err;           /* tail of stderr, NUL-terminated, malloc'd       */
    size_t err_len;
    double seconds;      /* wall time seen by the coordinator              */
} sh_dev_result;

void sh_dev_result_free(sh_dev_result *r);
/* "exit 3", "signal 11", "timed out after 5.0 s" */
void sh_dev_result_describe(const sh_dev_result *r, char *buf, size_t cap);

typedef struct sh_device sh_device;

typedef struct sh_device_ops {
    int (*prepare)(sh_device *d, sh_err *err);
    /* Copies local_path to WORKDIR/remote_name; remote_path_out gets the full path. */
    int (*push)(sh_device *d, const char *local_path, const char *remote_name,
                char *remote_path_out, size_t cap, sh_err *err);
    /* argv[0] is a path on the device (usually from push). Runs in WORKDIR. */
    int (*run)(sh_device *d, char *const argv[], double timeout_s, sh_dev_result *res, sh_err *err);
    int (*fetch)(sh_device *d, const char *remote_path, const char *local_path, sh_err *err);
    int (*cleanup)(sh_device *d, sh_err *err);
    /* malloc'd topology JSON (see docs/devices.md for the schema). */
    int (*describe)(sh_device *d, char **json_out, sh_err *err);
    void (*destroy)(sh_device *d);
} sh_device_ops;

struct sh_device {
    const sh_device_ops *ops;
    char name[64];
    char kind[16];
    char host[256];
    int port;
    char user[64];
    char key_path[1024];
    char target[64];         /* toolchain triple of binaries this device runs */
    char cpus[128];          /* CPU list to pin to, "" = all                    */
    char workdir[1024];      /* the private working directory once prepared    */
    char base_dir[1024];     /* where the private directory is created         */
    char known_hosts[1024];  /* ssh: known_hosts file                          */
    char serial[128];        /* adb: device serial, "" = the only device       */
    bool trust_host_key;     /* ssh: record the host key of a host seen for the
                                first time (a changed key is always refused)   */
    bool replace_host_key;   /* ssh: replace a changed host key (device trust
                                --replace): removes the old entries             */
    char host_key_event[400];/* ssh: what the host key check did ("recorded",
                                "replaced: SHA256:old -> SHA256:new", ...)      */
    double connect_timeout_s;
    void *impl;              /* kind-specific state                            */
};

/* Kinds this build knows. */
bool sh_device_kind_valid(const char *kind);
/* Device names: [A-Za-z0-9._-]{1,63}, not starting with '-' or '.'. */
int sh_device_name_check(const char *name, sh_err *err);
/* Default toolchain triple of a kind ("" if it must be given). */
const char *sh_device_default_target(const char *kind);
/* This host's triple, e.g. "x86_64-linux-gnu". */
const char *sh_host_triple(void);

/* Opens (does not connect) a device from its record.  Kind-specific extras are
 * read from rec->options_json: known_hosts, trust_host_key, replace_host_key,
 * serial, connect_timeout_s. */
int sh_device_open(const sh_device_rec *rec, sh_device **out, sh_err *err);
/* Runs cleanup (ignoring errors) and frees. Safe with NULL. */
void sh_device_close(sh_device *d);

/* Convenience wrappers that call the vtable. */
int sh_device_prepare(sh_device *d, sh_err *err);
int sh_device_push(sh_device *d, const char *local_path, const char *remote_name,
                   char *remote_path_out, size_t cap, sh_err *err);
int sh_device_run(sh_device *d, char *const argv[], double timeout_s, sh_dev_result *res, sh_err *err);
int sh_device_fetch(sh_device *d, const char *remote_path, const char *local_path, sh_err *err);
int sh_device_cleanup(sh_device *d, sh_err *err);
int sh_device_describe(sh_device *d, char **json_out, sh_err *err);

/* ---- helpers shared by the kinds (devices/shquote.c, devices/cpulist.c) ---- */

/* Quotes s for a POSIX shell: 'it'\''s'.  Returns the length written, or -1
 * if cap is too small (out is then ""). Every byte is kept literally. */
int sh_shell_quote(const char *s, char *out, size_t cap);
/* Joins argv into one quoted command line (malloc'd), prefixed by `prefix`
 * (already a shell fragment, may be NULL). NULL on overflow of max_len. */
char *sh_shell_join(const char *prefix, char *const argv[], size_t max_len, sh_err *err);

/* CPU lists "0-3,6": validated; count and hex mask (for taskset). */
int sh_cpulist_parse(const char *list, bool cpus_out[1024], int *count, sh_err *err);
int sh_cpulist_mask_hex(const char *list, char *out, size_t cap, sh_err *err);

#endif
