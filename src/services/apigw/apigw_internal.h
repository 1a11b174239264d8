/*
 * apigw_internal: what the API Gateway service's files share: the service
 * and the API records. Not for use outside src/services/apigw/.
 */
#ifndef IGNIS_SERVICES_APIGW_INTERNAL_H
#define IGNIS_SERVICES_APIGW_INTERNAL_H

#include <jansson.h>

#include "services/apigw/apigw.h"

#define APIGW_PATH_PREFIX "/_ignis/api/"  /* path form: /_ignis/api/<api-id>/<path> */
#define APIGW_ID_LEN 10                   /* API ids; routes and integrations have 7 */
#define APIGW_BODY_MAX (10 * 1024 * 1024) /* HTTP API payload limit */
#define APIGW_TIMEOUT_MS 30000            /* the integration timeout's maximum */

struct apigw {
    struct loop *loop;
    const struct config *cfg;
    struct db *db;
    struct lambda *lambda;
    /* api id -> {"api": Api, "routes": {id: Route}, "integrations": {id: Integration},
     * "stages": {name: Stage}}: documents as the API returns them (camelCase wire names) */
    json_t *apis;
};

/* Stores an API's record; 0 or -errno. (api.c) */
int apigw_save(struct apigw *gw, const char *id);

/* Control plane: every request under /v2/. (api.c) */
void apigw_handle(struct http_req *req, const struct edge_auth *auth, void *arg);

/* Data plane (gateway.c): whether a request's Host is an API's
 * (<api-id>.execute-api.<...>), and serving one (Host or path form). */
int apigw_host_match(struct http_req *req, void *arg);
void apigw_serve(struct http_req *req, const struct edge_auth *auth, void *arg);

#endif
