/*
 * policy: a function's resource-based policy (AddPermission, GetPolicy,
 * RemovePermission: /2015-03-31/functions/{name}/policy[/{sid}]). One policy
 * per function (unqualified) and per published version or alias, kept in the
 * function's record (fn->policies: qualifier -> list of statements, "$LATEST"
 * for the unqualified function) and gone with its version, alias or
 * function. Statements are built from the request exactly as Lambda renders
 * them (Principal as {"Service"}/{"AWS"}/"*", Conditions StringEquals before
 * ArnLike). A change gives the policy's resource (the function's $LATEST
 * configuration, the version or the alias) a new RevisionId, which GetPolicy
 * answers and RevisionId parameters are checked against. Policies are stored
 * and returned only: nothing enforces them yet (that comes with IAM).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "services/lambda/lambda_internal.h"

#define POLICY_MAX 20480 /* bytes of the policy document */
#define NO_POLICY "No policy is associated with the given resource."

/* Where a request's policy lives: the key in fn->policies and the record
 * whose RevisionId is the policy's. */
struct policy_target {
    struct function *fn;
    char key[130];  /* "$LATEST" (unqualified), a version number or an alias */
    json_t *holder; /* the object carrying "RevisionId" */
    char resource[400];
};

static void target_from(struct lambda *l, const struct fn_target *t, struct policy_target *p)
{
    p->fn = t->fn;
    int qualified = t->qualifier[0] && strcmp(t->qualifier, "$LATEST") != 0;
    snprintf(p->key, sizeof(p->key), "%s", qualified ? t->qualifier : "$LATEST");
    if (t->alias)
        p->holder = t->alias;
    else if (t->version)
        p->holder = t->config; /* the version's Configuration */
    else
        p->holder = t->fn->config;
    char arn[256];
    function_arn(l, t->fn->name, arn, sizeof(arn));
    if (qualified)
        snprintf(p->resource, sizeof(p->resource), "%s:%s", arn, t->qualifier);
    else
        snprintf(p->resource, sizeof(p->resource), "%s", arn);
}

static const char *target_revision(const struct policy_target *p)
{
    return json_string_value(json_object_get(p->holder, "RevisionId"));
}

/* The policy document as GetPolicy answers it (a new string, caller frees). */
static char *policy_text(json_t *statements)
{
    json_t *doc = json_pack("{s:s, s:s, s:O}", "Version", "2012-10-17", "Id", "default",
                            "Statement", statements);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return text;
}

/* Saves fn with key's statements replaced by next (NULL or empty: no
 * policy) and a new RevisionId on the holder; restores both on failure. */
static int store(struct lambda *l, struct policy_target *p, json_t *next)
{
    struct function *fn = p->fn;
    json_t *old = json_incref(json_object_get(fn->policies, p->key));
    json_t *old_rev = json_incref(json_object_get(p->holder, "RevisionId"));
    if (next && json_array_size(next) > 0)
        json_object_set(fn->policies, p->key, next);
    else
        json_object_del(fn->policies, p->key);
    char id[37];
    uuid_v4(id);
    json_object_set_new(p->holder, "RevisionId", json_string(id));
    int rc = function_save(l, fn);
    if (rc < 0) {
        if (old)
            json_object_set(fn->policies, p->key, old);
        else
            json_object_del(fn->policies, p->key);
        if (old_rev)
            json_object_set(p->holder, "RevisionId", old_rev);
    }
    json_decref(old);
    json_decref(old_rev);
    return rc;
}

/*=== Statements ===*/

static int matches(const char *s, int (*ok)(int c), const char *extra)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!ok((unsigned char)*s) && !strchr(extra, *s))
            return 0;
    return 1;
}

static int all_digits(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* Action: (lambda:[*]|lambda:[a-zA-Z]+|[*]) */
static int action_ok(const char *a)
{
    if (strcmp(a, "*") == 0 || strcmp(a, "lambda:*") == 0)
        return 1;
    return str_has_prefix(a, "lambda:") && matches(a + 7, isalpha, "");
}

/* Principal as Lambda writes it into the statement (a new reference), or NULL. */
static json_t *principal_of(const char *p)
{
    if (strcmp(p, "*") == 0)
        return json_string("*");
    if (all_digits(p, 12)) {
        char arn[64];
        snprintf(arn, sizeof(arn), "arn:aws:iam::%s:root", p);
        return json_pack("{s:s}", "AWS", arn);
    }
    if (str_has_prefix(p, "arn:aws:iam::") || str_has_prefix(p, "arn:aws:sts::"))
        return json_pack("{s:s}", "AWS", p);
    /* a service principal: s3.amazonaws.com, events.amazonaws.com, ... */
    if (strchr(p, '.') && !strchr(p, ':') && !strchr(p, '/') && matches(p, isalnum, ".-"))
        return json_pack("{s:s}", "Service", p);
    return NULL;
}

/* An optional string member: 1 absent, 0 with *out set, -1 with err. */
static int opt_string(json_t *body, const char *key, const char **out, struct param_error *err)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 1;
    if (!json_is_string(v))
        return param_fail(err, 400, "InvalidRequestContentException",
                          "Could not parse request body into json: %s must be a string", key);
    *out = json_string_value(v);
    return 0;
}

/* The statement AddPermission's body asks for (a new reference), or NULL with err. */
static json_t *build_statement(json_t *body, const char *resource, struct param_error *err)
{
    static const char *const fields[] = {
        "StatementId",   "Action",           "Principal",      "SourceArn",
        "SourceAccount", "EventSourceToken", "PrincipalOrgID", "FunctionUrlAuthType"};
    static const char *const wire[] = {
        "statementId",   "action",           "principal",      "sourceArn",
        "sourceAccount", "eventSourceToken", "principalOrgID", "functionUrlAuthType"};
    const char *v[8];
    for (size_t i = 0; i < 8; i++) {
        int rc = opt_string(body, fields[i], &v[i], err);
        if (rc < 0)
            return NULL;
        if (rc > 0 && i < 3) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "1 validation error detected: Value null at '%s' failed to satisfy "
                     "constraint: Member must not be null",
                     wire[i]);
            param_fail(err, 400, "ValidationException", "%s", msg);
            return NULL;
        }
    }
    const char *sid = v[0], *action = v[1], *principal = v[2], *source_arn = v[3], *account = v[4],
               *token = v[5], *org = v[6], *auth = v[7];
    if (strlen(sid) > 100) {
        param_validation(err, sid, "statementId",
                         "Member must have length less than or equal to 100");
        return NULL;
    }
    if (!matches(sid, isalnum, "-_")) {
        param_validation(err, sid, "statementId",
                         "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)");
        return NULL;
    }
    if (!action_ok(action)) {
        param_validation(err, action, "action",
                         "Member must satisfy regular expression pattern: "
                         "(lambda:[*]|lambda:[a-zA-Z]+|[*])");
        return NULL;
    }
    if (source_arn && !(str_has_prefix(source_arn, "arn:") && strchr(source_arn + 4, ':'))) {
        param_validation(err, source_arn, "sourceArn",
                         "Member must satisfy regular expression pattern: "
                         "arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:([a-z]{2}(-gov)?-[a-z]+-\\d{1})"
                         "?:(\\d{12})?:(.*)");
        return NULL;
    }
    if (account && !all_digits(account, 12)) {
        param_validation(err, account, "sourceAccount",
                         "Member must satisfy regular expression pattern: \\d{12}");
        return NULL;
    }
    if (token && (strlen(token) > 256 || (*token && !matches(token, isalnum, "._-")))) {
        param_validation(err, token, "eventSourceToken",
                         "Member must satisfy regular expression pattern: [a-zA-Z0-9._\\-]+");
        return NULL;
    }
    if (org && (strlen(org) < 12 || strlen(org) > 34 || !str_has_prefix(org, "o-") ||
                !matches(org + 2, isalnum, "") || strlen(org) - 2 < 10)) {
        param_validation(err, org, "principalOrgID",
                         "Member must satisfy regular expression pattern: ^o-[a-z0-9]{10,32}$");
        return NULL;
    }
    if (auth && strcmp(auth, "NONE") != 0 && strcmp(auth, "AWS_IAM") != 0) {
        param_validation(err, auth, "functionUrlAuthType",
                         "Member must satisfy enum value set: [NONE, AWS_IAM]");
        return NULL;
    }
    json_t *who = principal_of(principal);
    if (!who) {
        param_fail(err, 400, "InvalidParameterValueException",
                   "The provided principal was invalid. Please check the principal and try "
                   "again.");
        return NULL;
    }
    json_t *st = json_pack("{s:s, s:s, s:o, s:s, s:s}", "Sid", sid, "Effect", "Allow", "Principal",
                           who, "Action", action, "Resource", resource);
    json_t *equals = json_object();
    if (account)
        json_object_set_new(equals, "AWS:SourceAccount", json_string(account));
    if (org)
        json_object_set_new(equals, "aws:PrincipalOrgID", json_string(org));
    if (token)
        json_object_set_new(equals, "lambda:EventSourceToken", json_string(token));
    if (auth)
        json_object_set_new(equals, "lambda:FunctionUrlAuthType", json_string(auth));
    json_t *cond = json_object();
    if (json_object_size(equals) > 0)
        json_object_set(cond, "StringEquals", equals);
    json_decref(equals);
    if (source_arn)
        json_object_set_new(cond, "ArnLike", json_pack("{s:s}", "AWS:SourceArn", source_arn));
    if (json_object_size(cond) > 0)
        json_object_set(st, "Condition", cond);
    json_decref(cond);
    return st;
}

static json_t *find_statement(json_t *statements, const char *sid, size_t *index)
{
    size_t i;
    json_t *st;
    json_array_foreach(statements, i, st)
    {
        const char *have = json_string_value(json_object_get(st, "Sid"));
        if (have && strcmp(have, sid) == 0) {
            if (index)
                *index = i;
            return st;
        }
    }
    return NULL;
}

/*=== Operations ===*/

static void add_permission(struct lambda *l, struct http_req *req, const char *ref)
{
    struct fn_target t;
    if (!lambda_lookup(l, req, ref, &t))
        return;
    json_t *body = lambda_parse_body(req);
    if (!body)
        return;
    struct param_error err;
    struct policy_target p;
    target_from(l, &t, &p);
    json_t *st = NULL, *next = NULL;
    char *text = NULL;
    if (strcmp(t.qualifier, "$LATEST") == 0) {
        aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                  "We currently do not support adding policies for $LATEST.");
        goto out;
    }
    if (!(st = build_statement(body, p.resource, &err))) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
        goto out;
    }
    if (lambda_check_revision(req, body, target_revision(&p)) < 0)
        goto out;
    json_t *have = json_object_get(t.fn->policies, p.key);
    const char *sid = json_string_value(json_object_get(st, "Sid"));
    if (find_statement(have, sid, NULL)) {
        aws_error(req, AWS_REST_JSON, 409, "ResourceConflictException",
                  "The statement id (%s) provided already exists. Please provide a new statement "
                  "id, or remove the existing statement.",
                  sid);
        goto out;
    }
    next = have ? json_copy(have) : json_array();
    json_array_append(next, st);
    text = policy_text(next);
    if (!text) {
        aws_error(req, AWS_REST_JSON, 500, "ServiceException", "out of memory");
        goto out;
    }
    if (strlen(text) > POLICY_MAX) {
        aws_error(req, AWS_REST_JSON, 400, "PolicyLengthExceededException",
                  "The final policy size (%zu) is bigger than the limit (%d).", strlen(text),
                  POLICY_MAX);
        goto out;
    }
    if (store(l, &p, next) < 0) {
        aws_error(req, AWS_REST_JSON, 500, "ServiceException", "could not store the policy");
        goto out;
    }
    char *statement = json_dumps(st, JSON_COMPACT);
    aws_reply_json(req, 201, json_pack("{s:s}", "Statement", statement ? statement : ""));
    free(statement);
out:
    free(text);
    json_decref(next);
    json_decref(st);
    json_decref(body);
}

static void get_policy(struct lambda *l, struct http_req *req, const char *ref)
{
    struct fn_target t;
    if (!lambda_lookup(l, req, ref, &t))
        return;
    struct policy_target p;
    target_from(l, &t, &p);
    json_t *statements = json_object_get(t.fn->policies, p.key);
    if (json_array_size(statements) == 0) {
        aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException", NO_POLICY);
        return;
    }
    char *text = policy_text(statements);
    const char *rev = target_revision(&p);
    aws_reply_json(
        req, 200,
        json_pack("{s:s, s:s}", "Policy", text ? text : "", "RevisionId", rev ? rev : ""));
    free(text);
}

static void remove_permission(struct lambda *l, struct http_req *req, const char *ref,
                              const char *segment)
{
    struct param_error err;
    char name[65], qual[130], sid[512];
    snprintf(sid, sizeof(sid), "%s", segment);
    long n = percent_decode(sid, strlen(sid));
    if (n < 0 || memchr(sid, '\0', (size_t)n) || n > 100 || !matches(sid, isalnum, "-_.")) {
        param_validation(&err, segment, "statementId",
                         n > 100 ? "Member must have length less than or equal to 100"
                                 : "Member must satisfy regular expression pattern: "
                                   "([a-zA-Z0-9-_.]+)");
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
        return;
    }
    if (parse_function_ref(ref, name, qual, &err) < 0) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
        return;
    }
    const char *q = http_req_query(req, "Qualifier");
    if (q && *q)
        snprintf(qual, sizeof(qual), "%s", q);
    struct function *fn = lambda_find(l, name);
    struct fn_target t;
    if (!fn || lambda_resolve(fn, qual, &t) < 0) {
        char arn[256];
        function_arn(l, name, arn, sizeof(arn));
        aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException",
                  "No policy found for: %s%s%s", arn, fn ? ":" : "", fn ? qual : "");
        return;
    }
    struct policy_target p;
    target_from(l, &t, &p);
    json_t *have = json_object_get(fn->policies, p.key);
    size_t index;
    if (json_array_size(have) == 0) {
        aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException", NO_POLICY);
        return;
    }
    if (!find_statement(have, sid, &index)) {
        aws_error(req, AWS_REST_JSON, 404, "ResourceNotFoundException",
                  "Statement %s is not found in resource policy.", sid);
        return;
    }
    const char *want = http_req_query(req, "RevisionId");
    const char *rev = target_revision(&p);
    if (want && *want && rev && strcmp(want, rev) != 0) {
        aws_error(req, AWS_REST_JSON, 412, "PreconditionFailedException",
                  "The Revision Id provided does not match the latest Revision Id. Call the "
                  "GetFunction/GetAlias API to retrieve the latest Revision Id");
        return;
    }
    json_t *next = json_copy(have);
    json_array_remove(next, index);
    int rc = store(l, &p, next);
    json_decref(next);
    if (rc < 0) {
        aws_error(req, AWS_REST_JSON, 500, "ServiceException", "could not store the policy");
        return;
    }
    char id[37];
    aws_request_id(req, id);
    http_reply(req, 204, NULL, "", 0);
}

void policy_op(struct lambda *l, struct http_req *req, const char *method, const char *ref,
               const char *sid)
{
    if (sid && strcmp(method, "DELETE") == 0)
        remove_permission(l, req, ref, sid);
    else if (!sid && strcmp(method, "POST") == 0)
        add_permission(l, req, ref);
    else if (!sid && strcmp(method, "GET") == 0)
        get_policy(l, req, ref);
    else
        aws_error(req, AWS_REST_JSON, 404, "UnknownOperationException",
                  "Ignis does not implement %s on function policies", method);
}

json_t *policies_load(json_t *stored, struct function *fn)
{
    json_t *out = json_object();
    const char *key;
    json_t *list;
    json_object_foreach(stored, key, list)
    {
        if (json_is_array(list) && json_array_size(list) > 0 &&
            (strcmp(key, "$LATEST") == 0 || json_object_get(fn->versions, key) ||
             json_object_get(fn->aliases, key)))
            json_object_set(out, key, list);
    }
    return out;
}
