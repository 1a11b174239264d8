/*
 * eventstream: encodes AWS event stream messages (see eventstream.h). A
 * message is written in place at the end of the caller's buffer: room is
 * made once for the whole message, then the prelude, headers, payload and
 * CRCs are filled in. Owns nothing between calls.
 */
#include "services/http/eventstream.h"

#include <errno.h>
#include <string.h>

#include <zlib.h>

#define HEADER_TYPE_STRING 7

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

int eventstream_message(struct buf *out, const struct eventstream_header *headers, size_t nheaders,
                        const void *payload, size_t len)
{
    size_t hlen = 0;
    for (size_t i = 0; i < nheaders; i++) {
        size_t n = strlen(headers[i].name), v = strlen(headers[i].value);
        if (n == 0 || n > 255 || v > 65535)
            return -EINVAL;
        hlen += 1 + n + 1 + 2 + v;
    }
    if (hlen > EVENTSTREAM_MAX_HEADERS || len > EVENTSTREAM_MAX_PAYLOAD)
        return -EINVAL;
    size_t total = 12 + hlen + len + 4;
    int rc = buf_grow(out, total);
    if (rc < 0)
        return rc;
    unsigned char *start = (unsigned char *)out->data + out->len, *p = start;
    put_be32(p, (uint32_t)total);
    put_be32(p + 4, (uint32_t)hlen);
    put_be32(p + 8, (uint32_t)crc32(0L, p, 8));
    p += 12;
    for (size_t i = 0; i < nheaders; i++) {
        size_t n = strlen(headers[i].name), v = strlen(headers[i].value);
        *p++ = (unsigned char)n;
        memcpy(p, headers[i].name, n);
        p += n;
        *p++ = HEADER_TYPE_STRING;
        *p++ = (unsigned char)(v >> 8);
        *p++ = (unsigned char)v;
        memcpy(p, headers[i].value, v);
        p += v;
    }
    if (len)
        memcpy(p, payload, len);
    p += len;
    put_be32(p, (uint32_t)crc32(0L, start, (uInt)(p - start)));
    out->len += total;
    out->data[out->len] = '\0';
    return 0;
}

int eventstream_event(struct buf *out, const char *event_type, const char *content_type,
                      const void *payload, size_t len)
{
    struct eventstream_header h[3];
    size_t n = 0;
    h[n++] = (struct eventstream_header){":event-type", event_type};
    if (content_type)
        h[n++] = (struct eventstream_header){":content-type", content_type};
    h[n++] = (struct eventstream_header){":message-type", "event"};
    return eventstream_message(out, h, n, payload, len);
}
