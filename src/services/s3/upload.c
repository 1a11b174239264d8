/*
 * upload: a PUT body (PutObject, UploadPart) streamed to a temp file as it
 * arrives, never held whole. Decodes aws-chunked framing
 * (STREAMING-AWS4-HMAC-SHA256-PAYLOAD: each chunk's signature checked in the
 * chain from the seed signature, and with -TRAILER the trailer's signature
 * too; STREAMING-UNSIGNED-PAYLOAD-TRAILER),
 * computes MD5 (the ETag), the SHA-256 a hex x-amz-content-sha256 declared,
 * and CRC32 when x-amz-checksum-crc32 is given, and checks Content-MD5,
 * lengths and the 5 GiB limit. A body that fails any check is answered with
 * S3's error and its temp file removed; a good one is fsync'd and renamed
 * into place on the work queue (files.c) before the caller's done runs, so
 * nothing partial ever becomes an object. Disk writes of up to 1 MiB are
 * made on the loop thread (page cache); the fsync is not.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#include "core/log.h"
#include "core/util.h"
#include "edge/sigv4.h"
#include "services/s3/s3_internal.h"

#define WBUF_SIZE (1u << 20)

struct s3_upload {
    struct s3_upload *next, *prev;
    struct s3 *s3;
    struct s3_call *c;
    s3_upload_done done;
    void *arg;
    int fd;
    char tmp[PATH_MAX];
    char *wbuf;
    size_t wlen;
    EVP_MD_CTX *md5, *sha, *chunk_sha;
    uLong crc;
    char crc_expected[16]; /* base64 of the big-endian CRC32, or "" */
    char content_md5[64];
    char payload_hex[65]; /* "" when not a hex hash */
    int chunked, signed_chunks;
    int signed_trailer;   /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER */
    int trailer_verified; /* its x-amz-trailer-signature matched */
    struct buf trailer;   /* the trailing headers so far, "name:value\n" each */
    struct s3_chunked dec;
    char chunk_sig[65];
    char prev_sig[65];
    char amz_date[17], region[33];
    uint64_t size, expect;
    int have_expect;
    int storing; /* handed to the work queue */
    int gone;    /* the client went away meanwhile */
};

static void unlink_upload(struct s3_upload *u)
{
    if (u->prev)
        u->prev->next = u->next;
    else if (u->s3->uploads == u)
        u->s3->uploads = u->next;
    if (u->next)
        u->next->prev = u->prev;
    u->next = u->prev = NULL;
}

static void upload_free(struct s3_upload *u)
{
    unlink_upload(u);
    if (u->fd >= 0) {
        close(u->fd);
        unlink(u->tmp);
    }
    EVP_MD_CTX_free(u->md5);
    EVP_MD_CTX_free(u->sha);
    EVP_MD_CTX_free(u->chunk_sha);
    buf_release(&u->trailer);
    free(u->wbuf);
    s3_call_free(u->c);
    free(u);
}

void s3_reply_stored(struct s3_call *c, const struct s3_upload_result *r)
{
    char etag[52];
    snprintf(etag, sizeof(etag), "\"%s\"", r->etag);
    http_req_add_header(c->req, "ETag", etag);
    if (r->crc32[0])
        http_req_add_header(c->req, "x-amz-checksum-crc32", r->crc32);
    s3_request_id(c);
    http_reply(c->req, 200, NULL, "", 0);
}

static void on_gone(struct http_req *req, void *arg)
{
    (void)req;
    struct s3_upload *u = arg;
    u->c->req = NULL;
    if (u->storing) {
        u->gone = 1; /* the job's completion frees it */
        return;
    }
    upload_free(u);
}

/* Answers the error (the rest of the body is discarded) and drops the upload. */
static void fail(struct s3_upload *u, unsigned status, const char *code, const char *const *extra,
                 const char *msg)
{
    http_req_on_gone(u->c->req, NULL, NULL);
    s3_fail(u->c, status, code, extra, "%s", msg);
    upload_free(u);
}

static void too_large(struct s3_upload *u, uint64_t proposed)
{
    char size[24], max[24];
    snprintf(size, sizeof(size), "%llu", (unsigned long long)proposed);
    snprintf(max, sizeof(max), "%llu", (unsigned long long)S3_MAX_OBJECT);
    const char *extra[] = {"ProposedSize", size, "MaxSizeAllowed", max, NULL};
    fail(u, 400, "EntityTooLarge", extra, "Your proposed upload exceeds the maximum allowed size");
}

static void incomplete(struct s3_upload *u)
{
    fail(u, 400, "IncompleteBody", NULL,
         "You did not provide the number of bytes specified by the Content-Length HTTP "
         "header");
}

static int flush(struct s3_upload *u)
{
    int rc = write_all(u->fd, u->wbuf, u->wlen);
    if (rc < 0)
        log_error("s3: write %s: %s", u->tmp, strerror(-rc));
    u->wlen = 0;
    return rc;
}

/* Decoded body bytes. Returns 0 or -1 (answered). */
static int consume(struct s3_upload *u, const char *p, size_t n)
{
    if (u->size + n > S3_MAX_OBJECT) {
        too_large(u, u->size + n);
        return -1;
    }
    if (u->have_expect && u->size + n > u->expect) {
        incomplete(u);
        return -1;
    }
    u->size += n;
    EVP_DigestUpdate(u->md5, p, n);
    if (u->sha)
        EVP_DigestUpdate(u->sha, p, n);
    if (u->crc_expected[0] || u->chunked)
        u->crc = crc32(u->crc, (const Bytef *)p, (uInt)n);
    while (n > 0) {
        size_t k = WBUF_SIZE - u->wlen;
        if (k > n)
            k = n;
        memcpy(u->wbuf + u->wlen, p, k);
        u->wlen += k;
        p += k;
        n -= k;
        if (u->wlen == WBUF_SIZE && flush(u) < 0) {
            fail(u, 500, "InternalError", NULL,
                 "We encountered an internal error. Please try again.");
            return -1;
        }
    }
    return 0;
}

/*=== aws-chunked ===*/

static int on_chunk(void *arg, uint64_t size, const char *signature)
{
    struct s3_upload *u = arg;
    (void)size;
    if (u->signed_chunks) {
        if (!signature)
            return -EINVAL;
        memcpy(u->chunk_sig, signature, 64);
        u->chunk_sig[64] = '\0';
        for (int i = 0; i < 64; i++)
            if (u->chunk_sig[i] >= 'A' && u->chunk_sig[i] <= 'F')
                u->chunk_sig[i] = (char)(u->chunk_sig[i] + 32);
        if (EVP_DigestInit_ex(u->chunk_sha, EVP_sha256(), NULL) != 1)
            return -EIO;
    }
    return 0;
}

static int on_data(void *arg, const char *p, size_t n)
{
    struct s3_upload *u = arg;
    if (u->signed_chunks)
        EVP_DigestUpdate(u->chunk_sha, p, n);
    return consume(u, p, n) < 0 ? -ECANCELED : 0;
}

static int on_chunk_end(void *arg)
{
    struct s3_upload *u = arg;
    if (!u->signed_chunks)
        return 0;
    unsigned char hash[32];
    unsigned int hl = 0;
    char expected[65];
    if (EVP_DigestFinal_ex(u->chunk_sha, hash, &hl) != 1 ||
        sigv4_chunk_signature(u->s3->cfg->secret_key, u->amz_date, u->region, "s3", u->prev_sig,
                              hash, expected) < 0 ||
        CRYPTO_memcmp(expected, u->chunk_sig, 64) != 0) {
        fail(u, 403, "SignatureDoesNotMatch", NULL,
             "The request signature we calculated does not match the signature you provided. "
             "Check your key and signing method.");
        return -ECANCELED;
    }
    memcpy(u->prev_sig, expected, sizeof(expected));
    return 0;
}

static int on_trailer(void *arg, const char *name, const char *value)
{
    struct s3_upload *u = arg;
    if (u->signed_trailer && strcasecmp(name, "x-amz-trailer-signature") == 0) {
        unsigned char hash[32];
        char expected[65];
        sha256(u->trailer.data ? u->trailer.data : "", u->trailer.len, hash);
        if (strlen(value) != 64 ||
            sigv4_trailer_signature(u->s3->cfg->secret_key, u->amz_date, u->region, "s3",
                                    u->prev_sig, hash, expected) < 0 ||
            strncasecmp(expected, value, 64) != 0) {
            fail(u, 403, "SignatureDoesNotMatch", NULL,
                 "The request signature we calculated does not match the signature you "
                 "provided. Check your key and signing method.");
            return -ECANCELED;
        }
        u->trailer_verified = 1;
        return 0;
    }
    if (u->trailer_verified || buf_printf(&u->trailer, "%s:%s\n", name, value) < 0)
        return -EINVAL; /* nothing may follow the signature; the trailer is capped */
    if (strcasecmp(name, "x-amz-checksum-crc32") == 0)
        snprintf(u->crc_expected, sizeof(u->crc_expected), "%s", value);
    return 0;
}

static const struct s3_chunked_ops chunked_ops = {on_chunk, on_data, on_chunk_end, on_trailer};

/*=== The end ===*/

static void stored(struct s3_file_job *j, void *arg)
{
    struct s3_upload *u = arg;
    u->storing = 0;
    if (u->gone || !u->c->req) {
        s3_file_remove(u->s3, j->file); /* nobody to tell: as if never sent */
        upload_free(u);
        return;
    }
    struct s3_upload_result r;
    memset(&r, 0, sizeof(r));
    unsigned char md5[16];
    unsigned int ml = 0;
    EVP_DigestFinal_ex(u->md5, md5, &ml);
    hex_encode(md5, 16, r.etag);
    http_req_on_gone(u->c->req, NULL, NULL);
    if (j->err) {
        s3_fail(u->c, 500, "InternalError", NULL,
                "We encountered an internal error. Please try again.");
        upload_free(u);
        return;
    }
    r.ok = 1;
    memcpy(r.file, j->file, sizeof(r.file));
    r.size = u->size;
    if (u->crc_expected[0])
        snprintf(r.crc32, sizeof(r.crc32), "%s", u->crc_expected);
    u->done(u->c, &r, u->arg); /* answers; c is freed with u */
    upload_free(u);
}

/* base64 of the 4-byte big-endian CRC32 */
static void crc_b64(uLong crc, struct buf *out)
{
    unsigned char be[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16),
                           (unsigned char)(crc >> 8), (unsigned char)crc};
    base64_encode(out, be, 4);
}

static void finish(struct s3_upload *u)
{
    if (u->chunked && !s3_chunked_done(&u->dec)) {
        incomplete(u);
        return;
    }
    if (u->signed_trailer && !u->trailer_verified) {
        fail(u, 403, "SignatureDoesNotMatch", NULL,
             "The request signature we calculated does not match the signature you provided. "
             "Check your key and signing method.");
        return;
    }
    if (u->have_expect && u->size != u->expect) {
        incomplete(u);
        return;
    }
    if (flush(u) < 0) {
        fail(u, 500, "InternalError", NULL, "We encountered an internal error. Please try again.");
        return;
    }
    if (u->sha) {
        unsigned char h[32];
        unsigned int hl = 0;
        char hex[65];
        EVP_DigestFinal_ex(u->sha, h, &hl);
        hex_encode(h, 32, hex);
        if (strcasecmp(hex, u->payload_hex) != 0) {
            const char *extra[] = {"ClientComputedContentSHA256", u->payload_hex,
                                   "S3ComputedContentSHA256", hex, NULL};
            fail(u, 400, "XAmzContentSHA256Mismatch", extra,
                 "The provided 'x-amz-content-sha256' header does not match what was computed.");
            return;
        }
    }
    if (u->content_md5[0]) {
        EVP_MD_CTX *copy = EVP_MD_CTX_new();
        unsigned char md5[16];
        unsigned int ml = 0;
        struct buf b64 = BUF_INIT;
        int ok = copy && EVP_MD_CTX_copy_ex(copy, u->md5) == 1 &&
                 EVP_DigestFinal_ex(copy, md5, &ml) == 1 && base64_encode(&b64, md5, 16) == 0;
        EVP_MD_CTX_free(copy);
        int match = ok && strcmp(b64.data, u->content_md5) == 0;
        if (!match) {
            const char *extra[] = {"ExpectedDigest", u->content_md5, "CalculatedDigest",
                                   b64.data ? b64.data : "", NULL};
            fail(u, 400, "BadDigest", extra,
                 "The Content-MD5 you specified did not match what we received.");
            buf_release(&b64);
            return;
        }
        buf_release(&b64);
    }
    if (u->crc_expected[0]) {
        struct buf b64 = BUF_INIT;
        crc_b64(u->crc, &b64);
        int match = b64.data && strcmp(b64.data, u->crc_expected) == 0;
        buf_release(&b64);
        if (!match) {
            fail(u, 400, "BadDigest", NULL,
                 "The CRC32 you specified did not match the calculated checksum.");
            return;
        }
    }
    struct s3_file_job *j = calloc(1, sizeof(*j));
    if (!j) {
        fail(u, 500, "InternalError", NULL, "We encountered an internal error. Please try again.");
        return;
    }
    j->fd = u->fd;
    memcpy(j->tmp, u->tmp, sizeof(j->tmp));
    j->done = stored;
    j->arg = u;
    u->storing = 1;
    if (s3_file_job_submit(u->s3, j) < 0) {
        u->storing = 0;
        free(j);
        fail(u, 500, "InternalError", NULL, "We encountered an internal error. Please try again.");
        return;
    }
    u->fd = -1; /* the job closes it, and removes the temp file on failure */
}

static int sink(struct http_req *req, const char *data, size_t len, void *arg)
{
    (void)req;
    struct s3_upload *u = arg;
    if (!data) {
        finish(u);
        return 0;
    }
    if (!u->chunked)
        return consume(u, data, len);
    int rc = s3_chunked_feed(&u->dec, data, len);
    if (rc == -ECANCELED)
        return -1; /* answered by a callback */
    if (rc < 0) {
        fail(u, 400, "IncompleteBody", NULL, "The aws-chunked body is malformed.");
        return -1;
    }
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > UINT64_MAX / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

void s3_upload_start(struct s3_call *c, const struct edge_auth *auth, s3_upload_done done,
                     void *arg)
{
    struct s3_upload *u = calloc(1, sizeof(*u));
    if (!u) {
        s3_fail(c, 500, "InternalError", NULL, "We encountered an internal error.");
        s3_call_free(c);
        return;
    }
    struct s3 *s3 = c->s3;
    struct http_req *req = c->req;
    u->s3 = s3;
    u->c = c;
    u->done = done;
    u->arg = arg;
    u->fd = -1;
    u->next = s3->uploads;
    if (s3->uploads)
        s3->uploads->prev = u;
    s3->uploads = u;

    const char *payload = auth && auth->payload_hash ? auth->payload_hash : "UNSIGNED-PAYLOAD";
    u->chunked = str_has_prefix(payload, "STREAMING-");
    u->signed_trailer = strcmp(payload, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") == 0;
    u->signed_chunks =
        u->signed_trailer || strcmp(payload, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") == 0;
    buf_init(&u->trailer, 4096);
    if (strlen(payload) == 64 && !u->chunked)
        snprintf(u->payload_hex, sizeof(u->payload_hex), "%s", payload);
    const char *cl = http_req_header(req, "Content-Length");
    const char *decoded = http_req_header(req, "x-amz-decoded-content-length");
    uint64_t n;
    if (u->chunked) {
        if (decoded && parse_u64(decoded, &n) == 0) {
            u->expect = n;
            u->have_expect = 1;
        } else if (decoded) {
            fail(u, 400, "InvalidArgument", NULL, "x-amz-decoded-content-length is invalid");
            return;
        } else {
            fail(u, 411, "MissingContentLength", NULL,
                 "You must provide the Content-Length HTTP header.");
            return;
        }
    } else if (cl && parse_u64(cl, &n) == 0) {
        u->expect = n;
        u->have_expect = 1;
    } else if (!http_req_header(req, "Transfer-Encoding")) {
        fail(u, 411, "MissingContentLength", NULL,
             "You must provide the Content-Length HTTP header.");
        return;
    }
    if (u->have_expect && u->expect > S3_MAX_OBJECT) {
        too_large(u, u->expect);
        return;
    }
    const char *md5 = http_req_header(req, "Content-MD5");
    if (md5) {
        struct buf raw = BUF_INIT;
        int ok = strlen(md5) < sizeof(u->content_md5) &&
                 base64_decode(&raw, md5, strlen(md5)) == 0 && raw.len == 16;
        buf_release(&raw);
        if (!ok) {
            fail(u, 400, "InvalidDigest", NULL, "The Content-MD5 you specified was invalid.");
            return;
        }
        snprintf(u->content_md5, sizeof(u->content_md5), "%s", md5);
    }
    const char *crc = http_req_header(req, "x-amz-checksum-crc32");
    if (crc)
        snprintf(u->crc_expected, sizeof(u->crc_expected), "%s", crc);
    if (u->signed_chunks) {
        snprintf(u->prev_sig, sizeof(u->prev_sig), "%s", auth->signature);
        snprintf(u->amz_date, sizeof(u->amz_date), "%s", auth->amz_date);
        snprintf(u->region, sizeof(u->region), "%s", auth->region);
    }
    u->md5 = EVP_MD_CTX_new();
    u->sha = u->payload_hex[0] ? EVP_MD_CTX_new() : NULL;
    u->chunk_sha = u->signed_chunks ? EVP_MD_CTX_new() : NULL;
    u->wbuf = malloc(WBUF_SIZE);
    u->crc = crc32(0L, Z_NULL, 0);
    if (!u->md5 || (u->payload_hex[0] && !u->sha) || (u->signed_chunks && !u->chunk_sha) ||
        !u->wbuf || EVP_DigestInit_ex(u->md5, EVP_md5(), NULL) != 1 ||
        (u->sha && EVP_DigestInit_ex(u->sha, EVP_sha256(), NULL) != 1)) {
        fail(u, 500, "InternalError", NULL, "We encountered an internal error.");
        return;
    }
    u->fd = s3_temp_open(s3, u->tmp, sizeof(u->tmp));
    if (u->fd < 0) {
        fail(u, 500, "InternalError", NULL, "We encountered an internal error.");
        return;
    }
    if (u->chunked)
        s3_chunked_init(&u->dec, &chunked_ops, u);
    http_req_on_gone(req, on_gone, u);
    http_req_read_body(req, sink, u);
}

void s3_uploads_drop(struct s3 *s3)
{
    while (s3->uploads) {
        struct s3_upload *u = s3->uploads;
        if (u->c && u->c->req)
            http_req_on_gone(u->c->req, NULL, NULL);
        if (u->storing) { /* its job still refers to it: the job's done frees it */
            unlink_upload(u);
            u->gone = 1;
            continue;
        }
        upload_free(u);
    }
}
