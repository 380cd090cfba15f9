/* dev_ssh.c - the `ssh` device: a board reached over SSH with libssh2.
 *
 * Connects with a timeout, checks the host key against a known_hosts file
 * (an unknown key is refused unless the device trusts first-seen keys, which
 * records it; a changed key is refused unless the device was opened to
 * replace it), authenticates with a key file or the SSH agent, creates a
 * private working directory held by a keeper channel (removed when the
 * connection ends, however it ends), uploads and downloads by SFTP and runs
 * commands through exec channels built only from single-quoted words, each
 * program under a wrapper that kills it when its channel ends.  One session is
 * kept and reused; after a drop the next call reconnects, in a new directory. */
#include "devices/device_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct ssh_impl {
    int sock;
    LIBSSH2_SESSION *s;
    LIBSSH2_SFTP *sftp;
    LIBSSH2_CHANNEL *keeper;  /* holds the workdir; removes it when closed */
    bool connected;
    bool prepared;        /* workdir exists (as far as we know)     */
    bool verify_workdir;  /* an SFTP error: check the workdir survived */
    bool has_timeout;     /* remote has timeout(1)                  */
    bool has_taskset;
} ssh_impl;

static pthread_once_t ssh_once = PTHREAD_ONCE_INIT;
static int ssh_init_rc;
static void ssh_global_init(void) { ssh_init_rc = libssh2_init(0); }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void ssh_disconnect(sh_device *d)
{
    ssh_impl *si = d->impl;
    if (si->sftp) libssh2_sftp_shutdown(si->sftp);
    si->sftp = NULL;
    if (si->keeper) libssh2_channel_free(si->keeper);
    si->keeper = NULL;
    if (si->s) {
        libssh2_session_set_timeout(si->s, 2000);
        libssh2_session_set_blocking(si->s, 1);
        if (si->connected) libssh2_session_disconnect(si->s, "starhil done");
        libssh2_session_free(si->s);
    }
    si->s = NULL;
    if (si->sock >= 0) close(si->sock);
    si->sock = -1;
    si->connected = false;
}

static const char *ssh_errmsg(LIBSSH2_SESSION *s)
{
    char *msg = NULL;
    if (!s) return "no session";
    libssh2_session_last_error(s, &msg, NULL, 0);
    return msg ? msg : "unknown libssh2 error";
}

/* A transport failure: drop the session so the next call reconnects. */
static int ssh_transport_fail(sh_device *d, sh_err *err, const char *what)
{
    ssh_impl *si = d->impl;
    sh_err_set(err, "device %s (%s:%d): %s: %s", d->name, d->host, d->port, what, ssh_errmsg(si->s));
    ssh_disconnect(d);
    return SH_DEV_ETRANSPORT;
}

static int tcp_connect(sh_device *d, sh_err *err)
{
    char port[16];
    snprintf(port, sizeof port, "%d", d->port > 0 ? d->port : 22);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(d->host, port, &hints, &ai);
    if (g) {
        sh_err_set(err, "device %s: cannot resolve host '%.200s': %s", d->name, d->host, gai_strerror(g));
        return -1;
    }
    int fd = -1;
    const char *why = "no address";
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int pr = poll(&p, 1, (int)(d->connect_timeout_s * 1000));
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (pr == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) break;
            why = pr == 0 ? "connection timed out" : strerror(soerr ? soerr : errno);
        } else {
            why = strerror(errno);
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        sh_err_set(err, "device %s: cannot connect to %.200s:%s: %s", d->name, d->host, port, why);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

static int key_type_bit(int hostkey_type)
{
    switch (hostkey_type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
#ifdef LIBSSH2_HOSTKEY_TYPE_ECDSA_256
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
#endif
#ifdef LIBSSH2_HOSTKEY_TYPE_ED25519
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
#endif
    default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
    }
}

static void known_hosts_path(const sh_device *d, char *out, size_t cap)
{
    if (d->known_hosts[0]) { snprintf(out, cap, "%s", d->known_hosts); return; }
    const char *home = getenv("HOME");
    snprintf(out, cap, "%s/.ssh/known_hosts", home && *home ? home : ".");
}

/* Loads known_hosts line by line, skipping lines libssh2 does not understand
 * (markers, certificates, unknown key types) instead of failing on them. */
static int load_known_hosts(LIBSSH2_KNOWNHOSTS *kh, const char *path, sh_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : sh_err_set(err, "known_hosts %s: %s", path, strerror(errno));
    char line[16384];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < 100000) {
        n++;
        size_t len = strlen(line);
        if (len == 0 || line[0] == '#' || line[0] == '\n') continue;
        libssh2_knownhost_readline(kh, line, len, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
    }
    fclose(f);
    return 0;
}

/* Appends one entry (never rewrites the file, so nothing in it is lost). */
static int append_known_host(LIBSSH2_KNOWNHOSTS *kh, struct libssh2_knownhost *node, const char *path, sh_err *err)
{
    char line[16384];
    size_t outlen = 0;
    if (libssh2_knownhost_writeline(kh, node, line, sizeof line, &outlen, LIBSSH2_KNOWNHOST_FILE_OPENSSH))
        return sh_err_set(err, "known_hosts: cannot format the host key");
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return sh_err_set(err, "known_hosts %s: %s", path, strerror(errno));
    ssize_t w = write(fd, line, outlen);
    int rc = (w == (ssize_t)outlen && close(fd) == 0) ? 0 : -1;
    if (w != (ssize_t)outlen) close(fd);
    return rc ? sh_err_set(err, "known_hosts %s: write failed", path) : 0;
}

/* ---- host key fingerprints (OpenSSH's "SHA256:base64") -------------------- */

static const uint32_t SHA_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + SHA_K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

static void sha256(const unsigned char *data, size_t n, unsigned char out[32])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t i = 0;
    for (; i + 64 <= n; i += 64) sha256_block(h, data + i);
    unsigned char tail[128] = {0};
    size_t r = n - i;
    memcpy(tail, data + i, r);
    tail[r] = 0x80;
    size_t tl = r + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int j = 0; j < 8; j++) tail[tl - 1 - j] = (unsigned char)(bits >> (8 * j));
    sha256_block(h, tail);
    if (tl == 128) sha256_block(h, tail + 64);
    for (int j = 0; j < 8; j++) {
        out[4 * j] = (unsigned char)(h[j] >> 24); out[4 * j + 1] = (unsigned char)(h[j] >> 16);
        out[4 * j + 2] = (unsigned char)(h[j] >> 8); out[4 * j + 3] = (unsigned char)h[j];
    }
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* "SHA256:" + unpadded base64 of the 32-byte digest, as ssh-keygen -l prints */
static void fingerprint_of_digest(const unsigned char dg[32], char *out, size_t cap)
{
    char b[64];
    size_t k = 0;
    for (int i = 0; i < 32; i += 3) {
        uint32_t v = (uint32_t)dg[i] << 16 | (i + 1 < 32 ? (uint32_t)dg[i + 1] << 8 : 0) | (i + 2 < 32 ? dg[i + 2] : 0);
        b[k++] = B64[v >> 18 & 63];
        b[k++] = B64[v >> 12 & 63];
        if (i + 1 < 32) b[k++] = B64[v >> 6 & 63];
        if (i + 2 < 32) b[k++] = B64[v & 63];
    }
    b[k] = '\0';
    snprintf(out, cap, "SHA256:%s", b);
}

/* Fingerprint of a key stored base64-encoded (a known_hosts entry). */
static void fingerprint_of_b64(const char *b64, char *out, size_t cap)
{
    size_t n = strlen(b64);
    unsigned char *raw = malloc(n);
    if (!raw) { snprintf(out, cap, "?"); return; }
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && b64[i] != '='; i++) {
        const char *pos = strchr(B64, b64[i]);
        if (!pos || !b64[i]) continue;
        acc = acc << 6 | (uint32_t)(pos - B64);
        bits += 6;
        if (bits >= 8) { bits -= 8; raw[k++] = (unsigned char)(acc >> bits); }
    }
    unsigned char dg[32];
    sha256(raw, k, dg);
    free(raw);
    fingerprint_of_digest(dg, out, cap);
}

/* Rewrites known_hosts without the entries for host:port (any key type),
 * keeping every other line as it was; then appends node.  Atomic (temporary
 * file and rename). */
static int replace_known_host(LIBSSH2_SESSION *s, const sh_device *d, const char *path,
                              LIBSSH2_KNOWNHOSTS *kh, struct libssh2_knownhost *node,
                              const char *key, size_t keylen, sh_err *err)
{
    int port = d->port > 0 ? d->port : 22;
    FILE *in = fopen(path, "r");
    if (!in) return sh_err_set(err, "known_hosts %s: %s", path, strerror(errno));
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!out) {
        if (fd >= 0) close(fd);
        fclose(in);
        return sh_err_set(err, "known_hosts %s: %s", tmp, strerror(errno));
    }
    char line[16384];
    int rc = 0;
    while (fgets(line, sizeof line, in)) {
        bool drop = false;
        if (line[0] != '#' && line[0] != '\n') {
            LIBSSH2_KNOWNHOSTS *one = libssh2_knownhost_init(s);
            if (one && libssh2_knownhost_readline(one, line, strlen(line), LIBSSH2_KNOWNHOST_FILE_OPENSSH) == 0) {
                struct libssh2_knownhost *f = NULL;
                int c = libssh2_knownhost_checkp(one, d->host, port, key, keylen,
                                                 LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW, &f);
                drop = c == LIBSSH2_KNOWNHOST_CHECK_MATCH || c == LIBSSH2_KNOWNHOST_CHECK_MISMATCH;
            }
            if (one) libssh2_knownhost_free(one);
        }
        if (!drop && fputs(line, out) < 0) rc = -1;
    }
    char entry[16384];
    size_t elen = 0;
    if (libssh2_knownhost_writeline(kh, node, entry, sizeof entry, &elen, LIBSSH2_KNOWNHOST_FILE_OPENSSH)) rc = -1;
    else if (fwrite(entry, 1, elen, out) != elen) rc = -1;
    fclose(in);
    if (fflush(out) || fsync(fileno(out))) rc = -1;
    if (fclose(out)) rc = -1;
    if (rc == 0 && rename(tmp, path) != 0) rc = -1;
    if (rc) {
        unlink(tmp);
        return sh_err_set(err, "known_hosts %s: cannot rewrite it", path);
    }
    return 0;
}

/* The host key must be the one recorded for host:port.  A host seen for the
 * first time is refused, or recorded if the device trusts unknown keys
 * (--trust-host-key).  A key that differs from the recorded one (of any key
 * type) is refused whatever the device trusts, unless it was opened to
 * replace it (`device trust NAME --replace`): then the old entries go and the
 * new key is recorded.  d->host_key_event says what happened. */
static int check_host_key(sh_device *d, sh_err *err)
{
    ssh_impl *si = d->impl;
    size_t len = 0;
    int type = 0;
    d->host_key_event[0] = '\0';
    const char *key = libssh2_session_hostkey(si->s, &len, &type);
    if (!key) return sh_err_set(err, "device %s: server sent no host key", d->name);
    int bit = key_type_bit(type);
    if (bit == LIBSSH2_KNOWNHOST_KEY_UNKNOWN)
        return sh_err_set(err, "device %s: unsupported host key type %d", d->name, type);
    char fp_new[80] = "SHA256:?", fp_old[80] = "";
    const char *h = libssh2_hostkey_hash(si->s, LIBSSH2_HOSTKEY_HASH_SHA256);
    if (h) fingerprint_of_digest((const unsigned char *)h, fp_new, sizeof fp_new);
    char path[1100];
    known_hosts_path(d, path, sizeof path);
    LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(si->s);
    if (!kh) return sh_err_set(err, "device %s: known_hosts: out of memory", d->name);
    if (load_known_hosts(kh, path, err)) {
        libssh2_knownhost_free(kh);
        return sh_err_prefix(err, "device %s", d->name);
    }
    int port = d->port > 0 ? d->port : 22;
    int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | bit;
    /* no key type in the mask: compare with the host's entries of every type */
    struct libssh2_knownhost *found = NULL;
    int chk = libssh2_knownhost_checkp(kh, d->host, port, key, len,
                                       LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW, &found);
    if (chk == LIBSSH2_KNOWNHOST_CHECK_MISMATCH && found && found->key)
        fingerprint_of_b64(found->key, fp_old, sizeof fp_old);
    int rc = 0;
    char hostspec[300];
    if (port == 22) snprintf(hostspec, sizeof hostspec, "%s", d->host);
    else snprintf(hostspec, sizeof hostspec, "[%s]:%d", d->host, port);
    if (chk == LIBSSH2_KNOWNHOST_CHECK_MATCH) {
        snprintf(d->host_key_event, sizeof d->host_key_event, "host key %s of %s already recorded in %s",
                 fp_new, hostspec, path);
    } else if (chk == LIBSSH2_KNOWNHOST_CHECK_FAILURE) {
        rc = sh_err_set(err, "device %s: host key check failed: %s", d->name, ssh_errmsg(si->s));
    } else if (chk == LIBSSH2_KNOWNHOST_CHECK_MISMATCH && !d->replace_host_key) {
        rc = sh_err_set(err,
            "device %s: host key of %s CHANGED: the server shows %s, %s records %s: refused (someone may be "
            "in between). If the board was reinstalled, replace the key with `starhil device trust %s --replace`",
            d->name, hostspec, fp_new, path, fp_old[0] ? fp_old : "another key", d->name);
    } else if (chk == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND && !d->trust_host_key && !d->replace_host_key) {
        rc = sh_err_set(err, "device %s: host key %s of %s is unknown (not in %s): refused; record it with "
                        "`starhil device trust %s` (or add the device with --trust-host-key)",
                        d->name, fp_new, hostspec, path, d->name);
    } else {
        struct libssh2_knownhost *added = NULL;
        if (libssh2_knownhost_addc(kh, hostspec, NULL, key, len, NULL, 0, mask, &added) || !added)
            rc = sh_err_set(err, "device %s: cannot record the host key: %s", d->name, ssh_errmsg(si->s));
        else if (chk == LIBSSH2_KNOWNHOST_CHECK_MISMATCH
                     ? replace_known_host(si->s, d, path, kh, added, key, len, err)
                     : append_known_host(kh, added, path, err))
            rc = sh_err_prefix(err, "device %s", d->name);
        else if (chk == LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
            snprintf(d->host_key_event, sizeof d->host_key_event, "host key of %s replaced in %s: %s -> %s",
                     hostspec, path, fp_old[0] ? fp_old : "?", fp_new);
        else
            snprintf(d->host_key_event, sizeof d->host_key_event, "host key %s of %s recorded in %s",
                     fp_new, hostspec, path);
        if (rc == 0) d->trust_host_key = d->replace_host_key = false;   /* from now on it must match */
    }
    libssh2_knownhost_free(kh);
    return rc;
}

static int authenticate(sh_device *d, sh_err *err)
{
    ssh_impl *si = d->impl;
    const char *user = d->user[0] ? d->user : getenv("USER");
    if (!user || !*user) return sh_err_set(err, "device %s: no user name", d->name);
    if (d->key_path[0]) {
        if (access(d->key_path, R_OK))
            return sh_err_set(err, "device %s: key file %s: %s", d->name, d->key_path, strerror(errno));
        if (libssh2_userauth_publickey_fromfile_ex(si->s, user, (unsigned)strlen(user), NULL,
                                                   d->key_path, NULL) == 0)
            return 0;
        return sh_err_set(err, "device %s: authentication as %s with key %s refused: %s", d->name,
                          user, d->key_path, ssh_errmsg(si->s));
    }
    LIBSSH2_AGENT *ag = libssh2_agent_init(si->s);
    if (!ag) return sh_err_set(err, "device %s: ssh agent: out of memory", d->name);
    int rc = -1;
    if (libssh2_agent_connect(ag) == 0 && libssh2_agent_list_identities(ag) == 0) {
        struct libssh2_agent_publickey *id = NULL, *prev = NULL;
        while (libssh2_agent_get_identity(ag, &id, prev) == 0) {
            if (libssh2_agent_userauth(ag, user, id) == 0) { rc = 0; break; }
            prev = id;
        }
        libssh2_agent_disconnect(ag);
    }
    libssh2_agent_free(ag);
    if (rc) sh_err_set(err, "device %s: authentication as %s through the ssh agent failed "
                       "(no agent, or no accepted key; give --key FILE)", d->name, user);
    return rc;
}

static int ssh_connect(sh_device *d, sh_err *err)
{
    ssh_impl *si = d->impl;
    if (si->connected) return 0;
    pthread_once(&ssh_once, ssh_global_init);
    if (ssh_init_rc) return sh_err_set(err, "libssh2_init failed");
    si->sock = tcp_connect(d, err);
    if (si->sock < 0) return SH_DEV_ETRANSPORT;
    si->s = libssh2_session_init();
    if (!si->s) { ssh_disconnect(d); return sh_err_set(err, "device %s: libssh2 session: out of memory", d->name); }
    libssh2_session_set_blocking(si->s, 1);
    libssh2_session_set_timeout(si->s, (long)(d->connect_timeout_s * 1000));
    if (libssh2_session_handshake(si->s, si->sock)) {
        sh_err_set(err, "device %s: SSH handshake with %s:%d failed: %s", d->name, d->host, d->port,
                   ssh_errmsg(si->s));
        ssh_disconnect(d);
        return SH_DEV_ETRANSPORT;
    }
    si->connected = true;
    if (check_host_key(d, err) || authenticate(d, err)) { ssh_disconnect(d); return -1; }
    /* the old working directory went with the old connection (its keeper
     * removes it when the connection closes): make a new one */
    si->prepared = false;
    si->verify_workdir = false;
    return 0;
}

/* Waits until the socket is ready in the direction libssh2 needs. */
static int wait_socket(ssh_impl *si, double deadline)
{
    double left = deadline - now_s();
    if (left <= 0) return 0;
    int dir = libssh2_session_block_directions(si->s);
    struct pollfd p = {.fd = si->sock, .events = 0};
    if (dir & LIBSSH2_SESSION_BLOCK_INBOUND) p.events |= POLLIN;
    if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND) p.events |= POLLOUT;
    if (!p.events) p.events = POLLIN;
    int ms = left > 0.2 ? 200 : (int)(left * 1000) + 1;
    return poll(&p, 1, ms);
}

typedef struct growbuf { char *p; size_t len, cap, limit; bool truncated; bool tail; } growbuf;

static int gb_add(growbuf *b, const char *src, size_t n)
{
    if (b->tail && n >= b->limit) { src += n - b->limit; n = b->limit; b->len = 0; b->truncated = true; }
    if (b->len + n > b->limit) {
        b->truncated = true;
        if (b->tail) {
            size_t drop = b->len + n - b->limit;
            memmove(b->p, b->p + drop, b->len - drop);
            b->len -= drop;
        } else {
            n = b->limit - b->len;
        }
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 8192;
        while (nc < b->len + n + 1) nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q) return -1;
        b->p = q;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Runs one shell command line on the board; the core of run/prepare/cleanup. */
static int ssh_exec(sh_device *d, const char *cmdline, double timeout_s, sh_dev_result *res, sh_err *err)
{
    ssh_impl *si = d->impl;
    memset(res, 0, sizeof *res);
    int rc = ssh_connect(d, err);
    if (rc) return rc;
    double t0 = now_s();
    double deadline = t0 + (timeout_s > 0 ? timeout_s : 1e9);
    libssh2_session_set_blocking(si->s, 1);
    libssh2_session_set_timeout(si->s, (long)(d->connect_timeout_s * 1000));
    LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(si->s);
    if (!ch) return ssh_transport_fail(d, err, "open channel");
    if (libssh2_channel_exec(ch, cmdline)) {
        libssh2_channel_free(ch);
        return ssh_transport_fail(d, err, "exec");
    }
    libssh2_session_set_blocking(si->s, 0);
    growbuf out = {.limit = SH_DEV_MAX_STDOUT}, er = {.limit = SH_DEV_MAX_STDERR, .tail = true};
    char buf[32768];
    bool failed = false, timed_out = false;
    for (;;) {
        ssize_t n1 = libssh2_channel_read(ch, buf, sizeof buf);
        if (n1 > 0 && gb_add(&out, buf, (size_t)n1)) { failed = true; break; }
        ssize_t n2 = libssh2_channel_read_stderr(ch, buf, sizeof buf);
        if (n2 > 0 && gb_add(&er, buf, (size_t)n2)) { failed = true; break; }
        if ((n1 < 0 && n1 != LIBSSH2_ERROR_EAGAIN) || (n2 < 0 && n2 != LIBSSH2_ERROR_EAGAIN)) {
            failed = true;
            break;
        }
        if (n1 > 0 || n2 > 0) continue;
        if (libssh2_channel_eof(ch)) break;
        if (now_s() >= deadline) { timed_out = true; break; }
        if (wait_socket(si, deadline) < 0 && errno != EINTR) { failed = true; break; }
    }
    int crc = 0;
    if (!failed) {
        while ((crc = libssh2_channel_close(ch)) == LIBSSH2_ERROR_EAGAIN && now_s() < deadline + 5)
            wait_socket(si, deadline + 5);
        if (!crc && !timed_out)
            while ((crc = libssh2_channel_wait_closed(ch)) == LIBSSH2_ERROR_EAGAIN && now_s() < deadline + 5)
                wait_socket(si, deadline + 5);
    }
    if (failed || (crc && crc != LIBSSH2_ERROR_EAGAIN && !timed_out)) {
        free(out.p);
        free(er.p);
        libssh2_channel_free(ch);
        return ssh_transport_fail(d, err, "connection lost while running a command");
    }
    res->exit_code = libssh2_channel_get_exit_status(ch);
    char *sig = NULL;
    size_t siglen = 0;
    libssh2_channel_get_exit_signal(ch, &sig, &siglen, NULL, NULL, NULL, NULL);
    if (sig) {
        static const struct { const char *n; int v; } SIGS[] = {
            {"KILL", 9}, {"SEGV", 11}, {"TERM", 15}, {"ABRT", 6}, {"BUS", 7}, {"ILL", 4},
            {"FPE", 8}, {"HUP", 1}, {"INT", 2}, {"PIPE", 13}, {"QUIT", 3}};
        res->signal = 255;
        for (size_t i = 0; i < sizeof SIGS / sizeof SIGS[0]; i++)
            if (!strcmp(sig, SIGS[i].n)) res->signal = SIGS[i].v;
        libssh2_free(si->s, sig);
    }
    libssh2_channel_free(ch);
    libssh2_session_set_blocking(si->s, 1);
    res->seconds = now_s() - t0;
    res->exited = !res->signal && !timed_out;
    if (timed_out) {
        res->timed_out = 1;
        res->exited = 0;
    }
    res->out = out.p ? out.p : calloc(1, 1);
    res->out_len = out.len;
    res->out_truncated = out.truncated;
    res->err = er.p ? er.p : calloc(1, 1);
    res->err_len = er.len;
    if (!res->out || !res->err) { sh_dev_result_free(res); return sh_err_set(err, "out of memory"); }
    return 0;
}

/* The working directory's keeper: a remote shell, on its own channel for as
 * long as we use the directory, that first removes directories left by
 * keepers that are gone (crashed or killed runs: their ".owner" process no
 * longer exists), creates the directory, records its own pid there, reports
 * the path and the tools the board has, and then waits for the end of its
 * standard input.  That end comes when we close the channel (cleanup) or when
 * the connection goes away for any reason, our process killed included: the
 * keeper then removes the directory.  $1 is the base directory. */
static const char KEEPER_SH[] =
    "umask 077; mkdir -p -- \"$1\" || exit 1; "
    "for o in \"$1\"/starhil.*/.owner; do "
    "[ -f \"$o\" ] && [ -O \"$o\" ] || continue; p=$(cat \"$o\" 2>/dev/null); "
    "case $p in ''|*[!0-9]*) continue;; esac; "
    "kill -0 \"$p\" 2>/dev/null || rm -rf -- \"${o%/.owner}\"; done; "
    "d=$(mktemp -d \"$1/starhil.XXXXXX\") || exit 1; echo $$ > \"$d/.owner\"; echo \"$d\"; "
    "command -v timeout >/dev/null 2>&1 && echo HAS_TIMEOUT; "
    "command -v taskset >/dev/null 2>&1 && echo HAS_TASKSET; echo READY; "
    "while IFS= read -r _; do :; done; rm -rf -- \"$d\"";

static int make_workdir(sh_device *d, sh_err *err)
{
    ssh_impl *si = d->impl;
    int rc = ssh_connect(d, err);
    if (rc) return rc;
    char base[1100] = "${TMPDIR:-/tmp}";
    if (d->base_dir[0]) {
        if (sh_shell_quote(d->base_dir, base, sizeof base) < 0) return sh_err_set(err, "workdir too long");
    } else {
        snprintf(base, sizeof base, "\"${TMPDIR:-/tmp}\"");
    }
    char q[2048], cmd[4096];
    sh_shell_quote(KEEPER_SH, q, sizeof q);
    snprintf(cmd, sizeof cmd, "exec sh -c %s starhil-keeper %s", q, base);
    if (si->keeper) { libssh2_channel_free(si->keeper); si->keeper = NULL; }
    libssh2_session_set_blocking(si->s, 1);
    libssh2_session_set_timeout(si->s, (long)((d->connect_timeout_s + 20) * 1000));
    LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(si->s);
    if (!ch) return ssh_transport_fail(d, err, "open channel");
    if (libssh2_channel_exec(ch, cmd)) {
        libssh2_channel_free(ch);
        return ssh_transport_fail(d, err, "exec");
    }
    /* read the report up to READY (blocking, bounded by the session timeout) */
    char out[4096];
    size_t len = 0;
    bool ready = false;
    while (len + 1 < sizeof out) {
        ssize_t n = libssh2_channel_read(ch, out + len, sizeof out - 1 - len);
        if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
            libssh2_channel_free(ch);
            return ssh_transport_fail(d, err, "creating the working directory");
        }
        if (n > 0) {
            len += (size_t)n;
            out[len] = '\0';
            if (strstr(out, "\nREADY\n")) { ready = true; break; }
        }
        if (n == 0 && libssh2_channel_eof(ch)) break;
    }
    out[len] = '\0';
    char *nl = strchr(out, '\n');
    if (nl) *nl = '\0';
    if (!ready || out[0] != '/' || strlen(out) >= sizeof d->workdir) {
        char eb[400] = "";
        ssize_t n = libssh2_channel_read_stderr(ch, eb, sizeof eb - 1);
        eb[n > 0 ? n : 0] = '\0';
        libssh2_channel_free(ch);
        return sh_err_set(err, "device %s: cannot create a private working directory: %.300s", d->name,
                          eb[0] ? eb : out);
    }
    snprintf(d->workdir, sizeof d->workdir, "%s", out);
    si->has_timeout = strstr(nl + 1, "HAS_TIMEOUT") != NULL;
    si->has_taskset = strstr(nl + 1, "HAS_TASKSET") != NULL;
    si->keeper = ch;
    si->prepared = true;
    return 0;
}

static int ssh_prepare(sh_device *d, sh_err *err)
{
    ssh_impl *si = d->impl;
    int rc = ssh_connect(d, err);
    if (rc) return rc;
    if (si->prepared && si->verify_workdir) {
        /* an SFTP error: is the directory still there? */
        char q[1100], cmd[1200];
        sh_shell_quote(d->workdir, q, sizeof q);
        snprintf(cmd, sizeof cmd, "test -d %s", q);
        sh_dev_result r;
        rc = ssh_exec(d, cmd, d->connect_timeout_s + 10, &r, err);
        if (rc) return rc;
        if (!(r.exited && r.exit_code == 0)) si->prepared = false;
        si->verify_workdir = false;
        sh_dev_result_free(&r);
    }
    if (!si->prepared) return make_workdir(d, err);
    return 0;
}

static int sftp_ready(sh_device *d, sh_err *err)
{
    ssh_impl *si = d->impl;
    if (si->sftp) return 0;
    libssh2_session_set_blocking(si->s, 1);
    si->sftp = libssh2_sftp_init(si->s);
    if (!si->sftp) return ssh_transport_fail(d, err, "SFTP subsystem");
    return 0;
}

/* SFTP errors on an open session are file errors unless the session died. */
static int sftp_fail(sh_device *d, sh_err *err, const char *what, const char *path)
{
    ssh_impl *si = d->impl;
    int e = libssh2_session_last_errno(si->s);
    if (e == LIBSSH2_ERROR_SFTP_PROTOCOL) {
        unsigned long st = libssh2_sftp_last_error(si->sftp);
        if (si->prepared) si->verify_workdir = true;   /* was the directory removed? */
        return sh_err_set(err, "device %s: %s %s: SFTP status %lu", d->name, what, path, st);
    }
    char m[200];
    snprintf(m, sizeof m, "%s %s", what, path);
    return ssh_transport_fail(d, err, m);
}

static int ssh_push(sh_device *d, const char *local_path, const char *remote_name,
                    char *remote_path_out, size_t cap, sh_err *err)
{
    ssh_impl *si = d->impl;
    FILE *f = fopen(local_path, "rb");
    if (!f) return sh_err_set(err, "device %s: push: %s: %s", d->name, local_path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sh_err_set(err, "device %s: push: %s: not a regular file", d->name, local_path);
    }
    int rc = sftp_ready(d, err);
    if (rc) { fclose(f); return rc; }
    char dst[2048];
    snprintf(dst, sizeof dst, "%s/%s", d->workdir, remote_name);
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open(si->sftp, dst,
        LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC, (long)(st.st_mode & 0700) | 0600);
    if (!h) { fclose(f); return sftp_fail(d, err, "push: open", dst); }
    char buf[32768];
    size_t n;
    rc = 0;
    while (!rc && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        size_t off = 0;
        while (off < n) {
            ssize_t w = libssh2_sftp_write(h, buf + off, n - off);
            if (w < 0) { rc = -1; break; }
            off += (size_t)w;
        }
    }
    fclose(f);
    if (rc) {
        libssh2_sftp_close(h);
        return sftp_fail(d, err, "push: write", dst);
    }
    if (libssh2_sftp_close(h)) return sftp_fail(d, err, "push: close", dst);
    if (remote_path_out) snprintf(remote_path_out, cap, "%s", dst);
    return 0;
}

static int ssh_fetch(sh_device *d, const char *remote_path, const char *local_path, sh_err *err)
{
    ssh_impl *si = d->impl;
    int rc = sftp_ready(d, err);
    if (rc) return rc;
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open(si->sftp, remote_path, LIBSSH2_FXF_READ, 0);
    if (!h) return sftp_fail(d, err, "fetch: open", remote_path);
    FILE *f = fopen(local_path, "wb");
    if (!f) {
        libssh2_sftp_close(h);
        return sh_err_set(err, "device %s: fetch: %s: %s", d->name, local_path, strerror(errno));
    }
    char buf[32768];
    size_t total = 0;
    ssize_t n;
    while ((n = libssh2_sftp_read(h, buf, sizeof buf)) > 0) {
        total += (size_t)n;
        if (total > SH_DEV_MAX_FETCH) { n = -2; break; }
        if (fwrite(buf, 1, (size_t)n, f) != (size_t)n) { n = -3; break; }
    }
    fclose(f);
    libssh2_sftp_close(h);
    if (n == -2) return sh_err_set(err, "device %s: fetch %s: larger than %u bytes", d->name, remote_path, SH_DEV_MAX_FETCH);
    if (n == -3) return sh_err_set(err, "device %s: fetch: cannot write %s", d->name, local_path);
    if (n < 0) return sftp_fail(d, err, "fetch: read", remote_path);
    return 0;
}

/* What runs a program on the board: `sh -c RUN_SH starhil-run WORKDIR ARGV...`.
 * The program runs in the background with /dev/null as its input, and a
 * watcher waits for the end of the channel's input, which we never close
 * while we wait for the program: it ends when the channel or the connection
 * does, including when our process is killed.  The watcher then kills the
 * program's process group (timeout(1) puts the program in a group of its
 * own), the program, and the whole session (sshd runs each command in a
 * session of its own).  The program's end status is passed on as the
 * wrapper's own: an exit code, or death by the same signal. */
static const char RUN_SH[] =
    "cd -- \"$1\" || exit 125; shift; ulimit -c 0 2>/dev/null; exec 3<&0 </dev/null; "
    "\"$@\" & v=$!; "
    "{ while IFS= read -r _; do :; done <&3; kill -9 -$v $v 0; } >/dev/null 2>&1 & w=$!; "
    "exec 3<&-; wait $v; s=$?; kill -9 $w 2>/dev/null; "
    "case $s in 129|130|131|132|134|135|136|137|138|139|140|141|142|143) kill -$((s - 128)) $$;; esac; "
    "exit $s";

static int ssh_run(sh_device *d, char *const argv[], double timeout_s, sh_dev_result *res, sh_err *err)
{
    ssh_impl *si = d->impl;
    int n = 0;
    while (argv[n]) n++;
    char secs[32];
    snprintf(secs, sizeof secs, "%d", (int)(timeout_s + 0.999));
    char **av = calloc((size_t)n + 10, sizeof *av);
    if (!av) return sh_err_set(err, "device %s: out of memory", d->name);
    int k = 0;
    av[k++] = d->workdir;
    if (si->has_timeout && timeout_s > 0) { av[k++] = "timeout"; av[k++] = "-s"; av[k++] = "KILL"; av[k++] = secs; }
    if (si->has_taskset && d->cpus[0]) { av[k++] = "taskset"; av[k++] = "-c"; av[k++] = d->cpus; }
    for (int i = 0; i < n; i++) av[k++] = argv[i];
    av[k] = NULL;
    char q[2048], prefix[2200];
    sh_shell_quote(RUN_SH, q, sizeof q);
    snprintf(prefix, sizeof prefix, "exec sh -c %s starhil-run", q);
    char *cmd = sh_shell_join(prefix, av, 256 * 1024, err);
    free(av);
    if (!cmd) return sh_err_prefix(err, "device %s: run", d->name);
    /* our own deadline comes later than the board's timeout(1) */
    double client_timeout = timeout_s > 0 ? timeout_s + (si->has_timeout ? 10 : 0) : 0;
    int rc = ssh_exec(d, cmd, client_timeout, res, err);
    /* timeout(1) -s KILL on the board kills the program and itself (exit
     * signal KILL, or status 137 through a shell); our own deadline, a little
     * later, catches boards without timeout(1): closing the channel then ends
     * the program through the wrapper's watcher. */
    if (rc == 0 && timeout_s > 0 && res->seconds >= timeout_s - 0.5 &&
        (res->signal == 9 || (res->exited && res->exit_code == 137))) {
        res->timed_out = 1;
        res->exited = 0;
        res->signal = 0;
    }
    free(cmd);
    return rc;
}

static int ssh_cleanup(sh_device *d, sh_err *err)
{
    ssh_impl *si = d->impl;
    if (si->prepared && si->connected && si->keeper) {
        /* end of input: the keeper removes the directory and exits */
        libssh2_session_set_blocking(si->s, 1);
        libssh2_session_set_timeout(si->s, 30000);
        if (libssh2_channel_send_eof(si->keeper) == 0) {
            char buf[256];
            while (libssh2_channel_read(si->keeper, buf, sizeof buf) > 0) {}
            libssh2_channel_wait_eof(si->keeper);
            libssh2_channel_close(si->keeper);
            libssh2_channel_wait_closed(si->keeper);
        }
        libssh2_channel_free(si->keeper);
        si->keeper = NULL;
    }
    /* not connected any more: the keeper removed the directory when the
     * connection ended (or, if the board went down with it, the next run's
     * sweep will) */
    si->prepared = false;
    d->workdir[0] = '\0';
    ssh_disconnect(d);
    return 0;
}

static int ssh_describe(sh_device *d, char **json_out, sh_err *err)
{
    sh_dev_result r;
    int rc = ssh_exec(d, "lstopo-no-graphics --of xml - 2>/dev/null || lstopo --of xml - 2>/dev/null",
                      60, &r, err);
    if (rc) return rc;
    if (!(r.exited && r.exit_code == 0) || r.out_len == 0 || r.out_truncated) {
        sh_dev_result_free(&r);
        return sh_err_set(err, "device %s: no lstopo on the board (install hwloc there, or the "
                          "variant's probe mode is used)", d->name);
    }
    rc = shdev_topology_from_xml(r.out, r.out_len, json_out, err);
    sh_dev_result_free(&r);
    if (rc) sh_err_prefix(err, "device %s", d->name);
    return rc;
}

static void ssh_destroy(sh_device *d)
{
    ssh_disconnect(d);
    free(d->impl);
    d->impl = NULL;
}

static const sh_device_ops SSH_OPS = {
    ssh_prepare, ssh_push, ssh_run, ssh_fetch, ssh_cleanup, ssh_describe, ssh_destroy,
};

int shdev_ssh_init(sh_device *d, sh_err *err)
{
    if (!d->host[0]) return sh_err_set(err, "device %s: ssh needs --host", d->name);
    if (d->port <= 0) d->port = 22;
    if (d->port > 65535) return sh_err_set(err, "device %s: bad port %d", d->name, d->port);
    ssh_impl *si = calloc(1, sizeof *si);
    if (!si) return sh_err_set(err, "out of memory");
    si->sock = -1;
    d->impl = si;
    d->ops = &SSH_OPS;
    return 0;
}
