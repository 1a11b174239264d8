/*
 * pool: function instances and the invocations they serve (see pool.h).
 *
 * An instance is one process running a Lambda runtime (a bootstrap) with its
 * own Runtime API listener on loopback; the connections the runtime opens to
 * it are handed to one shared libmicrohttpd server and mapped back to their
 * instance by socket fd. Instance states: STARTING (spawned, has not asked
 * for work yet), IDLE (its GET /next is parked), BUSY (an invocation is out),
 * and between BUSY and IDLE it has answered but not asked again. Output of
 * the process (stdout and stderr, one pipe) is split into lines and written
 * to its log stream; the pipe is drained before END/REPORT are written, which
 * is why runtimes flush their output before posting a response. Process exit
 * is watched through a pidfd. This file owns instances, their fds and
 * processes, the per-function queues, and the Runtime API server.
 */
#include "exec/pool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/log.h"
#include "core/util.h"
#include "edge/http.h"
#include "exec/cgroup.h"
#include "exec/sandbox/sandbox.h"
#include "exec/prepared.h"
#include "exec/scratch.h"

#define RUNTIME_API_PREFIX "/2018-06-01/runtime/"
#define MAX_RESPONSE_BYTES 6291556 /* Lambda's sync response limit */
#define DEFAULT_STREAM_MB 200      /* Lambda's limit of a streamed response (20 MB until 2025) */
#define LOG_TAIL_BYTES 4096
#define MAX_LOG_LINE (256 * 1024)
#define INIT_TIMEOUT_MS 10000
/* Per function; the Lambda service's concurrency limits (account: 1000) bind first. */
#define DEFAULT_MAX_INSTANCES 1000
/* Idle instances retire after IGNIS_IDLE_TIMEOUT_S (Lambda keeps them "several minutes"). */
#define DEFAULT_IDLE_TIMEOUT_S 600
#define SWEEP_MS 1000
/* Under memory pressure (MemAvailable below this, IGNIS_MIN_FREE_MB) idle instances retire. */
#define DEFAULT_MIN_FREE_MB 256
/* A provisioned instance that failed to start is replaced after this long, not at once. */
#define PROVISION_RETRY_MS 5000
/* Cold starts per loop turn (~3-7 ms each). They run from a timer, never inside the call
 * that queued the work: a burst of hundreds is first accepted whole, then started a few at a
 * time, and the instances already up serve the queue in between. */
#define SPAWN_BATCH 4
/* How long after a new instance's first answer its prepared resources are replaced. */
#define REFILL_DELAY_MS 2
#define MAX_CONNS_PER_INSTANCE 4

/* The uid/gid sandboxed instances run as (Lambda's sbx_user1051 is 993). */
#define SANDBOX_UID 993
#define SANDBOX_GID 993

enum instance_state { INST_STARTING, INST_IDLE, INST_BUSY, INST_BETWEEN };

struct instance {
    struct pool *pool;
    struct pool_fn *fn;
    enum instance_state state;
    pid_t pid;
    int pidfd, listen_fd, out_fd, status_fd;
    int endpoint_fd; /* 127.0.0.1:<edge port> in its network namespace (pool_set_endpoint) */
    int conns[MAX_CONNS_PER_INSTANCE];
    struct http_req *next_req; /* parked GET /next */
    struct http_req *upload;   /* a streamed POST /response still coming in (stream_*) */
    char upload_id[37];        /* the invocation it answers */
    size_t upload_bytes;
    int upload_dropped; /* the caller's on_chunk refused: the rest is discarded */
    struct invocation *current;
    struct buf out_partial; /* output up to the next newline */
    struct buf init_error;  /* JSON posted to /init/error */
    char init_error_type[128];
    char stream_name[96];
    struct logstream *log;
    int64_t spawn_us;
    double init_ms;
    int report_init;        /* the next REPORT carries Init Duration */
    int refill_after_first; /* prepare_next once its first invocation is answered */
    int init_reported;      /* an INIT_REPORT line was written */
    int exec_errno;         /* why execve failed in the child, or 0 */
    int exit_fd;            /* under ignis-init: where it writes the runtime's wait status */
    struct cgroup *cg;      /* memory and pids limits; NULL without cgroups */
    struct buf init_log;    /* output before the first invocation, for a failed init's tail */
    int killed;
    int provisioned;       /* started for provisioned concurrency */
    int64_t idle_since_us; /* when it last became idle */
    struct loop_timer *init_timer;
    struct instance *next_idle;
    struct instance *prev, *next; /* all instances of the pool */
};

struct pool_fn {
    struct pool *pool;
    char *name, *version, *arn, *log_group, *cwd, *code_dir, *runtime_dir;
    unsigned tmp_mb;
    int host_network;
    char **argv, **envp;
    char *zygote; /* pool_zygote name, or NULL */
    unsigned timeout_ms, memory_mb, max_instances;
    int log_json, system_log_level, app_log_level; /* pool_fn_spec */
    int retired;
    struct instance *idle; /* stack: most recently used first */
    struct invocation *queue_head, *queue_tail;
    unsigned nqueue, ninstances, nstarting;
    unsigned nbetween;                  /* answered, not yet asking again: about to be free */
    unsigned provisioned, nprovisioned; /* wanted and running provisioned instances */
    struct loop_timer *provision_timer; /* retry after a provisioned start failed */
    struct loop_timer *spawn_timer;     /* more cold starts, next loop turn */
    int spawning; /* in spawn_some: a done() callback that retires fn must not free it */
};

/* A zygote (src/exec/sandbox/zygote.c) that functions name in pool_fn_spec.zygote. */
#define MAX_ZYGOTES 4
#define ZYGOTE_RESTART_US (5 * 1000000LL)
struct pool_zygote {
    char name[32];
    char **argv, **envp;
    struct sbx_zygote *z;
    int64_t started_us;
};

struct pool {
    struct loop *loop;
    struct logstore *logs;
    struct http_server *rt;
    struct instance **by_fd;
    int nby_fd;
    struct instance *all;
    int stopping; /* pool_free: start nothing new */
    int sandbox;  /* instances start through sbx_spawn */
    struct sbx_root *root;
    char sandbox_dir[4000];
    struct cgroup_root *cg_root;
    int cpu_limit; /* instances get CPU in proportion to memory after init */
    int64_t idle_timeout_us;
    size_t stream_max_bytes; /* IGNIS_STREAM_MAX_MB */
    uint64_t min_free_bytes;
    struct loop_timer *sweep_timer;  /* retires idle instances */
    struct scratch *scratch;         /* makes disk-backed /tmp filesystems, or NULL: tmpfs */
    struct prepared_set *tmp_set;    /* ready /tmp filesystems, by size in MB */
    struct prepared_set *net_set;    /* ready network namespaces with their listener */
    struct prepared_set *cg_set;     /* ready cgroups (no memory limit yet) */
    unsigned long long prepared_seq; /* their names, made on the work queue */
    /* refills asked for after a first answer, made a little later (refill_soon) */
    struct loop_timer *refill_timer;
    unsigned refill_tmp_mb[4];
    int nrefill_tmp, refill_net;
    unsigned long long spawn_seq;
    /* invocations that reported an Init Duration (pool_stats) */
    unsigned long long cold_starts;
    struct pool_zygote zygotes[MAX_ZYGOTES]; /* pool_add_zygote */
    int nzygotes;
    int init_fd;            /* pool_set_init: ignis-init, PID 1 of sandboxed instances, or -1 */
    uint16_t endpoint_port; /* pool_set_endpoint */
    pool_endpoint_cb endpoint_cb;
    void *endpoint_arg;
};

static void instance_kill(struct instance *inst);
static void maybe_spawn(struct pool_fn *fn);
static void stream_answer(struct instance *inst, unsigned status, const char *type,
                          const char *msg);
static void provision_later(struct pool_fn *fn);
static void fn_maybe_free(struct pool_fn *fn);
static void prepare_next(struct pool *pool, struct pool_fn *fn);
static void refill_soon(struct pool *pool, struct pool_fn *fn);

/*=== Small helpers ===*/

/* Every state change goes through here so the per-function counts the
 * scaler reads stay true. */
static void set_state(struct instance *inst, enum instance_state state)
{
    struct pool_fn *fn = inst->fn;
    if (inst->state == INST_STARTING && state != INST_STARTING)
        fn->nstarting--;
    if (inst->state == INST_BETWEEN)
        fn->nbetween--;
    if (state == INST_BETWEEN)
        fn->nbetween++;
    inst->state = state;
}

/* The size of fn's /tmp (EphemeralStorage) in MB. */
static unsigned tmp_mb_of(const struct pool_fn *fn)
{
    return fn->tmp_mb ? fn->tmp_mb : SBX_DEFAULT_TMP_MB;
}

static char **strv_dup(char *const *v, size_t extra)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **out = calloc(n + extra + 1, sizeof(*out));
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        out[i] = strdup(v[i]);
    return out;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void json_error(struct buf *out, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void json_error(struct buf *out, const char *type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *doc = json_pack("{s:s, s:s}", "errorType", type, "errorMessage", msg);
    char *text = json_dumps(doc, JSON_COMPACT);
    buf_reset(out);
    if (text)
        buf_puts(out, text);
    free(text);
    json_decref(doc);
}

/*=== Logs ===*/

static void log_line(struct instance *inst, const char *msg, size_t len)
{
    logstream_put(inst->log, now_ms(), msg, len);
    if (inst->state == INST_STARTING && inst->init_log.len < LOG_TAIL_BYTES) {
        buf_append(&inst->init_log, msg, len);
        buf_putc(&inst->init_log, '\n');
    }
    struct invocation *inv = inst->current;
    if (inv && inv->want_log_tail) {
        buf_append(&inv->log_tail, msg, len);
        buf_putc(&inv->log_tail, '\n');
        if (inv->log_tail.len > 4 * LOG_TAIL_BYTES)
            buf_consume(&inv->log_tail, inv->log_tail.len - LOG_TAIL_BYTES);
    }
}

static void log_printf(struct instance *inst, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_printf(struct instance *inst, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 1)
        n = sizeof(line) - 1;
    log_line(inst, line, (size_t)n);
}

int pool_log_level_parse(const char *name, size_t len)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {{"TRACE", POOL_LOG_TRACE}, {"DEBUG", POOL_LOG_DEBUG},   {"INFO", POOL_LOG_INFO},
                 {"WARN", POOL_LOG_WARN},   {"WARNING", POOL_LOG_WARN},  {"ERROR", POOL_LOG_ERROR},
                 {"FATAL", POOL_LOG_FATAL}, {"CRITICAL", POOL_LOG_FATAL}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == len && strncasecmp(names[i].name, name, len) == 0)
            return names[i].level;
    return 0;
}

/* Lambda's filter for the application logs of JSON-format functions: a line that is a JSON
 * object whose "level" is below the function's ApplicationLogLevel is dropped; anything else
 * (not JSON, no or an unknown level) counts as INFO. */
static int below_app_level(const struct pool_fn *fn, const char *line, size_t len)
{
    if (!fn->log_json || fn->app_log_level <= POOL_LOG_TRACE)
        return 0;
    int level = POOL_LOG_INFO;
    if (len > 1 && line[0] == '{') {
        json_t *doc = json_loadb(line, len, 0, NULL);
        const char *name = json_string_value(json_object_get(doc, "level"));
        int parsed = name ? pool_log_level_parse(name, strlen(name)) : 0;
        if (parsed)
            level = parsed;
        json_decref(doc);
    }
    return level < fn->app_log_level;
}

/* A platform line in JSON format: {"time","type","record"} as Lambda writes them to
 * CloudWatch (the Telemetry API's schema), kept from the function's system log level up.
 * Takes record. */
static void platform_json(struct instance *inst, int level, const char *type, json_t *record)
{
    if (level >= inst->fn->system_log_level) {
        char ts[32];
        format_iso8601_ms(now_ms(), ts);
        json_t *doc = json_pack("{s:s, s:s, s:O}", "time", ts, "type", type, "record", record);
        char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (text)
            log_line(inst, text, strlen(text));
        free(text);
        json_decref(doc);
    }
    json_decref(record);
}

static void log_start(struct instance *inst, struct invocation *inv)
{
    if (inst->fn->log_json)
        platform_json(
            inst, POOL_LOG_INFO, "platform.start",
            json_pack("{s:s, s:s}", "requestId", inv->request_id, "version", inst->fn->version));
    else
        log_printf(inst, "START RequestId: %s Version: %s", inv->request_id, inst->fn->version);
}

/* Reads what the process wrote so far and logs its complete lines. */
static void drain_output(struct instance *inst, int final)
{
    char chunk[65536];
    while (inst->out_fd >= 0) {
        ssize_t n = read(inst->out_fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        buf_append(&inst->out_partial, chunk, (size_t)n);
        size_t start = 0;
        for (size_t i = 0; i < inst->out_partial.len; i++) {
            if (inst->out_partial.data[i] == '\n') {
                if (!below_app_level(inst->fn, inst->out_partial.data + start, i - start))
                    log_line(inst, inst->out_partial.data + start, i - start);
                start = i + 1;
            }
        }
        buf_consume(&inst->out_partial, start);
        if (inst->out_partial.len > MAX_LOG_LINE) {
            log_line(inst, inst->out_partial.data, inst->out_partial.len);
            buf_reset(&inst->out_partial);
        }
        if ((size_t)n < sizeof(chunk))
            break;
    }
    if (final && inst->out_partial.len > 0) {
        log_line(inst, inst->out_partial.data, inst->out_partial.len);
        buf_reset(&inst->out_partial);
    }
}

static void on_output(struct loop *loop, int fd, uint32_t events, void *arg)
{
    (void)loop;
    (void)fd;
    struct instance *inst = arg;
    drain_output(inst, 0);
    if (events & (EPOLLHUP | EPOLLERR)) {
        /* the process closed its output; exit is handled through the pidfd */
        loop_del_fd(inst->pool->loop, inst->out_fd);
    }
}

static unsigned max_memory_used_mb(struct instance *inst)
{
    if (inst->cg)
        return (unsigned)((cgroup_peak_memory(inst->cg) + (1 << 20) - 1) >> 20);
    if (inst->status_fd < 0)
        return 0;
    char text[4096];
    ssize_t n = pread(inst->status_fd, text, sizeof(text) - 1, 0);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    const char *p = strstr(text, "VmHWM:");
    if (!p)
        return 0;
    long kb = strtol(p + 6, NULL, 10);
    return (unsigned)((kb + 1023) / 1024);
}

static void init_report(struct instance *inst, const char *status)
{
    if (inst->init_reported)
        return;
    inst->init_reported = 1;
    char type[160] = "";
    double ms = (double)(mono_us() - inst->spawn_us) / 1000.0;
    int with_type = inst->init_error_type[0] && strcmp(status, "error") == 0;
    if (inst->fn->log_json) {
        json_t *rec = json_pack("{s:s, s:s, s:s, s:{s:f}}", "initializationType",
                                inst->provisioned ? "provisioned-concurrency" : "on-demand",
                                "phase", "init", "status", status, "metrics", "durationMs", ms);
        if (with_type)
            json_object_set_new(rec, "errorType", json_string(inst->init_error_type));
        platform_json(inst, POOL_LOG_INFO, "platform.initReport", rec);
        return;
    }
    if (with_type)
        snprintf(type, sizeof(type), "\tError Type: %s", inst->init_error_type);
    log_printf(inst, "INIT_REPORT Init Duration: %.2f ms\tPhase: init\tStatus: %s%s", ms, status,
               type);
}

/* Why the runtime could not be started, in AWS's words (Go's error strings). */
static void entrypoint_error(struct buf *out, const char *request_id, const char *path, int err)
{
    if (err == ENOENT) {
        json_error(out, "Runtime.InvalidEntrypoint",
                   "RequestId: %s Error: Couldn't find valid bootstrap(s): [%s]", request_id, path);
        return;
    }
    char why[128];
    snprintf(why, sizeof(why), "%s", strerror(err));
    why[0] = (char)tolower((unsigned char)why[0]);
    json_error(out,
               err == EACCES || err == ENOEXEC ? "Runtime.InvalidEntrypoint" : "Runtime.ExitError",
               "RequestId: %s Error: fork/exec %s: %s", request_id, path, why);
}

/*=== Finishing invocations ===*/

static void write_report(struct instance *inst, struct invocation *inv, const char *status)
{
    double dur_ms = (double)(mono_us() - inv->start_us) / 1000.0;
    long long billed = (long long)dur_ms + ((double)(long long)dur_ms < dur_ms ? 1 : 0);
    if (billed < 1)
        billed = 1;
    char init[64] = "", st[64] = "";
    inv->duration_us = mono_us() - inv->start_us;
    inv->billed_ms = (unsigned)billed;
    inv->max_memory_mb = max_memory_used_mb(inst);
    if (inst && inst->report_init) {
        snprintf(init, sizeof(init), "\tInit Duration: %.2f ms", inst->init_ms);
        inst->report_init = 0;
        inv->init_ms = inst->init_ms;
        inst->pool->cold_starts++;
    }
    if (inst->fn->log_json) {
        /* the Telemetry API's statuses: what the text form says, else success or error */
        const char *s = status                                           ? status
                        : inv->outcome_hint == INVOCATION_FUNCTION_ERROR ? "error"
                                                                         : "success";
        if (status && strcmp(status, "error") == 0)
            s = "failure"; /* the runtime died */
        platform_json(inst, POOL_LOG_DEBUG, "platform.runtimeDone",
                      json_pack("{s:s, s:s}", "requestId", inv->request_id, "status", s));
        json_t *metrics = json_pack(
            "{s:f, s:I, s:i, s:i}", "durationMs", dur_ms, "billedDurationMs", (json_int_t)billed,
            "memorySizeMB", (int)inv->fn->memory_mb, "maxMemoryUsedMB", (int)inv->max_memory_mb);
        if (init[0])
            json_object_set_new(metrics, "initDurationMs", json_real(inv->init_ms));
        platform_json(inst, POOL_LOG_INFO, "platform.report",
                      json_pack("{s:s, s:o, s:s}", "requestId", inv->request_id, "metrics", metrics,
                                "status", s));
        return;
    }
    if (status)
        snprintf(st, sizeof(st), "\tStatus: %s", status);
    log_printf(inst, "END RequestId: %s", inv->request_id);
    log_printf(inst,
               "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %lld ms\tMemory Size: "
               "%u MB\tMax Memory Used: %u MB%s%s",
               inv->request_id, dur_ms, billed, inv->fn->memory_mb, inv->max_memory_mb, init, st);
}

/* Hands the outcome to the caller. inst may be NULL (never dispatched). */
static void complete(struct invocation *inv, enum invocation_outcome outcome)
{
    if (inv->timer) {
        loop_timer_cancel(inv->fn->pool->loop, inv->timer);
        inv->timer = NULL;
    }
    if (inv->log_tail.len > LOG_TAIL_BYTES)
        buf_consume(&inv->log_tail, inv->log_tail.len - LOG_TAIL_BYTES);
    inv->outcome = outcome;
    inv->executed_version = inv->fn->version;
    inv->memory_mb = inv->fn->memory_mb;
    inv->inst = NULL;
    inv->done(inv, inv->done_arg);
}

static void finish_current(struct instance *inst, enum invocation_outcome outcome,
                           const char *status)
{
    struct invocation *inv = inst->current;
    drain_output(inst, 1); /* a last line without newline is still this invocation's */
    inv->outcome_hint = outcome;
    write_report(inst, inv, status);
    if (inst->refill_after_first) {
        inst->refill_after_first = 0;
        refill_soon(inst->pool, inst->fn);
    }
    inst->current = NULL;
    set_state(inst, INST_BETWEEN);
    complete(inv, outcome);
}

/*=== Dispatch ===*/

static void on_timeout(struct loop *loop, void *arg)
{
    (void)loop;
    struct invocation *inv = arg;
    inv->timer = NULL;
    struct instance *inst = inv->inst;
    double secs = inv->fn->timeout_ms / 1000.0;
    char ts[32];
    format_iso8601_ms(now_ms(), ts);
    drain_output(inst, 1);
    log_printf(inst, "%s %s Task timed out after %.2f seconds", ts, inv->request_id, secs);
    json_error(&inv->result, "Sandbox.Timedout",
               "RequestId: %s Error: Task timed out after %.2f seconds", inv->request_id, secs);
    finish_current(inst, INVOCATION_FUNCTION_ERROR, "timeout");
    instance_kill(inst);
}

static void trace_id(char out[96])
{
    unsigned char r[20];
    random_bytes(r, sizeof(r));
    char a[25], b[17];
    hex_encode(r, 12, a);
    hex_encode(r + 12, 8, b);
    snprintf(out, 96, "Root=1-%08lx-%s;Parent=%s;Sampled=0", (unsigned long)(now_ms() / 1000), a,
             b);
}

static void dispatch(struct instance *inst, struct invocation *inv)
{
    struct http_req *req = inst->next_req;
    inst->next_req = NULL;
    inst->current = inv;
    set_state(inst, INST_BUSY);
    inv->inst = inst;
    inv->start_us = mono_us();
    inv->deadline_ms = now_ms() + inst->fn->timeout_ms;
    log_start(inst, inv);
    inv->timer = loop_timer_add(inst->pool->loop, inst->fn->timeout_ms, on_timeout, inv);

    char deadline[24], trace[96];
    snprintf(deadline, sizeof(deadline), "%lld", (long long)inv->deadline_ms);
    trace_id(trace);
    http_req_add_header(req, "Lambda-Runtime-Aws-Request-Id", inv->request_id);
    http_req_add_header(req, "Lambda-Runtime-Deadline-Ms", deadline);
    http_req_add_header(req, "Lambda-Runtime-Invoked-Function-Arn",
                        inv->invoked_arn ? inv->invoked_arn : inst->fn->arn);
    http_req_add_header(req, "Lambda-Runtime-Trace-Id", trace);
    if (inv->client_context)
        http_req_add_header(req, "Lambda-Runtime-Client-Context", inv->client_context);
    if (inv->cognito_identity)
        http_req_add_header(req, "Lambda-Runtime-Cognito-Identity", inv->cognito_identity);
    http_reply(req, 200, "application/json", inv->payload.data ? inv->payload.data : "",
               inv->payload.len);
}

static struct invocation *dequeue(struct pool_fn *fn)
{
    struct invocation *inv = fn->queue_head;
    if (inv) {
        fn->queue_head = inv->next;
        if (!fn->queue_head)
            fn->queue_tail = NULL;
        inv->next = NULL;
        fn->nqueue--;
    }
    return inv;
}

void pool_invoke(struct pool_fn *fn, struct invocation *inv)
{
    inv->fn = fn;
    struct instance *inst = fn->idle;
    if (inst) {
        fn->idle = inst->next_idle;
        inst->next_idle = NULL;
        dispatch(inst, inv);
        return;
    }
    if (fn->queue_tail)
        fn->queue_tail->next = inv;
    else
        fn->queue_head = inv;
    fn->queue_tail = inv;
    fn->nqueue++;
    maybe_spawn(fn);
}

/*=== Instance lifecycle ===*/

static void on_init_timeout(struct loop *loop, void *arg)
{
    (void)loop;
    struct instance *inst = arg;
    inst->init_timer = NULL;
    init_report(inst, "timeout");
    snprintf(inst->init_error_type, sizeof(inst->init_error_type), "Sandbox.Timedout");
    instance_kill(inst);
}

static void remove_idle(struct instance *inst)
{
    for (struct instance **pp = &inst->fn->idle; *pp; pp = &(*pp)->next_idle) {
        if (*pp == inst) {
            *pp = inst->next_idle;
            break;
        }
    }
    inst->next_idle = NULL;
}

static void exit_description(int status, char *out, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(out, size, "signal: %s",
                 WTERMSIG(status) == SIGKILL ? "killed" : strsignal(WTERMSIG(status)));
    else
        snprintf(out, size, "exit status %d", WEXITSTATUS(status));
}

/* The process is gone: answer whatever it owed, release everything. */
static void instance_reap(struct instance *inst, int status)
{
    struct pool *pool = inst->pool;
    struct pool_fn *fn = inst->fn;
    int runtime_status; /* under ignis-init: how the runtime ended, not init */
    if (inst->exit_fd >= 0 && read(inst->exit_fd, &runtime_status, sizeof(runtime_status)) ==
                                  (ssize_t)sizeof(runtime_status))
        status = runtime_status;
    if (inst->provisioned) {
        fn->nprovisioned--;
        if (inst->state == INST_STARTING && !pool->stopping)
            provision_later(fn); /* a failing init is not restarted in a loop */
    }
    drain_output(inst, 1);
    char how[64];
    exit_description(status, how, sizeof(how));

    int oom = inst->cg && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
              cgroup_oom_killed(inst->cg) > 0;
    if (inst->current) {
        struct invocation *inv = inst->current;
        json_error(&inv->result, oom ? "Runtime.OutOfMemory" : "Runtime.ExitError",
                   "RequestId: %s Error: Runtime exited with error: %s", inv->request_id, how);
        log_printf(inst, "RequestId: %s Error: Runtime exited with error: %s\nRuntime.ExitError",
                   inv->request_id, how);
        finish_current(inst, INVOCATION_FUNCTION_ERROR, "error");
    } else if (inst->state == INST_STARTING) {
        /* Init failed: the invocation that caused this start gets the error. */
        set_state(inst, INST_BETWEEN);
        struct invocation *inv = dequeue(fn);
        if (!inst->killed)
            init_report(inst, "error");
        if (inv) {
            inv->inst = inst;
            inst->current = inv;
            inv->start_us = mono_us();
            if (inv->want_log_tail) /* what init printed explains the failure */
                buf_append(&inv->log_tail, inst->init_log.data ? inst->init_log.data : "",
                           inst->init_log.len);
            log_start(inst, inv);
            if (inst->init_error.len > 0) {
                buf_reset(&inv->result);
                buf_append(&inv->result, inst->init_error.data, inst->init_error.len);
            } else if (strcmp(inst->init_error_type, "Sandbox.Timedout") == 0) {
                json_error(&inv->result, "Sandbox.Timedout",
                           "RequestId: %s Error: Task timed out after %.2f seconds",
                           inv->request_id, INIT_TIMEOUT_MS / 1000.0);
            } else if (inst->exec_errno) {
                entrypoint_error(&inv->result, inv->request_id, fn->argv[0], inst->exec_errno);
            } else {
                json_error(&inv->result, "Runtime.ExitError",
                           "RequestId: %s Error: Runtime exited with error: %s", inv->request_id,
                           how);
            }
            finish_current(inst, INVOCATION_FUNCTION_ERROR, "error");
        }
    }
    if (inst->next_req) {
        struct http_req *req = inst->next_req;
        inst->next_req = NULL;
        http_reply(req, 500, "application/json", "{}", 2);
    }
    stream_answer(inst, 410, "Gone", "the instance is gone");
    if (inst->state == INST_IDLE)
        remove_idle(inst);
    set_state(inst, INST_IDLE); /* leaves the counts */
    if (inst->init_timer)
        loop_timer_cancel(pool->loop, inst->init_timer);

    /* release */
    for (int i = 0; i < MAX_CONNS_PER_INSTANCE; i++)
        if (inst->conns[i] >= 0 && inst->conns[i] < pool->nby_fd)
            pool->by_fd[inst->conns[i]] = NULL;
    loop_del_fd(pool->loop, inst->pidfd);
    close(inst->pidfd);
    if (inst->listen_fd >= 0) {
        loop_del_fd(pool->loop, inst->listen_fd);
        close(inst->listen_fd);
    }
    if (inst->endpoint_fd >= 0) {
        loop_del_fd(pool->loop, inst->endpoint_fd);
        close(inst->endpoint_fd);
    }
    if (inst->out_fd >= 0) {
        loop_del_fd(pool->loop, inst->out_fd);
        close(inst->out_fd);
    }
    if (inst->status_fd >= 0)
        close(inst->status_fd);
    if (inst->exit_fd >= 0)
        close(inst->exit_fd);
    cgroup_destroy(inst->cg); /* kills stragglers, removes the group */
    logstore_stream_close(pool->logs, inst->log);
    buf_release(&inst->out_partial);
    buf_release(&inst->init_error);
    buf_release(&inst->init_log);
    if (inst->prev)
        inst->prev->next = inst->next;
    else
        pool->all = inst->next;
    if (inst->next)
        inst->next->prev = inst->prev;
    fn->ninstances--;
    free(inst);
    maybe_spawn(fn);
    fn_maybe_free(fn);
}

static void on_pidfd(struct loop *loop, int fd, uint32_t events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    struct instance *inst = arg;
    int status = 0;
    pid_t r;
    do
        r = waitpid(inst->pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return;
    instance_reap(inst, status);
}

static void instance_kill(struct instance *inst)
{
    if (inst->killed)
        return;
    inst->killed = 1;
    kill(-inst->pid, SIGKILL);
    kill(inst->pid, SIGKILL);
    if (inst->cg)
        cgroup_kill(inst->cg); /* also what left the process group */
}

/* A function calling this daemon's AWS APIs from inside its sandbox. */
static void on_endpoint_accept(struct loop *loop, int fd, uint32_t events, void *arg)
{
    (void)loop;
    (void)events;
    struct pool *pool = arg;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int c = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0)
            return;
        pool->endpoint_cb(c, (struct sockaddr *)&ss, len, pool->endpoint_arg);
    }
}

int pool_set_init(struct pool *pool, const char *path)
{
    if (!pool->sandbox)
        return 0; /* host processes: nothing to be PID 1 of */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (pool->init_fd >= 0)
        close(pool->init_fd);
    pool->init_fd = fd;
    return 0;
}

void pool_set_endpoint(struct pool *pool, uint16_t port, pool_endpoint_cb cb, void *arg)
{
    pool->endpoint_port = port;
    pool->endpoint_cb = cb;
    pool->endpoint_arg = arg;
}

static void on_accept(struct loop *loop, int fd, uint32_t events, void *arg)
{
    (void)loop;
    (void)events;
    struct instance *inst = arg;
    struct pool *pool = inst->pool;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int c = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0)
            return;
        int slot = -1;
        for (int i = 0; i < MAX_CONNS_PER_INSTANCE; i++)
            if (inst->conns[i] < 0 || inst->conns[i] >= pool->nby_fd ||
                pool->by_fd[inst->conns[i]] != inst)
                slot = i;
        if (slot < 0) {
            close(c); /* a runtime needs one connection, a few at most */
            continue;
        }
        if (c >= pool->nby_fd) {
            int n = pool->nby_fd ? pool->nby_fd : 256;
            while (n <= c)
                n *= 2;
            struct instance **m = realloc(pool->by_fd, (size_t)n * sizeof(*m));
            if (!m) {
                close(c);
                continue;
            }
            memset(m + pool->nby_fd, 0, (size_t)(n - pool->nby_fd) * sizeof(*m));
            pool->by_fd = m;
            pool->nby_fd = n;
        }
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pool->by_fd[c] = inst;
        inst->conns[slot] = c;
        if (http_server_add_connection(pool->rt, c, (struct sockaddr *)&ss, len) < 0)
            pool->by_fd[c] = NULL;
    }
}

static void on_conn_closed(int fd, void *arg)
{
    struct pool *pool = arg;
    if (fd >= 0 && fd < pool->nby_fd)
        pool->by_fd[fd] = NULL;
}

static int open_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static void stream_name(const char *version, char out[96])
{
    unsigned char r[16];
    char hex[33], day[16];
    random_bytes(r, sizeof(r));
    hex_encode(r, 16, hex);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, sizeof(day), "%Y/%m/%d", &tm);
    snprintf(out, 96, "%s/[%.16s]%s", day, version, hex);
}

/* Starts the process without isolation: fork, own process group, execve.
 * An exec failure comes back over a close-on-exec pipe and is answered when
 * the process exits (instance_reap). */
static int launch_forked(struct instance *inst, char **envp, int out[2])
{
    struct pool_fn *fn = inst->fn;
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0)
        return -errno;
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        close(report[0]);
        close(report[1]);
        if (devnull >= 0)
            close(devnull);
        return e;
    }
    if (pid == 0) {
        /* child: async-signal-safe calls only */
        setpgid(0, 0);
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGPIPE, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        int err = 0;
        if (inst->cg && cgroup_attach_self(inst->cg) < 0)
            err = -1; /* not an exec error: reported as the runtime failing */
        else if (chdir(fn->cwd) < 0)
            err = errno;
        else {
            execve(fn->argv[0], fn->argv, envp);
            err = errno;
        }
        ssize_t w = write(report[1], &err, sizeof(err));
        (void)w;
        _exit(127);
    }
    if (devnull >= 0)
        close(devnull);
    close(report[1]);
    int child_err = 0;
    ssize_t got;
    do
        got = read(report[0], &child_err, sizeof(child_err));
    while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == sizeof(child_err) && child_err < 0) {
        log_error("instance of %s could not enter its cgroup", fn->name);
    } else if (got == sizeof(child_err) && child_err != 0) {
        inst->exec_errno = child_err;
        snprintf(inst->init_error_type, sizeof(inst->init_error_type), "%s",
                 child_err == ENOENT || child_err == EACCES || child_err == ENOEXEC
                     ? "Runtime.InvalidEntrypoint"
                     : "Runtime.ExitError");
    }
    inst->pid = pid;
    inst->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (inst->pidfd < 0) {
        int e = -errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return e;
    }
    fcntl(inst->pidfd, F_SETFD, FD_CLOEXEC);
    return 0;
}

/* The named zygote if it is ready to fork; one that died is started again (not more
 * often than every ZYGOTE_RESTART_US), and meanwhile instances start the slow way. */
static struct sbx_zygote *zygote_ready(struct pool *pool, const char *name)
{
    for (int i = 0; i < pool->nzygotes; i++) {
        struct pool_zygote *pz = &pool->zygotes[i];
        if (strcmp(pz->name, name) != 0)
            continue;
        int ready = sbx_zygote_ready(pz->z);
        if (ready > 0)
            return pz->z;
        if (ready < 0 && mono_us() - pz->started_us > ZYGOTE_RESTART_US) {
            log_warn("zygote %s is gone; starting it again", name);
            sbx_zygote_free(pz->z);
            pz->z = sbx_zygote_start(pz->argv, pz->envp);
            pz->started_us = mono_us();
        }
        return NULL;
    }
    return NULL;
}

int pool_add_zygote(struct pool *pool, const char *name, char *const argv[], char *const envp[])
{
    if (!pool->sandbox)
        return -ENOTSUP;
    if (pool->nzygotes == MAX_ZYGOTES || strlen(name) >= sizeof(pool->zygotes[0].name))
        return -ENOSPC;
    struct pool_zygote *pz = &pool->zygotes[pool->nzygotes];
    snprintf(pz->name, sizeof(pz->name), "%s", name);
    pz->argv = strv_dup(argv, 0);
    pz->envp = strv_dup(envp, 0);
    pz->z = pz->argv && pz->envp ? sbx_zygote_start(pz->argv, pz->envp) : NULL;
    pz->started_us = mono_us();
    if (!pz->z) {
        int e = errno ? -errno : -ENOMEM;
        strv_free(pz->argv);
        strv_free(pz->envp);
        return e;
    }
    pool->nzygotes++;
    return 0;
}

/* Starts the process in its own sandbox (src/exec/sandbox): the Runtime API
 * listener comes back from inside its network namespace. An exec failure is
 * known at once: *exec_errno says why and nothing is left running. */
static int launch_sandboxed(struct instance *inst, char **envp, int out[2], int *exec_errno)
{
    struct pool_fn *fn = inst->fn;
    struct pool *pool = inst->pool;
    unsigned tmp_mb = tmp_mb_of(fn);
    struct prepared tmp = {.fd = {-1, -1}}, net = {.fd = {-1, -1}};
    int rc;
    if (pool->tmp_set && (rc = prepared_take(pool->tmp_set, tmp_mb, &tmp)) < 0)
        log_warn("an instance of %s gets a tmpfs /tmp (counted as memory): %s", fn->name,
                 strerror(-rc));
    if (pool->net_set && !fn->host_network)
        prepared_take(pool->net_set, 0, &net); /* else the sandbox makes one */
    int want_endpoint = pool->endpoint_cb && !fn->host_network;
    int status[2] = {-1, -1}; /* ignis-init tells the runtime's end there */
    if (pool->init_fd >= 0 && pipe2(status, O_CLOEXEC | O_NONBLOCK) < 0)
        log_warn("an instance of %s runs as PID 1 (no reaper): pipe: %s", fn->name,
                 strerror(errno));
    struct sbx_spec spec = {
        .root = pool->root,
        .argv = fn->argv,
        .envp = envp,
        .code_dir = fn->code_dir,
        .runtime_dir = fn->runtime_dir,
        .cwd = fn->cwd,
        .tmp_mount_fd = tmp.fd[0],
        .tmp_mb = tmp_mb,
        .uid = SANDBOX_UID,
        .gid = SANDBOX_GID,
        .host_network = fn->host_network,
        .netns_fd = net.fd[0],
        /* the daemon's AWS endpoint inside the instance's own network namespace */
        .extra_port = want_endpoint && net.fd[0] < 0 ? pool->endpoint_port : 0,
        .stdout_fd = out[1],

        /* without a cgroup, what rlimits can do */
        .rlimit_data = inst->cg ? 0 : (uint64_t)fn->memory_mb << 20,
        .rlimit_nproc = inst->cg ? 0 : CGROUP_DEFAULT_PIDS_MAX,
        .init_fd = status[1] >= 0 ? pool->init_fd : -1,
        .status_fd = status[1],
    };
    if (inst->cg)
        spec.ncg_fds = cgroup_attach_fds(inst->cg, spec.cg_fds);
    struct sbx_child child = {.pid = -1, .pidfd = -1, .api_listen_fd = -1, .extra_listen_fd = -1};
    char err[256];
    struct sbx_zygote *z = fn->zygote ? zygote_ready(pool, fn->zygote) : NULL;
    rc = z ? sbx_zygote_spawn(z, &spec, &child, err, sizeof(err)) : -EAGAIN;
    if (rc < 0 && child.failed_step == SBX_STEP_NONE) {
        if (z)
            log_warn("zygote %s: %s; starting %s the slow way", fn->zygote, err, fn->name);
        rc = sbx_spawn(&spec, &child, err, sizeof(err));
    }
    prepared_close(&tmp); /* the instance's namespaces hold them now */
    if (status[1] >= 0)
        close(status[1]);
    if (rc < 0 && status[0] >= 0)
        close(status[0]);
    else
        inst->exit_fd = status[0];
    int endpoint_fd = child.extra_listen_fd;
    if (rc == 0 && want_endpoint && net.fd[0] >= 0) /* a prepared namespace: ours to add to */
        endpoint_fd = sbx_netns_listen(net.fd[0], pool->endpoint_port);
    if (net.fd[0] >= 0) {
        close(net.fd[0]);
        net.fd[0] = -1;
        child.api_listen_fd = net.fd[1];
        if (rc < 0)
            prepared_close(&net);
    }
    if (rc < 0) {
        if (child.failed_step == SBX_STEP_EXEC)
            *exec_errno = -rc;
        else
            log_error("cannot sandbox an instance of %s: %s", fn->name, err);
        return rc;
    }
    inst->pid = child.pid;
    inst->pidfd = child.pidfd;
    if (child.api_listen_fd >= 0) /* else: host network, the listener spawn() opened */
        inst->listen_fd = child.api_listen_fd;
    inst->endpoint_fd = endpoint_fd;
    if (want_endpoint && endpoint_fd < 0)
        log_warn("an instance of %s cannot reach the AWS endpoint: %s", fn->name,
                 strerror(-endpoint_fd));
    return 0;
}

/* The first child of pid (ignis-init's: the runtime), or pid if none shows. */
static pid_t first_child(pid_t pid)
{
    char path[64], text[32];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return pid;
    text[n] = '\0';
    long child = strtol(text, NULL, 10);
    return child > 0 ? (pid_t)child : pid;
}

static int spawn(struct pool_fn *fn, int provisioned, int *exec_errno)
{
    struct pool *pool = fn->pool;
    struct instance *inst = calloc(1, sizeof(*inst));
    if (!inst)
        return -ENOMEM;
    inst->pool = pool;
    inst->fn = fn;
    inst->provisioned = provisioned;
    inst->pidfd = inst->listen_fd = inst->out_fd = inst->status_fd = inst->endpoint_fd = -1;
    inst->exit_fd = -1;
    for (int i = 0; i < MAX_CONNS_PER_INSTANCE; i++)
        inst->conns[i] = -1;
    int out[2] = {-1, -1}, port = 9001, rc;
    char **envp = NULL;

    /* The Runtime API listener: on the host's loopback, unless the sandbox
     * makes one at 127.0.0.1:9001 inside the instance's own network. */
    if (!pool->sandbox || fn->host_network) {
        rc = open_listener(&port);
        if (rc < 0)
            goto error;
        inst->listen_fd = rc;
    }
    if (pipe2(out, O_CLOEXEC) < 0) {
        rc = -errno;
        goto error;
    }
    stream_name(fn->version, inst->stream_name);
    size_t n = 0;
    while (fn->envp[n])
        n++;
    envp = strv_dup(fn->envp, 2);
    if (!envp) {
        rc = -ENOMEM;
        goto error;
    }
    if (asprintf(&envp[n], "AWS_LAMBDA_RUNTIME_API=127.0.0.1:%d", port) < 0 ||
        asprintf(&envp[n + 1], "AWS_LAMBDA_LOG_STREAM_NAME=%s", inst->stream_name) < 0) {
        rc = -ENOMEM;
        goto error;
    }
    static const char init_type[] = "AWS_LAMBDA_INITIALIZATION_TYPE=";
    for (size_t i = 0; provisioned && i < n; i++)
        if (strncmp(envp[i], init_type, sizeof(init_type) - 1) == 0) {
            free(envp[i]);
            if (!(envp[i] = strdup("AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency"))) {
                rc = -ENOMEM;
                goto error;
            }
        }
    if (pool->cg_root) {
        char id[96];
        snprintf(id, sizeof(id), "%llu", ++pool->spawn_seq);
        /* Init runs with the CPU the host has (Lambda boosts init too); the share of CPU
         * in proportion to memory applies from the first GET /next on (rt_next). */
        struct cgroup_limits lim = {
            .memory_bytes = (uint64_t)fn->memory_mb << 20,
            .cpu_millicpus = CGROUP_CPU_UNLIMITED,
        };
        struct prepared made = {.fd = {-1, -1}};
        if (pool->cg_set && prepared_take(pool->cg_set, 0, &made) == 0 && made.ptr) {
            inst->cg = made.ptr; /* made ahead: ~0.3 ms of mkdirs and writes saved */
            if (cgroup_set_memory(inst->cg, lim.memory_bytes) < 0) {
                cgroup_destroy(inst->cg);
                inst->cg = NULL;
            }
        }
        rc = inst->cg ? 0 : cgroup_create(pool->cg_root, id, &lim, &inst->cg);
        if (rc < 0)
            goto error;
    }
    inst->spawn_us = mono_us();
    rc = pool->sandbox ? launch_sandboxed(inst, envp, out, exec_errno)
                       : launch_forked(inst, envp, out);
    if (inst->cg)
        cgroup_attach_done(inst->cg);
    if (rc < 0)
        goto error;
    close(out[1]);
    out[1] = -1;
    inst->out_fd = out[0];
    out[0] = -1;
    strv_free(envp);
    envp = NULL;

    fcntl(inst->out_fd, F_SETFL, O_NONBLOCK);
    if (!inst->cg) { /* without a cgroup, Max Memory Used is the runtime's VmHWM */
        char status_path[64];
        snprintf(status_path, sizeof(status_path), "/proc/%d/status",
                 (int)(inst->exit_fd >= 0 ? first_child(inst->pid) : inst->pid));
        inst->status_fd = open(status_path, O_RDONLY | O_CLOEXEC);
    }
    inst->log = logstore_stream(pool->logs, fn->log_group, inst->stream_name);
    loop_add_fd(pool->loop, inst->pidfd, EPOLLIN, on_pidfd, inst);
    loop_add_fd(pool->loop, inst->listen_fd, EPOLLIN, on_accept, inst);
    if (inst->endpoint_fd >= 0)
        loop_add_fd(pool->loop, inst->endpoint_fd, EPOLLIN, on_endpoint_accept, pool);
    loop_add_fd(pool->loop, inst->out_fd, EPOLLIN, on_output, inst);
    inst->init_timer = loop_timer_add(pool->loop, INIT_TIMEOUT_MS, on_init_timeout, inst);
    inst->state = INST_STARTING; /* counted below */
    inst->next = pool->all;
    if (pool->all)
        pool->all->prev = inst;
    pool->all = inst;
    fn->ninstances++;
    fn->nstarting++;
    if (provisioned)
        fn->nprovisioned++;
    return 0;
error:
    if (!*exec_errno)
        log_error("cannot start an instance of %s: %s", fn->name, strerror(-rc));
    for (int i = 0; i < 2; i++)
        if (out[i] >= 0)
            close(out[i]);
    if (inst->listen_fd >= 0)
        close(inst->listen_fd);
    if (inst->endpoint_fd >= 0)
        close(inst->endpoint_fd);
    if (inst->pidfd >= 0)
        close(inst->pidfd);
    cgroup_destroy(inst->cg);
    strv_free(envp);
    free(inst);
    return rc;
}

static void on_provision_retry(struct loop *loop, void *arg)
{
    (void)loop;
    struct pool_fn *fn = arg;
    fn->provision_timer = NULL;
    maybe_spawn(fn);
}

static void spawn_some(struct pool_fn *fn);

static void on_spawn_more(struct loop *loop, void *arg)
{
    (void)loop;
    struct pool_fn *fn = arg;
    fn->spawn_timer = NULL;
    spawn_some(fn);
    fn_maybe_free(fn);
}

static void provision_later(struct pool_fn *fn)
{
    if (!fn->provision_timer)
        fn->provision_timer =
            loop_timer_add(fn->pool->loop, PROVISION_RETRY_MS, on_provision_retry, fn);
}

static unsigned fn_max_instances(const struct pool_fn *fn)
{
    return fn->max_instances ? fn->max_instances : DEFAULT_MAX_INSTANCES;
}

/* Whether fn needs a cold start: queued work that the instances starting and those about to
 * ask again (they just answered) cannot absorb, or provisioned instances missing. */
static int needs_spawn(const struct pool_fn *fn)
{
    if (fn->ninstances >= fn_max_instances(fn) || fn->pool->stopping)
        return 0;
    return fn->nstarting + fn->nbetween < fn->nqueue ||
           (!fn->retired && !fn->provision_timer && fn->nprovisioned < fn->provisioned);
}

/* Answers what waits when the pool stops, and schedules cold starts (spawn_some). */
static void maybe_spawn(struct pool_fn *fn)
{
    while (fn->pool->stopping && fn->nqueue > 0) {
        struct invocation *inv = dequeue(fn);
        json_error(&inv->result, "Runtime.Unknown", "RequestId: %s Error: Ignis is shutting down",
                   inv->request_id);
        inv->start_us = mono_us();
        complete(inv, INVOCATION_FUNCTION_ERROR);
    }
    if (!fn->spawn_timer && needs_spawn(fn))
        fn->spawn_timer = loop_timer_add(fn->pool->loop, 0, on_spawn_more, fn);
}

/* Up to SPAWN_BATCH cold starts, then again next turn if more are needed. */
static void spawn_some(struct pool_fn *fn)
{
    fn->spawning = 1;
    for (unsigned n = 0; n < SPAWN_BATCH && needs_spawn(fn); n++) {
        int exec_errno = 0;
        if (fn->nstarting + fn->nbetween < fn->nqueue) {
            if (spawn(fn, 0, &exec_errno) < 0) {
                struct invocation *inv = dequeue(fn);
                if (exec_errno)
                    entrypoint_error(&inv->result, inv->request_id, fn->argv[0], exec_errno);
                else
                    json_error(&inv->result, "Runtime.Unknown",
                               "RequestId: %s Error: could not start the runtime", inv->request_id);
                inv->start_us = mono_us();
                complete(inv, INVOCATION_FUNCTION_ERROR);
            }
        } else if (spawn(fn, 1, &exec_errno) < 0) /* provisioned concurrency */
            provision_later(fn);
    }
    fn->spawning = 0;
    maybe_spawn(fn);
}

/*=== Runtime API ===*/

static void rt_error(struct http_req *req, unsigned status, const char *type, const char *msg)
{
    char body[512];
    int n =
        snprintf(body, sizeof(body), "{\"errorMessage\":\"%s\",\"errorType\":\"%s\"}", msg, type);
    http_reply(req, status, "application/json", body, (size_t)n);
}

/* Keeps ready what the next cold start of fn will take (src/exec/prepared). */
/* Asks the work queue to top up what cold starts take: a cgroup, a /tmp filesystem of
 * tmp_mb, and (net) a network namespace. */
static void want_prepared(struct pool *pool, unsigned tmp_mb, int net)
{
    if (pool->stopping) /* pool_free: the work queue may be gone already */
        return;
    if (pool->cg_set)
        prepared_want(pool->cg_set, 0);
    if (pool->tmp_set)
        prepared_want(pool->tmp_set, tmp_mb);
    if (pool->net_set && net)
        prepared_want(pool->net_set, 0);
}

static void prepare_next(struct pool *pool, struct pool_fn *fn)
{
    want_prepared(pool, tmp_mb_of(fn), !fn->host_network);
}

static void on_refill(struct loop *loop, void *arg)
{
    (void)loop;
    struct pool *pool = arg;
    pool->refill_timer = NULL;
    for (int i = 0; i < pool->nrefill_tmp; i++)
        want_prepared(pool, pool->refill_tmp_mb[i], pool->refill_net);
    pool->nrefill_tmp = pool->refill_net = 0;
}

/* prepare_next, REFILL_DELAY_MS from now: a new instance's first answer still has to reach
 * its caller, and on a machine of two CPUs the workers making a /tmp filesystem (~3 ms of CPU)
 * or a network namespace would compete with the caller for them. Sizes asked for meanwhile
 * are gathered (a few at most; more are refilled at once). */
static void refill_soon(struct pool *pool, struct pool_fn *fn)
{
    unsigned mb = tmp_mb_of(fn);
    int i = 0;
    while (i < pool->nrefill_tmp && pool->refill_tmp_mb[i] != mb)
        i++;
    if (i == (int)(sizeof(pool->refill_tmp_mb) / sizeof(pool->refill_tmp_mb[0]))) {
        prepare_next(pool, fn);
        return;
    }
    if (i == pool->nrefill_tmp)
        pool->refill_tmp_mb[pool->nrefill_tmp++] = mb;
    pool->refill_net |= !fn->host_network;
    if (!pool->refill_timer)
        pool->refill_timer = loop_timer_add(pool->loop, REFILL_DELAY_MS, on_refill, pool);
}

static void rt_next(struct instance *inst, struct http_req *req)
{
    struct pool_fn *fn = inst->fn;
    if (inst->next_req) {
        rt_error(req, 400, "InvalidRequest", "GET /next is already pending");
        return;
    }
    int first = inst->state == INST_STARTING;
    if (first) {
        if (inst->cg && inst->pool->cpu_limit)
            cgroup_set_cpu(inst->cg, cgroup_cpu_millicpus((uint64_t)fn->memory_mb << 20));
        inst->init_ms = (double)(mono_us() - inst->spawn_us) / 1000.0;
        /* a provisioned instance's init happened before any invoke: none reports it */
        inst->report_init = !inst->provisioned;
        if (inst->init_timer) {
            loop_timer_cancel(inst->pool->loop, inst->init_timer);
            inst->init_timer = NULL;
        }
    }
    if (inst->current) {
        /* asked for more work without answering: the runtime lost it */
        struct invocation *inv = inst->current;
        json_error(&inv->result, "Runtime.Unknown",
                   "RequestId: %s Error: the runtime asked for the next event without answering",
                   inv->request_id);
        finish_current(inst, INVOCATION_FUNCTION_ERROR, "error");
    }
    inst->next_req = req;
    struct invocation *inv = dequeue(fn);
    if (inv)
        dispatch(inst, inv);
    /* Replace what its start took once that no longer competes with it: after the first
     * invocation's answer (making a /tmp filesystem costs a worker ~3 ms of CPU, which on
     * two CPUs slowed that answer by up to a millisecond), or now when none is waiting. */
    if (first && inv)
        inst->refill_after_first = 1;
    else if (first)
        prepare_next(inst->pool, fn);
    if (inv)
        return;
    set_state(inst, INST_IDLE);
    inst->idle_since_us = mono_us();
    if (fn->retired) {
        instance_kill(inst);
        return;
    }
    inst->next_idle = fn->idle;
    fn->idle = inst;
}

static void rt_result(struct instance *inst, struct http_req *req, const char *id, int is_error)
{
    struct invocation *inv = inst->current;
    if (!inv || strcmp(inv->request_id, id) != 0) {
        rt_error(req, 400, "InvalidRequestID", "Invalid request ID");
        return;
    }
    buf_reset(&inv->result);
    if (http_req_body_too_large(req)) {
        json_error(&inv->result, "Function.ResponseSizeTooLarge",
                   "Response payload size exceeded maximum allowed payload size (%d bytes).",
                   MAX_RESPONSE_BYTES);
        rt_error(req, 413, "RequestEntityTooLarge",
                 "Exceeded maximum allowed payload size (6291556 bytes).");
        finish_current(inst, INVOCATION_FUNCTION_ERROR, NULL);
        return;
    }
    size_t len;
    const char *body = http_req_body(req, &len);
    if (is_error) {
        json_t *doc = json_loadb(body, len, 0, NULL);
        if (json_is_object(doc)) {
            buf_append(&inv->result, body, len);
        } else {
            const char *type = http_req_header(req, "Lambda-Runtime-Function-Error-Type");
            json_error(&inv->result, type ? type : "Unhandled", "%.*s",
                       (int)(len > 900 ? 900 : len), body);
        }
        json_decref(doc);
    } else {
        buf_append(&inv->result, body, len);
        const char *type = http_req_header(req, "Content-Type");
        snprintf(inv->response_type, sizeof(inv->response_type), "%s",
                 type ? type : "application/json");
    }
    http_reply(req, 202, "application/json", "{\"status\":\"OK\"}", 15);
    finish_current(inst, is_error ? INVOCATION_FUNCTION_ERROR : INVOCATION_OK, NULL);
}

/*=== Streamed responses ===
 *
 * A runtime that posts its response with Lambda-Runtime-Function-Response-Mode:
 * streaming (chunked) has its body read as it arrives: each piece goes to the
 * invocation's on_chunk, or into result when the caller wants it whole. An
 * error in the middle comes as the trailers Lambda-Runtime-Function-Error-Type
 * and -Error-Body (base64 of the error JSON). The timeout still applies; a
 * response over the limit ends the invocation with Function.ResponseSizeTooLarge
 * while the runtime's upload is read to its end and dropped. */

/* Answers the upload, if one is open (status 202: accepted); req is let go first. */
static void stream_answer(struct instance *inst, unsigned status, const char *type, const char *msg)
{
    struct http_req *req = inst->upload;
    if (!req)
        return;
    inst->upload = NULL;
    http_req_on_gone(req, NULL, NULL);
    http_req_read_body(req, NULL, NULL);
    if (status == 202)
        http_reply(req, 202, "application/json", "{\"status\":\"OK\"}", 15);
    else
        rt_error(req, status, type, msg);
}

/* The upload's invocation, if it is still the instance's current one. */
static struct invocation *stream_invocation(struct instance *inst)
{
    struct invocation *inv = inst->current;
    return inv && strcmp(inv->request_id, inst->upload_id) == 0 ? inv : NULL;
}

static void stream_error_result(struct invocation *inv, const char *type, const char *body_b64)
{
    struct buf body = BUF_INIT;
    json_t *doc = NULL;
    if (body_b64 && base64_decode(&body, body_b64, strlen(body_b64)) == 0)
        doc = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
    buf_reset(&inv->result);
    if (json_is_object(doc) && json_is_string(json_object_get(doc, "errorType")))
        buf_append(&inv->result, body.data, body.len);
    else
        json_error(&inv->result, type, "%.*s", (int)(body.len > 900 ? 900 : body.len),
                   body.data ? body.data : "");
    json_decref(doc);
    buf_release(&body);
}

static int stream_sink(struct http_req *req, const char *data, size_t len, void *arg)
{
    (void)req;
    struct instance *inst = arg;
    struct invocation *inv = stream_invocation(inst);
    if (!inv) { /* finished already (a timeout: the instance is being killed) */
        stream_answer(inst, data ? 410 : 202, "Gone", "the invocation is over");
        return data ? -1 : 0;
    }
    if (!data) {
        const char *type = http_req_trailer(req, "Lambda-Runtime-Function-Error-Type");
        if (type)
            stream_error_result(inv, type,
                                http_req_trailer(req, "Lambda-Runtime-Function-Error-Body"));
        stream_answer(inst, 202, NULL, NULL);
        finish_current(inst, type ? INVOCATION_FUNCTION_ERROR : INVOCATION_OK, NULL);
        return 0;
    }
    size_t limit = inv->on_chunk ? inst->pool->stream_max_bytes : MAX_RESPONSE_BYTES;
    inst->upload_bytes += len;
    if (inst->upload_bytes > limit) {
        json_error(&inv->result, "Function.ResponseSizeTooLarge",
                   "Response payload size exceeded maximum allowed payload size (%zu bytes).",
                   limit);
        stream_answer(inst, 413, "RequestEntityTooLarge", "Exceeded maximum allowed payload size");
        finish_current(inst, INVOCATION_FUNCTION_ERROR, NULL);
        return -1;
    }
    if (!inv->on_chunk)
        buf_append(&inv->result, data, len);
    else if (!inst->upload_dropped && inv->on_chunk(inv, data, len, inv->chunk_arg) < 0)
        inst->upload_dropped = 1;
    return 0;
}

/* The runtime's connection broke in the middle of its upload: the instance
 * answers nothing more for it (its exit, or the timeout, ends the invocation). */
static void stream_gone(struct http_req *req, void *arg)
{
    (void)req;
    struct instance *inst = arg;
    inst->upload = NULL;
}

static void stream_begin(struct instance *inst, struct http_req *req, const char *id)
{
    struct invocation *inv = inst->current;
    if (!inv || strcmp(inv->request_id, id) != 0) {
        rt_error(req, 400, "InvalidRequestID", "Invalid request ID");
        return;
    }
    if (inst->upload) {
        rt_error(req, 400, "InvalidRequest", "a response is already streaming");
        return;
    }
    const char *type = http_req_header(req, "Content-Type");
    snprintf(inv->response_type, sizeof(inv->response_type), "%s",
             type ? type : "application/octet-stream");
    inv->streamed = 1;
    buf_reset(&inv->result);
    inst->upload = req;
    snprintf(inst->upload_id, sizeof(inst->upload_id), "%s", id);
    inst->upload_bytes = 0;
    inst->upload_dropped = 0;
    http_req_on_gone(req, stream_gone, inst);
    http_req_read_body(req, stream_sink, inst);
}

void pool_stream_pause(struct invocation *inv)
{
    struct instance *inst = inv->inst;
    if (inst && inst->upload && stream_invocation(inst) == inv)
        http_req_pause_body(inst->upload);
}

void pool_stream_resume(struct invocation *inv)
{
    struct instance *inst = inv->inst;
    if (inst && inst->upload && stream_invocation(inst) == inv)
        http_req_resume_body(inst->upload);
}

static void rt_init_error(struct instance *inst, struct http_req *req)
{
    if (inst->state != INST_STARTING) {
        rt_error(req, 403, "InvalidStateTransition",
                 "State transition from Ready to InitError failed");
        return;
    }
    size_t len;
    const char *body = http_req_body(req, &len);
    const char *header = http_req_header(req, "Lambda-Runtime-Function-Error-Type");
    json_t *doc = json_loadb(body, len, 0, NULL);
    const char *type = json_string_value(json_object_get(doc, "errorType"));
    if (!type)
        type = header ? header : "Runtime.Unknown";
    snprintf(inst->init_error_type, sizeof(inst->init_error_type), "%s", type);
    buf_reset(&inst->init_error);
    if (json_is_object(doc))
        buf_append(&inst->init_error, body, len);
    else
        json_error(&inst->init_error, inst->init_error_type, "%.*s", (int)(len > 900 ? 900 : len),
                   body);
    json_decref(doc); /* type pointed into doc: copied above */
    init_report(inst, "error");
    http_reply(req, 202, "application/json", "{\"status\":\"OK\"}", 15);
}

/* A streamed response is read as it comes (stream_*), any other body whole. */
static size_t rt_body_cap(struct http_req *req, void *arg)
{
    (void)arg;
    const char *mode = http_req_header(req, "Lambda-Runtime-Function-Response-Mode");
    if (mode && strcasecmp(mode, "streaming") == 0 && strcmp(http_req_method(req), "POST") == 0 &&
        str_has_suffix(http_req_path(req), "/response"))
        http_req_stream(req);
    return MAX_RESPONSE_BYTES;
}

static void rt_handle(struct http_req *req, void *arg)
{
    struct pool *pool = arg;
    int fd = http_req_fd(req);
    struct instance *inst = fd >= 0 && fd < pool->nby_fd ? pool->by_fd[fd] : NULL;
    if (!inst) {
        rt_error(req, 403, "Forbidden", "unknown connection");
        return;
    }
    const char *path = http_req_path(req);
    const char *method = http_req_method(req);
    if (!str_has_prefix(path, RUNTIME_API_PREFIX)) {
        rt_error(req, 404, "NotFound", "not a Runtime API path");
        return;
    }
    const char *rest = path + strlen(RUNTIME_API_PREFIX);
    if (strcmp(rest, "invocation/next") == 0) {
        if (strcmp(method, "GET") != 0) {
            rt_error(req, 405, "MethodNotAllowed", "use GET");
            return;
        }
        rt_next(inst, req);
        return;
    }
    if (strcmp(rest, "init/error") == 0 && strcmp(method, "POST") == 0) {
        rt_init_error(inst, req);
        return;
    }
    if (str_has_prefix(rest, "invocation/") && strcmp(method, "POST") == 0) {
        const char *id = rest + strlen("invocation/");
        const char *slash = strchr(id, '/');
        if (slash && (size_t)(slash - id) < 64) {
            char rid[64];
            memcpy(rid, id, (size_t)(slash - id));
            rid[slash - id] = '\0';
            if (strcmp(slash, "/response") == 0 && http_req_streaming(req)) {
                stream_begin(inst, req, rid);
                return;
            }
            if (strcmp(slash, "/response") == 0) {
                rt_result(inst, req, rid, 0);
                return;
            }
            if (strcmp(slash, "/error") == 0) {
                rt_result(inst, req, rid, 1);
                return;
            }
        }
    }
    rt_error(req, 404, "NotFound", "unknown Runtime API path");
}

/*=== Functions ===*/

struct pool_fn *pool_fn_new(struct pool *pool, const struct pool_fn_spec *spec)
{
    struct pool_fn *fn = calloc(1, sizeof(*fn));
    if (!fn)
        return NULL;
    fn->pool = pool;
    fn->name = strdup(spec->name);
    fn->version = strdup(spec->version);
    fn->arn = strdup(spec->arn);
    fn->log_group = strdup(spec->log_group);
    fn->cwd = strdup(spec->cwd);
    fn->code_dir = strdup(spec->code_dir ? spec->code_dir : spec->cwd);
    fn->runtime_dir = spec->runtime_dir ? strdup(spec->runtime_dir) : NULL;
    fn->tmp_mb = spec->tmp_mb;
    if (pool->tmp_set) /* a size not seen yet needs its template made */
        prepared_want(pool->tmp_set, tmp_mb_of(fn));
    fn->host_network = spec->host_network;
    fn->argv = strv_dup(spec->argv, 0);
    fn->zygote = spec->zygote ? strdup(spec->zygote) : NULL;
    fn->envp = strv_dup(spec->envp, 0);
    fn->timeout_ms = spec->timeout_ms;
    fn->memory_mb = spec->memory_mb;
    fn->max_instances = spec->max_instances;
    fn->log_json = spec->log_json;
    fn->system_log_level = spec->system_log_level;
    fn->app_log_level = spec->app_log_level;
    return fn;
}

static void fn_maybe_free(struct pool_fn *fn)
{
    if (!fn->retired || fn->ninstances > 0 || fn->queue_head || fn->spawning)
        return;
    if (fn->provision_timer)
        loop_timer_cancel(fn->pool->loop, fn->provision_timer);
    if (fn->spawn_timer)
        loop_timer_cancel(fn->pool->loop, fn->spawn_timer);
    free(fn->name);
    free(fn->version);
    free(fn->arn);
    free(fn->log_group);
    free(fn->cwd);
    free(fn->code_dir);
    free(fn->runtime_dir);
    strv_free(fn->argv);
    free(fn->zygote);
    strv_free(fn->envp);
    free(fn);
}

void pool_fn_retire(struct pool_fn *fn)
{
    fn->retired = 1;
    fn->provisioned = 0;
    if (fn->provision_timer) {
        loop_timer_cancel(fn->pool->loop, fn->provision_timer);
        fn->provision_timer = NULL;
    }
    struct instance *inst = fn->idle;
    fn->idle = NULL;
    while (inst) {
        struct instance *next = inst->next_idle;
        inst->next_idle = NULL;
        instance_kill(inst);
        inst = next;
    }
    for (struct instance *i = fn->pool->all; i; i = i->next)
        if (i->fn == fn && i->state == INST_STARTING && !fn->queue_head)
            instance_kill(i);
    fn_maybe_free(fn);
}

/*=== Invocations ===*/

void pool_fn_provision(struct pool_fn *fn, unsigned n)
{
    if (fn->retired)
        return;
    fn->provisioned = n;
    /* those beyond n become on-demand ones (they retire when idle) */
    unsigned keep = 0;
    for (struct instance *i = fn->pool->all; i; i = i->next)
        if (i->fn == fn && i->provisioned && ++keep > n) {
            i->provisioned = 0;
            fn->nprovisioned--;
        }
    maybe_spawn(fn);
}

unsigned pool_fn_provisioned_ready(const struct pool_fn *fn)
{
    unsigned n = 0;
    for (const struct instance *i = fn->pool->all; i; i = i->next)
        if (i->fn == fn && i->provisioned && !i->killed && i->state != INST_STARTING)
            n++;
    return n;
}

/*=== Retiring idle instances ===*/

/* MemAvailable in bytes, or UINT64_MAX if unknown. */
static uint64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (!f)
        return UINT64_MAX;
    char line[128];
    unsigned long long kb = 0;
    int found = 0;
    while (!found && fgets(line, sizeof(line), f))
        found = sscanf(line, "MemAvailable: %llu kB", &kb) == 1;
    fclose(f);
    return found ? (uint64_t)kb << 10 : UINT64_MAX;
}

static void retire_idle(struct instance *inst)
{
    remove_idle(inst);
    instance_kill(inst);
}

/* Once a second: idle instances past the keep-alive retire; under memory pressure the
 * longest idle quarter (at least one) retires too. Provisioned ones stay. */
static void on_sweep(struct loop *loop, void *arg)
{
    struct pool *pool = arg;
    int64_t now = mono_us();
    unsigned nidle = 0;
    for (struct instance *i = pool->all; i; i = i->next) {
        if (i->state != INST_IDLE || i->provisioned || i->killed)
            continue;
        if (now - i->idle_since_us >= pool->idle_timeout_us)
            retire_idle(i);
        else
            nidle++;
    }
    if (nidle > 0 && mem_available() < pool->min_free_bytes) {
        unsigned retire = nidle / 4 ? nidle / 4 : 1;
        log_warn("memory pressure (MemAvailable under %llu MB): retiring %u idle instance(s)",
                 (unsigned long long)(pool->min_free_bytes >> 20), retire);
        while (retire-- > 0) {
            struct instance *oldest = NULL;
            for (struct instance *i = pool->all; i; i = i->next)
                if (i->state == INST_IDLE && !i->provisioned && !i->killed &&
                    (!oldest || i->idle_since_us < oldest->idle_since_us))
                    oldest = i;
            if (!oldest)
                break;
            retire_idle(oldest);
        }
    }
    pool->sweep_timer = loop_timer_add(loop, SWEEP_MS, on_sweep, pool);
}

static long env_number(const char *name, long fallback)
{
    const char *v = getenv(name);
    char *end;
    long n = v ? strtol(v, &end, 10) : -1;
    return v && *v && !*end && n >= 0 ? n : fallback;
}

struct invocation *invocation_new(void)
{
    struct invocation *inv = calloc(1, sizeof(*inv));
    if (!inv)
        return NULL;
    uuid_v4(inv->request_id);
    buf_init(&inv->payload, 0);
    buf_init(&inv->result, 0);
    buf_init(&inv->log_tail, 0);
    return inv;
}

void invocation_free(struct invocation *inv)
{
    if (!inv)
        return;
    buf_release(&inv->payload);
    buf_release(&inv->result);
    buf_release(&inv->log_tail);
    free(inv->client_context);
    free(inv->cognito_identity);
    free(inv->invoked_arn);
    free(inv);
}

/*=== Pool ===*/

struct pool *pool_new(struct loop *loop, struct logstore *logs, const char *cgroup_name,
                      const char *sandbox_dir)
{
    struct pool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return NULL;
    pool->loop = loop;
    pool->logs = logs;
    pool->init_fd = -1;
    if (sandbox_dir) {
        char dir[4096], err[512];
        snprintf(dir, sizeof(dir), "%s/root", sandbox_dir);
        pool->root = sbx_root_new(dir, SANDBOX_UID, SANDBOX_GID, err, sizeof(err));
        if (!pool->root) {
            log_error("cannot make the sandboxes' root: %s", err);
            free(pool);
            return NULL;
        }
        snprintf(pool->sandbox_dir, sizeof(pool->sandbox_dir), "%s", sandbox_dir);
        pool->sandbox = 1;
    }
    struct http_server_opts opts = {
        .listen_fd = -1,
        .handler = rt_handle,
        .body_cap = rt_body_cap,
        .arg = pool,
    };
    pool->rt = http_server_new(loop, &opts);
    if (!pool->rt) {
        sbx_root_free(pool->root);
        free(pool);
        return NULL;
    }
    http_server_on_close(pool->rt, on_conn_closed, pool);
    pool->cpu_limit = env_number("IGNIS_CPU_LIMIT", 1) != 0;
    pool->idle_timeout_us = env_number("IGNIS_IDLE_TIMEOUT_S", DEFAULT_IDLE_TIMEOUT_S) * 1000000LL;
    pool->stream_max_bytes = (size_t)env_number("IGNIS_STREAM_MAX_MB", DEFAULT_STREAM_MB) << 20;
    pool->min_free_bytes = (uint64_t)env_number("IGNIS_MIN_FREE_MB", DEFAULT_MIN_FREE_MB) << 20;
    pool->sweep_timer = loop_timer_add(loop, SWEEP_MS, on_sweep, pool);
    if (cgroup_setup(&pool->cg_root, cgroup_name) == 0)
        log_info("instance limits: memory, pids%s through %s",
                 pool->cpu_limit ? " and CPU (1 vCPU per 1769 MB, after init)"
                                 : " (CPU unlimited: IGNIS_CPU_LIMIT=0)",
                 cgroup_describe(pool->cg_root));
    else if (pool->sandbox)
        log_warn("no usable cgroups (rootless needs a delegated one): instance limits are "
                 "rlimits: memory per process (RLIMIT_DATA = MemorySize, not the instance's "
                 "total), %d processes (RLIMIT_NPROC); no CPU limit",
                 CGROUP_DEFAULT_PIDS_MAX);
    else
        log_warn("no usable cgroups: instances run WITHOUT memory limits");
    return pool;
}

void pool_free(struct pool *pool)
{
    if (!pool)
        return;
    /* Kill and reap synchronously: nothing runs after shutdown. */
    pool->stopping = 1;
    while (pool->all) {
        struct instance *inst = pool->all;
        struct pool_fn *fn = inst->fn;
        fn->retired = 1;
        instance_kill(inst);
        int status = 0;
        while (waitpid(inst->pid, &status, 0) < 0 && errno == EINTR)
            ;
        /* answer queued invocations of this function as failed */
        instance_reap(inst, status);
    }
    if (pool->sweep_timer)
        loop_timer_cancel(pool->loop, pool->sweep_timer);
    if (pool->refill_timer)
        loop_timer_cancel(pool->loop, pool->refill_timer);
    for (int i = 0; i < pool->nzygotes; i++) {
        sbx_zygote_free(pool->zygotes[i].z);
        strv_free(pool->zygotes[i].argv);
        strv_free(pool->zygotes[i].envp);
    }
    http_server_free(pool->rt);
    if (pool->init_fd >= 0)
        close(pool->init_fd);
    prepared_free(pool->tmp_set);
    prepared_free(pool->net_set);
    prepared_free(pool->cg_set); /* before the teardown of their root */
    scratch_free(pool->scratch);
    sbx_root_free(pool->root);
    cgroup_teardown(pool->cg_root);
    free(pool->by_fd);
    free(pool);
}

static int make_netns(void *arg, unsigned key, struct prepared *out)
{
    (void)arg;
    (void)key;
    return sbx_netns_prepare(&out->fd[0], &out->fd[1]);
}

static int make_cgroup(void *arg, unsigned key, struct prepared *out)
{
    (void)key;
    struct pool *pool = arg;
    char id[32];
    snprintf(id, sizeof(id), "p%llu", __atomic_add_fetch(&pool->prepared_seq, 1, __ATOMIC_RELAXED));
    struct cgroup *cg;
    int rc = cgroup_prepare(pool->cg_root, id, &cg);
    out->ptr = rc == 0 ? cg : NULL;
    return rc;
}

static void release_cgroup(void *arg, struct prepared *p)
{
    (void)arg;
    cgroup_destroy(p->ptr);
}

void pool_prepare_ahead(struct pool *pool, struct workq *wq)
{
    if (pool->cg_root) {
        struct prepared_kind cg = {.what = "cgroup",
                                   .make = make_cgroup,
                                   .release = release_cgroup,
                                   .arg = pool,
                                   .per_key = 2};
        pool->cg_set = prepared_new(wq, &cg);
        if (pool->cg_set)
            prepared_want(pool->cg_set, 0);
    }
    if (!pool->sandbox)
        return;
    char scratch_dir[4096 + 16];
    snprintf(scratch_dir, sizeof(scratch_dir), "%s/scratch", pool->sandbox_dir);
    if (!sbx_in_userns()) { /* a sandbox's own user namespace could not join one made here */
        struct prepared_kind net = {.what = "network namespace", .make = make_netns, .per_key = 2};
        pool->net_set = prepared_new(wq, &net);
        if (pool->net_set)
            prepared_want(pool->net_set, 0);
    }
    char why[512];
    pool->scratch = scratch_new(scratch_dir, SBX_DEFAULT_TMP_MB, why, sizeof(why));
    if (!pool->scratch) {
        log_warn("instances' /tmp is a tmpfs of EphemeralStorage size, in memory: %s", why);
        return;
    }
    struct prepared_kind tmp = {
        .what = "/tmp filesystem", .make = scratch_make, .arg = pool->scratch, .per_key = 2};
    pool->tmp_set = prepared_new(wq, &tmp);
    if (pool->tmp_set)
        prepared_want(pool->tmp_set, SBX_DEFAULT_TMP_MB);
    log_info("instances' /tmp: an ext4 filesystem on a loop device each, images under %s",
             scratch_dir);
}

int pool_sandboxed(const struct pool *pool)
{
    return pool->sandbox;
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

void pool_stats(struct pool *pool, struct pool_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->cold_starts = pool->cold_starts;
    size_t n = 0, alloc = 0;
    struct pool_fn **fns = NULL;
    for (struct instance *i = pool->all; i; i = i->next) {
        if (i->state == INST_STARTING)
            out->starting++;
        else if (i->state == INST_IDLE)
            out->idle++;
        else if (i->state == INST_BUSY)
            out->busy++;
        else
            out->between++;
        if (n == alloc) {
            struct pool_fn **more = realloc(fns, (alloc = alloc ? 2 * alloc : 16) * sizeof(*fns));
            if (!more)
                break;
            fns = more;
        }
        fns[n++] = i->fn;
    }
    /* a function's queue once, however many instances it has */
    qsort(fns, n, sizeof(*fns), cmp_ptr);
    for (size_t k = 0; k < n; k++)
        if (k == 0 || fns[k] != fns[k - 1])
            out->waiting += fns[k]->nqueue;
    free(fns);
}
