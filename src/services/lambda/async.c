/*
 * async: Lambda's asynchronous invocation (InvocationType Event), durable.
 * Owns the event queue: an accepted event is stored in the db before its 202
 * is sent, delivered at least once (after a crash every stored event is
 * delivered again), retried on function errors (FunctionError, crash,
 * timeout) up to MaximumRetryAttempts with Lambda's backoff (the base,
 * IGNIS_ASYNC_RETRY_BASE_MS, defaults to Lambda's minute: 1 min, then 2),
 * dropped once older than MaximumEventAgeInSeconds, and deleted only after
 * its final outcome: success, or failure handed to the OnFailure destination
 * or, without one, logged as an error. Destinations get Lambda's invocation
 * record as an event of their own. Every attempt of an event runs under the
 * request id its 202 carried.
 *
 * Events wait for concurrency (concurrency.c) rather than fail; a function
 * whose reserved concurrency is 0 sends them straight to failure, as Lambda
 * does. A finished event is deleted from the db only once the loop has
 * flushed the log lines its attempt wrote (two before-sleep hooks later), so
 * what a crash can lose is the deletion, never the evidence: it is delivered
 * again. In memory: per function a FIFO of events ready to run, retry timers
 * on the loop, and each event's metadata (its payload stays in the db and is
 * read for each attempt).
 *
 * Not here: the event invoke configs themselves (eventconfig.c), counting
 * concurrency (concurrency.c), validating an Invoke (invoke.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "services/lambda/lambda_internal.h"
#include "services/metrics/metrics.h"

/* Events of one function handed to the pool at once, at most (concurrency
 * limits apply too): enough to scale out, without queueing a whole backlog
 * inside the pool. */
#define ASYNC_WINDOW 32
/* How soon to look again at a function still being created. */
#define PENDING_POLL_MS 250

struct async_queue;
struct lambda_async;

struct async_event {
    char id[37];
    char function[65];
    char qualifier[130]; /* as invoked: "", "$LATEST", a version or an alias */
    int64_t received_ms;
    int attempts; /* attempts that failed so far (stored) */
    struct async_queue *q;
    struct loop_timer *timer; /* waiting for its next attempt */
    struct async_event *next; /* in q's ready list */
    struct async_event *prev_all, *next_all;
    /* the last attempt in this run, for the invocation record */
    int have_last, last_error;
    char last_version[16];
    char *last_result;
    size_t last_len;
};

/* The events of one function. */
struct async_queue {
    struct lambda_async *a;
    char function[65];
    struct async_event *head, *tail; /* ready to run, oldest first */
    unsigned nevents;                /* in memory: ready, waiting or running */
    unsigned running;                /* handed to the pool */
    struct async_queue *next;
};

struct idlist {
    char **ids;
    size_t n, alloc;
};

struct lambda_async {
    struct lambda *l;
    struct async_queue *queues;
    struct async_event *all;
    size_t nready;
    int64_t retry_base_ms;
    struct loop_timer *dispatch_timer, *poll_timer, *wake_timer;
    int hooked; /* before_sleep runs every iteration */
    /* finished events: pending since the last hook, aging since the one before */
    struct idlist pending, aging;
};

static void kick_later(struct lambda_async *a, int64_t delay_ms);

/*=== Events ===*/

static struct async_queue *queue_of(struct lambda_async *a, const char *function)
{
    for (struct async_queue *q = a->queues; q; q = q->next)
        if (strcmp(q->function, function) == 0)
            return q;
    struct async_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->a = a;
    snprintf(q->function, sizeof(q->function), "%s", function);
    q->next = a->queues;
    a->queues = q;
    return q;
}

static struct async_event *event_new(struct lambda_async *a, const char *id, const char *function,
                                     const char *qualifier, int64_t received_ms, int attempts)
{
    struct async_event *ev = calloc(1, sizeof(*ev));
    struct async_queue *q = ev ? queue_of(a, function) : NULL;
    if (!q) {
        free(ev);
        return NULL;
    }
    snprintf(ev->id, sizeof(ev->id), "%s", id);
    snprintf(ev->function, sizeof(ev->function), "%s", function);
    snprintf(ev->qualifier, sizeof(ev->qualifier), "%s", qualifier);
    ev->received_ms = received_ms;
    ev->attempts = attempts;
    ev->q = q;
    q->nevents++;
    ev->next_all = a->all;
    if (a->all)
        a->all->prev_all = ev;
    a->all = ev;
    return ev;
}

static void push_ready(struct async_event *ev)
{
    struct async_queue *q = ev->q;
    ev->next = NULL;
    if (q->tail)
        q->tail->next = ev;
    else
        q->head = ev;
    q->tail = ev;
    q->a->nready++;
}

static struct async_event *pop_ready(struct async_queue *q)
{
    struct async_event *ev = q->head;
    q->head = ev->next;
    if (!q->head)
        q->tail = NULL;
    ev->next = NULL;
    q->a->nready--;
    return ev;
}

static void event_free(struct lambda_async *a, struct async_event *ev)
{
    if (ev->timer)
        loop_timer_cancel(a->l->loop, ev->timer);
    if (ev->prev_all)
        ev->prev_all->next_all = ev->next_all;
    else
        a->all = ev->next_all;
    if (ev->next_all)
        ev->next_all->prev_all = ev->prev_all;
    ev->q->nevents--;
    free(ev->last_result);
    free(ev);
}

/*=== Deleting finished events ===*/

static int idlist_add(struct idlist *list, const char *id)
{
    if (list->n == list->alloc) {
        size_t n = list->alloc ? list->alloc * 2 : 64;
        char **ids = realloc(list->ids, n * sizeof(*ids));
        if (!ids)
            return -ENOMEM;
        list->ids = ids;
        list->alloc = n;
    }
    if (!(list->ids[list->n] = strdup(id)))
        return -ENOMEM;
    list->n++;
    return 0;
}

static void idlist_delete(struct lambda_async *a, struct idlist *list)
{
    if (list->n && db_async_delete(a->l->db, list->ids, list->n) < 0)
        log_error("could not delete %zu finished asynchronous event(s); they will be delivered "
                  "again after a restart",
                  list->n);
    for (size_t i = 0; i < list->n; i++)
        free(list->ids[i]);
    list->n = 0;
}

static void wake(struct loop *loop, void *arg)
{
    (void)loop;
    struct lambda_async *a = arg;
    a->wake_timer = NULL;
}

/* Before every sleep: events that finished before the previous hook have
 * had their log lines flushed since (the log writer flushes once per
 * iteration), so their rows can go. */
static void before_sleep(struct loop *loop, void *arg)
{
    struct lambda_async *a = arg;
    idlist_delete(a, &a->aging);
    struct idlist t = a->aging;
    a->aging = a->pending;
    a->pending = t;
    if (a->aging.n && !a->wake_timer)
        a->wake_timer = loop_timer_add(loop, 1, wake, a);
}

/* The event's outcome is final: forget it, and delete its row soon. */
static void event_done(struct lambda_async *a, struct async_event *ev)
{
    if (!a->hooked || idlist_add(&a->pending, ev->id) < 0) {
        struct idlist one = {0};
        if (idlist_add(&one, ev->id) == 0)
            idlist_delete(a, &one);
        free(one.ids);
    } else if (!a->wake_timer) {
        a->wake_timer = loop_timer_add(a->l->loop, 1, wake, a);
    }
    event_free(a, ev);
}

/*=== Final outcomes ===*/

/* A JSON text as a value (a string if it is not JSON, null if empty). */
static json_t *json_value(const char *text, size_t len)
{
    if (!text || len == 0)
        return json_null();
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    return v ? v : json_stringn(text, len);
}

/* Lambda's invocation record for a destination. */
static json_t *invocation_record(struct lambda *l, struct async_event *ev, const char *condition,
                                 const struct buf *payload)
{
    char ts[32], arn[256], invoked[400];
    format_iso8601_ms(now_ms(), ts);
    function_arn(l, ev->function, arn, sizeof(arn));
    snprintf(invoked, sizeof(invoked), "%s:%s", arn, ev->qualifier[0] ? ev->qualifier : "$LATEST");
    int count = ev->attempts + (strcmp(condition, "Success") == 0);
    json_t *rec = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:i}, s:o}", "version", "1.0",
                            "timestamp", ts, "requestContext", "requestId", ev->id, "functionArn",
                            invoked, "condition", condition, "approximateInvokeCount", count,
                            "requestPayload", json_value(payload->data, payload->len));
    if (rec && ev->have_last) {
        json_t *ctx =
            json_pack("{s:i, s:s}", "statusCode", 200, "executedVersion", ev->last_version);
        if (ev->last_error)
            json_object_set_new(ctx, "functionError", json_string("Unhandled"));
        json_object_set_new(rec, "responseContext", ctx);
        json_object_set_new(rec, "responsePayload", json_value(ev->last_result, ev->last_len));
    }
    return rec;
}

/* Sends the record to the destination function as an event of its own. */
static void deliver(struct lambda_async *a, struct async_event *ev, const char *condition,
                    const char *destination, const struct buf *payload)
{
    struct lambda *l = a->l;
    json_t *rec = invocation_record(l, ev, condition, payload);
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    char name[65], qual[130], id[37];
    struct param_error err;
    if (!text) {
        log_error("asynchronous invocation %s of %s: %s, and its record for %s could not be "
                  "built (out of memory): event dropped",
                  ev->id, ev->function, condition, destination);
    } else if (parse_function_ref(destination, name, qual, &err) < 0 || !lambda_find(l, name)) {
        log_error("asynchronous invocation %s of %s: %s, and its destination %s does not exist: "
                  "record dropped: %.1000s",
                  ev->id, ev->function, condition, destination, text);
    } else if (strlen(text) > LAMBDA_ASYNC_PAYLOAD_MAX) {
        log_error("asynchronous invocation %s of %s: %s, and its record (%zu bytes) is larger "
                  "than an event may be: not sent to %s",
                  ev->id, ev->function, condition, strlen(text), destination);
    } else if (async_enqueue(l, name, qual, text, strlen(text), NULL, id) < 0) {
        log_error("asynchronous invocation %s of %s: %s, and its record could not be queued for "
                  "%s: record dropped: %.1000s",
                  ev->id, ev->function, condition, destination, text);
    } else {
        log_info("asynchronous invocation %s of %s: %s, record sent to %s as event %s", ev->id,
                 ev->function, condition, destination, id);
        free(text);
        return;
    }
    metrics_destination_failure(l->metrics, ev->function, ev->qualifier);
    free(text);
}

/* The event's final outcome (condition: Success, RetriesExhausted,
 * EventAgeExceeded): its record goes to the matching destination if fn has
 * one, a failure without one is logged loudly; then the event is done.
 * payload: the event, or NULL to read it from the db. */
static void finish(struct lambda_async *a, struct async_event *ev, struct function *fn,
                   const char *condition, const struct buf *payload)
{
    int success = strcmp(condition, "Success") == 0;
    json_t *cfg = fn ? event_config_get(fn, ev->qualifier) : NULL;
    const char *destination =
        json_string_value(json_object_get(json_object_get(json_object_get(cfg, "DestinationConfig"),
                                                          success ? "OnSuccess" : "OnFailure"),
                                          "Destination"));
    struct buf stored = BUF_INIT;
    if ((!success || (destination && *destination)) && !payload) {
        db_async_payload(a->l->db, ev->id, &stored, NULL);
        payload = &stored;
    }
    if (destination && *destination) {
        deliver(a, ev, condition, destination, payload);
    } else if (!success) {
        log_error("asynchronous invocation %s of %s%s%s DROPPED: %s after %d attempt(s), and the "
                  "function has no OnFailure destination. Event: %.500s Last error: %.500s",
                  ev->id, ev->function, ev->qualifier[0] ? ":" : "", ev->qualifier, condition,
                  ev->attempts, payload->data ? payload->data : "",
                  ev->have_last && ev->last_result ? ev->last_result : "(none in this run)");
    }
    buf_release(&stored);
    event_done(a, ev);
}

/* An event that cannot run any more: its function, version or alias is
 * gone, and with it any destination. */
static void drop(struct lambda_async *a, struct async_event *ev, const char *why)
{
    struct buf payload = BUF_INIT;
    db_async_payload(a->l->db, ev->id, &payload, NULL);
    log_error("asynchronous invocation %s of %s%s%s DROPPED after %d attempt(s): %s. Event: %.500s",
              ev->id, ev->function, ev->qualifier[0] ? ":" : "", ev->qualifier, ev->attempts, why,
              payload.data ? payload.data : "");
    buf_release(&payload);
    event_done(a, ev);
}

/*=== Attempts ===*/

static json_int_t config_int(json_t *cfg, const char *key, json_int_t dflt)
{
    json_t *v = json_object_get(cfg, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static void retry_due(struct loop *loop, void *arg)
{
    (void)loop;
    struct async_event *ev = arg;
    ev->timer = NULL;
    push_ready(ev);
    kick_later(ev->q->a, 0);
}

static void attempt_done(struct invocation *inv, void *arg)
{
    struct lambda_call *call = arg;
    struct async_event *ev = call->ev;
    struct lambda *l = lambda_call_done(call, inv);
    if (!l || !ev) { /* shutting down: the event stays stored */
        invocation_free(inv);
        return;
    }
    struct lambda_async *a = l->async;
    ev->q->running--;
    ev->have_last = 1;
    ev->last_error = inv->outcome != INVOCATION_OK;
    snprintf(ev->last_version, sizeof(ev->last_version), "%s",
             inv->executed_version ? inv->executed_version : "$LATEST");
    free(ev->last_result);
    ev->last_result = buf_detach(&inv->result, &ev->last_len);
    struct function *fn = lambda_find(l, ev->function);
    if (!ev->last_error) {
        finish(a, ev, fn, "Success", &inv->payload);
    } else {
        ev->attempts++;
        json_t *cfg = fn ? event_config_get(fn, ev->qualifier) : NULL;
        json_int_t retries = config_int(cfg, "MaximumRetryAttempts", LAMBDA_ASYNC_RETRIES_DEFAULT);
        if (ev->attempts > retries) {
            finish(a, ev, fn, "RetriesExhausted", &inv->payload);
        } else {
            /* Lambda: 1 minute before the second attempt, 2 before the third */
            int64_t delay = a->retry_base_ms * ev->attempts;
            if (db_async_set_attempts(l->db, ev->id, ev->attempts, now_ms() + delay) < 0)
                log_error("could not store attempt %d of asynchronous invocation %s", ev->attempts,
                          ev->id);
            ev->timer = loop_timer_add(l->loop, delay, retry_due, ev);
        }
    }
    invocation_free(inv);
}

/* Hands ev to the pool. 0, or -1 when it could not start (ev is back at the
 * head of its queue, to be tried again). */
static int start_attempt(struct lambda_async *a, struct async_event *ev, struct function *fn,
                         struct fn_target *t)
{
    struct lambda *l = a->l;
    struct invocation *inv = invocation_new();
    char *cc = NULL;
    int rc = inv ? db_async_payload(l->db, ev->id, &inv->payload, &cc) : -ENOMEM;
    if (rc == -ENOENT) {
        log_error("asynchronous invocation %s of %s vanished from the db", ev->id, ev->function);
        invocation_free(inv);
        event_free(a, ev);
        return 0;
    }
    struct lambda_call *call = rc == 0 ? lambda_call_begin(l, fn) : NULL;
    if (!call) {
        free(cc);
        invocation_free(inv);
        return -1;
    }
    memcpy(inv->request_id, ev->id, sizeof(inv->request_id)); /* the id its 202 carried */
    metrics_async_age(l->metrics, fn->name, ev->qualifier, now_ms() - ev->received_ms);
    inv->client_context = cc;
    if (ev->qualifier[0]) {
        char arn[256];
        function_arn(l, fn->name, arn, sizeof(arn));
        if (asprintf(&inv->invoked_arn, "%s:%s", arn, ev->qualifier) < 0)
            inv->invoked_arn = NULL;
    }
    const char *version = t->alias ? alias_route(fn, t->alias, t->version) : t->version;
    struct pool_fn *run = function_runner(l, fn, version);
    call->ev = ev;
    ev->q->running++;
    inv->done = attempt_done;
    inv->done_arg = call;
    if (!run) { /* as if the attempt failed */
        buf_printf(&inv->result,
                   "{\"errorType\":\"Runtime.Unknown\",\"errorMessage\":\"RequestId: %s Error: "
                   "cannot run this version\"}",
                   ev->id);
        inv->outcome = INVOCATION_FUNCTION_ERROR;
        inv->executed_version = NULL;
        attempt_done(inv, call);
        return 0;
    }
    pool_invoke(run, inv);
    return 0;
}

/* Runs what it can of q's ready events, oldest first. */
static void dispatch_queue(struct lambda_async *a, struct async_queue *q)
{
    struct lambda *l = a->l;
    while (q->head) {
        struct async_event *ev = q->head;
        struct function *fn = lambda_find(l, q->function);
        struct fn_target t;
        if (!fn) {
            drop(a, pop_ready(q), "its function no longer exists");
            continue;
        }
        if (fn->updating && !json_object_get(fn->config, "CodeSha256")) {
            kick_later(a, PENDING_POLL_MS); /* being created */
            return;
        }
        if (lambda_resolve(fn, ev->qualifier, &t) < 0) {
            drop(a, pop_ready(q), "the version or alias it was sent to no longer exists");
            continue;
        }
        json_t *cfg = event_config_get(fn, ev->qualifier);
        json_int_t max_age = config_int(cfg, "MaximumEventAgeInSeconds", LAMBDA_ASYNC_AGE_DEFAULT);
        if (now_ms() - ev->received_ms > max_age * 1000) {
            finish(a, pop_ready(q), fn, "EventAgeExceeded", NULL);
            continue;
        }
        /* Lambda: with reserved concurrency 0, new events go to the
         * on-failure destination without retries */
        if (fn->reserved_set && fn->reserved == 0) {
            finish(a, pop_ready(q), fn, "RetriesExhausted", NULL);
            continue;
        }
        if (q->running >= ASYNC_WINDOW || concurrency_check(l, fn) != THROTTLE_NONE)
            return; /* throttled: waits until an invocation ends */
        pop_ready(q);
        if (start_attempt(a, ev, fn, &t) < 0) {
            /* out of memory or the db failed: try again a little later */
            ev->next = q->head;
            q->head = ev;
            if (!q->tail)
                q->tail = ev;
            a->nready++;
            kick_later(a, PENDING_POLL_MS);
            return;
        }
    }
}

static void dispatch(struct lambda_async *a)
{
    struct async_queue **link = &a->queues;
    for (struct async_queue *q = a->queues; q; q = q->next)
        dispatch_queue(a, q);
    while (*link) { /* queues with nothing left go */
        struct async_queue *q = *link;
        if (q->nevents == 0) {
            *link = q->next;
            free(q);
        } else {
            link = &q->next;
        }
    }
}

static void dispatch_now(struct loop *loop, void *arg)
{
    (void)loop;
    struct lambda_async *a = arg;
    a->dispatch_timer = NULL;
    dispatch(a);
}

static void dispatch_poll(struct loop *loop, void *arg)
{
    (void)loop;
    struct lambda_async *a = arg;
    a->poll_timer = NULL;
    dispatch(a);
}

/* Dispatching happens on its own timer, never inside the caller (an
 * invocation's done callback runs inside the pool). */
static void kick_later(struct lambda_async *a, int64_t delay_ms)
{
    if (delay_ms == 0 && !a->dispatch_timer)
        a->dispatch_timer = loop_timer_add(a->l->loop, 0, dispatch_now, a);
    else if (delay_ms > 0 && !a->poll_timer)
        a->poll_timer = loop_timer_add(a->l->loop, delay_ms, dispatch_poll, a);
}

void async_kick(struct lambda *l)
{
    if (l->async && l->async->nready > 0)
        kick_later(l->async, 0);
}

/*=== Accepting ===*/

int async_enqueue(struct lambda *l, const char *function, const char *qualifier,
                  const char *payload, size_t len, const char *client_context, char id[37])
{
    struct lambda_async *a = l->async;
    char new_id[37];
    uuid_v4(new_id);
    int64_t now = now_ms();
    if (len == 0) {
        payload = "{}";
        len = 2;
    }
    struct async_event *ev = event_new(a, new_id, function, qualifier, now, 0);
    if (!ev)
        return -ENOMEM;
    struct db_async_event rec = {
        .id = ev->id,
        .function = function,
        .qualifier = qualifier,
        .payload = payload,
        .payload_len = len,
        .client_context = client_context,
        .received_ms = now,
        .due_ms = now,
    };
    if (db_async_put(l->db, &rec) < 0) {
        event_free(a, ev);
        return -EIO;
    }
    push_ready(ev);
    kick_later(a, 0);
    memcpy(id, new_id, sizeof(new_id));
    metrics_async_received(l->metrics, function, qualifier);
    return 0;
}

int lambda_invoke_async(struct lambda *l, const char *ref, const char *payload, size_t len)
{
    struct fn_target t;
    if (lambda_resolve_ref(l, ref, &t) < 0)
        return -ENOENT;
    if (len > LAMBDA_ASYNC_PAYLOAD_MAX)
        return -E2BIG;
    char id[37];
    return async_enqueue(l, t.fn->name, t.qualifier, payload, len, NULL, id);
}

int lambda_function_exists(struct lambda *l, const char *ref)
{
    struct fn_target t;
    return lambda_resolve_ref(l, ref, &t) == 0;
}

unsigned lambda_async_depth(struct lambda *l)
{
    unsigned n = 0;
    for (struct async_event *ev = l->async ? l->async->all : NULL; ev; ev = ev->next_all)
        n++;
    return n;
}

/*=== Lifecycle ===*/

static void load_one(const struct db_async_event *rec, void *arg)
{
    struct lambda_async *a = arg;
    struct async_event *ev =
        event_new(a, rec->id, rec->function, rec->qualifier, rec->received_ms, rec->attempts);
    if (!ev)
        return;
    int64_t wait = rec->due_ms - now_ms();
    if (wait > 0)
        ev->timer = loop_timer_add(a->l->loop, wait, retry_due, ev);
    else
        push_ready(ev);
}

int async_init(struct lambda *l)
{
    struct lambda_async *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->l = l;
    l->async = a;
    a->retry_base_ms = LAMBDA_ASYNC_RETRY_BASE_MS;
    const char *v = getenv("IGNIS_ASYNC_RETRY_BASE_MS");
    if (v && *v) {
        char *end;
        long long ms = strtoll(v, &end, 10);
        if (*end || ms < 0 || ms > 86400000LL)
            log_warn("ignoring IGNIS_ASYNC_RETRY_BASE_MS=%s (want 0..86400000)", v);
        else
            a->retry_base_ms = ms;
    }
    if (db_async_foreach(l->db, load_one, a) < 0)
        return -EIO;
    size_t n = 0;
    for (struct async_event *ev = a->all; ev; ev = ev->next_all)
        n++;
    if (n)
        log_info("%zu asynchronous invocation(s) stored: delivering them", n);
    if (loop_add_before_sleep(l->loop, before_sleep, a) == 0)
        a->hooked = 1;
    else
        log_warn("no before-sleep hook left: finished asynchronous events are deleted at once");
    if (a->nready)
        kick_later(a, 0);
    return 0;
}

void async_free(struct lambda *l)
{
    struct lambda_async *a = l->async;
    if (!a)
        return;
    idlist_delete(a, &a->aging);
    idlist_delete(a, &a->pending);
    free(a->aging.ids);
    free(a->pending.ids);
    struct loop_timer **timers[] = {&a->dispatch_timer, &a->poll_timer, &a->wake_timer};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++)
        if (*timers[i])
            loop_timer_cancel(l->loop, *timers[i]);
    while (a->all) /* running ones stay stored: delivered again after a restart */
        event_free(a, a->all);
    while (a->queues) {
        struct async_queue *q = a->queues;
        a->queues = q->next;
        free(q);
    }
    for (struct lambda_call *c = l->calls; c; c = c->next)
        c->ev = NULL;
    free(a);
    l->async = NULL;
}
