/*
 * versions: published function versions (PublishVersion, the Publish flag of
 * CreateFunction and UpdateFunctionCode, ListVersionsByFunction, DeleteFunction
 * with a Qualifier). A version is an immutable snapshot of $LATEST's
 * configuration and code, numbered from 1 and never reused; it lives in the
 * function's record; deleting one deletes its event invoke config and its
 * provisioned concurrency config (and so its provisioned instances). A
 * version an alias points to cannot be deleted (see aliases.c and
 * DeleteFunction in api.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "services/lambda/lambda_internal.h"

json_t *version_config(struct function *fn, const char *version)
{
    return json_object_get(json_object_get(fn->versions, version), "Configuration");
}

json_t *version_publish(struct lambda *l, struct function *fn, const char *description,
                        struct param_error *err)
{
    const char *revision = json_string_value(json_object_get(fn->config, "RevisionId"));
    if (fn->last_version > 0) {
        char last[24];
        snprintf(last, sizeof(last), "%lld", (long long)fn->last_version);
        json_t *rec = json_object_get(fn->versions, last);
        const char *source = json_string_value(json_object_get(rec, "SourceRevisionId"));
        /* "Lambda doesn't publish a version if the function's configuration and
         * code haven't changed since the last version." */
        if (rec && source && revision && strcmp(source, revision) == 0 &&
            (!description ||
             strcmp(description, json_string_value(json_object_get(
                                     json_object_get(rec, "Configuration"), "Description"))) == 0))
            return rec;
    }
    if (fn->last_version >= 99999999) {
        err->status = 400;
        err->code = "InvalidParameterValueException";
        snprintf(err->message, sizeof(err->message), "Too many versions of %s", fn->name);
        return NULL;
    }
    json_int_t n = fn->last_version + 1;
    char num[24], arn[320], base[256];
    snprintf(num, sizeof(num), "%lld", (long long)n);
    function_arn(l, fn->name, base, sizeof(base));
    snprintf(arn, sizeof(arn), "%s:%s", base, num);
    json_t *c = json_deep_copy(fn->config);
    json_object_set_new(c, "Version", json_string(num));
    json_object_set_new(c, "FunctionArn", json_string(arn));
    json_object_set_new(c, "State", json_string("Active"));
    json_object_set_new(c, "LastUpdateStatus", json_string("Successful"));
    static const char *const transient[] = {"StateReason", "StateReasonCode",
                                            "LastUpdateStatusReason", "LastUpdateStatusReasonCode",
                                            NULL};
    for (const char *const *k = transient; *k; k++)
        json_object_del(c, *k);
    if (description)
        json_object_set_new(c, "Description", json_string(description));
    char id[37];
    uuid_v4(id);
    json_object_set_new(c, "RevisionId", json_string(id));
    json_t *rec = json_pack("{s:o, s:s, s:s}", "Configuration", c, "CodeHex", fn->code_hex,
                            "SourceRevisionId", revision ? revision : "");
    json_object_set_new(fn->versions, num, rec);
    fn->last_version = n;
    if (function_save(l, fn) < 0) {
        json_object_del(fn->versions, num);
        fn->last_version = n - 1;
        err->status = 500;
        err->code = "ServiceException";
        snprintf(err->message, sizeof(err->message), "could not store the version");
        return NULL;
    }
    return rec;
}

int version_delete(struct lambda *l, struct function *fn, const char *version)
{
    if (!json_object_get(fn->versions, version))
        return -1;
    for (size_t i = 0; i < fn->nvruns; i++) {
        if (strcmp(fn->vruns[i].version, version) == 0) {
            pool_fn_retire(fn->vruns[i].run);
            fn->vruns[i] = fn->vruns[--fn->nvruns];
            break;
        }
    }
    json_object_del(fn->versions, version);
    json_object_del(fn->event_configs, version); /* its async settings go with it */
    json_object_del(fn->policies, version);      /* and its policy */
    json_decref(provisioned_take(l, fn, version));
    return function_save(l, fn);
}

/* PublishVersion: POST /2015-03-31/functions/{name}/versions */
void versions_publish_op(struct lambda *l, struct http_req *req, const char *ref)
{
    struct function *fn = lambda_lookup(l, req, ref, NULL);
    if (!fn)
        return;
    size_t len;
    const char *text = http_req_body(req, &len);
    json_t *body = len ? json_loadb(text, len, 0, NULL) : json_object();
    if (!json_is_object(body)) {
        json_decref(body);
        aws_error(req, AWS_REST_JSON, 400, "InvalidRequestContentException",
                  "Could not parse request body into json");
        return;
    }
    char arn[256];
    function_arn(l, fn->name, arn, sizeof(arn));
    const char *sha = json_string_value(json_object_get(body, "CodeSha256"));
    const char *rev = json_string_value(json_object_get(body, "RevisionId"));
    const char *desc = json_string_value(json_object_get(body, "Description"));
    struct param_error err;
    json_t *rec;
    if (fn->updating) {
        aws_error(req, AWS_REST_JSON, 409, "ResourceConflictException",
                  "The operation cannot be performed at this time. An update is in progress for "
                  "resource: %s",
                  arn);
    } else if (sha && strcmp(sha, json_string_value(json_object_get(fn->config, "CodeSha256")))) {
        aws_error(req, AWS_REST_JSON, 412, "PreconditionFailedException",
                  "CodeSHA256 (%s) is different from current CodeSHA256 in $LATEST (%s). Please "
                  "try again with the CodeSHA256 in $LATEST.",
                  sha, json_string_value(json_object_get(fn->config, "CodeSha256")));
    } else if (rev && strcmp(rev, json_string_value(json_object_get(fn->config, "RevisionId")))) {
        aws_error(req, AWS_REST_JSON, 412, "PreconditionFailedException",
                  "The Revision Id provided does not match the latest Revision Id. Call the "
                  "GetFunction/GetAlias API to retrieve the latest Revision Id");
    } else if (!(rec = version_publish(l, fn, desc, &err))) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
    } else {
        aws_reply_json(req, 201, json_deep_copy(json_object_get(rec, "Configuration")));
    }
    json_decref(body);
}

/* ListVersionsByFunction: $LATEST, then the versions in order. */
void versions_list(struct lambda *l, struct http_req *req, struct function *fn)
{
    (void)l;
    long max;
    if (lambda_page_size(req, &max) < 0)
        return;
    /* positions: 0 = $LATEST, k = version k; the marker is the next position */
    long start = 0;
    const char *marker = http_req_query(req, "Marker");
    if (marker && *marker) {
        char *end;
        start = strtol(marker, &end, 10);
        if (*end || start < 0) {
            aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                      "Invalid Marker: %.64s", marker);
            return;
        }
    }
    json_t *list = json_array();
    long pos = start, count = 0;
    for (; pos <= fn->last_version && count < max; pos++) {
        json_t *c;
        if (pos == 0) {
            c = listing_view(fn->config);
        } else {
            char num[24];
            snprintf(num, sizeof(num), "%ld", pos);
            json_t *vc = version_config(fn, num);
            if (!vc)
                continue; /* deleted */
            c = listing_view(vc);
        }
        json_array_append_new(list, c);
        count++;
    }
    json_t *doc = json_pack("{s:o}", "Versions", list);
    if (pos <= fn->last_version) {
        char next[24];
        snprintf(next, sizeof(next), "%ld", pos);
        json_object_set_new(doc, "NextMarker", json_string(next));
    }
    aws_reply_json(req, 200, doc);
}
