/*
 * libFuzzer target for src/services/http/stream_prelude.c: the input is the start of what a
 * streaming function wrote (untrusted) in the http-integration-response form, fed whole and
 * then again in pieces whose sizes the input's first byte picks. Checks that both ways split
 * it at the same place with the same outcome, that the body starts right after the
 * delimiter, and that an accepted prelude gives a status in 100..599 and headers without CR,
 * LF or NUL (no response splitting).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/http/stream_prelude.h"

static void check_field(const char *s)
{
    if (!s || strpbrk(s, "\r\n"))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    const char *in = (const char *)data + 1;
    size--;

    struct http_prelude whole, pieces;
    http_prelude_init(&whole);
    http_prelude_init(&pieces);
    size_t used_whole = 0;
    enum http_prelude_state st = http_prelude_feed(&whole, in, size, &used_whole);
    size_t off = 0;
    enum http_prelude_state st2 = HTTP_PRELUDE_MORE;
    while (off < size && st2 == HTTP_PRELUDE_MORE) {
        size_t n = size - off < step ? size - off : step, used;
        st2 = http_prelude_feed(&pieces, in + off, n, &used);
        if (used > n)
            abort();
        off += used;
        if (st2 == HTTP_PRELUDE_MORE && used != n)
            abort();
    }
    if (st != st2 || (st == HTTP_PRELUDE_DONE && off != used_whole))
        abort();
    if (st == HTTP_PRELUDE_DONE) {
        if (used_whole < HTTP_PRELUDE_DELIMITER ||
            memcmp(in + used_whole - 8, "\0\0\0\0\0\0\0\0", 8))
            abort();
        struct http_payload_response r;
        http_payload_response_init(&r);
        if (http_prelude_response(&whole, &r) == 0) {
            if (r.status < 100 || r.status > 599 || r.body.len != 0)
                abort();
            for (size_t i = 0; i < r.nheaders; i++) {
                check_field(r.names[i]);
                check_field(r.values[i]);
            }
        }
        http_payload_response_release(&r);
    }
    http_prelude_release(&whole);
    http_prelude_release(&pieces);
    return 0;
}
