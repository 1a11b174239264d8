/*
 * http: libmicrohttpd driven by our epoll loop (see http.h).
 *
 * MHD runs in external-epoll mode with suspend/resume allowed. The loop watches
 * MHD's epoll fd and calls MHD_run when it is readable; because a resume made
 * from our own callbacks does not wake that fd, http_reply marks the server
 * dirty and a before-sleep hook runs MHD until nothing is dirty. URLs are not
 * unescaped by MHD (SigV4 needs the raw path); query values are decoded here
 * on demand. This file owns every struct http_req and the MHD daemons.
 */
#include "edge/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"

#define DEFAULT_BODY_CAP (1024 * 1024)

struct resp_header {
    char *name, *value;
};

struct http_req {
    struct http_server *srv;
    struct MHD_Connection *conn;
    char *method;
    char *path;
    struct buf body;
    size_t body_cap;
    int too_large;
    int dispatched;
    int suspended;
    /* the answer, once given */
    int answered;
    unsigned status;
    struct MHD_Response *resp;
    /* SigV4 views, built on demand */
    struct sigv4_kv *headers, *query;
    size_t nheaders, nquery;
    int views_built;
    char **decoded; /* decoded query values handed out, freed with req */
    size_t ndecoded;
    struct resp_header *out_headers;
    size_t nout_headers;
    const void *user;
    /* a streamed body (http_req_stream) */
    int stream_body;
    http_body_sink sink;
    void *sink_arg;
    int sink_stopped; /* the sink refused: the rest is discarded */
    int body_ended;
    int pause_wanted, body_paused;
    /* a streamed answer (http_reply_stream) */
    int stream_out;
    struct buf out;
    size_t out_off; /* sent up to here */
    int out_ended, out_error;
    http_stream_drained_cb drained;
    void *drained_arg;
    http_req_gone_cb gone;
    void *gone_arg;
};

struct http_server {
    struct loop *loop;
    struct MHD_Daemon *daemon;
    int epfd;
    int dirty;
    struct http_server_opts opts;
    http_conn_closed on_close;
    void *on_close_arg;
    struct loop_timer *tick;
    /* suspended requests, for shutdown */
    struct http_req **parked;
    size_t nparked, parked_alloc;
};

static void run_daemon(struct http_server *srv)
{
    srv->dirty = 0;
    if (MHD_run(srv->daemon) != MHD_YES)
        log_warn("MHD_run failed");
}

static void on_epoll(struct loop *loop, int fd, uint32_t events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    run_daemon(arg);
}

static void on_again(struct loop *loop, void *arg)
{
    (void)loop;
    struct http_server *srv = arg;
    srv->dirty = 1;
}

/* MHD wants to run again right away: it has connections on its internal
 * ready list (a resumed connection is not back in MHD's epoll set until it
 * has been processed once more), which its epoll fd does not announce. */
static int wants_run(struct http_server *srv)
{
    MHD_UNSIGNED_LONG_LONG timeout;
    return MHD_get_timeout(srv->daemon, &timeout) == MHD_YES && timeout == 0;
}

static void before_sleep(struct loop *loop, void *arg)
{
    struct http_server *srv = arg;
    /* A resume only takes effect inside MHD_run; one run can resume more. */
    for (int i = 0; i < 16 && (srv->dirty || wants_run(srv)); i++)
        run_daemon(srv);
    if (wants_run(srv))
        loop_timer_add(loop, 0, on_again, srv); /* don't sleep: come back at once */
}

static void on_tick(struct loop *loop, void *arg)
{
    struct http_server *srv = arg;
    run_daemon(srv); /* lets MHD expire idle connections */
    srv->tick = loop_timer_add(loop, 1000, on_tick, srv);
}

/*=== Parked (suspended) requests ===*/

static void park(struct http_req *req)
{
    struct http_server *srv = req->srv;
    if (srv->nparked == srv->parked_alloc) {
        size_t n = srv->parked_alloc ? srv->parked_alloc * 2 : 64;
        struct http_req **p = realloc(srv->parked, n * sizeof(*p));
        if (!p)
            abort();
        srv->parked = p;
        srv->parked_alloc = n;
    }
    srv->parked[srv->nparked++] = req;
    req->suspended = 1;
    MHD_suspend_connection(req->conn);
}

static void unpark(struct http_req *req)
{
    struct http_server *srv = req->srv;
    for (size_t i = 0; i < srv->nparked; i++) {
        if (srv->parked[i] == req) {
            srv->parked[i] = srv->parked[--srv->nparked];
            break;
        }
    }
    req->suspended = 0;
    MHD_resume_connection(req->conn);
    srv->dirty = 1;
}

/*=== Request lifecycle ===*/

static void req_free(struct http_req *req)
{
    free(req->method);
    free(req->path);
    buf_release(&req->body);
    buf_release(&req->out);
    if (req->resp)
        MHD_destroy_response(req->resp);
    free(req->headers);
    free(req->query);
    for (size_t i = 0; i < req->ndecoded; i++)
        free(req->decoded[i]);
    free(req->decoded);
    for (size_t i = 0; i < req->nout_headers; i++) {
        free(req->out_headers[i].name);
        free(req->out_headers[i].value);
    }
    free(req->out_headers);
    free(req);
}

static enum MHD_Result queue_answer(struct http_req *req)
{
    enum MHD_Result r = MHD_queue_response(req->conn, req->status, req->resp);
    MHD_destroy_response(req->resp);
    req->resp = NULL;
    return r;
}

/* The calls after the headers of a request whose body is streamed: pieces of
 * body, then one with nothing (the end). MHD cannot queue an answer in the
 * middle of a body, so a sink that stopped early sees the rest discarded
 * and its handler's answer goes out at the end. */
static enum MHD_Result on_streamed_body(struct http_req *req, const char *data, size_t *size)
{
    if (*size > 0) {
        size_t n = *size;
        *size = 0;
        if (req->sink && !req->sink_stopped && !req->answered &&
            req->sink(req, data, n, req->sink_arg) < 0)
            req->sink_stopped = 1;
        if (req->pause_wanted && !req->answered && !req->sink_stopped) {
            req->pause_wanted = 0;
            req->body_paused = 1;
            park(req);
        }
        return MHD_YES;
    }
    if (!req->body_ended) {
        req->body_ended = 1;
        if (req->sink && !req->sink_stopped && !req->answered)
            req->sink(req, NULL, 0, req->sink_arg);
    }
    if (req->answered)
        return queue_answer(req);
    if (!req->suspended)
        park(req); /* the handler answers later */
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct http_server *srv = cls;
    struct http_req *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        req->srv = srv;
        req->conn = conn;
        req->method = strdup(method);
        req->path = strdup(url);
        if (!req->method || !req->path) {
            req_free(req);
            return MHD_NO;
        }
        req->body_cap =
            srv->opts.body_cap ? srv->opts.body_cap(req, srv->opts.arg) : DEFAULT_BODY_CAP;
        *con_cls = req;
        if (!req->stream_body)
            return MHD_YES;
        /* Streamed body: the handler sees the headers first. An answer now
         * makes MHD skip the body and close after answering. */
        req->dispatched = 1;
        srv->opts.handler(req, srv->opts.arg);
        return req->answered ? queue_answer(req) : MHD_YES;
    }
    if (req->stream_body)
        return on_streamed_body(req, upload_data, upload_data_size);
    if (*upload_data_size > 0) {
        if (!req->too_large) {
            if (req->body.len + *upload_data_size > req->body_cap) {
                req->too_large = 1;
                buf_release(&req->body);
            } else if (buf_append(&req->body, upload_data, *upload_data_size) < 0) {
                return MHD_NO;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->answered)
        return queue_answer(req);
    if (req->dispatched)
        return MHD_YES; /* spurious call while parked */
    req->dispatched = 1;
    srv->opts.handler(req, srv->opts.arg);
    if (req->answered)
        return queue_answer(req);
    park(req);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)conn;
    (void)code;
    struct http_req *req = *con_cls;
    if (req) {
        if (req->gone && code != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            req->gone(req, req->gone_arg);
        if (req->suspended) {
            /* MHD is tearing the connection down under a parked request
             * (daemon shutdown); nobody will answer it now. */
            struct http_server *srv = req->srv;
            for (size_t i = 0; i < srv->nparked; i++)
                if (srv->parked[i] == req)
                    srv->parked[i] = srv->parked[--srv->nparked];
        }
        req_free(req);
    }
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)socket_context;
    struct http_server *srv = cls;
    if (code != MHD_CONNECTION_NOTIFY_CLOSED || !srv->on_close)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        srv->on_close(ci->connect_fd, srv->on_close_arg);
}

static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

/*=== Answers ===*/

static void answer(struct http_req *req, unsigned status, const char *content_type,
                   struct MHD_Response *resp)
{
    if (!resp)
        abort(); /* out of memory building a response: nothing sane to do */
    if (content_type)
        MHD_add_response_header(resp, "Content-Type", content_type);
    for (size_t i = 0; i < req->nout_headers; i++)
        MHD_add_response_header(resp, req->out_headers[i].name, req->out_headers[i].value);
    req->status = status;
    req->resp = resp;
    req->answered = 1;
    req->body_paused = 0;
    if (req->suspended)
        unpark(req);
}

void http_reply(struct http_req *req, unsigned status, const char *content_type, const void *body,
                size_t len)
{
    answer(req, status, content_type,
           MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY));
}

void http_reply_take(struct http_req *req, unsigned status, const char *content_type, char *body,
                     size_t len)
{
    answer(req, status, content_type,
           MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE));
}

void http_reply_fd(struct http_req *req, unsigned status, const char *content_type, int fd,
                   size_t size)
{
    answer(req, status, content_type, MHD_create_response_from_fd(size, fd));
}

void http_reply_fd_at(struct http_req *req, unsigned status, const char *content_type, int fd,
                      uint64_t offset, uint64_t size)
{
    answer(req, status, content_type, MHD_create_response_from_fd_at_offset64(size, fd, offset));
}

void http_req_set_user(struct http_req *req, const void *user)
{
    req->user = user;
}

const void *http_req_user(const struct http_req *req)
{
    return req->user;
}

int http_req_add_header(struct http_req *req, const char *name, const char *value)
{
    struct resp_header *h =
        realloc(req->out_headers, (req->nout_headers + 1) * sizeof(*req->out_headers));
    if (!h)
        return -ENOMEM;
    req->out_headers = h;
    h[req->nout_headers].name = strdup(name);
    h[req->nout_headers].value = strdup(value);
    req->nout_headers++;
    return 0;
}

/*=== Streaming ===*/

void http_req_stream(struct http_req *req)
{
    req->stream_body = 1;
}

int http_req_streaming(const struct http_req *req)
{
    return req->stream_body;
}

void http_req_read_body(struct http_req *req, http_body_sink sink, void *arg)
{
    req->sink = sink;
    req->sink_arg = arg;
}

/* MHD lets a connection be suspended only from its own callbacks: a pause
 * asked from elsewhere takes effect at the next piece of body. */
void http_req_pause_body(struct http_req *req)
{
    if (!req->body_ended && !req->body_paused)
        req->pause_wanted = 1;
}

void http_req_resume_body(struct http_req *req)
{
    req->pause_wanted = 0;
    if (req->body_paused) {
        req->body_paused = 0;
        unpark(req);
    }
}

const char *http_req_trailer(const struct http_req *req, const char *name)
{
    return req->body_ended ? MHD_lookup_connection_value(req->conn, MHD_FOOTER_KIND, name) : NULL;
}

void http_req_on_gone(struct http_req *req, http_req_gone_cb cb, void *arg)
{
    req->gone = cb;
    req->gone_arg = arg;
}

/* MHD asks for more of a streamed answer when the socket can take it; with
 * nothing to give, the connection is suspended until a write or the end. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *dst, size_t max)
{
    (void)pos;
    struct http_req *req = cls;
    size_t avail = req->out.len - req->out_off;
    if (avail > 0) {
        size_t n = avail < max ? avail : max;
        memcpy(dst, req->out.data + req->out_off, n);
        req->out_off += n;
        if (req->out_off == req->out.len) {
            buf_reset(&req->out);
            req->out_off = 0;
            if (req->drained && !req->out_ended)
                req->drained(req, req->drained_arg);
        } else if (req->out_off > 256 * 1024 && req->out_off > req->out.len / 2) {
            buf_consume(&req->out, req->out_off);
            req->out_off = 0;
        }
        return (ssize_t)n;
    }
    if (req->out_ended)
        return req->out_error ? MHD_CONTENT_READER_END_WITH_ERROR
                              : MHD_CONTENT_READER_END_OF_STREAM;
    park(req);
    return 0;
}

void http_reply_stream(struct http_req *req, unsigned status, const char *content_type)
{
    req->stream_out = 1;
    answer(
        req, status, content_type,
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_reader, req, NULL));
}

int http_stream_write(struct http_req *req, const void *data, size_t len)
{
    if (!req->stream_out || req->out_ended)
        return -EINVAL;
    if (len == 0)
        return 0;
    if (buf_append(&req->out, data, len) < 0)
        return -ENOMEM;
    if (req->suspended)
        unpark(req);
    return 0;
}

void http_stream_end(struct http_req *req, int error)
{
    if (!req->stream_out || req->out_ended)
        return;
    req->out_ended = 1;
    req->out_error = error != 0;
    if (req->suspended)
        unpark(req);
}

size_t http_stream_pending(const struct http_req *req)
{
    return req->out.len - req->out_off;
}

void http_stream_on_drained(struct http_req *req, http_stream_drained_cb cb, void *arg)
{
    req->drained = cb;
    req->drained_arg = arg;
}

/*=== Accessors ===*/

const char *http_req_method(const struct http_req *req)
{
    return req->method;
}

const char *http_req_path(const struct http_req *req)
{
    return req->path;
}

const char *http_req_header(const struct http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_req_query(struct http_req *req, const char *name)
{
    const char *raw = NULL;
    size_t raw_len = 0;
    /* the _n form tells "?k" (present, no value) from an absent k */
    if (MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &raw,
                                      &raw_len) != MHD_YES)
        return NULL; /* MHD keeps the name raw too: an encoded spelling is not found */
    if (!raw)
        return "";
    char *copy = strdup(raw);
    char **d = realloc(req->decoded, (req->ndecoded + 1) * sizeof(*d));
    if (!copy || !d) {
        free(copy);
        if (d)
            req->decoded = d;
        return NULL;
    }
    req->decoded = d;
    d[req->ndecoded++] = copy;
    for (char *p = copy; *p; p++)
        if (*p == '+')
            *p = ' ';
    if (percent_decode(copy, strlen(copy)) < 0)
        return NULL;
    return copy;
}

const char *http_req_body(const struct http_req *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return req->body.data ? req->body.data : "";
}

int http_req_body_too_large(const struct http_req *req)
{
    return req->too_large;
}

int http_req_fd(const struct http_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

struct kv_collect {
    struct sigv4_kv *arr;
    size_t n, alloc;
};

static enum MHD_Result collect_kv(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    struct kv_collect *c = cls;
    if (c->n == c->alloc) {
        size_t n = c->alloc ? c->alloc * 2 : 16;
        struct sigv4_kv *a = realloc(c->arr, n * sizeof(*a));
        if (!a)
            return MHD_NO;
        c->arr = a;
        c->alloc = n;
    }
    c->arr[c->n].name = key;
    c->arr[c->n].value = value;
    c->n++;
    return MHD_YES;
}

void http_req_sigv4(struct http_req *req, struct sigv4_request *out)
{
    if (!req->views_built) {
        struct kv_collect h = {0}, q = {0};
        MHD_get_connection_values(req->conn, MHD_HEADER_KIND, collect_kv, &h);
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_kv, &q);
        req->headers = h.arr;
        req->nheaders = h.n;
        req->query = q.arr;
        req->nquery = q.n;
        req->views_built = 1;
    }
    memset(out, 0, sizeof(*out));
    out->method = req->method;
    out->path = req->path;
    out->headers = req->headers;
    out->nheaders = req->nheaders;
    out->query = req->query;
    out->nquery = req->nquery;
}

/*=== Server lifecycle ===*/

struct http_server *http_server_new(struct loop *loop, const struct http_server_opts *opts)
{
    struct http_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
    srv->loop = loop;
    srv->opts = *opts;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (opts->listen_fd < 0)
        flags |= MHD_USE_NO_LISTEN_SOCKET;
    struct MHD_OptionItem options[] = {
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, srv},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)no_unescape, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 20000, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)opts->idle_timeout_s, NULL},
        /* MHD zeroes this pool on every request: keep it at the 32 KB default,
         * plenty for AWS headers (it also caps their size). */
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 32 * 1024, NULL},
        /* SIGPIPE is ignored by the process (serve.c), so MHD may use sendfile() for file
         * answers (S3 GETs: 2x the throughput of its pread/send copy) */
        {MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, NULL},
        {opts->listen_fd >= 0 ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_END, opts->listen_fd, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY, options,
                                   MHD_OPTION_END);
    if (!srv->daemon) {
        log_error("MHD_start_daemon failed");
        free(srv);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    srv->epfd = di ? di->epoll_fd : -1;
    if (srv->epfd < 0 || loop_add_fd(loop, srv->epfd, EPOLLIN, on_epoll, srv) < 0 ||
        loop_add_before_sleep(loop, before_sleep, srv) < 0) {
        log_error("cannot watch MHD's epoll fd");
        MHD_stop_daemon(srv->daemon);
        free(srv);
        return NULL;
    }
    srv->tick = loop_timer_add(loop, 1000, on_tick, srv);
    return srv;
}

void http_server_on_close(struct http_server *srv, http_conn_closed cb, void *arg)
{
    srv->on_close = cb;
    srv->on_close_arg = arg;
}

int http_server_add_connection(struct http_server *srv, int fd, const struct sockaddr *addr,
                               socklen_t len)
{
    if (MHD_add_connection(srv->daemon, fd, addr, len) != MHD_YES)
        return -EIO; /* MHD closed the fd */
    srv->dirty = 1;
    return 0;
}

void http_server_free(struct http_server *srv)
{
    if (!srv)
        return;
    while (srv->nparked > 0) {
        struct http_req *req = srv->parked[srv->nparked - 1];
        if (req->stream_out) {
            http_stream_end(req, 1); /* cut: the client sees a broken stream */
            continue;
        }
        static const char body[] = "{\"Type\":\"Service\",\"message\":\"Ignis is shutting down\"}";
        http_req_add_header(req, "x-amzn-ErrorType", "ServiceException");
        http_reply(req, 503, "application/json", body, sizeof(body) - 1);
    }
    for (int i = 0; i < 4; i++)
        run_daemon(srv);
    loop_del_fd(srv->loop, srv->epfd);
    loop_timer_cancel(srv->loop, srv->tick);
    MHD_stop_daemon(srv->daemon);
    free(srv->parked);
    free(srv);
}
