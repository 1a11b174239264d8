/*
 * payload: HTTP requests as the events AWS's HTTP front doors hand to a
 * function, and the function's answer back as an HTTP response. Today
 * payload formats 2.0 (Function URLs, API Gateway HTTP APIs) and 1.0 (API
 * Gateway HTTP APIs). Pure mapping: knows nothing of functions, the pool or
 * authentication; the caller says what the requestContext shows.
 */
#ifndef IGNIS_SERVICES_HTTP_PAYLOAD_H
#define IGNIS_SERVICES_HTTP_PAYLOAD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct http_req;

/* What the event's requestContext says (strings borrowed). */
struct http_payload_ctx {
    const char *raw_path;      /* the path as sent, without the query */
    const char *route_key;     /* "$default" */
    const char *stage;         /* "$default" */
    const char *account_id;    /* "anonymous" for an unauthenticated caller */
    const char *api_id;        /* Function URLs: the url-id */
    const char *domain_name;   /* the Host the client used, without its port */
    const char *domain_prefix; /* its first label */
    const char *request_id;
    json_t *authorizer; /* borrowed; NULL: no "authorizer" member */
    int64_t now_ms;
    /* API Gateway only (NULL for Function URLs): */
    json_t *path_parameters; /* borrowed object; NULL or empty: left out (2.0), null (1.0) */
    json_t *stage_variables; /* likewise */
    const char *resource;    /* 1.0: the route's path ("/items/{id}"), or the route key */
    const char *path;        /* 1.0: the request's path as sent (stage prefix included);
                                NULL: raw_path */
};

/*
 * The payload format 2.0 event for req (a new reference, NULL when out of
 * memory): version, routeKey, rawPath, rawQueryString, cookies (the Cookie
 * header split, and left out of headers), headers (names lower-cased,
 * repeated ones comma-joined), queryStringParameters (decoded, repeated
 * keys comma-joined), requestContext, body and isBase64Encoded. The body is
 * text only for text/ *, application/json, application/xml and
 * application/javascript (as API Gateway HTTP APIs and Function URLs do);
 * anything else, a missing Content-Type included, is base64-encoded.
 * Members without content (cookies, queryStringParameters, body) are left out.
 */
json_t *http_payload_v2_event(struct http_req *req, const struct http_payload_ctx *ctx);

/*
 * The payload format 1.0 event (API Gateway HTTP APIs; a new reference, NULL
 * when out of memory): version "1.0", resource, path, httpMethod, headers
 * (names lower-cased, the last value of a repeated one) and
 * multiValueHeaders (every value), queryStringParameters (decoded, the last
 * value) and multiValueQueryStringParameters, pathParameters,
 * stageVariables (null when none, as the other empty members),
 * requestContext (identity.sourceIp, requestTime, requestTimeEpoch, ...),
 * body and isBase64Encoded (same body rules as 2.0).
 */
json_t *http_payload_v1_event(struct http_req *req, const struct http_payload_ctx *ctx);

/* An HTTP response being built: headers keep their order and may repeat
 * (Set-Cookie). */
struct http_payload_response {
    unsigned status;
    char **names, **values;
    size_t nheaders;
    struct buf body;
};

void http_payload_response_init(struct http_payload_response *r);
void http_payload_response_release(struct http_payload_response *r);
/* Appends a header (copied). */
void http_payload_response_add(struct http_payload_response *r, const char *name,
                               const char *value);
/* Removes every header named name (any case), or, with prefix, every one
 * whose name starts with name. */
void http_payload_response_remove(struct http_payload_response *r, const char *name, int prefix);
/* Replaces every header named name (any case) with one (value NULL: removes). */
void http_payload_response_set(struct http_payload_response *r, const char *name,
                               const char *value);
const char *http_payload_response_get(const struct http_payload_response *r, const char *name);

/*
 * Maps a function's result (JSON, as the runtime posted it) with the payload
 * format 2.0 rules: an object with statusCode gives statusCode, headers,
 * cookies (one Set-Cookie each), body (base64-decoded with
 * isBase64Encoded); anything else is a 200 application/json whose body is
 * the result (a JSON string: its text). Returns 0, or -1 when the result is
 * not a valid response (the caller answers 502).
 */
int http_payload_v2_response(const char *result, size_t len, struct http_payload_response *out);

/*
 * Maps a function's result with the payload format 1.0 rules: it must be an
 * object with an integer statusCode (no inference); headers and
 * multiValueHeaders (every value sent; a name in both takes
 * multiValueHeaders' values), body (base64-decoded with isBase64Encoded).
 * Content-Type defaults to application/json. Returns 0, or -1 when the
 * result is not a valid response (API Gateway answers 500).
 */
int http_payload_v1_response(const char *result, size_t len, struct http_payload_response *out);

/* The id a front door's Host starts with: "<id><suffix>..." (suffix e.g.
 * ".lambda-url.") with id 1..max alphanumerics, copied into id (max + 1
 * bytes). 0, or -1 when host is not of that form. */
int http_payload_host_id(const char *host, const char *suffix, char *id, size_t max);

/* Answers req with r (its headers, status and body; r's body is taken). */
void http_payload_reply(struct http_req *req, struct http_payload_response *r);

/* The front door's own errors: status, x-amzn-ErrorType: type (if not
 * NULL), x-amzn-RequestId and {"Message": message} (NULL: null). */
void http_payload_error(struct http_req *req, unsigned status, const char *type,
                        const char *message);

#endif
