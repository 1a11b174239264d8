/*
 * urls: Function URL configs (CreateFunctionUrlConfig,
 * GetFunctionUrlConfig, UpdateFunctionUrlConfig, DeleteFunctionUrlConfig,
 * ListFunctionUrlConfigs: /2021-10-31/functions/{name}/url[s]). One config
 * per function ($LATEST) or alias, never a version, kept in the function's
 * record and gone with its alias or function. Each gets a url-id, 32
 * lowercase alphanumerics, fixed for the config's life; its FunctionUrl is
 * http://<url-id>.lambda-url.<region>.localhost:<port>/ (the port the
 * request came to). Only BUFFERED invoke mode exists: RESPONSE_STREAM is
 * refused. Not here: serving the URLs (url_invoke.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "services/lambda/lambda_internal.h"

#define QUALIFIER_PATTERN                                                                          \
    "Member must satisfy regular expression pattern: (^\\$LATEST$)|((?!^[0-9]+$)([a-zA-Z0-9-_]+))"
#define LATEST_PATTERN                                                                             \
    "Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)"
#define NO_FUNCTION "Function does not exist"
#define NO_RESOURCE "The resource you requested does not exist."

/* "2024-01-01T00:00:00.123456Z", as Lambda writes these two times. */
static void url_time(char out[40])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char date[24];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 40, "%s.%06ldZ", date, ts.tv_nsec / 1000);
}

json_t *url_config_find(struct lambda *l, const char *id, struct function **fn,
                        const char **qualifier)
{
    for (size_t i = 0; i < l->nfns; i++) {
        const char *key;
        json_t *cfg;
        json_object_foreach(l->fns[i]->url_configs, key, cfg)
        {
            const char *have = json_string_value(json_object_get(cfg, "UrlId"));
            if (have && strcasecmp(have, id) == 0) {
                if (fn)
                    *fn = l->fns[i];
                if (qualifier)
                    *qualifier = key;
                return cfg;
            }
        }
    }
    return NULL;
}

static void new_url_id(struct lambda *l, char out[LAMBDA_URL_ID_LEN + 1])
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    do {
        unsigned char rnd[LAMBDA_URL_ID_LEN];
        random_bytes(rnd, sizeof(rnd));
        for (int i = 0; i < LAMBDA_URL_ID_LEN; i++)
            out[i] = alphabet[rnd[i] % 36];
        out[LAMBDA_URL_ID_LEN] = '\0';
    } while (url_config_find(l, out, NULL, NULL));
}

/* The port the client reached us on (from Host), else the listening one. */
static int request_port(struct lambda *l, struct http_req *req)
{
    const char *host = http_req_header(req, "Host");
    const char *colon = host ? strrchr(host, ':') : NULL;
    if (colon && !strchr(colon, ']')) {
        int port = atoi(colon + 1);
        if (port > 0 && port < 65536)
            return port;
    }
    return l->cfg->listen_port;
}

/* FunctionUrlConfig as Lambda answers it (a new reference); created: the
 * Create answer (no LastModifiedTime). */
static json_t *url_view(struct lambda *l, struct http_req *req, struct function *fn,
                        const char *key, json_t *cfg, int created)
{
    char arn[256], url[256];
    function_arn(l, fn->name, arn, sizeof(arn));
    if (strcmp(key, "$LATEST") != 0) {
        size_t n = strlen(arn);
        snprintf(arn + n, sizeof(arn) - n, ":%s", key);
    }
    snprintf(url, sizeof(url), "http://%s.lambda-url.%s.localhost:%d/",
             json_string_value(json_object_get(cfg, "UrlId")), l->cfg->region,
             request_port(l, req));
    json_t *view = json_pack("{s:s, s:s, s:O, s:O, s:O}", "FunctionUrl", url, "FunctionArn", arn,
                             "AuthType", json_object_get(cfg, "AuthType"), "CreationTime",
                             json_object_get(cfg, "CreationTime"), "InvokeMode",
                             json_object_get(cfg, "InvokeMode"));
    json_t *cors = json_object_get(cfg, "Cors");
    if (cors)
        json_object_set(view, "Cors", cors);
    if (!created)
        json_object_set(view, "LastModifiedTime", json_object_get(cfg, "LastModifiedTime"));
    return view;
}

/*=== Validation ===*/

/* A list of strings, each within [min, max] characters, at most maxn. */
static int check_list(json_t *v, const char *field, size_t maxn, size_t min, size_t max,
                      struct param_error *err)
{
    if (!json_is_array(v))
        return param_fail(err, 400, "InvalidRequestContentException",
                          "Could not parse request body into json: %s must be a list of strings",
                          field);
    struct buf text = BUF_INIT;
    size_t i;
    json_t *s;
    int bad_len = 0;
    buf_putc(&text, '[');
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s)) {
            buf_release(&text);
            return param_fail(err, 400, "InvalidRequestContentException",
                              "Could not parse request body into json: %s must be a list of "
                              "strings",
                              field);
        }
        size_t n = json_string_length(s);
        if (n < min || n > max)
            bad_len = 1;
        buf_printf(&text, "%s%s", i ? ", " : "", json_string_value(s));
    }
    buf_putc(&text, ']');
    int rc = 0;
    char constraint[160];
    if (json_array_size(v) > maxn) {
        snprintf(constraint, sizeof(constraint),
                 "Member must have length less than or equal to %zu", maxn);
        rc = param_validation(err, text.data, field, constraint);
    } else if (bad_len) {
        snprintf(constraint, sizeof(constraint),
                 "Member must satisfy constraint: [Member must have length less than or equal "
                 "to %zu, Member must have length greater than or equal to %zu]",
                 max, min);
        rc = param_validation(err, text.data, field, constraint);
    }
    buf_release(&text);
    return rc;
}

/* Checks Cors and returns what is stored (a new reference) or NULL with err. */
static json_t *check_cors(json_t *cors, struct param_error *err)
{
    if (!json_is_object(cors)) {
        param_fail(err, 400, "InvalidRequestContentException",
                   "Could not parse request body into json: Cors must be an object");
        return NULL;
    }
    static const struct {
        const char *key, *field;
        size_t maxn, min, max;
    } lists[] = {
        {"AllowHeaders", "cors.allowHeaders", 100, 0, 1024},
        {"AllowMethods", "cors.allowMethods", 6, 0, 6},
        {"AllowOrigins", "cors.allowOrigins", 100, 1, 253},
        {"ExposeHeaders", "cors.exposeHeaders", 100, 0, 1024},
    };
    json_t *out = json_object();
    json_t *cred = json_object_get(cors, "AllowCredentials");
    if (cred && !json_is_null(cred)) {
        if (!json_is_boolean(cred)) {
            json_decref(out);
            param_fail(err, 400, "InvalidRequestContentException",
                       "Could not parse request body into json: AllowCredentials must be a "
                       "boolean");
            return NULL;
        }
        json_object_set(out, "AllowCredentials", cred);
    }
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        json_t *v = json_object_get(cors, lists[i].key);
        if (!v || json_is_null(v))
            continue;
        if (check_list(v, lists[i].field, lists[i].maxn, lists[i].min, lists[i].max, err) < 0) {
            json_decref(out);
            return NULL;
        }
        json_object_set(out, lists[i].key, v);
    }
    json_int_t age;
    int rc = param_int(cors, "MaxAge", "cors.maxAge", 0, 86400, &age, err);
    if (rc < 0) {
        json_decref(out);
        return NULL;
    }
    if (rc == 0)
        json_object_set_new(out, "MaxAge", json_integer(age));
    return out;
}

/* AuthType and InvokeMode of body (each may be absent: *out NULL). */
static int check_enums(json_t *body, const char **auth, const char **mode, struct param_error *err)
{
    json_t *a = json_object_get(body, "AuthType"), *m = json_object_get(body, "InvokeMode");
    *auth = json_string_value(a);
    *mode = json_string_value(m);
    if ((a && !json_is_null(a) && !*auth) || (m && !json_is_null(m) && !*mode))
        return param_fail(err, 400, "InvalidRequestContentException",
                          "Could not parse request body into json: AuthType and InvokeMode must "
                          "be strings");
    if (*auth && strcmp(*auth, "NONE") != 0 && strcmp(*auth, "AWS_IAM") != 0)
        return param_validation(err, *auth, "authType",
                                "Member must satisfy enum value set: [NONE, AWS_IAM]");
    if (*mode && strcmp(*mode, "BUFFERED") != 0 && strcmp(*mode, "RESPONSE_STREAM") != 0)
        return param_validation(err, *mode, "invokeMode",
                                "Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]");
    return 0;
}

/* The function and qualifier a request names ("$LATEST" when none): -1
 * after answering a malformed name or a qualifier a URL cannot have. */
static int url_target(struct lambda *l, struct http_req *req, const char *ref, char name[65],
                      char key[130], struct function **fn)
{
    struct param_error err;
    char qual[130];
    if (parse_function_ref(ref, name, qual, &err) < 0) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
        return -1;
    }
    const char *q = http_req_query(req, "Qualifier");
    if (q && *q) {
        if (qual[0] && strcmp(qual, q) != 0) {
            aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                      "The derived qualifier from the function name does not match the specified "
                      "qualifier.");
            return -1;
        }
        snprintf(qual, 130, "%s", q);
    }
    if (strcmp(qual, "$LATEST") == 0) {
        param_validation(&err, qual, "qualifier", LATEST_PATTERN);
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
        return -1;
    }
    int digits = qual[0] != '\0';
    int bad = 0;
    for (const char *p = qual; *p; p++) {
        digits &= isdigit((unsigned char)*p) != 0;
        bad |= !isalnum((unsigned char)*p) && *p != '-' && *p != '_';
    }
    if (digits || bad || strlen(qual) > 128) {
        param_validation(&err, qual, "qualifier", QUALIFIER_PATTERN);
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
        return -1;
    }
    snprintf(key, 130, "%s", qual[0] ? qual : "$LATEST");
    *fn = lambda_find(l, name);
    return 0;
}

/*=== Operations ===*/

/* Stores fn with key's config set to cfg (NULL: removed); on failure puts
 * the old one back and answers 500. */
static int store(struct lambda *l, struct http_req *req, struct function *fn, const char *key,
                 json_t *cfg)
{
    json_t *old = json_incref(json_object_get(fn->url_configs, key));
    if (cfg)
        json_object_set(fn->url_configs, key, cfg);
    else
        json_object_del(fn->url_configs, key);
    if (function_save(l, fn) < 0) {
        if (old)
            json_object_set(fn->url_configs, key, old);
        else
            json_object_del(fn->url_configs, key);
        json_decref(old);
        aws_error(req, AWS_REST_JSON, 500, "ServiceException", "could not store the config");
        return -1;
    }
    json_decref(old);
    return 0;
}

static void create_config(struct lambda *l, struct http_req *req, const char *ref)
{
    json_t *body = lambda_parse_body(req);
    if (!body)
        return;
    struct param_error err;
    const char *auth, *mode;
    json_t *cors = NULL, *cors_in = json_object_get(body, "Cors");
    char name[65], key[130];
    struct function *fn;
    if (check_enums(body, &auth, &mode, &err) < 0 ||
        (cors_in && !json_is_null(cors_in) && !(cors = check_cors(cors_in, &err)))) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
    } else if (!auth) {
        aws_error(req, AWS_REST_JSON, 400, "ValidationException",
                  "1 validation error detected: Value null at 'authType' failed to satisfy "
                  "constraint: Member must not be null");
    } else if (url_target(l, req, ref, name, key, &fn) < 0) {
        /* answered */
    } else if (!fn) {
        aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException", NO_FUNCTION);
    } else if (json_object_get(fn->url_configs, key)) {
        char arn[256];
        function_arn(l, fn->name, arn, sizeof(arn));
        aws_error(req, AWS_REST_JSON, 409, "ResourceConflictException",
                  "Failed to create function url config for [functionArn = %s%s%s]. Error "
                  "message:  FunctionUrlConfig exists for this Lambda function",
                  arn, strcmp(key, "$LATEST") ? ":" : "", strcmp(key, "$LATEST") ? key : "");
    } else if (strcmp(key, "$LATEST") != 0 && !alias_find(fn, key)) {
        aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException", NO_FUNCTION);
    } else {
        char id[LAMBDA_URL_ID_LEN + 1], when[40];
        new_url_id(l, id);
        url_time(when);
        json_t *cfg =
            json_pack("{s:s, s:s, s:s, s:s, s:s}", "UrlId", id, "AuthType", auth, "InvokeMode",
                      mode ? mode : "BUFFERED", "CreationTime", when, "LastModifiedTime", when);
        if (cors)
            json_object_set(cfg, "Cors", cors);
        if (store(l, req, fn, key, cfg) == 0)
            aws_reply_json(req, 201, url_view(l, req, fn, key, cfg, 1));
        json_decref(cfg);
    }
    json_decref(cors);
    json_decref(body);
}

static void update_config(struct lambda *l, struct http_req *req, const char *ref)
{
    json_t *body = lambda_parse_body(req);
    if (!body)
        return;
    struct param_error err;
    const char *auth, *mode;
    json_t *cors = NULL, *cors_in = json_object_get(body, "Cors");
    char name[65], key[130];
    struct function *fn;
    if (check_enums(body, &auth, &mode, &err) < 0 ||
        (cors_in && !json_is_null(cors_in) && !(cors = check_cors(cors_in, &err)))) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
    } else if (url_target(l, req, ref, name, key, &fn) < 0) {
        /* answered */
    } else if (!fn || (strcmp(key, "$LATEST") != 0 && !alias_find(fn, key))) {
        aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException", NO_FUNCTION);
    } else if (!json_object_get(fn->url_configs, key)) {
        aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException", NO_RESOURCE);
    } else {
        json_t *cfg = json_deep_copy(json_object_get(fn->url_configs, key));
        char when[40];
        url_time(when);
        if (auth)
            json_object_set_new(cfg, "AuthType", json_string(auth));
        if (mode)
            json_object_set_new(cfg, "InvokeMode", json_string(mode));
        if (cors)
            json_object_set(cfg, "Cors", cors);
        json_object_set_new(cfg, "LastModifiedTime", json_string(when));
        if (store(l, req, fn, key, cfg) == 0)
            aws_reply_json(req, 200, url_view(l, req, fn, key, cfg, 0));
        json_decref(cfg);
    }
    json_decref(cors);
    json_decref(body);
}

static void get_or_delete(struct lambda *l, struct http_req *req, const char *ref, int del)
{
    char name[65], key[130];
    struct function *fn;
    if (url_target(l, req, ref, name, key, &fn) < 0)
        return;
    json_t *cfg = fn ? json_object_get(fn->url_configs, key) : NULL;
    if (!cfg) {
        aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException", NO_RESOURCE);
        return;
    }
    if (!del) {
        aws_reply_json(req, 200, url_view(l, req, fn, key, cfg, 0));
        return;
    }
    if (store(l, req, fn, key, NULL) < 0)
        return;
    char id[37];
    aws_request_id(req, id);
    http_reply(req, 204, NULL, "", 0);
}

/* $LATEST first, then aliases by name. */
struct list_ctx {
    struct lambda *l;
    struct http_req *req;
    struct function *fn;
};

static json_t *list_view(const char *key, json_t *cfg, void *arg)
{
    struct list_ctx *c = arg;
    return url_view(c->l, c->req, c->fn, key, cfg, 0);
}

static void list_configs(struct lambda *l, struct http_req *req, const char *ref)
{
    long max;
    struct buf after;
    struct function *fn = lambda_list_start(l, req, ref, NO_FUNCTION, &max, &after);
    if (!fn)
        return;
    struct list_ctx ctx = {l, req, fn};
    lambda_reply_list(req, fn->url_configs, max, after.data, "FunctionUrlConfigs", NULL, list_view,
                      &ctx);
    buf_release(&after);
}

void urls_op(struct lambda *l, struct http_req *req, const char *method, const char *ref, int list)
{
    if (list && strcmp(method, "GET") == 0)
        list_configs(l, req, ref);
    else if (list)
        aws_error(req, AWS_REST_JSON, 404, "UnknownOperationException",
                  "Ignis does not implement %s on function URLs yet", method);
    else if (strcmp(method, "POST") == 0)
        create_config(l, req, ref);
    else if (strcmp(method, "PUT") == 0)
        update_config(l, req, ref);
    else if (strcmp(method, "GET") == 0)
        get_or_delete(l, req, ref, 0);
    else if (strcmp(method, "DELETE") == 0)
        get_or_delete(l, req, ref, 1);
    else
        aws_error(req, AWS_REST_JSON, 404, "UnknownOperationException",
                  "Ignis does not implement %s on function URLs yet", method);
}
