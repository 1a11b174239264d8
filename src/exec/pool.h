/*
 * pool: runs functions. Keeps warm instances per function, starts new ones
 * on demand (cold), hands each invocation to an idle instance through the
 * Lambda Runtime API, enforces the timeout, captures the instance's output
 * into its log stream with Lambda's START/END/REPORT lines, and reports the
 * outcome through the invocation's done callback.
 *
 * The pool speaks the Runtime API (that is what a Lambda execution
 * environment is), but knows nothing of the Lambda control plane: the caller
 * describes a function with a pool_fn_spec and replaces it on update.
 * Everything runs on the loop thread.
 */
#ifndef IGNIS_EXEC_POOL_H
#define IGNIS_EXEC_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/loop.h"
#include "store/logstore.h"

struct pool;
struct pool_fn;

enum pool_log_level {
    POOL_LOG_ALL = 0,
    POOL_LOG_TRACE,
    POOL_LOG_DEBUG,
    POOL_LOG_INFO,
    POOL_LOG_WARN,
    POOL_LOG_ERROR,
    POOL_LOG_FATAL,
};
/* "TRACE", "debug", "WARNING", "CRITICAL", ... as runtimes and Lambda name levels; 0 if none */
int pool_log_level_parse(const char *name, size_t len);
struct workq;
struct instance;

struct pool_fn_spec {
    const char *name;        /* function name */
    const char *version;     /* "$LATEST" */
    const char *arn;         /* Lambda-Runtime-Invoked-Function-Arn */
    const char *log_group;   /* "/aws/lambda/<name>" */
    char *const *argv;       /* what to execute: bootstrap or interpreter + script */
    char *const *envp;       /* the environment, less the per-instance variables the pool adds:
                                AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_LOG_STREAM_NAME */
    const char *cwd;         /* working directory, as the function sees it */
    const char *code_dir;    /* host path of the code (sandbox: shown at /var/task); NULL: cwd */
    const char *runtime_dir; /* host path of the runtimes (sandbox: /var/runtime), or NULL */
    unsigned tmp_mb;         /* sandbox: size of /tmp (EphemeralStorage) */
    int host_network;        /* sandbox: keep the host's network (outbound access granted) */
    unsigned timeout_ms;
    unsigned memory_mb;
    unsigned max_instances; /* 0: pool default */
    /* LoggingConfig: with log_json the platform's lines (START, REPORT, ...) are Lambda's JSON
     * records ({"time","type":"platform.*","record"}), kept from system_log_level up; and
     * the function's own JSON lines with a "level" below app_log_level are dropped, as Lambda
     * filters them (0: no filtering). Levels are enum pool_log_level. */
    int log_json;
    int system_log_level;
    int app_log_level;
    const char *zygote; /* sandbox: start instances by forking this zygote (pool_add_zygote)
                           when it is ready, argv then only says what it would run */
};

enum invocation_outcome {
    INVOCATION_OK,             /* result holds the function's response */
    INVOCATION_FUNCTION_ERROR, /* result holds the error JSON; X-Amz-Function-Error: Unhandled */
};

struct invocation {
    /* set by the caller */
    char request_id[37];
    struct buf payload;   /* the event (owned by the invocation) */
    char *client_context; /* decoded JSON or NULL (owned) */
    char *cognito_identity;
    char *invoked_arn; /* the ARN as invoked (with qualifier), or NULL: the function's */
    int want_log_tail; /* keep this invocation's log lines (last 4 KB) */
    void (*done)(struct invocation *inv, void *arg);
    void *done_arg;
    /* Optional: a response the runtime streams (Lambda-Runtime-Function-Response-Mode:
     * streaming) is handed over piece by piece as it arrives, up to 20 MB, instead of being
     * collected into result (up to 6 MB, as without on_chunk). A return < 0 drops the rest
     * (the function still runs to its end). done() is the end: result then holds only an
     * error, if any. pool_stream_pause/resume hold the runtime back (backpressure). */
    int (*on_chunk)(struct invocation *inv, const char *data, size_t len, void *arg);
    void *chunk_arg;
    /* set by the pool before done() */
    enum invocation_outcome outcome;
    struct buf result;
    struct buf log_tail;
    const char *executed_version;
    int streamed;            /* the runtime streamed its response (set before the first chunk) */
    char response_type[128]; /* the Content-Type the runtime posted its response with */
    /* the REPORT line's figures (metering, metrics); all 0 when it never ran */
    int64_t duration_us;    /* Duration */
    unsigned billed_ms;     /* Billed Duration: rounded up to 1 ms, at least 1 */
    unsigned memory_mb;     /* Memory Size (set even when it never ran) */
    unsigned max_memory_mb; /* Max Memory Used */
    double init_ms;         /* Init Duration of the cold start it waited for, else 0 */
    /* pool-private */
    enum invocation_outcome outcome_hint; /* for the report, before done() */
    struct pool_fn *fn;
    struct instance *inst;
    struct invocation *next;
    struct loop_timer *timer;
    int64_t start_us;
    int64_t deadline_ms;
};

/* sandbox_dir: start instances isolated (src/exec/sandbox), with what that
 * needs under this dir (the sandboxes' root; call sbx_isolate_mounts first);
 * NULL runs them as plain processes (ignis serve --no-sandbox).
 * cgroup_name: this daemon's group for instance limits, stable across
 * restarts (leftovers of a crashed run under it are cleaned up). Without
 * usable cgroups instances run unlimited and the pool says so. */
struct pool *pool_new(struct loop *loop, struct logstore *logs, const char *cgroup_name,
                      const char *sandbox_dir);
/* Whether instances run sandboxed: then argv, envp and cwd name paths as the
 * function sees them (/var/task, /var/runtime), not host paths. */
int pool_sandboxed(const struct pool *pool);
/* Sandboxed pools: make what cold starts need ahead on wq (network namespaces, and
 * disk-backed EphemeralStorage-sized /tmp filesystems with their images under the sandbox
 * dir: without those, /tmp is a tmpfs and the pool says so). wq must outlive the pool's use
 * of it: free the pool after workq_free and loop_run_posted. */
void pool_prepare_ahead(struct pool *pool, struct workq *wq);
/* Sandboxed instances without the host's network reach this daemon's AWS APIs at
 * 127.0.0.1:port inside their own network namespace: each connection made there is handed
 * to cb (which takes the fd). Set once, before instances start. */
typedef void (*pool_endpoint_cb)(int fd, const struct sockaddr *addr, socklen_t len, void *arg);
void pool_set_endpoint(struct pool *pool, uint16_t port, pool_endpoint_cb cb, void *arg);
/* Sandboxed instances start under the program at path (runtimes/init/ignis-init) as PID 1,
 * which reaps the function's orphans and reports how the runtime ended; without it the
 * runtime is PID 1. 0 or -errno (the file cannot be opened). */
int pool_set_init(struct pool *pool, const char *path);

/* Sandboxed pools: starts argv as a zygote named name (src/exec/sandbox/zygote.c: a program
 * that did its slow start-up once and forks a sandboxed copy of itself per instance), for
 * functions whose spec names it. It starts in the background; until it is ready (or while a
 * dead one restarts) instances start the usual way. -ENOTSUP without the sandbox. */
int pool_add_zygote(struct pool *pool, const char *name, char *const argv[], char *const envp[]);
/* Kills every instance and answers every waiting invocation with an error. */
void pool_free(struct pool *pool);
/* The Runtime API's port for an instance is opened by the pool. */

struct pool_fn *pool_fn_new(struct pool *pool, const struct pool_fn_spec *spec);
/* No new invocations; instances finish their current one and stop, waiting
 * invocations still run. The pool frees fn when nothing refers to it. */
void pool_fn_retire(struct pool_fn *fn);

/* Provisioned concurrency: keeps n instances of fn started ahead (their environment says
 * AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency), never retired for idleness or
 * memory pressure, replaced when one dies; invokes they serve report no Init Duration. They
 * serve any invoke of fn; more start on demand as usual. 0 stops provisioning (the extra
 * instances then retire like on-demand ones). */
void pool_fn_provision(struct pool_fn *fn, unsigned n);
/* How many of fn's provisioned instances have finished init (AvailableProvisioned...). */
unsigned pool_fn_provisioned_ready(const struct pool_fn *fn);

/* The daemon's own figures (Prometheus): instances by state, invocations waiting for one,
 * and cold starts served (invocations that reported an Init Duration) since start. */
struct pool_stats {
    unsigned starting, idle, busy, between;
    unsigned waiting;
    unsigned long long cold_starts;
};
void pool_stats(struct pool *pool, struct pool_stats *out);

/* Creates an invocation with a fresh request id. */
struct invocation *invocation_new(void);
void invocation_free(struct invocation *inv);
/* Queues inv; done() is called exactly once, maybe before this returns. */
void pool_invoke(struct pool_fn *fn, struct invocation *inv);
/* While inv's response streams: stop reading the runtime's upload until resumed (no-ops
 * otherwise). */
void pool_stream_pause(struct invocation *inv);
void pool_stream_resume(struct invocation *inv);

#endif
