/*
 * stream_prelude: the start of a streamed HTTP answer in Lambda's
 * application/vnd.awslambda.http-integration-response form (what
 * awslambda.HttpResponseStream.from writes): a JSON prelude
 * {"statusCode", "headers", "cookies"}, then 8 NUL bytes, then the body.
 * Splits the prelude off a stream fed piece by piece and maps it to a
 * response's status and headers (payload.c's rules). Pure: knows nothing of
 * Lambda or of the connection.
 */
#ifndef IGNIS_SERVICES_HTTP_STREAM_PRELUDE_H
#define IGNIS_SERVICES_HTTP_STREAM_PRELUDE_H

#include <stddef.h>

#include "core/buf.h"
#include "services/http/payload.h"

#define HTTP_PRELUDE_CONTENT_TYPE "application/vnd.awslambda.http-integration-response"
#define HTTP_PRELUDE_MAX (64 * 1024) /* the JSON prelude's largest size (Ignis's cap) */
#define HTTP_PRELUDE_DELIMITER 8     /* NUL bytes between prelude and body */

enum http_prelude_state { HTTP_PRELUDE_MORE, HTTP_PRELUDE_DONE, HTTP_PRELUDE_BAD };

struct http_prelude {
    struct buf json; /* the prelude so far */
    unsigned nuls;   /* delimiter bytes seen */
    enum http_prelude_state state;
};

void http_prelude_init(struct http_prelude *p);
void http_prelude_release(struct http_prelude *p);
/* Feeds the next len bytes of the stream. *used receives how many of them
 * belong to the prelude and its delimiter (the rest, once the state is
 * DONE, is body). BAD: not a prelude (too long, a NUL inside the JSON, or
 * fewer than 8 NULs before the body); feeding stops there. */
enum http_prelude_state http_prelude_feed(struct http_prelude *p, const char *data, size_t len,
                                          size_t *used);
/* Once DONE: r gets the prelude's statusCode (200 when absent), headers and
 * cookies (Set-Cookie), and Content-Type application/octet-stream when the
 * prelude names none. 0, or -1 when the prelude is no valid JSON object or
 * holds a malformed member (the front door answers 502). */
int http_prelude_response(const struct http_prelude *p, struct http_payload_response *r);

#endif
