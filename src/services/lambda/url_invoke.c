/*
 * url_invoke: serves Function URLs on the edge port. A request reaches us
 * either with the URL's Host (<url-id>.lambda-url.<region>.localhost[:port],
 * or any <url-id>.lambda-url.* host) or on the path form
 * /_ignis/url/<url-id>/<rawPath> for clients that cannot set Host. Checks
 * the config's AuthType (AWS_IAM: a SigV4 signature for service "lambda"
 * over the request as sent), answers CORS preflights from the config and
 * adds its CORS headers to answers, then invokes synchronously like Invoke
 * (same concurrency accounting, same alias routing) with the payload format
 * 2.0 event and maps the result back (services/http/payload.c). Function
 * errors and timeouts are 502, throttles 429. Not here: the configs
 * (urls.c).
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "services/http/cors.h"
#include "services/http/payload.h"
#include "services/lambda/lambda_internal.h"
#include "services/metrics/metrics.h"

#define FORBIDDEN                                                                                  \
    "Forbidden. For troubleshooting Function URL authorization issues, see: "                      \
    "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"

/* One URL invocation in flight: what its answer needs once the pool is done. */
struct url_call {
    struct http_req *req;
    char request_id[37];
    json_t *cors; /* the config's Cors (a reference), or NULL */
    char *origin; /* the request's Origin, or NULL */
};

/* The url-id of a "<id>.lambda-url.<...>" host (copied into id), or -1. */
static int host_url_id(const char *host, char id[64])
{
    return http_payload_host_id(host, ".lambda-url.", id, 63);
}

int lambda_url_match(struct http_req *req, void *arg)
{
    (void)arg;
    char id[64];
    return host_url_id(http_req_header(req, "Host"), id) == 0;
}

/*=== CORS ===*/

/* The config's Cors (Lambda's PascalCase members) into c; 0, or -1 when none. */
static int url_cors(json_t *cors, struct http_cors *c)
{
    return http_cors_from_json(c, cors, HTTP_CORS_PASCAL_CASE);
}

/* Answered from the config without an invoke: 200, the CORS headers when
 * the origin is allowed (the requested method is not checked). */
static void cors_preflight(struct http_req *req, const struct http_cors *c, const char *origin)
{
    struct http_payload_response r;
    http_payload_response_init(&r);
    const char *allow = http_cors_allowed_origin(c, origin);
    if (allow)
        http_cors_preflight_headers(&r, c, allow);
    char id[37];
    uuid_v4(id);
    http_payload_response_add(&r, "x-amzn-RequestId", id);
    http_payload_reply(req, &r);
    http_payload_response_release(&r);
}

/*=== Authentication ===*/

/* AWS_IAM: the request must carry a valid SigV4 signature for "lambda" over
 * this very body. Returns the requestContext.authorizer (a new reference)
 * or NULL when it does not. */
static json_t *iam_authorizer(struct lambda *l, struct http_req *req)
{
    struct sigv4_credential cred;
    if (edge_verify(l->cfg, req, &cred) != SIGV4_OK || strcmp(cred.service, "lambda") != 0)
        return NULL;
    char arn[128];
    snprintf(arn, sizeof(arn), "arn:aws:iam::%s:root", l->cfg->account_id);
    return json_pack("{s:{s:s, s:s, s:s, s:n, s:n, s:s, s:s}}", "iam", "accessKey", cred.access_key,
                     "accountId", l->cfg->account_id, "callerId", l->cfg->account_id,
                     "cognitoIdentity", "principalOrgId", "userArn", arn, "userId",
                     l->cfg->account_id);
}

/*=== Invocation ===*/

/* A synchronous invocation for an HTTP front door, in flight. */
struct sync_call {
    struct lambda_call *call;
    lambda_sync_done done;
    void *arg;
};

static void sync_call_done(struct invocation *inv, void *arg)
{
    struct sync_call *sc = arg;
    lambda_call_done(sc->call, inv);
    sc->done(inv->outcome == INVOCATION_OK, inv->result.data ? inv->result.data : "",
             inv->result.len, sc->arg);
    free(sc);
    invocation_free(inv);
}

int lambda_start_sync(struct lambda *l, const struct fn_target *t, const char *request_id,
                      const char *payload, size_t len, lambda_sync_done done, void *arg)
{
    struct function *fn = t->fn;
    if (concurrency_check(l, fn) != THROTTLE_NONE) {
        metrics_throttle(l->metrics, fn->name, t->qualifier);
        return -EBUSY;
    }
    /* through an alias: its version, or the additional one by its weight */
    const char *version = t->alias ? alias_route(fn, t->alias, t->version) : t->version;
    struct pool_fn *run = function_runner(l, fn, version);
    struct invocation *inv = run ? invocation_new() : NULL;
    struct sync_call *sc = inv ? calloc(1, sizeof(*sc)) : NULL;
    struct lambda_call *call = sc ? lambda_call_begin(l, fn) : NULL;
    if (!call || buf_append(&inv->payload, payload, len) < 0) {
        if (call)
            lambda_call_end(call);
        free(sc);
        if (inv)
            invocation_free(inv);
        return -ENOMEM;
    }
    if (request_id)
        snprintf(inv->request_id, sizeof(inv->request_id), "%s", request_id);
    if (t->qualifier[0]) {
        char arn[256];
        function_arn(l, fn->name, arn, sizeof(arn));
        if (asprintf(&inv->invoked_arn, "%s:%s", arn, t->qualifier) < 0)
            inv->invoked_arn = NULL;
    }
    sc->call = call;
    sc->done = done;
    sc->arg = arg;
    inv->done = sync_call_done;
    inv->done_arg = sc;
    pool_invoke(run, inv);
    return 0;
}

int lambda_invoke_sync(struct lambda *l, const char *ref, const char *request_id,
                       const char *payload, size_t len, lambda_sync_done done, void *arg)
{
    struct fn_target t;
    if (lambda_resolve_ref(l, ref, &t) < 0)
        return -ENOENT;
    return lambda_start_sync(l, &t, request_id, payload, len, done, arg);
}

static void url_done(int ok, const char *result, size_t len, void *arg)
{
    struct url_call *uc = arg;
    struct http_payload_response r;
    http_payload_response_init(&r);
    if (!ok || http_payload_v2_response(result, len, &r) < 0) {
        /* an error, a timeout or an answer that is no response */
        http_payload_response_release(&r);
        http_payload_response_init(&r);
        r.status = 502;
        http_payload_response_add(&r, "Content-Type", "application/json");
        buf_puts(&r.body, "Internal Server Error");
    }
    http_payload_response_add(&r, "x-amzn-RequestId", uc->request_id);
    struct http_cors c;
    if (url_cors(uc->cors, &c) == 0)
        http_cors_response_headers(&r, &c, uc->origin);
    http_payload_reply(uc->req, &r);
    http_payload_response_release(&r);
    json_decref(uc->cors);
    free(uc->origin);
    free(uc);
}

void lambda_url_serve(struct http_req *req, const struct edge_auth *auth, void *arg)
{
    (void)auth;
    struct lambda *l = arg;
    const char *path = http_req_path(req);
    char id[64], domain[256];
    const char *raw_path = path;
    const char *host = http_req_header(req, "Host");
    if (host_url_id(host, id) == 0) {
        snprintf(domain, sizeof(domain), "%.*s", (int)strcspn(host, ":"), host);
    } else {
        /* the path form: /_ignis/url/<id>[/<rawPath>] */
        const char *p = path + strlen(LAMBDA_URL_PATH_PREFIX);
        size_t n = strcspn(p, "/");
        if (n == 0 || n >= sizeof(id)) {
            http_payload_error(req, 403, "AccessDeniedException", NULL);
            return;
        }
        memcpy(id, p, n);
        id[n] = '\0';
        raw_path = p[n] ? p + n : "/";
        snprintf(domain, sizeof(domain), "%s.lambda-url.%s.localhost", id, l->cfg->region);
    }
    struct function *fn;
    const char *qual;
    json_t *cfg = url_config_find(l, id, &fn, &qual);
    struct fn_target t;
    if (!cfg || lambda_resolve(fn, strcmp(qual, "$LATEST") == 0 ? "" : qual, &t) < 0) {
        http_payload_error(req, 403, "AccessDeniedException", NULL);
        return;
    }
    if (http_req_body_too_large(req)) {
        http_payload_error(req, 413, "RequestTooLargeException",
                           "Request must be smaller than 6291456 bytes for the InvokeFunction "
                           "operation");
        return;
    }
    json_t *authorizer = NULL;
    const char *auth_type = json_string_value(json_object_get(cfg, "AuthType"));
    if (auth_type && strcmp(auth_type, "AWS_IAM") == 0 && !(authorizer = iam_authorizer(l, req))) {
        http_payload_error(req, 403, "AccessDeniedException", FORBIDDEN);
        return;
    }
    json_t *cors = json_object_get(cfg, "Cors");
    const char *origin = http_req_header(req, "Origin");
    struct http_cors c;
    if (url_cors(cors, &c) == 0 && http_cors_is_preflight(req)) {
        json_decref(authorizer);
        cors_preflight(req, &c, origin);
        return;
    }
    char request_id[37];
    uuid_v4(request_id);
    struct http_payload_ctx ctx = {
        .raw_path = raw_path,
        .route_key = "$default",
        .stage = "$default",
        .account_id = authorizer ? l->cfg->account_id : "anonymous",
        .api_id = id,
        .domain_name = domain,
        .domain_prefix = id,
        .request_id = request_id,
        .authorizer = authorizer,
        .now_ms = now_ms(),
    };
    json_t *ev = http_payload_v2_event(req, &ctx);
    json_decref(authorizer);
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    const char *mode = json_string_value(json_object_get(cfg, "InvokeMode"));
    int streaming = mode && strcmp(mode, "RESPONSE_STREAM") == 0;
    struct url_call *uc = text && !streaming ? calloc(1, sizeof(*uc)) : NULL;
    int rc = -ENOMEM;
    if (text && streaming) { /* answered as the function streams (stream_invoke.c) */
        rc = lambda_url_stream(l, &t, req, request_id, text, strlen(text), cors, origin);
    } else if (uc) {
        /* filled first: the pool may answer before lambda_start_sync returns */
        uc->req = req;
        snprintf(uc->request_id, sizeof(uc->request_id), "%s", request_id);
        uc->cors = json_incref(cors);
        uc->origin = origin ? strdup(origin) : NULL;
        rc = lambda_start_sync(l, &t, request_id, text, strlen(text), url_done, uc);
        if (rc < 0) {
            json_decref(uc->cors);
            free(uc->origin);
            free(uc);
        }
    }
    free(text);
    if (rc == -EBUSY)
        http_payload_error(req, 429, "TooManyRequestsException", "Rate Exceeded.");
    else if (rc < 0)
        http_payload_error(req, 500, "ServiceException", "Ignis could not start the invocation");
}
