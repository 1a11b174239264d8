/*
 * meta: S3's metadata in SQLite (tables made by migration 4 in
 * src/store/db.c): buckets, objects (bucket, key) -> size, ETag, time, file
 * id and stored headers, multipart uploads and their parts. Keys are BLOBs,
 * so the primary key orders them by UTF-8 byte order and a listing page is
 * an index range scan. Uses a connection of its own to the daemon's db file
 * (WAL), on the loop thread; each change is one short transaction.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "services/s3/s3_internal.h"

#define OBJECT_COLS "size, etag, modified_ms, file, headers"

static const char *const sql[ST_COUNT] = {
    [ST_BUCKET_GET] =
        "SELECT name, region, created_ms, notification FROM s3_buckets WHERE name = ?",
    [ST_BUCKET_PUT] = "INSERT INTO s3_buckets(name, region, created_ms) VALUES(?, ?, ?)",
    [ST_BUCKET_DELETE] = "DELETE FROM s3_buckets WHERE name = ?",
    [ST_BUCKET_ALL] = "SELECT name, region, created_ms, notification FROM s3_buckets ORDER BY name",
    [ST_BUCKET_NOTIFY] = "UPDATE s3_buckets SET notification = ? WHERE name = ?",
    [ST_BUCKET_ANY_OBJECT] = "SELECT 1 FROM s3_objects WHERE bucket = ? LIMIT 1",
    [ST_OBJECT_GET] = "SELECT " OBJECT_COLS " FROM s3_objects WHERE bucket = ? AND key = ?",
    [ST_OBJECT_PUT] = "INSERT OR REPLACE INTO s3_objects(bucket, key, " OBJECT_COLS
                      ") VALUES(?, ?, ?, ?, ?, ?, ?)",
    [ST_OBJECT_DELETE] = "DELETE FROM s3_objects WHERE bucket = ? AND key = ?",
    [ST_OBJECT_RANGE] = "SELECT " OBJECT_COLS ", key FROM s3_objects WHERE bucket = ?1 AND "
                        "key >= ?2 AND (?3 IS NULL OR key < ?3) ORDER BY key LIMIT ?4",
    [ST_UPLOAD_PUT] = "INSERT INTO s3_uploads(id, bucket, key, created_ms, headers) "
                      "VALUES(?, ?, ?, ?, ?)",
    [ST_UPLOAD_GET] = "SELECT id, bucket, key, created_ms, headers FROM s3_uploads WHERE id = ?",
    [ST_UPLOAD_DELETE] = "DELETE FROM s3_uploads WHERE id = ?",
    [ST_UPLOAD_LIST] = "SELECT id, bucket, key, created_ms, headers FROM s3_uploads "
                       "WHERE bucket = ?1 AND (key > ?2 OR (key = ?2 AND id > ?3)) "
                       "ORDER BY key, id LIMIT ?4",
    [ST_UPLOADS_OF_BUCKET] = "SELECT id, bucket, key, created_ms, headers FROM s3_uploads "
                             "WHERE bucket = ?",
    [ST_PART_GET] = "SELECT number, size, etag, modified_ms, file FROM s3_parts "
                    "WHERE upload = ? AND number = ?",
    [ST_PART_PUT] = "INSERT OR REPLACE INTO s3_parts(upload, number, size, etag, modified_ms, "
                    "file) VALUES(?, ?, ?, ?, ?, ?)",
    [ST_PART_LIST] = "SELECT number, size, etag, modified_ms, file FROM s3_parts "
                     "WHERE upload = ? AND number > ? ORDER BY number LIMIT ?",
    [ST_PARTS_DELETE] = "DELETE FROM s3_parts WHERE upload = ?",
    [ST_FILE_USED] = "SELECT (SELECT count(*) FROM s3_objects WHERE file = ?1) + "
                     "(SELECT count(*) FROM s3_parts WHERE file = ?1)",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

int s3_meta_open(struct s3 *s3, const char *db_path)
{
    if (sqlite3_open_v2(db_path, &s3->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        log_error("s3: sqlite3_open %s: %s", db_path, sqlite3_errmsg(s3->db));
        return -EIO;
    }
    sqlite3_busy_timeout(s3->db, 5000);
    char *err = NULL;
    if (sqlite3_exec(s3->db, "PRAGMA synchronous=NORMAL", NULL, NULL, &err) != SQLITE_OK) {
        log_error("s3: sqlite: %s", err ? err : "?");
        sqlite3_free(err);
        return -EIO;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v2(s3->db, sql[i], -1, &s3->st[i], NULL) != SQLITE_OK) {
            log_error("s3: sqlite prepare %s: %s", sql[i], sqlite3_errmsg(s3->db));
            return -EIO;
        }
    }
    return 0;
}

void s3_meta_close(struct s3 *s3)
{
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s3->st[i]);
    if (s3->db)
        sqlite3_close(s3->db);
    s3->db = NULL;
}

static int done(struct s3 *s3, sqlite3_stmt *st, int rc)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        log_error("s3: sqlite: %s", sqlite3_errmsg(s3->db));
        return -EIO;
    }
    return 0;
}

static int run(struct s3 *s3, enum s3_statement which)
{
    sqlite3_stmt *st = s3->st[which];
    return done(s3, st, sqlite3_step(st));
}

static int begin(struct s3 *s3)
{
    return run(s3, ST_BEGIN);
}

static int end(struct s3 *s3, int rc)
{
    if (rc == 0 && run(s3, ST_COMMIT) == 0)
        return 0;
    run(s3, ST_ROLLBACK);
    return rc ? rc : -EIO;
}

static void copy_col(sqlite3_stmt *st, int col, char *out, size_t size)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, col) : 0;
    if (n >= size)
        n = size - 1;
    if (n)
        memcpy(out, t, n);
    out[n] = '\0';
}

static char *dup_col(sqlite3_stmt *st, int col, size_t *len)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        if (len)
            *len = 0;
        return NULL;
    }
    const void *t = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    if (n)
        memcpy(out, t, n);
    out[n] = '\0';
    if (len)
        *len = n;
    return out;
}

/*=== Buckets ===*/

static void bucket_row(sqlite3_stmt *st, struct s3_bucket *b)
{
    copy_col(st, 0, b->name, sizeof(b->name));
    copy_col(st, 1, b->region, sizeof(b->region));
    b->created_ms = sqlite3_column_int64(st, 2);
    b->notification = dup_col(st, 3, NULL);
}

int s3_bucket_get(struct s3 *s3, const char *name, struct s3_bucket *out)
{
    sqlite3_stmt *st = s3->st[ST_BUCKET_GET];
    memset(out, 0, sizeof(*out));
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        bucket_row(st, out);
    int found = rc == SQLITE_ROW;
    if (done(s3, st, rc))
        return -EIO;
    return found ? 0 : -ENOENT;
}

void s3_bucket_release(struct s3_bucket *b)
{
    free(b->notification);
    b->notification = NULL;
}

int s3_bucket_put(struct s3 *s3, const struct s3_bucket *b)
{
    sqlite3_stmt *st = s3->st[ST_BUCKET_PUT];
    sqlite3_bind_text(st, 1, b->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b->region, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, b->created_ms);
    return done(s3, st, sqlite3_step(st));
}

int s3_bucket_delete(struct s3 *s3, const char *name)
{
    sqlite3_stmt *st = s3->st[ST_BUCKET_DELETE];
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return done(s3, st, sqlite3_step(st));
}

int s3_bucket_set_notification(struct s3 *s3, const char *name, const char *json)
{
    sqlite3_stmt *st = s3->st[ST_BUCKET_NOTIFY];
    if (json)
        sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 1);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    return done(s3, st, sqlite3_step(st));
}

int s3_bucket_foreach(struct s3 *s3, s3_bucket_cb cb, void *arg)
{
    sqlite3_stmt *st = s3->st[ST_BUCKET_ALL];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct s3_bucket b;
        bucket_row(st, &b);
        int stop = cb(&b, arg);
        s3_bucket_release(&b);
        if (stop)
            break;
    }
    return done(s3, st, rc == SQLITE_ROW ? SQLITE_DONE : rc);
}

int s3_bucket_is_empty(struct s3 *s3, const char *name)
{
    sqlite3_stmt *st = s3->st[ST_BUCKET_ANY_OBJECT];
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int empty = rc == SQLITE_DONE;
    if (done(s3, st, rc))
        return -EIO;
    return empty;
}

/*=== Objects ===*/

static void object_row(sqlite3_stmt *st, struct s3_object *o)
{
    o->size = (uint64_t)sqlite3_column_int64(st, 0);
    copy_col(st, 1, o->etag, sizeof(o->etag));
    o->modified_ms = sqlite3_column_int64(st, 2);
    copy_col(st, 3, o->file, sizeof(o->file));
    o->headers = dup_col(st, 4, NULL);
}

int s3_object_get(struct s3 *s3, const char *bucket, const char *key, size_t key_len,
                  struct s3_object *out)
{
    sqlite3_stmt *st = s3->st[ST_OBJECT_GET];
    memset(out, 0, sizeof(*out));
    sqlite3_bind_text(st, 1, bucket, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, key, (int)key_len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        object_row(st, out);
    int found = rc == SQLITE_ROW;
    if (done(s3, st, rc))
        return -EIO;
    return found ? 0 : -ENOENT;
}

void s3_object_release(struct s3_object *o)
{
    free(o->headers);
    free(o->key);
    o->headers = NULL;
    o->key = NULL;
}

/* The file id of (bucket, key) into old ("" when none). */
static int object_file(struct s3 *s3, const char *bucket, const char *key, size_t key_len,
                       char old[33])
{
    struct s3_object prev;
    old[0] = '\0';
    int rc = s3_object_get(s3, bucket, key, key_len, &prev);
    if (rc == 0) {
        memcpy(old, prev.file, 33);
        s3_object_release(&prev);
    }
    return rc == -ENOENT ? 0 : rc;
}

static int object_insert(struct s3 *s3, const char *bucket, const char *key, size_t key_len,
                         const struct s3_object *o)
{
    sqlite3_stmt *st = s3->st[ST_OBJECT_PUT];
    sqlite3_bind_text(st, 1, bucket, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, key, (int)key_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)o->size);
    sqlite3_bind_text(st, 4, o->etag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, o->modified_ms);
    sqlite3_bind_text(st, 6, o->file, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, o->headers ? o->headers : "{}", -1, SQLITE_STATIC);
    return done(s3, st, sqlite3_step(st));
}

int s3_object_put(struct s3 *s3, const char *bucket, const char *key, size_t key_len,
                  const struct s3_object *o, char old_file[33])
{
    int rc = begin(s3);
    if (rc)
        return rc;
    rc = object_file(s3, bucket, key, key_len, old_file);
    if (!rc)
        rc = object_insert(s3, bucket, key, key_len, o);
    return end(s3, rc);
}

int s3_object_delete(struct s3 *s3, const char *bucket, const char *key, size_t key_len,
                     char old_file[33])
{
    int rc = begin(s3);
    if (rc)
        return rc;
    rc = object_file(s3, bucket, key, key_len, old_file);
    if (!rc && old_file[0]) {
        sqlite3_stmt *st = s3->st[ST_OBJECT_DELETE];
        sqlite3_bind_text(st, 1, bucket, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, key, (int)key_len, SQLITE_STATIC);
        rc = done(s3, st, sqlite3_step(st));
    }
    return end(s3, rc);
}

int s3_object_range(struct s3 *s3, const char *bucket, const char *lower, size_t lower_len,
                    const char *upper, size_t upper_len, int limit, s3_object_cb cb, void *arg)
{
    sqlite3_stmt *st = s3->st[ST_OBJECT_RANGE];
    sqlite3_bind_text(st, 1, bucket, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, lower ? lower : "", (int)lower_len, SQLITE_STATIC);
    if (upper)
        sqlite3_bind_blob(st, 3, upper, (int)upper_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int(st, 4, limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct s3_object o;
        memset(&o, 0, sizeof(o));
        object_row(st, &o);
        o.key = dup_col(st, 5, &o.key_len);
        int stop = o.key ? cb(&o, arg) : 1;
        s3_object_release(&o);
        if (stop)
            break;
    }
    return done(s3, st, rc == SQLITE_ROW ? SQLITE_DONE : rc);
}

/*=== Multipart uploads ===*/

static void mpu_row(sqlite3_stmt *st, struct s3_mpu *u)
{
    copy_col(st, 0, u->id, sizeof(u->id));
    copy_col(st, 1, u->bucket, sizeof(u->bucket));
    u->key = dup_col(st, 2, &u->key_len);
    u->created_ms = sqlite3_column_int64(st, 3);
    u->headers = dup_col(st, 4, NULL);
}

void s3_mpu_release(struct s3_mpu *u)
{
    free(u->key);
    free(u->headers);
    u->key = u->headers = NULL;
}

int s3_mpu_put(struct s3 *s3, const struct s3_mpu *u)
{
    sqlite3_stmt *st = s3->st[ST_UPLOAD_PUT];
    sqlite3_bind_text(st, 1, u->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, u->bucket, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, u->key, (int)u->key_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, u->created_ms);
    sqlite3_bind_text(st, 5, u->headers ? u->headers : "{}", -1, SQLITE_STATIC);
    return done(s3, st, sqlite3_step(st));
}

int s3_mpu_get(struct s3 *s3, const char *id, struct s3_mpu *out)
{
    sqlite3_stmt *st = s3->st[ST_UPLOAD_GET];
    memset(out, 0, sizeof(*out));
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        mpu_row(st, out);
    int found = rc == SQLITE_ROW;
    if (done(s3, st, rc))
        return -EIO;
    return found ? 0 : -ENOENT;
}

static void part_row(sqlite3_stmt *st, struct s3_part *p)
{
    p->number = sqlite3_column_int(st, 0);
    p->size = (uint64_t)sqlite3_column_int64(st, 1);
    copy_col(st, 2, p->etag, sizeof(p->etag));
    p->modified_ms = sqlite3_column_int64(st, 3);
    copy_col(st, 4, p->file, sizeof(p->file));
}

struct file_list {
    s3_file_cb cb;
    void *arg;
};

static int part_file(const struct s3_part *p, void *arg)
{
    struct file_list *fl = arg;
    if (fl->cb)
        fl->cb(p->file, fl->arg);
    return 0;
}

/* Inside a transaction: the upload's rows gone, cb told of each part file. */
static int mpu_drop(struct s3 *s3, const char *id, s3_file_cb cb, void *arg)
{
    struct file_list fl = {cb, arg};
    int rc = s3_part_list(s3, id, 0, S3_MAX_PARTS + 1, part_file, &fl);
    if (!rc) {
        sqlite3_stmt *st = s3->st[ST_PARTS_DELETE];
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = done(s3, st, sqlite3_step(st));
    }
    if (!rc) {
        sqlite3_stmt *st = s3->st[ST_UPLOAD_DELETE];
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = done(s3, st, sqlite3_step(st));
    }
    return rc;
}

int s3_mpu_delete(struct s3 *s3, const char *id, s3_file_cb cb, void *arg)
{
    int rc = begin(s3);
    if (rc)
        return rc;
    /* the files are removed by the caller after the commit: collect first */
    return end(s3, mpu_drop(s3, id, cb, arg));
}

static int mpu_rows(struct s3 *s3, sqlite3_stmt *st, s3_mpu_cb cb, void *arg)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct s3_mpu u;
        mpu_row(st, &u);
        int stop = u.key ? cb(&u, arg) : 1;
        s3_mpu_release(&u);
        if (stop)
            break;
    }
    return done(s3, st, rc == SQLITE_ROW ? SQLITE_DONE : rc);
}

int s3_mpu_list(struct s3 *s3, const char *bucket, const char *key_marker, size_t km_len,
                const char *id_marker, int limit, s3_mpu_cb cb, void *arg)
{
    sqlite3_stmt *st = s3->st[ST_UPLOAD_LIST];
    sqlite3_bind_text(st, 1, bucket, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, key_marker ? key_marker : "", (int)km_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id_marker ? id_marker : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, limit);
    return mpu_rows(s3, st, cb, arg);
}

int s3_mpu_of_bucket(struct s3 *s3, const char *bucket, s3_mpu_cb cb, void *arg)
{
    sqlite3_stmt *st = s3->st[ST_UPLOADS_OF_BUCKET];
    sqlite3_bind_text(st, 1, bucket, -1, SQLITE_STATIC);
    return mpu_rows(s3, st, cb, arg);
}

int s3_part_get(struct s3 *s3, const char *upload, int number, struct s3_part *out)
{
    sqlite3_stmt *st = s3->st[ST_PART_GET];
    memset(out, 0, sizeof(*out));
    sqlite3_bind_text(st, 1, upload, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, number);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        part_row(st, out);
    int found = rc == SQLITE_ROW;
    if (done(s3, st, rc))
        return -EIO;
    return found ? 0 : -ENOENT;
}

int s3_part_put(struct s3 *s3, const char *upload, const struct s3_part *p, char old_file[33])
{
    int rc = begin(s3);
    if (rc)
        return rc;
    struct s3_part prev;
    old_file[0] = '\0';
    rc = s3_part_get(s3, upload, p->number, &prev);
    if (rc == 0)
        memcpy(old_file, prev.file, 33);
    if (rc == 0 || rc == -ENOENT) {
        sqlite3_stmt *st = s3->st[ST_PART_PUT];
        sqlite3_bind_text(st, 1, upload, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, p->number);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)p->size);
        sqlite3_bind_text(st, 4, p->etag, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, p->modified_ms);
        sqlite3_bind_text(st, 6, p->file, -1, SQLITE_STATIC);
        rc = done(s3, st, sqlite3_step(st));
    }
    return end(s3, rc);
}

int s3_part_list(struct s3 *s3, const char *upload, int after, int limit, s3_part_cb cb, void *arg)
{
    sqlite3_stmt *st = s3->st[ST_PART_LIST];
    sqlite3_bind_text(st, 1, upload, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, after);
    sqlite3_bind_int(st, 3, limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct s3_part p;
        part_row(st, &p);
        if (cb(&p, arg))
            break;
    }
    return done(s3, st, rc == SQLITE_ROW ? SQLITE_DONE : rc);
}

int s3_mpu_complete(struct s3 *s3, const struct s3_mpu *u, const struct s3_object *o,
                    char old_file[33])
{
    int rc = begin(s3);
    if (rc)
        return rc;
    rc = object_file(s3, u->bucket, u->key, u->key_len, old_file);
    if (!rc)
        rc = object_insert(s3, u->bucket, u->key, u->key_len, o);
    if (!rc)
        rc = mpu_drop(s3, u->id, NULL, NULL);
    return end(s3, rc);
}

int s3_file_in_use(struct s3 *s3, const char *file)
{
    sqlite3_stmt *st = s3->st[ST_FILE_USED];
    sqlite3_bind_text(st, 1, file, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int used = rc == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    if (done(s3, st, rc))
        return -EIO;
    return used;
}
