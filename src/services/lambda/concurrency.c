/*
 * concurrency: Lambda's concurrency limits. Owns the count of invocations in
 * flight (per function, and in the account's unreserved pool: every function
 * without a reservation shares ConcurrentExecutions minus the reservations),
 * the throttling decision Invoke and the asynchronous dispatcher ask for
 * (429 TooManyRequestsException with Lambda's Reason), and the operations
 * PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency
 * and GetAccountSettings. An invocation is counted from the moment it is
 * handed to the pool until its done callback (struct lambda_call); the
 * account's limit is IGNIS_ACCOUNT_CONCURRENCY (default 1000, Lambda's).
 * Provisioned concurrency counts as Lambda counts it: inside a function's
 * reservation, or else carved out of the unreserved pool (so
 * GetAccountSettings' UnreservedConcurrentExecutions shrinks by it), and a
 * function without a reservation runs that many invocations outside the
 * shared pool. Not here: waiting throttled events (async.c), the pool's
 * instance cap (function_runner passes a reservation as max_instances), the
 * provisioned configs themselves (provisioned.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "services/lambda/lambda_internal.h"
#include "services/metrics/metrics.h"

/* Lambda's quotas, in bytes (GetAccountSettings). */
#define TOTAL_CODE_SIZE_LIMIT 80530636800LL /* 75 GB */
#define CODE_SIZE_UNZIPPED 262144000LL
#define CODE_SIZE_ZIPPED 52428800LL

void concurrency_init(struct lambda *l)
{
    l->account_limit = LAMBDA_ACCOUNT_CONCURRENCY;
    const char *v = getenv("IGNIS_ACCOUNT_CONCURRENCY");
    if (v && *v) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || n < 1 || n > 1000000)
            log_warn("ignoring IGNIS_ACCOUNT_CONCURRENCY=%s (want 1..1000000)", v);
        else
            l->account_limit = (unsigned)n;
    }
}

/* What reservations must leave unreserved: 100, or the whole limit of an
 * account that has less (Lambda: "minimum value of [10]" on such accounts). */
static unsigned min_unreserved(const struct lambda *l)
{
    return l->account_limit < LAMBDA_MIN_UNRESERVED ? l->account_limit : LAMBDA_MIN_UNRESERVED;
}

/* What the account has left for functions without a reservation: the limit
 * less every reservation and the provisioned concurrency of the functions
 * without one. */
static unsigned unreserved_pool(const struct lambda *l)
{
    unsigned long long claimed = (unsigned long long)l->reserved_total + l->provisioned_unreserved;
    return l->account_limit > claimed ? l->account_limit - (unsigned)claimed : 0;
}

/* What fn takes from the account: its reservation, or its provisioned concurrency. */
static unsigned claim(const struct function *fn)
{
    return fn->reserved_set ? fn->reserved : fn->provisioned_total;
}

void concurrency_account(struct lambda *l, struct function *fn, int joining)
{
    unsigned *total = fn->reserved_set ? &l->reserved_total : &l->provisioned_unreserved;
    if (joining)
        *total += claim(fn);
    else
        *total -= claim(fn);
}

enum throttle concurrency_check(struct lambda *l, struct function *fn)
{
    if (fn->reserved_set)
        return fn->inflight >= fn->reserved ? THROTTLE_RESERVED : THROTTLE_NONE;
    if (fn->inflight < fn->provisioned_total)
        return THROTTLE_NONE; /* its own provisioned concurrency */
    return l->unreserved_inflight >= unreserved_pool(l) ? THROTTLE_ACCOUNT : THROTTLE_NONE;
}

int concurrency_check_provisioned(struct lambda *l, struct function *fn, unsigned old, unsigned n,
                                  struct param_error *err)
{
    unsigned long long others = fn->provisioned_total - old;
    if (fn->reserved_set) {
        if (others + n > fn->reserved)
            return param_fail(err, 400, "InvalidParameterValueException",
                              "Requested Provisioned Concurrency should not be greater than the "
                              "reservedConcurrentExecution for function");
        return 0;
    }
    /* the unreserved pool as it is without this config */
    unsigned long long pool = (unsigned long long)unreserved_pool(l) + old;
    if (n > pool)
        return param_fail(err, 400, "InvalidParameterValueException",
                          "Specified ConcurrentExecutions for function is greater than account's "
                          "unreserved concurrency [%llu].",
                          pool);
    if (pool - n < min_unreserved(l))
        return param_fail(err, 400, "InvalidParameterValueException",
                          "Specified ConcurrentExecutions for function decreases account's "
                          "UnreservedConcurrentExecution below its minimum value of [%u].",
                          min_unreserved(l));
    return 0;
}

void concurrency_set_provisioned(struct lambda *l, struct function *fn, unsigned total)
{
    concurrency_account(l, fn, 0);
    fn->provisioned_total = total;
    concurrency_account(l, fn, 1);
    async_kick(l); /* a change of the pool may let waiting events run */
}

void concurrency_reply_throttled(struct http_req *req, enum throttle why)
{
    json_t *fields =
        json_pack("{s:s}", "Reason",
                  why == THROTTLE_RESERVED ? "ReservedFunctionConcurrentInvocationLimitExceeded"
                                           : "ConcurrentInvocationLimitExceeded");
    aws_error_fields(req, AWS_REST_JSON, 429, "TooManyRequestsException", fields, "Rate Exceeded.");
    json_decref(fields);
}

/*=== Invocations in flight ===*/

struct lambda_call *lambda_call_begin(struct lambda *l, struct function *fn)
{
    struct lambda_call *call = calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    call->l = l;
    call->fn = fn;
    fn->refs++;
    /* beyond its provisioned concurrency a function without a reservation
     * runs on the shared pool */
    call->unreserved = !fn->reserved_set && fn->inflight >= fn->provisioned_total;
    fn->inflight++;
    if (call->unreserved)
        l->unreserved_inflight++;
    metrics_call_begin(l->metrics, fn->name, fn->inflight);
    call->next = l->calls;
    if (l->calls)
        l->calls->prev = call;
    l->calls = call;
    return call;
}

static void unlink_call(struct lambda *l, struct lambda_call *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        l->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
}

struct lambda *lambda_call_end(struct lambda_call *call)
{
    struct lambda *l = call->l;
    if (l) {
        if (!call->metered) /* never ran: only uncounted */
            metrics_call_end(l->metrics, call->fn->name, NULL, NULL, NULL);
        unlink_call(l, call);
        call->fn->inflight--;
        if (call->unreserved)
            l->unreserved_inflight--;
        function_unref(call->fn);
        async_kick(l); /* a slot is free: a waiting event may take it */
    }
    free(call);
    return l;
}

struct lambda *lambda_call_done(struct lambda_call *call, const struct invocation *inv)
{
    if (call->l) {
        /* the qualifier as invoked is the invoked ARN's, after "function:<name>:" */
        const char *q = inv->invoked_arn ? strstr(inv->invoked_arn, ":function:") : NULL;
        q = q ? strchr(q + 10, ':') : NULL;
        metrics_call_end(call->l->metrics, call->fn->name, q ? q + 1 : NULL, inv->executed_version,
                         inv);
        call->metered = 1;
    }
    return lambda_call_end(call);
}

void lambda_set_metrics(struct lambda *l, struct metrics *m)
{
    l->metrics = m;
}

void lambda_calls_detach(struct lambda *l)
{
    while (l->calls) {
        struct lambda_call *call = l->calls;
        unlink_call(l, call);
        call->fn->inflight--;
        function_unref(call->fn);
        call->fn = NULL;
        call->ev = NULL;
        call->l = NULL;
    }
    l->unreserved_inflight = 0;
}

/*=== Operations ===*/

static void reply_concurrency(struct http_req *req, unsigned status, struct function *fn)
{
    json_t *doc = json_object();
    if (fn->reserved_set)
        json_object_set_new(doc, "ReservedConcurrentExecutions", json_integer(fn->reserved));
    aws_reply_json(req, status, doc);
}

/* Applies a new reservation (set 0: none), saves the record, and retires
 * the function's instances so the pool's cap follows. 0 or -1 answered. */
static int set_reservation(struct lambda *l, struct http_req *req, struct function *fn, int set,
                           unsigned value)
{
    int old_set = fn->reserved_set;
    unsigned old = fn->reserved;
    concurrency_account(l, fn, 0);
    fn->reserved_set = set;
    fn->reserved = set ? value : 0;
    concurrency_account(l, fn, 1);
    if (function_save(l, fn) < 0) {
        concurrency_account(l, fn, 0);
        fn->reserved_set = old_set;
        fn->reserved = old;
        concurrency_account(l, fn, 1);
        aws_error(req, AWS_REST_JSON, 500, "ServiceException", "could not store the function");
        return -1;
    }
    if (old_set != set || old != fn->reserved)
        function_reset_runners(l, fn); /* new instances get the new cap */
    async_kick(l);
    return 0;
}

static void put_concurrency(struct lambda *l, struct http_req *req, const char *ref)
{
    json_t *body = lambda_parse_body(req);
    if (!body)
        return;
    struct param_error err;
    json_int_t n = 0;
    int rc = param_int(body, "ReservedConcurrentExecutions", "reservedConcurrentExecutions", 0,
                       2147483647L, &n, &err);
    json_decref(body);
    if (rc == 1)
        param_fail(&err, 400, "ValidationException",
                   "1 validation error detected: Value null at 'reservedConcurrentExecutions' "
                   "failed to satisfy constraint: Member must not be null");
    if (rc != 0) {
        aws_error(req, AWS_REST_JSON, err.status, err.code, "%s", err.message);
        return;
    }
    struct function *fn = lambda_lookup(l, req, ref, NULL);
    if (!fn)
        return;
    /* what every other function's reservations (and provisioned concurrency
     * outside one) and this one leave unreserved */
    unsigned long long others =
        (unsigned long long)l->reserved_total + l->provisioned_unreserved - claim(fn);
    if ((unsigned long long)n < fn->provisioned_total) {
        aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                  "Specified ReservedConcurrentExecutions for function is less than the "
                  "function's total provisioned concurrency [%u].",
                  fn->provisioned_total);
        return;
    }
    if (others + (unsigned long long)n + min_unreserved(l) > l->account_limit) {
        aws_error(req, AWS_REST_JSON, 400, "InvalidParameterValueException",
                  "Specified ReservedConcurrentExecutions for function decreases account's "
                  "UnreservedConcurrentExecution below its minimum value of [%u].",
                  min_unreserved(l));
        return;
    }
    if (set_reservation(l, req, fn, 1, (unsigned)n) == 0)
        reply_concurrency(req, 200, fn);
}

/* PUT|DELETE /2017-10-31/functions/{name}/concurrency,
 * GET /2019-09-30/functions/{name}/concurrency */
void concurrency_op(struct lambda *l, struct http_req *req, const char *method, const char *ref)
{
    if (strcmp(method, "PUT") == 0) {
        put_concurrency(l, req, ref);
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0) {
        aws_error(req, AWS_REST_JSON, 404, "UnknownOperationException",
                  "Ignis does not implement %s %s yet", method, http_req_path(req));
        return;
    }
    struct function *fn = lambda_lookup(l, req, ref, NULL);
    if (!fn)
        return;
    if (strcmp(method, "GET") == 0) {
        reply_concurrency(req, 200, fn);
    } else if (set_reservation(l, req, fn, 0, 0) == 0) {
        char id[37];
        aws_request_id(req, id);
        http_reply(req, 204, NULL, "", 0);
    }
}

static json_int_t code_size(json_t *config)
{
    return json_integer_value(json_object_get(config, "CodeSize"));
}

/* GET /2016-08-19/account-settings/ */
void account_settings_op(struct lambda *l, struct http_req *req)
{
    json_int_t total = 0;
    for (size_t i = 0; i < l->nfns; i++) {
        struct function *fn = l->fns[i];
        total += code_size(fn->config);
        const char *num;
        json_t *rec;
        json_object_foreach(fn->versions, num, rec) total +=
            code_size(json_object_get(rec, "Configuration"));
    }
    json_t *doc =
        json_pack("{s:{s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I}}", "AccountLimit", "TotalCodeSize",
                  (json_int_t)TOTAL_CODE_SIZE_LIMIT, "CodeSizeUnzipped",
                  (json_int_t)CODE_SIZE_UNZIPPED, "CodeSizeZipped", (json_int_t)CODE_SIZE_ZIPPED,
                  "ConcurrentExecutions", (json_int_t)l->account_limit,
                  "UnreservedConcurrentExecutions", (json_int_t)unreserved_pool(l), "AccountUsage",
                  "TotalCodeSize", total, "FunctionCount", (json_int_t)l->nfns);
    aws_reply_json(req, 200, doc);
}
