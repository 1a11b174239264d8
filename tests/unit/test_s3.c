/*
 * Unit tests for S3's pure parts: the chunk signatures of aws-chunked bodies
 * and presigned URL verification (edge/sigv4, against the examples in AWS's
 * S3 documentation), the aws-chunked decoder (any slicing of the input, and
 * malformed framing) and the XML request parsers (services/s3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "edge/sigv4.h"
#include "services/s3/s3_internal.h"

#define DOC_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define DOC_DATE "20130524T000000Z"
#define DOC_NOW_MS 1369353600000LL /* 2013-05-24T00:00:00Z */

static const char *doc_lookup(const char *access_key, void *arg)
{
    (void)arg;
    return strcmp(access_key, "AKIAIOSFODNN7EXAMPLE") == 0 ? DOC_SECRET : NULL;
}

/* "Example: PUT Object" of AWS's chunked upload page: three chunks chained
 * from the seed signature. */
static void test_chunk_signatures(void **state)
{
    (void)state;
    static const char *const want[] = {
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    };
    static const size_t sizes[] = {65536, 1024, 0};
    char prev[65] = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    char *data = malloc(65536);
    assert_non_null(data);
    memset(data, 'a', 65536);
    for (int i = 0; i < 3; i++) {
        unsigned char hash[32];
        sha256(data, sizes[i], hash);
        char sig[65];
        assert_int_equal(
            sigv4_chunk_signature(DOC_SECRET, DOC_DATE, "us-east-1", "s3", prev, hash, sig), 0);
        assert_string_equal(sig, want[i]);
        memcpy(prev, sig, sizeof(prev));
    }
    free(data);
    /* the trailer after the last chunk (computed with an independent
     * implementation: Python's hmac over the documented string to sign) */
    static const char trailer[] = "x-amz-checksum-crc32c:sOO8/Q==\n";
    unsigned char th[32];
    char tsig[65];
    sha256(trailer, sizeof(trailer) - 1, th);
    assert_int_equal(
        sigv4_trailer_signature(DOC_SECRET, DOC_DATE, "us-east-1", "s3", prev, th, tsig), 0);
    assert_string_equal(tsig, "838d1eeafd0ec086f3e98ef47cfb73e3cf6fea3c489e22a61089fa643e8b4b61");
    unsigned char h[32] = {0};
    char sig[65];
    assert_int_equal(sigv4_chunk_signature(DOC_SECRET, "bad", "us-east-1", "s3", prev, h, sig),
                     -EINVAL);
    assert_int_equal(
        sigv4_chunk_signature(DOC_SECRET, DOC_DATE, "us-east-1", "s3", "short", h, sig), -EINVAL);
}

/* "Example: Presigned URL" of AWS's query-string authentication page. */
static struct sigv4_kv presign_query[] = {
    {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
    {"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"},
    {"X-Amz-Date", "20130524T000000Z"},
    {"X-Amz-Expires", "86400"},
    {"X-Amz-SignedHeaders", "host"},
    {"X-Amz-Signature", "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"},
};
static const struct sigv4_kv presign_headers[] = {{"Host", "examplebucket.s3.amazonaws.com"}};

static struct sigv4_request presign_request(void)
{
    struct sigv4_request r = {
        .method = "GET",
        .path = "/test.txt",
        .query = presign_query,
        .nquery = 6,
        .headers = presign_headers,
        .nheaders = 1,
        .payload_hash = "UNSIGNED-PAYLOAD",
        .s3 = 1,
    };
    return r;
}

static void test_presigned(void **state)
{
    (void)state;
    struct sigv4_request r = presign_request();
    struct sigv4_credential cred;
    assert_int_equal(sigv4_verify_presigned(&r, doc_lookup, NULL, DOC_NOW_MS + 1000, &cred),
                     SIGV4_OK);
    assert_string_equal(cred.access_key, "AKIAIOSFODNN7EXAMPLE");
    assert_string_equal(cred.service, "s3");
    assert_string_equal(cred.amz_date, DOC_DATE);
    /* valid for 86400 s, not after */
    assert_int_equal(
        sigv4_verify_presigned(&r, doc_lookup, NULL, DOC_NOW_MS + 86400 * 1000LL, &cred), SIGV4_OK);
    assert_int_equal(
        sigv4_verify_presigned(&r, doc_lookup, NULL, DOC_NOW_MS + 86401 * 1000LL, &cred),
        SIGV4_EXPIRED);
    r.method = "PUT";
    assert_int_equal(sigv4_verify_presigned(&r, doc_lookup, NULL, DOC_NOW_MS, &cred),
                     SIGV4_MISMATCH);
    r = presign_request();
    r.path = "/test.txu";
    assert_int_equal(sigv4_verify_presigned(&r, doc_lookup, NULL, DOC_NOW_MS, &cred),
                     SIGV4_MISMATCH);
    r = presign_request();
    r.nquery = 5; /* no signature */
    assert_int_equal(sigv4_verify_presigned(&r, doc_lookup, NULL, DOC_NOW_MS, &cred),
                     SIGV4_MALFORMED);
    r = presign_request();
    r.query = presign_query + 1;
    r.nquery = 5; /* no algorithm: not a presigned URL */
    assert_int_equal(sigv4_verify_presigned(&r, doc_lookup, NULL, DOC_NOW_MS, &cred),
                     SIGV4_MISSING);
    presign_query[3].value = "604801"; /* over a week */
    r = presign_request();
    assert_int_equal(sigv4_verify_presigned(&r, doc_lookup, NULL, DOC_NOW_MS, &cred),
                     SIGV4_MALFORMED);
    presign_query[3].value = "86400";
    presign_query[1].value = "AKIDUNKNOWN%2F20130524%2Fus-east-1%2Fs3%2Faws4_request";
    r = presign_request();
    assert_int_equal(sigv4_verify_presigned(&r, doc_lookup, NULL, DOC_NOW_MS, &cred),
                     SIGV4_UNKNOWN_KEY);
    presign_query[1].value = "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request";
}

/*=== aws-chunked decoder ===*/

struct collected {
    struct buf data;
    int chunks, ends;
    char sigs[8][65];
    char trailer[128];
};

static int c_chunk(void *arg, uint64_t size, const char *sig)
{
    (void)size;
    struct collected *c = arg;
    if (c->chunks < 8)
        snprintf(c->sigs[c->chunks], 65, "%s", sig ? sig : "");
    c->chunks++;
    return 0;
}

static int c_data(void *arg, const char *p, size_t n)
{
    struct collected *c = arg;
    return buf_append(&c->data, p, n);
}

static int c_end(void *arg)
{
    ((struct collected *)arg)->ends++;
    return 0;
}

static int c_trailer(void *arg, const char *name, const char *value)
{
    struct collected *c = arg;
    snprintf(c->trailer, sizeof(c->trailer), "%s=%s", name, value);
    return 0;
}

static const struct s3_chunked_ops ops = {c_chunk, c_data, c_end, c_trailer};

#define SIG_A "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
#define SIG_B "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"

static const char framed[] = "5;chunk-signature=" SIG_A "\r\nhello\r\n"
                             "6;chunk-signature=" SIG_B "\r\n world\r\n"
                             "0;chunk-signature=" SIG_A "\r\n\r\n";

/* Feeds input in slices of step bytes; returns the last feed's result. */
static int feed(struct collected *c, const char *in, size_t n, size_t step)
{
    struct s3_chunked d;
    memset(c, 0, sizeof(*c));
    s3_chunked_init(&d, &ops, c);
    for (size_t off = 0; off < n; off += step) {
        size_t k = n - off < step ? n - off : step;
        int rc = s3_chunked_feed(&d, in + off, k);
        if (rc < 0)
            return rc;
    }
    return s3_chunked_done(&d) ? 1 : 0;
}

static void test_chunked_slicing(void **state)
{
    (void)state;
    for (size_t step = 1; step <= sizeof(framed); step++) {
        struct collected c;
        assert_int_equal(feed(&c, framed, sizeof(framed) - 1, step), 1);
        assert_int_equal(c.data.len, 11);
        assert_memory_equal(c.data.data, "hello world", 11);
        assert_int_equal(c.chunks, 3);
        assert_int_equal(c.ends, 3);
        assert_string_equal(c.sigs[0], SIG_A);
        assert_string_equal(c.sigs[1], SIG_B);
        buf_release(&c.data);
    }
    /* the unsigned trailer form */
    static const char trailer[] = "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n";
    struct collected c;
    assert_int_equal(feed(&c, trailer, sizeof(trailer) - 1, 4), 1);
    assert_string_equal(c.trailer, "x-amz-checksum-crc32=NSRBwg==");
    assert_string_equal(c.sigs[0], "");
    buf_release(&c.data);
    /* not finished yet */
    assert_int_equal(feed(&c, framed, sizeof(framed) - 3, 7), 0);
    buf_release(&c.data);
}

static void test_chunked_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "zz\r\nhello\r\n",                    /* size not hex */
        "5\nhello\r\n",                       /* bare LF */
        "5;chunk-signature=abc\r\nhello\r\n", /* short signature */
        "5;foo=bar\r\nhello\r\n",             /* unknown extension */
        "5\r\nhelloXX",                       /* no CRLF after data */
        "11111111111111111\r\n",              /* size too long */
        "0\r\n\r\nmore",                      /* bytes after the end */
        "0\r\nnocolon\r\n",                   /* trailer without ':' */
        "\r\n",                               /* empty size line */
        "5\r\nhel\0o\r\n0\r\n\r\n",           /* fine: NUL in data is data */
    };
    for (size_t i = 0; i + 1 < sizeof(bad) / sizeof(bad[0]); i++) {
        struct collected c;
        assert_true(feed(&c, bad[i], strlen(bad[i]), 3) < 0);
        buf_release(&c.data);
    }
    char longline[1024];
    memset(longline, '1', sizeof(longline));
    struct collected c;
    assert_true(feed(&c, longline, sizeof(longline), 100) < 0);
    buf_release(&c.data);
}

/*=== XML bodies ===*/

static void test_xml_delete(void **state)
{
    (void)state;
    static const char doc[] =
        "<?xml version=\"1.0\"?><Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Object><Key>a &amp; b</Key></Object><Object><Key>c/é</Key><VersionId>x</VersionId>"
        "</Object><Quiet>true</Quiet></Delete>";
    struct s3_delete_list d;
    assert_int_equal(s3_xml_parse_delete(doc, sizeof(doc) - 1, &d), 0);
    assert_int_equal(d.n, 2);
    assert_true(d.quiet);
    assert_string_equal(d.keys[0], "a & b");
    assert_string_equal(d.keys[1], "c/é");
    s3_delete_list_release(&d);
    static const char *const bad[] = {
        "",
        "<Delete>",
        "<Other><Object><Key>a</Key></Object></Other>",
        "<Delete></Delete>",
        "<Delete><Object></Object></Delete>",
        "<!DOCTYPE d [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><Delete><Object><Key>&e;</Key>"
        "</Object></Delete>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = s3_xml_parse_delete(bad[i], strlen(bad[i]), &d);
        if (rc == 0) { /* the external entity must not have been read */
            for (size_t k = 0; k < d.n; k++)
                assert_null(strstr(d.keys[k], "root:"));
            s3_delete_list_release(&d);
        }
    }
}

static void test_xml_complete(void **state)
{
    (void)state;
    static const char doc[] = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                              "<ETag>\"abc\"</ETag></Part><Part><ETag>def</ETag>"
                              "<PartNumber>2</PartNumber></Part></CompleteMultipartUpload>";
    struct s3_part_ref *p;
    size_t n;
    assert_int_equal(s3_xml_parse_complete(doc, sizeof(doc) - 1, &p, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(p[0].number, 1);
    assert_string_equal(p[0].etag, "abc");
    assert_int_equal(p[1].number, 2);
    assert_string_equal(p[1].etag, "def");
    free(p);
    static const char *const bad[] = {
        "<CompleteMultipartUpload></CompleteMultipartUpload>",
        "<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>a</ETag></Part>"
        "</CompleteMultipartUpload>",
        "<CompleteMultipartUpload><Part><PartNumber>1x</PartNumber><ETag>a</ETag></Part>"
        "</CompleteMultipartUpload>",
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part>"
        "</CompleteMultipartUpload>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(s3_xml_parse_complete(bad[i], strlen(bad[i]), &p, &n), -EINVAL);
    char loc[32];
    static const char cb[] = "<CreateBucketConfiguration><LocationConstraint>eu-west-1"
                             "</LocationConstraint></CreateBucketConfiguration>";
    assert_int_equal(s3_xml_parse_create_bucket(cb, sizeof(cb) - 1, loc, sizeof(loc)), 0);
    assert_string_equal(loc, "eu-west-1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_signatures), cmocka_unit_test(test_presigned),
        cmocka_unit_test(test_chunked_slicing),  cmocka_unit_test(test_chunked_malformed),
        cmocka_unit_test(test_xml_delete),       cmocka_unit_test(test_xml_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
