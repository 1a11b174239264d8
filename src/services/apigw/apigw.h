/*
 * apigw: API Gateway HTTP APIs (the apigatewayv2 rest-json API, SigV4
 * service "apigateway", paths under /v2/), HTTP protocol only: APIs (with
 * quick create), routes, AWS_PROXY integrations to Lambda functions
 * (payload format 2.0 and 1.0) and stages, persisted in the db; and the
 * APIs themselves on the edge port, by Host (<api-id>.execute-api.*) or on
 * /_ignis/api/<api-id>/..., invoking functions through the Lambda
 * service's lambda_invoke_sync.
 */
#ifndef IGNIS_SERVICES_APIGW_H
#define IGNIS_SERVICES_APIGW_H

#include "core/config.h"
#include "core/loop.h"
#include "edge/edge.h"
#include "services/lambda/lambda.h"
#include "store/db.h"

struct apigw;

/* Loads the stored APIs; NULL on failure. lambda is borrowed and must
 * outlive the service's invocations. */
struct apigw *apigw_new(struct loop *loop, const struct config *cfg, struct db *db,
                        struct lambda *lambda);
int apigw_register(struct apigw *gw, struct edge *edge);
void apigw_free(struct apigw *gw);

#endif
