/*
 * prom: GET /metrics, the Prometheus text exposition format (0.0.4). Per
 * function, since the daemon started: invocations, errors, throttles,
 * asynchronous events received, destination delivery failures and a
 * duration histogram (from the FunctionName series of the store); and the
 * daemon's own figures: instances by state, cold starts and invocations
 * waiting (the pool), events in the asynchronous queue (the Lambda
 * service), invocations in flight and the process's resident memory.
 * Public, like any Prometheus target: it shows function names and counts,
 * never payloads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "services/lambda/lambda.h"
#include "services/metrics/metrics_internal.h"

struct family {
    const char *metric; /* AWS/Lambda metric */
    const char *prom;   /* Prometheus name */
    const char *help;
    struct buf out;
};

static void label_value(struct buf *b, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            buf_puts(b, "\\n");
        else
            buf_putc(b, *p);
    }
}

struct scrape {
    struct family *fams;
    size_t nfams;
    struct buf hist;
};

static void add_series(struct series *s, void *arg)
{
    struct scrape *sc = arg;
    if (strcmp(s->ns, METRICS_NS_LAMBDA) != 0 || !str_has_prefix(s->dims, "[[\"FunctionName\"") ||
        strstr(s->dims, "],[") || s->life_count == 0)
        return;
    json_t *dims = json_loads(s->dims, 0, NULL);
    const char *fn = json_string_value(json_array_get(json_array_get(dims, 0), 1));
    if (!fn) {
        json_decref(dims);
        return;
    }
    struct buf label = BUF_INIT;
    buf_puts(&label, "function=\"");
    label_value(&label, fn);
    buf_putc(&label, '"');
    json_decref(dims);
    if (strcmp(s->name, "Duration") == 0 && s->life_buckets) {
        uint64_t cum = 0;
        for (size_t i = 0; i <= PROM_NBUCKETS; i++) {
            cum += s->life_buckets[i];
            if (i < PROM_NBUCKETS)
                buf_printf(&sc->hist, "ignis_lambda_duration_seconds_bucket{%s,le=\"%g\"} %llu\n",
                           label.data, prom_bounds[i], (unsigned long long)cum);
            else
                buf_printf(&sc->hist, "ignis_lambda_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n",
                           label.data, (unsigned long long)cum);
        }
        buf_printf(&sc->hist, "ignis_lambda_duration_seconds_sum{%s} %.6f\n", label.data,
                   s->life_sum / 1000.0);
        buf_printf(&sc->hist, "ignis_lambda_duration_seconds_count{%s} %.0f\n", label.data,
                   s->life_count);
    }
    for (size_t i = 0; i < sc->nfams; i++)
        if (strcmp(sc->fams[i].metric, s->name) == 0)
            buf_printf(&sc->fams[i].out, "%s{%s} %.0f\n", sc->fams[i].prom, label.data,
                       s->life_sum);
    buf_release(&label);
}

static unsigned long long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (unsigned long long)sysconf(_SC_PAGESIZE);
}

void prom_scrape(struct metrics *m, struct http_req *req)
{
    struct family fams[] = {
        {"Invocations", "ignis_lambda_invocations_total", "Invocations, by function", BUF_INIT},
        {"Errors", "ignis_lambda_errors_total", "Invocations that ended in a function error",
         BUF_INIT},
        {"Throttles", "ignis_lambda_throttles_total", "Invocations refused with 429", BUF_INIT},
        {"AsyncEventsReceived", "ignis_lambda_async_events_received_total",
         "Asynchronous events accepted", BUF_INIT},
        {"DestinationDeliveryFailures", "ignis_lambda_destination_delivery_failures_total",
         "Invocation records that could not be sent to their destination", BUF_INIT},
    };
    struct scrape sc = {fams, sizeof(fams) / sizeof(fams[0]), BUF_INIT};
    metrics_foreach(m, add_series, &sc);
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < sc.nfams; i++) {
        buf_printf(&b, "# HELP %s %s.\n# TYPE %s counter\n", fams[i].prom, fams[i].help,
                   fams[i].prom);
        if (fams[i].out.len)
            buf_append(&b, fams[i].out.data, fams[i].out.len);
        buf_release(&fams[i].out);
    }
    buf_puts(&b, "# HELP ignis_lambda_duration_seconds Invocation duration, by function.\n"
                 "# TYPE ignis_lambda_duration_seconds histogram\n");
    if (sc.hist.len)
        buf_append(&b, sc.hist.data, sc.hist.len);
    buf_release(&sc.hist);
    if (m->pool) {
        struct pool_stats ps;
        pool_stats(m->pool, &ps);
        buf_printf(&b,
                   "# HELP ignis_instances Function instances, by state.\n"
                   "# TYPE ignis_instances gauge\n"
                   "ignis_instances{state=\"starting\"} %u\n"
                   "ignis_instances{state=\"idle\"} %u\n"
                   "ignis_instances{state=\"busy\"} %u\n"
                   "ignis_instances{state=\"between\"} %u\n"
                   "# HELP ignis_cold_starts_total Invocations served by a freshly started "
                   "instance.\n"
                   "# TYPE ignis_cold_starts_total counter\n"
                   "ignis_cold_starts_total %llu\n"
                   "# HELP ignis_invocations_waiting Invocations waiting for an instance.\n"
                   "# TYPE ignis_invocations_waiting gauge\n"
                   "ignis_invocations_waiting %u\n",
                   ps.starting, ps.idle, ps.busy, ps.between, ps.cold_starts, ps.waiting);
    }
    if (m->lambda)
        buf_printf(&b,
                   "# HELP ignis_async_queue_depth Asynchronous events not yet finished.\n"
                   "# TYPE ignis_async_queue_depth gauge\n"
                   "ignis_async_queue_depth %u\n",
                   lambda_async_depth(m->lambda));
    buf_printf(&b,
               "# HELP ignis_concurrent_executions Invocations in flight.\n"
               "# TYPE ignis_concurrent_executions gauge\n"
               "ignis_concurrent_executions %u\n"
               "# HELP process_resident_memory_bytes Resident memory of the daemon.\n"
               "# TYPE process_resident_memory_bytes gauge\n"
               "process_resident_memory_bytes %llu\n",
               m->inflight, rss_bytes());
    size_t len;
    char *text = buf_detach(&b, &len);
    http_reply_take(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
