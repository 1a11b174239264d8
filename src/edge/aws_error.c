/*
 * aws_error: AWS error and JSON answer encoding for the JSON protocols (see
 * aws_error.h). XML protocols (S3, query) will join here.
 */
#include "edge/aws_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void error_v(struct http_req *req, enum aws_protocol proto, unsigned status,
                    const char *code, json_t *fields, const char *fmt, va_list ap)
{
    char message[2048];
    vsnprintf(message, sizeof(message), fmt, ap);
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
    if (proto == AWS_JSON_11) {
        char id[37];
        aws_request_id(req, id);
        char *text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        http_reply_take(req, status, "application/x-amz-json-1.1", text, text ? strlen(text) : 0);
        return;
    }
    aws_reply_json(req, status, doc);
}

void aws_error(struct http_req *req, enum aws_protocol proto, unsigned status, const char *code,
               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
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
