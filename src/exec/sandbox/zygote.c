/*
 * zygote: starting sandboxes by forking a process that has already done its slow start-up
 * (see sandbox.h, "Zygotes"). Owns both ends of the control socket: the caller's
 * (sbx_zygote_start / _spawn / _free: start the zygote program, ask it for a sandboxed child,
 * wait for the child's setup exactly as sbx_spawn waits for its exec) and the zygote's
 * (sbx_zygote_serve: the request loop, which returns only in each new child). Requests are
 * one SOCK_SEQPACKET message each: a fixed header, the strings, and the fds the child needs
 * (SCM_RIGHTS); the answer is the child's pid and pidfd. Both ends are this file, built from
 * the same source, so the format needs no versioning beyond a magic number.
 */
#include "exec/sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define ZYGOTE_MAGIC 0x49a7c0deu
#define ZYGOTE_FD 3 /* the control socket, in the zygote */
#define MAX_REQUEST (128 * 1024)
#define MAX_FDS 10
#define REPLY_TIMEOUT_S 5

struct request_header {
    uint32_t magic;
    uint32_t uid, gid, tmp_mb, rlimit_nproc, extra_port;
    int32_t host_network, userns;
    uint64_t rlimit_data;
    uint32_t nargv, nenv, strs_len;
    uint32_t has_sock, has_tmp, has_netns, ncg, has_init;
};

struct reply {
    int32_t rc; /* 0 or -errno */
    int32_t pid;
    char err[240];
};

struct sbx_zygote {
    pid_t pid;
    int fd; /* our end of the control socket */
    int ready;
};

/*=== fds over the socket ===*/

static ssize_t send_with_fds(int sock, const void *data, size_t len, const int *fds, int nfds)
{
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        memset(&u, 0, sizeof(u));
        msg.msg_control = u.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t n;
    do
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
}

/* Receives one message and up to MAX_FDS fds (O_CLOEXEC); returns its length, 0 at EOF. */
static ssize_t recv_with_fds(int sock, void *data, size_t len, int *fds, int *nfds)
{
    struct iovec iov = {.iov_base = data, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n;
    do
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    *nfds = 0;
    if (n < 0)
        return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*nfds < MAX_FDS)
                fds[(*nfds)++] = fd;
            else
                close(fd);
        }
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        for (int i = 0; i < *nfds; i++)
            close(fds[i]);
        *nfds = 0;
        errno = EMSGSIZE;
        return -1;
    }
    return n;
}

/*=== The caller's end ===*/

struct sbx_zygote *sbx_zygote_start(char *const argv[], char *const envp[])
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return NULL;
    struct sbx_zygote *z = calloc(1, sizeof(*z));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], ZYGOTE_FD);
    pid_t pid;
    int rc = z ? posix_spawn(&pid, argv[0], &fa, NULL, argv, envp) : ENOMEM;
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        free(z);
        errno = rc;
        return NULL;
    }
    z->pid = pid;
    z->fd = sv[0];
    struct timeval tv = {.tv_sec = REPLY_TIMEOUT_S};
    setsockopt(z->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return z;
}

int sbx_zygote_ready(struct sbx_zygote *z)
{
    if (!z || z->fd < 0)
        return -1;
    if (!z->ready) {
        char c;
        ssize_t n = recv(z->fd, &c, 1, MSG_DONTWAIT);
        if (n == 1 && c == 'R')
            z->ready = 1;
        else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            close(z->fd); /* it died starting */
            z->fd = -1;
        }
    }
    return z->ready;
}

pid_t sbx_zygote_pid(const struct sbx_zygote *z)
{
    return z ? z->pid : -1;
}

void sbx_zygote_free(struct sbx_zygote *z)
{
    if (!z)
        return;
    if (z->fd >= 0)
        close(z->fd); /* EOF: the zygote exits */
    if (z->pid > 0) {
        int status;
        while (waitpid(z->pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    free(z);
}

static int put_str(char *buf, size_t *used, const char *s)
{
    size_t n = strlen(s ? s : "") + 1;
    if (*used + n > MAX_REQUEST)
        return -E2BIG;
    memcpy(buf + *used, s ? s : "", n);
    *used += n;
    return 0;
}

static void zygote_broken(struct sbx_zygote *z)
{
    close(z->fd);
    z->fd = -1;
    z->ready = 0;
}

int sbx_zygote_spawn(struct sbx_zygote *z, const struct sbx_spec *spec, struct sbx_child *out,
                     char *err, size_t errlen)
{
    *out = (struct sbx_child){.pid = -1, .pidfd = -1, .api_listen_fd = -1, .extra_listen_fd = -1};
    if (errlen)
        err[0] = 0;
    if (sbx_zygote_ready(z) <= 0) {
        snprintf(err, errlen, "zygote not ready");
        return -EAGAIN;
    }
    int own_netns = !spec->host_network && spec->netns_fd <= 0;
    int report[2] = {-1, -1}, sock[2] = {-1, -1}, rc = 0;
    char *buf = malloc(MAX_REQUEST);
    if (!buf)
        return -ENOMEM;
    struct request_header h = {
        .magic = ZYGOTE_MAGIC,
        .uid = spec->uid,
        .gid = spec->gid,
        .tmp_mb = spec->tmp_mb,
        .rlimit_nproc = spec->rlimit_nproc,
        .extra_port = spec->extra_port,
        .host_network = spec->host_network,
        .userns = sbx_in_userns(),
        .rlimit_data = spec->rlimit_data,
        .has_sock = own_netns,
        .has_tmp = spec->tmp_mount_fd > 0,
        .has_netns = !spec->host_network && spec->netns_fd > 0,
        .has_init = spec->init_fd > 0 && spec->status_fd > 0,
    };
    size_t used = sizeof(h);
    rc = put_str(buf, &used, sbx_root_dir(spec->root));
    rc = rc ? rc : put_str(buf, &used, spec->code_dir);
    rc = rc ? rc : put_str(buf, &used, spec->runtime_dir);
    rc = rc ? rc : put_str(buf, &used, spec->cwd);
    for (; rc == 0 && spec->argv[h.nargv]; h.nargv++)
        rc = put_str(buf, &used, spec->argv[h.nargv]);
    for (; rc == 0 && spec->envp[h.nenv]; h.nenv++)
        rc = put_str(buf, &used, spec->envp[h.nenv]);
    if (rc < 0) {
        snprintf(err, errlen, "request too large");
        goto out;
    }
    h.strs_len = (uint32_t)(used - sizeof(h));
    if (pipe2(report, O_CLOEXEC) < 0 ||
        (own_netns && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sock) < 0)) {
        rc = -errno;
        snprintf(err, errlen, "pipes: %s", strerror(-rc));
        goto out;
    }
    int fds[MAX_FDS], nfds = 0;
    fds[nfds++] = report[1];
    fds[nfds++] = spec->stdout_fd;
    if (h.has_sock)
        fds[nfds++] = sock[1];
    if (h.has_tmp)
        fds[nfds++] = spec->tmp_mount_fd;
    if (h.has_netns)
        fds[nfds++] = spec->netns_fd;
    for (int i = 0; i < spec->ncg_fds && i < SBX_MAX_CG_FDS; i++)
        fds[nfds++] = spec->cg_fds[i];
    if (h.has_init) {
        fds[nfds++] = spec->init_fd;
        fds[nfds++] = spec->status_fd;
    }
    h.ncg = (uint32_t)(spec->ncg_fds < SBX_MAX_CG_FDS ? spec->ncg_fds : SBX_MAX_CG_FDS);
    memcpy(buf, &h, sizeof(h));
    if (send_with_fds(z->fd, buf, used, fds, nfds) != (ssize_t)used) {
        rc = -errno;
        snprintf(err, errlen, "send to the zygote: %s", strerror(-rc));
        zygote_broken(z);
        goto out;
    }
    close(report[1]);
    report[1] = -1;
    if (sock[1] >= 0) {
        close(sock[1]);
        sock[1] = -1;
    }
    struct reply r;
    int got_fds[MAX_FDS], n = 0;
    ssize_t got = recv_with_fds(z->fd, &r, sizeof(r), got_fds, &n);
    if (got != (ssize_t)sizeof(r) || (r.rc == 0 && n != 1) || (r.rc < 0 && n != 0)) {
        rc = got < 0 ? -errno : -EPROTO;
        snprintf(err, errlen, "zygote answer: %s", strerror(-rc));
        for (int i = 0; i < n; i++)
            close(got_fds[i]);
        zygote_broken(z);
        goto out;
    }
    int pidfd = n ? got_fds[0] : -1;
    if (r.rc < 0) {
        rc = r.rc;
        snprintf(err, errlen, "%.*s", (int)sizeof(r.err), r.err);
        goto out;
    }
    /* The child is ours (CLONE_PARENT): wait for its setup as sbx_spawn waits for exec. */
    struct sbx_report rep;
    do
        got = read(report[0], &rep, sizeof(rep));
    while (got < 0 && errno == EINTR);
    if (got != 0) {
        if (got == sizeof(rep)) {
            rc = rep.err > 0 ? -rep.err : -EIO;
            out->failed_step = rep.step;
            sbx_describe_report(spec, &rep, err, errlen);
        } else {
            rc = got < 0 ? -errno : -EPROTO;
            snprintf(err, errlen, "child report: %s", strerror(-rc));
            kill(r.pid, SIGKILL);
        }
        close(pidfd);
        while (waitpid(r.pid, NULL, 0) < 0 && errno == EINTR)
            ;
        goto out;
    }
    /* the listeners the child made in its own network namespace, one message each */
    for (int want = own_netns ? 1 + (spec->extra_port > 0) : 0, i = 0; i < want; i++) {
        int lfds[MAX_FDS], k = 0;
        char byte;
        got = recv_with_fds(sock[0], &byte, 1, lfds, &k);
        if (got < 0 || k != 1) {
            rc = got < 0 ? -errno : -EPROTO;
            snprintf(err, errlen, "receive the listener: %s", strerror(-rc));
            for (int j = 0; j < k; j++)
                close(lfds[j]);
            if (out->api_listen_fd >= 0)
                close(out->api_listen_fd);
            out->api_listen_fd = -1;
            kill(r.pid, SIGKILL);
            close(pidfd);
            while (waitpid(r.pid, NULL, 0) < 0 && errno == EINTR)
                ;
            goto out;
        }
        *(i == 0 ? &out->api_listen_fd : &out->extra_listen_fd) = lfds[0];
    }
    out->pid = r.pid;
    out->pidfd = pidfd;
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (report[i] >= 0)
            close(report[i]);
        if (sock[i] >= 0)
            close(sock[i]);
    }
    free(buf);
    return rc;
}

/*=== The zygote's end ===*/

static const char *take_str(const char **p, const char *end)
{
    const char *s = *p;
    const char *nul = memchr(s, 0, (size_t)(end - s));
    if (!nul)
        return NULL;
    *p = nul + 1;
    return s;
}

static char **take_strv(const char **p, const char *end, uint32_t n)
{
    char **v = calloc((size_t)n + 1, sizeof(*v));
    for (uint32_t i = 0; v && i < n; i++) {
        const char *s = take_str(p, end);
        if (!s || !(v[i] = strdup(s))) {
            for (uint32_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return NULL;
        }
    }
    return v;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void answer(int fd, int rc, int pid, int pidfd, const char *err)
{
    struct reply r = {.rc = rc, .pid = pid};
    snprintf(r.err, sizeof(r.err), "%s", err ? err : "");
    send_with_fds(fd, &r, sizeof(r), &pidfd, pidfd >= 0 ? 1 : 0);
}

int sbx_zygote_serve(const struct sbx_zygote_hooks *hooks, char ***argv, char ***envp)
{
    int fd = ZYGOTE_FD;
    char *buf = malloc(MAX_REQUEST);
    struct sbx_root *root = NULL;
    if (!buf || send(fd, "R", 1, MSG_NOSIGNAL) != 1) {
        free(buf);
        return -1;
    }
    for (;;) {
        int fds[MAX_FDS], nfds;
        ssize_t n = recv_with_fds(fd, buf, MAX_REQUEST, fds, &nfds);
        if (n <= 0)
            break; /* the caller is gone */
        struct request_header h;
        const char *p = buf + sizeof(h), *end = buf + n;
        char err[256] = "";
        int need = 2;
        if ((size_t)n >= sizeof(h))
            memcpy(&h, buf, sizeof(h));
        if ((size_t)n < sizeof(h) || h.magic != ZYGOTE_MAGIC || h.ncg > SBX_MAX_CG_FDS ||
            h.strs_len != (size_t)n - sizeof(h) || h.has_init > 1 ||
            nfds !=
                (need = 2 + (int)(h.has_sock + h.has_tmp + h.has_netns + h.ncg + 2 * h.has_init))) {
            snprintf(err, sizeof(err), "bad zygote request (%zd bytes, %d fds)", n, nfds);
            answer(fd, -EPROTO, -1, -1, err);
            for (int i = 0; i < nfds; i++)
                close(fds[i]);
            continue;
        }
        const char *root_dir = take_str(&p, end), *code_dir = take_str(&p, end);
        const char *runtime_dir = take_str(&p, end), *cwd = take_str(&p, end);
        char **av = take_strv(&p, end, h.nargv), **ev = av ? take_strv(&p, end, h.nenv) : NULL;
        if (root_dir && (!root || strcmp(sbx_root_dir(root), root_dir) != 0)) {
            free(root);
            root = sbx_root_attach(root_dir, h.uid, h.gid, h.userns);
        }
        int pid = -EINVAL, pidfd = -1;
        if (!root_dir || !code_dir || !runtime_dir || !cwd || !av || !ev || !root) {
            snprintf(err, sizeof(err), "bad zygote request strings");
        } else {
            int k = 2;
            struct sbx_spec spec = {
                .root = root,
                .argv = av,
                .envp = ev,
                .code_dir = code_dir,
                .runtime_dir = *runtime_dir ? runtime_dir : NULL,
                .cwd = *cwd ? cwd : NULL,
                .tmp_mb = h.tmp_mb,
                .uid = h.uid,
                .gid = h.gid,
                .host_network = h.host_network,
                .stdout_fd = fds[1],
                .rlimit_data = h.rlimit_data,
                .rlimit_nproc = h.rlimit_nproc,
                .extra_port = (uint16_t)h.extra_port,
            };
            int sock = h.has_sock ? fds[k++] : -1;
            spec.tmp_mount_fd = h.has_tmp ? fds[k++] : -1;
            spec.netns_fd = h.has_netns ? fds[k++] : -1;
            for (uint32_t i = 0; i < h.ncg; i++)
                spec.cg_fds[spec.ncg_fds++] = fds[k++];
            if (h.has_init) {
                spec.init_fd = fds[k++];
                spec.status_fd = fds[k++];
            }
            if (hooks && hooks->before_fork)
                hooks->before_fork();
            pid = sbx_fork(&spec, fds[0], sock, &pidfd, err, sizeof(err));
            if (pid == 0) {
                if (hooks && hooks->after_fork_child)
                    hooks->after_fork_child();
                free(buf);
                free(root);
                *argv = av;
                *envp = ev;
                return 0;
            }
            if (hooks && hooks->after_fork_parent)
                hooks->after_fork_parent();
        }
        answer(fd, pid < 0 ? pid : 0, pid, pidfd, err);
        if (pidfd >= 0)
            close(pidfd);
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        free_strv(av);
        free_strv(ev);
    }
    free(buf);
    free(root);
    return -1;
}
