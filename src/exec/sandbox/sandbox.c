/*
 * sandbox: the orchestrator. Owns sbx_spawn: everything that may allocate is prepared in the
 * parent (the mount plan, the seccomp program, pipes), then clone creates the child in new
 * mount, PID, IPC, UTS and (unless host_network) network namespaces, and the child applies
 * the facilities in order: signals reset, process group, cgroup then cgroup namespace, stdio,
 * hostname, network (lo up, listener passed to the parent; or join a namespace prepared with
 * sbx_netns_prepare), mounts (see mount.c), cwd,
 * rlimits, bounding set, uid/gid, capabilities, no_new_privs, seccomp, execve (with an
 * init_fd: the program is cloned as PID 2 and PID 1 execs ignis-init). The child
 * reports the first failure as {step, errno, mount op} over a close-on-exec pipe; an empty
 * pipe once the vfork returns means execve succeeded. The facilities live in mount.c, net.c,
 * caps.c, seccomp.c and rlimit.c; this file owns none of their policy. It also owns sbx_probe.
 */
#include "exec/sandbox/sandbox.h"
#include "exec/sandbox/sandbox_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <linux/prctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SBX_HOSTNAME "sandbox"

/* The child shares the caller's memory until it execs (CLONE_VM | CLONE_VFORK, as
 * posix_spawn does) and runs on a stack of its own: no page tables to copy and no
 * copy-on-write faults, which in a large daemon cost more than the whole sandbox setup. The
 * caller's thread is suspended meanwhile; the child changes nothing in memory but its
 * stack, and calls the kernel directly where glibc would touch process-wide state
 * (signal dispositions, ids). */
#define CHILD_STACK_SIZE (256 * 1024)

/* One stack per spawning thread, kept: a fresh mapping costs the child a page fault per page
 * it touches, and page faults are what these machines are slowest at (~14 µs each). Under
 * AddressSanitizer its shadow is cleared before each use: the frames of a child that exec'd
 * never returned to unpoison their redzones, and the next child's frames land elsewhere. */
static __thread void *child_stack;

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define UNPOISON_STACK(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define UNPOISON_STACK(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#endif
#endif
#ifndef UNPOISON_STACK
#define UNPOISON_STACK(p, n) ((void)(p), (void)(n))
#endif

/* The child runs on the caller's CPU. The caller sleeps until the child execs, so that CPU is
 * free; left to itself the scheduler may queue the child behind another process, or wake an
 * idle CPU for it (~0.1 ms in a VM), while the caller's CPU idles. The child takes back the
 * caller's full mask before it execs. */
struct cpu_pin {
    cpu_set_t all;
    int pinned;
};

static void pin_to_this_cpu(struct cpu_pin *pin)
{
    pin->pinned = 0;
    int cpu = sched_getcpu();
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof(pin->all), &pin->all) < 0)
        return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pin->pinned = sched_setaffinity(0, sizeof(one), &one) == 0;
}

static void unpin(const struct cpu_pin *pin)
{
    if (pin->pinned)
        sched_setaffinity(0, sizeof(pin->all), &pin->all);
}

struct child_ctx {
    const struct sbx_spec *spec;
    const struct sbx_mount_plan *plan;
    const struct sock_fprog *filter;
    int devnull, report_fd, sock_fd;
    int zygote; /* sbx_fork: keep signal dispositions, return instead of exec */
    /* sbx_fork: argv and envp as one NUL-separated block each, shown as the child's
     * /proc/PID/cmdline and environ, as if it had exec'd them */
    const char *args, *env;
    size_t args_len, env_len;
    struct prctl_mm_map mm; /* the caller's layout, from /proc/self/stat */
    int mm_known;
    const struct cpu_pin *pin; /* sbx_spawn: the caller's CPU mask, restored before exec */
    void *stack2_top;          /* sbx_spawn with init_fd: the program's stack (exec_with_init) */
};

static const char *const step_names[] = {
    [SBX_STEP_NONE] = "none",
    [SBX_STEP_USERNS] = "map uid/gid in the user namespace",
    [SBX_STEP_CGROUP] = "enter cgroup",
    [SBX_STEP_CGROUPNS] = "unshare cgroup namespace",
    [SBX_STEP_STDIO] = "set up stdio",
    [SBX_STEP_HOSTNAME] = "sethostname",
    [SBX_STEP_NET_LO] = "bring lo up",
    [SBX_STEP_NET_LISTEN] = "listen on 127.0.0.1",
    [SBX_STEP_NET_SEND] = "pass the listener",
    [SBX_STEP_NET_JOIN] = "join the prepared network namespace",
    [SBX_STEP_MOUNT] = "mount",
    [SBX_STEP_CHDIR] = "chdir",
    [SBX_STEP_RLIMIT] = "setrlimit",
    [SBX_STEP_BOUNDING] = "drop the bounding set",
    [SBX_STEP_CREDS] = "set uid/gid",
    [SBX_STEP_CAPS] = "clear capabilities",
    [SBX_STEP_NNP] = "set no_new_privs",
    [SBX_STEP_SECCOMP] = "load seccomp filter",
    [SBX_STEP_EXEC] = "execve",
    [SBX_STEP_INIT] = "start ignis-init",
};

const char *sbx_step_name(enum sbx_step step)
{
    if ((unsigned)step >= sizeof(step_names) / sizeof(step_names[0]))
        return "unknown";
    return step_names[step];
}

/*=== Child (async-signal-safe only) ===*/

/* Code that runs in the child, on a stack AddressSanitizer does not know (the caller's
 * thread is parked meanwhile): not instrumented. Instrumented, every call of a noreturn
 * function (_exit, child_fail, execve's wrappers here) made ASan unpoison "the thread's
 * stack" from the child's stack pointer and, finding it elsewhere, warn that false reports
 * may follow; under load a child then died before it reported a failed exec. */
#define CHILD_CODE __attribute__((no_sanitize_address))

static CHILD_CODE __attribute__((noreturn)) void
child_fail(const struct child_ctx *c, enum sbx_step step, int neg_errno, int mount_idx)
{
    struct sbx_report r = {.step = step, .err = -neg_errno, .mount = mount_idx};
    ssize_t w = write(c->report_fd, &r, sizeof(r));
    (void)w;
    _exit(127);
}

static int dup_onto(int fd, int target)
{
    if (fd == target) /* dup2 would keep close-on-exec */
        return fcntl(fd, F_SETFD, 0) < 0 ? -errno : 0;
    return dup2(fd, target) < 0 ? -errno : 0;
}

/* The kernel's struct sigaction (x86_64 and most others: handler, flags, restorer, mask). */
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

static void set_sigmask(uint64_t mask)
{
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL, sizeof(mask));
}

/* A forked child's command line and environment, as /proc shows them (tools and tests find
 * instances by their environment): the kernel takes them from the addresses in the mm map.
 * PR_SET_MM_MAP needs no privilege when the executable stays; best effort. */
static void child_show_exec(const struct child_ctx *c)
{
    if (!c->args || !c->env || !c->mm_known)
        return;
    struct prctl_mm_map m = c->mm;
    m.brk = (uint64_t)syscall(SYS_brk, 0);
    m.arg_start = (uint64_t)(uintptr_t)c->args;
    m.arg_end = m.arg_start + c->args_len;
    m.env_start = (uint64_t)(uintptr_t)c->env;
    m.env_end = m.env_start + c->env_len;
    prctl(PR_SET_MM, PR_SET_MM_MAP, (unsigned long)&m, sizeof(m), 0);
}

/* The memory layout fields of /proc/self/stat (proc(5): 26-28 and 45-51). */
static int read_mm_layout(struct prctl_mm_map *m)
{
    char st[2048];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, st, sizeof(st) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    st[n] = 0;
    char *p = strrchr(st, ')');
    if (!p)
        return -EIO;
    unsigned long long v[53] = {0};
    char *end = p + 1;
    for (int field = 3; field < 53; field++) { /* field 3 follows the ")" */
        while (*end == ' ')
            end++;
        if (!*end)
            return -EIO;
        if (field == 3) { /* the state letter */
            end++;
            continue;
        }
        v[field] = strtoull(end, &end, 10);
    }
    *m = (struct prctl_mm_map){
        .start_code = v[26],
        .end_code = v[27],
        .start_stack = v[28],
        .start_data = v[45],
        .end_data = v[46],
        .start_brk = v[47],
        .arg_start = v[48],
        .arg_end = v[49],
        .env_start = v[50],
        .env_end = v[51],
        .exe_fd = (uint32_t)-1, /* keep the executable */
    };
    return 0;
}

/* Everything but the exec: on failure reports and exits. */
static CHILD_CODE void child_setup(const struct child_ctx *c)
{
    const struct sbx_spec *s = c->spec;
    int rc, idx = -1;
    if (c->zygote)
        child_show_exec(c);

    if (!c->zygote) {
        struct kernel_sigaction dfl = {.handler = SIG_DFL};
        for (int sig = 1; sig <= 64; sig++) /* fails harmlessly for KILL and STOP */
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
    }
    setpgid(0, 0);
    if (s->root->userns && (rc = sbx_userns_map(s->uid, s->gid)) < 0)
        child_fail(c, SBX_STEP_USERNS, rc, idx);

    for (int i = 0; i < s->ncg_fds; i++)
        if (write(s->cg_fds[i], "0", 1) < 0)
            child_fail(c, SBX_STEP_CGROUP, -errno, idx);
    if (unshare(CLONE_NEWCGROUP) < 0) /* after the attach: its root is the instance's group */
        child_fail(c, SBX_STEP_CGROUPNS, -errno, idx);

    if ((c->devnull >= 0 && (rc = dup_onto(c->devnull, 0)) < 0) ||
        (s->stdout_fd >= 0 &&
         ((rc = dup_onto(s->stdout_fd, 1)) < 0 || (rc = dup_onto(s->stdout_fd, 2)) < 0)))
        child_fail(c, SBX_STEP_STDIO, rc, idx);

    if (sethostname(SBX_HOSTNAME, sizeof(SBX_HOSTNAME) - 1) < 0)
        child_fail(c, SBX_STEP_HOSTNAME, -errno, idx);

    if (!s->host_network && s->netns_fd > 0) {
        if (setns(s->netns_fd, CLONE_NEWNET) < 0)
            child_fail(c, SBX_STEP_NET_JOIN, -errno, idx);
    } else if (!s->host_network) {
        if ((rc = sbx_net_loopback_up()) < 0)
            child_fail(c, SBX_STEP_NET_LO, rc, idx);
        int lfd = sbx_net_listen_loopback(SBX_API_PORT);
        if (lfd < 0)
            child_fail(c, SBX_STEP_NET_LISTEN, lfd, idx);
        if ((rc = sbx_net_send_fd(c->sock_fd, lfd)) < 0)
            child_fail(c, SBX_STEP_NET_SEND, rc, idx);
        close(lfd);
        if (s->extra_port) {
            if ((lfd = sbx_net_listen_loopback(s->extra_port)) < 0)
                child_fail(c, SBX_STEP_NET_LISTEN, lfd, idx);
            if ((rc = sbx_net_send_fd(c->sock_fd, lfd)) < 0)
                child_fail(c, SBX_STEP_NET_SEND, rc, idx);
            close(lfd);
        }
    }

    if ((rc = sbx_mount_apply(c->plan, &idx)) < 0)
        child_fail(c, SBX_STEP_MOUNT, rc, idx);
    if (chdir(s->cwd ? s->cwd : "/var/task") < 0)
        child_fail(c, SBX_STEP_CHDIR, -errno, idx);
    if ((rc = sbx_rlimits_apply(s->rlimit_data, s->rlimit_nproc)) < 0)
        child_fail(c, SBX_STEP_RLIMIT, rc, idx);
    if ((rc = sbx_caps_drop_bounding()) < 0)
        child_fail(c, SBX_STEP_BOUNDING, rc, idx);
    if ((rc = sbx_creds_set(s->uid, s->gid, s->root->userns)) < 0)
        child_fail(c, SBX_STEP_CREDS, rc, idx);
    if ((rc = sbx_caps_clear()) < 0)
        child_fail(c, SBX_STEP_CAPS, rc, idx);
    if ((rc = sbx_no_new_privs()) < 0)
        child_fail(c, SBX_STEP_NNP, rc, idx);
    if ((rc = sbx_seccomp_load(c->filter)) < 0)
        child_fail(c, SBX_STEP_SECCOMP, rc, idx);
}

/* The program, as PID 2 under ignis-init: shares PID 1's (the caller's) memory until it execs,
 * on the lower half of the child stack. A failed exec is marked in that shared memory before
 * the report: once the exec succeeded the program may well have exited already by the time
 * PID 1 looks, so its exit says nothing. */
struct program_start {
    const struct child_ctx *c;
    volatile int exec_failed;
};

static CHILD_CODE int program_main(void *arg)
{
    struct program_start *p = arg;
    const struct child_ctx *c = p->c;
    execve(c->spec->argv[0], c->spec->argv, c->spec->envp);
    int e = errno;
    p->exec_failed = 1;
    child_fail(c, SBX_STEP_EXEC, -e, -1);
}

/* "123" into buf (at least 12 bytes), async-signal-safe. */
static CHILD_CODE void format_int(char *buf, int v)
{
    char tmp[12];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    for (int i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
}

/* PID 1, once the program runs as its child: execs ignis-init, which keeps only status_fd. */
static CHILD_CODE __attribute__((noreturn)) void become_init(const struct child_ctx *c,
                                                             pid_t program)
{
    const struct sbx_spec *s = c->spec;
    char fd_arg[12], pid_arg[12];
    format_int(fd_arg, s->status_fd);
    format_int(pid_arg, program);
    char *const argv[] = {"ignis-init", fd_arg, pid_arg, NULL};
    char *const envp[] = {NULL};
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    if (fcntl(s->status_fd, F_SETFD, 0) == 0)
        syscall(SYS_execveat, s->init_fd, "", argv, envp, AT_EMPTY_PATH);
    child_fail(c, SBX_STEP_INIT, -errno, -1); /* PID 1 exits: the program goes with it */
}

/* PID 1 when spec->init_fd is given: starts the program as PID 2 (vfork-style: it is
 * exec'd, or has failed and reported, when clone returns), then becomes ignis-init. */
static CHILD_CODE __attribute__((noreturn)) void exec_with_init(const struct child_ctx *c)
{
    struct program_start start = {.c = c};
    pid_t pid = clone(program_main, c->stack2_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &start);
    if (pid < 0)
        child_fail(c, SBX_STEP_INIT, -errno, -1);
    if (start.exec_failed) /* it reported why; ending PID 1 ends the namespace */
        _exit(127);
    become_init(c, pid);
}

static CHILD_CODE int child_main(void *arg)
{
    const struct child_ctx *c = arg;
    child_setup(c);
    if (c->pin)
        unpin(c->pin);
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC); /* whatever the caller leaked */
    set_sigmask(0);
    if (c->spec->init_fd > 0)
        exec_with_init(c);
    execve(c->spec->argv[0], c->spec->argv, c->spec->envp);
    child_fail(c, SBX_STEP_EXEC, -errno, -1);
}

/*=== Parent ===*/

static void describe_report(const struct sbx_spec *spec, const struct sbx_mount_plan *plan,
                            const struct sbx_report *r, char *err, size_t errlen)
{
    int e = r->err > 0 ? r->err : EIO;
    if (r->step == SBX_STEP_MOUNT) {
        char what[PATH_MAX + 64];
        sbx_mount_describe(plan, r->mount, what, sizeof(what));
        snprintf(err, errlen, "%s: %s", what, strerror(e));
    } else if (r->step == SBX_STEP_EXEC || r->step == SBX_STEP_CHDIR)
        snprintf(err, errlen, "%s %s: %s", sbx_step_name(r->step),
                 r->step == SBX_STEP_EXEC ? spec->argv[0]
                 : spec->cwd              ? spec->cwd
                                          : "/var/task",
                 strerror(e));
    else
        snprintf(err, errlen, "%s: %s", sbx_step_name(r->step), strerror(e));
}

void sbx_describe_report(const struct sbx_spec *spec, const struct sbx_report *r, char *err,
                         size_t errlen)
{
    struct sbx_mount_plan *plan = calloc(1, sizeof(*plan));
    if (plan && sbx_mount_plan_build(plan, spec, err, errlen) == 0)
        describe_report(spec, plan, r, err, errlen);
    else
        snprintf(err, errlen, "%s: %s", sbx_step_name(r->step),
                 strerror(r->err > 0 ? r->err : EIO));
    sbx_mount_plan_release(plan);
    free(plan);
}

static int check_spec(const struct sbx_spec *s, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!s->root)
        why = "a root (sbx_root_new) is required";
    else if (!s->argv || !s->argv[0] || s->argv[0][0] != '/')
        why = "argv[0] must be an absolute path";
    else if (!s->envp)
        why = "envp is required";
    else if (!s->code_dir)
        why = "code dir is required";
    else if (s->cwd && s->cwd[0] != '/')
        why = "cwd must be absolute";
    else if (s->uid == 0 || s->gid == 0)
        why = "uid and gid must not be 0";
    else if (s->uid != s->root->uid || s->gid != s->root->gid)
        why = "uid and gid must be the root's";
    else if (s->init_fd > 0 && s->status_fd <= 0)
        why = "init_fd needs a status_fd";
    if (why)
        snprintf(err, errlen, "%s", why);
    return why ? -EINVAL : 0;
}

int sbx_spawn(const struct sbx_spec *spec, struct sbx_child *out, char *err, size_t errlen)
{
    *out = (struct sbx_child){.pid = -1, .pidfd = -1, .api_listen_fd = -1, .extra_listen_fd = -1};
    if (errlen)
        err[0] = 0;
    int report[2] = {-1, -1}, sock[2] = {-1, -1}, devnull = -1, pidfd = -1, rc;
    struct sbx_mount_plan *plan = NULL;
    void *stack = NULL;
    pid_t pid = -1;

    rc = check_spec(spec, err, errlen);
    if (rc < 0)
        return rc;
    int own_netns = !spec->host_network && spec->netns_fd <= 0; /* made by the child */
    const struct sock_fprog *filter = sbx_seccomp_filter(&rc);
    if (!filter) {
        snprintf(err, errlen, "seccomp filter: %s", strerror(-rc));
        return rc;
    }
    plan = calloc(1, sizeof(*plan));
    if (!plan) {
        snprintf(err, errlen, "%s", strerror(ENOMEM));
        return -ENOMEM;
    }
    rc = sbx_mount_plan_build(plan, spec, err, errlen);
    if (rc < 0)
        goto out;
    if (pipe2(report, O_CLOEXEC | O_NONBLOCK) < 0 ||
        (own_netns && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sock) < 0) ||
        (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "pipes: %s", strerror(-rc));
        goto out;
    }

    struct child_ctx ctx = {.spec = spec,
                            .plan = plan,
                            .filter = filter,
                            .devnull = devnull,
                            .report_fd = report[1],
                            .sock_fd = sock[1]};
    if (!child_stack) {
        stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED) {
            rc = -errno;
            snprintf(err, errlen, "child stack: %s", strerror(-rc));
            goto out;
        }
        child_stack = stack;
    }
    stack = child_stack;
    UNPOISON_STACK(stack, CHILD_STACK_SIZE);
    ctx.stack2_top = (char *)stack + CHILD_STACK_SIZE / 2; /* PID 1 stays in the upper half */
    struct cpu_pin pin;
    pin_to_this_cpu(&pin);
    ctx.pin = &pin;
    int flags = (spec->root->userns ? CLONE_NEWUSER : 0) | CLONE_VM | CLONE_VFORK | CLONE_PIDFD |
                (plan->entered ? 0 : CLONE_NEWNS) | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                (own_netns ? CLONE_NEWNET : 0) | SIGCHLD;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* no handler of ours may run in the child */
    pid = clone(child_main, (char *)stack + CHILD_STACK_SIZE, flags, &ctx, &pidfd);
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    unpin(&pin);
    if (pid < 0) {
        rc = -clone_errno;
        snprintf(err, errlen, "clone: %s", strerror(clone_errno));
        goto out;
    }
    close(report[1]);
    report[1] = -1;
    if (sock[1] >= 0) {
        close(sock[1]);
        sock[1] = -1;
    }

    /* Back from a vfork: the child has exited, its report written (a failed step), or its
     * execve is past the point of no return. Nothing more can come, so the report is read
     * without waiting for the pipe's end, which closes only later in the exec: on a busy CPU
     * the child may run on until it first blocks before this thread gets the CPU back. */
    struct sbx_report r;
    ssize_t got;
    do
        got = read(report[0], &r, sizeof(r));
    while (got < 0 && errno == EINTR);
    if (got < 0 && errno == EAGAIN)
        got = 0;
    if (got == sizeof(r)) {
        rc = r.err > 0 ? -r.err : -EIO;
        out->failed_step = r.step;
        describe_report(spec, plan, &r, err, errlen);
        goto reap;
    }
    if (got != 0) {
        rc = got < 0 ? -errno : -EPROTO;
        snprintf(err, errlen, "child report: %s", strerror(-rc));
        goto kill;
    }
    if (own_netns) {
        int lfd = sbx_net_recv_fd(sock[0]);
        if (lfd < 0) {
            rc = lfd;
            snprintf(err, errlen, "receive the listener: %s", strerror(-rc));
            goto kill;
        }
        out->api_listen_fd = lfd;
        if (spec->extra_port && (lfd = sbx_net_recv_fd(sock[0])) < 0) {
            rc = lfd;
            snprintf(err, errlen, "receive the second listener: %s", strerror(-rc));
            close(out->api_listen_fd);
            out->api_listen_fd = -1;
            goto kill;
        }
        out->extra_listen_fd = spec->extra_port ? lfd : -1;
    }
    out->pid = pid;
    out->pidfd = pidfd;
    pidfd = -1;
    rc = 0;
    goto out;

kill:
    kill(pid, SIGKILL);
reap:
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
out:
    for (int i = 0; i < 2; i++) {
        if (report[i] >= 0)
            close(report[i]);
        if (sock[i] >= 0)
            close(sock[i]);
    }
    if (devnull >= 0)
        close(devnull);
    if (pidfd >= 0)
        close(pidfd);
    sbx_mount_plan_release(plan);
    free(plan);
    return rc;
}

/* struct clone_args of clone3 (linux/sched.h, not in glibc's headers). */
struct clone3_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    uint64_t set_tid, set_tid_size, cgroup;
};

/* "a\0b\0" for {"a", "b"}; NULL if out of memory. */
static char *join_strv(char *const *v, size_t *len)
{
    size_t n = 0;
    for (size_t i = 0; v && v[i]; i++)
        n += strlen(v[i]) + 1;
    char *out = malloc(n ? n : 1), *p = out;
    for (size_t i = 0; out && v && v[i]; i++) {
        size_t k = strlen(v[i]) + 1;
        memcpy(p, v[i], k);
        p += k;
    }
    *len = out ? n : 0;
    return out;
}

int sbx_fork(const struct sbx_spec *spec, int report_fd, int api_sock_fd, int *pidfd, char *err,
             size_t errlen)
{
    *pidfd = -1;
    int rc = check_spec(spec, err, errlen), devnull = -1;
    if (rc < 0)
        return rc;
    int own_netns = !spec->host_network && spec->netns_fd <= 0;
    const struct sock_fprog *filter = sbx_seccomp_filter(&rc);
    if (!filter) {
        snprintf(err, errlen, "seccomp filter: %s", strerror(-rc));
        return rc;
    }
    struct sbx_mount_plan *plan = calloc(1, sizeof(*plan));
    if (!plan) {
        snprintf(err, errlen, "%s", strerror(ENOMEM));
        return -ENOMEM;
    }
    rc = sbx_mount_plan_build(plan, spec, err, errlen);
    if (rc == 0 && (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "/dev/null: %s", strerror(-rc));
    }
    if (rc < 0) {
        sbx_mount_plan_release(plan);
        free(plan);
        return rc;
    }
    struct child_ctx ctx = {.spec = spec,
                            .plan = plan,
                            .filter = filter,
                            .devnull = devnull,
                            .report_fd = report_fd,
                            .sock_fd = api_sock_fd,
                            .zygote = 1};
    /* kept by the child for its life (what /proc shows); the parent frees its copy */
    char *shown_args = join_strv(spec->argv, &ctx.args_len);
    char *shown_env = join_strv(spec->envp, &ctx.env_len);
    ctx.args = shown_args;
    ctx.env = shown_env;
    ctx.mm_known = read_mm_layout(&ctx.mm) == 0;
    int fd = -1;
    struct clone3_args args = {
        .flags = (spec->root->userns ? CLONE_NEWUSER : 0) | CLONE_PARENT | CLONE_PIDFD |
                 (plan->entered ? 0 : CLONE_NEWNS) | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                 (own_netns ? CLONE_NEWNET : 0),
        .pidfd = (uint64_t)(uintptr_t)&fd,
    };
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid == 0) {
        child_setup(&ctx);
        if (spec->init_fd > 0) { /* this copy goes on as PID 2; PID 1 becomes ignis-init */
            pid_t program = fork();
            if (program < 0)
                child_fail(&ctx, SBX_STEP_INIT, -errno, -1);
            if (program > 0)
                become_init(&ctx, program);
        }
        close_range(3, ~0U, 0); /* the report fd with the rest: the setup is done */
        return 0;
    }
    int clone_errno = errno;
    close(devnull);
    sbx_mount_plan_release(plan);
    free(plan);
    free(shown_args);
    free(shown_env);
    if (pid < 0) {
        snprintf(err, errlen, "clone3: %s", strerror(clone_errno));
        return -clone_errno;
    }
    *pidfd = fd;
    return (int)pid;
}

static int in_userns; /* sbx_isolate_mounts made a user namespace */

int sbx_in_userns(void)
{
    return in_userns;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, text, strlen(text));
    int e = w == (ssize_t)strlen(text) ? 0 : (w < 0 ? -errno : -EIO);
    close(fd);
    return e;
}

int sbx_isolate_mounts(int userns)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWNS | (userns ? CLONE_NEWUSER : 0)) < 0)
        return -errno;
    if (userns) {
        char map[64];
        int rc;
        snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
        if ((rc = write_file("/proc/self/uid_map", map)) < 0 ||
            (rc = write_file("/proc/self/setgroups", "deny")) < 0)
            return rc;
        snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
        if ((rc = write_file("/proc/self/gid_map", map)) < 0)
            return rc;
        in_userns = 1;
    }
    return mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0 ? -errno : 0;
}

/* Whether a forked child can unshare every namespace a sandbox uses (plus extra): 0 or errno. */
static int probe_unshare(int extra)
{
    pid_t pid = fork();
    if (pid < 0)
        return errno;
    if (pid == 0)
        _exit(unshare(extra | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                      CLONE_NEWNET | CLONE_NEWCGROUP) < 0
                  ? errno
                  : 0);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
}

int sbx_probe(char *desc, size_t size)
{
    int err;
    if (!sbx_seccomp_filter(&err)) {
        snprintf(desc, size, "none: seccomp filter: %s", strerror(-err));
        return SBX_SUPPORT_NONE;
    }
    if (geteuid() != 0) {
        int on = 0;
        FILE *f = fopen("/proc/sys/user/max_user_namespaces", "re");
        if (f) {
            on = fscanf(f, "%d", &on) == 1 && on > 0;
            fclose(f);
        }
        f = fopen("/proc/sys/kernel/unprivileged_userns_clone", "re");
        if (f) {
            int v = 0;
            if (fscanf(f, "%d", &v) == 1 && v == 0)
                on = 0;
            fclose(f);
        }
        if (!on) {
            snprintf(desc, size, "none: not root and no unprivileged user namespaces");
            return SBX_SUPPORT_NONE;
        }
        int e = probe_unshare(CLONE_NEWUSER);
        if (e) {
            snprintf(desc, size, "none: not root, and unshare of a user namespace fails: %s",
                     strerror(e));
            return SBX_SUPPORT_NONE;
        }
        snprintf(desc, size,
                 "rootless: user, mount, pid, ipc, uts, net and cgroup namespaces, seccomp");
        return SBX_SUPPORT_USERNS;
    }
    int e = probe_unshare(0);
    if (e) {
        snprintf(desc, size, "none: root, but unshare of the namespaces fails: %s", strerror(e));
        return SBX_SUPPORT_NONE;
    }
    snprintf(desc, size, "root: mount, pid, ipc, uts, net and cgroup namespaces, seccomp");
    return SBX_SUPPORT_ROOT;
}
