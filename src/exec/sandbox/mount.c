/*
 * mount: the sandbox's filesystem. Owns the root every sandbox starts from (sbx_root_new) and
 * the per-instance plan (built in the parent, where lstat, realpath and snprintf are allowed)
 * applied in the child (only mount, pivot_root and friends).
 *
 * The root is made once, in the daemon's own mount namespace: a tmpfs holding the host's /usr
 * and library dirs (read-only binds; symlinks into /usr recreated as symlinks), a chosen few
 * /etc entries (never shadow/gshadow; passwd and group written fresh), /dev with null, zero,
 * full, random, urandom and the fd symlinks, and empty mount points; then it is made
 * read-only, and a template mount namespace is made whose root it is (root_template). Each
 * child joins the template and unshares a copy of it (it is in the root at once), moves in
 * the code dir at /var/task and the runtime dir at /var/runtime (detached read-only binds
 * the parent made with open_tree) and the caller's filesystem at /tmp (else a size-limited
 * tmpfs), and mounts a new /proc: five calls, and the copy holds the root's mounts only.
 * Without a template (a sandbox with a user namespace of its own cannot join the daemon's
 * namespace; zygotes) the child binds the dirs in its copy of the daemon's namespace and
 * pivots into the root, detaching everything else. Either way nothing of the host remains,
 * and it costs a few mount calls per instance instead of the ~80 of building the root.
 * Mounts below a bound dir (MS_REC) stay as writable as they were; Debian's /usr has none.
 * The root is a snapshot of /etc at start: a replaced file (a new resolv.conf) is seen after a
 * restart.
 */
#include "exec/sandbox/sandbox_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

/* /etc entries bound (files, dirs) or recreated (symlinks into /usr); missing ones skipped.
 * Plus every /etc/python3* entry (sitecustomize, Debian's python config). */
static const char *const etc_entries[] = {
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "nsswitch.conf",
    "host.conf",
    "hosts",
    "resolv.conf",
    "gai.conf",
    "localtime",
    "timezone",
    "protocols",
    "services",
    "mime.types",
    "os-release",
    "debian_version",
    "alternatives",
    "ssl",
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "ca-certificates.conf",
    "nodejs",
};

/* Top-level host dirs of the root. */
static const char *const top_entries[] = {"usr", "bin", "sbin", "lib", "lib64", "lib32", "libx32"};

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom"};

/*=== Plan (parent) ===*/

static const char *plan_str(struct sbx_mount_plan *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static const char *plan_str(struct sbx_mount_plan *p, const char *fmt, ...)
{
    size_t room = sizeof(p->strs) - p->used;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->strs + p->used, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room)
        return NULL;
    const char *s = p->strs + p->used;
    p->used += (size_t)n + 1;
    return s;
}

/* inside, under the root being planned for */
static const char *plan_at(struct sbx_mount_plan *p, const char *inside)
{
    return plan_str(p, "%s%s", p->at, inside);
}

static int plan_add(struct sbx_mount_plan *p, enum sbx_mop op, const char *a, const char *b,
                    const char *data, size_t len)
{
    if (p->n >= SBX_MAX_MOUNT_OPS || !a)
        return -ENAMETOOLONG;
    p->ops[p->n++] = (struct sbx_mount_op){.op = op, .a = a, .b = b, .data = data, .len = len};
    return 0;
}

static int is_under_usr(const char *real)
{
    return strncmp(real, "/usr/", 5) == 0 || strcmp(real, "/usr") == 0;
}

/*
 * Adds host path host at inside: a symlink resolving into /usr is recreated as is (it works
 * once /usr is there); anything else is bound read-only from its real path (symlinks outside
 * /usr, e.g. resolv.conf into /run, are followed here since /run will not exist inside).
 */
static int plan_host(struct sbx_mount_plan *p, const char *host, const char *inside)
{
    struct stat st;
    if (lstat(host, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    char *real = realpath(host, NULL);
    if (!real)
        return errno == ENOENT ? 0 : -errno; /* a dangling symlink: skip it */
    int rc = 0;
    if (S_ISLNK(st.st_mode) && is_under_usr(real)) {
        char target[PATH_MAX];
        ssize_t n = readlink(host, target, sizeof(target) - 1);
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        target[n] = 0;
        rc = plan_add(p, SBX_MOP_SYMLINK, plan_at(p, inside), plan_str(p, "%s", target), NULL, 0);
        goto out;
    }
    if (stat(real, &st) < 0) {
        rc = -errno;
        goto out;
    }
    const char *a = plan_at(p, inside);
    rc = plan_add(p, S_ISDIR(st.st_mode) ? SBX_MOP_MKDIR : SBX_MOP_MKFILE, a, NULL, NULL, 0);
    if (rc == 0)
        rc = plan_add(p, SBX_MOP_BIND_RO, a, plan_str(p, "%s", real), NULL, 0);
out:
    free(real);
    return rc;
}

/* A host dir given by the caller (code, runtime): must exist and be a directory; its mount
 * point exists in the root. Bound read-only in the child; or, for a plan that enters the
 * root's namespace (where host paths are out of reach), cloned here as a detached read-only
 * mount that the child moves into place, the fd owned by the plan (fds[slot]) until
 * sbx_mount_plan_release. */
static int plan_dir(struct sbx_mount_plan *p, int slot, const char *what, const char *host,
                    const char *inside, char *err, size_t errlen)
{
    struct stat st;
    char *real = host[0] == '/' ? realpath(host, NULL) : NULL;
    int rc = 0, fd = -1;
    if (host[0] != '/')
        rc = -EINVAL;
    else if (!real || stat(real, &st) < 0)
        rc = -errno;
    else if (!S_ISDIR(st.st_mode))
        rc = -ENOTDIR;
    else if (!p->entered)
        rc = plan_add(p, SBX_MOP_BIND_RO, plan_at(p, inside), plan_str(p, "%s", real), NULL, 0);
    else if ((fd = open_tree(AT_FDCWD, real, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)) < 0)
        rc = -errno;
    else {
        struct mount_attr attr = {.attr_set =
                                      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
        p->fds[slot] = fd;
        rc = mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0 ? -errno : 0;
        if (rc == 0)
            rc = plan_add(p, SBX_MOP_MOVE_FD, plan_at(p, inside), plan_str(p, "%s", real), NULL,
                          (size_t)fd);
    }
    if (rc < 0)
        snprintf(err, errlen, "%s %s: %s", what, host, strerror(-rc));
    free(real);
    return rc;
}

static int plan_etc(struct sbx_mount_plan *p, uid_t uid, gid_t gid)
{
    int rc = plan_add(p, SBX_MOP_MKDIR, plan_at(p, "/etc"), NULL, NULL, 0);
    char host[PATH_MAX];
    for (size_t i = 0; rc == 0 && i < sizeof(etc_entries) / sizeof(etc_entries[0]); i++) {
        snprintf(host, sizeof(host), "/etc/%s", etc_entries[i]);
        if (strcmp(etc_entries[i], "ssl") == 0) /* only certs and openssl.cnf, not private/ */
            rc = access(host, F_OK) == 0
                     ? plan_add(p, SBX_MOP_MKDIR, plan_at(p, "/etc/ssl"), NULL, NULL, 0)
                     : 0;
        else
            rc = plan_host(p, host, host);
    }
    DIR *d = rc == 0 ? opendir("/etc") : NULL;
    for (struct dirent *e; d && rc == 0 && (e = readdir(d));) {
        if (strncmp(e->d_name, "python3", 7) != 0)
            continue;
        snprintf(host, sizeof(host), "/etc/%s", e->d_name);
        rc = plan_host(p, host, host);
    }
    if (d)
        closedir(d);
    if (rc < 0)
        return rc;
    const char *passwd = plan_str(p,
                                  "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                  "sandbox:x:%u:%u:sandbox:/tmp:/usr/sbin/nologin\n"
                                  "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                                  (unsigned)uid, (unsigned)gid);
    const char *group = plan_str(p, "root:x:0:\nsandbox:x:%u:\nnogroup:x:65534:\n", (unsigned)gid);
    if (!passwd || !group)
        return -ENAMETOOLONG;
    rc = plan_add(p, SBX_MOP_WRITE, plan_at(p, "/etc/passwd"), NULL, passwd, strlen(passwd));
    if (rc == 0)
        rc = plan_add(p, SBX_MOP_WRITE, plan_at(p, "/etc/group"), NULL, group, strlen(group));
    return rc;
}

static int plan_dev(struct sbx_mount_plan *p)
{
    int rc = plan_add(p, SBX_MOP_MKDIR, plan_at(p, "/dev"), NULL, NULL, 0);
    if (rc == 0)
        rc = plan_add(p, SBX_MOP_TMPFS_DEV, plan_at(p, "/dev"), NULL, "mode=0755,size=64k", 0);
    for (size_t i = 0; rc == 0 && i < sizeof(dev_nodes) / sizeof(dev_nodes[0]); i++) {
        const char *a = plan_str(p, "%s/dev/%s", p->at, dev_nodes[i]);
        rc = plan_add(p, SBX_MOP_MKFILE, a, NULL, NULL, 0);
        if (rc == 0)
            rc = plan_add(p, SBX_MOP_BIND_DEV, a, plan_str(p, "/dev/%s", dev_nodes[i]), NULL, 0);
    }
    static const char *const links[][2] = {{"/dev/fd", "/proc/self/fd"},
                                           {"/dev/stdin", "/proc/self/fd/0"},
                                           {"/dev/stdout", "/proc/self/fd/1"},
                                           {"/dev/stderr", "/proc/self/fd/2"}};
    for (size_t i = 0; rc == 0 && i < sizeof(links) / sizeof(links[0]); i++)
        rc = plan_add(p, SBX_MOP_SYMLINK, plan_at(p, links[i][0]), links[i][1], NULL, 0);
    return rc;
}

/* What sbx_root_new builds under dir (already a tmpfs): everything but the instance's own. */
static int plan_root(struct sbx_mount_plan *p, uid_t uid, gid_t gid)
{
    int rc = 0;
    char host[64];
    for (size_t i = 0; rc == 0 && i < sizeof(top_entries) / sizeof(top_entries[0]); i++) {
        snprintf(host, sizeof(host), "/%s", top_entries[i]);
        rc = plan_host(p, host, host);
    }
    if (rc == 0)
        rc = plan_etc(p, uid, gid);
    static const char *const points[] = {"/var", "/var/task", "/var/runtime", "/tmp", "/proc"};
    for (size_t i = 0; rc == 0 && i < sizeof(points) / sizeof(points[0]); i++)
        rc = plan_add(p, SBX_MOP_MKDIR, plan_at(p, points[i]), NULL, NULL, 0);
    if (rc == 0)
        rc = plan_dev(p);
    return rc;
}

int sbx_mount_plan_build(struct sbx_mount_plan *p, const struct sbx_spec *spec, char *err,
                         size_t errlen)
{
    p->fds[0] = p->fds[1] = -1;
    p->entered = spec->root->template_fd >= 0; /* see sbx_root_new */
    p->at = p->entered ? "" : spec->root->dir;
    int rc = p->entered
                 ? plan_add(p, SBX_MOP_ENTER, "/", NULL, NULL, (size_t)spec->root->template_fd)
                 : plan_add(p, SBX_MOP_PRIVATE, "/", NULL, NULL, 0);
    if (rc == 0)
        rc = plan_dir(p, 0, "code dir", spec->code_dir, "/var/task", err, errlen);
    if (rc == 0 && spec->runtime_dir)
        rc = plan_dir(p, 1, "runtime dir", spec->runtime_dir, "/var/runtime", err, errlen);
    if (rc < 0)
        return rc;
    unsigned tmp_mb = spec->tmp_mb ? spec->tmp_mb : SBX_DEFAULT_TMP_MB;
    if (spec->tmp_mount_fd > 0)
        rc = plan_add(p, SBX_MOP_MOVE_FD, plan_at(p, "/tmp"), NULL, NULL,
                      (size_t)spec->tmp_mount_fd);
    else
        rc = plan_add(p, SBX_MOP_TMPFS, plan_at(p, "/tmp"), NULL,
                      plan_str(p, "mode=1777,size=%um", tmp_mb), 0);
    if (rc == 0)
        rc = plan_add(p, SBX_MOP_PROC, plan_at(p, "/proc"), NULL, NULL, 0);
    if (rc == 0 && !p->entered)
        rc = plan_add(p, SBX_MOP_PIVOT, p->at, NULL, NULL, 0);
    if (rc < 0)
        snprintf(err, errlen, "mount plan: %s", strerror(-rc));
    return rc;
}

void sbx_mount_plan_release(struct sbx_mount_plan *p)
{
    for (int i = 0; p && i < 2; i++)
        if (p->fds[i] >= 0) {
            close(p->fds[i]);
            p->fds[i] = -1;
        }
}

/*=== The root (parent, once) ===*/

/* The template: a mount namespace whose root is the sandbox root and which holds nothing
 * else (no host mount under it). A child that joins it and unshares a copy (SBX_MOP_ENTER)
 * is in its root at once: it copies the root's ~25 mounts instead of the daemon's whole
 * namespace, and needs no bind, pivot_root or detach of the host's mounts. Made by a thread
 * (unshare affects only the calling thread's filesystem view), kept as an fd. A sandbox in a
 * user namespace of its own cannot join a namespace of the daemon's: not made then. */
struct template_job {
    const char *dir;
    int fd, err;
};

static void *make_template(void *arg)
{
    struct template_job *j = arg;
    int fd = -1;
    if (unshare(CLONE_NEWNS) < 0 ||
        (fd = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC)) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount(j->dir, j->dir, NULL, MS_BIND | MS_REC, NULL) < 0 || chdir(j->dir) < 0 ||
        syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0) {
        j->err = errno;
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    j->fd = fd;
    return NULL;
}

static int root_template(const char *dir)
{
    struct template_job j = {.dir = dir, .fd = -1};
    pthread_t t;
    int rc = pthread_create(&t, NULL, make_template, &j);
    if (rc != 0)
        return -rc;
    pthread_join(t, NULL);
    return j.fd >= 0 ? j.fd : -j.err;
}

struct sbx_root *sbx_root_new(const char *dir, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    struct sbx_root *root = calloc(1, sizeof(*root));
    struct sbx_mount_plan *p = calloc(1, sizeof(*p));
    int rc = 0, failed = -1, mounted = 0;
    if (!root || !p) {
        snprintf(err, errlen, "%s", strerror(ENOMEM));
        goto fail;
    }
    if (dir[0] != '/' || strlen(dir) >= sizeof(root->dir) - 64) {
        snprintf(err, errlen, "root dir %s: must be an absolute path of reasonable length", dir);
        goto fail;
    }
    snprintf(root->dir, sizeof(root->dir), "%s", dir);
    root->uid = uid;
    root->gid = gid;
    root->userns = sbx_in_userns();
    root->template_fd = -1;
    if ((mkdir(dir, 0755) < 0 && errno != EEXIST) ||
        mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0) {
        snprintf(err, errlen, "tmpfs at %s: %s", dir, strerror(errno));
        goto fail;
    }
    mounted = 1;
    if (mount(NULL, dir, NULL, MS_PRIVATE, NULL) < 0) {
        snprintf(err, errlen, "make %s private: %s", dir, strerror(errno));
        goto fail;
    }
    p->at = root->dir;
    rc = plan_root(p, uid, gid);
    if (rc < 0) {
        snprintf(err, errlen, "plan of the root: %s", strerror(-rc));
        goto fail;
    }
    rc = sbx_mount_apply(p, &failed);
    if (rc < 0) {
        char what[PATH_MAX + 64];
        sbx_mount_describe(p, failed, what, sizeof(what));
        snprintf(err, errlen, "%s: %s", what, strerror(-rc));
        goto fail;
    }
    if (mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0) {
        snprintf(err, errlen, "make %s read-only: %s", dir, strerror(errno));
        goto fail;
    }
    if (!root->userns) /* else children bind and pivot as in their copy of this namespace */
        root->template_fd = root_template(dir);
    free(p);
    return root;
fail:
    if (mounted)
        umount2(dir, MNT_DETACH);
    free(p);
    free(root);
    return NULL;
}

struct sbx_root *sbx_root_attach(const char *dir, uid_t uid, gid_t gid, int userns)
{
    struct sbx_root *root = calloc(1, sizeof(*root));
    if (!root || dir[0] != '/' || strlen(dir) >= sizeof(root->dir) - 64) {
        free(root);
        return NULL;
    }
    snprintf(root->dir, sizeof(root->dir), "%s", dir);
    root->uid = uid;
    root->gid = gid;
    root->userns = userns;
    root->template_fd = -1;
    return root;
}

const char *sbx_root_dir(const struct sbx_root *root)
{
    return root->dir;
}

void sbx_root_free(struct sbx_root *root)
{
    if (!root)
        return;
    if (root->template_fd >= 0)
        close(root->template_fd);
    umount2(root->dir, MNT_DETACH);
    rmdir(root->dir);
    free(root);
}

void sbx_mount_describe(const struct sbx_mount_plan *p, int i, char *buf, size_t size)
{
    if (i < 0 || i >= p->n) {
        snprintf(buf, size, "mount");
        return;
    }
    struct sbx_mount_op op = p->ops[i];
    const struct sbx_mount_op *o = &op;
    const char *b = o->b ? o->b : "";
    size_t at = p->at ? strlen(p->at) : 0;
    if (at && strncmp(o->a, p->at, at) == 0 && o->a[at] == '/')
        op.a += at; /* report paths as the program sees them */
    switch (o->op) {
    case SBX_MOP_PRIVATE:
        snprintf(buf, size, "make mounts private");
        break;
    case SBX_MOP_PIVOT:
        snprintf(buf, size, "pivot_root into %s", o->a);
        break;
    case SBX_MOP_MKDIR:
        snprintf(buf, size, "mkdir %s", o->a);
        break;
    case SBX_MOP_SYMLINK:
        snprintf(buf, size, "symlink %s -> %s", o->a, o->b);
        break;
    case SBX_MOP_MKFILE:
        snprintf(buf, size, "create %s", o->a);
        break;
    case SBX_MOP_BIND_RO:
        snprintf(buf, size, "bind %s at %s read-only", b, o->a);
        break;
    case SBX_MOP_BIND_DEV:
        snprintf(buf, size, "bind %s at %s", b, o->a);
        break;
    case SBX_MOP_MOVE_FD:
        if (o->b)
            snprintf(buf, size, "bind %s at %s read-only", o->b, o->a);
        else
            snprintf(buf, size, "move the given filesystem to %s", o->a);
        break;
    case SBX_MOP_ENTER:
        snprintf(buf, size, "enter the sandbox root's mount namespace");
        break;
    case SBX_MOP_TMPFS:
    case SBX_MOP_TMPFS_DEV:
        snprintf(buf, size, "mount tmpfs (%s) at %s", o->data, o->a);
        break;
    case SBX_MOP_PROC:
        snprintf(buf, size, "mount proc at %s", o->a);
        break;
    case SBX_MOP_WRITE:
        snprintf(buf, size, "write %s", o->a);
        break;
    }
}

/*=== Application (child: async-signal-safe only) ===*/

/* Binds src at dst, then remounts it with flags added to those the mount already has: in a
 * user namespace the flags of a mount inherited from a more privileged one are locked, and a
 * remount that would clear one (say relatime) is refused. */
static int bind_with(const char *src, const char *dst, unsigned long flags)
{
    static const struct {
        unsigned long st, ms;
    } keep[] = {{ST_RDONLY, MS_RDONLY},    {ST_NOSUID, MS_NOSUID},   {ST_NODEV, MS_NODEV},
                {ST_NOEXEC, MS_NOEXEC},    {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME},
                {ST_RELATIME, MS_RELATIME}};
    struct statvfs sv;
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0 || statvfs(dst, &sv) < 0)
        return -errno;
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        if (sv.f_flag & keep[i].st)
            flags |= keep[i].ms;
    if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | flags, NULL) < 0)
        return -errno;
    return 0;
}

static int apply_one(const struct sbx_mount_op *o)
{
    int fd;
    switch (o->op) {
    case SBX_MOP_PRIVATE:
        return mount(NULL, o->a, NULL, MS_REC | MS_PRIVATE, NULL) < 0 ? -errno : 0;
    case SBX_MOP_PIVOT:
        /* The root is first bound onto itself: in a user namespace of its own the copy of a
         * more privileged namespace's mount is locked, and pivot_root refuses a locked one.
         * pivot_root(".", "."): the old root lands on top of the new one and is detached at
         * once, with every host mount below it; no put_old dir is needed. */
        if (mount(o->a, o->a, NULL, MS_BIND | MS_REC, NULL) < 0 || chdir(o->a) < 0 ||
            syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
            return -errno;
        return 0;
    case SBX_MOP_ENTER:
        /* setns makes the namespace's root (the sandbox root) this process's root and cwd;
         * the copy keeps the instance's mounts out of the template */
        return setns((int)o->len, CLONE_NEWNS) < 0 || unshare(CLONE_NEWNS) < 0 ? -errno : 0;
    case SBX_MOP_MKDIR:
        return mkdir(o->a, 0755) < 0 && errno != EEXIST ? -errno : 0;
    case SBX_MOP_SYMLINK:
        return symlink(o->b, o->a) < 0 ? -errno : 0;
    case SBX_MOP_MKFILE:
        fd = open(o->a, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
        if (fd < 0)
            return -errno;
        close(fd);
        return 0;
    case SBX_MOP_BIND_RO:
        return bind_with(o->b, o->a, MS_RDONLY | MS_NOSUID | MS_NODEV);
    case SBX_MOP_BIND_DEV:
        return bind_with(o->b, o->a, MS_NOSUID | MS_NOEXEC);
    case SBX_MOP_MOVE_FD:
        return move_mount((int)o->len, "", AT_FDCWD, o->a, MOVE_MOUNT_F_EMPTY_PATH) < 0 ? -errno
                                                                                        : 0;
    case SBX_MOP_TMPFS:
        return mount("tmpfs", o->a, "tmpfs", MS_NOSUID | MS_NODEV, o->data) < 0 ? -errno : 0;
    case SBX_MOP_TMPFS_DEV:
        return mount("tmpfs", o->a, "tmpfs", MS_NOSUID | MS_NOEXEC, o->data) < 0 ? -errno : 0;
    case SBX_MOP_PROC:
        return mount("proc", o->a, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ? -errno : 0;
    case SBX_MOP_WRITE: {
        fd = open(o->a, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
            return -errno;
        size_t off = 0;
        while (off < o->len) {
            ssize_t w = write(fd, o->data + off, o->len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                int e = w < 0 ? -errno : -EIO;
                close(fd);
                return e;
            }
            off += (size_t)w;
        }
        close(fd);
        return 0;
    }
    }
    return -EINVAL;
}

int sbx_mount_apply(const struct sbx_mount_plan *p, int *failed)
{
    for (int i = 0; i < p->n; i++) {
        int rc = apply_one(&p->ops[i]);
        if (rc < 0) {
            *failed = i;
            return rc;
        }
    }
    return 0;
}
