/*
 * db: SQLite schema, migrations and record access (see db.h). Runs on the
 * loop thread; each call is one short statement, no fsync (WAL + NORMAL).
 */
#include "store/db.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

struct db {
    sqlite3 *conn;
    sqlite3_stmt *fn_put, *fn_delete, *fn_all;
    sqlite3_stmt *api_put, *api_delete, *api_all;
    sqlite3_stmt *ev_put, *ev_attempts, *ev_delete, *ev_all, *ev_payload;
};

static const char *migrations[] = {
    /* 1 */
    "CREATE TABLE functions (name TEXT PRIMARY KEY, record TEXT NOT NULL);",
    /* 2: asynchronous invocations waiting for their final outcome */
    "CREATE TABLE async_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
    "function TEXT NOT NULL, qualifier TEXT NOT NULL, payload BLOB NOT NULL, client_context TEXT, "
    "received_ms INTEGER NOT NULL, attempts INTEGER NOT NULL, due_ms INTEGER NOT NULL);",
    /* 3: API Gateway HTTP APIs */
    "CREATE TABLE http_apis (id TEXT PRIMARY KEY, record TEXT NOT NULL);",
    /* 4: S3 buckets, objects (keys as BLOBs: byte order), multipart uploads and parts */
    "CREATE TABLE s3_buckets (name TEXT PRIMARY KEY, region TEXT NOT NULL, "
    "created_ms INTEGER NOT NULL, notification TEXT);"
    "CREATE TABLE s3_objects (bucket TEXT NOT NULL, key BLOB NOT NULL, size INTEGER NOT NULL, "
    "etag TEXT NOT NULL, modified_ms INTEGER NOT NULL, file TEXT NOT NULL, headers TEXT NOT NULL, "
    "PRIMARY KEY (bucket, key)) WITHOUT ROWID;"
    "CREATE INDEX s3_objects_file ON s3_objects(file);"
    "CREATE TABLE s3_uploads (id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key BLOB NOT NULL, "
    "created_ms INTEGER NOT NULL, headers TEXT NOT NULL);"
    "CREATE INDEX s3_uploads_key ON s3_uploads(bucket, key, id);"
    "CREATE TABLE s3_parts (upload TEXT NOT NULL, number INTEGER NOT NULL, size INTEGER NOT NULL, "
    "etag TEXT NOT NULL, modified_ms INTEGER NOT NULL, file TEXT NOT NULL, "
    "PRIMARY KEY (upload, number)) WITHOUT ROWID;"
    "CREATE INDEX s3_parts_file ON s3_parts(file);",
    /* 5: metrics (src/services/metrics): series, their per-minute aggregates (a row per
     * flush; queries add them up), alarms with their history, and the billing meter */
    "CREATE TABLE metric_series (id INTEGER PRIMARY KEY, namespace TEXT NOT NULL, "
    "name TEXT NOT NULL, dims TEXT NOT NULL, unit TEXT NOT NULL, UNIQUE(namespace, name, dims));"
    "CREATE TABLE metric_data (series INTEGER NOT NULL, ts INTEGER NOT NULL, count REAL NOT NULL, "
    "sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL, hist BLOB);"
    "CREATE INDEX metric_data_by_series ON metric_data(series, ts);"
    "CREATE TABLE alarms (name TEXT PRIMARY KEY, record TEXT NOT NULL);"
    "CREATE TABLE alarm_history (seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
    "ts INTEGER NOT NULL, item TEXT NOT NULL);"
    "CREATE TABLE billing (function TEXT NOT NULL, hour INTEGER NOT NULL, "
    "requests INTEGER NOT NULL, billed_ms INTEGER NOT NULL, mb_ms INTEGER NOT NULL, "
    "PRIMARY KEY(function, hour));",
};

struct statement {
    sqlite3_stmt **st;
    const char *sql;
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
    const struct statement statements[] = {
        {&db->fn_put, "INSERT INTO functions(name, record) VALUES(?, ?) "
                      "ON CONFLICT(name) DO UPDATE SET record = excluded.record"},
        {&db->fn_delete, "DELETE FROM functions WHERE name = ?"},
        {&db->fn_all, "SELECT name, record FROM functions ORDER BY name"},
        {&db->api_put, "INSERT INTO http_apis(id, record) VALUES(?, ?) "
                       "ON CONFLICT(id) DO UPDATE SET record = excluded.record"},
        {&db->api_delete, "DELETE FROM http_apis WHERE id = ?"},
        {&db->api_all, "SELECT id, record FROM http_apis ORDER BY id"},
        {&db->ev_put, "INSERT INTO async_events(id, function, qualifier, payload, client_context, "
                      "received_ms, attempts, due_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?)"},
        {&db->ev_attempts, "UPDATE async_events SET attempts = ?, due_ms = ? WHERE id = ?"},
        {&db->ev_delete, "DELETE FROM async_events WHERE id = ?"},
        {&db->ev_all, "SELECT id, function, qualifier, received_ms, attempts, due_ms "
                      "FROM async_events ORDER BY seq"},
        {&db->ev_payload, "SELECT payload, client_context FROM async_events WHERE id = ?"},
    };
    for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++) {
        if (sqlite3_prepare_v2(db->conn, statements[i].sql, -1, statements[i].st, NULL) !=
            SQLITE_OK) {
            log_error("sqlite prepare %s: %s", statements[i].sql, sqlite3_errmsg(db->conn));
            goto error;
        }
    }
    *out = db;
    return 0;
error:
    db_close(db);
    return -EIO;
}

struct sqlite3 *db_sqlite(struct db *db)
{
    return db->conn;
}

void db_close(struct db *db)
{
    if (!db)
        return;
    sqlite3_finalize(db->fn_put);
    sqlite3_finalize(db->fn_delete);
    sqlite3_finalize(db->fn_all);
    sqlite3_finalize(db->api_put);
    sqlite3_finalize(db->api_delete);
    sqlite3_finalize(db->api_all);
    sqlite3_finalize(db->ev_put);
    sqlite3_finalize(db->ev_attempts);
    sqlite3_finalize(db->ev_delete);
    sqlite3_finalize(db->ev_all);
    sqlite3_finalize(db->ev_payload);
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

/* A keyed JSON record table: put, delete, every row in key order. */
static int record_put(struct db *db, sqlite3_stmt *st, const char *key, const char *record)
{
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, record, -1, SQLITE_STATIC);
    return step_done(db, st);
}

static int record_delete(struct db *db, sqlite3_stmt *st, const char *key)
{
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    return step_done(db, st);
}

static int record_foreach(sqlite3_stmt *st, db_record_cb cb, void *arg)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1), arg);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int db_function_put(struct db *db, const char *name, const char *record)
{
    return record_put(db, db->fn_put, name, record);
}

int db_function_delete(struct db *db, const char *name)
{
    return record_delete(db, db->fn_delete, name);
}

int db_function_foreach(struct db *db, db_record_cb cb, void *arg)
{
    return record_foreach(db->fn_all, cb, arg);
}

/*=== HTTP APIs ===*/

int db_http_api_put(struct db *db, const char *id, const char *record)
{
    return record_put(db, db->api_put, id, record);
}

int db_http_api_delete(struct db *db, const char *id)
{
    return record_delete(db, db->api_delete, id);
}

int db_http_api_foreach(struct db *db, db_record_cb cb, void *arg)
{
    return record_foreach(db->api_all, cb, arg);
}

/*=== Asynchronous invocations ===*/

int db_async_put(struct db *db, const struct db_async_event *ev)
{
    sqlite3_stmt *st = db->ev_put;
    sqlite3_bind_text(st, 1, ev->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ev->function, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ev->qualifier, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 4, ev->payload ? ev->payload : "", ev->payload_len, SQLITE_STATIC);
    if (ev->client_context)
        sqlite3_bind_text(st, 5, ev->client_context, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, ev->received_ms);
    sqlite3_bind_int(st, 7, ev->attempts);
    sqlite3_bind_int64(st, 8, ev->due_ms);
    return step_done(db, st);
}

int db_async_set_attempts(struct db *db, const char *id, int attempts, int64_t due_ms)
{
    sqlite3_bind_int(db->ev_attempts, 1, attempts);
    sqlite3_bind_int64(db->ev_attempts, 2, due_ms);
    sqlite3_bind_text(db->ev_attempts, 3, id, -1, SQLITE_STATIC);
    return step_done(db, db->ev_attempts);
}

int db_async_delete(struct db *db, char *const *ids, size_t n)
{
    if (n == 0)
        return 0;
    if (exec(db->conn, "BEGIN"))
        return -EIO;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_text(db->ev_delete, 1, ids[i], -1, SQLITE_STATIC);
        if (step_done(db, db->ev_delete) < 0) {
            exec(db->conn, "ROLLBACK");
            return -EIO;
        }
    }
    return exec(db->conn, "COMMIT");
}

int db_async_foreach(struct db *db, db_async_cb cb, void *arg)
{
    sqlite3_stmt *st = db->ev_all;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_async_event ev = {
            .id = (const char *)sqlite3_column_text(st, 0),
            .function = (const char *)sqlite3_column_text(st, 1),
            .qualifier = (const char *)sqlite3_column_text(st, 2),
            .received_ms = sqlite3_column_int64(st, 3),
            .attempts = sqlite3_column_int(st, 4),
            .due_ms = sqlite3_column_int64(st, 5),
        };
        if (ev.id && ev.function && ev.qualifier)
            cb(&ev, arg);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int db_async_payload(struct db *db, const char *id, struct buf *payload, char **client_context)
{
    sqlite3_stmt *st = db->ev_payload;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), out = 0;
    if (rc == SQLITE_ROW) {
        const void *data = sqlite3_column_blob(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        const char *cc = (const char *)sqlite3_column_text(st, 1);
        if ((len > 0 && buf_append(payload, data, (size_t)len) < 0) ||
            (cc && client_context && !(*client_context = strdup(cc))))
            out = -ENOMEM;
    } else if (rc == SQLITE_DONE) {
        out = -ENOENT;
    } else {
        log_error("sqlite step: %s", sqlite3_errmsg(db->conn));
        out = -EIO;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return out;
}
