/*
 * logs: the service's route and dispatch by X-Amz-Target, request parsing
 * and validation with AWS's error codes and wording, and the group and
 * stream operations (DescribeLogGroups, DescribeLogStreams, CreateLogGroup,
 * DeleteLogGroup). The event reads are in events.c, filter patterns in
 * pattern.c. Holds no state beyond the store and config it was given; all
 * of it runs on the loop thread and answers before returning.
 */
#include "services/logs/logs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "edge/aws_error.h"
#include "services/logs/logs_internal.h"

#define TARGET_PREFIX "Logs_20140328."
#define DESCRIBE_LIMIT 50

/*=== Answers ===*/

void logs_reply_text(struct logs_call *c, char *text, size_t len)
{
    char id[37];
    aws_request_id(c->req, id);
    http_reply_take(c->req, 200, "application/x-amz-json-1.1", text, len);
}

void logs_reply(struct logs_call *c, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text) {
        aws_error(c->req, AWS_JSON_11, 500, "ServiceUnavailableException",
                  "Out of memory encoding the answer.");
        return;
    }
    logs_reply_text(c, text, strlen(text));
}

void logs_fail(struct logs_call *c, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    aws_error(c->req, AWS_JSON_11, status, code, "%s", msg);
}

void logs_no_group(struct logs_call *c)
{
    logs_fail(c, 400, "ResourceNotFoundException", "The specified log group does not exist.");
}

static void invalid(struct logs_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void invalid(struct logs_call *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    logs_fail(c, 400, "InvalidParameterException", "%s", msg);
}

/*=== Parameters ===*/

static void wrong_type(struct logs_call *c, const char *name, const char *want)
{
    logs_fail(c, 400, "SerializationException", "Expected %s for '%s'.", want, name);
}

int logs_param_str(struct logs_call *c, const char *name, int required, size_t max,
                   const char **out)
{
    json_t *v = json_object_get(c->body, name);
    if (!v || json_is_null(v)) {
        if (!required)
            return 1;
        invalid(c,
                "1 validation error detected: Value null at '%s' failed to satisfy constraint: "
                "Member must not be null",
                name);
        return -1;
    }
    if (!json_is_string(v)) {
        wrong_type(c, name, "a string");
        return -1;
    }
    size_t len = json_string_length(v);
    if (len < 1 || len > max) {
        invalid(c,
                "1 validation error detected: Value '%.64s' at '%s' failed to satisfy "
                "constraint: Member must have length %s %zu",
                json_string_value(v), name,
                len < 1 ? "greater than or equal to" : "less than or equal to", len < 1 ? 1 : max);
        return -1;
    }
    if (strlen(json_string_value(v)) != len) {
        invalid(c, "Value at '%s' must not contain NUL characters.", name);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int logs_param_long(struct logs_call *c, const char *name, int64_t min, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(c->body, name);
    if (!v || json_is_null(v))
        return 1;
    if (!json_is_integer(v)) {
        wrong_type(c, name, "an integer");
        return -1;
    }
    json_int_t x = json_integer_value(v);
    if (x < min || x > max) {
        invalid(c,
                "1 validation error detected: Value '%lld' at '%s' failed to satisfy "
                "constraint: Member must have value %s %lld",
                (long long)x, name, x < min ? "greater than or equal to" : "less than or equal to",
                (long long)(x < min ? min : max));
        return -1;
    }
    *out = x;
    return 0;
}

int logs_param_bool(struct logs_call *c, const char *name, int *out)
{
    json_t *v = json_object_get(c->body, name);
    if (!v || json_is_null(v))
        return 1;
    if (!json_is_boolean(v)) {
        wrong_type(c, name, "a boolean");
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

static int group_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '-' || ch == '_' || ch == '/' || ch == '#';
}

int logs_check_group_name(struct logs_call *c, const char *member, const char *name)
{
    for (const char *p = name; *p; p++) {
        if (!group_char(*p)) {
            invalid(c,
                    "1 validation error detected: Value '%.512s' at '%s' failed to satisfy "
                    "constraint: Member must satisfy regular expression pattern: "
                    "[\\.\\-_/#A-Za-z0-9]+",
                    name, member);
            return -1;
        }
    }
    return 0;
}

int logs_param_group(struct logs_call *c, const char **out)
{
    const char *name = NULL, *ident = NULL;
    int rn = logs_param_str(c, "logGroupName", 0, LOGS_MAX_NAME, &name);
    if (rn < 0)
        return -1;
    int ri = logs_param_str(c, "logGroupIdentifier", 0, 2048, &ident);
    if (ri < 0)
        return -1;
    if (rn == 0 && ri == 0) {
        invalid(c, "LogGroup name and LogGroup ARN are mutually exclusive parameters.");
        return -1;
    }
    if (rn != 0 && ri != 0) {
        invalid(c, "Either LogGroupName or LogGroupIdentifier must be specified.");
        return -1;
    }
    if (ri == 0) {
        /* arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*] */
        const char *g = strstr(ident, ":log-group:");
        if (str_has_prefix(ident, "arn:") && g) {
            static char buf[LOGS_MAX_NAME + 3]; /* the name and maybe ":*" */
            g += strlen(":log-group:");
            if (strlen(g) >= sizeof(buf)) {
                invalid(c, "The log group name in logGroupIdentifier is longer than %d.",
                        LOGS_MAX_NAME);
                return -1;
            }
            snprintf(buf, sizeof(buf), "%s", g);
            size_t len = strlen(buf);
            if (len >= 2 && strcmp(buf + len - 2, ":*") == 0)
                buf[len - 2] = '\0';
            name = buf;
        } else {
            name = ident;
        }
        if (!*name) {
            invalid(c, "The specified logGroupIdentifier is not a log group name or ARN.");
            return -1;
        }
    }
    if (logs_check_group_name(c, ri == 0 ? "logGroupIdentifier" : "logGroupName", name) < 0)
        return -1;
    *out = name;
    return 0;
}

void logs_group_arn(const struct logs *svc, const char *group, char *out, size_t size)
{
    snprintf(out, size, "arn:aws:logs:%s:%s:log-group:%s", svc->cfg->region, svc->cfg->account_id,
             group);
}

/* Page tokens of the listings: a letter, '/', and the hex of the last key. */
static char *hex_token(const char *kind, const char *key)
{
    size_t n = strlen(key), k = strlen(kind);
    char *t = malloc(k + 2 * n + 1);
    if (!t)
        return NULL;
    memcpy(t, kind, k);
    hex_encode((const unsigned char *)key, n, t + k);
    return t;
}

/* The key of a hex token; NULL if it is not one of this kind. */
static char *hex_untoken(const char *kind, const char *token)
{
    if (!str_has_prefix(token, kind))
        return NULL;
    const char *h = token + strlen(kind);
    size_t n = strlen(h);
    if (n == 0 || n % 2 || n > 4 * LOGS_MAX_NAME)
        return NULL;
    char *out = malloc(n / 2 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1 || v == 0) {
            free(out);
            return NULL;
        }
        out[i] = (char)v;
    }
    out[n / 2] = '\0';
    return out;
}

static void bad_token(struct logs_call *c)
{
    invalid(c, "The specified nextToken is invalid.");
}

/*=== DescribeLogGroups ===*/

static int contains_ci(const char *hay, const char *needle)
{
    return !*needle || strcasestr(hay, needle) != NULL;
}

static void describe_log_groups(struct logs_call *c)
{
    const char *prefix = NULL, *pattern = NULL, *token = NULL;
    int64_t limit = DESCRIBE_LIMIT;
    if (logs_param_str(c, "logGroupNamePrefix", 0, LOGS_MAX_NAME, &prefix) < 0 ||
        logs_param_str(c, "nextToken", 0, 8192, &token) < 0 ||
        logs_param_long(c, "limit", 1, DESCRIBE_LIMIT, &limit) < 0)
        return;
    json_t *pv = json_object_get(c->body, "logGroupNamePattern"); /* may be "" */
    if (pv && !json_is_null(pv)) {
        if (!json_is_string(pv)) {
            wrong_type(c, "logGroupNamePattern", "a string");
            return;
        }
        pattern = json_string_value(pv);
    }
    if (prefix && logs_check_group_name(c, "logGroupNamePrefix", prefix) < 0)
        return;
    if (prefix && pattern) {
        invalid(c, "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive "
                   "parameters.");
        return;
    }
    char *after = NULL;
    if (token && !(after = hex_untoken("g/", token))) {
        bad_token(c);
        return;
    }
    char **names;
    size_t n;
    int rc = logstore_groups(c->svc->ls, &names, &n);
    if (rc < 0) {
        free(after);
        logs_fail(c, 500, "ServiceUnavailableException", "Cannot list log groups: %s",
                  strerror(-rc));
        return;
    }
    json_t *groups = json_array();
    const char *last = NULL;
    int more = 0;
    for (size_t i = 0; i < n; i++) {
        const char *g = names[i];
        if ((prefix && !str_has_prefix(g, prefix)) || (pattern && !contains_ci(g, pattern)))
            continue;
        if (after && strcmp(g, after) <= 0)
            continue;
        if ((int64_t)json_array_size(groups) == limit) {
            more = 1;
            break;
        }
        struct loggroup_info info;
        if (logstore_group_info(c->svc->ls, g, &info) < 0)
            continue;
        char arn[1200], star[1210];
        logs_group_arn(c->svc, g, arn, sizeof(arn));
        snprintf(star, sizeof(star), "%s:*", arn);
        json_t *entry = json_pack("{s:s, s:I, s:i, s:s, s:I, s:s, s:s}", "logGroupName", g,
                                  "creationTime", (json_int_t)info.creation_ms, "metricFilterCount",
                                  0, "arn", star, "storedBytes", (json_int_t)info.bytes,
                                  "logGroupClass", "STANDARD", "logGroupArn", arn);
        if (info.retention_days) /* CloudWatch leaves it out for "never expire" */
            json_object_set_new(entry, "retentionInDays", json_integer(info.retention_days));
        json_array_append_new(groups, entry);
        last = g;
    }
    json_t *doc = json_pack("{s:o}", "logGroups", groups);
    char *next = more && last ? hex_token("g/", last) : NULL;
    if (next)
        json_object_set_new(doc, "nextToken", json_string(next));
    free(next);
    free(after);
    logs_reply(c, doc);
    logstore_free_names(names, n);
}

/*=== DescribeLogStreams ===*/

struct stream_order {
    int by_time, descending;
};

static int stream_cmp_key(const struct stream_order *o, const struct logstream_info *a, int64_t t,
                          const char *name)
{
    if (o->by_time && a->last_ms != t)
        return a->last_ms < t ? -1 : 1;
    return strcmp(a->name, name);
}

static int stream_cmp(const void *pa, const void *pb, void *arg)
{
    const struct stream_order *o = arg;
    const struct logstream_info *a = pa, *b = pb;
    int r = stream_cmp_key(o, a, b->last_ms, b->name);
    return o->descending ? -r : r;
}

static void describe_log_streams(struct logs_call *c)
{
    const char *group, *prefix = NULL, *order_by = NULL, *token = NULL;
    int64_t limit = DESCRIBE_LIMIT;
    int descending = 0;
    if (logs_param_group(c, &group) < 0 ||
        logs_param_str(c, "logStreamNamePrefix", 0, LOGS_MAX_NAME, &prefix) < 0 ||
        logs_param_str(c, "orderBy", 0, 64, &order_by) < 0 ||
        logs_param_bool(c, "descending", &descending) < 0 ||
        logs_param_str(c, "nextToken", 0, 8192, &token) < 0 ||
        logs_param_long(c, "limit", 1, DESCRIBE_LIMIT, &limit) < 0)
        return;
    int by_time = 0;
    if (order_by) {
        if (strcmp(order_by, "LastEventTime") == 0) {
            by_time = 1;
        } else if (strcmp(order_by, "LogStreamName") != 0) {
            invalid(c,
                    "1 validation error detected: Value '%.64s' at 'orderBy' failed to satisfy "
                    "constraint: Member must satisfy enum value set: [LogStreamName, "
                    "LastEventTime]",
                    order_by);
            return;
        }
    }
    if (by_time && prefix) {
        invalid(c, "Cannot order by LastEventTime with a logStreamNamePrefix.");
        return;
    }
    /* token: "n/<hex name>" or "t/<ms>/<hex name>" */
    char *after = NULL;
    int64_t after_ms = 0;
    if (token) {
        if (by_time && str_has_prefix(token, "t/")) {
            char *end;
            after_ms = strtoll(token + 2, &end, 10);
            if (*end == '/')
                after = hex_untoken("/", end);
        } else if (!by_time) {
            after = hex_untoken("n/", token);
        }
        if (!after) {
            bad_token(c);
            return;
        }
    }
    struct logstream_info *v;
    size_t n;
    int rc = logstore_streams(c->svc->ls, group, &v, &n);
    if (rc < 0) {
        free(after);
        if (rc == -ENOENT)
            logs_no_group(c);
        else
            logs_fail(c, 500, "ServiceUnavailableException", "Cannot list log streams: %s",
                      strerror(-rc));
        return;
    }
    struct stream_order order = {by_time, descending};
    if (n > 1)
        qsort_r(v, n, sizeof(*v), stream_cmp, &order);
    json_t *streams = json_array();
    const struct logstream_info *last = NULL;
    int more = 0;
    char garn[1200];
    logs_group_arn(c->svc, group, garn, sizeof(garn));
    for (size_t i = 0; i < n; i++) {
        const struct logstream_info *s = &v[i];
        if (prefix && !str_has_prefix(s->name, prefix))
            continue;
        if (after) {
            int r = stream_cmp_key(&order, s, after_ms, after);
            if (descending ? r >= 0 : r <= 0)
                continue;
        }
        if ((int64_t)json_array_size(streams) == limit) {
            more = 1;
            break;
        }
        char arn[1800];
        snprintf(arn, sizeof(arn), "%s:log-stream:%s", garn, s->name);
        json_t *o =
            json_pack("{s:s, s:I, s:s, s:I}", "logStreamName", s->name, "creationTime",
                      (json_int_t)s->creation_ms, "arn", arn, "storedBytes", (json_int_t)s->bytes);
        if (s->first_ms >= 0) {
            json_object_set_new(o, "firstEventTimestamp", json_integer(s->first_ms));
            json_object_set_new(o, "lastEventTimestamp", json_integer(s->last_ms));
        }
        if (s->last_ingest_ms >= 0)
            json_object_set_new(o, "lastIngestionTime", json_integer(s->last_ingest_ms));
        json_array_append_new(streams, o);
        last = s;
    }
    json_t *doc = json_pack("{s:o}", "logStreams", streams);
    if (more && last) {
        char head[32] = "n/";
        if (by_time)
            snprintf(head, sizeof(head), "t/%lld/", (long long)last->last_ms);
        char *t = hex_token(head, last->name);
        if (t)
            json_object_set_new(doc, "nextToken", json_string(t));
        free(t);
    }
    free(after);
    free(v);
    logs_reply(c, doc);
}

/*=== CreateLogGroup, DeleteLogGroup ===*/

static void create_log_group(struct logs_call *c)
{
    const char *group;
    if (logs_param_str(c, "logGroupName", 1, LOGS_MAX_NAME, &group) < 0 ||
        logs_check_group_name(c, "logGroupName", group) < 0)
        return;
    int rc = logstore_create_group(c->svc->ls, group);
    if (rc == -EEXIST) {
        logs_fail(c, 400, "ResourceAlreadyExistsException",
                  "The specified log group already exists");
        return;
    }
    if (rc == -ENAMETOOLONG) {
        invalid(c, "The log group name is too long for Ignis to store.");
        return;
    }
    if (rc < 0) {
        logs_fail(c, 500, "ServiceUnavailableException", "Cannot create the log group: %s",
                  strerror(-rc));
        return;
    }
    logs_reply(c, json_object());
}

static void delete_log_group(struct logs_call *c)
{
    const char *group;
    if (logs_param_str(c, "logGroupName", 1, LOGS_MAX_NAME, &group) < 0 ||
        logs_check_group_name(c, "logGroupName", group) < 0)
        return;
    int rc = logstore_delete_group(c->svc->ls, group);
    if (rc == -ENOENT) {
        logs_no_group(c);
        return;
    }
    if (rc < 0) {
        logs_fail(c, 500, "ServiceUnavailableException", "Cannot delete the log group: %s",
                  strerror(-rc));
        return;
    }
    logs_reply(c, json_object());
}

/* The values CloudWatch Logs accepts for retentionInDays. */
static const int retention_days[] = {1,   3,   5,   7,   14,   30,   60,   90,   120,  150,  180,
                                     365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653};

static void set_retention(struct logs_call *c, const char *group, int days)
{
    int rc = logstore_set_retention(c->svc->ls, group, days);
    if (rc == -ENOENT) {
        logs_no_group(c);
        return;
    }
    if (rc < 0) {
        logs_fail(c, 500, "ServiceUnavailableException", "Cannot store the retention: %s",
                  strerror(-rc));
        return;
    }
    logs_reply(c, json_object());
}

static void put_retention_policy(struct logs_call *c)
{
    const char *group;
    int64_t days = 0;
    int rc;
    if (logs_param_str(c, "logGroupName", 1, LOGS_MAX_NAME, &group) < 0 ||
        logs_check_group_name(c, "logGroupName", group) < 0 ||
        (rc = logs_param_long(c, "retentionInDays", INT32_MIN, INT32_MAX, &days)) < 0)
        return;
    if (rc == 1) {
        invalid(c, "1 validation error detected: Value null at 'retentionInDays' failed to "
                   "satisfy constraint: Member must not be null");
        return;
    }
    int known = 0;
    for (size_t i = 0; i < sizeof(retention_days) / sizeof(retention_days[0]); i++)
        known |= retention_days[i] == days;
    if (!known) {
        struct buf set = BUF_INIT;
        for (size_t i = 0; i < sizeof(retention_days) / sizeof(retention_days[0]); i++)
            buf_printf(&set, "%s%d", i ? ", " : "", retention_days[i]);
        invalid(c,
                "1 validation error detected: Value '%lld' at 'retentionInDays' failed to "
                "satisfy constraint: Member must satisfy enum value set: [%s]",
                (long long)days, set.data ? set.data : "");
        buf_release(&set);
        return;
    }
    set_retention(c, group, (int)days);
}

static void delete_retention_policy(struct logs_call *c)
{
    const char *group;
    if (logs_param_str(c, "logGroupName", 1, LOGS_MAX_NAME, &group) < 0 ||
        logs_check_group_name(c, "logGroupName", group) < 0)
        return;
    set_retention(c, group, 0);
}

/*=== Dispatch ===*/

struct op {
    const char *name;
    void (*run)(struct logs_call *c);
};

static const struct op ops[] = {
    {"DescribeLogGroups", describe_log_groups},
    {"DescribeLogStreams", describe_log_streams},
    {"GetLogEvents", logs_get_log_events},
    {"FilterLogEvents", logs_filter_log_events},
    {"CreateLogGroup", create_log_group},
    {"DeleteLogGroup", delete_log_group},
    {"PutRetentionPolicy", put_retention_policy},
    {"DeleteRetentionPolicy", delete_retention_policy},
};

static void handle(struct http_req *req, const struct edge_auth *auth, void *arg)
{
    (void)auth;
    struct logs_call c = {.svc = arg, .req = req};
    const char *target = http_req_header(req, "X-Amz-Target");
    const char *op =
        target && str_has_prefix(target, TARGET_PREFIX) ? target + strlen(TARGET_PREFIX) : NULL;
    const struct op *found = NULL;
    for (size_t i = 0; op && i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(ops[i].name, op) == 0)
            found = &ops[i];
    if (!target) {
        logs_fail(&c, 400, "UnknownOperationException",
                  "Missing X-Amz-Target: expected Logs_20140328.<Operation>.");
        return;
    }
    if (!found || strcmp(http_req_method(req), "POST") != 0) {
        logs_fail(&c, 400, "UnknownOperationException",
                  "Operation %.128s is not supported by this Ignis.", target);
        return;
    }
    size_t len;
    const char *body = http_req_body(req, &len);
    if (len == 0) {
        c.body = json_object();
    } else {
        json_error_t jerr;
        c.body = json_loadb(body, len, 0, &jerr);
        if (!json_is_object(c.body)) {
            if (c.body)
                logs_fail(&c, 400, "SerializationException",
                          "The request body must be a JSON object.");
            else
                logs_fail(&c, 400, "SerializationException",
                          "Could not parse the request body as JSON: %s", jerr.text);
            json_decref(c.body);
            return;
        }
    }
    found->run(&c);
    json_decref(c.body);
}

static struct logs service;

int logs_register(struct edge *edge, struct logstore *ls, const struct config *cfg)
{
    service.ls = ls;
    service.cfg = cfg;
    struct edge_route route = {
        .service = "logs",
        .proto = AWS_JSON_11,
        .handle = handle,
        .arg = &service,
    };
    return edge_add_route(edge, &route);
}
