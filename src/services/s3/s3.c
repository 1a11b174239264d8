/*
 * s3: the service's routes and dispatch, and the bucket operations.
 * Requests arrive path-style on the edge's S3 route (SigV4 scope "s3", or any
 * unsigned request no other service claims: the edge authenticates them with
 * S3's rules and errors), or virtual-hosted (Host <bucket>.s3.localhost or
 * <bucket>.s3.<region>.localhost, a public route that authenticates here
 * through edge_authenticate_s3). A request becomes a struct s3_call (bucket,
 * decoded key) and goes to its operation by method and subresource;
 * subresources S3 has and Ignis does not (ACLs, policies, versioning, ...)
 * are answered NotImplemented. PUT bodies of objects and parts are streamed
 * (upload.c); other bodies are small XML documents held whole. Objects are in
 * objects.c, listings in list.c, multipart uploads in multipart.c.
 */
#include "services/s3/s3.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libxml/parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "services/s3/notify.h"
#include "services/s3/s3_internal.h"

/*=== Answers ===*/

void s3_fail(struct s3_call *c, unsigned status, const char *code, const char *const *extra,
             const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    aws_error_xml(c->req, status, code, extra, "%s", msg);
}

void s3_no_bucket(struct s3_call *c)
{
    const char *extra[] = {"BucketName", c->bucket, NULL};
    s3_fail(c, 404, "NoSuchBucket", extra, "The specified bucket does not exist");
}

void s3_no_key(struct s3_call *c)
{
    struct buf key = BUF_INIT;
    buf_append(&key, c->key ? c->key : "", c->key_len);
    const char *extra[] = {"Key", key.data ? key.data : "", NULL};
    s3_fail(c, 404, "NoSuchKey", extra, "The specified key does not exist.");
    buf_release(&key);
}

void s3_no_upload(struct s3_call *c, const char *upload_id)
{
    const char *extra[] = {"UploadId", upload_id ? upload_id : "", NULL};
    s3_fail(c, 404, "NoSuchUpload", extra,
            "The specified upload does not exist. The upload ID may be invalid, or the upload "
            "may have been aborted or completed.");
}

void s3_request_id(struct s3_call *c)
{
    aws_s3_request_id(c->req, c->request_id);
}

void s3_reply_xml(struct s3_call *c, unsigned status, struct buf *b)
{
    s3_request_id(c);
    size_t len;
    char *text = buf_detach(b, &len);
    if (!text)
        http_reply(c->req, 500, "application/xml", "", 0);
    else
        http_reply_take(c->req, status, "application/xml", text, len);
}

void s3_call_free(struct s3_call *c)
{
    if (!c)
        return;
    free(c->key);
    free(c->stash);
    free(c);
}

void s3_xml_open(struct buf *b, const char *root)
{
    buf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<%s xmlns=\"" S3_XMLNS "\">", root);
}

void s3_xml_textn(struct buf *b, const char *name, const char *value, size_t len)
{
    buf_printf(b, "<%s>", name);
    aws_xml_escape(b, value, len);
    buf_printf(b, "</%s>", name);
}

void s3_xml_text(struct buf *b, const char *name, const char *value)
{
    s3_xml_textn(b, name, value, strlen(value));
}

void s3_xml_u64(struct buf *b, const char *name, uint64_t v)
{
    buf_printf(b, "<%s>%llu</%s>", name, (unsigned long long)v, name);
}

void s3_time_iso(int64_t ms, char out[32])
{
    format_iso8601_ms(ms, out);
}

void s3_time_http(int64_t ms, char out[40])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void s3_url_encode(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == '/')
            buf_putc(b, (char)ch);
        else if (ch == ' ')
            buf_putc(b, '+');
        else
            buf_printf(b, "%%%c%c", hex[ch >> 4], hex[ch & 15]);
    }
}

uint64_t s3_next_sequence(struct s3 *s3)
{
    /* increasing across restarts: microseconds, or one more than the last */
    uint64_t now = (uint64_t)now_ms() * 1000;
    s3->last_sequence = now > s3->last_sequence ? now : s3->last_sequence + 1;
    return s3->last_sequence;
}

void s3_notify_change(struct s3_call *c, const char *event, uint64_t size, const char *etag)
{
    struct s3 *s3 = c->s3;
    if (!s3->notify)
        return;
    struct s3_bucket b;
    if (s3_bucket_get(s3, c->bucket, &b) < 0)
        return;
    json_t *config = b.notification ? json_loads(b.notification, 0, NULL) : NULL;
    s3_bucket_release(&b);
    if (!config)
        return;
    struct buf key = BUF_INIT;
    buf_append(&key, c->key ? c->key : "", c->key_len);
    struct s3_object_change ch = {
        .bucket = c->bucket,
        .key = key.data ? key.data : "",
        .event = event,
        .size = size,
        .etag = etag,
        .source_ip = c->source_ip,
        .request_id = c->request_id,
        .principal = c->access_key,
        .sequence = s3_next_sequence(s3),
    };
    s3_notify_emit(s3->notify, config, &ch);
    buf_release(&key);
    json_decref(config);
}

/*=== Bucket names ===*/

int s3_valid_bucket_name(const char *name)
{
    size_t n = strlen(name);
    if (n < 3 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-'))
            return 0;
        if (ch == '.' && i > 0 && (name[i - 1] == '.' || name[i - 1] == '-'))
            return 0;
        if (ch == '-' && i > 0 && name[i - 1] == '.')
            return 0;
    }
    if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')) ||
        !((name[n - 1] >= 'a' && name[n - 1] <= 'z') || (name[n - 1] >= '0' && name[n - 1] <= '9')))
        return 0;
    struct in_addr a;
    if (inet_pton(AF_INET, name, &a) == 1)
        return 0;
    if (str_has_prefix(name, "xn--") || str_has_prefix(name, "sthree-") ||
        str_has_suffix(name, "-s3alias") || str_has_suffix(name, "--ol-s3"))
        return 0;
    return 1;
}

/*=== Buckets ===*/

static void internal_error(struct s3_call *c)
{
    s3_fail(c, 500, "InternalError", NULL, "We encountered an internal error. Please try again.");
}

int s3_need_bucket(struct s3_call *c, struct s3_bucket *b)
{
    struct s3_bucket tmp;
    if (!b)
        b = &tmp;
    int rc = s3_bucket_get(c->s3, c->bucket, b);
    if (rc == -ENOENT)
        s3_no_bucket(c);
    else if (rc < 0)
        internal_error(c);
    if (rc == 0 && b == &tmp)
        s3_bucket_release(b);
    return rc < 0 ? -1 : 0;
}

static void create_bucket(struct s3_call *c)
{
    struct s3 *s3 = c->s3;
    if (!s3_valid_bucket_name(c->bucket)) {
        const char *extra[] = {"BucketName", c->bucket, NULL};
        s3_fail(c, 400, "InvalidBucketName", extra, "The specified bucket is not valid.");
        return;
    }
    size_t len;
    const char *body = http_req_body(c->req, &len);
    struct s3_bucket b;
    memset(&b, 0, sizeof(b));
    if (len > 0 && s3_xml_parse_create_bucket(body, len, b.region, sizeof(b.region)) < 0) {
        s3_fail(c, 400, "MalformedXML", NULL,
                "The XML you provided was not well-formed or did not validate against our "
                "published schema");
        return;
    }
    if (strcmp(b.region, "us-east-1") == 0) {
        const char *extra[] = {"LocationConstraint", b.region, NULL};
        s3_fail(c, 400, "InvalidLocationConstraint", extra,
                "The specified location-constraint is not valid");
        return;
    }
    for (const char *p = b.region; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) {
            const char *extra[] = {"LocationConstraint", b.region, NULL};
            s3_fail(c, 400, "InvalidLocationConstraint", extra,
                    "The specified location-constraint is not valid");
            return;
        }
    }
    struct s3_bucket existing;
    int rc = s3_bucket_get(s3, c->bucket, &existing);
    if (rc == 0) {
        s3_bucket_release(&existing);
        const char *extra[] = {"BucketName", c->bucket, NULL};
        s3_fail(c, 409, "BucketAlreadyOwnedByYou", extra,
                "Your previous request to create the named bucket succeeded and you already own "
                "it.");
        return;
    }
    snprintf(b.name, sizeof(b.name), "%s", c->bucket);
    if (!b.region[0])
        snprintf(b.region, sizeof(b.region), "%s", "us-east-1");
    b.created_ms = now_ms();
    if (rc != -ENOENT || s3_bucket_put(s3, &b) < 0) {
        internal_error(c);
        return;
    }
    char location[80];
    snprintf(location, sizeof(location), "/%s", c->bucket);
    http_req_add_header(c->req, "Location", location);
    s3_request_id(c);
    http_reply(c->req, 200, NULL, "", 0);
}

static void head_bucket(struct s3_call *c)
{
    struct s3_bucket b;
    if (s3_need_bucket(c, &b) < 0)
        return;
    http_req_add_header(c->req, "x-amz-bucket-region", b.region);
    s3_bucket_release(&b);
    s3_request_id(c);
    http_reply(c->req, 200, "application/xml", "", 0);
}

static void collect_file(const char *file, void *arg)
{
    buf_append(arg, file, 33); /* NUL included: ids one after the other */
}

static int collect_upload(const struct s3_mpu *u, void *arg)
{
    buf_append(arg, u->id, sizeof(u->id));
    return 0;
}

/* Unfinished uploads go with their bucket: rows first, then their files. */
static void drop_uploads(struct s3 *s3, const char *bucket)
{
    struct buf ids = BUF_INIT, files = BUF_INIT;
    s3_mpu_of_bucket(s3, bucket, collect_upload, &ids);
    for (size_t off = 0; off + 41 <= ids.len; off += 41)
        s3_mpu_delete(s3, ids.data + off, collect_file, &files);
    for (size_t off = 0; off + 33 <= files.len; off += 33)
        s3_file_remove(s3, files.data + off);
    buf_release(&ids);
    buf_release(&files);
}

static void delete_bucket(struct s3_call *c)
{
    struct s3 *s3 = c->s3;
    struct s3_bucket b;
    if (s3_need_bucket(c, &b) < 0)
        return;
    s3_bucket_release(&b);
    int empty = s3_bucket_is_empty(s3, c->bucket);
    if (empty < 0) {
        internal_error(c);
        return;
    }
    if (!empty) {
        const char *extra[] = {"BucketName", c->bucket, NULL};
        s3_fail(c, 409, "BucketNotEmpty", extra, "The bucket you tried to delete is not empty");
        return;
    }
    drop_uploads(s3, c->bucket);
    if (s3_bucket_delete(s3, c->bucket) < 0) {
        internal_error(c);
        return;
    }
    s3_request_id(c);
    http_reply(c->req, 204, NULL, "", 0);
}

static void bucket_location(struct s3_call *c)
{
    struct s3_bucket b;
    if (s3_need_bucket(c, &b) < 0)
        return;
    struct buf x = BUF_INIT;
    buf_puts(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"" S3_XMLNS
                 "\">");
    /* us-east-1 is the empty constraint */
    if (strcmp(b.region, "us-east-1") != 0)
        aws_xml_escape(&x, b.region, strlen(b.region));
    buf_puts(&x, "</LocationConstraint>");
    s3_bucket_release(&b);
    s3_reply_xml(c, 200, &x);
}

static void put_notification(struct s3_call *c)
{
    struct s3 *s3 = c->s3;
    struct s3_bucket b;
    if (s3_need_bucket(c, &b) < 0)
        return;
    s3_bucket_release(&b);
    size_t len;
    const char *body = http_req_body(c->req, &len);
    const char *code = "MalformedXML";
    char msg[512] = "The XML you provided was not well-formed or did not validate against our "
                    "published schema";
    const char *skip = http_req_header(c->req, "x-amz-skip-destination-validation");
    int validate = !skip || strcasecmp(skip, "true") != 0;
    json_t *config = s3_notify_parse(body, len, &code, msg, sizeof(msg));
    if (!config ||
        (validate && s3_notify_validate(s3->notify, config, &code, msg, sizeof(msg)) < 0)) {
        json_decref(config);
        s3_fail(c, s3_notify_error_status(code), code, NULL, "%s", msg);
        return;
    }
    char *text = json_dumps(config, JSON_COMPACT);
    json_decref(config);
    int rc = text ? s3_bucket_set_notification(s3, c->bucket, text) : -ENOMEM;
    free(text);
    if (rc < 0) {
        internal_error(c);
        return;
    }
    s3_request_id(c);
    http_reply(c->req, 200, NULL, "", 0);
}

static void get_notification(struct s3_call *c)
{
    struct s3_bucket b;
    if (s3_need_bucket(c, &b) < 0)
        return;
    json_t *config = b.notification ? json_loads(b.notification, 0, NULL) : NULL;
    s3_bucket_release(&b);
    size_t len = 0;
    char *xml = s3_notify_render(config, &len);
    json_decref(config);
    if (!xml) {
        internal_error(c);
        return;
    }
    s3_request_id(c);
    http_reply_take(c->req, 200, "application/xml", xml, len);
}

/*=== Routing ===*/

/* Subresources S3 has and Ignis does not implement. */
static const char *const not_implemented[] = {
    "acl",
    "policy",
    "versioning",
    "lifecycle",
    "cors",
    "tagging",
    "website",
    "encryption",
    "logging",
    "replication",
    "requestPayment",
    "accelerate",
    "analytics",
    "inventory",
    "metrics",
    "intelligent-tiering",
    "object-lock",
    "ownershipControls",
    "publicAccessBlock",
    "policyStatus",
    "versions",
    "retention",
    "legal-hold",
    "torrent",
    "restore",
    "select",
    "attributes",
    "versionId",
    "partNumber",
    NULL,
};

static int unimplemented_subresource(struct s3_call *c, int allow_part)
{
    for (int i = 0; not_implemented[i]; i++) {
        if (allow_part && strcmp(not_implemented[i], "partNumber") == 0)
            continue;
        if (http_req_query(c->req, not_implemented[i]))
            return 1;
    }
    return 0;
}

static void not_impl(struct s3_call *c)
{
    s3_fail(c, 501, "NotImplemented", NULL,
            "A header you provided implies functionality that is not implemented");
}

static void method_not_allowed(struct s3_call *c)
{
    const char *extra[] = {"Method", http_req_method(c->req), "ResourceType",
                           c->key ? "OBJECT" : (c->bucket[0] ? "BUCKET" : "SERVICE"), NULL};
    s3_fail(c, 405, "MethodNotAllowed", extra,
            "The specified method is not allowed against this resource.");
}

/* Returns 1 when the operation took c (streamed bodies), else 0. */
static int dispatch(struct s3_call *c, const struct edge_auth *auth)
{
    const char *m = http_req_method(c->req);
    struct http_req *req = c->req;
    if (!c->bucket[0]) {
        if (strcmp(m, "GET") == 0)
            s3_list_buckets(c);
        else
            method_not_allowed(c);
        return 0;
    }
    if (!c->key) {
        if (strcmp(m, "PUT") == 0) {
            if (http_req_query(req, "notification"))
                put_notification(c);
            else if (unimplemented_subresource(c, 0))
                not_impl(c);
            else
                create_bucket(c);
        } else if (strcmp(m, "GET") == 0) {
            if (http_req_query(req, "location"))
                bucket_location(c);
            else if (http_req_query(req, "notification"))
                get_notification(c);
            else if (http_req_query(req, "uploads"))
                s3_list_uploads(c);
            else if (unimplemented_subresource(c, 0))
                not_impl(c);
            else {
                const char *lt = http_req_query(req, "list-type");
                s3_list_objects(c, lt && strcmp(lt, "2") == 0);
            }
        } else if (strcmp(m, "HEAD") == 0) {
            head_bucket(c);
        } else if (strcmp(m, "DELETE") == 0) {
            if (unimplemented_subresource(c, 0))
                not_impl(c);
            else
                delete_bucket(c);
        } else if (strcmp(m, "POST") == 0) {
            if (http_req_query(req, "delete"))
                s3_delete_objects(c);
            else
                not_impl(c);
        } else {
            method_not_allowed(c);
        }
        return 0;
    }
    int part = http_req_query(req, "uploadId") && http_req_query(req, "partNumber");
    if (strcmp(m, "PUT") == 0) {
        if (unimplemented_subresource(c, part))
            not_impl(c);
        else if (part && http_req_header(req, "x-amz-copy-source"))
            s3_upload_part_copy(c);
        else if (part)
            return s3_upload_part(c, auth), 1;
        else if (http_req_header(req, "x-amz-copy-source"))
            s3_copy_object(c);
        else
            return s3_put_object(c, auth), 1;
    } else if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
        if (m[0] == 'G' && http_req_query(req, "uploadId"))
            s3_list_parts(c);
        else if (unimplemented_subresource(c, 0))
            not_impl(c);
        else
            s3_get_object(c);
    } else if (strcmp(m, "DELETE") == 0) {
        if (http_req_query(req, "uploadId"))
            s3_abort_upload(c);
        else if (unimplemented_subresource(c, 0))
            not_impl(c);
        else
            s3_delete_object(c);
    } else if (strcmp(m, "POST") == 0) {
        if (http_req_query(req, "uploads"))
            s3_create_upload(c);
        else if (http_req_query(req, "uploadId"))
            s3_complete_upload(c);
        else
            not_impl(c);
    } else {
        method_not_allowed(c);
    }
    return 0;
}

/* The bucket of a virtual-hosted Host: "<bucket>.s3.localhost[:port]" or
 * "<bucket>.s3.<region>.localhost[:port]" (copied into bucket), or -1. */
static int vhost_bucket(const char *host, char bucket[64])
{
    if (!host)
        return -1;
    size_t n = strcspn(host, ":");
    for (const char *p = host; (p = strstr(p, ".s3.")) && (size_t)(p - host) < n; p++) {
        size_t blen = (size_t)(p - host);
        const char *rest = p + 4;
        size_t rlen = n - (size_t)(rest - host);
        static const char lh[] = "localhost";
        int ok = rlen == sizeof(lh) - 1 && strncasecmp(rest, lh, rlen) == 0;
        if (!ok) {
            const char *dot = memchr(rest, '.', rlen);
            ok = dot && dot > rest && (size_t)(rest + rlen - dot - 1) == sizeof(lh) - 1 &&
                 strncasecmp(dot + 1, lh, sizeof(lh) - 1) == 0;
        }
        if (ok && blen > 0 && blen < 64) {
            memcpy(bucket, host, blen);
            bucket[blen] = '\0';
            return 0;
        }
    }
    return -1;
}

static int vhost_match(struct http_req *req, void *arg)
{
    (void)arg;
    char bucket[64];
    return vhost_bucket(http_req_header(req, "Host"), bucket) == 0;
}

/* Builds the call from the URL (answers and returns NULL when it cannot). */
static struct s3_call *call_new(struct s3 *s3, struct http_req *req, int vhost)
{
    struct s3_call *c = calloc(1, sizeof(*c));
    if (!c) {
        aws_error_xml(req, 500, "InternalError", NULL, "We encountered an internal error.");
        return NULL;
    }
    c->s3 = s3;
    c->req = req;
    c->vhost = vhost;
    const char *path = http_req_path(req);
    size_t plen = strcspn(path, "?");
    const char *p = path;
    while (plen > 0 && *p == '/')
        p++, plen--;
    const char *key = NULL;
    size_t klen = 0;
    if (vhost) {
        vhost_bucket(http_req_header(req, "Host"), c->bucket);
        key = p;
        klen = plen;
    } else {
        size_t blen = strcspn(p, "/?");
        if (blen > plen)
            blen = plen;
        char raw[200];
        if (blen >= sizeof(raw)) {
            aws_error_xml(req, 400, "InvalidBucketName", NULL,
                          "The specified bucket is not valid.");
            free(c);
            return NULL;
        }
        memcpy(raw, p, blen);
        raw[blen] = '\0';
        long bl = percent_decode(raw, blen);
        if (bl < 0 || bl >= 64) {
            aws_error_xml(req, 400, "InvalidBucketName", NULL,
                          "The specified bucket is not valid.");
            free(c);
            return NULL;
        }
        memcpy(c->bucket, raw, (size_t)bl);
        c->bucket[bl] = '\0';
        if (blen < plen) {
            key = p + blen + 1;
            klen = plen - blen - 1;
        }
    }
    if (key && klen > 0) {
        c->key = malloc(klen + 1);
        if (!c->key) {
            aws_error_xml(req, 500, "InternalError", NULL, "We encountered an internal error.");
            free(c);
            return NULL;
        }
        memcpy(c->key, key, klen);
        long kl = percent_decode(c->key, klen);
        if (kl < 0) {
            aws_error_xml(req, 400, "InvalidURI", NULL, "Couldn't parse the specified URI.");
            s3_call_free(c);
            return NULL;
        }
        c->key[kl] = '\0';
        c->key_len = (size_t)kl;
        if (c->key_len > S3_MAX_KEY) {
            aws_error_xml(req, 400, "KeyTooLongError", NULL, "Your key is too long");
            s3_call_free(c);
            return NULL;
        }
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    snprintf(c->source_ip, sizeof(c->source_ip), "127.0.0.1");
    if (getpeername(http_req_fd(req), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->source_ip,
                      sizeof(c->source_ip));
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->source_ip,
                      sizeof(c->source_ip));
    }
    return c;
}

static void serve(struct s3 *s3, struct http_req *req, const struct edge_auth *auth, int vhost)
{
    if (http_req_body_too_large(req)) {
        aws_error_xml(req, 400, "MaxMessageLengthExceeded", NULL, "Your request was too big.");
        return;
    }
    struct s3_call *c = call_new(s3, req, vhost);
    if (!c)
        return;
    if (auth && auth->access_key)
        snprintf(c->access_key, sizeof(c->access_key), "%s", auth->access_key);
    if (!dispatch(c, auth))
        s3_call_free(c);
}

static void handle_path(struct http_req *req, const struct edge_auth *auth, void *arg)
{
    serve(arg, req, auth, 0);
}

static void handle_vhost(struct http_req *req, const struct edge_auth *none, void *arg)
{
    (void)none;
    struct s3 *s3 = arg;
    struct sigv4_credential cred;
    struct edge_auth auth;
    char bucket[64];
    if (vhost_bucket(http_req_header(req, "Host"), bucket) < 0 ||
        edge_authenticate_s3(s3->cfg, req, bucket, &cred, &auth) < 0)
        return;
    serve(s3, req, &auth, 1);
}

/* Object and part bodies are streamed; everything else is a small document. */
static size_t body_cap(struct http_req *req, void *arg)
{
    (void)arg;
    const char *m = http_req_method(req);
    if (strcmp(m, "PUT") != 0 || http_req_header(req, "x-amz-copy-source"))
        return S3_XML_BODY_CAP;
    const char *path = http_req_path(req);
    size_t plen = strcspn(path, "?");
    int vhost = vhost_match(req, NULL);
    /* a key: vhost "/k...", path style "/bucket/k..." */
    const char *p = path;
    while (*p == '/')
        p++;
    int has_key;
    if (vhost) {
        has_key = (size_t)(p - path) < plen;
    } else {
        const char *slash = memchr(p, '/', plen - (size_t)(p - path));
        has_key = slash && (size_t)(slash + 1 - path) < plen;
    }
    if (!has_key)
        return S3_XML_BODY_CAP;
    for (int i = 0; not_implemented[i]; i++)
        if (strcmp(not_implemented[i], "partNumber") != 0 &&
            http_req_query(req, not_implemented[i]))
            return S3_XML_BODY_CAP;
    http_req_stream(req);
    return 0;
}

/*=== Life ===*/

struct s3 *s3_new(struct loop *loop, const struct config *cfg, struct workq *wq,
                  struct lambda *lambda)
{
    struct s3 *s3 = calloc(1, sizeof(*s3));
    if (!s3)
        return NULL;
    s3->loop = loop;
    s3->cfg = cfg;
    s3->wq = wq;
    xmlInitParser();
    snprintf(s3->root, sizeof(s3->root), "%s/s3", cfg->data_dir);
    char path[PATH_MAX + 32];
    const char *dirs[] = {"", "/tmp", "/objects"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", s3->root, dirs[i]);
        int rc = mkdir_p(path, 0700);
        if (rc < 0) {
            log_error("s3: cannot create %s: %s", path, strerror(-rc));
            goto error;
        }
    }
    snprintf(path, sizeof(path), "%s/ignis.db", cfg->data_dir);
    if (s3_meta_open(s3, path) < 0)
        goto error;
    s3_files_recover(s3);
    if (lambda && !(s3->notify = s3_notify_new(lambda, cfg)))
        goto error;
    return s3;
error:
    s3_free(s3);
    return NULL;
}

int s3_register(struct s3 *s3, struct edge *edge)
{
    struct edge_route by_path = {
        .service = "s3",
        .proto = AWS_REST_XML,
        .handle = handle_path,
        .body_cap = body_cap,
        .fallback = 1,
        .arg = s3,
    };
    struct edge_route by_host = {
        .public = 1,
        .match = vhost_match,
        .proto = AWS_REST_XML,
        .handle = handle_vhost,
        .body_cap = body_cap,
        .arg = s3,
    };
    int rc = edge_add_route(edge, &by_host);
    if (!rc)
        rc = edge_add_route(edge, &by_path);
    return rc;
}

void s3_free(struct s3 *s3)
{
    if (!s3)
        return;
    s3_uploads_drop(s3);
    s3_notify_free(s3->notify);
    s3_meta_close(s3);
    free(s3);
}
