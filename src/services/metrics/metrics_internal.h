/*
 * metrics_internal: what the metrics service's files share: the metric
 * store (store.c), the request/answer glue for the wire protocols (wire.c,
 * cbor.c),
 * the CloudWatch operations (cloudwatch.c), alarms (alarms.c), the billing
 * meter (billing.c) and the Prometheus exposition (prom.c). Not for use
 * outside src/services/metrics/.
 */
#ifndef IGNIS_SERVICES_METRICS_INTERNAL_H
#define IGNIS_SERVICES_METRICS_INTERNAL_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

#include "core/buf.h"
#include "services/metrics/metrics.h"

#define METRICS_NS_LAMBDA "AWS/Lambda"
#define METRICS_RETENTION_S (15 * 86400) /* CloudWatch keeps 1-minute data 15 days */
#define METRICS_MAX_DIMS 30

/*=== Histograms (store.c): log buckets, ~1% relative error, for percentiles ===*/

struct hbin {
    int32_t key;
    uint32_t count;
};
struct hist {
    struct hbin *bins; /* sorted by key (= by value) */
    uint32_t n, alloc;
};
void hist_add(struct hist *h, double v, uint32_t count);
void hist_merge(struct hist *dst, const struct hist *src);
void hist_release(struct hist *h);
/* The p-th percentile (0 < p <= 100) of what h holds, clamped to [min, max]. */
double hist_percentile(const struct hist *h, double p, double min, double max);
/* Blob form for the db: (int32 key, uint32 count) pairs, little-endian. */
int hist_encode(const struct hist *h, struct buf *out);
int hist_decode(struct hist *h, const void *blob, size_t len);

/* One period's aggregate. */
struct agg {
    double count, sum, min, max;
    struct hist h; /* only for series that keep them */
};
void agg_add(struct agg *a, double v, double count, int keep_hist);
void agg_merge(struct agg *dst, const struct agg *src);
void agg_release(struct agg *a);

/*=== Series ===*/

struct slot {
    int64_t minute; /* epoch seconds, a multiple of 60 */
    struct agg a;
};

/* Prometheus' duration buckets, seconds (lifetime, FunctionName-only series). */
#define PROM_NBUCKETS 14
extern const double prom_bounds[PROM_NBUCKETS];

struct series {
    int64_t id; /* row in metric_series, 0 until stored */
    char *ns, *name;
    char *dims; /* canonical: JSON [["Name","Value"],...] sorted by name */
    char unit[32];
    int keep_hist;
    int64_t last_s;     /* newest datapoint's time seen by this run (ListMetrics RecentlyActive) */
    struct slot *slots; /* not yet written to the db */
    size_t nslots, slots_alloc;
    /* since start, for Prometheus */
    double life_count, life_sum;
    uint64_t *life_buckets; /* PROM_NBUCKETS + 1, for Duration */
    struct series *hnext;
};

struct metrics {
    struct loop *loop;
    const struct config *cfg;
    struct db *db;
    sqlite3 *conn;
    struct pool *pool;
    struct lambda *lambda;
    int recording; /* IGNIS_METRICS != 0 */
    struct series **table;
    size_t nbuckets, nseries;
    struct loop_timer *flush_timer, *alarm_timer;
    int64_t flush_ms, alarm_ms;
    unsigned inflight; /* invocations in flight, account-wide */
    sqlite3_stmt *st_series_put, *st_data_put, *st_data_get, *st_prune;
    int64_t last_prune_s;
    /* alarms (alarms.c) */
    json_t *alarms; /* name -> MetricAlarm document as answered (timestamps epoch ms) */
    /* billing (billing.c) */
    struct bill_acc *bills;
    size_t nbills, bills_alloc;
    unsigned billing_granularity_ms;
};

/* Canonical dims text from an array of {"Name","Value"} objects (borrowed); NULL when the
 * array is not of that shape. Caller frees. */
char *metrics_dims_canonical(json_t *dims);
/* Finds a series, creating it when create (unit fixed at its first datapoint). */
struct series *metrics_series(struct metrics *m, const char *ns, const char *name, const char *dims,
                              int create);
/* Adds count samples of v at epoch second ts to s. */
void metrics_add(struct metrics *m, struct series *s, int64_t ts, double v, double count);
/* Adds an aggregate (StatisticValues) at ts. */
void metrics_add_agg(struct metrics *m, struct series *s, int64_t ts, const struct agg *a);
/* Aggregates s over [start, end) (epoch s) into periods of period seconds aligned to start:
 * out[i] covers start + i * period; nout = ceil((end - start) / period). Caller releases. */
int metrics_query(struct metrics *m, struct series *s, int64_t start, int64_t end, int period,
                  struct agg *out, size_t nout);
/* Every series, in no particular order. */
typedef void (*metrics_series_cb)(struct series *s, void *arg);
void metrics_foreach(struct metrics *m, metrics_series_cb cb, void *arg);
/* Writes every pending slot (and the billing meter) to the db. */
void metrics_flush(struct metrics *m);
/* Prepares the statements and loads the series (start); frees them (end). */
int metrics_store_open(struct metrics *m);
void metrics_store_close(struct metrics *m);

/* A statistic's value for an aggregate: "Sum", "Average", "pNN", "pNN.N", ...; -1 for an
 * unknown name, 0 with *out set, 1 when undefined (no samples). */
int metrics_stat(const struct agg *a, const char *stat, double *out);
/* Whether stat names a statistic CloudWatch knows (GetMetricData's Stat, alarms). */
int metrics_stat_valid(const char *stat);

/*=== Requests (wire.c): every protocol's input becomes one JSON document ===*/

enum mw_proto { MW_QUERY, MW_JSON, MW_CBOR };
struct mw_call {
    struct metrics *m;
    struct http_req *req;
    enum mw_proto proto;
    const char *op;
    json_t *in; /* the input; query-protocol values are all strings */
};
/* Decodes an application/x-www-form-urlencoded body into {Action, Version, members...}:
 * "A.member.1.B=x" becomes {"A":[{"B":"x"}]}, "M.entry.1.key/value" an object. NULL on
 * malformed input (the reason in err). */
json_t *mw_form_decode(const char *body, size_t len, char *err, size_t errsize);
/* rpc-v2-cbor (cbor.c): a request body (empty: {}) as a JSON object, NULL on malformed input
 * (the reason in err); and a document as CBOR, timestamps as tag 1 (appended to out). */
json_t *mw_cbor_decode(const void *data, size_t len, char *err, size_t errsize);
int mw_cbor_encode(json_t *doc, struct buf *out);
/* Whether an output member named k holds timestamps (epoch seconds in the document). */
int mw_is_time_key(const char *k);
/* Answers the call: the output document (taken; NULL: an empty answer). */
void mw_reply(struct mw_call *c, json_t *out);
/* Answers an AWS error in the call's protocol; code is the query protocol's
 * (InvalidParameterValue, MissingParameter, ...). */
void mw_fail(struct mw_call *c, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Answers MissingParameter for name; returns -1. */
int mw_missing(struct mw_call *c, const char *name);
/* Lenient readers: query values are strings, JSON values typed. Return 1 when absent, 0 when
 * read, -1 after answering a bad value. */
int mw_str(struct mw_call *c, json_t *obj, const char *key, const char **out);
int mw_num(struct mw_call *c, json_t *obj, const char *key, double *out);
int mw_int(struct mw_call *c, json_t *obj, const char *key, long min, long max, long *out);
int mw_bool(struct mw_call *c, json_t *obj, const char *key, int *out);
/* Timestamps: ISO 8601 (query) or epoch seconds (JSON), to epoch ms. */
int mw_time(struct mw_call *c, json_t *obj, const char *key, int64_t *out_ms);
/* A list member (borrowed), NULL when absent: jansson's array calls take NULL as empty. */
json_t *mw_list(json_t *obj, const char *key);

/*=== Operations (cloudwatch.c, alarms.c) ===*/

void cw_get_metric_statistics(struct mw_call *c);
void cw_get_metric_data(struct mw_call *c);
void cw_list_metrics(struct mw_call *c);
void cw_put_metric_data(struct mw_call *c);
void alarms_put(struct mw_call *c);
void alarms_describe(struct mw_call *c);
void alarms_delete(struct mw_call *c);
void alarms_set_state(struct mw_call *c);
void alarms_history(struct mw_call *c);
/* Dimension list {"Name","Value"} checks with CloudWatch's words; -1 after answering. */
int cw_check_dims(struct mw_call *c, json_t *dims, const char *field);

int alarms_load(struct metrics *m);
void alarms_evaluate(struct metrics *m);
void alarms_free(struct metrics *m);

/*=== Billing (billing.c) and Prometheus (prom.c) ===*/

struct bill_acc {
    char function[65];
    int64_t hour; /* epoch s */
    uint64_t requests, billed_ms, mb_ms;
};
void billing_meter(struct metrics *m, const char *function, const struct invocation *inv);
void billing_flush(struct metrics *m);
void billing_report(struct metrics *m, struct http_req *req);
void prom_scrape(struct metrics *m, struct http_req *req);

#endif
