/*
 * seccomp: the system call filter of the sandboxed program. Owns the list of denied calls and
 * its compilation to BPF with libseccomp, once per process in the parent (libseccomp
 * allocates, which the child must not), and loading the compiled program in the child.
 * Default allow; denied with EPERM: whatever changes mounts, namespaces, the kernel (modules,
 * kexec, keys, bpf, perf, swap, clock, reboot) or inspects other processes (ptrace), plus
 * io_uring; clone with any namespace flag is EPERM and clone3 (whose flags a filter cannot
 * read) ENOSYS, so libc falls back to clone. Calls of other architectures (x32, i386) kill.
 */
#include "exec/sandbox/sandbox_internal.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *const denied[] = {
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "unshare",
    "setns",
    "ptrace",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "perf_event_open",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "open_by_handle_at",
    "lookup_dcookie",
    "quotactl",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "iopl",
    "ioperm",
    "syslog",
    "vhangup",
    "nfsservctl",
    "uselib",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "_sysctl",
};

static const unsigned long ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                         CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct sock_fprog prog;
static int build_err;

static int build_ctx(scmp_filter_ctx ctx)
{
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); /* we set it ourselves */
    for (size_t i = 0; rc == 0 && i < sizeof(denied) / sizeof(denied[0]); i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    for (size_t i = 0; rc == 0 && i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    return rc;
}

static void build(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int fd = -1, rc;
    if (!ctx) {
        build_err = -ENOMEM;
        return;
    }
    rc = build_ctx(ctx);
    if (rc == 0) {
        fd = memfd_create("sbx-seccomp", MFD_CLOEXEC);
        rc = fd < 0 ? -errno : seccomp_export_bpf(ctx, fd);
    }
    off_t size = rc == 0 ? lseek(fd, 0, SEEK_END) : 0;
    if (rc == 0 && (size <= 0 || size % sizeof(struct sock_filter) != 0))
        rc = -EPROTO;
    struct sock_filter *f = rc == 0 ? malloc((size_t)size) : NULL;
    if (rc == 0 && !f)
        rc = -ENOMEM;
    if (rc == 0 && pread(fd, f, (size_t)size, 0) != size)
        rc = -EIO;
    if (rc == 0) {
        prog.len = (unsigned short)(size / sizeof(struct sock_filter));
        prog.filter = f; /* kept for the life of the process */
    } else
        free(f);
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
    build_err = rc;
}

const struct sock_fprog *sbx_seccomp_filter(int *err)
{
    pthread_once(&once, build);
    *err = build_err;
    return build_err ? NULL : &prog;
}

int sbx_seccomp_load(const struct sock_fprog *p)
{
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, p) < 0 ? -errno : 0;
}
