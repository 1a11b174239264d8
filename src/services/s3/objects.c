/*
 * objects: PutObject (streamed through upload.c), GetObject and HeadObject
 * (the file sent by MHD from an fd: Range, conditional requests, stored
 * headers, response-* overrides), DeleteObject, DeleteObjects and
 * CopyObject (the copy made on the work queue, metadata COPY or REPLACE).
 * A change is committed to SQLite only once its file is in place; the file
 * it replaced is removed after the commit; then the bucket's notification
 * configuration is told.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "services/s3/s3_internal.h"

/* Headers S3 stores with an object and returns on GET/HEAD. */
static const char *const stored_headers[] = {
    "Content-Type",
    "Content-Encoding",
    "Content-Disposition",
    "Cache-Control",
    "Content-Language",
    "Expires",
    "x-amz-website-redirect-location",
    NULL,
};

/* The stored headers of the request, as a JSON object's text (caller frees). */
char *s3_headers_from_request(struct http_req *req)
{
    json_t *h = json_object();
    struct sigv4_request sreq;
    http_req_sigv4(req, &sreq);
    for (int i = 0; stored_headers[i]; i++) {
        const char *v = http_req_header(req, stored_headers[i]);
        if (!v)
            continue;
        if (strcasecmp(stored_headers[i], "Content-Encoding") == 0) {
            /* aws-chunked is the transfer's, not the object's */
            if (strcasecmp(v, "aws-chunked") == 0)
                continue;
            if (str_has_prefix(v, "aws-chunked,")) {
                v += strlen("aws-chunked,");
                while (*v == ' ')
                    v++;
            }
        }
        json_object_set_new(h, stored_headers[i], json_string(v));
    }
    for (size_t i = 0; i < sreq.nheaders; i++) {
        const char *n = sreq.headers[i].name;
        if (!n || strncasecmp(n, "x-amz-meta-", 11) != 0)
            continue;
        char lower[256];
        size_t len = strlen(n);
        if (len >= sizeof(lower))
            continue;
        for (size_t k = 0; k <= len; k++)
            lower[k] = (char)((n[k] >= 'A' && n[k] <= 'Z') ? n[k] + 32 : n[k]);
        json_t *v = json_string(sreq.headers[i].value ? sreq.headers[i].value : "");
        if (v)
            json_object_set_new(h, lower, v);
    }
    char *text = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    return text;
}

static void add_stored_headers(struct http_req *req, const char *headers)
{
    json_t *h = headers ? json_loads(headers, 0, NULL) : NULL;
    const char *name;
    json_t *v;
    json_object_foreach(h, name, v)
    {
        if (json_is_string(v) && strcasecmp(name, "Content-Type") != 0)
            http_req_add_header(req, name, json_string_value(v));
    }
    json_decref(h);
}

static const char *stored_content_type(const char *headers, char *out, size_t size)
{
    json_t *h = headers ? json_loads(headers, 0, NULL) : NULL;
    const char *ct = json_string_value(json_object_get(h, "Content-Type"));
    snprintf(out, size, "%s", ct ? ct : "binary/octet-stream");
    json_decref(h);
    return out;
}

static void add_object_headers(struct http_req *req, const struct s3_object *o)
{
    char etag[52], when[40];
    snprintf(etag, sizeof(etag), "\"%s\"", o->etag);
    s3_time_http(o->modified_ms, when);
    http_req_add_header(req, "ETag", etag);
    http_req_add_header(req, "Last-Modified", when);
}

/*=== PutObject ===*/

static void put_done(struct s3_call *c, const struct s3_upload_result *r, void *arg)
{
    (void)arg;
    const char *headers = c->stash;
    struct s3 *s3 = c->s3;
    struct s3_bucket b;
    if (s3_bucket_get(s3, c->bucket, &b) < 0) { /* deleted while the body came in */
        s3_file_remove(s3, r->file);
        s3_no_bucket(c);
        return;
    }
    s3_bucket_release(&b);
    struct s3_object o;
    memset(&o, 0, sizeof(o));
    o.size = r->size;
    snprintf(o.etag, sizeof(o.etag), "%s", r->etag);
    o.modified_ms = now_ms();
    memcpy(o.file, r->file, sizeof(o.file));
    o.headers = (char *)headers;
    char old[33];
    if (s3_object_put(s3, c->bucket, c->key, c->key_len, &o, old) < 0) {
        s3_file_remove(s3, r->file);
        s3_fail(c, 500, "InternalError", NULL, "We encountered an internal error.");
        return;
    }
    s3_file_remove(s3, old);
    s3_reply_stored(c, r);
    s3_notify_change(c, "ObjectCreated:Put", r->size, r->etag);
}

void s3_put_object(struct s3_call *c, const struct edge_auth *auth)
{
    if (s3_need_bucket(c, NULL) < 0) {
        s3_call_free(c);
        return;
    }
    c->stash = s3_headers_from_request(c->req);
    s3_upload_start(c, auth, put_done, NULL);
}

/*=== GetObject / HeadObject ===*/

static int parse_http_time(const char *s, int64_t *ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S", &tm);
    if (!end)
        return -1;
    *ms = (int64_t)timegm(&tm) * 1000;
    return 0;
}

/* Whether an If-Match / If-None-Match list names etag (or is "*"). */
static int etag_listed(const char *list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *e = p;
        while (e > start && e[-1] == ' ')
            e--;
        if (e - start == 1 && *start == '*')
            return 1;
        if (e - start >= 2 && *start == '"' && e[-1] == '"')
            start++, e--;
        if (str_has_prefix(start, "W/"))
            start += 2;
        if ((size_t)(e - start) == elen && memcmp(start, etag, elen) == 0)
            return 1;
    }
    return 0;
}

/* Conditional headers: 0 to go on, else the status answered (304 or 412). */
static int preconditions(struct s3_call *c, const struct s3_object *o)
{
    struct http_req *req = c->req;
    const char *im = http_req_header(req, "If-Match");
    const char *inm = http_req_header(req, "If-None-Match");
    const char *ims = http_req_header(req, "If-Modified-Since");
    const char *ius = http_req_header(req, "If-Unmodified-Since");
    int64_t t, modified = o->modified_ms / 1000 * 1000;
    int failed = 0;
    const char *cond = NULL;
    if (im) {
        if (!etag_listed(im, o->etag))
            failed = 1, cond = "If-Match";
    } else if (ius && parse_http_time(ius, &t) == 0 && modified > t) {
        failed = 1, cond = "If-Unmodified-Since";
    }
    if (failed) {
        const char *extra[] = {"Condition", cond, NULL};
        s3_fail(c, 412, "PreconditionFailed", extra,
                "At least one of the pre-conditions you specified did not hold");
        return 412;
    }
    int not_modified = 0;
    if (inm)
        not_modified = etag_listed(inm, o->etag);
    else if (ims && parse_http_time(ims, &t) == 0 && modified <= t)
        not_modified = 1;
    if (not_modified) {
        add_object_headers(req, o);
        s3_request_id(c);
        http_reply(req, 304, NULL, "", 0);
        return 304;
    }
    return 0;
}

/* "bytes=a-b", "bytes=a-", "bytes=-n": 1 with [*first, *last] inside size,
 * 0 when the header is to be ignored, -1 when unsatisfiable. */
static int parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (strncasecmp(h, "bytes=", 6) != 0)
        return 0;
    const char *p = h + 6;
    if (strchr(p, ','))
        return 0; /* several ranges: S3 sends the whole object */
    char *end;
    if (*p == '-') {
        if (p[1] < '0' || p[1] > '9')
            return 0;
        unsigned long long n = strtoull(p + 1, &end, 10);
        if (*end)
            return 0;
        if (n == 0 || size == 0)
            return -1;
        *first = n >= size ? 0 : size - n;
        *last = size - 1;
        return 1;
    }
    if (*p < '0' || *p > '9')
        return 0;
    unsigned long long a = strtoull(p, &end, 10);
    if (*end != '-')
        return 0;
    p = end + 1;
    unsigned long long b = size ? size - 1 : 0;
    if (*p) {
        if (*p < '0' || *p > '9')
            return 0;
        b = strtoull(p, &end, 10);
        if (*end || b < a)
            return 0;
    }
    if (a >= size)
        return -1;
    if (b >= size)
        b = size - 1;
    *first = a;
    *last = b;
    return 1;
}

void s3_get_object(struct s3_call *c)
{
    struct s3 *s3 = c->s3;
    struct http_req *req = c->req;
    struct s3_object o;
    int rc = s3_object_get(s3, c->bucket, c->key, c->key_len, &o);
    if (rc == -ENOENT) {
        struct s3_bucket b;
        if (s3_bucket_get(s3, c->bucket, &b) == -ENOENT) {
            s3_no_bucket(c);
            return;
        }
        s3_bucket_release(&b);
        s3_no_key(c);
        return;
    }
    if (rc < 0) {
        s3_fail(c, 500, "InternalError", NULL, "We encountered an internal error.");
        return;
    }
    if (preconditions(c, &o)) {
        s3_object_release(&o);
        return;
    }
    char path[PATH_MAX];
    s3_file_path(s3, o.file, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_error("s3: open %s: %s", path, strerror(errno));
        s3_object_release(&o);
        s3_fail(c, 500, "InternalError", NULL, "We encountered an internal error.");
        return;
    }
    uint64_t first = 0, last = o.size ? o.size - 1 : 0;
    const char *range = http_req_header(req, "Range");
    int ranged = range ? parse_range(range, o.size, &first, &last) : 0;
    if (ranged < 0) {
        close(fd);
        char size[24], cr[40];
        snprintf(size, sizeof(size), "%llu", (unsigned long long)o.size);
        snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)o.size);
        http_req_add_header(req, "Content-Range", cr);
        const char *extra[] = {"RangeRequested", range, "ActualObjectSize", size, NULL};
        s3_fail(c, 416, "InvalidRange", extra, "The requested range is not satisfiable");
        s3_object_release(&o);
        return;
    }
    char ct[256];
    stored_content_type(o.headers, ct, sizeof(ct));
    add_object_headers(req, &o);
    add_stored_headers(req, o.headers);
    http_req_add_header(req, "Accept-Ranges", "bytes");
    static const char *const overrides[][2] = {
        {"response-cache-control", "Cache-Control"},
        {"response-content-disposition", "Content-Disposition"},
        {"response-content-encoding", "Content-Encoding"},
        {"response-content-language", "Content-Language"},
        {"response-expires", "Expires"},
    };
    for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++) {
        const char *v = http_req_query(req, overrides[i][0]);
        if (v)
            http_req_add_header(req, overrides[i][1], v);
    }
    const char *rct = http_req_query(req, "response-content-type");
    if (rct)
        snprintf(ct, sizeof(ct), "%s", rct);
    s3_request_id(c);
    if (ranged > 0) {
        char cr[80];
        snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)first,
                 (unsigned long long)last, (unsigned long long)o.size);
        http_req_add_header(req, "Content-Range", cr);
        http_reply_fd_at(req, 206, ct, fd, first, last - first + 1);
    } else {
        http_reply_fd_at(req, 200, ct, fd, 0, o.size);
    }
    s3_object_release(&o);
}

/*=== DeleteObject(s) ===*/

void s3_delete_object(struct s3_call *c)
{
    struct s3 *s3 = c->s3;
    if (s3_need_bucket(c, NULL) < 0)
        return;
    char old[33];
    if (s3_object_delete(s3, c->bucket, c->key, c->key_len, old) < 0) {
        s3_fail(c, 500, "InternalError", NULL, "We encountered an internal error.");
        return;
    }
    s3_file_remove(s3, old);
    s3_request_id(c);
    http_reply(c->req, 204, NULL, "", 0);
    if (old[0])
        s3_notify_change(c, "ObjectRemoved:Delete", 0, NULL);
}

void s3_delete_objects(struct s3_call *c)
{
    struct s3 *s3 = c->s3;
    if (s3_need_bucket(c, NULL) < 0)
        return;
    size_t len;
    const char *body = http_req_body(c->req, &len);
    struct s3_delete_list d;
    if (s3_xml_parse_delete(body, len, &d) < 0) {
        s3_fail(c, 400, "MalformedXML", NULL,
                "The XML you provided was not well-formed or did not validate against our "
                "published schema");
        return;
    }
    s3_request_id(c);
    struct buf x = BUF_INIT;
    s3_xml_open(&x, "DeleteResult");
    char *removed = calloc(d.n ? d.n : 1, 1);
    for (size_t i = 0; i < d.n; i++) {
        char old[33];
        if (s3_object_delete(s3, c->bucket, d.keys[i], d.lens[i], old) < 0) {
            buf_puts(&x, "<Error>");
            s3_xml_textn(&x, "Key", d.keys[i], d.lens[i]);
            s3_xml_text(&x, "Code", "InternalError");
            s3_xml_text(&x, "Message", "We encountered an internal error. Please try again.");
            buf_puts(&x, "</Error>");
            continue;
        }
        s3_file_remove(s3, old);
        if (removed)
            removed[i] = old[0] != 0;
        if (!d.quiet) {
            buf_puts(&x, "<Deleted>");
            s3_xml_textn(&x, "Key", d.keys[i], d.lens[i]);
            buf_puts(&x, "</Deleted>");
        }
    }
    buf_printf(&x, "</DeleteResult>");
    size_t xlen;
    char *text = buf_detach(&x, &xlen);
    http_reply_take(c->req, 200, "application/xml", text, xlen);
    /* notifications for what was there (the request id is this answer's) */
    for (size_t i = 0; i < d.n && removed; i++) {
        if (!removed[i])
            continue;
        char *saved = c->key;
        size_t saved_len = c->key_len;
        c->key = d.keys[i];
        c->key_len = d.lens[i];
        s3_notify_change(c, "ObjectRemoved:Delete", 0, NULL);
        c->key = saved;
        c->key_len = saved_len;
    }
    free(removed);
    s3_delete_list_release(&d);
}

/*=== CopyObject ===*/

int s3_copy_source(struct s3_call *c, char bucket[64], char **key, size_t *key_len)
{
    const char *src = http_req_header(c->req, "x-amz-copy-source");
    size_t n = strcspn(src, "?");
    char *s = malloc(n + 1);
    if (!s)
        return -1;
    memcpy(s, src, n);
    s[n] = '\0';
    long len = percent_decode(s, n);
    char *p = s;
    if (len > 0 && *p == '/')
        p++, len--;
    char *slash = len > 0 ? memchr(p, '/', (size_t)len) : NULL;
    if (len < 0 || !slash || slash == p || slash - p >= 64 || slash + 1 >= p + len ||
        (size_t)(p + len - slash - 1) > S3_MAX_KEY) {
        free(s);
        const char *extra[] = {"ArgumentName", "x-amz-copy-source", NULL};
        s3_fail(c, 400, "InvalidArgument", extra, "Invalid copy source object key");
        return -1;
    }
    if (strstr(src + n, "versionId=")) {
        free(s);
        s3_fail(c, 501, "NotImplemented", NULL,
                "A header you provided implies functionality that is not implemented");
        return -1;
    }
    memcpy(bucket, p, (size_t)(slash - p));
    bucket[slash - p] = '\0';
    *key_len = (size_t)(p + len - slash - 1);
    *key = malloc(*key_len + 1);
    if (!*key) {
        free(s);
        return -1;
    }
    memcpy(*key, slash + 1, *key_len);
    (*key)[*key_len] = '\0';
    free(s);
    return 0;
}

struct copy_ctx {
    struct s3_call *c;
    struct s3_object src;
    char *headers;
};

static void copied(struct s3_file_job *j, void *arg)
{
    struct copy_ctx *x = arg;
    struct s3_call *c = x->c;
    struct s3 *s3 = c->s3;
    if (j->err) {
        s3_fail(c, 500, "InternalError", NULL, "We encountered an internal error.");
        goto out;
    }
    struct s3_bucket bk;
    if (s3_bucket_get(s3, c->bucket, &bk) < 0) { /* deleted while the copy was made */
        s3_file_remove(s3, j->file);
        s3_no_bucket(c);
        goto out;
    }
    s3_bucket_release(&bk);
    struct s3_object o;
    memset(&o, 0, sizeof(o));
    o.size = x->src.size;
    memcpy(o.etag, x->src.etag, sizeof(o.etag));
    o.modified_ms = now_ms();
    memcpy(o.file, j->file, sizeof(o.file));
    o.headers = x->headers;
    char old[33];
    if (s3_object_put(s3, c->bucket, c->key, c->key_len, &o, old) < 0) {
        s3_file_remove(s3, j->file);
        s3_fail(c, 500, "InternalError", NULL, "We encountered an internal error.");
        goto out;
    }
    s3_file_remove(s3, old);
    struct buf b = BUF_INIT;
    char when[32], etag[52];
    s3_time_iso(o.modified_ms, when);
    snprintf(etag, sizeof(etag), "\"%s\"", o.etag);
    s3_xml_open(&b, "CopyObjectResult");
    s3_xml_text(&b, "LastModified", when);
    s3_xml_text(&b, "ETag", etag);
    buf_puts(&b, "</CopyObjectResult>");
    s3_reply_xml(c, 200, &b);
    s3_notify_change(c, "ObjectCreated:Copy", o.size, o.etag);
out:
    s3_object_release(&x->src);
    free(x->headers);
    s3_call_free(c);
    free(x);
}

/* x-amz-copy-source-if-* against the source: 0 to go on, -1 answered. */
static int copy_preconditions(struct s3_call *c, const struct s3_object *src)
{
    struct http_req *req = c->req;
    const char *im = http_req_header(req, "x-amz-copy-source-if-match");
    const char *inm = http_req_header(req, "x-amz-copy-source-if-none-match");
    const char *ims = http_req_header(req, "x-amz-copy-source-if-modified-since");
    const char *ius = http_req_header(req, "x-amz-copy-source-if-unmodified-since");
    int64_t t, modified = src->modified_ms / 1000 * 1000;
    int ok = 1;
    if (im && !etag_listed(im, src->etag))
        ok = 0;
    if (inm && etag_listed(inm, src->etag))
        ok = 0;
    if (ims && !im && parse_http_time(ims, &t) == 0 && modified <= t)
        ok = 0;
    if (ius && !im && parse_http_time(ius, &t) == 0 && modified > t)
        ok = 0;
    if (!ok) {
        s3_fail(c, 412, "PreconditionFailed", NULL,
                "At least one of the pre-conditions you specified did not hold");
        return -1;
    }
    return 0;
}

/* Loads the copy source object (answers and returns -1 when it cannot). */
static int load_source(struct s3_call *c, struct s3_object *src)
{
    char bucket[64];
    char *key = NULL;
    size_t key_len = 0;
    if (s3_copy_source(c, bucket, &key, &key_len) < 0)
        return -1;
    int rc = s3_object_get(c->s3, bucket, key, key_len, src);
    if (rc == -ENOENT) {
        struct s3_bucket b;
        if (s3_bucket_get(c->s3, bucket, &b) == -ENOENT) {
            const char *extra[] = {"BucketName", bucket, NULL};
            s3_fail(c, 404, "NoSuchBucket", extra, "The specified bucket does not exist");
        } else {
            s3_bucket_release(&b);
            const char *extra[] = {"Key", key, NULL};
            s3_fail(c, 404, "NoSuchKey", extra, "The specified key does not exist.");
        }
    } else if (rc < 0) {
        s3_fail(c, 500, "InternalError", NULL, "We encountered an internal error.");
    }
    int same = rc == 0 && strcmp(bucket, c->bucket) == 0 && key_len == c->key_len &&
               memcmp(key, c->key, key_len) == 0;
    free(key);
    if (rc < 0)
        return -1;
    if (copy_preconditions(c, src) < 0) {
        s3_object_release(src);
        return -1;
    }
    return same ? 1 : 0;
}

void s3_copy_object(struct s3_call *c)
{
    struct s3 *s3 = c->s3;
    if (s3_need_bucket(c, NULL) < 0)
        return;
    struct s3_object src;
    int same = load_source(c, &src);
    if (same < 0)
        return;
    const char *directive = http_req_header(c->req, "x-amz-metadata-directive");
    int replace = directive && strcasecmp(directive, "REPLACE") == 0;
    if (directive && !replace && strcasecmp(directive, "COPY") != 0) {
        s3_object_release(&src);
        const char *extra[] = {"ArgumentName", "x-amz-metadata-directive", "ArgumentValue",
                               directive, NULL};
        s3_fail(c, 400, "InvalidArgument", extra, "Unknown metadata directive.");
        return;
    }
    if (same && !replace) {
        s3_object_release(&src);
        s3_fail(c, 400, "InvalidRequest", NULL,
                "This copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class, website redirect "
                "location or encryption attributes.");
        return;
    }
    struct copy_ctx *x = calloc(1, sizeof(*x));
    struct s3_file_job *j = calloc(1, sizeof(*j));
    struct s3_copy_src *cs = calloc(1, sizeof(*cs));
    struct s3_call *own = calloc(1, sizeof(*own));
    char *headers = replace ? s3_headers_from_request(c->req)
                            : (src.headers ? strdup(src.headers) : strdup("{}"));
    char *key = malloc(c->key_len + 1);
    if (!x || !j || !cs || !own || !headers || !key) {
        free(x), free(j), free(cs), free(own), free(headers), free(key);
        s3_object_release(&src);
        s3_fail(c, 500, "InternalError", NULL, "We encountered an internal error.");
        return;
    }
    /* the job outlives this handler: the call is copied */
    *own = *c;
    memcpy(key, c->key, c->key_len + 1);
    own->key = key;
    x->c = own;
    x->src = src;
    x->headers = headers;
    memcpy(cs->file, src.file, sizeof(cs->file));
    cs->offset = 0;
    cs->len = src.size;
    j->fd = -1;
    j->srcs = cs;
    j->nsrcs = 1;
    j->done = copied;
    j->arg = x;
    if (s3_file_job_submit(s3, j) < 0) {
        free(j->srcs);
        free(j);
        s3_object_release(&x->src);
        free(x->headers);
        s3_call_free(own);
        free(x);
        s3_fail(c, 500, "InternalError", NULL, "We encountered an internal error.");
    }
}
