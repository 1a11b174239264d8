/*
 * aliases: function aliases (CreateAlias, GetAlias, UpdateAlias, DeleteAlias,
 * ListAliases) and their weighted routing. An alias names $LATEST or a
 * published version and, optionally (RoutingConfig), one more published
 * version with the share of invocations it receives. Aliases live in the
 * function's record and are persisted with it; they go with the function,
 * and deleting one deletes its event invoke config and its provisioned
 * concurrency config (an alias with one moves its provisioned instances
 * along when it points at another version: provisioned.c).
 * Not here: resolving an alias named as a qualifier (lambda_lookup, api.c),
 * refusing to delete a version an alias uses (DeleteFunction, api.c),
 * running the version an invocation's routing picks (invoke.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "services/lambda/lambda_internal.h"

#define ALIAS_PATTERN "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
#define VERSION_PATTERN "Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)"
#define WEIGHTS_FIELD "routingConfig.additionalVersionWeights"
#define WEIGHT_CONSTRAINT                                                                          \
    "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, "       \
    "Member must have value greater than or equal to 0.0, Member must not be null]"
#define WEIGHT_KEY_CONSTRAINT                                                                      \
    "Map keys must satisfy constraint: [Member must have length less than or equal to 1024, "      \
    "Member must have length greater than or equal to 1, Member must satisfy regular expression "  \
    "pattern: [0-9]+, Member must not be null]"

/*=== Records ===*/

json_t *alias_find(struct function *fn, const char *name)
{
    return json_object_get(fn->aliases, name);
}

static json_t *weights_of(json_t *alias)
{
    return json_object_get(json_object_get(alias, "RoutingConfig"), "AdditionalVersionWeights");
}

const char *alias_route(struct function *fn, json_t *alias, const char *primary)
{
    const char *extra;
    json_t *weight;
    json_object_foreach(weights_of(alias), extra, weight)
    {
        uint64_t r;
        random_bytes(&r, sizeof(r));
        double u = (double)(r >> 11) * 0x1.0p-53; /* uniform in [0, 1) */
        const char *key = json_object_iter_key(json_object_iter_at(fn->versions, extra));
        if (key && u < json_number_value(weight))
            return key;
    }
    return primary;
}

int aliases_referencing(struct function *fn, const char *version, char *out, size_t size)
{
    int n = 0;
    size_t used = 0;
    const char *name;
    json_t *alias;
    out[0] = '\0';
    json_object_foreach(fn->aliases, name, alias)
    {
        const char *primary = json_string_value(json_object_get(alias, "FunctionVersion"));
        if ((primary && strcmp(primary, version) == 0) ||
            json_object_get(weights_of(alias), version)) {
            if (used < size)
                used += (size_t)snprintf(out + used, size - used, "%s%s", n ? ", " : "", name);
            n++;
        }
    }
    return n;
}

/* AliasConfiguration as Lambda answers it (a new reference). */
static json_t *alias_view(struct lambda *l, struct function *fn, json_t *alias)
{
    char arn[256], alias_arn[400];
    function_arn(l, fn->name, arn, sizeof(arn));
    const char *name = json_string_value(json_object_get(alias, "Name"));
    snprintf(alias_arn, sizeof(alias_arn), "%s:%s", arn, name);
    json_t *view = json_pack("{s:s, s:s, s:O, s:O}", "AliasArn", alias_arn, "Name", name,
                             "FunctionVersion", json_object_get(alias, "FunctionVersion"),
                             "Description", json_object_get(alias, "Description"));
    json_t *routing = json_object_get(alias, "RoutingConfig");
    if (routing)
        json_object_set(view, "RoutingConfig", routing);
    json_object_set(view, "RevisionId", json_object_get(alias, "RevisionId"));
    return view;
}

/*=== Validation ===*/

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Alias: 1..128 of [a-zA-Z0-9-_], not all digits (so never a version). */
static int check_alias_name(const char *name, struct param_error *err)
{
    size_t n = strlen(name);
    if (n == 0)
        return param_validation(err, name, "name",
                                "Member must have length greater than or equal to 1");
    if (n > 128)
        return param_validation(err, name, "name",
                                "Member must have length less than or equal to 128");
    for (const char *p = name; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
            *p != '-' && *p != '_')
            return param_validation(err, name, "name", ALIAS_PATTERN);
    if (all_digits(name))
        return param_validation(err, name, "name", ALIAS_PATTERN);
    return 0;
}

/* Version: "$LATEST" or a number, 1..1024 characters. */
static int check_version(const char *v, const char *field, struct param_error *err)
{
    if (strlen(v) > 1024)
        return param_validation(err, v, field,
                                "Member must have length less than or equal to 1024");
    if (strcmp(v, "$LATEST") != 0 && !all_digits(v))
        return param_validation(err, v, field, VERSION_PATTERN);
    return 0;
}

/* A double as Java's Double.toString writes it (what Lambda's validation
 * messages show): "0.5", "2.0", "-1.0", "1.0E-4". */
static void java_double(double v, char *out, size_t size)
{
    char sci[40];
    int prec = 1; /* the fewest significant digits that read back as v */
    for (; prec < 17; prec++) {
        snprintf(sci, sizeof(sci), "%.*e", prec - 1, v);
        if (strtod(sci, NULL) == v)
            break;
    }
    snprintf(sci, sizeof(sci), "%.*e", prec - 1, v);
    char *e = strchr(sci, 'e');
    int exp10 = atoi(e + 1);
    double magnitude = v < 0 ? -v : v;
    if (v == 0 || (magnitude >= 1e-3 && magnitude < 1e7)) {
        int decimals = prec - 1 - exp10;
        snprintf(out, size, "%.*f", decimals > 1 ? decimals : 1, v);
        return;
    }
    *e = '\0'; /* computerized scientific notation: 1.0E-4 */
    snprintf(out, size, "%s%sE%d", sci, strchr(sci, '.') ? "" : ".0", exp10);
}

/* Checks RoutingConfig's shape (what Lambda rejects before looking at the
 * function): version numbers as keys, weights in [0, 1]. */
static int check_routing_shape(json_t *routing, struct param_error *err)
{
    if (!routing || json_is_null(routing))
        return 0;
    json_t *weights = json_object_get(routing, "AdditionalVersionWeights");
    if (!json_is_object(routing) || (weights && !json_is_object(weights) && !json_is_null(weights)))
        return param_fail(err, 400, "InvalidRequestContentException",
                          "Could not parse request body into json: RoutingConfig must be an "
                          "object with a map AdditionalVersionWeights");
    /* the whole map, as Java prints it: {2=0.5} */
    char shown[512] = "{";
    size_t used = 1;
    int bad_key = 0, bad_weight = 0;
    const char *key;
    json_t *w;
    json_object_foreach(weights, key, w)
    {
        char num[40] = "null";
        if (json_is_number(w))
            java_double(json_number_value(w), num, sizeof(num));
        if (used < sizeof(shown))
            used += (size_t)snprintf(shown + used, sizeof(shown) - used, "%s%.64s=%s",
                                     used > 1 ? ", " : "", key, num);
        if (!all_digits(key) || strlen(key) > 1024)
            bad_key = 1;
        if (!json_is_number(w) || !(json_number_value(w) >= 0.0 && json_number_value(w) <= 1.0))
            bad_weight = 1;
    }
    if (used < sizeof(shown))
        snprintf(shown + used, sizeof(shown) - used, "}");
    if (bad_weight)
        return param_validation(err, shown, WEIGHTS_FIELD, WEIGHT_CONSTRAINT);
    if (bad_key)
        return param_validation(err, shown, WEIGHTS_FIELD, WEIGHT_KEY_CONSTRAINT);
    return 0;
}

static int version_missing(struct lambda *l, struct function *fn, const char *version,
                           struct param_error *err)
{
    if (strcmp(version, "$LATEST") == 0 || version_config(fn, version))
        return 0;
    char arn[256];
    function_arn(l, fn->name, arn, sizeof(arn));
    return param_fail(err, 404, "ResourceNotFoundException", "Function not found: %s:%s", arn,
                      version);
}

/* Checks an alias's routing against its primary version and the function's
 * versions, as Lambda does once the shape is valid. */
static int check_routing(struct lambda *l, struct function *fn, const char *primary,
                         json_t *weights, struct param_error *err)
{
    if (json_object_size(weights) == 0)
        return 0;
    if (json_object_size(weights) > 1)
        return param_fail(err, 400, "InvalidParameterValueException",
                          "Number of items in AdditionalVersionWeights cannot be greater than 1");
    const char *extra = json_object_iter_key(json_object_iter(weights));
    if (strcmp(extra, primary) == 0)
        return param_fail(err, 400, "InvalidParameterValueException",
                          "Invalid function version %s. Function version %s is already included "
                          "in routing configuration.",
                          primary, primary);
    if (strcmp(primary, "$LATEST") == 0)
        return param_fail(err, 400, "InvalidParameterValueException",
                          "$LATEST is not supported for an alias pointing to more than 1 version");
    return version_missing(l, fn, extra, err);
}

/* The RoutingConfig to store: NULL when there is none (absent, or no
 * weights), which Lambda then leaves out of the alias. */
static json_t *routing_to_store(json_t *routing)
{
    json_t *weights = json_object_get(routing, "AdditionalVersionWeights");
    if (json_object_size(weights) == 0)
        return NULL;
    json_t *copy = json_object();
    const char *key;
    json_t *w;
    json_object_foreach(weights, key, w)
        json_object_set_new(copy, key, json_real(json_number_value(w)));
    return json_pack("{s:o}", "AdditionalVersionWeights", copy);
}

/* The body (an empty one is {}), or NULL after answering. */
static json_t *request_body(struct http_req *req)
{
    size_t len;
    http_req_body(req, &len);
    return len ? lambda_parse_body(req) : json_object();
}

static int string_field(json_t *body, const char *key, const char **out, struct param_error *err)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return param_fail(err, 400, "InvalidRequestContentException",
                          "Could not parse request body into json: %s must be a string", key);
    *out = json_string_value(v);
    return 0;
}

/* The fields CreateAlias and UpdateAlias share, checked for shape. */
struct alias_fields {
    const char *version, *description;
    json_t *routing; /* as sent, NULL if absent */
};

static int read_fields(json_t *body, struct alias_fields *f, struct param_error *err)
{
    if (string_field(body, "FunctionVersion", &f->version, err) < 0 ||
        string_field(body, "Description", &f->description, err) < 0)
        return -1;
    f->routing = json_object_get(body, "RoutingConfig");
    if (f->version && check_version(f->version, "functionVersion", err) < 0)
        return -1;
    if (f->description && strlen(f->description) > 256)
        return param_validation(err, f->description, "description",
                                "Member must have length less than or equal to 256");
    return check_routing_shape(f->routing, err);
}

static int save_or_fail(struct lambda *l, struct function *fn, struct param_error *err)
{
    if (function_save(l, fn) < 0)
        return param_fail(err, 500, "ServiceException", "could not store the alias");
    return 0;
}

/*=== Operations ===*/

/* CreateAlias: POST /2015-03-31/functions/{name}/aliases */
void aliases_create_op(struct lambda *l, struct http_req *req, const char *ref)
{
    json_t *body = request_body(req);
    if (!body)
        return;
    struct param_error err;
    struct alias_fields f;
    const char *name = NULL;
    char fname[65], qual[130];
    struct function *fn = NULL;
    json_t *alias = NULL;
    if (string_field(body, "Name", &name, &err) < 0 || read_fields(body, &f, &err) < 0)
        goto fail;
    if (!name) {
        param_fail(&err, 400, "ValidationException",
                   "1 validation error detected: Value null at 'name' failed to satisfy "
                   "constraint: Member must not be null");
        goto fail;
    }
    if (!f.version) {
        param_fail(&err, 400, "ValidationException",
                   "1 validation error detected: Value null at 'functionVersion' failed to "
                   "satisfy constraint: Member must not be null");
        goto fail;
    }
    if (check_alias_name(name, &err) < 0 || parse_function_ref(ref, fname, qual, &err) < 0)
        goto fail;
    /* Lambda names the version it looked for, even when the function is missing */
    if (!(fn = lambda_find(l, fname))) {
        char arn[256];
        function_arn(l, fname, arn, sizeof(arn));
        param_fail(&err, 404, "ResourceNotFoundException", "Function not found: %s:%s", arn,
                   f.version);
        goto fail;
    }
    if (version_missing(l, fn, f.version, &err) < 0)
        goto fail;
    if (alias_find(fn, name)) {
        char arn[256];
        function_arn(l, fn->name, arn, sizeof(arn));
        param_fail(&err, 409, "ResourceConflictException", "Alias already exists: %s:%s", arn,
                   name);
        goto fail;
    }
    if (check_routing(l, fn, f.version, json_object_get(f.routing, "AdditionalVersionWeights"),
                      &err) < 0)
        goto fail;
    char id[37];
    uuid_v4(id);
    alias = json_pack("{s:s, s:s, s:s, s:s}", "Name", name, "FunctionVersion", f.version,
                      "Description", f.description ? f.description : "", "RevisionId", id);
    json_t *routing = routing_to_store(f.routing);
    if (routing)
        json_object_set_new(alias, "RoutingConfig", routing);
    json_object_set(fn->aliases, name, alias);
    if (save_or_fail(l, fn, &err) < 0) {
        json_object_del(fn->aliases, name);
        goto fail;
    }
    aws_reply_json(req, 201, alias_view(l, fn, alias));
    json_decref(alias);
    json_decref(body);
    return;
fail:
    json_decref(alias);
    json_decref(body);
    aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
}

struct list_ctx {
    struct lambda *l;
    struct function *fn;
    const char *version; /* ?FunctionVersion, or NULL */
};

static int list_include(json_t *alias, void *arg)
{
    const char *v = json_string_value(json_object_get(alias, "FunctionVersion"));
    return v && strcmp(v, ((struct list_ctx *)arg)->version) == 0;
}

static json_t *list_view(const char *key, json_t *alias, void *arg)
{
    (void)key;
    struct list_ctx *c = arg;
    return alias_view(c->l, c->fn, alias);
}

/* ListAliases: GET /2015-03-31/functions/{name}/aliases, by name, paged. */
void aliases_list_op(struct lambda *l, struct http_req *req, const char *ref)
{
    struct function *fn = lambda_lookup(l, req, ref, NULL);
    if (!fn)
        return;
    struct param_error err;
    const char *only = http_req_query(req, "FunctionVersion");
    if (only && check_version(only, "functionVersion", &err) < 0) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
        return;
    }
    long max;
    struct buf after;
    if (lambda_page_size(req, &max) < 0 || lambda_page_after(req, &after) < 0)
        return;
    struct list_ctx ctx = {l, fn, only};
    lambda_reply_list(req, fn->aliases, max, after.data, "Aliases", only ? list_include : NULL,
                      list_view, &ctx);
    buf_release(&after);
}

/* UpdateAlias: only the fields sent change; RoutingConfig replaces the
 * routing (empty weights remove it). */
static void update_alias(struct lambda *l, struct http_req *req, struct function *fn, json_t *alias)
{
    json_t *body = request_body(req);
    if (!body)
        return;
    struct param_error err;
    struct alias_fields f;
    json_t *next = NULL;
    if (read_fields(body, &f, &err) < 0)
        goto fail;
    if (lambda_check_revision(req, body, json_string_value(json_object_get(alias, "RevisionId"))) <
        0) {
        json_decref(body);
        return;
    }
    next = json_deep_copy(alias);
    if (f.version) {
        if (version_missing(l, fn, f.version, &err) < 0)
            goto fail;
        json_object_set_new(next, "FunctionVersion", json_string(f.version));
    }
    if (f.description)
        json_object_set_new(next, "Description", json_string(f.description));
    if (f.routing) {
        json_t *routing = routing_to_store(f.routing);
        if (routing)
            json_object_set_new(next, "RoutingConfig", routing);
        else
            json_object_del(next, "RoutingConfig");
    }
    const char *name = json_string_value(json_object_get(next, "Name"));
    const char *target = json_string_value(json_object_get(next, "FunctionVersion"));
    if (check_routing(l, fn, target, weights_of(next), &err) < 0 ||
        provisioned_check_alias(fn, name, target, &err) < 0)
        goto fail;
    char id[37];
    uuid_v4(id);
    json_object_set_new(next, "RevisionId", json_string(id));
    json_incref(alias); /* kept for a rollback */
    json_object_set(fn->aliases, name, next);
    if (save_or_fail(l, fn, &err) < 0) {
        json_object_set(fn->aliases, name, alias);
        json_decref(alias);
        goto fail;
    }
    json_decref(alias);
    provisioned_sync(l, fn); /* its provisioned instances follow it */
    aws_reply_json(req, 200, alias_view(l, fn, next));
    json_decref(next);
    json_decref(body);
    return;
fail:
    json_decref(next);
    json_decref(body);
    aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
}

void alias_op(struct lambda *l, struct http_req *req, const char *method, const char *ref,
              const char *segment)
{
    struct param_error err;
    char name[512];
    snprintf(name, sizeof(name), "%s", segment);
    long len = percent_decode(name, strlen(name));
    if (len < 0 || memchr(name, '\0', (size_t)len))
        param_validation(&err, segment, "name", ALIAS_PATTERN);
    if (len < 0 || memchr(name, '\0', (size_t)len) || check_alias_name(name, &err) < 0) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
        return;
    }
    struct function *fn = lambda_lookup(l, req, ref, NULL);
    if (!fn)
        return;
    json_t *alias = alias_find(fn, name);
    char arn[256];
    function_arn(l, fn->name, arn, sizeof(arn));
    if (strcmp(method, "DELETE") == 0) {
        /* deleting an alias that does not exist succeeds, as on Lambda */
        if (alias) {
            /* its event invoke, function URL, provisioned concurrency configs and policy go
             * with it */
            json_t *config = json_incref(json_object_get(fn->event_configs, name));
            json_t *url = json_incref(json_object_get(fn->url_configs, name));
            json_t *policy = json_incref(json_object_get(fn->policies, name));
            json_t *provisioned = provisioned_take(l, fn, name);
            json_incref(alias);
            json_object_del(fn->aliases, name);
            json_object_del(fn->event_configs, name);
            json_object_del(fn->url_configs, name);
            json_object_del(fn->policies, name);
            if (save_or_fail(l, fn, &err) < 0) {
                if (policy)
                    json_object_set_new(fn->policies, name, policy);
                json_object_set_new(fn->aliases, name, alias);
                if (config)
                    json_object_set_new(fn->event_configs, name, config);
                if (url)
                    json_object_set_new(fn->url_configs, name, url);
                provisioned_restore(l, fn, name, provisioned);
                aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
                return;
            }
            json_decref(alias);
            json_decref(config);
            json_decref(url);
            json_decref(policy);
            json_decref(provisioned);
            provisioned_sync(l, fn);
        }
        char id[37];
        aws_request_id(req, id);
        http_reply(req, 204, NULL, "", 0);
    } else if (!alias) {
        if (strcmp(method, "GET") == 0)
            aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException",
                      "Cannot find alias arn: %s:%s", arn, name);
        else
            aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException",
                      "Alias not found: %s:%s", arn, name);
    } else if (strcmp(method, "GET") == 0) {
        aws_reply_json(req, 200, alias_view(l, fn, alias));
    } else {
        update_alias(l, req, fn, alias);
    }
}
