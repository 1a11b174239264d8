/*
 * list: ListBuckets, ListObjects (v1: marker/NextMarker) and ListObjectsV2
 * (continuation-token, start-after, fetch-owner): prefix, delimiter
 * (CommonPrefixes), max-keys and encoding-type=url. A page walks the
 * (bucket, key) primary key from its lower bound in UTF-8 byte order; a
 * common prefix is emitted once and the walk jumps past every key under it
 * (a new index seek), so a page costs O(max-keys) seeks whatever the bucket
 * holds. A continuation token is the base64 of the last key or prefix shown.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "services/s3/s3_internal.h"

#define MAX_KEYS 1000

static void owner(struct s3 *s3, struct buf *b)
{
    char id[65];
    sha256_hex(s3->cfg->account_id, strlen(s3->cfg->account_id), id);
    buf_puts(b, "<Owner>");
    s3_xml_text(b, "ID", id);
    s3_xml_text(b, "DisplayName", S3_OWNER_NAME);
    buf_puts(b, "</Owner>");
}

/*=== ListBuckets ===*/

struct buckets_ctx {
    struct buf *b;
};

static int one_bucket(const struct s3_bucket *bk, void *arg)
{
    struct buckets_ctx *x = arg;
    char when[32];
    s3_time_iso(bk->created_ms, when);
    buf_puts(x->b, "<Bucket>");
    s3_xml_text(x->b, "Name", bk->name);
    s3_xml_text(x->b, "CreationDate", when);
    buf_puts(x->b, "</Bucket>");
    return 0;
}

void s3_list_buckets(struct s3_call *c)
{
    struct buf b = BUF_INIT;
    s3_xml_open(&b, "ListAllMyBucketsResult");
    owner(c->s3, &b);
    buf_puts(&b, "<Buckets>");
    struct buckets_ctx x = {&b};
    if (s3_bucket_foreach(c->s3, one_bucket, &x) < 0) {
        buf_release(&b);
        s3_fail(c, 500, "InternalError", NULL, "We encountered an internal error.");
        return;
    }
    buf_puts(&b, "</Buckets></ListAllMyBucketsResult>");
    s3_reply_xml(c, 200, &b);
}

/*=== ListObjects ===*/

/* The smallest string greater than every string starting with s[0..n)
 * (into out, its length), or -1 when there is none (all 0xff). */
static long successor(const char *s, size_t n, char *out)
{
    memcpy(out, s, n);
    while (n > 0) {
        unsigned char ch = (unsigned char)out[n - 1];
        if (ch != 0xff) {
            out[n - 1] = (char)(ch + 1);
            return (long)n;
        }
        n--;
    }
    return -1;
}

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);
    if (r)
        return r;
    return an < bn ? -1 : an > bn;
}

struct page {
    struct s3 *s3;
    const char *prefix, *delim;
    size_t plen, dlen;
    const char *after; /* show only what sorts after this (marker / start-after / token) */
    size_t after_len;
    int max, count, truncated, v1, owner, url;
    struct buf contents, prefixes;
    struct buf last; /* the last key or prefix shown */
    struct buf lower;
    int restart; /* the walk must seek again from lower */
    int rows;
};

static void put_key(struct page *pg, struct buf *b, const char *name, const char *s, size_t n)
{
    if (pg->url) {
        struct buf enc = BUF_INIT;
        s3_url_encode(&enc, s, n);
        s3_xml_textn(b, name, enc.data ? enc.data : "", enc.len);
        buf_release(&enc);
    } else {
        s3_xml_textn(b, name, s, n);
    }
}

static int set_lower(struct page *pg, const char *s, size_t n, int exclusive)
{
    buf_reset(&pg->lower);
    if (buf_append(&pg->lower, s, n) < 0)
        return -1;
    if (exclusive && buf_putc(&pg->lower, '\0') < 0) /* the next key after s */
        return -1;
    return 0;
}

static int one_object(const struct s3_object *o, void *arg)
{
    struct page *pg = arg;
    pg->rows++;
    if (pg->delim && pg->dlen > 0 && o->key_len > pg->plen) {
        const char *rest = o->key + pg->plen;
        size_t rlen = o->key_len - pg->plen;
        const char *d = memmem(rest, rlen, pg->delim, pg->dlen);
        if (d) {
            size_t cplen = (size_t)(d - o->key) + pg->dlen;
            char *succ = malloc(cplen);
            long sl = succ ? successor(o->key, cplen, succ) : -1;
            int skip = pg->after && bytes_cmp(o->key, cplen, pg->after, pg->after_len) <= 0;
            if (!skip) {
                if (pg->count == pg->max) {
                    pg->truncated = 1;
                    free(succ);
                    return 1;
                }
                buf_puts(&pg->prefixes, "<CommonPrefixes>");
                put_key(pg, &pg->prefixes, "Prefix", o->key, cplen);
                buf_puts(&pg->prefixes, "</CommonPrefixes>");
                pg->count++;
                buf_reset(&pg->last);
                buf_append(&pg->last, o->key, cplen);
            }
            if (sl < 0) {
                pg->restart = -1; /* nothing sorts after this prefix */
            } else {
                buf_reset(&pg->lower);
                buf_append(&pg->lower, succ, (size_t)sl);
                pg->restart = 1;
            }
            free(succ);
            return 1;
        }
    }
    if (pg->count == pg->max) {
        pg->truncated = 1;
        return 1;
    }
    char when[32], etag[52];
    s3_time_iso(o->modified_ms, when);
    snprintf(etag, sizeof(etag), "\"%s\"", o->etag);
    struct buf *b = &pg->contents;
    buf_puts(b, "<Contents>");
    put_key(pg, b, "Key", o->key, o->key_len);
    s3_xml_text(b, "LastModified", when);
    s3_xml_text(b, "ETag", etag);
    s3_xml_u64(b, "Size", o->size);
    if (pg->owner)
        owner(pg->s3, b);
    s3_xml_text(b, "StorageClass", "STANDARD");
    buf_puts(b, "</Contents>");
    pg->count++;
    buf_reset(&pg->last);
    buf_append(&pg->last, o->key, o->key_len);
    set_lower(pg, o->key, o->key_len, 1);
    return 0;
}

/* Walks the page. Returns 0 or -EIO. */
static int walk(struct page *pg, const char *bucket)
{
    char *upper = NULL;
    long ulen = -1;
    if (pg->plen > 0) {
        upper = malloc(pg->plen);
        ulen = upper ? successor(pg->prefix, pg->plen, upper) : -1;
    }
    /* lower bound: the prefix, or just after the marker when that is later */
    set_lower(pg, pg->prefix, pg->plen, 0);
    if (pg->after && bytes_cmp(pg->after, pg->after_len, pg->prefix, pg->plen) >= 0)
        set_lower(pg, pg->after, pg->after_len, 1);
    int rc = 0;
    for (;;) {
        pg->restart = 0;
        pg->rows = 0;
        int limit = pg->max - pg->count + 1;
        struct buf lower = pg->lower; /* the callback changes pg->lower */
        pg->lower = (struct buf)BUF_INIT;
        buf_append(&pg->lower, lower.data ? lower.data : "", lower.len);
        rc = s3_object_range(pg->s3, bucket, lower.data ? lower.data : "", lower.len,
                             ulen >= 0 ? upper : NULL, ulen >= 0 ? (size_t)ulen : 0, limit,
                             one_object, pg);
        buf_release(&lower);
        if (rc < 0 || pg->truncated || pg->restart < 0)
            break;
        if (pg->restart)
            continue;
        if (pg->rows < limit)
            break; /* the range is exhausted */
    }
    free(upper);
    return rc;
}

void s3_list_objects(struct s3_call *c, int v2)
{
    struct s3 *s3 = c->s3;
    struct http_req *req = c->req;
    if (s3_need_bucket(c, NULL) < 0)
        return;
    struct page pg;
    memset(&pg, 0, sizeof(pg));
    pg.s3 = s3;
    pg.v1 = !v2;
    pg.prefix = http_req_query(req, "prefix");
    if (!pg.prefix)
        pg.prefix = "";
    pg.plen = strlen(pg.prefix);
    pg.delim = http_req_query(req, "delimiter");
    if (pg.delim && !*pg.delim)
        pg.delim = NULL;
    pg.dlen = pg.delim ? strlen(pg.delim) : 0;
    pg.max = MAX_KEYS;
    const char *mk = http_req_query(req, "max-keys");
    if (mk) {
        char *end;
        long v = strtol(mk, &end, 10);
        if (!*mk || *end || v < 0) {
            const char *extra[] = {"ArgumentName", "maxKeys", "ArgumentValue", mk, NULL};
            s3_fail(c, 400, "InvalidArgument", extra,
                    "Provided max-keys not an integer or within integer range");
            return;
        }
        pg.max = v > MAX_KEYS ? MAX_KEYS : (int)v;
    }
    const char *enc = http_req_query(req, "encoding-type");
    if (enc && strcmp(enc, "url") != 0) {
        const char *extra[] = {"ArgumentName", "encoding-type", "ArgumentValue", enc, NULL};
        s3_fail(c, 400, "InvalidArgument", extra, "Invalid Encoding Method specified in Request");
        return;
    }
    pg.url = enc != NULL;
    const char *token = v2 ? http_req_query(req, "continuation-token") : NULL;
    const char *start_after = v2 ? http_req_query(req, "start-after") : NULL;
    const char *marker = v2 ? NULL : http_req_query(req, "marker");
    const char *fo = http_req_query(req, "fetch-owner");
    pg.owner = !v2 || (fo && strcmp(fo, "true") == 0);
    struct buf tok = BUF_INIT;
    if (token) {
        if (base64_decode(&tok, token, strlen(token)) < 0 || tok.len == 0 ||
            tok.len > S3_MAX_KEY + 8) {
            buf_release(&tok);
            const char *extra[] = {"ArgumentName", "continuation-token", NULL};
            s3_fail(c, 400, "InvalidArgument", extra,
                    "The continuation token provided is incorrect");
            return;
        }
        pg.after = tok.data;
        pg.after_len = tok.len;
    } else if (start_after && *start_after) {
        pg.after = start_after;
        pg.after_len = strlen(start_after);
    } else if (marker && *marker) {
        pg.after = marker;
        pg.after_len = strlen(marker);
    }
    if (walk(&pg, c->bucket) < 0) {
        buf_release(&tok);
        buf_release(&pg.contents);
        buf_release(&pg.prefixes);
        buf_release(&pg.last);
        buf_release(&pg.lower);
        s3_fail(c, 500, "InternalError", NULL, "We encountered an internal error.");
        return;
    }
    struct buf b = BUF_INIT;
    s3_xml_open(&b, "ListBucketResult");
    s3_xml_text(&b, "Name", c->bucket);
    put_key(&pg, &b, "Prefix", pg.prefix, pg.plen);
    if (v2) {
        if (token)
            s3_xml_text(&b, "ContinuationToken", token);
        if (start_after)
            put_key(&pg, &b, "StartAfter", start_after, strlen(start_after));
        s3_xml_u64(&b, "KeyCount", (uint64_t)pg.count);
    } else {
        put_key(&pg, &b, "Marker", marker ? marker : "", marker ? strlen(marker) : 0);
    }
    s3_xml_u64(&b, "MaxKeys", (uint64_t)pg.max);
    if (pg.delim)
        put_key(&pg, &b, "Delimiter", pg.delim, pg.dlen);
    s3_xml_text(&b, "IsTruncated", pg.truncated ? "true" : "false");
    if (pg.truncated && pg.last.len > 0) {
        if (v2) {
            struct buf t = BUF_INIT;
            base64_encode(&t, pg.last.data, pg.last.len);
            s3_xml_text(&b, "NextContinuationToken", t.data ? t.data : "");
            buf_release(&t);
        } else if (pg.delim) {
            put_key(&pg, &b, "NextMarker", pg.last.data, pg.last.len);
        }
    }
    if (pg.url)
        s3_xml_text(&b, "EncodingType", "url");
    buf_append(&b, pg.contents.data ? pg.contents.data : "", pg.contents.len);
    buf_append(&b, pg.prefixes.data ? pg.prefixes.data : "", pg.prefixes.len);
    buf_puts(&b, "</ListBucketResult>");
    buf_release(&tok);
    buf_release(&pg.contents);
    buf_release(&pg.prefixes);
    buf_release(&pg.last);
    buf_release(&pg.lower);
    s3_reply_xml(c, 200, &b);
}
