/*
 * payload: the payload format 2.0 and 1.0 event builders and response
 * mappers (see payload.h). Reads the request through edge/http's raw views (headers in
 * the order sent, query pairs still percent-encoded) so rawQueryString and
 * repeated headers and keys come out as the client sent them. Owns nothing
 * beyond the documents and responses it builds.
 */
#include "services/http/payload.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "core/util.h"
#include "edge/http.h"

/*=== Event ===*/

/* text/ *, application/json, application/xml, application/javascript. */
static int text_content_type(const char *ct)
{
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    static const char *const text[] = {"application/json", "application/xml",
                                       "application/javascript"};
    if (n > 5 && strncasecmp(ct, "text/", 5) == 0)
        return 1;
    for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++)
        if (n == strlen(text[i]) && strncasecmp(ct, text[i], n) == 0)
            return 1;
    return 0;
}

/* obj[key] = value, or "old,value" when key is there already. */
static void join_member(json_t *obj, const char *key, const char *value)
{
    json_t *old = json_object_get(obj, key);
    if (!old) {
        json_object_set_new(obj, key, json_string(value));
        return;
    }
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s,%s", json_string_value(old), value);
    json_object_set_new(obj, key, json_string(b.data));
    buf_release(&b);
}

/* A decoded query name or value ('+' is a space); NULL when malformed. */
static char *query_decode(const char *s)
{
    char *copy = strdup(s ? s : "");
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if (*p == '+')
            *p = ' ';
    long n = percent_decode(copy, strlen(copy));
    if (n < 0) {
        free(copy);
        return NULL;
    }
    return copy;
}

static void add_cookies(json_t *cookies, const char *header)
{
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == ';')
            p++;
        size_t n = strcspn(p, ";");
        size_t m = n;
        while (m > 0 && p[m - 1] == ' ')
            m--;
        if (m > 0)
            json_array_append_new(cookies, json_stringn(p, m));
        p += n;
    }
}

static void source_ip(struct http_req *req, char out[INET6_ADDRSTRLEN], int *local_port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = http_req_fd(req);
    snprintf(out, INET6_ADDRSTRLEN, "127.0.0.1");
    *local_port = 0;
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, INET6_ADDRSTRLEN);
        } else if (ss.ss_family == AF_INET6) {
            struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
            if (IN6_IS_ADDR_V4MAPPED(a))
                inet_ntop(AF_INET, &a->s6_addr[12], out, INET6_ADDRSTRLEN);
            else
                inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN);
        }
    }
    len = sizeof(ss);
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        *local_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* "12/Mar/2020:19:03:58 +0000" */
static void clf_time(int64_t ms, char out[40])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(out, 40, "%02d/%s/%04d:%02d:%02d:%02d +0000", tm.tm_mday, months[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* What both event formats read from a request. */
struct req_view {
    json_t *headers;     /* lower-cased name -> comma-joined values (2.0) */
    json_t *last_header; /* lower-cased name -> last value (1.0) */
    json_t *mv_headers;  /* lower-cased name -> [values] (1.0) */
    json_t *cookies;     /* [cookie] (2.0) */
    json_t *query;       /* decoded name -> comma-joined values (2.0) */
    json_t *last_query;  /* decoded name -> last value (1.0) */
    json_t *mv_query;    /* decoded name -> [values] (1.0) */
    struct buf raw_query;
    const char *user_agent;
    char ip[INET6_ADDRSTRLEN];
};

static void mv_append(json_t *obj, const char *key, const char *value)
{
    json_t *list = json_object_get(obj, key);
    if (!list) {
        list = json_array();
        json_object_set_new(obj, key, list);
    }
    json_array_append_new(list, json_string(value));
}

/* Adds a header (its lower-cased name) to every header view. */
static void view_header(struct req_view *v, const char *name, const char *value)
{
    join_member(v->headers, name, value);
    json_object_set_new(v->last_header, name, json_string(value));
    mv_append(v->mv_headers, name, value);
}

static void view_release(struct req_view *v)
{
    json_decref(v->headers);
    json_decref(v->last_header);
    json_decref(v->mv_headers);
    json_decref(v->cookies);
    json_decref(v->query);
    json_decref(v->last_query);
    json_decref(v->mv_query);
    buf_release(&v->raw_query);
}

static void view_collect(struct http_req *req, const struct http_payload_ctx *ctx,
                         struct req_view *v)
{
    struct sigv4_request view;
    http_req_sigv4(req, &view);
    memset(v, 0, sizeof(*v));
    v->headers = json_object();
    v->last_header = json_object();
    v->mv_headers = json_object();
    v->cookies = json_array();
    v->query = json_object();
    v->last_query = json_object();
    v->mv_query = json_object();
    v->user_agent = "";
    for (size_t i = 0; i < view.nheaders; i++) {
        char name[256];
        snprintf(name, sizeof(name), "%s", view.headers[i].name);
        for (char *p = name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        const char *value = view.headers[i].value ? view.headers[i].value : "";
        if (strcmp(name, "cookie") == 0) {
            add_cookies(v->cookies, value);
            json_object_set_new(v->last_header, name, json_string(value));
            mv_append(v->mv_headers, name, value);
            continue;
        }
        if (strcmp(name, "user-agent") == 0)
            v->user_agent = value;
        view_header(v, name, value);
    }
    int port;
    source_ip(req, v->ip, &port);
    if (!json_object_get(v->headers, "x-forwarded-for")) {
        view_header(v, "x-forwarded-for", v->ip);
    } else {
        /* one value: "client,proxy,...,us" (as 2.0 has always joined it) */
        struct buf b = BUF_INIT;
        buf_printf(&b, "%s,%s", json_string_value(json_object_get(v->headers, "x-forwarded-for")),
                   v->ip);
        json_object_set_new(v->headers, "x-forwarded-for", json_string(b.data));
        json_object_set_new(v->last_header, "x-forwarded-for", json_string(b.data));
        json_object_set_new(v->mv_headers, "x-forwarded-for", json_pack("[s]", b.data));
        buf_release(&b);
    }
    json_object_del(v->headers, "x-forwarded-proto");
    json_object_del(v->last_header, "x-forwarded-proto");
    json_object_del(v->mv_headers, "x-forwarded-proto");
    view_header(v, "x-forwarded-proto", "http");
    char text[64];
    snprintf(text, sizeof(text), "%d", port);
    json_object_del(v->headers, "x-forwarded-port");
    json_object_del(v->last_header, "x-forwarded-port");
    json_object_del(v->mv_headers, "x-forwarded-port");
    view_header(v, "x-forwarded-port", text);
    if (!json_object_get(v->headers, "x-amzn-trace-id")) {
        unsigned char rnd[12];
        char hex[25], trace[64];
        random_bytes(rnd, sizeof(rnd));
        hex_encode(rnd, sizeof(rnd), hex);
        snprintf(trace, sizeof(trace), "Root=1-%08llx-%s", (long long)(ctx->now_ms / 1000), hex);
        view_header(v, "x-amzn-trace-id", trace);
    }

    for (size_t i = 0; i < view.nquery; i++) {
        if (i)
            buf_putc(&v->raw_query, '&');
        buf_puts(&v->raw_query, view.query[i].name);
        if (view.query[i].value) {
            buf_putc(&v->raw_query, '=');
            buf_puts(&v->raw_query, view.query[i].value);
        }
        char *k = query_decode(view.query[i].name), *val = query_decode(view.query[i].value);
        if (k && val) {
            join_member(v->query, k, val);
            json_object_set_new(v->last_query, k, json_string(val));
            mv_append(v->mv_query, k, val);
        }
        free(k);
        free(val);
    }
}

/* Sets ev's body and isBase64Encoded (no body: none in 2.0 (null_body 0), null in 1.0). */
static void set_body(struct http_req *req, json_t *ev, int null_body)
{
    size_t len;
    const char *body = http_req_body(req, &len);
    int b64 = 0;
    if (len > 0) {
        const char *content_type = http_req_header(req, "Content-Type");
        json_t *s = text_content_type(content_type) ? json_stringn(body, len) : NULL;
        if (!s) { /* binary, or not UTF-8 */
            struct buf enc = BUF_INIT;
            base64_encode(&enc, body, len);
            s = json_stringn(enc.data ? enc.data : "", enc.len);
            buf_release(&enc);
            b64 = 1;
        }
        json_object_set_new(ev, "body", s);
    } else if (null_body) {
        json_object_set_new(ev, "body", json_null());
    }
    json_object_set_new(ev, "isBase64Encoded", json_boolean(b64));
}

/* obj, or null when it is NULL or empty (a new reference). */
static json_t *or_null(json_t *obj)
{
    return obj && json_object_size(obj) ? json_incref(obj) : json_null();
}

json_t *http_payload_v2_event(struct http_req *req, const struct http_payload_ctx *ctx)
{
    struct req_view v;
    view_collect(req, ctx, &v);
    char when[40];
    clf_time(ctx->now_ms, when);
    json_t *rc = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:s, "
                           "s:s, s:I}",
                           "accountId", ctx->account_id, "apiId", ctx->api_id, "domainName",
                           ctx->domain_name, "domainPrefix", ctx->domain_prefix, "http", "method",
                           http_req_method(req), "path", ctx->raw_path, "protocol", "HTTP/1.1",
                           "sourceIp", v.ip, "userAgent", v.user_agent, "requestId",
                           ctx->request_id, "routeKey", ctx->route_key, "stage", ctx->stage, "time",
                           when, "timeEpoch", (json_int_t)ctx->now_ms);
    if (rc && ctx->authorizer)
        json_object_set(rc, "authorizer", ctx->authorizer);

    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:O, s:o}", "version", "2.0", "routeKey",
                           ctx->route_key, "rawPath", ctx->raw_path, "rawQueryString",
                           v.raw_query.data ? v.raw_query.data : "", "headers", v.headers,
                           "requestContext", rc);
    if (ev) {
        if (json_array_size(v.cookies))
            json_object_set(ev, "cookies", v.cookies);
        if (json_object_size(v.query))
            json_object_set(ev, "queryStringParameters", v.query);
        if (json_object_size(ctx->path_parameters))
            json_object_set(ev, "pathParameters", ctx->path_parameters);
        if (json_object_size(ctx->stage_variables))
            json_object_set(ev, "stageVariables", ctx->stage_variables);
        set_body(req, ev, 0);
    }
    view_release(&v);
    return ev;
}

json_t *http_payload_v1_event(struct http_req *req, const struct http_payload_ctx *ctx)
{
    struct req_view v;
    view_collect(req, ctx, &v);
    char when[40];
    clf_time(ctx->now_ms, when);
    const char *path = ctx->path ? ctx->path : ctx->raw_path;
    const char *resource = ctx->resource ? ctx->resource : ctx->route_key;
    json_t *identity =
        json_pack("{s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:s, s:n, s:s, s:n}", "accessKey",
                  "accountId", "caller", "cognitoAuthenticationProvider",
                  "cognitoAuthenticationType", "cognitoIdentityId", "cognitoIdentityPoolId",
                  "principalOrgId", "sourceIp", v.ip, "user", "userAgent", v.user_agent, "userArn");
    json_t *rc = json_pack(
        "{s:s, s:s, s:O, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:I, "
        "s:n, s:s, s:s}",
        "accountId", ctx->account_id, "apiId", ctx->api_id, "authorizer",
        ctx->authorizer ? ctx->authorizer : json_null(), "domainName", ctx->domain_name,
        "domainPrefix", ctx->domain_prefix, "extendedRequestId", ctx->request_id, "httpMethod",
        http_req_method(req), "identity", identity, "path", path, "protocol", "HTTP/1.1",
        "requestId", ctx->request_id, "requestTime", when, "requestTimeEpoch",
        (json_int_t)ctx->now_ms, "resourceId", "resourcePath", resource, "stage", ctx->stage);
    json_t *ev =
        json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:o, s:o, s:o, s:o, s:o}", "version", "1.0",
                  "resource", resource, "path", path, "httpMethod", http_req_method(req), "headers",
                  v.last_header, "multiValueHeaders", v.mv_headers, "queryStringParameters",
                  or_null(v.last_query), "multiValueQueryStringParameters", or_null(v.mv_query),
                  "requestContext", rc, "pathParameters", or_null(ctx->path_parameters),
                  "stageVariables", or_null(ctx->stage_variables));
    if (ev)
        set_body(req, ev, 1);
    view_release(&v);
    return ev;
}

/*=== Response ===*/

void http_payload_response_init(struct http_payload_response *r)
{
    memset(r, 0, sizeof(*r));
    r->status = 200;
}

void http_payload_response_release(struct http_payload_response *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->names);
    free(r->values);
    buf_release(&r->body);
    memset(r, 0, sizeof(*r));
}

void http_payload_response_add(struct http_payload_response *r, const char *name, const char *value)
{
    char **n = realloc(r->names, (r->nheaders + 1) * sizeof(*n));
    if (!n)
        return;
    r->names = n;
    char **v = realloc(r->values, (r->nheaders + 1) * sizeof(*v));
    if (!v)
        return;
    r->values = v;
    n[r->nheaders] = strdup(name);
    v[r->nheaders] = strdup(value);
    if (!n[r->nheaders] || !v[r->nheaders]) {
        free(n[r->nheaders]);
        free(v[r->nheaders]);
        return;
    }
    r->nheaders++;
}

void http_payload_response_remove(struct http_payload_response *r, const char *name, int prefix)
{
    size_t j = 0, n = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++) {
        if (prefix ? strncasecmp(r->names[i], name, n) == 0 : strcasecmp(r->names[i], name) == 0) {
            free(r->names[i]);
            free(r->values[i]);
            continue;
        }
        r->names[j] = r->names[i];
        r->values[j] = r->values[i];
        j++;
    }
    r->nheaders = j;
}

void http_payload_response_set(struct http_payload_response *r, const char *name, const char *value)
{
    http_payload_response_remove(r, name, 0);
    if (value)
        http_payload_response_add(r, name, value);
}

const char *http_payload_response_get(const struct http_payload_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->names[i], name) == 0)
            return r->values[i];
    return NULL;
}

/* A header value as text: strings as they are, numbers and booleans
 * written out; NULL for anything else. */
static char *scalar_text(json_t *v)
{
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_integer(v) || json_is_real(v) || json_is_boolean(v))
        return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    return NULL;
}

/* A header the function may send: a token name (RFC 9110) and a value without CR, LF or NUL
 * (which would let it split the response or smuggle headers). */
static int valid_header(const char *name, const char *value)
{
    if (!name[0])
        return 0;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *c)))
            return 0;
    return !strpbrk(value, "\r\n");
}

/* Sets the header name: value from a JSON scalar; 0 (NULL and non-scalars
 * are skipped), or -1 when it would be malformed. add: append, else replace. */
static int header_from_json(struct http_payload_response *out, const char *name, json_t *v, int add)
{
    char *text = scalar_text(v);
    if (!text)
        return 0;
    int ok = strlen(text) == (json_is_string(v) ? json_string_length(v) : strlen(text)) &&
             valid_header(name, text);
    if (ok && add)
        http_payload_response_add(out, name, text);
    else if (ok)
        http_payload_response_set(out, name, text);
    free(text);
    return ok ? 0 : -1;
}

/* body and isBase64Encoded of doc into out->body; -1 on bad base64. */
static int body_from_json(json_t *doc, struct http_payload_response *out)
{
    json_t *body = json_object_get(doc, "body");
    if (json_is_string(body)) {
        if (json_is_true(json_object_get(doc, "isBase64Encoded")))
            return base64_decode(&out->body, json_string_value(body), json_string_length(body)) < 0
                       ? -1
                       : 0;
        buf_append(&out->body, json_string_value(body), json_string_length(body));
    } else if (body && !json_is_null(body)) {
        char *text = json_dumps(body, JSON_ENCODE_ANY | JSON_COMPACT);
        if (text)
            buf_puts(&out->body, text);
        free(text);
    }
    return 0;
}

int http_payload_v1_response(const char *result, size_t len, struct http_payload_response *out)
{
    json_t *doc = json_loadb(result, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    int rc = -1;
    json_t *status = json_object_get(doc, "statusCode");
    json_int_t code = json_integer_value(status);
    if (!json_is_object(doc) || !json_is_integer(status) || code < 100 || code > 599)
        goto out;
    out->status = (unsigned)code;
    json_t *mv = json_object_get(doc, "multiValueHeaders");
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(doc, "headers"), key, v)
    {
        if (json_object_get(mv, key)) /* multiValueHeaders' values win */
            continue;
        if (header_from_json(out, key, v, 0) < 0)
            goto out;
    }
    json_object_foreach(mv, key, v)
    {
        size_t i;
        json_t *item;
        if (!json_is_array(v))
            continue;
        json_array_foreach(v, i, item)
        {
            if (header_from_json(out, key, item, 1) < 0)
                goto out;
        }
    }
    if (!http_payload_response_get(out, "Content-Type"))
        http_payload_response_add(out, "Content-Type", "application/json");
    if (body_from_json(doc, out) < 0)
        goto out;
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

int http_payload_v2_response(const char *result, size_t len, struct http_payload_response *out)
{
    json_t *doc = json_loadb(result, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!doc)
        return -1;
    json_t *status = json_object_get(doc, "statusCode");
    if (!json_is_object(doc) || !status) {
        /* inferred: 200, application/json, the result as the body */
        out->status = 200;
        http_payload_response_set(out, "Content-Type", "application/json");
        if (json_is_string(doc))
            buf_append(&out->body, json_string_value(doc), json_string_length(doc));
        else
            buf_append(&out->body, result, len);
        json_decref(doc);
        return 0;
    }
    int rc = -1;
    json_int_t code = json_integer_value(status);
    if (!json_is_integer(status) || code < 100 || code > 599)
        goto out;
    out->status = (unsigned)code;
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(doc, "headers"), key, v)
    {
        if (header_from_json(out, key, v, 0) < 0) /* malformed: the caller answers 502 */
            goto out;
    }
    size_t i;
    json_array_foreach(json_object_get(doc, "cookies"), i, v)
    {
        if (!json_is_string(v))
            continue;
        if (strlen(json_string_value(v)) != json_string_length(v) ||
            !valid_header("Set-Cookie", json_string_value(v)))
            goto out;
        http_payload_response_add(out, "Set-Cookie", json_string_value(v));
    }
    if (!http_payload_response_get(out, "Content-Type"))
        http_payload_response_add(out, "Content-Type", "application/json");
    if (body_from_json(doc, out) < 0)
        goto out;
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

int http_payload_host_id(const char *host, const char *suffix, char *id, size_t max)
{
    if (!host)
        return -1;
    size_t n = strcspn(host, ".");
    if (n == 0 || n > max || !str_has_prefix(host + n, suffix))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)host[i]))
            return -1;
    memcpy(id, host, n);
    id[n] = '\0';
    return 0;
}

void http_payload_reply(struct http_req *req, struct http_payload_response *r)
{
    for (size_t i = 0; i < r->nheaders; i++)
        http_req_add_header(req, r->names[i], r->values[i]);
    size_t len;
    char *body = buf_detach(&r->body, &len);
    if (!body)
        http_reply(req, r->status, NULL, "", 0);
    else
        http_reply_take(req, r->status, NULL, body, len);
}

void http_payload_error(struct http_req *req, unsigned status, const char *type,
                        const char *message)
{
    char id[37];
    uuid_v4(id);
    http_req_add_header(req, "x-amzn-RequestId", id);
    if (type)
        http_req_add_header(req, "x-amzn-ErrorType", type);
    json_t *doc = json_pack("{s:o}", "Message", message ? json_string(message) : json_null());
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        http_reply(req, status, "application/json", "{}", 2);
    else
        http_reply_take(req, status, "application/json", text, strlen(text));
}
