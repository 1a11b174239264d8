/*
 * test_http_stream: what streamed answers are made of (src/services/http/):
 * the AWS event stream encoder (eventstream.c: framing, CRCs, header
 * encoding, limits, a known vector) and the http-integration-response
 * prelude splitter (stream_prelude.c: fed whole or byte by byte, status,
 * headers and cookies, defaults, malformed preludes).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "core/buf.h"
#include "services/http/eventstream.h"
#include "services/http/payload.h"
#include "services/http/stream_prelude.h"

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*=== eventstream ===*/

static void test_empty_message_vector(void **state)
{
    (void)state;
    /* the empty message of AWS's event stream test vectors */
    static const unsigned char want[] = {0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00,
                                         0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff};
    struct buf b = BUF_INIT;
    assert_int_equal(eventstream_message(&b, NULL, 0, NULL, 0), 0);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    buf_release(&b);
}

/* Decodes the message at p (len bytes available): checks lengths and CRCs,
 * returns the header value named name (copied into value) and the payload. */
static size_t decode(const unsigned char *p, size_t len, const char *name, char *value,
                     const unsigned char **payload, size_t *plen)
{
    assert_true(len >= 16);
    uint32_t total = be32(p), hlen = be32(p + 4);
    assert_true(total <= len);
    assert_int_equal(be32(p + 8), (uint32_t)crc32(0L, p, 8));
    assert_int_equal(be32(p + total - 4), (uint32_t)crc32(0L, p, total - 4));
    const unsigned char *h = p + 12, *end = h + hlen;
    value[0] = '\0';
    while (h < end) {
        size_t n = *h++;
        const char *hn = (const char *)h;
        h += n;
        assert_int_equal(*h++, 7);
        size_t v = (size_t)h[0] << 8 | h[1];
        h += 2;
        if (strlen(name) == n && memcmp(hn, name, n) == 0) {
            memcpy(value, h, v);
            value[v] = '\0';
        }
        h += v;
    }
    assert_ptr_equal(h, end);
    *payload = end;
    *plen = total - 16 - hlen;
    return total;
}

static void test_events_in_a_row(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    assert_int_equal(
        eventstream_event(&b, "PayloadChunk", "application/octet-stream", "hello\0x", 7), 0);
    assert_int_equal(eventstream_event(&b, "InvokeComplete", "application/json", "{}", 2), 0);
    const unsigned char *p = (const unsigned char *)b.data, *payload;
    size_t plen;
    char v[256];
    size_t used = decode(p, b.len, ":event-type", v, &payload, &plen);
    assert_string_equal(v, "PayloadChunk");
    assert_int_equal(plen, 7);
    assert_memory_equal(payload, "hello\0x", 7);
    decode(p, b.len, ":message-type", v, &payload, &plen);
    assert_string_equal(v, "event");
    decode(p, b.len, ":content-type", v, &payload, &plen);
    assert_string_equal(v, "application/octet-stream");
    size_t used2 = decode(p + used, b.len - used, ":event-type", v, &payload, &plen);
    assert_string_equal(v, "InvokeComplete");
    assert_int_equal(plen, 2);
    assert_int_equal(used + used2, b.len);
    buf_release(&b);
}

static void test_limits(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    char name[300];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    struct eventstream_header h = {name, "v"};
    assert_int_equal(eventstream_message(&b, &h, 1, "x", 1), -EINVAL);
    h.name = "";
    assert_int_equal(eventstream_message(&b, &h, 1, "x", 1), -EINVAL);
    assert_int_equal(eventstream_message(&b, NULL, 0, "x", EVENTSTREAM_MAX_PAYLOAD + 1), -EINVAL);
    assert_int_equal(b.len, 0);
    /* a capped buffer is left as it was */
    struct buf c;
    buf_init(&c, 20);
    assert_int_equal(eventstream_event(&c, "PayloadChunk", NULL, "x", 1), -EMSGSIZE);
    assert_int_equal(c.len, 0);
    buf_release(&c);
    buf_release(&b);
}

/*=== stream_prelude ===*/

static const char PRELUDE[] =
    "{\"statusCode\":201,\"headers\":{\"X-Hi\":\"there\",\"content-type\":"
    "\"text/plain\"},\"cookies\":[\"a=1\",\"b=2\"]}";

static void check_prelude_response(struct http_prelude *p)
{
    struct http_payload_response r;
    http_payload_response_init(&r);
    assert_int_equal(http_prelude_response(p, &r), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(http_payload_response_get(&r, "x-hi"), "there");
    assert_string_equal(http_payload_response_get(&r, "Content-Type"), "text/plain");
    int cookies = 0;
    for (size_t i = 0; i < r.nheaders; i++)
        cookies += strcmp(r.names[i], "Set-Cookie") == 0;
    assert_int_equal(cookies, 2);
    assert_int_equal(r.body.len, 0);
    http_payload_response_release(&r);
}

static void test_prelude_whole(void **state)
{
    (void)state;
    struct buf s = BUF_INIT;
    buf_puts(&s, PRELUDE);
    buf_append(&s, "\0\0\0\0\0\0\0\0body", 12);
    struct http_prelude p;
    http_prelude_init(&p);
    size_t used;
    assert_int_equal(http_prelude_feed(&p, s.data, s.len, &used), HTTP_PRELUDE_DONE);
    assert_int_equal(s.len - used, 4);
    assert_memory_equal(s.data + used, "body", 4);
    check_prelude_response(&p);
    http_prelude_release(&p);
    buf_release(&s);
}

static void test_prelude_byte_by_byte(void **state)
{
    (void)state;
    struct buf s = BUF_INIT;
    buf_puts(&s, PRELUDE);
    buf_append(&s, "\0\0\0\0\0\0\0\0", 8);
    struct http_prelude p;
    http_prelude_init(&p);
    size_t used;
    for (size_t i = 0; i + 1 < s.len; i++) {
        assert_int_equal(http_prelude_feed(&p, s.data + i, 1, &used), HTTP_PRELUDE_MORE);
        assert_int_equal(used, 1);
    }
    assert_int_equal(http_prelude_feed(&p, s.data + s.len - 1, 1, &used), HTTP_PRELUDE_DONE);
    check_prelude_response(&p);
    http_prelude_release(&p);
    buf_release(&s);
}

static void test_prelude_defaults(void **state)
{
    (void)state;
    struct http_prelude p;
    http_prelude_init(&p);
    size_t used;
    assert_int_equal(http_prelude_feed(&p, "{}\0\0\0\0\0\0\0\0", 10, &used), HTTP_PRELUDE_DONE);
    struct http_payload_response r;
    http_payload_response_init(&r);
    assert_int_equal(http_prelude_response(&p, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(http_payload_response_get(&r, "Content-Type"), "application/octet-stream");
    http_payload_response_release(&r);
    http_prelude_release(&p);
}

static void test_prelude_bad(void **state)
{
    (void)state;
    struct http_prelude p;
    size_t used;
    /* a short delimiter */
    http_prelude_init(&p);
    assert_int_equal(http_prelude_feed(&p, "{}\0\0\0x", 6, &used), HTTP_PRELUDE_BAD);
    http_prelude_release(&p);
    /* not JSON, or not an object, or a bad status */
    static const char *const bad[] = {"nope", "[1]", "{\"statusCode\":\"x\"}",
                                      "{\"statusCode\":42}", "{\"headers\":{\"a\":\"x\\ny\"}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        http_prelude_init(&p);
        struct buf s = BUF_INIT;
        buf_puts(&s, bad[i]);
        buf_append(&s, "\0\0\0\0\0\0\0\0", 8);
        assert_int_equal(http_prelude_feed(&p, s.data, s.len, &used), HTTP_PRELUDE_DONE);
        struct http_payload_response r;
        http_payload_response_init(&r);
        assert_int_equal(http_prelude_response(&p, &r), -1);
        http_payload_response_release(&r);
        http_prelude_release(&p);
        buf_release(&s);
    }
    /* too long */
    http_prelude_init(&p);
    char *big = malloc(HTTP_PRELUDE_MAX + 10);
    memset(big, ' ', HTTP_PRELUDE_MAX + 10);
    assert_int_equal(http_prelude_feed(&p, big, HTTP_PRELUDE_MAX + 10, &used), HTTP_PRELUDE_BAD);
    free(big);
    http_prelude_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_message_vector),
        cmocka_unit_test(test_events_in_a_row),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_prelude_whole),
        cmocka_unit_test(test_prelude_byte_by_byte),
        cmocka_unit_test(test_prelude_defaults),
        cmocka_unit_test(test_prelude_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
