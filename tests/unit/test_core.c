/*
 * test_core: the core building blocks under src/core/: buf (caps, printf growth, consume,
 * detach), util (base64, percent-decoding, uuid, AWS timestamps, SHA-256, prefix/suffix),
 * config (listen specs, environment defaults, root credentials), loop (timer order, cancel,
 * fd callbacks, cross-thread posts, before-sleep hooks) and workq (work on workers, done on
 * the loop thread). Every loop test arms a watchdog timer so a broken loop fails instead of
 * hanging.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/loop.h"
#include "core/util.h"
#include "core/workq.h"

/*=== helpers ===*/

static void rm_rf(const char *path)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static void make_tmpdir(char *out, size_t size)
{
    snprintf(out, size, "/tmp/test_core.XXXXXX");
    assert_non_null(mkdtemp(out));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/*=== buf ===*/

static void test_buf_zero_is_empty(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    assert_int_equal(b.len, 0);
    buf_release(&b);
    assert_null(b.data);
    buf_release(&b); /* twice is harmless */
}

/* buf_grow may allocate, but a buffer's data is a NUL-terminated string whenever non-NULL. */
static void test_buf_grow_keeps_string(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    assert_int_equal(buf_grow(&b, 100), 0);
    assert_non_null(b.data);
    assert_true(b.alloc >= 101);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.data[0], '\0');
    buf_release(&b);
}

static void test_buf_append_grows(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    char expect[5001];
    for (int i = 0; i < 5000; i++) {
        char c = (char)('a' + i % 26);
        expect[i] = c;
        assert_int_equal(buf_putc(&b, c), 0);
        assert_int_equal(b.len, (size_t)i + 1);
        assert_true(b.alloc >= b.len + 1);
        assert_int_equal(b.data[b.len], '\0');
    }
    expect[5000] = '\0';
    assert_string_equal(b.data, expect);
    assert_int_equal(buf_puts(&b, "!"), 0);
    assert_int_equal(b.len, 5001);
    assert_int_equal(memcmp(b.data, expect, 5000), 0);
    assert_int_equal(b.data[5000], '!');
    /* binary data with NULs */
    buf_reset(&b);
    assert_int_equal(buf_append(&b, "a\0b", 3), 0);
    assert_int_equal(b.len, 3);
    assert_int_equal(memcmp(b.data, "a\0b\0", 4), 0);
    buf_release(&b);
}

static void test_buf_cap(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_puts(&b, "hello"), 0);
    assert_int_equal(buf_puts(&b, "world"), 0); /* exactly at the cap */
    assert_int_equal(b.len, 10);
    size_t alloc = b.alloc;
    char *data = b.data;

    assert_int_equal(buf_putc(&b, '!'), -EMSGSIZE);
    assert_int_equal(buf_puts(&b, "more"), -EMSGSIZE);
    assert_int_equal(buf_append(&b, "x", 1), -EMSGSIZE);
    assert_int_equal(buf_append(&b, "x", SIZE_MAX), -EMSGSIZE); /* no overflow */
    assert_int_equal(buf_printf(&b, "%d", 7), -EMSGSIZE);
    assert_int_equal(buf_grow(&b, 1), -EMSGSIZE);
    assert_int_equal(b.len, 10);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.alloc, alloc);
    assert_string_equal(b.data, "helloworld");

    /* an empty append still fits; consuming makes room again */
    assert_int_equal(buf_append(&b, "", 0), 0);
    buf_consume(&b, 5);
    assert_int_equal(buf_puts(&b, "12345"), 0);
    assert_string_equal(b.data, "world12345");
    assert_int_equal(buf_putc(&b, 'x'), -EMSGSIZE);
    buf_release(&b);

    /* one append bigger than the whole cap, on an empty buffer */
    buf_init(&b, 4);
    assert_int_equal(buf_puts(&b, "abcde"), -EMSGSIZE);
    assert_int_equal(b.len, 0);
    assert_true(b.data == NULL || b.data[0] == '\0');
    assert_int_equal(buf_printf(&b, "%s", "abcde"), -EMSGSIZE);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_printf(&b, "%s", "abcd"), 0);
    assert_string_equal(b.data, "abcd");
    buf_release(&b);
}

static void test_buf_printf_growth(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    assert_int_equal(buf_printf(&b, "%s-%d", "x", 42), 0);
    assert_string_equal(b.data, "x-42");
    assert_int_equal(b.len, 4);

    char big[10001];
    memset(big, 'q', 10000);
    big[10000] = '\0';
    assert_int_equal(buf_printf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, 4 + 10002);
    assert_int_equal(strlen(b.data), b.len);
    assert_int_equal(b.data[4], '[');
    assert_int_equal(b.data[b.len - 1], ']');

    /* many small appends match one snprintf of the same text */
    struct buf c = BUF_INIT;
    char ref[8192];
    size_t off = 0;
    for (int i = 0; i < 500; i++) {
        assert_int_equal(buf_printf(&c, "%d,", i * 7919), 0);
        off += (size_t)snprintf(ref + off, sizeof(ref) - off, "%d,", i * 7919);
    }
    assert_int_equal(c.len, off);
    assert_string_equal(c.data, ref);

    /* printf of nothing is a no-op that leaves a valid string */
    struct buf d = BUF_INIT;
    assert_int_equal(buf_printf(&d, "%s", ""), 0);
    assert_int_equal(d.len, 0);
    assert_string_equal(d.data, "");

    buf_release(&b);
    buf_release(&c);
    buf_release(&d);
}

static void test_buf_consume(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    buf_consume(&b, 0); /* on a never-used buffer */
    buf_consume(&b, 10);
    assert_int_equal(b.len, 0);

    assert_int_equal(buf_puts(&b, "hello world"), 0);
    buf_consume(&b, 0);
    assert_string_equal(b.data, "hello world");
    buf_consume(&b, 6);
    assert_string_equal(b.data, "world");
    assert_int_equal(b.len, 5);
    buf_consume(&b, 4);
    assert_string_equal(b.data, "d");
    buf_consume(&b, 1);
    assert_string_equal(b.data, "");
    assert_int_equal(b.len, 0);

    assert_int_equal(buf_puts(&b, "abc"), 0);
    buf_consume(&b, 1000);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(buf_puts(&b, "xyz"), 0);
    assert_string_equal(b.data, "xyz");
    buf_release(&b);
}

static void test_buf_reset_keeps_memory(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    assert_int_equal(buf_puts(&b, "some text"), 0);
    size_t alloc = b.alloc;
    char *data = b.data;
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.alloc, alloc);
    assert_ptr_equal(b.data, data);
    assert_string_equal(b.data, "");
    buf_release(&b);
    struct buf z = BUF_INIT;
    buf_reset(&z); /* NULL data */
    assert_null(z.data);
}

static void test_buf_detach(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 100);
    assert_int_equal(buf_puts(&b, "payload"), 0);
    size_t len = 0;
    char *p = buf_detach(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 7);
    assert_string_equal(p, "payload");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.alloc, 0);
    assert_int_equal(b.cap, 100); /* the cap survives; the buffer is reusable */
    assert_int_equal(buf_puts(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    assert_ptr_not_equal(b.data, p);
    free(p);
    buf_release(&b);

    /* detaching an empty buffer gives an empty string, not NULL */
    struct buf e = BUF_INIT;
    len = 99;
    p = buf_detach(&e, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);
    assert_int_equal(p[0], '\0'); /* checked bytewise: p may be unterminated */
    free(p);
    /* len may be NULL */
    assert_int_equal(buf_puts(&e, "x"), 0);
    p = buf_detach(&e, NULL);
    assert_string_equal(p, "x");
    free(p);
}

/*=== util: base64 ===*/

static void b64_roundtrip(const unsigned char *in, size_t n)
{
    struct buf enc = BUF_INIT, dec = BUF_INIT;
    assert_int_equal(base64_encode(&enc, in, n), 0);
    assert_int_equal(enc.len, 4 * ((n + 2) / 3));
    assert_int_equal(strlen(enc.data), enc.len);
    for (size_t i = 0; i < enc.len; i++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
                               enc.data[i]));
    assert_int_equal(base64_decode(&dec, enc.data, enc.len), 0);
    assert_int_equal(dec.len, n);
    if (n)
        assert_memory_equal(dec.data, in, n);
    else
        assert_true(dec.data == NULL || dec.data[0] == '\0');
    buf_release(&enc);
    buf_release(&dec);
}

static void test_base64_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10 */
    static const char *const vec[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        struct buf enc = BUF_INIT, dec = BUF_INIT;
        assert_int_equal(base64_encode(&enc, vec[i][0], strlen(vec[i][0])), 0);
        assert_string_equal(enc.data, vec[i][1]);
        assert_int_equal(base64_decode(&dec, vec[i][1], strlen(vec[i][1])), 0);
        assert_int_equal(dec.len, strlen(vec[i][0]));
        if (dec.len)
            assert_string_equal(dec.data, vec[i][0]);
        buf_release(&enc);
        buf_release(&dec);
    }
    /* every byte value, and the alphabet's last two characters */
    struct buf dec = BUF_INIT;
    assert_int_equal(base64_decode(&dec, "+/+/", 4), 0);
    assert_int_equal(dec.len, 3);
    assert_memory_equal(dec.data, "\xfb\xff\xbf", 3);
    buf_release(&dec);
}

static void test_base64_roundtrip_lengths(void **state)
{
    (void)state;
    unsigned char data[71];
    for (size_t n = 0; n <= 70; n++) {
        for (size_t i = 0; i < n; i++)
            data[i] = (unsigned char)(i * 37 + n * 11); /* includes 0x00 and 0xff */
        b64_roundtrip(data, n);
    }
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    b64_roundtrip(all, sizeof(all));
    unsigned char rnd[70];
    for (int round = 0; round < 20; round++) {
        random_bytes(rnd, sizeof(rnd));
        b64_roundtrip(rnd, (size_t)round * 3 + 1);
    }
}

static void test_base64_appends(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    assert_int_equal(buf_puts(&b, "pre:"), 0);
    assert_int_equal(base64_encode(&b, "foo", 3), 0);
    assert_string_equal(b.data, "pre:Zm9v");
    assert_int_equal(base64_decode(&b, "YmFy", 4), 0);
    assert_string_equal(b.data, "pre:Zm9vbar");
    assert_int_equal(b.len, 11);
    buf_release(&b);
}

static void test_base64_trailing_whitespace(void **state)
{
    (void)state;
    static const char *const ok[] = {"Zm9v\n", "Zm9v\r\n", "Zm9v  ", "Zm9v \r\n \n"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct buf b = BUF_INIT;
        assert_int_equal(base64_decode(&b, ok[i], strlen(ok[i])), 0);
        assert_string_equal(b.data, "foo");
        buf_release(&b);
    }
    /* only whitespace: nothing */
    struct buf b = BUF_INIT;
    assert_int_equal(base64_decode(&b, "\r\n", 2), 0);
    assert_int_equal(b.len, 0);
    buf_release(&b);
}

static void test_base64_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Z",     "Zm",       "Zm9",    "Zm9vY", "Zm9v!",   "Zm$v",    "Zm-v",
        "Zm_v",  "Zm\t9",    "Zm 9",   "Zg=",   "Zm9vYg=", "Zm\x80v", "\xff\xff\xff\xff",
        "Zm9v*", "Zm9vYg=!", "Zm9\nv",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct buf b = BUF_INIT;
        int rc = base64_decode(&b, bad[i], strlen(bad[i]));
        if (rc != -EINVAL)
            print_error("base64_decode(\"%s\") = %d\n", bad[i], rc);
        assert_int_equal(rc, -EINVAL);
        assert_int_equal(b.len, 0);
        assert_true(b.data == NULL || b.data[0] == '\0');
        buf_release(&b);
    }
}

/* '=' is padding, allowed only as the last one or two characters of the input. */
static void test_base64_misplaced_padding(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "====", "A===", "=AAA", "AB=C", "Zg==Zg==", "Zm9v====", "Z=9v",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct buf b = BUF_INIT;
        int rc = base64_decode(&b, bad[i], strlen(bad[i]));
        if (rc != -EINVAL)
            print_error("base64_decode(\"%s\") = %d, %zu bytes\n", bad[i], rc, b.len);
        assert_int_equal(rc, -EINVAL);
        buf_release(&b);
    }
}

/* A failed decode leaves the buffer as it was: same length, still NUL-terminated. */
static void test_base64_invalid_leaves_buffer(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    assert_int_equal(buf_puts(&b, "xy"), 0);
    assert_int_equal(base64_decode(&b, "Zm9v!!!!", 8), -EINVAL);
    assert_int_equal(b.len, 2);
    assert_int_equal(b.data[2], '\0');
    assert_string_equal(b.data, "xy");
    buf_release(&b);
}

/* The cap limits the decoded size, not 3/4 of the encoded size. */
static void test_base64_decode_cap(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 2);
    assert_int_equal(base64_decode(&b, "Zm9v", 4), -EMSGSIZE); /* 3 bytes > 2 */
    assert_int_equal(b.len, 0);
    buf_release(&b);

    buf_init(&b, 1);
    assert_int_equal(base64_decode(&b, "Zg==", 4), 0); /* 1 byte fits a cap of 1 */
    assert_int_equal(b.len, 1);
    assert_string_equal(b.data, "f");
    buf_release(&b);

    buf_init(&b, 4);
    assert_int_equal(base64_encode(&b, "foo", 3), 0); /* exactly 4 */
    assert_int_equal(base64_encode(&b, "", 0), 0);
    assert_int_equal(base64_encode(&b, "f", 1), -EMSGSIZE);
    assert_string_equal(b.data, "Zm9v");
    buf_release(&b);
}

/*=== util: percent_decode ===*/

static long pd(char *s)
{
    return percent_decode(s, strlen(s));
}

static void test_percent_decode(void **state)
{
    (void)state;
    char s[64];
    strcpy(s, "a%20b");
    assert_int_equal(pd(s), 3);
    assert_string_equal(s, "a b");
    strcpy(s, "%41%42%43");
    assert_int_equal(pd(s), 3);
    assert_string_equal(s, "ABC");
    strcpy(s, "%4a%4A%4b");
    assert_int_equal(pd(s), 3);
    assert_string_equal(s, "JJK");
    strcpy(s, "a+b");
    assert_int_equal(pd(s), 3);
    assert_string_equal(s, "a+b");
    strcpy(s, "plain");
    assert_int_equal(pd(s), 5);
    assert_string_equal(s, "plain");
    strcpy(s, "arn%3Aaws%3Alambda");
    assert_int_equal(pd(s), 14);
    assert_string_equal(s, "arn:aws:lambda");
    strcpy(s, "%25");
    assert_int_equal(pd(s), 1);
    assert_string_equal(s, "%");
    strcpy(s, "%2541"); /* decoded once only */
    assert_int_equal(pd(s), 3);
    assert_string_equal(s, "%41");
    strcpy(s, "%ff%00x");
    assert_int_equal(pd(s), 3);
    assert_memory_equal(s, "\xff\0x", 3);
    strcpy(s, "");
    assert_int_equal(pd(s), 0);
    assert_string_equal(s, "");

    /* only the first n bytes are decoded */
    strcpy(s, "%41%42");
    assert_int_equal(percent_decode(s, 3), 1);
    assert_string_equal(s, "A");
}

static void test_percent_decode_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {"%",   "%4",   "%zz", "%g0",  "%0g",     "abc%",
                                      "a%4", "%%41", "%-1", "% 41", "ok%2x%41"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[32];
        strcpy(s, bad[i]);
        long rc = pd(s);
        if (rc != -EINVAL)
            print_error("percent_decode(\"%s\") = %ld\n", bad[i], rc);
        assert_int_equal(rc, -EINVAL);
    }
    /* a trailing escape inside n but cut off by n is malformed too */
    char s[16];
    strcpy(s, "%41");
    assert_int_equal(percent_decode(s, 2), -EINVAL);
}

/*=== util: misc ===*/

static void test_uuid_v4(void **state)
{
    (void)state;
    char seen[64][37];
    for (int k = 0; k < 64; k++) {
        char u[37];
        memset(u, 'Z', sizeof(u));
        uuid_v4(u);
        assert_int_equal(strlen(u), 36);
        for (int i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23)
                assert_int_equal(u[i], '-');
            else
                assert_non_null(strchr("0123456789abcdef", u[i]));
        }
        assert_int_equal(u[14], '4');           /* version 4 */
        assert_non_null(strchr("89ab", u[19])); /* RFC 4122 variant */
        for (int j = 0; j < k; j++)
            assert_string_not_equal(seen[j], u);
        memcpy(seen[k], u, 37);
    }
}

static void test_hex_and_sha256(void **state)
{
    (void)state;
    char hex[65];
    hex_encode((const unsigned char *)"\x00\xff\x1a\xa1", 4, hex);
    assert_string_equal(hex, "00ff1aa1");
    hex_encode((const unsigned char *)"", 0, hex);
    assert_string_equal(hex, "");

    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(two, strlen(two), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    unsigned char md[32];
    sha256("abc", 3, md);
    assert_int_equal(md[0], 0xba);
    assert_int_equal(md[31], 0xad);
}

static void test_format_lambda_time(void **state)
{
    (void)state;
    char out[32];
    format_lambda_time(1427803200000LL, out);
    assert_string_equal(out, "2015-03-31T12:00:00.000+0000");
    format_lambda_time(1427803200123LL, out);
    assert_string_equal(out, "2015-03-31T12:00:00.123+0000");
    format_lambda_time(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000+0000");
    format_lambda_time(1709251199999LL, out); /* leap day, last ms */
    assert_string_equal(out, "2024-02-29T23:59:59.999+0000");
    format_lambda_time(253402300799999LL, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999+0000");
}

static void test_format_iso8601_ms(void **state)
{
    (void)state;
    char out[32];
    format_iso8601_ms(1704067200000LL, out);
    assert_string_equal(out, "2024-01-01T00:00:00.000Z");
    format_iso8601_ms(1704067200001LL, out);
    assert_string_equal(out, "2024-01-01T00:00:00.001Z");
    format_iso8601_ms(1427803200999LL, out);
    assert_string_equal(out, "2015-03-31T12:00:00.999Z");
    format_iso8601_ms(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
}

/* Before the epoch the millisecond field must still be 0..999 of the right second. */
static void test_format_times_before_epoch(void **state)
{
    (void)state;
    char out[32];
    format_lambda_time(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999+0000");
    format_iso8601_ms(-1500, out);
    assert_string_equal(out, "1969-12-31T23:59:58.500Z");
}

static void test_prefix_suffix(void **state)
{
    (void)state;
    assert_true(str_has_prefix("hello", "he"));
    assert_true(str_has_prefix("hello", "hello"));
    assert_true(str_has_prefix("hello", ""));
    assert_true(str_has_prefix("", ""));
    assert_false(str_has_prefix("he", "hello"));
    assert_false(str_has_prefix("hello", "hE"));
    assert_false(str_has_prefix("", "x"));
    assert_true(str_has_suffix("hello", "llo"));
    assert_true(str_has_suffix("hello", "hello"));
    assert_true(str_has_suffix("hello", ""));
    assert_true(str_has_suffix("", ""));
    assert_false(str_has_suffix("lo", "hello"));
    assert_false(str_has_suffix("hello", "lLo"));
    assert_false(str_has_suffix("abc", "abd"));
    assert_false(str_has_suffix("", "x"));
}

static void test_clocks_and_random(void **state)
{
    (void)state;
    assert_true(now_ms() > 1577836800000LL); /* after 2020 */
    int64_t a = mono_us();
    usleep(2000);
    int64_t b = mono_us();
    assert_true(b - a >= 2000);
    unsigned char r1[64], r2[64], zero[64] = {0};
    random_bytes(r1, sizeof(r1));
    random_bytes(r2, sizeof(r2));
    assert_memory_not_equal(r1, zero, sizeof(r1));
    assert_memory_not_equal(r1, r2, sizeof(r1));
}

/*=== config ===*/

static void test_config_set_listen(void **state)
{
    (void)state;
    struct config c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(config_set_listen(&c, "127.0.0.1:9070"), 0);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 9070);
    assert_int_equal(config_set_listen(&c, "0.0.0.0:0"), 0); /* 0 = pick a free port */
    assert_string_equal(c.listen_host, "0.0.0.0");
    assert_int_equal(c.listen_port, 0);
    assert_int_equal(config_set_listen(&c, "localhost:65535"), 0);
    assert_string_equal(c.listen_host, "localhost");
    assert_int_equal(c.listen_port, 65535);

    static const char *const bad[] = {
        "nocolon", ":80", "h:65536", "h:-1", "h:abc", "h:80x", "h:99999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = config_set_listen(&c, bad[i]);
        if (rc != -EINVAL)
            print_error("config_set_listen(\"%s\") = %d\n", bad[i], rc);
        assert_int_equal(rc, -EINVAL);
        /* a rejected spec changes nothing */
        assert_string_equal(c.listen_host, "localhost");
        assert_int_equal(c.listen_port, 65535);
    }

    /* the host must fit listen_host (255 characters) */
    char spec[400];
    memset(spec, 'h', 255);
    strcpy(spec + 255, ":1");
    assert_int_equal(config_set_listen(&c, spec), 0);
    assert_int_equal(strlen(c.listen_host), 255);
    memset(spec, 'h', 256);
    strcpy(spec + 256, ":1");
    assert_int_equal(config_set_listen(&c, spec), -EINVAL);
}

/* "HOST:" has no port: it must not silently mean port 0. */
static void test_config_set_listen_empty_port(void **state)
{
    (void)state;
    struct config c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(config_set_listen(&c, "127.0.0.1:"), -EINVAL);
}

/*
 * IPv6: "[::1]:9070" must give a host getaddrinfo() accepts ("::1", without the
 * brackets); a bare "::1" is ambiguous and must be rejected rather than read as
 * host ":" port 1.
 */
static void test_config_set_listen_ipv6(void **state)
{
    (void)state;
    struct config c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(config_set_listen(&c, "[::1]:9070"), 0);
    assert_string_equal(c.listen_host, "::1");
    assert_int_equal(c.listen_port, 9070);
    assert_int_equal(config_set_listen(&c, "[::]:0"), 0);
    assert_string_equal(c.listen_host, "::");
    assert_int_equal(c.listen_port, 0);
    assert_int_equal(config_set_listen(&c, "::1"), -EINVAL);
}

static void test_config_defaults_env(void **state)
{
    (void)state;
    setenv("IGNIS_LISTEN", "10.1.2.3:1234", 1);
    setenv("IGNIS_DATA_DIR", "/tmp/some/where", 1);
    setenv("IGNIS_REGION", "eu-west-1", 1);
    setenv("IGNIS_ACCOUNT_ID", "123456789012", 1);
    setenv("IGNIS_RUNTIME_DIR", "/opt/rt", 1);
    struct config c;
    config_defaults(&c);
    assert_string_equal(c.listen_host, "10.1.2.3");
    assert_int_equal(c.listen_port, 1234);
    assert_string_equal(c.data_dir, "/tmp/some/where");
    assert_string_equal(c.region, "eu-west-1");
    assert_string_equal(c.account_id, "123456789012");
    assert_string_equal(c.runtime_dir, "/opt/rt");

    /* an account id that is not 12 characters is ignored */
    setenv("IGNIS_ACCOUNT_ID", "12345", 1);
    unsetenv("IGNIS_LISTEN");
    unsetenv("IGNIS_DATA_DIR");
    unsetenv("IGNIS_REGION");
    setenv("HOME", "/home/tester", 1);
    config_defaults(&c);
    assert_string_equal(c.account_id, "000000000000");
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 9070);
    assert_string_equal(c.region, "us-east-1");
    assert_string_equal(c.data_dir, "/home/tester/.local/share/ignis");
    assert_int_equal(c.credentials_generated, 0);
    unsetenv("IGNIS_ACCOUNT_ID");
    unsetenv("IGNIS_RUNTIME_DIR");
}

static void cred_cfg(struct config *c, const char *dir)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->data_dir, sizeof(c->data_dir), "%s", dir);
}

static void test_credentials_generated_once(void **state)
{
    (void)state;
    unsetenv("IGNIS_ROOT_ACCESS_KEY_ID");
    unsetenv("IGNIS_ROOT_SECRET_ACCESS_KEY");
    char dir[64], path[128];
    make_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/credentials", dir);

    struct config a, b;
    cred_cfg(&a, dir);
    assert_int_equal(config_load_credentials(&a), 0);
    assert_int_equal(a.credentials_generated, 1);
    assert_int_equal(strlen(a.access_key), 20);
    assert_true(str_has_prefix(a.access_key, "AKIA"));
    for (const char *p = a.access_key; *p; p++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", *p));
    assert_int_equal(strlen(a.secret_key), 40);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);

    /* the file is an AWS shared-credentials profile */
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char text[512] = "", expect[512];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    snprintf(expect, sizeof(expect),
             "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", a.access_key,
             a.secret_key);
    assert_string_equal(text, expect);

    /* second start: read back, not regenerated */
    cred_cfg(&b, dir);
    assert_int_equal(config_load_credentials(&b), 0);
    assert_int_equal(b.credentials_generated, 0);
    assert_string_equal(b.access_key, a.access_key);
    assert_string_equal(b.secret_key, a.secret_key);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* two different data dirs get different keys */
    char dir2[64];
    make_tmpdir(dir2, sizeof(dir2));
    struct config c2;
    cred_cfg(&c2, dir2);
    assert_int_equal(config_load_credentials(&c2), 0);
    assert_string_not_equal(c2.access_key, a.access_key);
    assert_string_not_equal(c2.secret_key, a.secret_key);

    rm_rf(dir);
    rm_rf(dir2);
}

static void test_credentials_env_wins(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/credentials", dir);
    setenv("IGNIS_ROOT_ACCESS_KEY_ID", "AKIAENVENVENVENVENV1", 1);
    setenv("IGNIS_ROOT_SECRET_ACCESS_KEY", "env-secret", 1);

    /* no file is created when the environment has both */
    struct config c;
    cred_cfg(&c, dir);
    assert_int_equal(config_load_credentials(&c), 0);
    assert_string_equal(c.access_key, "AKIAENVENVENVENVENV1");
    assert_string_equal(c.secret_key, "env-secret");
    assert_int_equal(c.credentials_generated, 0);
    struct stat st;
    assert_int_equal(stat(path, &st), -1);
    assert_int_equal(errno, ENOENT);

    /* the environment beats an existing file */
    write_file(path, "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = file\n");
    cred_cfg(&c, dir);
    assert_int_equal(config_load_credentials(&c), 0);
    assert_string_equal(c.access_key, "AKIAENVENVENVENVENV1");
    assert_string_equal(c.secret_key, "env-secret");

    /* half an environment pair is not enough: the file is used */
    unsetenv("IGNIS_ROOT_SECRET_ACCESS_KEY");
    cred_cfg(&c, dir);
    assert_int_equal(config_load_credentials(&c), 0);
    assert_string_equal(c.access_key, "AKIAFILE");
    assert_string_equal(c.secret_key, "file");
    setenv("IGNIS_ROOT_SECRET_ACCESS_KEY", "", 1);
    cred_cfg(&c, dir);
    assert_int_equal(config_load_credentials(&c), 0);
    assert_string_equal(c.access_key, "AKIAFILE");

    unsetenv("IGNIS_ROOT_ACCESS_KEY_ID");
    unsetenv("IGNIS_ROOT_SECRET_ACCESS_KEY");
    rm_rf(dir);
}

static void test_credentials_corrupt(void **state)
{
    (void)state;
    unsetenv("IGNIS_ROOT_ACCESS_KEY_ID");
    unsetenv("IGNIS_ROOT_SECRET_ACCESS_KEY");
    char dir[64], path[128];
    make_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/credentials", dir);
    static const char *const corrupt[] = {
        "",
        "garbage\n",
        "[default]\naws_access_key_id = AKIAONLYKEY\n",
        "[default]\naws_secret_access_key = onlysecret\n",
        "aws_access_key_id=AKIA\naws_secret_access_key=nospaces\n",
    };
    for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++) {
        write_file(path, corrupt[i]);
        struct config c;
        cred_cfg(&c, dir);
        assert_int_equal(config_load_credentials(&c), -EINVAL);
        /* not silently replaced by new keys */
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char text[256] = "";
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        text[n] = '\0';
        fclose(f);
        assert_string_equal(text, corrupt[i]);
    }
    /* a data dir that does not exist is an error, not a crash */
    struct config c;
    cred_cfg(&c, "/nonexistent/ignis-test-dir");
    assert_true(config_load_credentials(&c) < 0);
    rm_rf(dir);
}

static void test_mkdir_p(void **state)
{
    (void)state;
    char dir[64], path[160];
    make_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/a/b/c", dir);
    assert_int_equal(mkdir_p(path, 0755), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(mkdir_p(path, 0755), 0); /* already there */

    /* a regular file in the way is an error */
    snprintf(path, sizeof(path), "%s/file", dir);
    write_file(path, "x");
    assert_true(mkdir_p(path, 0755) < 0);
    snprintf(path, sizeof(path), "%s/file/sub", dir);
    assert_true(mkdir_p(path, 0755) < 0);
    rm_rf(dir);
}

/*=== loop ===*/

struct rec {
    int order[256];
    int n;
    int expect;      /* stop the loop after this many */
    int watchdog;    /* set when the watchdog fired */
    pthread_t owner; /* the loop thread */
    int wrong_thread;
};

struct tick {
    struct rec *r;
    int id;
    int64_t due_us;
    int early;
};

static void on_watchdog(struct loop *loop, void *arg)
{
    struct rec *r = arg;
    r->watchdog = 1;
    loop_stop(loop);
}

static void record(struct loop *loop, struct rec *r, int id)
{
    if (!pthread_equal(pthread_self(), r->owner))
        r->wrong_thread = 1;
    if (r->n < 256)
        r->order[r->n] = id;
    r->n++;
    if (r->n == r->expect)
        loop_stop(loop);
}

static void on_tick(struct loop *loop, void *arg)
{
    struct tick *t = arg;
    if (mono_us() < t->due_us)
        t->early = 1;
    record(loop, t->r, t->id);
}

static void run_with_watchdog(struct loop *loop, struct rec *r, int64_t ms)
{
    struct loop_timer *wd = loop_timer_add(loop, ms, on_watchdog, r);
    assert_non_null(wd);
    loop_run(loop);
    assert_false(r->watchdog);
    loop_timer_cancel(loop, wd);
}

static void test_loop_timers_in_due_order(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    assert_non_null(loop);
    struct rec r = {.owner = pthread_self()};
    /* 100 timers (beyond the heap's first 64 slots), delays shuffled, 2 ms apart */
    enum { N = 100 };
    static struct tick ticks[N];
    int delay[N];
    for (int i = 0; i < N; i++)
        delay[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int j = (int)((unsigned)(i * 7919 + 13) % (unsigned)(i + 1));
        int t = delay[i];
        delay[i] = delay[j];
        delay[j] = t;
    }
    for (int i = 0; i < N; i++) {
        ticks[i] = (struct tick){.r = &r, .id = delay[i], .due_us = mono_us() + delay[i] * 2000};
        assert_non_null(loop_timer_add(loop, delay[i] * 2, on_tick, &ticks[i]));
    }
    r.expect = N;
    run_with_watchdog(loop, &r, 5000);
    assert_int_equal(r.n, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(r.order[i], i);
    for (int i = 0; i < N; i++)
        assert_false(ticks[i].early);
    assert_false(r.wrong_thread);
    loop_free(loop);
}

static void test_loop_equal_delays_fifo(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    assert_non_null(loop);
    struct rec r = {.owner = pthread_self(), .expect = 20};
    struct tick ticks[20];
    for (int i = 0; i < 20; i++) {
        ticks[i] = (struct tick){.r = &r, .id = i, .due_us = mono_us() + 5000};
        assert_non_null(loop_timer_add(loop, 5, on_tick, &ticks[i]));
    }
    run_with_watchdog(loop, &r, 2000);
    for (int i = 0; i < 20; i++)
        assert_int_equal(r.order[i], i);
    loop_free(loop);
}

struct canceller {
    struct rec *r;
    struct loop_timer *victim;
};

static void on_cancel_other(struct loop *loop, void *arg)
{
    struct canceller *c = arg;
    loop_timer_cancel(loop, c->victim);
    record(loop, c->r, 100);
}

static void test_loop_timer_cancel(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    assert_non_null(loop);
    struct rec r = {.owner = pthread_self()};
    enum { N = 90 };
    struct tick ticks[N];
    struct loop_timer *handles[N];
    for (int i = 0; i < N; i++) {
        ticks[i] = (struct tick){.r = &r, .id = i, .due_us = mono_us() + (N - i) * 1000};
        handles[i] = loop_timer_add(loop, N - i, on_tick, &ticks[i]);
        assert_non_null(handles[i]);
    }
    /* cancel every third one, from the middle of the heap as well as the ends */
    int left = 0;
    for (int i = 0; i < N; i++) {
        if (i % 3 == 1)
            loop_timer_cancel(loop, handles[i]);
        else
            left++;
    }
    loop_timer_cancel(loop, NULL); /* harmless */

    /* a timer cancelled from inside another timer's callback never fires */
    struct tick late = {.r = &r, .id = 200, .due_us = 0};
    struct canceller c = {.r = &r, .victim = loop_timer_add(loop, N + 5, on_tick, &late)};
    assert_non_null(loop_timer_add(loop, N + 2, on_cancel_other, &c));
    struct tick last = {.r = &r, .id = 300, .due_us = 0};
    assert_non_null(loop_timer_add(loop, N + 20, on_tick, &last));

    r.expect = left + 2;
    run_with_watchdog(loop, &r, 5000);
    assert_int_equal(r.n, left + 2);
    int k = 0;
    for (int i = N - 1; i >= 0; i--) /* larger i = shorter delay */
        if (i % 3 != 1)
            assert_int_equal(r.order[k++], i);
    assert_int_equal(r.order[k++], 100);
    assert_int_equal(r.order[k++], 300);
    loop_free(loop);
}

/* Timers still pending when the loop is freed are freed with it (ASan checks). */
static void test_loop_free_with_pending(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    assert_non_null(loop);
    struct rec r = {0};
    for (int i = 0; i < 10; i++)
        assert_non_null(loop_timer_add(loop, 100000, on_watchdog, &r));
    loop_free(loop);
    loop_free(NULL);
}

struct fdrec {
    struct rec *r;
    int reads;
    char got[16];
    uint32_t last_events;
};

static void on_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
    struct fdrec *f = arg;
    f->last_events = events;
    ssize_t n = read(fd, f->got, sizeof(f->got) - 1);
    if (n > 0)
        f->got[n] = '\0';
    f->reads++;
    record(loop, f->r, fd);
}

static void write_later(struct loop *loop, void *arg)
{
    (void)loop;
    int *fd = arg;
    assert_int_equal(write(*fd, "ping", 4), 4);
}

static void test_loop_fd_callbacks(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    assert_non_null(loop);
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct rec r = {.owner = pthread_self(), .expect = 1};
    struct fdrec f = {.r = &r};
    assert_int_equal(loop_add_fd(loop, p[0], EPOLLIN, on_readable, &f), 0);
    assert_int_equal(loop_add_fd(loop, p[0], EPOLLIN, on_readable, &f), -EEXIST);
    assert_non_null(loop_timer_add(loop, 5, write_later, &p[1]));
    run_with_watchdog(loop, &r, 2000);
    assert_int_equal(f.reads, 1);
    assert_string_equal(f.got, "ping");
    assert_true(f.last_events & EPOLLIN);
    assert_int_equal(r.order[0], p[0]);

    /* after loop_del_fd the callback is not called any more */
    loop_del_fd(loop, p[0]);
    loop_del_fd(loop, p[0]); /* twice is harmless */
    loop_del_fd(loop, -1);
    loop_del_fd(loop, 1 << 20);
    assert_int_equal(write(p[1], "x", 1), 1);
    struct rec r2 = {.owner = pthread_self()};
    struct tick stop = {.r = &r2, .id = 1, .due_us = 0};
    r2.expect = 1;
    assert_non_null(loop_timer_add(loop, 20, on_tick, &stop));
    run_with_watchdog(loop, &r2, 2000);
    assert_int_equal(f.reads, 1);
    close(p[0]);
    close(p[1]);
    loop_free(loop);
}

static void on_writable_then_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
    struct fdrec *f = arg;
    f->last_events = events;
    if (events & EPOLLOUT) {
        assert_int_equal(loop_mod_fd(loop, fd, EPOLLIN), 0);
        record(loop, f->r, 1);
        return;
    }
    if (events & EPOLLIN) {
        ssize_t n = read(fd, f->got, sizeof(f->got) - 1);
        if (n > 0)
            f->got[n] = '\0';
        record(loop, f->r, 2);
    }
}

static void test_loop_mod_fd_and_high_fd(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    assert_non_null(loop);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* a descriptor number far beyond the initial table */
    int hi = fcntl(sv[0], F_DUPFD_CLOEXEC, 700);
    assert_true(hi >= 700);
    struct rec r = {.owner = pthread_self(), .expect = 2};
    struct fdrec f = {.r = &r};
    assert_int_equal(loop_add_fd(loop, hi, EPOLLOUT, on_writable_then_readable, &f), 0);
    assert_non_null(loop_timer_add(loop, 10, write_later, &sv[1]));
    run_with_watchdog(loop, &r, 2000);
    assert_int_equal(r.order[0], 1);
    assert_int_equal(r.order[1], 2);
    assert_string_equal(f.got, "ping");
    assert_int_equal(loop_mod_fd(loop, 12345, EPOLLIN), -EBADF);
    loop_del_fd(loop, hi);
    close(hi);
    close(sv[0]);
    close(sv[1]);
    loop_free(loop);
}

struct poster {
    struct loop *loop;
    struct rec *r;
    int base;
    int count;
};

struct post_item {
    struct rec *r;
    int id;
};

static struct post_item post_items[4][50];
static int post_seen[4];
static int post_out_of_order;

static void on_posted(struct loop *loop, void *arg)
{
    struct post_item *it = arg;
    int t = it->id / 100, k = it->id % 100;
    if (k != post_seen[t])
        post_out_of_order = 1;
    post_seen[t]++;
    record(loop, it->r, it->id);
}

static void *poster_main(void *arg)
{
    struct poster *p = arg;
    int t = p->base / 100;
    for (int k = 0; k < p->count; k++) {
        post_items[t][k] = (struct post_item){p->r, p->base + k};
        if (loop_post(p->loop, on_posted, &post_items[t][k]) != 0)
            abort();
        if (k % 7 == 0)
            usleep(100);
    }
    return NULL;
}

static void test_loop_post_from_threads(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    assert_non_null(loop);
    struct rec r = {.owner = pthread_self(), .expect = 4 * 50};
    memset(post_seen, 0, sizeof(post_seen));
    post_out_of_order = 0;
    pthread_t th[4];
    struct poster ps[4];
    for (int t = 0; t < 4; t++) {
        ps[t] = (struct poster){loop, &r, t * 100, 50};
        assert_int_equal(pthread_create(&th[t], NULL, poster_main, &ps[t]), 0);
    }
    run_with_watchdog(loop, &r, 5000);
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(r.n, 200);
    assert_false(r.wrong_thread); /* every callback ran on the loop thread */
    assert_false(post_out_of_order);
    for (int t = 0; t < 4; t++)
        assert_int_equal(post_seen[t], 50);
    loop_free(loop);
}

/* A post made before loop_run (or left over when the loop is freed) is not lost or leaked. */
static void test_loop_post_before_run(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    assert_non_null(loop);
    struct rec r = {.owner = pthread_self(), .expect = 1};
    struct post_item it = {&r, 7};
    post_seen[0] = 7;
    assert_int_equal(loop_post(loop, on_posted, &it), 0);
    run_with_watchdog(loop, &r, 2000);
    assert_int_equal(r.order[0], 7);
    assert_int_equal(loop_post(loop, on_posted, &it), 0);
    loop_free(loop); /* frees the pending post */
}

struct hookrec {
    struct rec *r;
    int id;
    int calls;
};

static void on_hook(struct loop *loop, void *arg)
{
    struct hookrec *h = arg;
    h->calls++;
    if (h->r->n < 256)
        h->r->order[h->r->n++] = h->id;
    (void)loop;
}

struct chain {
    struct rec *r;
    int left;
};

/* Each link re-arms itself, so every link needs its own loop iteration. */
static void on_chain(struct loop *loop, void *arg)
{
    struct chain *c = arg;
    if (--c->left == 0)
        loop_stop(loop);
    else
        assert_non_null(loop_timer_add(loop, 2, on_chain, c));
}

static void test_loop_before_sleep_hooks(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    assert_non_null(loop);
    struct rec r = {.owner = pthread_self()};
    struct hookrec a = {&r, 1, 0}, b = {&r, 2, 0};
    assert_int_equal(loop_add_before_sleep(loop, on_hook, &a), 0);
    assert_int_equal(loop_add_before_sleep(loop, on_hook, &b), 0);
    /* three wake-ups, one after another: the hooks run before each sleep */
    struct chain c = {&r, 3};
    assert_non_null(loop_timer_add(loop, 2, on_chain, &c));
    run_with_watchdog(loop, &r, 2000);
    assert_int_equal(c.left, 0);
    assert_true(a.calls >= 3);
    assert_int_equal(a.calls, b.calls);
    for (int i = 0; i < 2 * a.calls && i < 256; i++)
        assert_int_equal(r.order[i], i % 2 ? 2 : 1); /* in the order added */

    /* at most 8 */
    struct hookrec extra = {&r, 9, 0};
    for (int i = 2; i < 8; i++)
        assert_int_equal(loop_add_before_sleep(loop, on_hook, &extra), 0);
    assert_int_equal(loop_add_before_sleep(loop, on_hook, &extra), -ENOSPC);
    loop_free(loop);
}

/*=== workq ===*/

struct wjob {
    pthread_t loop_thread;
    pthread_t work_thread;
    int work_on_loop;
    int done_off_loop;
    int work_ran;
    int done_ran;
    int done_before_work;
    int sleep_us;
    int *done_count;
    int expect;
};

static pthread_mutex_t wq_lock = PTHREAD_MUTEX_INITIALIZER;
static int wq_work_count;

static void job_work(void *arg)
{
    struct wjob *j = arg;
    if (j->sleep_us)
        usleep((useconds_t)j->sleep_us);
    j->work_thread = pthread_self();
    j->work_on_loop = pthread_equal(pthread_self(), j->loop_thread);
    pthread_mutex_lock(&wq_lock);
    j->work_ran++;
    wq_work_count++;
    pthread_mutex_unlock(&wq_lock);
}

static struct loop *wq_loop;

static void job_done(void *arg)
{
    struct wjob *j = arg;
    j->done_off_loop = !pthread_equal(pthread_self(), j->loop_thread);
    pthread_mutex_lock(&wq_lock);
    j->done_before_work = j->work_ran == 0;
    pthread_mutex_unlock(&wq_lock);
    j->done_ran++;
    if (++*j->done_count == j->expect)
        loop_stop(wq_loop);
}

static void test_workq_threads(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    assert_non_null(loop);
    wq_loop = loop;
    struct workq *wq = workq_new(loop, 4);
    assert_non_null(wq);
    enum { N = 64 };
    static struct wjob jobs[N];
    int done = 0;
    wq_work_count = 0;
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct wjob){.loop_thread = pthread_self(),
                                .sleep_us = (i % 5) * 200,
                                .done_count = &done,
                                .expect = N};
        assert_int_equal(workq_submit(wq, job_work, job_done, &jobs[i]), 0);
    }
    struct rec r = {0};
    run_with_watchdog(loop, &r, 5000);
    assert_int_equal(done, N);
    int distinct = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i].work_ran, 1);
        assert_int_equal(jobs[i].done_ran, 1);
        assert_false(jobs[i].work_on_loop);
        assert_false(jobs[i].done_off_loop);
        assert_false(jobs[i].done_before_work);
        int seen = 0;
        for (int k = 0; k < i; k++)
            if (pthread_equal(jobs[k].work_thread, jobs[i].work_thread))
                seen = 1;
        distinct += !seen;
    }
    assert_true(distinct >= 2); /* the work really was spread over workers */
    assert_true(distinct <= 4);
    workq_free(wq);
    loop_free(loop);
}

static void test_workq_free_waits(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    assert_non_null(loop);
    wq_loop = loop;
    struct workq *wq = workq_new(loop, 2);
    assert_non_null(wq);
    enum { N = 10 };
    struct wjob jobs[N];
    int done = 0;
    wq_work_count = 0;
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct wjob){
            .loop_thread = pthread_self(), .sleep_us = 2000, .done_count = &done, .expect = -1};
        assert_int_equal(workq_submit(wq, job_work, job_done, &jobs[i]), 0);
    }
    workq_free(wq); /* every queued job's work has run when this returns */
    assert_int_equal(wq_work_count, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(jobs[i].work_ran, 1);
    assert_int_equal(done, 0); /* nothing ran on the loop yet */
    /* let completions already handed to the loop drain; they run on the loop thread */
    struct rec r = {.owner = pthread_self(), .expect = 1};
    struct tick stop = {.r = &r, .id = 0, .due_us = 0};
    assert_non_null(loop_timer_add(loop, 20, on_tick, &stop));
    run_with_watchdog(loop, &r, 2000);
    assert_true(done <= N);
    for (int i = 0; i < N; i++) {
        assert_true(jobs[i].done_ran <= 1);
        assert_false(jobs[i].done_off_loop);
    }
    loop_free(loop);
    workq_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_zero_is_empty),
        cmocka_unit_test(test_buf_grow_keeps_string),
        cmocka_unit_test(test_buf_append_grows),
        cmocka_unit_test(test_buf_cap),
        cmocka_unit_test(test_buf_printf_growth),
        cmocka_unit_test(test_buf_consume),
        cmocka_unit_test(test_buf_reset_keeps_memory),
        cmocka_unit_test(test_buf_detach),
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_roundtrip_lengths),
        cmocka_unit_test(test_base64_appends),
        cmocka_unit_test(test_base64_trailing_whitespace),
        cmocka_unit_test(test_base64_invalid),
        cmocka_unit_test(test_base64_misplaced_padding),
        cmocka_unit_test(test_base64_invalid_leaves_buffer),
        cmocka_unit_test(test_base64_decode_cap),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_percent_decode_malformed),
        cmocka_unit_test(test_uuid_v4),
        cmocka_unit_test(test_hex_and_sha256),
        cmocka_unit_test(test_format_lambda_time),
        cmocka_unit_test(test_format_iso8601_ms),
        cmocka_unit_test(test_format_times_before_epoch),
        cmocka_unit_test(test_prefix_suffix),
        cmocka_unit_test(test_clocks_and_random),
        cmocka_unit_test(test_config_set_listen),
        cmocka_unit_test(test_config_set_listen_empty_port),
        cmocka_unit_test(test_config_set_listen_ipv6),
        cmocka_unit_test(test_config_defaults_env),
        cmocka_unit_test(test_credentials_generated_once),
        cmocka_unit_test(test_credentials_env_wins),
        cmocka_unit_test(test_credentials_corrupt),
        cmocka_unit_test(test_mkdir_p),
        cmocka_unit_test(test_loop_timers_in_due_order),
        cmocka_unit_test(test_loop_equal_delays_fifo),
        cmocka_unit_test(test_loop_timer_cancel),
        cmocka_unit_test(test_loop_free_with_pending),
        cmocka_unit_test(test_loop_fd_callbacks),
        cmocka_unit_test(test_loop_mod_fd_and_high_fd),
        cmocka_unit_test(test_loop_post_from_threads),
        cmocka_unit_test(test_loop_post_before_run),
        cmocka_unit_test(test_loop_before_sleep_hooks),
        cmocka_unit_test(test_workq_threads),
        cmocka_unit_test(test_workq_free_waits),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
