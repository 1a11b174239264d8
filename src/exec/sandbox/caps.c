/*
 * caps: the sandboxed program's credentials and privileges. Owns emptying the capability
 * bounding and ambient sets (while still privileged), switching to the unprivileged uid/gid
 * with no supplementary groups, clearing the permitted/effective/inheritable sets, and
 * no_new_privs (so setuid binaries and file capabilities grant nothing and seccomp can be
 * loaded unprivileged). Raw syscalls, not glibc's setresuid & co: after a raw clone glibc
 * may still believe other threads exist and would try to signal them to change their ids.
 */
#include "exec/sandbox/sandbox_internal.h"

#include <errno.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int sbx_caps_drop_bounding(void)
{
    for (unsigned long c = 0; prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; c++)
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
            return -errno;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -errno;
    return 0;
}

int sbx_creds_set(uid_t uid, gid_t gid)
{
    if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, gid, gid, gid) < 0 ||
        syscall(SYS_setresuid, uid, uid, uid) < 0)
        return -errno;
    return 0;
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
