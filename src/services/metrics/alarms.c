/*
 * alarms: CloudWatch metric alarms. Owns PutMetricAlarm, DescribeAlarms,
 * DeleteAlarms, SetAlarmState and DescribeAlarmHistory, the alarms
 * themselves (in memory as the MetricAlarm documents DescribeAlarms
 * answers, each written whole to the alarms table on every change, so they
 * survive restarts), their history (alarm_history) and their evaluation: on
 * a timer (IGNIS_ALARM_EVAL_MS, default a minute) each alarm looks at its
 * last EvaluationPeriods periods, the newest being the one in progress, and
 * goes to ALARM when DatapointsToAlarm of them breach, OK when fewer do, and
 * INSUFFICIENT_DATA when all are missing (TreatMissingData decides what a
 * missing period counts as). A state change runs the new state's actions:
 * Lambda function ARNs, invoked asynchronously with CloudWatch's alarm
 * event (lambda_invoke_async). Alarms on one MetricStat of Metrics are
 * evaluated like a plain metric; metric math and composite alarms are not
 * supported (refused).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "services/lambda/lambda.h"
#include "services/metrics/metrics_internal.h"

#define MAX_ACTIONS 5
#define DESCRIBE_MAX 100
#define DESCRIBE_DEFAULT 50
#define HISTORY_MAX 100

static const char *const comparisons[] = {
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
};
static const char *const comparison_words[] = {
    "greater than or equal to",
    "greater than",
    "less than",
    "less than or equal to",
};

static double now_s(void)
{
    return (double)now_ms() / 1000.0;
}

/*=== Persistence ===*/

static int alarm_store(struct metrics *m, const char *name, json_t *doc)
{
    sqlite3_stmt *st;
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    const char *sql = doc ? "INSERT INTO alarms(name, record) VALUES(?, ?) ON CONFLICT(name) DO "
                            "UPDATE SET record = excluded.record"
                          : "DELETE FROM alarms WHERE name = ?";
    if (sqlite3_prepare_v2(m->conn, sql, -1, &st, NULL) != SQLITE_OK) {
        free(text);
        return -EIO;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (text)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    if (rc)
        log_error("sqlite: storing alarm %s: %s", name, sqlite3_errmsg(m->conn));
    sqlite3_finalize(st);
    free(text);
    return rc;
}

static void history_add(struct metrics *m, const char *name, const char *type, const char *summary,
                        json_t *data /* taken */)
{
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    double ts = now_s();
    json_t *item = json_pack("{s:s, s:s, s:f, s:s, s:s, s:s}", "AlarmName", name, "AlarmType",
                             "MetricAlarm", "Timestamp", ts, "HistoryItemType", type,
                             "HistorySummary", summary, "HistoryData", text ? text : "{}");
    free(text);
    char *itext = json_dumps(item, JSON_COMPACT);
    json_decref(item);
    sqlite3_stmt *st;
    if (itext &&
        sqlite3_prepare_v2(m->conn, "INSERT INTO alarm_history(name, ts, item) VALUES(?, ?, ?)", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)(ts * 1000));
        sqlite3_bind_text(st, 3, itext, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            log_error("sqlite: alarm history of %s: %s", name, sqlite3_errmsg(m->conn));
        sqlite3_finalize(st);
    }
    free(itext);
}

int alarms_load(struct metrics *m)
{
    m->alarms = json_object();
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->conn, "SELECT name, record FROM alarms", -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *doc = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
        if (json_is_object(doc))
            json_object_set_new(m->alarms, (const char *)sqlite3_column_text(st, 0), doc);
        else
            json_decref(doc);
    }
    sqlite3_finalize(st);
    return 0;
}

void alarms_free(struct metrics *m)
{
    json_decref(m->alarms);
    m->alarms = NULL;
}

/*=== PutMetricAlarm ===*/

static int lambda_action(const struct metrics *m, const char *arn)
{
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "arn:aws:lambda:%s:%s:function:", m->cfg->region,
             m->cfg->account_id);
    return str_has_prefix(arn, prefix) && arn[strlen(prefix)] != '\0';
}

/* A list of action ARNs as typed strings; NULL after answering. */
static json_t *read_actions(struct mw_call *c, const char *key)
{
    json_t *in = mw_list(c->in, key), *out = json_array();
    size_t i;
    json_t *v;
    if (json_array_size(in) > MAX_ACTIONS) {
        mw_fail(c, 400, "ValidationError",
                "The collection %s must not have a size greater than %d.", key, MAX_ACTIONS);
        json_decref(out);
        return NULL;
    }
    json_array_foreach(in, i, v)
    {
        const char *arn = json_string_value(v);
        if (!arn || !lambda_action(c->m, arn)) {
            mw_fail(c, 400, "ValidationError",
                    "Invalid %s: %s. Ignis runs Lambda function actions only "
                    "(arn:aws:lambda:%s:%s:function:NAME[:QUALIFIER]).",
                    key, arn ? arn : "(not a string)", c->m->cfg->region, c->m->cfg->account_id);
            json_decref(out);
            return NULL;
        }
        json_array_append(out, v);
    }
    return out;
}

static json_t *typed_dims(json_t *dims)
{
    json_t *out = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(dims, i, d)
        json_array_append_new(out, json_pack("{s:O, s:O}", "Name", json_object_get(d, "Name"),
                                             "Value", json_object_get(d, "Value")));
    return out;
}

/* The metric an alarm watches: its own fields, or the one MetricStat of Metrics. */
struct watch {
    const char *ns, *name, *stat, *unit;
    json_t *dims;
    long period;
};

static int alarm_watch(json_t *doc, struct watch *w)
{
    json_t *metrics = json_object_get(doc, "Metrics");
    json_t *src = doc;
    memset(w, 0, sizeof(*w));
    if (json_array_size(metrics)) {
        json_t *ms = json_object_get(json_array_get(metrics, 0), "MetricStat");
        json_t *metric = json_object_get(ms, "Metric");
        w->ns = json_string_value(json_object_get(metric, "Namespace"));
        w->name = json_string_value(json_object_get(metric, "MetricName"));
        w->dims = json_object_get(metric, "Dimensions");
        w->stat = json_string_value(json_object_get(ms, "Stat"));
        w->unit = json_string_value(json_object_get(ms, "Unit"));
        w->period = (long)json_integer_value(json_object_get(ms, "Period"));
    } else {
        w->ns = json_string_value(json_object_get(src, "Namespace"));
        w->name = json_string_value(json_object_get(src, "MetricName"));
        w->dims = json_object_get(src, "Dimensions");
        w->stat = json_string_value(json_object_get(src, "Statistic"));
        if (!w->stat)
            w->stat = json_string_value(json_object_get(src, "ExtendedStatistic"));
        w->unit = json_string_value(json_object_get(src, "Unit"));
        w->period = (long)json_integer_value(json_object_get(src, "Period"));
    }
    return w->ns && w->name && w->stat && w->period > 0 ? 0 : -1;
}

/* Metrics: exactly one query, a MetricStat returning data (as typed JSON); NULL after answering. */
static json_t *read_metrics(struct mw_call *c, json_t *in)
{
    if (json_array_size(in) != 1) {
        mw_fail(c, 400, "ValidationError",
                "Ignis evaluates alarms on one metric: Metrics must hold exactly one MetricStat "
                "query (metric math is not supported).");
        return NULL;
    }
    json_t *q = json_array_get(in, 0), *ms = json_object_get(q, "MetricStat");
    json_t *metric = json_object_get(ms, "Metric");
    const char *id = json_string_value(json_object_get(q, "Id"));
    const char *stat = json_string_value(json_object_get(ms, "Stat"));
    const char *ns = json_string_value(json_object_get(metric, "Namespace"));
    const char *name = json_string_value(json_object_get(metric, "MetricName"));
    long period = 0;
    int ret = 1;
    if (json_object_get(q, "Expression") || !id || !json_is_object(ms) || !stat || !ns || !name ||
        !metrics_stat_valid(stat)) {
        mw_fail(c, 400, "ValidationError",
                "Metrics.member.1 must have an Id and a MetricStat with Metric (Namespace, "
                "MetricName), Period and a valid Stat; metric math is not supported.");
        return NULL;
    }
    if (mw_int(c, ms, "Period", 1, 86400, &period) != 0 || mw_bool(c, q, "ReturnData", &ret) < 0)
        return NULL;
    if (cw_check_dims(c, mw_list(metric, "Dimensions"), "Dimensions") < 0)
        return NULL;
    json_t *typed_ms =
        json_pack("{s:{s:s, s:s, s:o}, s:i, s:s}", "Metric", "Namespace", ns, "MetricName", name,
                  "Dimensions", typed_dims(mw_list(metric, "Dimensions")), "Period", (int)period,
                  "Stat", stat);
    const char *unit = json_string_value(json_object_get(ms, "Unit"));
    if (unit)
        json_object_set_new(typed_ms, "Unit", json_string(unit));
    json_t *out = json_pack("[{s:s, s:o, s:b}]", "Id", id, "MetricStat", typed_ms, "ReturnData", 1);
    const char *label = json_string_value(json_object_get(q, "Label"));
    if (label)
        json_object_set_new(json_array_get(out, 0), "Label", json_string(label));
    return out;
}

void alarms_put(struct mw_call *c)
{
    struct metrics *m = c->m;
    const char *name = NULL, *desc = NULL, *cmp = NULL, *ns = NULL, *metric = NULL, *stat = NULL,
               *ext = NULL, *unit = NULL, *treat = NULL;
    long evals = 0, period = 0, dta = 0;
    double threshold = 0;
    int enabled = 1, rc;
    if ((rc = mw_str(c, c->in, "AlarmName", &name)))
        return (void)(rc > 0 && mw_missing(c, "AlarmName"));
    if (!*name || strlen(name) > 255) {
        mw_fail(c, 400, "ValidationError", "AlarmName must be 1 to 255 characters.");
        return;
    }
    if ((rc = mw_int(c, c->in, "EvaluationPeriods", 1, 100000, &evals)))
        return (void)(rc > 0 && mw_missing(c, "EvaluationPeriods"));
    if ((rc = mw_str(c, c->in, "ComparisonOperator", &cmp)))
        return (void)(rc > 0 && mw_missing(c, "ComparisonOperator"));
    size_t ci = 0;
    while (ci < 4 && strcmp(comparisons[ci], cmp) != 0)
        ci++;
    if (ci == 4) {
        mw_fail(c, 400, "ValidationError",
                "1 validation error detected: Value '%s' at 'comparisonOperator' failed to "
                "satisfy constraint: Member must satisfy enum value set: "
                "[GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, "
                "LessThanOrEqualToThreshold] (anomaly detection bands are not supported by "
                "Ignis)",
                cmp);
        return;
    }
    if (mw_str(c, c->in, "AlarmDescription", &desc) < 0 || mw_str(c, c->in, "Namespace", &ns) < 0 ||
        mw_str(c, c->in, "MetricName", &metric) < 0 || mw_str(c, c->in, "Statistic", &stat) < 0 ||
        mw_str(c, c->in, "ExtendedStatistic", &ext) < 0 || mw_str(c, c->in, "Unit", &unit) < 0 ||
        mw_str(c, c->in, "TreatMissingData", &treat) < 0 ||
        mw_bool(c, c->in, "ActionsEnabled", &enabled) < 0)
        return;
    if (json_object_get(c->in, "ThresholdMetricId")) {
        mw_fail(c, 400, "ValidationError",
                "ThresholdMetricId (anomaly detection) is not supported by Ignis.");
        return;
    }
    if ((rc = mw_num(c, c->in, "Threshold", &threshold)))
        return (void)(rc > 0 && mw_missing(c, "Threshold"));
    if ((rc = mw_int(c, c->in, "DatapointsToAlarm", 1, 100000, &dta)) < 0)
        return;
    if (dta > evals) {
        mw_fail(c, 400, "ValidationError",
                "DatapointsToAlarm (%ld) must be less than or equal to EvaluationPeriods (%ld).",
                dta, evals);
        return;
    }
    if (treat && strcmp(treat, "breaching") != 0 && strcmp(treat, "notBreaching") != 0 &&
        strcmp(treat, "ignore") != 0 && strcmp(treat, "missing") != 0) {
        mw_fail(c, 400, "ValidationError",
                "TreatMissingData must be one of breaching, notBreaching, ignore, missing.");
        return;
    }
    json_t *metrics_in = json_object_get(c->in, "Metrics");
    json_t *metrics = NULL, *dims = NULL;
    if (metrics_in) {
        if (ns || metric || stat || ext || json_object_get(c->in, "Period") ||
            json_object_get(c->in, "Dimensions")) {
            mw_fail(c, 400, "ValidationError",
                    "Metrics cannot be combined with MetricName, Namespace, Statistic, "
                    "ExtendedStatistic, Dimensions or Period.");
            return;
        }
        if (!(metrics = read_metrics(c, mw_list(c->in, "Metrics"))))
            return;
        period = (long)json_integer_value(
            json_object_get(json_object_get(json_array_get(metrics, 0), "MetricStat"), "Period"));
    } else {
        if (!metric)
            return (void)mw_missing(c, "MetricName");
        if (!ns)
            return (void)mw_missing(c, "Namespace");
        if (!stat == !ext) {
            mw_fail(c, 400, "ValidationError",
                    "Exactly one of Statistic and ExtendedStatistic must be specified.");
            return;
        }
        if ((stat && (!metrics_stat_valid(stat) || stat[0] == 'p')) ||
            (ext && (ext[0] != 'p' || !metrics_stat_valid(ext)))) {
            mw_fail(c, 400, "ValidationError", "Invalid statistic: %s.", stat ? stat : ext);
            return;
        }
        if ((rc = mw_int(c, c->in, "Period", 1, 86400, &period)))
            return (void)(rc > 0 && mw_missing(c, "Period"));
        if (cw_check_dims(c, mw_list(c->in, "Dimensions"), "Dimensions") < 0)
            return;
        dims = typed_dims(mw_list(c->in, "Dimensions"));
    }
    if (period != 10 && period != 30 && period % 60 != 0) {
        json_decref(metrics);
        json_decref(dims);
        mw_fail(c, 400, "ValidationError", "Period must be 10, 30 or a multiple of 60.");
        return;
    }
    if (period * evals > 7 * 86400) {
        json_decref(metrics);
        json_decref(dims);
        mw_fail(c, 400, "ValidationError",
                "The evaluation period (Period * EvaluationPeriods) must not exceed 7 days.");
        return;
    }
    json_t *ok = read_actions(c, "OKActions");
    json_t *alarm = ok ? read_actions(c, "AlarmActions") : NULL;
    json_t *insuf = alarm ? read_actions(c, "InsufficientDataActions") : NULL;
    if (!insuf) {
        json_decref(ok);
        json_decref(alarm);
        json_decref(metrics);
        json_decref(dims);
        return;
    }
    char arn[512];
    snprintf(arn, sizeof(arn), "arn:aws:cloudwatch:%s:%s:alarm:%s", m->cfg->region,
             m->cfg->account_id, name);
    double now = now_s();
    json_t *old = json_object_get(m->alarms, name);
    json_t *doc = json_pack("{s:s, s:s, s:f, s:b, s:o, s:o, s:o, s:I, s:f, s:s}", "AlarmName", name,
                            "AlarmArn", arn, "AlarmConfigurationUpdatedTimestamp", now,
                            "ActionsEnabled", enabled, "OKActions", ok, "AlarmActions", alarm,
                            "InsufficientDataActions", insuf, "EvaluationPeriods",
                            (json_int_t)evals, "Threshold", threshold, "ComparisonOperator", cmp);
    if (desc)
        json_object_set_new(doc, "AlarmDescription", json_string(desc));
    if (metrics) {
        json_object_set_new(doc, "Metrics", metrics);
    } else {
        json_object_set_new(doc, "Namespace", json_string(ns));
        json_object_set_new(doc, "MetricName", json_string(metric));
        json_object_set_new(doc, stat ? "Statistic" : "ExtendedStatistic",
                            json_string(stat ? stat : ext));
        json_object_set_new(doc, "Dimensions", dims);
        json_object_set_new(doc, "Period", json_integer(period));
        if (unit)
            json_object_set_new(doc, "Unit", json_string(unit));
    }
    if (dta)
        json_object_set_new(doc, "DatapointsToAlarm", json_integer(dta));
    if (treat)
        json_object_set_new(doc, "TreatMissingData", json_string(treat));
    /* the state carries over an update; a new alarm starts unchecked */
    static const char *const state_keys[] = {"StateValue", "StateReason", "StateReasonData",
                                             "StateUpdatedTimestamp", "StateTransitionedTimestamp"};
    if (old) {
        for (size_t i = 0; i < sizeof(state_keys) / sizeof(state_keys[0]); i++)
            if (json_object_get(old, state_keys[i]))
                json_object_set(doc, state_keys[i], json_object_get(old, state_keys[i]));
    } else {
        json_object_set_new(doc, "StateValue", json_string("INSUFFICIENT_DATA"));
        json_object_set_new(doc, "StateReason", json_string("Unchecked: Initial alarm creation"));
        json_object_set_new(doc, "StateUpdatedTimestamp", json_real(now));
        json_object_set_new(doc, "StateTransitionedTimestamp", json_real(now));
    }
    if (alarm_store(m, name, doc) < 0) {
        json_decref(doc);
        mw_fail(c, 500, "InternalServiceError", "The alarm could not be stored.");
        return;
    }
    char summary[400];
    snprintf(summary, sizeof(summary), "Alarm \"%s\" %s", name, old ? "updated" : "created");
    history_add(m, name, "ConfigurationUpdate", summary,
                json_pack("{s:s, s:O}", "type", old ? "Update" : "Create", "updatedAlarm", doc));
    json_object_set_new(m->alarms, name, doc);
    mw_reply(c, NULL);
}

/*=== DescribeAlarms, DeleteAlarms ===*/

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int has_action_prefix(json_t *doc, const char *prefix)
{
    static const char *const lists[] = {"OKActions", "AlarmActions", "InsufficientDataActions"};
    for (size_t k = 0; k < 3; k++) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(doc, lists[k]), i,
                           v) if (str_has_prefix(json_string_value(v), prefix)) return 1;
    }
    return 0;
}

void alarms_describe(struct mw_call *c)
{
    const char *prefix = NULL, *state = NULL, *action = NULL, *token = NULL;
    long max = DESCRIBE_DEFAULT;
    if (mw_str(c, c->in, "AlarmNamePrefix", &prefix) < 0 ||
        mw_str(c, c->in, "StateValue", &state) < 0 ||
        mw_str(c, c->in, "ActionPrefix", &action) < 0 ||
        mw_str(c, c->in, "NextToken", &token) < 0 ||
        mw_int(c, c->in, "MaxRecords", 1, DESCRIBE_MAX, &max) < 0)
        return;
    json_t *names = mw_list(c->in, "AlarmNames");
    if (names && prefix) {
        mw_fail(c, 400, "InvalidParameterCombination",
                "AlarmNames and AlarmNamePrefix cannot be specified together.");
        return;
    }
    if (json_array_size(names) > 100) {
        mw_fail(c, 400, "ValidationError",
                "The collection AlarmNames must not have a size greater than 100.");
        return;
    }
    if (state && strcmp(state, "OK") != 0 && strcmp(state, "ALARM") != 0 &&
        strcmp(state, "INSUFFICIENT_DATA") != 0) {
        mw_fail(c, 400, "ValidationError",
                "StateValue must be one of OK, ALARM, INSUFFICIENT_DATA.");
        return;
    }
    int metric_alarms = 1;
    json_t *types = mw_list(c->in, "AlarmTypes");
    if (json_array_size(types)) {
        metric_alarms = 0;
        size_t i;
        json_t *t;
        json_array_foreach(types, i, t) if (json_string_value(t) &&
                                            strcmp(json_string_value(t), "MetricAlarm") == 0)
            metric_alarms = 1;
    }
    if (json_object_get(c->in, "ChildrenOfAlarmName") ||
        json_object_get(c->in, "ParentsOfAlarmName"))
        metric_alarms = 0; /* composite alarms: Ignis has none */
    size_t n = json_object_size(c->m->alarms), k = 0;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    const char *key;
    json_t *doc;
    json_object_foreach(c->m->alarms, key, doc) keys[k++] = key;
    qsort(keys, n, sizeof(*keys), cmp_str);
    json_t *out = json_array();
    const char *next = NULL;
    for (size_t i = 0; metric_alarms && i < n; i++) {
        doc = json_object_get(c->m->alarms, keys[i]);
        if (token && strcmp(keys[i], token) <= 0)
            continue;
        if (prefix && !str_has_prefix(keys[i], prefix))
            continue;
        if (names) {
            int found = 0;
            size_t j;
            json_t *v;
            json_array_foreach(names, j, v) if (json_string_value(v) &&
                                                strcmp(json_string_value(v), keys[i]) == 0) found =
                1;
            if (!found)
                continue;
        }
        if (state && strcmp(state, json_string_value(json_object_get(doc, "StateValue"))) != 0)
            continue;
        if (action && !has_action_prefix(doc, action))
            continue;
        if ((long)json_array_size(out) == max) { /* more: the token is the last name shown */
            next = json_string_value(
                json_object_get(json_array_get(out, json_array_size(out) - 1), "AlarmName"));
            break;
        }
        json_array_append(out, doc);
    }
    json_t *res = json_pack("{s:o, s:[]}", "MetricAlarms", out, "CompositeAlarms");
    if (next)
        json_object_set_new(res, "NextToken", json_string(next));
    free(keys);
    mw_reply(c, res);
}

void alarms_delete(struct mw_call *c)
{
    json_t *names = mw_list(c->in, "AlarmNames");
    if (!json_object_get(c->in, "AlarmNames"))
        return (void)mw_missing(c, "AlarmNames");
    if (json_array_size(names) > 100) {
        mw_fail(c, 400, "ValidationError",
                "The collection AlarmNames must not have a size greater than 100.");
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        const char *name = json_string_value(v);
        if (!name || !json_object_get(c->m->alarms, name)) {
            mw_fail(c, 404, "ResourceNotFound", "%s does not exist", name ? name : "an alarm name");
            return;
        }
    }
    json_array_foreach(names, i, v)
    {
        const char *name = json_string_value(v);
        if (!json_object_get(c->m->alarms, name))
            continue; /* named twice */
        alarm_store(c->m, name, NULL);
        char summary[400];
        snprintf(summary, sizeof(summary), "Alarm \"%s\" deleted", name);
        history_add(c->m, name, "ConfigurationUpdate", summary,
                    json_pack("{s:s, s:O}", "type", "Delete", "deletedAlarm",
                              json_object_get(c->m->alarms, name)));
        json_object_del(c->m->alarms, name);
    }
    mw_reply(c, NULL);
}

/*=== State changes and their actions ===*/

static json_t *event_state(json_t *doc)
{
    char t[32];
    format_lambda_time(
        (int64_t)llround(json_number_value(json_object_get(doc, "StateUpdatedTimestamp")) * 1000),
        t);
    json_t *s = json_pack("{s:O, s:O, s:s}", "value", json_object_get(doc, "StateValue"), "reason",
                          json_object_get(doc, "StateReason"), "timestamp", t);
    if (json_object_get(doc, "StateReasonData"))
        json_object_set(s, "reasonData", json_object_get(doc, "StateReasonData"));
    return s;
}

/* CloudWatch's event for a Lambda alarm action. */
static json_t *alarm_event(struct metrics *m, json_t *doc, json_t *prev_state)
{
    struct watch w;
    alarm_watch(doc, &w);
    json_t *dims = json_object();
    size_t i;
    json_t *d;
    json_array_foreach(w.dims, i, d) json_object_set(
        dims, json_string_value(json_object_get(d, "Name")), json_object_get(d, "Value"));
    json_t *stat = json_pack("{s:{s:s, s:s, s:o}, s:i, s:s}", "metric", "namespace", w.ns, "name",
                             w.name, "dimensions", dims, "period", (int)w.period, "stat", w.stat);
    if (w.unit)
        json_object_set_new(stat, "unit", json_string(w.unit));
    json_t *first = json_array_get(json_object_get(doc, "Metrics"), 0);
    char id[37];
    uuid_v4(id);
    json_t *metric = json_pack("{s:s, s:o, s:b}", "id",
                               first ? json_string_value(json_object_get(first, "Id")) : id,
                               "metricStat", stat, "returnData", 1);
    json_t *config = json_pack("{s:[o]}", "metrics", metric);
    if (json_object_get(doc, "AlarmDescription"))
        json_object_set(config, "description", json_object_get(doc, "AlarmDescription"));
    char t[32];
    format_lambda_time(now_ms(), t);
    return json_pack("{s:s, s:O, s:s, s:s, s:s, s:{s:O, s:o, s:o, s:o}}", "source",
                     "aws.cloudwatch", "alarmArn", json_object_get(doc, "AlarmArn"), "accountId",
                     m->cfg->account_id, "time", t, "region", m->cfg->region, "alarmData",
                     "alarmName", json_object_get(doc, "AlarmName"), "state", event_state(doc),
                     "previousState", prev_state, "configuration", config);
}

static void run_actions(struct metrics *m, json_t *doc, json_t *prev_state)
{
    const char *state = json_string_value(json_object_get(doc, "StateValue"));
    const char *list = strcmp(state, "ALARM") == 0 ? "AlarmActions"
                       : strcmp(state, "OK") == 0  ? "OKActions"
                                                   : "InsufficientDataActions";
    json_t *actions = json_object_get(doc, list);
    if (!json_is_true(json_object_get(doc, "ActionsEnabled")) || !json_array_size(actions))
        return;
    json_t *ev = alarm_event(m, doc, json_incref(prev_state));
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    size_t i;
    json_t *a;
    json_array_foreach(actions, i, a)
    {
        const char *arn = json_string_value(a);
        const char *name = json_string_value(json_object_get(doc, "AlarmName"));
        int rc =
            m->lambda && text ? lambda_invoke_async(m->lambda, arn, text, strlen(text)) : -ENOSYS;
        char summary[1200];
        if (rc == 0) {
            snprintf(summary, sizeof(summary), "Successfully executed action %s", arn);
        } else {
            snprintf(summary, sizeof(summary), "Failed to execute action %s: %s", arn,
                     rc == -ENOENT ? "the function does not exist" : strerror(-rc));
            log_warn("alarm %s: could not invoke %s: %s", name, arn, strerror(-rc));
        }
        history_add(m, name, "Action", summary,
                    json_pack("{s:s, s:s}", "actionState", rc == 0 ? "Succeeded" : "Failed",
                              "notificationResource", arn));
    }
    free(text);
}

/* Moves doc (an alarm in m->alarms) to state; runs actions when it changed. */
static void set_state(struct metrics *m, json_t *doc, const char *state, const char *reason,
                      json_t *reason_data /* taken, may be NULL */)
{
    const char *name = json_string_value(json_object_get(doc, "AlarmName"));
    const char *old = json_string_value(json_object_get(doc, "StateValue"));
    int changed = !old || strcmp(old, state) != 0;
    char *rd = reason_data ? json_dumps(reason_data, JSON_COMPACT) : NULL;
    json_decref(reason_data);
    json_t *prev = event_state(doc);
    char summary[300];
    snprintf(summary, sizeof(summary), "Alarm updated from %s to %s", old ? old : "none", state);
    json_t *hist = json_pack("{s:s, s:O, s:{s:s, s:s}}", "version", "1.0", "oldState", prev,
                             "newState", "stateValue", state, "stateReason", reason);
    if (rd)
        json_object_set_new(json_object_get(hist, "newState"), "stateReasonData",
                            json_loads(rd, 0, NULL));
    double now = now_s();
    json_object_set_new(doc, "StateValue", json_string(state));
    json_object_set_new(doc, "StateReason", json_string(reason));
    if (rd)
        json_object_set_new(doc, "StateReasonData", json_string(rd));
    else
        json_object_del(doc, "StateReasonData");
    json_object_set_new(doc, "StateUpdatedTimestamp", json_real(now));
    if (changed)
        json_object_set_new(doc, "StateTransitionedTimestamp", json_real(now));
    free(rd);
    alarm_store(m, name, doc);
    history_add(m, name, "StateUpdate", summary, hist);
    if (changed) {
        log_info("alarm %s: %s -> %s (%s)", name, old ? old : "none", state, reason);
        run_actions(m, doc, prev);
    }
    json_decref(prev);
}

void alarms_set_state(struct mw_call *c)
{
    const char *name = NULL, *state = NULL, *reason = NULL, *data = NULL;
    int rc;
    if ((rc = mw_str(c, c->in, "AlarmName", &name)))
        return (void)(rc > 0 && mw_missing(c, "AlarmName"));
    if ((rc = mw_str(c, c->in, "StateValue", &state)))
        return (void)(rc > 0 && mw_missing(c, "StateValue"));
    if ((rc = mw_str(c, c->in, "StateReason", &reason)))
        return (void)(rc > 0 && mw_missing(c, "StateReason"));
    if (mw_str(c, c->in, "StateReasonData", &data) < 0)
        return;
    if (strcmp(state, "OK") != 0 && strcmp(state, "ALARM") != 0 &&
        strcmp(state, "INSUFFICIENT_DATA") != 0) {
        mw_fail(c, 400, "ValidationError",
                "StateValue must be one of OK, ALARM, INSUFFICIENT_DATA.");
        return;
    }
    if (strlen(reason) > 1023) {
        mw_fail(c, 400, "ValidationError", "StateReason must be at most 1023 characters.");
        return;
    }
    json_t *doc = json_object_get(c->m->alarms, name);
    if (!doc) {
        mw_fail(c, 404, "ResourceNotFound", "Alarm %s not found", name);
        return;
    }
    json_t *rd = NULL;
    if (data && !(rd = json_loads(data, JSON_DECODE_ANY, NULL))) {
        mw_fail(c, 400, "InvalidFormat", "StateReasonData is not valid JSON.");
        return;
    }
    set_state(c->m, doc, state, reason, rd);
    mw_reply(c, NULL);
}

/*=== Evaluation ===*/

static int breaches(size_t ci, double v, double threshold)
{
    switch (ci) {
    case 0:
        return v >= threshold;
    case 1:
        return v > threshold;
    case 2:
        return v < threshold;
    default:
        return v <= threshold;
    }
}

static void fmt_point(struct buf *b, double v, int64_t ts)
{
    time_t t = (time_t)ts;
    struct tm tm;
    gmtime_r(&t, &tm);
    char when[32];
    strftime(when, sizeof(when), "%d/%m/%y %H:%M:%S", &tm);
    buf_printf(b, "%s%.17g (%s)", b->len && b->data[b->len - 1] != '[' ? ", " : "", v, when);
}

static void evaluate(struct metrics *m, json_t *doc)
{
    struct watch w;
    if (alarm_watch(doc, &w) < 0)
        return;
    const char *cmp = json_string_value(json_object_get(doc, "ComparisonOperator"));
    size_t ci = 0;
    while (ci < 4 && strcmp(comparisons[ci], cmp) != 0)
        ci++;
    if (ci == 4)
        return;
    double threshold = json_number_value(json_object_get(doc, "Threshold"));
    long n = (long)json_integer_value(json_object_get(doc, "EvaluationPeriods"));
    long need = (long)json_integer_value(json_object_get(doc, "DatapointsToAlarm"));
    if (need <= 0)
        need = n;
    const char *treat = json_string_value(json_object_get(doc, "TreatMissingData"));
    if (!treat)
        treat = "missing";
    int64_t now = now_ms() / 1000;
    int64_t last = now - now % w.period;
    int64_t start = last - (int64_t)(n - 1) * w.period, end = last + w.period;
    struct agg *out = calloc((size_t)n, sizeof(*out));
    if (!out)
        return;
    char *canon = metrics_dims_canonical(w.dims);
    struct series *s = canon ? metrics_series(m, w.ns, w.name, canon, 0) : NULL;
    free(canon);
    if (s && (!w.unit || strcmp(w.unit, s->unit) == 0))
        metrics_query(m, s, start, end, (int)w.period, out, (size_t)n);
    long present = 0, bad = 0;
    struct buf pts = BUF_INIT;
    json_t *recent = json_array(), *evaluated = json_array();
    char qd[32];
    format_lambda_time(now_ms(), qd);
    for (long k = n - 1; k >= 0; k--) { /* newest first, as CloudWatch lists them */
        double v;
        int64_t ts = start + k * w.period;
        char tsb[32];
        format_lambda_time(ts * 1000, tsb);
        if (out[k].count > 0 && metrics_stat(&out[k], w.stat, &v) == 0) {
            present++;
            int b = breaches(ci, v, threshold);
            bad += b;
            json_array_append_new(recent, json_real(v));
            json_array_append_new(evaluated, json_pack("{s:s, s:f, s:f}", "timestamp", tsb,
                                                       "sampleCount", out[k].count, "value", v));
            fmt_point(&pts, v, ts);
        } else {
            if (strcmp(treat, "breaching") == 0)
                bad++;
            json_array_append_new(evaluated, json_pack("{s:s}", "timestamp", tsb));
        }
        agg_release(&out[k]);
    }
    free(out);
    const char *state;
    char reason[1024];
    const char *cur = json_string_value(json_object_get(doc, "StateValue"));
    if (bad >= need) {
        state = "ALARM";
        snprintf(reason, sizeof(reason),
                 "Threshold Crossed: %ld out of the last %ld datapoints [%s] %s %s the threshold "
                 "(%.17g) (minimum %ld datapoint%s for OK -> ALARM transition).",
                 bad, n, pts.data ? pts.data : "", bad == 1 ? "was" : "were", comparison_words[ci],
                 threshold, need, need == 1 ? "" : "s");
    } else if (present == 0 && (strcmp(treat, "missing") == 0 || strcmp(treat, "ignore") == 0)) {
        if (strcmp(treat, "ignore") == 0 && cur) {
            buf_release(&pts);
            json_decref(recent);
            json_decref(evaluated);
            return; /* keeps its state */
        }
        state = "INSUFFICIENT_DATA";
        snprintf(reason, sizeof(reason), "Insufficient Data: %ld datapoint%s %s unknown.", n,
                 n == 1 ? "" : "s", n == 1 ? "was" : "were");
    } else {
        state = "OK";
        snprintf(reason, sizeof(reason),
                 "Threshold Crossed: %ld out of the last %ld datapoints [%s] %s not %s the "
                 "threshold (%.17g) (minimum %ld datapoint%s for ALARM -> OK transition).",
                 present - bad < 0 ? 0 : present - bad, n, pts.data ? pts.data : "",
                 present - bad == 1 ? "was" : "were", comparison_words[ci], threshold, n - need + 1,
                 n - need + 1 == 1 ? "" : "s");
    }
    buf_release(&pts);
    if (cur && strcmp(cur, state) == 0) {
        json_decref(recent);
        json_decref(evaluated);
        return; /* no change: CloudWatch records transitions only */
    }
    char sd[32];
    format_lambda_time(start * 1000, sd);
    json_t *data =
        json_pack("{s:s, s:s, s:s, s:s, s:i, s:o, s:o, s:f}", "version", "1.0", "queryDate", qd,
                  "startDate", sd, "statistic", w.stat, "period", (int)w.period, "recentDatapoints",
                  recent, "evaluatedDatapoints", evaluated, "threshold", threshold);
    set_state(m, doc, state, reason, data);
}

void alarms_evaluate(struct metrics *m)
{
    const char *key;
    json_t *doc;
    void *tmp;
    json_object_foreach_safe(m->alarms, tmp, key, doc) evaluate(m, doc);
}

/*=== DescribeAlarmHistory ===*/

void alarms_history(struct mw_call *c)
{
    const char *name = NULL, *type = NULL, *token = NULL, *scan = "TimestampDescending";
    long max = HISTORY_MAX;
    int64_t since = 0, until = INT64_MAX;
    if (mw_str(c, c->in, "AlarmName", &name) < 0 ||
        mw_str(c, c->in, "HistoryItemType", &type) < 0 ||
        mw_str(c, c->in, "NextToken", &token) < 0 || mw_str(c, c->in, "ScanBy", &scan) < 0 ||
        mw_int(c, c->in, "MaxRecords", 1, HISTORY_MAX, &max) < 0 ||
        mw_time(c, c->in, "StartDate", &since) < 0 || mw_time(c, c->in, "EndDate", &until) < 0)
        return;
    if (type && strcmp(type, "ConfigurationUpdate") != 0 && strcmp(type, "StateUpdate") != 0 &&
        strcmp(type, "Action") != 0) {
        mw_fail(c, 400, "ValidationError",
                "HistoryItemType must be one of ConfigurationUpdate, StateUpdate, Action.");
        return;
    }
    long skip = 0;
    if (token) {
        char *end;
        skip = strtol(token, &end, 10);
        if (*end || skip < 0) {
            mw_fail(c, 400, "InvalidNextToken", "The service couldn't process the NextToken.");
            return;
        }
    }
    int asc = strcmp(scan, "TimestampAscending") == 0;
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT item FROM alarm_history WHERE (?1 IS NULL OR name = ?1) AND ts >= ?2 AND "
             "ts <= ?3 ORDER BY seq %s",
             asc ? "ASC" : "DESC");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->m->conn, sql, -1, &st, NULL) != SQLITE_OK) {
        mw_fail(c, 500, "InternalServiceError", "The history could not be read.");
        return;
    }
    if (name)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since);
    sqlite3_bind_int64(st, 3, until);
    json_t *items = json_array();
    long seen = 0;
    int more = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *item = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        if (!item)
            continue;
        if (type && strcmp(type, json_string_value(json_object_get(item, "HistoryItemType")))) {
            json_decref(item);
            continue;
        }
        if (seen++ < skip) {
            json_decref(item);
            continue;
        }
        if ((long)json_array_size(items) == max) {
            json_decref(item);
            more = 1;
            break;
        }
        json_array_append_new(items, item);
    }
    sqlite3_finalize(st);
    json_t *out = json_pack("{s:o}", "AlarmHistoryItems", items);
    if (more) {
        char t[32];
        snprintf(t, sizeof(t), "%ld", skip + max);
        json_object_set_new(out, "NextToken", json_string(t));
    }
    mw_reply(c, out);
}
