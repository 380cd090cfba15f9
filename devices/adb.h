/* adb.h - a client of the adb server's own wire protocol (no `adb` binary is
 * run): host services (host:version, host:devices, host:transport:SERIAL) and,
 * on a transport, shell:CMD and the sync protocol (SEND/DATA/DONE, RECV, STAT).
 * The `adb` device kind (dev_adb.c) is built on it; tests use it directly. */
#ifndef SH_DEVICES_ADB_H
#define SH_DEVICES_ADB_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define SH_ADB_DEFAULT_PORT 5037
#define SH_ADB_MAX_REPLY (1u << 20)

/* Server address: host/port if given (port > 0), else $ADB_SERVER_SOCKET
 * (tcp:HOST:PORT), else 127.0.0.1:5037. */
void sh_adb_server_addr(const char *host, int port, char *host_out, size_t cap, int *port_out);

/* Connects to the server. Returns an fd or -1. */
int sh_adb_connect(const char *host, int port, double timeout_s, sh_err *err);
/* Sends one request ("0012host:version") and reads OKAY or FAIL+message. */
int sh_adb_request(int fd, const char *service, double timeout_s, sh_err *err);
/* A host service with a length-prefixed reply (host:version, host:devices):
 * *reply malloc'd, NUL-terminated. */
int sh_adb_host_query(const char *host, int port, const char *service, double timeout_s,
                      char **reply, sh_err *err);
/* Opens a socket already switched to a device (host:transport:SERIAL, or
 * host:transport-any when serial is empty or NULL). */
int sh_adb_transport(const char *host, int port, const char *serial, double timeout_s, sh_err *err);

/* Sync protocol on a transport socket on which "sync:" was accepted. */
int sh_adb_sync_send(int fd, const char *local_path, const char *remote_path, unsigned mode,
                     double timeout_s, sh_err *err);
int sh_adb_sync_recv(int fd, const char *remote_path, const char *local_path, size_t max_bytes,
                     double timeout_s, sh_err *err);
int sh_adb_sync_stat(int fd, const char *remote_path, uint32_t *mode, uint32_t *size,
                     uint32_t *mtime, double timeout_s, sh_err *err);

#endif
