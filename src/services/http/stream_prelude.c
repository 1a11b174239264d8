/*
 * stream_prelude: splits Lambda's http-integration-response prelude off a
 * streamed answer (see stream_prelude.h). The JSON is collected in a capped
 * buffer until the first NUL; the delimiter must follow whole. The mapping
 * of the JSON to status and headers is payload.c's payload format 2.0 one,
 * with the body left out.
 */
#include "services/http/stream_prelude.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void http_prelude_init(struct http_prelude *p)
{
    memset(p, 0, sizeof(*p));
    buf_init(&p->json, HTTP_PRELUDE_MAX);
    p->state = HTTP_PRELUDE_MORE;
}

void http_prelude_release(struct http_prelude *p)
{
    buf_release(&p->json);
}

enum http_prelude_state http_prelude_feed(struct http_prelude *p, const char *data, size_t len,
                                          size_t *used)
{
    size_t i = 0;
    while (p->state == HTTP_PRELUDE_MORE && i < len) {
        if (p->nuls == 0) {
            const char *nul = memchr(data + i, '\0', len - i);
            size_t n = nul ? (size_t)(nul - (data + i)) : len - i;
            if (buf_append(&p->json, data + i, n) < 0) {
                p->state = HTTP_PRELUDE_BAD;
                break;
            }
            i += n;
            if (!nul)
                break;
        }
        if (data[i] != '\0') {
            p->state = HTTP_PRELUDE_BAD; /* a short delimiter */
            break;
        }
        i++;
        if (++p->nuls == HTTP_PRELUDE_DELIMITER)
            p->state = HTTP_PRELUDE_DONE;
    }
    *used = i;
    return p->state;
}

/* Whether obj has a member named name in any case. */
static int has_member_nocase(json_t *obj, const char *name)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (strcasecmp(key, name) == 0)
            return 1;
    }
    return 0;
}

int http_prelude_response(const struct http_prelude *p, struct http_payload_response *r)
{
    if (p->state != HTTP_PRELUDE_DONE)
        return -1;
    json_t *doc = json_loadb(p->json.data ? p->json.data : "", p->json.len, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return -1;
    }
    /* the prelude is a 2.0 response without its body */
    json_object_del(doc, "body");
    json_object_del(doc, "isBase64Encoded");
    if (!json_object_get(doc, "statusCode"))
        json_object_set_new(doc, "statusCode", json_integer(200));
    json_t *headers = json_object_get(doc, "headers");
    int typed = json_is_object(headers) && has_member_nocase(headers, "Content-Type");
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        return -1;
    int rc = http_payload_v2_response(text, strlen(text), r);
    free(text);
    if (rc < 0)
        return -1;
    buf_reset(&r->body);
    if (!typed)
        http_payload_response_set(r, "Content-Type", "application/octet-stream");
    return 0;
}
