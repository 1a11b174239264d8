/*
 * caps: the sandboxed program's credentials and privileges. Owns emptying the capability
 * bounding and ambient sets (while still privileged), switching to the unprivileged uid/gid
 * with no supplementary groups, clearing the permitted/effective/inheritable sets, and
 * no_new_privs (so setuid binaries and file capabilities grant nothing and seccomp can be
 * loaded unprivileged). Raw syscalls, not glibc's setresuid & co: after a raw clone glibc
 * may still believe other threads exist and would try to signal them to change their ids.
 * Also owns the id mapping of a sandbox's own user namespace (rootless mode), written by the
 * child itself: its one uid and gid inside map to the caller's (0 of the daemon's namespace).
 */
#include "exec/sandbox/sandbox_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int sbx_caps_drop_bounding(void)
{
    /* until the first capability this kernel does not know (EINVAL) */
    for (unsigned long c = 0;; c++)
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
            if (errno == EINVAL && c > 0)
                break;
            return -errno;
        }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -errno;
    return 0;
}

int sbx_creds_set(uid_t uid, gid_t gid, int userns)
{
    /* in a user namespace setgroups is denied (sbx_userns_map): there are no groups to drop */
    if ((!userns && syscall(SYS_setgroups, 0, NULL) < 0) ||
        syscall(SYS_setresgid, gid, gid, gid) < 0 || syscall(SYS_setresuid, uid, uid, uid) < 0)
        return -errno;
    return 0;
}

static int write_proc_self(const char *file, const char *text, size_t len)
{
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, text, len);
    int e = w == (ssize_t)len ? 0 : (w < 0 ? -errno : -EIO);
    close(fd);
    return e;
}

/* Async-signal-safe "<inside> 0 1\n": the caller is uid/gid 0 of the parent namespace. */
static size_t map_line(char *buf, unsigned inside)
{
    char digits[12];
    size_t n = 0, len = 0;
    do
        digits[n++] = (char)('0' + inside % 10);
    while ((inside /= 10) > 0);
    while (n > 0)
        buf[len++] = digits[--n];
    memcpy(buf + len, " 0 1\n", 5);
    return len + 5;
}

int sbx_userns_map(uid_t uid, gid_t gid)
{
    char line[32];
    int rc = write_proc_self("/proc/self/uid_map", line, map_line(line, uid));
    if (rc == 0)
        rc = write_proc_self("/proc/self/setgroups", "deny", 4);
    if (rc == 0)
        rc = write_proc_self("/proc/self/gid_map", line, map_line(line, gid));
    return rc;
}

int sbx_caps_clear(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {{0, 0, 0}};
    return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

int sbx_no_new_privs(void)
{
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
}
