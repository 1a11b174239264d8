/*
 * cors: CORS as AWS's HTTP front doors apply it from their configuration
 * (Lambda's Function URL Cors, API Gateway HTTP APIs' CorsConfiguration):
 * whether an Origin is allowed, the headers of a preflight answer and those
 * added to an actual response. Pure mapping over services/http/payload.h's
 * response: knows nothing of who stores the configuration or answers.
 */
#ifndef IGNIS_SERVICES_HTTP_CORS_H
#define IGNIS_SERVICES_HTTP_CORS_H

#include <jansson.h>

#include "services/http/payload.h"

/* A CORS configuration (the arrays are borrowed from its JSON document). */
struct http_cors {
    json_t *allow_origins, *allow_methods, *allow_headers, *expose_headers; /* or NULL */
    int allow_credentials;
    json_int_t max_age; /* sent when > 0 */
};

/* How the document names its members: Lambda's "AllowOrigins" or
 * apigatewayv2's "allowOrigins". */
enum http_cors_names { HTTP_CORS_PASCAL_CASE, HTTP_CORS_CAMEL_CASE };

/* Fills c from doc (borrowed; c lives no longer than doc). 0, or -1 when
 * doc is not an object (no CORS). */
int http_cors_from_json(struct http_cors *c, json_t *doc, enum http_cors_names names);

/* The Access-Control-Allow-Origin for origin (borrowed: origin itself or
 * "*"), or NULL when origin is NULL or not allowed. "*" answers the origin
 * itself when credentials are allowed. */
const char *http_cors_allowed_origin(const struct http_cors *c, const char *origin);

/* Whether a preflight's Access-Control-Request-Method is allowed: listed
 * (any case) or "*" listed; with no AllowMethods, only the CORS-safelisted
 * GET, HEAD and POST. */
int http_cors_method_allowed(const struct http_cors *c, const char *method);

/* Whether req is a preflight: OPTIONS with Origin and
 * Access-Control-Request-Method. */
int http_cors_is_preflight(struct http_req *req);

/* Adds a preflight answer's headers to r for an allowed origin (allow, from
 * http_cors_allowed_origin): Allow-Origin, -Methods, -Headers,
 * -Expose-Headers, -Credentials, -Max-Age and Vary: Origin. */
void http_cors_preflight_headers(struct http_payload_response *r, const struct http_cors *c,
                                 const char *allow);

/* Sets an actual response's Access-Control-Allow-Origin, -Credentials,
 * -Expose-Headers and Vary: Origin (replacing any the function sent) when
 * origin is allowed; nothing otherwise. */
void http_cors_response_headers(struct http_payload_response *r, const struct http_cors *c,
                                const char *origin);

/* Removes every Access-Control-* header from r (a response whose own CORS
 * headers the front door ignores). */
void http_cors_strip(struct http_payload_response *r);

#endif
