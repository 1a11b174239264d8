/*
 * metrics: the service's life (new, register, free), its timers (flush,
 * alarm evaluation), the dispatch of "monitoring" requests by protocol and
 * operation, and the recording calls the Lambda service makes (see
 * metrics.h), which turn one invocation into the AWS/Lambda datapoints
 * Lambda publishes: account-wide (no dimensions), per FunctionName, per
 * Resource (name:qualifier, for qualified invocations) and, for invocations
 * through an alias, per ExecutedVersion. Recording touches memory only.
 */
#include "services/metrics/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "services/metrics/metrics_internal.h"

#define DEFAULT_FLUSH_MS 5000
#define DEFAULT_ALARM_MS 60000
#define JSON_TARGET_PREFIX "GraniteServiceVersion20100801."
#define CBOR_PATH_PREFIX "/service/GraniteServiceVersion20100801/operation/"
#define BODY_MAX (1024 * 1024) /* PutMetricData: 1 MB */

static int64_t env_ms(const char *name, int64_t dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end || n < 10 || n > 86400000LL) {
        log_warn("ignoring %s=%s (want 10..86400000 ms)", name, v);
        return dflt;
    }
    return n;
}

/*=== Timers ===*/

static void on_flush(struct loop *loop, void *arg)
{
    struct metrics *m = arg;
    metrics_flush(m);
    m->flush_timer = loop_timer_add(loop, m->flush_ms, on_flush, m);
}

static void on_alarms(struct loop *loop, void *arg)
{
    struct metrics *m = arg;
    alarms_evaluate(m);
    m->alarm_timer = loop_timer_add(loop, m->alarm_ms, on_alarms, m);
}

struct metrics *metrics_new(struct loop *loop, const struct config *cfg, struct db *db)
{
    struct metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->loop = loop;
    m->cfg = cfg;
    m->db = db;
    const char *rec = getenv("IGNIS_METRICS");
    m->recording = !(rec && strcmp(rec, "0") == 0);
    m->flush_ms = env_ms("IGNIS_METRICS_FLUSH_MS", DEFAULT_FLUSH_MS);
    m->alarm_ms = env_ms("IGNIS_ALARM_EVAL_MS", DEFAULT_ALARM_MS);
    m->billing_granularity_ms = 1;
    const char *g = getenv("IGNIS_BILLING_GRANULARITY_MS");
    if (g && *g) {
        if (strcmp(g, "1") == 0 || strcmp(g, "100") == 0)
            m->billing_granularity_ms = (unsigned)atoi(g);
        else
            log_warn("ignoring IGNIS_BILLING_GRANULARITY_MS=%s (want 1 or 100)", g);
    }
    if (metrics_store_open(m) < 0 || alarms_load(m) < 0) {
        metrics_free(m);
        return NULL;
    }
    m->flush_timer = loop_timer_add(loop, m->flush_ms, on_flush, m);
    m->alarm_timer = loop_timer_add(loop, m->alarm_ms, on_alarms, m);
    if (!m->recording)
        log_info("IGNIS_METRICS=0: no metrics or billing recorded");
    return m;
}

void metrics_attach(struct metrics *m, struct pool *pool, struct lambda *lambda)
{
    m->pool = pool;
    m->lambda = lambda;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    if (m->flush_timer)
        loop_timer_cancel(m->loop, m->flush_timer);
    if (m->alarm_timer)
        loop_timer_cancel(m->loop, m->alarm_timer);
    if (m->conn)
        metrics_flush(m);
    alarms_free(m);
    metrics_store_close(m);
    free(m->bills);
    free(m);
}

/*=== Dispatch ===*/

struct op {
    const char *name;
    void (*run)(struct mw_call *c);
};
static const struct op ops[] = {
    {"GetMetricStatistics", cw_get_metric_statistics},
    {"GetMetricData", cw_get_metric_data},
    {"ListMetrics", cw_list_metrics},
    {"PutMetricData", cw_put_metric_data},
    {"PutMetricAlarm", alarms_put},
    {"DescribeAlarms", alarms_describe},
    {"DeleteAlarms", alarms_delete},
    {"SetAlarmState", alarms_set_state},
    {"DescribeAlarmHistory", alarms_history},
};

static void run_op(struct mw_call *c)
{
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(ops[i].name, c->op) == 0) {
            ops[i].run(c);
            return;
        }
    /* CloudWatch's other operations (dashboards, insight rules, composite alarms, ...) */
    if (c->proto == MW_QUERY)
        mw_fail(c, 400, "InvalidAction", "The action %s is not valid for this web service.", c->op);
    else
        mw_fail(c, 400, "UnknownOperationException", "The operation %s is not supported by Ignis.",
                c->op);
}

static void handle(struct http_req *req, const struct edge_auth *auth, void *arg)
{
    (void)auth;
    struct metrics *m = arg;
    const char *path = http_req_path(req);
    if (strcmp(path, "/_ignis/billing") == 0 || str_has_prefix(path, "/_ignis/billing?")) {
        billing_report(m, req);
        return;
    }
    struct mw_call c = {.m = m, .req = req};
    if (http_req_body_too_large(req)) {
        aws_error(req, AWS_QUERY, 413, "RequestEntityTooLarge",
                  "Request size exceeded the limit of %d bytes.", BODY_MAX);
        return;
    }
    const char *proto = http_req_header(req, "smithy-protocol");
    size_t len;
    const char *body = http_req_body(req, &len);
    const char *target = http_req_header(req, "X-Amz-Target");
    if ((proto && strcmp(proto, "rpc-v2-cbor") == 0) || str_has_prefix(path, CBOR_PATH_PREFIX)) {
        c.proto = MW_CBOR;
        const char *op =
            str_has_prefix(path, CBOR_PATH_PREFIX) ? path + strlen(CBOR_PATH_PREFIX) : "";
        char err[128];
        if (!*op || strchr(op, '/') || strchr(op, '?') || strcmp(http_req_method(req), "POST")) {
            mw_fail(&c, 404, "UnknownOperationException",
                    "rpc-v2-cbor requests are POST " CBOR_PATH_PREFIX "<Operation>");
            return;
        }
        c.op = op;
        if (!(c.in = mw_cbor_decode(body ? body : "", len, err, sizeof(err)))) {
            mw_fail(&c, 400, "SerializationException", "The request body is not valid CBOR: %s",
                    err);
            return;
        }
    } else if (target) {
        c.proto = MW_JSON;
        if (!str_has_prefix(target, JSON_TARGET_PREFIX)) {
            mw_fail(&c, 400, "UnknownOperationException", "Unknown target %.100s", target);
            return;
        }
        c.op = target + strlen(JSON_TARGET_PREFIX);
        json_error_t jerr;
        c.in = len ? json_loadb(body, len, 0, &jerr) : json_object();
        if (!json_is_object(c.in)) {
            json_decref(c.in);
            c.in = NULL;
            mw_fail(&c, 400, "SerializationException", "The request body is not a JSON object");
            return;
        }
    } else {
        c.proto = MW_QUERY;
        char err[256];
        if (strcmp(http_req_method(req), "POST") != 0) {
            mw_fail(&c, 400, "InvalidAction", "Ignis takes CloudWatch query requests as POST");
            return;
        }
        c.in = mw_form_decode(body ? body : "", len, err, sizeof(err));
        if (!c.in) {
            mw_fail(&c, 400, "MalformedQueryString", "%s", err);
            return;
        }
        c.op = json_string_value(json_object_get(c.in, "Action"));
        if (!c.op) {
            json_decref(c.in);
            c.in = NULL;
            mw_fail(&c, 400, "MissingAction", "The request must contain the parameter Action.");
            return;
        }
    }
    run_op(&c);
    json_decref(c.in);
}

static size_t body_cap(struct http_req *req, void *arg)
{
    (void)req;
    (void)arg;
    return BODY_MAX;
}

static void handle_prom(struct http_req *req, const struct edge_auth *auth, void *arg)
{
    (void)auth;
    const char *path = http_req_path(req);
    if (strcmp(path, "/metrics") != 0 || strcmp(http_req_method(req), "GET") != 0) {
        http_reply(req, 404, "text/plain", "not found\n", 10);
        return;
    }
    prom_scrape(arg, req);
}

int metrics_register(struct metrics *m, struct edge *edge)
{
    struct edge_route route = {
        .service = "monitoring",
        .proto = AWS_QUERY,
        .handle = handle,
        .body_cap = body_cap,
        .arg = m,
    };
    struct edge_route prom = {
        .path_prefix = "/metrics",
        .public = 1,
        .handle = handle_prom,
        .arg = m,
    };
    int rc = edge_add_route(edge, &route);
    return rc < 0 ? rc : edge_add_route(edge, &prom);
}

/*=== Recording ===*/

enum { DIMS_ACCOUNT, DIMS_FUNCTION, DIMS_RESOURCE, DIMS_EXECUTED };

static int is_alias(const char *q)
{
    if (!q || !*q || strcmp(q, "$LATEST") == 0)
        return 0;
    for (const char *p = q; *p; p++)
        if (*p < '0' || *p > '9')
            return 1;
    return 0;
}

/* The dimension sets (canonical text) of one invocation's datapoints; built once per
 * invocation, shared by its metrics. Names and qualifiers are Lambda-validated
 * ([A-Za-z0-9$_-]): no escaping needed. */
struct lambda_dims {
    char text[4][400];
    int valid[4];
    int64_t ts;
};

static void lambda_dims(struct lambda_dims *d, const char *function, const char *qualifier,
                        const char *executed)
{
    d->ts = now_ms() / 1000;
    snprintf(d->text[DIMS_ACCOUNT], sizeof(d->text[0]), "[]");
    snprintf(d->text[DIMS_FUNCTION], sizeof(d->text[0]), "[[\"FunctionName\",\"%s\"]]", function);
    d->valid[DIMS_ACCOUNT] = d->valid[DIMS_FUNCTION] = 1;
    d->valid[DIMS_RESOURCE] = qualifier && *qualifier;
    if (d->valid[DIMS_RESOURCE])
        snprintf(d->text[DIMS_RESOURCE], sizeof(d->text[0]),
                 "[[\"FunctionName\",\"%s\"],[\"Resource\",\"%s:%s\"]]", function, function,
                 qualifier);
    d->valid[DIMS_EXECUTED] = is_alias(qualifier) && executed;
    if (d->valid[DIMS_EXECUTED])
        snprintf(d->text[DIMS_EXECUTED], sizeof(d->text[0]),
                 "[[\"ExecutedVersion\",\"%s\"],[\"FunctionName\",\"%s\"],[\"Resource\","
                 "\"%s:%s\"]]",
                 executed, function, function, qualifier);
}

/* One datapoint of an AWS/Lambda metric under the dimension sets of levels. */
static void lambda_point(struct metrics *m, const char *metric, const char *unit,
                         const struct lambda_dims *d, double v, int levels)
{
    int hist = unit[0] == 'M'; /* Milliseconds: percentiles wanted */
    for (int level = DIMS_ACCOUNT; level <= DIMS_EXECUTED; level++) {
        if (!(levels & (1 << level)) || !d->valid[level])
            continue;
        struct series *s = metrics_series(m, METRICS_NS_LAMBDA, metric, d->text[level], 1);
        if (!s)
            continue;
        if (s->unit[0] != unit[0]) /* new ("None"): AWS/Lambda series have fixed units */
            snprintf(s->unit, sizeof(s->unit), "%s", unit);
        s->keep_hist = hist;
        if (hist && level == DIMS_FUNCTION && !s->life_buckets && strcmp(metric, "Duration") == 0)
            s->life_buckets = calloc(PROM_NBUCKETS + 1, sizeof(uint64_t));
        metrics_add(m, s, d->ts, v, 1);
    }
}

#define ALL_LEVELS 0xf
#define NOT_ACCOUNT 0xe

void metrics_call_begin(struct metrics *m, const char *function, unsigned fn_inflight)
{
    if (!m || !m->recording)
        return;
    m->inflight++;
    struct lambda_dims d;
    lambda_dims(&d, function, NULL, NULL);
    lambda_point(m, "ConcurrentExecutions", "Count", &d, m->inflight, 1 << DIMS_ACCOUNT);
    lambda_point(m, "ConcurrentExecutions", "Count", &d, fn_inflight, 1 << DIMS_FUNCTION);
}

void metrics_call_end(struct metrics *m, const char *function, const char *qualifier,
                      const char *executed, const struct invocation *inv)
{
    if (!m || !m->recording)
        return;
    if (m->inflight)
        m->inflight--;
    if (!inv)
        return;
    struct lambda_dims d;
    lambda_dims(&d, function, qualifier, executed);
    lambda_point(m, "Invocations", "Count", &d, 1, ALL_LEVELS);
    lambda_point(m, "Errors", "Count", &d, inv->outcome != INVOCATION_OK, ALL_LEVELS);
    if (inv->duration_us > 0)
        lambda_point(m, "Duration", "Milliseconds", &d, (double)inv->duration_us / 1000.0,
                     ALL_LEVELS);
    billing_meter(m, function, inv);
}

/* The rarer datapoints, for one metric. */
static void lambda_one(struct metrics *m, const char *metric, const char *unit,
                       const char *function, const char *qualifier, double v, int levels)
{
    if (!m || !m->recording)
        return;
    struct lambda_dims d;
    lambda_dims(&d, function, qualifier, NULL);
    lambda_point(m, metric, unit, &d, v, levels);
}

void metrics_throttle(struct metrics *m, const char *function, const char *qualifier)
{
    lambda_one(m, "Throttles", "Count", function, qualifier, 1, ALL_LEVELS);
}

void metrics_async_received(struct metrics *m, const char *function, const char *qualifier)
{
    lambda_one(m, "AsyncEventsReceived", "Count", function, qualifier, 1, NOT_ACCOUNT);
}

void metrics_async_age(struct metrics *m, const char *function, const char *qualifier,
                       int64_t age_ms)
{
    lambda_one(m, "AsyncEventAge", "Milliseconds", function, qualifier,
               (double)(age_ms < 0 ? 0 : age_ms), NOT_ACCOUNT);
}

void metrics_destination_failure(struct metrics *m, const char *function, const char *qualifier)
{
    lambda_one(m, "DestinationDeliveryFailures", "Count", function, qualifier, 1, NOT_ACCOUNT);
}

void metrics_dead_letter_error(struct metrics *m, const char *function, const char *qualifier)
{
    lambda_one(m, "DeadLetterErrors", "Count", function, qualifier, 1, NOT_ACCOUNT);
}
