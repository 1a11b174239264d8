/*
 * libFuzzer target for core/util's base64_decode, base64_encode and percent_decode. Inputs
 * are copied into buffers of exactly their size (no NUL after them) so an over-read is
 * caught. It checks:
 *
 *   - base64: decode(encode(x)) == x for the input itself; a successful decode of the input
 *     is at most 3/4 of its length, NUL-terminated, and re-encoding then decoding it gives
 *     the same bytes; trailing "\r\n" does not change a decode.
 *   - percent_decode: the result agrees with a small reference decoder (same length, same
 *     bytes, -EINVAL on the same inputs), and percent-encoding any bytes decodes back.
 *
 * With IGNIS_FUZZ_STRICT=1 in the environment it also checks what the unit tests show is
 * wrong today: a failed decode leaves the output buffer as it was, and only the canonical
 * encoding of what was decoded is accepted (no '=' in the middle, no "====").
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"

static int strict = -1;

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reference: returns decoded length into out, or -1. */
static long ref_percent(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t w = 0;
    for (size_t r = 0; r < n; r++) {
        if (in[r] != '%') {
            out[w++] = in[r];
            continue;
        }
        if (n - r < 3 || hexval(in[r + 1]) < 0 || hexval(in[r + 2]) < 0)
            return -1;
        out[w++] = (uint8_t)(hexval(in[r + 1]) * 16 + hexval(in[r + 2]));
        r += 2;
    }
    return (long)w;
}

static void check_base64(const uint8_t *data, size_t size)
{
    /* decode(encode(x)) == x */
    struct buf enc = BUF_INIT, dec = BUF_INIT;
    if (base64_encode(&enc, data, size) != 0 || enc.len != 4 * ((size + 2) / 3))
        abort();
    if (base64_decode(&dec, enc.data, enc.len) != 0 || dec.len != size ||
        (size && memcmp(dec.data, data, size) != 0))
        abort();
    buf_release(&enc);
    buf_release(&dec);

    /* decoding the input itself */
    char *in = malloc(size ? size : 1);
    if (!in)
        return;
    memcpy(in, data, size);
    struct buf out = BUF_INIT;
    if (buf_puts(&out, "pre") != 0)
        abort();
    int rc = base64_decode(&out, in, size);
    if (rc == 0) {
        size_t got = out.len - 3;
        if (got > 3 * (size / 4) || out.data[out.len] != '\0' || memcmp(out.data, "pre", 3))
            abort();
        /* what was decoded survives another round trip */
        struct buf e2 = BUF_INIT, d2 = BUF_INIT;
        if (base64_encode(&e2, out.data + 3, got) != 0 ||
            base64_decode(&d2, e2.data, e2.len) != 0 || d2.len != got ||
            (got && memcmp(d2.data, out.data + 3, got) != 0))
            abort();
        if (strict) {
            /* canonical input only: the input minus trailing whitespace is exactly the
             * encoding of what it decoded to, up to the unused low bits of the last char */
            size_t n = size;
            while (n > 0 && (in[n - 1] == '\n' || in[n - 1] == '\r' || in[n - 1] == ' '))
                n--;
            if (n != e2.len)
                abort();
            for (size_t i = 0; i < n; i++)
                if ((in[i] == '=') != (e2.data[i] == '='))
                    abort();
        }
        buf_release(&e2);
        buf_release(&d2);
        /* trailing CRLF is ignored */
        char *crlf = malloc(size + 2);
        if (crlf) {
            memcpy(crlf, in, size);
            memcpy(crlf + size, "\r\n", 2);
            struct buf d3 = BUF_INIT;
            if (base64_decode(&d3, crlf, size + 2) != 0 || d3.len != got ||
                (got && memcmp(d3.data, out.data + 3, got) != 0))
                abort();
            buf_release(&d3);
            free(crlf);
        }
    } else {
        if (rc != -EINVAL)
            abort();
        if (out.len != 3 || memcmp(out.data, "pre", 3) != 0)
            abort();
        if (strict && out.data[3] != '\0')
            abort();
    }
    buf_release(&out);
    free(in);
}

static void check_percent(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    uint8_t *ref = malloc(size ? size : 1);
    if (!s || !ref)
        abort();
    memcpy(s, data, size);
    long rc = percent_decode(s, size);
    long want = ref_percent(data, size, ref);
    if (want < 0) {
        if (rc != -EINVAL)
            abort();
    } else {
        if (rc != want || memcmp(s, ref, (size_t)want) != 0)
            abort();
        if ((size_t)rc < size && s[rc] != '\0')
            abort();
    }
    free(s);
    free(ref);

    /* percent-encode every other byte (and every '%'), then decode */
    char *enc = malloc(3 * size + 1);
    if (!enc)
        abort();
    size_t n = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '%' || (i % 2) == 0)
            n += (size_t)snprintf(enc + n, 4, "%%%02X", data[i]);
        else
            enc[n++] = (char)data[i];
    }
    rc = percent_decode(enc, n);
    if (rc != (long)size || (size && memcmp(enc, data, size) != 0))
        abort();
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (strict < 0) {
        const char *e = getenv("IGNIS_FUZZ_STRICT");
        strict = e && *e == '1';
    }
    if (size > 65536)
        return 0;
    check_base64(data, size);
    check_percent(data, size);
    return 0;
}
