/*
 * multipart: CreateMultipartUpload, UploadPart (streamed through upload.c,
 * one file per part), UploadPartCopy (a range of an object copied on the
 * work queue), CompleteMultipartUpload (parts checked against the list sent:
 * ascending, known, ETags equal, every part but the last >= 5 MiB; the parts
 * concatenated into the object's file on the work queue; ETag
 * md5(concatenated part MD5s)-N), AbortMultipartUpload, ListParts and
 * ListMultipartUploads. The upload's rows and its part files go once the
 * object is committed; a second Complete racing the first finds no upload.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "services/s3/s3_internal.h"

#define MAX_LIST 1000

static void internal(struct s3_call *c)
{
    s3_fail(c, 500, "InternalError", NULL, "We encountered an internal error. Please try again.");
}

static int bucket_exists(struct s3_call *c)
{
    return s3_need_bucket(c, NULL) == 0;
}

/* The upload named by ?uploadId and matching c's bucket and key; answers
 * NoSuchUpload (or 500) and returns -1 otherwise. */
static int need_upload(struct s3_call *c, struct s3_mpu *u)
{
    const char *id = http_req_query(c->req, "uploadId");
    int rc = id && strlen(id) < sizeof(u->id) ? s3_mpu_get(c->s3, id, u) : -ENOENT;
    if (rc == 0 && (strcmp(u->bucket, c->bucket) != 0 || u->key_len != c->key_len ||
                    memcmp(u->key, c->key, c->key_len) != 0)) {
        s3_mpu_release(u);
        rc = -ENOENT;
    }
    if (rc == -ENOENT)
        s3_no_upload(c, id);
    else if (rc < 0)
        internal(c);
    return rc < 0 ? -1 : 0;
}

static void upload_id(char id[41])
{
    unsigned char raw[20];
    random_bytes(raw, sizeof(raw));
    hex_encode(raw, sizeof(raw), id);
}

void s3_create_upload(struct s3_call *c)
{
    if (!bucket_exists(c))
        return;
    struct s3_mpu u;
    memset(&u, 0, sizeof(u));
    upload_id(u.id);
    snprintf(u.bucket, sizeof(u.bucket), "%s", c->bucket);
    u.key = c->key;
    u.key_len = c->key_len;
    u.created_ms = now_ms();
    u.headers = s3_headers_from_request(c->req);
    int rc = u.headers ? s3_mpu_put(c->s3, &u) : -ENOMEM;
    free(u.headers);
    if (rc < 0) {
        internal(c);
        return;
    }
    struct buf b = BUF_INIT;
    s3_xml_open(&b, "InitiateMultipartUploadResult");
    s3_xml_text(&b, "Bucket", c->bucket);
    s3_xml_textn(&b, "Key", c->key, c->key_len);
    s3_xml_text(&b, "UploadId", u.id);
    buf_puts(&b, "</InitiateMultipartUploadResult>");
    s3_reply_xml(c, 200, &b);
}

/* ?partNumber as 1..10000, or -1 after answering InvalidArgument. */
static int part_number(struct s3_call *c)
{
    const char *pn = http_req_query(c->req, "partNumber");
    char *end;
    long v = pn ? strtol(pn, &end, 10) : 0;
    if (!pn || !*pn || *end || v < 1 || v > S3_MAX_PARTS) {
        const char *extra[] = {"ArgumentName", "partNumber", "ArgumentValue", pn ? pn : "", NULL};
        s3_fail(c, 400, "InvalidArgument", extra,
                "Part number must be an integer between 1 and 10000, inclusive");
        return -1;
    }
    return (int)v;
}

/*=== UploadPart ===*/

static void part_stored(struct s3_call *c, const struct s3_upload_result *r, void *arg)
{
    (void)arg;
    struct s3 *s3 = c->s3;
    const char *id = http_req_query(c->req, "uploadId");
    struct s3_mpu u;
    /* the upload may have been completed or aborted meanwhile */
    if (!id || s3_mpu_get(s3, id, &u) < 0) {
        s3_file_remove(s3, r->file);
        s3_no_upload(c, id);
        return;
    }
    s3_mpu_release(&u);
    struct s3_part p;
    memset(&p, 0, sizeof(p));
    p.number = atoi(http_req_query(c->req, "partNumber"));
    p.size = r->size;
    snprintf(p.etag, sizeof(p.etag), "%s", r->etag);
    p.modified_ms = now_ms();
    memcpy(p.file, r->file, sizeof(p.file));
    char old[33];
    if (s3_part_put(s3, id, &p, old) < 0) {
        s3_file_remove(s3, r->file);
        internal(c);
        return;
    }
    s3_file_remove(s3, old);
    s3_reply_stored(c, r);
}

void s3_upload_part(struct s3_call *c, const struct edge_auth *auth)
{
    struct s3_mpu u;
    if (!bucket_exists(c) || part_number(c) < 0 || need_upload(c, &u) < 0) {
        s3_call_free(c);
        return;
    }
    s3_mpu_release(&u);
    s3_upload_start(c, auth, part_stored, NULL);
}

/*=== UploadPartCopy ===*/

struct part_copy {
    struct s3_call *c;
    char upload[41];
    int number;
};

static void part_copied(struct s3_file_job *j, void *arg)
{
    struct part_copy *pc = arg;
    struct s3_call *c = pc->c;
    struct s3 *s3 = c->s3;
    struct s3_mpu u;
    if (j->err) {
        internal(c);
    } else if (s3_mpu_get(s3, pc->upload, &u) < 0) {
        s3_file_remove(s3, j->file);
        s3_no_upload(c, pc->upload);
    } else {
        s3_mpu_release(&u);
        struct s3_part p;
        memset(&p, 0, sizeof(p));
        p.number = pc->number;
        p.size = j->size;
        hex_encode(j->md5, 16, p.etag);
        p.modified_ms = now_ms();
        memcpy(p.file, j->file, sizeof(p.file));
        char old[33];
        if (s3_part_put(s3, pc->upload, &p, old) < 0) {
            s3_file_remove(s3, j->file);
            internal(c);
        } else {
            s3_file_remove(s3, old);
            struct buf b = BUF_INIT;
            char when[32], etag[52];
            s3_time_iso(p.modified_ms, when);
            snprintf(etag, sizeof(etag), "\"%s\"", p.etag);
            s3_xml_open(&b, "CopyPartResult");
            s3_xml_text(&b, "LastModified", when);
            s3_xml_text(&b, "ETag", etag);
            buf_puts(&b, "</CopyPartResult>");
            s3_reply_xml(c, 200, &b);
        }
    }
    s3_call_free(c);
    free(pc);
}

void s3_upload_part_copy(struct s3_call *c)
{
    struct s3 *s3 = c->s3;
    struct s3_mpu u;
    int number;
    if (!bucket_exists(c) || (number = part_number(c)) < 0 || need_upload(c, &u) < 0)
        return;
    char bucket[64];
    char *key = NULL;
    size_t key_len;
    if (s3_copy_source(c, bucket, &key, &key_len) < 0) {
        s3_mpu_release(&u);
        return;
    }
    struct s3_object src;
    int rc = s3_object_get(s3, bucket, key, key_len, &src);
    free(key);
    if (rc < 0) {
        s3_mpu_release(&u);
        if (rc == -ENOENT)
            s3_fail(c, 404, "NoSuchKey", NULL, "The specified key does not exist.");
        else
            internal(c);
        return;
    }
    uint64_t first = 0, last = src.size ? src.size - 1 : 0;
    const char *range = http_req_header(c->req, "x-amz-copy-source-range");
    if (range) {
        unsigned long long a, b;
        char tail;
        if (sscanf(range, "bytes=%llu-%llu%c", &a, &b, &tail) != 2 || b < a || b >= src.size) {
            s3_mpu_release(&u);
            s3_object_release(&src);
            const char *extra[] = {"RangeRequested", range, NULL};
            s3_fail(c, 400, "InvalidArgument", extra,
                    "The x-amz-copy-source-range value must be of the form bytes=first-last "
                    "where first and last are the zero-based offsets of the first and last bytes "
                    "to copy");
            return;
        }
        first = a;
        last = b;
    }
    struct part_copy *pc = calloc(1, sizeof(*pc));
    struct s3_file_job *j = calloc(1, sizeof(*j));
    struct s3_copy_src *cs = calloc(1, sizeof(*cs));
    struct s3_call *own = calloc(1, sizeof(*own));
    char *okey = malloc(c->key_len + 1);
    if (!pc || !j || !cs || !own || !okey) {
        free(pc), free(j), free(cs), free(own), free(okey);
        s3_mpu_release(&u);
        s3_object_release(&src);
        internal(c);
        return;
    }
    *own = *c;
    memcpy(okey, c->key, c->key_len + 1);
    own->key = okey;
    own->stash = NULL;
    pc->c = own;
    memcpy(pc->upload, u.id, sizeof(pc->upload));
    pc->number = number;
    memcpy(cs->file, src.file, sizeof(cs->file));
    cs->offset = first;
    cs->len = src.size ? last - first + 1 : 0;
    j->fd = -1;
    j->srcs = cs;
    j->nsrcs = 1;
    j->want_md5 = 1;
    j->done = part_copied;
    j->arg = pc;
    s3_mpu_release(&u);
    s3_object_release(&src);
    if (s3_file_job_submit(s3, j) < 0) {
        free(j->srcs);
        free(j);
        s3_call_free(own);
        free(pc);
        internal(c);
    }
}

/*=== CompleteMultipartUpload ===*/

struct complete {
    struct s3_call *c;
    struct s3_mpu u;
    struct s3_part *parts;
    size_t n;
    char etag[48];
};

static void complete_free(struct complete *x)
{
    s3_mpu_release(&x->u);
    free(x->parts);
    s3_call_free(x->c);
    free(x);
}

static void completed(struct s3_file_job *j, void *arg)
{
    struct complete *x = arg;
    struct s3_call *c = x->c;
    struct s3 *s3 = c->s3;
    struct s3_mpu again;
    if (j->err) {
        internal(c);
        complete_free(x);
        return;
    }
    if (s3_mpu_get(s3, x->u.id, &again) < 0) { /* aborted or completed meanwhile */
        s3_file_remove(s3, j->file);
        s3_no_upload(c, x->u.id);
        complete_free(x);
        return;
    }
    s3_mpu_release(&again);
    struct s3_object o;
    memset(&o, 0, sizeof(o));
    o.size = j->size;
    memcpy(o.etag, x->etag, sizeof(o.etag));
    o.modified_ms = now_ms();
    memcpy(o.file, j->file, sizeof(o.file));
    o.headers = x->u.headers;
    char old[33];
    /* parts stored after the Complete began are left to the start-up sweep */
    int rc = s3_mpu_complete(s3, &x->u, &o, old);
    if (rc < 0) {
        s3_file_remove(s3, j->file);
        internal(c);
        complete_free(x);
        return;
    }
    s3_file_remove(s3, old);
    for (size_t i = 0; i < x->n; i++)
        s3_file_remove(s3, x->parts[i].file);
    char etag[52];
    snprintf(etag, sizeof(etag), "\"%s\"", x->etag);
    struct buf b = BUF_INIT;
    const char *host = http_req_header(c->req, "Host");
    s3_xml_open(&b, "CompleteMultipartUploadResult");
    struct buf loc = BUF_INIT;
    buf_printf(&loc, "http://%s/%s/", host ? host : "localhost", c->bucket);
    s3_url_encode(&loc, c->key, c->key_len);
    s3_xml_text(&b, "Location", loc.data ? loc.data : "");
    buf_release(&loc);
    s3_xml_text(&b, "Bucket", c->bucket);
    s3_xml_textn(&b, "Key", c->key, c->key_len);
    s3_xml_text(&b, "ETag", etag);
    buf_puts(&b, "</CompleteMultipartUploadResult>");
    s3_reply_xml(c, 200, &b);
    s3_notify_change(c, "ObjectCreated:CompleteMultipartUpload", o.size, x->etag);
    complete_free(x);
}

struct part_collect {
    struct s3_part *parts;
    size_t n;
};

static int collect_part(const struct s3_part *p, void *arg)
{
    struct part_collect *pc = arg;
    pc->parts[pc->n++] = *p;
    return 0;
}

void s3_complete_upload(struct s3_call *c)
{
    struct s3 *s3 = c->s3;
    struct s3_mpu u;
    if (!bucket_exists(c) || need_upload(c, &u) < 0)
        return;
    size_t len;
    const char *body = http_req_body(c->req, &len);
    struct s3_part_ref *refs = NULL;
    size_t nrefs = 0;
    if (s3_xml_parse_complete(body, len, &refs, &nrefs) < 0) {
        s3_mpu_release(&u);
        s3_fail(c, 400, "MalformedXML", NULL,
                "The XML you provided was not well-formed or did not validate against our "
                "published schema");
        return;
    }
    struct part_collect stored = {calloc(S3_MAX_PARTS, sizeof(struct s3_part)), 0};
    struct s3_part *used = calloc(nrefs, sizeof(*used));
    if (!stored.parts || !used ||
        s3_part_list(s3, u.id, 0, S3_MAX_PARTS, collect_part, &stored) < 0) {
        free(stored.parts), free(used), free(refs);
        s3_mpu_release(&u);
        internal(c);
        return;
    }
    const char *err = NULL;
    size_t bad = 0;
    for (size_t i = 0; i < nrefs && !err; i++) {
        if (i > 0 && refs[i].number <= refs[i - 1].number) {
            err = "InvalidPartOrder";
            break;
        }
        const struct s3_part *p = NULL;
        for (size_t k = 0; k < stored.n; k++)
            if (stored.parts[k].number == refs[i].number) {
                p = &stored.parts[k];
                break;
            }
        if (!p || strcmp(p->etag, refs[i].etag) != 0) {
            err = "InvalidPart";
            bad = i;
            break;
        }
        used[i] = *p;
    }
    for (size_t i = 0; i + 1 < nrefs && !err; i++) {
        if (used[i].size < S3_MIN_PART) {
            err = "EntityTooSmall";
            bad = i;
        }
    }
    if (err) {
        char num[16], size[24], min[24], etag[52];
        snprintf(num, sizeof(num), "%d", refs[bad].number);
        snprintf(etag, sizeof(etag), "%s", refs[bad].etag);
        if (strcmp(err, "InvalidPartOrder") == 0) {
            const char *extra[] = {"UploadId", u.id, NULL};
            s3_fail(c, 400, err, extra,
                    "The list of parts was not in ascending order. The parts list must be "
                    "specified in order by part number.");
        } else if (strcmp(err, "InvalidPart") == 0) {
            const char *extra[] = {"UploadId", u.id, "PartNumber", num, "ETag", etag, NULL};
            s3_fail(c, 400, err, extra,
                    "One or more of the specified parts could not be found.  The part may not "
                    "have been uploaded, or the specified entity tag may not match the part's "
                    "entity tag.");
        } else {
            snprintf(size, sizeof(size), "%llu", (unsigned long long)used[bad].size);
            snprintf(min, sizeof(min), "%llu", (unsigned long long)S3_MIN_PART);
            const char *extra[] = {
                "ProposedSize", size, "MinSizeAllowed", min, "PartNumber", num, "ETag", etag, NULL};
            s3_fail(c, 400, err, extra,
                    "Your proposed upload is smaller than the minimum allowed size");
        }
        free(stored.parts), free(used), free(refs);
        s3_mpu_release(&u);
        return;
    }
    /* ETag: MD5 of the parts' binary MD5s, "-N" */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char digest[16];
    unsigned int dl = 0;
    EVP_DigestInit_ex(md, EVP_md5(), NULL);
    for (size_t i = 0; i < nrefs; i++) {
        unsigned char bin[16];
        for (int k = 0; k < 16; k++)
            bin[k] = (unsigned char)(hex_digit_value((unsigned char)used[i].etag[2 * k]) * 16 +
                                     hex_digit_value((unsigned char)used[i].etag[2 * k + 1]));
        EVP_DigestUpdate(md, bin, 16);
    }
    EVP_DigestFinal_ex(md, digest, &dl);
    EVP_MD_CTX_free(md);
    struct complete *x = calloc(1, sizeof(*x));
    struct s3_file_job *j = calloc(1, sizeof(*j));
    struct s3_copy_src *srcs = calloc(nrefs, sizeof(*srcs));
    struct s3_call *own = calloc(1, sizeof(*own));
    char *okey = malloc(c->key_len + 1);
    if (!x || !j || !srcs || !own || !okey) {
        free(x), free(j), free(srcs), free(own), free(okey);
        free(stored.parts), free(used), free(refs);
        s3_mpu_release(&u);
        internal(c);
        return;
    }
    char hex[33];
    hex_encode(digest, 16, hex);
    snprintf(x->etag, sizeof(x->etag), "%s-%zu", hex, nrefs);
    for (size_t i = 0; i < nrefs; i++) {
        memcpy(srcs[i].file, used[i].file, sizeof(srcs[i].file));
        srcs[i].len = used[i].size;
    }
    /* every stored part's file goes once the object is committed */
    x->parts = stored.parts;
    x->n = stored.n;
    free(used);
    free(refs);
    *own = *c;
    memcpy(okey, c->key, c->key_len + 1);
    own->key = okey;
    own->stash = NULL;
    x->c = own;
    x->u = u;
    j->fd = -1;
    j->srcs = srcs;
    j->nsrcs = nrefs;
    j->done = completed;
    j->arg = x;
    if (s3_file_job_submit(s3, j) < 0) {
        free(j->srcs);
        free(j);
        own->req = NULL;
        complete_free(x);
        internal(c);
    }
}

/*=== Abort / ListParts / ListMultipartUploads ===*/

static void remove_file(const char *file, void *arg)
{
    buf_append(arg, file, 33);
}

void s3_abort_upload(struct s3_call *c)
{
    struct s3_mpu u;
    if (!bucket_exists(c) || need_upload(c, &u) < 0)
        return;
    struct buf files = BUF_INIT;
    int rc = s3_mpu_delete(c->s3, u.id, remove_file, &files);
    s3_mpu_release(&u);
    if (rc < 0) {
        buf_release(&files);
        internal(c);
        return;
    }
    for (size_t off = 0; off + 33 <= files.len; off += 33)
        s3_file_remove(c->s3, files.data + off);
    buf_release(&files);
    s3_request_id(c);
    http_reply(c->req, 204, NULL, "", 0);
}

static void owner_xml(struct s3 *s3, struct buf *b, const char *element)
{
    char id[65];
    sha256_hex(s3->cfg->account_id, strlen(s3->cfg->account_id), id);
    buf_printf(b, "<%s>", element);
    s3_xml_text(b, "ID", id);
    s3_xml_text(b, "DisplayName", S3_OWNER_NAME);
    buf_printf(b, "</%s>", element);
}

struct parts_page {
    struct buf *b;
    int count, max, truncated, last;
};

static int one_part(const struct s3_part *p, void *arg)
{
    struct parts_page *pg = arg;
    if (pg->count == pg->max) {
        pg->truncated = 1;
        return 1;
    }
    char when[32], etag[52];
    s3_time_iso(p->modified_ms, when);
    snprintf(etag, sizeof(etag), "\"%s\"", p->etag);
    buf_puts(pg->b, "<Part>");
    s3_xml_u64(pg->b, "PartNumber", (uint64_t)p->number);
    s3_xml_text(pg->b, "LastModified", when);
    s3_xml_text(pg->b, "ETag", etag);
    s3_xml_u64(pg->b, "Size", p->size);
    buf_puts(pg->b, "</Part>");
    pg->count++;
    pg->last = p->number;
    return 0;
}

static int int_param(struct s3_call *c, const char *name, int dflt, int max, int *out)
{
    const char *v = http_req_query(c->req, name);
    *out = dflt;
    if (!v)
        return 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 0) {
        const char *extra[] = {"ArgumentName", name, "ArgumentValue", v, NULL};
        s3_fail(c, 400, "InvalidArgument", extra,
                "Provided %s not an integer or within integer range", name);
        return -1;
    }
    *out = n > max ? max : (int)n;
    return 0;
}

void s3_list_parts(struct s3_call *c)
{
    struct s3_mpu u;
    int max, marker;
    if (!bucket_exists(c) || int_param(c, "max-parts", MAX_LIST, MAX_LIST, &max) < 0 ||
        int_param(c, "part-number-marker", 0, S3_MAX_PARTS, &marker) < 0 || need_upload(c, &u) < 0)
        return;
    struct buf parts = BUF_INIT;
    struct parts_page pg = {&parts, 0, max, 0, 0};
    if (s3_part_list(c->s3, u.id, marker, max + 1, one_part, &pg) < 0) {
        buf_release(&parts);
        s3_mpu_release(&u);
        internal(c);
        return;
    }
    struct buf b = BUF_INIT;
    s3_xml_open(&b, "ListPartsResult");
    s3_xml_text(&b, "Bucket", c->bucket);
    s3_xml_textn(&b, "Key", c->key, c->key_len);
    s3_xml_text(&b, "UploadId", u.id);
    owner_xml(c->s3, &b, "Initiator");
    owner_xml(c->s3, &b, "Owner");
    s3_xml_text(&b, "StorageClass", "STANDARD");
    s3_xml_u64(&b, "PartNumberMarker", (uint64_t)marker);
    s3_xml_u64(&b, "NextPartNumberMarker", (uint64_t)pg.last);
    s3_xml_u64(&b, "MaxParts", (uint64_t)max);
    s3_xml_text(&b, "IsTruncated", pg.truncated ? "true" : "false");
    buf_append(&b, parts.data ? parts.data : "", parts.len);
    buf_puts(&b, "</ListPartsResult>");
    buf_release(&parts);
    s3_mpu_release(&u);
    s3_reply_xml(c, 200, &b);
}

struct uploads_page {
    struct s3 *s3;
    struct buf *b;
    const char *prefix;
    size_t plen;
    int count, max, truncated;
    struct buf last_key;
    char last_id[41];
};

static int one_upload(const struct s3_mpu *u, void *arg)
{
    struct uploads_page *pg = arg;
    if (pg->plen && (u->key_len < pg->plen || memcmp(u->key, pg->prefix, pg->plen) != 0))
        return 0;
    if (pg->count == pg->max) {
        pg->truncated = 1;
        return 1;
    }
    char when[32];
    s3_time_iso(u->created_ms, when);
    buf_puts(pg->b, "<Upload>");
    s3_xml_textn(pg->b, "Key", u->key, u->key_len);
    s3_xml_text(pg->b, "UploadId", u->id);
    owner_xml(pg->s3, pg->b, "Initiator");
    owner_xml(pg->s3, pg->b, "Owner");
    s3_xml_text(pg->b, "StorageClass", "STANDARD");
    s3_xml_text(pg->b, "Initiated", when);
    buf_puts(pg->b, "</Upload>");
    pg->count++;
    buf_reset(&pg->last_key);
    buf_append(&pg->last_key, u->key, u->key_len);
    memcpy(pg->last_id, u->id, sizeof(pg->last_id));
    return 0;
}

void s3_list_uploads(struct s3_call *c)
{
    int max;
    if (!bucket_exists(c) || int_param(c, "max-uploads", MAX_LIST, MAX_LIST, &max) < 0)
        return;
    const char *prefix = http_req_query(c->req, "prefix");
    const char *km = http_req_query(c->req, "key-marker");
    const char *im = http_req_query(c->req, "upload-id-marker");
    struct buf ups = BUF_INIT;
    struct uploads_page pg;
    memset(&pg, 0, sizeof(pg));
    pg.s3 = c->s3;
    pg.b = &ups;
    pg.prefix = prefix ? prefix : "";
    pg.plen = strlen(pg.prefix);
    pg.max = max;
    /* key-marker alone: uploads of later keys only */
    const char *id_marker = km && im ? im : (km ? "\x7f" : "");
    /* rows are filtered by prefix here: read the whole remainder (bounded by
     * the bucket's unfinished uploads) */
    int rc = s3_mpu_list(c->s3, c->bucket, km ? km : "", km ? strlen(km) : 0, id_marker, -1,
                         one_upload, &pg);
    if (rc < 0) {
        buf_release(&ups);
        buf_release(&pg.last_key);
        internal(c);
        return;
    }
    struct buf b = BUF_INIT;
    s3_xml_open(&b, "ListMultipartUploadsResult");
    s3_xml_text(&b, "Bucket", c->bucket);
    s3_xml_text(&b, "KeyMarker", km ? km : "");
    s3_xml_text(&b, "UploadIdMarker", im ? im : "");
    if (pg.truncated) {
        s3_xml_textn(&b, "NextKeyMarker", pg.last_key.data ? pg.last_key.data : "",
                     pg.last_key.len);
        s3_xml_text(&b, "NextUploadIdMarker", pg.last_id);
    }
    if (prefix)
        s3_xml_text(&b, "Prefix", prefix);
    s3_xml_u64(&b, "MaxUploads", (uint64_t)max);
    s3_xml_text(&b, "IsTruncated", pg.truncated ? "true" : "false");
    buf_append(&b, ups.data ? ups.data : "", ups.len);
    buf_puts(&b, "</ListMultipartUploadsResult>");
    buf_release(&ups);
    buf_release(&pg.last_key);
    s3_reply_xml(c, 200, &b);
}
