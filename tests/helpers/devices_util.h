/* devices_util.h - real parts for tests/test_devices.c: temporary directories,
 * free ports, a throwaway OpenSSH sshd on 127.0.0.1, a scriptable "variant"
 * that prints bench/probe JSON (for fault injection), and a small adb peer
 * that speaks the adb server protocol for device services (no phone here). */
#ifndef TESTS_HELPERS_DEVICES_UTIL_H
#define TESTS_HELPERS_DEVICES_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

/* mkdtemp under $TMPDIR or /tmp; path malloc'd. */
char *dt_mkdtemp(const char *tag);
int dt_rm_rf(const char *path);
int dt_write_file(const char *path, const char *text, int mode);
char *dt_read_file(const char *path, size_t *len);
int dt_free_port(void);
/* Runs argv to completion (no shell); returns the exit status or -1. */
int dt_run(char *const argv[]);
/* Sends SIGKILL to pid and every descendant of it (read from /proc). */
void dt_kill_tree(pid_t pid);

/* ---- sshd ------------------------------------------------------------------ */
typedef struct dt_sshd {
    char dir[512];
    int port;
    pid_t pid;
    char host_key[600], other_host_key[600];   /* the server's and a stranger's */
    char user_key[600], bad_user_key[600];     /* authorized and not            */
    char known_hosts[600], wrong_known_hosts[600];
    char user[64];
} dt_sshd;

/* Generates keys and config in a temp dir, starts sshd, writes known_hosts
 * files (right key / another key). Returns 0 or -1 (sshd not startable). */
int dt_sshd_start(dt_sshd *s);
int dt_sshd_restart(dt_sshd *s);      /* same port, same host key */
void dt_sshd_kill(dt_sshd *s);        /* SIGKILL the daemon and all sessions */
void dt_sshd_stop(dt_sshd *s);        /* kill and remove the directory */
/* Drops every open connection as a network failure would: SIGKILL to the
 * daemon's per-connection sshd processes only; the listener stays, and so do
 * the commands those sessions started (they are not sshd processes).
 * Returns how many processes were killed. */
int dt_sshd_drop_connections(dt_sshd *s);
/* Restarts the daemon on the same port with a NEW host key (a reinstalled
 * board); the old key stays in other_host_key's place for comparison. */
int dt_sshd_restart_new_host_key(dt_sshd *s);

/* ---- fake variant ---------------------------------------------------------- */
/* Writes an executable sh script at path that behaves like a variant for
 * `bench` and `probe`.  behaviour: "ok", "crash" (SIGSEGV), "oom" (SIGKILL,
 * as the OOM killer does), "garbage" (not
 * JSON), "huge" (9 MiB of output), "wronghash", "hang" (sleeps), "flaky"
 * (fails until the marker file exists, then ok: creates it on first run),
 * "slowfirst" (first run touches marker and sleeps `sleep_s`, later runs ok).
 * decode_ms is the centre of the per-token samples. */
int dt_fake_variant(const char *path, const char *genome_hash, const char *behaviour,
                    const char *marker, double decode_ms, int sleep_s);

/* Writes a variant (sh + awk) that replays recorded per-token decode samples:
 * repetition k (counted over every bench invocation of this script, in the
 * file `counter`) decodes the tokens of `shape` (space-separated ms, one
 * per decoded token; --gen must not exceed their number) times scale k of
 * `scales` (space-separated, cycled).  Its board readings say each
 * repetition's threads waited `wait_frac` of its wall time for a CPU (0:
 * quiet), at a constant frequency.  `probe` answers with an idle load, so a
 * settling coordinator stops waiting at its first probe. */
int dt_replay_variant(const char *path, const char *genome_hash, const char *shape, const char *scales,
                      double wait_frac, const char *counter);

/* ---- adb peer ---------------------------------------------------------------- */
typedef struct dt_adb_peer {
    int listen_fd;
    int port;
    char serial[64];
    volatile int stop;
    pthread_t thread;
    int connections;     /* served so far */
} dt_adb_peer;

int dt_adb_peer_start(dt_adb_peer *p, const char *serial);
void dt_adb_peer_stop(dt_adb_peer *p);

#endif
