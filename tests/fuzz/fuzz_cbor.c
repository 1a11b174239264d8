/*
 * fuzz_cbor: CloudWatch's rpc-v2-cbor request bodies come from clients. The
 * body is decoded into a JSON document (libcbor's streaming decoder; our
 * builder); an accepted one must be an object, and must survive being
 * encoded back to CBOR (as answers are) and decoded again. A refused body
 * must leave a NUL-terminated reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/metrics/metrics_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128];
    memset(err, 'x', sizeof(err));
    json_t *doc = mw_cbor_decode(data, size, err, sizeof(err));
    if (!doc) {
        if (!memchr(err, '\0', sizeof(err)))
            abort();
        return 0;
    }
    if (!json_is_object(doc))
        abort();
    struct buf out = BUF_INIT;
    if (mw_cbor_encode(doc, &out) < 0)
        abort();
    json_t *again = mw_cbor_decode(out.data ? out.data : "", out.len, err, sizeof(err));
    if (!again)
        abort();
    json_decref(again);
    buf_release(&out);
    json_decref(doc);
    return 0;
}
