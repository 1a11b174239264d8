/*
 * invoke: Lambda's Invoke operation (RequestResponse, Event, DryRun): checks
 * the request as Lambda does, hands the event to the pool and turns the
 * outcome into Invoke's answer (X-Amz-Function-Error, X-Amz-Log-Result,
 * X-Amz-Executed-Version). Through an alias it runs the version the alias's
 * routing picks; the function sees the ARN as invoked, alias included. A
 * synchronous invoke over the function's or the account's concurrency is
 * answered 429 (concurrency.c); an Event is stored and queued (async.c) and
 * answered 202 once stored. The synchronous path is the warm path: no disk,
 * no db, no allocation beyond the invocation and its concurrency ticket.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "services/lambda/lambda_internal.h"
#include "services/metrics/metrics.h"

#define CLIENT_CONTEXT_MAX 3583

static void sync_done(struct invocation *inv, void *arg)
{
    struct lambda_call *call = arg;
    struct http_req *req = call->req;
    lambda_call_done(call, inv);
    http_req_add_header(req, "x-amzn-RequestId", inv->request_id);
    http_req_add_header(req, "X-Amz-Executed-Version", inv->executed_version);
    if (inv->outcome == INVOCATION_FUNCTION_ERROR)
        http_req_add_header(req, "X-Amz-Function-Error", "Unhandled");
    if (inv->want_log_tail) {
        struct buf b64 = BUF_INIT;
        base64_encode(&b64, inv->log_tail.data ? inv->log_tail.data : "", inv->log_tail.len);
        http_req_add_header(req, "X-Amz-Log-Result", b64.data ? b64.data : "");
        buf_release(&b64);
    }
    size_t len;
    char *body = buf_detach(&inv->result, &len);
    http_reply_take(req, 200, "application/json", body, len);
    invocation_free(inv);
}

int lambda_invoke_checks(struct http_req *req, struct function *fn, struct buf *ctx)
{
    const char *log_type = http_req_header(req, "X-Amz-Log-Type");
    if (log_type && strcmp(log_type, "None") != 0 && strcmp(log_type, "Tail") != 0) {
        aws_error(req, AWS_REST_JSON, 400, "ValidationException",
                  "1 validation error detected: Value '%.64s' at 'logType' failed to satisfy "
                  "constraint: Member must satisfy enum value set: [None, Tail]",
                  log_type);
        return -1;
    }
    if (fn->updating && !json_object_get(fn->config, "CodeSha256")) {
        aws_error(req, AWS_REST_JSON, 409, "ResourceConflictException",
                  "The operation cannot be performed at this time. The function is currently in "
                  "the following state: Pending");
        return -1;
    }
    size_t len;
    const char *body = http_req_body(req, &len);
    if (len > 0) {
        json_error_t jerr;
        json_t *doc = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!doc) {
            aws_error(req, AWS_REST_JSON, 400, "InvalidRequestContentException",
                      "Could not parse request body into json: Could not parse payload into "
                      "json: %s",
                      jerr.text);
            return -1;
        }
        json_decref(doc);
    }
    const char *cc = http_req_header(req, "X-Amz-Client-Context");
    if (cc) {
        json_t *doc = NULL;
        if (strlen(cc) > CLIENT_CONTEXT_MAX || base64_decode(ctx, cc, strlen(cc)) < 0 ||
            !(doc = json_loadb(ctx->data ? ctx->data : "", ctx->len, 0, NULL)) ||
            !json_is_object(doc)) {
            json_decref(doc);
            buf_release(ctx);
            aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                      "Client context must be a valid Base64-encoded JSON object.");
            return -1;
        }
        json_decref(doc);
    }
    return 0;
}

void lambda_invoke(struct lambda *l, struct http_req *req, const char *ref)
{
    struct fn_target t;
    struct function *fn = lambda_lookup(l, req, ref, &t);
    if (!fn)
        return;
    const char *qual = t.qualifier;
    const char *type = http_req_header(req, "X-Amz-Invocation-Type");
    if (!type)
        type = "RequestResponse";
    int is_event = strcmp(type, "Event") == 0, is_dry = strcmp(type, "DryRun") == 0;
    if (!is_event && !is_dry && strcmp(type, "RequestResponse") != 0) {
        aws_error(req, AWS_REST_JSON, 400, "ValidationException",
                  "1 validation error detected: Value '%.64s' at 'invocationType' failed to "
                  "satisfy constraint: Member must satisfy enum value set: [Event, "
                  "RequestResponse, DryRun]",
                  type);
        return;
    }
    size_t len;
    const char *body = http_req_body(req, &len);
    if (is_event && len > LAMBDA_ASYNC_PAYLOAD_MAX) {
        aws_error(req, AWS_REST_JSON, 413, "RequestTooLargeException",
                  "Request must be smaller than %d bytes for the InvokeFunction operation",
                  LAMBDA_ASYNC_PAYLOAD_MAX);
        return;
    }
    struct buf ctx = BUF_INIT;
    if (lambda_invoke_checks(req, fn, &ctx) < 0)
        return;
    const char *log_type = http_req_header(req, "X-Amz-Log-Type");
    if (is_dry) {
        buf_release(&ctx);
        char id[37];
        aws_request_id(req, id);
        http_reply(req, 204, NULL, "", 0);
        return;
    }
    if (is_event) {
        /* stored before it is acknowledged: it survives a crash from now on */
        char id[37];
        int rc = async_enqueue(l, fn->name, qual, body, len, ctx.data, id);
        buf_release(&ctx);
        if (rc < 0) {
            aws_error(req, AWS_REST_JSON, 500, "ServiceException", "could not store the event: %s",
                      strerror(-rc));
            return;
        }
        http_req_add_header(req, "x-amzn-RequestId", id);
        http_reply(req, 202, NULL, "", 0);
        return;
    }
    enum throttle why = concurrency_check(l, fn);
    if (why != THROTTLE_NONE) {
        buf_release(&ctx);
        metrics_throttle(l->metrics, fn->name, qual);
        concurrency_reply_throttled(req, why);
        return;
    }
    struct invocation *inv = invocation_new();
    if (len > 0)
        buf_append(&inv->payload, body, len);
    else
        buf_puts(&inv->payload, "{}");
    if (ctx.len)
        inv->client_context = buf_detach(&ctx, NULL);
    if (qual[0]) {
        char arn[256];
        function_arn(l, fn->name, arn, sizeof(arn));
        if (asprintf(&inv->invoked_arn, "%s:%s", arn, qual) < 0)
            inv->invoked_arn = NULL;
    }
    buf_release(&ctx);
    /* through an alias: its version, or the additional one by its weight */
    const char *version = t.alias ? alias_route(fn, t.alias, t.version) : t.version;
    struct pool_fn *run = function_runner(l, fn, version);
    if (!run) {
        invocation_free(inv);
        aws_error(req, AWS_REST_JSON, 500, "ServiceException", "cannot run this version");
        return;
    }
    struct lambda_call *call = lambda_call_begin(l, fn);
    if (!call) {
        invocation_free(inv);
        aws_error(req, AWS_REST_JSON, 500, "ServiceException", "out of memory");
        return;
    }
    call->req = req;
    inv->want_log_tail = log_type && strcmp(log_type, "Tail") == 0;
    inv->done = sync_done;
    inv->done_arg = call;
    pool_invoke(run, inv);
}
