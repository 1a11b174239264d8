/*
 * aws_error: AWS error and JSON answer encoding for the JSON protocols (see
 * aws_error.h), S3's rest-xml <Error> documents, CloudWatch's query-protocol
 * <ErrorResponse> and the rpc-v2-cbor error map.
 */
#include "edge/aws_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include "core/util.h"
#include "edge/http.h"

const char *aws_request_id(struct http_req *req, char id[37])
{
    uuid_v4(id);
    http_req_add_header(req, "x-amzn-RequestId", id);
    return id;
}

void aws_reply_json(struct http_req *req, unsigned status, json_t *doc)
{
    char id[37];
    aws_request_id(req, id);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text) {
        http_reply(req, 500, "application/json", "{}", 2);
        return;
    }
    http_reply_take(req, status, "application/json", text, strlen(text));
}

/* The query protocol's error document (CloudWatch, awsquery). */
static void query_error(struct http_req *req, unsigned status, const char *code,
                        const char *message)
{
    char id[37];
    aws_request_id(req, id);
    struct buf b = BUF_INIT;
    buf_printf(&b,
               "<ErrorResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">"
               "<Error><Type>%s</Type><Code>",
               status >= 500 ? "Receiver" : "Sender");
    aws_xml_escape(&b, code, strlen(code));
    buf_puts(&b, "</Code><Message>");
    aws_xml_escape(&b, message, strlen(message));
    buf_printf(&b, "</Message></Error><RequestId>%s</RequestId></ErrorResponse>", id);
    size_t len;
    char *text = buf_detach(&b, &len);
    http_reply_take(req, status, "text/xml", text, len);
}

/* Smithy RPC v2 CBOR's error: a map of __type and message. */
static void cbor_error(struct http_req *req, unsigned status, const char *code, const char *message)
{
    char id[37];
    aws_request_id(req, id);
    char qe[256];
    snprintf(qe, sizeof(qe), "%s;%s", code, status >= 500 ? "Receiver" : "Sender");
    http_req_add_header(req, "x-amzn-query-error", qe);
    http_req_add_header(req, "smithy-protocol", "rpc-v2-cbor");
    struct buf b = BUF_INIT;
    unsigned char h[16];
    const char *parts[4] = {"__type", code, "message", message};
    buf_append(&b, h, cbor_encode_map_start(2, h, sizeof(h)));
    for (int i = 0; i < 4; i++) {
        size_t n = strlen(parts[i]);
        buf_append(&b, h, cbor_encode_string_start(n, h, sizeof(h)));
        buf_append(&b, parts[i], n);
    }
    size_t len;
    char *body = buf_detach(&b, &len);
    http_reply_take(req, status, "application/cbor", body, len);
}

static void error_v(struct http_req *req, enum aws_protocol proto, unsigned status,
                    const char *code, json_t *fields, const char *fmt, va_list ap)
{
    char message[2048];
    vsnprintf(message, sizeof(message), fmt, ap);
    if (proto == AWS_QUERY) {
        query_error(req, status, code, message);
        return;
    }
    if (proto == AWS_RPC_CBOR) {
        cbor_error(req, status, code, message);
        return;
    }
    if (proto == AWS_JSON_10 || proto == AWS_RPC_CBOR) {
        char qe[256];
        snprintf(qe, sizeof(qe), "%s;%s", code, status >= 500 ? "Receiver" : "Sender");
        http_req_add_header(req, "x-amzn-query-error", qe);
    }
    json_t *doc;
    if (proto == AWS_REST_JSON) {
        http_req_add_header(req, "x-amzn-ErrorType", code);
        /* Lambda's model spells the member "Message" for these two only */
        const char *member =
            strcmp(code, "ResourceNotFoundException") == 0 || strcmp(code, "ServiceException") == 0
                ? "Message"
                : "message";
        doc = json_pack("{s:s, s:s}", "Type", status >= 500 ? "Service" : "User", member, message);
    } else {
        doc = json_pack("{s:s, s:s}", "__type", code, "message", message);
    }
    if (!doc)
        doc = json_object();
    if (fields)
        json_object_update(doc, fields);
    if (proto == AWS_JSON_11 || proto == AWS_JSON_10) {
        char id[37];
        aws_request_id(req, id);
        char *text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        http_reply_take(req, status,
                        proto == AWS_JSON_10 ? "application/x-amz-json-1.0"
                                             : "application/x-amz-json-1.1",
                        text, text ? strlen(text) : 0);
        return;
    }
    aws_reply_json(req, status, doc);
}

static void error_xml_v(struct http_req *req, unsigned status, const char *code,
                        const char *const *extra, const char *fmt, va_list ap);

void aws_error(struct http_req *req, enum aws_protocol proto, unsigned status, const char *code,
               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (proto == AWS_REST_XML)
        error_xml_v(req, status, code, NULL, fmt, ap);
    else
        error_v(req, proto, status, code, NULL, fmt, ap);
    va_end(ap);
}

void aws_error_fields(struct http_req *req, enum aws_protocol proto, unsigned status,
                      const char *code, json_t *fields, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_v(req, proto, status, code, fields, fmt, ap);
    va_end(ap);
}

/*=== rest-xml (S3) ===*/

const char *aws_s3_request_id(struct http_req *req, char id[17])
{
    unsigned char raw[8 + 48];
    random_bytes(raw, sizeof(raw));
    static const char hex[] = "0123456789ABCDEF";
    for (int i = 0; i < 8; i++) {
        id[2 * i] = hex[raw[i] >> 4];
        id[2 * i + 1] = hex[raw[i] & 15];
    }
    id[16] = '\0';
    http_req_add_header(req, "x-amz-request-id", id);
    struct buf id2 = BUF_INIT;
    if (base64_encode(&id2, raw + 8, 48) == 0)
        http_req_add_header(req, "x-amz-id-2", id2.data);
    buf_release(&id2);
    return id;
}

int aws_xml_escape(struct buf *out, const char *s, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        switch (s[i]) {
        case '&':
            rc = buf_puts(out, "&amp;");
            break;
        case '<':
            rc = buf_puts(out, "&lt;");
            break;
        case '>':
            rc = buf_puts(out, "&gt;");
            break;
        case '"':
            rc = buf_puts(out, "&quot;");
            break;
        case '\'':
            rc = buf_puts(out, "&apos;");
            break;
        case '\r':
            rc = buf_puts(out, "&#13;");
            break;
        default:
            rc = buf_putc(out, s[i]);
        }
    }
    return rc;
}

static void xml_element(struct buf *b, const char *name, const char *value)
{
    buf_printf(b, "<%s>", name);
    aws_xml_escape(b, value, strlen(value));
    buf_printf(b, "</%s>", name);
}

static void error_xml_v(struct http_req *req, unsigned status, const char *code,
                        const char *const *extra, const char *fmt, va_list ap)
{
    char message[2048], id[17];
    vsnprintf(message, sizeof(message), fmt, ap);
    aws_s3_request_id(req, id);
    if (strcmp(http_req_method(req), "HEAD") == 0) {
        http_reply(req, status, NULL, "", 0); /* HEAD: the status says it all */
        return;
    }
    struct buf b = BUF_INIT;
    buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
    xml_element(&b, "Code", code);
    xml_element(&b, "Message", message);
    for (size_t i = 0; extra && extra[i] && extra[i + 1]; i += 2)
        xml_element(&b, extra[i], extra[i + 1]);
    /* Resource: the path without its query, as S3 shows it */
    const char *path = http_req_path(req);
    size_t plen = strcspn(path, "?");
    buf_puts(&b, "<Resource>");
    aws_xml_escape(&b, path, plen);
    buf_puts(&b, "</Resource>");
    xml_element(&b, "RequestId", id);
    buf_puts(&b, "</Error>");
    size_t len;
    char *text = buf_detach(&b, &len);
    if (!text)
        http_reply(req, status, "application/xml", "", 0);
    else
        http_reply_take(req, status, "application/xml", text, len);
}

void aws_error_xml(struct http_req *req, unsigned status, const char *code,
                   const char *const *extra, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_xml_v(req, status, code, extra, fmt, ap);
    va_end(ap);
}
