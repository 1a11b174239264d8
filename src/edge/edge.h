/*
 * edge: the one public port. Accepts connections, authenticates each request
 * with SigV4 and routes it to the AWS-compatible service it was meant for:
 * by the credential scope's service name, else by path (Lambda's
 * /2015-03-31/...), else to the fallback route (S3's /bucket/key, which also
 * has its own signing rules: edge_authenticate_s3). A few Ignis paths (code downloads with their
 * own token) are public, and a public route may claim requests by their headers first (Function
 * URLs by Host: <url-id>.lambda-url.<region>.localhost). Services register a route; edge knows none
 * of them.
 */
#ifndef IGNIS_EDGE_EDGE_H
#define IGNIS_EDGE_EDGE_H

#include <stddef.h>

#include <sys/socket.h>

#include "core/config.h"
#include "core/loop.h"
#include "edge/aws_error.h"
#include "edge/http.h"
#include "edge/sigv4.h"

struct edge;

struct edge_auth {
    const char *access_key;
    const char *service;
    const char *region;
    /* S3 only (rest-xml routes): what a streamed body must be checked against */
    const char *payload_hash; /* x-amz-content-sha256 as sent (hex, UNSIGNED-PAYLOAD,
                                 STREAMING-...), or NULL */
    const char *signature;    /* the seed signature of aws-chunked bodies */
    const char *amz_date;     /* the request's X-Amz-Date (basic format) */
};

typedef void (*edge_handler)(struct http_req *req, const struct edge_auth *auth, void *arg);
/* Largest body this request may carry (called when headers are in). */
typedef size_t (*edge_body_cap)(struct http_req *req, void *arg);
/* Whether a route claims this request by its headers (e.g. its Host), before
 * any other rule; called when the headers are in. */
typedef int (*edge_match)(struct http_req *req, void *arg);

struct edge_route {
    const char *service;     /* SigV4 scope name, e.g. "lambda" */
    const char *path_prefix; /* recognises unsigned requests, e.g. "/2015-03-31/" (or NULL) */
    enum aws_protocol proto; /* how to word authentication errors */
    int public;              /* 1: no SigV4 (the handler checks its own token) */
    edge_match match;        /* claims requests by their headers (public routes only), or NULL */
    edge_handler handle;
    edge_body_cap body_cap; /* NULL: 1 MiB */
    int fallback;           /* takes unsigned requests no other rule routes (S3's /bucket/key) */
    void *arg;
};

struct edge *edge_new(struct loop *loop, const struct config *cfg, int listen_fd);
int edge_add_route(struct edge *edge, const struct edge_route *route);
void edge_free(struct edge *edge);

/* Checks req's SigV4 signature against this daemon's credentials, over the body's own
 * SHA-256 (a declared x-amz-content-sha256 must match it). What the edge does for every
 * signed request; public routes with their own auth (AWS_IAM Function URLs) call it too. */
enum sigv4_result edge_verify(const struct config *cfg, struct http_req *req,
                              struct sigv4_credential *cred);

/* S3's authentication (rest-xml routes; public routes of S3 call it too):
 * Authorization header, presigned URL (SigV4, or the legacy
 * AWSAccessKeyId/Expires/Signature form), payload hash from
 * x-amz-content-sha256 (checked against a body held whole; a streamed body is
 * the service's to check, see edge_auth). vhost_bucket: the bucket a
 * virtual-hosted request names by its Host (NULL for path style). Returns 0
 * with *auth filled (its strings live in cred, cfg and req), or -1 after
 * answering S3's XML error. */
int edge_authenticate_s3(const struct config *cfg, struct http_req *req, const char *vhost_bucket,
                         struct sigv4_credential *cred, struct edge_auth *auth);

/* Opens a listening TCP socket on host:port (port 0: any). Returns fd or -errno. */
/* Credentials a function is given (AWS_ACCESS_KEY_ID, ...) to call this daemon's APIs:
 * derived from the root secret and the function's name, accepted by every signed route;
 * nothing is stored, so they hold across restarts. */
struct edge_credentials {
    char access_key[21];
    char secret_key[41];
    char session_token[41];
};
void edge_function_credentials(const struct config *cfg, const char *function,
                               struct edge_credentials *out);
/* Serves a connection accepted elsewhere (a function's sandbox listener); takes fd. The
 * signature fits pool_set_endpoint. */
void edge_take_connection(int fd, const struct sockaddr *addr, socklen_t len, void *edge);
int edge_listen(const char *host, int port);
/* The port a socket is bound to. */
int edge_socket_port(int fd);

#endif
