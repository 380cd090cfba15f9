/* db.c - opening and closing the run store, refusing files that are not ours
 * (or are newer, or read-only) without touching them, and nestable
 * transactions.  See runs.h. */
#include "runs/runs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SQLITE_MAGIC "SQLite format 3"   /* + NUL: the first 16 bytes */
#define BUSY_TIMEOUT_MS 10000

/* ---- checks before SQLite sees the file --------------------------------- */

/* A non-empty file must start with the SQLite header, else SQLite would be
 * asked to use something that is not a database.  The header is read through
 * the connection's own file handle, never with a plain open()/close(): on
 * POSIX, close() of any descriptor on a file drops every lock this process
 * holds on it, so another process would believe it is the last connection,
 * checkpoint, and delete the live WAL under our other connections (SQLite's
 * "How To Corrupt An SQLite Database File", 2.2).  SQLite's unix VFS shares
 * one inode record per file across connections and defers such closes. */
static int check_header(sh_db *db, sh_err *err)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(db->h, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK || !f ||
        !f->pMethods)
        return sh_err_set(err, "%s: cannot read the database file", db->path);
    sqlite3_int64 size = 0;
    if (f->pMethods->xFileSize(f, &size) != SQLITE_OK)
        return sh_err_set(err, "%s: cannot read the database file's size", db->path);
    if (size == 0) return 0;   /* SQLite treats an empty file as a new database */
    char head[16];
    int rc = size >= (sqlite3_int64)sizeof head ? f->pMethods->xRead(f, head, sizeof head, 0)
                                                : SQLITE_IOERR_SHORT_READ;
    if (rc != SQLITE_OK || memcmp(head, SQLITE_MAGIC, sizeof head) != 0 || size < 512)
        return sh_err_set(err, "%s: not a starhil database (file is not an SQLite database)", db->path);
    return 0;
}

static void dir_of(const char *path, char *dir, size_t cap)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(dir, cap, "%s", dirname(tmp));
}

/* Writing needs a writable file (we honour a write-protected mode even for
 * root) and a writable directory, where SQLite keeps FILE-wal and FILE-shm. */
static int check_writable(const char *path, bool exists, const struct stat *st, sh_err *err)
{
    if (exists && (st->st_mode & 0222) == 0)
        return sh_err_set(err, "%s: the file is read-only (mode %04o); this command writes to the "
                          "store, so it needs a writable copy (reading commands work as they are)",
                          path, (unsigned)(st->st_mode & 07777));
    if (exists && access(path, W_OK) != 0) {
        if (errno == EROFS)
            return sh_err_set(err, "%s: the file is on a read-only file system; this command writes "
                              "to the store (reading commands work as they are)", path);
        return sh_err_set(err, "%s: you may not write this file (owner uid %u, mode %04o, you are uid "
                          "%u); this command writes to the store (reading commands work as they are)",
                          path, (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777), (unsigned)geteuid());
    }
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    struct stat dst;
    if (stat(dir, &dst) != 0)
        return sh_err_set(err, "%s: directory %s: %s", path, dir, strerror(errno));
    int dir_errno = access(dir, W_OK) == 0 ? 0 : errno;
    if ((dst.st_mode & 0222) == 0 || dir_errno != 0) {
        const char *why = dir_errno == EROFS ? "is on a read-only file system" : "is read-only to you";
        return sh_err_set(err, "%s: directory %s %s; %s", path, dir, why,
                          exists ? "writing needs the -wal and -shm files beside the database "
                                   "(reading commands work as they are)"
                                 : "cannot create the database there");
    }
    return 0;
}

static int check_file(const char *path, int flags, sh_err *err)
{
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (!exists && errno != ENOENT)
        return sh_err_set(err, "%s: %s", path, strerror(errno));
    if (exists && !S_ISREG(st.st_mode))
        return sh_err_set(err, "%s: not a starhil database (not a regular file)", path);
    if (!exists && ((flags & SH_DB_READONLY) || !(flags & SH_DB_CREATE)))
        return sh_err_set(err, "%s: no such database file", path);
    if (!(flags & SH_DB_READONLY) && check_writable(path, exists, &st, err) != 0) return -1;
    return 0;
}

/* ---- what is inside ------------------------------------------------------- */

typedef struct db_identity {
    long long app_id, version, n_tables;
} db_identity;

static int read_identity_now(sh_db *db, db_identity *id, sh_err *err)
{
    if (shdb_read_pragma_int(db, "application_id", &id->app_id, err) != 0) return -1;
    if (shdb_read_pragma_int(db, "user_version", &id->version, err) != 0) return -1;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'",
                     &st, err, "read the schema") != 0) return -1;
    int rc = sqlite3_step(st);
    id->n_tables = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return shdb_sql_error(db, err, "read the schema");
    return 0;
}

/* Reads the three facts from one snapshot (a read transaction), so another
 * process migrating the file meanwhile cannot give a mixed answer. */
static int read_identity(sh_db *db, db_identity *id, sh_err *err)
{
    if (sqlite3_exec(db->h, "BEGIN DEFERRED", NULL, NULL, NULL) != SQLITE_OK)
        return shdb_sql_error(db, err, "begin reading");
    int rc = read_identity_now(db, id, err);
    sqlite3_exec(db->h, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Decides, from the identity alone, whether this file may be used. */
static int check_identity(sh_db *db, const db_identity *id, int flags, sh_err *err)
{
    const char *p = db->path;
    bool ours = id->app_id == SH_DB_APPLICATION_ID;
    bool blank = id->app_id == 0 && id->version == 0 && id->n_tables == 0;
    if (!ours && !blank) {
        if (id->app_id != 0)
            return sh_err_set(err, "%s: not a starhil database (SQLite application_id 0x%08llx, "
                              "starhil uses 0x%08x)", p, (unsigned long long)(uint32_t)id->app_id,
                              (unsigned)SH_DB_APPLICATION_ID);
        return sh_err_set(err, "%s: not a starhil database (an SQLite database with %lld other "
                          "table(s)/index(es) and no starhil application_id)", p, id->n_tables);
    }
    if (id->version > SH_DB_SCHEMA_VERSION)
        return sh_err_set(err, "%s: written by a newer starhil (schema version %lld; this starhil "
                          "supports up to version %d); upgrade starhil to use it", p, id->version,
                          SH_DB_SCHEMA_VERSION);
    if ((flags & SH_DB_READONLY) && id->version < SH_DB_READABLE_FROM) {
        if (blank)
            return sh_err_set(err, "%s: empty database (no starhil tables yet)", p);
        return sh_err_set(err, "%s: schema version %lld is older than this starhil's (%d); open it "
                          "once for writing (any command that stores something) to upgrade it",
                          p, id->version, SH_DB_SCHEMA_VERSION);
    }
    return 0;
}

static int exec_simple(sh_db *db, const char *sql, sh_err *err, const char *what)
{
    if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK) return shdb_sql_error(db, err, what);
    return 0;
}

/* Runs a journal_mode pragma; *mode gets the resulting mode. Returns the
 * SQLite result code of the step. */
static int journal_mode(sh_db *db, const char *sql, char *mode, size_t cap)
{
    sqlite3_stmt *st;
    mode[0] = '\0';
    int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) shdb_col_copy(st, 0, mode, cap);
    sqlite3_finalize(st);
    return rc;
}

/* Switching to WAL needs an exclusive lock, and SQLite does not call the busy
 * handler for it, so another opener holding the file makes us retry here. */
static int set_wal(sh_db *db, sh_err *err)
{
    char mode[16];
    if (journal_mode(db, "PRAGMA journal_mode", mode, sizeof mode) == SQLITE_ROW && !strcmp(mode, "wal"))
        return 0;
    for (int waited_ms = 0;; waited_ms += 20) {
        int rc = journal_mode(db, "PRAGMA journal_mode=WAL", mode, sizeof mode);
        if (rc == SQLITE_ROW) break;
        if (((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) || waited_ms >= BUSY_TIMEOUT_MS)
            return shdb_sql_error(db, err, "switch to WAL");
        usleep(20 * 1000);
    }
    if (strcmp(mode, "wal") != 0 && !(strcmp(mode, "memory") == 0 && strcmp(db->path, ":memory:") == 0))
        return sh_err_set(err, "%s: cannot switch to WAL journal mode (got '%s')", db->path, mode);
    return 0;
}

static int configure(sh_db *db, int flags, sh_err *err)
{
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, BUSY_TIMEOUT_MS);
    if (!(flags & SH_DB_READONLY) && sqlite3_db_readonly(db->h, "main") == 1)
        return sh_err_set(err, "%s: the file is read-only; cannot open it for writing", db->path);
    db_identity id;
    if (read_identity(db, &id, err) != 0) return -1;
    if (check_identity(db, &id, flags, err) != 0) return -1;
    if (exec_simple(db, "PRAGMA foreign_keys=ON", err, "enable foreign keys") != 0) return -1;
    if (flags & SH_DB_READONLY)
        return exec_simple(db, "PRAGMA query_only=ON", err, "set query_only");
    if (set_wal(db, err) != 0) return -1;
    if (exec_simple(db, "PRAGMA synchronous=NORMAL", err, "set synchronous") != 0) return -1;
    return shdb_migrate(db, err);
}

int sh_db_open(const char *path, int flags, sh_db **out, sh_err *err)
{
    *out = NULL;
    if (!path || !*path) return sh_err_set(err, "run store: empty database path");
    if (strlen(path) >= 4000) return sh_err_set(err, "run store: database path too long");
    bool in_memory = strcmp(path, ":memory:") == 0;   /* private, for tests and tools */
    if (!in_memory && check_file(path, flags, err) != 0) return -1;
    sh_db *db = calloc(1, sizeof *db);
    if (!db || !(db->path = strdup(path))) {
        free(db);
        return sh_err_set(err, "%s: out of memory", path);
    }
    db->flags = flags;
    int oflags = (flags & SH_DB_READONLY) ? SQLITE_OPEN_READONLY
               : SQLITE_OPEN_READWRITE | ((flags & SH_DB_CREATE) ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &db->h, oflags | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        sh_err_set(err, "%s: cannot open: %s", path, db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
        sh_db_close(db);
        return -1;
    }
    if ((!in_memory && check_header(db, err) != 0) || configure(db, flags, err) != 0) {
        sh_db_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

void sh_db_close(sh_db *db)
{
    if (!db) return;
    if (db->tx_depth > 0 && db->h) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    if (db->h) sqlite3_close_v2(db->h);
    free(db->path);
    free(db);
}

const char *sh_db_path(const sh_db *db) { return db ? db->path : ""; }

/* ---- transactions ---------------------------------------------------------- */

int sh_db_begin(sh_db *db, sh_err *err)
{
    if (db->tx_depth == 0) {
        if (exec_simple(db, "BEGIN IMMEDIATE", err, "begin transaction") != 0) return -1;
        db->tx_doomed = false;
    }
    db->tx_depth++;
    return 0;
}

int sh_db_commit(sh_db *db, sh_err *err)
{
    if (db->tx_depth <= 0) return sh_err_set(err, "%s: commit without a transaction", db->path);
    if (--db->tx_depth > 0) return 0;
    if (db->tx_doomed) {
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
        db->tx_doomed = false;
        return sh_err_set(err, "%s: transaction rolled back (an inner step failed)", db->path);
    }
    if (sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        shdb_sql_error(db, err, "commit");
        if (!sqlite3_get_autocommit(db->h)) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

void sh_db_rollback(sh_db *db)
{
    if (!db || db->tx_depth <= 0) return;
    if (--db->tx_depth > 0) {
        db->tx_doomed = true;
        return;
    }
    db->tx_doomed = false;
    if (!sqlite3_get_autocommit(db->h)) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

int sh_db_in_transaction(const sh_db *db) { return db ? db->tx_depth : 0; }
