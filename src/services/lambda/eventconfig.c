/*
 * eventconfig: the asynchronous invocation settings of a function, version
 * or alias (PutFunctionEventInvokeConfig, UpdateFunctionEventInvokeConfig,
 * GetFunctionEventInvokeConfig, DeleteFunctionEventInvokeConfig,
 * ListFunctionEventInvokeConfigs: /2019-09-25/functions/{name}/event-invoke-config).
 * A config (MaximumRetryAttempts, MaximumEventAgeInSeconds, DestinationConfig)
 * is kept per qualifier in the function's record and goes with it; deleting
 * a version or an alias deletes its config. Destinations are checked here:
 * only Lambda functions exist in Ignis, so an SQS, SNS, EventBridge or S3
 * destination is refused rather than accepted and ignored. Not here: what the
 * settings do to an event (async.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "services/lambda/lambda_internal.h"

#define DESTINATION_MAX 350
#define DESTINATION_PATTERN                                                                        \
    "Member must satisfy regular expression pattern: "                                             \
    "^$|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:([a-z]{2}((-gov)|(-iso(b?)))?-[a-z]+-\\d{1})?:("  \
    "\\d{12})?:(.*)"

json_t *event_config_get(struct function *fn, const char *qualifier)
{
    return json_object_get(fn->event_configs, qualifier && *qualifier ? qualifier : "$LATEST");
}

/*=== Destinations ===*/

static int all_of(const char *s, size_t n, int (*pred)(int))
{
    for (size_t i = 0; i < n; i++)
        if (!pred((unsigned char)s[i]))
            return 0;
    return 1;
}

static int is_service_char(int c)
{
    return isalnum(c) || c == '-';
}

static int is_lower(int c)
{
    return c >= 'a' && c <= 'z';
}

/* [a-z]{2}((-gov)|(-iso(b?)))?-[a-z]+-\d */
static int region_ok(const char *r, size_t n)
{
    if (n < 6 || !all_of(r, 2, is_lower) || r[2] != '-' || !isdigit((unsigned char)r[n - 1]) ||
        r[n - 2] != '-')
        return 0;
    const char *p = r + 3, *end = r + n - 2; /* the middle: ((gov|iso|isob)-)?[a-z]+ */
    for (const char *pre = "gov-\0iso-\0isob-\0"; *pre; pre += strlen(pre) + 1)
        if ((size_t)(end - p) > strlen(pre) && strncmp(p, pre, strlen(pre)) == 0) {
            p += strlen(pre);
            break;
        }
    return end > p && all_of(p, (size_t)(end - p), is_lower);
}

/* DestinationArn's pattern (see DESTINATION_PATTERN); service receives the
 * ARN's service part. */
static int destination_arn_ok(const char *arn, char service[64])
{
    const char *parts[5];
    size_t lens[5];
    const char *p = arn;
    for (int i = 0; i < 5; i++) {
        const char *colon = strchr(p, ':');
        if (!colon)
            return 0;
        parts[i] = p;
        lens[i] = (size_t)(colon - p);
        p = colon + 1;
    }
    int ok = lens[0] == 3 && strncmp(parts[0], "arn", 3) == 0 && lens[1] >= 3 &&
             strncmp(parts[1], "aws", 3) == 0 && all_of(parts[1], lens[1], is_service_char) &&
             lens[2] > 0 && lens[2] < 64 && all_of(parts[2], lens[2], is_service_char) &&
             (lens[3] == 0 || region_ok(parts[3], lens[3])) &&
             (lens[4] == 0 || (lens[4] == 12 && all_of(parts[4], 12, isdigit)));
    if (ok)
        snprintf(service, 64, "%.*s", (int)lens[2], parts[2]);
    return ok;
}

static const char *destination_of(json_t *dc, const char *key)
{
    return json_string_value(json_object_get(json_object_get(dc, key), "Destination"));
}

/* Checks a DestinationConfig as Lambda does, with what Ignis has: a Lambda
 * function (not fn itself) is the one kind of destination that exists. */
static int check_destinations(struct lambda *l, struct function *fn, json_t *dc,
                              struct param_error *err)
{
    if (!json_is_object(dc))
        return param_fail(err, 400, "InvalidRequestContentException",
                          "Could not parse request body into json: DestinationConfig must be an "
                          "object");
    static const char *const keys[][2] = {{"OnSuccess", "destinationConfig.onSuccess.destination"},
                                          {"OnFailure", "destinationConfig.onFailure.destination"}};
    for (int k = 0; k < 2; k++) {
        json_t *on = json_object_get(dc, keys[k][0]);
        json_t *d = json_object_get(on, "Destination");
        if ((on && !json_is_object(on) && !json_is_null(on)) || (d && !json_is_string(d)))
            return param_fail(err, 400, "InvalidRequestContentException",
                              "Could not parse request body into json: %s must be an object "
                              "with a string Destination",
                              keys[k][0]);
        const char *arn = json_string_value(d);
        char service[64];
        if (!arn || !*arn)
            continue;
        if (strlen(arn) > DESTINATION_MAX)
            return param_validation(err, arn, keys[k][1],
                                    "Member must have length less than or equal to 350");
        if (!destination_arn_ok(arn, service))
            return param_validation(err, arn, keys[k][1], DESTINATION_PATTERN);
    }
    for (int k = 0; k < 2; k++) {
        const char *arn = destination_of(dc, keys[k][0]);
        char service[64], name[65], qual[130];
        struct param_error ignored;
        if (!arn || !*arn)
            continue;
        destination_arn_ok(arn, service);
        if (strcmp(service, "lambda") == 0) {
            if (parse_function_ref(arn, name, qual, &ignored) < 0 || !lambda_find(l, name))
                return param_fail(err, 400, "InvalidParameterValueException",
                                  "The destination ARN %s is invalid.", arn);
            if (strcmp(name, fn->name) == 0)
                return param_fail(err, 400, "InvalidParameterValueException",
                                  "You can't specify the function as a destination for itself.");
            continue;
        }
        static const char *const missing[][2] = {{"sqs", "SQS queues"},
                                                 {"sns", "SNS topics"},
                                                 {"events", "EventBridge event buses"},
                                                 {"s3", "S3 buckets"}};
        for (size_t m = 0; m < sizeof(missing) / sizeof(missing[0]); m++)
            if (strcmp(service, missing[m][0]) == 0)
                return param_fail(err, 400, "InvalidParameterValueException",
                                  "The destination ARN %s is not supported by Ignis: it has no "
                                  "%s yet. Use a Lambda function ARN as the destination.",
                                  arn, missing[m][1]);
        const char *s = destination_of(dc, "OnSuccess"), *f = destination_of(dc, "OnFailure");
        char on_success[420] = "null", on_failure[420] = "null";
        if (s && *s)
            snprintf(on_success, sizeof(on_success), "OnSuccess(destination=%s)", s);
        if (f && *f)
            snprintf(on_failure, sizeof(on_failure), "OnFailure(destination=%s)", f);
        return param_fail(err, 400, "InvalidParameterValueException",
                          "The provided destination config DestinationConfig(onSuccess=%s, "
                          "onFailure=%s) is invalid.",
                          on_success, on_failure);
    }
    return 0;
}

/* DestinationConfig as stored and answered: both members, each {} or
 * {"Destination": arn}. */
static json_t *normalized_destinations(json_t *dc)
{
    json_t *out = json_object();
    static const char *const keys[] = {"OnSuccess", "OnFailure"};
    for (int k = 0; k < 2; k++) {
        const char *arn = destination_of(dc, keys[k]);
        json_object_set_new(out, keys[k],
                            arn && *arn ? json_pack("{s:s}", "Destination", arn) : json_object());
    }
    return out;
}

/*=== Operations ===*/

/* FunctionEventInvokeConfig as Lambda answers it (a new reference). */
static json_t *config_view(struct lambda *l, struct function *fn, const char *key, json_t *cfg)
{
    char arn[256], qualified[400];
    function_arn(l, fn->name, arn, sizeof(arn));
    snprintf(qualified, sizeof(qualified), "%s:%s", arn, key);
    json_t *view = json_pack("{s:O, s:s}", "LastModified", json_object_get(cfg, "LastModified"),
                             "FunctionArn", qualified);
    static const char *const members[] = {"MaximumRetryAttempts", "MaximumEventAgeInSeconds",
                                          "DestinationConfig"};
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        json_t *v = json_object_get(cfg, members[i]);
        if (v)
            json_object_set(view, members[i], v);
    }
    return view;
}

/* The function (NULL if it does not exist) and the qualifier ("$LATEST", a
 * version or an alias) a request names; a qualifier in the name and
 * ?Qualifier must agree. missing: the function or its qualifier does not
 * exist. -1 after answering a malformed name. */
static int target(struct lambda *l, struct http_req *req, const char *ref, char name[65],
                  struct function **fn, char key[130], int *missing)
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
        snprintf(qual, sizeof(qual), "%s", q);
    }
    snprintf(key, 130, "%s", qual[0] ? qual : "$LATEST");
    struct fn_target t;
    *fn = lambda_find(l, name);
    *missing = !*fn || lambda_resolve(*fn, key, &t) < 0;
    return 0;
}

static void no_config(struct lambda *l, struct http_req *req, const char *name, const char *key)
{
    char arn[256];
    function_arn(l, name, arn, sizeof(arn));
    aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException",
              "The function %s:%s doesn't have an EventInvokeConfig", arn, key);
}

/* Put (replace: what is not sent is removed) or Update (merge). */
static void put_config(struct lambda *l, struct http_req *req, const char *ref, int update)
{
    json_t *body = lambda_parse_body(req);
    if (!body)
        return;
    struct param_error err;
    json_int_t retries = 0, age = 0;
    int has_retries =
            param_int(body, "MaximumRetryAttempts", "maximumRetryAttempts", 0, 2, &retries, &err),
        has_age = has_retries < 0 ? 0
                                  : param_int(body, "MaximumEventAgeInSeconds",
                                              "maximumEventAgeInSeconds", 60, 21600, &age, &err);
    json_t *dc = json_object_get(body, "DestinationConfig");
    if (json_is_null(dc))
        dc = NULL;
    struct function *fn;
    char name[65], key[130];
    int missing;
    if (has_retries < 0 || has_age < 0) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
    } else if (has_retries == 1 && has_age == 1 && !dc) {
        aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                  "You must specify at least one of error handling or destination setting.");
    } else if (target(l, req, ref, name, &fn, key, &missing) < 0) {
        /* answered */
    } else if (missing) {
        aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException",
                  "The function doesn't exist.");
    } else if (update && !event_config_get(fn, key)) {
        no_config(l, req, name, key);
    } else if (dc && check_destinations(l, fn, dc, &err) < 0) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
    } else {
        json_t *old = event_config_get(fn, key);
        json_t *cfg = update ? json_deep_copy(old) : json_object();
        if (has_retries == 0)
            json_object_set_new(cfg, "MaximumRetryAttempts", json_integer(retries));
        if (has_age == 0)
            json_object_set_new(cfg, "MaximumEventAgeInSeconds", json_integer(age));
        if (dc || !update)
            json_object_set_new(cfg, "DestinationConfig", normalized_destinations(dc));
        json_object_set_new(cfg, "LastModified", json_real((double)now_ms() / 1000.0));
        json_incref(old); /* kept for a rollback */
        json_object_set(fn->event_configs, key, cfg);
        if (function_save(l, fn) < 0) {
            if (old)
                json_object_set(fn->event_configs, key, old);
            else
                json_object_del(fn->event_configs, key);
            aws_error(req, AWS_REST_JSON, 500, "ServiceException", "could not store the config");
        } else {
            aws_reply_json(req, 200, config_view(l, fn, key, cfg));
        }
        json_decref(old);
        json_decref(cfg);
    }
    json_decref(body);
}

/* $LATEST first, then versions by number, then aliases by name. */
struct list_ctx {
    struct lambda *l;
    struct function *fn;
};

static json_t *list_view(const char *key, json_t *cfg, void *arg)
{
    struct list_ctx *c = arg;
    return config_view(c->l, c->fn, key, cfg);
}

static void list_configs(struct lambda *l, struct http_req *req, const char *ref)
{
    long max;
    struct buf after;
    struct function *fn =
        lambda_list_start(l, req, ref, "The function doesn't exist.", &max, &after);
    if (!fn)
        return;
    struct list_ctx ctx = {l, fn};
    lambda_reply_list(req, fn->event_configs, max, after.data, "FunctionEventInvokeConfigs", NULL,
                      list_view, &ctx);
    buf_release(&after);
}

void event_config_op(struct lambda *l, struct http_req *req, const char *method, const char *ref,
                     int list)
{
    if (list) {
        list_configs(l, req, ref);
        return;
    }
    if (strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
        put_config(l, req, ref, strcmp(method, "POST") == 0);
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0) {
        aws_error(req, AWS_REST_JSON, 404, "UnknownOperationException",
                  "Ignis does not implement %s %s yet", method, http_req_path(req));
        return;
    }
    struct function *fn;
    char name[65], key[130];
    int missing;
    if (target(l, req, ref, name, &fn, key, &missing) < 0)
        return;
    json_t *cfg = missing ? NULL : event_config_get(fn, key);
    if (!cfg) {
        no_config(l, req, name, key);
    } else if (strcmp(method, "GET") == 0) {
        aws_reply_json(req, 200, config_view(l, fn, key, cfg));
    } else {
        json_incref(cfg);
        json_object_del(fn->event_configs, key);
        if (function_save(l, fn) < 0) {
            json_object_set(fn->event_configs, key, cfg);
            aws_error(req, AWS_REST_JSON, 500, "ServiceException", "could not store the config");
        } else {
            char id[37];
            aws_request_id(req, id);
            http_reply(req, 204, NULL, "", 0);
        }
        json_decref(cfg);
    }
}
