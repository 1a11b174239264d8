/*
 * db: the SQLite database under the data dir (WAL, synchronous=NORMAL: a
 * committed write survives kill -9 of the daemon). Owns the schema and its
 * migrations and the prepared statements. Services keep their records as
 * JSON documents in per-kind tables; only control-plane operations write,
 * never the invoke path.
 */
#ifndef IGNIS_STORE_DB_H
#define IGNIS_STORE_DB_H

struct db;

int db_open(const char *path, struct db **out); /* 0 or -errno/-EIO */
void db_close(struct db *db);

/* Functions: name -> JSON record. */
int db_function_put(struct db *db, const char *name, const char *record);
int db_function_delete(struct db *db, const char *name);
typedef void (*db_record_cb)(const char *key, const char *record, void *arg);
int db_function_foreach(struct db *db, db_record_cb cb, void *arg);

#endif
