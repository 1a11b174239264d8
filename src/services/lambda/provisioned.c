/*
 * provisioned: Lambda's provisioned concurrency (PutProvisionedConcurrencyConfig,
 * GetProvisionedConcurrencyConfig, DeleteProvisionedConcurrencyConfig,
 * ListProvisionedConcurrencyConfigs: /2019-09-30/functions/{name}/provisioned-concurrency,
 * ?List=ALL for the listing). Owns the configs — one per published version or alias
 * ($LATEST is refused), kept in the function's record and persisted with it; a version's
 * or an alias's goes when it goes — the rules Lambda applies to them (an alias and the
 * version it points to cannot both have one), and keeping the pool in line with them:
 * each version's runner is asked (pool_fn_provision) for the sum of the configs that
 * land on it, its own and those of the aliases whose primary version it is, and gets
 * built at once for that, after a restart and after its runners were replaced too. A
 * weighted alias's additional version is not provisioned. The status is read from the
 * pool when asked: Available (= Allocated) is how many provisioned instances finished
 * init, capped at the config's request; READY when that is all of them, FAILED
 * (FUNCTION_ERROR_INIT_FAILURE) when the runner has been seen short of its instances for
 * longer than an instance may take to init (the pool kills one at 10 s, and retries a
 * failed one after 5 s), else IN_PROGRESS. Not here: accounting provisioned concurrency
 * against the reservation or the account (concurrency.c), the instances themselves
 * (the pool: they start ahead, see AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency,
 * and report no Init Duration).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "services/lambda/lambda_internal.h"

/* Short of its instances for longer than this, a runner's configs are FAILED: an init
 * the pool has not finished (it kills one at 10 s) by then is failing. */
#define PROVISION_FAILED_AFTER_MS 12000
#define MAX_PROVISIONED 2147483647L

#define QUALIFIER_PATTERN "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)"
#define UNPUBLISHED                                                                                \
    "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
#define NOT_PUBLISHED "The function resource provided must be an alias or a published version."
#define ALIAS_ON_PROVISIONED_VERSION                                                               \
    "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned "     \
    "version"
#define VERSION_UNDER_PROVISIONED_ALIAS "Version is pointed by a Provisioned Concurrency alias"

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

static unsigned requested(json_t *cfg)
{
    return (unsigned)json_integer_value(json_object_get(cfg, "Requested"));
}

unsigned provisioned_sum(json_t *configs)
{
    unsigned long long sum = 0;
    const char *key;
    json_t *cfg;
    json_object_foreach(configs, key, cfg) sum += requested(cfg);
    return sum > 0xffffffffu ? 0xffffffffu : (unsigned)sum;
}

/* The published version a config's qualifier lands on, or NULL ($LATEST, gone). */
static const char *target_version(struct function *fn, const char *key)
{
    if (all_digits(key))
        return json_object_get(fn->versions, key) ? key : NULL;
    const char *v = json_string_value(json_object_get(alias_find(fn, key), "FunctionVersion"));
    return v && strcmp(v, "$LATEST") != 0 && json_object_get(fn->versions, v) ? v : NULL;
}

unsigned provisioned_wanted(struct function *fn, const char *version)
{
    unsigned long long sum = 0;
    const char *key;
    json_t *cfg;
    json_object_foreach(fn->provisioned, key, cfg)
    {
        const char *v = target_version(fn, key);
        if (v && strcmp(v, version) == 0)
            sum += requested(cfg);
    }
    return sum > 0xffffffffu ? 0xffffffffu : (unsigned)sum;
}

static int64_t mono_ms(void)
{
    return mono_us() / 1000;
}

void provisioned_sync(struct lambda *l, struct function *fn)
{
    if (fn->deleted)
        return;
    /* runners that exist: ask each for what lands on it now (maybe none) */
    for (size_t i = 0; i < fn->nvruns; i++) {
        struct version_run *v = &fn->vruns[i];
        unsigned n = provisioned_wanted(fn, v->version);
        if (n == v->provisioned)
            continue;
        pool_fn_provision(v->run, n);
        v->provisioned = n;
        v->short_since_ms = n ? mono_ms() : 0;
    }
    /* versions with provisioned concurrency and no runner yet: function_runner builds
     * and provisions it */
    const char *key;
    json_t *cfg;
    json_object_foreach(fn->provisioned, key, cfg)
    {
        const char *v = target_version(fn, key);
        if (v && !function_version_run(fn, v) && !function_runner(l, fn, v))
            log_warn("cannot start provisioned instances of %s:%s", fn->name, v);
    }
}

json_t *provisioned_take(struct lambda *l, struct function *fn, const char *qualifier)
{
    json_t *cfg = json_incref(json_object_get(fn->provisioned, qualifier));
    if (cfg) {
        json_object_del(fn->provisioned, qualifier);
        concurrency_set_provisioned(l, fn, provisioned_sum(fn->provisioned));
    }
    return cfg;
}

void provisioned_restore(struct lambda *l, struct function *fn, const char *qualifier, json_t *cfg)
{
    if (!cfg)
        return;
    json_object_set_new(fn->provisioned, qualifier, cfg);
    concurrency_set_provisioned(l, fn, provisioned_sum(fn->provisioned));
}

int provisioned_check_alias(struct function *fn, const char *alias, const char *version,
                            struct param_error *err)
{
    if (!json_object_get(fn->provisioned, alias))
        return 0;
    if (strcmp(version, "$LATEST") == 0)
        return param_fail(err, 400, "InvalidParameterValueException", UNPUBLISHED);
    if (json_object_get(fn->provisioned, version))
        return param_fail(err, 409, "ResourceConflictException", ALIAS_ON_PROVISIONED_VERSION);
    return 0;
}

/*=== Views ===*/

/* A config as Lambda answers it (a new reference): with the status read from the
 * pool, and the qualified FunctionArn in listings. */
static json_t *config_view(struct lambda *l, struct function *fn, const char *key, json_t *cfg,
                           int listing)
{
    unsigned want = requested(cfg), ready = 0;
    const char *version = target_version(fn, key);
    struct version_run *v = version ? function_version_run(fn, version) : NULL;
    const char *status = "IN_PROGRESS";
    int failed = 0;
    if (v) {
        ready = pool_fn_provisioned_ready(v->run);
        int64_t now = mono_ms();
        if (ready >= v->provisioned)
            v->short_since_ms = 0;
        else if (!v->short_since_ms)
            v->short_since_ms = now;
        failed = v->short_since_ms && now - v->short_since_ms > PROVISION_FAILED_AFTER_MS;
    }
    unsigned available = ready < want ? ready : want;
    if (available >= want)
        status = "READY";
    else if (failed)
        status = "FAILED";
    json_t *view = json_object();
    if (listing) {
        char arn[256], qualified[400];
        function_arn(l, fn->name, arn, sizeof(arn));
        snprintf(qualified, sizeof(qualified), "%s:%s", arn, key);
        json_object_set_new(view, "FunctionArn", json_string(qualified));
    }
    json_object_set_new(view, "RequestedProvisionedConcurrentExecutions", json_integer(want));
    json_object_set_new(view, "AvailableProvisionedConcurrentExecutions", json_integer(available));
    json_object_set_new(view, "AllocatedProvisionedConcurrentExecutions", json_integer(available));
    json_object_set_new(view, "Status", json_string(status));
    if (strcmp(status, "FAILED") == 0)
        json_object_set_new(view, "StatusReason", json_string("FUNCTION_ERROR_INIT_FAILURE"));
    json_object_set(view, "LastModified", json_object_get(cfg, "LastModified"));
    return view;
}

/* "2019-12-31T20:28:49+0000", as Lambda shows a config's LastModified. */
static void format_last_modified(char out[32])
{
    time_t t = (time_t)(now_ms() / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S+0000", &tm);
}

/*=== Operations ===*/

/* The function and qualifier a Put/Get/Delete names (the qualifier as ?Qualifier or in
 * the name; they must agree), checked as Lambda checks them: a version must exist, an
 * alias too, $LATEST is answered with latest_msg. NULL after answering. */
static struct function *resolve(struct lambda *l, struct http_req *req, const char *ref,
                                const char *latest_msg, char key[130])
{
    struct param_error err;
    char name[65], qual[130];
    if (parse_function_ref(ref, name, qual, &err) < 0)
        goto fail;
    const char *q = http_req_query(req, "Qualifier");
    if (q && *q) {
        if (qual[0] && strcmp(qual, q) != 0) {
            param_fail(&err, 400, "InvalidParameterValueException",
                       "The derived qualifier from the function name does not match the "
                       "specified qualifier.");
            goto fail;
        }
        if (strlen(q) > 128) {
            param_validation(&err, q, "qualifier",
                             "Member must have length less than or equal to 128");
            goto fail;
        }
        snprintf(qual, 130, "%s", q);
    }
    if (!qual[0]) {
        param_fail(&err, 400, "ValidationException",
                   "1 validation error detected: Value null at 'qualifier' failed to satisfy "
                   "constraint: Member must not be null");
        goto fail;
    }
    for (const char *p = qual; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("$_-", *p)) {
            param_validation(&err, qual, "qualifier", QUALIFIER_PATTERN);
            goto fail;
        }
    if (strcmp(qual, "$LATEST") == 0) {
        param_fail(&err, 400, "InvalidParameterValueException", "%s", latest_msg);
        goto fail;
    }
    struct function *fn = lambda_find(l, name);
    char arn[256];
    function_arn(l, name, arn, sizeof(arn));
    if (all_digits(qual) ? !fn || !json_object_get(fn->versions, qual)
                         : !fn || !alias_find(fn, qual)) {
        param_fail(&err, 404, "ResourceNotFoundException",
                   all_digits(qual) ? "Function not found: %s:%s" : "Cannot find alias arn: %s:%s",
                   arn, qual);
        goto fail;
    }
    snprintf(key, 130, "%s", qual);
    return fn;
fail:
    aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
    return NULL;
}

static void put_config(struct lambda *l, struct http_req *req, const char *ref)
{
    json_t *body = lambda_parse_body(req);
    if (!body)
        return;
    struct param_error err;
    json_int_t n = 0;
    int rc = param_int(body, "ProvisionedConcurrentExecutions", "provisionedConcurrentExecutions",
                       1, MAX_PROVISIONED, &n, &err);
    json_decref(body);
    if (rc == 1)
        param_fail(&err, 400, "ValidationException",
                   "1 validation error detected: Value null at 'provisionedConcurrentExecutions' "
                   "failed to satisfy constraint: Member must not be null");
    if (rc != 0) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
        return;
    }
    char key[130];
    struct function *fn = resolve(l, req, ref, UNPUBLISHED, key);
    if (!fn)
        return;
    json_t *alias = all_digits(key) ? NULL : alias_find(fn, key);
    if (alias) {
        const char *v = json_string_value(json_object_get(alias, "FunctionVersion"));
        if (!v || strcmp(v, "$LATEST") == 0) {
            aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException", UNPUBLISHED);
            return;
        }
        if (json_object_get(fn->provisioned, v)) {
            aws_error(req, AWS_REST_JSON, 409, "ResourceConflictException",
                      ALIAS_ON_PROVISIONED_VERSION);
            return;
        }
    } else {
        const char *name;
        json_t *a;
        json_object_foreach(fn->aliases, name, a)
        {
            const char *v = json_string_value(json_object_get(a, "FunctionVersion"));
            if (v && strcmp(v, key) == 0 && json_object_get(fn->provisioned, name)) {
                aws_error(req, AWS_REST_JSON, 409, "ResourceConflictException",
                          VERSION_UNDER_PROVISIONED_ALIAS);
                return;
            }
        }
    }
    json_t *old = json_object_get(fn->provisioned, key);
    if (concurrency_check_provisioned(l, fn, old ? requested(old) : 0, (unsigned)n, &err) < 0) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
        return;
    }
    char ts[32];
    format_last_modified(ts);
    json_t *cfg = json_pack("{s:I, s:s}", "Requested", n, "LastModified", ts);
    json_t *previous = provisioned_take(l, fn, key); /* kept for a rollback */
    provisioned_restore(l, fn, key, json_incref(cfg));
    if (function_save(l, fn) < 0) {
        json_decref(provisioned_take(l, fn, key));
        provisioned_restore(l, fn, key, previous);
        json_decref(cfg);
        aws_error(req, AWS_REST_JSON, 500, "ServiceException", "could not store the config");
        return;
    }
    json_decref(previous);
    provisioned_sync(l, fn);
    aws_reply_json(req, 202, config_view(l, fn, key, cfg, 0));
    json_decref(cfg);
}

static void delete_config(struct lambda *l, struct http_req *req, struct function *fn,
                          const char *key)
{
    /* deleting a config that does not exist succeeds, as on Lambda */
    json_t *cfg = provisioned_take(l, fn, key);
    if (cfg && function_save(l, fn) < 0) {
        provisioned_restore(l, fn, key, cfg);
        aws_error(req, AWS_REST_JSON, 500, "ServiceException", "could not store the function");
        return;
    }
    json_decref(cfg);
    provisioned_sync(l, fn); /* its instances retire */
    char id[37];
    aws_request_id(req, id);
    http_reply(req, 204, NULL, "", 0);
}

/* Versions by number, then aliases by name. */
struct list_ctx {
    struct lambda *l;
    struct function *fn;
};

static json_t *list_view(const char *key, json_t *cfg, void *arg)
{
    struct list_ctx *c = arg;
    return config_view(c->l, c->fn, key, cfg, 1);
}

static void list_configs(struct lambda *l, struct http_req *req, const char *ref)
{
    struct param_error err;
    char name[65];
    if (parse_function_ref(ref, name, NULL, &err) < 0) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
        return;
    }
    long max;
    struct buf after;
    if (lambda_page_size(req, &max) < 0 || lambda_page_after(req, &after) < 0)
        return;
    struct function *fn = lambda_find(l, name);
    if (!fn) {
        buf_release(&after);
        char arn[256];
        function_arn(l, name, arn, sizeof(arn));
        aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException", "Function not found: %s",
                  arn);
        return;
    }
    struct list_ctx ctx = {l, fn};
    lambda_reply_list(req, fn->provisioned, max, after.data, "ProvisionedConcurrencyConfigs", NULL,
                      list_view, &ctx);
    buf_release(&after);
}

/* PUT|GET|DELETE /2019-09-30/functions/{name}/provisioned-concurrency[?List=ALL] */
void provisioned_op(struct lambda *l, struct http_req *req, const char *method, const char *ref)
{
    const char *list = http_req_query(req, "List");
    if (strcmp(method, "GET") == 0 && list && strcmp(list, "ALL") == 0) {
        list_configs(l, req, ref);
        return;
    }
    if (strcmp(method, "PUT") == 0) {
        put_config(l, req, ref);
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0) {
        aws_error(req, AWS_REST_JSON, 404, "UnknownOperationException",
                  "Ignis does not implement %s %s yet", method, http_req_path(req));
        return;
    }
    char key[130];
    struct function *fn = resolve(l, req, ref, NOT_PUBLISHED, key);
    if (!fn)
        return;
    if (strcmp(method, "DELETE") == 0) {
        delete_config(l, req, fn, key);
        return;
    }
    json_t *cfg = json_object_get(fn->provisioned, key);
    if (!cfg)
        aws_error(req, AWS_REST_JSON, 404, "ProvisionedConcurrencyConfigNotFoundException",
                  "No Provisioned Concurrency Config found for this function");
    else
        aws_reply_json(req, 200, config_view(l, fn, key, cfg, 0));
}
