/*
 * libFuzzer target for S3's XML request bodies (services/s3/xml.c): the first
 * byte picks the parser (DeleteObjects, CompleteMultipartUpload,
 * CreateBucket), the rest is the document. Checks memory safety and that
 * what a parser returns is bounded: keys within S3's 1024 bytes, part
 * numbers within 1..10000, ETags and locations NUL-terminated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/s3/s3_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *doc = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 3) {
    case 0: {
        struct s3_delete_list d;
        if (s3_xml_parse_delete(doc, len, &d) == 0) {
            if (d.n == 0 || d.n > 1000)
                abort();
            for (size_t i = 0; i < d.n; i++)
                if (d.lens[i] == 0 || d.lens[i] > S3_MAX_KEY || strlen(d.keys[i]) != d.lens[i])
                    abort();
            s3_delete_list_release(&d);
        }
        break;
    }
    case 1: {
        struct s3_part_ref *p;
        size_t n;
        if (s3_xml_parse_complete(doc, len, &p, &n) == 0) {
            if (n == 0 || n > S3_MAX_PARTS)
                abort();
            for (size_t i = 0; i < n; i++)
                if (p[i].number < 1 || p[i].number > S3_MAX_PARTS ||
                    strnlen(p[i].etag, sizeof(p[i].etag)) >= sizeof(p[i].etag))
                    abort();
            free(p);
        }
        break;
    }
    default: {
        char loc[32];
        if (s3_xml_parse_create_bucket(doc, len, loc, sizeof(loc)) == 0 &&
            strnlen(loc, sizeof(loc)) >= sizeof(loc))
            abort();
        break;
    }
    }
    return 0;
}
