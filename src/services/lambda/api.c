/*
 * api: the Lambda REST API's control-plane operations (CreateFunction,
 * GetFunction, GetFunctionConfiguration, ListFunctions, UpdateFunctionCode,
 * UpdateFunctionConfiguration, DeleteFunction, TagResource, UntagResource,
 * ListTags), the resolution of a function reference and its qualifier
 * (version or alias), the routing of the Lambda API's paths (2015-03-31,
 * 2017-03-31 tags, 2019-09-25 event invoke configs, 2017-10-31 and
 * 2019-09-30 concurrency and provisioned concurrency, 2016-08-19 account
 * settings, 2021-10-31 function URL configs) to them, to the version, alias, event-invoke-config,
 * concurrency, provisioned concurrency and policy operations and to Invoke, and the
 * code download behind GetFunction's Code.Location. Zip unpacking runs on the
 * work queue; the answer is sent when it is done.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "services/lambda/lambda_internal.h"
#include "store/codestore.h"

#define P "/2015-03-31/functions"
#define TAGS_PREFIX "/2017-03-31/tags/"
#define EVENT_CONFIG_PREFIX "/2019-09-25/"    /* .../functions/{name}/event-invoke-config */
#define CONCURRENCY_PREFIX "/2017-10-31/"     /* .../functions/{name}/concurrency */
#define CONCURRENCY_GET_PREFIX "/2019-09-30/" /* GetFunctionConcurrency, provisioned */
#define ACCOUNT_PREFIX "/2016-08-19/"         /* account-settings/ */
#define URL_CONFIG_PREFIX "/2021-10-31/"      /* .../functions/{name}/url[s] (urls.c) */
#define CODE_PREFIX "/_ignis/code/"
#define CODE_URL_TTL_S 600

static void reply_error(struct http_req *req, const struct param_error *err)
{
    aws_error(req, AWS_REST_JSON, err->status, err->code, "%s", err->message);
}

static void not_found(struct lambda *l, struct http_req *req, const char *name)
{
    char arn[256];
    function_arn(l, name, arn, sizeof(arn));
    aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException", "Function not found: %s", arn);
}

json_t *lambda_parse_body(struct http_req *req)
{
    size_t len;
    const char *body = http_req_body(req, &len);
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        aws_error(req, AWS_REST_JSON, 400, "InvalidRequestContentException",
                  "Could not parse request body into json: %s", jerr.text);
        return NULL;
    }
    return doc;
}

static void new_revision(json_t *config)
{
    char id[37];
    uuid_v4(id);
    json_object_set_new(config, "RevisionId", json_string(id));
    char ts[32];
    format_lambda_time(now_ms(), ts);
    json_object_set_new(config, "LastModified", json_string(ts));
}

/* The document answered while a change is being applied. */
static json_t *in_progress_view(json_t *config, int creating)
{
    json_t *view = json_deep_copy(config);
    if (creating) {
        json_object_set_new(view, "State", json_string("Pending"));
        json_object_set_new(view, "StateReason", json_string("The function is being created."));
        json_object_set_new(view, "StateReasonCode", json_string("Creating"));
        json_object_del(view, "LastUpdateStatus");
    } else {
        json_object_set_new(view, "LastUpdateStatus", json_string("InProgress"));
        json_object_set_new(view, "LastUpdateStatusReason",
                            json_string("The function is being created."));
        json_object_set_new(view, "LastUpdateStatusReasonCode", json_string("Creating"));
    }
    return view;
}

int lambda_check_revision(struct http_req *req, json_t *body, const char *have)
{
    const char *want = json_string_value(json_object_get(body, "RevisionId"));
    if (want && have && strcmp(want, have) != 0) {
        aws_error(req, AWS_REST_JSON, 412, "PreconditionFailedException",
                  "The Revision Id provided does not match the latest Revision Id. Call the "
                  "GetFunction/GetAlias API to retrieve the latest Revision Id");
        return -1;
    }
    return 0;
}

static int check_revision(struct http_req *req, json_t *body, struct function *fn)
{
    return lambda_check_revision(req, body,
                                 json_string_value(json_object_get(fn->config, "RevisionId")));
}

static int check_not_updating(struct lambda *l, struct http_req *req, struct function *fn)
{
    if (!fn->updating)
        return 0;
    char arn[256];
    function_arn(l, fn->name, arn, sizeof(arn));
    aws_error(req, AWS_REST_JSON, 409, "ResourceConflictException",
              "The operation cannot be performed at this time. An update is in progress for "
              "resource: %s",
              arn);
    return -1;
}

/*=== Code upload (work queue) ===*/

struct code_job {
    struct lambda *l;
    struct http_req *req;
    struct function *fn;
    int creating;
    int publish; /* publish a version once the code is in */
    struct buf zip;
    json_t *pending_config; /* create: the config to answer with */
    int rc;
    char msg[512];
    struct codestore_package pkg;
};

static void code_job_work(void *arg)
{
    struct code_job *job = arg;
    job->rc = codestore_put(job->l->code_root, job->zip.data, job->zip.len, &job->pkg, job->msg,
                            sizeof(job->msg));
}

static void code_job_done(void *arg)
{
    struct code_job *job = arg;
    struct lambda *l = job->l;
    struct function *fn = job->fn;
    fn->updating = 0;
    if (job->rc < 0) {
        if (job->creating)
            lambda_remove(l, fn);
        if (job->rc == CODESTORE_IO)
            aws_error(job->req, AWS_REST_JSON, 500, "ServiceException", "%s", job->msg);
        else
            aws_error(job->req, AWS_REST_JSON, 400, "InvalidParameterValueException", "%s",
                      job->msg);
        goto out;
    }
    if (fn->deleted) {
        not_found(l, job->req, fn->name);
        goto out;
    }
    snprintf(fn->code_hex, sizeof(fn->code_hex), "%s", job->pkg.sha256_hex);
    json_object_set_new(fn->config, "CodeSha256", json_string(job->pkg.sha256_b64));
    json_object_set_new(fn->config, "CodeSize", json_integer((json_int_t)job->pkg.size));
    new_revision(fn->config);
    function_reset_runner(fn); /* the next invoke starts instances with the new code */
    json_t *view = in_progress_view(fn->config, job->creating);
    json_object_set_new(fn->config, "State", json_string("Active"));
    json_object_set_new(fn->config, "LastUpdateStatus", json_string("Successful"));
    if (function_save(l, fn) < 0) {
        json_decref(view);
        if (job->creating)
            lambda_remove(l, fn);
        aws_error(job->req, AWS_REST_JSON, 500, "ServiceException", "could not store function");
        goto out;
    }
    if (job->publish) {
        /* the answer is the published version's configuration */
        struct param_error err;
        json_t *rec = version_publish(l, fn, NULL, &err);
        json_decref(view);
        if (!rec) {
            aws_error(job->req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
            goto out;
        }
        view = json_deep_copy(json_object_get(rec, "Configuration"));
    }
    aws_reply_json(job->req, job->creating ? 201 : 200, view);
out:
    function_unref(fn);
    buf_release(&job->zip);
    json_decref(job->pending_config);
    free(job);
}

/* Decodes Code.ZipFile / ZipFile and queues the unpack. Returns 0 when queued. */
static int start_code_job(struct lambda *l, struct http_req *req, struct function *fn,
                          json_t *zipfile, int creating, int publish)
{
    const char *b64 = json_string_value(zipfile);
    if (!b64) {
        aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                  "Please provide a source for function code.");
        return -1;
    }
    struct code_job *job = calloc(1, sizeof(*job));
    job->l = l;
    job->req = req;
    job->fn = fn;
    job->creating = creating;
    job->publish = publish;
    buf_init(&job->zip, 0);
    if (base64_decode(&job->zip, b64, json_string_length(zipfile)) < 0 || job->zip.len == 0) {
        buf_release(&job->zip);
        free(job);
        aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                  "Could not unzip uploaded file. Please check your file, then try to upload "
                  "again.");
        return -1;
    }
    fn->updating = 1;
    fn->refs++;
    workq_submit(l->wq, code_job_work, code_job_done, job);
    return 0;
}

static int check_code_source(struct http_req *req, json_t *code)
{
    if (json_object_get(code, "S3Bucket") || json_object_get(code, "S3Key") ||
        json_object_get(code, "ImageUri")) {
        aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                  "Ignis takes function code as ZipFile only for now (S3Bucket/S3Key and "
                  "ImageUri are not supported yet).");
        return -1;
    }
    return 0;
}

static int check_tags(struct http_req *req, json_t *tags)
{
    if (!json_is_object(tags)) {
        aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                  "Tags must be a map of strings");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(tags, k, v)
    {
        if (!json_is_string(v) || strlen(k) == 0 || strlen(k) > 128 ||
            json_string_length(v) > 256 || str_has_prefix(k, "aws:")) {
            aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                      "Invalid tag: %.128s", k);
            return -1;
        }
    }
    return 0;
}

/*=== Operations ===*/

static void create_function(struct lambda *l, struct http_req *req)
{
    json_t *body = lambda_parse_body(req);
    if (!body)
        return;
    struct param_error err;
    char name[65], qual[130];
    const char *ref = json_string_value(json_object_get(body, "FunctionName"));
    json_t *code = json_object_get(body, "Code");
    json_t *tags = json_object_get(body, "Tags");
    const char *pkg = json_string_value(json_object_get(body, "PackageType"));
    if (!ref) {
        aws_error(req, AWS_REST_JSON, 400, "ValidationException",
                  "1 validation error detected: Value null at 'functionName' failed to satisfy "
                  "constraint: Member must not be null");
        goto out;
    }
    if (parse_function_ref(ref, name, qual, &err) < 0) {
        reply_error(req, &err);
        goto out;
    }
    if (lambda_find(l, name)) {
        aws_error(req, AWS_REST_JSON, 409, "ResourceConflictException",
                  "Function already exist: %s", name);
        goto out;
    }
    if (pkg && strcmp(pkg, "Zip") != 0) {
        aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                  "PackageType %s is not supported by Ignis yet.", pkg);
        goto out;
    }
    if (!json_is_object(code)) {
        aws_error(req, AWS_REST_JSON, 400, "ValidationException",
                  "1 validation error detected: Value null at 'code' failed to satisfy "
                  "constraint: Member must not be null");
        goto out;
    }
    if (check_code_source(req, code) < 0 || (tags && check_tags(req, tags) < 0))
        goto out;

    char arn[256], group[128];
    function_arn(l, name, arn, sizeof(arn));
    snprintf(group, sizeof(group), "/aws/lambda/%s", name);
    json_t *config = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:s, s:{s:s}, s:s, s:[s], s:{s:i}, s:{s:s, s:s},"
        " s:{s:s, s:s}}",
        "FunctionName", name, "FunctionArn", arn, "Description", "", "Timeout", (json_int_t)3,
        "MemorySize", (json_int_t)128, "Version", "$LATEST", "TracingConfig", "Mode", "PassThrough",
        "PackageType", "Zip", "Architectures", "x86_64", "EphemeralStorage", "Size", 512,
        "SnapStart", "ApplyOn", "None", "OptimizationStatus", "Off", "LoggingConfig", "LogFormat",
        "Text", "LogGroup", group);
    if (apply_configuration(l, config, body, 1, &err) < 0) {
        json_decref(config);
        reply_error(req, &err);
        goto out;
    }
    struct function *fn = calloc(1, sizeof(*fn));
    snprintf(fn->name, sizeof(fn->name), "%s", name);
    fn->config = config;
    fn->tags = tags ? json_deep_copy(tags) : json_object();
    fn->versions = json_object();
    fn->aliases = json_object();
    fn->event_configs = json_object();
    fn->provisioned = json_object();
    fn->url_configs = json_object();
    fn->policies = json_object();
    lambda_insert(l, fn);
    if (start_code_job(l, req, fn, json_object_get(code, "ZipFile"), 1,
                       json_is_true(json_object_get(body, "Publish"))) < 0)
        lambda_remove(l, fn);
out:
    json_decref(body);
}

struct function *lambda_lookup(struct lambda *l, struct http_req *req, const char *ref,
                               struct fn_target *t)
{
    struct param_error err;
    char name[65], qual[130];
    if (parse_function_ref(ref, name, qual, &err) < 0) {
        reply_error(req, &err);
        return NULL;
    }
    const char *q = http_req_query(req, "Qualifier");
    if (q && *q)
        snprintf(qual, sizeof(qual), "%s", q);
    struct function *fn = lambda_find(l, name);
    if (!fn) {
        not_found(l, req, name);
        return NULL;
    }
    int missing = t ? lambda_resolve(fn, qual, t) < 0 : qual[0] && strcmp(qual, "$LATEST") != 0;
    if (missing) {
        char arn[256];
        function_arn(l, name, arn, sizeof(arn));
        aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException", "Function not found: %s:%s",
                  arn, qual);
        return NULL;
    }
    return fn;
}

int lambda_resolve_ref(struct lambda *l, const char *ref, struct fn_target *t)
{
    char name[65], qualifier[130];
    struct param_error err;
    struct function *fn;
    if (parse_function_ref(ref, name, qualifier, &err) < 0 || !(fn = lambda_find(l, name)) ||
        lambda_resolve(fn, strcmp(qualifier, "$LATEST") == 0 ? "" : qualifier, t) < 0)
        return -ENOENT;
    return 0;
}

int lambda_resolve(struct function *fn, const char *qual, struct fn_target *t)
{
    /* version: the published version named, directly or through an alias */
    const char *version = NULL;
    json_t *alias = NULL;
    if (qual[0] && strcmp(qual, "$LATEST") != 0) {
        const char *v = qual;
        if ((alias = alias_find(fn, qual)))
            v = json_string_value(json_object_get(alias, "FunctionVersion"));
        if (v && strcmp(v, "$LATEST") != 0)
            version = json_object_iter_key(json_object_iter_at(fn->versions, v));
        if (!version && !alias)
            return -1;
    }
    t->fn = fn;
    snprintf(t->qualifier, sizeof(t->qualifier), "%s", qual);
    t->alias = alias;
    t->version = version;
    if (!version) {
        t->config = fn->config;
        t->code_hex = fn->code_hex;
    } else {
        json_t *rec = json_object_get(fn->versions, version);
        t->config = json_object_get(rec, "Configuration");
        t->code_hex = json_string_value(json_object_get(rec, "CodeHex"));
    }
    return 0;
}

/* What GetFunction(Configuration) shows: while code is being stored the
 * function is Pending (create) or its update InProgress, as on AWS. */
static json_t *config_view(struct function *fn)
{
    if (fn->updating)
        return in_progress_view(fn->config, !json_object_get(fn->config, "CodeSha256"));
    return json_deep_copy(fn->config);
}

/* Named through an alias, a version's configuration is shown with the
 * alias's ARN, as Lambda does. */
static json_t *target_view(struct lambda *l, struct fn_target *t)
{
    json_t *view = t->version ? json_deep_copy(t->config) : config_view(t->fn);
    if (t->alias) {
        char arn[256], qualified[400];
        function_arn(l, t->fn->name, arn, sizeof(arn));
        snprintf(qualified, sizeof(qualified), "%s:%s", arn, t->qualifier);
        json_object_set_new(view, "FunctionArn", json_string(qualified));
    }
    return view;
}

static void get_function(struct lambda *l, struct http_req *req, const char *ref)
{
    struct fn_target t;
    struct function *fn = lambda_lookup(l, req, ref, &t);
    if (!fn)
        return;
    char url[1024];
    lambda_code_location(l, req, t.code_hex, url, sizeof(url));
    json_t *doc = json_pack("{s:o, s:{s:s, s:s}}", "Configuration", target_view(l, &t), "Code",
                            "RepositoryType", "S3", "Location", url);
    if (json_object_size(fn->tags) > 0)
        json_object_set(doc, "Tags", fn->tags);
    if (fn->reserved_set)
        json_object_set_new(
            doc, "Concurrency",
            json_pack("{s:I}", "ReservedConcurrentExecutions", (json_int_t)fn->reserved));
    aws_reply_json(req, 200, doc);
}

static void get_configuration(struct lambda *l, struct http_req *req, const char *ref)
{
    struct fn_target t;
    if (lambda_lookup(l, req, ref, &t))
        aws_reply_json(req, 200, target_view(l, &t));
}

int lambda_page_size(struct http_req *req, long *max)
{
    *max = 50;
    const char *v = http_req_query(req, "MaxItems");
    if (!v)
        return 0;
    char *end;
    *max = strtol(v, &end, 10);
    if (end == v || *end || *max < 1 || *max > 10000) {
        aws_error(req, AWS_REST_JSON, 400, "ValidationException",
                  "1 validation error detected: Value '%.32s' at 'maxItems' failed to "
                  "satisfy constraint: Member must have value between 1 and 10000",
                  v);
        return -1;
    }
    if (*max > 50)
        *max = 50; /* "a maximum of 50 items in each response, even if you set the number higher" */
    return 0;
}

struct function *lambda_list_start(struct lambda *l, struct http_req *req, const char *ref,
                                   const char *no_function, long *max, struct buf *after)
{
    struct param_error err;
    char name[65], qual[130];
    if (parse_function_ref(ref, name, qual, &err) < 0) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
        return NULL;
    }
    if (lambda_page_size(req, max) < 0 || lambda_page_after(req, after) < 0)
        return NULL;
    struct function *fn = lambda_find(l, name);
    if (!fn) {
        buf_release(after);
        aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException", "%s", no_function);
    }
    return fn;
}

int lambda_page_after(struct http_req *req, struct buf *after)
{
    const char *marker = http_req_query(req, "Marker");
    buf_init(after, 0);
    buf_puts(after, "");
    if (!marker || !*marker)
        return 0;
    buf_reset(after);
    if (base64_decode(after, marker, strlen(marker)) < 0 || after->len == 0) {
        buf_release(after);
        aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                  "Invalid Marker: %.64s", marker);
        return -1;
    }
    return 0;
}

void lambda_set_next_marker(json_t *doc, const char *last)
{
    struct buf next = BUF_INIT;
    base64_encode(&next, last, strlen(last));
    json_object_set_new(doc, "NextMarker", json_string(next.data));
    buf_release(&next);
}

int lambda_qualifier_order(const char *a, const char *b)
{
    int ra = strcmp(a, "$LATEST") == 0 ? 0 : isdigit((unsigned char)a[0]) ? 1 : 2;
    int rb = strcmp(b, "$LATEST") == 0 ? 0 : isdigit((unsigned char)b[0]) ? 1 : 2;
    if (ra != rb)
        return ra - rb;
    if (ra == 1 && strlen(a) != strlen(b))
        return strlen(a) < strlen(b) ? -1 : 1;
    return strcmp(a, b);
}

static int by_qualifier(const void *a, const void *b)
{
    return lambda_qualifier_order(*(const char *const *)a, *(const char *const *)b);
}

void lambda_reply_list(struct http_req *req, json_t *obj, long max, const char *after,
                       const char *field, int (*include)(json_t *value, void *arg),
                       json_t *(*view)(const char *key, json_t *value, void *arg), void *arg)
{
    size_t n = 0, total = json_object_size(obj);
    const char **keys = calloc(total ? total : 1, sizeof(*keys));
    if (!keys) {
        aws_error(req, AWS_REST_JSON, 500, "ServiceException", "out of memory");
        return;
    }
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        if ((!after[0] || lambda_qualifier_order(key, after) > 0) &&
            (!include || include(value, arg)))
            keys[n++] = key;
    }
    qsort(keys, n, sizeof(*keys), by_qualifier);
    json_t *list = json_array();
    size_t i;
    for (i = 0; i < n && (long)i < max; i++)
        json_array_append_new(list, view(keys[i], json_object_get(obj, keys[i]), arg));
    json_t *doc = json_pack("{s:o}", field, list);
    if (i < n)
        lambda_set_next_marker(doc, keys[i - 1]);
    free(keys);
    aws_reply_json(req, 200, doc);
}

static void list_functions(struct lambda *l, struct http_req *req)
{
    long max;
    struct buf after;
    if (lambda_page_size(req, &max) < 0 || lambda_page_after(req, &after) < 0)
        return;
    /* first function after the marker's name */
    size_t start = 0;
    while (start < l->nfns && strcmp(l->fns[start]->name, after.data) <= 0)
        start++;
    buf_release(&after);
    json_t *list = json_array();
    size_t i;
    for (i = start; i < l->nfns && (long)(i - start) < max; i++) {
        json_array_append_new(list, listing_view(l->fns[i]->config));
    }
    json_t *doc = json_pack("{s:o}", "Functions", list);
    if (i < l->nfns)
        lambda_set_next_marker(doc, l->fns[i - 1]->name);
    aws_reply_json(req, 200, doc);
}

static void update_code(struct lambda *l, struct http_req *req, const char *ref)
{
    struct function *fn = lambda_lookup(l, req, ref, NULL);
    if (!fn)
        return;
    json_t *body = lambda_parse_body(req);
    if (!body)
        return;
    if (check_not_updating(l, req, fn) < 0 || check_revision(req, body, fn) < 0 ||
        check_code_source(req, body) < 0)
        goto out;
    struct param_error err;
    json_t *arch = json_object_get(body, "Architectures");
    if (arch) {
        json_t *probe = json_pack("{s:O}", "Architectures", arch);
        json_t *scratch = json_object();
        int bad = apply_configuration(l, scratch, probe, 0, &err) < 0;
        json_decref(probe);
        json_decref(scratch);
        if (bad) {
            reply_error(req, &err);
            goto out;
        }
    }
    if (json_is_true(json_object_get(body, "DryRun"))) {
        aws_reply_json(req, 200, config_view(fn));
        goto out;
    }
    start_code_job(l, req, fn, json_object_get(body, "ZipFile"), 0,
                   json_is_true(json_object_get(body, "Publish")));
out:
    json_decref(body);
}

static void update_configuration(struct lambda *l, struct http_req *req, const char *ref)
{
    struct function *fn = lambda_lookup(l, req, ref, NULL);
    if (!fn)
        return;
    json_t *body = lambda_parse_body(req);
    if (!body)
        return;
    if (check_not_updating(l, req, fn) < 0 || check_revision(req, body, fn) < 0)
        goto out;
    struct param_error err;
    json_t *next = json_deep_copy(fn->config);
    if (apply_configuration(l, next, body, 0, &err) < 0) {
        json_decref(next);
        reply_error(req, &err);
        goto out;
    }
    const char *runtime = json_string_value(json_object_get(next, "Runtime"));
    if (runtime && !str_has_prefix(runtime, "provided") && !json_object_get(next, "Handler")) {
        json_decref(next);
        aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                  "Runtime and Handler are mandatory parameters for functions created with "
                  "deployment packages.");
        goto out;
    }
    new_revision(next);
    json_t *old = fn->config;
    fn->config = next;
    if (function_save(l, fn) < 0) {
        fn->config = old;
        json_decref(next);
        aws_error(req, AWS_REST_JSON, 500, "ServiceException", "could not store function");
        goto out;
    }
    json_decref(old);
    function_reset_runner(fn);
    aws_reply_json(req, 200, in_progress_view(fn->config, 0));
out:
    json_decref(body);
}

static void delete_function(struct lambda *l, struct http_req *req, const char *ref)
{
    struct fn_target t;
    struct function *fn = lambda_lookup(l, req, ref, &t);
    if (!fn)
        return;
    if (strcmp(t.qualifier, "$LATEST") == 0) {
        aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                  "$LATEST version cannot be deleted without deleting the function.");
        return;
    }
    if (t.alias) {
        aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                  "Deletion of aliases is not supported.");
        return;
    }
    char users[1024];
    if (t.version && aliases_referencing(fn, t.version, users, sizeof(users)) > 0) {
        aws_error(req, AWS_REST_JSON, 409, "ResourceConflictException",
                  "Unable to delete version because the following aliases reference it: [%s]",
                  users);
        return;
    }
    if (t.version) {
        if (version_delete(l, fn, t.qualifier) < 0) {
            aws_error(req, AWS_REST_JSON, 500, "ServiceException", "could not delete version");
            return;
        }
    } else {
        if (db_function_delete(l->db, fn->name) < 0) {
            aws_error(req, AWS_REST_JSON, 500, "ServiceException", "could not delete function");
            return;
        }
        lambda_remove(l, fn);
    }
    char id[37];
    aws_request_id(req, id);
    http_reply(req, 204, NULL, "", 0);
}

/*=== Tags ===*/

static void tags_op(struct lambda *l, struct http_req *req, const char *method, const char *arn)
{
    struct param_error err;
    char name[65], qual[130];
    char decoded[512];
    snprintf(decoded, sizeof(decoded), "%s", arn);
    if (percent_decode(decoded, strlen(decoded)) < 0 || !str_has_prefix(decoded, "arn:")) {
        aws_error(req, AWS_REST_JSON, 400, "ValidationException",
                  "1 validation error detected: Value '%.200s' at 'resource' failed to satisfy "
                  "constraint: Member must satisfy regular expression pattern: "
                  "arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:"
                  "\\d{12}:(function|code-signing-config|event-source-mapping):.*",
                  decoded);
        return;
    }
    if (parse_function_ref(arn, name, qual, &err) < 0) {
        reply_error(req, &err);
        return;
    }
    struct function *fn = lambda_find(l, name);
    if (!fn) {
        not_found(l, req, name);
        return;
    }
    if (strcmp(method, "GET") == 0) {
        aws_reply_json(req, 200, json_pack("{s:O}", "Tags", fn->tags));
        return;
    }
    json_t *next = json_deep_copy(fn->tags);
    if (strcmp(method, "POST") == 0) {
        json_t *body = lambda_parse_body(req);
        if (!body) {
            json_decref(next);
            return;
        }
        json_t *tags = json_object_get(body, "Tags");
        if (check_tags(req, tags) < 0) {
            json_decref(body);
            json_decref(next);
            return;
        }
        json_object_update(next, tags);
        json_decref(body);
    } else {
        struct sigv4_request view;
        http_req_sigv4(req, &view);
        for (size_t i = 0; i < view.nquery; i++) {
            if (strcmp(view.query[i].name, "tagKeys") != 0 || !view.query[i].value)
                continue;
            char key[512];
            snprintf(key, sizeof(key), "%s", view.query[i].value);
            for (char *p = key; *p; p++)
                if (*p == '+')
                    *p = ' ';
            if (percent_decode(key, strlen(key)) >= 0)
                json_object_del(next, key);
        }
    }
    if (json_object_size(next) > 50) {
        json_decref(next);
        aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                  "Number of tags exceeds resource tag limit.");
        return;
    }
    json_t *old = fn->tags;
    fn->tags = next;
    if (function_save(l, fn) < 0) {
        fn->tags = old;
        json_decref(next);
        aws_error(req, AWS_REST_JSON, 500, "ServiceException", "could not store tags");
        return;
    }
    int grant_changed = !json_equal(json_object_get(old, LAMBDA_NETWORK_TAG),
                                    json_object_get(next, LAMBDA_NETWORK_TAG));
    json_decref(old);
    if (grant_changed)
        function_reset_runners(l, fn); /* new instances get the new network */
    char id[37];
    aws_request_id(req, id);
    http_reply(req, 204, NULL, "", 0);
}

/*=== Code download ===*/

static void code_signature(const struct lambda *l, const char *hex, long long expires, char out[65])
{
    char msg[128];
    int n = snprintf(msg, sizeof(msg), "%s\n%lld", hex, expires);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), l->cfg->secret_key, (int)strlen(l->cfg->secret_key),
         (const unsigned char *)msg, (size_t)n, mac, &maclen);
    hex_encode(mac, 32, out);
}

void lambda_code_location(struct lambda *l, struct http_req *req, const char *hex, char *out,
                          size_t size)
{
    const char *host = http_req_header(req, "Host");
    long long expires = now_ms() / 1000 + CODE_URL_TTL_S;
    char sig[65];
    code_signature(l, hex, expires, sig);
    snprintf(out, size, "http://%s" CODE_PREFIX "%s.zip?Expires=%lld&Signature=%s",
             host ? host : "127.0.0.1", hex, expires, sig);
}

void lambda_serve_code(struct http_req *req, const struct edge_auth *auth, void *arg)
{
    (void)auth;
    struct lambda *l = arg;
    const char *path = http_req_path(req) + strlen(CODE_PREFIX);
    char hex[65];
    const char *exp = http_req_query(req, "Expires");
    const char *sig = http_req_query(req, "Signature");
    int ok = strlen(path) == 68 && str_has_suffix(path, ".zip") && exp && sig;
    if (ok) {
        memcpy(hex, path, 64);
        hex[64] = '\0';
        for (int i = 0; i < 64 && ok; i++)
            ok = (hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f');
    }
    if (ok) {
        char want[65];
        long long expires = strtoll(exp, NULL, 10);
        code_signature(l, hex, expires, want);
        ok = strlen(sig) == 64 && CRYPTO_memcmp(want, sig, 64) == 0 && expires >= now_ms() / 1000;
    }
    if (!ok) {
        http_reply(req, 403, "application/xml",
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                   "<Message>Request has expired or the signature is invalid</Message></Error>",
                   strlen("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied"
                          "</Code><Message>Request has expired or the signature is invalid"
                          "</Message></Error>"));
        return;
    }
    char file[4200];
    codestore_zip_path(l->code_root, hex, file, sizeof(file));
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        http_reply(req, 404, "application/xml", "<Error><Code>NoSuchKey</Code></Error>", 37);
        return;
    }
    http_reply_fd(req, 200, "application/zip", fd, (size_t)st.st_size);
}

/*=== Routing ===*/

static size_t body_cap(struct http_req *req, void *arg)
{
    (void)arg;
    const char *path = http_req_path(req);
    if (str_has_suffix(path, "/invocations") ||
        str_has_suffix(path, "/response-streaming-invocations"))
        return LAMBDA_SYNC_PAYLOAD_MAX;
    return LAMBDA_REQUEST_MAX;
}

/* A Function URL request carries at most what a synchronous invoke may. */
static size_t url_body_cap(struct http_req *req, void *arg)
{
    (void)req;
    (void)arg;
    return LAMBDA_SYNC_PAYLOAD_MAX;
}

/* "/{ref}[/sub...]": the function segment into ref and what follows it
 * (maybe "") into *sub. rest NULL is no match. */
static int split_function_path(const char *rest, char ref[512], const char **sub)
{
    if (!rest || rest[0] != '/')
        return -1;
    const char *seg = rest + 1;
    const char *slash = strchr(seg, '/');
    size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
    if (n == 0 || n >= 512)
        return -1;
    memcpy(ref, seg, n);
    ref[n] = '\0';
    *sub = slash ? slash : "";
    return 0;
}

/* What follows "<prefix>functions" in path, or NULL. */
static const char *after_functions(const char *path, const char *prefix)
{
    if (!str_has_prefix(path, prefix) || !str_has_prefix(path + strlen(prefix), "functions/"))
        return NULL;
    return path + strlen(prefix) + strlen("functions");
}

static void handle(struct http_req *req, const struct edge_auth *auth, void *arg)
{
    (void)auth;
    struct lambda *l = arg;
    const char *path = http_req_path(req);
    const char *method = http_req_method(req);
    if (http_req_body_too_large(req)) {
        if (str_has_suffix(path, "/invocations") ||
            str_has_suffix(path, "/response-streaming-invocations"))
            aws_error(req, AWS_REST_JSON, 413, "RequestTooLargeException",
                      "Request must be smaller than %d bytes for the InvokeFunction operation",
                      LAMBDA_SYNC_PAYLOAD_MAX);
        else
            aws_error(req, AWS_REST_JSON, 413, "RequestTooLargeException",
                      "Request must be smaller than %d bytes for this operation",
                      LAMBDA_REQUEST_MAX);
        return;
    }
    if (str_has_prefix(path, TAGS_PREFIX)) {
        tags_op(l, req, method, path + strlen(TAGS_PREFIX));
        return;
    }
    if (str_has_prefix(path, ACCOUNT_PREFIX)) {
        const char *rest = path + strlen(ACCOUNT_PREFIX);
        if ((strcmp(rest, "account-settings") == 0 || strcmp(rest, "account-settings/") == 0) &&
            strcmp(method, "GET") == 0)
            account_settings_op(l, req);
        else
            goto unknown;
        return;
    }
    char ref[512];
    const char *sub;
    if (str_has_prefix(path, EVENT_CONFIG_PREFIX)) {
        if (split_function_path(after_functions(path, EVENT_CONFIG_PREFIX), ref, &sub) < 0)
            goto unknown;
        int list = strcmp(sub, "/event-invoke-config/list") == 0 ||
                   strcmp(sub, "/event-invoke-config/list/") == 0;
        if (list ? strcmp(method, "GET") == 0
                 : strcmp(sub, "/event-invoke-config") == 0 ||
                       strcmp(sub, "/event-invoke-config/") == 0)
            event_config_op(l, req, method, ref, list);
        else
            goto unknown;
        return;
    }
    if (str_has_prefix(path, LAMBDA_STREAM_PREFIX)) {
        if (split_function_path(after_functions(path, LAMBDA_STREAM_PREFIX), ref, &sub) < 0)
            goto unknown;
        if (strcmp(sub, "/response-streaming-invocations") == 0 && strcmp(method, "POST") == 0)
            lambda_invoke_stream(l, req, ref);
        else
            goto unknown;
        return;
    }
    if (str_has_prefix(path, URL_CONFIG_PREFIX)) {
        if (split_function_path(after_functions(path, URL_CONFIG_PREFIX), ref, &sub) < 0)
            goto unknown;
        if (strcmp(sub, "/url") == 0 || strcmp(sub, "/url/") == 0)
            urls_op(l, req, method, ref, 0);
        else if (strcmp(sub, "/urls") == 0 || strcmp(sub, "/urls/") == 0)
            urls_op(l, req, method, ref, 1);
        else
            goto unknown;
        return;
    }
    if (str_has_prefix(path, CONCURRENCY_PREFIX) || str_has_prefix(path, CONCURRENCY_GET_PREFIX)) {
        const char *r = after_functions(path, CONCURRENCY_PREFIX);
        if (split_function_path(r ? r : after_functions(path, CONCURRENCY_GET_PREFIX), ref, &sub) <
            0)
            goto unknown;
        if (strcmp(sub, "/concurrency") == 0 || strcmp(sub, "/concurrency/") == 0)
            concurrency_op(l, req, method, ref);
        else if (!r && (strcmp(sub, "/provisioned-concurrency") == 0 ||
                        strcmp(sub, "/provisioned-concurrency/") == 0))
            provisioned_op(l, req, method, ref);
        else
            goto unknown;
        return;
    }
    if (!str_has_prefix(path, P))
        goto unknown;
    const char *rest = path + strlen(P);
    if (strcmp(rest, "") == 0 || strcmp(rest, "/") == 0) {
        if (strcmp(method, "POST") == 0)
            create_function(l, req);
        else if (strcmp(method, "GET") == 0)
            list_functions(l, req);
        else
            goto unknown;
        return;
    }
    if (split_function_path(rest, ref, &sub) < 0)
        goto unknown;
    if (strcmp(sub, "") == 0 || strcmp(sub, "/") == 0) {
        if (strcmp(method, "GET") == 0)
            get_function(l, req, ref);
        else if (strcmp(method, "DELETE") == 0)
            delete_function(l, req, ref);
        else
            goto unknown;
    } else if (strcmp(sub, "/configuration") == 0 || strcmp(sub, "/configuration/") == 0) {
        if (strcmp(method, "GET") == 0)
            get_configuration(l, req, ref);
        else if (strcmp(method, "PUT") == 0)
            update_configuration(l, req, ref);
        else
            goto unknown;
    } else if ((strcmp(sub, "/code") == 0 || strcmp(sub, "/code/") == 0) &&
               strcmp(method, "PUT") == 0) {
        update_code(l, req, ref);
    } else if (strcmp(sub, "/versions") == 0 || strcmp(sub, "/versions/") == 0) {
        if (strcmp(method, "POST") == 0) {
            versions_publish_op(l, req, ref);
        } else if (strcmp(method, "GET") == 0) {
            struct function *fn = lambda_lookup(l, req, ref, NULL);
            if (fn)
                versions_list(l, req, fn);
        } else {
            goto unknown;
        }
    } else if (strcmp(sub, "/aliases") == 0 || strcmp(sub, "/aliases/") == 0) {
        if (strcmp(method, "POST") == 0)
            aliases_create_op(l, req, ref);
        else if (strcmp(method, "GET") == 0)
            aliases_list_op(l, req, ref);
        else
            goto unknown;
    } else if (str_has_prefix(sub, "/aliases/") && !strchr(sub + strlen("/aliases/"), '/')) {
        if (strcmp(method, "GET") == 0 || strcmp(method, "PUT") == 0 ||
            strcmp(method, "DELETE") == 0)
            alias_op(l, req, method, ref, sub + strlen("/aliases/"));
        else
            goto unknown;
    } else if (strcmp(sub, "/policy") == 0 || strcmp(sub, "/policy/") == 0) {
        policy_op(l, req, method, ref, NULL);
    } else if (str_has_prefix(sub, "/policy/") && !strchr(sub + strlen("/policy/"), '/')) {
        policy_op(l, req, method, ref, sub + strlen("/policy/"));
    } else if ((strcmp(sub, "/invocations") == 0 || strcmp(sub, "/invocations/") == 0) &&
               strcmp(method, "POST") == 0) {
        lambda_invoke(l, req, ref);
    } else {
        goto unknown;
    }
    return;
unknown:
    aws_error(req, AWS_REST_JSON, 404, "UnknownOperationException",
              "Ignis does not implement %s %s yet", method, path);
}

/*=== Lifecycle ===*/

struct lambda *lambda_new(struct loop *loop, const struct config *cfg, struct db *db,
                          struct pool *pool, struct workq *wq)
{
    struct lambda *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->loop = loop;
    l->cfg = cfg;
    l->db = db;
    l->pool = pool;
    l->wq = wq;
    snprintf(l->code_root, sizeof(l->code_root), "%.4000s/packages", cfg->data_dir);
    concurrency_init(l);
    function_start_helpers(l);
    if (codestore_init(l->code_root) < 0 || lambda_load(l) < 0) {
        log_error("cannot open the code store or load functions under %s", cfg->data_dir);
        lambda_free(l);
        return NULL;
    }
    log_info("loaded %zu function(s)", l->nfns);
    if (async_init(l) < 0) {
        log_error("cannot load the asynchronous invocation queue");
        lambda_free(l);
        return NULL;
    }
    /* provisioned concurrency is warm again without waiting for an invoke */
    for (size_t i = 0; i < l->nfns; i++)
        provisioned_sync(l, l->fns[i]);
    return l;
}

int lambda_register(struct lambda *l, struct edge *edge)
{
    struct edge_route api = {
        .service = "lambda",
        .path_prefix = "/2015-03-31/",
        .proto = AWS_REST_JSON,
        .handle = handle,
        .body_cap = body_cap,
        .arg = l,
    };
    struct edge_route tags = api;
    tags.path_prefix = TAGS_PREFIX;
    struct edge_route code = {
        .path_prefix = CODE_PREFIX,
        .public = 1,
        .proto = AWS_REST_JSON,
        .handle = lambda_serve_code,
        .arg = l,
    };
    /* Function URLs: by Host (<url-id>.lambda-url.<region>.localhost), or
     * on /_ignis/url/<url-id>/...; they check their own AuthType */
    struct edge_route url_host = {
        .public = 1,
        .match = lambda_url_match,
        .proto = AWS_REST_JSON,
        .handle = lambda_url_serve,
        .body_cap = url_body_cap,
        .arg = l,
    };
    struct edge_route url_path = url_host;
    url_path.match = NULL;
    url_path.path_prefix = LAMBDA_URL_PATH_PREFIX;
    int rc = edge_add_route(edge, &api);
    if (!rc)
        rc = edge_add_route(edge, &tags);
    if (!rc)
        rc = edge_add_route(edge, &code);
    if (!rc)
        rc = edge_add_route(edge, &url_host);
    if (!rc)
        rc = edge_add_route(edge, &url_path);
    /* unsigned requests to the other API versions get Lambda's errors too */
    static const char *const more[] = {EVENT_CONFIG_PREFIX,    CONCURRENCY_PREFIX,
                                       CONCURRENCY_GET_PREFIX, ACCOUNT_PREFIX,
                                       URL_CONFIG_PREFIX,      LAMBDA_STREAM_PREFIX};
    for (size_t i = 0; !rc && i < sizeof(more) / sizeof(more[0]); i++) {
        struct edge_route r = api;
        r.path_prefix = more[i];
        rc = edge_add_route(edge, &r);
    }
    return rc;
}

void lambda_free(struct lambda *l)
{
    if (!l)
        return;
    async_free(l);
    lambda_calls_detach(l);
    while (l->nfns > 0) {
        struct function *fn = l->fns[l->nfns - 1];
        l->nfns--;
        fn->deleted = 1;
        function_unref(fn);
    }
    free(l->fns);
    free(l);
}
