/*
 * s3 internals shared by the service's files: the daemon-wide state, one
 * request being answered (struct s3_call), the metadata store (meta.c), the
 * upload sink (upload.c), file jobs on the work queue (files.c), the XML
 * request parsers (xml.c) and the aws-chunked decoder (chunked.c).
 */
#ifndef IGNIS_SERVICES_S3_S3_INTERNAL_H
#define IGNIS_SERVICES_S3_S3_INTERNAL_H

#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "edge/aws_error.h"
#include "edge/edge.h"
#include "edge/http.h"
#include "services/s3/s3.h"

#define S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"
#define S3_MAX_KEY 1024
#define S3_MAX_OBJECT (5ULL << 30) /* PutObject and UploadPart */
#define S3_MIN_PART (5ULL << 20)   /* every part but the last */
#define S3_MAX_PARTS 10000
#define S3_XML_BODY_CAP (4u << 20) /* DeleteObjects of 1000 keys of 1024 bytes, ... */
#define S3_OWNER_NAME "ignis"

struct sqlite3;
struct sqlite3_stmt;
struct s3_notify;
struct s3_upload;
struct s3_bucket;

enum s3_statement {
    ST_BUCKET_GET,
    ST_BUCKET_PUT,
    ST_BUCKET_DELETE,
    ST_BUCKET_ALL,
    ST_BUCKET_NOTIFY,
    ST_BUCKET_ANY_OBJECT,
    ST_OBJECT_GET,
    ST_OBJECT_PUT,
    ST_OBJECT_DELETE,
    ST_OBJECT_RANGE,
    ST_UPLOAD_PUT,
    ST_UPLOAD_GET,
    ST_UPLOAD_DELETE,
    ST_UPLOAD_LIST,
    ST_UPLOADS_OF_BUCKET,
    ST_PART_GET,
    ST_PART_PUT,
    ST_PART_LIST,
    ST_PARTS_DELETE,
    ST_FILE_USED,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_COUNT
};

struct s3 {
    struct loop *loop;
    const struct config *cfg;
    struct workq *wq;
    struct s3_notify *notify;
    char root[PATH_MAX]; /* <data>/s3 */
    struct sqlite3 *db;
    struct sqlite3_stmt *st[ST_COUNT];
    uint64_t last_sequence;
    struct s3_upload *uploads; /* bodies being received or stored */
    int jobs;                  /* file jobs on the work queue */
};

/* One request being answered. */
struct s3_call {
    struct s3 *s3;
    struct http_req *req;
    char bucket[64];
    char *key; /* decoded, NUL-terminated; NULL when the URL names no key */
    size_t key_len;
    char request_id[17];
    char access_key[129];
    char source_ip[64];
    int vhost;   /* addressed as <bucket>.s3.<...> */
    char *stash; /* what an operation keeps with the call (freed with it) */
};

/*=== s3.c: answers ===*/
void s3_fail(struct s3_call *c, unsigned status, const char *code, const char *const *extra,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void s3_no_bucket(struct s3_call *c);
/* Loads c's bucket into b (NULL: only checks it exists); answers NoSuchBucket
 * (or 500) and returns -1 when it cannot. */
int s3_need_bucket(struct s3_call *c, struct s3_bucket *b);
void s3_no_key(struct s3_call *c);
void s3_no_upload(struct s3_call *c, const char *upload_id);
/* Adds the request id headers (keeps the id in c) and answers the XML in b (taken). */
void s3_reply_xml(struct s3_call *c, unsigned status, struct buf *b);
/* Adds the request id headers (keeps the id in c). */
void s3_request_id(struct s3_call *c);
void s3_call_free(struct s3_call *c);
/* "<?xml ...?>\n<name xmlns=...>" */
void s3_xml_open(struct buf *b, const char *root);
void s3_xml_text(struct buf *b, const char *name, const char *value);
void s3_xml_textn(struct buf *b, const char *name, const char *value, size_t len);
void s3_xml_u64(struct buf *b, const char *name, uint64_t v);
/* S3's timestamps: "2009-10-12T17:50:30.000Z" and RFC 1123 "Mon, 12 Oct 2009 17:50:30 GMT". */
void s3_time_iso(int64_t ms, char out[32]);
void s3_time_http(int64_t ms, char out[40]);
/* Percent-encodes for encoding-type=url (space as '+', '/' kept). */
void s3_url_encode(struct buf *b, const char *s, size_t n);
uint64_t s3_next_sequence(struct s3 *s3);
/* Sends the object change to the bucket's notification config, if any. */
void s3_notify_change(struct s3_call *c, const char *event, uint64_t size, const char *etag);
int s3_valid_bucket_name(const char *name);

/*=== meta.c: the SQLite tables ===*/
struct s3_bucket {
    char name[64];
    char region[32];
    int64_t created_ms;
    char *notification; /* JSON text or NULL (malloc'd) */
};
struct s3_object {
    uint64_t size;
    char etag[48]; /* without quotes */
    int64_t modified_ms;
    char file[33];  /* the object file's id */
    char *headers;  /* JSON object text (malloc'd), stored response headers */
    char *key;      /* listing only */
    size_t key_len; /* listing only */
};
struct s3_mpu {
    char id[41];
    char bucket[64];
    char *key;
    size_t key_len;
    int64_t created_ms;
    char *headers;
};
struct s3_part {
    int number;
    uint64_t size;
    char etag[48];
    int64_t modified_ms;
    char file[33];
};

int s3_meta_open(struct s3 *s3, const char *db_path);
void s3_meta_close(struct s3 *s3);
/* 0, -ENOENT or -EIO. */
int s3_bucket_get(struct s3 *s3, const char *name, struct s3_bucket *out);
void s3_bucket_release(struct s3_bucket *b);
int s3_bucket_put(struct s3 *s3, const struct s3_bucket *b);
int s3_bucket_delete(struct s3 *s3, const char *name);
int s3_bucket_set_notification(struct s3 *s3, const char *name, const char *json);
typedef int (*s3_bucket_cb)(const struct s3_bucket *b, void *arg);
int s3_bucket_foreach(struct s3 *s3, s3_bucket_cb cb, void *arg);
int s3_bucket_is_empty(struct s3 *s3, const char *name); /* 1, 0, or -EIO */

int s3_object_get(struct s3 *s3, const char *bucket, const char *key, size_t key_len,
                  struct s3_object *out);
void s3_object_release(struct s3_object *o);
/* Stores the object (one transaction); old_file gets the replaced object's
 * file id ("" when none), which the caller removes. */
int s3_object_put(struct s3 *s3, const char *bucket, const char *key, size_t key_len,
                  const struct s3_object *o, char old_file[33]);
int s3_object_delete(struct s3 *s3, const char *bucket, const char *key, size_t key_len,
                     char old_file[33]);
/* Objects of bucket with lower <= key < upper (upper NULL: no bound), in key
 * byte order, at most limit; cb returns non-zero to stop. */
typedef int (*s3_object_cb)(const struct s3_object *o, void *arg);
int s3_object_range(struct s3 *s3, const char *bucket, const char *lower, size_t lower_len,
                    const char *upper, size_t upper_len, int limit, s3_object_cb cb, void *arg);

int s3_mpu_put(struct s3 *s3, const struct s3_mpu *u);
int s3_mpu_get(struct s3 *s3, const char *id, struct s3_mpu *out);
void s3_mpu_release(struct s3_mpu *u);
/* Deletes the upload and its parts' rows; cb (may be NULL) gets each part's
 * file id first. */
typedef void (*s3_file_cb)(const char *file, void *arg);
int s3_mpu_delete(struct s3 *s3, const char *id, s3_file_cb cb, void *arg);
typedef int (*s3_mpu_cb)(const struct s3_mpu *u, void *arg);
/* Uploads of bucket from (key, id) on (key > key_marker, or == and id > id_marker). */
int s3_mpu_list(struct s3 *s3, const char *bucket, const char *key_marker, size_t km_len,
                const char *id_marker, int limit, s3_mpu_cb cb, void *arg);
int s3_mpu_of_bucket(struct s3 *s3, const char *bucket, s3_mpu_cb cb, void *arg);
int s3_part_get(struct s3 *s3, const char *upload, int number, struct s3_part *out);
int s3_part_put(struct s3 *s3, const char *upload, const struct s3_part *p, char old_file[33]);
typedef int (*s3_part_cb)(const struct s3_part *p, void *arg);
int s3_part_list(struct s3 *s3, const char *upload, int after, int limit, s3_part_cb cb, void *arg);
/* Completes an upload in one transaction: the object row, the upload and its
 * part rows gone; old_file as s3_object_put. */
int s3_mpu_complete(struct s3 *s3, const struct s3_mpu *u, const struct s3_object *o,
                    char old_file[33]);
int s3_file_in_use(struct s3 *s3, const char *file); /* 1, 0, -EIO */

/*=== files.c: object files and jobs on the work queue ===*/
/* A new random file id. */
void s3_file_id(char id[33]);
void s3_file_path(struct s3 *s3, const char *id, char *out, size_t size);
/* A fresh temp file under <root>/tmp (O_CLOEXEC, 0600); fd or -errno. */
int s3_temp_open(struct s3 *s3, char *path, size_t size);
/* Removes an object file (if id is not ""). */
void s3_file_remove(struct s3 *s3, const char *id);
/* Removes temp files and object files no row refers to (at start). */
void s3_files_recover(struct s3 *s3);

struct s3_copy_src {
    char file[33];
    uint64_t offset, len;
};
/* A file job: copies the sources one after the other into a new object file
 * (hashing with MD5 when want_md5), fsyncs it and renames it into place;
 * or, with fd >= 0 and no sources, fsyncs fd and renames tmp into place.
 * done runs on the loop with err (0 or -errno). */
struct s3_file_job;
typedef void (*s3_job_done)(struct s3_file_job *j, void *arg);
struct s3_file_job {
    struct s3 *s3;
    int fd;             /* a written temp file to publish, or -1 */
    char tmp[PATH_MAX]; /* its path */
    struct s3_copy_src *srcs;
    size_t nsrcs;
    int want_md5;
    char file[33]; /* the published file's id */
    unsigned char md5[16];
    uint64_t size;
    int err;
    s3_job_done done;
    void *arg;
};
/* Takes j (freed after done returns). Returns 0, or -errno (done not called). */
int s3_file_job_submit(struct s3 *s3, struct s3_file_job *j);

/*=== upload.c: request bodies to files ===*/
/* Called on the loop once the body is stored in a published file (or failed:
 * then the error has been answered and file is "" ). The upload and its
 * request are the callback's to answer; after it, u is freed. */
struct s3_upload_result {
    int ok;
    char file[33];
    uint64_t size;
    char etag[33];  /* MD5 hex */
    char crc32[16]; /* x-amz-checksum-crc32 as verified, or "" */
};
typedef void (*s3_upload_done)(struct s3_call *c, const struct s3_upload_result *r, void *arg);
/* Starts reading req's streamed body into a new object file. Takes c (freed
 * when done returns, or when the client goes away). Answers the error
 * itself for bad framing, signatures, digests and sizes. */
void s3_upload_start(struct s3_call *c, const struct edge_auth *auth, s3_upload_done done,
                     void *arg);
/* The 200 of a stored PutObject / UploadPart: ETag (and the checksum it checked). */
void s3_reply_stored(struct s3_call *c, const struct s3_upload_result *r);
/* Drops uploads still receiving (shutdown). */
void s3_uploads_drop(struct s3 *s3);

/*=== objects.c / list.c / multipart.c / bucket ops in s3.c ===*/
void s3_put_object(struct s3_call *c, const struct edge_auth *auth);
void s3_get_object(struct s3_call *c); /* and HeadObject */
void s3_delete_object(struct s3_call *c);
void s3_delete_objects(struct s3_call *c);
void s3_copy_object(struct s3_call *c);
void s3_list_objects(struct s3_call *c, int v2);
void s3_list_buckets(struct s3_call *c);
void s3_create_upload(struct s3_call *c);
void s3_upload_part(struct s3_call *c, const struct edge_auth *auth);
void s3_upload_part_copy(struct s3_call *c);
void s3_complete_upload(struct s3_call *c);
void s3_abort_upload(struct s3_call *c);
void s3_list_parts(struct s3_call *c);
void s3_list_uploads(struct s3_call *c);
/* The stored headers of a PUT / CreateMultipartUpload request as a JSON object text. */
char *s3_headers_from_request(struct http_req *req);
/* Resolves x-amz-copy-source into bucket/key (decoded); answers the error itself. */
int s3_copy_source(struct s3_call *c, char bucket[64], char **key, size_t *key_len);

/*=== xml.c: request bodies (untrusted; fuzzed) ===*/
struct s3_delete_list {
    int quiet;
    size_t n;
    char **keys;
    size_t *lens;
};
/* 0, or -EINVAL (MalformedXML) */
int s3_xml_parse_delete(const char *xml, size_t len, struct s3_delete_list *out);
void s3_delete_list_release(struct s3_delete_list *d);
struct s3_part_ref {
    int number;
    char etag[48]; /* without quotes */
};
int s3_xml_parse_complete(const char *xml, size_t len, struct s3_part_ref **parts, size_t *n);
/* LocationConstraint of a CreateBucketConfiguration ("" when none). */
int s3_xml_parse_create_bucket(const char *xml, size_t len, char *location, size_t size);

/*=== chunked.c: aws-chunked bodies (untrusted; fuzzed) ===*/
struct s3_chunked_ops {
    /* a chunk's header: its size and chunk-signature (NULL when unsigned) */
    int (*chunk)(void *arg, uint64_t size, const char *signature);
    int (*data)(void *arg, const char *p, size_t n);
    int (*chunk_end)(void *arg);
    int (*trailer)(void *arg, const char *name, const char *value);
};
struct s3_chunked {
    const struct s3_chunked_ops *ops;
    void *arg;
    int state;
    uint64_t remaining;
    int last; /* the zero-length chunk was seen */
    size_t line_len;
    char line[512];
};
void s3_chunked_init(struct s3_chunked *d, const struct s3_chunked_ops *ops, void *arg);
/* 0, -EINVAL on bad framing, or a callback's negative return. */
int s3_chunked_feed(struct s3_chunked *d, const char *p, size_t n);
/* 1 when the body ended exactly at the end of the framing. */
int s3_chunked_done(const struct s3_chunked *d);

#endif
