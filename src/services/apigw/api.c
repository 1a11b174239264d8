/*
 * api: the apigatewayv2 control plane for HTTP APIs (rest-json under /v2/,
 * as the aws CLI v2 and boto3 call it): Create/Get/Update/Delete Api and
 * GetApis (quick create with Target: a managed AWS_PROXY integration, its
 * route and an auto-deployed $default stage), Create/Get/Update/Delete
 * Route(s), Integration(s) and Create/Get/Delete Stage(s). Every change
 * writes the API's whole record to the db. Owns the records in gw->apis;
 * not the serving of the APIs (gateway.c). Errors are
 * NotFoundException (404), BadRequestException (400) and
 * ConflictException (409) with a "message", as the service's model has them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "services/apigw/apigw_internal.h"

#define BAD(req, ...) aws_error(req, AWS_REST_JSON, 400, "BadRequestException", __VA_ARGS__)
#define CONFLICT(req, ...) aws_error(req, AWS_REST_JSON, 409, "ConflictException", __VA_ARGS__)
#define NOT_FOUND(req, ...) aws_error(req, AWS_REST_JSON, 404, "NotFoundException", __VA_ARGS__)

/*=== Helpers ===*/

static void random_id(char *out, size_t n)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[16];
    random_bytes(rnd, n);
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[rnd[i] % 36];
    out[n] = '\0';
}

/* "2020-06-09T18:36:12Z", as the service writes its dates. */
static json_t *now_date(void)
{
    time_t t = time(NULL);
    struct tm tm;
    char out[32];
    gmtime_r(&t, &tm);
    strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(out);
}

static json_t *parse_body(struct http_req *req)
{
    size_t len;
    const char *body = http_req_body(req, &len);
    json_t *doc = len ? json_loadb(body, len, 0, NULL) : json_object();
    if (!json_is_object(doc)) {
        json_decref(doc);
        BAD(req, "Could not parse request body into json");
        return NULL;
    }
    return doc;
}

/* A string member (NULL when absent); -1 after answering when it is not a string. */
static int opt_string(struct http_req *req, json_t *body, const char *key, const char **out)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        BAD(req, "Invalid value for %s", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int apigw_save(struct apigw *gw, const char *id)
{
    json_t *rec = json_object_get(gw->apis, id);
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    int rc = text ? db_http_api_put(gw->db, id, text) : -ENOMEM;
    free(text);
    if (rc < 0)
        log_error("cannot store HTTP API %s", id);
    return rc;
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Answers GetApis, GetRoutes, GetIntegrations or GetStages: the members of
 * obj (borrowed) ordered by key (id or stage name), those after the
 * nextToken (the base64 of the last key of the previous page, so that
 * changes between pages neither repeat nor skip what stays), at most
 * maxResults of them (no limit without it), and a nextToken when more
 * remain.
 */
static void reply_page(struct http_req *req, json_t *obj)
{
    const char *max_text = http_req_query(req, "maxResults");
    const char *token = http_req_query(req, "nextToken");
    char *end, *after = NULL;
    long max = max_text ? strtol(max_text, &end, 10) : 0;
    if (max_text && (!*max_text || *end || max < 1))
        return BAD(req, "Invalid value for maxResults: %s", max_text);
    if (token && *token) {
        struct buf b = BUF_INIT;
        if (base64_decode(&b, token, strlen(token)) < 0 || !b.len ||
            !(after = strndup(b.data, b.len))) {
            buf_release(&b);
            return BAD(req, "Invalid nextToken");
        }
        buf_release(&b);
    }
    size_t n = 0, count = json_object_size(obj);
    const char **keys = malloc((count ? count : 1) * sizeof(*keys));
    json_t *items = json_array();
    if (!keys || !items) {
        free(keys);
        free(after);
        json_decref(items);
        return aws_error(req, AWS_REST_JSON, 500, "InternalServerErrorException", "out of memory");
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!after || strcmp(key, after) > 0)
            keys[n++] = key;
    }
    qsort(keys, n, sizeof(*keys), compare_keys);
    size_t shown = max_text && (size_t)max < n ? (size_t)max : n;
    for (size_t i = 0; i < shown; i++)
        json_array_append(items, json_object_get(obj, keys[i]));
    json_t *doc = json_pack("{s:o}", "items", items);
    if (shown < n) {
        struct buf next = BUF_INIT;
        base64_encode(&next, keys[shown - 1], strlen(keys[shown - 1]));
        json_object_set_new(doc, "nextToken", json_string(next.data ? next.data : ""));
        buf_release(&next);
    }
    free(keys);
    free(after);
    aws_reply_json(req, 200, doc);
}

static void reply_copy(struct http_req *req, unsigned status, json_t *doc)
{
    aws_reply_json(req, status, json_deep_copy(doc));
}

static void set_string(json_t *doc, const char *key, const char *value)
{
    if (value)
        json_object_set_new(doc, key, json_string(value));
}

/*=== Validation ===*/

/* "$default", or "METHOD /path" with {param} segments and a last {greedy+}. */
static int valid_route_key(const char *key)
{
    if (strcmp(key, "$default") == 0)
        return 1;
    static const char *const methods[] = {"ANY",    "GET",   "POST", "PUT",
                                          "DELETE", "PATCH", "HEAD", "OPTIONS"};
    size_t n = strcspn(key, " ");
    int ok = 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i]) == n && strncmp(key, methods[i], n) == 0)
            ok = 1;
    const char *path = key + n;
    if (!ok || *path != ' ' || path[1] != '/')
        return 0;
    path++;
    if (strcmp(path, "/") == 0)
        return 1;
    while (*path == '/') {
        path++;
        size_t m = strcspn(path, "/");
        if (m == 0 || memchr(path, ' ', m))
            return 0;
        if (path[0] == '{') {
            int greedy = m >= 3 && path[m - 2] == '+';
            if (path[m - 1] != '}' || m < 3 + (size_t)greedy || (greedy && path[m] != '\0'))
                return 0;
        } else if (memchr(path, '{', m) || memchr(path, '}', m)) {
            return 0;
        }
        path += m;
    }
    return *path == '\0';
}

/* The function ARN of an AWS_PROXY integration URI: a Lambda function ARN
 * (maybe qualified) or API Gateway's
 * arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<arn>/invocations. */
static int valid_integration_uri(const char *uri)
{
    return str_has_prefix(uri, "arn:aws:lambda:") ||
           (str_has_prefix(uri, "arn:aws:apigateway:") && strstr(uri, ":lambda:path/") &&
            strstr(uri, "/functions/arn:aws:lambda:"));
}

/*=== Integrations ===*/

/* Applies CreateIntegration/UpdateIntegration members of body to integ;
 * -1 after answering. */
static int apply_integration(struct http_req *req, json_t *integ, json_t *body, int creating)
{
    const char *type, *uri, *version, *desc, *method;
    if (opt_string(req, body, "integrationType", &type) < 0 ||
        opt_string(req, body, "integrationUri", &uri) < 0 ||
        opt_string(req, body, "payloadFormatVersion", &version) < 0 ||
        opt_string(req, body, "description", &desc) < 0 ||
        opt_string(req, body, "integrationMethod", &method) < 0)
        return -1;
    if (creating && !type) {
        BAD(req, "IntegrationType is required");
        return -1;
    }
    if (type && strcmp(type, "AWS_PROXY") != 0) {
        BAD(req,
            "Ignis supports only AWS_PROXY integrations with Lambda functions; "
            "IntegrationType %s is not supported",
            type);
        return -1;
    }
    if (creating && !uri) {
        BAD(req, "IntegrationUri is required for AWS_PROXY integrations");
        return -1;
    }
    if (uri && !valid_integration_uri(uri)) {
        BAD(req, "Invalid integration URI specified: %s. Ignis supports Lambda function ARNs", uri);
        return -1;
    }
    if (version && strcmp(version, "1.0") != 0 && strcmp(version, "2.0") != 0) {
        BAD(req, "Invalid payload format version specified: %s. Must be 1.0 or 2.0", version);
        return -1;
    }
    json_t *timeout = json_object_get(body, "timeoutInMillis");
    if (timeout && (!json_is_integer(timeout) || json_integer_value(timeout) < 50 ||
                    json_integer_value(timeout) > APIGW_TIMEOUT_MS)) {
        BAD(req, "Timeout must be between 50 milliseconds and 30000 milliseconds");
        return -1;
    }
    set_string(integ, "integrationType", type);
    set_string(integ, "integrationUri", uri);
    set_string(integ, "description", desc);
    set_string(integ, "integrationMethod", method);
    set_string(integ, "payloadFormatVersion", version);
    if (timeout)
        json_object_set(integ, "timeoutInMillis", timeout);
    if (creating && !json_object_get(integ, "payloadFormatVersion"))
        json_object_set_new(integ, "payloadFormatVersion", json_string("2.0"));
    return 0;
}

static json_t *new_integration(json_t *rec)
{
    char id[8];
    do
        random_id(id, 7);
    while (json_object_get(json_object_get(rec, "integrations"), id));
    json_t *integ =
        json_pack("{s:s, s:s, s:s, s:s, s:i}", "connectionType", "INTERNET", "integrationId", id,
                  "integrationMethod", "POST", "integrationResponseSelectionExpression",
                  "${integration.response.statuscode}", "timeoutInMillis", APIGW_TIMEOUT_MS);
    json_object_set(json_object_get(rec, "integrations"), id, integ);
    json_decref(integ);
    return integ;
}

static void integrations_op(struct apigw *gw, struct http_req *req, const char *method,
                            const char *api_id, json_t *rec, const char *id)
{
    json_t *all = json_object_get(rec, "integrations");
    if (!id) {
        if (strcmp(method, "GET") == 0)
            return reply_page(req, all);
        if (strcmp(method, "POST") != 0)
            return BAD(req, "Unsupported method %s", method);
        json_t *body = parse_body(req);
        if (!body)
            return;
        json_t *integ = new_integration(rec);
        if (apply_integration(req, integ, body, 1) < 0) {
            json_object_del(all, json_string_value(json_object_get(integ, "integrationId")));
        } else {
            apigw_save(gw, api_id);
            reply_copy(req, 201, integ);
        }
        json_decref(body);
        return;
    }
    json_t *integ = json_object_get(all, id);
    if (!integ)
        return NOT_FOUND(req, "Invalid Integration identifier specified %s:%s:%s",
                         gw->cfg->account_id, api_id, id);
    if (strcmp(method, "GET") == 0)
        return reply_copy(req, 200, integ);
    if (strcmp(method, "DELETE") == 0) {
        if (json_is_true(json_object_get(integ, "apiGatewayManaged")))
            return CONFLICT(req, "Cannot delete an integration that is managed by API Gateway "
                                 "(created by quick create)");
        json_object_del(all, id);
        apigw_save(gw, api_id);
        return http_reply(req, 204, NULL, "", 0);
    }
    if (strcmp(method, "PATCH") != 0)
        return BAD(req, "Unsupported method %s", method);
    json_t *body = parse_body(req);
    if (!body)
        return;
    json_t *copy = json_deep_copy(integ);
    if (apply_integration(req, copy, body, 0) == 0) {
        json_object_set(all, id, copy);
        apigw_save(gw, api_id);
        reply_copy(req, 200, copy);
    }
    json_decref(copy);
    json_decref(body);
}

/*=== Routes ===*/

static int route_key_taken(json_t *routes, const char *key, const char *except)
{
    const char *id;
    json_t *r;
    json_object_foreach(routes, id, r)
    {
        if ((!except || strcmp(id, except) != 0) &&
            strcmp(json_string_value(json_object_get(r, "routeKey")), key) == 0)
            return 1;
    }
    return 0;
}

/* Applies CreateRoute/UpdateRoute members; -1 after answering. */
static int apply_route(struct http_req *req, json_t *rec, json_t *route, json_t *body,
                       const char *route_id)
{
    const char *key, *target, *auth;
    if (opt_string(req, body, "routeKey", &key) < 0 ||
        opt_string(req, body, "target", &target) < 0 ||
        opt_string(req, body, "authorizationType", &auth) < 0)
        return -1;
    if (!route_id && !key) {
        BAD(req, "RouteKey is required");
        return -1;
    }
    if (key && !valid_route_key(key)) {
        BAD(req,
            "Unable to create route. Invalid route key: '%s'. A route key is $default or "
            "an HTTP method (or ANY), a space and a path starting with /",
            key);
        return -1;
    }
    if (key && route_key_taken(json_object_get(rec, "routes"), key, route_id)) {
        CONFLICT(req, "Unable to create route %s. A route with this key already exists", key);
        return -1;
    }
    if (target && (!str_has_prefix(target, "integrations/") ||
                   !json_object_get(json_object_get(rec, "integrations"),
                                    target + strlen("integrations/")))) {
        BAD(req,
            "Invalid target specified: %s. A target is integrations/<integration id> of "
            "an integration of this API",
            target);
        return -1;
    }
    if (auth && strcmp(auth, "NONE") != 0) {
        BAD(req, "Ignis supports only AuthorizationType NONE");
        return -1;
    }
    set_string(route, "routeKey", key);
    set_string(route, "target", target);
    return 0;
}

static json_t *new_route(json_t *rec)
{
    char id[8];
    do
        random_id(id, 7);
    while (json_object_get(json_object_get(rec, "routes"), id));
    json_t *route = json_pack("{s:b, s:s, s:s}", "apiKeyRequired", 0, "authorizationType", "NONE",
                              "routeId", id);
    json_object_set(json_object_get(rec, "routes"), id, route);
    json_decref(route);
    return route;
}

static void routes_op(struct apigw *gw, struct http_req *req, const char *method,
                      const char *api_id, json_t *rec, const char *id)
{
    json_t *all = json_object_get(rec, "routes");
    if (!id) {
        if (strcmp(method, "GET") == 0)
            return reply_page(req, all);
        if (strcmp(method, "POST") != 0)
            return BAD(req, "Unsupported method %s", method);
        json_t *body = parse_body(req);
        if (!body)
            return;
        json_t *route = json_object();
        if (apply_route(req, rec, route, body, NULL) == 0) {
            json_t *made = new_route(rec);
            json_object_update(made, route);
            apigw_save(gw, api_id);
            reply_copy(req, 201, made);
        }
        json_decref(route);
        json_decref(body);
        return;
    }
    json_t *route = json_object_get(all, id);
    if (!route)
        return NOT_FOUND(req, "Invalid Route identifier specified %s:%s:%s", gw->cfg->account_id,
                         api_id, id);
    if (strcmp(method, "GET") == 0)
        return reply_copy(req, 200, route);
    if (strcmp(method, "DELETE") == 0) {
        json_object_del(all, id);
        apigw_save(gw, api_id);
        return http_reply(req, 204, NULL, "", 0);
    }
    if (strcmp(method, "PATCH") != 0)
        return BAD(req, "Unsupported method %s", method);
    json_t *body = parse_body(req);
    if (!body)
        return;
    json_t *copy = json_deep_copy(route);
    if (apply_route(req, rec, copy, body, id) == 0) {
        json_object_set(all, id, copy);
        apigw_save(gw, api_id);
        reply_copy(req, 200, copy);
    }
    json_decref(copy);
    json_decref(body);
}

/*=== Stages ===*/

static json_t *new_stage(const char *name, int auto_deploy)
{
    json_t *d = now_date();
    return json_pack("{s:b, s:O, s:{s:b}, s:o, s:{}, s:s, s:{}, s:{}}", "autoDeploy", auto_deploy,
                     "createdDate", d, "defaultRouteSettings", "detailedMetricsEnabled", 0,
                     "lastUpdatedDate", d, "routeSettings", "stageName", name, "stageVariables",
                     "tags");
}

/* Stage names: $default, or what can sit in a URL path. */
static int valid_stage_name(const char *name)
{
    if (strcmp(name, "$default") == 0)
        return 1;
    if (!*name || strlen(name) > 128)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return 0;
    return 1;
}

static void stages_op(struct apigw *gw, struct http_req *req, const char *method,
                      const char *api_id, json_t *rec, const char *name)
{
    json_t *all = json_object_get(rec, "stages");
    if (!name) {
        if (strcmp(method, "GET") == 0)
            return reply_page(req, all);
        if (strcmp(method, "POST") != 0)
            return BAD(req, "Unsupported method %s", method);
        json_t *body = parse_body(req);
        if (!body)
            return;
        const char *stage_name;
        json_t *vars = json_object_get(body, "stageVariables");
        if (opt_string(req, body, "stageName", &stage_name) < 0) {
        } else if (!stage_name) {
            BAD(req, "StageName is required");
        } else if (!valid_stage_name(stage_name)) {
            BAD(req, "Stage name only allows a-zA-Z0-9_- or $default: %s", stage_name);
        } else if (json_object_get(all, stage_name)) {
            CONFLICT(req, "Stage already exist");
        } else if (vars && !json_is_object(vars)) {
            BAD(req, "Invalid value for stageVariables");
        } else {
            json_t *stage =
                new_stage(stage_name, json_is_true(json_object_get(body, "autoDeploy")));
            const char *desc;
            if (vars)
                json_object_set(stage, "stageVariables", vars);
            if (opt_string(req, body, "description", &desc) == 0) {
                set_string(stage, "description", desc);
                json_object_set(all, stage_name, stage);
                apigw_save(gw, api_id);
                reply_copy(req, 201, stage);
            }
            json_decref(stage);
        }
        json_decref(body);
        return;
    }
    json_t *stage = json_object_get(all, name);
    if (!stage)
        return NOT_FOUND(req, "Invalid stage identifier specified");
    if (strcmp(method, "GET") == 0)
        return reply_copy(req, 200, stage);
    if (strcmp(method, "DELETE") == 0) {
        json_object_del(all, name);
        apigw_save(gw, api_id);
        return http_reply(req, 204, NULL, "", 0);
    }
    BAD(req, "Ignis does not support UpdateStage yet");
}

/*=== APIs ===*/

/* http://<id>.execute-api.<region>.localhost:<the port req reached us on> */
static void api_endpoint(struct apigw *gw, struct http_req *req, const char *id, char *out,
                         size_t size)
{
    int port = edge_socket_port(http_req_fd(req));
    snprintf(out, size, "http://%s.execute-api.%s.localhost:%d", id, gw->cfg->region,
             port > 0 ? port : gw->cfg->listen_port);
}

/* An Api document as answered (a new reference): its endpoint on req's port. */
static json_t *api_view(struct apigw *gw, struct http_req *req, json_t *api)
{
    char endpoint[256];
    json_t *view = json_deep_copy(api);
    api_endpoint(gw, req, json_string_value(json_object_get(api, "apiId")), endpoint,
                 sizeof(endpoint));
    json_object_set_new(view, "apiEndpoint", json_string(endpoint));
    return view;
}

/* A Cors document: its lists are arrays of strings, maxAge -1..86400. */
static int valid_cors(json_t *cors)
{
    static const char *const lists[] = {"allowHeaders", "allowMethods", "allowOrigins",
                                        "exposeHeaders"};
    if (!json_is_object(cors))
        return 0;
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        json_t *list = json_object_get(cors, lists[i]), *v;
        size_t k;
        if (list && !json_is_array(list))
            return 0;
        json_array_foreach(list, k, v) if (!json_is_string(v)) return 0;
    }
    json_t *age = json_object_get(cors, "maxAge");
    json_t *creds = json_object_get(cors, "allowCredentials");
    return (!age || (json_is_integer(age) && json_integer_value(age) >= -1 &&
                     json_integer_value(age) <= 86400)) &&
           (!creds || json_is_boolean(creds));
}

/* Applies CreateApi/UpdateApi members (name, description, version,
 * corsConfiguration, disableExecuteApiEndpoint); -1 after answering. */
static int apply_api(struct http_req *req, json_t *api, json_t *body)
{
    const char *name, *desc, *version;
    if (opt_string(req, body, "name", &name) < 0 ||
        opt_string(req, body, "description", &desc) < 0 ||
        opt_string(req, body, "version", &version) < 0)
        return -1;
    if (name && (!*name || strlen(name) > 128)) {
        BAD(req, "Name must be between 1 and 128 characters");
        return -1;
    }
    json_t *cors = json_object_get(body, "corsConfiguration");
    if (cors && !valid_cors(cors)) {
        BAD(req, "Invalid value for corsConfiguration");
        return -1;
    }
    set_string(api, "name", name);
    set_string(api, "description", desc);
    set_string(api, "version", version);
    if (cors)
        json_object_set(api, "corsConfiguration", cors);
    json_t *disable = json_object_get(body, "disableExecuteApiEndpoint");
    if (json_is_boolean(disable))
        json_object_set(api, "disableExecuteApiEndpoint", disable);
    return 0;
}

static void create_api(struct apigw *gw, struct http_req *req)
{
    json_t *body = parse_body(req);
    if (!body)
        return;
    const char *name, *protocol, *target, *route_key;
    json_t *tags = json_object_get(body, "tags");
    if (opt_string(req, body, "name", &name) < 0 ||
        opt_string(req, body, "protocolType", &protocol) < 0 ||
        opt_string(req, body, "target", &target) < 0 ||
        opt_string(req, body, "routeKey", &route_key) < 0)
        goto out;
    if (!name || !protocol) {
        BAD(req, "%s is required", !name ? "Name" : "ProtocolType");
        goto out;
    }
    if (strcmp(protocol, "WEBSOCKET") == 0) {
        BAD(req, "Ignis supports only HTTP APIs: ProtocolType WEBSOCKET is not supported");
        goto out;
    }
    if (strcmp(protocol, "HTTP") != 0) {
        BAD(req, "Invalid protocol type specified: %s", protocol);
        goto out;
    }
    if (route_key && !target) {
        BAD(req, "RouteKey can only be specified with Target (quick create)");
        goto out;
    }
    if (route_key && !valid_route_key(route_key)) {
        BAD(req, "Invalid route key: '%s'", route_key);
        goto out;
    }
    if (target && !valid_integration_uri(target)) {
        BAD(req, "Invalid target specified: %s. Ignis supports Lambda function ARNs", target);
        goto out;
    }
    if (tags && !json_is_object(tags)) {
        BAD(req, "Invalid value for tags");
        goto out;
    }
    char id[APIGW_ID_LEN + 1], endpoint[256];
    do
        random_id(id, APIGW_ID_LEN);
    while (json_object_get(gw->apis, id));
    api_endpoint(gw, req, id, endpoint, sizeof(endpoint));
    json_t *empty = json_object();
    json_t *api = json_pack("{s:s, s:s, s:s, s:o, s:b, s:s, s:s, s:O}", "apiEndpoint", endpoint,
                            "apiId", id, "apiKeySelectionExpression", "$request.header.x-api-key",
                            "createdDate", now_date(), "disableExecuteApiEndpoint", 0,
                            "protocolType", "HTTP", "routeSelectionExpression",
                            "$request.method $request.path", "tags", tags ? tags : empty);
    json_decref(empty);
    json_t *rec =
        json_pack("{s:o, s:{}, s:{}, s:{}}", "api", api, "routes", "integrations", "stages");
    if (apply_api(req, api, body) < 0) {
        json_decref(rec);
        goto out;
    }
    if (target) {
        /* quick create: a managed integration, its route and an auto-deployed $default stage */
        json_t *integ = new_integration(rec);
        json_object_set_new(integ, "apiGatewayManaged", json_true());
        json_object_set_new(integ, "integrationType", json_string("AWS_PROXY"));
        json_object_set_new(integ, "integrationUri", json_string(target));
        json_object_set_new(integ, "payloadFormatVersion", json_string("2.0"));
        json_t *route = new_route(rec);
        char tgt[64];
        snprintf(tgt, sizeof(tgt), "integrations/%s",
                 json_string_value(json_object_get(integ, "integrationId")));
        json_object_set_new(route, "apiGatewayManaged", json_true());
        json_object_set_new(route, "routeKey", json_string(route_key ? route_key : "$default"));
        json_object_set_new(route, "target", json_string(tgt));
        json_t *stage = new_stage("$default", 1);
        json_object_set_new(stage, "apiGatewayManaged", json_true());
        json_object_set_new(json_object_get(rec, "stages"), "$default", stage);
    }
    json_object_set_new(gw->apis, id, rec);
    if (apigw_save(gw, id) < 0) {
        json_object_del(gw->apis, id);
        aws_error(req, AWS_REST_JSON, 500, "InternalServerErrorException",
                  "could not store the API");
        goto out;
    }
    aws_reply_json(req, 201, api_view(gw, req, api));
out:
    json_decref(body);
}

static void api_op(struct apigw *gw, struct http_req *req, const char *method, const char *id,
                   json_t *rec)
{
    json_t *api = json_object_get(rec, "api");
    if (strcmp(method, "GET") == 0)
        return aws_reply_json(req, 200, api_view(gw, req, api));
    if (strcmp(method, "DELETE") == 0) {
        if (db_http_api_delete(gw->db, id) < 0)
            return aws_error(req, AWS_REST_JSON, 500, "InternalServerErrorException",
                             "could not delete the API");
        json_object_del(gw->apis, id);
        return http_reply(req, 204, NULL, "", 0);
    }
    if (strcmp(method, "PATCH") != 0)
        return BAD(req, "Unsupported method %s", method);
    json_t *body = parse_body(req);
    if (!body)
        return;
    json_t *copy = json_deep_copy(api);
    if (apply_api(req, copy, body) == 0) {
        json_object_set(rec, "api", copy);
        apigw_save(gw, id);
        aws_reply_json(req, 200, api_view(gw, req, copy));
    }
    json_decref(copy);
    json_decref(body);
}

/*=== Dispatch ===*/

/* The next path segment, percent-decoded, into out; NULL at the end. */
static const char *next_segment(const char *p, char *out, size_t size)
{
    if (!p || *p != '/' || !p[1])
        return NULL;
    p++;
    size_t n = strcspn(p, "/");
    if (n >= size)
        n = size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    long m = percent_decode(out, n);
    if (m < 0)
        return NULL;
    out[m] = '\0';
    return p + strcspn(p, "/");
}

void apigw_handle(struct http_req *req, const struct edge_auth *auth, void *arg)
{
    (void)auth;
    struct apigw *gw = arg;
    const char *method = http_req_method(req);
    const char *path = http_req_path(req);
    char seg[4][256];
    int n = 0;
    const char *p = str_has_prefix(path, "/v2/apis") ? path + strlen("/v2") : NULL;
    while (p && n < 4 && (p = next_segment(p, seg[n], sizeof(seg[n]))))
        n++;
    if (n == 0 || strcmp(seg[0], "apis") != 0 || (p && *p && strcmp(p, "/") != 0)) {
        aws_error(req, AWS_REST_JSON, 404, "NotFoundException", "Ignis does not implement %s %s",
                  method, path);
        return;
    }
    if (http_req_body_too_large(req)) {
        aws_error(req, AWS_REST_JSON, 413, "BadRequestException", "Request body too large");
        return;
    }
    if (n == 1) {
        if (strcmp(method, "POST") == 0)
            return create_api(gw, req);
        if (strcmp(method, "GET") == 0) {
            json_t *apis = json_object();
            const char *id;
            json_t *rec;
            json_object_foreach(gw->apis, id, rec)
                json_object_set_new(apis, id, api_view(gw, req, json_object_get(rec, "api")));
            reply_page(req, apis);
            json_decref(apis);
            return;
        }
        return BAD(req, "Unsupported method %s", method);
    }
    json_t *rec = json_object_get(gw->apis, seg[1]);
    if (!rec)
        return NOT_FOUND(req, "Invalid API identifier specified %s:%s", gw->cfg->account_id,
                         seg[1]);
    if (n == 2)
        return api_op(gw, req, method, seg[1], rec);
    const char *sub = n == 4 ? seg[3] : NULL;
    if (strcmp(seg[2], "routes") == 0)
        return routes_op(gw, req, method, seg[1], rec, sub);
    if (strcmp(seg[2], "integrations") == 0)
        return integrations_op(gw, req, method, seg[1], rec, sub);
    if (strcmp(seg[2], "stages") == 0)
        return stages_op(gw, req, method, seg[1], rec, sub);
    aws_error(req, AWS_REST_JSON, 404, "NotFoundException", "Ignis does not implement %s %s",
              method, path);
}

/*=== Lifecycle ===*/

static void load_one(const char *id, const char *record, void *arg)
{
    struct apigw *gw = arg;
    json_t *rec = json_loads(record, 0, NULL);
    if (!json_is_object(rec) || !json_is_object(json_object_get(rec, "api"))) {
        log_error("HTTP API %s: unreadable record, skipped", id);
        json_decref(rec);
        return;
    }
    json_object_set_new(gw->apis, id, rec);
}

struct apigw *apigw_new(struct loop *loop, const struct config *cfg, struct db *db,
                        struct lambda *lambda)
{
    struct apigw *gw = calloc(1, sizeof(*gw));
    if (!gw)
        return NULL;
    gw->loop = loop;
    gw->cfg = cfg;
    gw->db = db;
    gw->lambda = lambda;
    gw->apis = json_object();
    if (!gw->apis || db_http_api_foreach(db, load_one, gw) < 0) {
        log_error("cannot load the HTTP APIs");
        apigw_free(gw);
        return NULL;
    }
    log_info("loaded %zu HTTP API(s)", json_object_size(gw->apis));
    return gw;
}

static size_t data_body_cap(struct http_req *req, void *arg)
{
    (void)req;
    (void)arg;
    return APIGW_BODY_MAX;
}

int apigw_register(struct apigw *gw, struct edge *edge)
{
    struct edge_route api = {
        .service = "apigateway",
        .path_prefix = "/v2/",
        .proto = AWS_REST_JSON,
        .handle = apigw_handle,
        .arg = gw,
    };
    /* the APIs: by Host (<api-id>.execute-api.<region>.localhost), or on /_ignis/api/<api-id>/ */
    struct edge_route by_host = {
        .public = 1,
        .match = apigw_host_match,
        .proto = AWS_REST_JSON,
        .handle = apigw_serve,
        .body_cap = data_body_cap,
        .arg = gw,
    };
    struct edge_route by_path = by_host;
    by_path.match = NULL;
    by_path.path_prefix = APIGW_PATH_PREFIX;
    int rc = edge_add_route(edge, &api);
    if (!rc)
        rc = edge_add_route(edge, &by_host);
    if (!rc)
        rc = edge_add_route(edge, &by_path);
    return rc;
}

void apigw_free(struct apigw *gw)
{
    if (!gw)
        return;
    json_decref(gw->apis);
    free(gw);
}
