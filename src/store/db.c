/*
 * db: SQLite schema, migrations and record access (see db.h). Runs on the
 * loop thread; each call is one short statement, no fsync (WAL + NORMAL).
 */
#include "store/db.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"

struct db {
    sqlite3 *conn;
    sqlite3_stmt *fn_put, *fn_delete, *fn_all;
};

static const char *migrations[] = {
    /* 1 */
    "CREATE TABLE functions (name TEXT PRIMARY KEY, record TEXT NOT NULL);",
};

static int exec(sqlite3 *conn, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(conn, sql, NULL, NULL, &err) != SQLITE_OK) {
        log_error("sqlite: %s: %s", sql, err ? err : "?");
        sqlite3_free(err);
        return -EIO;
    }
    return 0;
}

static int migrate(sqlite3 *conn)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(conn, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    int version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    int latest = (int)(sizeof(migrations) / sizeof(migrations[0]));
    for (int v = version; v < latest; v++) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        if (exec(conn, "BEGIN") || exec(conn, migrations[v]) || exec(conn, sql) ||
            exec(conn, "COMMIT"))
            return -EIO;
    }
    return 0;
}

int db_open(const char *path, struct db **out)
{
    struct db *db = calloc(1, sizeof(*db));
    if (!db)
        return -ENOMEM;
    if (sqlite3_open_v2(path, &db->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        log_error("sqlite3_open %s: %s", path, sqlite3_errmsg(db->conn));
        goto error;
    }
    sqlite3_busy_timeout(db->conn, 5000);
    if (exec(db->conn, "PRAGMA journal_mode=WAL") || exec(db->conn, "PRAGMA synchronous=NORMAL") ||
        migrate(db->conn))
        goto error;
    if (sqlite3_prepare_v2(db->conn,
                           "INSERT INTO functions(name, record) VALUES(?, ?) "
                           "ON CONFLICT(name) DO UPDATE SET record = excluded.record",
                           -1, &db->fn_put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->conn, "DELETE FROM functions WHERE name = ?", -1, &db->fn_delete,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->conn, "SELECT name, record FROM functions ORDER BY name", -1,
                           &db->fn_all, NULL) != SQLITE_OK) {
        log_error("sqlite prepare: %s", sqlite3_errmsg(db->conn));
        goto error;
    }
    *out = db;
    return 0;
error:
    db_close(db);
    return -EIO;
}

void db_close(struct db *db)
{
    if (!db)
        return;
    sqlite3_finalize(db->fn_put);
    sqlite3_finalize(db->fn_delete);
    sqlite3_finalize(db->fn_all);
    sqlite3_close(db->conn);
    free(db);
}

static int step_done(struct db *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        log_error("sqlite step: %s", sqlite3_errmsg(db->conn));
        return -EIO;
    }
    return 0;
}

int db_function_put(struct db *db, const char *name, const char *record)
{
    sqlite3_bind_text(db->fn_put, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(db->fn_put, 2, record, -1, SQLITE_STATIC);
    return step_done(db, db->fn_put);
}

int db_function_delete(struct db *db, const char *name)
{
    sqlite3_bind_text(db->fn_delete, 1, name, -1, SQLITE_STATIC);
    return step_done(db, db->fn_delete);
}

int db_function_foreach(struct db *db, db_record_cb cb, void *arg)
{
    int rc;
    while ((rc = sqlite3_step(db->fn_all)) == SQLITE_ROW)
        cb((const char *)sqlite3_column_text(db->fn_all, 0),
           (const char *)sqlite3_column_text(db->fn_all, 1), arg);
    sqlite3_reset(db->fn_all);
    return rc == SQLITE_DONE ? 0 : -EIO;
}
