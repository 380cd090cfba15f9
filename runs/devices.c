/* devices.c - the devices table: measurement targets (local, ssh, adb,
 * qemu-aarch64) with their connection settings, topology and health. */
#include "runs/runs_internal.h"

#include <stdlib.h>
#include <string.h>

#define DEVICE_COLS "name, kind, host, port, user, key_path, target, cpus, workdir, " \
                    "options_json, topology_json, healthy, fail_count"

static int validate_device(const sh_device_rec *d, sh_err *err)
{
    if (shdb_check_str(d->name, sizeof d->name, true, "device name", err)) return -1;
    if (shdb_check_str(d->kind, sizeof d->kind, true, "device kind", err)) return -1;
    if (shdb_check_str(d->host, sizeof d->host, false, "device host", err)) return -1;
    if (shdb_check_str(d->user, sizeof d->user, false, "device user", err)) return -1;
    if (shdb_check_str(d->key_path, sizeof d->key_path, false, "device key path", err)) return -1;
    if (shdb_check_str(d->target, sizeof d->target, false, "device target", err)) return -1;
    if (shdb_check_str(d->cpus, sizeof d->cpus, false, "device cpus", err)) return -1;
    if (shdb_check_str(d->workdir, sizeof d->workdir, false, "device workdir", err)) return -1;
    if (d->port < 0 || d->port > 65535)
        return sh_err_set(err, "device '%s': port %d out of range 0-65535", d->name, d->port);
    if (shdb_check_json(d->options_json, true, "device options", err)) return -1;
    if (shdb_check_json(d->topology_json, true, "device topology", err)) return -1;
    return 0;
}

static bool device_exists(sh_db *db, const char *name, int *found, sh_err *err)
{
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT 1 FROM devices WHERE name = ?1", &st, err, "find device") != 0)
        return false;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) { shdb_sql_error(db, err, "find device"); return false; }
    *found = rc == SQLITE_ROW;
    return true;
}

int sh_db_add_device(sh_db *db, const sh_device_rec *d, sh_err *err)
{
    if (validate_device(d, err) != 0) return sh_err_prefix(err, "%s: add device", db->path);
    if (sh_db_begin(db, err) != 0) return -1;
    int found = 0;
    if (!device_exists(db, d->name, &found, err)) goto fail;
    if (found) {
        sh_err_set(err, "%s: device '%s' already exists", db->path, d->name);
        goto fail;
    }
    sqlite3_stmt *st;
    if (shdb_prepare(db, "INSERT INTO devices(" DEVICE_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                         "?9, ?10, ?11, ?12, ?13)", &st, err, "add device") != 0)
        goto fail;
    const char *texts[] = {d->name, d->kind, d->host};
    for (int i = 0; i < 3; i++) shdb_bind_text(st, i + 1, texts[i], false);
    sqlite3_bind_int(st, 4, d->port);
    const char *texts2[] = {d->user, d->key_path, d->target, d->cpus, d->workdir};
    for (int i = 0; i < 5; i++) shdb_bind_text(st, i + 5, texts2[i], false);
    shdb_bind_text(st, 10, d->options_json, true);
    shdb_bind_text(st, 11, d->topology_json, true);
    sqlite3_bind_int(st, 12, d->healthy ? 1 : 0);
    sqlite3_bind_int(st, 13, d->fail_count);
    if (shdb_step_done(db, st, err, "add device") != 0) goto fail;
    return sh_db_commit(db, err);
fail:
    sh_db_rollback(db);
    return -1;
}

static int read_device(sqlite3_stmt *st, sh_device_rec *d)
{
    memset(d, 0, sizeof *d);
    shdb_col_copy(st, 0, d->name, sizeof d->name);
    shdb_col_copy(st, 1, d->kind, sizeof d->kind);
    shdb_col_copy(st, 2, d->host, sizeof d->host);
    d->port = sqlite3_column_int(st, 3);
    shdb_col_copy(st, 4, d->user, sizeof d->user);
    shdb_col_copy(st, 5, d->key_path, sizeof d->key_path);
    shdb_col_copy(st, 6, d->target, sizeof d->target);
    shdb_col_copy(st, 7, d->cpus, sizeof d->cpus);
    shdb_col_copy(st, 8, d->workdir, sizeof d->workdir);
    bool oom = false;
    d->options_json = shdb_col_dup(st, 9, &oom);
    d->topology_json = shdb_col_dup(st, 10, &oom);
    d->healthy = sqlite3_column_int(st, 11) != 0;
    d->fail_count = sqlite3_column_int(st, 12);
    if (oom) { sh_device_rec_free(d); return -1; }
    return 0;
}

static int read_device_row(sqlite3_stmt *st, void *d) { return read_device(st, d); }
static void free_device(void *d) { sh_device_rec_free(d); }

int sh_db_get_device(sh_db *db, const char *name, sh_device_rec *out, sh_err *err)
{
    memset(out, 0, sizeof *out);
    if (!name) return sh_err_set(err, "%s: get device: no name", db->path);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT " DEVICE_COLS " FROM devices WHERE name = ?1", &st, err, "get device") != 0)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), ret = -1;
    if (rc == SQLITE_ROW) {
        ret = read_device(st, out);
        if (ret != 0) sh_err_set(err, "%s: get device '%s': out of memory", db->path, name);
    } else if (rc == SQLITE_DONE) {
        sh_err_set(err, "%s: no device named '%s'", db->path, name);
    } else {
        shdb_sql_error(db, err, "get device");
    }
    sqlite3_finalize(st);
    return ret;
}

int sh_db_list_devices(sh_db *db, sh_device_rec **out, int *n, sh_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (shdb_prepare(db, "SELECT " DEVICE_COLS " FROM devices ORDER BY name", &st, err, "list devices") != 0)
        return -1;
    void *arr;
    int rc = shdb_collect(db, st, sizeof **out, read_device_row, free_device, &arr, n, err, "list devices");
    *out = arr;
    return rc;
}

/* Runs a one-row UPDATE/DELETE on a device; error if no such device. */
static int change_device(sh_db *db, sqlite3_stmt *st, const char *name, const char *what, sh_err *err)
{
    if (sh_db_begin(db, err) != 0) { sqlite3_finalize(st); return -1; }
    if (shdb_step_done(db, st, err, what) != 0) goto fail;
    if (sqlite3_changes(db->h) == 0) {
        sh_err_set(err, "%s: %s: no device named '%s'", db->path, what, name);
        goto fail;
    }
    return sh_db_commit(db, err);
fail:
    sh_db_rollback(db);
    return -1;
}

int sh_db_remove_device(sh_db *db, const char *name, sh_err *err)
{
    if (!name) return sh_err_set(err, "%s: remove device: no name", db->path);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "DELETE FROM devices WHERE name = ?1", &st, err, "remove device") != 0) return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    return change_device(db, st, name, "remove device", err);
}

int sh_db_set_device_topology(sh_db *db, const char *name, const char *topology_json, sh_err *err)
{
    if (!name) return sh_err_set(err, "%s: set device topology: no name", db->path);
    if (shdb_check_json(topology_json, true, "device topology", err) != 0)
        return sh_err_prefix(err, "%s: device '%s'", db->path, name);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "UPDATE devices SET topology_json = ?2 WHERE name = ?1", &st, err,
                     "set device topology") != 0)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    shdb_bind_text(st, 2, topology_json, true);
    return change_device(db, st, name, "set device topology", err);
}

int sh_db_set_device_health(sh_db *db, const char *name, bool healthy, int fail_count, sh_err *err)
{
    if (!name) return sh_err_set(err, "%s: set device health: no name", db->path);
    sqlite3_stmt *st;
    if (shdb_prepare(db, "UPDATE devices SET healthy = ?2, fail_count = ?3 WHERE name = ?1", &st, err,
                     "set device health") != 0)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, healthy ? 1 : 0);
    sqlite3_bind_int(st, 3, fail_count);
    return change_device(db, st, name, "set device health", err);
}
