/*
 * cors: the CORS rules shared by Function URLs (services/lambda/url_invoke.c)
 * and API Gateway HTTP APIs (services/apigw/gateway.c): origin and method
 * checks over a configuration, and the Access-Control-* headers of
 * preflight and actual answers. Owns no state; the callers decide when a
 * request is answered as a preflight and send the response.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "edge/http.h"
#include "services/http/cors.h"

static json_t *member(json_t *doc, const char *pascal, enum http_cors_names names)
{
    char key[32];
    snprintf(key, sizeof(key), "%s", pascal);
    if (names == HTTP_CORS_CAMEL_CASE)
        key[0] = (char)tolower((unsigned char)key[0]);
    return json_object_get(doc, key);
}

int http_cors_from_json(struct http_cors *c, json_t *doc, enum http_cors_names names)
{
    memset(c, 0, sizeof(*c));
    if (!json_is_object(doc))
        return -1;
    c->allow_origins = member(doc, "AllowOrigins", names);
    c->allow_methods = member(doc, "AllowMethods", names);
    c->allow_headers = member(doc, "AllowHeaders", names);
    c->expose_headers = member(doc, "ExposeHeaders", names);
    c->allow_credentials = json_is_true(member(doc, "AllowCredentials", names));
    c->max_age = json_integer_value(member(doc, "MaxAge", names));
    return 0;
}

static int list_has(json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && strcasecmp(json_string_value(v), s) == 0)
            return 1;
    }
    return 0;
}

/* Sets (or adds, when add) name to the comma-joined list, if not empty. */
static void put_list(struct http_payload_response *r, const char *name, json_t *list, int add)
{
    if (!json_array_size(list))
        return;
    struct buf b = BUF_INIT;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) buf_printf(&b, "%s%s", i ? "," : "", json_string_value(v));
    if (add)
        http_payload_response_add(r, name, b.data);
    else
        http_payload_response_set(r, name, b.data);
    buf_release(&b);
}

const char *http_cors_allowed_origin(const struct http_cors *c, const char *origin)
{
    if (!origin)
        return NULL;
    if (list_has(c->allow_origins, "*"))
        return c->allow_credentials ? origin : "*";
    return list_has(c->allow_origins, origin) ? origin : NULL;
}

int http_cors_method_allowed(const struct http_cors *c, const char *method)
{
    if (!json_array_size(c->allow_methods))
        return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
               strcmp(method, "POST") == 0;
    return list_has(c->allow_methods, "*") || list_has(c->allow_methods, method);
}

int http_cors_is_preflight(struct http_req *req)
{
    return strcmp(http_req_method(req), "OPTIONS") == 0 && http_req_header(req, "Origin") &&
           http_req_header(req, "Access-Control-Request-Method");
}

void http_cors_preflight_headers(struct http_payload_response *r, const struct http_cors *c,
                                 const char *allow)
{
    http_payload_response_add(r, "Access-Control-Allow-Origin", allow);
    put_list(r, "Access-Control-Allow-Methods", c->allow_methods, 1);
    put_list(r, "Access-Control-Allow-Headers", c->allow_headers, 1);
    put_list(r, "Access-Control-Expose-Headers", c->expose_headers, 1);
    if (c->allow_credentials)
        http_payload_response_add(r, "Access-Control-Allow-Credentials", "true");
    if (c->max_age > 0) {
        char age[24];
        snprintf(age, sizeof(age), "%lld", (long long)c->max_age);
        http_payload_response_add(r, "Access-Control-Max-Age", age);
    }
    http_payload_response_add(r, "Vary", "Origin");
}

void http_cors_response_headers(struct http_payload_response *r, const struct http_cors *c,
                                const char *origin)
{
    const char *allow = http_cors_allowed_origin(c, origin);
    if (!allow)
        return;
    http_payload_response_set(r, "Access-Control-Allow-Origin", allow);
    if (c->allow_credentials)
        http_payload_response_set(r, "Access-Control-Allow-Credentials", "true");
    put_list(r, "Access-Control-Expose-Headers", c->expose_headers, 0);
    http_payload_response_set(r, "Vary", "Origin");
}

void http_cors_strip(struct http_payload_response *r)
{
    http_payload_response_remove(r, "Access-Control-", 1);
}
