/*
 * aws_error: the one place AWS-visible errors and JSON answers are encoded,
 * per protocol. rest-json (Lambda): status, `x-amzn-ErrorType: <Code>` and
 * `{"Type":"User"|"Service","message":...}`. json-1.1 (CloudWatch Logs...):
 * `{"__type":<Code>,"message":...}`. Every answer carries x-amzn-RequestId.
 * rest-xml (S3): `<Error><Code/><Message/>...<Resource/><RequestId/></Error>`
 * with x-amz-request-id and x-amz-id-2 (no body for HEAD).
 */
#ifndef IGNIS_EDGE_AWS_ERROR_H
#define IGNIS_EDGE_AWS_ERROR_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"

struct http_req;

/* AWS_QUERY (CloudWatch's awsquery): `<ErrorResponse><Error><Type>Sender|Receiver</Type><Code>
 * <Message></Error><RequestId></ErrorResponse>` as text/xml. AWS_JSON_10 (CloudWatch's JSON 1.0,
 * awsQueryCompatible): json-1.1's body as application/x-amz-json-1.0 plus
 * `x-amzn-query-error: <Code>;Sender|Receiver`, so SDKs see the query protocol's code. */
/* AWS_RPC_CBOR (Smithy RPC v2 CBOR): {"__type", "message"} as application/cbor with
 * smithy-protocol: rpc-v2-cbor, plus AWS_JSON_10's x-amzn-query-error. */
enum aws_protocol {
    AWS_REST_JSON,
    AWS_JSON_11,
    AWS_REST_XML,
    AWS_QUERY,
    AWS_JSON_10,
    AWS_RPC_CBOR
};

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

/*=== rest-xml (S3) ===*/

/* Adds S3's x-amz-request-id (16 upper-case hex) and x-amz-id-2; returns the id. */
const char *aws_s3_request_id(struct http_req *req, char id[17]);
/* S3's <Error> with status; extra (may be NULL) is name, value, ..., NULL: more
 * elements after Message (e.g. "BucketName", "b"). Resource is the request's path. */
void aws_error_xml(struct http_req *req, unsigned status, const char *code,
                   const char *const *extra, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Appends s[0..n) to out with XML's five special characters escaped. */
int aws_xml_escape(struct buf *out, const char *s, size_t n);

#endif
