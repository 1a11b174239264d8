/*
 * libFuzzer target for src/services/http/payload.c's response mappers: the input is what a
 * function returned (untrusted), mapped to an HTTP response with the payload format 2.0 rules
 * (Function URLs, HTTP APIs) and with the 1.0 rules (HTTP APIs). Besides memory safety it checks
 * that an accepted result gives a status in 100..599 and headers whose names and values carry no
 * CR, LF or NUL (no response splitting), and that a rejected one leaves nothing behind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/http/payload.h"

static void check_field(const char *s)
{
    if (!s || strpbrk(s, "\r\n"))
        abort();
}

static void check(int (*map)(const char *, size_t, struct http_payload_response *),
                  const uint8_t *data, size_t size)
{
    struct http_payload_response r;
    http_payload_response_init(&r);
    if (map((const char *)data, size, &r) == 0) {
        if (r.status < 100 || r.status > 599)
            abort();
        for (size_t i = 0; i < r.nheaders; i++) {
            check_field(r.names[i]);
            check_field(r.values[i]);
            if (!r.names[i][0])
                abort();
        }
    }
    http_payload_response_release(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(http_payload_v2_response, data, size);
    check(http_payload_v1_response, data, size);
    return 0;
}
