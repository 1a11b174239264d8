/*
 * fuzz_query_form: CloudWatch's query protocol bodies come from clients
 * (form-encoded "A.member.N.B=v" pairs), and so do the timestamps in them.
 * The body is decoded into a JSON document, which must be an object whose
 * keys were all given; a refused body must leave a NUL-terminated reason.
 * Each value that decodes is also tried as a timestamp.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "services/metrics/metrics_internal.h"

static void try_times(json_t *v)
{
    if (json_is_string(v)) {
        int64_t ms;
        parse_timestamp_ms(json_string_value(v), &ms);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c) try_times(c);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c)
        {
            if (!c) /* sparse lists are compacted */
                abort();
            try_times(c);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    memset(err, 'x', sizeof(err));
    json_t *doc = mw_form_decode((const char *)data, size, err, sizeof(err));
    if (!doc) {
        if (!memchr(err, '\0', sizeof(err)))
            abort();
        return 0;
    }
    if (!json_is_object(doc))
        abort();
    try_times(doc);
    json_decref(doc);
    return 0;
}
