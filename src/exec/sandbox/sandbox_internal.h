/*
 * sandbox internals: what the orchestrator (sandbox.c) calls in each facility file. Functions
 * marked "child" run between clone and execve: async-signal-safe, no allocation, 0 / -errno.
 * Functions marked "parent" run before clone and may allocate.
 */
#ifndef IGNIS_EXEC_SANDBOX_INTERNAL_H
#define IGNIS_EXEC_SANDBOX_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/filter.h>

#include "exec/sandbox/sandbox.h"

/*=== mount.c ===*/

enum sbx_mop {
    SBX_MOP_PRIVATE,   /* make every mount private (no propagation to or from the host) */
    SBX_MOP_MKDIR,     /* mkdir a */
    SBX_MOP_SYMLINK,   /* symlink a -> b */
    SBX_MOP_MKFILE,    /* create the empty file a (a bind target) */
    SBX_MOP_BIND_RO,   /* bind b at a, read-only, nosuid, nodev */
    SBX_MOP_BIND_DEV,  /* bind the device b at a, nosuid, noexec */
    SBX_MOP_MOVE_FD,   /* move the detached mount fd (len) to a */
    SBX_MOP_TMPFS,     /* tmpfs at a with options data, nosuid, nodev */
    SBX_MOP_TMPFS_DEV, /* tmpfs at a with options data, nosuid, noexec (for /dev) */
    SBX_MOP_PROC,      /* a new proc at a */
    SBX_MOP_WRITE,     /* create a with the len bytes of data */
    SBX_MOP_PIVOT,     /* a becomes "/", the old root is detached */
    SBX_MOP_ENTER,     /* join the root's namespace (fd len), then unshare a copy of it */
};

struct sbx_mount_op {
    enum sbx_mop op;
    const char *a, *b, *data;
    size_t len;
};

#define SBX_MAX_MOUNT_OPS 128
#define SBX_MOUNT_STRS 16384

struct sbx_root {
    char dir[4096];
    uid_t uid;
    gid_t gid;
    int userns;      /* made inside sbx_isolate_mounts' user namespace: sandboxes get one each */
    int template_fd; /* a mount namespace whose root is this root, or -1 (see mount.c) */
};

struct sbx_mount_plan {
    const char *at; /* the root's dir: op paths inside are under it ("" once entered) */
    int entered;    /* starts with SBX_MOP_ENTER: the child needs no CLONE_NEWNS */
    int fds[2];     /* detached mounts the plan opened (code, runtime), -1 if none */
    struct sbx_mount_op ops[SBX_MAX_MOUNT_OPS];
    int n;
    size_t used;
    char strs[SBX_MOUNT_STRS];
};

/* parent: fills plan (zeroed by the caller) from spec. -errno with a message in err. */
int sbx_mount_plan_build(struct sbx_mount_plan *plan, const struct sbx_spec *spec, char *err,
                         size_t errlen);
/* parent: closes what the plan opened; the plan is then free()d. */
void sbx_mount_plan_release(struct sbx_mount_plan *plan);
/* child: applies plan in order; on error *failed is the index of the failing op. */
int sbx_mount_apply(const struct sbx_mount_plan *plan, int *failed);
/* parent: "bind /x at /var/task read-only" for op i. */
void sbx_mount_describe(const struct sbx_mount_plan *plan, int i, char *buf, size_t size);

/*=== net.c ===*/

int sbx_net_loopback_up(void);              /* child */
int sbx_net_listen_loopback(uint16_t port); /* child: fd or -errno */
int sbx_net_send_fd(int sock, int fd);      /* child */
int sbx_net_recv_fd(int sock);              /* parent: fd (O_CLOEXEC) or -errno */

/*=== caps.c ===*/

int sbx_caps_drop_bounding(void); /* child: empty the bounding and ambient sets */
/* child: no groups (unless the user namespace forbids setgroups), uid/gid everywhere */
int sbx_creds_set(uid_t uid, gid_t gid, int userns);
/* child, first thing in a new user namespace: uid/gid inside map to the caller's ids */
int sbx_userns_map(uid_t uid, gid_t gid);
int sbx_caps_clear(void);   /* child: permitted/effective/inheritable = 0 */
int sbx_no_new_privs(void); /* child */

/*=== seccomp.c ===*/

/* parent: the filter, built once per process (thread-safe), or NULL with *err = -errno. */
const struct sock_fprog *sbx_seccomp_filter(int *err);
int sbx_seccomp_load(const struct sock_fprog *prog); /* child, after sbx_no_new_privs */

/*=== rlimit.c ===*/

int sbx_rlimits_apply(uint64_t data_bytes, unsigned nproc); /* child; 0: leave as is */

#endif
