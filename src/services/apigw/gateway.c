/*
 * gateway: serves HTTP APIs on the edge port. A request reaches us with an
 * API's Host (<api-id>.execute-api.<region>.localhost[:port], or any
 * <api-id>.execute-api.* host) or on the path form
 * /_ignis/api/<api-id>/<path>. Picks the stage (a first path segment naming
 * a stage other than $default, else $default), the route as API Gateway
 * does (exact paths before path parameters before greedy {proxy+}, a
 * method before ANY, $default last), builds the payload format 2.0 or 1.0
 * event (services/http/payload.c) and invokes the integration's function
 * through the Lambda service (lambda_invoke_sync: its concurrency
 * accounting and alias routing). Answers as API Gateway: 404
 * {"message":"Not Found"} without a route, 500 {"message":"Internal Server
 * Error"} for a function error, a missing function or a result that is no
 * response, 503 {"message":"Service Unavailable"} when the integration
 * times out (30 s, or its TimeoutInMillis) and 429 {"message":"Too Many
 * Requests"} when Lambda throttles. With a CorsConfiguration, answers
 * preflights itself (204, before routing) and sets the Access-Control-*
 * headers of answers, ignoring the integration's own (services/http/cors.c).
 * Owns only the requests in flight; the
 * API records are api.c's.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "services/apigw/apigw_internal.h"
#include "services/http/cors.h"
#include "services/http/payload.h"

#define MAX_SEGMENTS 64

/* One request waiting for its function. */
struct gw_call {
    struct loop *loop;
    struct http_req *req; /* NULL once answered (timed out) */
    struct loop_timer *timer;
    int v1;
    char request_id[24];
    json_t *cors; /* the API's corsConfiguration (a reference), or NULL */
    char *origin; /* the request's Origin, or NULL */
};

/* The api id of a "<id>.execute-api.<...>" host (copied into id), or -1. */
static int host_api_id(const char *host, char id[APIGW_ID_LEN + 1])
{
    return http_payload_host_id(host, ".execute-api.", id, APIGW_ID_LEN);
}

int apigw_host_match(struct http_req *req, void *arg)
{
    (void)arg;
    char id[APIGW_ID_LEN + 1];
    return host_api_id(http_req_header(req, "Host"), id) == 0;
}

/* API Gateway's own answers: {"message": message}, with its request id. */
static void gw_error(struct http_req *req, unsigned status, const char *message,
                     const char *request_id)
{
    http_req_add_header(req, "apigw-requestid", request_id);
    json_t *doc = json_pack("{s:s}", "message", message);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text)
        http_reply_take(req, status, "application/json", text, strlen(text));
    else
        http_reply(req, status, "application/json", "{}", 2);
}

/*=== Routing ===*/

/* A path split into percent-decoded segments ("/" has none). */
struct segments {
    char *s[MAX_SEGMENTS];
    size_t n;
    int too_many;
};

static void split_path(const char *path, struct segments *out, int decode)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(path, "/") == 0 || !*path)
        return;
    const char *p = path + (*path == '/');
    for (;;) {
        size_t n = strcspn(p, "/");
        if (out->n == MAX_SEGMENTS) {
            out->too_many = 1;
            return;
        }
        char *seg = strndup(p, n);
        if (seg && decode) {
            long m = percent_decode(seg, n);
            if (m >= 0)
                seg[m] = '\0';
        }
        out->s[out->n++] = seg ? seg : strdup("");
        if (!p[n])
            break;
        p += n + 1;
    }
}

static void segments_release(struct segments *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->s[i]);
}

/* How a route matched: per segment 2 literal, 1 {param}, 0 {greedy+}. */
struct match {
    json_t *route;
    unsigned char kind[MAX_SEGMENTS];
    size_t n;
    int greedy, any;
};

/* Whether a is more specific than b. */
static int better(const struct match *a, const struct match *b)
{
    if (!b->route)
        return 1;
    if (a->greedy != b->greedy)
        return !a->greedy;
    for (size_t i = 0; i < a->n && i < b->n; i++)
        if (a->kind[i] != b->kind[i])
            return a->kind[i] > b->kind[i];
    if (a->n != b->n)
        return a->n > b->n;
    return !a->any && b->any;
}

/* Matches "METHOD /path" against the request; fills m (and, with params,
 * the path parameters). */
static int route_matches(const char *key, const char *method, const struct segments *req,
                         const char *raw_path, struct match *m, json_t *params)
{
    size_t mlen = strcspn(key, " ");
    if (!key[mlen])
        return 0;
    m->any = mlen == 3 && strncmp(key, "ANY", 3) == 0;
    if (!m->any && (strlen(method) != mlen || strncmp(key, method, mlen) != 0))
        return 0;
    struct segments route;
    split_path(key + mlen + 1, &route, 0);
    int ok = !route.too_many;
    m->n = 0;
    m->greedy = 0;
    for (size_t i = 0; ok && i < route.n; i++) {
        const char *seg = route.s[i];
        size_t len = strlen(seg);
        if (seg[0] == '{' && len >= 3 && seg[len - 2] == '+') {
            /* greedy: the rest of the path, one segment at least */
            ok = i < req->n && req->s[i][0];
            if (ok && params) {
                /* the raw rest after i segments, decoded */
                const char *p = raw_path + (*raw_path == '/');
                for (size_t k = 0; k < i; k++)
                    p += strcspn(p, "/") + 1;
                char *rest = strdup(p);
                if (rest) {
                    long r = percent_decode(rest, strlen(rest));
                    if (r >= 0)
                        rest[r] = '\0';
                    char name[256];
                    snprintf(name, sizeof(name), "%.*s", (int)(len - 3), seg + 1);
                    json_object_set_new(params, name, json_string(rest));
                }
                free(rest);
            }
            m->kind[m->n++] = 0;
            m->greedy = 1;
            break;
        }
        if (i >= req->n) {
            ok = 0;
        } else if (seg[0] == '{') {
            ok = req->s[i][0] != '\0';
            if (ok && params) {
                char name[256];
                snprintf(name, sizeof(name), "%.*s", (int)(len - 2), seg + 1);
                json_object_set_new(params, name, json_string(req->s[i]));
            }
            m->kind[m->n++] = 1;
        } else {
            ok = strcmp(seg, req->s[i]) == 0;
            m->kind[m->n++] = 2;
        }
        if (ok && i == route.n - 1 && req->n != route.n)
            ok = 0; /* the request is longer than the route */
    }
    if (ok && route.n == 0 && req->n != 0)
        ok = 0; /* "/" matches only "/" */
    segments_release(&route);
    return ok;
}

/* The most specific route for method and path (a borrowed reference), its
 * path parameters into params; the $default route, else NULL. */
static json_t *find_route(json_t *routes, const char *method, const char *path, json_t *params)
{
    struct segments req;
    split_path(path, &req, 1);
    struct match best = {0}, m;
    json_t *fallback = NULL;
    const char *id;
    json_t *route;
    json_object_foreach(routes, id, route)
    {
        const char *key = json_string_value(json_object_get(route, "routeKey"));
        if (!key)
            continue;
        if (strcmp(key, "$default") == 0) {
            fallback = route;
            continue;
        }
        memset(&m, 0, sizeof(m));
        if (!req.too_many && route_matches(key, method, &req, path, &m, NULL) &&
            better(&m, &best)) {
            best = m;
            best.route = route;
        }
    }
    if (best.route)
        route_matches(json_string_value(json_object_get(best.route, "routeKey")), method, &req,
                      path, &m, params);
    segments_release(&req);
    return best.route ? best.route : fallback;
}

/*=== Invocation ===*/

static void call_free(struct gw_call *c)
{
    json_decref(c->cors);
    free(c->origin);
    free(c);
}

static void on_timeout(struct loop *loop, void *arg)
{
    (void)loop;
    struct gw_call *c = arg;
    c->timer = NULL;
    gw_error(c->req, 503, "Service Unavailable", c->request_id);
    c->req = NULL; /* the function's answer, if any, is dropped */
}

static void on_done(int ok, const char *result, size_t len, void *arg)
{
    struct gw_call *c = arg;
    if (!c->req) {
        call_free(c);
        return;
    }
    if (c->timer)
        loop_timer_cancel(c->loop, c->timer);
    struct http_payload_response r;
    http_payload_response_init(&r);
    int mapped = ok && (c->v1 ? http_payload_v1_response(result, len, &r)
                              : http_payload_v2_response(result, len, &r)) == 0;
    if (!mapped) {
        gw_error(c->req, 500, "Internal Server Error", c->request_id);
    } else {
        http_payload_response_add(&r, "apigw-requestid", c->request_id);
        struct http_cors cors;
        if (http_cors_from_json(&cors, c->cors, HTTP_CORS_CAMEL_CASE) == 0) {
            /* the integration's own CORS headers are ignored */
            http_cors_strip(&r);
            http_cors_response_headers(&r, &cors, c->origin);
        }
        http_payload_reply(c->req, &r);
    }
    http_payload_response_release(&r);
    call_free(c);
}

/* A preflight, answered by API Gateway itself whatever the routes: 204, with
 * the CORS headers when the origin and the requested method are allowed. */
static void cors_preflight(struct http_req *req, const struct http_cors *cors,
                           const char *request_id)
{
    struct http_payload_response r;
    http_payload_response_init(&r);
    r.status = 204;
    const char *allow = http_cors_allowed_origin(cors, http_req_header(req, "Origin"));
    if (allow &&
        http_cors_method_allowed(cors, http_req_header(req, "Access-Control-Request-Method")))
        http_cors_preflight_headers(&r, cors, allow);
    http_payload_response_add(&r, "apigw-requestid", request_id);
    http_payload_reply(req, &r);
    http_payload_response_release(&r);
}

/* The function a Lambda integration URI names: the URI itself, or the
 * ARN inside arn:aws:apigateway:...:lambda:path/2015-03-31/functions/<arn>/invocations. */
static void integration_function(const char *uri, char *out, size_t size)
{
    const char *p = strstr(uri, "/functions/");
    if (!str_has_prefix(uri, "arn:aws:apigateway:") || !p) {
        snprintf(out, size, "%s", uri);
        return;
    }
    p += strlen("/functions/");
    size_t n = strcspn(p, "/");
    snprintf(out, size, "%.*s", (int)n, p);
}

void apigw_serve(struct http_req *req, const struct edge_auth *auth, void *arg)
{
    (void)auth;
    struct apigw *gw = arg;
    char request_id[24], id[APIGW_ID_LEN + 1], domain[256];
    unsigned char rnd[11];
    random_bytes(rnd, sizeof(rnd));
    struct buf b64 = BUF_INIT;
    base64_encode(&b64, rnd, sizeof(rnd));
    snprintf(request_id, sizeof(request_id), "%s", b64.data ? b64.data : "");
    buf_release(&b64);

    const char *path = http_req_path(req);
    const char *host = http_req_header(req, "Host");
    if (host_api_id(host, id) == 0) {
        snprintf(domain, sizeof(domain), "%.*s", (int)strcspn(host, ":"), host);
    } else {
        /* the path form: /_ignis/api/<id>[/<path>] */
        const char *p = path + strlen(APIGW_PATH_PREFIX);
        size_t n = strcspn(p, "/");
        if (n == 0 || n > APIGW_ID_LEN)
            return gw_error(req, 404, "Not Found", request_id);
        memcpy(id, p, n);
        id[n] = '\0';
        path = p[n] ? p + n : "/";
        snprintf(domain, sizeof(domain), "%s.execute-api.%s.localhost", id, gw->cfg->region);
    }
    json_t *rec = json_object_get(gw->apis, id);
    json_t *stages = json_object_get(rec, "stages");
    if (!rec ||
        json_is_true(json_object_get(json_object_get(rec, "api"), "disableExecuteApiEndpoint")))
        return gw_error(req, 404, "Not Found", request_id);
    /* the stage: /<stage>/... for a named one, else $default */
    char stage_name[129];
    size_t n = strcspn(path + 1, "/");
    snprintf(stage_name, sizeof(stage_name), "%.*s", (int)(n < 128 ? n : 128), path + 1);
    const char *route_path = path;
    json_t *stage = NULL;
    if (n > 0 && strcmp(stage_name, "$default") != 0 &&
        (stage = json_object_get(stages, stage_name)))
        route_path = path[1 + n] ? path + 1 + n : "/";
    else if ((stage = json_object_get(stages, "$default")))
        snprintf(stage_name, sizeof(stage_name), "$default");
    if (!stage)
        return gw_error(req, 404, "Not Found", request_id);
    json_t *cors_doc = json_object_get(json_object_get(rec, "api"), "corsConfiguration");
    struct http_cors cors;
    if (http_cors_from_json(&cors, cors_doc, HTTP_CORS_CAMEL_CASE) == 0 &&
        http_cors_is_preflight(req))
        return cors_preflight(req, &cors, request_id);
    if (http_req_body_too_large(req))
        return gw_error(req, 413, "Request Entity Too Large", request_id);

    json_t *params = json_object();
    json_t *route =
        find_route(json_object_get(rec, "routes"), http_req_method(req), route_path, params);
    const char *target = json_string_value(json_object_get(route, "target"));
    json_t *integ = target && str_has_prefix(target, "integrations/")
                        ? json_object_get(json_object_get(rec, "integrations"),
                                          target + strlen("integrations/"))
                        : NULL;
    if (!route || !integ) {
        json_decref(params);
        return gw_error(req, 404, "Not Found", request_id);
    }
    const char *route_key = json_string_value(json_object_get(route, "routeKey"));
    const char *version = json_string_value(json_object_get(integ, "payloadFormatVersion"));
    int v1 = version && strcmp(version, "1.0") == 0;
    const char *resource = strchr(route_key, ' ') ? strchr(route_key, ' ') + 1 : route_key;
    struct http_payload_ctx ctx = {
        .raw_path = path,
        .route_key = route_key,
        .stage = stage_name,
        .account_id = gw->cfg->account_id,
        .api_id = id,
        .domain_name = domain,
        .domain_prefix = id,
        .request_id = request_id,
        .now_ms = now_ms(),
        .path_parameters = params,
        .stage_variables = json_object_get(stage, "stageVariables"),
        .resource = resource,
        .path = path,
    };
    json_t *ev = v1 ? http_payload_v1_event(req, &ctx) : http_payload_v2_event(req, &ctx);
    json_decref(params);
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    struct gw_call *c = text ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
        free(text);
        return gw_error(req, 500, "Internal Server Error", request_id);
    }
    c->loop = gw->loop;
    c->req = req;
    c->v1 = v1;
    c->cors = json_incref(cors_doc);
    const char *origin = http_req_header(req, "Origin");
    c->origin = origin ? strdup(origin) : NULL;
    snprintf(c->request_id, sizeof(c->request_id), "%s", request_id);
    json_int_t timeout = json_integer_value(json_object_get(integ, "timeoutInMillis"));
    c->timer = loop_timer_add(gw->loop, timeout > 0 ? timeout : APIGW_TIMEOUT_MS, on_timeout, c);
    char fn[2048];
    integration_function(json_string_value(json_object_get(integ, "integrationUri")), fn,
                         sizeof(fn));
    int rc = lambda_invoke_sync(gw->lambda, fn, NULL, text, strlen(text), on_done, c);
    free(text);
    if (rc < 0) {
        if (c->timer)
            loop_timer_cancel(gw->loop, c->timer);
        call_free(c);
        if (rc == -EBUSY)
            gw_error(req, 429, "Too Many Requests", request_id);
        else
            gw_error(req, 500, "Internal Server Error", request_id);
    }
}
