/*
 * metrics: CloudWatch metrics, alarms and the billing meter (service
 * "monitoring": GetMetricStatistics, GetMetricData, ListMetrics,
 * PutMetricData, PutMetricAlarm, DescribeAlarms, DeleteAlarms, SetAlarmState,
 * DescribeAlarmHistory in the query protocol, JSON 1.0 and rpc-v2-cbor), the AWS/Lambda
 * metrics the Lambda service records through the calls below, the
 * Prometheus endpoint (GET /metrics) and the billing report the `ignis bill`
 * command reads (/_ignis/billing).
 *
 * Recording is for the warm path: it adds to in-memory aggregates (no
 * syscall, no db); a timer (IGNIS_METRICS_FLUSH_MS, default 5000) writes
 * them to the db. A NULL struct metrics records nothing.
 */
#ifndef IGNIS_SERVICES_METRICS_H
#define IGNIS_SERVICES_METRICS_H

#include <stdint.h>

#include "core/config.h"
#include "core/loop.h"
#include "edge/edge.h"
#include "exec/pool.h"
#include "store/db.h"

struct metrics;
struct lambda;

/* With IGNIS_METRICS=0 nothing is recorded (the benchmark's baseline); the API still answers. */
struct metrics *metrics_new(struct loop *loop, const struct config *cfg, struct db *db);
/* Adds the "monitoring" route, GET /metrics and /_ignis/billing. */
int metrics_register(struct metrics *m, struct edge *edge);
/* What the daemon's own figures and alarm actions need (either may stay NULL). */
void metrics_attach(struct metrics *m, struct pool *pool, struct lambda *lambda);
/* Writes what is pending to the db and frees m. Call before db_close. */
void metrics_free(struct metrics *m);

/*=== Recording (the Lambda service) ===*/

/* An invocation was handed to the pool; fn_inflight counts it (ConcurrentExecutions). */
void metrics_call_begin(struct metrics *m, const char *function, unsigned fn_inflight);
/* It ended. qualifier: as invoked ("" or NULL when unqualified, "$LATEST", a version or an
 * alias); executed: the version that ran; inv NULL: it never reached the pool (uncounted only). */
void metrics_call_end(struct metrics *m, const char *function, const char *qualifier,
                      const char *executed, const struct invocation *inv);
/* An invocation refused with 429. */
void metrics_throttle(struct metrics *m, const char *function, const char *qualifier);
/* Asynchronous invocation: an event accepted; an attempt started age_ms after it was
 * accepted; a destination (or dead-letter queue) could not be given the record. */
void metrics_async_received(struct metrics *m, const char *function, const char *qualifier);
void metrics_async_age(struct metrics *m, const char *function, const char *qualifier,
                       int64_t age_ms);
void metrics_destination_failure(struct metrics *m, const char *function, const char *qualifier);
void metrics_dead_letter_error(struct metrics *m, const char *function, const char *qualifier);

#endif
