/*
 * fuzz_logs_pattern: CloudWatch Logs filter patterns come from clients. The
 * input is split at the first NUL into a pattern and a message; the pattern is
 * compiled and, when accepted, matched against the message. A refused pattern
 * must leave a NUL-terminated error text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/logs/logs_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t plen = nul ? (size_t)(nul - data) : size;
    char *pattern = malloc(plen + 1);
    memcpy(pattern, data, plen);
    pattern[plen] = '\0';
    const char *msg = nul ? (const char *)nul + 1 : "";
    size_t mlen = nul ? size - plen - 1 : 0;

    struct logs_pattern *p = NULL;
    char err[256];
    memset(err, 'x', sizeof(err));
    if (logs_pattern_compile(pattern, &p, err, sizeof(err)) == 0) {
        int m = logs_pattern_match(p, msg, mlen);
        if (m != 0 && m != 1)
            abort();
        logs_pattern_free(p);
    } else if (!memchr(err, '\0', sizeof(err))) {
        abort();
    }
    free(pattern);
    return 0;
}
