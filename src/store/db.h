/*
 * db: the SQLite database under the data dir (WAL, synchronous=NORMAL: a
 * committed write survives kill -9 of the daemon). Owns the schema and its
 * migrations and the prepared statements. Services keep their records as
 * JSON documents in per-kind tables; control-plane operations write them.
 * The one data-plane writer is the asynchronous invocation queue (an Event
 * invoke is stored before it is acknowledged); synchronous invokes never
 * touch the db.
 */
#ifndef IGNIS_STORE_DB_H
#define IGNIS_STORE_DB_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct db;

int db_open(const char *path, struct db **out); /* 0 or -errno/-EIO */
void db_close(struct db *db);
/* The connection, for a service that keeps its own statements on its own tables
 * (metrics: migration 5). Loop thread only, like every other use. */
struct sqlite3 *db_sqlite(struct db *db);

/* Functions: name -> JSON record. */
int db_function_put(struct db *db, const char *name, const char *record);
int db_function_delete(struct db *db, const char *name);
typedef void (*db_record_cb)(const char *key, const char *record, void *arg);
int db_function_foreach(struct db *db, db_record_cb cb, void *arg);

/* API Gateway HTTP APIs: api id -> JSON record (the API with its routes,
 * integrations and stages). */
int db_http_api_put(struct db *db, const char *id, const char *record);
int db_http_api_delete(struct db *db, const char *id);
int db_http_api_foreach(struct db *db, db_record_cb cb, void *arg);

/* Asynchronous invocations (Lambda's event queue): one row per accepted event
 * from before its 202 is sent until its final outcome. Each call is its own
 * transaction (committed when it returns), except db_async_delete, which
 * deletes a batch in one. */
struct db_async_event {
    const char *id;        /* the request id the 202 answered with */
    const char *function;  /* function name */
    const char *qualifier; /* as invoked: "", "$LATEST", a version or an alias */
    const void *payload;   /* the event (NULL in db_async_foreach) */
    size_t payload_len;
    const char *client_context; /* decoded JSON, or NULL */
    int64_t received_ms;        /* epoch ms the event was accepted */
    int64_t due_ms;             /* epoch ms of its next attempt */
    int attempts;               /* attempts that failed so far */
};
int db_async_put(struct db *db, const struct db_async_event *ev);
int db_async_set_attempts(struct db *db, const char *id, int attempts, int64_t due_ms);
int db_async_delete(struct db *db, char *const *ids, size_t n);
/* Every stored event in arrival order, without payload or client context. */
typedef void (*db_async_cb)(const struct db_async_event *ev, void *arg);
int db_async_foreach(struct db *db, db_async_cb cb, void *arg);
/* Appends an event's payload to payload and, if it has one, sets
 * *client_context to a copy of its client context (the caller frees it).
 * Returns 0, -ENOENT when the event is not stored, or -EIO. */
int db_async_payload(struct db *db, const char *id, struct buf *payload, char **client_context);

#endif
