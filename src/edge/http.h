/*
 * http: the glue between libmicrohttpd and the rest of Ignis.
 *
 * An http_server is one MHD daemon driven by our event loop (MHD's epoll fd is
 * watched by the loop; MHD never runs a thread). Each request is collected
 * whole (body capped per request through the headers callback) and handed to
 * the server's handler as a struct http_req. The handler answers with
 * http_reply now, or later from any loop callback: a request without an
 * answer when the handler returns is suspended (long-poll) and resumed by
 * http_reply. The glue owns every http_req; it is freed once MHD has sent
 * the answer, so a handler must not keep the pointer after replying.
 */
#ifndef IGNIS_EDGE_HTTP_H
#define IGNIS_EDGE_HTTP_H

#include <stddef.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "edge/sigv4.h"

struct http_server;
struct http_req;

/* Called when the body is complete. */
typedef void (*http_handler)(struct http_req *req, void *arg);
/* Called once the headers are in: returns the largest body to accept. */
typedef size_t (*http_body_cap)(struct http_req *req, void *arg);

struct http_server_opts {
    int listen_fd; /* a bound, listening socket, or -1 for added connections only */
    http_handler handler;
    http_body_cap body_cap; /* NULL: 1 MiB */
    void *arg;
    unsigned idle_timeout_s; /* 0: none */
};

struct http_server *http_server_new(struct loop *loop, const struct http_server_opts *opts);
/* Answers every suspended request with 503, then stops the daemon. */
void http_server_free(struct http_server *srv);
/* Hands an accepted connection to the server (it takes the fd). */
int http_server_add_connection(struct http_server *srv, int fd, const struct sockaddr *addr,
                               socklen_t len);

/* Request accessors: valid until the request is answered. */
const char *http_req_method(const struct http_req *req);
const char *http_req_path(const struct http_req *req); /* raw, still percent-encoded */
const char *http_req_header(const struct http_req *req, const char *name);
/* Query parameter, percent-decoded (NULL when absent, "" for "?k"). */
const char *http_req_query(struct http_req *req, const char *name);
const char *http_req_body(const struct http_req *req, size_t *len);
int http_req_body_too_large(const struct http_req *req);
int http_req_fd(const struct http_req *req); /* the connection's socket */
/* Raw headers and query pairs, for SigV4. The arrays live as long as req. */
void http_req_sigv4(struct http_req *req, struct sigv4_request *out);

/* One pointer of the handler's own, kept with the request (e.g. what the
 * body-cap callback decided, for the handler). */
void http_req_set_user(struct http_req *req, const void *user);
const void *http_req_user(const struct http_req *req);

/* Adds a response header (copied). */
int http_req_add_header(struct http_req *req, const char *name, const char *value);
/* Answers req: copies body. After this, req must not be touched. */
void http_reply(struct http_req *req, unsigned status, const char *content_type, const void *body,
                size_t len);
/* Same, taking ownership of a malloc'd body. */
void http_reply_take(struct http_req *req, unsigned status, const char *content_type, char *body,
                     size_t len);
/* Answers with a file's content, streamed from fd (taken) by MHD. */
void http_reply_fd(struct http_req *req, unsigned status, const char *content_type, int fd,
                   size_t size);

/* Told when a connection closes (servers fed by http_server_add_connection). */
typedef void (*http_conn_closed)(int fd, void *arg);
void http_server_on_close(struct http_server *srv, http_conn_closed cb, void *arg);

#endif
