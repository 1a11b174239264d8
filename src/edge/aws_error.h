/*
 * aws_error: the one place AWS-visible errors and JSON answers are encoded,
 * per protocol. rest-json (Lambda): status, `x-amzn-ErrorType: <Code>` and
 * `{"Type":"User"|"Service","message":...}`. json-1.1 (CloudWatch Logs...):
 * `{"__type":<Code>,"message":...}`. Every answer carries x-amzn-RequestId.
 */
#ifndef IGNIS_EDGE_AWS_ERROR_H
#define IGNIS_EDGE_AWS_ERROR_H

#include <jansson.h>

struct http_req;

enum aws_protocol { AWS_REST_JSON, AWS_JSON_11 };

void aws_error(struct http_req *req, enum aws_protocol proto, unsigned status, const char *code,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* aws_error with more members in the body, e.g. Lambda's TooManyRequestsException
 * {"Reason": ...}. fields (an object, may be NULL) is borrowed. */
void aws_error_fields(struct http_req *req, enum aws_protocol proto, unsigned status,
                      const char *code, json_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Answers with a JSON document (takes the reference to doc). */
void aws_reply_json(struct http_req *req, unsigned status, json_t *doc);

/* Adds x-amzn-RequestId (a fresh UUID), and returns it. */
const char *aws_request_id(struct http_req *req, char id[37]);

#endif
