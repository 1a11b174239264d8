/*
 * net: the sandbox's network. Owns bringing `lo` up in the child's fresh network namespace
 * (one ioctl on a throwaway socket, no netlink), the loopback listener created inside that
 * namespace, and passing it to the parent over a unix socket with SCM_RIGHTS. A listener keeps
 * its namespace: the parent accepts on it what the sandboxed program connects to at
 * 127.0.0.1:port. Nothing here configures any other interface or route: the namespace has no
 * way out. With host_network none of this runs. sbx_netns_prepare makes the same namespace
 * and listener ahead of time, on the calling thread, for a child to join (setns).
 */
#include "exec/sandbox/sandbox_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int sbx_net_loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    int rc = 0;
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        rc = -errno;
    else {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
            rc = -errno;
    }
    close(s);
    return rc;
}

int sbx_net_listen_loopback(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

int sbx_net_send_fd(int sock, int fd)
{
    char byte = 'L';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } c;
    memset(&c, 0, sizeof(c));
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf)};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &fd, sizeof(int));
    ssize_t n;
    do
        n = sendmsg(sock, &m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : n < 0 ? -errno : -EIO;
}

int sbx_net_recv_fd(int sock)
{
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } c;
    memset(&c, 0, sizeof(c));
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf)};
    ssize_t n;
    do
        n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    if (n != 1 || !h || h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS ||
        h->cmsg_len != CMSG_LEN(sizeof(int)))
        return -EPROTO;
    int fd;
    memcpy(&fd, CMSG_DATA(h), sizeof(int));
    return fd;
}

int sbx_netns_prepare(int *ns_fd, int *listen_fd)
{
    *ns_fd = *listen_fd = -1;
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0)
        return -errno;
    int rc = 0;
    if (unshare(CLONE_NEWNET) < 0) {
        rc = -errno;
        close(home);
        return rc;
    }
    if ((rc = sbx_net_loopback_up()) == 0 &&
        (rc = *listen_fd = sbx_net_listen_loopback(SBX_API_PORT)) >= 0) {
        *ns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        rc = *ns_fd < 0 ? -errno : 0;
    }
    if (setns(home, CLONE_NEWNET) < 0) /* this thread must not stay in there */
        abort();
    close(home);
    if (rc < 0) {
        if (*listen_fd >= 0)
            close(*listen_fd);
        if (*ns_fd >= 0)
            close(*ns_fd);
        *ns_fd = *listen_fd = -1;
    }
    return rc < 0 ? rc : 0;
}

int sbx_netns_listen(int ns, uint16_t port)
{
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0)
        return -errno;
    if (setns(ns, CLONE_NEWNET) < 0) {
        int e = -errno;
        close(home);
        return e;
    }
    int fd = sbx_net_listen_loopback(port);
    if (setns(home, CLONE_NEWNET) < 0) /* this thread must not stay in there */
        abort();
    close(home);
    return fd;
}
