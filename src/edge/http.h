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
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "edge/sigv4.h"

struct http_server;
struct http_req;

/* Called when the body is complete. */
typedef void (*http_handler)(struct http_req *req, void *arg);
/* Called once the headers are in: returns the largest body to accept. */
typedef size_t (*http_body_cap)(struct http_req *req, void *arg);

/* The process must ignore SIGPIPE (MHD writes to sockets without MSG_NOSIGNAL where it
 * can use sendfile). */
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

/*=== Streaming ===
 *
 * Request bodies too big to hold, or forwarded as they come (S3 uploads, a
 * runtime's streamed response). The body-cap callback calls
 * http_req_stream(req) instead of returning a cap that matters: the handler
 * is then called as soon as the headers are in, before any of the body. It
 * either answers at once (the body is discarded; the connection closes after
 * the answer), or calls http_req_read_body with a sink, which gets each piece
 * as it arrives and then one call with data == NULL, len == 0 at the end of
 * the body (trailers are readable from then on). A sink returning < 0 stops
 * the reading: the rest of the body is discarded and the handler answers
 * (now or later). http_req_pause_body (from the sink or any loop callback)
 * stops reading from the client until http_req_resume_body: backpressure.
 * The handler answers with any http_reply* after the end, or earlier. */
typedef int (*http_body_sink)(struct http_req *req, const char *data, size_t len, void *arg);
void http_req_stream(struct http_req *req);
int http_req_streaming(const struct http_req *req);
void http_req_read_body(struct http_req *req, http_body_sink sink, void *arg);
void http_req_pause_body(struct http_req *req);
void http_req_resume_body(struct http_req *req);
/* A chunked body's trailer (after the sink's end call), else NULL. */
const char *http_req_trailer(const struct http_req *req, const char *name);

/* Told once when the client goes away before the answer was fully sent
 * (not while a request is parked: MHD does not watch parked connections).
 * req is freed right after: drop every pointer to it in the callback. */
typedef void (*http_req_gone_cb)(struct http_req *req, void *arg);
void http_req_on_gone(struct http_req *req, http_req_gone_cb cb, void *arg);

/* Answers with a body produced over time, sent with chunked encoding as it
 * comes: status and headers (http_req_add_header before) go out now. Then
 * http_stream_write any number of times (copied; sent when the client can
 * take it) and http_stream_end once (error != 0: the connection is cut
 * without the final chunk, so the client sees a broken stream). After
 * http_stream_end, req must not be touched. */
void http_reply_stream(struct http_req *req, unsigned status, const char *content_type);
int http_stream_write(struct http_req *req, const void *data, size_t len);
void http_stream_end(struct http_req *req, int error);
/* Bytes written but not yet handed to the socket. */
size_t http_stream_pending(const struct http_req *req);
/* Called (on the loop) each time everything written so far has been sent. */
typedef void (*http_stream_drained_cb)(struct http_req *req, void *arg);
void http_stream_on_drained(struct http_req *req, http_stream_drained_cb cb, void *arg);

/* Answers with size bytes of a file from offset (Range requests); takes fd. */
void http_reply_fd_at(struct http_req *req, unsigned status, const char *content_type, int fd,
                      uint64_t offset, uint64_t size);

/* Told when a connection closes (servers fed by http_server_add_connection). */
typedef void (*http_conn_closed)(int fd, void *arg);
void http_server_on_close(struct http_server *srv, http_conn_closed cb, void *arg);

#endif
