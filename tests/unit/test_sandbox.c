/*
 * test_sandbox: the function sandbox (src/exec/sandbox/) against the real kernel. Needs root
 * and the namespaces (sbx_probe); otherwise every test is skipped with the reason. Each test
 * spawns /bin/sh -c SCRIPT in a sandbox with stdout on a pipe and judges by the exit code and
 * the output: PID namespace, filesystem (no /etc/shadow, no host data dir, read-only
 * /var/task and root, limited /tmp), credentials, seccomp, network isolation and the Runtime
 * API listener, host network, Debian's python3 with boto3, cgroup namespace, and setup errors.
 * test_spawn_cost prints spawn-to-exec medians with and without the sandbox.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec/cgroup.h"
#include "exec/sandbox/sandbox.h"

#define TEST_UID 993
#define TEST_GID 993

static int support;
static char probe_desc[256];
static struct sbx_root *root;
static char base[64], code_dir[128], runtime_dir[128], data_dir[128];
static char *const no_env[] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL};

#define REQUIRE_SANDBOX()                                                                          \
    do {                                                                                           \
        if (support != SBX_SUPPORT_ROOT) {                                                         \
            print_message("[  SKIPPED ] sandbox unavailable: %s\n", probe_desc);                   \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(path, mode);
}

static int group_setup(void **state)
{
    (void)state;
    support = sbx_probe(probe_desc, sizeof(probe_desc));
    print_message("sandbox probe: %s\n", probe_desc);
    snprintf(base, sizeof(base), "/tmp/ignis-sbx-test-XXXXXX");
    if (!mkdtemp(base))
        return -1;
    snprintf(code_dir, sizeof(code_dir), "%s/data/packages/code/abc", base);
    snprintf(data_dir, sizeof(data_dir), "%s/data", base);
    snprintf(runtime_dir, sizeof(runtime_dir), "%s/runtime", base);
    char p[256];
    snprintf(p, sizeof(p), "mkdir -p %s %s && chmod 755 %s/data/packages/code/abc %s", code_dir,
             runtime_dir, base, runtime_dir);
    if (system(p) != 0)
        return -1;
    snprintf(p, sizeof(p), "%s/hello.txt", code_dir);
    write_file(p, "hello from task\n", 0644);
    snprintf(p, sizeof(p), "%s/secret", data_dir);
    write_file(p, "secret\n", 0600);
    snprintf(p, sizeof(p), "%s/bootstrap", runtime_dir);
    write_file(p, "#!/bin/sh\necho bootstrap ran as $(id -u)\n", 0755);
    if (support == SBX_SUPPORT_ROOT) {
        char err[512];
        snprintf(p, sizeof(p), "%s/root", base);
        if (sbx_isolate_mounts(0) < 0 ||
            !(root = sbx_root_new(p, TEST_UID, TEST_GID, err, sizeof(err)))) {
            print_message("sandbox root: %s\n", err);
            return -1;
        }
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sbx_root_free(root);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
    return system(cmd) == 0 ? 0 : -1;
}

static void default_spec(struct sbx_spec *s, char *const *argv)
{
    *s = (struct sbx_spec){.root = root,
                           .argv = argv,
                           .envp = no_env,
                           .code_dir = code_dir,
                           .runtime_dir = runtime_dir,
                           .cwd = "/var/task",
                           .tmp_mb = 8,
                           .uid = TEST_UID,
                           .gid = TEST_GID,
                           .stdout_fd = -1};
}

/* Runs spec with stdout+stderr captured into out; returns the exit status (or 128+signal).
 * api_fd: when not NULL, receives the listener (the caller closes it). */
static int run_spec(struct sbx_spec *s, char *out, size_t outsz, int *api_fd)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    s->stdout_fd = p[1];
    struct sbx_child c;
    char err[512];
    int rc = sbx_spawn(s, &c, err, sizeof(err));
    close(p[1]);
    if (rc < 0)
        print_message("sbx_spawn: %s\n", err);
    assert_int_equal(rc, 0);
    assert_true(c.pidfd >= 0);
    size_t len = 0;
    for (;;) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int n = poll(&pfd, 1, 30000);
        assert_true(n == 1); /* 30 s without output or exit: hung */
        ssize_t got = read(p[0], out + len, outsz - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
        if (len == outsz - 1)
            break;
    }
    out[len] = 0;
    close(p[0]);
    int status;
    assert_int_equal(waitpid(c.pid, &status, 0), c.pid);
    close(c.pidfd);
    if (api_fd)
        *api_fd = c.api_listen_fd;
    else if (c.api_listen_fd >= 0)
        close(c.api_listen_fd);
    if (s->host_network || s->netns_fd > 0) /* none, or the caller's */
        assert_int_equal(c.api_listen_fd, -1);
    else
        assert_true(c.api_listen_fd >= 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run_sh(const char *script, char *out, size_t outsz)
{
    char *const argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    struct sbx_spec s;
    default_spec(&s, argv);
    return run_spec(&s, out, outsz, NULL);
}

static void expect_in(const char *out, const char *what)
{
    if (!strstr(out, what))
        fail_msg("expected \"%s\" in output:\n%s", what, out);
}

static void expect_not_in(const char *out, const char *what)
{
    if (strstr(out, what))
        fail_msg("did not expect \"%s\" in output:\n%s", what, out);
}

static void test_pid_namespace(void **state)
{
    (void)state;
    REQUIRE_SANDBOX();
    char script[256], out[4096];
    snprintf(script, sizeof(script),
             "echo pid=$$; kill -0 %d 2>/dev/null && echo host-visible || echo host-hidden; "
             "ls /proc | grep -c '^[0-9]' ; hostname",
             (int)getpid());
    assert_int_equal(run_sh(script, out, sizeof(out)), 0);
    expect_in(out, "pid=1\n");
    expect_in(out, "host-hidden");
    expect_in(out, "sandbox\n");
}

static void test_filesystem(void **state)
{
    (void)state;
    REQUIRE_SANDBOX();
    char script[1024], out[8192];
    snprintf(
        script, sizeof(script),
        "test -e /etc/shadow && echo shadow-exists; cat /etc/shadow 2>/dev/null && "
        "echo shadow-read; test -e %s && echo data-visible; test -e %s && echo base-visible; "
        "ls /etc/ssl/private 2>/dev/null && echo ssl-private; "
        "touch /var/task/new 2>&1; touch /newfile 2>&1; touch /usr/new 2>&1; "
        "cat /var/task/hello.txt; /var/runtime/bootstrap; "
        "echo x > /dev/null && echo devnull-ok; head -c 4 /dev/urandom | wc -c; "
        "ls /dev | tr '\\n' ' '; echo; ls / | tr '\\n' ' '; echo; grep -c . /etc/passwd; "
        "test -s /etc/ssl/certs/ca-certificates.crt && echo certs-ok; pwd; "
        "echo mounts $(grep -c . /proc/self/mountinfo); grep Cpus_allowed_list /proc/self/status",
        data_dir, base);
    assert_int_equal(run_sh(script, out, sizeof(out)), 0);
    print_message("%s", out);
    expect_not_in(out, "shadow-exists");
    expect_not_in(out, "shadow-read");
    expect_not_in(out, "data-visible");
    expect_not_in(out, "base-visible");
    expect_not_in(out, "ssl-private");
    expect_in(out, "touch: cannot touch '/var/task/new': Read-only file system");
    expect_in(out, "touch: cannot touch '/newfile': Read-only file system");
    expect_in(out, "touch: cannot touch '/usr/new': Read-only file system");
    expect_in(out, "hello from task");
    expect_in(out, "bootstrap ran as 993");
    expect_in(out, "devnull-ok");
    expect_in(out, "\n4\n");
    expect_in(out, "fd full null random stderr stdin stdout urandom zero");
    expect_in(out, "certs-ok");
    expect_in(out, "/var/task\n");
    /* the root's own mounts (/usr, /etc entries, /dev) and the instance's: none of the host's */
    const char *m = strstr(out, "mounts ");
    assert_non_null(m);
    assert_in_range(atoi(m + 7), 8, 40);
    /* started on the caller's CPU, but the program gets every CPU the caller may use */
    char mine[256] = "";
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    while (fgets(mine, sizeof(mine), f) && strncmp(mine, "Cpus_allowed_list", 17) != 0)
        ;
    fclose(f);
    expect_in(out, mine);
}

static void test_tmp_limit(void **state)
{
    (void)state;
    REQUIRE_SANDBOX();
    char out[4096];
    /* tmp_mb is 8 */
    assert_int_equal(run_sh("echo hi > /tmp/a && cat /tmp/a; "
                            "dd if=/dev/zero of=/tmp/big bs=1M count=16 2>&1; echo dd=$?; "
                            "df -k /tmp | tail -1",
                            out, sizeof(out)),
                     0);
    print_message("%s", out);
    expect_in(out, "hi\n");
    expect_in(out, "No space left on device");
    expect_not_in(out, "dd=0");
}

static void test_credentials(void **state)
{
    (void)state;
    REQUIRE_SANDBOX();
    char out[4096];
    assert_int_equal(run_sh("id -u; id -g; id -G; grep -E "
                            "'^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "
                            "/proc/self/status; ulimit -n; ulimit -Hn",
                            out, sizeof(out)),
                     0);
    print_message("%s", out);
    expect_in(out, "993\n993\n993\n");
    expect_in(out, "CapInh:\t0000000000000000");
    expect_in(out, "CapPrm:\t0000000000000000");
    expect_in(out, "CapEff:\t0000000000000000");
    expect_in(out, "CapBnd:\t0000000000000000");
    expect_in(out, "CapAmb:\t0000000000000000");
    expect_in(out, "NoNewPrivs:\t1");
    expect_in(out, "Seccomp:\t2");
    expect_in(out, "1024\n1024\n");
}

static void test_seccomp(void **state)
{
    (void)state;
    REQUIRE_SANDBOX();
    char out[4096];
    /* unprivileged user namespaces are allowed on the host: only seccomp stops these */
    assert_int_equal(
        run_sh("unshare -U true 2>&1; echo unshare=$?; "
               "unshare -U -r --fork true 2>&1; echo unshare2=$?; "
               "mount -t tmpfs x /tmp 2>&1; echo mount=$?; "
               "/usr/bin/python3 -c 'import os; os.fork() or os._exit(0); "
               "os.wait(); print(\"fork-ok\")'; "
               "/usr/bin/python3 -c 'import ctypes, os; "
               "l = ctypes.CDLL(None, use_errno=True); "
               "r = l.syscall(56, 0x10000000 | 17, 0, 0, 0, 0); "
               "r == 0 and os._exit(0); print(\"clone-newuser\", r, ctypes.get_errno())'",
               out, sizeof(out)),
        0);
    print_message("%s", out);
    expect_in(out, "Operation not permitted");
    expect_not_in(out, "unshare=0");
    expect_not_in(out, "unshare2=0");
    expect_not_in(out, "mount=0");
    expect_in(out, "fork-ok");              /* clone3 refused with ENOSYS, plain clone works */
    expect_in(out, "clone-newuser -1 1\n"); /* clone(CLONE_NEWUSER): EPERM */
}

static int host_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Only loopback inside; what the program sends to 127.0.0.1:9001 reaches the listener, made
 * by the child or (prepared) by sbx_netns_prepare beforehand. */
static void check_network_isolated(int prepared)
{
    int port, hfd = host_listener(&port), ns = -1, lfd = -1;
    char script[512], out[4096];
    snprintf(script, sizeof(script),
             "bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d' 2>/dev/null && echo host-reached || "
             "echo host-unreachable; bash -c 'printf x >/dev/tcp/127.0.0.1/%d' && echo api-sent; "
             "cat /sys/class/net/lo/operstate 2>/dev/null; ls /sys 2>&1 | head -1",
             port, SBX_API_PORT);
    char *const argv[] = {"/bin/sh", "-c", script, NULL};
    struct sbx_spec s;
    default_spec(&s, argv);
    if (prepared) {
        assert_int_equal(sbx_netns_prepare(&ns, &lfd), 0);
        s.netns_fd = ns;
    }
    int api = -1;
    assert_int_equal(run_spec(&s, out, sizeof(out), &api), 0);
    if (prepared) {
        assert_int_equal(api, -1); /* the caller has it already */
        close(ns);
        api = lfd;
    }
    print_message("%s", out);
    expect_in(out, "host-unreachable");
    expect_in(out, "api-sent");
    /* the connection made inside waits in the listener's backlog */
    struct pollfd pfd = {.fd = api, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    int c = accept4(api, NULL, NULL, SOCK_CLOEXEC);
    assert_true(c >= 0);
    char b = 0;
    assert_int_equal(read(c, &b, 1), 1);
    assert_int_equal(b, 'x');
    int fl = fcntl(api, F_GETFL), fd_fl = fcntl(api, F_GETFD);
    assert_true(fl & O_NONBLOCK);
    assert_true(fd_fl & FD_CLOEXEC);
    close(c);
    close(api);
    close(hfd);
}

static void test_network_isolated(void **state)
{
    (void)state;
    REQUIRE_SANDBOX();
    check_network_isolated(0);
}

static void test_network_prepared(void **state)
{
    (void)state;
    REQUIRE_SANDBOX();
    /* the calling thread stays in its own network namespace */
    struct stat before, after;
    assert_int_equal(stat("/proc/thread-self/ns/net", &before), 0);
    check_network_isolated(1);
    assert_int_equal(stat("/proc/thread-self/ns/net", &after), 0);
    assert_true(before.st_ino == after.st_ino);
}

static void test_host_network(void **state)
{
    (void)state;
    REQUIRE_SANDBOX();
    int port, hfd = host_listener(&port);
    char script[256], out[4096];
    snprintf(script, sizeof(script),
             "bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d' 2>/dev/null && echo host-reached || "
             "echo host-unreachable",
             port);
    char *const argv[] = {"/bin/sh", "-c", script, NULL};
    struct sbx_spec s;
    default_spec(&s, argv);
    s.host_network = 1;
    assert_int_equal(run_spec(&s, out, sizeof(out), NULL), 0);
    expect_in(out, "host-reached");
    close(hfd);
}

static void test_python_boto3(void **state)
{
    (void)state;
    REQUIRE_SANDBOX();
    if (access("/usr/bin/python3", X_OK) != 0) {
        print_message("[  SKIPPED ] no /usr/bin/python3 on this host\n");
        skip();
    }
    char out[4096];
    char *const argv[] = {"/usr/bin/python3", "-c",
                          "import json, ssl, boto3, urllib.request, tempfile; "
                          "ssl.create_default_context(); tempfile.TemporaryFile().write(b'x'); "
                          "print('py-ok', boto3.__version__)",
                          NULL};
    struct sbx_spec s;
    default_spec(&s, argv);
    int rc = run_spec(&s, out, sizeof(out), NULL);
    print_message("%s", out);
    assert_int_equal(rc, 0);
    expect_in(out, "py-ok");
}

static void test_node(void **state)
{
    (void)state;
    REQUIRE_SANDBOX();
    if (access("/usr/bin/node", X_OK) != 0) {
        print_message("[  SKIPPED ] no /usr/bin/node on this host\n");
        skip();
    }
    char out[4096];
    char *const argv[] = {"/usr/bin/node", "-e",
                          "require('fs').writeFileSync('/tmp/n', 'x'); "
                          "require('crypto').randomBytes(8); "
                          "console.log('node-ok', process.version, require('os').hostname())",
                          NULL};
    struct sbx_spec s;
    default_spec(&s, argv);
    int rc = run_spec(&s, out, sizeof(out), NULL);
    print_message("%s", out);
    assert_int_equal(rc, 0);
    expect_in(out, "node-ok");
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

static void test_errors(void **state)
{
    (void)state;
    REQUIRE_SANDBOX();
    int fds = count_fds();
    char err[512];
    struct sbx_child c;
    char *const argv[] = {"/var/task/nope", NULL};
    struct sbx_spec s;
    default_spec(&s, argv);
    assert_int_equal(sbx_spawn(&s, &c, err, sizeof(err)), -ENOENT);
    assert_int_equal(c.failed_step, SBX_STEP_EXEC);
    assert_int_equal(c.pid, -1);
    assert_int_equal(c.pidfd, -1);
    assert_int_equal(c.api_listen_fd, -1);
    assert_string_equal(err, "execve /var/task/nope: No such file or directory");

    char *const argv_sh[] = {"/bin/sh", NULL};
    default_spec(&s, argv_sh);
    s.cwd = "/nonexistent";
    assert_int_equal(sbx_spawn(&s, &c, err, sizeof(err)), -ENOENT);
    assert_int_equal(c.failed_step, SBX_STEP_CHDIR);
    assert_string_equal(err, "chdir /nonexistent: No such file or directory");

    default_spec(&s, argv_sh);
    s.code_dir = "/nonexistent/code";
    assert_int_equal(sbx_spawn(&s, &c, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "code dir /nonexistent/code: No such file or directory");

    default_spec(&s, argv_sh);
    s.uid = 0;
    assert_int_equal(sbx_spawn(&s, &c, err, sizeof(err)), -EINVAL);
    assert_int_equal(c.failed_step, SBX_STEP_NONE);
    assert_int_equal(count_fds(), fds); /* failures leave no fd and no child behind */
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* ignis-init as PID 1 (runtimes/init, built by `make runtimes`): the program is PID 2, an
 * orphan it leaves is reaped, the program's exit status comes through status_fd (init's own
 * is the same code), and a failed exec is still reported at once. */
static void test_init(void **state)
{
    (void)state;
    REQUIRE_SANDBOX();
    int fds = count_fds(), status[2];
    int init_fd = open("runtimes/init/ignis-init", O_RDONLY | O_CLOEXEC);
    if (init_fd < 0)
        skip();
    assert_int_equal(pipe2(status, O_CLOEXEC), 0);
    char *const argv[] = {"/bin/sh", "-c",
                          "echo pid $$; sleep 0.1 & sleep 0.3; "
                          "grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l; "
                          "echo init $(cat /proc/1/comm); exit 7",
                          NULL};
    struct sbx_spec s;
    default_spec(&s, argv);
    s.init_fd = init_fd;
    s.status_fd = status[1];
    char out[4096];
    assert_int_equal(run_spec(&s, out, sizeof(out), NULL), 7);
    close(status[1]);
    int st = 0;
    assert_int_equal(read(status[0], &st, sizeof(st)), sizeof(st));
    close(status[0]);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 7);
    expect_in(out, "pid 2\n0\ninit ignis-init\n"); /* the sleep's zombie was reaped */

    /* A program that exits at once is not taken for a failed exec (it may be gone before
     * PID 1 looks at it): its own code comes back, every time. */
    char *const quick[] = {"/bin/sh", "-c", "exit 3", NULL};
    for (int i = 0; i < 20; i++) {
        assert_int_equal(pipe2(status, O_CLOEXEC), 0);
        default_spec(&s, quick);
        s.init_fd = init_fd;
        s.status_fd = status[1];
        assert_int_equal(run_spec(&s, out, sizeof(out), NULL), 3);
        close(status[1]);
        assert_int_equal(read(status[0], &st, sizeof(st)), sizeof(st));
        close(status[0]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    }

    struct sbx_child c;
    char err[512];
    char *const nope[] = {"/var/task/nope", NULL};
    assert_int_equal(pipe2(status, O_CLOEXEC), 0);
    default_spec(&s, nope);
    s.init_fd = init_fd;
    s.status_fd = status[1];
    assert_int_equal(sbx_spawn(&s, &c, err, sizeof(err)), -ENOENT);
    assert_int_equal(c.failed_step, SBX_STEP_EXEC);
    assert_string_equal(err, "execve /var/task/nope: No such file or directory");
    close(status[0]);
    close(status[1]);
    close(init_fd);
    assert_int_equal(count_fds(), fds);
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void test_cgroup_namespace(void **state)
{
    (void)state;
    REQUIRE_SANDBOX();
    struct cgroup_root *root = NULL;
    char name[64];
    snprintf(name, sizeof(name), "ignis-sbxtest-%d", (int)getpid());
    if (cgroup_setup(&root, name) < 0) {
        print_message("[  SKIPPED ] no usable cgroups here\n");
        skip();
    }
    struct cgroup *cg = NULL;
    struct cgroup_limits lim = {.memory_bytes = 256ull << 20};
    assert_int_equal(cgroup_create(root, "i1", &lim, &cg), 0);
    char out[4096];
    char *const argv[] = {"/bin/sh", "-c", "cat /proc/self/cgroup", NULL};
    struct sbx_spec s;
    default_spec(&s, argv);
    s.ncg_fds = cgroup_attach_fds(cg, s.cg_fds);
    assert_int_equal(run_spec(&s, out, sizeof(out), NULL), 0);
    print_message("%s", out);
    expect_in(out, "memory:/\n"); /* the instance's group is the namespace's root */
    expect_not_in(out, name);
    cgroup_destroy(cg);
    cgroup_teardown(root);
}

/*=== Cost ===*/

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* fork + execve as pool.c does today, timed until exec (close-on-exec pipe EOF) */
static uint64_t plain_spawn_us(char *const *argv)
{
    int r[2];
    assert_int_equal(pipe2(r, O_CLOEXEC), 0);
    uint64_t t0 = now_us();
    pid_t pid = fork();
    if (pid == 0) {
        execve(argv[0], argv, no_env);
        _exit(127);
    }
    close(r[1]);
    char b;
    assert_int_equal(read(r[0], &b, 1), 0);
    uint64_t dt = now_us() - t0;
    close(r[0]);
    waitpid(pid, NULL, 0);
    return dt;
}

static uint64_t sandbox_spawn_us(struct sbx_spec *s)
{
    struct sbx_child c;
    char err[512];
    uint64_t t0 = now_us();
    int rc = sbx_spawn(s, &c, err, sizeof(err));
    uint64_t dt = now_us() - t0;
    if (rc < 0)
        fail_msg("sbx_spawn: %s", err);
    waitpid(c.pid, NULL, 0);
    close(c.pidfd);
    if (c.api_listen_fd >= 0)
        close(c.api_listen_fd);
    return dt;
}

#define RUNS 41

static void report(const char *what, uint64_t *t)
{
    qsort(t, RUNS, sizeof(*t), cmp_u64);
    print_message("spawn-to-exec %-28s median %5llu us  p10 %5llu  p90 %5llu\n", what,
                  (unsigned long long)t[RUNS / 2], (unsigned long long)t[RUNS / 10],
                  (unsigned long long)t[RUNS * 9 / 10]);
}

static void test_spawn_cost(void **state)
{
    (void)state;
    REQUIRE_SANDBOX();
    char *const argv[] = {"/bin/true", NULL};
    uint64_t t[RUNS];
    struct sbx_spec s;
    default_spec(&s, argv);
    sandbox_spawn_us(&s); /* builds the seccomp filter once */

    for (int i = 0; i < RUNS; i++)
        t[i] = plain_spawn_us(argv);
    report("fork+exec (no sandbox)", t);
    for (int i = 0; i < RUNS; i++)
        t[i] = sandbox_spawn_us(&s);
    report("sandbox", t);
    s.host_network = 1;
    for (int i = 0; i < RUNS; i++)
        t[i] = sandbox_spawn_us(&s);
    report("sandbox, host network", t);

    struct cgroup_root *root = NULL;
    char name[64];
    snprintf(name, sizeof(name), "ignis-sbxbench-%d", (int)getpid());
    if (cgroup_setup(&root, name) == 0) {
        s.host_network = 0;
        for (int i = 0; i < RUNS; i++) {
            struct cgroup *cg;
            char id[16];
            snprintf(id, sizeof(id), "b%d", i);
            struct cgroup_limits lim = {.memory_bytes = 128ull << 20};
            assert_int_equal(cgroup_create(root, id, &lim, &cg), 0);
            s.ncg_fds = cgroup_attach_fds(cg, s.cg_fds);
            t[i] = sandbox_spawn_us(&s);
            cgroup_attach_done(cg);
            cgroup_destroy(cg);
        }
        report("sandbox + cgroup", t);
        cgroup_teardown(root);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pid_namespace),    cmocka_unit_test(test_filesystem),
        cmocka_unit_test(test_tmp_limit),        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_seccomp),          cmocka_unit_test(test_network_isolated),
        cmocka_unit_test(test_network_prepared), cmocka_unit_test(test_host_network),
        cmocka_unit_test(test_python_boto3),     cmocka_unit_test(test_node),
        cmocka_unit_test(test_errors),           cmocka_unit_test(test_init),
        cmocka_unit_test(test_cgroup_namespace), cmocka_unit_test(test_spawn_cost),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
