/*
 * stream_invoke: Lambda response streaming. InvokeWithResponseStream
 * (POST /2021-11-15/functions/{name}/response-streaming-invocations) answers
 * 200 application/vnd.amazon.eventstream with one PayloadChunk event per piece
 * the runtime streams (services/http/eventstream.c) and a last InvokeComplete
 * (ErrorCode, ErrorDetails, LogResult); Function URLs with InvokeMode
 * RESPONSE_STREAM answer chunked HTTP as it comes, status and headers from the
 * prelude of awslambda.HttpResponseStream.from (services/http/stream_prelude.c).
 * Both run the invocation like a synchronous Invoke (concurrency ticket, alias
 * routing, the ARN as invoked) with the pool's on_chunk; a function that does
 * not stream answers in one piece at its end. Nothing is sent before the
 * function's first byte, so errors until then are ordinary answers. A client
 * slower than the function holds the runtime's upload back (pool_stream_pause
 * while more than STREAM_PENDING_MAX is unsent, resumed once drained); a client
 * that goes away leaves the function running to its end, its output dropped.
 * Not here: the Runtime API side of a streamed response (src/exec/pool.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "services/http/cors.h"
#include "services/http/eventstream.h"
#include "services/http/payload.h"
#include "services/http/stream_prelude.h"
#include "services/lambda/lambda_internal.h"
#include "services/metrics/metrics.h"

#define STREAM_PENDING_MAX (1024 * 1024) /* unsent bytes before the runtime is held back */
#define EVENTSTREAM_TYPE "application/vnd.amazon.eventstream"

/*=== Running a synchronous invocation ===*/

/* One invocation holding its concurrency ticket until it is done. */
struct sync_run {
    struct lambda_call *call;
    void (*done)(struct invocation *inv, void *arg);
    void *arg;
};

static void sync_run_done(struct invocation *inv, void *arg)
{
    struct sync_run *run = arg;
    lambda_call_done(run->call, inv); /* meters it, gives the ticket back */
    inv->done = NULL;
    run->done(inv, run->arg);
    free(run);
}

/* Runs inv (its payload and callbacks set) for t as a synchronous invoke; version receives
 * the version that runs ("$LATEST" or a number). done(inv, arg) is called once, later, the
 * ticket already given back; inv is then the caller's to free. 0, or -ENOMEM / -ENOENT with
 * nothing started. The caller checked concurrency. */
static int sync_run(struct lambda *l, const struct fn_target *t, struct invocation *inv,
                    char version_out[16], void (*done)(struct invocation *inv, void *arg),
                    void *arg)
{
    struct function *fn = t->fn;
    /* through an alias: its version, or the additional one by its weight */
    const char *version = t->alias ? alias_route(fn, t->alias, t->version) : t->version;
    struct pool_fn *runner = function_runner(l, fn, version);
    if (!runner)
        return -ENOENT;
    struct sync_run *run = calloc(1, sizeof(*run));
    struct lambda_call *call = run ? lambda_call_begin(l, fn) : NULL;
    if (!call) {
        free(run);
        return -ENOMEM;
    }
    if (t->qualifier[0] && !inv->invoked_arn) {
        char arn[256];
        function_arn(l, fn->name, arn, sizeof(arn));
        if (asprintf(&inv->invoked_arn, "%s:%s", arn, t->qualifier) < 0)
            inv->invoked_arn = NULL;
    }
    snprintf(version_out, 16, "%s", version ? version : "$LATEST");
    run->call = call;
    run->done = done;
    run->arg = arg;
    inv->done = sync_run_done;
    inv->done_arg = run;
    pool_invoke(runner, inv);
    return 0;
}

/* errorType and errorMessage of an error result (an error JSON); defaults when absent. */
static json_t *error_fields(const struct buf *result)
{
    json_t *doc = json_loadb(result->data ? result->data : "", result->len, 0, NULL);
    const char *type = json_string_value(json_object_get(doc, "errorType"));
    const char *msg = json_string_value(json_object_get(doc, "errorMessage"));
    json_t *out = json_pack("{s:s, s:s}", "ErrorCode", type ? type : "Unhandled", "ErrorDetails",
                            msg ? msg : (result->data ? result->data : ""));
    if (!out) /* details that are no valid UTF-8 */
        out = json_pack("{s:s}", "ErrorCode", type ? type : "Unhandled");
    json_decref(doc);
    return out;
}

/*=== A streamed answer to a client ===*/

/* What both kinds of streamed answers keep (first in their structs). */
struct stream_out {
    struct http_req *req; /* NULL once the client is gone or the answer is over */
    struct invocation *inv;
    int started; /* status and headers sent */
    int paused;  /* the runtime is held back */
};

static void out_drained(struct http_req *req, void *arg)
{
    (void)req;
    struct stream_out *o = arg;
    if (o->paused) {
        o->paused = 0;
        pool_stream_resume(o->inv);
    }
}

static void out_gone(struct http_req *req, void *arg)
{
    out_drained(req, arg); /* the function runs to its end; its output is dropped */
    ((struct stream_out *)arg)->req = NULL;
}

/* The chunked answer has started (http_reply_stream): watch the client. */
static void out_started(struct stream_out *o)
{
    o->started = 1;
    http_req_on_gone(o->req, out_gone, o);
    http_stream_on_drained(o->req, out_drained, o);
}

/* After a write: hold the runtime back while the client lags. */
static void out_wrote(struct stream_out *o)
{
    if (!o->paused && http_stream_pending(o->req) > STREAM_PENDING_MAX) {
        o->paused = 1;
        pool_stream_pause(o->inv);
    }
}

/* Ends the chunked answer (error: cut it); the request is over. */
static void out_end(struct stream_out *o, int error)
{
    http_req_on_gone(o->req, NULL, NULL);
    http_stream_on_drained(o->req, NULL, NULL);
    http_stream_end(o->req, error);
    o->req = NULL;
}

/*=== InvokeWithResponseStream ===*/

struct invoke_stream {
    struct stream_out o; /* first */
    char version[16];
};

static void is_start(struct invoke_stream *s)
{
    if (s->o.started)
        return;
    http_req_add_header(s->o.req, "x-amzn-RequestId", s->o.inv->request_id);
    http_req_add_header(s->o.req, "X-Amz-Executed-Version", s->version);
    http_reply_stream(s->o.req, 200, EVENTSTREAM_TYPE);
    out_started(&s->o);
}

/* Sends one event; 0, or -1 when the client cannot take it. */
static int is_send(struct invoke_stream *s, const char *type, const char *content_type,
                   const void *payload, size_t len)
{
    struct buf msg = BUF_INIT;
    int rc = eventstream_event(&msg, type, content_type, payload, len);
    if (rc == 0)
        rc = http_stream_write(s->o.req, msg.data, msg.len);
    buf_release(&msg);
    return rc < 0 ? -1 : 0;
}

/* PayloadChunk events of at most the event stream's payload limit. */
static int is_send_payload(struct invoke_stream *s, const char *data, size_t len)
{
    while (len > 0) {
        size_t n = len < EVENTSTREAM_MAX_PAYLOAD ? len : EVENTSTREAM_MAX_PAYLOAD;
        if (is_send(s, "PayloadChunk", "application/octet-stream", data, n) < 0)
            return -1;
        data += n;
        len -= n;
    }
    return 0;
}

static int is_chunk(struct invocation *inv, const char *data, size_t len, void *arg)
{
    (void)inv;
    struct invoke_stream *s = arg;
    if (!s->o.req)
        return -1;
    is_start(s);
    if (is_send_payload(s, data, len) < 0)
        return -1;
    out_wrote(&s->o);
    return 0;
}

static void is_done(struct invocation *inv, void *arg)
{
    struct invoke_stream *s = arg;
    if (s->o.req) {
        is_start(s);
        /* a function that did not stream answers in one piece */
        if (inv->outcome == INVOCATION_OK && !inv->streamed)
            is_send_payload(s, inv->result.data ? inv->result.data : "", inv->result.len);
        json_t *complete =
            inv->outcome == INVOCATION_OK ? json_object() : error_fields(&inv->result);
        if (inv->want_log_tail) {
            struct buf b64 = BUF_INIT;
            base64_encode(&b64, inv->log_tail.data ? inv->log_tail.data : "", inv->log_tail.len);
            json_object_set_new(complete, "LogResult", json_string(b64.data ? b64.data : ""));
            buf_release(&b64);
        }
        char *text = json_dumps(complete, JSON_COMPACT);
        json_decref(complete);
        int rc = text ? is_send(s, "InvokeComplete", "application/json", text, strlen(text)) : -1;
        free(text);
        out_end(&s->o, rc < 0);
    }
    invocation_free(inv);
    free(s);
}

void lambda_invoke_stream(struct lambda *l, struct http_req *req, const char *ref)
{
    struct fn_target t;
    struct function *fn = lambda_lookup(l, req, ref, &t);
    if (!fn)
        return;
    const char *type = http_req_header(req, "X-Amz-Invocation-Type");
    if (!type)
        type = "RequestResponse";
    int is_dry = strcmp(type, "DryRun") == 0;
    if (!is_dry && strcmp(type, "RequestResponse") != 0) {
        aws_error(req, AWS_REST_JSON, 400, "ValidationException",
                  "1 validation error detected: Value '%.64s' at 'invocationType' failed to "
                  "satisfy constraint: Member must satisfy enum value set: [RequestResponse, "
                  "DryRun]",
                  type);
        return;
    }
    struct buf ctx = BUF_INIT;
    if (lambda_invoke_checks(req, fn, &ctx) < 0)
        return;
    if (is_dry) {
        buf_release(&ctx);
        char id[37];
        aws_request_id(req, id);
        http_reply(req, 204, NULL, "", 0);
        return;
    }
    enum throttle why = concurrency_check(l, fn);
    if (why != THROTTLE_NONE) {
        buf_release(&ctx);
        metrics_throttle(l->metrics, fn->name, t.qualifier);
        concurrency_reply_throttled(req, why);
        return;
    }
    size_t len;
    const char *body = http_req_body(req, &len);
    struct invocation *inv = invocation_new();
    struct invoke_stream *s = inv ? calloc(1, sizeof(*s)) : NULL;
    if (!s || buf_append(&inv->payload, len ? body : "{}", len ? len : 2) < 0) {
        free(s);
        invocation_free(inv);
        buf_release(&ctx);
        aws_error(req, AWS_REST_JSON, 500, "ServiceException", "out of memory");
        return;
    }
    if (ctx.len)
        inv->client_context = buf_detach(&ctx, NULL);
    buf_release(&ctx);
    const char *log_type = http_req_header(req, "X-Amz-Log-Type");
    inv->want_log_tail = log_type && strcmp(log_type, "Tail") == 0;
    inv->on_chunk = is_chunk;
    inv->chunk_arg = s;
    s->o.req = req;
    s->o.inv = inv;
    int rc = sync_run(l, &t, inv, s->version, is_done, s);
    if (rc < 0) {
        free(s);
        invocation_free(inv);
        aws_error(req, AWS_REST_JSON, 500, "ServiceException",
                  rc == -ENOENT ? "cannot run this version" : "out of memory");
    }
}

/*=== Function URLs in RESPONSE_STREAM mode ===*/

struct url_stream {
    struct stream_out o; /* first */
    char version[16];
    char request_id[37];
    json_t *cors; /* the config's Cors (a reference), or NULL */
    char *origin;
    int prelude_mode; /* the runtime posted an http-integration-response */
    struct http_prelude prelude;
};

static void us_free(struct url_stream *s)
{
    http_prelude_release(&s->prelude);
    json_decref(s->cors);
    free(s->origin);
    free(s);
}

/* The headers every answer carries: the request id and the config's CORS. */
static void us_common_headers(struct url_stream *s, struct http_payload_response *r)
{
    http_payload_response_add(r, "x-amzn-RequestId", s->request_id);
    struct http_cors c;
    if (http_cors_from_json(&c, s->cors, HTTP_CORS_PASCAL_CASE) == 0)
        http_cors_response_headers(r, &c, s->origin);
}

/* Starts the chunked answer with r's status and headers. */
static void us_start(struct url_stream *s, struct http_payload_response *r)
{
    us_common_headers(s, r);
    for (size_t i = 0; i < r->nheaders; i++)
        http_req_add_header(s->o.req, r->names[i], r->values[i]);
    http_reply_stream(s->o.req, r->status, NULL);
    out_started(&s->o);
}

/* An answer in one piece (the function did not stream, failed before its first byte, or
 * streamed nothing); the request is over. */
static void us_reply(struct url_stream *s, struct http_payload_response *r)
{
    us_common_headers(s, r);
    http_payload_reply(s->o.req, r);
    s->o.req = NULL;
}

static void us_bad_gateway(struct url_stream *s)
{
    struct http_payload_response r;
    http_payload_response_init(&r);
    r.status = 502;
    http_payload_response_add(&r, "Content-Type", "application/json");
    buf_puts(&r.body, "Internal Server Error");
    us_reply(s, &r);
    http_payload_response_release(&r);
}

/* A plain stream: 200 with the type the runtime posted (application/octet-stream unless
 * the function set another). */
static void us_start_plain(struct url_stream *s)
{
    struct http_payload_response r;
    http_payload_response_init(&r);
    r.status = 200;
    http_payload_response_add(&r, "Content-Type",
                              s->o.inv->response_type[0] ? s->o.inv->response_type
                                                         : "application/octet-stream");
    us_start(s, &r);
    http_payload_response_release(&r);
}

static int us_chunk(struct invocation *inv, const char *data, size_t len, void *arg)
{
    struct url_stream *s = arg;
    if (!s->o.req)
        return -1;
    if (!s->o.started) {
        s->prelude_mode = strncasecmp(inv->response_type, HTTP_PRELUDE_CONTENT_TYPE,
                                      strlen(HTTP_PRELUDE_CONTENT_TYPE)) == 0;
        if (!s->prelude_mode) {
            us_start_plain(s);
        } else {
            size_t used;
            enum http_prelude_state st = http_prelude_feed(&s->prelude, data, len, &used);
            if (st == HTTP_PRELUDE_MORE)
                return 0;
            struct http_payload_response r;
            http_payload_response_init(&r);
            if (st == HTTP_PRELUDE_BAD || http_prelude_response(&s->prelude, &r) < 0) {
                http_payload_response_release(&r);
                us_bad_gateway(s);
                return -1;
            }
            us_start(s, &r);
            http_payload_response_release(&r);
            data += used;
            len -= used;
        }
    }
    if (len > 0 && http_stream_write(s->o.req, data, len) < 0)
        return -1;
    out_wrote(&s->o);
    return 0;
}

static void us_done(struct invocation *inv, void *arg)
{
    struct url_stream *s = arg;
    if (s->o.req && s->o.started) {
        /* a failure after the first byte: the client sees the stream cut */
        out_end(&s->o, inv->outcome != INVOCATION_OK);
    } else if (s->o.req && inv->outcome != INVOCATION_OK) {
        us_bad_gateway(s);
    } else if (s->o.req) {
        /* not started: a function that did not stream, or a stream with no body */
        struct http_payload_response r;
        http_payload_response_init(&r);
        r.status = 200;
        const char *type = inv->response_type[0] ? inv->response_type : "application/json";
        if (inv->streamed && s->prelude.json.len > 0) {
            us_bad_gateway(s); /* the prelude was cut short */
            http_payload_response_release(&r);
            goto out;
        }
        if (inv->streamed &&
            strncasecmp(type, HTTP_PRELUDE_CONTENT_TYPE, strlen(HTTP_PRELUDE_CONTENT_TYPE)) == 0)
            type = "application/octet-stream";
        http_payload_response_add(&r, "Content-Type", type);
        if (!inv->streamed)
            buf_append(&r.body, inv->result.data ? inv->result.data : "", inv->result.len);
        us_reply(s, &r);
        http_payload_response_release(&r);
    }
out:
    invocation_free(inv);
    us_free(s);
}

int lambda_url_stream(struct lambda *l, const struct fn_target *t, struct http_req *req,
                      const char *request_id, const char *event, size_t len, json_t *cors,
                      const char *origin)
{
    if (concurrency_check(l, t->fn) != THROTTLE_NONE) {
        metrics_throttle(l->metrics, t->fn->name, t->qualifier);
        return -EBUSY;
    }
    struct invocation *inv = invocation_new();
    struct url_stream *s = inv ? calloc(1, sizeof(*s)) : NULL;
    if (!s || buf_append(&inv->payload, event, len) < 0) {
        free(s);
        invocation_free(inv);
        return -ENOMEM;
    }
    http_prelude_init(&s->prelude);
    snprintf(inv->request_id, sizeof(inv->request_id), "%s", request_id);
    snprintf(s->request_id, sizeof(s->request_id), "%s", request_id);
    s->o.req = req;
    s->o.inv = inv;
    s->cors = json_incref(cors);
    s->origin = origin ? strdup(origin) : NULL;
    inv->on_chunk = us_chunk;
    inv->chunk_arg = s;
    int rc = sync_run(l, t, inv, s->version, us_done, s);
    if (rc < 0) {
        us_free(s);
        invocation_free(inv);
        return -ENOMEM;
    }
    return 0;
}
