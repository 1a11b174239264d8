/*
 * lambda: the Lambda control plane and Invoke (rest-json, 2015-03-31), as
 * the aws CLI v2 and boto3 call it. Owns the function registry (in memory,
 * persisted in the db), validation, the FunctionConfiguration documents, the
 * translation of a function into what the pool runs, concurrency limits, and
 * the durable queue of asynchronous invocations (stored in the db).
 */
#ifndef IGNIS_SERVICES_LAMBDA_H
#define IGNIS_SERVICES_LAMBDA_H

#include "core/config.h"
#include "core/loop.h"
#include "core/workq.h"
#include "edge/edge.h"
#include "exec/pool.h"
#include "store/db.h"

struct lambda;

struct lambda *lambda_new(struct loop *loop, const struct config *cfg, struct db *db,
                          struct pool *pool, struct workq *wq);
int lambda_register(struct lambda *lambda, struct edge *edge);
/*
 * Synchronous invocations for other services' HTTP front doors (API
 * Gateway): invokes ref (a function name, ARN or partial ARN, maybe
 * qualified with a version or alias) with payload (copied), as Invoke
 * would (alias routing, concurrency accounting), under request_id (a
 * UUID; NULL: a fresh one; runtimes put it in URLs). done
 * gets ok = 0 for a function error or timeout, and the result (borrowed for
 * the call). Returns 0 (done will be called once, later), -ENOENT (no such
 * function, version or alias), -EBUSY (throttled) or -ENOMEM.
 */
typedef void (*lambda_sync_done)(int ok, const char *result, size_t len, void *arg);
int lambda_invoke_sync(struct lambda *l, const char *ref, const char *request_id,
                       const char *payload, size_t len, lambda_sync_done done, void *arg);
/* Queues an asynchronous (Event) invocation of ref (name or ARN, maybe qualified) with payload,
 * durably, exactly as Invoke with InvocationType=Event does (retries, destinations, event age).
 * Returns 0 when stored, -ENOENT for no such function/version/alias, other -errno on failure. */
int lambda_invoke_async(struct lambda *l, const char *ref, const char *payload, size_t len);
/* Whether ref (name or ARN, maybe qualified) names an existing function, version or alias. */
int lambda_function_exists(struct lambda *l, const char *ref);
/* Where invocations are metered (src/services/metrics); NULL: nowhere. */
struct metrics;
void lambda_set_metrics(struct lambda *l, struct metrics *m);
/* Asynchronous events accepted and not yet finished (Prometheus). */
unsigned lambda_async_depth(struct lambda *l);
/* Retires every function's instances; call before pool_free. */
void lambda_free(struct lambda *lambda);

#endif
