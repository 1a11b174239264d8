/*
 * cloudwatch: the metric operations of the CloudWatch API over the store:
 * GetMetricStatistics, GetMetricData (MetricStat queries; metric math is
 * refused), ListMetrics and PutMetricData (custom namespaces; Value,
 * Values/Counts or StatisticValues; Unit; Timestamp), with CloudWatch's
 * checks and error codes. Protocol-neutral: the input and output are the
 * documents wire.c decodes and encodes. Alarms are alarms.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "services/metrics/metrics_internal.h"

#define MAX_DATAPOINTS 1440    /* GetMetricStatistics */
#define MAX_DATA_POINTS 100800 /* GetMetricData, per call */
#define LIST_PAGE 500          /* ListMetrics */
#define PUT_MAX_AGE_S 1209600  /* two weeks */
#define PUT_MAX_FUTURE_S 7200  /* two hours */
#define PUT_MAX_DATA 1000
#define PUT_MAX_VALUES 150

static const char *const units[] = {
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
};

static int check_unit(struct mw_call *c, const char *unit)
{
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(unit, units[i]) == 0)
            return 0;
    mw_fail(c, 400, "InvalidParameterValue",
            "The parameter Unit must be a value in the set [ %s ].",
            "Seconds, Microseconds, Milliseconds, Bytes, Kilobytes, Megabytes, Gigabytes, "
            "Terabytes, Bits, Kilobits, Megabits, Gigabits, Terabits, Percent, Count, "
            "Bytes/Second, Kilobytes/Second, Megabytes/Second, Gigabytes/Second, "
            "Terabytes/Second, Bits/Second, Kilobits/Second, Megabits/Second, Gigabits/Second, "
            "Terabits/Second, Count/Second, None");
    return -1;
}

int cw_check_dims(struct mw_call *c, json_t *dims, const char *field)
{
    if (json_array_size(dims) > METRICS_MAX_DIMS) {
        mw_fail(c, 400, "InvalidParameterValue",
                "The collection %s must not have a size greater than %d.", field, METRICS_MAX_DIMS);
        return -1;
    }
    size_t i;
    json_t *d;
    json_array_foreach(dims, i, d)
    {
        const char *name = json_string_value(json_object_get(d, "Name"));
        const char *value = json_string_value(json_object_get(d, "Value"));
        if (!name || !*name || strlen(name) > 255) {
            mw_fail(c, 400, "InvalidParameterValue",
                    "The parameter %s.member.%zu.Name must be a string of 1 to 255 characters.",
                    field, i + 1);
            return -1;
        }
        if (!value || !*value || strlen(value) > 1024) {
            mw_fail(c, 400, "InvalidParameterValue",
                    "The parameter %s.member.%zu.Value must be a string of 1 to 1024 characters.",
                    field, i + 1);
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(name, json_string_value(json_object_get(json_array_get(dims, k), "Name"))) ==
                0) {
                mw_fail(c, 400, "InvalidParameterValue",
                        "No Metric may specify the same dimension name twice: %s", name);
                return -1;
            }
    }
    return 0;
}

/* The series a Namespace, MetricName and Dimensions name (NULL: no data yet). */
static struct series *find_series(struct metrics *m, const char *ns, const char *name, json_t *dims)
{
    char *canon = metrics_dims_canonical(dims);
    struct series *s = canon ? metrics_series(m, ns, name, canon, 0) : NULL;
    free(canon);
    return s;
}

static int check_period(struct mw_call *c, long period)
{
    if (period != 1 && period != 5 && period != 10 && period != 30 && period % 60 != 0) {
        mw_fail(c, 400, "InvalidParameterValue",
                "The parameter Period must be 1, 5, 10, 30, or a multiple of 60.");
        return -1;
    }
    return 0;
}

/* Reads StartTime and EndTime (epoch s, start rounded down to its minute). */
static int time_range(struct mw_call *c, int64_t *start, int64_t *end)
{
    int64_t s_ms, e_ms;
    int rc = mw_time(c, c->in, "StartTime", &s_ms);
    if (rc)
        return rc > 0 ? mw_missing(c, "StartTime") : -1;
    rc = mw_time(c, c->in, "EndTime", &e_ms);
    if (rc)
        return rc > 0 ? mw_missing(c, "EndTime") : -1;
    if (s_ms >= e_ms) {
        mw_fail(c, 400, "InvalidParameterValue",
                "The parameter StartTime must be less than the parameter EndTime.");
        return -1;
    }
    *start = s_ms / 1000;
    *start -= (*start % 60 + 60) % 60;
    *end = (e_ms + 999) / 1000;
    return 0;
}

/*=== GetMetricStatistics ===*/

void cw_get_metric_statistics(struct mw_call *c)
{
    const char *ns = NULL, *name = NULL, *unit = NULL;
    long period;
    int64_t start, end;
    int rc;
    if ((rc = mw_str(c, c->in, "Namespace", &ns)))
        return (void)(rc > 0 && mw_missing(c, "Namespace"));
    if ((rc = mw_str(c, c->in, "MetricName", &name)))
        return (void)(rc > 0 && mw_missing(c, "MetricName"));
    if (time_range(c, &start, &end) < 0)
        return;
    if ((rc = mw_int(c, c->in, "Period", 1, 86400 * 455, &period)))
        return (void)(rc > 0 && mw_missing(c, "Period"));
    if (check_period(c, period) < 0)
        return;
    if (mw_str(c, c->in, "Unit", &unit) < 0 || (unit && check_unit(c, unit) < 0))
        return;
    json_t *stats = mw_list(c->in, "Statistics"), *ext = mw_list(c->in, "ExtendedStatistics");
    json_t *dims = mw_list(c->in, "Dimensions");
    if (cw_check_dims(c, dims, "Dimensions") < 0)
        return;
    if (json_array_size(stats) == 0 && json_array_size(ext) == 0) {
        mw_fail(c, 400, "InvalidParameterCombination",
                "Must specify either Statistics or ExtendedStatistics, but not both.");
        return;
    }
    if (json_array_size(stats) > 5 || json_array_size(ext) > 10) {
        mw_fail(c, 400, "InvalidParameterValue",
                "Statistics may have at most 5 members and ExtendedStatistics at most 10.");
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(stats, i, v)
    {
        const char *st = json_string_value(v);
        if (!st || !metrics_stat_valid(st) || st[0] == 'p') {
            mw_fail(c, 400, "InvalidParameterValue",
                    "The parameter Statistics.member.%zu must be a value in the set [ Maximum, "
                    "Minimum, Average, SampleCount, Sum ].",
                    i + 1);
            return;
        }
    }
    json_array_foreach(ext, i, v)
    {
        const char *st = json_string_value(v);
        if (!st || st[0] != 'p' || !metrics_stat_valid(st)) {
            mw_fail(c, 400, "InvalidParameterValue",
                    "The parameter ExtendedStatistics.member.%zu must be a percentile like "
                    "p99 or p99.9.",
                    i + 1);
            return;
        }
    }
    size_t nout = (size_t)((end - start + period - 1) / period);
    if (nout > MAX_DATAPOINTS) {
        mw_fail(c, 400, "InvalidParameterCombination",
                "You have requested up to %zu datapoints, which exceeds the limit of %d. You may "
                "reduce the datapoints requested by increasing Period, or decreasing the time "
                "range.",
                nout, MAX_DATAPOINTS);
        return;
    }
    json_t *points = json_array();
    struct series *s = find_series(c->m, ns, name, dims);
    if (s && (!unit || strcmp(unit, s->unit) == 0)) {
        struct agg *out = calloc(nout, sizeof(*out));
        if (out)
            metrics_query(c->m, s, start, end, (int)period, out, nout);
        for (size_t k = 0; out && k < nout; k++) {
            if (out[k].count <= 0) {
                agg_release(&out[k]);
                continue;
            }
            json_t *p = json_pack("{s:f, s:s}", "Timestamp", (double)(start + (int64_t)k * period),
                                  "Unit", s->unit);
            json_array_foreach(stats, i, v)
            {
                double val;
                if (metrics_stat(&out[k], json_string_value(v), &val) == 0)
                    json_object_set_new(p, json_string_value(v), json_real(val));
            }
            if (json_array_size(ext)) {
                json_t *e = json_object();
                json_array_foreach(ext, i, v)
                {
                    double val;
                    if (metrics_stat(&out[k], json_string_value(v), &val) == 0)
                        json_object_set_new(e, json_string_value(v), json_real(val));
                }
                json_object_set_new(p, "ExtendedStatistics", e);
            }
            json_array_append_new(points, p);
            agg_release(&out[k]);
        }
        free(out);
    }
    mw_reply(c, json_pack("{s:s, s:o}", "Label", name, "Datapoints", points));
}

/*=== GetMetricData ===*/

static int valid_id(const char *id)
{
    if (!id || !(*id >= 'a' && *id <= 'z') || strlen(id) > 255)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return 0;
    return 1;
}

void cw_get_metric_data(struct mw_call *c)
{
    int64_t start, end;
    json_t *queries = mw_list(c->in, "MetricDataQueries");
    if (!json_object_get(c->in, "MetricDataQueries"))
        return (void)mw_missing(c, "MetricDataQueries");
    if (time_range(c, &start, &end) < 0)
        return;
    const char *scan = "TimestampDescending";
    if (mw_str(c, c->in, "ScanBy", &scan) < 0)
        return;
    if (strcmp(scan, "TimestampDescending") != 0 && strcmp(scan, "TimestampAscending") != 0) {
        mw_fail(c, 400, "InvalidParameterValue",
                "The parameter ScanBy must be a value in the set [ TimestampDescending, "
                "TimestampAscending ].");
        return;
    }
    long max_points = MAX_DATA_POINTS;
    if (mw_int(c, c->in, "MaxDatapoints", 1, 100800, &max_points) < 0)
        return;
    size_t nq = json_array_size(queries);
    if (nq == 0 || nq > 500) {
        mw_fail(c, 400, "InvalidParameterValue",
                "The collection MetricDataQueries must have between 1 and 500 members.");
        return;
    }
    size_t i;
    json_t *q;
    /* validate everything before computing anything */
    json_array_foreach(queries, i, q)
    {
        const char *id = json_string_value(json_object_get(q, "Id"));
        if (!valid_id(id)) {
            mw_fail(c, 400, "ValidationError",
                    "The value %s for parameter MetricDataQueries.member.%zu.Id is not valid: it "
                    "must start with a lowercase letter and hold only letters, digits and "
                    "underscores.",
                    id ? id : "(missing)", i + 1);
            return;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(id, json_string_value(json_object_get(json_array_get(queries, k), "Id"))) ==
                0) {
                mw_fail(c, 400, "ValidationError",
                        "The values for parameter id in "
                        "MetricDataQueries are not unique.");
                return;
            }
        if (json_object_get(q, "Expression")) {
            mw_fail(c, 400, "ValidationError",
                    "MetricDataQueries.member.%zu: metric math expressions are not supported by "
                    "Ignis; use MetricStat",
                    i + 1);
            return;
        }
        json_t *ms = json_object_get(q, "MetricStat");
        const char *stat = json_string_value(json_object_get(ms, "Stat"));
        json_t *metric = json_object_get(ms, "Metric");
        long period;
        if (!json_is_object(ms) || !json_is_object(metric) || !stat) {
            mw_fail(c, 400, "ValidationError",
                    "MetricDataQueries.member.%zu must have a MetricStat with Metric, Period and "
                    "Stat.",
                    i + 1);
            return;
        }
        if (!json_string_value(json_object_get(metric, "Namespace")) ||
            !json_string_value(json_object_get(metric, "MetricName"))) {
            mw_fail(c, 400, "ValidationError",
                    "MetricDataQueries.member.%zu.MetricStat.Metric must have a Namespace and a "
                    "MetricName.",
                    i + 1);
            return;
        }
        int rc = mw_int(c, ms, "Period", 1, 86400 * 455, &period);
        if (rc > 0)
            return (void)mw_missing(c, "MetricStat.Period");
        if (rc < 0 || check_period(c, period) < 0)
            return;
        if (!metrics_stat_valid(stat)) {
            mw_fail(c, 400, "ValidationError",
                    "The value %s for parameter MetricDataQueries.member.%zu.MetricStat.Stat is "
                    "not a valid statistic.",
                    stat, i + 1);
            return;
        }
        if (cw_check_dims(c, mw_list(metric, "Dimensions"), "Dimensions") < 0)
            return;
        const char *unit = NULL;
        if (mw_str(c, ms, "Unit", &unit) < 0 || (unit && check_unit(c, unit) < 0))
            return;
        if ((size_t)((end - start + period - 1) / period) > (size_t)MAX_DATA_POINTS) {
            mw_fail(c, 400, "InvalidParameterCombination",
                    "MetricDataQueries.member.%zu asks for more than %d datapoints.", i + 1,
                    MAX_DATA_POINTS);
            return;
        }
    }
    json_t *results = json_array();
    long budget = max_points;
    json_array_foreach(queries, i, q)
    {
        int ret = 1;
        if (mw_bool(c, q, "ReturnData", &ret) < 0) {
            json_decref(results);
            return;
        }
        if (!ret)
            continue;
        json_t *ms = json_object_get(q, "MetricStat"), *metric = json_object_get(ms, "Metric");
        const char *stat = json_string_value(json_object_get(ms, "Stat"));
        const char *label = json_string_value(json_object_get(q, "Label"));
        const char *name = json_string_value(json_object_get(metric, "MetricName"));
        const char *unit = json_string_value(json_object_get(ms, "Unit"));
        long period = 60;
        mw_int(c, ms, "Period", 1, 86400 * 455, &period);
        json_t *ts = json_array(), *vals = json_array();
        struct series *s =
            find_series(c->m, json_string_value(json_object_get(metric, "Namespace")), name,
                        mw_list(metric, "Dimensions"));
        size_t nout = (size_t)((end - start + period - 1) / period);
        int complete = 1;
        if (s && (!unit || strcmp(unit, s->unit) == 0)) {
            struct agg *out = calloc(nout, sizeof(*out));
            if (out)
                metrics_query(c->m, s, start, end, (int)period, out, nout);
            for (size_t n = 0; out && n < nout; n++) {
                size_t k = strcmp(scan, "TimestampAscending") == 0 ? n : nout - 1 - n;
                double val;
                if (out[k].count > 0 && metrics_stat(&out[k], stat, &val) == 0) {
                    if (budget <= 0) {
                        complete = 0;
                    } else {
                        budget--;
                        json_array_append_new(ts, json_real((double)(start + (int64_t)k * period)));
                        json_array_append_new(vals, json_real(val));
                    }
                }
            }
            for (size_t n = 0; out && n < nout; n++)
                agg_release(&out[n]);
            free(out);
        }
        json_array_append_new(
            results, json_pack("{s:O, s:s, s:o, s:o, s:s, s:[]}", "Id", json_object_get(q, "Id"),
                               "Label", label ? label : name, "Timestamps", ts, "Values", vals,
                               "StatusCode", complete ? "Complete" : "PartialData", "Messages"));
    }
    mw_reply(c, json_pack("{s:o, s:[]}", "MetricDataResults", results, "Messages"));
}

/*=== ListMetrics ===*/

struct list_ctx {
    struct series **all;
    size_t n, alloc;
};

static void collect(struct series *s, void *arg)
{
    struct list_ctx *l = arg;
    if (l->n == l->alloc) {
        size_t alloc = l->alloc ? 2 * l->alloc : 64;
        struct series **a = realloc(l->all, alloc * sizeof(*a));
        if (!a)
            return;
        l->all = a;
        l->alloc = alloc;
    }
    l->all[l->n++] = s;
}

static int cmp_series(const void *a, const void *b)
{
    const struct series *x = *(struct series *const *)a, *y = *(struct series *const *)b;
    int r = strcmp(x->ns, y->ns);
    if (!r)
        r = strcmp(x->name, y->name);
    return r ? r : strcmp(x->dims, y->dims);
}

/* Whether s has every dimension of filters (a Value: with that value). */
static int dims_match(const struct series *s, json_t *filters)
{
    if (!json_array_size(filters))
        return 1;
    json_t *dims = json_loads(s->dims, 0, NULL);
    size_t i, k;
    json_t *f, *d;
    int ok = 1;
    json_array_foreach(filters, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "Name"));
        const char *value = json_string_value(json_object_get(f, "Value"));
        int found = 0;
        json_array_foreach(dims, k, d)
        {
            if (name && strcmp(json_string_value(json_array_get(d, 0)), name) == 0 &&
                (!value || strcmp(json_string_value(json_array_get(d, 1)), value) == 0))
                found = 1;
        }
        if (!found) {
            ok = 0;
            break;
        }
    }
    json_decref(dims);
    return ok;
}

static json_t *dims_doc(const char *canon)
{
    json_t *dims = json_loads(canon, 0, NULL), *out = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(dims, i, d) json_array_append_new(
        out, json_pack("{s:O, s:O}", "Name", json_array_get(d, 0), "Value", json_array_get(d, 1)));
    json_decref(dims);
    return out;
}

void cw_list_metrics(struct mw_call *c)
{
    const char *ns = NULL, *name = NULL, *token = NULL, *recent = NULL;
    if (mw_str(c, c->in, "Namespace", &ns) < 0 || mw_str(c, c->in, "MetricName", &name) < 0 ||
        mw_str(c, c->in, "NextToken", &token) < 0 ||
        mw_str(c, c->in, "RecentlyActive", &recent) < 0)
        return;
    if (recent && strcmp(recent, "PT3H") != 0) {
        mw_fail(c, 400, "InvalidParameterValue",
                "The parameter RecentlyActive must be a value in the set [ PT3H ].");
        return;
    }
    json_t *filters = mw_list(c->in, "Dimensions");
    if (json_array_size(filters) > 10) {
        mw_fail(c, 400, "InvalidParameterValue",
                "The collection Dimensions must not have a size greater than 10.");
        return;
    }
    long skip = 0;
    if (token) {
        struct buf dec = BUF_INIT;
        char *end = NULL;
        if (base64_decode(&dec, token, strlen(token)) == 0 && dec.data)
            skip = strtol(dec.data, &end, 10);
        if (!end || *end || skip < 0) {
            buf_release(&dec);
            mw_fail(c, 400, "InvalidNextToken", "The service couldn't process the NextToken.");
            return;
        }
        buf_release(&dec);
    }
    struct list_ctx l = {0};
    metrics_foreach(c->m, collect, &l);
    qsort(l.all, l.n, sizeof(*l.all), cmp_series);
    int64_t since = now_ms() / 1000 - 3 * 3600;
    json_t *metrics = json_array();
    long seen = 0, shown = 0;
    const char *next = NULL;
    char tok[32];
    struct buf enc = BUF_INIT;
    for (size_t i = 0; i < l.n; i++) {
        struct series *s = l.all[i];
        if ((ns && strcmp(ns, s->ns) != 0) || (name && strcmp(name, s->name) != 0) ||
            (recent && s->last_s < since) || !dims_match(s, filters))
            continue;
        if (seen++ < skip)
            continue;
        if (shown == LIST_PAGE) {
            snprintf(tok, sizeof(tok), "%ld", skip + shown);
            base64_encode(&enc, tok, strlen(tok));
            next = enc.data;
            break;
        }
        shown++;
        json_array_append_new(metrics,
                              json_pack("{s:s, s:s, s:o}", "Namespace", s->ns, "MetricName",
                                        s->name, "Dimensions", dims_doc(s->dims)));
    }
    free(l.all);
    json_t *out = json_pack("{s:o}", "Metrics", metrics);
    if (next)
        json_object_set_new(out, "NextToken", json_string(next));
    buf_release(&enc);
    mw_reply(c, out);
}

/*=== PutMetricData ===*/

static int datum_number(struct mw_call *c, json_t *obj, const char *key, size_t i, double *out)
{
    int rc = mw_num(c, obj, key, out);
    if (rc == 0 && (!isfinite(*out) || fabs(*out) > 1.0e108)) {
        mw_fail(c, 400, "InvalidParameterValue",
                "The value for parameter MetricData.member.%zu.%s is out of range.", i + 1, key);
        return -1;
    }
    return rc;
}

void cw_put_metric_data(struct mw_call *c)
{
    const char *ns = NULL;
    int rc = mw_str(c, c->in, "Namespace", &ns);
    if (rc)
        return (void)(rc > 0 && mw_missing(c, "Namespace"));
    if (!*ns || strlen(ns) > 255 || str_has_prefix(ns, "AWS/") || ns[0] == ':') {
        mw_fail(c, 400, "InvalidParameterValue", "The value %s for parameter Namespace is invalid.",
                ns);
        return;
    }
    json_t *data = mw_list(c->in, "MetricData");
    if (!json_object_get(c->in, "MetricData"))
        return (void)mw_missing(c, "MetricData");
    if (json_array_size(data) == 0 || json_array_size(data) > PUT_MAX_DATA) {
        mw_fail(c, 400, "InvalidParameterValue",
                "The collection MetricData must have between 1 and %d members.", PUT_MAX_DATA);
        return;
    }
    int64_t now = now_ms();
    size_t i;
    json_t *d;
    /* check everything first: a rejected call stores nothing */
    for (int pass = 0; pass < 2; pass++) {
        json_array_foreach(data, i, d)
        {
            const char *name = NULL, *unit = "None";
            if ((rc = mw_str(c, d, "MetricName", &name)))
                return (void)(rc > 0 && mw_missing(c, "MetricData.member.N.MetricName"));
            if (!*name || strlen(name) > 255) {
                mw_fail(c, 400, "InvalidParameterValue",
                        "The parameter MetricData.member.%zu.MetricName must be 1 to 255 "
                        "characters.",
                        i + 1);
                return;
            }
            if (mw_str(c, d, "Unit", &unit) < 0 || check_unit(c, unit) < 0)
                return;
            json_t *dims = mw_list(d, "Dimensions");
            if (cw_check_dims(c, dims, "Dimensions") < 0)
                return;
            int64_t ts = now;
            if (mw_time(c, d, "Timestamp", &ts) < 0)
                return;
            if (ts < now - PUT_MAX_AGE_S * 1000LL || ts > now + PUT_MAX_FUTURE_S * 1000LL) {
                mw_fail(c, 400, "InvalidParameterValue",
                        "The parameter MetricData.member.%zu.Timestamp must specify a time no "
                        "more than two weeks in the past and no more than two hours in the "
                        "future.",
                        i + 1);
                return;
            }
            long res = 60;
            if (mw_int(c, d, "StorageResolution", 1, 60, &res) < 0)
                return;
            if (res != 1 && res != 60) {
                mw_fail(c, 400, "InvalidParameterValue",
                        "The parameter MetricData.member.%zu.StorageResolution must be 1 or 60.",
                        i + 1);
                return;
            }
            double value = 0;
            int has_value = datum_number(c, d, "Value", i, &value);
            if (has_value < 0)
                return;
            json_t *sv = json_object_get(d, "StatisticValues");
            json_t *values = mw_list(d, "Values"), *counts = mw_list(d, "Counts");
            int kinds = (has_value == 0) + (sv != NULL) + (json_object_get(d, "Values") != NULL);
            if (kinds != 1) {
                mw_fail(c, 400, "InvalidParameterCombination",
                        "The parameters MetricData.member.%zu.Value, "
                        "MetricData.member.%zu.StatisticValues and MetricData.member.%zu.Values "
                        "are mutually exclusive and you have specified %s.",
                        i + 1, i + 1, i + 1, kinds ? "more than one" : "none");
                return;
            }
            struct agg sum = {0};
            if (sv) {
                double sc, su, mi, ma;
                if (datum_number(c, sv, "SampleCount", i, &sc) ||
                    datum_number(c, sv, "Sum", i, &su) || datum_number(c, sv, "Minimum", i, &mi) ||
                    datum_number(c, sv, "Maximum", i, &ma)) {
                    if (!json_object_get(sv, "SampleCount") || !json_object_get(sv, "Sum") ||
                        !json_object_get(sv, "Minimum") || !json_object_get(sv, "Maximum"))
                        mw_missing(c, "StatisticValues.SampleCount, Sum, Minimum and Maximum");
                    return;
                }
                if (sc <= 0 || mi > ma) {
                    mw_fail(c, 400, "InvalidParameterValue",
                            "The parameter MetricData.member.%zu.StatisticValues is not "
                            "consistent: SampleCount must be positive and Minimum at most "
                            "Maximum.",
                            i + 1);
                    return;
                }
                sum = (struct agg){.count = sc, .sum = su, .min = mi, .max = ma};
            }
            size_t nv = json_array_size(values);
            if (json_object_get(d, "Values") &&
                (nv == 0 || nv > PUT_MAX_VALUES ||
                 (json_object_get(d, "Counts") && json_array_size(counts) != nv))) {
                mw_fail(c, 400, "InvalidParameterValue",
                        "The parameter MetricData.member.%zu.Values must have 1 to %d members, "
                        "and Counts as many.",
                        i + 1, PUT_MAX_VALUES);
                return;
            }
            double vals[PUT_MAX_VALUES], cnts[PUT_MAX_VALUES];
            for (size_t k = 0; k < nv; k++) {
                json_t *pair = json_pack("{s:O, s:O*}", "Value", json_array_get(values, k), "Count",
                                         json_array_get(counts, k));
                cnts[k] = 1;
                int bad = datum_number(c, pair, "Value", i, &vals[k]) != 0 ||
                          datum_number(c, pair, "Count", i, &cnts[k]) < 0;
                json_decref(pair);
                if (bad)
                    return;
                if (cnts[k] < 0) {
                    mw_fail(c, 400, "InvalidParameterValue",
                            "The parameter MetricData.member.%zu.Counts must not be negative.",
                            i + 1);
                    return;
                }
            }
            if (pass == 0)
                continue;
            char *canon = metrics_dims_canonical(dims);
            struct series *s = canon ? metrics_series(c->m, ns, name, canon, 1) : NULL;
            free(canon);
            if (!s)
                continue;
            snprintf(s->unit, sizeof(s->unit), "%s", unit);
            s->keep_hist = 1;
            int64_t secs = ts / 1000;
            if (sv)
                metrics_add_agg(c->m, s, secs, &sum);
            else if (nv)
                for (size_t k = 0; k < nv; k++) {
                    if (cnts[k] > 0)
                        metrics_add(c->m, s, secs, vals[k], cnts[k]);
                }
            else
                metrics_add(c->m, s, secs, value, 1);
        }
    }
    mw_reply(c, NULL);
}
