/*
 * eventstream: AWS's binary event stream framing
 * (application/vnd.amazon.eventstream), as InvokeWithResponseStream answers
 * with it. Encoding only: each message is a prelude (total length, headers
 * length, both big-endian 32-bit, and the prelude's CRC32), typed headers,
 * the payload and the whole message's CRC32 (zlib's crc32). Knows nothing of
 * Lambda: the caller names the event types.
 */
#ifndef IGNIS_SERVICES_HTTP_EVENTSTREAM_H
#define IGNIS_SERVICES_HTTP_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* AWS's limits: a message's payload at most 16 MiB, its headers 128 KiB. */
#define EVENTSTREAM_MAX_PAYLOAD (16u * 1024 * 1024)
#define EVENTSTREAM_MAX_HEADERS (128u * 1024)
/* Bytes a message adds around its payload, besides its headers. */
#define EVENTSTREAM_OVERHEAD 16u

/* A string-valued header (the only type AWS's services send in answers). */
struct eventstream_header {
    const char *name;  /* 1..255 bytes */
    const char *value; /* 0..65535 bytes */
};

/* Appends one message to out. Returns 0, -EINVAL for a name or value too long
 * (or headers or payload over AWS's limits), or -ENOMEM / -EMSGSIZE from
 * out's cap (out is then as it was). */
int eventstream_message(struct buf *out, const struct eventstream_header *headers, size_t nheaders,
                        const void *payload, size_t len);

/* An event: :event-type = event_type, :content-type = content_type (NULL:
 * left out), :message-type = event. Same returns as eventstream_message. */
int eventstream_event(struct buf *out, const char *event_type, const char *content_type,
                      const void *payload, size_t len);

#endif
