/*
 * serve: `ignis serve [--listen HOST:PORT] [--data-dir DIR]`. Builds the
 * daemon (loop, db, stores, pool, services, edge), runs it until SIGTERM or
 * SIGINT, then takes it down in order: services retire their instances, the
 * pool reaps them and answers what was waiting, the edge closes, the db last.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/workq.h"
#include "edge/edge.h"
#include "exec/pool.h"
#include "exec/sandbox/sandbox.h"
#include "services/apigw/apigw.h"
#include "services/lambda/lambda.h"
#include "services/logs/logs.h"
#include "services/s3/s3.h"
#include "services/metrics/metrics.h"
#include "store/db.h"
#include "store/logstore.h"

static void on_signal(struct loop *loop, int fd, uint32_t events, void *arg)
{
    (void)events;
    (void)arg;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof(si)) == sizeof(si))
        log_info("received %s, shutting down", strsignal((int)si.ssi_signo));
    loop_stop(loop);
}

static void flush_logs(struct loop *loop, void *arg)
{
    (void)loop;
    logstore_flush(arg);
}

/* Retention and the log store's bound: a sweep every minute (or a quarter of a shortened
 * retention day, for tests). */
static void sweep_logs(struct loop *loop, void *arg)
{
    struct logstore *logs = arg;
    logstore_expire(logs);
    int64_t period = logstore_day_ms(logs) / 4;
    loop_timer_add(loop, period < 200 ? 200 : period > 60000 ? 60000 : period, sweep_logs, logs);
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int cmd_serve(int argc, char **argv)
{
    static struct config cfg;
    config_defaults(&cfg);
    int no_sandbox = 0;
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"data-dir", required_argument, NULL, 'd'},
        {"debug", no_argument, NULL, 'D'},
        {"no-sandbox", no_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (config_set_listen(&cfg, optarg) < 0) {
                fprintf(stderr, "ignis serve: --listen wants HOST:PORT, not %s\n", optarg);
                return 2;
            }
            break;
        case 'd':
            snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", optarg);
            break;
        case 'D':
            log_set_level(LOG_DEBUG);
            break;
        case 'N':
            no_sandbox = 1;
            break;
        default:
            fprintf(stderr,
                    "usage: ignis serve [--listen HOST:PORT] [--data-dir DIR] [--no-sandbox]\n");
            return 2;
        }
    }
    /* Function code is untrusted: without isolation, start only when told to. */
    char how[256];
    int support = sbx_probe(how, sizeof(how));
    int sandbox = support != SBX_SUPPORT_NONE && !no_sandbox;
    if (!sandbox && !no_sandbox) {
        log_error("cannot isolate functions on this host (%s); refusing to start. "
                  "Run as root or allow unprivileged user namespaces "
                  "(sysctl kernel.unprivileged_userns_clone=1), or pass --no-sandbox to run "
                  "functions WITHOUT isolation",
                  how);
        return 1;
    }
    if (sandbox) {
        log_info("functions run sandboxed: %s", how);
        /* before any thread starts */
        int e = sbx_isolate_mounts(support == SBX_SUPPORT_USERNS);
        if (e < 0) {
            log_error("cannot make a mount namespace for the sandboxes: %s", strerror(-e));
            return 1;
        }
    } else
        log_warn("*** --no-sandbox: functions run WITHOUT isolation, as this user, with this "
                 "host's files and network. Only for code you trust. ***");
    int rc = mkdir_p(cfg.data_dir, 0700);
    if (rc < 0) {
        log_error("cannot create data dir %s: %s", cfg.data_dir, strerror(-rc));
        return 1;
    }
    rc = config_load_credentials(&cfg);
    if (rc < 0) {
        log_error("cannot load credentials from %s: %s", cfg.data_dir, strerror(-rc));
        return 1;
    }
    if (cfg.credentials_generated)
        printf("ignis: generated root credentials (saved in %s/credentials):\n"
               "  AWS_ACCESS_KEY_ID=%s\n  AWS_SECRET_ACCESS_KEY=%s\n",
               cfg.data_dir, cfg.access_key, cfg.secret_key);

    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);

    int status = 1, lfd = -1;
    struct loop *loop = loop_new();
    struct db *db = NULL;
    struct logstore *logs = NULL;
    struct workq *wq = NULL;
    struct pool *pool = NULL;
    struct lambda *lambda = NULL;
    struct apigw *apigw = NULL;
    struct s3 *s3 = NULL;
    struct metrics *metrics = NULL;
    struct edge *edge = NULL;
    int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    char path[4200];
    if (!loop || sigfd < 0)
        goto out;
    snprintf(path, sizeof(path), "%s/ignis.db", cfg.data_dir);
    if (db_open(path, &db) < 0)
        goto out;
    snprintf(path, sizeof(path), "%s/logs", cfg.data_dir);
    if (logstore_open(path, &logs) < 0)
        goto out;
    lfd = edge_listen(cfg.listen_host, cfg.listen_port);
    if (lfd < 0) {
        log_error("cannot listen on %s:%d: %s", cfg.listen_host, cfg.listen_port, strerror(-lfd));
        goto out;
    }
    int port = edge_socket_port(lfd);
    cfg.listen_port = port; /* what functions are told to call (AWS_ENDPOINT_URL) */
    char cgname[32];
    snprintf(cgname, sizeof(cgname), "ignis-%d", port);
    wq = workq_new(loop, 2);
    snprintf(path, sizeof(path), "%s/sandbox", cfg.data_dir);
    char *sandbox_dir = NULL; /* absolute: the sandboxes' root is found by it */
    if (sandbox && (mkdir_p(path, 0700) < 0 || !(sandbox_dir = realpath(path, NULL)))) {
        log_error("cannot create %s", path);
        goto out;
    }
    pool = pool_new(loop, logs, cgname, sandbox_dir);
    free(sandbox_dir);
    if (!wq || !pool)
        goto out;
    pool_prepare_ahead(pool, wq);
    lambda = lambda_new(loop, &cfg, db, pool, wq);
    if (!lambda)
        goto out;
    edge = edge_new(loop, &cfg, lfd);
    lfd = -1; /* MHD owns it now */
    if (!edge || lambda_register(lambda, edge) < 0)
        goto out;
    pool_set_endpoint(pool, (uint16_t)port, edge_take_connection, edge);
    if (logs_register(edge, logs, &cfg) < 0)
        goto out;
    if (!(metrics = metrics_new(loop, &cfg, db)) || metrics_register(metrics, edge) < 0)
        goto out;
    metrics_attach(metrics, pool, lambda);
    lambda_set_metrics(lambda, metrics);
    if (!(apigw = apigw_new(loop, &cfg, db, lambda)) || apigw_register(apigw, edge) < 0)
        goto out;
    if (!(s3 = s3_new(loop, &cfg, wq, lambda)) || s3_register(s3, edge) < 0)
        goto out;
    loop_add_fd(loop, sigfd, EPOLLIN, on_signal, NULL);
    loop_add_before_sleep(loop, flush_logs, logs);
    sweep_logs(loop, logs);
    printf("ignis: listening on http://%s:%d (data dir %s, region %s)\n", cfg.listen_host, port,
           cfg.data_dir, cfg.region);
    fflush(stdout);
    loop_run(loop);
    status = 0;
out:
    if (status)
        log_error("ignis serve could not start");
    workq_free(wq); /* joins the workers; their completions are queued on the loop */
    if (loop)
        loop_run_posted(loop);
    lambda_free(lambda);
    pool_free(pool);
    edge_free(edge);
    apigw_free(apigw); /* after the pool: its invocations' callbacks have run */
    s3_free(s3);       /* after the edge: uploads in flight are gone with it */
    /* writes what is pending; before the db closes */
    metrics_free(metrics);
    logstore_close(logs);
    db_close(db);
    if (sigfd >= 0)
        close(sigfd);
    if (lfd >= 0)
        close(lfd);
    loop_free(loop);
    return status;
}
