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
/* Retires every function's instances; call before pool_free. */
void lambda_free(struct lambda *lambda);

#endif
