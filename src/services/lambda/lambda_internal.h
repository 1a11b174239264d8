/*
 * lambda_internal: what the Lambda service's files share: the registry and
 * the function record. Not for use outside src/services/lambda/.
 */
#ifndef IGNIS_SERVICES_LAMBDA_INTERNAL_H
#define IGNIS_SERVICES_LAMBDA_INTERNAL_H

#include <jansson.h>

#include "core/buf.h"
#include "services/lambda/lambda.h"

#define LAMBDA_SYNC_PAYLOAD_MAX 6291456  /* Invoke RequestResponse */
#define LAMBDA_ASYNC_PAYLOAD_MAX 1048576 /* Invoke Event (1 MB since 2025; was 256 KB) */
#define LAMBDA_REQUEST_MAX 70167211      /* CreateFunction/UpdateFunctionCode bodies */
#define LAMBDA_ENV_MAX 4096
/* The tag that grants a function outbound network ("host": the host's
 * network namespace); without it a sandboxed function has only loopback. */
#define LAMBDA_NETWORK_TAG "ignis:network"
/* Asynchronous invocation (async.c): Lambda's defaults and ranges. */
#define LAMBDA_ASYNC_RETRIES_DEFAULT 2   /* MaximumRetryAttempts, 0..2 */
#define LAMBDA_ASYNC_AGE_DEFAULT 21600   /* MaximumEventAgeInSeconds, 60..21600 */
#define LAMBDA_ASYNC_RETRY_BASE_MS 60000 /* 1 min before the 2nd attempt, 2 min before the 3rd */
/* Concurrency (concurrency.c): Lambda's default account limit and the part
 * of it that reservations must leave to every other function. */
#define LAMBDA_ACCOUNT_CONCURRENCY 1000
#define LAMBDA_MIN_UNRESERVED 100

/* A published version's runner, built on its first invoke (or at once when
 * provisioned concurrency lands on the version: provisioned.c). */
struct version_run {
    char version[16];
    struct pool_fn *run;
    unsigned provisioned;   /* instances asked of the pool (pool_fn_provision) */
    int64_t short_since_ms; /* monotonic ms since when fewer than that were seen ready; 0: not */
};

struct function {
    char name[65];
    json_t *config; /* the FunctionConfiguration document, as returned */
    json_t *tags;   /* object */
    char code_hex[65];
    json_t *versions;        /* "N" -> {"Configuration", "CodeHex", "SourceRevisionId"} */
    json_int_t last_version; /* highest published number, 0 if none */
    json_t *aliases;         /* name -> {"Name", "FunctionVersion", "Description", "RoutingConfig"?,
                                "RevisionId"}: AliasConfiguration without its ARN (aliases.c) */
    json_t *event_configs;   /* qualifier ("$LATEST", "N", an alias) -> FunctionEventInvokeConfig
                                without its FunctionArn (eventconfig.c) */
    json_t *provisioned;     /* qualifier (a version or an alias) -> {"Requested", "LastModified"}:
                                provisioned concurrency configs (provisioned.c) */
    json_t *url_configs;     /* qualifier ("$LATEST" or an alias) -> {"UrlId", "AuthType",
                                "Cors"?, "InvokeMode", "CreationTime", "LastModifiedTime"}:
                                Function URLs (urls.c) */
    json_t *policies;        /* qualifier ("$LATEST" for the unqualified function, a version or
                                an alias) -> [statement...]: resource-based policies (policy.c) */
    unsigned provisioned_total; /* the sum of their Requested (concurrency.c accounts for it) */
    int reserved_set;           /* PutFunctionConcurrency was called (concurrency.c) */
    unsigned reserved;          /* ReservedConcurrentExecutions, when reserved_set */
    unsigned inflight;          /* invocations handed to the pool, not yet done */
    struct pool_fn *run;        /* $LATEST: built on first invoke, replaced after updates */
    struct version_run *vruns;
    size_t nvruns;
    int updating; /* an asynchronous create/update holds the function */
    int refs;     /* in-flight operations holding the pointer */
    int deleted;
};

struct lambda {
    struct loop *loop;
    const struct config *cfg;
    struct db *db;
    struct pool *pool;
    struct workq *wq;
    char code_root[4096];
    struct function **fns; /* sorted by name */
    size_t nfns, fns_alloc;
    /* concurrency (concurrency.c) */
    unsigned account_limit;          /* ConcurrentExecutions */
    unsigned reserved_total;         /* sum of the functions' reservations */
    unsigned provisioned_unreserved; /* provisioned concurrency of functions without one */
    unsigned unreserved_inflight;    /* in flight for functions without a reservation */
    struct lambda_call *calls;       /* every invocation in flight */
    struct lambda_async *async;      /* the event queue (async.c) */
    struct metrics *metrics;         /* metering (src/services/metrics), or NULL */
    int python_zygote;               /* the pool has a "python" zygote (function.c) */
};

/* One invocation handed to the pool, counted against its function's (or the
 * account's unreserved) concurrency until it is done (concurrency.c). */
struct lambda_call {
    struct lambda *l;       /* NULL once the service is gone (shutdown) */
    struct function *fn;    /* holds a reference */
    int unreserved;         /* counted in l->unreserved_inflight */
    struct http_req *req;   /* RequestResponse: the request to answer */
    struct async_event *ev; /* Event: the event attempted (async.c) */
    int metered;            /* lambda_call_done reported it to the metrics service */
    struct lambda_call *prev, *next;
};

/* registry (function.c) */
struct function *lambda_find(struct lambda *l, const char *name);
int lambda_insert(struct lambda *l, struct function *fn);
void lambda_remove(struct lambda *l, struct function *fn);
void function_unref(struct function *fn);
int function_save(struct lambda *l, struct function *fn);
void function_arn(const struct lambda *l, const char *name, char *out, size_t size);
/* A copy of config as listings (ListFunctions, ListVersionsByFunction) show
 * it: without the State/LastUpdateStatus fields, which only Get returns. */
json_t *listing_view(json_t *config);
/* Hands the pool ignis-init and starts the Python zygote (sandboxed pools). */
void function_start_helpers(struct lambda *l);
/* What the pool runs for fn's $LATEST (version NULL) or a published version. */
struct pool_fn *function_runner(struct lambda *l, struct function *fn, const char *version);
void function_reset_runner(struct function *fn);
/* Retires the runners of $LATEST and of every version (after a change that
 * applies to all of them, like the network tag); the versions with
 * provisioned concurrency get new runners, provisioned, at once (unless fn
 * is deleted). */
void function_reset_runners(struct lambda *l, struct function *fn);
/* The runner of a published version if it has been built, else NULL (never builds one). */
struct version_run *function_version_run(struct function *fn, const char *version);
int function_network_granted(const struct function *fn);
int lambda_load(struct lambda *l);

/* request parsing helpers (function.c) */
struct param_error {
    unsigned status;
    const char *code;
    char message[1024];
};
/* Integer member key of body checked against [min, max] with Lambda's
 * ValidationException naming field: 1 when absent, 0 with *out set, -1 with
 * err filled. */
int param_int(json_t *body, const char *key, const char *field, long min, long max, json_int_t *out,
              struct param_error *err);
/* Fills err; returns -1. */
int param_fail(struct param_error *err, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A ValidationException as Lambda words it: "1 validation error detected:
 * Value '<value>' at '<field>' failed to satisfy constraint: <constraint>". */
int param_validation(struct param_error *err, const char *value, const char *field,
                     const char *constraint);
/* Extracts the function name from a path segment (name, ARN or partial
 * ARN, percent-encoded); qualifier (may be NULL) receives the qualifier
 * ("$LATEST", "1", an alias) or "". */
int parse_function_ref(const char *segment, char name[65], char qualifier[130],
                       struct param_error *err);
/* Checks and applies configuration fields of body to config (create or
 * update). Returns 0 or -1 with err filled. */
int apply_configuration(struct lambda *l, json_t *config, json_t *body, int creating,
                        struct param_error *err);

/* What a request names: a function and, maybe, one of its versions or
 * aliases. An alias is resolved to the version it points to (its primary
 * version: Invoke applies the alias's routing with alias_route). */
struct fn_target {
    struct function *fn;
    char qualifier[130]; /* as given: "", "$LATEST", a version number or an alias */
    const char *version; /* a published version's number, NULL for $LATEST */
    json_t *alias;       /* the alias named (its record in fn->aliases), or NULL */
    json_t *config;      /* the configuration to show: $LATEST's or the version's */
    const char *code_hex;
};

/* Resolves a path's function reference (and ?Qualifier) or answers the
 * request with the error and returns NULL. With t NULL only $LATEST may be
 * named (operations that change a function and the alias operations). (api.c) */
struct function *lambda_lookup(struct lambda *l, struct http_req *req, const char *ref,
                               struct fn_target *t);
/* Fills t for fn and qualifier ("", "$LATEST", a version or an alias);
 * -1 when fn has no such version or alias. (api.c) */
int lambda_resolve(struct function *fn, const char *qualifier, struct fn_target *t);
/* Fills t for ref (a name or ARN, maybe qualified; "$LATEST" is the
 * unqualified function), as other services name a function; -ENOENT when
 * there is no such function, version or alias. (api.c) */
int lambda_resolve_ref(struct lambda *l, const char *ref, struct fn_target *t);

/* versions (versions.c) */
/* Publishes $LATEST as a new version, or returns the latest version when
 * nothing changed since (as Lambda). Returns the version's record or NULL
 * with err filled. */
json_t *version_publish(struct lambda *l, struct function *fn, const char *description,
                        struct param_error *err);
json_t *version_config(struct function *fn, const char *version);
void versions_list(struct lambda *l, struct http_req *req, struct function *fn);
void versions_publish_op(struct lambda *l, struct http_req *req, const char *ref);
/* Deletes one version (DeleteFunction with a Qualifier). */
int version_delete(struct lambda *l, struct function *fn, const char *version);

/* The request's body as a JSON object, or NULL after answering
 * InvalidRequestContentException. (api.c) */
json_t *lambda_parse_body(struct http_req *req);
/* 0 when body has no RevisionId or the one it has equals have; else answers
 * PreconditionFailedException and returns -1. (api.c) */
int lambda_check_revision(struct http_req *req, json_t *body, const char *have);

/* MaxItems of a listing, capped at 50 per page as Lambda does; -1 after
 * answering a bad value. (api.c) */
int lambda_page_size(struct http_req *req, long *max);
/* Listings paged by name: the name a request's Marker carries into after
 * (empty without a Marker), or -1 after answering a bad Marker; and the
 * NextMarker to answer after last. (api.c) */
int lambda_page_after(struct http_req *req, struct buf *after);
/* The start of a List* over a function's per-qualifier configs: the function named by ref and
 * the paging parameters (after: lambda_page_after's, released on failure); NULL once the error
 * is answered (no_function: the API's own wording for a missing function). */
struct function *lambda_list_start(struct lambda *l, struct http_req *req, const char *ref,
                                   const char *no_function, long *max, struct buf *after);
void lambda_set_next_marker(json_t *doc, const char *last);
/* Qualifier order of listings: $LATEST, then versions by number, then aliases by name. */
int lambda_qualifier_order(const char *a, const char *b);
/* Answers one page of a listing of obj's members (keyed by qualifier): those after `after`
 * that include() accepts (NULL: all), in qualifier order, at most max, as
 * {"<field>": [view(key, value, arg)...]} plus NextMarker when more remain. view returns a
 * new reference. Takes the page from lambda_page_size / lambda_page_after. */
void lambda_reply_list(struct http_req *req, json_t *obj, long max, const char *after,
                       const char *field, int (*include)(json_t *value, void *arg),
                       json_t *(*view)(const char *key, json_t *value, void *arg), void *arg);

/* aliases (aliases.c) */
json_t *alias_find(struct function *fn, const char *name);
/* The version an invocation through alias runs: the alias's primary version
 * (primary: its number, NULL for $LATEST) or, with the probability of its
 * weight, the additional version of its RoutingConfig. Never NULL unless
 * primary is. */
const char *alias_route(struct function *fn, json_t *alias, const char *primary);
/* Writes "a, b" (the aliases whose primary or additional version is version)
 * into out; returns how many there are. */
int aliases_referencing(struct function *fn, const char *version, char *out, size_t size);
void aliases_create_op(struct lambda *l, struct http_req *req, const char *ref);
void aliases_list_op(struct lambda *l, struct http_req *req, const char *ref);
/* GetAlias, UpdateAlias, DeleteAlias; name is the path segment, as sent. */
void alias_op(struct lambda *l, struct http_req *req, const char *method, const char *ref,
              const char *name);

/* event invoke configs (eventconfig.c) */
/* The FunctionEventInvokeConfig (without FunctionArn) of fn for qualifier
 * ("" is $LATEST), or NULL. */
json_t *event_config_get(struct function *fn, const char *qualifier);
/* PutFunctionEventInvokeConfig, UpdateFunctionEventInvokeConfig,
 * GetFunctionEventInvokeConfig, DeleteFunctionEventInvokeConfig; list: the
 * path ended in /list (ListFunctionEventInvokeConfigs). */
void event_config_op(struct lambda *l, struct http_req *req, const char *method, const char *ref,
                     int list);

/* concurrency (concurrency.c) */
enum throttle { THROTTLE_NONE, THROTTLE_RESERVED, THROTTLE_ACCOUNT };
void concurrency_init(struct lambda *l);
/* Whether one more invocation of fn may run now. */
enum throttle concurrency_check(struct lambda *l, struct function *fn);
/* Answers 429 TooManyRequestsException with Lambda's Reason. */
void concurrency_reply_throttled(struct http_req *req, enum throttle why);
/* Counts an invocation of fn as in flight (and takes a reference on fn);
 * NULL when out of memory. */
struct lambda_call *lambda_call_begin(struct lambda *l, struct function *fn);
/* Uncounts and frees call; returns its lambda, NULL after shutdown. */
struct lambda *lambda_call_end(struct lambda_call *call);
/* lambda_call_end for an invocation that ran (or failed to): meters it first. */
struct lambda *lambda_call_done(struct lambda_call *call, const struct invocation *inv);
/* Shutdown: every call in flight forgets the service and its function. */
void lambda_calls_detach(struct lambda *l);
/* Keeps reserved_total and provisioned_unreserved true when fn joins or
 * leaves the registry. */
void concurrency_account(struct lambda *l, struct function *fn, int joining);
/* Whether fn may have n provisioned instances on a qualifier that has old (0:
 * none) now: within its reservation, or leaving the account's minimum
 * unreserved. 0, or -1 with err filled (Lambda's messages). */
int concurrency_check_provisioned(struct lambda *l, struct function *fn, unsigned old, unsigned n,
                                  struct param_error *err);
/* Sets fn's provisioned total (fn in the registry), keeping the account's
 * unreserved pool true. */
void concurrency_set_provisioned(struct lambda *l, struct function *fn, unsigned total);
/* PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency. */
void concurrency_op(struct lambda *l, struct http_req *req, const char *method, const char *ref);
void account_settings_op(struct lambda *l, struct http_req *req);

/* provisioned concurrency (provisioned.c) */
/* The sum of the Requested of a configs object (fn->provisioned). */
unsigned provisioned_sum(json_t *configs);
/* How many provisioned instances version's runner should keep: the configs
 * of the version and of the aliases whose primary version it is. */
unsigned provisioned_wanted(struct function *fn, const char *version);
/* Brings the pool in line with fn's configs: every version with provisioned
 * concurrency gets its runner (built if need be) provisioned, the others
 * are asked for none. Call after any change to configs, aliases or runners. */
void provisioned_sync(struct lambda *l, struct function *fn);
/* Removes qualifier's config (a version or alias going away) and keeps the
 * accounting true; returns it (a reference, for provisioned_restore) or NULL. */
json_t *provisioned_take(struct lambda *l, struct function *fn, const char *qualifier);
/* Puts back what provisioned_take returned (cfg may be NULL); steals cfg. */
void provisioned_restore(struct lambda *l, struct function *fn, const char *qualifier, json_t *cfg);
/* UpdateAlias: whether alias (with a config) may point at version now. 0, or
 * -1 with err filled. */
int provisioned_check_alias(struct function *fn, const char *alias, const char *version,
                            struct param_error *err);
/* Put (PUT), Get and List (GET; ?List=ALL lists), Delete (DELETE). */
void provisioned_op(struct lambda *l, struct http_req *req, const char *method, const char *ref);

/* Function URLs: configs (urls.c) and serving (url_invoke.c) */
#define LAMBDA_URL_PATH_PREFIX "/_ignis/url/" /* path form: /_ignis/url/<url-id>/<rawPath> */
#define LAMBDA_URL_ID_LEN 32
/* CreateFunctionUrlConfig (POST), Get (GET), Update (PUT), Delete (DELETE);
 * list: ListFunctionUrlConfigs (GET .../urls). */
void urls_op(struct lambda *l, struct http_req *req, const char *method, const char *ref, int list);
/* The config whose url-id is id (a borrowed reference) with its function and
 * qualifier, or NULL. */
json_t *url_config_find(struct lambda *l, const char *id, struct function **fn,
                        const char **qualifier);
/* Starts a synchronous invocation of t (alias routing, concurrency ticket,
 * the invoked ARN as on Invoke) with payload (copied) under request_id
 * (NULL: a fresh one);
 * done is called once, later. 0, -EBUSY when throttled (nothing started)
 * or -ENOMEM. (url_invoke.c) */
int lambda_start_sync(struct lambda *l, const struct fn_target *t, const char *request_id,
                      const char *payload, size_t len, lambda_sync_done done, void *arg);
/* Edge: whether a request's Host is a Function URL's (<id>.lambda-url.<...>). */
int lambda_url_match(struct http_req *req, void *arg);
/* Edge: serves a Function URL request (Host form or path form). */
void lambda_url_serve(struct http_req *req, const struct edge_auth *auth, void *arg);

/* resource-based policies (policy.c) */
/* AddPermission (POST .../policy), GetPolicy (GET), RemovePermission (DELETE
 * .../policy/{sid}: sid is the path segment as sent, else NULL). */
void policy_op(struct lambda *l, struct http_req *req, const char *method, const char *ref,
               const char *sid);
/* The policies of a stored record that still have their version or alias
 * (fn's versions and aliases loaded); a new reference. */
json_t *policies_load(json_t *stored, struct function *fn);

/* asynchronous invocation (async.c) */
int async_init(struct lambda *l);
void async_free(struct lambda *l);
/* Stores an event for function (as invoked through qualifier) durably and
 * queues it; id receives its request id. Returns 0 or -errno (nothing
 * stored). */
int async_enqueue(struct lambda *l, const char *function, const char *qualifier,
                  const char *payload, size_t len, const char *client_context, char id[37]);
/* Concurrency was freed or changed: queued events may run now. */
void async_kick(struct lambda *l);

/* handlers */
void lambda_invoke(struct lambda *l, struct http_req *req, const char *ref);
/* Invoke's checks after the invocation type, shared with InvokeWithResponseStream: LogType,
 * a function still Pending, a JSON payload, ClientContext (decoded into ctx, which the caller
 * releases). 0, or -1 after answering. (invoke.c) */
int lambda_invoke_checks(struct http_req *req, struct function *fn, struct buf *ctx);

/* response streaming (stream_invoke.c) */
/* InvokeWithResponseStream: /2021-11-15/functions/{name}/response-streaming-invocations */
#define LAMBDA_STREAM_PREFIX "/2021-11-15/"
/* InvokeWithResponseStream: answers an AWS event stream as the function produces it. */
void lambda_invoke_stream(struct lambda *l, struct http_req *req, const char *ref);
/* A Function URL with InvokeMode RESPONSE_STREAM: invokes t with event (copied) under
 * request_id and answers req with chunked HTTP as the function streams (the prelude of
 * awslambda.HttpResponseStream.from gives status and headers), with the CORS headers of cors
 * (borrowed; NULL: none) for origin. 0 (req is answered later), -EBUSY (throttled) or
 * -ENOMEM: nothing started, req is the caller's to answer. */
int lambda_url_stream(struct lambda *l, const struct fn_target *t, struct http_req *req,
                      const char *request_id, const char *event, size_t len, json_t *cors,
                      const char *origin);
void lambda_serve_code(struct http_req *req, const struct edge_auth *auth, void *arg);
void lambda_code_location(struct lambda *l, struct http_req *req, const char *hex, char *out,
                          size_t size);

#endif
